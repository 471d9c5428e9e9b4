/*
 * mqttb CLI: Mosquitto's acl_file (semantics in acl.h).
 *
 * The rules are compiled into tries of topic levels, one "allow" and one
 * "deny" trie per section (the anonymous section, each user name, and the
 * patterns). A trie node holds the access bits of the rules that end there
 * and of the rules that end there with "/#"; children are reached through
 * one hash table keyed by (parent node, level text), and through the node's
 * `+`, `%c` and `%u` child. A check walks the topic level by level, so it
 * costs the number of trie nodes that match a prefix of the topic, not the
 * number of rules, and it allocates nothing: patterns are not substituted
 * into text, a `%c` node compares the topic level with the client id.
 *
 * Every node can be reached from its root by one path only, and that path
 * fixes how much of the topic it has consumed, so a walk visits each node
 * at most once: the recursion is bounded by the trie, its depth by the 201
 * levels a rule may have.
 *
 * SPDX-License-Identifier: MIT
 */
#include "acl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mosquitto_sub_topic_check(): at most 65535 bytes and 200 '/'. */
#define MAX_TOPIC 65535u
#define MAX_SLASHES 200u
#define MAX_USERNAME 65535u

/* How a node is reached from its parent. */
enum node_kind { KIND_ROOT, KIND_LITERAL, KIND_PLUS, KIND_VAR_C, KIND_VAR_U };

/* Indexes into node.sub: what is reachable below a node when the client id
 * and/or the user name cannot be substituted into a granting pattern. */
enum { SUB_ALL = 0, SUB_NO_C = 1, SUB_NO_U = 2, SUB_NO_VAR = 3 };

/* A filter level `+` makes a SUBSCRIBE check visit every child of a node:
 * at most this many nodes per check, past which the filter is granted (as
 * Mosquitto grants every SUBSCRIBE; READ still filters deliveries), so a
 * client cannot make a big file cost much per filter. */
#define SUBSCRIBE_BUDGET 4096u

/* Bits stored in deny tries. */
#define DENY_BITS 1u
/* What a walk of a deny trie looks for: any rule. */
#define WANT_ANY 0xffu

struct node {
  uint32_t parent;
  /* Literal children, as a list for enumerating them (a `+` in a filter). */
  uint32_t first_child;
  uint32_t next_sibling;
  uint32_t plus;
  uint32_t var_c;
  uint32_t var_u;
  /* A literal node's level: offset and length in mqttb_acl.text. */
  uint32_t text;
  uint32_t text_len;
  /* Of (parent, level), for the child table. */
  uint32_t hash;
  uint8_t kind;
  /* Access bits of the rules ending here, and ending here with "/#". */
  uint8_t end;
  uint8_t hash_end;
  /* OR of end and hash_end over the subtree, for a filter level `#`. */
  uint8_t sub[4];
  /* For roots only: as sub, without the children whose level starts with
   * '$' (a filter starting with a wildcard matches no such topic). */
  uint8_t sub_nd[4];
};

struct section {
  /* The user name, in mqttb_acl.text (unused for the first two). */
  uint32_t name;
  uint32_t name_len;
  uint32_t hash;
  uint32_t allow;
  uint32_t deny;
};

/* sections[SECTION_PATTERNS] holds the `pattern` rules; the anonymous
 * section is next; users follow. */
enum { SECTION_PATTERNS = 0, SECTION_ANONYMOUS = 1 };

struct mqttb_acl {
  /* nodes[0] is unused: index 0 means "none". */
  struct node *nodes;
  uint32_t node_count;
  uint32_t node_cap;
  char *text;
  size_t text_len;
  size_t text_cap;
  /* Open addressing: node indexes, 0 for empty; at most half full. */
  uint32_t *children;
  uint32_t child_mask;
  uint32_t child_count;
  struct section *sections;
  uint32_t section_count;
  uint32_t section_cap;
  /* Open addressing: section indexes (>= 2), 0 for empty. */
  uint32_t *users;
  uint32_t user_mask;
  bool has_patterns;
  size_t rule_count;
};

/* ---- hashing ---- */

/* FNV-1a: the keys come from the file, so there is nothing to flood; a
 * client only chooses what is looked up. */
static uint32_t hash_bytes(uint32_t seed, const char *s, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull ^ ((uint64_t)seed * 0x9e3779b97f4a7c15ull);
  for (size_t i = 0; i < len; i++) {
    h ^= (uint8_t)s[i];
    h *= 0x100000001b3ull;
  }
  return (uint32_t)(h ^ (h >> 32));
}

static uint32_t child_find(const mqttb_acl *a, uint32_t parent, const char *s, size_t len) {
  if (a->child_mask == 0) {
    return 0;
  }
  uint32_t h = hash_bytes(parent, s, len);
  for (uint32_t i = h & a->child_mask;; i = (i + 1) & a->child_mask) {
    uint32_t n = a->children[i];
    if (n == 0) {
      return 0;
    }
    const struct node *nd = &a->nodes[n];
    if (nd->hash == h && nd->parent == parent && nd->text_len == len &&
        memcmp(a->text + nd->text, s, len) == 0) {
      return n;
    }
  }
}

