/* SPDX-License-Identifier: MIT */
/* Malformed input of every class closes that connection only, leaves the
 * broker serving others, and leaks nothing (tb_del checks the allocator).
 * Also: input split at every byte gives the same result. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "v5.h"

typedef struct bad_case {
  char name[64];
  uint8_t bytes[32];
  size_t len;
  int expect; /* the close reason */
} bad_case;

/* Sent after a valid CONNECT. */
static bad_case after_connect[] = {
    {"remaining length of five bytes",
     {0x30, 0xff, 0xff, 0xff, 0xff, 0x01},
     6,
     MQTTB_ERR_MALFORMED},
    {"packet type 0", {0x00, 0x00}, 2, MQTTB_ERR_MALFORMED},
    {"packet type 15 (AUTH) in 3.1.1", {0xF0, 0x00}, 2, MQTTB_ERR_PROTOCOL},
    {"PUBLISH QoS 3", {0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01}, 7, MQTTB_ERR_MALFORMED},
    {"PUBLISH QoS 1 packet id 0",
     {0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00},
     7,
     MQTTB_ERR_MALFORMED},
    {"PUBLISH empty topic", {0x30, 0x03, 0x00, 0x00, 'x'}, 5, MQTTB_ERR_MALFORMED},
    {"PUBLISH wildcard topic", {0x30, 0x04, 0x00, 0x01, '#', 'x'}, 6, MQTTB_ERR_MALFORMED},
    {"PUBLISH topic with U+0000", {0x30, 0x04, 0x00, 0x02, 'a', 0x00}, 6, MQTTB_ERR_MALFORMED},
    {"PUBLISH topic with bad UTF-8", {0x30, 0x04, 0x00, 0x02, 0xC0, 0x80}, 6, MQTTB_ERR_MALFORMED},
    {"PUBLISH topic longer than the packet", {0x30, 0x03, 0x00, 0x09, 'a'}, 5, MQTTB_ERR_MALFORMED},
    {"PUBLISH DUP on QoS 0", {0x38, 0x03, 0x00, 0x01, 't'}, 5, MQTTB_ERR_MALFORMED},
    {"PUBACK wrong length", {0x40, 0x03, 0x00, 0x01, 0x00}, 5, MQTTB_ERR_MALFORMED},
    {"PUBACK reserved flags", {0x41, 0x02, 0x00, 0x01}, 4, MQTTB_ERR_MALFORMED},
    {"PUBACK packet id 0", {0x40, 0x02, 0x00, 0x00}, 4, MQTTB_ERR_MALFORMED},
    {"PUBREL flags 0", {0x60, 0x02, 0x00, 0x01}, 4, MQTTB_ERR_MALFORMED},
    {"SUBSCRIBE flags 0", {0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}, 8, MQTTB_ERR_MALFORMED},
    {"SUBSCRIBE no filters", {0x82, 0x02, 0x00, 0x01}, 4, MQTTB_ERR_MALFORMED},
    {"SUBSCRIBE packet id 0",
     {0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00},
     8,
     MQTTB_ERR_MALFORMED},
    {"SUBSCRIBE QoS 3", {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03}, 8, MQTTB_ERR_MALFORMED},
    {"SUBSCRIBE reserved option bits",
     {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x40},
     8,
     MQTTB_ERR_MALFORMED},
    {"SUBSCRIBE bad filter a#",
     {0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 'a', '#', 0x00},
     9,
     MQTTB_ERR_MALFORMED},
    {"SUBSCRIBE bad filter a+",
     {0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 'a', '+', 0x00},
     9,
     MQTTB_ERR_MALFORMED},
    {"SUBSCRIBE empty filter", {0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00}, 7, MQTTB_ERR_MALFORMED},
    {"SUBSCRIBE missing options byte",
     {0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'},
     7,
     MQTTB_ERR_MALFORMED},
    {"UNSUBSCRIBE flags 0", {0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}, 7, MQTTB_ERR_MALFORMED},
    {"UNSUBSCRIBE no filters", {0xA2, 0x02, 0x00, 0x01}, 4, MQTTB_ERR_MALFORMED},
    {"PINGREQ with a body", {0xC0, 0x01, 0x00}, 3, MQTTB_ERR_MALFORMED},
    {"PINGREQ reserved flags", {0xC1, 0x00}, 2, MQTTB_ERR_MALFORMED},
    {"DISCONNECT with a body", {0xE0, 0x01, 0x00}, 3, MQTTB_ERR_MALFORMED},
    {"CONNACK from a client", {0x20, 0x02, 0x00, 0x00}, 4, MQTTB_ERR_PROTOCOL},
    {"SUBACK from a client", {0x90, 0x03, 0x00, 0x01, 0x00}, 5, MQTTB_ERR_PROTOCOL},
    {"UNSUBACK from a client", {0xB0, 0x02, 0x00, 0x01}, 4, MQTTB_ERR_PROTOCOL},
    {"PINGRESP from a client", {0xD0, 0x00}, 2, MQTTB_ERR_PROTOCOL},
};

ParameterizedTestParameters(malformed, after_connect_closes_only_that_connection) {
  return cr_make_param_array(bad_case, after_connect,
                             sizeof(after_connect) / sizeof(after_connect[0]));
}

ParameterizedTest(bad_case *bc, malformed, after_connect_closes_only_that_connection) {
  tb *bed = tb_new(NULL);
  tc *other = tc_open(bed, "other", true);
  tc_subscribe(other, "#", 0);
  tc *bad = tc_open(bed, "bad", true);
  int rv = tc_send(bad, bc->bytes, bc->len);
  cr_assert(eq(int, rv, bc->expect), "%s: got %d (%s)", bc->name, rv, mqttb_strerror(rv));
  cr_assert(bad->closed, "%s: not closed", bc->name);
  cr_assert(eq(int, bad->close_reason, bc->expect));
  cr_assert(lt(int, 0, bed->logs[MQTTB_LOG_NOTICE]), "%s: no log line", bc->name);
  /* The broker still serves the other client. */
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "still/alive", "yes", 1, false));
  mqttb_publish p;
  cr_assert(tc_expect_publish(other, &p), "%s: broker stopped delivering", bc->name);
  cr_assert(slice_eq(p.topic, "still/alive"));
  tb_del(bed);
}

