/* SPDX-License-Identifier: MIT */
/* A connection's lifecycle: creation, timers, output, closing, deletion,
 * and the public accessors. See conn.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/uio.h>
/* The header promises that mqttb_iovec is struct iovec on POSIX systems. */
_Static_assert(sizeof(mqttb_iovec) == sizeof(struct iovec) &&
                   offsetof(mqttb_iovec, base) == offsetof(struct iovec, iov_base) &&
                   offsetof(mqttb_iovec, len) == offsetof(struct iovec, iov_len),
               "mqttb_iovec must have the layout of struct iovec");
_Static_assert(sizeof(mqttb_inbuf) == sizeof(struct iovec) &&
                   offsetof(mqttb_inbuf, base) == offsetof(struct iovec, iov_base) &&
                   offsetof(mqttb_inbuf, len) == offsetof(struct iovec, iov_len),
               "mqttb_inbuf must have the layout of struct iovec");
#endif

const struct mqttb_conn_ext mqttb_conn_no_ext;

struct mqttb_conn_ext *mqttb_conn_ext(mqttb_conn *c) {
  if (!c->x)
    c->x = mqttb_mem_calloc(&c->broker->ctx.mem, 1, sizeof(*c->x));
  return c->x;
}

const char *mqttb_conn_cid(const mqttb_conn *c) {
  return c->client_id ? c->client_id : "<none>";
}

/* "client ID" for log lines, the id cut short. */
static void who(const mqttb_conn *c, char *buf, size_t n) {
  const char *id = mqttb_conn_cid(c);
  snprintf(buf, n, "client %.*s", mqttb_log_cut(strlen(id)), id);
}

static void conn_logv(mqttb_conn *c, bool prefix, mqttb_log_level level, const char *fmt,
                      va_list ap) MQTTB_PRINTF(4, 0);
static void conn_logv(mqttb_conn *c, bool prefix, mqttb_log_level level, const char *fmt,
                      va_list ap) {
  mqttb_ctx *ctx = &c->broker->ctx;
  if (!ctx->cb.log)
    return;
  char w[8 + MQTTB_LOG_MAX_STR];
  who(c, w, sizeof(w));
  if (level <= MQTTB_LOG_NOTICE) {
    /* Without room for the counter the line goes out unlimited. */
    struct mqttb_conn_ext *x = mqttb_conn_ext(c);
    if (x && !mqttb_log_allow(ctx, &x->log, w))
      return;
  }
  if (!prefix) {
    mqttb_logv(ctx, level, fmt, ap);
    return;
  }
  char line[440];
  vsnprintf(line, sizeof(line), fmt, ap);
  mqttb_log(ctx, level, "%s: %s", w, line);
}

void mqttb_conn_log(mqttb_conn *c, mqttb_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  conn_logv(c, true, level, fmt, ap);
  va_end(ap);
}

void mqttb_conn_log_anon(mqttb_conn *c, mqttb_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  conn_logv(c, false, level, fmt, ap);
  va_end(ap);
}

char *mqttb_conn_strdup(const mqttb_conn *c, const void *s, size_t len) {
  char *d = mqttb_mem_malloc(&c->broker->ctx.mem, len + 1);
  if (d) {
    memcpy(d, s, len);
    d[len] = '\0';
  }
  return d;
}

mqttb_conn *mqttb_conn_of_timer(mqttb_timer *t) {
  return (mqttb_conn *)(void *)((char *)t - offsetof(mqttb_conn, timer));
}

mqttb_conn *mqttb_conn_of_tx(mqttb_tx *tx) {
  return (mqttb_conn *)(void *)((char *)tx - offsetof(mqttb_conn, tx));
}

/* Whether the message can be the block the PUBLISH was received into:
 * topic and payload where the packet has them (not a topic alias). */
