/*
 * mqttb CLI: SHA-512 (FIPS 180-4), HMAC-SHA-512 (RFC 2104), PBKDF2 (RFC 8018)
 * and base64 (RFC 4648). Written from the specifications; see sha512.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include "sha512.h"

#include <string.h>

/* FIPS 180-4, 4.2.3: the first 64 bits of the fractional parts of the cube
 * roots of the first 80 primes. */
static const uint64_t k512[80] = {
    0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full, 0xe9b5dba58189dbbcull,
    0x3956c25bf348b538ull, 0x59f111f1b605d019ull, 0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull,
    0xd807aa98a3030242ull, 0x12835b0145706fbeull, 0x243185be4ee4b28cull, 0x550c7dc3d5ffb4e2ull,
    0x72be5d74f27b896full, 0x80deb1fe3b1696b1ull, 0x9bdc06a725c71235ull, 0xc19bf174cf692694ull,
    0xe49b69c19ef14ad2ull, 0xefbe4786384f25e3ull, 0x0fc19dc68b8cd5b5ull, 0x240ca1cc77ac9c65ull,
    0x2de92c6f592b0275ull, 0x4a7484aa6ea6e483ull, 0x5cb0a9dcbd41fbd4ull, 0x76f988da831153b5ull,
    0x983e5152ee66dfabull, 0xa831c66d2db43210ull, 0xb00327c898fb213full, 0xbf597fc7beef0ee4ull,
    0xc6e00bf33da88fc2ull, 0xd5a79147930aa725ull, 0x06ca6351e003826full, 0x142929670a0e6e70ull,
    0x27b70a8546d22ffcull, 0x2e1b21385c26c926ull, 0x4d2c6dfc5ac42aedull, 0x53380d139d95b3dfull,
    0x650a73548baf63deull, 0x766a0abb3c77b2a8ull, 0x81c2c92e47edaee6ull, 0x92722c851482353bull,
    0xa2bfe8a14cf10364ull, 0xa81a664bbc423001ull, 0xc24b8b70d0f89791ull, 0xc76c51a30654be30ull,
    0xd192e819d6ef5218ull, 0xd69906245565a910ull, 0xf40e35855771202aull, 0x106aa07032bbd1b8ull,
    0x19a4c116b8d2d0c8ull, 0x1e376c085141ab53ull, 0x2748774cdf8eeb99ull, 0x34b0bcb5e19b48a8ull,
    0x391c0cb3c5c95a63ull, 0x4ed8aa4ae3418acbull, 0x5b9cca4f7763e373ull, 0x682e6ff3d6b2b8a3ull,
    0x748f82ee5defb2fcull, 0x78a5636f43172f60ull, 0x84c87814a1f0ab72ull, 0x8cc702081a6439ecull,
    0x90befffa23631e28ull, 0xa4506cebde82bde9ull, 0xbef9a3f7b2c67915ull, 0xc67178f2e372532bull,
    0xca273eceea26619cull, 0xd186b8c721c0c207ull, 0xeada7dd6cde0eb1eull, 0xf57d4f7fee6ed178ull,
    0x06f067aa72176fbaull, 0x0a637dc5a2c898a6ull, 0x113f9804bef90daeull, 0x1b710b35131c471bull,
    0x28db77f523047d84ull, 0x32caab7b40c72493ull, 0x3c9ebe0a15c9bebcull, 0x431d67c49c100d4cull,
    0x4cc5d4becb3e42b6ull, 0x597f299cfc657e2aull, 0x5fcb6fab3ad6faecull, 0x6c44198c4a475817ull,
};

static uint64_t rotr(uint64_t x, unsigned n) {
  return (x >> n) | (x << (64u - n));
}

