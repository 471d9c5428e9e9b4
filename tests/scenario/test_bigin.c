/* SPDX-License-Identifier: MIT */
/* Large PUBLISH packets received in place: from 4 KiB, a PUBLISH whose
 * body is not all in goes into the block that becomes its message, which
 * the embedder can fill directly, along with blocks for the packets
 * expected after it (mqttb_conn_recv_buffers and mqttb_conn_recv_commit).
 * Split anywhere, through either call, with expectations met and not, MQTT
 * 5 properties, topic aliases, refusals, malformed bodies, the work budget
 * and closes half way; every bed checks at its end that no block leaked. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "v5.h"

static tb *bed;

/* The suite's settings: the defaults without $SYS. */
static mqttb_settings settings(void) {
  mqttb_settings s;
  mqttb_settings_default(&s);
  s.sys_interval_ms = 0;
  return s;
}

/* Replace the bed with one using these settings. */
static void use_settings(const mqttb_settings *s) {
  tb_del(bed);
  bed = tb_new(s);
}

static void setup(void) {
  mqttb_settings s = settings();
  bed = tb_new(&s);
}

static void teardown(void) {
  tb_del(bed);
}

TestSuite(bigin, .init = setup, .fini = teardown);

/* A PUBLISH (MQTT 3.1.1, or 5 with props) of plen payload bytes, each
 * byte a function of its position; *len is the packet's size. */
static uint8_t *make_publish(const char *topic, size_t plen, uint8_t qos, uint16_t pid,
                             const pb *props, size_t *len) {
  uint8_t *payload = malloc(plen);
  for (size_t i = 0; i < plen; i++)
    payload[i] = (uint8_t)(i * 7 + (i >> 9));
  mqttb_publish p;
  memset(&p, 0, sizeof(p));
  p.v5 = props != NULL;
  if (props)
    p.props = pb_slice(props);
  p.qos = qos;
  p.topic = v5_slice(topic);
  p.packet_id = pid;
  p.payload.ptr = payload;
  p.payload.len = plen;
  *len = mqttb_publish_size(&p);
  uint8_t *buf = malloc(*len);
  cr_assert(eq(sz, mqttb_encode_publish(buf, &p), *len));
  free(payload);
  return buf;
}

static bool payload_ok(mqttb_slice s, size_t plen) {
  if (s.len != plen)
    return false;
  for (size_t i = 0; i < plen; i++)
    if (s.ptr[i] != (uint8_t)(i * 7 + (i >> 9)))
      return false;
  return true;
}

/* The next packet sub got is a PUBLISH of topic with the test payload. */
static void expect_big(tc *sub, uint8_t level, const char *topic, size_t plen, mqttb_publish *out) {
  cr_assert(tc_read(sub), "no PUBLISH of %zu bytes", plen);
  cr_assert(eq(u8, sub->f.type, MQTTB_PKT_PUBLISH));
  mqttb_publish p;
  cr_assert(
      eq(int, mqttb_decode_publish_v(sub->f.flags, sub->body, sub->f.remaining, level, &p), 0));
  cr_assert(slice_eq(p.topic, topic));
  cr_assert(payload_ok(p.payload, plen), "payload of %zu bytes damaged", plen);
  if (out)
    *out = p;
  if (p.qos > 0)
    tc_ack(sub, &p);
}

/* Copy from in into the nl entries of lent, in order, until in ends or
 * they are full; returns the bytes copied. */
static size_t fill_lent(const mqttb_inbuf *lent, int nl, const uint8_t *in, size_t len) {
  size_t d = 0;
  for (int k = 0; k < nl && d < len; k++) {
    size_t m = len - d < lent[k].len ? len - d : lent[k].len;
    memcpy(lent[k].base, in + d, m);
    d += m;
  }
  return d;
}

/* Feed bytes in pieces of `chunk`, filling the broker's buffers directly
 * (at most max entries of them) whenever it offers some; *direct counts the
 * bytes that went there. */
static int send_direct(tc *c, const uint8_t *in, size_t len, size_t chunk, int max,
                       size_t *direct) {
  size_t off = 0;
  *direct = 0;
  cr_assert(le(int, max, 129));
  while (off < len) {
    mqttb_inbuf lent[129];
    int nl = mqttb_conn_recv_buffers(c->conn, lent, max);
    cr_assert(ge(int, nl, 0));
    cr_assert(le(int, nl, max));
    size_t n = len - off < chunk ? len - off : chunk;
    int rv;
    if (nl > 0) {
      size_t d = fill_lent(lent, nl, in + off, n);
      rv = mqttb_conn_recv_commit(c->conn, d, bed->now);
      *direct += d;
      if (rv == 0 && d < n)
        rv = tc_send(c, in + off + d, n - d);
    } else {
      rv = tc_send(c, in + off, n);
    }
    while (rv == 0 && mqttb_conn_input_pending(c->conn) > 0)
      rv = tc_send_once(c, NULL, 0);
    if (rv != 0)
      return rv;
    off += n;
  }
  return 0;
}

