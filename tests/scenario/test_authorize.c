/* SPDX-License-Identifier: MIT */
/* The authorize callback's read check (MQTTB_ACCESS_READ, callbacks version
 * 2) and the check of a CONNECT's will topic. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "v5.h"

static tb *bed;
static int reads; /* read checks asked */
static char will_client[64];

static void setup(void) {
  bed = tb_new(NULL);
  reads = 0;
  will_client[0] = '\0';
}

static void teardown(void) {
  tb_del(bed);
}

TestSuite(authorize, .init = setup, .fini = teardown);

static bool under(const char *topic, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  return len >= n && memcmp(topic, prefix, n) == 0;
}

/* Nobody may read secret/...; everything else is allowed. */
static int no_secret_reads(mqttb_access access, const char *topic, size_t len) {
  if (access != MQTTB_ACCESS_READ)
    return 0;
  reads++;
  return under(topic, len, "secret/") ? MQTTB_REASON_NOT_AUTHORIZED_5 : 0;
}

Test(authorize, reads_are_checked_as_messages_are_sent) {
  bed->authorize = no_secret_reads;
  tc *s = tc_open(bed, "s", true);
  cr_assert(eq(int, tc_subscribe(s, "#", 1), 1));
  tc *p = tc_open(bed, "p", true);
  cr_assert(tc_publish(p, "secret/a", "x", 1, false));
  cr_assert(tc_publish(p, "public/a", "y", 1, false));
  cr_assert(tc_publish(p, "secret/b", "z", 0, false));
  mqttb_publish got;
  cr_assert(tc_expect_publish(s, &got));
  cr_assert(slice_eq(got.topic, "public/a"));
  tc_ack(s, &got);
  cr_assert(tc_quiet(s));
  cr_assert(eq(int, reads, 3));
  mqttb_stats st;
  mqttb_broker_get_stats(bed->broker, &st);
  cr_assert(eq(u64, st.publish_dropped, 0)); /* skipped, not dropped */
}

Test(authorize, retained_and_queued_messages_are_checked_too) {
  bed->authorize = no_secret_reads;
  tc *p = tc_open(bed, "p", true);
  cr_assert(tc_publish(p, "secret/r", "r1", 1, true));
  cr_assert(tc_publish(p, "public/r", "r2", 1, true));
  tc *s = tc_open(bed, "s", false);
  cr_assert(eq(int, tc_subscribe(s, "+/r", 1), 1));
  mqttb_publish got;
  cr_assert(tc_expect_publish(s, &got));
  cr_assert(slice_eq(got.topic, "public/r") && got.retain);
  tc_ack(s, &got);
  cr_assert(tc_quiet(s));
  /* Offline: queued, then checked when the client is back. */
  tc_disconnect(s);
  tc_del(s);
  cr_assert(tc_publish(p, "secret/r", "q1", 1, false));
  cr_assert(tc_publish(p, "public/r", "q2", 1, false));
  s = tc_open(bed, "s", false);
  cr_assert(tc_expect_publish(s, &got));
  cr_assert(slice_eq(got.payload, "q2"));
  tc_ack(s, &got);
  cr_assert(tc_quiet(s));
}

static int saw_read;

static int v1_authorize(mqttb_conn *conn, mqttb_access access, const char *topic, size_t len,
                        int qos, int retain, void *ud) {
  (void)conn, (void)topic, (void)len, (void)qos, (void)retain, (void)ud;
  if (access == MQTTB_ACCESS_READ)
    saw_read++;
  return 0;
}

Test(authorize, callbacks_of_version_1_are_never_asked_about_reads) {
  mqttb_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.authorize = v1_authorize;
  mqttb_broker *b;
  cr_assert(eq(int,
               mqttb_broker_new_versioned(&b, MQTTB_SETTINGS_VERSION, NULL, MQTTB_CALLBACKS_V1, &cb,
                                          NULL, NULL),
               MQTTB_OK));
  /* A client subscribes and receives its own message. */
  mqttb_conn *c;
  cr_assert(eq(int, mqttb_conn_new(&c, b, 0, NULL), MQTTB_OK));
  static const unsigned char connect[] = {0x10, 0x0d, 0x00, 0x04, 'M',  'Q',  'T', 'T',
                                          0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 'c'};
  static const unsigned char subscribe[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 't', 0x00};
  static const unsigned char publish[] = {0x30, 0x04, 0x00, 0x01, 't', 'x'};
  cr_assert(eq(int, mqttb_conn_recv(c, connect, sizeof(connect), 0), MQTTB_OK));
  cr_assert(eq(int, mqttb_conn_recv(c, subscribe, sizeof(subscribe), 0), MQTTB_OK));
  size_t before = mqttb_conn_output_pending(c);
  cr_assert(eq(int, mqttb_conn_recv(c, publish, sizeof(publish), 0), MQTTB_OK));
  cr_assert(lt(sz, before, mqttb_conn_output_pending(c))); /* delivered */
  cr_assert(eq(int, saw_read, 0));
  mqttb_conn_del(c, 0);
  mqttb_broker_del(b);
}

