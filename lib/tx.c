/* SPDX-License-Identifier: MIT */
/* The sending half of a connection. See tx.h. */
#include "tx.h"

#include <assert.h>
#include <string.h>

#include "codec.h"

/* Payloads of at most this many bytes are copied into the connection's
 * byte buffer rather than referenced: a few bytes of copying is cheaper
 * than an extra iovec. */
#define COPY_THRESHOLD 256u

void mqttb_tx_init(mqttb_tx *tx) {
  memset(tx, 0, sizeof(*tx));
}

static void held_free(mqttb_tx_hub *hub, mqttb_tx *tx) {
  struct mqttb_tx_held *h = tx->held;
  if (!h)
    return;
  for (mqttb_tx **p = &hub->held; *p; p = &(*p)->next_held) {
    if (*p == tx) {
      *p = tx->next_held;
      break;
    }
  }
  tx->next_held = NULL;
  mqttb_mem_free(&hub->ctx->mem, h->buf);
  mqttb_mem_free(&hub->ctx->mem, h->marks);
  mqttb_mem_free(&hub->ctx->mem, h);
  tx->held = NULL;
}

void mqttb_tx_free(mqttb_tx_hub *hub, mqttb_tx *tx) {
  const mqttb_mem *mem = &hub->ctx->mem;
  held_free(hub, tx);
  mqttb_outq_free(&tx->q, mem);
  struct mqttb_tx_aliases *a = tx->aliases;
  if (a) {
    for (size_t i = 0; i < a->n; i++)
      mqttb_mem_free(mem, a->topic[i]);
    mqttb_mem_free(mem, a->topic);
    mqttb_map_free(&a->by_topic, mem);
    mqttb_mem_free(mem, a);
    tx->aliases = NULL;
  }
}

void mqttb_tx_fail(mqttb_tx_hub *hub, mqttb_tx *tx, int reason) {
  if (tx->failed)
    return;
  tx->failed = reason;
  tx->next_failed = hub->failed;
  hub->failed = tx;
}

mqttb_tx *mqttb_tx_take_failed(mqttb_tx_hub *hub) {
  mqttb_tx *tx = hub->failed;
  if (tx) {
    hub->failed = tx->next_failed;
    tx->next_failed = NULL;
  }
  return tx;
}

void mqttb_tx_forget(mqttb_tx_hub *hub, mqttb_tx *tx) {
  for (mqttb_tx **p = &hub->failed; *p; p = &(*p)->next_failed) {
    if (*p == tx) {
      *p = tx->next_failed;
      tx->next_failed = NULL;
      return;
    }
  }
}

static int begin(mqttb_tx_hub *hub, mqttb_tx *tx, size_t nbytes, size_t nsegs, size_t *mark) {
  return mqttb_outq_begin(&tx->q, &hub->ctx->mem, nbytes, nsegs, mark);
}

uint8_t *mqttb_tx_begin(mqttb_tx_hub *hub, mqttb_tx *tx, size_t n, size_t *mark) {
  uint8_t *w = mqttb_outq_try_bytes(&tx->q, n, mark);
  if (w)
    return w;
  if (begin(hub, tx, n, 1, mark) != 0)
    return NULL;
  return mqttb_outq_bytes(&tx->q, n);
}

void mqttb_tx_commit(mqttb_tx_hub *hub, mqttb_tx *tx, size_t mark) {
  hub->ctx->stats.packets_sent++;
  if (mqttb_outq_commit(&tx->q, mark, hub->ctx->now) && hub->on_pending)
    hub->on_pending(tx, hub->arg);
}

/* ------------------------------------------------ held acknowledgements */

/* Where the packet is held is told to commit by this mark. */
#define HELD_MARK SIZE_MAX

static bool must_hold(const mqttb_tx_hub *hub, const mqttb_tx *tx) {
  return (tx->held && tx->held->n > 0) || (hub->store && mqttb_store_hold(hub->store));
}

