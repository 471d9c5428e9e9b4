/* SPDX-License-Identifier: MIT */
/* A counting allocator for the unit tests: it counts live blocks (so a test
 * can assert that nothing leaked) and can fail allocations on demand (the
 * nth one from now, or all of them). */
#ifndef UNIT_ALLOC_H
#define UNIT_ALLOC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mqttb/mqttb.h>

typedef struct unit_alloc {
  mqttb_mem mem; /* hooks pointing at this allocator */
  long live;     /* blocks allocated and not yet freed */
  long calls;    /* allocation attempts so far (malloc, calloc, realloc) */
  long failed;   /* attempts refused */
  long fail_at;  /* refuse the attempt with this calls value (0: none) */
  bool fail_all; /* refuse every attempt */
} unit_alloc;

static inline bool unit_alloc_refuse(unit_alloc *a) {
  a->calls++;
  if (a->fail_all || (a->fail_at && a->calls == a->fail_at)) {
    a->failed++;
    return true;
  }
  return false;
}

static inline void *unit_alloc_malloc(size_t size, void *ud) {
  unit_alloc *a = ud;
  if (unit_alloc_refuse(a))
    return NULL;
  void *p = malloc(size);
  if (p)
    a->live++;
  return p;
}

static inline void unit_alloc_free(void *p, void *ud) {
  unit_alloc *a = ud;
  if (!p)
    return;
  a->live--;
  free(p);
}

static inline void *unit_alloc_calloc(size_t n, size_t size, void *ud) {
  unit_alloc *a = ud;
  if (unit_alloc_refuse(a))
    return NULL;
  void *p = calloc(n, size);
  if (p)
    a->live++;
  return p;
}

static inline void *unit_alloc_realloc(void *p, size_t size, void *ud) {
  unit_alloc *a = ud;
  if (unit_alloc_refuse(a))
    return NULL;
  void *q = realloc(p, size);
  if (q && !p)
    a->live++;
  return q;
}

static inline void unit_alloc_init(unit_alloc *a) {
  memset(a, 0, sizeof(*a));
  a->mem.malloc = unit_alloc_malloc;
  a->mem.free = unit_alloc_free;
  a->mem.calloc = unit_alloc_calloc;
  a->mem.realloc = unit_alloc_realloc;
  a->mem.user_data = a;
}

/* Refuse the nth allocation attempt from now (1: the next one). */
static inline void unit_alloc_fail_in(unit_alloc *a, long n) {
  a->fail_at = a->calls + n;
}

/* Allow every allocation again. */
static inline void unit_alloc_heal(unit_alloc *a) {
  a->fail_at = 0;
  a->fail_all = false;
}

#endif /* UNIT_ALLOC_H */
