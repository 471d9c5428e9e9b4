/* SPDX-License-Identifier: MIT */
/* Fan-out, shared groups, the retained store and the end of sessions. See
 * router.h. */
#include "router.h"

#include <string.h>

int mqttb_router_init(mqttb_router *r, mqttb_ctx *ctx, mqttb_sessions *sessions) {
  memset(r, 0, sizeof(*r));
  r->ctx = ctx;
  r->sessions = sessions;
  return mqttb_trie_init(&r->retained, &ctx->mem);
}

void mqttb_router_free(mqttb_router *r) {
  if (!r->ctx)
    return; /* never initialised */
  const mqttb_mem *mem = &r->ctx->mem;
  mqttb_trie_free(&r->retained);
  mqttb_mem_free(mem, r->match);
  mqttb_mem_free(mem, r->share_match);
  r->match = NULL;
  r->share_match = NULL;
}

/* ---------------------------------------------------------------- fan-out */

static void collect(mqttb_sub *sub, void *ctx) {
  mqttb_router *r = ctx;
  const mqttb_mem *mem = &r->ctx->mem;
  mqttb_session *s = sub->session;
  mqttb_match *m = &s->match;
  /* MQTT 5 No Local: not back to the client that published [MQTT-3.8.3-3]. */
  if ((sub->opts & MQTTB_SUB_NO_LOCAL) && (s == r->publisher || (r->host_publisher && s->host)))
    return;
  if (m->gen != r->match_gen) {
    if (r->nmatch == r->match_cap) {
      void *arr = r->match;
      if (mqttb_mem_grow(mem, &arr, &r->match_cap, r->nmatch + 1, sizeof(*r->match)) != 0) {
        r->ctx->stats.publish_dropped++;
        return;
      }
      r->match = arr;
    }
    m->gen = r->match_gen;
    m->qos = sub->qos;
    m->rap = (sub->opts & MQTTB_SUB_RETAIN_AS_PUBLISHED) != 0;
    m->nids = 0;
    r->match[r->nmatch++] = s;
  } else {
    /* Overlapping subscriptions: one copy at the highest QoS, carrying
     * every matching subscription identifier [MQTT-3.3.4-3]. */
    if (sub->qos > m->qos)
      m->qos = sub->qos;
    if (sub->opts & MQTTB_SUB_RETAIN_AS_PUBLISHED)
      m->rap = true;
  }
  if (sub->sub_id) {
    void *arr = m->ids;
    if (mqttb_mem_grow32(mem, &arr, &m->ids_cap, m->nids + 1, sizeof(*m->ids)) == 0) {
      m->ids = arr;
      m->ids[m->nids++] = sub->sub_id;
    }
  }
}

/* Pick a member of a shared group for a message, round robin, preferring
 * connected clients; never `not`. NULL when there is none. */
static mqttb_sub *share_pick(mqttb_share *sh, const mqttb_session * not ) {
  mqttb_sub *fallback = NULL;
  for (size_t k = 0; k < sh->nmembers; k++) {
    size_t i = (sh->next + k) % sh->nmembers;
    mqttb_sub *m = sh->members[i];
    if (m->session == not )
      continue;
    if (mqttb_session_online(m->session)) {
      sh->next = i + 1;
      return m;
    }
    if (!fallback)
      fallback = m;
  }
  if (fallback)
    sh->next = fallback->node_idx + 1;
  return fallback;
}

static void collect_share(mqttb_share *sh, void *ctx) {
  mqttb_router *r = ctx;
  mqttb_sub *m = share_pick(sh, NULL);
  if (!m)
    return;
  void *arr = r->share_match;
  if (mqttb_mem_grow(&r->ctx->mem, &arr, &r->share_match_cap, r->nshare_match + 1,
                     sizeof(*r->share_match)) != 0) {
    r->ctx->stats.publish_dropped++;
    return;
  }
  r->share_match = arr;
  r->share_match[r->nshare_match++] = m;
}

size_t mqttb_router_publish_host(mqttb_router *r, mqttb_msg *msg) {
  r->host_publisher = true;
  size_t n = mqttb_router_publish(r, msg, NULL);
  r->host_publisher = false;
  return n;
}

