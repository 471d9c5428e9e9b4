/* SPDX-License-Identifier: MIT */
/* Sessions: subscriptions, outbound QoS 1/2 state, the offline queue and
 * inbound QoS 2 packet ids. A session outlives its connections when the
 * client asked for clean session 0. */
#include <string.h>

#include "internal.h"

mqttb_session *mqttb_session_new(mqttb_broker *b, const char *client_id, size_t len) {
  mqttb_session *s = mqttb_mem_calloc(&b->mem, 1, sizeof(*s) + len + 1);
  if (!s)
    return NULL;
  s->broker = b;
  s->id_len = len;
  memcpy(s->client_id, client_id, len);
  s->client_id[len] = '\0';
  s->next_pid = 1;
  if (mqttb_map_put(&b->sessions, &b->mem, s->client_id, len, s) != 0) {
    mqttb_mem_free(&b->mem, s);
    return NULL;
  }
  return s;
}

static void sub_remove(mqttb_session *s, size_t i) {
  mqttb_broker *b = s->broker;
  mqttb_sub *sub = s->subs[i];
  mqttb_tnode *n = sub->node;
  /* Swap-remove from the node, keeping the moved entry's index right. */
  n->subs[sub->node_idx] = n->subs[n->nsubs - 1];
  n->subs[sub->node_idx]->node_idx = sub->node_idx;
  n->nsubs--;
  mqttb_trie_prune(&b->subs, &b->mem, n);
  s->subs[i] = s->subs[s->nsubs - 1];
  s->nsubs--;
  b->stats.subscription_count--;
  mqttb_mem_free(&b->mem, sub);
}

void mqttb_session_del(mqttb_session *s) {
  mqttb_broker *b = s->broker;
  const mqttb_mem *mem = &b->mem;
  while (s->nsubs > 0)
    sub_remove(s, s->nsubs - 1);
  for (size_t i = 0; i < s->ninflight; i++)
    mqttb_msg_unref(mem, s->inflight[i].msg);
  for (size_t i = 0; i < s->qcount; i++)
    mqttb_msg_unref(mem, s->queue[(s->qhead + i) % s->qcap].msg);
  mqttb_map_del(&b->sessions, s->client_id, s->id_len);
  mqttb_mem_free(mem, s->subs);
  mqttb_mem_free(mem, s->inflight);
  mqttb_mem_free(mem, s->queue);
  mqttb_mem_free(mem, s->in_qos2);
  mqttb_mem_free(mem, s);
}

int mqttb_session_subscribe(mqttb_session *s, const char *filter, size_t len, uint8_t qos) {
  mqttb_broker *b = s->broker;
  /* A subscription to an identical filter replaces the old one
   * [MQTT-3.8.4-3]. */
  for (size_t i = 0; i < s->nsubs; i++) {
    mqttb_sub *old = s->subs[i];
    if (old->filter_len == len && memcmp(old->filter, filter, len) == 0) {
      old->qos = qos;
      return 0;
    }
  }
  void *arr = s->subs;
  if (mqttb_mem_grow(&b->mem, &arr, &s->subs_cap, s->nsubs + 1, sizeof(*s->subs)) != 0)
    return MQTTB_ERR_NOMEM;
  s->subs = arr;
  mqttb_sub *sub = mqttb_mem_malloc(&b->mem, sizeof(*sub) + len + 1);
  if (!sub)
    return MQTTB_ERR_NOMEM;
  mqttb_tnode *n = mqttb_trie_insert(&b->subs, &b->mem, filter, len);
  if (!n) {
    mqttb_mem_free(&b->mem, sub);
    return MQTTB_ERR_NOMEM;
  }
  arr = n->subs;
  if (mqttb_mem_grow(&b->mem, &arr, &n->subs_cap, n->nsubs + 1, sizeof(*n->subs)) != 0) {
    mqttb_mem_free(&b->mem, sub);
    mqttb_trie_prune(&b->subs, &b->mem, n);
    return MQTTB_ERR_NOMEM;
  }
  n->subs = arr;
  sub->session = s;
  sub->node = n;
  sub->node_idx = n->nsubs;
  sub->qos = qos;
  sub->filter_len = (uint16_t)len;
  memcpy(sub->filter, filter, len);
  sub->filter[len] = '\0';
  n->subs[n->nsubs++] = sub;
  s->subs[s->nsubs++] = sub;
  b->stats.subscription_count++;
  return 0;
}

bool mqttb_session_unsubscribe(mqttb_session *s, const char *filter, size_t len) {
  for (size_t i = 0; i < s->nsubs; i++) {
    mqttb_sub *sub = s->subs[i];
    if (sub->filter_len == len && memcmp(sub->filter, filter, len) == 0) {
      sub_remove(s, i);
      return true;
    }
  }
  return false;
}

static bool connected(const mqttb_session *s) {
  return s->conn && s->conn->state == MQTTB_CONN_CONNECTED;
}

