/* SPDX-License-Identifier: MIT */
/*
 * props: MQTT 5 properties. The table of every property (its type and the
 * packets it may appear in), validation of a property block, an iterator,
 * writers, and typed views of the blocks the broker reads (CONNECT, and
 * PUBLISH or will properties). Stateless; above wire, below codec.
 */
#ifndef MQTTB_PROPS_H
#define MQTTB_PROPS_H

#include "wire.h"

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
/* A string pair (a user property); each string at most 65535 bytes. */
size_t mqttb_prop_put_pair(uint8_t *out, uint8_t id, const uint8_t *a, size_t alen,
                           const uint8_t *b, size_t blen);

/* ---- typed views ---- */

/* What CONNECT properties say (defaults where absent). */
typedef struct mqttb_connect_props {
  uint32_t session_expiry;
  uint16_t receive_max; /* 65535 when absent */
  uint32_t max_packet;  /* 0 when absent: no limit */
  uint16_t alias_max;
  bool request_response_info;
  bool has_auth_method;
  mqttb_slice auth_method;
  mqttb_slice auth_data;
} mqttb_connect_props;

void mqttb_connect_props_view(const mqttb_slice *props, mqttb_connect_props *cp);

/* What PUBLISH (or will) properties say, and how many bytes of them are
 * forwarded to subscribers as they are: all but Message Expiry (sent as
 * what is left of it), Topic Alias and Subscription Identifier (per
 * connection) and Will Delay Interval (the broker's). */
typedef struct mqttb_pub_props {
  uint8_t payload_format;
  bool has_expiry;
  uint32_t expiry;
  uint16_t alias;
  bool has_sub_id;
  uint32_t will_delay;
  size_t fwd_len;
} mqttb_pub_props;

void mqttb_pub_props_view(const mqttb_slice *props, mqttb_pub_props *pp);
/* Copy the forwarded properties, in order, to out (pp->fwd_len bytes);
 * out may be props->ptr, to move them to the front in place. */
void mqttb_pub_props_copy_forwarded(const mqttb_slice *props, uint8_t *out);

#endif /* MQTTB_PROPS_H */