/* Bad CONNECT packets: closed with no CONNACK (or CONNACK 0x01 where the
 * spec asks for it, tested in test_connect). */
static bad_case bad_connects[] = {
    {"CONNECT truncated client id",
     {0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x05, 'x'},
     15,
     MQTTB_ERR_MALFORMED},
    {"CONNECT trailing bytes",
     {0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 'x', 'y'},
     16,
     MQTTB_ERR_MALFORMED},
    {"CONNECT will QoS without will flag",
     {0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x0a, 0x00, 0x3c, 0x00, 0x01, 'x'},
     15,
     MQTTB_ERR_MALFORMED},
    {"CONNECT will retain without will flag",
     {0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x22, 0x00, 0x3c, 0x00, 0x01, 'x'},
     15,
     MQTTB_ERR_MALFORMED},
    {"CONNECT will QoS 3",
     {0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x1e, 0x00, 0x3c, 0x00, 0x01, 'x'},
     15,
     MQTTB_ERR_MALFORMED},
    {"CONNECT client id with bad UTF-8",
     {0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 0xED, 0xA0},
     16,
     MQTTB_ERR_MALFORMED},
    {"CONNECT with reserved fixed-header flags", /* [MQTT-2.2.2-2] */
     {0x11, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 'x'},
     15,
     MQTTB_ERR_MALFORMED},
    {"CONNECT empty body", {0x10, 0x00}, 2, MQTTB_ERR_MALFORMED},
};

ParameterizedTestParameters(malformed, bad_connect_closes_without_connack) {
  return cr_make_param_array(bad_case, bad_connects,
                             sizeof(bad_connects) / sizeof(bad_connects[0]));
}

