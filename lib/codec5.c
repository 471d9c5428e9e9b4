/* SPDX-License-Identifier: MIT */
/* MQTT 5 wire format: properties and the packets whose layout changed. The
 * same rules as codec.c: no allocation, every read bounds-checked. */
#include <string.h>

#include "codec.h"

enum { T_BYTE = 1, T_U16, T_U32, T_VARINT, T_STR, T_BIN, T_PAIR };

#define C(x) (1u << (x))
#define WILL C(MQTTB_PROPS_WILL)
#define PUB_ACKS                                                                                   \
  (C(MQTTB_PKT_PUBACK) | C(MQTTB_PKT_PUBREC) | C(MQTTB_PKT_PUBREL) | C(MQTTB_PKT_PUBCOMP))

typedef struct prop_def {
  uint8_t type;
  uint16_t where; /* contexts allowed: bit per packet type, bit 0 = will */
} prop_def;

static const prop_def defs[0x2B] = {
    [MQTTB_PROP_PAYLOAD_FORMAT] = {T_BYTE, C(MQTTB_PKT_PUBLISH) | WILL},
    [MQTTB_PROP_MESSAGE_EXPIRY] = {T_U32, C(MQTTB_PKT_PUBLISH) | WILL},
    [MQTTB_PROP_CONTENT_TYPE] = {T_STR, C(MQTTB_PKT_PUBLISH) | WILL},
    [MQTTB_PROP_RESPONSE_TOPIC] = {T_STR, C(MQTTB_PKT_PUBLISH) | WILL},
    [MQTTB_PROP_CORRELATION_DATA] = {T_BIN, C(MQTTB_PKT_PUBLISH) | WILL},
    [MQTTB_PROP_SUBSCRIPTION_ID] = {T_VARINT, C(MQTTB_PKT_PUBLISH) | C(MQTTB_PKT_SUBSCRIBE)},
    [MQTTB_PROP_SESSION_EXPIRY] = {T_U32, C(MQTTB_PKT_CONNECT) | C(MQTTB_PKT_CONNACK) |
                                              C(MQTTB_PKT_DISCONNECT)},
    [MQTTB_PROP_ASSIGNED_CLIENT_ID] = {T_STR, C(MQTTB_PKT_CONNACK)},
    [MQTTB_PROP_SERVER_KEEP_ALIVE] = {T_U16, C(MQTTB_PKT_CONNACK)},
    [MQTTB_PROP_AUTH_METHOD] = {T_STR,
                                C(MQTTB_PKT_CONNECT) | C(MQTTB_PKT_CONNACK) | C(MQTTB_PKT_AUTH)},
    [MQTTB_PROP_AUTH_DATA] = {T_BIN,
                              C(MQTTB_PKT_CONNECT) | C(MQTTB_PKT_CONNACK) | C(MQTTB_PKT_AUTH)},
    [MQTTB_PROP_REQUEST_PROBLEM_INFO] = {T_BYTE, C(MQTTB_PKT_CONNECT)},
    [MQTTB_PROP_WILL_DELAY] = {T_U32, WILL},
    [MQTTB_PROP_REQUEST_RESPONSE_INFO] = {T_BYTE, C(MQTTB_PKT_CONNECT)},
    [MQTTB_PROP_RESPONSE_INFO] = {T_STR, C(MQTTB_PKT_CONNACK)},
    [MQTTB_PROP_SERVER_REFERENCE] = {T_STR, C(MQTTB_PKT_CONNACK) | C(MQTTB_PKT_DISCONNECT)},
    [MQTTB_PROP_REASON_STRING] = {T_STR, C(MQTTB_PKT_CONNACK) | PUB_ACKS | C(MQTTB_PKT_SUBACK) |
                                             C(MQTTB_PKT_UNSUBACK) | C(MQTTB_PKT_DISCONNECT) |
                                             C(MQTTB_PKT_AUTH)},
    [MQTTB_PROP_RECEIVE_MAXIMUM] = {T_U16, C(MQTTB_PKT_CONNECT) | C(MQTTB_PKT_CONNACK)},
    [MQTTB_PROP_TOPIC_ALIAS_MAXIMUM] = {T_U16, C(MQTTB_PKT_CONNECT) | C(MQTTB_PKT_CONNACK)},
    [MQTTB_PROP_TOPIC_ALIAS] = {T_U16, C(MQTTB_PKT_PUBLISH)},
    [MQTTB_PROP_MAXIMUM_QOS] = {T_BYTE, C(MQTTB_PKT_CONNACK)},
    [MQTTB_PROP_RETAIN_AVAILABLE] = {T_BYTE, C(MQTTB_PKT_CONNACK)},
    [MQTTB_PROP_USER_PROPERTY] = {T_PAIR, 0xFFFFu},
    [MQTTB_PROP_MAXIMUM_PACKET_SIZE] = {T_U32, C(MQTTB_PKT_CONNECT) | C(MQTTB_PKT_CONNACK)},
    [MQTTB_PROP_WILDCARD_SUB_AVAILABLE] = {T_BYTE, C(MQTTB_PKT_CONNACK)},
    [MQTTB_PROP_SUB_ID_AVAILABLE] = {T_BYTE, C(MQTTB_PKT_CONNACK)},
    [MQTTB_PROP_SHARED_SUB_AVAILABLE] = {T_BYTE, C(MQTTB_PKT_CONNACK)},
};

