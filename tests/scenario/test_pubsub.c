/* SPDX-License-Identifier: MIT */
/* Publish/subscribe, QoS flows, retained messages, wills and persistent
 * sessions: broker scenarios with a fake clock. */
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

TestSuite(pubsub, .init = setup, .fini = teardown);

static void expect_msg(tc *c, const char *topic, const char *payload, uint8_t qos, bool retain) {
  mqttb_publish p;
  cr_assert(tc_expect_publish(c, &p), "expected a PUBLISH on %s", topic);
  cr_assert(slice_eq(p.topic, topic), "topic %.*s, expected %s", (int)p.topic.len,
            (const char *)p.topic.ptr, topic);
  cr_assert(slice_eq(p.payload, payload));
  cr_assert(eq(u8, p.qos, qos));
  cr_assert(eq(int, p.retain, retain));
  tc_ack(c, &p);
}

Test(pubsub, qos0_message_reaches_subscriber) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(eq(int, tc_subscribe(sub, "a/b", 0), 0));
  cr_assert(tc_publish(pub, "a/b", "hello", 0, false));
  expect_msg(sub, "a/b", "hello", 0, false);
  cr_assert(tc_quiet(sub));
  cr_assert(tc_quiet(pub));
  cr_assert(lt(int, 0, sub->want_write));
}

Test(pubsub, qos1_flow_and_packet_ids) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(eq(int, tc_subscribe(sub, "q1", 1), 1));
  cr_assert(tc_publish(pub, "q1", "m", 1, false));
  mqttb_publish p;
  cr_assert(tc_expect_publish(sub, &p));
  cr_assert(eq(u8, p.qos, 1));
  cr_assert(not(eq(u16, p.packet_id, 0)));
  cr_assert(not(p.dup));
  tc_ack(sub, &p);
  cr_assert(tc_quiet(sub));
}

Test(pubsub, qos2_flow_both_directions) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(eq(int, tc_subscribe(sub, "q2", 2), 2));
  cr_assert(tc_publish(pub, "q2", "exactly", 2, false));
  expect_msg(sub, "q2", "exactly", 2, false);
  cr_assert(tc_quiet(sub));
}

/* [MQTT-4.3.3-2] A QoS 2 PUBLISH re-sent before PUBREL is not delivered
 * again. */
Test(pubsub, duplicate_qos2_publish_is_delivered_once) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(eq(int, tc_subscribe(sub, "dup", 2), 2));
  tc_publish_raw(pub, "dup", "x", 1, 2, false, false, 77);
  cr_assert(tc_read(pub) && pub->f.type == MQTTB_PKT_PUBREC);
  tc_publish_raw(pub, "dup", "x", 1, 2, false, true, 77);
  cr_assert(tc_read(pub) && pub->f.type == MQTTB_PKT_PUBREC);
  tc_send_ack(pub, MQTTB_PKT_PUBREL, 77);
  cr_assert(tc_read(pub) && pub->f.type == MQTTB_PKT_PUBCOMP);
  expect_msg(sub, "dup", "x", 2, false);
  cr_assert(tc_quiet(sub), "the duplicate was delivered twice");
  /* After PUBREL the id is free again: a new message with it is new. */
  tc_publish_raw(pub, "dup", "y", 1, 2, false, false, 77);
  cr_assert(tc_read(pub) && pub->f.type == MQTTB_PKT_PUBREC);
  expect_msg(sub, "dup", "y", 2, false);
}

Test(pubsub, pubrel_for_unknown_id_gets_pubcomp) {
  tc *c = tc_open(bed, "c", true);
  tc_send_ack(c, MQTTB_PKT_PUBREL, 999);
  cr_assert(tc_read(c));
  cr_assert(eq(u8, c->f.type, MQTTB_PKT_PUBCOMP));
  cr_assert(not(c->closed));
}

