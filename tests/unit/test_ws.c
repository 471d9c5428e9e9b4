/* SPDX-License-Identifier: MIT */
/* cli/ws.c and cli/sha1.c: SHA-1 against the FIPS 180 examples, the
 * Sec-WebSocket-Accept example of RFC 6455, the opening handshake (valid,
 * every class of refusal, split anywhere, frames pipelined behind it),
 * client frames (masking, the three length forms, fragmentation with
 * control frames between the fragments, every split, ping, pong, close,
 * reserved bits and opcodes, size limit, text) and server frames (header
 * forms, zero-copy iovec interleaving, partial writes at every offset mapped
 * back to MQTT bytes, control frames between data frames, closing). The
 * base64 vectors of RFC 4648 are checked in test_sha512.c, whose base64 this
 * module uses. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/sha1.h"
#include "../../cli/ws.h"

/* ---- helpers ---- */

static void hex(const uint8_t *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) {
    snprintf(out + 2 * i, 3, "%02x", p[i]);
  }
  out[2 * n] = '\0';
}

static void assert_sha1(const void *msg, size_t len, const char *want) {
  uint8_t d[MQTTB_SHA1_DIGEST_LEN];
  char h[41];
  mqttb_sha1(msg, len, d);
  hex(d, sizeof d, h);
  cr_assert(eq(str, h, (char *)want), "SHA-1 of %zu bytes", len);
}

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char good_request[] = "GET /mqtt HTTP/1.1\r\n"
                                   "Host: server.example.com\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: " KEY "\r\n"
                                   "Origin: http://example.com\r\n"
                                   "Sec-WebSocket-Protocol: mqtt\r\n"
                                   "Sec-WebSocket-Version: 13\r\n"
                                   "\r\n";

