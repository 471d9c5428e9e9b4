/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the MQTT 5 wire codec (lib/props.c, lib/codec.c and the level-5 paths
 * of lib/codec.c). The property table below is written from the MQTT 5.0
 * specification (section 2.2.2.2, table "Properties"), not from the
 * library's own table, so the two are checked against each other.
 *
 * Inputs to decoders are copied into heap buffers of exactly their length
 * so that AddressSanitizer flags any read past the end.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wconversion"
#endif

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec_client.h"

/* ---------------------------------------------------------------------- */
/* helpers                                                                 */
/* ---------------------------------------------------------------------- */

static uint8_t *dup_exact(const void *src, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  cr_assert(ne(ptr, p, NULL));
  if (n)
    memcpy(p, src, n);
  return p;
}

static bool slice_is(mqttb_slice s, const void *p, size_t n) {
  return s.len == n && (n == 0 || memcmp(s.ptr, p, n) == 0);
}

static bool slice_str(mqttb_slice s, const char *str) {
  return slice_is(s, str, strlen(str));
}

/* A property block under construction (the properties, without their
 * length). */
typedef struct blk {
  uint8_t b[1024];
  size_t n;
} blk;

static void raw(blk *k, const void *p, size_t n) {
  cr_assert(le(sz, k->n + n, sizeof(k->b)));
  memcpy(k->b + k->n, p, n);
  k->n += n;
}

static void raw_str(blk *k, const char *s) {
  size_t n = strlen(s);
  uint8_t h[2] = {(uint8_t)(n >> 8), (uint8_t)n};
  raw(k, h, 2);
  raw(k, s, n);
}

/* mqttb_props_read over [varint length][props] copied to an exact-size
 * buffer; on success the whole input must be consumed. */
