/*
 * stdio_broker: one MQTT connection on standard input and output.
 *
 *   stdio_broker
 *
 * The bytes the client sends arrive on fd 0 and the broker's answers leave
 * on fd 1, so any program that can connect a stream to a process is a
 * transport. Behind socat, every TCP connection gets its own broker process:
 *
 *   socat TCP-LISTEN:1883,fork,reuseaddr EXEC:./stdio_broker
 *
 * Each process serves exactly one client and exits when that connection
 * ends (DISCONNECT, end of input, a protocol error, SIGINT/SIGTERM), with
 * status 0; 1 means it could not start. Such a broker has no other network
 * clients, so messages only go from the client to itself, and sessions and
 * retained messages end with the process; the application could still take
 * part through the host API (mqttb_broker_publish, mqttb_broker_subscribe).
 *
 * Pitfalls:
 * - stdout carries MQTT: nothing else may be written to it. Logs go to
 *   stderr (socat passes it through).
 * - fds 0 and 1 are not made non-blocking: O_NONBLOCK is a property of the
 *   open file, which this process may share with its parent (a terminal, a
 *   shell's pipe), and it would stay set after exit. poll() says when they
 *   are ready instead; a write after POLLOUT may still wait for the reader,
 *   which is fine with one client: there is nobody else to serve meanwhile.
 * - A reader that has gone makes write() raise SIGPIPE: it is ignored, and
 *   EPIPE ends the connection.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L /* POSIX.1-2008, also with -std=c11 */
#include <mqttb/mqttb.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

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
  fprintf(stderr, "stdio_broker[%ld]: %s\n", (long)getpid(), msg);
}

/* Only remembers why: the main loop sees mqttb_conn_is_closing(). */
static void on_close(mqttb_conn *conn, int reason, void *user_data) {
  (void)conn;
  *(int *)user_data = reason;
}

static uint64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Write pending output to fd 1 once. -1 when the reader is gone. */
static int flush(mqttb_conn *conn, uint64_t now) {
  mqttb_iovec iov[16];
  int n = mqttb_conn_output(conn, iov, 16);
  if (n <= 0)
    return 0;
  ssize_t w = writev(STDOUT_FILENO, (const struct iovec *)iov, n);
  if (w < 0)
    return errno == EINTR || errno == EAGAIN ? 0 : -1;
  mqttb_conn_output_ack(conn, (size_t)w, now); /* maybe fewer bytes than offered */
  return 0;
}

int main(void) {
  int reason = MQTTB_OK;
  if (pipe(wake_pipe) != 0) {
    perror("stdio_broker: pipe");
    return 1;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  mqttb_callbacks cb = {.log = on_log, .on_close = on_close};
  mqttb_broker *broker;
  mqttb_conn *conn;
  int rc = mqttb_broker_new(&broker, NULL, &cb, NULL, &reason);
  if (rc == MQTTB_OK && (rc = mqttb_conn_new(&conn, broker, now_ms(), NULL)) != MQTTB_OK)
    mqttb_broker_del(broker);
  if (rc != MQTTB_OK) {
    fprintf(stderr, "stdio_broker: %s\n", mqttb_strerror(rc));
    return 1;
  }

  struct pollfd pfd[3] = {
      {.fd = wake_pipe[0], .events = POLLIN}, {.fd = STDIN_FILENO}, {.fd = STDOUT_FILENO}};
  int gone = 0; /* the reader of fd 1 is gone: nothing more can be written */
  while (!gone && !(pfd[0].revents & POLLIN)) {
    int closing = mqttb_conn_is_closing(conn);
    size_t held = mqttb_conn_input_pending(conn);
    size_t pending = mqttb_conn_output_pending(conn);
    if (closing && pending == 0)
      break; /* the connection is over and everything is written */
    /* No more input once closing, nor while the library holds some back. */
    pfd[1].fd = closing ? -1 : STDIN_FILENO; /* poll() skips it: a hang-up would spin */
    pfd[1].events = held ? 0 : POLLIN;
    pfd[2].events = pending ? POLLOUT : 0;
    int timeout = held ? 0 : mqttb_broker_timeout(broker, now_ms());
    if (poll(pfd, 3, timeout) < 0 && errno != EINTR) {
      perror("stdio_broker: poll");
      break;
    }
    uint64_t now = now_ms();
    mqttb_broker_handle_timers(broker, now); /* keep-alive and connect timeout */
    if (!closing && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      uint8_t buf[16384];
      ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
      if (r > 0)
        mqttb_conn_recv(conn, buf, (size_t)r, now); /* < 0: closing now */
      else if (r == 0 || (errno != EINTR && errno != EAGAIN))
        mqttb_conn_transport_closed(conn, now); /* end of input: publishes the will */
    } else if (held) {
      mqttb_conn_recv(conn, NULL, 0, now);
    }
    if (pfd[2].revents & POLLOUT)
      gone = flush(conn, now) < 0;
    else if (pfd[2].revents & (POLLERR | POLLHUP))
      gone = 1;
  }

  uint64_t now = now_ms();
  if (gone) {
    mqttb_conn_transport_closed(conn, now); /* publishes the will, if still open */
  } else {
    /* The documented shutdown: close the connection if it is still open (a
     * signal; an MQTT 5 client gets DISCONNECT 0x8B), write what is
     * pending, then delete the connection and the broker. */
    mqttb_broker_shutdown(broker, now);
    flush(conn, now);
  }
  fprintf(stderr, "stdio_broker[%ld]: connection ended: %s\n", (long)getpid(),
          mqttb_strerror(reason));
  mqttb_conn_del(conn, now);
  mqttb_broker_del(broker);
  close(wake_pipe[0]);
  close(wake_pipe[1]);
  return 0;
}
