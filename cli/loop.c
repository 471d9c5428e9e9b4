/*
 * mqttb CLI: the epoll event loop.
 *
 * Single-threaded and level-triggered. Library callbacks never do I/O or free
 * anything: want_write and on_close only queue the connection on the dirty
 * list. After each batch of events and timers the dirty list is flushed, and
 * connections that are done are closed and deleted ("reaped"). That keeps
 * every mqttb_conn_del outside callbacks and every free outside event
 * dispatch.
 *
 * A connection whose input the library held back (it did its work budget
 * for one call) is "busy": it is not read from until the library has
 * processed what it holds, one call per loop iteration (a few when no
 * other event came), in turn with every other busy connection and between
 * the other events, so a client that floods shares the loop with everyone
 * else.
 *
 * SPDX-License-Identifier: MIT
 */
#include "loop.h"

#include "auth.h"
#include "log.h"
#include "proxy.h"
#include "ws.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF_SIZE 65536
/* Reads per readiness event: one, so that the library's work budget for
 * that call bounds what one client gets before the others' turn. */
#define READS_PER_EVENT 1
/* Calls into the library per busy connection in an iteration where no
 * event came (see mqttb_cli_loop_run). */
#define BUSY_ROUNDS 8
/* Bytes written to one connection per loop iteration; the rest (a fast
 * reader taking a retained sweep, say) waits for the next one. */
#define FLUSH_BUDGET (64 * 1024)
/* Entries per writev: 64 messages, each a header and a payload. */
#define IOV_BATCH 128
/* Entries of input memory taken from the library (mqttb_conn_recv_buffers):
 * the rest of a large PUBLISH and a header and a body for each of up to 64
 * more expected after it (the library offers at most 256 KiB). */
#define LENT_MAX 129
/* Password checks per loop iteration (about 0.12 ms each for Mosquitto's
 * default $7$ with 101 iterations): a burst of CONNECTs is taken this many
 * at a time, and clients already connected are served in between. */
#define AUTH_PER_ITERATION 32
#define MAX_EVENTS 256
/* Bytes read in an iteration after which the output queued so far is
 * written before the next event is served, and not only at the end: the
 * messages are then still in the CPU's cache when they are copied into the
 * sockets (a loop iteration can read 256 KiB from each of 256 clients). */
#define READ_BEFORE_WRITE (256 * 1024)
/* Numeric host with an IPv6 scope ("fe80::1%eth0"), and a port. */
#define HOST_STR_LEN 64
#define PORT_STR_LEN 8
/* "[" host "]:" port */
#define ADDR_STR_LEN (HOST_STR_LEN + PORT_STR_LEN + 3)

enum handle_kind { HANDLE_LISTENER, HANDLE_SIGNAL, HANDLE_CONN };

/* First member of everything registered with epoll; epoll data points at it. */
struct handle {
  enum handle_kind kind;
  int fd;
};

struct listener {
  struct handle h;
  struct listener *next;
  /* What its clients are checked against; NULL: everything is allowed. */
  struct mqttb_cli_auth *auth;
  /* The PROXY protocol version its connections start with; 0: none. */
  int proxy_protocol;
  /* A Unix domain socket's path (removed at exit); NULL for TCP. */
  char *unix_path;
  /* TLS for its connections; NULL: plain. */
  struct mqttb_cli_tls_ctx *tls;
  /* The user name comes from a PROXY v2 header's certificate name. */
  bool proxy_identity;
  /* MQTT over WebSockets (protocol websockets). */
  bool websockets;
};

/* Pointers first, then the flags together: thousands of idle connections
 * add up, and holes between fields are paid by each. */
/* The part of a connection only those of TLS and PROXY-protocol listeners
 * have, allocated with them: thousands of idle plain connections would pay
 * for each byte of it in struct conn. */
struct conn_extra {
  struct mqttb_cli_tls_ctx *tls_ctx; /* the listener's, until the handshake starts */
  struct conn *ready_next;           /* tls_ready */
  /* The user name a certificate gave (use_identity_as_username, or a PROXY
   * header's); NULL: the CONNECT's. */
  char *cert_username;
  /* The PROXY protocol header still to come (struct conn's proxy: its
   * version), and what of it was read so far. */
  uint8_t *proxy_buf;
  size_t proxy_len;
};

struct conn {
  struct handle h;
  struct mqttb_cli_loop *loop;
  mqttb_conn *mc;
  /* All live connections, for shutdown. */
  struct conn *prev, *next;
  struct conn *dirty_next;
  struct conn *reap_next;
  struct conn *busy_next;
  struct conn *later_next;
  /* Waiting for a password check of a later iteration (AUTH_PER_ITERATION):
   * not polled for input meanwhile (deferred). */
  struct conn *dprev, *dnext;
  /* Its listener's rules, and the user name its CONNECT gave (NULL: none). */
  struct mqttb_cli_auth *auth;
  char *username;
  /* What TLS and the PROXY protocol need (NULL for a plain connection). */
  struct conn_extra *x;
  /* TLS: the session (NULL: plain), whether its handshake is still going,
   * and whether it waits for the socket to be writable to go on. */
  struct mqttb_cli_tls_conn *tls;
  /* MQTT over WebSockets: the framing between the transport and the
   * library; NULL for plain MQTT. */
  mqttb_ws *ws;
  /* Events currently registered with epoll. */
  uint32_t events;
  uint8_t proxy; /* 0, 1 or 2 */
  bool in_later : 1;
  bool deferred : 1;
  bool in_dirty : 1;
  /* The library holds input of this connection back: not read from. */
  bool busy : 1;
  /* The socket took less than was pending: waiting for EPOLLOUT. */
  bool out_blocked : 1;
  /* The broker closed it: write what is pending, then close. */
  bool closing : 1;
  /* Queued for reaping: no more I/O, never put on the dirty list again. */
  bool dead : 1;
  bool gone : 1; /* the transport is gone: nothing more to write */
  bool close_logged : 1;
  bool connected : 1; /* on_connect was called */
  bool tls_handshake : 1;
  bool tls_wants_out : 1;
  /* Read again next iteration: TLS holds decrypted bytes epoll cannot see. */
  bool tls_ready : 1;
  bool cert_refused : 1; /* the listener takes names from certificates and this one gave none */
  bool proxy_identity : 1;
  /* "address:port", sized to fit. */
  char peer[];
};

