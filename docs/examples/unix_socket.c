/*
 * unix_socket: an MQTT broker on a Unix-domain stream socket.
 *
 *   unix_socket PATH [MODE]
 *
 * Clients on the same host connect with `mosquitto_sub --unix PATH ...` (or
 * any client that takes a socket path). No port, no network exposure: who
 * may connect is decided by the file system. On Linux, connect(2) needs write
 * permission on the socket file, so MODE (octal, default 0600: only this
 * user) is the access control. The socket is created with that mode already
 * (through the umask), so there is no moment at which it is more open.
 *
 * A socket file outlives the process that bound it: bind(2) fails with
 * EADDRINUSE on a file left by a crash. At start a file at PATH is removed
 * if it is a socket nobody listens on (connect(2) is refused); a socket that
 * answers means another broker runs there, and anything that is not a socket
 * is left alone. At exit the file is removed.
 *
 * The loop is the one of tcp_poll.c, written out with a function per step.
 * SIGINT or SIGTERM shuts it down.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L /* POSIX.1-2008, also with -std=c11 */
#include <mqttb/mqttb.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define FIRST_CLIENT 2 /* pfd[0]: self-pipe, pfd[1]: listener */

static int wake_pipe[2];

/* A signal only writes to the pipe; poll() sees it even if it came just
 * before the call. */
static void on_signal(int sig) {
  char c = (char)sig;
  ssize_t r = write(wake_pipe[1], &c, 1);
  (void)r;
}

static void on_log(mqttb_broker *b, mqttb_log_level level, const char *msg, void *user_data) {
  (void)b;
  (void)level;
  (void)user_data;
  fprintf(stderr, "unix_socket: %s\n", msg);
}

static uint64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

struct server {
  mqttb_broker *broker;
  struct pollfd pfd[FIRST_CLIENT + MAX_CLIENTS];
  mqttb_conn *conn[FIRST_CLIENT + MAX_CLIENTS];
  int n;     /* entries in use in pfd and conn */
  int again; /* work is left: poll without sleeping */
};

/* Remove a socket file nobody listens on. 0 when PATH is free now. */
static int remove_stale(const char *path, const struct sockaddr_un *addr) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT ? 0 : -1;
  if (!S_ISSOCK(st.st_mode)) {
    fprintf(stderr, "unix_socket: %s exists and is not a socket; not touching it\n", path);
    return -1;
  }
  /* Two brokers starting at the same moment could both find it stale; a
   * lock file (flock on PATH.lock) would settle that. */
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) {
    perror("unix_socket: socket");
    return -1;
  }
  int rc = connect(fd, (const struct sockaddr *)addr, sizeof *addr);
  int err = errno;
  close(fd);
  if (rc == 0) {
    fprintf(stderr, "unix_socket: a server is listening on %s already\n", path);
    return -1;
  }
  if (err != ECONNREFUSED) {
    fprintf(stderr, "unix_socket: %s: %s\n", path, strerror(err));
    return -1;
  }
  fprintf(stderr, "unix_socket: removing the stale socket %s\n", path);
  if (unlink(path) != 0) {
    perror("unix_socket: unlink");
    return -1;
  }
  return 0;
}

static int listen_on(const char *path, mode_t mode) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    fprintf(stderr, "unix_socket: path too long (at most %zu bytes)\n", sizeof addr.sun_path - 1);
    return -1;
  }
  memcpy(addr.sun_path, path, strlen(path) + 1);
  if (remove_stale(path, &addr) != 0)
    return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) {
    perror("unix_socket: socket");
    return -1;
  }
  /* bind() creates the file with 0777 minus the umask: make that MODE. */
  mode_t old = umask((mode_t)(~mode & 0777));
  int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
  umask(old);
  if (rc != 0 || listen(fd, 16) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
    perror("unix_socket: listen");
    close(fd);
    if (rc == 0)
      unlink(path);
    return -1;
  }
  return fd;
}

static void accept_client(struct server *s, uint64_t now) {
  int fd = accept(s->pfd[1].fd, NULL, NULL);
  if (fd < 0)
    return;
  if (s->n == FIRST_CLIENT + MAX_CLIENTS || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
    close(fd);
    return;
  }
  int rc = mqttb_conn_new(&s->conn[s->n], s->broker, now, NULL);
  if (rc != MQTTB_OK) {
    fprintf(stderr, "unix_socket: refusing a client: %s\n", mqttb_strerror(rc));
    close(fd);
    return;
  }
  s->pfd[s->n++] = (struct pollfd){.fd = fd, .events = POLLIN};
}

