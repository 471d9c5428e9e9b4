/*
 * mqttb_passwd: manage password files for mqttb and Mosquitto, with the
 * interface of mosquitto_passwd 2.0.11 (apps/mosquitto_passwd/):
 *
 *   mqttb_passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] passwordfile username
 *   mqttb_passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b passwordfile username
 * password mqttb_passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] -U passwordfile mqttb_passwd
 * -v passwordfile username [password]      (mqttb extension)
 *
 * Same options, messages and exit statuses (0; 1 for errors and usage; 2
 * when the two passwords typed at the prompts differ), and files Mosquitto
 * reads. Where it differs, on purpose:
 *   - The file is replaced atomically (a temporary file in the same
 *     directory, fsync, rename), not rewritten in place with a copy in /tmp
 *     and a backup beside it. A new file gets mode 0600 (as mosquitto_passwd
 *     2.0.16+; 2.0.11 used the umask); an existing file keeps its mode, owner
 *     and group. Symbolic links are followed (realpath), as mosquitto_passwd
 *     does. The directory must be writable.
 *   - Comment ('#') and blank lines, which the broker skips, are kept as they
 *     are; mosquitto_passwd calls such a file corrupt.
 *   - Updating a user that is on several lines writes the new hash in place
 *     of the first and drops the others (mqttb refuses duplicate users);
 *     mosquitto_passwd rehashes each. A last line without '\n' gets one
 *     (mosquitto_passwd glues the next entry onto it).
 *   - `-U` leaves lines that already hold a $6$ or $7$ hash alone
 *     (mosquitto_passwd hashes the hash again), honours -I (it always uses
 *     101), and refuses a plaintext password that contains ':' (Mosquitto
 *     cuts it there) or looks like a damaged hash ("$N$...").
 *   - User names must be valid UTF-8, not empty and without blanks at either
 *     end (the broker would trim them); passwords must not contain NUL bytes.
 *   - At the prompts, line editing stays on (no echo, but canonical mode), so
 *     a terminal takes up to 4095 bytes; pipe longer passwords into stdin or
 *     use -b. Ctrl-C restores the terminal and ends the program by the signal
 *     (mosquitto_passwd exits 0).
 *   - `-v passwordfile username [password]` loads the file as mqttb does
 *     (any problem is reported with its line, exit 1) and exits 0 when the
 *     password is right, 2 when it is wrong or the user is not in the file.
 *     Without the password argument it is asked for once.
 *
 * SPDX-License-Identifier: MIT
 */
#include "passwd.h"
#include "sha512.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* Longest password, as mosquitto_passwd ("less than 65536 characters"). */
#define MAX_PASSWORD 65535u

struct opts {
  enum mqttb_pw_type type;
  uint32_t iterations;
};

/* --------------------------------------------------------------- prompts */

static struct termios saved_term;
static volatile sig_atomic_t term_changed;

static void restore_term(void) {
  if (term_changed) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved_term);
    term_changed = 0;
  }
}

static void on_signal(int sig) {
  /* Only async-signal-safe calls: put the echo back, then die by the signal. */
  if (term_changed) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved_term);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

enum read_result { READ_OK, READ_EMPTY, READ_TOO_LONG, READ_NUL };

/* Print prompt and read one line from stdin without echo when it is a
 * terminal (mosquitto_passwd's gets_quiet: stdin, not /dev/tty). Echo is
 * off before the prompt appears, so nothing typed after it is echoed.
 * Trailing CR/LF are removed. */
static enum read_result read_secret(const char *prompt, char *buf, size_t cap, size_t *len) {
  struct termios quiet;
  if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_term) == 0) {
    quiet = saved_term;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    term_changed = 1;
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  printf("%s", prompt);
  fflush(stdout);
  size_t n = 0;
  bool too_long = false, nul = false, any = false;
  int c;
  while ((c = getchar()) != EOF) {
    any = true;
    if (c == '\n') {
      break;
    }
    if (c == '\0') {
      nul = true;
    }
    if (n < cap) {
      buf[n++] = (char)c;
    } else {
      too_long = true; /* read to the end of the line anyway */
    }
  }
  restore_term();
  while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n')) {
    n--;
  }
  *len = n;
  if (too_long) {
    return READ_TOO_LONG;
  }
  if (!any || n == 0) {
    return READ_EMPTY;
  }
  return nul ? READ_NUL : READ_OK;
}