ParameterizedTest(bad_case *bc, malformed, bad_connect_closes_without_connack) {
  tb *bed = tb_new(NULL);
  tc *other = tc_open(bed, "other", true);
  tc *bad = tc_new(bed);
  int rv = tc_send(bad, bc->bytes, bc->len);
  cr_assert(eq(int, rv, bc->expect), "%s: got %d", bc->name, rv);
  cr_assert(bad->closed);
  cr_assert(tc_quiet(bad), "%s: the broker answered", bc->name);
  uint8_t ping[] = {0xC0, 0x00};
  cr_assert(eq(int, tc_send(other, ping, 2), 0));
  cr_assert(tc_read(other) && other->f.type == MQTTB_PKT_PINGRESP);
  tb_del(bed);
}

Test(malformed, packet_over_max_packet_size_closes_before_buffering) {
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.max_packet_size = 1024;
  tb *bed = tb_new(&s);
  tc *c = tc_open(bed, "big", true);
  /* Only the fixed header of a 1 MB PUBLISH arrives. */
  uint8_t hdr[] = {0x30, 0x80, 0x80, 0x40};
  long before = bed->alloc.live;
  cr_assert(eq(int, tc_send(c, hdr, sizeof(hdr)), MQTTB_ERR_PACKET_TOO_LARGE));
  cr_assert(c->closed);
  cr_assert(le(long, bed->alloc.live, before));
  tb_del(bed);
}

/* [MQTT-3.1.0-1]: the first byte alone shows the packet is not CONNECT.
 * (0x11 may start one: MQTT 3.1 did not reserve CONNECT's flags, so those
 * are checked with the body; see bad_connects.) */
Test(malformed, first_byte_not_connect_closes_at_once) {
  tb *bed = tb_new(NULL);
  uint8_t firsts[] = {0xff, 0x30, 0x20, 0x01, 0x00};
  for (size_t i = 0; i < sizeof(firsts); i++) {
    tc *c = tc_new(bed);
    cr_assert(eq(int, tc_send(c, &firsts[i], 1), MQTTB_ERR_PROTOCOL), "first byte %#x", firsts[i]);
    cr_assert(c->closed);
  }
  tb_del(bed);
}

Test(malformed, garbage_before_connect_closes) {
  tb *bed = tb_new(NULL);
  tc *c = tc_new(bed);
  uint8_t junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  cr_assert(lt(int, tc_send(c, junk, sizeof(junk) - 1), 0));
  cr_assert(c->closed);
  tb_del(bed);
}

/* A whole session as one byte string, then fed in every chunk size: the
 * output must be identical. */
static void run_session(size_t chunk, uint8_t **out, size_t *outlen) {
  tb *bed = tb_new(NULL);
  tc *sub = tc_open(bed, "sub", true);
  tc_subscribe(sub, "x/#", 2);
  tc *c = tc_new(bed);
  uint8_t script[512];
  size_t n = 0;
  mqttb_connect ck = {.protocol_name = {(const uint8_t *)"MQTT", 4},
                      .level = 4,
                      .clean = true,
                      .keepalive = 60,
                      .client_id = {(const uint8_t *)"splitter", 8}};
  n += mqttb_encode_connect(script + n, &ck);
  mqttb_slice f = {(const uint8_t *)"x/+", 3};
  uint8_t q = 1;
  n += mqttb_encode_subscribe(script + n, 5, &f, &q, 1);
  for (uint8_t qos = 0; qos <= 2; qos++) {
    mqttb_publish p = {.qos = qos,
                       .topic = {(const uint8_t *)"x/y", 3},
                       .packet_id = qos ? 10 + qos : 0,
                       .payload = {(const uint8_t *)"payload", 7}};
    n += mqttb_encode_publish(script + n, &p);
  }
  n += mqttb_encode_ack(script + n, MQTTB_PKT_PUBREL, 12);
  n += mqttb_encode_empty(script + n, MQTTB_PKT_PINGREQ);
  cr_assert(lt(sz, n, sizeof(script)));
  cr_assert(eq(int, tc_send_split(c, script, n, chunk), 0));
  tc_drain(c);
  tc_drain(sub);
  *outlen = c->inlen + sub->inlen;
  *out = malloc(*outlen);
  memcpy(*out, c->in, c->inlen);
  memcpy(*out + c->inlen, sub->in, sub->inlen);
  tb_del(bed);
}

