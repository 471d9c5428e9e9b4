/* SPDX-License-Identifier: MIT */
/* The per-connection state machine: input framing, packet handling, the
 * output queue, and closing. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Messages whose topic and payload together are at most this many bytes are
 * copied into the connection's byte buffer rather than referenced: a few
 * bytes of copying is cheaper than an extra iovec. */
#define COPY_THRESHOLD 256u

/* ---------------------------------------------------------------- output */

static void out_signal(mqttb_conn *c, size_t before) {
  if (before == 0 && c->out_pending > 0 && c->broker->cb.want_write)
    c->broker->cb.want_write(c, c->broker->user_data);
}

static int seg_reserve(mqttb_conn *c) {
  if (c->seg_count < c->seg_cap)
    return 0;
  size_t ncap = c->seg_cap ? c->seg_cap * 2 : 8;
  mqttb_oseg *n = mqttb_mem_malloc(&c->broker->mem, ncap * sizeof(*n));
  if (!n)
    return MQTTB_ERR_NOMEM;
  for (size_t i = 0; i < c->seg_count; i++)
    n[i] = c->seg[(c->seg_head + i) % c->seg_cap];
  mqttb_mem_free(&c->broker->mem, c->seg);
  c->seg = n;
  c->seg_cap = ncap;
  c->seg_head = 0;
  return 0;
}

static mqttb_oseg *seg_last(mqttb_conn *c) {
  if (c->seg_count == 0)
    return NULL;
  return &c->seg[(c->seg_head + c->seg_count - 1) % c->seg_cap];
}

/* Move the still-referenced tail of wbuf to its start. */
static void wbuf_compact(mqttb_conn *c) {
  size_t first = SIZE_MAX;
  for (size_t i = 0; i < c->seg_count; i++) {
    mqttb_oseg *s = &c->seg[(c->seg_head + i) % c->seg_cap];
    if (!s->msg) {
      first = s->off;
      break;
    }
  }
  if (first == SIZE_MAX) {
    c->wlen = 0;
    return;
  }
  if (first == 0)
    return;
  memmove(c->wbuf, c->wbuf + first, c->wlen - first);
  c->wlen -= first;
  for (size_t i = 0; i < c->seg_count; i++) {
    mqttb_oseg *s = &c->seg[(c->seg_head + i) % c->seg_cap];
    if (!s->msg)
      s->off -= first;
  }
}

/* Make room for nbytes more in wbuf and nsegs more segments, so that the
 * appends of one packet cannot fail half-way. */
static int out_reserve(mqttb_conn *c, size_t nbytes, size_t nsegs) {
  if (c->wlen + nbytes > c->wcap) {
    wbuf_compact(c);
    if (c->wlen + nbytes > c->wcap) {
      void *arr = c->wbuf;
      if (mqttb_mem_grow(&c->broker->mem, &arr, &c->wcap, c->wlen + nbytes, 1) != 0)
        return MQTTB_ERR_NOMEM;
      c->wbuf = arr;
    }
  }
  while (c->seg_count + nsegs > c->seg_cap)
    if (seg_reserve(c) != 0)
      return MQTTB_ERR_NOMEM;
  return 0;
}

/* Append n bytes of wbuf to the output (room reserved); returns where to
 * write them. */
static uint8_t *out_bytes(mqttb_conn *c, size_t n) {
  mqttb_oseg *last = seg_last(c);
  if (last && !last->msg && last->off + last->len == c->wlen) {
    last->len += n;
  } else {
    mqttb_oseg *s = &c->seg[(c->seg_head + c->seg_count) % c->seg_cap];
    s->msg = NULL;
    s->off = c->wlen;
    s->len = n;
    c->seg_count++;
  }
  uint8_t *p = c->wbuf + c->wlen;
  c->wlen += n;
  c->out_pending += n;
  return p;
}

/* Append a slice of a shared message to the output (room reserved). */
static void out_msg(mqttb_conn *c, mqttb_msg *m, size_t off, size_t len) {
  if (len == 0)
    return;
  mqttb_oseg *s = &c->seg[(c->seg_head + c->seg_count) % c->seg_cap];
  s->msg = mqttb_msg_ref(m);
  s->off = off;
  s->len = len;
  c->seg_count++;
  c->out_pending += len;
}

static uint8_t *put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
  return p + 2;
}