static int read_block(const blk *k, uint8_t ctx) {
  uint8_t buf[1100];
  size_t n = mqttb_codec_varint_encode(buf, (uint32_t)k->n);
  memcpy(buf + n, k->b, k->n);
  n += k->n;
  uint8_t *d = dup_exact(buf, n);
  size_t pos = 0;
  mqttb_slice s;
  int rc = mqttb_props_read(d, n, &pos, ctx, &s);
  if (rc == MQTTB_CODEC_OK) {
    cr_assert(eq(sz, pos, n));
    cr_assert(eq(sz, s.len, k->n));
  }
  free(d);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* The property table of the specification                                 */
/* ---------------------------------------------------------------------- */

enum { T_BYTE = 1, T_U16, T_U32, T_VAR, T_STR, T_BIN, T_PAIR };

#define K(x) (1u << (x))
#define W K(MQTTB_PROPS_WILL)
#define CON K(MQTTB_PKT_CONNECT)
#define CAK K(MQTTB_PKT_CONNACK)
#define PUB K(MQTTB_PKT_PUBLISH)
#define PAK K(MQTTB_PKT_PUBACK)
#define PRC K(MQTTB_PKT_PUBREC)
#define PRL K(MQTTB_PKT_PUBREL)
#define PCP K(MQTTB_PKT_PUBCOMP)
#define SUB K(MQTTB_PKT_SUBSCRIBE)
#define SAK K(MQTTB_PKT_SUBACK)
#define UNS K(MQTTB_PKT_UNSUBSCRIBE)
#define UAK K(MQTTB_PKT_UNSUBACK)
#define DIS K(MQTTB_PKT_DISCONNECT)
#define AUT K(MQTTB_PKT_AUTH)

typedef struct spec_prop {
  uint8_t id;
  uint8_t type;
  uint32_t where;
  const char *name;
} spec_prop;

static const spec_prop spec[] = {
    {0x01, T_BYTE, PUB | W, "Payload Format Indicator"},
    {0x02, T_U32, PUB | W, "Message Expiry Interval"},
    {0x03, T_STR, PUB | W, "Content Type"},
    {0x08, T_STR, PUB | W, "Response Topic"},
    {0x09, T_BIN, PUB | W, "Correlation Data"},
    {0x0B, T_VAR, PUB | SUB, "Subscription Identifier"},
    {0x11, T_U32, CON | CAK | DIS, "Session Expiry Interval"},
    {0x12, T_STR, CAK, "Assigned Client Identifier"},
    {0x13, T_U16, CAK, "Server Keep Alive"},
    {0x15, T_STR, CON | CAK | AUT, "Authentication Method"},
    {0x16, T_BIN, CON | CAK | AUT, "Authentication Data"},
    {0x17, T_BYTE, CON, "Request Problem Information"},
    {0x18, T_U32, W, "Will Delay Interval"},
    {0x19, T_BYTE, CON, "Request Response Information"},
    {0x1A, T_STR, CAK, "Response Information"},
    {0x1C, T_STR, CAK | DIS, "Server Reference"},
    {0x1F, T_STR, CAK | PAK | PRC | PRL | PCP | SAK | UAK | DIS | AUT, "Reason String"},
    {0x21, T_U16, CON | CAK, "Receive Maximum"},
    {0x22, T_U16, CON | CAK, "Topic Alias Maximum"},
    {0x23, T_U16, PUB, "Topic Alias"},
    {0x24, T_BYTE, CAK, "Maximum QoS"},
    {0x25, T_BYTE, CAK, "Retain Available"},
    {0x26, T_PAIR, CON | CAK | PUB | W | PAK | PRC | PRL | PCP | SUB | SAK | UNS | UAK | DIS | AUT,
     "User Property"},
    {0x27, T_U32, CON | CAK, "Maximum Packet Size"},
    {0x28, T_BYTE, CAK, "Wildcard Subscription Available"},
    {0x29, T_BYTE, CAK, "Subscription Identifier Available"},
    {0x2A, T_BYTE, CAK, "Shared Subscription Available"},
};
#define NSPEC (sizeof(spec) / sizeof(spec[0]))

/* Every context a property block can appear in. */
static const uint8_t contexts[] = {MQTTB_PROPS_WILL,     MQTTB_PKT_CONNECT,     MQTTB_PKT_CONNACK,
                                   MQTTB_PKT_PUBLISH,    MQTTB_PKT_PUBACK,      MQTTB_PKT_PUBREC,
                                   MQTTB_PKT_PUBREL,     MQTTB_PKT_PUBCOMP,     MQTTB_PKT_SUBSCRIBE,
                                   MQTTB_PKT_SUBACK,     MQTTB_PKT_UNSUBSCRIBE, MQTTB_PKT_UNSUBACK,
                                   MQTTB_PKT_DISCONNECT, MQTTB_PKT_AUTH};
#define NCTX (sizeof(contexts) / sizeof(contexts[0]))

/* Append one valid instance of a property. */
static void put_valid(blk *k, const spec_prop *p) {
  uint8_t id = p->id;
  raw(k, &id, 1);
  switch (p->type) {
  case T_BYTE: {
    uint8_t v = 1;
    raw(k, &v, 1);
    break;
  }
  case T_U16: {
    uint8_t v[2] = {0, 1};
    raw(k, v, 2);
    break;
  }
  case T_U32: {
    uint8_t v[4] = {0, 0, 0, 1};
    raw(k, v, 4);
    break;
  }
  case T_VAR: {
    uint8_t v[2] = {0x81, 0x01}; /* 129 */
    raw(k, v, 2);
    break;
  }
  case T_STR:
    raw_str(k, "x/y");
    break;
  case T_BIN: {
    uint8_t v[5] = {0, 3, 0xFF, 0x00, 0xC0}; /* binary: no UTF-8 rules */
    raw(k, v, 5);
    break;
  }
  default:
    raw_str(k, "name");
    raw_str(k, "value");
    break;
  }
}

/* ---------------------------------------------------------------------- */
/* Property validation                                                     */
/* ---------------------------------------------------------------------- */

/* Every property in every context: allowed where the specification lists
 * it, a Malformed Packet elsewhere (MQTT 5, 2.2.2.2). */
Test(props, every_property_in_every_context) {
  for (size_t i = 0; i < NSPEC; i++) {
    blk k = {.n = 0};
    put_valid(&k, &spec[i]);
    for (size_t c = 0; c < NCTX; c++) {
      int want = (spec[i].where & K(contexts[c])) ? MQTTB_CODEC_OK : MQTTB_CODEC_MALFORMED;
      int got = read_block(&k, contexts[c]);
      cr_expect(eq(int, got, want), "%s (0x%02X) in context %u: got %d, want %d", spec[i].name,
                spec[i].id, contexts[c], got, want);
    }
  }
}

/* Identifiers the specification does not define are malformed. */
Test(props, unknown_identifiers_are_malformed) {
  const uint8_t ids[] = {0x00, 0x04, 0x05, 0x06, 0x07, 0x0A, 0x0C, 0x10,
                         0x14, 0x1B, 0x1D, 0x1E, 0x20, 0x2B, 0x3F, 0x7F};
  for (size_t i = 0; i < sizeof(ids); i++) {
    blk k = {.n = 0};
    uint8_t b[2] = {ids[i], 0x00};
    raw(&k, b, 2);
    cr_expect(eq(int, read_block(&k, MQTTB_PKT_PUBLISH), MQTTB_CODEC_MALFORMED), "id 0x%02X",
              ids[i]);
    cr_expect(eq(int, read_block(&k, MQTTB_PKT_CONNECT), MQTTB_CODEC_MALFORMED), "id 0x%02X",
              ids[i]);
  }
  /* A two-byte identifier (128). */
  blk k = {.n = 0};
  uint8_t b[3] = {0x80, 0x01, 0x00};
  raw(&k, b, 3);
  cr_assert(eq(int, read_block(&k, MQTTB_PKT_PUBLISH), MQTTB_CODEC_MALFORMED));
}

/* Each property that may appear once, twice: a Protocol Error; User
 * Property may repeat everywhere, Subscription Identifier in PUBLISH. */
Test(props, duplicates) {
  for (size_t i = 0; i < NSPEC; i++) {
    for (size_t c = 0; c < NCTX; c++) {
      uint8_t ctx = contexts[c];
      if (!(spec[i].where & K(ctx)))
        continue;
      blk k = {.n = 0};
      put_valid(&k, &spec[i]);
      put_valid(&k, &spec[i]);
      bool repeatable = spec[i].id == MQTTB_PROP_USER_PROPERTY ||
                        (spec[i].id == MQTTB_PROP_SUBSCRIPTION_ID && ctx == MQTTB_PKT_PUBLISH);
      int want = repeatable ? MQTTB_CODEC_OK : MQTTB_CODEC_PROTOCOL;
      cr_expect(eq(int, read_block(&k, ctx), want), "%s twice in context %u", spec[i].name, ctx);
    }
  }
  /* Three user properties and other properties between them. */
  blk k = {.n = 0};
  put_valid(&k, &spec[22]);
  put_valid(&k, &spec[2]);
  put_valid(&k, &spec[22]);
  put_valid(&k, &spec[0]);
  put_valid(&k, &spec[22]);
  cr_assert(eq(int, read_block(&k, MQTTB_PKT_PUBLISH), MQTTB_CODEC_OK));
  /* A duplicate separated by other properties is still one. */
  blk d = {.n = 0};
  put_valid(&d, &spec[2]);
  put_valid(&d, &spec[22]);
  put_valid(&d, &spec[2]);
  cr_assert(eq(int, read_block(&d, MQTTB_PKT_PUBLISH), MQTTB_CODEC_PROTOCOL));
}

typedef struct range_case {
  uint8_t ctx;
  uint8_t bytes[8];
  size_t n;
  int want;
  const char *what;
} range_case;

/* Values out of range: a Protocol Error. */
Test(props, value_ranges) {
  static const range_case cases[] = {
      {MQTTB_PKT_PUBLISH, {0x01, 0x00}, 2, MQTTB_CODEC_OK, "payload format 0"},
      {MQTTB_PKT_PUBLISH, {0x01, 0x01}, 2, MQTTB_CODEC_OK, "payload format 1"},
      {MQTTB_PKT_PUBLISH, {0x01, 0x02}, 2, MQTTB_CODEC_PROTOCOL, "payload format 2"},
      {MQTTB_PKT_CONNECT, {0x17, 0x02}, 2, MQTTB_CODEC_PROTOCOL, "request problem info 2"},
      {MQTTB_PKT_CONNECT, {0x17, 0x00}, 2, MQTTB_CODEC_OK, "request problem info 0"},
      {MQTTB_PKT_CONNECT, {0x19, 0x02}, 2, MQTTB_CODEC_PROTOCOL, "request response info 2"},
      {MQTTB_PKT_CONNACK, {0x24, 0x02}, 2, MQTTB_CODEC_PROTOCOL, "maximum QoS 2"},
      {MQTTB_PKT_CONNACK, {0x24, 0x00}, 2, MQTTB_CODEC_OK, "maximum QoS 0"},
      {MQTTB_PKT_CONNACK, {0x25, 0x02}, 2, MQTTB_CODEC_PROTOCOL, "retain available 2"},
      {MQTTB_PKT_CONNACK, {0x28, 0xFF}, 2, MQTTB_CODEC_PROTOCOL, "wildcard available 255"},
      {MQTTB_PKT_CONNACK, {0x29, 0x02}, 2, MQTTB_CODEC_PROTOCOL, "sub id available 2"},
      {MQTTB_PKT_CONNACK, {0x2A, 0x02}, 2, MQTTB_CODEC_PROTOCOL, "shared available 2"},
      {MQTTB_PKT_CONNECT, {0x21, 0x00, 0x00}, 3, MQTTB_CODEC_PROTOCOL, "receive maximum 0"},
      {MQTTB_PKT_CONNECT, {0x21, 0xFF, 0xFF}, 3, MQTTB_CODEC_OK, "receive maximum 65535"},
      {MQTTB_PKT_CONNECT, {0x27, 0, 0, 0, 0}, 5, MQTTB_CODEC_PROTOCOL, "max packet size 0"},
      {MQTTB_PKT_CONNECT, {0x27, 0xFF, 0xFF, 0xFF, 0xFF}, 5, MQTTB_CODEC_OK, "max packet 2^32-1"},
      {MQTTB_PKT_CONNECT, {0x22, 0x00, 0x00}, 3, MQTTB_CODEC_OK, "topic alias maximum 0"},
      {MQTTB_PKT_PUBLISH, {0x23, 0x00, 0x00}, 3, MQTTB_CODEC_PROTOCOL, "topic alias 0"},
      {MQTTB_PKT_PUBLISH, {0x23, 0xFF, 0xFF}, 3, MQTTB_CODEC_OK, "topic alias 65535"},
      {MQTTB_PKT_SUBSCRIBE, {0x0B, 0x00}, 2, MQTTB_CODEC_PROTOCOL, "subscription id 0"},
      {MQTTB_PKT_PUBLISH, {0x0B, 0x00}, 2, MQTTB_CODEC_PROTOCOL, "subscription id 0 (PUBLISH)"},
      {MQTTB_PKT_SUBSCRIBE,
       {0x0B, 0xFF, 0xFF, 0xFF, 0x7F},
       5,
       MQTTB_CODEC_OK,
       "subscription id 268435455"},
      {MQTTB_PKT_CONNECT, {0x11, 0, 0, 0, 0}, 5, MQTTB_CODEC_OK, "session expiry 0"},
      {MQTTB_PKT_CONNECT, {0x11, 0xFF, 0xFF, 0xFF, 0xFF}, 5, MQTTB_CODEC_OK, "session expiry max"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    blk k = {.n = 0};
    raw(&k, cases[i].bytes, cases[i].n);
    cr_expect(eq(int, read_block(&k, cases[i].ctx), cases[i].want), "%s", cases[i].what);
  }
}

/* Values that run past the end of the block (or the block past the
 * packet): malformed. */
Test(props, truncated_values_are_malformed) {
  static const range_case cases[] = {
      {MQTTB_PKT_PUBLISH, {0x01}, 1, MQTTB_CODEC_MALFORMED, "byte without value"},
      {MQTTB_PKT_CONNECT, {0x21, 0x00}, 2, MQTTB_CODEC_MALFORMED, "two-byte with one"},
      {MQTTB_PKT_PUBLISH, {0x02, 0, 0, 1}, 4, MQTTB_CODEC_MALFORMED, "four-byte with three"},
      {MQTTB_PKT_SUBSCRIBE, {0x0B, 0x80}, 2, MQTTB_CODEC_MALFORMED, "varint cut"},
      {MQTTB_PKT_SUBSCRIBE,
       {0x0B, 0x80, 0x80, 0x80, 0x80, 0x01},
       6,
       MQTTB_CODEC_MALFORMED,
       "five-byte varint"},
      {MQTTB_PKT_PUBLISH, {0x03, 0x00}, 2, MQTTB_CODEC_MALFORMED, "string length cut"},
      {MQTTB_PKT_PUBLISH,
       {0x03, 0x00, 0x05, 'a', 'b'},
       5,
       MQTTB_CODEC_MALFORMED,
       "string shorter than its length"},
      {MQTTB_PKT_PUBLISH, {0x09, 0x00, 0x02, 0x01}, 4, MQTTB_CODEC_MALFORMED, "binary cut"},
      {MQTTB_PKT_PUBLISH, {0x26, 0x00, 0x01, 'k'}, 4, MQTTB_CODEC_MALFORMED, "pair without value"},
      {MQTTB_PKT_PUBLISH,
       {0x26, 0x00, 0x01, 'k', 0x00, 0x02, 'v'},
       7,
       MQTTB_CODEC_MALFORMED,
       "pair value cut"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    blk k = {.n = 0};
    raw(&k, cases[i].bytes, cases[i].n);
    cr_expect(eq(int, read_block(&k, cases[i].ctx), cases[i].want), "%s", cases[i].what);
  }
  /* The block's length claims more than the packet holds. */
  static const uint8_t longer[] = {0x05, 0x01, 0x01};
  uint8_t *d = dup_exact(longer, sizeof(longer));
  size_t pos = 0;
  mqttb_slice s;
  cr_assert(eq(int, mqttb_props_read(d, sizeof(longer), &pos, MQTTB_PKT_PUBLISH, &s),
               MQTTB_CODEC_MALFORMED));
  free(d);
  /* The length itself cut. */
  static const uint8_t cut[] = {0x80};
  d = dup_exact(cut, 1);
  pos = 0;
  cr_assert(eq(int, mqttb_props_read(d, 1, &pos, MQTTB_PKT_PUBLISH, &s), MQTTB_CODEC_MALFORMED));
  free(d);
  /* Nothing at all. */
  d = dup_exact(cut, 0);
  pos = 0;
  cr_assert(eq(int, mqttb_props_read(d, 0, &pos, MQTTB_PKT_PUBLISH, &s), MQTTB_CODEC_MALFORMED));
  free(d);
  /* An empty block is fine, and reading starts at *pos. */
  static const uint8_t at2[] = {0xAA, 0xBB, 0x00, 0xCC};
  d = dup_exact(at2, sizeof(at2));
  pos = 2;
  cr_assert(eq(int, mqttb_props_read(d, sizeof(at2), &pos, MQTTB_PKT_PUBLISH, &s), 0));
  cr_assert(eq(sz, pos, 3));
  cr_assert(eq(sz, s.len, 0));
  free(d);
}

/* Strings and user property pairs must be well-formed UTF-8 without
 * U+0000 [MQTT-1.5.4-1], [MQTT-1.5.4-2]; binary data need not. */
Test(props, bad_utf8_in_strings_and_pairs) {
  static const uint8_t overlong[] = {0xC0, 0x80};
  static const uint8_t surrogate[] = {0xED, 0xA0, 0x80};
  static const uint8_t nul[] = {'a', 0x00, 'b'};
  static const uint8_t ff[] = {0xFF};
  const struct {
    const uint8_t *s;
    size_t n;
  } bad[] = {{overlong, 2}, {surrogate, 3}, {nul, 3}, {ff, 1}};
  const struct {
    uint8_t id;
    uint8_t ctx;
  } strs[] = {{0x03, MQTTB_PKT_PUBLISH}, {0x08, MQTTB_PROPS_WILL},  {0x12, MQTTB_PKT_CONNACK},
              {0x15, MQTTB_PKT_AUTH},    {0x1A, MQTTB_PKT_CONNACK}, {0x1C, MQTTB_PKT_DISCONNECT},
              {0x1F, MQTTB_PKT_PUBACK}};
  for (size_t b = 0; b < 4; b++) {
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
      blk k = {.n = 0};
      uint8_t h[3] = {strs[i].id, 0, (uint8_t)bad[b].n};
      raw(&k, h, 3);
      raw(&k, bad[b].s, bad[b].n);
      cr_expect(eq(int, read_block(&k, strs[i].ctx), MQTTB_CODEC_BAD_UTF8), "id 0x%02X bad %zu",
                strs[i].id, b);
    }
    /* User property: bad name, then bad value. */
    blk k = {.n = 0};
    uint8_t h[3] = {0x26, 0, (uint8_t)bad[b].n};
    raw(&k, h, 3);
    raw(&k, bad[b].s, bad[b].n);
    raw_str(&k, "v");
    cr_expect(eq(int, read_block(&k, MQTTB_PKT_PUBLISH), MQTTB_CODEC_BAD_UTF8), "bad name %zu", b);
    blk v = {.n = 0};
    uint8_t id = 0x26;
    raw(&v, &id, 1);
    raw_str(&v, "k");
    uint8_t l[2] = {0, (uint8_t)bad[b].n};
    raw(&v, l, 2);
    raw(&v, bad[b].s, bad[b].n);
    cr_expect(eq(int, read_block(&v, MQTTB_PKT_PUBLISH), MQTTB_CODEC_BAD_UTF8), "bad value %zu", b);
    /* Correlation Data and Authentication Data are binary. */
    blk c = {.n = 0};
    uint8_t hc[3] = {0x09, 0, (uint8_t)bad[b].n};
    raw(&c, hc, 3);
    raw(&c, bad[b].s, bad[b].n);
    cr_expect(eq(int, read_block(&c, MQTTB_PKT_PUBLISH), MQTTB_CODEC_OK));
    blk a = {.n = 0};
    uint8_t ha[3] = {0x16, 0, (uint8_t)bad[b].n};
    raw(&a, ha, 3);
    raw(&a, bad[b].s, bad[b].n);
    cr_expect(eq(int, read_block(&a, MQTTB_PKT_AUTH), MQTTB_CODEC_OK));
  }
  /* Valid multi-byte UTF-8 is fine. */
  blk k = {.n = 0};
  uint8_t h[3] = {0x03, 0, 7};
  raw(&k, h, 3);
  raw(&k, "\xC3\xA9\xE2\x82\xAC\xF0\x9F", 7); /* cut 4-byte sequence */
  cr_assert(eq(int, read_block(&k, MQTTB_PKT_PUBLISH), MQTTB_CODEC_BAD_UTF8));
  blk ok = {.n = 0};
  uint8_t h2[3] = {0x03, 0, 9};
  raw(&ok, h2, 3);
  raw(&ok, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9);
  cr_assert(eq(int, read_block(&ok, MQTTB_PKT_PUBLISH), MQTTB_CODEC_OK));
}

/* ---------------------------------------------------------------------- */
/* Iteration and writers                                                   */
/* ---------------------------------------------------------------------- */

Test(props, next_and_find) {
  blk k = {.n = 0};
  k.n += mqttb_prop_put_byte(k.b + k.n, MQTTB_PROP_PAYLOAD_FORMAT, 1);
  raw(&k, "\x26", 1);
  raw_str(&k, "a");
  raw_str(&k, "b");
  k.n += mqttb_prop_put_varint(k.b + k.n, MQTTB_PROP_SUBSCRIPTION_ID, 300);
  k.n += mqttb_prop_put_str(k.b + k.n, MQTTB_PROP_CONTENT_TYPE, (const uint8_t *)"ct", 2);
  raw(&k, "\x26", 1);
  raw_str(&k, "c");
  raw_str(&k, "d");
  k.n += mqttb_prop_put_varint(k.b + k.n, MQTTB_PROP_SUBSCRIPTION_ID, 5);
  cr_assert(eq(int, read_block(&k, MQTTB_PKT_PUBLISH), 0));

  uint8_t *d = dup_exact(k.b, k.n);
  mqttb_slice s = {d, k.n};
  size_t pos = 0;
  mqttb_prop p;
  const uint8_t ids[] = {0x01, 0x26, 0x0B, 0x03, 0x26, 0x0B};
  for (size_t i = 0; i < sizeof(ids); i++) {
    cr_assert(mqttb_props_next(&s, &pos, &p), "property %zu missing", i);
    cr_assert(eq(u8, p.id, ids[i]));
  }
  cr_assert(not(mqttb_props_next(&s, &pos, &p)));
  cr_assert(eq(sz, pos, k.n));

  cr_assert(mqttb_props_find(&s, MQTTB_PROP_USER_PROPERTY, &p));
  cr_assert(slice_str(p.a, "a") && slice_str(p.b, "b"), "find returns the first");
  cr_assert(mqttb_props_find(&s, MQTTB_PROP_SUBSCRIPTION_ID, &p));
  cr_assert(eq(u32, p.value, 300));
  cr_assert(mqttb_props_find(&s, MQTTB_PROP_CONTENT_TYPE, &p));
  cr_assert(slice_str(p.a, "ct"));
  cr_assert(mqttb_props_find(&s, MQTTB_PROP_PAYLOAD_FORMAT, &p));
  cr_assert(eq(u32, p.value, 1));
  cr_assert(not(mqttb_props_find(&s, MQTTB_PROP_MESSAGE_EXPIRY, &p)));
  free(d);

  /* An empty block. */
  mqttb_slice e = {NULL, 0};
  pos = 0;
  cr_assert(not(mqttb_props_next(&e, &pos, &p)));
  cr_assert(not(mqttb_props_find(&e, MQTTB_PROP_USER_PROPERTY, &p)));
  /* An unvalidated, cut block stops rather than read past its end. */
  static const uint8_t cut[] = {0x01, 0x01, 0x02, 0x00};
  d = dup_exact(cut, sizeof(cut));
  mqttb_slice c = {d, sizeof(cut)};
  pos = 0;
  cr_assert(mqttb_props_next(&c, &pos, &p));
  cr_assert(not(mqttb_props_next(&c, &pos, &p)));
  free(d);
}

Test(props, writers_exact_bytes) {
  uint8_t b[16];
  cr_assert(eq(sz, mqttb_prop_put_byte(b, 0x24, 1), 2));
  cr_assert(eq(int, memcmp(b, "\x24\x01", 2), 0));
  cr_assert(eq(sz, mqttb_prop_put_u16(b, 0x21, 0x1234), 3));
  cr_assert(eq(int, memcmp(b, "\x21\x12\x34", 3), 0));
  cr_assert(eq(sz, mqttb_prop_put_u32(b, 0x02, 0x01020304), 5));
  cr_assert(eq(int, memcmp(b, "\x02\x01\x02\x03\x04", 5), 0));
  cr_assert(eq(sz, mqttb_prop_put_varint(b, 0x0B, 300), 3));
  cr_assert(eq(int, memcmp(b, "\x0B\xAC\x02", 3), 0));
  cr_assert(eq(sz, mqttb_prop_put_str(b, 0x03, (const uint8_t *)"ab", 2), 5));
  cr_assert(eq(int,
               memcmp(b,
                      "\x03\x00\x02"
                      "ab",
                      5),
               0));
  cr_assert(eq(sz, mqttb_prop_put_str(b, 0x03, NULL, 0), 3));
  cr_assert(eq(int, memcmp(b, "\x03\x00\x00", 3), 0));
  /* Counting with out NULL. */
  cr_assert(eq(sz, mqttb_prop_put_byte(NULL, 0x24, 1), 2));
  cr_assert(eq(sz, mqttb_prop_put_u16(NULL, 0x21, 1), 3));
  cr_assert(eq(sz, mqttb_prop_put_u32(NULL, 0x02, 1), 5));
  cr_assert(eq(sz, mqttb_prop_put_str(NULL, 0x03, NULL, 10), 13));
  const uint32_t vals[] = {1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455};
  const size_t sizes[] = {2, 2, 3, 3, 4, 4, 5, 5};
  for (size_t i = 0; i < 8; i++) {
    cr_assert(eq(sz, mqttb_prop_put_varint(NULL, 0x0B, vals[i]), sizes[i]), "%u", vals[i]);
    cr_assert(eq(sz, mqttb_prop_put_varint(b, 0x0B, vals[i]), sizes[i]), "%u", vals[i]);
  }
  /* A string longer than 65535 is cut to 65535. */
  uint8_t *big = calloc(1, 70000);
  uint8_t *out = malloc(70010);
  memset(big, 'a', 70000);
  cr_assert(eq(sz, mqttb_prop_put_str(NULL, 0x03, big, 70000), 3 + 65535));
  cr_assert(eq(sz, mqttb_prop_put_str(out, 0x03, big, 70000), 3 + 65535));
  cr_assert(eq(u8, out[1], 0xFF));
  cr_assert(eq(u8, out[2], 0xFF));
  free(big);
  free(out);
}

/* Write every kind with the writers and read it back. */
Test(props, writers_round_trip) {
  blk k = {.n = 0};
  k.n += mqttb_prop_put_byte(k.b + k.n, MQTTB_PROP_MAXIMUM_QOS, 1);
  k.n += mqttb_prop_put_u16(k.b + k.n, MQTTB_PROP_RECEIVE_MAXIMUM, 65535);
  k.n += mqttb_prop_put_u32(k.b + k.n, MQTTB_PROP_MAXIMUM_PACKET_SIZE, 0xFFFFFFFFu);
  k.n += mqttb_prop_put_u32(k.b + k.n, MQTTB_PROP_SESSION_EXPIRY, 0x80000001u);
  k.n += mqttb_prop_put_str(k.b + k.n, MQTTB_PROP_ASSIGNED_CLIENT_ID, (const uint8_t *)"auto-1", 6);
  k.n += mqttb_prop_put_str(k.b + k.n, MQTTB_PROP_AUTH_DATA, (const uint8_t *)"\x00\xFF", 2);
  k.n += mqttb_prop_put_u16(k.b + k.n, MQTTB_PROP_SERVER_KEEP_ALIVE, 0);
  cr_assert(eq(int, read_block(&k, MQTTB_PKT_CONNACK), 0));
  mqttb_slice s = {k.b, k.n};
  mqttb_prop p;
  cr_assert(mqttb_props_find(&s, MQTTB_PROP_MAXIMUM_QOS, &p) && p.value == 1);
  cr_assert(mqttb_props_find(&s, MQTTB_PROP_RECEIVE_MAXIMUM, &p) && p.value == 65535);
  cr_assert(mqttb_props_find(&s, MQTTB_PROP_MAXIMUM_PACKET_SIZE, &p) && p.value == 0xFFFFFFFFu);
  cr_assert(mqttb_props_find(&s, MQTTB_PROP_SESSION_EXPIRY, &p) && p.value == 0x80000001u);
  cr_assert(mqttb_props_find(&s, MQTTB_PROP_ASSIGNED_CLIENT_ID, &p) && slice_str(p.a, "auto-1"));
  cr_assert(mqttb_props_find(&s, MQTTB_PROP_AUTH_DATA, &p) && slice_is(p.a, "\x00\xFF", 2));
  cr_assert(mqttb_props_find(&s, MQTTB_PROP_SERVER_KEEP_ALIVE, &p) && p.value == 0);
  const uint32_t vals[] = {1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455};
  for (size_t i = 0; i < 8; i++) {
    blk v = {.n = 0};
    v.n = mqttb_prop_put_varint(v.b, MQTTB_PROP_SUBSCRIPTION_ID, vals[i]);
    cr_assert(eq(int, read_block(&v, MQTTB_PKT_SUBSCRIBE), 0));
    mqttb_slice vs = {v.b, v.n};
    cr_assert(mqttb_props_find(&vs, MQTTB_PROP_SUBSCRIPTION_ID, &p));
    cr_assert(eq(u32, p.value, vals[i]));
  }
}

/* ---------------------------------------------------------------------- */
/* MQTT 5 packets                                                          */
/* ---------------------------------------------------------------------- */

Test(packets5, ack5_encode) {
  uint8_t b[8];
  cr_assert(eq(sz, mqttb_encode_ack5(b, MQTTB_PKT_PUBACK, 0x1234, 0), 4));
  cr_assert(eq(int, memcmp(b, "\x40\x02\x12\x34", 4), 0));
  cr_assert(eq(sz, mqttb_encode_ack5(b, MQTTB_PKT_PUBREC, 7, 0x10), 5));
  cr_assert(eq(int, memcmp(b, "\x50\x03\x00\x07\x10", 5), 0));
  cr_assert(eq(sz, mqttb_encode_ack5(b, MQTTB_PKT_PUBREL, 7, 0x92), 5));
  cr_assert(eq(int, memcmp(b, "\x62\x03\x00\x07\x92", 5), 0));
  cr_assert(eq(sz, mqttb_encode_ack5(b, MQTTB_PKT_PUBCOMP, 0xFFFF, 0), 4));
  cr_assert(eq(int, memcmp(b, "\x70\x02\xFF\xFF", 4), 0));
}

static int dec_ack5(uint8_t type, const void *body, size_t n, uint16_t *pid, uint8_t *reason,
                    mqttb_slice *props, uint8_t **keep) {
  uint8_t *d = dup_exact(body, n);
  int rc = mqttb_decode_ack5(type, d, n, pid, reason, props);
  if (keep)
    *keep = d;
  else
    free(d);
  return rc;
}

Test(packets5, ack5_decode) {
  uint16_t pid = 0;
  uint8_t reason = 0xEE;
  mqttb_slice props;
  /* [MQTT-3.4.2.1]: 2 bytes: reason 0, no properties. */
  cr_assert(eq(int, dec_ack5(MQTTB_PKT_PUBACK, "\x00\x07", 2, &pid, &reason, &props, NULL), 0));
  cr_assert(eq(u16, pid, 7));
  cr_assert(eq(u8, reason, 0));
  cr_assert(eq(sz, props.len, 0));
  cr_assert(eq(int, dec_ack5(MQTTB_PKT_PUBREC, "\x00\x07\x10", 3, &pid, &reason, &props, NULL), 0));
  cr_assert(eq(u8, reason, 0x10));
  cr_assert(eq(sz, props.len, 0));
  cr_assert(
      eq(int, dec_ack5(MQTTB_PKT_PUBREL, "\x00\x07\x92\x00", 4, &pid, &reason, &props, NULL), 0));
  cr_assert(eq(u8, reason, 0x92));
  uint8_t *keep;
  cr_assert(eq(int,
               dec_ack5(MQTTB_PKT_PUBCOMP, "\x00\x07\x80\x0A\x1F\x00\x01x\x26\x00\x01k\x00\x00", 14,
                        &pid, &reason, &props, &keep),
               0));
  cr_assert(eq(u8, reason, 0x80));
  cr_assert(eq(sz, props.len, 10));
  mqttb_prop p;
  cr_assert(mqttb_props_find(&props, MQTTB_PROP_REASON_STRING, &p) && slice_str(p.a, "x"));
  free(keep);
  /* Errors. */
  cr_assert(eq(int, dec_ack5(MQTTB_PKT_PUBACK, "\x00", 1, &pid, &reason, &props, NULL),
               MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, dec_ack5(MQTTB_PKT_PUBACK, "\x00\x00", 2, &pid, &reason, &props, NULL),
               MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int,
               dec_ack5(MQTTB_PKT_PUBACK, "\x00\x07\x00\x00\xAA", 5, &pid, &reason, &props, NULL),
               MQTTB_CODEC_MALFORMED),
            "trailing byte");
  cr_assert(
      eq(int,
         dec_ack5(MQTTB_PKT_PUBACK, "\x00\x07\x00\x05\x1F\x00\x01", 7, &pid, &reason, &props, NULL),
         MQTTB_CODEC_MALFORMED),
      "properties cut");
  cr_assert(
      eq(int,
         dec_ack5(MQTTB_PKT_PUBACK, "\x00\x07\x00\x03\x03\x00\x00", 7, &pid, &reason, &props, NULL),
         MQTTB_CODEC_MALFORMED),
      "Content Type in PUBACK");
  cr_assert(eq(int,
               dec_ack5(MQTTB_PKT_PUBACK, "\x00\x07\x00\x06\x1F\x00\x00\x1F\x00\x00", 10, &pid,
                        &reason, &props, NULL),
               MQTTB_CODEC_PROTOCOL),
            "Reason String twice");
}

static int dec_rp(uint8_t type, const void *body, size_t n, uint8_t *reason, mqttb_slice *props,
                  uint8_t **keep) {
  uint8_t *d = dup_exact(body, n);
  int rc = mqttb_decode_reason_props(type, d, n, reason, props);
  if (keep)
    *keep = d;
  else
    free(d);
  return rc;
}

Test(packets5, reason_props_decode) {
  uint8_t reason = 0xEE;
  mqttb_slice props;
  cr_assert(eq(int, dec_rp(MQTTB_PKT_DISCONNECT, "", 0, &reason, &props, NULL), 0));
  cr_assert(eq(u8, reason, 0));
  cr_assert(eq(sz, props.len, 0));
  cr_assert(eq(int, dec_rp(MQTTB_PKT_DISCONNECT, "\x04", 1, &reason, &props, NULL), 0));
  cr_assert(eq(u8, reason, 4));
  cr_assert(eq(int, dec_rp(MQTTB_PKT_DISCONNECT, "\x8E\x00", 2, &reason, &props, NULL), 0));
  cr_assert(eq(u8, reason, 0x8E));
  uint8_t *keep;
  cr_assert(eq(
      int, dec_rp(MQTTB_PKT_DISCONNECT, "\x9D\x05\x1C\x00\x02hi", 7, &reason, &props, &keep), 0));
  mqttb_prop p;
  cr_assert(mqttb_props_find(&props, MQTTB_PROP_SERVER_REFERENCE, &p) && slice_str(p.a, "hi"));
  free(keep);
  cr_assert(eq(
      int, dec_rp(MQTTB_PKT_DISCONNECT, "\x00\x05\x11\x00\x00\x00\x05", 7, &reason, &props, NULL),
      0));
  cr_assert(
      eq(int,
         dec_rp(MQTTB_PKT_DISCONNECT, "\x00\x05\x18\x00\x00\x00\x05", 7, &reason, &props, NULL),
         MQTTB_CODEC_MALFORMED),
      "Will Delay in DISCONNECT");
  cr_assert(
      eq(int, dec_rp(MQTTB_PKT_AUTH, "\x18\x07\x15\x00\x01M\x16\x00\x00", 9, &reason, &props, NULL),
         0));
  cr_assert(eq(int,
               dec_rp(MQTTB_PKT_AUTH, "\x18\x05\x11\x00\x00\x00\x05", 7, &reason, &props, NULL),
               MQTTB_CODEC_MALFORMED),
            "Session Expiry in AUTH");
  cr_assert(eq(int, dec_rp(MQTTB_PKT_DISCONNECT, "\x00\x00\x00", 3, &reason, &props, NULL),
               MQTTB_CODEC_MALFORMED),
            "trailing byte");
  cr_assert(eq(int, dec_rp(MQTTB_PKT_DISCONNECT, "\x00\x04\x1F", 3, &reason, &props, NULL),
               MQTTB_CODEC_MALFORMED),
            "properties cut");
}

Test(packets5, reason_props_encode_round_trip) {
  uint8_t b[64];
  cr_assert(eq(sz, mqttb_reason_props_size(0), 4));
  cr_assert(eq(sz, mqttb_encode_reason_props(b, MQTTB_PKT_DISCONNECT, 0x8B, NULL, 0), 4));
  cr_assert(eq(int, memcmp(b, "\xE0\x02\x8B\x00", 4), 0));
  uint8_t props[32];
  size_t plen = mqttb_prop_put_str(props, MQTTB_PROP_SERVER_REFERENCE, (const uint8_t *)"h:1", 3);
  size_t n = mqttb_reason_props_size(plen);
  cr_assert(eq(sz, n, 4 + plen));
  cr_assert(eq(sz, mqttb_encode_reason_props(b, MQTTB_PKT_DISCONNECT, 0x9C, props, plen), n));
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(b, n, UINT32_MAX, &f), 0));
  cr_assert(eq(u8, f.type, MQTTB_PKT_DISCONNECT));
  cr_assert(eq(u8, f.flags, 0));
  uint8_t reason;
  mqttb_slice ps;
  uint8_t *keep;
  cr_assert(
      eq(int, dec_rp(MQTTB_PKT_DISCONNECT, b + f.hdr_len, f.remaining, &reason, &ps, &keep), 0));
  cr_assert(eq(u8, reason, 0x9C));
  mqttb_prop p;
  cr_assert(mqttb_props_find(&ps, MQTTB_PROP_SERVER_REFERENCE, &p) && slice_str(p.a, "h:1"));
  free(keep);
  /* AUTH: type nibble 0xF0. */
  cr_assert(eq(sz, mqttb_encode_reason_props(b, MQTTB_PKT_AUTH, 0x18, NULL, 0), 4));
  cr_assert(eq(u8, b[0], 0xF0));
  /* A block of 200 bytes needs a two-byte length. */
  uint8_t big[200];
  uint8_t rs[197];
  memset(rs, 'r', sizeof(rs));
  size_t bl = mqttb_prop_put_str(big, MQTTB_PROP_REASON_STRING, rs, sizeof(rs));
  cr_assert(eq(sz, bl, 200));
  uint8_t out[300];
  n = mqttb_reason_props_size(bl);
  cr_assert(eq(sz, n, 1 + 2 + 1 + 2 + 200));
  cr_assert(eq(sz, mqttb_encode_reason_props(out, MQTTB_PKT_DISCONNECT, 0x80, big, bl), n));
  cr_assert(eq(int, mqttb_codec_frame(out, n, UINT32_MAX, &f), 0));
  cr_assert(eq(u32, f.remaining, 203));
  cr_assert(
      eq(int, dec_rp(MQTTB_PKT_DISCONNECT, out + f.hdr_len, f.remaining, &reason, &ps, NULL), 0));
}

