/*
 * mqttb CLI: TLS listeners over OpenSSL 3 (built with -Dtls=enabled/auto).
 *
 * Settings follow Mosquitto 2's listeners (src/net.c): tls_version is the
 * minimum version, no client certificate is asked for unless
 * require_certificate, compression and renegotiation are off, the server
 * picks the cipher. Where Mosquitto says nothing mqttb is stricter about
 * what would never work: options that have no effect without
 * require_certificate, or a require_certificate that no client could
 * pass, are errors.
 *
 * Every OpenSSL call that can fail starts from an empty error queue
 * (SSL_get_error reads it) and leaves it empty, so one connection's
 * failure is never reported for another.
 *
 * SPDX-License-Identifier: MIT
 */
#include "tls.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* The most plaintext one record carries: writes are gathered up to this. */
#define RECORD_MAX SSL3_RT_MAX_PLAIN_LENGTH
/* Handshake record content type: the first byte of every ClientHello. */
#define TLS_HANDSHAKE_BYTE 0x16
/* An MQTT CONNECT's fixed header byte. */
#define MQTT_CONNECT_BYTE 0x10

struct mqttb_cli_tls_ctx {
  struct mqttb_cli_tls_options opts;
  /* Refcounted by OpenSSL: each session holds the one it started with. */
  SSL_CTX *ssl_ctx;
};

struct mqttb_cli_tls_conn {
  SSL *ssl;
  int fd;
  /* Length of the write OpenSSL holds encrypted and must be repeated
   * with at least that many bytes; 0: none. */
  size_t write_pending;
  /* A close or failure a read met after it had bytes to return: the next
   * read reports it (MQTTB_CLI_TLS_DONE: none), with its reason. */
  enum mqttb_cli_tls_status read_later;
  char *read_later_reason;
  bool first_byte_seen;
  bool handshake_done;
  /* A fatal error happened: no close_notify may follow. */
  bool failed;
  bool use_identity;
  bool use_subject;
};

/* ---- errors ---- */

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...) {
  va_list ap;
  va_start(ap, fmt);
  if (errlen > 0) {
    vsnprintf(err, errlen, fmt, ap);
  }
  va_end(ap);
}

/* The earliest error OpenSSL queued (the cause; later ones are the
 * callers' "PEM lib" and the like), then an empty queue. */
static const char *ssl_reason(unsigned long *code) {
  unsigned long e = ERR_peek_error();
  ERR_clear_error();
  if (code != NULL) {
    *code = e;
  }
  if (e == 0) {
    return "unknown error";
  }
  const char *r = ERR_reason_error_string(e);
  return r != NULL ? r : "unknown error";
}

/* "MESSAGE: OPENSSL REASON". */
__attribute__((format(printf, 3, 4))) static void set_ssl_err(char *err, size_t errlen,
                                                              const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  set_err(err, errlen, "%s: %s", msg, ssl_reason(NULL));
}

/* ---- the listener context ---- */

/* Keys are read when the configuration is (re)loaded, maybe on SIGHUP with
 * no terminal: never ask for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata) {
  (void)buf;
  (void)size;
  (void)rwflag;
  *(bool *)userdata = true;
  return -1;
}

static int min_version(const char *v) {
  if (v == NULL || strcmp(v, "tlsv1.2") == 0) {
    return TLS1_2_VERSION;
  }
  if (strcmp(v, "tlsv1.3") == 0) {
    return TLS1_3_VERSION;
  }
  if (strcmp(v, "tlsv1.1") == 0) {
    return TLS1_1_VERSION;
  }
  return 0;
}

/* A readable regular file, with errno's words when not. */
static bool check_file(const char *opt, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    set_err(err, errlen, "%s '%s': %s", opt, path, strerror(errno));
    return false;
  }
  fclose(f);
  return true;
}

static bool check_options(const struct mqttb_cli_tls_options *o, char *err, size_t errlen) {
  if (o->certfile == NULL || o->keyfile == NULL) {
    set_err(err, errlen, "TLS needs both certfile and keyfile (%s is missing)",
            o->certfile == NULL ? "certfile" : "keyfile");
    return false;
  }
  if (min_version(o->tls_version) == 0) {
    set_err(err, errlen,
            "invalid value '%s' for 'tls_version' (expected tlsv1.3, tlsv1.2 or tlsv1.1)",
            o->tls_version);
    return false;
  }
  if (o->require_certificate && o->cafile == NULL && o->capath == NULL) {
    set_err(err, errlen,
            "require_certificate true needs cafile or capath to verify client certificates");
    return false;
  }
  const char *needs_cert = o->crlfile != NULL            ? "crlfile"
                           : o->use_identity_as_username ? "use_identity_as_username"
                           : o->use_subject_as_username  ? "use_subject_as_username"
                                                         : NULL;
  if (needs_cert != NULL && !o->require_certificate) {
    set_err(err, errlen, "%s needs require_certificate true (no client certificate is asked for)",
            needs_cert);
    return false;
  }
  return true;
}

