/* SPDX-License-Identifier: MIT */
/* The per-connection state machine: input framing, packet handling for
 * MQTT 3.1, 3.1.1 and 5, the output queue, and closing. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Messages whose topic and payload together are at most this many bytes are
 * copied into the connection's byte buffer rather than referenced: a few
 * bytes of copying is cheaper than an extra iovec. */
#define COPY_THRESHOLD 256u

/* Reading the rarely used part of a connection; ext() to write it. */
static const struct mqttb_conn_ext no_ext;
#define X(c) ((const struct mqttb_conn_ext *)((c)->x ? (c)->x : &no_ext))

static struct mqttb_conn_ext *ext(mqttb_conn *c) {
  if (!c->x)
    c->x = mqttb_mem_calloc(&c->broker->mem, 1, sizeof(*c->x));
  return c->x;
}

static const char *cid(const mqttb_conn *c) {
  return c->client_id ? c->client_id : "<none>";
}

/* ---------------------------------------------------------------- output */

static void stall_timer(mqttb_conn *c);

static void out_signal(mqttb_conn *c, size_t before) {
  if (before == 0 && c->out_pending > 0) {
    c->out_since = c->broker->now;
    stall_timer(c);
    if (c->broker->cb.want_write)
      c->broker->cb.want_write(c, c->broker->user_data);
  }
}

