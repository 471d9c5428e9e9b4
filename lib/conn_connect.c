/* SPDX-License-Identifier: MIT */
/* CONNECT, MQTT 5 enhanced authentication (AUTH) and DISCONNECT. See
 * conn.h. */
#include <stdio.h>
#include <string.h>

#include "conn.h"

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
  uint8_t code = c->tx.level == 5 ? rc : v3_code(rc);
  return mqttb_tx_connack(&c->broker->hub, &c->tx, session_present, code, props, plen);
}

/* Refuse a CONNECT: CONNACK with the reason (MQTT 5 code; MQTT 3.x clients
 * get the nearest 3.x code), then close. */
static int refuse(mqttb_conn *c, uint8_t rc, int err, const char *why) {
  mqttb_conn_log_anon(c, MQTTB_LOG_NOTICE, "refusing connection (CONNACK %#x): %s",
                      c->tx.level == 5 ? rc : v3_code(rc), why);
  uint8_t props[3 + 256];
  size_t plen = 0;
  const char *ref = mqttb_conn_x(c)->server_reference;
  if (c->tx.level == 5 && ref &&
      (rc == MQTTB_REASON_USE_ANOTHER_SERVER || rc == MQTTB_REASON_SERVER_MOVED)) {
    size_t n = strlen(ref);
    if (n <= 256)
      plen = mqttb_prop_put_str(props, MQTTB_PROP_SERVER_REFERENCE, (const uint8_t *)ref, n);
  }
  if (send_connack(c, false, rc, props, plen) != 0)
    return MQTTB_ERR_CONN_NOMEM;
  return err;
}

static int make_auto_id(mqttb_broker *b, char *out, size_t outlen) {
  /* A keyed hash of a counter; unpredictable with a secret key, the same
   * sequence in every run without one. */
  for (;;) {
    uint64_t x = mqttb_siphash_u64(b->ctx.settings.auto_id_key, ++b->auto_id_counter);
    int n = snprintf(out, outlen, "%s%016llx", b->auto_id_prefix, (unsigned long long)x);
    if (n < 0 || (size_t)n >= outlen)
      return -1;
    if (!mqttb_sessions_find(&b->sessions, out, (size_t)n))
      return n;
  }
}

/* Call the authenticate callback. Returns its reason code. */
static int authenticate(mqttb_conn *c, const mqttb_connect *ck, const char *id, size_t idlen,
                        const mqttb_slice *method, const mqttb_slice *data, int step, bool reauth) {
  mqttb_ctx *ctx = &c->broker->ctx;
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
  req.protocol_level = c->tx.level;
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
  int rc;
  MQTTB_CALLBACK(ctx, rc = ctx->cb.authenticate(c, &req, ctx->user_data));
  return rc;
}

/* An AUTH packet carrying the method and the data the callback set. */
static int send_auth(mqttb_conn *c, uint8_t reason) {
  const struct mqttb_conn_ext *x = mqttb_conn_x(c);
  const mqttb_mem *mem = &c->broker->ctx.mem;
  size_t plen =
      mqttb_prop_put_str(NULL, MQTTB_PROP_AUTH_METHOD, NULL, x->auth_method_len) +
      (x->auth_data ? mqttb_prop_put_str(NULL, MQTTB_PROP_AUTH_DATA, NULL, x->auth_data_len) : 0);
  uint8_t *props = mqttb_mem_malloc(mem, plen);
  if (!props)
    return MQTTB_ERR_NOMEM;
  size_t n = mqttb_prop_put_str(props, MQTTB_PROP_AUTH_METHOD, (const uint8_t *)x->auth_method,
                                x->auth_method_len);
  if (x->auth_data)
    mqttb_prop_put_str(props + n, MQTTB_PROP_AUTH_DATA, x->auth_data, x->auth_data_len);
  int rv = mqttb_tx_reason(&c->broker->hub, &c->tx, MQTTB_PKT_AUTH, reason, props, plen);
  mqttb_mem_free(mem, props);
  return rv;
}