/* A byte stream of packets. */
typedef struct stream {
  uint8_t *b;
  size_t n;
} stream;

static void put(stream *st, const uint8_t *p, size_t n) {
  st->b = realloc(st->b, st->n + n);
  memcpy(st->b + st->n, p, n);
  st->n += n;
}

static void put_publish(stream *st, const char *topic, size_t plen, uint8_t qos, uint16_t pid) {
  size_t len;
  uint8_t *pkt = make_publish(topic, plen, qos, pid, NULL, &len);
  put(st, pkt, len);
  free(pkt);
}

/* n PUBLISH packets to topic at QoS 0, of plen bytes of payload each. */
static stream same_publishes(const char *topic, int n, size_t plen) {
  stream st = {0};
  for (int i = 0; i < n; i++)
    put_publish(&st, topic, plen, 0, 0);
  return st;
}

Test(bigin, split_anywhere_arrives_intact_at_every_qos) {
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "big/#", 2), 2));
  tc *pub = tc_open(bed, "pub", true);
  const size_t sizes[] = {4000, 4096, 4100, 70000, 300001};
  const size_t chunks[] = {1, 3, 1000, 4096, 65536, 1u << 20};
  uint16_t pid = 1;
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
      if (sizes[si] > 70000 && chunks[ci] < 1000)
        continue; /* a byte at a time through 300 kB takes long */
      for (uint8_t qos = 0; qos <= 2; qos++) {
        size_t len;
        uint8_t *pkt = make_publish("big/x", sizes[si], qos, qos ? pid : 0, NULL, &len);
        cr_assert(eq(int, tc_send_split(pub, pkt, len, chunks[ci]), 0));
        free(pkt);
        if (qos == 1)
          cr_assert(tc_read_type(pub, MQTTB_PKT_PUBACK));
        if (qos == 2) {
          cr_assert(tc_read_type(pub, MQTTB_PKT_PUBREC));
          tc_send_ack(pub, MQTTB_PKT_PUBREL, pid);
          cr_assert(tc_read_type(pub, MQTTB_PKT_PUBCOMP));
        }
        if (qos)
          pid = (uint16_t)(pid % 60000 + 1);
        expect_big(sub, 4, "big/x", sizes[si], NULL);
      }
    }
  }
  cr_assert(not(pub->closed));
  cr_assert(not(sub->closed));
}

/* What is written where mqttb_conn_recv_buffers points is what the
 * subscriber's output refers to: no copy in between, for the packet in
 * progress and for the one expected after it. */
