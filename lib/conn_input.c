/* SPDX-License-Identifier: MIT */
/* Input: framing of the bytes a client sends, the packet dispatch, and
 * mqttb_conn_recv. See conn.h. */
#include <string.h>

#include "conn.h"

static int handle_packet(mqttb_conn *c, const mqttb_frame *f, const uint8_t *body, uint64_t now) {
  c->broker->ctx.stats.packets_received++;
  c->broker->ctx.work++;
  if (c->state != MQTTB_CONN_AWAIT_CONNECT)
    c->last_rx = now; /* before: when the connection was made (conn.h) */
  size_t len = f->remaining;
  if (f->type == MQTTB_PKT_CONNECT)
    return mqttb_conn_on_connect(c, f->flags, body, len);
  if (f->type == MQTTB_PKT_AUTH)
    return mqttb_conn_on_auth(c, body, len);
  switch (f->type) {
  case MQTTB_PKT_PUBLISH:
    return mqttb_conn_on_publish(c, f->flags, body, len);
  case MQTTB_PKT_PUBACK:
  case MQTTB_PKT_PUBREC:
  case MQTTB_PKT_PUBREL:
  case MQTTB_PKT_PUBCOMP:
    return mqttb_conn_on_ack(c, f, body, len);
  case MQTTB_PKT_SUBSCRIBE:
    return mqttb_conn_on_subscribe(c, body, len);
  case MQTTB_PKT_UNSUBSCRIBE:
    return mqttb_conn_on_unsubscribe(c, body, len);
  case MQTTB_PKT_PINGREQ:
    if (len != 0)
      return MQTTB_ERR_MALFORMED;
    return mqttb_tx_empty(&c->broker->hub, &c->tx, MQTTB_PKT_PINGRESP) ? MQTTB_ERR_CONN_NOMEM : 0;
  case MQTTB_PKT_DISCONNECT:
    return mqttb_conn_on_disconnect(c, body, len);
  default:
    /* Server-to-client packets (CONNACK, SUBACK, UNSUBACK, PINGRESP). */
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "unexpected packet type %u", f->type);
    return MQTTB_ERR_PROTOCOL;
  }
}

/* Checks made as soon as a fixed header is complete, before the body is
 * buffered. */
static int check_header(mqttb_conn *c, const mqttb_frame *f) {
  uint32_t max_connect = c->broker->ctx.settings.max_connect_size;
  if (c->state == MQTTB_CONN_AWAIT_CONNECT && (uint64_t)f->hdr_len + f->remaining > max_connect) {
    /* Before CONNECT completes nobody knows who this is: it may not make
     * the broker buffer much. */
    mqttb_conn_log_anon(c, MQTTB_LOG_NOTICE,
                        "packet of %llu bytes before CONNECT completed (max_connect_size %u)",
                        (unsigned long long)f->hdr_len + f->remaining, max_connect);
    return MQTTB_ERR_PACKET_TOO_LARGE;
  }
  /* CONNECT's flags are checked with its body: MQTT 3.1 did not reserve
   * them. */
  int r = mqttb_codec_check_flags(f->type, f->type == MQTTB_PKT_CONNECT ? 0 : f->flags);
  if (r != MQTTB_CODEC_OK) {
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "invalid fixed header (type %u, flags %#x)", f->type,
                   f->flags);
    return MQTTB_ERR_MALFORMED;
  }
  if (c->state == MQTTB_CONN_AWAIT_CONNECT && f->type != MQTTB_PKT_CONNECT &&
      !(f->type == MQTTB_PKT_AUTH && mqttb_conn_x(c)->pending_connect)) {
    /* [MQTT-3.1.0-1] */
    mqttb_conn_log_anon(c, MQTTB_LOG_NOTICE, "first packet is not CONNECT (type %u)", f->type);
    return MQTTB_ERR_PROTOCOL;
  }
  if (f->type == MQTTB_PKT_CONNECT &&
      (c->state == MQTTB_CONN_CONNECTED || mqttb_conn_x(c)->pending_connect)) {
    /* [MQTT-3.1.0-2] */
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "second CONNECT");
    return MQTTB_ERR_PROTOCOL;
  }
  return 0;
}

