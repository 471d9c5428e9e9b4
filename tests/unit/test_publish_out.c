/* SPDX-License-Identifier: MIT */
/* Outgoing PUBLISH: the encoder (codec.h, mqttb_publish_out) checked by
 * decoding what it wrote, and mqttb_tx_publish (tx.h) through a tx in a
 * minimal hub, checked by decoding the exported output. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "tx.h"
#include "unit_alloc.h"

/* ---------------------------------------------------------------- helpers */

typedef struct plist {
  size_t n;
  mqttb_prop p[16];
} plist;

static void props_list(const mqttb_slice *props, plist *out) {
  size_t pos = 0;
  out->n = 0;
  while (mqttb_props_next(props, &pos, &out->p[out->n])) {
    out->n++;
    cr_assert(lt(sz, out->n, 16));
  }
  cr_assert(eq(sz, pos, props->len), "the property block is consumed exactly");
}

/* Decode the packet at buf[*pos] as a PUBLISH of a client at level; *pos
 * moves past it. */
static void decode_at(const uint8_t *buf, size_t len, size_t *pos, uint8_t level,
                      mqttb_publish *p) {
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(buf + *pos, len - *pos, UINT32_MAX, &f), MQTTB_CODEC_OK));
  cr_assert(eq(u8, f.type, MQTTB_PKT_PUBLISH));
  cr_assert(eq(int, mqttb_codec_check_flags(f.type, f.flags), MQTTB_CODEC_OK));
  cr_assert(le(sz, *pos + f.hdr_len + f.remaining, len), "the packet is complete");
  cr_assert(eq(int, mqttb_decode_publish_v(f.flags, buf + *pos + f.hdr_len, f.remaining, level, p),
               MQTTB_CODEC_OK));
  *pos += f.hdr_len + f.remaining;
}

/* Encode p with payload: the whole packet, its size in *total. */
static uint8_t *encode(const mqttb_publish_out *p, const uint8_t *payload, size_t *total) {
  size_t head = 12345;
  *total = mqttb_publish_out_size(p, &head);
  cr_assert(lt(sz, 0, *total));
  cr_assert(eq(sz, head + p->payload_len, *total));
  uint8_t *buf = malloc(*total);
  cr_assert(eq(sz, mqttb_encode_publish_head(buf, p), head));
  if (p->payload_len)
    memcpy(buf + head, payload, p->payload_len);
  return buf;
}

static void assert_slice(mqttb_slice s, const void *want, size_t len) {
  cr_assert(eq(sz, s.len, len));
  if (len)
    cr_assert(eq(int, memcmp(s.ptr, want, len), 0));
}

/* A forwarded property block: payload format 1, content type, a user
 * property k=v. */
static size_t forwarded_block(uint8_t *out) {
  size_t n = 0;
  n += mqttb_prop_put_byte(out + n, MQTTB_PROP_PAYLOAD_FORMAT, 1);
  n += mqttb_prop_put_str(out + n, MQTTB_PROP_CONTENT_TYPE, (const uint8_t *)"text/plain", 10);
  static const uint8_t user[] = {MQTTB_PROP_USER_PROPERTY, 0, 1, 'k', 0, 1, 'v'};
  memcpy(out + n, user, sizeof(user));
  return n + sizeof(user);
}

/* ---------------------------------------------------------------- codec */

Test(publish_out, mqtt311_round_trips_at_each_qos) {
  const char *topic = "sensors/room1/temp";
  const uint8_t payload[] = "21.5 degrees";
  for (uint8_t qos = 0; qos <= 2; qos++) {
    for (int retain = 0; retain <= 1; retain++) {
      mqttb_publish_out p = {0};
      p.level = 4;
      p.qos = qos;
      p.dup = qos > 0 && retain; /* DUP is only allowed with QoS > 0 */
      p.retain = retain;
      p.topic.ptr = (const uint8_t *)topic;
      p.topic.len = strlen(topic);
      p.packet_id = 0x1234;
      p.payload_len = sizeof(payload) - 1;
      size_t total, pos = 0;
      uint8_t *buf = encode(&p, payload, &total);
      mqttb_publish d;
      decode_at(buf, total, &pos, 4, &d);
      cr_assert(eq(sz, pos, total));
      cr_assert(eq(u8, d.qos, qos));
      cr_assert(eq(int, d.retain, retain));
      cr_assert(eq(int, d.dup, p.dup));
      cr_assert(not(d.v5));
      assert_slice(d.topic, topic, strlen(topic));
      cr_assert(eq(u16, d.packet_id, qos ? 0x1234 : 0), "no packet id at QoS 0");
      assert_slice(d.payload, payload, sizeof(payload) - 1);
      cr_assert(eq(sz, total, 2 + 2 + strlen(topic) + (qos ? 2u : 0u) + sizeof(payload) - 1));
      free(buf);
    }
  }
}