Test(bigin, direct_input_is_the_message_sent) {
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "d", 0), 0));
  tc *pub = tc_open(bed, "pub", true);
  mqttb_inbuf lent[17];
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 17), 0), "nothing in progress");
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, NULL, 1), MQTTB_ERR_INVALID_ARGUMENT));
  size_t plen = 100000;
  stream st = {0};
  put_publish(&st, "d", plen, 0, 0);
  size_t len = st.n;
  put_publish(&st, "d", plen, 0, 0);
  size_t first = 1000;
  cr_assert(eq(int, tc_send(pub, st.b, first), 0));
  /* One entry asked for: the rest of the packet only. */
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 1), 1));
  cr_assert(eq(sz, lent[0].len, len - first));
  /* More: and the next packets' headers and bodies (two fit in 256 KiB). */
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 17), 5));
  cr_assert(eq(sz, lent[3].len + lent[4].len, len));
  /* Three: the next packet's only. */
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 3), 3));
  cr_assert(eq(sz, lent[0].len, len - first));
  cr_assert(eq(sz, lent[1].len + lent[2].len, len));
  size_t room = lent[0].len + lent[1].len + lent[2].len;
  /* More than there is room for is refused, and changes nothing. */
  cr_assert(
      eq(int, mqttb_conn_recv_commit(pub->conn, room + 1, bed->now), MQTTB_ERR_INVALID_ARGUMENT));
  uint8_t *end0 = (uint8_t *)lent[0].base + lent[0].len;
  uint8_t *end2 = (uint8_t *)lent[2].base + lent[2].len;
  size_t d = 0;
  for (int k = 0; k < 3; k++) {
    memcpy(lent[k].base, st.b + first + d, lent[k].len);
    d += lent[k].len;
  }
  cr_assert(eq(int, mqttb_conn_recv_commit(pub->conn, d, bed->now), 0));
  /* The subscriber's pending output: a header and a payload each, the
   * payloads the very memory the input was written to. */
  mqttb_iovec iov[8];
  int n = mqttb_conn_output(sub->conn, iov, 8);
  cr_assert(ge(int, n, 4));
  int found = 0;
  for (int i = 0; i < n; i++) {
    const uint8_t *end = (const uint8_t *)iov[i].base + iov[i].len;
    if (iov[i].len == plen && (end == end0 || end == end2))
      found++;
  }
  cr_assert(eq(int, found, 2), "a payload was copied");
  expect_big(sub, 4, "d", plen, NULL);
  expect_big(sub, 4, "d", plen, NULL);
  /* Both complete, each read into its block: the next packets are
   * expected as well, with nothing of them in yet, as pairs of a header
   * and a body (so not in one entry). */
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 1), 0), "no room for a pair");
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 17), 4), "between packets");
  cr_assert(eq(sz, lent[0].len + lent[1].len, len));
  cr_assert(eq(sz, lent[2].len + lent[3].len, len));
  memcpy(lent[0].base, st.b, lent[0].len);
  memcpy(lent[1].base, st.b + lent[0].len, lent[1].len);
  uint8_t *end1 = (uint8_t *)lent[1].base + lent[1].len;
  cr_assert(eq(int, mqttb_conn_recv_commit(pub->conn, len, bed->now), 0));
  n = mqttb_conn_output(sub->conn, iov, 8);
  found = 0;
  for (int i = 0; i < n; i++)
    found += iov[i].len == plen && (const uint8_t *)iov[i].base + iov[i].len == end1;
  cr_assert(eq(int, found, 1), "the third payload was copied");
  expect_big(sub, 4, "d", plen, NULL);
  /* A ping where the next was expected goes the usual way, and then
   * nothing is offered until a large packet is in progress again. */
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 17), 4));
  const uint8_t ping[] = {0xc0, 0};
  memcpy(lent[0].base, ping, sizeof ping);
  cr_assert(eq(int, mqttb_conn_recv_commit(pub->conn, sizeof ping, bed->now), 0));
  cr_assert(tc_read(pub));
  cr_assert(eq(u8, pub->f.type, MQTTB_PKT_PINGRESP));
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 17), 0), "after the ping");
  cr_assert(eq(int, mqttb_conn_recv_commit(pub->conn, 1, bed->now), MQTTB_ERR_INVALID_ARGUMENT));
  free(st.b);
  cr_assert(tc_quiet(sub));
  cr_assert(not(pub->closed));
}

/* A stream that arrives a whole number of packets at a time and is read
 * until drained, into the entries offered only: once the first packet is
 * in progress, every byte after it goes straight into its message, with
 * blocks offered between packets too. */
Test(bigin, a_stream_read_at_packet_boundaries_needs_no_copy) {
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "s", 0), 0));
  tc *pub = tc_open(bed, "pub", true);
  enum { PACKETS = 60, PLEN = 16384 };
  stream st = same_publishes("s", PACKETS, PLEN);
  const size_t pkt = st.n / PACKETS;
  cr_assert(eq(int, tc_send(pub, st.b, 100), 0));
  size_t off = 100, arrived = 100, direct = 0;
  int reads = 0, between = 0, writes = 0;
  const size_t sizes[] = {1, 3, 2, 7, 4}; /* packets per write of the peer */
  while (off < st.n) {
    if (off == arrived) {
      /* The rest of the packet in progress, then whole packets. */
      arrived += (pkt - arrived % pkt) % pkt + pkt * sizes[writes++ % 5];
      if (arrived > st.n)
        arrived = st.n;
    }
    mqttb_inbuf lent[129];
    int nl = mqttb_conn_recv_buffers(pub->conn, lent, 129);
    cr_assert(lt(int, 0, nl), "read %d, at byte %zu", reads, off);
    between += off % pkt == 0;
    size_t d = fill_lent(lent, nl, st.b + off, arrived - off);
    cr_assert(eq(int, mqttb_conn_recv_commit(pub->conn, d, bed->now), 0));
    direct += d;
    off += d;
    reads++;
  }
  cr_assert(lt(int, reads / 2, between), "%d of %d reads between packets", between, reads);
  cr_assert(eq(sz, direct, st.n - 100), "bytes copied: %zu", st.n - 100 - direct);
  for (int i = 0; i < PACKETS; i++)
    expect_big(sub, 4, "s", PLEN, NULL);
  cr_assert(tc_quiet(sub));
  free(st.b);
  cr_assert(not(pub->closed));
}