int mqttb_conn_send_publish(mqttb_conn *c, mqttb_msg *msg, uint8_t qos, bool retain, bool dup,
                            uint16_t pid) {
  size_t before = c->out_pending;
  size_t tail = 2u + msg->topic_len + msg->payload_len;
  size_t remaining = tail + (qos ? 2u : 0u);
  if (remaining > MQTTB_MAX_REMAINING_LENGTH)
    return MQTTB_ERR_NOMEM;
  uint8_t hdr[5];
  hdr[0] = (uint8_t)((MQTTB_PKT_PUBLISH << 4) | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0));
  size_t hlen = 1 + mqttb_codec_varint_encode(hdr + 1, (uint32_t)remaining);
  if (tail <= COPY_THRESHOLD) {
    if (out_reserve(c, hlen + remaining, 1) != 0)
      return MQTTB_ERR_NOMEM;
    uint8_t *p = out_bytes(c, hlen + remaining);
    memcpy(p, hdr, hlen);
    p += hlen;
    memcpy(p, msg->data, 2u + msg->topic_len);
    p += 2u + msg->topic_len;
    if (qos)
      p = put16(p, pid);
    if (msg->payload_len)
      memcpy(p, MQTTB_MSG_PAYLOAD(msg), msg->payload_len);
  } else if (qos == 0) {
    /* Header from wbuf; topic and payload referenced from the shared message. */
    if (out_reserve(c, hlen, 2) != 0)
      return MQTTB_ERR_NOMEM;
    memcpy(out_bytes(c, hlen), hdr, hlen);
    out_msg(c, msg, 0, tail);
  } else {
    if (out_reserve(c, hlen + 2, 4) != 0)
      return MQTTB_ERR_NOMEM;
    memcpy(out_bytes(c, hlen), hdr, hlen);
    out_msg(c, msg, 0, 2u + msg->topic_len);
    put16(out_bytes(c, 2), pid);
    out_msg(c, msg, 2u + msg->topic_len, msg->payload_len);
  }
  c->broker->stats.packets_sent++;
  c->broker->stats.publish_sent++;
  out_signal(c, before);
  return 0;
}

static int send_raw(mqttb_conn *c, const uint8_t *bytes, size_t n) {
  size_t before = c->out_pending;
  if (out_reserve(c, n, 1) != 0)
    return MQTTB_ERR_NOMEM;
  memcpy(out_bytes(c, n), bytes, n);
  c->broker->stats.packets_sent++;
  out_signal(c, before);
  return 0;
}

int mqttb_conn_send_ack(mqttb_conn *c, uint8_t type, uint16_t pid) {
  uint8_t buf[MQTTB_ACK_SIZE];
  size_t n = mqttb_encode_ack(buf, type, pid);
  return send_raw(c, buf, n);
}

static int send_connack(mqttb_conn *c, bool session_present, uint8_t rc) {
  uint8_t buf[MQTTB_CONNACK_SIZE];
  /* MQTT 3.1 has no session-present flag: the byte is reserved. */
  mqttb_connack a = {session_present && c->level >= 4, rc};
  size_t n = mqttb_encode_connack(buf, &a);
  return send_raw(c, buf, n);
}

int mqttb_conn_output(mqttb_conn *c, mqttb_iovec *iov, int iovmax) {
  if (!c || (!iov && iovmax > 0) || iovmax < 0)
    return MQTTB_ERR_INVALID_ARGUMENT;
  int n = 0;
  for (size_t i = 0; i < c->seg_count && n < iovmax; i++) {
    const mqttb_oseg *s = &c->seg[(c->seg_head + i) % c->seg_cap];
    iov[n].base = s->msg ? s->msg->data + s->off : c->wbuf + s->off;
    iov[n].len = s->len;
    n++;
  }
  return n;
}

int mqttb_conn_output_ack(mqttb_conn *c, size_t nbytes) {
  if (!c || nbytes > c->out_pending)
    return MQTTB_ERR_INVALID_ARGUMENT;
  c->out_pending -= nbytes;
  c->broker->stats.bytes_sent += nbytes;
  while (nbytes > 0) {
    mqttb_oseg *s = &c->seg[c->seg_head];
    if (nbytes < s->len) {
      s->off += nbytes;
      s->len -= nbytes;
      break;
    }
    nbytes -= s->len;
    mqttb_msg_unref(&c->broker->mem, s->msg);
    c->seg_head = (c->seg_head + 1) % c->seg_cap;
    c->seg_count--;
  }
  if (c->seg_count == 0) {
    c->seg_head = 0;
    c->wlen = 0;
  }
  return 0;
}

size_t mqttb_conn_output_pending(const mqttb_conn *c) {
  return c ? c->out_pending : 0;
}

/* ---------------------------------------------------------------- closing */

