/*
 * mqttb CLI: MQTT over WebSocket, server side (RFC 6455); see ws.h for what
 * is accepted and why. Written from RFC 6455, RFC 7230 and the MQTT
 * specifications' section 6.
 *
 * SPDX-License-Identifier: MIT
 */
#include "ws.h"

#include "sha1.h"
#include "sha512.h" /* base64 */

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 6455, 1.3 and 4.2.2. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Own output: the handshake response or, once open, at most two pongs
 * (one partly written, one waiting) and a close frame, 2 + 125 bytes each
 * at most, behind a 101 response of under 200 bytes. */
#define CTL_CAP 1024u
#define CTL_FRAME_MAX (2u + 125u)

enum {
  OP_CONT = 0x0,
  OP_TEXT = 0x1,
  OP_BINARY = 0x2,
  OP_CLOSE = 0x8,
  OP_PING = 0x9,
  OP_PONG = 0xA
};

enum ws_state { WS_HTTP, WS_OPEN, WS_CLOSED };

struct mqttb_ws {
  size_t max_request;
  uint64_t max_frame;
  const char *const *origins;
  size_t origin_count;

  enum ws_state state;
  /* Why it closed, and the HTTP status or close code (ws.h). */
  const char *reason;
  int reason_code;
  /* No new data frame may start: the client closed, the protocol broke,
   * or the close frame is queued. */
  bool data_stopped;
  /* mqttb_ws_close was called: the close frame to send once the library
   * has nothing left (0: not called). */
  int close_code;

  /* The request as read so far (freed once handled); it starts at
   * req_start (empty lines before it skipped), its current line at
   * line_start. */
  char *req;
  size_t req_len, req_cap, req_start, line_start;
  char *path;
  const char *subprotocol; /* a constant: "mqtt" or "mqttv3.1" */
  char *origin;

  /* The frame being read: its header (up to 2 + 8 + 4 bytes) while
   * !in_payload, then its payload. */
  uint8_t hdr[14];
  unsigned hdr_have, hdr_need;
  bool in_payload;
  uint8_t opcode;
  bool fin;
  uint64_t left;
  uint8_t mask[4];
  unsigned mask_off;
  /* A fragmented data message has begun and not yet ended. */
  bool in_message;
  /* A control frame's payload, unmasked. */
  uint8_t cbuf[125];
  size_t cbuf_len;

  /* Own bytes to send, [ctl_head, ctl_tail); the last pong queued starts
   * at pong_at (pong_len bytes) and may be replaced while none of it is
   * written. */
  uint8_t ctl[CTL_CAP];
  size_t ctl_head, ctl_tail;
  bool pong_queued;
  size_t pong_at, pong_len;

  /* Output, in this order: the data frame being written (its header
   * written up to fhdr_off, frame_left payload bytes to go); control bytes;
   * a new data frame. What mqttb_ws_output gave is committed until the
   * next acknowledgement, so that a retry after a lower layer's WANT_WRITE
   * gives the same bytes first (cli/tls.h): the first ctl_given control
   * bytes and the new frame once given (nhdr, declaring nf_len payload
   * bytes) stay where they are, new control bytes wait behind them. */
  uint8_t fhdr[10];
  size_t fhdr_len, fhdr_off;
  uint64_t frame_left;
  size_t ctl_given;
  bool nf_given;
  uint8_t nhdr[10];
  size_t nhdr_len;
  uint64_t nf_len;
  /* Bytes the last mqttb_ws_output gave: what an ack may cover. */
  bool given;
  size_t given_len;
};

/* ---- helpers ---- */

static bool code_sendable(int code) {
  /* RFC 6455, 7.4.1 and 7.4.2, and the IANA registry (1012-1014): 1004 is
   * reserved, 1005, 1006 and 1015 must never be sent. */
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

/* RFC 3629: shortest forms only, no surrogates, nothing past U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t extra;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) {
        lo = 0xA0;
      } else if (c == 0xED) {
        hi = 0x9F;
      }
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) {
        lo = 0x90;
      } else if (c == 0xF4) {
        hi = 0x8F;
      }
    } else {
      return false;
    }
    if (n - i <= extra) {
      return false;
    }
    if (s[i + 1] < lo || s[i + 1] > hi) {
      return false;
    }
    for (size_t k = 2; k <= extra; k++) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) {
        return false;
      }
    }
    i += extra + 1;
  }
  return true;
}

/* XOR with the masking key (RFC 6455, 5.3), from src to dst with dst <= src
 * (in place as the frame headers drop out): each block is read before it is
 * written, and never written past what was read. */
static void unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
                   unsigned *off) {
  unsigned o = *off;
  size_t i = 0;
  if (n >= 16) {
    uint8_t m8[8];
    for (unsigned k = 0; k < 8; k++) {
      m8[k] = key[(o + k) & 3u];
    }
    uint64_t m;
    memcpy(&m, m8, sizeof m);
    for (; i + 8 <= n; i += 8) {
      uint64_t v;
      memcpy(&v, src + i, sizeof v);
      v ^= m;
      memcpy(dst + i, &v, sizeof v);
    }
  }
  for (; i < n; i++) {
    dst[i] = (uint8_t)(src[i] ^ key[(o + i) & 3u]);
  }
  *off = (unsigned)((o + n) & 3u);
}

