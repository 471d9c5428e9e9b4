/* SPDX-License-Identifier: MIT */
/* Versioned public structs: a caller built against version 1 of
 * mqttb_settings, mqttb_callbacks and mqttb_stats. The frozen copies below
 * are version 1 as it was released; the static assertions prove that they
 * still are the header's layout, so a later version that changes (rather
 * than extends) a struct fails to compile here. The library must read and
 * write only version 1's bytes of them. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "codec_client.h"
#include "core.h"
#include "unit_alloc.h"

/* ---------------------------------------------------------------- version 1 */

typedef struct settings_v1 {
  uint32_t max_packet_size;
  uint32_t max_inflight_messages;
  uint32_t max_queued_messages;
  uint64_t max_queued_bytes;
  uint32_t max_connections;
  uint32_t connect_timeout_ms;
  uint32_t max_keepalive;
  int queue_qos0_messages;
  int allow_zero_length_clientid;
  const char *auto_id_prefix;
  int retain_available;
  uint32_t sys_interval_ms;
  uint16_t receive_maximum;
  uint16_t topic_alias_maximum;
  uint8_t max_qos;
  int wildcard_subscriptions;
  int subscription_identifiers;
  int shared_subscriptions;
  const char *response_information;
  uint32_t max_subscriptions;
  uint32_t max_topic_levels;
  uint64_t max_queued_bytes_total;
  uint64_t max_output_bytes;
  uint32_t output_stall_timeout_ms;
  uint64_t auto_id_key[2];
} settings_v1;

typedef struct callbacks_v1 {
  void (*want_write)(mqttb_conn *conn, void *user_data);
  void (*on_close)(mqttb_conn *conn, int reason, void *user_data);
  void (*on_connect)(mqttb_conn *conn, void *user_data);
  int (*authenticate)(mqttb_conn *conn, const mqttb_auth_request *req, void *user_data);
  int (*authorize)(mqttb_conn *conn, mqttb_access access, const char *topic, size_t topic_len,
                   int qos, int retain, void *user_data);
  void (*log)(mqttb_broker *broker, mqttb_log_level level, const char *msg, void *user_data);
  int64_t (*wallclock)(void *user_data);
  uint64_t (*heap_usage)(void *user_data);
} callbacks_v1;

typedef struct stats_v1 {
  uint64_t bytes_received;
  uint64_t bytes_sent;
  uint64_t packets_received;
  uint64_t packets_sent;
  uint64_t publish_received;
  uint64_t publish_sent;
  uint64_t publish_dropped;
  uint64_t clients_connected;
  uint64_t clients_disconnected;
  uint64_t clients_maximum;
  uint64_t retained_count;
  uint64_t subscription_count;
  uint64_t connections;
  uint64_t connects_total;
} stats_v1;