static bool load_ciphers(SSL_CTX *c, const struct mqttb_cli_tls_options *o, char *err,
                         size_t errlen) {
  if (o->ciphers != NULL && SSL_CTX_set_cipher_list(c, o->ciphers) != 1) {
    set_ssl_err(err, errlen, "ciphers '%s'", o->ciphers);
    return false;
  }
  if (o->ciphers_tls13 != NULL) {
    if (SSL_CTX_set_ciphersuites(c, o->ciphers_tls13) != 1) {
      set_ssl_err(err, errlen, "ciphers_tls1.3 '%s'", o->ciphers_tls13);
      return false;
    }
    /* OpenSSL skips names it does not know: a list of only such names
     * would turn TLS 1.3 off without a word. */
    bool any13 = false;
    STACK_OF(SSL_CIPHER) *all = SSL_CTX_get_ciphers(c);
    for (int i = 0; i < sk_SSL_CIPHER_num(all); i++) {
      if (strcmp(SSL_CIPHER_get_version(sk_SSL_CIPHER_value(all, i)), "TLSv1.3") == 0) {
        any13 = true;
      }
    }
    if (!any13 && o->ciphers_tls13[0] != '\0') {
      set_err(err, errlen, "ciphers_tls1.3 '%s': no TLS 1.3 ciphersuite matches", o->ciphers_tls13);
      return false;
    }
  }
  return true;
}

