/* SPDX-License-Identifier: MIT */
/* MQTT 5 as the broker implements it: CONNACK properties, session and
 * message expiry, will delay, flow control, maximum packet size, topic
 * aliases, subscription options and identifiers, shared subscriptions,
 * request/response properties, enhanced authentication, redirection,
 * reason codes and mixed protocol versions. Broker scenarios with a fake
 * clock; the fake clients are the MQTT 5 helpers of tests/support/v5.h,
 * which encode packets with the codec (or by hand where the codec has no
 * client-side encoder). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "v5.h"

static tb *bed;

/* ---------------------------------------------------------------------- */
/* The suite's bed (the MQTT 5 client helpers are in tests/support/v5.h)  */
/* ---------------------------------------------------------------------- */

static mqttb_stats stats(void) {
  mqttb_stats s;
  cr_assert(eq(int, mqttb_broker_get_stats(bed->broker, &s), 0));
  return s;
}

static mqttb_settings settings_default(void) {
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.sys_interval_ms = 0;
  return s;
}

/* Replace the bed with one using these settings. */
static void use_settings(const mqttb_settings *s) {
  tb_del(bed);
  bed = tb_new(s);
}

/* ---------------------------------------------------------------------- */
/* A scripted authenticate hook                                            */
/* ---------------------------------------------------------------------- */

#define AU_MAX 8
static struct {
  tc *c; /* the client being authenticated (for conn calls) */
  int calls;
  int ret[AU_MAX];               /* what each call returns */
  const char *send_data[AU_MAX]; /* mqttb_conn_set_auth_data before returning */
  const char *server_ref;        /* mqttb_conn_set_server_reference */
  int step[AU_MAX];
  int reauth[AU_MAX];
  bool has_method[AU_MAX];
  char method[AU_MAX][64];
  bool has_data[AU_MAX];
  char data[AU_MAX][64];
  char client_id[AU_MAX][64];
} au;

static int scripted_auth(const mqttb_auth_request *req) {
  int i = au.calls++;
  cr_assert(lt(int, i, AU_MAX), "too many authenticate calls");
  au.step[i] = req->step;
  au.reauth[i] = req->reauthenticate;
  au.has_method[i] = req->auth_method != NULL;
  if (req->auth_method)
    snprintf(au.method[i], sizeof(au.method[i]), "%.*s", (int)req->auth_method_len,
             req->auth_method);
  au.has_data[i] = req->auth_data != NULL;
  if (req->auth_data)
    snprintf(au.data[i], sizeof(au.data[i]), "%.*s", (int)req->auth_data_len,
             (const char *)req->auth_data);
  snprintf(au.client_id[i], sizeof(au.client_id[i]), "%.*s", (int)req->client_id_len,
           req->client_id ? req->client_id : "");
  if (au.send_data[i])
    cr_assert(eq(int,
                 mqttb_conn_set_auth_data(au.c->conn, (const uint8_t *)au.send_data[i],
                                          strlen(au.send_data[i])),
                 0));
  if (au.server_ref)
    cr_assert(eq(int, mqttb_conn_set_server_reference(au.c->conn, au.server_ref), 0));
  return au.ret[i];
}

static void setup(void) {
  bed = tb_new(NULL);
  memset(&au, 0, sizeof(au));
}
static void teardown(void) {
  tb_del(bed);
  bed = NULL;
}

TestSuite(v5, .init = setup, .fini = teardown);

/* ====================================================================== */
/* 1. CONNACK properties                                                   */
/* ====================================================================== */

/* [MQTT-3.1.3-6], [MQTT-3.2.2-16]: an empty Client Identifier is replaced by
 * one the server assigns and returns as Assigned Client Identifier. */
Test(v5, connack_assigned_client_identifier_for_empty_id) {
  tc *c = tc_new(bed);
  c5o o = {.clean = true};
  connack5 a;
  cr_assert(eq(int, connect5(c, &o, &a), 0));
  mqttb_prop p;
  cr_assert(pb_find(&a.props, MQTTB_PROP_ASSIGNED_CLIENT_ID, &p), "no Assigned Client Identifier");
  const char *id = mqttb_conn_get_client_id(c->conn);
  cr_assert(not(eq(ptr, (void *)id, NULL)));
  cr_assert(lt(sz, 0, strlen(id)));
  cr_assert(slice_eq(p.a, id), "assigned %.*s, connection has %s", (int)p.a.len,
            (const char *)p.a.ptr, id);
  /* With Clean Start 0 too (MQTT 5 allows it). */
  tc *d = tc_new(bed);
  c5o o2 = {.clean = false};
  cr_assert(eq(int, connect5(d, &o2, &a), 0));
  cr_assert(pb_find(&a.props, MQTTB_PROP_ASSIGNED_CLIENT_ID, &p));
  cr_assert(not(slice_eq(p.a, id)), "two clients got the same identifier");
  /* A client that names itself gets none. */
  tc *e = tc_new(bed);
  c5o o3 = {.id = "named", .clean = true};
  cr_assert(eq(int, connect5(e, &o3, &a), 0));
  cr_assert(not(pb_find(&a.props, MQTTB_PROP_ASSIGNED_CLIENT_ID, &p)));
}

/* [MQTT-3.2.2-17]: Topic Alias Maximum announced (default 10); Receive
 * Maximum announced as max_inflight_messages (default 20), as Mosquitto
 * does; properties whose value is the protocol default are left out. */
Test(v5, connack_default_properties) {
  tc *c = tc_new(bed);
  c5o o = {.id = "c", .clean = true};
  connack5 a;
  cr_assert(eq(int, connect5(c, &o, &a), 0));
  cr_assert(not(a.sp));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_TOPIC_ALIAS_MAXIMUM), 10));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_RECEIVE_MAXIMUM), 20));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_MAXIMUM_QOS), -1));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_RETAIN_AVAILABLE), -1));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_MAXIMUM_PACKET_SIZE), -1));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_WILDCARD_SUB_AVAILABLE), -1));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_SUB_ID_AVAILABLE), -1));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_SHARED_SUB_AVAILABLE), -1));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_SERVER_KEEP_ALIVE), -1));
  mqttb_prop p;
  cr_assert(not(pb_find(&a.props, MQTTB_PROP_RESPONSE_INFO, &p)));
  cr_assert(eq(int, mqttb_conn_get_protocol_level(c->conn), 5));
}

/* [MQTT-3.2.2-9], [MQTT-3.2.2-10] (Maximum QoS), Retain Available,
 * Maximum Packet Size, Receive Maximum, Wildcard/Subscription Identifier/
 * Shared Subscription Available: announced when the settings restrict them. */
Test(v5, connack_announces_restricted_settings) {
  mqttb_settings st = settings_default();
  st.receive_maximum = 5;
  st.max_qos = 1;
  st.retain_available = 0;
  st.max_packet_size = 1000;
  st.wildcard_subscriptions = 0;
  st.subscription_identifiers = 0;
  st.shared_subscriptions = 0;
  st.topic_alias_maximum = 3;
  use_settings(&st);
  tc *c = tc_new(bed);
  c5o o = {.id = "c", .clean = true};
  connack5 a;
  cr_assert(eq(int, connect5(c, &o, &a), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_RECEIVE_MAXIMUM), 5));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_MAXIMUM_QOS), 1));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_RETAIN_AVAILABLE), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_MAXIMUM_PACKET_SIZE), 1000));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_WILDCARD_SUB_AVAILABLE), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_SUB_ID_AVAILABLE), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_SHARED_SUB_AVAILABLE), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_TOPIC_ALIAS_MAXIMUM), 3));
}

/* [MQTT-3.2.2-21]: with max_keepalive the server tells the client the
 * keep-alive to use (Server Keep Alive) instead of refusing it. */
Test(v5, connack_server_keep_alive_when_client_asks_for_more) {
  mqttb_settings st = settings_default();
  st.max_keepalive = 30;
  use_settings(&st);
  connack5 a;
  tc *c = tc_new(bed);
  c5o o = {.id = "more", .clean = true, .keepalive = 60};
  cr_assert(eq(int, connect5(c, &o, &a), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_SERVER_KEEP_ALIVE), 30));
  cr_assert(eq(int, mqttb_conn_get_keepalive(c->conn), 30));

  tc *z = tc_new(bed);
  c5o oz = {.id = "zero", .clean = true, .keepalive = 0};
  cr_assert(eq(int, connect5(z, &oz, &a), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_SERVER_KEEP_ALIVE), 30));

  tc *l = tc_new(bed);
  c5o ol = {.id = "less", .clean = true, .keepalive = 10};
  cr_assert(eq(int, connect5(l, &ol, &a), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_SERVER_KEEP_ALIVE), -1));
  cr_assert(eq(int, mqttb_conn_get_keepalive(l->conn), 10));
}

/* [MQTT-3.1.2-24] with [MQTT-3.2.2-21]: the Server Keep Alive is the one
 * enforced. */
Test(v5, server_keep_alive_is_enforced) {
  mqttb_settings st = settings_default();
  st.max_keepalive = 30;
  use_settings(&st);
  tc *c = tc_new(bed);
  c5o o = {.id = "c", .clean = true, .keepalive = 600};
  cr_assert(eq(int, connect5(c, &o, NULL), 0));
  tb_advance(bed, 44000);
  cr_assert(not(c->closed), "closed before 1.5 x the Server Keep Alive");
  tb_advance(bed, 2000);
  cr_assert(c->closed, "not closed after 1.5 x the Server Keep Alive");
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_KEEPALIVE_TIMEOUT));
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_KEEP_ALIVE_TIMEOUT));
}

/* Response Information is sent when configured and the client sends
 * Request Response Information 1, and only then. */
Test(v5, connack_response_information_when_requested) {
  mqttb_settings st = settings_default();
  st.response_information = "responses/";
  use_settings(&st);
  connack5 a;
  pb req = {.n = 0};
  pb_byte(&req, MQTTB_PROP_REQUEST_RESPONSE_INFO, 1);
  tc *c = tc_new(bed);
  c5o o = {.id = "asks", .clean = true, .props = &req};
  cr_assert(eq(int, connect5(c, &o, &a), 0));
  cr_assert(pb_str_is(&a.props, MQTTB_PROP_RESPONSE_INFO, "responses/"));

  pb no = {.n = 0};
  pb_byte(&no, MQTTB_PROP_REQUEST_RESPONSE_INFO, 0);
  tc *d = tc_new(bed);
  c5o o2 = {.id = "declines", .clean = true, .props = &no};
  cr_assert(eq(int, connect5(d, &o2, &a), 0));
  mqttb_prop p;
  cr_assert(not(pb_find(&a.props, MQTTB_PROP_RESPONSE_INFO, &p)));

  tc *e = tc_new(bed);
  c5o o3 = {.id = "silent", .clean = true};
  cr_assert(eq(int, connect5(e, &o3, &a), 0));
  cr_assert(not(pb_find(&a.props, MQTTB_PROP_RESPONSE_INFO, &p)));
}

Test(v5, connack_no_response_information_when_not_configured) {
  pb req = {.n = 0};
  pb_byte(&req, MQTTB_PROP_REQUEST_RESPONSE_INFO, 1);
  tc *c = tc_new(bed);
  c5o o = {.id = "asks", .clean = true, .props = &req};
  connack5 a;
  cr_assert(eq(int, connect5(c, &o, &a), 0));
  mqttb_prop p;
  cr_assert(not(pb_find(&a.props, MQTTB_PROP_RESPONSE_INFO, &p)));
}

/* ====================================================================== */
/* 2. Session Expiry Interval                                              */
/* ====================================================================== */

/* [MQTT-3.1.2-23]: the session outlives the connection for the interval;
 * [MQTT-3.2.2-2]: a resumed session is reported present; queued QoS 1
 * messages are delivered. */
Test(v5, session_persists_within_expiry_interval) {
  tc *s = open5(bed, "s", 60);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  tc_disconnect(s);
  cr_assert(s->closed);
  cr_assert(eq(int, s->close_reason, MQTTB_ERR_CLIENT_DISCONNECTED));
  cr_assert(eq(u64, stats().clients_disconnected, 1));
  tc *p = open5(bed, "p", 0);
  cr_assert(eq(int, pub5(p, "t", "queued", 1, false, NULL), 0),
            "an offline persistent subscriber still matches");
  tb_advance(bed, 59000);
  bool sp = false;
  tc *s2 = resume5(bed, "s", 60, &sp);
  cr_assert(sp, "session present must be 1 within the expiry interval");
  rpub r;
  expect_pub5(s2, &r, "t", "queued");
  cr_assert(eq(u8, r.qos, 1));
  ack_pub5(s2, &r);
  cr_assert(tc_quiet(s2));
}

/* The session is discarded once the interval passed (transport loss counts
 * like DISCONNECT). */
Test(v5, session_is_gone_after_expiry_interval) {
  tc *s = open5(bed, "s", 10);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  tc_drop(s);
  tc *p = open5(bed, "p", 0);
  cr_assert(eq(int, pub5(p, "t", "lost", 1, false, NULL), 0));
  tb_advance(bed, 10001);
  cr_assert(eq(u64, stats().clients_disconnected, 0));
  cr_assert(eq(u64, stats().subscription_count, 0));
  bool sp = true;
  tc *s2 = resume5(bed, "s", 10, &sp);
  cr_assert(not(sp), "session present after the expiry interval");
  cr_assert(tc_quiet(s2), "a message of the expired session was delivered");
  cr_assert(eq(int, pub5(p, "t", "x", 1, false, NULL), MQTTB_REASON_NO_MATCHING_SUBSCRIBERS));
}

