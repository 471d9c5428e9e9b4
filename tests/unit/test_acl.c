/* SPDX-License-Identifier: MIT */
/* cli/acl.c: Mosquitto's acl_file. Each rule class, the order Mosquitto
 * evaluates them in (src/security_default.c, mosquitto_acl_check_default),
 * $SYS, SUBSCRIBE, hostile client ids and user names against patterns,
 * malformed and huge files, a comparison with a plain reimplementation of
 * Mosquitto's algorithm on random files, and the speed of big files. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"

#define R MQTTB_ACL_READ
#define W MQTTB_ACL_WRITE
#define S MQTTB_ACL_SUBSCRIBE

static mqttb_acl *load(const char *text) {
  char err[512] = "";
  mqttb_acl *a = NULL;
  int rc = mqttb_acl_load_buffer(text, strlen(text), "t.acl", &a, err, sizeof err);
  cr_assert(eq(int, rc, 0), "load failed: %s", err);
  cr_assert(not(eq(ptr, a, NULL)));
  return a;
}

static bool chk(const mqttb_acl *a, const char *cid, const char *user, const char *topic,
                mqttb_acl_access acc) {
  return mqttb_acl_check(a, cid, user, topic, strlen(topic), acc);
}

/* A bad file: -1, no ACL, and the message names the file and @p line. */
static void load_fails(const char *text, size_t len, unsigned line, const char *what) {
  char err[512] = "";
  mqttb_acl *a = (mqttb_acl *)&err; /* must be reset to NULL */
  int rc = mqttb_acl_load_buffer(text, len, "t.acl", &a, err, sizeof err);
  cr_assert(eq(int, rc, -1), "loaded: %.*s", (int)len, text);
  cr_assert(eq(ptr, a, NULL));
  char where[32];
  snprintf(where, sizeof where, "t.acl:%u: ", line);
  cr_assert(eq(int, strncmp(err, where, strlen(where)), 0), "'%s' does not start with '%s'", err,
            where);
  cr_assert(not(eq(ptr, strstr(err, what), NULL)), "'%s' does not say '%s'", err, what);
}

static void load_fails_str(const char *text, unsigned line, const char *what) {
  load_fails(text, strlen(text), line, what);
}

/* ---- rule classes ---- */

Test(acl_rules, access_words_grant_what_they_say) {
  mqttb_acl *a = load("topic read r/#\n"
                      "topic write w/#\n"
                      "topic readwrite rw/#\n");
  cr_assert(chk(a, "c", NULL, "r/1", R));
  cr_assert(not(chk(a, "c", NULL, "r/1", W)));
  cr_assert(not(chk(a, "c", NULL, "w/1", R)));
  cr_assert(chk(a, "c", NULL, "w/1", W));
  cr_assert(chk(a, "c", NULL, "rw/1", R));
  cr_assert(chk(a, "c", NULL, "rw/1", W));
  cr_assert(not(chk(a, "c", NULL, "other", R)));
  cr_assert(not(chk(a, "c", NULL, "other", W)));
  cr_assert(eq(sz, mqttb_acl_rule_count(a), 3));
  mqttb_acl_free(a);
}

/* mosquitto.conf(5): the access word is optional, "readwrite" then. */
Test(acl_rules, topic_without_access_word_is_readwrite) {
  mqttb_acl *a = load("topic plain/topic\n");
  cr_assert(chk(a, "c", NULL, "plain/topic", R));
  cr_assert(chk(a, "c", NULL, "plain/topic", W));
  mqttb_acl_free(a);
}

/* aclfile__parse(): with one word after the keyword, that word is the topic,
 * even if it is an access word. */
Test(acl_rules, lone_access_word_is_a_topic_as_in_mosquitto) {
  mqttb_acl *a = load("topic read\ntopic deny\n");
  cr_assert(chk(a, "c", NULL, "read", W));
  cr_assert(chk(a, "c", NULL, "deny", R));
  cr_assert(not(chk(a, "c", NULL, "x", R)));
  mqttb_acl_free(a);
}

Test(acl_rules, topic_is_the_rest_of_the_line_with_its_spaces) {
  mqttb_acl *a = load("topic read  my topic with  spaces  \n");
  cr_assert(chk(a, "c", NULL, "my topic with  spaces", R));
  cr_assert(not(chk(a, "c", NULL, "my", R)));
  mqttb_acl_free(a);
}

/* "deny topics are handled before topics that grant", whatever the order. */
Test(acl_rules, deny_wins_over_a_grant_before_or_after_it) {
  mqttb_acl *a = load("topic readwrite a/#\n"
                      "topic deny a/secret/#\n"
                      "user u\n"
                      "topic deny b/secret\n"
                      "topic readwrite b/#\n");
  cr_assert(chk(a, "c", NULL, "a/open", R));
  cr_assert(not(chk(a, "c", NULL, "a/secret", R)));
  cr_assert(not(chk(a, "c", NULL, "a/secret/x", W)));
  cr_assert(chk(a, "c", "u", "b/open", W));
  cr_assert(not(chk(a, "c", "u", "b/secret", R)));
  cr_assert(not(chk(a, "c", "u", "b/secret", W)));
  cr_assert(chk(a, "c", "u", "b/secret/deeper", W));
  mqttb_acl_free(a);
}

Test(acl_rules, rules_before_the_first_user_line_are_for_anonymous_clients) {
  mqttb_acl *a = load("topic read anon/#\n"
                      "user alice\n"
                      "topic readwrite alice/#\n"
                      "user bob\n"
                      "topic read bob/#\n");
  cr_assert(chk(a, "c", NULL, "anon/x", R));
  cr_assert(not(chk(a, "c", NULL, "alice/x", R)));
  cr_assert(not(chk(a, "c", "alice", "anon/x", R)), "anonymous rules are not for users");
  cr_assert(chk(a, "c", "alice", "alice/x", W));
  cr_assert(not(chk(a, "c", "alice", "bob/x", R)));
  cr_assert(chk(a, "c", "bob", "bob/x", R));
  cr_assert(not(chk(a, "c", "bob", "bob/x", W)));
  /* A user name the file does not know has no rules (no patterns here). */
  cr_assert(not(chk(a, "c", "carol", "anon/x", R)));
  cr_assert(not(chk(a, "c", "", "anon/x", R)), "an empty user name is not anonymous");
  /* Exact, case-sensitive user names; the client id is not the user name. */
  cr_assert(not(chk(a, "c", "Alice", "alice/x", R)));
  cr_assert(not(chk(a, "alice", NULL, "alice/x", R)));
  mqttb_acl_free(a);
}

Test(acl_rules, repeated_user_sections_merge) {
  mqttb_acl *a = load("user u\ntopic read one\nuser v\ntopic read v\nuser u\ntopic read two\n");
  cr_assert(chk(a, "c", "u", "one", R));
  cr_assert(chk(a, "c", "u", "two", R));
  cr_assert(not(chk(a, "c", "u", "v", R)));
  mqttb_acl_free(a);
}