/* Read a variable byte integer at buf[*pos]. */
static bool read_varint(const uint8_t *buf, size_t len, size_t *pos, uint32_t *v) {
  uint32_t value = 0;
  for (unsigned i = 0; i < 4; i++) {
    if (*pos >= len)
      return false;
    uint8_t b = buf[(*pos)++];
    value |= (uint32_t)(b & 0x7Fu) << (7 * i);
    if (!(b & 0x80u)) {
      *v = value;
      return true;
    }
  }
  return false;
}

static bool read_str(const uint8_t *buf, size_t len, size_t *pos, mqttb_slice *s) {
  if (len - *pos < 2)
    return false;
  size_t n = (size_t)buf[*pos] << 8 | buf[*pos + 1];
  if (len - *pos - 2 < n)
    return false;
  s->ptr = buf + *pos + 2;
  s->len = n;
  *pos += 2 + n;
  return true;
}

/* Parse one property at buf[*pos]; 0 or a codec error. */
static int parse_one(const uint8_t *buf, size_t len, size_t *pos, mqttb_prop *p) {
  uint32_t id;
  if (!read_varint(buf, len, pos, &id))
    return MQTTB_CODEC_MALFORMED;
  if (id >= sizeof(defs) / sizeof(defs[0]) || defs[id].type == 0)
    return MQTTB_CODEC_MALFORMED; /* unknown identifier */
  memset(p, 0, sizeof(*p));
  p->id = (uint8_t)id;
  switch (defs[id].type) {
  case T_BYTE:
    if (len - *pos < 1)
      return MQTTB_CODEC_MALFORMED;
    p->value = buf[(*pos)++];
    return MQTTB_CODEC_OK;
  case T_U16:
    if (len - *pos < 2)
      return MQTTB_CODEC_MALFORMED;
    p->value = (uint32_t)buf[*pos] << 8 | buf[*pos + 1];
    *pos += 2;
    return MQTTB_CODEC_OK;
  case T_U32:
    if (len - *pos < 4)
      return MQTTB_CODEC_MALFORMED;
    p->value = (uint32_t)buf[*pos] << 24 | (uint32_t)buf[*pos + 1] << 16 |
               (uint32_t)buf[*pos + 2] << 8 | buf[*pos + 3];
    *pos += 4;
    return MQTTB_CODEC_OK;
  case T_VARINT:
    return read_varint(buf, len, pos, &p->value) ? MQTTB_CODEC_OK : MQTTB_CODEC_MALFORMED;
  case T_STR:
  case T_BIN:
    return read_str(buf, len, pos, &p->a) ? MQTTB_CODEC_OK : MQTTB_CODEC_MALFORMED;
  default: /* T_PAIR */
    return read_str(buf, len, pos, &p->a) && read_str(buf, len, pos, &p->b) ? MQTTB_CODEC_OK
                                                                            : MQTTB_CODEC_MALFORMED;
  }
}

