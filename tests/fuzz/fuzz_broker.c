/* SPDX-License-Identifier: MIT */
/* A whole broker with several connections, driven by fuzz input: the first
 * bytes of each step pick a connection and an action (feed bytes split at a
 * chosen length, directly into the blocks of large PUBLISH packets when
 * the broker offers them, advance the clock, close the transport, reconnect, drain
 * output). Two host subscribers take part: one on '#' that republishes
 * what it gets under h/ (with its properties), one in a shared group. The
 * broker must never crash, and once every connection is gone, every block
 * it allocated must be freed.
 *
 * Every store record the broker emits is kept. At the end the records, and
 * a snapshot of the broker, are each restored into a new broker: neither
 * may have a record refused, and both must hold the same subscriptions,
 * deliveries, retained messages and inbound QoS 2 packet ids. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mqttb/mqttb.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCONN 4

typedef struct state {
  long live;
} state;

/* A list of records. */
typedef struct recs {
  uint8_t **rec;
  size_t *len;
  size_t n, cap;
} recs;

static void recs_add(recs *r, const uint8_t *rec, size_t len) {
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 64;
    r->rec = realloc(r->rec, r->cap * sizeof(*r->rec));
    r->len = realloc(r->len, r->cap * sizeof(*r->len));
    if (!r->rec || !r->len)
      abort();
  }
  r->rec[r->n] = malloc(len ? len : 1);
  if (!r->rec[r->n])
    abort();
  memcpy(r->rec[r->n], rec, len);
  r->len[r->n++] = len;
}

static void recs_free(recs *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->rec[i]);
  free(r->rec);
  free(r->len);
  memset(r, 0, sizeof(*r));
}

static void on_store(mqttb_broker *b, uint64_t seq, const uint8_t *rec, size_t len, void *ud) {
  (void)b;
  (void)seq;
  recs_add(ud, rec, len);
}

static int on_snapshot(const uint8_t *rec, size_t len, void *ud) {
  recs_add(ud, rec, len);
  return 0;
}

/* Records of each type in a snapshot (the first byte is the type). */
static void count_types(const recs *r, size_t counts[16]) {
  memset(counts, 0, 16 * sizeof(*counts));
  for (size_t i = 0; i < r->n; i++)
    counts[r->rec[i][0] & 15]++;
}

/* Restore a new broker from r (no record may be refused), snapshot it into
 * out and delete it. */
static void restore_into(const mqttb_settings *s, mqttb_mem *mem, const recs *r, uint64_t now,
                         recs *out) {
  mqttb_callbacks cb = {0};
  cb.store = on_store;
  mqttb_broker *b;
  if (mqttb_broker_new(&b, s, &cb, mem, out) != 0)
    abort();
  for (size_t i = 0; i < r->n; i++)
    if (mqttb_broker_restore(b, r->rec[i], r->len[i], now) != 0)
      abort(); /* records the broker wrote must restore */
  if (mqttb_broker_restore_end(b, now) < 0)
    abort();
  if (mqttb_broker_store_seq(b) != 0)
    abort(); /* restoring writes nothing */
  if (mqttb_broker_snapshot(b, on_snapshot, out) != 0)
    abort();
  mqttb_broker_del(b);
}

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

static void drain(mqttb_conn *c, uint64_t now) {
  mqttb_iovec iov[8];
  int n;
  while ((n = mqttb_conn_output(c, iov, 8)) > 0) {
    size_t total = 0;
    for (int i = 0; i < n; i++)
      total += iov[i].len;
    if (mqttb_conn_output_ack(c, total, now) != 0)
      abort();
  }
}

static uint64_t host_now;

static void on_host(mqttb_broker *b, const mqttb_message *msg, void *ud) {
  (void)ud;
  if (msg->topic_len >= 2 && memcmp(msg->topic, "h/", 2) == 0)
    return;
  mqttb_message m = *msg;
  m.topic = "h/echo";
  m.topic_len = 0;
  m.has_message_expiry = 0;
  mqttb_broker_publish(b, &m, host_now);
}

