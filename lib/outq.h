/* SPDX-License-Identifier: MIT */
/*
 * outq: a connection's pending output. A ring of segments, each either a
 * slice of a shared message (payloads are referenced, never copied) or a
 * run of the connection's byte buffer (headers, acknowledgements, small
 * messages). Exported as an iovec array, consumed by acknowledgement;
 * buffers are freed once drained, so an idle connection holds none.
 *
 * A packet is added between one begin (which reserves every byte and
 * segment it needs, so appends cannot fail half-way) and one commit (which
 * tells whether output went from empty to pending).
 */
#ifndef MQTTB_OUTQ_H
#define MQTTB_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mqttb/mqttb.h>

#include "msg.h"

/* Bytes of a shared message, or of wbuf when msg is NULL. */
typedef struct mqttb_oseg {
  mqttb_msg *msg;
  size_t off;
  size_t len;
} mqttb_oseg;

/* Fields belong to this module. */
typedef struct mqttb_outq {
  mqttb_oseg *seg;
  uint32_t seg_head, seg_count, seg_cap;
  /* The capacities (log2 over the smallest) the buffers start at when
   * output becomes pending again after they were freed: what the last
   * burst grew them to, so that a busy connection allocates each buffer
   * once per burst rather than doubling it up again from nothing; halved
   * after a burst that used at most a quarter of it. */
  uint8_t wbits, sbits;
  uint8_t *wbuf;
  size_t wlen, wcap;
  size_t pending; /* bytes in all segments */
  /* When output last went from empty to pending, or last made progress. */
  uint64_t since;
} mqttb_outq;

/* Start a packet of at most nbytes of buffer and nsegs segments; *mark
 * remembers what was pending. 0 or MQTTB_ERR_NOMEM (nothing changed). */
int mqttb_outq_begin(mqttb_outq *q, const mqttb_mem *mem, size_t nbytes, size_t nsegs,
                     size_t *mark);
/* Append n buffer bytes (reserved by begin); returns where to write them. */
uint8_t *mqttb_outq_bytes(mqttb_outq *q, size_t n);
/* Append a slice of a shared message (reserved by begin; takes a
 * reference). */
void mqttb_outq_msg(mqttb_outq *q, mqttb_msg *m, size_t off, size_t len);
/* End the packet. True when the output went from empty to pending (then
 * since = now). */
static inline bool mqttb_outq_commit(mqttb_outq *q, size_t mark, uint64_t now) {
  if (mark == 0 && q->pending > 0) {
    q->since = now;
    return true;
  }
  return false;
}

/* begin and bytes in one, for a packet of n bytes written at once, where
 * that needs no allocation and no new segment: output is pending, its last
 * segment ends where the byte buffer does, and the buffer has room. Returns
 * where to write them (then commit as after begin), or NULL when the
 * caller must go through begin. */
static inline uint8_t *mqttb_outq_try_bytes(mqttb_outq *q, size_t n, size_t *mark) {
  if (q->seg_count == 0 || n > q->wcap - q->wlen)
    return NULL;
  mqttb_oseg *last = &q->seg[(q->seg_head + q->seg_count - 1) & (q->seg_cap - 1)];
  if (last->msg || last->off + last->len != q->wlen)
    return NULL;
  *mark = q->pending;
  uint8_t *p = q->wbuf + q->wlen;
  last->len += n;
  q->wlen += n;
  q->pending += n;
  return p;
}

static inline size_t mqttb_outq_pending(const mqttb_outq *q) {
  return q->pending;
}
/* Fill up to iovmax entries with the pending bytes, in order. */
int mqttb_outq_iov(const mqttb_outq *q, mqttb_iovec *iov, int iovmax);
/* nbytes (at most pending) were written. */
void mqttb_outq_ack(mqttb_outq *q, const mqttb_mem *mem, size_t nbytes, uint64_t now);
/* Drop everything pending and free the buffers. */
void mqttb_outq_free(mqttb_outq *q, const mqttb_mem *mem);

#endif /* MQTTB_OUTQ_H */
