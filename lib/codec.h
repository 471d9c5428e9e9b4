/* SPDX-License-Identifier: MIT */
/*
 * codec: the server side of every MQTT packet. Framing, decoding what
 * clients send (CONNECT, PUBLISH, acknowledgements, SUBSCRIBE, UNSUBSCRIBE,
 * DISCONNECT, AUTH) and encoding what the broker sends (CONNACK, PUBLISH,
 * acknowledgements, SUBACK, UNSUBACK, PINGRESP, DISCONNECT, AUTH), for
 * MQTT 3.1, 3.1.1 and 5. The client side is codec_client.h.
 *
 * The codec holds no state and includes nothing above props. Decoders
 * validate strictly and return borrowed slices into the input buffer;
 * nothing is allocated. Encoders write into a caller buffer whose size the
 * matching *_size function gives.
 */
#ifndef MQTTB_CODEC_H
#define MQTTB_CODEC_H

#include "props.h"
#include "wire.h"

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

/* ---- CONNECT ---- */

/* Connect flags. */
#define MQTTB_CF_USERNAME 0x80u
#define MQTTB_CF_PASSWORD 0x40u
#define MQTTB_CF_WILL_RETAIN 0x20u
#define MQTTB_CF_WILL_QOS_SHIFT 3u
#define MQTTB_CF_WILL 0x04u
#define MQTTB_CF_CLEAN 0x02u
#define MQTTB_CF_RESERVED 0x01u

/* Protocol names: MQTT 3.1.1 and 5; MQTT 3.1. */
#define MQTTB_NAME_MQTT "MQTT"
#define MQTTB_NAME_MQISDP "MQIsdp"
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

/* ---- CONNACK (server -> client) ---- */
typedef struct mqttb_connack {
  bool session_present;
  uint8_t rc;
} mqttb_connack;
#define MQTTB_CONNACK_SIZE 4u
size_t mqttb_encode_connack(uint8_t *out, const mqttb_connack *a);

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

/* An outgoing PUBLISH: what the broker sends to one subscriber. */
typedef struct mqttb_publish_out {
  uint8_t level; /* 5: the MQTT 5 layout, with properties */
  bool dup;
  uint8_t qos;
  bool retain;
  mqttb_slice topic;  /* empty (MQTT 5): the topic alias stands for it */
  uint16_t packet_id; /* written when qos > 0 */
  /* MQTT 5 properties, written in this order: */
  bool has_expiry;
  uint32_t expiry;         /* Message Expiry Interval */
  uint16_t alias;          /* Topic Alias, 0 for none */
  const uint32_t *sub_ids; /* Subscription Identifiers */
  size_t nsub_ids;
  mqttb_slice props; /* further properties, already encoded */
  size_t payload_len;
} mqttb_publish_out;

/* Bytes of the whole packet, and in *head those before the payload. 0 when
 * the packet cannot be expressed (topic over 65535 bytes, remaining length
 * over the maximum). */
size_t mqttb_publish_out_size(const mqttb_publish_out *p, size_t *head);
/* Write the packet up to its payload (the *head bytes of the size call);
 * the caller sends the payload after it. Returns the bytes written. */
size_t mqttb_encode_publish_head(uint8_t *out, const mqttb_publish_out *p);

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

/* ---- SUBACK (server -> client) ---- */
size_t mqttb_suback_size(size_t n);
size_t mqttb_encode_suback(uint8_t *out, uint16_t packet_id, const uint8_t *codes, size_t n);

/* ---- UNSUBSCRIBE ---- */
typedef struct mqttb_unsubscribe {
  uint16_t packet_id;
  mqttb_slice entries; /* filters only; iterate with a unsubscribe_next */
  size_t count;
} mqttb_unsubscribe;

/* Validate like SUBSCRIBE, without options bytes. */
int mqttb_decode_unsubscribe(const uint8_t *body, size_t len, mqttb_unsubscribe *u);
bool mqttb_unsubscribe_next(const mqttb_slice *entries, size_t *pos, mqttb_slice *filter);

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
