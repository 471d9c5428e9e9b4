/* SPDX-License-Identifier: MIT */
/* MQTT 5 properties. See props.h. No allocation; every read is
 * bounds-checked. */
#include "props.h"

#include <string.h>

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

/* Parse one property at buf[*pos]; 0 or a codec error. */
static int parse_one(const uint8_t *buf, size_t len, size_t *pos, mqttb_prop *p) {
  uint32_t id;
  if (!mqttb_read_varint(buf, len, pos, &id))
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
    return mqttb_read_varint(buf, len, pos, &p->value) ? MQTTB_CODEC_OK : MQTTB_CODEC_MALFORMED;
  case T_STR:
  case T_BIN:
    return mqttb_read_bin(buf, len, pos, &p->a) ? MQTTB_CODEC_OK : MQTTB_CODEC_MALFORMED;
  default: /* T_PAIR */
    return mqttb_read_bin(buf, len, pos, &p->a) && mqttb_read_bin(buf, len, pos, &p->b)
               ? MQTTB_CODEC_OK
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
  case MQTTB_PROP_RESPONSE_TOPIC:
    /* A topic name: not empty, no wildcards [MQTT-3.3.2-14]. */
    return mqttb_topic_name_valid(p->a.ptr, p->a.len) ? MQTTB_CODEC_OK : MQTTB_CODEC_PROTOCOL;
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
  if (!mqttb_read_varint(body, len, pos, &n) || len - *pos < n)
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

/* A UTF-8 string or binary data: two-byte length, then the bytes. */
static size_t put_lstr(uint8_t *out, const uint8_t *s, size_t len) {
  if (len > 65535)
    len = 65535;
  if (out) {
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
    if (len)
      memcpy(out + 2, s, len);
  }
  return 2 + len;
}

size_t mqttb_prop_put_pair(uint8_t *out, uint8_t id, const uint8_t *a, size_t alen,
                           const uint8_t *b, size_t blen) {
  if (out)
    out[0] = id;
  size_t n = 1 + put_lstr(out ? out + 1 : NULL, a, alen);
  return n + put_lstr(out ? out + n : NULL, b, blen);
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

/* ---- typed views ---- */

void mqttb_connect_props_view(const mqttb_slice *props, mqttb_connect_props *cp) {
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

static bool forwarded(uint8_t id) {
  return id != MQTTB_PROP_MESSAGE_EXPIRY && id != MQTTB_PROP_TOPIC_ALIAS &&
         id != MQTTB_PROP_SUBSCRIPTION_ID && id != MQTTB_PROP_WILL_DELAY;
}

void mqttb_pub_props_view(const mqttb_slice *props, mqttb_pub_props *pp) {
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

void mqttb_pub_props_copy_forwarded(const mqttb_slice *props, uint8_t *out) {
  size_t pos = 0, start = 0;
  mqttb_prop p;
  while (mqttb_props_next(props, &pos, &p)) {
    if (forwarded(p.id)) {
      memmove(out, props->ptr + start, pos - start); /* out may be props->ptr */
      out += pos - start;
    }
    start = pos;
  }
}