void mqttb_conn_close(mqttb_conn *c, int reason) {
  if (c->state >= MQTTB_CONN_CLOSING)
    return;
  mqttb_broker *b = c->broker;
  enum mqttb_conn_state prev = c->state;
  c->state = MQTTB_CONN_CLOSING;
  c->close_reason = reason;
  mqttb_timer_remove(b, c);
  if (prev == MQTTB_CONN_CONNECTED) {
    mqttb_msg *will = c->will;
    c->will = NULL;
    if (will && reason != MQTTB_ERR_CLIENT_DISCONNECTED) {
      mqttb_log(b, MQTTB_LOG_DEBUG, "client %s: publishing will on %.*s", c->client_id,
                (int)will->topic_len, MQTTB_MSG_TOPIC(will));
      mqttb_broker_publish(b, will);
    }
    mqttb_msg_unref(&b->mem, will);
    mqttb_session *s = c->session;
    c->session = NULL;
    b->stats.clients_connected--;
    if (s) {
      s->conn = NULL;
      if (s->clean) {
        mqttb_session_del(s);
      } else {
        b->stats.clients_disconnected++;
      }
    }
  }
  if (reason == MQTTB_ERR_CLIENT_DISCONNECTED || reason == MQTTB_ERR_TRANSPORT_CLOSED)
    mqttb_log(b, MQTTB_LOG_DEBUG, "client %s: closed: %s", c->client_id ? c->client_id : "<none>",
              mqttb_strerror(reason));
  else
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: closing connection: %s",
              c->client_id ? c->client_id : "<none>", mqttb_strerror(reason));
  if (!c->close_notified && b->cb.on_close) {
    c->close_notified = true;
    b->cb.on_close(c, reason, b->user_data);
  }
  c->close_notified = true;
}

void mqttb_conn_doom(mqttb_conn *c, int reason) {
  mqttb_broker *b = c->broker;
  if (c->doomed_reason != 0 || c->state >= MQTTB_CONN_CLOSING)
    return;
  void *arr = b->doomed;
  if (mqttb_mem_grow(&b->mem, &arr, &b->doomed_cap, b->ndoomed + 1, sizeof(*b->doomed)) != 0) {
    /* No room to remember it: it stops taking output until its next call. */
    c->doomed_reason = reason;
    return;
  }
  b->doomed = arr;
  b->doomed[b->ndoomed++] = c;
  c->doomed_reason = reason;
}

/* ---------------------------------------------------------------- input */

static int codec_err(int r) {
  switch (r) {
  case MQTTB_CODEC_TOO_LARGE:
    return MQTTB_ERR_PACKET_TOO_LARGE;
  case MQTTB_CODEC_BAD_FLAGS:
  case MQTTB_CODEC_BAD_UTF8:
  case MQTTB_CODEC_MALFORMED:
  default:
    return MQTTB_ERR_MALFORMED;
  }
}

static uint64_t conn_deadline(const mqttb_conn *c) {
  const mqttb_settings *st = &c->broker->settings;
  if (c->state == MQTTB_CONN_AWAIT_CONNECT)
    return st->connect_timeout_ms ? c->created + st->connect_timeout_ms : UINT64_MAX;
  if (c->state == MQTTB_CONN_CONNECTED && c->keepalive)
    return c->last_rx + (uint64_t)c->keepalive * 1500u; /* [MQTT-3.1.2-24] */
  return UINT64_MAX;
}

static int refuse(mqttb_conn *c, uint8_t rc, int err, const char *why) {
  mqttb_log(c->broker, MQTTB_LOG_NOTICE, "refusing connection (CONNACK %u): %s", rc, why);
  if (send_connack(c, false, rc) != 0)
    return MQTTB_ERR_CONN_NOMEM;
  return err;
}

static int make_auto_id(mqttb_broker *b, char *out, size_t outlen) {
  /* Deterministic per broker: a counter mixed so ids do not look serial. */
  for (;;) {
    uint64_t x = ++b->auto_id_counter * 0x9e3779b97f4a7c15ull;
    x ^= x >> 31;
    int n = snprintf(out, outlen, "%s%016llx", b->auto_id_prefix, (unsigned long long)x);
    if (n < 0 || (size_t)n >= outlen)
      return -1;
    if (!mqttb_map_get(&b->sessions, out, (size_t)n))
      return n;
  }
}