Test(publish_out, mqtt311_bytes_are_exact) {
  mqttb_publish_out p = {0};
  p.level = 4;
  p.qos = 1;
  p.topic.ptr = (const uint8_t *)"a/b";
  p.topic.len = 3;
  p.packet_id = 10;
  p.payload_len = 2;
  size_t total;
  uint8_t *buf = encode(&p, (const uint8_t *)"hi", &total);
  static const uint8_t want[] = {0x32, 9, 0, 3, 'a', '/', 'b', 0, 10, 'h', 'i'};
  cr_assert(eq(sz, total, sizeof(want)));
  cr_assert(eq(int, memcmp(buf, want, sizeof(want)), 0));
  free(buf);
}

Test(publish_out, mqtt311_ignores_the_mqtt5_fields) {
  uint8_t fwd[64];
  uint32_t ids[] = {4, 5};
  mqttb_publish_out p = {0};
  p.level = 4;
  p.qos = 2;
  p.topic.ptr = (const uint8_t *)"t";
  p.topic.len = 1;
  p.packet_id = 1;
  p.payload_len = 3;
  size_t plain_total;
  uint8_t *plain = encode(&p, (const uint8_t *)"abc", &plain_total);
  p.has_expiry = true;
  p.expiry = 60;
  p.alias = 3;
  p.sub_ids = ids;
  p.nsub_ids = 2;
  p.props.ptr = fwd;
  p.props.len = forwarded_block(fwd);
  size_t total, pos = 0;
  uint8_t *buf = encode(&p, (const uint8_t *)"abc", &total);
  cr_assert(eq(sz, total, plain_total));
  cr_assert(eq(int, memcmp(buf, plain, total), 0));
  mqttb_publish d;
  decode_at(buf, total, &pos, 4, &d);
  assert_slice(d.payload, "abc", 3);
  free(plain);
  free(buf);
}

Test(publish_out, mqtt5_round_trips_with_properties_in_order) {
  uint8_t fwd[64];
  size_t fwd_len = forwarded_block(fwd);
  uint32_t ids[] = {1, 300, 268435455};
  const uint8_t payload[] = {0, 1, 2, 0xff, 0xfe};
  for (uint8_t qos = 0; qos <= 2; qos++) {
    mqttb_publish_out p = {0};
    p.level = 5;
    p.qos = qos;
    p.dup = qos == 2;
    p.retain = qos == 1;
    p.topic.ptr = (const uint8_t *)"v5/topic";
    p.topic.len = 8;
    p.packet_id = (uint16_t)(100 + qos);
    p.has_expiry = true;
    p.expiry = 3600;
    p.alias = 7;
    p.sub_ids = ids;
    p.nsub_ids = 3;
    p.props.ptr = fwd;
    p.props.len = fwd_len;
    p.payload_len = sizeof(payload);
    size_t total, pos = 0;
    uint8_t *buf = encode(&p, payload, &total);
    mqttb_publish d;
    decode_at(buf, total, &pos, 5, &d);
    cr_assert(eq(sz, pos, total));
    cr_assert(d.v5);
    cr_assert(eq(u8, d.qos, qos));
    cr_assert(eq(int, d.dup, qos == 2));
    cr_assert(eq(int, d.retain, qos == 1));
    assert_slice(d.topic, "v5/topic", 8);
    cr_assert(eq(u16, d.packet_id, qos ? 100 + qos : 0));
    assert_slice(d.payload, payload, sizeof(payload));
    /* Message Expiry, Topic Alias, the Subscription Identifiers, then the
     * forwarded block as it was. */
    plist l;
    props_list(&d.props, &l);
    cr_assert(eq(sz, l.n, 8));
    cr_assert(eq(u8, l.p[0].id, MQTTB_PROP_MESSAGE_EXPIRY));
    cr_assert(eq(u32, l.p[0].value, 3600));
    cr_assert(eq(u8, l.p[1].id, MQTTB_PROP_TOPIC_ALIAS));
    cr_assert(eq(u32, l.p[1].value, 7));
    for (int i = 0; i < 3; i++) {
      cr_assert(eq(u8, l.p[2 + i].id, MQTTB_PROP_SUBSCRIPTION_ID));
      cr_assert(eq(u32, l.p[2 + i].value, ids[i]));
    }
    cr_assert(eq(u8, l.p[5].id, MQTTB_PROP_PAYLOAD_FORMAT));
    cr_assert(eq(u32, l.p[5].value, 1));
    cr_assert(eq(u8, l.p[6].id, MQTTB_PROP_CONTENT_TYPE));
    assert_slice(l.p[6].a, "text/plain", 10);
    cr_assert(eq(u8, l.p[7].id, MQTTB_PROP_USER_PROPERTY));
    assert_slice(l.p[7].a, "k", 1);
    assert_slice(l.p[7].b, "v", 1);
    /* The forwarded bytes are the tail of the block, unchanged. */
    cr_assert(eq(int, memcmp(d.props.ptr + d.props.len - fwd_len, fwd, fwd_len), 0));
    free(buf);
  }
}