Test(acl_rules, user_names_may_hold_spaces_and_utf8) {
  mqttb_acl *a = load("user  J\xc3\xbcrgen M\xc3\xbcller \nuser \xe2\x80\xae\x65vil\ntopic x\n");
  cr_assert(not(chk(a, "c", "J\xc3\xbcrgen M\xc3\xbcller", "x", R)));
  cr_assert(chk(a, "c", "\xe2\x80\xae\x65vil", "x", R));
  cr_assert(not(chk(a, "c", "evil", "x", R)));
  mqttb_acl_free(a);
}

Test(acl_rules, wildcards_in_rules_match_as_in_subscriptions) {
  mqttb_acl *a = load("topic read a/+/c\n"
                      "topic read b/#\n"
                      "topic read d/+\n"
                      "topic read e/+/#\n");
  cr_assert(chk(a, "c", NULL, "a/x/c", R));
  cr_assert(chk(a, "c", NULL, "a//c", R), "+ matches an empty level");
  cr_assert(not(chk(a, "c", NULL, "a/x/y/c", R)));
  cr_assert(chk(a, "c", NULL, "b", R), "b/# matches its parent b");
  cr_assert(chk(a, "c", NULL, "b/x/y/z", R));
  cr_assert(not(chk(a, "c", NULL, "bb/x", R)));
  cr_assert(chk(a, "c", NULL, "d/", R));
  cr_assert(not(chk(a, "c", NULL, "d/x/y", R)));
  cr_assert(not(chk(a, "c", NULL, "e", R)), "e/+/# needs a level for the +");
  cr_assert(chk(a, "c", NULL, "e/x", R));
  mqttb_acl_free(a);
  a = load("topic read +\n");
  cr_assert(chk(a, "c", NULL, "top", R));
  cr_assert(not(chk(a, "c", NULL, "/top", R)));
  cr_assert(not(chk(a, "c", NULL, "/", S)));
  cr_assert(chk(a, "c", NULL, "+", S));
  mqttb_acl_free(a);
}

Test(acl_rules, topic_names_with_wildcards_or_nul_are_refused) {
  mqttb_acl *a = load("topic readwrite #\n");
  cr_assert(chk(a, "c", NULL, "a/b", W));
  cr_assert(not(chk(a, "c", NULL, "a/+", W)));
  cr_assert(not(chk(a, "c", NULL, "a/#", R)));
  cr_assert(not(mqttb_acl_check(a, "c", NULL, "a\0b", 3, R)));
  cr_assert(not(mqttb_acl_check(a, "c", NULL, "", 0, R)));
  cr_assert(not(mqttb_acl_check(a, "c", NULL, NULL, 1, R)));
  cr_assert(not(mqttb_acl_check(NULL, "c", NULL, "a", 1, R)));
  cr_assert(not(mqttb_acl_check(a, "c", NULL, "a", 1, (mqttb_acl_access)(R | W))));
  cr_assert(not(mqttb_acl_check(a, "c", NULL, "a", 1, (mqttb_acl_access)0)));
  /* Not NUL-terminated: only topic_len bytes count. */
  cr_assert(chk(a, "c", NULL, "ab", R));
  cr_assert(mqttb_acl_check(a, "c", NULL, "a/b+", 3, R));
  mqttb_acl_free(a);
}

/* mosquitto_acl_check_default(): with an acl_file, no rule means no access. */
Test(acl_rules, empty_file_refuses_everything) {
  mqttb_acl *a = load("");
  cr_assert(not(chk(a, "c", NULL, "a", R)));
  cr_assert(not(chk(a, "c", "u", "a", W)));
  cr_assert(not(chk(a, "c", "u", "#", S)));
  cr_assert(eq(sz, mqttb_acl_rule_count(a), 0));
  mqttb_acl_free(a);
  a = load("# only comments\n\n   \n");
  cr_assert(not(chk(a, "c", NULL, "a", R)));
  mqttb_acl_free(a);
}

Test(acl_rules, comments_blanks_crlf_tabs_and_no_final_newline) {
  mqttb_acl *a = load("# comment\r\n"
                      "\r\n"
                      "   # indented comment\n"
                      "\ttopic\tread\tt/1\t\r\n"
                      "topic read t/100% one\n"
                      "user u\n"
                      "topic write t/2");
  cr_assert(chk(a, "c", NULL, "t/1", R));
  cr_assert(chk(a, "c", NULL, "t/100% one", R));
  cr_assert(chk(a, "c", "u", "t/2", W));
  mqttb_acl_free(a);
}

/* ---- patterns ---- */

Test(acl_patterns, client_id_and_user_name_substitution) {
  mqttb_acl *a = load("pattern readwrite clients/%c/#\n"
                      "pattern read users/%u/+/in\n"
                      "pattern write both/%u/%c\n");
  cr_assert(chk(a, "dev1", NULL, "clients/dev1/x", W));
  cr_assert(chk(a, "dev1", NULL, "clients/dev1", R));
  cr_assert(not(chk(a, "dev1", NULL, "clients/dev2/x", R)));
  cr_assert(not(chk(a, "dev1", NULL, "clients/dev", R)));
  cr_assert(not(chk(a, "dev", NULL, "clients/dev1", R)));
  cr_assert(chk(a, "c", "ann", "users/ann/q/in", R));
  cr_assert(not(chk(a, "c", "ann", "users/ann/q/in", W)));
  cr_assert(not(chk(a, "c", "ann", "users/bob/q/in", R)));
  cr_assert(chk(a, "c", "ann", "both/ann/c", W));
  cr_assert(not(chk(a, "c", "ann", "both/c/ann", W)));
  mqttb_acl_free(a);
}

/* "Pattern ACLs apply to all users even if the user keyword has previously
 * been given"; anonymous clients get the %c ones, never the %u ones. */
Test(acl_patterns, patterns_apply_to_all_clients_and_u_needs_a_user_name) {
  mqttb_acl *a = load("user u\n"
                      "topic read mine\n"
                      "pattern read c/%c\n"
                      "pattern read u/%u\n"
                      "pattern deny u/%u/locked\n"
                      "pattern read u/+/locked\n"
                      "pattern read everyone\n");
  cr_assert(chk(a, "x", NULL, "c/x", R));
  cr_assert(chk(a, "x", "u", "c/x", R));
  cr_assert(chk(a, "x", "v", "c/x", R));
  cr_assert(chk(a, "x", "v", "u/v", R));
  cr_assert(not(chk(a, "x", NULL, "u/%u", R)));
  cr_assert(not(chk(a, "x", "v", "u/v/locked", R)));
  cr_assert(chk(a, "x", "v", "u/w/locked", R));
  cr_assert(chk(a, "x", NULL, "u/w/locked", R), "a %u deny is skipped without a user name");
  cr_assert(chk(a, "x", NULL, "everyone", R));
  cr_assert(chk(a, "x", "u", "everyone", R));
  cr_assert(chk(a, "x", "u", "mine", R));
  mqttb_acl_free(a);
}

/* The order in mosquitto_acl_check_default(): the client's own `topic` rules
 * first (deny, then grants), the patterns after. */
