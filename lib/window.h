/* SPDX-License-Identifier: MIT */
/*
 * window: a session's outbound QoS 1/2 messages in flight. Entries are kept
 * in the order they were sent (a resumed session re-sends them in that
 * order) in a slab with an intrusive list, and found by packet identifier
 * through a pidmap, so that sending, acknowledging and dropping cost
 * constant time however many of the 65,535 identifiers the client holds.
 * The window also allocates the identifiers.
 */
#ifndef MQTTB_WINDOW_H
#define MQTTB_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "msg.h"
#include "pidmap.h"

struct mqttb_share;

/* One message on its way to one session (queued or in flight). Owned by
 * the session layer, which references and releases what it points to. */
typedef struct mqttb_dlv {
  mqttb_msg *msg;
  struct mqttb_share *share; /* set when delivered through a shared subscription */
  uint32_t *ids;             /* MQTT 5 Subscription Identifiers (owned) */
  uint64_t store_id;         /* its id in the store; 0: not recorded */
  uint16_t nids;
  uint8_t qos;
  bool retain;
} mqttb_dlv;

/* What the broker waits for. */
enum { MQTTB_INF_PUBACK = 1, MQTTB_INF_PUBREC = 2, MQTTB_INF_PUBCOMP = 3 };

#define MQTTB_WINDOW_END UINT32_MAX

typedef struct mqttb_inflight {
  mqttb_dlv d;
  uint32_t prev, next; /* send order; free slots are chained through next */
  uint16_t pid;
  uint8_t state; /* MQTTB_INF_* */
} mqttb_inflight;

/* Fields belong to this module; the session reads entries through
 * mqttb_window_at and walks them from head through next. */
typedef struct mqttb_window {
  mqttb_inflight *e;
  uint32_t cap, n; /* slots, entries in flight */
  uint32_t head, tail, free;
  mqttb_pidmap ids; /* packet id -> slot */
  uint16_t next_pid;
} mqttb_window;

void mqttb_window_init(mqttb_window *w);
/* Free the window's memory (the deliveries must have been released). */
void mqttb_window_free(mqttb_window *w, const mqttb_mem *mem);
/* Append d (copied) with a fresh packet identifier and state; returns the
 * slot, or MQTTB_WINDOW_END on out-of-memory (nothing changed). */
uint32_t mqttb_window_add(mqttb_window *w, const mqttb_mem *mem, const mqttb_dlv *d, uint8_t state);
/* The same with the packet identifier pid (a restored message), which
 * must not be in flight; MQTTB_WINDOW_END when it is. */
uint32_t mqttb_window_add_pid(mqttb_window *w, const mqttb_mem *mem, const mqttb_dlv *d,
                              uint8_t state, uint16_t pid);
static inline mqttb_inflight *mqttb_window_at(const mqttb_window *w, uint32_t slot) {
  return &w->e[slot];
}
/* The slot of packet identifier pid, or MQTTB_WINDOW_END. */
uint32_t mqttb_window_find(const mqttb_window *w, uint16_t pid);
/* Take an entry out (its delivery is the caller's to release). */
void mqttb_window_remove(mqttb_window *w, uint32_t slot);

#endif /* MQTTB_WINDOW_H */
