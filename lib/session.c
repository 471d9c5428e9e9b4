/* SPDX-License-Identifier: MIT */
/* Sessions: subscriptions, outbound QoS 1/2 state, the offline queue,
 * inbound QoS 2 packet ids, expiry and delayed wills. A session outlives its
 * connection for its expiry interval (MQTT 3.x: clean session 0 means for
 * ever, 1 means not at all). See session.h. */
#include "session.h"

#include <stddef.h>
#include <string.h>

static void retained_free(mqttb_session *s);
static bool arm(mqttb_session *s);

int mqttb_sessions_init(mqttb_sessions *set, mqttb_ctx *ctx, mqttb_tx_hub *hub,
                        mqttb_timers *timers) {
  memset(set, 0, sizeof(*set));
  set->ctx = ctx;
  set->hub = hub;
  set->timers = timers;
  return mqttb_trie_init(&set->subs, &ctx->mem);
}

void mqttb_sessions_free(mqttb_sessions *set) {
  if (!set->ctx)
    return; /* never initialised */
  /* Deleting pulls later entries of a probe run back into the freed slot,
   * never past it: one pass, each slot emptied before going on. */
  for (uint32_t i = 0; i < set->by_id.cap; i++)
    while (set->by_id.e[i].key)
      mqttb_session_del(set->by_id.e[i].val);
  mqttb_host_dlv d;
  while (mqttb_sessions_host_pop(set, &d))
    mqttb_msg_unref(&set->ctx->mem, d.msg);
  mqttb_mem_free(&set->ctx->mem, set->hq);
  set->hq = NULL;
  mqttb_map_free(&set->by_id, &set->ctx->mem);
  mqttb_map_free(&set->shares, &set->ctx->mem);
  mqttb_trie_free(&set->subs);
}

mqttb_session *mqttb_sessions_find(const mqttb_sessions *set, const char *id, size_t len) {
  return mqttb_map_get(&set->by_id, id, len);
}

mqttb_session *mqttb_session_of_timer(mqttb_timer *t) {
  return (mqttb_session *)(void *)((char *)t - offsetof(mqttb_session, timer));
}

mqttb_session *mqttb_session_new(mqttb_sessions *set, const char *client_id, size_t len) {
  const mqttb_mem *mem = &set->ctx->mem;
  mqttb_session *s = mqttb_mem_calloc(mem, 1, sizeof(*s) + len + 1);
  if (!s)
    return NULL;
  s->set = set;
  s->id_len = (uint16_t)len; /* client ids are MQTT strings: at most 65535 bytes */
  memcpy(s->client_id, client_id, len);
  s->client_id[len] = '\0';
  s->expires_at = UINT64_MAX;
  mqttb_timer_init(&s->timer, MQTTB_TIMER_SESSION);
  if (mqttb_map_put(&set->by_id, mem, s->client_id, len, s) != 0) {
    mqttb_mem_free(mem, s);
    return NULL;
  }
  return s;
}

mqttb_session *mqttb_session_new_host(mqttb_sessions *set, void *owner) {
  mqttb_session *s = mqttb_mem_calloc(&set->ctx->mem, 1, sizeof(*s) + 1);
  if (!s)
    return NULL;
  s->set = set;
  s->host = owner;
  s->expires_at = UINT64_MAX;
  mqttb_timer_init(&s->timer, MQTTB_TIMER_SESSION);
  return s;
}

bool mqttb_sessions_host_pop(mqttb_sessions *set, mqttb_host_dlv *out) {
  while (set->hq_n > 0) {
    *out = set->hq[set->hq_head];
    set->hq_head = (set->hq_head + 1) % set->hq_cap;
    set->hq_n--;
    if (out->s)
      return true;
    mqttb_msg_unref(&set->ctx->mem, out->msg); /* its session is gone */
  }
  return false;
}

static void host_push(mqttb_session *s, mqttb_msg *msg, uint8_t qos, bool retain) {
  mqttb_sessions *set = s->set;
  if (set->hq_n == set->hq_cap) {
    /* Grow the ring, unwrapping it. */
    uint32_t cap = set->hq_cap ? set->hq_cap * 2 : 16;
    mqttb_host_dlv *q = cap > set->hq_cap && cap < UINT32_MAX / 2
                            ? mqttb_mem_malloc(&set->ctx->mem, (size_t)cap * sizeof(*q))
                            : NULL;
    if (!q) {
      set->ctx->stats.publish_dropped++;
      mqttb_log(set->ctx, MQTTB_LOG_WARNING,
                "out of memory: dropped a message for the application");
      return;
    }
    for (uint32_t i = 0; i < set->hq_n; i++)
      q[i] = set->hq[(set->hq_head + i) % set->hq_cap];
    mqttb_mem_free(&set->ctx->mem, set->hq);
    set->hq = q;
    set->hq_cap = cap;
    set->hq_head = 0;
  }
  mqttb_host_dlv *d = &set->hq[(set->hq_head + set->hq_n) % set->hq_cap];
  d->s = s;
  d->msg = mqttb_msg_ref(msg);
  d->qos = qos;
  d->retain = retain;
  d->depth = set->host_depth;
  set->hq_n++;
}

static void dlv_free(mqttb_sessions *set, mqttb_dlv *d) {
  mqttb_msg_unref(&set->ctx->mem, d->msg);
  if (d->share)
    mqttb_share_unref(set, d->share);
  mqttb_mem_free(&set->ctx->mem, d->ids);
  d->msg = NULL;
  d->share = NULL;
  d->ids = NULL;
}

/* ---- records (store.h) ---- */

/* The store, when changes are recorded now. */
static mqttb_store *store_on(const mqttb_sessions *set) {
  return set->store && mqttb_store_on(set->store) ? set->store : NULL;
}

/* The store, when s's changes are recorded now. */
static mqttb_store *recorded(const mqttb_session *s) {
  return s->store_id ? store_on(s->set) : NULL;
}

/* Record d, accepted into s's queue (pid 0) or window. */
static void rec_dlv(mqttb_session *s, mqttb_dlv *d, uint16_t pid, uint8_t state) {
  mqttb_store *st = recorded(s);
  if (!st || d->store_id || !d->msg)
    return;
  mqttb_store_msg_ref(st, d->msg);
  d->store_id = mqttb_store_new_id(st);
  mqttb_session_encode_dlv(s, d, pid, state, st);
  mqttb_rec_emit(st);
}