static uint32_t user_find(const mqttb_acl *a, const char *name, size_t len) {
  if (a->user_mask == 0) {
    return 0;
  }
  uint32_t h = hash_bytes(0, name, len);
  for (uint32_t i = h & a->user_mask;; i = (i + 1) & a->user_mask) {
    uint32_t s = a->users[i];
    if (s == 0) {
      return 0;
    }
    const struct section *sec = &a->sections[s];
    if (sec->hash == h && sec->name_len == len && memcmp(a->text + sec->name, name, len) == 0) {
      return s;
    }
  }
}

/* ---- building ---- */

/* Where we are in the file, for error messages. */
struct parser {
  mqttb_acl *a;
  const char *name;
  unsigned line;
  char *err;
  size_t errlen;
  /* The section `topic` lines go to. */
  uint32_t section;
};

__attribute__((format(printf, 2, 3))) static int fail(const struct parser *p, const char *fmt,
                                                      ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (p->errlen > 0) {
    snprintf(p->err, p->errlen, "%s:%u: %s", p->name, p->line, msg);
  }
  return -1;
}

/* A short, printable copy of file text for a message: no terminal escapes
 * or broken UTF-8 from a hostile file reach the log. */
static const char *quote(char out[64], const char *s, size_t len) {
  size_t max = 48;
  size_t n = 0;
  for (; n < len && n < max; n++) {
    unsigned char ch = (unsigned char)s[n];
    out[n] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
  }
  if (n < len) {
    memcpy(out + n, "...", 4);
  } else {
    out[n] = '\0';
  }
  return out;
}

static bool grow(void **ptr, uint32_t *cap, uint32_t need, size_t elem) {
  if (need <= *cap) {
    return true;
  }
  uint64_t ncap = *cap ? (uint64_t)*cap * 2 : 64;
  while (ncap < need) {
    ncap *= 2;
  }
  if (ncap > UINT32_MAX || ncap > SIZE_MAX / elem) {
    return false;
  }
  void *p = realloc(*ptr, (size_t)ncap * elem);
  if (p == NULL) {
    return false;
  }
  *ptr = p;
  *cap = (uint32_t)ncap;
  return true;
}

/* Copy @p len bytes into the text arena; UINT32_MAX when out of memory. */
static uint32_t text_add(mqttb_acl *a, const char *s, size_t len) {
  if (a->text_len + len > UINT32_MAX) {
    return UINT32_MAX;
  }
  if (a->text == NULL || a->text_len + len > a->text_cap) {
    size_t ncap = a->text_cap ? a->text_cap : 4096;
    while (ncap < a->text_len + len) {
      ncap *= 2;
    }
    char *t = realloc(a->text, ncap);
    if (t == NULL) {
      return UINT32_MAX;
    }
    a->text = t;
    a->text_cap = ncap;
  }
  if (len > 0) {
    memcpy(a->text + a->text_len, s, len);
  }
  uint32_t off = (uint32_t)a->text_len;
  a->text_len += len;
  return off;
}

/* A new node; 0 when out of memory. */
static uint32_t node_new(mqttb_acl *a, uint32_t parent, enum node_kind kind) {
  if (a->node_count == UINT32_MAX ||
      !grow((void **)&a->nodes, &a->node_cap, a->node_count + 1, sizeof *a->nodes)) {
    return 0;
  }
  uint32_t n = a->node_count++;
  memset(&a->nodes[n], 0, sizeof a->nodes[n]);
  a->nodes[n].parent = parent;
  a->nodes[n].kind = (uint8_t)kind;
  return n;
}

static bool table_insert(uint32_t *tab, uint32_t mask, uint32_t h, uint32_t value) {
  for (uint32_t i = h & mask;; i = (i + 1) & mask) {
    if (tab[i] == 0) {
      tab[i] = value;
      return true;
    }
  }
}

/* Make room for one more entry in a table kept at most half full. */
static bool table_reserve(uint32_t **tab, uint32_t *mask, uint32_t count, const mqttb_acl *a,
                          bool nodes) {
  uint32_t cap = *mask ? *mask + 1 : 0;
  if ((uint64_t)(count + 1) * 2 <= cap) {
    return true;
  }
  uint64_t ncap = cap ? (uint64_t)cap * 2 : 256;
  if (ncap > UINT32_MAX) {
    return false;
  }
  uint32_t *ntab = calloc((size_t)ncap, sizeof *ntab);
  if (ntab == NULL) {
    return false;
  }
  uint32_t nmask = (uint32_t)(ncap - 1);
  for (uint32_t i = 0; i < cap; i++) {
    uint32_t v = (*tab)[i];
    if (v != 0) {
      table_insert(ntab, nmask, nodes ? a->nodes[v].hash : a->sections[v].hash, v);
    }
  }
  free(*tab);
  *tab = ntab;
  *mask = nmask;
  return true;
}

