/*
 * mqttb CLI: TLS listeners (an optional build feature, meson -Dtls=...).
 *
 * Two parts:
 *
 *  - In every build: the listener options of mosquitto.conf(5) that TLS
 *    takes (cafile, capath, certfile, keyfile, crlfile, ciphers,
 *    ciphers_tls1.3, tls_version, require_certificate,
 *    use_identity_as_username, use_subject_as_username) as plain strings
 *    and booleans, and mqttb_cli_tls_option_set() to parse one of them. In
 *    a build without TLS (MQTTB_CLI_TLS 0) it refuses each of them with
 *    "'certfile' needs TLS, which this build of mqttb does not have", so a
 *    configuration for TLS never starts a plain listener.
 *
 *  - With TLS (MQTTB_CLI_TLS 1, OpenSSL 3): a listener's context built from
 *    those options, reloadable on SIGHUP, and a connection wrapper over a
 *    non-blocking socket: handshake steps, reads into a buffer, gathered
 *    writes of an iovec array that report how many bytes went out. Nothing
 *    here ever blocks or polls: each call does what the socket allows and
 *    says what to wait for. Nothing of the library (lib/) is used or needed.
 *
 * The wrapper never closes the socket; the event loop owns it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_TLS_H
#define MQTTB_CLI_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* Set to 1 by cli/meson.build when mqttb is built with TLS. */
#ifndef MQTTB_CLI_TLS
#define MQTTB_CLI_TLS 0
#endif

/* One listener's TLS options, as mosquitto.conf(5) names them. Strings are
 * owned (malloc'd) by the struct, NULL when not given. */
struct mqttb_cli_tls_options {
  char *cafile;        /* PEM file of CA certificates trusted for client certificates */
  char *capath;        /* directory of such certificates ("openssl rehash" names) */
  char *certfile;      /* PEM server certificate, optionally followed by its chain */
  char *keyfile;       /* PEM private key of certfile (not encrypted) */
  char *crlfile;       /* PEM revocation list checked for client certificates */
  char *ciphers;       /* OpenSSL cipher list for TLS 1.2 and earlier */
  char *ciphers_tls13; /* `ciphers_tls1.3`: TLS 1.3 ciphersuites */
  /* The *minimum* version: "tlsv1.3", "tlsv1.2" or "tlsv1.1" (Mosquitto 2;
   * 1.6 took it as the only one). NULL: TLS 1.2 and 1.3. */
  char *tls_version;
  /* Clients must present a certificate that verifies against cafile/capath
   * (and crlfile); false: none is asked for. */
  bool require_certificate;
  /* The user name is the client certificate's CN (this one wins when both
   * are set) or its subject in RFC 2253 form; a CONNECT's user name and
   * password are then ignored. */
  bool use_identity_as_username;
  bool use_subject_as_username;
};

/* All NULL and false. */
void mqttb_cli_tls_options_init(struct mqttb_cli_tls_options *opts);

/* Free the strings; @p opts must be initialised again before reuse. */
void mqttb_cli_tls_options_free(struct mqttb_cli_tls_options *opts);

/* Make @p dst (not initialised) a copy of @p src with strings of its own.
 * Returns 0, or -1 when out of memory (then @p dst holds nothing). */
int mqttb_cli_tls_options_copy(struct mqttb_cli_tls_options *dst,
                               const struct mqttb_cli_tls_options *src);

/* Whether any TLS option was given: the listener is then a TLS listener
 * (and mqttb_cli_tls_ctx_new says what is missing, such as keyfile). */
bool mqttb_cli_tls_options_any(const struct mqttb_cli_tls_options *opts);

/*
 * Apply the config line `NAME ARGV[0]...` (@p argc words after the name) to
 * @p opts. Returns 1 when NAME is not a TLS option (nothing changed), 0
 * when applied, -1 on error with a message in @p err such as "invalid value
 * 'tlsv1' for 'tls_version' (expected tlsv1.3, tlsv1.2 or tlsv1.1)" or, in
 * a build without TLS, "'certfile' needs TLS, which this build of mqttb
 * does not have"; the caller puts "FILE:LINE: " before it. Values are
 * copied. A later line replaces an earlier one.
 */