static int seg_reserve(mqttb_conn *c, size_t nsegs) {
  if (c->seg_count + nsegs <= c->seg_cap)
    return 0;
  size_t ncap = c->seg_cap ? c->seg_cap * 2 : 8;
  while (ncap < c->seg_count + nsegs)
    ncap *= 2;
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
  return seg_reserve(c, nsegs);
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

/* ---------------------------------------------------------------- PUBLISH */

/* How a delivery goes on the wire to this connection. */
typedef struct pub_plan {
  uint16_t alias;  /* MQTT 5 topic alias, 0 for none */
  bool new_alias;  /* the alias is assigned by this packet */
  bool send_topic; /* false: the alias stands for the topic */
  uint32_t expiry; /* remaining Message Expiry Interval, seconds */
  bool has_expiry;
  size_t props_len; /* MQTT 5 property block */
  size_t remaining;
  size_t total;
} pub_plan;

static void plan_publish(mqttb_conn *c, const mqttb_dlv *d, pub_plan *pl) {
  const mqttb_msg *m = d->msg;
  memset(pl, 0, sizeof(*pl));
  pl->send_topic = true;
  size_t rem = 2u + m->payload_len + (d->qos ? 2u : 0u);
  if (c->level == 5) {
    size_t props = m->props_len;
    if (m->expiry_at != UINT64_MAX) {
      /* [MQTT-3.3.2-6]: the interval left, not the one received. */
      uint64_t left = m->expiry_at > c->broker->now ? m->expiry_at - c->broker->now : 0;
      pl->expiry = (uint32_t)((left + 999u) / 1000u);
      pl->has_expiry = true;
      props += 5;
    }
    if (c->client_alias_max) {
      void *v = X(c)->nalias_out ? mqttb_map_get(&X(c)->alias_out, MQTTB_MSG_TOPIC(m), m->topic_len)
                                 : NULL;
      if (v) {
        pl->alias = (uint16_t)(uintptr_t)v;
        pl->send_topic = false;
        props += 3;
      } else if (X(c)->nalias_out < c->client_alias_max) {
        pl->alias = (uint16_t)(X(c)->nalias_out + 1);
        pl->new_alias = true;
        props += 3;
      }
    }
    for (size_t i = 0; i < d->nids; i++)
      props += 1 + mqttb_codec_varint_size(d->ids[i]);
    pl->props_len = props;
    rem += mqttb_codec_varint_size((uint32_t)props) + props;
  }
  if (pl->send_topic)
    rem += m->topic_len;
  pl->remaining = rem;
  pl->total = rem > MQTTB_MAX_REMAINING_LENGTH ? SIZE_MAX
                                               : 1 + mqttb_codec_varint_size((uint32_t)rem) + rem;
}

static bool plan_fits(const mqttb_conn *c, const pub_plan *pl) {
  if (pl->total == SIZE_MAX)
    return false;
  /* [MQTT-3.1.2-25]: nothing larger than the client's Maximum Packet Size. */
  return c->client_max_packet == 0 || pl->total <= c->client_max_packet;
}

/* Remember an outbound alias the client has now seen. A failure only means
 * the topic is sent in full next time. */
static void alias_commit(mqttb_conn *c, const mqttb_msg *m, uint16_t alias) {
  const mqttb_mem *mem = &c->broker->mem;
  struct mqttb_conn_ext *x = ext(c);
  if (!x)
    return;
  if (!x->alias_out_topic) {
    x->alias_out_topic = mqttb_mem_calloc(mem, c->client_alias_max, sizeof(char *));
    if (!x->alias_out_topic)
      return;
  }
  char *t = mqttb_mem_malloc(mem, (size_t)m->topic_len + 1);
  if (!t)
    return;
  memcpy(t, MQTTB_MSG_TOPIC(m), m->topic_len);
  t[m->topic_len] = '\0';
  if (mqttb_map_put(&x->alias_out, mem, t, m->topic_len, (void *)(uintptr_t)alias) != 0) {
    mqttb_mem_free(mem, t);
    return;
  }
  x->alias_out_topic[alias - 1] = t;
  x->nalias_out = alias;
}

int mqttb_conn_send_publish(mqttb_conn *c, const mqttb_dlv *d, bool dup, uint16_t pid) {
  mqttb_msg *msg = d->msg;
  uint8_t qos = d->qos;
  size_t before = c->out_pending;
  pub_plan pl;
  plan_publish(c, d, &pl);
  if (!plan_fits(c, &pl))
    return MQTTB_ERR_PACKET_TOO_LARGE;
  uint8_t hdr[5];
  hdr[0] =
      (uint8_t)((MQTTB_PKT_PUBLISH << 4) | (dup ? 0x08 : 0) | (qos << 1) | (d->retain ? 1 : 0));
  size_t hlen = 1 + mqttb_codec_varint_encode(hdr + 1, (uint32_t)pl.remaining);
  size_t tail = 2u + msg->topic_len + msg->payload_len;
  if (c->level < 5 && tail > COPY_THRESHOLD) {
    /* Header from wbuf; topic and payload referenced from the shared
     * message, whose layout is the MQTT 3.x wire format. */
    if (out_reserve(c, hlen + 2, 4) != 0)
      return MQTTB_ERR_NOMEM;
    memcpy(out_bytes(c, hlen), hdr, hlen);
    if (qos == 0) {
      out_msg(c, msg, 0, tail);
    } else {
      out_msg(c, msg, 0, 2u + msg->topic_len);
      put16(out_bytes(c, 2), pid);
      out_msg(c, msg, 2u + msg->topic_len, msg->payload_len);
    }
  } else {
    /* Everything but a large payload is written into wbuf. */
    bool ref_payload = msg->payload_len > COPY_THRESHOLD;
    size_t head = pl.total - (ref_payload ? msg->payload_len : 0);
    if (out_reserve(c, head, 2) != 0)
      return MQTTB_ERR_NOMEM;
    uint8_t *p = out_bytes(c, head);
    memcpy(p, hdr, hlen);
    p += hlen;
    if (pl.send_topic) {
      memcpy(p, msg->data, 2u + msg->topic_len);
      p += 2u + msg->topic_len;
    } else {
      p = put16(p, 0);
    }
    if (qos)
      p = put16(p, pid);
    if (c->level == 5) {
      p += mqttb_codec_varint_encode(p, (uint32_t)pl.props_len);
      if (pl.has_expiry)
        p += mqttb_prop_put_u32(p, MQTTB_PROP_MESSAGE_EXPIRY, pl.expiry);
      if (pl.alias)
        p += mqttb_prop_put_u16(p, MQTTB_PROP_TOPIC_ALIAS, pl.alias);
      for (size_t i = 0; i < d->nids; i++)
        p += mqttb_prop_put_varint(p, MQTTB_PROP_SUBSCRIPTION_ID, d->ids[i]);
      if (msg->props_len) {
        memcpy(p, MQTTB_MSG_PROPS(msg), msg->props_len);
        p += msg->props_len;
      }
    }
    if (ref_payload)
      out_msg(c, msg, 2u + msg->topic_len, msg->payload_len);
    else if (msg->payload_len)
      memcpy(p, MQTTB_MSG_PAYLOAD(msg), msg->payload_len);
    if (pl.new_alias)
      alias_commit(c, msg, pl.alias);
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

int mqttb_conn_send_ack(mqttb_conn *c, uint8_t type, uint16_t pid, uint8_t reason) {
  uint8_t buf[5];
  size_t n =
      c->level == 5 ? mqttb_encode_ack5(buf, type, pid, reason) : mqttb_encode_ack(buf, type, pid);
  return send_raw(c, buf, n);
}

/* A packet made of a reason code and a property block (DISCONNECT, AUTH). */
static int send_reason_props(mqttb_conn *c, uint8_t type, uint8_t reason, const uint8_t *props,
                             size_t plen) {
  size_t before = c->out_pending;
  size_t n = mqttb_reason_props_size(plen);
  if (n == 0 || out_reserve(c, n, 1) != 0)
    return MQTTB_ERR_NOMEM;
  mqttb_encode_reason_props(out_bytes(c, n), type, reason, props, plen);
  c->broker->stats.packets_sent++;
  out_signal(c, before);
  return 0;
}

static int send_disconnect5(mqttb_conn *c, uint8_t reason) {
  uint8_t props[3 + 256];
  size_t plen = 0;
  if (X(c)->server_reference &&
      (reason == MQTTB_REASON_USE_ANOTHER_SERVER || reason == MQTTB_REASON_SERVER_MOVED)) {
    size_t n = strlen(X(c)->server_reference);
    if (n <= 256)
      plen = mqttb_prop_put_str(props, MQTTB_PROP_SERVER_REFERENCE,
                                (const uint8_t *)X(c)->server_reference, n);
  }
  return send_reason_props(c, MQTTB_PKT_DISCONNECT, reason, props, plen);
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

int mqttb_conn_output_ack(mqttb_conn *c, size_t nbytes, uint64_t now) {
  if (!c || nbytes > c->out_pending)
    return MQTTB_ERR_INVALID_ARGUMENT;
  c->broker->now = now;
  if (nbytes)
    c->out_since = now; /* progress */
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
    /* Drained: give the buffers back, so that idle connections cost only
     * their state. */
    mqttb_mem_free(&c->broker->mem, c->seg);
    mqttb_mem_free(&c->broker->mem, c->wbuf);
    c->seg = NULL;
    c->wbuf = NULL;
    c->seg_cap = c->wcap = 0;
    c->seg_head = 0;
    c->wlen = 0;
  }
  return 0;
}

size_t mqttb_conn_output_pending(const mqttb_conn *c) {
  return c ? c->out_pending : 0;
}

/* ---------------------------------------------------------------- closing */

/* The MQTT 5 DISCONNECT reason for a close reason. */
static uint8_t v5_reason(const mqttb_conn *c, int reason) {
  if (c->disconnect_reason || c->disconnect_reason_set)
    return c->disconnect_reason;
  switch (reason) {
  case MQTTB_ERR_MALFORMED:
    return MQTTB_REASON_MALFORMED_PACKET;
  case MQTTB_ERR_PROTOCOL:
    return MQTTB_REASON_PROTOCOL_ERROR;
  case MQTTB_ERR_PACKET_TOO_LARGE:
    return MQTTB_REASON_PACKET_TOO_LARGE;
  case MQTTB_ERR_KEEPALIVE_TIMEOUT:
    return MQTTB_REASON_KEEP_ALIVE_TIMEOUT;
  case MQTTB_ERR_TAKEN_OVER:
    return MQTTB_REASON_SESSION_TAKEN_OVER;
  case MQTTB_ERR_SHUTDOWN:
    return MQTTB_REASON_SERVER_SHUTTING_DOWN;
  case MQTTB_ERR_NOT_AUTHORIZED:
    return MQTTB_REASON_NOT_AUTHORIZED_5;
  case MQTTB_ERR_CONN_NOMEM:
    return MQTTB_REASON_QUOTA_EXCEEDED;
  default:
    return MQTTB_REASON_UNSPECIFIED_ERROR;
  }
}

void mqttb_conn_close(mqttb_conn *c, int reason) {
  if (c->state >= MQTTB_CONN_CLOSING)
    return;
  mqttb_broker *b = c->broker;
  enum mqttb_conn_state prev = c->state;
  c->state = MQTTB_CONN_CLOSING;
  c->close_reason = reason;
  mqttb_timer_remove(b, c, false);
  if (prev == MQTTB_CONN_CONNECTED && c->level == 5 && reason != MQTTB_ERR_CLIENT_DISCONNECTED &&
      reason != MQTTB_ERR_TRANSPORT_CLOSED)
    send_disconnect5(c, v5_reason(c, reason)); /* best effort */
  if (prev == MQTTB_CONN_CONNECTED) {
    /* The will is still here unless a DISCONNECT discarded it. */
    mqttb_msg *will = c->will;
    c->will = NULL;
    mqttb_session *s = c->session;
    c->session = NULL;
    b->stats.clients_connected--;
    if (will)
      mqttb_log(b, MQTTB_LOG_DEBUG, "client %s: will on %.*s", cid(c), (int)will->topic_len,
                MQTTB_MSG_TOPIC(will));
    if (s) {
      s->conn = NULL;
      mqttb_session_detach(s, will, c->will_delay);
    } else if (will) {
      mqttb_broker_publish(b, will, NULL);
    }
    mqttb_msg_unref(&b->mem, will);
  }
  if (reason == MQTTB_ERR_CLIENT_DISCONNECTED || reason == MQTTB_ERR_TRANSPORT_CLOSED ||
      reason == MQTTB_ERR_SHUTDOWN)
    mqttb_log(b, MQTTB_LOG_DEBUG, "client %s: closed: %s", cid(c), mqttb_strerror(reason));
  else
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: closing connection: %s", cid(c),
              mqttb_strerror(reason));
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
    /* No room to remember it: it stops taking output, and its next call
     * closes it. */
    c->doomed_reason = reason;
    return;
  }
  b->doomed = arr;
  b->doomed[b->ndoomed++] = c;
  c->doomed_reason = reason;
}

/* ---------------------------------------------------------------- input */

static int codec_err(mqttb_conn *c, int r) {
  switch (r) {
  case MQTTB_CODEC_TOO_LARGE:
    return MQTTB_ERR_PACKET_TOO_LARGE;
  case MQTTB_CODEC_PROTOCOL:
    c->disconnect_reason = MQTTB_REASON_PROTOCOL_ERROR;
    return MQTTB_ERR_PROTOCOL;
  default:
    return MQTTB_ERR_MALFORMED;
  }
}

/* Close with a specific MQTT 5 reason code. */
static int fail(mqttb_conn *c, uint8_t v5, int err, const char *why) {
  mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: %s", cid(c), why);
  c->disconnect_reason = v5;
  return err;
}

static uint64_t stall_deadline(const mqttb_conn *c) {
  uint32_t t = c->broker->settings.output_stall_timeout_ms;
  if (!t || c->out_pending == 0 || c->state != MQTTB_CONN_CONNECTED)
    return UINT64_MAX;
  return c->out_since + t;
}

static uint64_t conn_deadline(const mqttb_conn *c) {
  const mqttb_settings *st = &c->broker->settings;
  if (c->state == MQTTB_CONN_AWAIT_CONNECT)
    return st->connect_timeout_ms ? c->created + st->connect_timeout_ms : UINT64_MAX;
  uint64_t dl = stall_deadline(c);
  if (c->state == MQTTB_CONN_CONNECTED && c->keepalive) {
    uint64_t ka = c->last_rx + (uint64_t)c->keepalive * 1500u; /* [MQTT-3.1.2-24] */
    if (ka < dl)
      dl = ka;
  }
  return dl;
}

/* Output just became pending: make sure a timer will look at it. */
static void stall_timer(mqttb_conn *c) {
  mqttb_broker *b = c->broker;
  uint64_t dl = stall_deadline(c);
  if (dl == UINT64_MAX)
    return;
  if (c->timer_idx == SIZE_MAX || dl < b->timers[c->timer_idx].deadline)
    mqttb_timer_set(b, c, false, dl); /* on failure the keep-alive timer still runs */
}

/* MQTT 3.x CONNACK code for an MQTT 5 reason (or a 3.x code as is). */
static uint8_t v3_code(uint8_t rc) {
  if (rc <= 5)
    return rc;
  switch (rc) {
  case MQTTB_REASON_UNSUPPORTED_PROTOCOL_VERSION:
    return MQTTB_REASON_UNACCEPTABLE_PROTOCOL;
  case MQTTB_REASON_CLIENT_ID_NOT_VALID:
    return MQTTB_REASON_IDENTIFIER_REJECTED;
  case MQTTB_REASON_BAD_CREDENTIALS:
    return MQTTB_REASON_BAD_USERNAME_OR_PASSWORD;
  case MQTTB_REASON_SERVER_UNAVAILABLE_5:
  case MQTTB_REASON_SERVER_BUSY:
  case MQTTB_REASON_USE_ANOTHER_SERVER:
  case MQTTB_REASON_SERVER_MOVED:
  case MQTTB_REASON_QUOTA_EXCEEDED:
    return MQTTB_REASON_SERVER_UNAVAILABLE;
  default:
    return MQTTB_REASON_NOT_AUTHORIZED;
  }
}

/* The close reason for a refused CONNECT: unavailable (busy, redirected)
 * or not authorized. */
static int refusal_err(uint8_t v5) {
  return v3_code(v5) == MQTTB_REASON_SERVER_UNAVAILABLE ? MQTTB_ERR_SERVER_UNAVAILABLE
                                                        : MQTTB_ERR_NOT_AUTHORIZED;
}

/* MQTT 5 reason for a code the authenticate callback returned. */
static uint8_t v5_code(int rc) {
  switch (rc) {
  case MQTTB_REASON_BAD_USERNAME_OR_PASSWORD:
    return MQTTB_REASON_BAD_CREDENTIALS;
  case MQTTB_REASON_NOT_AUTHORIZED:
    return MQTTB_REASON_NOT_AUTHORIZED_5;
  case MQTTB_REASON_SERVER_UNAVAILABLE:
    return MQTTB_REASON_SERVER_UNAVAILABLE_5;
  case MQTTB_REASON_IDENTIFIER_REJECTED:
    return MQTTB_REASON_CLIENT_ID_NOT_VALID;
  default:
    return rc >= 0x80 && rc <= 0xFF ? (uint8_t)rc : MQTTB_REASON_NOT_AUTHORIZED_5;
  }
}

static int send_connack(mqttb_conn *c, bool session_present, uint8_t rc, const uint8_t *props,
                        size_t plen) {
  if (c->level == 5) {
    size_t before = c->out_pending;
    size_t n = mqttb_connack5_size(plen);
    if (out_reserve(c, n, 1) != 0)
      return MQTTB_ERR_NOMEM;
    mqttb_encode_connack5(out_bytes(c, n), session_present, rc, props, plen);
    c->broker->stats.packets_sent++;
    out_signal(c, before);
    return 0;
  }
  uint8_t buf[MQTTB_CONNACK_SIZE];
  /* MQTT 3.1 has no session-present flag: the byte is reserved. */
  mqttb_connack a = {session_present && c->level >= 4, v3_code(rc)};
  size_t n = mqttb_encode_connack(buf, &a);
  return send_raw(c, buf, n);
}

/* Refuse a CONNECT: CONNACK with the reason (MQTT 5 code; MQTT 3.x clients
 * get the nearest 3.x code), then close. */
static int refuse(mqttb_conn *c, uint8_t rc, int err, const char *why) {
  mqttb_log(c->broker, MQTTB_LOG_NOTICE, "refusing connection (CONNACK %#x): %s", rc, why);
  uint8_t props[3 + 256];
  size_t plen = 0;
  if (c->level == 5 && X(c)->server_reference &&
      (rc == MQTTB_REASON_USE_ANOTHER_SERVER || rc == MQTTB_REASON_SERVER_MOVED)) {
    size_t n = strlen(X(c)->server_reference);
    if (n <= 256)
      plen = mqttb_prop_put_str(props, MQTTB_PROP_SERVER_REFERENCE,
                                (const uint8_t *)X(c)->server_reference, n);
  }
  if (send_connack(c, false, rc, props, plen) != 0)
    return MQTTB_ERR_CONN_NOMEM;
  return err;
}

static int make_auto_id(mqttb_broker *b, char *out, size_t outlen) {
  /* A keyed hash of a counter; unpredictable with a secret key, the same
   * sequence in every run without one. */
  for (;;) {
    uint64_t x = mqttb_siphash_u64(b->settings.auto_id_key, ++b->auto_id_counter);
    int n = snprintf(out, outlen, "%s%016llx", b->auto_id_prefix, (unsigned long long)x);
    if (n < 0 || (size_t)n >= outlen)
      return -1;
    if (!mqttb_map_get(&b->sessions, out, (size_t)n))
      return n;
  }
}

/* What CONNECT properties say. */
typedef struct connect_props {
  uint32_t session_expiry;
  uint16_t receive_max;
  uint32_t max_packet;
  uint16_t alias_max;
  bool request_response_info;
  bool has_auth_method;
  mqttb_slice auth_method;
  mqttb_slice auth_data;
} connect_props;

static void read_connect_props(const mqttb_slice *props, connect_props *cp) {
  memset(cp, 0, sizeof(*cp));
  cp->receive_max = 65535;
  size_t pos = 0;
  mqttb_prop p;
  while (mqttb_props_next(props, &pos, &p)) {
    switch (p.id) {
    case MQTTB_PROP_SESSION_EXPIRY:
      cp->session_expiry = p.value;
      break;
    case MQTTB_PROP_RECEIVE_MAXIMUM:
      cp->receive_max = (uint16_t)p.value;
      break;
    case MQTTB_PROP_MAXIMUM_PACKET_SIZE:
      cp->max_packet = p.value;
      break;
    case MQTTB_PROP_TOPIC_ALIAS_MAXIMUM:
      cp->alias_max = (uint16_t)p.value;
      break;
    case MQTTB_PROP_REQUEST_RESPONSE_INFO:
      cp->request_response_info = p.value != 0;
      break;
    case MQTTB_PROP_AUTH_METHOD:
      cp->has_auth_method = true;
      cp->auth_method = p.a;
      break;
    case MQTTB_PROP_AUTH_DATA:
      cp->auth_data = p.a;
      break;
    default:
      break;
    }
  }
}

/* What PUBLISH (or will) properties say, and how many bytes of them are
 * forwarded as they are. */
typedef struct pub_props {
  uint8_t payload_format;
  bool has_expiry;
  uint32_t expiry;
  uint16_t alias;
  bool has_sub_id;
  uint32_t will_delay;
  size_t fwd_len;
} pub_props;

static bool forwarded(uint8_t id) {
  return id != MQTTB_PROP_MESSAGE_EXPIRY && id != MQTTB_PROP_TOPIC_ALIAS &&
         id != MQTTB_PROP_SUBSCRIPTION_ID && id != MQTTB_PROP_WILL_DELAY;
}

static void read_pub_props(const mqttb_slice *props, pub_props *pp) {
  memset(pp, 0, sizeof(*pp));
  size_t pos = 0, start = 0;
  mqttb_prop p;
  while (mqttb_props_next(props, &pos, &p)) {
    switch (p.id) {
    case MQTTB_PROP_PAYLOAD_FORMAT:
      pp->payload_format = (uint8_t)p.value;
      break;
    case MQTTB_PROP_MESSAGE_EXPIRY:
      pp->has_expiry = true;
      pp->expiry = p.value;
      break;
    case MQTTB_PROP_TOPIC_ALIAS:
      pp->alias = (uint16_t)p.value;
      break;
    case MQTTB_PROP_SUBSCRIPTION_ID:
      pp->has_sub_id = true;
      break;
    case MQTTB_PROP_WILL_DELAY:
      pp->will_delay = p.value;
      break;
    default:
      break;
    }
    if (forwarded(p.id))
      pp->fwd_len += pos - start;
    start = pos;
  }
}

/* Copy the forwarded properties, in order (user properties keep theirs). */
static void copy_fwd_props(const mqttb_slice *props, uint8_t *out) {
  size_t pos = 0, start = 0;
  mqttb_prop p;
  while (mqttb_props_next(props, &pos, &p)) {
    if (forwarded(p.id)) {
      memcpy(out, props->ptr + start, pos - start);
      out += pos - start;
    }
    start = pos;
  }
}

/* A message from PUBLISH or will fields. NULL on out-of-memory. */
static mqttb_msg *make_msg(mqttb_broker *b, mqttb_slice topic, mqttb_slice payload,
                           const mqttb_slice *props, const pub_props *pp, uint8_t qos,
                           bool retain) {
  mqttb_msg *m = mqttb_msg_new(&b->mem, topic.ptr, topic.len, payload.ptr, payload.len, NULL,
                               pp ? pp->fwd_len : 0, qos, retain);
  if (m && pp && pp->fwd_len)
    copy_fwd_props(props, (uint8_t *)MQTTB_MSG_PROPS(m));
  return m;
}

/* Call the authenticate callback. Returns its reason code. */
static int authenticate(mqttb_conn *c, const mqttb_connect *ck, const char *id, size_t idlen,
                        const mqttb_slice *method, const mqttb_slice *data, int step, bool reauth) {
  mqttb_broker *b = c->broker;
  mqttb_auth_request req;
  memset(&req, 0, sizeof(req));
  req.client_id = id;
  req.client_id_len = idlen;
  if (ck && ck->has_username) {
    req.username = (const char *)ck->username.ptr;
    req.username_len = ck->username.len;
  }
  if (ck && ck->has_password) {
    req.password = ck->password.ptr;
    req.password_len = ck->password.len;
  }
  req.protocol_level = c->level;
  if (method) {
    req.auth_method = (const char *)method->ptr;
    req.auth_method_len = method->len;
  }
  if (data && data->ptr) {
    req.auth_data = data->ptr;
    req.auth_data_len = data->len;
  }
  req.step = step;
  req.reauthenticate = reauth;
  return b->cb.authenticate(c, &req, b->user_data);
}

/* An AUTH packet carrying the method and the data the callback set. */
static int send_auth(mqttb_conn *c, uint8_t reason) {
  size_t plen =
      mqttb_prop_put_str(NULL, MQTTB_PROP_AUTH_METHOD, NULL, X(c)->auth_method_len) +
      (X(c)->auth_data ? mqttb_prop_put_str(NULL, MQTTB_PROP_AUTH_DATA, NULL, X(c)->auth_data_len)
                       : 0);
  uint8_t *props = mqttb_mem_malloc(&c->broker->mem, plen);
  if (!props)
    return MQTTB_ERR_NOMEM;
  size_t n = mqttb_prop_put_str(props, MQTTB_PROP_AUTH_METHOD, (const uint8_t *)X(c)->auth_method,
                                X(c)->auth_method_len);
  if (X(c)->auth_data)
    mqttb_prop_put_str(props + n, MQTTB_PROP_AUTH_DATA, X(c)->auth_data, X(c)->auth_data_len);
  int rv = send_reason_props(c, MQTTB_PKT_AUTH, reason, props, plen);
  mqttb_mem_free(&c->broker->mem, props);
  return rv;
}

static char *dup_str(const mqttb_mem *mem, const void *s, size_t len) {
  char *d = mqttb_mem_malloc(mem, len + 1);
  if (d) {
    memcpy(d, s, len);
    d[len] = '\0';
  }
  return d;
}

/* CONNACK properties (MQTT 5). Returns the length written into out (room
 * for at least 1024 bytes plus the auth data and response information). */
static size_t connack_props(mqttb_conn *c, uint8_t *out, bool assigned, uint16_t server_ka) {
  const mqttb_settings *st = &c->broker->settings;
  uint8_t *p = out;
  if (st->receive_maximum != 65535)
    p += mqttb_prop_put_u16(p, MQTTB_PROP_RECEIVE_MAXIMUM, st->receive_maximum);
  if (st->max_qos < 2)
    p += mqttb_prop_put_byte(p, MQTTB_PROP_MAXIMUM_QOS, st->max_qos);
  if (!st->retain_available)
    p += mqttb_prop_put_byte(p, MQTTB_PROP_RETAIN_AVAILABLE, 0);
  if (st->max_packet_size < MQTTB_MAX_REMAINING_LENGTH + 5u)
    p += mqttb_prop_put_u32(p, MQTTB_PROP_MAXIMUM_PACKET_SIZE, st->max_packet_size);
  if (assigned)
    p += mqttb_prop_put_str(p, MQTTB_PROP_ASSIGNED_CLIENT_ID, (const uint8_t *)c->client_id,
                            strlen(c->client_id));
  if (st->topic_alias_maximum)
    p += mqttb_prop_put_u16(p, MQTTB_PROP_TOPIC_ALIAS_MAXIMUM, st->topic_alias_maximum);
  if (!st->wildcard_subscriptions)
    p += mqttb_prop_put_byte(p, MQTTB_PROP_WILDCARD_SUB_AVAILABLE, 0);
  if (!st->subscription_identifiers)
    p += mqttb_prop_put_byte(p, MQTTB_PROP_SUB_ID_AVAILABLE, 0);
  if (!st->shared_subscriptions)
    p += mqttb_prop_put_byte(p, MQTTB_PROP_SHARED_SUB_AVAILABLE, 0);
  if (server_ka)
    p += mqttb_prop_put_u16(p, MQTTB_PROP_SERVER_KEEP_ALIVE, server_ka);
  if (c->request_response_info && st->response_information)
    p += mqttb_prop_put_str(p, MQTTB_PROP_RESPONSE_INFO, (const uint8_t *)st->response_information,
                            strlen(st->response_information));
  if (X(c)->auth_method) {
    p += mqttb_prop_put_str(p, MQTTB_PROP_AUTH_METHOD, (const uint8_t *)X(c)->auth_method,
                            X(c)->auth_method_len);
    if (X(c)->auth_data)
      p += mqttb_prop_put_str(p, MQTTB_PROP_AUTH_DATA, X(c)->auth_data, X(c)->auth_data_len);
  }
  return (size_t)(p - out);
}

/* Everything after authentication: session, CONNACK, resumption. */
static int complete_connect(mqttb_conn *c, const mqttb_connect *ck, const char *id, size_t idlen,
                            bool assigned, const connect_props *cp) {
  mqttb_broker *b = c->broker;
  const mqttb_settings *st = &b->settings;
  uint16_t server_ka = 0;
  if (c->level == 5 && st->max_keepalive &&
      (ck->keepalive == 0 || ck->keepalive > st->max_keepalive)) {
    /* MQTT 5 can tell the client the keep-alive to use. */
    server_ka = (uint16_t)st->max_keepalive;
    c->keepalive = server_ka;
  }

  /* Everything that can fail for lack of memory happens before the old
   * connection or session is touched. */
  char *client_id = dup_str(&b->mem, id, idlen);
  mqttb_msg *will = NULL;
  pub_props wp;
  memset(&wp, 0, sizeof(wp));
  if (client_id && ck->will) {
    if (c->level == 5)
      read_pub_props(&ck->will_props, &wp);
    will = make_msg(b, ck->will_topic, ck->will_payload, &ck->will_props,
                    c->level == 5 ? &wp : NULL, ck->will_qos, ck->will_retain);
  }
  size_t cap = 1024 + X(c)->auth_data_len + X(c)->auth_method_len +
               (st->response_information ? strlen(st->response_information) : 0) + idlen;
  uint8_t *props = client_id ? mqttb_mem_malloc(&b->mem, cap) : NULL;
  if (!client_id || (ck->will && !will) || !props) {
    mqttb_mem_free(&b->mem, client_id);
    mqttb_mem_free(&b->mem, props);
    mqttb_msg_unref(&b->mem, will);
    return MQTTB_ERR_CONN_NOMEM;
  }
  if (will && wp.has_expiry)
    will->expiry_interval = wp.expiry ? wp.expiry : 0;

  mqttb_session *s = mqttb_map_get(&b->sessions, client_id, idlen);
  if (s && s->conn) {
    /* [MQTT-3.1.4-2]: the existing client is disconnected. */
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s already connected: closing the old connection",
              client_id);
    mqttb_conn_close(s->conn, MQTTB_ERR_TAKEN_OVER);
    s = mqttb_map_get(&b->sessions, client_id, idlen);
  }
  if (s && s->will && s->will_at <= b->now) {
    /* The will's delay passed before the timers ran: it is due. */
    mqttb_msg *due = s->will;
    s->will = NULL;
    mqttb_broker_publish(b, due, NULL);
    mqttb_msg_unref(&b->mem, due);
  }
  if (s && s->expires_at <= b->now) {
    /* Expired, though its timer has not run yet: it is gone. */
    b->stats.clients_disconnected--;
    mqttb_session_end(s);
    s = NULL;
  }
  if (s) {
    /* Back before expiry: no delayed will [MQTT-3.1.3-9], no expiry. */
    b->stats.clients_disconnected--;
    mqttb_timer_remove(b, s, true);
    s->expires_at = UINT64_MAX;
    if (ck->clean) {
      /* [MQTT-3.1.2-4]: clean start discards the session; it ends, so a
       * pending will goes out now. */
      mqttb_session_end(s);
      s = NULL;
    } else if (s->will) {
      mqttb_msg_unref(&b->mem, s->will);
      s->will = NULL;
    }
  }
  bool present = s != NULL;
  if (!s) {
    s = mqttb_session_new(b, client_id, idlen);
    if (!s) {
      mqttb_mem_free(&b->mem, client_id);
      mqttb_mem_free(&b->mem, props);
      mqttb_msg_unref(&b->mem, will);
      return MQTTB_ERR_CONN_NOMEM;
    }
  }
  if (c->level == 5)
    s->expiry_interval = cp->session_expiry;
  else
    s->expiry_interval = ck->clean ? 0 : UINT32_MAX;
  s->conn = c;
  c->session = s;
  c->client_id = client_id;
  c->will = will;
  c->will_delay = wp.will_delay;
  c->state = MQTTB_CONN_CONNECTED;
  b->stats.clients_connected++;
  b->stats.connects_total++;
  if (b->stats.clients_connected > b->stats.clients_maximum)
    b->stats.clients_maximum = b->stats.clients_connected;
  size_t plen = c->level == 5 ? connack_props(c, props, assigned, server_ka) : 0;
  int rv = send_connack(c, present, MQTTB_REASON_SUCCESS, props, plen);
  mqttb_mem_free(&b->mem, props);
  if (rv != 0)
    return MQTTB_ERR_CONN_NOMEM;
  mqttb_log(b, MQTTB_LOG_DEBUG, "client %s connected (level %u, clean %d, keep-alive %u)",
            client_id, c->level, c->clean, c->keepalive);
  if (b->cb.on_connect)
    b->cb.on_connect(c, b->user_data);
  if (present)
    mqttb_session_resume(s);
  return 0;
}