struct mqttb_cli_loop {
  int epfd;
  struct handle sig;
  /* Kept open so that on EMFILE one can be freed to accept and drop a client. */
  int spare_fd;
  mqttb_broker *broker;
  struct listener *listeners;
  struct conn *conns;
  struct conn *dirty;
  struct conn *reap;
  /* Busy connections, first in first out. */
  struct conn *busy_head, *busy_tail;
  /* Connections with output left after their flush budget. */
  struct conn *later;
  /* TLS connections with decrypted input waiting (tls_ready). */
  struct conn *ready;
  uint64_t now;
  /* Bytes read since output was last written in this iteration. */
  size_t read_unwritten;
  bool stop;
  /* Password checks left in this iteration (AUTH_PER_ITERATION), and the
   * connections waiting for one, first come first served. */
  int auth_budget;
  struct conn *deferred_head, *deferred_tail;
  /* SIGHUP arrived: call reload after this iteration. */
  bool reload_requested;
  int (*reload)(void *arg);
  void *reload_arg;
  /* During teardown callbacks must not queue anything. */
  bool tearing_down;
  /* Persistence (store.record NULL: none), and when it wants to run next. */
  struct mqttb_cli_loop_store store;
  int store_wait;
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t mqttb_cli_loop_now(void) {
  return now_ms();
}

/* "1.2.3.4:5" or "[::1]:5". */
static void format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen) {
  char host[HOST_STR_LEN];
  char serv[PORT_STR_LEN];
  if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) !=
      0) {
    snprintf(out, outlen, "?");
  } else if (sa->sa_family == AF_INET6) {
    snprintf(out, outlen, "[%s]:%s", host, serv);
  } else {
    snprintf(out, outlen, "%s:%s", host, serv);
  }
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET6) {
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  }
  return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static void sockaddr_set_port(struct sockaddr_storage *ss, uint16_t port) {
  if (ss->ss_family == AF_INET6) {
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
  } else {
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
  }
}

/* ---- connection bookkeeping ---- */

static void dirty_add(struct conn *c) {
  struct mqttb_cli_loop *loop = c->loop;
  if (c->in_dirty || c->dead || loop->tearing_down) {
    return;
  }
  c->in_dirty = true;
  c->dirty_next = loop->dirty;
  loop->dirty = c;
}

static void reap_add(struct conn *c) {
  if (c->dead) {
    return;
  }
  c->dead = true;
  c->reap_next = c->loop->reap;
  c->loop->reap = c;
}

/* The single "disconnected" line per connection, whichever path sees the close first. */
static void log_close(struct conn *c, const mqttb_conn *mc, int reason) {
  if (c->close_logged) {
    return;
  }
  c->close_logged = true;
  const char *id = mqttb_conn_get_client_id(mc);
  /* c->peer is "1.2.3.4:5" or "[::1]:5": no brackets around it. */
  mqttb_cli_log(MQTTB_LOG_NOTICE, "Client %s from %s disconnected: %s", id ? id : "<unknown>",
                c->peer, mqttb_strerror(reason));
}

static void conn_set_events(struct conn *c, uint32_t events) {
  if (c->events == events) {
    return;
  }
  struct epoll_event ev = {.events = events, .data.ptr = &c->h};
  if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->h.fd, &ev) != 0) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "epoll_ctl: %s", strerror(errno));
    return;
  }
  c->events = events;
}

/* What to wait for: input unless busy or closing, output when blocked. */
static void conn_update_events(struct conn *c) {
  uint32_t ev = c->out_blocked || c->tls_wants_out ? EPOLLOUT : 0;
  if (!c->closing && !c->busy && !c->deferred) {
    ev |= EPOLLIN;
  }
  conn_set_events(c, ev);
}

/* Park a connection that still has to authenticate until a later
 * iteration has password checks to spare; epoll stops reporting its input
 * meanwhile, so thousands of them do not crowd out the others' events. */
static void deferred_add(struct conn *c) {
  struct mqttb_cli_loop *loop = c->loop;
  if (c->deferred) {
    return;
  }
  c->deferred = true;
  /* Its CONNECT came in time: the wait is not its fault. */
  (void)mqttb_conn_input_deferred(c->mc);
  c->dnext = NULL;
  c->dprev = loop->deferred_tail;
  if (loop->deferred_tail != NULL) {
    loop->deferred_tail->dnext = c;
  } else {
    loop->deferred_head = c;
  }
  loop->deferred_tail = c;
  conn_update_events(c);
}

static void deferred_remove(struct conn *c) {
  struct mqttb_cli_loop *loop = c->loop;
  if (!c->deferred) {
    return;
  }
  if (c->dprev != NULL) {
    c->dprev->dnext = c->dnext;
  } else {
    loop->deferred_head = c->dnext;
  }
  if (c->dnext != NULL) {
    c->dnext->dprev = c->dprev;
  } else {
    loop->deferred_tail = c->dprev;
  }
  c->deferred = false;
}

static void busy_add(struct conn *c) {
  struct mqttb_cli_loop *loop = c->loop;
  if (c->busy) {
    return;
  }
  c->busy = true;
  c->busy_next = NULL;
  if (loop->busy_tail != NULL) {
    loop->busy_tail->busy_next = c;
  } else {
    loop->busy_head = c;
  }
  loop->busy_tail = c;
  conn_update_events(c);
}

static void busy_remove(struct conn *c) {
  struct mqttb_cli_loop *loop = c->loop;
  struct conn *prev = NULL;
  for (struct conn *x = loop->busy_head; x != NULL; prev = x, x = x->busy_next) {
    if (x == c) {
      if (prev != NULL) {
        prev->busy_next = c->busy_next;
      } else {
        loop->busy_head = c->busy_next;
      }
      if (loop->busy_tail == c) {
        loop->busy_tail = prev;
      }
      break;
    }
  }
  c->busy = false;
}

/* The transport is gone (EOF, I/O error): tell the broker, then reap. */
static void conn_lost(struct conn *c) {
  c->gone = true;
  if (!c->closing && !c->dead) {
    mqttb_conn_transport_closed(c->mc, c->loop->now); /* on_close logs it */
  }
  reap_add(c);
}

static void conn_destroy(struct conn *c) {
  struct mqttb_cli_loop *loop = c->loop;
  if (c->in_later) {
    for (struct conn **p = &loop->later; *p != NULL; p = &(*p)->later_next) {
      if (*p == c) {
        *p = c->later_next;
        break;
      }
    }
  }
  if (c->busy) {
    busy_remove(c);
  }
  deferred_remove(c);
  if (c->prev != NULL) {
    c->prev->next = c->next;
  } else {
    loop->conns = c->next;
  }
  if (c->next != NULL) {
    c->next->prev = c->prev;
  }
  if (c->tls_ready) {
    for (struct conn **p = &loop->ready; *p != NULL; p = &(*p)->x->ready_next) {
      if (*p == c) {
        *p = c->x->ready_next;
        break;
      }
    }
  }
#if MQTTB_CLI_TLS
  if (c->tls != NULL) {
    if (!c->gone && !c->tls_handshake) {
      mqttb_cli_tls_conn_shutdown(c->tls); /* close_notify, best effort */
    }
    mqttb_cli_tls_conn_free(c->tls);
  }
#endif
  /* Closing the fd also removes it from epoll. */
  close(c->h.fd);
  c->dead = true;
  mqttb_conn_del(c->mc, c->loop->now);
  mqttb_ws_del(c->ws);
  free(c->username);
  if (c->x != NULL) {
    free(c->x->cert_username);
    free(c->x->proxy_buf);
    free(c->x);
  }
  free(c);
}

/* ---- library callbacks: only mark and queue ---- */

static void on_store(mqttb_broker *b, uint64_t seq, const uint8_t *rec, size_t len,
                     void *user_data) {
  (void)b;
  struct mqttb_cli_loop *loop = user_data;
  loop->store.record(loop->store.arg, seq, rec, len);
}

/* Store records reach their file before any output that could acknowledge
 * them. */
static void store_before_output(struct mqttb_cli_loop *loop) {
  if (loop->store.before_output != NULL && loop->broker != NULL) {
    loop->store_wait = loop->store.before_output(loop->store.arg, loop->broker, loop->now);
  }
}

