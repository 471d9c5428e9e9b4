/* SPDX-License-Identifier: MIT */
/* The session layer (session.h) driven directly: the parts it needs (ctx,
 * hub, timers, the session set) are built here the way lib/broker.c
 * builds them, with a counting allocator. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "session.h"
#include "settings.h"
#include "unit_alloc.h"

typedef struct sfix {
  unit_alloc a;
  mqttb_ctx ctx;
  mqttb_tx_hub hub;
  mqttb_timers timers;
  mqttb_sessions set;
  int pending_calls;
} sfix;

static void count_pending(mqttb_tx *tx, void *arg) {
  (void)tx;
  ((sfix *)arg)->pending_calls++;
}

static void fix_init(sfix *f) {
  memset(f, 0, sizeof(*f));
  unit_alloc_init(&f->a);
  f->ctx.mem = f->a.mem;
  mqttb_settings_defaults(&f->ctx.settings);
  f->ctx.now = 1000;
  f->hub.ctx = &f->ctx;
  f->hub.on_pending = count_pending;
  f->hub.arg = f;
  mqttb_timers_init(&f->timers, &f->ctx.mem);
  cr_assert(eq(int, mqttb_sessions_init(&f->set, &f->ctx, &f->hub, &f->timers), 0));
}

/* Free everything; nothing may be left. */
static void fix_done(sfix *f) {
  mqttb_sessions_free(&f->set);
  mqttb_timers_free(&f->timers);
  cr_assert(eq(u64, f->ctx.stats.subscription_count, 0));
  cr_assert(eq(u64, f->ctx.stats.clients_disconnected, 0));
  cr_assert(eq(u64, f->set.queued_bytes_total, 0));
  cr_assert(eq(long, f->a.live, 0), "nothing leaked");
}

/* Messages in flight, and the entry of one packet id. */
static uint32_t n_inflight(const mqttb_session *s) {
  return s->win ? s->win->n : 0;
}

static const mqttb_inflight *inflight_of(const mqttb_session *s, uint16_t pid) {
  cr_assert(not(eq(ptr, s->win, NULL)));
  uint32_t slot = mqttb_window_find(s->win, pid);
  cr_assert(ne(u32, slot, MQTTB_WINDOW_END), "packet id %u not in flight", pid);
  return mqttb_window_at(s->win, slot);
}

static mqttb_session *new_session(sfix *f, const char *id) {
  mqttb_session *s = mqttb_session_new(&f->set, id, strlen(id));
  cr_assert(not(eq(ptr, s, NULL)));
  return s;
}

static mqttb_msg *new_msg(sfix *f, const char *topic, const char *payload, uint8_t qos) {
  mqttb_msg *m = mqttb_msg_new(&f->ctx.mem, (const uint8_t *)topic, strlen(topic),
                               (const uint8_t *)payload, strlen(payload), NULL, 0, qos, false);
  cr_assert(not(eq(ptr, m, NULL)));
  return m;
}

static void tx_open(mqttb_tx *tx, uint8_t level) {
  mqttb_tx_init(tx);
  tx->level = level;
}

/* One packet read back from a tx. */
typedef struct pkt {
  uint8_t type, flags, qos;
  bool dup;
  uint16_t pid;
  char payload[32];
} pkt;

/* Decode every packet pending on tx into out (at most max), then mark it
 * all written. Returns the number of packets. */
static size_t drain(sfix *f, mqttb_tx *tx, pkt *out, size_t max) {
  mqttb_iovec iov[64];
  int cnt = mqttb_outq_iov(&tx->q, iov, 64);
  size_t len = 0, total = mqttb_outq_pending(&tx->q);
  uint8_t *buf = malloc(total + 1);
  for (int i = 0; i < cnt; i++) {
    memcpy(buf + len, iov[i].base, iov[i].len);
    len += iov[i].len;
  }
  cr_assert(eq(sz, len, total));
  size_t pos = 0, n = 0;
  while (pos < len) {
    cr_assert(lt(sz, n, max));
    mqttb_frame fr;
    cr_assert(eq(int, mqttb_codec_frame(buf + pos, len - pos, UINT32_MAX, &fr), MQTTB_CODEC_OK));
    const uint8_t *body = buf + pos + fr.hdr_len;
    pkt *p = &out[n++];
    memset(p, 0, sizeof(*p));
    p->type = fr.type;
    p->flags = fr.flags;
    if (fr.type == MQTTB_PKT_PUBLISH) {
      mqttb_publish d;
      cr_assert(eq(int, mqttb_decode_publish_v(fr.flags, body, fr.remaining, tx->level, &d),
                   MQTTB_CODEC_OK));
      p->qos = d.qos;
      p->dup = d.dup;
      p->pid = d.packet_id;
      cr_assert(lt(sz, d.payload.len, sizeof(p->payload)));
      memcpy(p->payload, d.payload.ptr, d.payload.len);
    } else {
      cr_assert(eq(int, mqttb_decode_ack(body, fr.remaining, &p->pid), MQTTB_CODEC_OK));
    }
    pos += fr.hdr_len + fr.remaining;
  }
  free(buf);
  mqttb_outq_ack(&tx->q, &f->ctx.mem, total, f->ctx.now);
  return n;
}

