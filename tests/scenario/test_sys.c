/* SPDX-License-Identifier: MIT */
/* The $SYS topic tree: figures after scripted activity, the update interval,
 * retained delivery, and $SYS isolation. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "v5.h"
#include "sys.h"

static tb *bed;

static void setup(void) {
  mqttb_settings s;
  mqttb_settings_default(&s);
  cr_assert(eq(u32, s.sys_interval_ms, 10000), "the default interval is 10 s");
  bed = tb_new(&s);
}
static void teardown(void) {
  tb_del(bed);
}

TestSuite(sys, .init = setup, .fini = teardown);

#define MAXV 128
typedef struct seen {
  int n;
  char topic[MAXV][64];
  char value[MAXV][48];
  bool retain[MAXV];
} seen;

/* Read every PUBLISH the client has (skipping PINGRESP); remember the last
 * value per topic. */
static int collect(tc *c, seen *s) {
  int got = 0;
  mqttb_publish p;
  while (tc_read(c)) {
    if (c->f.type != MQTTB_PKT_PUBLISH)
      continue;
    cr_assert(eq(int, mqttb_decode_publish(c->f.flags, c->body, c->f.remaining, &p), 0));
    char topic[64];
    snprintf(topic, sizeof(topic), "%.*s", (int)p.topic.len, (const char *)p.topic.ptr);
    int i = 0;
    while (i < s->n && strcmp(s->topic[i], topic) != 0)
      i++;
    if (i == s->n) {
      cr_assert(lt(int, s->n, MAXV));
      s->n++;
      snprintf(s->topic[i], sizeof(s->topic[i]), "%s", topic);
    }
    snprintf(s->value[i], sizeof(s->value[i]), "%.*s", (int)p.payload.len,
             (const char *)p.payload.ptr);
    s->retain[i] = p.retain;
    got++;
  }
  return got;
}

static const char *val(const seen *s, const char *topic) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->topic[i], topic) == 0)
      return s->value[i];
  return NULL;
}

static void expect(const seen *s, const char *topic, const char *want) {
  const char *v = val(s, topic);
  cr_assert(not(eq(ptr, (void *)v, NULL)), "%s was not published", topic);
  cr_assert(eq(str, (char *)v, (char *)want), "%s", topic);
}

Test(sys, first_timer_publishes_the_tree_and_new_subscribers_get_it_retained) {
  cr_assert(eq(u64, mqttb_broker_next_deadline(bed->broker), 0));
  tb_advance(bed, 0);
  cr_assert(eq(u64, mqttb_broker_next_deadline(bed->broker), bed->now + 10000));
  tc *c = tc_open(bed, "watcher", true);
  cr_assert(eq(int, tc_subscribe(c, "$SYS/#", 0), 0));
  seen s = {0};
  cr_assert(lt(int, 20, collect(c, &s)));
  for (int i = 0; i < s.n; i++)
    cr_assert(s.retain[i], "%s not retained on subscribe", s.topic[i]);
  expect(&s, "$SYS/broker/version", "mqttb version " MQTTB_VERSION_STRING);
  expect(&s, "$SYS/broker/uptime", "0 seconds");
  expect(&s, "$SYS/broker/time", "2026-11-25T15:20:00Z");
  expect(&s, "$SYS/broker/clients/connected", "0");
  expect(&s, "$SYS/broker/load/connections/1min", "0.00");
  cr_assert(not(eq(ptr, (void *)val(&s, "$SYS/broker/heap/current"), NULL)));
  cr_assert(not(eq(ptr, (void *)val(&s, "$SYS/broker/load/bytes/received/15min"), NULL)));
}

