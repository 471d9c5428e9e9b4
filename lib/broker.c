/* SPDX-License-Identifier: MIT */
/* The broker: settings, the client-id -> session map, fan-out, the retained
 * store and timers. */
#include <string.h>

#include "internal.h"

void mqttb_settings_default_versioned(int settings_version, mqttb_settings *s) {
  (void)settings_version;
  if (!s)
    return;
  memset(s, 0, sizeof(*s));
  s->max_packet_size = MQTTB_MAX_REMAINING_LENGTH + 5u;
  s->max_inflight_messages = 20;
  s->max_queued_messages = 1000;
  s->max_queued_bytes = 0;
  s->max_connections = 0;
  s->connect_timeout_ms = 10000;
  s->max_keepalive = 0;
  s->queue_qos0_messages = 0;
  s->allow_zero_length_clientid = 1;
  s->auto_id_prefix = "auto-";
  s->retain_available = 1;
  s->sys_interval_ms = 10000;
  s->receive_maximum = 65535;
  s->topic_alias_maximum = 10;
  s->max_qos = 2;
  s->wildcard_subscriptions = 1;
  s->subscription_identifiers = 1;
  s->shared_subscriptions = 1;
  s->response_information = NULL;
  s->max_subscriptions = 10000;
  s->max_topic_levels = 128;
  s->max_queued_bytes_total = 268435456u;
  s->max_output_bytes = 1048576u;
  s->output_stall_timeout_ms = 60000;
}

const char *mqttb_version(void) {
  return MQTTB_VERSION_STRING;
}

int mqttb_broker_new_versioned(mqttb_broker **pb, int settings_version,
                               const mqttb_settings *settings, const mqttb_callbacks *callbacks,
                               const mqttb_mem *mem, void *user_data) {
  if (!pb)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (settings_version != MQTTB_SETTINGS_VERSION)
    return MQTTB_ERR_VERSION;
  if (!mem)
    mem = mqttb_mem_default();
  if (!mem->malloc || !mem->free || !mem->calloc || !mem->realloc)
    return MQTTB_ERR_INVALID_ARGUMENT;
  mqttb_broker *b = mem->calloc(1, sizeof(*b), mem->user_data);
  if (!b)
    return MQTTB_ERR_NOMEM;
  b->mem = *mem;
  if (settings)
    b->settings = *settings;
  else
    mqttb_settings_default(&b->settings);
  const char *prefix = b->settings.auto_id_prefix ? b->settings.auto_id_prefix : "";
  size_t plen = strlen(prefix);
  if (plen > sizeof(b->auto_id_prefix) - 1)
    plen = sizeof(b->auto_id_prefix) - 1;
  memcpy(b->auto_id_prefix, prefix, plen);
  b->auto_id_prefix[plen] = '\0';
  b->settings.auto_id_prefix = b->auto_id_prefix;
  if (b->settings.max_packet_size == 0 ||
      b->settings.max_packet_size > MQTTB_MAX_REMAINING_LENGTH + 5u)
    b->settings.max_packet_size = MQTTB_MAX_REMAINING_LENGTH + 5u;
  if (b->settings.max_qos > 2)
    b->settings.max_qos = 2;
  if (b->settings.receive_maximum == 0)
    b->settings.receive_maximum = 65535;
  if (b->settings.response_information) {
    size_t n = strlen(b->settings.response_information);
    b->response_information = mqttb_mem_malloc(&b->mem, n + 1);
    if (!b->response_information) {
      mqttb_mem_free(&b->mem, b);
      return MQTTB_ERR_NOMEM;
    }
    memcpy(b->response_information, b->settings.response_information, n + 1);
    b->settings.response_information = b->response_information;
  }
  if (callbacks)
    b->cb = *callbacks;
  b->user_data = user_data;
  b->sys_next = UINT64_MAX;
  if (mqttb_trie_init(&b->subs, &b->mem) != 0 || mqttb_trie_init(&b->retained, &b->mem) != 0 ||
      mqttb_sys_init(b) != 0) {
    mqttb_trie_free(&b->subs, &b->mem);
    mqttb_trie_free(&b->retained, &b->mem);
    mqttb_mem_free(&b->mem, b->response_information);
    mqttb_mem_free(&b->mem, b);
    return MQTTB_ERR_NOMEM;
  }
  *pb = b;
  return MQTTB_OK;
}