static int handle_connect(mqttb_conn *c, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  const mqttb_settings *st = &b->settings;
  mqttb_connect ck;
  int r = mqttb_decode_connect(body, len, &ck);
  if (r == MQTTB_CODEC_BAD_PROTOCOL) {
    /* [MQTT-3.1.2-2]: CONNACK 0x01, then close. */
    c->level = ck.level == 3 ? 3 : 4;
    return refuse(c, MQTTB_REASON_UNACCEPTABLE_PROTOCOL, MQTTB_ERR_UNSUPPORTED_PROTOCOL,
                  "unsupported protocol level");
  }
  if (r != MQTTB_CODEC_OK) {
    mqttb_log(b, MQTTB_LOG_NOTICE, "malformed CONNECT (%d)", r);
    return codec_err(r);
  }
  c->level = ck.level;
  c->clean = ck.clean;
  c->keepalive = ck.keepalive;

  char idbuf[64];
  const char *id = (const char *)ck.client_id.ptr;
  size_t idlen = ck.client_id.len;
  if (idlen == 0) {
    /* [MQTT-3.1.3-7], [MQTT-3.1.3-8]; MQTT 3.1 requires 1 to 23 characters. */
    if (c->level == 3 || !ck.clean || !st->allow_zero_length_clientid)
      return refuse(c, MQTTB_REASON_IDENTIFIER_REJECTED, MQTTB_ERR_IDENTIFIER_REJECTED,
                    "empty client identifier");
    int n = make_auto_id(b, idbuf, sizeof(idbuf));
    if (n < 0)
      return MQTTB_ERR_CONN_NOMEM;
    id = idbuf;
    idlen = (size_t)n;
  } else if (c->level == 3 && idlen > 23) {
    return refuse(c, MQTTB_REASON_IDENTIFIER_REJECTED, MQTTB_ERR_IDENTIFIER_REJECTED,
                  "MQTT 3.1 client identifier longer than 23 characters");
  }
  if (st->max_keepalive && (ck.keepalive == 0 || ck.keepalive > st->max_keepalive)) {
    /* MQTT 3.x cannot tell a client to use another keep-alive, so a
     * client asking for more than allowed is refused, as Mosquitto does. */
    return refuse(c, MQTTB_REASON_IDENTIFIER_REJECTED, MQTTB_ERR_IDENTIFIER_REJECTED,
                  "keep-alive above max_keepalive");
  }

  if (b->cb.authenticate) {
    mqttb_auth_request req = {
        id,
        idlen,
        ck.has_username ? (const char *)ck.username.ptr : NULL,
        ck.username.len,
        ck.has_password ? ck.password.ptr : NULL,
        ck.password.len,
        ck.level,
    };
    int rc = b->cb.authenticate(c, &req, b->user_data);
    if (rc != MQTTB_REASON_SUCCESS) {
      uint8_t code = rc == MQTTB_REASON_BAD_USERNAME_OR_PASSWORD
                         ? MQTTB_REASON_BAD_USERNAME_OR_PASSWORD
                         : MQTTB_REASON_NOT_AUTHORIZED;
      return refuse(c, code, MQTTB_ERR_NOT_AUTHORIZED, "refused by the authenticate callback");
    }
  }

  /* Everything that can fail for lack of memory happens before the old
   * connection or session is touched. */
  char *cid = mqttb_mem_malloc(&b->mem, idlen + 1);
  mqttb_msg *will = NULL;
  if (cid && ck.will)
    will = mqttb_msg_new(&b->mem, ck.will_topic.ptr, ck.will_topic.len, ck.will_payload.ptr,
                         ck.will_payload.len, ck.will_qos, ck.will_retain);
  if (!cid || (ck.will && !will)) {
    mqttb_mem_free(&b->mem, cid);
    return MQTTB_ERR_CONN_NOMEM;
  }
  memcpy(cid, id, idlen);
  cid[idlen] = '\0';

  mqttb_session *s = mqttb_map_get(&b->sessions, cid, idlen);
  if (s && s->conn) {
    /* [MQTT-3.1.4-2]: the existing client is disconnected. */
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s already connected: closing the old connection",
              cid);
    mqttb_conn_close(s->conn, MQTTB_ERR_TAKEN_OVER);
    s = mqttb_map_get(&b->sessions, cid, idlen);
  }
  if (s && ck.clean) {
    /* [MQTT-3.1.2-6]: clean session discards any previous session. */
    b->stats.clients_disconnected--;
    mqttb_session_del(s);
    s = NULL;
  }
  bool present = s != NULL;
  if (s) {
    b->stats.clients_disconnected--;
  } else {
    s = mqttb_session_new(b, cid, idlen);
    if (!s) {
      mqttb_mem_free(&b->mem, cid);
      mqttb_msg_unref(&b->mem, will);
      return MQTTB_ERR_CONN_NOMEM;
    }
  }
  s->clean = ck.clean;
  s->conn = c;
  c->session = s;
  c->client_id = cid;
  c->will = will;
  c->state = MQTTB_CONN_CONNECTED;
  b->stats.clients_connected++;
  b->stats.connects_total++;
  if (b->stats.clients_connected > b->stats.clients_maximum)
    b->stats.clients_maximum = b->stats.clients_connected;
  if (send_connack(c, present, MQTTB_REASON_SUCCESS) != 0)
    return MQTTB_ERR_CONN_NOMEM;
  mqttb_log(b, MQTTB_LOG_DEBUG, "client %s connected (level %u, clean %d, keep-alive %u)", cid,
            c->level, c->clean, c->keepalive);
  if (b->cb.on_connect)
    b->cb.on_connect(c, b->user_data);
  if (present)
    mqttb_session_resume(s);
  return 0;
}

