/* SPDX-License-Identifier: MIT */
/* Durability through store records: what survives a restart (sessions,
 * subscriptions, queued and in-flight messages both ways, retained
 * messages, expiries), snapshots, the ordering of records and
 * acknowledgements, group commit, and damaged stores. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "store.h"
#include "v5.h"

static tb *bed;

static void setup(void) {
  bed = tb_new(NULL);
}

static void teardown(void) {
  tb_del(bed);
}

TestSuite(store, .init = setup, .fini = teardown);

static tc *persistent(const char *id) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = id, .clean = false};
  cr_assert(eq(int, tc_connect(c, &o, NULL), 0));
  return c;
}

static tc *resume(const char *id, bool *sp) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = id, .clean = false};
  cr_assert(eq(int, tc_connect(c, &o, sp), 0));
  return c;
}

static size_t count_type(uint8_t type) {
  size_t n = 0;
  for (size_t i = 0; i < bed->nrecords; i++)
    n += bed->records[i].bytes[0] == type;
  return n;
}

static void expect_payload(tc *c, const char *topic, const char *payload, uint8_t qos) {
  mqttb_publish p;
  cr_assert(tc_expect_publish(c, &p), "a PUBLISH of %s", payload);
  cr_assert(slice_eq(p.topic, topic), "topic %.*s", (int)p.topic.len, (const char *)p.topic.ptr);
  cr_assert(slice_eq(p.payload, payload), "payload %.*s, not %s", (int)p.payload.len,
            (const char *)p.payload.ptr, payload);
  cr_assert(eq(u8, p.qos, qos));
  uint16_t pid = p.packet_id;
  if (qos == 1) {
    tc_send_ack(c, MQTTB_PKT_PUBACK, pid);
  } else if (qos == 2) {
    /* Other PUBLISH packets may come before the PUBREL. */
    tc_send_ack(c, MQTTB_PKT_PUBREC, pid);
    cr_assert(tc_read_type(c, MQTTB_PKT_PUBREL));
    tc_send_ack(c, MQTTB_PKT_PUBCOMP, pid);
  }
}

Test(store, a_restart_keeps_sessions_subscriptions_queues_and_retained) {
  tc *sub = persistent("sub");
  cr_assert(eq(int, tc_subscribe(sub, "a/#", 2), 2));
  tc_disconnect(sub);
  tc_del(sub);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "a/1", "one", 1, false));
  cr_assert(tc_publish(pub, "a/2", "two", 2, false));
  cr_assert(tc_publish(pub, "a/3", "three", 1, true));
  cr_assert(tc_publish(pub, "r/x", "kept", 0, true));

  cr_assert(eq(int, tb_restart(bed, NULL), 1), "one session restored");
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.retained_count, 2));
  cr_assert(eq(u64, st.clients_disconnected, 1));
  cr_assert(eq(u64, st.subscription_count, 1));

  bool sp = false;
  sub = resume("sub", &sp);
  cr_assert(sp, "session present after the restart");
  expect_payload(sub, "a/1", "one", 1);
  expect_payload(sub, "a/2", "two", 2);
  expect_payload(sub, "a/3", "three", 1);
  cr_assert(tc_quiet(sub));
  /* The subscription is still there. */
  pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "a/4", "four", 1, false));
  expect_payload(sub, "a/4", "four", 1);
  /* And the retained messages. */
  tc *late = tc_open(bed, "late", true);
  cr_assert(eq(int, tc_subscribe(late, "r/#", 0), 0));
  expect_payload(late, "r/x", "kept", 0);
}

Test(store, a_message_for_many_sessions_is_written_once) {
  for (int i = 0; i < 5; i++) {
    char id[8];
    snprintf(id, sizeof(id), "s%d", i);
    tc *s = persistent(id);
    cr_assert(eq(int, tc_subscribe(s, "t", 1), 1));
    tc_disconnect(s);
    tc_del(s);
  }
  size_t before = count_type(MQTTB_REC_MSG);
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "t", "x", 1, false));
  cr_assert(eq(sz, count_type(MQTTB_REC_MSG), before + 1));
  cr_assert(eq(sz, count_type(MQTTB_REC_DLV), 5));
}

