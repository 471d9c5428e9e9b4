/*
 * mqttb-bench: a closed-loop MQTT 3.1.1 load generator.
 *
 * Standalone on purpose: it has its own minimal MQTT encoder/decoder and does
 * not use libmqttbroker, so it measures any broker (mqttb, Mosquitto, ...) the
 * same way.
 *
 * One thread drives every connection with epoll (level-triggered),
 * non-blocking sockets with TCP_NODELAY, large reads into one shared buffer,
 * and one output buffer per connection that is written once per loop
 * iteration (the "flush list").
 *
 * Closed loop: each publisher keeps at most W messages in flight, a message
 * being in flight from the moment it is queued until every subscriber that
 * should get it has received it. The throughput is therefore what the broker
 * sustains, not what the generator can push into socket buffers.
 *
 * Every payload starts with a 16-byte header: the CLOCK_MONOTONIC time of
 * sending (ns, u64), the publisher id (u32) and the sequence number (u32), in
 * host byte order (the generator talks to itself through the broker). The
 * subscribers check per-publisher order, count gaps (losses) and
 * duplicates, and feed a log-linear latency histogram.
 *
 * Transports (--tls, --ws, both: wss): TLS through OpenSSL on the same
 * non-blocking sockets (read-ahead, partial writes), WebSocket framing in the
 * generator (an HTTP/1.1 upgrade offering the "mqtt" subprotocol; each flush
 * of a connection's output is one masked binary frame; received frames are
 * unwrapped in place in the read buffer, so MQTT packets may span frames).
 * The plain TCP path does not go through this layer (c->x is NULL).
 *
 * Scenarios: p2p (N publishers -> N subscribers, one topic each), fanin
 * (N publishers -> 1 subscriber with a '+' filter), fanout (1 publisher -> N
 * subscribers of one topic), idle (N subscribers holding one subscription
 * each; reports the broker's VmRSS growth per connection, then checks that one
 * publish reaches all of them).
 *
 * With --pid, the throughput scenarios also report the broker's CPU time over
 * exactly the measured window (all its threads): the first loop iteration at
 * or after the warm-up opens the window and reads the broker's CPU clock, the
 * first one at or after its end closes it and reads it again; deliveries
 * count only between the two.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#define PAYLOAD_HDR 16u
#define MAX_EVENTS 1024
#define RBUF_SIZE (256u * 1024u)
#define READS_PER_EVENT 8
#define OUT_FILL_MAX (4u * 1024u * 1024u)
/* Payloads from this size are written from B.fill by reference (writev),
 * not copied into each publisher's output: the copy was a fifth of the
 * generator's CPU at 1 MiB, and from 16 KiB up the generator, at 96-99 %
 * CPU, was the limit of the measurement. */
#define BODY_BY_REF (16u * 1024u)
/* A subscriber reads only the first PAYLOAD_HDR bytes of a payload (stamp,
 * publisher, sequence). When at least SKIP_MIN bytes of a PUBLISH are still
 * in the socket once those are in hand, the rest is discarded in the kernel
 * (recv with MSG_TRUNC frees the socket buffers without copying them out).
 * After a PUBLISH of SKIP_MIN + SKIP_READ or more, discarded or read whole,
 * the next read asks for SKIP_READ bytes, enough for the next packet's
 * header, so that one can be discarded too. From 64 KiB to 1 MiB this took
 * a sixth to two fifths off the generator's CPU per delivery, time it took
 * from the broker it shares the machine with. --copy-payload reads every
 * byte, as an application would. */
#define SKIP_MIN (32u * 1024u)
#define SKIP_READ 4096u
#define SKIP_PFX_MAX 512u /* 2 + topic + packet id + PAYLOAD_HDR, at most */
#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL

/* Latency histogram: log-linear, 128 sub-buckets per power of two (<1 %). */
#define HIST_SUB_BITS 7u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (2u * HIST_SUB + 64u * HIST_SUB)

enum scenario { SC_P2P, SC_FANIN, SC_FANOUT, SC_IDLE };
static const char *const scenario_names[] = {"p2p", "fanin", "fanout", "idle"};

enum role { ROLE_PUB, ROLE_SUB, ROLE_AUX };
static const char *const role_names[] = {"publisher", "subscriber", "helper"};

enum cstate {
  CS_NEW,
  CS_CONNECTING, /* TCP connect in progress */
  CS_TLS,        /* TLS handshake in progress (--tls) */
  CS_WS,         /* WebSocket upgrade request sent (--ws) */
  CS_CONNACK,    /* CONNECT sent */
  CS_SUBACK,     /* SUBSCRIBE sent */
  CS_READY,
  CS_DISC, /* DISCONNECT sent, waiting for the broker to close */
  CS_CLOSED,
};

struct conn;
struct xport;
/* Output segment: len bytes of c->out, then fill bytes of B.fill. */
struct oseg {
  uint32_t len, fill;
};
typedef void (*packet_fn)(struct conn *c, uint8_t h, const uint8_t *b, size_t rl, int64_t t);

struct conn {
  int fd;
  uint8_t role;
  uint8_t state;
  bool in_flush;
  bool pollout;
  bool clean; /* CONNECT with clean session 1 */
  uint32_t idx;
  char *cid;           /* client identifier */
  packet_fn on_packet; /* helper connections (fill, probe, cleanup): their own handler */
  struct conn *flush_next;
  uint8_t *out;
  size_t out_len, out_off, out_cap;
  /* Unparsed tail of the input (a partial packet). */
  uint8_t *in;
  size_t in_len, in_cap;
  int64_t deadline;
  int64_t last_tx;
  struct xport *x; /* TLS / WebSocket state; NULL on plain TCP */
  /* Output with payloads by reference (BODY_BY_REF), when segments are
   * pending (seg_head < nseg): segment seg_head starts at c->out + out_off,
   * and seg_pos of its bytes are written; seg_bytes are left in all. */
  struct oseg *segs;
  size_t seg_head, nseg, seg_cap, seg_pos, seg_bytes;
  /* A PUBLISH being discarded (SKIP_MIN): skip bytes are left in the socket;
   * skip_pfx holds its first bytes (to PAYLOAD_HDR of the payload). */
  size_t skip, skip_rl;
  uint8_t skip_h;
  bool read_small; /* the last read ended a large PUBLISH: read SKIP_READ next */
  uint8_t *skip_pfx;
};

struct xport {
  struct ssl_st *ssl; /* NULL: no TLS */
  bool ws;
  bool ws_closed; /* the broker sent a Close frame */
  bool in_ctl;    /* reading a control frame's payload */
  uint8_t hlen;   /* frame header bytes so far */
  uint8_t hdr[14];
  uint8_t ctl_op, ctl_len, ctl_need;
  uint8_t ctl[125];
  uint64_t left; /* payload bytes left in the current data frame */
  /* WebSocket: the bytes to send (framed); TLS alone sends c->out. */
  uint8_t *wout;
  size_t wout_len, wout_off, wout_cap;
};

struct pub {
  struct conn c;     /* first member */
  uint64_t sent;     /* next sequence number */
  uint64_t done;     /* every seq < done reached all its subscribers */
  uint64_t max_msgs; /* stop after this many */
  uint64_t unacked;  /* QoS 1/2 PUBLISHes without PUBACK / PUBCOMP */
  uint32_t *ring;    /* per in-flight seq: deliveries so far (index seq % W) */
  uint8_t *ack;      /* per packet id: 0 free, 1 wait PUBACK/PUBREC, 2 wait PUBCOMP */
  char *topic;
  uint16_t topic_len;
};

struct sub {
  struct conn c; /* first member */
  uint32_t pub_base, npubs;
  uint64_t *next_seq; /* per publisher [pub_base, pub_base + npubs) */
  uint8_t *rel;       /* QoS 2 packet ids waiting for PUBREL (bitmap) */
  uint64_t received;
  char *filter;
  uint16_t filter_len;
};

static struct {
  /* options */
  const char *host;
  const char *port;
  enum scenario sc;
  unsigned qos;
  uint32_t n;
  uint32_t w;
  uint32_t size;
  double duration;
  double warmup;
  pid_t pid;
  double timeout;
  uint32_t batch;
  unsigned keepalive;
  double stall_timeout;
  double drain_timeout;
  bool quiet;
  bool copy_payload;        /* --copy-payload: no SKIP_MIN discarding */
  uint64_t rx_discarded;    /* payload bytes discarded in the kernel (SKIP_MIN) */
  bool persistent;          /* subscribers with clean session 0 */
  const char *id_prefix;    /* client ids (default: the run id) */
  const char *topic_prefix; /* fill/probe topics */
  uint64_t fill_retained;   /* --fill-retained N */
  uint64_t fill_sessions;   /* --fill-sessions N */
  bool probe;               /* --probe */
  const char *t0;           /* --t0 EPOCHREALTIME */
  uint64_t check_retained;  /* --check-retained N */
  uint64_t check_sessions;  /* --check-sessions N */
  uint32_t check_step;
  bool count;
  double probe_timeout;
  double data_timeout;
  bool tls;            /* --tls */
  bool ws;             /* --ws */
  const char *cafile;  /* --cafile: verify the broker's certificate */
  const char *ws_path; /* --ws-path (default /mqtt) */

  /* runtime */
  int epfd;
  struct addrinfo *ai;
  char rid[24];
  struct pub *pubs;
  uint32_t npubs;
  struct sub *subs;
  uint32_t nsubs;
  uint32_t expected; /* subscribers per message */
  struct conn *flush_head;
  uint8_t *rbuf;
  uint8_t *fill; /* payload filler */
  int64_t now;
  uint32_t inprogress; /* connections between connect() and READY */
  uint64_t ready_count;
  uint64_t closed_count;

  bool publishing;
  int64_t t_warm_end; /* the window opens at the first iteration at or after it */
  int64_t t_meas_start, t_meas_end;
  bool meas_open, meas_closed;
  int cpu_src;              /* enum cpu_src: where the broker's CPU time comes from */
  int64_t cpu_ns0, cpu_ns1; /* broker CPU time at the window's start and end, or -1 */
  int64_t gen_ns0, gen_ns1; /* this process's CPU time at the same points */
  /* The machine's CPU time (all CPUs) and the part of it the hypervisor
   * gave to others, at the window's start and end, in ticks, or -1. */
  int64_t mach0, mach1, steal0, steal1;
  int64_t last_progress;

  /* statistics */
  uint64_t published_total, published_meas;
  uint64_t delivered_total, delivered_meas;
  uint64_t gaps, dups, qos_mismatch, protocol_errors;
  uint64_t granted_lower;
  uint64_t hist[HIST_BUCKETS];
  uint64_t lat_count, lat_max, lat_min;
  int64_t last_delivery;

  int failed;
  char fail_reason[512];
  void *ssl_ctx;     /* SSL_CTX */
  char tls_info[96]; /* protocol and cipher of the first handshake */
  uint64_t rng;      /* WebSocket masks */
} B;

/* ------------------------------------------------------------------------ */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t secs_to_ns(double s) {
  return (int64_t)(s * (double)NS_PER_S);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  static unsigned printed;
  if (printed < 5) {
    fprintf(stderr, "mqttb-bench: ERROR: %s\n", msg);
  } else if (printed == 5) {
    fprintf(stderr, "mqttb-bench: (further errors not shown)\n");
  }
  printed++;
  if (!B.failed) {
    B.failed = 1;
    snprintf(B.fail_reason, sizeof B.fail_reason, "%s", msg);
  }
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "mqttb-bench: out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return q;
}

static void *xcalloc(size_t n, size_t sz) {
  void *q = calloc(n ? n : 1, sz ? sz : 1);
  if (!q) {
    fprintf(stderr, "mqttb-bench: out of memory\n");
    exit(1);
  }
  return q;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    exit(1);
  }
  char *s = xcalloc((size_t)n + 1, 1);
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

static const char *conn_name(const struct conn *c) {
  static char name[64];
  snprintf(name, sizeof name, "%s %u", role_names[c->role], c->idx);
  return name;
}

/* ---------------------------------------------------------- histogram --- */

static unsigned hist_index(uint64_t v) {
  if (v < 2u * HIST_SUB) {
    return (unsigned)v;
  }
  unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS + 1 */
  unsigned shift = msb - HIST_SUB_BITS;
  unsigned m = (unsigned)(v >> shift); /* [HIST_SUB, 2 * HIST_SUB) */
  return 2u * HIST_SUB + (shift - 1u) * HIST_SUB + (m - HIST_SUB);
}

/* Upper bound (inclusive) of bucket i. */
static uint64_t hist_upper(unsigned i) {
  if (i < 2u * HIST_SUB) {
    return i;
  }
  unsigned shift = (i - 2u * HIST_SUB) / HIST_SUB + 1u;
  uint64_t m = HIST_SUB + (i - 2u * HIST_SUB) % HIST_SUB;
  return ((m + 1u) << shift) - 1u;
}

static void hist_add(uint64_t ns) {
  B.hist[hist_index(ns)]++;
  B.lat_count++;
  if (ns > B.lat_max) {
    B.lat_max = ns;
  }
  if (ns < B.lat_min) {
    B.lat_min = ns;
  }
}

static uint64_t hist_pct(double pct) {
  if (!B.lat_count) {
    return 0;
  }
  uint64_t rank = (uint64_t)((double)B.lat_count * pct / 100.0);
  if (rank >= B.lat_count) {
    rank = B.lat_count - 1;
  }
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += B.hist[i];
    if (seen > rank) {
      uint64_t u = hist_upper(i);
      return u < B.lat_max ? u : B.lat_max;
    }
  }
  return B.lat_max;
}

/* ---------------------------------------------------------- output ------ */

static void out_reserve(struct conn *c, size_t extra) {
  if (c->out_off && c->out_off == c->out_len) {
    c->out_off = c->out_len = 0;
  }
  if (c->out_len + extra <= c->out_cap) {
    return;
  }
  if (c->out_off) {
    memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
    c->out_len -= c->out_off;
    c->out_off = 0;
    if (c->out_len + extra <= c->out_cap) {
      return;
    }
  }
  size_t cap = c->out_cap ? c->out_cap : 256;
  while (cap < c->out_len + extra) {
    cap *= 2;
  }
  c->out = xrealloc(c->out, cap);
  c->out_cap = cap;
}

static bool seg_active(const struct conn *c) {
  return c->seg_head < c->nseg;
}

static void seg_push(struct conn *c, size_t len, size_t fill) {
  if (len + fill == 0) {
    return; /* an empty segment would make an empty writev */
  }
  if (seg_active(c) && fill == 0 && c->segs[c->nseg - 1].fill == 0) {
    c->segs[c->nseg - 1].len += (uint32_t)len;
  } else {
    if (c->nseg == c->seg_cap) {
      c->seg_cap = c->seg_cap ? 2 * c->seg_cap : 64;
      c->segs = xrealloc(c->segs, c->seg_cap * sizeof *c->segs);
    }
    c->segs[c->nseg++] = (struct oseg){(uint32_t)len, (uint32_t)fill};
  }
  c->seg_bytes += len + fill;
}

/* n bytes were added to c->out: behind segments, they are one too. */
static void out_added(struct conn *c, size_t n) {
  c->out_len += n;
  if (seg_active(c)) {
    seg_push(c, n, 0);
  }
}

static void mark_flush(struct conn *c) {
  if (!c->in_flush) {
    c->in_flush = true;
    c->flush_next = B.flush_head;
    B.flush_head = c;
  }
}

