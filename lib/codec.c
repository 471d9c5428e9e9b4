/* SPDX-License-Identifier: MIT */
/*
 * The server side of the MQTT wire format (3.1, 3.1.1, 5). See codec.h for
 * the contract.
 *
 * Rules of this file: no allocation, no mutable globals, every read is
 * bounds-checked against the length the caller gave (the decoders are
 * fuzzed). Encoders trust the caller's buffer to be at least the size the
 * matching *_size function returned; when a packet cannot be expressed
 * the *_size function and the encoder return 0 and nothing is written.
 */
#include "codec.h"

#include <string.h>

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

/* Decode-side string check: UTF-8 problems are BAD_UTF8. */
static int check_utf8(const mqttb_slice *s) {
  return mqttb_utf8_valid(s->ptr, s->len) ? MQTTB_CODEC_OK : MQTTB_CODEC_BAD_UTF8;
}

/* ---- CONNECT ---- */

int mqttb_decode_connect(const uint8_t *body, size_t len, mqttb_connect *c) {
  size_t pos = 0;
  uint8_t flags;
  int rc;

  memset(c, 0, sizeof(*c));

  /* Variable header: protocol name, level, flags, keep alive. */
  if (!mqttb_read_bin(body, len, &pos, &c->protocol_name)) {
    return MQTTB_CODEC_MALFORMED;
  }
  if (len - pos < 1) {
    return MQTTB_CODEC_MALFORMED;
  }
  c->level = body[pos++];
  if (c->protocol_name.len == (sizeof(MQTTB_NAME_MQTT) - 1) &&
      memcmp(c->protocol_name.ptr, MQTTB_NAME_MQTT, (sizeof(MQTTB_NAME_MQTT) - 1)) == 0) {
    if (c->level != 4 && c->level != 5) {
      return MQTTB_CODEC_BAD_PROTOCOL; /* [MQTT-3.1.2-2] */
    }
  } else if (c->protocol_name.len == (sizeof(MQTTB_NAME_MQISDP) - 1) &&
             memcmp(c->protocol_name.ptr, MQTTB_NAME_MQISDP, (sizeof(MQTTB_NAME_MQISDP) - 1)) ==
                 0) {
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
  if ((flags & MQTTB_CF_RESERVED) && c->level != 3) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.1.2-3]; MQTT 3.1 did not reserve it */
  }
  c->clean = (flags & MQTTB_CF_CLEAN) != 0;
  c->will = (flags & MQTTB_CF_WILL) != 0;
  c->will_qos = (uint8_t)((flags >> MQTTB_CF_WILL_QOS_SHIFT) & 0x3u);
  c->will_retain = (flags & MQTTB_CF_WILL_RETAIN) != 0;
  c->has_username = (flags & MQTTB_CF_USERNAME) != 0;
  c->has_password = (flags & MQTTB_CF_PASSWORD) != 0;
  if (c->will_qos == 3) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.1.2-14] */
  }
  if (!c->will && (c->will_qos != 0 || c->will_retain)) {
    return MQTTB_CODEC_MALFORMED; /* [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15] */
  }
  if (c->has_password && !c->has_username && c->level != 5) {
    /* [MQTT-3.1.2-22]; MQTT 5 allows a password without a user name
     * (3.1.2.9). */
    return MQTTB_CODEC_MALFORMED;
  }
  if (!mqttb_read_u16(body, len, &pos, &c->keepalive)) {
    return MQTTB_CODEC_MALFORMED;
  }
  if (c->level == 5 &&
      (rc = mqttb_props_read(body, len, &pos, MQTTB_PKT_CONNECT, &c->props)) != MQTTB_CODEC_OK) {
    return rc;
  }

  /* Payload: client id, will topic, will message, user name, password. */
  if (!mqttb_read_bin(body, len, &pos, &c->client_id)) {
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
    if (!mqttb_read_bin(body, len, &pos, &c->will_topic)) {
      return MQTTB_CODEC_MALFORMED;
    }
    if ((rc = check_utf8(&c->will_topic)) != MQTTB_CODEC_OK) {
      return rc;
    }
    if (!mqttb_topic_name_valid(c->will_topic.ptr, c->will_topic.len)) {
      return MQTTB_CODEC_MALFORMED;
    }
    if (!mqttb_read_bin(body, len, &pos, &c->will_payload)) {
      return MQTTB_CODEC_MALFORMED;
    }
  }
  if (c->has_username) {
    if (!mqttb_read_bin(body, len, &pos, &c->username)) {
      return MQTTB_CODEC_MALFORMED;
    }
    if ((rc = check_utf8(&c->username)) != MQTTB_CODEC_OK) {
      return rc; /* [MQTT-3.1.3-11] */
    }
  }
  if (c->has_password) {
    if (!mqttb_read_bin(body, len, &pos, &c->password)) {
      return MQTTB_CODEC_MALFORMED;
    }
  }
  if (pos != len) {
    return MQTTB_CODEC_MALFORMED; /* trailing bytes */
  }
  return MQTTB_CODEC_OK;
}

