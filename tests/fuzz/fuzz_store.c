/* SPDX-License-Identifier: MIT */
/* Store records from an untrusted source: the input is a sequence of
 * records, each preceded by its length in one byte, given to
 * mqttb_broker_restore. Whatever is refused, the broker restored from the
 * rest must be consistent: its snapshot restores into another broker with
 * no record refused, a client can resume each restored session, time can
 * run past every expiry, and every block is freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mqttb/mqttb.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct state {
  long live;
} state;

static void *f_malloc(size_t n, void *ud) {
  ((state *)ud)->live++;
  return malloc(n);
}
static void f_free(void *p, void *ud) {
  ((state *)ud)->live--;
  free(p);
}
static void *f_calloc(size_t n, size_t m, void *ud) {
  ((state *)ud)->live++;
  return calloc(n, m);
}
static void *f_realloc(void *p, size_t n, void *ud) {
  if (!p)
    ((state *)ud)->live++;
  return realloc(p, n);
}

typedef struct snap {
  uint8_t *buf; /* records, each preceded by a 4-byte length */
  size_t len, cap;
} snap;

static int on_snapshot(const uint8_t *rec, size_t len, void *ud) {
  snap *s = ud;
  if (s->cap - s->len < len + 4) {
    s->cap = (s->cap + len + 4) * 2;
    s->buf = realloc(s->buf, s->cap);
    if (!s->buf)
      abort();
  }
  uint32_t n = (uint32_t)len;
  memcpy(s->buf + s->len, &n, 4);
  memcpy(s->buf + s->len + 4, rec, len);
  s->len += len + 4;
  return 0;
}

static void on_store(mqttb_broker *b, uint64_t seq, const uint8_t *rec, size_t len, void *ud) {
  (void)b;
  (void)seq;
  (void)rec;
  (void)len;
  (void)ud;
}

/* The client id of each restored session is unknown here; a client with
 * an id taken from the input resumes whichever it names. */
static void resume(mqttb_broker *b, const uint8_t *id, size_t idlen, uint64_t now) {
  mqttb_conn *c;
  if (mqttb_conn_new(&c, b, now, NULL) != 0)
    return;
  uint8_t pkt[300];
  if (idlen > 200)
    idlen = 200;
  size_t body = 10 + 2 + idlen;
  size_t n = 0;
  pkt[n++] = 0x10;
  pkt[n++] = (uint8_t)body;
  static const uint8_t head[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x00, 0, 60};
  memcpy(pkt + n, head, sizeof(head));
  n += sizeof(head);
  pkt[n++] = 0;
  pkt[n++] = (uint8_t)idlen;
  memcpy(pkt + n, id, idlen);
  n += idlen;
  mqttb_conn_recv(c, pkt, n, now);
  mqttb_iovec iov[8];
  int k;
  while ((k = mqttb_conn_output(c, iov, 8)) > 0) {
    size_t total = 0;
    for (int i = 0; i < k; i++)
      total += iov[i].len;
    mqttb_conn_output_ack(c, total, now);
  }
  mqttb_conn_del(c, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  state st = {0};
  mqttb_mem mem = {f_malloc, f_free, f_calloc, f_realloc, &st};
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.sys_interval_ms = 0;
  mqttb_callbacks cb = {0};
  cb.store = on_store;
  mqttb_broker *b;
  if (mqttb_broker_new(&b, &s, &cb, &mem, NULL) != 0)
    return 0;
  uint64_t now = 1000;
  size_t off = 0;
  while (off < size) {
    size_t n = data[off++];
    if (n > size - off)
      n = size - off;
    int rv = mqttb_broker_restore(b, data + off, n, now);
    if (rv != 0 && rv != MQTTB_ERR_STORE_CORRUPT && rv != MQTTB_ERR_QUOTA)
      abort();
    off += n;
  }
  if (mqttb_broker_restore_end(b, now) < 0)
    abort();
  snap sn = {0};
  if (mqttb_broker_snapshot(b, on_snapshot, &sn) != 0)
    abort();
  /* The snapshot of whatever was restored restores whole. */
  mqttb_broker *b2;
  if (mqttb_broker_new(&b2, &s, &cb, &mem, NULL) != 0)
    abort();
  for (size_t p = 0; p < sn.len;) {
    uint32_t n;
    memcpy(&n, sn.buf + p, 4);
    if (mqttb_broker_restore(b2, sn.buf + p + 4, n, now) != 0)
      abort();
    p += 4 + n;
  }
  if (mqttb_broker_restore_end(b2, now) < 0)
    abort();
  free(sn.buf);
  /* Clients resume sessions named by the input's bytes, and time runs out. */
  for (size_t i = 0; i + 2 < size && i < 64; i += 8) {
    size_t idlen = data[i + 1] % 8u;
    if (idlen > size - i - 2)
      idlen = size - i - 2;
    resume(b, data + i + 2, idlen, now);
  }
  mqttb_broker_handle_timers(b, now + 4000000000000ull);
  mqttb_broker_del(b);
  mqttb_broker_del(b2);
  if (st.live != 0)
    abort();
  return 0;
}