static int frame_err(mqttb_conn *c, int r) {
  if (r == MQTTB_CODEC_TOO_LARGE)
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "packet larger than max_packet_size %u",
                   c->broker->ctx.settings.max_packet_size);
  else
    mqttb_conn_log(c, MQTTB_LOG_NOTICE, "invalid remaining length");
  return mqttb_conn_codec_err(c, r);
}

/* Grow an input buffer of c to hold need bytes, within the bound on the
 * input all connections buffer together. */
static int input_grow(mqttb_conn *c, uint8_t **buf, size_t *cap, size_t need) {
  if (need <= *cap)
    return 0;
  mqttb_ctx *ctx = &c->broker->ctx;
  uint64_t lim = ctx->settings.max_input_bytes_total;
  if (lim && ctx->input_bytes + (need - *cap) > lim) {
    mqttb_conn_log(c, MQTTB_LOG_WARNING,
                   "input of all connections at max_input_bytes_total (%llu bytes): closing",
                   (unsigned long long)lim);
    return MQTTB_ERR_CONN_NOMEM;
  }
  size_t old = *cap;
  void *arr = *buf;
  if (!mqttb_mem_room(&ctx->mem, need - old)) {
    mqttb_conn_log(c, MQTTB_LOG_WARNING, "memory_limit reached: input not buffered, closing");
    return MQTTB_ERR_CONN_NOMEM;
  }
  if (mqttb_mem_grow(&ctx->mem, &arr, cap, need, 1) != 0)
    return MQTTB_ERR_CONN_NOMEM;
  *buf = arr;
  ctx->input_bytes += *cap - old;
  return 0;
}

static int rbuf_append(mqttb_conn *c, const uint8_t *p, size_t n) {
  size_t cap = c->rcap;
  int rv = input_grow(c, &c->rbuf, &cap, c->rlen + n);
  if (rv != 0)
    return rv;
  /* A packet in rbuf is at most max_packet_size (under 256 MiB) and a
   * large PUBLISH goes to a block of its own: the capacity fits 32 bits. */
  c->rcap = (uint32_t)cap;
  memcpy(c->rbuf + c->rlen, p, n);
  c->rlen += (uint32_t)n; /* at most rcap */
  return 0;
}

/* Keep in[0..len) to process later, after what is already held. */
static int hold(mqttb_conn *c, const uint8_t *in, size_t len) {
  if (len == 0)
    return 0;
  struct mqttb_conn_ext *x = mqttb_conn_ext(c);
  if (!x)
    return MQTTB_ERR_CONN_NOMEM;
  int rv = input_grow(c, &x->held, &x->held_cap, x->held_len + len);
  if (rv != 0)
    return rv;
  memcpy(x->held + x->held_len, in, len);
  x->held_len += len;
  return 0;
}

/* A PUBLISH this large whose body is not all in yet is received straight
 * into the block of its message (mqttb_conn_recv_buffers): the embedder
 * can read the rest into it, and the message is the packet. */
#define BIG_MIN 4096u
/* Bytes of blocks offered for the packets expected after it. */
#define SPEC_BYTES (256u * 1024u)

static bool is_big(const mqttb_frame *f) {
  return f->type == MQTTB_PKT_PUBLISH && f->remaining >= BIG_MIN;
}

/* A block for a PUBLISH with a body of remaining bytes, counted in the
 * input bound. NULL past a limit (logged when log is set; the caller then
 * closes) or out of memory. */