static void assert_publish(const pkt *p, uint16_t pid, const char *payload, uint8_t qos, bool dup) {
  cr_assert(eq(u8, p->type, MQTTB_PKT_PUBLISH));
  cr_assert(eq(u16, p->pid, pid));
  cr_assert(eq(str, (char *)p->payload, (char *)payload));
  cr_assert(eq(u8, p->qos, qos));
  cr_assert(eq(int, p->dup, dup));
}

static int sub_hits;
static uint8_t sub_hit_qos;
static void count_sub(mqttb_sub *sub, void *ctx) {
  (void)ctx;
  sub_hits++;
  sub_hit_qos = sub->qos;
}

static int match(sfix *f, const char *topic) {
  sub_hits = 0;
  cr_assert(
      eq(int, mqttb_trie_match_subs(&f->set.subs, topic, strlen(topic), count_sub, NULL, NULL), 0));
  return sub_hits;
}

/* ---------------------------------------------------------------- subscriptions */

Test(session, subscribe_replace_and_unsubscribe) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "c1");
  cr_assert(eq(ptr, mqttb_sessions_find(&f.set, "c1", 2), s));
  cr_assert(eq(ptr, mqttb_sessions_find(&f.set, "c", 1), NULL));
  bool existed = true;
  cr_assert(eq(int, mqttb_session_subscribe(s, "a/b", 3, 1, 0, 0, &existed), 0));
  cr_assert(not(existed));
  cr_assert(eq(u32, s->nsubs, 1));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 1));
  cr_assert(eq(int, match(&f, "a/b"), 1));
  cr_assert(eq(u8, sub_hit_qos, 1));

  /* The same filter again replaces the options in place. */
  cr_assert(eq(int, mqttb_session_subscribe(s, "a/b", 3, 2, MQTTB_SUB_NO_LOCAL, 9, &existed), 0));
  cr_assert(existed);
  cr_assert(eq(u32, s->nsubs, 1));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 1));
  cr_assert(eq(u8, s->subs[0]->qos, 2));
  cr_assert(eq(u8, s->subs[0]->opts, MQTTB_SUB_NO_LOCAL));
  cr_assert(eq(u32, s->subs[0]->sub_id, 9));
  cr_assert(eq(str, s->subs[0]->filter, "a/b"));
  cr_assert(eq(int, match(&f, "a/b"), 1), "not subscribed twice");
  cr_assert(eq(u8, sub_hit_qos, 2));

  cr_assert(eq(int, mqttb_session_subscribe(s, "a/+", 3, 0, 0, 0, &existed), 0));
  cr_assert(not(existed));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 2));
  cr_assert(eq(int, match(&f, "a/b"), 2));
  cr_assert(eq(int, match(&f, "a/c"), 1));

  cr_assert(mqttb_session_unsubscribe(s, "a/b", 3));
  cr_assert(eq(u32, s->nsubs, 1));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 1));
  cr_assert(eq(int, match(&f, "a/b"), 1));
  cr_assert(not(mqttb_session_unsubscribe(s, "a/b", 3)), "already gone");
  cr_assert(not(mqttb_session_unsubscribe(s, "a/", 2)));
  cr_assert(not(mqttb_session_unsubscribe(s, "zzz", 3)));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 1));

  /* A second session on an overlapping filter; unsubscribe_all. */
  mqttb_session *s2 = new_session(&f, "c2");
  cr_assert(eq(int, mqttb_session_subscribe(s2, "#", 1, 1, 0, 0, &existed), 0));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 2));
  cr_assert(eq(int, match(&f, "a/b"), 2));
  mqttb_session_unsubscribe_all(s);
  cr_assert(eq(u32, s->nsubs, 0));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 1));
  cr_assert(eq(int, match(&f, "a/b"), 1));
  mqttb_session_del(s);
  cr_assert(eq(ptr, mqttb_sessions_find(&f.set, "c1", 2), NULL));
  cr_assert(eq(ptr, mqttb_sessions_find(&f.set, "c2", 2), s2));
  fix_done(&f);
}

