/* SPDX-License-Identifier: MIT */
/* MQTT 5 client helpers for the scenario tests, on top of the test bed in
 * harness.h: property blocks, CONNECT/CONNACK, SUBSCRIBE/UNSUBSCRIBE,
 * PUBLISH and its acknowledgements, DISCONNECT and AUTH, encoded with the
 * library's codec (or by hand where the codec has no client-side encoder).
 * The helpers check what the broker sends with Criterion asserts, so only
 * Criterion tests use them. */
#ifndef MQTTB_TEST_V5_H
#define MQTTB_TEST_V5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* ---------------------------------------------------------------------- */
/* Property blocks                                                         */
/* ---------------------------------------------------------------------- */

/* A property block being built (or copied out of a received packet). */
typedef struct pb {
  uint8_t b[2048];
  size_t n;
} pb;

/* Append a Byte property; returns p so calls chain. */
pb *pb_byte(pb *p, uint8_t id, uint8_t v);
/* Append a Two Byte Integer property. */
pb *pb_u16(pb *p, uint8_t id, uint16_t v);
/* Append a Four Byte Integer property. */
pb *pb_u32(pb *p, uint8_t id, uint32_t v);
/* Append a Variable Byte Integer property. */
pb *pb_var(pb *p, uint8_t id, uint32_t v);
/* Append a Binary Data property (also any length-prefixed string). */
pb *pb_bin(pb *p, uint8_t id, const void *d, size_t len);
/* Append a UTF-8 String property. */
pb *pb_str(pb *p, uint8_t id, const char *s);
/* Append a User Property (a key/value string pair). */
pb *pb_pair(pb *p, const char *k, const char *v);
/* The block as a slice; p NULL gives an empty slice. */
mqttb_slice pb_slice(const pb *p);
/* Copy a received property block into dst (asserts it fits). */
void pb_copy(pb *dst, mqttb_slice s);
/* Find the first property with this id. */
bool pb_find(const pb *p, uint8_t id, mqttb_prop *out);
/* How many properties with this id the block holds. */
size_t pb_count(const pb *p, uint8_t id);
/* The value of an integer property, or -1 when absent. */
long pb_int(const pb *p, uint8_t id);
/* Whether a string/binary property is present with this value. */
bool pb_str_is(const pb *p, uint8_t id, const char *v);

/* A block with a Session Expiry Interval, or empty when expiry is 0. */
pb expiry_props(uint32_t expiry);

/* ---------------------------------------------------------------------- */
/* Clients                                                                 */
/* ---------------------------------------------------------------------- */

/* Subscription option bits besides the maximum QoS (MQTT 5 3.8.3.1). */
#define OPT_NL 0x04  /* No Local */
#define OPT_RAP 0x08 /* Retain As Published */
#define OPT_RH1 0x10 /* Retain Handling 1 */
#define OPT_RH2 0x20 /* Retain Handling 2 */

/* The next packet identifier of the MQTT 5 clients (from 30000, never 0). */
uint16_t v5_next_pid(void);
/* A slice over a C string (NULL: empty). */
mqttb_slice v5_slice(const char *s);

/* What an MQTT 5 CONNECT carries. */
typedef struct c5o {
  const char *id;
  bool clean;
  uint16_t keepalive;
  const pb *props;
  const char *will_topic;
  const char *will_payload;
  uint8_t will_qos;
  bool will_retain;
  const pb *will_props;
  const char *username;
  const char *password;
} c5o;

/* An MQTT 5 CONNACK as read. */
typedef struct connack5 {
  bool sp;
  uint8_t reason;
  pb props;
} connack5;

/* Send an MQTT 5 CONNECT; returns tc_send's result. */
int send_connect5(tc *c, const c5o *o);
/* Read an MQTT 5 CONNACK; returns its reason code or -1 when the next
 * packet is not a CONNACK. a may be NULL. */
int read_connack5(tc *c, connack5 *a);
/* CONNECT and read the CONNACK; returns its reason code or -1. */
int connect5(tc *c, const c5o *o, connack5 *a);
/* A new MQTT 5 client, connected with the given props; asserts success.
 * *sp receives Session Present when sp is not NULL. */