static mqttb_msg *adopt(mqttb_conn *c, mqttb_slice topic, mqttb_slice payload,
                        const mqttb_slice *props, const mqttb_pub_props *pp, uint8_t qos,
                        bool retain) {
  struct mqttb_conn_ext *x = c->x;
  const uint8_t *body = x->adopt + sizeof(mqttb_msg);
  size_t len = x->big_f.remaining;
  if (topic.ptr != body + 2 || payload.ptr < topic.ptr + topic.len ||
      payload.ptr + payload.len != body + len)
    return NULL;
  size_t props_off = (size_t)(topic.ptr + topic.len - body), props_len = 0;
  if (pp && pp->fwd_len) {
    /* The properties to forward, moved to the front of the received ones
     * (they are a part of them, in order). */
    props_off = (size_t)(props->ptr - body);
    props_len = pp->fwd_len;
    mqttb_pub_props_copy_forwarded(props, x->adopt + sizeof(mqttb_msg) + props_off);
  }
  mqttb_msg *m = mqttb_msg_adopt(x->adopt, len, (size_t)(payload.ptr - body), props_off, props_len,
                                 qos, retain);
  x->adopt = NULL;
  c->broker->ctx.input_bytes -= sizeof(mqttb_msg) + len;
  return m;
}

mqttb_msg *mqttb_conn_make_msg(mqttb_conn *c, mqttb_slice topic, mqttb_slice payload,
                               const mqttb_slice *props, const mqttb_pub_props *pp, uint8_t qos,
                               bool retain) {
  if (c->x && c->x->adopt) {
    mqttb_msg *m = adopt(c, topic, payload, props, pp, qos, retain);
    if (m)
      return m;
  }
  mqttb_msg *m = mqttb_msg_new(&c->broker->ctx.mem, topic.ptr, topic.len, payload.ptr, payload.len,
                               NULL, pp ? pp->fwd_len : 0, qos, retain);
  if (m && pp && pp->fwd_len)
    mqttb_pub_props_copy_forwarded(props, (uint8_t *)MQTTB_MSG_PROPS(m));
  return m;
}

uint8_t mqttb_conn_authorize(mqttb_conn *c, mqttb_access access, const uint8_t *topic, size_t len,
                             uint8_t qos, bool retain) {
  mqttb_ctx *ctx = &c->broker->ctx;
  if (!ctx->cb.authorize)
    return 0;
  int rc;
  MQTTB_CALLBACK(ctx, rc = ctx->cb.authorize(c, access, (const char *)topic, len, qos, retain,
                                             ctx->user_data));
  if (rc == MQTTB_REASON_SUCCESS)
    return 0;
  return rc >= 0x80 && rc <= 0xFF ? (uint8_t)rc : MQTTB_REASON_NOT_AUTHORIZED_5;
}

/* Whether a message may go to the client: the read check (authorize with
 * MQTTB_ACCESS_READ), the hub's may_read. Called as messages are sent, in
 * the middle of fan-outs: the host calls stay refused. */
static bool may_read(mqttb_tx *tx, const mqttb_msg *msg, uint8_t qos, bool retain, void *arg) {
  mqttb_broker *b = arg;
  mqttb_conn *c = mqttb_conn_of_tx(tx);
  b->ctx.host_blocked++;
  uint8_t code = mqttb_conn_authorize(c, MQTTB_ACCESS_READ, (const uint8_t *)MQTTB_MSG_TOPIC(msg),
                                      msg->topic_len, qos, retain);
  b->ctx.host_blocked--;
  return code == 0;
}

/* ---------------------------------------------------------------- timers */

static uint64_t stall_deadline(const mqttb_conn *c) {
  uint32_t t = c->broker->ctx.settings.output_stall_timeout_ms;
  if (!t || mqttb_outq_pending(&c->tx.q) == 0 || c->state != MQTTB_CONN_CONNECTED)
    return UINT64_MAX;
  return c->tx.q.since + t;
}

static uint64_t conn_deadline(const mqttb_conn *c) {
  const mqttb_settings *st = &c->broker->ctx.settings;
  if (c->state == MQTTB_CONN_AWAIT_CONNECT)
    return st->connect_timeout_ms && !c->input_deferred ? c->last_rx + st->connect_timeout_ms
                                                        : UINT64_MAX;
  uint64_t dl = stall_deadline(c);
  if (c->state == MQTTB_CONN_CONNECTED && c->keepalive) {
    uint64_t ka = c->last_rx + (uint64_t)c->keepalive * 1500u; /* [MQTT-3.1.2-24] */
    if (ka < dl)
      dl = ka;
  }
  return dl;
}