Test(packets5, connack5_encode) {
  uint8_t b[300];
  cr_assert(eq(sz, mqttb_connack5_size(0), 5));
  cr_assert(eq(sz, mqttb_encode_connack5(b, true, 0, NULL, 0), 5));
  cr_assert(eq(int, memcmp(b, "\x20\x03\x01\x00\x00", 5), 0));
  cr_assert(eq(sz, mqttb_encode_connack5(b, false, 0x87, NULL, 0), 5));
  cr_assert(eq(int, memcmp(b, "\x20\x03\x00\x87\x00", 5), 0));
  uint8_t props[64];
  size_t plen = 0;
  plen += mqttb_prop_put_u16(props + plen, MQTTB_PROP_TOPIC_ALIAS_MAXIMUM, 10);
  plen += mqttb_prop_put_str(props + plen, MQTTB_PROP_ASSIGNED_CLIENT_ID, (const uint8_t *)"id", 2);
  size_t n = mqttb_connack5_size(plen);
  cr_assert(eq(sz, n, 2 + 2 + 1 + plen));
  cr_assert(eq(sz, mqttb_encode_connack5(b, false, 0, props, plen), n));
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(b, n, UINT32_MAX, &f), 0));
  cr_assert(eq(u8, f.type, MQTTB_PKT_CONNACK));
  cr_assert(eq(u32, f.remaining, 3 + plen));
  uint8_t *d = dup_exact(b + f.hdr_len, f.remaining);
  size_t pos = 2;
  mqttb_slice ps;
  cr_assert(eq(int, mqttb_props_read(d, f.remaining, &pos, MQTTB_PKT_CONNACK, &ps), 0));
  cr_assert(eq(sz, pos, f.remaining));
  mqttb_prop p;
  cr_assert(mqttb_props_find(&ps, MQTTB_PROP_TOPIC_ALIAS_MAXIMUM, &p) && p.value == 10);
  cr_assert(mqttb_props_find(&ps, MQTTB_PROP_ASSIGNED_CLIENT_ID, &p) && slice_str(p.a, "id"));
  free(d);
  /* A 130-byte block: two-byte property length. */
  uint8_t rs[127];
  memset(rs, 'x', sizeof(rs));
  uint8_t bigp[200];
  size_t bl = mqttb_prop_put_str(bigp, MQTTB_PROP_REASON_STRING, rs, 127);
  cr_assert(eq(sz, bl, 130));
  n = mqttb_connack5_size(bl);
  cr_assert(eq(sz, n, 1 + 2 + 2 + 2 + 130));
  cr_assert(eq(sz, mqttb_encode_connack5(b, false, 0, bigp, bl), n));
  cr_assert(eq(int, mqttb_codec_frame(b, n, UINT32_MAX, &f), 0));
  cr_assert(eq(u32, f.remaining, 134));
  d = dup_exact(b + f.hdr_len, f.remaining);
  pos = 2;
  cr_assert(eq(int, mqttb_props_read(d, f.remaining, &pos, MQTTB_PKT_CONNACK, &ps), 0));
  cr_assert(eq(sz, pos, f.remaining));
  free(d);
}

