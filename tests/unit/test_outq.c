/* SPDX-License-Identifier: MIT */
/* The output ring (outq.h): packets, iovec export, acknowledgement,
 * message references, buffer release, growth and failure. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"
#include "unit_alloc.h"

/* A message whose payload is the bytes "0123456789abcdef...". */
static mqttb_msg *new_msg(unit_alloc *a, size_t payload_len) {
  uint8_t payload[1024];
  cr_assert(le(sz, payload_len, sizeof(payload)));
  for (size_t i = 0; i < payload_len; i++)
    payload[i] = (uint8_t) "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36];
  mqttb_msg *m =
      mqttb_msg_new(&a->mem, (const uint8_t *)"t/x", 3, payload, payload_len, NULL, 0, 1, false);
  cr_assert(not(eq(ptr, m, NULL)));
  return m;
}

/* Append one packet of bytes (copied from src) and return commit's answer. */
static bool put_bytes(mqttb_outq *q, const mqttb_mem *mem, const char *src, uint64_t now) {
  size_t n = strlen(src), mark;
  cr_assert(eq(int, mqttb_outq_begin(q, mem, n, 1, &mark), 0));
  memcpy(mqttb_outq_bytes(q, n), src, n);
  return mqttb_outq_commit(q, mark, now);
}

/* The pending bytes, flattened through the iovec export; *n their count. */
static uint8_t *flatten(const mqttb_outq *q, size_t *n) {
  int max = (int)q->seg_count + 1;
  mqttb_iovec *iov = calloc((size_t)max, sizeof(*iov));
  int cnt = mqttb_outq_iov(q, iov, max);
  cr_assert(eq(int, cnt, (int)q->seg_count));
  uint8_t *out = malloc(q->pending + 1);
  size_t len = 0;
  for (int i = 0; i < cnt; i++) {
    cr_assert(lt(sz, 0, iov[i].len), "no empty iovec entries");
    memcpy(out + len, iov[i].base, iov[i].len);
    len += iov[i].len;
  }
  free(iov);
  cr_assert(eq(sz, len, q->pending), "the iovecs add up to pending");
  *n = len;
  return out;
}

static void assert_contents(const mqttb_outq *q, const uint8_t *want, size_t n) {
  size_t got_n;
  uint8_t *got = flatten(q, &got_n);
  cr_assert(eq(sz, got_n, n));
  cr_assert(eq(int, memcmp(got, want, n), 0));
  free(got);
}