/* CONNACK properties (MQTT 5). Returns the length written into out (room
 * for at least 1024 bytes plus the auth data and response information). */
static size_t connack_props(mqttb_conn *c, uint8_t *out, bool assigned, uint16_t server_ka) {
  const mqttb_settings *st = &c->broker->ctx.settings;
  const struct mqttb_conn_ext *x = mqttb_conn_x(c);
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
  if (x->auth_method) {
    p += mqttb_prop_put_str(p, MQTTB_PROP_AUTH_METHOD, (const uint8_t *)x->auth_method,
                            x->auth_method_len);
    if (x->auth_data)
      p += mqttb_prop_put_str(p, MQTTB_PROP_AUTH_DATA, x->auth_data, x->auth_data_len);
  }
  return (size_t)(p - out);
}

/* Find the client's session: take over its connection, publish a will
 * whose delay passed, drop an expired session, and with Clean Start end
 * it. NULL when there is none to resume. */
static mqttb_session *claim_session(mqttb_conn *c, const char *client_id, size_t idlen,
                                    bool clean) {
  mqttb_broker *b = c->broker;
  mqttb_ctx *ctx = &b->ctx;
  mqttb_session *s = mqttb_sessions_find(&b->sessions, client_id, idlen);
  if (s && s->tx) {
    /* [MQTT-3.1.4-2]: the existing client is disconnected. */
    mqttb_log(ctx, MQTTB_LOG_NOTICE, "client %.*s already connected: closing the old connection",
              mqttb_log_cut(idlen), client_id);
    mqttb_conn_close(mqttb_conn_of_tx(s->tx), MQTTB_ERR_TAKEN_OVER);
    s = mqttb_sessions_find(&b->sessions, client_id, idlen);
  }
  if (!s)
    return NULL;
  /* A will whose delay passed before the timers ran is due. */
  mqttb_session_due due = {mqttb_session_take_due_will(s, ctx->now), false};
  mqttb_router_do(&b->router, s, due);
  if (mqttb_session_expired(s, ctx->now)) {
    /* Expired, though its timer has not run yet: it is gone. */
    mqttb_router_end_session(&b->router, s);
    return NULL;
  }
  /* Back before expiry: no delayed will [MQTT-3.1.3-9], no expiry. */
  mqttb_session_reclaim(s);
  if (clean) {
    /* [MQTT-3.1.2-4]: clean start discards the session; it ends, so a
     * pending will goes out now. */
    mqttb_router_end_session(&b->router, s);
    return NULL;
  }
  mqttb_session_drop_will(s);
  return s;
}

/* Everything after authentication: session, CONNACK, resumption. Takes
 * client_id (idlen bytes, NUL-terminated). */
