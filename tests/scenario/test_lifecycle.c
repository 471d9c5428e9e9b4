/* SPDX-License-Identifier: MIT */
/* One connection lifecycle: on_close exactly once whatever closed the
 * connection, mqttb_conn_is_closing, the shutdown sequence, what callbacks
 * may not call, and the embedding helpers (mqttb_broker_timeout,
 * mqttb_iovec as struct iovec, assigned identifiers). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "harness.h"
#include "v5.h"

static tb *bed;

static void setup(void) {
  bed = tb_new(NULL);
}

static void teardown(void) {
  tb_del(bed);
}

TestSuite(lifecycle, .init = setup, .fini = teardown);

Test(lifecycle, on_close_once_when_the_broker_closes) {
  tc *a = tc_open(bed, "a", true);
  cr_assert(eq(int, mqttb_conn_is_closing(a->conn), 0));
  static const uint8_t junk[] = {0xF0, 0x00}; /* reserved packet type */
  cr_assert(eq(int, tc_send(a, junk, sizeof(junk)), MQTTB_ERR_PROTOCOL));
  cr_assert(a->closed);
  cr_assert(eq(int, a->close_reason, MQTTB_ERR_PROTOCOL));
  cr_assert(eq(int, mqttb_conn_is_closing(a->conn), 1));
  /* Reporting the transport gone and deleting add no second call (the
   * harness fails a second on_close). */
  cr_assert(eq(int, mqttb_conn_transport_closed(a->conn, bed->now), MQTTB_OK));
  tc_del(a);
  cr_assert(eq(int, bed->closes, 1));
}

Test(lifecycle, on_close_once_when_the_transport_goes) {
  tc *a = tc_open(bed, "a", true);
  cr_assert(eq(int, mqttb_conn_transport_closed(a->conn, bed->now), MQTTB_OK));
  cr_assert(a->closed);
  cr_assert(eq(int, a->close_reason, MQTTB_ERR_TRANSPORT_CLOSED));
  cr_assert(eq(int, mqttb_conn_is_closing(a->conn), 1));
  cr_assert(eq(int, tc_send(a, "x", 1), MQTTB_ERR_INVALID_STATE));
  tc_del(a);
  cr_assert(eq(int, bed->closes, 1));
}

static int closed_during_del;

static void note_close(tb *b, tc *c, int reason) {
  (void)b;
  (void)c;
  cr_assert(eq(int, reason, MQTTB_ERR_TRANSPORT_CLOSED));
  closed_during_del++;
}

Test(lifecycle, on_close_once_when_an_open_connection_is_deleted) {
  tc *a = tc_open(bed, "a", true);
  tc *pending = tc_new(bed); /* no CONNECT yet */
  bed->on_close_hook = note_close;
  tc_del(a);
  tc_del(pending);
  bed->on_close_hook = NULL;
  cr_assert(eq(int, closed_during_del, 2));
  cr_assert(eq(int, bed->closes, 2));
  cr_assert(eq(int, mqttb_conn_is_closing(NULL), 1));
}

Test(lifecycle, disconnect_tells_mqtt5_and_closes_mqtt3_silently) {
  tc *a = tc_open(bed, "a", true);
  tc *b = open5(bed, "b", 0);
  cr_assert(eq(int, mqttb_conn_disconnect(a->conn, MQTTB_REASON_SERVER_SHUTTING_DOWN, bed->now),
               MQTTB_OK));
  cr_assert(eq(int, mqttb_conn_disconnect(b->conn, MQTTB_REASON_SERVER_SHUTTING_DOWN, bed->now),
               MQTTB_OK));
  cr_assert(a->closed && b->closed);
  cr_assert(eq(int, a->close_reason, MQTTB_ERR_SHUTDOWN));
  cr_assert(tc_quiet(a)); /* MQTT 3.x has no server DISCONNECT */
  cr_assert(tc_read(b));
  cr_assert(eq(int, b->f.type, MQTTB_PKT_DISCONNECT));
  cr_assert(eq(int, b->body[0], MQTTB_REASON_SERVER_SHUTTING_DOWN));
  cr_assert(eq(int, mqttb_conn_disconnect(a->conn, 0, bed->now), MQTTB_ERR_INVALID_STATE));
}

