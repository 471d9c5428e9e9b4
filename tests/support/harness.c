/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every block carries a header so frees can be counted. */
typedef struct blk {
  size_t size;
  size_t pad;
} blk;

static bool should_fail(tb_alloc *a) {
  a->count++;
  if (a->fail_at && a->count == a->fail_at)
    return true;
  if (a->fail_after && a->count > a->fail_after)
    return true;
  return false;
}

static void *t_malloc(size_t size, void *ud) {
  tb_alloc *a = ud;
  if (should_fail(a))
    return NULL;
  blk *b = malloc(sizeof(blk) + size);
  if (!b)
    return NULL;
  b->size = size;
  a->live++;
  a->bytes += (long)size;
  return b + 1;
}

static void t_free(void *p, void *ud) {
  tb_alloc *a = ud;
  if (!p)
    return;
  a->live--;
  a->bytes -= (long)((blk *)p - 1)->size;
  free((blk *)p - 1);
}

static void *t_calloc(size_t n, size_t size, void *ud) {
  if (size && n > SIZE_MAX / size)
    return NULL;
  void *p = t_malloc(n * size, ud);
  if (p)
    memset(p, 0, n * size);
  return p;
}

static void *t_realloc(void *p, size_t size, void *ud) {
  tb_alloc *a = ud;
  if (!p)
    return t_malloc(size, ud);
  if (should_fail(a))
    return NULL;
  size_t old = ((blk *)p - 1)->size;
  blk *b = realloc((blk *)p - 1, sizeof(blk) + size);
  if (!b)
    return NULL;
  a->bytes += (long)size - (long)old;
  b->size = size;
  return b + 1;
}

void tb_alloc_init(tb_alloc *a, mqttb_mem *mem) {
  memset(a, 0, sizeof(*a));
  mem->malloc = t_malloc;
  mem->free = t_free;
  mem->calloc = t_calloc;
  mem->realloc = t_realloc;
  mem->user_data = a;
}

static void cb_want_write(mqttb_conn *conn, void *ud) {
  tb *bed = ud;
  tc *c = mqttb_conn_get_user_data(conn);
  if (bed->want_write_hook)
    bed->want_write_hook(bed, c);
  if (!c)
    return; /* a connection a test made without the harness */
  c->want_write++;
}

static void cb_on_close(mqttb_conn *conn, int reason, void *ud) {
  tb *bed = ud;
  tc *c = mqttb_conn_get_user_data(conn);
  bed->closes++;
  cr_assert(mqttb_conn_is_closing(conn), "on_close before the connection counts as closing");
  if (bed->on_close_hook)
    bed->on_close_hook(bed, c, reason);
  if (!c)
    return;
  cr_assert(not(c->closed), "on_close called twice");
  c->closed = true;
  c->close_reason = reason;
}

static void cb_on_connect(mqttb_conn *conn, void *ud) {
  (void)ud;
  tc *c = mqttb_conn_get_user_data(conn);
  c->connected++;
}

static int cb_authenticate(mqttb_conn *conn, const mqttb_auth_request *req, void *ud) {
  (void)conn;
  tb *bed = ud;
  return bed->authenticate ? bed->authenticate(req) : 0;
}

static int cb_authorize(mqttb_conn *conn, mqttb_access access, const char *topic, size_t len,
                        int qos, int retain, void *ud) {
  (void)conn;
  (void)qos;
  (void)retain;
  tb *bed = ud;
  return bed->authorize ? bed->authorize(access, topic, len) : 0;
}

static void cb_log(mqttb_broker *b, mqttb_log_level level, const char *msg, void *ud) {
  (void)b;
  tb *bed = ud;
  bed->logs[level]++;
  snprintf(bed->last_log, sizeof(bed->last_log), "%s", msg);
  if (getenv("MQTTB_TEST_LOG"))
    fprintf(stderr, "log[%d]: %s\n", (int)level, msg);
}

static int64_t cb_wallclock(void *ud) {
  return ((tb *)ud)->wall;
}

