/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the MQTT wire codec (lib/codec.c). Expected bytes are
 * written by hand from the MQTT 3.1.1 / 3.1 specifications, not produced by
 * the encoder, so encoder and decoder are each checked against the spec and
 * then against each other (round trips).
 *
 * Inputs to decoders are copied into heap buffers of exactly their length
 * (dup_exact) so that AddressSanitizer flags any read past the end.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

/* Criterion 2.4.1's cr_assert() expansion stores an int into a 1-bit
 * bitfield, which -Wconversion flags at every call site. The codec itself
 * is built with -Wconversion; only this file turns it off. */
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

/* A heap copy of exactly n bytes (NULL for n == 0) so overreads trap. */
static uint8_t *dup_exact(const void *src, size_t n) {
  uint8_t *p;
  if (n == 0) {
    return NULL;
  }
  p = malloc(n);
  cr_assert(ne(ptr, p, NULL));
  memcpy(p, src, n);
  return p;
}

static mqttb_slice S(const char *s) {
  mqttb_slice r;
  r.ptr = (const uint8_t *)s;
  r.len = strlen(s);
  return r;
}

static mqttb_slice SB(const void *p, size_t n) {
  mqttb_slice r;
  r.ptr = (const uint8_t *)p;
  r.len = n;
  return r;
}

static bool slice_is(mqttb_slice s, const void *p, size_t n) {
  if (s.len != n) {
    return false;
  }
  return n == 0 || memcmp(s.ptr, p, n) == 0;
}

static bool slice_is_str(mqttb_slice s, const char *str) {
  return slice_is(s, str, strlen(str));
}

#define ASSERT_BYTES(got, glen, exp)                                                               \
  do {                                                                                             \
    cr_assert(eq(sz, (glen), sizeof(exp)));                                                        \
    cr_assert(eq(int, memcmp((got), (exp), sizeof(exp)), 0), "bytes differ");                      \
  } while (0)

/* A little writer for hand-built packet bodies. */
typedef struct wbuf {
  uint8_t b[4096];
  size_t n;
} wbuf;

static void w8(wbuf *w, uint8_t v) {
  cr_assert(lt(sz, w->n, sizeof(w->b)));
  w->b[w->n++] = v;
}

static void w16(wbuf *w, uint16_t v) {
  w8(w, (uint8_t)(v >> 8));
  w8(w, (uint8_t)(v & 0xFF));
}

static void wraw(wbuf *w, const void *p, size_t n) {
  cr_assert(le(sz, w->n + n, sizeof(w->b)));
  memcpy(w->b + w->n, p, n);
  w->n += n;
}

/* 2-byte length prefixed bytes. */
static void wbin(wbuf *w, const void *p, size_t n) {
  w16(w, (uint16_t)n);
  wraw(w, p, n);
}

static void wstr(wbuf *w, const char *s) {
  wbin(w, s, strlen(s));
}

/* Decoder wrappers working on exact heap copies. */
static int connect_exact(const uint8_t *body, size_t len, mqttb_connect *c) {
  uint8_t *p = dup_exact(body, len);
  int rc = mqttb_decode_connect(p, len, c);
  /* Slices in *c point into p, freed here: callers only look at rc and at
   * scalar fields (levels, flags, lengths). */
  free(p);
  return rc;
}

static int publish_exact(uint8_t flags, const uint8_t *body, size_t len) {
  mqttb_publish p;
  uint8_t *b = dup_exact(body, len);
  int rc = mqttb_decode_publish(flags, b, len, &p);
  free(b);
  return rc;
}

static int subscribe_exact(const uint8_t *body, size_t len, size_t *count) {
  mqttb_subscribe s;
  uint8_t *b = dup_exact(body, len);
  int rc = mqttb_decode_subscribe(b, len, &s);
  if (count) {
    *count = s.count;
  }
  free(b);
  return rc;
}

static int unsubscribe_exact(const uint8_t *body, size_t len, size_t *count) {
  mqttb_unsubscribe u;
  uint8_t *b = dup_exact(body, len);
  int rc = mqttb_decode_unsubscribe(b, len, &u);
  if (count) {
    *count = u.count;
  }
  free(b);
  return rc;
}

/* Parse a whole encoded packet: frame it (it must be complete and exactly n
 * bytes) and return the body. */
static const uint8_t *frame_whole(const uint8_t *pkt, size_t n, mqttb_frame *f) {
  cr_assert(eq(int, mqttb_codec_frame(pkt, n, UINT32_MAX, f), MQTTB_CODEC_OK));
  cr_assert(eq(sz, (size_t)f->hdr_len + f->remaining, n), "frame length != encoded length");
  cr_assert(eq(int, mqttb_codec_check_flags(f->type, f->flags), MQTTB_CODEC_OK));
  return pkt + f->hdr_len;
}

/* ---------------------------------------------------------------------- */
/* variable byte integer [MQTT-2.2.3]                                      */
/* ---------------------------------------------------------------------- */

typedef struct varint_case {
  uint32_t value;
  size_t len;
  uint8_t bytes[4];
} varint_case;

/* The boundary table of spec section 2.2.3 (Table 2.4). */
static const varint_case varint_cases[] = {
    {0, 1, {0x00}},
    {1, 1, {0x01}},
    {127, 1, {0x7F}},
    {128, 2, {0x80, 0x01}},
    {321, 2, {0xC1, 0x02}},
    {16383, 2, {0xFF, 0x7F}},
    {16384, 3, {0x80, 0x80, 0x01}},
    {2097151, 3, {0xFF, 0xFF, 0x7F}},
    {2097152, 4, {0x80, 0x80, 0x80, 0x01}},
    {268435455, 4, {0xFF, 0xFF, 0xFF, 0x7F}},
};
#define N_VARINT (sizeof(varint_cases) / sizeof(varint_cases[0]))

Test(varint, size_matches_spec_table_boundaries) {
  for (size_t i = 0; i < N_VARINT; i++) {
    cr_assert(eq(sz, mqttb_codec_varint_size(varint_cases[i].value), varint_cases[i].len),
              "value %u", varint_cases[i].value);
  }
}

Test(varint, encode_produces_spec_bytes_at_boundaries) {
  for (size_t i = 0; i < N_VARINT; i++) {
    uint8_t out[6];
    memset(out, 0xAA, sizeof(out));
    size_t n = mqttb_codec_varint_encode(out, varint_cases[i].value);
    cr_assert(eq(sz, n, varint_cases[i].len), "value %u", varint_cases[i].value);
    cr_assert(eq(int, memcmp(out, varint_cases[i].bytes, n), 0), "value %u", varint_cases[i].value);
    cr_assert(eq(u8, out[n], 0xAA), "wrote past the encoding for %u", varint_cases[i].value);
  }
}

Test(varint, encode_rejects_values_above_max_and_writes_nothing) {
  uint8_t out[6];
  memset(out, 0xAA, sizeof(out));
  cr_assert(eq(sz, mqttb_codec_varint_encode(out, MQTTB_MAX_REMAINING_LENGTH + 1u), 0));
  cr_assert(eq(sz, mqttb_codec_varint_encode(out, UINT32_MAX), 0));
  for (size_t i = 0; i < sizeof(out); i++) {
    cr_assert(eq(u8, out[i], 0xAA));
  }
  cr_assert(eq(sz, mqttb_codec_varint_size(MQTTB_MAX_REMAINING_LENGTH + 1u), 0));
}

Test(varint, frame_decodes_every_boundary_value) {
  for (size_t i = 0; i < N_VARINT; i++) {
    uint8_t buf[5];
    mqttb_frame f;
    buf[0] = 0x30;
    memcpy(buf + 1, varint_cases[i].bytes, varint_cases[i].len);
    size_t n = 1 + varint_cases[i].len;
    uint8_t *p = dup_exact(buf, n);
    cr_assert(eq(int, mqttb_codec_frame(p, n, UINT32_MAX, &f), MQTTB_CODEC_OK));
    cr_assert(eq(u32, f.remaining, varint_cases[i].value));
    cr_assert(eq(u32, f.hdr_len, (uint32_t)n));
    free(p);
  }
}

Test(varint, encode_then_frame_round_trips_across_range) {
  /* Every power-of-two neighbourhood plus a stride through the range. */
  for (uint32_t v = 0; v <= MQTTB_MAX_REMAINING_LENGTH; v = v < 300 ? v + 1 : v + v / 7) {
    uint8_t buf[5];
    mqttb_frame f;
    buf[0] = 0xC0;
    size_t n = mqttb_codec_varint_encode(buf + 1, v);
    cr_assert(eq(sz, n, mqttb_codec_varint_size(v)));
    cr_assert(eq(int, mqttb_codec_frame(buf, 1 + n, UINT32_MAX, &f), MQTTB_CODEC_OK));
    cr_assert(eq(u32, f.remaining, v));
  }
}

Test(varint, five_byte_remaining_length_is_malformed) {
  /* [MQTT-2.2.3]: at most four bytes; a continuation bit on the 4th byte is
   * malformed whether or not a 5th byte is present. */
  static const uint8_t five[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
  static const uint8_t cont4[] = {0x30, 0x80, 0x80, 0x80, 0x80};
  static const uint8_t zero5[] = {0x30, 0x80, 0x80, 0x80, 0x80, 0x00};
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(five, sizeof(five), UINT32_MAX, &f), MQTTB_CODEC_MALFORMED));
  cr_assert(
      eq(int, mqttb_codec_frame(cont4, sizeof(cont4), UINT32_MAX, &f), MQTTB_CODEC_MALFORMED));
  cr_assert(
      eq(int, mqttb_codec_frame(zero5, sizeof(zero5), UINT32_MAX, &f), MQTTB_CODEC_MALFORMED));
}

Test(varint, non_minimal_encoding_is_accepted) {
  /* Only the 5-byte case is an error; 0x80 0x00 encodes 0 in two bytes. */
  static const uint8_t two[] = {0xC0, 0x80, 0x00};
  static const uint8_t four[] = {0x30, 0xFF, 0x80, 0x80, 0x00};
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(two, sizeof(two), UINT32_MAX, &f), MQTTB_CODEC_OK));
  cr_assert(eq(u32, f.remaining, 0));
  cr_assert(eq(u32, f.hdr_len, 3));
  cr_assert(eq(int, mqttb_codec_frame(four, sizeof(four), UINT32_MAX, &f), MQTTB_CODEC_OK));
  cr_assert(eq(u32, f.remaining, 127));
  cr_assert(eq(u32, f.hdr_len, 5));
}

/* ---------------------------------------------------------------------- */
/* fixed header framing                                                    */
/* ---------------------------------------------------------------------- */

Test(frame, splits_type_and_flags_nibbles) {
  static const uint8_t pkt[] = {0x3B, 0x00};
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(pkt, sizeof(pkt), 100, &f), MQTTB_CODEC_OK));
  cr_assert(eq(u8, f.type, 3));
  cr_assert(eq(u8, f.flags, 0x0B));
  cr_assert(eq(u32, f.remaining, 0));
  cr_assert(eq(u32, f.hdr_len, 2));
}

Test(frame, incomplete_at_every_prefix_of_the_header) {
  /* remaining = 2097152 needs a 4-byte varint: header is 5 bytes. */
  static const uint8_t hdr[] = {0x30, 0x80, 0x80, 0x80, 0x01};
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(NULL, 0, UINT32_MAX, &f), MQTTB_CODEC_INCOMPLETE));
  for (size_t n = 1; n < sizeof(hdr); n++) {
    uint8_t *p = dup_exact(hdr, n);
    cr_assert(eq(int, mqttb_codec_frame(p, n, UINT32_MAX, &f), MQTTB_CODEC_INCOMPLETE),
              "prefix %zu", n);
    free(p);
  }
  uint8_t *p = dup_exact(hdr, sizeof(hdr));
  cr_assert(eq(int, mqttb_codec_frame(p, sizeof(hdr), UINT32_MAX, &f), MQTTB_CODEC_OK));
  cr_assert(eq(u32, f.hdr_len, 5));
  cr_assert(eq(u32, f.remaining, 2097152));
  free(p);
}

Test(frame, incomplete_at_every_prefix_of_each_header_size) {
  for (size_t i = 0; i < N_VARINT; i++) {
    uint8_t buf[5];
    mqttb_frame f;
    buf[0] = 0x30;
    memcpy(buf + 1, varint_cases[i].bytes, varint_cases[i].len);
    for (size_t n = 0; n < 1 + varint_cases[i].len; n++) {
      uint8_t *p = dup_exact(buf, n);
      cr_assert(eq(int, mqttb_codec_frame(p, n, UINT32_MAX, &f), MQTTB_CODEC_INCOMPLETE),
                "value %u prefix %zu", varint_cases[i].value, n);
      free(p);
    }
  }
}

