/* SPDX-License-Identifier: MIT */
/*
 * window: a session's outbound QoS 1/2 messages in flight. Entries are kept
 * in the order they were sent (a resumed session re-sends them in that
 * order) in a slab with an intrusive list, and found by packet identifier
 * through a direct-mapped index (the identifier's low bits name an index
 * slot, which holds the entry's slab slot), so that sending, acknowledging
 * and dropping cost constant time however many of the 65,535 identifiers
 * the client holds, with no hashing or probing. The window allocates the
 * identifiers itself, in order, skipping any whose index slot is taken; the
 * index is kept at most half full, so skips are rare (a client that holds
 * on to an identifier costs one skip each time the numbering passes it).
 */
#ifndef MQTTB_WINDOW_H
#define MQTTB_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "msg.h"

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
  /* Packet id -> slot: index[pid & (icap - 1)] is the slot of the one
   * entry in flight with those low bits, or MQTTB_WINDOW_END. icap is 0 or
   * a power of two of at most 65536, and at least twice n. */
  uint32_t *index;
  uint32_t icap;
  uint16_t next_pid;
} mqttb_window;

void mqttb_window_init(mqttb_window *w);
/* Free the window's memory (the deliveries must have been released). */
void mqttb_window_free(mqttb_window *w, const mqttb_mem *mem);
/* Append d (copied) with a fresh packet identifier and state; returns the
 * slot, or MQTTB_WINDOW_END on out-of-memory (nothing changed). Slots stay
 * where they are until removed. */
uint32_t mqttb_window_add(mqttb_window *w, const mqttb_mem *mem, const mqttb_dlv *d, uint8_t state);
/* The same with the packet identifier pid (a restored message), which
 * must not be in flight; MQTTB_WINDOW_END when it is. */
uint32_t mqttb_window_add_pid(mqttb_window *w, const mqttb_mem *mem, const mqttb_dlv *d,
                              uint8_t state, uint16_t pid);
static inline mqttb_inflight *mqttb_window_at(const mqttb_window *w, uint32_t slot) {
  return &w->e[slot];
}
/* The slot of packet identifier pid, or MQTTB_WINDOW_END. */
static inline uint32_t mqttb_window_find(const mqttb_window *w, uint16_t pid) {
  if (w->icap == 0)
    return MQTTB_WINDOW_END;
  uint32_t s = w->index[pid & (w->icap - 1)];
  return s != MQTTB_WINDOW_END && w->e[s].pid == pid ? s : MQTTB_WINDOW_END;
}
/* Take an entry out (its delivery is the caller's to release). */
void mqttb_window_remove(mqttb_window *w, uint32_t slot);

#endif /* MQTTB_WINDOW_H */