int mqttb_conn_arm(mqttb_conn *c) {
  /* Timers are lazy: a heap entry may lie later than the keep-alive
   * deadline only right after CONNECT, when it still holds the connect
   * timeout. */
  mqttb_timers *h = &c->broker->timers;
  uint64_t dl = conn_deadline(c);
  if (dl != UINT64_MAX && dl < mqttb_timers_deadline_of(h, &c->timer))
    return mqttb_timers_set(h, &c->timer, dl);
  return 0;
}

/* Output just became pending: make sure a timer will look at it, and tell
 * the embedder. The hub's on_pending. */
static void on_pending(mqttb_tx *tx, void *arg) {
  mqttb_broker *b = arg;
  mqttb_conn *c = mqttb_conn_of_tx(tx);
  uint64_t dl = stall_deadline(c);
  if (dl != UINT64_MAX && dl < mqttb_timers_deadline_of(&b->timers, &c->timer))
    mqttb_timers_set(&b->timers, &c->timer, dl); /* on failure the keep-alive timer still runs */
  if (b->ctx.cb.want_write) {
    b->ctx.host_blocked++;
    MQTTB_CALLBACK(&b->ctx, b->ctx.cb.want_write(c, b->ctx.user_data));
    b->ctx.host_blocked--;
  }
}

void mqttb_conn_setup_hub(mqttb_broker *b) {
  b->hub.ctx = &b->ctx;
  b->hub.on_pending = on_pending;
  /* Read checks are for embedders that know of them (callbacks version 2). */
  b->hub.may_read =
      b->ctx.cb.authorize && b->ctx.cb_version >= MQTTB_CALLBACKS_V2 ? may_read : NULL;
  b->hub.arg = b;
  b->hub.failed = NULL;
}

int mqttb_conn_on_timer(mqttb_conn *c, uint64_t now) {
  uint64_t dl = conn_deadline(c);
  if (dl > now)
    return dl == UINT64_MAX ? 0 : mqttb_timers_set(&c->broker->timers, &c->timer, dl);
  int reason = MQTTB_ERR_KEEPALIVE_TIMEOUT;
  if (c->state == MQTTB_CONN_AWAIT_CONNECT)
    reason = MQTTB_ERR_CONNECT_TIMEOUT;
  else if (stall_deadline(c) <= now)
    reason = MQTTB_ERR_OUTPUT_STALLED;
  mqttb_conn_close(c, reason);
  return 0;
}

/* ---------------------------------------------------------------- errors */