Test(frame, ok_when_header_complete_even_if_body_is_not) {
  static const uint8_t pkt[] = {0x30, 0x0A, 0x00}; /* 10-byte body, 1 present */
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(pkt, sizeof(pkt), 1000, &f), MQTTB_CODEC_OK));
  cr_assert(eq(u32, f.remaining, 10));
  cr_assert(eq(u32, f.hdr_len, 2));
}

Test(frame, too_large_when_header_plus_remaining_exceeds_max_packet) {
  static const uint8_t pkt[] = {0x30, 0x0A}; /* whole packet 12 bytes */
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(pkt, sizeof(pkt), 12, &f), MQTTB_CODEC_OK));
  cr_assert(eq(int, mqttb_codec_frame(pkt, sizeof(pkt), 11, &f), MQTTB_CODEC_TOO_LARGE));
  cr_assert(eq(int, mqttb_codec_frame(pkt, sizeof(pkt), 0, &f), MQTTB_CODEC_TOO_LARGE));
}

Test(frame, too_large_counts_a_multi_byte_header) {
  static const uint8_t pkt[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F}; /* 268435455 + 5 */
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(pkt, sizeof(pkt), 268435460u, &f), MQTTB_CODEC_OK));
  cr_assert(eq(int, mqttb_codec_frame(pkt, sizeof(pkt), 268435459u, &f), MQTTB_CODEC_TOO_LARGE));
  cr_assert(eq(int, mqttb_codec_frame(pkt, sizeof(pkt), 268435455u, &f), MQTTB_CODEC_TOO_LARGE));
}

Test(frame, does_not_check_flags) {
  /* Type 0 and bad flags are check_flags' job, not frame's. */
  static const uint8_t pkt[] = {0x0F, 0x00};
  mqttb_frame f;
  cr_assert(eq(int, mqttb_codec_frame(pkt, sizeof(pkt), 10, &f), MQTTB_CODEC_OK));
  cr_assert(eq(u8, f.type, 0));
  cr_assert(eq(u8, f.flags, 0x0F));
}

/* ---------------------------------------------------------------------- */
/* fixed header flags [MQTT-2.2.2-1], [MQTT-2.2.2-2]                       */
/* ---------------------------------------------------------------------- */

Test(check_flags, every_type_and_flag_combination_matches_table_2_2) {
  /* Required flags per type (Table 2.2); -1 for PUBLISH (DUP/QoS/RETAIN). */
  static const int required[16] = {
      [MQTTB_PKT_CONNECT] = 0,     [MQTTB_PKT_CONNACK] = 0,    [MQTTB_PKT_PUBLISH] = -1,
      [MQTTB_PKT_PUBACK] = 0,      [MQTTB_PKT_PUBREC] = 0,     [MQTTB_PKT_PUBREL] = 2,
      [MQTTB_PKT_PUBCOMP] = 0,     [MQTTB_PKT_SUBSCRIBE] = 2,  [MQTTB_PKT_SUBACK] = 0,
      [MQTTB_PKT_UNSUBSCRIBE] = 2, [MQTTB_PKT_UNSUBACK] = 0,   [MQTTB_PKT_PINGREQ] = 0,
      [MQTTB_PKT_PINGRESP] = 0,    [MQTTB_PKT_DISCONNECT] = 0, [MQTTB_PKT_AUTH] = 0,
  };
  for (int type = 1; type <= 15; type++) {
    for (int flags = 0; flags <= 15; flags++) {
      int expect;
      if (required[type] < 0) {
        expect = ((flags >> 1) & 3) == 3 ? MQTTB_CODEC_MALFORMED : MQTTB_CODEC_OK;
      } else {
        expect = flags == required[type] ? MQTTB_CODEC_OK : MQTTB_CODEC_BAD_FLAGS;
      }
      cr_assert(eq(int, mqttb_codec_check_flags((uint8_t)type, (uint8_t)flags), expect),
                "type %d flags 0x%x", type, flags);
    }
  }
}

Test(check_flags, type_zero_is_malformed_for_any_flags) {
  for (int flags = 0; flags <= 15; flags++) {
    cr_assert(eq(int, mqttb_codec_check_flags(0, (uint8_t)flags), MQTTB_CODEC_MALFORMED));
  }
}

Test(check_flags, pubrel_subscribe_unsubscribe_need_0x2) {
  /* [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1] */
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_PUBREL, 0x2), MQTTB_CODEC_OK));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_PUBREL, 0x0), MQTTB_CODEC_BAD_FLAGS));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_SUBSCRIBE, 0x2), MQTTB_CODEC_OK));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_SUBSCRIBE, 0x0), MQTTB_CODEC_BAD_FLAGS));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_SUBSCRIBE, 0x3), MQTTB_CODEC_BAD_FLAGS));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_UNSUBSCRIBE, 0x2), MQTTB_CODEC_OK));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_UNSUBSCRIBE, 0xA), MQTTB_CODEC_BAD_FLAGS));
}

Test(check_flags, publish_qos3_is_malformed_other_flags_allowed) {
  /* [MQTT-3.3.1-4] */
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_PUBLISH, 0x6), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_PUBLISH, 0xF), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_PUBLISH, 0xD), MQTTB_CODEC_OK));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_PUBLISH, 0x0), MQTTB_CODEC_OK));
}

Test(check_flags, connect_with_nonzero_flags_is_bad_flags) {
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_CONNECT, 0x1), MQTTB_CODEC_BAD_FLAGS));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_PINGREQ, 0x8), MQTTB_CODEC_BAD_FLAGS));
  cr_assert(eq(int, mqttb_codec_check_flags(MQTTB_PKT_DISCONNECT, 0x2), MQTTB_CODEC_BAD_FLAGS));
}

/* ---------------------------------------------------------------------- */
/* UTF-8 [MQTT-1.5.3-1], [MQTT-1.5.3-2]                                    */
/* ---------------------------------------------------------------------- */

typedef struct bytes_case {
  const char *s;
  size_t len;
  bool valid;
} bytes_case;

#define C(str, v)                                                                                  \
  { str, sizeof(str) - 1, v }

static const bytes_case utf8_cases[] = {
    C("", true),
    C("abc", true),
    C("\x7F", true),
    C("\xC2\x80", true),         /* U+0080, smallest 2-byte */
    C("\xC2\xA9", true),         /* U+00A9 */
    C("\xDF\xBF", true),         /* U+07FF */
    C("\xE0\xA0\x80", true),     /* U+0800, smallest 3-byte */
    C("\xE2\x82\xAC", true),     /* U+20AC euro */
    C("\xED\x9F\xBF", true),     /* U+D7FF, just below the surrogates */
    C("\xEE\x80\x80", true),     /* U+E000, just above the surrogates */
    C("\xEF\xBF\xBF", true),     /* U+FFFF (noncharacter, but well-formed) */
    C("\xF0\x90\x80\x80", true), /* U+10000, smallest 4-byte */
    C("\xF0\x9F\x98\x80", true), /* U+1F600 */
    C("\xF4\x8F\xBF\xBF", true), /* U+10FFFF */
    C("a\xC3\xA9z/\xE6\x97\xA5", true),
    C("\x00", false), /* U+0000 [MQTT-1.5.3-2] */
    C("a\x00"
      "b",
      false),                             /* embedded U+0000 */
    C("\xC0\x80", false),                 /* overlong U+0000 (modified UTF-8) */
    C("\xC1\xBF", false),                 /* overlong U+007F */
    C("\xE0\x80\x80", false),             /* overlong 3-byte */
    C("\xE0\x9F\xBF", false),             /* overlong U+07FF */
    C("\xF0\x80\x80\x80", false),         /* overlong 4-byte */
    C("\xF0\x8F\xBF\xBF", false),         /* overlong U+FFFF */
    C("\xED\xA0\x80", false),             /* U+D800 surrogate [MQTT-1.5.3-1] */
    C("\xED\xBF\xBF", false),             /* U+DFFF surrogate */
    C("\xED\xB0\x80", false),             /* U+DC00 surrogate */
    C("\xF4\x90\x80\x80", false),         /* U+110000 */
    C("\xF5\x80\x80\x80", false),         /* lead byte beyond U+10FFFF */
    C("\xF7\xBF\xBF\xBF", false),         /* U+1FFFFF */
    C("\xF8\x88\x80\x80\x80", false),     /* 5-byte form */
    C("\xFC\x84\x80\x80\x80\x80", false), /* 6-byte form */
    C("\xFE", false),
    C("\xFF", false),
    C("\x80", false), /* lone continuation */
    C("\xBF", false),
    C("a\x80", false),
    C("\xC2", false),     /* truncated 2-byte */
    C("\xE2\x82", false), /* truncated 3-byte */
    C("\xE2", false),
    C("\xF0\x9F\x98", false), /* truncated 4-byte */
    C("\xF0\x9F", false),
    C("\xF0", false),
    C("abc\xC3", false),  /* truncated at the end */
    C("\xC2\x41", false), /* bad continuation */
    C("\xE2\x28\xA1", false),
    C("\xE2\x82\x28", false),
    C("\xF0\x9F\x98\x28", false),
    C("\xC2\xC2\xA9", false),
};
#define N_UTF8 (sizeof(utf8_cases) / sizeof(utf8_cases[0]))

Test(utf8, validity_table) {
  for (size_t i = 0; i < N_UTF8; i++) {
    uint8_t *p = dup_exact(utf8_cases[i].s, utf8_cases[i].len);
    bool got = mqttb_utf8_valid(p, utf8_cases[i].len);
    cr_assert(eq(int, got, utf8_cases[i].valid), "case %zu", i);
    free(p);
  }
}

Test(utf8, respects_length_and_does_not_look_past_it) {
  /* "\xC2\xA9" cut to one byte is a truncated sequence even though the next
   * byte in memory would complete it. */
  static const uint8_t s[] = {0xC2, 0xA9, 0x00};
  cr_assert(not(mqttb_utf8_valid(s, 1)));
  cr_assert(mqttb_utf8_valid(s, 2));
  cr_assert(not(mqttb_utf8_valid(s, 3))); /* the NUL counts when inside len */
}

/* ASCII is checked eight bytes at a time: a NUL, a non-ASCII byte and a
 * broken sequence are found at every position of strings of every length
 * around that stride. */
Test(utf8, found_at_every_position_of_long_ascii_runs) {
  uint8_t s[40];
  for (size_t len = 1; len <= sizeof s; len++) {
    memset(s, 'a', len);
    cr_assert(mqttb_utf8_valid(s, len), "len %zu", len);
    for (size_t at = 0; at < len; at++) {
      memset(s, 'a', len);
      s[at] = 0;
      cr_assert(not(mqttb_utf8_valid(s, len)), "NUL at %zu of %zu", at, len);
      s[at] = 0x80; /* a stray continuation byte */
      cr_assert(not(mqttb_utf8_valid(s, len)), "0x80 at %zu of %zu", at, len);
      if (at + 1 < len) {
        s[at] = 0xC3; /* U+00E9, then ASCII again */
        s[at + 1] = 0xA9;
        cr_assert(mqttb_utf8_valid(s, len), "U+00E9 at %zu of %zu", at, len);
        s[at] = 0xC0; /* overlong */
        s[at + 1] = 0x80;
        cr_assert(not(mqttb_utf8_valid(s, len)), "overlong at %zu of %zu", at, len);
      }
    }
  }
}

/* Wildcards and level separators are found eight bytes at a time too: at
 * every position, next to every byte value. */
Test(topic, wildcards_and_levels_at_every_position) {
  uint8_t s[37];
  for (size_t len = 1; len <= sizeof s; len++) {
    for (size_t at = 0; at < len; at++) {
      memset(s, 'x', len);
      cr_assert(mqttb_topic_name_valid(s, len));
      cr_assert(eq(sz, mqttb_topic_levels(s, len), 1));
      s[at] = '+';
      cr_assert(not(mqttb_topic_name_valid(s, len)), "'+' at %zu of %zu", at, len);
      s[at] = '#';
      cr_assert(not(mqttb_topic_name_valid(s, len)), "'#' at %zu of %zu", at, len);
      /* Neighbours of the wildcards' values are fine. */
      s[at] = '+' - 1;
      cr_assert(mqttb_topic_name_valid(s, len));
      s[at] = '#' + 1;
      cr_assert(mqttb_topic_name_valid(s, len));
      /* Slashes at every second position from here on. */
      size_t want = 1;
      for (size_t k = at; k < len; k += 2) {
        s[k] = '/';
        want++;
      }
      cr_assert(eq(sz, mqttb_topic_levels(s, len), want), "at %zu of %zu", at, len);
      s[at] = '/' + 1; /* '0' is no separator */
      cr_assert(eq(sz, mqttb_topic_levels(s, len), want - 1));
    }
  }
}

