/* SPDX-License-Identifier: MIT */
/* Allocation through the broker's hooks. Every allocation the library makes
 * goes through these, so tests can fail any one of them. */
#ifndef MQTTB_MEM_H
#define MQTTB_MEM_H

#include <stddef.h>
#include <stdint.h>

#include <mqttb/mqttb.h>

void *mqttb_mem_malloc(const mqttb_mem *mem, size_t size);
void *mqttb_mem_calloc(const mqttb_mem *mem, size_t nmemb, size_t size);
void *mqttb_mem_realloc(const mqttb_mem *mem, void *ptr, size_t size);
void mqttb_mem_free(const mqttb_mem *mem, void *ptr);
/* The C library's allocator as a mqttb_mem. */
const mqttb_mem *mqttb_mem_default(void);

/* Grow *arr (of elements elsize) so it holds at least need elements; the
 * capacity at least doubles. Returns 0 or MQTTB_ERR_NOMEM (arr untouched). */
int mqttb_mem_grow(const mqttb_mem *mem, void **arr, size_t *cap, size_t need, size_t elsize);
/* The same for a 32-bit capacity (compact structs). */
int mqttb_mem_grow32(const mqttb_mem *mem, void **arr, uint32_t *cap, size_t need, size_t elsize);

#endif
