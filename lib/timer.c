/* SPDX-License-Identifier: MIT */
/* The deadline heap. See timer.h. */
#include "timer.h"

#include <mqttb/mqttb.h>

void mqttb_timers_init(mqttb_timers *h, const mqttb_mem *mem) {
  h->mem = mem;
  h->heap = NULL;
  h->n = h->cap = 0;
}

void mqttb_timers_free(mqttb_timers *h) {
  mqttb_mem_free(h->mem, h->heap);
  h->heap = NULL;
  h->n = h->cap = 0;
}

void mqttb_timer_init(mqttb_timer *t, enum mqttb_timer_kind kind) {
  t->idx = UINT32_MAX;
  t->kind = (uint8_t)kind;
}

static void place(mqttb_timers *h, size_t i, mqttb_timer_slot s) {
  h->heap[i] = s;
  s.t->idx = (uint32_t)i;
}

static void sift_up(mqttb_timers *h, size_t i) {
  mqttb_timer_slot s = h->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h->heap[p].deadline <= s.deadline)
      break;
    place(h, i, h->heap[p]);
    i = p;
  }
  place(h, i, s);
}

static void sift_down(mqttb_timers *h, size_t i) {
  mqttb_timer_slot s = h->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    uint64_t best = s.deadline;
    if (l < h->n && h->heap[l].deadline < best) {
      m = l;
      best = h->heap[l].deadline;
    }
    if (r < h->n && h->heap[r].deadline < best)
      m = r;
    if (m == i)
      break;
    place(h, i, h->heap[m]);
    i = m;
  }
  place(h, i, s);
}

int mqttb_timers_set(mqttb_timers *h, mqttb_timer *t, uint64_t deadline) {
  if (t->idx != UINT32_MAX) {
    size_t i = t->idx;
    h->heap[i].deadline = deadline;
    sift_up(h, i);
    sift_down(h, t->idx);
    return 0;
  }
  if (h->n >= UINT32_MAX - 1)
    return MQTTB_ERR_NOMEM;
  void *arr = h->heap;
  if (mqttb_mem_grow(h->mem, &arr, &h->cap, h->n + 1, sizeof(*h->heap)) != 0)
    return MQTTB_ERR_NOMEM;
  h->heap = arr;
  size_t i = h->n++;
  mqttb_timer_slot s = {deadline, t};
  place(h, i, s);
  sift_up(h, i);
  return 0;
}

void mqttb_timers_remove(mqttb_timers *h, mqttb_timer *t) {
  if (t->idx == UINT32_MAX)
    return;
  size_t i = t->idx;
  t->idx = UINT32_MAX;
  size_t last = --h->n;
  if (i != last) {
    mqttb_timer *moved = h->heap[last].t;
    place(h, i, h->heap[last]);
    sift_up(h, i);
    sift_down(h, moved->idx);
  }
}

uint64_t mqttb_timers_deadline_of(const mqttb_timers *h, const mqttb_timer *t) {
  return t->idx == UINT32_MAX ? UINT64_MAX : h->heap[t->idx].deadline;
}

uint64_t mqttb_timers_next(const mqttb_timers *h) {
  return h->n > 0 ? h->heap[0].deadline : UINT64_MAX;
}

mqttb_timer *mqttb_timers_pop_due(mqttb_timers *h, uint64_t now) {
  if (h->n == 0 || h->heap[0].deadline > now)
    return NULL;
  mqttb_timer *t = h->heap[0].t;
  mqttb_timers_remove(h, t);
  return t;
}
