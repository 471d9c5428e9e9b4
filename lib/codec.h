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
  MQTTB_CODEC_INCOMPLETE = 1,    /* frame: need more bytes */
  MQTTB_CODEC_MALFORMED = -1,    /* bytes violate the packet format */
  MQTTB_CODEC_TOO_LARGE = -2,    /* frame: larger than the allowed maximum */
  MQTTB_CODEC_BAD_UTF8 = -3,     /* a string is not well-formed UTF-8 or holds U+0000 */
  MQTTB_CODEC_BAD_FLAGS = -4,    /* reserved fixed-header flags are wrong */
  MQTTB_CODEC_BAD_PROTOCOL = -5, /* CONNECT: unknown protocol name/level */
  MQTTB_CODEC_PROTOCOL = -6      /* MQTT 5: well-formed but a protocol error
                                  * (duplicate property, value out of range) */
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
  mqttb_slice props;         /* MQTT 5: CONNECT properties (validated) */
  mqttb_slice will_props;    /* MQTT 5: will properties (validated) */
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
 * Level 5 bodies carry properties after the keep-alive and before the will
 * topic; both blocks are validated (MQTTB_CODEC_PROTOCOL for a duplicate or
 * an out-of-range value).
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
  bool v5;           /* MQTT 5 layout: properties after the packet id */
  mqttb_slice props; /* MQTT 5: the property block (validated) */
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
/* The same for a protocol level (5: properties; an empty topic is then
 * allowed, for a topic alias). */
int mqttb_decode_publish_v(uint8_t flags, const uint8_t *body, size_t len, uint8_t level,
                           mqttb_publish *p);
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

/* ---- MQTT 5 properties ---- */
enum {
  MQTTB_PROP_PAYLOAD_FORMAT = 0x01,
  MQTTB_PROP_MESSAGE_EXPIRY = 0x02,
  MQTTB_PROP_CONTENT_TYPE = 0x03,
  MQTTB_PROP_RESPONSE_TOPIC = 0x08,
  MQTTB_PROP_CORRELATION_DATA = 0x09,
  MQTTB_PROP_SUBSCRIPTION_ID = 0x0B,
  MQTTB_PROP_SESSION_EXPIRY = 0x11,
  MQTTB_PROP_ASSIGNED_CLIENT_ID = 0x12,
  MQTTB_PROP_SERVER_KEEP_ALIVE = 0x13,
  MQTTB_PROP_AUTH_METHOD = 0x15,
  MQTTB_PROP_AUTH_DATA = 0x16,
  MQTTB_PROP_REQUEST_PROBLEM_INFO = 0x17,
  MQTTB_PROP_WILL_DELAY = 0x18,
  MQTTB_PROP_REQUEST_RESPONSE_INFO = 0x19,
  MQTTB_PROP_RESPONSE_INFO = 0x1A,
  MQTTB_PROP_SERVER_REFERENCE = 0x1C,
  MQTTB_PROP_REASON_STRING = 0x1F,
  MQTTB_PROP_RECEIVE_MAXIMUM = 0x21,
  MQTTB_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
  MQTTB_PROP_TOPIC_ALIAS = 0x23,
  MQTTB_PROP_MAXIMUM_QOS = 0x24,
  MQTTB_PROP_RETAIN_AVAILABLE = 0x25,
  MQTTB_PROP_USER_PROPERTY = 0x26,
  MQTTB_PROP_MAXIMUM_PACKET_SIZE = 0x27,
  MQTTB_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
  MQTTB_PROP_SUB_ID_AVAILABLE = 0x29,
  MQTTB_PROP_SHARED_SUB_AVAILABLE = 0x2A
};

/* The context a property block appears in: a packet type, or this for the
 * will properties of CONNECT. */
#define MQTTB_PROPS_WILL 0

/* One property. Integers (byte, two-byte, four-byte, variable byte) are in
 * value; strings and binary data in a; a user property's name in a and
 * value in b. */
