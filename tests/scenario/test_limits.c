/* SPDX-License-Identifier: MIT */
/* Limits: subscriptions per session, topic depth, queued bytes across the
 * broker, output backlog, and clients that stop reading. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "harness.h"
#include "v5.h"

static tb *with(void (*tweak)(mqttb_settings *)) {
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.sys_interval_ms = 0;
  tweak(&s);
  return tb_new(&s);
}

static void two_subs(mqttb_settings *s) {
  s->max_subscriptions = 2;
}

Test(limits, max_subscriptions_refuses_extra_filters) {
  tb *bed = with(two_subs);
  tc *c = tc_open(bed, "c", true);
  cr_assert(eq(int, tc_subscribe(c, "a", 1), 1));
  cr_assert(eq(int, tc_subscribe(c, "b", 1), 1));
  cr_assert(eq(int, tc_subscribe(c, "c", 1), MQTTB_REASON_SUBSCRIBE_FAILURE));
  /* Replacing an existing one is not a new subscription. */
  cr_assert(eq(int, tc_subscribe(c, "a", 2), 2));
  cr_assert(not(c->closed));
  cr_assert(lt(int, 0, bed->logs[MQTTB_LOG_NOTICE]));
  tb_del(bed);
}

static void three_levels(mqttb_settings *s) {
  s->max_topic_levels = 3;
}

Test(limits, max_topic_levels_refuses_deep_topics_and_filters) {
  tb *bed = with(three_levels);
  tc *sub = tc_open(bed, "sub", true);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(eq(int, tc_subscribe(sub, "a/b/c/#", 0), MQTTB_REASON_SUBSCRIBE_FAILURE));
  cr_assert(eq(int, tc_subscribe(sub, "#", 1), 1));
  cr_assert(tc_publish(pub, "a/b/c/d", "deep", 1, false), "still acknowledged");
  cr_assert(tc_quiet(sub));
  cr_assert(tc_publish(pub, "a/b/c", "ok", 1, false));
  mqttb_publish p;
  cr_assert(tc_expect_publish(sub, &p));
  cr_assert(slice_eq(p.topic, "a/b/c"));
  tb_del(bed);
}

static void small_budget(mqttb_settings *s) {
  s->max_queued_bytes_total = 10;
}

Test(limits, global_queue_budget_drops_and_counts) {
  tb *bed = with(small_budget);
  for (int i = 0; i < 2; i++) {
    char id[4];
    snprintf(id, sizeof(id), "p%d", i);
    tc *c = tc_open(bed, id, false);
    tc_subscribe(c, "q", 1);
    tc_drop(c);
  }
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "q", "12345", 1, false)); /* 2 x 5 bytes queued */
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.publish_dropped, 0));
  cr_assert(tc_publish(pub, "q", "12345", 1, false)); /* no room left */
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.publish_dropped, 2));
  tb_del(bed);
}

static void small_output(mqttb_settings *s) {
  s->max_output_bytes = 10000;
}

/* A subscriber that never reads, next to a healthy one: QoS 0 for the
 * stalled one is dropped once its backlog passes the limit, so memory stays
 * bounded, and the healthy one gets everything. */