Test(lifecycle, shutdown_closes_everyone_and_refuses_new_connections) {
  tc *w = tc_open(bed, "watcher", false);
  cr_assert(eq(int, tc_subscribe(w, "wills/#", 1), 1));
  tc_disconnect(w); /* a persistent session, offline: the will waits there */
  tc *a = tc_new(bed);
  tc_connect_opts o = {.client_id = "a",
                       .clean = true,
                       .keepalive = 30,
                       .will_topic = "wills/a",
                       .will_payload = "bye",
                       .will_qos = 1};
  cr_assert(eq(int, tc_connect(a, &o, NULL), 0));
  tc *b = open5(bed, "b", 0);
  tc *pending = tc_new(bed);
  int before = bed->closes;
  cr_assert(eq(int, mqttb_broker_shutdown(bed->broker, bed->now), MQTTB_OK));
  cr_assert(eq(int, bed->closes, before + 3));
  cr_assert(a->closed && b->closed && pending->closed);
  cr_assert(eq(int, b->close_reason, MQTTB_ERR_SHUTDOWN));
  cr_assert(tc_read(b));
  cr_assert(eq(int, b->f.type, MQTTB_PKT_DISCONNECT));
  cr_assert(eq(int, b->body[0], 0x8B));
  mqttb_conn *c;
  cr_assert(eq(int, mqttb_conn_new(&c, bed->broker, bed->now, NULL), MQTTB_ERR_INVALID_STATE));
  /* The will went to the offline session, as for any close by the server. */
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.clients_connected, 0));
  cr_assert(eq(int, mqttb_broker_shutdown(bed->broker, bed->now), MQTTB_OK)); /* harmless again */
  cr_assert(eq(int, bed->closes, before + 3));
}

/* broker_del with connections still open: each gets on_close first. */
typedef struct closer {
  int closes;
  int reasons[4];
} closer;

static void closer_on_close(mqttb_conn *conn, int reason, void *ud) {
  closer *k = ud;
  cr_assert(mqttb_conn_is_closing(conn));
  k->reasons[k->closes++] = reason;
}

Test(lifecycle, broker_del_closes_open_connections_through_on_close) {
  tb_alloc a;
  mqttb_mem mem;
  tb_alloc_init(&a, &mem);
  mqttb_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_close = closer_on_close;
  closer k = {0};
  mqttb_broker *b;
  cr_assert(eq(int, mqttb_broker_new(&b, NULL, &cb, &mem, &k), MQTTB_OK));
  mqttb_conn *c1, *c2, *c3;
  cr_assert(eq(int, mqttb_conn_new(&c1, b, 0, NULL), MQTTB_OK));
  cr_assert(eq(int, mqttb_conn_new(&c2, b, 0, NULL), MQTTB_OK));
  cr_assert(eq(int, mqttb_conn_new(&c3, b, 0, NULL), MQTTB_OK));
  cr_assert(eq(int, mqttb_conn_transport_closed(c3, 0), MQTTB_OK)); /* closed already */
  cr_assert(eq(int, k.closes, 1));
  mqttb_broker_del(b);
  cr_assert(eq(int, k.closes, 3));
  cr_assert(eq(int, k.reasons[1], MQTTB_ERR_SHUTDOWN));
  cr_assert(eq(int, k.reasons[2], MQTTB_ERR_SHUTDOWN));
  cr_assert(eq(long, a.live, 0), "leaked %ld blocks", a.live);
}

/* ---------------------------------------------------------------- callbacks */

typedef struct reentry {
  tc *other;
  int recv, timers, disconnect, shutdown, conn_new, transport;
} reentry;

static void try_everything(tb *b, tc *c, int reason) {
  (void)c;
  (void)reason;
  reentry *r = b->hook_data;
  mqttb_conn *nc;
  r->recv = mqttb_conn_recv(r->other->conn, NULL, 0, b->now);
  r->timers = mqttb_broker_handle_timers(b->broker, b->now);
  r->disconnect = mqttb_conn_disconnect(r->other->conn, 0, b->now);
  r->shutdown = mqttb_broker_shutdown(b->broker, b->now);
  r->conn_new = mqttb_conn_new(&nc, b->broker, b->now, NULL);
  r->transport = mqttb_conn_transport_closed(r->other->conn, b->now);
  /* Ignored (with an error logged) rather than freeing under the caller. */
  mqttb_conn_del(r->other->conn, b->now);
  mqttb_broker_del(b->broker);
}