/* Session Expiry Interval 0xFFFFFFFF: the session does not expire. */
Test(v5, session_expiry_max_never_expires) {
  tc *s = open5(bed, "s", UINT32_MAX);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  tc_drop(s);
  tb_advance(bed, 30ull * 24 * 3600 * 1000);
  bool sp = false;
  resume5(bed, "s", 0, &sp);
  cr_assert(sp);
}

/* [MQTT-3.1.2-23]: absent or 0, the session ends when the connection
 * closes. */
Test(v5, session_expiry_zero_ends_session_at_disconnect) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  tc_disconnect(s);
  cr_assert(eq(u64, stats().clients_disconnected, 0));
  cr_assert(eq(u64, stats().subscription_count, 0));
  bool sp = true;
  resume5(bed, "s", 60, &sp);
  cr_assert(not(sp));
}

/* [MQTT-3.14.2-2]: DISCONNECT may change the interval: to 0 ends the
 * session now. */
Test(v5, disconnect_can_shorten_session_expiry_to_zero) {
  tc *s = open5(bed, "s", 60);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  pb dp = expiry_props(0);
  pb_u32(&dp, MQTTB_PROP_SESSION_EXPIRY, 0);
  send_disconnect5(s, 0, &dp);
  cr_assert(s->closed);
  cr_assert(eq(int, s->close_reason, MQTTB_ERR_CLIENT_DISCONNECTED));
  bool sp = true;
  resume5(bed, "s", 60, &sp);
  cr_assert(not(sp), "DISCONNECT with Session Expiry 0 did not end the session");
}

/* DISCONNECT may lengthen a non-zero interval. */
Test(v5, disconnect_can_lengthen_session_expiry) {
  tc *s = open5(bed, "s", 10);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  pb dp = expiry_props(100);
  send_disconnect5(s, 0, &dp);
  cr_assert(s->closed);
  tb_advance(bed, 50000);
  bool sp = false;
  resume5(bed, "s", 0, &sp);
  cr_assert(sp, "the interval given in DISCONNECT was not used");
}

/* [MQTT-3.14.2-2]: a Session Expiry Interval in DISCONNECT when CONNECT
 * had 0 is a Protocol Error: DISCONNECT 0x82 and close. */
Test(v5, disconnect_setting_expiry_after_zero_is_protocol_error) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  pb dp = expiry_props(30);
  send_disconnect5(s, 0, &dp);
  cr_assert(s->closed);
  cr_assert(eq(int, s->close_reason, MQTTB_ERR_PROTOCOL));
  cr_assert(eq(int, read_disconnect5(s, NULL), MQTTB_REASON_PROTOCOL_ERROR));
  cr_assert(tc_quiet(s));
  bool sp = true;
  resume5(bed, "s", 0, &sp);
  cr_assert(not(sp), "the session outlived a CONNECT interval of 0");
}

/* The embedder may run timers late ("at or after" the deadline): a client
 * that reconnects after its session's interval passed, before the timer
 * ran, must still find the session gone ([MQTT-3.1.2-23]; the connection
 * carries the time). */
Test(v5, session_expired_before_timers_ran_is_not_resumed) {
  tc *s = open5(bed, "s", 10);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  tc_disconnect(s);
  bed->now += 11000; /* the clock moves; mqttb_broker_handle_timers not called yet */
  bool sp = true;
  resume5(bed, "s", 10, &sp);
  cr_assert(not(sp), "a session whose expiry interval had passed was resumed");
}

/* [MQTT-3.1.2-4]: Clean Start 1 discards an existing session. */
Test(v5, clean_start_discards_session) {
  tc *s = open5(bed, "s", 60);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  tc_disconnect(s);
  tc *p = open5(bed, "p", 0);
  cr_assert(eq(int, pub5(p, "t", "old", 1, false, NULL), 0));
  tc *s2 = tc_new(bed);
  pb props = expiry_props(60);
  c5o o = {.id = "s", .clean = true, .props = &props};
  connack5 a;
  cr_assert(eq(int, connect5(s2, &o, &a), 0));
  cr_assert(not(a.sp), "[MQTT-3.2.2-2] session present with Clean Start 1");
  cr_assert(tc_quiet(s2), "a message of the discarded session was delivered");
  cr_assert(eq(int, pub5(p, "t", "new", 1, false, NULL), MQTTB_REASON_NO_MATCHING_SUBSCRIBERS),
            "the subscription survived Clean Start");
}

/* ====================================================================== */
/* 3. Message Expiry Interval                                              */
/* ====================================================================== */

/* [MQTT-3.3.2-5]: a message whose interval passed before delivery started
 * is not delivered. */
Test(v5, expired_queued_message_is_not_delivered) {
  tc *s = open5(bed, "s", 600);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  tc_disconnect(s);
  tc *p = open5(bed, "p", 0);
  pb short_exp = {.n = 0}, long_exp = {.n = 0};
  pb_u32(&short_exp, MQTTB_PROP_MESSAGE_EXPIRY, 5);
  pb_u32(&long_exp, MQTTB_PROP_MESSAGE_EXPIRY, 100);
  cr_assert(eq(int, pub5(p, "t", "short", 1, false, &short_exp), 0));
  cr_assert(eq(int, pub5(p, "t", "long", 1, false, &long_exp), 0));
  uint64_t dropped = stats().publish_dropped;
  tb_advance(bed, 6000);
  bool sp = false;
  tc *s2 = resume5(bed, "s", 600, &sp);
  cr_assert(sp);
  rpub r;
  expect_pub5(s2, &r, "t", "long");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_MESSAGE_EXPIRY), 94));
  ack_pub5(s2, &r);
  cr_assert(tc_quiet(s2), "the expired message was delivered");
  cr_assert(lt(u64, dropped, stats().publish_dropped));
}

/* [MQTT-3.3.2-6]: the forwarded interval is what is left of it. */
Test(v5, delivered_message_carries_remaining_expiry) {
  tc *s = open5(bed, "s", 600);
  cr_assert(eq(int, subscribe5(s, "t", 1, 0), 1));
  tc_disconnect(s);
  tc *p = open5(bed, "p", 0);
  pb exp = {.n = 0};
  pb_u32(&exp, MQTTB_PROP_MESSAGE_EXPIRY, 10);
  cr_assert(eq(int, pub5(p, "t", "m", 1, false, &exp), 0));
  tb_advance(bed, 4000);
  tc *s2 = resume5(bed, "s", 600, NULL);
  rpub r;
  expect_pub5(s2, &r, "t", "m");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_MESSAGE_EXPIRY), 6));
  cr_assert(eq(sz, pb_count(&r.props, MQTTB_PROP_MESSAGE_EXPIRY), 1));
}

/* Delivered at once: the whole interval; without one: none. */
Test(v5, online_delivery_keeps_full_expiry_and_none_without) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "t", 0, 0), 0));
  tc *p = open5(bed, "p", 0);
  pb exp = {.n = 0};
  pb_u32(&exp, MQTTB_PROP_MESSAGE_EXPIRY, 10);
  pub5(p, "t", "with", 0, false, &exp);
  pub5(p, "t", "without", 0, false, NULL);
  rpub r;
  expect_pub5(s, &r, "t", "with");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_MESSAGE_EXPIRY), 10));
  expect_pub5(s, &r, "t", "without");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_MESSAGE_EXPIRY), -1));
}

/* Retained messages age too: the remaining interval on a subscribe, and
 * none once expired. */
Test(v5, retained_message_expiry) {
  tc *p = open5(bed, "p", 0);
  pb e10 = {.n = 0}, e2 = {.n = 0};
  pb_u32(&e10, MQTTB_PROP_MESSAGE_EXPIRY, 10);
  pb_u32(&e2, MQTTB_PROP_MESSAGE_EXPIRY, 2);
  pub5(p, "r/long", "L", 0, true, &e10);
  pub5(p, "r/short", "S", 0, true, &e2);
  tb_advance(bed, 4000);
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "r/#", 0, 0), 0));
  rpub r;
  expect_pub5(s, &r, "r/long", "L");
  cr_assert(r.retain);
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_MESSAGE_EXPIRY), 6));
  cr_assert(tc_quiet(s), "an expired retained message was delivered");
}

/* ====================================================================== */
/* 4. Will Delay Interval and will properties                              */
/* ====================================================================== */

static tc *open_with_will(const char *id, uint32_t session_expiry, uint32_t will_delay,
                          const pb *extra_will_props) {
  pb props = expiry_props(session_expiry);
  pb wp = {.n = 0};
  if (extra_will_props)
    wp = *extra_will_props;
  if (will_delay)
    pb_u32(&wp, MQTTB_PROP_WILL_DELAY, will_delay);
  tc *c = tc_new(bed);
  c5o o = {.id = id,
           .clean = true,
           .props = &props,
           .will_topic = "will/t",
           .will_payload = "gone",
           .will_qos = 1,
           .will_props = &wp};
  cr_assert(eq(int, connect5(c, &o, NULL), 0));
  return c;
}

static tc *will_watcher(void) {
  tc *w = open5(bed, "watcher", 0);
  cr_assert(eq(int, subscribe5(w, "will/t", 1, 0), 1));
  return w;
}

static void expect_will(tc *w) {
  rpub r;
  expect_pub5(w, &r, "will/t", "gone");
  ack_pub5(w, &r);
}

/* [MQTT-3.1.3-9]: the will waits for the Will Delay Interval. */
Test(v5, will_delay_publishes_after_delay) {
  tc *w = will_watcher();
  tc *c = open_with_will("c", 60, 5, NULL);
  tc_drop(c);
  cr_assert(tc_quiet(w), "will published before its delay");
  tb_advance(bed, 4000);
  cr_assert(tc_quiet(w), "will published before its delay");
  tb_advance(bed, 1500);
  expect_will(w);
  cr_assert(tc_quiet(w));
}

/* [MQTT-3.1.3-9]: not sent when the client reconnects within the delay. */
Test(v5, will_delay_cancelled_by_reconnect) {
  tc *w = will_watcher();
  tc *c = open_with_will("c", 60, 5, NULL);
  tc_drop(c);
  tb_advance(bed, 2000);
  bool sp = false;
  tc *c2 = resume5(bed, "c", 60, &sp);
  cr_assert(sp);
  tb_advance(bed, 10000);
  cr_assert(tc_quiet(w), "the will was published although the client came back");
  /* The old will is gone, not merely postponed: a normal DISCONNECT of the
   * new connection (which has no will) publishes nothing later. */
  tc_disconnect(c2);
  tb_advance(bed, 10000);
  cr_assert(tc_quiet(w), "the first connection's will outlived the reconnect");
}

/* The will goes out at once when the session ends at once (Session Expiry
 * 0), whatever the delay. */
Test(v5, will_published_at_once_when_session_expiry_zero) {
  tc *w = will_watcher();
  tc *c = open_with_will("c", 0, 5, NULL);
  tc_drop(c);
  expect_will(w);
}

/* The will goes out when the session ends, if that comes before the
 * delay. */
Test(v5, will_published_when_session_expires_before_delay) {
  tc *w = will_watcher();
  tc *c = open_with_will("c", 5, 100, NULL);
  tc_drop(c);
  tb_advance(bed, 4000);
  cr_assert(tc_quiet(w));
  tb_advance(bed, 1500);
  expect_will(w);
}

/* [MQTT-3.14.4-3] with reason 0x04: DISCONNECT with Will Message. */
Test(v5, disconnect_with_will_message_publishes_will) {
  tc *w = will_watcher();
  tc *c = open_with_will("c", 0, 0, NULL);
  send_disconnect5(c, MQTTB_REASON_DISCONNECT_WITH_WILL, NULL);
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_CLIENT_DISCONNECTED));
  expect_will(w);
}

/* DISCONNECT 0x04 with a Will Delay Interval: the will still waits for the
 * delay. */
Test(v5, disconnect_with_will_message_respects_will_delay) {
  tc *w = will_watcher();
  tc *c = open_with_will("c", 60, 5, NULL);
  send_disconnect5(c, MQTTB_REASON_DISCONNECT_WITH_WILL, NULL);
  cr_assert(tc_quiet(w), "will published before its delay");
  tb_advance(bed, 5500);
  expect_will(w);
}

/* A will whose delay passed before the timers ran is due: a reconnect that
 * comes after the delay does not cancel it ([MQTT-3.1.3-9] only spares a
 * will when the client is back before the delay passed). */
Test(v5, will_due_before_timers_ran_is_published) {
  tc *w = will_watcher();
  tc *c = open_with_will("c", 60, 5, NULL);
  tc_drop(c);
  bed->now += 6000; /* past the delay; mqttb_broker_handle_timers not called yet */
  resume5(bed, "c", 60, NULL);
  tb_advance(bed, 0);
  rpub r;
  cr_assert(read_pub5(w, &r), "a will due before the reconnect was never published");
  cr_assert(eq(str, r.topic, "will/t"));
}

/* [MQTT-3.14.4-3]: a normal DISCONNECT discards the will (both the short
 * form and explicit reason 0x00). */
Test(v5, normal_disconnect_discards_will) {
  tc *w = will_watcher();
  tc *c = open_with_will("c", 0, 0, NULL);
  tc_disconnect(c);
  tc *d = open_with_will("d", 30, 0, NULL);
  send_disconnect5(d, 0, NULL);
  tb_advance(bed, 31000);
  cr_assert(tc_quiet(w), "a will was published after a normal DISCONNECT");
}

