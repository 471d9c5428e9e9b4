/*
 * two_brokers: two brokers in one process, joined by the host API.
 *
 *   two_brokers [PORT_A [PORT_B]] [--both]
 *
 * Broker A listens on 127.0.0.1:PORT_A (default 1883), broker B on
 * 127.0.0.1:PORT_B (default 1884); 0 picks a free port (both are printed).
 * Everything published on A under site/# is published again on B: same
 * topic, payload, QoS and retain flag, and the MQTT 5 properties (payload
 * format, message expiry left, content type, response topic, correlation
 * data, user properties). Nothing goes from B to A, unless --both is given,
 * which forwards site/# from B to A as well. Think of A as a site's broker
 * and B as the one the outside world reads from.
 *
 * The bridge is a host subscription on A whose callback calls
 * mqttb_broker_publish() on B. The brokers share nothing; one thread runs
 * both, in one poll() loop, and each connection belongs to one of them.
 *
 * The subscription options:
 * - MQTTB_SUBOPT_QOS2: the callback gets each message at the QoS it was
 *   published with (a subscription caps the QoS it delivers).
 * - MQTTB_SUBOPT_RETAIN_AS_PUBLISHED: the callback sees the retain flag as
 *   the publisher set it, so retained messages are retained on B too (and
 *   an empty retained message clears B's). Without it the flag would be 0
 *   for every message routed live.
 * - MQTTB_SUBOPT_NO_LOCAL: no loops. A message forwarded into a broker is
 *   published there by the application, and a host subscription with No
 *   Local does not receive what the application publishes. One way only
 *   (the default) there is no path back from B anyway; with --both the
 *   bridge B -> A would otherwise return each message to A, then to B
 *   again, and so on (until the library's MQTTB_HOST_MAX_DEPTH stops it).
 *   With No Local on both subscriptions each message crosses once.
 *
 * SIGINT or SIGTERM shuts both brokers down in the documented order.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L /* POSIX.1-2008, also with -std=c11 */
#include <mqttb/mqttb.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define FIRST_CLIENT 3 /* pfd[0]: self-pipe, pfd[1]: listener A, pfd[2]: listener B */
#define BRIDGE_OPTIONS                                                                             \
  (MQTTB_SUBOPT_QOS2 | MQTTB_SUBOPT_RETAIN_AS_PUBLISHED | MQTTB_SUBOPT_NO_LOCAL)

struct bridge {
  const char *name; /* "A -> B" */
  mqttb_broker *to;
  const uint64_t *now;
};

struct server {
  mqttb_broker *broker[2]; /* A and B */
  struct pollfd pfd[FIRST_CLIENT + MAX_CLIENTS];
  mqttb_conn *conn[FIRST_CLIENT + MAX_CLIENTS];
  int n;     /* entries in use in pfd and conn */
  int again; /* work is left: poll without sleeping */
  uint64_t now;
};

static int wake_pipe[2];

static void on_signal(int sig) {
  char c = (char)sig;
  ssize_t r = write(wake_pipe[1], &c, 1);
  (void)r;
}

/* user_data is the broker's name. */
static void on_log(mqttb_broker *b, mqttb_log_level level, const char *msg, void *user_data) {
  (void)b;
  (void)level;
  fprintf(stderr, "two_brokers: %s: %s\n", (const char *)user_data, msg);
}

static uint64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* The bridge: a host subscriber of one broker publishing into the other.
 * The delivered view is a valid message to publish as it is: the library
 * copies everything before this returns. */
static void forward(mqttb_broker *from, const mqttb_message *msg, void *user_data) {
  (void)from;
  const struct bridge *br = user_data;
  int rc = mqttb_broker_publish(br->to, msg, *br->now);
  if (rc < 0)
    fprintf(stderr, "two_brokers: %s: %.*s not forwarded: %s\n", br->name, (int)msg->topic_len,
            msg->topic, mqttb_strerror(rc));
}

/* ---- the TCP transport (as in unix_socket.c, with two listeners) ---- */