static uint32_t child_get(mqttb_acl *a, uint32_t parent, const char *s, size_t len) {
  uint32_t n = child_find(a, parent, s, len);
  if (n != 0) {
    return n;
  }
  uint32_t off = text_add(a, s, len);
  if (off == UINT32_MAX || !table_reserve(&a->children, &a->child_mask, a->child_count, a, true)) {
    return 0;
  }
  n = node_new(a, parent, KIND_LITERAL);
  if (n == 0) {
    return 0;
  }
  struct node *nd = &a->nodes[n];
  nd->text = off;
  nd->text_len = (uint32_t)len;
  nd->hash = hash_bytes(parent, s, len);
  nd->next_sibling = a->nodes[parent].first_child;
  a->nodes[parent].first_child = n;
  table_insert(a->children, a->child_mask, nd->hash, n);
  a->child_count++;
  return n;
}

/* The @p which child of @p parent (plus, var_c or var_u), made if needed. */
static uint32_t special_get(mqttb_acl *a, uint32_t parent, enum node_kind kind) {
  struct node *p = &a->nodes[parent];
  uint32_t n = kind == KIND_PLUS ? p->plus : kind == KIND_VAR_C ? p->var_c : p->var_u;
  if (n != 0) {
    return n;
  }
  n = node_new(a, parent, kind);
  if (n == 0) {
    return 0;
  }
  p = &a->nodes[parent];
  if (kind == KIND_PLUS) {
    p->plus = n;
  } else if (kind == KIND_VAR_C) {
    p->var_c = n;
  } else {
    p->var_u = n;
  }
  return n;
}

/* A new section with its two roots; its index, or 0 when out of memory. */
static uint32_t section_new(mqttb_acl *a) {
  if (!grow((void **)&a->sections, &a->section_cap, a->section_count + 1, sizeof *a->sections)) {
    return 0;
  }
  uint32_t allow = node_new(a, 0, KIND_ROOT);
  uint32_t deny = allow ? node_new(a, 0, KIND_ROOT) : 0;
  if (deny == 0) {
    return 0;
  }
  uint32_t s = a->section_count++;
  memset(&a->sections[s], 0, sizeof a->sections[s]);
  a->sections[s].allow = allow;
  a->sections[s].deny = deny;
  return s;
}

