/* SPDX-License-Identifier: MIT */
/* A connection's pending output. See outq.h. */
#include "outq.h"

#include <string.h>

/* seg_cap is 0 or a power of two. */
static mqttb_oseg *seg_at(const mqttb_outq *q, uint32_t i) {
  return &q->seg[(q->seg_head + i) & (q->seg_cap - 1)];
}

/* Starting capacities remembered across a release are at most these. */
#define WBITS_MAX 10 /* 64 KiB of bytes */
#define SBITS_MAX 7  /* 1024 segments */

static int seg_reserve(mqttb_outq *q, const mqttb_mem *mem, size_t nsegs) {
  if ((size_t)q->seg_count + nsegs <= q->seg_cap)
    return 0;
  size_t ncap = q->seg_cap ? (size_t)q->seg_cap * 2 : (size_t)8 << q->sbits;
  while (ncap < (size_t)q->seg_count + nsegs)
    ncap *= 2;
  if (ncap > UINT32_MAX)
    return MQTTB_ERR_NOMEM;
  mqttb_oseg *n = mqttb_mem_malloc(mem, ncap * sizeof(*n));
  if (!n)
    return MQTTB_ERR_NOMEM;
  for (uint32_t i = 0; i < q->seg_count; i++)
    n[i] = *seg_at(q, i);
  mqttb_mem_free(mem, q->seg);
  q->seg = n;
  q->seg_cap = (uint32_t)ncap;
  q->seg_head = 0;
  return 0;
}

/* Move the still-referenced tail of wbuf to its start. */
static void wbuf_compact(mqttb_outq *q) {
  size_t first = SIZE_MAX;
  for (uint32_t i = 0; i < q->seg_count; i++) {
    mqttb_oseg *s = seg_at(q, i);
    if (!s->msg) {
      first = s->off;
      break;
    }
  }
  if (first == SIZE_MAX) {
    q->wlen = 0;
    return;
  }
  if (first == 0)
    return;
  memmove(q->wbuf, q->wbuf + first, q->wlen - first);
  q->wlen -= first;
  for (uint32_t i = 0; i < q->seg_count; i++) {
    mqttb_oseg *s = seg_at(q, i);
    if (!s->msg)
      s->off -= first;
  }
}

int mqttb_outq_begin(mqttb_outq *q, const mqttb_mem *mem, size_t nbytes, size_t nsegs,
                     size_t *mark) {
  *mark = q->pending;
  if (q->wlen + nbytes > q->wcap) {
    wbuf_compact(q);
    if (q->wlen + nbytes > q->wcap) {
      size_t need = q->wlen + nbytes, first = (size_t)64 << q->wbits;
      void *arr = q->wbuf;
      if (mqttb_mem_grow(mem, &arr, &q->wcap, !q->wcap && need < first ? first : need, 1) != 0)
        return MQTTB_ERR_NOMEM;
      q->wbuf = arr;
    }
  }
  return seg_reserve(q, mem, nsegs);
}

uint8_t *mqttb_outq_bytes(mqttb_outq *q, size_t n) {
  mqttb_oseg *last = q->seg_count ? seg_at(q, q->seg_count - 1) : NULL;
  if (last && !last->msg && last->off + last->len == q->wlen) {
    last->len += n;
  } else {
    mqttb_oseg *s = seg_at(q, q->seg_count);
    s->msg = NULL;
    s->off = q->wlen;
    s->len = n;
    q->seg_count++;
  }
  uint8_t *p = q->wbuf + q->wlen;
  q->wlen += n;
  q->pending += n;
  return p;
}

void mqttb_outq_msg(mqttb_outq *q, mqttb_msg *m, size_t off, size_t len) {
  if (len == 0)
    return;
  mqttb_oseg *s = seg_at(q, q->seg_count);
  s->msg = mqttb_msg_ref(m);
  s->off = off;
  s->len = len;
  q->seg_count++;
  q->pending += len;
}

int mqttb_outq_iov(const mqttb_outq *q, mqttb_iovec *iov, int iovmax) {
  int n = 0;
  for (uint32_t i = 0; i < q->seg_count && n < iovmax; i++) {
    const mqttb_oseg *s = seg_at(q, i);
    iov[n].base = s->msg ? MQTTB_MSG_DATA(s->msg) + s->off : q->wbuf + s->off;
    iov[n].len = s->len;
    n++;
  }
  return n;
}

/* The log2 capacity (in units) to start at next time, after a burst that
 * ended at cap (a power of two, or 0) from a start at unit << bits: what
 * it grew to, or half the start when it used at most a quarter of it. */
static uint8_t next_bits(size_t cap, size_t used, size_t unit, uint8_t bits, uint8_t max) {
  if (cap > (unit << bits)) {
    while (bits < max && (unit << bits) < cap)
      bits++;
  } else if (bits > 0 && used <= (unit << bits) / 4) {
    bits--;
  }
  return bits;
}

static void release(mqttb_outq *q, const mqttb_mem *mem) {
  /* Drained: give the buffers back, so that idle connections cost only
   * their state. */
  /* wlen is the most the burst held at once unless it was compacted
   * (then it filled the buffer, and grows it next time if need be). */
  q->wbits = next_bits(q->wcap, q->wlen, 64, q->wbits, WBITS_MAX);
  q->sbits = next_bits(q->seg_cap, 0, 8, q->sbits, SBITS_MAX);
  mqttb_mem_free(mem, q->seg);
  mqttb_mem_free(mem, q->wbuf);
  q->seg = NULL;
  q->wbuf = NULL;
  q->seg_cap = 0;
  q->wcap = 0;
  q->seg_head = 0;
  q->wlen = 0;
}

void mqttb_outq_ack(mqttb_outq *q, const mqttb_mem *mem, size_t nbytes, uint64_t now) {
  if (nbytes)
    q->since = now; /* progress */
  q->pending -= nbytes;
  while (nbytes > 0) {
    mqttb_oseg *s = &q->seg[q->seg_head];
    if (nbytes < s->len) {
      s->off += nbytes;
      s->len -= nbytes;
      break;
    }
    nbytes -= s->len;
    mqttb_msg_unref(mem, s->msg);
    q->seg_head = (q->seg_head + 1) & (q->seg_cap - 1);
    q->seg_count--;
  }
  if (q->seg_count == 0)
    release(q, mem);
}

void mqttb_outq_free(mqttb_outq *q, const mqttb_mem *mem) {
  for (uint32_t i = 0; i < q->seg_count; i++)
    mqttb_msg_unref(mem, seg_at(q, i)->msg);
  q->seg_count = 0;
  q->pending = 0;
  release(q, mem);
}
