/* SPDX-License-Identifier: MIT */
/* Store records: encoding, emitting, decoding. See store.h. */
#include "store.h"

#include <string.h>

void mqttb_store_init(mqttb_store *st, mqttb_ctx *ctx) {
  memset(st, 0, sizeof(*st));
  st->ctx = ctx;
  st->next_id = 1;
}

void mqttb_store_free(mqttb_store *st) {
  if (st->ctx)
    mqttb_mem_free(&st->ctx->mem, st->buf);
  st->buf = NULL;
  st->cap = 0;
}

/* ---------------------------------------------------------------- times */

static int64_t wall_base(const mqttb_store *st) {
  const mqttb_ctx *ctx = st->ctx;
  if (!ctx->cb.wallclock)
    return 0;
  int64_t w = ctx->cb.wallclock(ctx->user_data);
  return w > 0 && w < INT64_MAX / 1000 ? w * 1000 : 0;
}

uint64_t mqttb_store_wall(const mqttb_store *st, uint64_t t) {
  if (t == UINT64_MAX)
    return 0;
  uint64_t now = st->ctx->now;
  int64_t base = wall_base(st);
  int64_t w;
  if (t >= now)
    w = t - now > (uint64_t)(INT64_MAX - base) ? INT64_MAX : base + (int64_t)(t - now);
  else
    w = now - t > (uint64_t)base ? 1 : base - (int64_t)(now - t);
  return w > 0 ? (uint64_t)w : 1;
}

uint64_t mqttb_store_local(const mqttb_store *st, uint64_t w) {
  if (w == 0)
    return UINT64_MAX;
  uint64_t now = st->ctx->now;
  int64_t base = wall_base(st);
  if (w > (uint64_t)INT64_MAX || (int64_t)w <= base)
    return w > (uint64_t)INT64_MAX ? UINT64_MAX : now;
  uint64_t left = (uint64_t)((int64_t)w - base);
  return left >= UINT64_MAX - now ? UINT64_MAX - 1 : now + left;
}

/* ---------------------------------------------------------------- encoding */

static bool reserve_slow(mqttb_store *st, size_t n) {
  if (st->overflow)
    return false;
  if (n <= st->cap - st->len)
    return true;
  if (n > SIZE_MAX / 2 - st->len) {
    st->overflow = true;
    return false;
  }
  size_t cap = st->cap ? st->cap : 256;
  while (cap - st->len < n)
    cap *= 2;
  uint8_t *p = mqttb_mem_realloc(&st->ctx->mem, st->buf, cap);
  if (!p) {
    st->overflow = true;
    return false;
  }
  st->buf = p;
  st->cap = cap;
  return true;
}

static inline bool reserve(mqttb_store *st, size_t n) {
  if (n <= st->cap - st->len && !st->overflow)
    return true;
  return reserve_slow(st, n);
}

void mqttb_rec_begin(mqttb_store *st, uint8_t type) {
  st->len = 0;
  st->overflow = false;
  if (reserve(st, 2)) {
    st->buf[0] = type;
    st->buf[1] = MQTTB_REC_FORMAT;
    st->len = 2;
  }
}

static void put_len(mqttb_store *st, size_t n) {
  do {
    uint8_t b = n & 0x7f;
    n >>= 7;
    st->buf[st->len++] = (uint8_t)(b | (n ? 0x80 : 0));
  } while (n);
}

void mqttb_rec_bytes(mqttb_store *st, uint8_t tag, const void *p, size_t n) {
  if (!reserve(st, 1 + 10 + n))
    return;
  st->buf[st->len++] = tag;
  put_len(st, n);
  if (n)
    memcpy(st->buf + st->len, p, n);
  st->len += n;
}

void mqttb_rec_u32s(mqttb_store *st, uint8_t tag, const uint32_t *v, size_t n) {
  if (n > SIZE_MAX / 8 || !reserve(st, 1 + 10 + 4 * n))
    return;
  st->buf[st->len++] = tag;
  put_len(st, 4 * n);
  for (size_t i = 0; i < n; i++) {
    uint8_t *o = st->buf + st->len + 4 * i;
    o[0] = (uint8_t)v[i];
    o[1] = (uint8_t)(v[i] >> 8);
    o[2] = (uint8_t)(v[i] >> 16);
    o[3] = (uint8_t)(v[i] >> 24);
  }
  st->len += 4 * n;
}

void mqttb_rec_uint(mqttb_store *st, uint8_t tag, uint64_t v) {
  if (!reserve(st, 2 + 8))
    return;
  uint8_t *o = st->buf + st->len;
  size_t n = 0;
  while (v) {
    o[2 + n++] = (uint8_t)v;
    v >>= 8;
  }
  o[0] = tag;
  o[1] = (uint8_t)n; /* at most 8: one length byte */
  st->len += 2 + n;
}

