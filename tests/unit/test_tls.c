/* SPDX-License-Identifier: MIT */
/* cli/tls.c and cli/tls_options.c: mqttb's TLS listeners. The certificates
 * are made afresh by tests/tls/make_certs.sh before the tests run. Each
 * test drives a session of the module under test (the server) against an
 * OpenSSL client in the same thread, over a non-blocking socketpair: one
 * step of each side in turn, so every run goes the same way. Checked:
 * what building a context refuses and why; handshakes with and without
 * (good, unknown, expired, revoked) client certificates, cafile and capath,
 * and through a socket too small for the server's flight; user
 * names from the certificate (CN, RFC 2253 subject as Mosquitto prints
 * it); tls_version as a minimum; cipher lists; reload (new certificate
 * for new sessions, the old one kept when the new one is broken); plain
 * MQTT, other bytes and a cut-off ClientHello on a TLS port; reads
 * (pending bytes, close_notify, EOF) and writes of iovec arrays through a
 * full socket, with partial counts and retries from moved buffers. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../../cli/tls.h"

/* ---- certificates ---- */

#define CERTS_ENV "MQTTB_TEST_TLS_CERTS"

static char certs_dir[256];

/* In the runner, before any test: the workers inherit the environment. */
ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  snprintf(certs_dir, sizeof certs_dir, "/tmp/mqttb-tls-test-XXXXXX");
  if (mkdtemp(certs_dir) == NULL) {
    perror("mkdtemp");
    exit(1);
  }
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "OPENSSL='%s' sh '%s' '%s'", MQTTB_TEST_OPENSSL, MQTTB_TEST_MAKE_CERTS,
           certs_dir);
  if (system(cmd) != 0) {
    fprintf(stderr, "%s failed\n", cmd);
    exit(1);
  }
  setenv(CERTS_ENV, certs_dir, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  (void)stats;
  if (certs_dir[0] != '\0') {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", certs_dir);
    if (system(cmd) != 0) {
      fprintf(stderr, "%s failed\n", cmd);
    }
  }
}

/* The path of certificate file @p name; a few stay valid at once. */
static const char *cert(const char *name) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ % 8];
  const char *d = getenv(CERTS_ENV);
  cr_assert(not(eq(ptr, (void *)d, NULL)), "no certificates (%s not set)", CERTS_ENV);
  snprintf(p, 512, "%s/%s", d, name);
  return p;
}

static void setup(void) {
  /* Writes to a closed socketpair must fail with EPIPE, as in mqttb. */
  signal(SIGPIPE, SIG_IGN);
}

TestSuite(tls, .init = setup, .timeout = 60);

/* ---- server options and contexts ---- */

static void set(struct mqttb_cli_tls_options *o, const char *name, const char *value) {
  char err[256] = "";
  char *argv[] = {(char *)value, NULL};
  cr_assert(eq(int, mqttb_cli_tls_option_set(o, name, 1, argv, err, sizeof err), 0), "%s: %s", name,
            err);
}

/* certfile and keyfile of server.pem, nothing else. */
static void server_options(struct mqttb_cli_tls_options *o) {
  mqttb_cli_tls_options_init(o);
  set(o, "certfile", cert("server.pem"));
  set(o, "keyfile", cert("server.key"));
}

/* With require_certificate true and cafile ca.pem. */
static void verifying_options(struct mqttb_cli_tls_options *o) {
  server_options(o);
  set(o, "cafile", cert("ca.pem"));
  set(o, "require_certificate", "true");
}

static struct mqttb_cli_tls_ctx *ctx_ok(struct mqttb_cli_tls_options *o) {
  char err[256] = "";
  struct mqttb_cli_tls_ctx *ctx = mqttb_cli_tls_ctx_new(o, err, sizeof err);
  cr_assert(not(eq(ptr, ctx, NULL)), "ctx_new: %s", err);
  mqttb_cli_tls_options_free(o);
  return ctx;
}

/* Building fails with a message containing @p part. */
static void ctx_fails(struct mqttb_cli_tls_options *o, const char *part) {
  char err[256] = "";
  struct mqttb_cli_tls_ctx *ctx = mqttb_cli_tls_ctx_new(o, err, sizeof err);
  cr_assert(eq(ptr, ctx, NULL), "built, expected an error with \"%s\"", part);
  cr_assert(not(eq(ptr, strstr(err, part), NULL)), "error \"%s\" lacks \"%s\"", err, part);
  cr_assert(eq(u32, (uint32_t)ERR_peek_error(), 0), "the error queue is left empty");
  mqttb_cli_tls_options_free(o);
}

/* ---- the client side ---- */

struct client_opts {
  const char *cert; /* client certificate file name in the certs dir, NULL: none */
  int max_version;  /* 0: any */
  int min_version;
  const char *ciphers;
  const char *ciphersuites;
};

static SSL_CTX *client_ctx(const struct client_opts *co) {
  SSL_CTX *c = SSL_CTX_new(TLS_client_method());
  cr_assert(not(eq(ptr, c, NULL)));
  cr_assert(eq(int, SSL_CTX_load_verify_file(c, cert("ca.pem")), 1));
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
  if (co != NULL && co->cert != NULL) {
    char key[256];
    snprintf(key, sizeof key, "%.*s.key", (int)(strlen(co->cert) - 4), co->cert);
    cr_assert(eq(int, SSL_CTX_use_certificate_file(c, cert(co->cert), SSL_FILETYPE_PEM), 1));
    cr_assert(eq(int, SSL_CTX_use_PrivateKey_file(c, cert(key), SSL_FILETYPE_PEM), 1));
  }
  if (co != NULL && co->max_version != 0) {
    SSL_CTX_set_max_proto_version(c, co->max_version);
  }
  if (co != NULL && co->min_version != 0) {
    SSL_CTX_set_min_proto_version(c, co->min_version);
  }
  if (co != NULL && co->ciphers != NULL) {
    cr_assert(eq(int, SSL_CTX_set_cipher_list(c, co->ciphers), 1));
  }
  if (co != NULL && co->ciphersuites != NULL) {
    cr_assert(eq(int, SSL_CTX_set_ciphersuites(c, co->ciphersuites), 1));
  }
  return c;
}