Test(packets5, ack_codes5_encode) {
  uint8_t b[32];
  const uint8_t codes[] = {0, 1, 2, 0x80, 0x8F};
  cr_assert(eq(sz, mqttb_ack_codes5_size(5), 10));
  cr_assert(eq(sz, mqttb_encode_ack_codes5(b, MQTTB_PKT_SUBACK, 0x0102, codes, 5), 10));
  cr_assert(eq(int, memcmp(b, "\x90\x08\x01\x02\x00\x00\x01\x02\x80\x8F", 10), 0));
  const uint8_t u[] = {0x00, 0x11};
  cr_assert(eq(sz, mqttb_ack_codes5_size(2), 7));
  cr_assert(eq(sz, mqttb_encode_ack_codes5(b, MQTTB_PKT_UNSUBACK, 9, u, 2), 7));
  cr_assert(eq(int, memcmp(b, "\xB0\x05\x00\x09\x00\x00\x11", 7), 0));
  /* 200 codes: two-byte remaining length. */
  uint8_t many[200];
  memset(many, 1, sizeof(many));
  uint8_t out[220];
  cr_assert(eq(sz, mqttb_ack_codes5_size(200), 1 + 2 + 203));
  cr_assert(eq(sz, mqttb_encode_ack_codes5(out, MQTTB_PKT_SUBACK, 1, many, 200), 206));
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(out, 206, UINT32_MAX, &f), 0));
  cr_assert(eq(u32, f.remaining, 203));
}