#define SAME_FIELD(FROZEN, HDR, F)                                                                 \
  _Static_assert(offsetof(FROZEN, F) == offsetof(HDR, F) &&                                        \
                     sizeof(((FROZEN *)0)->F) == sizeof(((HDR *)0)->F),                            \
                 #HDR "." #F " moved or changed size")

/* Version 1 of the settings is the start of the header's struct (version 2
 * added fields at the end) ... */
_Static_assert(sizeof(settings_v1) < sizeof(mqttb_settings), "mqttb_settings did not grow");
_Static_assert(offsetof(mqttb_settings, work_budget) >= sizeof(settings_v1),
               "a version 2 field inside version 1");
/* ... the callbacks of version 1 are the start of version 3's (version 3
 * added store at the end), the stats are still version 1 ... */
_Static_assert(sizeof(callbacks_v1) < sizeof(mqttb_callbacks), "mqttb_callbacks did not grow");
_Static_assert(offsetof(mqttb_callbacks, store) >= sizeof(callbacks_v1),
               "a version 3 callback inside version 1");
_Static_assert(offsetof(mqttb_settings, store_sync) >
                   offsetof(mqttb_settings, max_input_bytes_total),
               "a version 3 field inside version 2");
_Static_assert(sizeof(stats_v1) == sizeof(mqttb_stats), "mqttb_stats is not version 1");
_Static_assert(MQTTB_SETTINGS_V1 == 1 && MQTTB_CALLBACKS_V1 == 1 && MQTTB_STATS_V1 == 1,
               "version 1 is numbered 1");

/* ... and every field where it was. */
SAME_FIELD(settings_v1, mqttb_settings, max_packet_size);
SAME_FIELD(settings_v1, mqttb_settings, max_inflight_messages);
SAME_FIELD(settings_v1, mqttb_settings, max_queued_messages);
SAME_FIELD(settings_v1, mqttb_settings, max_queued_bytes);
SAME_FIELD(settings_v1, mqttb_settings, max_connections);
SAME_FIELD(settings_v1, mqttb_settings, connect_timeout_ms);
SAME_FIELD(settings_v1, mqttb_settings, max_keepalive);
SAME_FIELD(settings_v1, mqttb_settings, queue_qos0_messages);
SAME_FIELD(settings_v1, mqttb_settings, allow_zero_length_clientid);
SAME_FIELD(settings_v1, mqttb_settings, auto_id_prefix);
SAME_FIELD(settings_v1, mqttb_settings, retain_available);
SAME_FIELD(settings_v1, mqttb_settings, sys_interval_ms);
SAME_FIELD(settings_v1, mqttb_settings, receive_maximum);
SAME_FIELD(settings_v1, mqttb_settings, topic_alias_maximum);
SAME_FIELD(settings_v1, mqttb_settings, max_qos);
SAME_FIELD(settings_v1, mqttb_settings, wildcard_subscriptions);
SAME_FIELD(settings_v1, mqttb_settings, subscription_identifiers);
SAME_FIELD(settings_v1, mqttb_settings, shared_subscriptions);
SAME_FIELD(settings_v1, mqttb_settings, response_information);
SAME_FIELD(settings_v1, mqttb_settings, max_subscriptions);
SAME_FIELD(settings_v1, mqttb_settings, max_topic_levels);
SAME_FIELD(settings_v1, mqttb_settings, max_queued_bytes_total);
SAME_FIELD(settings_v1, mqttb_settings, max_output_bytes);
SAME_FIELD(settings_v1, mqttb_settings, output_stall_timeout_ms);
SAME_FIELD(settings_v1, mqttb_settings, auto_id_key);

SAME_FIELD(callbacks_v1, mqttb_callbacks, want_write);
SAME_FIELD(callbacks_v1, mqttb_callbacks, on_close);
SAME_FIELD(callbacks_v1, mqttb_callbacks, on_connect);
SAME_FIELD(callbacks_v1, mqttb_callbacks, authenticate);
SAME_FIELD(callbacks_v1, mqttb_callbacks, authorize);
SAME_FIELD(callbacks_v1, mqttb_callbacks, log);
SAME_FIELD(callbacks_v1, mqttb_callbacks, wallclock);
SAME_FIELD(callbacks_v1, mqttb_callbacks, heap_usage);

SAME_FIELD(stats_v1, mqttb_stats, bytes_received);
SAME_FIELD(stats_v1, mqttb_stats, bytes_sent);
SAME_FIELD(stats_v1, mqttb_stats, packets_received);
SAME_FIELD(stats_v1, mqttb_stats, packets_sent);
SAME_FIELD(stats_v1, mqttb_stats, publish_received);
SAME_FIELD(stats_v1, mqttb_stats, publish_sent);
SAME_FIELD(stats_v1, mqttb_stats, publish_dropped);
SAME_FIELD(stats_v1, mqttb_stats, clients_connected);
SAME_FIELD(stats_v1, mqttb_stats, clients_disconnected);
SAME_FIELD(stats_v1, mqttb_stats, clients_maximum);
SAME_FIELD(stats_v1, mqttb_stats, retained_count);
SAME_FIELD(stats_v1, mqttb_stats, subscription_count);
SAME_FIELD(stats_v1, mqttb_stats, connections);
SAME_FIELD(stats_v1, mqttb_stats, connects_total);

#define GUARD 64

typedef struct settings_w {
  settings_v1 s;
  unsigned char guard[GUARD];
} settings_w;

typedef struct stats_w {
  stats_v1 s;
  unsigned char guard[GUARD];
} stats_w;

static void assert_guard(const unsigned char *g, unsigned char v) {
  for (size_t i = 0; i < GUARD; i++)
    cr_assert(eq(u8, g[i], v), "guard byte %zu written", i);
}

/* The defaults as include/mqttb/mqttb.h documents them. */
static void assert_documented_defaults(const settings_v1 *s) {
  cr_assert(eq(u32, s->max_packet_size, 268435460u));
  cr_assert(eq(u32, s->max_inflight_messages, 20));
  cr_assert(eq(u32, s->max_queued_messages, 1000));
  cr_assert(eq(u64, s->max_queued_bytes, 0));
  cr_assert(eq(u32, s->max_connections, 0));
  cr_assert(eq(u32, s->connect_timeout_ms, 10000));
  cr_assert(eq(u32, s->max_keepalive, 0));
  cr_assert(eq(int, s->queue_qos0_messages, 0));
  cr_assert(eq(int, s->allow_zero_length_clientid, 1));
  cr_assert(not(eq(ptr, (void *)s->auto_id_prefix, NULL)));
  cr_assert(eq(str, (char *)s->auto_id_prefix, "auto-"));
  cr_assert(eq(int, s->retain_available, 1));
  cr_assert(eq(u32, s->sys_interval_ms, 10000));
  cr_assert(eq(u16, s->receive_maximum, 0)); /* max_inflight_messages */
  cr_assert(eq(u16, s->topic_alias_maximum, 10));
  cr_assert(eq(u8, s->max_qos, 2));
  cr_assert(eq(int, s->wildcard_subscriptions, 1));
  cr_assert(eq(int, s->subscription_identifiers, 1));
  cr_assert(eq(int, s->shared_subscriptions, 1));
  cr_assert(eq(ptr, (void *)s->response_information, NULL));
  cr_assert(eq(u32, s->max_subscriptions, 10000));
  cr_assert(eq(u32, s->max_topic_levels, 128));
  cr_assert(eq(u64, s->max_queued_bytes_total, 268435456u));
  cr_assert(eq(u64, s->max_output_bytes, 1048576u));
  cr_assert(eq(u32, s->output_stall_timeout_ms, 60000));
  cr_assert(eq(u64, s->auto_id_key[0], 0));
  cr_assert(eq(u64, s->auto_id_key[1], 0));
}

/* ---------------------------------------------------------------- (a) defaults */

Test(versions, settings_default_v1_writes_only_version_1) {
  settings_w w;
  memset(&w, 0xA5, sizeof(w));
  mqttb_settings_default_versioned(MQTTB_SETTINGS_V1, (mqttb_settings *)&w.s);
  assert_guard(w.guard, 0xA5);
  assert_documented_defaults(&w.s);
}

Test(versions, settings_default_v1_fits_a_heap_block_of_exactly_its_size) {
  /* AddressSanitizer builds catch any byte written past the block. */
  settings_v1 *s = malloc(sizeof(*s));
  cr_assert(not(eq(ptr, s, NULL)));
  memset(s, 0xA5, sizeof(*s));
  mqttb_settings_default_versioned(MQTTB_SETTINGS_V1, (mqttb_settings *)s);
  assert_documented_defaults(s);
  free(s);
}

Test(versions, settings_default_with_an_unknown_version_writes_nothing) {
  const int bad[] = {0, 4, 999, -1};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    settings_w w;
    memset(&w, 0xA5, sizeof(w));
    mqttb_settings_default_versioned(bad[i], (mqttb_settings *)&w.s);
    const unsigned char *b = (const unsigned char *)&w;
    for (size_t k = 0; k < sizeof(w); k++)
      cr_assert(eq(u8, b[k], 0xA5), "version %d wrote byte %zu", bad[i], k);
  }
  /* A NULL struct is ignored. */
  mqttb_settings_default_versioned(MQTTB_SETTINGS_V1, NULL);
}

