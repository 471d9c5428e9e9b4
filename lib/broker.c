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
  if (b->settings.max_packet_size == 0 || b->settings.max_packet_size > MQTTB_MAX_REMAINING_LENGTH + 5u)
    b->settings.max_packet_size = MQTTB_MAX_REMAINING_LENGTH + 5u;
  if (callbacks)
    b->cb = *callbacks;
  b->user_data = user_data;
  b->sys_next = UINT64_MAX;
  if (mqttb_trie_init(&b->subs, &b->mem) != 0 || mqttb_trie_init(&b->retained, &b->mem) != 0 ||
      mqttb_sys_init(b) != 0) {
    mqttb_trie_free(&b->subs, &b->mem);
    mqttb_trie_free(&b->retained, &b->mem);
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
    mqttb_conn_del(c);
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
  if (s->match_gen == b->match_gen) {
    /* Overlapping subscriptions: one copy at the highest QoS. */
    if (sub->qos > s->match_qos)
      s->match_qos = sub->qos;
    return;
  }
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
  b->match[b->nmatch++] = s;
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

void mqttb_broker_publish(mqttb_broker *b, mqttb_msg *msg) {
  if (msg->retain && b->settings.retain_available)
    mqttb_retain_store(b, msg);
  /* A fan-out can publish wills only through reaping, after it ends, so the
   * match scratch space is never used twice at once. */
  b->match_gen++;
  b->nmatch = 0;
  if (mqttb_trie_match_subs(b, &b->subs, MQTTB_MSG_TOPIC(msg), msg->topic_len, collect, b) != 0)
    mqttb_log(b, MQTTB_LOG_WARNING, "out of memory while matching %.*s",
              (int)msg->topic_len, MQTTB_MSG_TOPIC(msg));
  for (size_t i = 0; i < b->nmatch; i++) {
    mqttb_session *s = b->match[i];
    uint8_t qos = msg->qos < s->match_qos ? msg->qos : s->match_qos;
    /* Forwarded messages carry retain 0 [MQTT-3.3.1-9]. */
    mqttb_session_deliver(s, msg, qos, false);
  }
  b->nmatch = 0;
}

void mqttb_broker_reap(mqttb_broker *b) {
  while (b->ndoomed > 0) {
    mqttb_conn *c = b->doomed[--b->ndoomed];
    int reason = c->doomed_reason;
    mqttb_conn_close(c, reason);
  }
}

/* ---------------------------------------------------------------- timers */

static void heap_swap(mqttb_broker *b, size_t i, size_t j) {
  mqttb_timer t = b->timers[i];
  b->timers[i] = b->timers[j];
  b->timers[j] = t;
  b->timers[i].conn->timer_idx = i;
  b->timers[j].conn->timer_idx = j;
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

int mqttb_timer_set(mqttb_broker *b, mqttb_conn *c, uint64_t deadline) {
  if (c->timer_idx != SIZE_MAX) {
    size_t i = c->timer_idx;
    b->timers[i].deadline = deadline;
    heap_up(b, i);
    heap_down(b, c->timer_idx);
    return 0;
  }
  void *arr = b->timers;
  if (mqttb_mem_grow(&b->mem, &arr, &b->timers_cap, b->ntimers + 1, sizeof(*b->timers)) != 0)
    return MQTTB_ERR_NOMEM;
  b->timers = arr;
  size_t i = b->ntimers++;
  b->timers[i].deadline = deadline;
  b->timers[i].conn = c;
  c->timer_idx = i;
  heap_up(b, i);
  return 0;
}

void mqttb_timer_remove(mqttb_broker *b, mqttb_conn *c) {
  size_t i = c->timer_idx;
  if (i == SIZE_MAX)
    return;
  c->timer_idx = SIZE_MAX;
  size_t last = --b->ntimers;
  if (i != last) {
    b->timers[i] = b->timers[last];
    b->timers[i].conn->timer_idx = i;
    heap_up(b, i);
    heap_down(b, b->timers[i].conn->timer_idx);
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
  while (b->ntimers > 0 && b->timers[0].deadline <= now) {
    mqttb_conn *c = b->timers[0].conn;
    mqttb_timer_remove(b, c);
    if (mqttb_conn_on_timer(c, now) != 0)
      mqttb_conn_close(c, MQTTB_ERR_CONN_NOMEM);
    mqttb_broker_reap(b);
  }
  if (b->sys && b->sys_next <= now) {
    mqttb_sys_update(b, now);
    mqttb_broker_reap(b);
  }
  return MQTTB_OK;
}
