/* SPDX-License-Identifier: MIT */
/* Topic trie. See trie.h. */
#include "trie.h"

#include <string.h>

#include <mqttb/mqttb.h>

#define POS_SUBTREE SIZE_MAX

static mqttb_tnode *node_new(const mqttb_mem *mem, mqttb_tnode *parent, const char *level,
                             size_t len) {
  /* The level right after the fields, not after the padding. */
  mqttb_tnode *n = mqttb_mem_calloc(mem, 1, offsetof(mqttb_tnode, level) + len);
  if (!n)
    return NULL;
  n->parent = parent;
  n->level_len = (uint16_t)len;
  if (len)
    memcpy(n->level, level, len);
  return n;
}

static void node_free(const mqttb_mem *mem, mqttb_tnode *n) {
  mqttb_map_free(&n->children, mem);
  mqttb_mem_free(mem, n->subs);
  mqttb_mem_free(mem, n->shares);
  mqttb_mem_free(mem, n);
}

int mqttb_trie_init(mqttb_trie *t, const mqttb_mem *mem) {
  t->mem = mem;
  t->walk = NULL;
  t->walk_cap = 0;
  t->root = node_new(mem, NULL, NULL, 0);
  return t->root ? 0 : MQTTB_ERR_NOMEM;
}

/* Free n and everything under it, detaching children one at a time: no
 * memory needed, but a node's children are scanned from the start for each
 * one, so a wide node costs its width squared. The fallback of
 * free_subtree. */
static void free_subtree_slow(const mqttb_mem *mem, mqttb_tnode *n) {
  mqttb_tnode *top = n->parent;
  while (n != top) {
    mqttb_tnode *child = NULL;
    for (uint32_t i = 0; i < n->children.cap; i++) {
      if (n->children.e[i].key) {
        child = n->children.e[i].val;
        break;
      }
    }
    if (child) {
      mqttb_map_del(&n->children, child->level, child->level_len);
      n = child;
      continue;
    }
    mqttb_tnode *parent = n->parent;
    mqttb_msg_unref(mem, n->retained);
    node_free(mem, n);
    n = parent;
  }
}

/* Depth-first with an explicit stack of (node, next child slot): each map
 * is walked once. Where the stack cannot grow, that subtree is freed the
 * slow way. */
static void free_subtree(const mqttb_mem *mem, mqttb_tnode *root) {
  struct frame {
    mqttb_tnode *n;
    uint32_t next;
  } *st = NULL;
  size_t depth = 0, cap = 0;
  void *arr = NULL;
  if (mqttb_mem_grow(mem, &arr, &cap, 1, sizeof(*st)) != 0) {
    free_subtree_slow(mem, root);
    return;
  }
  st = arr;
  root->parent = NULL;
  st[depth++] = (struct frame){root, 0};
  while (depth > 0) {
    struct frame *f = &st[depth - 1];
    mqttb_tnode *n = f->n;
    while (f->next < n->children.cap && !n->children.e[f->next].key)
      f->next++;
    if (f->next < n->children.cap) {
      mqttb_tnode *child = n->children.e[f->next++].val;
      arr = st;
      if (mqttb_mem_grow(mem, &arr, &cap, depth + 1, sizeof(*st)) != 0) {
        child->parent = NULL;
        free_subtree_slow(mem, child);
        continue;
      }
      st = arr;
      st[depth++] = (struct frame){child, 0};
      continue;
    }
    mqttb_msg_unref(mem, n->retained);
    node_free(mem, n);
    depth--;
  }
  mqttb_mem_free(mem, st);
}

void mqttb_trie_free(mqttb_trie *t) {
  if (t->root)
    free_subtree(t->mem, t->root);
  t->root = NULL;
  mqttb_mem_free(t->mem, t->walk);
  t->walk = NULL;
  t->walk_cap = 0;
}

/* The level starting at pos, and where the next one starts (len + 1 once the
 * last level has been taken). */
static size_t level_end(const char *s, size_t len, size_t pos, size_t *next) {
  const char *slash = pos < len ? memchr(s + pos, '/', len - pos) : NULL;
  size_t end = slash ? (size_t)(slash - s) : len;
  *next = end + 1;
  return end;
}

static mqttb_tnode *child(const mqttb_tnode *n, const char *level, size_t len) {
  if (n->children.count == 0)
    return NULL;
  return mqttb_map_get(&n->children, level, len);
}