tc *open5p(tb *bed, const char *id, bool clean, const pb *props, bool *sp);
/* A new MQTT 5 client with Clean Start 1 and a Session Expiry Interval. */
tc *open5(tb *bed, const char *id, uint32_t expiry);
/* Reconnect with Clean Start 0; returns the client, session present in *sp. */
tc *resume5(tb *bed, const char *id, uint32_t expiry, bool *sp);

/* Send a SUBSCRIBE with packet id pid, n filters, one option byte each,
 * and an optional Subscription Identifier (0: none), without reading the
 * SUBACK. */
void send_subscribe5n(tc *c, const char *const *filters, const uint8_t *opts, size_t n,
                      uint32_t sub_id, uint16_t pid);
/* SUBSCRIBE with n filters, one option byte each, and an optional
 * Subscription Identifier. Fills codes; returns false when no SUBACK came. */
bool subscribe5n(tc *c, const char *const *filters, const uint8_t *opts, size_t n, uint32_t sub_id,
                 uint8_t *codes);
/* One filter; returns the SUBACK reason code or -1. */
int subscribe5(tc *c, const char *filter, uint8_t opts, uint32_t sub_id);
/* UNSUBSCRIBE n filters; fills codes; returns false when no UNSUBACK came. */
bool unsubscribe5n(tc *c, const char *const *filters, size_t n, uint8_t *codes);
/* One filter; returns the UNSUBACK reason code or -1. */
int unsubscribe5(tc *c, const char *filter);

/* Send an MQTT 5 PUBLISH without handling acknowledgements; returns
 * tc_send's result. props may be NULL. */
int send_pub5(tc *c, const char *topic, const void *payload, size_t plen, uint8_t qos, bool retain,
              uint16_t pid, const pb *props);
/* Read the next packet; when it is an acknowledgement of this type, fill
 * *pid and *reason (either may be NULL) and return true. */
bool read_ack5(tc *c, uint8_t type, uint16_t *pid, uint8_t *reason);
/* The same, skipping other packets (they stay queued): for a publisher that
 * also subscribes. */
bool read_ack5_skip(tc *c, uint8_t type, uint16_t *pid, uint8_t *reason);
/* Send an acknowledgement (PUBACK, PUBREC, PUBREL, PUBCOMP) with a reason
 * code. */
void send_ack5(tc *c, uint8_t type, uint16_t pid, uint8_t reason);
/* PUBLISH with the whole acknowledgement flow; returns the reason code of
 * the PUBACK or PUBREC (0 for QoS 0), -1 when the flow broke. */
int pub5(tc *c, const char *topic, const char *payload, uint8_t qos, bool retain, const pb *props);

/* A PUBLISH as an MQTT 5 client received it (copied out of c->body). */
typedef struct rpub {
  uint8_t qos;
  bool retain, dup;
  uint16_t pid;
  char topic[256];
  size_t tlen;
  uint8_t payload[4096];
  size_t plen;
  pb props;
  uint32_t remaining;
} rpub;

/* Read the next packet; when it is a PUBLISH, copy it into *r (asserting it
 * is a valid MQTT 5 PUBLISH) and return true. */
bool read_pub5(tc *c, rpub *r);
/* Whether the received payload equals this string. */
bool payload_is(const rpub *r, const char *s);
/* Read a PUBLISH and check topic and payload. */
void expect_pub5(tc *c, rpub *r, const char *topic, const char *payload);
/* Acknowledge a received PUBLISH as a client would (PUBACK, or
 * PUBREC/PUBREL/PUBCOMP). */
void ack_pub5(tc *c, const rpub *r);

/* Read a DISCONNECT; returns its reason code or -1. Its properties go to
 * *props when not NULL. */
int read_disconnect5(tc *c, pb *props);
/* Send a DISCONNECT with a reason code and properties (props may be NULL). */
void send_disconnect5(tc *c, uint8_t reason, const pb *props);
/* Send an AUTH with a reason code and, when not NULL, Authentication Method
 * and Authentication Data. */
void send_auth5(tc *c, uint8_t reason, const char *method, const char *data);
/* Read an AUTH; returns its reason code or -1. Its properties go to *props
 * when not NULL. */
int read_auth5(tc *c, pb *props);

#endif