void mqttb_session_encode_dlv(const mqttb_session *s, const mqttb_dlv *d, uint16_t pid,
                              uint8_t state, mqttb_store *st) {
  mqttb_rec_begin(st, MQTTB_REC_DLV);
  mqttb_rec_uint(st, MQTTB_F_D_ID, d->store_id);
  mqttb_rec_uint(st, MQTTB_F_D_SESSION, s->store_id);
  if (d->msg)
    mqttb_rec_uint(st, MQTTB_F_D_MSG, d->msg->store_id);
  mqttb_rec_uint(st, MQTTB_F_D_QOS, d->qos);
  if (d->retain)
    mqttb_rec_uint(st, MQTTB_F_D_RETAIN, 1);
  if (d->nids)
    mqttb_rec_u32s(st, MQTTB_F_D_SUB_IDS, d->ids, d->nids);
  if (pid) {
    mqttb_rec_uint(st, MQTTB_F_D_PID, pid);
    mqttb_rec_uint(st, MQTTB_F_D_STATE, state);
  }
  if (d->share)
    mqttb_rec_bytes(st, MQTTB_F_D_SHARE, d->share->name, d->share->name_len);
}

/* rec_sent's records. */
static void rec_sent_slow(mqttb_session *s, mqttb_dlv *d, uint16_t pid, uint8_t state) {
  if (!d->store_id) {
    rec_dlv(s, d, pid, state);
    return;
  }
  mqttb_store *st = store_on(s->set);
  if (!st)
    return;
  mqttb_rec_begin(st, MQTTB_REC_DLV_SENT);
  mqttb_rec_uint(st, MQTTB_F_D_ID, d->store_id);
  mqttb_rec_uint(st, MQTTB_F_D_PID, pid);
  mqttb_rec_uint(st, MQTTB_F_D_STATE, state);
  mqttb_rec_emit(st);
}

/* d went in flight with pid, or its QoS 2 flow moved to state: nothing to
 * do unless d or its session is recorded. */
static inline void rec_sent(mqttb_session *s, mqttb_dlv *d, uint16_t pid, uint8_t state) {
  if (d->store_id || s->store_id)
    rec_sent_slow(s, d, pid, state);
}

/* A delivery is done with (acknowledged, dropped, sent at QoS 0 from the
 * queue): recorded as gone, then freed. */
static void dlv_done(mqttb_session *s, mqttb_dlv *d) {
  if (d->store_id) {
    mqttb_store *st = store_on(s->set);
    mqttb_msg *m = d->msg;
    /* The last recorded reference to its message: one record says both
     * (what MSG_DEL would say follows from it). */
    bool last = st && m && m->store_refs == 1;
    if (st) {
      mqttb_rec_begin(st, MQTTB_REC_DLV_DEL);
      mqttb_rec_uint(st, MQTTB_F_D_ID, d->store_id);
      if (last)
        mqttb_rec_uint(st, MQTTB_F_D_MSG, m->store_id);
      mqttb_rec_emit(st);
    }
    if (last)
      m->store_refs = 0;
    else
      mqttb_store_msg_unref(s->set->store, m);
    d->store_id = 0;
  }
  dlv_free(s->set, d);
}

static void forget_dlv(mqttb_session *s, mqttb_dlv *d) {
  if (d->store_id)
    mqttb_store_msg_unref(s->set->store, d->msg);
  d->store_id = 0;
}

/* s is no longer in the store (its end was recorded, or nothing is): the
 * references its records held go. */
static void forget(mqttb_session *s) {
  if (!s->store_id)
    return;
  for (uint32_t i = s->win ? s->win->head : MQTTB_WINDOW_END; i != MQTTB_WINDOW_END;
       i = mqttb_window_at(s->win, i)->next)
    forget_dlv(s, &mqttb_window_at(s->win, i)->d);
  for (size_t i = 0; i < s->qcount; i++)
    forget_dlv(s, &s->queue[(s->qhead + i) % s->qcap]);
  if (s->store_will) {
    mqttb_store_msg_unref(s->set->store, s->store_will);
    mqttb_msg_unref(&s->set->ctx->mem, s->store_will);
    s->store_will = NULL;
  }
  s->store_id = 0;
}

static void rec_end(mqttb_session *s) {
  mqttb_store *st = recorded(s);
  if (st) {
    mqttb_rec_begin(st, MQTTB_REC_SESSION_END);
    mqttb_rec_uint(st, MQTTB_F_S_ID, s->store_id);
    mqttb_rec_emit(st);
  }
  forget(s);
}

void mqttb_session_record(mqttb_session *s) {
  mqttb_store *st = store_on(s->set);
  if (!st || s->host)
    return;
  if (s->expiry_interval == 0) {
    rec_end(s); /* no longer persistent */
    return;
  }
  if (!s->store_id)
    s->store_id = mqttb_store_new_id(st);
  /* A delayed will is a message of the store, referred to by id. */
  mqttb_msg *will = s->offline ? s->will : NULL;
  mqttb_msg *old = s->store_will;
  if (will && will != old) {
    mqttb_store_msg_ref(st, will);
    mqttb_msg_ref(will);
  }
  s->store_will = will;
  mqttb_session_encode(s, st);
  mqttb_rec_emit(st);
  if (old && old != will) {
    mqttb_store_msg_unref(st, old);
    mqttb_msg_unref(&s->set->ctx->mem, old);
  }
}

void mqttb_session_encode(const mqttb_session *s, mqttb_store *st) {
  mqttb_rec_begin(st, MQTTB_REC_SESSION);
  mqttb_rec_uint(st, MQTTB_F_S_ID, s->store_id);
  mqttb_rec_bytes(st, MQTTB_F_S_CLIENT, s->client_id, s->id_len);
  mqttb_rec_uint(st, MQTTB_F_S_EXPIRY_INTERVAL, s->expiry_interval);
  if (s->offline) {
    mqttb_rec_uint(st, MQTTB_F_S_OFFLINE, 1);
    if (s->expires_at != UINT64_MAX)
      mqttb_rec_uint(st, MQTTB_F_S_EXPIRES_AT, mqttb_store_wall(st, s->expires_at));
  }
  if (s->store_will) {
    mqttb_rec_uint(st, MQTTB_F_S_WILL, s->store_will->store_id);
    mqttb_rec_uint(st, MQTTB_F_S_WILL_AT, mqttb_store_wall(st, s->will_at));
  }
}