/* A frame header, unmasked (RFC 6455, 5.2): returns its length. */
static size_t frame_header(uint8_t out[10], uint8_t first, uint64_t len) {
  out[0] = first;
  if (len < 126) {
    out[1] = (uint8_t)len;
    return 2;
  }
  if (len <= 0xFFFF) {
    out[1] = 126;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; i++) {
    out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
  }
  return 10;
}

/* Room for @p n more own bytes, moving what is queued to the front. */
static bool ctl_reserve(mqttb_ws *ws, size_t n) {
  if (ws->ctl_tail + n <= CTL_CAP) {
    return true;
  }
  size_t head = ws->ctl_head;
  memmove(ws->ctl, ws->ctl + head, ws->ctl_tail - head);
  ws->ctl_tail -= head;
  ws->ctl_head = 0;
  if (ws->pong_queued) {
    if (ws->pong_at >= head) {
      ws->pong_at -= head;
    } else {
      ws->pong_queued = false; /* partly written: no longer replaceable */
    }
  }
  return ws->ctl_tail + n <= CTL_CAP;
}

static void ctl_put(mqttb_ws *ws, const void *p, size_t n) {
  memcpy(ws->ctl + ws->ctl_tail, p, n);
  ws->ctl_tail += n;
}

/* The WebSocket is over; nothing more is read. */
static void end(mqttb_ws *ws, const char *reason, int code) {
  ws->state = WS_CLOSED;
  ws->reason = reason;
  ws->reason_code = code;
  ws->data_stopped = true;
  free(ws->req);
  ws->req = NULL;
  ws->req_len = ws->req_cap = 0;
}

/* Queue a close frame: @p code and @p text, or no body when @p code is 0. */
static void queue_close(mqttb_ws *ws, int code, const char *text) {
  size_t tlen = text != NULL ? strlen(text) : 0;
  uint8_t f[CTL_FRAME_MAX];
  size_t n = 0;
  assert(tlen <= 123);
  if (code != 0) {
    f[2] = (uint8_t)(code >> 8);
    f[3] = (uint8_t)code;
    if (tlen > 0) {
      memcpy(f + 4, text, tlen);
    }
    n = 2 + tlen;
  }
  f[0] = 0x80 | OP_CLOSE;
  f[1] = (uint8_t)n;
  ws->data_stopped = true;
  if (ctl_reserve(ws, 2 + n)) {
    ctl_put(ws, f, 2 + n);
  }
  /* else (not reachable by CTL_CAP's bound): the connection closes without
   * a close frame, which RFC 6455 7.1.7 allows when failing. */
}

/* Fail the WebSocket Connection (RFC 6455, 7.1.7): a close frame with the
 * reason, then nothing more is read. Returns false, for the caller to stop. */
static bool fail(mqttb_ws *ws, int code, const char *reason) {
  queue_close(ws, code, reason);
  end(ws, reason, code);
  return false;
}

static void queue_pong(mqttb_ws *ws, const uint8_t *payload, size_t len) {
  /* RFC 6455, 5.5.3: answering only the latest of several pings is
   * allowed; a pong already given to be written stays. */
  if (ws->pong_queued && ws->pong_at >= ws->ctl_head + ws->ctl_given &&
      ws->pong_at + ws->pong_len == ws->ctl_tail) {
    ws->ctl_tail = ws->pong_at;
  }
  ws->pong_queued = false;
  if (!ctl_reserve(ws, 2 + len)) {
    return; /* not reachable by CTL_CAP's bound; a pong is only a courtesy */
  }
  uint8_t h[2] = {0x80 | OP_PONG, (uint8_t)len};
  ws->pong_at = ws->ctl_tail;
  ws->pong_len = 2 + len;
  ws->pong_queued = true;
  ctl_put(ws, h, 2);
  ctl_put(ws, payload, len);
}

/* ---- opening handshake ---- */

