/* SPDX-License-Identifier: MIT */
/*
 * MQTT wire codec: framing, variable byte integers, strings, and encode /
 * decode of every packet type in both directions (server side decodes what
 * clients send; tests use the other direction to play clients).
 *
 * The codec holds no state and includes no broker header. Decoders validate
 * strictly and return borrowed slices into the input buffer; nothing is
 * allocated. Encoders write into a caller buffer whose size the matching
 * *_size function gives.
 */
#ifndef MQTTB_CODEC_H
#define MQTTB_CODEC_H

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

/* Codec results. Negative values are distinct so tests can tell them apart;
 * the connection maps all of them to a close. */
enum {
  MQTTB_CODEC_OK = 0,
  MQTTB_CODEC_INCOMPLETE = 1,   /* frame: need more bytes */
  MQTTB_CODEC_MALFORMED = -1,   /* bytes violate the packet format */
  MQTTB_CODEC_TOO_LARGE = -2,   /* frame: larger than the allowed maximum */
  MQTTB_CODEC_BAD_UTF8 = -3,    /* a string is not well-formed UTF-8 or holds U+0000 */
  MQTTB_CODEC_BAD_FLAGS = -4,   /* reserved fixed-header flags are wrong */
  MQTTB_CODEC_BAD_PROTOCOL = -5 /* CONNECT: unknown protocol name/level */
};

/* Largest remaining length the protocol can express. */
#define MQTTB_MAX_REMAINING_LENGTH 268435455u

/* A borrowed run of bytes. For strings, not NUL-terminated. */
typedef struct mqttb_slice {
  const uint8_t *ptr;
  size_t len;
} mqttb_slice;

/* A parsed fixed header. */
typedef struct mqttb_frame {
  uint8_t type;       /* MQTTB_PKT_* */
  uint8_t flags;      /* low nibble of the first byte */
  uint32_t remaining; /* remaining length */
  uint32_t hdr_len;   /* bytes of the fixed header (2..5) */
} mqttb_frame;

/*
 * Parse the fixed header at buf[0..len).
 *  MQTTB_CODEC_OK: a complete header was parsed into *f; the whole packet
 *    is hdr_len + remaining bytes (which may not all be in buf yet).
 *  MQTTB_CODEC_INCOMPLETE: fewer than the header's bytes are available.
 *  MQTTB_CODEC_MALFORMED: the remaining length uses more than 4 bytes, or a
 *    non-minimal encoding is not an error (the spec allows it) - only the
 *    5-byte case is.
 *  MQTTB_CODEC_TOO_LARGE: hdr_len + remaining > max_packet.
 * Flags are not checked here (see mqttb_codec_check_flags).
 */
int mqttb_codec_frame(const uint8_t *buf, size_t len, uint32_t max_packet, mqttb_frame *f);

/* Check the fixed-header flags of a client-to-server or server-to-client
 * packet against the spec: PUBLISH any (but QoS 3 is malformed), PUBREL,
 * SUBSCRIBE, UNSUBSCRIBE must be 0x2, everything else 0x0. Type 0 is
 * malformed. Returns MQTTB_CODEC_OK, MQTTB_CODEC_BAD_FLAGS or
 * MQTTB_CODEC_MALFORMED. */
int mqttb_codec_check_flags(uint8_t type, uint8_t flags);

/* Variable byte integer: encode value (< 2^28) into out (4 bytes room),
 * return bytes written. */
size_t mqttb_codec_varint_encode(uint8_t *out, uint32_t value);
/* Bytes needed to encode value. */
size_t mqttb_codec_varint_size(uint32_t value);

/* UTF-8 validity per MQTT: well-formed UTF-8 (no overlongs, no surrogates
 * U+D800..U+DFFF, nothing above U+10FFFF) and no U+0000. */
bool mqttb_utf8_valid(const uint8_t *s, size_t len);

/* Topic name validity (PUBLISH / will topic): non-empty, valid UTF-8,
 * no '+' or '#'. Length <= 65535 is implied by the encoding. */
bool mqttb_topic_name_valid(const uint8_t *s, size_t len);
/* Topic filter validity (SUBSCRIBE / UNSUBSCRIBE): non-empty, valid UTF-8,
 * '+' only as a whole level, '#' only as the whole last level. */
bool mqttb_topic_filter_valid(const uint8_t *s, size_t len);

/* ---- CONNECT ---- */
typedef struct mqttb_connect {
  mqttb_slice protocol_name; /* "MQTT" (level 4/5) or "MQIsdp" (level 3) */
  uint8_t level;             /* 3, 4 or 5 */
  bool clean;
  uint16_t keepalive;
  mqttb_slice client_id;
  bool will;
  uint8_t will_qos;
  bool will_retain;
  mqttb_slice will_topic;
  mqttb_slice will_payload;
  bool has_username;
  mqttb_slice username;
  bool has_password;
  mqttb_slice password;
} mqttb_connect;