static void rec_sub(mqttb_session *s, const mqttb_sub *sub) {
  mqttb_store *st = recorded(s);
  if (!st)
    return;
  mqttb_session_encode_sub(s, sub, st);
  mqttb_rec_emit(st);
}

void mqttb_session_encode_sub(const mqttb_session *s, const mqttb_sub *sub, mqttb_store *st) {
  mqttb_rec_begin(st, MQTTB_REC_SUB);
  mqttb_rec_uint(st, MQTTB_F_S_ID, s->store_id);
  mqttb_rec_bytes(st, MQTTB_F_SUB_FILTER, sub->filter, sub->filter_len);
  mqttb_rec_uint(st, MQTTB_F_SUB_QOS, sub->qos);
  mqttb_rec_uint(st, MQTTB_F_SUB_OPTS, sub->opts);
  if (sub->sub_id)
    mqttb_rec_uint(st, MQTTB_F_SUB_ID, sub->sub_id);
}

static void rec_unsub(mqttb_session *s, const mqttb_sub *sub) {
  mqttb_store *st = recorded(s);
  if (!st)
    return;
  mqttb_rec_begin(st, MQTTB_REC_UNSUB);
  mqttb_rec_uint(st, MQTTB_F_S_ID, s->store_id);
  mqttb_rec_bytes(st, MQTTB_F_SUB_FILTER, sub->filter, sub->filter_len);
  mqttb_rec_emit(st);
}

void mqttb_share_unref(mqttb_sessions *set, mqttb_share *sh) {
  if (--sh->refs == 0) {
    mqttb_mem_free(&set->ctx->mem, sh->members);
    mqttb_mem_free(&set->ctx->mem, sh);
  }
}

bool mqttb_share_parse(const char *f, size_t len, mqttb_slice *name, mqttb_slice *filter,
                       bool *valid) {
  *valid = true;
  if (len < 7 || memcmp(f, "$share/", 7) != 0)
    return false;
  const char *n = f + 7;
  const char *slash = memchr(n, '/', len - 7);
  /* [MQTT-4.8.2-1], [MQTT-4.8.2-2]: a name of at least one character
   * without wildcards, then '/' and a filter. */
  if (!slash || slash == n || (size_t)(slash - f) + 1 >= len) {
    *valid = false;
    return true;
  }
  for (const char *p = n; p < slash; p++)
    if (*p == '+' || *p == '#')
      *valid = false;
  name->ptr = (const uint8_t *)n;
  name->len = (size_t)(slash - n);
  filter->ptr = (const uint8_t *)slash + 1;
  filter->len = len - (size_t)(slash + 1 - f);
  return true;
}

/* Subscriptions a session holds before they are indexed by filter. */
#define SUB_INDEX_AT 8

static mqttb_sub *find_sub(const mqttb_session *s, const char *filter, size_t len) {
  if (s->sub_index)
    return mqttb_map_get(s->sub_index, filter, len);
  for (size_t i = 0; i < s->nsubs; i++) {
    mqttb_sub *sub = s->subs[i];
    if (sub->filter_len == len && memcmp(sub->filter, filter, len) == 0)
      return sub;
  }
  return NULL;
}

static void index_drop(mqttb_session *s) {
  if (s->sub_index) {
    mqttb_map_free(s->sub_index, &s->set->ctx->mem);
    mqttb_mem_free(&s->set->ctx->mem, s->sub_index);
    s->sub_index = NULL;
  }
}

/* Index a new subscription (building the index once there are enough). On
 * out-of-memory the index goes: lookups scan again. */
static void index_add(mqttb_session *s, mqttb_sub *sub) {
  const mqttb_mem *mem = &s->set->ctx->mem;
  if (s->sub_index) {
    if (mqttb_map_put(s->sub_index, mem, sub->filter, sub->filter_len, sub) != 0)
      index_drop(s);
    return;
  }
  if (s->nsubs < SUB_INDEX_AT || !(s->sub_index = mqttb_mem_calloc(mem, 1, sizeof(mqttb_map))))
    return;
  for (size_t i = 0; i < s->nsubs; i++) {
    mqttb_sub *x = s->subs[i];
    if (mqttb_map_put(s->sub_index, mem, x->filter, x->filter_len, x) != 0) {
      index_drop(s);
      return;
    }
  }
}

static void sub_remove(mqttb_session *s, size_t i) {
  mqttb_sessions *set = s->set;
  mqttb_sub *sub = s->subs[i];
  if (s->sub_index)
    mqttb_map_del(s->sub_index, sub->filter, sub->filter_len);
  mqttb_tnode *n = sub->node;
  if (sub->share) {
    mqttb_share *sh = sub->share;
    sh->members[sub->node_idx] = sh->members[sh->nmembers - 1];
    sh->members[sub->node_idx]->node_idx = sub->node_idx;
    sh->nmembers--;
    if (sh->nmembers == 0) {
      /* The group goes; deliveries still holding it keep it alive. */
      mqttb_tnode_remove_share(n, sh);
      mqttb_map_del(&set->shares, sh->name, sh->name_len);
      sh->node = NULL;
      mqttb_share_unref(set, sh);
    }
  } else {
    /* Swap-remove from the node, keeping the moved entry's index right. */
    mqttb_sub *moved = mqttb_tnode_remove_sub(n, sub->node_idx);
    if (moved)
      moved->node_idx = sub->node_idx;
  }
  mqttb_trie_prune(&set->subs, n);
  s->subs[i] = s->subs[--s->nsubs];
  if (i < s->nsubs)
    s->subs[i]->sess_idx = (uint32_t)i;
  set->ctx->stats.subscription_count--;
  mqttb_mem_free(&set->ctx->mem, sub);
}

void mqttb_session_unsubscribe_all(mqttb_session *s) {
  index_drop(s);
  while (s->nsubs > 0)
    sub_remove(s, s->nsubs - 1);
}