static int complete_connect(mqttb_conn *c, const mqttb_connect *ck, char *client_id, size_t idlen,
                            bool assigned, const mqttb_connect_props *cp) {
  mqttb_broker *b = c->broker;
  mqttb_ctx *ctx = &b->ctx;
  const mqttb_settings *st = &ctx->settings;
  const mqttb_mem *mem = &ctx->mem;
  bool v5 = c->tx.level == 5;
  uint16_t server_ka = 0;
  if (v5 && st->max_keepalive && (ck->keepalive == 0 || ck->keepalive > st->max_keepalive)) {
    /* MQTT 5 can tell the client the keep-alive to use. */
    server_ka = (uint16_t)st->max_keepalive;
    c->keepalive = server_ka;
  }

  /* Everything that can fail for lack of memory happens before the old
   * connection or session is touched. */
  mqttb_msg *will = NULL;
  mqttb_pub_props wp;
  memset(&wp, 0, sizeof(wp));
  if (client_id && ck->will) {
    if (v5)
      mqttb_pub_props_view(&ck->will_props, &wp);
    will = mqttb_conn_make_msg(c, ck->will_topic, ck->will_payload, &ck->will_props,
                               v5 ? &wp : NULL, ck->will_qos, ck->will_retain);
  }
  const struct mqttb_conn_ext *x = mqttb_conn_x(c);
  size_t cap = 1024 + x->auth_data_len + x->auth_method_len +
               (st->response_information ? strlen(st->response_information) : 0) + idlen;
  uint8_t *props = client_id ? mqttb_mem_malloc(mem, cap) : NULL;
  if (!client_id || (ck->will && !will) || !props) {
    mqttb_mem_free(mem, client_id);
    mqttb_mem_free(mem, props);
    mqttb_msg_unref(mem, will);
    return MQTTB_ERR_CONN_NOMEM;
  }
  if (will && wp.has_expiry)
    will->expiry_interval = wp.expiry ? wp.expiry : 0;
  if (will) {
    /* The will is checked like a PUBLISH, the client id known to the
     * callback. */
    char *prev = c->client_id;
    c->client_id = client_id;
    uint8_t code = mqttb_conn_authorize(c, MQTTB_ACCESS_PUBLISH, ck->will_topic.ptr,
                                        ck->will_topic.len, ck->will_qos, ck->will_retain);
    c->client_id = prev;
    if (code) {
      mqttb_mem_free(mem, client_id);
      mqttb_mem_free(mem, props);
      mqttb_msg_unref(mem, will);
      return refuse(c, v5 ? code : MQTTB_REASON_NOT_AUTHORIZED, MQTTB_ERR_NOT_AUTHORIZED,
                    "will topic not authorized");
    }
  }

  mqttb_session *s = claim_session(c, client_id, idlen, ck->clean);
  bool present = s != NULL;
  if (!s) {
    s = mqttb_session_new(&b->sessions, client_id, idlen);
    if (!s) {
      mqttb_mem_free(mem, client_id);
      mqttb_mem_free(mem, props);
      mqttb_msg_unref(mem, will);
      return MQTTB_ERR_CONN_NOMEM;
    }
  }
  if (v5)
    s->expiry_interval = cp->session_expiry;
  else if (ck->clean)
    s->expiry_interval = 0;
  else
    s->expiry_interval =
        st->persistent_client_expiration ? st->persistent_client_expiration : UINT32_MAX;
  mqttb_session_attach(s, &c->tx);
  mqttb_session_record(s);
  c->session = s;
  mqttb_mem_free(mem, c->client_id);
  c->client_id = client_id;
  c->will = will;
  c->will_delay = wp.will_delay;
  c->state = MQTTB_CONN_CONNECTED;
  c->last_rx = ctx->now; /* the keep-alive counts from here */
  ctx->stats.clients_connected++;
  ctx->stats.connects_total++;
  if (ctx->stats.clients_connected > ctx->stats.clients_maximum)
    ctx->stats.clients_maximum = ctx->stats.clients_connected;
  size_t plen = v5 ? connack_props(c, props, assigned, server_ka) : 0;
  int rv = send_connack(c, present, MQTTB_REASON_SUCCESS, props, plen);
  mqttb_mem_free(mem, props);
  if (rv != 0)
    return MQTTB_ERR_CONN_NOMEM;
  mqttb_conn_log(c, MQTTB_LOG_DEBUG, "connected (level %u, clean %d, keep-alive %u)", c->tx.level,
                 c->clean, c->keepalive);
  if (ctx->cb.on_connect)
    MQTTB_CALLBACK(ctx, ctx->cb.on_connect(c, ctx->user_data));
  if (present) {
    mqttb_session_resume(s);
    mqttb_router_pump_retained(&b->router, s);
  }
  return 0;
}

/* What the connection keeps of a decoded CONNECT. */
static void take_fields(mqttb_conn *c, const mqttb_connect *ck, mqttb_connect_props *cp) {
  c->tx.level = ck->level;
  c->clean = ck->clean;
  c->keepalive = ck->keepalive;
  mqttb_connect_props_view(&ck->props, cp);
  if (c->tx.level == 5) {
    c->tx.receive_max = cp->receive_max;
    c->tx.max_packet = cp->max_packet;
    c->tx.alias_max = cp->alias_max;
    c->request_response_info = cp->request_response_info;
  }
}