Test(lifecycle, calls_no_callback_may_make_are_refused) {
  tc *a = tc_open(bed, "a", true);
  tc *other = tc_open(bed, "other", true);
  reentry r = {.other = other};
  bed->hook_data = &r;
  bed->on_close_hook = try_everything;
  tc_disconnect(a);
  bed->on_close_hook = NULL;
  cr_assert(eq(int, r.recv, MQTTB_ERR_INVALID_STATE));
  cr_assert(eq(int, r.timers, MQTTB_ERR_INVALID_STATE));
  cr_assert(eq(int, r.disconnect, MQTTB_ERR_INVALID_STATE));
  cr_assert(eq(int, r.shutdown, MQTTB_ERR_INVALID_STATE));
  cr_assert(eq(int, r.conn_new, MQTTB_ERR_INVALID_STATE));
  cr_assert(eq(int, r.transport, MQTTB_ERR_INVALID_STATE));
  cr_assert(ge(int, bed->logs[MQTTB_LOG_ERROR], 2));
  /* The other connection is untouched and works. */
  cr_assert(not(other->closed));
  cr_assert(tc_publish(other, "t", "x", 1, false));
}

static void write_in_on_close(tb *b, tc *c, int reason) {
  (void)b;
  (void)reason;
  /* The output calls are allowed: write the DISCONNECT out at once. */
  mqttb_iovec iov[4];
  int n = mqttb_conn_output(c->conn, iov, 4);
  cr_assert(lt(int, 0, n));
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += iov[i].len;
  cr_assert(eq(int, mqttb_conn_output_ack(c->conn, total, b->now), MQTTB_OK));
}

Test(lifecycle, on_close_may_write_the_output) {
  tc *b = open5(bed, "b", 0);
  bed->on_close_hook = write_in_on_close;
  cr_assert(eq(int, mqttb_conn_disconnect(b->conn, 0x8B, bed->now), MQTTB_OK));
  bed->on_close_hook = NULL;
  cr_assert(eq(sz, mqttb_conn_output_pending(b->conn), 0));
}

/* ---------------------------------------------------------------- helpers */

Test(lifecycle, timeout_turns_the_deadline_into_milliseconds) {
  /* No $SYS, no connection: nothing is due, ever. */
  cr_assert(eq(int, mqttb_broker_timeout(bed->broker, 0), -1));
  cr_assert(eq(int, mqttb_broker_timeout(NULL, 0), -1));
  tc *a = tc_new(bed); /* the connect timeout, 10 s */
  cr_assert(eq(int, mqttb_broker_timeout(bed->broker, bed->now), 10000));
  cr_assert(eq(int, mqttb_broker_timeout(bed->broker, bed->now + 9999), 1));
  cr_assert(eq(int, mqttb_broker_timeout(bed->broker, bed->now + 10000), 0));
  cr_assert(eq(int, mqttb_broker_timeout(bed->broker, bed->now + 99999), 0));
  (void)a;
  tb_del(bed);
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.connect_timeout_ms = 0;
  s.sys_interval_ms = 0;
  bed = tb_new(&s);
  tc_connect_opts o = {.client_id = "k", .clean = true, .keepalive = 65535};
  tc *k = tc_new(bed);
  cr_assert(eq(int, tc_connect(k, &o, NULL), 0));
  tc_drain(k);
  /* Timers are lazy: the first deadline may be an earlier check (the output
   * stall timer armed with the CONNACK); after it, the keep-alive deadline,
   * 1.5 times 65535 s. */
  int t = mqttb_broker_timeout(bed->broker, bed->now);
  cr_assert(lt(int, 0, t));
  cr_assert(le(int, t, 65535 * 1500));
  tb_advance(bed, (uint64_t)t);
  cr_assert(not(k->closed));
  cr_assert(eq(int, mqttb_broker_timeout(bed->broker, bed->now), 65535 * 1500 - t));
}

Test(lifecycle, iovec_is_struct_iovec) {
  cr_assert(eq(sz, sizeof(mqttb_iovec), sizeof(struct iovec)));
  cr_assert(eq(sz, offsetof(mqttb_iovec, base), offsetof(struct iovec, iov_base)));
  cr_assert(eq(sz, offsetof(mqttb_iovec, len), offsetof(struct iovec, iov_len)));
  /* And writev takes the library's array as it is. */
  tc *a = tc_new(bed);
  tc_connect_opts o = {.client_id = "w", .clean = true, .keepalive = 30};
  cr_assert(eq(int, tc_connect(a, &o, NULL), 0));
  cr_assert(eq(int, tc_subscribe(a, "t", 0), 0));
  cr_assert(tc_publish(a, "t", "hello", 0, false)); /* harness reads its own copy */
  tc_publish_raw(a, "t", "again", 5, 0, false, false, 0);
  mqttb_iovec iov[8];
  int n = mqttb_conn_output(a->conn, iov, 8);
  cr_assert(lt(int, 0, n));
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += iov[i].len;
  int fds[2];
  cr_assert(eq(int, pipe(fds), 0));
  ssize_t w = writev(fds[1], (const struct iovec *)iov, n);
  cr_assert(eq(long, (long)w, (long)total));
  uint8_t buf[256];
  cr_assert(le(sz, total, sizeof(buf)));
  cr_assert(eq(long, (long)read(fds[0], buf, sizeof(buf)), (long)total));
  close(fds[0]);
  close(fds[1]);
  cr_assert(eq(int, buf[0], 0x30)); /* a QoS 0 PUBLISH */
  cr_assert(eq(int, memcmp(buf + total - 5, "again", 5), 0));
  cr_assert(eq(int, mqttb_conn_output_ack(a->conn, total, bed->now), MQTTB_OK));
}

