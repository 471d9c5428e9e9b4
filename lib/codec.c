/* SPDX-License-Identifier: MIT */
/*
 * MQTT wire codec (3.1 / 3.1.1). See codec.h for the contract.
 *
 * Rules of this file: no allocation, no mutable globals, every read is
 * bounds-checked against the length the caller gave (the decoders are
 * fuzzed). Encoders trust the caller's buffer to be at least the size the
 * matching *_size function returned; when a packet cannot be expressed
 * (a string longer than 65535 bytes, a remaining length above
 * MQTTB_MAX_REMAINING_LENGTH, an unsupported type) the *_size function and
 * the encoder return 0 and nothing is written.
 */
#include "codec.h"

#include <string.h>

#define STR_MAX 65535u

/* ---- small helpers ---- */

static uint16_t get_u16(const uint8_t *p) {
  return (uint16_t)(((unsigned)p[0] << 8) | (unsigned)p[1]);
}

static uint8_t *put_u16(uint8_t *out, uint16_t v) {
  out[0] = (uint8_t)(v >> 8);
  out[1] = (uint8_t)(v & 0xFFu);
  return out + 2;
}

/* 2-byte length prefixed run of bytes; the caller checked len <= 65535. */
static uint8_t *put_bin(uint8_t *out, const mqttb_slice *s) {
  out = put_u16(out, (uint16_t)s->len);
  if (s->len > 0) {
    memcpy(out, s->ptr, s->len);
  }
  return out + s->len;
}

/* A property block: variable byte length, then the bytes. */
static uint8_t *put_props(uint8_t *out, const mqttb_slice *props) {
  out += mqttb_codec_varint_encode(out, (uint32_t)props->len);
  if (props->len > 0) {
    memcpy(out, props->ptr, props->len);
  }
  return out + props->len;
}

static uint8_t *put_header(uint8_t *out, uint8_t first, uint32_t remaining) {
  *out++ = first;
  return out + mqttb_codec_varint_encode(out, remaining);
}

/* Read a big-endian u16 at body[*pos]. */
static bool read_u16(const uint8_t *body, size_t len, size_t *pos, uint16_t *v) {
  if (len - *pos < 2) {
    return false;
  }
  *v = get_u16(body + *pos);
  *pos += 2;
  return true;
}

/* Read a 2-byte length prefixed run of bytes at body[*pos]. */
static bool read_bin(const uint8_t *body, size_t len, size_t *pos, mqttb_slice *s) {
  uint16_t n;
  if (!read_u16(body, len, pos, &n)) {
    return false;
  }
  if (len - *pos < n) {
    return false;
  }
  s->ptr = body + *pos;
  s->len = n;
  *pos += n;
  return true;
}

/* Whole packet size for a remaining length, 0 if it cannot be expressed. */
static size_t packet_size(size_t remaining) {
  if (remaining > MQTTB_MAX_REMAINING_LENGTH) {
    return 0;
  }
  return 1 + mqttb_codec_varint_size((uint32_t)remaining) + remaining;
}

/* ---- fixed header ---- */

int mqttb_codec_frame(const uint8_t *buf, size_t len, uint32_t max_packet, mqttb_frame *f) {
  uint32_t value = 0;
  uint32_t hdr_len = 0;
  size_t i;

  for (i = 1; i <= 4; i++) {
    uint8_t b;
    if (i >= len) {
      return MQTTB_CODEC_INCOMPLETE;
    }
    b = buf[i];
    value |= (uint32_t)(b & 0x7Fu) << (7u * (unsigned)(i - 1));
    if ((b & 0x80u) == 0) {
      hdr_len = (uint32_t)(i + 1);
      break;
    }
  }
  if (hdr_len == 0) {
    return MQTTB_CODEC_MALFORMED; /* continuation bit on the 4th byte */
  }

  f->type = (uint8_t)(buf[0] >> 4);
  f->flags = (uint8_t)(buf[0] & 0x0Fu);
  f->remaining = value;
  f->hdr_len = hdr_len;
  if ((uint64_t)hdr_len + (uint64_t)value > (uint64_t)max_packet) {
    return MQTTB_CODEC_TOO_LARGE;
  }
  return MQTTB_CODEC_OK;
}