Test(acl_patterns, topic_rules_are_decided_before_patterns) {
  mqttb_acl *a = load("user u\n"
                      "topic readwrite shared/#\n"
                      "topic deny private/%c\n"
                      "pattern deny shared/%u/#\n"
                      "pattern readwrite private/%c\n");
  cr_assert(chk(a, "c", "u", "shared/u/x", W), "a topic grant is not undone by a pattern deny");
  cr_assert(not(chk(a, "v", "v", "shared/v/x", W)));
  /* %c in a topic line is text: it denies "private/%c" only. */
  cr_assert(chk(a, "c", "u", "private/c", W));
  cr_assert(not(chk(a, "%c", "u", "private/%c", W)));
  cr_assert(chk(a, "%c", "v", "private/%c", W));
  mqttb_acl_free(a);
}

/* ---- hostile client ids and user names ---- */

Test(acl_hostile, plus_or_hash_in_a_name_grants_nothing_through_patterns) {
  mqttb_acl *a = load("topic read anon/#\n"
                      "user +\n"
                      "topic read plus/own\n"
                      "pattern readwrite devices/%u/#\n"
                      "pattern readwrite clients/%c/#\n"
                      "pattern read public/#\n");
  const char *bad[] = {"+", "#", "a+", "#b", "a/+", "+/#"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_assert(not(chk(a, "c", bad[i], "devices/x/y", W)), "user %s", bad[i]);
    cr_assert(not(chk(a, "c", bad[i], "devices/x", R)), "user %s", bad[i]);
    cr_assert(not(chk(a, "c", bad[i], "devices/+/y", S)), "user %s", bad[i]);
    cr_assert(not(chk(a, "c", bad[i], "devices/#", S)), "user %s", bad[i]);
    cr_assert(not(chk(a, "c", bad[i], "public/#", S)), "user %s", bad[i]);
    cr_assert(not(chk(a, "c", bad[i], "public/x", R)), "user %s: Mosquitto refuses all", bad[i]);
    cr_assert(not(chk(a, "c", bad[i], "clients/c/x", R)), "user %s", bad[i]);
    cr_assert(not(chk(a, bad[i], NULL, "clients/x/y", W)), "client id %s", bad[i]);
    cr_assert(not(chk(a, bad[i], "u", "devices/u/y", W)), "client id %s", bad[i]);
    cr_assert(not(chk(a, bad[i], NULL, "public/x", R)), "client id %s", bad[i]);
  }
  /* The section's own topic rules still apply (they come first). */
  cr_assert(chk(a, "c", "+", "plus/own", R));
  cr_assert(chk(a, "#", NULL, "anon/x", R));
  mqttb_acl_free(a);
}

/* A '/' would let "a/b" into user "a"'s space, or an empty name into
 * "devices//...": a granting pattern does not match such a value. */
Test(acl_hostile, slash_or_empty_value_does_not_widen_a_pattern_grant) {
  mqttb_acl *a = load("pattern readwrite devices/%u/#\n"
                      "pattern readwrite clients/%c/status\n");
  cr_assert(chk(a, "c", "a", "devices/a/b/x", W), "user a owns devices/a/#");
  cr_assert(not(chk(a, "c", "a/b", "devices/a/b/x", W)));
  cr_assert(not(chk(a, "c", "a/b", "devices/a/b", R)));
  cr_assert(not(chk(a, "c", "a/b", "devices/a/x", R)));
  cr_assert(not(chk(a, "c", "a/b", "devices/a", R)));
  cr_assert(not(chk(a, "c", "a/b", "devices/x/y", R)));
  cr_assert(not(chk(a, "c", "a/b", "devices/a/b/#", S)));
  cr_assert(not(chk(a, "c", "a/b", "devices/+/b/#", S)));
  cr_assert(not(chk(a, "c", "a/b", "devices/#", S)));
  cr_assert(not(chk(a, "x/y", "a/b", "#", S)), "nothing at all is readable for them");
  cr_assert(not(chk(a, "x/y", "a/b", "+/#", S)));
  cr_assert(chk(a, "x/y", "a", "#", S));
  cr_assert(chk(a, "c", "a/b", "#", S), "clients/c/status is");
  cr_assert(not(chk(a, "c", "/", "devices///x", W)));
  cr_assert(not(chk(a, "c", "", "devices//x", W)));
  cr_assert(not(chk(a, "c", "", "devices/#", S)));
  cr_assert(not(chk(a, "x/y", NULL, "clients/x/y/status", W)));
  cr_assert(not(chk(a, "x/y", NULL, "clients/+/+/status", S)));
  cr_assert(not(chk(a, "", NULL, "clients//status", W)));
  cr_assert(chk(a, "x", NULL, "clients/x/status", W));
  mqttb_acl_free(a);
}

/* A deny pattern still denies what Mosquitto 2.0 (plain text substitution)
 * denies, '/' included: the decision never grants more than Mosquitto. */
Test(acl_hostile, deny_pattern_substitutes_as_mosquitto_2_0) {
  mqttb_acl *a = load("pattern deny shared/%c/locked\n"
                      "pattern deny empty/%u/x\n"
                      "pattern read shared/#\n"
                      "pattern read empty/#\n");
  cr_assert(not(chk(a, "a/b", NULL, "shared/a/b/locked", R)));
  cr_assert(chk(a, "a/b", NULL, "shared/a/b/open", R));
  cr_assert(chk(a, "a/b", NULL, "shared/a/locked", R));
  cr_assert(not(chk(a, "a/b", NULL, "shared/a/b/locked", S)));
  cr_assert(chk(a, "a/b", NULL, "shared/a/b/#", S));
  cr_assert(chk(a, "a/b", NULL, "shared/a/+/#", S));
  cr_assert(not(chk(a, "c", "", "empty//x", R)));
  cr_assert(chk(a, "c", "", "empty/y/x", R));
  mqttb_acl_free(a);
}

Test(acl_hostile, names_that_look_like_placeholders_or_odd_utf8_stay_text) {
  mqttb_acl *a = load("pattern readwrite devices/%u/#\n"
                      "pattern readwrite clients/%c\n");
  cr_assert(chk(a, "c", "%u", "devices/%u/x", W));
  cr_assert(not(chk(a, "c", "%u", "devices/x/y", W)));
  cr_assert(chk(a, "%c", NULL, "clients/%c", W));
  cr_assert(not(chk(a, "%c", NULL, "clients/x", W)));
  cr_assert(not(chk(a, "%u", "x", "clients/x", W)));
  const char *odd[] = {"\xc3\xa9", "\xe2\x80\xae", "a\xe2\x80\x8d", "\xf0\x9f\x98\x80", "..", " "};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    char own[64], other[64];
    snprintf(own, sizeof own, "devices/%s/x", odd[i]);
    snprintf(other, sizeof other, "devices/a%s/x", odd[i]);
    cr_assert(chk(a, "c", odd[i], own, W), "user '%s'", odd[i]);
    cr_assert(not(chk(a, "c", odd[i], other, W)), "user '%s'", odd[i]);
    cr_assert(not(chk(a, "c", odd[i], "devices/a/x", W)), "user '%s'", odd[i]);
  }
  /* A prefix of the name is not the name. */
  cr_assert(not(chk(a, "c", "ab", "devices/a/x", W)));
  cr_assert(not(chk(a, "c", "a", "devices/ab/x", W)));
  mqttb_acl_free(a);
}