/* Streams of large packets of one size, with what breaks the expectation
 * in between (another size, another QoS, small packets, a ping), through
 * buffers of every length and any number of entries: all arrive, in
 * order. */
Test(bigin, expected_packets_and_surprises) {
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "e/#", 1), 1));
  tc *pub = tc_open(bed, "pub", true);
  stream st = {0};
  uint16_t pid = 1;
  size_t sizes[40];
  size_t nsizes = 0;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 5; i++) {
      put_publish(&st, "e/a", 5000, 0, 0);
      sizes[nsizes++] = 5000;
    }
    put_publish(&st, "e/a", 5000, 1, pid++); /* the same size at QoS 1 */
    sizes[nsizes++] = 5000;
    put_publish(&st, "e/a", 7000, 0, 0);
    sizes[nsizes++] = 7000;
    put_publish(&st, "e/a", 7000, 0, 0);
    sizes[nsizes++] = 7000;
    const uint8_t small[] = {0x30, 5, 0, 3, 'e', '/', 's'};
    put(&st, small, sizeof small);
    sizes[nsizes++] = 0;
    const uint8_t ping[] = {0xc0, 0};
    put(&st, ping, sizeof ping);
  }
  const size_t chunks[] = {1, 5, 4099, 5006, 9000, 65536, 1u << 20};
  const int maxes[] = {1, 2, 3, 5, 17};
  for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
    for (size_t mi = 0; mi < sizeof maxes / sizeof maxes[0]; mi++) {
      size_t direct;
      cr_assert(eq(int, send_direct(pub, st.b, st.n, chunks[ci], maxes[mi], &direct), 0));
      /* Reads the size of a packet or two with expected packets offered:
       * most bytes go straight to their messages. */
      bool most = maxes[mi] >= 3 && chunks[ci] > 4099 && chunks[ci] <= 9000;
      if (chunks[ci] > 4099 && chunks[ci] < st.n) /* (else it is all in one call) */
        cr_assert(lt(sz, most ? st.n / 2 : 0, direct),
                  "%zu of %zu bytes direct (chunks %zu, %d entries)", direct, st.n, chunks[ci],
                  maxes[mi]);
      for (size_t k = 0; k < nsizes; k++) {
        if (sizes[k] == 0) {
          mqttb_publish p;
          cr_assert(tc_expect_publish(sub, &p));
          cr_assert(eq(sz, p.payload.len, 0));
          continue;
        }
        expect_big(sub, 4, "e/a", sizes[k], NULL);
      }
      while (tc_read(pub))
        cr_assert(pub->f.type == MQTTB_PKT_PUBACK || pub->f.type == MQTTB_PKT_PINGRESP);
      cr_assert(tc_quiet(sub));
    }
  }
  free(st.b);
  cr_assert(not(pub->closed));
}

/* The work budget applies to input that was not what was expected: it is
 * held, and processed in order later. */
Test(bigin, budget_holds_unexpected_input_in_order) {
  mqttb_settings s = settings();
  s.work_budget = 3;
  use_settings(&s);
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "w", 0), 0));
  tc *pub = tc_open(bed, "pub", true);
  stream st = {0};
  put_publish(&st, "w", 4500, 0, 0);
  for (int i = 0; i < 3000; i++) {
    uint8_t small[] = {0x30, 5, 0, 1, 'w', (uint8_t)(i >> 8), (uint8_t)i};
    put(&st, small, sizeof small);
  }
  put_publish(&st, "w", 4500, 0, 0);
  size_t direct;
  cr_assert(eq(int, send_direct(pub, st.b, st.n, 30000, 17, &direct), 0));
  free(st.b);
  expect_big(sub, 4, "w", 4500, NULL);
  for (int i = 0; i < 3000; i++) {
    mqttb_publish p;
    cr_assert(tc_expect_publish(sub, &p));
    cr_assert(eq(sz, p.payload.len, 2));
    cr_assert(eq(int, p.payload.ptr[0] << 8 | p.payload.ptr[1], i & 0xffff));
  }
  expect_big(sub, 4, "w", 4500, NULL);
}

/* A direct read may be followed by more input through mqttb_conn_recv,
 * including the next large packet, whose header alone may be split. */