static int listen_on(uint16_t *port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(*port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0 ||
      fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    perror("two_brokers: listen");
    if (fd >= 0)
      close(fd);
    return -1;
  }
  *port = ntohs(sa.sin_port);
  return fd;
}

/* A client of broker 0 (A) or 1 (B), by the listener it came through. */
static void accept_client(struct server *s, int which) {
  int fd = accept(s->pfd[1 + which].fd, NULL, NULL);
  if (fd < 0)
    return;
  if (s->n == FIRST_CLIENT + MAX_CLIENTS || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
    close(fd);
    return;
  }
  int rc = mqttb_conn_new(&s->conn[s->n], s->broker[which], s->now, NULL);
  if (rc != MQTTB_OK) {
    fprintf(stderr, "two_brokers: refusing a client: %s\n", mqttb_strerror(rc));
    close(fd);
    return;
  }
  s->pfd[s->n++] = (struct pollfd){.fd = fd, .events = POLLIN};
}

static void read_client(struct server *s, int i) {
  uint8_t buf[16384];
  mqttb_conn *c = s->conn[i];
  if ((s->pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) && !mqttb_conn_is_closing(c)) {
    ssize_t r = read(s->pfd[i].fd, buf, sizeof buf);
    if (r > 0)
      mqttb_conn_recv(c, buf, (size_t)r, s->now); /* < 0: closing, as on_close says */
    else if (r == 0 || (errno != EAGAIN && errno != EINTR))
      mqttb_conn_transport_closed(c, s->now); /* publishes the will */
  } else if (mqttb_conn_input_pending(c) > 0) {
    mqttb_conn_recv(c, NULL, 0, s->now);
  }
  if (mqttb_conn_input_pending(c) > 0)
    s->again = 1;
}

/* 1 when the client is finished: peer gone, or closing and all written. */
static int flush_client(struct server *s, int i) {
  mqttb_conn *c = s->conn[i];
  mqttb_iovec iov[16];
  int n;
  while ((n = mqttb_conn_output(c, iov, 16)) > 0) {
    ssize_t w = writev(s->pfd[i].fd, (const struct iovec *)iov, n);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return 1;
    if (w < 0)
      break;
    mqttb_conn_output_ack(c, (size_t)w, s->now);
  }
  int closing = mqttb_conn_is_closing(c), pending = mqttb_conn_output_pending(c) > 0;
  if (closing && !pending)
    return 1;
  /* Closing (on_close was called): no more input, only the rest of the output. Input
   * held back by the work budget: none either until the library has taken it (the
   * loop polls without sleeping meanwhile). */
  int held = mqttb_conn_input_pending(c) > 0;
  s->pfd[i].events = (short)((closing || held ? 0 : POLLIN) | (pending ? POLLOUT : 0));
  return 0;
}

static void drop_client(struct server *s, int i) {
  close(s->pfd[i].fd);
  mqttb_conn_del(s->conn[i], s->now);
  s->n--;
  s->pfd[i] = s->pfd[s->n];
  s->conn[i] = s->conn[s->n];
  s->again = 1; /* a will may have made output for others, on either broker */
}

