/* SPDX-License-Identifier: MIT */
/* The hash map (map.h): insertion, lookup, backward-shift deletion,
 * awkward keys, growth failure, and SipHash-2-4. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "unit_alloc.h"

static uint64_t rng_state;
static uint32_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Every slot holds a key that its probe run reaches: no empty slot between
 * an entry's home and the entry (what backward-shift deletion preserves). */
static void assert_probe_runs_intact(const mqttb_map *m) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < m->cap; i++) {
    if (!m->e[i].key)
      continue;
    n++;
    cr_assert(eq(u32, m->e[i].hash, mqttb_map_hash(m, m->e[i].key, m->e[i].klen)));
    for (uint32_t j = m->e[i].hash & (m->cap - 1); j != i; j = (j + 1) & (m->cap - 1))
      cr_assert(not(eq(ptr, (void *)m->e[j].key, NULL)), "hole at %u before entry at %u", j, i);
  }
  cr_assert(eq(u32, n, m->count));
}

#define NKEYS 4000

Test(map, interleaved_puts_and_deletes_keep_every_key_reachable) {
  unit_alloc a;
  unit_alloc_init(&a);
  static char keys[NKEYS][16];
  static bool present[NKEYS];
  memset(present, 0, sizeof(present));
  for (int i = 0; i < NKEYS; i++)
    snprintf(keys[i], sizeof(keys[i]), "key/%d", i);
  mqttb_map m = {0};
  uint32_t count = 0;
  rng_state = 42;
  for (int op = 0; op < 40000; op++) {
    int i = (int)(rng() % NKEYS);
    size_t len = strlen(keys[i]);
    /* Insert more often than delete at first, then the other way round. */
    bool want_put = op < 20000 ? rng() % 3 != 0 : rng() % 3 == 0;
    if (!present[i] && want_put) {
      cr_assert(eq(int, mqttb_map_put(&m, &a.mem, keys[i], len, keys[i]), 0));
      present[i] = true;
      count++;
    } else if (present[i] && !want_put) {
      cr_assert(eq(ptr, mqttb_map_del(&m, keys[i], len), keys[i]), "op %d key %d", op, i);
      present[i] = false;
      count--;
      cr_assert(eq(ptr, mqttb_map_get(&m, keys[i], len), NULL));
      cr_assert(eq(ptr, mqttb_map_del(&m, keys[i], len), NULL), "deleted twice");
    }
    cr_assert(eq(u32, m.count, count));
    if (op % 2000 == 1999) {
      assert_probe_runs_intact(&m);
      for (int k = 0; k < NKEYS; k++)
        cr_assert(eq(ptr, mqttb_map_get(&m, keys[k], strlen(keys[k])), present[k] ? keys[k] : NULL),
                  "op %d key %d", op, k);
    }
  }
  cr_assert(le(u64, (uint64_t)m.count * 4, (uint64_t)m.cap * 3), "load factor at most 3/4");
  /* Delete what is left, checking the rest after each. */
  for (int i = 0; i < NKEYS; i++) {
    if (!present[i])
      continue;
    cr_assert(eq(ptr, mqttb_map_del(&m, keys[i], strlen(keys[i])), keys[i]));
    present[i] = false;
    if (i % 97 == 0)
      for (int k = 0; k < NKEYS; k++)
        cr_assert(
            eq(ptr, mqttb_map_get(&m, keys[k], strlen(keys[k])), present[k] ? keys[k] : NULL));
  }
  cr_assert(eq(u32, m.count, 0));
  for (uint32_t i = 0; i < m.cap; i++)
    cr_assert(eq(ptr, (void *)m.e[i].key, NULL));
  mqttb_map_free(&m, &a.mem);
  cr_assert(eq(ptr, m.e, NULL));
  cr_assert(eq(u32, m.cap, 0));
  cr_assert(eq(long, a.live, 0));
}

/* Keys chosen to share home slots, including a run that wraps around the
 * end of the table, then deleted in every position of the run. The homes
 * depend on the table's key, so the keys are picked for each table, once
 * it has its 32 slots. */