static uint64_t load_be64(const uint8_t *p) {
  return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 | (uint64_t)p[3] << 32 |
         (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 | (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

static void store_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

/* FIPS 180-4, 6.4.2: one 1024-bit block into the hash state. */
static void compress(uint64_t h[8], const uint8_t block[MQTTB_SHA512_BLOCK_LEN]) {
  uint64_t w[80];
  for (unsigned t = 0; t < 16; t++) {
    w[t] = load_be64(block + 8 * t);
  }
  for (unsigned t = 16; t < 80; t++) {
    uint64_t s0 = rotr(w[t - 15], 1) ^ rotr(w[t - 15], 8) ^ (w[t - 15] >> 7);
    uint64_t s1 = rotr(w[t - 2], 19) ^ rotr(w[t - 2], 61) ^ (w[t - 2] >> 6);
    w[t] = s1 + w[t - 7] + s0 + w[t - 16];
  }
  uint64_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (unsigned t = 0; t < 80; t++) {
    uint64_t big_s1 = rotr(e, 14) ^ rotr(e, 18) ^ rotr(e, 41);
    uint64_t ch = (e & f) ^ (~e & g);
    uint64_t t1 = hh + big_s1 + ch + k512[t] + w[t];
    uint64_t big_s0 = rotr(a, 28) ^ rotr(a, 34) ^ rotr(a, 39);
    uint64_t maj = (a & b) ^ (a & c) ^ (b & c);
    uint64_t t2 = big_s0 + maj;
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

void mqttb_sha512_init(mqttb_sha512_ctx *ctx) {
  /* FIPS 180-4, 5.3.5: the first 64 bits of the fractional parts of the
   * square roots of the first 8 primes. */
  static const uint64_t iv[8] = {
      0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull, 0xa54ff53a5f1d36f1ull,
      0x510e527fade682d1ull, 0x9b05688c2b3e6c1full, 0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull,
  };
  memcpy(ctx->h, iv, sizeof iv);
  ctx->total = 0;
  ctx->buf_len = 0;
}

void mqttb_sha512_update(mqttb_sha512_ctx *ctx, const void *data, size_t len) {
  const uint8_t *p = data;
  ctx->total += (uint64_t)len;
  if (ctx->buf_len > 0) {
    size_t take = MQTTB_SHA512_BLOCK_LEN - ctx->buf_len;
    if (take > len) {
      take = len;
    }
    memcpy(ctx->buf + ctx->buf_len, p, take);
    ctx->buf_len += take;
    p += take;
    len -= take;
    if (ctx->buf_len < MQTTB_SHA512_BLOCK_LEN) {
      return;
    }
    compress(ctx->h, ctx->buf);
    ctx->buf_len = 0;
  }
  while (len >= MQTTB_SHA512_BLOCK_LEN) {
    compress(ctx->h, p);
    p += MQTTB_SHA512_BLOCK_LEN;
    len -= MQTTB_SHA512_BLOCK_LEN;
  }
  if (len > 0) {
    memcpy(ctx->buf, p, len);
    ctx->buf_len = len;
  }
}

void mqttb_sha512_final(mqttb_sha512_ctx *ctx, uint8_t out[MQTTB_SHA512_DIGEST_LEN]) {
  /* FIPS 180-4, 5.1.2: a 1 bit, zeros, then the length in bits as a 128-bit
   * big-endian number (the top 64 bits hold what overflows total * 8). */
  uint64_t bits_hi = ctx->total >> 61;
  uint64_t bits_lo = ctx->total << 3;
  ctx->buf[ctx->buf_len++] = 0x80;
  if (ctx->buf_len > MQTTB_SHA512_BLOCK_LEN - 16) {
    memset(ctx->buf + ctx->buf_len, 0, MQTTB_SHA512_BLOCK_LEN - ctx->buf_len);
    compress(ctx->h, ctx->buf);
    ctx->buf_len = 0;
  }
  memset(ctx->buf + ctx->buf_len, 0, MQTTB_SHA512_BLOCK_LEN - 16 - ctx->buf_len);
  store_be64(ctx->buf + MQTTB_SHA512_BLOCK_LEN - 16, bits_hi);
  store_be64(ctx->buf + MQTTB_SHA512_BLOCK_LEN - 8, bits_lo);
  compress(ctx->h, ctx->buf);
  for (unsigned i = 0; i < 8; i++) {
    store_be64(out + 8 * i, ctx->h[i]);
  }
  mqttb_secure_zero(ctx, sizeof *ctx);
}

void mqttb_sha512(const void *data, size_t len, uint8_t out[MQTTB_SHA512_DIGEST_LEN]) {
  mqttb_sha512_ctx ctx;
  mqttb_sha512_init(&ctx);
  mqttb_sha512_update(&ctx, data, len);
  mqttb_sha512_final(&ctx, out);
}

void mqttb_hmac_sha512_init(mqttb_hmac_sha512_ctx *ctx, const void *key, size_t key_len) {
  /* RFC 2104, section 2: K padded (or first hashed) to the block size B, then
   * H(K ^ ipad || text) inside H(K ^ opad || ...). */
  uint8_t block[MQTTB_SHA512_BLOCK_LEN];
  memset(block, 0, sizeof block);
  if (key_len > MQTTB_SHA512_BLOCK_LEN) {
    mqttb_sha512(key, key_len, block);
  } else if (key_len > 0) {
    memcpy(block, key, key_len);
  }
  for (size_t i = 0; i < sizeof block; i++) {
    block[i] ^= 0x36;
  }
  mqttb_sha512_init(&ctx->inner);
  mqttb_sha512_update(&ctx->inner, block, sizeof block);
  for (size_t i = 0; i < sizeof block; i++) {
    block[i] ^= 0x36 ^ 0x5c;
  }
  mqttb_sha512_init(&ctx->outer);
  mqttb_sha512_update(&ctx->outer, block, sizeof block);
  mqttb_secure_zero(block, sizeof block);
}

void mqttb_hmac_sha512_update(mqttb_hmac_sha512_ctx *ctx, const void *data, size_t len) {
  mqttb_sha512_update(&ctx->inner, data, len);
}

void mqttb_hmac_sha512_final(mqttb_hmac_sha512_ctx *ctx, uint8_t out[MQTTB_SHA512_DIGEST_LEN]) {
  uint8_t inner[MQTTB_SHA512_DIGEST_LEN];
  mqttb_sha512_final(&ctx->inner, inner);
  mqttb_sha512_update(&ctx->outer, inner, sizeof inner);
  mqttb_sha512_final(&ctx->outer, out);
  mqttb_secure_zero(inner, sizeof inner);
}

void mqttb_hmac_sha512(const void *key, size_t key_len, const void *data, size_t len,
                       uint8_t out[MQTTB_SHA512_DIGEST_LEN]) {
  mqttb_hmac_sha512_ctx ctx;
  mqttb_hmac_sha512_init(&ctx, key, key_len);
  mqttb_hmac_sha512_update(&ctx, data, len);
  mqttb_hmac_sha512_final(&ctx, out);
}

/*
 * The last block of a hash whose input is one 128-byte key block followed by
 * a 64-byte message: the message, the 1 bit, zeros, and the length, 192 bytes
 * = 1536 bits. PBKDF2's U_i = HMAC(P, U_{i-1}) is two of these from the keyed
 * states, so each iteration is exactly two compressions.
 */
static void prepare_tail(uint8_t block[MQTTB_SHA512_BLOCK_LEN]) {
  memset(block, 0, MQTTB_SHA512_BLOCK_LEN);
  block[MQTTB_SHA512_DIGEST_LEN] = 0x80;
  store_be64(block + MQTTB_SHA512_BLOCK_LEN - 8,
             (uint64_t)(MQTTB_SHA512_BLOCK_LEN + MQTTB_SHA512_DIGEST_LEN) * 8u);
}

static void state_out(const uint64_t h[8], uint8_t out[MQTTB_SHA512_DIGEST_LEN]) {
  for (unsigned i = 0; i < 8; i++) {
    store_be64(out + 8 * i, h[i]);
  }
}

int mqttb_pbkdf2_sha512(const void *password, size_t password_len, const void *salt,
                        size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len) {
  if (iterations == 0 || out_len == 0 ||
      (uint64_t)out_len > (uint64_t)UINT32_MAX * MQTTB_SHA512_DIGEST_LEN) {
    return -1;
  }
  mqttb_hmac_sha512_ctx keyed;
  mqttb_hmac_sha512_init(&keyed, password, password_len);
  uint8_t tail[MQTTB_SHA512_BLOCK_LEN];
  prepare_tail(tail);
  uint8_t u[MQTTB_SHA512_DIGEST_LEN];
  uint8_t t[MQTTB_SHA512_DIGEST_LEN];
  uint64_t st[8];
  for (uint32_t block_no = 1; out_len > 0; block_no++) {
    /* U_1 = PRF(P, S || INT(i)) */
    mqttb_hmac_sha512_ctx c = keyed;
    uint8_t be[4] = {(uint8_t)(block_no >> 24), (uint8_t)(block_no >> 16), (uint8_t)(block_no >> 8),
                     (uint8_t)block_no};
    mqttb_hmac_sha512_update(&c, salt, salt_len);
    mqttb_hmac_sha512_update(&c, be, sizeof be);
    mqttb_hmac_sha512_final(&c, u);
    memcpy(t, u, sizeof t);
    for (uint32_t i = 1; i < iterations; i++) {
      /* U_i = PRF(P, U_{i-1}); T ^= U_i */
      memcpy(tail, u, sizeof u);
      memcpy(st, keyed.inner.h, sizeof st);
      compress(st, tail);
      state_out(st, tail);
      memcpy(st, keyed.outer.h, sizeof st);
      compress(st, tail);
      state_out(st, u);
      for (size_t j = 0; j < sizeof t; j++) {
        t[j] ^= u[j];
      }
    }
    size_t n = out_len < sizeof t ? out_len : sizeof t;
    memcpy(out, t, n);
    out += n;
    out_len -= n;
  }
  mqttb_secure_zero(&keyed, sizeof keyed);
  mqttb_secure_zero(tail, sizeof tail);
  mqttb_secure_zero(u, sizeof u);
  mqttb_secure_zero(t, sizeof t);
  mqttb_secure_zero(st, sizeof st);
  return 0;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t mqttb_base64_encode(const void *in, size_t len, char *out, size_t out_cap) {
  const uint8_t *p = in;
  size_t need = MQTTB_BASE64_ENCODED_LEN(len);
  if (len > (SIZE_MAX - 3) / 4 * 3 || out_cap < need + 1) {
    return 0;
  }
  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    out[o++] = b64_alphabet[(v >> 18) & 63];
    out[o++] = b64_alphabet[(v >> 12) & 63];
    out[o++] = b64_alphabet[(v >> 6) & 63];
    out[o++] = b64_alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    out[o++] = b64_alphabet[(v >> 18) & 63];
    out[o++] = b64_alphabet[(v >> 12) & 63];
    out[o++] = '=';
    out[o++] = '=';
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    out[o++] = b64_alphabet[(v >> 18) & 63];
    out[o++] = b64_alphabet[(v >> 12) & 63];
    out[o++] = b64_alphabet[(v >> 6) & 63];
    out[o++] = '=';
  }
  out[o] = '\0';
  return o;
}

/* The 6-bit value of a base64 character, or -1. */
static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

int mqttb_base64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
                        size_t *out_len) {
  *out_len = 0;
  if (in_len % 4 != 0) {
    return -1;
  }
  size_t o = 0;
  for (size_t i = 0; i < in_len; i += 4) {
    bool last = i + 4 == in_len;
    size_t pad = 0;
    if (last && in[i + 3] == '=') {
      pad = in[i + 2] == '=' ? 2 : 1;
    }
    uint32_t v = 0;
    for (size_t j = 0; j < 4 - pad; j++) {
      int d = b64_value(in[i + j]);
      if (d < 0) {
        return -1;
      }
      v = v << 6 | (uint32_t)d;
    }
    v <<= 6 * pad;
    /* Canonical only: what the padding leaves over must be zero. */
    if ((pad == 1 && (v & 0xffu) != 0) || (pad == 2 && (v & 0xffffu) != 0)) {
      return -1;
    }
    size_t n = 3 - pad;
    if (out_cap - o < n) {
      return -1;
    }
    out[o++] = (uint8_t)(v >> 16);
    if (n > 1) {
      out[o++] = (uint8_t)(v >> 8);
    }
    if (n > 2) {
      out[o++] = (uint8_t)v;
    }
  }
  *out_len = o;
  return 0;
}

bool mqttb_ct_equal(const void *a, const void *b, size_t len) {
  const volatile uint8_t *pa = a;
  const volatile uint8_t *pb = b;
  uint32_t diff = 0;
  for (size_t i = 0; i < len; i++) {
    diff |= (uint32_t)(pa[i] ^ pb[i]);
  }
  /* 1 when diff == 0, without a branch on the secret: (0 - 1) >> 8 has bit 0
   * set, (1..255 - 1) >> 8 does not. */
  return ((diff - 1u) >> 8) & 1u;
}

void mqttb_secure_zero(void *p, size_t len) {
  volatile uint8_t *v = p;
  while (len-- > 0) {
    *v++ = 0;
  }
}
