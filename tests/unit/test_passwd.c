/* SPDX-License-Identifier: MIT */
/* cli/passwd.c: Mosquitto password files. Lines written by mosquitto_passwd
 * 2.0.11 (fixed samples, and files made by the real tool at test time when it
 * is installed), hostile and malformed files refused with the line named,
 * the 65,535-byte password, 100,000 users, and the helpers the tool uses. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../cli/passwd.h"
#include "../../cli/sha512.h"

/* Made with Debian's mosquitto_passwd 2.0.11 (mosquitto 2.0.11-1.2+deb12u2):
 *   mosquitto_passwd -c -b f alice secret-alice
 *   mosquitto_passwd -b f bob pässwörd
 *   mosquitto_passwd -H sha512 -b f carol carol6
 *   mosquitto_passwd -I 1000 -b f dave dave1000
 *   mosquitto_passwd -b f empty ''
 *   mosquitto_passwd -b f ü x
 * (and checked with Python's hashlib). */
static const char sample[] =
    "alice:$7$101$YTktp2u6HY4+V8a/$IO3Yhp7VHsF0SFYpNXTVv0T7aFPE7EW1OndW4W5gnE9VtxTbAddPsuBc8mlVa"
    "yewvvTWWRnBz6XibF2CNSKNGQ==\n"
    "bob:$7$101$tSt1W3iuG4YZqCmW$QINLQ3Ok+EdHpelV6Z7l9AD3X4YujT/NYzt/8NArtllBUKaiq7dbCRuu1B21NdtC"
    "Fou3380WY6Pn8YxoFmSu7w==\n"
    "carol:$6$ytOyhemuwj7EXxMo$4LRHHmnrZqCpFzVQVhhm4FkYjMqjXmU7yYXPGXL0lArLWug6FzeBxpNZwRUxDHkzocX"
    "qQX3dD3H9RUxKi1jgjQ==\n"
    "dave:$7$1000$KZQRiZVKYJ1YI4Pi$bWtpWVTuVqnPq3/Ngd5LFHnTkz0H3PAUsuKXuY8ueJ9dVDIdSfzOS9xRDwLPjWYf"
    "vDYxRHO5q0frJs0I3Fu+SQ==\n"
    "empty:$7$101$dUGvJr+fGRRoAwPv$JtSc18dcm99insqpST+pDKwWtxXCdNNU6+q42vN2qmgxgqZRQMp61jLUrRwRSiSX"
    "+EzT77QVfqJzq+Efm85V6w==\n"
    "\xc3\xbc:$7$101$oJIu5uzJ4o5PoIR8$8651yTr68Ns78lmrnLe7JhFqJ3uMQNPPp5b9VZplg5tItLTBOOvV6aUwudDB"
    "S0cJi7WUL0YNli2O83Wnd5EVig==\n";

/* Two good lines, used ahead of a bad one so that errors must say line 3. */
#define GOOD2                                                                                      \
  "carol:$6$ytOyhemuwj7EXxMo$4LRHHmnrZqCpFzVQVhhm4FkYjMqjXmU7yYXPGXL0lArLWug6FzeBxpNZwRUxDHkzocX"  \
  "qQX3dD3H9RUxKi1jgjQ==\n"                                                                        \
  "# a comment\n"
#define SALT "ytOyhemuwj7EXxMo"
#define HASH                                                                                       \
  "4LRHHmnrZqCpFzVQVhhm4FkYjMqjXmU7yYXPGXL0lArLWug6FzeBxpNZwRUxDHkzocXqQX3dD3H9RUxKi1jgjQ=="

static bool check(const mqttb_pwfile *pf, const char *user, const char *pw) {
  return mqttb_pwfile_check(pf, user, strlen(user), (const uint8_t *)pw, strlen(pw));
}

static mqttb_pwfile *load_ok(const char *data, size_t len) {
  mqttb_pwfile *pf = NULL;
  char err[512] = "";
  int rc = mqttb_pwfile_load_buffer(data, len, "test.pw", &pf, err, sizeof err);
  cr_assert(eq(int, rc, 0), "refused: %s", err);
  cr_assert(not(eq(ptr, pf, NULL)));
  return pf;
}

