/* SPDX-License-Identifier: MIT */
/* PUBLISH from a client, the acknowledgements of both QoS flows,
 * SUBSCRIBE and UNSUBSCRIBE. See conn.h. */
#include <string.h>

#include "conn.h"

/* The authorize callback's verdict: 0 to allow, else the MQTT 5 reason
 * code to refuse with (any value outside 0x80..0xFF means not authorized). */
static int ack_publish(mqttb_conn *c, uint8_t qos, uint16_t pid, uint8_t reason) {
  if (qos == 0)
    return 0;
  int rv = mqttb_tx_ack(&c->broker->hub, &c->tx, qos == 1 ? MQTTB_PKT_PUBACK : MQTTB_PKT_PUBREC,
                        pid, reason);
  return rv ? MQTTB_ERR_CONN_NOMEM : 0;
}

/* Resolve an inbound topic alias (MQTT 5). */
static int resolve_alias(mqttb_conn *c, uint16_t alias, mqttb_slice *topic) {
  const mqttb_mem *mem = &c->broker->ctx.mem;
  uint16_t max = c->broker->ctx.settings.topic_alias_maximum;
  if (alias > max)
    return mqttb_conn_fail(c, MQTTB_REASON_TOPIC_ALIAS_INVALID, MQTTB_ERR_PROTOCOL,
                           "topic alias above the maximum");
  struct mqttb_conn_ext *x = mqttb_conn_ext(c);
  if (!x)
    return MQTTB_ERR_CONN_NOMEM;
  if (!x->alias_in) {
    x->alias_in = mqttb_mem_calloc(mem, (size_t)max + 1, sizeof(char *));
    x->alias_in_len = mqttb_mem_calloc(mem, (size_t)max + 1, sizeof(uint16_t));
    if (!x->alias_in || !x->alias_in_len)
      return MQTTB_ERR_CONN_NOMEM;
  }
  if (topic->len == 0) {
    if (!x->alias_in[alias])
      return mqttb_conn_fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                             "unknown topic alias");
    topic->ptr = (const uint8_t *)x->alias_in[alias];
    topic->len = x->alias_in_len[alias];
    return 0;
  }
  char *t = mqttb_conn_strdup(c, topic->ptr, topic->len);
  if (!t)
    return MQTTB_ERR_CONN_NOMEM;
  mqttb_mem_free(mem, x->alias_in[alias]);
  x->alias_in[alias] = t;
  x->alias_in_len[alias] = (uint16_t)topic->len;
  return 0;
}

/* The MQTT 5 checks of a PUBLISH that close the connection. */
static int check_publish5(mqttb_conn *c, mqttb_publish *p, const mqttb_pub_props *pp) {
  const mqttb_settings *st = &c->broker->ctx.settings;
  mqttb_session *s = c->session;
  if (pp->has_sub_id) /* [MQTT-3.3.4-6] */
    return mqttb_conn_fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                           "PUBLISH with a subscription identifier");
  if (p->qos > st->max_qos) /* [MQTT-3.2.2-11] */
    return mqttb_conn_fail(c, MQTTB_REASON_QOS_NOT_SUPPORTED, MQTTB_ERR_PROTOCOL,
                           "PUBLISH above the maximum QoS");
  if (p->retain && !st->retain_available) /* [MQTT-3.2.2-14] */
    return mqttb_conn_fail(c, MQTTB_REASON_RETAIN_NOT_SUPPORTED, MQTTB_ERR_PROTOCOL,
                           "retained PUBLISH while retain is not available");
  if (pp->alias) {
    int rv = resolve_alias(c, pp->alias, &p->topic);
    if (rv != 0)
      return rv;
  } else if (p->topic.len == 0) {
    return mqttb_conn_fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                           "empty topic without a topic alias");
  }
  if (p->qos == 2 && !mqttb_session_qos2_has(s, p->packet_id) &&
      mqttb_session_qos2_count(s) >= st->receive_maximum) /* [MQTT-3.3.4-7] */
    return mqttb_conn_fail(c, MQTTB_REASON_RECEIVE_MAXIMUM_EXCEEDED, MQTTB_ERR_PROTOCOL,
                           "more unacknowledged QoS 2 messages than Receive Maximum");
  return 0;
}

