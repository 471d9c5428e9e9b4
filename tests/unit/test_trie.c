/* SPDX-License-Identifier: MIT */
/* Topic matching rules, the hash map, and the trie against the reference
 * matcher. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

typedef struct match_case {
  const char *filter, *topic;
  bool match;
} match_case;

/* From the spec's examples (4.7) and its edge cases. */
static const match_case cases[] = {
    {"sport/tennis/player1/#", "sport/tennis/player1", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/#", "sport", true},
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true},
    {"+/+", "/finance", true},
    {"/+", "/finance", true},
    {"+", "/finance", false},
    {"#", "$SYS/uptime", false},
    {"+/monitor/Clients", "$SYS/monitor/Clients", false},
    {"$SYS/#", "$SYS/monitor/Clients", true},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
    {"a//b", "a//b", true},
    {"a/+/b", "a//b", true},
    {"a/b", "a/b/c", false},
    {"a/b/c", "a/b", false},
    {"#", "a", true},
    {"+/#", "a", true},
    {"a/#", "a", true},
    {"a/#", "ab", false},
    {"A", "a", false},
    {"/", "/", true},
    {"+/+", "/", true},
    {"#", "/", true},
};

Test(topic, matches_spec_examples) {
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const match_case *m = &cases[i];
    bool got = mqttb_topic_matches(m->filter, strlen(m->filter), m->topic, strlen(m->topic));
    cr_assert(eq(int, got, m->match), "filter '%s' topic '%s'", m->filter, m->topic);
  }
}

Test(map, put_get_delete_many) {
  const mqttb_mem *mem = mqttb_mem_default();
  mqttb_map m = {0};
  static char keys[2000][12];
  for (int i = 0; i < 2000; i++) {
    snprintf(keys[i], sizeof(keys[i]), "k%d", i);
    cr_assert(eq(int, mqttb_map_put(&m, mem, keys[i], strlen(keys[i]), &keys[i]), 0));
  }
  cr_assert(eq(u32, m.count, 2000));
  for (int i = 0; i < 2000; i++)
    cr_assert(eq(ptr, mqttb_map_get(&m, keys[i], strlen(keys[i])), &keys[i]));
  cr_assert(eq(ptr, mqttb_map_get(&m, "nope", 4), NULL));
  /* Delete the even ones; the odd ones must still be found (backward-shift
   * deletion keeps probe runs intact). */
  for (int i = 0; i < 2000; i += 2)
    cr_assert(eq(ptr, mqttb_map_del(&m, keys[i], strlen(keys[i])), &keys[i]));
  cr_assert(eq(u32, m.count, 1000));
  for (int i = 0; i < 2000; i++) {
    void *want = i % 2 ? &keys[i] : NULL;
    cr_assert(eq(ptr, mqttb_map_get(&m, keys[i], strlen(keys[i])), want), "key %d", i);
  }
  cr_assert(eq(ptr, mqttb_map_del(&m, "k0", 2), NULL));
  mqttb_map_free(&m, mem);
}

/* The trie walk and the reference matcher agree on every pair. */
static const char *filters[] = {"#",  "+",    "a",     "a/#",  "a/+",  "+/b", "a/b", "a/b/#", "+/+",
                                "/+", "a//b", "a/+/b", "$x/#", "$x/+", "+/#", "b/#", "a/b/c", "#"};
static const char *topics[] = {"a", "a/b", "a/b/c", "a//b", "/",     "/a",
                               "b", "b/b", "$x/y",  "$x",   "a/c/b", "ab"};

static int hits;
static void count_sub(mqttb_sub *sub, void *ctx) {
  (void)sub;
  (void)ctx;
  hits++;
}

Test(trie, subscription_walk_agrees_with_matcher) {
  bool existed;
  mqttb_broker *b;
  cr_assert(eq(int, mqttb_broker_new(&b, NULL, NULL, NULL, NULL), 0));
  mqttb_session *sess[sizeof(filters) / sizeof(filters[0])];
  for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
    char id[8];
    snprintf(id, sizeof(id), "s%zu", i);
    sess[i] = mqttb_session_new(&b->sessions, id, strlen(id));
    cr_assert(not(eq(ptr, sess[i], NULL)));
    cr_assert(
        eq(int, mqttb_session_subscribe(sess[i], filters[i], strlen(filters[i]), 0, 0, 0, &existed),
           0));
  }
  for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
    int want = 0;
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
      want += mqttb_topic_matches(filters[i], strlen(filters[i]), topics[t], strlen(topics[t]));
    hits = 0;
    cr_assert(eq(int,
                 mqttb_trie_match_subs(&b->sessions.subs, topics[t], strlen(topics[t]), count_sub,
                                       NULL, NULL),
                 0));
    cr_assert(eq(int, hits, want), "topic %s", topics[t]);
  }
  for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
    mqttb_session_del(sess[i]);
  /* Every node was pruned with its last subscription. */
  cr_assert(eq(u32, b->sessions.subs.root->children.count, 0));
  mqttb_broker_del(b);
}