/* Will properties are forwarded like PUBLISH properties; the Will Delay
 * Interval is not, and Message Expiry is counted from publication. */
Test(v5, will_properties_are_forwarded) {
  tc *w = will_watcher();
  pb wp = {.n = 0};
  pb_byte(&wp, MQTTB_PROP_PAYLOAD_FORMAT, 1);
  pb_str(&wp, MQTTB_PROP_CONTENT_TYPE, "text/plain");
  pb_str(&wp, MQTTB_PROP_RESPONSE_TOPIC, "answer/here");
  pb_str(&wp, MQTTB_PROP_CORRELATION_DATA, "cd-1");
  pb_pair(&wp, "reason", "crash");
  pb_u32(&wp, MQTTB_PROP_MESSAGE_EXPIRY, 30);
  tc *c = open_with_will("c", 60, 2, &wp);
  tc_drop(c);
  tb_advance(bed, 2500);
  rpub r;
  expect_pub5(w, &r, "will/t", "gone");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_PAYLOAD_FORMAT), 1));
  cr_assert(pb_str_is(&r.props, MQTTB_PROP_CONTENT_TYPE, "text/plain"));
  cr_assert(pb_str_is(&r.props, MQTTB_PROP_RESPONSE_TOPIC, "answer/here"));
  cr_assert(pb_str_is(&r.props, MQTTB_PROP_CORRELATION_DATA, "cd-1"));
  mqttb_prop up;
  cr_assert(pb_find(&r.props, MQTTB_PROP_USER_PROPERTY, &up));
  cr_assert(slice_eq(up.a, "reason") && slice_eq(up.b, "crash"));
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_MESSAGE_EXPIRY), 30));
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_WILL_DELAY), -1));
}

/* ====================================================================== */
/* 5. Receive Maximum                                                      */
/* ====================================================================== */

/* [MQTT-3.3.4-9]: no more unacknowledged QoS 1/2 PUBLISH than the client's
 * Receive Maximum. */
Test(v5, broker_respects_client_receive_maximum) {
  pb props = {.n = 0};
  pb_u16(&props, MQTTB_PROP_RECEIVE_MAXIMUM, 2);
  tc *s = open5p(bed, "s", true, &props, NULL);
  cr_assert(eq(int, subscribe5(s, "rm", 2, 0), 2));
  tc *p = open5(bed, "p", 0);
  cr_assert(eq(int, pub5(p, "rm", "1", 1, false, NULL), 0));
  cr_assert(eq(int, pub5(p, "rm", "2", 2, false, NULL), 0));
  cr_assert(eq(int, pub5(p, "rm", "3", 1, false, NULL), 0));
  cr_assert(eq(int, pub5(p, "rm", "4", 1, false, NULL), 0));
  rpub r1, r2, r3, r4;
  expect_pub5(s, &r1, "rm", "1");
  expect_pub5(s, &r2, "rm", "2");
  cr_assert(tc_quiet(s), "more than Receive Maximum messages in flight");
  ack_pub5(s, &r1);
  expect_pub5(s, &r3, "rm", "3");
  cr_assert(tc_quiet(s), "more than Receive Maximum messages in flight");
  /* QoS 2 holds its slot until PUBCOMP. */
  send_ack5(s, MQTTB_PKT_PUBREC, r2.pid, 0);
  uint16_t pid;
  cr_assert(read_ack5(s, MQTTB_PKT_PUBREL, &pid, NULL) && pid == r2.pid);
  cr_assert(tc_quiet(s), "a QoS 2 slot was freed before PUBCOMP");
  send_ack5(s, MQTTB_PKT_PUBCOMP, r2.pid, 0);
  expect_pub5(s, &r4, "rm", "4");
  ack_pub5(s, &r3);
  ack_pub5(s, &r4);
  cr_assert(tc_quiet(s));
}

/* [MQTT-3.3.4-7], [MQTT-3.3.4-8]: more unacknowledged QoS 2 PUBLISH than the
 * broker's Receive Maximum: DISCONNECT 0x93. */
Test(v5, broker_receive_maximum_exceeded_disconnects) {
  mqttb_settings st = settings_default();
  st.receive_maximum = 2;
  use_settings(&st);
  tc *p = open5(bed, "p", 0);
  uint8_t reason;
  send_pub5(p, "x", "1", 1, 2, false, 1, NULL);
  cr_assert(read_ack5(p, MQTTB_PKT_PUBREC, NULL, &reason));
  send_pub5(p, "x", "2", 1, 2, false, 2, NULL);
  cr_assert(read_ack5(p, MQTTB_PKT_PUBREC, NULL, &reason));
  cr_assert(not(p->closed));
  send_pub5(p, "x", "3", 1, 2, false, 3, NULL);
  cr_assert(p->closed, "a third unreleased QoS 2 PUBLISH was accepted");
  cr_assert(eq(int, p->close_reason, MQTTB_ERR_PROTOCOL));
  cr_assert(eq(int, read_disconnect5(p, NULL), MQTTB_REASON_RECEIVE_MAXIMUM_EXCEEDED));
}

/* Receive Maximum follows max_inflight_messages unless set: announced in
 * CONNACK and enforced; with max_inflight_messages 0 none is announced. */
Test(v5, receive_maximum_follows_max_inflight_messages) {
  mqttb_settings st = settings_default();
  st.max_inflight_messages = 3;
  use_settings(&st);
  tc *p = tc_new(bed);
  c5o o = {.id = "p", .clean = true};
  connack5 a;
  cr_assert(eq(int, connect5(p, &o, &a), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_RECEIVE_MAXIMUM), 3));
  for (uint16_t i = 1; i <= 3; i++) {
    send_pub5(p, "x", "q", 1, 2, false, i, NULL);
    cr_assert(read_ack5(p, MQTTB_PKT_PUBREC, NULL, NULL));
  }
  send_pub5(p, "x", "q", 1, 2, false, 4, NULL);
  cr_assert(p->closed, "a fourth unreleased QoS 2 PUBLISH was accepted");
  cr_assert(eq(int, read_disconnect5(p, NULL), MQTTB_REASON_RECEIVE_MAXIMUM_EXCEEDED));

  st.max_inflight_messages = 0;
  use_settings(&st);
  tc *q = tc_new(bed);
  cr_assert(eq(int, connect5(q, &o, &a), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_RECEIVE_MAXIMUM), -1));
}

/* [MQTT-3.3.2-14]: a Response Topic is a topic name: wildcards are a
 * protocol error, in a PUBLISH (DISCONNECT 0x82) and in a will (CONNACK
 * 0x82). */
Test(v5, response_topic_with_wildcards_is_a_protocol_error) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "#", 0, 0), 0));
  static const char *const bad[] = {"reply/+", "reply/#", "#", ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    tc *p = open5(bed, "p", 0);
    pb props = {.n = 0};
    pb_str(&props, MQTTB_PROP_RESPONSE_TOPIC, bad[i]);
    send_pub5(p, "req", "x", 1, 0, false, 0, &props);
    cr_assert(p->closed, "Response Topic '%s' accepted", bad[i]);
    cr_assert(eq(int, p->close_reason, MQTTB_ERR_PROTOCOL));
    cr_assert(eq(int, read_disconnect5(p, NULL), MQTTB_REASON_PROTOCOL_ERROR));
  }
  cr_assert(tc_quiet(s), "a refused request was delivered");
  pb will = {.n = 0};
  pb_str(&will, MQTTB_PROP_RESPONSE_TOPIC, "a/+/b");
  tc *w = tc_new(bed);
  c5o o = {.id = "w", .clean = true, .will_topic = "w", .will_payload = "x", .will_props = &will};
  cr_assert(eq(int, connect5(w, &o, NULL), MQTTB_REASON_PROTOCOL_ERROR));
  cr_assert(w->closed);
  /* A proper one is forwarded. */
  tc *p = open5(bed, "p2", 0);
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_RESPONSE_TOPIC, "reply/p2");
  cr_assert(eq(int, pub5(p, "req", "x", 0, false, &props), 0));
  rpub r;
  expect_pub5(s, &r, "req", "x");
  cr_assert(pb_str_is(&r.props, MQTTB_PROP_RESPONSE_TOPIC, "reply/p2"));
}

/* The wrong acknowledgement for a packet id in flight is a protocol
 * error: PUBREC or PUBCOMP for a QoS 1 message, PUBACK or an early PUBCOMP
 * for a QoS 2 one. An acknowledgement for an id not in flight is still
 * ignored. */
Test(v5, wrong_acknowledgement_for_a_message_in_flight_is_a_protocol_error) {
  static const struct {
    uint8_t qos, ack;
  } cases[] = {
      {1, MQTTB_PKT_PUBREC}, {1, MQTTB_PKT_PUBCOMP}, {2, MQTTB_PKT_PUBACK}, {2, MQTTB_PKT_PUBCOMP}};
  tc *p = open5(bed, "p", 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    tc *s = open5(bed, "s", 0);
    cr_assert(eq(int, subscribe5(s, "t", 2, 0), 2));
    cr_assert(eq(int, pub5(p, "t", "m", cases[i].qos, false, NULL), 0));
    rpub r;
    expect_pub5(s, &r, "t", "m");
    send_ack5(s, cases[i].ack, (uint16_t)(r.pid + 1000), 0); /* not in flight: ignored */
    cr_assert(not(s->closed));
    if (cases[i].ack == MQTTB_PKT_PUBREC) /* answered, so the client can finish */
      cr_assert(read_ack5(s, MQTTB_PKT_PUBREL, NULL, NULL));
    send_ack5(s, cases[i].ack, r.pid, 0);
    cr_assert(s->closed, "case %zu: ack type %u for QoS %u accepted", i, cases[i].ack,
              cases[i].qos);
    cr_assert(eq(int, s->close_reason, MQTTB_ERR_PROTOCOL));
    cr_assert(eq(int, read_disconnect5(s, NULL), MQTTB_REASON_PROTOCOL_ERROR));
  }
  /* The right ones still work, and a duplicate PUBREC gets PUBREL again. */
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "t", 2, 0), 2));
  cr_assert(eq(int, pub5(p, "t", "m", 2, false, NULL), 0));
  rpub r;
  expect_pub5(s, &r, "t", "m");
  send_ack5(s, MQTTB_PKT_PUBREC, r.pid, 0);
  cr_assert(read_ack5(s, MQTTB_PKT_PUBREL, NULL, NULL));
  send_ack5(s, MQTTB_PKT_PUBREC, r.pid, 0);
  cr_assert(read_ack5(s, MQTTB_PKT_PUBREL, NULL, NULL));
  send_ack5(s, MQTTB_PKT_PUBCOMP, r.pid, 0);
  cr_assert(not(s->closed));
}

/* PUBREL frees a slot of the broker's Receive Maximum; a re-sent PUBLISH
 * with an id already held does not take another. */
Test(v5, broker_receive_maximum_slot_freed_by_pubrel) {
  mqttb_settings st = settings_default();
  st.receive_maximum = 2;
  use_settings(&st);
  tc *p = open5(bed, "p", 0);
  send_pub5(p, "x", "1", 1, 2, false, 1, NULL);
  cr_assert(read_ack5(p, MQTTB_PKT_PUBREC, NULL, NULL));
  send_pub5(p, "x", "2", 1, 2, false, 2, NULL);
  cr_assert(read_ack5(p, MQTTB_PKT_PUBREC, NULL, NULL));
  /* A duplicate of id 2. */
  send_pub5(p, "x", "2", 1, 2, false, 2, NULL);
  cr_assert(read_ack5(p, MQTTB_PKT_PUBREC, NULL, NULL));
  send_ack5(p, MQTTB_PKT_PUBREL, 1, 0);
  cr_assert(read_ack5(p, MQTTB_PKT_PUBCOMP, NULL, NULL));
  send_pub5(p, "x", "3", 1, 2, false, 3, NULL);
  cr_assert(read_ack5(p, MQTTB_PKT_PUBREC, NULL, NULL));
  cr_assert(not(p->closed));
}

/* ====================================================================== */
/* 6. Maximum Packet Size                                                  */
/* ====================================================================== */

/* [MQTT-3.1.2-24], [MQTT-3.1.2-25]: nothing larger than the client's
 * Maximum Packet Size; such messages are dropped for that client only. */
Test(v5, message_larger_than_client_maximum_is_dropped) {
  pb props = {.n = 0};
  pb_u32(&props, MQTTB_PROP_MAXIMUM_PACKET_SIZE, 64);
  tc *small = open5p(bed, "small", true, &props, NULL);
  cr_assert(eq(int, subscribe5(small, "big/#", 1, 0), 1));
  tc *any = open5(bed, "any", 0);
  cr_assert(eq(int, subscribe5(any, "big/#", 1, 0), 1));
  tc *p = open5(bed, "p", 0);
  char large[101];
  memset(large, 'x', 100);
  large[100] = '\0';
  uint64_t d0 = stats().publish_dropped;
  pub5(p, "big/a", large, 0, false, NULL);
  cr_assert(tc_quiet(small), "a QoS 0 PUBLISH above the client's maximum was sent");
  cr_assert(eq(u64, stats().publish_dropped, d0 + 1));
  rpub r;
  expect_pub5(any, &r, "big/a", large);
  cr_assert(eq(int, pub5(p, "big/b", large, 1, false, NULL), 0));
  cr_assert(tc_quiet(small), "a QoS 1 PUBLISH above the client's maximum was sent");
  cr_assert(eq(u64, stats().publish_dropped, d0 + 2));
  expect_pub5(any, &r, "big/b", large);
  ack_pub5(any, &r);
  /* Small ones still arrive, and the whole packet fits. */
  cr_assert(eq(int, pub5(p, "big/c", "tiny", 1, false, NULL), 0));
  cr_assert(read_pub5(small, &r));
  cr_assert(payload_is(&r, "tiny"));
  cr_assert(le(u32, r.remaining + 2, 64));
  ack_pub5(small, &r);
  cr_assert(eq(u64, stats().publish_dropped, d0 + 2));
}