static uint8_t *put_u16(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
  return p + 2;
}

static uint8_t *put_varint(uint8_t *p, size_t v) {
  do {
    uint8_t b = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) {
      b |= 0x80;
    }
    *p++ = b;
  } while (v);
  return p;
}

static size_t varint_len(size_t v) {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static void queue_bytes(struct conn *c, const uint8_t *b, size_t n) {
  out_reserve(c, n);
  memcpy(c->out + c->out_len, b, n);
  out_added(c, n);
  mark_flush(c);
}

static void queue_ack(struct conn *c, uint8_t type, unsigned pid) {
  uint8_t b[4] = {type, 2, (uint8_t)(pid >> 8), (uint8_t)pid};
  queue_bytes(c, b, 4);
}

static void queue_connect(struct conn *c) {
  const char *cid = c->cid;
  size_t cl = strlen(cid);
  size_t rl = 10 + 2 + cl;
  out_reserve(c, 5 + rl);
  uint8_t *p = c->out + c->out_len;
  *p++ = 0x10;
  p = put_varint(p, rl);
  p = put_u16(p, 4);
  memcpy(p, "MQTT", 4);
  p += 4;
  *p++ = 4;                      /* protocol level 3.1.1 */
  *p++ = c->clean ? 0x02 : 0x00; /* clean session */
  p = put_u16(p, B.keepalive);
  p = put_u16(p, (unsigned)cl);
  memcpy(p, cid, cl);
  p += cl;
  out_added(c, (size_t)(p - (c->out + c->out_len)));
  mark_flush(c);
}

static void queue_subscribe(struct sub *s) {
  struct conn *c = &s->c;
  size_t rl = 2 + 2 + s->filter_len + 1;
  out_reserve(c, 5 + rl);
  uint8_t *p = c->out + c->out_len;
  *p++ = 0x82;
  p = put_varint(p, rl);
  p = put_u16(p, 1); /* packet id */
  p = put_u16(p, s->filter_len);
  memcpy(p, s->filter, s->filter_len);
  p += s->filter_len;
  *p++ = (uint8_t)B.qos;
  out_added(c, (size_t)(p - (c->out + c->out_len)));
  mark_flush(c);
}

/* ---------------------------------------------------------- connections - */

static void conn_set_events(struct conn *c, bool want_out) {
  if (c->pollout == want_out) {
    return;
  }
  struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u), .data.ptr = c};
  if (epoll_ctl(B.epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
    fail("epoll_ctl: %s", strerror(errno));
  }
  c->pollout = want_out;
}

static void xport_free(struct conn *c);

static void conn_close(struct conn *c) {
  xport_free(c); /* first: SSL_shutdown writes to the socket */
  if (c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
  }
  if (c->state >= CS_CONNECTING && c->state < CS_READY && B.inprogress) {
    B.inprogress--;
  }
  if (c->state != CS_CLOSED) {
    B.closed_count++;
  }
  c->state = CS_CLOSED;
  free(c->in);
  c->in = NULL;
  c->in_len = c->in_cap = 0;
  c->out_len = c->out_off = 0;
  c->seg_head = c->nseg = c->seg_pos = c->seg_bytes = 0;
  c->skip = 0;
  c->read_small = false;
  free(c->skip_pfx);
  c->skip_pfx = NULL;
}

static void conn_lost(struct conn *c, const char *why) {
  if (c->state == CS_DISC) {
    conn_close(c);
    return;
  }
  const char *phase = c->state == CS_CONNECTING ? "connecting"
                      : c->state == CS_TLS      ? "during the TLS handshake"
                      : c->state == CS_WS       ? "waiting for the WebSocket upgrade"
                      : c->state == CS_CONNACK  ? "waiting for CONNACK"
                      : c->state == CS_SUBACK   ? "waiting for SUBACK"
                      : B.publishing            ? "during the measurement"
                                                : "while idle/draining";
  fail("broker closed the connection of %s (%s) %s", conn_name(c), why, phase);
  conn_close(c);
}

static void conn_write_layered(struct conn *c);
static void conn_read_layered(struct conn *c);
static void xport_start(struct conn *c);
static void tls_handshake(struct conn *c);

/* The socket took n more bytes of the segments. */
static void segs_written(struct conn *c, size_t n) {
  c->seg_bytes -= n;
  while (n > 0) {
    struct oseg *s = &c->segs[c->seg_head];
    size_t rem = (size_t)s->len + s->fill - c->seg_pos;
    if (n < rem) {
      c->seg_pos += n;
      return;
    }
    n -= rem;
    c->out_off += s->len;
    c->seg_head++;
    c->seg_pos = 0;
  }
}

/* Write the segments: their heads from c->out, payloads from B.fill.
 * Returns false if the socket is full or lost. */
static bool conn_write_segs(struct conn *c) {
  while (seg_active(c)) {
    struct iovec iov[64];
    int n = 0;
    size_t off = c->out_off, pos = c->seg_pos;
    for (size_t i = c->seg_head; i < c->nseg && n < 63; i++) {
      const struct oseg *s = &c->segs[i];
      if (pos < s->len) {
        iov[n++] = (struct iovec){c->out + off + pos, s->len - pos};
      }
      size_t fpos = pos > s->len ? pos - s->len : 0;
      if (s->fill > fpos) {
        iov[n++] = (struct iovec){B.fill + fpos, s->fill - fpos};
      }
      off += s->len;
      pos = 0;
    }
    ssize_t w = writev(c->fd, iov, n);
    if (w > 0) {
      segs_written(c, (size_t)w);
      continue;
    }
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      conn_set_events(c, true);
      return false;
    }
    conn_lost(c, w < 0 ? strerror(errno) : "writev returned 0");
    return false;
  }
  c->seg_head = c->nseg = 0;
  return true;
}

static void conn_write(struct conn *c) {
  if (c->fd < 0) {
    c->out_len = c->out_off = 0;
    return;
  }
  if (c->x) {
    conn_write_layered(c);
    return;
  }
  if (seg_active(c) && !conn_write_segs(c)) {
    return;
  }
  while (c->out_off < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n > 0) {
      c->out_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      conn_set_events(c, true);
      return;
    }
    conn_lost(c, n < 0 ? strerror(errno) : "write returned 0");
    return;
  }
  c->out_off = c->out_len = 0;
  c->last_tx = B.now;
  if (c->out_cap > (1u << 20)) {
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
  }
  conn_set_events(c, false);
}

static void flush_all(void) {
  while (B.flush_head) {
    struct conn *c = B.flush_head;
    B.flush_head = c->flush_next;
    c->in_flush = false;
    c->flush_next = NULL;
    if (!c->pollout) {
      conn_write(c);
    }
  }
}

static void conn_start(struct conn *c) {
  int fd = socket(B.ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail("socket (%s): %s", conn_name(c), strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->fd = fd;
  c->deadline = B.now + secs_to_ns(B.timeout);
  c->state = CS_CONNECTING;
  c->pollout = true;
  B.inprogress++;
  if (B.tls || B.ws) {
    c->x = xcalloc(1, sizeof *c->x);
    c->x->ws = B.ws;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(B.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    fail("epoll_ctl ADD: %s", strerror(errno));
    return;
  }
  if (connect(fd, B.ai->ai_addr, B.ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
    fail("connect (%s): %s", conn_name(c), strerror(errno));
    conn_close(c);
  }
}

static void conn_connected(struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    err = errno;
  }
  if (err) {
    fail("connect (%s): %s", conn_name(c), strerror(err));
    conn_close(c);
    return;
  }
  if (c->x) {
    xport_start(c); /* TLS handshake and/or WebSocket upgrade, then CONNECT */
    return;
  }
  c->state = CS_CONNACK;
  conn_set_events(c, false);
  queue_connect(c);
}

/* ---------------------------------------------------------- deliveries -- */

static void complete(struct pub *p, uint64_t seq) {
  if (seq < p->done) {
    return;
  }
  p->ring[seq % B.w]++;
  while (p->done < p->sent && p->ring[p->done % B.w] >= B.expected) {
    p->ring[p->done % B.w] = 0;
    p->done++;
  }
}

static void on_delivery(struct sub *s, const uint8_t *payload, size_t len, int64_t t) {
  if (len < PAYLOAD_HDR) {
    B.protocol_errors++;
    fail("%s received a %zu-byte payload (not from this generator)", conn_name(&s->c), len);
    return;
  }
  uint64_t ts;
  uint32_t pid, seq32;
  memcpy(&ts, payload, 8);
  memcpy(&pid, payload + 8, 4);
  memcpy(&seq32, payload + 12, 4);
  if (pid < s->pub_base || pid - s->pub_base >= s->npubs || pid >= B.npubs) {
    B.protocol_errors++;
    fail("%s received a message of publisher %u it did not subscribe to", conn_name(&s->c), pid);
    return;
  }
  struct pub *p = &B.pubs[pid];
  uint64_t seq = seq32;
  if (seq >= p->sent) {
    B.protocol_errors++;
    fail("%s received seq %" PRIu64 " of publisher %u, which has sent only %" PRIu64,
         conn_name(&s->c), seq, pid, p->sent);
    return;
  }
  uint64_t *next = &s->next_seq[pid - s->pub_base];
  if (seq < *next) {
    /* duplicate, or late after a gap was counted */
    B.dups++;
    return;
  }
  if (seq > *next) {
    B.gaps += seq - *next;
    for (uint64_t q = *next; q < seq; q++) {
      complete(p, q);
    }
  }
  *next = seq + 1;
  complete(p, seq);
  s->received++;
  B.delivered_total++;
  B.last_progress = t;
  B.last_delivery = t;
  if (t >= B.t_meas_start && t < B.t_meas_end) {
    B.delivered_meas++;
    hist_add(t > (int64_t)ts ? (uint64_t)(t - (int64_t)ts) : 0);
  }
}

/* ---------------------------------------------------------- input ------ */

static void handle_publish(struct conn *c, uint8_t h, const uint8_t *b, size_t rl, int64_t t) {
  unsigned q = (h >> 1) & 3u;
  if (c->role != ROLE_SUB || q == 3 || rl < 2) {
    B.protocol_errors++;
    fail("unexpected or malformed PUBLISH on %s", conn_name(c));
    return;
  }
  struct sub *s = (struct sub *)c;
  size_t tl = (size_t)b[0] << 8 | b[1];
  size_t pos = 2 + tl + (q ? 2u : 0u);
  if (pos > rl) {
    B.protocol_errors++;
    fail("malformed PUBLISH on %s", conn_name(c));
    return;
  }
  if (q != B.qos) {
    B.qos_mismatch++;
  }
  if (q == 1) {
    unsigned id = (unsigned)b[2 + tl] << 8 | b[3 + tl];
    queue_ack(c, 0x40, id);
  } else if (q == 2) {
    unsigned id = (unsigned)b[2 + tl] << 8 | b[3 + tl];
    if (!s->rel) {
      s->rel = xcalloc(65536 / 8, 1);
    }
    uint8_t bit = (uint8_t)(1u << (id & 7));
    queue_ack(c, 0x50, id);
    if (s->rel[id >> 3] & bit) {
      return; /* retransmission of a message we already have */
    }
    s->rel[id >> 3] |= bit;
  }
  on_delivery(s, b + pos, rl - pos, t);
}

static void handle_packet(struct conn *c, uint8_t h, const uint8_t *b, size_t rl, int64_t t) {
  if (c->on_packet) {
    c->on_packet(c, h, b, rl, t);
    return;
  }
  uint8_t type = h >> 4;
  unsigned id = rl >= 2 ? ((unsigned)b[0] << 8 | b[1]) : 0;
  switch (type) {
  case 3:
    handle_publish(c, h, b, rl, t);
    return;
  case 2: /* CONNACK */
    if (c->state != CS_CONNACK || rl != 2) {
      break;
    }
    if (b[1] != 0) {
      fail("%s: CONNACK return code %u", conn_name(c), b[1]);
      conn_close(c);
      return;
    }
    if (c->role == ROLE_SUB) {
      c->state = CS_SUBACK;
      c->deadline = t + secs_to_ns(B.timeout);
      queue_subscribe((struct sub *)c);
    } else {
      c->state = CS_READY;
      B.inprogress--;
      B.ready_count++;
    }
    return;
  case 9: /* SUBACK */
    if (c->state != CS_SUBACK || rl != 3 || id != 1) {
      break;
    }
    if (b[2] == 0x80) {
      fail("%s: subscription refused (SUBACK 0x80)", conn_name(c));
      return;
    }
    if (b[2] < B.qos) {
      B.granted_lower++;
    }
    c->state = CS_READY;
    B.inprogress--;
    B.ready_count++;
    return;
  case 4: /* PUBACK */
  case 5: /* PUBREC */
  case 7: /* PUBCOMP */
    if (c->role != ROLE_PUB || rl != 2) {
      break;
    } else {
      struct pub *p = (struct pub *)c;
      uint8_t want = type == 7 ? 2 : 1;
      if (!p->ack || p->ack[id] != want || (type == 4) != (B.qos == 1)) {
        B.protocol_errors++;
        fail("%s: unexpected %s for packet id %u", conn_name(c),
             type == 4   ? "PUBACK"
             : type == 5 ? "PUBREC"
                         : "PUBCOMP",
             id);
        return;
      }
      if (type == 5) {
        p->ack[id] = 2;
        queue_ack(c, 0x62, id); /* PUBREL */
      } else {
        p->ack[id] = 0;
        p->unacked--;
      }
      return;
    }
  case 6: /* PUBREL */
    if (c->role != ROLE_SUB || rl != 2 || h != 0x62) {
      break;
    } else {
      struct sub *s = (struct sub *)c;
      if (s->rel) {
        s->rel[id >> 3] &= (uint8_t) ~(1u << (id & 7));
      }
      queue_ack(c, 0x70, id); /* PUBCOMP, also for unknown ids [MQTT-4.3.3] */
      return;
    }
  case 13: /* PINGRESP */
    return;
  default:
    break;
  }
  B.protocol_errors++;
  fail("%s: unexpected packet type %u (flags 0x%x, %zu bytes) in state %u", conn_name(c),
       (unsigned)type, (unsigned)(h & 15u), rl, (unsigned)c->state);
}

/* Whether a packet with first byte h on c may be discarded (a PUBLISH to a
 * subscriber over plain TCP). */
static bool skippable(const struct conn *c, uint8_t h) {
  return !B.copy_payload && c->role == ROLE_SUB && !c->on_packet && !c->x && h >> 4 == 3;
}

/* Starts discarding the PUBLISH whose first avail of rl body bytes are at b,
 * if it qualifies (SKIP_MIN); returns whether it did. */

static bool skip_start(struct conn *c, uint8_t h, const uint8_t *b, size_t avail, size_t rl) {
  if (!skippable(c, h) || rl - avail < SKIP_MIN || avail < 2) {
    return false;
  }
  size_t need = 2u + ((size_t)b[0] << 8 | b[1]) + (((h >> 1) & 3u) ? 2u : 0u) + PAYLOAD_HDR;
  if (need > avail || need > SKIP_PFX_MAX) {
    return false;
  }
  if (!c->skip_pfx) {
    c->skip_pfx = xcalloc(SKIP_PFX_MAX, 1);
  }
  memcpy(c->skip_pfx, b, need);
  c->skip_h = h;
  c->skip_rl = rl;
  c->skip = rl - avail;
  return true;
}

/* Parses whole packets from buf; returns the number of bytes consumed. A
 * PUBLISH cut off at the end may be consumed too (skip_start). */
static size_t parse(struct conn *c, const uint8_t *buf, size_t len, int64_t t) {
  size_t pos = 0;
  while (len - pos >= 2 && c->state != CS_CLOSED) {
    size_t rl = 0;
    unsigned shift = 0;
    size_t i = pos + 1;
    bool complete_hdr = false;
    for (; i < len && i < pos + 5; i++) {
      rl |= (size_t)(buf[i] & 0x7fu) << shift;
      shift += 7;
      if (!(buf[i] & 0x80)) {
        complete_hdr = true;
        i++;
        break;
      }
    }
    if (!complete_hdr) {
      if (i >= pos + 5) {
        fail("%s: malformed remaining length", conn_name(c));
        conn_close(c);
      }
      break;
    }
    if (len - i < rl) {
      if (skip_start(c, buf[pos], buf + i, len - i, rl)) {
        pos = len;
      }
      break;
    }
    if (rl >= SKIP_MIN + SKIP_READ && skippable(c, buf[pos])) {
      c->read_small = true; /* read in whole: the next one may not need to be */
    }
    handle_packet(c, buf[pos], buf + i, rl, t);
    pos = i + rl;
  }
  return pos;
}

static void conn_read(struct conn *c) {
  if (c->x) {
    conn_read_layered(c);
    return;
  }
  for (int k = 0; k < READS_PER_EVENT && c->fd >= 0; k++) {
    ssize_t n;
    size_t want;
    if (c->skip) {
      want = c->skip;
      n = recv(c->fd, NULL, want, MSG_TRUNC);
      if (n > 0) {
        c->skip -= (size_t)n;
        B.rx_discarded += (uint64_t)n;
        if (!c->skip) {
          /* handle_publish reads the body only to PAYLOAD_HDR of the payload */
          handle_packet(c, c->skip_h, c->skip_pfx, c->skip_rl, now_ns());
          c->read_small = true;
        }
      }
    } else if (c->in_len == 0) {
      want = c->read_small ? SKIP_READ : RBUF_SIZE;
      n = read(c->fd, B.rbuf, want);
      if (n > 0) {
        c->read_small = false;
        size_t used = parse(c, B.rbuf, (size_t)n, now_ns());
        size_t rem = (size_t)n - used;
        if (rem && c->fd >= 0) {
          if (c->in_cap < rem) {
            c->in_cap = rem < 4096 ? 4096 : rem;
            c->in = xrealloc(c->in, c->in_cap);
          }
          memcpy(c->in, B.rbuf + used, rem);
          c->in_len = rem;
        }
      }
    } else {
      if (c->in_cap - c->in_len < 65536) {
        c->in_cap = c->in_len + RBUF_SIZE;
        c->in = xrealloc(c->in, c->in_cap);
      }
      want = c->in_cap - c->in_len;
      n = read(c->fd, c->in + c->in_len, want);
      if (n > 0) {
        c->in_len += (size_t)n;
        c->read_small = false;
        size_t used = parse(c, c->in, c->in_len, now_ns());
        if (c->fd >= 0) {
          memmove(c->in, c->in + used, c->in_len - used);
          c->in_len -= used;
          if (c->in_len == 0 && c->in_cap > 4u * 1024u * 1024u) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
          }
        }
      }
    }
    if (n == 0) {
      conn_lost(c, "EOF");
      return;
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        conn_lost(c, strerror(errno));
      }
      return;
    }
    if ((size_t)n < want) {
      return;
    }
  }
}

/* ---------------------------------------------------------- transports -- */
/*
 * TLS and WebSocket layers. Only connections with c->x go through here: the
 * plain TCP path above is unchanged. The MQTT encoder still writes into
 * c->out; conn_write_layered wraps it (one masked binary frame per flush, into
 * x->wout) and sends through TLS or the socket. conn_read_layered reads
 * (TLS-decrypted) bytes into B.rbuf, unwraps the frames in place and hands the
 * MQTT bytes to the same parser.
 */

#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="        /* RFC 6455's example key */
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* ... and its accept value */
#define WS_MAX_RESPONSE 16384u

static const char *transport_name(void) {
  return B.tls ? (B.ws ? "wss" : "tls") : (B.ws ? "ws" : "tcp");
}

static uint32_t rng32(void) {
  /* xorshift64* */
  B.rng ^= B.rng >> 12;
  B.rng ^= B.rng << 25;
  B.rng ^= B.rng >> 27;
  return (uint32_t)((B.rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static void wout_reserve(struct xport *x, size_t extra) {
  if (x->wout_off && x->wout_off == x->wout_len) {
    x->wout_off = x->wout_len = 0;
  }
  if (x->wout_len + extra <= x->wout_cap) {
    return;
  }
  if (x->wout_off) {
    memmove(x->wout, x->wout + x->wout_off, x->wout_len - x->wout_off);
    x->wout_len -= x->wout_off;
    x->wout_off = 0;
    if (x->wout_len + extra <= x->wout_cap) {
      return;
    }
  }
  size_t cap = x->wout_cap ? x->wout_cap : 1024;
  while (cap < x->wout_len + extra) {
    cap *= 2;
  }
  x->wout = xrealloc(x->wout, cap);
  x->wout_cap = cap;
}

/* dst = src XOR the 4-byte mask, 8 bytes at a time. */
static void ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4]) {
  uint8_t m8[8];
  memcpy(m8, mask, 4);
  memcpy(m8 + 4, mask, 4);
  uint64_t m;
  memcpy(&m, m8, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, src + i, 8);
    v ^= m;
    memcpy(dst + i, &v, 8);
  }
  for (; i < n; i++) {
    dst[i] = src[i] ^ mask[i & 3u];
  }
}

/* Appends one masked frame (FIN set) to x->wout. */
static void ws_frame(struct conn *c, unsigned op, const uint8_t *data, size_t len) {
  struct xport *x = c->x;
  wout_reserve(x, 14 + len);
  uint8_t *p = x->wout + x->wout_len;
  *p++ = (uint8_t)(0x80u | op);
  if (len < 126) {
    *p++ = (uint8_t)(0x80u | len);
  } else if (len < 65536) {
    *p++ = 0x80u | 126u;
    p = put_u16(p, (unsigned)len);
  } else {
    *p++ = 0x80u | 127u;
    for (int k = 7; k >= 0; k--) {
      *p++ = (uint8_t)((uint64_t)len >> (8 * k));
    }
  }
  uint32_t r = rng32();
  memcpy(p, &r, 4);
  ws_mask_copy(p + 4, data, len, p);
  x->wout_len = (size_t)(p + 4 + len - x->wout);
}

static void ws_send_upgrade(struct conn *c) {
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\n"
                   "Host: %s:%s\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Key: " WS_KEY "\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: mqtt\r\n"
                   "\r\n",
                   B.ws_path, B.host, B.port);
  wout_reserve(c->x, (size_t)n);
  memcpy(c->x->wout + c->x->wout_len, req, (size_t)n);
  c->x->wout_len += (size_t)n;
  c->state = CS_WS;
  conn_set_events(c, false);
  mark_flush(c);
}

