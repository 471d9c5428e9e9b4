/*
 * mqttb CLI: Mosquitto password files. See passwd.h for the format and what
 * is refused.
 *
 * SPDX-License-Identifier: MIT
 */
#include "passwd.h"

#include "sha512.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/random.h>
#define HAVE_GETRANDOM 1
#endif

/* Base64 lengths of the salt and the hash as mosquitto_passwd writes them. */
#define SALT_B64_LEN MQTTB_BASE64_ENCODED_LEN(MQTTB_PW_SALT_LEN)
#define HASH_B64_LEN MQTTB_BASE64_ENCODED_LEN(MQTTB_PW_HASH_LEN)
/* At most this many bytes of a user name are quoted in a message. */
#define QUOTE_MAX 64u

struct entry {
  const char *name; /* into mqttb_pwfile.names, set once all lines are read */
  size_t name_off;
  uint32_t name_len;
  uint32_t line;
  mqttb_pw_hash h;
};

struct mqttb_pwfile {
  struct entry *entries; /* sorted by name */
  size_t count;
  char *names;
  /* What an unknown user is checked against (never matches). */
  mqttb_pw_hash dummy;
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...) {
  if (err == NULL || errlen == 0) {
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* isspace() in the C locale, without its locale and sign pitfalls. */
static bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static void trim(const char **s, size_t *len) {
  while (*len > 0 && is_blank(**s)) {
    (*s)++;
    (*len)--;
  }
  while (*len > 0 && is_blank((*s)[*len - 1])) {
    (*len)--;
  }
}

/* ---------------------------------------------------------------- hashes */

static bool parse_iterations(const char *s, size_t len, uint32_t *out) {
  if (len == 0 || len > 10) {
    return false;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v < 1 || v > MQTTB_PW_MAX_ITERATIONS) {
    return false;
  }
  *out = (uint32_t)v;
  return true;
}

/* Only letters and digits of an unknown "$N$" are quoted. */
static bool is_quotable_type(const char *s, size_t len) {
  if (len == 0 || len > 16) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
          c == '_')) {
      return false;
    }
  }
  return true;
}

int mqttb_pw_hash_parse(const char *text, size_t len, mqttb_pw_hash *out, char *err,
                        size_t errlen) {
  if (len == 0 || text[0] != '$') {
    set_err(err, errlen, "password is not hashed");
    return MQTTB_PW_NOT_HASHED;
  }
  /* Split at '$': "", type, [iterations,] salt, hash. */
  const char *field[6];
  size_t flen[6];
  size_t n = 0;
  const char *p = text + 1;
  const char *end = text + len;
  for (;;) {
    const char *d = memchr(p, '$', (size_t)(end - p));
    const char *stop = d != NULL ? d : end;
    if (n == sizeof field / sizeof field[0]) {
      n++; /* too many fields */
      break;
    }
    field[n] = p;
    flen[n] = (size_t)(stop - p);
    n++;
    if (d == NULL) {
      break;
    }
    p = d + 1;
  }
  memset(out, 0, sizeof *out);
  size_t salt_i;
  if (flen[0] == 1 && field[0][0] == '6') {
    out->type = MQTTB_PW_SHA512;
    if (n != 3) {
      set_err(err, errlen, "malformed $6$ password hash (expected $6$SALT$HASH)");
      return -1;
    }
    salt_i = 1;
  } else if (flen[0] == 1 && field[0][0] == '7') {
    out->type = MQTTB_PW_SHA512_PBKDF2;
    if (n != 4) {
      set_err(err, errlen, "malformed $7$ password hash (expected $7$ITERATIONS$SALT$HASH)");
      return -1;
    }
    if (!parse_iterations(field[1], flen[1], &out->iterations)) {
      set_err(err, errlen, "iteration count of the $7$ hash is not a number from 1 to %u",
              MQTTB_PW_MAX_ITERATIONS);
      return -1;
    }
    salt_i = 2;
  } else {
    if (n >= 2 && is_quotable_type(field[0], flen[0])) {
      set_err(err, errlen, "unknown password hash type '$%.*s$' (known: $6$ and $7$)", (int)flen[0],
              field[0]);
    } else {
      set_err(err, errlen, "unknown password hash type (known: $6$ and $7$)");
    }
    return -1;
  }
  size_t got;
  if (flen[salt_i] != SALT_B64_LEN ||
      mqttb_base64_decode(field[salt_i], flen[salt_i], out->salt, sizeof out->salt, &got) != 0 ||
      got != MQTTB_PW_SALT_LEN) {
    set_err(err, errlen, "salt is not %u bytes of base64", MQTTB_PW_SALT_LEN);
    return -1;
  }
  size_t hash_i = salt_i + 1;
  if (flen[hash_i] != HASH_B64_LEN ||
      mqttb_base64_decode(field[hash_i], flen[hash_i], out->hash, sizeof out->hash, &got) != 0 ||
      got != MQTTB_PW_HASH_LEN) {
    set_err(err, errlen, "hash is not %u bytes of base64", MQTTB_PW_HASH_LEN);
    return -1;
  }
  return 0;
}