void mqttb_broker_del(mqttb_broker *b) {
  if (!b)
    return;
  /* Connections the embedder did not delete are freed too. */
  while (b->conns) {
    mqttb_conn *c = b->conns;
    if (c->state < MQTTB_CONN_CLOSING) {
      c->close_notified = true;
      mqttb_conn_close(c, MQTTB_ERR_SHUTDOWN);
    }
    mqttb_conn_free(c);
  }
  /* Every remaining session is offline and persistent. */
  while (b->sessions.count > 0) {
    for (uint32_t i = 0; i < b->sessions.cap; i++) {
      if (b->sessions.e[i].key) {
        mqttb_session_del(b->sessions.e[i].val);
        break;
      }
    }
  }
  mqttb_map_free(&b->sessions, &b->mem);
  mqttb_map_free(&b->shares, &b->mem);
  mqttb_mem_free(&b->mem, b->share_match);
  mqttb_mem_free(&b->mem, b->response_information);
  mqttb_trie_free(&b->subs, &b->mem);
  mqttb_trie_free(&b->retained, &b->mem);
  mqttb_mem_free(&b->mem, b->timers);
  mqttb_mem_free(&b->mem, b->match);
  mqttb_mem_free(&b->mem, b->walk);
  mqttb_mem_free(&b->mem, b->doomed);
  mqttb_sys_free(b);
  mqttb_mem mem = b->mem;
  mqttb_mem_free(&mem, b);
}

int mqttb_broker_get_stats(const mqttb_broker *b, mqttb_stats *stats) {
  if (!b || !stats)
    return MQTTB_ERR_INVALID_ARGUMENT;
  *stats = b->stats;
  return MQTTB_OK;
}

/* ---------------------------------------------------------------- fan-out */

static void collect(mqttb_sub *sub, void *ctx) {
  mqttb_broker *b = ctx;
  mqttb_session *s = sub->session;
  /* MQTT 5 No Local: not back to the client that published [MQTT-3.8.3-3]. */
  if ((sub->opts & MQTTB_SUB_NO_LOCAL) && s == b->publisher)
    return;
  if (s->match_gen != b->match_gen) {
    if (b->nmatch == b->match_cap) {
      void *arr = b->match;
      if (mqttb_mem_grow(&b->mem, &arr, &b->match_cap, b->nmatch + 1, sizeof(*b->match)) != 0) {
        b->stats.publish_dropped++;
        return;
      }
      b->match = arr;
    }
    s->match_gen = b->match_gen;
    s->match_qos = sub->qos;
    s->match_rap = (sub->opts & MQTTB_SUB_RETAIN_AS_PUBLISHED) != 0;
    s->nmatch_ids = 0;
    b->match[b->nmatch++] = s;
  } else {
    /* Overlapping subscriptions: one copy at the highest QoS, carrying
     * every matching subscription identifier [MQTT-3.3.4-3]. */
    if (sub->qos > s->match_qos)
      s->match_qos = sub->qos;
    if (sub->opts & MQTTB_SUB_RETAIN_AS_PUBLISHED)
      s->match_rap = true;
  }
  if (sub->sub_id) {
    void *arr = s->match_ids;
    if (mqttb_mem_grow32(&b->mem, &arr, &s->match_ids_cap, s->nmatch_ids + 1,
                         sizeof(*s->match_ids)) == 0) {
      s->match_ids = arr;
      s->match_ids[s->nmatch_ids++] = sub->sub_id;
    }
  }
}

static void collect_share(mqttb_share *sh, void *ctx) {
  mqttb_broker *b = ctx;
  mqttb_sub *m = mqttb_share_pick(sh, NULL);
  if (!m)
    return;
  void *arr = b->share_match;
  if (mqttb_mem_grow(&b->mem, &arr, &b->share_match_cap, b->nshare_match + 1,
                     sizeof(*b->share_match)) != 0) {
    b->stats.publish_dropped++;
    return;
  }
  b->share_match = arr;
  b->share_match[b->nshare_match++] = m;
}