/* [MQTT-3.2.2-15] (broker's maximum): a larger packet closes the
 * connection, with DISCONNECT 0x95. */
Test(v5, packet_larger_than_broker_maximum_closes) {
  mqttb_settings st = settings_default();
  st.max_packet_size = 128;
  use_settings(&st);
  tc *p = tc_new(bed);
  c5o o = {.id = "p", .clean = true};
  connack5 a;
  cr_assert(eq(int, connect5(p, &o, &a), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_MAXIMUM_PACKET_SIZE), 128));
  char payload[201];
  memset(payload, 'y', 200);
  payload[200] = '\0';
  int rv = send_pub5(p, "t", payload, strlen(payload), 0, false, 0, NULL);
  cr_assert(eq(int, rv, MQTTB_ERR_PACKET_TOO_LARGE));
  cr_assert(p->closed);
  cr_assert(eq(int, p->close_reason, MQTTB_ERR_PACKET_TOO_LARGE));
  cr_assert(eq(int, read_disconnect5(p, NULL), MQTTB_REASON_PACKET_TOO_LARGE));
}

/* ====================================================================== */
/* 7. Topic aliases                                                        */
/* ====================================================================== */

static pb alias_props(uint16_t alias) {
  pb p = {.n = 0};
  pb_u16(&p, MQTTB_PROP_TOPIC_ALIAS, alias);
  return p;
}

/* [MQTT-3.3.2-12]: an alias with a topic sets the mapping; an alias with an
 * empty topic uses it; a new topic for the same alias replaces it. */
Test(v5, inbound_topic_alias_sets_and_uses) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "a/b", 0, 0), 0));
  cr_assert(eq(int, subscribe5(s, "c/d", 0, 0), 0));
  tc *p = open5(bed, "p", 0);
  pb a1 = alias_props(1), a10 = alias_props(10);
  rpub r;
  send_pub5(p, "a/b", "1", 1, 0, false, 0, &a1);
  expect_pub5(s, &r, "a/b", "1");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_TOPIC_ALIAS), -1),
            "the inbound alias leaked to a subscriber");
  send_pub5(p, "", "2", 1, 0, false, 0, &a1);
  expect_pub5(s, &r, "a/b", "2");
  send_pub5(p, "c/d", "3", 1, 0, false, 0, &a1);
  expect_pub5(s, &r, "c/d", "3");
  send_pub5(p, "", "4", 1, 0, false, 0, &a1);
  expect_pub5(s, &r, "c/d", "4");
  /* The highest alias the broker announced (10) works. */
  send_pub5(p, "a/b", "5", 1, 0, false, 0, &a10);
  send_pub5(p, "", "6", 1, 1, false, v5_next_pid(), &a10);
  uint8_t reason;
  cr_assert(read_ack5(p, MQTTB_PKT_PUBACK, NULL, &reason));
  cr_assert(eq(u8, reason, 0));
  expect_pub5(s, &r, "a/b", "5");
  expect_pub5(s, &r, "a/b", "6");
  cr_assert(not(p->closed));
}

/* [MQTT-3.3.2-9], [MQTT-3.3.2-10]: an alias above the broker's Topic Alias
 * Maximum: DISCONNECT 0x94. */
Test(v5, inbound_topic_alias_above_maximum_disconnects) {
  tc *p = open5(bed, "p", 0);
  pb a11 = alias_props(11);
  send_pub5(p, "a", "x", 1, 0, false, 0, &a11);
  cr_assert(p->closed);
  cr_assert(eq(int, p->close_reason, MQTTB_ERR_PROTOCOL));
  cr_assert(eq(int, read_disconnect5(p, NULL), MQTTB_REASON_TOPIC_ALIAS_INVALID));
}

/* [MQTT-3.3.2-7]: alias mappings belong to one network connection; a
 * reconnect starts with none. */
Test(v5, inbound_topic_aliases_do_not_survive_reconnect) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "a/b", 0, 0), 0));
  tc *p = open5(bed, "p", 60);
  pb a1 = alias_props(1);
  send_pub5(p, "a/b", "1", 1, 0, false, 0, &a1);
  rpub r;
  expect_pub5(s, &r, "a/b", "1");
  tc_disconnect(p);
  tc *p2 = resume5(bed, "p", 60, NULL);
  send_pub5(p2, "", "2", 1, 0, false, 0, &a1);
  cr_assert(p2->closed, "an alias of the previous connection was accepted");
  cr_assert(eq(int, read_disconnect5(p2, NULL), MQTTB_REASON_PROTOCOL_ERROR));
  cr_assert(tc_quiet(s));
}

/* topic_alias_maximum 0: none announced, any alias is invalid. */
Test(v5, inbound_topic_aliases_disabled) {
  mqttb_settings st = settings_default();
  st.topic_alias_maximum = 0;
  use_settings(&st);
  tc *p = tc_new(bed);
  c5o o = {.id = "p", .clean = true};
  connack5 a;
  cr_assert(eq(int, connect5(p, &o, &a), 0));
  cr_assert(eq(long, pb_int(&a.props, MQTTB_PROP_TOPIC_ALIAS_MAXIMUM), -1));
  pb a1 = alias_props(1);
  send_pub5(p, "a", "x", 1, 0, false, 0, &a1);
  cr_assert(p->closed);
  cr_assert(eq(int, read_disconnect5(p, NULL), MQTTB_REASON_TOPIC_ALIAS_INVALID));
}

/* An empty topic with an alias never set: Protocol Error. */
Test(v5, inbound_unknown_topic_alias_is_protocol_error) {
  tc *p = open5(bed, "p", 0);
  pb a3 = alias_props(3);
  send_pub5(p, "", "x", 1, 0, false, 0, &a3);
  cr_assert(p->closed);
  cr_assert(eq(int, p->close_reason, MQTTB_ERR_PROTOCOL));
  cr_assert(eq(int, read_disconnect5(p, NULL), MQTTB_REASON_PROTOCOL_ERROR));
}

/* MQTT 5 3.3.2.1: a zero-length Topic Name without a Topic Alias is a
 * Protocol Error (0x82). */
Test(v5, empty_topic_without_alias_is_protocol_error) {
  tc *p = open5(bed, "p", 0);
  send_pub5(p, "", "x", 1, 1, false, 5, NULL);
  cr_assert(p->closed);
  cr_assert(eq(int, read_disconnect5(p, NULL), MQTTB_REASON_PROTOCOL_ERROR));
}

/* Alias 0 is not permitted [MQTT-3.3.2-8]. */
Test(v5, inbound_topic_alias_zero_is_protocol_error) {
  tc *p = open5(bed, "p", 0);
  pb a0 = alias_props(0);
  send_pub5(p, "a", "x", 1, 0, false, 0, &a0);
  cr_assert(p->closed);
  cr_assert(eq(int, read_disconnect5(p, NULL), MQTTB_REASON_PROTOCOL_ERROR));
}

/* Outbound: with the client's Topic Alias Maximum the broker may send an
 * alias; the first delivery carries topic and alias, later ones an empty
 * topic and the same alias. [MQTT-3.3.2-11]: never above that maximum. */
Test(v5, outbound_topic_alias_used_when_client_allows) {
  pb props = {.n = 0};
  pb_u16(&props, MQTTB_PROP_TOPIC_ALIAS_MAXIMUM, 5);
  tc *s = open5p(bed, "s", true, &props, NULL);
  cr_assert(eq(int, subscribe5(s, "x/y", 0, 0), 0));
  cr_assert(eq(int, subscribe5(s, "q/1", 1, 0), 1));
  tc *p = open5(bed, "p", 0);
  pub5(p, "x/y", "1", 0, false, NULL);
  pub5(p, "x/y", "2", 0, false, NULL);
  pub5(p, "x/y", "3", 0, false, NULL);
  rpub r;
  expect_pub5(s, &r, "x/y", "1");
  long a = pb_int(&r.props, MQTTB_PROP_TOPIC_ALIAS);
  cr_assert(ge(long, a, 1), "no alias on the first delivery");
  cr_assert(le(long, a, 5), "alias above the client's maximum");
  for (int i = 2; i <= 3; i++) {
    cr_assert(read_pub5(s, &r));
    cr_assert(eq(sz, r.tlen, 0), "topic sent again although the alias is known");
    cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_TOPIC_ALIAS), a));
    cr_assert(eq(int, r.payload[0], '0' + i));
  }
  /* QoS 1, another topic: another alias. */
  cr_assert(eq(int, pub5(p, "q/1", "a", 1, false, NULL), 0));
  cr_assert(eq(int, pub5(p, "q/1", "b", 1, false, NULL), 0));
  expect_pub5(s, &r, "q/1", "a");
  long b = pb_int(&r.props, MQTTB_PROP_TOPIC_ALIAS);
  cr_assert(ge(long, b, 1));
  cr_assert(le(long, b, 5));
  cr_assert(ne(long, b, a));
  ack_pub5(s, &r);
  cr_assert(read_pub5(s, &r));
  cr_assert(eq(sz, r.tlen, 0));
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_TOPIC_ALIAS), b));
  cr_assert(payload_is(&r, "b"));
  ack_pub5(s, &r);
}

/* Once the client's aliases are used up topics go in full. */
Test(v5, outbound_topic_aliases_limited_by_client_maximum) {
  pb props = {.n = 0};
  pb_u16(&props, MQTTB_PROP_TOPIC_ALIAS_MAXIMUM, 1);
  tc *s = open5p(bed, "s", true, &props, NULL);
  cr_assert(eq(int, subscribe5(s, "#", 0, 0), 0));
  tc *p = open5(bed, "p", 0);
  pub5(p, "a", "1", 0, false, NULL);
  pub5(p, "b", "2", 0, false, NULL);
  pub5(p, "a", "3", 0, false, NULL);
  pub5(p, "b", "4", 0, false, NULL);
  rpub r;
  expect_pub5(s, &r, "a", "1");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_TOPIC_ALIAS), 1));
  expect_pub5(s, &r, "b", "2");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_TOPIC_ALIAS), -1));
  cr_assert(read_pub5(s, &r));
  cr_assert(eq(sz, r.tlen, 0));
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_TOPIC_ALIAS), 1));
  cr_assert(payload_is(&r, "3"));
  expect_pub5(s, &r, "b", "4");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_TOPIC_ALIAS), -1));
}

/* [MQTT-3.3.2-11]: a client that announced no Topic Alias Maximum gets no
 * alias. */
Test(v5, client_without_topic_alias_maximum_gets_full_topics) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "t/x", 0, 0), 0));
  tc *p = open5(bed, "p", 0);
  for (int i = 0; i < 3; i++)
    pub5(p, "t/x", "m", 0, false, NULL);
  for (int i = 0; i < 3; i++) {
    rpub r;
    expect_pub5(s, &r, "t/x", "m");
    cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_TOPIC_ALIAS), -1));
  }
}

/* ====================================================================== */
/* 8. Subscription options                                                 */
/* ====================================================================== */

/* [MQTT-3.8.3-3]: No Local: not sent back to the publishing connection. */
Test(v5, no_local_suppresses_own_messages) {
  tc *me = open5(bed, "me", 0);
  tc *other = open5(bed, "other", 0);
  cr_assert(eq(int, subscribe5(me, "chat", OPT_NL | 1, 0), 1));
  cr_assert(eq(int, subscribe5(other, "chat", 1, 0), 1));
  cr_assert(eq(int, pub5(me, "chat", "mine", 1, false, NULL), 0));
  cr_assert(tc_quiet(me), "No Local: own message came back");
  rpub r;
  expect_pub5(other, &r, "chat", "mine");
  ack_pub5(other, &r);
  cr_assert(eq(int, pub5(other, "chat", "theirs", 1, false, NULL), 0));
  expect_pub5(me, &r, "chat", "theirs");
  ack_pub5(me, &r);
  /* The only matching subscription is the publisher's own No Local one. */
  tc_disconnect(other);
  cr_assert(
      eq(int, pub5(me, "chat", "alone", 1, false, NULL), MQTTB_REASON_NO_MATCHING_SUBSCRIBERS));
  cr_assert(tc_quiet(me));
}

/* [MQTT-3.3.1-12], [MQTT-3.3.1-13]: Retain As Published keeps the RETAIN
 * flag of forwarded messages; without it the flag is 0. */