/* ---- CONNACK ---- */

size_t mqttb_encode_connack(uint8_t *out, const mqttb_connack *a) {
  out[0] = (uint8_t)(MQTTB_PKT_CONNACK << 4);
  out[1] = 2;
  out[2] = a->session_present ? 1 : 0;
  out[3] = a->rc;
  return MQTTB_CONNACK_SIZE;
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
  if (!mqttb_read_bin(body, len, &pos, &p->topic)) {
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
    if (!mqttb_read_u16(body, len, &pos, &p->packet_id)) {
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

/* ---- outgoing PUBLISH ---- */

static size_t publish_out_remaining(const mqttb_publish_out *p, size_t *props_len) {
  if (p->topic.len > MQTTB_STR_MAX || p->payload_len > MQTTB_MAX_REMAINING_LENGTH)
    return SIZE_MAX;
  size_t rem = 2 + p->topic.len + p->payload_len + (p->qos > 0 ? 2u : 0u);
  *props_len = 0;
  if (p->level == 5) {
    size_t props = p->props.len;
    if (p->has_expiry)
      props += 5;
    if (p->alias)
      props += 3;
    for (size_t i = 0; i < p->nsub_ids; i++)
      props += 1 + mqttb_codec_varint_size(p->sub_ids[i]);
    if (props > MQTTB_MAX_REMAINING_LENGTH)
      return SIZE_MAX;
    *props_len = props;
    rem += mqttb_codec_varint_size((uint32_t)props) + props;
  }
  return rem;
}

size_t mqttb_publish_out_size(const mqttb_publish_out *p, size_t *head) {
  size_t props_len;
  size_t total = mqttb_packet_size(publish_out_remaining(p, &props_len));
  if (head)
    *head = total ? total - p->payload_len : 0;
  return total;
}

size_t mqttb_encode_publish_head(uint8_t *out, const mqttb_publish_out *p) {
  size_t props_len;
  size_t rem = publish_out_remaining(p, &props_len);
  if (mqttb_packet_size(rem) == 0)
    return 0;
  uint8_t first = (uint8_t)((MQTTB_PKT_PUBLISH << 4) | (p->dup ? 0x08u : 0u) |
                            ((p->qos & 0x3u) << 1) | (p->retain ? 0x01u : 0u));
  uint8_t *q = mqttb_put_header(out, first, (uint32_t)rem);
  q = mqttb_put_bin(q, &p->topic);
  if (p->qos > 0)
    q = mqttb_put_u16(q, p->packet_id);
  if (p->level == 5) {
    q += mqttb_codec_varint_encode(q, (uint32_t)props_len);
    if (p->has_expiry)
      q += mqttb_prop_put_u32(q, MQTTB_PROP_MESSAGE_EXPIRY, p->expiry);
    if (p->alias)
      q += mqttb_prop_put_u16(q, MQTTB_PROP_TOPIC_ALIAS, p->alias);
    for (size_t i = 0; i < p->nsub_ids; i++)
      q += mqttb_prop_put_varint(q, MQTTB_PROP_SUBSCRIPTION_ID, p->sub_ids[i]);
    if (p->props.len) {
      memcpy(q, p->props.ptr, p->props.len);
      q += p->props.len;
    }
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
  mqttb_put_u16(out + 2, packet_id);
  return MQTTB_ACK_SIZE;
}

int mqttb_decode_ack(const uint8_t *body, size_t len, uint16_t *packet_id) {
  uint16_t id;
  if (len != 2) {
    return MQTTB_CODEC_MALFORMED;
  }
  id = mqttb_get_u16(body);
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
  if (!mqttb_read_u16(body, len, &pos, packet_id)) {
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
    if (!mqttb_read_bin(body, len, &pos, &filter)) {
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
  if (!mqttb_read_bin(entries->ptr, entries->len, &p, &f)) {
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

/* ---- SUBACK ---- */

size_t mqttb_suback_size(size_t n) {
  if (n > MQTTB_MAX_REMAINING_LENGTH - 2) {
    return 0;
  }
  return mqttb_packet_size(2 + n);
}

size_t mqttb_encode_suback(uint8_t *out, uint16_t packet_id, const uint8_t *codes, size_t n) {
  uint8_t *p;
  if (mqttb_suback_size(n) == 0) {
    return 0;
  }
  p = mqttb_put_header(out, (uint8_t)(MQTTB_PKT_SUBACK << 4), (uint32_t)(2 + n));
  p = mqttb_put_u16(p, packet_id);
  if (n > 0) {
    memcpy(p, codes, n);
  }
  return (size_t)(p + n - out);
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

/* ---- MQTT 5 packets ---- */

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

size_t mqttb_ack_codes5_size(size_t n) {
  return mqttb_packet_size(2 + 1 + n);
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
  return mqttb_packet_size(2 + mqttb_codec_varint_size((uint32_t)props_len) + props_len);
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
  return mqttb_packet_size(1 + mqttb_codec_varint_size((uint32_t)props_len) + props_len);
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