/* The flag of a '+' or '#' level, else 0. */
static uint8_t wild_bit(const char *level, size_t len) {
  if (len != 1)
    return 0;
  return level[0] == '+' ? MQTTB_TNODE_PLUS : level[0] == '#' ? MQTTB_TNODE_HASH : 0;
}

/* The '+' or '#' child, without a lookup where there is none (most nodes
 * of a tree of topics without wildcard subscriptions). */
static mqttb_tnode *wild_child(const mqttb_tnode *n, const char *level) {
  return n->wild & wild_bit(level, 1) ? mqttb_map_get(&n->children, level, 1) : NULL;
}

mqttb_tnode *mqttb_trie_find(const mqttb_trie *t, const char *topic, size_t len) {
  mqttb_tnode *n = t->root;
  size_t pos = 0, next;
  while (n && pos <= len) {
    size_t end = level_end(topic, len, pos, &next);
    n = child(n, topic + pos, end - pos);
    pos = next;
  }
  return n;
}

mqttb_tnode *mqttb_trie_insert(mqttb_trie *t, const char *topic, size_t len) {
  if (len > UINT16_MAX)
    return NULL; /* no MQTT string is longer; levels are kept in 16 bits */
  const mqttb_mem *mem = t->mem;
  mqttb_tnode *n = t->root;
  size_t pos = 0, next;
  while (pos <= len) {
    size_t end = level_end(topic, len, pos, &next);
    mqttb_tnode *c = child(n, topic + pos, end - pos);
    if (!c) {
      c = node_new(mem, n, topic + pos, end - pos);
      if (!c || mqttb_map_put(&n->children, mem, c->level, c->level_len, c) != 0) {
        mqttb_mem_free(mem, c);
        mqttb_trie_prune(t, n);
        return NULL;
      }
      n->wild |= wild_bit(c->level, c->level_len);
    }
    n = c;
    pos = next;
  }
  return n;
}

void mqttb_trie_prune(mqttb_trie *t, mqttb_tnode *n) {
  while (n && n != t->root && n->nsubs == 0 && n->nshares == 0 && !n->retained &&
         n->children.count == 0) {
    mqttb_tnode *parent = n->parent;
    mqttb_map_del(&parent->children, n->level, n->level_len);
    parent->wild &= (uint8_t)~wild_bit(n->level, n->level_len);
    node_free(t->mem, n);
    n = parent;
  }
}

static int push(mqttb_trie *t, size_t *sp, mqttb_tnode *n, size_t pos) {
  if (!n)
    return 0;
  if (*sp == t->walk_cap) {
    void *arr = t->walk;
    if (mqttb_mem_grow(t->mem, &arr, &t->walk_cap, *sp + 1, sizeof(*t->walk)) != 0)
      return MQTTB_ERR_NOMEM;
    t->walk = arr;
  }
  t->walk[*sp].node = n;
  t->walk[*sp].pos = pos;
  (*sp)++;
  return 0;
}

typedef struct emit_ctx {
  mqttb_sub_fn fn;
  mqttb_share_fn share_fn;
  void *ctx;
} emit_ctx;

static void emit_subs(const mqttb_tnode *n, const emit_ctx *e) {
  for (size_t i = 0; i < n->nsubs; i++)
    e->fn(n->subs[i], e->ctx);
  if (e->share_fn)
    for (size_t i = 0; i < n->nshares; i++)
      e->share_fn(n->shares[i], e->ctx);
}

int mqttb_trie_match_subs(mqttb_trie *t, const char *topic, size_t len, mqttb_sub_fn fn,
                          mqttb_share_fn share_fn, void *ctx) {
  emit_ctx e = {fn, share_fn, ctx};
  /* Filters starting with a wildcard do not match topics starting with '$'
   * [MQTT-4.7.2-1]. */
  bool dollar = len > 0 && topic[0] == '$';
  size_t sp = 0;
  int rv = push(t, &sp, t->root, 0);
  while (rv == 0 && sp > 0) {
    sp--;
    mqttb_tnode *n = t->walk[sp].node;
    size_t pos = t->walk[sp].pos;
    bool wild_ok = !(pos == 0 && dollar);
    if (wild_ok) {
      /* '#' matches the remaining levels, including none: "a/#" matches
       * "a" [MQTT-4.7.1-2]. */
      mqttb_tnode *h = wild_child(n, "#");
      if (h)
        emit_subs(h, &e);
    }
    if (pos > len) {
      emit_subs(n, &e);
      continue;
    }
    size_t next;
    size_t end = level_end(topic, len, pos, &next);
    rv = push(t, &sp, child(n, topic + pos, end - pos), next);
    if (rv == 0 && wild_ok)
      rv = push(t, &sp, wild_child(n, "+"), next);
  }
  return rv;
}

