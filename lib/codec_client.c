/* SPDX-License-Identifier: MIT */
/*
 * The client side of the MQTT wire format: what a client sends (CONNECT,
 * PUBLISH, SUBSCRIBE, UNSUBSCRIBE) and what it reads that a server alone
 * sends (CONNACK, SUBACK). See codec_client.h. The same rules as codec.c.
 */
#include "codec_client.h"

#include <string.h>

/* The protocol name to write: the caller's, or the one the level implies. */
static mqttb_slice connect_name(const mqttb_connect *c) {
  mqttb_slice s = c->protocol_name;
  if (s.len == 0) {
    if (c->level == 3) {
      s.ptr = (const uint8_t *)MQTTB_NAME_MQISDP;
      s.len = (sizeof(MQTTB_NAME_MQISDP) - 1);
    } else {
      s.ptr = (const uint8_t *)MQTTB_NAME_MQTT;
      s.len = (sizeof(MQTTB_NAME_MQTT) - 1);
    }
  }
  return s;
}

/* Remaining length of the CONNECT, or SIZE_MAX if it cannot be encoded. */
static size_t connect_remaining(const mqttb_connect *c) {
  mqttb_slice name = connect_name(c);
  size_t rem;

  if (name.len > MQTTB_STR_MAX || c->client_id.len > MQTTB_STR_MAX) {
    return SIZE_MAX;
  }
  rem = 2 + name.len + 1 + 1 + 2 + 2 + c->client_id.len;
  if (c->level == 5) {
    rem += mqttb_codec_varint_size((uint32_t)c->props.len) + c->props.len;
  }
  if (c->will && c->level == 5) {
    rem += mqttb_codec_varint_size((uint32_t)c->will_props.len) + c->will_props.len;
  }
  if (c->will) {
    if (c->will_topic.len > MQTTB_STR_MAX || c->will_payload.len > MQTTB_STR_MAX) {
      return SIZE_MAX;
    }
    rem += 2 + c->will_topic.len + 2 + c->will_payload.len;
  }
  if (c->has_username) {
    if (c->username.len > MQTTB_STR_MAX) {
      return SIZE_MAX;
    }
    rem += 2 + c->username.len;
  }
  if (c->has_password) {
    if (c->password.len > MQTTB_STR_MAX) {
      return SIZE_MAX;
    }
    rem += 2 + c->password.len;
  }
  return rem;
}

size_t mqttb_connect_size(const mqttb_connect *c) {
  return mqttb_packet_size(connect_remaining(c));
}

size_t mqttb_encode_connect(uint8_t *out, const mqttb_connect *c) {
  size_t rem = connect_remaining(c);
  size_t total = mqttb_packet_size(rem);
  mqttb_slice name = connect_name(c);
  uint8_t *p;
  uint8_t flags = 0;

  if (total == 0) {
    return 0;
  }
  /* The flags mirror the struct exactly (so tests can build bad packets);
   * fields are written when their flag is set. */
  if (c->has_username) {
    flags |= MQTTB_CF_USERNAME;
  }
  if (c->has_password) {
    flags |= MQTTB_CF_PASSWORD;
  }
  if (c->will_retain) {
    flags |= MQTTB_CF_WILL_RETAIN;
  }
  flags = (uint8_t)(flags | ((c->will_qos & 0x3u) << MQTTB_CF_WILL_QOS_SHIFT));
  if (c->will) {
    flags |= MQTTB_CF_WILL;
  }
  if (c->clean) {
    flags |= MQTTB_CF_CLEAN;
  }

  p = mqttb_put_header(out, (uint8_t)(MQTTB_PKT_CONNECT << 4), (uint32_t)rem);
  p = mqttb_put_bin(p, &name);
  *p++ = c->level;
  *p++ = flags;
  p = mqttb_put_u16(p, c->keepalive);
  if (c->level == 5) {
    p = mqttb_put_block(p, &c->props);
  }
  p = mqttb_put_bin(p, &c->client_id);
  if (c->will) {
    if (c->level == 5) {
      p = mqttb_put_block(p, &c->will_props);
    }
    p = mqttb_put_bin(p, &c->will_topic);
    p = mqttb_put_bin(p, &c->will_payload);
  }
  if (c->has_username) {
    p = mqttb_put_bin(p, &c->username);
  }
  if (c->has_password) {
    p = mqttb_put_bin(p, &c->password);
  }
  return (size_t)(p - out);
}

