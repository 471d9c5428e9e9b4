/* SPDX-License-Identifier: MIT */
/* The deadline heap (timer.h): order, moves, removal, failure. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "timer.h"
#include "unit_alloc.h"

#define N 1000

static uint64_t rng_state;
static uint64_t rng(void) {
  /* xorshift64*: reproducible, no libc state. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Every slot is not earlier than its parent and knows its own position. */
static void assert_heap_ok(const mqttb_timers *h) {
  for (size_t i = 0; i < h->n; i++) {
    cr_assert(eq(u32, h->heap[i].t->idx, (uint32_t)i), "slot %zu", i);
    if (i > 0)
      cr_assert(ge(u64, h->heap[i].deadline, h->heap[(i - 1) / 2].deadline), "slot %zu", i);
  }
}

/* Pop everything and check it comes out as want[0..n) (sorted), each popped
 * handle disarmed and its deadline the one recorded for it in dl[]. */
static void assert_pops_sorted(mqttb_timers *h, mqttb_timer *t, const uint64_t *dl,
                               const uint64_t *want, size_t n) {
  for (size_t k = 0; k < n; k++) {
    cr_assert(eq(u64, mqttb_timers_next(h), want[k]), "pop %zu", k);
    mqttb_timer *p = mqttb_timers_pop_due(h, UINT64_MAX);
    cr_assert(not(eq(ptr, p, NULL)), "pop %zu", k);
    cr_assert(not(mqttb_timer_armed(p)));
    cr_assert(eq(u64, dl[p - t], want[k]), "pop %zu", k);
  }
  cr_assert(eq(sz, h->n, 0));
  cr_assert(eq(ptr, mqttb_timers_pop_due(h, UINT64_MAX), NULL));
  cr_assert(eq(u64, mqttb_timers_next(h), UINT64_MAX));
}

Test(timer, pops_random_deadlines_in_sorted_order) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_timers h;
  mqttb_timers_init(&h, &a.mem);
  static mqttb_timer t[N];
  static uint64_t dl[N], sorted[N];
  rng_state = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < N; i++) {
    mqttb_timer_init(&t[i], MQTTB_TIMER_CONN);
    /* A small range, so that equal deadlines occur too. */
    dl[i] = rng() % 500;
    sorted[i] = dl[i];
    cr_assert(eq(int, mqttb_timers_set(&h, &t[i], dl[i]), 0));
  }
  assert_heap_ok(&h);
  qsort(sorted, N, sizeof(sorted[0]), cmp_u64);
  assert_pops_sorted(&h, t, dl, sorted, N);
  mqttb_timers_free(&h);
  cr_assert(eq(long, a.live, 0));
}

Test(timer, armed_and_deadline_of_follow_set_and_remove) {
  mqttb_timers h;
  mqttb_timers_init(&h, mqttb_mem_default());
  mqttb_timer t;
  mqttb_timer_init(&t, MQTTB_TIMER_SESSION);
  cr_assert(eq(u8, t.kind, MQTTB_TIMER_SESSION));
  cr_assert(not(mqttb_timer_armed(&t)));
  cr_assert(eq(u64, mqttb_timers_deadline_of(&h, &t), UINT64_MAX));
  cr_assert(eq(u64, mqttb_timers_next(&h), UINT64_MAX));
  cr_assert(eq(int, mqttb_timers_set(&h, &t, 1234), 0));
  cr_assert(mqttb_timer_armed(&t));
  cr_assert(eq(u64, mqttb_timers_deadline_of(&h, &t), 1234));
  cr_assert(eq(u64, mqttb_timers_next(&h), 1234));
  cr_assert(eq(int, mqttb_timers_set(&h, &t, 99), 0));
  cr_assert(eq(sz, h.n, 1), "moving an armed timer does not add an entry");
  cr_assert(eq(u64, mqttb_timers_deadline_of(&h, &t), 99));
  mqttb_timers_remove(&h, &t);
  cr_assert(not(mqttb_timer_armed(&t)));
  cr_assert(eq(u64, mqttb_timers_deadline_of(&h, &t), UINT64_MAX));
  cr_assert(eq(sz, h.n, 0));
  /* Removing a timer that is not armed does nothing. */
  mqttb_timers_remove(&h, &t);
  cr_assert(eq(sz, h.n, 0));
  cr_assert(not(mqttb_timer_armed(&t)));
  mqttb_timers_free(&h);
}