/* Nodes know whether they have a '+' or '#' child: the flags follow
 * wildcard subscriptions coming and going, and matching follows them. */
Test(trie, wildcard_children_come_and_go) {
  bool existed;
  mqttb_broker *b;
  cr_assert(eq(int, mqttb_broker_new(&b, NULL, NULL, NULL, NULL), 0));
  mqttb_session *s = mqttb_session_new(&b->sessions, "s", 1);
  cr_assert(not(eq(ptr, s, NULL)));
  const char *fs[] = {"a/+", "a/#", "a/b", "+/b", "#"};
  for (int round = 0; round < 2; round++) {
    /* Add them one by one, then take them away one by one: each time the
     * walk agrees with the matcher. */
    for (int step = 0; step < 10; step++) {
      int k = step % 5;
      if (step < 5)
        cr_assert(eq(int, mqttb_session_subscribe(s, fs[k], strlen(fs[k]), 0, 0, 0, &existed), 0));
      else
        cr_assert(mqttb_session_unsubscribe(s, fs[(k + round) % 5], strlen(fs[(k + round) % 5])));
      const char *ts[] = {"a/b", "a", "a/c", "x/b", "a/b/c"};
      for (int t = 0; t < 5; t++) {
        int want = 0;
        for (int i = 0; i < 5; i++) {
          bool present = step < 5 ? i <= k : false;
          if (step >= 5) {
            /* removed so far: (j + round) % 5 for j = 0..k */
            present = true;
            for (int j = 0; j <= k; j++)
              if ((j + round) % 5 == i)
                present = false;
          }
          if (present)
            want += mqttb_topic_matches(fs[i], strlen(fs[i]), ts[t], strlen(ts[t]));
        }
        hits = 0;
        cr_assert(eq(
            int,
            mqttb_trie_match_subs(&b->sessions.subs, ts[t], strlen(ts[t]), count_sub, NULL, NULL),
            0));
        cr_assert(eq(int, hits, want), "round %d step %d topic %s", round, step, ts[t]);
      }
    }
    cr_assert(eq(u32, b->sessions.subs.root->children.count, 0));
    cr_assert(eq(u8, b->sessions.subs.root->wild, 0));
  }
  mqttb_session_del(s);
  mqttb_broker_del(b);
}

static int rhits;
static void count_ret(mqttb_msg *m, void *ctx) {
  (void)m;
  (void)ctx;
  rhits++;
}

Test(trie, retained_walk_agrees_with_matcher) {
  mqttb_broker *b;
  cr_assert(eq(int, mqttb_broker_new(&b, NULL, NULL, NULL, NULL), 0));
  for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
    mqttb_msg *m = mqttb_msg_new(&b->ctx.mem, (const uint8_t *)topics[t], strlen(topics[t]),
                                 (const uint8_t *)"x", 1, NULL, 0, 0, true);
    mqttb_router_publish(&b->router, m, NULL);
    mqttb_msg_unref(&b->ctx.mem, m);
  }
  for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
    int want = 0;
    for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++)
      want += mqttb_topic_matches(filters[i], strlen(filters[i]), topics[t], strlen(topics[t]));
    rhits = 0;
    cr_assert(eq(int,
                 mqttb_trie_match_retained(&b->router.retained, filters[i], strlen(filters[i]),
                                           count_ret, NULL),
                 0));
    cr_assert(eq(int, rhits, want), "filter %s", filters[i]);
  }
  mqttb_broker_del(b);
}

Test(trie, deep_topic_does_not_recurse) {
  bool existed;
  mqttb_broker *b;
  cr_assert(eq(int, mqttb_broker_new(&b, NULL, NULL, NULL, NULL), 0));
  static char deep[65535];
  memset(deep, '/', sizeof(deep));
  mqttb_session *s = mqttb_session_new(&b->sessions, "d", 1);
  cr_assert(eq(int, mqttb_session_subscribe(s, "+/+/#", 5, 0, 0, 0, &existed), 0));
  hits = 0;
  cr_assert(eq(
      int, mqttb_trie_match_subs(&b->sessions.subs, deep, sizeof(deep), count_sub, NULL, NULL), 0));
  cr_assert(eq(int, hits, 1));
  cr_assert(eq(int, mqttb_session_subscribe(s, deep, sizeof(deep), 0, 0, 0, &existed), 0));
  hits = 0;
  cr_assert(eq(
      int, mqttb_trie_match_subs(&b->sessions.subs, deep, sizeof(deep), count_sub, NULL, NULL), 0));
  cr_assert(eq(int, hits, 2));
  mqttb_session_del(s);
  mqttb_broker_del(b);
}

/* The reference vector of the SipHash paper: key 00..0f, message 00..07. */
Test(map, siphash_matches_the_reference_vector) {
  const uint64_t key[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
  cr_assert(eq(u64, mqttb_siphash_u64(key, 0x0706050403020100ull), 0x93f5f5799a932462ull));
}