Test(limits, non_reading_subscriber_is_bounded_and_others_unaffected) {
  tb *bed = with(small_output);
  tc *dead = tc_open(bed, "dead", true);
  tc *good = tc_open(bed, "good", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(dead, "flood", 0);
  tc_subscribe(good, "flood", 0);
  char payload[1001];
  memset(payload, 'x', 1000);
  payload[1000] = '\0';
  long peak = 0;
  for (int i = 0; i < 2000; i++) {
    cr_assert(tc_publish(pub, "flood", payload, 0, false));
    mqttb_publish p;
    cr_assert(tc_expect_publish(good, &p), "message %d", i);
    cr_assert(eq(sz, p.payload.len, 1000));
    if (bed->alloc.bytes > peak)
      peak = bed->alloc.bytes;
  }
  cr_assert(le(sz, mqttb_conn_output_pending(dead->conn), 10000 + 1100));
  cr_assert(lt(long, peak, 200000), "broker memory grew to %ld bytes", peak);
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(lt(u64, 1900, st.publish_dropped));
  tb_del(bed);
}

/* A client whose output does not drain for output_stall_timeout_ms is
 * closed; one that reads stays. */
Test(limits, stalled_output_closes_the_connection) {
  tb *bed = with(small_output);
  tc *dead = tc_open(bed, "dead", true);
  tc *good = tc_open(bed, "good", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(dead, "t", 1);
  tc_subscribe(good, "t", 1);
  cr_assert(tc_publish(pub, "t", "x", 1, false));
  mqttb_publish p;
  cr_assert(tc_expect_publish(good, &p));
  tc_ack(good, &p);
  uint8_t ping[] = {0xC0, 0x00};
  for (int i = 0; i < 6; i++) {
    tb_advance(bed, 10000);
    tc_send(good, ping, 2);
    tc_send(pub, ping, 2);
    tc_send(dead, ping, 2); /* it still sends, but never reads */
    tc_read_type(good, MQTTB_PKT_PINGRESP);
    tc_read_type(pub, MQTTB_PKT_PINGRESP);
  }
  tb_advance(bed, 1);
  cr_assert(dead->closed);
  cr_assert(eq(int, dead->close_reason, MQTTB_ERR_OUTPUT_STALLED));
  cr_assert(not(good->closed));
  cr_assert(not(pub->closed));
  tb_del(bed);
}

/* QoS 1 to a client that does not acknowledge: at most the in-flight window
 * goes out, the queue holds max_queued_messages, the rest is dropped. */
static void small_queue(mqttb_settings *s) {
  s->max_inflight_messages = 5;
  s->max_queued_messages = 50;
}

Test(limits, unacknowledging_subscriber_memory_is_bounded) {
  tb *bed = with(small_queue);
  tc *slow = tc_open(bed, "slow", true);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(slow, "t", 1);
  for (int i = 0; i < 1000; i++)
    cr_assert(tc_publish(pub, "t", "payload", 1, false));
  int n = 0;
  mqttb_publish p;
  while (tc_expect_publish(slow, &p))
    n++;
  cr_assert(eq(int, n, 5));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.publish_dropped, 1000 - 5 - 50));
  tb_del(bed);
}

/* Log lines one client causes are rate-limited: a client refused 5,000
 * times in a burst produces MQTTB_LOG_BURST notices, then, in the next
 * window, one line counting the rest; its close line always goes out. A
 * client-chosen string (client id, filter) appears cut to
 * MQTTB_LOG_MAX_STR bytes. */
static char last_logs[64][512];
static int nlast;
static void (*harness_log)(mqttb_broker *, mqttb_log_level, const char *, void *);
static void keep_log(mqttb_broker *b, mqttb_log_level level, const char *msg, void *ud) {
  snprintf(last_logs[nlast++ % 64], sizeof(last_logs[0]), "%s", msg);
  harness_log(b, level, msg, ud);
}

static void no_sys(mqttb_settings *s) {
  (void)s;
}

static int deny_all(mqttb_access access, const char *topic, size_t len) {
  (void)access;
  (void)topic;
  (void)len;
  return MQTTB_REASON_NOT_AUTHORIZED_5;
}