Test(outq, commit_is_true_only_from_empty_to_pending) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_outq q = {0};
  size_t mark = 99;
  /* A packet with no bytes leaves the queue empty: nothing to signal. */
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 0, 1, &mark), 0));
  cr_assert(eq(sz, mark, 0));
  cr_assert(not(mqttb_outq_commit(&q, mark, 5)));
  cr_assert(put_bytes(&q, &a.mem, "abcd", 10));
  cr_assert(eq(u64, q.since, 10));
  cr_assert(eq(sz, mqttb_outq_pending(&q), 4));
  cr_assert(not(put_bytes(&q, &a.mem, "ef", 20)), "already pending");
  cr_assert(eq(u64, q.since, 10), "since is when output became pending");
  cr_assert(eq(sz, mqttb_outq_pending(&q), 6));
  /* begin's mark is what was pending. */
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 1, 1, &mark), 0));
  cr_assert(eq(sz, mark, 6));
  *mqttb_outq_bytes(&q, 1) = 'g';
  cr_assert(not(mqttb_outq_commit(&q, mark, 30)));
  /* Partial progress updates since; a full drain makes it empty again. */
  mqttb_outq_ack(&q, &a.mem, 3, 40);
  cr_assert(eq(u64, q.since, 40));
  cr_assert(not(put_bytes(&q, &a.mem, "h", 45)));
  mqttb_outq_ack(&q, &a.mem, mqttb_outq_pending(&q), 50);
  cr_assert(eq(sz, mqttb_outq_pending(&q), 0));
  cr_assert(put_bytes(&q, &a.mem, "i", 60));
  cr_assert(eq(u64, q.since, 60));
  mqttb_outq_free(&q, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

Test(outq, iov_exports_byte_runs_and_message_slices_in_order) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_msg *m1 = new_msg(&a, 20), *m2 = new_msg(&a, 10);
  mqttb_outq q = {0};
  size_t mark;
  /* One packet: bytes, a slice of m1, bytes, a slice of m2, another slice
   * of m1 (the same message shared twice). */
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 5, 5, &mark), 0));
  memcpy(mqttb_outq_bytes(&q, 2), "AB", 2);
  mqttb_outq_msg(&q, m1, 2 + 3, 20);
  memcpy(mqttb_outq_bytes(&q, 3), "CDE", 3);
  mqttb_outq_msg(&q, m2, 2 + 3 + 4, 6);
  mqttb_outq_msg(&q, m1, 2 + 3 + 10, 5);
  cr_assert(mqttb_outq_commit(&q, mark, 1));
  cr_assert(eq(u32, m1->refs, 3));
  cr_assert(eq(u32, m2->refs, 2));
  cr_assert(eq(sz, mqttb_outq_pending(&q), 2 + 20 + 3 + 6 + 5));

  mqttb_iovec iov[8];
  cr_assert(eq(int, mqttb_outq_iov(&q, iov, 8), 5));
  cr_assert(eq(ptr, (void *)iov[0].base, q.wbuf));
  cr_assert(eq(sz, iov[0].len, 2));
  cr_assert(eq(ptr, (void *)iov[1].base, (void *)MQTTB_MSG_PAYLOAD(m1)), "a slice, not a copy");
  cr_assert(eq(sz, iov[1].len, 20));
  cr_assert(eq(ptr, (void *)iov[2].base, q.wbuf + 2));
  cr_assert(eq(sz, iov[2].len, 3));
  cr_assert(eq(ptr, (void *)iov[3].base, (void *)(MQTTB_MSG_PAYLOAD(m2) + 4)));
  cr_assert(eq(sz, iov[3].len, 6));
  cr_assert(eq(ptr, (void *)iov[4].base, (void *)(MQTTB_MSG_PAYLOAD(m1) + 10)));
  cr_assert(eq(sz, iov[4].len, 5));
  const char *want = "AB0123456789abcdefghijCDE456789abcde";
  assert_contents(&q, (const uint8_t *)want, strlen(want));

  /* iovmax limits the export to the first entries. */
  mqttb_iovec small[2];
  cr_assert(eq(int, mqttb_outq_iov(&q, small, 2), 2));
  cr_assert(eq(ptr, (void *)small[1].base, (void *)(MQTTB_MSG_PAYLOAD(m1))));
  cr_assert(eq(int, mqttb_outq_iov(&q, small, 0), 0));

  mqttb_outq_ack(&q, &a.mem, mqttb_outq_pending(&q), 2);
  mqttb_msg_unref(&a.mem, m1);
  mqttb_msg_unref(&a.mem, m2);
  cr_assert(eq(long, a.live, 0));
}

Test(outq, empty_message_slice_adds_nothing) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_msg *m = new_msg(&a, 4);
  mqttb_outq q = {0};
  size_t mark;
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 0, 1, &mark), 0));
  mqttb_outq_msg(&q, m, 5, 0);
  cr_assert(not(mqttb_outq_commit(&q, mark, 1)));
  cr_assert(eq(u32, q.seg_count, 0));
  cr_assert(eq(u32, m->refs, 1), "no reference taken for nothing");
  mqttb_outq_free(&q, &a.mem);
  mqttb_msg_unref(&a.mem, m);
  cr_assert(eq(long, a.live, 0));
}