/* Decode and check a CONNECT; then authenticate (perhaps over several AUTH
 * packets), then complete it. The body is kept while an exchange is open. */
static int handle_connect(mqttb_conn *c, const uint8_t *body, size_t len, bool resumed) {
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
    if (ck.level == 5) {
      /* An MQTT 5 client is told why [MQTT-3.1.4-1]. */
      c->level = 5;
      uint8_t rc =
          r == MQTTB_CODEC_PROTOCOL ? MQTTB_REASON_PROTOCOL_ERROR : MQTTB_REASON_MALFORMED_PACKET;
      return refuse(c, rc, codec_err(c, r), "malformed CONNECT");
    }
    return codec_err(c, r);
  }
  c->level = ck.level;
  c->clean = ck.clean;
  c->keepalive = ck.keepalive;
  connect_props cp;
  read_connect_props(&ck.props, &cp);
  if (c->level == 5) {
    c->client_receive_max = cp.receive_max;
    c->client_max_packet = cp.max_packet;
    c->client_alias_max = cp.alias_max;
    c->request_response_info = cp.request_response_info;
  }

  char idbuf[64];
  const char *id = (const char *)ck.client_id.ptr;
  size_t idlen = ck.client_id.len;
  bool assigned = false;
  if (idlen == 0) {
    /* [MQTT-3.1.3-7], [MQTT-3.1.3-8]; MQTT 3.1 requires 1 to 23 characters;
     * MQTT 5 assigns an id whatever Clean Start says [MQTT-3.1.3-6]. */
    if (c->level == 3 || (c->level == 4 && !ck.clean) || !st->allow_zero_length_clientid)
      return refuse(c, MQTTB_REASON_CLIENT_ID_NOT_VALID, MQTTB_ERR_IDENTIFIER_REJECTED,
                    "empty client identifier");
    if (resumed && c->client_id && strlen(c->client_id) < sizeof(idbuf)) {
      /* Assigned when the exchange started. */
      idlen = strlen(c->client_id);
      memcpy(idbuf, c->client_id, idlen + 1);
      id = idbuf;
    } else {
      int n = make_auto_id(b, idbuf, sizeof(idbuf));
      if (n < 0)
        return MQTTB_ERR_CONN_NOMEM;
      id = idbuf;
      idlen = (size_t)n;
    }
    assigned = true;
  } else if (c->level == 3 && idlen > 23) {
    return refuse(c, MQTTB_REASON_CLIENT_ID_NOT_VALID, MQTTB_ERR_IDENTIFIER_REJECTED,
                  "MQTT 3.1 client identifier longer than 23 characters");
  }
  if (c->level < 5 && st->max_keepalive &&
      (ck.keepalive == 0 || ck.keepalive > st->max_keepalive)) {
    /* MQTT 3.x cannot tell a client to use another keep-alive, so a client
     * asking for more than allowed is refused (Mosquitto's documented
     * behaviour; 2.0.11 itself accepts such clients). */
    return refuse(c, MQTTB_REASON_CLIENT_ID_NOT_VALID, MQTTB_ERR_IDENTIFIER_REJECTED,
                  "keep-alive above max_keepalive");
  }

  if (!resumed && cp.has_auth_method) {
    if (!b->cb.authenticate)
      return refuse(c, MQTTB_REASON_BAD_AUTH_METHOD, MQTTB_ERR_NOT_AUTHORIZED,
                    "no authentication method is supported");
    struct mqttb_conn_ext *x = ext(c);
    if (!x || !(x->auth_method = dup_str(&b->mem, cp.auth_method.ptr, cp.auth_method.len)))
      return MQTTB_ERR_CONN_NOMEM;
    x->auth_method_len = cp.auth_method.len;
  }
  if (!resumed && b->cb.authenticate) {
    int rc = authenticate(c, &ck, id, idlen, cp.has_auth_method ? &cp.auth_method : NULL,
                          &cp.auth_data, 0, false);
    if (rc == MQTTB_REASON_CONTINUE_AUTHENTICATION && X(c)->auth_method) {
      /* Hold the CONNECT until the exchange ends. */
      struct mqttb_conn_ext *x = c->x; /* exists: it holds the method */
      x->pending_connect = mqttb_mem_malloc(&b->mem, len ? len : 1);
      if (!x->pending_connect)
        return MQTTB_ERR_CONN_NOMEM;
      memcpy(x->pending_connect, body, len);
      x->pending_connect_len = len;
      if (assigned) {
        c->client_id = dup_str(&b->mem, id, idlen);
        if (!c->client_id)
          return MQTTB_ERR_CONN_NOMEM;
      }
      x->auth_step = 1;
      return send_auth(c, MQTTB_REASON_CONTINUE_AUTHENTICATION) ? MQTTB_ERR_CONN_NOMEM : 0;
    }
    if (rc != MQTTB_REASON_SUCCESS) {
      uint8_t code = v5_code(rc);
      return refuse(c, code, refusal_err(code), "refused by the authenticate callback");
    }
  }
  if (resumed && c->client_id) {
    /* complete_connect takes its own copy. */
    mqttb_mem_free(&b->mem, c->client_id);
    c->client_id = NULL;
  }
  return complete_connect(c, &ck, id, idlen, assigned, &cp);
}