int mqttb_codec_check_flags(uint8_t type, uint8_t flags) {
  if (type == 0 || type > 15) {
    return MQTTB_CODEC_MALFORMED;
  }
  if (flags > 0x0Fu) {
    return MQTTB_CODEC_BAD_FLAGS;
  }
  switch (type) {
  case MQTTB_PKT_PUBLISH:
    if (((flags >> 1) & 0x3u) == 3u) {
      return MQTTB_CODEC_MALFORMED; /* [MQTT-3.3.1-4] */
    }
    return MQTTB_CODEC_OK;
  case MQTTB_PKT_PUBREL:
  case MQTTB_PKT_SUBSCRIBE:
  case MQTTB_PKT_UNSUBSCRIBE:
    return flags == 0x2u ? MQTTB_CODEC_OK : MQTTB_CODEC_BAD_FLAGS;
  default:
    return flags == 0 ? MQTTB_CODEC_OK : MQTTB_CODEC_BAD_FLAGS;
  }
}

/* ---- variable byte integer ---- */

size_t mqttb_codec_varint_size(uint32_t value) {
  if (value < 128u) {
    return 1;
  }
  if (value < 16384u) {
    return 2;
  }
  if (value < 2097152u) {
    return 3;
  }
  if (value <= MQTTB_MAX_REMAINING_LENGTH) {
    return 4;
  }
  return 0;
}

size_t mqttb_codec_varint_encode(uint8_t *out, uint32_t value) {
  size_t n = 0;
  if (value > MQTTB_MAX_REMAINING_LENGTH) {
    return 0;
  }
  do {
    uint8_t b = (uint8_t)(value & 0x7Fu);
    value >>= 7;
    if (value > 0) {
      b = (uint8_t)(b | 0x80u);
    }
    out[n++] = b;
  } while (value > 0);
  return n;
}

/* ---- strings and topics ---- */

bool mqttb_utf8_valid(const uint8_t *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t b = s[i];
    uint32_t cp;
    uint32_t min;
    size_t n;
    size_t k;

    if (b < 0x80u) {
      if (b == 0) {
        return false; /* [MQTT-1.5.3-2] */
      }
      i++;
      continue;
    }
    if ((b & 0xE0u) == 0xC0u) {
      n = 1;
      cp = b & 0x1Fu;
      min = 0x80u;
    } else if ((b & 0xF0u) == 0xE0u) {
      n = 2;
      cp = b & 0x0Fu;
      min = 0x800u;
    } else if ((b & 0xF8u) == 0xF0u) {
      n = 3;
      cp = b & 0x07u;
      min = 0x10000u;
    } else {
      return false; /* stray continuation byte or 0xF8..0xFF */
    }
    if (len - i - 1 < n) {
      return false; /* truncated sequence */
    }
    for (k = 1; k <= n; k++) {
      uint8_t c = s[i + k];
      if ((c & 0xC0u) != 0x80u) {
        return false;
      }
      cp = (cp << 6) | (uint32_t)(c & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) {
      return false; /* overlong, out of range, surrogate [MQTT-1.5.3-1] */
    }
    i += n + 1;
  }
  return true;
}

bool mqttb_topic_name_valid(const uint8_t *s, size_t len) {
  size_t i;
  if (len == 0 || len > STR_MAX) {
    return false; /* [MQTT-4.7.3-1] */
  }
  if (!mqttb_utf8_valid(s, len)) {
    return false;
  }
  for (i = 0; i < len; i++) {
    if (s[i] == '+' || s[i] == '#') {
      return false; /* [MQTT-3.3.2-2] */
    }
  }
  return true;
}

bool mqttb_topic_filter_valid(const uint8_t *s, size_t len) {
  size_t i;
  if (len == 0 || len > STR_MAX) {
    return false; /* [MQTT-4.7.3-1] */
  }
  if (!mqttb_utf8_valid(s, len)) {
    return false;
  }
  for (i = 0; i < len; i++) {
    if (s[i] == '+') {
      /* [MQTT-4.7.1-3] '+' occupies an entire level */
      if (i > 0 && s[i - 1] != '/') {
        return false;
      }
      if (i + 1 < len && s[i + 1] != '/') {
        return false;
      }
    } else if (s[i] == '#') {
      /* [MQTT-4.7.1-2] '#' alone in the last level */
      if (i + 1 != len) {
        return false;
      }
      if (i > 0 && s[i - 1] != '/') {
        return false;
      }
    }
  }
  return true;
}

