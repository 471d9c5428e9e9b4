/*
 * host_app: an application with a broker inside, taking part as a client.
 *
 *   host_app [PORT [INTERVAL_MS]]
 *
 * A TCP broker on 127.0.0.1:PORT (default 1883; 0 picks a free port, which
 * is printed) that
 *
 * - publishes its own readings every INTERVAL_MS (default 1000), retained,
 *   so a client that subscribes later gets the latest at once:
 *   readings/counter (readings so far), readings/uptime (seconds),
 *   readings/clients (clients connected), and readings/interval (the
 *   period in milliseconds, on start and on every change);
 *
 * - acts on commands published by any client, through a host subscription
 *   to commands/#:
 *   commands/interval  payload: a period in ms (10 to 3600000); applies now;
 *   commands/echo      replies with the same payload to the MQTT 5 Response
 *                      Topic, with the request's Correlation Data (an MQTT 5
 *                      request/response: mosquitto_rr, or paho in MQTTv5).
 *
 * Try it:
 *   mosquitto_sub -p 1883 -t 'readings/#' -v
 *   mosquitto_pub -p 1883 -t commands/interval -m 200
 *   mosquitto_rr -p 1883 -t commands/echo -e replies/me -m hello
 *
 * The application's deadline (the next reading) and the broker's (the next
 * timer) are merged into one poll() timeout. SIGINT or SIGTERM shuts it down
 * in the documented order.
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
#define FIRST_CLIENT 2 /* pfd[0]: self-pipe, pfd[1]: listener */

struct app {
  mqttb_broker *broker;
  struct pollfd pfd[FIRST_CLIENT + MAX_CLIENTS];
  mqttb_conn *conn[FIRST_CLIENT + MAX_CLIENTS];
  int n;                 /* entries in use in pfd and conn */
  int again;             /* work is left: poll without sleeping */
  uint64_t now;          /* the time of the current loop iteration */
  uint64_t started;      /* when the application started */
  uint64_t interval;     /* milliseconds between readings */
  uint64_t next_reading; /* when the next readings are due */
  unsigned long readings;
};

static int wake_pipe[2];

static void on_signal(int sig) {
  char c = (char)sig;
  ssize_t r = write(wake_pipe[1], &c, 1);
  (void)r;
}

static void on_log(mqttb_broker *b, mqttb_log_level level, const char *msg, void *user_data) {
  (void)b;
  (void)level;
  (void)user_data;
  fprintf(stderr, "host_app: %s\n", msg);
}

static uint64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* ---- the application as a client ---- */

/* Publish a UTF-8 text as a retained reading. */
static void publish_reading(struct app *a, const char *topic, const char *text) {
  mqttb_message m;
  memset(&m, 0, sizeof m); /* every property absent */
  m.topic = topic;         /* NUL-terminated: topic_len 0 */
  m.payload = text;
  m.payload_len = strlen(text);
  m.qos = 0;
  m.retain = 1;
  m.payload_format = 1; /* MQTT 5 subscribers learn that it is text */
  int rc = mqttb_broker_publish(a->broker, &m, a->now);
  if (rc < 0)
    fprintf(stderr, "host_app: publishing %s: %s\n", topic, mqttb_strerror(rc));
}

static void publish_interval(struct app *a) {
  char text[32];
  snprintf(text, sizeof text, "%llu", (unsigned long long)a->interval);
  publish_reading(a, "readings/interval", text);
}

static void publish_readings(struct app *a) {
  char text[64];
  mqttb_stats st;
  a->readings++;
  snprintf(text, sizeof text, "%lu", a->readings);
  publish_reading(a, "readings/counter", text);
  snprintf(text, sizeof text, "%.3f", (double)(a->now - a->started) / 1000.0);
  publish_reading(a, "readings/uptime", text);
  if (mqttb_broker_get_stats(a->broker, &st) == MQTTB_OK) {
    snprintf(text, sizeof text, "%llu", (unsigned long long)st.clients_connected);
    publish_reading(a, "readings/clients", text);
  }
}

static int topic_is(const mqttb_message *msg, const char *name) {
  return msg->topic_len == strlen(name) && memcmp(msg->topic, name, msg->topic_len) == 0;
}

/* The host subscriber of commands/#. It runs when the library call that
 * routed the command is about to return; it may publish (host calls), but
 * must not create or delete connections. Everything in msg is borrowed. */