/* After the TCP connect and after the TLS handshake. */
static void xport_after_tls(struct conn *c) {
  if (B.ws) {
    ws_send_upgrade(c);
    return;
  }
  c->state = CS_CONNACK;
  conn_set_events(c, false);
  queue_connect(c);
}

#ifdef HAVE_OPENSSL
static const char *tls_errstr(void) {
  static char buf[256];
  unsigned long e = ERR_get_error();
  if (!e) {
    return errno ? strerror(errno) : "unexpected EOF";
  }
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

static void tls_init(void) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    fprintf(stderr, "mqttb-bench: SSL_CTX_new: %s\n", tls_errstr());
    exit(2);
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* Fewer read syscalls: OpenSSL reads what the socket has, not one record
   * header and then its body. conn_read_layered reads until WANT_READ, so
   * nothing is left in OpenSSL's buffer while epoll waits. */
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (B.cafile) {
    if (SSL_CTX_load_verify_locations(ctx, B.cafile, NULL) != 1) {
      fprintf(stderr, "mqttb-bench: --cafile %s: %s\n", B.cafile, tls_errstr());
      exit(2);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  }
  B.ssl_ctx = ctx;
}

static void tls_handshake(struct conn *c) {
  SSL *ssl = c->x->ssl;
  ERR_clear_error();
  int r = SSL_do_handshake(ssl);
  if (r == 1) {
    if (!B.tls_info[0]) {
      snprintf(B.tls_info, sizeof B.tls_info, "%s/%s", SSL_get_version(ssl),
               SSL_get_cipher_name(ssl));
    }
    xport_after_tls(c);
    return;
  }
  int e = SSL_get_error(ssl, r);
  if (e == SSL_ERROR_WANT_READ) {
    conn_set_events(c, false);
  } else if (e == SSL_ERROR_WANT_WRITE) {
    conn_set_events(c, true);
  } else {
    const char *why = tls_errstr();
    long v = SSL_get_verify_result(ssl);
    fail("TLS handshake (%s): %s%s%s", conn_name(c), why, v != X509_V_OK ? "; " : "",
         v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
    conn_close(c);
  }
}

/* read()/write() conventions: > 0 bytes, 0 EOF, -1 and errno (EAGAIN). */
static ssize_t tls_io(struct conn *c, void *buf, size_t n, bool wr) {
  SSL *ssl = c->x->ssl;
  int len = n > INT_MAX ? INT_MAX : (int)n;
  ERR_clear_error();
  int r = wr ? SSL_write(ssl, buf, len) : SSL_read(ssl, buf, len);
  if (r > 0) {
    return r;
  }
  switch (SSL_get_error(ssl, r)) {
  case SSL_ERROR_ZERO_RETURN:
    return 0;
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    errno = EAGAIN;
    return -1;
  case SSL_ERROR_SYSCALL:
    if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
      return 0;
    }
    return -1;
  default:
    fail("%s: TLS: %s", conn_name(c), tls_errstr());
    errno = EPROTO;
    return -1;
  }
}

static void xport_start(struct conn *c) {
  if (!B.tls) {
    xport_after_tls(c);
    return;
  }
  SSL *ssl = SSL_new(B.ssl_ctx);
  if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
    fail("SSL_new: %s", tls_errstr());
    conn_close(c);
    return;
  }
  if (B.cafile) {
    SSL_set1_host(ssl, B.host); /* an IP address too (OpenSSL 3) */
  }
  SSL_set_connect_state(ssl);
  c->x->ssl = ssl;
  c->state = CS_TLS;
  tls_handshake(c);
}

static void xport_tls_free(struct xport *x) {
  if (x->ssl) {
    SSL_shutdown(x->ssl); /* a close_notify, if the socket takes it */
    SSL_free(x->ssl);
  }
}
#else
static void tls_init(void) {
  fprintf(stderr, "mqttb-bench: built without OpenSSL: no --tls\n");
  exit(2);
}
static void tls_handshake(struct conn *c) {
  (void)c;
}
static ssize_t tls_io(struct conn *c, void *buf, size_t n, bool wr) {
  (void)c, (void)buf, (void)n, (void)wr;
  errno = ENOTSUP;
  return -1;
}
static void xport_start(struct conn *c) {
  xport_after_tls(c);
}
static void xport_tls_free(struct xport *x) {
  (void)x;
}
#endif

static void xport_free(struct conn *c) {
  struct xport *x = c->x;
  if (!x) {
    return;
  }
  xport_tls_free(x); /* before conn_close closed the fd: SSL_shutdown may still send */
  free(x->wout);
  free(x);
  c->x = NULL;
}

static void conn_write_layered(struct conn *c) {
  struct xport *x = c->x;
  if (c->state == CS_TLS) {
    return; /* tls_handshake drives the socket */
  }
  if (x->ws && c->out_len > c->out_off) {
    ws_frame(c, 2, c->out + c->out_off, c->out_len - c->out_off);
    c->out_off = c->out_len = 0;
  }
  uint8_t *buf = x->ws ? x->wout : c->out;
  size_t *off = x->ws ? &x->wout_off : &c->out_off;
  size_t len = x->ws ? x->wout_len : c->out_len;
  while (*off < len) {
    ssize_t n =
        x->ssl ? tls_io(c, buf + *off, len - *off, true) : write(c->fd, buf + *off, len - *off);
    if (n > 0) {
      *off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      conn_set_events(c, true);
      return;
    }
    conn_lost(c, n < 0 ? strerror(errno) : "write returned 0");
    return;
  }
  c->out_off = c->out_len = 0;
  x->wout_off = x->wout_len = 0;
  c->last_tx = B.now;
  if (c->out_cap > (1u << 20)) {
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
  }
  if (x->wout_cap > (1u << 20)) {
    free(x->wout);
    x->wout = NULL;
    x->wout_cap = 0;
  }
  conn_set_events(c, false);
}

static void ws_control(struct conn *c) {
  struct xport *x = c->x;
  x->in_ctl = false;
  if (x->ctl_op == 9) { /* ping */
    ws_frame(c, 10, x->ctl, x->ctl_len);
    mark_flush(c);
  } else if (x->ctl_op == 8) { /* close */
    x->ws_closed = true;
  }
}

/* Unwraps WebSocket frames in place: returns how many MQTT bytes are now at
 * the start of buf. */
static size_t ws_deframe(struct conn *c, uint8_t *buf, size_t len) {
  struct xport *x = c->x;
  size_t in = 0, out = 0;
  while (in < len && !x->ws_closed) {
    if (x->left) {
      size_t k = len - in < x->left ? len - in : (size_t)x->left;
      if (out != in) {
        memmove(buf + out, buf + in, k);
      }
      out += k;
      in += k;
      x->left -= k;
      continue;
    }
    if (x->in_ctl) {
      size_t k = (size_t)(x->ctl_need - x->ctl_len);
      if (k > len - in) {
        k = len - in;
      }
      memcpy(x->ctl + x->ctl_len, buf + in, k);
      x->ctl_len = (uint8_t)(x->ctl_len + k);
      in += k;
      if (x->ctl_len == x->ctl_need) {
        ws_control(c);
      }
      continue;
    }
    x->hdr[x->hlen++] = buf[in++];
    if (x->hlen < 2) {
      continue;
    }
    unsigned l7 = x->hdr[1] & 0x7fu;
    unsigned need = 2u + (l7 == 126 ? 2u : l7 == 127 ? 8u : 0u);
    if (x->hlen < need) {
      continue;
    }
    uint64_t plen = l7;
    if (l7 >= 126) {
      plen = 0;
      for (unsigned k = 2; k < need; k++) {
        plen = plen << 8 | x->hdr[k];
      }
    }
    unsigned op = x->hdr[0] & 0x0fu;
    x->hlen = 0;
    if (x->hdr[1] & 0x80u) {
      fail("%s: WebSocket: the broker sent a masked frame", conn_name(c));
    } else if (x->hdr[0] & 0x70u) {
      fail("%s: WebSocket: frame with RSV bits 0x%x", conn_name(c), x->hdr[0] & 0x70u);
    } else if (op >= 8) {
      if (plen > 125 || !(x->hdr[0] & 0x80u)) {
        fail("%s: WebSocket: bad control frame (opcode %u, %" PRIu64 " bytes)", conn_name(c), op,
             plen);
      } else {
        x->ctl_op = (uint8_t)op;
        x->ctl_need = (uint8_t)plen;
        x->ctl_len = 0;
        x->in_ctl = true;
        if (plen == 0) {
          ws_control(c);
        }
        continue;
      }
    } else if (op == 0 || op == 2) {
      x->left = plen;
      continue;
    } else {
      fail("%s: WebSocket: unexpected opcode %u", conn_name(c), op);
    }
    conn_close(c);
    return 0;
  }
  return out;
}