Test(malformed, input_split_at_any_byte_gives_the_same_output) {
  uint8_t *ref;
  size_t reflen;
  run_session(100000, &ref, &reflen);
  cr_assert(lt(sz, 20, reflen));
  for (size_t chunk = 1; chunk < 64; chunk++) {
    uint8_t *o;
    size_t olen;
    run_session(chunk, &o, &olen);
    if (olen != reflen && getenv("MQTTB_TEST_DUMP")) {
      for (size_t k = 0; k < olen; k++)
        fprintf(stderr, "%02x", o[k]);
      fprintf(stderr, "\n");
      for (size_t k = 0; k < reflen; k++)
        fprintf(stderr, "%02x", ref[k]);
      fprintf(stderr, "\n");
    }
    cr_assert(eq(sz, olen, reflen), "chunk %zu", chunk);
    cr_assert(eq(int, memcmp(o, ref, reflen), 0), "chunk %zu", chunk);
    free(o);
  }
  free(ref);
}

/* Allocation failure at every step of a connect/subscribe/publish/
 * disconnect scenario: every call fails cleanly, nothing leaks. */
/* After a failure the broker must still work: a fresh pair of clients
 * completes a QoS 1 round trip (allocations no longer fail). */
static void still_serves(tb *bed) {
  bed->alloc.fail_at = 0;
  tc *a = tc_open(bed, "after-sub", true);
  tc *b = tc_open(bed, "after-pub", true);
  cr_assert(eq(int, tc_subscribe(a, "after", 1), 1));
  cr_assert(tc_publish(b, "after", "ok", 1, false));
  mqttb_publish p;
  cr_assert(tc_expect_publish(a, &p));
  cr_assert(slice_eq(p.payload, "ok"));
  tc_ack(a, &p);
  tc_del(a);
  tc_del(b);
}

Test(malformed, out_of_memory_at_every_allocation_is_handled) {
  /* Fail allocation n, for every n the scenario makes, until a run makes
   * fewer allocations than n: then every one of them has failed once. */
  long n;
  for (n = 1;; n++) {
    mqttb_settings s;
    mqttb_settings_default(&s);
    s.sys_interval_ms = 0;
    tb *bed = tb_new(&s);
    tc *sub = tc_new(bed);
    tc *pub = tc_new(bed);
    bed->alloc.count = 0;
    bed->alloc.fail_at = n;
    tc_connect_opts o1 = {.client_id = "sub", .clean = false, .keepalive = 60};
    tc_connect(sub, &o1, NULL);
    tc_connect_opts o2 = {
        .client_id = "pub", .clean = true, .keepalive = 60, .will_topic = "w", .will_payload = "x"};
    tc_connect(pub, &o2, NULL);
    if (!sub->closed) {
      tc_subscribe(sub, "a/#", 2);
      tc_subscribe(sub, "w", 1);
    }
    if (!pub->closed) {
      char big[600];
      memset(big, 'b', sizeof(big) - 1);
      big[sizeof(big) - 1] = '\0';
      tc_publish(pub, "a/b", "x", 1, true);
      tc_publish(pub, "a/c", "y", 2, false);
      tc_publish(pub, "a/d", "z", 0, false);
      tc_publish(pub, "a/e", big, 1, false);
    }
    if (!sub->closed) {
      mqttb_publish p;
      while (tc_expect_publish(sub, &p))
        if (p.qos)
          tc_send_ack(sub, p.qos == 1 ? MQTTB_PKT_PUBACK : MQTTB_PKT_PUBREC, p.packet_id);
      tc_drop(sub);
    }
    tc_drop(pub); /* publishes the will to the stored session */
    tc_del(pub);
    bool done = bed->alloc.count < n;
    still_serves(bed);
    tb_del(bed); /* asserts no leak */
    if (done)
      break;
    cr_assert(lt(long, n, 5000), "the scenario never ran out of allocations to fail");
  }
  cr_assert(lt(long, 40, n), "too few allocations exercised: %ld", n);
  if (getenv("MQTTB_TEST_LOG"))
    fprintf(stderr, "allocation failure walk: %ld allocations\n", n - 1);
}

