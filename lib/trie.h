/* SPDX-License-Identifier: MIT */
/*
 * trie: topics and filters by level. One node per level; what hangs off a
 * node is its owners' business: subscriptions and shared-subscription
 * groups (the session layer) in the subscription trie, a retained message
 * (the router) in the retained trie. The trie stores those as pointers it
 * never follows, matches with MQTT's wildcard rules, and walks with a
 * scratch stack of its own rather than recursion, so a topic of thousands
 * of levels cannot exhaust the C stack.
 */
#ifndef MQTTB_TRIE_H
#define MQTTB_TRIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "map.h"
#include "mem.h"
#include "msg.h"

struct mqttb_sub;
struct mqttb_share;

/* A node. The payload slots (subs, shares, retained) are read and written
 * by the owning layer; the structure (parent, children, level) is this
 * module's. */
#define MQTTB_TNODE_PLUS 1u
#define MQTTB_TNODE_HASH 2u

typedef struct mqttb_tnode {
  struct mqttb_tnode *parent;
  mqttb_map children;          /* level -> mqttb_tnode */
  struct mqttb_sub **subs;     /* subscriptions whose filter ends here */
  struct mqttb_share **shares; /* shared subscription groups whose filter ends here */
  mqttb_msg *retained;         /* retained message whose topic ends here */
  uint32_t nsubs, subs_cap;
  uint32_t nshares, shares_cap;
  uint16_t level_len; /* a level is at most a topic's 65535 bytes */
  uint8_t wild;       /* MQTTB_TNODE_PLUS, _HASH: it has a '+' or '#' child */
  char level[];       /* this node's level, not NUL-terminated */
} mqttb_tnode;

typedef struct mqttb_trie {
  mqttb_tnode *root;
  const mqttb_mem *mem;
  /* The walk stack, kept between walks. */
  struct mqttb_walk {
    mqttb_tnode *node;
    size_t pos;
  } * walk;
  size_t walk_cap;
} mqttb_trie;

int mqttb_trie_init(mqttb_trie *t, const mqttb_mem *mem);
/* Free every node (unreferencing retained messages). */
void mqttb_trie_free(mqttb_trie *t);
/* Find or create the node for a topic or filter. NULL on out-of-memory. */
mqttb_tnode *mqttb_trie_insert(mqttb_trie *t, const char *topic, size_t len);
/* Find the node for a topic or filter, or NULL. */
mqttb_tnode *mqttb_trie_find(const mqttb_trie *t, const char *topic, size_t len);
/* Free node and its now-empty ancestors when they hold nothing. */
void mqttb_trie_prune(mqttb_trie *t, mqttb_tnode *node);

/* Payload slots. Adding returns 0 or MQTTB_ERR_NOMEM; *idx receives the
 * subscription's position. Removing a subscription swaps the last one into
 * its place and returns it (NULL when none moved) so the owner can update
 * the index it keeps. */
int mqttb_tnode_add_sub(mqttb_trie *t, mqttb_tnode *n, struct mqttb_sub *sub, uint32_t *idx);
struct mqttb_sub *mqttb_tnode_remove_sub(mqttb_tnode *n, size_t idx);
int mqttb_tnode_add_share(mqttb_trie *t, mqttb_tnode *n, struct mqttb_share *sh);
void mqttb_tnode_remove_share(mqttb_tnode *n, struct mqttb_share *sh);

/* Call fn for every subscription whose filter matches the topic name; for
 * shared groups, call share_fn (may be NULL) once per matching group.
 * 0 or MQTTB_ERR_NOMEM (the walk stack could not grow). */
typedef void (*mqttb_sub_fn)(struct mqttb_sub *sub, void *ctx);
typedef void (*mqttb_share_fn)(struct mqttb_share *share, void *ctx);
int mqttb_trie_match_subs(mqttb_trie *t, const char *topic, size_t len, mqttb_sub_fn fn,
                          mqttb_share_fn share_fn, void *ctx);
/* Call fn for every retained message whose topic matches the filter. fn
 * must not change the trie. */
typedef void (*mqttb_retained_fn)(mqttb_msg *msg, void *ctx);
int mqttb_trie_match_retained(mqttb_trie *t, const char *filter, size_t len, mqttb_retained_fn fn,
                              void *ctx);
/* Whether a filter matches a topic name (the same rules, without a trie). */
bool mqttb_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen);

#endif /* MQTTB_TRIE_H */