/* mosquitto_passwd's get_password: "Password: ", then optionally "Reenter
 * password: "; returns 0, 1 (empty or bad) or 2 (mismatch). */
static int get_password(bool confirm, char *pw, size_t *pw_len) {
  static char again[MAX_PASSWORD];
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  int rc = 0;
  size_t again_len = 0;
  const char *prompts[2] = {"Password: ", "Reenter password: "};
  for (int i = 0; i < (confirm ? 2 : 1) && rc == 0; i++) {
    char *buf = i == 0 ? pw : again;
    size_t *len = i == 0 ? pw_len : &again_len;
    enum read_result r = read_secret(prompts[i], buf, MAX_PASSWORD, len);
    if (r == READ_EMPTY) {
      fprintf(stderr, "Error: Empty password.\n");
      rc = 1;
    } else if (r == READ_TOO_LONG) {
      fprintf(stderr, "Error: Password must be less than 65536 characters long.\n");
      rc = 1;
    } else if (r == READ_NUL) {
      fprintf(stderr, "Error: Password must not contain NUL bytes.\n");
      rc = 1;
    } else {
      printf("\n");
    }
  }
  if (rc == 0 && confirm && (again_len != *pw_len || !mqttb_ct_equal(pw, again, again_len))) {
    fprintf(stderr, "Error: Passwords do not match.\n");
    rc = 2;
  }
  mqttb_secure_zero(again, sizeof again);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  return rc;
}

/* ------------------------------------------------------------ the file */

/* A growing output buffer, wiped when freed (it holds hashes). */
struct out {
  char *p;
  size_t len, cap;
  bool failed;
};

static void out_add(struct out *o, const void *data, size_t len) {
  if (o->failed) {
    return;
  }
  if (o->cap - o->len < len) {
    size_t ncap = o->cap == 0 ? 4096 : o->cap;
    while (ncap - o->len < len) {
      ncap *= 2;
    }
    char *np = malloc(ncap);
    if (np == NULL) {
      o->failed = true;
      return;
    }
    if (o->len > 0) {
      memcpy(np, o->p, o->len);
    }
    if (o->p != NULL) {
      mqttb_secure_zero(o->p, o->len);
    }
    free(o->p);
    o->p = np;
    o->cap = ncap;
  }
  memcpy(o->p + o->len, data, len);
  o->len += len;
}

static void out_free(struct out *o) {
  if (o->p != NULL) {
    mqttb_secure_zero(o->p, o->len);
  }
  free(o->p);
  memset(o, 0, sizeof *o);
}

/* "user:$7$...\n" with a fresh random salt (mosquitto_passwd's
 * output_new_password). */
static int add_entry(struct out *o, const char *user, size_t user_len, const char *pw,
                     size_t pw_len, const struct opts *opt) {
  uint8_t salt[MQTTB_PW_SALT_LEN];
  if (mqttb_pw_random(salt, sizeof salt) != 0) {
    fprintf(stderr, "Error: Unable to hash password. %s.\n", strerror(errno));
    return 1;
  }
  mqttb_pw_hash h;
  char text[MQTTB_PW_HASH_TEXT_MAX];
  if (mqttb_pw_hash_make(opt->type, opt->iterations, salt, pw, pw_len, &h) != 0 ||
      mqttb_pw_hash_format(&h, text, sizeof text) == 0) {
    fprintf(stderr, "Error: Unable to hash password.\n");
    return 1;
  }
  out_add(o, user, user_len);
  out_add(o, ":", 1);
  out_add(o, text, strlen(text));
  out_add(o, "\n", 1);
  mqttb_secure_zero(&h, sizeof h);
  mqttb_secure_zero(text, sizeof text);
  return 0;
}

/* Write @p o to @p path through a temporary file in the same directory and
 * rename(2). @p old: the file being replaced (its mode and owner are kept),
 * or NULL for a new file (mode 0600). */