static bool authorized(mqttb_conn *c, mqttb_access access, const uint8_t *topic, size_t len,
                       uint8_t qos, bool retain) {
  mqttb_broker *b = c->broker;
  if (!b->cb.authorize)
    return true;
  return b->cb.authorize(c, access, (const char *)topic, len, qos, retain, b->user_data) == 0;
}

static int handle_publish(mqttb_conn *c, uint8_t flags, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  mqttb_session *s = c->session;
  mqttb_publish p;
  int r = mqttb_decode_publish(flags, body, len, &p);
  if (r != MQTTB_CODEC_OK) {
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: malformed PUBLISH (%d)", c->client_id, r);
    return codec_err(r);
  }
  b->stats.publish_received++;
  bool deliver = true;
  if (p.qos == 2 && mqttb_session_qos2_has(s, p.packet_id)) {
    /* A re-sent QoS 2 PUBLISH before PUBREL: acknowledged, not delivered
     * again [MQTT-4.3.3-2]. */
    deliver = false;
  } else if (mqttb_sys_topic(p.topic.ptr, p.topic.len)) {
    /* The $SYS tree is the broker's own. */
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: publishing to %.*s refused: $SYS is read-only",
              c->client_id, (int)p.topic.len, (const char *)p.topic.ptr);
    deliver = false;
  } else if (!authorized(c, MQTTB_ACCESS_PUBLISH, p.topic.ptr, p.topic.len, p.qos, p.retain)) {
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: not authorized to publish to %.*s", c->client_id,
              (int)p.topic.len, (const char *)p.topic.ptr);
    deliver = false;
  }
  if (p.qos == 2 && deliver && mqttb_session_qos2_add(s, p.packet_id) != 0)
    return MQTTB_ERR_CONN_NOMEM;
  if (deliver) {
    mqttb_msg *m =
        mqttb_msg_new(&b->mem, p.topic.ptr, p.topic.len, p.payload.ptr, p.payload.len, p.qos,
                      p.retain);
    if (!m) {
      if (p.qos == 2)
        mqttb_session_qos2_del(s, p.packet_id);
      return MQTTB_ERR_CONN_NOMEM;
    }
    mqttb_broker_publish(b, m);
    mqttb_msg_unref(&b->mem, m);
  }
  if (p.qos == 1)
    return mqttb_conn_send_ack(c, MQTTB_PKT_PUBACK, p.packet_id) ? MQTTB_ERR_CONN_NOMEM : 0;
  if (p.qos == 2)
    return mqttb_conn_send_ack(c, MQTTB_PKT_PUBREC, p.packet_id) ? MQTTB_ERR_CONN_NOMEM : 0;
  return 0;
}

typedef struct retained_ctx {
  mqttb_session *s;
  uint8_t qos;
} retained_ctx;

static void deliver_retained(mqttb_msg *m, void *ctx) {
  retained_ctx *rc = ctx;
  uint8_t qos = m->qos < rc->qos ? m->qos : rc->qos;
  mqttb_session_deliver(rc->s, m, qos, true);
}

static int handle_subscribe(mqttb_conn *c, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  mqttb_subscribe sp;
  int r = mqttb_decode_subscribe(body, len, &sp);
  if (r != MQTTB_CODEC_OK) {
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: malformed SUBSCRIBE (%d)", c->client_id, r);
    return codec_err(r);
  }
  uint8_t small[64];
  uint8_t *codes = sp.count <= sizeof(small) ? small : mqttb_mem_malloc(&b->mem, sp.count);
  if (!codes)
    return MQTTB_ERR_CONN_NOMEM;
  size_t pos = 0, i = 0;
  mqttb_slice f;
  uint8_t opts;
  while (mqttb_subscribe_next(&sp.entries, &pos, &f, &opts)) {
    uint8_t qos = opts & 3;
    if (!authorized(c, MQTTB_ACCESS_SUBSCRIBE, f.ptr, f.len, qos, false)) {
      mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: not authorized to subscribe to %.*s",
                c->client_id, (int)f.len, (const char *)f.ptr);
      codes[i++] = MQTTB_REASON_SUBSCRIBE_FAILURE;
    } else if (mqttb_session_subscribe(c->session, (const char *)f.ptr, f.len, qos) != 0) {
      codes[i++] = MQTTB_REASON_SUBSCRIBE_FAILURE;
    } else {
      codes[i++] = qos;
    }
  }
  size_t total = mqttb_suback_size(sp.count);
  size_t before = c->out_pending;
  int rv = 0;
  if (out_reserve(c, total, 1) == 0) {
    mqttb_encode_suback(out_bytes(c, total), sp.packet_id, codes, sp.count);
    b->stats.packets_sent++;
    out_signal(c, before);
  } else {
    rv = MQTTB_ERR_CONN_NOMEM;
  }
  /* Retained messages follow the SUBACK [MQTT-3.3.1-6]. */
  pos = 0;
  i = 0;
  while (rv == 0 && mqttb_subscribe_next(&sp.entries, &pos, &f, &opts)) {
    if (codes[i] != MQTTB_REASON_SUBSCRIBE_FAILURE) {
      retained_ctx rc = {c->session, codes[i]};
      if (mqttb_trie_match_retained(b, &b->retained, (const char *)f.ptr, f.len,
                                    deliver_retained, &rc) != 0)
        rv = MQTTB_ERR_CONN_NOMEM;
    }
    i++;
  }
  if (codes != small)
    mqttb_mem_free(&b->mem, codes);
  return rv;
}

