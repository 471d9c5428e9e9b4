/* SPDX-License-Identifier: MIT */
/*
 * pidmap: a hash map from packet identifiers (1..65535) to 32-bit values,
 * for the per-session tables that a client can fill with up to 65,535
 * entries (outbound QoS 1/2 in flight, inbound QoS 2 awaiting PUBREL), so
 * that every lookup, insertion and removal takes constant expected time
 * whatever the client holds. Open addressing with linear probing and
 * backward-shift deletion; key 0 marks an empty slot. An empty map holds no
 * memory until its first insertion.
 */
#ifndef MQTTB_PIDMAP_H
#define MQTTB_PIDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

typedef struct mqttb_pidmap_entry {
  uint16_t key; /* 0: empty */
  uint32_t val;
} mqttb_pidmap_entry;

typedef struct mqttb_pidmap {
  mqttb_pidmap_entry *e;
  uint32_t cap; /* 0 or a power of two */
  uint32_t count;
} mqttb_pidmap;

/* Insert key (1..65535, not present). 0 or MQTTB_ERR_NOMEM (unchanged). */
int mqttb_pidmap_put(mqttb_pidmap *m, const mqttb_mem *mem, uint16_t key, uint32_t val);
/* The slot key's probe run starts at: a multiplicative hash, its high bits
 * folded down, so consecutive and random identifiers alike spread over
 * tables of every size. */
static inline uint32_t mqttb_pidmap_home(uint16_t key, uint32_t cap) {
  uint32_t h = (uint32_t)key * 2654435761u;
  h ^= h >> 16;
  return h & (cap - 1);
}

/* Whether key is present; its value in *val (may be NULL). */
static inline bool mqttb_pidmap_get(const mqttb_pidmap *m, uint16_t key, uint32_t *val) {
  if (m->cap == 0 || key == 0)
    return false;
  uint32_t mask = m->cap - 1;
  for (uint32_t i = mqttb_pidmap_home(key, m->cap);; i = (i + 1) & mask) {
    const mqttb_pidmap_entry *e = &m->e[i];
    if (e->key == key) {
      if (val)
        *val = e->val;
      return true;
    }
    if (e->key == 0)
      return false;
  }
}
/* Remove key; false when it was absent. */
bool mqttb_pidmap_del(mqttb_pidmap *m, uint16_t key);
void mqttb_pidmap_free(mqttb_pidmap *m, const mqttb_mem *mem);
/* Slots a lookup of a present key examines (1 when it sits in its home
 * slot); 0 when absent. For tests that check lookups stay short. */
uint32_t mqttb_pidmap_probes(const mqttb_pidmap *m, uint16_t key);

#endif /* MQTTB_PIDMAP_H */
