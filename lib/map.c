/* SPDX-License-Identifier: MIT */
#include "map.h"

#include <string.h>

#include "mem.h"

uint32_t mqttb_map_hash(const char *key, size_t len) {
  /* FNV-1a, then a final mix so linear probing sees well-spread low bits. */
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) {
    h ^= (uint8_t)key[i];
    h *= 16777619u;
  }
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  return h;
}

static mqttb_map_entry *find(const mqttb_map *m, const char *key, size_t len, uint32_t h) {
  if (m->cap == 0)
    return NULL;
  uint32_t mask = m->cap - 1;
  for (uint32_t i = h & mask;; i = (i + 1) & mask) {
    mqttb_map_entry *e = &m->e[i];
    if (!e->key)
      return NULL;
    if (e->hash == h && e->klen == len && memcmp(e->key, key, len) == 0)
      return e;
  }
}

void *mqttb_map_get(const mqttb_map *m, const char *key, size_t len) {
  mqttb_map_entry *e = find(m, key, len, mqttb_map_hash(key, len));
  return e ? e->val : NULL;
}

static void insert(mqttb_map_entry *tab, uint32_t cap, const mqttb_map_entry *src) {
  uint32_t mask = cap - 1;
  uint32_t i = src->hash & mask;
  while (tab[i].key)
    i = (i + 1) & mask;
  tab[i] = *src;
}

int mqttb_map_put(mqttb_map *m, const mqttb_mem *mem, const char *key, size_t len, void *val) {
  if (len > UINT32_MAX)
    return MQTTB_ERR_NOMEM;
  /* Keep the load factor at or below 3/4. */
  if ((uint64_t)(m->count + 1) * 4 > (uint64_t)m->cap * 3) {
    uint32_t ncap = m->cap ? m->cap * 2 : 8;
    if (ncap < m->cap)
      return MQTTB_ERR_NOMEM;
    mqttb_map_entry *tab = mqttb_mem_calloc(mem, ncap, sizeof(*tab));
    if (!tab)
      return MQTTB_ERR_NOMEM;
    for (uint32_t i = 0; i < m->cap; i++)
      if (m->e[i].key)
        insert(tab, ncap, &m->e[i]);
    mqttb_mem_free(mem, m->e);
    m->e = tab;
    m->cap = ncap;
  }
  mqttb_map_entry ne = {key, (uint32_t)len, mqttb_map_hash(key, len), val};
  insert(m->e, m->cap, &ne);
  m->count++;
  return 0;
}

void *mqttb_map_del(mqttb_map *m, const char *key, size_t len) {
  mqttb_map_entry *e = find(m, key, len, mqttb_map_hash(key, len));
  if (!e)
    return NULL;
  void *val = e->val;
  uint32_t mask = m->cap - 1;
  uint32_t hole = (uint32_t)(e - m->e);
  /* Backward-shift: move later entries of the probe run into the hole when
   * their home slot does not lie strictly between the hole and them. */
  for (uint32_t j = (hole + 1) & mask; m->e[j].key; j = (j + 1) & mask) {
    uint32_t home = m->e[j].hash & mask;
    if (((j - home) & mask) >= ((j - hole) & mask)) {
      m->e[hole] = m->e[j];
      hole = j;
    }
  }
  m->e[hole].key = NULL;
  m->count--;
  return val;
}

void mqttb_map_free(mqttb_map *m, const mqttb_mem *mem) {
  mqttb_mem_free(mem, m->e);
  m->e = NULL;
  m->cap = m->count = 0;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
  do {                                                                                             \
    v0 += v1;                                                                                      \
    v1 = ROTL(v1, 13);                                                                             \
    v1 ^= v0;                                                                                      \
    v0 = ROTL(v0, 32);                                                                             \
    v2 += v3;                                                                                      \
    v3 = ROTL(v3, 16);                                                                             \
    v3 ^= v2;                                                                                      \
    v0 += v3;                                                                                      \
    v3 = ROTL(v3, 21);                                                                             \
    v3 ^= v0;                                                                                      \
    v2 += v1;                                                                                      \
    v1 = ROTL(v1, 17);                                                                             \
    v1 ^= v2;                                                                                      \
    v2 = ROTL(v2, 32);                                                                             \
  } while (0)

/* SipHash-2-4 of one 64-bit word: a keyed PRF, so assigned identifiers
 * reveal nothing about the next ones. */
uint64_t mqttb_siphash_u64(const uint64_t k[2], uint64_t m) {
  uint64_t v0 = k[0] ^ 0x736f6d6570736575ull, v1 = k[1] ^ 0x646f72616e646f6dull;
  uint64_t v2 = k[0] ^ 0x6c7967656e657261ull, v3 = k[1] ^ 0x7465646279746573ull;
  uint64_t last = (uint64_t)8 << 56;
  v3 ^= m;
  SIPROUND;
  SIPROUND;
  v0 ^= m;
  v3 ^= last;
  SIPROUND;
  SIPROUND;
  v0 ^= last;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}