/* QoS is the minimum of the published and the granted QoS. */
Test(pubsub, qos_is_downgraded_to_the_subscription) {
  tc *s0 = tc_open(bed, "s0", true);
  tc *s1 = tc_open(bed, "s1", true);
  tc *s2 = tc_open(bed, "s2", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(s0, "t", 0);
  tc_subscribe(s1, "t", 1);
  tc_subscribe(s2, "t", 2);
  cr_assert(tc_publish(pub, "t", "two", 2, false));
  expect_msg(s0, "t", "two", 0, false);
  expect_msg(s1, "t", "two", 1, false);
  expect_msg(s2, "t", "two", 2, false);
  cr_assert(tc_publish(pub, "t", "one", 1, false));
  expect_msg(s0, "t", "one", 0, false);
  expect_msg(s1, "t", "one", 1, false);
  expect_msg(s2, "t", "one", 1, false);
}

Test(pubsub, overlapping_subscriptions_deliver_one_copy_at_highest_qos) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(sub, "a/+", 0);
  tc_subscribe(sub, "a/#", 2);
  tc_subscribe(sub, "a/b", 1);
  cr_assert(tc_publish(pub, "a/b", "once", 2, false));
  expect_msg(sub, "a/b", "once", 2, false);
  cr_assert(tc_quiet(sub));
}

Test(pubsub, resubscribe_replaces_the_qos) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(sub, "r", 2);
  tc_subscribe(sub, "r", 0);
  cr_assert(tc_publish(pub, "r", "x", 2, false));
  expect_msg(sub, "r", "x", 0, false);
  cr_assert(tc_quiet(sub));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.subscription_count, 1));
}

Test(pubsub, unsubscribe_stops_delivery) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(sub, "u/#", 1);
  cr_assert(eq(int, tc_unsubscribe(sub, "u/#"), 0));
  cr_assert(tc_publish(pub, "u/x", "x", 1, false));
  cr_assert(tc_quiet(sub));
  /* Unsubscribing from something never subscribed still gets UNSUBACK. */
  cr_assert(eq(int, tc_unsubscribe(sub, "never"), 0));
}

/* Wildcards, empty levels and '$' topics [MQTT-4.7.1-2], [MQTT-4.7.2-1]. */
Test(pubsub, wildcard_matching_through_the_broker) {
  struct {
    const char *filter, *topic;
    bool match;
  } cases[] = {
      {"#", "a", true},           {"#", "a/b/c", true},       {"#", "/", true},
      {"a/#", "a", true},         {"a/#", "a/b", true},       {"a/#", "ab", false},
      {"+", "a", true},           {"+", "a/b", false},        {"+", "/", false},
      {"+/+", "/", true},         {"/+", "/x", true},         {"a/+/c", "a//c", true},
      {"a/+/c", "a/b/c", true},   {"a/+/c", "a/b/d", false},  {"+/#", "a", true},
      {"#", "$aws/x", false},     {"+/x", "$aws/x", false},   {"$aws/#", "$aws/x", true},
      {"$aws/+", "$aws/x", true}, {"a/b", "a/b/", false},     {"a/b/", "a/b/", true},
      {"a/+", "a/", true},        {"sport/#", "sport", true}, {"a/b/c", "a/b/c", true},
  };
  tc *pub = tc_open(bed, "pub", true);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char id[16];
    snprintf(id, sizeof(id), "s%zu", i);
    tc *sub = tc_open(bed, id, true);
    cr_assert(eq(int, tc_subscribe(sub, cases[i].filter, 0), 0));
    cr_assert(tc_publish(pub, cases[i].topic, "m", 0, false));
    mqttb_publish p;
    bool got = tc_expect_publish(sub, &p);
    cr_assert(eq(int, got, cases[i].match), "filter %s topic %s", cases[i].filter, cases[i].topic);
    tc_del(sub);
  }
}

/* Per-publisher order is kept, and at most max_inflight messages are
 * unacknowledged at once. */