static int handle_unsubscribe(mqttb_conn *c, const uint8_t *body, size_t len) {
  mqttb_unsubscribe up;
  int r = mqttb_decode_unsubscribe(body, len, &up);
  if (r != MQTTB_CODEC_OK) {
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: malformed UNSUBSCRIBE (%d)",
              c->client_id, r);
    return codec_err(r);
  }
  size_t pos = 0;
  mqttb_slice f;
  while (mqttb_unsubscribe_next(&up.entries, &pos, &f))
    mqttb_session_unsubscribe(c->session, (const char *)f.ptr, f.len);
  return mqttb_conn_send_ack(c, MQTTB_PKT_UNSUBACK, up.packet_id) ? MQTTB_ERR_CONN_NOMEM : 0;
}

static int handle_packet(mqttb_conn *c, const mqttb_frame *f, const uint8_t *body,
                         uint64_t now) {
  mqttb_broker *b = c->broker;
  b->stats.packets_received++;
  c->last_rx = now;
  size_t len = f->remaining;
  if (f->type == MQTTB_PKT_CONNECT)
    return handle_connect(c, body, len);
  uint16_t pid;
  switch (f->type) {
  case MQTTB_PKT_PUBLISH:
    return handle_publish(c, f->flags, body, len);
  case MQTTB_PKT_PUBACK:
  case MQTTB_PKT_PUBREC:
  case MQTTB_PKT_PUBREL:
  case MQTTB_PKT_PUBCOMP:
    if (mqttb_decode_ack(body, len, &pid) != MQTTB_CODEC_OK) {
      mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: malformed acknowledgement (type %u)",
                c->client_id, f->type);
      return MQTTB_ERR_MALFORMED;
    }
    if (f->type == MQTTB_PKT_PUBACK) {
      mqttb_session_on_puback(c->session, pid);
    } else if (f->type == MQTTB_PKT_PUBREC) {
      mqttb_session_on_pubrec(c->session, pid);
    } else if (f->type == MQTTB_PKT_PUBCOMP) {
      mqttb_session_on_pubcomp(c->session, pid);
    } else {
      /* PUBREL: the inbound QoS 2 flow ends; PUBCOMP even for an unknown
       * id [MQTT-4.3.3-2]. */
      mqttb_session_qos2_del(c->session, pid);
      if (mqttb_conn_send_ack(c, MQTTB_PKT_PUBCOMP, pid) != 0)
        return MQTTB_ERR_CONN_NOMEM;
    }
    return 0;
  case MQTTB_PKT_SUBSCRIBE:
    return handle_subscribe(c, body, len);
  case MQTTB_PKT_UNSUBSCRIBE:
    return handle_unsubscribe(c, body, len);
  case MQTTB_PKT_PINGREQ:
    if (len != 0)
      return MQTTB_ERR_MALFORMED;
    {
      uint8_t buf[MQTTB_EMPTY_SIZE];
      mqttb_encode_empty(buf, MQTTB_PKT_PINGRESP);
      return send_raw(c, buf, sizeof(buf)) ? MQTTB_ERR_CONN_NOMEM : 0;
    }
  case MQTTB_PKT_DISCONNECT:
    if (len != 0)
      return MQTTB_ERR_MALFORMED;
    /* [MQTT-3.14.4-3]: the will is discarded. */
    mqttb_msg_unref(&b->mem, c->will);
    c->will = NULL;
    return MQTTB_ERR_CLIENT_DISCONNECTED;
  default:
    /* Server-to-client packets (CONNACK, SUBACK, UNSUBACK, PINGRESP) and
     * AUTH are not valid from an MQTT 3.x client. */
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: unexpected packet type %u",
              c->client_id ? c->client_id : "<none>", f->type);
    return MQTTB_ERR_PROTOCOL;
  }
}

/* Checks made as soon as a fixed header is complete, before the body is
 * buffered. */