/* A client id "$SYS" must not turn `%c/#` into `$SYS/#` (Mosquitto 2.1:
 * '%' in a rule does not match a leading '$'). */
Test(acl_hostile, dollar_client_id_does_not_reach_sys) {
  mqttb_acl *a = load("pattern read %c/#\n");
  cr_assert(not(chk(a, "$SYS", NULL, "$SYS/broker/uptime", R)));
  cr_assert(not(chk(a, "$SYS", NULL, "$SYS/#", S)));
  cr_assert(chk(a, "dev", NULL, "dev/x", R));
  cr_assert(not(chk(a, "dev", NULL, "$SYS/x", R)));
  mqttb_acl_free(a);
}

Test(acl_hostile, missing_client_id_gets_no_pattern_access) {
  mqttb_acl *a = load("topic read anon\npattern read all/#\n");
  cr_assert(chk(a, NULL, NULL, "anon", R));
  cr_assert(not(chk(a, NULL, NULL, "all/x", R)));
  cr_assert(chk(a, "c", NULL, "all/x", R));
  mqttb_acl_free(a);
}

/* ---- $SYS and $share ---- */

Test(acl_dollar, wildcard_rules_do_not_match_dollar_topics) {
  mqttb_acl *a = load("topic readwrite #\n"
                      "topic read +/broker/#\n"
                      "user u\n"
                      "topic read $SYS/#\n"
                      "topic readwrite $other/+\n");
  cr_assert(chk(a, "c", NULL, "a/b", R));
  cr_assert(not(chk(a, "c", NULL, "$SYS/broker/uptime", R)));
  cr_assert(not(chk(a, "c", NULL, "$x", R)));
  cr_assert(chk(a, "c", "u", "$SYS/broker/uptime", R));
  cr_assert(chk(a, "c", "u", "$SYS", R));
  cr_assert(chk(a, "c", "u", "$other/x", W));
  mqttb_acl_free(a);
}

/* acl__check_dollar(): no publishing to $SYS but bridge states, no
 * publishing or reading $share topic names, whatever the rules say. */
Test(acl_dollar, sys_writes_and_share_names_are_refused_before_the_rules) {
  mqttb_acl *a = load("topic readwrite $SYS/#\n"
                      "topic readwrite $share/#\n"
                      "topic readwrite $sharedthing\n");
  cr_assert(chk(a, "c", NULL, "$SYS/broker/uptime", R));
  cr_assert(not(chk(a, "c", NULL, "$SYS/broker/uptime", W)));
  cr_assert(not(chk(a, "c", NULL, "$SYS", W)));
  cr_assert(chk(a, "c", NULL, "$SYS/broker/connection/br1/state", W));
  cr_assert(not(chk(a, "c", NULL, "$SYS/broker/connection/a/b/state", W)));
  cr_assert(not(chk(a, "c", NULL, "$share/g/t", W)));
  cr_assert(not(chk(a, "c", NULL, "$share/g/t", R)));
  cr_assert(not(chk(a, "c", NULL, "$sharedthing", W)));
  mqttb_acl_free(a);
  a = load("pattern write $SYS/broker/connection/%c/state\n");
  cr_assert(chk(a, "br1", NULL, "$SYS/broker/connection/br1/state", W));
  cr_assert(not(chk(a, "br1", NULL, "$SYS/broker/connection/br2/state", W)));
  mqttb_acl_free(a);
}

/* ---- SUBSCRIBE ---- */

/* Mosquitto grants every SUBSCRIBE with an acl_file and filters what is
 * delivered; here a filter through which nothing could be read is refused,
 * one that could deliver something is granted. */
Test(acl_subscribe, filter_wider_than_what_may_be_read_is_granted) {
  mqttb_acl *a = load("topic read a/#\n"
                      "topic write w/#\n"
                      "topic read x/+/y\n");
  cr_assert(chk(a, "c", NULL, "#", S));
  cr_assert(chk(a, "c", NULL, "+/b", S));
  cr_assert(chk(a, "c", NULL, "a", S));
  cr_assert(chk(a, "c", NULL, "a/#", S));
  cr_assert(chk(a, "c", NULL, "a/b/+", S));
  cr_assert(chk(a, "c", NULL, "x/#", S));
  cr_assert(chk(a, "c", NULL, "x/+/+", S));
  cr_assert(chk(a, "c", NULL, "+/q/y", S));
  cr_assert(not(chk(a, "c", NULL, "b/#", S)));
  cr_assert(not(chk(a, "c", NULL, "w/#", S)), "write rules do not allow subscribing");
  cr_assert(not(chk(a, "c", NULL, "x/q", S)));
  cr_assert(not(chk(a, "c", NULL, "x/q/y/z", S)));
  cr_assert(chk(a, "c", NULL, "+", S), "+ matches a, which a/# grants");
  cr_assert(chk(a, "c", NULL, "+/+/+/+", S));
  mqttb_acl_free(a);
}

Test(acl_subscribe, single_level_filter_meets_a_parent_rule) {
  mqttb_acl *a = load("topic read a/#\n");
  /* "+" matches "a", which a/# grants. */
  cr_assert(chk(a, "c", NULL, "+", S));
  cr_assert(chk(a, "c", NULL, "+/+/+", S));
  cr_assert(not(chk(a, "c", NULL, "b", S)));
  mqttb_acl_free(a);
}

Test(acl_subscribe, filter_entirely_denied_is_refused) {
  mqttb_acl *a = load("topic read a/#\n"
                      "topic deny a/secret/#\n"
                      "topic deny a/+/hidden\n");
  cr_assert(not(chk(a, "c", NULL, "a/secret", S)));
  cr_assert(not(chk(a, "c", NULL, "a/secret/x/#", S)));
  cr_assert(not(chk(a, "c", NULL, "a/secret/#", S)));
  cr_assert(not(chk(a, "c", NULL, "a/+/hidden", S)));
  cr_assert(not(chk(a, "c", NULL, "a/q/hidden", S)));
  cr_assert(chk(a, "c", NULL, "a/+", S));
  cr_assert(chk(a, "c", NULL, "a/+/#", S));
  cr_assert(chk(a, "c", NULL, "a/+/hidden/x", S));
  cr_assert(chk(a, "c", NULL, "#", S));
  mqttb_acl_free(a);
}

Test(acl_subscribe, sys_filters_need_a_sys_rule) {
  mqttb_acl *a = load("topic read #\nuser u\ntopic read $SYS/broker/#\n");
  cr_assert(chk(a, "c", NULL, "#", S));
  cr_assert(not(chk(a, "c", NULL, "$SYS/#", S)));
  cr_assert(not(chk(a, "c", NULL, "$SYS/broker/uptime", S)));
  cr_assert(chk(a, "c", "u", "$SYS/#", S));
  cr_assert(chk(a, "c", "u", "$SYS/+/uptime", S));
  cr_assert(not(chk(a, "c", "u", "#", S)), "# matches no $SYS topic");
  cr_assert(not(chk(a, "c", "u", "+/broker/#", S)));
  cr_assert(not(chk(a, "c", "u", "$SYS/other", S)));
  mqttb_acl_free(a);
}