static bool is_tchar(unsigned char c) {
  /* RFC 7230, 3.2.6. */
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

static bool ieq(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen != blen) {
    return false;
  }
  for (size_t i = 0; i < alen; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') {
      x = (char)(x - 'A' + 'a');
    }
    if (y >= 'A' && y <= 'Z') {
      y = (char)(y - 'A' + 'a');
    }
    if (x != y) {
      return false;
    }
  }
  return true;
}

/* Calls @p fn on each non-empty element of a comma list (RFC 7230, 7),
 * spaces around it trimmed, until it returns true; true if one did. */
static bool list_any(const char *v, size_t n, bool (*fn)(const char *, size_t, void *), void *arg) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && v[j] != ',') {
      j++;
    }
    size_t a = i, b = j;
    while (a < b && is_ows(v[a])) {
      a++;
    }
    while (b > a && is_ows(v[b - 1])) {
      b--;
    }
    if (b > a && fn(v + a, b - a, arg)) {
      return true;
    }
    i = j + 1;
  }
  return false;
}

static bool elem_ieq(const char *e, size_t n, void *word) {
  return ieq(e, n, word);
}

static bool elem_subprotocol(const char *e, size_t n, void *arg) {
  /* Subprotocol names compare case-sensitively (RFC 6455, 11.3.4 refers to
   * tokens registered as they are spelt; Mosquitto uses strcmp). */
  static const char *const known[] = {"mqtt", "mqttv3.1"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    if (n == strlen(known[i]) && memcmp(e, known[i], n) == 0) {
      *(const char **)arg = known[i];
      return true;
    }
  }
  return false;
}

static const char *status_text(int status) {
  switch (status) {
  case 400:
    return "Bad Request";
  case 403:
    return "Forbidden";
  case 405:
    return "Method Not Allowed";
  case 426:
    return "Upgrade Required";
  case 431:
    return "Request Header Fields Too Large";
  default:
    return "Service Unavailable";
  }
}

/* Refuse the handshake with an HTTP error the caller writes before closing. */
static void refuse(mqttb_ws *ws, int status, const char *reason) {
  const char *extra = "";
  if (status == 405) {
    extra = "Allow: GET\r\n";
  } else if (status == 426) {
    extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
  }
  char resp[512];
  int n = snprintf(resp, sizeof resp,
                   "HTTP/1.1 %d %s\r\n"
                   "Connection: close\r\n"
                   "Content-Type: text/plain\r\n"
                   "Content-Length: %zu\r\n"
                   "%s"
                   "\r\n"
                   "%s\n",
                   status, status_text(status), strlen(reason) + 1, extra, reason);
  assert(n > 0 && (size_t)n < sizeof resp);
  if (n > 0 && (size_t)n < sizeof resp && ctl_reserve(ws, (size_t)n)) {
    ctl_put(ws, resp, (size_t)n);
  }
  end(ws, reason, status);
}

/* What the header fields said (pointers into the request). */
struct request {
  int host_count;
  bool upgrade, connection;
  int key_count, version_count, origin_count;
  const char *key, *version, *origin;
  size_t key_len, version_len, origin_len;
  const char *subprotocol;
};

static void header_field(struct request *r, const char *name, size_t nlen, const char *v,
                         size_t vlen) {
  if (ieq(name, nlen, "Host")) {
    r->host_count++;
  } else if (ieq(name, nlen, "Upgrade")) {
    r->upgrade = r->upgrade || list_any(v, vlen, elem_ieq, "websocket");
  } else if (ieq(name, nlen, "Connection")) {
    r->connection = r->connection || list_any(v, vlen, elem_ieq, "upgrade");
  } else if (ieq(name, nlen, "Sec-WebSocket-Key")) {
    r->key_count++;
    r->key = v;
    r->key_len = vlen;
  } else if (ieq(name, nlen, "Sec-WebSocket-Version")) {
    r->version_count++;
    r->version = v;
    r->version_len = vlen;
  } else if (ieq(name, nlen, "Sec-WebSocket-Protocol")) {
    if (r->subprotocol == NULL) {
      list_any(v, vlen, elem_subprotocol, &r->subprotocol);
    }
  } else if (ieq(name, nlen, "Origin")) {
    r->origin_count++;
    r->origin = v;
    r->origin_len = vlen;
  }
}

static char *copy_str(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p != NULL) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* The request line: "GET" SP request-target SP "HTTP/1." DIGIT (RFC 7230,
 * 3.1.1; RFC 6455, 4.2.1 items 1 and 2). False when refused. */