/* The upgrade response: collected in c->in until the blank line. Returns the
 * bytes after it (moved to the start of buf), or 0 (also while waiting). */
static size_t ws_response(struct conn *c, uint8_t *buf, size_t len) {
  if (c->in_cap < c->in_len + len + 1) {
    c->in_cap = c->in_len + len + 1;
    c->in = xrealloc(c->in, c->in_cap);
  }
  memcpy(c->in + c->in_len, buf, len);
  c->in_len += len;
  c->in[c->in_len] = 0;
  char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!end) {
    if (c->in_len > WS_MAX_RESPONSE) {
      fail("%s: WebSocket upgrade: no end of the response in %zu bytes", conn_name(c), c->in_len);
      conn_close(c);
    }
    return 0;
  }
  *end = 0;
  char *text = (char *)c->in;
  size_t hdr_len = (size_t)(end - text) + 4;
  char *eol = strstr(text, "\r\n");
  if (eol) {
    *eol = 0;
  }
  if (strncmp(text, "HTTP/1.1 101", 12) != 0) {
    fail("%s: WebSocket upgrade refused: %s", conn_name(c), text);
    conn_close(c);
    return 0;
  }
  if (eol) {
    *eol = '\r';
  }
  if (!strcasestr(text, "\r\nSec-WebSocket-Protocol: mqtt") || !strstr(text, WS_ACCEPT)) {
    fail("%s: WebSocket upgrade: no 'Sec-WebSocket-Protocol: mqtt' or a wrong "
         "Sec-WebSocket-Accept:\n%s",
         conn_name(c), text);
    conn_close(c);
    return 0;
  }
  size_t rest = c->in_len - hdr_len;
  memmove(buf, c->in + hdr_len, rest); /* rest <= len: it came in this read */
  free(c->in);
  c->in = NULL;
  c->in_len = c->in_cap = 0;
  c->state = CS_CONNACK;
  queue_connect(c);
  return rest;
}

/* MQTT bytes in buf (B.rbuf): parse, keep a partial packet in c->in. */
static void deliver(struct conn *c, uint8_t *buf, size_t n) {
  if (c->in_len == 0) {
    size_t used = parse(c, buf, n, now_ns());
    size_t rem = n - used;
    if (rem && c->fd >= 0) {
      if (c->in_cap < rem) {
        c->in_cap = rem < 4096 ? 4096 : rem;
        c->in = xrealloc(c->in, c->in_cap);
      }
      memcpy(c->in, buf + used, rem);
      c->in_len = rem;
    }
    return;
  }
  if (c->in_cap - c->in_len < n) {
    c->in_cap = c->in_len + n + 4096;
    c->in = xrealloc(c->in, c->in_cap);
  }
  memcpy(c->in + c->in_len, buf, n);
  c->in_len += n;
  size_t used = parse(c, c->in, c->in_len, now_ns());
  if (c->fd >= 0) {
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (c->in_len == 0 && c->in_cap > 65536) {
      free(c->in);
      c->in = NULL;
      c->in_cap = 0;
    }
  }
}

/* Reads until the socket (and OpenSSL) has nothing more. */
static void conn_read_layered(struct conn *c) {
  if (c->state == CS_TLS) {
    tls_handshake(c);
    return;
  }
  for (;;) {
    struct xport *x = c->x;
    size_t got = 0;
    int end = 0; /* 1 drained, 2 EOF, 3 error */
    int err = 0;
    while (got < RBUF_SIZE) {
      size_t want = RBUF_SIZE - got;
      ssize_t n = x->ssl ? tls_io(c, B.rbuf + got, want, false) : read(c->fd, B.rbuf + got, want);
      if (n > 0) {
        got += (size_t)n;
        if (!x->ssl && (size_t)n < want) {
          end = 1; /* a short read: the socket is empty */
          break;
        }
        continue;
      }
      if (n == 0) {
        end = 2;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        end = 1;
      } else {
        end = 3;
        err = errno;
      }
      break;
    }
    size_t n = got;
    if (n && c->state == CS_WS) {
      n = ws_response(c, B.rbuf, n);
    }
    if (n && x->ws) {
      n = ws_deframe(c, B.rbuf, n);
    }
    if (n && c->fd >= 0) {
      deliver(c, B.rbuf, n);
    }
    if (c->fd < 0) {
      return;
    }
    if (x->ws && x->ws_closed) {
      conn_lost(c, "WebSocket Close frame");
      return;
    }
    if (end == 2) {
      conn_lost(c, "EOF");
      return;
    }
    if (end == 3) {
      conn_lost(c, B.failed && err == EPROTO ? "TLS error" : strerror(err));
      return;
    }
    if (end == 1) {
      return;
    }
  }
}

/* ---------------------------------------------------------- publishing -- */

static void pub_fill(struct pub *p) {
  struct conn *c = &p->c;
  if (c->state != CS_READY || !B.publishing) {
    return;
  }
  uint64_t room = B.w - (p->sent - p->done);
  if (p->sent + room > p->max_msgs) {
    room = p->max_msgs - p->sent;
  }
  if (!room) {
    return;
  }
  size_t rl = 2 + p->topic_len + (B.qos ? 2u : 0u) + B.size;
  size_t pkt = 1 + varint_len(rl) + rl;
  /* Bound the output buffer: with big payloads and windows, queue at most
   * OUT_FILL_MAX bytes (but always one message) until the socket drains. */
  bool by_ref = c->x == NULL && B.size >= BODY_BY_REF;
  if (by_ref && !seg_active(c) && c->out_len > c->out_off) {
    seg_push(c, c->out_len - c->out_off, 0); /* what is queued goes first */
  }
  size_t pending = by_ref ? c->seg_bytes : c->out_len - c->out_off;
  if (pending >= OUT_FILL_MAX) {
    return;
  }
  uint64_t fit = (OUT_FILL_MAX - pending) / pkt;
  if (fit == 0) {
    fit = 1;
  }
  if (room > fit) {
    room = fit;
  }
  size_t body = by_ref ? B.size - PAYLOAD_HDR : 0; /* bytes not in c->out */
  out_reserve(c, (pkt - body) * room);
  uint64_t ts = (uint64_t)now_ns();
  uint8_t h = (uint8_t)(0x30 | (B.qos << 1));
  uint8_t *o = c->out + c->out_len;
  uint32_t pubid = c->idx;
  for (uint64_t k = 0; k < room; k++) {
    uint64_t seq = p->sent;
    if (B.qos) {
      unsigned id = (unsigned)(seq % 65535u) + 1u;
      if (p->ack[id]) {
        break; /* packet id still in use: wait for its ack */
      }
      p->ack[id] = 1;
      p->unacked++;
    }
    uint8_t *q = o;
    *q++ = h;
    q = put_varint(q, rl);
    q = put_u16(q, p->topic_len);
    memcpy(q, p->topic, p->topic_len);
    q += p->topic_len;
    if (B.qos) {
      q = put_u16(q, (unsigned)(seq % 65535u) + 1u);
    }
    uint32_t seq32 = (uint32_t)seq;
    memcpy(q, &ts, 8);
    memcpy(q + 8, &pubid, 4);
    memcpy(q + 12, &seq32, 4);
    if (by_ref) {
      o = q + PAYLOAD_HDR;
      seg_push(c, pkt - body, body);
    } else {
      if (B.size > PAYLOAD_HDR) {
        memcpy(q + PAYLOAD_HDR, B.fill, B.size - PAYLOAD_HDR);
      }
      o = q + B.size;
    }
    p->sent++;
    B.published_total++;
    if ((int64_t)ts >= B.t_meas_start && (int64_t)ts < B.t_meas_end) {
      B.published_meas++;
    }
  }
  c->out_len = (size_t)(o - c->out);
  mark_flush(c);
}

/* ---------------------------------------------------------- broker CPU -- */

/* Where the broker's CPU time (user + system, all threads) is read from, in
 * order of preference: its POSIX process CPU clock (clock_getcpuclockid: ns,
 * every thread, exited ones too, up to date for running threads); the sum of
 * the first field of /proc/PID/task/ * /schedstat (ns, live threads only; a
 * running thread's figure may lag by a scheduler tick); utime + stime of
 * /proc/PID/stat (clock ticks, all threads). The same source is used at both
 * ends of the window. */
enum cpu_src { CPU_NONE, CPU_CLOCK, CPU_SCHEDSTAT, CPU_STAT };
static const char *const cpu_src_names[] = {"na", "clock", "schedstat", "stat"};

static int64_t cpu_from_clock(pid_t pid) {
  clockid_t clk;
  struct timespec ts;
  if (clock_getcpuclockid(pid, &clk) != 0 || clock_gettime(clk, &ts) != 0) {
    return -1;
  }
  return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t cpu_from_schedstat(pid_t pid) {
  char path[96];
  snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
  DIR *d = opendir(path);
  if (!d) {
    return -1;
  }
  int64_t sum = 0;
  int found = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') {
      continue;
    }
    snprintf(path, sizeof path, "/proc/%ld/task/%.20s/schedstat", (long)pid, e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) {
      continue; /* the thread just exited */
    }
    unsigned long long ns;
    if (fscanf(f, "%llu", &ns) == 1) {
      sum += (int64_t)ns;
      found++;
    }
    fclose(f);
  }
  closedir(d);
  return found ? sum : -1;
}

static int64_t cpu_from_stat(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f) {
    return -1;
  }
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  /* Field 2 (comm) may contain spaces and parentheses: start after the last ')'. */
  char *p = strrchr(buf, ')');
  if (!p) {
    return -1;
  }
  unsigned long long ut, st;
  /* Fields 3..13 (state .. cmajflt), then 14 utime and 15 stime. */
  if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
    return -1;
  }
  long tck = sysconf(_SC_CLK_TCK);
  if (tck <= 0) {
    return -1;
  }
  return (int64_t)((ut + st) * (unsigned long long)NS_PER_S / (unsigned long long)tck);
}

/* The machine's CPU time (the aggregate "cpu" line of /proc/stat, all
 * fields) into *total and the stolen part of it (field 8) into *steal, in
 * clock ticks; 0, or -1 when there is no such line (not Linux, no /proc). */
static int machine_ticks(int64_t *total, int64_t *steal) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) {
    return -1;
  }
  unsigned long long v[8] = {0};
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                 &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  if (n < 4) {
    return -1;
  }
  *total = 0;
  for (int i = 0; i < 8; i++) {
    *total += (int64_t)v[i];
  }
  *steal = (int64_t)v[7];
  return 0;
}

/* The broker's CPU time in ns from B.cpu_src (the first source that works,
 * when none was chosen yet), or -1. */
static int64_t broker_cpu_ns(void) {
  static int64_t (*const fn[])(pid_t) = {NULL, cpu_from_clock, cpu_from_schedstat, cpu_from_stat};
  if (B.cpu_src != CPU_NONE) {
    return fn[B.cpu_src](B.pid);
  }
  for (int src = CPU_CLOCK; src <= CPU_STAT; src++) {
    int64_t v = fn[src](B.pid);
    if (v >= 0) {
      B.cpu_src = src;
      return v;
    }
  }
  return -1;
}

/* Opens the measured window at the first loop iteration at or after the end
 * of the warm-up, and closes it at the first one at or after its end, reading
 * the broker's CPU time at both points (with --pid), so that the deliveries
 * counted and the CPU time cover the same interval. Deliveries read before
 * the window opens do not count (t_meas_start is INT64_MAX until then). */
static void meas_edges(void) {
  if (!B.t_warm_end || B.meas_closed || !B.publishing) {
    return;
  }
  if (!B.meas_open) {
    if (B.now < B.t_warm_end) {
      return;
    }
    B.meas_open = true;
    if (B.pid) {
      B.cpu_ns0 = broker_cpu_ns();
    }
    B.gen_ns0 = cpu_from_clock(getpid());
    if (machine_ticks(&B.mach0, &B.steal0) != 0) {
      B.mach0 = -1;
    }
    B.now = now_ns();
    B.t_meas_start = B.now;
    B.t_meas_end = B.now + secs_to_ns(B.duration);
  } else if (B.now >= B.t_meas_end) {
    B.meas_closed = true;
    B.t_meas_end = B.now;
    if (B.pid && B.cpu_ns0 >= 0) {
      B.cpu_ns1 = broker_cpu_ns();
    }
    B.gen_ns1 = cpu_from_clock(getpid());
    if (B.mach0 < 0 || machine_ticks(&B.mach1, &B.steal1) != 0) {
      B.mach1 = -1;
    }
  }
}

/* ---------------------------------------------------------- event loop -- */

static void poll_once(int timeout_ms) {
  static struct epoll_event evs[MAX_EVENTS];
  flush_all();
  int n = epoll_wait(B.epfd, evs, MAX_EVENTS, timeout_ms);
  B.now = now_ns();
  meas_edges();
  if (n < 0) {
    if (errno != EINTR) {
      fail("epoll_wait: %s", strerror(errno));
    }
    return;
  }
  for (int i = 0; i < n; i++) {
    struct conn *c = evs[i].data.ptr;
    uint32_t e = evs[i].events;
    if (c->fd < 0) {
      continue;
    }
    if (c->state == CS_CONNECTING) {
      if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        conn_connected(c);
      }
      continue;
    }
    if (c->state == CS_TLS) {
      tls_handshake(c);
      continue;
    }
    if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      conn_read(c);
    }
    if ((e & EPOLLOUT) && c->fd >= 0) {
      conn_write(c);
    }
  }
  flush_all();
}

static void sweep_pings(void) {
  static int64_t next;
  if (B.now < next || !B.keepalive) {
    return;
  }
  next = B.now + NS_PER_S;
  int64_t idle = (int64_t)B.keepalive * NS_PER_S / 2;
  static const uint8_t ping[2] = {0xc0, 0};
  for (uint32_t i = 0; i < B.npubs; i++) {
    struct conn *c = &B.pubs[i].c;
    if (c->state == CS_READY && B.now - c->last_tx > idle) {
      queue_bytes(c, ping, 2);
      c->last_tx = B.now;
    }
  }
  for (uint32_t i = 0; i < B.nsubs; i++) {
    struct conn *c = &B.subs[i].c;
    if (c->state == CS_READY && B.now - c->last_tx > idle) {
      queue_bytes(c, ping, 2);
      c->last_tx = B.now;
    }
  }
}