static const char good_response[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                    "Upgrade: websocket\r\n"
                                    "Connection: Upgrade\r\n"
                                    "Sec-WebSocket-Accept: " ACCEPT "\r\n"
                                    "Sec-WebSocket-Protocol: mqtt\r\n"
                                    "\r\n";

/* A growable byte string. */
struct bytes {
  uint8_t *p;
  size_t len, cap;
};

static void bytes_add(struct bytes *b, const void *p, size_t n) {
  if (b->len + n > b->cap || b->p == NULL) {
    b->cap = (b->len + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    cr_assert(b->p != NULL);
  }
  if (n > 0) {
    memcpy(b->p + b->len, p, n);
  }
  b->len += n;
}

static mqttb_ws *ws_new_with(size_t max_request, uint64_t max_frame) {
  mqttb_ws_settings s;
  mqttb_ws_settings_default(&s);
  if (max_request != 0) {
    s.max_request = max_request;
  }
  if (max_frame != 0) {
    s.max_frame = max_frame;
  }
  mqttb_ws *ws = mqttb_ws_new(&s);
  cr_assert(ws != NULL);
  return ws;
}

/* Feed a copy of @p len bytes; the MQTT bytes they carry are appended to
 * @p mqtt (when not NULL). Returns the mqttb_ws_recv result. */
static int feed(mqttb_ws *ws, const void *in, size_t len, struct bytes *mqtt) {
  uint8_t *buf = malloc(len + 1);
  cr_assert(buf != NULL);
  if (len > 0) {
    memcpy(buf, in, len);
  }
  size_t m = 12345;
  int rc = mqttb_ws_recv(ws, buf, len, &m);
  cr_assert(m <= len);
  if (mqtt != NULL) {
    bytes_add(mqtt, buf, m); /* also gives an empty one storage, for memcmp */
  }
  free(buf);
  return rc;
}

/* Everything the module itself has to send (no library output), written
 * whole. */
static void drain_own(mqttb_ws *ws, struct bytes *wire) {
  mqttb_iovec out[8];
  int k;
  while ((k = mqttb_ws_output(ws, NULL, 0, out, 8)) > 0) {
    size_t total = 0;
    for (int i = 0; i < k; i++) {
      bytes_add(wire, out[i].base, out[i].len);
      total += out[i].len;
    }
    size_t m = 99;
    cr_assert(eq(int, mqttb_ws_output_ack(ws, total, &m), MQTTB_WS_OK));
    cr_assert(eq(sz, m, 0));
  }
  cr_assert(eq(int, k, 0));
}

static char *own_string(mqttb_ws *ws) {
  struct bytes b = {0};
  drain_own(ws, &b);
  bytes_add(&b, "", 1);
  return (char *)b.p;
}

/* A WebSocket past its handshake, the 101 response written. */
static mqttb_ws *open_ws_with(uint64_t max_frame) {
  mqttb_ws *ws = ws_new_with(0, max_frame);
  cr_assert(eq(int, feed(ws, good_request, strlen(good_request), NULL), MQTTB_WS_OK));
  char *resp = own_string(ws);
  cr_assert(eq(str, resp, (char *)good_response));
  free(resp);
  return ws;
}

static mqttb_ws *open_ws(void) {
  return open_ws_with(0);
}

/* A client frame: @p b0 is FIN|RSV|opcode; @p form 0 picks the shortest
 * length encoding, 2, 4 or 10 forces a header of that length (without the
 * mask). */
static size_t cframe(uint8_t *out, uint8_t b0, const void *payload, size_t len, int form,
                     bool masked, uint32_t key) {
  size_t n = 0;
  out[n++] = b0;
  uint8_t mbit = masked ? 0x80 : 0;
  if (form == 0) {
    form = len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
  }
  if (form == 2) {
    out[n++] = (uint8_t)(mbit | len);
  } else if (form == 4) {
    out[n++] = mbit | 126;
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  } else {
    out[n++] = mbit | 127;
    for (int i = 7; i >= 0; i--) {
      out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
  }
  uint8_t k[4] = {(uint8_t)(key >> 24), (uint8_t)(key >> 16), (uint8_t)(key >> 8), (uint8_t)key};
  if (masked) {
    memcpy(out + n, k, 4);
    n += 4;
  }
  const uint8_t *p = payload;
  for (size_t i = 0; i < len; i++) {
    out[n + i] = masked ? (uint8_t)(p[i] ^ k[i & 3]) : p[i];
  }
  return n + len;
}

/* Server frames parsed back from the wire. */
struct sframe {
  uint8_t b0;
  size_t hdr_len;
  size_t len;
  const uint8_t *payload;
};

/* Parse one unmasked server frame at @p p (@p n bytes); returns its size or 0. */
static size_t sframe_parse(const uint8_t *p, size_t n, struct sframe *f) {
  if (n < 2) {
    return 0;
  }
  cr_assert(eq(int, p[1] & 0x80, 0), "a server frame is never masked");
  f->b0 = p[0];
  uint64_t len = p[1] & 0x7F;
  size_t h = 2;
  if (len == 126) {
    if (n < 4) {
      return 0;
    }
    len = (uint64_t)p[2] << 8 | p[3];
    cr_assert(len >= 126, "minimal length form");
    h = 4;
  } else if (len == 127) {
    if (n < 10) {
      return 0;
    }
    len = 0;
    for (int i = 0; i < 8; i++) {
      len = len << 8 | p[2 + i];
    }
    cr_assert(len > 0xFFFF, "minimal length form");
    h = 10;
  }
  if (n - h < len) {
    return 0;
  }
  f->hdr_len = h;
  f->len = (size_t)len;
  f->payload = p + h;
  return h + (size_t)len;
}

/* Expect exactly one close frame with @p code (0: empty) in @p wire. */
static void assert_close_frame(const struct bytes *wire, size_t at, int code) {
  struct sframe f;
  size_t n = sframe_parse(wire->p + at, wire->len - at, &f);
  cr_assert(n > 0, "a whole close frame");
  cr_assert(eq(u8, f.b0, 0x88));
  if (code == 0) {
    cr_assert(eq(sz, f.len, 0));
  } else {
    cr_assert(f.len >= 2);
    cr_assert(eq(int, f.payload[0] << 8 | f.payload[1], code));
  }
  cr_assert(eq(sz, at + n, wire->len), "nothing after the close frame");
}

/* Feed one frame to an open WebSocket and expect it to fail with @p code. */
static void assert_fails(const uint8_t *frame, size_t len, int code) {
  mqttb_ws *ws = open_ws();
  struct bytes mqtt = {0};
  cr_assert(eq(int, feed(ws, frame, len, &mqtt), MQTTB_WS_CLOSED));
  cr_assert(eq(sz, mqtt.len, 0));
  cr_assert(mqttb_ws_is_closed(ws));
  int got = 0;
  cr_assert(mqttb_ws_close_reason(ws, &got) != NULL);
  cr_assert(eq(int, got, code));
  struct bytes wire = {0};
  drain_own(ws, &wire);
  assert_close_frame(&wire, 0, code);
  /* Nothing more is taken. */
  uint8_t more[32];
  size_t m = cframe(more, 0x82, "x", 1, 0, true, 1);
  cr_assert(eq(int, feed(ws, more, m, &mqtt), MQTTB_WS_CLOSED));
  cr_assert(eq(sz, mqtt.len, 0));
  free(mqtt.p);
  free(wire.p);
  mqttb_ws_del(ws);
}

/* ---- SHA-1 and the accept key ---- */

Test(sha1, empty_message) {
  assert_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

/* FIPS 180 example: one-block message. */
Test(sha1, abc) {
  assert_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

/* FIPS 180 example: the 448-bit message (two blocks once padded). */
Test(sha1, fips_448_bit_message) {
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  assert_sha1(m, strlen(m), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

Test(sha1, fips_896_bit_message) {
  const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                  "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  assert_sha1(m, strlen(m), "a49b2446a02c645bf419f995b67091253a04a259");
}

Test(sha1, one_million_a_streamed_in_uneven_chunks) {
  static uint8_t a[1000000];
  memset(a, 'a', sizeof a);
  mqttb_sha1_ctx ctx;
  mqttb_sha1_init(&ctx);
  size_t done = 0, step = 1;
  while (done < sizeof a) {
    size_t n = step < sizeof a - done ? step : sizeof a - done;
    mqttb_sha1_update(&ctx, a + done, n);
    done += n;
    step = step * 3 % 1000 + 1;
  }
  uint8_t d[MQTTB_SHA1_DIGEST_LEN];
  char h[41];
  mqttb_sha1_final(&ctx, d);
  hex(d, sizeof d, h);
  cr_assert(eq(str, h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
  assert_sha1(a, sizeof a, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

/* Padding boundaries: 55, 56 and 64 bytes. */
Test(sha1, padding_boundaries) {
  assert_sha1("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 55,
              "c1c8bbdc22796e28c0e15163d20899b65621d65a");
  assert_sha1("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 56,
              "c2db330f6083854c99d4b5bfb6e8f29f201be699");
  assert_sha1("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 64,
              "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

/* RFC 6455, 1.3: the example key and its accept value. */
Test(ws_handshake, rfc6455_example_accept_key) {
  char out[29];
  mqttb_ws_accept_key(KEY, strlen(KEY), out);
  cr_assert(eq(str, out, ACCEPT));
}

/* ---- opening handshake ---- */

Test(ws_handshake, valid_request_gets_101_and_details) {
  mqttb_ws *ws = ws_new_with(0, 0);
  cr_assert(not(mqttb_ws_handshake_done(ws)));
  cr_assert(eq(ptr, (void *)mqttb_ws_path(ws), NULL));
  cr_assert(eq(sz, mqttb_ws_output_pending(ws), 0));
  cr_assert(eq(int, feed(ws, good_request, strlen(good_request), NULL), MQTTB_WS_OK));
  cr_assert(mqttb_ws_handshake_done(ws));
  cr_assert(not(mqttb_ws_is_closed(ws)));
  cr_assert(eq(sz, mqttb_ws_output_pending(ws), strlen(good_response)));
  cr_assert(eq(str, (char *)mqttb_ws_path(ws), "/mqtt"));
  cr_assert(eq(str, (char *)mqttb_ws_subprotocol(ws), "mqtt"));
  cr_assert(eq(str, (char *)mqttb_ws_origin(ws), "http://example.com"));
  int code = -1;
  cr_assert(eq(ptr, (void *)mqttb_ws_close_reason(ws, &code), NULL));
  cr_assert(eq(int, code, 0));
  char *resp = own_string(ws);
  cr_assert(eq(str, resp, (char *)good_response));
  free(resp);
  cr_assert(eq(sz, mqttb_ws_output_pending(ws), 0));
  mqttb_ws_del(ws);
}

/* Build a request from header lines (each without CRLF), NULL-terminated. */
static char *request(const char *first, const char *const *headers) {
  struct bytes b = {0};
  bytes_add(&b, first, strlen(first));
  bytes_add(&b, "\r\n", 2);
  for (size_t i = 0; headers[i] != NULL; i++) {
    bytes_add(&b, headers[i], strlen(headers[i]));
    bytes_add(&b, "\r\n", 2);
  }
  bytes_add(&b, "\r\n", 3); /* and a NUL */
  return (char *)b.p;
}

#define H_HOST "Host: localhost"
#define H_UPGRADE "Upgrade: websocket"
#define H_CONN "Connection: Upgrade"
#define H_KEY "Sec-WebSocket-Key: " KEY
#define H_VER "Sec-WebSocket-Version: 13"
#define H_PROTO "Sec-WebSocket-Protocol: mqtt"

/* Handle one request; returns the response (caller frees) and sets *rc. */
static char *respond(const char *req, int *rc, mqttb_ws **keep) {
  mqttb_ws *ws = ws_new_with(0, 0);
  *rc = feed(ws, req, strlen(req), NULL);
  char *resp = own_string(ws);
  if (keep != NULL) {
    *keep = ws;
  } else {
    mqttb_ws_del(ws);
  }
  return resp;
}

static void assert_refused(const char *first, const char *const *headers, int status,
                           const char *header_needed) {
  char *req = request(first, headers);
  int rc;
  mqttb_ws *ws;
  char *resp = respond(req, &rc, &ws);
  cr_assert(eq(int, rc, MQTTB_WS_CLOSED), "%s", req);
  char want[64];
  snprintf(want, sizeof want, "HTTP/1.1 %d ", status);
  cr_assert(eq(int, strncmp(resp, want, strlen(want)), 0), "response to %s: %s", req, resp);
  cr_assert(strstr(resp, "\r\nConnection: close\r\n") != NULL);
  /* The body is as long as Content-Length says. */
  const char *cl = strstr(resp, "Content-Length: ");
  const char *body = strstr(resp, "\r\n\r\n");
  cr_assert(cl != NULL && body != NULL);
  cr_assert(eq(sz, (size_t)atoi(cl + 16), strlen(body + 4)));
  if (header_needed != NULL) {
    cr_assert(strstr(resp, header_needed) != NULL, "%s in %s", header_needed, resp);
  }
  cr_assert(mqttb_ws_is_closed(ws));
  cr_assert(not(mqttb_ws_handshake_done(ws)));
  int code = 0;
  cr_assert(mqttb_ws_close_reason(ws, &code) != NULL);
  cr_assert(eq(int, code, status));
  /* Nothing more is taken, and no library data is ever framed. */
  uint8_t lib_bytes[3] = {1, 2, 3};
  mqttb_iovec lib = {lib_bytes, 3}, out[8];
  cr_assert(eq(int, feed(ws, "x", 1, NULL), MQTTB_WS_CLOSED));
  cr_assert(eq(int, mqttb_ws_output(ws, &lib, 1, out, 8), 0));
  free(resp);
  free(req);
  mqttb_ws_del(ws);
}

Test(ws_handshake, lists_and_case_insensitive_values) {
  const char *h[] = {"host: localhost",
                     "UPGRADE: h2c, WebSocket",
                     "connection: keep-alive,  upgrade ",
                     "sec-websocket-key:" KEY,
                     "Sec-WebSocket-Version:\t13\t",
                     "Sec-WebSocket-Protocol: foo",
                     "Sec-WebSocket-Protocol: bar, mqttv3.1 , mqtt",
                     "Sec-WebSocket-Extensions: permessage-deflate",
                     NULL};
  char *req = request("GET /any/path?x=1 HTTP/1.1", h);
  int rc;
  mqttb_ws *ws;
  char *resp = respond(req, &rc, &ws);
  cr_assert(eq(int, rc, MQTTB_WS_OK));
  cr_assert(eq(int, strncmp(resp, "HTTP/1.1 101 ", 13), 0), "%s", resp);
  /* The first the client lists of those spoken here, echoed. */
  cr_assert(strstr(resp, "\r\nSec-WebSocket-Protocol: mqttv3.1\r\n") != NULL);
  cr_assert(strstr(resp, "Extensions") == NULL, "no extension accepted");
  cr_assert(eq(str, (char *)mqttb_ws_subprotocol(ws), "mqttv3.1"));
  cr_assert(eq(str, (char *)mqttb_ws_path(ws), "/any/path?x=1"));
  cr_assert(eq(ptr, (void *)mqttb_ws_origin(ws), NULL));
  free(resp);
  free(req);
  mqttb_ws_del(ws);
}

Test(ws_handshake, later_http_1x_and_bare_lf_and_leading_empty_lines) {
  const char *req = "\r\n\nGET / HTTP/1.2\n" H_HOST "\n" H_UPGRADE "\n" H_CONN "\r\n" H_KEY
                    "\n" H_VER "\n" H_PROTO "\n\n";
  int rc;
  char *resp = respond(req, &rc, NULL);
  cr_assert(eq(int, rc, MQTTB_WS_OK));
  cr_assert(eq(int, strncmp(resp, "HTTP/1.1 101 ", 13), 0), "%s", resp);
  free(resp);
}

Test(ws_handshake, subprotocol_required_and_case_sensitive) {
  const char *none[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, NULL};
  assert_refused("GET / HTTP/1.1", none, 400, NULL);
  const char *other[] = {
      H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, "Sec-WebSocket-Protocol: MQTT, mqtt5", NULL};
  assert_refused("GET / HTTP/1.1", other, 400, NULL);
  const char *prefix[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, "Sec-WebSocket-Protocol: mq",
                          NULL};
  assert_refused("GET / HTTP/1.1", prefix, 400, NULL);
}

Test(ws_handshake, host_exactly_once) {
  const char *none[] = {H_UPGRADE, H_CONN, H_KEY, H_VER, H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", none, 400, NULL);
  const char *two[] = {H_HOST, H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", two, 400, NULL);
}

Test(ws_handshake, upgrade_and_connection_required) {
  const char *no_up[] = {H_HOST, H_CONN, H_KEY, H_VER, H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", no_up, 400, NULL);
  const char *bad_up[] = {H_HOST, "Upgrade: websocketx", H_CONN, H_KEY, H_VER, H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", bad_up, 400, NULL);
  const char *no_conn[] = {H_HOST, H_UPGRADE, H_KEY, H_VER, H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", no_conn, 400, NULL);
  const char *bad_conn[] = {H_HOST,  H_UPGRADE, "Connection: keep-alive, upgraded", H_KEY, H_VER,
                            H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", bad_conn, 400, NULL);
}

/* RFC 6455, 4.2.2: an unknown version gets 426 and the versions spoken. */
Test(ws_handshake, version_13_only) {
  const char *v8[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, "Sec-WebSocket-Version: 8", H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", v8, 426, "\r\nSec-WebSocket-Version: 13\r\n");
  const char *v13x[] = {H_HOST,  H_UPGRADE, H_CONN, H_KEY, "Sec-WebSocket-Version: 13, 8",
                        H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", v13x, 426, "\r\nSec-WebSocket-Version: 13\r\n");
  const char *none[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", none, 400, NULL);
  const char *two[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, H_VER, H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", two, 400, NULL);
}

/* RFC 6455, 4.2.1 item 5: base64 of a 16-byte value, once. */
Test(ws_handshake, key_must_be_base64_of_16_bytes) {
  const char *keys[] = {
      NULL,                                          /* missing */
      "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA",     /* 15 bytes */
      "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=", /* 17 bytes */
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ",   /* no padding */
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ*==", /* not base64 */
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==", /* stray bits: not canonical */
      "Sec-WebSocket-Key: ",
  };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    const char *h[] = {H_HOST, H_UPGRADE, H_CONN, H_VER, H_PROTO, keys[i], NULL};
    assert_refused("GET / HTTP/1.1", h, 400, NULL);
  }
  const char *two[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_KEY, H_VER, H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", two, 400, NULL);
}

Test(ws_handshake, method_and_version_and_request_line) {
  const char *h[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, H_PROTO, NULL};
  assert_refused("POST /mqtt HTTP/1.1", h, 405, "\r\nAllow: GET\r\n");
  assert_refused("get /mqtt HTTP/1.1", h, 405, NULL);
  assert_refused("GET /mqtt HTTP/1.0", h, 400, NULL);
  assert_refused("GET /mqtt HTTP/2.0", h, 400, NULL);
  assert_refused("GET /mqtt", h, 400, NULL);
  assert_refused("GET  /mqtt HTTP/1.1", h, 400, NULL);
  assert_refused("GET /mq tt HTTP/1.1", h, 400, NULL);
  assert_refused("GET /mqtt HTTP/1.1 ", h, 400, NULL);
  assert_refused("GET /\x80 HTTP/1.1", h, 400, NULL);
}

Test(ws_handshake, malformed_header_fields) {
  const char *space[] = {H_HOST, "Upgrade : websocket", H_CONN, H_KEY, H_VER, H_PROTO, NULL};
  assert_refused("GET / HTTP/1.1", space, 400, NULL);
  const char *fold[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, H_PROTO, " folded", NULL};
  assert_refused("GET / HTTP/1.1", fold, 400, NULL);
  const char *nocolon[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, H_PROTO, "Junk", NULL};
  assert_refused("GET / HTTP/1.1", nocolon, 400, NULL);
  const char *noname[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, H_PROTO, ": x", NULL};
  assert_refused("GET / HTTP/1.1", noname, 400, NULL);
  const char *ctl[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, H_PROTO, "X-A: a\x01", NULL};
  assert_refused("GET / HTTP/1.1", ctl, 400, NULL);
  const char *cr[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, H_PROTO, "X-A: a\rb", NULL};
  assert_refused("GET / HTTP/1.1", cr, 400, NULL);
  /* obs-text in a value of no interest passes. */
  const char *obs[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, H_PROTO, "User-Agent: \xc3\xa9",
                       NULL};
  char *req = request("GET / HTTP/1.1", obs);
  int rc;
  char *resp = respond(req, &rc, NULL);
  cr_assert(eq(int, rc, MQTTB_WS_OK), "%s", resp);
  free(resp);
  free(req);
}

Test(ws_handshake, origin_allow_list) {
  static const char *const allowed[] = {"https://a.example", "https://b.example"};
  mqttb_ws_settings s;
  mqttb_ws_settings_default(&s);
  s.origins = allowed;
  s.origin_count = 2;
  const char *origins[] = {"Origin: https://b.example", "Origin: https://c.example", NULL,
                           "Origin: https://B.example"};
  const int want[] = {101, 403, 101, 403};
  for (size_t i = 0; i < 4; i++) {
    const char *h[] = {H_HOST, H_UPGRADE, H_CONN, H_KEY, H_VER, H_PROTO, origins[i], NULL};
    char *req = request("GET / HTTP/1.1", h);
    mqttb_ws *ws = mqttb_ws_new(&s);
    cr_assert(ws != NULL);
    int rc = feed(ws, req, strlen(req), NULL);
    char *resp = own_string(ws);
    char status[16];
    snprintf(status, sizeof status, "HTTP/1.1 %d ", want[i]);
    cr_assert(eq(int, strncmp(resp, status, strlen(status)), 0), "%s: %s", req, resp);
    cr_assert(eq(int, rc, want[i] == 101 ? MQTTB_WS_OK : MQTTB_WS_CLOSED));
    free(resp);
    free(req);
    mqttb_ws_del(ws);
  }
  const char *two[] = {H_HOST,  H_UPGRADE,   H_CONN,      H_KEY, H_VER,
                       H_PROTO, "Origin: a", "Origin: b", NULL};
  assert_refused("GET / HTTP/1.1", two, 400, NULL);
}

/* Exactly max_request bytes pass; one more is 431, wherever it falls. */
Test(ws_handshake, header_size_limit) {
  size_t base = strlen(good_request);
  for (size_t limit = MQTTB_WS_MIN_MAX_REQUEST; limit <= 1024; limit += 97) {
    if (limit < base) {
      continue;
    }
    for (int over = 0; over <= 1; over++) {
      /* Pad with an X-Pad header so the request is limit + over bytes. */
      size_t pad = limit + (size_t)over - base - strlen("X-Pad: \r\n");
      char *req = malloc(limit + 2);
      size_t head = base - 2; /* without the final CRLF */
      memcpy(req, good_request, head);
      memcpy(req + head, "X-Pad: ", 7);
      memset(req + head + 7, 'p', pad);
      memcpy(req + head + 7 + pad, "\r\n\r\n", 4);
      size_t total = head + 7 + pad + 4;
      cr_assert(eq(sz, total, limit + (size_t)over));
      mqttb_ws *ws = ws_new_with(limit, 0);
      int rc = feed(ws, req, total, NULL);
      char *resp = own_string(ws);
      if (over) {
        cr_assert(eq(int, rc, MQTTB_WS_CLOSED));
        cr_assert(eq(int, strncmp(resp, "HTTP/1.1 431 ", 13), 0), "%s", resp);
      } else {
        cr_assert(eq(int, rc, MQTTB_WS_OK));
        cr_assert(eq(str, resp, (char *)good_response));
      }
      free(resp);
      free(req);
      mqttb_ws_del(ws);
    }
  }
  /* The default limit, with a request that never ends. */
  mqttb_ws *ws = ws_new_with(0, 0);
  char junk[1000];
  memset(junk, 'a', sizeof junk);
  int rc = MQTTB_WS_OK;
  size_t fed = 0;
  while (rc == MQTTB_WS_OK && fed < 100000) {
    rc = feed(ws, junk, sizeof junk, NULL);
    fed += sizeof junk;
  }
  cr_assert(eq(int, rc, MQTTB_WS_CLOSED));
  cr_assert(fed > MQTTB_WS_DEFAULT_MAX_REQUEST &&
            fed <= MQTTB_WS_DEFAULT_MAX_REQUEST + sizeof junk);
  char *resp = own_string(ws);
  cr_assert(eq(int, strncmp(resp, "HTTP/1.1 431 ", 13), 0));
  free(resp);
  mqttb_ws_del(ws);
}

Test(ws_handshake, settings_validated) {
  mqttb_ws_settings s;
  mqttb_ws_settings_default(&s);
  cr_assert(eq(sz, s.max_request, MQTTB_WS_DEFAULT_MAX_REQUEST));
  cr_assert(eq(u64, s.max_frame, MQTTB_WS_DEFAULT_MAX_FRAME));
  cr_assert(eq(ptr, mqttb_ws_new(NULL), NULL));
  s.max_request = MQTTB_WS_MIN_MAX_REQUEST - 1;
  cr_assert(eq(ptr, mqttb_ws_new(&s), NULL));
  mqttb_ws_settings_default(&s);
  s.max_frame = 0;
  cr_assert(eq(ptr, mqttb_ws_new(&s), NULL));
  mqttb_ws_settings_default(&s);
  s.origin_count = 1;
  cr_assert(eq(ptr, mqttb_ws_new(&s), NULL));
  const char *const null_origin[] = {NULL};
  s.origins = null_origin;
  cr_assert(eq(ptr, mqttb_ws_new(&s), NULL));
  size_t m;
  uint8_t b[1];
  cr_assert(eq(int, mqttb_ws_recv(NULL, b, 1, &m), MQTTB_WS_ERR_INVALID));
  mqttb_ws *ws = ws_new_with(0, 0);
  cr_assert(eq(int, mqttb_ws_recv(ws, NULL, 1, &m), MQTTB_WS_ERR_INVALID));
  cr_assert(eq(int, mqttb_ws_recv(ws, b, 1, NULL), MQTTB_WS_ERR_INVALID));
  cr_assert(eq(int, mqttb_ws_recv(ws, NULL, 0, &m), MQTTB_WS_OK));
  mqttb_iovec out[4];
  cr_assert(eq(int, mqttb_ws_output(ws, NULL, 1, out, 4), MQTTB_WS_ERR_INVALID));
  cr_assert(eq(int, mqttb_ws_output(ws, NULL, 0, NULL, 4), MQTTB_WS_ERR_INVALID));
  cr_assert(eq(int, mqttb_ws_output(ws, NULL, -1, out, 4), MQTTB_WS_ERR_INVALID));
  cr_assert(eq(int, mqttb_ws_output_ack(ws, 0, &m), MQTTB_WS_ERR_INVALID), "nothing given");
  cr_assert(eq(int, mqttb_ws_close(ws, 1005), MQTTB_WS_ERR_INVALID));
  cr_assert(eq(int, mqttb_ws_close(ws, 999), MQTTB_WS_ERR_INVALID));
  cr_assert(eq(int, mqttb_ws_close(NULL, 1000), MQTTB_WS_ERR_INVALID));
  mqttb_ws_del(ws);
  mqttb_ws_del(NULL);
}

/* The request in two pieces, split at every byte, then byte by byte. */
Test(ws_handshake, split_at_every_byte) {
  size_t n = strlen(good_request);
  for (size_t cut = 0; cut <= n; cut++) {
    mqttb_ws *ws = ws_new_with(0, 0);
    cr_assert(eq(int, feed(ws, good_request, cut, NULL), MQTTB_WS_OK));
    if (cut < n) {
      cr_assert(eq(sz, mqttb_ws_output_pending(ws), 0), "no answer before the end (cut %zu)", cut);
    }
    cr_assert(eq(int, feed(ws, good_request + cut, n - cut, NULL), MQTTB_WS_OK));
    char *resp = own_string(ws);
    cr_assert(eq(str, resp, (char *)good_response), "cut at %zu", cut);
    free(resp);
    mqttb_ws_del(ws);
  }
  mqttb_ws *ws = ws_new_with(0, 0);
  for (size_t i = 0; i < n; i++) {
    cr_assert(eq(int, feed(ws, good_request + i, 1, NULL), MQTTB_WS_OK));
  }
  char *resp = own_string(ws);
  cr_assert(eq(str, resp, (char *)good_response));
  free(resp);
  mqttb_ws_del(ws);
}

/* Frames that follow the request in the same read are frames. */
Test(ws_handshake, pipelined_frames_after_request) {
  uint8_t buf[1024];
  size_t n = strlen(good_request);
  memcpy(buf, good_request, n);
  n += cframe(buf + n, 0x82, "\x10\x02", 2, 0, true, 0x01020304);
  n += cframe(buf + n, 0x89, "hi", 2, 0, true, 0xA0B0C0D0);
  n += cframe(buf + n, 0x82, "\x00\x04", 2, 0, true, 0xFFFFFFFF);
  for (size_t cut = 0; cut <= n; cut++) {
    mqttb_ws *ws = ws_new_with(0, 0);
    struct bytes mqtt = {0};
    cr_assert(eq(int, feed(ws, buf, cut, &mqtt), MQTTB_WS_OK));
    cr_assert(eq(int, feed(ws, buf + cut, n - cut, &mqtt), MQTTB_WS_OK));
    cr_assert(eq(sz, mqtt.len, 4), "cut %zu", cut);
    cr_assert(eq(int, memcmp(mqtt.p, "\x10\x02\x00\x04", 4), 0));
    /* The 101 response, then the pong. */
    struct bytes wire = {0};
    drain_own(ws, &wire);
    size_t rl = strlen(good_response);
    cr_assert(wire.len > rl);
    cr_assert(eq(int, memcmp(wire.p, good_response, rl), 0));
    cr_assert(eq(sz, wire.len - rl, 4));
    cr_assert(eq(int, memcmp(wire.p + rl, "\x8a\x02hi", 4), 0));
    free(mqtt.p);
    free(wire.p);
    mqttb_ws_del(ws);
  }
}

/* Closing before the handshake completed sends nothing. */
Test(ws_handshake, server_close_before_handshake) {
  mqttb_ws *ws = ws_new_with(0, 0);
  cr_assert(eq(int, feed(ws, good_request, 10, NULL), MQTTB_WS_OK));
  cr_assert(eq(int, mqttb_ws_close(ws, MQTTB_WS_CLOSE_NORMAL), MQTTB_WS_OK));
  cr_assert(mqttb_ws_is_closed(ws));
  cr_assert(eq(int, feed(ws, good_request + 10, strlen(good_request) - 10, NULL), MQTTB_WS_CLOSED));
  struct bytes wire = {0};
  drain_own(ws, &wire);
  cr_assert(eq(sz, wire.len, 0));
  free(wire.p);
  mqttb_ws_del(ws);
}

/* ---- frames from the client ---- */

Test(ws_frames, masked_binary_in_all_length_forms) {
  static uint8_t payload[70000], frame[70000 + 14];
  for (size_t i = 0; i < sizeof payload; i++) {
    payload[i] = (uint8_t)(i * 7 + 3);
  }
  const size_t lens[] = {0, 1, 5, 125, 126, 127, 1000, 65535, 65536, 70000};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    for (int form = 0; form <= 10; form += 2) {
      if (form == 6 || form == 8 || (form == 2 && lens[i] > 125) ||
          (form == 4 && lens[i] > 0xFFFF)) {
        continue;
      }
      /* form 4 or 10 for short lengths: a longer form than needed, taken. */
      mqttb_ws *ws = open_ws();
      struct bytes mqtt = {0};
      size_t n = cframe(frame, 0x82, payload, lens[i], form, true, 0x37FA213D);
      cr_assert(eq(int, feed(ws, frame, n, &mqtt), MQTTB_WS_OK));
      cr_assert(eq(sz, mqtt.len, lens[i]), "length %zu form %d", lens[i], form);
      cr_assert(eq(int, memcmp(mqtt.p, payload, lens[i]), 0));
      cr_assert(eq(sz, mqttb_ws_output_pending(ws), 0));
      free(mqtt.p);
      mqttb_ws_del(ws);
    }
  }
}

/* RFC 6455, 5.1: "The server MUST close the connection upon receiving a
 * frame that is not masked", with 1002. */
Test(ws_frames, unmasked_frame_fails_1002) {
  uint8_t f[16];
  size_t n = cframe(f, 0x82, "abc", 3, 0, false, 0);
  assert_fails(f, n, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
  n = cframe(f, 0x89, "", 0, 0, false, 0);
  assert_fails(f, n, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
}

/* RFC 6455, 5.2: reserved bits without an extension fail the connection. */
Test(ws_frames, reserved_bits_fail_1002) {
  const uint8_t bits[] = {0x40, 0x20, 0x10, 0x70};
  for (size_t i = 0; i < sizeof bits; i++) {
    uint8_t f[16];
    size_t n = cframe(f, (uint8_t)(0x82 | bits[i]), "abc", 3, 0, true, 5);
    assert_fails(f, n, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
  }
}

Test(ws_frames, reserved_opcodes_fail_1002) {
  const uint8_t ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
  for (size_t i = 0; i < sizeof ops; i++) {
    uint8_t f[16];
    size_t n = cframe(f, (uint8_t)(0x80 | ops[i]), "a", 1, 0, true, 5);
    assert_fails(f, n, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
  }
}

/* [MQTT-6.0.0-1]: a data frame other than binary closes the connection. */
Test(ws_frames, text_frame_fails_1003) {
  uint8_t f[16];
  size_t n = cframe(f, 0x81, "hello", 5, 0, true, 5);
  assert_fails(f, n, MQTTB_WS_CLOSE_UNSUPPORTED_DATA);
  n = cframe(f, 0x01, "hel", 3, 0, true, 5);
  assert_fails(f, n, MQTTB_WS_CLOSE_UNSUPPORTED_DATA);
}

Test(ws_frames, top_bit_of_64_bit_length_fails_1002) {
  uint8_t f[16] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
  assert_fails(f, 14, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
}

/* RFC 6455, 5.5: control frames are at most 125 bytes and never fragmented. */
Test(ws_frames, control_frame_rules) {
  uint8_t payload[126] = {0}, f[160];
  size_t n = cframe(f, 0x89, payload, 126, 4, true, 9);
  assert_fails(f, n, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
  n = cframe(f, 0x09, payload, 1, 0, true, 9);
  assert_fails(f, n, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
  n = cframe(f, 0x08, payload, 0, 0, true, 9);
  assert_fails(f, n, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
  /* 125 bytes in the 16-bit form: the length counts, not the form. */
  mqttb_ws *ws = open_ws();
  n = cframe(f, 0x89, payload, 125, 4, true, 9);
  cr_assert(eq(int, feed(ws, f, n, NULL), MQTTB_WS_OK));
  struct bytes wire = {0};
  drain_own(ws, &wire);
  cr_assert(eq(sz, wire.len, 127));
  free(wire.p);
  mqttb_ws_del(ws);
}

Test(ws_frames, max_frame_limit_1009) {
  uint8_t payload[101] = {0}, f[128];
  mqttb_ws *ws = open_ws_with(100);
  size_t n = cframe(f, 0x82, payload, 100, 0, true, 3);
  cr_assert(eq(int, feed(ws, f, n, NULL), MQTTB_WS_OK));
  n = cframe(f, 0x82, payload, 101, 0, true, 3);
  struct bytes mqtt = {0};
  /* Refused on the header: no byte of its payload is handed on. */
  cr_assert(eq(int, feed(ws, f, 8, &mqtt), MQTTB_WS_CLOSED));
  cr_assert(eq(sz, mqtt.len, 0));
  int code = 0;
  mqttb_ws_close_reason(ws, &code);
  cr_assert(eq(int, code, MQTTB_WS_CLOSE_TOO_BIG));
  struct bytes wire = {0};
  drain_own(ws, &wire);
  assert_close_frame(&wire, 0, MQTTB_WS_CLOSE_TOO_BIG);
  free(wire.p);
  free(mqtt.p);
  mqttb_ws_del(ws);
  /* Control frames are not data: the limit does not apply to them. */
  ws = open_ws_with(1);
  n = cframe(f, 0x89, payload, 50, 0, true, 3);
  cr_assert(eq(int, feed(ws, f, n, NULL), MQTTB_WS_OK));
  mqttb_ws_del(ws);
}

/* A large frame's payload is handed on as it arrives. */
Test(ws_frames, payload_streams_before_frame_ends) {
  mqttb_ws *ws = open_ws();
  uint8_t hdr[14] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0x10, 0, 0, 0x11, 0x22, 0x33, 0x44};
  struct bytes mqtt = {0};
  cr_assert(eq(int, feed(ws, hdr, 14, &mqtt), MQTTB_WS_OK));
  cr_assert(eq(sz, mqtt.len, 0));
  uint8_t chunk[1000];
  const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
  size_t at = 0;
  for (int round = 0; round < 3; round++) {
    size_t len = 333 + (size_t)round;
    for (size_t i = 0; i < len; i++) {
      chunk[i] = (uint8_t)('m' ^ key[(at + i) & 3]);
    }
    size_t before = mqtt.len;
    cr_assert(eq(int, feed(ws, chunk, len, &mqtt), MQTTB_WS_OK));
    cr_assert(eq(sz, mqtt.len - before, len));
    at += len;
  }
  for (size_t i = 0; i < mqtt.len; i++) {
    cr_assert(eq(u8, mqtt.p[i], 'm'));
  }
  free(mqtt.p);
  mqttb_ws_del(ws);
}

/* A fragmented message with ping, pong and another ping between its
 * fragments, and a second message, as one stream; then split at every
 * byte and fed in two reads, and byte by byte. */
static size_t fragmented_stream(uint8_t *s, struct bytes *want_mqtt) {
  size_t n = 0;
  n += cframe(s + n, 0x02, "\x30\x0b\x00\x03", 4, 0, true, 0x11223344);
  n += cframe(s + n, 0x89, "p1", 2, 0, true, 0x55667788);
  n += cframe(s + n, 0x00, "a/b", 3, 0, true, 0x99AABBCC);
  n += cframe(s + n, 0x8A, "unsolicited", 11, 0, true, 0xDDEEFF00);
  n += cframe(s + n, 0x00, "", 0, 0, true, 0x01010101);
  n += cframe(s + n, 0x80, "hell", 4, 0, true, 0x02020202);
  n += cframe(s + n, 0x82, "\xc0\x00\xe0\x00", 4, 4, true, 0x03030303);
  bytes_add(want_mqtt,
            "\x30\x0b\x00\x03"
            "a/b"
            "hell"
            "\xc0\x00\xe0\x00",
            15);
  return n;
}

Test(ws_frames, fragmented_message_with_control_frames_between) {
  uint8_t s[256];
  struct bytes want = {0};
  size_t n = fragmented_stream(s, &want);
  for (size_t cut = 0; cut <= n; cut++) {
    mqttb_ws *ws = open_ws();
    struct bytes mqtt = {0};
    cr_assert(eq(int, feed(ws, s, cut, &mqtt), MQTTB_WS_OK));
    cr_assert(eq(int, feed(ws, s + cut, n - cut, &mqtt), MQTTB_WS_OK));
    cr_assert(eq(sz, mqtt.len, want.len), "cut %zu", cut);
    cr_assert(eq(int, memcmp(mqtt.p, want.p, want.len), 0), "cut %zu", cut);
    struct bytes wire = {0};
    drain_own(ws, &wire);
    cr_assert(eq(sz, wire.len, 4), "one pong, cut %zu", cut);
    cr_assert(eq(int, memcmp(wire.p, "\x8a\x02p1", 4), 0));
    free(mqtt.p);
    free(wire.p);
    mqttb_ws_del(ws);
  }
  mqttb_ws *ws = open_ws();
  struct bytes mqtt = {0};
  for (size_t i = 0; i < n; i++) {
    cr_assert(eq(int, feed(ws, s + i, 1, &mqtt), MQTTB_WS_OK));
  }
  cr_assert(eq(sz, mqtt.len, want.len));
  cr_assert(eq(int, memcmp(mqtt.p, want.p, want.len), 0));
  free(mqtt.p);
  free(want.p);
  mqttb_ws_del(ws);
}

Test(ws_frames, fragmentation_errors_1002) {
  uint8_t s[64];
  size_t n = cframe(s, 0x80, "x", 1, 0, true, 1);
  assert_fails(s, n, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
  n = cframe(s, 0x02, "x", 1, 0, true, 1);
  n += cframe(s + n, 0x82, "y", 1, 0, true, 1);
  mqttb_ws *ws = open_ws();
  struct bytes mqtt = {0};
  cr_assert(eq(int, feed(ws, s, n, &mqtt), MQTTB_WS_CLOSED));
  /* The fragment before the error was good and is handed on. */
  cr_assert(eq(sz, mqtt.len, 1));
  int code = 0;
  mqttb_ws_close_reason(ws, &code);
  cr_assert(eq(int, code, MQTTB_WS_CLOSE_PROTOCOL_ERROR));
  free(mqtt.p);
  mqttb_ws_del(ws);
}

/* Several frames, MQTT packets spanning them, in one read [MQTT-6.0.0-2]. */
Test(ws_frames, several_frames_in_one_read) {
  const uint8_t pkt[] = {0x30, 0x07, 0x00, 0x01, 't', 'x', 'y', 'z', 'w', 0xC0, 0x00};
  uint8_t s[256];
  size_t n = 0;
  for (size_t i = 0; i < sizeof pkt; i += 3) {
    size_t len = sizeof pkt - i < 3 ? sizeof pkt - i : 3;
    n += cframe(s + n, 0x82, pkt + i, len, 0, true, (uint32_t)(i * 0x01000193u + 7));
  }
  mqttb_ws *ws = open_ws();
  uint8_t copy[256];
  memcpy(copy, s, n);
  size_t m = 0;
  cr_assert(eq(int, mqttb_ws_recv(ws, copy, n, &m), MQTTB_WS_OK));
  cr_assert(eq(sz, m, sizeof pkt));
  cr_assert(eq(int, memcmp(copy, pkt, sizeof pkt), 0), "in place, at the front");
  mqttb_ws_del(ws);
}

Test(ws_frames, ping_gets_pong_with_same_payload_pong_ignored) {
  uint8_t payload[125], f[160];
  for (size_t i = 0; i < sizeof payload; i++) {
    payload[i] = (uint8_t)(255 - i);
  }
  const size_t lens[] = {0, 1, 124, 125};
  for (size_t i = 0; i < 4; i++) {
    mqttb_ws *ws = open_ws();
    size_t n = cframe(f, 0x89, payload, lens[i], 0, true, 0xCAFEBABE);
    cr_assert(eq(int, feed(ws, f, n, NULL), MQTTB_WS_OK));
    cr_assert(eq(sz, mqttb_ws_output_pending(ws), 2 + lens[i]));
    struct bytes wire = {0};
    drain_own(ws, &wire);
    struct sframe sf;
    cr_assert(eq(sz, sframe_parse(wire.p, wire.len, &sf), wire.len));
    cr_assert(eq(u8, sf.b0, 0x8A));
    cr_assert(eq(sz, sf.len, lens[i]));
    cr_assert(eq(int, memcmp(sf.payload, payload, lens[i]), 0));
    free(wire.p);
    /* A pong is not answered. */
    n = cframe(f, 0x8A, payload, lens[i], 0, true, 1);
    cr_assert(eq(int, feed(ws, f, n, NULL), MQTTB_WS_OK));
    cr_assert(eq(sz, mqttb_ws_output_pending(ws), 0));
    mqttb_ws_del(ws);
  }
}

/* RFC 6455, 5.5.3: pings faster than pongs go out: the latest is answered. */
Test(ws_frames, pings_not_yet_answered_coalesce) {
  mqttb_ws *ws = open_ws();
  uint8_t f[64];
  for (int i = 0; i < 1000; i++) {
    char p[8];
    int len = snprintf(p, sizeof p, "%d", i);
    size_t n = cframe(f, 0x89, p, (size_t)len, 0, true, (uint32_t)i);
    cr_assert(eq(int, feed(ws, f, n, NULL), MQTTB_WS_OK));
  }
  struct bytes wire = {0};
  drain_own(ws, &wire);
  cr_assert(eq(sz, wire.len, 5));
  cr_assert(eq(int,
               memcmp(wire.p,
                      "\x8a\x03"
                      "999",
                      5),
               0));
  free(wire.p);
  /* A pong written in part is finished, and the next one queued behind. */
  size_t n = cframe(f, 0x89, "abc", 3, 0, true, 1);
  feed(ws, f, n, NULL);
  mqttb_iovec out[8];
  size_t m;
  cr_assert(eq(int, mqttb_ws_output(ws, NULL, 0, out, 8), 1));
  cr_assert(eq(int, mqttb_ws_output_ack(ws, 2, &m), MQTTB_WS_OK));
  n = cframe(f, 0x89, "de", 2, 0, true, 1);
  feed(ws, f, n, NULL);
  n = cframe(f, 0x89, "fg", 2, 0, true, 1);
  feed(ws, f, n, NULL);
  struct bytes w2 = {0};
  drain_own(ws, &w2);
  cr_assert(eq(sz, w2.len, 3 + 4));
  cr_assert(eq(int,
               memcmp(w2.p,
                      "abc\x8a\x02"
                      "fg",
                      7),
               0));
  free(w2.p);
  mqttb_ws_del(ws);
}

/* RFC 6455, 5.5.1: a close frame is answered with one, echoing the code. */
Test(ws_frames, close_is_answered_and_ends) {
  uint8_t s[256];
  size_t n = cframe(s, 0x82, "\xe0\x00", 2, 0, true, 1);
  n += cframe(s + n, 0x88,
              "\x03\xe8"
              "bye \xc3\xa9",
              8, 0, true, 2);
  n += cframe(s + n, 0x82, "after", 5, 0, true, 3);
  mqttb_ws *ws = open_ws();
  struct bytes mqtt = {0};
  cr_assert(eq(int, feed(ws, s, n, &mqtt), MQTTB_WS_CLOSED));
  cr_assert(eq(sz, mqtt.len, 2), "what came before the close frame, not after");
  cr_assert(mqttb_ws_is_closed(ws));
  int code = 0;
  const char *why = mqttb_ws_close_reason(ws, &code);
  cr_assert(why != NULL);
  cr_assert(eq(int, code, 1000));
  struct bytes wire = {0};
  drain_own(ws, &wire);
  cr_assert(eq(sz, wire.len, 4));
  assert_close_frame(&wire, 0, 1000);
  free(wire.p);
  cr_assert(eq(int, feed(ws, s, n, &mqtt), MQTTB_WS_CLOSED));
  mqttb_ws_del(ws);

  /* No status: an empty close back. */
  ws = open_ws();
  n = cframe(s, 0x88, "", 0, 0, true, 2);
  cr_assert(eq(int, feed(ws, s, n, NULL), MQTTB_WS_CLOSED));
  mqttb_ws_close_reason(ws, &code);
  cr_assert(eq(int, code, MQTTB_WS_CLOSE_NO_STATUS));
  struct bytes w2 = {0};
  drain_own(ws, &w2);
  assert_close_frame(&w2, 0, 0);
  free(w2.p);
  free(mqtt.p);
  mqttb_ws_del(ws);

  /* Codes from the private range are valid, and echoed. */
  ws = open_ws();
  n = cframe(s, 0x88, "\x0f\xa0", 2, 0, true, 2);
  cr_assert(eq(int, feed(ws, s, n, NULL), MQTTB_WS_CLOSED));
  struct bytes w3 = {0};
  drain_own(ws, &w3);
  assert_close_frame(&w3, 0, 4000);
  free(w3.p);
  mqttb_ws_del(ws);
}

Test(ws_frames, bad_close_frames) {
  uint8_t s[64];
  size_t n = cframe(s, 0x88, "\x03", 1, 0, true, 2);
  assert_fails(s, n, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
  const char *codes[] = {"\x03\xe7", "\x03\xec", "\x03\xed", "\x03\xee", "\x03\xf7",
                         "\x07\xd0", "\x0b\xb7", "\x13\x88", "\x00\x00"};
  /* 999, 1004, 1005, 1006, 1015, 2000, 2999, 5000, 0 */
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    n = cframe(s, 0x88, codes[i], 2, 0, true, 2);
    assert_fails(s, n, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
  }
  const char *bad_utf8[] = {"\x03\xe8\xff", "\x03\xe8\xc0\x80", "\x03\xe8\xed\xa0\x80",
                            "\x03\xe8\xf4\x90\x80\x80", "\x03\xe8\xe2\x82"};
  const size_t lens[] = {3, 4, 5, 6, 4};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    n = cframe(s, 0x88, bad_utf8[i], lens[i], 0, true, 2);
    assert_fails(s, n, MQTTB_WS_CLOSE_INVALID_DATA);
  }
  /* Four-byte UTF-8 up to U+10FFFF passes. */
  mqttb_ws *ws = open_ws();
  n = cframe(s, 0x88, "\x03\xe8\xf4\x8f\xbf\xbf\xf0\x9f\x98\x80", 10, 0, true, 2);
  cr_assert(eq(int, feed(ws, s, n, NULL), MQTTB_WS_CLOSED));
  int code = 0;
  mqttb_ws_close_reason(ws, &code);
  cr_assert(eq(int, code, 1000));
  mqttb_ws_del(ws);
}

/* ---- frames to the client ---- */

/* A model of the library's output queue: the bytes pending, cut into
 * segments of given sizes, consumed by acknowledgement. */
struct model {
  uint8_t data[200000];
  size_t len, acked;
  size_t seg; /* segment size handed out */
};

static void model_fill(struct model *m, size_t len) {
  for (size_t i = 0; i < len; i++) {
    m->data[i] = (uint8_t)(i * 131 + (i >> 8));
  }
  m->len = len;
  m->acked = 0;
}

static int model_iov(struct model *m, mqttb_iovec *iov, int max) {
  int n = 0;
  size_t at = m->acked;
  while (at < m->len && n < max) {
    size_t len = m->len - at < m->seg ? m->len - at : m->seg;
    iov[n].base = m->data + at;
    iov[n].len = len;
    at += len;
    n++;
  }
  return n;
}

/* The wire parsed: every data frame is binary, FIN set; control frames
 * as they come. Returns the data payload and counts the frames. */
static void parse_wire(const struct bytes *wire, struct bytes *data, int *frames, int *pongs,
                       int *closes) {
  size_t at = 0;
  *frames = *pongs = *closes = 0;
  while (at < wire->len) {
    struct sframe f;
    size_t n = sframe_parse(wire->p + at, wire->len - at, &f);
    cr_assert(n > 0, "whole frames only, at %zu of %zu", at, wire->len);
    cr_assert(eq(int, *closes, 0), "nothing after a close frame");
    if (f.b0 == 0x82) {
      cr_assert(f.len > 0, "no empty data frames");
      bytes_add(data, f.payload, f.len);
      (*frames)++;
    } else if (f.b0 == 0x8A) {
      (*pongs)++;
    } else {
      cr_assert(eq(u8, f.b0, 0x88), "unexpected frame %02x", f.b0);
      (*closes)++;
    }
    at += n;
  }
}

/* One round of writing: output, a socket that takes up to @p cap bytes,
 * ack; returns the bytes written. */
static size_t write_round(mqttb_ws *ws, struct model *m, size_t cap, int out_max,
                          struct bytes *wire) {
  mqttb_iovec lib[64], out[64 + MQTTB_WS_IOV_EXTRA];
  int n = model_iov(m, lib, 64);
  int k = mqttb_ws_output(ws, lib, n, out, out_max);
  cr_assert(k >= 0 && k <= out_max);
  size_t w = 0;
  for (int i = 0; i < k && w < cap; i++) {
    cr_assert(out[i].len > 0, "no empty entries");
    size_t take = out[i].len < cap - w ? out[i].len : cap - w;
    bytes_add(wire, out[i].base, take);
    w += take;
  }
  size_t mq = 77;
  cr_assert(eq(int, mqttb_ws_output_ack(ws, w, &mq), MQTTB_WS_OK));
  cr_assert(mq <= m->len - m->acked);
  m->acked += mq;
  return w;
}

static struct model model;

Test(ws_output, header_forms) {
  const size_t lens[] = {1, 125, 126, 65535, 65536, 150000};
  const size_t hdr[] = {2, 2, 4, 4, 10, 10};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    mqttb_ws *ws = open_ws();
    model_fill(&model, lens[i]);
    model.seg = lens[i];
    mqttb_iovec lib[1], out[1 + MQTTB_WS_IOV_EXTRA];
    int n = model_iov(&model, lib, 1);
    cr_assert(eq(int, mqttb_ws_output(ws, lib, n, out, 1 + MQTTB_WS_IOV_EXTRA), 2));
    cr_assert(eq(sz, out[0].len, hdr[i]));
    const uint8_t *h = out[0].base;
    cr_assert(eq(u8, h[0], 0x82), "FIN, binary");
    struct bytes wire = {0};
    bytes_add(&wire, out[0].base, out[0].len);
    bytes_add(&wire, out[1].base, out[1].len);
    struct sframe f;
    cr_assert(eq(sz, sframe_parse(wire.p, wire.len, &f), wire.len));
    cr_assert(eq(sz, f.len, lens[i]));
    cr_assert(eq(ptr, (void *)out[1].base, model.data), "the library's memory, not a copy");
    free(wire.p);
    mqttb_ws_del(ws);
  }
}

/* Our bytes between the library's segments, which go out untouched. */
Test(ws_output, iovec_interleaving_zero_copy) {
  mqttb_ws *ws = ws_new_with(0, 0);
  model_fill(&model, 300);
  model.seg = 100;
  mqttb_iovec lib[8], out[8 + MQTTB_WS_IOV_EXTRA];
  int n = model_iov(&model, lib, 8);
  /* Before the handshake: nothing of the library's. */
  cr_assert(eq(int, mqttb_ws_output(ws, lib, n, out, 8), 0));
  /* The handshake and a ping in the same read: 101 and pong first. */
  uint8_t buf[512];
  size_t len = strlen(good_request);
  memcpy(buf, good_request, len);
  len += cframe(buf + len, 0x89, "P", 1, 0, true, 4);
  size_t mq;
  cr_assert(eq(int, mqttb_ws_recv(ws, buf, len, &mq), MQTTB_WS_OK));
  int k = mqttb_ws_output(ws, lib, n, out, 8 + MQTTB_WS_IOV_EXTRA);
  cr_assert(eq(int, k, 5));
  cr_assert(eq(sz, out[0].len, strlen(good_response) + 3));
  cr_assert(eq(int, memcmp(out[0].base, good_response, strlen(good_response)), 0));
  cr_assert(
      eq(int, memcmp((const uint8_t *)out[0].base + strlen(good_response), "\x8a\x01P", 3), 0));
  cr_assert(eq(sz, out[1].len, 4));
  cr_assert(eq(int, memcmp(out[1].base, "\x82\x7e\x01\x2c", 4), 0), "one frame of 300");
  for (int i = 0; i < 3; i++) {
    cr_assert(eq(ptr, (void *)out[2 + i].base, (void *)lib[i].base));
    cr_assert(eq(sz, out[2 + i].len, lib[i].len));
  }
  /* Peeking again gives the same. */
  mqttb_iovec again[8 + MQTTB_WS_IOV_EXTRA];
  cr_assert(eq(int, mqttb_ws_output(ws, lib, n, again, 8 + MQTTB_WS_IOV_EXTRA), 5));
  /* Written up to the middle of the second segment: a frame in progress
   * whose rest comes first, then a new frame for what is left. */
  size_t w = out[0].len + 4 + 150;
  cr_assert(eq(int, mqttb_ws_output_ack(ws, w, &mq), MQTTB_WS_OK));
  cr_assert(eq(sz, mq, 150));
  model.acked += mq;
  cr_assert(eq(int, mqttb_ws_output_ack(ws, 0, &mq), MQTTB_WS_ERR_INVALID), "acked once");
  model_fill(&model, 500); /* more output arrived behind */
  model.acked = 150;
  n = model_iov(&model, lib, 8);
  k = mqttb_ws_output(ws, lib, n, out, 8 + MQTTB_WS_IOV_EXTRA);
  /* lib: [150,250) [250,350) [350,450) [450,500): the frame needs 150 more:
   * [150,250) [250,300) | new header | [300,350) [350,450) [450,500). */
  cr_assert(eq(int, k, 6));
  cr_assert(eq(ptr, (void *)out[0].base, (void *)(model.data + 150)));
  cr_assert(eq(sz, out[0].len, 100));
  cr_assert(eq(sz, out[1].len, 50));
  cr_assert(eq(sz, out[2].len, 4));
  cr_assert(eq(int, memcmp(out[2].base, "\x82\x7e\x00\xc8", 4), 0), "200 more");
  cr_assert(eq(ptr, (void *)out[3].base, (void *)(model.data + 300)));
  cr_assert(eq(sz, out[3].len, 50));
  cr_assert(eq(sz, out[5].len, 50));
  /* A ping now: its pong waits for the frame in progress to end. */
  cr_assert(eq(int, mqttb_ws_output_ack(ws, 10, &mq), MQTTB_WS_OK));
  cr_assert(eq(sz, mq, 10));
  model.acked += mq;
  len = cframe(buf, 0x89, "Q", 1, 0, true, 4);
  cr_assert(eq(int, mqttb_ws_recv(ws, buf, len, &mq), MQTTB_WS_OK));
  cr_assert(eq(int, mqttb_ws_output_ack(ws, 0, &mq), MQTTB_WS_ERR_INVALID), "recv cancelled it");
  n = model_iov(&model, lib, 8);
  k = mqttb_ws_output(ws, lib, n, out, 8 + MQTTB_WS_IOV_EXTRA);
  /* [160,260) and [260,300) finish the frame. */
  cr_assert(eq(sz, out[0].len, 100));
  cr_assert(eq(sz, out[1].len, 40));
  cr_assert(eq(int, memcmp(out[2].base, "\x8a\x01Q", 3), 0));
  cr_assert(eq(sz, out[3].len, 4));
  mqttb_ws_del(ws);
}

/* Every offset the first write may stop at, then the rest in writes of
 * various sizes; the wire must be whole frames carrying the library's bytes
 * exactly, and the acknowledged counts must add up to them. */
Test(ws_output, partial_writes_at_every_offset) {
  const size_t totals[] = {7, 300, 70000};
  const size_t segs[] = {3, 100, 9000};
  const size_t rest_caps[3][3] = {{1, 5, 4096}, {1, 5, 4096}, {777, 4096, 100000}};
  for (size_t t = 0; t < 3; t++) {
    size_t total = totals[t];
    size_t wire_len = total + (total < 126 ? 2 : total <= 0xFFFF ? 4 : 10);
    size_t step = total > 1000 ? 997 : 1;
    for (size_t first = 0; first <= wire_len;
         first += (first < 20 || first + 20 > wire_len) ? 1 : step) {
      for (size_t r = 0; r < 3; r++) {
        mqttb_ws *ws = open_ws();
        model_fill(&model, total);
        model.seg = segs[t];
        struct bytes wire = {0};
        size_t w = write_round(ws, &model, first, 64 + MQTTB_WS_IOV_EXTRA, &wire);
        cr_assert(eq(sz, w, first));
        /* MQTT bytes acked: what of the payload made it. */
        size_t hl = wire_len - total;
        cr_assert(eq(sz, model.acked, first > hl ? first - hl : 0), "first %zu", first);
        if (first > 0 && first < hl) {
          cr_assert(eq(sz, mqttb_ws_output_pending(ws), hl - first), "header remainder kept");
        }
        int guard = 0;
        while (model.acked < model.len || mqttb_ws_output_pending(ws) > 0) {
          write_round(ws, &model, rest_caps[t][r], 64 + MQTTB_WS_IOV_EXTRA, &wire);
          guard++;
          cr_assert(guard < 200000);
        }
        struct bytes data = {0};
        int frames, pongs, closes;
        parse_wire(&wire, &data, &frames, &pongs, &closes);
        cr_assert(eq(sz, data.len, total));
        cr_assert(eq(int, memcmp(data.p, model.data, total), 0));
        free(data.p);
        free(wire.p);
        mqttb_ws_del(ws);
      }
    }
  }
}

/* Little room in the output array: still whole frames, eventually all. */
Test(ws_output, small_output_arrays) {
  for (int out_max = 1; out_max <= 6; out_max++) {
    for (size_t cap = 1; cap <= 200; cap += 37) {
      mqttb_ws *ws = open_ws();
      model_fill(&model, 1000);
      model.seg = 64;
      struct bytes wire = {0};
      uint8_t f[16];
      int guard = 0;
      while (model.acked < model.len || mqttb_ws_output_pending(ws) > 0) {
        if (guard % 7 == 3) {
          size_t n = cframe(f, 0x89, "z", 1, 0, true, 8);
          cr_assert(eq(int, feed(ws, f, n, NULL), MQTTB_WS_OK));
        }
        write_round(ws, &model, cap, out_max, &wire);
        guard++;
        cr_assert(guard < 100000);
      }
      struct bytes data = {0};
      int frames, pongs, closes;
      parse_wire(&wire, &data, &frames, &pongs, &closes);
      cr_assert(eq(sz, data.len, 1000));
      cr_assert(eq(int, memcmp(data.p, model.data, 1000), 0));
      cr_assert(pongs >= 1);
      cr_assert(eq(int, closes, 0));
      free(data.p);
      free(wire.p);
      mqttb_ws_del(ws);
    }
  }
}

Test(ws_output, ack_more_than_given_is_refused) {
  mqttb_ws *ws = open_ws();
  model_fill(&model, 10);
  model.seg = 10;
  mqttb_iovec lib[1], out[4];
  int n = model_iov(&model, lib, 1);
  cr_assert(eq(int, mqttb_ws_output(ws, lib, n, out, 4), 2));
  size_t mq = 5;
  cr_assert(eq(int, mqttb_ws_output_ack(ws, 13, &mq), MQTTB_WS_ERR_INVALID));
  cr_assert(eq(sz, mq, 0));
  cr_assert(eq(int, mqttb_ws_output_ack(ws, 12, &mq), MQTTB_WS_OK), "still given");
  cr_assert(eq(sz, mq, 10));
  cr_assert(eq(int, mqttb_ws_output_ack(ws, 0, NULL), MQTTB_WS_ERR_INVALID));
  mqttb_ws_del(ws);
}

/* The broker closes: its output still goes out, then the close frame. */
Test(ws_output, server_close_after_library_output) {
  mqttb_ws *ws = open_ws();
  model_fill(&model, 500);
  model.seg = 100;
  struct bytes wire = {0};
  write_round(ws, &model, 50, 64, &wire);
  cr_assert(eq(int, mqttb_ws_close(ws, MQTTB_WS_CLOSE_NORMAL), MQTTB_WS_OK));
  cr_assert(eq(int, mqttb_ws_close(ws, MQTTB_WS_CLOSE_GOING_AWAY), MQTTB_WS_OK),
            "first one counts");
  cr_assert(not(mqttb_ws_is_closed(ws)), "not before the library is drained");
  int guard = 0;
  while (!mqttb_ws_is_closed(ws) || mqttb_ws_output_pending(ws) > 0) {
    write_round(ws, &model, 77, 64, &wire);
    guard++;
    cr_assert(guard < 1000);
  }
  mqttb_iovec out[4];
  cr_assert(eq(int, mqttb_ws_output(ws, NULL, 0, out, 4), 0), "nothing after the close");
  struct bytes data = {0};
  int frames, pongs, closes;
  parse_wire(&wire, &data, &frames, &pongs, &closes);
  cr_assert(eq(sz, data.len, 500));
  cr_assert(eq(int, closes, 1));
  cr_assert(eq(u8, wire.p[wire.len - 4], 0x88));
  cr_assert(eq(int, wire.p[wire.len - 2] << 8 | wire.p[wire.len - 1], 1000));
  int code = 0;
  cr_assert(mqttb_ws_close_reason(ws, &code) != NULL);
  cr_assert(eq(int, code, 1000));
  /* Input is no longer taken. */
  uint8_t f[16];
  size_t n = cframe(f, 0x82, "x", 1, 0, true, 8);
  cr_assert(eq(int, feed(ws, f, n, NULL), MQTTB_WS_CLOSED));
  free(data.p);
  free(wire.p);
  mqttb_ws_del(ws);
}

/* The client broke the protocol while a frame of ours was half written:
 * that frame is finished, then the close frame; no new data frame. */
Test(ws_output, failure_finishes_frame_in_progress_then_closes) {
  mqttb_ws *ws = open_ws();
  model_fill(&model, 400);
  model.seg = 100;
  struct bytes wire = {0};
  write_round(ws, &model, 150, 64, &wire);
  cr_assert(eq(sz, model.acked, 146));
  uint8_t f[16];
  size_t n = cframe(f, 0x82, "x", 1, 0, false, 0);
  cr_assert(eq(int, feed(ws, f, n, NULL), MQTTB_WS_CLOSED));
  model_fill(&model, 900); /* the library queued more meanwhile */
  model.acked = 146;
  int guard = 0;
  for (;;) {
    size_t before = wire.len;
    write_round(ws, &model, 33, 64, &wire);
    if (wire.len == before) {
      break;
    }
    guard++;
    cr_assert(guard < 1000);
  }
  cr_assert(eq(sz, model.acked, 400), "the frame in progress, no more");
  struct bytes data = {0};
  int frames, pongs, closes;
  parse_wire(&wire, &data, &frames, &pongs, &closes);
  cr_assert(eq(sz, data.len, 400));
  cr_assert(eq(int, frames, 1));
  cr_assert(eq(int, closes, 1));
  free(data.p);
  free(wire.p);
  mqttb_ws_del(ws);
}

/* After the client's close frame, data is no longer framed. */
Test(ws_output, no_data_after_client_close) {
  mqttb_ws *ws = open_ws();
  uint8_t f[16];
  size_t n = cframe(f, 0x88, "\x03\xe9", 2, 0, true, 5);
  cr_assert(eq(int, feed(ws, f, n, NULL), MQTTB_WS_CLOSED));
  model_fill(&model, 50);
  model.seg = 50;
  struct bytes wire = {0};
  write_round(ws, &model, 1000, 64, &wire);
  cr_assert(eq(sz, model.acked, 0));
  assert_close_frame(&wire, 0, 1001);
  write_round(ws, &model, 1000, 64, &wire);
  cr_assert(eq(sz, wire.len, 4));
  free(wire.p);
  mqttb_ws_del(ws);
}

/* The library shows fewer segments than the frame in progress still needs
 * (its iovmax): the pong that came meanwhile waits until the frame ends. */
Test(ws_output, control_frame_waits_for_frame_spread_over_calls) {
  mqttb_ws *ws = open_ws();
  model_fill(&model, 100);
  model.seg = 10;
  struct bytes wire = {0};
  mqttb_iovec lib[16], out[16 + MQTTB_WS_IOV_EXTRA];
  int n = model_iov(&model, lib, 16);
  cr_assert(eq(int, n, 10));
  int k = mqttb_ws_output(ws, lib, n, out, 16 + MQTTB_WS_IOV_EXTRA);
  cr_assert(eq(int, k, 11));
  bytes_add(&wire, out[0].base, out[0].len);
  bytes_add(&wire, out[1].base, 5);
  size_t mq;
  cr_assert(eq(int, mqttb_ws_output_ack(ws, 2 + 5, &mq), MQTTB_WS_OK));
  cr_assert(eq(sz, mq, 5));
  model.acked += mq;
  uint8_t f[16];
  size_t fl = cframe(f, 0x89, "w", 1, 0, true, 8);
  cr_assert(eq(int, feed(ws, f, fl, NULL), MQTTB_WS_OK));
  while (model.acked < model.len || mqttb_ws_output_pending(ws) > 0) {
    n = model_iov(&model, lib, 3);
    k = mqttb_ws_output(ws, lib, n, out, 16 + MQTTB_WS_IOV_EXTRA);
    cr_assert(k > 0);
    size_t w = 0;
    for (int i = 0; i < k; i++) {
      bytes_add(&wire, out[i].base, out[i].len);
      w += out[i].len;
    }
    cr_assert(eq(int, mqttb_ws_output_ack(ws, w, &mq), MQTTB_WS_OK));
    model.acked += mq;
  }
  struct bytes data = {0};
  int frames, pongs, closes;
  parse_wire(&wire, &data, &frames, &pongs, &closes);
  cr_assert(eq(sz, data.len, 100));
  cr_assert(eq(int, memcmp(data.p, model.data, 100), 0));
  cr_assert(eq(int, frames, 1));
  cr_assert(eq(int, pongs, 1));
  cr_assert(eq(int, memcmp(wire.p + wire.len - 3, "\x8a\x01w", 3), 0), "after the frame");
  free(data.p);
  free(wire.p);
  mqttb_ws_del(ws);
}

/* The bytes of an output, concatenated. */
static void gather(const mqttb_iovec *out, int k, struct bytes *b) {
  for (int i = 0; i < k; i++) {
    bytes_add(b, out[i].base, out[i].len);
  }
}

/* Not acknowledged (a TLS WANT_WRITE, EAGAIN): the next output gives the
 * same bytes first, whatever came meanwhile (cli/tls.h's retry rule). */
Test(ws_output, retry_without_ack_gives_the_same_bytes_first) {
  mqttb_ws *ws = open_ws();
  model_fill(&model, 300);
  model.seg = 100;
  mqttb_iovec lib[16], out[16 + MQTTB_WS_IOV_EXTRA];
  int n = model_iov(&model, lib, 16);
  int k = mqttb_ws_output(ws, lib, n, out, 16 + MQTTB_WS_IOV_EXTRA);
  struct bytes first = {0};
  gather(out, k, &first);
  cr_assert(eq(sz, first.len, 4 + 300));
  /* Meanwhile: a ping, and more output from the library. */
  uint8_t f[16];
  size_t fl = cframe(f, 0x89, "r", 1, 0, true, 8);
  cr_assert(eq(int, feed(ws, f, fl, NULL), MQTTB_WS_OK));
  model_fill(&model, 500);
  model.seg = 70; /* cut differently this time */
  n = model_iov(&model, lib, 16);
  k = mqttb_ws_output(ws, lib, n, out, 16 + MQTTB_WS_IOV_EXTRA);
  struct bytes again = {0};
  gather(out, k, &again);
  cr_assert(again.len >= first.len);
  cr_assert(eq(int, memcmp(again.p, first.p, first.len), 0), "the same bytes first");
  /* All of it written: then the pong, then a frame for the other 200. */
  size_t mq;
  cr_assert(eq(int, mqttb_ws_output_ack(ws, again.len, &mq), MQTTB_WS_OK));
  cr_assert(eq(sz, mq, again.len - 4));
  model.acked += mq;
  struct bytes wire = {0};
  bytes_add(&wire, again.p, again.len);
  while (model.acked < model.len || mqttb_ws_output_pending(ws) > 0) {
    write_round(ws, &model, 1000, 16 + MQTTB_WS_IOV_EXTRA, &wire);
  }
  struct bytes data = {0};
  int frames, pongs, closes;
  parse_wire(&wire, &data, &frames, &pongs, &closes);
  cr_assert(eq(sz, data.len, 500));
  cr_assert(eq(int, memcmp(data.p, model.data, 500), 0));
  cr_assert(eq(int, pongs, 1));
  cr_assert(eq(int, memcmp(wire.p + first.len, "\x8a\x01r", 3), 0), "the pong after the frame");
  free(first.p);
  free(again.p);
  free(wire.p);
  free(data.p);
  mqttb_ws_del(ws);
}

/* A pong given and not yet written is not replaced by a later one. */
Test(ws_output, given_pong_is_not_replaced) {
  mqttb_ws *ws = open_ws();
  uint8_t f[16];
  size_t fl = cframe(f, 0x89, "a", 1, 0, true, 8);
  feed(ws, f, fl, NULL);
  mqttb_iovec out[4];
  cr_assert(eq(int, mqttb_ws_output(ws, NULL, 0, out, 4), 1));
  cr_assert(eq(int,
               memcmp(out[0].base,
                      "\x8a\x01"
                      "a",
                      3),
               0));
  fl = cframe(f, 0x89, "b", 1, 0, true, 8);
  feed(ws, f, fl, NULL);
  fl = cframe(f, 0x89, "c", 1, 0, true, 8);
  feed(ws, f, fl, NULL);
  struct bytes wire = {0};
  drain_own(ws, &wire);
  cr_assert(eq(sz, wire.len, 6));
  cr_assert(eq(int,
               memcmp(wire.p,
                      "\x8a\x01"
                      "a\x8a\x01"
                      "c",
                      6),
               0));
  free(wire.p);
  mqttb_ws_del(ws);
}

/* The client fails the connection while a data frame is given but not
 * written: it still goes out (a layer below may hold it), then the close
 * frame, and nothing after. */
Test(ws_output, given_frame_survives_a_failure_before_the_close) {
  mqttb_ws *ws = open_ws();
  model_fill(&model, 50);
  model.seg = 50;
  mqttb_iovec lib[4], out[4 + MQTTB_WS_IOV_EXTRA];
  int n = model_iov(&model, lib, 4);
  int k = mqttb_ws_output(ws, lib, n, out, 4 + MQTTB_WS_IOV_EXTRA);
  struct bytes first = {0};
  gather(out, k, &first);
  uint8_t f[16];
  size_t fl = cframe(f, 0x82, "x", 1, 0, false, 0);
  cr_assert(eq(int, feed(ws, f, fl, NULL), MQTTB_WS_CLOSED));
  struct bytes wire = {0};
  for (int guard = 0; guard < 100; guard++) {
    size_t before = wire.len;
    write_round(ws, &model, 7, 4 + MQTTB_WS_IOV_EXTRA, &wire);
    if (wire.len == before) {
      break;
    }
  }
  cr_assert(eq(int, memcmp(wire.p, first.p, first.len), 0));
  struct bytes data = {0};
  int frames, pongs, closes;
  parse_wire(&wire, &data, &frames, &pongs, &closes);
  cr_assert(eq(sz, data.len, 50));
  cr_assert(eq(int, closes, 1));
  assert_close_frame(&wire, first.len, MQTTB_WS_CLOSE_PROTOCOL_ERROR);
  free(first.p);
  free(wire.p);
  free(data.p);
  mqttb_ws_del(ws);
}