/* The same walk over MQTT 5 paths: properties kept on messages, topic
 * aliases both ways, subscription identifiers, a shared group, message
 * expiry, a delayed will, session expiry. The bytes are fed without
 * reading the answers, since a failed allocation can close either side at
 * any point. */
static void walk_connect(tc *c, const char *id, bool will) {
  pb props = {.n = 0}, wprops = {.n = 0};
  pb_u32(&props, MQTTB_PROP_SESSION_EXPIRY, 60);
  pb_u16(&props, MQTTB_PROP_RECEIVE_MAXIMUM, 4);
  pb_u16(&props, MQTTB_PROP_TOPIC_ALIAS_MAXIMUM, 4);
  pb_u32(&wprops, MQTTB_PROP_WILL_DELAY, 5);
  pb_str(&wprops, MQTTB_PROP_CONTENT_TYPE, "t");
  c5o o = {.id = id,
           .clean = false,
           .keepalive = 60,
           .props = &props,
           .will_topic = will ? "w" : NULL,
           .will_payload = "gone",
           .will_props = &wprops};
  send_connect5(c, &o);
}

/* One filter with a Subscription Identifier, packet id 7. */
static void walk_subscribe(tc *c, const char *filter, uint8_t opts, uint8_t sub_id) {
  send_subscribe5n(c, &filter, &opts, 1, sub_id, 7);
}

static void walk_publish(tc *c, const char *topic, uint16_t alias, uint8_t qos, uint16_t pid) {
  pb props = {.n = 0};
  pb_u32(&props, MQTTB_PROP_MESSAGE_EXPIRY, 30);
  pb_u16(&props, MQTTB_PROP_TOPIC_ALIAS, alias);
  pb_str(&props, MQTTB_PROP_RESPONSE_TOPIC, "r");
  pb_pair(&props, "k", "v");
  send_pub5(c, topic, "payload", 7, qos, false, pid, &props);
}

Test(malformed, out_of_memory_in_mqtt5_paths_is_handled) {
  long n;
  for (n = 1;; n++) {
    mqttb_settings s;
    mqttb_settings_default(&s);
    s.sys_interval_ms = 0;
    tb *bed = tb_new(&s);
    tc *sub = tc_new(bed);
    tc *sub2 = tc_new(bed);
    tc *pub = tc_new(bed);
    bed->alloc.count = 0;
    bed->alloc.fail_at = n;
    walk_connect(sub, "sub", false);
    walk_subscribe(sub, "a/#", OPT_RAP | 2, 3);
    walk_subscribe(sub, "$share/g/a/+", 1, 4);
    walk_connect(sub2, "sub2", false);
    walk_subscribe(sub2, "$share/g/a/+", 1, 5);
    walk_connect(pub, "pub", true);
    walk_publish(pub, "a/b", 1, 1, 1);
    walk_publish(pub, "", 1, 2, 2); /* through the alias */
    tc_drain(sub);
    tc_drain(sub2);
    tc_drain(pub);
    tc_drop(sub2); /* its shared delivery goes to sub when the session ends */
    tc_drop(pub);  /* a delayed will */
    tb_advance(bed, 6000);
    tc_drain(sub);
    tc_del(sub2);
    tc_del(pub);
    tc_drop(sub);
    tb_advance(bed, 61000); /* sessions expire */
    bool done = bed->alloc.count < n;
    if (done) {
      /* The run without a failure did what it says. */
      mqttb_stats st;
      mqttb_broker_get_stats(bed->broker, &st);
      cr_assert(eq(u64, st.publish_received, 2), "the aliased PUBLISH was not accepted");
      cr_assert(eq(u64, st.publish_sent, 4), "2 to a/#, 2 to the group");
      cr_assert(eq(u64, st.clients_disconnected, 0), "sessions did not expire");
    }
    still_serves(bed);
    tb_del(bed); /* asserts no leak */
    if (done)
      break;
    cr_assert(lt(long, n, 5000), "the scenario never ran out of allocations to fail");
  }
  cr_assert(lt(long, 60, n), "too few allocations exercised: %ld", n);
  if (getenv("MQTTB_TEST_LOG"))
    fprintf(stderr, "MQTT 5 allocation failure walk: %ld allocations\n", n - 1);
}