static void cb_store(mqttb_broker *b, uint64_t seq, const uint8_t *rec, size_t len, void *ud) {
  tb *bed = ud;
  (void)b;
  cr_assert(eq(u64, seq, bed->last_seq + 1), "store records numbered in order");
  bed->last_seq = seq;
  if (bed->nrecords == bed->records_cap) {
    bed->records_cap = bed->records_cap ? bed->records_cap * 2 : 64;
    bed->records = realloc(bed->records, bed->records_cap * sizeof(*bed->records));
    cr_assert(not(eq(ptr, bed->records, NULL)));
  }
  struct tb_record *r = &bed->records[bed->nrecords++];
  r->bytes = malloc(len ? len : 1);
  cr_assert(not(eq(ptr, r->bytes, NULL)));
  memcpy(r->bytes, rec, len);
  r->len = len;
}

static void records_free(struct tb_record *r, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(r[i].bytes);
  free(r);
}

static uint64_t cb_heap_usage(void *ud) {
  return (uint64_t)((tb *)ud)->alloc.bytes;
}

tb *tb_new(const mqttb_settings *settings) {
  tb *bed = calloc(1, sizeof(*bed));
  cr_assert(not(eq(ptr, bed, NULL)));
  if (settings)
    bed->settings = *settings;
  else {
    mqttb_settings_default(&bed->settings);
    /* The $SYS tree adds retained messages; tests that want it ask. */
    bed->settings.sys_interval_ms = 0;
  }
  tb_alloc_init(&bed->alloc, &bed->mem);
  bed->cb.want_write = cb_want_write;
  bed->cb.on_close = cb_on_close;
  bed->cb.on_connect = cb_on_connect;
  bed->cb.authenticate = cb_authenticate;
  bed->cb.authorize = cb_authorize;
  bed->cb.log = cb_log;
  bed->cb.wallclock = cb_wallclock;
  bed->cb.heap_usage = cb_heap_usage;
  bed->cb.store = cb_store;
  bed->wall = 1795620000; /* 2026-11-25T15:20:00Z */
  bed->now = 1000;
  int rv = mqttb_broker_new(&bed->broker, &bed->settings, &bed->cb, &bed->mem, bed);
  cr_assert(eq(int, rv, MQTTB_OK));
  return bed;
}

void tb_del(tb *bed) {
  while (bed->clients)
    tc_del(bed->clients);
  mqttb_broker_del(bed->broker);
  cr_assert(eq(long, bed->alloc.live, 0), "leaked %ld blocks", bed->alloc.live);
  records_free(bed->records, bed->nrecords);
  free(bed);
}

int tb_restore_from(tb *bed, const struct tb_record *recs, size_t n, int *refused) {
  cr_assert(eq(ptr, bed->broker, NULL));
  cr_assert(eq(long, bed->alloc.live, 0), "leaked %ld blocks", bed->alloc.live);
  bed->last_seq = 0;
  int rv = mqttb_broker_new(&bed->broker, &bed->settings, &bed->cb, &bed->mem, bed);
  cr_assert(eq(int, rv, MQTTB_OK));
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    rv = mqttb_broker_restore(bed->broker, recs[i].bytes, recs[i].len, bed->now);
    cr_assert(rv == MQTTB_OK || rv == MQTTB_ERR_STORE_CORRUPT, "restore: %d", rv);
    bad += rv != MQTTB_OK;
  }
  if (refused)
    *refused = bad;
  cr_assert(eq(u64, mqttb_broker_store_seq(bed->broker), 0), "restoring emits no records");
  return mqttb_broker_restore_end(bed->broker, bed->now);
}

int tb_restart(tb *bed, int *refused) {
  struct tb_record *recs = bed->records;
  size_t n = bed->nrecords;
  /* What the old broker records as it goes is not part of the store. */
  bed->records = NULL;
  bed->nrecords = bed->records_cap = 0;
  while (bed->clients)
    tc_del(bed->clients);
  mqttb_broker_del(bed->broker);
  bed->broker = NULL;
  records_free(bed->records, bed->nrecords);
  bed->records = recs;
  bed->nrecords = bed->records_cap = n;
  return tb_restore_from(bed, recs, n, refused);
}

static int snap_cb(const uint8_t *rec, size_t len, void *ud) {
  tb *bed = ud;
  uint64_t seq = bed->last_seq;
  cb_store(NULL, seq + 1, rec, len, bed);
  bed->last_seq = seq;
  return 0;
}