static uint8_t *block_new(mqttb_conn *c, uint32_t remaining, bool log) {
  mqttb_ctx *ctx = &c->broker->ctx;
  size_t size = sizeof(mqttb_msg) + remaining;
  uint64_t lim = ctx->settings.max_input_bytes_total;
  if (lim && ctx->input_bytes + size > lim) {
    if (log)
      mqttb_conn_log(c, MQTTB_LOG_WARNING,
                     "input of all connections at max_input_bytes_total (%llu bytes): closing",
                     (unsigned long long)lim);
    return NULL;
  }
  if (!mqttb_mem_room(&ctx->mem, size)) {
    if (log)
      mqttb_conn_log(c, MQTTB_LOG_WARNING, "memory_limit reached: input not buffered, closing");
    return NULL;
  }
  uint8_t *b = mqttb_mem_malloc(&ctx->mem, size);
  if (b)
    ctx->input_bytes += size;
  return b;
}

static void block_free(mqttb_conn *c, uint8_t *block, uint32_t remaining) {
  mqttb_mem_free(&c->broker->ctx.mem, block);
  c->broker->ctx.input_bytes -= sizeof(mqttb_msg) + remaining;
}

/* Free the blocks offered for expected packets. */
static void spec_drop(mqttb_conn *c) {
  struct mqttb_conn_ext *x = c->x;
  if (!x)
    return;
  for (unsigned k = 0; k < x->nspec; k++)
    block_free(c, x->spec->block[k], x->spec_f.remaining);
  x->nspec = 0;
}

/* Start receiving the PUBLISH framed by f into a block of its own, with
 * the first n bytes of its body. */
static int big_start(mqttb_conn *c, const mqttb_frame *f, const uint8_t *body, size_t n) {
  struct mqttb_conn_ext *x = mqttb_conn_ext(c);
  if (!x)
    return MQTTB_ERR_CONN_NOMEM;
  x->big = block_new(c, f->remaining, true);
  if (!x->big)
    return MQTTB_ERR_CONN_NOMEM;
  x->big_f = *f;
  memcpy(x->big + sizeof(mqttb_msg), body, n);
  x->big_len = n;
  return 0;
}

/* The PUBLISH of x->big is all in: handle it, letting the message adopt
 * the block. */
static int big_finish(mqttb_conn *c, uint64_t now, bool *handled) {
  struct mqttb_conn_ext *x = c->x;
  uint8_t *block = x->big;
  mqttb_frame f = x->big_f;
  x->big = NULL;
  x->adopt = block;
  *handled = true;
  int rv = handle_packet(c, &f, block + sizeof(mqttb_msg), now);
  if (x->adopt) {
    /* Not taken (refused, a topic alias, an error). */
    block_free(c, block, f.remaining);
    x->adopt = NULL;
  }
  return rv;
}

/* Whether this call has done its share of work: then the packets left are
 * held for the next call, so that one client cannot keep the embedder's
 * loop from everyone else. At least one packet is handled per call. */
static bool budget_spent(const mqttb_conn *c, uint64_t start, bool handled) {
  uint32_t budget = c->broker->ctx.settings.work_budget;
  return handled && budget && c->broker->ctx.work - start >= budget;
}

