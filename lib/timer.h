/* SPDX-License-Identifier: MIT */
/*
 * timer: one min-heap of deadlines for a whole broker. Each entry is a
 * small typed handle embedded in the object it belongs to (a connection's
 * keep-alive, connect timeout and output stall; an offline session's
 * expiry and will delay); the heap stores the deadline next to a pointer to
 * the handle, and the handle knows its heap position, so setting, moving
 * and removing are O(log n) and nothing is allocated per timer. The owner
 * recovers its object from a popped handle by its kind.
 */
#ifndef MQTTB_TIMER_H
#define MQTTB_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

enum mqttb_timer_kind { MQTTB_TIMER_CONN = 1, MQTTB_TIMER_SESSION = 2 };

/* Embedded in its owner. Fields belong to this module. */
typedef struct mqttb_timer {
  uint32_t idx; /* position in the heap; UINT32_MAX when not armed */
  uint8_t kind; /* enum mqttb_timer_kind, for the owner's dispatch */
} mqttb_timer;

typedef struct mqttb_timer_slot {
  uint64_t deadline;
  mqttb_timer *t;
} mqttb_timer_slot;

typedef struct mqttb_timers {
  const mqttb_mem *mem;
  mqttb_timer_slot *heap;
  size_t n, cap;
} mqttb_timers;

void mqttb_timers_init(mqttb_timers *h, const mqttb_mem *mem);
void mqttb_timers_free(mqttb_timers *h);

void mqttb_timer_init(mqttb_timer *t, enum mqttb_timer_kind kind);
static inline bool mqttb_timer_armed(const mqttb_timer *t) {
  return t->idx != UINT32_MAX;
}
/* Arm or move t. 0, or MQTTB_ERR_NOMEM (t unchanged). */
int mqttb_timers_set(mqttb_timers *h, mqttb_timer *t, uint64_t deadline);
/* Disarm t (nothing when it is not armed). */
void mqttb_timers_remove(mqttb_timers *h, mqttb_timer *t);
/* t's deadline, UINT64_MAX when it is not armed. */
uint64_t mqttb_timers_deadline_of(const mqttb_timers *h, const mqttb_timer *t);
/* The earliest deadline, UINT64_MAX when the heap is empty. */
uint64_t mqttb_timers_next(const mqttb_timers *h);
/* Disarm and return the earliest entry if it is due at now, else NULL. */
mqttb_timer *mqttb_timers_pop_due(mqttb_timers *h, uint64_t now);

#endif /* MQTTB_TIMER_H */