/* AUTH (MQTT 5): a step of the authentication started by CONNECT, or
 * re-authentication on an established connection. */
static int handle_auth(mqttb_conn *c, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  if (c->level != 5)
    return fail(c, 0, MQTTB_ERR_PROTOCOL, "AUTH from an MQTT 3.x client");
  uint8_t reason;
  mqttb_slice props;
  int r = mqttb_decode_reason_props(MQTTB_PKT_AUTH, body, len, &reason, &props);
  if (r != MQTTB_CODEC_OK)
    return codec_err(c, r);
  mqttb_prop method = {0}, data = {0};
  bool has_method = mqttb_props_find(&props, MQTTB_PROP_AUTH_METHOD, &method);
  mqttb_props_find(&props, MQTTB_PROP_AUTH_DATA, &data);
  bool connecting = c->state == MQTTB_CONN_AWAIT_CONNECT;
  /* [MQTT-4.12.0-1..7]: only within an exchange the broker agreed to, with
   * the same method. */
  if (!X(c)->auth_method || !has_method || method.a.len != X(c)->auth_method_len ||
      memcmp(method.a.ptr, X(c)->auth_method, X(c)->auth_method_len) != 0)
    return fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL, "AUTH outside an exchange");
  struct mqttb_conn_ext *x = c->x; /* exists: it holds the method */
  if (connecting ? (!x->pending_connect || reason != MQTTB_REASON_CONTINUE_AUTHENTICATION)
                 : (reason != MQTTB_REASON_REAUTHENTICATE &&
                    !(x->reauth && reason == MQTTB_REASON_CONTINUE_AUTHENTICATION)))
    return fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL, "unexpected AUTH reason");
  if (!connecting && reason == MQTTB_REASON_REAUTHENTICATE) {
    x->reauth = true;
    x->auth_step = 0;
  }
  mqttb_connect ck;
  bool have_ck = false;
  if (connecting)
    have_ck = mqttb_decode_connect(X(c)->pending_connect, X(c)->pending_connect_len, &ck) == 0;
  const char *id = c->client_id;
  size_t idlen = id ? strlen(id) : 0;
  if (connecting && have_ck && ck.client_id.len) {
    id = (const char *)ck.client_id.ptr;
    idlen = ck.client_id.len;
  }
  mqttb_slice m = {(const uint8_t *)X(c)->auth_method, X(c)->auth_method_len};
  int rc =
      authenticate(c, have_ck ? &ck : NULL, id, idlen, &m, &data.a, x->auth_step++, !connecting);
  if (rc == MQTTB_REASON_CONTINUE_AUTHENTICATION)
    return send_auth(c, MQTTB_REASON_CONTINUE_AUTHENTICATION) ? MQTTB_ERR_CONN_NOMEM : 0;
  if (connecting) {
    if (rc != MQTTB_REASON_SUCCESS)
      return refuse(c, v5_code(rc), refusal_err(v5_code(rc)),
                    "refused by the authenticate callback");
    uint8_t *body2 = x->pending_connect;
    size_t len2 = x->pending_connect_len;
    x->pending_connect = NULL;
    int rv = handle_connect(c, body2, len2, true);
    mqttb_mem_free(&b->mem, body2);
    return rv;
  }
  x->reauth = false;
  if (rc != MQTTB_REASON_SUCCESS)
    return fail(c, v5_code(rc), MQTTB_ERR_NOT_AUTHORIZED, "re-authentication refused");
  return send_auth(c, MQTTB_REASON_SUCCESS) ? MQTTB_ERR_CONN_NOMEM : 0;
}

