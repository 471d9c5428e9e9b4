/*
 * mqttb CLI: Mosquitto's acl_file, with Mosquitto's semantics.
 *
 * File format (mosquitto.conf(5), "acl_file"; src/security_default.c,
 * aclfile__parse() in Mosquitto 2.0):
 *
 *   # a comment                    (also after leading blanks: an extension)
 *   topic [read|write|readwrite|deny] TOPIC
 *   pattern [read|write|readwrite|deny] TOPIC
 *   user NAME
 *
 * - Words are separated by blanks: spaces, tabs (Mosquitto: spaces only). TOPIC
 *   and NAME are the rest of the line with surrounding blanks removed, so
 *   they may contain spaces. Trailing white space and "\r" are ignored.
 * - Without an access word a rule is readwrite. As in Mosquitto, a line with
 *   one word after the keyword takes it as the topic: "topic read" grants
 *   readwrite on the topic "read".
 * - TOPIC may hold the wildcards + and # as a subscription filter does; it
 *   must be a valid filter (`a/#/b`, `a+` are errors), at most 65535 bytes
 *   and 201 levels (Mosquitto's TOPIC_HIERARCHY_LIMIT).
 * - `topic` lines before the first `user` line apply to clients without a
 *   user name; after `user NAME` they apply to clients with that user name
 *   (an exact, case-sensitive match). Repeated `user NAME` sections merge.
 * - `pattern` lines apply to every client, wherever they are in the file.
 *   A level that is exactly `%c` stands for the client identifier, `%u` for
 *   the user name (mosquitto.conf(5): "the substitution pattern must be the
 *   only text for that level"); `%c` or `%u` inside a longer level is an
 *   error (Mosquitto 2.0 substitutes it as text, 2.1 leaves it literal).
 *   In `topic` lines `%c` and `%u` are ordinary text.
 *
 * Decision for one client (mosquitto_acl_check_default()):
 *  1. The `topic` rules of its section (its user name's, or the anonymous
 *     one): a matching `deny` refuses; else a matching rule that grants
 *     the access allows. Order in the file does not matter.
 *  2. If the file has no `pattern` lines: refused.
 *  3. A user name or client identifier containing + or # is refused
 *     everything step 1 did not allow (Mosquitto's guard against widening a
 *     pattern). A client without identifier (NULL) is refused too.
 *  4. Patterns: a matching `pattern deny` refuses; else a matching pattern
 *     granting the access allows; else refused. Patterns using %u never
 *     apply to clients without a user name. A granting pattern does not
 *     match when the value it substitutes is empty or contains '/' (so a
 *     user name "a/b" cannot reach into user "a"'s `%u` space) or when a
 *     `%c`/`%u` first level would match a topic starting with '$' (as in
 *     Mosquitto 2.1); a `deny` pattern substitutes the value as Mosquitto
 *     2.0 does, '/' included. So nothing is allowed that Mosquitto 2.0
 *     would refuse.
 *  Wildcards in rules never match a topic starting with '$' at the first
 *  level: `#` does not give `$SYS/...`, `$SYS/#` does.
 *
 * Before the rules (mosquitto_acl_check(), acl__check_dollar()): a WRITE to
 * a topic starting with "$SYS" is refused unless it matches
 * `$SYS/broker/connection/+/state`, and a READ or WRITE of a topic starting
 * with "$share" is refused.
 *
 * SUBSCRIBE (an extension: Mosquitto 2.0 grants every SUBSCRIBE when an
 * acl_file is in use and only filters deliveries): a filter is refused when
 * no topic it matches could ever be read by the client, by the decision
 * above; it is granted when it meets a rule granting read and no single
 * deny rule covers all of it. A refusal is exact (nothing readable is ever
 * refused); some filters through which nothing is readable are granted
 * (when deny rules remove just the part that meets the grants), and so is
 * a filter whose check would visit more than 4096 rule nodes (a `+` over
 * thousands of sibling rules), as Mosquitto grants them all: deliveries
 * are still filtered by READ. A filter `$share/GROUP/FILTER` is checked as
 * FILTER. Subscribing to `#` when the client may read `a/#` is granted.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_ACL_H
#define MQTTB_CLI_ACL_H

#include <stdbool.h>
#include <stddef.h>

/* Largest acl_file accepted, in bytes. */
#define MQTTB_ACL_MAX_FILE_SIZE (32u * 1024u * 1024u)
/* Longest line accepted, in bytes, without its line end. */
#define MQTTB_ACL_MAX_LINE 131072u

/* A loaded acl_file; immutable, so it may be checked from several threads. */
typedef struct mqttb_acl mqttb_acl;

typedef enum {
  /* A message on a topic name is to be delivered to the client. */
  MQTTB_ACL_READ = 1,
  /* The client publishes (or its will is published) on a topic name. */
  MQTTB_ACL_WRITE = 2,
  /* The client subscribes to a topic filter (uses the read rules). */
  MQTTB_ACL_SUBSCRIBE = 4
} mqttb_acl_access;

/*
 * Load the acl_file at @p path. Returns 0 and a new ACL in @p *out (free it
 * with mqttb_acl_free), or -1 with @p *out set to NULL and a message in
 * @p err: "PATH:LINE: what is wrong" for a bad line (unknown keyword, bad
 * access word, invalid topic, %c/%u inside a level, missing user name, line
 * longer than MQTTB_ACL_MAX_LINE, NUL byte, invalid UTF-8), "PATH: ..." for
 * a file that cannot be read (with the errno text), is a directory, or is
 * larger than MQTTB_ACL_MAX_FILE_SIZE, or when memory runs out. An empty
 * file loads and refuses everything. @p path is borrowed.
 */
int mqttb_acl_load(const char *path, mqttb_acl **out, char *err, size_t errlen);

/* As mqttb_acl_load, from @p len bytes at @p data (borrowed); @p name is used in messages. */
int mqttb_acl_load_buffer(const char *data, size_t len, const char *name, mqttb_acl **out,
                          char *err, size_t errlen);

/*
 * May the client with identifier @p client_id and user name @p username
 * (NULL: no user name; both NUL-terminated and borrowed for the call) have
 * @p access to @p topic (@p topic_len bytes, not NUL-terminated)? For READ
 * and WRITE @p topic is a topic name (one with a wildcard or NUL is
 * refused); for SUBSCRIBE it is a topic filter, possibly
 * `$share/GROUP/FILTER` (an invalid filter is refused). Allocates nothing
 * and does not modify @p acl. A NULL @p acl or @p topic, or an @p access
 * that is not exactly one of the values, gives false.
 */
bool mqttb_acl_check(const mqttb_acl *acl, const char *client_id, const char *username,
                     const char *topic, size_t topic_len, mqttb_acl_access access);

/* How many `topic` and `pattern` lines @p acl was loaded from. */
size_t mqttb_acl_rule_count(const mqttb_acl *acl);

/* Free @p acl; NULL is ignored. */
void mqttb_acl_free(mqttb_acl *acl);

#endif /* MQTTB_CLI_ACL_H */