void mqttb_rec_msg_fields(mqttb_store *st, const mqttb_msg *m) {
  mqttb_rec_uint(st, MQTTB_F_MSG_QOS, m->qos);
  if (m->retain)
    mqttb_rec_uint(st, MQTTB_F_MSG_RETAIN, 1);
  mqttb_rec_bytes(st, MQTTB_F_MSG_TOPIC, MQTTB_MSG_TOPIC(m), m->topic_len);
  mqttb_rec_bytes(st, MQTTB_F_MSG_PAYLOAD, MQTTB_MSG_PAYLOAD(m), m->payload_len);
  if (m->props_len)
    mqttb_rec_bytes(st, MQTTB_F_MSG_PROPS, MQTTB_MSG_PROPS(m), m->props_len);
  if (m->expiry_at != UINT64_MAX)
    mqttb_rec_uint(st, MQTTB_F_MSG_EXPIRY_AT, mqttb_store_wall(st, m->expiry_at));
  if (m->expiry_interval)
    mqttb_rec_uint(st, MQTTB_F_MSG_EXPIRY_INTERVAL, m->expiry_interval);
}

void mqttb_rec_emit(mqttb_store *st) {
  mqttb_ctx *ctx = st->ctx;
  if (st->overflow || st->len < 2) {
    st->failed++;
    /* One line per power of two keeps this from flooding the log. */
    if ((st->failed & (st->failed - 1)) == 0)
      mqttb_log(ctx, MQTTB_LOG_ERROR,
                "out of memory: a store record was lost (%llu so far); the store no longer "
                "matches the broker until its next snapshot",
                (unsigned long long)st->failed);
    return;
  }
  uint64_t seq = ++st->seq;
  MQTTB_CALLBACK(ctx, ctx->cb.store(ctx->broker, seq, st->buf, st->len, ctx->user_data));
}

int mqttb_rec_emit_to(mqttb_store *st, mqttb_record_cb cb, void *ud) {
  if (st->overflow || st->len < 2)
    return MQTTB_ERR_NOMEM;
  return cb(st->buf, st->len, ud);
}

uint64_t mqttb_store_msg_ref(mqttb_store *st, mqttb_msg *m) {
  if (m->store_refs == 0 && !st->muted) {
    /* Not in the store (or deleted from it): written again, new id. */
    m->store_id = mqttb_store_new_id(st);
    mqttb_rec_begin(st, MQTTB_REC_MSG);
    mqttb_rec_uint(st, MQTTB_F_MSG_ID, m->store_id);
    mqttb_rec_msg_fields(st, m);
    if (m->store_pending)
      mqttb_rec_uint(st, MQTTB_F_MSG_PENDING, 1);
    mqttb_rec_emit(st);
  }
  m->store_refs++;
  return m->store_id;
}

void mqttb_store_msg_unref(mqttb_store *st, mqttb_msg *m) {
  if (!st || !m || m->store_refs == 0)
    return;
  if (--m->store_refs == 0 && mqttb_store_on(st)) {
    mqttb_rec_begin(st, MQTTB_REC_MSG_DEL);
    mqttb_rec_uint(st, MQTTB_F_MSG_ID, m->store_id);
    mqttb_rec_emit(st);
  }
}

/* ---------------------------------------------------------------- decoding */

bool mqttb_rec_parse(const uint8_t *rec, size_t len, uint8_t *type,
                     mqttb_rec_field f[MQTTB_F_MAX + 1], const char **why) {
  memset(f, 0, sizeof(*f) * (MQTTB_F_MAX + 1));
  if (len < 2) {
    *why = "shorter than a record header";
    return false;
  }
  *type = rec[0];
  if (rec[1] == 0 || rec[1] > MQTTB_REC_FORMAT) {
    *why = "unknown record format version";
    return false;
  }
  size_t pos = 2;
  while (pos < len) {
    uint8_t tag = rec[pos++];
    size_t n = 0;
    unsigned shift = 0;
    for (;;) {
      if (pos >= len || shift > 28) {
        *why = "truncated field length";
        return false;
      }
      uint8_t b = rec[pos++];
      n |= (size_t)(b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80))
        break;
    }
    if (n > len - pos) {
      *why = "field longer than the record";
      return false;
    }
    if (tag == 0) {
      *why = "field tag 0";
      return false;
    }
    if (tag <= MQTTB_F_MAX) {
      if (f[tag].present) {
        *why = "repeated field";
        return false;
      }
      f[tag].p = rec + pos;
      f[tag].len = n;
      f[tag].present = true;
    }
    pos += n;
  }
  return true;
}

bool mqttb_rec_get_uint(const mqttb_rec_field *f, uint64_t *v) {
  if (f->len > 8)
    return false;
  uint64_t x = 0;
  for (size_t i = f->len; i > 0; i--)
    x = x << 8 | f->p[i - 1];
  *v = x;
  return true;
}