static bool load_verify(SSL_CTX *c, const struct mqttb_cli_tls_options *o, char *err,
                        size_t errlen) {
  if (o->cafile != NULL) {
    if (!check_file("cafile", o->cafile, err, errlen)) {
      return false;
    }
    if (SSL_CTX_load_verify_file(c, o->cafile) != 1) {
      set_ssl_err(err, errlen, "cafile '%s'", o->cafile);
      return false;
    }
    /* Named in the CertificateRequest, so that clients with several
     * certificates pick one these CAs issued. */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->cafile);
    if (names != NULL) {
      SSL_CTX_set_client_CA_list(c, names);
    }
    ERR_clear_error();
  }
  if (o->capath != NULL) {
    struct stat st;
    if (stat(o->capath, &st) != 0) {
      set_err(err, errlen, "capath '%s': %s", o->capath, strerror(errno));
      return false;
    }
    if (!S_ISDIR(st.st_mode)) {
      set_err(err, errlen, "capath '%s': not a directory", o->capath);
      return false;
    }
    if (SSL_CTX_load_verify_dir(c, o->capath) != 1) {
      set_ssl_err(err, errlen, "capath '%s'", o->capath);
      return false;
    }
  }
  if (o->crlfile != NULL) {
    if (!check_file("crlfile", o->crlfile, err, errlen)) {
      return false;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(c);
    X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (lookup == NULL || X509_load_crl_file(lookup, o->crlfile, X509_FILETYPE_PEM) < 1) {
      set_err(err, errlen, "crlfile '%s': not a PEM revocation list (%s)", o->crlfile,
              ssl_reason(NULL));
      return false;
    }
    /* The client certificate's issuer must have a CRL in it (as Mosquitto). */
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  if (o->require_certificate) {
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
  }
  return true;
}

static bool load_identity(SSL_CTX *c, const struct mqttb_cli_tls_options *o, char *err,
                          size_t errlen) {
  if (!check_file("certfile", o->certfile, err, errlen) ||
      !check_file("keyfile", o->keyfile, err, errlen)) {
    return false;
  }
  if (SSL_CTX_use_certificate_chain_file(c, o->certfile) != 1) {
    set_err(err, errlen, "certfile '%s': not a PEM certificate (%s)", o->certfile,
            ssl_reason(NULL));
    return false;
  }
  bool asked = false;
  SSL_CTX_set_default_passwd_cb(c, no_passphrase);
  SSL_CTX_set_default_passwd_cb_userdata(c, &asked);
  int rc = SSL_CTX_use_PrivateKey_file(c, o->keyfile, SSL_FILETYPE_PEM);
  SSL_CTX_set_default_passwd_cb_userdata(c, NULL);
  if (rc != 1) {
    unsigned long code;
    const char *why = ssl_reason(&code);
    if (asked) {
      set_err(err, errlen, "keyfile '%s' is encrypted; mqttb needs it without a passphrase",
              o->keyfile);
    } else if (ERR_GET_LIB(code) == ERR_LIB_X509 &&
               ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH) {
      set_err(err, errlen, "keyfile '%s' does not match certfile '%s'", o->keyfile, o->certfile);
    } else {
      set_err(err, errlen, "keyfile '%s': not a PEM private key (%s)", o->keyfile, why);
    }
    return false;
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    ERR_clear_error();
    set_err(err, errlen, "keyfile '%s' does not match certfile '%s'", o->keyfile, o->certfile);
    return false;
  }
  return true;
}

static SSL_CTX *build(const struct mqttb_cli_tls_options *o, char *err, size_t errlen) {
  if (!check_options(o, err, errlen)) {
    return NULL;
  }
  ERR_clear_error();
  SSL_CTX *c = SSL_CTX_new(TLS_server_method());
  if (c == NULL) {
    set_ssl_err(err, errlen, "cannot create a TLS context");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(c, min_version(o->tls_version));
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                             SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  /* Partial writes map to byte counts for mqttb_conn_output_ack; a retry
   * may come from another buffer (the gathering one or the library's);
   * idle connections give their buffers back. */
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_dh_auto(c, 1);
  /* Without it a resumed session of a verified client fails. */
  static const unsigned char sid_ctx[] = "mqttb";
  SSL_CTX_set_session_id_context(c, sid_ctx, sizeof sid_ctx - 1);
  if (!load_ciphers(c, o, err, errlen) || !load_identity(c, o, err, errlen) ||
      !load_verify(c, o, err, errlen)) {
    SSL_CTX_free(c);
    ERR_clear_error();
    return NULL;
  }
  return c;
}

struct mqttb_cli_tls_ctx *mqttb_cli_tls_ctx_new(const struct mqttb_cli_tls_options *opts, char *err,
                                                size_t errlen) {
  struct mqttb_cli_tls_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) {
    set_err(err, errlen, "out of memory");
    return NULL;
  }
  if (mqttb_cli_tls_options_copy(&ctx->opts, opts) != 0) {
    set_err(err, errlen, "out of memory");
    free(ctx);
    return NULL;
  }
  ctx->ssl_ctx = build(&ctx->opts, err, errlen);
  if (ctx->ssl_ctx == NULL) {
    mqttb_cli_tls_ctx_free(ctx);
    return NULL;
  }
  return ctx;
}

int mqttb_cli_tls_ctx_reload(struct mqttb_cli_tls_ctx *ctx, char *err, size_t errlen) {
  SSL_CTX *fresh = build(&ctx->opts, err, errlen);
  if (fresh == NULL) {
    return -1;
  }
  SSL_CTX_free(ctx->ssl_ctx);
  ctx->ssl_ctx = fresh;
  return 0;
}

const struct mqttb_cli_tls_options *mqttb_cli_tls_ctx_options(const struct mqttb_cli_tls_ctx *ctx) {
  return &ctx->opts;
}

void mqttb_cli_tls_ctx_free(struct mqttb_cli_tls_ctx *ctx) {
  if (ctx == NULL) {
    return;
  }
  SSL_CTX_free(ctx->ssl_ctx);
  mqttb_cli_tls_options_free(&ctx->opts);
  free(ctx);
}

/* ---- connections ---- */

struct mqttb_cli_tls_conn *mqttb_cli_tls_conn_new(struct mqttb_cli_tls_ctx *ctx, int fd) {
  struct mqttb_cli_tls_conn *conn = calloc(1, sizeof *conn);
  if (conn == NULL) {
    return NULL;
  }
  ERR_clear_error();
  conn->ssl = SSL_new(ctx->ssl_ctx);
  /* The socket BIO leaves the fd open when it is freed (BIO_NOCLOSE). */
  if (conn->ssl == NULL || SSL_set_fd(conn->ssl, fd) != 1) {
    ERR_clear_error();
    SSL_free(conn->ssl);
    free(conn);
    return NULL;
  }
  SSL_set_accept_state(conn->ssl);
  conn->fd = fd;
  conn->read_later = MQTTB_CLI_TLS_DONE;
  conn->use_identity = ctx->opts.use_identity_as_username;
  conn->use_subject = ctx->opts.use_subject_as_username;
  return conn;
}

/* Why the session stopped, after SSL_get_error() said @p e for a call
 * made @p when ("during the handshake", "while reading"...). */
static void describe_failure(struct mqttb_cli_tls_conn *conn, int e, int saved_errno,
                             const char *when, char *err, size_t errlen) {
  conn->failed = true;
  if (e == SSL_ERROR_SYSCALL) {
    unsigned long code = ERR_peek_error();
    if (code == 0) {
      if (saved_errno == 0) {
        set_err(err, errlen, "the client closed the connection %s", when);
      } else {
        set_err(err, errlen, "%s %s", strerror(saved_errno), when);
      }
      return;
    }
  }
  if (e == SSL_ERROR_ZERO_RETURN) {
    ERR_clear_error();
    set_err(err, errlen, "the client closed the connection %s", when);
    return;
  }
  unsigned long code;
  const char *why = ssl_reason(&code);
  if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
      ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    set_err(err, errlen, "the client closed the connection %s", when);
  } else if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
             ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    set_err(err, errlen, "%s: %s", why,
            X509_verify_cert_error_string(SSL_get_verify_result(conn->ssl)));
  } else {
    set_err(err, errlen, "%s", why);
  }
}