void mqttb_session_del(mqttb_session *s) {
  mqttb_sessions *set = s->set;
  const mqttb_mem *mem = &set->ctx->mem;
  rec_end(s);
  mqttb_session_unsubscribe_all(s);
  for (uint32_t i = s->win ? s->win->head : MQTTB_WINDOW_END; i != MQTTB_WINDOW_END;
       i = mqttb_window_at(s->win, i)->next)
    dlv_free(set, &mqttb_window_at(s->win, i)->d);
  for (size_t i = 0; i < s->qcount; i++)
    dlv_free(set, &s->queue[(s->qhead + i) % s->qcap]);
  set->queued_bytes_total -= s->queued_bytes;
  if (s->offline)
    set->ctx->stats.clients_disconnected--;
  mqttb_msg_unref(mem, s->will);
  mqttb_timers_remove(set->timers, &s->timer);
  if (s->host) {
    /* Deliveries still waiting for it are dropped. */
    for (uint32_t i = 0; i < set->hq_n; i++) {
      mqttb_host_dlv *d = &set->hq[(set->hq_head + i) % set->hq_cap];
      if (d->s == s)
        d->s = NULL;
    }
  } else {
    mqttb_map_del(&set->by_id, s->client_id, s->id_len);
  }
  mqttb_mem_free(mem, s->subs);
  if (s->win)
    mqttb_window_free(s->win, mem);
  mqttb_mem_free(mem, s->win);
  mqttb_mem_free(mem, s->queue);
  if (s->in_qos2)
    mqttb_pidmap_free(s->in_qos2, mem);
  mqttb_mem_free(mem, s->in_qos2);
  mqttb_mem_free(mem, s->match.ids);
  retained_free(s);
  mqttb_mem_free(mem, s);
}

static mqttb_share *share_get(mqttb_sessions *set, const char *key, size_t keylen, mqttb_tnode *n) {
  const mqttb_mem *mem = &set->ctx->mem;
  mqttb_share *sh = mqttb_map_get(&set->shares, key, keylen);
  if (sh)
    return sh;
  sh = mqttb_mem_calloc(mem, 1, sizeof(*sh) + keylen);
  if (!sh)
    return NULL;
  sh->refs = 1;
  sh->node = n;
  sh->name_len = (uint16_t)keylen;
  memcpy(sh->name, key, keylen);
  if (mqttb_map_put(&set->shares, mem, sh->name, keylen, sh) != 0) {
    mqttb_mem_free(mem, sh);
    return NULL;
  }
  if (mqttb_tnode_add_share(&set->subs, n, sh) != 0) {
    mqttb_map_del(&set->shares, sh->name, keylen);
    mqttb_mem_free(mem, sh);
    return NULL;
  }
  return sh;
}

int mqttb_session_subscribe(mqttb_session *s, const char *filter, size_t len, uint8_t qos,
                            uint8_t opts, uint32_t sub_id, bool *existed) {
  mqttb_sessions *set = s->set;
  *existed = false;
  /* A subscription to an identical filter replaces the old one
   * [MQTT-3.8.4-3]. */
  mqttb_sub *old = find_sub(s, filter, len);
  if (old) {
    old->qos = qos;
    old->opts = opts;
    old->sub_id = sub_id;
    *existed = true;
    rec_sub(s, old);
    return 0;
  }
  mqttb_slice name, real = {(const uint8_t *)filter, len};
  bool valid;
  bool shared = mqttb_share_parse(filter, len, &name, &real, &valid);
  if (shared && !valid)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (!s->host && set->ctx->settings.max_subscriptions &&
      s->nsubs >= set->ctx->settings.max_subscriptions)
    return MQTTB_ERR_QUOTA;
  void *arr = s->subs;
  if (mqttb_mem_grow32(&set->ctx->mem, &arr, &s->subs_cap, s->nsubs + 1, sizeof(*s->subs)) != 0)
    return MQTTB_ERR_NOMEM;
  s->subs = arr;
  mqttb_sub *sub = mqttb_mem_malloc(&set->ctx->mem, sizeof(*sub) + len + 1);
  if (!sub)
    return MQTTB_ERR_NOMEM;
  mqttb_tnode *n = mqttb_trie_insert(&set->subs, (const char *)real.ptr, real.len);
  if (!n) {
    mqttb_mem_free(&set->ctx->mem, sub);
    return MQTTB_ERR_NOMEM;
  }
  mqttb_share *sh = NULL;
  if (shared) {
    /* The group's key: "name/filter", the part after "$share/". */
    sh = share_get(set, filter + 7, len - 7, n);
    arr = sh ? sh->members : NULL;
    if (!sh || mqttb_mem_grow(&set->ctx->mem, &arr, &sh->members_cap, sh->nmembers + 1,
                              sizeof(*sh->members))) {
      if (sh && sh->nmembers == 0) {
        mqttb_tnode_remove_share(n, sh);
        mqttb_map_del(&set->shares, sh->name, sh->name_len);
        mqttb_share_unref(set, sh);
      }
      mqttb_mem_free(&set->ctx->mem, sub);
      mqttb_trie_prune(&set->subs, n);
      return MQTTB_ERR_NOMEM;
    }
    sh->members = arr;
    sub->node_idx = (uint32_t)sh->nmembers; /* members are subscriptions: < 2^32 */
    sh->members[sh->nmembers++] = sub;
  } else {
    if (mqttb_tnode_add_sub(&set->subs, n, sub, &sub->node_idx) != 0) {
      mqttb_mem_free(&set->ctx->mem, sub);
      mqttb_trie_prune(&set->subs, n);
      return MQTTB_ERR_NOMEM;
    }
  }
  sub->session = s;
  sub->node = n;
  sub->share = sh;
  sub->qos = qos;
  sub->opts = opts;
  sub->sub_id = sub_id;
  sub->filter_len = (uint16_t)len;
  memcpy(sub->filter, filter, len);
  sub->filter[len] = '\0';
  sub->sess_idx = s->nsubs;
  s->subs[s->nsubs++] = sub;
  set->ctx->stats.subscription_count++;
  index_add(s, sub);
  rec_sub(s, sub);
  return 0;
}