struct pair {
  int sfd, cfd;
  struct mqttb_cli_tls_conn *srv;
  SSL *cli;
};

static void pair_sockets(struct pair *p) {
  int sv[2];
  cr_assert(eq(int, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0));
  p->sfd = sv[0];
  p->cfd = sv[1];
}

static struct pair pair_open(struct mqttb_cli_tls_ctx *ctx, const struct client_opts *co) {
  struct pair p;
  memset(&p, 0, sizeof p);
  pair_sockets(&p);
  p.srv = mqttb_cli_tls_conn_new(ctx, p.sfd);
  cr_assert(not(eq(ptr, p.srv, NULL)));
  SSL_CTX *cctx = client_ctx(co);
  p.cli = SSL_new(cctx);
  SSL_CTX_free(cctx); /* the session holds it */
  cr_assert(not(eq(ptr, p.cli, NULL)));
  SSL_set_fd(p.cli, p.cfd);
  SSL_set_connect_state(p.cli);
  SSL_set_tlsext_host_name(p.cli, "localhost");
  /* The server certificate is for localhost and 127.0.0.1. */
  SSL_set1_host(p.cli, "localhost");
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p.cli), "127.0.0.1");
  return p;
}

static void pair_close(struct pair *p) {
  mqttb_cli_tls_conn_free(p->srv);
  SSL_free(p->cli);
  if (p->sfd >= 0) {
    close(p->sfd);
  }
  if (p->cfd >= 0) {
    close(p->cfd);
  }
  ERR_clear_error();
}

struct hs {
  enum mqttb_cli_tls_status srv;
  int cli; /* 1: complete, -1: failed, 0: not yet */
  char why[256];
  int server_steps;
  int server_wanted_write; /* steps that returned WANT_WRITE */
};

static bool final(enum mqttb_cli_tls_status st) {
  return st == MQTTB_CLI_TLS_DONE || st == MQTTB_CLI_TLS_FAILED;
}

/* Alternate one server step and one client step until the server is done
 * or failed and the client has an outcome (or failed itself). */
static struct hs drive(struct pair *p) {
  struct hs r;
  memset(&r, 0, sizeof r);
  r.srv = MQTTB_CLI_TLS_WANT_READ;
  for (int round = 0; round < 50; round++) {
    if (!final(r.srv)) {
      r.srv = mqttb_cli_tls_conn_handshake(p->srv, r.why, sizeof r.why);
      r.server_steps++;
      r.server_wanted_write += r.srv == MQTTB_CLI_TLS_WANT_WRITE;
    }
    if (r.cli == 0) {
      ERR_clear_error();
      int rc = SSL_do_handshake(p->cli);
      if (rc == 1) {
        r.cli = 1;
      } else {
        int e = SSL_get_error(p->cli, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          r.cli = -1;
        }
      }
      ERR_clear_error();
    }
    if (r.srv == MQTTB_CLI_TLS_FAILED || (final(r.srv) && r.cli != 0)) {
      break;
    }
  }
  return r;
}

static void handshake_ok(struct pair *p) {
  struct hs r = drive(p);
  cr_assert(eq(int, r.srv, MQTTB_CLI_TLS_DONE), "server: %s", r.why);
  cr_assert(eq(int, r.cli, 1), "the client completes the handshake");
}

static void handshake_fails(struct pair *p, const char *part) {
  struct hs r = drive(p);
  cr_assert(eq(int, r.srv, MQTTB_CLI_TLS_FAILED), "the server handshake fails");
  cr_assert(not(eq(ptr, strstr(r.why, part), NULL)), "reason \"%s\" lacks \"%s\"", r.why, part);
}

/* Read exactly @p len bytes on the client; the server has sent them. */
static void client_read(struct pair *p, void *buf, size_t len) {
  size_t got = 0;
  for (int i = 0; got < len && i < 10000; i++) {
    size_t r = 0;
    if (SSL_read_ex(p->cli, (char *)buf + got, len - got, &r) == 1) {
      got += r;
    } else {
      int e = SSL_get_error(p->cli, 0);
      cr_assert(eq(int, e, SSL_ERROR_WANT_READ), "client read error %d", e);
      break;
    }
  }
  cr_assert(eq(sz, got, len), "the client read what was sent");
}

static void client_write(struct pair *p, const void *buf, size_t len) {
  size_t w = 0;
  cr_assert(eq(int, SSL_write_ex(p->cli, buf, len, &w), 1));
  cr_assert(eq(sz, w, len));
}

/* The server reads @p len bytes, in as many reads as it takes. */
static void server_read(struct pair *p, void *buf, size_t len) {
  size_t got = 0;
  char err[256] = "";
  for (int i = 0; got < len && i < 10000; i++) {
    size_t n = 0;
    enum mqttb_cli_tls_status st =
        mqttb_cli_tls_conn_read(p->srv, (char *)buf + got, len - got, &n, err, sizeof err);
    cr_assert(eq(int, st, MQTTB_CLI_TLS_DONE), "server read: %d %s", st, err);
    got += n;
  }
  cr_assert(eq(sz, got, len));
}

/* The server certificate's CN as the client saw it. */
static void server_cn(struct pair *p, char *out, size_t len) {
  X509 *peer = SSL_get0_peer_certificate(p->cli);
  cr_assert(not(eq(ptr, peer, NULL)));
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, out, (int)len);
}

/* ---- building contexts ---- */

Test(tls, ctx_needs_certfile_and_keyfile) {
  struct mqttb_cli_tls_options o;
  mqttb_cli_tls_options_init(&o);
  set(&o, "certfile", cert("server.pem"));
  ctx_fails(&o, "TLS needs both certfile and keyfile (keyfile is missing)");
  mqttb_cli_tls_options_init(&o);
  set(&o, "cafile", cert("ca.pem"));
  ctx_fails(&o, "TLS needs both certfile and keyfile (certfile is missing)");
}