static int user_section(struct parser *p, const char *name, size_t len) {
  mqttb_acl *a = p->a;
  uint32_t s = user_find(a, name, len);
  if (s == 0) {
    uint32_t off = text_add(a, name, len);
    if (off == UINT32_MAX || !table_reserve(&a->users, &a->user_mask, a->section_count, a, false) ||
        (s = section_new(a)) == 0) {
      return fail(p, "out of memory");
    }
    a->sections[s].name = off;
    a->sections[s].name_len = (uint32_t)len;
    a->sections[s].hash = hash_bytes(0, name, len);
    table_insert(a->users, a->user_mask, a->sections[s].hash, s);
  }
  p->section = s;
  return 0;
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* RFC 3629 UTF-8: no overlong forms, surrogates or code points past
 * U+10FFFF. NUL has been refused already. */
static bool utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    unsigned char b = s[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    size_t n;
    uint32_t cp;
    uint32_t min;
    if ((b & 0xe0) == 0xc0) {
      n = 1, cp = b & 0x1fu, min = 0x80;
    } else if ((b & 0xf0) == 0xe0) {
      n = 2, cp = b & 0x0fu, min = 0x800;
    } else if ((b & 0xf8) == 0xf0) {
      n = 3, cp = b & 0x07u, min = 0x10000;
    } else {
      return false;
    }
    if (len - i <= n) {
      return false;
    }
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xc0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (s[i + k] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

static bool is_var(const char *lvl, size_t len) {
  return len == 2 && lvl[0] == '%' && (lvl[1] == 'c' || lvl[1] == 'u');
}

/* mosquitto_sub_topic_check(), and for patterns: %c / %u only as whole levels. */
static int check_rule_topic(const struct parser *p, const char *t, size_t len, bool pattern) {
  char q[64];
  if (len > MAX_TOPIC) {
    return fail(p, "topic longer than %u bytes", MAX_TOPIC);
  }
  unsigned slashes = 0;
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && t[i] != '/') {
      continue;
    }
    const char *lvl = t + start;
    size_t l = i - start;
    for (size_t k = 0; k < l; k++) {
      if ((lvl[k] == '+' || lvl[k] == '#') && l != 1) {
        return fail(p, "invalid topic '%s': '%c' must be a whole level", quote(q, t, len), lvl[k]);
      }
    }
    if (l == 1 && lvl[0] == '#' && i != len) {
      return fail(p, "invalid topic '%s': '#' must be the last level", quote(q, t, len));
    }
    if (pattern && !is_var(lvl, l)) {
      for (size_t k = 0; k + 1 < l; k++) {
        if (lvl[k] == '%' && (lvl[k + 1] == 'c' || lvl[k + 1] == 'u')) {
          return fail(p, "invalid pattern '%s': '%%%c' must be a whole level", quote(q, t, len),
                      lvl[k + 1]);
        }
      }
    }
    if (i < len && ++slashes > MAX_SLASHES) {
      return fail(p, "topic with more than %u levels", MAX_SLASHES + 1);
    }
    start = i + 1;
  }
  return 0;
}

static int add_rule(struct parser *p, const char *t, size_t len, bool pattern, bool deny,
                    uint8_t bits) {
  mqttb_acl *a = p->a;
  const struct section *sec = &a->sections[pattern ? SECTION_PATTERNS : p->section];
  uint32_t n = deny ? sec->deny : sec->allow;
  size_t start = 0;
  for (;;) {
    const char *slash = memchr(t + start, '/', len - start);
    size_t end = slash ? (size_t)(slash - t) : len;
    const char *lvl = t + start;
    size_t l = end - start;
    if (l == 1 && lvl[0] == '#') {
      a->nodes[n].hash_end |= bits;
      return 0;
    }
    uint32_t c;
    if (l == 1 && lvl[0] == '+') {
      c = special_get(a, n, KIND_PLUS);
    } else if (pattern && is_var(lvl, l)) {
      c = special_get(a, n, lvl[1] == 'c' ? KIND_VAR_C : KIND_VAR_U);
    } else {
      c = child_get(a, n, lvl, l);
    }
    if (c == 0) {
      return fail(p, "out of memory");
    }
    n = c;
    if (end == len) {
      break;
    }
    start = end + 1;
  }
  a->nodes[n].end |= bits;
  return 0;
}

/* `topic|pattern [ACCESS] TOPIC`, after the keyword. */
static int parse_rule(struct parser *p, const char *kw, const char *s, size_t len, bool pattern) {
  char q[64];
  size_t i = 0;
  while (i < len && is_space(s[i])) {
    i++;
  }
  if (i == len) {
    return fail(p, "missing topic after '%s'", kw);
  }
  size_t w = i;
  while (i < len && !is_space(s[i])) {
    i++;
  }
  size_t wlen = i - w;
  while (i < len && is_space(s[i])) {
    i++;
  }
  const char *topic;
  size_t tlen;
  uint8_t bits = MQTTB_ACL_READ | MQTTB_ACL_WRITE;
  bool deny = false;
  if (i == len) {
    /* Mosquitto: one word is the topic, readwrite. */
    topic = s + w;
    tlen = wlen;
  } else {
    const char *acc = s + w;
    if (wlen == 4 && memcmp(acc, "read", 4) == 0) {
      bits = MQTTB_ACL_READ;
    } else if (wlen == 5 && memcmp(acc, "write", 5) == 0) {
      bits = MQTTB_ACL_WRITE;
    } else if (wlen == 9 && memcmp(acc, "readwrite", 9) == 0) {
      bits = MQTTB_ACL_READ | MQTTB_ACL_WRITE;
    } else if (wlen == 4 && memcmp(acc, "deny", 4) == 0) {
      deny = true;
      bits = DENY_BITS;
    } else {
      return fail(p, "invalid access '%s' (expected read, write, readwrite or deny)",
                  quote(q, acc, wlen));
    }
    topic = s + i;
    tlen = len - i;
  }
  if (check_rule_topic(p, topic, tlen, pattern) != 0) {
    return -1;
  }
  if (pattern) {
    p->a->has_patterns = true;
  }
  p->a->rule_count++;
  return add_rule(p, topic, tlen, pattern, deny, bits);
}

static int parse_line(struct parser *p, const char *s, size_t len) {
  char q[64];
  if (len > MQTTB_ACL_MAX_LINE) {
    return fail(p, "line longer than %u bytes", MQTTB_ACL_MAX_LINE);
  }
  if (memchr(s, '\0', len) != NULL) {
    return fail(p, "NUL byte (not a text file?)");
  }
  while (len > 0 && is_space(s[len - 1])) {
    len--;
  }
  size_t i = 0;
  while (i < len && is_space(s[i])) {
    i++;
  }
  if (i == len || s[i] == '#') {
    return 0;
  }
  if (!utf8_valid(s + i, len - i)) {
    return fail(p, "invalid UTF-8");
  }
  size_t kw = i;
  while (i < len && !is_space(s[i])) {
    i++;
  }
  size_t kwlen = i - kw;
  if (kwlen == 5 && memcmp(s + kw, "topic", 5) == 0) {
    return parse_rule(p, "topic", s + i, len - i, false);
  }
  if (kwlen == 7 && memcmp(s + kw, "pattern", 7) == 0) {
    return parse_rule(p, "pattern", s + i, len - i, true);
  }
  if (kwlen == 4 && memcmp(s + kw, "user", 4) == 0) {
    while (i < len && is_space(s[i])) {
      i++;
    }
    if (i == len) {
      return fail(p, "missing user name after 'user'");
    }
    if (len - i > MAX_USERNAME) {
      return fail(p, "user name longer than %u bytes", MAX_USERNAME);
    }
    return user_section(p, s + i, len - i);
  }
  return fail(p, "unknown keyword '%s' (expected topic, pattern or user)", quote(q, s + kw, kwlen));
}

/* Fill in node.sub and root node.sub_nd. Children always come after their
 * parent in the array, so one backward pass sees each subtree complete. */
static void summarise(mqttb_acl *a) {
  for (uint32_t n = 1; n < a->node_count; n++) {
    struct node *nd = &a->nodes[n];
    uint8_t own = (uint8_t)(nd->end | nd->hash_end);
    for (int k = 0; k < 4; k++) {
      nd->sub[k] = own;
      nd->sub_nd[k] = nd->kind == KIND_ROOT ? nd->hash_end : 0;
    }
  }
  for (uint32_t n = a->node_count - 1; n >= 1; n--) {
    const struct node *nd = &a->nodes[n];
    if (nd->kind == KIND_ROOT) {
      continue;
    }
    struct node *p = &a->nodes[nd->parent];
    uint8_t add[4];
    add[SUB_ALL] = nd->sub[SUB_ALL];
    add[SUB_NO_C] = nd->kind == KIND_VAR_C ? 0 : nd->sub[SUB_NO_C];
    add[SUB_NO_U] = nd->kind == KIND_VAR_U ? 0 : nd->sub[SUB_NO_U];
    add[SUB_NO_VAR] = nd->kind == KIND_VAR_C || nd->kind == KIND_VAR_U ? 0 : nd->sub[SUB_NO_VAR];
    bool dollar = nd->kind == KIND_LITERAL && nd->text_len > 0 && a->text[nd->text] == '$';
    for (int k = 0; k < 4; k++) {
      p->sub[k] |= add[k];
      if (p->kind == KIND_ROOT && !dollar) {
        p->sub_nd[k] |= add[k];
      }
    }
  }
}

static mqttb_acl *acl_new(void) {
  mqttb_acl *a = calloc(1, sizeof *a);
  if (a == NULL) {
    return NULL;
  }
  /* Node 0 stands for "none"; sections 0 and 1 are the patterns and the
   * anonymous clients. */
  if (!grow((void **)&a->nodes, &a->node_cap, 1, sizeof *a->nodes)) {
    free(a);
    return NULL;
  }
  memset(&a->nodes[0], 0, sizeof a->nodes[0]);
  a->node_count = 1;
  if (section_new(a) != SECTION_PATTERNS || section_new(a) != SECTION_ANONYMOUS) {
    mqttb_acl_free(a);
    return NULL;
  }
  return a;
}

int mqttb_acl_load_buffer(const char *data, size_t len, const char *name, mqttb_acl **out,
                          char *err, size_t errlen) {
  if (out != NULL) {
    *out = NULL;
  }
  if (name == NULL) {
    name = "(acl)";
  }
  if (out == NULL || (data == NULL && len > 0)) {
    if (errlen > 0) {
      snprintf(err, errlen, "%s: invalid argument", name);
    }
    return -1;
  }
  if (len > MQTTB_ACL_MAX_FILE_SIZE) {
    if (errlen > 0) {
      snprintf(err, errlen, "%s: larger than %u bytes", name, MQTTB_ACL_MAX_FILE_SIZE);
    }
    return -1;
  }
  struct parser p = {acl_new(), name, 0, err, errlen, SECTION_ANONYMOUS};
  if (p.a == NULL) {
    if (errlen > 0) {
      snprintf(err, errlen, "%s: out of memory", name);
    }
    return -1;
  }
  size_t pos = 0;
  while (pos < len) {
    p.line++;
    const char *nl = memchr(data + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - data) : len;
    if (parse_line(&p, data + pos, end - pos) != 0) {
      mqttb_acl_free(p.a);
      return -1;
    }
    pos = end + 1;
  }
  summarise(p.a);
  *out = p.a;
  return 0;
}

int mqttb_acl_load(const char *path, mqttb_acl **out, char *err, size_t errlen) {
  if (out != NULL) {
    *out = NULL;
  }
  if (path == NULL || out == NULL) {
    if (errlen > 0) {
      snprintf(err, errlen, "acl_file: invalid argument");
    }
    return -1;
  }
  /* O_NONBLOCK: opening a FIFO must not wait for a writer (refused below). */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    if (errlen > 0) {
      snprintf(err, errlen, "%s: cannot open ACL file: %s", path, strerror(errno));
    }
    return -1;
  }
  struct stat st;
  size_t cap = 65536;
  if (fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
    close(fd);
    if (errlen > 0) {
      snprintf(err, errlen, "%s: a FIFO or socket, not a file", path);
    }
    return -1;
  }
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    if ((uint64_t)st.st_size > MQTTB_ACL_MAX_FILE_SIZE) {
      close(fd);
      if (errlen > 0) {
        snprintf(err, errlen, "%s: larger than %u bytes", path, MQTTB_ACL_MAX_FILE_SIZE);
      }
      return -1;
    }
    cap = (size_t)st.st_size + 1;
  }
  /* Read to the end, whatever the size said: the file may grow, or be a
   * pipe or a device. */
  char *buf = malloc(cap);
  size_t len = 0;
  int read_errno = 0;
  bool oom = buf == NULL;
  bool too_large = false;
  while (!oom) {
    if (len == cap) {
      size_t ncap = cap * 2 > MQTTB_ACL_MAX_FILE_SIZE + 1u ? MQTTB_ACL_MAX_FILE_SIZE + 1u : cap * 2;
      char *nbuf = realloc(buf, ncap);
      if (nbuf == NULL) {
        oom = true;
        break;
      }
      buf = nbuf;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0) {
      read_errno = errno;
      break;
    }
    if (r == 0) {
      break;
    }
    len += (size_t)r;
    if (len > MQTTB_ACL_MAX_FILE_SIZE) {
      too_large = true;
      break;
    }
  }
  close(fd);
  int rc = -1;
  if (oom) {
    if (errlen > 0) {
      snprintf(err, errlen, "%s: out of memory", path);
    }
  } else if (read_errno != 0) {
    if (errlen > 0) {
      snprintf(err, errlen, "%s: cannot read ACL file: %s", path, strerror(read_errno));
    }
  } else if (too_large) {
    if (errlen > 0) {
      snprintf(err, errlen, "%s: larger than %u bytes", path, MQTTB_ACL_MAX_FILE_SIZE);
    }
  } else {
    rc = mqttb_acl_load_buffer(buf, len, path, out, err, errlen);
  }
  free(buf);
  return rc;
}

