/* SPDX-License-Identifier: MIT */
/* The application as a client: mqttb_broker_publish, _subscribe and
 * _unsubscribe, with network clients of both protocol families on the
 * other side. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "harness.h"
#include "v5.h"

static tb *bed;

static void setup(void) {
  bed = tb_new(NULL);
}

static void teardown(void) {
  tb_del(bed);
}

TestSuite(host, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------- a recorder */

#define MAXGOT 64

/* What a host subscriber received, copied out of the borrowed view. */
typedef struct got {
  char topic[128];
  char payload[256];
  size_t plen;
  int qos, retain, payload_format, has_expiry;
  uint32_t expiry;
  char content_type[64], response_topic[64], corr[64], up[4][2][32];
  size_t corr_len, nup;
} got;

typedef struct rec {
  got m[MAXGOT];
  int n;
  /* What the callback does besides recording. */
  void (*then)(struct rec *r, const mqttb_message *msg);
  int rv; /* the last result of a call made in then */
  int calls;
} rec;

static void copy(char *dst, size_t cap, const void *src, size_t len) {
  cr_assert(lt(sz, len, cap));
  if (len)
    memcpy(dst, src, len);
  dst[len] = '\0';
}

static void on_msg(mqttb_broker *b, const mqttb_message *msg, void *ud) {
  rec *r = ud;
  cr_assert(eq(ptr, b, bed->broker));
  r->calls++;
  if (r->n < MAXGOT) {
    got *g = &r->m[r->n++];
    memset(g, 0, sizeof(*g));
    copy(g->topic, sizeof(g->topic), msg->topic, msg->topic_len);
    copy(g->payload, sizeof(g->payload), msg->payload, msg->payload_len);
    g->plen = msg->payload_len;
    g->qos = msg->qos;
    g->retain = msg->retain;
    g->payload_format = msg->payload_format;
    g->has_expiry = msg->has_message_expiry;
    g->expiry = msg->message_expiry;
    if (msg->content_type)
      copy(g->content_type, sizeof(g->content_type), msg->content_type, msg->content_type_len);
    if (msg->response_topic)
      copy(g->response_topic, sizeof(g->response_topic), msg->response_topic,
           msg->response_topic_len);
    if (msg->correlation_data) {
      copy(g->corr, sizeof(g->corr), msg->correlation_data, msg->correlation_data_len);
      g->corr_len = msg->correlation_data_len;
    }
    for (size_t i = 0; i < msg->user_property_count && i < 4; i++) {
      const mqttb_user_property *u = &msg->user_properties[i];
      copy(g->up[i][0], 32, u->name, u->name_len);
      copy(g->up[i][1], 32, u->value, u->value_len);
      g->nup++;
    }
  }
  if (r->then)
    r->then(r, msg);
}

static mqttb_message text(const char *topic, const char *payload, int qos, int retain) {
  mqttb_message m;
  memset(&m, 0, sizeof(m));
  m.topic = topic;
  m.payload = payload;
  m.payload_len = strlen(payload);
  m.qos = qos;
  m.retain = retain;
  return m;
}

static int publish(const char *topic, const char *payload, int qos, int retain) {
  mqttb_message m = text(topic, payload, qos, retain);
  return mqttb_broker_publish(bed->broker, &m, bed->now);
}

static int subscribe(const char *filter, int options, rec *r) {
  return mqttb_broker_subscribe(bed->broker, filter, options, on_msg, r, bed->now);
}

static mqttb_stats stats(void) {
  mqttb_stats s;
  cr_assert(eq(int, mqttb_broker_get_stats(bed->broker, &s), MQTTB_OK));
  return s;
}

/* ---------------------------------------------------------------- publishing */