Test(publish_out, mqtt5_without_properties_has_an_empty_block) {
  mqttb_publish_out p = {0};
  p.level = 5;
  p.topic.ptr = (const uint8_t *)"a";
  p.topic.len = 1;
  p.payload_len = 1;
  size_t total, pos = 0;
  uint8_t *buf = encode(&p, (const uint8_t *)"x", &total);
  static const uint8_t want[] = {0x30, 5, 0, 1, 'a', 0, 'x'};
  cr_assert(eq(sz, total, sizeof(want)));
  cr_assert(eq(int, memcmp(buf, want, sizeof(want)), 0));
  mqttb_publish d;
  decode_at(buf, total, &pos, 5, &d);
  cr_assert(eq(sz, d.props.len, 0));
  assert_slice(d.payload, "x", 1);
  free(buf);
}

Test(publish_out, mqtt5_alias_only_form_has_an_empty_topic) {
  mqttb_publish_out p = {0};
  p.level = 5;
  p.qos = 1;
  p.packet_id = 3;
  p.alias = 5;
  p.payload_len = 4;
  size_t total, pos = 0;
  uint8_t *buf = encode(&p, (const uint8_t *)"data", &total);
  /* Topic length 0, packet id, properties: Topic Alias 5. */
  static const uint8_t head[] = {0x32, 12, 0, 0, 0, 3, 3, MQTTB_PROP_TOPIC_ALIAS, 0, 5};
  cr_assert(eq(int, memcmp(buf, head, sizeof(head)), 0));
  mqttb_publish d;
  decode_at(buf, total, &pos, 5, &d);
  cr_assert(eq(sz, d.topic.len, 0));
  cr_assert(eq(u16, d.packet_id, 3));
  plist l;
  props_list(&d.props, &l);
  cr_assert(eq(sz, l.n, 1));
  cr_assert(eq(u8, l.p[0].id, MQTTB_PROP_TOPIC_ALIAS));
  cr_assert(eq(u32, l.p[0].value, 5));
  assert_slice(d.payload, "data", 4);
  free(buf);
}

