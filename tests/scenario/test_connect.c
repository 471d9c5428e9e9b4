/* SPDX-License-Identifier: MIT */
/* CONNECT, CONNACK, keep-alive, DISCONNECT, takeover: broker scenarios with a
 * fake clock. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static tb *bed;

static void setup(void) {
  bed = tb_new(NULL);
}
static void teardown(void) {
  tb_del(bed);
}

TestSuite(connect, .init = setup, .fini = teardown);

Test(connect, accepts_a_valid_connect) {
  tc *c = tc_new(bed);
  bool sp = true;
  tc_connect_opts o = {.client_id = "alpha", .clean = true, .keepalive = 30};
  cr_assert(eq(int, tc_connect(c, &o, &sp), 0));
  cr_assert(not(sp));
  cr_assert(eq(int, c->connected, 1));
  cr_assert(eq(str, (char *)mqttb_conn_get_client_id(c->conn), "alpha"));
  cr_assert(eq(int, mqttb_conn_get_protocol_level(c->conn), 4));
  cr_assert(eq(int, mqttb_conn_get_keepalive(c->conn), 30));
  cr_assert(not(c->closed));
}

/* [MQTT-3.1.0-1] The first packet must be CONNECT. */
Test(connect, first_packet_not_connect_closes) {
  tc *c = tc_new(bed);
  uint8_t ping[] = {0xC0, 0x00};
  cr_assert(eq(int, tc_send(c, ping, 2), MQTTB_ERR_PROTOCOL));
  cr_assert(c->closed);
  cr_assert(tc_quiet(c));
}

/* [MQTT-3.1.0-2] A second CONNECT is a protocol violation. */
Test(connect, second_connect_closes) {
  tc *c = tc_open(bed, "twice", true);
  tc_connect_opts o = {.client_id = "twice", .clean = true};
  cr_assert(eq(int, tc_connect(c, &o, NULL), -1));
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_PROTOCOL));
}

/* [MQTT-3.1.2-2] An unsupported protocol level gets CONNACK 0x01. */
Test(connect, unsupported_level_gets_connack_1) {
  tc *c = tc_new(bed);
  /* "MQTT" level 7. */
  uint8_t pkt[] = {0x10, 0x0d, 0x00, 0x04, 'M',  'Q',  'T', 'T',
                   0x07, 0x02, 0x00, 0x3c, 0x00, 0x01, 'x'};
  tc_send(c, pkt, sizeof(pkt));
  cr_assert(tc_read(c));
  cr_assert(eq(u8, c->f.type, MQTTB_PKT_CONNACK));
  cr_assert(eq(u8, c->body[1], MQTTB_REASON_UNACCEPTABLE_PROTOCOL));
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_UNSUPPORTED_PROTOCOL));
}

Test(connect, unknown_protocol_name_closes_without_connack) {
  tc *c = tc_new(bed);
  uint8_t pkt[] = {0x10, 0x0d, 0x00, 0x04, 'M',  'Q',  'T', 'X',
                   0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 'x'};
  cr_assert(eq(int, tc_send(c, pkt, sizeof(pkt)), MQTTB_ERR_MALFORMED));
  cr_assert(tc_quiet(c));
}

/* [MQTT-3.1.2-3] The reserved flag must be zero. */
Test(connect, reserved_flag_closes) {
  tc *c = tc_new(bed);
  uint8_t pkt[] = {0x10, 0x0d, 0x00, 0x04, 'M',  'Q',  'T', 'T',
                   0x04, 0x03, 0x00, 0x3c, 0x00, 0x01, 'x'};
  cr_assert(eq(int, tc_send(c, pkt, sizeof(pkt)), MQTTB_ERR_MALFORMED));
  cr_assert(tc_quiet(c));
}

/* MQTT 3.1 reserved neither connect flag bit 0 nor the fixed-header flags
 * of CONNECT (its header had DUP, QoS and RETAIN bits, unused there): a
 * 3.1 client setting them connects. */