Test(session, shared_subscriptions_form_one_group_per_name_and_filter) {
  sfix f;
  fix_init(&f);
  mqttb_session *s1 = new_session(&f, "s1"), *s2 = new_session(&f, "s2");
  bool existed;
  const char *flt = "$share/g/a/b";
  cr_assert(eq(int, mqttb_session_subscribe(s1, flt, strlen(flt), 1, 0, 0, &existed), 0));
  cr_assert(eq(int, mqttb_session_subscribe(s2, flt, strlen(flt), 2, 0, 0, &existed), 0));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 2));
  mqttb_share *sh = mqttb_map_get(&f.set.shares, "g/a/b", 5);
  cr_assert(not(eq(ptr, sh, NULL)));
  cr_assert(eq(sz, sh->nmembers, 2));
  cr_assert(eq(ptr, s1->subs[0]->share, sh));
  cr_assert(eq(str, s1->subs[0]->filter, (char *)flt), "the filter as subscribed");
  cr_assert(eq(int, match(&f, "a/b"), 0), "group members are not plain subscribers");
  /* Another group name on the same filter is another group. */
  cr_assert(eq(int, mqttb_session_subscribe(s1, "$share/h/a/b", 12, 0, 0, 0, &existed), 0));
  cr_assert(not(eq(ptr, mqttb_map_get(&f.set.shares, "h/a/b", 5), NULL)));
  cr_assert(eq(sz, sh->nmembers, 2));
  cr_assert(mqttb_session_unsubscribe(s1, flt, strlen(flt)));
  cr_assert(eq(sz, sh->nmembers, 1));
  cr_assert(eq(ptr, sh->members[0]->session, s2));
  cr_assert(eq(sz, sh->members[0]->node_idx, 0));
  cr_assert(mqttb_session_unsubscribe(s2, flt, strlen(flt)));
  cr_assert(eq(ptr, mqttb_map_get(&f.set.shares, "g/a/b", 5), NULL), "the empty group is gone");
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 1));
  fix_done(&f);
}

Test(session, share_parse_splits_name_and_filter) {
  mqttb_slice name = {0}, flt = {0};
  bool valid = false;
  cr_assert(mqttb_share_parse("$share/grp/x/#", 14, &name, &flt, &valid));
  cr_assert(valid);
  cr_assert(eq(sz, name.len, 3));
  cr_assert(eq(int, memcmp(name.ptr, "grp", 3), 0));
  cr_assert(eq(sz, flt.len, 3));
  cr_assert(eq(int, memcmp(flt.ptr, "x/#", 3), 0));
  cr_assert(not(mqttb_share_parse("a/b", 3, &name, &flt, &valid)));
  cr_assert(valid, "not shared, nothing wrong");
  cr_assert(not(mqttb_share_parse("$sharex/g/a", 11, &name, &flt, &valid)));
  cr_assert(not(mqttb_share_parse("$share", 6, &name, &flt, &valid)));
}

Test(session, invalid_share_filters_are_refused) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "c");
  const char *bad[] = {"$share/",     "$share//a",  "$share/g",    "$share/g/",
                       "$share/g+/a", "$share/#/a", "$share/a+b/c"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    bool existed = true;
    cr_assert(eq(int, mqttb_session_subscribe(s, bad[i], strlen(bad[i]), 1, 0, 0, &existed),
                 MQTTB_ERR_INVALID_ARGUMENT),
              "%s", bad[i]);
    cr_assert(not(existed));
    mqttb_slice n, fl;
    bool valid = true;
    cr_assert(mqttb_share_parse(bad[i], strlen(bad[i]), &n, &fl, &valid));
    cr_assert(not(valid), "%s", bad[i]);
  }
  cr_assert(eq(u32, s->nsubs, 0));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 0));
  cr_assert(eq(u32, f.set.shares.count, 0));
  fix_done(&f);
}

Test(session, max_subscriptions_gives_quota) {
  sfix f;
  fix_init(&f);
  f.ctx.settings.max_subscriptions = 2;
  mqttb_session *s = new_session(&f, "q");
  bool existed;
  cr_assert(eq(int, mqttb_session_subscribe(s, "a", 1, 0, 0, 0, &existed), 0));
  cr_assert(eq(int, mqttb_session_subscribe(s, "$share/g/b", 10, 0, 0, 0, &existed), 0));
  cr_assert(eq(int, mqttb_session_subscribe(s, "c", 1, 0, 0, 0, &existed), MQTTB_ERR_QUOTA));
  cr_assert(
      eq(int, mqttb_session_subscribe(s, "$share/g/c", 10, 0, 0, 0, &existed), MQTTB_ERR_QUOTA));
  cr_assert(eq(u32, s->nsubs, 2));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 2));
  cr_assert(eq(int, match(&f, "c"), 0));
  /* Replacing one at the limit is not a new one. */
  cr_assert(eq(int, mqttb_session_subscribe(s, "a", 1, 2, 0, 0, &existed), 0));
  cr_assert(existed);
  /* The limit is per session. */
  mqttb_session *s2 = new_session(&f, "q2");
  cr_assert(eq(int, mqttb_session_subscribe(s2, "c", 1, 0, 0, 0, &existed), 0));
  /* Room again after an unsubscribe. */
  cr_assert(mqttb_session_unsubscribe(s, "a", 1));
  cr_assert(eq(int, mqttb_session_subscribe(s, "c", 1, 0, 0, 0, &existed), 0));
  cr_assert(eq(u64, f.ctx.stats.subscription_count, 3));
  fix_done(&f);
}

/* ---------------------------------------------------------------- delivery */