Test(publish_out, long_payloads_get_multi_byte_remaining_lengths) {
  static uint8_t payload[20000];
  for (size_t i = 0; i < sizeof(payload); i++)
    payload[i] = (uint8_t)(i * 7);
  const size_t lens[] = {120, 121, 122, 300, 16370, 20000};
  const uint32_t hdr[] = {2, 2, 3, 3, 3, 4};
  for (size_t k = 0; k < 6; k++) {
    mqttb_publish_out p = {0};
    p.level = 4;
    p.topic.ptr = (const uint8_t *)"abcd";
    p.topic.len = 4;
    p.payload_len = lens[k];
    size_t total, pos = 0;
    uint8_t *buf = encode(&p, payload, &total);
    mqttb_frame f;
    cr_assert(eq(int, mqttb_codec_frame(buf, total, UINT32_MAX, &f), MQTTB_CODEC_OK));
    cr_assert(eq(u32, f.remaining, 6 + lens[k]), "payload %zu", lens[k]);
    cr_assert(eq(u32, f.hdr_len, hdr[k]), "payload %zu", lens[k]);
    mqttb_publish d;
    decode_at(buf, total, &pos, 4, &d);
    assert_slice(d.payload, payload, lens[k]);
    free(buf);
  }
}

Test(publish_out, inexpressible_packets_have_size_zero) {
  static uint8_t big[65536];
  memset(big, 'x', sizeof(big));
  mqttb_publish_out p = {0};
  p.level = 4;
  p.topic.ptr = big;
  p.topic.len = 65535;
  size_t head = 1;
  cr_assert(eq(sz, mqttb_publish_out_size(&p, &head), (size_t)1 + 3 + 2 + 65535),
            "65535 bytes fit");
  p.topic.len = 65536;
  cr_assert(eq(sz, mqttb_publish_out_size(&p, &head), 0));
  cr_assert(eq(sz, head, 0));
  cr_assert(eq(sz, mqttb_publish_out_size(&p, NULL), 0));
  uint8_t out[16];
  memset(out, 0xCC, sizeof(out));
  cr_assert(eq(sz, mqttb_encode_publish_head(out, &p), 0));
  for (size_t i = 0; i < sizeof(out); i++)
    cr_assert(eq(u8, out[i], 0xCC), "nothing written");
  p.level = 5;
  cr_assert(eq(sz, mqttb_publish_out_size(&p, &head), 0));
  /* The remaining length at the protocol's maximum, and one past it. */
  p.level = 4;
  p.topic.len = 1;
  p.payload_len = MQTTB_MAX_REMAINING_LENGTH - 3;
  cr_assert(eq(sz, mqttb_publish_out_size(&p, &head), (size_t)MQTTB_MAX_REMAINING_LENGTH + 5));
  cr_assert(eq(sz, head, 5 + 3));
  p.payload_len++;
  cr_assert(eq(sz, mqttb_publish_out_size(&p, &head), 0));
  cr_assert(eq(sz, head, 0));
}

/* ---------------------------------------------------------------- tx */

typedef struct hubfix {
  unit_alloc a;
  mqttb_ctx ctx;
  mqttb_tx_hub hub;
  mqttb_tx tx;
  int pending_calls;
  mqttb_tx *pending_tx;
} hubfix;

static void count_pending(mqttb_tx *tx, void *arg) {
  hubfix *f = arg;
  f->pending_calls++;
  f->pending_tx = tx;
}

static void fix_init(hubfix *f, uint8_t level) {
  memset(f, 0, sizeof(*f));
  unit_alloc_init(&f->a);
  f->ctx.mem = f->a.mem;
  f->ctx.now = 100000;
  f->hub.ctx = &f->ctx;
  f->hub.on_pending = count_pending;
  f->hub.arg = f;
  mqttb_tx_init(&f->tx);
  f->tx.level = level;
}

/* Free the tx; every message must have been unreferenced by the test. */
static void fix_done(hubfix *f) {
  mqttb_tx_free(&f->hub, &f->tx);
  cr_assert(eq(ptr, f->tx.aliases, NULL));
  cr_assert(eq(long, f->a.live, 0), "nothing leaked");
}

static mqttb_msg *msg(hubfix *f, const char *topic, const uint8_t *payload, size_t len,
                      const uint8_t *props, size_t plen) {
  mqttb_msg *m = mqttb_msg_new(&f->ctx.mem, (const uint8_t *)topic, strlen(topic), payload, len,
                               props, plen, 2, false);
  cr_assert(not(eq(ptr, m, NULL)));
  return m;
}