static void store_before_write(struct mqttb_cli_loop *loop) {
  if (loop->store.before_write != NULL) {
    loop->store.before_write(loop->store.arg);
  }
}

static void on_want_write(mqttb_conn *mc, void *user_data) {
  (void)user_data;
  dirty_add(mqttb_conn_get_user_data(mc));
}

static void on_close(mqttb_conn *mc, int reason, void *user_data) {
  (void)user_data;
  struct conn *c = mqttb_conn_get_user_data(mc);
  log_close(c, mc, reason);
  c->closing = true;
  /* The flush step writes what is pending and then reaps it; a transport
   * already gone is reaped by whoever found it gone. */
  if (!c->gone) {
    dirty_add(c);
  }
}

static void on_connect(mqttb_conn *mc, void *user_data) {
  (void)user_data;
  struct conn *c = mqttb_conn_get_user_data(mc);
  c->connected = true;
  const char *id = mqttb_conn_get_client_id(mc);
  mqttb_cli_log(MQTTB_LOG_NOTICE, "New client connected from %s as %s (p%d, c%d, k%d).", c->peer,
                id ? id : "<unknown>", mqttb_conn_get_protocol_level(mc),
                mqttb_conn_get_clean_session(mc), mqttb_conn_get_keepalive(mc));
}

/* The password file's check, as Mosquitto 2. Failures are logged at notice,
 * one format for every cause, the address last (a fail2ban filter:
 * "Authentication failed: .*, from \[?<HOST>\]?:\d+$"). */
static int on_authenticate(mqttb_conn *mc, const mqttb_auth_request *req, void *user_data) {
  (void)user_data;
  struct conn *c = mqttb_conn_get_user_data(mc);
  if (req->auth_method != NULL) {
    return MQTTB_REASON_BAD_AUTH_METHOD; /* no MQTT 5 enhanced authentication here */
  }
  free(c->username);
  c->username = NULL;
  if (c->cert_refused) {
    mqttb_cli_log(
        MQTTB_LOG_NOTICE, "Authentication failed: client '%.*s', no certificate name, from %s",
        (int)(req->client_id_len > 64 ? 64 : req->client_id_len), req->client_id, c->peer);
    return MQTTB_REASON_BAD_USERNAME_OR_PASSWORD;
  }
  if (c->x != NULL && c->x->cert_username != NULL) {
    /* As Mosquitto: the certificate's name is the user name; the CONNECT's
     * user name and password and the password file are not used. */
    c->username = strdup(c->x->cert_username);
    return c->username != NULL ? MQTTB_REASON_SUCCESS : MQTTB_REASON_SERVER_UNAVAILABLE_5;
  }
  if (req->username != NULL) {
    c->username = strndup(req->username, req->username_len);
    if (c->username == NULL) {
      return MQTTB_REASON_SERVER_UNAVAILABLE_5;
    }
    if (strlen(c->username) != req->username_len) {
      /* A NUL inside the user name: no file or rule can name it. */
      mqttb_cli_log(MQTTB_LOG_NOTICE,
                    "Authentication failed: client '%.*s', user name with a NUL byte, from %s",
                    (int)(req->client_id_len > 64 ? 64 : req->client_id_len), req->client_id,
                    c->peer);
      return MQTTB_REASON_NOT_AUTHORIZED_5;
    }
  }
  if (c->auth == NULL) {
    return MQTTB_REASON_SUCCESS;
  }
  if (c->auth->pw != NULL && req->username != NULL) {
    c->loop->auth_budget--; /* a password check */
  }
  int rc = mqttb_cli_auth_connect(c->auth, req->username, req->username_len, req->password,
                                  req->password_len);
  if (rc != MQTTB_REASON_SUCCESS) {
    int idlen = req->client_id_len > 64 ? 64 : (int)req->client_id_len;
    int ulen = req->username_len > 64 ? 64 : (int)req->username_len;
    /* What the client chose comes first and the address last, so that a
     * scanner anchored at the end of the line reads the real address. */
    if (req->username != NULL) {
      mqttb_cli_log(MQTTB_LOG_NOTICE,
                    "Authentication failed: client '%.*s', user name '%.*s', from %s", idlen,
                    req->client_id, ulen, req->username, c->peer);
    } else {
      mqttb_cli_log(MQTTB_LOG_NOTICE, "Authentication failed: client '%.*s', no user name, from %s",
                    idlen, req->client_id, c->peer);
    }
  }
  return rc;
}

/* The ACL file's check: writes (PUBLISH, will), subscriptions, reads. */
static int on_authorize(mqttb_conn *mc, mqttb_access access, const char *topic, size_t len, int qos,
                        int retain, void *user_data) {
  (void)qos;
  (void)retain;
  (void)user_data;
  struct conn *c = mqttb_conn_get_user_data(mc);
  if (c->auth == NULL) {
    return MQTTB_REASON_SUCCESS;
  }
  return mqttb_cli_auth_allow(c->auth, mqttb_conn_get_client_id(mc), c->username, access, topic,
                              len)
             ? MQTTB_REASON_SUCCESS
             : MQTTB_REASON_NOT_AUTHORIZED_5;
}

static void on_log(mqttb_broker *broker, mqttb_log_level level, const char *msg, void *user_data) {
  (void)broker;
  (void)user_data;
  mqttb_cli_log(level, "%s", msg);
}

/* ---- I/O ---- */

/* After input was fed (rc: what the library returned); a connection
 * whose input the library holds back becomes busy. False when reading
 * should stop. */
static bool fed(struct conn *c, int rc) {
  if (rc != MQTTB_OK && !c->closing) {
    /* The library should have called on_close; close anyway rather than spin. */
    log_close(c, c->mc, rc);
    c->closing = true;
    dirty_add(c);
  }
  if (c->closing || c->dead) {
    return false;
  }
  if (mqttb_conn_input_pending(c->mc) > 0) {
    busy_add(c);
    return false;
  }
  return true;
}

/* Feed bytes (none: go on with held input), as fed. */
static bool conn_feed(struct conn *c, const uint8_t *buf, size_t n) {
  return fed(c, mqttb_conn_recv(c->mc, buf, n, c->loop->now));
}

/* The PROXY protocol header, taken off the socket exactly (what follows it
 * may be a TLS handshake that must find its first byte there): version 2
 * reads its fixed part, then the length it gives; version 1 peeks and
 * takes up to the CRLF. The client address it names replaces the peer. */