Test(bigin, direct_and_copied_input_interleave) {
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "i/+", 1), 1));
  tc *pub = tc_open(bed, "pub", true);
  const size_t chunks[] = {2, 777, 9000, 20000};
  for (size_t ci = 0; ci < 4; ci++) {
    for (int k = 0; k < 3; k++) {
      size_t len, direct;
      uint16_t pid = (uint16_t)(ci * 3 + k + 1);
      uint8_t *pkt = make_publish("i/j", 20000 + ci * 10 + k, 1, pid, NULL, &len);
      cr_assert(eq(int, send_direct(pub, pkt, len, chunks[ci], 1, &direct), 0));
      if (chunks[ci] < len)
        cr_assert(lt(sz, 0, direct), "no direct input with chunks of %zu", chunks[ci]);
      free(pkt);
      cr_assert(tc_read_type(pub, MQTTB_PKT_PUBACK));
      expect_big(sub, 4, "i/j", 20000 + ci * 10 + k, NULL);
    }
  }
}

/* From a callback the calls are refused: they allocate and free. */
static int refused_in_callback;
static void try_from_callback(tb *b, tc *c) {
  (void)b;
  mqttb_inbuf lent[3];
  if (c && mqttb_conn_recv_buffers(c->conn, lent, 3) == MQTTB_ERR_INVALID_STATE &&
      mqttb_conn_recv_commit(c->conn, 0, bed->now) == MQTTB_ERR_INVALID_STATE)
    refused_in_callback++;
}

Test(bigin, refused_from_callbacks) {
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "cb", 0), 0));
  tc *pub = tc_open(bed, "pub", true);
  size_t len;
  uint8_t *pkt = make_publish("cb", 8000, 0, 0, NULL, &len);
  cr_assert(eq(int, tc_send(pub, pkt, 3000), 0));
  tc_drain(sub);
  bed->want_write_hook = try_from_callback;
  mqttb_inbuf lent[1];
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 1), 1));
  memcpy(lent[0].base, pkt + 3000, len - 3000);
  cr_assert(eq(int, mqttb_conn_recv_commit(pub->conn, len - 3000, bed->now), 0));
  cr_assert(lt(int, 0, refused_in_callback), "want_write was not called");
  bed->want_write_hook = NULL;
  free(pkt);
  expect_big(sub, 4, "cb", 8000, NULL);
}

/* MQTT 5: the properties to forward stay with the message (the topic
 * alias is taken out of them in place); a message that names its topic by
 * alias is copied, and both arrive right. */
Test(bigin, mqtt5_properties_and_topic_aliases) {
  tc *s = open5(bed, "s", 0);
  cr_assert(eq(int, subscribe5(s, "v/5", 1, 0), 1));
  tc *p = open5(bed, "p", 0);
  pb props = {.n = 0};
  pb_pair(&props, "k", "one");
  pb_u16(&props, MQTTB_PROP_TOPIC_ALIAS, 2);
  pb_str(&props, MQTTB_PROP_CONTENT_TYPE, "image/jpeg");
  pb_pair(&props, "k2", "two");
  for (int round = 0; round < 2; round++) {
    size_t len, direct;
    /* The second round names the topic by its alias only. */
    uint8_t *pkt = make_publish(round ? "" : "v/5", 50000, 1, (uint16_t)(round + 1), &props, &len);
    cr_assert(eq(int, send_direct(p, pkt, len, 3000, 17, &direct), 0));
    free(pkt);
    cr_assert(lt(sz, 0, direct));
    uint8_t reason;
    cr_assert(read_ack5(p, MQTTB_PKT_PUBACK, NULL, &reason));
    cr_assert(eq(u8, reason, 0));
    mqttb_publish r;
    expect_big(s, 5, "v/5", 50000, &r);
    pb got = {.n = 0};
    pb_copy(&got, r.props);
    cr_assert(eq(long, pb_int(&got, MQTTB_PROP_TOPIC_ALIAS), -1), "the inbound alias leaked");
    cr_assert(pb_str_is(&got, MQTTB_PROP_CONTENT_TYPE, "image/jpeg"));
    cr_assert(eq(sz, pb_count(&got, MQTTB_PROP_USER_PROPERTY), 2));
  }
  cr_assert(not(p->closed));
}

static int refuse_secret(mqttb_access access, const char *topic, size_t len) {
  (void)access;
  return len >= 6 && memcmp(topic, "secret", 6) == 0 ? MQTTB_REASON_NOT_AUTHORIZED_5 : 0;
}