static bool request_line(mqttb_ws *ws, const char *s, size_t n) {
  size_t sp1 = 0;
  while (sp1 < n && s[sp1] != ' ') {
    sp1++;
  }
  size_t sp2 = sp1 + 1;
  while (sp2 < n && s[sp2] != ' ') {
    sp2++;
  }
  if (sp1 == 0 || sp1 >= n || sp2 >= n || sp2 == sp1 + 1) {
    refuse(ws, 400, "malformed request line");
    return false;
  }
  for (size_t i = 0; i < sp1; i++) {
    if (!is_tchar((unsigned char)s[i])) {
      refuse(ws, 400, "malformed request line");
      return false;
    }
  }
  for (size_t i = sp1 + 1; i < sp2; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7F) {
      refuse(ws, 400, "malformed request target");
      return false;
    }
  }
  const char *ver = s + sp2 + 1;
  size_t vlen = n - sp2 - 1;
  if (vlen != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || ver[7] < '0' || ver[7] > '9') {
    refuse(ws, 400, "malformed HTTP version");
    return false;
  }
  ws->path = copy_str(s + sp1 + 1, sp2 - sp1 - 1);
  if (ws->path == NULL) {
    refuse(ws, 503, "out of memory");
    return false;
  }
  if (sp1 != 3 || memcmp(s, "GET", 3) != 0) {
    refuse(ws, 405, "only GET can open a WebSocket");
    return false;
  }
  if (ver[7] == '0') {
    refuse(ws, 400, "a WebSocket needs HTTP/1.1");
    return false;
  }
  return true;
}

/* The whole request is in; answer it. */
static void handshake(mqttb_ws *ws) {
  const char *p = ws->req + ws->req_start;
  size_t n = ws->req_len - ws->req_start;
  struct request r = {0};
  bool first = true;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (p[j] != '\n') {
      j++; /* the request ends in '\n' */
    }
    size_t e = j;
    if (e > i && p[e - 1] == '\r') {
      e--;
    }
    const char *line = p + i;
    size_t len = e - i;
    i = j + 1;
    if (len == 0) {
      break; /* the blank line ending the header */
    }
    for (size_t k = 0; k < len; k++) {
      unsigned char c = (unsigned char)line[k];
      if ((c < 0x20 && c != '\t') || c == 0x7F) {
        refuse(ws, 400, "control character in the request");
        return;
      }
    }
    if (first) {
      first = false;
      if (!request_line(ws, line, len)) {
        return;
      }
      continue;
    }
    /* field-name ":" OWS field-value OWS (RFC 7230, 3.2); no folding
     * (3.2.4 lets a server refuse it), no space before the colon. */
    size_t colon = 0;
    while (colon < len && line[colon] != ':') {
      colon++;
    }
    if (colon == 0 || colon == len) {
      refuse(ws, 400, "malformed header field");
      return;
    }
    for (size_t k = 0; k < colon; k++) {
      if (!is_tchar((unsigned char)line[k])) {
        refuse(ws, 400, "malformed header field");
        return;
      }
    }
    size_t a = colon + 1, b = len;
    while (a < b && is_ows(line[a])) {
      a++;
    }
    while (b > a && is_ows(line[b - 1])) {
      b--;
    }
    header_field(&r, line, colon, line + a, b - a);
  }

  if (r.host_count != 1) {
    refuse(ws, 400, "exactly one Host header is required");
    return;
  }
  if (!r.upgrade) {
    refuse(ws, 400, "not a WebSocket handshake: no Upgrade: websocket");
    return;
  }
  if (!r.connection) {
    refuse(ws, 400, "not a WebSocket handshake: no Connection: Upgrade");
    return;
  }
  if (r.version_count != 1) {
    refuse(ws, 400, "exactly one Sec-WebSocket-Version header is required");
    return;
  }
  if (r.version_len != 2 || memcmp(r.version, "13", 2) != 0) {
    refuse(ws, 426, "only WebSocket version 13 is supported");
    return;
  }
  uint8_t raw[18];
  size_t raw_len = 0;
  if (r.key_count != 1 || mqttb_base64_decode(r.key, r.key_len, raw, sizeof raw, &raw_len) != 0 ||
      raw_len != 16) {
    refuse(ws, 400, "Sec-WebSocket-Key must be one base64-encoded 16-byte value");
    return;
  }
  if (r.origin_count > 1) {
    refuse(ws, 400, "more than one Origin header");
    return;
  }
  if (r.origin_count == 1) {
    ws->origin = copy_str(r.origin, r.origin_len);
    if (ws->origin == NULL) {
      refuse(ws, 503, "out of memory");
      return;
    }
    bool allowed = ws->origin_count == 0;
    for (size_t k = 0; k < ws->origin_count && !allowed; k++) {
      allowed = strcmp(ws->origins[k], ws->origin) == 0;
    }
    if (!allowed) {
      refuse(ws, 403, "origin not allowed");
      return;
    }
  }
  if (r.subprotocol == NULL) {
    refuse(ws, 400, "Sec-WebSocket-Protocol must offer mqtt");
    return;
  }
  ws->subprotocol = r.subprotocol;

  char accept[29];
  mqttb_ws_accept_key(r.key, r.key_len, accept);
  char resp[256];
  int len = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "Sec-WebSocket-Protocol: %s\r\n"
                     "\r\n",
                     accept, ws->subprotocol);
  assert(len > 0 && (size_t)len < sizeof resp);
  bool room = ctl_reserve(ws, (size_t)len);
  assert(room); /* the queue is empty before the handshake */
  (void)room;
  ctl_put(ws, resp, (size_t)len);
  ws->state = WS_OPEN;
  free(ws->req);
  ws->req = NULL;
  ws->req_len = ws->req_cap = 0;
}

