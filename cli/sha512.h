/*
 * mqttb CLI: SHA-512, HMAC-SHA-512, PBKDF2-HMAC-SHA-512 and base64, in tree.
 *
 * What Mosquitto's password files need (cli/passwd.h) and nothing more:
 *   SHA-512                FIPS 180-4, sections 4.1.3, 4.2.3, 5.1.2, 5.3.5, 6.4
 *   HMAC-SHA-512           RFC 2104 (block size 128 bytes), checked with RFC 4231
 *   PBKDF2-HMAC-SHA-512    RFC 8018, section 5.2
 *   base64                 RFC 4648, section 4 (standard alphabet, '=' padding)
 * Portable C11, no allocation, no I/O. Every function may be called from any
 * thread on distinct contexts.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_SHA512_H
#define MQTTB_CLI_SHA512_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQTTB_SHA512_DIGEST_LEN 64u
#define MQTTB_SHA512_BLOCK_LEN 128u

/* Streaming SHA-512. Plain data; may be copied (e.g. to fork a prefix). */
typedef struct mqttb_sha512_ctx {
  uint64_t h[8];
  /* Bytes hashed so far (mod 2^64: messages up to 2^64 - 1 bytes). */
  uint64_t total;
  uint8_t buf[MQTTB_SHA512_BLOCK_LEN];
  size_t buf_len;
} mqttb_sha512_ctx;

void mqttb_sha512_init(mqttb_sha512_ctx *ctx);
/* @p data may be NULL when @p len is 0. */
void mqttb_sha512_update(mqttb_sha512_ctx *ctx, const void *data, size_t len);
/* Writes the digest and wipes @p ctx; init it again before reuse. */
void mqttb_sha512_final(mqttb_sha512_ctx *ctx, uint8_t out[MQTTB_SHA512_DIGEST_LEN]);
/* One-shot SHA-512 of @p len bytes at @p data. */
void mqttb_sha512(const void *data, size_t len, uint8_t out[MQTTB_SHA512_DIGEST_LEN]);

/* Streaming HMAC-SHA-512: the inner and outer hashes, keyed. */
typedef struct mqttb_hmac_sha512_ctx {
  mqttb_sha512_ctx inner;
  mqttb_sha512_ctx outer;
} mqttb_hmac_sha512_ctx;

/* Any key length (keys longer than 128 bytes are hashed first, RFC 2104). */
void mqttb_hmac_sha512_init(mqttb_hmac_sha512_ctx *ctx, const void *key, size_t key_len);
void mqttb_hmac_sha512_update(mqttb_hmac_sha512_ctx *ctx, const void *data, size_t len);
/* Writes the full 64-byte tag and wipes @p ctx. */
void mqttb_hmac_sha512_final(mqttb_hmac_sha512_ctx *ctx, uint8_t out[MQTTB_SHA512_DIGEST_LEN]);
void mqttb_hmac_sha512(const void *key, size_t key_len, const void *data, size_t len,
                       uint8_t out[MQTTB_SHA512_DIGEST_LEN]);

/*
 * PBKDF2 with HMAC-SHA-512 as the PRF (RFC 8018, 5.2): @p out_len bytes of
 * derived key from @p password, @p salt and @p iterations. Each iteration
 * costs two SHA-512 compressions (the keyed inner and outer states are
 * computed once). Returns 0, or -1 when @p iterations is 0 or @p out_len is 0
 * or more than (2^32 - 1) * 64 bytes (RFC 8018's "derived key too long").
 */
int mqttb_pbkdf2_sha512(const void *password, size_t password_len, const void *salt,
                        size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len);

/* Characters base64 needs for @p n bytes, with padding, without a NUL. */
#define MQTTB_BASE64_ENCODED_LEN(n) ((((size_t)(n) + 2u) / 3u) * 4u)

/*
 * Encode @p len bytes as padded base64 (no line breaks) into @p out, which
 * must hold MQTTB_BASE64_ENCODED_LEN(len) + 1 bytes; a NUL is written after.
 * Returns the number of characters, or 0 (and writes nothing) when @p out_cap
 * is too small and @p len is not 0.
 */
size_t mqttb_base64_encode(const void *in, size_t len, char *out, size_t out_cap);

/*
 * Strict decode of @p in_len characters of padded base64: the length must be
 * a multiple of 4, only A-Z a-z 0-9 + / are allowed, '=' only as the last one
 * or two characters, and the bits that padding leaves over must be zero (so
 * every byte string has exactly one accepted encoding, RFC 4648 3.5). No
 * whitespace is skipped. Writes at most @p out_cap bytes to @p out and their
 * count to @p out_len. Returns 0, or -1 when the input is not canonical
 * base64 or the result does not fit (then @p out may hold garbage).
 */
int mqttb_base64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
                        size_t *out_len);

/*
 * True when the @p len bytes at @p a and @p b are equal, in time that depends
 * on @p len only (every byte is read; no early exit, no data-dependent branch).
 */
bool mqttb_ct_equal(const void *a, const void *b, size_t len);

/* Overwrite @p len bytes with zeros in a way the compiler keeps. */
void mqttb_secure_zero(void *p, size_t len);

#endif /* MQTTB_CLI_SHA512_H */
