/* SPDX-License-Identifier: MIT */
/* Sessions: subscriptions, outbound QoS 1/2 state, the offline queue,
 * inbound QoS 2 packet ids, expiry and delayed wills. A session outlives its
 * connection for its expiry interval (MQTT 3.x: clean session 0 means for
 * ever, 1 means not at all). */
#include <string.h>

#include "internal.h"

mqttb_session *mqttb_session_new(mqttb_broker *b, const char *client_id, size_t len) {
  mqttb_session *s = mqttb_mem_calloc(&b->mem, 1, sizeof(*s) + len + 1);
  if (!s)
    return NULL;
  s->broker = b;
  s->id_len = (uint16_t)len; /* client ids are MQTT strings: at most 65535 bytes */
  memcpy(s->client_id, client_id, len);
  s->client_id[len] = '\0';
  s->next_pid = 1;
  s->expires_at = UINT64_MAX;
  s->timer_idx = SIZE_MAX;
  if (mqttb_map_put(&b->sessions, &b->mem, s->client_id, len, s) != 0) {
    mqttb_mem_free(&b->mem, s);
    return NULL;
  }
  return s;
}

static void dlv_free(mqttb_broker *b, mqttb_dlv *d) {
  mqttb_msg_unref(&b->mem, d->msg);
  if (d->share)
    mqttb_share_unref(b, d->share);
  mqttb_mem_free(&b->mem, d->ids);
  d->msg = NULL;
  d->share = NULL;
  d->ids = NULL;
}