Test(map, colliding_keys_survive_deletion_anywhere_in_a_wrapping_run) {
  unit_alloc a;
  unit_alloc_init(&a);
  static char cand[20000][12];
  for (int i = 0; i < 20000; i++)
    snprintf(cand[i], sizeof(cand[i]), "c%d", i);
  for (size_t victim = 0; victim < 20; victim++) {
    mqttb_map m = {0};
    /* 20 keys give a table of 32 slots (the load stays at most 3/4); the
     * table stays when they are deleted. */
    for (int i = 0; i < 20; i++)
      cr_assert(eq(int, mqttb_map_put(&m, &a.mem, cand[i], strlen(cand[i]), cand[i]), 0));
    for (int i = 0; i < 20; i++)
      cr_assert(eq(ptr, mqttb_map_del(&m, cand[i], strlen(cand[i])), cand[i]));
    cr_assert(eq(u32, m.cap, 32));
    /* 12 of them with homes 30, 31 and 0, the rest away from that run. */
    const char *pick[20];
    size_t npick = 0, at31 = 0, at30 = 0, at0 = 0, others = 0;
    for (int i = 0; i < 20000 && npick < 20; i++) {
      uint32_t home = mqttb_map_hash(&m, cand[i], strlen(cand[i])) & 31u;
      if (home == 30 && at30 < 4)
        at30++;
      else if (home == 31 && at31 < 5)
        at31++;
      else if (home == 0 && at0 < 3)
        at0++;
      else if (home >= 16 && home < 24 && others < 8)
        others++;
      else
        continue;
      pick[npick++] = cand[i];
    }
    cr_assert(eq(sz, npick, 20));
    cr_assert(eq(sz, at30 + at31 + at0, 12));
    for (size_t i = 0; i < npick; i++)
      cr_assert(eq(int, mqttb_map_put(&m, &a.mem, pick[i], strlen(pick[i]), (void *)pick[i]), 0));
    cr_assert(eq(u32, m.cap, 32));
    /* Slots 30, 31, 0, 1 ... are one run across the end of the table. */
    cr_assert(not(eq(ptr, (void *)m.e[31].key, NULL)));
    cr_assert(not(eq(ptr, (void *)m.e[0].key, NULL)));
    cr_assert(not(eq(ptr, (void *)m.e[1].key, NULL)));
    cr_assert(eq(ptr, mqttb_map_del(&m, pick[victim], strlen(pick[victim])), (void *)pick[victim]));
    assert_probe_runs_intact(&m);
    for (size_t i = 0; i < npick; i++)
      cr_assert(eq(ptr, mqttb_map_get(&m, pick[i], strlen(pick[i])),
                   i == victim ? NULL : (void *)pick[i]),
                "victim %zu key %zu", victim, i);
    /* Then the others, in a scrambled order. */
    for (size_t k = 0; k < npick; k++) {
      size_t i = (k * 7 + victim) % npick;
      if (i == victim)
        continue;
      cr_assert(eq(ptr, mqttb_map_del(&m, pick[i], strlen(pick[i])), (void *)pick[i]));
      assert_probe_runs_intact(&m);
    }
    cr_assert(eq(u32, m.count, 0));
    mqttb_map_free(&m, &a.mem);
  }
  cr_assert(eq(long, a.live, 0));
}

/* FNV-1a's 32-bit state, as the map hashed before its hash had a key. */
static uint32_t fnv1a_step(uint32_t h, const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h;
}

#define FLOOD_PAIRS 12       /* 4096 keys */
#define FLOOD_BLOCK 6        /* bytes per block of a key */
#define FLOOD_TAB (1u << 19) /* birthday table */

/* Candidate c as FLOOD_BLOCK letters and digits, every position varying
 * (a plain counter varies only the first few, and among those strings the
 * search found no pair). */
static void block_of(uint32_t c, char s[FLOOD_BLOCK]) {
  static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t x = ((uint64_t)c + 1) * 0x9e3779b97f4a7c15ull;
  x ^= x >> 29;
  for (int i = 0; i < FLOOD_BLOCK; i++, x /= 36)
    s[i] = alpha[x % 36];
}

/* Two different FLOOD_BLOCK-byte strings that take FNV-1a from state h to
 * one state (returned); a birthday search over 2^17 or so candidates. */