bool mqttb_session_unsubscribe(mqttb_session *s, const char *filter, size_t len) {
  mqttb_sub *sub = find_sub(s, filter, len);
  if (!sub)
    return false;
  rec_unsub(s, sub);
  sub_remove(s, sub->sess_idx);
  return true;
}

static void pump_queue(mqttb_session *s);
/* Send what is queued while the client can take it. */
static inline void pump(mqttb_session *s) {
  if (s->qcount > 0)
    pump_queue(s);
}

static bool connected(const mqttb_session *s) {
  return s->host || (s->tx && mqttb_tx_ok(s->tx));
}

static uint32_t max_inflight(const mqttb_session *s);
static uint32_t ninflight(const mqttb_session *s);

bool mqttb_session_has_room(const mqttb_session *s, uint8_t qos) {
  if (s->host)
    return true;
  if (!connected(s))
    return false;
  if (qos == 0) {
    uint64_t max = s->set->ctx->settings.max_output_bytes;
    uint64_t low = max ? max / 2 : 262144u;
    return mqttb_outq_pending(&s->tx->q) < low;
  }
  return s->qcount == 0 && ninflight(s) < max_inflight(s);
}

bool mqttb_session_online(const mqttb_session *s) {
  return connected(s);
}

/* The outbound in-flight window: the setting, capped by the client's
 * Receive Maximum. */
static uint32_t max_inflight(const mqttb_session *s) {
  uint32_t m = s->set->ctx->settings.max_inflight_messages;
  if (m == 0 || m > 65535)
    m = 65535;
  /* MQTT 5: never more than the client's Receive Maximum [MQTT-3.3.4-9]. */
  if (s->tx && s->tx->receive_max && s->tx->receive_max < m)
    m = s->tx->receive_max;
  return m;
}

static void drop(mqttb_session *s, const char *why) {
  mqttb_sessions *set = s->set;
  set->ctx->stats.publish_dropped++;
  /* One line per power of two keeps a flood from flooding the log. */
  uint64_t n = set->ctx->stats.publish_dropped;
  if ((n & (n - 1)) == 0)
    mqttb_log(set->ctx, MQTTB_LOG_WARNING,
              "dropped a message for client %.*s: %s (%llu messages dropped so far)",
              mqttb_log_cut(s->id_len), s->client_id, why, (unsigned long long)n);
}

static uint32_t ninflight(const mqttb_session *s) {
  return s->win ? s->win->n : 0;
}

int mqttb_session_retained_push(mqttb_session *s, mqttb_msg *msg, uint8_t qos, uint32_t sub_id) {
  const mqttb_mem *mem = &s->set->ctx->mem;
  mqttb_retq *q = s->retained;
  if (!q && !(q = s->retained = mqttb_mem_calloc(mem, 1, sizeof(*q))))
    return MQTTB_ERR_NOMEM;
  if (q->n == q->cap) {
    size_t ncap = q->cap ? q->cap * 2 : 16;
    mqttb_ret_item *e =
        ncap <= SIZE_MAX / sizeof(*e) ? mqttb_mem_malloc(mem, ncap * sizeof(*e)) : NULL;
    if (!e)
      return MQTTB_ERR_NOMEM;
    for (size_t i = 0; i < q->n; i++)
      e[i] = q->e[(q->head + i) % q->cap];
    mqttb_mem_free(mem, q->e);
    q->e = e;
    q->cap = ncap;
    q->head = 0;
  }
  mqttb_ret_item *it = &q->e[(q->head + q->n) % q->cap];
  it->msg = mqttb_msg_ref(msg);
  it->qos = qos;
  it->sub_id = sub_id;
  q->n++;
  return 0;
}

const mqttb_ret_item *mqttb_session_retained_front(const mqttb_session *s) {
  const mqttb_retq *q = s->retained;
  return q && q->n ? &q->e[q->head] : NULL;
}

static void retained_free(mqttb_session *s) {
  const mqttb_mem *mem = &s->set->ctx->mem;
  mqttb_retq *q = s->retained;
  if (!q)
    return;
  for (size_t i = 0; i < q->n; i++)
    mqttb_msg_unref(mem, q->e[(q->head + i) % q->cap].msg);
  mqttb_mem_free(mem, q->e);
  mqttb_mem_free(mem, q);
  s->retained = NULL;
}

void mqttb_session_retained_pop(mqttb_session *s) {
  mqttb_retq *q = s->retained;
  mqttb_msg_unref(&s->set->ctx->mem, q->e[q->head].msg);
  q->head = (q->head + 1) % q->cap;
  if (--q->n == 0)
    retained_free(s); /* done: give the memory back */
}

/* The read check, as a delivery leaves for the client: false when the
 * client may not receive it (it is then not sent, and not counted as
 * dropped: it was never the client's). */
static bool may_read(mqttb_session *s, const mqttb_dlv *d) {
  mqttb_tx_hub *hub = s->set->hub;
  return !hub->may_read || hub->may_read(s->tx, d->msg, d->qos, d->retain, hub->arg);
}

/* Send a QoS 1/2 delivery now, taking an in-flight slot. Takes d. */
static void send_inflight(mqttb_session *s, mqttb_dlv *d) {
  mqttb_sessions *set = s->set;
  const mqttb_mem *mem = &set->ctx->mem;
  if (!may_read(s, d)) {
    dlv_done(s, d);
    return;
  }
  int rv = MQTTB_ERR_NOMEM;
  if (!s->win && (s->win = mqttb_mem_malloc(mem, sizeof(*s->win))) != NULL)
    mqttb_window_init(s->win);
  uint32_t slot = MQTTB_WINDOW_END;
  if (s->win)
    slot = mqttb_window_add(s->win, mem, d, d->qos == 1 ? MQTTB_INF_PUBACK : MQTTB_INF_PUBREC);
  if (slot != MQTTB_WINDOW_END) {
    uint16_t pid = mqttb_window_at(s->win, slot)->pid;
    rv = mqttb_tx_publish(set->hub, s->tx, d->msg, d->qos, d->retain, d->ids, d->nids, false, pid);
    if (rv != 0) {
      mqttb_window_remove(s->win, slot); /* the packet id stays free */
    } else {
      mqttb_inflight *f = mqttb_window_at(s->win, slot);
      rec_sent(s, &f->d, pid, f->state);
    }
  }
  if (rv == MQTTB_ERR_PACKET_TOO_LARGE) {
    drop(s, "larger than the client's Maximum Packet Size");
    dlv_done(s, d);
  } else if (rv != 0) {
    mqttb_tx_fail(set->hub, s->tx, MQTTB_ERR_CONN_NOMEM);
    drop(s, "out of memory");
    dlv_done(s, d);
  }
}