/* Refused, duplicated and unrouted large packets free their block. */
Test(bigin, refused_and_duplicate_packets_free_their_block) {
  bed->authorize = refuse_secret;
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "ok", 2), 2));
  tc *pub = tc_open(bed, "pub", true);
  size_t len;
  uint8_t *pkt = make_publish("secret", 10000, 1, 7, NULL, &len);
  cr_assert(eq(int, tc_send_split(pub, pkt, len, 4000), 0));
  free(pkt);
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBACK), "MQTT 3.1.1: acknowledged, not delivered");
  pkt = make_publish("ok", 10000, 2, 8, NULL, &len);
  cr_assert(eq(int, tc_send_split(pub, pkt, len, 4000), 0));
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBREC));
  /* The same QoS 2 packet again before PUBREL: not delivered twice. */
  cr_assert(eq(int, tc_send_split(pub, pkt, len, 4000), 0));
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBREC));
  free(pkt);
  tc_send_ack(pub, MQTTB_PKT_PUBREL, 8);
  cr_assert(tc_read_type(pub, MQTTB_PKT_PUBCOMP));
  expect_big(sub, 4, "ok", 10000, NULL);
  cr_assert(tc_quiet(sub));
  pkt = make_publish("nobody", 10000, 0, 0, NULL, &len);
  cr_assert(eq(int, tc_send_split(pub, pkt, len, 4000), 0));
  free(pkt);
  cr_assert(not(pub->closed));
}

/* A large PUBLISH whose body turns out malformed closes that connection
 * when it is complete; one dropped half way frees its block; others go
 * on. */
Test(bigin, malformed_and_unfinished_large_packets) {
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "m", 0), 0));
  /* Topic length beyond the packet. */
  tc *a = tc_open(bed, "a", true);
  uint8_t bad[6000];
  memset(bad, 'x', sizeof bad);
  bad[0] = 0x30;
  size_t h = 1 + mqttb_codec_varint_encode(bad + 1, sizeof bad - 4);
  size_t total = h + sizeof bad - 4;
  bad[h] = 0xff;
  bad[h + 1] = 0xff;
  cr_assert(eq(int, tc_send_split(a, bad, 3000, 3000), 0));
  mqttb_inbuf lent[3];
  cr_assert(eq(int, mqttb_conn_recv_buffers(a->conn, lent, 3), 3));
  size_t room = lent[0].len;
  cr_assert(eq(sz, room, total - 3000));
  memcpy(lent[0].base, bad + 3000, room);
  cr_assert(eq(int, mqttb_conn_recv_commit(a->conn, room, bed->now), MQTTB_ERR_MALFORMED));
  cr_assert(a->closed);
  cr_assert(eq(int, mqttb_conn_recv_buffers(a->conn, lent, 3), 0), "closing: no buffer");
  cr_assert(eq(int, mqttb_conn_recv_commit(a->conn, 0, bed->now), MQTTB_ERR_INVALID_STATE));
  /* A topic that is not UTF-8. */
  tc *b = tc_open(bed, "b", true);
  memset(bad, 'x', sizeof bad);
  bad[0] = 0x30;
  bad[h] = 0;
  bad[h + 1] = 2;
  bad[h + 2] = 0xc0;
  bad[h + 3] = 0x80;
  cr_assert(eq(int, tc_send_split(b, bad, total, 1000), MQTTB_ERR_MALFORMED));
  cr_assert(b->closed);
  /* Gone half way through a large packet. */
  tc *c = tc_open(bed, "c", true);
  size_t len;
  uint8_t *pkt = make_publish("m", 200000, 1, 1, NULL, &len);
  cr_assert(eq(int, tc_send(c, pkt, 100000), 0));
  tc_drop(c);
  free(pkt);
  /* Between packets, into the blocks offered for the next: one with the
   * expected fixed header but a topic length beyond the packet, and bytes
   * that are no packet at all (packet type 0). */
  pkt = make_publish("m", 9000, 0, 0, NULL, &len);
  for (int variant = 0; variant < 2; variant++) {
    tc *e = tc_open(bed, variant ? "e1" : "e0", true);
    cr_assert(eq(int, tc_send(e, pkt, 100), 0));
    mqttb_inbuf in[5];
    cr_assert(eq(int, mqttb_conn_recv_buffers(e->conn, in, 1), 1));
    memcpy(in[0].base, pkt + 100, len - 100);
    cr_assert(eq(int, mqttb_conn_recv_commit(e->conn, len - 100, bed->now), 0));
    expect_big(sub, 4, "m", 9000, NULL);
    int nl = mqttb_conn_recv_buffers(e->conn, in, 5);
    cr_assert(eq(int, nl, 4), "between packets");
    size_t hl = in[0].len;
    uint8_t next[9100];
    memcpy(next, pkt, len);
    if (variant == 0) {
      next[hl] = 0xff;
      next[hl + 1] = 0xff;
    } else {
      memset(next, 0, sizeof next);
    }
    size_t d = fill_lent(in, nl, next, len);
    cr_assert(eq(int, mqttb_conn_recv_commit(e->conn, d, bed->now), MQTTB_ERR_MALFORMED),
              "variant %d", variant);
    cr_assert(e->closed);
    cr_assert(eq(int, mqttb_conn_recv_buffers(e->conn, in, 5), 0), "closing: no buffer");
  }
  free(pkt);
  cr_assert(tc_quiet(sub));
  /* The subscriber and a new publisher are served. */
  tc *d = tc_open(bed, "d", true);
  pkt = make_publish("m", 9000, 0, 0, NULL, &len);
  cr_assert(eq(int, tc_send_split(d, pkt, len, 5000), 0));
  free(pkt);
  expect_big(sub, 4, "m", 9000, NULL);
}