static bool authorized(mqttb_conn *c, mqttb_access access, const uint8_t *topic, size_t len,
                       uint8_t qos, bool retain) {
  mqttb_broker *b = c->broker;
  if (!b->cb.authorize)
    return true;
  return b->cb.authorize(c, access, (const char *)topic, len, qos, retain, b->user_data) == 0;
}

static int ack_publish(mqttb_conn *c, uint8_t qos, uint16_t pid, uint8_t reason) {
  if (qos == 0)
    return 0;
  int rv = mqttb_conn_send_ack(c, qos == 1 ? MQTTB_PKT_PUBACK : MQTTB_PKT_PUBREC, pid, reason);
  return rv ? MQTTB_ERR_CONN_NOMEM : 0;
}

/* Resolve an inbound topic alias (MQTT 5). */
static int resolve_alias(mqttb_conn *c, uint16_t alias, mqttb_slice *topic) {
  mqttb_broker *b = c->broker;
  uint16_t max = b->settings.topic_alias_maximum;
  if (alias > max)
    return fail(c, MQTTB_REASON_TOPIC_ALIAS_INVALID, MQTTB_ERR_PROTOCOL,
                "topic alias above the maximum");
  struct mqttb_conn_ext *x = ext(c);
  if (!x)
    return MQTTB_ERR_CONN_NOMEM;
  if (!x->alias_in) {
    x->alias_in = mqttb_mem_calloc(&b->mem, (size_t)max + 1, sizeof(char *));
    x->alias_in_len = mqttb_mem_calloc(&b->mem, (size_t)max + 1, sizeof(uint16_t));
    if (!x->alias_in || !x->alias_in_len)
      return MQTTB_ERR_CONN_NOMEM;
  }
  if (topic->len == 0) {
    if (!X(c)->alias_in[alias])
      return fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL, "unknown topic alias");
    topic->ptr = (const uint8_t *)X(c)->alias_in[alias];
    topic->len = X(c)->alias_in_len[alias];
    return 0;
  }
  char *t = dup_str(&b->mem, topic->ptr, topic->len);
  if (!t)
    return MQTTB_ERR_CONN_NOMEM;
  mqttb_mem_free(&b->mem, x->alias_in[alias]);
  x->alias_in[alias] = t;
  x->alias_in_len[alias] = (uint16_t)topic->len;
  return 0;
}