Test(utf8, empty_string_is_valid_even_with_null_pointer) {
  cr_assert(mqttb_utf8_valid(NULL, 0));
}

Test(utf8, every_surrogate_code_point_is_rejected) {
  for (uint32_t cp = 0xD800; cp <= 0xDFFF; cp++) {
    uint8_t s[3] = {(uint8_t)(0xE0 | (cp >> 12)), (uint8_t)(0x80 | ((cp >> 6) & 0x3F)),
                    (uint8_t)(0x80 | (cp & 0x3F))};
    cr_assert(not(mqttb_utf8_valid(s, 3)), "U+%04X", cp);
  }
}

Test(utf8, every_bmp_non_surrogate_code_point_is_accepted) {
  for (uint32_t cp = 1; cp <= 0xFFFF; cp++) {
    uint8_t s[3];
    size_t n;
    if (cp >= 0xD800 && cp <= 0xDFFF) {
      continue;
    }
    if (cp < 0x80) {
      s[0] = (uint8_t)cp;
      n = 1;
    } else if (cp < 0x800) {
      s[0] = (uint8_t)(0xC0 | (cp >> 6));
      s[1] = (uint8_t)(0x80 | (cp & 0x3F));
      n = 2;
    } else {
      s[0] = (uint8_t)(0xE0 | (cp >> 12));
      s[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
      s[2] = (uint8_t)(0x80 | (cp & 0x3F));
      n = 3;
    }
    cr_assert(mqttb_utf8_valid(s, n), "U+%04X", cp);
  }
}

/* ---------------------------------------------------------------------- */
/* topic names and filters [MQTT-4.7]                                      */
/* ---------------------------------------------------------------------- */

static const bytes_case topic_name_cases[] = {
    C("a", true),
    C("/", true),
    C("a/b", true),
    C("a//b", true), /* empty levels are allowed */
    C("/a", true),
    C("a/", true),
    C(" ", true),
    C("sport/tennis/player1", true),
    C("$SYS/broker/load", true),
    C("\xE2\x82\xAC/x", true),
    C("", false),  /* [MQTT-4.7.3-1] */
    C("+", false), /* [MQTT-3.3.2-2] */
    C("#", false),
    C("a/+", false),
    C("a/#", false),
    C("a+b", false),
    C("a#", false),
    C("sport/tennis/#", false),
    C("\xC0\x80", false), /* bad UTF-8 */
    C("a\x00"
      "b",
      false), /* U+0000 [MQTT-4.7.3-2] */
    C("\xED\xA0\x80", false),
};

static const bytes_case topic_filter_cases[] = {
    C("#", true), /* [MQTT-4.7.1-2] */
    C("a/#", true),
    C("/#", true),
    C("+", true), /* [MQTT-4.7.1-3] */
    C("a/+/b", true),
    C("/+", true),
    C("+/", true),
    C("+/+", true),
    C("+/#", true),
    C("a/+/#", true),
    C("a//b", true),
    C("/", true),
    C("//", true),
    C("a/b/c", true),
    C("sport/tennis/+", true),
    C("$SYS/#", true),
    C("\xE2\x82\xAC/+", true),
    C("", false), /* [MQTT-4.7.3-1] */
    C("a#", false),
    C("a/#/b", false),
    C("a+", false),
    C("#/a", false),
    C("+a", false),
    C("a/b+", false),
    C("a/+b/c", false),
    C("##", false),
    C("++", false),
    C("a/#/", false),
    C("#/", false),
    C("+#", false),
    C("#+", false),
    C("sport/tennis#", false),
    C("\xC0\x80", false),
    C("a/\x00", false),
    C("\xF4\x90\x80\x80", false),
};

Test(topic, name_validity_table) {
  for (size_t i = 0; i < sizeof(topic_name_cases) / sizeof(topic_name_cases[0]); i++) {
    uint8_t *p = dup_exact(topic_name_cases[i].s, topic_name_cases[i].len);
    cr_assert(
        eq(int, mqttb_topic_name_valid(p, topic_name_cases[i].len), topic_name_cases[i].valid),
        "case %zu", i);
    free(p);
  }
}

Test(topic, filter_validity_table) {
  for (size_t i = 0; i < sizeof(topic_filter_cases) / sizeof(topic_filter_cases[0]); i++) {
    uint8_t *p = dup_exact(topic_filter_cases[i].s, topic_filter_cases[i].len);
    cr_assert(eq(int, mqttb_topic_filter_valid(p, topic_filter_cases[i].len),
                 topic_filter_cases[i].valid),
              "case %zu (%s)", i, topic_filter_cases[i].s);
    free(p);
  }
}

Test(topic, every_valid_name_is_a_valid_filter) {
  for (size_t i = 0; i < sizeof(topic_name_cases) / sizeof(topic_name_cases[0]); i++) {
    const bytes_case *tc = &topic_name_cases[i];
    if (tc->valid) {
      cr_assert(mqttb_topic_filter_valid((const uint8_t *)tc->s, tc->len), "case %zu", i);
    }
  }
}

Test(topic, length_limit_is_65535_bytes) {
  uint8_t *big = malloc(65536);
  cr_assert(ne(ptr, big, NULL));
  memset(big, 'a', 65536);
  cr_assert(mqttb_topic_name_valid(big, 65535));
  cr_assert(mqttb_topic_filter_valid(big, 65535));
  cr_assert(not(mqttb_topic_name_valid(big, 65536)));
  cr_assert(not(mqttb_topic_filter_valid(big, 65536)));
  free(big);
}

/* ---------------------------------------------------------------------- */
/* CONNECT [MQTT-3.1]                                                      */
/* ---------------------------------------------------------------------- */

/* 3.1.1 CONNECT body: will (QoS 1, retain), username, password, clean. */
static const uint8_t connect_full[] = {
    0x00, 0x04, 'M',  'Q',  'T',  'T', /* protocol name */
    0x04,                              /* level */
    0xEE,                              /* user, pass, will retain, will QoS 1, will, clean */
    0x01, 0x2C,                        /* keep alive 300 */
    0x00, 0x03, 'c',  'i',  'd',       /* client id */
    0x00, 0x03, 'w',  '/',  't',       /* will topic */
    0x00, 0x03, 'b',  0x00, 0xFF,      /* will payload (binary) */
    0x00, 0x04, 'u',  's',  'e',  'r', /* username */
    0x00, 0x03, 0xC0, 0x00, 0xFF,      /* password: binary, not UTF-8 */
};

/* 3.1 CONNECT body: MQIsdp level 3, clean session, keep alive 10. */
static const uint8_t connect_v31[] = {
    0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x0A, 0x00, 0x03, 'a', 'b', 'c',
};

Test(connect, decodes_valid_3_1_1_with_all_fields) {
  mqttb_connect c;
  cr_assert(eq(int, mqttb_decode_connect(connect_full, sizeof(connect_full), &c), MQTTB_CODEC_OK));
  cr_assert(slice_is_str(c.protocol_name, "MQTT"));
  cr_assert(eq(u8, c.level, 4));
  cr_assert(c.clean);
  cr_assert(eq(u16, c.keepalive, 300));
  cr_assert(slice_is_str(c.client_id, "cid"));
  cr_assert(c.will);
  cr_assert(eq(u8, c.will_qos, 1));
  cr_assert(c.will_retain);
  cr_assert(slice_is_str(c.will_topic, "w/t"));
  cr_assert(slice_is(c.will_payload, "b\x00\xFF", 3));
  cr_assert(c.has_username);
  cr_assert(slice_is_str(c.username, "user"));
  cr_assert(c.has_password);
  cr_assert(slice_is(c.password, "\xC0\x00\xFF", 3));
}

Test(connect, slices_borrow_from_the_input) {
  mqttb_connect c;
  cr_assert(eq(int, mqttb_decode_connect(connect_full, sizeof(connect_full), &c), MQTTB_CODEC_OK));
  cr_assert(eq(ptr, (void *)c.client_id.ptr, (void *)(connect_full + 12)));
  cr_assert(eq(ptr, (void *)c.password.ptr, (void *)(connect_full + sizeof(connect_full) - 3)));
}

Test(connect, decodes_valid_3_1_mqisdp) {
  mqttb_connect c;
  cr_assert(eq(int, mqttb_decode_connect(connect_v31, sizeof(connect_v31), &c), MQTTB_CODEC_OK));
  cr_assert(slice_is_str(c.protocol_name, "MQIsdp"));
  cr_assert(eq(u8, c.level, 3));
  cr_assert(c.clean);
  cr_assert(eq(u16, c.keepalive, 10));
  cr_assert(slice_is_str(c.client_id, "abc"));
  cr_assert(not(c.will));
  cr_assert(not(c.has_username));
  cr_assert(not(c.has_password));
  cr_assert(eq(sz, c.username.len, 0));
  cr_assert(eq(sz, c.will_topic.len, 0));
}

Test(connect, empty_client_id_is_accepted_by_the_codec) {
  /* [MQTT-3.1.3-6]: zero-length client id is the server's decision. */
  static const uint8_t body[] = {0x00, 0x04, 'M',  'Q',  'T',  'T',
                                 0x04, 0x00, 0x00, 0x00, 0x00, 0x00};
  mqttb_connect c;
  cr_assert(eq(int, mqttb_decode_connect(body, sizeof(body), &c), MQTTB_CODEC_OK));
  cr_assert(eq(sz, c.client_id.len, 0));
  cr_assert(not(c.clean));
  cr_assert(eq(u16, c.keepalive, 0));
}

Test(connect, empty_will_payload_and_password_are_accepted) {
  wbuf w = {.n = 0};
  mqttb_connect c;
  wstr(&w, "MQTT");
  w8(&w, 4);
  w8(&w, 0xC4 | 0x10); /* user, pass, will QoS 2, will */
  w16(&w, 5);
  wstr(&w, "id");
  wstr(&w, "t");
  wbin(&w, "", 0);
  wstr(&w, "u");
  wbin(&w, "", 0);
  cr_assert(eq(int, connect_exact(w.b, w.n, &c), MQTTB_CODEC_OK));
  cr_assert(eq(u8, c.will_qos, 2));
  cr_assert(not(c.will_retain));
  cr_assert(eq(sz, c.will_payload.len, 0));
  cr_assert(eq(sz, c.password.len, 0));
}

/* Build a 3.1.1 CONNECT body for a flags byte with every field its flags
 * call for present. */
static void connect_body_for_flags(wbuf *w, uint8_t flags) {
  w->n = 0;
  wstr(w, "MQTT");
  w8(w, 4);
  w8(w, flags);
  w16(w, 60);
  wstr(w, "c");
  if (flags & 0x04) {
    wstr(w, "w/t");
    wstr(w, "wp");
  }
  if (flags & 0x80) {
    wstr(w, "u");
  }
  if (flags & 0x40) {
    wstr(w, "p");
  }
}

Test(connect, every_flags_byte_is_judged_by_the_spec) {
  /* [MQTT-3.1.2-3] reserved bit, [MQTT-3.1.2-11]/[-13]/[-15] will QoS and
   * retain need the will flag, [MQTT-3.1.2-14] will QoS 3,
   * [MQTT-3.1.2-22] password needs username. */
  for (int fl = 0; fl < 256; fl++) {
    wbuf w;
    mqttb_connect c;
    uint8_t flags = (uint8_t)fl;
    bool user = flags & 0x80, pass = flags & 0x40, wret = flags & 0x20, will = flags & 0x04;
    int wqos = (flags >> 3) & 3;
    bool bad = (flags & 0x01) || wqos == 3 || (!will && (wqos != 0 || wret)) || (pass && !user);

    connect_body_for_flags(&w, flags);
    uint8_t *p = dup_exact(w.b, w.n);
    int rc = mqttb_decode_connect(p, w.n, &c);
    cr_assert(eq(int, rc, bad ? MQTTB_CODEC_MALFORMED : MQTTB_CODEC_OK), "flags 0x%02x", fl);
    if (!bad) {
      cr_assert(eq(int, c.has_username, user));
      cr_assert(eq(int, c.has_password, pass));
      cr_assert(eq(int, c.will, will));
      cr_assert(eq(int, c.will_retain, wret));
      cr_assert(eq(int, c.will_qos, wqos));
      cr_assert(eq(int, c.clean, (flags & 0x02) != 0));
      if (will) {
        cr_assert(slice_is_str(c.will_topic, "w/t"));
        cr_assert(slice_is_str(c.will_payload, "wp"));
      }
      if (user) {
        cr_assert(slice_is_str(c.username, "u"));
      }
      if (pass) {
        cr_assert(slice_is_str(c.password, "p"));
      }
    }
    free(p);
  }
}

static int decode_flags(uint8_t flags) {
  wbuf w;
  mqttb_connect c;
  connect_body_for_flags(&w, flags);
  return connect_exact(w.b, w.n, &c);
}

Test(connect, reserved_flag_bit_set_is_malformed) {
  /* [MQTT-3.1.2-3] */
  cr_assert(eq(int, decode_flags(0x03), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_flags(0x01), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_flags(0x02), MQTTB_CODEC_OK));
}

Test(connect, will_qos_3_is_malformed) {
  /* [MQTT-3.1.2-14] */
  cr_assert(eq(int, decode_flags(0x04 | 0x18), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_flags(0x04 | 0x10), MQTTB_CODEC_OK));
}

Test(connect, will_qos_without_will_flag_is_malformed) {
  /* [MQTT-3.1.2-13] */
  cr_assert(eq(int, decode_flags(0x08), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_flags(0x10), MQTTB_CODEC_MALFORMED));
}

Test(connect, will_retain_without_will_flag_is_malformed) {
  /* [MQTT-3.1.2-15] */
  cr_assert(eq(int, decode_flags(0x20), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_flags(0x24), MQTTB_CODEC_OK));
}

Test(connect, password_without_username_is_malformed) {
  /* [MQTT-3.1.2-22] */
  cr_assert(eq(int, decode_flags(0x40), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_flags(0xC0), MQTTB_CODEC_OK));
}

Test(connect, password_without_username_is_malformed_for_3_1_too) {
  wbuf w = {.n = 0};
  mqttb_connect c;
  wstr(&w, "MQIsdp");
  w8(&w, 3);
  w8(&w, 0x42);
  w16(&w, 10);
  wstr(&w, "abc");
  wstr(&w, "pw");
  cr_assert(eq(int, connect_exact(w.b, w.n, &c), MQTTB_CODEC_MALFORMED));
}

static int decode_proto(const char *name, uint8_t level, mqttb_connect *c) {
  wbuf w = {.n = 0};
  wstr(&w, name);
  w8(&w, level);
  w8(&w, 0x02);
  w16(&w, 10);
  wstr(&w, "abc");
  uint8_t *p = dup_exact(w.b, w.n);
  int rc = mqttb_decode_connect(p, w.n, c);
  free(p);
  return rc;
}

Test(connect, unsupported_level_is_bad_protocol_with_level_filled) {
  /* [MQTT-3.1.2-2]: server answers CONNACK 0x01. */
  static const uint8_t mqtt_levels[] = {0, 1, 2, 3, 6, 0x83, 255};
  mqttb_connect c;
  for (size_t i = 0; i < sizeof(mqtt_levels); i++) {
    cr_assert(eq(int, decode_proto("MQTT", mqtt_levels[i], &c), MQTTB_CODEC_BAD_PROTOCOL),
              "MQTT level %u", mqtt_levels[i]);
    cr_assert(eq(u8, c.level, mqtt_levels[i]));
    cr_assert(eq(sz, c.protocol_name.len, 4));
  }
  static const uint8_t mqisdp_levels[] = {0, 2, 4, 5, 255};
  for (size_t i = 0; i < sizeof(mqisdp_levels); i++) {
    cr_assert(eq(int, decode_proto("MQIsdp", mqisdp_levels[i], &c), MQTTB_CODEC_BAD_PROTOCOL),
              "MQIsdp level %u", mqisdp_levels[i]);
    cr_assert(eq(u8, c.level, mqisdp_levels[i]));
    cr_assert(eq(sz, c.protocol_name.len, 6));
  }
}

Test(connect, mqtt_level_5_decodes_properties) {
  /* Level 5: a property block follows the keep-alive. */
  static const uint8_t body[] = {0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05, 0x02, 0x00, 0x3C, 0x05,
                                 0x11, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x03, 'a',  'b',  'c'};
  mqttb_connect c;
  cr_assert(eq(int, connect_exact(body, sizeof(body), &c), MQTTB_CODEC_OK));
  cr_assert(eq(u8, c.level, 5));
  cr_assert(eq(sz, c.props.len, 5));
  cr_assert(slice_is_str(c.client_id, "abc"));
  /* Without the property block the client id is read as properties. */
  static const uint8_t noprops[] = {0x00, 0x04, 'M',  'Q',  'T', 'T', 0x05, 0x02,
                                    0x00, 0x3C, 0x00, 0x03, 'a', 'b', 'c'};
  cr_assert(not(eq(int, connect_exact(noprops, sizeof(noprops), &c), MQTTB_CODEC_OK)));
}

Test(connect, unknown_protocol_name_is_malformed) {
  /* [MQTT-3.1.2-1] */
  mqttb_connect c;
  cr_assert(eq(int, decode_proto("MQTX", 4, &c), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_proto("mqtt", 4, &c), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_proto("MQT", 4, &c), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_proto("MQTTT", 4, &c), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_proto("MQIsdp", 4, &c), MQTTB_CODEC_BAD_PROTOCOL));
  cr_assert(eq(int, decode_proto("MQisdp", 3, &c), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_proto("", 4, &c), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_proto("MQTT", 4, &c), MQTTB_CODEC_OK));
  cr_assert(eq(int, decode_proto("MQIsdp", 3, &c), MQTTB_CODEC_OK));
}

Test(connect, truncated_at_every_length_is_malformed) {
  mqttb_connect c;
  for (size_t n = 0; n < sizeof(connect_full); n++) {
    cr_assert(eq(int, connect_exact(connect_full, n, &c), MQTTB_CODEC_MALFORMED), "length %zu", n);
  }
  for (size_t n = 0; n < sizeof(connect_v31); n++) {
    cr_assert(eq(int, connect_exact(connect_v31, n, &c), MQTTB_CODEC_MALFORMED), "length %zu", n);
  }
  cr_assert(eq(int, connect_exact(connect_full, sizeof(connect_full), &c), MQTTB_CODEC_OK));
}

Test(connect, trailing_bytes_after_payload_are_malformed) {
  uint8_t buf[sizeof(connect_full) + 2];
  mqttb_connect c;
  memcpy(buf, connect_full, sizeof(connect_full));
  buf[sizeof(connect_full)] = 0;
  buf[sizeof(connect_full) + 1] = 0;
  cr_assert(eq(int, connect_exact(buf, sizeof(connect_full) + 1, &c), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, connect_exact(buf, sizeof(connect_full) + 2, &c), MQTTB_CODEC_MALFORMED));
}

Test(connect, fields_present_without_their_flags_are_trailing_bytes) {
  /* The 3.1 body plus a username that the flags do not announce. */
  wbuf w = {.n = 0};
  mqttb_connect c;
  wraw(&w, connect_v31, sizeof(connect_v31));
  wstr(&w, "user");
  cr_assert(eq(int, connect_exact(w.b, w.n, &c), MQTTB_CODEC_MALFORMED));
}

/* CONNECT with will and username where one string is replaced. */
static int decode_strings(const void *cid, size_t cid_len, const void *wt, size_t wt_len,
                          const void *user, size_t user_len) {
  wbuf w = {.n = 0};
  mqttb_connect c;
  wstr(&w, "MQTT");
  w8(&w, 4);
  w8(&w, 0x86); /* user, will, clean */
  w16(&w, 60);
  wbin(&w, cid, cid_len);
  wbin(&w, wt, wt_len);
  wstr(&w, "payload");
  wbin(&w, user, user_len);
  return connect_exact(w.b, w.n, &c);
}

Test(connect, client_id_must_be_valid_utf8) {
  /* [MQTT-3.1.3-4] */
  cr_assert(eq(int, decode_strings("\xC0\x80", 2, "t", 1, "u", 1), MQTTB_CODEC_BAD_UTF8));
  cr_assert(eq(int, decode_strings("a\x00", 2, "t", 1, "u", 1), MQTTB_CODEC_BAD_UTF8));
  cr_assert(eq(int, decode_strings("\xED\xA0\x80", 3, "t", 1, "u", 1), MQTTB_CODEC_BAD_UTF8));
  cr_assert(eq(int, decode_strings("\xC3\xA9", 2, "t", 1, "u", 1), MQTTB_CODEC_OK));
}

Test(connect, will_topic_must_be_valid_utf8) {
  cr_assert(eq(int, decode_strings("c", 1, "\xF4\x90\x80\x80", 4, "u", 1), MQTTB_CODEC_BAD_UTF8));
  cr_assert(eq(int, decode_strings("c", 1, "t\x00", 2, "u", 1), MQTTB_CODEC_BAD_UTF8));
}

Test(connect, will_topic_must_be_a_valid_topic_name) {
  /* [MQTT-3.1.3-10] / [MQTT-4.7.3-1] / [MQTT-3.3.2-2] */
  cr_assert(eq(int, decode_strings("c", 1, "", 0, "u", 1), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_strings("c", 1, "a/#", 3, "u", 1), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_strings("c", 1, "+", 1, "u", 1), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, decode_strings("c", 1, "a//b", 4, "u", 1), MQTTB_CODEC_OK));
}

Test(connect, username_must_be_valid_utf8) {
  /* [MQTT-3.1.3-11] */
  cr_assert(eq(int, decode_strings("c", 1, "t", 1, "\xFF", 1), MQTTB_CODEC_BAD_UTF8));
  cr_assert(eq(int, decode_strings("c", 1, "t", 1, "\xE2\x82", 2), MQTTB_CODEC_BAD_UTF8));
  cr_assert(eq(int, decode_strings("c", 1, "t", 1, "\xE2\x82\xAC", 3), MQTTB_CODEC_OK));
}

Test(connect, string_length_running_past_the_end_is_malformed) {
  /* Client id claims 4 bytes, 3 follow. */
  static const uint8_t body[] = {0x00, 0x04, 'M',  'Q',  'T', 'T', 0x04, 0x02,
                                 0x00, 0x0A, 0x00, 0x04, 'a', 'b', 'c'};
  mqttb_connect c;
  cr_assert(eq(int, connect_exact(body, sizeof(body), &c), MQTTB_CODEC_MALFORMED));
  /* Protocol name claims 0xFFFF bytes. */
  static const uint8_t body2[] = {0xFF, 0xFF, 'M', 'Q', 'T', 'T', 0x04};
  cr_assert(eq(int, connect_exact(body2, sizeof(body2), &c), MQTTB_CODEC_MALFORMED));
}

static void assert_connect_eq(const mqttb_connect *a, const mqttb_connect *b) {
  cr_assert(slice_is(a->protocol_name, b->protocol_name.ptr, b->protocol_name.len));
  cr_assert(eq(u8, a->level, b->level));
  cr_assert(eq(int, a->clean, b->clean));
  cr_assert(eq(u16, a->keepalive, b->keepalive));
  cr_assert(slice_is(a->client_id, b->client_id.ptr, b->client_id.len));
  cr_assert(eq(int, a->will, b->will));
  cr_assert(eq(u8, a->will_qos, b->will_qos));
  cr_assert(eq(int, a->will_retain, b->will_retain));
  cr_assert(slice_is(a->will_topic, b->will_topic.ptr, b->will_topic.len));
  cr_assert(slice_is(a->will_payload, b->will_payload.ptr, b->will_payload.len));
  cr_assert(eq(int, a->has_username, b->has_username));
  cr_assert(slice_is(a->username, b->username.ptr, b->username.len));
  cr_assert(eq(int, a->has_password, b->has_password));
  cr_assert(slice_is(a->password, b->password.ptr, b->password.len));
}

/* Encode into an exact-size heap buffer, frame, decode, compare. */
static void connect_round_trip(const mqttb_connect *in) {
  size_t sz = mqttb_connect_size(in);
  cr_assert(lt(sz, 0, sz));
  uint8_t *buf = malloc(sz);
  cr_assert(ne(ptr, buf, NULL));
  cr_assert(eq(sz, mqttb_encode_connect(buf, in), sz));
  mqttb_frame f;
  const uint8_t *body = frame_whole(buf, sz, &f);
  cr_assert(eq(u8, f.type, MQTTB_PKT_CONNECT));
  mqttb_connect out;
  cr_assert(eq(int, mqttb_decode_connect(body, f.remaining, &out), MQTTB_CODEC_OK));
  assert_connect_eq(&out, in);
  free(buf);
}

Test(connect, round_trip_with_every_field) {
  static const uint8_t pw[] = {0x00, 0xFF, 0x80};
  mqttb_connect c = {
      .protocol_name = S("MQTT"),
      .level = 4,
      .clean = true,
      .keepalive = 65535,
      .client_id = S("client-\xC3\xA9"),
      .will = true,
      .will_qos = 2,
      .will_retain = true,
      .will_topic = S("last/will"),
      .will_payload = SB("\x00\x01", 2),
      .has_username = true,
      .username = S("alice"),
      .has_password = true,
      .password = SB(pw, sizeof(pw)),
  };
  connect_round_trip(&c);
}

Test(connect, round_trip_minimal_and_3_1) {
  mqttb_connect c = {.protocol_name = S("MQTT"), .level = 4, .client_id = S("")};
  connect_round_trip(&c);
  mqttb_connect c31 = {.protocol_name = S("MQIsdp"),
                       .level = 3,
                       .clean = true,
                       .keepalive = 30,
                       .client_id = S("x")};
  connect_round_trip(&c31);
  mqttb_connect user_only = {.protocol_name = S("MQTT"),
                             .level = 4,
                             .client_id = S("x"),
                             .has_username = true,
                             .username = S("")};
  connect_round_trip(&user_only);
}

Test(connect, round_trip_with_two_byte_remaining_length) {
  static char big[300];
  memset(big, 'p', sizeof(big));
  mqttb_connect c = {.protocol_name = S("MQTT"),
                     .level = 4,
                     .client_id = S("c"),
                     .will = true,
                     .will_topic = S("t"),
                     .will_payload = SB(big, sizeof(big))};
  size_t sz = mqttb_connect_size(&c);
  /* 10 + 3 + 3 + 2 + 300 = 318 remaining: varint 2 bytes. */
  cr_assert(eq(sz, sz, 1 + 2 + 318));
  connect_round_trip(&c);
}

Test(connect, encode_writes_spec_bytes) {
  static const uint8_t expect[] = {0x10, 0x0F, 0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04,
                                   0x02, 0x00, 0x3C, 0x00, 0x03, 'c', 'i', 'd'};
  mqttb_connect c = {.protocol_name = S("MQTT"),
                     .level = 4,
                     .clean = true,
                     .keepalive = 60,
                     .client_id = S("cid")};
  uint8_t out[64];
  cr_assert(eq(sz, mqttb_connect_size(&c), sizeof(expect)));
  size_t n = mqttb_encode_connect(out, &c);
  ASSERT_BYTES(out, n, expect);
}

Test(connect, encode_of_decoded_full_body_reproduces_it) {
  mqttb_connect c;
  uint8_t out[128];
  cr_assert(eq(int, mqttb_decode_connect(connect_full, sizeof(connect_full), &c), MQTTB_CODEC_OK));
  size_t n = mqttb_encode_connect(out, &c);
  cr_assert(eq(sz, n, 2 + sizeof(connect_full)));
  cr_assert(eq(u8, out[0], 0x10));
  cr_assert(eq(u8, out[1], (uint8_t)sizeof(connect_full)));
  cr_assert(eq(int, memcmp(out + 2, connect_full, sizeof(connect_full)), 0));
}

Test(connect, encode_derives_protocol_name_from_level_when_empty) {
  mqttb_connect c = {.level = 3, .client_id = S("a")};
  uint8_t out[64];
  size_t n = mqttb_encode_connect(out, &c);
  cr_assert(eq(sz, n, mqttb_connect_size(&c)));
  cr_assert(eq(int, memcmp(out + 2, "\x00\x06MQIsdp\x03", 9), 0));
  mqttb_connect c4 = {.level = 4, .client_id = S("a")};
  n = mqttb_encode_connect(out, &c4);
  cr_assert(eq(sz, n, mqttb_connect_size(&c4)));
  cr_assert(eq(int, memcmp(out + 2, "\x00\x04MQTT\x04", 7), 0));
}

Test(connect, encode_mirrors_flags_so_bad_packets_can_be_built) {
  /* Tests play misbehaving clients: a will QoS without the will flag must
   * reach the wire (and the decoder rejects it). */
  mqttb_connect c = {.protocol_name = S("MQTT"), .level = 4, .client_id = S("a"), .will_qos = 1};
  uint8_t out[64];
  size_t n = mqttb_encode_connect(out, &c);
  cr_assert(eq(u8, out[9], 0x08));
  mqttb_connect d;
  cr_assert(eq(int, mqttb_decode_connect(out + 2, n - 2, &d), MQTTB_CODEC_MALFORMED));
}

Test(connect, size_is_zero_when_a_string_is_too_long) {
  static uint8_t big[65536];
  mqttb_connect c = {.protocol_name = S("MQTT"), .level = 4, .client_id = SB(big, sizeof(big))};
  uint8_t out[4] = {0xAA, 0xAA, 0xAA, 0xAA};
  cr_assert(eq(sz, mqttb_connect_size(&c), 0));
  cr_assert(eq(sz, mqttb_encode_connect(out, &c), 0));
  cr_assert(eq(u8, out[0], 0xAA));
  c.client_id = SB(big, 65535);
  cr_assert(eq(sz, mqttb_connect_size(&c), 1 + 3 + 10 + 2 + 65535));
}

/* ---------------------------------------------------------------------- */
/* CONNACK [MQTT-3.2]                                                      */
/* ---------------------------------------------------------------------- */

Test(connack, encode_writes_spec_bytes) {
  static const uint8_t e1[] = {0x20, 0x02, 0x01, 0x00};
  static const uint8_t e2[] = {0x20, 0x02, 0x00, 0x05};
  uint8_t out[4];
  mqttb_connack a = {.session_present = true, .rc = 0};
  ASSERT_BYTES(out, mqttb_encode_connack(out, &a), e1);
  mqttb_connack b = {.session_present = false, .rc = 5};
  ASSERT_BYTES(out, mqttb_encode_connack(out, &b), e2);
}

Test(connack, decode_reads_session_present_and_code) {
  mqttb_connack a;
  cr_assert(eq(int, mqttb_decode_connack((const uint8_t *)"\x01\x00", 2, &a), MQTTB_CODEC_OK));
  cr_assert(a.session_present);
  cr_assert(eq(u8, a.rc, 0));
  cr_assert(eq(int, mqttb_decode_connack((const uint8_t *)"\x00\x04", 2, &a), MQTTB_CODEC_OK));
  cr_assert(not(a.session_present));
  cr_assert(eq(u8, a.rc, 4));
}

Test(connack, reserved_bits_of_ack_flags_must_be_zero) {
  /* [MQTT-3.2.2-1] bits 7-1 reserved */
  mqttb_connack a;
  for (int b = 2; b < 256; b++) {
    uint8_t body[2] = {(uint8_t)b, 0};
    cr_assert(eq(int, mqttb_decode_connack(body, 2, &a), MQTTB_CODEC_MALFORMED), "0x%02x", b);
  }
}

Test(connack, body_must_be_exactly_two_bytes) {
  static const uint8_t body[3] = {0, 0, 0};
  mqttb_connack a;
  cr_assert(eq(int, mqttb_decode_connack(NULL, 0, &a), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, mqttb_decode_connack(body, 1, &a), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, mqttb_decode_connack(body, 3, &a), MQTTB_CODEC_MALFORMED));
}

Test(connack, round_trip) {
  for (int sp = 0; sp <= 1; sp++) {
    for (int rc = 0; rc <= 5; rc++) {
      mqttb_connack in = {.session_present = sp, .rc = (uint8_t)rc}, out;
      uint8_t buf[MQTTB_CONNACK_SIZE];
      mqttb_frame f;
      cr_assert(eq(sz, mqttb_encode_connack(buf, &in), MQTTB_CONNACK_SIZE));
      const uint8_t *body = frame_whole(buf, sizeof(buf), &f);
      cr_assert(eq(u8, f.type, MQTTB_PKT_CONNACK));
      cr_assert(eq(int, mqttb_decode_connack(body, f.remaining, &out), MQTTB_CODEC_OK));
      cr_assert(eq(int, out.session_present, in.session_present));
      cr_assert(eq(u8, out.rc, in.rc));
    }
  }
}

/* ---------------------------------------------------------------------- */
/* PUBLISH [MQTT-3.3]                                                      */
/* ---------------------------------------------------------------------- */

Test(publish, decodes_qos0_without_packet_id) {
  static const uint8_t body[] = {0x00, 0x03, 'a', '/', 'b', 'h', 'i'};
  mqttb_publish p;
  cr_assert(eq(int, mqttb_decode_publish(0x00, body, sizeof(body), &p), MQTTB_CODEC_OK));
  cr_assert(eq(u8, p.qos, 0));
  cr_assert(not(p.dup));
  cr_assert(not(p.retain));
  cr_assert(slice_is_str(p.topic, "a/b"));
  cr_assert(eq(u16, p.packet_id, 0));
  cr_assert(slice_is_str(p.payload, "hi"));
}

Test(publish, decodes_qos1_with_packet_id_and_retain) {
  static const uint8_t body[] = {0x00, 0x01, 't', 0x12, 0x34, 0x00, 0xFF};
  mqttb_publish p;
  cr_assert(eq(int, mqttb_decode_publish(0x03, body, sizeof(body), &p), MQTTB_CODEC_OK));
  cr_assert(eq(u8, p.qos, 1));
  cr_assert(p.retain);
  cr_assert(not(p.dup));
  cr_assert(eq(u16, p.packet_id, 0x1234));
  cr_assert(slice_is(p.payload, "\x00\xFF", 2));
}

Test(publish, decodes_qos2_with_dup) {
  static const uint8_t body[] = {0x00, 0x01, 't', 0xFF, 0xFF};
  mqttb_publish p;
  cr_assert(eq(int, mqttb_decode_publish(0x0C, body, sizeof(body), &p), MQTTB_CODEC_OK));
  cr_assert(eq(u8, p.qos, 2));
  cr_assert(p.dup);
  cr_assert(not(p.retain));
  cr_assert(eq(u16, p.packet_id, 0xFFFF));
  cr_assert(eq(sz, p.payload.len, 0)); /* empty payload is allowed */
}

Test(publish, qos3_is_malformed) {
  /* [MQTT-3.3.1-4] */
  static const uint8_t body[] = {0x00, 0x01, 't', 0x00, 0x01};
  cr_assert(eq(int, publish_exact(0x06, body, sizeof(body)), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, publish_exact(0x07, body, sizeof(body)), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, publish_exact(0x0E, body, sizeof(body)), MQTTB_CODEC_MALFORMED));
}

Test(publish, dup_on_qos0_is_malformed) {
  /* [MQTT-3.3.1-2] */
  static const uint8_t body[] = {0x00, 0x01, 't'};
  cr_assert(eq(int, publish_exact(0x08, body, sizeof(body)), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, publish_exact(0x09, body, sizeof(body)), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, publish_exact(0x00, body, sizeof(body)), MQTTB_CODEC_OK));
}

Test(publish, packet_id_zero_is_malformed_for_qos1_and_qos2) {
  /* [MQTT-2.3.1-1] */
  static const uint8_t body[] = {0x00, 0x01, 't', 0x00, 0x00, 'x'};
  cr_assert(eq(int, publish_exact(0x02, body, sizeof(body)), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, publish_exact(0x04, body, sizeof(body)), MQTTB_CODEC_MALFORMED));
  /* The same bytes at QoS 0 are topic "t" and payload "\0\0x". */
  cr_assert(eq(int, publish_exact(0x00, body, sizeof(body)), MQTTB_CODEC_OK));
}

Test(publish, empty_topic_is_malformed) {
  /* [MQTT-4.7.3-1] */
  static const uint8_t body[] = {0x00, 0x00, 'x'};
  cr_assert(eq(int, publish_exact(0x00, body, sizeof(body)), MQTTB_CODEC_MALFORMED));
}

Test(publish, wildcard_in_topic_is_malformed) {
  /* [MQTT-3.3.2-2] */
  static const uint8_t plus[] = {0x00, 0x03, 'a', '/', '+'};
  static const uint8_t hash[] = {0x00, 0x01, '#'};
  static const uint8_t mid[] = {0x00, 0x03, 'a', '#', 'b'};
  cr_assert(eq(int, publish_exact(0x00, plus, sizeof(plus)), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, publish_exact(0x00, hash, sizeof(hash)), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, publish_exact(0x00, mid, sizeof(mid)), MQTTB_CODEC_MALFORMED));
}

Test(publish, topic_must_be_valid_utf8) {
  /* [MQTT-1.5.3-1], [MQTT-1.5.3-2] */
  static const uint8_t sur[] = {0x00, 0x03, 0xED, 0xA0, 0x80};
  static const uint8_t nul[] = {0x00, 0x02, 'a', 0x00};
  static const uint8_t ok[] = {0x00, 0x03, 0xE2, 0x82, 0xAC};
  cr_assert(eq(int, publish_exact(0x00, sur, sizeof(sur)), MQTTB_CODEC_BAD_UTF8));
  cr_assert(eq(int, publish_exact(0x00, nul, sizeof(nul)), MQTTB_CODEC_BAD_UTF8));
  cr_assert(eq(int, publish_exact(0x00, ok, sizeof(ok)), MQTTB_CODEC_OK));
}

Test(publish, payload_is_binary_and_not_checked) {
  static const uint8_t body[] = {0x00, 0x01, 't', 0x00, 0xC0, 0x80, 0xFF};
  mqttb_publish p;
  cr_assert(eq(int, mqttb_decode_publish(0x00, body, sizeof(body), &p), MQTTB_CODEC_OK));
  cr_assert(slice_is(p.payload, body + 3, 4));
}

Test(publish, truncated_body_is_malformed_until_header_complete) {
  /* QoS 1: topic "ab" and packet id take 6 bytes; any shorter prefix is
   * malformed, longer ones are valid with a shorter payload. */
  static const uint8_t body[] = {0x00, 0x02, 'a', 'b', 0x00, 0x07, 'x', 'y', 'z'};
  for (size_t n = 0; n < sizeof(body); n++) {
    mqttb_publish p;
    uint8_t *b = dup_exact(body, n);
    int rc = mqttb_decode_publish(0x02, b, n, &p);
    if (n < 6) {
      cr_assert(eq(int, rc, MQTTB_CODEC_MALFORMED), "length %zu", n);
    } else {
      cr_assert(eq(int, rc, MQTTB_CODEC_OK), "length %zu", n);
      cr_assert(eq(sz, p.payload.len, n - 6));
      cr_assert(eq(u16, p.packet_id, 7));
    }
    free(b);
  }
}

Test(publish, topic_length_past_end_is_malformed) {
  static const uint8_t body[] = {0x00, 0x05, 'a', 'b', 'c'};
  cr_assert(eq(int, publish_exact(0x00, body, sizeof(body)), MQTTB_CODEC_MALFORMED));
}

Test(publish, flags_outside_the_low_nibble_are_malformed) {
  static const uint8_t body[] = {0x00, 0x01, 't'};
  cr_assert(eq(int, publish_exact(0x30, body, sizeof(body)), MQTTB_CODEC_MALFORMED));
}

Test(publish, encode_writes_spec_bytes) {
  static const uint8_t expect[] = {0x32, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x01, 'x'};
  mqttb_publish p = {.qos = 1, .topic = S("a/b"), .packet_id = 1, .payload = S("x")};
  uint8_t out[32];
  cr_assert(eq(sz, mqttb_publish_size(&p), sizeof(expect)));
  ASSERT_BYTES(out, mqttb_encode_publish(out, &p), expect);

  static const uint8_t expect0[] = {0x31, 0x03, 0x00, 0x01, 't'};
  mqttb_publish p0 = {.retain = true, .topic = S("t")};
  cr_assert(eq(sz, mqttb_publish_size(&p0), sizeof(expect0)));
  ASSERT_BYTES(out, mqttb_encode_publish(out, &p0), expect0);

  static const uint8_t expect2[] = {0x3C, 0x05, 0x00, 0x01, 't', 0xAB, 0xCD};
  mqttb_publish p2 = {.dup = true, .qos = 2, .topic = S("t"), .packet_id = 0xABCD};
  ASSERT_BYTES(out, mqttb_encode_publish(out, &p2), expect2);
}

static void publish_round_trip(const mqttb_publish *in) {
  size_t sz = mqttb_publish_size(in);
  cr_assert(lt(sz, 0, sz));
  uint8_t *buf = malloc(sz);
  cr_assert(ne(ptr, buf, NULL));
  cr_assert(eq(sz, mqttb_encode_publish(buf, in), sz));
  mqttb_frame f;
  const uint8_t *body = frame_whole(buf, sz, &f);
  cr_assert(eq(u8, f.type, MQTTB_PKT_PUBLISH));
  mqttb_publish out;
  cr_assert(eq(int, mqttb_decode_publish(f.flags, body, f.remaining, &out), MQTTB_CODEC_OK));
  cr_assert(eq(int, out.dup, in->dup));
  cr_assert(eq(u8, out.qos, in->qos));
  cr_assert(eq(int, out.retain, in->retain));
  cr_assert(slice_is(out.topic, in->topic.ptr, in->topic.len));
  cr_assert(eq(u16, out.packet_id, in->packet_id));
  cr_assert(slice_is(out.payload, in->payload.ptr, in->payload.len));
  free(buf);
}

Test(publish, round_trip_each_qos) {
  mqttb_publish p0 = {.topic = S("a/b/c"), .payload = S("hello")};
  mqttb_publish p1 = {.qos = 1, .retain = true, .topic = S("x"), .packet_id = 42, .payload = S("")};
  mqttb_publish p2 = {.qos = 2,
                      .dup = true,
                      .topic = S("/\xC3\xA9/"),
                      .packet_id = 65535,
                      .payload = SB("\x00\x01\x02", 3)};
  publish_round_trip(&p0);
  publish_round_trip(&p1);
  publish_round_trip(&p2);
}

Test(publish, round_trip_across_varint_sizes) {
  /* Payload sizes that push the remaining length into 2, 3 and 4 bytes. */
  static const size_t sizes[] = {120, 121, 16000, 16378, 16379, 2097146, 2097147};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    uint8_t *pl = malloc(sizes[i]);
    cr_assert(ne(ptr, pl, NULL));
    for (size_t k = 0; k < sizes[i]; k++) {
      pl[k] = (uint8_t)(k * 31u);
    }
    mqttb_publish p = {.qos = 1, .topic = S("t"), .packet_id = 9, .payload = SB(pl, sizes[i])};
    size_t rem = 2 + 1 + 2 + sizes[i];
    cr_assert(eq(sz, mqttb_publish_size(&p), 1 + mqttb_codec_varint_size((uint32_t)rem) + rem));
    publish_round_trip(&p);
    free(pl);
  }
}

