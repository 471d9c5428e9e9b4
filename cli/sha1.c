/*
 * mqttb CLI: SHA-1, written from FIPS 180-4; see sha1.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include "sha1.h"

#include <string.h>

static uint32_t rotl(uint32_t x, unsigned n) {
  return (x << n) | (x >> (32u - n));
}

static uint32_t load_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* FIPS 180-4, 6.1.2: one 512-bit block into the hash state. */
static void compress(uint32_t h[5], const uint8_t block[MQTTB_SHA1_BLOCK_LEN]) {
  uint32_t w[80];
  for (unsigned t = 0; t < 16; t++) {
    w[t] = load_be32(block + 4 * t);
  }
  for (unsigned t = 16; t < 80; t++) {
    w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (unsigned t = 0; t < 80; t++) {
    /* 4.1.1 and 4.2.1: the function and constant of each group of 20. */
    uint32_t f, k;
    if (t < 20) {
      f = (b & c) ^ (~b & d);
      k = 0x5a827999u;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1u;
    } else if (t < 60) {
      f = (b & c) ^ (b & d) ^ (c & d);
      k = 0x8f1bbcdcu;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6u;
    }
    uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = tmp;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

void mqttb_sha1_init(mqttb_sha1_ctx *ctx) {
  /* FIPS 180-4, 5.3.1. */
  static const uint32_t iv[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
  memcpy(ctx->h, iv, sizeof iv);
  ctx->total = 0;
  ctx->buf_len = 0;
}

void mqttb_sha1_update(mqttb_sha1_ctx *ctx, const void *data, size_t len) {
  const uint8_t *p = data;
  ctx->total += (uint64_t)len;
  if (ctx->buf_len > 0) {
    size_t take = MQTTB_SHA1_BLOCK_LEN - ctx->buf_len;
    if (take > len) {
      take = len;
    }
    memcpy(ctx->buf + ctx->buf_len, p, take);
    ctx->buf_len += take;
    p += take;
    len -= take;
    if (ctx->buf_len < MQTTB_SHA1_BLOCK_LEN) {
      return;
    }
    compress(ctx->h, ctx->buf);
    ctx->buf_len = 0;
  }
  while (len >= MQTTB_SHA1_BLOCK_LEN) {
    compress(ctx->h, p);
    p += MQTTB_SHA1_BLOCK_LEN;
    len -= MQTTB_SHA1_BLOCK_LEN;
  }
  if (len > 0) {
    memcpy(ctx->buf, p, len);
    ctx->buf_len = len;
  }
}

void mqttb_sha1_final(mqttb_sha1_ctx *ctx, uint8_t out[MQTTB_SHA1_DIGEST_LEN]) {
  /* FIPS 180-4, 5.1.1: a 1 bit, zeros, then the length in bits as a 64-bit
   * big-endian number. */
  uint64_t bits = ctx->total << 3;
  ctx->buf[ctx->buf_len++] = 0x80;
  if (ctx->buf_len > MQTTB_SHA1_BLOCK_LEN - 8) {
    memset(ctx->buf + ctx->buf_len, 0, MQTTB_SHA1_BLOCK_LEN - ctx->buf_len);
    compress(ctx->h, ctx->buf);
    ctx->buf_len = 0;
  }
  memset(ctx->buf + ctx->buf_len, 0, MQTTB_SHA1_BLOCK_LEN - 8 - ctx->buf_len);
  store_be32(ctx->buf + MQTTB_SHA1_BLOCK_LEN - 8, (uint32_t)(bits >> 32));
  store_be32(ctx->buf + MQTTB_SHA1_BLOCK_LEN - 4, (uint32_t)bits);
  compress(ctx->h, ctx->buf);
  for (unsigned i = 0; i < 5; i++) {
    store_be32(out + 4 * i, ctx->h[i]);
  }
  memset(ctx, 0, sizeof *ctx);
}

void mqttb_sha1(const void *data, size_t len, uint8_t out[MQTTB_SHA1_DIGEST_LEN]) {
  mqttb_sha1_ctx ctx;
  mqttb_sha1_init(&ctx);
  mqttb_sha1_update(&ctx, data, len);
  mqttb_sha1_final(&ctx, out);
}