static void on_command(mqttb_broker *broker, const mqttb_message *msg, void *user_data) {
  struct app *a = user_data;
  if (topic_is(msg, "commands/interval")) {
    char text[16];
    size_t len = msg->payload_len < sizeof text - 1 ? msg->payload_len : sizeof text - 1;
    memcpy(text, msg->payload, len); /* the payload is not NUL-terminated */
    text[len] = '\0';
    char *end;
    unsigned long ms = strtoul(text, &end, 10);
    if (len == 0 || *end != '\0' || len != msg->payload_len || ms < 10 || ms > 3600000) {
      fprintf(stderr, "host_app: commands/interval: not a period in ms: '%.*s'\n",
              (int)msg->payload_len, (const char *)msg->payload);
      return;
    }
    a->interval = ms;
    a->next_reading = a->now + ms; /* the main loop's next timeout follows */
    fprintf(stderr, "host_app: readings every %lu ms\n", ms);
    publish_interval(a);
  } else if (topic_is(msg, "commands/echo")) {
    if (msg->response_topic == NULL) {
      fprintf(stderr, "host_app: commands/echo without a response topic (MQTT 5 only)\n");
      return;
    }
    mqttb_message reply;
    memset(&reply, 0, sizeof reply);
    reply.topic = msg->response_topic;
    reply.topic_len = msg->response_topic_len;
    reply.payload = msg->payload;
    reply.payload_len = msg->payload_len;
    reply.qos = msg->qos;
    reply.correlation_data = msg->correlation_data; /* copied by the publish */
    reply.correlation_data_len = msg->correlation_data_len;
    int rc = mqttb_broker_publish(broker, &reply, a->now);
    if (rc < 0)
      fprintf(stderr, "host_app: echo reply: %s\n", mqttb_strerror(rc));
  } else {
    fprintf(stderr, "host_app: unknown command %.*s\n", (int)msg->topic_len, msg->topic);
  }
}

/* ---- the TCP transport (as in unix_socket.c) ---- */

static int listen_on(uint16_t *port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(*port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0 ||
      fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    perror("host_app: listen");
    if (fd >= 0)
      close(fd);
    return -1;
  }
  *port = ntohs(sa.sin_port);
  return fd;
}

static void accept_client(struct app *a) {
  int fd = accept(a->pfd[1].fd, NULL, NULL);
  if (fd < 0)
    return;
  if (a->n == FIRST_CLIENT + MAX_CLIENTS || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
    close(fd);
    return;
  }
  int rc = mqttb_conn_new(&a->conn[a->n], a->broker, a->now, NULL);
  if (rc != MQTTB_OK) {
    fprintf(stderr, "host_app: refusing a client: %s\n", mqttb_strerror(rc));
    close(fd);
    return;
  }
  a->pfd[a->n++] = (struct pollfd){.fd = fd, .events = POLLIN};
}

static void read_client(struct app *a, int i) {
  uint8_t buf[16384];
  mqttb_conn *c = a->conn[i];
  if ((a->pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) && !mqttb_conn_is_closing(c)) {
    ssize_t r = read(a->pfd[i].fd, buf, sizeof buf);
    if (r > 0)
      mqttb_conn_recv(c, buf, (size_t)r, a->now); /* < 0: closing, as on_close says */
    else if (r == 0 || (errno != EAGAIN && errno != EINTR))
      mqttb_conn_transport_closed(c, a->now); /* publishes the will */
  } else if (mqttb_conn_input_pending(c) > 0) {
    mqttb_conn_recv(c, NULL, 0, a->now);
  }
  if (mqttb_conn_input_pending(c) > 0)
    a->again = 1;
}

/* 1 when the client is finished: peer gone, or closing and all written. */
static int flush_client(struct app *a, int i) {
  mqttb_conn *c = a->conn[i];
  mqttb_iovec iov[16];
  int n;
  while ((n = mqttb_conn_output(c, iov, 16)) > 0) {
    ssize_t w = writev(a->pfd[i].fd, (const struct iovec *)iov, n);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return 1;
    if (w < 0)
      break;
    mqttb_conn_output_ack(c, (size_t)w, a->now);
  }
  int closing = mqttb_conn_is_closing(c), pending = mqttb_conn_output_pending(c) > 0;
  if (closing && !pending)
    return 1;
  /* Closing (on_close was called): no more input, only the rest of the output. Input
   * held back by the work budget: none either until the library has taken it (the
   * loop polls without sleeping meanwhile). */
  int held = mqttb_conn_input_pending(c) > 0;
  a->pfd[i].events = (short)((closing || held ? 0 : POLLIN) | (pending ? POLLOUT : 0));
  return 0;
}