Test(limits, one_clients_log_lines_are_rate_limited_and_cut_short) {
  tb *bed = with(no_sys);
  /* Wrap the harness's log callback to see each line. */
  mqttb_broker_del(bed->broker);
  harness_log = bed->cb.log;
  bed->cb.log = keep_log;
  cr_assert(eq(int, mqttb_broker_new(&bed->broker, &bed->settings, &bed->cb, &bed->mem, bed), 0));
  char id[1001];
  memset(id, 'i', 1000);
  id[1000] = '\0';
  tc *c = tc_open(bed, id, true);
  cr_assert(not(c->closed));
  char filter[900];
  memset(filter, 'f', sizeof(filter) - 1);
  filter[sizeof(filter) - 1] = '\0';
  bed->authorize = deny_all;
  int before = bed->logs[MQTTB_LOG_NOTICE];
  for (int i = 0; i < 5000; i++)
    cr_assert(eq(int, tc_subscribe(c, filter, 0), MQTTB_REASON_SUBSCRIBE_FAILURE));
  cr_assert(eq(int, bed->logs[MQTTB_LOG_NOTICE] - before, (int)MQTTB_LOG_BURST));
  for (int i = 0; i < 64 && i < nlast; i++) {
    cr_assert(lt(sz, strlen(last_logs[i]), 200), "a long line: %s", last_logs[i]);
    cr_assert(eq(ptr, strstr(last_logs[i], id), NULL), "the whole client id was logged");
    cr_assert(eq(ptr, strstr(last_logs[i], filter + sizeof(filter) - 1 - 100), NULL),
              "more than a prefix of the filter was logged");
  }
  /* Another client is not affected. */
  tc *d = tc_open(bed, "d", true);
  before = bed->logs[MQTTB_LOG_NOTICE];
  cr_assert(eq(int, tc_subscribe(d, filter, 0), MQTTB_REASON_SUBSCRIBE_FAILURE));
  cr_assert(eq(int, bed->logs[MQTTB_LOG_NOTICE] - before, 1));
  /* The next window lets a line through, after the count. */
  tb_advance(bed, MQTTB_LOG_WINDOW_MS);
  cr_assert(eq(int, tc_subscribe(c, filter, 0), MQTTB_REASON_SUBSCRIBE_FAILURE));
  char want[64];
  snprintf(want, sizeof(want), "%u more log lines suppressed", 5000u - MQTTB_LOG_BURST);
  cr_assert(not(eq(ptr, strstr(last_logs[(nlast - 2) % 64], want), NULL)), "%s",
            last_logs[(nlast - 2) % 64]);
  /* Suppressed again, then counted when the client goes. */
  for (int i = 0; i < 20; i++)
    tc_subscribe(c, filter, 0);
  tc_send(c, "\xc1\x00", 2); /* PINGREQ with reserved flags: closed */
  cr_assert(c->closed);
  /* The window has room for MQTTB_LOG_BURST - 1 more of the 20 refusals;
   * the notice about the bad packet is suppressed too. */
  snprintf(want, sizeof(want), "%u more log lines suppressed", 20u - (MQTTB_LOG_BURST - 1) + 1);
  cr_assert(not(eq(ptr, strstr(last_logs[(nlast - 2) % 64], want), NULL)), "%s",
            last_logs[(nlast - 2) % 64]);
  cr_assert(not(eq(ptr, strstr(last_logs[(nlast - 1) % 64], "closing connection"), NULL)), "%s",
            last_logs[(nlast - 1) % 64]);
  tb_del(bed);
}

/* Bounded work per call: a burst of publishes in one read is handled
 * work_budget units at a time; the rest is held, in order, and another
 * client is served in between. */
static void small_work_budget(mqttb_settings *s) {
  s->work_budget = 40;
}