Test(store, clean_sessions_and_qos0_write_nothing) {
  tc *sub = tc_open(bed, "clean", true);
  cr_assert(eq(int, tc_subscribe(sub, "t", 1), 1));
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "t", "x", 1, false));
  expect_payload(sub, "t", "x", 1);
  cr_assert(tc_publish(pub, "t", "y", 0, false));
  expect_payload(sub, "t", "y", 0);
  cr_assert(eq(sz, bed->nrecords, 0), "%zu records", bed->nrecords);
}

Test(store, the_record_of_an_inbound_qos1_message_comes_before_its_puback) {
  tc *sub = persistent("sub");
  cr_assert(eq(int, tc_subscribe(sub, "t", 1), 1));
  tc_disconnect(sub);
  tc_del(sub);
  tc *pub = tc_open(bed, "pub", true);
  size_t before = bed->nrecords;
  tc_publish_raw(pub, "t", "m", 1, 1, false, false, 7);
  /* The records are written during the call that queued the PUBACK. */
  cr_assert(lt(sz, before, bed->nrecords));
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBACK));
}

Test(store, in_flight_messages_come_back_with_their_packet_ids) {
  tc *sub = persistent("sub");
  cr_assert(eq(int, tc_subscribe(sub, "t", 2), 2));
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "t", "q1", 1, false));
  cr_assert(tc_publish(pub, "t", "q2", 2, false));
  cr_assert(tc_publish(pub, "t", "q2b", 2, false));
  mqttb_publish a, b, c;
  cr_assert(tc_expect_publish(sub, &a));
  uint16_t pid_a = a.packet_id;
  cr_assert(tc_expect_publish(sub, &b));
  uint16_t pid_b = b.packet_id;
  cr_assert(tc_expect_publish(sub, &c));
  uint16_t pid_c = c.packet_id;
  /* q2b gets as far as PUBREC: the broker owes a PUBREL, not the message. */
  tc_send_ack(sub, MQTTB_PKT_PUBREC, pid_c);
  cr_assert(tc_read_type(sub, MQTTB_PKT_PUBREL));

  cr_assert(eq(int, tb_restart(bed, NULL), 1));
  bool sp = false;
  sub = resume("sub", &sp);
  cr_assert(sp);
  mqttb_publish p;
  cr_assert(tc_expect_publish(sub, &p));
  cr_assert(slice_eq(p.payload, "q1"));
  cr_assert(p.dup, "re-sent with DUP");
  cr_assert(eq(u16, p.packet_id, pid_a));
  cr_assert(tc_expect_publish(sub, &p));
  cr_assert(slice_eq(p.payload, "q2"));
  cr_assert(eq(u16, p.packet_id, pid_b));
  cr_assert(tc_read(sub));
  cr_assert(eq(u8, sub->f.type, MQTTB_PKT_PUBREL), "PUBREL for the one past PUBREC");
  cr_assert(tc_quiet(sub));
  tc_send_ack(sub, MQTTB_PKT_PUBCOMP, pid_c);
  tc_send_ack(sub, MQTTB_PKT_PUBACK, pid_a);
  tc_send_ack(sub, MQTTB_PKT_PUBREC, pid_b);
  cr_assert(tc_read_type(sub, MQTTB_PKT_PUBREL));
  tc_send_ack(sub, MQTTB_PKT_PUBCOMP, pid_b);
  /* Everything acknowledged stays acknowledged after another restart. */
  cr_assert(eq(int, tb_restart(bed, NULL), 1));
  sub = resume("sub", &sp);
  cr_assert(tc_quiet(sub));
}

Test(store, an_inbound_qos2_message_is_delivered_once_across_a_restart) {
  tc *sub = persistent("sub");
  cr_assert(eq(int, tc_subscribe(sub, "t", 2), 2));
  tc_disconnect(sub);
  tc_del(sub);
  tc *pub = persistent("pub");
  tc_publish_raw(pub, "t", "once", 4, 2, false, false, 42);
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBREC));
  /* No PUBREL before the crash: the publisher sends the message again. */
  cr_assert(eq(int, tb_restart(bed, NULL), 2));
  bool sp;
  pub = resume("pub", &sp);
  cr_assert(sp);
  tc_publish_raw(pub, "t", "once", 4, 2, false, true, 42);
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBREC));
  tc_send_ack(pub, MQTTB_PKT_PUBREL, 42);
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBCOMP));
  sub = resume("sub", &sp);
  expect_payload(sub, "t", "once", 2);
  cr_assert(tc_quiet(sub), "exactly once");
}

