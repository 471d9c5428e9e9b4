/* SPDX-License-Identifier: MIT */
/* A session's in-flight window. See window.h. */
#include "window.h"

#include <mqttb/mqttb.h>

#define INDEX_MAX 65536u

void mqttb_window_init(mqttb_window *w) {
  w->e = NULL;
  w->cap = w->n = 0;
  w->head = w->tail = w->free = MQTTB_WINDOW_END;
  w->index = NULL;
  w->icap = 0;
  w->next_pid = 1;
}

void mqttb_window_free(mqttb_window *w, const mqttb_mem *mem) {
  mqttb_mem_free(mem, w->e);
  mqttb_mem_free(mem, w->index);
  mqttb_window_init(w);
}

static uint32_t *index_of(const mqttb_window *w, uint16_t pid) {
  return &w->index[pid & (w->icap - 1)];
}

/* An index of icap slots for what is in flight, replacing the old one.
 * False on out-of-memory (nothing changed). */
static bool index_build(mqttb_window *w, const mqttb_mem *mem, uint32_t icap) {
  uint32_t *ix = mqttb_mem_malloc(mem, (size_t)icap * sizeof(*ix));
  if (!ix)
    return false;
  for (uint32_t i = 0; i < icap; i++)
    ix[i] = MQTTB_WINDOW_END;
  for (uint32_t s = w->head; s != MQTTB_WINDOW_END; s = w->e[s].next)
    ix[w->e[s].pid & (icap - 1)] = s;
  mqttb_mem_free(mem, w->index);
  w->index = ix;
  w->icap = icap;
  return true;
}

/* Room in the index for one more entry (at most half full, so that a fresh
 * identifier's slot is free unless the client holds on to an old one). */
static bool index_room(mqttb_window *w, const mqttb_mem *mem) {
  if ((w->n + 1) * 2 <= w->icap || w->icap == INDEX_MAX)
    return true;
  return index_build(w, mem, w->icap ? w->icap * 2 : 8);
}

/* The next identifier whose index slot is free. Identifiers go round in
 * order, so that one is free unless an entry sent icap identifiers ago (or
 * one sharing its low bits) is still held; the window never holds all
 * 65535 (the caller keeps it smaller), and at INDEX_MAX every identifier
 * has its own index slot. */
static uint16_t alloc_pid(mqttb_window *w) {
  for (;;) {
    uint16_t pid = w->next_pid++;
    if (w->next_pid == 0)
      w->next_pid = 1;
    if (*index_of(w, pid) == MQTTB_WINDOW_END)
      return pid;
  }
}

static uint32_t slot_get(mqttb_window *w, const mqttb_mem *mem) {
  if (w->free != MQTTB_WINDOW_END) {
    uint32_t s = w->free;
    w->free = w->e[s].next;
    return s;
  }
  if (w->cap >= 65535)
    return MQTTB_WINDOW_END;
  uint32_t ncap = w->cap ? w->cap * 2 : 4;
  if (ncap > 65535)
    ncap = 65535;
  mqttb_inflight *e = mqttb_mem_realloc(mem, w->e, (size_t)ncap * sizeof(*e));
  if (!e)
    return MQTTB_WINDOW_END;
  w->e = e;
  /* Chain the new slots after the first onto the free list. */
  for (uint32_t i = ncap - 1; i > w->cap; i--) {
    e[i].next = w->free;
    w->free = i;
  }
  uint32_t s = w->cap;
  w->cap = ncap;
  return s;
}

uint32_t mqttb_window_add(mqttb_window *w, const mqttb_mem *mem, const mqttb_dlv *d,
                          uint8_t state) {
  return mqttb_window_add_pid(w, mem, d, state, 0);
}

uint32_t mqttb_window_add_pid(mqttb_window *w, const mqttb_mem *mem, const mqttb_dlv *d,
                              uint8_t state, uint16_t pid) {
  if (w->n >= 65535 || (pid && mqttb_window_find(w, pid) != MQTTB_WINDOW_END))
    return MQTTB_WINDOW_END;
  if (!index_room(w, mem))
    return MQTTB_WINDOW_END;
  /* A given identifier (a restored message) may share its index slot with
   * one in flight: a larger index tells them apart (at INDEX_MAX every
   * identifier has its own slot). */
  while (pid && *index_of(w, pid) != MQTTB_WINDOW_END)
    if (!index_build(w, mem, w->icap * 2))
      return MQTTB_WINDOW_END;
  uint32_t s = slot_get(w, mem);
  if (s == MQTTB_WINDOW_END)
    return s;
  if (!pid)
    pid = alloc_pid(w);
  else if (pid >= w->next_pid)
    w->next_pid = pid == 65535 ? 1 : (uint16_t)(pid + 1);
  *index_of(w, pid) = s;
  mqttb_inflight *f = &w->e[s];
  f->d = *d;
  f->pid = pid;
  f->state = state;
  f->next = MQTTB_WINDOW_END;
  f->prev = w->tail;
  if (w->tail != MQTTB_WINDOW_END)
    w->e[w->tail].next = s;
  else
    w->head = s;
  w->tail = s;
  w->n++;
  return s;
}

void mqttb_window_remove(mqttb_window *w, uint32_t s) {
  mqttb_inflight *f = &w->e[s];
  *index_of(w, f->pid) = MQTTB_WINDOW_END;
  if (f->prev != MQTTB_WINDOW_END)
    w->e[f->prev].next = f->next;
  else
    w->head = f->next;
  if (f->next != MQTTB_WINDOW_END)
    w->e[f->next].prev = f->prev;
  else
    w->tail = f->prev;
  f->next = w->free;
  w->free = s;
  w->n--;
}