static void proxy_read(struct conn *c) {
  if (c->x->proxy_buf == NULL && (c->x->proxy_buf = malloc(MQTTB_CLI_PROXY_MAX)) == NULL) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "out of memory reading a PROXY header from %s", c->peer);
    conn_lost(c);
    return;
  }
  size_t want;
  int flags = 0;
  if (c->proxy == 2) {
    want = c->x->proxy_len < 16
               ? 16 - c->x->proxy_len
               : 16 + ((size_t)c->x->proxy_buf[14] << 8 | c->x->proxy_buf[15]) - c->x->proxy_len;
    if (want > MQTTB_CLI_PROXY_MAX - c->x->proxy_len) {
      want = 0; /* longer than allowed: the parser says so below */
    }
  } else {
    want = MQTTB_CLI_PROXY_V1_MAX - c->x->proxy_len;
    flags = MSG_PEEK;
  }
  ssize_t n = want > 0 ? recv(c->h.fd, c->x->proxy_buf + c->x->proxy_len, want, flags) : 0;
  if (want > 0 && n == 0) {
    conn_lost(c);
    return;
  }
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      conn_lost(c);
    }
    return;
  }
  size_t have = c->x->proxy_len + (size_t)n, used = 0;
  struct mqttb_cli_proxy_info info;
  char why[160];
  enum mqttb_cli_proxy_result r =
      mqttb_cli_proxy_parse(c->proxy, c->x->proxy_buf, have, &used, &info, why, sizeof why);
  if (flags == MSG_PEEK) {
    /* Take the header's bytes, or all that were peeked if it goes on. */
    size_t take = r == MQTTB_CLI_PROXY_DONE ? used - c->x->proxy_len : (size_t)n;
    if (r != MQTTB_CLI_PROXY_BAD &&
        recv(c->h.fd, c->x->proxy_buf + c->x->proxy_len, take, 0) != (ssize_t)take) {
      conn_lost(c);
      return;
    }
    have = c->x->proxy_len + take;
  }
  c->x->proxy_len = have;
  if (r == MQTTB_CLI_PROXY_MORE) {
    return;
  }
  if (r == MQTTB_CLI_PROXY_BAD) {
    mqttb_cli_log(MQTTB_LOG_NOTICE, "Connection from %s closed: %s", c->peer, why);
    conn_lost(c);
    return;
  }
  if (info.has_addr) {
    char peer[ADDR_STR_LEN];
    if (info.src.ss_family == AF_UNIX) {
      snprintf(peer, sizeof peer, "unix:%.*s", (int)(sizeof peer - 6),
               ((const struct sockaddr_un *)&info.src)->sun_path);
    } else {
      format_addr((const struct sockaddr *)&info.src, info.src_len, peer, sizeof peer);
    }
    mqttb_cli_log(MQTTB_LOG_DEBUG, "Connection from %s is a proxy's for %s.", c->peer, peer);
    snprintf(c->peer, ADDR_STR_LEN, "%s", peer);
  }
  if (c->proxy_identity) {
    /* TLS ended at the proxy: its verified certificate's name, or none. */
    if (info.ssl && info.cert_conn && info.verify == 0 && info.cn[0] != '\0') {
      c->x->cert_username = strdup(info.cn);
    }
    c->cert_refused = c->x->cert_username == NULL;
  }
  free(c->x->proxy_buf);
  c->x->proxy_buf = NULL;
  c->proxy = 0;
}

#if MQTTB_CLI_TLS
/* Queue a TLS connection whose session holds decrypted input for a read in
 * the next iteration. */
static void ready_add(struct conn *c) {
  if (c->tls_ready || c->dead) {
    return;
  }
  c->tls_ready = true;
  c->x->ready_next = c->loop->ready;
  c->loop->ready = c;
}

/* One step of the TLS handshake; true once it is done. */
static bool tls_handshake_step(struct conn *c) {
  if (c->tls == NULL) {
    c->tls = mqttb_cli_tls_conn_new(c->x->tls_ctx, c->h.fd);
    if (c->tls == NULL) {
      mqttb_cli_log(MQTTB_LOG_ERROR, "out of memory starting TLS with %s", c->peer);
      conn_lost(c);
      return false;
    }
  }
  char err[256] = "";
  enum mqttb_cli_tls_status st = mqttb_cli_tls_conn_handshake(c->tls, err, sizeof err);
  bool wants_out = st == MQTTB_CLI_TLS_WANT_WRITE;
  if (wants_out != c->tls_wants_out) {
    c->tls_wants_out = wants_out;
    conn_update_events(c);
  }
  if (st == MQTTB_CLI_TLS_WANT_READ || st == MQTTB_CLI_TLS_WANT_WRITE) {
    return false;
  }
  if (st != MQTTB_CLI_TLS_DONE) {
    mqttb_cli_log(MQTTB_LOG_NOTICE, "TLS handshake with %s failed: %s", c->peer,
                  err[0] != '\0' ? err : "connection closed");
    conn_lost(c);
    return false;
  }
  c->tls_handshake = false;
  char *name = NULL;
  int u = mqttb_cli_tls_conn_username(c->tls, &name);
  if (u == 1) {
    c->x->cert_username = name;
  } else if (u < 0) {
    c->cert_refused = true;
  }
  mqttb_cli_log(MQTTB_LOG_DEBUG, "TLS with %s: %s, %s%s%s", c->peer,
                mqttb_cli_tls_conn_version(c->tls), mqttb_cli_tls_conn_cipher(c->tls),
                c->x->cert_username != NULL ? ", certificate of " : "",
                c->x->cert_username != NULL ? c->x->cert_username : "");
  return true;
}
#endif

/* Read from the transport: the socket, or the TLS session over it. Returns
 * bytes read, 0 at the end, -1 with errno EAGAIN (nothing now) or another
 * error (logged). */
static ssize_t transport_read(struct conn *c, uint8_t *buf, size_t len) {
#if MQTTB_CLI_TLS
  if (c->tls != NULL) {
    size_t n = 0;
    char err[256] = "";
    enum mqttb_cli_tls_status st = mqttb_cli_tls_conn_read(c->tls, buf, len, &n, err, sizeof err);
    bool wants_out = st == MQTTB_CLI_TLS_WANT_WRITE;
    if (wants_out != c->tls_wants_out) {
      c->tls_wants_out = wants_out;
      conn_update_events(c);
    }
    switch (st) {
    case MQTTB_CLI_TLS_DONE:
      if (mqttb_cli_tls_conn_pending(c->tls) > 0) {
        ready_add(c); /* decrypted bytes epoll will not report */
      }
      return (ssize_t)n;
    case MQTTB_CLI_TLS_WANT_READ:
    case MQTTB_CLI_TLS_WANT_WRITE:
      errno = EAGAIN;
      return -1;
    case MQTTB_CLI_TLS_CLOSED:
      return 0;
    default:
      mqttb_cli_log(MQTTB_LOG_DEBUG, "TLS read from %s: %s", c->peer, err);
      errno = EIO;
      return -1;
    }
  }
#endif
  return recv(c->h.fd, buf, len, 0);
}

/* Write to the transport; as writev. */
static ssize_t transport_writev(struct conn *c, const struct iovec *iov, int n) {
#if MQTTB_CLI_TLS
  if (c->tls != NULL) {
    size_t w = 0;
    char err[256] = "";
    enum mqttb_cli_tls_status st = mqttb_cli_tls_conn_writev(c->tls, iov, n, &w, err, sizeof err);
    if (st == MQTTB_CLI_TLS_DONE) {
      return (ssize_t)w;
    }
    if (st == MQTTB_CLI_TLS_WANT_WRITE || st == MQTTB_CLI_TLS_WANT_READ) {
      errno = EAGAIN;
      return -1;
    }
    mqttb_cli_log(MQTTB_LOG_DEBUG, "TLS write to %s: %s", c->peer, err);
    errno = EPIPE;
    return -1;
  }
#endif
  return writev(c->h.fd, iov, n);
}