/* Begin an acknowledgement of n bytes: in the output, or held. */
static uint8_t *begin_ack(mqttb_tx_hub *hub, mqttb_tx *tx, size_t n, size_t *mark) {
  if (!must_hold(hub, tx))
    return mqttb_tx_begin(hub, tx, n, mark);
  const mqttb_mem *mem = &hub->ctx->mem;
  struct mqttb_tx_held *h = tx->held;
  if (!h && !(h = tx->held = mqttb_mem_calloc(mem, 1, sizeof(*h))))
    return NULL;
  void *arr = h->marks;
  if (mqttb_mem_grow32(mem, &arr, &h->marks_cap, h->n + 1, sizeof(*h->marks)) != 0)
    return NULL;
  h->marks = arr;
  if (h->cap - h->len < n) {
    size_t cap = h->cap ? h->cap : 64;
    while (cap - h->len < n)
      cap *= 2;
    uint8_t *b = mqttb_mem_realloc(mem, h->buf, cap);
    if (!b)
      return NULL;
    h->buf = b;
    h->cap = cap;
  }
  h->reserved = n;
  *mark = HELD_MARK;
  return h->buf + h->len;
}

static void commit_ack(mqttb_tx_hub *hub, mqttb_tx *tx, size_t mark) {
  if (mark != HELD_MARK) {
    mqttb_tx_commit(hub, tx, mark);
    return;
  }
  struct mqttb_tx_held *h = tx->held;
  h->len += h->reserved;
  h->marks[h->n].seq = hub->store ? hub->store->seq : 0;
  h->marks[h->n].end = h->len;
  if (h->n++ == 0) {
    tx->next_held = hub->held;
    hub->held = tx;
  }
}

/* Move what tx holds for durable records to its output. */
static void release(mqttb_tx_hub *hub, mqttb_tx *tx) {
  struct mqttb_tx_held *h = tx->held;
  uint64_t durable = hub->store ? hub->store->durable : UINT64_MAX;
  uint32_t k = 0;
  while (k < h->n && h->marks[k].seq <= durable)
    k++;
  if (k == 0)
    return;
  size_t bytes = h->marks[k - 1].end, mark;
  uint8_t *w = mqttb_tx_ok(tx) ? mqttb_tx_begin(hub, tx, bytes, &mark) : NULL;
  if (!w && mqttb_tx_ok(tx)) {
    mqttb_tx_fail(hub, tx, MQTTB_ERR_CONN_NOMEM);
    return;
  }
  if (w) {
    memcpy(w, h->buf, bytes);
    hub->ctx->stats.packets_sent += k - 1; /* commit counts one */
    mqttb_tx_commit(hub, tx, mark);
  }
  memmove(h->buf, h->buf + bytes, h->len - bytes);
  h->len -= bytes;
  for (uint32_t i = k; i < h->n; i++) {
    h->marks[i - k].seq = h->marks[i].seq;
    h->marks[i - k].end = h->marks[i].end - bytes;
  }
  h->n -= k;
}

void mqttb_tx_release_held(mqttb_tx_hub *hub) {
  mqttb_tx *tx = hub->held;
  while (tx) {
    mqttb_tx *next = tx->next_held;
    release(hub, tx);
    if (tx->held->n == 0)
      held_free(hub, tx); /* unlinks it: an idle connection holds nothing */
    tx = next;
  }
}

/* ---------------------------------------------------------------- PUBLISH */

/* The alias for msg's topic: an existing one (*known), a new one, or 0. */
static uint16_t pick_alias(const mqttb_tx *tx, const mqttb_msg *m, bool *known) {
  *known = false;
  if (!tx->alias_max)
    return 0;
  const struct mqttb_tx_aliases *a = tx->aliases;
  if (a && a->n) {
    void *v = mqttb_map_get(&a->by_topic, MQTTB_MSG_TOPIC(m), m->topic_len);
    if (v) {
      *known = true;
      return (uint16_t)(uintptr_t)v;
    }
  }
  uint16_t used = a ? a->n : 0;
  return used < tx->alias_max ? (uint16_t)(used + 1) : 0;
}