static int process(mqttb_conn *c, const uint8_t *in, size_t len, uint64_t now, uint64_t start,
                   bool *handled) {
  uint32_t maxp = c->broker->ctx.settings.max_packet_size;
  size_t off = 0;
  mqttb_frame f;
  if (len > 0 && c->rlen == 0 && c->state == MQTTB_CONN_AWAIT_CONNECT &&
      !mqttb_conn_x(c)->pending_connect && (in[0] >> 4) != MQTTB_PKT_CONNECT) {
    /* [MQTT-3.1.0-1]: the very first byte already tells. */
    mqttb_conn_log_anon(c, MQTTB_LOG_NOTICE, "first packet is not CONNECT (first byte %#x)", in[0]);
    return MQTTB_ERR_PROTOCOL;
  }
  while (off < len && c->state < MQTTB_CONN_CLOSING) {
    struct mqttb_conn_ext *x = c->x;
    if (x && x->big) {
      size_t take = x->big_f.remaining - x->big_len;
      if (take > len - off)
        take = len - off;
      memcpy(x->big + sizeof(mqttb_msg) + x->big_len, in + off, take);
      x->big_len += take;
      off += take;
      if (x->big_len == x->big_f.remaining) {
        int rv = big_finish(c, now, handled);
        if (rv != 0)
          return rv;
      }
      continue;
    }
    if (c->rlen > 0) {
      /* Finish the packet started by an earlier call. */
      int r = mqttb_codec_frame(c->rbuf, c->rlen, maxp, &f);
      while (r == MQTTB_CODEC_INCOMPLETE && off < len) {
        /* The fixed header itself was split: take it a byte at a time. */
        if (rbuf_append(c, in + off, 1) != 0)
          return MQTTB_ERR_CONN_NOMEM;
        off++;
        r = mqttb_codec_frame(c->rbuf, c->rlen, maxp, &f);
      }
      if (r == MQTTB_CODEC_INCOMPLETE)
        break;
      if (r != MQTTB_CODEC_OK)
        return frame_err(c, r);
      int rv = check_header(c, &f);
      if (rv != 0)
        return rv;
      size_t total = (size_t)f.hdr_len + f.remaining;
      if (is_big(&f) && c->rlen < total) {
        /* The fixed header was split: the body goes to its own block. */
        rv = big_start(c, &f, c->rbuf + f.hdr_len, c->rlen - f.hdr_len);
        c->rlen = 0;
        if (rv != 0)
          return rv;
        continue;
      }
      size_t take = total - c->rlen;
      if (take > len - off)
        take = len - off;
      if (rbuf_append(c, in + off, take) != 0)
        return MQTTB_ERR_CONN_NOMEM;
      off += take;
      if (c->rlen == total) {
        c->rlen = 0;
        *handled = true;
        rv = handle_packet(c, &f, c->rbuf + f.hdr_len, now);
        if (c->rcap > 65536) {
          /* Give back the memory of a large packet. */
          mqttb_mem_free(&c->broker->ctx.mem, c->rbuf);
          c->broker->ctx.input_bytes -= c->rcap;
          c->rbuf = NULL;
          c->rcap = 0;
        }
        if (rv != 0)
          return rv;
      }
      continue;
    }
    if (budget_spent(c, start, *handled))
      return hold(c, in + off, len - off);
    int r = mqttb_codec_frame(in + off, len - off, maxp, &f);
    if (r == MQTTB_CODEC_INCOMPLETE) {
      if (rbuf_append(c, in + off, len - off) != 0)
        return MQTTB_ERR_CONN_NOMEM;
      break;
    }
    if (r != MQTTB_CODEC_OK)
      return frame_err(c, r);
    int rv = check_header(c, &f);
    if (rv != 0)
      return rv;
    size_t total = (size_t)f.hdr_len + f.remaining;
    if (total > len - off && is_big(&f)) {
      rv = big_start(c, &f, in + off + f.hdr_len, len - off - f.hdr_len);
      if (rv != 0)
        return rv;
      break;
    }
    if (total > len - off) {
      if (rbuf_append(c, in + off, len - off) != 0)
        return MQTTB_ERR_CONN_NOMEM;
      break;
    }
    *handled = true;
    rv = handle_packet(c, &f, in + off + f.hdr_len, now);
    off += total;
    if (rv != 0)
      return rv;
  }
  return 0;
}

/* The end of a call that fed input: close on error, re-arm the timers. */
static int recv_end(mqttb_conn *c, int rv) {
  mqttb_broker *b = c->broker;
  if (rv != 0)
    mqttb_conn_close(c, rv);
  else if (c->state == MQTTB_CONN_CONNECTED && mqttb_conn_arm(c) != 0)
    mqttb_conn_close(c, MQTTB_ERR_CONN_NOMEM);
  mqttb_conn_reap(b);
  mqttb_host_drain(&b->host);
  return c->state >= MQTTB_CONN_CLOSING ? c->close_reason : 0;
}