/* Input held back by the work budget comes first: no direct buffer until
 * it is processed. */
Test(bigin, no_direct_buffer_while_input_is_held) {
  mqttb_settings s = settings();
  s.work_budget = 2;
  use_settings(&s);
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "h", 0), 0));
  tc *pub = tc_open(bed, "pub", true);
  /* Ten small packets, then the start of a large one, in one call. */
  size_t len;
  uint8_t *big = make_publish("h", 30000, 0, 0, NULL, &len);
  uint8_t in[10 * 5 + 4000];
  size_t n = 0;
  for (int i = 0; i < 10; i++) {
    const uint8_t small[] = {0x30, 3, 0, 1, 'h'};
    memcpy(in + n, small, 5);
    n += 5;
  }
  memcpy(in + n, big, 4000);
  n += 4000;
  cr_assert(eq(int, tc_send_once(pub, in, n), 0));
  mqttb_inbuf lent[1];
  cr_assert(lt(sz, 0, mqttb_conn_input_pending(pub->conn)));
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 1), 0));
  cr_assert(eq(int, mqttb_conn_recv_commit(pub->conn, 1, bed->now), MQTTB_ERR_INVALID_ARGUMENT));
  while (mqttb_conn_input_pending(pub->conn) > 0)
    cr_assert(eq(int, tc_send_once(pub, NULL, 0), 0));
  cr_assert(eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 1), 1));
  size_t room = lent[0].len;
  cr_assert(eq(sz, room, len - 4000));
  memcpy(lent[0].base, big + 4000, room);
  cr_assert(eq(int, mqttb_conn_recv_commit(pub->conn, room, bed->now), 0));
  free(big);
  for (int i = 0; i < 10; i++) {
    mqttb_publish p;
    cr_assert(tc_expect_publish(sub, &p));
    cr_assert(eq(sz, p.payload.len, 0));
  }
  expect_big(sub, 4, "h", 30000, NULL);
}

/* The bound on the input all connections buffer counts blocks of large
 * packets in progress, and gives them back when they become messages. */
Test(bigin, blocks_count_against_the_input_bound) {
  mqttb_settings s = settings();
  s.max_input_bytes_total = 100000;
  use_settings(&s);
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "b", 0), 0));
  tc *a = tc_open(bed, "a", true), *b = tc_open(bed, "b", true);
  size_t len;
  uint8_t *pkt = make_publish("b", 60000, 0, 0, NULL, &len);
  cr_assert(eq(int, tc_send(a, pkt, 5000), 0));
  cr_assert(eq(int, tc_send(b, pkt, 5000), MQTTB_ERR_CONN_NOMEM), "over the bound");
  cr_assert(b->closed);
  cr_assert(eq(int, tc_send(a, pkt + 5000, len - 5000), 0));
  expect_big(sub, 4, "b", 60000, NULL);
  /* Given back: a second one fits, many times over. */
  for (int i = 0; i < 5; i++) {
    tc *c = tc_open(bed, "c", true);
    cr_assert(eq(int, tc_send_split(c, pkt, len, 7000), 0));
    expect_big(sub, 4, "b", 60000, NULL);
    tc_del(c);
  }
  free(pkt);
}

/* The blocks offered for expected packets follow the stream: twice as many
 * as the last read reached, up to 256 KiB of them, unchanged by a read that
 * did not finish the packet in progress, and two again after a read that
 * held nothing past it. */