/* The file is refused and the message starts with @p prefix and holds @p part. */
static void assert_refused(const char *data, size_t len, const char *prefix, const char *part) {
  mqttb_pwfile *pf = (mqttb_pwfile *)1;
  char err[512] = "";
  int rc = mqttb_pwfile_load_buffer(data, len, "test.pw", &pf, err, sizeof err);
  cr_assert(eq(int, rc, -1), "accepted: %.60s", data);
  cr_assert(eq(ptr, pf, NULL));
  cr_assert(eq(int, strncmp(err, prefix, strlen(prefix)), 0), "message '%s', wanted prefix '%s'",
            err, prefix);
  cr_assert(not(eq(ptr, strstr(err, part), NULL)), "message '%s' lacks '%s'", err, part);
}

static void assert_refused_str(const char *data, const char *prefix, const char *part) {
  assert_refused(data, strlen(data), prefix, part);
}

Test(passwd, lines_written_by_mosquitto_passwd_2_0_11_verify) {
  mqttb_pwfile *pf = load_ok(sample, strlen(sample));
  cr_assert(eq(sz, mqttb_pwfile_count(pf), 6));
  cr_assert(check(pf, "alice", "secret-alice"));
  cr_assert(check(pf, "bob", "p\xc3\xa4ssw\xc3\xb6rd"));
  cr_assert(check(pf, "carol", "carol6"));  /* $6$ */
  cr_assert(check(pf, "dave", "dave1000")); /* $7$ with -I 1000 */
  cr_assert(check(pf, "empty", ""));        /* -b with an empty password */
  cr_assert(check(pf, "\xc3\xbc", "x"));    /* UTF-8 user name */
  cr_assert(not(check(pf, "alice", "secret-alicE")));
  cr_assert(not(check(pf, "alice", "secret-alic")));
  cr_assert(not(check(pf, "alice", "secret-alice ")));
  cr_assert(not(check(pf, "carol", "carol")));
  cr_assert(not(check(pf, "empty", "x")));
  cr_assert(not(check(pf, "bob", "secret-alice"))); /* another user's password */
  mqttb_pwfile_free(pf);
}

Test(passwd, unknown_or_odd_user_names_never_match) {
  mqttb_pwfile *pf = load_ok(sample, strlen(sample));
  cr_assert(not(check(pf, "mallory", "secret-alice")));
  cr_assert(not(check(pf, "alic", "secret-alice")));
  cr_assert(not(check(pf, "alicee", "secret-alice")));
  cr_assert(not(check(pf, "Alice", "secret-alice")));
  /* A NUL inside the name: not "alice". */
  cr_assert(not(mqttb_pwfile_check(pf, "alice\0x", 7, (const uint8_t *)"secret-alice", 12)));
  cr_assert(not(mqttb_pwfile_check(pf, "alice\0", 6, (const uint8_t *)"secret-alice", 12)));
  /* Invalid UTF-8 and empty names. */
  cr_assert(not(mqttb_pwfile_check(pf, "\xc3", 1, (const uint8_t *)"x", 1)));
  cr_assert(not(mqttb_pwfile_check(pf, "", 0, (const uint8_t *)"", 0)));
  cr_assert(not(mqttb_pwfile_check(pf, NULL, 0, NULL, 0)));
  cr_assert(not(mqttb_pwfile_check(pf, NULL, 3, (const uint8_t *)"x", 1)));
  cr_assert(not(mqttb_pwfile_check(pf, "alice", 5, NULL, 12)));
  cr_assert(not(mqttb_pwfile_check(NULL, "alice", 5, (const uint8_t *)"secret-alice", 12)));
  /* The empty password is a password: NULL with length 0 is the same. */
  cr_assert(mqttb_pwfile_check(pf, "empty", 5, NULL, 0));
  mqttb_pwfile_free(pf);
  cr_assert(eq(sz, mqttb_pwfile_count(NULL), 0));
  mqttb_pwfile_free(NULL);
}