/* Decode-side string check: UTF-8 problems are BAD_UTF8. */
static int check_utf8(const mqttb_slice *s) {
  return mqttb_utf8_valid(s->ptr, s->len) ? MQTTB_CODEC_OK : MQTTB_CODEC_BAD_UTF8;
}

/* ---- CONNECT ---- */

#define CF_USERNAME 0x80u
#define CF_PASSWORD 0x40u
#define CF_WILL_RETAIN 0x20u
#define CF_WILL_QOS_SHIFT 3u
#define CF_WILL 0x04u
#define CF_CLEAN 0x02u
#define CF_RESERVED 0x01u

static const uint8_t name_mqtt[4] = {'M', 'Q', 'T', 'T'};
static const uint8_t name_mqisdp[6] = {'M', 'Q', 'I', 's', 'd', 'p'};

int mqttb_decode_connect(const uint8_t *body, size_t len, mqttb_connect *c) {
  size_t pos = 0;
  uint8_t flags;
  int rc;

  memset(c, 0, sizeof(*c));

  /* Variable header: protocol name, level, flags, keep alive. */
  if (!read_bin(body, len, &pos, &c->protocol_name)) {
    return MQTTB_CODEC_MALFORMED;
  }
  if (len - pos < 1) {
    return MQTTB_CODEC_MALFORMED;
  }
  c->level = body[pos++];
  if (c->protocol_name.len == sizeof(name_mqtt) &&
      memcmp(c->protocol_name.ptr, name_mqtt, sizeof(name_mqtt)) == 0) {
    if (c->level != 4 && c->level != 5) {
      return MQTTB_CODEC_BAD_PROTOCOL; /* [MQTT-3.1.2-2] */
    }
  } else if (c->protocol_name.len == sizeof(name_mqisdp) &&
             memcmp(c->protocol_name.ptr, name_mqisdp, sizeof(name_mqisdp)) == 0) {
    if (c->level != 3) {
      return MQTTB_CODEC_BAD_PROTOCOL;
    }
  } else {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.1.2-1] */
  }

  if (len - pos < 1) {
    return MQTTB_CODEC_MALFORMED;
  }
  flags = body[pos++];
  if (flags & CF_RESERVED) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.1.2-3] */
  }
  c->clean = (flags & CF_CLEAN) != 0;
  c->will = (flags & CF_WILL) != 0;
  c->will_qos = (uint8_t)((flags >> CF_WILL_QOS_SHIFT) & 0x3u);
  c->will_retain = (flags & CF_WILL_RETAIN) != 0;
  c->has_username = (flags & CF_USERNAME) != 0;
  c->has_password = (flags & CF_PASSWORD) != 0;
  if (c->will_qos == 3) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.1.2-14] */
  }
  if (!c->will && (c->will_qos != 0 || c->will_retain)) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15] */
  }
  if (c->has_password && !c->has_username) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.1.2-22] */
  }
  if (!read_u16(body, len, &pos, &c->keepalive)) {
    return MQTTB_CODEC_MALFORMED;
  }
  if (c->level == 5 &&
      (rc = mqttb_props_read(body, len, &pos, MQTTB_PKT_CONNECT, &c->props)) != MQTTB_CODEC_OK) {
    return rc;
  }

  /* Payload: client id, will topic, will message, user name, password. */
  if (!read_bin(body, len, &pos, &c->client_id)) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.1.3-3] */
  }
  if ((rc = check_utf8(&c->client_id)) != MQTTB_CODEC_OK) {
    return rc; /* [MQTT-3.1.3-4] */
  }
  if (c->will) {
    if (c->level == 5 && (rc = mqttb_props_read(body, len, &pos, MQTTB_PROPS_WILL,
                                                &c->will_props)) != MQTTB_CODEC_OK) {
      return rc;
    }
    if (!read_bin(body, len, &pos, &c->will_topic)) {
      return MQTTB_CODEC_MALFORMED;
    }
    if ((rc = check_utf8(&c->will_topic)) != MQTTB_CODEC_OK) {
      return rc;
    }
    if (!mqttb_topic_name_valid(c->will_topic.ptr, c->will_topic.len)) {
      return MQTTB_CODEC_MALFORMED;
    }
    if (!read_bin(body, len, &pos, &c->will_payload)) {
      return MQTTB_CODEC_MALFORMED;
    }
  }
  if (c->has_username) {
    if (!read_bin(body, len, &pos, &c->username)) {
      return MQTTB_CODEC_MALFORMED;
    }
    if ((rc = check_utf8(&c->username)) != MQTTB_CODEC_OK) {
      return rc; /* [MQTT-3.1.3-11] */
    }
  }
  if (c->has_password) {
    if (!read_bin(body, len, &pos, &c->password)) {
      return MQTTB_CODEC_MALFORMED;
    }
  }
  if (pos != len) {
    return MQTTB_CODEC_MALFORMED; /* trailing bytes */
  }
  return MQTTB_CODEC_OK;
}