static int check_header(mqttb_conn *c, const mqttb_frame *f) {
  int r = mqttb_codec_check_flags(f->type, f->flags);
  if (r != MQTTB_CODEC_OK) {
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: invalid fixed header (type %u, flags %#x)",
              c->client_id ? c->client_id : "<none>", f->type, f->flags);
    return MQTTB_ERR_MALFORMED;
  }
  if (c->state == MQTTB_CONN_AWAIT_CONNECT && f->type != MQTTB_PKT_CONNECT) {
    /* [MQTT-3.1.0-1] */
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "first packet is not CONNECT (type %u)", f->type);
    return MQTTB_ERR_PROTOCOL;
  }
  if (c->state == MQTTB_CONN_CONNECTED && f->type == MQTTB_PKT_CONNECT) {
    /* [MQTT-3.1.0-2] */
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: second CONNECT", c->client_id);
    return MQTTB_ERR_PROTOCOL;
  }
  return 0;
}

static int frame_err(mqttb_conn *c, int r) {
  if (r == MQTTB_CODEC_TOO_LARGE)
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: packet larger than max_packet_size %u",
              c->client_id ? c->client_id : "<none>", c->broker->settings.max_packet_size);
  else
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: invalid remaining length",
              c->client_id ? c->client_id : "<none>");
  return codec_err(r);
}

static int rbuf_append(mqttb_conn *c, const uint8_t *p, size_t n) {
  void *arr = c->rbuf;
  if (mqttb_mem_grow(&c->broker->mem, &arr, &c->rcap, c->rlen + n, 1) != 0)
    return MQTTB_ERR_CONN_NOMEM;
  c->rbuf = arr;
  memcpy(c->rbuf + c->rlen, p, n);
  c->rlen += n;
  return 0;
}

static int process(mqttb_conn *c, const uint8_t *in, size_t len, uint64_t now) {
  uint32_t maxp = c->broker->settings.max_packet_size;
  size_t off = 0;
  mqttb_frame f;
  while (off < len && c->state < MQTTB_CONN_CLOSING) {
    if (c->rlen > 0) {
      /* Finish the packet started by an earlier call. */
      int r = mqttb_codec_frame(c->rbuf, c->rlen, maxp, &f);
      while (r == MQTTB_CODEC_INCOMPLETE && off < len) {
        /* The fixed header itself was split: take it a byte at a time. */
        if (rbuf_append(c, in + off, 1) != 0)
          return MQTTB_ERR_CONN_NOMEM;
        off++;
        r = mqttb_codec_frame(c->rbuf, c->rlen, maxp, &f);
      }
      if (r == MQTTB_CODEC_INCOMPLETE)
        break;
      if (r != MQTTB_CODEC_OK)
        return frame_err(c, r);
      int rv = check_header(c, &f);
      if (rv != 0)
        return rv;
      size_t total = (size_t)f.hdr_len + f.remaining;
      size_t take = total - c->rlen;
      if (take > len - off)
        take = len - off;
      if (rbuf_append(c, in + off, take) != 0)
        return MQTTB_ERR_CONN_NOMEM;
      off += take;
      if (c->rlen == total) {
        c->rlen = 0;
        rv = handle_packet(c, &f, c->rbuf + f.hdr_len, now);
        if (c->rcap > 65536) {
          /* Give back the memory of a large packet. */
          mqttb_mem_free(&c->broker->mem, c->rbuf);
          c->rbuf = NULL;
          c->rcap = 0;
        }
        if (rv != 0)
          return rv;
      }
      continue;
    }
    int r = mqttb_codec_frame(in + off, len - off, maxp, &f);
    if (r == MQTTB_CODEC_INCOMPLETE) {
      if (rbuf_append(c, in + off, len - off) != 0)
        return MQTTB_ERR_CONN_NOMEM;
      break;
    }
    if (r != MQTTB_CODEC_OK)
      return frame_err(c, r);
    int rv = check_header(c, &f);
    if (rv != 0)
      return rv;
    size_t total = (size_t)f.hdr_len + f.remaining;
    if (total > len - off) {
      if (rbuf_append(c, in + off, len - off) != 0)
        return MQTTB_ERR_CONN_NOMEM;
      break;
    }
    rv = handle_packet(c, &f, in + off + f.hdr_len, now);
    off += total;
    if (rv != 0)
      return rv;
  }
  return 0;
}

/* ---------------------------------------------------------------- public */

