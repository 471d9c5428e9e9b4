/* SPDX-License-Identifier: MIT */
/*
 * codec_client: the client side of the MQTT wire format, for MQTT 3.1,
 * 3.1.1 and 5: encoding CONNECT, PUBLISH, SUBSCRIBE and UNSUBSCRIBE, and
 * decoding CONNACK and SUBACK. The broker itself never sends these; they
 * serve the test clients and, later, bridges (the client side of MQTT).
 * Acknowledgements, PINGREQ and DISCONNECT are the same in both directions
 * and come from codec.h. Stateless, like codec.
 */
#ifndef MQTTB_CODEC_CLIENT_H
#define MQTTB_CODEC_CLIENT_H

#include "codec.h"

/* CONNECT: the flags mirror the struct exactly (so tests can build bad
 * packets); an empty protocol_name means the one the level implies. */
size_t mqttb_connect_size(const mqttb_connect *c); /* whole packet */
size_t mqttb_encode_connect(uint8_t *out, const mqttb_connect *c);

/* Decode a CONNACK body (MQTT 3.x): exactly 2 bytes, reserved bits of
 * byte 0 zero. */
int mqttb_decode_connack(const uint8_t *body, size_t len, mqttb_connack *a);

/* PUBLISH with the fields of *p (p->v5: the MQTT 5 layout with p->props). */
size_t mqttb_publish_size(const mqttb_publish *p); /* whole packet */
size_t mqttb_encode_publish(uint8_t *out, const mqttb_publish *p);

/* SUBSCRIBE with n filters and their options bytes (opts NULL: all 0). */
size_t mqttb_subscribe_size(const mqttb_slice *filters, size_t n);
size_t mqttb_encode_subscribe(uint8_t *out, uint16_t packet_id, const mqttb_slice *filters,
                              const uint8_t *opts, size_t n);

/* UNSUBSCRIBE with n filters. */
size_t mqttb_unsubscribe_size(const mqttb_slice *filters, size_t n);
size_t mqttb_encode_unsubscribe(uint8_t *out, uint16_t packet_id, const mqttb_slice *filters,
                                size_t n);

/* Decode a SUBACK body (MQTT 3.x): codes points into body; each must be
 * 0, 1, 2 or 0x80. */
int mqttb_decode_suback(const uint8_t *body, size_t len, uint16_t *packet_id, mqttb_slice *codes);

#endif /* MQTTB_CODEC_CLIENT_H */