/* A SUBSCRIBE body: pid 1, the given property block, one filter "a/b" and
 * its options byte. */
static size_t sub_body(uint8_t *b, const uint8_t *props, size_t plen, uint8_t opts) {
  size_t n = 0;
  b[n++] = 0;
  b[n++] = 1;
  n += mqttb_codec_varint_encode(b + n, (uint32_t)plen);
  if (plen)
    memcpy(b + n, props, plen);
  n += plen;
  memcpy(b + n,
         "\x00\x03"
         "a/b",
         5);
  n += 5;
  b[n++] = opts;
  return n;
}

static int dec_sub5(const uint8_t *body, size_t n, uint8_t level, mqttb_subscribe *s,
                    mqttb_slice *props, uint8_t *opts_out) {
  uint8_t *d = dup_exact(body, n);
  int rc = mqttb_decode_subscribe_v(d, n, level, s, props);
  if (rc == MQTTB_CODEC_OK && opts_out) {
    size_t pos = 0;
    mqttb_slice f;
    cr_assert(mqttb_subscribe_next(&s->entries, &pos, &f, opts_out));
    cr_assert(slice_str(f, "a/b"));
  }
  free(d);
  return rc;
}

/* [MQTT-3.8.3-5]: reserved bits 6-7 must be 0; QoS 3 and Retain Handling 3
 * are malformed. Every options byte is checked. */