size_t mqttb_router_publish(mqttb_router *r, mqttb_msg *msg, mqttb_session *publisher) {
  mqttb_ctx *ctx = r->ctx;
  /* The scratch state and the trie walk below must not be re-entered from
   * a callback (want_write, log): the host calls refuse meanwhile. */
  ctx->host_blocked++;
  if (msg->expiry_interval && msg->expiry_at == UINT64_MAX)
    msg->expiry_at = ctx->now + (uint64_t)msg->expiry_interval * 1000u; /* a will */
  if (msg->retain && ctx->settings.retain_available)
    mqttb_router_retain(r, msg);
  r->match_gen++;
  r->nmatch = 0;
  r->nshare_match = 0;
  r->publisher = publisher;
  bool found = mqttb_trie_match_subs(&r->sessions->subs, MQTTB_MSG_TOPIC(msg), msg->topic_len,
                                     collect, collect_share, r) == 0;
  r->publisher = NULL;
  if (!found) {
    /* Some subscribers were not found: none gets it. */
    mqttb_log(ctx, MQTTB_LOG_WARNING, "out of memory while matching %.*s: message dropped",
              mqttb_log_cut(msg->topic_len), MQTTB_MSG_TOPIC(msg));
    ctx->stats.publish_dropped++;
    r->nmatch = 0;
    r->nshare_match = 0;
  }
  for (size_t i = 0; i < r->nmatch; i++) {
    mqttb_session *s = r->match[i];
    uint8_t qos = msg->qos < s->match.qos ? msg->qos : s->match.qos;
    /* Forwarded messages carry retain 0 [MQTT-3.3.1-9] unless the
     * subscription asked for Retain As Published (MQTT 5). */
    mqttb_session_deliver(s, msg, qos, s->match.rap && msg->retain, NULL, s->match.ids,
                          s->match.nids);
  }
  for (size_t i = 0; i < r->nshare_match; i++) {
    mqttb_sub *m = r->share_match[i];
    uint8_t qos = msg->qos < m->qos ? msg->qos : m->qos;
    bool retain = (m->opts & MQTTB_SUB_RETAIN_AS_PUBLISHED) && msg->retain;
    mqttb_session_deliver(m->session, msg, qos, retain, m->share, &m->sub_id, m->sub_id ? 1u : 0u);
  }
  size_t n = r->nmatch + r->nshare_match;
  ctx->work += n;
  r->nmatch = 0;
  r->nshare_match = 0;
  ctx->host_blocked--;
  return found ? n : MQTTB_ROUTER_NOMEM;
}

/* ---------------------------------------------------------------- retained */

/* The store, when the retained message of m's topic is in it (the slot
 * holds a recorded reference): not the broker's own $SYS tree, which it
 * rebuilds. */
static mqttb_store *retain_store(const mqttb_router *r, const mqttb_msg *m) {
  mqttb_store *st = r->sessions->store;
  if (!st || !r->ctx->cb.store ||
      mqttb_sys_topic((const uint8_t *)MQTTB_MSG_TOPIC(m), m->topic_len))
    return NULL;
  return st;
}

static void retained_clear(mqttb_router *r, mqttb_tnode *n) {
  mqttb_store *st = retain_store(r, n->retained);
  if (st) {
    if (mqttb_store_on(st)) {
      mqttb_rec_begin(st, MQTTB_REC_RETAIN_DEL);
      mqttb_rec_bytes(st, MQTTB_F_MSG_TOPIC, MQTTB_MSG_TOPIC(n->retained), n->retained->topic_len);
      mqttb_rec_emit(st);
    }
    mqttb_store_msg_unref(st, n->retained);
  }
  mqttb_msg_unref(&r->ctx->mem, n->retained);
  n->retained = NULL;
  r->ctx->stats.retained_count--;
  mqttb_trie_prune(&r->retained, n);
}

void mqttb_router_retain(mqttb_router *r, mqttb_msg *msg) {
  const char *topic = MQTTB_MSG_TOPIC(msg);
  if (msg->payload_len == 0) {
    /* A zero-length retained message clears the topic [MQTT-3.3.1-10]. */
    mqttb_tnode *n = mqttb_trie_find(&r->retained, topic, msg->topic_len);
    if (n && n->retained)
      retained_clear(r, n);
    return;
  }
  mqttb_tnode *n = mqttb_trie_insert(&r->retained, topic, msg->topic_len);
  if (!n) {
    mqttb_log(r->ctx, MQTTB_LOG_WARNING, "out of memory: retained message on %.*s not stored",
              mqttb_log_cut(msg->topic_len), topic);
    return;
  }
  mqttb_msg *old = n->retained;
  if (!old)
    r->ctx->stats.retained_count++;
  n->retained = mqttb_msg_ref(msg);
  mqttb_store *st = retain_store(r, msg);
  if (st) {
    uint64_t id = mqttb_store_msg_ref(st, msg);
    if (mqttb_store_on(st)) {
      mqttb_rec_begin(st, MQTTB_REC_RETAIN);
      mqttb_rec_uint(st, MQTTB_F_MSG_ID, id);
      mqttb_rec_emit(st);
    }
  }
  if (old) {
    mqttb_store_msg_unref(st, old);
    mqttb_msg_unref(&r->ctx->mem, old);
  }
}

typedef struct expired_ctx {
  mqttb_router *r;
  mqttb_msg **found;
  size_t n, cap;
} expired_ctx;