/* The tx's pending output, flattened. */
static uint8_t *output(hubfix *f, size_t *n) {
  mqttb_iovec iov[64];
  int cnt = mqttb_outq_iov(&f->tx.q, iov, 64);
  cr_assert(lt(int, cnt, 64));
  uint8_t *out = malloc(mqttb_outq_pending(&f->tx.q) + 1);
  size_t len = 0;
  for (int i = 0; i < cnt; i++) {
    memcpy(out + len, iov[i].base, iov[i].len);
    len += iov[i].len;
  }
  cr_assert(eq(sz, len, mqttb_outq_pending(&f->tx.q)));
  *n = len;
  return out;
}

static void ack_all(hubfix *f) {
  mqttb_outq_ack(&f->tx.q, &f->ctx.mem, mqttb_outq_pending(&f->tx.q), f->ctx.now);
}

/* Decode the only packet pending (a PUBLISH), then acknowledge it. *buf
 * keeps the bytes for slices into d; free it after. */
static void take_publish(hubfix *f, mqttb_publish *d, uint8_t **buf) {
  size_t n, pos = 0;
  *buf = output(f, &n);
  decode_at(*buf, n, &pos, f->tx.level, d);
  cr_assert(eq(sz, pos, n), "exactly one packet");
  ack_all(f);
}

Test(tx_publish, mqtt311_publish_decodes_with_the_given_flags) {
  hubfix f;
  fix_init(&f, 4);
  mqttb_msg *m = msg(&f, "a/b", (const uint8_t *)"hello", 5, NULL, 0);
  /* QoS and retain come from the call, not from the message. */
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 1, true, NULL, 0, false, 42), 0));
  cr_assert(eq(int, f.pending_calls, 1));
  cr_assert(eq(ptr, f.pending_tx, &f.tx));
  cr_assert(eq(u64, f.ctx.stats.publish_sent, 1));
  cr_assert(eq(u64, f.ctx.stats.packets_sent, 1));
  cr_assert(eq(u64, f.tx.q.since, 100000));
  mqttb_publish d;
  uint8_t *buf;
  take_publish(&f, &d, &buf);
  cr_assert(eq(u8, d.qos, 1));
  cr_assert(d.retain);
  cr_assert(not(d.dup));
  cr_assert(eq(u16, d.packet_id, 42));
  assert_slice(d.topic, "a/b", 3);
  assert_slice(d.payload, "hello", 5);
  free(buf);
  /* QoS 2 with DUP. */
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 2, false, NULL, 0, true, 9), 0));
  take_publish(&f, &d, &buf);
  cr_assert(eq(u8, d.qos, 2));
  cr_assert(d.dup);
  cr_assert(not(d.retain));
  cr_assert(eq(u16, d.packet_id, 9));
  free(buf);
  mqttb_msg_unref(&f.ctx.mem, m);
  fix_done(&f);
}

Test(tx_publish, mqtt5_sends_subscription_ids_then_the_forwarded_properties) {
  hubfix f;
  fix_init(&f, 5);
  uint8_t fwd[64];
  size_t fwd_len = forwarded_block(fwd);
  mqttb_msg *m = msg(&f, "x/y", (const uint8_t *)"p", 1, fwd, fwd_len);
  uint32_t ids[] = {5, 70000};
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 0, false, ids, 2, false, 0), 0));
  mqttb_publish d;
  uint8_t *buf;
  take_publish(&f, &d, &buf);
  plist l;
  props_list(&d.props, &l);
  cr_assert(eq(sz, l.n, 5), "no expiry, no alias (alias_max 0)");
  cr_assert(eq(u8, l.p[0].id, MQTTB_PROP_SUBSCRIPTION_ID));
  cr_assert(eq(u32, l.p[0].value, 5));
  cr_assert(eq(u8, l.p[1].id, MQTTB_PROP_SUBSCRIPTION_ID));
  cr_assert(eq(u32, l.p[1].value, 70000));
  cr_assert(eq(u8, l.p[2].id, MQTTB_PROP_PAYLOAD_FORMAT));
  cr_assert(eq(u8, l.p[3].id, MQTTB_PROP_CONTENT_TYPE));
  cr_assert(eq(u8, l.p[4].id, MQTTB_PROP_USER_PROPERTY));
  assert_slice(d.topic, "x/y", 3);
  assert_slice(d.payload, "p", 1);
  free(buf);
  /* An MQTT 3.1.1 peer gets none of it. */
  f.tx.level = 4;
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 0, false, ids, 2, false, 0), 0));
  take_publish(&f, &d, &buf);
  assert_slice(d.payload, "p", 1);
  free(buf);
  mqttb_msg_unref(&f.ctx.mem, m);
  fix_done(&f);
}