void mqttb_retain_store(mqttb_broker *b, mqttb_msg *msg) {
  const char *topic = MQTTB_MSG_TOPIC(msg);
  if (msg->payload_len == 0) {
    /* A zero-length retained message clears the topic [MQTT-3.3.1-10]. */
    mqttb_tnode *n = mqttb_trie_find(&b->retained, topic, msg->topic_len);
    if (n && n->retained) {
      mqttb_msg_unref(&b->mem, n->retained);
      n->retained = NULL;
      b->stats.retained_count--;
      mqttb_trie_prune(&b->retained, &b->mem, n);
    }
    return;
  }
  mqttb_tnode *n = mqttb_trie_insert(&b->retained, &b->mem, topic, msg->topic_len);
  if (!n) {
    mqttb_log(b, MQTTB_LOG_WARNING, "out of memory: retained message on %.*s not stored",
              (int)msg->topic_len, topic);
    return;
  }
  if (n->retained)
    mqttb_msg_unref(&b->mem, n->retained);
  else
    b->stats.retained_count++;
  n->retained = mqttb_msg_ref(msg);
}

typedef struct expired_ctx {
  mqttb_broker *b;
  mqttb_msg **found;
  size_t n, cap;
} expired_ctx;

static void collect_expired(mqttb_msg *m, void *ctx) {
  expired_ctx *e = ctx;
  if (!mqttb_msg_expired(m, e->b->now))
    return;
  void *arr = e->found;
  if (mqttb_mem_grow(&e->b->mem, &arr, &e->cap, e->n + 1, sizeof(*e->found)) != 0)
    return; /* tried again at the next sweep */
  e->found = arr;
  e->found[e->n++] = mqttb_msg_ref(m);
}

void mqttb_retain_sweep(mqttb_broker *b) {
  /* Collect first: removing prunes trie nodes, which a walk must not see. */
  expired_ctx e = {b, NULL, 0, 0};
  static const char all[] = "#";
  mqttb_trie_match_retained(b, &b->retained, all, 1, collect_expired, &e);
  for (size_t i = 0; i < e.n; i++) {
    mqttb_msg *m = e.found[i];
    mqttb_tnode *n = mqttb_trie_find(&b->retained, MQTTB_MSG_TOPIC(m), m->topic_len);
    if (n && n->retained == m) {
      mqttb_msg_unref(&b->mem, n->retained);
      n->retained = NULL;
      b->stats.retained_count--;
      mqttb_trie_prune(&b->retained, &b->mem, n);
    }
    mqttb_msg_unref(&b->mem, m);
  }
  mqttb_mem_free(&b->mem, e.found);
}

size_t mqttb_broker_publish(mqttb_broker *b, mqttb_msg *msg, mqttb_session *publisher) {
  if (msg->expiry_interval && msg->expiry_at == UINT64_MAX)
    msg->expiry_at = b->now + (uint64_t)msg->expiry_interval * 1000u; /* a will */
  if (msg->retain && b->settings.retain_available)
    mqttb_retain_store(b, msg);
  /* A fan-out can publish wills only through reaping, after it ends, so the
   * match scratch space is never used twice at once. */
  b->match_gen++;
  b->nmatch = 0;
  b->nshare_match = 0;
  b->publisher = publisher;
  if (mqttb_trie_match_subs(b, &b->subs, MQTTB_MSG_TOPIC(msg), msg->topic_len, collect,
                            collect_share, b) != 0)
    mqttb_log(b, MQTTB_LOG_WARNING, "out of memory while matching %.*s", (int)msg->topic_len,
              MQTTB_MSG_TOPIC(msg));
  b->publisher = NULL;
  for (size_t i = 0; i < b->nmatch; i++) {
    mqttb_session *s = b->match[i];
    uint8_t qos = msg->qos < s->match_qos ? msg->qos : s->match_qos;
    /* Forwarded messages carry retain 0 [MQTT-3.3.1-9] unless the
     * subscription asked for Retain As Published (MQTT 5). */
    mqttb_session_deliver(s, msg, qos, s->match_rap && msg->retain, NULL, s->match_ids,
                          s->nmatch_ids);
  }
  for (size_t i = 0; i < b->nshare_match; i++) {
    mqttb_sub *m = b->share_match[i];
    uint8_t qos = msg->qos < m->qos ? msg->qos : m->qos;
    bool retain = (m->opts & MQTTB_SUB_RETAIN_AS_PUBLISHED) && msg->retain;
    mqttb_session_deliver(m->session, msg, qos, retain, m->share, &m->sub_id, m->sub_id ? 1u : 0u);
  }
  size_t n = b->nmatch + b->nshare_match;
  b->nmatch = 0;
  b->nshare_match = 0;
  return n;
}