static int write_atomic(const char *path, const struct out *o, const struct stat *old) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + sizeof ".XXXXXX");
  if (tmp == NULL) {
    fprintf(stderr, "Error: Out of memory.\n");
    return 1;
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".XXXXXX", sizeof ".XXXXXX");
  int fd = mkstemp(tmp); /* mode 0600 */
  if (fd < 0) {
    fprintf(stderr, "Error: Unable to open file %s for writing. %s.\n", path, strerror(errno));
    free(tmp);
    return 1;
  }
  const char *what = NULL;
  int e = 0;
  if (old != NULL) {
    if ((old->st_uid != geteuid() || old->st_gid != getegid()) &&
        fchown(fd, old->st_uid, old->st_gid) != 0) {
      fprintf(stderr, "Warning: Unable to keep the owner and group of %s. %s.\n", path,
              strerror(errno));
    }
    if (fchmod(fd, old->st_mode & 07777) != 0) {
      what = "setting the mode of";
      e = errno;
    }
  }
  for (size_t done = 0; what == NULL && done < o->len;) {
    ssize_t n = write(fd, o->p + done, o->len - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      what = "writing";
      e = n < 0 ? errno : EIO;
      break;
    }
    done += (size_t)n;
  }
  if (what == NULL && fsync(fd) != 0) {
    what = "writing";
    e = errno;
  }
  if (close(fd) != 0 && what == NULL) {
    what = "writing";
    e = errno;
  }
  if (what == NULL && rename(tmp, path) != 0) {
    what = "replacing";
    e = errno;
  }
  if (what != NULL) {
    fprintf(stderr, "Error: %s password file %s failed. %s.\n", what, path, strerror(e));
    unlink(tmp);
    free(tmp);
    return 1;
  }
  free(tmp);
  /* The rename is durable once the directory is synced (best effort). */
  char *dir = strdup(path);
  if (dir != NULL) {
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir) {
      d = "/";
    } else if (slash != NULL) {
      *slash = '\0';
      d = dir;
    }
    int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    free(dir);
  }
  return 0;
}

/* "$<digits>$": written as a hash, so not to be taken for a password by -U. */
static bool looks_like_hash(const char *s, size_t len) {
  if (len < 3 || s[0] != '$') {
    return false;
  }
  size_t i = 1;
  while (i < len && s[i] >= '0' && s[i] <= '9') {
    i++;
  }
  return i > 1 && i < len && s[i] == '$';
}

enum action { ACT_UPDATE, ACT_DELETE, ACT_UPGRADE };

/* Rewrite the lines of @p data into @p o for -b / prompt (update @p user),
 * -D (delete @p user) or -U (hash plaintext passwords). */
static int transform(enum action act, const char *data, size_t len, const char *user,
                     const char *pw, size_t pw_len, const struct opts *opt, struct out *o) {
  size_t user_len = user != NULL ? strlen(user) : 0;
  bool found = false;
  unsigned line_no = 0;
  for (size_t pos = 0; pos < len;) {
    const char *line = data + pos;
    const char *nl = memchr(line, '\n', len - pos);
    size_t line_len = nl != NULL ? (size_t)(nl - line) : len - pos;
    pos += line_len + (nl != NULL);
    line_no++;

    mqttb_pwline pl;
    char msg[256];
    if (mqttb_pwline_split(line, line_len, &pl, msg, sizeof msg) != 0) {
      fprintf(stderr, "Error: Corrupt password file at line %u: %s.\n", line_no, msg);
      return 1;
    }
    bool same_user = pl.kind == MQTTB_PWLINE_ENTRY && act != ACT_UPGRADE &&
                     pl.user_len == user_len && memcmp(pl.user, user, user_len) == 0;
    if (same_user) {
      if (act == ACT_UPDATE && !found && add_entry(o, pl.user, pl.user_len, pw, pw_len, opt) != 0) {
        return 1;
      }
      found = true;
      continue;
    }
    if (act == ACT_UPGRADE && pl.kind == MQTTB_PWLINE_ENTRY) {
      mqttb_pw_hash h;
      int rc = mqttb_pw_hash_parse(pl.secret, pl.secret_len, &h, msg, sizeof msg);
      if (rc != 0 && looks_like_hash(pl.secret, pl.secret_len)) {
        fprintf(stderr,
                "Error: Corrupt password file at line %u: %s (not hashing it as a "
                "plaintext password).\n",
                line_no, msg);
        return 1;
      }
      if (rc != 0) {
        if (memchr(pl.secret, ':', pl.secret_len) != NULL) {
          fprintf(stderr,
                  "Error: Corrupt password file at line %u: the password contains ':', "
                  "which Mosquitto would cut the password at.\n",
                  line_no);
          return 1;
        }
        if (add_entry(o, pl.user, pl.user_len, pl.secret, pl.secret_len, opt) != 0) {
          return 1;
        }
        continue;
      }
    }
    out_add(o, line, line_len);
    out_add(o, "\n", 1);
  }
  if (act == ACT_DELETE && !found) {
    fprintf(stderr, "Warning: User %s not found in password file.\n", user);
    return 1;
  }
  if (act == ACT_UPDATE && !found && add_entry(o, user, user_len, pw, pw_len, opt) != 0) {
    return 1;
  }
  if (o->failed) {
    fprintf(stderr, "Error: Out of memory.\n");
    return 1;
  }
  return 0;
}