int mqttb_decode_connack(const uint8_t *body, size_t len, mqttb_connack *a) {
  if (len != 2) {
    return MQTTB_CODEC_MALFORMED;
  }
  if (body[0] & 0xFEu) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.2.2-1]: reserved bits */
  }
  a->session_present = (body[0] & 0x01u) != 0;
  a->rc = body[1];
  return MQTTB_CODEC_OK;
}

/* ---- PUBLISH ---- */

static mqttb_publish_out publish_out(const mqttb_publish *p) {
  mqttb_publish_out o;
  memset(&o, 0, sizeof(o));
  o.level = p->v5 ? 5 : 4;
  o.dup = p->dup;
  o.qos = p->qos;
  o.retain = p->retain;
  o.topic = p->topic;
  o.packet_id = p->packet_id;
  o.props = p->props;
  o.payload_len = p->payload.len;
  return o;
}

size_t mqttb_publish_size(const mqttb_publish *p) {
  mqttb_publish_out o = publish_out(p);
  return mqttb_publish_out_size(&o, NULL);
}

size_t mqttb_encode_publish(uint8_t *out, const mqttb_publish *p) {
  mqttb_publish_out o = publish_out(p);
  size_t n = mqttb_encode_publish_head(out, &o);
  if (n == 0)
    return 0;
  if (p->payload.len > 0)
    memcpy(out + n, p->payload.ptr, p->payload.len);
  return n + p->payload.len;
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

/* Remaining length of a (UN)SUBSCRIBE, or SIZE_MAX if it cannot be encoded. */
static size_t filters_remaining(const mqttb_slice *filters, size_t n, bool with_opts) {
  size_t rem = 2;
  size_t i;
  for (i = 0; i < n; i++) {
    if (filters[i].len > MQTTB_STR_MAX) {
      return SIZE_MAX;
    }
    rem += 2 + filters[i].len + (with_opts ? 1u : 0u);
    if (rem > MQTTB_MAX_REMAINING_LENGTH) {
      return SIZE_MAX;
    }
  }
  return rem;
}

static size_t encode_filters(uint8_t *out, uint8_t first, uint16_t packet_id,
                             const mqttb_slice *filters, const uint8_t *opts, size_t n,
                             bool with_opts) {
  size_t rem = filters_remaining(filters, n, with_opts);
  uint8_t *p;
  size_t i;

  if (mqttb_packet_size(rem) == 0) {
    return 0;
  }
  p = mqttb_put_header(out, first, (uint32_t)rem);
  p = mqttb_put_u16(p, packet_id);
  for (i = 0; i < n; i++) {
    p = mqttb_put_bin(p, &filters[i]);
    if (with_opts) {
      *p++ = opts ? opts[i] : 0;
    }
  }
  return (size_t)(p - out);
}

size_t mqttb_subscribe_size(const mqttb_slice *filters, size_t n) {
  return mqttb_packet_size(filters_remaining(filters, n, true));
}

size_t mqttb_encode_subscribe(uint8_t *out, uint16_t packet_id, const mqttb_slice *filters,
                              const uint8_t *opts, size_t n) {
  return encode_filters(out, (uint8_t)((MQTTB_PKT_SUBSCRIBE << 4) | 0x2), packet_id, filters, opts,
                        n, true);
}

size_t mqttb_unsubscribe_size(const mqttb_slice *filters, size_t n) {
  return mqttb_packet_size(filters_remaining(filters, n, false));
}

size_t mqttb_encode_unsubscribe(uint8_t *out, uint16_t packet_id, const mqttb_slice *filters,
                                size_t n) {
  return encode_filters(out, (uint8_t)((MQTTB_PKT_UNSUBSCRIBE << 4) | 0x2), packet_id, filters,
                        NULL, n, false);
}

int mqttb_decode_suback(const uint8_t *body, size_t len, uint16_t *packet_id, mqttb_slice *codes) {
  size_t i;
  uint16_t id;
  if (len < 3) {
    return MQTTB_CODEC_MALFORMED; /* packet id and at least one code */
  }
  id = mqttb_get_u16(body);
  if (id == 0) {
    return MQTTB_CODEC_MALFORMED;
  }
  for (i = 2; i < len; i++) {
    uint8_t b = body[i];
    if (b > 2 && b != 0x80u) {
      return MQTTB_CODEC_MALFORMED; /* [MQTT-3.9.3-2] */
    }
  }
  *packet_id = id;
  codes->ptr = body + 2;
  codes->len = len - 2;
  return MQTTB_CODEC_OK;
}