Test(pubsub, inflight_window_and_order) {
  tb_del(bed);
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.max_inflight_messages = 2;
  bed = tb_new(&s);
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(sub, "o", 1);
  for (int i = 0; i < 6; i++) {
    char pl[8];
    snprintf(pl, sizeof(pl), "%d", i);
    cr_assert(tc_publish(pub, "o", pl, 1, false));
  }
  mqttb_publish p[2];
  uint16_t ids[2];
  char want[12]; /* any int */
  cr_assert(tc_expect_publish(sub, &p[0]));
  cr_assert(slice_eq(p[0].payload, "0"));
  ids[0] = p[0].packet_id;
  cr_assert(tc_expect_publish(sub, &p[1]));
  cr_assert(slice_eq(p[1].payload, "1"));
  ids[1] = p[1].packet_id;
  cr_assert(tc_quiet(sub), "more than the in-flight window was sent");
  int next = 2;
  for (int k = 0; k < 2; k++) {
    tc_send_ack(sub, MQTTB_PKT_PUBACK, ids[k]);
    mqttb_publish q;
    cr_assert(tc_expect_publish(sub, &q));
    snprintf(want, sizeof(want), "%d", next++);
    cr_assert(slice_eq(q.payload, want));
    tc_ack(sub, &q);
  }
  while (next < 6) {
    mqttb_publish q;
    cr_assert(tc_expect_publish(sub, &q));
    snprintf(want, sizeof(want), "%d", next++);
    cr_assert(slice_eq(q.payload, want));
    tc_ack(sub, &q);
  }
  cr_assert(tc_quiet(sub));
}

/* ---- retained messages ---- */

Test(pubsub, retained_message_is_delivered_on_subscribe_with_retain_flag) {
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "r/a", "ra", 1, true));
  cr_assert(tc_publish(pub, "r/b", "rb", 0, true));
  cr_assert(tc_publish(pub, "other", "o", 0, true));
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "r/+", 2), 2));
  /* Slices point into the client's buffer: keep what is needed. */
  char got[2][8];
  uint8_t qos[2];
  for (int i = 0; i < 2; i++) {
    mqttb_publish p;
    cr_assert(tc_expect_publish(sub, &p));
    cr_assert(p.retain);
    snprintf(got[i], sizeof(got[i]), "%.*s", (int)p.topic.len, (const char *)p.topic.ptr);
    qos[i] = p.qos;
    tc_ack(sub, &p);
  }
  cr_assert(tc_quiet(sub));
  /* QoS is the minimum of the stored message's and the subscription's. */
  int a = strcmp(got[0], "r/a") == 0 ? 0 : 1;
  cr_assert(eq(str, got[a], "r/a"));
  cr_assert(eq(str, got[1 - a], "r/b"));
  cr_assert(eq(u8, qos[a], 1));
  cr_assert(eq(u8, qos[1 - a], 0));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.retained_count, 3));
}

/* [MQTT-3.3.1-9] Live forwarding clears the retain flag. */
Test(pubsub, forwarded_retained_publish_has_retain_clear) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(sub, "live", 0);
  cr_assert(tc_publish(pub, "live", "x", 0, true));
  expect_msg(sub, "live", "x", 0, false);
}

/* [MQTT-3.3.1-10] A zero-length retained message clears the topic, and is
 * still forwarded. */
Test(pubsub, empty_retained_message_clears_the_topic) {
  tc *pub = tc_open(bed, "pub", true);
  tc *live = tc_open(bed, "live", true);
  tc_subscribe(live, "gone", 0);
  cr_assert(tc_publish(pub, "gone", "x", 0, true));
  expect_msg(live, "gone", "x", 0, false);
  cr_assert(tc_publish(pub, "gone", "", 0, true));
  expect_msg(live, "gone", "", 0, false);
  tc *sub = tc_open(bed, "sub", true);
  tc_subscribe(sub, "#", 0);
  cr_assert(tc_quiet(sub));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.retained_count, 0));
}

Test(pubsub, retained_message_is_replaced) {
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "v", "1", 0, true));
  cr_assert(tc_publish(pub, "v", "2", 0, true));
  tc *sub = tc_open(bed, "sub", true);
  tc_subscribe(sub, "v", 0);
  expect_msg(sub, "v", "2", 0, true);
  cr_assert(tc_quiet(sub));
}

/* [MQTT-3.8.4-3] Re-subscribing sends the retained messages again. */
Test(pubsub, resubscribe_resends_retained) {
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "rs", "x", 0, true));
  tc *sub = tc_open(bed, "sub", true);
  tc_subscribe(sub, "rs", 0);
  expect_msg(sub, "rs", "x", 0, true);
  tc_subscribe(sub, "rs", 0);
  expect_msg(sub, "rs", "x", 0, true);
}