Test(session, offline_qos1_deliveries_queue_up_to_max_queued_messages) {
  sfix f;
  fix_init(&f);
  f.ctx.settings.max_queued_messages = 3;
  mqttb_session *s = new_session(&f, "off");
  s->expiry_interval = 60;
  mqttb_msg *m[5];
  for (int i = 0; i < 5; i++) {
    char p[8];
    snprintf(p, sizeof(p), "m%d", i);
    m[i] = new_msg(&f, "t", p, 1);
    mqttb_session_deliver(s, m[i], 1, false, NULL, NULL, 0);
  }
  cr_assert(eq(u32, s->qcount, 3));
  cr_assert(eq(u32, n_inflight(s), 0), "nothing in flight while offline");
  cr_assert(eq(u64, f.ctx.stats.publish_dropped, 2));
  cr_assert(eq(u64, s->queued_bytes, 6));
  cr_assert(eq(u64, f.set.queued_bytes_total, 6));
  for (int i = 0; i < 5; i++)
    cr_assert(eq(u32, m[i]->refs, i < 3 ? 2 : 1), "message %d", i);
  /* The queue keeps the order it was given. */
  for (uint32_t i = 0; i < s->qcount; i++)
    cr_assert(eq(ptr, s->queue[(s->qhead + i) % s->qcap].msg, m[i]));
  /* QoS 0 for an offline client is dropped (queue_qos0_messages is 0). */
  mqttb_msg *q0 = new_msg(&f, "t", "z", 0);
  mqttb_session_deliver(s, q0, 0, false, NULL, NULL, 0);
  cr_assert(eq(u32, s->qcount, 3));
  cr_assert(eq(u64, f.ctx.stats.publish_dropped, 3));
  cr_assert(eq(u32, q0->refs, 1));
  for (int i = 0; i < 5; i++)
    mqttb_msg_unref(&f.ctx.mem, m[i]);
  mqttb_msg_unref(&f.ctx.mem, q0);
  fix_done(&f);
}

Test(session, queue_limits_bytes_qos0_and_expired_messages) {
  sfix f;
  fix_init(&f);
  f.ctx.settings.max_queued_messages = 0; /* no count limit */
  f.ctx.settings.max_queued_bytes = 10;
  f.ctx.settings.queue_qos0_messages = 1;
  mqttb_session *s = new_session(&f, "b");
  s->expiry_interval = 60;
  mqttb_msg *m = new_msg(&f, "t", "four", 1);
  mqttb_session_deliver(s, m, 1, false, NULL, NULL, 0);
  mqttb_session_deliver(s, m, 0, false, NULL, NULL, 0); /* QoS 0 queued now */
  mqttb_session_deliver(s, m, 1, false, NULL, NULL, 0); /* 12 > 10 bytes */
  cr_assert(eq(u32, s->qcount, 2));
  cr_assert(eq(u64, s->queued_bytes, 8));
  cr_assert(eq(u64, f.ctx.stats.publish_dropped, 1));
  cr_assert(eq(u32, m->refs, 3));
  /* An expired message is not queued. */
  mqttb_msg *old = new_msg(&f, "t", "x", 1);
  old->expiry_at = f.ctx.now;
  mqttb_session_deliver(s, old, 1, false, NULL, NULL, 0);
  cr_assert(eq(u32, s->qcount, 2));
  cr_assert(eq(u64, f.ctx.stats.publish_dropped, 2));
  cr_assert(eq(u32, old->refs, 1));
  /* A clean (expiry 0) session never queues QoS 0. */
  mqttb_session *c = new_session(&f, "clean");
  mqttb_session_deliver(c, m, 0, false, NULL, NULL, 0);
  cr_assert(eq(u32, c->qcount, 0));
  cr_assert(eq(u64, f.ctx.stats.publish_dropped, 3));
  /* The total across sessions. */
  f.ctx.settings.max_queued_bytes = 0;
  f.ctx.settings.max_queued_bytes_total = 12;
  mqttb_session_deliver(c, m, 1, false, NULL, NULL, 0); /* 8 + 4 = 12: fits */
  mqttb_session_deliver(c, m, 1, false, NULL, NULL, 0); /* 16 > 12 */
  cr_assert(eq(u32, c->qcount, 1));
  cr_assert(eq(u64, f.set.queued_bytes_total, 12));
  cr_assert(eq(u64, f.ctx.stats.publish_dropped, 4));
  mqttb_msg_unref(&f.ctx.mem, m);
  mqttb_msg_unref(&f.ctx.mem, old);
  fix_done(&f);
}