/* Why a well-formed PUBLISH is acknowledged but not delivered; 0 when it
 * is delivered. */
static uint8_t refusal(mqttb_conn *c, const mqttb_publish *p, const mqttb_pub_props *pp) {
  const mqttb_settings *st = &c->broker->ctx.settings;
  int tlen = mqttb_log_cut(p->topic.len);
  const char *topic = (const char *)p->topic.ptr;
  /* A topic has at most one level more than it has bytes: short ones need
   * no count. */
  if (st->max_topic_levels && p->topic.len >= st->max_topic_levels &&
      mqttb_topic_levels(p->topic.ptr, p->topic.len) > st->max_topic_levels) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "topic with more than %u levels refused",
                   st->max_topic_levels);
    return MQTTB_REASON_TOPIC_NAME_INVALID;
  }
  if (mqttb_sys_topic(p->topic.ptr, p->topic.len)) {
    /* The $SYS tree is the broker's own. */
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "publishing to %.*s refused: $SYS is read-only", tlen,
                   topic);
    return MQTTB_REASON_NOT_AUTHORIZED_5;
  }
  uint8_t code =
      mqttb_conn_authorize(c, MQTTB_ACCESS_PUBLISH, p->topic.ptr, p->topic.len, p->qos, p->retain);
  if (code) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "not authorized to publish to %.*s", tlen, topic);
    return code;
  }
  if (pp->payload_format == 1 && !mqttb_utf8_valid(p->payload.ptr, p->payload.len)) {
    /* The Payload Format Indicator promises UTF-8: checked, as allowed. */
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "payload on %.*s is not the UTF-8 it claims", tlen, topic);
    return MQTTB_REASON_PAYLOAD_FORMAT_INVALID;
  }
  return 0;
}

/* A PUBLISH the broker has no memory for (memory_limit, or out of
 * memory). Nothing acknowledged may be lost: QoS 0 is dropped and counted,
 * an MQTT 5 client is told 0x97 in its PUBACK or PUBREC (which ends the
 * flow), and an MQTT 3.x client, which cannot be told, is disconnected. */
static int not_stored(mqttb_conn *c, const mqttb_publish *p) {
  mqttb_ctx *ctx = &c->broker->ctx;
  mqttb_conn_log(c, MQTTB_LOG_WARNING, "out of memory: PUBLISH to %.*s not stored",
                 mqttb_log_cut(p->topic.len), (const char *)p->topic.ptr);
  if (p->qos == 0) {
    ctx->stats.publish_dropped++;
    return 0;
  }
  if (c->tx.level == 5)
    return ack_publish(c, p->qos, p->packet_id, MQTTB_REASON_QUOTA_EXCEEDED);
  return MQTTB_ERR_CONN_NOMEM;
}

