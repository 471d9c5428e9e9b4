/*
 * mqttb CLI: Mosquitto password files (`password_file`).
 *
 * Format, as read by Mosquitto 2.0.11 (src/security_default.c, pwfile__parse
 * and unpwd__decode_passwords) and written by its mosquitto_passwd
 * (apps/mosquitto_passwd/mosquitto_passwd.c, output_new_password):
 *
 *   USER:$6$SALT$HASH              HASH = SHA-512(PASSWORD || salt)
 *   USER:$7$ITERATIONS$SALT$HASH   HASH = PBKDF2-HMAC-SHA-512(PASSWORD, salt,
 *                                         ITERATIONS, 64 bytes)
 *
 * SALT and HASH are padded base64 of exactly 12 and 64 bytes (16 and 88
 * characters); mosquitto_passwd uses a random 12-byte salt and, for $7$,
 * 101 iterations unless `-I` says otherwise. Lines end with '\n' (a last
 * line without one counts); blanks (isspace) around the user name and around
 * the hash are ignored, as Mosquitto trims them, so CRLF files work; a line
 * whose first byte is '#' is a comment; a line of blanks only is ignored.
 *
 * Where mqttb is stricter than Mosquitto, which logs a warning and drops the
 * line or the entry but keeps loading, mqttb refuses the whole file with an
 * error naming the line ("PATH:LINE: ..."):
 *   - a plaintext password (the hash does not start with '$'): hash the file
 *     with `mqttb_passwd -U FILE` (or `mosquitto_passwd -U FILE`);
 *   - a hash type other than $6$ and $7$, an iteration count that is not a
 *     decimal number from 1 to 2147483647 (Mosquitto's atoi() into an int),
 *     base64 that is not canonical or does not decode to 12 / 64 bytes, extra
 *     '$' or ':' fields (Mosquitto ignores what follows the hash);
 *   - a non-blank line without ':' (Mosquitto silently skips it) and an empty
 *     user name or hash;
 *   - a user name that is not valid UTF-8 (MQTT-1.5.4-1) or holds a control
 *     character (U+0001..U+001F, U+007F, which mosquitto_passwd also
 *     refuses), or is longer than 65,535 bytes (MQTT's limit and Mosquitto's);
 *     a hash field longer than 65,535 bytes (Mosquitto's limit);
 *   - a NUL byte anywhere, a line longer than MQTTB_PWFILE_MAX_LINE bytes, a
 *     file larger than MQTTB_PWFILE_MAX_SIZE bytes;
 *   - the same user name on two lines. Mosquitto adds both to a uthash table
 *     and then finds either of them depending on how the table grew, so which
 *     password works is unpredictable; mosquitto_passwd never writes such a
 *     file (it updates every matching line in place).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_PASSWD_H
#define MQTTB_CLI_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQTTB_PW_SALT_LEN 12u
#define MQTTB_PW_HASH_LEN 64u
/* mosquitto_passwd's default for $7$ (PW_DEFAULT_ITERATIONS in password_mosq.h). */
#define MQTTB_PW_DEFAULT_ITERATIONS 101u
/* Mosquitto keeps the count in an int. */
#define MQTTB_PW_MAX_ITERATIONS 2147483647u
/* Longest user name and longest text after ':' (Mosquitto's limits). */
#define MQTTB_PW_MAX_USER_LEN 65535u
#define MQTTB_PW_MAX_SECRET_LEN 65535u
/* Longest line, without its '\n': a longest user, ':' and a longest
 * plaintext password (which `-U` must still be able to read), with room for
 * blanks. */
#define MQTTB_PWFILE_MAX_LINE 131072u
/* Largest file: 64 MiB holds over 500,000 $7$ entries. */
#define MQTTB_PWFILE_MAX_SIZE (64u * 1024u * 1024u)
/* Room for the longest formatted hash ("$7$2147483647$" + 16 + "$" + 88) and a NUL. */
#define MQTTB_PW_HASH_TEXT_MAX 128u

/* The `$N$` of a hash; the values are Mosquitto's. */
enum mqttb_pw_type {
  MQTTB_PW_SHA512 = 6,        /* $6$: salted SHA-512 (Mosquitto 1.x) */
  MQTTB_PW_SHA512_PBKDF2 = 7, /* $7$: PBKDF2-HMAC-SHA-512 (Mosquitto 2.0 default) */
};

/* One decoded hash. Plain data. */
typedef struct mqttb_pw_hash {
  enum mqttb_pw_type type;
  /* PBKDF2 iterations, 1..MQTTB_PW_MAX_ITERATIONS; 0 for $6$. */
  uint32_t iterations;
  uint8_t salt[MQTTB_PW_SALT_LEN];
  uint8_t hash[MQTTB_PW_HASH_LEN];
} mqttb_pw_hash;

/* mqttb_pw_hash_parse: the text does not start with '$' (a plaintext password). */
#define MQTTB_PW_NOT_HASHED 1

/*
 * Decode the hash text after "USER:" (already trimmed, not NUL-terminated:
 * @p len bytes at @p text) into @p out. Returns 0; MQTTB_PW_NOT_HASHED when
 * the text does not start with '$'; -1 when it is not a valid $6$ or $7$
 * hash. On a non-zero return a message without file or line ("salt is not 12
 * bytes of base64") is written to @p err (@p errlen may be 0).
 */
int mqttb_pw_hash_parse(const char *text, size_t len, mqttb_pw_hash *out, char *err, size_t errlen);