Test(session, resume_sends_the_queue_in_order_within_the_inflight_window) {
  sfix f;
  fix_init(&f);
  f.ctx.settings.max_inflight_messages = 2;
  mqttb_session *s = new_session(&f, "w");
  s->expiry_interval = 60;
  mqttb_msg *m[6];
  for (int i = 0; i < 6; i++) {
    char p[8];
    snprintf(p, sizeof(p), "m%d", i);
    m[i] = new_msg(&f, "t", p, 1);
  }
  for (int i = 0; i < 5; i++)
    mqttb_session_deliver(s, m[i], 1, false, NULL, NULL, 0);
  cr_assert(eq(u32, s->qcount, 5));

  mqttb_tx tx;
  tx_open(&tx, 4);
  mqttb_session_attach(s, &tx);
  cr_assert(mqttb_session_online(s));
  cr_assert(eq(sz, mqttb_outq_pending(&tx.q), 0), "attaching sends nothing");
  mqttb_session_resume(s);
  pkt p[8];
  cr_assert(eq(sz, drain(&f, &tx, p, 8), 2));
  assert_publish(&p[0], 1, "m0", 1, false);
  assert_publish(&p[1], 2, "m1", 1, false);
  cr_assert(eq(u32, n_inflight(s), 2));
  cr_assert(eq(u32, s->qcount, 3));
  cr_assert(eq(u64, s->queued_bytes, 6));
  cr_assert(eq(int, f.pending_calls, 1));

  /* An unknown id changes nothing. */
  mqttb_session_on_puback(s, 99);
  cr_assert(eq(u32, n_inflight(s), 2));
  cr_assert(eq(sz, mqttb_outq_pending(&tx.q), 0));

  mqttb_session_on_puback(s, 1);
  cr_assert(eq(u32, m[0]->refs, 1), "acknowledged: released");
  cr_assert(eq(sz, drain(&f, &tx, p, 8), 1));
  assert_publish(&p[0], 3, "m2", 1, false);
  /* A new message waits behind the queue. */
  mqttb_session_deliver(s, m[5], 1, false, NULL, NULL, 0);
  cr_assert(eq(sz, mqttb_outq_pending(&tx.q), 0));
  cr_assert(eq(u32, s->qcount, 3));
  mqttb_session_on_puback(s, 3);
  mqttb_session_on_puback(s, 2);
  cr_assert(eq(sz, drain(&f, &tx, p, 8), 2));
  assert_publish(&p[0], 4, "m3", 1, false);
  assert_publish(&p[1], 5, "m4", 1, false);
  mqttb_session_on_puback(s, 4);
  cr_assert(eq(sz, drain(&f, &tx, p, 8), 1));
  assert_publish(&p[0], 6, "m5", 1, false);
  cr_assert(eq(u32, s->qcount, 0));
  cr_assert(eq(u64, s->queued_bytes, 0));
  cr_assert(eq(u64, f.set.queued_bytes_total, 0));
  /* With room and nothing queued, a delivery goes out at once, at the
   * QoS it is delivered with. */
  mqttb_session_on_puback(s, 5);
  mqttb_session_deliver(s, m[0], 2, false, NULL, NULL, 0);
  cr_assert(eq(sz, drain(&f, &tx, p, 8), 1));
  assert_publish(&p[0], 7, "m0", 2, false);
  cr_assert(eq(u8, inflight_of(s, 7)->state, MQTTB_INF_PUBREC));
  cr_assert(eq(u64, f.ctx.stats.publish_sent, 7));

  mqttb_tx_free(&f.hub, &tx);
  for (int i = 0; i < 6; i++)
    mqttb_msg_unref(&f.ctx.mem, m[i]);
  fix_done(&f);
}

Test(session, receive_maximum_caps_the_window) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "r");
  mqttb_tx tx;
  tx_open(&tx, 5);
  tx.receive_max = 1;
  mqttb_session_attach(s, &tx);
  mqttb_msg *m = new_msg(&f, "t", "x", 1);
  mqttb_session_deliver(s, m, 1, false, NULL, NULL, 0);
  mqttb_session_deliver(s, m, 1, false, NULL, NULL, 0);
  cr_assert(eq(u32, n_inflight(s), 1));
  cr_assert(eq(u32, s->qcount, 1));
  pkt p[4];
  cr_assert(eq(sz, drain(&f, &tx, p, 4), 1));
  mqttb_session_on_puback(s, 1);
  cr_assert(eq(sz, drain(&f, &tx, p, 4), 1));
  assert_publish(&p[0], 2, "x", 1, false);
  mqttb_tx_free(&f.hub, &tx);
  mqttb_msg_unref(&f.ctx.mem, m);
  fix_done(&f);
}