static void drop_client(struct app *a, int i) {
  close(a->pfd[i].fd);
  mqttb_conn_del(a->conn[i], a->now);
  a->n--;
  a->pfd[i] = a->pfd[a->n];
  a->conn[i] = a->conn[a->n];
  a->again = 1; /* a will may have made output for others */
}

int main(int argc, char **argv) {
  static struct app a;
  uint16_t port = (uint16_t)(argc > 1 ? atoi(argv[1]) : 1883);
  long interval = argc > 2 ? atol(argv[2]) : 1000;
  if (argc > 3 || interval < 10 || interval > 3600000) {
    fprintf(stderr, "usage: %s [PORT [INTERVAL_MS (10 to 3600000)]]\n", argv[0]);
    return 2;
  }
  a.interval = (uint64_t)interval;
  if (pipe(wake_pipe) != 0) {
    perror("host_app: pipe");
    return 1;
  }
  int lfd = listen_on(&port);
  if (lfd < 0)
    return 1;
  mqttb_callbacks cb = {.log = on_log};
  int rc = mqttb_broker_new(&a.broker, NULL, &cb, NULL, &a);
  if (rc != MQTTB_OK) {
    fprintf(stderr, "host_app: %s\n", mqttb_strerror(rc));
    close(lfd);
    return 1;
  }
  a.now = a.started = now_ms();
  /* No Local: not what the application publishes itself (an echo whose response topic lies
   * under commands/ would come back as a command). */
  rc = mqttb_broker_subscribe(a.broker, "commands/#", MQTTB_SUBOPT_QOS1 | MQTTB_SUBOPT_NO_LOCAL,
                              on_command, &a, a.now);
  if (rc != MQTTB_OK) {
    fprintf(stderr, "host_app: subscribing to commands/#: %s\n", mqttb_strerror(rc));
    mqttb_broker_del(a.broker);
    close(lfd);
    return 1;
  }
  publish_interval(&a);
  publish_readings(&a);
  a.next_reading = a.now + a.interval;

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  a.pfd[0] = (struct pollfd){.fd = wake_pipe[0], .events = POLLIN};
  a.pfd[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
  a.n = FIRST_CLIENT;
  fprintf(stderr, "host_app: listening on 127.0.0.1:%u, readings every %llu ms\n", port,
          (unsigned long long)a.interval);

  while (!(a.pfd[0].revents & POLLIN)) {
    /* Sleep until the earlier of the broker's deadline and the next reading. */
    uint64_t now = now_ms();
    int timeout = mqttb_broker_timeout(a.broker, now);
    uint64_t until_reading = a.next_reading > now ? a.next_reading - now : 0;
    if (timeout < 0 || (uint64_t)timeout > until_reading)
      timeout = (int)until_reading;
    if (poll(a.pfd, (nfds_t)a.n, a.again ? 0 : timeout) < 0 && errno != EINTR) {
      perror("host_app: poll");
      break;
    }
    a.now = now_ms();
    a.again = 0;
    mqttb_broker_handle_timers(a.broker, a.now);
    if (a.now >= a.next_reading) {
      publish_readings(&a);
      a.next_reading += a.interval;
      if (a.next_reading <= a.now) /* fell behind (a suspended process): no burst */
        a.next_reading = a.now + a.interval;
    }
    if (a.pfd[1].revents & POLLIN)
      accept_client(&a);
    for (int i = FIRST_CLIENT; i < a.n; i++)
      read_client(&a, i); /* commands reach on_command from in here */
    for (int i = FIRST_CLIENT; i < a.n; i++)
      if (flush_client(&a, i))
        drop_client(&a, i--);
  }

  /* Shutting down. The host subscription goes first, so that the wills the
   * shutdown publishes cannot trigger commands; then the broker closes every
   * connection, what each socket takes is written, connections are deleted,
   * and the broker last. */
  fprintf(stderr, "host_app: shutting down\n");
  a.now = now_ms();
  rc = mqttb_broker_unsubscribe(a.broker, "commands/#", on_command, &a, a.now);
  if (rc != MQTTB_OK)
    fprintf(stderr, "host_app: unsubscribing: %s\n", mqttb_strerror(rc));
  mqttb_broker_shutdown(a.broker, a.now);
  for (int i = FIRST_CLIENT; i < a.n; i++) {
    flush_client(&a, i);
    close(a.pfd[i].fd);
    mqttb_conn_del(a.conn[i], a.now);
  }
  mqttb_broker_del(a.broker);
  close(lfd);
  close(wake_pipe[0]);
  close(wake_pipe[1]);
  return 0;
}