Test(lifecycle, brokers_alive_at_once_assign_different_identifiers) {
  tb *other = tb_new(NULL);
  tc *a = tc_open(bed, "", true);
  tc *b = tc_open(other, "", true);
  const char *ia = mqttb_conn_get_client_id(a->conn);
  const char *ib = mqttb_conn_get_client_id(b->conn);
  cr_assert(ia != NULL && ib != NULL);
  cr_assert(eq(int, strncmp(ia, "auto-", 5), 0));
  cr_assert(not(eq(str, (char *)ia, (char *)ib)));
  tb_del(other);
}

/* ---------------------------------------------------------------- reload */

Test(lifecycle, reload_changes_what_can_change) {
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.sys_interval_ms = 0;
  s.max_keepalive = 60;
  s.retain_available = 0;
  s.auto_id_prefix = "new-";
  s.max_connections = 1;    /* not reloadable: stays 0 */
  s.sys_interval_ms = 5000; /* $SYS is off in this broker: stays off */
  cr_assert(eq(int, mqttb_broker_reload_settings(bed->broker, &s), MQTTB_OK));
  /* max_keepalive applies to the next CONNECT. */
  tc *a = tc_new(bed);
  tc_connect_opts o = {.client_id = "k", .clean = true, .keepalive = 61};
  cr_assert(eq(int, tc_connect(a, &o, NULL), MQTTB_REASON_IDENTIFIER_REJECTED));
  /* retain_available 0: a retained message is delivered but not kept. */
  tc *p = tc_open(bed, "", true);
  cr_assert(eq(int, strncmp(mqttb_conn_get_client_id(p->conn), "new-", 4), 0));
  cr_assert(tc_publish(p, "r", "x", 0, true));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.retained_count, 0));
  tc *q = tc_open(bed, "q", true);
  cr_assert(not(q->closed)); /* max_connections was not reloaded */
  cr_assert(
      eq(int, mqttb_broker_reload_settings_versioned(bed->broker, 99, &s), MQTTB_ERR_VERSION));
  cr_assert(eq(int, mqttb_broker_reload_settings(bed->broker, NULL), MQTTB_ERR_INVALID_ARGUMENT));
}

static void reload_in_callback(tb *b, tc *c, int reason) {
  (void)c, (void)reason;
  mqttb_settings s;
  mqttb_settings_default(&s);
  *(int *)b->hook_data = mqttb_broker_reload_settings(b->broker, &s);
}

Test(lifecycle, reload_is_refused_from_a_callback) {
  int rv = 1;
  bed->hook_data = &rv;
  bed->on_close_hook = reload_in_callback;
  tc *a = tc_open(bed, "a", true);
  tc_disconnect(a);
  bed->on_close_hook = NULL;
  cr_assert(eq(int, rv, MQTTB_ERR_INVALID_STATE));
}

static int host_rv_in_del = 1;

static void publish_on_close(mqttb_conn *conn, int reason, void *ud) {
  (void)reason, (void)ud;
  mqttb_message m = {.topic = "t", .payload = "x", .payload_len = 1};
  host_rv_in_del = mqttb_broker_publish(mqttb_conn_get_broker(conn), &m, 0);
}

Test(lifecycle, host_calls_are_refused_during_broker_del) {
  mqttb_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_close = publish_on_close;
  mqttb_broker *b;
  cr_assert(eq(int, mqttb_broker_new(&b, NULL, &cb, NULL, NULL), MQTTB_OK));
  mqttb_conn *c;
  cr_assert(eq(int, mqttb_conn_new(&c, b, 0, NULL), MQTTB_OK));
  mqttb_broker_del(b); /* c is open: on_close runs inside */
  cr_assert(eq(int, host_rv_in_del, MQTTB_ERR_INVALID_STATE));
}