/* Before OpenSSL reads anything: a client that speaks plain MQTT (or
 * anything but TLS) to a TLS port is told apart from a broken handshake.
 * A ClientHello starts with 0x16, an SSL 2 style one with its top bit set. */
static enum mqttb_cli_tls_status check_first_byte(struct mqttb_cli_tls_conn *conn, char *err,
                                                  size_t errlen) {
  unsigned char b;
  ssize_t n;
  do {
    n = recv(conn->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return MQTTB_CLI_TLS_WANT_READ;
    }
    conn->failed = true;
    set_err(err, errlen, "%s before the handshake", strerror(errno));
    return MQTTB_CLI_TLS_FAILED;
  }
  if (n == 0) {
    conn->failed = true;
    set_err(err, errlen, "the client closed the connection before the handshake");
    return MQTTB_CLI_TLS_FAILED;
  }
  conn->first_byte_seen = true;
  if (b == TLS_HANDSHAKE_BYTE || (b & 0x80) != 0) {
    return MQTTB_CLI_TLS_DONE;
  }
  conn->failed = true;
  if (b == MQTT_CONNECT_BYTE) {
    set_err(err, errlen, "plain MQTT instead of TLS (a CONNECT packet)");
  } else {
    set_err(err, errlen, "not TLS (the first byte is 0x%02x, a ClientHello starts with 0x16)", b);
  }
  return MQTTB_CLI_TLS_FAILED;
}

enum mqttb_cli_tls_status mqttb_cli_tls_conn_handshake(struct mqttb_cli_tls_conn *conn, char *err,
                                                       size_t errlen) {
  if (conn->handshake_done) {
    return MQTTB_CLI_TLS_DONE;
  }
  if (conn->failed) {
    set_err(err, errlen, "the handshake failed already");
    return MQTTB_CLI_TLS_FAILED;
  }
  if (!conn->first_byte_seen) {
    enum mqttb_cli_tls_status st = check_first_byte(conn, err, errlen);
    if (st != MQTTB_CLI_TLS_DONE) {
      return st;
    }
  }
  ERR_clear_error();
  errno = 0;
  int rc = SSL_do_handshake(conn->ssl);
  int saved_errno = errno;
  if (rc == 1) {
    conn->handshake_done = true;
    return MQTTB_CLI_TLS_DONE;
  }
  int e = SSL_get_error(conn->ssl, rc);
  if (e == SSL_ERROR_WANT_READ) {
    return MQTTB_CLI_TLS_WANT_READ;
  }
  if (e == SSL_ERROR_WANT_WRITE) {
    return MQTTB_CLI_TLS_WANT_WRITE;
  }
  describe_failure(conn, e, saved_errno, "during the handshake", err, errlen);
  return MQTTB_CLI_TLS_FAILED;
}