int mqttb_conn_on_publish(mqttb_conn *c, uint8_t flags, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  mqttb_ctx *ctx = &b->ctx;
  mqttb_session *s = c->session;
  bool v5 = c->tx.level == 5;
  mqttb_publish p;
  int r = mqttb_decode_publish_v(flags, body, len, c->tx.level, &p);
  if (r != MQTTB_CODEC_OK) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "malformed PUBLISH (%d)", r);
    return mqttb_conn_codec_err(c, r);
  }
  ctx->stats.publish_received++;
  mqttb_pub_props pp;
  memset(&pp, 0, sizeof(pp));
  if (v5) {
    mqttb_pub_props_view(&p.props, &pp);
    int rv = check_publish5(c, &p, &pp);
    if (rv != 0)
      return rv;
  }
  if (p.qos == 2 && mqttb_session_qos2_has(s, p.packet_id)) {
    /* A re-sent QoS 2 PUBLISH before PUBREL: acknowledged, not delivered
     * again [MQTT-4.3.3-2]. */
    return ack_publish(c, 2, p.packet_id, 0);
  }
  uint8_t code = refusal(c, &p, &pp);
  if (code)
    return ack_publish(c, p.qos, p.packet_id, code);
  mqttb_msg *m =
      mqttb_conn_make_msg(c, p.topic, p.payload, &p.props, v5 ? &pp : NULL, p.qos, p.retain);
  if (!m || (p.qos == 2 && mqttb_session_qos2_add(s, p.packet_id) != 0)) {
    mqttb_msg_unref(&ctx->mem, m);
    return not_stored(c, &p);
  }
  if (pp.has_expiry)
    m->expiry_at = ctx->now + (uint64_t)pp.expiry * 1000u;
  /* The records of its deliveries count once the packet id's is written
   * after them: a store torn in between drops them, and the client, which
   * got no PUBREC, sends the message again. */
  m->store_pending = p.qos == 2;
  size_t n = mqttb_router_publish(&b->router, m, s);
  /* Delivered to nobody for lack of memory (and counted): the publisher is
   * told as for a message with no room, and may send it again. */
  bool lost = n == MQTTB_ROUTER_NOMEM;
  if (p.qos == 2 && lost)
    mqttb_session_qos2_del(s, p.packet_id);
  else if (p.qos == 2)
    mqttb_session_qos2_commit(s, p.packet_id, m);
  mqttb_msg_unref(&ctx->mem, m);
  if (lost)
    return p.qos == 0 ? 0 : not_stored(c, &p);
  return ack_publish(c, p.qos, p.packet_id, n ? 0 : MQTTB_REASON_NO_MATCHING_SUBSCRIBERS);
}

int mqttb_conn_on_ack(mqttb_conn *c, const mqttb_frame *f, const uint8_t *body, size_t len) {
  mqttb_tx_hub *hub = &c->broker->hub;
  uint16_t pid;
  uint8_t reason = 0;
  int r;
  if (c->tx.level == 5) {
    mqttb_slice props;
    r = mqttb_decode_ack5(f->type, body, len, &pid, &reason, &props);
  } else {
    r = mqttb_decode_ack(body, len, &pid);
  }
  if (r != MQTTB_CODEC_OK) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "malformed acknowledgement (type %u)", f->type);
    return mqttb_conn_codec_err(c, r);
  }
  int rv = 0;
  switch (f->type) {
  case MQTTB_PKT_PUBACK:
    rv = mqttb_session_on_puback(c->session, pid);
    break;
  case MQTTB_PKT_PUBREC: {
    bool rel;
    uint8_t rel_reason;
    rv = mqttb_session_on_pubrec(c->session, pid, reason, &rel, &rel_reason);
    if (rv == 0 && rel && mqttb_tx_ack(hub, &c->tx, MQTTB_PKT_PUBREL, pid, rel_reason) != 0)
      return MQTTB_ERR_CONN_NOMEM;
    break;
  }
  case MQTTB_PKT_PUBCOMP:
    rv = mqttb_session_on_pubcomp(c->session, pid);
    break;
  default: {
    /* PUBREL: the inbound QoS 2 flow ends; PUBCOMP even for an unknown id
     * [MQTT-4.3.3-2] (MQTT 5 says it was unknown). */
    bool known = mqttb_session_qos2_del(c->session, pid);
    if (mqttb_tx_ack(hub, &c->tx, MQTTB_PKT_PUBCOMP, pid,
                     known ? 0 : MQTTB_REASON_PACKET_ID_NOT_FOUND) != 0)
      return MQTTB_ERR_CONN_NOMEM;
    return 0;
  }
  }
  if (rv == 0 && c->session->retained)
    mqttb_router_pump_retained(&c->broker->router, c->session); /* a slot may be free */
  if (rv != 0) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "%s for packet id %u, which awaits another acknowledgement",
                   f->type == MQTTB_PKT_PUBACK   ? "PUBACK"
                   : f->type == MQTTB_PKT_PUBREC ? "PUBREC"
                                                 : "PUBCOMP",
                   pid);
    return mqttb_conn_fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                           "wrong acknowledgement for a message in flight");
  }
  return 0;
}

/* The SUBACK code for one filter of a SUBSCRIBE, subscribing it when
 * allowed; *send_retained tells whether its retained messages follow. */