Test(packets5, subscribe_v5_options_validation) {
  uint8_t b[64];
  for (unsigned o = 0; o < 256; o++) {
    size_t n = sub_body(b, NULL, 0, (uint8_t)o);
    bool valid = (o & 0xC0u) == 0 && (o & 3u) != 3 && ((o >> 4) & 3u) != 3;
    mqttb_subscribe s;
    mqttb_slice props;
    uint8_t got = 0xEE;
    int rc = dec_sub5(b, n, 5, &s, &props, &got);
    cr_expect(eq(int, rc, valid ? MQTTB_CODEC_OK : MQTTB_CODEC_MALFORMED), "options %#04x", o);
    if (rc == 0) {
      cr_expect(eq(u8, got, (uint8_t)o), "options byte passed through");
      cr_expect(eq(sz, s.count, 1));
      cr_expect(eq(u16, s.packet_id, 1));
    }
  }
  /* MQTT 3.1.1 rules at level 4: only QoS bits, no property block. */
  uint8_t v4[] = {0x00, 0x01, 0x00, 0x03, 'a', '/', 'b', 0x04};
  mqttb_subscribe s;
  mqttb_slice props;
  cr_assert(eq(int, dec_sub5(v4, sizeof(v4), 4, &s, &props, NULL), MQTTB_CODEC_MALFORMED));
  v4[7] = 0x01;
  uint8_t got;
  cr_assert(eq(int, dec_sub5(v4, sizeof(v4), 4, &s, &props, &got), 0));
  cr_assert(eq(u8, got, 1));
}