static uint32_t fnv1a_pair(uint32_t h, char a[FLOOD_BLOCK], char b[FLOOD_BLOCK], uint32_t *seed) {
  static uint32_t st[FLOOD_TAB], cand[FLOOD_TAB];
  static bool used[FLOOD_TAB];
  memset(used, 0, sizeof used);
  for (uint32_t tries = 0;; tries++) {
    /* About 2^16 tries find a pair; 2^18 without one is a broken search. */
    cr_assert(lt(u32, tries, FLOOD_TAB / 2), "no FNV-1a collision in %u tries", tries);
    char s[FLOOD_BLOCK];
    uint32_t c = (*seed)++;
    block_of(c, s);
    uint32_t v = fnv1a_step(h, s, FLOOD_BLOCK);
    uint32_t slot = (v * 2654435761u) >> 13;
    while (used[slot] && st[slot] != v)
      slot = (slot + 1) & (FLOOD_TAB - 1);
    if (used[slot]) {
      block_of(cand[slot], a);
      if (memcmp(a, s, FLOOD_BLOCK) == 0)
        continue; /* the same string again, not a collision */
      memcpy(b, s, FLOOD_BLOCK);
      return v;
    }
    used[slot] = true;
    st[slot] = v;
    cand[slot] = c;
  }
}

/* The longest distance of an entry from its home slot. */
static uint32_t longest_run(const mqttb_map *m) {
  uint32_t worst = 0;
  for (uint32_t i = 0; i < m->cap; i++)
    if (m->e[i].key) {
      uint32_t d = (i - (m->e[i].hash & (m->cap - 1))) & (m->cap - 1);
      worst = d > worst ? d : worst;
    }
  return worst;
}

/* Above what keys spread by chance reach (about 20 for 4096 keys in 8192
 * slots), far below one run of 4096 (4095). */
#define LONG_RUN_SEEN 128u

/* 4096 keys with one FNV-1a hash (Joux's multicollisions: 12 colliding
 * pairs chained, every choice of one string of each pair). */
static void flood_keys(char blocks[FLOOD_PAIRS][2][FLOOD_BLOCK],
                       char keys[][FLOOD_PAIRS * FLOOD_BLOCK]) {
  uint32_t h = 2166136261u, seed = 0;
  for (int p = 0; p < FLOOD_PAIRS; p++)
    h = fnv1a_pair(h, blocks[p][0], blocks[p][1], &seed);
  const size_t n = 1u << FLOOD_PAIRS, klen = FLOOD_PAIRS * FLOOD_BLOCK;
  for (size_t k = 0; k < n; k++)
    for (int p = 0; p < FLOOD_PAIRS; p++)
      memcpy(keys[k] + p * FLOOD_BLOCK, blocks[p][(k >> p) & 1], FLOOD_BLOCK);
  /* The construction works: distinct keys (each pair's two strings
   * differ), one FNV-1a state. */
  for (int p = 0; p < FLOOD_PAIRS; p++)
    cr_assert(not(eq(int, memcmp(blocks[p][0], blocks[p][1], FLOOD_BLOCK), 0)), "pair %d", p);
  for (size_t k = 0; k < n; k++)
    cr_assert(eq(u32, fnv1a_step(2166136261u, keys[k], klen), h), "key %zu", k);
}

/* Under the unkeyed hash alone the 4096 were one probe run, and each
 * insertion walked it; the table changes to its keyed hash and spreads
 * them as any keys. */