Test(publish, size_is_zero_when_topic_too_long) {
  static uint8_t big[65536];
  mqttb_publish p = {.topic = SB(big, sizeof(big))};
  uint8_t out[2] = {0xAA, 0xAA};
  cr_assert(eq(sz, mqttb_publish_size(&p), 0));
  cr_assert(eq(sz, mqttb_encode_publish(out, &p), 0));
  cr_assert(eq(u8, out[0], 0xAA));
}

Test(publish, size_is_zero_when_remaining_exceeds_protocol_max) {
  /* The payload pointer is never read because the size check fails first. */
  mqttb_publish p = {.topic = S("t"), .payload = {.ptr = (const uint8_t *)"", .len = 268435455}};
  cr_assert(eq(sz, mqttb_publish_size(&p), 0));
  p.payload.len = 268435455 - 3;
  cr_assert(eq(sz, mqttb_publish_size(&p), 1 + 4 + 268435455u));
}

/* ---------------------------------------------------------------------- */
/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK                               */
/* ---------------------------------------------------------------------- */

Test(ack, encode_writes_type_flags_and_id) {
  static const struct {
    uint8_t type;
    uint8_t first;
  } t[] = {
      {MQTTB_PKT_PUBACK, 0x40},  {MQTTB_PKT_PUBREC, 0x50},   {MQTTB_PKT_PUBREL, 0x62},
      {MQTTB_PKT_PUBCOMP, 0x70}, {MQTTB_PKT_UNSUBACK, 0xB0},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    uint8_t out[4];
    uint8_t expect[4] = {t[i].first, 0x02, 0xBE, 0xEF};
    ASSERT_BYTES(out, mqttb_encode_ack(out, t[i].type, 0xBEEF), expect);
  }
}