int mqttb_conn_new(mqttb_conn **pconn, mqttb_broker *b, uint64_t now, void *user_data) {
  if (!pconn || !b)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (b->settings.max_connections && b->stats.connections >= b->settings.max_connections) {
    mqttb_log(b, MQTTB_LOG_WARNING, "connection refused: max_connections (%u) reached",
              b->settings.max_connections);
    return MQTTB_ERR_TOO_MANY_CONNECTIONS;
  }
  mqttb_conn *c = mqttb_mem_calloc(&b->mem, 1, sizeof(*c));
  if (!c)
    return MQTTB_ERR_NOMEM;
  c->broker = b;
  c->user_data = user_data;
  c->created = now;
  c->last_rx = now;
  c->timer_idx = SIZE_MAX;
  uint64_t dl = conn_deadline(c);
  if (dl != UINT64_MAX && mqttb_timer_set(b, c, dl) != 0) {
    mqttb_mem_free(&b->mem, c);
    return MQTTB_ERR_NOMEM;
  }
  c->next = b->conns;
  if (b->conns)
    b->conns->prev = c;
  b->conns = c;
  b->stats.connections++;
  *pconn = c;
  return 0;
}

void mqttb_conn_del(mqttb_conn *c) {
  if (!c)
    return;
  mqttb_broker *b = c->broker;
  if (c->state < MQTTB_CONN_CLOSING) {
    /* The embedder is deleting it: no on_close for a connection it already
     * knows is gone. */
    c->close_notified = true;
    mqttb_conn_close(c, MQTTB_ERR_TRANSPORT_CLOSED);
  }
  for (size_t i = 0; i < b->ndoomed; i++) {
    if (b->doomed[i] == c) {
      b->doomed[i] = b->doomed[--b->ndoomed];
      break;
    }
  }
  mqttb_broker_reap(b);
  mqttb_timer_remove(b, c);
  if (c->prev)
    c->prev->next = c->next;
  else
    b->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  b->stats.connections--;
  for (size_t i = 0; i < c->seg_count; i++)
    mqttb_msg_unref(&b->mem, c->seg[(c->seg_head + i) % c->seg_cap].msg);
  mqttb_msg_unref(&b->mem, c->will);
  mqttb_mem_free(&b->mem, c->seg);
  mqttb_mem_free(&b->mem, c->wbuf);
  mqttb_mem_free(&b->mem, c->rbuf);
  mqttb_mem_free(&b->mem, c->client_id);
  mqttb_mem_free(&b->mem, c);
}

int mqttb_conn_recv(mqttb_conn *c, const uint8_t *in, size_t len, uint64_t now) {
  if (!c || (!in && len > 0))
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (c->state >= MQTTB_CONN_CLOSING)
    return MQTTB_ERR_INVALID_STATE;
  mqttb_broker *b = c->broker;
  b->stats.bytes_received += len;
  int rv = process(c, in, len, now);
  if (rv != 0)
    mqttb_conn_close(c, rv);
  else if (c->state == MQTTB_CONN_CONNECTED) {
    /* Timers are lazy: a heap entry may lie later than the keep-alive
     * deadline only right after CONNECT, when it still holds the connect
     * timeout. */
    uint64_t dl = conn_deadline(c);
    if (dl != UINT64_MAX &&
        (c->timer_idx == SIZE_MAX || dl < b->timers[c->timer_idx].deadline) &&
        mqttb_timer_set(b, c, dl) != 0)
      mqttb_conn_close(c, MQTTB_ERR_CONN_NOMEM);
  }
  mqttb_broker_reap(b);
  return c->state >= MQTTB_CONN_CLOSING ? c->close_reason : 0;
}

int mqttb_conn_transport_closed(mqttb_conn *c, uint64_t now) {
  (void)now;
  if (!c)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (c->state < MQTTB_CONN_CLOSING) {
    c->close_notified = true;
    mqttb_conn_close(c, MQTTB_ERR_TRANSPORT_CLOSED);
  }
  c->state = MQTTB_CONN_DEAD;
  mqttb_broker_reap(c->broker);
  return 0;
}

int mqttb_conn_on_timer(mqttb_conn *c, uint64_t now) {
  uint64_t dl = conn_deadline(c);
  if (dl > now)
    return dl == UINT64_MAX ? 0 : mqttb_timer_set(c->broker, c, dl);
  mqttb_conn_close(c, c->state == MQTTB_CONN_AWAIT_CONNECT ? MQTTB_ERR_CONNECT_TIMEOUT
                                                           : MQTTB_ERR_KEEPALIVE_TIMEOUT);
  return 0;
}

void *mqttb_conn_get_user_data(const mqttb_conn *c) {
  return c ? c->user_data : NULL;
}

const char *mqttb_conn_get_client_id(const mqttb_conn *c) {
  return c ? c->client_id : NULL;
}

int mqttb_conn_get_protocol_level(const mqttb_conn *c) {
  return c ? c->level : 0;
}

int mqttb_conn_get_keepalive(const mqttb_conn *c) {
  return c ? c->keepalive : 0;
}

int mqttb_conn_get_clean_session(const mqttb_conn *c) {
  return c ? c->clean : 0;
}

mqttb_broker *mqttb_conn_get_broker(const mqttb_conn *c) {
  return c ? c->broker : NULL;
}