static int check(const mqttb_prop *p, uint8_t context, uint64_t *seen) {
  if (!(defs[p->id].where & C(context)))
    return MQTTB_CODEC_MALFORMED; /* not valid in this packet */
  bool repeatable = p->id == MQTTB_PROP_USER_PROPERTY ||
                    (p->id == MQTTB_PROP_SUBSCRIPTION_ID && context == MQTTB_PKT_PUBLISH);
  if (!repeatable && (*seen & (1ull << p->id)))
    return MQTTB_CODEC_PROTOCOL; /* a property that may appear once */
  *seen |= 1ull << p->id;
  if (defs[p->id].type == T_STR && !mqttb_utf8_valid(p->a.ptr, p->a.len))
    return MQTTB_CODEC_BAD_UTF8;
  if (defs[p->id].type == T_PAIR &&
      (!mqttb_utf8_valid(p->a.ptr, p->a.len) || !mqttb_utf8_valid(p->b.ptr, p->b.len)))
    return MQTTB_CODEC_BAD_UTF8;
  switch (p->id) {
  case MQTTB_PROP_PAYLOAD_FORMAT:
  case MQTTB_PROP_REQUEST_PROBLEM_INFO:
  case MQTTB_PROP_REQUEST_RESPONSE_INFO:
  case MQTTB_PROP_MAXIMUM_QOS:
  case MQTTB_PROP_RETAIN_AVAILABLE:
  case MQTTB_PROP_WILDCARD_SUB_AVAILABLE:
  case MQTTB_PROP_SUB_ID_AVAILABLE:
  case MQTTB_PROP_SHARED_SUB_AVAILABLE:
    return p->value <= 1 ? MQTTB_CODEC_OK : MQTTB_CODEC_PROTOCOL;
  case MQTTB_PROP_RECEIVE_MAXIMUM:
  case MQTTB_PROP_MAXIMUM_PACKET_SIZE:
  case MQTTB_PROP_SUBSCRIPTION_ID:
  case MQTTB_PROP_TOPIC_ALIAS:
    return p->value != 0 ? MQTTB_CODEC_OK : MQTTB_CODEC_PROTOCOL;
  default:
    return MQTTB_CODEC_OK;
  }
}

int mqttb_props_read(const uint8_t *body, size_t len, size_t *pos, uint8_t context,
                     mqttb_slice *props) {
  uint32_t n;
  if (!read_varint(body, len, pos, &n) || len - *pos < n)
    return MQTTB_CODEC_MALFORMED;
  props->ptr = body + *pos;
  props->len = n;
  *pos += n;
  uint64_t seen = 0;
  size_t p = 0;
  while (p < props->len) {
    mqttb_prop prop;
    int rc = parse_one(props->ptr, props->len, &p, &prop);
    if (rc == MQTTB_CODEC_OK)
      rc = check(&prop, context, &seen);
    if (rc != MQTTB_CODEC_OK)
      return rc;
  }
  return MQTTB_CODEC_OK;
}

bool mqttb_props_next(const mqttb_slice *props, size_t *pos, mqttb_prop *p) {
  if (*pos >= props->len)
    return false;
  return parse_one(props->ptr, props->len, pos, p) == MQTTB_CODEC_OK;
}

bool mqttb_props_find(const mqttb_slice *props, uint8_t id, mqttb_prop *p) {
  size_t pos = 0;
  while (mqttb_props_next(props, &pos, p))
    if (p->id == id)
      return true;
  return false;
}

size_t mqttb_prop_put_byte(uint8_t *out, uint8_t id, uint8_t v) {
  if (out) {
    out[0] = id;
    out[1] = v;
  }
  return 2;
}

size_t mqttb_prop_put_u16(uint8_t *out, uint8_t id, uint16_t v) {
  if (out) {
    out[0] = id;
    out[1] = (uint8_t)(v >> 8);
    out[2] = (uint8_t)v;
  }
  return 3;
}

size_t mqttb_prop_put_u32(uint8_t *out, uint8_t id, uint32_t v) {
  if (out) {
    out[0] = id;
    out[1] = (uint8_t)(v >> 24);
    out[2] = (uint8_t)(v >> 16);
    out[3] = (uint8_t)(v >> 8);
    out[4] = (uint8_t)v;
  }
  return 5;
}

size_t mqttb_prop_put_varint(uint8_t *out, uint8_t id, uint32_t v) {
  if (out) {
    out[0] = id;
    return 1 + mqttb_codec_varint_encode(out + 1, v);
  }
  return 1 + mqttb_codec_varint_size(v);
}

size_t mqttb_prop_put_str(uint8_t *out, uint8_t id, const uint8_t *s, size_t len) {
  if (len > 65535)
    len = 65535;
  if (out) {
    out[0] = id;
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    if (len)
      memcpy(out + 3, s, len);
  }
  return 3 + len;
}

/* ---- packets ---- */