Test(v5, retain_as_published_keeps_retain_flag) {
  tc *rap = open5(bed, "rap", 0);
  tc *plain = open5(bed, "plain", 0);
  cr_assert(eq(int, subscribe5(rap, "r", OPT_RAP, 0), 0));
  cr_assert(eq(int, subscribe5(plain, "r", 0, 0), 0));
  tc *p = open5(bed, "p", 0);
  pub5(p, "r", "v", 0, true, NULL);
  rpub r;
  expect_pub5(rap, &r, "r", "v");
  cr_assert(r.retain, "Retain As Published: RETAIN cleared");
  expect_pub5(plain, &r, "r", "v");
  cr_assert(not(r.retain), "RETAIN kept without Retain As Published");
  pub5(p, "r", "n", 0, false, NULL);
  expect_pub5(rap, &r, "r", "n");
  cr_assert(not(r.retain));
}

/* [MQTT-3.3.1-9], Retain Handling 0: retained messages on every
 * subscribe. */
Test(v5, retain_handling_0_sends_on_every_subscribe) {
  tc *p = open5(bed, "p", 0);
  pub5(p, "k", "kept", 0, true, NULL);
  tc *s = open5(bed, "s", 0);
  rpub r;
  cr_assert(eq(int, subscribe5(s, "k", 0, 0), 0));
  expect_pub5(s, &r, "k", "kept");
  cr_assert(r.retain);
  cr_assert(eq(int, subscribe5(s, "k", 0, 0), 0));
  expect_pub5(s, &r, "k", "kept");
  cr_assert(r.retain);
}

/* [MQTT-3.3.1-10], Retain Handling 1: only when the subscription is new. */
Test(v5, retain_handling_1_sends_only_for_new_subscription) {
  tc *p = open5(bed, "p", 0);
  pub5(p, "k", "kept", 0, true, NULL);
  tc *s = open5(bed, "s", 0);
  rpub r;
  cr_assert(eq(int, subscribe5(s, "k", OPT_RH1, 0), 0));
  expect_pub5(s, &r, "k", "kept");
  cr_assert(eq(int, subscribe5(s, "k", OPT_RH1, 0), 0));
  cr_assert(tc_quiet(s), "Retain Handling 1 re-sent for an existing subscription");
}

/* [MQTT-3.3.1-11], Retain Handling 2: never. */
Test(v5, retain_handling_2_never_sends_retained) {
  tc *p = open5(bed, "p", 0);
  pub5(p, "k", "kept", 0, true, NULL);
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "k", OPT_RH2, 0), 0));
  cr_assert(tc_quiet(s), "Retain Handling 2 sent a retained message");
  /* The subscription itself works. */
  pub5(p, "k", "live", 0, false, NULL);
  rpub r;
  expect_pub5(s, &r, "k", "live");
}

/* [MQTT-3.3.4-3], [MQTT-3.3.4-4], [MQTT-3.3.4-5]: overlapping subscriptions
 * give one delivery carrying every matching Subscription Identifier. */
Test(v5, subscription_identifiers_of_overlapping_subscriptions) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "a/+", 0, 1), 0));
  cr_assert(eq(int, subscribe5(s, "a/#", 1, 2), 1));
  cr_assert(eq(int, subscribe5(s, "a/b", 0, 300), 0));
  cr_assert(eq(int, subscribe5(s, "a/nomatch", 0, 4), 0));
  cr_assert(eq(int, subscribe5(s, "a/c", 0, 0), 0)); /* no identifier */
  tc *p = open5(bed, "p", 0);
  cr_assert(eq(int, pub5(p, "a/b", "m", 1, false, NULL), 0));
  rpub r;
  expect_pub5(s, &r, "a/b", "m");
  cr_assert(eq(u8, r.qos, 1), "the highest granted QoS");
  cr_assert(eq(sz, pb_count(&r.props, MQTTB_PROP_SUBSCRIPTION_ID), 3));
  bool seen[4] = {false};
  size_t pos = 0;
  mqttb_prop q;
  mqttb_slice ps = pb_slice(&r.props);
  while (mqttb_props_next(&ps, &pos, &q)) {
    if (q.id != MQTTB_PROP_SUBSCRIPTION_ID)
      continue;
    if (q.value == 1)
      seen[1] = true;
    else if (q.value == 2)
      seen[2] = true;
    else if (q.value == 300)
      seen[3] = true;
    else
      cr_assert(false, "unexpected subscription identifier %u", q.value);
  }
  cr_assert(seen[1] && seen[2] && seen[3]);
  ack_pub5(s, &r);
  cr_assert(tc_quiet(s), "overlapping subscriptions gave more than one delivery");
  /* a/c: a/+ (1), a/# (2) and a/c (none). */
  pub5(p, "a/c", "n", 0, false, NULL);
  expect_pub5(s, &r, "a/c", "n");
  cr_assert(eq(sz, pb_count(&r.props, MQTTB_PROP_SUBSCRIPTION_ID), 2));
  cr_assert(tc_quiet(s));
}

/* A retained message sent on subscribe carries the new subscription's
 * identifier. */
Test(v5, subscription_identifier_on_retained_message_at_subscribe) {
  tc *p = open5(bed, "p", 0);
  pub5(p, "ret/x", "r", 0, true, NULL);
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "ret/+", 0, 7), 0));
  rpub r;
  expect_pub5(s, &r, "ret/x", "r");
  cr_assert(r.retain);
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_SUBSCRIPTION_ID), 7));
}

/* [MQTT-3.8.4-3]: re-subscribing replaces the subscription, identifier
 * included. */
Test(v5, resubscribe_replaces_subscription_identifier) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "t", 0, 5), 0));
  cr_assert(eq(int, subscribe5(s, "t", 0, 9), 0));
  tc *p = open5(bed, "p", 0);
  pub5(p, "t", "a", 0, false, NULL);
  rpub r;
  expect_pub5(s, &r, "t", "a");
  cr_assert(eq(sz, pb_count(&r.props, MQTTB_PROP_SUBSCRIPTION_ID), 1));
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_SUBSCRIPTION_ID), 9));
  cr_assert(eq(int, subscribe5(s, "t", 0, 0), 0));
  pub5(p, "t", "b", 0, false, NULL);
  expect_pub5(s, &r, "t", "b");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_SUBSCRIPTION_ID), -1));
}

/* [MQTT-3.8.3-5]: reserved option bits set or Retain Handling 3: malformed,
 * DISCONNECT 0x81. */
Test(v5, subscribe_reserved_option_bits_are_malformed) {
  tc *a = open5(bed, "a", 0);
  cr_assert(eq(int, subscribe5(a, "t", 0x40, 0), -1));
  cr_assert(a->closed);
  cr_assert(eq(int, a->close_reason, MQTTB_ERR_MALFORMED));
  cr_assert(eq(int, read_disconnect5(a, NULL), MQTTB_REASON_MALFORMED_PACKET));
  tc *b = open5(bed, "b", 0);
  cr_assert(eq(int, subscribe5(b, "t", 0x30, 0), -1));
  cr_assert(b->closed);
  cr_assert(eq(int, read_disconnect5(b, NULL), MQTTB_REASON_MALFORMED_PACKET));
}

/* ====================================================================== */
/* 9. Shared subscriptions                                                 */
/* ====================================================================== */

static int drain_count(tc *c, char *seen, size_t seen_len) {
  int n = 0;
  rpub r;
  while (read_pub5(c, &r)) {
    cr_assert(eq(str, r.topic, "job"));
    cr_assert(eq(sz, r.plen, 1));
    size_t idx = (size_t)(r.payload[0] - '0');
    cr_assert(lt(sz, idx, seen_len));
    cr_assert(not(seen[idx]), "message %zu delivered twice", idx);
    seen[idx] = 1;
    ack_pub5(c, &r);
    n++;
  }
  return n;
}

/* MQTT 5 4.8.2: each message goes to one member of the group (this broker:
 * round robin). */
Test(v5, shared_subscription_round_robin) {
  tc *m[3];
  for (int i = 0; i < 3; i++) {
    char id[8];
    snprintf(id, sizeof(id), "m%d", i);
    m[i] = open5(bed, id, 0);
    cr_assert(eq(int, subscribe5(m[i], "$share/g/job", 0, 0), 0));
  }
  tc *p = open5(bed, "p", 0);
  for (int i = 0; i < 6; i++) {
    char msg[2] = {(char)('0' + i), 0};
    pub5(p, "job", msg, 0, false, NULL);
  }
  char seen[6] = {0};
  for (int i = 0; i < 3; i++)
    cr_assert(eq(int, drain_count(m[i], seen, 6), 2), "member %d did not get 2 of 6", i);
  for (int i = 0; i < 6; i++)
    cr_assert(seen[i], "message %d was not delivered", i);
}

/* MQTT 5 4.8.2: retained messages are not sent when a Session first joins
 * a shared subscription. */
Test(v5, shared_subscription_gets_no_retained_messages) {
  tc *p = open5(bed, "p", 0);
  pub5(p, "job", "0", 0, true, NULL);
  tc *m = open5(bed, "m", 0);
  cr_assert(eq(int, subscribe5(m, "$share/g/job", 0, 0), 0));
  cr_assert(tc_quiet(m), "a retained message was sent for a shared subscription");
}

/* A non-shared subscriber gets its own copy beside the group's one. */
Test(v5, non_shared_subscriber_gets_its_own_copy) {
  tc *m1 = open5(bed, "m1", 0);
  tc *m2 = open5(bed, "m2", 0);
  tc *solo = open5(bed, "solo", 0);
  cr_assert(eq(int, subscribe5(m1, "$share/g/job", 0, 0), 0));
  cr_assert(eq(int, subscribe5(m2, "$share/g/job", 0, 0), 0));
  cr_assert(eq(int, subscribe5(solo, "job", 0, 0), 0));
  /* Another group gets its own copy too. */
  tc *h = open5(bed, "h", 0);
  cr_assert(eq(int, subscribe5(h, "$share/h/job", 0, 0), 0));
  tc *p = open5(bed, "p", 0);
  for (int i = 0; i < 4; i++) {
    char msg[2] = {(char)('0' + i), 0};
    pub5(p, "job", msg, 0, false, NULL);
  }
  char seen_g[4] = {0}, seen_solo[4] = {0}, seen_h[4] = {0};
  int g = drain_count(m1, seen_g, 4) + drain_count(m2, seen_g, 4);
  cr_assert(eq(int, g, 4));
  cr_assert(eq(int, drain_count(solo, seen_solo, 4), 4));
  cr_assert(eq(int, drain_count(h, seen_h, 4), 4));
}

/* When a member's session ends with an unacknowledged QoS 1 message from
 * the group, the message goes to another member. */
Test(v5, unacknowledged_shared_message_goes_to_another_member) {
  tc *m1 = open5(bed, "m1", 0);
  tc *m2 = open5(bed, "m2", 0);
  cr_assert(eq(int, subscribe5(m1, "$share/g/job", 1, 0), 1));
  cr_assert(eq(int, subscribe5(m2, "$share/g/job", 1, 0), 1));
  tc *p = open5(bed, "p", 0);
  cr_assert(eq(int, pub5(p, "job", "7", 1, false, NULL), 0));
  rpub r;
  tc *got = NULL, *other = NULL;
  if (read_pub5(m1, &r)) {
    got = m1;
    other = m2;
  } else {
    cr_assert(read_pub5(m2, &r), "no member got the message");
    got = m2;
    other = m1;
  }
  cr_assert(payload_is(&r, "7"));
  cr_assert(tc_quiet(other));
  tc_drop(got); /* no PUBACK; Session Expiry 0 ends the session */
  rpub r2;
  cr_assert(read_pub5(other, &r2), "the unacknowledged message was lost");
  cr_assert(eq(str, r2.topic, "job"));
  cr_assert(payload_is(&r2, "7"));
  cr_assert(eq(u8, r2.qos, 1));
  ack_pub5(other, &r2);
  cr_assert(tc_quiet(other));
}

/* [MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol Error. */
Test(v5, no_local_on_shared_subscription_is_protocol_error) {
  tc *m = open5(bed, "m", 0);
  cr_assert(eq(int, subscribe5(m, "$share/g/job", OPT_NL, 0), -1));
  cr_assert(m->closed);
  cr_assert(eq(int, m->close_reason, MQTTB_ERR_PROTOCOL));
  cr_assert(eq(int, read_disconnect5(m, NULL), MQTTB_REASON_PROTOCOL_ERROR));
}

/* [MQTT-4.8.2-1], [MQTT-4.8.2-2]: a Share Name of at least one character,
 * without wildcards, followed by '/' and a filter; else 0x8F. */
Test(v5, invalid_share_names_get_topic_filter_invalid) {
  tc *m = open5(bed, "m", 0);
  const char *f[] = {"$share//x", "$share/+/x", "$share/g", "$share/g/", "$share/ok/x"};
  uint8_t o[] = {0, 0, 0, 0, 1};
  uint8_t codes[5];
  cr_assert(subscribe5n(m, f, o, 5, 0, codes));
  for (int i = 0; i < 4; i++)
    cr_assert(eq(u8, codes[i], MQTTB_REASON_TOPIC_FILTER_INVALID), "%s got %#x", f[i], codes[i]);
  cr_assert(eq(u8, codes[4], 1));
  cr_assert(not(m->closed));
  cr_assert(eq(int, unsubscribe5(m, "$share/ok/x"), 0));
}

/* shared_subscriptions 0: SUBACK 0x9E. */
Test(v5, shared_subscriptions_unavailable) {
  mqttb_settings st = settings_default();
  st.shared_subscriptions = 0;
  use_settings(&st);
  tc *m = open5(bed, "m", 0);
  cr_assert(eq(int, subscribe5(m, "$share/g/job", 0, 0), MQTTB_REASON_SHARED_SUBS_NOT_SUPPORTED));
}