Test(pubsub, retained_wildcards_respect_dollar_topics_and_parent_level) {
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "$internal/x", "d", 0, true));
  cr_assert(tc_publish(pub, "p", "parent", 0, true));
  cr_assert(tc_publish(pub, "p/c", "child", 0, true));
  tc *sub = tc_open(bed, "sub", true);
  tc_subscribe(sub, "#", 0);
  int n = 0;
  mqttb_publish p;
  while (tc_expect_publish(sub, &p)) {
    cr_assert(not(slice_eq(p.topic, "$internal/x")));
    n++;
  }
  cr_assert(eq(int, n, 2));
  tc *sub2 = tc_open(bed, "sub2", true);
  tc_subscribe(sub2, "p/#", 0);
  n = 0;
  while (tc_expect_publish(sub2, &p))
    n++;
  cr_assert(eq(int, n, 2), "p/# matches p and p/c");
  tc *sub3 = tc_open(bed, "sub3", true);
  tc_subscribe(sub3, "$internal/+", 0);
  expect_msg(sub3, "$internal/x", "d", 0, true);
}

/* ---- authorization ---- */

static int deny_secret(mqttb_access access, const char *topic, size_t len) {
  (void)access;
  return len >= 6 && memcmp(topic, "secret", 6) == 0;
}

Test(pubsub, authorize_callback_refuses_subscribe_and_publish) {
  bed->authorize = deny_secret;
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(eq(int, tc_subscribe(sub, "secret/x", 1), MQTTB_REASON_SUBSCRIBE_FAILURE));
  cr_assert(eq(int, tc_subscribe(sub, "#", 1), 1));
  /* The refused publish is still acknowledged, but not delivered. */
  cr_assert(tc_publish(pub, "secret/x", "no", 1, false));
  cr_assert(tc_quiet(sub));
  cr_assert(tc_publish(pub, "open", "yes", 1, false));
  expect_msg(sub, "open", "yes", 1, false);
}

/* ---- wills ---- */

static tc *open_with_will(const char *id, const char *wt, const char *wp, uint8_t qos, bool retain,
                          uint16_t keepalive) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = id,
                       .clean = true,
                       .keepalive = keepalive,
                       .will_topic = wt,
                       .will_payload = wp,
                       .will_qos = qos,
                       .will_retain = retain};
  cr_assert(eq(int, tc_connect(c, &o, NULL), 0));
  return c;
}

Test(pubsub, will_is_published_on_transport_loss) {
  tc *watch = tc_open(bed, "watch", true);
  tc_subscribe(watch, "will/#", 2);
  tc *w = open_with_will("w", "will/w", "gone", 1, false, 60);
  tc_drop(w);
  expect_msg(watch, "will/w", "gone", 1, false);
}

Test(pubsub, will_is_published_on_keepalive_expiry) {
  tc *watch = tc_open(bed, "watch", true);
  tc_subscribe(watch, "will/#", 0);
  open_with_will("w", "will/ka", "timeout", 0, false, 5);
  tb_advance(bed, 7500);
  expect_msg(watch, "will/ka", "timeout", 0, false);
}

Test(pubsub, will_is_published_on_protocol_error) {
  tc *watch = tc_open(bed, "watch", true);
  tc_subscribe(watch, "will/#", 0);
  tc *w = open_with_will("w", "will/bad", "bad", 0, false, 60);
  uint8_t junk[] = {0x00, 0x00};
  cr_assert(lt(int, tc_send(w, junk, 2), 0));
  expect_msg(watch, "will/bad", "bad", 0, false);
}

Test(pubsub, will_is_published_on_takeover) {
  tc *watch = tc_open(bed, "watch", true);
  tc_subscribe(watch, "will/#", 0);
  open_with_will("same", "will/same", "taken", 0, false, 60);
  tc_open(bed, "same", true);
  expect_msg(watch, "will/same", "taken", 0, false);
}