Test(outq, consecutive_byte_appends_merge_into_one_segment) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_outq q = {0};
  put_bytes(&q, &a.mem, "hello ", 1);
  put_bytes(&q, &a.mem, "wor", 1);
  put_bytes(&q, &a.mem, "ld", 1);
  cr_assert(eq(u32, q.seg_count, 1));
  mqttb_iovec iov[4];
  cr_assert(eq(int, mqttb_outq_iov(&q, iov, 4), 1));
  cr_assert(eq(sz, iov[0].len, 11));
  cr_assert(eq(int, memcmp(iov[0].base, "hello world", 11), 0));
  /* After a message slice, bytes start a new segment. */
  mqttb_msg *m = new_msg(&a, 3);
  size_t mark;
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 2, 3, &mark), 0));
  mqttb_outq_msg(&q, m, 5, 3);
  memcpy(mqttb_outq_bytes(&q, 1), "!", 1);
  memcpy(mqttb_outq_bytes(&q, 1), "?", 1);
  mqttb_outq_commit(&q, mark, 1);
  cr_assert(eq(int, mqttb_outq_iov(&q, iov, 4), 3));
  cr_assert(eq(sz, iov[2].len, 2));
  cr_assert(eq(int, memcmp(iov[2].base, "!?", 2), 0));
  mqttb_outq_free(&q, &a.mem);
  mqttb_msg_unref(&a.mem, m);
  cr_assert(eq(long, a.live, 0));
}

Test(outq, partial_acks_cross_segment_boundaries) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_msg *m = new_msg(&a, 10);
  mqttb_outq q = {0};
  size_t mark;
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 7, 3, &mark), 0));
  memcpy(mqttb_outq_bytes(&q, 4), "HEAD", 4);
  mqttb_outq_msg(&q, m, 5, 10);
  memcpy(mqttb_outq_bytes(&q, 3), "END", 3);
  mqttb_outq_commit(&q, mark, 0);
  const char *all = "HEAD0123456789END";
  size_t total = strlen(all), done = 0;
  /* Steps that end inside a segment, exactly on a boundary, and span one. */
  const size_t steps[] = {1, 2, 1, 3, 5, 0, 2, 1, 2};
  uint32_t want_segs[] = {3, 3, 2, 2, 2, 2, 1, 1, 0};
  for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
    mqttb_outq_ack(&q, &a.mem, steps[k], 100 + k);
    done += steps[k];
    cr_assert(eq(sz, mqttb_outq_pending(&q), total - done), "step %zu", k);
    cr_assert(eq(u32, q.seg_count, want_segs[k]), "step %zu", k);
    assert_contents(&q, (const uint8_t *)all + done, total - done);
  }
  cr_assert(eq(sz, done, total));
  cr_assert(eq(u32, m->refs, 1));
  mqttb_msg_unref(&a.mem, m);
  cr_assert(eq(long, a.live, 0));
}

Test(outq, message_references_drop_as_slices_are_acknowledged) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_msg *m = new_msg(&a, 8);
  mqttb_outq q = {0};
  size_t mark;
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 2, 4, &mark), 0));
  mqttb_outq_msg(&q, m, 5, 8);
  memcpy(mqttb_outq_bytes(&q, 2), "--", 2);
  mqttb_outq_msg(&q, m, 5, 4);
  mqttb_outq_commit(&q, mark, 0);
  cr_assert(eq(u32, m->refs, 3));
  mqttb_outq_ack(&q, &a.mem, 7, 1); /* inside the first slice */
  cr_assert(eq(u32, m->refs, 3));
  mqttb_outq_ack(&q, &a.mem, 1, 1); /* the first slice is done */
  cr_assert(eq(u32, m->refs, 2));
  mqttb_outq_ack(&q, &a.mem, 2 + 3, 1);
  cr_assert(eq(u32, m->refs, 2));
  mqttb_outq_ack(&q, &a.mem, 1, 1);
  cr_assert(eq(u32, m->refs, 1), "back to the caller's reference only");
  mqttb_msg_unref(&a.mem, m);
  cr_assert(eq(long, a.live, 0));
}