Test(connect, mqtt31_connect_flags_are_not_reserved) {
  static const uint8_t first[] = {0x10, 0x12, 0x1a};
  for (size_t i = 0; i < sizeof(first); i++) {
    tc *c = tc_new(bed);
    uint8_t pkt[] = {first[i],
                     0x0f,
                     0x00,
                     0x06,
                     'M',
                     'Q',
                     'I',
                     's',
                     'd',
                     'p',
                     0x03,
                     (uint8_t)(i == 0 ? 0x03 : 0x02),
                     0x00,
                     0x3c,
                     0x00,
                     0x01,
                     'a' + (uint8_t)i};
    cr_assert(eq(int, tc_send(c, pkt, sizeof(pkt)), 0), "case %zu", i);
    cr_assert(tc_read(c));
    cr_assert(eq(u8, c->f.type, MQTTB_PKT_CONNACK));
    cr_assert(eq(u8, c->body[1], 0), "case %zu refused", i);
    cr_assert(not(c->closed));
  }
  /* MQTT 3.1.1 reserves both. */
  tc *c = tc_new(bed);
  uint8_t pkt[] = {0x12, 0x0d, 0x00, 0x04, 'M',  'Q',  'T', 'T',
                   0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 'x'};
  cr_assert(eq(int, tc_send(c, pkt, sizeof(pkt)), MQTTB_ERR_MALFORMED));
  cr_assert(tc_quiet(c));
}

/* [MQTT-3.1.2-22] A password without a user name is malformed. */
Test(connect, password_without_username_closes) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = "pw", .clean = true, .password = "secret"};
  cr_assert(eq(int, tc_connect(c, &o, NULL), -1));
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_MALFORMED));
}

/* [MQTT-3.1.3-6] A zero-length id with clean session 1 gets an assigned id. */
Test(connect, empty_client_id_with_clean_session_gets_an_id) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = "", .clean = true};
  cr_assert(eq(int, tc_connect(c, &o, NULL), 0));
  const char *id = mqttb_conn_get_client_id(c->conn);
  cr_assert(not(eq(ptr, (void *)id, NULL)));
  cr_assert(eq(int, strncmp(id, "auto-", 5), 0));
  cr_assert(lt(sz, 5, strlen(id)));
  /* A second one gets a different id. */
  tc *d = tc_new(bed);
  cr_assert(eq(int, tc_connect(d, &o, NULL), 0));
  cr_assert(not(eq(str, (char *)mqttb_conn_get_client_id(d->conn), (char *)id)));
}

/* [MQTT-3.1.3-8] A zero-length id with clean session 0 gets 0x02. */
Test(connect, empty_client_id_without_clean_session_is_rejected) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = "", .clean = false};
  cr_assert(eq(int, tc_connect(c, &o, NULL), MQTTB_REASON_IDENTIFIER_REJECTED));
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_IDENTIFIER_REJECTED));
}

Test(connect, mqtt31_is_accepted_and_connack_has_no_session_present) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = "old", .clean = false, .level = 3};
  cr_assert(eq(int, tc_connect(c, &o, NULL), 0));
  cr_assert(eq(int, mqttb_conn_get_protocol_level(c->conn), 3));
  tc_drop(c);
  tc *d = tc_new(bed);
  bool sp = true;
  cr_assert(eq(int, tc_connect(d, &o, &sp), 0));
  cr_assert(not(sp), "MQTT 3.1 CONNACK byte 1 is reserved");
  /* And it works: a subscription and a publish. */
  cr_assert(eq(int, tc_subscribe(d, "x/#", 1), 1));
  cr_assert(tc_publish(d, "x/y", "hi", 0, false));
  mqttb_publish p;
  cr_assert(tc_expect_publish(d, &p));
  cr_assert(slice_eq(p.topic, "x/y"));
}

Test(connect, mqtt31_empty_or_long_client_id_is_rejected) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = "", .clean = true, .level = 3};
  cr_assert(eq(int, tc_connect(c, &o, NULL), MQTTB_REASON_IDENTIFIER_REJECTED));
  tc *d = tc_new(bed);
  tc_connect_opts o2 = {.client_id = "abcdefghijklmnopqrstuvwxyz", .clean = true, .level = 3};
  cr_assert(eq(int, tc_connect(d, &o2, NULL), MQTTB_REASON_IDENTIFIER_REJECTED));
}

Test(connect, no_connect_within_timeout_closes) {
  tc *c = tc_new(bed);
  tb_advance(bed, 9999);
  cr_assert(not(c->closed));
  tb_advance(bed, 1);
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_CONNECT_TIMEOUT));
}

Test(connect, partial_connect_does_not_beat_the_timeout) {
  tc *c = tc_new(bed);
  uint8_t pkt[] = {0x10, 0x0d, 0x00};
  tc_send(c, pkt, sizeof(pkt));
  tb_advance(bed, 10000);
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_CONNECT_TIMEOUT));
}

/* Input the embedder holds back (pacing password checks) stops the connect
 * timeout until it is fed; feeding it starts the timeout again. */