/* The protocol name to write: the caller's, or the one the level implies. */
static mqttb_slice connect_name(const mqttb_connect *c) {
  mqttb_slice s = c->protocol_name;
  if (s.len == 0) {
    if (c->level == 3) {
      s.ptr = name_mqisdp;
      s.len = sizeof(name_mqisdp);
    } else {
      s.ptr = name_mqtt;
      s.len = sizeof(name_mqtt);
    }
  }
  return s;
}

/* Remaining length of the CONNECT, or SIZE_MAX if it cannot be encoded. */
static size_t connect_remaining(const mqttb_connect *c) {
  mqttb_slice name = connect_name(c);
  size_t rem;

  if (name.len > STR_MAX || c->client_id.len > STR_MAX) {
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
    if (c->will_topic.len > STR_MAX || c->will_payload.len > STR_MAX) {
      return SIZE_MAX;
    }
    rem += 2 + c->will_topic.len + 2 + c->will_payload.len;
  }
  if (c->has_username) {
    if (c->username.len > STR_MAX) {
      return SIZE_MAX;
    }
    rem += 2 + c->username.len;
  }
  if (c->has_password) {
    if (c->password.len > STR_MAX) {
      return SIZE_MAX;
    }
    rem += 2 + c->password.len;
  }
  return rem;
}

size_t mqttb_connect_size(const mqttb_connect *c) {
  return packet_size(connect_remaining(c));
}

size_t mqttb_encode_connect(uint8_t *out, const mqttb_connect *c) {
  size_t rem = connect_remaining(c);
  size_t total = packet_size(rem);
  mqttb_slice name = connect_name(c);
  uint8_t *p;
  uint8_t flags = 0;

  if (total == 0) {
    return 0;
  }
  /* The flags mirror the struct exactly (so tests can build bad packets);
   * fields are written when their flag is set. */
  if (c->has_username) {
    flags |= CF_USERNAME;
  }
  if (c->has_password) {
    flags |= CF_PASSWORD;
  }
  if (c->will_retain) {
    flags |= CF_WILL_RETAIN;
  }
  flags = (uint8_t)(flags | ((c->will_qos & 0x3u) << CF_WILL_QOS_SHIFT));
  if (c->will) {
    flags |= CF_WILL;
  }
  if (c->clean) {
    flags |= CF_CLEAN;
  }

  p = put_header(out, (uint8_t)(MQTTB_PKT_CONNECT << 4), (uint32_t)rem);
  p = put_bin(p, &name);
  *p++ = c->level;
  *p++ = flags;
  p = put_u16(p, c->keepalive);
  if (c->level == 5) {
    p = put_props(p, &c->props);
  }
  p = put_bin(p, &c->client_id);
  if (c->will) {
    if (c->level == 5) {
      p = put_props(p, &c->will_props);
    }
    p = put_bin(p, &c->will_topic);
    p = put_bin(p, &c->will_payload);
  }
  if (c->has_username) {
    p = put_bin(p, &c->username);
  }
  if (c->has_password) {
    p = put_bin(p, &c->password);
  }
  return (size_t)(p - out);
}

/* ---- CONNACK ---- */