Test(outq, buffers_are_freed_when_drained) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_msg *m = new_msg(&a, 300);
  mqttb_outq q = {0};
  size_t mark;
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 5, 2, &mark), 0));
  memcpy(mqttb_outq_bytes(&q, 5), "abcde", 5);
  mqttb_outq_msg(&q, m, 5, 300);
  mqttb_outq_commit(&q, mark, 0);
  cr_assert(not(eq(ptr, q.seg, NULL)));
  cr_assert(not(eq(ptr, q.wbuf, NULL)));
  cr_assert(eq(long, a.live, 3)); /* the message, wbuf, the segment ring */
  mqttb_outq_ack(&q, &a.mem, 100, 1);
  cr_assert(not(eq(ptr, q.seg, NULL)), "still pending: buffers kept");
  mqttb_outq_ack(&q, &a.mem, 205, 2);
  cr_assert(eq(ptr, q.seg, NULL));
  cr_assert(eq(ptr, q.wbuf, NULL));
  cr_assert(eq(u32, q.seg_cap, 0));
  cr_assert(eq(sz, q.wcap, 0));
  cr_assert(eq(sz, q.wlen, 0));
  cr_assert(eq(u32, q.seg_count, 0));
  cr_assert(eq(long, a.live, 1), "only the message is left");
  /* Usable again after the release. */
  cr_assert(put_bytes(&q, &a.mem, "again", 3));
  assert_contents(&q, (const uint8_t *)"again", 5);
  mqttb_outq_free(&q, &a.mem);
  cr_assert(eq(ptr, q.seg, NULL));
  cr_assert(eq(ptr, q.wbuf, NULL));
  mqttb_msg_unref(&a.mem, m);
  cr_assert(eq(long, a.live, 0));
}

/* try_bytes appends without allocating only where that extends the last
 * run of the byte buffer; elsewhere it leaves everything to begin. */
Test(outq, try_bytes_only_extends_the_last_byte_run) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_msg *m = new_msg(&a, 300);
  mqttb_outq q = {0};
  size_t mark = 7;
  cr_assert(eq(ptr, mqttb_outq_try_bytes(&q, 2, &mark), NULL), "nothing pending");
  cr_assert(eq(sz, mark, 7));
  cr_assert(put_bytes(&q, &a.mem, "ab", 1));
  long calls = a.calls;
  uint8_t *w = mqttb_outq_try_bytes(&q, 2, &mark);
  cr_assert(not(eq(ptr, w, NULL)));
  cr_assert(eq(sz, mark, 2));
  memcpy(w, "cd", 2);
  cr_assert(not(mqttb_outq_commit(&q, mark, 2)));
  cr_assert(eq(long, a.calls, calls), "no allocation");
  cr_assert(eq(u32, q.seg_count, 1));
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 0, 1, &mark), 0));
  mqttb_outq_msg(&q, m, 5, 300);
  mqttb_outq_commit(&q, mark, 3);
  cr_assert(eq(ptr, mqttb_outq_try_bytes(&q, 2, &mark), NULL), "after a message slice");
  cr_assert(put_bytes(&q, &a.mem, "ef", 4) == false);
  cr_assert(eq(ptr, mqttb_outq_try_bytes(&q, q.wcap, &mark), NULL), "no room");
  w = mqttb_outq_try_bytes(&q, 1, &mark);
  cr_assert(not(eq(ptr, w, NULL)));
  *w = 'g';
  mqttb_outq_commit(&q, mark, 5);
  uint8_t want[4 + 300 + 3];
  memcpy(want, "abcd", 4);
  memcpy(want + 4, MQTTB_MSG_DATA(m) + 5, 300);
  memcpy(want + 304, "efg", 3);
  assert_contents(&q, want, sizeof want);
  mqttb_outq_free(&q, &a.mem);
  mqttb_msg_unref(&a.mem, m);
  cr_assert(eq(long, a.live, 0));
}

/* Pending output of n packets of 100 bytes; returns the allocation calls
 * it took. */
static long burst(unit_alloc *a, mqttb_outq *q, int n) {
  long before = a->calls;
  char pkt[101];
  memset(pkt, 'x', 100);
  pkt[100] = '\0';
  for (int i = 0; i < n; i++)
    put_bytes(q, &a->mem, pkt, 1);
  return a->calls - before;
}

/* A burst after a drain starts the buffers at what the last burst grew
 * them to: one allocation each, not a doubling from nothing; after
 * smaller bursts the start shrinks again. */