Test(map, keys_built_to_collide_are_spread) {
  unit_alloc a;
  unit_alloc_init(&a);
  static char blocks[FLOOD_PAIRS][2][FLOOD_BLOCK];
  static char keys[1u << FLOOD_PAIRS][FLOOD_PAIRS * FLOOD_BLOCK];
  const size_t n = 1u << FLOOD_PAIRS, klen = FLOOD_PAIRS * FLOOD_BLOCK;
  flood_keys(blocks, keys);
  mqttb_map m = {0};
  for (size_t k = 0; k < n; k++)
    cr_assert(eq(int, mqttb_map_put(&m, &a.mem, keys[k], klen, keys[k]), 0));
  cr_assert(lt(u32, longest_run(&m), LONG_RUN_SEEN), "longest probe run %u", longest_run(&m));
  assert_probe_runs_intact(&m);
  for (size_t k = 0; k < n; k++)
    cr_assert(eq(ptr, mqttb_map_get(&m, keys[k], klen), keys[k]));
  mqttb_map_free(&m, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

/* FNV-1a with the final mix: the hash of a table that was never keyed. */
static uint32_t fnv1a_mixed(const char *s, size_t len) {
  uint32_t h = fnv1a_step(2166136261u, s, len);
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  return h;
}

/* Ordinary keys keep the unkeyed hash; keys that pile up make the table
 * keyed, two tables with different keys, and it stays keyed as it grows. */
Test(map, tables_whose_keys_pile_up_become_keyed) {
  unit_alloc a;
  unit_alloc_init(&a);
  static char plain[3000][12];
  mqttb_map m0 = {0};
  for (int i = 0; i < 3000; i++) {
    snprintf(plain[i], sizeof plain[i], "level%d", i);
    cr_assert(eq(int, mqttb_map_put(&m0, &a.mem, plain[i], strlen(plain[i]), plain[i]), 0));
  }
  for (int i = 0; i < 3000; i++)
    cr_assert(eq(u32, mqttb_map_hash(&m0, plain[i], strlen(plain[i])),
                 fnv1a_mixed(plain[i], strlen(plain[i]))));

  static char blocks[FLOOD_PAIRS][2][FLOOD_BLOCK];
  static char keys[1u << FLOOD_PAIRS][FLOOD_PAIRS * FLOOD_BLOCK];
  const size_t n = 1u << FLOOD_PAIRS, klen = FLOOD_PAIRS * FLOOD_BLOCK;
  flood_keys(blocks, keys);
  mqttb_map m1 = {0}, m2 = {0};
  for (size_t k = 0; k < 200; k++) {
    cr_assert(eq(int, mqttb_map_put(&m1, &a.mem, keys[k], klen, keys[k]), 0));
    cr_assert(eq(int, mqttb_map_put(&m2, &a.mem, keys[k], klen, keys[k]), 0));
  }
  int same = 0, unkeyed = 0;
  for (size_t k = 0; k < 200; k++) {
    uint32_t h1 = mqttb_map_hash(&m1, keys[k], klen);
    same += h1 == mqttb_map_hash(&m2, keys[k], klen);
    unkeyed += h1 == fnv1a_mixed(keys[k], klen);
  }
  cr_assert(lt(int, same, 10), "%d of 200 hashes alike in two keyed tables", same);
  cr_assert(lt(int, unkeyed, 10), "%d of 200 hashes still FNV-1a", unkeyed);
  /* Growing keeps the key kind (a new key): the rest of the keys, spread. */
  for (size_t k = 200; k < n; k++)
    cr_assert(eq(int, mqttb_map_put(&m1, &a.mem, keys[k], klen, keys[k]), 0));
  cr_assert(lt(u32, longest_run(&m1), LONG_RUN_SEEN), "longest probe run %u", longest_run(&m1));
  unkeyed = 0;
  for (size_t k = 0; k < n; k++)
    unkeyed += mqttb_map_hash(&m1, keys[k], klen) == fnv1a_mixed(keys[k], klen);
  cr_assert(lt(int, unkeyed, 10));
  for (size_t k = 0; k < n; k++)
    cr_assert(eq(ptr, mqttb_map_get(&m1, keys[k], klen), keys[k]));
  mqttb_map_free(&m0, &a.mem);
  mqttb_map_free(&m1, &a.mem);
  mqttb_map_free(&m2, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

Test(map, keys_sharing_a_prefix_are_distinct) {
  unit_alloc a;
  unit_alloc_init(&a);
  /* Keys are borrowed: all of these point into one buffer and differ only
   * in length. */
  static char as[301];
  memset(as, 'a', 300);
  mqttb_map m = {0};
  for (size_t len = 1; len <= 300; len++)
    cr_assert(eq(int, mqttb_map_put(&m, &a.mem, as, len, (void *)(uintptr_t)len), 0));
  const char *topics[] = {"topic", "topic/", "topic/1", "topic/10", "topic/100", "topic/1000"};
  for (size_t i = 0; i < 6; i++)
    cr_assert(
        eq(int, mqttb_map_put(&m, &a.mem, topics[i], strlen(topics[i]), (void *)topics[i]), 0));
  cr_assert(eq(u32, m.count, 306));
  for (size_t len = 1; len <= 300; len++)
    cr_assert(eq(ptr, mqttb_map_get(&m, as, len), (void *)(uintptr_t)len), "len %zu", len);
  cr_assert(eq(ptr, mqttb_map_get(&m, as, 0), NULL));
  cr_assert(eq(ptr, mqttb_map_get(&m, "topic/10000", 11), NULL));
  cr_assert(eq(ptr, mqttb_map_get(&m, "topic/2", 7), NULL));
  /* Remove the odd lengths and the middle topic; the rest stay. */
  for (size_t len = 1; len <= 300; len += 2)
    cr_assert(eq(ptr, mqttb_map_del(&m, as, len), (void *)(uintptr_t)len));
  cr_assert(eq(ptr, mqttb_map_del(&m, "topic/10", 8), (void *)topics[3]));
  for (size_t len = 1; len <= 300; len++)
    cr_assert(eq(ptr, mqttb_map_get(&m, as, len), len % 2 ? NULL : (void *)(uintptr_t)len));
  for (size_t i = 0; i < 6; i++)
    cr_assert(eq(ptr, mqttb_map_get(&m, topics[i], strlen(topics[i])),
                 i == 3 ? NULL : (void *)topics[i]));
  cr_assert(eq(u32, m.count, 155));
  mqttb_map_free(&m, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

Test(map, binary_keys_with_nul_bytes) {
  unit_alloc a;
  unit_alloc_init(&a);
  static const char k_nul[] = {0}, k_nul2[] = {0, 0}, k_anb[] = {'a', 0, 'b'},
                    k_anc[] = {'a', 0, 'c'}, k_a[] = {'a'}, k_an[] = {'a', 0};
  struct {
    const char *k;
    size_t len;
  } keys[] = {{k_nul, 1}, {k_nul2, 2}, {k_anb, 3}, {k_anc, 3}, {k_a, 1}, {k_an, 2}};
  mqttb_map m = {0};
  for (size_t i = 0; i < 6; i++)
    cr_assert(eq(int, mqttb_map_put(&m, &a.mem, keys[i].k, keys[i].len, &keys[i]), 0));
  for (size_t i = 0; i < 6; i++)
    cr_assert(eq(ptr, mqttb_map_get(&m, keys[i].k, keys[i].len), &keys[i]), "key %zu", i);
  /* Lookups by other storage of the same bytes find them too. */
  char copy[3] = {'a', 0, 'b'};
  cr_assert(eq(ptr, mqttb_map_get(&m, copy, 3), &keys[2]));
  cr_assert(eq(ptr, mqttb_map_get(&m, copy, 2), &keys[5]), "'a\\0' is not 'a'");
  cr_assert(eq(ptr, mqttb_map_get(&m, "\0\0\0", 3), NULL));
  cr_assert(eq(ptr, mqttb_map_del(&m, k_a, 1), &keys[4]));
  cr_assert(eq(ptr, mqttb_map_get(&m, k_an, 2), &keys[5]));
  cr_assert(eq(ptr, mqttb_map_get(&m, k_anb, 3), &keys[2]));
  cr_assert(eq(ptr, mqttb_map_del(&m, k_nul, 1), &keys[0]));
  cr_assert(eq(ptr, mqttb_map_get(&m, k_nul2, 2), &keys[1]));
  cr_assert(eq(u32, m.count, 4));
  mqttb_map_free(&m, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

Test(map, growth_failure_returns_nomem_and_keeps_the_map) {
  unit_alloc a;
  unit_alloc_init(&a);
  static char keys[64][8];
  for (int i = 0; i < 64; i++)
    snprintf(keys[i], sizeof(keys[i]), "g%d", i);
  mqttb_map m = {0};
  /* The first put needs a table. */
  a.fail_all = true;
  cr_assert(eq(int, mqttb_map_put(&m, &a.mem, keys[0], 2, keys[0]), MQTTB_ERR_NOMEM));
  cr_assert(eq(u32, m.count, 0));
  cr_assert(eq(u32, m.cap, 0));
  cr_assert(eq(ptr, m.e, NULL));
  cr_assert(eq(ptr, mqttb_map_get(&m, keys[0], 2), NULL));
  unit_alloc_heal(&a);
  /* Fill to the load limit: the next put must grow. */
  int n = 0;
  do {
    cr_assert(eq(int, mqttb_map_put(&m, &a.mem, keys[n], strlen(keys[n]), keys[n]), 0));
    n++;
  } while ((uint64_t)(m.count + 1) * 4 <= (uint64_t)m.cap * 3);
  cr_assert(lt(int, 4, n));
  uint32_t cap = m.cap;
  mqttb_map_entry *tab = m.e;
  long calls = a.calls;
  a.fail_all = true;
  cr_assert(eq(int, mqttb_map_put(&m, &a.mem, keys[n], strlen(keys[n]), keys[n]), MQTTB_ERR_NOMEM));
  cr_assert(lt(long, calls, a.calls), "growth was attempted");
  cr_assert(eq(u32, m.cap, cap));
  cr_assert(eq(ptr, m.e, tab));
  cr_assert(eq(u32, m.count, (uint32_t)n));
  cr_assert(eq(ptr, mqttb_map_get(&m, keys[n], strlen(keys[n])), NULL));
  for (int i = 0; i < n; i++)
    cr_assert(eq(ptr, mqttb_map_get(&m, keys[i], strlen(keys[i])), keys[i]));
  /* Deleting needs no memory. */
  cr_assert(eq(ptr, mqttb_map_del(&m, keys[0], strlen(keys[0])), keys[0]));
  /* ... and frees room for one put without growth. */
  cr_assert(eq(int, mqttb_map_put(&m, &a.mem, keys[0], strlen(keys[0]), keys[0]), 0));
  unit_alloc_heal(&a);
  cr_assert(eq(int, mqttb_map_put(&m, &a.mem, keys[n], strlen(keys[n]), keys[n]), 0));
  cr_assert(eq(u32, m.cap, cap * 2));
  for (int i = 0; i <= n; i++)
    cr_assert(eq(ptr, mqttb_map_get(&m, keys[i], strlen(keys[i])), keys[i]));
  assert_probe_runs_intact(&m);
  mqttb_map_free(&m, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

/* The published SipHash-2-4 test vector (the paper's appendix and the
 * reference implementation's vectors.h): key 00 01 .. 0f, message of the
 * eight bytes 00 01 .. 07, output bytes 62 24 93 9a 79 f5 f5 93. */
Test(map, siphash_u64_matches_the_published_vector) {
  uint8_t kb[16], mb[8];
  for (int i = 0; i < 16; i++)
    kb[i] = (uint8_t)i;
  for (int i = 0; i < 8; i++)
    mb[i] = (uint8_t)i;
  /* The key words and the message word are the little-endian reading of
   * the bytes, as SipHash defines them (and map.h says for the message). */
  uint64_t k[2] = {0, 0}, msg = 0;
  for (int i = 7; i >= 0; i--) {
    k[0] = k[0] << 8 | kb[i];
    k[1] = k[1] << 8 | kb[8 + i];
    msg = msg << 8 | mb[i];
  }
  cr_assert(eq(u64, k[0], 0x0706050403020100ull));
  cr_assert(eq(u64, k[1], 0x0f0e0d0c0b0a0908ull));
  cr_assert(eq(u64, msg, 0x0706050403020100ull));
  uint64_t out = mqttb_siphash_u64(k, msg);
  cr_assert(eq(u64, out, 0x93f5f5799a932462ull));
  static const uint8_t want[8] = {0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93};
  for (int i = 0; i < 8; i++)
    cr_assert(eq(u8, (uint8_t)(out >> (8 * i)), want[i]), "output byte %d", i);
  /* A keyed function: another key or message gives another value. */
  uint64_t k2[2] = {k[0] ^ 1, k[1]};
  cr_assert(not(eq(u64, mqttb_siphash_u64(k2, msg), out)));
  cr_assert(not(eq(u64, mqttb_siphash_u64(k, msg ^ (1ull << 63)), out)));
}
