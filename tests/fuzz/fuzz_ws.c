/* SPDX-License-Identifier: MIT */
/* mqttb's WebSocket layer (cli/ws.c) on arbitrary client bytes, with a
 * model of the library's output queue and a socket that takes arbitrary
 * amounts. Input: a flags byte, then steps of [length][write size][bytes].
 * Flags: bit 0 puts a valid opening handshake first (so that the frame
 * decoder is reached at once), bit 1 makes the frame limit 64 bytes, bit 2
 * restricts writes to 3 entries, bit 3 has the server close halfway, bit
 * 4 lets a write size with bit 6 set stand for a TLS WANT_WRITE: nothing
 * written or acknowledged, and the next output must start with the same
 * bytes.
 * Checked: no crash, leak or bad access; MQTT bytes never outnumber the
 * input; and everything written, parsed back, is the handshake response
 * followed by whole well-formed server frames whose binary payload is the
 * library's bytes exactly as acknowledged, with nothing after a close
 * frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char handshake[] = "GET /mqtt HTTP/1.1\r\n"
                                "Host: fuzz\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Protocol: mqtt\r\n"
                                "Sec-WebSocket-Version: 13\r\n"
                                "\r\n";

#define LIB_MAX 65536

/* The library's output: byte i of the stream is lib_byte(i). */
static uint8_t lib_byte(uint64_t i) {
  return (uint8_t)(i * 167 + (i >> 9));
}

/* Parses what was written, incrementally. */
struct wire {
  int phase; /* 0: the HTTP response, 1: frames, 2: after a close, 3: an HTTP error */
  uint8_t hdr[10];
  size_t hdr_have, hdr_need;
  uint64_t left;
  uint8_t opcode;
  uint64_t payload_seen; /* binary payload bytes, checked against lib_byte */
  size_t http_match;     /* bytes of "\r\n\r\n" seen */
  size_t http_len;
};

