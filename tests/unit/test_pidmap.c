/* SPDX-License-Identifier: MIT */
/* The packet identifier map (pidmap.h) and the in-flight window built on
 * it (window.h): correctness with all 65,535 identifiers held, and lookups
 * that stay short however many are held, which is what keeps the cost of a
 * PUBLISH, PUBACK or PUBREL independent of what one client holds. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>

#include "pidmap.h"
#include "unit_alloc.h"
#include "window.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Average and longest lookup over every key present. */
static void probe_stats(const mqttb_pidmap *m, double *avg, uint32_t *max) {
  uint64_t sum = 0;
  uint32_t n = 0;
  *max = 0;
  for (uint32_t k = 1; k <= 65535; k++) {
    uint32_t p = mqttb_pidmap_probes(m, (uint16_t)k);
    if (!p)
      continue;
    sum += p;
    n++;
    if (p > *max)
      *max = p;
  }
  *avg = n ? (double)sum / n : 0.0;
}

Test(pidmap, every_identifier_held_then_released_in_random_order) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_pidmap m = {0};
  static uint16_t order[65535];
  for (uint32_t i = 0; i < 65535; i++)
    order[i] = (uint16_t)(i + 1);
  for (uint32_t i = 65534; i > 0; i--) {
    uint32_t j = rng() % (i + 1);
    uint16_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (uint32_t i = 0; i < 65535; i++)
    cr_assert(eq(int, mqttb_pidmap_put(&m, &a.mem, order[i], i * 3u), 0));
  cr_assert(eq(u32, m.count, 65535));
  for (uint32_t i = 0; i < 65535; i++) {
    uint32_t v = 0;
    cr_assert(mqttb_pidmap_get(&m, order[i], &v));
    cr_assert(eq(u32, v, i * 3u));
  }
  cr_assert(not(mqttb_pidmap_get(&m, 0, NULL)), "0 is never a key");
  /* Release half, check the rest, then release everything. */
  for (uint32_t i = 0; i < 65535; i += 2)
    cr_assert(mqttb_pidmap_del(&m, order[i]));
  for (uint32_t i = 0; i < 65535; i++)
    cr_assert(eq(int, mqttb_pidmap_get(&m, order[i], NULL), i % 2 == 1), "key %u", order[i]);
  cr_assert(not(mqttb_pidmap_del(&m, order[0])), "deleted twice");
  for (uint32_t i = 1; i < 65535; i += 2)
    cr_assert(mqttb_pidmap_del(&m, order[i]));
  cr_assert(eq(u32, m.count, 0));
  mqttb_pidmap_free(&m, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

/* Lookups cost about the same with 1,000 and with 65,535 identifiers held,
 * whether they were handed out in order (as the broker does) or not. */
Test(pidmap, lookups_stay_short_however_many_are_held) {
  unit_alloc a;
  unit_alloc_init(&a);
  for (int random = 0; random < 2; random++) {
    double avg_small, avg_full;
    uint32_t max_small, max_full;
    mqttb_pidmap m = {0};
    for (uint32_t i = 1; i <= 65535; i++) {
      uint16_t k = (uint16_t)(random ? 0 : i);
      if (random)
        do
          k = (uint16_t)(rng() % 65535 + 1);
        while (mqttb_pidmap_get(&m, k, NULL));
      cr_assert(eq(int, mqttb_pidmap_put(&m, &a.mem, k, 0), 0));
      if (i == 1000)
        probe_stats(&m, &avg_small, &max_small);
    }
    probe_stats(&m, &avg_full, &max_full);
    cr_assert(lt(dbl, avg_small, 2.0), "average probes with 1,000 held: %.2f", avg_small);
    cr_assert(lt(dbl, avg_full, 2.0), "average probes with 65,535 held: %.2f", avg_full);
    cr_assert(lt(u32, max_full, 64), "longest probe run with 65,535 held: %u", max_full);
    mqttb_pidmap_free(&m, &a.mem);
  }
  cr_assert(eq(long, a.live, 0));
}

Test(pidmap, growth_failure_leaves_the_map_intact) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_pidmap m = {0};
  for (uint16_t k = 1; k <= 4; k++)
    cr_assert(eq(int, mqttb_pidmap_put(&m, &a.mem, k, k), 0));
  unit_alloc_fail_in(&a, 1);
  cr_assert(eq(int, mqttb_pidmap_put(&m, &a.mem, 5, 5), MQTTB_ERR_NOMEM));
  unit_alloc_heal(&a);
  cr_assert(eq(u32, m.count, 4));
  for (uint16_t k = 1; k <= 4; k++) {
    uint32_t v;
    cr_assert(mqttb_pidmap_get(&m, k, &v));
    cr_assert(eq(u32, v, k));
  }
  cr_assert(not(mqttb_pidmap_get(&m, 5, NULL)));
  mqttb_pidmap_free(&m, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

/* The window keeps send order through removals anywhere, hands out
 * identifiers in order skipping those in flight, and holds 65,535. */
Test(window, order_identifiers_and_removal_anywhere) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_window w;
  mqttb_window_init(&w);
  mqttb_dlv d = {0};
  uint32_t slots[65535];
  for (uint32_t i = 0; i < 65535; i++) {
    slots[i] = mqttb_window_add(&w, &a.mem, &d, MQTTB_INF_PUBACK);
    cr_assert(ne(u32, slots[i], MQTTB_WINDOW_END));
    cr_assert(eq(u16, mqttb_window_at(&w, slots[i])->pid, (uint16_t)(i + 1)));
  }
  cr_assert(eq(u32, mqttb_window_add(&w, &a.mem, &d, MQTTB_INF_PUBACK), MQTTB_WINDOW_END),
            "a 65,536th message in flight");
  /* Remove every third, from the middle outwards. */
  for (uint32_t i = 1; i < 65535; i += 3)
    mqttb_window_remove(&w, mqttb_window_find(&w, (uint16_t)(i + 1)));
  cr_assert(eq(u32, mqttb_window_find(&w, 2), MQTTB_WINDOW_END));
  uint32_t n = 0, prev = 0;
  for (uint32_t s = w.head; s != MQTTB_WINDOW_END; s = mqttb_window_at(&w, s)->next) {
    uint16_t pid = mqttb_window_at(&w, s)->pid;
    cr_assert(lt(u32, prev, pid), "send order kept");
    cr_assert(ne(u32, (uint32_t)(pid - 1) % 3, 1));
    prev = pid;
    n++;
  }
  cr_assert(eq(u32, n, w.n));
  /* The freed identifiers come back, lowest first after the wrap. */
  uint32_t s = mqttb_window_add(&w, &a.mem, &d, MQTTB_INF_PUBREC);
  cr_assert(eq(u16, mqttb_window_at(&w, s)->pid, 2));
  cr_assert(eq(u32, w.tail, s));
  mqttb_window_free(&w, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

Test(window, out_of_memory_changes_nothing) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_window w;
  mqttb_window_init(&w);
  mqttb_dlv d = {0};
  for (int i = 0; i < 4; i++)
    cr_assert(ne(u32, mqttb_window_add(&w, &a.mem, &d, MQTTB_INF_PUBACK), MQTTB_WINDOW_END));
  for (long k = 1; k <= 2; k++) {
    unit_alloc_fail_in(&a, k);
    uint32_t s;
    /* Fill until an allocation is needed and refused. */
    while ((s = mqttb_window_add(&w, &a.mem, &d, MQTTB_INF_PUBACK)) != MQTTB_WINDOW_END)
      ;
    unit_alloc_heal(&a);
    uint32_t n = 0;
    for (uint32_t x = w.head; x != MQTTB_WINDOW_END; x = mqttb_window_at(&w, x)->next)
      n++;
    cr_assert(eq(u32, n, w.n));
    for (uint32_t x = w.head; x != MQTTB_WINDOW_END; x = mqttb_window_at(&w, x)->next)
      cr_assert(eq(u32, mqttb_window_find(&w, mqttb_window_at(&w, x)->pid), x));
  }
  mqttb_window_free(&w, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

/* Restored identifiers that share their low bits with others in flight
 * are all found; fresh ones then skip every identifier in flight. */
Test(window, restored_identifiers_sharing_low_bits) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_window w;
  mqttb_window_init(&w);
  mqttb_dlv d = {0};
  const uint16_t pids[] = {5, 5 + 8, 5 + 4096, 5 + 32768, 65535, 32767};
  uint32_t slots[6];
  for (int i = 0; i < 6; i++) {
    slots[i] = mqttb_window_add_pid(&w, &a.mem, &d, MQTTB_INF_PUBREC, pids[i]);
    cr_assert(ne(u32, slots[i], MQTTB_WINDOW_END));
  }
  cr_assert(eq(u32, mqttb_window_add_pid(&w, &a.mem, &d, MQTTB_INF_PUBREC, 13), MQTTB_WINDOW_END),
            "an identifier already in flight");
  for (int i = 0; i < 6; i++)
    cr_assert(eq(u32, mqttb_window_find(&w, pids[i]), slots[i]));
  cr_assert(eq(u32, mqttb_window_find(&w, 6), MQTTB_WINDOW_END));
  cr_assert(eq(u32, mqttb_window_find(&w, 5 + 16), MQTTB_WINDOW_END));
  /* After 65535 the numbering wraps to 1: fresh identifiers never repeat
   * one in flight. */
  for (uint32_t i = 0; i < 70000; i++) {
    uint32_t s = mqttb_window_add(&w, &a.mem, &d, MQTTB_INF_PUBACK);
    cr_assert(ne(u32, s, MQTTB_WINDOW_END));
    uint16_t pid = mqttb_window_at(&w, s)->pid;
    for (int k = 0; k < 6; k++)
      cr_assert(ne(u16, pid, pids[k]));
    cr_assert(eq(u32, mqttb_window_find(&w, pid), s));
    mqttb_window_remove(&w, s);
    cr_assert(eq(u32, mqttb_window_find(&w, pid), MQTTB_WINDOW_END));
  }
  for (int i = 0; i < 6; i++)
    cr_assert(eq(u32, mqttb_window_find(&w, pids[i]), slots[i]));
  mqttb_window_free(&w, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

/* A client that holds one identifier and acknowledges everything else
 * keeps getting the others in order. */
Test(window, a_held_identifier_is_skipped) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_window w;
  mqttb_window_init(&w);
  mqttb_dlv d = {0};
  uint32_t held = mqttb_window_add(&w, &a.mem, &d, MQTTB_INF_PUBACK);
  cr_assert(eq(u16, mqttb_window_at(&w, held)->pid, 1));
  uint16_t expect = 2;
  for (uint32_t i = 0; i < 3 * 65535; i++) {
    uint32_t s = mqttb_window_add(&w, &a.mem, &d, MQTTB_INF_PUBACK);
    cr_assert(ne(u32, s, MQTTB_WINDOW_END));
    uint16_t pid = mqttb_window_at(&w, s)->pid;
    cr_assert(ne(u16, pid, 1));
    cr_assert(eq(u16, pid, expect));
    mqttb_window_remove(&w, s);
    expect = expect == 65535 ? 2 : (uint16_t)(expect + 1);
    /* pids whose low bits are 1's (those after 1 by a multiple of the
     * index's size) are skipped too. */
    while (expect != 1 && (expect & (w.icap - 1)) == 1)
      expect = expect == 65535 ? 2 : (uint16_t)(expect + 1);
  }
  cr_assert(eq(u32, w.n, 1));
  mqttb_window_free(&w, &a.mem);
  cr_assert(eq(long, a.live, 0));
}