/* Decode a CONNECT and take its fields. 0, or the close reason (after a
 * CONNACK where the spec asks for one). */
static int decode(mqttb_conn *c, const uint8_t *body, size_t len, mqttb_connect *ck,
                  mqttb_connect_props *cp) {
  int r = mqttb_decode_connect(body, len, ck);
  if (r == MQTTB_CODEC_BAD_PROTOCOL) {
    /* [MQTT-3.1.2-2]: CONNACK 0x01, then close. */
    c->tx.level = ck->level == 3 ? 3 : 4;
    return refuse(c, MQTTB_REASON_UNACCEPTABLE_PROTOCOL, MQTTB_ERR_UNSUPPORTED_PROTOCOL,
                  "unsupported protocol level");
  }
  if (r != MQTTB_CODEC_OK) {
    mqttb_conn_log_anon(c, MQTTB_LOG_NOTICE, "malformed CONNECT (%d)", r);
    if (ck->level == 5) {
      /* An MQTT 5 client is told why [MQTT-3.1.4-1]. */
      c->tx.level = 5;
      uint8_t rc =
          r == MQTTB_CODEC_PROTOCOL ? MQTTB_REASON_PROTOCOL_ERROR : MQTTB_REASON_MALFORMED_PACKET;
      return refuse(c, rc, mqttb_conn_codec_err(c, r), "malformed CONNECT");
    }
    return mqttb_conn_codec_err(c, r);
  }
  take_fields(c, ck, cp);
  return 0;
}

/* Whether a CONNECT body names MQTT 3.1's protocol, "MQIsdp". */
static bool is_mqtt31(const uint8_t *body, size_t len) {
  static const uint8_t name[8] = {0, 6, 'M', 'Q', 'I', 's', 'd', 'p'};
  return len >= sizeof(name) && memcmp(body, name, sizeof(name)) == 0;
}