static int handle_publish(mqttb_conn *c, uint8_t flags, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  const mqttb_settings *st = &b->settings;
  mqttb_session *s = c->session;
  mqttb_publish p;
  int r = mqttb_decode_publish_v(flags, body, len, c->level, &p);
  if (r != MQTTB_CODEC_OK) {
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: malformed PUBLISH (%d)", cid(c), r);
    return codec_err(c, r);
  }
  b->stats.publish_received++;
  pub_props pp;
  memset(&pp, 0, sizeof(pp));
  if (c->level == 5) {
    read_pub_props(&p.props, &pp);
    if (pp.has_sub_id) /* [MQTT-3.3.4-6] */
      return fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                  "PUBLISH with a subscription identifier");
    if (p.qos > st->max_qos) /* [MQTT-3.2.2-11] */
      return fail(c, MQTTB_REASON_QOS_NOT_SUPPORTED, MQTTB_ERR_PROTOCOL,
                  "PUBLISH above the maximum QoS");
    if (p.retain && !st->retain_available) /* [MQTT-3.2.2-14] */
      return fail(c, MQTTB_REASON_RETAIN_NOT_SUPPORTED, MQTTB_ERR_PROTOCOL,
                  "retained PUBLISH while retain is not available");
    if (pp.alias) {
      int rv = resolve_alias(c, pp.alias, &p.topic);
      if (rv != 0)
        return rv;
    } else if (p.topic.len == 0) {
      return fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                  "empty topic without a topic alias");
    }
    if (p.qos == 2 && !mqttb_session_qos2_has(s, p.packet_id) &&
        s->nin_qos2 >= st->receive_maximum) /* [MQTT-3.3.4-7] */
      return fail(c, MQTTB_REASON_RECEIVE_MAXIMUM_EXCEEDED, MQTTB_ERR_PROTOCOL,
                  "more unacknowledged QoS 2 messages than Receive Maximum");
  }
  if (p.qos == 2 && mqttb_session_qos2_has(s, p.packet_id)) {
    /* A re-sent QoS 2 PUBLISH before PUBREL: acknowledged, not delivered
     * again [MQTT-4.3.3-2]. */
    return ack_publish(c, 2, p.packet_id, 0);
  }
  uint8_t refusal = 0;
  if (st->max_topic_levels && mqttb_topic_levels(p.topic.ptr, p.topic.len) > st->max_topic_levels) {
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: topic with more than %u levels refused", cid(c),
              st->max_topic_levels);
    refusal = MQTTB_REASON_TOPIC_NAME_INVALID;
  } else if (mqttb_sys_topic(p.topic.ptr, p.topic.len)) {
    /* The $SYS tree is the broker's own. */
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: publishing to %.*s refused: $SYS is read-only",
              cid(c), (int)p.topic.len, (const char *)p.topic.ptr);
    refusal = MQTTB_REASON_NOT_AUTHORIZED_5;
  } else if (!authorized(c, MQTTB_ACCESS_PUBLISH, p.topic.ptr, p.topic.len, p.qos, p.retain)) {
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: not authorized to publish to %.*s", cid(c),
              (int)p.topic.len, (const char *)p.topic.ptr);
    refusal = MQTTB_REASON_NOT_AUTHORIZED_5;
  } else if (pp.payload_format == 1 && !mqttb_utf8_valid(p.payload.ptr, p.payload.len)) {
    /* The Payload Format Indicator promises UTF-8: checked, as allowed. */
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: payload on %.*s is not the UTF-8 it claims", cid(c),
              (int)p.topic.len, (const char *)p.topic.ptr);
    refusal = MQTTB_REASON_PAYLOAD_FORMAT_INVALID;
  }
  if (refusal)
    return ack_publish(c, p.qos, p.packet_id, refusal);
  if (p.qos == 2 && mqttb_session_qos2_add(s, p.packet_id) != 0)
    return MQTTB_ERR_CONN_NOMEM;
  mqttb_msg *m =
      make_msg(b, p.topic, p.payload, &p.props, c->level == 5 ? &pp : NULL, p.qos, p.retain);
  if (!m) {
    if (p.qos == 2)
      mqttb_session_qos2_del(s, p.packet_id);
    return MQTTB_ERR_CONN_NOMEM;
  }
  if (pp.has_expiry)
    m->expiry_at = b->now + (uint64_t)pp.expiry * 1000u;
  size_t n = mqttb_broker_publish(b, m, s);
  mqttb_msg_unref(&b->mem, m);
  return ack_publish(c, p.qos, p.packet_id, n ? 0 : MQTTB_REASON_NO_MATCHING_SUBSCRIBERS);
}

typedef struct retained_ctx {
  mqttb_session *s;
  uint8_t qos;
  uint32_t sub_id;
} retained_ctx;

static void deliver_retained(mqttb_msg *m, void *ctx) {
  retained_ctx *rc = ctx;
  /* Past its Message Expiry Interval it is no longer retained [MQTT-3.3.2-5]. */
  if (mqttb_msg_expired(m, rc->s->broker->now))
    return;
  uint8_t qos = m->qos < rc->qos ? m->qos : rc->qos;
  mqttb_session_deliver(rc->s, m, qos, true, NULL, &rc->sub_id, rc->sub_id ? 1u : 0u);
}

static bool has_wildcard(mqttb_slice f) {
  return memchr(f.ptr, '+', f.len) || memchr(f.ptr, '#', f.len);
}

/* Per filter of a SUBSCRIBE: what to do about retained messages after the
 * SUBACK. */
enum { RET_SEND = 1 };