/* Take request bytes until the blank line; returns how many were taken
 * (the rest are frames). */
static size_t http_feed(mqttb_ws *ws, const uint8_t *in, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (ws->req_len == ws->max_request) {
      refuse(ws, 431, "request header too large");
      return i;
    }
    if (ws->req_len == ws->req_cap) {
      size_t cap = ws->req_cap == 0 ? 512 : ws->req_cap * 2;
      if (cap > ws->max_request) {
        cap = ws->max_request;
      }
      char *p = realloc(ws->req, cap);
      if (p == NULL) {
        refuse(ws, 503, "out of memory");
        return i;
      }
      ws->req = p;
      ws->req_cap = cap;
    }
    /* Copy up to the next line end at once. */
    size_t room = ws->req_cap - ws->req_len;
    size_t take = len - i < room ? len - i : room;
    const uint8_t *lf = memchr(in + i, '\n', take);
    if (lf != NULL) {
      take = (size_t)(lf - (in + i)) + 1;
    }
    memcpy(ws->req + ws->req_len, in + i, take);
    ws->req_len += take;
    i += take;
    if (lf == NULL) {
      continue;
    }
    size_t line_len = ws->req_len - 1 - ws->line_start;
    if (line_len > 0 && ws->req[ws->req_len - 2] == '\r') {
      line_len--;
    }
    if (line_len == 0) {
      if (ws->line_start == ws->req_start) {
        /* RFC 7230, 3.5: empty lines before the request line are ignored
         * (they still count against max_request). */
        ws->req_start = ws->line_start = ws->req_len;
        continue;
      }
      handshake(ws);
      return i;
    }
    ws->line_start = ws->req_len;
  }
  return i;
}

/* ---- frames from the client ---- */