Test(host, publish_reaches_network_subscribers_of_both_protocols) {
  tc *a = tc_open(bed, "a", true);
  cr_assert(eq(int, tc_subscribe(a, "sensors/#", 1), 1));
  tc *b = open5(bed, "b", 0);
  cr_assert(eq(int, subscribe5(b, "sensors/+/temp", 2, 0), 2));
  cr_assert(eq(int, publish("sensors/kitchen/temp", "21.5", 1, 0), 2));
  mqttb_publish p;
  cr_assert(tc_expect_publish(a, &p));
  cr_assert(slice_eq(p.topic, "sensors/kitchen/temp") && slice_eq(p.payload, "21.5"));
  cr_assert(eq(int, p.qos, 1));
  tc_ack(a, &p);
  rpub r;
  cr_assert(read_pub5(b, &r));
  cr_assert(payload_is(&r, "21.5"));
  cr_assert(eq(int, r.qos, 1));
  /* Nobody subscribes: delivered to none. */
  cr_assert(eq(int, publish("other", "x", 0, 0), 0));
  cr_assert(tc_quiet(a) && tc_quiet(b));
}

Test(host, published_properties_reach_mqtt5_subscribers) {
  tc *b = open5(bed, "b", 0);
  cr_assert(eq(int, subscribe5(b, "req", 0, 0), 0));
  mqttb_user_property up[2] = {{"k1", 2, "v1", 2}, {"k2", 2, "", 0}};
  mqttb_message m = text("req", "{\"a\":1}", 0, 0);
  m.payload_format = 1;
  m.content_type = "application/json";
  m.content_type_len = strlen(m.content_type);
  m.response_topic = "resp/1";
  m.response_topic_len = 6;
  m.correlation_data = (const uint8_t *)"\x00\x01\x02";
  m.correlation_data_len = 3;
  m.user_properties = up;
  m.user_property_count = 2;
  m.has_message_expiry = 1;
  m.message_expiry = 60;
  cr_assert(eq(int, mqttb_broker_publish(bed->broker, &m, bed->now), 1));
  rpub r;
  cr_assert(read_pub5(b, &r));
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_PAYLOAD_FORMAT), 1));
  cr_assert(pb_str_is(&r.props, MQTTB_PROP_CONTENT_TYPE, "application/json"));
  cr_assert(pb_str_is(&r.props, MQTTB_PROP_RESPONSE_TOPIC, "resp/1"));
  mqttb_prop p;
  cr_assert(pb_find(&r.props, MQTTB_PROP_CORRELATION_DATA, &p));
  cr_assert(eq(sz, p.a.len, 3));
  cr_assert(eq(int, memcmp(p.a.ptr, "\x00\x01\x02", 3), 0));
  cr_assert(eq(sz, pb_count(&r.props, MQTTB_PROP_USER_PROPERTY), 2));
  cr_assert(eq(long, pb_int(&r.props, MQTTB_PROP_MESSAGE_EXPIRY), 60));
}

Test(host, retained_publish_is_stored_and_cleared) {
  cr_assert(eq(int, publish("cfg/mode", "auto", 1, 1), 0));
  cr_assert(eq(u64, stats().retained_count, 1));
  tc *a = tc_open(bed, "a", true);
  cr_assert(eq(int, tc_subscribe(a, "cfg/#", 1), 1));
  mqttb_publish p;
  cr_assert(tc_expect_publish(a, &p));
  cr_assert(p.retain && slice_eq(p.payload, "auto"));
  tc_ack(a, &p);
  cr_assert(eq(int, publish("cfg/mode", "", 0, 1), 1)); /* clears, and is delivered */
  cr_assert(eq(u64, stats().retained_count, 0));
}