/* Send a QoS 0 delivery now. Takes d. */
static void send_qos0(mqttb_session *s, mqttb_dlv *d) {
  mqttb_sessions *set = s->set;
  uint64_t max = set->ctx->settings.max_output_bytes;
  if (!may_read(s, d)) {
    dlv_done(s, d);
    return;
  }
  if (max && mqttb_outq_pending(&s->tx->q) > max) {
    /* A client that does not read loses QoS 0 first. */
    drop(s, "output backlog above max_output_bytes");
    dlv_done(s, d);
    return;
  }
  int rv = mqttb_tx_publish(set->hub, s->tx, d->msg, 0, d->retain, d->ids, d->nids, false, 0);
  if (rv == MQTTB_ERR_PACKET_TOO_LARGE) {
    drop(s, "larger than the client's Maximum Packet Size");
  } else if (rv != 0) {
    mqttb_tx_fail(set->hub, s->tx, MQTTB_ERR_CONN_NOMEM);
    drop(s, "out of memory");
  }
  dlv_done(s, d);
}

/* Room in the queue ring for one more; false on out-of-memory. */
static bool queue_room(mqttb_session *s) {
  if (s->qcount < s->qcap)
    return true;
  const mqttb_mem *mem = &s->set->ctx->mem;
  size_t ncap = s->qcap ? (size_t)s->qcap * 2 : 8;
  mqttb_dlv *q = ncap <= UINT32_MAX ? mqttb_mem_malloc(mem, ncap * sizeof(*q)) : NULL;
  if (!q)
    return false;
  for (size_t i = 0; i < s->qcount; i++)
    q[i] = s->queue[(s->qhead + i) % s->qcap];
  mqttb_mem_free(mem, s->queue);
  s->queue = q;
  s->qcap = (uint32_t)ncap;
  s->qhead = 0;
  return true;
}

int mqttb_session_put_back(mqttb_session *s, mqttb_dlv *d, uint16_t pid, uint8_t state) {
  mqttb_sessions *set = s->set;
  const mqttb_mem *mem = &set->ctx->mem;
  if (pid) {
    if (!s->win && (s->win = mqttb_mem_malloc(mem, sizeof(*s->win))) != NULL)
      mqttb_window_init(s->win);
    if (!s->win)
      return MQTTB_ERR_NOMEM;
    if (mqttb_window_find(s->win, pid) != MQTTB_WINDOW_END)
      return MQTTB_ERR_INVALID_ARGUMENT;
    return mqttb_window_add_pid(s->win, mem, d, state, pid) == MQTTB_WINDOW_END ? MQTTB_ERR_NOMEM
                                                                                : 0;
  }
  if (!d->msg)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (!queue_room(s))
    return MQTTB_ERR_NOMEM;
  s->queue[(s->qhead + s->qcount) % s->qcap] = *d;
  s->qcount++;
  s->queued_bytes += d->msg->payload_len;
  set->queued_bytes_total += d->msg->payload_len;
  return 0;
}

/* Takes d. */
static void enqueue(mqttb_session *s, mqttb_dlv *d) {
  mqttb_sessions *set = s->set;
  const mqttb_settings *st = &set->ctx->settings;
  const char *why = NULL;
  if (st->max_queued_messages && s->qcount >= st->max_queued_messages)
    why = "queue full (max_queued_messages)";
  else if (st->max_queued_bytes && s->queued_bytes + d->msg->payload_len > st->max_queued_bytes)
    why = "queue full (max_queued_bytes)";
  else if (st->max_queued_bytes_total &&
           set->queued_bytes_total + d->msg->payload_len > st->max_queued_bytes_total)
    why = "all queues full (max_queued_bytes_total)";
  if (!why && !queue_room(s))
    why = "out of memory";
  if (why) {
    drop(s, why);
    dlv_free(set, d);
    return;
  }
  mqttb_dlv *q = &s->queue[(s->qhead + s->qcount) % s->qcap];
  *q = *d;
  s->qcount++;
  rec_dlv(s, q, 0, 0);
  s->queued_bytes += d->msg->payload_len;
  set->queued_bytes_total += d->msg->payload_len;
}

void mqttb_session_deliver(mqttb_session *s, mqttb_msg *msg, uint8_t qos, bool retain,
                           mqttb_share *share, const uint32_t *ids, size_t nids) {
  mqttb_sessions *set = s->set;
  if (mqttb_msg_expired(msg, set->ctx->now)) {
    drop(s, "message expired");
    return;
  }
  if (s->host) {
    host_push(s, msg, qos, retain);
    return;
  }
  mqttb_dlv d = {.msg = msg, .share = share, .nids = (uint16_t)nids, .qos = qos, .retain = retain};
  if (nids > 0) {
    d.ids = mqttb_mem_malloc(&set->ctx->mem, nids * sizeof(*ids));
    if (!d.ids) {
      drop(s, "out of memory");
      return;
    }
    memcpy(d.ids, ids, nids * sizeof(*ids));
  }
  mqttb_msg_ref(msg);
  if (share)
    share->refs++;
  if (qos == 0) {
    if (connected(s))
      send_qos0(s, &d);
    else if (set->ctx->settings.queue_qos0_messages && s->expiry_interval > 0)
      enqueue(s, &d);
    else {
      drop(s, "QoS 0 message for an offline client");
      dlv_free(set, &d);
    }
    return;
  }
  /* Order is kept: nothing overtakes what is already queued. */
  if (connected(s) && s->qcount == 0 && ninflight(s) < max_inflight(s)) {
    send_inflight(s, &d);
    return;
  }
  enqueue(s, &d);
  pump(s);
}