void mqttb_broker_reap(mqttb_broker *b) {
  while (b->ndoomed > 0) {
    mqttb_conn *c = b->doomed[--b->ndoomed];
    int reason = c->doomed_reason;
    mqttb_conn_close(c, reason);
  }
}

/* ---------------------------------------------------------------- timers */

static size_t *timer_slot(mqttb_timer *t) {
  return t->session ? &((mqttb_session *)t->obj)->timer_idx : &((mqttb_conn *)t->obj)->timer_idx;
}

static void heap_swap(mqttb_broker *b, size_t i, size_t j) {
  mqttb_timer t = b->timers[i];
  b->timers[i] = b->timers[j];
  b->timers[j] = t;
  *timer_slot(&b->timers[i]) = i;
  *timer_slot(&b->timers[j]) = j;
}

static void heap_up(mqttb_broker *b, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (b->timers[p].deadline <= b->timers[i].deadline)
      break;
    heap_swap(b, i, p);
    i = p;
  }
}

static void heap_down(mqttb_broker *b, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < b->ntimers && b->timers[l].deadline < b->timers[m].deadline)
      m = l;
    if (r < b->ntimers && b->timers[r].deadline < b->timers[m].deadline)
      m = r;
    if (m == i)
      break;
    heap_swap(b, i, m);
    i = m;
  }
}

static size_t *obj_slot(void *obj, bool session) {
  return session ? &((mqttb_session *)obj)->timer_idx : &((mqttb_conn *)obj)->timer_idx;
}

int mqttb_timer_set(mqttb_broker *b, void *obj, bool session, uint64_t deadline) {
  size_t *slot = obj_slot(obj, session);
  if (*slot != SIZE_MAX) {
    size_t i = *slot;
    b->timers[i].deadline = deadline;
    heap_up(b, i);
    heap_down(b, *slot);
    return 0;
  }
  void *arr = b->timers;
  if (mqttb_mem_grow(&b->mem, &arr, &b->timers_cap, b->ntimers + 1, sizeof(*b->timers)) != 0)
    return MQTTB_ERR_NOMEM;
  b->timers = arr;
  size_t i = b->ntimers++;
  b->timers[i].deadline = deadline;
  b->timers[i].obj = obj;
  b->timers[i].session = session;
  *slot = i;
  heap_up(b, i);
  return 0;
}

void mqttb_timer_remove(mqttb_broker *b, void *obj, bool session) {
  size_t *slot = obj_slot(obj, session);
  size_t i = *slot;
  if (i == SIZE_MAX)
    return;
  *slot = SIZE_MAX;
  size_t last = --b->ntimers;
  if (i != last) {
    b->timers[i] = b->timers[last];
    *timer_slot(&b->timers[i]) = i;
    heap_up(b, i);
    heap_down(b, *timer_slot(&b->timers[i]));
  }
}

uint64_t mqttb_broker_next_deadline(const mqttb_broker *b) {
  if (!b)
    return UINT64_MAX;
  uint64_t dl = b->sys_next;
  if (b->ntimers > 0 && b->timers[0].deadline < dl)
    dl = b->timers[0].deadline;
  return dl;
}

int mqttb_broker_handle_timers(mqttb_broker *b, uint64_t now) {
  if (!b)
    return MQTTB_ERR_INVALID_ARGUMENT;
  b->now = now;
  while (b->ntimers > 0 && b->timers[0].deadline <= now) {
    mqttb_timer t = b->timers[0];
    mqttb_timer_remove(b, t.obj, t.session);
    if (t.session) {
      mqttb_session_on_timer(t.obj, now);
    } else if (mqttb_conn_on_timer(t.obj, now) != 0) {
      mqttb_conn_close(t.obj, MQTTB_ERR_CONN_NOMEM);
    }
    mqttb_broker_reap(b);
  }
  if (b->sys && b->sys_next <= now) {
    mqttb_sys_update(b, now);
    mqttb_broker_reap(b);
  }
  return MQTTB_OK;
}