/* ====================================================================== */
/* 10. Request / response and other forwarded properties                   */
/* ====================================================================== */

/* [MQTT-3.3.2-15], [MQTT-3.3.2-16]: Response Topic and Correlation Data
 * unchanged. */
Test(v5, response_topic_and_correlation_data_forwarded) {
  tc *responder = open5(bed, "responder", 0);
  tc *requester = open5(bed, "requester", 0);
  cr_assert(eq(int, subscribe5(responder, "svc/req", 1, 0), 1));
  cr_assert(eq(int, subscribe5(requester, "svc/resp/requester", 1, 0), 1));
  static const uint8_t cd[] = {0x00, 0x01, 0xFF, 0xFE, 0x80};
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_RESPONSE_TOPIC, "svc/resp/requester");
  pb_bin(&props, MQTTB_PROP_CORRELATION_DATA, cd, sizeof(cd));
  cr_assert(eq(int, pub5(requester, "svc/req", "question", 1, false, &props), 0));
  rpub r;
  expect_pub5(responder, &r, "svc/req", "question");
  mqttb_prop q;
  cr_assert(pb_find(&r.props, MQTTB_PROP_RESPONSE_TOPIC, &q));
  char rt[64];
  snprintf(rt, sizeof(rt), "%.*s", (int)q.a.len, (const char *)q.a.ptr);
  cr_assert(eq(str, rt, "svc/resp/requester"));
  cr_assert(pb_find(&r.props, MQTTB_PROP_CORRELATION_DATA, &q));
  cr_assert(eq(sz, q.a.len, sizeof(cd)));
  cr_assert(eq(int, memcmp(q.a.ptr, cd, sizeof(cd)), 0));
  ack_pub5(responder, &r);
  /* The responder answers on the Response Topic with the data. */
  pb ans = {.n = 0};
  pb_bin(&ans, MQTTB_PROP_CORRELATION_DATA, cd, sizeof(cd));
  cr_assert(eq(int, pub5(responder, rt, "answer", 1, false, &ans), 0));
  expect_pub5(requester, &r, "svc/resp/requester", "answer");
  cr_assert(pb_find(&r.props, MQTTB_PROP_CORRELATION_DATA, &q));
  cr_assert(eq(int, memcmp(q.a.ptr, cd, sizeof(cd)), 0));
  ack_pub5(requester, &r);
}

/* [MQTT-3.3.2-17], [MQTT-3.3.2-18]: User Properties forwarded unchanged, in
 * order (repeated names included). */
Test(v5, user_properties_forwarded_in_order) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "u", 0, 0), 0));
  tc *p = open5(bed, "p", 0);
  pb props = {.n = 0};
  pb_pair(&props, "a", "1");
  pb_pair(&props, "b", "2");
  pb_pair(&props, "a", "3");
  pb_pair(&props, "", "");
  pub5(p, "u", "m", 0, false, &props);
  rpub r;
  expect_pub5(s, &r, "u", "m");
  const char *want[4][2] = {{"a", "1"}, {"b", "2"}, {"a", "3"}, {"", ""}};
  size_t pos = 0, i = 0;
  mqttb_prop q;
  mqttb_slice ps = pb_slice(&r.props);
  while (mqttb_props_next(&ps, &pos, &q)) {
    if (q.id != MQTTB_PROP_USER_PROPERTY)
      continue;
    cr_assert(lt(sz, i, 4));
    cr_assert(slice_eq(q.a, want[i][0]) && slice_eq(q.b, want[i][1]),
              "user property %zu is %.*s=%.*s", i, (int)q.a.len, (const char *)q.a.ptr,
              (int)q.b.len, (const char *)q.b.ptr);
    i++;
  }
  cr_assert(eq(sz, i, 4));
}

/* [MQTT-3.3.2-20], [MQTT-3.3.2-4]: Content Type and Payload Format
 * Indicator forwarded unchanged (also with a large, referenced payload). */
Test(v5, content_type_and_payload_format_forwarded) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "ct", 1, 0), 1));
  tc *p = open5(bed, "p", 0);
  pb props = {.n = 0};
  pb_byte(&props, MQTTB_PROP_PAYLOAD_FORMAT, 1);
  pb_str(&props, MQTTB_PROP_CONTENT_TYPE, "application/json");
  cr_assert(eq(int, pub5(p, "ct", "{\"a\":1}", 1, false, &props), 0));
  rpub r;
  expect_pub5(s, &r, "ct", "{\"a\":1}");
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_PAYLOAD_FORMAT), 1));
  cr_assert(pb_str_is(&r.props, MQTTB_PROP_CONTENT_TYPE, "application/json"));
  ack_pub5(s, &r);
  char big[1001];
  memset(big, 'j', 1000);
  big[1000] = '\0';
  cr_assert(eq(int, pub5(p, "ct", big, 1, false, &props), 0));
  expect_pub5(s, &r, "ct", big);
  cr_assert(pb_str_is(&r.props, MQTTB_PROP_CONTENT_TYPE, "application/json"));
  ack_pub5(s, &r);
}

/* A Payload Format Indicator of 1 with a payload that is not UTF-8:
 * PUBACK/PUBREC 0x99 and the message is not delivered. */
Test(v5, payload_format_invalid_gets_0x99_and_is_not_delivered) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "pf", 2, 0), 2));
  tc *p = open5(bed, "p", 0);
  pb props = {.n = 0};
  pb_byte(&props, MQTTB_PROP_PAYLOAD_FORMAT, 1);
  static const uint8_t bad[] = {'o', 'k', 0xFF, 0xFE};
  uint16_t pid = v5_next_pid();
  send_pub5(p, "pf", bad, sizeof(bad), 1, false, pid, &props);
  uint16_t rpid;
  uint8_t reason;
  cr_assert(read_ack5(p, MQTTB_PKT_PUBACK, &rpid, &reason));
  cr_assert(eq(u16, rpid, pid));
  cr_assert(eq(u8, reason, MQTTB_REASON_PAYLOAD_FORMAT_INVALID));
  pid = v5_next_pid();
  send_pub5(p, "pf", bad, sizeof(bad), 2, false, pid, &props);
  cr_assert(read_ack5(p, MQTTB_PKT_PUBREC, &rpid, &reason));
  cr_assert(eq(u8, reason, MQTTB_REASON_PAYLOAD_FORMAT_INVALID));
  send_pub5(p, "pf", bad, sizeof(bad), 0, false, 0, &props);
  cr_assert(tc_quiet(s), "a payload that is not UTF-8 was delivered");
  cr_assert(not(p->closed));
  /* Not UTF-8 without the indicator: delivered. */
  send_pub5(p, "pf", bad, sizeof(bad), 0, false, 0, NULL);
  rpub r;
  cr_assert(read_pub5(s, &r));
  cr_assert(eq(sz, r.plen, sizeof(bad)));
}

/* ====================================================================== */
/* 11. Enhanced authentication                                             */
/* ====================================================================== */

/* [MQTT-4.12.0-1..7]: CONNECT with an Authentication Method, AUTH 0x18 in
 * both directions, then CONNACK 0 with the same method. */
Test(v5, enhanced_authentication_continue_then_success) {
  bed->authenticate = scripted_auth;
  au.ret[0] = MQTTB_REASON_CONTINUE_AUTHENTICATION;
  au.send_data[0] = "challenge";
  au.ret[1] = MQTTB_REASON_SUCCESS;
  au.send_data[1] = "final";
  tc *c = tc_new(bed);
  au.c = c;
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_AUTH_METHOD, "SCRAM-SHA-1");
  pb_str(&props, MQTTB_PROP_AUTH_DATA, "client-first");
  c5o o = {.id = "ea", .clean = true, .props = &props};
  send_connect5(c, &o);
  pb ap;
  cr_assert(eq(int, read_auth5(c, &ap), MQTTB_REASON_CONTINUE_AUTHENTICATION));
  cr_assert(pb_str_is(&ap, MQTTB_PROP_AUTH_METHOD, "SCRAM-SHA-1"));
  cr_assert(pb_str_is(&ap, MQTTB_PROP_AUTH_DATA, "challenge"));
  cr_assert(eq(int, c->connected, 0), "connected before the exchange ended");
  cr_assert(eq(int, au.calls, 1));
  cr_assert(eq(int, au.step[0], 0));
  cr_assert(eq(int, au.reauth[0], 0));
  cr_assert(eq(str, au.method[0], "SCRAM-SHA-1"));
  cr_assert(eq(str, au.data[0], "client-first"));
  cr_assert(eq(str, au.client_id[0], "ea"));
  send_auth5(c, MQTTB_REASON_CONTINUE_AUTHENTICATION, "SCRAM-SHA-1", "client-final");
  connack5 a;
  cr_assert(eq(int, read_connack5(c, &a), 0));
  cr_assert(pb_str_is(&a.props, MQTTB_PROP_AUTH_METHOD, "SCRAM-SHA-1"));
  cr_assert(pb_str_is(&a.props, MQTTB_PROP_AUTH_DATA, "final"));
  cr_assert(eq(int, au.calls, 2));
  cr_assert(eq(int, au.step[1], 1));
  cr_assert(eq(str, au.method[1], "SCRAM-SHA-1"));
  cr_assert(eq(str, au.data[1], "client-final"));
  cr_assert(eq(int, c->connected, 1));
  cr_assert(not(c->closed));
  cr_assert(eq(str, (char *)mqttb_conn_get_client_id(c->conn), "ea"));
}

/* The same with an empty Client Identifier: the identifier assigned when
 * the exchange started is the one used and returned. */
Test(v5, enhanced_authentication_with_assigned_client_identifier) {
  bed->authenticate = scripted_auth;
  au.ret[0] = MQTTB_REASON_CONTINUE_AUTHENTICATION;
  au.ret[1] = MQTTB_REASON_SUCCESS;
  tc *c = tc_new(bed);
  au.c = c;
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_AUTH_METHOD, "M");
  c5o o = {.clean = true, .props = &props};
  send_connect5(c, &o);
  cr_assert(eq(int, read_auth5(c, NULL), MQTTB_REASON_CONTINUE_AUTHENTICATION));
  send_auth5(c, MQTTB_REASON_CONTINUE_AUTHENTICATION, "M", "x");
  connack5 a;
  cr_assert(eq(int, read_connack5(c, &a), 0));
  mqttb_prop q;
  cr_assert(pb_find(&a.props, MQTTB_PROP_ASSIGNED_CLIENT_ID, &q));
  const char *id = mqttb_conn_get_client_id(c->conn);
  cr_assert(not(eq(ptr, (void *)id, NULL)));
  cr_assert(slice_eq(q.a, id), "assigned %.*s, connection has %s", (int)q.a.len,
            (const char *)q.a.ptr, id);
  cr_assert(eq(str, au.client_id[0], (char *)id), "the callback saw another identifier");
  cr_assert(eq(str, au.client_id[1], (char *)id));
}

/* Refused at the AUTH step: CONNACK with the callback's code (0x87). */
Test(v5, enhanced_authentication_refused_gets_connack_0x87) {
  bed->authenticate = scripted_auth;
  au.ret[0] = MQTTB_REASON_CONTINUE_AUTHENTICATION;
  au.ret[1] = MQTTB_REASON_NOT_AUTHORIZED_5;
  tc *c = tc_new(bed);
  au.c = c;
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_AUTH_METHOD, "M");
  c5o o = {.id = "no", .clean = true, .props = &props};
  send_connect5(c, &o);
  cr_assert(eq(int, read_auth5(c, NULL), MQTTB_REASON_CONTINUE_AUTHENTICATION));
  send_auth5(c, MQTTB_REASON_CONTINUE_AUTHENTICATION, "M", "wrong");
  cr_assert(eq(int, read_connack5(c, NULL), MQTTB_REASON_NOT_AUTHORIZED_5));
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_NOT_AUTHORIZED));
  cr_assert(eq(int, c->connected, 0));
}

/* Plain authentication refused: the callback's MQTT 5 code, and MQTT 3.x
 * codes mapped to their MQTT 5 equivalents (0x04 -> 0x86, 0x05 -> 0x87). */
Test(v5, authentication_refusal_codes) {
  bed->authenticate = scripted_auth;
  au.ret[0] = MQTTB_REASON_BAD_CREDENTIALS;
  au.ret[1] = MQTTB_REASON_BAD_USERNAME_OR_PASSWORD;
  au.ret[2] = MQTTB_REASON_NOT_AUTHORIZED;
  au.ret[3] = MQTTB_REASON_BANNED;
  const int want[] = {0x86, 0x86, 0x87, 0x8A};
  for (int i = 0; i < 4; i++) {
    tc *c = tc_new(bed);
    au.c = c;
    c5o o = {.id = "u", .clean = true, .username = "user", .password = "pw"};
    cr_assert(eq(int, connect5(c, &o, NULL), want[i]));
    cr_assert(c->closed);
  }
  cr_assert(eq(int, au.step[0], 0));
  cr_assert(not(au.has_method[0]));
}

/* Re-authentication: AUTH 0x19 on an established connection; the broker
 * answers AUTH 0x00 on success (after an optional 0x18 round). */