Test(ack, encode_rejects_other_types) {
  uint8_t out[4] = {0xAA, 0xAA, 0xAA, 0xAA};
  cr_assert(eq(sz, mqttb_encode_ack(out, MQTTB_PKT_PUBLISH, 1), 0));
  cr_assert(eq(sz, mqttb_encode_ack(out, MQTTB_PKT_SUBACK, 1), 0));
  cr_assert(eq(sz, mqttb_encode_ack(out, 0, 1), 0));
  cr_assert(eq(u8, out[0], 0xAA));
}

Test(ack, decode_reads_big_endian_id) {
  uint16_t id = 0;
  cr_assert(eq(int, mqttb_decode_ack((const uint8_t *)"\x00\x01", 2, &id), MQTTB_CODEC_OK));
  cr_assert(eq(u16, id, 1));
  cr_assert(eq(int, mqttb_decode_ack((const uint8_t *)"\x12\x34", 2, &id), MQTTB_CODEC_OK));
  cr_assert(eq(u16, id, 0x1234));
  cr_assert(eq(int, mqttb_decode_ack((const uint8_t *)"\xFF\xFF", 2, &id), MQTTB_CODEC_OK));
  cr_assert(eq(u16, id, 0xFFFF));
}

Test(ack, packet_id_zero_is_malformed) {
  /* [MQTT-2.3.1-1] */
  uint16_t id = 77;
  cr_assert(eq(int, mqttb_decode_ack((const uint8_t *)"\x00\x00", 2, &id), MQTTB_CODEC_MALFORMED));
}