/* Connects (and subscribes) count connections, at most B.batch at a time. */
static bool setup_conns(struct conn **list, uint32_t count) {
  uint32_t next = 0;
  uint64_t target = B.ready_count + count;
  int64_t next_check = 0;
  int64_t last_report = B.now;
  while (B.ready_count < target && !B.failed) {
    while (B.inprogress < B.batch && next < count && !B.failed) {
      conn_start(list[next++]);
    }
    poll_once(50);
    sweep_pings();
    if (B.now >= next_check) {
      next_check = B.now + 100 * NS_PER_MS;
      for (uint32_t i = 0; i < next; i++) {
        struct conn *c = list[i];
        if (c->state >= CS_CONNECTING && c->state < CS_READY && B.now > c->deadline) {
          fail("timeout (%.1f s) %s on %s (%" PRIu64 " of %u ready)", B.timeout,
               c->state == CS_CONNECTING ? "connecting"
               : c->state == CS_TLS      ? "in the TLS handshake"
               : c->state == CS_WS       ? "waiting for the WebSocket upgrade"
               : c->state == CS_CONNACK  ? "waiting for CONNACK"
                                         : "waiting for SUBACK",
               conn_name(c), B.ready_count + count - target, count);
          return false;
        }
      }
    }
    if (!B.quiet && count >= 1000 && B.now - last_report > 2 * NS_PER_S) {
      last_report = B.now;
      fprintf(stderr, "  ... %" PRIu64 "/%u connected\n", B.ready_count + count - target, count);
    }
  }
  return !B.failed;
}

static uint64_t in_flight(void) {
  uint64_t f = 0;
  for (uint32_t i = 0; i < B.npubs; i++) {
    f += B.pubs[i].sent - B.pubs[i].done;
  }
  return f;
}

static uint64_t unacked(void) {
  uint64_t f = 0;
  for (uint32_t i = 0; i < B.npubs; i++) {
    f += B.pubs[i].unacked;
  }
  return f;
}

static int poll_timeout_until(int64_t deadline, int cap_ms) {
  int64_t ms = (deadline - B.now + NS_PER_MS - 1) / NS_PER_MS;
  if (ms < 0) {
    ms = 0;
  }
  return ms < cap_ms ? (int)ms : cap_ms;
}

/* Publishes until t_meas_end (or until every publisher hit max_msgs), then
 * drains: waits until everything sent was delivered and acknowledged. */
static void run_traffic(void) {
  B.publishing = true;
  B.last_progress = B.now;
  int64_t stall = secs_to_ns(B.stall_timeout);
  while (!B.failed && B.now < B.t_meas_end) {
    bool all_done = true;
    for (uint32_t i = 0; i < B.npubs; i++) {
      pub_fill(&B.pubs[i]);
      if (B.pubs[i].sent < B.pubs[i].max_msgs) {
        all_done = false;
      }
    }
    if (all_done && in_flight() == 0 && unacked() == 0) {
      break;
    }
    poll_once(poll_timeout_until(B.meas_open ? B.t_meas_end : B.t_warm_end, 100));
    sweep_pings();
    if (in_flight() && B.now - B.last_progress > stall) {
      fail("stalled: nothing delivered for %.1f s with %" PRIu64 " messages in flight "
           "(%" PRIu64 " delivered so far)",
           B.stall_timeout, in_flight(), B.delivered_total);
    }
  }
  B.publishing = false;
  int64_t drain_end = B.now + secs_to_ns(B.drain_timeout);
  while (!B.failed && (in_flight() || unacked()) && B.now < drain_end) {
    poll_once(poll_timeout_until(drain_end, 100));
  }
}

static void disconnect_all(void) {
  static const uint8_t disc[2] = {0xe0, 0};
  uint64_t waiting = 0;
  for (uint32_t i = 0; i < B.npubs + B.nsubs; i++) {
    struct conn *c = i < B.npubs ? &B.pubs[i].c : &B.subs[i - B.npubs].c;
    if (c->fd < 0) {
      continue;
    }
    if (c->state == CS_READY) {
      queue_bytes(c, disc, 2);
      c->state = CS_DISC;
      waiting++;
    } else {
      conn_close(c);
    }
  }
  uint64_t closed0 = B.closed_count;
  int64_t end = now_ns() + 2 * NS_PER_S;
  B.now = now_ns();
  while (B.closed_count - closed0 < waiting && B.now < end) {
    poll_once(poll_timeout_until(end, 100));
  }
  for (uint32_t i = 0; i < B.npubs + B.nsubs; i++) {
    struct conn *c = i < B.npubs ? &B.pubs[i].c : &B.subs[i - B.npubs].c;
    if (c->fd >= 0) {
      conn_close(c);
    }
  }
}

/* ---------------------------------------------------------- helpers ----- */
/*
 * Helper connections do one small job each (fill a session, count retained
 * messages, remove a session, ...): connect with their own client id, run
 * their packet handler, send DISCONNECT, and are done when the broker has
 * closed the connection. run_jobs() keeps up to --batch of them going.
 */

static long read_rss_bytes(pid_t pid);

struct aux {
  struct conn c; /* first member */
  uint64_t job;
  uint64_t count;  /* messages received */
  uint64_t expect; /* messages expected */
  uint64_t bad;    /* messages with an unexpected payload */
  uint64_t sent;   /* fill: PUBLISHes queued */
  int64_t idle_until;
  bool busy;
  bool flag; /* session present / found */
  bool acked;
  bool final_sent;
};

typedef void (*job_start_fn)(struct aux *a, uint64_t job);
typedef void (*job_end_fn)(struct aux *a);
typedef bool (*job_tick_fn)(struct aux *a); /* true: wants to run again at once */

static void aux_ready(struct conn *c) {
  if (c->state < CS_READY && c->state >= CS_CONNECTING && B.inprogress) {
    B.inprogress--;
  }
  c->state = CS_READY;
}

static void aux_disconnect(struct conn *c) {
  static const uint8_t disc[2] = {0xe0, 0};
  if (c->state == CS_CLOSED || c->state == CS_DISC) {
    return;
  }
  if (c->state < CS_READY && c->state >= CS_CONNECTING && B.inprogress) {
    B.inprogress--;
  }
  queue_bytes(c, disc, 2);
  c->state = CS_DISC;
  c->deadline = B.now + 2 * NS_PER_S;
}

static void aux_start(struct aux *a, uint64_t job, char *cid, bool clean, packet_fn fn) {
  struct conn *c = &a->c;
  free(c->cid);
  c->cid = cid;
  c->clean = clean;
  c->role = ROLE_AUX;
  c->idx = (uint32_t)job;
  c->on_packet = fn;
  a->job = job;
  a->count = a->expect = a->bad = a->sent = 0;
  a->idle_until = 0;
  a->flag = a->acked = a->final_sent = false;
  a->busy = true;
  c->fd = -1;
  c->state = CS_NEW;
  conn_start(c);
}

static bool check_connack(struct conn *c, uint8_t h, const uint8_t *b, size_t rl) {
  if ((h >> 4) != 2 || c->state != CS_CONNACK || rl != 2) {
    fail("%s (%s): unexpected packet type %u in state %u", conn_name(c), c->cid, h >> 4u,
         (unsigned)c->state);
    conn_close(c);
    return false;
  }
  if (b[1] != 0) {
    fail("%s (%s): CONNACK return code %u", conn_name(c), c->cid, b[1]);
    conn_close(c);
    return false;
  }
  return true;
}

static void queue_subscribe_filter(struct conn *c, unsigned pid, const char *filter, unsigned qos) {
  size_t fl = strlen(filter);
  size_t rl = 2 + 2 + fl + 1;
  out_reserve(c, 5 + rl);
  uint8_t *p = c->out + c->out_len;
  *p++ = 0x82;
  p = put_varint(p, rl);
  p = put_u16(p, pid);
  p = put_u16(p, (unsigned)fl);
  memcpy(p, filter, fl);
  p += fl;
  *p++ = (uint8_t)qos;
  c->out_len = (size_t)(p - c->out);
  mark_flush(c);
}

/* A PUBLISH whose payload is the 16-byte header (seq = idx) and filler. */
static void queue_publish(struct conn *c, const char *topic, size_t tl, unsigned qos, bool retain,
                          unsigned pid, uint32_t idx) {
  size_t rl = 2 + tl + (qos ? 2u : 0u) + B.size;
  out_reserve(c, 5 + rl);
  uint8_t *p = c->out + c->out_len;
  *p++ = (uint8_t)(0x30 | (qos << 1) | (retain ? 1u : 0u));
  p = put_varint(p, rl);
  p = put_u16(p, (unsigned)tl);
  memcpy(p, topic, tl);
  p += tl;
  if (qos) {
    p = put_u16(p, pid);
  }
  uint64_t ts = (uint64_t)B.now;
  uint32_t pubid = UINT32_MAX;
  memcpy(p, &ts, 8);
  memcpy(p + 8, &pubid, 4);
  memcpy(p + 12, &idx, 4);
  if (B.size > PAYLOAD_HDR) {
    memcpy(p + PAYLOAD_HDR, B.fill, B.size - PAYLOAD_HDR);
  }
  p += B.size;
  c->out_len = (size_t)(p - c->out);
  mark_flush(c);
}

/* Parses a PUBLISH: topic, payload; false if malformed. */
static bool parse_publish(uint8_t h, const uint8_t *b, size_t rl, const uint8_t **topic, size_t *tl,
                          const uint8_t **payload, size_t *pl, unsigned *pid) {
  unsigned q = (h >> 1) & 3u;
  if (rl < 2 || q == 3) {
    return false;
  }
  *tl = (size_t)b[0] << 8 | b[1];
  size_t pos = 2 + *tl + (q ? 2u : 0u);
  if (pos > rl) {
    return false;
  }
  *topic = b + 2;
  *pid = q ? ((unsigned)b[2 + *tl] << 8 | b[3 + *tl]) : 0;
  *payload = b + pos;
  *pl = rl - pos;
  return true;
}

static uint32_t payload_seq(const uint8_t *payload, size_t pl) {
  uint32_t pubid, seq;
  if (pl < PAYLOAD_HDR) {
    return UINT32_MAX;
  }
  memcpy(&pubid, payload + 8, 4);
  memcpy(&seq, payload + 12, 4);
  return pubid == UINT32_MAX ? seq : UINT32_MAX;
}

static void run_jobs(uint64_t njobs, uint32_t par, job_start_fn start, job_end_fn end,
                     job_tick_fn tick) {
  if (par > njobs) {
    par = (uint32_t)(njobs ? njobs : 1);
  }
  struct aux *pool = xcalloc(par, sizeof *pool);
  for (uint32_t i = 0; i < par; i++) {
    pool[i].c.fd = -1;
    pool[i].c.state = CS_CLOSED;
  }
  uint64_t next = 0, done = 0;
  int64_t last_report = now_ns();
  B.now = now_ns();
  while (done < njobs && !B.failed) {
    bool again = false;
    for (uint32_t i = 0; i < par; i++) {
      struct aux *a = &pool[i];
      if (!a->busy && next < njobs) {
        start(a, next++);
      }
      if (a->busy && tick && a->c.state != CS_CLOSED && tick(a)) {
        again = true;
      }
    }
    poll_once(again ? 0 : 10);
    for (uint32_t i = 0; i < par && !B.failed; i++) {
      struct aux *a = &pool[i];
      if (!a->busy) {
        continue;
      }
      struct conn *c = &a->c;
      if (c->state != CS_CLOSED && B.now > c->deadline) {
        if (c->state == CS_READY) {
          fail("%s (%s): no progress for %.1f s", conn_name(c), c->cid, B.timeout);
          break;
        }
        if (c->state == CS_DISC) {
          conn_close(c); /* the broker did not close it: go on */
        } else if (c->state < CS_READY) {
          fail("timeout (%.1f s) %s on %s (%s)", B.timeout,
               c->state == CS_CONNECTING ? "connecting"
               : c->state == CS_TLS      ? "in the TLS handshake"
               : c->state == CS_WS       ? "waiting for the WebSocket upgrade"
               : c->state == CS_CONNACK  ? "waiting for CONNACK"
                                         : "waiting for SUBACK",
               conn_name(c), c->cid);
          break;
        }
      }
      if (c->state == CS_CLOSED) {
        end(a);
        a->busy = false;
        done++;
      }
    }
    if (!B.quiet && njobs >= 1000 && B.now - last_report > 2 * NS_PER_S) {
      last_report = B.now;
      fprintf(stderr, "  ... %" PRIu64 "/%" PRIu64 "\n", done, njobs);
    }
  }
  for (uint32_t i = 0; i < par; i++) {
    if (pool[i].c.fd >= 0) {
      conn_close(&pool[i].c);
    }
    free(pool[i].c.out);
    free(pool[i].c.cid);
  }
  /* The pool goes away: nothing of it may stay in the flush list. */
  struct conn **pp = &B.flush_head;
  while (*pp) {
    if ((struct aux *)*pp >= pool && (struct aux *)*pp < pool + par) {
      *pp = (*pp)->flush_next;
    } else {
      pp = &(*pp)->flush_next;
    }
  }
  free(pool);
}

/* --- removing sessions: CONNECT with clean session 1, then DISCONNECT --- */

static struct sub *clean_subs;
static uint64_t clean_present;

static void clean_packet(struct conn *c, uint8_t h, const uint8_t *b, size_t rl, int64_t t) {
  (void)t;
  if (check_connack(c, h, b, rl)) {
    aux_ready(c);
    aux_disconnect(c);
  }
}

static void clean_start(struct aux *a, uint64_t job) {
  aux_start(a, job, xasprintf("%s", clean_subs[job].c.cid), true, clean_packet);
}

static void clean_end(struct aux *a) {
  (void)a;
  clean_present++;
}

static void remove_sessions(void) {
  clean_subs = B.subs;
  run_jobs(B.nsubs, B.batch, clean_start, clean_end, NULL);
}

/* --- --fill-retained N ---------------------------------------------------- */

static char *retained_topic(uint64_t i) {
  return xasprintf("%s/%" PRIu64 "/%" PRIu64, B.topic_prefix, i / 1000u, i % 1000u);
}

static void fill_retained_packet(struct conn *c, uint8_t h, const uint8_t *b, size_t rl,
                                 int64_t t) {
  (void)t;
  struct aux *a = (struct aux *)c;
  uint8_t type = h >> 4;
  if (c->state == CS_CONNACK) {
    if (check_connack(c, h, b, rl)) {
      aux_ready(c);
    }
    return;
  }
  if (type == 4 && rl == 2 && a->final_sent && !a->acked) {
    a->acked = true;
    aux_disconnect(c);
    return;
  }
  fail("fill: unexpected packet type %u", (unsigned)type);
}

static void fill_retained_start(struct aux *a, uint64_t job) {
  aux_start(a, job, xasprintf("%sfill", B.id_prefix), true, fill_retained_packet);
}

static bool fill_retained_tick(struct aux *a) {
  struct conn *c = &a->c;
  if (c->state != CS_READY || a->final_sent) {
    return false;
  }
  char topic[512];
  while (c->out_len - c->out_off < 256u * 1024u && !a->final_sent) {
    uint64_t i = a->sent;
    int tl = snprintf(topic, sizeof topic, "%s/%" PRIu64 "/%" PRIu64, B.topic_prefix, i / 1000u,
                      i % 1000u);
    bool last = i + 1 == B.fill_retained;
    queue_publish(c, topic, (size_t)tl, last ? 1u : 0u, true, 1, (uint32_t)i);
    a->sent++;
    if (last) {
      a->final_sent = true;
    }
  }
  c->deadline = B.now + secs_to_ns(B.timeout) + 60 * NS_PER_S;
  return !c->pollout;
}

static void fill_end_noop(struct aux *a) {
  B.published_total += a->sent;
  B.delivered_total += a->acked;
}

/* --- --fill-sessions N ---------------------------------------------------- */