Test(host, publish_refuses_what_a_client_could_not_send) {
  cr_assert(eq(int, publish("a/+", "x", 0, 0), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, publish("a/#", "x", 0, 0), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, publish("", "x", 0, 0), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, publish("bad\xff", "x", 0, 0), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, publish("a", "x", 3, 0), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, publish("a", "x", -1, 0), MQTTB_ERR_INVALID_ARGUMENT));
  mqttb_message m = text("a", "\xc3\x28", 0, 0);
  m.payload_format = 1; /* not UTF-8 */
  cr_assert(eq(int, mqttb_broker_publish(bed->broker, &m, bed->now), MQTTB_ERR_INVALID_ARGUMENT));
  m = text("a", "x", 0, 0);
  m.response_topic = "r/#";
  m.response_topic_len = 3;
  cr_assert(eq(int, mqttb_broker_publish(bed->broker, &m, bed->now), MQTTB_ERR_INVALID_ARGUMENT));
  m = text("a", "x", 0, 0);
  m.user_property_count = 1; /* and no array */
  cr_assert(eq(int, mqttb_broker_publish(bed->broker, &m, bed->now), MQTTB_ERR_INVALID_ARGUMENT));
  m = text("a", "x", 0, 0);
  cr_assert(
      eq(int, mqttb_broker_publish_versioned(bed->broker, 99, &m, bed->now), MQTTB_ERR_VERSION));
  cr_assert(eq(int, mqttb_broker_publish(NULL, &m, 0), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, mqttb_broker_publish(bed->broker, NULL, 0), MQTTB_ERR_INVALID_ARGUMENT));
  /* Deeper than max_topic_levels (128). */
  char deep[300];
  size_t n = 0;
  for (int i = 0; i < 130; i++) {
    deep[n++] = 'a';
    deep[n++] = '/';
  }
  deep[n - 1] = '\0';
  cr_assert(eq(int, publish(deep, "x", 0, 0), MQTTB_ERR_INVALID_ARGUMENT));
  /* An explicit topic length needs no NUL. */
  m = text("abc/def", "x", 0, 0);
  m.topic_len = 3;
  rec r = {0};
  cr_assert(eq(int, subscribe("abc", 0, &r), MQTTB_OK));
  cr_assert(eq(int, mqttb_broker_publish(bed->broker, &m, bed->now), 1));
  cr_assert(eq(int, r.n, 1));
  cr_assert(eq(str, r.m[0].topic, "abc"));
}

/* ---------------------------------------------------------------- subscribing */

Test(host, subscriber_receives_network_messages_with_properties) {
  rec r = {0};
  cr_assert(eq(int, subscribe("dev/#", MQTTB_SUBOPT_QOS1, &r), MQTTB_OK));
  tc *a = tc_open(bed, "a", true);
  cr_assert(tc_publish(a, "dev/1", "hello", 2, false));
  cr_assert(eq(int, r.n, 1));
  cr_assert(eq(str, r.m[0].topic, "dev/1"));
  cr_assert(eq(str, r.m[0].payload, "hello"));
  cr_assert(eq(int, r.m[0].qos, 1)); /* the lower of 2 and the subscription's 1 */
  cr_assert(eq(int, r.m[0].retain, 0));
  cr_assert(eq(int, r.m[0].has_expiry, 0));
  tc *b = open5(bed, "b", 0);
  pb props = {0};
  pb_byte(&props, MQTTB_PROP_PAYLOAD_FORMAT, 1);
  pb_str(&props, MQTTB_PROP_CONTENT_TYPE, "text/plain");
  pb_str(&props, MQTTB_PROP_RESPONSE_TOPIC, "dev/reply");
  pb_bin(&props, MQTTB_PROP_CORRELATION_DATA, "c0", 2);
  pb_pair(&props, "unit", "C");
  pb_pair(&props, "unit", "K");
  pb_u32(&props, MQTTB_PROP_MESSAGE_EXPIRY, 30);
  cr_assert(eq(int, pub5(b, "dev/2", "20", 0, false, &props), 0));
  cr_assert(eq(int, r.n, 2));
  got *g = &r.m[1];
  cr_assert(eq(int, g->qos, 0));
  cr_assert(eq(int, g->payload_format, 1));
  cr_assert(eq(str, g->content_type, "text/plain"));
  cr_assert(eq(str, g->response_topic, "dev/reply"));
  cr_assert(eq(sz, g->corr_len, 2));
  cr_assert(eq(str, g->corr, "c0"));
  cr_assert(eq(sz, g->nup, 2));
  cr_assert(eq(str, g->up[0][0], "unit"));
  cr_assert(eq(str, g->up[0][1], "C"));
  cr_assert(eq(str, g->up[1][1], "K"));
  cr_assert(eq(int, g->has_expiry, 1));
  cr_assert(eq(u32, g->expiry, 30));
}