enum mqttb_cli_tls_status mqttb_cli_tls_conn_read(struct mqttb_cli_tls_conn *conn, void *buf,
                                                  size_t len, size_t *n, char *err, size_t errlen) {
  *n = 0;
  if (conn->read_later != MQTTB_CLI_TLS_DONE) {
    if (conn->read_later == MQTTB_CLI_TLS_FAILED) {
      set_err(err, errlen, "%s", conn->read_later_reason ? conn->read_later_reason : "failed");
    }
    return conn->read_later;
  }
  if (conn->failed) {
    set_err(err, errlen, "the connection failed already");
    return MQTTB_CLI_TLS_FAILED;
  }
  size_t got = 0;
  enum mqttb_cli_tls_status st = MQTTB_CLI_TLS_DONE;
  char reason[256] = "";
  while (got < len) {
    size_t r = 0;
    ERR_clear_error();
    errno = 0;
    if (SSL_read_ex(conn->ssl, (unsigned char *)buf + got, len - got, &r) == 1) {
      got += r;
      continue;
    }
    int saved_errno = errno;
    int e = SSL_get_error(conn->ssl, 0);
    if (e == SSL_ERROR_WANT_READ) {
      st = MQTTB_CLI_TLS_WANT_READ;
    } else if (e == SSL_ERROR_WANT_WRITE) {
      st = MQTTB_CLI_TLS_WANT_WRITE;
    } else if (e == SSL_ERROR_ZERO_RETURN ||
               (e == SSL_ERROR_SYSCALL && saved_errno == 0 && ERR_peek_error() == 0)) {
      /* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) the stream ended
       * between records: MQTT frames its packets, nothing is cut short
       * that the library would take for whole. */
      ERR_clear_error();
      st = MQTTB_CLI_TLS_CLOSED;
    } else {
      describe_failure(conn, e, saved_errno, "while reading", reason, sizeof reason);
      st = MQTTB_CLI_TLS_FAILED;
    }
    break;
  }
  if (got == 0) {
    if (st == MQTTB_CLI_TLS_FAILED) {
      set_err(err, errlen, "%s", reason);
    }
    return st;
  }
  /* The bytes first; a close or failure comes with the next call. */
  if (st == MQTTB_CLI_TLS_CLOSED || st == MQTTB_CLI_TLS_FAILED) {
    conn->read_later = st;
    if (st == MQTTB_CLI_TLS_FAILED) {
      conn->read_later_reason = strdup(reason);
    }
  }
  *n = got;
  return MQTTB_CLI_TLS_DONE;
}

size_t mqttb_cli_tls_conn_pending(const struct mqttb_cli_tls_conn *conn) {
  if (conn->read_later != MQTTB_CLI_TLS_DONE || conn->failed) {
    return 0;
  }
  int p = SSL_pending(conn->ssl);
  return p > 0 ? (size_t)p : 0;
}

enum mqttb_cli_tls_status mqttb_cli_tls_conn_writev(struct mqttb_cli_tls_conn *conn,
                                                    const struct iovec *iov, int iovcnt, size_t *n,
                                                    char *err, size_t errlen) {
  *n = 0;
  if (conn->failed) {
    set_err(err, errlen, "the connection failed already");
    return MQTTB_CLI_TLS_FAILED;
  }
  unsigned char gather[RECORD_MAX];
  size_t sent = 0;
  int i = 0;      /* the iovec the next record starts in */
  size_t off = 0; /* and where in it */
  for (;;) {
    while (i < iovcnt && off == iov[i].iov_len) {
      i++;
      off = 0;
    }
    if (i == iovcnt) {
      break;
    }
    /* A whole record's worth in one piece is sent from where it is;
     * smaller pieces (MQTT headers, short payloads) are gathered, so that
     * they share records instead of one record and one syscall each. */
    const unsigned char *rec;
    size_t len;
    if (iov[i].iov_len - off >= RECORD_MAX) {
      rec = (const unsigned char *)iov[i].iov_base + off;
      len = RECORD_MAX;
    } else {
      len = 0;
      int j = i;
      size_t o = off;
      while (j < iovcnt && len < RECORD_MAX) {
        size_t take = iov[j].iov_len - o;
        if (take > RECORD_MAX - len) {
          take = RECORD_MAX - len;
        }
        memcpy(gather + len, (const unsigned char *)iov[j].iov_base + o, take);
        len += take;
        o += take;
        if (o == iov[j].iov_len) {
          j++;
          o = 0;
        }
      }
      rec = gather;
    }
    if (len < conn->write_pending) {
      /* OpenSSL would refuse it ("bad write retry"); say why instead. */
      conn->failed = true;
      set_err(err, errlen,
              "a repeated write was given %zu bytes, fewer than the %zu it must repeat", len,
              conn->write_pending);
      return MQTTB_CLI_TLS_FAILED;
    }
    size_t w = 0;
    ERR_clear_error();
    errno = 0;
    if (SSL_write_ex(conn->ssl, rec, len, &w) == 1) {
      conn->write_pending = 0;
      sent += w;
      /* Advance by what went out: a client that negotiated a smaller
       * record size takes less than was given. */
      while (w > 0) {
        size_t left = iov[i].iov_len - off;
        if (w < left) {
          off += w;
          w = 0;
        } else {
          w -= left;
          i++;
          off = 0;
        }
      }
      continue;
    }
    int saved_errno = errno;
    int e = SSL_get_error(conn->ssl, 0);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      conn->write_pending = len;
      ERR_clear_error();
      if (sent > 0) {
        break;
      }
      return e == SSL_ERROR_WANT_WRITE ? MQTTB_CLI_TLS_WANT_WRITE : MQTTB_CLI_TLS_WANT_READ;
    }
    describe_failure(conn, e, saved_errno, "while writing", err, errlen);
    return MQTTB_CLI_TLS_FAILED;
  }
  *n = sent;
  return MQTTB_CLI_TLS_DONE;
}