Test(sys, figures_after_a_scripted_sequence) {
  tb_advance(bed, 0);
  tc *watch = tc_open(bed, "watch", true);
  tc_subscribe(watch, "$SYS/broker/+/+", 0);
  tc_subscribe(watch, "$SYS/broker/messages/+/+", 0);
  tc_subscribe(watch, "$SYS/broker/load/bytes/+", 0);
  tc_subscribe(watch, "$SYS/broker/uptime", 0);
  seen s = {0};
  collect(watch, &s);
  /* Two persistent clients, one of which leaves; one clean client. */
  tc *p1 = tc_open(bed, "p1", false);
  tc *p2 = tc_open(bed, "p2", false);
  tc *pub = tc_open(bed, "pub", true);
  tc_subscribe(p1, "t/#", 1);
  tc_subscribe(p2, "t/#", 1);
  tc_drop(p2);
  cr_assert(tc_publish(pub, "t/a", "x", 1, true));
  cr_assert(tc_publish(pub, "t/b", "y", 0, false)); /* dropped for offline p2 */
  mqttb_publish p;
  while (tc_expect_publish(p1, &p))
    tc_ack(p1, &p);
  tb_advance(bed, 10000);
  collect(watch, &s);
  expect(&s, "$SYS/broker/uptime", "10 seconds");
  expect(&s, "$SYS/broker/clients/connected", "3"); /* watch, p1, pub */
  expect(&s, "$SYS/broker/clients/disconnected", "1");
  expect(&s, "$SYS/broker/clients/total", "4");
  expect(&s, "$SYS/broker/clients/maximum", "4");
  expect(&s, "$SYS/broker/subscriptions/count", "6");
  expect(&s, "$SYS/broker/messages/publish/received", "2");
  expect(&s, "$SYS/broker/messages/publish/dropped", "1");
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  char buf[32];
  /* The retained t/a and every $SYS topic. */
  snprintf(buf, sizeof(buf), "%llu", (unsigned long long)st.retained_count);
  expect(&s, "$SYS/broker/messages/retained/count", buf);
  cr_assert(lt(u64, 20, st.retained_count));
  snprintf(buf, sizeof(buf), "%llu", (unsigned long long)st.bytes_received);
  expect(&s, "$SYS/broker/load/bytes/received", buf);
  const char *sent = val(&s, "$SYS/broker/messages/publish/sent");
  cr_assert(not(eq(ptr, (void *)sent, NULL)));
  cr_assert(lt(long, 2, strtol(sent, NULL, 10)));
  cr_assert(not(eq(ptr, (void *)val(&s, "$SYS/broker/messages/received"), NULL)));
  cr_assert(not(eq(ptr, (void *)val(&s, "$SYS/broker/messages/sent"), NULL)));
  /* Disconnects are counted too. */
  tc_disconnect(pub);
  tb_advance(bed, 10000);
  collect(watch, &s);
  expect(&s, "$SYS/broker/clients/connected", "2");
  expect(&s, "$SYS/broker/clients/maximum", "4");
}

Test(sys, only_changed_values_are_published_again) {
  tb_advance(bed, 0);
  tc *watch = tc_open(bed, "watch", true);
  tc_subscribe(watch, "$SYS/broker/clients/connected", 0);
  tc_subscribe(watch, "$SYS/broker/uptime", 0);
  seen s = {0};
  cr_assert(eq(int, collect(watch, &s), 2));
  tb_advance(bed, 10000);
  seen s2 = {0};
  /* clients/connected went from 0 to 1; uptime changed. */
  cr_assert(eq(int, collect(watch, &s2), 2));
  expect(&s2, "$SYS/broker/clients/connected", "1");
  cr_assert(not(s2.retain[0]), "live updates are forwarded with retain 0");
  tb_advance(bed, 10000);
  seen s3 = {0};
  cr_assert(eq(int, collect(watch, &s3), 1), "only the uptime changed");
  expect(&s3, "$SYS/broker/uptime", "20 seconds");
}

Test(sys, interval_zero_turns_the_tree_off) {
  tb_del(bed);
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.sys_interval_ms = 0;
  bed = tb_new(&s);
  cr_assert(eq(u64, mqttb_broker_next_deadline(bed->broker), UINT64_MAX));
  tc *watch = tc_open(bed, "watch", true);
  tc_subscribe(watch, "$SYS/#", 0);
  tb_advance(bed, 60000);
  cr_assert(tc_quiet(watch));
}

/* [MQTT-4.7.2-1] Wildcard-first filters do not match $SYS. */
Test(sys, wildcards_do_not_match_sys_topics) {
  tc *all = tc_open(bed, "all", true);
  tc_subscribe(all, "#", 0);
  tc *plus = tc_open(bed, "plus", true);
  tc_subscribe(plus, "+/broker/#", 0);
  tb_advance(bed, 0);
  tb_advance(bed, 10000);
  cr_assert(tc_quiet(all));
  cr_assert(tc_quiet(plus));
}