size_t mqttb_encode_connack(uint8_t *out, const mqttb_connack *a) {
  out[0] = (uint8_t)(MQTTB_PKT_CONNACK << 4);
  out[1] = 2;
  out[2] = a->session_present ? 1 : 0;
  out[3] = a->rc;
  return MQTTB_CONNACK_SIZE;
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

int mqttb_decode_publish(uint8_t flags, const uint8_t *body, size_t len, mqttb_publish *p) {
  return mqttb_decode_publish_v(flags, body, len, 4, p);
}

int mqttb_decode_publish_v(uint8_t flags, const uint8_t *body, size_t len, uint8_t level,
                           mqttb_publish *p) {
  size_t pos = 0;
  int rc;

  memset(p, 0, sizeof(*p));
  if (flags > 0x0Fu) {
    return MQTTB_CODEC_MALFORMED;
  }
  p->dup = (flags & 0x08u) != 0;
  p->qos = (uint8_t)((flags >> 1) & 0x3u);
  p->retain = (flags & 0x01u) != 0;
  if (p->qos == 3) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.3.1-4] */
  }
  if (p->qos == 0 && p->dup) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.3.1-2] */
  }
  if (!read_bin(body, len, &pos, &p->topic)) {
    return MQTTB_CODEC_MALFORMED;
  }
  if ((rc = check_utf8(&p->topic)) != MQTTB_CODEC_OK) {
    return rc;
  }
  /* MQTT 5 allows an empty topic when a topic alias stands for it. */
  if (!mqttb_topic_name_valid(p->topic.ptr, p->topic.len) && !(level == 5 && p->topic.len == 0)) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.3.2-1], [MQTT-3.3.2-2], [MQTT-4.7.3-1] */
  }
  if (p->qos > 0) {
    if (!read_u16(body, len, &pos, &p->packet_id)) {
      return MQTTB_CODEC_MALFORMED;
    }
    if (p->packet_id == 0) {
      return MQTTB_CODEC_MALFORMED; /* [MQTT-2.3.1-1] */
    }
  }
  if (level == 5) {
    p->v5 = true;
    if ((rc = mqttb_props_read(body, len, &pos, MQTTB_PKT_PUBLISH, &p->props)) != MQTTB_CODEC_OK) {
      return rc;
    }
  }
  p->payload.ptr = body + pos;
  p->payload.len = len - pos;
  return MQTTB_CODEC_OK;
}

static size_t publish_remaining(const mqttb_publish *p) {
  size_t rem;
  if (p->topic.len > STR_MAX || p->payload.len > MQTTB_MAX_REMAINING_LENGTH) {
    return SIZE_MAX;
  }
  rem = 2 + p->topic.len + p->payload.len;
  if (p->qos > 0) {
    rem += 2;
  }
  if (p->v5) {
    rem += mqttb_codec_varint_size((uint32_t)p->props.len) + p->props.len;
  }
  return rem;
}

size_t mqttb_publish_size(const mqttb_publish *p) {
  return packet_size(publish_remaining(p));
}

size_t mqttb_encode_publish(uint8_t *out, const mqttb_publish *p) {
  size_t rem = publish_remaining(p);
  uint8_t first = (uint8_t)(MQTTB_PKT_PUBLISH << 4);
  uint8_t *q;

  if (packet_size(rem) == 0) {
    return 0;
  }
  if (p->dup) {
    first |= 0x08u;
  }
  first = (uint8_t)(first | ((p->qos & 0x3u) << 1));
  if (p->retain) {
    first |= 0x01u;
  }
  q = put_header(out, first, (uint32_t)rem);
  q = put_bin(q, &p->topic);
  if (p->qos > 0) {
    q = put_u16(q, p->packet_id);
  }
  if (p->v5) {
    q = put_props(q, &p->props);
  }
  if (p->payload.len > 0) {
    memcpy(q, p->payload.ptr, p->payload.len);
    q += p->payload.len;
  }
  return (size_t)(q - out);
}

/* ---- acks with a packet id only ---- */