/* ---------------------------------------------------------------- (b) broker_new */

typedef struct seen {
  int want_write, on_connect, on_close, authenticate;
  int level;
} seen;

static void cb_want_write(mqttb_conn *conn, void *ud) {
  (void)conn;
  ((seen *)ud)->want_write++;
}
static void cb_on_connect(mqttb_conn *conn, void *ud) {
  (void)conn;
  ((seen *)ud)->on_connect++;
}
static void cb_on_close(mqttb_conn *conn, int reason, void *ud) {
  (void)conn;
  (void)reason;
  ((seen *)ud)->on_close++;
}
static int cb_authenticate(mqttb_conn *conn, const mqttb_auth_request *req, void *ud) {
  (void)conn;
  ((seen *)ud)->authenticate++;
  ((seen *)ud)->level = req->protocol_level;
  return MQTTB_REASON_SUCCESS;
}

/* An MQTT 3.1.1 CONNECT with an empty client id (the broker assigns one)
 * into buf; returns its size. */
static size_t connect_311(uint8_t *buf, size_t cap) {
  mqttb_connect c;
  memset(&c, 0, sizeof(c));
  c.level = 4;
  c.clean = true;
  c.keepalive = 30;
  size_t n = mqttb_connect_size(&c);
  cr_assert(lt(sz, 0, n));
  cr_assert(le(sz, n, cap));
  cr_assert(eq(sz, mqttb_encode_connect(buf, &c), n));
  return n;
}