int mqttb_cli_tls_option_set(struct mqttb_cli_tls_options *opts, const char *name, int argc,
                             char *const *argv, char *err, size_t errlen);

#if MQTTB_CLI_TLS

/* A listener's TLS context. */
struct mqttb_cli_tls_ctx;
/* One connection's TLS session. */
struct mqttb_cli_tls_conn;

/*
 * Check @p opts and build a context from them: certfile and keyfile are
 * needed; require_certificate needs cafile or capath; crlfile and the
 * use_*_as_username options need require_certificate. Every file is read
 * now. @p opts is copied. Returns NULL with a message in @p err naming the
 * option and what failed, such as "keyfile '/etc/k.pem' does not match
 * certfile '/etc/c.pem'" or "ciphers 'FOO': no cipher matches".
 */
struct mqttb_cli_tls_ctx *mqttb_cli_tls_ctx_new(const struct mqttb_cli_tls_options *opts, char *err,
                                                size_t errlen);

/*
 * For SIGHUP: build a new context from the same options, reading every
 * file again (new certificates before the old ones expire). On success it
 * is used for connections created from now on and 0 is returned;
 * connections that exist keep the one they started with until they are
 * freed. On failure nothing changes and -1 is returned with the reason in
 * @p err, as mqttb_cli_tls_ctx_new.
 */
int mqttb_cli_tls_ctx_reload(struct mqttb_cli_tls_ctx *ctx, char *err, size_t errlen);

/* The options the context was built from (its own copy). */
const struct mqttb_cli_tls_options *mqttb_cli_tls_ctx_options(const struct mqttb_cli_tls_ctx *ctx);

/* Free @p ctx (NULL: nothing). Connections made from it stay usable. */
void mqttb_cli_tls_ctx_free(struct mqttb_cli_tls_ctx *ctx);

/* What a call on a connection came to. */
enum mqttb_cli_tls_status {
  /* Handshake: complete. Read/write: bytes were moved (*n > 0; 0 only for
   * a write that was given nothing). */
  MQTTB_CLI_TLS_DONE,
  /* Nothing more now: call the same function again once the socket is
   * readable (EPOLLIN)... */
  MQTTB_CLI_TLS_WANT_READ,
  /* ...or writable (EPOLLOUT). A read can want a write and the other way
   * round; repeat the call that returned it. */
  MQTTB_CLI_TLS_WANT_WRITE,
  /* Read: the peer closed the connection (close_notify, or the TCP stream
   * ended between records); nothing more will come. */
  MQTTB_CLI_TLS_CLOSED,
  /* The connection cannot go on (the reason is in err): free it. */
  MQTTB_CLI_TLS_FAILED,
};

/*
 * A server-side session on the connected non-blocking socket @p fd, from
 * the context's current certificates and settings. @p fd stays the
 * caller's. Returns NULL when out of memory.
 */
struct mqttb_cli_tls_conn *mqttb_cli_tls_conn_new(struct mqttb_cli_tls_ctx *ctx, int fd);

/*
 * Take the handshake as far as the socket allows. DONE once it is
 * complete (then read and write); WANT_READ/WANT_WRITE: call again when
 * the socket is readable/writable; FAILED with the reason in @p err for
 * the log ("TLS handshake with ADDR failed: REASON"), such as "plain MQTT
 * instead of TLS (a CONNECT packet)", "the client closed the connection
 * during the handshake", or OpenSSL's reason ("unsupported protocol",
 * "peer did not return a certificate", "certificate verify failed:
 * certificate revoked").
 */
enum mqttb_cli_tls_status mqttb_cli_tls_conn_handshake(struct mqttb_cli_tls_conn *conn, char *err,
                                                       size_t errlen);

/*
 * Read decrypted bytes into @p buf (@p len > 0) until it is full or the
 * socket has no more. DONE with the count in @p n (bytes that arrived
 * before a close or an error come first; the next call reports it);
 * WANT_READ/WANT_WRITE with *n 0: nothing now; CLOSED; FAILED with the
 * reason in @p err. When @p buf was filled, more may be decrypted already
 * (mqttb_cli_tls_conn_pending): epoll does not report those.
 */