void tb_compact(tb *bed) {
  records_free(bed->records, bed->nrecords);
  bed->records = NULL;
  bed->nrecords = bed->records_cap = 0;
  cr_assert(eq(int, mqttb_broker_snapshot(bed->broker, snap_cb, bed), MQTTB_OK));
}

void tb_advance(tb *bed, uint64_t ms) {
  bed->now += ms;
  while (mqttb_broker_next_deadline(bed->broker) <= bed->now)
    mqttb_broker_handle_timers(bed->broker, bed->now);
}

tc *tc_new(tb *bed) {
  tc *c = calloc(1, sizeof(*c));
  cr_assert(not(eq(ptr, c, NULL)));
  c->bed = bed;
  int rv = mqttb_conn_new(&c->conn, bed->broker, bed->now, c);
  cr_assert(eq(int, rv, MQTTB_OK));
  c->next = bed->clients;
  bed->clients = c;
  return c;
}

void tc_del(tc *c) {
  tb *bed = c->bed;
  tc **pp = &bed->clients;
  while (*pp != c)
    pp = &(*pp)->next;
  *pp = c->next;
  if (c->conn)
    mqttb_conn_del(c->conn, bed->now);
  free(c->in);
  free(c->body);
  free(c);
}

int tc_send(tc *c, const void *bytes, size_t len) {
  /* Input held back by the work budget is processed at once here, as if
   * the embedder served nobody else in between. */
  int rv = mqttb_conn_recv(c->conn, bytes, len, c->bed->now);
  while (rv == 0 && mqttb_conn_input_pending(c->conn) > 0)
    rv = mqttb_conn_recv(c->conn, NULL, 0, c->bed->now);
  return rv;
}

int tc_send_once(tc *c, const void *bytes, size_t len) {
  return mqttb_conn_recv(c->conn, bytes, len, c->bed->now);
}

int tc_send_split(tc *c, const void *bytes, size_t len, size_t chunk) {
  const uint8_t *p = bytes;
  int rv = 0;
  for (size_t off = 0; off < len && rv == 0; off += chunk) {
    size_t n = len - off < chunk ? len - off : chunk;
    rv = tc_send(c, p + off, n);
  }
  return rv;
}

void tc_drain(tc *c) {
  if (!c->conn)
    return;
  mqttb_iovec iov[16];
  int n;
  while ((n = mqttb_conn_output(c->conn, iov, 16)) > 0) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
      if (c->inlen + iov[i].len > c->incap) {
        c->incap = (c->inlen + iov[i].len) * 2;
        c->in = realloc(c->in, c->incap);
        cr_assert(not(eq(ptr, c->in, NULL)));
      }
      memcpy(c->in + c->inlen, iov[i].base, iov[i].len);
      c->inlen += iov[i].len;
      total += iov[i].len;
    }
    cr_assert(eq(int, mqttb_conn_output_ack(c->conn, total, c->bed->now), 0));
  }
  cr_assert(eq(sz, mqttb_conn_output_pending(c->conn), 0));
}

bool tc_read(tc *c) {
  tc_drain(c);
  if (c->inlen == 0)
    return false;
  int r = mqttb_codec_frame(c->in, c->inlen, UINT32_MAX, &c->f);
  cr_assert(eq(int, r, MQTTB_CODEC_OK), "broker sent a truncated or bad frame");
  size_t total = c->f.hdr_len + c->f.remaining;
  cr_assert(le(sz, total, c->inlen), "broker sent a truncated frame");
  if (c->f.remaining > c->bodycap) {
    c->bodycap = c->f.remaining;
    c->body = realloc(c->body, c->bodycap);
  }
  if (c->f.remaining)
    memcpy(c->body, c->in + c->f.hdr_len, c->f.remaining);
  memmove(c->in, c->in + total, c->inlen - total);
  c->inlen -= total;
  return true;
}