Test(sys, clients_cannot_publish_into_sys) {
  tb_advance(bed, 0);
  tc *watch = tc_open(bed, "watch", true);
  tc_subscribe(watch, "$SYS/#", 0);
  seen s = {0};
  collect(watch, &s);
  tc *bad = tc_open(bed, "bad", true);
  int before = bed->logs[MQTTB_LOG_NOTICE];
  cr_assert(tc_publish(bad, "$SYS/broker/version", "evil", 1, true), "still acknowledged");
  cr_assert(tc_quiet(watch));
  cr_assert(lt(int, before, bed->logs[MQTTB_LOG_NOTICE]));
  cr_assert(not(eq(ptr, strstr(bed->last_log, "$SYS"), NULL)));
  cr_assert(not(bad->closed));
  tc *late = tc_open(bed, "late", true);
  tc_subscribe(late, "$SYS/broker/version", 0);
  seen s2 = {0};
  collect(late, &s2);
  expect(&s2, "$SYS/broker/version", "mqttb version " MQTTB_VERSION_STRING);
}

Test(sys, load_averages_follow_traffic) {
  tb_advance(bed, 0);
  tc *watch = tc_open(bed, "watch", true);
  tc_subscribe(watch, "$SYS/broker/load/publish/received/+", 0);
  tc *pub = tc_open(bed, "pub", true);
  seen s = {0};
  collect(watch, &s);
  /* 10 publishes per 10 s interval = 60 per minute. */
  for (int k = 0; k < 60; k++) {
    for (int i = 0; i < 10; i++)
      tc_publish(pub, "x", "y", 0, false);
    /* Both clients keep their keep-alive (60 s) going. */
    uint8_t ping[] = {0xC0, 0x00};
    tc_send(watch, ping, 2);
    tc_send(pub, ping, 2);
    tb_advance(bed, 10000);
    /* Both read what they get, or the stall timeout would close them. */
    collect(watch, &s);
    tc_drain(pub);
  }
  collect(watch, &s);
  cr_assert(not(watch->closed));
  double one = strtod(val(&s, "$SYS/broker/load/publish/received/1min"), NULL);
  double fifteen = strtod(val(&s, "$SYS/broker/load/publish/received/15min"), NULL);
  cr_assert(lt(dbl, 59.0, one));
  cr_assert(lt(dbl, one, 61.0));
  /* After 10 minutes the 15-minute average is still catching up. */
  cr_assert(lt(dbl, 20.0, fifteen));
  cr_assert(lt(dbl, fifteen, 59.0));
}

Test(sys, time_format_is_iso8601_utc) {
  char buf[32];
  mqttb_sys_format_time(0, buf, sizeof(buf));
  cr_assert(eq(str, buf, "1970-01-01T00:00:00Z"));
  mqttb_sys_format_time(951782400, buf, sizeof(buf));
  cr_assert(eq(str, buf, "2000-02-29T00:00:00Z"));
  mqttb_sys_format_time(1795620123, buf, sizeof(buf));
  cr_assert(eq(str, buf, "2026-11-25T15:22:03Z"));
}

/* A retained message past its Message Expiry Interval is no longer
 * retained: not sent to new subscribers (and not counted as dropped), and
 * swept from the store at the next update. */
Test(sys, expired_retained_messages_are_swept) {
  tb_advance(bed, 0);
  tc *pub = tc_new(bed);
  c5o o = {.id = "p5", .clean = true, .keepalive = 0};
  cr_assert(eq(int, send_connect5(pub, &o), 0));
  cr_assert(tc_read(pub) && pub->f.type == MQTTB_PKT_CONNACK);
  pb props = {.n = 0};
  pb_u32(&props, MQTTB_PROP_MESSAGE_EXPIRY, 5);
  cr_assert(eq(int, send_pub5(pub, "short/lived", "x", 1, 0, true, 0, &props), 0));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  uint64_t held = st.retained_count;
  tc *early = tc_open(bed, "early", true);
  tc_subscribe(early, "short/#", 0);
  mqttb_publish got;
  cr_assert(tc_expect_publish(early, &got), "still retained within its interval");
  tb_advance(bed, 6000);
  tc *late = tc_open(bed, "late", true);
  tc_subscribe(late, "short/#", 0);
  cr_assert(tc_quiet(late), "an expired retained message was delivered");
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.publish_dropped, 0));
  tb_advance(bed, 10000); /* the next $SYS update sweeps it */
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.retained_count, held - 1));
}