Test(acl_subscribe, shared_subscription_is_checked_on_its_filter) {
  mqttb_acl *a = load("topic read jobs/#\n");
  cr_assert(chk(a, "c", NULL, "$share/workers/jobs/#", S));
  cr_assert(chk(a, "c", NULL, "$share/workers/#", S));
  cr_assert(not(chk(a, "c", NULL, "$share/workers/other", S)));
  cr_assert(not(chk(a, "c", NULL, "$share/jobs", S)));
  cr_assert(not(chk(a, "c", NULL, "$share//jobs/#", S)));
  cr_assert(not(chk(a, "c", NULL, "$share/g+/jobs/#", S)));
  cr_assert(not(chk(a, "c", NULL, "$share/g/", S)));
  mqttb_acl_free(a);
}

Test(acl_subscribe, patterns_and_invalid_filters) {
  mqttb_acl *a = load("pattern read devices/%u/#\npattern read c/%c/in\n");
  cr_assert(chk(a, "c", "u", "devices/u/x", S));
  cr_assert(chk(a, "c", "u", "devices/+/x", S));
  cr_assert(chk(a, "c", "u", "devices/#", S));
  cr_assert(chk(a, "c", "u", "#", S));
  cr_assert(not(chk(a, "c", "u", "devices/v/#", S)));
  cr_assert(not(chk(a, "c", NULL, "devices/#", S)));
  cr_assert(chk(a, "c", NULL, "c/+/in", S));
  cr_assert(chk(a, "c", NULL, "+/c/#", S));
  cr_assert(not(chk(a, "c", NULL, "c/d/in", S)));
  cr_assert(not(chk(a, "c", "u", "devices/u#", S)));
  cr_assert(not(chk(a, "c", "u", "devices/#/x", S)));
  cr_assert(not(chk(a, "c", "u", "devices/u+", S)));
  cr_assert(not(mqttb_acl_check(a, "c", "u", "devices/u\0", 10, S)));
  mqttb_acl_free(a);
}

/* ---- malformed files ---- */

Test(acl_malformed, each_error_names_the_line) {
  load_fails_str("topic a\nbogus a b\n", 2, "unknown keyword 'bogus'");
  load_fails_str("Topic a\n", 1, "unknown keyword 'Topic'");
  load_fails_str("\n\ntopic reed a/b\n", 3, "invalid access 'reed'");
  load_fails_str("topic read a/#/b\n", 1, "'#' must be the last level");
  load_fails_str("topic read a/b#\n", 1, "'#' must be a whole level");
  load_fails_str("topic read a+/b\n", 1, "'+' must be a whole level");
  load_fails_str("pattern read a/x%c/b\n", 1, "'%c' must be a whole level");
  load_fails_str("pattern read a/%user\n", 1, "'%u' must be a whole level");
  load_fails_str("topic\n", 1, "missing topic");
  load_fails_str("topic   \t \n", 1, "missing topic");
  load_fails_str("pattern\n", 1, "missing topic");
  load_fails_str("topic a\nuser\n", 2, "missing user name");
  load_fails_str("user   \n", 1, "missing user name");
  load_fails("topic a\ntopic b\0c\n", 17, 2, "NUL byte");
  load_fails_str("topic read \xc3\x28\n", 1, "invalid UTF-8");
  load_fails_str("user \xc0\xaf\n", 1, "invalid UTF-8");          /* overlong '/' */
  load_fails_str("topic \xed\xa0\x80\n", 1, "invalid UTF-8");     /* surrogate */
  load_fails_str("topic \xf4\x90\x80\x80\n", 1, "invalid UTF-8"); /* > U+10FFFF */
  load_fails_str("topic ab\xe2\x82\n", 1, "invalid UTF-8");       /* truncated */
  load_fails_str("topic \xff\n", 1, "invalid UTF-8");
  /* Truncated at the very end of the data: nothing past it is read (ASan). */
  char *exact = malloc(10);
  memcpy(exact, "topic ab\xe2\x82", 10);
  load_fails(exact, 10, 1, "invalid UTF-8");
  free(exact);
  /* Comments are not checked for UTF-8 (old files in Latin-1). */
  mqttb_acl *a = load("# M\xfcller\ntopic x\n");
  mqttb_acl_free(a);
}

Test(acl_malformed, error_text_is_printable) {
  char err[256];
  mqttb_acl *a;
  const char *bad = "\x1b[31mred\x1b[0m a\n";
  cr_assert(eq(int, mqttb_acl_load_buffer(bad, strlen(bad), "t.acl", &a, err, sizeof err), -1));
  for (const char *p = err; *p; p++) {
    unsigned char ch = (unsigned char)*p;
    bool printable = ch >= 0x20 && ch < 0x7f;
    cr_assert(printable, "byte %02x in '%s'", ch, err);
  }
}

Test(acl_malformed, limits_on_lines_topics_and_levels) {
  size_t n = MQTTB_ACL_MAX_LINE + 10;
  static char buf[MQTTB_ACL_MAX_LINE + 128];
  strcpy(buf, "topic a\n# ");
  memset(buf + 10, 'x', n);
  strcpy(buf + 10 + n, "\n");
  load_fails(buf, strlen(buf), 2, "line longer than");

  /* 65535 bytes of topic are fine, 65536 are not. */
  strcpy(buf, "topic ");
  memset(buf + 6, 'y', 65535);
  strcpy(buf + 6 + 65535, "\n");
  mqttb_acl *a = load(buf);
  mqttb_acl_free(a);
  strcpy(buf, "topic ");
  memset(buf + 6, 'y', 65536);
  strcpy(buf + 6 + 65536, "\n");
  load_fails(buf, strlen(buf), 1, "topic longer than 65535");

  /* 201 levels (200 '/') are fine, 202 are not. */
  strcpy(buf, "topic a");
  for (int i = 0; i < 200; i++) {
    strcat(buf, "/a");
  }
  a = load(buf);
  mqttb_acl_free(a);
  strcat(buf, "/a");
  load_fails(buf, strlen(buf), 1, "more than 201 levels");

  strcpy(buf, "user ");
  memset(buf + 5, 'u', 65536);
  strcpy(buf + 5 + 65536, "\n");
  load_fails(buf, strlen(buf), 1, "user name longer than 65535");
}

Test(acl_malformed, binary_data_is_refused_at_its_line) {
  unsigned char junk[4096];
  unsigned s = 12345;
  for (size_t i = 0; i < sizeof junk; i++) {
    s = s * 1103515245u + 12345u;
    junk[i] = (unsigned char)(s >> 16);
  }
  char err[256];
  mqttb_acl *a = NULL;
  cr_assert(
      eq(int, mqttb_acl_load_buffer((char *)junk, sizeof junk, "bin", &a, err, sizeof err), -1));
  cr_assert(eq(ptr, a, NULL));
  cr_assert(eq(int, strncmp(err, "bin:", 4), 0), "%s", err);
}

/* ---- files ---- */

static char *temp_file(const void *data, size_t len) {
  char *path = strdup("/tmp/test_acl_XXXXXX");
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert(eq(sz, (size_t)write(fd, data, len), len));
  close(fd);
  return path;
}