int mqttb_pw_hash_make(enum mqttb_pw_type type, uint32_t iterations,
                       const uint8_t salt[MQTTB_PW_SALT_LEN], const void *pw, size_t pw_len,
                       mqttb_pw_hash *out) {
  if (salt == NULL || out == NULL || (pw == NULL && pw_len != 0)) {
    return -1;
  }
  if (pw == NULL) {
    pw = "";
  }
  if (type == MQTTB_PW_SHA512) {
    /* password_mosq.c, pw__hash: SHA-512 over the password, then the salt. */
    memset(out, 0, sizeof *out);
    out->type = type;
    memcpy(out->salt, salt, MQTTB_PW_SALT_LEN);
    mqttb_sha512_ctx c;
    mqttb_sha512_init(&c);
    mqttb_sha512_update(&c, pw, pw_len);
    mqttb_sha512_update(&c, salt, MQTTB_PW_SALT_LEN);
    mqttb_sha512_final(&c, out->hash);
    return 0;
  }
  if (type == MQTTB_PW_SHA512_PBKDF2) {
    if (iterations < 1 || iterations > MQTTB_PW_MAX_ITERATIONS) {
      return -1;
    }
    memset(out, 0, sizeof *out);
    out->type = type;
    out->iterations = iterations;
    memcpy(out->salt, salt, MQTTB_PW_SALT_LEN);
    return mqttb_pbkdf2_sha512(pw, pw_len, salt, MQTTB_PW_SALT_LEN, iterations, out->hash,
                               MQTTB_PW_HASH_LEN);
  }
  return -1;
}

size_t mqttb_pw_hash_format(const mqttb_pw_hash *h, char *buf, size_t cap) {
  char salt[SALT_B64_LEN + 1];
  char hash[HASH_B64_LEN + 1];
  mqttb_base64_encode(h->salt, sizeof h->salt, salt, sizeof salt);
  mqttb_base64_encode(h->hash, sizeof h->hash, hash, sizeof hash);
  int n;
  if (h->type == MQTTB_PW_SHA512_PBKDF2) {
    n = snprintf(buf, cap, "$7$%u$%s$%s", (unsigned)h->iterations, salt, hash);
  } else {
    n = snprintf(buf, cap, "$6$%s$%s", salt, hash);
  }
  mqttb_secure_zero(hash, sizeof hash);
  if (n < 0 || (size_t)n >= cap) {
    if (cap > 0) {
      buf[0] = '\0';
    }
    return 0;
  }
  return (size_t)n;
}

bool mqttb_pw_hash_verify(const mqttb_pw_hash *h, const void *pw, size_t pw_len) {
  mqttb_pw_hash got;
  if (mqttb_pw_hash_make(h->type, h->iterations, h->salt, pw, pw_len, &got) != 0) {
    return false;
  }
  bool same = mqttb_ct_equal(got.hash, h->hash, sizeof got.hash);
  mqttb_secure_zero(&got, sizeof got);
  return same;
}