Test(outq, buffers_restart_at_the_size_of_the_last_burst) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_outq q = {0};
  long first = burst(&a, &q, 100);
  cr_assert(lt(long, 3, first), "the first burst doubles up from nothing");
  size_t grown = q.wcap;
  mqttb_outq_ack(&q, &a.mem, mqttb_outq_pending(&q), 2);
  cr_assert(eq(ptr, q.wbuf, NULL), "still freed when drained");
  cr_assert(eq(long, a.live, 0));
  cr_assert(eq(long, burst(&a, &q, 100), 2), "one buffer, one segment ring");
  cr_assert(eq(sz, q.wcap, grown));
  mqttb_outq_ack(&q, &a.mem, mqttb_outq_pending(&q), 3);
  /* Bursts that use at most a quarter of it halve the start. */
  for (int i = 0; i < 20; i++) {
    burst(&a, &q, 1);
    mqttb_outq_ack(&q, &a.mem, mqttb_outq_pending(&q), 4);
  }
  burst(&a, &q, 1);
  cr_assert(le(sz, q.wcap, 4 * 100), "at most four times what a burst uses");
  mqttb_outq_free(&q, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

static uint64_t rng_state = 0x1234567887654321ull;
static uint32_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

Test(outq, ring_wraps_and_grows_while_partly_acknowledged) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_msg *m[4];
  for (int i = 0; i < 4; i++)
    m[i] = new_msg(&a, 40 + 10 * i);
  mqttb_outq q = {0};
  /* The model: every byte ever queued, and how many were acknowledged. */
  size_t model_cap = 1 << 20, queued = 0, acked = 0;
  uint8_t *model = malloc(model_cap);
  bool wrapped = false;
  uint32_t max_cap = 0;
  for (int p = 0; p < 3000; p++) {
    /* A packet: a header of 1..9 bytes, maybe a message slice, maybe a
     * trailer. The header never merges with an earlier byte run when a
     * slice came last, so the ring holds many segments. */
    size_t hlen = 1 + rng() % 9, mark;
    mqttb_msg *mm = m[rng() % 4];
    size_t off = 5 + rng() % 20, len = rng() % 3 ? 1 + rng() % 20 : 0;
    size_t tlen = rng() % 4 == 0 ? 2 : 0;
    cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, hlen + tlen, 3, &mark), 0));
    uint8_t *w = mqttb_outq_bytes(&q, hlen);
    for (size_t i = 0; i < hlen; i++)
      w[i] = model[queued++] = (uint8_t)(p + i);
    mqttb_outq_msg(&q, mm, off, len);
    memcpy(model + queued, MQTTB_MSG_DATA(mm) + off, len);
    queued += len;
    if (tlen) {
      w = mqttb_outq_bytes(&q, tlen);
      w[0] = model[queued++] = 0xEE;
      w[1] = model[queued++] = 0xFF;
    }
    bool became = mqttb_outq_commit(&q, mark, (uint64_t)p);
    cr_assert(eq(int, became, mark == 0));
    /* Acknowledge a random part, usually leaving something pending. */
    size_t pend = queued - acked;
    size_t n = rng() % 8 == 0 ? pend : (pend > 1 ? rng() % pend : 0);
    mqttb_outq_ack(&q, &a.mem, n, (uint64_t)p);
    acked += n;
    cr_assert(eq(sz, mqttb_outq_pending(&q), queued - acked));
    if (q.seg_count && q.seg_head + q.seg_count > q.seg_cap)
      wrapped = true;
    if (q.seg_cap > max_cap)
      max_cap = q.seg_cap;
    if (p % 7 == 0)
      assert_contents(&q, model + acked, queued - acked);
    cr_assert(lt(sz, queued, model_cap - 64));
  }
  cr_assert(wrapped, "the segment ring wrapped around");
  cr_assert(lt(u32, 8, max_cap), "the segment ring grew");
  assert_contents(&q, model + acked, queued - acked);
  mqttb_outq_ack(&q, &a.mem, queued - acked, 9999);
  cr_assert(eq(ptr, q.seg, NULL));
  for (int i = 0; i < 4; i++) {
    cr_assert(eq(u32, m[i]->refs, 1));
    mqttb_msg_unref(&a.mem, m[i]);
  }
  free(model);
  cr_assert(eq(long, a.live, 0));
}