/* Read the rest of a large PUBLISH, and the packets expected after it,
 * straight into the messages the library will make of them (the nlent
 * entries of lent, from mqttb_conn_recv_buffers; lent has room for one
 * more), and what follows into buf. As read: bytes read, 0 at the end, -1
 * and errno. */
static ssize_t direct_read(struct conn *c, mqttb_inbuf *lent, int nlent, uint8_t *buf, size_t len) {
#if MQTTB_CLI_TLS
  if (c->tls != NULL) {
    (void)nlent;
    return transport_read(c, lent[0].base, lent[0].len); /* a TLS record at a time anyway */
  }
#endif
  lent[nlent].base = buf;
  lent[nlent].len = len;
  return readv(c->h.fd, (const struct iovec *)(const void *)lent, nlent + 1);
}

static void conn_read(struct conn *c) {
  uint8_t buf[READ_BUF_SIZE];
  if (c->proxy != 0) {
    proxy_read(c);
    if (c->proxy != 0 || c->dead || (c->x->tls_ctx == NULL && !c->tls_handshake)) {
      return; /* a plain connection: level-triggered epoll reports what follows */
    }
  }
#if MQTTB_CLI_TLS
  if (c->tls_handshake && !tls_handshake_step(c)) {
    return;
  }
#endif
  if (!c->connected && c->loop->auth_budget <= 0) {
    /* This iteration's password checks are spent: a client still to
     * connect waits for a later one. */
    deferred_add(c);
    return;
  }
  for (int i = 0; i < READS_PER_EVENT && !c->closing && !c->dead && !c->busy; i++) {
    mqttb_inbuf lent[LENT_MAX + 1];
    int nlent =
        c->ws == NULL ? mqttb_conn_recv_buffers(c->mc, lent, c->tls != NULL ? 1 : LENT_MAX) : 0;
    size_t room = 0;
    for (int k = 0; k < nlent; k++) {
      room += lent[k].len;
    }
    /* Behind packets expected, only room for what breaks the expectation:
     * the rest stays in the socket for blocks offered by the next read. */
    size_t tail = nlent > 1 ? 4096 : sizeof buf;
    ssize_t n =
        nlent > 0 ? direct_read(c, lent, nlent, buf, tail) : transport_read(c, buf, sizeof buf);
    if (n > 0) {
      c->loop->read_unwritten += (size_t)n;
    }
    if (n > 0 && room > 0) {
      size_t direct = (size_t)n < room ? (size_t)n : room;
      if (!fed(c, mqttb_conn_recv_commit(c->mc, direct, c->loop->now))) {
        return;
      }
      if ((size_t)n > direct && !conn_feed(c, buf, (size_t)n - direct)) {
        return;
      }
      if ((size_t)n < room + tail) {
        return; /* most likely drained, as below */
      }
      continue;
    }
    if (n > 0 && c->ws != NULL) {
      /* Unframed in place: buf[0..m) are the MQTT bytes the frames held. */
      size_t m = 0;
      int rc = mqttb_ws_recv(c->ws, buf, (size_t)n, &m);
      if (mqttb_ws_output_pending(c->ws) > 0) {
        dirty_add(c); /* the handshake's answer, a pong, a close frame */
      }
      if (m > 0 && !conn_feed(c, buf, m)) {
        return;
      }
      if (rc != MQTTB_WS_OK) {
        int code = 0;
        const char *why = mqttb_ws_close_reason(c->ws, &code);
        mqttb_cli_log(c->connected ? MQTTB_LOG_DEBUG : MQTTB_LOG_NOTICE,
                      "WebSocket from %s closed: %s (%d)", c->peer, why != NULL ? why : "?", code);
        /* What is left to write (an HTTP refusal, a close frame) is written
         * by the flush that closing brings, then the socket is closed. */
        if (!c->closing) {
          mqttb_conn_transport_closed(c->mc, c->loop->now);
        }
        return;
      }
      if ((size_t)n < sizeof buf) {
        return;
      }
      continue;
    }
    if (n > 0) {
      if (!conn_feed(c, buf, (size_t)n)) {
        return;
      }
      if ((size_t)n < sizeof buf) {
        return; /* most likely drained; level-triggered epoll reports any rest */
      }
    } else if (n == 0) {
      conn_lost(c);
      return;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else if (errno != EINTR) {
      if (c->tls == NULL) {
        mqttb_cli_log(MQTTB_LOG_DEBUG, "read from %s: %s", c->peer, strerror(errno));
      }
      conn_lost(c);
      return;
    }
  }
}

/* Write pending output until drained, the socket is full, or this
 * iteration's budget for the connection is spent (then it goes on the
 * later list for the next iteration). */
/* What to write next: the library's output, framed for WebSockets where
 * the connection uses them. Returns the entries of out (0: nothing). */
static int next_output(struct conn *c, mqttb_iovec *out, int max) {
  if (c->ws == NULL) {
    return mqttb_conn_output(c->mc, out, max);
  }
  mqttb_iovec lib[IOV_BATCH];
  int n = mqttb_conn_output(c->mc, lib, max - MQTTB_WS_IOV_EXTRA);
  int k = mqttb_ws_output(c->ws, lib, n > 0 ? n : 0, out, max);
  return k > 0 ? k : 0;
}

/* w bytes of what next_output gave were written. */
static void output_written(struct conn *c, size_t w) {
  size_t mqtt = w;
  if (c->ws != NULL) {
    mqttb_ws_output_ack(c->ws, w, &mqtt);
  }
  mqttb_conn_output_ack(c->mc, mqtt, c->loop->now);
}

static void conn_flush(struct conn *c) {
  mqttb_iovec out[IOV_BATCH + MQTTB_WS_IOV_EXTRA];
  size_t written = 0;
  if (c->ws != NULL && c->closing) {
    mqttb_ws_close(c->ws, MQTTB_WS_CLOSE_NORMAL); /* after what the library still has */
  }
  for (;;) {
    if (written >= FLUSH_BUDGET && !c->closing) {
      if (!c->in_later) {
        c->in_later = true;
        c->later_next = c->loop->later;
        c->loop->later = c;
      }
      return;
    }
    int n = next_output(c, out, IOV_BATCH + (c->ws != NULL ? MQTTB_WS_IOV_EXTRA : 0));
    if (n <= 0) {
      break;
    }
    store_before_write(c->loop);
    /* mqttb_iovec has the layout of struct iovec (the library asserts it). */
    ssize_t w = transport_writev(c, (const struct iovec *)out, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->out_blocked = true;
        conn_update_events(c);
        return;
      }
      mqttb_cli_log(MQTTB_LOG_DEBUG, "write to %s: %s", c->peer, strerror(errno));
      conn_lost(c);
      return;
    }
    written += (size_t)w;
    output_written(c, (size_t)w);
  }
  c->out_blocked = false;
  if (c->closing) {
    reap_add(c);
  } else {
    conn_update_events(c);
  }
}

/* One call into the library for each connection that was busy when the
 * round started; those still busy go to the back. */