int mqttb_pw_random(void *buf, size_t len) {
  uint8_t *p = buf;
#ifdef HAVE_GETRANDOM
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == ENOSYS) {
        break; /* old kernel: /dev/urandom below */
      }
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  if (len == 0) {
    return 0;
  }
#endif
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return -1;
  }
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close(fd);
      errno = e;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  close(fd);
  return 0;
}

/* ----------------------------------------------------------------- lines */

/* Length of the valid UTF-8 sequence at s (RFC 3629), or 0. */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) {
    return 1;
  }
  size_t len;
  unsigned min_second = 0x80, max_second = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) {
      min_second = 0xa0; /* no overlong forms */
    } else if (c == 0xed) {
      max_second = 0x9f; /* no surrogates U+D800..U+DFFF */
    }
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) {
      min_second = 0x90; /* no overlong forms */
    } else if (c == 0xf4) {
      max_second = 0x8f; /* nothing above U+10FFFF */
    }
  } else {
    return 0; /* continuation byte, 0xc0, 0xc1, 0xf5..0xff */
  }
  if (n < len || s[1] < min_second || s[1] > max_second) {
    return 0;
  }
  for (size_t i = 2; i < len; i++) {
    if (s[i] < 0x80 || s[i] > 0xbf) {
      return 0;
    }
  }
  return len;
}

int mqttb_pw_user_check(const char *user, size_t len, char *err, size_t errlen) {
  if (len == 0) {
    set_err(err, errlen, "empty user name");
    return -1;
  }
  if (len > MQTTB_PW_MAX_USER_LEN) {
    set_err(err, errlen, "user name longer than %u bytes", MQTTB_PW_MAX_USER_LEN);
    return -1;
  }
  const unsigned char *s = (const unsigned char *)user;
  bool bad_utf8 = false, control = false, colon = false;
  for (size_t i = 0; i < len;) {
    if (s[i] < 0x20 || s[i] == 0x7f) {
      control = true;
    } else if (s[i] == ':') {
      colon = true;
    }
    size_t n = utf8_char_len(s + i, len - i);
    if (n == 0) {
      bad_utf8 = true;
      break;
    }
    i += n;
  }
  if (bad_utf8) {
    set_err(err, errlen, "user name is not valid UTF-8");
    return -1;
  }
  if (control) {
    set_err(err, errlen, "user name contains a control character");
    return -1;
  }
  if (colon) {
    set_err(err, errlen, "user name contains ':'");
    return -1;
  }
  return 0;
}

/* How many bytes of a checked user name to quote: at most QUOTE_MAX, cut at
 * a character boundary. */
static int quote_len(const char *user, size_t len) {
  if (len <= QUOTE_MAX) {
    return (int)len;
  }
  size_t n = QUOTE_MAX;
  while (n > 0 && ((unsigned char)user[n] & 0xc0) == 0x80) {
    n--;
  }
  return (int)n;
}

static const char *quote_tail(size_t len) {
  return len > QUOTE_MAX ? "..." : "";
}

int mqttb_pwline_split(const char *line, size_t len, mqttb_pwline *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  /* NUL first: it says "binary file" better than the length does. */
  if (memchr(line, '\0', len) != NULL) {
    set_err(err, errlen, "NUL byte in the line");
    return -1;
  }
  if (len > MQTTB_PWFILE_MAX_LINE) {
    set_err(err, errlen, "line longer than %u bytes", MQTTB_PWFILE_MAX_LINE);
    return -1;
  }
  if (len > 0 && line[0] == '#') {
    out->kind = MQTTB_PWLINE_COMMENT;
    return 0;
  }
  const char *p = line;
  size_t n = len;
  trim(&p, &n);
  if (n == 0) {
    out->kind = MQTTB_PWLINE_BLANK;
    return 0;
  }
  const char *colon = memchr(line, ':', len);
  if (colon == NULL) {
    set_err(err, errlen, "not a USER:PASSWORD_HASH line (no ':')");
    return -1;
  }
  const char *user = line;
  size_t user_len = (size_t)(colon - line);
  const char *secret = colon + 1;
  size_t secret_len = len - user_len - 1;
  trim(&user, &user_len);
  trim(&secret, &secret_len);
  if (mqttb_pw_user_check(user, user_len, err, errlen) != 0) {
    return -1;
  }
  if (secret_len == 0) {
    set_err(err, errlen, "user '%.*s%s': no password hash after ':'", quote_len(user, user_len),
            user, quote_tail(user_len));
    return -1;
  }
  if (secret_len > MQTTB_PW_MAX_SECRET_LEN) {
    set_err(err, errlen, "user '%.*s%s': password hash longer than %u bytes",
            quote_len(user, user_len), user, quote_tail(user_len), MQTTB_PW_MAX_SECRET_LEN);
    return -1;
  }
  out->kind = MQTTB_PWLINE_ENTRY;
  out->user = user;
  out->user_len = user_len;
  out->secret = secret;
  out->secret_len = secret_len;
  return 0;
}