Test(session, qos2_flow_pubrec_then_pubcomp) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "q2");
  mqttb_tx tx;
  tx_open(&tx, 4);
  mqttb_session_attach(s, &tx);
  mqttb_msg *m = new_msg(&f, "t", "two", 2);
  mqttb_session_deliver(s, m, 2, false, NULL, NULL, 0);
  pkt p[4];
  cr_assert(eq(sz, drain(&f, &tx, p, 4), 1));
  assert_publish(&p[0], 1, "two", 2, false);
  cr_assert(eq(u32, n_inflight(s), 1));
  cr_assert(eq(u8, inflight_of(s, 1)->state, MQTTB_INF_PUBREC));
  cr_assert(eq(u32, m->refs, 2));

  /* A PUBACK is not the answer to a QoS 2 PUBLISH: a protocol error. */
  cr_assert(eq(int, mqttb_session_on_puback(s, 1), MQTTB_ERR_PROTOCOL));
  cr_assert(eq(u32, n_inflight(s), 1));
  /* Nor is PUBCOMP before PUBREC. */
  cr_assert(eq(int, mqttb_session_on_pubcomp(s, 1), MQTTB_ERR_PROTOCOL));
  cr_assert(eq(u32, n_inflight(s), 1));

  uint8_t rel = 0xff;
  bool due = false;
  cr_assert(eq(int, mqttb_session_on_pubrec(s, 1, 0, &due, &rel), 0));
  cr_assert(due);
  cr_assert(eq(u8, rel, 0));
  cr_assert(eq(u8, inflight_of(s, 1)->state, MQTTB_INF_PUBCOMP));
  cr_assert(eq(ptr, inflight_of(s, 1)->d.msg, NULL));
  cr_assert(eq(u32, m->refs, 1), "the message is the client's now");
  /* A duplicate PUBREC still gets a PUBREL. */
  rel = 0xff;
  due = false;
  cr_assert(eq(int, mqttb_session_on_pubrec(s, 1, 0, &due, &rel), 0));
  cr_assert(due);
  cr_assert(eq(u8, rel, 0));
  /* An unknown one too, with reason 0x92. */
  rel = 0;
  due = false;
  cr_assert(eq(int, mqttb_session_on_pubrec(s, 42, 0, &due, &rel), 0));
  cr_assert(due);
  cr_assert(eq(u8, rel, MQTTB_REASON_PACKET_ID_NOT_FOUND));
  cr_assert(eq(u32, n_inflight(s), 1));
  cr_assert(eq(int, mqttb_session_on_pubcomp(s, 77), 0), "unknown ids are ignored");
  cr_assert(eq(u32, n_inflight(s), 1));
  cr_assert(eq(int, mqttb_session_on_pubcomp(s, 1), 0));
  cr_assert(eq(u32, n_inflight(s), 0));
  cr_assert(eq(int, mqttb_session_on_pubcomp(s, 1), 0));
  cr_assert(eq(u32, n_inflight(s), 0));

  /* A refusal (MQTT 5 reason >= 0x80) ends the flow: no PUBREL due. */
  mqttb_session_deliver(s, m, 2, false, NULL, NULL, 0);
  cr_assert(eq(sz, drain(&f, &tx, p, 4), 1));
  assert_publish(&p[0], 2, "two", 2, false);
  cr_assert(eq(int, mqttb_session_on_pubrec(s, 2, 0x87, &due, &rel), 0));
  cr_assert(not(due));
  cr_assert(eq(u32, n_inflight(s), 0));
  cr_assert(eq(u32, m->refs, 1));
  mqttb_tx_free(&f.hub, &tx);
  mqttb_msg_unref(&f.ctx.mem, m);
  fix_done(&f);
}

Test(session, resume_resends_inflight_with_dup_and_pubrel) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "re");
  s->expiry_interval = 60;
  mqttb_tx tx;
  tx_open(&tx, 4);
  mqttb_session_attach(s, &tx);
  mqttb_msg *a = new_msg(&f, "t", "a", 2), *b = new_msg(&f, "t", "b", 2),
            *c = new_msg(&f, "t", "c", 1);
  mqttb_session_deliver(s, a, 2, false, NULL, NULL, 0);
  mqttb_session_deliver(s, b, 2, false, NULL, NULL, 0);
  mqttb_session_deliver(s, c, 1, false, NULL, NULL, 0);
  pkt p[8];
  cr_assert(eq(sz, drain(&f, &tx, p, 8), 3));
  uint8_t rel;
  bool rel_due;
  cr_assert(eq(int, mqttb_session_on_pubrec(s, 1, 0, &rel_due, &rel), 0));
  cr_assert(rel_due);
  mqttb_session_due due = mqttb_session_detach(s, NULL, 0);
  cr_assert(not(due.end));
  cr_assert(not(mqttb_session_online(s)));
  mqttb_tx_free(&f.hub, &tx);

  mqttb_tx tx2;
  tx_open(&tx2, 4);
  mqttb_session_reclaim(s);
  mqttb_session_attach(s, &tx2);
  mqttb_session_resume(s);
  cr_assert(eq(sz, drain(&f, &tx2, p, 8), 3));
  cr_assert(eq(u8, p[0].type, MQTTB_PKT_PUBREL));
  cr_assert(eq(u8, p[0].flags, 0x2));
  cr_assert(eq(u16, p[0].pid, 1));
  assert_publish(&p[1], 2, "b", 2, true);
  assert_publish(&p[2], 3, "c", 1, true);
  cr_assert(eq(u32, n_inflight(s), 3), "still waiting for the acknowledgements");
  mqttb_tx_free(&f.hub, &tx2);
  mqttb_msg_unref(&f.ctx.mem, a);
  mqttb_msg_unref(&f.ctx.mem, b);
  mqttb_msg_unref(&f.ctx.mem, c);
  fix_done(&f);
}