static uint8_t subscribe_one(mqttb_conn *c, mqttb_slice f, uint8_t opts, uint32_t sub_id,
                             bool *send_retained, int *fatal) {
  mqttb_ctx *ctx = &c->broker->ctx;
  const mqttb_settings *st = &ctx->settings;
  bool v5 = c->tx.level == 5;
  uint8_t failure = v5 ? MQTTB_REASON_UNSPECIFIED_ERROR : MQTTB_REASON_SUBSCRIBE_FAILURE;
  uint8_t qos = opts & 3;
  uint8_t rh = (uint8_t)((opts >> 4) & 3);
  uint8_t sopts = v5 ? (uint8_t)(opts & (MQTTB_SUB_NO_LOCAL | MQTTB_SUB_RETAIN_AS_PUBLISHED)) : 0;
  mqttb_slice name, real = f;
  bool valid;
  bool shared = mqttb_share_parse((const char *)f.ptr, f.len, &name, &real, &valid);
  *send_retained = false;
  ctx->work++;
  if (shared && v5 && (sopts & MQTTB_SUB_NO_LOCAL)) {
    *fatal = mqttb_conn_fail(c, MQTTB_REASON_PROTOCOL_ERROR, MQTTB_ERR_PROTOCOL,
                             "No Local on a shared subscription"); /* [MQTT-3.8.3-4] */
    return 0;
  }
  if (shared && !valid)
    return v5 ? MQTTB_REASON_TOPIC_FILTER_INVALID : MQTTB_REASON_SUBSCRIBE_FAILURE;
  if (shared && !st->shared_subscriptions)
    return v5 ? MQTTB_REASON_SHARED_SUBS_NOT_SUPPORTED : MQTTB_REASON_SUBSCRIBE_FAILURE;
  if (st->max_topic_levels && mqttb_topic_levels(real.ptr, real.len) > st->max_topic_levels) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "filter with more than %u levels refused",
                   st->max_topic_levels);
    return v5 ? MQTTB_REASON_TOPIC_FILTER_INVALID : MQTTB_REASON_SUBSCRIBE_FAILURE;
  }
  if (!st->wildcard_subscriptions && mqttb_topic_has_wildcard(real.ptr, real.len))
    return v5 ? MQTTB_REASON_WILDCARD_SUBS_NOT_SUPPORTED : MQTTB_REASON_SUBSCRIBE_FAILURE;
  uint8_t code = mqttb_conn_authorize(c, MQTTB_ACCESS_SUBSCRIBE, f.ptr, f.len, qos, false);
  if (code) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "not authorized to subscribe to %.*s", mqttb_log_cut(f.len),
                   (const char *)f.ptr);
    return v5 ? code : MQTTB_REASON_SUBSCRIBE_FAILURE;
  }
  if (qos > st->max_qos)
    qos = st->max_qos;
  bool existed = false;
  int sr =
      mqttb_session_subscribe(c->session, (const char *)f.ptr, f.len, qos, sopts, sub_id, &existed);
  if (sr == MQTTB_ERR_QUOTA) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "subscription to %.*s refused: max_subscriptions reached",
                   mqttb_log_cut(f.len), (const char *)f.ptr);
    return v5 ? MQTTB_REASON_QUOTA_EXCEEDED : MQTTB_REASON_SUBSCRIBE_FAILURE;
  }
  if (sr != 0)
    return failure;
  /* Retain Handling 0: always; 1: only for a new subscription; 2: never.
   * Shared subscriptions get none. */
  *send_retained = !shared && (rh == 0 || (rh == 1 && !existed));
  return qos;
}