Test(passwd, comments_blank_lines_crlf_and_blanks_around_fields) {
  const char *f = "# comment line\n"
                  "\n"
                  "   \t\n"
                  "carol:$6$" SALT "$" HASH "\r\n"
                  "  carol2 :\t$6$" SALT "$" HASH "  \n"
                  "#nospace:$6$ is a comment too\n"
                  "carol3:$6$" SALT "$" HASH; /* last line without '\n' */
  mqttb_pwfile *pf = load_ok(f, strlen(f));
  cr_assert(eq(sz, mqttb_pwfile_count(pf), 3));
  cr_assert(check(pf, "carol", "carol6"));
  cr_assert(check(pf, "carol2", "carol6"));
  cr_assert(check(pf, "carol3", "carol6"));
  cr_assert(not(check(pf, " carol2 ", "carol6")));
  mqttb_pwfile_free(pf);

  pf = load_ok("", 0);
  cr_assert(eq(sz, mqttb_pwfile_count(pf), 0));
  cr_assert(not(check(pf, "anyone", "")));
  mqttb_pwfile_free(pf);
}

Test(passwd, plaintext_password_line_is_refused_with_a_hint) {
  assert_refused_str(GOOD2 "bob:hunter2\n", "test.pw:3: user 'bob': ",
                     "not hashed (a plaintext password file?); hash it with `mqttb_passwd -U "
                     "test.pw`");
}