static void fill_sessions_packet(struct conn *c, uint8_t h, const uint8_t *b, size_t rl,
                                 int64_t t) {
  (void)t;
  uint8_t type = h >> 4;
  if (c->state == CS_CONNACK) {
    if (check_connack(c, h, b, rl)) {
      c->state = CS_SUBACK;
      c->deadline = B.now + secs_to_ns(B.timeout);
      char *f = xasprintf("%s/%u", B.topic_prefix, c->idx);
      queue_subscribe_filter(c, 1, f, B.qos);
      free(f);
    }
    return;
  }
  if (type == 9 && c->state == CS_SUBACK && rl == 3) {
    if (b[2] == 0x80) {
      fail("%s (%s): subscription refused (SUBACK 0x80)", conn_name(c), c->cid);
      conn_close(c);
      return;
    }
    aux_ready(c);
    B.delivered_total++;
    aux_disconnect(c);
    return;
  }
  fail("%s (%s): unexpected packet type %u in state %u", conn_name(c), c->cid, (unsigned)type,
       (unsigned)c->state);
  conn_close(c);
}

static void fill_sessions_start(struct aux *a, uint64_t job) {
  aux_start(a, job, xasprintf("%s%" PRIu64, B.id_prefix, job), false, fill_sessions_packet);
}

/* Runs --fill-retained or --fill-sessions. */
static int run_fill(void) {
  int64_t t = now_ns();
  const char *what = B.fill_retained ? "fill-retained" : "fill-sessions";
  uint64_t n = B.fill_retained ? B.fill_retained : B.fill_sessions;
  if (B.fill_retained) {
    run_jobs(1, 1, fill_retained_start, fill_end_noop, fill_retained_tick);
  } else {
    run_jobs(B.fill_sessions, B.batch, fill_sessions_start, fill_end_noop, NULL);
  }
  double s = (double)(now_ns() - t) / 1e9;
  uint64_t got = B.fill_retained ? B.published_total : B.delivered_total;
  if (!B.failed && (got != n || (B.fill_retained && !B.delivered_total))) {
    fail("%s: only %" PRIu64 " of %" PRIu64 " done", what, got, n);
  }
  if (!B.quiet) {
    printf("  %s: %" PRIu64 " in %.2f s = %.0f/s\n", what, got, s, s > 0 ? (double)got / s : 0);
  }
  long rss = B.pid ? read_rss_bytes(B.pid) : -1;
  printf("RESULT mode=%s n=%" PRIu64 " secs=%.3f per_s=%.0f rss_kb=%ld status=%s\n", what, n, s,
         s > 0 ? (double)got / s : 0.0, rss >= 0 ? rss / 1024 : -1L, B.failed ? "FAIL" : "ok");
  if (B.failed) {
    fprintf(stderr, "mqttb-bench: FAILED: %s\n", B.fail_reason);
  }
  return B.failed ? 1 : 0;
}

/* --- --probe -------------------------------------------------------------- */
/*
 * For restart times: from --t0 (the shell's $EPOCHREALTIME just before it
 * started the broker), tries to connect every millisecond until the TCP
 * connection is accepted, then CONNECT (clean session) until CONNACK; then
 * looks for the data: the last retained message of --check-retained N
 * (SUBSCRIBE to its topic), or the last session of --check-sessions N
 * (CONNECT with clean session 0: session present?, then one QoS 1 message
 * published to its topic must arrive through the restored subscription).
 * With --count it then checks all of it: every retained message (one
 * connection per 1000, SUBSCRIBE prefix/K/+), or every --check-step'th
 * session.
 */

static int64_t t0_mono;
static struct aux probe_main, probe_sess;
static char *probe_topic;
static int64_t t_data, t_sub;
static bool probe_found, probe_sub_ok;
static uint64_t count_checked, count_found, count_bad;

static double ms_since_t0(int64_t t) {
  return (double)(t - t0_mono) / 1e6;
}

static void probe_main_packet(struct conn *c, uint8_t h, const uint8_t *b, size_t rl, int64_t t) {
  uint8_t type = h >> 4;
  if (c->state == CS_CONNACK) {
    if (check_connack(c, h, b, rl)) {
      aux_ready(c);
    }
    return;
  }
  if (type == 9 || type == 4) { /* SUBACK, PUBACK */
    return;
  }
  if (type == 3) {
    const uint8_t *topic, *payload;
    size_t tl, pl;
    unsigned pid;
    if (!parse_publish(h, b, rl, &topic, &tl, &payload, &pl, &pid)) {
      fail("probe: malformed PUBLISH");
      return;
    }
    if (((h >> 1) & 3u) == 1) {
      queue_ack(c, 0x40, pid);
    }
    if ((h & 1) && tl == strlen(probe_topic) && memcmp(topic, probe_topic, tl) == 0 &&
        !probe_found) {
      probe_found = true;
      t_data = t;
      if (payload_seq(payload, pl) != B.check_retained - 1) {
        count_bad++;
      }
    }
    return;
  }
  if (type == 13) {
    return;
  }
  fail("probe: unexpected packet type %u", (unsigned)type);
}

static void probe_sess_packet(struct conn *c, uint8_t h, const uint8_t *b, size_t rl, int64_t t) {
  uint8_t type = h >> 4;
  if (c->state == CS_CONNACK) {
    if (check_connack(c, h, b, rl)) {
      aux_ready(c);
      probe_found = (b[0] & 1) != 0;
      probe_sess.acked = true;
      if (probe_found) {
        t_data = t;
      }
    }
    return;
  }
  if (type == 3) {
    const uint8_t *topic, *payload;
    size_t tl, pl;
    unsigned pid;
    if (!parse_publish(h, b, rl, &topic, &tl, &payload, &pl, &pid)) {
      fail("probe: malformed PUBLISH");
      return;
    }
    unsigned q = (h >> 1) & 3u;
    if (q == 1) {
      queue_ack(c, 0x40, pid);
    } else if (q == 2) {
      queue_ack(c, 0x50, pid);
    }
    if (tl == strlen(probe_topic) && memcmp(topic, probe_topic, tl) == 0 &&
        payload_seq(payload, pl) == 4242u && !probe_sub_ok) {
      probe_sub_ok = true;
      t_sub = t;
    }
    return;
  }
  if (type == 6) { /* PUBREL */
    queue_ack(c, 0x70, rl >= 2 ? ((unsigned)b[0] << 8 | b[1]) : 0);
    return;
  }
  fail("probe: unexpected packet type %u on the session", (unsigned)type);
}

/* Polls until done() or the deadline; false on timeout. */
static bool wait_for(bool (*done)(void), int64_t deadline) {
  while (!B.failed && !done()) {
    if (B.now >= deadline) {
      return false;
    }
    poll_once(poll_timeout_until(deadline, 5));
  }
  return !B.failed;
}

static bool main_ready(void) {
  return probe_main.c.state == CS_READY;
}
static bool found_done(void) {
  return probe_found;
}
static bool sess_connack(void) {
  return probe_sess.acked || probe_sess.c.state == CS_CLOSED;
}
static bool sub_done(void) {
  return probe_sub_ok;
}

/* Counting retained messages: one connection per prefix/K/+ (1000 topics). */
static void count_ret_packet(struct conn *c, uint8_t h, const uint8_t *b, size_t rl, int64_t t) {
  struct aux *a = (struct aux *)c;
  uint8_t type = h >> 4;
  if (c->state == CS_CONNACK) {
    if (check_connack(c, h, b, rl)) {
      c->state = CS_SUBACK;
      c->deadline = t + secs_to_ns(B.timeout);
      char *f = xasprintf("%s/%" PRIu64 "/+", B.topic_prefix, a->job);
      queue_subscribe_filter(c, 1, f, 0);
      free(f);
    }
    return;
  }
  if (type == 9 && c->state == CS_SUBACK) {
    aux_ready(c);
    a->idle_until = t + secs_to_ns(B.data_timeout);
    c->deadline = a->idle_until + secs_to_ns(B.timeout);
    return;
  }
  if (type == 3 && c->state == CS_READY) {
    const uint8_t *topic, *payload;
    size_t tl, pl;
    unsigned pid;
    if (!parse_publish(h, b, rl, &topic, &tl, &payload, &pl, &pid) || !(h & 1)) {
      a->bad++;
      return;
    }
    size_t k = tl;
    while (k > 0 && topic[k - 1] != '/') {
      k--;
    }
    uint64_t j = 0;
    for (size_t i = k; i < tl; i++) {
      j = j * 10 + (uint64_t)(topic[i] - '0');
    }
    if (payload_seq(payload, pl) != a->job * 1000u + j) {
      a->bad++;
    } else {
      a->count++;
    }
    a->idle_until = t + secs_to_ns(B.data_timeout);
    c->deadline = a->idle_until + secs_to_ns(B.timeout);
    if (a->count + a->bad >= a->expect) {
      aux_disconnect(c);
    }
    return;
  }
  if (type == 13 || c->state == CS_DISC) {
    return;
  }
  fail("count: unexpected packet type %u", (unsigned)type);
}

static void count_ret_start(struct aux *a, uint64_t job) {
  aux_start(a, job, xasprintf("%sc%" PRIu64, B.id_prefix, job), true, count_ret_packet);
  uint64_t left = B.check_retained - job * 1000u;
  a->expect = left < 1000u ? left : 1000u;
}

static bool count_ret_tick(struct aux *a) {
  if (a->c.state == CS_READY && a->idle_until && B.now > a->idle_until) {
    aux_disconnect(&a->c); /* nothing more came: the rest is missing */
  }
  return false;
}

static void count_ret_end(struct aux *a) {
  count_checked += a->expect;
  count_found += a->count;
  count_bad += a->bad;
}

/* Counting sessions: CONNECT clean session 0, session present?, DISCONNECT. */
static void count_sess_packet(struct conn *c, uint8_t h, const uint8_t *b, size_t rl, int64_t t) {
  (void)t;
  struct aux *a = (struct aux *)c;
  if (c->state == CS_CONNACK) {
    if (check_connack(c, h, b, rl)) {
      aux_ready(c);
      a->flag = (b[0] & 1) != 0;
      aux_disconnect(c);
    }
    return;
  }
  if (c->state == CS_DISC) {
    return; /* whatever the session still had queued */
  }
  fail("count: unexpected packet type %u", (unsigned)(h >> 4));
}

static void count_sess_start(struct aux *a, uint64_t job) {
  uint64_t i = job * B.check_step;
  aux_start(a, job, xasprintf("%s%" PRIu64, B.id_prefix, i), false, count_sess_packet);
}

static void count_sess_end(struct aux *a) {
  count_checked++;
  count_found += a->flag;
}