Test(tx_publish, large_payloads_are_referenced_small_ones_copied) {
  hubfix f;
  fix_init(&f, 4);
  static uint8_t payload[1000];
  for (size_t i = 0; i < sizeof(payload); i++)
    payload[i] = (uint8_t)(i ^ 0x5a);
  mqttb_msg *small = msg(&f, "s", payload, 256, NULL, 0);
  mqttb_msg *large = msg(&f, "l", payload, 257, NULL, 0);
  mqttb_msg *huge = msg(&f, "h", payload, 1000, NULL, 0);

  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, small, 0, false, NULL, 0, false, 0), 0));
  mqttb_iovec iov[8];
  cr_assert(eq(int, mqttb_outq_iov(&f.tx.q, iov, 8), 1), "256 bytes: copied with the header");
  cr_assert(eq(u32, small->refs, 1), "no reference kept for a copy");
  cr_assert(eq(sz, iov[0].len, 3 + 2 + 1 + 256));

  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, large, 1, false, NULL, 0, false, 1), 0));
  cr_assert(eq(int, mqttb_outq_iov(&f.tx.q, iov, 8), 2), "the header merges with the bytes before");
  cr_assert(eq(ptr, (void *)iov[1].base, (void *)MQTTB_MSG_PAYLOAD(large)),
            "a slice of the message");
  cr_assert(eq(sz, iov[1].len, 257));
  cr_assert(eq(u32, large->refs, 2));

  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, huge, 0, false, NULL, 0, false, 0), 0));
  cr_assert(eq(int, mqttb_outq_iov(&f.tx.q, iov, 8), 4));
  cr_assert(eq(ptr, (void *)iov[3].base, (void *)(MQTTB_MSG_PAYLOAD(huge))));
  cr_assert(eq(sz, iov[3].len, 1000));
  cr_assert(eq(int, f.pending_calls, 1));

  /* The three packets decode in order. */
  size_t n, pos = 0;
  uint8_t *buf = output(&f, &n);
  mqttb_publish d;
  decode_at(buf, n, &pos, 4, &d);
  assert_slice(d.topic, "s", 1);
  assert_slice(d.payload, payload, 256);
  decode_at(buf, n, &pos, 4, &d);
  assert_slice(d.topic, "l", 1);
  cr_assert(eq(u16, d.packet_id, 1));
  assert_slice(d.payload, payload, 257);
  decode_at(buf, n, &pos, 4, &d);
  assert_slice(d.topic, "h", 1);
  assert_slice(d.payload, payload, 1000);
  cr_assert(eq(sz, pos, n));
  free(buf);

  ack_all(&f);
  cr_assert(eq(u32, large->refs, 1), "written: the reference is dropped");
  cr_assert(eq(u32, huge->refs, 1));
  cr_assert(eq(ptr, f.tx.q.seg, NULL));
  mqttb_msg_unref(&f.ctx.mem, small);
  mqttb_msg_unref(&f.ctx.mem, large);
  mqttb_msg_unref(&f.ctx.mem, huge);
  fix_done(&f);
}