/* Create a broker from version 1 structs held at *s and *cb (which the
 * caller allocated), connect one client through it and check that what
 * the frozen structs said took effect. */
static void run_v1_broker(const settings_v1 *s, const callbacks_v1 *cb) {
  unit_alloc a;
  unit_alloc_init(&a);
  seen ud = {0};
  mqttb_broker *b = NULL;
  cr_assert(
      eq(int,
         mqttb_broker_new_versioned(&b, MQTTB_SETTINGS_V1, (const mqttb_settings *)s,
                                    MQTTB_CALLBACKS_V1, (const mqttb_callbacks *)cb, &a.mem, &ud),
         MQTTB_OK));
  cr_assert(not(eq(ptr, b, NULL)));
  /* The broker holds what version 1 gave, whatever lies after it. */
  const mqttb_ctx *ctx = &b->ctx;
  cr_assert(eq(u32, ctx->settings.max_connections, 1));
  cr_assert(eq(u32, ctx->settings.max_inflight_messages, 7));
  cr_assert(eq(u64, ctx->settings.auto_id_key[1], 0x1122334455667788ull));
  cr_assert(eq(u32, ctx->settings.output_stall_timeout_ms, 12345));
  cr_assert(eq(str, (char *)ctx->settings.auto_id_prefix, "v1-"));
  cr_assert(eq(ptr, (void *)ctx->cb.want_write, (void *)cb_want_write));
  cr_assert(eq(ptr, (void *)ctx->cb.on_connect, (void *)cb_on_connect));
  cr_assert(eq(ptr, (void *)ctx->cb.authenticate, (void *)cb_authenticate));
  cr_assert(eq(ptr, (void *)ctx->cb.authorize, NULL));
  cr_assert(eq(ptr, (void *)ctx->cb.heap_usage, NULL));

  mqttb_conn *c = NULL, *c2 = NULL;
  cr_assert(eq(int, mqttb_conn_new(&c, b, 0, NULL), MQTTB_OK));
  /* max_connections 1 came from the frozen settings. */
  cr_assert(eq(int, mqttb_conn_new(&c2, b, 0, NULL), MQTTB_ERR_TOO_MANY_CONNECTIONS));
  uint8_t pkt[64];
  size_t n = connect_311(pkt, sizeof(pkt));
  cr_assert(eq(int, mqttb_conn_recv(c, pkt, n, 10), MQTTB_OK));
  cr_assert(eq(int, ud.authenticate, 1));
  cr_assert(eq(int, ud.level, 4));
  cr_assert(eq(int, ud.on_connect, 1));
  cr_assert(eq(int, ud.want_write, 1));
  cr_assert(eq(int, ud.on_close, 0));
  const char *id = mqttb_conn_get_client_id(c);
  cr_assert(not(eq(ptr, (void *)id, NULL)));
  cr_assert(eq(int, strncmp(id, "v1-", 3), 0), "assigned id '%s' uses the v1 prefix", id);
  mqttb_iovec iov[4];
  cr_assert(eq(int, mqttb_conn_output(c, iov, 4), 1));
  static const uint8_t connack[] = {0x20, 2, 0, 0};
  cr_assert(eq(sz, iov[0].len, sizeof(connack)));
  cr_assert(eq(int, memcmp(iov[0].base, connack, sizeof(connack)), 0));

  /* (c) the counters, into a version 1 stats struct followed by a guard. */
  stats_w sw;
  memset(&sw, 0xA5, sizeof(sw));
  cr_assert(
      eq(int, mqttb_broker_get_stats_versioned(b, MQTTB_STATS_V1, (mqttb_stats *)&sw.s), MQTTB_OK));
  assert_guard(sw.guard, 0xA5);
  cr_assert(eq(u64, sw.s.bytes_received, n));
  cr_assert(eq(u64, sw.s.bytes_sent, 0));
  cr_assert(eq(u64, sw.s.packets_received, 1));
  cr_assert(eq(u64, sw.s.packets_sent, 1));
  cr_assert(eq(u64, sw.s.publish_received, 0));
  cr_assert(eq(u64, sw.s.publish_sent, 0));
  cr_assert(eq(u64, sw.s.publish_dropped, 0));
  cr_assert(eq(u64, sw.s.clients_connected, 1));
  cr_assert(eq(u64, sw.s.clients_disconnected, 0));
  cr_assert(eq(u64, sw.s.clients_maximum, 1));
  cr_assert(eq(u64, sw.s.subscription_count, 0));
  cr_assert(eq(u64, sw.s.connections, 1));
  cr_assert(eq(u64, sw.s.connects_total, 1));
  cr_assert(eq(u64, sw.s.retained_count, ctx->stats.retained_count));
  cr_assert(eq(int, mqttb_conn_output_ack(c, 4, 20), MQTTB_OK));
  cr_assert(
      eq(int, mqttb_broker_get_stats_versioned(b, MQTTB_STATS_V1, (mqttb_stats *)&sw.s), MQTTB_OK));
  cr_assert(eq(u64, sw.s.bytes_sent, 4));
  assert_guard(sw.guard, 0xA5);

  mqttb_conn_del(c, 30);
  mqttb_broker_del(b);
  cr_assert(eq(long, a.live, 0), "nothing leaked");
}

