/*
 * mqttb CLI: the TLS listener options of mosquitto.conf(5), in every build.
 *
 * Without TLS they are still known by name, so that a configuration
 * written for TLS is refused with a reason instead of "unknown option" or,
 * worse, a plain listener.
 *
 * SPDX-License-Identifier: MIT
 */
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { STRING, BOOL };

struct tls_option {
  const char *name;
  enum kind kind;
  size_t offset;
};

#define STR(field, name)                                                                           \
  { name, STRING, offsetof(struct mqttb_cli_tls_options, field) }
#define BOOLEAN(field)                                                                             \
  { #field, BOOL, offsetof(struct mqttb_cli_tls_options, field) }

static const struct tls_option options[] = {
    STR(cafile, "cafile"),
    STR(capath, "capath"),
    STR(certfile, "certfile"),
    STR(keyfile, "keyfile"),
    STR(crlfile, "crlfile"),
    STR(ciphers, "ciphers"),
    STR(ciphers_tls13, "ciphers_tls1.3"),
    STR(tls_version, "tls_version"),
    BOOLEAN(require_certificate),
    BOOLEAN(use_identity_as_username),
    BOOLEAN(use_subject_as_username),
};

void mqttb_cli_tls_options_init(struct mqttb_cli_tls_options *opts) {
  memset(opts, 0, sizeof *opts);
}

static char **string_field(struct mqttb_cli_tls_options *opts, const struct tls_option *o) {
  return (char **)(void *)((char *)opts + o->offset);
}

void mqttb_cli_tls_options_free(struct mqttb_cli_tls_options *opts) {
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
    if (options[i].kind == STRING) {
      char **s = string_field(opts, &options[i]);
      free(*s);
      *s = NULL;
    }
  }
}

int mqttb_cli_tls_options_copy(struct mqttb_cli_tls_options *dst,
                               const struct mqttb_cli_tls_options *src) {
  *dst = *src;
  int rc = 0;
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
    if (options[i].kind == STRING) {
      char **s = string_field(dst, &options[i]);
      if (*s != NULL && (*s = strdup(*s)) == NULL) {
        rc = -1;
      }
    }
  }
  if (rc != 0) {
    mqttb_cli_tls_options_free(dst);
  }
  return rc;
}

bool mqttb_cli_tls_options_any(const struct mqttb_cli_tls_options *opts) {
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
    const char *p = (const char *)opts + options[i].offset;
    if (options[i].kind == STRING ? *(char *const *)(const void *)p != NULL
                                  : *(const bool *)(const void *)p) {
      return true;
    }
  }
  return false;
}

int mqttb_cli_tls_option_set(struct mqttb_cli_tls_options *opts, const char *name, int argc,
                             char *const *argv, char *err, size_t errlen) {
  const struct tls_option *o = NULL;
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
    if (strcmp(name, options[i].name) == 0) {
      o = &options[i];
      break;
    }
  }
  if (o == NULL) {
    return 1;
  }
#if !MQTTB_CLI_TLS
  (void)opts;
  (void)argc;
  (void)argv;
  snprintf(err, errlen, "'%s' needs TLS, which this build of mqttb does not have", name);
  return -1;
#else
  if (argc < 1) {
    snprintf(err, errlen, "missing value for '%s'", name);
    return -1;
  }
  if (argc > 1) {
    snprintf(err, errlen, "too many values for '%s'", name);
    return -1;
  }
  const char *value = argv[0];
  if (o->kind == BOOL) {
    bool *b = (bool *)(void *)((char *)opts + o->offset);
    if (strcmp(value, "true") == 0) {
      *b = true;
    } else if (strcmp(value, "false") == 0) {
      *b = false;
    } else {
      snprintf(err, errlen, "invalid value '%s' for '%s' (expected true or false)", value, name);
      return -1;
    }
    return 0;
  }
  if (o->offset == offsetof(struct mqttb_cli_tls_options, tls_version) &&
      strcmp(value, "tlsv1.3") != 0 && strcmp(value, "tlsv1.2") != 0 &&
      strcmp(value, "tlsv1.1") != 0) {
    snprintf(err, errlen, "invalid value '%s' for '%s' (expected tlsv1.3, tlsv1.2 or tlsv1.1)",
             value, name);
    return -1;
  }
  char *copy = strdup(value);
  if (copy == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  char **s = string_field(opts, o);
  free(*s);
  *s = copy;
  return 0;
#endif
}
