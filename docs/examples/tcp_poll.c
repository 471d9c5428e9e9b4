/* tcp_poll [PORT=1883]: an MQTT broker on 127.0.0.1 over poll(2). SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L /* clock_gettime() also with -std=c11 */
#include <mqttb/mqttb.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int wake[2]; /* self-pipe: SIGINT/SIGTERM wake poll() even if they come just before it */
static void on_signal(int sig) {
  (void)!write(wake[1], &sig, 1);
}
static void on_log(mqttb_broker *b, mqttb_log_level level, const char *msg, void *user_data) {
  (void)b, (void)level, (void)user_data, fprintf(stderr, "%s\n", msg);
}
static uint64_t now_ms(void) { /* the library reads no clock: any monotonic one will do */
  struct timespec t;
  return clock_gettime(CLOCK_MONOTONIC, &t) ? 0 : (uint64_t)(t.tv_sec * 1000 + t.tv_nsec / 1000000);
}
static int flush(mqttb_conn *c, struct pollfd *p, uint64_t now) { /* 1: done with this client */
  mqttb_iovec iov[16];
  ssize_t w = 0;
  for (int n; w >= 0 && (n = mqttb_conn_output(c, iov, 16)) > 0;)
    if ((w = writev(p->fd, (const struct iovec *)iov, n)) >= 0) /* mqttb_iovec is an iovec */
      mqttb_conn_output_ack(c, (size_t)w, now); /* a short write: the rest waits for POLLOUT */
  /* Closing (on_close): no input. Input held (work budget): go on once writable (POLLOUT). */
  p->events = (short)((mqttb_conn_is_closing(c) || mqttb_conn_input_pending(c) ? 0 : POLLIN) |
                      (mqttb_conn_input_pending(c) || mqttb_conn_output_pending(c) ? POLLOUT : 0));
  return (w < 0 && errno != EAGAIN) || (mqttb_conn_is_closing(c) && !p->events);
}
int main(int argc, char **argv) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  sa.sin_port = htons((uint16_t)atoi(argc > 1 ? argv[1] : "1883"));
  int one = 1, n = 2, lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct pollfd pfd[66] = {{.fd = -1, .events = POLLIN}, {.fd = lfd, .events = POLLIN}};
  mqttb_conn *conns[66]; /* [0]: the self-pipe, [1]: the listener, [2, n): up to 64 clients */
  mqttb_broker *b;
  uint8_t buf[16384];
  if (pipe(wake) || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
      bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 16) ||
      fcntl(lfd, F_SETFL, O_NONBLOCK) || getsockname(lfd, (void *)&sa, &(socklen_t){sizeof sa}) ||
      mqttb_broker_new(&b, NULL, &(mqttb_callbacks){.log = on_log}, NULL, NULL) != MQTTB_OK)
    return perror("tcp_poll: setup"), 1;
  signal(SIGINT, on_signal), signal(SIGTERM, on_signal), signal(SIGPIPE, SIG_IGN); /* EPIPE */
  fprintf(stderr, "tcp_poll: listening on 127.0.0.1:%d\n", ntohs(sa.sin_port));
  for (pfd[0].fd = wake[0]; !(pfd[0].revents & POLLIN);) {
    if (poll(pfd, (nfds_t)n, mqttb_broker_timeout(b, now_ms())) < 0 && errno != EINTR)
      break; /* the timeout: until the broker's next timer; -1: none pending */
    uint64_t now = now_ms();
    mqttb_broker_handle_timers(b, now); /* keep-alive, connect timeout...; early is harmless */
    int fd = n < 66 && (pfd[1].revents & POLLIN) ? accept(lfd, NULL, NULL) : -1;
    if (fd >= 0 && (fcntl(fd, F_SETFL, O_NONBLOCK) || mqttb_conn_new(&conns[n], b, now, NULL)))
      close(fd); /* too many connections, or out of memory */
    else if (fd >= 0)
      pfd[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
    for (int i = 2; i < n; i++) {
      ssize_t r = pfd[i].revents & ~POLLOUT ? read(pfd[i].fd, buf, sizeof buf) : -2;
      if (r == 0 || (r == -1 && errno != EAGAIN))
        mqttb_conn_transport_closed(conns[i], now);         /* EOF or error: publishes the will */
      else if (r > 0 || mqttb_conn_input_pending(conns[i])) /* recv < 0: closing (on_close) */
        mqttb_conn_recv(conns[i], buf, r > 0 ? (size_t)r : 0, now); /* or on with held input */
    }
    for (int i = 2; i < n; i++) /* one PUBLISH makes output on many: flush all, every round */
      if (flush(conns[i], &pfd[i], now)) {
        close(pfd[i].fd), mqttb_conn_del(conns[i], now);  /* never inside a library callback */
        n--, pfd[i] = pfd[n], conns[i] = conns[n], i = 1; /* a will: output for all, again */
      }
  }
  mqttb_broker_shutdown(b, now_ms()); /* closes all; MQTT 5 clients get DISCONNECT 0x8B */
  for (int i = 2; i < n; i++)         /* write what the socket takes now, close, delete */
    flush(conns[i], &pfd[i], now_ms()), close(pfd[i].fd), mqttb_conn_del(conns[i], now_ms());
  return mqttb_broker_del(b), close(lfd), close(wake[0]), close(wake[1]), 0;
}