Test(v5, reauthentication_succeeds) {
  bed->authenticate = scripted_auth;
  au.ret[0] = MQTTB_REASON_SUCCESS;
  au.ret[1] = MQTTB_REASON_SUCCESS;
  au.ret[2] = MQTTB_REASON_CONTINUE_AUTHENTICATION;
  au.send_data[2] = "more";
  au.ret[3] = MQTTB_REASON_SUCCESS;
  tc *c = tc_new(bed);
  au.c = c;
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_AUTH_METHOD, "TOKEN");
  c5o o = {.id = "re", .clean = true, .props = &props};
  connack5 a;
  cr_assert(eq(int, connect5(c, &o, &a), 0));
  cr_assert(pb_str_is(&a.props, MQTTB_PROP_AUTH_METHOD, "TOKEN"));
  send_auth5(c, MQTTB_REASON_REAUTHENTICATE, "TOKEN", "t2");
  pb ap;
  cr_assert(eq(int, read_auth5(c, &ap), MQTTB_REASON_SUCCESS));
  cr_assert(pb_str_is(&ap, MQTTB_PROP_AUTH_METHOD, "TOKEN"));
  cr_assert(eq(int, au.calls, 2));
  cr_assert(eq(int, au.reauth[1], 1));
  cr_assert(eq(int, au.step[1], 0));
  cr_assert(eq(str, au.data[1], "t2"));
  cr_assert(not(c->closed));
  /* Two steps. */
  send_auth5(c, MQTTB_REASON_REAUTHENTICATE, "TOKEN", "t3");
  cr_assert(eq(int, read_auth5(c, &ap), MQTTB_REASON_CONTINUE_AUTHENTICATION));
  cr_assert(pb_str_is(&ap, MQTTB_PROP_AUTH_DATA, "more"));
  send_auth5(c, MQTTB_REASON_CONTINUE_AUTHENTICATION, "TOKEN", "t4");
  cr_assert(eq(int, read_auth5(c, NULL), MQTTB_REASON_SUCCESS));
  cr_assert(eq(int, au.step[2], 0));
  cr_assert(eq(int, au.step[3], 1));
  cr_assert(eq(int, au.reauth[3], 1));
  cr_assert(not(c->closed));
  /* The connection still works. */
  uint8_t ping[2] = {0xC0, 0};
  tc_send(c, ping, 2);
  cr_assert(tc_read(c) && c->f.type == MQTTB_PKT_PINGRESP);
}

/* A refused re-authentication disconnects with the callback's code. */
Test(v5, reauthentication_refused_disconnects) {
  bed->authenticate = scripted_auth;
  au.ret[0] = MQTTB_REASON_SUCCESS;
  au.ret[1] = MQTTB_REASON_NOT_AUTHORIZED_5;
  tc *c = tc_new(bed);
  au.c = c;
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_AUTH_METHOD, "TOKEN");
  c5o o = {.id = "re", .clean = true, .props = &props};
  cr_assert(eq(int, connect5(c, &o, NULL), 0));
  send_auth5(c, MQTTB_REASON_REAUTHENTICATE, "TOKEN", "expired");
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_NOT_AUTHORIZED));
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_NOT_AUTHORIZED_5));
}

/* [MQTT-4.12.0-5]/[MQTT-4.12.1-1]: AUTH with another method: Protocol
 * Error. */
Test(v5, auth_with_different_method_is_protocol_error) {
  bed->authenticate = scripted_auth;
  au.ret[0] = MQTTB_REASON_SUCCESS;
  tc *c = tc_new(bed);
  au.c = c;
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_AUTH_METHOD, "TOKEN");
  c5o o = {.id = "re", .clean = true, .props = &props};
  cr_assert(eq(int, connect5(c, &o, NULL), 0));
  send_auth5(c, MQTTB_REASON_REAUTHENTICATE, "OTHER", "x");
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_PROTOCOL));
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_PROTOCOL_ERROR));
  cr_assert(eq(int, au.calls, 1), "the callback was asked about another method");
}

/* The same during the CONNECT exchange: the connection is closed. */
Test(v5, auth_with_different_method_during_connect_closes) {
  bed->authenticate = scripted_auth;
  au.ret[0] = MQTTB_REASON_CONTINUE_AUTHENTICATION;
  tc *c = tc_new(bed);
  au.c = c;
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_AUTH_METHOD, "TOKEN");
  c5o o = {.id = "x", .clean = true, .props = &props};
  send_connect5(c, &o);
  cr_assert(eq(int, read_auth5(c, NULL), MQTTB_REASON_CONTINUE_AUTHENTICATION));
  send_auth5(c, MQTTB_REASON_CONTINUE_AUTHENTICATION, "OTHER", "x");
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_PROTOCOL));
  cr_assert(eq(int, c->connected, 0));
  cr_assert(eq(int, au.calls, 1));
}

/* [MQTT-4.12.0-7]: AUTH from a client that did not use enhanced
 * authentication: Protocol Error. */
Test(v5, auth_without_exchange_is_protocol_error) {
  tc *c = open5(bed, "plain", 0);
  send_auth5(c, MQTTB_REASON_REAUTHENTICATE, "TOKEN", "x");
  cr_assert(c->closed);
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_PROTOCOL_ERROR));
}

/* An Authentication Method the callback does not support: CONNACK 0x8C. */
Test(v5, unsupported_authentication_method_gets_0x8c) {
  bed->authenticate = scripted_auth;
  au.ret[0] = MQTTB_REASON_BAD_AUTH_METHOD;
  tc *c = tc_new(bed);
  au.c = c;
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_AUTH_METHOD, "KERBEROS");
  c5o o = {.id = "k", .clean = true, .props = &props};
  cr_assert(eq(int, connect5(c, &o, NULL), MQTTB_REASON_BAD_AUTH_METHOD));
  cr_assert(c->closed);
  cr_assert(eq(str, au.method[0], "KERBEROS"));
}

/* ====================================================================== */
/* 12. Server redirection                                                  */
/* ====================================================================== */

/* CONNACK 0x9C (Use another server) / 0x9D (Server moved) with the Server
 * Reference. */
Test(v5, use_another_server_connack_carries_server_reference) {
  bed->authenticate = scripted_auth;
  au.ret[0] = MQTTB_REASON_USE_ANOTHER_SERVER;
  au.ret[1] = MQTTB_REASON_SERVER_MOVED;
  au.server_ref = "other:1883";
  const int want[] = {MQTTB_REASON_USE_ANOTHER_SERVER, MQTTB_REASON_SERVER_MOVED};
  for (int i = 0; i < 2; i++) {
    tc *c = tc_new(bed);
    au.c = c;
    c5o o = {.id = "r", .clean = true};
    connack5 a;
    cr_assert(eq(int, connect5(c, &o, &a), want[i]));
    cr_assert(pb_str_is(&a.props, MQTTB_PROP_SERVER_REFERENCE, "other:1883"));
    cr_assert(c->closed);
    cr_assert(eq(int, c->connected, 0));
  }
}

/* mqttb_conn_disconnect with Server moved: DISCONNECT 0x9D with the Server
 * Reference, nothing after it, and the will published. */
Test(v5, server_moved_disconnect_carries_server_reference) {
  tc *w = will_watcher();
  tc *c = open_with_will("c", 0, 0, NULL);
  cr_assert(eq(int, mqttb_conn_set_server_reference(c->conn, "other:1883"), 0));
  cr_assert(eq(int, mqttb_conn_disconnect(c->conn, MQTTB_REASON_SERVER_MOVED, bed->now), 0));
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_SHUTDOWN));
  pb dp;
  cr_assert(eq(int, read_disconnect5(c, &dp), MQTTB_REASON_SERVER_MOVED));
  cr_assert(pb_str_is(&dp, MQTTB_PROP_SERVER_REFERENCE, "other:1883"));
  cr_assert(tc_quiet(c), "[MQTT-3.14.4-1] packets after DISCONNECT");
  expect_will(w);
}

/* mqttb_conn_disconnect with Normal disconnection: one DISCONNECT 0x00
 * ([MQTT-3.14.4-1]: nothing may follow a DISCONNECT), and no will. */
Test(v5, embedder_normal_disconnect_sends_one_disconnect) {
  tc *w = will_watcher();
  tc *c = open_with_will("c", 0, 0, NULL);
  cr_assert(
      eq(int, mqttb_conn_disconnect(c->conn, MQTTB_REASON_NORMAL_DISCONNECTION, bed->now), 0));
  cr_assert(c->closed);
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_NORMAL_DISCONNECTION));
  int extra = read_disconnect5(c, NULL);
  cr_assert(eq(int, extra, -1), "a second DISCONNECT (reason %#x) followed the first", extra);
  cr_assert(tc_quiet(w), "will published after a normal disconnection");
}

/* ====================================================================== */
/* 13. Reason codes                                                        */
/* ====================================================================== */

/* PUBACK/PUBREC 0x10 when nobody subscribes; 0x00 otherwise. */
Test(v5, puback_no_matching_subscribers) {
  tc *p = open5(bed, "p", 0);
  cr_assert(eq(int, pub5(p, "nobody", "x", 1, false, NULL), MQTTB_REASON_NO_MATCHING_SUBSCRIBERS));
  cr_assert(eq(int, pub5(p, "nobody", "x", 2, false, NULL), MQTTB_REASON_NO_MATCHING_SUBSCRIBERS));
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "nobody", 0, 0), 0));
  cr_assert(eq(int, pub5(p, "nobody", "x", 1, false, NULL), 0));
}

/* PUBREL for an unknown packet id: PUBCOMP 0x92; for a known one: 0. */
Test(v5, pubrel_unknown_id_gets_pubcomp_0x92) {
  tc *p = open5(bed, "p", 0);
  send_ack5(p, MQTTB_PKT_PUBREL, 999, 0);
  uint16_t pid;
  uint8_t reason;
  cr_assert(read_ack5(p, MQTTB_PKT_PUBCOMP, &pid, &reason));
  cr_assert(eq(u16, pid, 999));
  cr_assert(eq(u8, reason, MQTTB_REASON_PACKET_ID_NOT_FOUND));
  send_pub5(p, "t", "x", 1, 2, false, 5, NULL);
  cr_assert(read_ack5(p, MQTTB_PKT_PUBREC, NULL, NULL));
  send_ack5(p, MQTTB_PKT_PUBREL, 5, 0);
  cr_assert(read_ack5(p, MQTTB_PKT_PUBCOMP, &pid, &reason));
  cr_assert(eq(u8, reason, 0));
  cr_assert(not(p->closed));
}

/* UNSUBACK 0x11 for a filter that was not subscribed. */
Test(v5, unsuback_no_subscription_existed) {
  tc *c = open5(bed, "c", 0);
  cr_assert(eq(int, subscribe5(c, "b", 0, 0), 0));
  const char *f[] = {"a", "b"};
  uint8_t codes[2];
  cr_assert(unsubscribe5n(c, f, 2, codes));
  cr_assert(eq(u8, codes[0], MQTTB_REASON_NO_SUBSCRIPTION_EXISTED));
  cr_assert(eq(u8, codes[1], MQTTB_REASON_SUCCESS));
  cr_assert(eq(int, unsubscribe5(c, "b"), MQTTB_REASON_NO_SUBSCRIPTION_EXISTED));
}

/* [MQTT-3.2.2-9]..: granted QoS capped by max_qos; a PUBLISH above it:
 * DISCONNECT 0x9B [MQTT-3.2.2-11]. */
Test(v5, max_qos_caps_suback_and_refuses_publish) {
  mqttb_settings st = settings_default();
  st.max_qos = 1;
  use_settings(&st);
  tc *c = open5(bed, "c", 0);
  cr_assert(eq(int, subscribe5(c, "t", 2, 0), 1));
  cr_assert(eq(int, subscribe5(c, "u", 0, 0), 0));
  cr_assert(eq(int, pub5(c, "t", "ok", 1, false, NULL), 0));
  rpub r;
  expect_pub5(c, &r, "t", "ok");
  ack_pub5(c, &r);
  send_pub5(c, "t", "two", 3, 2, false, 9, NULL);
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_PROTOCOL));
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_QOS_NOT_SUPPORTED));
}

/* A PUBREC with an error reason ends the QoS 2 flow: no PUBREL, and the
 * in-flight slot is free again. */
Test(v5, pubrec_error_ends_flow_and_frees_slot) {
  pb props = {.n = 0};
  pb_u16(&props, MQTTB_PROP_RECEIVE_MAXIMUM, 1);
  tc *s = open5p(bed, "s", true, &props, NULL);
  cr_assert(eq(int, subscribe5(s, "q2", 2, 0), 2));
  tc *p = open5(bed, "p", 0);
  cr_assert(eq(int, pub5(p, "q2", "one", 2, false, NULL), 0));
  cr_assert(eq(int, pub5(p, "q2", "two", 2, false, NULL), 0));
  rpub r;
  expect_pub5(s, &r, "q2", "one");
  cr_assert(tc_quiet(s));
  send_ack5(s, MQTTB_PKT_PUBREC, r.pid, MQTTB_REASON_UNSPECIFIED_ERROR);
  cr_assert(tc_read(s), "nothing after the refused PUBREC");
  cr_assert(eq(u8, s->f.type, MQTTB_PKT_PUBLISH), "expected the next PUBLISH, not type %u",
            s->f.type);
  mqttb_publish pp;
  cr_assert(eq(int, mqttb_decode_publish_v(s->f.flags, s->body, s->f.remaining, 5, &pp), 0));
  cr_assert(slice_eq(pp.payload, "two"));
  uint16_t pid2 = pp.packet_id;
  send_ack5(s, MQTTB_PKT_PUBREC, pid2, 0);
  uint16_t rel;
  cr_assert(read_ack5(s, MQTTB_PKT_PUBREL, &rel, NULL));
  cr_assert(eq(u16, rel, pid2));
  send_ack5(s, MQTTB_PKT_PUBCOMP, pid2, 0);
  cr_assert(tc_quiet(s));
}