Test(packets5, subscribe_v5_properties) {
  uint8_t b[64], p[16];
  mqttb_subscribe s;
  mqttb_slice props;
  size_t pl = mqttb_prop_put_varint(p, MQTTB_PROP_SUBSCRIPTION_ID, 42);
  size_t n = sub_body(b, p, pl, 0x2D);
  uint8_t *d = dup_exact(b, n);
  cr_assert(eq(int, mqttb_decode_subscribe_v(d, n, 5, &s, &props), 0));
  mqttb_prop q;
  cr_assert(mqttb_props_find(&props, MQTTB_PROP_SUBSCRIPTION_ID, &q) && q.value == 42);
  free(d);
  /* Subscription Identifier 0, twice, or a property not allowed. */
  pl = mqttb_prop_put_varint(p, MQTTB_PROP_SUBSCRIPTION_ID, 0);
  n = sub_body(b, p, pl, 0);
  cr_assert(eq(int, dec_sub5(b, n, 5, &s, &props, NULL), MQTTB_CODEC_PROTOCOL));
  pl = mqttb_prop_put_varint(p, MQTTB_PROP_SUBSCRIPTION_ID, 1);
  pl += mqttb_prop_put_varint(p + pl, MQTTB_PROP_SUBSCRIPTION_ID, 2);
  n = sub_body(b, p, pl, 0);
  cr_assert(eq(int, dec_sub5(b, n, 5, &s, &props, NULL), MQTTB_CODEC_PROTOCOL));
  pl = mqttb_prop_put_str(p, MQTTB_PROP_CONTENT_TYPE, (const uint8_t *)"x", 1);
  n = sub_body(b, p, pl, 0);
  cr_assert(eq(int, dec_sub5(b, n, 5, &s, &props, NULL), MQTTB_CODEC_MALFORMED));
  /* User property allowed. */
  static const uint8_t up[] = {0x26, 0, 1, 'k', 0, 1, 'v'};
  n = sub_body(b, up, sizeof(up), 1);
  cr_assert(eq(int, dec_sub5(b, n, 5, &s, &props, NULL), 0));
  /* No filter after the properties. */
  static const uint8_t nofilter[] = {0x00, 0x01, 0x00};
  cr_assert(
      eq(int, dec_sub5(nofilter, sizeof(nofilter), 5, &s, &props, NULL), MQTTB_CODEC_MALFORMED));
  /* The property length runs past the end. */
  static const uint8_t cut[] = {0x00, 0x01, 0x09, 0x0B, 0x01};
  cr_assert(eq(int, dec_sub5(cut, sizeof(cut), 5, &s, &props, NULL), MQTTB_CODEC_MALFORMED));
  /* Packet id 0. */
  n = sub_body(b, NULL, 0, 0);
  b[1] = 0;
  cr_assert(eq(int, dec_sub5(b, n, 5, &s, &props, NULL), MQTTB_CODEC_MALFORMED));
}