Test(tls, ctx_names_the_file_that_cannot_be_read) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  set(&o, "certfile", "/nonexistent/server.pem");
  ctx_fails(&o, "certfile '/nonexistent/server.pem': No such file or directory");

  server_options(&o);
  set(&o, "keyfile", "/nonexistent/server.key");
  ctx_fails(&o, "keyfile '/nonexistent/server.key': No such file or directory");

  server_options(&o);
  set(&o, "certfile", cert("garbage.pem"));
  ctx_fails(&o, "garbage.pem': not a PEM certificate (no start line)");

  server_options(&o);
  set(&o, "keyfile", cert("garbage.pem"));
  ctx_fails(&o, "garbage.pem': not a PEM private key");

  verifying_options(&o);
  set(&o, "cafile", "/nonexistent/ca.pem");
  ctx_fails(&o, "cafile '/nonexistent/ca.pem': No such file or directory");

  verifying_options(&o);
  set(&o, "cafile", cert("garbage.pem"));
  ctx_fails(&o, "garbage.pem': no certificate or crl found");

  verifying_options(&o);
  set(&o, "capath", "/nonexistent");
  ctx_fails(&o, "capath '/nonexistent': No such file or directory");

  verifying_options(&o);
  set(&o, "capath", cert("ca.pem"));
  ctx_fails(&o, "ca.pem': not a directory");

  verifying_options(&o);
  set(&o, "crlfile", cert("garbage.pem"));
  ctx_fails(&o, "garbage.pem': not a PEM revocation list (no start line)");

  verifying_options(&o);
  set(&o, "crlfile", "/nonexistent/crl.pem");
  ctx_fails(&o, "crlfile '/nonexistent/crl.pem': No such file or directory");
}

Test(tls, ctx_refuses_a_key_that_does_not_match_the_certificate) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  set(&o, "keyfile", cert("other.key"));
  char want[600];
  snprintf(want, sizeof want, "keyfile '%s' does not match certfile '%s'", cert("other.key"),
           cert("server.pem"));
  ctx_fails(&o, want);
}

Test(tls, ctx_refuses_an_encrypted_key_without_asking_for_a_passphrase) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  set(&o, "keyfile", cert("server-encrypted.key"));
  /* Standard input is a terminal or not: nothing may be read from it. */
  ctx_fails(&o, "server-encrypted.key' is encrypted; mqttb needs it without a passphrase");
}

Test(tls, ctx_refuses_bad_cipher_lists) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  set(&o, "ciphers", "NOT-A-CIPHER");
  ctx_fails(&o, "ciphers 'NOT-A-CIPHER': no cipher match");

  server_options(&o);
  set(&o, "ciphers_tls1.3", "TLS_NOT_A_SUITE");
  ctx_fails(&o, "ciphers_tls1.3 'TLS_NOT_A_SUITE'");
}

Test(tls, ctx_refuses_options_that_cannot_work) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  set(&o, "require_certificate", "true");
  ctx_fails(&o, "require_certificate true needs cafile or capath");

  const char *needs[] = {"use_identity_as_username", "use_subject_as_username"};
  for (int i = 0; i < 2; i++) {
    server_options(&o);
    set(&o, "cafile", cert("ca.pem"));
    set(&o, needs[i], "true");
    char want[128];
    snprintf(want, sizeof want, "%s needs require_certificate true", needs[i]);
    ctx_fails(&o, want);
  }
  server_options(&o);
  set(&o, "cafile", cert("ca.pem"));
  set(&o, "crlfile", cert("crl.pem"));
  ctx_fails(&o, "crlfile needs require_certificate true");

  /* Options filled by hand get the parser's check too. */
  server_options(&o);
  o.tls_version = strdup("tlsv1.0");
  ctx_fails(&o, "invalid value 'tlsv1.0' for 'tls_version'");
}

Test(tls, ctx_keeps_its_own_copy_of_the_options) {
  struct mqttb_cli_tls_options o;
  verifying_options(&o);
  set(&o, "use_identity_as_username", "true");
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o); /* frees o */
  const struct mqttb_cli_tls_options *c = mqttb_cli_tls_ctx_options(ctx);
  cr_assert(eq(str, c->certfile, (char *)cert("server.pem")));
  cr_assert(eq(str, c->cafile, (char *)cert("ca.pem")));
  cr_assert(c->require_certificate);
  cr_assert(c->use_identity_as_username);
  mqttb_cli_tls_ctx_free(ctx);
}

/* ---- handshakes ---- */