/* [MQTT-3.1.4-3]: takeover: DISCONNECT 0x8E to the old connection. */
Test(v5, takeover_sends_disconnect_0x8e) {
  tc *old = open5(bed, "dup", 60);
  bool sp = false;
  tc *nw = resume5(bed, "dup", 60, &sp);
  cr_assert(sp);
  cr_assert(old->closed);
  cr_assert(eq(int, old->close_reason, MQTTB_ERR_TAKEN_OVER));
  cr_assert(eq(int, read_disconnect5(old, NULL), MQTTB_REASON_SESSION_TAKEN_OVER));
  cr_assert(not(nw->closed));
}

/* Keep-alive expiry: DISCONNECT 0x8D. */
Test(v5, keepalive_expiry_sends_disconnect_0x8d) {
  tc *c = tc_new(bed);
  c5o o = {.id = "ka", .clean = true, .keepalive = 10};
  cr_assert(eq(int, connect5(c, &o, NULL), 0));
  tb_advance(bed, 14000);
  cr_assert(not(c->closed));
  tb_advance(bed, 2000);
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_KEEPALIVE_TIMEOUT));
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_KEEP_ALIVE_TIMEOUT));
}

/* A malformed packet after CONNECT: DISCONNECT 0x81 before the close. */
Test(v5, malformed_packet_gets_disconnect_0x81) {
  tc *c = open5(bed, "c", 0);
  uint8_t bad_ping[] = {0xC0, 0x01, 0x00};
  cr_assert(eq(int, tc_send(c, bad_ping, sizeof(bad_ping)), MQTTB_ERR_MALFORMED));
  cr_assert(c->closed);
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_MALFORMED_PACKET));
  cr_assert(tc_quiet(c));
  tc *d = open5(bed, "d", 0);
  uint8_t bad_flags[] = {0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01};
  cr_assert(eq(int, tc_send(d, bad_flags, sizeof(bad_flags)), MQTTB_ERR_MALFORMED));
  cr_assert(eq(int, read_disconnect5(d, NULL), MQTTB_REASON_MALFORMED_PACKET));
}

/* A property that may appear once, twice: Protocol Error 0x82. */
Test(v5, duplicate_property_gets_disconnect_0x82) {
  tc *c = open5(bed, "c", 0);
  pb props = {.n = 0};
  pb_str(&props, MQTTB_PROP_CONTENT_TYPE, "a");
  pb_str(&props, MQTTB_PROP_CONTENT_TYPE, "b");
  send_pub5(c, "t", "x", 1, 0, false, 0, &props);
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_PROTOCOL));
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_PROTOCOL_ERROR));
}

/* [MQTT-3.3.4-6]: a PUBLISH from a client with a Subscription Identifier:
 * Protocol Error. */
Test(v5, publish_with_subscription_identifier_is_protocol_error) {
  tc *c = open5(bed, "c", 0);
  pb props = {.n = 0};
  pb_var(&props, MQTTB_PROP_SUBSCRIPTION_ID, 3);
  send_pub5(c, "t", "x", 1, 0, false, 0, &props);
  cr_assert(c->closed);
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_PROTOCOL_ERROR));
}

/* A malformed MQTT 5 CONNECT: CONNACK 0x81, then close. */
Test(v5, malformed_v5_connect_gets_connack_0x81) {
  /* A property not allowed in CONNECT (Topic Alias). */
  tc *c = tc_new(bed);
  pb props = {.n = 0};
  pb_u16(&props, MQTTB_PROP_TOPIC_ALIAS, 1);
  c5o o = {.id = "m", .clean = true, .props = &props};
  cr_assert(eq(int, connect5(c, &o, NULL), MQTTB_REASON_MALFORMED_PACKET));
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_MALFORMED));
  cr_assert(eq(int, c->connected, 0));
  /* The reserved flag set. */
  tc *d = tc_new(bed);
  uint8_t pkt[] = {0x10, 0x0e, 0x00, 0x04, 'M',  'Q',  'T',  'T',
                   0x05, 0x03, 0x00, 0x3c, 0x00, 0x00, 0x01, 'x'};
  tc_send(d, pkt, sizeof(pkt));
  cr_assert(eq(int, read_connack5(d, NULL), MQTTB_REASON_MALFORMED_PACKET));
  cr_assert(d->closed);
}

/* A duplicate property in CONNECT: CONNACK 0x82. */
Test(v5, duplicate_property_in_connect_gets_connack_0x82) {
  tc *c = tc_new(bed);
  pb props = {.n = 0};
  pb_u32(&props, MQTTB_PROP_SESSION_EXPIRY, 1);
  pb_u32(&props, MQTTB_PROP_SESSION_EXPIRY, 2);
  c5o o = {.id = "m", .clean = true, .props = &props};
  cr_assert(eq(int, connect5(c, &o, NULL), MQTTB_REASON_PROTOCOL_ERROR));
  cr_assert(c->closed);
  cr_assert(eq(int, c->close_reason, MQTTB_ERR_PROTOCOL));
}

/* [MQTT-3.2.2-14]: a retained PUBLISH while Retain Available is 0:
 * DISCONNECT 0x9A. */
Test(v5, retained_publish_when_retain_unavailable_disconnects) {
  mqttb_settings st = settings_default();
  st.retain_available = 0;
  use_settings(&st);
  tc *c = open5(bed, "c", 0);
  send_pub5(c, "t", "x", 1, 0, true, 0, NULL);
  cr_assert(c->closed);
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_RETAIN_NOT_SUPPORTED));
}

/* Wildcard subscriptions unavailable: SUBACK 0xA2 for a wildcard filter. */
Test(v5, wildcard_subscriptions_unavailable) {
  mqttb_settings st = settings_default();
  st.wildcard_subscriptions = 0;
  use_settings(&st);
  tc *c = open5(bed, "c", 0);
  cr_assert(eq(int, subscribe5(c, "a/+", 0, 0), MQTTB_REASON_WILDCARD_SUBS_NOT_SUPPORTED));
  cr_assert(eq(int, subscribe5(c, "a/#", 0, 0), MQTTB_REASON_WILDCARD_SUBS_NOT_SUPPORTED));
  cr_assert(eq(int, subscribe5(c, "a/b", 1, 0), 1));
}

/* Subscription identifiers unavailable: a SUBSCRIBE with one gets
 * DISCONNECT 0xA1. */
Test(v5, subscription_identifiers_unavailable) {
  mqttb_settings st = settings_default();
  st.subscription_identifiers = 0;
  use_settings(&st);
  tc *c = open5(bed, "c", 0);
  cr_assert(eq(int, subscribe5(c, "a", 0, 0), 0));
  cr_assert(eq(int, subscribe5(c, "b", 0, 4), -1));
  cr_assert(c->closed);
  cr_assert(eq(int, read_disconnect5(c, NULL), MQTTB_REASON_SUB_IDS_NOT_SUPPORTED));
}

static int deny_secret(mqttb_access access, const char *topic, size_t len) {
  (void)access;
  return len >= 6 && memcmp(topic, "secret", 6) == 0;
}

/* Refused by authorize: PUBACK 0x87 (not delivered), SUBACK 0x87. */
Test(v5, not_authorized_reason_codes) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "#", 1, 0), 1));
  bed->authorize = deny_secret;
  tc *c = open5(bed, "c", 0);
  cr_assert(eq(int, pub5(c, "secret/x", "x", 1, false, NULL), MQTTB_REASON_NOT_AUTHORIZED_5));
  cr_assert(tc_quiet(s));
  cr_assert(eq(int, subscribe5(c, "secret/#", 1, 0), MQTTB_REASON_NOT_AUTHORIZED_5));
  cr_assert(eq(int, subscribe5(c, "open", 1, 0), 1));
}

/* The authorize callback chooses the refusal: 0x97 (quota exceeded) for
 * "quota/", 0x80 for "odd/"; a value outside 0x80..0xFF means 0x87. MQTT 3.1.1
 * clients still get SUBACK 0x80. */
static int refuse_by_topic(mqttb_access access, const char *topic, size_t len) {
  (void)access;
  if (len >= 6 && memcmp(topic, "quota/", 6) == 0)
    return MQTTB_REASON_QUOTA_EXCEEDED;
  if (len >= 4 && memcmp(topic, "odd/", 4) == 0)
    return MQTTB_REASON_UNSPECIFIED_ERROR;
  if (len >= 4 && memcmp(topic, "neg/", 4) == 0)
    return -1;
  return MQTTB_REASON_SUCCESS;
}

Test(v5, authorize_callback_chooses_the_reason_code) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "#", 1, 0), 1));
  bed->authorize = refuse_by_topic;
  tc *c = open5(bed, "c", 0);
  cr_assert(eq(int, pub5(c, "quota/x", "x", 1, false, NULL), MQTTB_REASON_QUOTA_EXCEEDED));
  cr_assert(eq(int, pub5(c, "odd/x", "x", 2, false, NULL), MQTTB_REASON_UNSPECIFIED_ERROR));
  cr_assert(eq(int, pub5(c, "neg/x", "x", 1, false, NULL), MQTTB_REASON_NOT_AUTHORIZED_5));
  cr_assert(tc_quiet(s), "nothing refused was delivered");
  cr_assert(eq(int, subscribe5(c, "quota/#", 1, 0), MQTTB_REASON_QUOTA_EXCEEDED));
  cr_assert(eq(int, subscribe5(c, "odd/#", 1, 0), MQTTB_REASON_UNSPECIFIED_ERROR));
  cr_assert(eq(int, subscribe5(c, "neg/#", 1, 0), MQTTB_REASON_NOT_AUTHORIZED_5));
  cr_assert(eq(int, pub5(c, "fine", "x", 1, false, NULL), 0));
  tc *old = tc_open(bed, "old", true);
  cr_assert(eq(int, tc_subscribe(old, "quota/#", 1), MQTTB_REASON_SUBSCRIBE_FAILURE));
}

/* ====================================================================== */
/* 14. Mixed protocol versions                                             */
/* ====================================================================== */

/* A v5 PUBLISH with properties reaches a 3.1.1 subscriber as a plain 3.1.1
 * PUBLISH (no property block; small and large payloads). */
Test(v5, v5_publisher_reaches_v311_subscriber) {
  tc *old = tc_open(bed, "old", true);
  cr_assert(eq(int, tc_subscribe(old, "mix/#", 1), 1));
  tc *p = open5(bed, "p", 0);
  pb props = {.n = 0};
  pb_byte(&props, MQTTB_PROP_PAYLOAD_FORMAT, 1);
  pb_str(&props, MQTTB_PROP_CONTENT_TYPE, "text/plain");
  pb_str(&props, MQTTB_PROP_RESPONSE_TOPIC, "r");
  pb_u32(&props, MQTTB_PROP_MESSAGE_EXPIRY, 100);
  pb_pair(&props, "k", "v");
  pb a1 = alias_props(2);
  cr_assert(eq(int, pub5(p, "mix/a", "small", 1, false, &props), 0));
  mqttb_publish m;
  cr_assert(tc_expect_publish(old, &m));
  cr_assert(slice_eq(m.topic, "mix/a"));
  cr_assert(slice_eq(m.payload, "small"), "properties leaked into a 3.1.1 payload");
  cr_assert(eq(u32, old->f.remaining, 2 + 5 + 2 + 5));
  tc_ack(old, &m);
  char big[601];
  memset(big, 'B', 600);
  big[600] = '\0';
  pub5(p, "mix/b", big, 0, false, &props);
  cr_assert(tc_expect_publish(old, &m));
  cr_assert(slice_eq(m.topic, "mix/b"));
  cr_assert(slice_eq(m.payload, big), "properties leaked into a large 3.1.1 payload");
  cr_assert(eq(u32, old->f.remaining, 2 + 5 + 600));
  /* A topic set through an alias reaches it in full. */
  send_pub5(p, "mix/c", "1", 1, 0, false, 0, &a1);
  send_pub5(p, "", "2", 1, 0, false, 0, &a1);
  cr_assert(tc_expect_publish(old, &m));
  cr_assert(slice_eq(m.topic, "mix/c"));
  cr_assert(tc_expect_publish(old, &m));
  cr_assert(slice_eq(m.topic, "mix/c"));
  cr_assert(slice_eq(m.payload, "2"));
  cr_assert(tc_quiet(old));
}

/* A 3.1.1 PUBLISH reaches an MQTT 5 subscriber with an empty property
 * block. */
Test(v5, v311_publisher_reaches_v5_subscriber) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "mix", 1, 0), 1));
  tc *old = tc_open(bed, "old", true);
  cr_assert(tc_publish(old, "mix", "hello", 1, false));
  rpub r;
  expect_pub5(s, &r, "mix", "hello");
  cr_assert(eq(u8, r.qos, 1));
  cr_assert(eq(sz, r.props.n, 0));
  ack_pub5(s, &r);
  char big[701];
  memset(big, 'C', 700);
  big[700] = '\0';
  cr_assert(tc_publish(old, "mix", big, 0, false));
  expect_pub5(s, &r, "mix", big);
  cr_assert(eq(sz, r.props.n, 0));
  cr_assert(tc_quiet(s));
}