Test(ack, length_other_than_two_is_malformed) {
  static const uint8_t body[4] = {0x00, 0x01, 0x00, 0x00};
  uint16_t id;
  cr_assert(eq(int, mqttb_decode_ack(NULL, 0, &id), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, mqttb_decode_ack(body, 1, &id), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, mqttb_decode_ack(body, 3, &id), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, mqttb_decode_ack(body, 4, &id), MQTTB_CODEC_MALFORMED));
}

Test(ack, round_trip_every_ack_type) {
  static const uint8_t types[] = {MQTTB_PKT_PUBACK, MQTTB_PKT_PUBREC, MQTTB_PKT_PUBREL,
                                  MQTTB_PKT_PUBCOMP, MQTTB_PKT_UNSUBACK};
  static const uint16_t ids[] = {1, 255, 256, 0x8000, 65535};
  for (size_t i = 0; i < sizeof(types); i++) {
    for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
      uint8_t buf[MQTTB_ACK_SIZE];
      mqttb_frame f;
      uint16_t id = 0;
      cr_assert(eq(sz, mqttb_encode_ack(buf, types[i], ids[k]), MQTTB_ACK_SIZE));
      const uint8_t *body = frame_whole(buf, sizeof(buf), &f);
      cr_assert(eq(u8, f.type, types[i]));
      cr_assert(eq(int, mqttb_decode_ack(body, f.remaining, &id), MQTTB_CODEC_OK));
      cr_assert(eq(u16, id, ids[k]));
    }
  }
}

/* ---------------------------------------------------------------------- */
/* SUBSCRIBE [MQTT-3.8]                                                    */
/* ---------------------------------------------------------------------- */

/* pid 10; "a/b" QoS 0; "c/#" QoS 1; "+" QoS 2 */
static const uint8_t sub_body[] = {
    0x00, 0x0A,                       /* packet id */
    0x00, 0x03, 'a', '/',  'b', 0x00, /* entry 1 ends at 8 */
    0x00, 0x03, 'c', '/',  '#', 0x01, /* entry 2 ends at 14 */
    0x00, 0x01, '+', 0x02,            /* entry 3 ends at 18 */
};

Test(subscribe, decodes_and_iterates_entries) {
  mqttb_subscribe s;
  cr_assert(eq(int, mqttb_decode_subscribe(sub_body, sizeof(sub_body), &s), MQTTB_CODEC_OK));
  cr_assert(eq(u16, s.packet_id, 10));
  cr_assert(eq(sz, s.count, 3));
  cr_assert(eq(ptr, (void *)s.entries.ptr, (void *)(sub_body + 2)));
  cr_assert(eq(sz, s.entries.len, sizeof(sub_body) - 2));

  static const char *filters[] = {"a/b", "c/#", "+"};
  size_t pos = 0, n = 0;
  mqttb_slice f;
  uint8_t o = 0xFF;
  while (mqttb_subscribe_next(&s.entries, &pos, &f, &o)) {
    cr_assert(lt(sz, n, 3));
    cr_assert(slice_is_str(f, filters[n]));
    cr_assert(eq(u8, o, (uint8_t)n));
    n++;
  }
  cr_assert(eq(sz, n, 3));
  cr_assert(eq(sz, pos, s.entries.len));
  cr_assert(not(mqttb_subscribe_next(&s.entries, &pos, &f, &o)));
}