Test(limits, work_budget_holds_the_rest_of_a_burst) {
  tb *bed = with(small_work_budget);
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "burst/#", 0), 0));
  tc *pub = tc_open(bed, "pub", true);
  tc *other = tc_open(bed, "other", true);
  /* 200 QoS 0 publishes in one buffer: each costs 2 units (the packet and
   * its one delivery). */
  uint8_t buf[200 * 16];
  size_t n = 0;
  for (int i = 0; i < 200; i++) {
    char topic[16];
    int tl = snprintf(topic, sizeof(topic), "burst/%03d", i);
    buf[n++] = 0x30;
    buf[n++] = (uint8_t)(2 + tl + 1);
    buf[n++] = 0;
    buf[n++] = (uint8_t)tl;
    memcpy(buf + n, topic, (size_t)tl);
    n += (size_t)tl;
    buf[n++] = 'x';
  }
  cr_assert(eq(int, tc_send_once(pub, buf, n), 0));
  size_t held = mqttb_conn_input_pending(pub->conn);
  cr_assert(lt(sz, 0, held), "nothing held back");
  cr_assert(lt(sz, held, n));
  int got = 0;
  mqttb_publish p;
  while (tc_expect_publish(sub, &p))
    got++;
  cr_assert(eq(int, got, 20), "one call handled %d publishes", got);
  /* Another client is served now, while the burst is held. */
  uint8_t ping[] = {0xC0, 0x00};
  cr_assert(eq(int, tc_send(other, ping, sizeof(ping)), 0));
  cr_assert(tc_read_type(other, MQTTB_PKT_PINGRESP));
  /* Bytes fed while input is held go after it. */
  uint8_t last[] = {0x30, 0x0a, 0x00, 0x07, 'b', 'u', 'r', 's', 't', '/', 'z', '!'};
  cr_assert(eq(int, tc_send_once(pub, last, sizeof(last)), 0));
  int calls = 1;
  while (mqttb_conn_input_pending(pub->conn) > 0) {
    cr_assert(eq(int, tc_send_once(pub, NULL, 0), 0));
    calls++;
  }
  cr_assert(ge(int, calls, 200 / 20), "%d calls", calls);
  for (int i = 20; i < 200; i++) {
    cr_assert(tc_expect_publish(sub, &p), "publish %d missing", i);
    char topic[16];
    snprintf(topic, sizeof(topic), "burst/%03d", i);
    cr_assert(slice_eq(p.topic, topic), "out of order at %d", i);
  }
  cr_assert(tc_expect_publish(sub, &p));
  cr_assert(slice_eq(p.topic, "burst/z"));
  cr_assert(tc_quiet(sub));
  cr_assert(not(pub->closed));
  tb_del(bed);
}

/* Retained messages go out as the subscriber takes them: a subscriber to
 * '#' over 100,000 retained messages that keeps reading gets every one, at
 * QoS 0 and at QoS 1; one that stops reading holds at most its output
 * limit, loses nothing, and gets the rest once it reads again. */
#define NRETAINED 100000

static void publish_retained(tb *bed, tc *pub, uint8_t qos) {
  uint8_t *buf = malloc((size_t)NRETAINED * 24);
  cr_assert(not(eq(ptr, buf, NULL)));
  size_t n = 0;
  for (int i = 0; i < NRETAINED; i++) {
    char topic[16];
    int tl = snprintf(topic, sizeof(topic), "r/%d/%d", i / 1000, i % 1000);
    buf[n++] = (uint8_t)(0x31 | (qos << 1));
    buf[n++] = (uint8_t)(2 + tl + (qos ? 2 : 0) + 4);
    buf[n++] = 0;
    buf[n++] = (uint8_t)tl;
    memcpy(buf + n, topic, (size_t)tl);
    n += (size_t)tl;
    if (qos) {
      buf[n++] = (uint8_t)((i % 65535 + 1) >> 8);
      buf[n++] = (uint8_t)(i % 65535 + 1);
    }
    memcpy(buf + n, "data", 4);
    n += 4;
  }
  cr_assert(eq(int, tc_send(pub, buf, n), 0));
  free(buf);
  tc_drain(pub); /* the PUBACKs */
  pub->inlen = 0;
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.retained_count, NRETAINED));
}

/* Take what the broker sent c, acknowledge QoS 1 PUBLISHes; returns the
 * PUBLISHes read. */
static int take_publishes(tc *c) {
  tc_drain(c);
  int got = 0;
  size_t off = 0;
  uint8_t acks[4 * 1024];
  size_t na = 0;
  mqttb_frame f;
  while (off < c->inlen &&
         mqttb_codec_frame(c->in + off, c->inlen - off, UINT32_MAX, &f) == MQTTB_CODEC_OK &&
         f.hdr_len + f.remaining <= c->inlen - off) {
    const uint8_t *body = c->in + off + f.hdr_len;
    if (f.type == MQTTB_PKT_PUBLISH) {
      cr_assert(f.flags & 1, "a retained message without the retain flag");
      got++;
      if (((f.flags >> 1) & 3) == 1) {
        size_t tl = (size_t)body[0] << 8 | body[1];
        acks[na++] = 0x40;
        acks[na++] = 2;
        acks[na++] = body[2 + tl];
        acks[na++] = body[3 + tl];
        if (na == sizeof(acks)) {
          cr_assert(eq(int, tc_send(c, acks, na), 0));
          na = 0;
        }
      }
    }
    off += f.hdr_len + f.remaining;
  }
  memmove(c->in, c->in + off, c->inlen - off);
  c->inlen -= off;
  if (na)
    cr_assert(eq(int, tc_send(c, acks, na), 0));
  return got;
}