static uint32_t max_inflight(const mqttb_session *s) {
  uint32_t m = s->broker->settings.max_inflight_messages;
  return m == 0 || m > 65535 ? 65535 : m;
}

static bool pid_in_use(const mqttb_session *s, uint16_t pid) {
  for (size_t i = 0; i < s->ninflight; i++)
    if (s->inflight[i].pid == pid)
      return true;
  return false;
}

static uint16_t alloc_pid(mqttb_session *s) {
  for (;;) {
    uint16_t pid = s->next_pid++;
    if (s->next_pid == 0)
      s->next_pid = 1;
    if (!pid_in_use(s, pid))
      return pid;
  }
}

/* Send a QoS 1/2 message now, taking an in-flight slot. Returns false when
 * the connection could not take it (it is then doomed). */
static bool send_inflight(mqttb_session *s, mqttb_msg *msg, uint8_t qos, bool retain) {
  mqttb_broker *b = s->broker;
  void *arr = s->inflight;
  if (mqttb_mem_grow(&b->mem, &arr, &s->inflight_cap, s->ninflight + 1, sizeof(*s->inflight)) !=
      0) {
    mqttb_conn_doom(s->conn, MQTTB_ERR_CONN_NOMEM);
    return false;
  }
  s->inflight = arr;
  uint16_t pid = alloc_pid(s);
  if (mqttb_conn_send_publish(s->conn, msg, qos, retain, false, pid) != 0) {
    mqttb_conn_doom(s->conn, MQTTB_ERR_CONN_NOMEM);
    return false;
  }
  mqttb_inflight *f = &s->inflight[s->ninflight++];
  f->msg = mqttb_msg_ref(msg);
  f->pid = pid;
  f->qos = qos;
  f->retain = retain;
  f->state = qos == 1 ? MQTTB_INF_PUBACK : MQTTB_INF_PUBREC;
  return true;
}

static void drop(mqttb_session *s, const char *why) {
  mqttb_broker *b = s->broker;
  b->stats.publish_dropped++;
  /* One line per power of two keeps a flood from flooding the log. */
  uint64_t n = b->stats.publish_dropped;
  if ((n & (n - 1)) == 0)
    mqttb_log(b, MQTTB_LOG_WARNING,
              "dropped a message for client %s: %s (%llu messages dropped so far)", s->client_id,
              why, (unsigned long long)n);
}

static void enqueue(mqttb_session *s, mqttb_msg *msg, uint8_t qos, bool retain) {
  mqttb_broker *b = s->broker;
  const mqttb_settings *st = &b->settings;
  if (st->max_queued_messages && s->qcount >= st->max_queued_messages) {
    drop(s, "queue full (max_queued_messages)");
    return;
  }
  if (st->max_queued_bytes && s->queued_bytes + msg->payload_len > st->max_queued_bytes) {
    drop(s, "queue full (max_queued_bytes)");
    return;
  }
  if (s->qcount == s->qcap) {
    size_t ncap = s->qcap ? s->qcap * 2 : 8;
    mqttb_qitem *q = mqttb_mem_malloc(&b->mem, ncap * sizeof(*q));
    if (!q) {
      drop(s, "out of memory");
      return;
    }
    for (size_t i = 0; i < s->qcount; i++)
      q[i] = s->queue[(s->qhead + i) % s->qcap];
    mqttb_mem_free(&b->mem, s->queue);
    s->queue = q;
    s->qcap = ncap;
    s->qhead = 0;
  }
  mqttb_qitem *it = &s->queue[(s->qhead + s->qcount) % s->qcap];
  it->msg = mqttb_msg_ref(msg);
  it->qos = qos;
  it->retain = retain;
  s->qcount++;
  s->queued_bytes += msg->payload_len;
}

void mqttb_session_deliver(mqttb_session *s, mqttb_msg *msg, uint8_t qos, bool retain) {
  mqttb_broker *b = s->broker;
  if (qos == 0) {
    if (connected(s)) {
      if (mqttb_conn_send_publish(s->conn, msg, 0, retain, false, 0) != 0)
        mqttb_conn_doom(s->conn, MQTTB_ERR_CONN_NOMEM);
    } else if (b->settings.queue_qos0_messages && !s->clean) {
      enqueue(s, msg, 0, retain);
    } else {
      drop(s, "QoS 0 message for an offline client");
    }
    return;
  }
  /* Order is kept: nothing overtakes what is already queued. */
  if (connected(s) && s->qcount == 0 && s->ninflight < max_inflight(s)) {
    send_inflight(s, msg, qos, retain);
    return;
  }
  enqueue(s, msg, qos, retain);
  mqttb_session_pump(s);
}