Test(tls, handshake_and_data_both_ways) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct pair p = pair_open(ctx, NULL);
  /* Not complete before the client said anything. */
  char err[256] = "";
  cr_assert(eq(int, mqttb_cli_tls_conn_handshake(p.srv, err, sizeof err), MQTTB_CLI_TLS_WANT_READ));
  handshake_ok(&p);
  /* The client checked the server certificate for localhost and 127.0.0.1. */
  cr_assert(eq(long, SSL_get_verify_result(p.cli), X509_V_OK));
  cr_assert(eq(str, (char *)mqttb_cli_tls_conn_version(p.srv), "TLSv1.3"));
  cr_assert(eq(str, (char *)mqttb_cli_tls_conn_cipher(p.srv), (char *)SSL_get_cipher_name(p.cli)));
  cr_assert(eq(int, mqttb_cli_tls_conn_handshake(p.srv, err, sizeof err), MQTTB_CLI_TLS_DONE),
            "a completed handshake stays complete");

  client_write(&p, "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 14);
  char in[64];
  server_read(&p, in, 14);
  cr_assert(eq(int, memcmp(in, "\x10\x0c\x00\x04MQTT", 8), 0));

  struct iovec iov[3] = {{"\x20\x02", 2}, {"\x00", 1}, {"\x00", 1}};
  size_t n = 0;
  cr_assert(
      eq(int, mqttb_cli_tls_conn_writev(p.srv, iov, 3, &n, err, sizeof err), MQTTB_CLI_TLS_DONE));
  cr_assert(eq(sz, n, 4));
  client_read(&p, in, 4);
  cr_assert(eq(int, memcmp(in, "\x20\x02\x00\x00", 4), 0));

  /* No client certificate was asked for: no identity. */
  cr_assert(eq(ptr, mqttb_cli_tls_conn_peer_cn(p.srv), NULL));
  char *user = (char *)"x";
  cr_assert(eq(int, mqttb_cli_tls_conn_username(p.srv, &user), 0));
  cr_assert(eq(ptr, user, NULL));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, no_client_certificate_is_asked_for_without_require_certificate) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  set(&o, "cafile", cert("ca.pem"));
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct client_opts co = {.cert = "client.pem"};
  struct pair p = pair_open(ctx, &co);
  handshake_ok(&p);
  cr_assert(eq(ptr, mqttb_cli_tls_conn_peer_cn(p.srv), NULL), "no certificate was sent");
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, require_certificate_with_a_good_certificate_gives_its_identity) {
  struct mqttb_cli_tls_options o;
  verifying_options(&o);
  set(&o, "use_identity_as_username", "true");
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  for (int v = 0; v < 2; v++) {
    struct client_opts co = {.cert = "client.pem", .max_version = v ? TLS1_2_VERSION : 0};
    struct pair p = pair_open(ctx, &co);
    handshake_ok(&p);
    cr_assert(eq(str, (char *)mqttb_cli_tls_conn_version(p.srv), v ? "TLSv1.2" : "TLSv1.3"));
    char *cn = mqttb_cli_tls_conn_peer_cn(p.srv);
    cr_assert(eq(str, cn, "test client"));
    free(cn);
    /* Mosquitto's man page example, in the order it prints it. */
    char *subject = mqttb_cli_tls_conn_peer_subject(p.srv);
    cr_assert(eq(str, subject,
                 "CN=test client,OU=Production,O=Server,L=Nottingham,ST=Nottinghamshire,C=GB"));
    free(subject);
    char *user = NULL;
    cr_assert(eq(int, mqttb_cli_tls_conn_username(p.srv, &user), 1));
    cr_assert(eq(str, user, "test client"));
    free(user);
    pair_close(&p);
  }
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, use_subject_as_username_gives_the_rfc2253_subject) {
  struct mqttb_cli_tls_options o;
  verifying_options(&o);
  set(&o, "use_subject_as_username", "true");
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct client_opts co = {.cert = "client.pem"};
  struct pair p = pair_open(ctx, &co);
  handshake_ok(&p);
  char *user = NULL;
  cr_assert(eq(int, mqttb_cli_tls_conn_username(p.srv, &user), 1));
  cr_assert(
      eq(str, user, "CN=test client,OU=Production,O=Server,L=Nottingham,ST=Nottinghamshire,C=GB"));
  free(user);
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, use_identity_wins_over_use_subject) {
  struct mqttb_cli_tls_options o;
  verifying_options(&o);
  set(&o, "use_subject_as_username", "true");
  set(&o, "use_identity_as_username", "true");
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct client_opts co = {.cert = "client.pem"};
  struct pair p = pair_open(ctx, &co);
  handshake_ok(&p);
  char *user = NULL;
  cr_assert(eq(int, mqttb_cli_tls_conn_username(p.srv, &user), 1));
  cr_assert(eq(str, user, "test client"));
  free(user);
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, identity_is_utf8_and_subject_escapes_as_mosquitto) {
  struct mqttb_cli_tls_options o;
  verifying_options(&o);
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct client_opts co = {.cert = "utf8.pem"};
  struct pair p = pair_open(ctx, &co);
  handshake_ok(&p);
  char *cn = mqttb_cli_tls_conn_peer_cn(p.srv);
  cr_assert(eq(str, cn, "J\xc3\xb6rg"));
  free(cn);
  /* XN_FLAG_RFC2253: ',' and '+' escaped, bytes above 0x7f as \XX. */
  char *subject = mqttb_cli_tls_conn_peer_subject(p.srv);
  cr_assert(eq(str, subject, "CN=J\\C3\\B6rg,O=a\\,b\\+c"));
  free(subject);
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, a_certificate_without_cn_gives_no_identity) {
  struct mqttb_cli_tls_options o;
  verifying_options(&o);
  set(&o, "use_identity_as_username", "true");
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct client_opts co = {.cert = "nocn.pem"};
  struct pair p = pair_open(ctx, &co);
  handshake_ok(&p);
  cr_assert(eq(ptr, mqttb_cli_tls_conn_peer_cn(p.srv), NULL));
  char *subject = mqttb_cli_tls_conn_peer_subject(p.srv);
  cr_assert(eq(str, subject, "OU=no common name,O=mqttb tests"));
  free(subject);
  char *user = (char *)"x";
  cr_assert(eq(int, mqttb_cli_tls_conn_username(p.srv, &user), -1), "refuse the client");
  cr_assert(eq(ptr, user, NULL));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, capath_verifies_client_certificates) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  set(&o, "capath", cert("capath"));
  set(&o, "require_certificate", "true");
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct client_opts good = {.cert = "client.pem"};
  struct pair p = pair_open(ctx, &good);
  handshake_ok(&p);
  pair_close(&p);
  struct client_opts rogue = {.cert = "rogue.pem"};
  p = pair_open(ctx, &rogue);
  handshake_fails(&p, "certificate verify failed");
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, require_certificate_refuses_a_client_without_one) {
  struct mqttb_cli_tls_options o;
  verifying_options(&o);
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  for (int v = 0; v < 2; v++) {
    struct client_opts co = {.max_version = v ? TLS1_2_VERSION : 0};
    struct pair p = pair_open(ctx, &co);
    handshake_fails(&p, "peer did not return a certificate");
    pair_close(&p);
  }
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, require_certificate_refuses_unknown_and_expired_certificates) {
  struct mqttb_cli_tls_options o;
  verifying_options(&o);
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct client_opts rogue = {.cert = "rogue.pem"};
  struct pair p = pair_open(ctx, &rogue);
  handshake_fails(&p, "certificate verify failed: unable to get local issuer certificate");
  pair_close(&p);
  struct client_opts expired = {.cert = "expired.pem"};
  p = pair_open(ctx, &expired);
  handshake_fails(&p, "certificate verify failed: certificate has expired");
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, crlfile_refuses_a_revoked_certificate) {
  struct mqttb_cli_tls_options o;
  verifying_options(&o);
  set(&o, "crlfile", cert("crl.pem"));
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct client_opts revoked = {.cert = "revoked.pem"};
  struct pair p = pair_open(ctx, &revoked);
  handshake_fails(&p, "certificate verify failed: certificate revoked");
  pair_close(&p);
  /* The others of that CA still get in. */
  struct client_opts good = {.cert = "client.pem"};
  p = pair_open(ctx, &good);
  handshake_ok(&p);
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);

  /* Without the CRL the revoked one is just another certificate. */
  verifying_options(&o);
  ctx = ctx_ok(&o);
  p = pair_open(ctx, &revoked);
  handshake_ok(&p);
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, tls_version_is_the_minimum) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  set(&o, "tls_version", "tlsv1.3");
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct client_opts tls12 = {.max_version = TLS1_2_VERSION};
  struct pair p = pair_open(ctx, &tls12);
  handshake_fails(&p, "unsupported protocol");
  pair_close(&p);
  p = pair_open(ctx, NULL);
  handshake_ok(&p);
  cr_assert(eq(str, (char *)mqttb_cli_tls_conn_version(p.srv), "TLSv1.3"));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);

  /* tlsv1.2 takes 1.3 as well (Mosquitto 1.6 would have refused it). */
  server_options(&o);
  set(&o, "tls_version", "tlsv1.2");
  ctx = ctx_ok(&o);
  p = pair_open(ctx, &tls12);
  handshake_ok(&p);
  cr_assert(eq(str, (char *)mqttb_cli_tls_conn_version(p.srv), "TLSv1.2"));
  pair_close(&p);
  p = pair_open(ctx, NULL);
  handshake_ok(&p);
  cr_assert(eq(str, (char *)mqttb_cli_tls_conn_version(p.srv), "TLSv1.3"));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, default_minimum_is_tls_1_2) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  /* A client that offers nothing newer than TLS 1.1 (its security level
   * lowered so that it offers it at all). */
  struct client_opts tls11 = {.max_version = TLS1_1_VERSION, .ciphers = "DEFAULT:@SECLEVEL=0"};
  struct pair p = pair_open(ctx, &tls11);
  handshake_fails(&p, "unsupported protocol");
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, cipher_lists_choose_the_cipher) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  set(&o, "ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305");
  set(&o, "ciphers_tls1.3", "TLS_CHACHA20_POLY1305_SHA256");
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct client_opts tls12 = {.max_version = TLS1_2_VERSION};
  struct pair p = pair_open(ctx, &tls12);
  handshake_ok(&p);
  cr_assert(eq(str, (char *)mqttb_cli_tls_conn_cipher(p.srv), "ECDHE-ECDSA-CHACHA20-POLY1305"));
  pair_close(&p);
  p = pair_open(ctx, NULL);
  handshake_ok(&p);
  cr_assert(eq(str, (char *)mqttb_cli_tls_conn_cipher(p.srv), "TLS_CHACHA20_POLY1305_SHA256"));
  pair_close(&p);
  /* A client with none of them in common is refused. */
  struct client_opts aes = {.max_version = TLS1_2_VERSION,
                            .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"};
  p = pair_open(ctx, &aes);
  handshake_fails(&p, "no shared cipher");
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, handshake_waits_for_a_full_socket) {
  /* A certificate chain far larger than the socket takes at once. */
  char chain[600];
  snprintf(chain, sizeof chain, "%s", cert("long-chain.pem"));
  char cmd[2000];
  snprintf(cmd, sizeof cmd, "cat '%s' > '%s' && for i in $(seq 40); do cat '%s' >> '%s'; done",
           cert("server.pem"), chain, cert("ca.pem"), chain);
  cr_assert(eq(int, system(cmd), 0));
  struct mqttb_cli_tls_options o;
  server_options(&o);
  set(&o, "certfile", chain);
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct pair p = pair_open(ctx, NULL);
  int small = 4096;
  setsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(p.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct hs r = drive(&p);
  cr_assert(eq(int, r.srv, MQTTB_CLI_TLS_DONE), "server: %s", r.why);
  cr_assert(eq(int, r.cli, 1));
  cr_assert(lt(int, 0, r.server_wanted_write), "the server waited for the socket");
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

/* ---- reload ---- */

static void copy_file(const char *from, const char *to) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
  cr_assert(eq(int, system(cmd), 0), "%s", cmd);
}

Test(tls, reload_swaps_in_new_certificates_and_keeps_the_old_on_failure) {
  char live_cert[600], live_key[600];
  snprintf(live_cert, sizeof live_cert, "%s", cert("live.pem"));
  snprintf(live_key, sizeof live_key, "%s", cert("live.key"));
  copy_file(cert("server.pem"), live_cert);
  copy_file(cert("server.key"), live_key);
  struct mqttb_cli_tls_options o;
  mqttb_cli_tls_options_init(&o);
  set(&o, "certfile", live_cert);
  set(&o, "keyfile", live_key);
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  char cn[64];
  struct pair a = pair_open(ctx, NULL);
  handshake_ok(&a);
  server_cn(&a, cn, sizeof cn);
  cr_assert(eq(str, cn, "localhost"));

  /* New certificate and key in place: new sessions get them. */
  copy_file(cert("server2.pem"), live_cert);
  copy_file(cert("server2.key"), live_key);
  char err[256] = "";
  cr_assert(eq(int, mqttb_cli_tls_ctx_reload(ctx, err, sizeof err), 0), "%s", err);
  struct pair b = pair_open(ctx, NULL);
  handshake_ok(&b);
  server_cn(&b, cn, sizeof cn);
  cr_assert(eq(str, cn, "localhost-2"));

  /* A broken certificate: the reload fails, naming it, and changes nothing. */
  copy_file(cert("garbage.pem"), live_cert);
  cr_assert(eq(int, mqttb_cli_tls_ctx_reload(ctx, err, sizeof err), -1));
  char want[700];
  snprintf(want, sizeof want, "certfile '%s'", live_cert);
  cr_assert(not(eq(ptr, strstr(err, want), NULL)), "%s", err);
  /* Half a pair (new certificate, old key) is no better. */
  copy_file(cert("server.pem"), live_cert);
  cr_assert(eq(int, mqttb_cli_tls_ctx_reload(ctx, err, sizeof err), -1));
  cr_assert(not(eq(ptr, strstr(err, "does not match"), NULL)), "%s", err);
  struct pair c = pair_open(ctx, NULL);
  handshake_ok(&c);
  server_cn(&c, cn, sizeof cn);
  cr_assert(eq(str, cn, "localhost-2"));

  /* The sessions made before go on, even with the context gone. */
  mqttb_cli_tls_ctx_free(ctx);
  struct pair *all[] = {&a, &b, &c};
  for (int i = 0; i < 3; i++) {
    client_write(all[i], "ping", 4);
    char in[4];
    server_read(all[i], in, 4);
    cr_assert(eq(int, memcmp(in, "ping", 4), 0));
    struct iovec iov = {"pong", 4};
    size_t n = 0;
    cr_assert(eq(int, mqttb_cli_tls_conn_writev(all[i]->srv, &iov, 1, &n, err, sizeof err),
                 MQTTB_CLI_TLS_DONE));
    client_read(all[i], in, 4);
    cr_assert(eq(int, memcmp(in, "pong", 4), 0));
    pair_close(all[i]);
  }
}

/* ---- what is not TLS ---- */

Test(tls, plain_mqtt_on_a_tls_port_fails_the_handshake_at_once) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct pair p;
  pair_sockets(&p);
  p.srv = mqttb_cli_tls_conn_new(ctx, p.sfd);
  p.cli = NULL;
  static const char connect[] = "\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04test";
  cr_assert(eq(sz, (size_t)write(p.cfd, connect, sizeof connect - 1), sizeof connect - 1));
  char err[256] = "";
  cr_assert(eq(int, mqttb_cli_tls_conn_handshake(p.srv, err, sizeof err), MQTTB_CLI_TLS_FAILED));
  cr_assert(eq(str, err, "plain MQTT instead of TLS (a CONNECT packet)"));
  /* Nothing was sent back to it, and it stays failed. */
  char b;
  cr_assert(eq(sz, (size_t)read(p.cfd, &b, 1), (size_t)-1));
  cr_assert(eq(int, errno, EAGAIN));
  cr_assert(eq(int, mqttb_cli_tls_conn_handshake(p.srv, err, sizeof err), MQTTB_CLI_TLS_FAILED));
  mqttb_cli_tls_conn_shutdown(p.srv); /* no close_notify after a failure */
  cr_assert(eq(sz, (size_t)read(p.cfd, &b, 1), (size_t)-1));
  pair_close(&p);

  pair_sockets(&p);
  p.srv = mqttb_cli_tls_conn_new(ctx, p.sfd);
  cr_assert(eq(sz, (size_t)write(p.cfd, "GET / HTTP/1.1\r\n", 16), 16));
  cr_assert(eq(int, mqttb_cli_tls_conn_handshake(p.srv, err, sizeof err), MQTTB_CLI_TLS_FAILED));
  cr_assert(eq(str, err, "not TLS (the first byte is 0x47, a ClientHello starts with 0x16)"));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, garbage_after_a_handshake_byte_fails_with_openssl_reason) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  struct pair p;
  pair_sockets(&p);
  p.srv = mqttb_cli_tls_conn_new(ctx, p.sfd);
  p.cli = NULL;
  cr_assert(eq(sz, (size_t)write(p.cfd, "\x16\x09\x09garbage", 10), 10));
  char err[256] = "";
  cr_assert(eq(int, mqttb_cli_tls_conn_handshake(p.srv, err, sizeof err), MQTTB_CLI_TLS_FAILED));
  cr_assert(eq(str, err, "wrong version number"));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, a_cut_off_client_hello_waits_then_fails_at_eof) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  struct mqttb_cli_tls_ctx *ctx = ctx_ok(&o);
  /* A real ClientHello, taken off the wire. */
  struct pair p = pair_open(ctx, NULL);
  ERR_clear_error();
  cr_assert(eq(int, SSL_do_handshake(p.cli), -1));
  unsigned char hello[4096];
  ssize_t len = read(p.sfd, hello, sizeof hello);
  cr_assert(lt(sz, 100, (size_t)len));
  pair_close(&p);

  struct pair q;
  pair_sockets(&q);
  q.srv = mqttb_cli_tls_conn_new(ctx, q.sfd);
  q.cli = NULL;
  char err[256] = "";
  cr_assert(eq(int, mqttb_cli_tls_conn_handshake(q.srv, err, sizeof err), MQTTB_CLI_TLS_WANT_READ),
            "nothing yet");
  cr_assert(eq(sz, (size_t)write(q.cfd, hello, (size_t)len / 2), (size_t)len / 2));
  /* However often it is called, it only waits for more: the loop sleeps
   * in epoll_wait until the connect timeout. */
  for (int i = 0; i < 5; i++) {
    cr_assert(
        eq(int, mqttb_cli_tls_conn_handshake(q.srv, err, sizeof err), MQTTB_CLI_TLS_WANT_READ));
  }
  shutdown(q.cfd, SHUT_WR);
  cr_assert(eq(int, mqttb_cli_tls_conn_handshake(q.srv, err, sizeof err), MQTTB_CLI_TLS_FAILED));
  cr_assert(eq(str, err, "the client closed the connection during the handshake"));
  pair_close(&q);

  /* Closed before a single byte. */
  pair_sockets(&q);
  q.srv = mqttb_cli_tls_conn_new(ctx, q.sfd);
  q.cli = NULL;
  shutdown(q.cfd, SHUT_WR);
  cr_assert(eq(int, mqttb_cli_tls_conn_handshake(q.srv, err, sizeof err), MQTTB_CLI_TLS_FAILED));
  cr_assert(eq(str, err, "the client closed the connection before the handshake"));
  pair_close(&q);
  mqttb_cli_tls_ctx_free(ctx);
}