void mqttb_acl_free(mqttb_acl *acl) {
  if (acl == NULL) {
    return;
  }
  free(acl->nodes);
  free(acl->text);
  free(acl->children);
  free(acl->sections);
  free(acl->users);
  free(acl);
}

size_t mqttb_acl_rule_count(const mqttb_acl *acl) {
  return acl ? acl->rule_count : 0;
}

/* ---- checking ---- */

/* The values %c and %u stand for. */
struct who {
  const char *c;
  size_t clen;
  /* May a granting pattern substitute it: non-empty, no '/'. */
  bool c_ok;
  const char *u;
  size_t ulen;
  bool u_ok;
};

/* One walk of a trie along a topic name or filter. */
struct walk {
  const mqttb_acl *a;
  const char *t;
  size_t tlen;
  /* The topic (or the filter's first level) starts with '$'. */
  bool dollar;
  /* Access bits looked for. */
  uint8_t want;
  /* Which node.sub applies (SUB_*). */
  int variant;
  const struct who *who;
  /* Nodes a SUBSCRIBE check may still visit (see SUBSCRIBE_BUDGET). */
  unsigned *budget;
};

static size_t level_end(const char *t, size_t tlen, size_t pos) {
  const char *slash = memchr(t + pos, '/', tlen - pos);
  return slash ? (size_t)(slash - t) : tlen;
}