/* The first two header bytes are in: check them, learn the header's size. */
static bool frame_begin(mqttb_ws *ws) {
  uint8_t b0 = ws->hdr[0], b1 = ws->hdr[1];
  unsigned len7 = b1 & 0x7Fu;
  ws->fin = (b0 & 0x80) != 0;
  ws->opcode = b0 & 0x0F;
  if (b0 & 0x70) {
    return fail(ws, MQTTB_WS_CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension negotiated)");
  }
  switch (ws->opcode) {
  case OP_CONT:
    if (!ws->in_message) {
      return fail(ws, MQTTB_WS_CLOSE_PROTOCOL_ERROR, "continuation frame without a message");
    }
    break;
  case OP_TEXT:
    return fail(ws, MQTTB_WS_CLOSE_UNSUPPORTED_DATA, "text frame (MQTT needs binary frames)");
  case OP_BINARY:
    if (ws->in_message) {
      return fail(ws, MQTTB_WS_CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one");
    }
    break;
  case OP_CLOSE:
  case OP_PING:
  case OP_PONG:
    if (!ws->fin) {
      return fail(ws, MQTTB_WS_CLOSE_PROTOCOL_ERROR, "fragmented control frame");
    }
    break; /* its length is checked once known (a longer form may hold 125) */
  default:
    return fail(ws, MQTTB_WS_CLOSE_PROTOCOL_ERROR, "reserved opcode");
  }
  if (!(b1 & 0x80)) {
    return fail(ws, MQTTB_WS_CLOSE_PROTOCOL_ERROR, "unmasked frame from the client");
  }
  ws->hdr_need = 2u + (len7 == 126 ? 2u : len7 == 127 ? 8u : 0u) + 4u;
  return true;
}

static void frame_reset(mqttb_ws *ws) {
  ws->in_payload = false;
  ws->hdr_have = 0;
  ws->hdr_need = 2;
}

/* A whole frame is in. False when it ended the WebSocket. */
static bool frame_end(mqttb_ws *ws) {
  frame_reset(ws);
  switch (ws->opcode) {
  case OP_CONT:
  case OP_BINARY:
    ws->in_message = !ws->fin;
    return true;
  case OP_PING:
    queue_pong(ws, ws->cbuf, ws->cbuf_len);
    return true;
  case OP_PONG:
    return true;
  default: /* OP_CLOSE */
    break;
  }
  int code = MQTTB_WS_CLOSE_NO_STATUS;
  if (ws->cbuf_len >= 2) {
    code = ws->cbuf[0] << 8 | ws->cbuf[1];
    if (!code_sendable(code)) {
      return fail(ws, MQTTB_WS_CLOSE_PROTOCOL_ERROR, "close frame with an invalid status code");
    }
    if (!utf8_valid(ws->cbuf + 2, ws->cbuf_len - 2)) {
      return fail(ws, MQTTB_WS_CLOSE_INVALID_DATA, "close frame reason not UTF-8");
    }
  }
  /* RFC 6455, 5.5.1: answer with a close frame, echoing the status code. */
  queue_close(ws, code == MQTTB_WS_CLOSE_NO_STATUS ? 0 : code, NULL);
  end(ws, "client closed the WebSocket", code);
  return false;
}

/* The header is complete: length, mask, limits. */
static bool frame_header_done(mqttb_ws *ws) {
  unsigned len7 = ws->hdr[1] & 0x7Fu;
  uint64_t len = 0;
  size_t mpos = 2;
  if (len7 < 126) {
    len = len7;
  } else {
    size_t bytes = len7 == 126 ? 2 : 8;
    for (size_t k = 0; k < bytes; k++) {
      len = len << 8 | ws->hdr[2 + k];
    }
    mpos += bytes;
    if (len >> 63) {
      return fail(ws, MQTTB_WS_CLOSE_PROTOCOL_ERROR, "64-bit frame length with the top bit set");
    }
  }
  memcpy(ws->mask, ws->hdr + mpos, 4);
  ws->mask_off = 0;
  if (ws->opcode >= OP_CLOSE && len > 125) {
    return fail(ws, MQTTB_WS_CLOSE_PROTOCOL_ERROR, "control frame longer than 125 bytes");
  }
  if (ws->opcode == OP_CLOSE && len == 1) {
    return fail(ws, MQTTB_WS_CLOSE_PROTOCOL_ERROR, "close frame of one byte");
  }
  if (ws->opcode < OP_CLOSE && len > ws->max_frame) {
    return fail(ws, MQTTB_WS_CLOSE_TOO_BIG, "data frame over the size limit");
  }
  ws->left = len;
  ws->cbuf_len = 0;
  if (len == 0) {
    return frame_end(ws);
  }
  ws->in_payload = true;
  return true;
}

/* ---- public ---- */

void mqttb_ws_settings_default(mqttb_ws_settings *settings) {
  if (settings == NULL) {
    return;
  }
  memset(settings, 0, sizeof *settings);
  settings->max_request = MQTTB_WS_DEFAULT_MAX_REQUEST;
  settings->max_frame = MQTTB_WS_DEFAULT_MAX_FRAME;
}

mqttb_ws *mqttb_ws_new(const mqttb_ws_settings *settings) {
  if (settings == NULL || settings->max_request < MQTTB_WS_MIN_MAX_REQUEST ||
      settings->max_frame == 0 || (settings->origins == NULL && settings->origin_count > 0)) {
    return NULL;
  }
  for (size_t i = 0; i < settings->origin_count; i++) {
    if (settings->origins[i] == NULL) {
      return NULL;
    }
  }
  mqttb_ws *ws = calloc(1, sizeof *ws);
  if (ws == NULL) {
    return NULL;
  }
  ws->max_request = settings->max_request;
  ws->max_frame = settings->max_frame;
  ws->origins = settings->origins;
  ws->origin_count = settings->origin_count;
  ws->state = WS_HTTP;
  frame_reset(ws);
  return ws;
}

void mqttb_ws_del(mqttb_ws *ws) {
  if (ws == NULL) {
    return;
  }
  free(ws->req);
  free(ws->path);
  free(ws->origin);
  free(ws);
}

int mqttb_ws_recv(mqttb_ws *ws, uint8_t *buf, size_t len, size_t *mqtt_len) {
  if (mqtt_len != NULL) {
    *mqtt_len = 0;
  }
  if (ws == NULL || mqtt_len == NULL || (buf == NULL && len > 0)) {
    return MQTTB_WS_ERR_INVALID;
  }
  size_t pos = 0, out = 0;
  if (ws->state == WS_HTTP && len > 0) {
    pos = http_feed(ws, buf, len);
  }
  while (pos < len && ws->state == WS_OPEN) {
    if (!ws->in_payload) {
      ws->hdr[ws->hdr_have++] = buf[pos++];
      if (ws->hdr_have == 2) {
        if (!frame_begin(ws)) {
          break;
        }
      } else if (ws->hdr_have > 2 && ws->hdr_have == ws->hdr_need) {
        if (!frame_header_done(ws)) {
          break;
        }
      }
      continue;
    }
    size_t n = len - pos;
    if (n > ws->left) {
      n = (size_t)ws->left;
    }
    if (ws->opcode < OP_CLOSE) {
      unmask(buf + out, buf + pos, n, ws->mask, &ws->mask_off);
      out += n;
    } else {
      unmask(ws->cbuf + ws->cbuf_len, buf + pos, n, ws->mask, &ws->mask_off);
      ws->cbuf_len += n;
    }
    pos += n;
    ws->left -= n;
    if (ws->left == 0 && !frame_end(ws)) {
      break;
    }
  }
  *mqtt_len = out;
  return ws->state == WS_CLOSED ? MQTTB_WS_CLOSED : MQTTB_WS_OK;
}

/* Appends entries to an output array, counting what they hold. */
struct emit {
  mqttb_iovec *out;
  int max, k;
  size_t total;
};

static bool emit(struct emit *e, const void *p, size_t len) {
  if (e->k == e->max) {
    return false;
  }
  e->out[e->k].base = p;
  e->out[e->k].len = len;
  e->k++;
  e->total += len;
  return true;
}

/* Up to @p need bytes of the library's output from the cursor (*li, *loff);
 * returns how many fitted. */
static uint64_t emit_lib(struct emit *e, const mqttb_iovec *lib, int n_lib, int *li, size_t *loff,
                         uint64_t need) {
  uint64_t done = 0;
  while (done < need && *li < n_lib && e->k < e->max) {
    size_t avail = lib[*li].len - *loff;
    size_t take = avail < need - done ? avail : (size_t)(need - done);
    if (take > 0) {
      emit(e, (const uint8_t *)lib[*li].base + *loff, take);
      done += take;
      *loff += take;
    }
    if (*loff == lib[*li].len) {
      (*li)++;
      *loff = 0;
    }
  }
  return done;
}

int mqttb_ws_output(mqttb_ws *ws, const mqttb_iovec *lib, int n_lib, mqttb_iovec *out,
                    int out_max) {
  if (ws == NULL || n_lib < 0 || (lib == NULL && n_lib > 0) || out_max < 0 ||
      (out == NULL && out_max > 0)) {
    return MQTTB_WS_ERR_INVALID;
  }
  bool in_frame = ws->fhdr_off < ws->fhdr_len || ws->frame_left > 0;
  if (ws->close_code != 0 && n_lib == 0 && !in_frame && !ws->nf_given && !ws->data_stopped) {
    queue_close(ws, ws->close_code, NULL);
    end(ws, "server closed the WebSocket", ws->close_code);
  }
  struct emit e = {out, out_max, 0, 0};
  int li = 0;
  size_t loff = 0;
  ws->given = true;
  if (in_frame) {
    /* Finish the frame being written: its header, then its payload, which
     * is what the library has pending first (it keeps it until acked). */
    if (ws->fhdr_off < ws->fhdr_len &&
        !emit(&e, ws->fhdr + ws->fhdr_off, ws->fhdr_len - ws->fhdr_off)) {
      goto done;
    }
    if (emit_lib(&e, lib, n_lib, &li, &loff, ws->frame_left) < ws->frame_left) {
      goto done; /* the rest of the frame first, in a later call */
    }
  }
  /* Control bytes: with a new frame given behind them, just those given
   * then; otherwise all there are. */
  size_t ctl = ws->nf_given ? ws->ctl_given : ws->ctl_tail - ws->ctl_head;
  if (ctl > 0) {
    if (!emit(&e, ws->ctl + ws->ctl_head, ctl)) {
      goto done;
    }
    ws->ctl_given = ctl;
  }
  if (!ws->nf_given) {
    if (ws->state != WS_OPEN || ws->data_stopped || e.k == e.max) {
      goto done;
    }
    /* One binary frame over all the library's bytes seen; those whose
     * entries do not fit now follow as the rest of the frame, so even an
     * @p out_max with room for the header alone makes progress. */
    uint64_t len = 0;
    for (int i = li; i < n_lib; i++) {
      len += lib[i].len - (i == li ? loff : 0);
    }
    if (len == 0) {
      goto done;
    }
    ws->nhdr_len = frame_header(ws->nhdr, 0x80 | OP_BINARY, len);
    ws->nf_len = len;
    ws->nf_given = true;
  }
  if (emit(&e, ws->nhdr, ws->nhdr_len)) {
    emit_lib(&e, lib, n_lib, &li, &loff, ws->nf_len);
  }
done:
  ws->given_len = e.total;
  return e.k;
}

int mqttb_ws_output_ack(mqttb_ws *ws, size_t written, size_t *mqtt_written) {
  if (mqtt_written != NULL) {
    *mqtt_written = 0;
  }
  if (ws == NULL || mqtt_written == NULL || !ws->given || written > ws->given_len) {
    return MQTTB_WS_ERR_INVALID;
  }
  ws->given = false;
  /* Walk the order mqttb_ws_output gives things in; @p written is within
   * what it gave, so each part is covered only as far as it was given. */
  size_t w = written, t, m = 0;
  t = w < ws->fhdr_len - ws->fhdr_off ? w : ws->fhdr_len - ws->fhdr_off;
  ws->fhdr_off += t;
  w -= t;
  t = w < ws->frame_left ? w : (size_t)ws->frame_left;
  ws->frame_left -= t;
  m += t;
  w -= t;
  t = w < ws->ctl_given ? w : ws->ctl_given;
  ws->ctl_head += t;
  ws->ctl_given -= t;
  w -= t;
  if (ws->ctl_head == ws->ctl_tail) {
    ws->ctl_head = ws->ctl_tail = 0;
    ws->pong_queued = false;
  }
  if (w > 0) {
    /* Into the new frame: it is now the one being written. */
    assert(ws->nf_given && ws->ctl_given == 0 && ws->frame_left == 0);
    t = w < ws->nhdr_len ? w : ws->nhdr_len;
    memcpy(ws->fhdr, ws->nhdr, ws->nhdr_len);
    ws->fhdr_len = ws->nhdr_len;
    ws->fhdr_off = t;
    ws->frame_left = ws->nf_len;
    ws->nf_given = false;
    w -= t;
    ws->frame_left -= w;
    m += w;
  }
  if (ws->fhdr_off == ws->fhdr_len && ws->frame_left == 0) {
    ws->fhdr_len = ws->fhdr_off = 0;
  }
  /* Past an acknowledgement nothing unwritten is committed (TLS: bytes not
   * reported written were not taken): a new frame not reached yet is
   * proposed afresh, after any control bytes that came meanwhile. */
  ws->nf_given = false;
  ws->ctl_given = 0;
  *mqtt_written = m;
  return MQTTB_WS_OK;
}

size_t mqttb_ws_output_pending(const mqttb_ws *ws) {
  if (ws == NULL) {
    return 0;
  }
  return (ws->fhdr_len - ws->fhdr_off) + (ws->ctl_tail - ws->ctl_head) +
         (ws->nf_given ? ws->nhdr_len : 0);
}

int mqttb_ws_close(mqttb_ws *ws, int code) {
  if (ws == NULL || !code_sendable(code)) {
    return MQTTB_WS_ERR_INVALID;
  }
  if (ws->state == WS_HTTP) {
    end(ws, "server closed before the handshake completed", code);
  } else if (ws->state == WS_OPEN && ws->close_code == 0) {
    ws->close_code = code;
  }
  return MQTTB_WS_OK;
}

bool mqttb_ws_is_closed(const mqttb_ws *ws) {
  return ws == NULL || ws->state == WS_CLOSED;
}

bool mqttb_ws_handshake_done(const mqttb_ws *ws) {
  /* The subprotocol is chosen just before the 101 response is queued. */
  return ws != NULL && ws->subprotocol != NULL;
}

const char *mqttb_ws_close_reason(const mqttb_ws *ws, int *code) {
  if (code != NULL) {
    *code = 0;
  }
  if (ws == NULL || ws->state != WS_CLOSED) {
    return NULL;
  }
  if (code != NULL) {
    *code = ws->reason_code;
  }
  return ws->reason;
}

const char *mqttb_ws_path(const mqttb_ws *ws) {
  return ws != NULL ? ws->path : NULL;
}

const char *mqttb_ws_subprotocol(const mqttb_ws *ws) {
  return ws != NULL ? ws->subprotocol : NULL;
}

const char *mqttb_ws_origin(const mqttb_ws *ws) {
  return ws != NULL ? ws->origin : NULL;
}

void mqttb_ws_accept_key(const char *key, size_t key_len, char out[29]) {
  mqttb_sha1_ctx ctx;
  uint8_t digest[MQTTB_SHA1_DIGEST_LEN];
  mqttb_sha1_init(&ctx);
  mqttb_sha1_update(&ctx, key, key_len);
  mqttb_sha1_update(&ctx, WS_GUID, sizeof WS_GUID - 1);
  mqttb_sha1_final(&ctx, digest);
  mqttb_base64_encode(digest, sizeof digest, out, 29);
}