static void fill_v1(settings_v1 *s, callbacks_v1 *cb) {
  mqttb_settings_default_versioned(MQTTB_SETTINGS_V1, (mqttb_settings *)s);
  s->max_connections = 1;
  s->max_inflight_messages = 7;
  s->auto_id_prefix = "v1-";
  s->auto_id_key[0] = 1;
  s->auto_id_key[1] = 0x1122334455667788ull;
  s->output_stall_timeout_ms = 12345;
  memset(cb, 0, sizeof(*cb));
  cb->want_write = cb_want_write;
  cb->on_connect = cb_on_connect;
  cb->on_close = cb_on_close;
  cb->authenticate = cb_authenticate;
}

Test(versions, broker_new_v1_reads_exactly_sized_structs) {
  /* Heap blocks of exactly version 1's size: AddressSanitizer catches any
   * read past them. */
  settings_v1 *s = malloc(sizeof(*s));
  callbacks_v1 *cb = malloc(sizeof(*cb));
  memset(s, 0xA5, sizeof(*s));
  fill_v1(s, cb);
  run_v1_broker(s, cb);
  free(s);
  free(cb);
}

Test(versions, broker_new_v1_ignores_bytes_after_the_structs) {
  /* Followed by 0xFF bytes: read as a later version's fields they would be
   * huge limits and a wild callback pointer. */
  unsigned char *sb = malloc(sizeof(settings_v1) + GUARD);
  unsigned char *cbb = malloc(sizeof(callbacks_v1) + GUARD);
  memset(sb + sizeof(settings_v1), 0xFF, GUARD);
  memset(cbb + sizeof(callbacks_v1), 0xFF, GUARD);
  settings_v1 *s = (settings_v1 *)(void *)sb;
  callbacks_v1 *cb = (callbacks_v1 *)(void *)cbb;
  fill_v1(s, cb);
  run_v1_broker(s, cb);
  assert_guard(sb + sizeof(settings_v1), 0xFF);
  assert_guard(cbb + sizeof(callbacks_v1), 0xFF);
  free(sb);
  free(cbb);
}