Test(session, inbound_qos2_ids_add_has_del_count) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "in");
  cr_assert(eq(u32, mqttb_session_qos2_count(s), 0));
  cr_assert(not(mqttb_session_qos2_has(s, 1)));
  for (uint16_t id = 1; id <= 100; id++)
    cr_assert(eq(int, mqttb_session_qos2_add(s, id), 0));
  cr_assert(eq(u32, mqttb_session_qos2_count(s), 100));
  cr_assert(mqttb_session_qos2_has(s, 1));
  cr_assert(mqttb_session_qos2_has(s, 50));
  cr_assert(mqttb_session_qos2_has(s, 100));
  cr_assert(not(mqttb_session_qos2_has(s, 101)));
  mqttb_session_qos2_del(s, 50);
  cr_assert(not(mqttb_session_qos2_has(s, 50)));
  cr_assert(eq(u32, mqttb_session_qos2_count(s), 99));
  mqttb_session_qos2_del(s, 50); /* not there: nothing */
  mqttb_session_qos2_del(s, 999);
  cr_assert(eq(u32, mqttb_session_qos2_count(s), 99));
  for (uint16_t id = 1; id <= 100; id++)
    if (id != 50)
      cr_assert(mqttb_session_qos2_has(s, id), "id %u", id);
  f.a.fail_all = true;
  /* The set grows once it would be more than half full. */
  uint32_t cap = s->in_qos2->cap / 2;
  for (uint16_t id = 200; mqttb_session_qos2_count(s) < cap; id++)
    cr_assert(eq(int, mqttb_session_qos2_add(s, id), 0), "room without allocating");
  cr_assert(eq(int, mqttb_session_qos2_add(s, 7000), MQTTB_ERR_NOMEM));
  cr_assert(not(mqttb_session_qos2_has(s, 7000)));
  cr_assert(eq(u32, mqttb_session_qos2_count(s), cap));
  unit_alloc_heal(&f.a);
  fix_done(&f);
}

/* ---------------------------------------------------------------- life */

Test(session, detach_with_expiry_zero_ends_the_session) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "clean");
  mqttb_tx tx;
  tx_open(&tx, 4);
  mqttb_session_attach(s, &tx);
  mqttb_session_due due = mqttb_session_detach(s, NULL, 0);
  cr_assert(due.end);
  cr_assert(eq(ptr, due.will, NULL));
  cr_assert(eq(ptr, s->tx, NULL));
  cr_assert(not(s->offline));
  cr_assert(eq(u64, f.ctx.stats.clients_disconnected, 0));
  cr_assert(not(mqttb_timer_armed(&s->timer)));
  /* With a will, even a delayed one: published now. */
  mqttb_msg *w = new_msg(&f, "will", "bye", 0);
  due = mqttb_session_detach(s, w, 30);
  cr_assert(due.end);
  cr_assert(eq(ptr, due.will, w));
  cr_assert(eq(u32, w->refs, 2), "the caller owns a reference");
  cr_assert(eq(ptr, s->will, NULL));
  mqttb_msg_unref(&f.ctx.mem, due.will);
  mqttb_msg_unref(&f.ctx.mem, w);
  mqttb_tx_free(&f.hub, &tx);
  fix_done(&f);
}

Test(session, detach_with_expiry_counts_disconnected_and_arms_the_timer) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "keep");
  s->expiry_interval = 60;
  f.ctx.now = 1000;
  mqttb_session_due due = mqttb_session_detach(s, NULL, 0);
  cr_assert(not(due.end));
  cr_assert(eq(ptr, due.will, NULL));
  cr_assert(s->offline);
  cr_assert(eq(u64, f.ctx.stats.clients_disconnected, 1));
  cr_assert(eq(u64, s->expires_at, 61000));
  cr_assert(mqttb_timer_armed(&s->timer));
  cr_assert(eq(u64, mqttb_timers_deadline_of(&f.timers, &s->timer), 61000));
  cr_assert(eq(u64, mqttb_timers_next(&f.timers), 61000));
  cr_assert(not(mqttb_session_expired(s, 60999)));
  cr_assert(mqttb_session_expired(s, 61000));

  cr_assert(eq(ptr, mqttb_timers_pop_due(&f.timers, 60999), NULL));
  /* Called early (the caller's choice): not ended, re-armed. */
  due = mqttb_session_on_timer(s, 60999);
  cr_assert(not(due.end));
  cr_assert(eq(u64, mqttb_timers_deadline_of(&f.timers, &s->timer), 61000));

  mqttb_timer *t = mqttb_timers_pop_due(&f.timers, 61000);
  cr_assert(eq(ptr, t, &s->timer));
  cr_assert(eq(u8, t->kind, MQTTB_TIMER_SESSION));
  cr_assert(eq(ptr, mqttb_session_of_timer(t), s));
  due = mqttb_session_on_timer(s, 61000);
  cr_assert(due.end);
  cr_assert(eq(ptr, due.will, NULL));
  mqttb_session_del(s);
  cr_assert(eq(u64, f.ctx.stats.clients_disconnected, 0),
            "deleting an offline session uncounts it");
  fix_done(&f);
}

Test(session, persistent_mqtt3_session_never_expires) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "forever");
  s->expiry_interval = UINT32_MAX;
  mqttb_session_due due = mqttb_session_detach(s, NULL, 0);
  cr_assert(not(due.end));
  cr_assert(eq(u64, s->expires_at, UINT64_MAX));
  cr_assert(not(mqttb_timer_armed(&s->timer)));
  cr_assert(eq(u64, f.ctx.stats.clients_disconnected, 1));
  fix_done(&f);
}

