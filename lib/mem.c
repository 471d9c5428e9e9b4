/* SPDX-License-Identifier: MIT */
#include "mem.h"

#include <stdint.h>
#include <stdlib.h>

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
  size_t ncap = *cap ? *cap * 2 : 4;
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