Test(tx_publish, message_expiry_is_what_is_left_rounded_up_to_seconds) {
  hubfix f;
  fix_init(&f, 5);
  f.ctx.now = 10000;
  struct {
    uint64_t at;
    uint32_t want;
  } cases[] = {{10000 + 1500, 2}, {10000 + 1000, 1},       {10000 + 1001, 2}, {10000 + 999, 1},
               {10000 + 1, 1},    {10000 + 3600000, 3600}, {10000, 0},        {5000, 0}};
  mqttb_msg *m = msg(&f, "e", (const uint8_t *)"!", 1, NULL, 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    m->expiry_at = cases[i].at;
    cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 0, false, NULL, 0, false, 0), 0));
    mqttb_publish d;
    uint8_t *buf;
    take_publish(&f, &d, &buf);
    plist l;
    props_list(&d.props, &l);
    cr_assert(eq(sz, l.n, 1), "case %zu", i);
    cr_assert(eq(u8, l.p[0].id, MQTTB_PROP_MESSAGE_EXPIRY));
    cr_assert(eq(u32, l.p[0].value, cases[i].want), "expiry_at %llu",
              (unsigned long long)cases[i].at);
    free(buf);
  }
  /* A message that never expires carries no Message Expiry. */
  m->expiry_at = UINT64_MAX;
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 0, false, NULL, 0, false, 0), 0));
  mqttb_publish d;
  uint8_t *buf;
  take_publish(&f, &d, &buf);
  cr_assert(eq(sz, d.props.len, 0));
  free(buf);
  mqttb_msg_unref(&f.ctx.mem, m);
  fix_done(&f);
}

/* Publish m and decode it: *alias the Topic Alias (0: none), the topic
 * compared with want_topic. */
static void publish_alias(hubfix *f, mqttb_msg *m, const char *want_topic, uint16_t want_alias) {
  cr_assert(eq(int, mqttb_tx_publish(&f->hub, &f->tx, m, 0, false, NULL, 0, false, 0), 0));
  mqttb_publish d;
  uint8_t *buf;
  take_publish(f, &d, &buf);
  assert_slice(d.topic, want_topic, strlen(want_topic));
  mqttb_prop p;
  bool has = mqttb_props_find(&d.props, MQTTB_PROP_TOPIC_ALIAS, &p);
  cr_assert(eq(int, has, want_alias != 0), "topic '%s'", want_topic);
  if (has)
    cr_assert(eq(u32, p.value, want_alias));
  free(buf);
}

Test(tx_publish, topic_aliases_replace_known_topics_up_to_the_maximum) {
  hubfix f;
  fix_init(&f, 5);
  f.tx.alias_max = 2;
  mqttb_msg *t1 = msg(&f, "t/1", (const uint8_t *)"a", 1, NULL, 0);
  mqttb_msg *t1b = msg(&f, "t/1", (const uint8_t *)"b", 1, NULL, 0);
  mqttb_msg *t2 = msg(&f, "t/2", (const uint8_t *)"c", 1, NULL, 0);
  mqttb_msg *t3 = msg(&f, "t/3", (const uint8_t *)"d", 1, NULL, 0);
  publish_alias(&f, t1, "t/1", 1); /* first time: topic and a new alias */
  publish_alias(&f, t1b, "", 1);   /* same topic, another message: alias only */
  publish_alias(&f, t2, "t/2", 2);
  publish_alias(&f, t3, "t/3", 0); /* no alias left: the topic in full */
  publish_alias(&f, t3, "t/3", 0);
  publish_alias(&f, t2, "", 2);
  publish_alias(&f, t1, "", 1);
  cr_assert(eq(u16, f.tx.aliases->n, 2));
  /* Without aliases allowed, never. */
  f.tx.alias_max = 0;
  publish_alias(&f, t1, "t/1", 0);
  mqttb_msg_unref(&f.ctx.mem, t1);
  mqttb_msg_unref(&f.ctx.mem, t1b);
  mqttb_msg_unref(&f.ctx.mem, t2);
  mqttb_msg_unref(&f.ctx.mem, t3);
  fix_done(&f);
}