Test(passwd, malformed_hashes_are_refused_naming_the_line) {
  static const struct {
    const char *line;
    const char *part;
  } bad[] = {
      {"u:$6$" SALT "$"
       "4LRHHmnrZqCpFzVQVhhm4FkYjMqjXmU7yYXPGXL0lArLWug6FzeBxpNZwRUxDHkzocXqQX3dD3H"
       "9RUxKi1jgj!==",
       "hash is not 64 bytes of base64"}, /* bad character */
      {"u:$6$" SALT "$"
       "4LRH",
       "hash is not 64 bytes of base64"},                               /* short hash */
      {"u:$6$" SALT "$" HASH "AAAA", "hash is not 64 bytes of base64"}, /* long hash */
      {"u:$6$" SALT "$"
       "4LRHHmnrZqCpFzVQVhhm4FkYjMqjXmU7yYXPGXL0lArLWug6FzeBxpNZwRUxDHkzocXqQX3dD3H"
       "9RUxKi1jgjR==",
       "hash is not 64 bytes of base64"},                               /* non-canonical */
      {"u:$6$ytOyhemuwj7EXxM$" HASH, "salt is not 12 bytes of base64"}, /* short salt */
      {"u:$6$ytOyhemuwj7EXxMoAA==$" HASH, "salt is not 12 bytes of base64"},
      {"u:$6$ytOyhemuwj7EXx-o$" HASH, "salt is not 12 bytes of base64"},
      {"u:$6$$" HASH, "salt is not 12 bytes of base64"},
      {"u:$6$" SALT, "malformed $6$ password hash"},
      {"u:$6$" SALT "$" HASH "$", "malformed $6$ password hash"},
      {"u:$6$" SALT "$" HASH "$extra", "malformed $6$ password hash"},
      {"u:$6$101$" SALT "$" HASH, "malformed $6$ password hash"},
      {"u:$7$" SALT "$" HASH, "malformed $7$ password hash"},
      {"u:$7$0$" SALT "$" HASH, "iteration count of the $7$ hash is not a number from 1 to"},
      {"u:$7$-5$" SALT "$" HASH, "iteration count"},
      {"u:$7$abc$" SALT "$" HASH, "iteration count"},
      {"u:$7$101abc$" SALT "$" HASH, "iteration count"},
      {"u:$7$2147483648$" SALT "$" HASH, "iteration count"},
      {"u:$7$99999999999$" SALT "$" HASH, "iteration count"},
      {"u:$7$$" SALT "$" HASH, "iteration count"},
      {"u:$5$" SALT "$" HASH, "unknown password hash type '$5$' (known: $6$ and $7$)"},
      {"u:$2y$10$abcdefghijklmnopqrstuv", "unknown password hash type '$2y$'"},
      {"u:$$6$" SALT "$" HASH, "unknown password hash type"},
      {"u:$", "unknown password hash type"},
      {"u:$6$" SALT "$" HASH ":extra", "hash is not 64 bytes of base64"},
      {"u:", "user 'u': no password hash after ':'"},
      {"u:   \t", "user 'u': no password hash after ':'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char f[1024];
    snprintf(f, sizeof f, "%s%s\n", GOOD2, bad[i].line);
    assert_refused_str(f, "test.pw:3: ", bad[i].part);
  }
}

Test(passwd, lines_that_are_not_user_colon_hash_are_refused) {
  assert_refused_str(GOOD2 "just some words\n", "test.pw:3: ", "no ':'");
  assert_refused_str(GOOD2 ":$6$" SALT "$" HASH "\n", "test.pw:3: ", "empty user name");
  assert_refused_str(GOOD2 "   :$6$" SALT "$" HASH "\n", "test.pw:3: ", "empty user name");
  /* Mosquitto's strtok would take "u" from "::u:..."; mqttb does not guess. */
  assert_refused_str(GOOD2 "::u:$6$" SALT "$" HASH "\n", "test.pw:3: ", "empty user name");
}

Test(passwd, nul_bytes_are_refused) {
  const char f[] = GOOD2 "u\0x:$6$" SALT "$" HASH "\n";
  assert_refused(f, sizeof f - 1, "test.pw:3: ", "NUL byte");
  const char g[] = GOOD2 "u:$6$" SALT "$" HASH "\0\n";
  assert_refused(g, sizeof g - 1, "test.pw:3: ", "NUL byte");
  const char h[] = GOOD2 "# comment \0 with a NUL\n";
  assert_refused(h, sizeof h - 1, "test.pw:3: ", "NUL byte");
}

Test(passwd, user_names_that_are_not_valid_utf8_are_refused) {
  static const char *const names[] = {
      "\xff",             /* never valid */
      "ab\xc3",           /* truncated 2-byte sequence */
      "\xc0\x80",         /* overlong NUL */
      "\xc1\xbf",         /* overlong */
      "\xe0\x80\xaf",     /* overlong '/' */
      "\xed\xa0\x80",     /* surrogate U+D800 */
      "\xf4\x90\x80\x80", /* above U+10FFFF */
      "\xf8\x88\x80\x80\x80",
      "\x80",      /* lone continuation */
      "a\xe2\x82", /* truncated 3-byte sequence */
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char f[1024];
    snprintf(f, sizeof f, "%s%s:$6$%s$%s\n", GOOD2, names[i], SALT, HASH);
    assert_refused_str(f, "test.pw:3: ", "user name is not valid UTF-8");
  }
  /* Control characters inside the name (blanks at its ends are trimmed). */
  assert_refused_str(GOOD2 "a\tb:$6$" SALT "$" HASH "\n", "test.pw:3: ", "control character");
  assert_refused_str(GOOD2 "a\x1b[31m:$6$" SALT "$" HASH "\n", "test.pw:3: ", "control character");
  assert_refused_str(GOOD2 "a\x7f:$6$" SALT "$" HASH "\n", "test.pw:3: ", "control character");
  /* Valid: 2-, 3- and 4-byte characters, U+FFFF and U+10FFFF. */
  const char *ok =
      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf:$6$" SALT "$" HASH "\n";
  mqttb_pwfile *pf = load_ok(ok, strlen(ok));
  cr_assert(
      check(pf, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf", "carol6"));
  mqttb_pwfile_free(pf);
}

Test(passwd, duplicate_users_are_refused_naming_both_lines) {
  assert_refused_str("x:$6$" SALT "$" HASH "\n"
                     "carol:$6$" SALT "$" HASH "\n"
                     "y:$6$" SALT "$" HASH "\n"
                     " carol :$7$101$" SALT "$" HASH "\n"
                     "y:$6$" SALT "$" HASH "\n",
                     "test.pw:4: ", "user 'carol' is already on line 2");
}

Test(passwd, long_lines_and_names_are_refused) {
  /* A line over the limit, however it is made up. */
  size_t n = MQTTB_PWFILE_MAX_LINE + 1;
  char *f = malloc(strlen(GOOD2) + n + 2);
  cr_assert(not(zero(ptr, f)));
  strcpy(f, GOOD2);
  memset(f + strlen(GOOD2), 'a', n);
  strcpy(f + strlen(GOOD2) + n, "\n");
  assert_refused_str(f, "test.pw:3: ", "line longer than 131072 bytes");

  /* A user name of 65,536 bytes. */
  size_t base = strlen(GOOD2);
  memset(f + base, 'u', 65536);
  snprintf(f + base + 65536, n + 2 - 65536, ":$6$%s$%s\n", SALT, HASH);
  assert_refused_str(f, "test.pw:3: ", "user name longer than 65535 bytes");

  /* 65,535 bytes is fine. */
  memset(f + base, 'u', 65535);
  snprintf(f + base + 65535, n + 2 - 65535, ":$6$%s$%s\n", SALT, HASH);
  mqttb_pwfile *pf = load_ok(f, strlen(f));
  cr_assert(eq(sz, mqttb_pwfile_count(pf), 2));
  char *user = f + base;
  cr_assert(mqttb_pwfile_check(pf, user, 65535, (const uint8_t *)"carol6", 6));
  cr_assert(not(mqttb_pwfile_check(pf, user, 65534, (const uint8_t *)"carol6", 6)));
  mqttb_pwfile_free(pf);

  /* A hash field of 65,536 bytes (a plaintext password Mosquitto would refuse). */
  f[base] = 'u';
  f[base + 1] = ':';
  memset(f + base + 2, 'p', 65536);
  strcpy(f + base + 2 + 65536, "\n");
  assert_refused_str(f, "test.pw:3: ", "password hash longer than 65535 bytes");
  free(f);
}

Test(passwd, binary_garbage_is_refused_with_a_line) {
  size_t n = 1 << 20;
  unsigned char *f = malloc(n);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    f[i] = (unsigned char)x;
  }
  mqttb_pwfile *pf;
  char err[512];
  cr_assert(eq(int, mqttb_pwfile_load_buffer((char *)f, n, "bin.pw", &pf, err, sizeof err), -1));
  cr_assert(eq(int, strncmp(err, "bin.pw:", 7), 0), "%s", err);
  cr_assert(eq(ptr, pf, NULL));
  free(f);
}

static char tmpdir[] = "/tmp/mqttb-test-passwd-XXXXXX";

static void make_tmpdir(void) {
  cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)), "mkdtemp: %s", strerror(errno));
}