/* [MQTT-3.14.4-3] No will after DISCONNECT. */
Test(pubsub, will_is_not_published_after_disconnect) {
  tc *watch = tc_open(bed, "watch", true);
  tc_subscribe(watch, "will/#", 0);
  tc *w = open_with_will("w", "will/w", "x", 0, false, 60);
  tc_disconnect(w);
  tc_drop(w);
  cr_assert(tc_quiet(watch));
}

Test(pubsub, retained_will_is_stored) {
  tc *w = open_with_will("w", "status/w", "offline", 1, true, 60);
  tc_drop(w);
  tc *later = tc_open(bed, "later", true);
  tc_subscribe(later, "status/+", 1);
  expect_msg(later, "status/w", "offline", 1, true);
}

/* ---- persistent sessions ---- */

Test(pubsub, persistent_session_keeps_subscriptions_and_queues_messages) {
  tc *c = tc_open(bed, "p", false);
  tc_subscribe(c, "ps/#", 2);
  tc_drop(c);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "ps/1", "q1", 1, false));
  cr_assert(tc_publish(pub, "ps/2", "q2", 2, false));
  cr_assert(tc_publish(pub, "ps/0", "q0", 0, false));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.clients_disconnected, 1));
  cr_assert(eq(u64, st.publish_dropped, 1), "the QoS 0 message is not queued");
  tc *back = tc_new(bed);
  tc_connect_opts o = {.client_id = "p", .clean = false, .keepalive = 60};
  bool sp = false;
  cr_assert(eq(int, tc_connect(back, &o, &sp), 0));
  cr_assert(sp, "[MQTT-3.2.2-2] session present");
  expect_msg(back, "ps/1", "q1", 1, false);
  expect_msg(back, "ps/2", "q2", 2, false);
  cr_assert(tc_quiet(back));
  /* The subscription is still there. */
  cr_assert(tc_publish(pub, "ps/3", "live", 1, false));
  expect_msg(back, "ps/3", "live", 1, false);
}

Test(pubsub, clean_session_discards_the_stored_session) {
  tc *c = tc_open(bed, "p", false);
  tc_subscribe(c, "cs", 1);
  tc_drop(c);
  tc *back = tc_new(bed);
  tc_connect_opts o = {.client_id = "p", .clean = true, .keepalive = 60};
  bool sp = true;
  cr_assert(eq(int, tc_connect(back, &o, &sp), 0));
  cr_assert(not(sp));
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "cs", "x", 1, false));
  cr_assert(tc_quiet(back));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.clients_disconnected, 0));
}

/* [MQTT-4.4.0-1] Unacknowledged PUBLISH is re-sent with DUP, and a QoS 2
 * flow resumes at PUBREL. */
Test(pubsub, inflight_messages_are_resent_on_reconnect) {
  tc *c = tc_open(bed, "p", false);
  tc_subscribe(c, "f/#", 2);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "f/1", "one", 1, false));
  cr_assert(tc_publish(pub, "f/2", "two", 2, false));
  cr_assert(tc_publish(pub, "f/3", "three", 2, false));
  mqttb_publish p1, p2, p3;
  cr_assert(tc_expect_publish(c, &p1));
  cr_assert(tc_expect_publish(c, &p2));
  cr_assert(tc_expect_publish(c, &p3));
  uint16_t id1 = p1.packet_id, id2 = p2.packet_id, id3 = p3.packet_id;
  /* PUBREC for the second only, then the connection drops. */
  tc_send_ack(c, MQTTB_PKT_PUBREC, id2);
  cr_assert(tc_read(c) && c->f.type == MQTTB_PKT_PUBREL);
  tc_drop(c);
  tc *back = tc_new(bed);
  tc_connect_opts o = {.client_id = "p", .clean = false, .keepalive = 60};
  cr_assert(eq(int, tc_connect(back, &o, NULL), 0));
  mqttb_publish q;
  cr_assert(tc_expect_publish(back, &q));
  cr_assert(eq(u16, q.packet_id, id1));
  cr_assert(q.dup);
  cr_assert(slice_eq(q.payload, "one"));
  tc_send_ack(back, MQTTB_PKT_PUBACK, id1);
  cr_assert(tc_read(back));
  cr_assert(eq(u8, back->f.type, MQTTB_PKT_PUBREL));
  uint16_t relid;
  mqttb_decode_ack(back->body, back->f.remaining, &relid);
  cr_assert(eq(u16, relid, id2));
  tc_send_ack(back, MQTTB_PKT_PUBCOMP, id2);
  cr_assert(tc_expect_publish(back, &q));
  cr_assert(eq(u16, q.packet_id, id3));
  cr_assert(q.dup);
  tc_ack(back, &q);
  cr_assert(tc_quiet(back));
}