static void pump_queue(mqttb_session *s) {
  mqttb_sessions *set = s->set;
  while (s->qcount > 0 && connected(s)) {
    mqttb_dlv *it = &s->queue[s->qhead];
    bool expired = mqttb_msg_expired(it->msg, set->ctx->now);
    if (!expired && it->qos > 0 && ninflight(s) >= max_inflight(s))
      break;
    mqttb_dlv d = *it;
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qcount--;
    s->queued_bytes -= d.msg->payload_len;
    set->queued_bytes_total -= d.msg->payload_len;
    if (expired) {
      /* [MQTT-3.3.2-5]: not delivered once its expiry interval passed. */
      drop(s, "message expired");
      dlv_done(s, &d);
    } else if (d.qos == 0) {
      send_qos0(s, &d);
    } else {
      send_inflight(s, &d);
    }
  }
}

void mqttb_session_resume(mqttb_session *s) {
  /* Re-send unacknowledged PUBLISH with DUP set, and PUBREL for messages
   * whose PUBREC was seen [MQTT-4.4.0-1]. */
  mqttb_window *w = s->win;
  uint32_t next = w ? w->head : MQTTB_WINDOW_END;
  while (next != MQTTB_WINDOW_END && connected(s)) {
    uint32_t slot = next;
    mqttb_inflight *f = mqttb_window_at(w, slot);
    next = f->next;
    int rv;
    if (f->state == MQTTB_INF_PUBCOMP)
      rv = mqttb_tx_ack(s->set->hub, s->tx, MQTTB_PKT_PUBREL, f->pid, 0);
    else
      rv = mqttb_tx_publish(s->set->hub, s->tx, f->d.msg, f->d.qos, f->d.retain, f->d.ids,
                            f->d.nids, true, f->pid);
    if (rv == MQTTB_ERR_PACKET_TOO_LARGE) {
      /* The client now accepts smaller packets than when it was sent. */
      drop(s, "larger than the client's Maximum Packet Size");
      dlv_done(s, &f->d);
      mqttb_window_remove(w, slot);
    } else if (rv != 0) {
      mqttb_tx_fail(s->set->hub, s->tx, MQTTB_ERR_CONN_NOMEM);
    }
  }
  pump(s);
}

static mqttb_inflight *find_inflight(mqttb_session *s, uint16_t pid, uint32_t *slot) {
  *slot = s->win ? mqttb_window_find(s->win, pid) : MQTTB_WINDOW_END;
  return *slot == MQTTB_WINDOW_END ? NULL : mqttb_window_at(s->win, *slot);
}

static void inflight_remove(mqttb_session *s, uint32_t slot) {
  dlv_done(s, &mqttb_window_at(s->win, slot)->d);
  mqttb_window_remove(s->win, slot);
}

int mqttb_session_on_puback(mqttb_session *s, uint16_t pid) {
  uint32_t idx;
  mqttb_inflight *f = find_inflight(s, pid, &idx);
  if (!f) {
    mqttb_log(s->set->ctx, MQTTB_LOG_DEBUG, "client %.*s: PUBACK for unknown packet id %u",
              mqttb_log_cut(s->id_len), s->client_id, pid);
    return 0;
  }
  if (f->state != MQTTB_INF_PUBACK)
    return MQTTB_ERR_PROTOCOL; /* a QoS 2 message */
  inflight_remove(s, idx);
  pump(s);
  return 0;
}

int mqttb_session_on_pubrec(mqttb_session *s, uint16_t pid, uint8_t reason, bool *rel,
                            uint8_t *rel_reason) {
  uint32_t idx;
  mqttb_inflight *f = find_inflight(s, pid, &idx);
  *rel = false;
  if (f && f->state == MQTTB_INF_PUBACK)
    return MQTTB_ERR_PROTOCOL; /* a QoS 1 message */
  if (f && f->state == MQTTB_INF_PUBREC && reason >= 0x80) {
    /* MQTT 5: the client refused the message; the flow ends here. */
    inflight_remove(s, idx);
    pump(s);
    return 0;
  }
  if (f && f->state == MQTTB_INF_PUBREC) {
    /* The message is now the client's; keep only the packet id's state. */
    f->state = MQTTB_INF_PUBCOMP;
    rec_sent(s, &f->d, pid, MQTTB_INF_PUBCOMP);
    if (f->d.store_id)
      mqttb_store_msg_unref(s->set->store, f->d.msg);
    mqttb_msg_unref(&s->set->ctx->mem, f->d.msg);
    f->d.msg = NULL;
    if (f->d.share)
      mqttb_share_unref(s->set, f->d.share);
    f->d.share = NULL;
  } else if (!f) {
    mqttb_log(s->set->ctx, MQTTB_LOG_DEBUG, "client %.*s: PUBREC for unknown packet id %u",
              mqttb_log_cut(s->id_len), s->client_id, pid);
  }
  /* PUBREL even for a duplicate or unknown id, so the client can finish its
   * side of the flow. */
  *rel = true;
  *rel_reason = f ? 0 : MQTTB_REASON_PACKET_ID_NOT_FOUND;
  return 0;
}

int mqttb_session_on_pubcomp(mqttb_session *s, uint16_t pid) {
  uint32_t idx;
  mqttb_inflight *f = find_inflight(s, pid, &idx);
  if (!f) {
    mqttb_log(s->set->ctx, MQTTB_LOG_DEBUG, "client %.*s: PUBCOMP for unknown packet id %u",
              mqttb_log_cut(s->id_len), s->client_id, pid);
    return 0;
  }
  if (f->state != MQTTB_INF_PUBCOMP)
    return MQTTB_ERR_PROTOCOL; /* a QoS 1 message, or before PUBREC */
  inflight_remove(s, idx);
  pump(s);
  return 0;
}

bool mqttb_session_qos2_has(const mqttb_session *s, uint16_t pid) {
  return s->in_qos2 && mqttb_pidmap_get(s->in_qos2, pid, NULL);
}

int mqttb_session_qos2_add(mqttb_session *s, uint16_t pid) {
  const mqttb_mem *mem = &s->set->ctx->mem;
  if (!s->in_qos2 && !(s->in_qos2 = mqttb_mem_calloc(mem, 1, sizeof(*s->in_qos2))))
    return MQTTB_ERR_NOMEM;
  return mqttb_pidmap_put(s->in_qos2, mem, pid, 0);
}