int main(int argc, char **argv) {
  static struct server s;
  static const char *names[2] = {"A", "B"};
  uint16_t port[2] = {1883, 1884};
  int both = 0, nports = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--both") == 0) {
      both = 1;
    } else if (nports < 2) {
      port[nports++] = (uint16_t)atoi(argv[i]);
    } else {
      fprintf(stderr, "usage: %s [PORT_A [PORT_B]] [--both]\n", argv[0]);
      return 2;
    }
  }
  if (pipe(wake_pipe) != 0) {
    perror("two_brokers: pipe");
    return 1;
  }
  s.pfd[0] = (struct pollfd){.fd = wake_pipe[0], .events = POLLIN};
  s.pfd[1].fd = s.pfd[2].fd = -1;
  s.n = FIRST_CLIENT;
  s.now = now_ms();
  mqttb_callbacks cb = {.log = on_log};
  struct bridge a_to_b = {"A -> B", NULL, &s.now}, b_to_a = {"B -> A", NULL, &s.now};
  int rc = MQTTB_OK;
  for (int k = 0; k < 2 && rc == MQTTB_OK; k++) {
    s.pfd[1 + k] = (struct pollfd){.fd = listen_on(&port[k]), .events = POLLIN};
    if (s.pfd[1 + k].fd < 0) {
      rc = MQTTB_ERR_INVALID_ARGUMENT; /* listen_on said why */
      goto fail;
    }
    rc = mqttb_broker_new(&s.broker[k], NULL, &cb, NULL, (void *)names[k]);
  }
  a_to_b.to = s.broker[1];
  b_to_a.to = s.broker[0];
  /* The bridges. Subscribing delivers the matching retained messages at
   * once (none yet here): a bridge made later first copies what A holds. */
  if (rc == MQTTB_OK)
    rc = mqttb_broker_subscribe(s.broker[0], "site/#", BRIDGE_OPTIONS, forward, &a_to_b, s.now);
  if (rc == MQTTB_OK && both)
    rc = mqttb_broker_subscribe(s.broker[1], "site/#", BRIDGE_OPTIONS, forward, &b_to_a, s.now);
  if (rc != MQTTB_OK) {
    fprintf(stderr, "two_brokers: %s\n", mqttb_strerror(rc));
    goto fail;
  }

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  for (int k = 0; k < 2; k++)
    fprintf(stderr, "two_brokers: broker %s listening on 127.0.0.1:%u\n", names[k], port[k]);
  fprintf(stderr, "two_brokers: forwarding site/# from A to B%s\n", both ? " and from B to A" : "");

  while (!(s.pfd[0].revents & POLLIN)) {
    uint64_t now = now_ms();
    /* One deadline: the earlier of the two brokers'. */
    int ta = mqttb_broker_timeout(s.broker[0], now), tb = mqttb_broker_timeout(s.broker[1], now);
    int timeout = ta < 0 ? tb : tb < 0 ? ta : ta < tb ? ta : tb;
    if (poll(s.pfd, (nfds_t)s.n, s.again ? 0 : timeout) < 0 && errno != EINTR) {
      perror("two_brokers: poll");
      break;
    }
    s.now = now_ms();
    s.again = 0;
    for (int k = 0; k < 2; k++) {
      mqttb_broker_handle_timers(s.broker[k], s.now);
      if (s.pfd[1 + k].revents & POLLIN)
        accept_client(&s, k);
    }
    for (int i = FIRST_CLIENT; i < s.n; i++)
      read_client(&s, i);
    /* A message read on A makes output for clients of A and of B. */
    for (int i = FIRST_CLIENT; i < s.n; i++)
      if (flush_client(&s, i))
        drop_client(&s, i--);
  }

  /* Shutting down: the bridges first, so that the wills the shutdown
   * publishes stay where they are; then each broker closes its
   * connections, what each socket takes is written, connections are
   * deleted, and the brokers last. */
  fprintf(stderr, "two_brokers: shutting down\n");
  s.now = now_ms();
  if (mqttb_broker_unsubscribe(s.broker[0], "site/#", forward, &a_to_b, s.now) != MQTTB_OK ||
      (both &&
       mqttb_broker_unsubscribe(s.broker[1], "site/#", forward, &b_to_a, s.now) != MQTTB_OK))
    fprintf(stderr, "two_brokers: a bridge was not subscribed\n");
  for (int k = 0; k < 2; k++)
    mqttb_broker_shutdown(s.broker[k], s.now);
  for (int i = FIRST_CLIENT; i < s.n; i++) {
    flush_client(&s, i);
    close(s.pfd[i].fd);
    mqttb_conn_del(s.conn[i], s.now);
  }
  rc = MQTTB_OK;
fail:
  for (int k = 0; k < 2; k++) {
    mqttb_broker_del(s.broker[k]); /* NULL is fine */
    if (s.pfd[1 + k].fd >= 0)
      close(s.pfd[1 + k].fd);
  }
  close(wake_pipe[0]);
  close(wake_pipe[1]);
  return rc == MQTTB_OK ? 0 : 1;
}