Test(acl_file, loads_a_file_and_names_it_in_errors) {
  const char good[] = "topic read a\nuser u\ntopic b\n";
  char *path = temp_file(good, sizeof good - 1);
  char err[512];
  mqttb_acl *a = NULL;
  cr_assert(eq(int, mqttb_acl_load(path, &a, err, sizeof err), 0), "%s", err);
  cr_assert(chk(a, "c", "u", "b", W));
  mqttb_acl_free(a);
  unlink(path);
  free(path);

  const char bad[] = "topic read a\n\ntopic read a/#/b\n";
  path = temp_file(bad, sizeof bad - 1);
  cr_assert(eq(int, mqttb_acl_load(path, &a, err, sizeof err), -1));
  cr_assert(eq(ptr, a, NULL));
  char want[600];
  snprintf(want, sizeof want, "%s:3: ", path);
  cr_assert(eq(int, strncmp(err, want, strlen(want)), 0), "%s", err);
  unlink(path);
  free(path);
}

Test(acl_file, unreadable_files_say_why) {
  char err[512];
  mqttb_acl *a = NULL;
  cr_assert(eq(int, mqttb_acl_load("/nonexistent/acl", &a, err, sizeof err), -1));
  cr_assert(eq(str, err, "/nonexistent/acl: cannot open ACL file: No such file or directory"));
  cr_assert(eq(int, mqttb_acl_load("/tmp", &a, err, sizeof err), -1));
  cr_assert(eq(str, err, "/tmp: cannot read ACL file: Is a directory"));
  cr_assert(eq(int, mqttb_acl_load(NULL, &a, err, sizeof err), -1));
  cr_assert(eq(int, mqttb_acl_load("/dev/null", &a, err, sizeof err), 0), "%s", err);
  cr_assert(not(chk(a, "c", NULL, "a", R)));
  mqttb_acl_free(a);
  if (geteuid() != 0) {
    char *path = temp_file("topic a\n", 8);
    chmod(path, 0);
    cr_assert(eq(int, mqttb_acl_load(path, &a, err, sizeof err), -1));
    cr_assert(not(eq(ptr, strstr(err, "Permission denied"), NULL)), "%s", err);
    unlink(path);
    free(path);
  }
}

Test(acl_file, file_larger_than_the_cap_is_refused_without_reading_it) {
  char *path = strdup("/tmp/test_acl_XXXXXX");
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  /* Sparse: no disk space, and it would be all NUL bytes if it were read. */
  cr_assert(eq(int, ftruncate(fd, (off_t)MQTTB_ACL_MAX_FILE_SIZE + 1), 0));
  close(fd);
  char err[512];
  mqttb_acl *a = (mqttb_acl *)err;
  cr_assert(eq(int, mqttb_acl_load(path, &a, err, sizeof err), -1));
  cr_assert(eq(ptr, a, NULL));
  cr_assert(not(eq(ptr, strstr(err, "larger than 33554432 bytes"), NULL)), "%s", err);
  cr_assert(eq(int, strncmp(err, path, strlen(path)), 0), "%s", err);
  unlink(path);
  free(path);
}

/* A device never ends: the cap stops reading it. */
Test(acl_file, endless_device_is_cut_off) {
  char err[512];
  mqttb_acl *a = NULL;
  cr_assert(eq(int, mqttb_acl_load("/dev/zero", &a, err, sizeof err), -1));
  cr_assert(not(eq(ptr, strstr(err, "/dev/zero: larger than"), NULL)), "%s", err);
}

/* ---- against a plain reimplementation of Mosquitto's algorithm ---- */

/* MQTT matching of a topic name against a filter (mosquitto_topic_matches_sub). */
static bool ref_matches(const char *f, const char *t) {
  if ((f[0] == '$') != (t[0] == '$')) {
    return false;
  }
  for (;;) {
    const char *fe = strchr(f, '/');
    size_t fl = fe ? (size_t)(fe - f) : strlen(f);
    if (fl == 1 && f[0] == '#') {
      return true;
    }
    if (t == NULL) {
      /* Topic finished: only "/#" may remain of the filter. */
      return false;
    }
    const char *te = strchr(t, '/');
    size_t tl = te ? (size_t)(te - t) : strlen(t);
    if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0)) {
      return false;
    }
    if (!fe) {
      return !te;
    }
    f = fe + 1;
    t = te ? te + 1 : NULL;
    if (t == NULL && strcmp(f, "#") == 0) {
      return true;
    }
  }
}

struct ref_rule {
  int section; /* -1 patterns, 0 anonymous, 1.. users[section-1] */
  bool deny;
  unsigned bits;
  char topic[64];
};

static const char *ref_users[] = {"a", "b", "u"};

static bool ref_value_ok(const char *v) {
  return v && v[0] && !strchr(v, '/');
}

/* Substitute whole-level %c / %u as text. */
static void ref_subst(const char *rule, const char *c, const char *u, char *out, size_t cap) {
  out[0] = '\0';
  const char *p = rule;
  for (;;) {
    const char *e = strchr(p, '/');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == 2 && p[0] == '%' && (p[1] == 'c' || p[1] == 'u')) {
      strncat(out, p[1] == 'c' ? c : u, cap - strlen(out) - 1);
    } else {
      strncat(out, p, l < cap - strlen(out) - 1 ? l : cap - strlen(out) - 1);
    }
    if (!e) {
      break;
    }
    strncat(out, "/", cap - strlen(out) - 1);
    p = e + 1;
  }
}

static bool uses(const char *rule, char which) {
  char pat[3] = {'%', which, 0};
  const char *p = rule;
  while ((p = strstr(p, pat)) != NULL) {
    if ((p == rule || p[-1] == '/') && (p[2] == '/' || p[2] == '\0')) {
      return true;
    }
    p++;
  }
  return false;
}