static void serve_busy(struct mqttb_cli_loop *loop) {
  struct conn *end = loop->busy_tail;
  while (loop->busy_head != NULL) {
    struct conn *c = loop->busy_head;
    loop->busy_head = c->busy_next;
    if (loop->busy_head == NULL) {
      loop->busy_tail = NULL;
    }
    c->busy = false;
    if (!c->closing && !c->dead && conn_feed(c, NULL, 0)) {
      conn_update_events(c); /* read again */
#if MQTTB_CLI_TLS
      if (c->tls != NULL && mqttb_cli_tls_conn_pending(c->tls) > 0) {
        ready_add(c); /* what TLS decrypted while this one was busy */
      }
#endif
    }
    if (c == end) {
      break;
    }
  }
}

/* Write what the socket takes now, without waiting: for the goodbye at
 * shutdown. */
static void flush_once(struct conn *c) {
  mqttb_iovec out[IOV_BATCH + MQTTB_WS_IOV_EXTRA];
  int n;
  if (c->ws != NULL) {
    mqttb_ws_close(c->ws, MQTTB_WS_CLOSE_GOING_AWAY);
  }
  while ((n = next_output(c, out, IOV_BATCH + (c->ws != NULL ? MQTTB_WS_IOV_EXTRA : 0))) > 0) {
    store_before_write(c->loop);
    ssize_t w = transport_writev(c, (const struct iovec *)out, n);
    if (w <= 0) {
      return;
    }
    output_written(c, (size_t)w);
  }
}

static void flush_dirty(struct mqttb_cli_loop *loop) {
  while (loop->dirty != NULL) {
    struct conn *c = loop->dirty;
    loop->dirty = c->dirty_next;
    /* Output the flush itself produces (retained messages paced by the
     * writes) is written by this flush, within its budget: the connection
     * stays marked until it is done. */
    if (!c->dead) {
      conn_flush(c);
    }
    c->in_dirty = false;
  }
}

/* In the middle of an iteration, once READ_BEFORE_WRITE bytes were read:
 * what is queued is written. No reaping here: the events and the ready list
 * still to serve may name those it would free. */
static void write_if_read_much(struct mqttb_cli_loop *loop) {
  if (loop->read_unwritten >= READ_BEFORE_WRITE) {
    store_before_output(loop);
    flush_dirty(loop);
    loop->read_unwritten = 0;
  }
}

static void reap_all(struct mqttb_cli_loop *loop) {
  while (loop->reap != NULL) {
    struct conn *c = loop->reap;
    loop->reap = c->reap_next;
    conn_destroy(c);
  }
}

static void conn_accept(struct mqttb_cli_loop *loop, struct listener *l, int fd,
                        const struct sockaddr *sa, socklen_t salen) {
  int one = 1;
  /* MQTT packets are small and latency matters more than segment count. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  char peer[ADDR_STR_LEN];
  if (l->unix_path != NULL) {
    snprintf(peer, sizeof peer, "unix:%.*s", (int)(sizeof peer - 6), l->unix_path);
  } else {
    format_addr(sa, salen, peer, sizeof peer);
  }
  size_t peer_len = strlen(peer);
  /* A PROXY header may name a longer address than the proxy's own. */
  size_t peer_cap = l->proxy_protocol != 0 ? ADDR_STR_LEN : peer_len + 1;
  struct conn *c = calloc(1, sizeof *c + peer_cap);
  if (c == NULL) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "out of memory accepting a connection");
    close(fd);
    return;
  }
  c->h.kind = HANDLE_CONN;
  c->h.fd = fd;
  c->loop = loop;
  c->auth = l->auth;
  c->proxy = (uint8_t)l->proxy_protocol; /* 0, 1 or 2 */
  c->proxy_identity = l->proxy_identity;
  c->tls_handshake = l->tls != NULL;
  if ((l->tls != NULL || l->proxy_protocol != 0) && (c->x = calloc(1, sizeof *c->x)) == NULL) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "out of memory accepting a connection");
    close(fd);
    free(c);
    return;
  }
  if (c->x != NULL) {
    c->x->tls_ctx = l->tls;
  }
  if (l->websockets) {
    mqttb_ws_settings ws;
    mqttb_ws_settings_default(&ws);
    if ((c->ws = mqttb_ws_new(&ws)) == NULL) {
      mqttb_cli_log(MQTTB_LOG_ERROR, "out of memory accepting a connection");
      close(fd);
      free(c->x);
      free(c);
      return;
    }
  }
  memcpy(c->peer, peer, peer_len + 1);

  int rc = mqttb_conn_new(&c->mc, loop->broker, loop->now, c);
  if (rc != MQTTB_OK) {
    if (rc == MQTTB_ERR_TOO_MANY_CONNECTIONS) {
      mqttb_cli_log(MQTTB_LOG_NOTICE, "Client connection from %s denied: max_connections exceeded.",
                    c->peer);
    } else {
      mqttb_cli_log(MQTTB_LOG_ERROR, "Client connection from %s failed: %s", c->peer,
                    mqttb_strerror(rc));
    }
    close(fd);
    mqttb_ws_del(c->ws);
    free(c->x);
    free(c);
    return;
  }

  c->events = EPOLLIN;
  struct epoll_event ev = {.events = c->events, .data.ptr = &c->h};
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "epoll_ctl: %s", strerror(errno));
    c->dead = true;
    mqttb_conn_transport_closed(c->mc, loop->now);
    mqttb_conn_del(c->mc, loop->now);
    close(fd);
    mqttb_ws_del(c->ws);
    free(c);
    return;
  }
  c->next = loop->conns;
  if (loop->conns != NULL) {
    loop->conns->prev = c;
  }
  loop->conns = c;
  mqttb_cli_log(MQTTB_LOG_DEBUG, "New connection from %s.", c->peer);
}

static void accept_all(struct mqttb_cli_loop *loop, struct listener *l) {
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    int fd = accept4(l->h.fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      conn_accept(loop, l, fd, (struct sockaddr *)&ss, sslen);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) {
      continue;
    }
    if ((errno == EMFILE || errno == ENFILE) && loop->spare_fd >= 0) {
      /* Out of fds: drop this client instead of spinning on a readable listener. */
      mqttb_cli_log(MQTTB_LOG_WARNING, "Client connection refused: out of file descriptors.");
      close(loop->spare_fd);
      int drop = accept4(l->h.fd, NULL, NULL, SOCK_CLOEXEC);
      if (drop >= 0) {
        close(drop);
      }
      loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      mqttb_cli_log(MQTTB_LOG_ERROR, "accept: %s", strerror(errno));
    }
    return;
  }
}

static void read_signals(struct mqttb_cli_loop *loop) {
  struct signalfd_siginfo si;
  while (read(loop->sig.fd, &si, sizeof si) == (ssize_t)sizeof si) {
    if (si.ssi_signo == SIGHUP) {
      loop->reload_requested = true;
      continue;
    }
    if (!loop->stop) {
      mqttb_cli_log(MQTTB_LOG_NOTICE, "shutting down");
    }
    loop->stop = true;
  }
}

static void dispatch(struct mqttb_cli_loop *loop, struct handle *h, uint32_t events) {
  if (h->kind == HANDLE_LISTENER) {
    accept_all(loop, (struct listener *)h);
    return;
  }
  if (h->kind == HANDLE_SIGNAL) {
    read_signals(loop);
    return;
  }
  struct conn *c = (struct conn *)h;
  if (c->dead) {
    return;
  }
  if (c->closing) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      reap_add(c); /* the rest of the output cannot be delivered */
    } else if (events & EPOLLOUT) {
      dirty_add(c);
    }
    return;
  }
  if (c->tls_handshake || c->tls_wants_out) {
    /* TLS goes on whichever way the socket became ready. */
    conn_read(c);
    return;
  }
  if (events & EPOLLOUT) {
    dirty_add(c);
  }
  /* Errors and hangups show up as a failing or empty read. */
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    conn_read(c);
  }
}

