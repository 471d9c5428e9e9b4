/*
 * mqttb CLI: the epoll event loop that drives one broker.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_LOOP_H
#define MQTTB_CLI_LOOP_H

#include <stdint.h>

#include <mqttb/mqttb.h>

#include "tls.h"

struct mqttb_cli_loop;
struct mqttb_cli_auth;

/* Where the broker's store records go (persist.h), with two hooks. */
struct mqttb_cli_loop_store {
  /* One store record (the library's store callback). */
  void (*record)(void *arg, uint64_t seq, const uint8_t *rec, size_t len);
  /* Called in every iteration before any connection output is written,
   * and again after reaping before more is: records must be written
   * first. Returns the milliseconds until it wants to run again (-1: no
   * timer of its own). */
  int (*before_output)(void *arg, mqttb_broker *broker, uint64_t now);
  /* Called before each write of connection output: records emitted since
   * before_output (by the library calls that acknowledge output) must be
   * written first. */
  void (*before_write)(void *arg);
  /* At shutdown, once every connection is gone, before the broker is
   * deleted. */
  void (*final)(void *arg, mqttb_broker *broker, uint64_t now);
  void *arg;
};

/*
 * Create the broker and the loop. Blocks SIGINT/SIGTERM/SIGHUP (they are
 * read from a signalfd) and ignores SIGPIPE. @p store (copied; NULL: no
 * persistence) receives the store records. Returns NULL on failure, after
 * printing why.
 */
struct mqttb_cli_loop *mqttb_cli_loop_new(const mqttb_settings *settings,
                                          const struct mqttb_cli_loop_store *store);

/* The loop's clock (milliseconds, monotonic), as the broker is given it. */
uint64_t mqttb_cli_loop_now(void);

/* One listening socket group and how its connections are carried. */
struct mqttb_cli_listen {
  /* NULL: 0.0.0.0 and, when IPv6 is available, ::; "": 127.0.0.1 and ::1;
   * else a name or address (every address it resolves to). */
  const char *host;
  /* 0 picks a free port, shared by all sockets of the group. */
  uint16_t port;
  /* Non-NULL: a Unix domain socket at this path instead (host and port are
   * not used). A socket file left there is replaced; anything else there is
   * an error. The file is removed at exit. */
  const char *unix_path;
  /* 1 or 2: every connection starts with a PROXY protocol header of that
   * version, whose client address stands for the connection's; 0: none. */
  int proxy_protocol;
  /* TLS (NULL: plain), built from the listener's options; must outlive
   * the loop (a reload swaps what is inside it). */
  struct mqttb_cli_tls_ctx *tls;
  /* Version 2 PROXY headers carry the client's TLS certificate name (TLS
   * ended at the proxy): taken as the user name, as
   * use_identity_as_username would take the certificate's. */
  bool proxy_identity;
  /* MQTT over WebSockets (RFC 6455; with tls: wss). */
  bool websockets;
  /* What its clients are checked against (NULL: everyone may do
   * everything); must outlive the loop. */
  struct mqttb_cli_auth *auth;
};

/*
 * Listen as @p spec says. The port actually bound is stored in
 * @p bound_port (0 for a Unix socket). Prints "mqttb: listening on ADDR:PORT"
 * (or "unix:PATH") per socket. Returns 0, or -1 after printing an error.
 */
int mqttb_cli_loop_listen(struct mqttb_cli_loop *loop, const struct mqttb_cli_listen *spec,
                          uint16_t *bound_port);

/* On SIGHUP, call reload(arg) between two loop iterations. */
void mqttb_cli_loop_set_reload(struct mqttb_cli_loop *loop, int (*reload)(void *arg), void *arg);

/* The broker the loop drives. */
mqttb_broker *mqttb_cli_loop_broker(struct mqttb_cli_loop *loop);

/* Serve until SIGINT or SIGTERM. Returns the process exit status. */
int mqttb_cli_loop_run(struct mqttb_cli_loop *loop);

/* Close every connection and listener and destroy the broker. @p loop may be NULL. */
void mqttb_cli_loop_free(struct mqttb_cli_loop *loop);

#endif /* MQTTB_CLI_LOOP_H */
