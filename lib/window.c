/* SPDX-License-Identifier: MIT */
/* A session's in-flight window. See window.h. */
#include "window.h"

#include <mqttb/mqttb.h>

void mqttb_window_init(mqttb_window *w) {
  w->e = NULL;
  w->cap = w->n = 0;
  w->head = w->tail = w->free = MQTTB_WINDOW_END;
  w->ids.e = NULL;
  w->ids.cap = w->ids.count = 0;
  w->next_pid = 1;
}

void mqttb_window_free(mqttb_window *w, const mqttb_mem *mem) {
  mqttb_mem_free(mem, w->e);
  mqttb_pidmap_free(&w->ids, mem);
  mqttb_window_init(w);
}

/* The next identifier not in flight. Identifiers go round in order, so the
 * next one is free unless the client holds all it was sent since the last
 * wrap; the window never holds all 65535 (the caller keeps it smaller). */
static uint16_t alloc_pid(mqttb_window *w) {
  for (;;) {
    uint16_t pid = w->next_pid++;
    if (w->next_pid == 0)
      w->next_pid = 1;
    if (!mqttb_pidmap_get(&w->ids, pid, NULL))
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
  if (w->n >= 65535 || (pid && mqttb_pidmap_get(&w->ids, pid, NULL)))
    return MQTTB_WINDOW_END;
  uint32_t s = slot_get(w, mem);
  if (s == MQTTB_WINDOW_END)
    return s;
  if (!pid)
    pid = alloc_pid(w);
  else if (pid >= w->next_pid)
    w->next_pid = pid == 65535 ? 1 : (uint16_t)(pid + 1);
  if (mqttb_pidmap_put(&w->ids, mem, pid, s) != 0) {
    w->e[s].next = w->free;
    w->free = s;
    return MQTTB_WINDOW_END;
  }
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

uint32_t mqttb_window_find(const mqttb_window *w, uint16_t pid) {
  uint32_t s;
  return mqttb_pidmap_get(&w->ids, pid, &s) ? s : MQTTB_WINDOW_END;
}

void mqttb_window_remove(mqttb_window *w, uint32_t s) {
  mqttb_inflight *f = &w->e[s];
  mqttb_pidmap_del(&w->ids, f->pid);
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