Test(limits, retained_delivery_is_paced_by_the_subscriber, .timeout = 120) {
  tb *bed = with(no_sys);
  for (uint8_t qos = 0; qos <= 1; qos++) {
    tc *pub = tc_open(bed, qos ? "pub1" : "pub0", true);
    publish_retained(bed, pub, qos);
    mqttb_stats before;
    mqttb_broker_get_stats(bed->broker, &before);
    tc *sub = tc_open(bed, "reader", true);
    /* Subscribe by hand: the SUBACK comes first, then the stream. */
    uint8_t s[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, '#', qos};
    cr_assert(eq(int, tc_send(sub, s, sizeof(s)), 0));
    cr_assert(tc_read(sub));
    cr_assert(eq(u8, sub->f.type, MQTTB_PKT_SUBACK));
    int total = 0, got;
    while ((got = take_publishes(sub)) > 0)
      total += got;
    cr_assert(eq(int, total, NRETAINED), "QoS %u: %d of %d retained messages", qos, total,
              NRETAINED);
    mqttb_stats after;
    mqttb_broker_get_stats(bed->broker, &after);
    cr_assert(eq(u64, after.publish_dropped, before.publish_dropped), "messages were dropped");

    /* One that does not read: its output stays under the limit. */
    tc *lazy = tc_open(bed, "lazy", true);
    cr_assert(eq(int, tc_send(lazy, s, sizeof(s)), 0));
    cr_assert(le(sz, mqttb_conn_output_pending(lazy->conn), bed->settings.max_output_bytes));
    cr_assert(lt(sz, 0, mqttb_conn_output_pending(lazy->conn)));
    /* It reads after all, and gets everything. */
    cr_assert(tc_read(lazy));
    cr_assert(eq(u8, lazy->f.type, MQTTB_PKT_SUBACK));
    total = 0;
    while ((got = take_publishes(lazy)) > 0)
      total += got;
    cr_assert(eq(int, total, NRETAINED), "QoS %u late reader: %d", qos, total);
    mqttb_broker_get_stats(bed->broker, &after);
    cr_assert(eq(u64, after.publish_dropped, before.publish_dropped));
    tc_del(lazy);
    tc_del(sub);
    /* Clear the store for the next round. */
    tc_del(pub);
  }
  tb_del(bed);
}

/* Before CONNECT completes a packet may be at most max_connect_size:
 * eight connections announcing huge packets are closed at their fixed
 * header, and nothing is buffered for them. */
Test(limits, huge_packets_before_connect_are_refused_at_the_header) {
  tb *bed = with(no_sys);
  long before = bed->alloc.bytes;
  tc *c[8];
  for (int i = 0; i < 8; i++) {
    c[i] = tc_new(bed);
    /* CONNECT announcing 200 MB, and its first bytes. */
    uint8_t hdr[] = {0x10, 0x80, 0x80, 0x80, 0x60, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04};
    cr_assert(eq(int, tc_send(c[i], hdr, sizeof(hdr)), MQTTB_ERR_PACKET_TOO_LARGE));
    cr_assert(c[i]->closed);
  }
  cr_assert(lt(long, bed->alloc.bytes - before, 8 * 4096), "%ld bytes held",
            bed->alloc.bytes - before);
  /* A normal client connects as ever. */
  tc *ok = tc_open(bed, "ok", true);
  cr_assert(not(ok->closed));
  tb_del(bed);
}

/* All connections together buffer at most max_input_bytes_total: the one
 * whose packet would go past it is closed, the others go on. */
static void small_input_total(mqttb_settings *s) {
  s->max_input_bytes_total = 100000;
}