Test(tx_publish, larger_than_max_packet_is_refused_and_nothing_queued) {
  hubfix f;
  fix_init(&f, 5);
  f.tx.alias_max = 5;
  static uint8_t payload[600];
  memset(payload, 'z', sizeof(payload));
  mqttb_msg *m = msg(&f, "big/topic", payload, sizeof(payload), NULL, 0);
  /* Learn the packet's size. */
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 1, false, NULL, 0, false, 1), 0));
  size_t size = mqttb_outq_pending(&f.tx.q);
  ack_all(&f);
  mqttb_tx_free(&f.hub, &f.tx); /* forget the alias it got */
  mqttb_tx_init(&f.tx);
  f.tx.level = 5;
  f.tx.alias_max = 5;
  f.pending_calls = 0;
  mqttb_stats before = f.ctx.stats;

  f.tx.max_packet = (uint32_t)size - 1;
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 1, false, NULL, 0, false, 2),
               MQTTB_ERR_PACKET_TOO_LARGE));
  cr_assert(eq(sz, mqttb_outq_pending(&f.tx.q), 0));
  cr_assert(eq(ptr, f.tx.q.seg, NULL));
  cr_assert(eq(ptr, f.tx.aliases, NULL), "no alias given out for a packet not sent");
  cr_assert(eq(int, f.pending_calls, 0));
  cr_assert(eq(u32, m->refs, 1));
  cr_assert(eq(u64, f.ctx.stats.publish_sent, before.publish_sent));
  cr_assert(eq(u64, f.ctx.stats.packets_sent, before.packets_sent));

  f.tx.max_packet = (uint32_t)size;
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 1, false, NULL, 0, false, 2), 0));
  cr_assert(eq(sz, mqttb_outq_pending(&f.tx.q), size));
  cr_assert(eq(int, f.pending_calls, 1));
  ack_all(&f);
  mqttb_msg_unref(&f.ctx.mem, m);
  fix_done(&f);
}

Test(tx_publish, on_pending_is_called_once_per_empty_to_pending) {
  hubfix f;
  fix_init(&f, 4);
  mqttb_msg *m = msg(&f, "p", (const uint8_t *)"1", 1, NULL, 0);
  for (int i = 0; i < 3; i++)
    cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 0, false, NULL, 0, false, 0), 0));
  cr_assert(eq(int, mqttb_tx_ack(&f.hub, &f.tx, MQTTB_PKT_PUBACK, 7, 0), 0));
  cr_assert(eq(int, f.pending_calls, 1));
  /* Partly written: still pending, no new signal. */
  mqttb_outq_ack(&f.tx.q, &f.ctx.mem, 3, f.ctx.now);
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 0, false, NULL, 0, false, 0), 0));
  cr_assert(eq(int, f.pending_calls, 1));
  ack_all(&f);
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 0, false, NULL, 0, false, 0), 0));
  cr_assert(eq(int, f.pending_calls, 2));
  ack_all(&f);
  mqttb_msg_unref(&f.ctx.mem, m);
  fix_done(&f);
}

Test(tx_publish, counts_publish_sent_and_packets_sent) {
  hubfix f;
  fix_init(&f, 4);
  mqttb_msg *m = msg(&f, "c", (const uint8_t *)"1", 1, NULL, 0);
  for (int i = 0; i < 3; i++)
    cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 1, false, NULL, 0, false, 1), 0));
  cr_assert(eq(int, mqttb_tx_ack(&f.hub, &f.tx, MQTTB_PKT_PUBREC, 1, 0), 0));
  f.tx.max_packet = 4;
  cr_assert(eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 1, false, NULL, 0, false, 1),
               MQTTB_ERR_PACKET_TOO_LARGE));
  cr_assert(eq(u64, f.ctx.stats.publish_sent, 3));
  cr_assert(eq(u64, f.ctx.stats.packets_sent, 4));
  ack_all(&f);
  mqttb_msg_unref(&f.ctx.mem, m);
  fix_done(&f);
}

Test(tx_publish, out_of_memory_queues_nothing) {
  hubfix f;
  fix_init(&f, 5);
  f.tx.alias_max = 3;
  mqttb_msg *m = msg(&f, "n", (const uint8_t *)"1", 1, NULL, 0);
  f.a.fail_all = true;
  cr_assert(
      eq(int, mqttb_tx_publish(&f.hub, &f.tx, m, 1, false, NULL, 0, false, 1), MQTTB_ERR_NOMEM));
  cr_assert(eq(sz, mqttb_outq_pending(&f.tx.q), 0));
  cr_assert(eq(int, f.pending_calls, 0));
  cr_assert(eq(u64, f.ctx.stats.publish_sent, 0));
  cr_assert(eq(u64, f.ctx.stats.packets_sent, 0));
  cr_assert(eq(u32, m->refs, 1));
  cr_assert(eq(ptr, f.tx.aliases, NULL));
  unit_alloc_heal(&f.a);
  mqttb_msg_unref(&f.ctx.mem, m);
  fix_done(&f);
}