/* Remember an outbound alias the peer has now seen. A failure only means
 * the topic is sent in full next time. */
static void alias_commit(mqttb_tx_hub *hub, mqttb_tx *tx, const mqttb_msg *m, uint16_t alias) {
  const mqttb_mem *mem = &hub->ctx->mem;
  struct mqttb_tx_aliases *a = tx->aliases;
  if (!a) {
    a = tx->aliases = mqttb_mem_calloc(mem, 1, sizeof(*a));
    if (!a)
      return;
  }
  if (!a->topic) {
    a->topic = mqttb_mem_calloc(mem, tx->alias_max, sizeof(char *));
    if (!a->topic)
      return;
  }
  char *t = mqttb_mem_malloc(mem, (size_t)m->topic_len + 1);
  if (!t)
    return;
  memcpy(t, MQTTB_MSG_TOPIC(m), m->topic_len);
  t[m->topic_len] = '\0';
  if (mqttb_map_put(&a->by_topic, mem, t, m->topic_len, (void *)(uintptr_t)alias) != 0) {
    mqttb_mem_free(mem, t);
    return;
  }
  a->topic[alias - 1] = t;
  a->n = alias;
}

int mqttb_tx_publish(mqttb_tx_hub *hub, mqttb_tx *tx, mqttb_msg *msg, uint8_t qos, bool retain,
                     const uint32_t *ids, size_t nids, bool dup, uint16_t pid) {
  mqttb_publish_out p;
  memset(&p, 0, sizeof(p));
  p.level = tx->level;
  p.dup = dup;
  p.qos = qos;
  p.retain = retain;
  p.topic.ptr = (const uint8_t *)MQTTB_MSG_TOPIC(msg);
  p.topic.len = msg->topic_len;
  p.packet_id = pid;
  p.payload_len = msg->payload_len;
  bool known = false;
  if (tx->level == 5) {
    uint64_t now = hub->ctx->now;
    if (msg->expiry_at != UINT64_MAX) {
      /* [MQTT-3.3.2-6]: the interval left, not the one received. */
      uint64_t left = msg->expiry_at > now ? msg->expiry_at - now : 0;
      p.expiry = (uint32_t)((left + 999u) / 1000u);
      p.has_expiry = true;
    }
    p.alias = pick_alias(tx, msg, &known);
    if (known)
      p.topic.len = 0; /* the alias stands for the topic */
    p.sub_ids = ids;
    p.nsub_ids = nids;
    p.props.ptr = MQTTB_MSG_PROPS(msg);
    p.props.len = msg->props_len;
  }
  size_t head;
  size_t total = mqttb_publish_out_size(&p, &head);
  /* [MQTT-3.1.2-25]: nothing larger than the peer's Maximum Packet Size. */
  if (total == 0 || (tx->max_packet && total > tx->max_packet))
    return MQTTB_ERR_PACKET_TOO_LARGE;
  bool ref_payload = msg->payload_len > COPY_THRESHOLD;
  size_t mark;
  uint8_t *w = ref_payload ? NULL : mqttb_outq_try_bytes(&tx->q, total, &mark);
  if (!w) {
    if (begin(hub, tx, ref_payload ? head : total, 2, &mark) != 0)
      return MQTTB_ERR_NOMEM;
    w = mqttb_outq_bytes(&tx->q, ref_payload ? head : total);
  }
  mqttb_encode_publish_head(w, &p);
  if (ref_payload)
    mqttb_outq_msg(&tx->q, msg, msg->payload_off, msg->payload_len);
  else if (msg->payload_len)
    memcpy(w + head, MQTTB_MSG_PAYLOAD(msg), msg->payload_len);
  if (p.alias && !known)
    alias_commit(hub, tx, msg, p.alias);
  hub->ctx->stats.publish_sent++;
  mqttb_tx_commit(hub, tx, mark);
  return 0;
}