size_t mqttb_encode_ack(uint8_t *out, uint8_t type, uint16_t packet_id) {
  uint8_t flags;
  switch (type) {
  case MQTTB_PKT_PUBACK:
  case MQTTB_PKT_PUBREC:
  case MQTTB_PKT_PUBCOMP:
  case MQTTB_PKT_UNSUBACK:
    flags = 0;
    break;
  case MQTTB_PKT_PUBREL:
    flags = 0x2u; /* [MQTT-3.6.1-1] */
    break;
  default:
    return 0;
  }
  out[0] = (uint8_t)((type << 4) | flags);
  out[1] = 2;
  put_u16(out + 2, packet_id);
  return MQTTB_ACK_SIZE;
}

int mqttb_decode_ack(const uint8_t *body, size_t len, uint16_t *packet_id) {
  uint16_t id;
  if (len != 2) {
    return MQTTB_CODEC_MALFORMED;
  }
  id = get_u16(body);
  if (id == 0) {
    return MQTTB_CODEC_MALFORMED;
  }
  *packet_id = id;
  return MQTTB_CODEC_OK;
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

/* Shared body walk: packet id, then filters each followed by an options
 * byte when with_opts. */
static int decode_filters(const uint8_t *body, size_t len, bool with_opts, uint8_t level,
                          uint16_t *packet_id, mqttb_slice *entries, size_t *count,
                          mqttb_slice *props) {
  size_t pos = 0;
  size_t n = 0;

  *packet_id = 0;
  entries->ptr = NULL;
  entries->len = 0;
  *count = 0;
  if (!read_u16(body, len, &pos, packet_id)) {
    return MQTTB_CODEC_MALFORMED;
  }
  if (*packet_id == 0) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-2.3.1-1] */
  }
  if (level == 5) {
    int prc = mqttb_props_read(body, len, &pos,
                               with_opts ? MQTTB_PKT_SUBSCRIBE : MQTTB_PKT_UNSUBSCRIBE, props);
    if (prc != MQTTB_CODEC_OK) {
      return prc;
    }
  }
  entries->ptr = body + pos;
  entries->len = len - pos;
  while (pos < len) {
    mqttb_slice filter;
    int rc;
    if (!read_bin(body, len, &pos, &filter)) {
      return MQTTB_CODEC_MALFORMED;
    }
    if ((rc = check_utf8(&filter)) != MQTTB_CODEC_OK) {
      return rc;
    }
    if (!mqttb_topic_filter_valid(filter.ptr, filter.len)) {
      return MQTTB_CODEC_MALFORMED;
    }
    if (with_opts) {
      uint8_t opts;
      if (len - pos < 1) {
        return MQTTB_CODEC_MALFORMED;
      }
      opts = body[pos++];
      if (level == 5) {
        /* Reserved bits 6-7, QoS 3, Retain Handling 3 [MQTT-3.8.3-5]. */
        if ((opts & 0xC0u) != 0 || (opts & 0x3u) == 3u || (opts & 0x30u) == 0x30u) {
          return MQTTB_CODEC_MALFORMED;
        }
      } else if ((opts & 0xFCu) != 0 || (opts & 0x3u) == 3u) {
        return MQTTB_CODEC_MALFORMED; /* [MQTT-3.8.3-4] */
      }
    }
    n++;
  }
  if (n == 0) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.8.3-3], [MQTT-3.10.3-2] */
  }
  *count = n;
  return MQTTB_CODEC_OK;
}

int mqttb_decode_subscribe(const uint8_t *body, size_t len, mqttb_subscribe *s) {
  return decode_filters(body, len, true, 4, &s->packet_id, &s->entries, &s->count, NULL);
}

int mqttb_decode_unsubscribe(const uint8_t *body, size_t len, mqttb_unsubscribe *u) {
  return decode_filters(body, len, false, 4, &u->packet_id, &u->entries, &u->count, NULL);
}

int mqttb_decode_subscribe_v(const uint8_t *body, size_t len, uint8_t level, mqttb_subscribe *s,
                             mqttb_slice *props) {
  props->ptr = NULL;
  props->len = 0;
  return decode_filters(body, len, true, level, &s->packet_id, &s->entries, &s->count, props);
}

int mqttb_decode_unsubscribe_v(const uint8_t *body, size_t len, uint8_t level, mqttb_unsubscribe *u,
                               mqttb_slice *props) {
  props->ptr = NULL;
  props->len = 0;
  return decode_filters(body, len, false, level, &u->packet_id, &u->entries, &u->count, props);
}