/* Does a `%c`/`%u` node with value @p v take the topic from level @p pos
 * (ending at @p e)? On yes, *next is where the rest starts. A granting rule
 * (@p deny false) takes exactly one level equal to a valid value; a deny
 * rule takes the value as Mosquitto 2.0's text substitution does. */
static bool var_step(const struct walk *w, const char *v, size_t vlen, bool ok, bool wild,
                     bool deny, size_t pos, size_t e, size_t *next) {
  if (v == NULL) {
    return false;
  }
  if (!deny) {
    if (!ok || !wild || e - pos != vlen || memcmp(w->t + pos, v, vlen) != 0) {
      return false;
    }
    *next = e + 1;
    return true;
  }
  if (vlen > w->tlen - pos || memcmp(w->t + pos, v, vlen) != 0) {
    return false;
  }
  size_t end = pos + vlen;
  if (end != w->tlen && w->t[end] != '/') {
    return false;
  }
  *next = end + 1;
  return true;
}

/* Is there a rule below node @p n matching the topic name from @p pos on
 * (pos == tlen + 1: no levels left) with a bit of w->want? */
static bool name_match(const struct walk *w, uint32_t n, size_t pos, bool deny) {
  const struct node *nd = &w->a->nodes[n];
  /* Wildcards in a rule's first level do not match a '$' topic. */
  bool wild = !(nd->kind == KIND_ROOT && w->dollar);
  if ((nd->hash_end & w->want) && wild) {
    return true;
  }
  if (pos > w->tlen) {
    return (nd->end & w->want) != 0;
  }
  size_t e = level_end(w->t, w->tlen, pos);
  size_t next;
  if (nd->first_child) {
    uint32_t c = child_find(w->a, n, w->t + pos, e - pos);
    if (c && name_match(w, c, e + 1, deny)) {
      return true;
    }
  }
  if (nd->plus && wild && name_match(w, nd->plus, e + 1, deny)) {
    return true;
  }
  if (nd->var_c && var_step(w, w->who->c, w->who->clen, w->who->c_ok, wild, deny, pos, e, &next) &&
      name_match(w, nd->var_c, next, deny)) {
    return true;
  }
  if (nd->var_u && var_step(w, w->who->u, w->who->ulen, w->who->u_ok, wild, deny, pos, e, &next) &&
      name_match(w, nd->var_u, next, deny)) {
    return true;
  }
  return false;
}