static void on_shared(mqttb_broker *b, const mqttb_message *msg, void *ud) {
  (void)b;
  (void)msg;
  (void)ud;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  state st = {0};
  mqttb_mem mem = {f_malloc, f_free, f_calloc, f_realloc, &st};
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.max_inflight_messages = 3;
  s.max_queued_messages = 8;
  s.max_packet_size = 4096;
  s.work_budget = 16; /* input is held back often, and fed again while held */
  mqttb_broker *b;
  recs journal = {0}, snap = {0}, from_journal = {0}, from_snap = {0};
  mqttb_callbacks cb = {0};
  cb.store = on_store;
  if (mqttb_broker_new(&b, &s, &cb, &mem, &journal) != 0)
    return 0;
  host_now = 0;
  if (mqttb_broker_subscribe(b, "#", MQTTB_SUBOPT_QOS2 | MQTTB_SUBOPT_RETAIN_AS_PUBLISHED, on_host,
                             NULL, 0) != 0 ||
      mqttb_broker_subscribe(b, "$share/g/#", MQTTB_SUBOPT_QOS1, on_shared, NULL, 0) != 0)
    abort();
  mqttb_conn *conns[NCONN] = {0};
  uint64_t now = 0;
  size_t off = 0;
  while (off + 2 <= size) {
    uint8_t op = data[off], arg = data[off + 1];
    off += 2;
    int i = op % NCONN;
    switch ((op >> 2) % 6) {
    case 0:
    case 1: { /* feed arg bytes */
      size_t n = arg;
      if (n > size - off)
        n = size - off;
      if (!conns[i] && mqttb_conn_new(&conns[i], b, now, NULL) != 0)
        break;
      /* Into the blocks of large PUBLISH packets when the broker offers
       * them (the length picks how many entries it may offer), else the
       * usual way. */
      mqttb_inbuf lent[129];
      int nlent = mqttb_conn_recv_buffers(conns[i], lent, (int)(n % 129));
      if (nlent > 0) {
        size_t d = 0;
        for (int k = 0; k < nlent && d < n; k++) {
          size_t m = n - d < lent[k].len ? n - d : lent[k].len;
          memcpy(lent[k].base, data + off + d, m);
          d += m;
        }
        if (mqttb_conn_recv_commit(conns[i], d, now) == 0 && n > d)
          mqttb_conn_recv(conns[i], data + off + d, n - d, now);
      } else {
        mqttb_conn_recv(conns[i], data + off, n, now);
      }
      off += n;
      break;
    }
    case 2: /* time passes */
      now += (uint64_t)arg * 250u;
      host_now = now;
      mqttb_broker_handle_timers(b, now);
      break;
    case 3: /* transport lost */
      if (conns[i]) {
        mqttb_conn_transport_closed(conns[i], now);
        mqttb_conn_del(conns[i], now);
        conns[i] = NULL;
      }
      break;
    case 4: /* partial drain */
      if (conns[i]) {
        size_t pending = mqttb_conn_output_pending(conns[i]);
        size_t n = pending < arg ? pending : arg;
        mqttb_conn_output_ack(conns[i], n, now);
      }
      break;
    default: /* go on with held input, then drain */
      if (conns[i] && mqttb_conn_input_pending(conns[i]))
        mqttb_conn_recv(conns[i], NULL, 0, now);
      if (conns[i])
        drain(conns[i], now);
      break;
    }
  }
  /* The state now, as a snapshot; what is recorded from here on (the
   * connections going) is not part of it. */
  if (mqttb_broker_snapshot(b, on_snapshot, &snap) != 0)
    abort();
  size_t recorded = journal.n;
  for (int i = 0; i < NCONN; i++)
    if (conns[i])
      mqttb_conn_del(conns[i], now);
  mqttb_broker_del(b);
  if (st.live != 0)
    abort();
  for (size_t i = recorded; i < journal.n; i++)
    free(journal.rec[i]);
  journal.n = recorded;
  restore_into(&s, &mem, &journal, now, &from_journal);
  restore_into(&s, &mem, &snap, now, &from_snap);
  if (st.live != 0)
    abort();
  size_t a[16], c[16];
  count_types(&from_journal, a);
  count_types(&from_snap, c);
  /* Sessions and messages may differ (a message referred to by nothing but a
   * session that went online again is not kept); what they hold may not. */
  static const int same[] = {5, 7, 10, 12};
  for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
    if (a[same[i]] != c[same[i]])
      abort();
  recs_free(&journal);
  recs_free(&snap);
  recs_free(&from_journal);
  recs_free(&from_snap);
  return 0;
}