/* Shared iterator step; bounds-checked even on unvalidated input. */
static bool next_filter(const mqttb_slice *entries, size_t *pos, bool with_opts,
                        mqttb_slice *filter, uint8_t *opts) {
  size_t p = *pos;
  mqttb_slice f;
  uint8_t o = 0;

  if (p >= entries->len) {
    return false;
  }
  if (!read_bin(entries->ptr, entries->len, &p, &f)) {
    return false;
  }
  if (with_opts) {
    if (p >= entries->len) {
      return false;
    }
    o = entries->ptr[p++];
  }
  *pos = p;
  if (filter) {
    *filter = f;
  }
  if (opts) {
    *opts = o;
  }
  return true;
}

bool mqttb_subscribe_next(const mqttb_slice *entries, size_t *pos, mqttb_slice *filter,
                          uint8_t *opts) {
  return next_filter(entries, pos, true, filter, opts);
}

bool mqttb_unsubscribe_next(const mqttb_slice *entries, size_t *pos, mqttb_slice *filter) {
  return next_filter(entries, pos, false, filter, NULL);
}

/* Remaining length of a (UN)SUBSCRIBE, or SIZE_MAX if it cannot be encoded. */
static size_t filters_remaining(const mqttb_slice *filters, size_t n, bool with_opts) {
  size_t rem = 2;
  size_t i;
  for (i = 0; i < n; i++) {
    if (filters[i].len > STR_MAX) {
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

  if (packet_size(rem) == 0) {
    return 0;
  }
  p = put_header(out, first, (uint32_t)rem);
  p = put_u16(p, packet_id);
  for (i = 0; i < n; i++) {
    p = put_bin(p, &filters[i]);
    if (with_opts) {
      *p++ = opts ? opts[i] : 0;
    }
  }
  return (size_t)(p - out);
}

size_t mqttb_subscribe_size(const mqttb_slice *filters, size_t n) {
  return packet_size(filters_remaining(filters, n, true));
}

size_t mqttb_encode_subscribe(uint8_t *out, uint16_t packet_id, const mqttb_slice *filters,
                              const uint8_t *opts, size_t n) {
  return encode_filters(out, (uint8_t)((MQTTB_PKT_SUBSCRIBE << 4) | 0x2), packet_id, filters, opts,
                        n, true);
}

size_t mqttb_unsubscribe_size(const mqttb_slice *filters, size_t n) {
  return packet_size(filters_remaining(filters, n, false));
}

size_t mqttb_encode_unsubscribe(uint8_t *out, uint16_t packet_id, const mqttb_slice *filters,
                                size_t n) {
  return encode_filters(out, (uint8_t)((MQTTB_PKT_UNSUBSCRIBE << 4) | 0x2), packet_id, filters,
                        NULL, n, false);
}

/* ---- SUBACK ---- */

size_t mqttb_suback_size(size_t n) {
  if (n > MQTTB_MAX_REMAINING_LENGTH - 2) {
    return 0;
  }
  return packet_size(2 + n);
}

size_t mqttb_encode_suback(uint8_t *out, uint16_t packet_id, const uint8_t *codes, size_t n) {
  uint8_t *p;
  if (mqttb_suback_size(n) == 0) {
    return 0;
  }
  p = put_header(out, (uint8_t)(MQTTB_PKT_SUBACK << 4), (uint32_t)(2 + n));
  p = put_u16(p, packet_id);
  if (n > 0) {
    memcpy(p, codes, n);
  }
  return (size_t)(p + n - out);
}

int mqttb_decode_suback(const uint8_t *body, size_t len, uint16_t *packet_id, mqttb_slice *codes) {
  size_t i;
  uint16_t id;
  if (len < 3) {
    return MQTTB_CODEC_MALFORMED; /* packet id and at least one code */
  }
  id = get_u16(body);
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

/* ---- PINGREQ, PINGRESP, DISCONNECT ---- */

size_t mqttb_encode_empty(uint8_t *out, uint8_t type) {
  if (type != MQTTB_PKT_PINGREQ && type != MQTTB_PKT_PINGRESP && type != MQTTB_PKT_DISCONNECT) {
    return 0;
  }
  out[0] = (uint8_t)(type << 4);
  out[1] = 0;
  return MQTTB_EMPTY_SIZE;
}