Test(connect, deferred_input_holds_the_connect_timeout) {
  tc *c = tc_new(bed);
  tb_advance(bed, 5000);
  cr_assert(eq(int, mqttb_conn_input_deferred(c->conn), MQTTB_OK));
  tb_advance(bed, 60000);
  cr_assert(not(c->closed), "closed while its input was held back");
  /* Fed at last: half a CONNECT, then nothing for the timeout. */
  uint8_t pkt[] = {0x10, 0x0d, 0x00};
  cr_assert(eq(int, tc_send(c, pkt, sizeof(pkt)), 0));
  tb_advance(bed, 9999);
  cr_assert(not(c->closed));
  tb_advance(bed, 1);
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_CONNECT_TIMEOUT));
  /* Held back and then fed a whole CONNECT: connected, and the keep-alive
   * rules from there. */
  tc *d = tc_new(bed);
  cr_assert(eq(int, mqttb_conn_input_deferred(d->conn), MQTTB_OK));
  tb_advance(bed, 30000);
  tc_connect_opts o = {.client_id = "late", .clean = true, .keepalive = 10};
  cr_assert(eq(int, tc_connect(d, &o, NULL), 0));
  /* Past CONNECT it changes nothing: 1.5 x the keep-alive still closes. */
  cr_assert(eq(int, mqttb_conn_input_deferred(d->conn), MQTTB_OK));
  tb_advance(bed, 15000);
  cr_assert(d->closed);
  cr_assert(eq(int, d->close_reason, MQTTB_ERR_KEEPALIVE_TIMEOUT));
  cr_assert(eq(int, mqttb_conn_input_deferred(NULL), MQTTB_ERR_INVALID_ARGUMENT));
}

static int refuse_bad_password(const mqttb_auth_request *req) {
  if (!req->username)
    return MQTTB_REASON_NOT_AUTHORIZED;
  if (!req->password || req->password_len != 2 || memcmp(req->password, "ok", 2) != 0)
    return MQTTB_REASON_BAD_USERNAME_OR_PASSWORD;
  return 0;
}

Test(connect, authenticate_callback_can_refuse) {
  bed->authenticate = refuse_bad_password;
  tc *a = tc_new(bed);
  tc_connect_opts o = {.client_id = "a", .clean = true, .username = "u", .password = "no"};
  cr_assert(eq(int, tc_connect(a, &o, NULL), MQTTB_REASON_BAD_USERNAME_OR_PASSWORD));
  cr_assert(a->closed);
  tc *b = tc_new(bed);
  tc_connect_opts o2 = {.client_id = "b", .clean = true};
  cr_assert(eq(int, tc_connect(b, &o2, NULL), MQTTB_REASON_NOT_AUTHORIZED));
  tc *c = tc_new(bed);
  tc_connect_opts o3 = {.client_id = "c", .clean = true, .username = "u", .password = "ok"};
  cr_assert(eq(int, tc_connect(c, &o3, NULL), 0));
}

/* [MQTT-3.1.2-24] Keep-alive is enforced at one and a half times. */
Test(connect, keepalive_expires_at_one_and_a_half_times) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = "ka", .clean = true, .keepalive = 10};
  cr_assert(eq(int, tc_connect(c, &o, NULL), 0));
  tb_advance(bed, 14999);
  cr_assert(not(c->closed));
  tb_advance(bed, 1);
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_KEEPALIVE_TIMEOUT));
}

Test(connect, pingreq_gets_pingresp_and_keeps_alive) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = "ping", .clean = true, .keepalive = 2};
  cr_assert(eq(int, tc_connect(c, &o, NULL), 0));
  uint8_t ping[] = {0xC0, 0x00};
  for (int i = 0; i < 10; i++) {
    tb_advance(bed, 2000);
    cr_assert(eq(int, tc_send(c, ping, 2), 0));
    cr_assert(tc_read(c));
    cr_assert(eq(u8, c->f.type, MQTTB_PKT_PINGRESP));
    cr_assert(eq(u32, c->f.remaining, 0));
  }
  cr_assert(not(c->closed));
  tb_advance(bed, 3000);
  cr_assert(c->closed);
}

Test(connect, keepalive_zero_never_expires) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = "forever", .clean = true, .keepalive = 0};
  cr_assert(eq(int, tc_connect(c, &o, NULL), 0));
  tb_advance(bed, 1000u * 3600u * 24u);
  cr_assert(not(c->closed));
}