Test(outq, begin_failure_leaves_an_empty_queue_empty) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_outq q = {0};
  size_t mark = 77;
  a.fail_all = true;
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 10, 1, &mark), MQTTB_ERR_NOMEM));
  cr_assert(eq(sz, mqttb_outq_pending(&q), 0));
  cr_assert(eq(u32, q.seg_count, 0));
  cr_assert(eq(ptr, q.seg, NULL));
  cr_assert(eq(ptr, q.wbuf, NULL));
  mqttb_iovec iov[2];
  cr_assert(eq(int, mqttb_outq_iov(&q, iov, 2), 0));
  unit_alloc_heal(&a);
  /* The byte buffer could be had, the segment ring not. */
  unit_alloc_fail_in(&a, 2);
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 10, 1, &mark), MQTTB_ERR_NOMEM));
  cr_assert(eq(long, a.failed, 2));
  cr_assert(eq(sz, mqttb_outq_pending(&q), 0));
  cr_assert(eq(u32, q.seg_count, 0));
  cr_assert(eq(int, mqttb_outq_iov(&q, iov, 2), 0));
  mqttb_outq_free(&q, &a.mem);
  cr_assert(eq(long, a.live, 0));
}

Test(outq, begin_failure_leaves_pending_output_unchanged) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_msg *m = new_msg(&a, 30);
  mqttb_outq q = {0};
  size_t mark;
  /* Something pending that was partly written, so a compaction of the
   * byte buffer is possible. */
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 6, 3, &mark), 0));
  memcpy(mqttb_outq_bytes(&q, 3), "abc", 3);
  mqttb_outq_msg(&q, m, 5, 30);
  memcpy(mqttb_outq_bytes(&q, 3), "xyz", 3);
  mqttb_outq_commit(&q, mark, 7);
  mqttb_outq_ack(&q, &a.mem, 2, 8);
  size_t before_n;
  uint8_t *before = flatten(&q, &before_n);
  uint32_t segs = q.seg_count;
  uint64_t since = q.since;

  a.fail_all = true;
  /* More bytes than the buffer has, and more segments than the ring. */
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 4096, 1, &mark), MQTTB_ERR_NOMEM));
  cr_assert(eq(sz, mark, before_n));
  assert_contents(&q, before, before_n);
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 0, 64, &mark), MQTTB_ERR_NOMEM));
  assert_contents(&q, before, before_n);
  cr_assert(eq(u32, q.seg_count, segs));
  cr_assert(eq(u64, q.since, since));
  cr_assert(eq(u32, m->refs, 2));
  unit_alloc_heal(&a);

  /* The queue still works: a packet after the failed ones. */
  cr_assert(not(put_bytes(&q, &a.mem, "123", 9)));
  uint8_t want[64];
  memcpy(want, before, before_n);
  memcpy(want + before_n, "123", 3);
  assert_contents(&q, want, before_n + 3);
  free(before);
  mqttb_outq_free(&q, &a.mem);
  mqttb_msg_unref(&a.mem, m);
  cr_assert(eq(long, a.live, 0));
}

Test(outq, free_unrefs_everything_pending) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_msg *m1 = new_msg(&a, 12), *m2 = new_msg(&a, 12);
  mqttb_outq q = {0};
  size_t mark;
  cr_assert(eq(int, mqttb_outq_begin(&q, &a.mem, 4, 4, &mark), 0));
  mqttb_outq_msg(&q, m1, 5, 12);
  memcpy(mqttb_outq_bytes(&q, 4), "PKT2", 4);
  mqttb_outq_msg(&q, m2, 5, 6);
  mqttb_outq_msg(&q, m1, 5, 6);
  mqttb_outq_commit(&q, mark, 0);
  mqttb_outq_ack(&q, &a.mem, 3, 0); /* partly written */
  cr_assert(eq(u32, m1->refs, 3));
  cr_assert(eq(u32, m2->refs, 2));
  mqttb_outq_free(&q, &a.mem);
  cr_assert(eq(u32, m1->refs, 1));
  cr_assert(eq(u32, m2->refs, 1));
  cr_assert(eq(sz, mqttb_outq_pending(&q), 0));
  cr_assert(eq(u32, q.seg_count, 0));
  cr_assert(eq(ptr, q.seg, NULL));
  cr_assert(eq(ptr, q.wbuf, NULL));
  cr_assert(eq(long, a.live, 2));
  mqttb_msg_unref(&a.mem, m1);
  mqttb_msg_unref(&a.mem, m2);
  cr_assert(eq(long, a.live, 0));
}