typedef struct mqttb_prop {
  uint8_t id;
  uint32_t value;
  mqttb_slice a, b;
} mqttb_prop;

/* Read a property block at body[*pos] (variable byte length, then the
 * properties) and validate it for its context: every identifier allowed
 * there and well-formed (MQTTB_CODEC_MALFORMED, MQTTB_CODEC_BAD_UTF8),
 * none repeated except user properties and, in PUBLISH, subscription
 * identifiers, and values in range (MQTTB_CODEC_PROTOCOL). */
int mqttb_props_read(const uint8_t *body, size_t len, size_t *pos, uint8_t context,
                     mqttb_slice *props);
/* Iterate a validated block: start with *pos = 0. */
bool mqttb_props_next(const mqttb_slice *props, size_t *pos, mqttb_prop *p);
/* Find the first property with this id. */
bool mqttb_props_find(const mqttb_slice *props, uint8_t id, mqttb_prop *p);

/* Property writers: return the bytes written (out may be NULL to count). */
size_t mqttb_prop_put_byte(uint8_t *out, uint8_t id, uint8_t v);
size_t mqttb_prop_put_u16(uint8_t *out, uint8_t id, uint16_t v);
size_t mqttb_prop_put_u32(uint8_t *out, uint8_t id, uint32_t v);
size_t mqttb_prop_put_varint(uint8_t *out, uint8_t id, uint32_t v);
size_t mqttb_prop_put_str(uint8_t *out, uint8_t id, const uint8_t *s, size_t len);

/* ---- MQTT 5 packets ---- */

/* PUBACK, PUBREC, PUBREL, PUBCOMP: packet id, optional reason code, optional
 * properties. */
int mqttb_decode_ack5(uint8_t type, const uint8_t *body, size_t len, uint16_t *packet_id,
                      uint8_t *reason, mqttb_slice *props);
/* Encode with a reason code (omitted when 0) and no properties: 4 or 5
 * bytes. */
size_t mqttb_encode_ack5(uint8_t *out, uint8_t type, uint16_t packet_id, uint8_t reason);

/* SUBSCRIBE v5: options byte bits 0-1 QoS, 2 No Local, 3 Retain As
 * Published, 4-5 Retain Handling (3 is malformed), 6-7 reserved. */
int mqttb_decode_subscribe_v(const uint8_t *body, size_t len, uint8_t level, mqttb_subscribe *s,
                             mqttb_slice *props);
int mqttb_decode_unsubscribe_v(const uint8_t *body, size_t len, uint8_t level, mqttb_unsubscribe *u,
                               mqttb_slice *props);

/* SUBACK / UNSUBACK v5: packet id, empty property block, reason codes. */
size_t mqttb_ack_codes5_size(size_t n);
size_t mqttb_encode_ack_codes5(uint8_t *out, uint8_t type, uint16_t packet_id, const uint8_t *codes,
                               size_t n);

/* CONNACK v5 with a property block (already encoded, may be empty). */
size_t mqttb_connack5_size(size_t props_len);
size_t mqttb_encode_connack5(uint8_t *out, bool session_present, uint8_t reason,
                             const uint8_t *props, size_t props_len);

/* DISCONNECT v5 / AUTH: optional reason code and properties. */
int mqttb_decode_reason_props(uint8_t type, const uint8_t *body, size_t len, uint8_t *reason,
                              mqttb_slice *props);
size_t mqttb_reason_props_size(size_t props_len);
size_t mqttb_encode_reason_props(uint8_t *out, uint8_t type, uint8_t reason, const uint8_t *props,
                                 size_t props_len);

/* ---- PINGREQ, PINGRESP, DISCONNECT: no body (3.1.1) ---- */
#define MQTTB_EMPTY_SIZE 2u
size_t mqttb_encode_empty(uint8_t *out, uint8_t type);

#endif /* MQTTB_CODEC_H */