int mqttb_conn_codec_err(mqttb_conn *c, int r) {
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

int mqttb_conn_fail(mqttb_conn *c, uint8_t v5, int err, const char *why) {
  mqttb_conn_log(c, MQTTB_LOG_NOTICE, "%s", why);
  c->disconnect_reason = v5;
  return err;
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

static int send_disconnect5(mqttb_conn *c, uint8_t reason) {
  uint8_t props[3 + 256];
  size_t plen = 0;
  const char *ref = mqttb_conn_x(c)->server_reference;
  if (ref && (reason == MQTTB_REASON_USE_ANOTHER_SERVER || reason == MQTTB_REASON_SERVER_MOVED)) {
    size_t n = strlen(ref);
    if (n <= 256)
      plen = mqttb_prop_put_str(props, MQTTB_PROP_SERVER_REFERENCE, (const uint8_t *)ref, n);
  }
  return mqttb_tx_reason(&c->broker->hub, &c->tx, MQTTB_PKT_DISCONNECT, reason, props, plen);
}

void mqttb_conn_close(mqttb_conn *c, int reason) {
  if (c->state >= MQTTB_CONN_CLOSING)
    return;
  mqttb_broker *b = c->broker;
  mqttb_ctx *ctx = &b->ctx;
  enum mqttb_conn_state prev = c->state;
  c->state = MQTTB_CONN_CLOSING;
  c->close_reason = reason;
  mqttb_timers_remove(&b->timers, &c->timer);
  if (prev == MQTTB_CONN_CONNECTED && c->tx.level == 5 && reason != MQTTB_ERR_CLIENT_DISCONNECTED &&
      reason != MQTTB_ERR_TRANSPORT_CLOSED)
    send_disconnect5(c, v5_reason(c, reason)); /* best effort */
  if (prev == MQTTB_CONN_CONNECTED) {
    /* The will is still here unless a DISCONNECT discarded it. It is
     * checked again as it goes out, as a PUBLISH would be: the rules may
     * have changed since the CONNECT. */
    mqttb_msg *will = c->will;
    c->will = NULL;
    if (will &&
        mqttb_conn_authorize(c, MQTTB_ACCESS_PUBLISH, (const uint8_t *)MQTTB_MSG_TOPIC(will),
                             will->topic_len, will->qos, will->retain) != 0) {
      mqttb_conn_log(c, MQTTB_LOG_NOTICE, "will on %.*s not published: not authorized",
                     mqttb_log_cut(will->topic_len), MQTTB_MSG_TOPIC(will));
      mqttb_msg_unref(&ctx->mem, will);
      will = NULL;
    }
    mqttb_session *s = c->session;
    c->session = NULL;
    ctx->stats.clients_connected--;
    if (will)
      mqttb_conn_log(c, MQTTB_LOG_DEBUG, "will on %.*s", mqttb_log_cut(will->topic_len),
                     MQTTB_MSG_TOPIC(will));
    if (s)
      mqttb_router_do(&b->router, s, mqttb_session_detach(s, will, c->will_delay));
    else if (will)
      mqttb_router_publish(&b->router, will, NULL);
    mqttb_msg_unref(&ctx->mem, will);
  }
  /* The last line about this client always goes out, after the count of
   * what was suppressed. */
  char w[8 + MQTTB_LOG_MAX_STR];
  who(c, w, sizeof(w));
  if (c->x)
    mqttb_log_flush(ctx, &c->x->log, w);
  if (reason == MQTTB_ERR_CLIENT_DISCONNECTED || reason == MQTTB_ERR_TRANSPORT_CLOSED ||
      reason == MQTTB_ERR_SHUTDOWN)
    mqttb_log(ctx, MQTTB_LOG_DEBUG, "%s: closed: %s", w, mqttb_strerror(reason));
  else
    mqttb_log(ctx, MQTTB_LOG_NOTICE, "%s: closing connection: %s", w, mqttb_strerror(reason));
  /* Exactly once per connection, whatever closed it. */
  if (!c->close_notified && ctx->cb.on_close) {
    c->close_notified = true;
    MQTTB_CALLBACK(ctx, ctx->cb.on_close(c, reason, ctx->user_data));
  }
  c->close_notified = true;
}

void mqttb_conn_reap(mqttb_broker *b) {
  mqttb_tx *tx;
  while ((tx = mqttb_tx_take_failed(&b->hub)) != NULL) {
    mqttb_conn *c = mqttb_conn_of_tx(tx);
    mqttb_conn_close(c, tx->failed);
  }
}

/* ---------------------------------------------------------------- life */

int mqttb_conn_new(mqttb_conn **pconn, mqttb_broker *b, uint64_t now, void *user_data) {
  if (!pconn || !b)
    return MQTTB_ERR_INVALID_ARGUMENT;
  mqttb_ctx *ctx = &b->ctx;
  if (ctx->in_callback || b->shut_down)
    return MQTTB_ERR_INVALID_STATE;
  if (ctx->settings.max_connections && ctx->stats.connections >= ctx->settings.max_connections) {
    mqttb_log(ctx, MQTTB_LOG_WARNING, "connection refused: max_connections (%u) reached",
              ctx->settings.max_connections);
    return MQTTB_ERR_TOO_MANY_CONNECTIONS;
  }
  ctx->now = now;
  mqttb_restore_end(&b->restore); /* the first connection ends a restore */
  mqttb_conn *c = mqttb_mem_calloc(&ctx->mem, 1, sizeof(*c));
  if (!c)
    return MQTTB_ERR_NOMEM;
  c->broker = b;
  c->user_data = user_data;
  c->last_rx = now;
  mqttb_tx_init(&c->tx);
  mqttb_timer_init(&c->timer, MQTTB_TIMER_CONN);
  uint64_t dl = conn_deadline(c);
  if (dl != UINT64_MAX && mqttb_timers_set(&b->timers, &c->timer, dl) != 0) {
    mqttb_mem_free(&ctx->mem, c);
    return MQTTB_ERR_NOMEM;
  }
  c->next = b->conns;
  if (b->conns)
    b->conns->prev = c;
  b->conns = c;
  ctx->stats.connections++;
  *pconn = c;
  return 0;
}

void mqttb_conn_del(mqttb_conn *c, uint64_t now) {
  if (!c)
    return;
  mqttb_ctx *ctx = &c->broker->ctx;
  if (ctx->in_callback) {
    /* Freeing it under a caller that still uses it would be worse than
     * keeping it: it is freed with the broker. */
    mqttb_log(ctx, MQTTB_LOG_ERROR, "mqttb_conn_del called from a callback: ignored");
    return;
  }
  ctx->now = now;
  mqttb_broker *b = c->broker;
  mqttb_conn_free(c);
  mqttb_host_drain(&b->host);
}

static void ext_free(mqttb_conn *c) {
  const mqttb_mem *mem = &c->broker->ctx.mem;
  struct mqttb_conn_ext *x = c->x;
  if (!x)
    return;
  if (x->alias_in)
    for (size_t i = 0; i <= c->broker->ctx.settings.topic_alias_maximum; i++)
      mqttb_mem_free(mem, x->alias_in[i]);
  mqttb_mem_free(mem, x->alias_in);
  mqttb_mem_free(mem, x->alias_in_len);
  mqttb_mem_free(mem, x->auth_method);
  mqttb_mem_free(mem, x->auth_data);
  mqttb_mem_free(mem, x->pending_connect);
  mqttb_mem_free(mem, x->server_reference);
  mqttb_mem_free(mem, x->held);
  c->broker->ctx.input_bytes -= x->held_cap;
  if (x->big) {
    mqttb_mem_free(mem, x->big);
    c->broker->ctx.input_bytes -= sizeof(mqttb_msg) + x->big_f.remaining;
  }
  for (unsigned k = 0; k < x->nspec; k++) {
    mqttb_mem_free(mem, x->spec->block[k]);
    c->broker->ctx.input_bytes -= sizeof(mqttb_msg) + x->spec_f.remaining;
  }
  mqttb_mem_free(mem, x->spec);
  mqttb_mem_free(mem, x);
  c->x = NULL;
}

void mqttb_conn_free(mqttb_conn *c) {
  mqttb_broker *b = c->broker;
  const mqttb_mem *mem = &b->ctx.mem;
  /* Deleting an open connection is transport loss; on_close says so. */
  if (c->state < MQTTB_CONN_CLOSING)
    mqttb_conn_close(c, MQTTB_ERR_TRANSPORT_CLOSED);
  mqttb_tx_forget(&b->hub, &c->tx);
  mqttb_conn_reap(b);
  mqttb_timers_remove(&b->timers, &c->timer);
  if (c->prev)
    c->prev->next = c->next;
  else
    b->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  b->ctx.stats.connections--;
  mqttb_tx_free(&b->hub, &c->tx);
  mqttb_msg_unref(mem, c->will);
  ext_free(c);
  mqttb_mem_free(mem, c->rbuf);
  b->ctx.input_bytes -= c->rcap;
  mqttb_mem_free(mem, c->client_id);
  mqttb_mem_free(mem, c);
}

int mqttb_conn_transport_closed(mqttb_conn *c, uint64_t now) {
  if (!c)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (c->broker->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE;
  c->broker->ctx.now = now;
  if (c->state < MQTTB_CONN_CLOSING)
    mqttb_conn_close(c, MQTTB_ERR_TRANSPORT_CLOSED);
  c->state = MQTTB_CONN_DEAD;
  mqttb_conn_reap(c->broker);
  mqttb_host_drain(&c->broker->host);
  return 0;
}

int mqttb_conn_disconnect(mqttb_conn *c, int reason, uint64_t now) {
  if (!c || reason < 0 || reason > 0xFF)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (c->state >= MQTTB_CONN_CLOSING || c->broker->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE;
  mqttb_broker *b = c->broker;
  b->ctx.now = now;
  mqttb_conn_shut(c, reason);
  mqttb_conn_reap(b);
  mqttb_host_drain(&b->host);
  return 0;
}

void mqttb_conn_shut(mqttb_conn *c, int reason) {
  mqttb_broker *b = c->broker;
  if (reason == MQTTB_REASON_NORMAL_DISCONNECTION) {
    mqttb_msg_unref(&b->ctx.mem, c->will);
    c->will = NULL;
  }
  c->disconnect_reason = (uint8_t)reason;
  c->disconnect_reason_set = true;
  mqttb_conn_close(c, MQTTB_ERR_SHUTDOWN);
}

/* ---------------------------------------------------------------- output */

int mqttb_conn_output(mqttb_conn *c, mqttb_iovec *iov, int iovmax) {
  if (!c || (!iov && iovmax > 0) || iovmax < 0)
    return MQTTB_ERR_INVALID_ARGUMENT;
  return mqttb_outq_iov(&c->tx.q, iov, iovmax);
}

int mqttb_conn_output_ack(mqttb_conn *c, size_t nbytes, uint64_t now) {
  if (!c || nbytes > mqttb_outq_pending(&c->tx.q))
    return MQTTB_ERR_INVALID_ARGUMENT;
  mqttb_ctx *ctx = &c->broker->ctx;
  if (ctx->host_blocked)
    return MQTTB_ERR_INVALID_STATE;
  ctx->now = now;
  ctx->stats.bytes_sent += nbytes;
  mqttb_outq_ack(&c->tx.q, &ctx->mem, nbytes, now);
  if (c->session && c->session->retained && c->state == MQTTB_CONN_CONNECTED) {
    mqttb_router_pump_retained(&c->broker->router, c->session);
    mqttb_conn_reap(c->broker);
    mqttb_host_drain(&c->broker->host);
  }
  return 0;
}

size_t mqttb_conn_output_pending(const mqttb_conn *c) {
  return c ? mqttb_outq_pending(&c->tx.q) : 0;
}

int mqttb_conn_input_deferred(mqttb_conn *c) {
  if (!c)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (c->state >= MQTTB_CONN_CLOSING || c->broker->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE;
  if (c->state == MQTTB_CONN_AWAIT_CONNECT)
    c->input_deferred = true; /* the timer finds no deadline and lapses */
  return MQTTB_OK;
}

size_t mqttb_conn_input_pending(const mqttb_conn *c) {
  return c && c->x && c->state < MQTTB_CONN_CLOSING ? c->x->held_len : 0;
}

/* ---------------------------------------------------------------- setters */

int mqttb_conn_set_auth_data(mqttb_conn *c, const uint8_t *data, size_t len) {
  if (!c || len > 65535 || (!data && len))
    return MQTTB_ERR_INVALID_ARGUMENT;
  const mqttb_mem *mem = &c->broker->ctx.mem;
  struct mqttb_conn_ext *x = mqttb_conn_ext(c);
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
  const mqttb_mem *mem = &c->broker->ctx.mem;
  struct mqttb_conn_ext *x = mqttb_conn_ext(c);
  if (!x)
    return MQTTB_ERR_NOMEM;
  char *r = NULL;
  if (reference) {
    r = mqttb_conn_strdup(c, reference, strlen(reference));
    if (!r)
      return MQTTB_ERR_NOMEM;
  }
  mqttb_mem_free(mem, x->server_reference);
  x->server_reference = r;
  return 0;
}

/* ---------------------------------------------------------------- getters */

void *mqttb_conn_get_user_data(const mqttb_conn *c) {
  return c ? c->user_data : NULL;
}

int mqttb_conn_is_closing(const mqttb_conn *c) {
  return !c || c->state >= MQTTB_CONN_CLOSING;
}

const char *mqttb_conn_get_client_id(const mqttb_conn *c) {
  return c ? c->client_id : NULL;
}

int mqttb_conn_get_protocol_level(const mqttb_conn *c) {
  return c ? c->tx.level : 0;
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