static void wire_byte(struct wire *w, uint8_t b) {
  if (w->phase == 0) {
    static const char ok[] = "HTTP/1.1 101 ";
    if (w->http_len < sizeof ok - 1 && b != (uint8_t)ok[w->http_len]) {
      w->phase = 3; /* an error response: nothing may follow it, by design */
      return;
    }
    w->http_len++;
    w->http_match = b == "\r\n\r\n"[w->http_match] ? w->http_match + 1 : (b == '\r' ? 1 : 0);
    if (w->http_match == 4) {
      w->phase = 1;
      w->hdr_have = 0;
      w->hdr_need = 2;
    }
    return;
  }
  if (w->phase == 3) {
    return;
  }
  if (w->phase == 2) {
    abort(); /* a byte after the close frame */
  }
  if (w->left > 0) {
    if (w->opcode == 0x2) {
      if (b != lib_byte(w->payload_seen)) {
        abort();
      }
      w->payload_seen++;
    }
    w->left--;
    if (w->left == 0 && w->opcode == 0x8) {
      w->phase = 2;
    }
    return;
  }
  w->hdr[w->hdr_have++] = b;
  if (w->hdr_have == 2) {
    if ((w->hdr[0] & 0xF0) != 0x80 || (w->hdr[1] & 0x80) != 0) {
      abort(); /* FIN always, no RSV, never masked */
    }
    w->opcode = w->hdr[0] & 0x0F;
    if (w->opcode != 0x2 && w->opcode != 0x8 && w->opcode != 0xA) {
      abort();
    }
    unsigned l7 = w->hdr[1] & 0x7F;
    w->hdr_need = l7 == 126 ? 4 : l7 == 127 ? 10 : 2;
    if (w->opcode != 0x2 && l7 > 125) {
      abort();
    }
  }
  if (w->hdr_have < w->hdr_need) {
    return;
  }
  uint64_t len = w->hdr[1] & 0x7F;
  if (w->hdr_need > 2) {
    len = 0;
    for (size_t i = 2; i < w->hdr_need; i++) {
      len = len << 8 | w->hdr[i];
    }
    if ((w->hdr_need == 4 && len < 126) || (w->hdr_need == 10 && len <= 0xFFFF)) {
      abort(); /* not the shortest form */
    }
  }
  if (w->opcode == 0x2 && len == 0) {
    abort(); /* no empty data frames */
  }
  w->hdr_have = 0;
  w->hdr_need = 2;
  w->left = len;
  if (len == 0 && w->opcode == 0x8) {
    w->phase = 2;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) {
    return 0;
  }
  uint8_t flags = data[0];
  mqttb_ws_settings s;
  mqttb_ws_settings_default(&s);
  if (flags & 2) {
    s.max_frame = 64;
  }
  mqttb_ws *ws = mqttb_ws_new(&s);
  if (ws == NULL) {
    abort();
  }
  uint64_t produced = 0, acked = 0;
  struct wire w = {0};
  uint8_t buf[512];
  int out_max = (flags & 4) ? 3 : 16 + MQTTB_WS_IOV_EXTRA;
  bool opened = false, closed_server = false;
  static uint8_t held[LIB_MAX + 4096];
  size_t held_len = 0, held_segsz = 0;

  size_t pos = 1;
  if (flags & 1) {
    memcpy(buf, handshake, sizeof handshake - 1);
    size_t m = 0;
    if (mqttb_ws_recv(ws, buf, sizeof handshake - 1, &m) != MQTTB_WS_OK || m != 0) {
      abort();
    }
  }
  while (pos < size) {
    size_t len = data[pos++];
    uint8_t wsize = pos < size ? data[pos++] : 0;
    if (len > size - pos) {
      len = size - pos;
    }
    memcpy(buf, data + pos, len);
    pos += len;
    size_t m = 0;
    int rc = mqttb_ws_recv(ws, buf, len, &m);
    if (rc != MQTTB_WS_OK && rc != MQTTB_WS_CLOSED) {
      abort();
    }
    if (m > len || (rc == MQTTB_WS_CLOSED) != mqttb_ws_is_closed(ws)) {
      abort();
    }
    if (mqttb_ws_handshake_done(ws) && !opened) {
      opened = true;
      if (mqttb_ws_subprotocol(ws) == NULL || mqttb_ws_path(ws) == NULL) {
        abort();
      }
    }
    if (mqttb_ws_is_closed(ws)) {
      int code = 0;
      if (mqttb_ws_close_reason(ws, &code) == NULL || code < 400) {
        abort();
      }
    }
    /* The library answers the MQTT bytes with as many bytes of its own. */
    if (opened && produced - acked + m + (wsize & 7) <= LIB_MAX) {
      produced += m + (wsize & 7);
    }
    if ((flags & 8) && !closed_server && pos > size / 2) {
      closed_server = true;
      if (mqttb_ws_close(ws, MQTTB_WS_CLOSE_NORMAL) != MQTTB_WS_OK) {
        abort();
      }
    }
    /* One write: the library's pending bytes in segments of 1 to 64. */
    mqttb_iovec liov[16], out[16 + MQTTB_WS_IOV_EXTRA];
    static uint8_t seg[LIB_MAX];
    int n = 0;
    uint64_t at = acked;
    /* A retry sees the library's output cut as before (the library's own
     * segments stay as they are until acknowledged), and maybe more. */
    size_t segsz = held_len > 0 ? held_segsz : (size_t)(wsize >> 3) * 2 + 1;
    size_t off = 0;
    while (at < produced && n < 16 && off < sizeof seg) {
      size_t l = produced - at < segsz ? (size_t)(produced - at) : segsz;
      if (l > sizeof seg - off) {
        l = sizeof seg - off;
      }
      for (size_t i = 0; i < l; i++) {
        seg[off + i] = lib_byte(at + i);
      }
      liov[n].base = seg + off;
      liov[n].len = l;
      off += l;
      at += l;
      n++;
    }
    int k = mqttb_ws_output(ws, liov, n, out, out_max);
    if (k < 0 || k > out_max) {
      abort();
    }
    size_t given = 0;
    for (int i = 0; i < k; i++) {
      given += out[i].len;
    }
    if (held_len > 0) {
      /* The retry: the bytes held below come first. */
      size_t hat = 0;
      for (int i = 0; i < k && hat < held_len; i++) {
        size_t t = out[i].len < held_len - hat ? out[i].len : held_len - hat;
        if (memcmp(out[i].base, held + hat, t) != 0) {
          abort();
        }
        hat += t;
      }
      if (hat < held_len) {
        abort(); /* a shorter retry */
      }
      held_len = 0;
    }
    if ((flags & 16) && (wsize & 0x40) && given <= sizeof held) {
      for (int i = 0; i < k; i++) {
        memcpy(held + held_len, out[i].base, out[i].len);
        held_len += out[i].len;
      }
      held_segsz = segsz;
      continue; /* WANT_WRITE: the bytes are held, nothing is acknowledged */
    }
    size_t cap = wsize == 255 ? SIZE_MAX : (size_t)wsize * 5;
    size_t written = 0;
    for (int i = 0; i < k && written < cap; i++) {
      size_t t = out[i].len < cap - written ? out[i].len : cap - written;
      for (size_t j = 0; j < t; j++) {
        wire_byte(&w, ((const uint8_t *)out[i].base)[j]);
      }
      written += t;
    }
    size_t mq = 0;
    if (mqttb_ws_output_ack(ws, written, &mq) != MQTTB_WS_OK || mq > produced - acked) {
      abort();
    }
    acked += mq;
    /* Binary payload written is exactly what was acknowledged. */
    if (w.phase != 3 && w.payload_seen != acked) {
      abort();
    }
  }
  mqttb_ws_del(ws);
  return 0;
}