Test(pubsub, session_takeover_keeps_persistent_session) {
  tc *a = tc_open(bed, "p", false);
  tc_subscribe(a, "tk", 1);
  tc *b = tc_new(bed);
  tc_connect_opts o = {.client_id = "p", .clean = false, .keepalive = 60};
  bool sp = false;
  cr_assert(eq(int, tc_connect(b, &o, &sp), 0));
  cr_assert(sp);
  cr_assert(a->closed);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "tk", "x", 1, false));
  expect_msg(b, "tk", "x", 1, false);
  cr_assert(tc_quiet(a));
}

Test(pubsub, queue_limit_drops_and_counts) {
  tb_del(bed);
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.max_inflight_messages = 1;
  s.max_queued_messages = 3;
  bed = tb_new(&s);
  tc *c = tc_open(bed, "p", false);
  tc_subscribe(c, "ql", 1);
  tc_drop(c);
  tc *pub = tc_open(bed, "pub", true);
  for (int i = 0; i < 10; i++)
    cr_assert(tc_publish(pub, "ql", "m", 1, false));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.publish_dropped, 7));
  tc *back = tc_new(bed);
  tc_connect_opts o = {.client_id = "p", .clean = false, .keepalive = 60};
  cr_assert(eq(int, tc_connect(back, &o, NULL), 0));
  int n = 0;
  mqttb_publish q;
  while (tc_expect_publish(back, &q)) {
    tc_send_ack(back, MQTTB_PKT_PUBACK, q.packet_id);
    n++;
  }
  cr_assert(eq(int, n, 3));
}

Test(pubsub, large_payload_round_trip) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(sub, "big", 1);
  size_t n = 300000;
  char *payload = malloc(n + 1);
  for (size_t i = 0; i < n; i++)
    payload[i] = (char)('a' + i % 26);
  payload[n] = '\0';
  cr_assert(tc_publish(pub, "big", payload, 1, false));
  mqttb_publish p;
  cr_assert(tc_expect_publish(sub, &p));
  cr_assert(eq(sz, p.payload.len, n));
  cr_assert(eq(int, memcmp(p.payload.ptr, payload, n), 0));
  free(payload);
}

/* A subscriber that does not read while many large messages arrive: the
 * output queue grows segment by segment (each large message takes two or
 * four) and everything comes out intact once it drains. */
Test(pubsub, slow_reader_gets_many_large_messages_intact) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(sub, "big/#", 1);
  char payload[1000];
  for (int i = 0; i < 300; i++) {
    memset(payload, 'a' + i % 26, sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    cr_assert(tc_publish(pub, i % 2 ? "big/odd" : "big/even", payload, 0, false));
  }
  for (int i = 0; i < 300; i++) {
    mqttb_publish p;
    cr_assert(tc_expect_publish(sub, &p), "message %d", i);
    cr_assert(eq(sz, p.payload.len, sizeof(payload) - 1));
    cr_assert(eq(int, p.payload.ptr[0], 'a' + i % 26));
    cr_assert(eq(int, p.payload.ptr[998], 'a' + i % 26));
    tc_ack(sub, &p);
  }
}

Test(pubsub, stats_count_traffic) {
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(sub, "s", 0);
  cr_assert(tc_publish(pub, "s", "x", 0, false));
  expect_msg(sub, "s", "x", 0, false);
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.publish_received, 1));
  cr_assert(eq(u64, st.publish_sent, 1));
  cr_assert(eq(u64, st.clients_connected, 2));
  cr_assert(eq(u64, st.subscription_count, 1));
  cr_assert(lt(u64, 0, st.bytes_received));
  cr_assert(lt(u64, 0, st.bytes_sent));
}