Test(versions, broker_new_v1_with_null_structs_uses_defaults) {
  unit_alloc a;
  unit_alloc_init(&a);
  mqttb_broker *b = NULL;
  cr_assert(eq(int,
               mqttb_broker_new_versioned(&b, MQTTB_SETTINGS_V1, NULL, MQTTB_CALLBACKS_V1, NULL,
                                          &a.mem, NULL),
               MQTTB_OK));
  settings_w w;
  memset(&w, 0, sizeof(w));
  memcpy(&w.s, &b->ctx.settings, sizeof(w.s));
  /* The broker resolves Receive Maximum 0 to max_inflight_messages. */
  cr_assert(eq(u16, w.s.receive_maximum, 20));
  w.s.receive_maximum = 0;
  /* ... and a zero auto_id_key to a key of its own. */
  cr_assert(w.s.auto_id_key[0] != 0 || w.s.auto_id_key[1] != 0);
  w.s.auto_id_key[0] = w.s.auto_id_key[1] = 0;
  assert_documented_defaults(&w.s);
  cr_assert(eq(ptr, (void *)b->ctx.cb.want_write, NULL));
  mqttb_broker_del(b);
  cr_assert(eq(long, a.live, 0));
}

/* ---------------------------------------------------------------- (d) unknown versions */

Test(versions, unknown_versions_are_refused) {
  const int bad[] = {0, 4, 999, -1};
  settings_v1 s;
  callbacks_v1 cb;
  fill_v1(&s, &cb);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    unit_alloc a;
    unit_alloc_init(&a);
    mqttb_broker *sentinel = (mqttb_broker *)(void *)&a, *b = sentinel;
    cr_assert(
        eq(int,
           mqttb_broker_new_versioned(&b, bad[i], (const mqttb_settings *)&s, MQTTB_CALLBACKS_V1,
                                      (const mqttb_callbacks *)&cb, &a.mem, NULL),
           MQTTB_ERR_VERSION),
        "settings version %d", bad[i]);
    cr_assert(eq(ptr, b, sentinel), "*pbroker untouched");
    cr_assert(eq(
        int, mqttb_broker_new_versioned(&b, bad[i], NULL, MQTTB_CALLBACKS_V1, NULL, &a.mem, NULL),
        MQTTB_ERR_VERSION));
    cr_assert(eq(int,
                 mqttb_broker_new_versioned(&b, MQTTB_SETTINGS_V1, (const mqttb_settings *)&s,
                                            bad[i], (const mqttb_callbacks *)&cb, &a.mem, NULL),
                 MQTTB_ERR_VERSION),
              "callbacks version %d", bad[i]);
    cr_assert(eq(ptr, b, sentinel));
    cr_assert(eq(long, a.calls, 0), "nothing allocated");
  }

  mqttb_broker *b;
  cr_assert(eq(
      int,
      mqttb_broker_new_versioned(&b, MQTTB_SETTINGS_V1, NULL, MQTTB_CALLBACKS_V1, NULL, NULL, NULL),
      MQTTB_OK));
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    stats_w sw;
    memset(&sw, 0xA5, sizeof(sw));
    cr_assert(eq(int, mqttb_broker_get_stats_versioned(b, bad[i], (mqttb_stats *)&sw.s),
                 MQTTB_ERR_VERSION),
              "stats version %d", bad[i]);
    const unsigned char *p = (const unsigned char *)&sw;
    for (size_t k = 0; k < sizeof(sw); k++)
      cr_assert(eq(u8, p[k], 0xA5), "version %d wrote byte %zu", bad[i], k);
  }
  stats_w sw;
  cr_assert(eq(int, mqttb_broker_get_stats_versioned(NULL, MQTTB_STATS_V1, (mqttb_stats *)&sw.s),
               MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, mqttb_broker_get_stats_versioned(b, MQTTB_STATS_V1, NULL),
               MQTTB_ERR_INVALID_ARGUMENT));
  mqttb_broker_del(b);
}

