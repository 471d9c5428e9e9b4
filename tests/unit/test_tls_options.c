/* SPDX-License-Identifier: MIT */
/* cli/tls_options.c: the TLS listener options of mosquitto.conf, in every
 * build. With TLS they are parsed into struct mqttb_cli_tls_options; without
 * it each of them is refused by name, so that a configuration written for
 * TLS never comes up as a plain listener. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/tls.h"

static const char *const names[] = {
    "cafile",
    "capath",
    "certfile",
    "keyfile",
    "crlfile",
    "ciphers",
    "ciphers_tls1.3",
    "tls_version",
    "require_certificate",
    "use_identity_as_username",
    "use_subject_as_username",
};

#if MQTTB_CLI_TLS

static void set(struct mqttb_cli_tls_options *o, const char *name, const char *value) {
  char err[256] = "";
  char *argv[] = {(char *)value, NULL};
  cr_assert(eq(int, mqttb_cli_tls_option_set(o, name, 1, argv, err, sizeof err), 0), "%s: %s", name,
            err);
}

Test(tls_options, option_parser_takes_mosquitto_names_and_values) {
  struct mqttb_cli_tls_options o;
  mqttb_cli_tls_options_init(&o);
  cr_assert(not(mqttb_cli_tls_options_any(&o)));
  set(&o, "cafile", "/a");
  set(&o, "capath", "/b");
  set(&o, "certfile", "/c");
  set(&o, "keyfile", "/d");
  set(&o, "crlfile", "/e");
  set(&o, "ciphers", "HIGH");
  set(&o, "ciphers_tls1.3", "TLS_AES_128_GCM_SHA256");
  set(&o, "tls_version", "tlsv1.1");
  set(&o, "tls_version", "tlsv1.3"); /* a later line replaces an earlier one */
  set(&o, "require_certificate", "true");
  set(&o, "use_identity_as_username", "true");
  set(&o, "use_subject_as_username", "true");
  set(&o, "use_subject_as_username", "false");
  cr_assert(eq(str, o.cafile, "/a"));
  cr_assert(eq(str, o.capath, "/b"));
  cr_assert(eq(str, o.certfile, "/c"));
  cr_assert(eq(str, o.keyfile, "/d"));
  cr_assert(eq(str, o.crlfile, "/e"));
  cr_assert(eq(str, o.ciphers, "HIGH"));
  cr_assert(eq(str, o.ciphers_tls13, "TLS_AES_128_GCM_SHA256"));
  cr_assert(eq(str, o.tls_version, "tlsv1.3"));
  cr_assert(o.require_certificate);
  cr_assert(o.use_identity_as_username);
  cr_assert(not(o.use_subject_as_username));
  cr_assert(mqttb_cli_tls_options_any(&o));
  mqttb_cli_tls_options_free(&o);
  cr_assert(eq(ptr, o.cafile, NULL));

  /* One boolean alone makes a TLS listener too. */
  mqttb_cli_tls_options_init(&o);
  set(&o, "require_certificate", "true");
  cr_assert(mqttb_cli_tls_options_any(&o));
  mqttb_cli_tls_options_free(&o);
}

Test(tls_options, copy_has_strings_of_its_own) {
  struct mqttb_cli_tls_options o, c;
  mqttb_cli_tls_options_init(&o);
  set(&o, "certfile", "/c");
  set(&o, "ciphers_tls1.3", "TLS_AES_128_GCM_SHA256");
  set(&o, "require_certificate", "true");
  cr_assert(eq(int, mqttb_cli_tls_options_copy(&c, &o), 0));
  mqttb_cli_tls_options_free(&o);
  cr_assert(eq(str, c.certfile, "/c"));
  cr_assert(eq(str, c.ciphers_tls13, "TLS_AES_128_GCM_SHA256"));
  cr_assert(eq(ptr, c.keyfile, NULL));
  cr_assert(c.require_certificate);
  mqttb_cli_tls_options_free(&c);
}

Test(tls_options, option_parser_refuses_bad_values_and_leaves_others_alone) {
  struct mqttb_cli_tls_options o;
  mqttb_cli_tls_options_init(&o);
  char err[256];
  char *v1[] = {"tlsv1", NULL};
  cr_assert(eq(int, mqttb_cli_tls_option_set(&o, "tls_version", 1, v1, err, sizeof err), -1));
  cr_assert(eq(str, err,
               "invalid value 'tlsv1' for 'tls_version' (expected tlsv1.3, tlsv1.2 or tlsv1.1)"));
  char *v2[] = {"yes", NULL};
  cr_assert(
      eq(int, mqttb_cli_tls_option_set(&o, "require_certificate", 1, v2, err, sizeof err), -1));
  cr_assert(eq(str, err, "invalid value 'yes' for 'require_certificate' (expected true or false)"));
  char *v3[] = {"a", "b", NULL};
  cr_assert(eq(int, mqttb_cli_tls_option_set(&o, "certfile", 2, v3, err, sizeof err), -1));
  cr_assert(eq(str, err, "too many values for 'certfile'"));
  cr_assert(eq(int, mqttb_cli_tls_option_set(&o, "keyfile", 0, v3 + 2, err, sizeof err), -1));
  cr_assert(eq(str, err, "missing value for 'keyfile'"));
  /* Not ours: nothing changed, the config parser goes on with its own. */
  cr_assert(eq(int, mqttb_cli_tls_option_set(&o, "listener", 1, v1, err, sizeof err), 1));
  cr_assert(eq(int, mqttb_cli_tls_option_set(&o, "psk_hint", 1, v1, err, sizeof err), 1));
  cr_assert(not(mqttb_cli_tls_options_any(&o)));
  mqttb_cli_tls_options_free(&o);
}

#else

Test(tls_options, every_tls_option_needs_a_build_with_tls) {
  struct mqttb_cli_tls_options o;
  mqttb_cli_tls_options_init(&o);
  char *argv[] = {"true", NULL};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char err[256] = "";
    char want[256];
    snprintf(want, sizeof want, "'%s' needs TLS, which this build of mqttb does not have",
             names[i]);
    cr_assert(eq(int, mqttb_cli_tls_option_set(&o, names[i], 1, argv, err, sizeof err), -1));
    cr_assert(eq(str, err, want));
  }
  cr_assert(not(mqttb_cli_tls_options_any(&o)));
  char err[256];
  cr_assert(eq(int, mqttb_cli_tls_option_set(&o, "listener", 1, argv, err, sizeof err), 1),
            "not a TLS option: the config parser's own");
  mqttb_cli_tls_options_free(&o);
}

#endif

/* Each name is known in either build: applied with TLS, refused without;
 * never "not a TLS option". */
Test(tls_options, every_mosquitto_tls_option_is_known) {
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    struct mqttb_cli_tls_options o;
    mqttb_cli_tls_options_init(&o);
    char *argv[] = {strstr(names[i], "_as_") || strstr(names[i], "require") ? "true" : "tlsv1.2",
                    NULL};
    char err[256] = "";
    int rc = mqttb_cli_tls_option_set(&o, names[i], 1, argv, err, sizeof err);
    cr_assert(eq(int, rc, MQTTB_CLI_TLS ? 0 : -1), "%s: %s", names[i], err);
    cr_assert(eq(int, mqttb_cli_tls_options_any(&o), MQTTB_CLI_TLS ? 1 : 0));
    mqttb_cli_tls_options_free(&o);
  }
}