/*
 * Decode a CONNECT body (the bytes after the fixed header).
 *  MQTTB_CODEC_OK
 *  MQTTB_CODEC_BAD_PROTOCOL: the protocol name is "MQTT" or "MQIsdp" but
 *    the level does not match a supported one (MQIsdp needs 3; MQTT needs 4
 *    or 5): the server answers CONNACK 0x01. c->level and c->protocol_name
 *    are filled.
 *  MQTTB_CODEC_MALFORMED: anything else wrong, including an unknown
 *    protocol name, reserved flag bit 0 set, will QoS 3, will QoS or will
 *    retain set without the will flag, password flag without username flag
 *    (3.1.1 only; 3.1 allows it too, treat it as malformed for both), a
 *    string running past the end, trailing bytes after the payload, an
 *    invalid will topic (mqttb_topic_name_valid).
 *  MQTTB_CODEC_BAD_UTF8: client id, will topic or username is not valid
 *    UTF-8.
 * Level 5 bodies (with properties) are not decoded yet: return
 * MQTTB_CODEC_BAD_PROTOCOL for level 5 so the server answers 0x01.
 */
int mqttb_decode_connect(const uint8_t *body, size_t len, mqttb_connect *c);
size_t mqttb_connect_size(const mqttb_connect *c); /* whole packet */
size_t mqttb_encode_connect(uint8_t *out, const mqttb_connect *c);

/* ---- CONNACK (server -> client) ---- */
typedef struct mqttb_connack {
  bool session_present;
  uint8_t rc;
} mqttb_connack;
#define MQTTB_CONNACK_SIZE 4u
size_t mqttb_encode_connack(uint8_t *out, const mqttb_connack *a);
/* Decode a CONNACK body: exactly 2 bytes, reserved bits of byte 0 zero. */
int mqttb_decode_connack(const uint8_t *body, size_t len, mqttb_connack *a);

/* ---- PUBLISH ---- */
typedef struct mqttb_publish {
  bool dup;
  uint8_t qos;
  bool retain;
  mqttb_slice topic;
  uint16_t packet_id; /* 0 for QoS 0 */
  mqttb_slice payload;
} mqttb_publish;

/*
 * Decode a PUBLISH from its fixed-header flags and body.
 *  MQTTB_CODEC_MALFORMED: QoS 3, DUP set on QoS 0, body too short, packet id
 *    0 for QoS > 0, empty topic, wildcard in topic.
 *  MQTTB_CODEC_BAD_UTF8: topic not valid UTF-8.
 */
int mqttb_decode_publish(uint8_t flags, const uint8_t *body, size_t len, mqttb_publish *p);
size_t mqttb_publish_size(const mqttb_publish *p); /* whole packet */
size_t mqttb_encode_publish(uint8_t *out, const mqttb_publish *p);

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: packet id only ---- */
#define MQTTB_ACK_SIZE 4u
/* type is one of the five; PUBREL gets flags 0x2. */
size_t mqttb_encode_ack(uint8_t *out, uint8_t type, uint16_t packet_id);
/* Body must be exactly 2 bytes with a non-zero id: else MALFORMED. */
int mqttb_decode_ack(const uint8_t *body, size_t len, uint16_t *packet_id);

/* ---- SUBSCRIBE ---- */
typedef struct mqttb_subscribe {
  uint16_t packet_id;
  mqttb_slice entries; /* the payload: filter/options pairs; iterate below */
  size_t count;        /* number of filters */
} mqttb_subscribe;

/*
 * Decode and fully validate a SUBSCRIBE body: packet id non-zero, at least
 * one entry, every filter a valid topic filter, every requested QoS 0..2 and
 * the reserved upper bits of the options byte zero.
 *  MQTTB_CODEC_MALFORMED / MQTTB_CODEC_BAD_UTF8 on error.
 */
int mqttb_decode_subscribe(const uint8_t *body, size_t len, mqttb_subscribe *s);

/* Iterator over validated SUBSCRIBE entries (or UNSUBSCRIBE filters, where
 * opts is set to 0). Start with *pos = 0; returns false at the end. */
bool mqttb_subscribe_next(const mqttb_slice *entries, size_t *pos, mqttb_slice *filter,
                          uint8_t *opts);

/* Client side: encode a SUBSCRIBE with n filters. */
size_t mqttb_subscribe_size(const mqttb_slice *filters, size_t n);
size_t mqttb_encode_subscribe(uint8_t *out, uint16_t packet_id, const mqttb_slice *filters,
                              const uint8_t *opts, size_t n);

/* ---- SUBACK (server -> client) ---- */
size_t mqttb_suback_size(size_t n);
size_t mqttb_encode_suback(uint8_t *out, uint16_t packet_id, const uint8_t *codes, size_t n);
/* Decode: codes points into body; each must be 0,1,2 or 0x80. */
int mqttb_decode_suback(const uint8_t *body, size_t len, uint16_t *packet_id, mqttb_slice *codes);

/* ---- UNSUBSCRIBE ---- */
typedef struct mqttb_unsubscribe {
  uint16_t packet_id;
  mqttb_slice entries; /* filters only; iterate with a unsubscribe_next */
  size_t count;
} mqttb_unsubscribe;

/* Validate like SUBSCRIBE, without options bytes. */
int mqttb_decode_unsubscribe(const uint8_t *body, size_t len, mqttb_unsubscribe *u);
bool mqttb_unsubscribe_next(const mqttb_slice *entries, size_t *pos, mqttb_slice *filter);
size_t mqttb_unsubscribe_size(const mqttb_slice *filters, size_t n);
size_t mqttb_encode_unsubscribe(uint8_t *out, uint16_t packet_id, const mqttb_slice *filters,
                                size_t n);

/* ---- PINGREQ, PINGRESP, DISCONNECT: no body (3.1.1) ---- */
#define MQTTB_EMPTY_SIZE 2u
size_t mqttb_encode_empty(uint8_t *out, uint8_t type);

#endif /* MQTTB_CODEC_H */