int mqttb_conn_on_connect(mqttb_conn *c, uint8_t flags, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  mqttb_ctx *ctx = &b->ctx;
  const mqttb_settings *st = &ctx->settings;
  if (flags != 0 && !is_mqtt31(body, len)) {
    /* [MQTT-2.2.2-2]: reserved since MQTT 3.1.1; MQTT 3.1 had DUP, QoS and
     * RETAIN bits here, unused for CONNECT. */
    mqttb_conn_log_anon(c, MQTTB_LOG_NOTICE, "invalid fixed header (type 1, flags %#x)", flags);
    return MQTTB_ERR_MALFORMED;
  }
  mqttb_connect ck;
  mqttb_connect_props cp;
  int rv = decode(c, body, len, &ck, &cp);
  if (rv != 0)
    return rv;

  char idbuf[64];
  const char *id = (const char *)ck.client_id.ptr;
  size_t idlen = ck.client_id.len;
  bool assigned = false;
  if (idlen == 0) {
    /* [MQTT-3.1.3-7], [MQTT-3.1.3-8]; MQTT 3.1 requires 1 to 23 characters;
     * MQTT 5 assigns an id whatever Clean Start says [MQTT-3.1.3-6]. */
    if (c->tx.level == 3 || (c->tx.level == 4 && !ck.clean) || !st->allow_zero_length_clientid)
      return refuse(c, MQTTB_REASON_CLIENT_ID_NOT_VALID, MQTTB_ERR_IDENTIFIER_REJECTED,
                    "empty client identifier");
    int n = make_auto_id(b, idbuf, sizeof(idbuf));
    if (n < 0)
      return MQTTB_ERR_CONN_NOMEM;
    id = idbuf;
    idlen = (size_t)n;
    assigned = true;
  } else if (c->tx.level == 3 && idlen > 23) {
    return refuse(c, MQTTB_REASON_CLIENT_ID_NOT_VALID, MQTTB_ERR_IDENTIFIER_REJECTED,
                  "MQTT 3.1 client identifier longer than 23 characters");
  }
  if (c->tx.level < 5 && st->max_keepalive &&
      (ck.keepalive == 0 || ck.keepalive > st->max_keepalive)) {
    /* MQTT 3.x cannot tell a client to use another keep-alive, so a client
     * asking for more than allowed is refused (Mosquitto's documented
     * behaviour; 2.0.11 itself accepts such clients). */
    return refuse(c, MQTTB_REASON_CLIENT_ID_NOT_VALID, MQTTB_ERR_IDENTIFIER_REJECTED,
                  "keep-alive above max_keepalive");
  }

  if (cp.has_auth_method) {
    if (!ctx->cb.authenticate)
      return refuse(c, MQTTB_REASON_BAD_AUTH_METHOD, MQTTB_ERR_NOT_AUTHORIZED,
                    "no authentication method is supported");
    struct mqttb_conn_ext *x = mqttb_conn_ext(c);
    if (!x || !(x->auth_method = mqttb_conn_strdup(c, cp.auth_method.ptr, cp.auth_method.len)))
      return MQTTB_ERR_CONN_NOMEM;
    x->auth_method_len = cp.auth_method.len;
  }
  if (ctx->cb.authenticate) {
    int rc = authenticate(c, &ck, id, idlen, cp.has_auth_method ? &cp.auth_method : NULL,
                          &cp.auth_data, 0, false);
    if (rc == MQTTB_REASON_CONTINUE_AUTHENTICATION && mqttb_conn_x(c)->auth_method) {
      /* Hold the CONNECT (and an assigned id) until the exchange ends. */
      struct mqttb_conn_ext *x = c->x; /* exists: it holds the method */
      x->pending_connect = mqttb_mem_malloc(&ctx->mem, len ? len : 1);
      if (!x->pending_connect)
        return MQTTB_ERR_CONN_NOMEM;
      memcpy(x->pending_connect, body, len);
      x->pending_connect_len = len;
      if (assigned) {
        c->client_id = mqttb_conn_strdup(c, id, idlen);
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
  return complete_connect(c, &ck, mqttb_conn_strdup(c, id, idlen), idlen, assigned, &cp);
}

/* The exchange started by CONNECT succeeded: complete the CONNECT held
 * since, with the identifier assigned then. */
static int resume_connect(mqttb_conn *c) {
  struct mqttb_conn_ext *x = c->x; /* exists: it holds the method */
  uint8_t *body = x->pending_connect;
  size_t len = x->pending_connect_len;
  x->pending_connect = NULL;
  mqttb_connect ck;
  mqttb_connect_props cp;
  /* It decoded before, so it decodes again. */
  int rv = decode(c, body, len, &ck, &cp);
  if (rv == 0) {
    bool assigned = ck.client_id.len == 0;
    char *id = assigned ? c->client_id : mqttb_conn_strdup(c, ck.client_id.ptr, ck.client_id.len);
    if (assigned)
      c->client_id = NULL; /* complete_connect takes it */
    rv = complete_connect(c, &ck, id, id ? strlen(id) : 0, assigned, &cp);
  }
  mqttb_mem_free(&c->broker->ctx.mem, body);
  return rv;
}

int mqttb_conn_on_auth(mqttb_conn *c, const uint8_t *body, size_t len) {
  if (c->tx.level != 5)
    return mqttb_conn_fail(c, 0, MQTTB_ERR_PROTOCOL, "AUTH from an MQTT 3.x client");
  uint8_t reason;
  mqttb_slice props;
  int r = mqttb_decode_reason_props(MQTTB_PKT_AUTH, body, len, &reason, &props);
  if (r != MQTTB_CODEC_OK)
    return mqttb_conn_codec_err(c, r);
  mqttb_prop method = {0}, data = {0};
  bool has_method = mqttb_props_find(&props, MQTTB_PROP_AUTH_METHOD, &method);
  mqttb_props_find(&props, MQTTB_PROP_AUTH_DATA, &data);
  bool connecting = c->state == MQTTB_CONN_AWAIT_CONNECT;
  const struct mqttb_conn_ext *xr = mqttb_conn_x(c);
  /* [MQTT-4.12.0-1..7]: only within an exchange the broker agreed to, with
   * the same method. */
  if (!xr->auth_method || !has_method || method.a.len != xr->auth_method_len ||
      memcmp(method.a.ptr, xr->auth_method, xr->auth_method_len) != 0)
    return mqttb_conn_fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                           "AUTH outside an exchange");
  struct mqttb_conn_ext *x = c->x; /* exists: it holds the method */
  if (connecting ? (!x->pending_connect || reason != MQTTB_REASON_CONTINUE_AUTHENTICATION)
                 : (reason != MQTTB_REASON_REAUTHENTICATE &&
                    !(x->reauth && reason == MQTTB_REASON_CONTINUE_AUTHENTICATION)))
    return mqttb_conn_fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                           "unexpected AUTH reason");
  if (!connecting && reason == MQTTB_REASON_REAUTHENTICATE) {
    x->reauth = true;
    x->auth_step = 0;
  }
  mqttb_connect ck;
  bool have_ck = false;
  if (connecting)
    have_ck = mqttb_decode_connect(x->pending_connect, x->pending_connect_len, &ck) == 0;
  const char *id = c->client_id;
  size_t idlen = id ? strlen(id) : 0;
  if (connecting && have_ck && ck.client_id.len) {
    id = (const char *)ck.client_id.ptr;
    idlen = ck.client_id.len;
  }
  mqttb_slice m = {(const uint8_t *)x->auth_method, x->auth_method_len};
  int rc =
      authenticate(c, have_ck ? &ck : NULL, id, idlen, &m, &data.a, x->auth_step++, !connecting);
  if (rc == MQTTB_REASON_CONTINUE_AUTHENTICATION)
    return send_auth(c, MQTTB_REASON_CONTINUE_AUTHENTICATION) ? MQTTB_ERR_CONN_NOMEM : 0;
  if (connecting) {
    if (rc != MQTTB_REASON_SUCCESS)
      return refuse(c, v5_code(rc), refusal_err(v5_code(rc)),
                    "refused by the authenticate callback");
    return resume_connect(c);
  }
  x->reauth = false;
  if (rc != MQTTB_REASON_SUCCESS)
    return mqttb_conn_fail(c, v5_code(rc), MQTTB_ERR_NOT_AUTHORIZED, "re-authentication refused");
  return send_auth(c, MQTTB_REASON_SUCCESS) ? MQTTB_ERR_CONN_NOMEM : 0;
}

int mqttb_conn_on_disconnect(mqttb_conn *c, const uint8_t *body, size_t len) {
  uint8_t reason = 0;
  if (c->tx.level == 5) {
    mqttb_slice props;
    int r = mqttb_decode_reason_props(MQTTB_PKT_DISCONNECT, body, len, &reason, &props);
    if (r != MQTTB_CODEC_OK)
      return mqttb_conn_codec_err(c, r);
    mqttb_prop p;
    if (mqttb_props_find(&props, MQTTB_PROP_SESSION_EXPIRY, &p)) {
      /* [MQTT-3.14.2-2]: 0 at CONNECT cannot become non-zero. */
      if (c->session->expiry_interval == 0 && p.value != 0)
        return mqttb_conn_fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                               "DISCONNECT sets a session expiry after CONNECT set none");
      c->session->expiry_interval = p.value;
    }
  } else if (len != 0) {
    return MQTTB_ERR_MALFORMED;
  }
  /* [MQTT-3.14.4-3]: the will is discarded, unless an MQTT 5 client asks
   * for it with reason 0x04. */
  if (reason != MQTTB_REASON_DISCONNECT_WITH_WILL) {
    mqttb_msg_unref(&c->broker->ctx.mem, c->will);
    c->will = NULL;
  }
  return MQTTB_ERR_CLIENT_DISCONNECTED;
}
