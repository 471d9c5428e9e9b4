/*
 * serial_pty: an MQTT broker on a serial line (or a pseudo-terminal).
 *
 *   serial_pty DEVICE [BAUD]
 *
 * DEVICE is a tty: /dev/ttyUSB0, /dev/ttyS0, or the slave side of a
 * pseudo-terminal (/dev/pts/N) for testing without hardware. BAUD defaults
 * to 115200 (a pty ignores it). SIGINT or SIGTERM shuts it down; the tty's
 * settings are restored at exit.
 *
 * What a serial line changes, compared with a socket:
 *
 * - Raw mode. A tty is opened in "cooked" mode, made for people typing: it
 *   turns 0x0a into 0x0d 0x0a on output and 0x0d into 0x0a on input, treats
 *   0x03 (^C) and 0x1a (^Z) as signals, 0x04 (^D) as end of file, 0x11/0x13
 *   as flow control, 0x7f as erase, echoes everything back, and hands input
 *   over a line at a time. MQTT is binary, so cfmakeraw() turns all of that
 *   off, and CLOCAL makes the line ignore the modem control lines. Bytes
 *   that arrived before raw mode are dropped (tcflush): they were mangled.
 *
 * - No hang-up. A TCP connection ends and the next client makes a new one;
 *   a serial line just carries one session after another. After a
 *   connection closes (DISCONNECT, error, keep-alive timeout) and its last
 *   output is written, the connection object is deleted and the next byte
 *   starts a new one. The broker, and with it persistent sessions
 *   (clean session 0), retained messages and subscriptions, stays for the
 *   life of the process: a device that reconnects with the same client
 *   identifier finds its session again.
 *
 * - Lazy connection objects. A connection object exists only from the first
 *   byte of a session on: an idle line has none, so the connect timeout
 *   cannot fire on it.
 *
 * - Packet boundaries. mqttb_conn_recv() takes every byte it is given and
 *   drops what follows a DISCONNECT, but on this line those bytes may be the
 *   next session's CONNECT. So bytes are fed at most one packet at a time
 *   (the fixed header says how long a packet is), and what follows the
 *   packet that closed the connection waits for the next connection object.
 *
 * - Line noise. Between sessions the line may carry garbage (a device
 *   booting, a baud rate mismatch). Bytes are skipped until something that
 *   looks like the start of a CONNECT: 0x10, a remaining length, and the
 *   protocol name (00 04 "MQTT" or 00 06 "MQIsdp"). Noise in the middle of
 *   a session is a malformed packet: the broker closes that connection, the
 *   device notices by its keep-alive (no PINGRESP) and connects again, and
 *   the resynchronisation finds its new CONNECT.
 *
 * SPDX-License-Identifier: MIT
 */
#define _DEFAULT_SOURCE /* POSIX.1-2008 and cfmakeraw(), also with -std=c11 */
#include <mqttb/mqttb.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

struct line {
  int fd;
  mqttb_broker *broker;
  mqttb_conn *conn; /* NULL while the line is idle */
  uint8_t in[4096]; /* bytes read from the line and not fed yet */
  size_t inlen;
  size_t left;      /* bytes of the current packet not fed yet; 0 at a boundary */
  unsigned session; /* sessions started on this line */
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
  fprintf(stderr, "serial_pty: %s\n", msg);
}

static void on_close(mqttb_conn *conn, int reason, void *user_data) {
  (void)conn;
  struct line *l = user_data;
  fprintf(stderr, "serial_pty: session %u ended: %s\n", l->session, mqttb_strerror(reason));
}

static uint64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static speed_t baud_rate(long baud) {
  switch (baud) {
  case 9600:
    return B9600;
  case 19200:
    return B19200;
  case 38400:
    return B38400;
  case 57600:
    return B57600;
  case 115200:
    return B115200;
  case 230400:
    return B230400;
  default:
    return 0;
  }
}