static bool text_is_dollar(const mqttb_acl *a, const struct node *nd) {
  return nd->kind == KIND_LITERAL && nd->text_len > 0 && a->text[nd->text] == '$';
}

/* Is there a granting rule below @p n with a bit of w->want that some
 * topic matching the filter from @p pos on also matches? */
static bool filter_meets(const struct walk *w, uint32_t n, size_t pos) {
  if (*w->budget == 0) {
    return true; /* out of budget: grant, as Mosquitto does */
  }
  --*w->budget;
  const mqttb_acl *a = w->a;
  const struct node *nd = &a->nodes[n];
  bool root = nd->kind == KIND_ROOT;
  bool wild = !(root && w->dollar);
  if ((nd->hash_end & w->want) && wild) {
    return true;
  }
  if (pos > w->tlen) {
    return (nd->end & w->want) != 0;
  }
  size_t e = level_end(w->t, w->tlen, pos);
  const char *lvl = w->t + pos;
  size_t l = e - pos;
  const struct who *who = w->who;
  size_t next;
  if (l == 1 && lvl[0] == '#') {
    /* Everything here and below; at the first level no '$' topic. */
    return ((root ? nd->sub_nd : nd->sub)[w->variant] & w->want) != 0;
  }
  if (l == 1 && lvl[0] == '+') {
    for (uint32_t c = nd->first_child; c; c = a->nodes[c].next_sibling) {
      if (!(root && text_is_dollar(a, &a->nodes[c])) && filter_meets(w, c, e + 1)) {
        return true;
      }
    }
    if (nd->plus && filter_meets(w, nd->plus, e + 1)) {
      return true;
    }
    if (nd->var_c && who->c_ok && !(root && who->c[0] == '$') &&
        filter_meets(w, nd->var_c, e + 1)) {
      return true;
    }
    if (nd->var_u && who->u_ok && !(root && who->u[0] == '$') &&
        filter_meets(w, nd->var_u, e + 1)) {
      return true;
    }
    return false;
  }
  if (nd->first_child) {
    uint32_t c = child_find(a, n, lvl, l);
    if (c && filter_meets(w, c, e + 1)) {
      return true;
    }
  }
  if (nd->plus && wild && filter_meets(w, nd->plus, e + 1)) {
    return true;
  }
  if (nd->var_c && var_step(w, who->c, who->clen, who->c_ok, wild, false, pos, e, &next) &&
      filter_meets(w, nd->var_c, next)) {
    return true;
  }
  if (nd->var_u && var_step(w, who->u, who->ulen, who->u_ok, wild, false, pos, e, &next) &&
      filter_meets(w, nd->var_u, next)) {
    return true;
  }
  return false;
}

/* Is there one deny rule below @p n that every topic matching the filter
 * from @p pos on matches? */
static bool filter_covered(const struct walk *w, uint32_t n, size_t pos) {
  if (*w->budget == 0) {
    return false; /* out of budget: not refused */
  }
  --*w->budget;
  const struct node *nd = &w->a->nodes[n];
  bool wild = !(nd->kind == KIND_ROOT && w->dollar);
  if (nd->hash_end && wild) {
    return true;
  }
  if (pos > w->tlen) {
    return nd->end != 0;
  }
  size_t e = level_end(w->t, w->tlen, pos);
  const char *lvl = w->t + pos;
  size_t l = e - pos;
  size_t next;
  if (l == 1 && lvl[0] == '#') {
    return false;
  }
  if (l == 1 && lvl[0] == '+') {
    return nd->plus && filter_covered(w, nd->plus, e + 1);
  }
  if (nd->first_child) {
    uint32_t c = child_find(w->a, n, lvl, l);
    if (c && filter_covered(w, c, e + 1)) {
      return true;
    }
  }
  if (nd->plus && wild && filter_covered(w, nd->plus, e + 1)) {
    return true;
  }
  /* The values hold no + or # here (refused before patterns), so a byte
   * match means the filter's levels are the same literals. */
  const struct who *who = w->who;
  if (nd->var_c && var_step(w, who->c, who->clen, who->c_ok, wild, true, pos, e, &next) &&
      filter_covered(w, nd->var_c, next)) {
    return true;
  }
  if (nd->var_u && var_step(w, who->u, who->ulen, who->u_ok, wild, true, pos, e, &next) &&
      filter_covered(w, nd->var_u, next)) {
    return true;
  }
  return false;
}