Test(subscribe, packet_id_zero_is_malformed) {
  /* [MQTT-2.3.1-1] */
  uint8_t body[sizeof(sub_body)];
  memcpy(body, sub_body, sizeof(body));
  body[1] = 0;
  cr_assert(eq(int, subscribe_exact(body, sizeof(body), NULL), MQTTB_CODEC_MALFORMED));
}

Test(subscribe, no_entries_is_malformed) {
  /* [MQTT-3.8.3-3] */
  cr_assert(eq(int, subscribe_exact(sub_body, 2, NULL), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, subscribe_exact(sub_body, 1, NULL), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, subscribe_exact(NULL, 0, NULL), MQTTB_CODEC_MALFORMED));
}

Test(subscribe, reserved_option_bits_must_be_zero) {
  /* [MQTT-3.8.3-4] */
  for (int bit = 2; bit < 8; bit++) {
    uint8_t body[] = {0x00, 0x01, 0x00, 0x01, 'a', (uint8_t)(1u << bit)};
    cr_assert(eq(int, subscribe_exact(body, sizeof(body), NULL), MQTTB_CODEC_MALFORMED), "bit %d",
              bit);
  }
}

Test(subscribe, requested_qos_3_is_malformed) {
  /* [MQTT-3.8.3-4] */
  uint8_t body[] = {0x00, 0x01, 0x00, 0x01, 'a', 0x03};
  cr_assert(eq(int, subscribe_exact(body, sizeof(body), NULL), MQTTB_CODEC_MALFORMED));
  for (uint8_t q = 0; q <= 2; q++) {
    body[5] = q;
    cr_assert(eq(int, subscribe_exact(body, sizeof(body), NULL), MQTTB_CODEC_OK), "qos %u", q);
  }
}

Test(subscribe, invalid_filter_is_malformed) {
  /* [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1] */
  static const char *bad[] = {"a#", "a/#/b", "a+", "#/a", ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    wbuf w = {.n = 0};
    w16(&w, 1);
    wstr(&w, "ok/+");
    w8(&w, 0);
    wstr(&w, bad[i]);
    w8(&w, 1);
    cr_assert(eq(int, subscribe_exact(w.b, w.n, NULL), MQTTB_CODEC_MALFORMED), "%s", bad[i]);
  }
}

Test(subscribe, filter_must_be_valid_utf8) {
  uint8_t body[] = {0x00, 0x01, 0x00, 0x02, 0xC0, 0x80, 0x00};
  cr_assert(eq(int, subscribe_exact(body, sizeof(body), NULL), MQTTB_CODEC_BAD_UTF8));
  uint8_t nul[] = {0x00, 0x01, 0x00, 0x01, 0x00, 0x00};
  cr_assert(eq(int, subscribe_exact(nul, sizeof(nul), NULL), MQTTB_CODEC_BAD_UTF8));
}

Test(subscribe, truncated_only_valid_at_entry_boundaries) {
  for (size_t n = 0; n <= sizeof(sub_body); n++) {
    size_t count = 99;
    int rc = subscribe_exact(sub_body, n, &count);
    size_t expect_count = n == 8 ? 1 : n == 14 ? 2 : n == 18 ? 3 : 0;
    if (expect_count) {
      cr_assert(eq(int, rc, MQTTB_CODEC_OK), "length %zu", n);
      cr_assert(eq(sz, count, expect_count), "length %zu", n);
    } else {
      cr_assert(eq(int, rc, MQTTB_CODEC_MALFORMED), "length %zu", n);
    }
  }
}

Test(subscribe, missing_options_byte_is_malformed) {
  static const uint8_t body[] = {0x00, 0x01, 0x00, 0x01, 'a'};
  cr_assert(eq(int, subscribe_exact(body, sizeof(body), NULL), MQTTB_CODEC_MALFORMED));
}

Test(subscribe, encode_writes_spec_bytes) {
  static const uint8_t expect[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x01};
  mqttb_slice f[] = {S("a")};
  uint8_t opts[] = {1};
  uint8_t out[16];
  cr_assert(eq(sz, mqttb_subscribe_size(f, 1), sizeof(expect)));
  ASSERT_BYTES(out, mqttb_encode_subscribe(out, 1, f, opts, 1), expect);
}

Test(subscribe, encode_with_null_options_requests_qos0) {
  static const uint8_t expect[] = {0x82, 0x0A, 0x00, 0x05, 0x00, 0x01,
                                   'a',  0x00, 0x00, 0x01, 'b',  0x00};
  mqttb_slice f[] = {S("a"), S("b")};
  uint8_t out[16];
  ASSERT_BYTES(out, mqttb_encode_subscribe(out, 5, f, NULL, 2), expect);
}

Test(subscribe, round_trip) {
  mqttb_slice f[] = {S("sport/tennis/+"), S("#"), S("/"), S("\xE2\x82\xAC/x")};
  uint8_t opts[] = {0, 1, 2, 1};
  size_t n = sizeof(f) / sizeof(f[0]);
  size_t sz = mqttb_subscribe_size(f, n);
  uint8_t *buf = malloc(sz);
  cr_assert(eq(sz, mqttb_encode_subscribe(buf, 0x0102, f, opts, n), sz));
  mqttb_frame fr;
  const uint8_t *body = frame_whole(buf, sz, &fr);
  cr_assert(eq(u8, fr.type, MQTTB_PKT_SUBSCRIBE));
  cr_assert(eq(u8, fr.flags, 0x2));
  mqttb_subscribe s;
  cr_assert(eq(int, mqttb_decode_subscribe(body, fr.remaining, &s), MQTTB_CODEC_OK));
  cr_assert(eq(u16, s.packet_id, 0x0102));
  cr_assert(eq(sz, s.count, n));
  size_t pos = 0, i = 0;
  mqttb_slice got;
  uint8_t o;
  while (mqttb_subscribe_next(&s.entries, &pos, &got, &o)) {
    cr_assert(slice_is(got, f[i].ptr, f[i].len));
    cr_assert(eq(u8, o, opts[i]));
    i++;
  }
  cr_assert(eq(sz, i, n));
  free(buf);
}

Test(subscribe, iterator_stops_safely_on_truncated_entries) {
  /* The iterator is meant for validated entries but must not overrun. */
  static const uint8_t e[] = {0x00, 0x01, 'a', 0x01, 0x00, 0x05, 'b', 'c'};
  uint8_t *p = dup_exact(e, sizeof(e));
  mqttb_slice entries = {p, sizeof(e)};
  size_t pos = 0;
  mqttb_slice f;
  uint8_t o;
  cr_assert(mqttb_subscribe_next(&entries, &pos, &f, &o));
  cr_assert(eq(sz, pos, 4));
  cr_assert(not(mqttb_subscribe_next(&entries, &pos, &f, &o)));
  cr_assert(eq(sz, pos, 4)); /* not advanced on failure */
  entries.len = 3;           /* filter present, options byte missing */
  pos = 0;
  cr_assert(not(mqttb_subscribe_next(&entries, &pos, &f, &o)));
  free(p);
}

/* ---------------------------------------------------------------------- */
/* SUBACK [MQTT-3.9]                                                       */
/* ---------------------------------------------------------------------- */

Test(suback, size_and_spec_bytes) {
  static const uint8_t expect[] = {0x90, 0x06, 0x00, 0x07, 0x00, 0x01, 0x02, 0x80};
  static const uint8_t codes[] = {0x00, 0x01, 0x02, 0x80};
  uint8_t out[16];
  cr_assert(eq(sz, mqttb_suback_size(4), sizeof(expect)));
  cr_assert(eq(sz, mqttb_suback_size(1), 5));
  cr_assert(eq(sz, mqttb_suback_size(200), 1 + 2 + 202));
  ASSERT_BYTES(out, mqttb_encode_suback(out, 7, codes, 4), expect);
}

Test(suback, decode_points_codes_into_body) {
  static const uint8_t body[] = {0x01, 0x02, 0x00, 0x80, 0x02, 0x01};
  uint16_t id = 0;
  mqttb_slice codes;
  cr_assert(eq(int, mqttb_decode_suback(body, sizeof(body), &id, &codes), MQTTB_CODEC_OK));
  cr_assert(eq(u16, id, 0x0102));
  cr_assert(eq(ptr, (void *)codes.ptr, (void *)(body + 2)));
  cr_assert(eq(sz, codes.len, 4));
}

Test(suback, return_codes_other_than_0_1_2_0x80_are_malformed) {
  /* [MQTT-3.9.3-2] */
  for (int code = 0; code < 256; code++) {
    uint8_t body[] = {0x00, 0x01, 0x00, (uint8_t)code};
    uint16_t id;
    mqttb_slice codes;
    int expect = (code <= 2 || code == 0x80) ? MQTTB_CODEC_OK : MQTTB_CODEC_MALFORMED;
    cr_assert(eq(int, mqttb_decode_suback(body, sizeof(body), &id, &codes), expect), "0x%02x",
              code);
  }
}

Test(suback, needs_packet_id_and_at_least_one_code) {
  static const uint8_t body[] = {0x00, 0x01, 0x00};
  static const uint8_t zero_id[] = {0x00, 0x00, 0x00};
  uint16_t id;
  mqttb_slice codes;
  cr_assert(eq(int, mqttb_decode_suback(NULL, 0, &id, &codes), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, mqttb_decode_suback(body, 1, &id, &codes), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, mqttb_decode_suback(body, 2, &id, &codes), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, mqttb_decode_suback(body, 3, &id, &codes), MQTTB_CODEC_OK));
  cr_assert(eq(int, mqttb_decode_suback(zero_id, 3, &id, &codes), MQTTB_CODEC_MALFORMED));
}

Test(suback, round_trip_with_many_codes) {
  uint8_t codes[300];
  for (size_t i = 0; i < sizeof(codes); i++) {
    static const uint8_t v[] = {0, 1, 2, 0x80};
    codes[i] = v[i % 4];
  }
  size_t sz = mqttb_suback_size(sizeof(codes));
  uint8_t *buf = malloc(sz);
  cr_assert(eq(sz, mqttb_encode_suback(buf, 65535, codes, sizeof(codes)), sz));
  mqttb_frame f;
  const uint8_t *body = frame_whole(buf, sz, &f);
  cr_assert(eq(u8, f.type, MQTTB_PKT_SUBACK));
  cr_assert(eq(u32, f.hdr_len, 3));
  uint16_t id;
  mqttb_slice got;
  cr_assert(eq(int, mqttb_decode_suback(body, f.remaining, &id, &got), MQTTB_CODEC_OK));
  cr_assert(eq(u16, id, 65535));
  cr_assert(slice_is(got, codes, sizeof(codes)));
  free(buf);
}

/* ---------------------------------------------------------------------- */
/* UNSUBSCRIBE [MQTT-3.10]                                                 */
/* ---------------------------------------------------------------------- */

static const uint8_t unsub_body[] = {
    0x00, 0x02,                /* packet id */
    0x00, 0x03, 'a', '/', '+', /* ends at 7 */
    0x00, 0x01, '#',           /* ends at 10 */
};

Test(unsubscribe, decodes_and_iterates_filters) {
  mqttb_unsubscribe u;
  cr_assert(eq(int, mqttb_decode_unsubscribe(unsub_body, sizeof(unsub_body), &u), MQTTB_CODEC_OK));
  cr_assert(eq(u16, u.packet_id, 2));
  cr_assert(eq(sz, u.count, 2));
  size_t pos = 0;
  mqttb_slice f;
  cr_assert(mqttb_unsubscribe_next(&u.entries, &pos, &f));
  cr_assert(slice_is_str(f, "a/+"));
  cr_assert(mqttb_unsubscribe_next(&u.entries, &pos, &f));
  cr_assert(slice_is_str(f, "#"));
  cr_assert(not(mqttb_unsubscribe_next(&u.entries, &pos, &f)));
}