/* Read what is there and feed it (or go on with input the library held
 * back after its work budget). */
static void read_client(struct server *s, int i, uint64_t now) {
  uint8_t buf[16384];
  mqttb_conn *c = s->conn[i];
  if ((s->pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) && !mqttb_conn_is_closing(c)) {
    ssize_t r = read(s->pfd[i].fd, buf, sizeof buf);
    if (r > 0) {
      /* A negative result means the broker closed the connection: on_close
       * ran and mqttb_conn_is_closing() is 1; the flush step finishes it. */
      mqttb_conn_recv(c, buf, (size_t)r, now);
    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
      mqttb_conn_transport_closed(c, now); /* publishes the will */
    }
  } else if (mqttb_conn_input_pending(c) > 0) {
    mqttb_conn_recv(c, NULL, 0, now);
  }
  if (mqttb_conn_input_pending(c) > 0)
    s->again = 1;
}

/* Write what the socket takes. Returns 1 when the client is finished: the
 * peer is gone, or the connection is closing and everything is written. */
static int flush_client(struct server *s, int i, uint64_t now) {
  mqttb_conn *c = s->conn[i];
  mqttb_iovec iov[16];
  int n;
  while ((n = mqttb_conn_output(c, iov, 16)) > 0) {
    ssize_t w = writev(s->pfd[i].fd, (const struct iovec *)iov, n);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return 1;
    if (w < 0)
      break;                                  /* the socket is full: wait for POLLOUT */
    mqttb_conn_output_ack(c, (size_t)w, now); /* a short write leaves the rest pending */
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

static void drop_client(struct server *s, int i, uint64_t now) {
  close(s->pfd[i].fd);
  mqttb_conn_del(s->conn[i], now); /* an open connection: counts as transport loss */
  s->n--;
  s->pfd[i] = s->pfd[s->n];
  s->conn[i] = s->conn[s->n];
  s->again = 1; /* a will may have made output for others */
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s PATH [MODE]\n", argv[0]);
    return 2;
  }
  const char *path = argv[1];
  mode_t mode = argc > 2 ? (mode_t)strtoul(argv[2], NULL, 8) : 0600;

  static struct server s;
  if (pipe(wake_pipe) != 0) {
    perror("unix_socket: pipe");
    return 1;
  }
  int lfd = listen_on(path, mode);
  if (lfd < 0)
    return 1;
  mqttb_callbacks cb = {.log = on_log};
  int rc = mqttb_broker_new(&s.broker, NULL, &cb, NULL, NULL);
  if (rc != MQTTB_OK) {
    fprintf(stderr, "unix_socket: %s\n", mqttb_strerror(rc));
    close(lfd);
    unlink(path);
    return 1;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN); /* a client gone mid-write gives EPIPE */
  s.pfd[0] = (struct pollfd){.fd = wake_pipe[0], .events = POLLIN};
  s.pfd[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
  s.n = FIRST_CLIENT;
  fprintf(stderr, "unix_socket: listening on %s (mode %04o)\n", path, (unsigned)mode);

  while (!(s.pfd[0].revents & POLLIN)) {
    int timeout = s.again ? 0 : mqttb_broker_timeout(s.broker, now_ms());
    if (poll(s.pfd, (nfds_t)s.n, timeout) < 0 && errno != EINTR) {
      perror("unix_socket: poll");
      break;
    }
    uint64_t now = now_ms();
    s.again = 0;
    mqttb_broker_handle_timers(s.broker, now);
    if (s.pfd[1].revents & POLLIN)
      accept_client(&s, now);
    for (int i = FIRST_CLIENT; i < s.n; i++)
      read_client(&s, i, now);
    /* After all input: one PUBLISH makes output on many connections. */
    for (int i = FIRST_CLIENT; i < s.n; i++)
      if (flush_client(&s, i, now))
        drop_client(&s, i--, now);
  }

  /* Shutting down: close every connection, write what each socket takes,
   * delete them, then the broker. */
  fprintf(stderr, "unix_socket: shutting down\n");
  uint64_t now = now_ms();
  mqttb_broker_shutdown(s.broker, now);
  for (int i = FIRST_CLIENT; i < s.n; i++) {
    flush_client(&s, i, now);
    close(s.pfd[i].fd);
    mqttb_conn_del(s.conn[i], now);
  }
  mqttb_broker_del(s.broker);
  close(lfd);
  unlink(path);
  close(wake_pipe[0]);
  close(wake_pipe[1]);
  return 0;
}