static bool refused(const struct walk *w, const struct section *s, bool subscribe) {
  struct walk d = *w;
  d.want = WANT_ANY;
  return subscribe ? filter_covered(&d, s->deny, 0) : name_match(&d, s->deny, 0, true);
}

static bool granted(const struct walk *w, const struct section *s, bool subscribe) {
  return subscribe ? filter_meets(w, s->allow, 0) : name_match(w, s->allow, 0, false);
}

static bool valid_name(const char *t, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (t[i] == '+' || t[i] == '#' || t[i] == '\0') {
      return false;
    }
  }
  return true;
}

static bool valid_filter(const char *t, size_t len) {
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && t[i] == '\0') {
      return false;
    }
    if (i < len && t[i] != '/') {
      continue;
    }
    size_t l = i - start;
    for (size_t k = start; k < i; k++) {
      if ((t[k] == '+' || t[k] == '#') && l != 1) {
        return false;
      }
    }
    if (l == 1 && t[start] == '#' && i != len) {
      return false;
    }
    start = i + 1;
  }
  return true;
}

static bool has_prefix(const char *t, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  return len >= n && memcmp(t, prefix, n) == 0;
}

/* `$SYS/broker/connection/+/state`, which Mosquitto lets through to the ACL
 * for bridges' status messages. */
static bool is_bridge_state(const char *t, size_t len) {
  static const char head[] = "$SYS/broker/connection/";
  static const char tail[] = "/state";
  size_t h = sizeof head - 1;
  size_t s = sizeof tail - 1;
  if (len < h + s || !has_prefix(t, len, head) || memcmp(t + len - s, tail, s) != 0) {
    return false;
  }
  return memchr(t + h, '/', len - h - s) == NULL;
}

static void who_init(struct who *who, const char *client_id, const char *username) {
  who->c = client_id;
  who->clen = client_id ? strlen(client_id) : 0;
  who->c_ok = client_id && who->clen > 0 && memchr(client_id, '/', who->clen) == NULL;
  who->u = username;
  who->ulen = username ? strlen(username) : 0;
  who->u_ok = username && who->ulen > 0 && memchr(username, '/', who->ulen) == NULL;
}

bool mqttb_acl_check(const mqttb_acl *acl, const char *client_id, const char *username,
                     const char *topic, size_t topic_len, mqttb_acl_access access) {
  if (acl == NULL || topic == NULL || topic_len == 0) {
    return false;
  }
  bool subscribe = access == MQTTB_ACL_SUBSCRIBE;
  if (subscribe) {
    if (has_prefix(topic, topic_len, "$share/")) {
      const char *group = topic + 7;
      const char *slash = memchr(group, '/', topic_len - 7);
      if (slash == NULL || slash == group) {
        return false;
      }
      for (const char *g = group; g < slash; g++) {
        if (*g == '+' || *g == '#') {
          return false;
        }
      }
      topic_len -= (size_t)(slash + 1 - topic);
      topic = slash + 1;
      if (topic_len == 0) {
        return false;
      }
    }
    if (!valid_filter(topic, topic_len)) {
      return false;
    }
  } else if (access == MQTTB_ACL_READ || access == MQTTB_ACL_WRITE) {
    if (!valid_name(topic, topic_len) || has_prefix(topic, topic_len, "$share")) {
      return false;
    }
    if (access == MQTTB_ACL_WRITE && has_prefix(topic, topic_len, "$SYS") &&
        !is_bridge_state(topic, topic_len)) {
      return false;
    }
  } else {
    return false;
  }

  /* User and anonymous sections have no %c / %u nodes: no values needed. */
  struct who nobody = {NULL, 0, false, NULL, 0, false};
  unsigned budget = SUBSCRIBE_BUDGET;
  struct walk w = {acl,
                   topic,
                   topic_len,
                   topic[0] == '$',
                   subscribe ? (uint8_t)MQTTB_ACL_READ : (uint8_t)access,
                   SUB_NO_VAR,
                   &nobody,
                   &budget};
  uint32_t s = SECTION_ANONYMOUS;
  if (username != NULL) {
    s = user_find(acl, username, strlen(username));
  }
  if (s != 0) {
    if (refused(&w, &acl->sections[s], subscribe)) {
      return false;
    }
    if (granted(&w, &acl->sections[s], subscribe)) {
      return true;
    }
  }
  if (!acl->has_patterns) {
    return false;
  }
  /* Mosquitto: with patterns in use, a + or # in either name refuses. */
  if ((username && strpbrk(username, "+#")) || client_id == NULL || strpbrk(client_id, "+#")) {
    return false;
  }
  struct who who;
  who_init(&who, client_id, username);
  w.who = &who;
  w.variant = (who.c_ok ? 0 : SUB_NO_C) | (who.u_ok ? 0 : SUB_NO_U);
  const struct section *pat = &acl->sections[SECTION_PATTERNS];
  if (refused(&w, pat, subscribe)) {
    return false;
  }
  return granted(&w, pat, subscribe);
}