static bool ref_check(const struct ref_rule *rules, size_t n, const char *c, const char *u,
                      const char *t, unsigned bit) {
  if (strncmp(t, "$share", 6) == 0) {
    return false;
  }
  if (bit == W && strncmp(t, "$SYS", 4) == 0) {
    return false;
  }
  int sec = 0;
  if (u) {
    sec = -2;
    for (int i = 0; i < 3; i++) {
      if (strcmp(u, ref_users[i]) == 0) {
        sec = i + 1;
      }
    }
  }
  bool has_patterns = false;
  for (size_t i = 0; i < n; i++) {
    has_patterns |= rules[i].section == -1;
    if (rules[i].section == sec && rules[i].deny && ref_matches(rules[i].topic, t)) {
      return false;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (rules[i].section == sec && !rules[i].deny && (rules[i].bits & bit) &&
        ref_matches(rules[i].topic, t)) {
      return true;
    }
  }
  if (!has_patterns || (u && strpbrk(u, "+#")) || !c || strpbrk(c, "+#")) {
    return false;
  }
  char sub[256];
  for (size_t i = 0; i < n; i++) {
    const struct ref_rule *r = &rules[i];
    if (r->section != -1 || !r->deny || (uses(r->topic, 'u') && !u)) {
      continue;
    }
    ref_subst(r->topic, c, u, sub, sizeof sub);
    if (ref_matches(sub, t)) {
      return false;
    }
  }
  for (size_t i = 0; i < n; i++) {
    const struct ref_rule *r = &rules[i];
    if (r->section != -1 || r->deny || !(r->bits & bit)) {
      continue;
    }
    if ((uses(r->topic, 'u') && !ref_value_ok(u)) || (uses(r->topic, 'c') && !ref_value_ok(c))) {
      continue; /* our rule: a granting pattern needs a single-level value */
    }
    if (r->topic[0] == '%' && t[0] == '$') {
      continue; /* and a leading %c/%u does not match '$' (Mosquitto 2.1) */
    }
    ref_subst(r->topic, c, u, sub, sizeof sub);
    if (ref_matches(sub, t)) {
      return true;
    }
  }
  return false;
}

static unsigned rnd_state;
static unsigned rnd(unsigned n) {
  rnd_state = rnd_state * 1103515245u + 12345u;
  return (rnd_state >> 8) % n;
}

static const char *topic_levels[] = {"a", "b", "$SYS", "", "x"};
#define NTOPICS (5 + 25 + 125)
static char universe[NTOPICS][32];

static void make_universe(void) {
  int k = 0;
  for (int len = 1; len <= 3; len++) {
    int total = len == 1 ? 5 : len == 2 ? 25 : 125;
    for (int i = 0; i < total; i++) {
      int v = i;
      universe[k][0] = '\0';
      for (int l = 0; l < len; l++) {
        if (l) {
          strcat(universe[k], "/");
        }
        strcat(universe[k], topic_levels[v % 5]);
        v /= 5;
      }
      k++;
    }
  }
}

static void random_topic(char *out, bool rule) {
  static const char *rule_levels[] = {"a", "b", "$SYS", "", "x", "+", "#", "%c", "%u"};
  int len = 1 + (int)rnd(3);
  out[0] = '\0';
  for (int l = 0; l < len; l++) {
    const char *lvl = rule_levels[rnd(rule ? 9 : 7)];
    if (l) {
      strcat(out, "/");
    }
    strcat(out, lvl);
    if (strcmp(lvl, "#") == 0) {
      break;
    }
  }
}

static const char *ids[] = {"a", "b", "a/b", "", "$SYS", "x", "+", NULL};
static const char *names[] = {NULL, "a", "b", "u", "a/b", "", "#", "x"};
#define NIDS (sizeof ids / sizeof ids[0])
#define NNAMES (sizeof names / sizeof names[0])

/* Random files of up to 10 rules, every identity, every topic of the
 * universe: READ and WRITE agree with the reference; SUBSCRIBE is refused
 * only when no topic of the universe matching the filter is readable, and
 * a filter without wildcards is granted exactly when it is readable. */
Test(acl_reference, random_files_agree_with_the_reference, .timeout = 240) {
  static const char *acc[] = {"read", "write", "readwrite", "deny", ""};
  static bool readable[NIDS][NNAMES][NTOPICS];
  make_universe();
  rnd_state = 7;
  for (int round = 0; round < 300; round++) {
    struct ref_rule rules[10];
    size_t n = 1 + rnd(10);
    char file[2048] = "";
    /* Anonymous rules first, then patterns and user sections mixed. */
    for (size_t i = 0; i < n; i++) {
      struct ref_rule *r = &rules[i];
      int kind = (int)rnd(5);
      r->section = kind == 0 ? 0 : kind == 1 ? -1 : kind - 1;
      const char *word = acc[rnd(5)];
      r->deny = strcmp(word, "deny") == 0;
      r->bits = strcmp(word, "read") == 0 ? R : strcmp(word, "write") == 0 ? W : R | W;
      do {
        random_topic(r->topic, r->section == -1);
      } while (r->topic[0] == '\0');
    }
    for (int sec = 0; sec <= 3; sec++) {
      if (sec > 0) {
        strcat(file, "user ");
        strcat(file, ref_users[sec - 1]);
        strcat(file, "\n");
      }
      for (size_t i = 0; i < n; i++) {
        if (rules[i].section == sec || (sec == 3 && rules[i].section == -1)) {
          char line[128];
          size_t idx = (size_t)(rules[i].deny        ? 3
                                : rules[i].bits == R ? 0
                                : rules[i].bits == W ? 1
                                                     : 2 + rnd(2) * 2);
          snprintf(line, sizeof line, "%s %s %s\n", rules[i].section == -1 ? "pattern" : "topic",
                   acc[idx], rules[i].topic);
          strcat(file, line);
        }
      }
    }
    mqttb_acl *a = load(file);
    for (size_t ci = 0; ci < NIDS; ci++) {
      for (size_t ui = 0; ui < NNAMES; ui++) {
        for (int t = 0; t < NTOPICS; t++) {
          if (universe[t][0] == '\0') {
            continue; /* not a topic name */
          }
          for (unsigned bit = R; bit <= W; bit++) {
            bool want = ref_check(rules, n, ids[ci], names[ui], universe[t], bit);
            bool got = chk(a, ids[ci], names[ui], universe[t], (mqttb_acl_access)bit);
            cr_assert(eq(int, got, want), "file:\n%sid %s user %s topic '%s' access %u", file,
                      ids[ci] ? ids[ci] : "NULL", names[ui] ? names[ui] : "NULL", universe[t], bit);
            if (bit == R) {
              readable[ci][ui][t] = want;
            }
          }
        }
      }
    }
    for (int f = 0; f < 40; f++) {
      char filter[64];
      random_topic(filter, false);
      bool literal = strpbrk(filter, "+#") == NULL;
      for (size_t ci = 0; ci < NIDS; ci++) {
        for (size_t ui = 0; ui < NNAMES; ui++) {
          bool any = false;
          for (int t = 0; t < NTOPICS && !any; t++) {
            any = readable[ci][ui][t] && ref_matches(filter, universe[t]);
          }
          bool got = chk(a, ids[ci], names[ui], filter, S);
          if (any) {
            cr_assert(got, "file:\n%sid %s user %s: filter '%s' refused but readable", file,
                      ids[ci] ? ids[ci] : "NULL", names[ui] ? names[ui] : "NULL", filter);
          }
          if (literal) {
            cr_assert(eq(int, got, chk(a, ids[ci], names[ui], filter, R)),
                      "file:\n%sid %s user %s: literal filter '%s'", file,
                      ids[ci] ? ids[ci] : "NULL", names[ui] ? names[ui] : "NULL", filter);
          }
        }
      }
    }
    mqttb_acl_free(a);
  }
}

/* ---- big files ---- */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct big {
  char *text;
  size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void big_add(struct big *b, const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (b->len + (size_t)n + 1 > b->cap) {
    b->cap = b->cap ? b->cap * 2 : 1 << 20;
    b->text = realloc(b->text, b->cap);
    cr_assert(not(eq(ptr, b->text, NULL)));
  }
  memcpy(b->text + b->len, line, (size_t)n + 1);
  b->len += (size_t)n;
}

static mqttb_acl *timed_load(struct big *b, const char *what) {
  char err[512];
  mqttb_acl *a = NULL;
  double t0 = now();
  cr_assert(eq(int, mqttb_acl_load_buffer(b->text, b->len, "big.acl", &a, err, sizeof err), 0),
            "%s", err);
  double dt = now() - t0;
  fprintf(stderr, "acl %s: %zu rules, %zu bytes, loaded in %.1f ms\n", what,
          mqttb_acl_rule_count(a), b->len, dt * 1e3);
  cr_assert(dt < 10.0, "load took %.2f s", dt);
  return a;
}

#define CHECKS 1000000
#define INPUTS 4096

static void report(const char *what, double dt) {
  fprintf(stderr, "acl %s: %.0f ns per check\n", what, dt / CHECKS * 1e9);
  /* Generous, for sanitizer builds on slow machines. */
  cr_assert(dt / CHECKS < 20e-6, "%s: %.1f us per check", what, dt / CHECKS * 1e6);
}

static char in_user[INPUTS][32];
static char in_topic[INPUTS][96];
static size_t in_len[INPUTS];

/* 50000 users with two rules each, and two patterns: a check looks the user
 * up and walks a few levels, whatever the size of the file. */
Test(acl_big, hundred_thousand_rules_in_user_sections, .timeout = 120) {
  struct big b = {0};
  for (int i = 0; i < 50000; i++) {
    big_add(&b, "user user%d\ntopic readwrite devices/user%d/#\ntopic read fleet/%d/+/status\n", i,
            i, i % 100);
  }
  big_add(&b, "pattern readwrite clients/%%c/#\npattern deny clients/%%c/locked\n");
  mqttb_acl *a = timed_load(&b, "users");
  cr_assert(eq(sz, mqttb_acl_rule_count(a), 100002));
  for (int i = 0; i < INPUTS; i++) {
    int u = (int)((unsigned)i * 2654435761u % 50000u);
    snprintf(in_user[i], sizeof in_user[i], "user%d", u);
    snprintf(in_topic[i], sizeof in_topic[i], "devices/user%d/sensor/%d", i % 2 ? u : u + 1, i % 7);
    in_len[i] = strlen(in_topic[i]);
  }
  unsigned long granted = 0;
  double t0 = now();
  for (int i = 0; i < CHECKS; i++) {
    int k = i % INPUTS;
    granted += mqttb_acl_check(a, "cid", in_user[k], in_topic[k], in_len[k], i % 3 ? R : W);
  }
  report("users (READ/WRITE)", now() - t0);
  cr_assert(eq(u64, granted, CHECKS / 2));
  granted = 0;
  /* The same client again and again (caches warm, as for a busy client). */
  t0 = now();
  for (int i = 0; i < CHECKS; i++) {
    granted += mqttb_acl_check(a, "cid", "user7", "devices/user7/sensor/3", 22, R);
  }
  report("one user, warm", now() - t0);
  cr_assert(eq(u64, granted, CHECKS));
  /* A user name the file does not know: lookup, then the patterns. */
  t0 = now();
  for (int i = 0; i < CHECKS; i++) {
    granted += mqttb_acl_check(a, "cid", "stranger", in_topic[i % INPUTS], in_len[i % INPUTS], R);
  }
  report("unknown user, patterns", now() - t0);
  cr_assert(chk(a, "c1", "user7", "clients/c1/x", W));
  cr_assert(not(chk(a, "c1", "user7", "clients/c1/locked", W)));
  cr_assert(chk(a, "c1", "user7", "fleet/7/truck/status", R));
  cr_assert(not(chk(a, "c1", "user7", "fleet/8/truck/status", R)));
  cr_assert(chk(a, "c1", "user7", "#", S));
  cr_assert(not(chk(a, "c1", "nobody", "devices/#", S)));
  mqttb_acl_free(a);
  free(b.text);
}

/* 100000 rules for one client and 100000 patterns: still no scan. */
Test(acl_big, hundred_thousand_rules_for_one_user_and_as_patterns, .timeout = 120) {
  struct big b = {0};
  for (int i = 0; i < 100000; i++) {
    big_add(&b, "topic %s t/%d/+/#\n", i % 10 ? "read" : "deny", i);
  }
  for (int i = 0; i < 100000; i++) {
    big_add(&b, "pattern readwrite p/%d/%%u/#\n", i);
  }
  mqttb_acl *a = timed_load(&b, "one section + patterns");
  for (int i = 0; i < INPUTS; i++) {
    int k = (int)((unsigned)i * 2654435761u % 100000u);
    if (i % 2) {
      snprintf(in_topic[i], sizeof in_topic[i], "t/%d/x/y", k);
    } else {
      snprintf(in_topic[i], sizeof in_topic[i], "p/%d/%s/z", k, i % 4 ? "bob" : "eve");
    }
    in_len[i] = strlen(in_topic[i]);
  }
  unsigned long granted = 0;
  double t0 = now();
  for (int i = 0; i < CHECKS; i++) {
    int k = i % INPUTS;
    granted += mqttb_acl_check(a, "cid", i % 2 ? NULL : "bob", in_topic[k], in_len[k], R);
  }
  report("one section + patterns", now() - t0);
  cr_assert(lt(u64, 0, granted));
  cr_assert(chk(a, "c", NULL, "t/11/x", R));
  cr_assert(not(chk(a, "c", NULL, "t/10/x", R)));
  cr_assert(not(chk(a, "c", NULL, "t/11", R)));
  cr_assert(chk(a, "c", "bob", "p/99999/bob/q", W));
  cr_assert(not(chk(a, "c", "bob", "p/99999/eve/q", W)));
  /* A `+` over 100000 children stops at the walk's budget and grants, as
   * Mosquitto grants every SUBSCRIBE; without wildcards the check is exact. */
  double s0 = now();
  for (int i = 0; i < 100; i++) {
    cr_assert(chk(a, "c", NULL, "+/+", S), "over budget: granted");
    cr_assert(not(chk(a, "c", NULL, "zz/+", S)));
    cr_assert(not(chk(a, "c", NULL, "t/10/q", S)));
    cr_assert(chk(a, "c", NULL, "t/11/q", S));
  }
  fprintf(stderr, "acl SUBSCRIBE over 200000 rules: %.1f us per check (worst case: +/+)\n",
          (now() - s0) / 400 * 1e6);
  s0 = now();
  for (int i = 0; i < 100; i++) {
    chk(a, "c", NULL, "+/+", S);
  }
  double per = (now() - s0) / 100;
  fprintf(stderr, "acl SUBSCRIBE +/+ over 100000 siblings: %.1f us\n", per * 1e6);
  cr_assert(per < 5e-3, "%.1f us", per * 1e6);
  mqttb_acl_free(a);
  free(b.text);
}

Test(acl, a_fifo_is_refused_without_waiting_for_a_writer) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/mqttb-acl-fifo-%d", (int)getpid());
  unlink(path);
  cr_assert(eq(int, mkfifo(path, 0600), 0));
  mqttb_acl *acl = NULL;
  char err[256] = "";
  int rc = mqttb_acl_load(path, &acl, err, sizeof err);
  unlink(path);
  cr_assert(eq(int, rc, -1));
  cr_assert(eq(ptr, acl, NULL));
  cr_assert(not(eq(ptr, strstr(err, "FIFO"), NULL)), "%s", err);
}