int mqttb_conn_on_subscribe(mqttb_conn *c, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  mqttb_ctx *ctx = &b->ctx;
  const mqttb_mem *mem = &ctx->mem;
  bool v5 = c->tx.level == 5;
  mqttb_subscribe sp;
  mqttb_slice props;
  int r = mqttb_decode_subscribe_v(body, len, c->tx.level, &sp, &props);
  if (r != MQTTB_CODEC_OK) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "malformed SUBSCRIBE (%d)", r);
    return mqttb_conn_codec_err(c, r);
  }
  uint32_t sub_id = 0;
  mqttb_prop idp;
  if (v5 && mqttb_props_find(&props, MQTTB_PROP_SUBSCRIPTION_ID, &idp)) {
    if (!ctx->settings.subscription_identifiers) /* announced unavailable */
      return mqttb_conn_fail(c, MQTTB_REASON_SUB_IDS_NOT_SUPPORTED, MQTTB_ERR_PROTOCOL,
                             "subscription identifier while they are not supported");
    sub_id = idp.value;
  }
  uint8_t small[64], small_ret[64];
  bool heap = sp.count > sizeof(small);
  uint8_t *codes = heap ? mqttb_mem_malloc(mem, sp.count) : small;
  uint8_t *ret = heap ? mqttb_mem_malloc(mem, sp.count) : small_ret;
  if (!codes || !ret) {
    if (heap) {
      mqttb_mem_free(mem, codes);
      mqttb_mem_free(mem, ret);
    }
    return MQTTB_ERR_CONN_NOMEM;
  }
  int rv = 0;
  size_t pos = 0, i = 0;
  mqttb_slice f;
  uint8_t opts;
  while (rv == 0 && mqttb_subscribe_next(&sp.entries, &pos, &f, &opts)) {
    bool send_ret;
    codes[i] = subscribe_one(c, f, opts, sub_id, &send_ret, &rv);
    ret[i] = send_ret;
    i++;
  }
  if (rv == 0 &&
      mqttb_tx_ack_codes(&b->hub, &c->tx, MQTTB_PKT_SUBACK, sp.packet_id, codes, sp.count) != 0)
    rv = MQTTB_ERR_CONN_NOMEM;
  /* Retained messages follow the SUBACK [MQTT-3.3.1-6]. */
  pos = 0;
  i = 0;
  while (rv == 0 && mqttb_subscribe_next(&sp.entries, &pos, &f, &opts)) {
    if (ret[i] && mqttb_router_send_retained(&b->router, c->session, (const char *)f.ptr, f.len,
                                             codes[i], sub_id) != 0)
      rv = MQTTB_ERR_CONN_NOMEM;
    i++;
  }
  if (heap) {
    mqttb_mem_free(mem, codes);
    mqttb_mem_free(mem, ret);
  }
  return rv;
}

int mqttb_conn_on_unsubscribe(mqttb_conn *c, const uint8_t *body, size_t len) {
  mqttb_broker *b = c->broker;
  mqttb_unsubscribe up;
  mqttb_slice props;
  int r = mqttb_decode_unsubscribe_v(body, len, c->tx.level, &up, &props);
  if (r != MQTTB_CODEC_OK) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "malformed UNSUBSCRIBE (%d)", r);
    return mqttb_conn_codec_err(c, r);
  }
  size_t pos = 0;
  mqttb_slice f;
  if (c->tx.level < 5) {
    while (mqttb_unsubscribe_next(&up.entries, &pos, &f)) {
      b->ctx.work++;
      mqttb_session_unsubscribe(c->session, (const char *)f.ptr, f.len);
    }
    return mqttb_tx_ack(&b->hub, &c->tx, MQTTB_PKT_UNSUBACK, up.packet_id, 0) ? MQTTB_ERR_CONN_NOMEM
                                                                              : 0;
  }
  uint8_t small[64];
  uint8_t *codes = up.count <= sizeof(small) ? small : mqttb_mem_malloc(&b->ctx.mem, up.count);
  if (!codes)
    return MQTTB_ERR_CONN_NOMEM;
  size_t i = 0;
  while (mqttb_unsubscribe_next(&up.entries, &pos, &f)) {
    b->ctx.work++;
    codes[i++] = mqttb_session_unsubscribe(c->session, (const char *)f.ptr, f.len)
                     ? MQTTB_REASON_SUCCESS
                     : MQTTB_REASON_NO_SUBSCRIPTION_EXISTED;
  }
  int rv = mqttb_tx_ack_codes(&b->hub, &c->tx, MQTTB_PKT_UNSUBACK, up.packet_id, codes, up.count);
  if (codes != small)
    mqttb_mem_free(&b->ctx.mem, codes);
  return rv ? MQTTB_ERR_CONN_NOMEM : 0;
}