void mqttb_session_qos2_commit(mqttb_session *s, uint16_t pid, mqttb_msg *msg) {
  mqttb_store *st = store_on(s->set);
  bool pending = msg->store_pending;
  msg->store_pending = false;
  if (!st)
    return;
  if (s->store_id) {
    mqttb_rec_begin(st, MQTTB_REC_QOS2_IN);
    mqttb_rec_uint(st, MQTTB_F_S_ID, s->store_id);
    mqttb_rec_uint(st, MQTTB_F_Q_PID, pid);
    if (pending && msg->store_refs)
      mqttb_rec_uint(st, MQTTB_F_Q_MSG, msg->store_id);
    mqttb_rec_emit(st);
  } else if (pending && msg->store_refs) {
    mqttb_rec_begin(st, MQTTB_REC_COMMIT);
    mqttb_rec_uint(st, MQTTB_F_MSG_ID, msg->store_id);
    mqttb_rec_emit(st);
  }
}

bool mqttb_session_qos2_del(mqttb_session *s, uint16_t pid) {
  if (!s->in_qos2 || !mqttb_pidmap_del(s->in_qos2, pid))
    return false;
  mqttb_store *st = recorded(s);
  if (st) {
    mqttb_rec_begin(st, MQTTB_REC_QOS2_IN_DEL);
    mqttb_rec_uint(st, MQTTB_F_S_ID, s->store_id);
    mqttb_rec_uint(st, MQTTB_F_Q_PID, pid);
    mqttb_rec_emit(st);
  }
  return true;
}

uint32_t mqttb_session_qos2_count(const mqttb_session *s) {
  return s->in_qos2 ? s->in_qos2->count : 0;
}

/* ---- attaching, leaving, expiry, wills ---- */

void mqttb_session_reclaim(mqttb_session *s) {
  mqttb_sessions *set = s->set;
  if (s->offline) {
    s->offline = false;
    set->ctx->stats.clients_disconnected--;
  }
  mqttb_timers_remove(set->timers, &s->timer);
  s->expires_at = UINT64_MAX;
}

void mqttb_session_drop_will(mqttb_session *s) {
  mqttb_msg_unref(&s->set->ctx->mem, s->will);
  s->will = NULL;
}

mqttb_msg *mqttb_session_take_will(mqttb_session *s) {
  mqttb_msg *will = s->will;
  s->will = NULL;
  return will;
}

mqttb_msg *mqttb_session_take_due_will(mqttb_session *s, uint64_t now) {
  if (!s->will || s->will_at > now)
    return NULL;
  mqttb_msg *will = mqttb_session_take_will(s);
  if (s->store_will)
    mqttb_session_record(s); /* published: not again after a restart */
  return will;
}

void mqttb_session_restored(mqttb_session *s, bool was_online) {
  mqttb_sessions *set = s->set;
  if (was_online)
    s->expires_at = s->expiry_interval == UINT32_MAX
                        ? UINT64_MAX
                        : set->ctx->now + (uint64_t)s->expiry_interval * 1000u;
  if (!s->offline) {
    s->offline = true;
    set->ctx->stats.clients_disconnected++;
  }
  arm(s);
}

void mqttb_session_attach(mqttb_session *s, mqttb_tx *tx) {
  s->tx = tx;
}

/* Arm the timer for the next of expiry and will delay. False when that
 * failed: without a timer the session would outlive its interval, so it
 * ends now rather than be kept for ever. */
static bool arm(mqttb_session *s) {
  mqttb_sessions *set = s->set;
  uint64_t dl = s->expires_at;
  if (s->will && s->will_at < dl)
    dl = s->will_at;
  if (dl == UINT64_MAX) {
    mqttb_timers_remove(set->timers, &s->timer);
  } else if (mqttb_timers_set(set->timers, &s->timer, dl) != 0) {
    mqttb_log(set->ctx, MQTTB_LOG_ERROR, "out of memory: ending session %.*s early",
              mqttb_log_cut(s->id_len), s->client_id);
    return false;
  }
  return true;
}

mqttb_session_due mqttb_session_detach(mqttb_session *s, mqttb_msg *will, uint32_t will_delay) {
  mqttb_sessions *set = s->set;
  mqttb_session_due due = {NULL, false};
  s->tx = NULL;
  if (will) {
    if (s->expiry_interval == 0 || will_delay == 0) {
      due.will = mqttb_msg_ref(will);
    } else {
      /* [MQTT-3.1.3-9]: published after the delay, or when the session
       * ends, unless the client comes back first. */
      uint32_t delay = will_delay < s->expiry_interval ? will_delay : s->expiry_interval;
      s->will = mqttb_msg_ref(will);
      s->will_at = set->ctx->now + (uint64_t)delay * 1000u;
    }
  }
  if (s->expiry_interval == 0) {
    due.end = true;
    return due;
  }
  s->offline = true;
  set->ctx->stats.clients_disconnected++;
  s->expires_at = s->expiry_interval == UINT32_MAX
                      ? UINT64_MAX
                      : set->ctx->now + (uint64_t)s->expiry_interval * 1000u;
  due.end = !arm(s);
  if (!due.end)
    mqttb_session_record(s);
  return due;
}

void mqttb_session_each_shared(mqttb_session *s, void (*fn)(const mqttb_dlv *d, void *ctx),
                               void *ctx) {
  for (uint32_t i = s->win ? s->win->head : MQTTB_WINDOW_END; i != MQTTB_WINDOW_END;) {
    const mqttb_inflight *f = mqttb_window_at(s->win, i);
    i = f->next;
    if (f->state != MQTTB_INF_PUBCOMP && f->d.share)
      fn(&f->d, ctx);
  }
  for (size_t i = 0; i < s->qcount; i++) {
    const mqttb_dlv *d = &s->queue[(s->qhead + i) % s->qcap];
    if (d->share)
      fn(d, ctx);
  }
}

mqttb_session_due mqttb_session_on_timer(mqttb_session *s, uint64_t now) {
  mqttb_session_due due = {mqttb_session_take_due_will(s, now), false};
  if (!s->tx && s->expires_at <= now) {
    mqttb_log(s->set->ctx, MQTTB_LOG_DEBUG, "session %.*s expired", mqttb_log_cut(s->id_len),
              s->client_id);
    due.end = true;
    return due;
  }
  due.end = !arm(s);
  return due;
}