Test(store, a_store_torn_inside_a_qos2_fanout_drops_its_deliveries) {
  for (int i = 0; i < 3; i++) {
    char id[8];
    snprintf(id, sizeof(id), "s%d", i);
    tc *s = persistent(id);
    cr_assert(eq(int, tc_subscribe(s, "t", 2), 2));
    tc_disconnect(s);
    tc_del(s);
  }
  tc *pub = persistent("pub");
  size_t before = bed->nrecords;
  tc_publish_raw(pub, "t", "x", 1, 2, false, false, 9);
  size_t after = bed->nrecords;
  cr_assert(lt(sz, before + 3, after));
  cr_assert(eq(u8, bed->records[after - 1].bytes[0], MQTTB_REC_QOS2_IN), "the commit comes last");
  /* Every cut inside the fan-out: no session gets the message, whose
   * publisher (without a PUBREC) sends it again. */
  for (size_t cut = before + 1; cut < after; cut++) {
    tb *b2 = calloc(1, sizeof(*b2));
    *b2 = *bed;
    b2->broker = NULL;
    b2->clients = NULL;
    b2->records = NULL;
    b2->nrecords = b2->records_cap = 0;
    memset(&b2->alloc, 0, sizeof(b2->alloc));
    tb_alloc_init(&b2->alloc, &b2->mem);
    tb *keep = bed;
    bed = b2;
    cr_assert(eq(int, tb_restore_from(b2, keep->records, cut, NULL), 4));
    for (int i = 0; i < 3; i++) {
      char id[8];
      snprintf(id, sizeof(id), "s%d", i);
      bool sp;
      tc *s = resume(id, &sp);
      cr_assert(tc_quiet(s), "cut at %zu: nothing for %s", cut, id);
    }
    tb_del(b2);
    bed = keep;
  }
}

Test(store, a_snapshot_rebuilds_the_same_state_and_later_records_apply_on_top) {
  tc *sub = persistent("sub");
  cr_assert(eq(int, tc_subscribe(sub, "a/+", 1), 1));
  cr_assert(eq(int, tc_subscribe(sub, "b", 2), 2));
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "a/1", "inflight", 1, false));
  mqttb_publish p;
  cr_assert(tc_expect_publish(sub, &p)); /* not acknowledged */
  uint16_t pid = p.packet_id;
  tc_drop(sub);
  tc_del(sub);
  cr_assert(tc_publish(pub, "b", "queued", 2, false));
  cr_assert(tc_publish(pub, "r", "ret", 1, true));
  cr_assert(tc_publish(pub, "$app/r", "dollar", 0, true));
  size_t full = bed->nrecords;
  tb_compact(bed);
  cr_assert(lt(sz, bed->nrecords, full), "%zu records instead of %zu", bed->nrecords, full);
  /* After the snapshot: one more queued message. */
  cr_assert(tc_publish(pub, "a/2", "after", 1, false));
  cr_assert(eq(int, tb_restart(bed, NULL), 1));
  bool sp;
  sub = resume("sub", &sp);
  cr_assert(sp);
  cr_assert(tc_expect_publish(sub, &p));
  cr_assert(slice_eq(p.payload, "inflight"));
  cr_assert(eq(u16, p.packet_id, pid));
  tc_ack(sub, &p);
  expect_payload(sub, "b", "queued", 2);
  expect_payload(sub, "a/2", "after", 1);
  cr_assert(tc_quiet(sub));
  tc *late = tc_open(bed, "late", true);
  cr_assert(eq(int, tc_subscribe(late, "r", 1), 1));
  expect_payload(late, "r", "ret", 1);
  cr_assert(eq(int, tc_subscribe(late, "$app/#", 0), 0));
  expect_payload(late, "$app/r", "dollar", 0);
}