Test(host, retained_messages_follow_the_subscription_options) {
  tc *a = tc_open(bed, "a", true);
  cr_assert(tc_publish(a, "st/1", "on", 1, true));
  cr_assert(tc_publish(a, "st/2", "off", 0, true));
  rec r = {0};
  cr_assert(eq(int, subscribe("st/+", MQTTB_SUBOPT_QOS2, &r), MQTTB_OK));
  cr_assert(eq(int, r.n, 2)); /* before mqttb_broker_subscribe returned */
  cr_assert(eq(int, r.m[0].retain, 1));
  cr_assert(eq(int, r.m[1].retain, 1));
  /* Retain Handling 1: again only when the subscription is new. */
  cr_assert(eq(int, subscribe("st/+", MQTTB_SUBOPT_RETAIN_IF_NEW, &r), MQTTB_OK));
  cr_assert(eq(int, r.n, 2));
  rec none = {0};
  cr_assert(eq(int, subscribe("st/#", MQTTB_SUBOPT_RETAIN_NONE, &none), MQTTB_OK));
  cr_assert(eq(int, none.n, 0));
  /* Live messages carry retain 0, unless Retain As Published. */
  rec rap = {0};
  cr_assert(eq(int,
               subscribe("st/1", MQTTB_SUBOPT_RETAIN_NONE | MQTTB_SUBOPT_RETAIN_AS_PUBLISHED, &rap),
               MQTTB_OK));
  cr_assert(tc_publish(a, "st/1", "on2", 0, true));
  cr_assert(eq(int, none.n, 1));
  cr_assert(eq(int, none.m[0].retain, 0));
  cr_assert(eq(int, rap.n, 1));
  cr_assert(eq(int, rap.m[0].retain, 1));
}

Test(host, one_copy_per_subscriber_however_many_filters_match) {
  rec r = {0}, other = {0};
  cr_assert(eq(int, subscribe("a/#", MQTTB_SUBOPT_QOS0, &r), MQTTB_OK));
  cr_assert(eq(int, subscribe("a/b", MQTTB_SUBOPT_QOS2, &r), MQTTB_OK));
  cr_assert(eq(int, subscribe("+/b", MQTTB_SUBOPT_QOS1, &other), MQTTB_OK));
  cr_assert(eq(int, publish("a/b", "x", 2, 0), 2));
  cr_assert(eq(int, r.n, 1));
  cr_assert(eq(int, r.m[0].qos, 2)); /* the highest of the matching filters */
  cr_assert(eq(int, other.n, 1));
  cr_assert(eq(int, other.m[0].qos, 1));
}

Test(host, host_subscribers_are_not_clients) {
  tb_del(bed);
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.sys_interval_ms = 0;
  s.max_connections = 1;
  s.max_subscriptions = 1;
  bed = tb_new(&s);
  rec r = {0};
  cr_assert(eq(int, subscribe("x/1", 0, &r), MQTTB_OK));
  cr_assert(eq(int, subscribe("x/2", 0, &r), MQTTB_OK)); /* max_subscriptions is for sessions */
  mqttb_stats st = stats();
  cr_assert(eq(u64, st.subscription_count, 2));
  cr_assert(eq(u64, st.clients_connected, 0));
  cr_assert(eq(u64, st.clients_disconnected, 0));
  cr_assert(eq(u64, st.connections, 0));
  /* The one connection max_connections allows is still free, and no client
   * id of any client is taken. */
  tc *a = tc_open(bed, "", true);
  cr_assert(not(eq(ptr, (void *)mqttb_conn_get_client_id(a->conn), NULL)));
  cr_assert(tc_publish(a, "x/1", "m", 0, false));
  cr_assert(eq(int, r.n, 1));
  cr_assert(eq(u64, stats().clients_connected, 1));
}

Test(host, sys_counts_host_subscriptions) {
  tb_del(bed);
  mqttb_settings s;
  mqttb_settings_default(&s);
  bed = tb_new(&s); /* $SYS on */
  rec r = {0};
  cr_assert(eq(int, subscribe("$SYS/broker/subscriptions/count", 0, &r), MQTTB_OK));
  tb_advance(bed, s.sys_interval_ms);
  cr_assert(ge(int, r.n, 1));
  cr_assert(eq(str, r.m[r.n - 1].payload, "1"));
  cr_assert(eq(str, r.m[r.n - 1].topic, "$SYS/broker/subscriptions/count"));
}