/* Out of memory while the subscribers of a message are being found: none
 * of them gets it, it is counted as dropped, and a publisher at QoS 1 or 2
 * is not acknowledged (MQTT 3.1.1: disconnected, so that it sends it
 * again). A failure after that (one subscriber's output) drops QoS 0 for
 * that subscriber only, and counts it; at QoS 1 and 2 that subscriber is
 * either counted the same way or closed for the memory. In the last round
 * no allocation fails, and all three get it. */
Test(malformed, out_of_memory_while_matching_reaches_nobody_and_is_not_acknowledged) {
  int none = 0, some = 0;
  for (uint8_t qos = 0; qos <= 2; qos++) {
    for (long k = 1; k <= 13; k++) {
      mqttb_settings s;
      mqttb_settings_default(&s);
      s.sys_interval_ms = 0;
      tb *bed = tb_new(&s);
      tc *sub[3];
      const char *filters[] = {"m/a/b", "m/+/b", "m/#"};
      for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "s%d", i);
        sub[i] = tc_open(bed, id, true);
        cr_assert(eq(int, tc_subscribe(sub[i], filters[i], 2), 2));
      }
      tc *pub = tc_open(bed, "pub", true);
      bed->alloc.fail_at = k < 13 ? bed->alloc.count + k : 0;
      tc_publish_raw(pub, "m/a/b", "x", 1, qos, false, false, 7);
      bed->alloc.fail_at = 0;
      int got = 0;
      for (int i = 0; i < 3; i++) {
        while (tc_read(sub[i])) {
          cr_assert(eq(u8, sub[i]->f.type, MQTTB_PKT_PUBLISH));
          got++;
        }
      }
      bool acked = false;
      while (tc_read(pub))
        acked = acked || pub->f.type == MQTTB_PKT_PUBACK || pub->f.type == MQTTB_PKT_PUBREC;
      mqttb_stats st;
      mqttb_broker_get_stats(bed->broker, &st);
      if (got == 0) {
        none++;
        if (qos > 0)
          cr_assert(not(acked), "QoS %u, allocation %ld: acknowledged, delivered to nobody", qos,
                    k);
        else
          cr_assert(eq(u64, st.publish_dropped, 1), "allocation %ld: not counted", k);
      } else if (qos == 0) {
        cr_assert(eq(u64, got + st.publish_dropped, 3), "allocation %ld: %d got it", k, got);
      }
      if (got > 0 && got < 3) {
        some++;
        bool closed = sub[0]->closed || sub[1]->closed || sub[2]->closed;
        cr_assert(st.publish_dropped > 0 || closed, "QoS %u, allocation %ld: %d got it, unseen",
                  qos, k, got);
      }
      if (k == 13)
        cr_assert(eq(int, got, 3), "QoS %u, no failure", qos);
      still_serves(bed);
      tb_del(bed); /* asserts no leak */
    }
  }
  cr_assert(lt(int, 0, none));
  cr_assert(lt(int, 0, some), "no failure came after the matching");
}