int mqttb_conn_recv(mqttb_conn *c, const uint8_t *in, size_t len, uint64_t now) {
  if (!c || (!in && len > 0))
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (c->state >= MQTTB_CONN_CLOSING || c->broker->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE;
  mqttb_broker *b = c->broker;
  b->ctx.now = now;
  b->ctx.stats.bytes_received += len;
  int rv = c->tx.failed;
  if (c->input_deferred) {
    /* The input held back comes now: the connect timeout starts again. */
    c->input_deferred = false;
    c->last_rx = now;
    if (rv == 0 && mqttb_conn_arm(c) != 0)
      rv = MQTTB_ERR_CONN_NOMEM;
  }
  uint64_t start = b->ctx.work;
  bool handled = false;
  struct mqttb_conn_ext *x = c->x;
  spec_drop(c);
  if (x)
    x->spec_next = false; /* this input does not end where the blocks begin */
  if (rv == 0 && x && x->held_len) {
    /* First what an earlier call held back. */
    uint8_t *held = x->held;
    size_t held_len = x->held_len, held_cap = x->held_cap;
    x->held = NULL;
    x->held_len = x->held_cap = 0;
    rv = process(c, held, held_len, now, start, &handled);
    mqttb_mem_free(&b->ctx.mem, held);
    b->ctx.input_bytes -= held_cap;
    if (rv == 0 && x->held_len) /* still behind: the new bytes go after */
      rv = hold(c, in, len);
    else if (rv == 0)
      rv = process(c, in, len, now, start, &handled);
  } else if (rv == 0) {
    rv = process(c, in, len, now, start, &handled);
  }
  return recv_end(c, rv);
}

/* Go on with input: after what is held, if anything is. */
static int feed(mqttb_conn *c, const uint8_t *in, size_t len, uint64_t now, uint64_t start,
                bool *handled) {
  if (c->state >= MQTTB_CONN_CLOSING)
    return 0;
  if (c->x && c->x->held_len)
    return hold(c, in, len);
  return process(c, in, len, now, start, handled);
}

/* The fixed header of f, encoded. */
static size_t header_bytes(const mqttb_frame *f, uint8_t *out) {
  out[0] = (uint8_t)(f->type << 4 | f->flags);
  return 1 + mqttb_codec_varint_encode(out + 1, f->remaining);
}

int mqttb_conn_recv_buffers(mqttb_conn *c, mqttb_inbuf *bufs, int max) {
  if (!c || (!bufs && max > 0) || max < 0)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (c->broker->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE; /* it may allocate and free blocks */
  struct mqttb_conn_ext *x = c->x;
  /* Between packets, after a stream of large ones: the next packets are
   * likely the same too, and nothing of them is in yet. */
  bool bare = x && !x->big && x->spec_next && max >= 2;
  if (!x || (!x->big && !bare) || x->held_len || c->state >= MQTTB_CONN_CLOSING || c->tx.failed ||
      max < 1) {
    spec_drop(c);
    return 0;
  }
  int n = 0;
  if (!bare) {
    bufs[n].base = x->big + sizeof(mqttb_msg) + x->big_len;
    bufs[n++].len = x->big_f.remaining - x->big_len;
    /* The packets after it are likely the same size (a camera, a file in
     * chunks): blocks for them too, behind their expected fixed header. */
    if (x->nspec && (x->spec_f.remaining != x->big_f.remaining ||
                     x->spec_f.flags != x->big_f.flags || x->spec_f.type != x->big_f.type))
      spec_drop(c);
    x->spec_f = x->big_f;
  }
  size_t want = SPEC_BYTES / ((size_t)x->spec_f.remaining + sizeof(mqttb_msg));
  if (want < 1)
    want = 1;
  size_t goal = x->spec_goal ? x->spec_goal : 2;
  if (want > goal)
    want = goal;
  if (want > (size_t)(max - n) / 2)
    want = (size_t)(max - n) / 2;
  while (x->nspec > want)
    block_free(c, x->spec->block[--x->nspec], x->spec_f.remaining);
  if (want && !x->spec && !(x->spec = mqttb_mem_malloc(&c->broker->ctx.mem, sizeof(*x->spec))))
    want = 0; /* the rest of the packet only */
  while (x->nspec < want) {
    uint8_t *b = block_new(c, x->spec_f.remaining, false);
    if (!b)
      break;
    x->spec->block[x->nspec++] = b;
  }
  size_t hl = header_bytes(&x->spec_f, x->spec_want);
  for (unsigned k = 0; k < x->nspec; k++) {
    bufs[n].base = x->spec->hdr[k];
    bufs[n++].len = hl;
    bufs[n].base = x->spec->block[k] + sizeof(mqttb_msg);
    bufs[n++].len = x->spec_f.remaining;
  }
  return n;
}

int mqttb_conn_recv_commit(mqttb_conn *c, size_t n, uint64_t now) {
  if (!c)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (c->state >= MQTTB_CONN_CLOSING || c->broker->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE;
  struct mqttb_conn_ext *x = c->x;
  bool bare = x && !x->big && x->spec_next && x->nspec;
  if (!x || (!x->big && !bare) || x->held_len)
    return n ? MQTTB_ERR_INVALID_ARGUMENT : 0;
  mqttb_frame f = x->spec_f;
  size_t hl = header_bytes(&f, x->spec_want);
  size_t rest = bare ? 0 : x->big_f.remaining - x->big_len;
  if (n > rest + x->nspec * (hl + f.remaining))
    return MQTTB_ERR_INVALID_ARGUMENT;
  mqttb_broker *b = c->broker;
  b->ctx.now = now;
  b->ctx.stats.bytes_received += n;
  uint64_t start = b->ctx.work;
  bool handled = false;
  size_t take = n < rest ? n : rest;
  int rv = 0;
  if (!bare) {
    x->big_len += take;
    if (x->big_len == x->big_f.remaining)
      rv = big_finish(c, now, &handled);
  }
  n -= take;
  bool past_rest = take == rest; /* then the blocks were in play */
  /* Then the blocks of the packets expected after it, in order, as long
   * as each is the packet expected; from the first that is not, the bytes
   * take the usual way. */
  bool expected = true;
  unsigned k = 0;
  for (; k < x->nspec && n > 0 && rv == 0; k++) {
    uint8_t *block = x->spec->block[k];
    size_t h = n < hl ? n : hl;
    size_t body = n - h < f.remaining ? n - h : f.remaining;
    n -= h + body;
    expected = expected && h == hl && memcmp(x->spec->hdr[k], x->spec_want, hl) == 0 &&
               c->state < MQTTB_CONN_CLOSING && check_header(c, &f) == 0;
    if (expected) {
      x->big = block;
      x->big_f = f;
      x->big_len = body;
      if (body == f.remaining)
        rv = big_finish(c, now, &handled);
      continue;
    }
    rv = feed(c, x->spec->hdr[k], h, now, start, &handled);
    if (rv == 0)
      rv = feed(c, block + sizeof(mqttb_msg), body, now, start, &handled);
    block_free(c, block, f.remaining);
  }
  /* Twice as many next time as this read reached (0 of them: 2). */
  if (past_rest)
    x->spec_goal = 2 * k < MQTTB_CONN_SPEC_MAX ? 2 * k : MQTTB_CONN_SPEC_MAX;
  /* Ended just after an expected packet (or the one in progress): the
   * next read may start with the next. */
  x->spec_next = rv == 0 && past_rest && expected && !x->big;
  /* The blocks not reached stay offered for the next read. */
  unsigned left = 0;
  for (unsigned i = k; i < x->nspec; i++)
    x->spec->block[left++] = x->spec->block[i];
  x->nspec = left;
  if (rv != 0 || !x->big)
    spec_drop(c);
  return recv_end(c, rv);
}