/* Whether a CONNECT may start at p: 1 yes, 0 no, -1 cannot tell yet. */
static int connect_at(const uint8_t *p, size_t len) {
  static const uint8_t mqtt[] = {0, 4, 'M', 'Q', 'T', 'T'};             /* MQTT 3.1.1 and 5 */
  static const uint8_t mqisdp[] = {0, 6, 'M', 'Q', 'I', 's', 'd', 'p'}; /* MQTT 3.1 */
  if (p[0] != 0x10)
    return 0;
  size_t i = 1; /* the remaining length: 1 to 4 bytes, the last without bit 7 */
  while (i < len && i < 5 && (p[i] & 0x80))
    i++;
  if (i == 5)
    return 0;
  if (i >= len)
    return -1;
  i++;
  int maybe = 0;
  const uint8_t *names[2] = {mqtt, mqisdp};
  size_t sizes[2] = {sizeof mqtt, sizeof mqisdp};
  for (int k = 0; k < 2; k++) {
    size_t m = len - i < sizes[k] ? len - i : sizes[k];
    if (memcmp(p + i, names[k], m) == 0) {
      if (m == sizes[k])
        return 1;
      maybe = 1;
    }
  }
  return maybe ? -1 : 0;
}

/* Bytes in the packet starting at p: 0 while its fixed header is
 * incomplete; a malformed remaining length counts as the header alone (the
 * broker rejects it). */
static size_t packet_size(const uint8_t *p, size_t len) {
  size_t size = 0;
  for (size_t i = 1; i < 5; i++) {
    if (i >= len)
      return 0;
    size |= (size_t)(p[i] & 0x7f) << (7 * (i - 1));
    if (!(p[i] & 0x80))
      return i + 1 + size;
  }
  return 5;
}

static void consume(struct line *l, size_t n) {
  memmove(l->in, l->in + n, l->inlen - n);
  l->inlen -= n;
}

/* Feed buffered bytes to the connection, a packet at a time; start a
 * connection when a CONNECT comes while the line is idle. */
static void feed(struct line *l, uint64_t now) {
  while (l->inlen > 0) {
    if (l->conn && mqttb_conn_is_closing(l->conn))
      return; /* what follows is for the next connection object */
    if (l->conn && mqttb_conn_input_pending(l->conn) > 0) {
      mqttb_conn_recv(l->conn, NULL, 0, now); /* the work budget held input back */
      if (mqttb_conn_input_pending(l->conn) > 0)
        return;
      continue;
    }
    if (!l->conn) {
      size_t skip = 0;
      int found = 0;
      while (skip < l->inlen && (found = connect_at(l->in + skip, l->inlen - skip)) == 0)
        skip++;
      if (skip > 0) {
        fprintf(stderr, "serial_pty: skipped %zu byte(s) of line noise\n", skip);
        consume(l, skip);
      }
      if (found != 1)
        return; /* nothing yet, or a CONNECT start that needs more bytes */
      int rc = mqttb_conn_new(&l->conn, l->broker, now, l);
      if (rc != MQTTB_OK) {
        fprintf(stderr, "serial_pty: no connection object: %s\n", mqttb_strerror(rc));
        l->conn = NULL;
        l->inlen = 0;
        return;
      }
      l->left = 0;
      fprintf(stderr, "serial_pty: session %u started\n", ++l->session);
    }
    if (l->left == 0 && (l->left = packet_size(l->in, l->inlen)) == 0)
      return; /* the fixed header is not complete yet */
    size_t n = l->inlen < l->left ? l->inlen : l->left;
    mqttb_conn_recv(l->conn, l->in, n, now); /* negative: closing (on_close ran) */
    consume(l, n);
    l->left -= n;
  }
}