bool tc_read_type(tc *c, uint8_t type) {
  /* Packets of other types stay queued, in order, ahead of the rest. */
  uint8_t *skipped = NULL;
  size_t nskipped = 0;
  bool found = false;
  while (tc_read(c)) {
    if (c->f.type == type) {
      found = true;
      break;
    }
    uint8_t hdr[5];
    size_t hlen = 1 + mqttb_codec_varint_encode(hdr + 1, c->f.remaining);
    hdr[0] = (uint8_t)(c->f.type << 4 | c->f.flags);
    skipped = realloc(skipped, nskipped + hlen + c->f.remaining);
    memcpy(skipped + nskipped, hdr, hlen);
    memcpy(skipped + nskipped + hlen, c->body, c->f.remaining);
    nskipped += hlen + c->f.remaining;
  }
  if (nskipped) {
    if (c->inlen + nskipped > c->incap) {
      c->incap = (c->inlen + nskipped) * 2;
      c->in = realloc(c->in, c->incap);
    }
    memmove(c->in + nskipped, c->in, c->inlen);
    memcpy(c->in, skipped, nskipped);
    c->inlen += nskipped;
  }
  free(skipped);
  return found;
}

bool tc_quiet(tc *c) {
  tc_drain(c);
  return c->inlen == 0;
}

static void send_buf(tc *c, const uint8_t *buf, size_t n) {
  tc_send(c, buf, n);
}

int tc_connect(tc *c, const tc_connect_opts *o, bool *session_present) {
  mqttb_connect ck;
  memset(&ck, 0, sizeof(ck));
  ck.level = o->level ? o->level : 4;
  const char *pname = ck.level == 3 ? "MQIsdp" : "MQTT";
  ck.protocol_name.ptr = (const uint8_t *)pname;
  ck.protocol_name.len = strlen(pname);
  ck.clean = o->clean;
  ck.keepalive = o->keepalive;
  const char *id = o->client_id ? o->client_id : "";
  ck.client_id.ptr = (const uint8_t *)id;
  ck.client_id.len = strlen(id);
  if (o->will_topic) {
    ck.will = true;
    ck.will_topic.ptr = (const uint8_t *)o->will_topic;
    ck.will_topic.len = strlen(o->will_topic);
    ck.will_payload.ptr = (const uint8_t *)(o->will_payload ? o->will_payload : "");
    ck.will_payload.len = o->will_payload ? strlen(o->will_payload) : 0;
    ck.will_qos = o->will_qos;
    ck.will_retain = o->will_retain;
  }
  if (o->username) {
    ck.has_username = true;
    ck.username.ptr = (const uint8_t *)o->username;
    ck.username.len = strlen(o->username);
  }
  if (o->password) {
    ck.has_password = true;
    ck.password.ptr = (const uint8_t *)o->password;
    ck.password.len = strlen(o->password);
  }
  size_t n = mqttb_connect_size(&ck);
  uint8_t *buf = malloc(n);
  cr_assert(eq(sz, mqttb_encode_connect(buf, &ck), n));
  send_buf(c, buf, n);
  free(buf);
  if (!tc_read(c) || c->f.type != MQTTB_PKT_CONNACK)
    return -1;
  mqttb_connack a;
  cr_assert(eq(int, mqttb_decode_connack(c->body, c->f.remaining, &a), MQTTB_CODEC_OK));
  if (session_present)
    *session_present = a.session_present;
  return a.rc;
}

tc *tc_open(tb *bed, const char *client_id, bool clean) {
  tc *c = tc_new(bed);
  tc_connect_opts o = {.client_id = client_id, .clean = clean, .keepalive = 60};
  cr_assert(eq(int, tc_connect(c, &o, NULL), 0), "CONNECT of %s refused", client_id);
  return c;
}

static uint16_t next_pid = 1;

static uint16_t pid_next(void) {
  uint16_t p = next_pid++;
  if (next_pid == 0)
    next_pid = 1;
  return p;
}

int tc_subscribe(tc *c, const char *filter, uint8_t qos) {
  mqttb_slice f = {(const uint8_t *)filter, strlen(filter)};
  uint16_t pid = pid_next();
  uint8_t buf[1024];
  size_t n = mqttb_subscribe_size(&f, 1);
  cr_assert(le(sz, n, sizeof(buf)));
  mqttb_encode_subscribe(buf, pid, &f, &qos, 1);
  send_buf(c, buf, n);
  if (!tc_read_type(c, MQTTB_PKT_SUBACK))
    return -1;
  uint16_t rpid;
  mqttb_slice codes;
  cr_assert(eq(int, mqttb_decode_suback(c->body, c->f.remaining, &rpid, &codes), 0));
  cr_assert(eq(u16, rpid, pid));
  cr_assert(eq(sz, codes.len, 1));
  return codes.ptr[0];
}