static int run_probe(void) {
  /* --t0: the shell's $EPOCHREALTIME ("seconds.micros") before it started the broker. */
  struct timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  int64_t mono = now_ns();
  int64_t real = (int64_t)rt.tv_sec * NS_PER_S + rt.tv_nsec;
  int64_t t0_real = real;
  if (B.t0) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", B.t0);
    for (char *q = buf; *q; q++) {
      if (*q == ',') {
        *q = '.'; /* a locale's decimal comma */
      }
    }
    t0_real = (int64_t)(strtold(buf, NULL) * 1e9L);
  }
  t0_mono = mono - (real - t0_real);
  int64_t deadline = mono + secs_to_ns(B.probe_timeout);

  /* 1. TCP connect, every millisecond until accepted. */
  int fd = -1;
  int64_t t_connect;
  for (;;) {
    fd = socket(B.ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fail("socket: %s", strerror(errno));
      return 1;
    }
    if (connect(fd, B.ai->ai_addr, B.ai->ai_addrlen) == 0) {
      t_connect = now_ns();
      break;
    }
    int e = errno;
    close(fd);
    if (e != ECONNREFUSED && e != EINTR && e != ECONNRESET) {
      fail("connect: %s", strerror(e));
      return 1;
    }
    if (now_ns() > deadline) {
      fail("probe: no listener within %.0f s", B.probe_timeout);
      return 1;
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct conn *c = &probe_main.c;
  c->fd = fd;
  c->role = ROLE_AUX;
  c->cid = xasprintf("%sprobe", B.id_prefix);
  c->clean = true;
  c->on_packet = probe_main_packet;
  c->state = CS_CONNACK;
  c->pollout = false;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(B.epfd, EPOLL_CTL_ADD, fd, &ev);
  B.now = now_ns();
  queue_connect(c);
  /* 2. CONNACK. */
  if (!wait_for(main_ready, deadline)) {
    fail("probe: no CONNACK within %.0f s", B.probe_timeout);
    return 1;
  }
  int64_t t_connack = B.now;

  /* 3. The data. */
  int64_t data_deadline;
  if (B.check_retained) {
    probe_topic = retained_topic(B.check_retained - 1);
    queue_subscribe_filter(c, 1, probe_topic, 0);
    data_deadline = B.now + secs_to_ns(B.data_timeout);
    wait_for(found_done, data_deadline);
  } else if (B.check_sessions) {
    probe_topic = xasprintf("%s/%" PRIu64, B.topic_prefix, B.check_sessions - 1);
    probe_sess.c.fd = -1;
    aux_start(&probe_sess, B.check_sessions - 1,
              xasprintf("%s%" PRIu64, B.id_prefix, B.check_sessions - 1), false, probe_sess_packet);
    probe_sess.busy = false;
    data_deadline = B.now + secs_to_ns(B.timeout);
    wait_for(sess_connack, data_deadline);
    if (probe_found) {
      /* Its subscription must be there too: publish one QoS 1 message to it. */
      B.now = now_ns();
      queue_publish(c, probe_topic, strlen(probe_topic), 1, false, 2, 4242u);
      data_deadline = B.now + secs_to_ns(B.data_timeout);
      wait_for(sub_done, data_deadline);
    }
  }
  long rss = B.pid ? read_rss_bytes(B.pid) : -1;
  if (probe_sess.c.fd >= 0) {
    aux_disconnect(&probe_sess.c);
  }
  if (c->fd >= 0) {
    aux_disconnect(c);
  }
  for (int64_t end = now_ns() + NS_PER_S;
       B.now < end && (probe_sess.c.fd >= 0 || c->fd >= 0) && !B.failed;) {
    poll_once(poll_timeout_until(end, 10));
  }
  if (!B.quiet) {
    printf("  connect %.1f ms, CONNACK %.1f ms after the start; data %s", ms_since_t0(t_connect),
           ms_since_t0(t_connack), probe_found ? "found" : "MISSING");
    if (probe_found) {
      printf(" at %.1f ms", ms_since_t0(t_data));
    }
    if (B.check_sessions && probe_found) {
      printf(", subscription %s", probe_sub_ok ? "delivers" : "DOES NOT DELIVER");
    }
    printf("\n");
  }

  /* 4. Everything. */
  double count_s = 0;
  if (B.count && !B.failed) {
    int64_t tc = now_ns();
    if (B.check_retained) {
      run_jobs((B.check_retained + 999u) / 1000u, B.batch, count_ret_start, count_ret_end,
               count_ret_tick);
    } else if (B.check_sessions) {
      uint64_t n = (B.check_sessions - 1 + B.check_step - 1) / B.check_step; /* below the last */
      run_jobs(n, B.batch, count_sess_start, count_sess_end, NULL);
      count_checked++; /* and the last, checked above */
      count_found += probe_found;
    }
    count_s = (double)(now_ns() - tc) / 1e9;
    if (!B.quiet) {
      printf("  found %" PRIu64 " of %" PRIu64 " checked (%" PRIu64 " with a wrong payload) in "
             "%.2f s\n",
             count_found, count_checked, count_bad, count_s);
    }
  }
  printf("RESULT mode=probe connect_ms=%.1f connack_ms=%.1f data=%s data_ms=",
         ms_since_t0(t_connect), ms_since_t0(t_connack), probe_found ? "found" : "missing");
  if (probe_found) {
    printf("%.1f", ms_since_t0(t_data));
  } else {
    printf("na");
  }
  if (B.check_sessions) {
    printf(" sub=%s", probe_found ? (probe_sub_ok ? "ok" : "missing") : "na");
  }
  printf(" rss_kb=%ld", rss >= 0 ? rss / 1024 : -1L);
  if (B.count) {
    printf(" checked=%" PRIu64 " found=%" PRIu64 " bad=%" PRIu64 " count_s=%.2f", count_checked,
           count_found, count_bad, count_s);
  } else {
    printf(" checked=na found=na bad=na count_s=na");
  }
  printf(" status=%s\n", B.failed ? "FAIL" : "ok");
  if (B.failed) {
    fprintf(stderr, "mqttb-bench: FAILED: %s\n", B.fail_reason);
  }
  return B.failed ? 1 : 0;
}

/* ---------------------------------------------------------- setup ------- */

static long read_rss_bytes(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f) {
    return -1;
  }
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

static void raise_nofile(uint64_t need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      fprintf(stderr, "mqttb-bench: warning: setrlimit(RLIMIT_NOFILE): %s\n", strerror(errno));
      getrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  if (rl.rlim_cur != RLIM_INFINITY && need + 16 > rl.rlim_cur) {
    fprintf(stderr,
            "mqttb-bench: %" PRIu64 " connections need more file descriptors than the limit "
            "(%llu); raise the hard limit (ulimit -Hn)\n",
            need, (unsigned long long)rl.rlim_cur);
    exit(2);
  }
}

static void usage(FILE *f) {
  fprintf(f,
          "Usage: mqttb-bench [options]\n"
          "  -h HOST            broker host (default 127.0.0.1)\n"
          "  -p PORT            broker port (default 1883)\n"
          "  -s SCENARIO        p2p | fanin | fanout | idle (default p2p)\n"
          "  -q QOS             0, 1 or 2, for PUBLISH and SUBSCRIBE (default 0)\n"
          "  -n N               connections: p2p N publishers + N subscribers; fanin N\n"
          "                     publishers + 1 subscriber; fanout 1 publisher + N\n"
          "                     subscribers; idle N subscribers (+1 publisher) (default 16)\n"
          "  -w W               messages in flight per publisher (default 64)\n"
          "  -l BYTES           payload size, >= %u (default 64)\n"
          "  -d SECONDS         measured duration (default 5)\n"
          "      --warmup SECONDS   traffic before measuring (default 1)\n"
          "      --pid PID      broker pid: report its VmRSS growth per connection and,\n"
          "                     in p2p/fanin/fanout, its CPU time (all threads) over\n"
          "                     the measured window per delivery and in %% of a CPU\n"
          "      --timeout S    connect/CONNACK/SUBACK timeout (default 10)\n"
          "      --batch N      connections being set up at once (default 64)\n"
          "      --keepalive S  MQTT keep-alive (default 60; PINGREQ after S/2 idle)\n"
          "      --stall S      fail if nothing is delivered for S seconds (default 10)\n"
          "      --drain S      time to wait for in-flight messages at the end (default 10)\n"
          "      --quiet        only print the RESULT line\n"
          "      --copy-payload subscribers read every payload byte (default: from\n"
          "                     32 KiB left in the socket, the rest of a payload past its\n"
          "                     first %u bytes is discarded in the kernel, MSG_TRUNC)\n"
          "      --persistent   subscribers connect with clean session 0 (their broker\n"
          "                     records the traffic); the sessions are removed at the end\n"
          "      --id-prefix P  client ids start with P (default: the run id)\n"
          "      --topic-prefix P  topics of the fill and probe modes (default\n"
          "                     mqttb-bench/RUN_ID)\n"
          "  Instead of a scenario:\n"
          "      --fill-retained N  set N retained messages P/(i/1000)/(i%%1000), payload -l\n"
          "                     bytes: QoS 0 pipelined on one connection, the last one\n"
          "                     QoS 1 (its PUBACK says all are in)\n"
          "      --fill-sessions N  N persistent sessions: client id Pi (--id-prefix),\n"
          "                     clean session 0, SUBSCRIBE P/i (--topic-prefix) at -q,\n"
          "                     DISCONNECT; --batch at a time\n"
          "      --probe        restart time: connect every ms until accepted, CONNACK,\n"
          "                     then find the data of --check-retained N (the last\n"
          "                     retained message) or --check-sessions N (the last\n"
          "                     session present, and its subscription delivers)\n"
          "      --t0 T         probe times count from T ($EPOCHREALTIME; default: now)\n"
          "      --count        probe: then check all retained messages, or every\n"
          "                     --check-step K'th session (default 1)\n"
          "      --probe-timeout S  give up waiting for the broker (default 600)\n"
          "      --data-timeout S   wait this long for missing data (default 2)\n"
          "  Transports (default: plain TCP):\n"
          "      --tls          TLS (OpenSSL; TLS 1.2 or later)\n"
          "      --cafile FILE  verify the broker's certificate and host name (-h) with\n"
          "                     this CA (default: no verification)\n"
          "      --ws           MQTT over WebSockets (subprotocol mqtt); with --tls: wss\n"
          "      --ws-path P    the upgrade request's path (default /mqtt)\n"
          "      --help\n",
          PAYLOAD_HDR, PAYLOAD_HDR);
}

static double parse_double(const char *s, const char *what, double min, double max) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < min || v > max) {
    fprintf(stderr, "mqttb-bench: bad %s: %s\n", what, s);
    exit(2);
  }
  return v;
}

static uint32_t parse_u32(const char *s, const char *what, uint32_t min, uint32_t max) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) {
    fprintf(stderr, "mqttb-bench: bad %s: %s (%u..%u)\n", what, s, min, max);
    exit(2);
  }
  return (uint32_t)v;
}

static void parse_args(int argc, char **argv) {
  B.host = "127.0.0.1";
  B.port = "1883";
  B.sc = SC_P2P;
  B.qos = 0;
  B.n = 16;
  B.w = 64;
  B.size = 64;
  B.duration = 5;
  B.warmup = 1;
  B.pid = 0;
  B.timeout = 10;
  B.batch = 64;
  B.keepalive = 60;
  B.stall_timeout = 10;
  B.drain_timeout = 10;
  B.check_step = 1;
  B.probe_timeout = 600;
  B.data_timeout = 2;
  enum {
    O_WARMUP = 256,
    O_PID,
    O_TIMEOUT,
    O_BATCH,
    O_KEEPALIVE,
    O_STALL,
    O_DRAIN,
    O_QUIET,
    O_HELP,
    O_PERSISTENT,
    O_ID_PREFIX,
    O_TOPIC_PREFIX,
    O_FILL_RETAINED,
    O_FILL_SESSIONS,
    O_PROBE,
    O_T0,
    O_CHECK_RETAINED,
    O_CHECK_SESSIONS,
    O_CHECK_STEP,
    O_COUNT,
    O_PROBE_TIMEOUT,
    O_DATA_TIMEOUT,
    O_TLS,
    O_CAFILE,
    O_WS,
    O_WS_PATH,
    O_COPY_PAYLOAD,
  };
  static const struct option longopts[] = {
      {"warmup", required_argument, NULL, O_WARMUP},
      {"pid", required_argument, NULL, O_PID},
      {"timeout", required_argument, NULL, O_TIMEOUT},
      {"batch", required_argument, NULL, O_BATCH},
      {"keepalive", required_argument, NULL, O_KEEPALIVE},
      {"stall", required_argument, NULL, O_STALL},
      {"drain", required_argument, NULL, O_DRAIN},
      {"quiet", no_argument, NULL, O_QUIET},
      {"copy-payload", no_argument, NULL, O_COPY_PAYLOAD},
      {"help", no_argument, NULL, O_HELP},
      {"persistent", no_argument, NULL, O_PERSISTENT},
      {"id-prefix", required_argument, NULL, O_ID_PREFIX},
      {"topic-prefix", required_argument, NULL, O_TOPIC_PREFIX},
      {"fill-retained", required_argument, NULL, O_FILL_RETAINED},
      {"fill-sessions", required_argument, NULL, O_FILL_SESSIONS},
      {"probe", no_argument, NULL, O_PROBE},
      {"t0", required_argument, NULL, O_T0},
      {"check-retained", required_argument, NULL, O_CHECK_RETAINED},
      {"check-sessions", required_argument, NULL, O_CHECK_SESSIONS},
      {"check-step", required_argument, NULL, O_CHECK_STEP},
      {"count", no_argument, NULL, O_COUNT},
      {"probe-timeout", required_argument, NULL, O_PROBE_TIMEOUT},
      {"data-timeout", required_argument, NULL, O_DATA_TIMEOUT},
      {"tls", no_argument, NULL, O_TLS},
      {"cafile", required_argument, NULL, O_CAFILE},
      {"ws", no_argument, NULL, O_WS},
      {"ws-path", required_argument, NULL, O_WS_PATH},
      {NULL, 0, NULL, 0},
  };
  int o;
  while ((o = getopt_long(argc, argv, "h:p:s:q:n:w:l:d:", longopts, NULL)) != -1) {
    switch (o) {
    case 'h':
      B.host = optarg;
      break;
    case 'p':
      B.port = optarg;
      break;
    case 's': {
      bool ok = false;
      for (unsigned i = 0; i < 4; i++) {
        if (strcmp(optarg, scenario_names[i]) == 0) {
          B.sc = (enum scenario)i;
          ok = true;
        }
      }
      if (!ok) {
        fprintf(stderr, "mqttb-bench: unknown scenario %s (p2p, fanin, fanout, idle)\n", optarg);
        exit(2);
      }
      break;
    }
    case 'q':
      B.qos = parse_u32(optarg, "QoS", 0, 2);
      break;
    case 'n':
      B.n = parse_u32(optarg, "connection count", 1, 1000000);
      break;
    case 'w':
      B.w = parse_u32(optarg, "window", 1, 60000);
      break;
    case 'l':
      B.size = parse_u32(optarg, "payload size", PAYLOAD_HDR, 256u * 1024u * 1024u - 1024u);
      break;
    case 'd':
      B.duration = parse_double(optarg, "duration", 0.01, 86400);
      break;
    case O_TLS:
      B.tls = true;
      break;
    case O_CAFILE:
      B.cafile = optarg;
      break;
    case O_WS:
      B.ws = true;
      break;
    case O_WS_PATH:
      B.ws_path = optarg;
      break;
    case O_WARMUP:
      B.warmup = parse_double(optarg, "warmup", 0, 86400);
      break;
    case O_PID:
      B.pid = (pid_t)parse_u32(optarg, "pid", 1, INT32_MAX);
      break;
    case O_TIMEOUT:
      B.timeout = parse_double(optarg, "timeout", 0.1, 3600);
      break;
    case O_BATCH:
      B.batch = parse_u32(optarg, "batch", 1, 100000);
      break;
    case O_KEEPALIVE:
      B.keepalive = parse_u32(optarg, "keepalive", 0, 65535);
      break;
    case O_STALL:
      B.stall_timeout = parse_double(optarg, "stall timeout", 0.1, 3600);
      break;
    case O_DRAIN:
      B.drain_timeout = parse_double(optarg, "drain timeout", 0, 3600);
      break;
    case O_QUIET:
      B.quiet = true;
      break;
    case O_COPY_PAYLOAD:
      B.copy_payload = true;
      break;
    case O_HELP:
      usage(stdout);
      exit(0);
    case O_PERSISTENT:
      B.persistent = true;
      break;
    case O_ID_PREFIX:
      if (strlen(optarg) > 200) {
        fprintf(stderr, "mqttb-bench: --id-prefix too long\n");
        exit(2);
      }
      B.id_prefix = optarg;
      break;
    case O_TOPIC_PREFIX:
      if (!*optarg || strlen(optarg) > 400 || strpbrk(optarg, "+#")) {
        fprintf(stderr, "mqttb-bench: bad --topic-prefix\n");
        exit(2);
      }
      B.topic_prefix = optarg;
      break;
    case O_FILL_RETAINED:
      B.fill_retained = parse_u32(optarg, "retained count", 1, UINT32_MAX - 1);
      break;
    case O_FILL_SESSIONS:
      B.fill_sessions = parse_u32(optarg, "session count", 1, UINT32_MAX - 1);
      break;
    case O_PROBE:
      B.probe = true;
      break;
    case O_T0:
      B.t0 = optarg;
      break;
    case O_CHECK_RETAINED:
      B.check_retained = parse_u32(optarg, "retained count", 1, UINT32_MAX - 1);
      break;
    case O_CHECK_SESSIONS:
      B.check_sessions = parse_u32(optarg, "session count", 1, UINT32_MAX - 1);
      break;
    case O_CHECK_STEP:
      B.check_step = parse_u32(optarg, "check step", 1, UINT32_MAX - 1);
      break;
    case O_COUNT:
      B.count = true;
      break;
    case O_PROBE_TIMEOUT:
      B.probe_timeout = parse_double(optarg, "probe timeout", 0.1, 86400);
      break;
    case O_DATA_TIMEOUT:
      B.data_timeout = parse_double(optarg, "data timeout", 0.01, 3600);
      break;
    default:
      usage(stderr);
      exit(2);
    }
  }
  if (optind != argc) {
    usage(stderr);
    exit(2);
  }
  if (B.probe && (B.tls || B.ws)) {
    fprintf(stderr, "mqttb-bench: --probe is plain TCP only\n");
    exit(2);
  }
  if (B.cafile && !B.tls) {
    fprintf(stderr, "mqttb-bench: --cafile needs --tls\n");
    exit(2);
  }
  if (!B.ws_path) {
    B.ws_path = "/mqtt";
  }
  if ((B.fill_retained != 0) + (B.fill_sessions != 0) + B.probe > 1 ||
      (B.probe && (B.check_retained != 0) == (B.check_sessions != 0))) {
    fprintf(stderr, "mqttb-bench: one of --fill-retained, --fill-sessions, --probe; --probe "
                    "with one of --check-retained, --check-sessions\n");
    exit(2);
  }
}

static void init_conn(struct conn *c, enum role r, uint32_t idx) {
  c->fd = -1;
  c->role = (uint8_t)r;
  c->state = CS_NEW;
  c->idx = idx;
  c->clean = !(B.persistent && r == ROLE_SUB);
  c->cid = xasprintf("%s%c%u", B.id_prefix, r == ROLE_PUB ? 'p' : 's', idx);
}