/* ------------------------------------------------------------------ files */

int mqttb_pwfile_read(const char *path, char **data, size_t *len, char *err, size_t errlen) {
  *data = NULL;
  *len = 0;
  /* O_NONBLOCK: opening a FIFO must not wait for a writer (refused below). */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    set_err(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  size_t cap = 4096;
  if (fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
    close(fd);
    set_err(err, errlen, "%s: a FIFO or socket, not a file", path);
    return -1;
  }
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    if ((uint64_t)st.st_size > MQTTB_PWFILE_MAX_SIZE) {
      close(fd);
      set_err(err, errlen, "%s: larger than %u MiB", path, MQTTB_PWFILE_MAX_SIZE >> 20);
      return -1;
    }
    cap = (size_t)st.st_size + 1;
  }
  char *buf = malloc(cap + 1);
  if (buf == NULL) {
    close(fd);
    set_err(err, errlen, "%s: out of memory", path);
    return -1;
  }
  size_t used = 0;
  for (;;) {
    if (used == cap) {
      /* Not a regular file, or one that grew: read on, up to the limit + 1
       * byte so that going over is noticed. */
      size_t grown =
          cap * 2 > (size_t)MQTTB_PWFILE_MAX_SIZE + 1 ? (size_t)MQTTB_PWFILE_MAX_SIZE + 1 : cap * 2;
      if (grown <= cap) {
        break;
      }
      char *nb = realloc(buf, grown + 1);
      if (nb == NULL) {
        mqttb_secure_zero(buf, used);
        free(buf);
        close(fd);
        set_err(err, errlen, "%s: out of memory", path);
        return -1;
      }
      buf = nb;
      cap = grown;
    }
    ssize_t n = read(fd, buf + used, cap - used);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int e = errno;
      mqttb_secure_zero(buf, used);
      free(buf);
      close(fd);
      set_err(err, errlen, "%s: %s", path, strerror(e));
      return -1;
    }
    if (n == 0) {
      break;
    }
    used += (size_t)n;
    if (used > MQTTB_PWFILE_MAX_SIZE) {
      break;
    }
  }
  close(fd);
  if (used > MQTTB_PWFILE_MAX_SIZE) {
    mqttb_secure_zero(buf, used);
    free(buf);
    set_err(err, errlen, "%s: larger than %u MiB", path, MQTTB_PWFILE_MAX_SIZE >> 20);
    return -1;
  }
  buf[used] = '\0';
  *data = buf;
  *len = used;
  return 0;
}