/*
 * Hash @p pw_len bytes of password at @p pw (NULL when 0) with the caller's
 * @p salt into @p out. @p iterations is used for MQTTB_PW_SHA512_PBKDF2 only
 * and must be 1..MQTTB_PW_MAX_ITERATIONS. Returns 0, or -1 on a bad argument.
 * Mosquitto hashes strlen(password) bytes; passwords without NUL bytes (all
 * that mosquitto_passwd can write) hash the same here.
 */
int mqttb_pw_hash_make(enum mqttb_pw_type type, uint32_t iterations,
                       const uint8_t salt[MQTTB_PW_SALT_LEN], const void *pw, size_t pw_len,
                       mqttb_pw_hash *out);

/*
 * Write @p h as mosquitto_passwd does ("$7$101$SALT$HASH", "$6$SALT$HASH")
 * with a NUL into @p buf (MQTTB_PW_HASH_TEXT_MAX is always enough). Returns
 * the length without the NUL, or 0 when @p cap is too small.
 */
size_t mqttb_pw_hash_format(const mqttb_pw_hash *h, char *buf, size_t cap);

/* True when @p pw hashes to @p h (the hash is compared in constant time). */
bool mqttb_pw_hash_verify(const mqttb_pw_hash *h, const void *pw, size_t pw_len);

/* @p len random bytes from getrandom(2), or /dev/urandom where that is
 * missing. Returns 0, or -1 with errno set. */
int mqttb_pw_random(void *buf, size_t len);

/*
 * Check a user name as the loader does: 1..MQTTB_PW_MAX_USER_LEN bytes of
 * valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF)
 * without control characters (bytes 0x00..0x1F and 0x7F) or ':'. Returns 0,
 * or -1 with a message ("user name is not valid UTF-8") in @p err.
 */
int mqttb_pw_user_check(const char *user, size_t len, char *err, size_t errlen);

enum mqttb_pwline_kind {
  MQTTB_PWLINE_BLANK,   /* only blanks */
  MQTTB_PWLINE_COMMENT, /* first byte '#' */
  MQTTB_PWLINE_ENTRY,   /* USER:SECRET */
};

/* One line split into its fields; the pointers borrow from the line. */
typedef struct mqttb_pwline {
  enum mqttb_pwline_kind kind;
  /* For MQTTB_PWLINE_ENTRY: the trimmed user name (checked with
   * mqttb_pw_user_check) and the trimmed text after the first ':' (not empty,
   * at most MQTTB_PW_MAX_SECRET_LEN bytes, not otherwise checked: a hash for
   * mqttb_pw_hash_parse or, before `-U`, a plaintext password). */
  const char *user;
  size_t user_len;
  const char *secret;
  size_t secret_len;
} mqttb_pwline;

/*
 * Split one line (@p len bytes at @p line, without its '\n'). Returns 0, or
 * -1 with a message without file or line in @p err: line too long, NUL byte,
 * no ':', empty user name or secret, bad user name, secret too long.
 */
int mqttb_pwline_split(const char *line, size_t len, mqttb_pwline *out, char *err, size_t errlen);

/*
 * Read a whole file of at most MQTTB_PWFILE_MAX_SIZE bytes into a new buffer
 * (with a NUL after the data, not counted in @p len), which the caller frees
 * with free(). Returns 0, or -1 with "PATH: No such file or directory" /
 * "PATH: larger than 64 MiB" in @p err.
 */
int mqttb_pwfile_read(const char *path, char **data, size_t *len, char *err, size_t errlen);

/* A loaded password file: user names and their hashes. Read-only once
 * loaded, so mqttb_pwfile_check may run on it from several threads. */
typedef struct mqttb_pwfile mqttb_pwfile;

/*
 * Load the password file at @p path (mqttb_pwfile_read, then
 * mqttb_pwfile_load_buffer with @p path as the name). Returns 0 and a new
 * file in @p out, which the caller frees with mqttb_pwfile_free; or -1 with
 * @p out set to NULL and a message in @p err: "PATH: Permission denied",
 * "PATH:LINE: what is wrong" (see the top of this header), or "out of memory".
 */
int mqttb_pwfile_load(const char *path, mqttb_pwfile **out, char *err, size_t errlen);

/*
 * As mqttb_pwfile_load, from @p len bytes at @p data (borrowed for the call;
 * everything kept is copied). @p name stands for the file in messages.
 */
int mqttb_pwfile_load_buffer(const char *data, size_t len, const char *name, mqttb_pwfile **out,
                             char *err, size_t errlen);

/*
 * True when @p user (@p user_len bytes, any bytes, need not be
 * NUL-terminated) is in the file and @p pw (@p pw_len bytes; NULL only when
 * 0) is its password.
 *
 * Every call costs one hash: a user that is not in the file is checked
 * against a dummy entry of the most common type and iteration count in the
 * file (ties: the costlier), so a wrong user name takes as long as a wrong
 * password for a typical entry. Hashes are compared in constant time. The
 * lookup itself (binary search, memcmp) is microseconds against a hash.
 * An empty password is a password: Mosquitto refuses a CONNECT that names a
 * user of the file but has no password at all, and callers should do the
 * same before calling this. NULL @p pf or (NULL @p user with @p user_len
 * not 0): false.
 */
bool mqttb_pwfile_check(const mqttb_pwfile *pf, const char *user, size_t user_len,
                        const uint8_t *pw, size_t pw_len);

/* Number of users in @p pf (0 for NULL). */
size_t mqttb_pwfile_count(const mqttb_pwfile *pf);

/* Free @p pf (NULL is fine); its hashes are wiped first. */
void mqttb_pwfile_free(mqttb_pwfile *pf);

#endif /* MQTTB_CLI_PASSWD_H */