int tc_unsubscribe(tc *c, const char *filter) {
  mqttb_slice f = {(const uint8_t *)filter, strlen(filter)};
  uint16_t pid = pid_next();
  uint8_t buf[1024];
  size_t n = mqttb_unsubscribe_size(&f, 1);
  mqttb_encode_unsubscribe(buf, pid, &f, 1);
  send_buf(c, buf, n);
  if (!tc_read(c) || c->f.type != MQTTB_PKT_UNSUBACK)
    return -1;
  uint16_t rpid;
  cr_assert(eq(int, mqttb_decode_ack(c->body, c->f.remaining, &rpid), 0));
  cr_assert(eq(u16, rpid, pid));
  return 0;
}

void tc_publish_raw(tc *c, const char *topic, const void *payload, size_t plen, uint8_t qos,
                    bool retain, bool dup, uint16_t pid) {
  mqttb_publish p = {.dup = dup,
                     .qos = qos,
                     .retain = retain,
                     .topic = {(const uint8_t *)topic, strlen(topic)},
                     .packet_id = pid,
                     .payload = {payload, plen}};
  size_t n = mqttb_publish_size(&p);
  uint8_t *buf = malloc(n);
  cr_assert(eq(sz, mqttb_encode_publish(buf, &p), n));
  send_buf(c, buf, n);
  free(buf);
}

bool tc_publish(tc *c, const char *topic, const char *payload, uint8_t qos, bool retain) {
  uint16_t pid = qos ? pid_next() : 0;
  tc_publish_raw(c, topic, payload, strlen(payload), qos, retain, false, pid);
  if (qos == 0)
    return true;
  uint16_t rpid;
  if (!tc_read(c))
    return false;
  if (qos == 1)
    return c->f.type == MQTTB_PKT_PUBACK && mqttb_decode_ack(c->body, c->f.remaining, &rpid) == 0 &&
           rpid == pid;
  if (c->f.type != MQTTB_PKT_PUBREC || mqttb_decode_ack(c->body, c->f.remaining, &rpid) != 0 ||
      rpid != pid)
    return false;
  tc_send_ack(c, MQTTB_PKT_PUBREL, pid);
  return tc_read(c) && c->f.type == MQTTB_PKT_PUBCOMP &&
         mqttb_decode_ack(c->body, c->f.remaining, &rpid) == 0 && rpid == pid;
}

bool tc_expect_publish(tc *c, mqttb_publish *p) {
  if (!tc_read(c) || c->f.type != MQTTB_PKT_PUBLISH)
    return false;
  return mqttb_decode_publish(c->f.flags, c->body, c->f.remaining, p) == MQTTB_CODEC_OK;
}

void tc_send_ack(tc *c, uint8_t type, uint16_t pid) {
  uint8_t buf[MQTTB_ACK_SIZE];
  size_t n = mqttb_encode_ack(buf, type, pid);
  send_buf(c, buf, n);
}

void tc_ack(tc *c, const mqttb_publish *p) {
  if (p->qos == 1) {
    tc_send_ack(c, MQTTB_PKT_PUBACK, p->packet_id);
  } else if (p->qos == 2) {
    uint16_t pid = p->packet_id;
    tc_send_ack(c, MQTTB_PKT_PUBREC, pid);
    cr_assert(tc_read(c) && c->f.type == MQTTB_PKT_PUBREL, "expected PUBREL");
    tc_send_ack(c, MQTTB_PKT_PUBCOMP, pid);
  }
}

void tc_disconnect(tc *c) {
  uint8_t buf[2] = {0xE0, 0x00};
  send_buf(c, buf, 2);
}

void tc_drop(tc *c) {
  mqttb_conn_transport_closed(c->conn, c->bed->now);
}

bool slice_eq(mqttb_slice s, const char *str) {
  size_t n = strlen(str);
  return s.len == n && (n == 0 || memcmp(s.ptr, str, n) == 0);
}