/* ---------------------------------------------------------------- others */

static int send_bytes(mqttb_tx_hub *hub, mqttb_tx *tx, const uint8_t *bytes, size_t n) {
  size_t mark;
  uint8_t *w = mqttb_tx_begin(hub, tx, n, &mark);
  if (!w)
    return MQTTB_ERR_NOMEM;
  memcpy(w, bytes, n);
  mqttb_tx_commit(hub, tx, mark);
  return 0;
}

int mqttb_tx_ack(mqttb_tx_hub *hub, mqttb_tx *tx, uint8_t type, uint16_t pid, uint8_t reason) {
  bool v5 = tx->level == 5;
  size_t mark, n = v5 && reason ? 5 : 4;
  /* PUBREL is the broker's own flow: never held. */
  uint8_t *w =
      type == MQTTB_PKT_PUBREL ? mqttb_tx_begin(hub, tx, n, &mark) : begin_ack(hub, tx, n, &mark);
  if (!w)
    return MQTTB_ERR_NOMEM;
  size_t wrote = v5 ? mqttb_encode_ack5(w, type, pid, reason) : mqttb_encode_ack(w, type, pid);
  assert(wrote == n);
  (void)wrote;
  commit_ack(hub, tx, mark);
  return 0;
}

int mqttb_tx_connack(mqttb_tx_hub *hub, mqttb_tx *tx, bool session_present, uint8_t rc,
                     const uint8_t *props, size_t plen) {
  if (tx->level == 5) {
    size_t mark, n = mqttb_connack5_size(plen);
    uint8_t *w = mqttb_tx_begin(hub, tx, n, &mark);
    if (!w)
      return MQTTB_ERR_NOMEM;
    mqttb_encode_connack5(w, session_present, rc, props, plen);
    mqttb_tx_commit(hub, tx, mark);
    return 0;
  }
  uint8_t buf[MQTTB_CONNACK_SIZE];
  /* MQTT 3.1 has no session-present flag: the byte is reserved. */
  mqttb_connack a = {session_present && tx->level >= 4, rc};
  return send_bytes(hub, tx, buf, mqttb_encode_connack(buf, &a));
}

int mqttb_tx_ack_codes(mqttb_tx_hub *hub, mqttb_tx *tx, uint8_t type, uint16_t pid,
                       const uint8_t *codes, size_t n) {
  bool v5 = tx->level == 5;
  size_t mark, total = v5 ? mqttb_ack_codes5_size(n) : mqttb_suback_size(n);
  uint8_t *w = begin_ack(hub, tx, total, &mark);
  if (!w)
    return MQTTB_ERR_NOMEM;
  if (v5)
    mqttb_encode_ack_codes5(w, type, pid, codes, n);
  else
    mqttb_encode_suback(w, pid, codes, n);
  commit_ack(hub, tx, mark);
  return 0;
}

int mqttb_tx_reason(mqttb_tx_hub *hub, mqttb_tx *tx, uint8_t type, uint8_t reason,
                    const uint8_t *props, size_t plen) {
  size_t mark, n = mqttb_reason_props_size(plen);
  if (n == 0)
    return MQTTB_ERR_NOMEM;
  uint8_t *w = mqttb_tx_begin(hub, tx, n, &mark);
  if (!w)
    return MQTTB_ERR_NOMEM;
  mqttb_encode_reason_props(w, type, reason, props, plen);
  mqttb_tx_commit(hub, tx, mark);
  return 0;
}

int mqttb_tx_empty(mqttb_tx_hub *hub, mqttb_tx *tx, uint8_t type) {
  uint8_t buf[MQTTB_EMPTY_SIZE];
  mqttb_encode_empty(buf, type);
  return send_bytes(hub, tx, buf, sizeof(buf));
}