Test(connect, disconnect_closes_normally) {
  tc *c = tc_open(bed, "bye", true);
  tc_disconnect(c);
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_CLIENT_DISCONNECTED));
  uint8_t ping[] = {0xC0, 0x00};
  cr_assert(eq(int, tc_send(c, ping, 2), MQTTB_ERR_INVALID_STATE));
}

/* [MQTT-3.1.4-2] A second connection with the same id takes over. */
Test(connect, takeover_closes_the_old_connection) {
  tc *old = tc_open(bed, "dup", true);
  tc *neu = tc_open(bed, "dup", true);
  cr_assert(old->closed);
  cr_assert(eq(int, old->close_reason, MQTTB_ERR_TAKEN_OVER));
  cr_assert(not(neu->closed));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.clients_connected, 1));
}

Test(connect, max_keepalive_refuses_longer_keepalive) {
  tb_del(bed);
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.max_keepalive = 60;
  bed = tb_new(&s);
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = "k", .clean = true, .keepalive = 61};
  cr_assert(eq(int, tc_connect(c, &o, NULL), MQTTB_REASON_IDENTIFIER_REJECTED));
  tc *d = tc_new(bed);
  tc_connect_opts o2 = {.client_id = "k2", .clean = true, .keepalive = 60};
  cr_assert(eq(int, tc_connect(d, &o2, NULL), 0));
}

Test(connect, max_connections_refuses_new_connection_objects) {
  tb_del(bed);
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.max_connections = 2;
  bed = tb_new(&s);
  tc_new(bed);
  tc *b = tc_new(bed);
  mqttb_conn *c;
  cr_assert(
      eq(int, mqttb_conn_new(&c, bed->broker, bed->now, NULL), MQTTB_ERR_TOO_MANY_CONNECTIONS));
  tc_del(b);
  cr_assert(eq(int, mqttb_conn_new(&c, bed->broker, bed->now, NULL), MQTTB_OK));
  mqttb_conn_del(c, bed->now);
}

Test(connect, api_rejects_bad_arguments) {
  cr_assert(eq(int, mqttb_conn_new(NULL, bed->broker, 0, NULL), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, mqttb_conn_recv(NULL, NULL, 0, 0), MQTTB_ERR_INVALID_ARGUMENT));
  mqttb_broker *b;
  cr_assert(eq(int,
               mqttb_broker_new_versioned(&b, 999, NULL, MQTTB_CALLBACKS_VERSION, NULL, NULL, NULL),
               MQTTB_ERR_VERSION));
  cr_assert(eq(int, mqttb_broker_handle_timers(NULL, 0), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(str, (char *)mqttb_strerror(MQTTB_ERR_MALFORMED), "malformed packet"));
  cr_assert(eq(str, (char *)mqttb_strerror(12345), "unknown error"));
  tc *c = tc_open(bed, "x", true);
  cr_assert(eq(int, mqttb_conn_output_ack(c->conn, 1, bed->now), MQTTB_ERR_INVALID_ARGUMENT));
}

static void assigned_id(const uint64_t key[2], char *out, size_t len) {
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.auto_id_key[0] = key[0];
  s.auto_id_key[1] = key[1];
  tb *b = tb_new(&s);
  tc *c = tc_new(b);
  tc_connect_opts o = {.client_id = "", .clean = true};
  cr_assert(eq(int, tc_connect(c, &o, NULL), 0));
  snprintf(out, len, "%s", mqttb_conn_get_client_id(c->conn));
  tb_del(b);
}

/* Assigned identifiers are a keyed hash: the same key gives the same ids
 * (deterministic), another key gives others (unguessable with a secret). */
Test(connect, assigned_identifiers_depend_on_the_key) {
  const uint64_t k1[2] = {1, 2}, k2[2] = {3, 4};
  char a[64], b[64], c[64];
  assigned_id(k1, a, sizeof(a));
  assigned_id(k1, b, sizeof(b));
  assigned_id(k2, c, sizeof(c));
  cr_assert(eq(str, a, b));
  cr_assert(not(eq(str, a, c)));
  cr_assert(eq(sz, strlen(a), strlen("auto-") + 16));
}

static int busy(const mqttb_auth_request *req) {
  (void)req;
  return MQTTB_REASON_SERVER_UNAVAILABLE;
}

/* A refusal for unavailability closes with its own reason, so the embedder
 * can tell it from a credentials problem. */
Test(connect, unavailable_refusal_has_its_own_close_reason) {
  bed->authenticate = busy;
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = "c", .clean = true};
  cr_assert(eq(int, tc_connect(c, &o, NULL), MQTTB_REASON_SERVER_UNAVAILABLE));
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_SERVER_UNAVAILABLE));
}