/* ---------------------------------------------------------------- main */

static void print_usage(void) {
  printf("mqttb_passwd is a tool for managing password files for mqttb and mosquitto.\n\n");
  printf("Usage: mqttb_passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] "
         "passwordfile username\n");
  printf("       mqttb_passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b "
         "passwordfile username password\n");
  printf("       mqttb_passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] -U passwordfile\n");
  printf("       mqttb_passwd -v passwordfile username [password]\n");
  printf(" -b : run in batch mode to allow passing passwords on the command line.\n");
  printf(" -c : create a new password file. This will overwrite existing files.\n");
  printf(" -D : delete the username rather than adding/updating its password.\n");
  printf(" -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is recommended.\n");
  printf("      Mosquitto 1.6 and earlier defaulted to sha512.\n");
  printf(" -I : the number of sha512-pbkdf2 iterations (default %u).\n",
         MQTTB_PW_DEFAULT_ITERATIONS);
  printf(" -U : update a plain text password file to use hashed passwords.\n");
  printf(" -v : check a password (an mqttb extension): exit 0 if it is right, 2 if it is\n");
  printf("      wrong or the user is not in the file, 1 if the file cannot be loaded.\n");
  printf("\nThe files are those of mosquitto's password_file option.\n\n");
}

/* mosquitto_passwd's is_username_valid, plus what the loader refuses. */
static bool username_valid(const char *user) {
  size_t len = strlen(user);
  if (len > MQTTB_PW_MAX_USER_LEN) {
    fprintf(stderr, "Error: Username must be less than 65536 characters long.\n");
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)user[i];
    if (c < 0x20 || c == 0x7f) {
      fprintf(stderr, "Error: Username must not contain control characters.\n");
      return false;
    }
  }
  if (strchr(user, ':') != NULL) {
    fprintf(stderr, "Error: Username must not contain the ':' character.\n");
    return false;
  }
  if (len == 0) {
    fprintf(stderr, "Error: Username must not be empty.\n");
    return false;
  }
  if (user[0] == ' ' || user[len - 1] == ' ') {
    fprintf(stderr, "Error: Username must not begin or end with a space.\n");
    return false;
  }
  if (mqttb_pw_user_check(user, len, NULL, 0) != 0) {
    fprintf(stderr, "Error: Username must be valid UTF-8.\n");
    return false;
  }
  return true;
}

static int parse_iterations(const char *s, uint32_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end != '\0' || errno == ERANGE) {
    if (errno == ERANGE && v > 0) {
      fprintf(stderr, "Error: Number of iterations must be at most %u.\n", MQTTB_PW_MAX_ITERATIONS);
    } else {
      fprintf(stderr, "Error: Invalid number of iterations '%s'.\n", s);
    }
    return 1;
  }
  if (v < 1) {
    fprintf(stderr, "Error: Number of iterations must be > 0.\n");
    return 1;
  }
  if (v > (long long)MQTTB_PW_MAX_ITERATIONS) {
    fprintf(stderr, "Error: Number of iterations must be at most %u.\n", MQTTB_PW_MAX_ITERATIONS);
    return 1;
  }
  *out = (uint32_t)v;
  return 0;
}