static int cmp_entry(const void *a, const void *b) {
  const struct entry *x = a, *y = b;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  if (c != 0) {
    return c;
  }
  if (x->name_len != y->name_len) {
    return x->name_len < y->name_len ? -1 : 1;
  }
  return x->line < y->line ? -1 : x->line > y->line;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* The dummy an unknown user is hashed against: the commonest (type,
 * iterations) of the file, the costlier on a tie, $7$/101 for an empty file.
 * Its salt and hash are zero: no password produces an all-zero hash in
 * practice, and the caller ignores the outcome anyway. */
static int make_dummy(struct mqttb_pwfile *pf) {
  memset(&pf->dummy, 0, sizeof pf->dummy);
  pf->dummy.type = MQTTB_PW_SHA512_PBKDF2;
  pf->dummy.iterations = MQTTB_PW_DEFAULT_ITERATIONS;
  if (pf->count == 0) {
    return 0;
  }
  /* 0 stands for $6$, which costs less than any $7$. */
  uint32_t *k = malloc(pf->count * sizeof *k);
  if (k == NULL) {
    return -1;
  }
  for (size_t i = 0; i < pf->count; i++) {
    k[i] = pf->entries[i].h.type == MQTTB_PW_SHA512 ? 0 : pf->entries[i].h.iterations;
  }
  qsort(k, pf->count, sizeof *k, cmp_u32);
  uint32_t best = k[0];
  size_t best_run = 0;
  for (size_t i = 0; i < pf->count;) {
    size_t j = i;
    while (j < pf->count && k[j] == k[i]) {
      j++;
    }
    if (j - i >= best_run) { /* >=: ascending order, so a tie goes to the costlier */
      best_run = j - i;
      best = k[i];
    }
    i = j;
  }
  free(k);
  if (best == 0) {
    pf->dummy.type = MQTTB_PW_SHA512;
    pf->dummy.iterations = 0;
  } else {
    pf->dummy.iterations = best;
  }
  return 0;
}

void mqttb_pwfile_free(mqttb_pwfile *pf) {
  if (pf == NULL) {
    return;
  }
  if (pf->entries != NULL) {
    mqttb_secure_zero(pf->entries, pf->count * sizeof *pf->entries);
  }
  free(pf->entries);
  free(pf->names);
  mqttb_secure_zero(pf, sizeof *pf);
  free(pf);
}

static int oom(char *err, size_t errlen, struct mqttb_pwfile *pf) {
  set_err(err, errlen, "out of memory");
  mqttb_pwfile_free(pf);
  return -1;
}

int mqttb_pwfile_load_buffer(const char *data, size_t len, const char *name, mqttb_pwfile **out,
                             char *err, size_t errlen) {
  *out = NULL;
  if (name == NULL) {
    name = "(password file)";
  }
  if (len > MQTTB_PWFILE_MAX_SIZE) {
    set_err(err, errlen, "%s: larger than %u MiB", name, MQTTB_PWFILE_MAX_SIZE >> 20);
    return -1;
  }
  struct mqttb_pwfile *pf = calloc(1, sizeof *pf);
  if (pf == NULL) {
    set_err(err, errlen, "out of memory");
    return -1;
  }
  size_t cap = 0, names_len = 0, names_cap = 0;
  char msg[256];
  uint32_t line_no = 0;
  for (size_t pos = 0; pos < len;) {
    const char *line = data + pos;
    const char *nl = memchr(line, '\n', len - pos);
    size_t line_len = nl != NULL ? (size_t)(nl - line) : len - pos;
    pos += line_len + (nl != NULL);
    line_no++;

    mqttb_pwline pl;
    if (mqttb_pwline_split(line, line_len, &pl, msg, sizeof msg) != 0) {
      set_err(err, errlen, "%s:%u: %s", name, line_no, msg);
      mqttb_pwfile_free(pf);
      return -1;
    }
    if (pl.kind != MQTTB_PWLINE_ENTRY) {
      continue;
    }
    mqttb_pw_hash h;
    int rc = mqttb_pw_hash_parse(pl.secret, pl.secret_len, &h, msg, sizeof msg);
    if (rc == MQTTB_PW_NOT_HASHED) {
      set_err(err, errlen,
              "%s:%u: user '%.*s%s': the password is not hashed (a plaintext password file?); "
              "hash it with `mqttb_passwd -U %s`",
              name, line_no, quote_len(pl.user, pl.user_len), pl.user, quote_tail(pl.user_len),
              name);
      mqttb_pwfile_free(pf);
      return -1;
    }
    if (rc != 0) {
      set_err(err, errlen, "%s:%u: user '%.*s%s': %s", name, line_no,
              quote_len(pl.user, pl.user_len), pl.user, quote_tail(pl.user_len), msg);
      mqttb_pwfile_free(pf);
      return -1;
    }
    if (pf->count == cap) {
      size_t ncap = cap == 0 ? 64 : cap * 2;
      struct entry *ne = realloc(pf->entries, ncap * sizeof *ne);
      if (ne == NULL) {
        return oom(err, errlen, pf);
      }
      pf->entries = ne;
      cap = ncap;
    }
    if (names_cap - names_len < pl.user_len) {
      size_t ncap = names_cap == 0 ? 4096 : names_cap;
      while (ncap - names_len < pl.user_len) {
        ncap *= 2;
      }
      char *nn = realloc(pf->names, ncap);
      if (nn == NULL) {
        return oom(err, errlen, pf);
      }
      pf->names = nn;
      names_cap = ncap;
    }
    memcpy(pf->names + names_len, pl.user, pl.user_len);
    struct entry *e = &pf->entries[pf->count++];
    e->name = NULL;
    e->name_off = names_len;
    e->name_len = (uint32_t)pl.user_len;
    e->line = line_no;
    e->h = h;
    names_len += pl.user_len;
    mqttb_secure_zero(&h, sizeof h);
  }
  for (size_t i = 0; i < pf->count; i++) {
    pf->entries[i].name = pf->names + pf->entries[i].name_off;
  }
  if (pf->count > 1) {
    qsort(pf->entries, pf->count, sizeof *pf->entries, cmp_entry);
  }
  /* Report the duplicate that comes first in the file. */
  const struct entry *dup = NULL, *first = NULL;
  for (size_t i = 1; i < pf->count; i++) {
    const struct entry *a = &pf->entries[i - 1], *b = &pf->entries[i];
    if (a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0 &&
        (dup == NULL || b->line < dup->line)) {
      dup = b;
      first = a;
    }
  }
  if (dup != NULL) {
    set_err(err, errlen, "%s:%u: user '%.*s%s' is already on line %u", name, dup->line,
            quote_len(dup->name, dup->name_len), dup->name, quote_tail(dup->name_len), first->line);
    mqttb_pwfile_free(pf);
    return -1;
  }
  if (make_dummy(pf) != 0) {
    return oom(err, errlen, pf);
  }
  *out = pf;
  return 0;
}

int mqttb_pwfile_load(const char *path, mqttb_pwfile **out, char *err, size_t errlen) {
  *out = NULL;
  char *data;
  size_t len;
  if (mqttb_pwfile_read(path, &data, &len, err, errlen) != 0) {
    return -1;
  }
  int rc = mqttb_pwfile_load_buffer(data, len, path, out, err, errlen);
  mqttb_secure_zero(data, len);
  free(data);
  return rc;
}

static const struct entry *find(const mqttb_pwfile *pf, const char *user, size_t user_len) {
  size_t lo = 0, hi = pf->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct entry *e = &pf->entries[mid];
    size_t n = e->name_len < user_len ? e->name_len : user_len;
    int c = memcmp(e->name, user, n);
    if (c == 0 && e->name_len != user_len) {
      c = e->name_len < user_len ? -1 : 1;
    }
    if (c == 0) {
      return e;
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return NULL;
}

bool mqttb_pwfile_check(const mqttb_pwfile *pf, const char *user, size_t user_len,
                        const uint8_t *pw, size_t pw_len) {
  if (pf == NULL || (user == NULL && user_len != 0) || (pw == NULL && pw_len != 0)) {
    return false;
  }
  const struct entry *e = user_len > 0 ? find(pf, user, user_len) : NULL;
  /* Hash in either case; the volatile keeps the dummy's work from being
   * optimised away when the answer is known to be false. */
  volatile bool match = mqttb_pw_hash_verify(e != NULL ? &e->h : &pf->dummy, pw, pw_len);
  return match && e != NULL;
}

size_t mqttb_pwfile_count(const mqttb_pwfile *pf) {
  return pf != NULL ? pf->count : 0;
}