/* The will topic wills/forbidden may not be published to. */
static int no_forbidden_wills(mqttb_access access, const char *topic, size_t len) {
  if (access == MQTTB_ACCESS_PUBLISH && len == 15 && memcmp(topic, "wills/forbidden", 15) == 0)
    return MQTTB_REASON_NOT_AUTHORIZED_5;
  return 0;
}

Test(authorize, will_topics_are_checked_like_publishes) {
  bed->authorize = no_forbidden_wills;
  tc *a = tc_new(bed);
  tc_connect_opts o = {.client_id = "w",
                       .clean = true,
                       .keepalive = 30,
                       .will_topic = "wills/forbidden",
                       .will_payload = "x"};
  cr_assert(eq(int, tc_connect(a, &o, NULL), MQTTB_REASON_NOT_AUTHORIZED));
  cr_assert(a->closed);
  cr_assert(eq(int, a->close_reason, MQTTB_ERR_NOT_AUTHORIZED));
  /* MQTT 5: the callback's code. */
  tc *b = tc_new(bed);
  c5o o5 = {.id = "w5",
            .clean = true,
            .keepalive = 30,
            .will_topic = "wills/forbidden",
            .will_payload = "x"};
  cr_assert(eq(int, connect5(b, &o5, NULL), MQTTB_REASON_NOT_AUTHORIZED_5));
  /* An allowed will topic connects. */
  tc *c = tc_new(bed);
  tc_connect_opts ok = {.client_id = "w2",
                        .clean = true,
                        .keepalive = 30,
                        .will_topic = "wills/fine",
                        .will_payload = "x"};
  cr_assert(eq(int, tc_connect(c, &ok, NULL), 0));
}

static mqttb_broker *id_broker;
static int id_authorize(mqttb_conn *conn, mqttb_access access, const char *topic, size_t len,
                        int qos, int retain, void *ud) {
  (void)access, (void)topic, (void)len, (void)qos, (void)retain, (void)ud;
  const char *id = mqttb_conn_get_client_id(conn);
  if (id)
    snprintf(will_client, sizeof(will_client), "%s", id);
  return 0;
}

Test(authorize, the_will_check_knows_the_client_id) {
  mqttb_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.authorize = id_authorize;
  cr_assert(eq(int, mqttb_broker_new(&id_broker, NULL, &cb, NULL, NULL), MQTTB_OK));
  mqttb_conn *c;
  cr_assert(eq(int, mqttb_conn_new(&c, id_broker, 0, NULL), MQTTB_OK));
  /* CONNECT, client id "dev7", will flag, will topic "w", will payload "x". */
  static const unsigned char connect[] = {0x10, 0x16, 0x00, 0x04, 'M',  'Q',  'T',  'T',
                                          0x04, 0x06, 0x00, 0x3c, 0x00, 0x04, 'd',  'e',
                                          'v',  '7',  0x00, 0x01, 'w',  0x00, 0x01, 'x'};
  cr_assert(eq(int, mqttb_conn_recv(c, connect, sizeof(connect), 0), MQTTB_OK));
  cr_assert(eq(str, will_client, "dev7"));
  mqttb_conn_del(c, 0);
  mqttb_broker_del(id_broker);
}

static char refusal_line[256];

static void keep_refusal(mqttb_broker *b, mqttb_log_level level, const char *msg, void *ud) {
  (void)b, (void)level, (void)ud;
  if (strstr(msg, "refusing connection"))
    snprintf(refusal_line, sizeof refusal_line, "%s", msg);
}

static int refuse_everyone(mqttb_conn *conn, const mqttb_auth_request *req, void *ud) {
  (void)conn, (void)req, (void)ud;
  return MQTTB_REASON_NOT_AUTHORIZED_5;
}

Test(authorize, the_refusal_is_logged_with_the_code_sent) {
  mqttb_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.log = keep_refusal;
  cb.authenticate = refuse_everyone;
  mqttb_broker *b;
  cr_assert(eq(int, mqttb_broker_new(&b, NULL, &cb, NULL, NULL), MQTTB_OK));
  mqttb_conn *c;
  cr_assert(eq(int, mqttb_conn_new(&c, b, 0, NULL), MQTTB_OK));
  static const unsigned char connect[] = {0x10, 0x0d, 0x00, 0x04, 'M',  'Q',  'T', 'T',
                                          0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 'c'};
  cr_assert(eq(int, mqttb_conn_recv(c, connect, sizeof(connect), 0), MQTTB_ERR_NOT_AUTHORIZED));
  mqttb_iovec iov[2];
  cr_assert(eq(int, mqttb_conn_output(c, iov, 2), 1));
  cr_assert(eq(int, ((const uint8_t *)iov[0].base)[3], 0x05)); /* MQTT 3.1.1's code */
  cr_assert(not(eq(ptr, strstr(refusal_line, "CONNACK 0x5)"), NULL)), "%s", refusal_line);
  mqttb_conn_del(c, 0);
  mqttb_broker_del(b);
}
