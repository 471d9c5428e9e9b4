/* SPDX-License-Identifier: MIT */
/*
 * wire: the MQTT data representations every packet is made of. Two-byte
 * integers, length-prefixed strings and binary data, variable byte
 * integers, the fixed header's first byte and remaining length, UTF-8 and
 * topic validity. The bottom layer of the library: no state, no
 * allocation, nothing above it included.
 */
#ifndef MQTTB_WIRE_H
#define MQTTB_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Packet types (the high nibble of the first byte). */
enum {
  MQTTB_PKT_CONNECT = 1,
  MQTTB_PKT_CONNACK = 2,
  MQTTB_PKT_PUBLISH = 3,
  MQTTB_PKT_PUBACK = 4,
  MQTTB_PKT_PUBREC = 5,
  MQTTB_PKT_PUBREL = 6,
  MQTTB_PKT_PUBCOMP = 7,
  MQTTB_PKT_SUBSCRIBE = 8,
  MQTTB_PKT_SUBACK = 9,
  MQTTB_PKT_UNSUBSCRIBE = 10,
  MQTTB_PKT_UNSUBACK = 11,
  MQTTB_PKT_PINGREQ = 12,
  MQTTB_PKT_PINGRESP = 13,
  MQTTB_PKT_DISCONNECT = 14,
  MQTTB_PKT_AUTH = 15
};

/* Codec results: 0 or a negative value, each distinct so tests can tell
 * them apart; the connection maps all of them but INCOMPLETE to a close. */
enum {
  MQTTB_CODEC_OK = 0,
  MQTTB_CODEC_MALFORMED = -1,    /* bytes violate the packet format */
  MQTTB_CODEC_TOO_LARGE = -2,    /* frame: larger than the allowed maximum */
  MQTTB_CODEC_BAD_UTF8 = -3,     /* a string is not well-formed UTF-8 or holds U+0000 */
  MQTTB_CODEC_BAD_FLAGS = -4,    /* reserved fixed-header flags are wrong */
  MQTTB_CODEC_BAD_PROTOCOL = -5, /* CONNECT: unknown protocol name/level */
  MQTTB_CODEC_PROTOCOL = -6,     /* MQTT 5: well-formed but a protocol error
                                  * (duplicate property, value out of range) */
  MQTTB_CODEC_INCOMPLETE = -7    /* frame: need more bytes (not an error of
                                  * the peer) */
};

/* Largest remaining length the protocol can express. */
#define MQTTB_MAX_REMAINING_LENGTH 268435455u
/* Longest string or binary field. */
#define MQTTB_STR_MAX 65535u

/* A borrowed run of bytes. For strings, not NUL-terminated. */
typedef struct mqttb_slice {
  const uint8_t *ptr;
  size_t len;
} mqttb_slice;

static inline uint16_t mqttb_get_u16(const uint8_t *p) {
  return (uint16_t)(((unsigned)p[0] << 8) | (unsigned)p[1]);
}

static inline uint8_t *mqttb_put_u16(uint8_t *out, uint16_t v) {
  out[0] = (uint8_t)(v >> 8);
  out[1] = (uint8_t)(v & 0xFFu);
  return out + 2;
}

/* Readers at body[*pos], bounds-checked against len; *pos advances only on
 * success. */
bool mqttb_read_u16(const uint8_t *body, size_t len, size_t *pos, uint16_t *v);
/* A 2-byte length prefixed run of bytes. */
bool mqttb_read_bin(const uint8_t *body, size_t len, size_t *pos, mqttb_slice *s);
/* A variable byte integer (at most 4 bytes). */
bool mqttb_read_varint(const uint8_t *buf, size_t len, size_t *pos, uint32_t *v);

/* Writers: the caller made room. A 2-byte length prefixed run (len <=
 * 65535); a variable byte length then the bytes; the first byte and the
 * remaining length of a fixed header. Each returns the byte after. */
uint8_t *mqttb_put_bin(uint8_t *out, const mqttb_slice *s);
uint8_t *mqttb_put_block(uint8_t *out, const mqttb_slice *block);
uint8_t *mqttb_put_header(uint8_t *out, uint8_t first, uint32_t remaining);

/* Variable byte integer: encode value (< 2^28) into out (4 bytes room),
 * return bytes written (0 when the value cannot be encoded). */
size_t mqttb_codec_varint_encode(uint8_t *out, uint32_t value);
/* Bytes needed to encode value (0 when it cannot be encoded). */
size_t mqttb_codec_varint_size(uint32_t value);
/* Whole packet size for a remaining length; 0 when it cannot be expressed. */
size_t mqttb_packet_size(size_t remaining);

/* UTF-8 validity per MQTT: well-formed UTF-8 (no overlongs, no surrogates
 * U+D800..U+DFFF, nothing above U+10FFFF) and no U+0000. */
bool mqttb_utf8_valid(const uint8_t *s, size_t len);

/* Topic name validity (PUBLISH / will topic): non-empty, valid UTF-8,
 * no '+' or '#'. Length <= 65535 is implied by the encoding. */
bool mqttb_topic_name_valid(const uint8_t *s, size_t len);
/* Topic filter validity (SUBSCRIBE / UNSUBSCRIBE): non-empty, valid UTF-8,
 * '+' only as a whole level, '#' only as the whole last level. */
bool mqttb_topic_filter_valid(const uint8_t *s, size_t len);
/* Levels in a topic name or filter. */
size_t mqttb_topic_levels(const uint8_t *topic, size_t len);
/* Whether a filter has a wildcard ('+' or '#'). */
bool mqttb_topic_has_wildcard(const uint8_t *filter, size_t len);
/* Whether a topic name lies in the $SYS tree. */
bool mqttb_sys_topic(const uint8_t *topic, size_t len);

#endif /* MQTTB_WIRE_H */