int mqttb_trie_match_retained(mqttb_trie *t, const char *filter, size_t len, mqttb_retained_fn fn,
                              void *ctx) {
  size_t sp = 0;
  int rv = push(t, &sp, t->root, 0);
  while (rv == 0 && sp > 0) {
    sp--;
    mqttb_tnode *n = t->walk[sp].node;
    size_t pos = t->walk[sp].pos;
    if (pos == POS_SUBTREE) {
      /* Everything at and below n. */
      if (n->retained)
        fn(n->retained, ctx);
      for (uint32_t i = 0; rv == 0 && i < n->children.cap; i++)
        if (n->children.e[i].key)
          rv = push(t, &sp, n->children.e[i].val, POS_SUBTREE);
      continue;
    }
    if (pos > len) {
      if (n->retained)
        fn(n->retained, ctx);
      continue;
    }
    size_t next;
    size_t end = level_end(filter, len, pos, &next);
    size_t llen = end - pos;
    bool at_root = pos == 0;
    if (llen == 1 && (filter[pos] == '#' || filter[pos] == '+')) {
      bool hash = filter[pos] == '#';
      if (hash && n->retained)
        fn(n->retained, ctx); /* "a/#" matches "a" */
      for (uint32_t i = 0; rv == 0 && i < n->children.cap; i++) {
        mqttb_tnode *c = n->children.e[i].val;
        if (!n->children.e[i].key)
          continue;
        if (at_root && c->level_len > 0 && c->level[0] == '$')
          continue;
        rv = push(t, &sp, c, hash ? POS_SUBTREE : next);
      }
      continue;
    }
    rv = push(t, &sp, child(n, filter + pos, llen), next);
  }
  return rv;
}

bool mqttb_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen) {
  if (tlen > 0 && topic[0] == '$' && flen > 0 && (filter[0] == '+' || filter[0] == '#'))
    return false;
  size_t fp = 0, tp = 0;
  for (;;) {
    size_t fnext, tnext;
    size_t fend = level_end(filter, flen, fp, &fnext);
    if (fend - fp == 1 && filter[fp] == '#')
      return true;
    if (tp > tlen)
      return false;
    size_t tend = level_end(topic, tlen, tp, &tnext);
    bool plus = fend - fp == 1 && filter[fp] == '+';
    if (!plus && (fend - fp != tend - tp || memcmp(filter + fp, topic + tp, fend - fp) != 0))
      return false;
    fp = fnext;
    tp = tnext;
    if (fp > flen)
      return tp > tlen;
  }
}

int mqttb_tnode_add_sub(mqttb_trie *t, mqttb_tnode *n, struct mqttb_sub *sub, uint32_t *idx) {
  void *arr = n->subs;
  if (mqttb_mem_grow32(t->mem, &arr, &n->subs_cap, n->nsubs + 1, sizeof(*n->subs)) != 0)
    return MQTTB_ERR_NOMEM;
  n->subs = arr;
  *idx = n->nsubs;
  n->subs[n->nsubs++] = sub;
  return 0;
}

struct mqttb_sub *mqttb_tnode_remove_sub(mqttb_tnode *n, size_t idx) {
  n->subs[idx] = n->subs[n->nsubs - 1];
  n->nsubs--;
  return idx < n->nsubs ? n->subs[idx] : NULL;
}

int mqttb_tnode_add_share(mqttb_trie *t, mqttb_tnode *n, struct mqttb_share *sh) {
  void *arr = n->shares;
  if (mqttb_mem_grow32(t->mem, &arr, &n->shares_cap, n->nshares + 1, sizeof(*n->shares)) != 0)
    return MQTTB_ERR_NOMEM;
  n->shares = arr;
  n->shares[n->nshares++] = sh;
  return 0;
}

void mqttb_tnode_remove_share(mqttb_tnode *n, struct mqttb_share *sh) {
  for (size_t k = 0; k < n->nshares; k++) {
    if (n->shares[k] == sh) {
      n->shares[k] = n->shares[--n->nshares];
      return;
    }
  }
}