Test(store, session_expiry_keeps_counting_across_a_restart) {
  tc *c = open5(bed, "e", 10);
  cr_assert(eq(int, subscribe5(c, "t", 1, 0), 1));
  tc_disconnect(c);
  tc_del(c);
  tb_advance(bed, 4000);
  bed->wall += 4;
  /* Down for 3 seconds. */
  bed->now += 3000;
  bed->wall += 3;
  cr_assert(eq(int, tb_restart(bed, NULL), 1));
  tb_advance(bed, 2000);
  bed->wall += 2;
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.clients_disconnected, 1), "9 s of 10 passed");
  tb_advance(bed, 1500);
  bed->wall += 2;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.clients_disconnected, 0), "expired after 10 s, restart included");
  cr_assert(eq(u64, st.subscription_count, 0));
}

Test(store, a_session_online_when_the_broker_died_starts_expiring_at_restore) {
  tc *c = open5(bed, "e", 5);
  cr_assert(eq(int, subscribe5(c, "t", 1, 0), 1));
  cr_assert(eq(int, tb_restart(bed, NULL), 1));
  tb_advance(bed, 4000);
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.clients_disconnected, 1));
  tb_advance(bed, 2000);
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.clients_disconnected, 0));
}

Test(store, message_expiry_keeps_counting_across_a_restart) {
  tc *c = open5(bed, "e", 100);
  cr_assert(eq(int, subscribe5(c, "t", 1, 0), 1));
  tc_disconnect(c);
  tc_del(c);
  tc *pub = open5(bed, "p", 0);
  pb props = {.n = 0};
  pb_u32(&props, MQTTB_PROP_MESSAGE_EXPIRY, 5);
  cr_assert(eq(int, send_pub5(pub, "t", "soon", 4, 1, false, v5_next_pid(), &props), 0));
  cr_assert(eq(int, send_pub5(pub, "t", "late", 4, 1, false, v5_next_pid(), NULL), 0));
  bed->now += 6000;
  bed->wall += 6;
  cr_assert(eq(int, tb_restart(bed, NULL), 1));
  bool sp;
  c = resume5(bed, "e", 100, &sp);
  cr_assert(sp);
  rpub r;
  expect_pub5(c, &r, "t", "late"); /* the expired one is gone */
}

Test(store, mqtt3_persistent_sessions_expire_after_persistent_client_expiration) {
  tb_del(bed);
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.sys_interval_ms = 0;
  s.persistent_client_expiration = 60;
  bed = tb_new(&s);
  tc *c = persistent("old");
  tc_disconnect(c);
  tc_del(c);
  tb_advance(bed, 59000);
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.clients_disconnected, 1));
  tb_advance(bed, 2000);
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.clients_disconnected, 0));
}

Test(store, unsubscribe_and_session_end_are_recorded) {
  tc *c = persistent("x");
  cr_assert(eq(int, tc_subscribe(c, "a", 1), 1));
  cr_assert(eq(int, tc_subscribe(c, "b", 1), 1));
  cr_assert(eq(int, tc_unsubscribe(c, "a"), 0));
  tc_disconnect(c);
  tc_del(c);
  cr_assert(eq(int, tb_restart(bed, NULL), 1));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.subscription_count, 1));
  /* Clean session ends it. */
  c = tc_open(bed, "x", true);
  tc_disconnect(c);
  tc_del(c);
  cr_assert(eq(int, tb_restart(bed, NULL), 0));
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.subscription_count, 0));
  cr_assert(eq(u64, st.clients_disconnected, 0));
}

Test(store, a_retained_message_cleared_stays_cleared) {
  tc *pub = tc_open(bed, "pub", true);
  cr_assert(tc_publish(pub, "r", "v", 1, true));
  cr_assert(tc_publish(pub, "r", "", 1, true));
  cr_assert(tc_publish(pub, "s", "v1", 1, true));
  cr_assert(tc_publish(pub, "s", "v2", 1, true));
  cr_assert(eq(int, tb_restart(bed, NULL), 0));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.retained_count, 1));
  tc *late = tc_open(bed, "late", true);
  cr_assert(eq(int, tc_subscribe(late, "#", 0), 0));
  expect_payload(late, "s", "v2", 0);
  cr_assert(tc_quiet(late));
  /* v1 was deleted from the store when v2 replaced it. */
  cr_assert(eq(sz, count_type(MQTTB_REC_MSG_DEL), 2));
}

