/* SPDX-License-Identifier: MIT */
#include "mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *std_malloc(size_t size, void *ud) {
  (void)ud;
  return malloc(size);
}
static void std_free(void *ptr, void *ud) {
  (void)ud;
  free(ptr);
}
static void *std_calloc(size_t n, size_t size, void *ud) {
  (void)ud;
  return calloc(n, size);
}
static void *std_realloc(void *ptr, size_t size, void *ud) {
  (void)ud;
  return realloc(ptr, size);
}

static const mqttb_mem std_mem = {std_malloc, std_free, std_calloc, std_realloc, NULL};

const mqttb_mem *mqttb_mem_default(void) {
  return &std_mem;
}

void *mqttb_mem_malloc(const mqttb_mem *mem, size_t size) {
  return mem->malloc(size ? size : 1, mem->user_data);
}

void *mqttb_mem_calloc(const mqttb_mem *mem, size_t nmemb, size_t size) {
  if (nmemb == 0 || size == 0) {
    nmemb = 1;
    size = 1;
  }
  return mem->calloc(nmemb, size, mem->user_data);
}

void *mqttb_mem_realloc(const mqttb_mem *mem, void *ptr, size_t size) {
  return mem->realloc(ptr, size ? size : 1, mem->user_data);
}

void mqttb_mem_free(const mqttb_mem *mem, void *ptr) {
  if (ptr)
    mem->free(ptr, mem->user_data);
}

int mqttb_mem_grow(const mqttb_mem *mem, void **arr, size_t *cap, size_t need, size_t elsize) {
  if (need <= *cap)
    return 0;
  /* Arrays of pointers and structs start at what is needed: most hold one
   * element for good (a subscription's session, a session's only
   * subscription), and malloc's smallest block already fits two. */
  size_t ncap = *cap ? *cap * 2 : elsize >= sizeof(void *) ? 1 : 4;
  while (ncap < need)
    ncap *= 2;
  if (ncap > SIZE_MAX / elsize)
    return MQTTB_ERR_NOMEM;
  void *p = mqttb_mem_realloc(mem, *arr, ncap * elsize);
  if (!p)
    return MQTTB_ERR_NOMEM;
  *arr = p;
  *cap = ncap;
  return 0;
}

int mqttb_mem_grow32(const mqttb_mem *mem, void **arr, uint32_t *cap, size_t need, size_t elsize) {
  size_t c = *cap;
  if (need > UINT32_MAX)
    return MQTTB_ERR_NOMEM;
  int rv = mqttb_mem_grow(mem, arr, &c, need, elsize);
  if (rv == 0)
    *cap = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
  return rv;
}

/* ---- the memory limit ---- */

/* Room for the size in front of every block, keeping max_align_t alignment. */
#define HDR 16u

static bool fits(const mqttb_mem_limit *l, size_t more) {
  return more <= l->hard && l->used <= l->hard - more;
}

static void *lim_malloc(size_t size, void *ud) {
  mqttb_mem_limit *l = ud;
  if (size > SIZE_MAX - HDR || !fits(l, size + HDR))
    return NULL;
  uint8_t *p = l->inner.malloc(size + HDR, l->inner.user_data);
  if (!p)
    return NULL;
  *(size_t *)(void *)p = size;
  l->used += size + HDR;
  return p + HDR;
}

static void lim_free(void *ptr, void *ud) {
  mqttb_mem_limit *l = ud;
  uint8_t *p = (uint8_t *)ptr - HDR;
  l->used -= *(size_t *)(void *)p + HDR;
  l->inner.free(p, l->inner.user_data);
}

static void *lim_calloc(size_t n, size_t size, void *ud) {
  if (size && n > SIZE_MAX / size)
    return NULL;
  uint8_t *p = lim_malloc(n * size, ud);
  if (p)
    memset(p, 0, n * size);
  return p;
}

static void *lim_realloc(void *ptr, size_t size, void *ud) {
  mqttb_mem_limit *l = ud;
  if (!ptr)
    return lim_malloc(size, ud);
  uint8_t *p = (uint8_t *)ptr - HDR;
  size_t old = *(size_t *)(void *)p;
  if (size > SIZE_MAX - HDR || (size > old && !fits(l, size - old)))
    return NULL;
  uint8_t *q = l->inner.realloc(p, size + HDR, l->inner.user_data);
  if (!q)
    return NULL;
  *(size_t *)(void *)q = size;
  l->used = l->used - old + size;
  return q + HDR;
}

bool mqttb_mem_room(const mqttb_mem *mem, size_t size) {
  if (mem->malloc != lim_malloc)
    return true;
  const mqttb_mem_limit *l = mem->user_data;
  return size <= l->limit && l->used <= l->limit - size;
}

void mqttb_mem_limit_set(mqttb_mem_limit *l, uint64_t limit) {
  l->limit = limit;
  uint64_t reserve = limit / 8 > 1048576u ? limit / 8 : 1048576u;
  l->hard = limit > UINT64_MAX - reserve ? UINT64_MAX : limit + reserve;
}

void mqttb_mem_limit_init(mqttb_mem_limit *l, const mqttb_mem *inner, uint64_t limit,
                          mqttb_mem *out) {
  l->inner = *inner;
  mqttb_mem_limit_set(l, limit);
  l->used = 0;
  out->malloc = lim_malloc;
  out->free = lim_free;
  out->calloc = lim_calloc;
  out->realloc = lim_realloc;
  out->user_data = l;
}