void mqttb_session_pump(mqttb_session *s) {
  mqttb_broker *b = s->broker;
  while (connected(s) && s->qcount > 0) {
    mqttb_qitem *it = &s->queue[s->qhead];
    if (it->qos > 0 && s->ninflight >= max_inflight(s))
      break;
    mqttb_msg *msg = it->msg;
    uint8_t qos = it->qos;
    bool retain = it->retain;
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qcount--;
    s->queued_bytes -= msg->payload_len;
    if (qos == 0) {
      if (mqttb_conn_send_publish(s->conn, msg, 0, retain, false, 0) != 0)
        mqttb_conn_doom(s->conn, MQTTB_ERR_CONN_NOMEM);
    } else {
      send_inflight(s, msg, qos, retain);
    }
    mqttb_msg_unref(&b->mem, msg);
  }
}

void mqttb_session_resume(mqttb_session *s) {
  /* Re-send unacknowledged PUBLISH with DUP set, and PUBREL for messages
   * whose PUBREC was seen [MQTT-4.4.0-1]. */
  for (size_t i = 0; i < s->ninflight && connected(s); i++) {
    mqttb_inflight *f = &s->inflight[i];
    int rv;
    if (f->state == MQTTB_INF_PUBCOMP)
      rv = mqttb_conn_send_ack(s->conn, MQTTB_PKT_PUBREL, f->pid);
    else
      rv = mqttb_conn_send_publish(s->conn, f->msg, f->qos, f->retain, true, f->pid);
    if (rv != 0)
      mqttb_conn_doom(s->conn, MQTTB_ERR_CONN_NOMEM);
  }
  mqttb_session_pump(s);
}

static mqttb_inflight *find_inflight(mqttb_session *s, uint16_t pid, size_t *idx) {
  for (size_t i = 0; i < s->ninflight; i++) {
    if (s->inflight[i].pid == pid) {
      *idx = i;
      return &s->inflight[i];
    }
  }
  return NULL;
}

static void inflight_remove(mqttb_session *s, size_t idx) {
  mqttb_msg_unref(&s->broker->mem, s->inflight[idx].msg);
  memmove(&s->inflight[idx], &s->inflight[idx + 1],
          (s->ninflight - idx - 1) * sizeof(*s->inflight));
  s->ninflight--;
}

void mqttb_session_on_puback(mqttb_session *s, uint16_t pid) {
  size_t idx;
  mqttb_inflight *f = find_inflight(s, pid, &idx);
  if (!f || f->state != MQTTB_INF_PUBACK) {
    mqttb_log(s->broker, MQTTB_LOG_DEBUG, "client %s: PUBACK for unknown packet id %u",
              s->client_id, pid);
    return;
  }
  inflight_remove(s, idx);
  mqttb_session_pump(s);
}

void mqttb_session_on_pubrec(mqttb_session *s, uint16_t pid) {
  size_t idx;
  mqttb_inflight *f = find_inflight(s, pid, &idx);
  if (f && f->state == MQTTB_INF_PUBREC) {
    /* The message is now the client's; keep only the packet id's state. */
    f->state = MQTTB_INF_PUBCOMP;
  } else if (!f) {
    mqttb_log(s->broker, MQTTB_LOG_DEBUG, "client %s: PUBREC for unknown packet id %u",
              s->client_id, pid);
  }
  /* Answer with PUBREL even for a duplicate or unknown id, so the client can
   * finish its side of the flow. */
  if (s->conn && mqttb_conn_send_ack(s->conn, MQTTB_PKT_PUBREL, pid) != 0)
    mqttb_conn_doom(s->conn, MQTTB_ERR_CONN_NOMEM);
}

void mqttb_session_on_pubcomp(mqttb_session *s, uint16_t pid) {
  size_t idx;
  mqttb_inflight *f = find_inflight(s, pid, &idx);
  if (!f || f->state != MQTTB_INF_PUBCOMP) {
    mqttb_log(s->broker, MQTTB_LOG_DEBUG, "client %s: PUBCOMP for unknown packet id %u",
              s->client_id, pid);
    return;
  }
  inflight_remove(s, idx);
  mqttb_session_pump(s);
}

bool mqttb_session_qos2_has(const mqttb_session *s, uint16_t pid) {
  for (size_t i = 0; i < s->nin_qos2; i++)
    if (s->in_qos2[i] == pid)
      return true;
  return false;
}

int mqttb_session_qos2_add(mqttb_session *s, uint16_t pid) {
  void *arr = s->in_qos2;
  if (mqttb_mem_grow(&s->broker->mem, &arr, &s->in_qos2_cap, s->nin_qos2 + 1,
                     sizeof(*s->in_qos2)) != 0)
    return MQTTB_ERR_NOMEM;
  s->in_qos2 = arr;
  s->in_qos2[s->nin_qos2++] = pid;
  return 0;
}

void mqttb_session_qos2_del(mqttb_session *s, uint16_t pid) {
  for (size_t i = 0; i < s->nin_qos2; i++) {
    if (s->in_qos2[i] == pid) {
      s->in_qos2[i] = s->in_qos2[--s->nin_qos2];
      return;
    }
  }
}