Test(timer, pop_due_waits_for_the_deadline) {
  mqttb_timers h;
  mqttb_timers_init(&h, mqttb_mem_default());
  mqttb_timer t1, t2;
  mqttb_timer_init(&t1, MQTTB_TIMER_CONN);
  mqttb_timer_init(&t2, MQTTB_TIMER_CONN);
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, 0), NULL), "empty heap");
  cr_assert(eq(int, mqttb_timers_set(&h, &t1, 1000), 0));
  cr_assert(eq(int, mqttb_timers_set(&h, &t2, 2000), 0));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, 0), NULL));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, 999), NULL));
  cr_assert(mqttb_timer_armed(&t1), "a NULL pop leaves the timer armed");
  cr_assert(eq(sz, h.n, 2));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, 1000), &t1), "due exactly at its deadline");
  cr_assert(not(mqttb_timer_armed(&t1)));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, 1999), NULL));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, 5000), &t2));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, 5000), NULL));
  mqttb_timers_free(&h);
}

Test(timer, moving_an_armed_timer_earlier_and_later_reorders) {
  mqttb_timers h;
  mqttb_timers_init(&h, mqttb_mem_default());
  mqttb_timer a, b, c;
  mqttb_timer_init(&a, MQTTB_TIMER_CONN);
  mqttb_timer_init(&b, MQTTB_TIMER_CONN);
  mqttb_timer_init(&c, MQTTB_TIMER_CONN);
  cr_assert(eq(int, mqttb_timers_set(&h, &a, 100), 0));
  cr_assert(eq(int, mqttb_timers_set(&h, &b, 200), 0));
  cr_assert(eq(int, mqttb_timers_set(&h, &c, 300), 0));
  cr_assert(eq(int, mqttb_timers_set(&h, &c, 50), 0)); /* earlier: becomes first */
  cr_assert(eq(u64, mqttb_timers_next(&h), 50));
  cr_assert(eq(int, mqttb_timers_set(&h, &a, 400), 0)); /* later: becomes last */
  assert_heap_ok(&h);
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, UINT64_MAX), &c));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, UINT64_MAX), &b));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, 399), NULL));
  cr_assert(eq(ptr, mqttb_timers_pop_due(&h, 400), &a));
  mqttb_timers_free(&h);
}

Test(timer, random_moves_keep_heap_order) {
  unit_alloc al;
  unit_alloc_init(&al);
  mqttb_timers h;
  mqttb_timers_init(&h, &al.mem);
  static mqttb_timer t[N];
  static uint64_t dl[N], sorted[N];
  rng_state = 12345;
  for (size_t i = 0; i < N; i++) {
    mqttb_timer_init(&t[i], MQTTB_TIMER_CONN);
    dl[i] = 1000 + rng() % 100000;
    cr_assert(eq(int, mqttb_timers_set(&h, &t[i], dl[i]), 0));
  }
  size_t cap = h.cap;
  for (int k = 0; k < 5 * N; k++) {
    size_t i = rng() % N;
    /* Half the moves earlier, half later. */
    dl[i] = k % 2 ? dl[i] / 2 : dl[i] + rng() % 100000;
    cr_assert(eq(int, mqttb_timers_set(&h, &t[i], dl[i]), 0));
    cr_assert(eq(u64, mqttb_timers_deadline_of(&h, &t[i]), dl[i]));
  }
  cr_assert(eq(sz, h.n, N));
  cr_assert(eq(sz, h.cap, cap), "moves allocate nothing");
  assert_heap_ok(&h);
  memcpy(sorted, dl, sizeof(dl));
  qsort(sorted, N, sizeof(sorted[0]), cmp_u64);
  assert_pops_sorted(&h, t, dl, sorted, N);
  mqttb_timers_free(&h);
  cr_assert(eq(long, al.live, 0));
}