static int handle_subscribe(mqttb_conn *c, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  const mqttb_settings *st = &b->settings;
  bool v5 = c->level == 5;
  mqttb_subscribe sp;
  mqttb_slice props;
  int r = mqttb_decode_subscribe_v(body, len, c->level, &sp, &props);
  if (r != MQTTB_CODEC_OK) {
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: malformed SUBSCRIBE (%d)", cid(c), r);
    return codec_err(c, r);
  }
  uint32_t sub_id = 0;
  mqttb_prop idp;
  if (v5 && mqttb_props_find(&props, MQTTB_PROP_SUBSCRIPTION_ID, &idp)) {
    if (!st->subscription_identifiers) /* [MQTT-3.2.2-?]: announced unavailable */
      return fail(c, MQTTB_REASON_SUB_IDS_NOT_SUPPORTED, MQTTB_ERR_PROTOCOL,
                  "subscription identifier while they are not supported");
    sub_id = idp.value;
  }
  uint8_t small[64], small_ret[64];
  bool heap = sp.count > sizeof(small);
  uint8_t *codes = heap ? mqttb_mem_malloc(&b->mem, sp.count) : small;
  uint8_t *ret = heap ? mqttb_mem_malloc(&b->mem, sp.count) : small_ret;
  if (!codes || !ret) {
    if (heap) {
      mqttb_mem_free(&b->mem, codes);
      mqttb_mem_free(&b->mem, ret);
    }
    return MQTTB_ERR_CONN_NOMEM;
  }
  int rv = 0;
  uint8_t failure = v5 ? MQTTB_REASON_UNSPECIFIED_ERROR : MQTTB_REASON_SUBSCRIBE_FAILURE;
  size_t pos = 0, i = 0;
  mqttb_slice f;
  uint8_t opts;
  while (rv == 0 && mqttb_subscribe_next(&sp.entries, &pos, &f, &opts)) {
    uint8_t qos = opts & 3;
    uint8_t rh = (uint8_t)((opts >> 4) & 3);
    uint8_t sopts = v5 ? (uint8_t)(opts & (MQTTB_SUB_NO_LOCAL | MQTTB_SUB_RETAIN_AS_PUBLISHED)) : 0;
    mqttb_slice name, real = f;
    bool valid;
    bool shared = mqttb_share_parse((const char *)f.ptr, f.len, &name, &real, &valid);
    ret[i] = 0;
    bool existed = false;
    if (shared && v5 && (sopts & MQTTB_SUB_NO_LOCAL)) {
      rv = fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                "No Local on a shared subscription"); /* [MQTT-3.8.3-4] */
      break;
    }
    if (shared && !valid) {
      codes[i] = v5 ? MQTTB_REASON_TOPIC_FILTER_INVALID : MQTTB_REASON_SUBSCRIBE_FAILURE;
    } else if (shared && !st->shared_subscriptions) {
      codes[i] = v5 ? MQTTB_REASON_SHARED_SUBS_NOT_SUPPORTED : MQTTB_REASON_SUBSCRIBE_FAILURE;
    } else if (st->max_topic_levels &&
               mqttb_topic_levels(real.ptr, real.len) > st->max_topic_levels) {
      mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: filter with more than %u levels refused", cid(c),
                st->max_topic_levels);
      codes[i] = v5 ? MQTTB_REASON_TOPIC_FILTER_INVALID : MQTTB_REASON_SUBSCRIBE_FAILURE;
    } else if (!st->wildcard_subscriptions && has_wildcard(real)) {
      codes[i] = v5 ? MQTTB_REASON_WILDCARD_SUBS_NOT_SUPPORTED : MQTTB_REASON_SUBSCRIBE_FAILURE;
    } else if (!authorized(c, MQTTB_ACCESS_SUBSCRIBE, f.ptr, f.len, qos, false)) {
      mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: not authorized to subscribe to %.*s", cid(c),
                (int)f.len, (const char *)f.ptr);
      codes[i] = v5 ? MQTTB_REASON_NOT_AUTHORIZED_5 : MQTTB_REASON_SUBSCRIBE_FAILURE;
    } else {
      if (qos > st->max_qos)
        qos = st->max_qos;
      int sr = mqttb_session_subscribe(c->session, (const char *)f.ptr, f.len, qos, sopts, sub_id,
                                       &existed);
      if (sr == MQTTB_SUB_QUOTA) {
        mqttb_log(b, MQTTB_LOG_NOTICE,
                  "client %s: subscription to %.*s refused: "
                  "max_subscriptions reached",
                  cid(c), (int)f.len, (const char *)f.ptr);
        codes[i] = v5 ? MQTTB_REASON_QUOTA_EXCEEDED : MQTTB_REASON_SUBSCRIBE_FAILURE;
      } else if (sr != 0) {
        codes[i] = failure;
      } else {
        codes[i] = qos;
        /* Retain Handling 0: always; 1: only for a new subscription; 2:
         * never. Shared subscriptions get none [MQTT-3.8.4-?]. */
        if (!shared && (rh == 0 || (rh == 1 && !existed)))
          ret[i] = RET_SEND;
      }
    }
    i++;
  }
  if (rv == 0) {
    size_t total = v5 ? mqttb_ack_codes5_size(sp.count) : mqttb_suback_size(sp.count);
    size_t before = c->out_pending;
    if (out_reserve(c, total, 1) == 0) {
      uint8_t *p = out_bytes(c, total);
      if (v5)
        mqttb_encode_ack_codes5(p, MQTTB_PKT_SUBACK, sp.packet_id, codes, sp.count);
      else
        mqttb_encode_suback(p, sp.packet_id, codes, sp.count);
      b->stats.packets_sent++;
      out_signal(c, before);
    } else {
      rv = MQTTB_ERR_CONN_NOMEM;
    }
  }
  /* Retained messages follow the SUBACK [MQTT-3.3.1-6]. */
  pos = 0;
  i = 0;
  while (rv == 0 && mqttb_subscribe_next(&sp.entries, &pos, &f, &opts)) {
    if (ret[i] == RET_SEND) {
      retained_ctx rc = {c->session, codes[i], sub_id};
      if (mqttb_trie_match_retained(b, &b->retained, (const char *)f.ptr, f.len, deliver_retained,
                                    &rc) != 0)
        rv = MQTTB_ERR_CONN_NOMEM;
    }
    i++;
  }
  if (heap) {
    mqttb_mem_free(&b->mem, codes);
    mqttb_mem_free(&b->mem, ret);
  }
  return rv;
}

static int handle_unsubscribe(mqttb_conn *c, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  mqttb_unsubscribe up;
  mqttb_slice props;
  int r = mqttb_decode_unsubscribe_v(body, len, c->level, &up, &props);
  if (r != MQTTB_CODEC_OK) {
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: malformed UNSUBSCRIBE (%d)", cid(c), r);
    return codec_err(c, r);
  }
  if (c->level < 5) {
    size_t pos = 0;
    mqttb_slice f;
    while (mqttb_unsubscribe_next(&up.entries, &pos, &f))
      mqttb_session_unsubscribe(c->session, (const char *)f.ptr, f.len);
    return mqttb_conn_send_ack(c, MQTTB_PKT_UNSUBACK, up.packet_id, 0) ? MQTTB_ERR_CONN_NOMEM : 0;
  }
  size_t total = mqttb_ack_codes5_size(up.count);
  size_t before = c->out_pending;
  if (out_reserve(c, total, 1) != 0)
    return MQTTB_ERR_CONN_NOMEM;
  uint8_t *p = out_bytes(c, total);
  /* The codes go where the encoder puts them: after id and properties. */
  uint8_t *codes = p + total - up.count;
  size_t pos = 0, i = 0;
  mqttb_slice f;
  while (mqttb_unsubscribe_next(&up.entries, &pos, &f))
    codes[i++] = mqttb_session_unsubscribe(c->session, (const char *)f.ptr, f.len)
                     ? MQTTB_REASON_SUCCESS
                     : MQTTB_REASON_NO_SUBSCRIPTION_EXISTED;
  mqttb_encode_ack_codes5(p, MQTTB_PKT_UNSUBACK, up.packet_id, codes, up.count);
  b->stats.packets_sent++;
  out_signal(c, before);
  return 0;
}

static int handle_disconnect(mqttb_conn *c, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  uint8_t reason = 0;
  if (c->level == 5) {
    mqttb_slice props;
    int r = mqttb_decode_reason_props(MQTTB_PKT_DISCONNECT, body, len, &reason, &props);
    if (r != MQTTB_CODEC_OK)
      return codec_err(c, r);
    mqttb_prop p;
    if (mqttb_props_find(&props, MQTTB_PROP_SESSION_EXPIRY, &p)) {
      /* [MQTT-3.14.2-2]: 0 at CONNECT cannot become non-zero. */
      if (c->session->expiry_interval == 0 && p.value != 0)
        return fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                    "DISCONNECT sets a session expiry after CONNECT set none");
      c->session->expiry_interval = p.value;
    }
  } else if (len != 0) {
    return MQTTB_ERR_MALFORMED;
  }
  /* [MQTT-3.14.4-3]: the will is discarded, unless an MQTT 5 client asks
   * for it with reason 0x04. */
  if (reason != MQTTB_REASON_DISCONNECT_WITH_WILL) {
    mqttb_msg_unref(&b->mem, c->will);
    c->will = NULL;
  }
  return MQTTB_ERR_CLIENT_DISCONNECTED;
}

static int handle_ack(mqttb_conn *c, const mqttb_frame *f, const uint8_t *body, size_t len) {
  uint16_t pid;
  uint8_t reason = 0;
  int r;
  if (c->level == 5) {
    mqttb_slice props;
    r = mqttb_decode_ack5(f->type, body, len, &pid, &reason, &props);
  } else {
    r = mqttb_decode_ack(body, len, &pid);
  }
  if (r != MQTTB_CODEC_OK) {
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: malformed acknowledgement (type %u)", cid(c),
              f->type);
    return codec_err(c, r);
  }
  switch (f->type) {
  case MQTTB_PKT_PUBACK:
    mqttb_session_on_puback(c->session, pid);
    return 0;
  case MQTTB_PKT_PUBREC: {
    int rel = mqttb_session_on_pubrec(c->session, pid, reason);
    if (rel >= 0 && mqttb_conn_send_ack(c, MQTTB_PKT_PUBREL, pid, (uint8_t)rel) != 0)
      return MQTTB_ERR_CONN_NOMEM;
    return 0;
  }
  case MQTTB_PKT_PUBCOMP:
    mqttb_session_on_pubcomp(c->session, pid);
    return 0;
  default: {
    /* PUBREL: the inbound QoS 2 flow ends; PUBCOMP even for an unknown id
     * [MQTT-4.3.3-2] (MQTT 5 says it was unknown). */
    bool known = mqttb_session_qos2_has(c->session, pid);
    mqttb_session_qos2_del(c->session, pid);
    if (mqttb_conn_send_ack(c, MQTTB_PKT_PUBCOMP, pid,
                            known ? 0 : MQTTB_REASON_PACKET_ID_NOT_FOUND) != 0)
      return MQTTB_ERR_CONN_NOMEM;
    return 0;
  }
  }
}

static int handle_packet(mqttb_conn *c, const mqttb_frame *f, const uint8_t *body, uint64_t now) {
  mqttb_broker *b = c->broker;
  b->stats.packets_received++;
  c->last_rx = now;
  size_t len = f->remaining;
  if (f->type == MQTTB_PKT_CONNECT)
    return handle_connect(c, body, len, false);
  if (f->type == MQTTB_PKT_AUTH)
    return handle_auth(c, body, len);
  switch (f->type) {
  case MQTTB_PKT_PUBLISH:
    return handle_publish(c, f->flags, body, len);
  case MQTTB_PKT_PUBACK:
  case MQTTB_PKT_PUBREC:
  case MQTTB_PKT_PUBREL:
  case MQTTB_PKT_PUBCOMP:
    return handle_ack(c, f, body, len);
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
    return handle_disconnect(c, body, len);
  default:
    /* Server-to-client packets (CONNACK, SUBACK, UNSUBACK, PINGRESP). */
    mqttb_log(b, MQTTB_LOG_NOTICE, "client %s: unexpected packet type %u", cid(c), f->type);
    return MQTTB_ERR_PROTOCOL;
  }
}