Test(session, delayed_will_comes_back_at_its_time) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "w");
  s->expiry_interval = 60;
  f.ctx.now = 1000;
  mqttb_msg *w = new_msg(&f, "will", "gone", 1);
  mqttb_session_due due = mqttb_session_detach(s, w, 10);
  cr_assert(not(due.end));
  cr_assert(eq(ptr, due.will, NULL), "not yet");
  cr_assert(eq(ptr, s->will, w));
  cr_assert(eq(u32, w->refs, 2));
  cr_assert(eq(u64, s->will_at, 11000));
  cr_assert(eq(u64, mqttb_timers_deadline_of(&f.timers, &s->timer), 11000), "the earlier one");
  cr_assert(eq(ptr, mqttb_session_take_due_will(s, 10999), NULL));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&f.timers, 10999), NULL));

  cr_assert(eq(ptr, mqttb_timers_pop_due(&f.timers, 11000), &s->timer));
  due = mqttb_session_on_timer(s, 11000);
  cr_assert(eq(ptr, due.will, w));
  cr_assert(not(due.end));
  cr_assert(eq(ptr, s->will, NULL));
  cr_assert(eq(u64, mqttb_timers_deadline_of(&f.timers, &s->timer), 61000), "now the expiry");
  mqttb_msg_unref(&f.ctx.mem, due.will);

  cr_assert(eq(ptr, mqttb_timers_pop_due(&f.timers, 61000), &s->timer));
  due = mqttb_session_on_timer(s, 61000);
  cr_assert(due.end);
  cr_assert(eq(ptr, due.will, NULL));
  cr_assert(eq(u32, w->refs, 1));
  mqttb_msg_unref(&f.ctx.mem, w);
  fix_done(&f);
}

Test(session, will_delay_longer_than_expiry_fires_with_the_expiry) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "w");
  s->expiry_interval = 30;
  f.ctx.now = 0;
  mqttb_msg *w = new_msg(&f, "will", "x", 0);
  mqttb_session_due due = mqttb_session_detach(s, w, 100);
  cr_assert(not(due.end));
  cr_assert(eq(u64, s->will_at, 30000));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&f.timers, 30000), &s->timer));
  due = mqttb_session_on_timer(s, 30000);
  cr_assert(eq(ptr, due.will, w));
  cr_assert(due.end);
  mqttb_msg_unref(&f.ctx.mem, due.will);
  /* Without a delay the will goes at once and the session stays. */
  mqttb_session *s2 = new_session(&f, "w2");
  s2->expiry_interval = 30;
  due = mqttb_session_detach(s2, w, 0);
  cr_assert(eq(ptr, due.will, w));
  cr_assert(not(due.end));
  cr_assert(eq(ptr, s2->will, NULL));
  mqttb_msg_unref(&f.ctx.mem, due.will);
  mqttb_msg_unref(&f.ctx.mem, w);
  fix_done(&f);
}

Test(session, reclaim_clears_offline_state_and_keeps_the_will_for_the_caller) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "back");
  s->expiry_interval = 60;
  mqttb_msg *w = new_msg(&f, "will", "x", 0);
  mqttb_session_due due = mqttb_session_detach(s, w, 10);
  cr_assert(not(due.end));
  cr_assert(eq(u64, f.ctx.stats.clients_disconnected, 1));
  mqttb_session_reclaim(s);
  cr_assert(not(s->offline));
  cr_assert(eq(u64, f.ctx.stats.clients_disconnected, 0));
  cr_assert(not(mqttb_timer_armed(&s->timer)));
  cr_assert(eq(u64, s->expires_at, UINT64_MAX));
  cr_assert(eq(ptr, s->will, w), "the caller decides about the will");
  mqttb_session_drop_will(s);
  cr_assert(eq(ptr, s->will, NULL));
  cr_assert(eq(u32, w->refs, 1));
  /* Reclaiming a session that is not offline changes no count. */
  mqttb_session_reclaim(s);
  cr_assert(eq(u64, f.ctx.stats.clients_disconnected, 0));
  /* take_will hands the reference over. */
  due = mqttb_session_detach(s, w, 10);
  cr_assert(eq(ptr, mqttb_session_take_will(s), w));
  cr_assert(eq(ptr, s->will, NULL));
  cr_assert(eq(u32, w->refs, 2));
  mqttb_msg_unref(&f.ctx.mem, w);
  mqttb_msg_unref(&f.ctx.mem, w);
  fix_done(&f);
}

Test(session, detach_ends_the_session_when_the_timer_cannot_be_armed) {
  sfix f;
  fix_init(&f);
  mqttb_session *s = new_session(&f, "nomem");
  s->expiry_interval = 60;
  f.a.fail_all = true;
  mqttb_session_due due = mqttb_session_detach(s, NULL, 0);
  cr_assert(due.end, "without a timer it would never expire");
  cr_assert(not(mqttb_timer_armed(&s->timer)));
  unit_alloc_heal(&f.a);
  mqttb_session_del(s);
  fix_done(&f);
}