Test(host, shared_group_with_network_clients) {
  rec r = {0};
  cr_assert(eq(int, subscribe("$share/g/jobs", MQTTB_SUBOPT_QOS1, &r), MQTTB_OK));
  tc *w = open5(bed, "w", 0);
  cr_assert(eq(int, subscribe5(w, "$share/g/jobs", 1, 0), 1));
  tc *p = tc_open(bed, "p", true);
  for (int i = 0; i < 6; i++)
    cr_assert(tc_publish(p, "jobs", "j", 0, false));
  int net = 0;
  rpub rp;
  while (read_pub5(w, &rp))
    net++;
  cr_assert(eq(int, r.n + net, 6));
  cr_assert(eq(int, r.n, 3)); /* round robin */
  /* No Local is refused on a shared subscription [MQTT-3.8.3-4]. */
  cr_assert(
      eq(int, subscribe("$share/g/x", MQTTB_SUBOPT_NO_LOCAL, &r), MQTTB_ERR_INVALID_ARGUMENT));
  /* When the host subscriber leaves, the network member gets everything. */
  cr_assert(eq(int, mqttb_broker_unsubscribe(bed->broker, "$share/g/jobs", on_msg, &r, bed->now),
               MQTTB_OK));
  cr_assert(tc_publish(p, "jobs", "j", 0, false));
  cr_assert(read_pub5(w, &rp));
}

Test(host, no_local_skips_what_the_application_published) {
  rec r = {0};
  cr_assert(eq(int, subscribe("t", MQTTB_SUBOPT_NO_LOCAL, &r), MQTTB_OK));
  cr_assert(eq(int, publish("t", "mine", 0, 0), 0));
  cr_assert(eq(int, r.n, 0));
  tc *a = tc_open(bed, "a", true);
  cr_assert(tc_publish(a, "t", "theirs", 0, false));
  cr_assert(eq(int, r.n, 1));
  cr_assert(eq(str, r.m[0].payload, "theirs"));
}

Test(host, wills_reach_host_subscribers) {
  rec r = {0};
  cr_assert(eq(int, subscribe("wills/#", MQTTB_SUBOPT_QOS1, &r), MQTTB_OK));
  tc *a = tc_new(bed);
  tc_connect_opts o = {.client_id = "w1",
                       .clean = true,
                       .keepalive = 30,
                       .will_topic = "wills/w1",
                       .will_payload = "gone",
                       .will_qos = 1};
  cr_assert(eq(int, tc_connect(a, &o, NULL), 0));
  tc_drop(a);
  cr_assert(eq(int, r.n, 1));
  cr_assert(eq(str, r.m[0].payload, "gone"));
}