static void collect_expired(mqttb_msg *m, void *ctx) {
  expired_ctx *e = ctx;
  if (!mqttb_msg_expired(m, e->r->ctx->now))
    return;
  void *arr = e->found;
  if (mqttb_mem_grow(&e->r->ctx->mem, &arr, &e->cap, e->n + 1, sizeof(*e->found)) != 0)
    return; /* tried again at the next sweep */
  e->found = arr;
  e->found[e->n++] = mqttb_msg_ref(m);
}

void mqttb_router_retain_sweep(mqttb_router *r) {
  /* Collect first: removing prunes trie nodes, which a walk must not see. */
  expired_ctx e = {r, NULL, 0, 0};
  static const char all[] = "#";
  mqttb_trie_match_retained(&r->retained, all, 1, collect_expired, &e);
  for (size_t i = 0; i < e.n; i++) {
    mqttb_msg *m = e.found[i];
    mqttb_tnode *n = mqttb_trie_find(&r->retained, MQTTB_MSG_TOPIC(m), m->topic_len);
    if (n && n->retained == m)
      retained_clear(r, n);
    mqttb_msg_unref(&r->ctx->mem, m);
  }
  mqttb_mem_free(&r->ctx->mem, e.found);
}

typedef struct retained_ctx {
  mqttb_session *s;
  uint64_t now;
  uint8_t qos;
  uint32_t sub_id;
  int rv;
} retained_ctx;

static void queue_retained(mqttb_msg *m, void *ctx) {
  retained_ctx *rc = ctx;
  /* Past its Message Expiry Interval it is no longer retained [MQTT-3.3.2-5]. */
  if (rc->rv != 0 || mqttb_msg_expired(m, rc->now))
    return;
  rc->rv = mqttb_session_retained_push(rc->s, m, rc->qos, rc->sub_id);
}

int mqttb_router_send_retained(mqttb_router *r, mqttb_session *s, const char *filter, size_t len,
                               uint8_t qos, uint32_t sub_id) {
  retained_ctx rc = {s, r->ctx->now, qos, sub_id, 0};
  int rv = mqttb_trie_match_retained(&r->retained, filter, len, queue_retained, &rc);
  mqttb_router_pump_retained(r, s);
  return rv ? rv : rc.rv;
}

void mqttb_router_pump_retained(mqttb_router *r, mqttb_session *s) {
  /* At most a work budget of them per call: each call follows output being
   * written, so the rest go out as the next output is. */
  uint32_t budget = r->ctx->settings.work_budget, sent = 0;
  const mqttb_ret_item *it;
  while ((it = mqttb_session_retained_front(s)) != NULL && (!budget || sent < budget)) {
    mqttb_msg *m = it->msg;
    uint8_t qos = m->qos < it->qos ? m->qos : it->qos;
    if (!mqttb_session_has_room(s, qos))
      return;
    /* Still retained, and not expired: a message that replaced it was
     * retained too and went to this subscriber live. */
    mqttb_tnode *n = mqttb_trie_find(&r->retained, MQTTB_MSG_TOPIC(m), m->topic_len);
    if (n && n->retained == m && !mqttb_msg_expired(m, r->ctx->now)) {
      uint32_t sub_id = it->sub_id;
      r->ctx->work++;
      sent++;
      mqttb_session_deliver(s, m, qos, true, NULL, &sub_id, sub_id ? 1u : 0u);
    }
    mqttb_session_retained_pop(s);
  }
}

/* ---------------------------------------------------------------- endings */

static void publish_will(mqttb_router *r, mqttb_msg *will) {
  if (will) {
    mqttb_router_publish(r, will, NULL);
    mqttb_msg_unref(&r->ctx->mem, will);
  }
}

typedef struct reroute_ctx {
  mqttb_session *from;
} reroute_ctx;

static void reroute(const mqttb_dlv *d, void *ctx) {
  reroute_ctx *rc = ctx;
  if (!d->msg || !d->share->node)
    return;
  mqttb_sub *m = share_pick(d->share, rc->from);
  if (!m)
    return;
  uint8_t qos = d->qos < m->qos ? d->qos : m->qos;
  mqttb_session_deliver(m->session, d->msg, qos, d->retain, d->share, d->ids, d->nids);
}

void mqttb_router_end_session(mqttb_router *r, mqttb_session *s) {
  publish_will(r, mqttb_session_take_will(s));
  /* Messages that came through a shared subscription go to another member
   * of the group rather than be lost with this session. */
  mqttb_session_unsubscribe_all(s);
  reroute_ctx rc = {s};
  mqttb_session_each_shared(s, reroute, &rc);
  mqttb_session_del(s);
}

void mqttb_router_do(mqttb_router *r, mqttb_session *s, mqttb_session_due due) {
  publish_will(r, due.will);
  if (due.end)
    mqttb_router_end_session(r, s);
}
