/* SPDX-License-Identifier: MIT */
/* Allocation through the broker's hooks. Every allocation the library makes
 * goes through these, so tests can fail any one of them. */
#ifndef MQTTB_MEM_H
#define MQTTB_MEM_H

#include <stdbool.h>
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
 * capacity at least doubles (from 1 for elements of pointer size or more,
 * else from 4). Returns 0 or MQTTB_ERR_NOMEM (arr untouched). */
int mqttb_mem_grow(const mqttb_mem *mem, void **arr, size_t *cap, size_t need, size_t elsize);
/* The same for a 32-bit capacity (compact structs). */
int mqttb_mem_grow32(const mqttb_mem *mem, void **arr, uint32_t *cap, size_t need, size_t elsize);

/* A memory limit over other hooks. Bulk data (messages, input buffers)
 * asks first with mqttb_mem_room and is refused past limit; everything
 * else may go on into a reserve above it (limit / 8, at least 1 MiB), so
 * that connections, acknowledgements and pings are still served at the
 * limit, and fails as out-of-memory past that. Each block carries a small
 * header with its size. The hooks of *out point into *l, which must stay
 * where it is while they are used. */
typedef struct mqttb_mem_limit {
  mqttb_mem inner;
  uint64_t limit;
  uint64_t hard; /* limit + reserve */
  uint64_t used; /* bytes asked for and not yet freed, headers included */
} mqttb_mem_limit;

/* Whether size more bytes of bulk data fit under the limit of mem (always
 * true for hooks without one). */
bool mqttb_mem_room(const mqttb_mem *mem, size_t size);

void mqttb_mem_limit_init(mqttb_mem_limit *l, const mqttb_mem *inner, uint64_t limit,
                          mqttb_mem *out);
/* Change the limit (and its reserve); what is in use stays. */
void mqttb_mem_limit_set(mqttb_mem_limit *l, uint64_t limit);

#endif