/* Write what the line takes now. -1 on a write error. */
static int flush(struct line *l, uint64_t now) {
  mqttb_iovec iov[16];
  int n;
  while (l->conn && (n = mqttb_conn_output(l->conn, iov, 16)) > 0) {
    ssize_t w = writev(l->fd, (const struct iovec *)iov, n);
    if (w < 0)
      return errno == EAGAIN || errno == EINTR ? 0 : -1;
    mqttb_conn_output_ack(l->conn, (size_t)w, now); /* maybe a part */
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s DEVICE [BAUD]\n", argv[0]);
    return 2;
  }
  speed_t speed = baud_rate(argc > 2 ? strtol(argv[2], NULL, 10) : 115200);
  if (speed == 0) {
    fprintf(stderr, "serial_pty: unsupported baud rate %s\n", argv[2]);
    return 2;
  }
  static struct line l;
  /* O_NOCTTY: the line must not become this process's controlling terminal
   * (a hang-up would send SIGHUP). O_NONBLOCK: open() must not wait for a
   * carrier, and reads and writes must not block the loop. */
  l.fd = open(argv[1], O_RDWR | O_NOCTTY | O_NONBLOCK);
  struct termios saved, raw;
  if (l.fd < 0 || tcgetattr(l.fd, &saved) != 0) {
    perror(argv[1]);
    return 1;
  }
  raw = saved;
  cfmakeraw(&raw);               /* no translation, no echo, no signals */
  raw.c_cflag |= CLOCAL | CREAD; /* ignore modem lines, enable the receiver */
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  if (cfsetispeed(&raw, speed) != 0 || cfsetospeed(&raw, speed) != 0 ||
      tcsetattr(l.fd, TCSANOW, &raw) != 0 || tcflush(l.fd, TCIOFLUSH) != 0) {
    perror(argv[1]);
    close(l.fd);
    return 1;
  }

  if (pipe(wake_pipe) != 0) {
    perror("serial_pty: pipe");
    tcsetattr(l.fd, TCSANOW, &saved);
    close(l.fd);
    return 1;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  mqttb_callbacks cb = {.log = on_log, .on_close = on_close};
  int rc = mqttb_broker_new(&l.broker, NULL, &cb, NULL, &l);
  if (rc != MQTTB_OK) {
    fprintf(stderr, "serial_pty: %s\n", mqttb_strerror(rc));
    tcsetattr(l.fd, TCSANOW, &saved);
    close(l.fd);
    return 1;
  }
  fprintf(stderr, "serial_pty: serving %s in raw mode\n", argv[1]);

  struct pollfd pfd[2] = {{.fd = wake_pipe[0], .events = POLLIN}, {.fd = l.fd}};
  for (;;) {
    uint64_t now = now_ms();
    pfd[1].events = (short)((l.inlen < sizeof l.in ? POLLIN : 0) |
                            (mqttb_conn_output_pending(l.conn) ? POLLOUT : 0));
    int timeout =
        l.conn && mqttb_conn_input_pending(l.conn) ? 0 : mqttb_broker_timeout(l.broker, now);
    if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
      perror("serial_pty: poll");
      break;
    }
    if (pfd[0].revents & POLLIN)
      break;
    now = now_ms();
    if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(l.fd, l.in + l.inlen, sizeof l.in - l.inlen);
      if (r > 0) {
        l.inlen += (size_t)r;
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        /* A real line with CLOCAL has no hang-up; a pty whose master side
         * closed reads EIO. Nothing will come any more. */
        fprintf(stderr, "serial_pty: %s is gone: %s\n", argv[1],
                r == 0 ? "end of file" : strerror(errno));
        break;
      }
    }
    feed(&l, now);
    mqttb_broker_handle_timers(l.broker, now); /* keep-alive, connect timeout, session expiry */
    int gone = 0;
    while (!(gone = flush(&l, now) != 0)) {
      if (!l.conn || !mqttb_conn_is_closing(l.conn) || mqttb_conn_output_pending(l.conn) > 0)
        break;
      /* The session is over and its last bytes are out: the next byte on
       * the line belongs to a new connection object. */
      mqttb_conn_del(l.conn, now);
      l.conn = NULL;
      feed(&l, now); /* the next session may be buffered already */
    }
    if (gone) {
      fprintf(stderr, "serial_pty: writing to %s: %s\n", argv[1], strerror(errno));
      break;
    }
  }

  uint64_t now = now_ms();
  mqttb_broker_shutdown(l.broker, now); /* an MQTT 5 client gets DISCONNECT 0x8B */
  flush(&l, now);                       /* what the line takes now */
  mqttb_conn_del(l.conn, now);
  mqttb_broker_del(l.broker);
  tcsetattr(l.fd, TCSANOW, &saved);
  close(l.fd);
  close(wake_pipe[0]);
  close(wake_pipe[1]);
  fprintf(stderr, "serial_pty: stopped\n");
  return 0;
}