Test(host, subscribe_refuses_bad_filters_and_options) {
  rec r = {0};
  cr_assert(eq(int, subscribe("a/#/b", 0, &r), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, subscribe("a+", 0, &r), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, subscribe("", 0, &r), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, subscribe("$share/g", 0, &r), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, subscribe("a", 3, &r), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, subscribe("a", 0x30, &r), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, subscribe("a", 0x40, &r), MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, mqttb_broker_subscribe(bed->broker, "a", 0, NULL, NULL, 0),
               MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(int, mqttb_broker_subscribe(bed->broker, NULL, 0, on_msg, &r, 0),
               MQTTB_ERR_INVALID_ARGUMENT));
  cr_assert(eq(u64, stats().subscription_count, 0));
  cr_assert(
      eq(int, mqttb_broker_unsubscribe(bed->broker, "a", on_msg, &r, 0), MQTTB_ERR_NOT_FOUND));
  cr_assert(eq(int, subscribe("a", 0, &r), MQTTB_OK));
  cr_assert(
      eq(int, mqttb_broker_unsubscribe(bed->broker, "b", on_msg, &r, 0), MQTTB_ERR_NOT_FOUND));
  rec other = {0};
  cr_assert(
      eq(int, mqttb_broker_unsubscribe(bed->broker, "a", on_msg, &other, 0), MQTTB_ERR_NOT_FOUND));
  cr_assert(eq(int, mqttb_broker_unsubscribe(bed->broker, "a", on_msg, &r, 0), MQTTB_OK));
  cr_assert(eq(u64, stats().subscription_count, 0));
  cr_assert(eq(int, publish("a", "x", 0, 0), 0));
  cr_assert(eq(int, r.n, 0));
}

/* ---------------------------------------------------------------- re-entrancy */

static void republish_elsewhere(rec *r, const mqttb_message *msg) {
  if (msg->topic_len == 2 && memcmp(msg->topic, "in", 2) == 0)
    r->rv = publish("out", "from-callback", 1, 0);
}

Test(host, callback_may_publish_and_the_message_comes_after_it_returns) {
  rec r = {0}, late = {0};
  r.then = republish_elsewhere;
  cr_assert(eq(int, subscribe("in", 0, &r), MQTTB_OK));
  cr_assert(eq(int, subscribe("#", 0, &late), MQTTB_OK));
  tc *net = tc_open(bed, "net", true);
  cr_assert(eq(int, tc_subscribe(net, "out", 1), 1));
  cr_assert(eq(int, publish("in", "go", 0, 0), 2));
  /* The callback's publish reached the network subscriber and the other
   * host subscriber, after "in". */
  cr_assert(eq(int, r.rv, 2));
  mqttb_publish p;
  cr_assert(tc_expect_publish(net, &p));
  cr_assert(slice_eq(p.payload, "from-callback"));
  cr_assert(eq(int, late.n, 2));
  cr_assert(eq(str, late.m[0].topic, "in"));
  cr_assert(eq(str, late.m[1].topic, "out"));
}

static void echo_forever(rec *r, const mqttb_message *msg) {
  char payload[300];
  copy(payload, sizeof(payload), msg->payload, msg->payload_len);
  r->rv = publish("loop", payload, 0, 0);
}

Test(host, a_loop_of_republishing_callbacks_ends) {
  rec r = {0};
  r.then = echo_forever;
  cr_assert(eq(int, subscribe("loop", 0, &r), MQTTB_OK));
  tc *a = tc_open(bed, "a", true);
  cr_assert(tc_publish(a, "loop", "x", 0, false));
  /* The first delivery is depth 0; each republish one deeper; the one at
   * MQTTB_HOST_MAX_DEPTH is refused. */
  cr_assert(eq(int, r.calls, MQTTB_HOST_MAX_DEPTH + 1));
  cr_assert(eq(int, r.rv, MQTTB_ERR_QUOTA));
  /* The broker goes on. */
  r.then = NULL;
  cr_assert(tc_publish(a, "loop", "y", 0, false));
  cr_assert(eq(int, r.calls, MQTTB_HOST_MAX_DEPTH + 2));
}

static rec *victim;

static void unsubscribe_victim(rec *r, const mqttb_message *msg) {
  (void)msg;
  r->rv = mqttb_broker_unsubscribe(bed->broker, "v", on_msg, victim, bed->now);
}

static void subscribe_more(rec *r, const mqttb_message *msg) {
  (void)msg;
  r->then = NULL;
  r->rv = subscribe("more/#", 0, r);
}

Test(host, callback_may_subscribe_and_unsubscribe) {
  rec first = {0}, v = {0};
  first.then = unsubscribe_victim;
  victim = &v;
  /* first is subscribed before v, so it is called first, and its
   * unsubscribe drops the delivery already waiting for v. */
  cr_assert(eq(int, subscribe("v", 0, &first), MQTTB_OK));
  cr_assert(eq(int, subscribe("v", 0, &v), MQTTB_OK));
  cr_assert(eq(int, publish("v", "1", 0, 0), 2));
  cr_assert(eq(int, first.rv, MQTTB_OK));
  cr_assert(eq(int, first.n, 1));
  cr_assert(eq(int, v.n, 0));

  rec s = {0};
  s.then = subscribe_more;
  cr_assert(eq(int, publish("more/retained", "r", 0, 1), 0));
  cr_assert(eq(int, subscribe("trigger", 0, &s), MQTTB_OK));
  cr_assert(eq(int, publish("trigger", "t", 0, 0), 1));
  cr_assert(eq(int, s.rv, MQTTB_OK));
  /* The retained message of the new subscription came after the callback. */
  cr_assert(eq(int, s.n, 2));
  cr_assert(eq(str, s.m[1].topic, "more/retained"));
  cr_assert(eq(int, s.m[1].retain, 1));
}

static void publish_from_want_write(tb *b, tc *c) {
  (void)c;
  int *rv = b->hook_data;
  rv[0] = publish("ww", "x", 0, 0);
  rv[1] = subscribe("ww", 0, NULL);
}

Test(host, host_calls_are_refused_inside_want_write) {
  int rv[2] = {1, 1};
  bed->hook_data = rv;
  bed->want_write_hook = publish_from_want_write;
  tc *a = tc_open(bed, "a", true); /* the CONNACK calls want_write */
  bed->want_write_hook = NULL;
  cr_assert(eq(int, rv[0], MQTTB_ERR_INVALID_STATE));
  cr_assert(eq(int, rv[1], MQTTB_ERR_INVALID_STATE));
  (void)a;
}

static void publish_from_on_close(tb *b, tc *c, int reason) {
  (void)c;
  (void)reason;
  int *rv = b->hook_data;
  *rv = publish("gone", "bye", 0, 0);
}

Test(host, on_close_may_publish) {
  rec r = {0};
  cr_assert(eq(int, subscribe("gone", 0, &r), MQTTB_OK));
  int rv = -1;
  bed->hook_data = &rv;
  bed->on_close_hook = publish_from_on_close;
  tc *a = tc_open(bed, "a", true);
  tc_disconnect(a);
  bed->on_close_hook = NULL;
  cr_assert(eq(int, rv, 1));
  cr_assert(eq(int, r.n, 1));
}

/* ---------------------------------------------------------------- memory */

Test(host, out_of_memory_anywhere_leaves_a_consistent_broker) {
  /* Fail each allocation in turn of a subscribe, a retained delivery and
   * a publish with properties; every call returns an error or succeeds,
   * and tb_del checks nothing leaked. */
  for (long k = 1; k < 60; k++) {
    tb_del(bed);
    bed = tb_new(NULL);
    cr_assert(eq(int, publish("m/r", "retained", 0, 1), 0));
    tc *a = tc_open(bed, "a", true);
    cr_assert(eq(int, tc_subscribe(a, "m/#", 0), 0));
    mqttb_publish p;
    cr_assert(tc_expect_publish(a, &p));
    rec r = {0};
    bed->alloc.fail_at = bed->alloc.count + k;
    int s1 = subscribe("m/#", 0, &r);
    mqttb_user_property up = {"k", 1, "v", 1};
    mqttb_message m = text("m/x", "payload", 1, 0);
    m.user_properties = &up;
    m.user_property_count = 1;
    int s2 = mqttb_broker_publish(bed->broker, &m, bed->now);
    bed->alloc.fail_at = 0;
    cr_assert(s1 == MQTTB_OK || s1 == MQTTB_ERR_NOMEM, "k %ld: subscribe %d", k, s1);
    cr_assert(s2 >= 0 || s2 == MQTTB_ERR_NOMEM, "k %ld: publish %d", k, s2);
    /* Still works afterwards. */
    cr_assert(eq(int, subscribe("after", 0, &r), MQTTB_OK));
    int before = r.n;
    cr_assert(eq(int, publish("after", "x", 0, 0), 1));
    cr_assert(eq(int, r.n, before + 1));
  }
}

static void republish_view(rec *r, const mqttb_message *msg) {
  /* The view itself, topic not NUL-terminated: the payload follows it in
   * memory, so reading the topic with strlen would run into it. */
  r->rv = mqttb_broker_publish(bed->broker, msg, bed->now);
}

Test(host, republishing_the_delivered_view_uses_its_lengths) {
  rec r = {0};
  r.then = republish_view;
  cr_assert(eq(int, subscribe("v/#", 0, &r), MQTTB_OK));
  cr_assert(eq(int, publish("v/x", "PAYLOADPAYLOAD", 0, 0), 1));
  cr_assert(eq(int, r.calls, MQTTB_HOST_MAX_DEPTH + 1));
  cr_assert(eq(int, r.rv, MQTTB_ERR_QUOTA));
  for (int i = 0; i < r.n; i++)
    cr_assert(eq(str, r.m[i].topic, "v/x"));
  /* The refusal's log line names the topic, not the payload after it. */
  cr_assert(not(eq(ptr, strstr(bed->last_log, "v/x refused"), NULL)), "%s", bed->last_log);
}
