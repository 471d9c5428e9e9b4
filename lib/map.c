/* SPDX-License-Identifier: MIT */
#include "map.h"

#include <stdbool.h>
#include <string.h>

#include "mem.h"

/* Every table is allocated behind a header (in the slot before its first
 * entry) that says how its keys are hashed. A new table uses FNV-1a, which
 * is fast for short keys such as topic levels, but has no key: a client can
 * compute 2^k strings with one FNV-1a hash at the cost of k birthday
 * searches of 2^16 tries each, and 16384 retained messages on such topic
 * levels keep an unkeyed table busy for seconds, the time growing with the
 * square of their number. So when an insertion lands far from its home
 * slot (LONG_RUN), which keys spread by chance hardly ever do, the table is
 * rebuilt with SipHash-1-3 under a key of its own and stays keyed through
 * every growth. The key comes from the table's address, the map's address
 * and the key of the table it replaces, through SipHash: nothing a peer
 * sees, and new at every growth. */
#define LONG_RUN 64u

typedef struct map_head {
  uint64_t k[2];
  uint32_t keyed; /* 0: FNV-1a; 1: SipHash-1-3 under k */
} map_head;

_Static_assert(sizeof(map_head) <= sizeof(mqttb_map_entry), "the header fits in one slot");

static const map_head *head(const mqttb_map *m) {
  return (const map_head *)(const void *)(m->e - 1);
}

static uint32_t siphash13(const uint64_t k[2], const char *key, size_t len);

static uint32_t fnv1a(const char *key, size_t len) {
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

static uint32_t hash_with(const map_head *h, const char *key, size_t len) {
  return h->keyed ? siphash13(h->k, key, len) : fnv1a(key, len);
}

uint32_t mqttb_map_hash(const mqttb_map *m, const char *key, size_t len) {
  return m->cap ? hash_with(head(m), key, len) : 0;
}

static mqttb_map_entry *find(const mqttb_map *m, const char *key, size_t len) {
  if (m->cap == 0)
    return NULL;
  uint32_t h = hash_with(head(m), key, len);
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
  mqttb_map_entry *e = find(m, key, len);
  return e ? e->val : NULL;
}

/* Returns how far from its home slot the entry went. */
static uint32_t insert(mqttb_map_entry *tab, uint32_t cap, const mqttb_map_entry *src) {
  uint32_t mask = cap - 1;
  uint32_t i = src->hash & mask;
  while (tab[i].key)
    i = (i + 1) & mask;
  tab[i] = *src;
  return (i - src->hash) & mask;
}

/* A table of ncap empty slots behind its header: keyed if asked or if the
 * table it replaces (old, NULL for a map's first) was, under a key from
 * its address, the map's and old's key. */
static mqttb_map_entry *new_table(const mqttb_map *m, const mqttb_mem *mem, uint32_t ncap,
                                  const map_head *old, bool keyed) {
  static const map_head first = {{0x6d717474622d6d61ull, 0x702d6b65792d3031ull}, 0};
  /* The header takes the first of ncap + 1 entry-sized slots. */
  mqttb_map_entry *slots = mqttb_mem_calloc(mem, (size_t)ncap + 1, sizeof(mqttb_map_entry));
  if (!slots)
    return NULL;
  map_head *h = (map_head *)(void *)slots;
  const map_head *from = old ? old : &first;
  uint64_t a = (uint64_t)(uintptr_t)h, b = (uint64_t)(uintptr_t)m;
  h->k[0] = mqttb_siphash_u64(from->k, a ^ (b << 32 | b >> 32));
  h->k[1] = mqttb_siphash_u64(from->k, ~a + b);
  h->keyed = keyed || from->keyed;
  return slots + 1;
}

static void free_table(const mqttb_map *m, const mqttb_mem *mem) {
  if (m->e)
    mqttb_mem_free(mem, (void *)head(m));
}

/* Move m's entries to a new table of ncap slots (keyed if asked), hashing
 * each again. 0 or MQTTB_ERR_NOMEM (m unchanged). */
static int rebuild(mqttb_map *m, const mqttb_mem *mem, uint32_t ncap, bool keyed) {
  mqttb_map_entry *tab = new_table(m, mem, ncap, m->cap ? head(m) : NULL, keyed);
  if (!tab)
    return MQTTB_ERR_NOMEM;
  const map_head *nh = (const map_head *)(const void *)(tab - 1);
  for (uint32_t i = 0; i < m->cap; i++)
    if (m->e[i].key) {
      mqttb_map_entry x = m->e[i];
      x.hash = hash_with(nh, x.key, x.klen);
      insert(tab, ncap, &x);
    }
  free_table(m, mem);
  m->e = tab;
  m->cap = ncap;
  return 0;
}

int mqttb_map_put(mqttb_map *m, const mqttb_mem *mem, const char *key, size_t len, void *val) {
  if (len > UINT32_MAX)
    return MQTTB_ERR_NOMEM;
  /* Keep the load factor at or below 3/4. */
  if ((uint64_t)(m->count + 1) * 4 > (uint64_t)m->cap * 3) {
    uint32_t ncap = m->cap ? m->cap * 2 : 8;
    if (ncap < m->cap || rebuild(m, mem, ncap, false) != 0)
      return MQTTB_ERR_NOMEM;
  }
  mqttb_map_entry ne = {key, (uint32_t)len, hash_with(head(m), key, len), val};
  uint32_t far = insert(m->e, m->cap, &ne);
  m->count++;
  /* Keys that pile up: from now on this table's hash has a key. If that
   * table cannot be had, the entry is in all the same. */
  if (far >= LONG_RUN && !head(m)->keyed)
    (void)rebuild(m, mem, m->cap, true);
  return 0;
}

void *mqttb_map_del(mqttb_map *m, const char *key, size_t len) {
  mqttb_map_entry *e = find(m, key, len);
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
  free_table(m, mem);
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

/* SipHash-c-d of len bytes at p under k; the 8-byte words are read in the
 * machine's byte order (for the one word of mqttb_siphash_u64 that gives
 * the word itself, so it matches the published vectors everywhere). */
static inline uint64_t siphash(const uint64_t k[2], const unsigned char *p, size_t len, int c,
                               int d) {
  uint64_t v0 = k[0] ^ 0x736f6d6570736575ull, v1 = k[1] ^ 0x646f72616e646f6dull;
  uint64_t v2 = k[0] ^ 0x6c7967656e657261ull, v3 = k[1] ^ 0x7465646279746573ull;
  for (size_t n = len / 8; n > 0; n--, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    v3 ^= w;
    for (int r = 0; r < c; r++)
      SIPROUND;
    v0 ^= w;
  }
  uint64_t last = (uint64_t)len << 56;
  for (size_t i = 0; i < (len & 7); i++)
    last |= (uint64_t)p[i] << (8 * i);
  v3 ^= last;
  for (int r = 0; r < c; r++)
    SIPROUND;
  v0 ^= last;
  v2 ^= 0xff;
  for (int r = 0; r < d; r++)
    SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

/* SipHash-2-4 of one 64-bit word: a keyed PRF, so assigned identifiers
 * reveal nothing about the next ones. */
uint64_t mqttb_siphash_u64(const uint64_t k[2], uint64_t m) {
  unsigned char b[8];
  memcpy(b, &m, 8);
  return siphash(k, b, 8, 2, 4);
}

/* SipHash-1-3 of a byte string under k (one compression round per 8
 * bytes, three to finish); a table's hashes never leave the process. */
static uint32_t siphash13(const uint64_t k[2], const char *key, size_t len) {
  return (uint32_t)siphash(k, (const unsigned char *)key, len, 1, 3);
}