Test(limits, input_of_all_connections_is_bounded) {
  tb *bed = with(small_input_total);
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "big", 0), 0));
  tc *a = tc_open(bed, "a", true), *b = tc_open(bed, "b", true);
  /* Each starts a PUBLISH of 60,000 bytes and sends 59,000 of them. */
  static uint8_t pkt[60004];
  size_t n = 0;
  pkt[n++] = 0x30;
  uint32_t rem = 60000 - 4;
  n += mqttb_codec_varint_encode(pkt + n, rem);
  pkt[n++] = 0;
  pkt[n++] = 3;
  memcpy(pkt + n, "big", 3);
  n += 3;
  size_t total = 1 + mqttb_codec_varint_size(rem) + rem; /* the whole packet */
  memset(pkt + n, 'p', total - n);
  cr_assert(eq(int, tc_send(a, pkt, 59000), 0));
  cr_assert(not(a->closed));
  cr_assert(eq(int, tc_send(b, pkt, 59000), MQTTB_ERR_CONN_NOMEM));
  cr_assert(b->closed);
  /* a completes its packet, and the subscriber gets it. */
  cr_assert(eq(int, tc_send(a, pkt + 59000, total - 59000), 0));
  mqttb_publish p;
  cr_assert(tc_expect_publish(sub, &p));
  cr_assert(eq(sz, p.payload.len, total - n));
  tb_del(bed);
}

/* memory_limit: past it a message is not stored (MQTT 5: PUBACK 0x97, the
 * connection stays; QoS 0: dropped and counted), and the broker keeps
 * serving: connects, pings, acknowledgements, clearing retained messages. */
static void four_mib(mqttb_settings *s) {
  s->memory_limit = 4u << 20;
}

Test(limits, memory_limit_refuses_messages_and_keeps_serving) {
  tb *bed = with(four_mib);
  tc *p = tc_new(bed);
  c5o o = {.id = "p5", .clean = true};
  cr_assert(eq(int, connect5(p, &o, NULL), 0));
  static char payload[10000];
  memset(payload, 'x', sizeof(payload) - 1);
  int stored = 0, code = MQTTB_REASON_NO_MATCHING_SUBSCRIBERS;
  for (int i = 0; i < 1000 && code == MQTTB_REASON_NO_MATCHING_SUBSCRIBERS; i++) {
    char topic[16];
    snprintf(topic, sizeof(topic), "keep/%d", i);
    code = pub5(p, topic, payload, 1, true, NULL); /* nobody subscribes: 0x10 */
    if (code == MQTTB_REASON_NO_MATCHING_SUBSCRIBERS)
      stored++;
  }
  cr_assert(eq(int, code, MQTTB_REASON_QUOTA_EXCEEDED), "never refused");
  cr_assert(lt(int, 300, stored), "only %d stored under a 4 MiB limit", stored);
  cr_assert(lt(int, stored, 420), "%d of 10 kB stored under a 4 MiB limit", stored);
  cr_assert(not(p->closed), "refused, not disconnected");
  /* QoS 0 is dropped and counted. */
  mqttb_stats st0, st1;
  mqttb_broker_get_stats(bed->broker, &st0);
  cr_assert(eq(int, pub5(p, "keep/x", payload, 0, false, NULL), 0));
  cr_assert(not(p->closed));
  mqttb_broker_get_stats(bed->broker, &st1);
  cr_assert(eq(u64, st1.publish_dropped, st0.publish_dropped + 1));
  /* Still serving: a new client, a ping, a subscription. */
  tc *q = tc_open(bed, "q", true);
  cr_assert(not(q->closed));
  uint8_t ping[] = {0xC0, 0x00};
  cr_assert(eq(int, tc_send(q, ping, sizeof(ping)), 0));
  cr_assert(tc_read_type(q, MQTTB_PKT_PINGRESP));
  cr_assert(eq(int, tc_subscribe(q, "other", 1), 1));
  /* Clearing retained messages frees memory; then messages fit again. */
  for (int i = 0; i < 50; i++) {
    char topic[16];
    snprintf(topic, sizeof(topic), "keep/%d", i);
    cr_assert(eq(int, pub5(p, topic, "", 1, true, NULL), MQTTB_REASON_NO_MATCHING_SUBSCRIBERS));
  }
  cr_assert(
      eq(int, pub5(p, "keep/again", payload, 1, true, NULL), MQTTB_REASON_NO_MATCHING_SUBSCRIBERS));
  tb_del(bed);
}