Test(timer, removing_from_the_middle_keeps_heap_order) {
  mqttb_timers h;
  mqttb_timers_init(&h, mqttb_mem_default());
  static mqttb_timer t[N];
  static uint64_t dl[N], want[N];
  rng_state = 777;
  for (size_t i = 0; i < N; i++) {
    mqttb_timer_init(&t[i], MQTTB_TIMER_SESSION);
    dl[i] = rng() % 10000;
    cr_assert(eq(int, mqttb_timers_set(&h, &t[i], dl[i]), 0));
  }
  /* Remove every third, in an order unrelated to heap positions. */
  size_t left = 0;
  for (size_t i = 0; i < N; i++) {
    if (i % 3 == 1) {
      mqttb_timers_remove(&h, &t[i]);
      cr_assert(not(mqttb_timer_armed(&t[i])));
      cr_assert(eq(u64, mqttb_timers_deadline_of(&h, &t[i]), UINT64_MAX));
      assert_heap_ok(&h);
    } else {
      want[left++] = dl[i];
    }
  }
  cr_assert(eq(sz, h.n, left));
  /* Also take out whatever sits in the middle of the array. */
  for (int k = 0; k < 50; k++) {
    mqttb_timer *mid = h.heap[h.n / 2].t;
    uint64_t d = h.heap[h.n / 2].deadline;
    mqttb_timers_remove(&h, mid);
    assert_heap_ok(&h);
    for (size_t j = 0; j < left; j++) {
      if (want[j] == d) {
        want[j] = want[--left];
        break;
      }
    }
    dl[mid - t] = UINT64_MAX; /* never popped */
  }
  cr_assert(eq(sz, h.n, left));
  qsort(want, left, sizeof(want[0]), cmp_u64);
  assert_pops_sorted(&h, t, dl, want, left);
  mqttb_timers_free(&h);
}

Test(timer, set_reports_nomem_and_leaves_the_heap_unchanged) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_timers h;
  mqttb_timers_init(&h, &a.mem);
  mqttb_timer t[16];
  for (int i = 0; i < 16; i++)
    mqttb_timer_init(&t[i], MQTTB_TIMER_CONN);

  /* The very first entry needs the array. */
  a.fail_all = true;
  cr_assert(eq(int, mqttb_timers_set(&h, &t[0], 10), MQTTB_ERR_NOMEM));
  cr_assert(not(mqttb_timer_armed(&t[0])));
  cr_assert(eq(sz, h.n, 0));
  cr_assert(eq(ptr, h.heap, NULL));
  unit_alloc_heal(&a);

  /* Fill the array to its capacity, then fail the growth. */
  int i = 0;
  do {
    cr_assert(eq(int, mqttb_timers_set(&h, &t[i], (uint64_t)(100 - i)), 0));
    i++;
  } while (h.n < h.cap);
  size_t n = h.n, cap = h.cap;
  mqttb_timer_slot before[16];
  memcpy(before, h.heap, n * sizeof(before[0]));
  a.fail_all = true;
  cr_assert(eq(int, mqttb_timers_set(&h, &t[i], 1), MQTTB_ERR_NOMEM));
  cr_assert(lt(long, 1, a.failed), "the growth was attempted");
  cr_assert(not(mqttb_timer_armed(&t[i])));
  cr_assert(eq(sz, h.n, n));
  cr_assert(eq(sz, h.cap, cap));
  cr_assert(eq(int, memcmp(before, h.heap, n * sizeof(before[0])), 0));
  /* Moving an armed timer needs no memory: it still works. */
  cr_assert(eq(int, mqttb_timers_set(&h, &t[0], 5), 0));
  cr_assert(eq(u64, mqttb_timers_next(&h), 5));
  unit_alloc_heal(&a);
  cr_assert(eq(int, mqttb_timers_set(&h, &t[i], 1), 0));
  cr_assert(eq(u64, mqttb_timers_next(&h), 1));
  assert_heap_ok(&h);
  mqttb_timers_free(&h);
  cr_assert(eq(ptr, h.heap, NULL));
  cr_assert(eq(long, a.live, 0));
}