Test(packets5, unsubscribe_v5) {
  mqttb_unsubscribe u;
  mqttb_slice props;
  static const uint8_t ok[] = {0x00, 0x05, 0x07, 0x26, 0, 1, 'k', 0, 1, 'v', 0x00, 0x01, 'a'};
  uint8_t *d = dup_exact(ok, sizeof(ok));
  cr_assert(eq(int, mqttb_decode_unsubscribe_v(d, sizeof(ok), 5, &u, &props), 0));
  cr_assert(eq(u16, u.packet_id, 5));
  cr_assert(eq(sz, u.count, 1));
  cr_assert(eq(sz, props.len, 7));
  size_t pos = 0;
  mqttb_slice f;
  cr_assert(mqttb_unsubscribe_next(&u.entries, &pos, &f) && slice_str(f, "a"));
  free(d);
  static const uint8_t subid[] = {0x00, 0x05, 0x02, 0x0B, 0x01, 0x00, 0x01, 'a'};
  d = dup_exact(subid, sizeof(subid));
  cr_assert(
      eq(int, mqttb_decode_unsubscribe_v(d, sizeof(subid), 5, &u, &props), MQTTB_CODEC_MALFORMED));
  free(d);
  static const uint8_t none[] = {0x00, 0x05, 0x00};
  d = dup_exact(none, sizeof(none));
  cr_assert(
      eq(int, mqttb_decode_unsubscribe_v(d, sizeof(none), 5, &u, &props), MQTTB_CODEC_MALFORMED));
  free(d);
}

Test(packets5, publish_v5_round_trip_and_empty_topic) {
  uint8_t props[32];
  size_t pl = 0;
  pl += mqttb_prop_put_u16(props + pl, MQTTB_PROP_TOPIC_ALIAS, 3);
  pl += mqttb_prop_put_varint(props + pl, MQTTB_PROP_SUBSCRIPTION_ID, 1);
  pl += mqttb_prop_put_varint(props + pl, MQTTB_PROP_SUBSCRIPTION_ID, 2);
  mqttb_publish p;
  memset(&p, 0, sizeof(p));
  p.v5 = true;
  p.qos = 1;
  p.packet_id = 9;
  p.topic.ptr = (const uint8_t *)"t/1";
  p.topic.len = 3;
  p.props.ptr = props;
  p.props.len = pl;
  p.payload.ptr = (const uint8_t *)"pay";
  p.payload.len = 3;
  size_t n = mqttb_publish_size(&p);
  cr_assert(eq(sz, n, 2 + 5 + 2 + 1 + pl + 3));
  uint8_t b[64];
  cr_assert(eq(sz, mqttb_encode_publish(b, &p), n));
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(b, n, UINT32_MAX, &f), 0));
  uint8_t *d = dup_exact(b + f.hdr_len, f.remaining);
  mqttb_publish q;
  cr_assert(eq(int, mqttb_decode_publish_v(f.flags, d, f.remaining, 5, &q), 0));
  cr_assert(q.v5);
  cr_assert(slice_str(q.topic, "t/1"));
  cr_assert(eq(u16, q.packet_id, 9));
  cr_assert(slice_is(q.props, props, pl));
  cr_assert(slice_str(q.payload, "pay"));
  free(d);
  /* An empty topic is allowed at level 5 only. */
  static const uint8_t empty[] = {0x00, 0x00, 0x03, 0x23, 0x00, 0x01, 'x'};
  d = dup_exact(empty, sizeof(empty));
  cr_assert(eq(int, mqttb_decode_publish_v(0, d, sizeof(empty), 5, &q), 0));
  cr_assert(eq(sz, q.topic.len, 0));
  cr_assert(slice_str(q.payload, "x"));
  cr_assert(eq(int, mqttb_decode_publish_v(0, d, sizeof(empty), 4, &q), MQTTB_CODEC_MALFORMED));
  free(d);
  /* The property block must be there at level 5 and valid. */
  static const uint8_t noprops[] = {0x00, 0x01, 't'};
  d = dup_exact(noprops, sizeof(noprops));
  cr_assert(eq(int, mqttb_decode_publish_v(0, d, sizeof(noprops), 5, &q), MQTTB_CODEC_MALFORMED));
  free(d);
  static const uint8_t badprop[] = {0x00, 0x01, 't', 0x02, 0x24, 0x01};
  d = dup_exact(badprop, sizeof(badprop));
  cr_assert(eq(int, mqttb_decode_publish_v(0, d, sizeof(badprop), 5, &q), MQTTB_CODEC_MALFORMED),
            "Maximum QoS in PUBLISH");
  free(d);
}

Test(packets5, connect_v5_round_trip_and_property_errors) {
  uint8_t props[32], wprops[32];
  size_t pl = 0, wl = 0;
  pl += mqttb_prop_put_u32(props + pl, MQTTB_PROP_SESSION_EXPIRY, 60);
  pl += mqttb_prop_put_u16(props + pl, MQTTB_PROP_RECEIVE_MAXIMUM, 5);
  wl += mqttb_prop_put_u32(wprops + wl, MQTTB_PROP_WILL_DELAY, 10);
  wl += mqttb_prop_put_str(wprops + wl, MQTTB_PROP_CONTENT_TYPE, (const uint8_t *)"c", 1);
  mqttb_connect c;
  memset(&c, 0, sizeof(c));
  c.level = 5;
  c.clean = true;
  c.keepalive = 30;
  c.client_id.ptr = (const uint8_t *)"id";
  c.client_id.len = 2;
  c.props.ptr = props;
  c.props.len = pl;
  c.will = true;
  c.will_qos = 1;
  c.will_topic.ptr = (const uint8_t *)"w";
  c.will_topic.len = 1;
  c.will_payload.ptr = (const uint8_t *)"bye";
  c.will_payload.len = 3;
  c.will_props.ptr = wprops;
  c.will_props.len = wl;
  size_t n = mqttb_connect_size(&c);
  uint8_t b[128];
  cr_assert(eq(sz, mqttb_encode_connect(b, &c), n));
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(b, n, UINT32_MAX, &f), 0));
  uint8_t *d = dup_exact(b + f.hdr_len, f.remaining);
  mqttb_connect q;
  cr_assert(eq(int, mqttb_decode_connect(d, f.remaining, &q), 0));
  cr_assert(eq(u8, q.level, 5));
  cr_assert(slice_is(q.props, props, pl));
  cr_assert(slice_is(q.will_props, wprops, wl));
  cr_assert(slice_str(q.will_topic, "w"));
  cr_assert(slice_str(q.client_id, "id"));
  free(d);
  /* Will Delay among the CONNECT properties: malformed. */
  c.props.ptr = wprops;
  c.props.len = wl;
  n = mqttb_connect_size(&c);
  mqttb_encode_connect(b, &c);
  cr_assert(eq(int, mqttb_codec_frame(b, n, UINT32_MAX, &f), 0));
  d = dup_exact(b + f.hdr_len, f.remaining);
  cr_assert(eq(int, mqttb_decode_connect(d, f.remaining, &q), MQTTB_CODEC_MALFORMED));
  free(d);
  /* Session Expiry among the will properties: malformed. */
  c.props.ptr = props;
  c.props.len = pl;
  c.will_props.ptr = props;
  c.will_props.len = 5;
  n = mqttb_connect_size(&c);
  mqttb_encode_connect(b, &c);
  cr_assert(eq(int, mqttb_codec_frame(b, n, UINT32_MAX, &f), 0));
  d = dup_exact(b + f.hdr_len, f.remaining);
  cr_assert(eq(int, mqttb_decode_connect(d, f.remaining, &q), MQTTB_CODEC_MALFORMED));
  free(d);
  /* A duplicate will property: Protocol Error. */
  uint8_t dup[16];
  size_t dl = mqttb_prop_put_u32(dup, MQTTB_PROP_WILL_DELAY, 1);
  dl += mqttb_prop_put_u32(dup + dl, MQTTB_PROP_WILL_DELAY, 2);
  c.will_props.ptr = dup;
  c.will_props.len = dl;
  n = mqttb_connect_size(&c);
  mqttb_encode_connect(b, &c);
  cr_assert(eq(int, mqttb_codec_frame(b, n, UINT32_MAX, &f), 0));
  d = dup_exact(b + f.hdr_len, f.remaining);
  cr_assert(eq(int, mqttb_decode_connect(d, f.remaining, &q), MQTTB_CODEC_PROTOCOL));
  free(d);
}