int mqttb_decode_ack5(uint8_t type, const uint8_t *body, size_t len, uint16_t *packet_id,
                      uint8_t *reason, mqttb_slice *props) {
  *reason = 0;
  props->ptr = NULL;
  props->len = 0;
  if (len < 2)
    return MQTTB_CODEC_MALFORMED;
  uint16_t id = (uint16_t)(body[0] << 8 | body[1]);
  if (id == 0)
    return MQTTB_CODEC_MALFORMED;
  *packet_id = id;
  if (len == 2)
    return MQTTB_CODEC_OK; /* reason 0, no properties [MQTT-3.4.2.1] */
  *reason = body[2];
  size_t pos = 3;
  if (len == 3)
    return MQTTB_CODEC_OK;
  int rc = mqttb_props_read(body, len, &pos, type, props);
  if (rc != MQTTB_CODEC_OK)
    return rc;
  return pos == len ? MQTTB_CODEC_OK : MQTTB_CODEC_MALFORMED;
}

size_t mqttb_encode_ack5(uint8_t *out, uint8_t type, uint16_t packet_id, uint8_t reason) {
  out[0] = (uint8_t)(type << 4 | (type == MQTTB_PKT_PUBREL ? 2 : 0));
  out[1] = reason ? 3 : 2;
  out[2] = (uint8_t)(packet_id >> 8);
  out[3] = (uint8_t)packet_id;
  if (reason) {
    out[4] = reason;
    return 5;
  }
  return 4;
}

static size_t whole(size_t remaining) {
  if (remaining > MQTTB_MAX_REMAINING_LENGTH)
    return 0;
  return 1 + mqttb_codec_varint_size((uint32_t)remaining) + remaining;
}

size_t mqttb_ack_codes5_size(size_t n) {
  return whole(2 + 1 + n);
}

size_t mqttb_encode_ack_codes5(uint8_t *out, uint8_t type, uint16_t packet_id, const uint8_t *codes,
                               size_t n) {
  size_t total = mqttb_ack_codes5_size(n);
  if (total == 0)
    return 0;
  uint8_t *p = out;
  *p++ = (uint8_t)(type << 4);
  p += mqttb_codec_varint_encode(p, (uint32_t)(3 + n));
  *p++ = (uint8_t)(packet_id >> 8);
  *p++ = (uint8_t)packet_id;
  *p++ = 0; /* no properties */
  if (n)
    memcpy(p, codes, n);
  return total;
}

size_t mqttb_connack5_size(size_t props_len) {
  return whole(2 + mqttb_codec_varint_size((uint32_t)props_len) + props_len);
}

size_t mqttb_encode_connack5(uint8_t *out, bool session_present, uint8_t reason,
                             const uint8_t *props, size_t props_len) {
  size_t total = mqttb_connack5_size(props_len);
  uint8_t *p = out;
  *p++ = (uint8_t)(MQTTB_PKT_CONNACK << 4);
  p += mqttb_codec_varint_encode(
      p, (uint32_t)(2 + mqttb_codec_varint_size((uint32_t)props_len) + props_len));
  *p++ = session_present ? 1 : 0;
  *p++ = reason;
  p += mqttb_codec_varint_encode(p, (uint32_t)props_len);
  if (props_len)
    memcpy(p, props, props_len);
  return total;
}

int mqttb_decode_reason_props(uint8_t type, const uint8_t *body, size_t len, uint8_t *reason,
                              mqttb_slice *props) {
  *reason = 0;
  props->ptr = NULL;
  props->len = 0;
  if (len == 0)
    return MQTTB_CODEC_OK;
  *reason = body[0];
  if (len == 1)
    return MQTTB_CODEC_OK;
  size_t pos = 1;
  int rc = mqttb_props_read(body, len, &pos, type, props);
  if (rc != MQTTB_CODEC_OK)
    return rc;
  return pos == len ? MQTTB_CODEC_OK : MQTTB_CODEC_MALFORMED;
}

size_t mqttb_reason_props_size(size_t props_len) {
  return whole(1 + mqttb_codec_varint_size((uint32_t)props_len) + props_len);
}

size_t mqttb_encode_reason_props(uint8_t *out, uint8_t type, uint8_t reason, const uint8_t *props,
                                 size_t props_len) {
  size_t total = mqttb_reason_props_size(props_len);
  uint8_t *p = out;
  *p++ = (uint8_t)(type << 4);
  p += mqttb_codec_varint_encode(
      p, (uint32_t)(1 + mqttb_codec_varint_size((uint32_t)props_len) + props_len));
  *p++ = reason;
  p += mqttb_codec_varint_encode(p, (uint32_t)props_len);
  if (props_len)
    memcpy(p, props, props_len);
  return total;
}