Test(bigin, offered_blocks_follow_the_stream) {
  tc *sub = tc_open(bed, "sub", true);
  cr_assert(eq(int, tc_subscribe(sub, "f", 0), 0));
  tc *pub = tc_open(bed, "pub", true);
  enum { PACKETS = 300, PLEN = 5000 };
  stream st = same_publishes("f", PACKETS, PLEN);
  const size_t pkt = st.n / PACKETS;
  size_t off = 0, seen = 0;
  mqttb_inbuf lent[129];
  /* Each round: the start of a packet the usual way, then a read that
   * fills every entry offered, or only some of the first. */
  struct {
    size_t part; /* 0: every entry; else bytes of the first entry */
    int pairs;   /* expected packets offered for that read */
  } rounds[] = {
      {0, 2},  {0, 4},     {0, 8},         {0, 16}, {0, 32},
      {0, 51}, /* 256 KiB / (5000 + 7 + the message's header) */
      {0, 51}, {1000, 51}, {SIZE_MAX, 51}, {0, 2},  {0, 4},
  };
  for (size_t r = 0; r < sizeof rounds / sizeof rounds[0]; r++) {
    if (off % pkt == 0) {
      /* Between packets: after the first, the next ones are offered with
       * nothing of them in yet; here each starts the usual way instead. */
      cr_assert(
          eq(int, mqttb_conn_recv_buffers(pub->conn, lent, 129), off ? 2 * rounds[r].pairs : 0),
          "between packets, round %zu", r);
      cr_assert(eq(int, tc_send(pub, st.b + off, 100), 0));
      off += 100;
    }
    int nl = mqttb_conn_recv_buffers(pub->conn, lent, 129);
    cr_assert(eq(int, nl, 1 + 2 * rounds[r].pairs), "round %zu", r);
    int use = rounds[r].part ? 1 : nl;
    size_t d =
        fill_lent(lent, use, st.b + off,
                  rounds[r].part && rounds[r].part < lent[0].len ? rounds[r].part : st.n - off);
    cr_assert(lt(sz, off + d, st.n), "the stream is long enough");
    cr_assert(eq(int, mqttb_conn_recv_commit(pub->conn, d, bed->now), 0));
    off += d;
    for (; seen < off / pkt; seen++)
      expect_big(sub, 4, "f", PLEN, NULL);
    cr_assert(tc_quiet(sub));
  }
  free(st.b);
  cr_assert(not(pub->closed));
}

/* Each allocation of a stream read in place failing in turn: the
 * connection is closed for the memory, or, when only the table of expected
 * packets could not be had, it reads one packet at a time; either way
 * nothing delivered is damaged and nothing leaks (the bed checks). */
Test(bigin, allocation_failures_while_streaming) {
  enum { PACKETS = 40, PLEN = 5000 };
  stream st = same_publishes("f", PACKETS, PLEN);
  int closed = 0, whole = 0;
  for (long k = 1; k <= 120; k++) {
    mqttb_settings s = settings();
    use_settings(&s);
    tc *sub = tc_open(bed, "sub", true);
    cr_assert(eq(int, tc_subscribe(sub, "f", 0), 0));
    tc *pub = tc_open(bed, "pub", true);
    bed->alloc.fail_at = bed->alloc.count + k;
    size_t direct;
    int rv = send_direct(pub, st.b, st.n, 40000, 129, &direct);
    bed->alloc.fail_at = 0;
    if (rv != 0) {
      cr_assert(eq(int, rv, MQTTB_ERR_CONN_NOMEM), "allocation %ld", k);
      cr_assert(pub->closed);
      closed++;
    } else {
      cr_assert(not(pub->closed), "allocation %ld", k);
      whole++;
    }
    /* What arrived is whole and in order: all of it when the publisher
     * stayed. */
    int got = 0;
    mqttb_publish p;
    while (!sub->closed && tc_read(sub)) {
      cr_assert(eq(u8, sub->f.type, MQTTB_PKT_PUBLISH));
      cr_assert(
          eq(int, mqttb_decode_publish_v(sub->f.flags, sub->body, sub->f.remaining, 4, &p), 0));
      cr_assert(payload_ok(p.payload, PLEN), "allocation %ld, message %d", k, got);
      got++;
    }
    if (rv == 0 && !sub->closed) {
      /* A QoS 0 message that found no memory is dropped, and counted. */
      mqttb_stats stats;
      mqttb_broker_get_stats(bed->broker, &stats);
      cr_assert(eq(u64, (uint64_t)got + stats.publish_dropped, PACKETS), "allocation %ld", k);
    }
  }
  cr_assert(lt(int, 0, closed));
  cr_assert(lt(int, 0, whole));
  free(st.b);
}