void mqttb_cli_tls_conn_shutdown(struct mqttb_cli_tls_conn *conn) {
  if (conn == NULL || !conn->handshake_done || conn->failed) {
    return;
  }
  ERR_clear_error();
  (void)SSL_shutdown(conn->ssl);
  ERR_clear_error();
}

void mqttb_cli_tls_conn_free(struct mqttb_cli_tls_conn *conn) {
  if (conn == NULL) {
    return;
  }
  SSL_free(conn->ssl);
  free(conn->read_later_reason);
  free(conn);
}

const char *mqttb_cli_tls_conn_version(const struct mqttb_cli_tls_conn *conn) {
  return SSL_get_version(conn->ssl);
}

const char *mqttb_cli_tls_conn_cipher(const struct mqttb_cli_tls_conn *conn) {
  return SSL_get_cipher_name(conn->ssl);
}

/* The client's certificate once it was verified; NULL: none. */
static X509 *verified_peer(const struct mqttb_cli_tls_conn *conn) {
  if (!conn->handshake_done || SSL_get_verify_result(conn->ssl) != X509_V_OK) {
    return NULL;
  }
  return SSL_get0_peer_certificate(conn->ssl);
}

char *mqttb_cli_tls_conn_peer_cn(const struct mqttb_cli_tls_conn *conn) {
  X509 *cert = verified_peer(conn);
  if (cert == NULL) {
    return NULL;
  }
  const X509_NAME *name = X509_get_subject_name(cert);
  int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0) {
    return NULL;
  }
  /* BMPString and the like come out as UTF-8; invalid strings fail. */
  unsigned char *utf8 = NULL;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
  char *cn = NULL;
  if (len >= 0 && memchr(utf8, '\0', (size_t)len) == NULL) {
    cn = strndup((const char *)utf8, (size_t)len);
  }
  OPENSSL_free(utf8);
  ERR_clear_error();
  return cn;
}

char *mqttb_cli_tls_conn_peer_subject(const struct mqttb_cli_tls_conn *conn) {
  X509 *cert = verified_peer(conn);
  if (cert == NULL) {
    return NULL;
  }
  BIO *bio = BIO_new(BIO_s_mem());
  if (bio == NULL) {
    ERR_clear_error();
    return NULL;
  }
  char *subject = NULL;
  /* Mosquitto's form (handle_connect.c), so its ACL files keep working. */
  if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len >= 0 && (len == 0 || memchr(data, '\0', (size_t)len) == NULL)) {
      subject = strndup(data != NULL ? data : "", (size_t)len);
    }
  }
  BIO_free(bio);
  ERR_clear_error();
  return subject;
}

int mqttb_cli_tls_conn_username(const struct mqttb_cli_tls_conn *conn, char **username) {
  *username = NULL;
  if (!conn->use_identity && !conn->use_subject) {
    return 0;
  }
  *username =
      conn->use_identity ? mqttb_cli_tls_conn_peer_cn(conn) : mqttb_cli_tls_conn_peer_subject(conn);
  return *username != NULL ? 1 : -1;
}