/* Checks made as soon as a fixed header is complete, before the body is
 * buffered. */
static int check_header(mqttb_conn *c, const mqttb_frame *f) {
  int r = mqttb_codec_check_flags(f->type, f->flags);
  if (r != MQTTB_CODEC_OK) {
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: invalid fixed header (type %u, flags %#x)",
              cid(c), f->type, f->flags);
    return MQTTB_ERR_MALFORMED;
  }
  if (c->state == MQTTB_CONN_AWAIT_CONNECT && f->type != MQTTB_PKT_CONNECT &&
      !(f->type == MQTTB_PKT_AUTH && X(c)->pending_connect)) {
    /* [MQTT-3.1.0-1] */
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "first packet is not CONNECT (type %u)", f->type);
    return MQTTB_ERR_PROTOCOL;
  }
  if (f->type == MQTTB_PKT_CONNECT && (c->state == MQTTB_CONN_CONNECTED || X(c)->pending_connect)) {
    /* [MQTT-3.1.0-2] */
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: second CONNECT", cid(c));
    return MQTTB_ERR_PROTOCOL;
  }
  return 0;
}

static int frame_err(mqttb_conn *c, int r) {
  if (r == MQTTB_CODEC_TOO_LARGE)
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: packet larger than max_packet_size %u",
              cid(c), c->broker->settings.max_packet_size);
  else
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "client %s: invalid remaining length", cid(c));
  return codec_err(c, r);
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
  if (len > 0 && c->rlen == 0 && c->state == MQTTB_CONN_AWAIT_CONNECT && !X(c)->pending_connect &&
      in[0] != (MQTTB_PKT_CONNECT << 4)) {
    /* [MQTT-3.1.0-1]: the very first byte already tells. */
    mqttb_log(c->broker, MQTTB_LOG_NOTICE, "first packet is not CONNECT (first byte %#x)", in[0]);
    return MQTTB_ERR_PROTOCOL;
  }
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
  b->now = now;
  mqttb_conn *c = mqttb_mem_calloc(&b->mem, 1, sizeof(*c));
  if (!c)
    return MQTTB_ERR_NOMEM;
  c->broker = b;
  c->user_data = user_data;
  c->created = now;
  c->last_rx = now;
  c->timer_idx = SIZE_MAX;
  uint64_t dl = conn_deadline(c);
  if (dl != UINT64_MAX && mqttb_timer_set(b, c, false, dl) != 0) {
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

void mqttb_conn_del(mqttb_conn *c, uint64_t now) {
  if (!c)
    return;
  c->broker->now = now;
  mqttb_conn_free(c);
}

void mqttb_conn_free(mqttb_conn *c) {
  mqttb_broker *b = c->broker;
  const mqttb_mem *mem = &b->mem;
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
  mqttb_timer_remove(b, c, false);
  if (c->prev)
    c->prev->next = c->next;
  else
    b->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  b->stats.connections--;
  for (size_t i = 0; i < c->seg_count; i++)
    mqttb_msg_unref(mem, c->seg[(c->seg_head + i) % c->seg_cap].msg);
  mqttb_msg_unref(mem, c->will);
  struct mqttb_conn_ext *x = c->x;
  if (x) {
    if (x->alias_in)
      for (size_t i = 0; i <= b->settings.topic_alias_maximum; i++)
        mqttb_mem_free(mem, x->alias_in[i]);
    mqttb_mem_free(mem, x->alias_in);
    mqttb_mem_free(mem, x->alias_in_len);
    for (size_t i = 0; i < x->nalias_out; i++)
      mqttb_mem_free(mem, x->alias_out_topic[i]);
    mqttb_mem_free(mem, x->alias_out_topic);
    mqttb_map_free(&x->alias_out, mem);
    mqttb_mem_free(mem, x->auth_method);
    mqttb_mem_free(mem, x->auth_data);
    mqttb_mem_free(mem, x->pending_connect);
    mqttb_mem_free(mem, x->server_reference);
    mqttb_mem_free(mem, x);
  }
  mqttb_mem_free(mem, c->seg);
  mqttb_mem_free(mem, c->wbuf);
  mqttb_mem_free(mem, c->rbuf);
  mqttb_mem_free(mem, c->client_id);
  mqttb_mem_free(mem, c);
}

int mqttb_conn_recv(mqttb_conn *c, const uint8_t *in, size_t len, uint64_t now) {
  if (!c || (!in && len > 0))
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (c->state >= MQTTB_CONN_CLOSING)
    return MQTTB_ERR_INVALID_STATE;
  mqttb_broker *b = c->broker;
  b->now = now;
  b->stats.bytes_received += len;
  int rv = c->doomed_reason ? c->doomed_reason : process(c, in, len, now);
  if (rv != 0)
    mqttb_conn_close(c, rv);
  else if (c->state == MQTTB_CONN_CONNECTED) {
    /* Timers are lazy: a heap entry may lie later than the keep-alive
     * deadline only right after CONNECT, when it still holds the connect
     * timeout. */
    uint64_t dl = conn_deadline(c);
    if (dl != UINT64_MAX && (c->timer_idx == SIZE_MAX || dl < b->timers[c->timer_idx].deadline) &&
        mqttb_timer_set(b, c, false, dl) != 0)
      mqttb_conn_close(c, MQTTB_ERR_CONN_NOMEM);
  }
  mqttb_broker_reap(b);
  return c->state >= MQTTB_CONN_CLOSING ? c->close_reason : 0;
}

int mqttb_conn_transport_closed(mqttb_conn *c, uint64_t now) {
  if (!c)
    return MQTTB_ERR_INVALID_ARGUMENT;
  c->broker->now = now;
  if (c->state < MQTTB_CONN_CLOSING) {
    c->close_notified = true;
    mqttb_conn_close(c, MQTTB_ERR_TRANSPORT_CLOSED);
  }
  c->state = MQTTB_CONN_DEAD;
  mqttb_broker_reap(c->broker);
  return 0;
}

int mqttb_conn_disconnect(mqttb_conn *c, int reason, uint64_t now) {
  if (!c || reason < 0 || reason > 0xFF)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (c->state >= MQTTB_CONN_CLOSING)
    return MQTTB_ERR_INVALID_STATE;
  mqttb_broker *b = c->broker;
  b->now = now;
  if (reason == MQTTB_REASON_NORMAL_DISCONNECTION) {
    mqttb_msg_unref(&b->mem, c->will);
    c->will = NULL;
  }
  c->disconnect_reason = (uint8_t)reason;
  c->disconnect_reason_set = true;
  mqttb_conn_close(c, MQTTB_ERR_SHUTDOWN);
  mqttb_broker_reap(b);
  return 0;
}

int mqttb_conn_set_auth_data(mqttb_conn *c, const uint8_t *data, size_t len) {
  if (!c || len > 65535 || (!data && len))
    return MQTTB_ERR_INVALID_ARGUMENT;
  const mqttb_mem *mem = &c->broker->mem;
  struct mqttb_conn_ext *x = ext(c);
  if (!x)
    return MQTTB_ERR_NOMEM;
  uint8_t *d = NULL;
  if (data) {
    d = mqttb_mem_malloc(mem, len);
    if (!d)
      return MQTTB_ERR_NOMEM;
    memcpy(d, data, len);
  }
  mqttb_mem_free(mem, x->auth_data);
  x->auth_data = d;
  x->auth_data_len = data ? len : 0;
  return 0;
}

int mqttb_conn_set_server_reference(mqttb_conn *c, const char *reference) {
  if (!c)
    return MQTTB_ERR_INVALID_ARGUMENT;
  const mqttb_mem *mem = &c->broker->mem;
  struct mqttb_conn_ext *x = ext(c);
  if (!x)
    return MQTTB_ERR_NOMEM;
  char *r = NULL;
  if (reference) {
    r = dup_str(mem, reference, strlen(reference));
    if (!r)
      return MQTTB_ERR_NOMEM;
  }
  mqttb_mem_free(mem, x->server_reference);
  x->server_reference = r;
  return 0;
}

int mqttb_conn_on_timer(mqttb_conn *c, uint64_t now) {
  uint64_t dl = conn_deadline(c);
  if (dl > now)
    return dl == UINT64_MAX ? 0 : mqttb_timer_set(c->broker, c, false, dl);
  int reason = MQTTB_ERR_KEEPALIVE_TIMEOUT;
  if (c->state == MQTTB_CONN_AWAIT_CONNECT)
    reason = MQTTB_ERR_CONNECT_TIMEOUT;
  else if (stall_deadline(c) <= now)
    reason = MQTTB_ERR_OUTPUT_STALLED;
  mqttb_conn_close(c, reason);
  return 0;
}

void *mqttb_conn_get_user_data(const mqttb_conn *c) {
  return c ? c->user_data : NULL;
}

const char *mqttb_conn_get_client_id(const mqttb_conn *c) {
  return c && c->state != MQTTB_CONN_AWAIT_CONNECT ? c->client_id : NULL;
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