static int next_timeout(const struct mqttb_cli_loop *loop) {
  int t = mqttb_broker_timeout(loop->broker, now_ms());
  if (loop->store_wait >= 0 && (t < 0 || loop->store_wait < t)) {
    t = loop->store_wait;
  }
  return t;
}

int mqttb_cli_loop_run(struct mqttb_cli_loop *loop) {
  struct epoll_event events[MAX_EVENTS];
  while (!loop->stop) {
    int n = epoll_wait(loop->epfd, events, MAX_EVENTS,
                       loop->busy_head != NULL || loop->later != NULL ||
                               loop->deferred_head != NULL || loop->ready != NULL
                           ? 0
                           : next_timeout(loop));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      mqttb_cli_log(MQTTB_LOG_ERROR, "epoll_wait: %s", strerror(errno));
      return 1;
    }
    loop->now = now_ms();
    loop->read_unwritten = 0;
    loop->auth_budget = AUTH_PER_ITERATION;
    /* Those parked first, in the order they came. */
    while (loop->auth_budget > 0 && loop->deferred_head != NULL) {
      struct conn *c = loop->deferred_head;
      deferred_remove(c);
      conn_update_events(c);
      conn_read(c);
      write_if_read_much(loop);
    }
    for (int i = 0; i < n; i++) {
      dispatch(loop, events[i].data.ptr, events[i].events);
      write_if_read_much(loop);
    }
    /* Input TLS decrypted and holds: epoll does not see it. */
    struct conn *ready = loop->ready;
    loop->ready = NULL;
    while (ready != NULL) {
      struct conn *c = ready;
      ready = c->x->ready_next;
      c->tls_ready = false;
      if (!c->dead && !c->closing && !c->busy && !c->deferred) {
        conn_read(c);
        write_if_read_much(loop);
      }
    }
    serve_busy(loop);
    /* When nothing else was ready, busy connections get a few more calls
     * before the output is written: a fan-out to a thousand subscribers
     * spends the work budget on one or two messages, and writing after
     * each of them would cost a system call per subscriber per message. */
    for (int k = 1; n == 0 && k < BUSY_ROUNDS && loop->busy_head != NULL; k++) {
      serve_busy(loop);
    }
    /* Output left over from the last iteration gets its next share. */
    while (loop->later != NULL) {
      struct conn *c = loop->later;
      loop->later = c->later_next;
      c->in_later = false;
      dirty_add(c);
    }
    if (mqttb_broker_next_deadline(loop->broker) <= loop->now) {
      mqttb_broker_handle_timers(loop->broker, loop->now);
    }
    if (loop->reload_requested) {
      loop->reload_requested = false;
      if (loop->reload != NULL) {
        loop->reload(loop->reload_arg);
      } else {
        mqttb_cli_log(MQTTB_LOG_NOTICE, "SIGHUP: no configuration file to reload");
      }
    }
    store_before_output(loop);
    /* Reaping can queue output on others (wills), flushing can reap: repeat until quiet. */
    while (loop->dirty != NULL || loop->reap != NULL) {
      flush_dirty(loop);
      reap_all(loop);
      store_before_output(loop);
    }
  }
  return 0;
}

/* ---- setup and teardown ---- */

static int setup_signals(struct mqttb_cli_loop *loop) {
  /* Peers that vanish mid-write must give EPIPE, not kill the broker. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
    return -1;
  }
  loop->sig.kind = HANDLE_SIGNAL;
  loop->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (loop->sig.fd < 0) {
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &loop->sig};
  return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->sig.fd, &ev);
}

/* For $SYS/broker/time: the library reads no clock itself. */
static int64_t wallclock(void *user_data) {
  (void)user_data;
  return (int64_t)time(NULL);
}

/* For $SYS/broker/heap/current: what the C library's allocator has in use. */
static uint64_t heap_usage(void *user_data) {
  (void)user_data;
  struct mallinfo2 mi = mallinfo2();
  return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

struct mqttb_cli_loop *mqttb_cli_loop_new(const mqttb_settings *settings,
                                          const struct mqttb_cli_loop_store *store) {
  struct mqttb_cli_loop *loop = calloc(1, sizeof *loop);
  if (loop == NULL) {
    mqttb_cli_fatal("out of memory");
    return NULL;
  }
  loop->sig.fd = -1;
  loop->store_wait = -1;
  if (store != NULL) {
    loop->store = *store;
  }
  loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  loop->now = now_ms();
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (loop->epfd < 0 || setup_signals(loop) != 0) {
    mqttb_cli_fatal("cannot set up the event loop: %s", strerror(errno));
    mqttb_cli_loop_free(loop);
    return NULL;
  }

  mqttb_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.want_write = on_want_write;
  cb.on_close = on_close;
  cb.on_connect = on_connect;
  cb.authenticate = on_authenticate;
  cb.authorize = on_authorize;
  cb.log = on_log;
  cb.wallclock = wallclock;
  cb.heap_usage = heap_usage;
  if (loop->store.record != NULL) {
    cb.store = on_store;
  }
  int rc = mqttb_broker_new(&loop->broker, settings, &cb, NULL, loop);
  if (rc != MQTTB_OK) {
    mqttb_cli_fatal("cannot create the broker: %s", mqttb_strerror(rc));
    mqttb_cli_loop_free(loop);
    return NULL;
  }
  return loop;
}

/*
 * Bind one listening socket. When @p optional, a missing address family
 * (IPv6 disabled) is skipped instead of failing. Returns 1 when bound, 0
 * when skipped, -1 on error.
 */
/* Register a bound, listening socket; addr names it in messages. */
static int add_listener(struct mqttb_cli_loop *loop, int fd, const char *addr,
                        const struct mqttb_cli_listen *spec) {
  struct listener *l = calloc(1, sizeof *l);
  if (l == NULL || (spec->unix_path != NULL && (l->unix_path = strdup(spec->unix_path)) == NULL)) {
    mqttb_cli_fatal("out of memory");
    close(fd);
    free(l);
    return -1;
  }
  l->h.kind = HANDLE_LISTENER;
  l->h.fd = fd;
  l->auth = spec->auth;
  l->proxy_protocol = spec->proxy_protocol;
  l->tls = spec->tls;
  l->proxy_identity = spec->proxy_identity;
  l->websockets = spec->websockets;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->h};
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    mqttb_cli_fatal("cannot listen on %s: epoll_ctl: %s", addr, strerror(errno));
    close(fd);
    free(l->unix_path);
    free(l);
    return -1;
  }
  /* Keep bind order, so the first listener stays first. */
  struct listener **tail = &loop->listeners;
  while (*tail != NULL) {
    tail = &(*tail)->next;
  }
  *tail = l;
  /* Machine-readable and unconditional: tests find ephemeral ports this way. */
  mqttb_cli_announce("listening on %s", addr);
  return 1;
}