/* ---------------------------------------------------------------- (e) error tiers */

Test(versions, err_is_fatal_follows_the_error_tiers) {
  cr_assert(eq(int, mqttb_err_is_fatal(MQTTB_OK), 0));
  for (int e = -101; e >= -106; e--) {
    cr_assert(eq(int, mqttb_err_is_fatal(e), 0), "call-level error %d", e);
    cr_assert(not(eq(str, (char *)mqttb_strerror(e), "unknown error")), "%d", e);
  }
  for (int e = -500; e >= -514; e--) {
    cr_assert(eq(int, mqttb_err_is_fatal(e), 1), "connection error %d", e);
    cr_assert(not(eq(str, (char *)mqttb_strerror(e), "unknown error")), "%d", e);
  }
  cr_assert(eq(int, mqttb_err_is_fatal(MQTTB_ERR_VERSION), 0));
  cr_assert(eq(int, mqttb_err_is_fatal(MQTTB_ERR_QUOTA), 0));
  cr_assert(eq(int, mqttb_err_is_fatal(MQTTB_ERR_OUTPUT_STALLED), 1));
}

/* ---------------------------------------------------------------- version 2 */

/* A version 1 caller gets version 2's fields at their defaults; a version
 * 2 caller's values are used. */
Test(versions, v1_callers_get_v2_defaults_and_v2_values_are_used) {
  settings_v1 *s1 = malloc(sizeof(*s1));
  cr_assert(not(eq(ptr, s1, NULL)));
  mqttb_settings_default_versioned(MQTTB_SETTINGS_V1, (mqttb_settings *)s1);
  s1->max_inflight_messages = 7;
  mqttb_broker *b;
  cr_assert(eq(int,
               mqttb_broker_new_versioned(&b, MQTTB_SETTINGS_V1, (const mqttb_settings *)s1,
                                          MQTTB_CALLBACKS_V1, NULL, NULL, NULL),
               MQTTB_OK));
  cr_assert(eq(u32, b->ctx.settings.max_inflight_messages, 7));
  cr_assert(eq(u32, b->ctx.settings.work_budget, 1024));
  mqttb_broker_del(b);
  free(s1);

  mqttb_settings s2;
  mqttb_settings_default_versioned(MQTTB_SETTINGS_V2, &s2);
  cr_assert(eq(u32, s2.work_budget, 1024));
  s2.work_budget = 10;
  cr_assert(eq(
      int,
      mqttb_broker_new_versioned(&b, MQTTB_SETTINGS_V2, &s2, MQTTB_CALLBACKS_V1, NULL, NULL, NULL),
      MQTTB_OK));
  cr_assert(eq(u32, b->ctx.settings.work_budget, 10));
  mqttb_broker_del(b);
}