static void remove_tmpdir(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  cr_assert(eq(int, system(cmd), 0));
}

static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert(not(eq(ptr, f, NULL)), "%s: %s", path, strerror(errno));
  cr_assert(eq(sz, fwrite(data, 1, len, f), len));
  cr_assert(eq(int, fclose(f), 0));
}

Test(passwd, unreadable_and_oversized_files_are_refused, .init = make_tmpdir,
     .fini = remove_tmpdir) {
  char path[256], err[512];
  mqttb_pwfile *pf;
  snprintf(path, sizeof path, "%s/missing", tmpdir);
  cr_assert(eq(int, mqttb_pwfile_load(path, &pf, err, sizeof err), -1));
  cr_assert(not(eq(ptr, strstr(err, ": No such file or directory"), NULL)), "%s", err);
  cr_assert(eq(int, strncmp(err, path, strlen(path)), 0), "%s", err);

  cr_assert(eq(int, mqttb_pwfile_load(tmpdir, &pf, err, sizeof err), -1));
  cr_assert(not(eq(ptr, strstr(err, "Is a directory"), NULL)), "%s", err);

  /* One byte over the size limit (a sparse file: no data is written). */
  snprintf(path, sizeof path, "%s/huge", tmpdir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert(fd >= 0);
  cr_assert(eq(int, ftruncate(fd, (off_t)MQTTB_PWFILE_MAX_SIZE + 1), 0));
  close(fd);
  cr_assert(eq(int, mqttb_pwfile_load(path, &pf, err, sizeof err), -1));
  cr_assert(not(eq(ptr, strstr(err, "larger than 64 MiB"), NULL)), "%s", err);
  /* At the limit the size is fine; the content (NULs) is not. */
  fd = open(path, O_WRONLY | O_TRUNC);
  cr_assert(eq(int, ftruncate(fd, (off_t)MQTTB_PWFILE_MAX_SIZE), 0));
  close(fd);
  cr_assert(eq(int, mqttb_pwfile_load(path, &pf, err, sizeof err), -1));
  cr_assert(not(eq(ptr, strstr(err, ":1: NUL byte"), NULL)), "%s", err);

  /* Not a regular file (a character device): read to its end. */
  cr_assert(eq(int, mqttb_pwfile_load("/dev/null", &pf, err, sizeof err), 0));
  cr_assert(eq(sz, mqttb_pwfile_count(pf), 0));
  mqttb_pwfile_free(pf);

  /* A good file from disk. */
  snprintf(path, sizeof path, "%s/good", tmpdir);
  write_file(path, sample, strlen(sample));
  cr_assert(eq(int, mqttb_pwfile_load(path, &pf, err, sizeof err), 0), "%s", err);
  cr_assert(check(pf, "dave", "dave1000"));
  mqttb_pwfile_free(pf);
}

Test(passwd, a_password_of_65535_bytes_works) {
  static uint8_t pw[65535];
  for (size_t i = 0; i < sizeof pw; i++) {
    pw[i] = (uint8_t)(i % 251 + 1);
  }
  const uint8_t salt[MQTTB_PW_SALT_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  for (int type = 6; type <= 7; type++) {
    mqttb_pw_hash h;
    cr_assert(
        eq(int, mqttb_pw_hash_make((enum mqttb_pw_type)type, 101, salt, pw, sizeof pw, &h), 0));
    char line[256];
    char text[MQTTB_PW_HASH_TEXT_MAX];
    cr_assert(mqttb_pw_hash_format(&h, text, sizeof text) > 0);
    snprintf(line, sizeof line, "big:%s\n", text);
    mqttb_pwfile *pf = load_ok(line, strlen(line));
    cr_assert(mqttb_pwfile_check(pf, "big", 3, pw, sizeof pw), "type %d", type);
    cr_assert(not(mqttb_pwfile_check(pf, "big", 3, pw, sizeof pw - 1)));
    pw[65534] ^= 1;
    cr_assert(not(mqttb_pwfile_check(pf, "big", 3, pw, sizeof pw)));
    pw[65534] ^= 1;
    mqttb_pwfile_free(pf);
  }
}

Test(passwd, one_hundred_thousand_users_load_and_look_up) {
  enum { N = 100000 };
  const char *hash = "$6$" SALT "$" HASH;
  size_t cap = (size_t)N * (strlen(hash) + 16);
  char *f = malloc(cap);
  size_t len = 0;
  /* Out of order on purpose (i * 7919 mod N visits every i once). */
  for (size_t i = 0; i < N; i++) {
    len += (size_t)snprintf(f + len, cap - len, "user%zu:%s\n", (i * 7919) % N, hash);
  }
  mqttb_pwfile *pf = load_ok(f, len);
  cr_assert(eq(sz, mqttb_pwfile_count(pf), N));
  cr_assert(check(pf, "user0", "carol6"));
  cr_assert(check(pf, "user99999", "carol6"));
  cr_assert(check(pf, "user54321", "carol6"));
  cr_assert(not(check(pf, "user100000", "carol6")));
  cr_assert(not(check(pf, "user", "carol6")));
  cr_assert(not(check(pf, "user54321", "carol7")));
  mqttb_pwfile_free(pf);
  free(f);
}

/* mosquitto_passwd itself, when installed: its files load and verify. */
static const char *find_mosquitto_passwd(void) {
  static const char *const paths[] = {
      "/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd", "/usr/sbin/mosquitto_passwd"};
  const char *env = getenv("MOSQUITTO_PASSWD");
  if (env != NULL && access(env, X_OK) == 0) {
    return env;
  }
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    if (access(paths[i], X_OK) == 0) {
      return paths[i];
    }
  }
  return NULL;
}

static int run(const char *const argv[]) {
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  int status;
  cr_assert(eq(int, waitpid(pid, &status, 0), pid));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(passwd, files_written_by_the_installed_mosquitto_passwd, .init = make_tmpdir,
     .fini = remove_tmpdir) {
  const char *tool = find_mosquitto_passwd();
  if (tool == NULL) {
    cr_skip("mosquitto_passwd is not installed (apt-get install mosquitto); the fixed sample "
            "lines from 2.0.11 are checked by lines_written_by_mosquitto_passwd_2_0_11_verify");
  }
  char path[256];
  snprintf(path, sizeof path, "%s/pw", tmpdir);
  const char *a1[] = {tool, "-c", "-b", path, "u1", "first", NULL};
  cr_assert(eq(int, run(a1), 0));
  const char *a2[] = {tool, "-H", "sha512", "-b", path, "u6", "six", NULL};
  cr_assert(eq(int, run(a2), 0));
  const char *a3[] = {tool, "-I", "7", "-b", path, "u7", "seven", NULL};
  cr_assert(eq(int, run(a3), 0));
  const char *a4[] = {tool, "-b", path, "\xe2\x82\xac", "", NULL};
  cr_assert(eq(int, run(a4), 0));
  const char *a5[] = {tool, "-b", path, "u1", "changed", NULL}; /* update in place */
  cr_assert(eq(int, run(a5), 0));
  mqttb_pwfile *pf;
  char err[512];
  cr_assert(eq(int, mqttb_pwfile_load(path, &pf, err, sizeof err), 0), "%s", err);
  cr_assert(eq(sz, mqttb_pwfile_count(pf), 4));
  cr_assert(check(pf, "u1", "changed"));
  cr_assert(not(check(pf, "u1", "first")));
  cr_assert(check(pf, "u6", "six"));
  cr_assert(check(pf, "u7", "seven"));
  cr_assert(check(pf, "\xe2\x82\xac", ""));
  cr_assert(not(check(pf, "u7", "six")));
  mqttb_pwfile_free(pf);

  /* A plaintext file, refused; after mosquitto_passwd -U it loads. */
  write_file(path, "p1:plain\np2:text\n", 17);
  cr_assert(eq(int, mqttb_pwfile_load(path, &pf, err, sizeof err), -1));
  cr_assert(not(eq(ptr, strstr(err, ":1: user 'p1': the password is not hashed"), NULL)), "%s",
            err);
  const char *a6[] = {tool, "-U", path, NULL};
  cr_assert(eq(int, run(a6), 0));
  cr_assert(eq(int, mqttb_pwfile_load(path, &pf, err, sizeof err), 0), "%s", err);
  cr_assert(check(pf, "p1", "plain"));
  cr_assert(check(pf, "p2", "text"));
  mqttb_pwfile_free(pf);
}

Test(pw_hash, parse_and_format_round_trip_the_sample_hashes) {
  const char *p = sample;
  while (*p != '\0') {
    const char *nl = strchr(p, '\n');
    mqttb_pwline pl;
    char err[256];
    cr_assert(eq(int, mqttb_pwline_split(p, (size_t)(nl - p), &pl, err, sizeof err), 0), "%s", err);
    cr_assert(eq(int, pl.kind, MQTTB_PWLINE_ENTRY));
    mqttb_pw_hash h;
    cr_assert(eq(int, mqttb_pw_hash_parse(pl.secret, pl.secret_len, &h, err, sizeof err), 0), "%s",
              err);
    char text[MQTTB_PW_HASH_TEXT_MAX];
    size_t n = mqttb_pw_hash_format(&h, text, sizeof text);
    cr_assert(eq(sz, n, pl.secret_len));
    cr_assert(eq(int, memcmp(text, pl.secret, n), 0));
    p = nl + 1;
  }
}

Test(pw_hash, make_matches_mosquitto_definitions) {
  /* $6$: SHA-512(password || salt); $7$: PBKDF2-HMAC-SHA-512(password, salt, n, 64). */
  const uint8_t salt[MQTTB_PW_SALT_LEN] = "0123456789a";
  mqttb_pw_hash h;
  cr_assert(eq(int, mqttb_pw_hash_make(MQTTB_PW_SHA512, 0, salt, "pw", 2, &h), 0));
  uint8_t cat[14], want[64];
  memcpy(cat, "pw", 2);
  memcpy(cat + 2, salt, 12);
  mqttb_sha512(cat, sizeof cat, want);
  cr_assert(eq(int, memcmp(h.hash, want, 64), 0));
  cr_assert(eq(int, mqttb_pw_hash_make(MQTTB_PW_SHA512_PBKDF2, 5, salt, "pw", 2, &h), 0));
  cr_assert(eq(int, mqttb_pbkdf2_sha512("pw", 2, salt, 12, 5, want, 64), 0));
  cr_assert(eq(int, memcmp(h.hash, want, 64), 0));
  cr_assert(eq(u32, h.iterations, 5));
  cr_assert(mqttb_pw_hash_verify(&h, "pw", 2));
  cr_assert(not(mqttb_pw_hash_verify(&h, "pW", 2)));

  char text[MQTTB_PW_HASH_TEXT_MAX];
  h.iterations = MQTTB_PW_MAX_ITERATIONS;
  size_t n = mqttb_pw_hash_format(&h, text, sizeof text);
  cr_assert(eq(sz, n, strlen("$7$2147483647$") + 16 + 1 + 88));
  cr_assert(eq(sz, mqttb_pw_hash_format(&h, text, n), 0)); /* no room for the NUL */

  cr_assert(eq(int, mqttb_pw_hash_make(MQTTB_PW_SHA512_PBKDF2, 0, salt, "pw", 2, &h), -1));
  cr_assert(eq(int, mqttb_pw_hash_make((enum mqttb_pw_type)5, 1, salt, "pw", 2, &h), -1));
  cr_assert(eq(int, mqttb_pw_hash_make(MQTTB_PW_SHA512, 0, salt, NULL, 2, &h), -1));
}

Test(pw_hash, plaintext_is_reported_as_not_hashed) {
  mqttb_pw_hash h;
  char err[128];
  cr_assert(eq(int, mqttb_pw_hash_parse("hunter2", 7, &h, err, sizeof err), MQTTB_PW_NOT_HASHED));
  cr_assert(eq(int, mqttb_pw_hash_parse("$uper", 5, &h, err, sizeof err), -1));
}

Test(pwline, split_kinds_and_trimming) {
  mqttb_pwline pl;
  char err[256];
  cr_assert(eq(int, mqttb_pwline_split("#x", 2, &pl, err, sizeof err), 0));
  cr_assert(eq(int, pl.kind, MQTTB_PWLINE_COMMENT));
  cr_assert(eq(int, mqttb_pwline_split(" \t\r", 3, &pl, err, sizeof err), 0));
  cr_assert(eq(int, pl.kind, MQTTB_PWLINE_BLANK));
  cr_assert(eq(int, mqttb_pwline_split("", 0, &pl, err, sizeof err), 0));
  cr_assert(eq(int, pl.kind, MQTTB_PWLINE_BLANK));
  const char *l = " bob\t: pass:word \r";
  cr_assert(eq(int, mqttb_pwline_split(l, strlen(l), &pl, err, sizeof err), 0));
  cr_assert(eq(int, pl.kind, MQTTB_PWLINE_ENTRY));
  cr_assert(eq(sz, pl.user_len, 3));
  cr_assert(eq(int, memcmp(pl.user, "bob", 3), 0));
  cr_assert(eq(sz, pl.secret_len, 9));
  cr_assert(eq(int, memcmp(pl.secret, "pass:word", 9), 0));
}

Test(pw_user, checks_as_the_loader_does) {
  char err[128];
  cr_assert(eq(int, mqttb_pw_user_check("alice", 5, err, sizeof err), 0));
  cr_assert(eq(int, mqttb_pw_user_check("a:b", 3, err, sizeof err), -1));
  cr_assert(eq(str, err, "user name contains ':'"));
  cr_assert(eq(int, mqttb_pw_user_check("", 0, err, sizeof err), -1));
  cr_assert(eq(int, mqttb_pw_user_check("a\0b", 3, err, sizeof err), -1));
  cr_assert(eq(str, err, "user name contains a control character"));
  cr_assert(eq(int, mqttb_pw_user_check("\xc3\x28", 2, NULL, 0), -1));
}

Test(pw_random, fills_the_buffer) {
  uint8_t a[32], b[32], zero[32] = {0};
  cr_assert(eq(int, mqttb_pw_random(a, sizeof a), 0));
  cr_assert(eq(int, mqttb_pw_random(b, sizeof b), 0));
  cr_assert(not(eq(int, memcmp(a, b, sizeof a), 0)));
  cr_assert(not(eq(int, memcmp(a, zero, sizeof a), 0)));
}

Test(pwfile, a_fifo_is_refused_without_waiting_for_a_writer) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/mqttb-pw-fifo-%d", (int)getpid());
  unlink(path);
  cr_assert(eq(int, mkfifo(path, 0600), 0));
  mqttb_pwfile *pf = NULL;
  char err[256] = "";
  int rc = mqttb_pwfile_load(path, &pf, err, sizeof err);
  unlink(path);
  cr_assert(eq(int, rc, -1));
  cr_assert(eq(ptr, pf, NULL));
  cr_assert(not(eq(ptr, strstr(err, "FIFO"), NULL)), "%s", err);
}