/* ---- reading ---- */

static struct pair connected(struct mqttb_cli_tls_ctx **ctx) {
  struct mqttb_cli_tls_options o;
  server_options(&o);
  *ctx = ctx_ok(&o);
  struct pair p = pair_open(*ctx, NULL);
  handshake_ok(&p);
  return p;
}

Test(tls, read_reports_pending_bytes_a_small_buffer_left) {
  struct mqttb_cli_tls_ctx *ctx;
  struct pair p = connected(&ctx);
  static unsigned char out[40000], in[40000];
  for (size_t i = 0; i < sizeof out; i++) {
    out[i] = (unsigned char)(i * 7);
  }
  client_write(&p, out, sizeof out); /* three records */
  char err[256] = "";
  size_t n = 0;
  cr_assert(
      eq(int, mqttb_cli_tls_conn_read(p.srv, in, 1000, &n, err, sizeof err), MQTTB_CLI_TLS_DONE));
  cr_assert(eq(sz, n, 1000));
  /* The rest of the first record is decrypted already: epoll would not say. */
  cr_assert(eq(sz, mqttb_cli_tls_conn_pending(p.srv), 16384 - 1000));
  size_t got = n;
  cr_assert(eq(int, mqttb_cli_tls_conn_read(p.srv, in + got, sizeof in - got, &n, err, sizeof err),
               MQTTB_CLI_TLS_DONE));
  got += n;
  cr_assert(eq(sz, got, sizeof out), "one read takes every record there is");
  cr_assert(eq(int, memcmp(in, out, sizeof out), 0));
  cr_assert(eq(sz, mqttb_cli_tls_conn_pending(p.srv), 0));
  cr_assert(eq(int, mqttb_cli_tls_conn_read(p.srv, in, sizeof in, &n, err, sizeof err),
               MQTTB_CLI_TLS_WANT_READ));
  cr_assert(eq(sz, n, 0));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, read_gives_the_bytes_before_a_close_notify_then_closed) {
  struct mqttb_cli_tls_ctx *ctx;
  struct pair p = connected(&ctx);
  client_write(&p, "\xe0\x00", 2); /* DISCONNECT */
  SSL_shutdown(p.cli);
  char in[16], err[256] = "";
  size_t n = 0;
  cr_assert(eq(int, mqttb_cli_tls_conn_read(p.srv, in, sizeof in, &n, err, sizeof err),
               MQTTB_CLI_TLS_DONE));
  cr_assert(eq(sz, n, 2));
  cr_assert(eq(int, mqttb_cli_tls_conn_read(p.srv, in, sizeof in, &n, err, sizeof err),
               MQTTB_CLI_TLS_CLOSED));
  cr_assert(eq(int, mqttb_cli_tls_conn_read(p.srv, in, sizeof in, &n, err, sizeof err),
               MQTTB_CLI_TLS_CLOSED),
            "and stays closed");
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, read_takes_a_bare_tcp_close_as_closed) {
  struct mqttb_cli_tls_ctx *ctx;
  struct pair p = connected(&ctx);
  client_write(&p, "abc", 3);
  shutdown(p.cfd, SHUT_WR); /* no close_notify: most MQTT clients just close */
  char in[16], err[256] = "";
  size_t n = 0;
  cr_assert(eq(int, mqttb_cli_tls_conn_read(p.srv, in, sizeof in, &n, err, sizeof err),
               MQTTB_CLI_TLS_DONE));
  cr_assert(eq(sz, n, 3));
  cr_assert(eq(int, mqttb_cli_tls_conn_read(p.srv, in, sizeof in, &n, err, sizeof err),
               MQTTB_CLI_TLS_CLOSED));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, read_fails_on_a_forged_record_after_good_bytes) {
  struct mqttb_cli_tls_ctx *ctx;
  struct pair p = connected(&ctx);
  client_write(&p, "abc", 3);
  /* An application data record that does not decrypt. */
  static const unsigned char forged[] = {
      0x17, 0x03, 0x03, 0x00, 0x20, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
      15,   16,   17,   18,   19,   20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  cr_assert(eq(sz, (size_t)write(p.cfd, forged, sizeof forged), sizeof forged));
  char in[16], err[256] = "";
  size_t n = 0;
  cr_assert(eq(int, mqttb_cli_tls_conn_read(p.srv, in, sizeof in, &n, err, sizeof err),
               MQTTB_CLI_TLS_DONE),
            "the good bytes first");
  cr_assert(eq(sz, n, 3));
  cr_assert(eq(int, mqttb_cli_tls_conn_read(p.srv, in, sizeof in, &n, err, sizeof err),
               MQTTB_CLI_TLS_FAILED));
  cr_assert(eq(str, err, "decryption failed or bad record mac"));
  cr_assert(eq(sz, n, 0));
  struct iovec iov = {"x", 1};
  cr_assert(
      eq(int, mqttb_cli_tls_conn_writev(p.srv, &iov, 1, &n, err, sizeof err), MQTTB_CLI_TLS_FAILED),
      "nothing more is sent");
  mqttb_cli_tls_conn_shutdown(p.srv);
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, shutdown_sends_close_notify) {
  struct mqttb_cli_tls_ctx *ctx;
  struct pair p = connected(&ctx);
  mqttb_cli_tls_conn_shutdown(p.srv);
  char in[4];
  size_t r;
  cr_assert(eq(int, SSL_read_ex(p.cli, in, sizeof in, &r), 0));
  cr_assert(eq(int, SSL_get_error(p.cli, 0), SSL_ERROR_ZERO_RETURN));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

/* ---- writing ---- */

/* Pending output as the library keeps it: a stream of which the first
 * `acked` bytes are gone, handed out as iovecs of uneven sizes that end at
 * fixed places (the first one cut where the acknowledged bytes end). Each peek copies what is left
 * to a fresh buffer, so a retried write comes from another address. */
struct output {
  unsigned char *data;
  size_t len, acked;
  unsigned char *copy;
};

static int output_peek(struct output *o, struct iovec *iov, int max) {
  free(o->copy);
  o->copy = malloc(o->len - o->acked + 1);
  memcpy(o->copy, o->data + o->acked, o->len - o->acked);
  /* Pieces of these sizes, over and over, from the start of the stream. */
  static const size_t sizes[] = {37, 5000, 3, 20000, 700, 1};
  size_t end = 0;
  int k = 0;
  while (end <= o->acked) {
    end += sizes[k++ % 6];
  }
  int n = 0;
  size_t pos = o->acked;
  while (pos < o->len && n < max) {
    if (end > o->len) {
      end = o->len;
    }
    iov[n].iov_base = o->copy + (pos - o->acked);
    iov[n].iov_len = end - pos;
    pos = end;
    end += sizes[k++ % 6];
    n++;
  }
  return n;
}

Test(tls, writev_through_a_full_socket_counts_what_went_out) {
  struct mqttb_cli_tls_ctx *ctx;
  struct pair p = connected(&ctx);
  int small = 4096;
  setsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(p.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);

  struct output o = {.len = 1u << 20};
  o.data = malloc(o.len);
  for (size_t i = 0; i < o.len; i++) {
    o.data[i] = (unsigned char)(i ^ (i >> 8));
  }
  unsigned char *received = malloc(o.len);
  size_t got = 0;
  int blocked = 0, partial = 0, calls = 0;
  char err[256] = "";
  while (o.acked < o.len || got < o.len) {
    cr_assert(lt(int, calls++, 100000), "no progress");
    struct iovec iov[64];
    int n = output_peek(&o, iov, 64);
    size_t offered = 0;
    for (int i = 0; i < n; i++) {
      offered += iov[i].iov_len;
    }
    size_t w = 0;
    enum mqttb_cli_tls_status st =
        n > 0 ? mqttb_cli_tls_conn_writev(p.srv, iov, n, &w, err, sizeof err) : MQTTB_CLI_TLS_DONE;
    if (st == MQTTB_CLI_TLS_DONE) {
      cr_assert(le(sz, w, offered));
      cr_assert(n == 0 || w > 0, "DONE moves bytes");
      partial += w < offered;
      o.acked += w; /* mqttb_conn_output_ack */
    } else {
      cr_assert(eq(int, st, MQTTB_CLI_TLS_WANT_WRITE), "%s", err);
      cr_assert(eq(sz, w, 0));
      blocked++;
    }
    /* The client takes a little, now and then. */
    if (st != MQTTB_CLI_TLS_DONE || o.acked == o.len) {
      size_t r = 0;
      if (SSL_read_ex(p.cli, received + got, o.len - got < 3000 ? o.len - got : 3000, &r) == 1) {
        got += r;
      } else {
        cr_assert(eq(int, SSL_get_error(p.cli, 0), SSL_ERROR_WANT_READ));
      }
    }
  }
  cr_assert(lt(int, 10, blocked), "the socket was full many times (%d)", blocked);
  cr_assert(lt(int, 10, partial), "writes took part of what was offered (%d)", partial);
  cr_assert(eq(sz, got, o.len));
  cr_assert(eq(int, memcmp(received, o.data, o.len), 0), "every byte, once, in order");
  free(o.copy);
  free(o.data);
  free(received);
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, writev_gathers_small_pieces_into_one_record) {
  struct mqttb_cli_tls_ctx *ctx;
  struct pair p = connected(&ctx);
  /* Drain what the handshake left (session tickets) first. */
  char drain[4096];
  size_t r;
  SSL_read_ex(p.cli, drain, sizeof drain, &r);
  ERR_clear_error();
  struct iovec iov[100];
  char bytes[100];
  for (int i = 0; i < 100; i++) {
    bytes[i] = (char)i;
    iov[i].iov_base = &bytes[i];
    iov[i].iov_len = 1;
  }
  size_t n = 0;
  char err[256] = "";
  cr_assert(
      eq(int, mqttb_cli_tls_conn_writev(p.srv, iov, 100, &n, err, sizeof err), MQTTB_CLI_TLS_DONE));
  cr_assert(eq(sz, n, 100));
  /* One TLS 1.3 record: 5 header bytes, 100 + 1 content type + 16 tag. */
  unsigned char wire[1024];
  ssize_t len = recv(p.cfd, wire, sizeof wire, MSG_PEEK);
  cr_assert(eq(sz, (size_t)len, 5 + 100 + 1 + 16));
  char in[100];
  client_read(&p, in, 100);
  cr_assert(eq(int, memcmp(in, bytes, 100), 0));
  /* Nothing given: nothing to do. */
  cr_assert(
      eq(int, mqttb_cli_tls_conn_writev(p.srv, iov, 0, &n, err, sizeof err), MQTTB_CLI_TLS_DONE));
  cr_assert(eq(sz, n, 0));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}

Test(tls, writev_refuses_a_retry_shorter_than_what_it_must_repeat) {
  struct mqttb_cli_tls_ctx *ctx;
  struct pair p = connected(&ctx);
  int small = 4096;
  setsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  static unsigned char big[1 << 16];
  struct iovec iov = {big, sizeof big};
  size_t n = 0;
  char err[256] = "";
  enum mqttb_cli_tls_status st;
  /* All zeros: what follows the bytes sent is the same as what came first. */
  while ((st = mqttb_cli_tls_conn_writev(p.srv, &iov, 1, &n, err, sizeof err)) ==
         MQTTB_CLI_TLS_DONE) {
    cr_assert(lt(sz, 0, n));
  }
  cr_assert(eq(int, st, MQTTB_CLI_TLS_WANT_WRITE));
  iov.iov_len = 10;
  cr_assert(eq(int, mqttb_cli_tls_conn_writev(p.srv, &iov, 1, &n, err, sizeof err),
               MQTTB_CLI_TLS_FAILED));
  cr_assert(
      eq(str, err, "a repeated write was given 10 bytes, fewer than the 16384 it must repeat"));
  pair_close(&p);
  mqttb_cli_tls_ctx_free(ctx);
}
