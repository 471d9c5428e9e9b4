/* SPDX-License-Identifier: MIT */
/* A hash map from byte strings to pointers: open addressing, linear probing,
 * backward-shift deletion (no tombstones). A table whose keys pile up in
 * one probe run changes to a keyed hash (SipHash-1-3 under a secret of the
 * table), so that keys a peer picks cannot be made to collide. Keys are
 * borrowed: the memory a key points to must live as long as its entry
 * (callers key entries by a string stored inside the value). */
#ifndef MQTTB_MAP_H
#define MQTTB_MAP_H

#include <stddef.h>
#include <stdint.h>

#include <mqttb/mqttb.h>

typedef struct mqttb_map_entry {
  const char *key; /* NULL: empty slot */
  uint32_t klen;
  uint32_t hash;
  void *val;
} mqttb_map_entry;

typedef struct mqttb_map {
  mqttb_map_entry *e;
  uint32_t cap; /* 0 or a power of two */
  uint32_t count;
} mqttb_map;

/* The hash of a key in m's current table (its home slot is the hash
 * masked by cap - 1); 0 while m has no table. Once a table is keyed, the
 * value changes when the table grows. */
uint32_t mqttb_map_hash(const mqttb_map *m, const char *key, size_t len);
/* SipHash-2-4 of one 64-bit word (little-endian bytes) under a 128-bit key. */
uint64_t mqttb_siphash_u64(const uint64_t k[2], uint64_t m);
void *mqttb_map_get(const mqttb_map *m, const char *key, size_t len);
/* Insert; the key must not be present. 0 or MQTTB_ERR_NOMEM. */
int mqttb_map_put(mqttb_map *m, const mqttb_mem *mem, const char *key, size_t len, void *val);
/* Remove and return the value, or NULL when absent. */
void *mqttb_map_del(mqttb_map *m, const char *key, size_t len);
void mqttb_map_free(mqttb_map *m, const mqttb_mem *mem);

#endif