void mqttb_share_unref(mqttb_broker *b, mqttb_share *sh) {
  if (--sh->refs == 0) {
    mqttb_mem_free(&b->mem, sh->members);
    mqttb_mem_free(&b->mem, sh);
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

static void sub_remove(mqttb_session *s, size_t i) {
  mqttb_broker *b = s->broker;
  mqttb_sub *sub = s->subs[i];
  mqttb_tnode *n = sub->node;
  if (sub->share) {
    mqttb_share *sh = sub->share;
    sh->members[sub->node_idx] = sh->members[sh->nmembers - 1];
    sh->members[sub->node_idx]->node_idx = sub->node_idx;
    sh->nmembers--;
    if (sh->nmembers == 0) {
      /* The group goes; deliveries still holding it keep it alive. */
      for (size_t k = 0; k < n->nshares; k++) {
        if (n->shares[k] == sh) {
          n->shares[k] = n->shares[--n->nshares];
          break;
        }
      }
      mqttb_map_del(&b->shares, sh->name, sh->name_len);
      sh->node = NULL;
      mqttb_share_unref(b, sh);
    }
  } else {
    /* Swap-remove from the node, keeping the moved entry's index right. */
    n->subs[sub->node_idx] = n->subs[n->nsubs - 1];
    n->subs[sub->node_idx]->node_idx = sub->node_idx;
    n->nsubs--;
  }
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
    dlv_free(b, &s->inflight[i].d);
  for (size_t i = 0; i < s->qcount; i++)
    dlv_free(b, &s->queue[(s->qhead + i) % s->qcap]);
  b->queued_bytes_total -= s->queued_bytes;
  mqttb_msg_unref(mem, s->will);
  mqttb_timer_remove(b, s, true);
  mqttb_map_del(&b->sessions, s->client_id, s->id_len);
  mqttb_mem_free(mem, s->subs);
  mqttb_mem_free(mem, s->inflight);
  mqttb_mem_free(mem, s->queue);
  mqttb_mem_free(mem, s->in_qos2);
  mqttb_mem_free(mem, s->match_ids);
  mqttb_mem_free(mem, s);
}

static mqttb_share *share_get(mqttb_broker *b, const char *key, size_t keylen, mqttb_tnode *n) {
  mqttb_share *sh = mqttb_map_get(&b->shares, key, keylen);
  if (sh)
    return sh;
  void *arr = n->shares;
  if (mqttb_mem_grow32(&b->mem, &arr, &n->shares_cap, n->nshares + 1, sizeof(*n->shares)) != 0)
    return NULL;
  n->shares = arr;
  sh = mqttb_mem_calloc(&b->mem, 1, sizeof(*sh) + keylen);
  if (!sh)
    return NULL;
  sh->refs = 1;
  sh->node = n;
  sh->name_len = (uint16_t)keylen;
  memcpy(sh->name, key, keylen);
  if (mqttb_map_put(&b->shares, &b->mem, sh->name, keylen, sh) != 0) {
    mqttb_mem_free(&b->mem, sh);
    return NULL;
  }
  n->shares[n->nshares++] = sh;
  return sh;
}

int mqttb_session_subscribe(mqttb_session *s, const char *filter, size_t len, uint8_t qos,
                            uint8_t opts, uint32_t sub_id, bool *existed) {
  mqttb_broker *b = s->broker;
  *existed = false;
  /* A subscription to an identical filter replaces the old one
   * [MQTT-3.8.4-3]. */
  for (size_t i = 0; i < s->nsubs; i++) {
    mqttb_sub *old = s->subs[i];
    if (old->filter_len == len && memcmp(old->filter, filter, len) == 0) {
      old->qos = qos;
      old->opts = opts;
      old->sub_id = sub_id;
      *existed = true;
      return 0;
    }
  }
  mqttb_slice name, real = {(const uint8_t *)filter, len};
  bool valid;
  bool shared = mqttb_share_parse(filter, len, &name, &real, &valid);
  if (shared && !valid)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (b->settings.max_subscriptions && s->nsubs >= b->settings.max_subscriptions)
    return MQTTB_SUB_QUOTA;
  void *arr = s->subs;
  if (mqttb_mem_grow32(&b->mem, &arr, &s->subs_cap, s->nsubs + 1, sizeof(*s->subs)) != 0)
    return MQTTB_ERR_NOMEM;
  s->subs = arr;
  mqttb_sub *sub = mqttb_mem_malloc(&b->mem, sizeof(*sub) + len + 1);
  if (!sub)
    return MQTTB_ERR_NOMEM;
  mqttb_tnode *n = mqttb_trie_insert(&b->subs, &b->mem, (const char *)real.ptr, real.len);
  if (!n) {
    mqttb_mem_free(&b->mem, sub);
    return MQTTB_ERR_NOMEM;
  }
  mqttb_share *sh = NULL;
  if (shared) {
    /* The group's key: "name/filter", the part after "$share/". */
    sh = share_get(b, filter + 7, len - 7, n);
    arr = sh ? sh->members : NULL;
    if (!sh ||
        mqttb_mem_grow(&b->mem, &arr, &sh->members_cap, sh->nmembers + 1, sizeof(*sh->members))) {
      if (sh && sh->nmembers == 0) {
        n->nshares--;
        mqttb_map_del(&b->shares, sh->name, sh->name_len);
        mqttb_share_unref(b, sh);
      }
      mqttb_mem_free(&b->mem, sub);
      mqttb_trie_prune(&b->subs, &b->mem, n);
      return MQTTB_ERR_NOMEM;
    }
    sh->members = arr;
    sub->node_idx = sh->nmembers;
    sh->members[sh->nmembers++] = sub;
  } else {
    arr = n->subs;
    if (mqttb_mem_grow32(&b->mem, &arr, &n->subs_cap, n->nsubs + 1, sizeof(*n->subs)) != 0) {
      mqttb_mem_free(&b->mem, sub);
      mqttb_trie_prune(&b->subs, &b->mem, n);
      return MQTTB_ERR_NOMEM;
    }
    n->subs = arr;
    sub->node_idx = n->nsubs;
    n->subs[n->nsubs++] = sub;
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
  return s->conn && s->conn->state == MQTTB_CONN_CONNECTED && !s->conn->doomed_reason;
}

uint32_t mqttb_session_max_inflight(const mqttb_session *s) {
  uint32_t m = s->broker->settings.max_inflight_messages;
  if (m == 0 || m > 65535)
    m = 65535;
  /* MQTT 5: never more than the client's Receive Maximum [MQTT-3.3.4-9]. */
  if (s->conn && s->conn->client_receive_max && s->conn->client_receive_max < m)
    m = s->conn->client_receive_max;
  return m;
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

/* Send a QoS 1/2 delivery now, taking an in-flight slot. Takes d. */
static void send_inflight(mqttb_session *s, mqttb_dlv *d) {
  mqttb_broker *b = s->broker;
  void *arr = s->inflight;
  int rv =
      mqttb_mem_grow32(&b->mem, &arr, &s->inflight_cap, s->ninflight + 1, sizeof(*s->inflight));
  uint16_t pid = 0;
  if (rv == 0) {
    s->inflight = arr;
    pid = alloc_pid(s);
    rv = mqttb_conn_send_publish(s->conn, d, false, pid);
  }
  if (rv == MQTTB_ERR_PACKET_TOO_LARGE) {
    /* Nothing was queued and the packet id stays free. */
    drop(s, "larger than the client's Maximum Packet Size");
    dlv_free(b, d);
    return;
  }
  if (rv != 0) {
    mqttb_conn_doom(s->conn, MQTTB_ERR_CONN_NOMEM);
    drop(s, "out of memory");
    dlv_free(b, d);
    return;
  }
  mqttb_inflight *f = &s->inflight[s->ninflight++];
  f->d = *d;
  f->pid = pid;
  f->state = d->qos == 1 ? MQTTB_INF_PUBACK : MQTTB_INF_PUBREC;
}

/* Send a QoS 0 delivery now. Takes d. */
static void send_qos0(mqttb_session *s, mqttb_dlv *d) {
  uint64_t max = s->broker->settings.max_output_bytes;
  if (max && s->conn->out_pending > max) {
    /* A client that does not read loses QoS 0 first. */
    drop(s, "output backlog above max_output_bytes");
    dlv_free(s->broker, d);
    return;
  }
  int rv = mqttb_conn_send_publish(s->conn, d, false, 0);
  if (rv == MQTTB_ERR_PACKET_TOO_LARGE) {
    drop(s, "larger than the client's Maximum Packet Size");
  } else if (rv != 0) {
    mqttb_conn_doom(s->conn, MQTTB_ERR_CONN_NOMEM);
    drop(s, "out of memory");
  }
  dlv_free(s->broker, d);
}

/* Takes d. */
static void enqueue(mqttb_session *s, mqttb_dlv *d) {
  mqttb_broker *b = s->broker;
  const mqttb_settings *st = &b->settings;
  const char *why = NULL;
  if (st->max_queued_messages && s->qcount >= st->max_queued_messages)
    why = "queue full (max_queued_messages)";
  else if (st->max_queued_bytes && s->queued_bytes + d->msg->payload_len > st->max_queued_bytes)
    why = "queue full (max_queued_bytes)";
  else if (st->max_queued_bytes_total &&
           b->queued_bytes_total + d->msg->payload_len > st->max_queued_bytes_total)
    why = "all queues full (max_queued_bytes_total)";
  if (!why && s->qcount == s->qcap) {
    size_t ncap = s->qcap ? (size_t)s->qcap * 2 : 8;
    mqttb_qitem *q = ncap <= UINT32_MAX ? mqttb_mem_malloc(&b->mem, ncap * sizeof(*q)) : NULL;
    if (!q) {
      why = "out of memory";
    } else {
      for (size_t i = 0; i < s->qcount; i++)
        q[i] = s->queue[(s->qhead + i) % s->qcap];
      mqttb_mem_free(&b->mem, s->queue);
      s->queue = q;
      s->qcap = (uint32_t)ncap;
      s->qhead = 0;
    }
  }
  if (why) {
    drop(s, why);
    dlv_free(b, d);
    return;
  }
  s->queue[(s->qhead + s->qcount) % s->qcap] = *d;
  s->qcount++;
  s->queued_bytes += d->msg->payload_len;
  b->queued_bytes_total += d->msg->payload_len;
}

void mqttb_session_deliver(mqttb_session *s, mqttb_msg *msg, uint8_t qos, bool retain,
                           mqttb_share *share, const uint32_t *ids, size_t nids) {
  mqttb_broker *b = s->broker;
  if (mqttb_msg_expired(msg, b->now)) {
    drop(s, "message expired");
    return;
  }
  mqttb_dlv d = {msg, share, NULL, (uint16_t)nids, qos, retain};
  if (nids > 0) {
    d.ids = mqttb_mem_malloc(&b->mem, nids * sizeof(*ids));
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
    else if (b->settings.queue_qos0_messages && s->expiry_interval > 0)
      enqueue(s, &d);
    else {
      drop(s, "QoS 0 message for an offline client");
      dlv_free(b, &d);
    }
    return;
  }
  /* Order is kept: nothing overtakes what is already queued. */
  if (connected(s) && s->qcount == 0 && s->ninflight < mqttb_session_max_inflight(s)) {
    send_inflight(s, &d);
    return;
  }
  enqueue(s, &d);
  mqttb_session_pump(s);
}

void mqttb_session_pump(mqttb_session *s) {
  mqttb_broker *b = s->broker;
  while (connected(s) && s->qcount > 0) {
    mqttb_qitem *it = &s->queue[s->qhead];
    bool expired = mqttb_msg_expired(it->msg, b->now);
    if (!expired && it->qos > 0 && s->ninflight >= mqttb_session_max_inflight(s))
      break;
    mqttb_dlv d = *it;
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qcount--;
    s->queued_bytes -= d.msg->payload_len;
    b->queued_bytes_total -= d.msg->payload_len;
    if (expired) {
      /* [MQTT-3.3.2-5]: not delivered once its expiry interval passed. */
      drop(s, "message expired");
      dlv_free(b, &d);
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
  for (size_t i = 0; i < s->ninflight && connected(s); i++) {
    mqttb_inflight *f = &s->inflight[i];
    int rv;
    if (f->state == MQTTB_INF_PUBCOMP)
      rv = mqttb_conn_send_ack(s->conn, MQTTB_PKT_PUBREL, f->pid, 0);
    else
      rv = mqttb_conn_send_publish(s->conn, &f->d, true, f->pid);
    if (rv == MQTTB_ERR_PACKET_TOO_LARGE) {
      /* The client now accepts smaller packets than when it was sent. */
      drop(s, "larger than the client's Maximum Packet Size");
      dlv_free(s->broker, &f->d);
      memmove(f, f + 1, (s->ninflight - i - 1) * sizeof(*f));
      s->ninflight--;
      i--;
    } else if (rv != 0) {
      mqttb_conn_doom(s->conn, MQTTB_ERR_CONN_NOMEM);
    }
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
  dlv_free(s->broker, &s->inflight[idx].d);
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

int mqttb_session_on_pubrec(mqttb_session *s, uint16_t pid, uint8_t reason) {
  size_t idx;
  mqttb_inflight *f = find_inflight(s, pid, &idx);
  if (f && f->state == MQTTB_INF_PUBREC && reason >= 0x80) {
    /* MQTT 5: the client refused the message; the flow ends here. */
    inflight_remove(s, idx);
    mqttb_session_pump(s);
    return -1;
  }
  if (f && f->state == MQTTB_INF_PUBREC) {
    /* The message is now the client's; keep only the packet id's state. */
    f->state = MQTTB_INF_PUBCOMP;
    mqttb_msg_unref(&s->broker->mem, f->d.msg);
    f->d.msg = NULL;
    if (f->d.share)
      mqttb_share_unref(s->broker, f->d.share);
    f->d.share = NULL;
  } else if (!f) {
    mqttb_log(s->broker, MQTTB_LOG_DEBUG, "client %s: PUBREC for unknown packet id %u",
              s->client_id, pid);
  }
  /* PUBREL even for a duplicate or unknown id, so the client can finish its
   * side of the flow. */
  return f ? 0 : MQTTB_REASON_PACKET_ID_NOT_FOUND;
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
  if (mqttb_mem_grow32(&s->broker->mem, &arr, &s->in_qos2_cap, s->nin_qos2 + 1,
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

/* ---- leaving, expiry, wills ---- */

static void arm(mqttb_session *s) {
  uint64_t dl = s->expires_at;
  if (s->will && s->will_at < dl)
    dl = s->will_at;
  if (dl == UINT64_MAX) {
    mqttb_timer_remove(s->broker, s, true);
  } else if (mqttb_timer_set(s->broker, s, true, dl) != 0) {
    /* Without a timer the session would outlive its interval; end it now
     * rather than keep it for ever. */
    mqttb_log(s->broker, MQTTB_LOG_ERROR, "out of memory: ending session %s early", s->client_id);
    s->broker->stats.clients_disconnected--;
    mqttb_session_end(s);
  }
}

void mqttb_session_detach(mqttb_session *s, mqttb_msg *will, uint32_t will_delay) {
  mqttb_broker *b = s->broker;
  if (will) {
    if (s->expiry_interval == 0 || will_delay == 0) {
      mqttb_broker_publish(b, will, NULL);
    } else {
      /* [MQTT-3.1.3-9]: published after the delay, or when the session
       * ends, unless the client comes back first. */
      uint32_t delay = will_delay < s->expiry_interval ? will_delay : s->expiry_interval;
      s->will = mqttb_msg_ref(will);
      s->will_at = b->now + (uint64_t)delay * 1000u;
    }
  }
  if (s->expiry_interval == 0) {
    mqttb_session_end(s);
    return;
  }
  b->stats.clients_disconnected++;
  s->expires_at =
      s->expiry_interval == UINT32_MAX ? UINT64_MAX : b->now + (uint64_t)s->expiry_interval * 1000u;
  arm(s);
}

mqttb_sub *mqttb_share_pick(mqttb_share *sh, const mqttb_session * not ) {
  mqttb_sub *fallback = NULL;
  for (size_t k = 0; k < sh->nmembers; k++) {
    size_t i = (sh->next + k) % sh->nmembers;
    mqttb_sub *m = sh->members[i];
    if (m->session == not )
      continue;
    if (connected(m->session)) {
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

static void reroute(mqttb_session *s, mqttb_dlv *d) {
  if (!d->share || !d->msg || !d->share->node)
    return;
  mqttb_sub *m = mqttb_share_pick(d->share, s);
  if (!m)
    return;
  uint8_t qos = d->qos < m->qos ? d->qos : m->qos;
  mqttb_session_deliver(m->session, d->msg, qos, d->retain, d->share, d->ids, d->nids);
}

void mqttb_session_end(mqttb_session *s) {
  mqttb_broker *b = s->broker;
  mqttb_msg *will = s->will;
  s->will = NULL;
  if (will) {
    mqttb_broker_publish(b, will, NULL);
    mqttb_msg_unref(&b->mem, will);
  }
  /* Messages that came through a shared subscription go to another member
   * of the group rather than be lost with this session. */
  while (s->nsubs > 0)
    sub_remove(s, s->nsubs - 1);
  for (size_t i = 0; i < s->ninflight; i++)
    if (s->inflight[i].state != MQTTB_INF_PUBCOMP)
      reroute(s, &s->inflight[i].d);
  for (size_t i = 0; i < s->qcount; i++)
    reroute(s, &s->queue[(s->qhead + i) % s->qcap]);
  mqttb_session_del(s);
}

void mqttb_session_on_timer(mqttb_session *s, uint64_t now) {
  mqttb_broker *b = s->broker;
  if (s->will && s->will_at <= now) {
    mqttb_msg *will = s->will;
    s->will = NULL;
    mqttb_broker_publish(b, will, NULL);
    mqttb_msg_unref(&b->mem, will);
  }
  if (!s->conn && s->expires_at <= now) {
    mqttb_log(b, MQTTB_LOG_DEBUG, "session %s expired", s->client_id);
    b->stats.clients_disconnected--;
    mqttb_session_end(s);
    return;
  }
  arm(s);
}