Test(unsubscribe, packet_id_zero_and_no_filters_are_malformed) {
  /* [MQTT-2.3.1-1], [MQTT-3.10.3-2] */
  uint8_t body[sizeof(unsub_body)];
  memcpy(body, unsub_body, sizeof(body));
  body[1] = 0;
  cr_assert(eq(int, unsubscribe_exact(body, sizeof(body), NULL), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, unsubscribe_exact(unsub_body, 2, NULL), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, unsubscribe_exact(NULL, 0, NULL), MQTTB_CODEC_MALFORMED));
}

Test(unsubscribe, invalid_filters_are_rejected) {
  static const uint8_t bad_filter[] = {0x00, 0x01, 0x00, 0x02, 'a', '#'};
  static const uint8_t empty_filter[] = {0x00, 0x01, 0x00, 0x00};
  static const uint8_t bad_utf8[] = {0x00, 0x01, 0x00, 0x01, 0x80};
  cr_assert(
      eq(int, unsubscribe_exact(bad_filter, sizeof(bad_filter), NULL), MQTTB_CODEC_MALFORMED));
  cr_assert(
      eq(int, unsubscribe_exact(empty_filter, sizeof(empty_filter), NULL), MQTTB_CODEC_MALFORMED));
  cr_assert(eq(int, unsubscribe_exact(bad_utf8, sizeof(bad_utf8), NULL), MQTTB_CODEC_BAD_UTF8));
}

Test(unsubscribe, truncated_only_valid_at_entry_boundaries) {
  for (size_t n = 0; n <= sizeof(unsub_body); n++) {
    size_t count = 99;
    int rc = unsubscribe_exact(unsub_body, n, &count);
    size_t expect_count = n == 7 ? 1 : n == 10 ? 2 : 0;
    if (expect_count) {
      cr_assert(eq(int, rc, MQTTB_CODEC_OK), "length %zu", n);
      cr_assert(eq(sz, count, expect_count));
    } else {
      cr_assert(eq(int, rc, MQTTB_CODEC_MALFORMED), "length %zu", n);
    }
  }
}

Test(unsubscribe, options_byte_is_not_expected) {
  /* A SUBSCRIBE-style entry is a trailing byte (a truncated length). */
  static const uint8_t body[] = {0x00, 0x01, 0x00, 0x01, 'a', 0x01};
  cr_assert(eq(int, unsubscribe_exact(body, sizeof(body), NULL), MQTTB_CODEC_MALFORMED));
}

Test(unsubscribe, encode_writes_spec_bytes) {
  static const uint8_t expect[] = {0xA2, 0x05, 0x00, 0x02, 0x00, 0x01, 'a'};
  mqttb_slice f[] = {S("a")};
  uint8_t out[16];
  cr_assert(eq(sz, mqttb_unsubscribe_size(f, 1), sizeof(expect)));
  ASSERT_BYTES(out, mqttb_encode_unsubscribe(out, 2, f, 1), expect);
}

Test(unsubscribe, round_trip) {
  mqttb_slice f[] = {S("a/b"), S("+/+/#"), S("//")};
  size_t n = 3;
  size_t sz = mqttb_unsubscribe_size(f, n);
  uint8_t *buf = malloc(sz);
  cr_assert(eq(sz, mqttb_encode_unsubscribe(buf, 300, f, n), sz));
  mqttb_frame fr;
  const uint8_t *body = frame_whole(buf, sz, &fr);
  cr_assert(eq(u8, fr.type, MQTTB_PKT_UNSUBSCRIBE));
  cr_assert(eq(u8, fr.flags, 0x2));
  mqttb_unsubscribe u;
  cr_assert(eq(int, mqttb_decode_unsubscribe(body, fr.remaining, &u), MQTTB_CODEC_OK));
  cr_assert(eq(u16, u.packet_id, 300));
  cr_assert(eq(sz, u.count, n));
  size_t pos = 0, i = 0;
  mqttb_slice got;
  while (mqttb_unsubscribe_next(&u.entries, &pos, &got)) {
    cr_assert(slice_is(got, f[i].ptr, f[i].len));
    i++;
  }
  cr_assert(eq(sz, i, n));
  free(buf);
}

/* ---------------------------------------------------------------------- */
/* PINGREQ, PINGRESP, DISCONNECT                                           */
/* ---------------------------------------------------------------------- */

Test(empty, encode_writes_type_and_zero_length) {
  static const uint8_t ping[] = {0xC0, 0x00};
  static const uint8_t pong[] = {0xD0, 0x00};
  static const uint8_t disc[] = {0xE0, 0x00};
  uint8_t out[2];
  ASSERT_BYTES(out, mqttb_encode_empty(out, MQTTB_PKT_PINGREQ), ping);
  ASSERT_BYTES(out, mqttb_encode_empty(out, MQTTB_PKT_PINGRESP), pong);
  ASSERT_BYTES(out, mqttb_encode_empty(out, MQTTB_PKT_DISCONNECT), disc);
}

Test(empty, encoded_packets_frame_with_valid_flags) {
  static const uint8_t types[] = {MQTTB_PKT_PINGREQ, MQTTB_PKT_PINGRESP, MQTTB_PKT_DISCONNECT};
  for (size_t i = 0; i < sizeof(types); i++) {
    uint8_t out[MQTTB_EMPTY_SIZE];
    mqttb_frame f;
    cr_assert(eq(sz, mqttb_encode_empty(out, types[i]), MQTTB_EMPTY_SIZE));
    frame_whole(out, sizeof(out), &f);
    cr_assert(eq(u8, f.type, types[i]));
    cr_assert(eq(u32, f.remaining, 0));
  }
}

Test(empty, encode_rejects_types_with_a_body) {
  uint8_t out[2] = {0xAA, 0xAA};
  cr_assert(eq(sz, mqttb_encode_empty(out, MQTTB_PKT_CONNECT), 0));
  cr_assert(eq(sz, mqttb_encode_empty(out, MQTTB_PKT_PUBACK), 0));
  cr_assert(eq(sz, mqttb_encode_empty(out, 0), 0));
  cr_assert(eq(u8, out[0], 0xAA));
}

/* ---------------------------------------------------------------------- */
/* mutation robustness: decoders never overrun, and whatever they accept   */
/* re-encodes to the same bytes                                            */
/* ---------------------------------------------------------------------- */

static uint32_t xorshift(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *s = x;
  return x;
}

static bool known_rc(int rc) {
  return rc == MQTTB_CODEC_OK || rc == MQTTB_CODEC_MALFORMED || rc == MQTTB_CODEC_BAD_UTF8 ||
         rc == MQTTB_CODEC_BAD_PROTOCOL;
}

static void mutate(uint8_t *b, size_t *n, size_t cap, uint32_t *seed) {
  uint32_t r = xorshift(seed);
  size_t at = *n ? r % *n : 0;
  switch ((r >> 16) % 4) {
  case 0:
    if (*n) {
      b[at] = (uint8_t)xorshift(seed);
    }
    break;
  case 1:
    if (*n) {
      b[at] ^= (uint8_t)(1u << ((r >> 8) % 8));
    }
    break;
  case 2:
    *n = at; /* truncate */
    break;
  default:
    if (*n < cap) {
      b[(*n)++] = (uint8_t)(r >> 24); /* append */
    }
    break;
  }
}

Test(robustness, mutated_connect_rejects_or_round_trips) {
  uint32_t seed = 0x12345678;
  size_t accepted = 0;
  for (int iter = 0; iter < 20000; iter++) {
    uint8_t b[64];
    size_t n = sizeof(connect_full);
    memcpy(b, connect_full, n);
    int muts = 1 + (int)(xorshift(&seed) % 3);
    for (int m = 0; m < muts; m++) {
      mutate(b, &n, sizeof(b), &seed);
    }
    uint8_t *p = dup_exact(b, n);
    mqttb_connect c;
    int rc = mqttb_decode_connect(p, n, &c);
    cr_assert(known_rc(rc), "rc %d", rc);
    if (rc == MQTTB_CODEC_OK) {
      uint8_t out[80];
      accepted++;
      cr_assert(le(sz, mqttb_connect_size(&c), sizeof(out)));
      size_t k = mqttb_encode_connect(out, &c);
      cr_assert(eq(sz, k, 2 + n));
      cr_assert(eq(int, memcmp(out + 2, b, n), 0), "re-encode differs at iter %d", iter);
    }
    free(p);
  }
  cr_assert(lt(sz, 0, accepted));
}

Test(robustness, mutated_publish_rejects_or_round_trips) {
  static const uint8_t base[] = {0x00, 0x03, 'a', '/', 'b', 0x00, 0x05, 'p', 'a', 'y'};
  uint32_t seed = 0xCAFEF00D;
  size_t accepted = 0;
  for (int iter = 0; iter < 20000; iter++) {
    uint8_t b[32];
    size_t n = sizeof(base);
    memcpy(b, base, n);
    uint8_t flags = (uint8_t)(xorshift(&seed) & 0x0F);
    mutate(b, &n, sizeof(b), &seed);
    uint8_t *p = dup_exact(b, n);
    mqttb_publish pub;
    int rc = mqttb_decode_publish(flags, p, n, &pub);
    cr_assert(known_rc(rc) && rc != MQTTB_CODEC_BAD_PROTOCOL, "rc %d", rc);
    if (rc == MQTTB_CODEC_OK) {
      uint8_t out[40];
      accepted++;
      size_t k = mqttb_encode_publish(out, &pub);
      cr_assert(eq(sz, k, 2 + n));
      cr_assert(eq(u8, out[0], (uint8_t)(0x30 | flags)));
      cr_assert(eq(int, memcmp(out + 2, b, n), 0));
    }
    free(p);
  }
  cr_assert(lt(sz, 0, accepted));
}

Test(robustness, mutated_subscribe_rejects_or_iterates_exactly) {
  uint32_t seed = 0xBADC0DE;
  size_t accepted = 0;
  for (int iter = 0; iter < 20000; iter++) {
    uint8_t b[32];
    size_t n = sizeof(sub_body);
    memcpy(b, sub_body, n);
    mutate(b, &n, sizeof(b), &seed);
    uint8_t *p = dup_exact(b, n);
    mqttb_subscribe s;
    int rc = mqttb_decode_subscribe(p, n, &s);
    cr_assert(rc == MQTTB_CODEC_OK || rc == MQTTB_CODEC_MALFORMED || rc == MQTTB_CODEC_BAD_UTF8);
    if (rc == MQTTB_CODEC_OK) {
      size_t pos = 0, cnt = 0;
      mqttb_slice f;
      uint8_t o;
      accepted++;
      while (mqttb_subscribe_next(&s.entries, &pos, &f, &o)) {
        cr_assert(mqttb_topic_filter_valid(f.ptr, f.len));
        cr_assert(le(u8, o, 2));
        cnt++;
      }
      cr_assert(eq(sz, cnt, s.count));
      cr_assert(eq(sz, pos, s.entries.len));
    }
    free(p);
  }
  cr_assert(lt(sz, 0, accepted));
}

Test(robustness, random_frames_never_overrun) {
  uint32_t seed = 42;
  for (int iter = 0; iter < 20000; iter++) {
    uint8_t b[6];
    size_t n = xorshift(&seed) % 7;
    for (size_t i = 0; i < n; i++) {
      b[i] = (uint8_t)xorshift(&seed);
    }
    uint8_t *p = dup_exact(b, n);
    mqttb_frame f;
    int rc = mqttb_codec_frame(p, n, 1000, &f);
    cr_assert(rc == MQTTB_CODEC_OK || rc == MQTTB_CODEC_INCOMPLETE || rc == MQTTB_CODEC_MALFORMED ||
              rc == MQTTB_CODEC_TOO_LARGE);
    if (rc == MQTTB_CODEC_OK) {
      cr_assert(le(u32, f.hdr_len, (uint32_t)n));
      cr_assert(le(u32, f.hdr_len + f.remaining, 1000));
    }
    free(p);
  }
}

Test(connect, password_without_username_is_allowed_in_mqtt5) {
  /* MQTT 5 (3.1.2.9) dropped [MQTT-3.1.2-22]: a password may come alone. */
  wbuf w = {.n = 0};
  mqttb_connect c;
  wstr(&w, "MQTT");
  w8(&w, 5);
  w8(&w, 0x42);
  w16(&w, 10);
  w8(&w, 0); /* no properties */
  wstr(&w, "abc");
  wstr(&w, "pw");
  cr_assert(eq(int, connect_exact(w.b, w.n, &c), MQTTB_CODEC_OK));
  cr_assert(c.has_password && !c.has_username);
  cr_assert(eq(sz, c.password.len, 2));
}
