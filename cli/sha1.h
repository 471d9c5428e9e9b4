/*
 * mqttb CLI: SHA-1 (FIPS 180-4, sections 4.1.1, 4.2.1, 5.1.1, 5.3.1, 6.1), in
 * tree, for the WebSocket handshake (RFC 6455, 4.2.2: Sec-WebSocket-Accept is
 * the base64 of the SHA-1 of the client's key and a fixed GUID). SHA-1 is
 * broken for collision resistance; the handshake does not need it, and
 * nothing else here may use it. Portable C11, no allocation, no I/O.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_SHA1_H
#define MQTTB_CLI_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define MQTTB_SHA1_DIGEST_LEN 20u
#define MQTTB_SHA1_BLOCK_LEN 64u

/* Streaming SHA-1. Plain data; may be copied. */
typedef struct mqttb_sha1_ctx {
  uint32_t h[5];
  /* Bytes hashed so far (messages up to 2^61 - 1 bytes, FIPS 180-4's limit). */
  uint64_t total;
  uint8_t buf[MQTTB_SHA1_BLOCK_LEN];
  size_t buf_len;
} mqttb_sha1_ctx;

void mqttb_sha1_init(mqttb_sha1_ctx *ctx);
/* @p data may be NULL when @p len is 0. */
void mqttb_sha1_update(mqttb_sha1_ctx *ctx, const void *data, size_t len);
/* Writes the digest; init @p ctx again before reuse. */
void mqttb_sha1_final(mqttb_sha1_ctx *ctx, uint8_t out[MQTTB_SHA1_DIGEST_LEN]);
/* One-shot SHA-1 of @p len bytes at @p data. */
void mqttb_sha1(const void *data, size_t len, uint8_t out[MQTTB_SHA1_DIGEST_LEN]);

#endif /* MQTTB_CLI_SHA1_H */