static void build_clients(void) {
  uint32_t n = B.n;
  switch (B.sc) {
  case SC_P2P:
    B.npubs = n;
    B.nsubs = n;
    B.expected = 1;
    break;
  case SC_FANIN:
    B.npubs = n;
    B.nsubs = 1;
    B.expected = 1;
    break;
  case SC_FANOUT:
    B.npubs = 1;
    B.nsubs = n;
    B.expected = n;
    break;
  case SC_IDLE:
    B.npubs = 1;
    B.nsubs = n;
    B.expected = n;
    B.w = 1;
    break;
  }
  B.pubs = xcalloc(B.npubs, sizeof *B.pubs);
  B.subs = xcalloc(B.nsubs, sizeof *B.subs);
  const char *sc = scenario_names[B.sc];
  for (uint32_t i = 0; i < B.npubs; i++) {
    struct pub *p = &B.pubs[i];
    init_conn(&p->c, ROLE_PUB, i);
    p->max_msgs = B.sc == SC_IDLE ? 1 : UINT32_MAX;
    p->ring = xcalloc(B.w, sizeof *p->ring);
    if (B.qos) {
      p->ack = xcalloc(65536, 1);
    }
    if (B.sc == SC_P2P || B.sc == SC_FANIN) {
      p->topic = xasprintf("mqttb-bench/%s/%s/%u", B.rid, sc, i);
    } else {
      p->topic = xasprintf("mqttb-bench/%s/%s", B.rid, sc);
    }
    p->topic_len = (uint16_t)strlen(p->topic);
  }
  for (uint32_t i = 0; i < B.nsubs; i++) {
    struct sub *s = &B.subs[i];
    init_conn(&s->c, ROLE_SUB, i);
    switch (B.sc) {
    case SC_P2P:
      s->pub_base = i;
      s->npubs = 1;
      s->filter = xasprintf("mqttb-bench/%s/%s/%u", B.rid, sc, i);
      break;
    case SC_FANIN:
      s->pub_base = 0;
      s->npubs = B.npubs;
      s->filter = xasprintf("mqttb-bench/%s/%s/+", B.rid, sc);
      break;
    case SC_FANOUT:
    case SC_IDLE:
      s->pub_base = 0;
      s->npubs = 1;
      s->filter = xasprintf("mqttb-bench/%s/%s", B.rid, sc);
      break;
    }
    s->filter_len = (uint16_t)strlen(s->filter);
    s->next_seq = xcalloc(s->npubs, sizeof *s->next_seq);
  }
}

static void print_us(FILE *f, const char *key, uint64_t ns) {
  fprintf(f, " %s=%.1f", key, (double)ns / 1000.0);
}

int main(int argc, char **argv) {
  /* Large messages: keep freed memory for the next ones rather than
   * mapping and faulting it in again (otherwise the generator, not the
   * broker, limits the throughput from 64 KiB up). */
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);

  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  int gai = getaddrinfo(B.host, B.port, &hints, &B.ai);
  if (gai != 0) {
    fprintf(stderr, "mqttb-bench: %s:%s: %s\n", B.host, B.port, gai_strerror(gai));
    return 2;
  }
  snprintf(B.rid, sizeof B.rid, "b%04x%04x", (unsigned)getpid() & 0xffffu,
           (unsigned)((uint64_t)now_ns() / 1000u) & 0xffffu);
  if (!B.id_prefix) {
    B.id_prefix = B.rid;
  }
  if (!B.topic_prefix) {
    B.topic_prefix = xasprintf("mqttb-bench/%s", B.rid);
  }
  bool helper_mode = B.fill_retained || B.fill_sessions || B.probe;
  if (!helper_mode) {
    build_clients();
  }
  raise_nofile(helper_mode ? (uint64_t)B.batch + 4 : (uint64_t)B.npubs + B.nsubs + B.batch);

  B.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (B.epfd < 0) {
    perror("epoll_create1");
    return 1;
  }
  B.rbuf = xcalloc(RBUF_SIZE, 1);
  B.rng = ((uint64_t)now_ns() ^ ((uint64_t)getpid() << 32)) | 1u;
  if (B.tls) {
    tls_init();
  }
  B.fill = xcalloc(B.size, 1);
  memset(B.fill, 'x', B.size);
  B.lat_min = UINT64_MAX;
  B.now = now_ns();
  /* No measurement window until traffic starts. */
  B.t_meas_start = B.t_meas_end = INT64_MAX;
  B.t_warm_end = 0;
  B.cpu_ns0 = B.cpu_ns1 = -1;
  B.mach0 = B.mach1 = -1;
  if (B.fill_retained || B.fill_sessions) {
    return run_fill();
  }
  if (B.probe) {
    return run_probe();
  }

  if (!B.quiet) {
    printf("mqttb-bench: %s QoS %u, %u publisher(s), %u %ssubscriber(s), window %u, %u-byte "
           "payload, broker %s:%s over %s\n",
           scenario_names[B.sc], B.qos, B.npubs, B.nsubs, B.persistent ? "persistent " : "", B.w,
           B.size, B.host, B.port, transport_name());
  }
  if (B.persistent) {
    /* Start from no session (a fixed --id-prefix may have left one). */
    remove_sessions();
  }

  struct conn **subl = xcalloc(B.nsubs, sizeof *subl);
  struct conn **publ = xcalloc(B.npubs, sizeof *publ);
  for (uint32_t i = 0; i < B.nsubs; i++) {
    subl[i] = &B.subs[i].c;
  }
  for (uint32_t i = 0; i < B.npubs; i++) {
    publ[i] = &B.pubs[i].c;
  }

  long rss_before = -1, rss_after = -1;
  uint32_t mem_conns = 0;
  int64_t t_setup = now_ns();
  if (B.sc == SC_IDLE) {
    /* The publisher first, so the baseline includes it. */
    if (setup_conns(publ, B.npubs) && B.pid) {
      rss_before = read_rss_bytes(B.pid);
    }
    if (!B.failed) {
      setup_conns(subl, B.nsubs);
    }
    mem_conns = B.nsubs;
  } else {
    if (B.pid) {
      rss_before = read_rss_bytes(B.pid);
    }
    if (setup_conns(subl, B.nsubs)) {
      setup_conns(publ, B.npubs);
    }
    mem_conns = B.nsubs + B.npubs;
  }
  free(subl);
  free(publ);
  double setup_s = (double)(now_ns() - t_setup) / 1e9;
  if (!B.failed && B.pid) {
    /* Let the broker settle (and see anything it would still send). */
    int64_t end = now_ns() + 300 * NS_PER_MS;
    while (!B.failed && B.now < end) {
      poll_once(poll_timeout_until(end, 100));
    }
    rss_after = read_rss_bytes(B.pid);
    if (rss_before < 0 || rss_after < 0) {
      fprintf(stderr, "mqttb-bench: warning: cannot read VmRSS of pid %ld\n", (long)B.pid);
    }
  }
  if (!B.quiet && !B.failed) {
    printf("  %u connections ready in %.2f s%s%s\n", B.npubs + B.nsubs, setup_s,
           B.tls_info[0] ? ", TLS " : "", B.tls_info);
  }

  int64_t t_start = 0, t_end = 0;
  if (!B.failed) {
    B.now = now_ns();
    t_start = B.now;
    if (B.sc == SC_IDLE) {
      B.t_meas_start = B.now;
      B.t_meas_end = B.now + secs_to_ns(B.timeout);
    } else {
      /* meas_edges() opens the window (sets t_meas_start and t_meas_end). */
      B.t_warm_end = B.now + secs_to_ns(B.warmup);
    }
    run_traffic();
    t_end = B.now;
  }

  /* Verification. */
  uint64_t missing = 0;
  uint64_t sent_total = 0;
  for (uint32_t i = 0; i < B.npubs; i++) {
    sent_total += B.pubs[i].sent;
  }
  for (uint32_t i = 0; i < B.nsubs && B.npubs; i++) {
    struct sub *s = &B.subs[i];
    for (uint32_t k = 0; k < s->npubs; k++) {
      uint64_t sent = B.pubs[s->pub_base + k].sent;
      if (s->next_seq[k] < sent) {
        missing += sent - s->next_seq[k];
      }
    }
  }
  uint64_t lost = B.gaps + missing;
  uint64_t ua = unacked();
  bool was_failed = B.failed != 0;
  if (!was_failed && t_start) {
    if (B.qos >= 1 && lost) {
      fail("QoS %u: %" PRIu64 " message deliveries lost (%" PRIu64 " gaps, %" PRIu64
           " never arrived)",
           B.qos, lost, B.gaps, missing);
    } else if (B.qos == 2 && B.dups) {
      fail("QoS 2: %" PRIu64 " duplicate deliveries", B.dups);
    } else if (B.qos >= 1 && ua) {
      fail("QoS %u: %" PRIu64 " PUBLISHes never acknowledged (%s)", B.qos, ua,
           B.qos == 1 ? "PUBACK" : "PUBREC/PUBCOMP");
    } else if (B.sc == SC_IDLE && B.pubs[0].done != 1) {
      fail("idle: the publish reached only %" PRIu64 " of %u subscribers", B.delivered_total,
           B.nsubs);
    } else if (B.qos == 0 && lost) {
      fprintf(stderr, "mqttb-bench: warning: QoS 0: %" PRIu64 " messages lost\n", lost);
    }
  }

  disconnect_all();
  if (B.persistent) {
    bool was = B.failed != 0;
    B.failed = 0;
    remove_sessions();
    if (B.failed && !B.quiet) {
      fprintf(stderr, "mqttb-bench: warning: removing the persistent sessions failed\n");
    }
    B.failed = was || B.failed;
  }

  /* Report. */
  double meas_s;
  uint64_t delivered;
  if (B.sc == SC_IDLE) {
    delivered = B.delivered_total;
    meas_s = B.last_delivery > t_start ? (double)(B.last_delivery - t_start) / 1e9 : 0;
  } else {
    delivered = B.delivered_meas;
    int64_t end = t_end < B.t_meas_end ? t_end : B.t_meas_end;
    meas_s = end > B.t_meas_start ? (double)(end - B.t_meas_start) / 1e9 : 0;
  }
  double rate = meas_s > 0 ? (double)delivered / meas_s : 0;
  double prate = meas_s > 0 ? (double)B.published_meas / meas_s : 0;
  char mem[32] = "na";
  if (rss_before >= 0 && rss_after >= 0 && mem_conns) {
    snprintf(mem, sizeof mem, "%ld", (rss_after - rss_before) / (long)mem_conns);
  }
  char cpu_per_msg[32] = "na", cpu_pct[32] = "na";
  double cpu_s = -1;
  if (B.sc != SC_IDLE && B.meas_closed && B.cpu_ns0 >= 0 && B.cpu_ns1 >= B.cpu_ns0 && meas_s > 0) {
    cpu_s = (double)(B.cpu_ns1 - B.cpu_ns0) / 1e9;
    snprintf(cpu_pct, sizeof cpu_pct, "%.1f", cpu_s / meas_s * 100.0);
    if (delivered) {
      snprintf(cpu_per_msg, sizeof cpu_per_msg, "%.3f", cpu_s * 1e6 / (double)delivered);
    }
  } else if (B.pid && B.sc != SC_IDLE && !B.failed) {
    fprintf(stderr, "mqttb-bench: warning: cannot read the CPU time of pid %ld\n", (long)B.pid);
  }
  /* The generator's own CPU per delivery: on a machine it shares with the
   * broker, what it spends is not the broker's to use. */
  char gen_per_msg[32] = "na";
  if (B.sc != SC_IDLE && B.meas_closed && delivered && B.gen_ns0 >= 0 && B.gen_ns1 > B.gen_ns0) {
    snprintf(gen_per_msg, sizeof gen_per_msg, "%.3f",
             (double)(B.gen_ns1 - B.gen_ns0) / 1e3 / (double)delivered);
  }
  /* On a virtual machine, the share of the CPUs the hypervisor gave to
   * other guests during the window: runs where it is high measured a
   * slower machine. */
  char steal_pct[32] = "na";
  if (B.meas_closed && B.mach0 >= 0 && B.mach1 > B.mach0 && B.steal1 >= B.steal0) {
    snprintf(steal_pct, sizeof steal_pct, "%.1f",
             100.0 * (double)(B.steal1 - B.steal0) / (double)(B.mach1 - B.mach0));
  }

  if (!B.quiet) {
    if (B.sc == SC_IDLE) {
      printf("  one QoS %u publish reached %" PRIu64 "/%u subscribers in %.3f ms\n", B.qos,
             B.delivered_total, B.nsubs, meas_s * 1e3);
    } else {
      printf("  measured %.2f s: %" PRIu64 " deliveries = %.0f msgs/s (publish rate %.0f/s)\n",
             meas_s, delivered, rate, prate);
    }
    printf("  latency (us): p50 %.1f  p99 %.1f  max %.1f  (min %.1f, %" PRIu64 " samples)\n",
           (double)hist_pct(50) / 1e3, (double)hist_pct(99) / 1e3, (double)B.lat_max / 1e3,
           B.lat_count ? (double)B.lat_min / 1e3 : 0.0, B.lat_count);
    printf("  totals: %" PRIu64 " published, %" PRIu64 " delivered, %" PRIu64 " lost, %" PRIu64
           " duplicate/late, %" PRIu64 " unacked\n",
           sent_total, B.delivered_total, lost, B.dups, ua);
    if (B.qos_mismatch || B.granted_lower) {
      printf("  note: %" PRIu64 " messages arrived with another QoS; %" PRIu64
             " subscriptions granted a lower QoS\n",
             B.qos_mismatch, B.granted_lower);
    }
    if (rss_before >= 0 && rss_after >= 0) {
      printf("  broker VmRSS %ld kB -> %ld kB: %s bytes per connection (%u connections)\n",
             rss_before / 1024, rss_after / 1024, mem, mem_conns);
    }
    if (cpu_s >= 0) {
      printf("  broker CPU %.3f s in %.2f s (%s %%, from %s): %s us per delivery\n", cpu_s, meas_s,
             cpu_pct, cpu_src_names[B.cpu_src], cpu_per_msg);
    }
    if (strcmp(gen_per_msg, "na") != 0) {
      printf("  generator CPU: %s us per delivery%s\n", gen_per_msg,
             B.copy_payload ? "" : " (large payloads discarded in the kernel)");
    }
    if (strcmp(steal_pct, "na") != 0) {
      printf("  CPU time stolen by the hypervisor: %s %% of the machine's\n", steal_pct);
    }
  }
  printf("RESULT scenario=%s qos=%u n=%u w=%u size=%u persistent=%d msgs_per_s=",
         scenario_names[B.sc], B.qos, B.n, B.w, B.size, B.persistent ? 1 : 0);
  if (B.sc == SC_IDLE) {
    printf("na");
  } else {
    printf("%.0f", rate);
  }
  print_us(stdout, "p50_us", hist_pct(50));
  print_us(stdout, "p99_us", hist_pct(99));
  print_us(stdout, "max_us", B.lat_max);
  printf(" mem_per_conn=%s lost=%" PRIu64 " dup=%" PRIu64 " status=%s transport=%s", mem, lost,
         B.dups, B.failed ? "FAIL" : "ok", transport_name());
  if (B.tls_info[0]) {
    printf(" tls=%s", B.tls_info); /* "TLSv1.3/TLS_AES_256_GCM_SHA384" */
  }
  printf(" broker_cpu_us_per_msg=%s broker_cpu_pct=%s broker_cpu_src=%s steal_pct=%s", cpu_per_msg,
         cpu_pct, cpu_s >= 0 ? cpu_src_names[B.cpu_src] : "na", steal_pct);
  printf(" gen_cpu_us_per_msg=%s rx=%s rx_discarded=%" PRIu64, gen_per_msg,
         B.copy_payload ? "copy" : "trunc", B.rx_discarded);
  printf("\n");
  if (B.failed) {
    fprintf(stderr, "mqttb-bench: FAILED: %s\n", B.fail_reason);
  }
  freeaddrinfo(B.ai);
  return B.failed ? 1 : 0;
}