static int verify(const char *path, const char *user, const char *pw_arg) {
  static char pwbuf[MAX_PASSWORD];
  mqttb_pwfile *pf;
  char err[512];
  if (mqttb_pwfile_load(path, &pf, err, sizeof err) != 0) {
    fprintf(stderr, "Error: %s\n", err);
    return 1;
  }
  const char *pw = pw_arg;
  size_t pw_len = pw_arg != NULL ? strlen(pw_arg) : 0;
  if (pw == NULL) {
    int rc = get_password(false, pwbuf, &pw_len);
    if (rc != 0) {
      mqttb_pwfile_free(pf);
      return rc == 2 ? 2 : 1;
    }
    pw = pwbuf;
  }
  bool ok = mqttb_pwfile_check(pf, user, strlen(user), (const uint8_t *)pw, pw_len);
  mqttb_secure_zero(pwbuf, sizeof pwbuf);
  mqttb_pwfile_free(pf);
  if (!ok) {
    fprintf(stderr, "Error: Wrong password, or user %s not in %s.\n", user, path);
    return 2;
  }
  return 0;
}

int main(int argc, char *argv[]) {
  static char password[MAX_PASSWORD];
  struct opts opt = {MQTTB_PW_SHA512_PBKDF2, MQTTB_PW_DEFAULT_ITERATIONS};
  bool batch_mode = false, create_new = false, delete_user = false, do_update_file = false;
  bool verify_mode = false;
  const char *password_file_tmp = NULL, *username = NULL, *password_cmd = NULL;

  if (argc == 1) {
    print_usage();
    return 1;
  }
  int idx;
  for (idx = 1; idx < argc; idx++) {
    if (!strcmp(argv[idx], "-H")) {
      if (idx + 1 == argc) {
        fprintf(stderr, "Error: -H argument given but not enough other arguments.\n");
        return 1;
      }
      if (!strcmp(argv[idx + 1], "sha512")) {
        opt.type = MQTTB_PW_SHA512;
      } else if (!strcmp(argv[idx + 1], "sha512-pbkdf2")) {
        opt.type = MQTTB_PW_SHA512_PBKDF2;
      } else {
        fprintf(stderr, "Error: Unknown hash type '%s'\n", argv[idx + 1]);
        return 1;
      }
      idx++;
    } else if (!strcmp(argv[idx], "-b")) {
      batch_mode = true;
    } else if (!strcmp(argv[idx], "-c")) {
      create_new = true;
    } else if (!strcmp(argv[idx], "-D")) {
      delete_user = true;
    } else if (!strcmp(argv[idx], "-I")) {
      if (idx + 1 == argc) {
        fprintf(stderr, "Error: -I argument given but not enough other arguments.\n");
        return 1;
      }
      if (parse_iterations(argv[idx + 1], &opt.iterations) != 0) {
        return 1;
      }
      idx++;
    } else if (!strcmp(argv[idx], "-U")) {
      do_update_file = true;
    } else if (!strcmp(argv[idx], "-v")) {
      verify_mode = true;
    } else {
      break;
    }
  }

  if (create_new && delete_user) {
    fprintf(stderr, "Error: -c and -D cannot be used together.\n");
    return 1;
  }
  if (create_new && do_update_file) {
    fprintf(stderr, "Error: -c and -U cannot be used together.\n");
    return 1;
  }
  if (delete_user && do_update_file) {
    fprintf(stderr, "Error: -D and -U cannot be used together.\n");
    return 1;
  }
  if (delete_user && batch_mode) {
    fprintf(stderr, "Error: -b and -D cannot be used together.\n");
    return 1;
  }
  if (verify_mode && (create_new || delete_user || do_update_file || batch_mode)) {
    fprintf(stderr, "Error: -v cannot be used with -b, -c, -D or -U.\n");
    return 1;
  }

  if (verify_mode) {
    if (idx + 2 != argc && idx + 3 != argc) {
      print_usage();
      return 1;
    }
    return verify(argv[idx], argv[idx + 1], idx + 3 == argc ? argv[idx + 2] : NULL);
  }
  if (create_new) {
    if (batch_mode) {
      if (idx + 2 >= argc) {
        fprintf(stderr,
                "Error: -c argument given but password file, username, or password missing.\n");
        return 1;
      }
      password_file_tmp = argv[idx];
      username = argv[idx + 1];
      password_cmd = argv[idx + 2];
    } else {
      if (idx + 1 >= argc) {
        fprintf(stderr, "Error: -c argument given but password file or username missing.\n");
        return 1;
      }
      password_file_tmp = argv[idx];
      username = argv[idx + 1];
    }
  } else if (delete_user) {
    if (idx + 1 >= argc) {
      fprintf(stderr, "Error: -D argument given but password file or username missing.\n");
      return 1;
    }
    password_file_tmp = argv[idx];
    username = argv[idx + 1];
  } else if (do_update_file) {
    if (idx + 1 != argc) {
      fprintf(stderr, "Error: -U argument given but password file missing.\n");
      return 1;
    }
    password_file_tmp = argv[idx];
  } else if (batch_mode && idx + 3 == argc) {
    password_file_tmp = argv[idx];
    username = argv[idx + 1];
    password_cmd = argv[idx + 2];
  } else if (!batch_mode && idx + 2 == argc) {
    password_file_tmp = argv[idx];
    username = argv[idx + 1];
  } else {
    print_usage();
    return 1;
  }

  if (username != NULL && !username_valid(username)) {
    return 1;
  }
  if (password_cmd != NULL && strlen(password_cmd) > MAX_PASSWORD) {
    fprintf(stderr, "Error: Password must be less than 65536 characters long.\n");
    return 1;
  }

  char *password_file = realpath(password_file_tmp, NULL);
  if (password_file == NULL) {
    if (errno != ENOENT) {
      fprintf(stderr, "Error reading password file: %s\n", strerror(errno));
      return 1;
    }
    password_file = strdup(password_file_tmp);
    if (password_file == NULL) {
      fprintf(stderr, "Error: Out of memory.\n");
      return 1;
    }
  }

  int rc;
  struct out o = {0};
  struct stat st;
  bool exists = stat(password_file, &st) == 0;
  const char *pw = password_cmd;
  size_t pw_len = password_cmd != NULL ? strlen(password_cmd) : 0;
  if (create_new) {
    if (!batch_mode) {
      rc = get_password(true, password, &pw_len);
      if (rc != 0) {
        free(password_file);
        return rc;
      }
      pw = password;
    }
    rc = add_entry(&o, username, strlen(username), pw, pw_len, &opt);
    if (rc == 0 && o.failed) {
      fprintf(stderr, "Error: Out of memory.\n");
      rc = 1;
    }
    if (rc == 0) {
      rc = write_atomic(password_file, &o, exists ? &st : NULL);
    }
  } else {
    char *data;
    size_t len;
    char err[512];
    /* Opened once first for mosquitto_passwd's message on a missing file. */
    int fd = open(password_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fprintf(stderr, "Error: Unable to open password file %s. %s.\n", password_file,
              strerror(errno));
      free(password_file);
      return 1;
    }
    close(fd);
    if (mqttb_pwfile_read(password_file, &data, &len, err, sizeof err) != 0) {
      fprintf(stderr, "Error: Unable to read password file %s.\n", err);
      free(password_file);
      return 1;
    }
    if (delete_user) {
      rc = transform(ACT_DELETE, data, len, username, NULL, 0, &opt, &o);
    } else if (do_update_file) {
      rc = transform(ACT_UPGRADE, data, len, NULL, NULL, 0, &opt, &o);
    } else {
      rc = 0;
      if (!batch_mode) {
        rc = get_password(true, password, &pw_len);
        pw = password;
      }
      if (rc == 0) {
        rc = transform(ACT_UPDATE, data, len, username, pw, pw_len, &opt, &o);
      }
    }
    if (rc == 0) {
      rc = write_atomic(password_file, &o, exists ? &st : NULL);
    }
    mqttb_secure_zero(data, len);
    free(data);
  }
  mqttb_secure_zero(password, sizeof password);
  out_free(&o);
  free(password_file);
  return rc;
}