/* ---------------------------------------------------------------- group commit */

Test(store, store_sync_holds_acknowledgements_until_the_records_are_durable) {
  tb_del(bed);
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.sys_interval_ms = 0;
  s.store_sync = 1;
  bed = tb_new(&s);
  tc *sub = persistent("sub");
  /* The SUBACK of a persistent session waits for its records. */
  uint8_t subscribe[] = {0x82, 6, 0, 5, 0, 1, 't', 1};
  cr_assert(eq(int, tc_send(sub, subscribe, sizeof(subscribe)), 0));
  cr_assert(tc_quiet(sub), "SUBACK held");
  cr_assert(eq(
      int, mqttb_broker_store_durable(bed->broker, mqttb_broker_store_seq(bed->broker), bed->now),
      MQTTB_OK));
  cr_assert(tc_read_type(sub, MQTTB_PKT_SUBACK));
  tc_disconnect(sub);
  tc_del(sub);
  tc *pub = tc_open(bed, "pub", true);
  tc_publish_raw(pub, "t", "a", 1, 1, false, false, 1);
  tc_publish_raw(pub, "t", "b", 1, 1, false, false, 2);
  cr_assert(tc_quiet(pub), "PUBACKs held");
  uint64_t seq = mqttb_broker_store_seq(bed->broker);
  /* Durable up to the first message's records: its PUBACK only. */
  cr_assert(eq(int, mqttb_broker_store_durable(bed->broker, seq - 2, bed->now), MQTTB_OK));
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBACK));
  cr_assert(eq(u16, mqttb_get_u16(pub->body), 1));
  cr_assert(tc_quiet(pub));
  cr_assert(eq(int, mqttb_broker_store_durable(bed->broker, seq + 100, bed->now), MQTTB_OK));
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBACK));
  cr_assert(eq(u16, mqttb_get_u16(pub->body), 2));
  /* Nothing pending: at once. */
  tc_publish_raw(pub, "nobody", "c", 1, 1, false, false, 3);
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBACK));
}

/* ---------------------------------------------------------------- damage */

/* A store of every kind of record. */
static void build_rich_store(void) {
  tc *sub = persistent("sub");
  cr_assert(eq(int, tc_subscribe(sub, "a/#", 2), 2));
  cr_assert(eq(int, tc_subscribe(sub, "$share/g/s", 1), 1));
  tc *pub = persistent("pub");
  cr_assert(tc_publish(pub, "a/1", "one", 1, false));
  mqttb_publish p;
  cr_assert(tc_expect_publish(sub, &p));
  tc_publish_raw(pub, "a/2", "two", 3, 2, false, false, 5000);
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBREC));
  cr_assert(tc_publish(pub, "s", "shared", 1, true));
  tc_drop(sub);
  cr_assert(tc_publish(pub, "a/3", "three", 2, true));
  cr_assert(tc_publish(pub, "a/3", "", 0, true));
  cr_assert(eq(int, tc_unsubscribe(pub, "none"), 0));
}