enum mqttb_cli_tls_status mqttb_cli_tls_conn_read(struct mqttb_cli_tls_conn *conn, void *buf,
                                                  size_t len, size_t *n, char *err, size_t errlen);

/* Decrypted bytes held that a read returns at once, without the socket
 * being readable. */
size_t mqttb_cli_tls_conn_pending(const struct mqttb_cli_tls_conn *conn);

/*
 * Encrypt and send the bytes of @p iov (@p iovcnt entries, in order) as
 * far as the socket takes them, small pieces gathered into records of up
 * to 16 KiB. DONE with the count sent in @p n (fewer than given when the
 * socket filled up: the next call, with the rest, most likely returns
 * WANT_WRITE; 0 when nothing was given); WANT_WRITE or WANT_READ with *n
 * 0: nothing went out, call again once the socket is writable/readable;
 * FAILED with the reason in @p err.
 *
 * As with mqttb_conn_output()/mqttb_conn_output_ack(): bytes reported in
 * @p n are gone, the next call starts after them. After WANT_WRITE or
 * WANT_READ the next call must start with the same bytes as this one and
 * give at least as many (OpenSSL holds them encrypted and sends what it
 * holds); they may be at another address, and more may follow. A shorter
 * retry is FAILED.
 */
enum mqttb_cli_tls_status mqttb_cli_tls_conn_writev(struct mqttb_cli_tls_conn *conn,
                                                    const struct iovec *iov, int iovcnt, size_t *n,
                                                    char *err, size_t errlen);

/* Send a close_notify if the socket takes it now (best effort, never
 * waits); only after a completed handshake and no failure. */
void mqttb_cli_tls_conn_shutdown(struct mqttb_cli_tls_conn *conn);

/* Free @p conn (NULL: nothing); the socket is left open. */
void mqttb_cli_tls_conn_free(struct mqttb_cli_tls_conn *conn);

/* The negotiated protocol ("TLSv1.3") and cipher ("TLS_AES_256_GCM_SHA384"),
 * for the log; valid while @p conn lives. Before the handshake is
 * complete: "none"/"(NONE)" as OpenSSL says. */
const char *mqttb_cli_tls_conn_version(const struct mqttb_cli_tls_conn *conn);
const char *mqttb_cli_tls_conn_cipher(const struct mqttb_cli_tls_conn *conn);

/*
 * The client certificate's first commonName as UTF-8 (use_identity_as_username),
 * or its subject in RFC 2253 form as Mosquitto prints it
 * (use_subject_as_username): "CN=test client,OU=Production,O=Server,C=GB",
 * most specific first, ',' '+' '"' '\' '<' '>' ';' escaped with '\' and
 * bytes outside ASCII as \XX. Newly allocated (the caller frees it), or
 * NULL: no certificate (none is asked for unless require_certificate), no
 * commonName, one with a NUL byte, or out of memory.
 */
char *mqttb_cli_tls_conn_peer_cn(const struct mqttb_cli_tls_conn *conn);
char *mqttb_cli_tls_conn_peer_subject(const struct mqttb_cli_tls_conn *conn);

/*
 * The user name its listener gives this client, after the handshake:
 * returns 0 with *username NULL when the listener takes it from CONNECT;
 * 1 with *username set (newly allocated) to the certificate's CN or
 * subject by use_identity_as_username / use_subject_as_username (a
 * CONNECT's user name and password are then ignored, as in Mosquitto);
 * -1 with *username NULL when the listener takes it from the certificate
 * but it gives none (see mqttb_cli_tls_conn_peer_cn) or memory ran out:
 * refuse the client with "bad user name or password", as Mosquitto does.
 */
int mqttb_cli_tls_conn_username(const struct mqttb_cli_tls_conn *conn, char **username);

#endif /* MQTTB_CLI_TLS */

#endif /* MQTTB_CLI_TLS_H */