static int listen_one(struct mqttb_cli_loop *loop, const struct sockaddr *sa, socklen_t salen,
                      uint16_t *port, bool optional, const struct mqttb_cli_listen *spec) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, sa, salen);
  sockaddr_set_port(&ss, *port);
  char addr[ADDR_STR_LEN];
  format_addr((struct sockaddr *)&ss, salen, addr, sizeof addr);

  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (optional && errno == EAFNOSUPPORT) {
      return 0;
    }
    mqttb_cli_fatal("cannot listen on %s: %s", addr, strerror(errno));
    return -1;
  }
  int one = 1;
  /* Restarting must not fail on connections lingering in TIME_WAIT. */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) {
    /* The IPv4 wildcard has its own socket. */
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (bind(fd, (struct sockaddr *)&ss, salen) != 0) {
    int e = errno;
    close(fd);
    if (optional && (e == EADDRNOTAVAIL || e == EAFNOSUPPORT)) {
      mqttb_cli_log(MQTTB_LOG_DEBUG, "not listening on %s: %s", addr, strerror(e));
      return 0;
    }
    mqttb_cli_fatal("cannot listen on %s: %s", addr, strerror(e));
    return -1;
  }
  if (listen(fd, SOMAXCONN) != 0) {
    mqttb_cli_fatal("cannot listen on %s: %s", addr, strerror(errno));
    close(fd);
    return -1;
  }

  socklen_t len = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &len);
  *port = sockaddr_port(&ss);
  format_addr((struct sockaddr *)&ss, len, addr, sizeof addr);
  return add_listener(loop, fd, addr, spec);
}

/* A Unix domain socket. A socket file already at the path (left by a
 * broker that did not exit cleanly) is replaced; anything else there is
 * not touched. The file gets the permissions the umask leaves. */
static int listen_unix(struct mqttb_cli_loop *loop, const struct mqttb_cli_listen *spec) {
  const char *path = spec->unix_path;
  char addr[ADDR_STR_LEN + 108];
  snprintf(addr, sizeof addr, "unix:%s", path);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (path[0] == '\0' || strlen(path) >= sizeof sa.sun_path) {
    mqttb_cli_fatal("cannot listen on %s: a Unix socket path must have 1 to %zu bytes", addr,
                    sizeof sa.sun_path - 1);
    return -1;
  }
  memcpy(sa.sun_path, path, strlen(path));
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      mqttb_cli_fatal("cannot listen on %s: the path exists and is not a socket", addr);
      return -1;
    }
    if (unlink(path) != 0) {
      mqttb_cli_fatal("cannot listen on %s: removing the old socket: %s", addr, strerror(errno));
      return -1;
    }
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    mqttb_cli_fatal("cannot listen on %s: %s", addr, strerror(errno));
    return -1;
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, SOMAXCONN) != 0) {
    mqttb_cli_fatal("cannot listen on %s: %s", addr, strerror(errno));
    close(fd);
    return -1;
  }
  return add_listener(loop, fd, addr, spec);
}

/* The IPv4 and IPv6 wildcard addresses, or with loopback 127.0.0.1 and ::1;
 * the IPv6 socket is skipped where IPv6 is not available. IPv4 first, so
 * that with port 0 the IPv6 socket reuses the port it got. */
static int listen_wildcard(struct mqttb_cli_loop *loop, bool loopback, uint16_t port,
                           uint16_t *bound_port, const struct mqttb_cli_listen *spec) {
  struct sockaddr_in sa4;
  memset(&sa4, 0, sizeof sa4);
  sa4.sin_family = AF_INET;
  sa4.sin_addr.s_addr = htonl(loopback ? INADDR_LOOPBACK : INADDR_ANY);
  struct sockaddr_in6 sa6;
  memset(&sa6, 0, sizeof sa6);
  sa6.sin6_family = AF_INET6;
  sa6.sin6_addr = loopback ? in6addr_loopback : in6addr_any;
  if (listen_one(loop, (struct sockaddr *)&sa4, sizeof sa4, &port, false, spec) < 0 ||
      listen_one(loop, (struct sockaddr *)&sa6, sizeof sa6, &port, true, spec) < 0) {
    return -1;
  }
  *bound_port = port;
  return 0;
}

int mqttb_cli_loop_listen(struct mqttb_cli_loop *loop, const struct mqttb_cli_listen *spec,
                          uint16_t *bound_port) {
  int bound = 0;
  int rc;
  const char *host = spec->host;
  uint16_t port = spec->port;
  if (spec->unix_path != NULL) {
    *bound_port = 0;
    return listen_unix(loop, spec) < 0 ? -1 : 0;
  }
  if (host == NULL || host[0] == '\0') {
    return listen_wildcard(loop, host != NULL, port, bound_port, spec);
  }

  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  struct addrinfo *res;
  int gai = getaddrinfo(host, NULL, &hints, &res);
  if (gai != 0) {
    mqttb_cli_fatal("cannot listen on '%s': %s", host, gai_strerror(gai));
    return -1;
  }
  /* A name may resolve to several addresses (localhost: ::1 and 127.0.0.1); bind each. */
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) {
      continue;
    }
    rc = listen_one(loop, ai->ai_addr, ai->ai_addrlen, &port, false, spec);
    if (rc < 0) {
      freeaddrinfo(res);
      return -1;
    }
    bound += rc;
  }
  freeaddrinfo(res);
  if (bound == 0) {
    mqttb_cli_fatal("cannot listen on '%s': no usable address", host);
    return -1;
  }
  *bound_port = port;
  return 0;
}

void mqttb_cli_loop_free(struct mqttb_cli_loop *loop) {
  if (loop == NULL) {
    return;
  }
  /* Stop accepting first. */
  while (loop->listeners != NULL) {
    struct listener *l = loop->listeners;
    loop->listeners = l->next;
    close(l->h.fd);
    if (l->unix_path != NULL) {
      unlink(l->unix_path);
      free(l->unix_path);
    }
    free(l);
  }
  loop->now = now_ms();
  /* Closing may publish wills to other connections; their output is dropped. */
  loop->tearing_down = true;
  /* MQTT 5 clients are told why (DISCONNECT 0x8B); on_close logs it. */
  mqttb_broker_shutdown(loop->broker, loop->now);
  store_before_output(loop);
  for (struct conn *c = loop->conns; c != NULL; c = c->next) {
    if (!c->dead) {
      flush_once(c);
    }
  }
  loop->dirty = NULL;
  loop->reap = NULL;
  while (loop->conns != NULL) {
    conn_destroy(loop->conns);
  }
  if (loop->store.final != NULL && loop->broker != NULL) {
    loop->store.final(loop->store.arg, loop->broker, loop->now);
  }
  mqttb_broker_del(loop->broker);
  if (loop->sig.fd >= 0) {
    close(loop->sig.fd);
  }
  if (loop->epfd >= 0) {
    close(loop->epfd);
  }
  if (loop->spare_fd >= 0) {
    close(loop->spare_fd);
  }
  free(loop);
}

void mqttb_cli_loop_set_reload(struct mqttb_cli_loop *loop, int (*reload)(void *arg), void *arg) {
  loop->reload = reload;
  loop->reload_arg = arg;
}

mqttb_broker *mqttb_cli_loop_broker(struct mqttb_cli_loop *loop) {
  return loop->broker;
}