Test(store, every_record_with_a_flipped_byte_is_refused_or_applied_never_a_crash) {
  build_rich_store();
  size_t n = bed->nrecords;
  struct tb_record *orig = bed->records;
  bed->records = NULL;
  bed->nrecords = bed->records_cap = 0;
  while (bed->clients)
    tc_del(bed->clients);
  mqttb_broker_del(bed->broker);
  bed->broker = NULL;
  struct tb_record *copy = calloc(n, sizeof(*copy));
  for (size_t i = 0; i < n; i++) {
    for (size_t off = 0; off < orig[i].len; off++) {
      for (int bit = 0; bit < 8; bit += 3) {
        for (size_t j = 0; j < n; j++)
          copy[j] = orig[j];
        uint8_t *b = malloc(orig[i].len);
        memcpy(b, orig[i].bytes, orig[i].len);
        b[off] ^= (uint8_t)(1u << bit);
        copy[i].bytes = b;
        tb_restore_from(bed, copy, n, NULL);
        mqttb_broker_del(bed->broker); /* and nothing leaks */
        bed->broker = NULL;
        cr_assert(eq(long, bed->alloc.live, 0), "record %zu byte %zu leaked", i, off);
        free(b);
      }
    }
  }
  /* Truncated at every length. */
  for (size_t i = 0; i < n; i++) {
    for (size_t len = 0; len < orig[i].len; len++) {
      for (size_t j = 0; j < n; j++)
        copy[j] = orig[j];
      copy[i].len = len;
      int refused = 0;
      tb_restore_from(bed, copy, n, &refused);
      mqttb_broker_del(bed->broker);
      bed->broker = NULL;
      cr_assert(eq(long, bed->alloc.live, 0));
    }
  }
  free(copy);
  for (size_t i = 0; i < n; i++)
    free(orig[i].bytes);
  free(orig);
  /* teardown needs a broker */
  bed->broker = NULL;
  cr_assert(eq(int, mqttb_broker_new(&bed->broker, &bed->settings, &bed->cb, &bed->mem, bed), 0));
}

Test(store, the_rich_store_restores_whole) {
  build_rich_store();
  int refused = -1;
  cr_assert(eq(int, tb_restart(bed, &refused), 2));
  cr_assert(eq(int, refused, 0));
  /* And its snapshot restores the same. */
  tb_compact(bed);
  cr_assert(eq(int, tb_restart(bed, &refused), 2));
  cr_assert(eq(int, refused, 0));
  bool sp;
  tc *sub = resume("sub", &sp);
  cr_assert(sp);
  expect_payload(sub, "a/1", "one", 1);
  expect_payload(sub, "a/2", "two", 2);
  expect_payload(sub, "s", "shared", 1);
  expect_payload(sub, "a/3", "three", 2);
  cr_assert(tc_quiet(sub));
}

Test(store, restore_is_refused_once_connections_exist) {
  tc *c = tc_open(bed, "x", true);
  (void)c;
  uint8_t rec[] = {MQTTB_REC_MSG_DEL, 1, 1, 1, 1};
  cr_assert(eq(int, mqttb_broker_restore(bed->broker, rec, sizeof(rec), bed->now),
               MQTTB_ERR_INVALID_STATE));
}

Test(store, restore_runs_out_of_memory_cleanly) {
  build_rich_store();
  struct tb_record *recs = bed->records;
  size_t n = bed->nrecords;
  bed->records = NULL;
  bed->nrecords = bed->records_cap = 0;
  while (bed->clients)
    tc_del(bed->clients);
  mqttb_broker_del(bed->broker);
  bed->broker = NULL;
  for (long fail = 1; fail < 4000; fail++) {
    cr_assert(eq(int, mqttb_broker_new(&bed->broker, &bed->settings, &bed->cb, &bed->mem, bed), 0));
    bed->alloc.fail_at = bed->alloc.count + fail;
    for (size_t i = 0; i < n; i++) {
      int rv = mqttb_broker_restore(bed->broker, recs[i].bytes, recs[i].len, bed->now);
      cr_assert(rv == 0 || rv == MQTTB_ERR_NOMEM || rv == MQTTB_ERR_STORE_CORRUPT, "%d", rv);
    }
    int rv = mqttb_broker_restore_end(bed->broker, bed->now);
    cr_assert(rv >= 0 || rv == MQTTB_ERR_NOMEM);
    bool failed = bed->alloc.fail_at <= bed->alloc.count;
    bed->alloc.fail_at = 0;
    mqttb_broker_del(bed->broker);
    bed->broker = NULL;
    cr_assert(eq(long, bed->alloc.live, 0), "failing allocation %ld leaked", fail);
    if (!failed)
      break; /* past the last allocation */
  }
  for (size_t i = 0; i < n; i++)
    free(recs[i].bytes);
  free(recs);
  cr_assert(eq(int, mqttb_broker_new(&bed->broker, &bed->settings, &bed->cb, &bed->mem, bed), 0));
}
