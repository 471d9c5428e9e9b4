/*
 * mqttb CLI: configuration file parsing.
 *
 * Syntax is mosquitto.conf's: one option per line, arguments separated by
 * spaces or tabs, lines starting with '#' are comments, blank lines are
 * ignored. Option names and meanings follow Mosquitto, plus extensions
 * (docs/configuration.md), such as:
 *
 *   connect_timeout SECONDS  how long a new connection may take to send
 *                            CONNECT before it is closed (default 10; 0 = no
 *                            limit).
 *   persistence_sync BOOL    fdatasync the journal before acknowledging.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 3
/* Mosquitto refuses a max_packet_size below this. */
#define MIN_PACKET_SIZE 20u
#define MAX_PACKET_SIZE 268435460u
#define MAX_AUTO_ID_PREFIX 32u

/* Where we are in the file, for error messages. */
struct parse_ctx {
  const char *name;
  unsigned line;
  char *err;
  size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(const struct parse_ctx *ctx, const char *fmt,
                                                      ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (ctx->errlen > 0) {
    snprintf(ctx->err, ctx->errlen, "%s:%u: %s", ctx->name, ctx->line, msg);
  }
  return -1;
}

/* Plain decimal only: no sign, no hex, no trailing junk. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (*s < '0' || *s > '9') {
    return false;
  }
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) {
    return false;
  }
  *out = v;
  return true;
}

static bool parse_bool(const char *s, int *out) {
  if (strcmp(s, "true") == 0) {
    *out = 1;
  } else if (strcmp(s, "false") == 0) {
    *out = 0;
  } else {
    return false;
  }
  return true;
}

static int bad_value(const struct parse_ctx *ctx, const char *opt, const char *value,
                     const char *expected) {
  return fail(ctx, "invalid value '%s' for '%s' (expected %s)", value, opt, expected);
}

static int get_uint(const struct parse_ctx *ctx, const char *opt, const char *value, uint64_t max,
                    uint64_t *out) {
  if (!parse_u64(value, max, out)) {
    char expected[48];
    snprintf(expected, sizeof expected, "an integer from 0 to %llu", (unsigned long long)max);
    return bad_value(ctx, opt, value, expected);
  }
  return 0;
}

static int get_bool(const struct parse_ctx *ctx, const char *opt, const char *value, int *out) {
  if (!parse_bool(value, out)) {
    return bad_value(ctx, opt, value, "true or false");
  }
  return 0;
}

static int set_string(const struct parse_ctx *ctx, char **dst, const char *value) {
  char *copy = strdup(value);
  if (copy == NULL) {
    return fail(ctx, "out of memory");
  }
  free(*dst);
  *dst = copy;
  return 0;
}

static int add_listener(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg, uint16_t port,
                        const char *bind_address) {
  struct mqttb_cli_listener *grown =
      realloc(cfg->listeners, (cfg->listener_count + 1) * sizeof *grown);
  if (grown == NULL) {
    return fail(ctx, "out of memory");
  }
  cfg->listeners = grown;
  struct mqttb_cli_listener *l = &cfg->listeners[cfg->listener_count];
  memset(l, 0, sizeof *l);
  l->port = port;
  l->sec.allow_anonymous = -1;
  if (bind_address != NULL && set_string(ctx, &l->bind_address, bind_address) != 0) {
    return -1;
  }
  cfg->listener_count++;
  return 0;
}

static int set_log_type(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg,
                        const char *value) {
  static const struct {
    const char *name;
    unsigned bits;
  } types[] = {
      {"error", MQTTB_CLI_LOG_BIT(MQTTB_LOG_ERROR)},
      {"warning", MQTTB_CLI_LOG_BIT(MQTTB_LOG_WARNING)},
      {"notice", MQTTB_CLI_LOG_BIT(MQTTB_LOG_NOTICE)},
      {"information", MQTTB_CLI_LOG_BIT(MQTTB_LOG_INFO)},
      {"debug", MQTTB_CLI_LOG_BIT(MQTTB_LOG_DEBUG)},
      {"all", MQTTB_CLI_LOG_TYPES_ALL},
      {"none", 0},
  };
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    if (strcmp(value, types[i].name) == 0) {
      if (!cfg->log_type_seen || types[i].bits == 0) {
        cfg->log_types = 0;
      }
      cfg->log_type_seen = true;
      cfg->log_types |= types[i].bits;
      return 0;
    }
  }
  return bad_value(ctx, "log_type", value,
                   "error, warning, notice, information, debug, all or none");
}

static int set_log_dest(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg,
                        const char *value) {
  unsigned dest;
  if (strcmp(value, "stderr") == 0) {
    dest = MQTTB_CLI_LOG_DEST_STDERR;
  } else if (strcmp(value, "stdout") == 0) {
    dest = MQTTB_CLI_LOG_DEST_STDOUT;
  } else {
    return bad_value(ctx, "log_dest", value, "stderr or stdout");
  }
  if (!cfg->log_dest_seen) {
    cfg->log_dests = 0;
  }
  cfg->log_dest_seen = true;
  cfg->log_dests |= dest;
  return 0;
}

/* Every supported option and how many values it takes. */
static const struct {
  const char *name;
  int min_args;
  int max_args;
} options[] = {
    {"listener", 1, 2},
    {"port", 1, 1},
    {"bind_address", 1, 1},
    {"max_inflight_messages", 1, 1},
    {"max_queued_messages", 1, 1},
    {"max_queued_bytes", 1, 1},
    {"max_connections", 1, 1},
    {"max_keepalive", 1, 1},
    {"max_packet_size", 1, 1},
    {"queue_qos0_messages", 1, 1},
    {"allow_zero_length_clientid", 1, 1},
    {"auto_id_prefix", 1, 1},
    {"retain_available", 1, 1},
    {"connect_timeout", 1, 1},
    {"log_type", 1, 1},
    {"log_dest", 1, 1},
    {"log_timestamp", 1, 1},
    {"sys_interval", 1, 1},
    {"max_topic_alias", 1, 1},
    {"max_qos", 1, 1},
    {"max_subscriptions_per_client", 1, 1},
    {"max_topic_levels", 1, 1},
    {"max_queued_bytes_total", 1, 1},
    {"max_output_bytes", 1, 1},
    {"output_stall_timeout", 1, 1},
    {"memory_limit", 1, 1},
    {"max_connect_size", 1, 1},
    {"max_input_bytes_total", 1, 1},
    {"work_budget", 1, 1},
    {"response_information", 1, 1},
    {"allow_anonymous", 1, 1},
    {"password_file", 1, 1},
    {"acl_file", 1, 1},
    {"per_listener_settings", 1, 1},
    {"persistence", 1, 1},
    {"persistence_location", 1, 1},
    {"persistence_file", 1, 1},
    {"autosave_interval", 1, 1},
    {"autosave_on_changes", 1, 1},
    {"persistent_client_expiration", 1, 1},
    {"persistence_sync", 1, 1},
};

bool mqttb_cli_parse_duration(const char *s, uint32_t *seconds) {
  size_t n = strlen(s);
  if (n < 2) {
    return false;
  }
  uint64_t mult;
  switch (s[n - 1]) {
  case 'h':
    mult = 3600;
    break;
  case 'd':
    mult = 86400;
    break;
  case 'w':
    mult = 86400 * 7;
    break;
  case 'm':
    mult = 86400 * 30;
    break;
  case 'y':
    mult = 86400 * 365;
    break;
  default:
    return false;
  }
  char digits[24];
  if (n - 1 >= sizeof digits) {
    return false;
  }
  memcpy(digits, s, n - 1);
  digits[n - 1] = '\0';
  uint64_t v;
  if (!parse_u64(digits, UINT32_MAX, &v) || v == 0 || v * mult > UINT32_MAX) {
    return false;
  }
  *seconds = (uint32_t)(v * mult);
  return true;
}

static int apply_persistence(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg,
                             const char *opt, const char *arg) {
  struct mqttb_cli_persistence *p = &cfg->persistence;
  int b = 0;
  uint64_t v = 0;
  if (strcmp(opt, "persistence") == 0) {
    if (get_bool(ctx, opt, arg, &b) != 0) {
      return -1;
    }
    p->enabled = b != 0;
  } else if (strcmp(opt, "persistence_location") == 0) {
    return set_string(ctx, &p->location, arg);
  } else if (strcmp(opt, "persistence_file") == 0) {
    /* A name inside persistence_location, as Mosquitto joins them. */
    if (strchr(arg, '/') != NULL || strcmp(arg, ".") == 0 || strcmp(arg, "..") == 0) {
      return bad_value(ctx, opt, arg, "a file name without '/'");
    }
    return set_string(ctx, &p->file, arg);
  } else if (strcmp(opt, "autosave_interval") == 0) {
    if (get_uint(ctx, opt, arg, UINT32_MAX, &v) != 0) {
      return -1;
    }
    p->autosave_interval = (uint32_t)v;
  } else if (strcmp(opt, "autosave_on_changes") == 0) {
    if (get_bool(ctx, opt, arg, &b) != 0) {
      return -1;
    }
    p->autosave_on_changes = b != 0;
  } else if (strcmp(opt, "persistence_sync") == 0) {
    if (get_bool(ctx, opt, arg, &b) != 0) {
      return -1;
    }
    p->sync = b != 0;
  } else if (strcmp(opt, "persistent_client_expiration") == 0) {
    uint32_t secs;
    if (!mqttb_cli_parse_duration(arg, &secs)) {
      return bad_value(ctx, opt, arg,
                       "a positive number followed by h, d, w, m or y, such as 14d, "
                       "at most 4294967295 seconds");
    }
    cfg->settings.persistent_client_expiration = secs;
  }
  return 0;
}

static int check_option(const struct parse_ctx *ctx, const char *opt, int argc) {
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
    if (strcmp(opt, options[i].name) == 0) {
      if (argc < options[i].min_args) {
        return fail(ctx, "missing value for '%s'", opt);
      }
      if (argc > options[i].max_args) {
        return fail(ctx, "too many values for '%s'", opt);
      }
      return 0;
    }
  }
  return fail(ctx, "unknown option '%s'", opt);
}

/* Apply one option with its @p argc arguments. */
static int apply_option(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg, const char *opt,
                        int argc, char **argv) {
  mqttb_settings *s = &cfg->settings;
  uint64_t v = 0;
  const char *arg = argv[0];

  if (check_option(ctx, opt, argc) != 0) {
    return -1;
  }
  if (strncmp(opt, "persist", 7) == 0 || strncmp(opt, "autosave_", 9) == 0) {
    return apply_persistence(ctx, cfg, opt, arg);
  }
  if (strcmp(opt, "listener") == 0) {
    if (get_uint(ctx, opt, arg, 65535, &v) != 0) {
      return -1;
    }
    return add_listener(ctx, cfg, (uint16_t)v, argc == 2 ? argv[1] : NULL);
  }
  if (strcmp(opt, "port") == 0) {
    if (get_uint(ctx, opt, arg, 65535, &v) != 0) {
      return -1;
    }
    cfg->port = (int)v;
  } else if (strcmp(opt, "bind_address") == 0) {
    return set_string(ctx, &cfg->bind_address, arg);
  } else if (strcmp(opt, "max_inflight_messages") == 0) {
    if (get_uint(ctx, opt, arg, 65535, &v) != 0) {
      return -1;
    }
    s->max_inflight_messages = (uint32_t)v;
  } else if (strcmp(opt, "max_queued_messages") == 0) {
    if (get_uint(ctx, opt, arg, UINT32_MAX, &v) != 0) {
      return -1;
    }
    s->max_queued_messages = (uint32_t)v;
  } else if (strcmp(opt, "max_queued_bytes") == 0) {
    if (get_uint(ctx, opt, arg, UINT64_MAX, &v) != 0) {
      return -1;
    }
    s->max_queued_bytes = v;
  } else if (strcmp(opt, "max_connections") == 0) {
    /* Mosquitto: -1 is unlimited; the library spells that 0. */
    if (strcmp(arg, "-1") == 0) {
      v = 0;
    } else if (!parse_u64(arg, UINT32_MAX, &v)) {
      return bad_value(ctx, opt, arg, "-1 or an integer from 0 to 4294967295");
    }
    s->max_connections = (uint32_t)v;
  } else if (strcmp(opt, "max_keepalive") == 0) {
    if (get_uint(ctx, opt, arg, 65535, &v) != 0) {
      return -1;
    }
    s->max_keepalive = (uint32_t)v;
  } else if (strcmp(opt, "max_packet_size") == 0) {
    /* Mosquitto: 0 is no limit, which is the protocol maximum for the library. */
    if (!parse_u64(arg, MAX_PACKET_SIZE, &v) || (v != 0 && v < MIN_PACKET_SIZE)) {
      return bad_value(ctx, opt, arg, "0 or an integer from 20 to 268435460");
    }
    s->max_packet_size = v == 0 ? MAX_PACKET_SIZE : (uint32_t)v;
  } else if (strcmp(opt, "queue_qos0_messages") == 0) {
    return get_bool(ctx, opt, arg, &s->queue_qos0_messages);
  } else if (strcmp(opt, "allow_zero_length_clientid") == 0) {
    return get_bool(ctx, opt, arg, &s->allow_zero_length_clientid);
  } else if (strcmp(opt, "auto_id_prefix") == 0) {
    /* The library uses at most 32 bytes; refuse rather than truncate silently. */
    if (strlen(arg) > MAX_AUTO_ID_PREFIX) {
      return bad_value(ctx, opt, arg, "at most 32 characters");
    }
    if (set_string(ctx, &cfg->auto_id_prefix, arg) != 0) {
      return -1;
    }
    s->auto_id_prefix = cfg->auto_id_prefix;
  } else if (strcmp(opt, "retain_available") == 0) {
    return get_bool(ctx, opt, arg, &s->retain_available);
  } else if (strcmp(opt, "connect_timeout") == 0) {
    if (get_uint(ctx, opt, arg, UINT32_MAX / 1000u, &v) != 0) {
      return -1;
    }
    s->connect_timeout_ms = (uint32_t)v * 1000u;
  } else if (strcmp(opt, "log_type") == 0) {
    return set_log_type(ctx, cfg, arg);
  } else if (strcmp(opt, "log_dest") == 0) {
    return set_log_dest(ctx, cfg, arg);
  } else if (strcmp(opt, "log_timestamp") == 0) {
    int b = 0;
    if (get_bool(ctx, opt, arg, &b) != 0) {
      return -1;
    }
    cfg->log_timestamp = b != 0;
  } else if (strcmp(opt, "sys_interval") == 0) {
    if (get_uint(ctx, opt, arg, 65535, &v) != 0) {
      return -1;
    }
    s->sys_interval_ms = (uint32_t)v * 1000u;
  } else if (strcmp(opt, "max_topic_alias") == 0) {
    if (get_uint(ctx, opt, arg, 65535, &v) != 0) {
      return -1;
    }
    s->topic_alias_maximum = (uint16_t)v;
  } else if (strcmp(opt, "max_qos") == 0) {
    if (get_uint(ctx, opt, arg, 2, &v) != 0) {
      return -1;
    }
    s->max_qos = (uint8_t)v;
  } else if (strcmp(opt, "max_subscriptions_per_client") == 0) {
    if (get_uint(ctx, opt, arg, UINT32_MAX, &v) != 0) {
      return -1;
    }
    s->max_subscriptions = (uint32_t)v;
  } else if (strcmp(opt, "max_topic_levels") == 0) {
    if (get_uint(ctx, opt, arg, UINT32_MAX, &v) != 0) {
      return -1;
    }
    s->max_topic_levels = (uint32_t)v;
  } else if (strcmp(opt, "max_queued_bytes_total") == 0) {
    if (get_uint(ctx, opt, arg, UINT64_MAX, &v) != 0) {
      return -1;
    }
    s->max_queued_bytes_total = v;
  } else if (strcmp(opt, "max_output_bytes") == 0) {
    if (get_uint(ctx, opt, arg, UINT64_MAX, &v) != 0) {
      return -1;
    }
    s->max_output_bytes = v;
  } else if (strcmp(opt, "memory_limit") == 0) {
    if (get_uint(ctx, opt, arg, UINT64_MAX, &v) != 0) {
      return -1;
    }
    s->memory_limit = v;
  } else if (strcmp(opt, "max_connect_size") == 0) {
    if (get_uint(ctx, opt, arg, MAX_PACKET_SIZE, &v) != 0) {
      return -1;
    }
    s->max_connect_size = (uint32_t)v;
  } else if (strcmp(opt, "max_input_bytes_total") == 0) {
    if (get_uint(ctx, opt, arg, UINT64_MAX, &v) != 0) {
      return -1;
    }
    s->max_input_bytes_total = v;
  } else if (strcmp(opt, "work_budget") == 0) {
    if (get_uint(ctx, opt, arg, UINT32_MAX, &v) != 0) {
      return -1;
    }
    s->work_budget = (uint32_t)v;
  } else if (strcmp(opt, "output_stall_timeout") == 0) {
    if (get_uint(ctx, opt, arg, UINT32_MAX / 1000u, &v) != 0) {
      return -1;
    }
    s->output_stall_timeout_ms = (uint32_t)v * 1000u;
  } else if (strcmp(opt, "per_listener_settings") == 0) {
    int b = 0;
    if (get_bool(ctx, opt, arg, &b) != 0) {
      return -1;
    }
    cfg->per_listener_settings = b != 0;
  } else if (strcmp(opt, "allow_anonymous") == 0 || strcmp(opt, "password_file") == 0 ||
             strcmp(opt, "acl_file") == 0) {
    /* As Mosquitto: with per_listener_settings, the latest listener's. */
    struct mqttb_cli_security *sec = &cfg->sec;
    if (cfg->per_listener_settings && cfg->listener_count > 0) {
      sec = &cfg->listeners[cfg->listener_count - 1].sec;
    }
    if (strcmp(opt, "allow_anonymous") == 0) {
      return get_bool(ctx, opt, arg, &sec->allow_anonymous);
    }
    return set_string(ctx, strcmp(opt, "acl_file") == 0 ? &sec->acl_file : &sec->password_file,
                      arg);
  } else if (strcmp(opt, "response_information") == 0) {
    if (set_string(ctx, &cfg->response_information, arg) != 0) {
      return -1;
    }
    s->response_information = cfg->response_information;
  }
  return 0;
}

/* Split @p line in place and apply it. */
static int parse_line(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg, char *line) {
  static const char seps[] = " \t\r\n";
  char *save = NULL;
  char *opt = strtok_r(line, seps, &save);
  if (opt == NULL || opt[0] == '#') {
    return 0;
  }
  /* One slot more than any option takes, to detect extra values. */
  char *argv[MAX_ARGS + 1] = {NULL};
  int argc = 0;
  char *tok;
  while (argc <= MAX_ARGS && (tok = strtok_r(NULL, seps, &save)) != NULL) {
    argv[argc++] = tok;
  }
  return apply_option(ctx, cfg, opt, argc, argv);
}

void mqttb_cli_config_init(struct mqttb_cli_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  mqttb_settings_default(&cfg->settings);
  cfg->port = -1;
  cfg->log_types = MQTTB_CLI_LOG_TYPES_DEFAULT;
  cfg->log_dests = MQTTB_CLI_LOG_DEST_STDERR;
  cfg->log_timestamp = true;
  cfg->sec.allow_anonymous = -1;
  cfg->persistence.autosave_interval = MQTTB_CLI_AUTOSAVE_INTERVAL;
}

int mqttb_cli_config_load_stream(FILE *f, const char *name, struct mqttb_cli_config *cfg, char *err,
                                 size_t errlen) {
  struct parse_ctx ctx = {name, 0, err, errlen};
  char *line = NULL;
  size_t cap = 0;
  int rc = 0;
  while (rc == 0 && getline(&line, &cap, f) >= 0) {
    ctx.line++;
    rc = parse_line(&ctx, cfg, line);
  }
  if (rc == 0 && ferror(f)) {
    rc = fail(&ctx, "read error");
  }
  /* Acknowledgements wait for the journal's fdatasync only when there is one. */
  cfg->settings.store_sync = cfg->persistence.enabled && cfg->persistence.sync;
  free(line);
  return rc;
}

int mqttb_cli_config_load(const char *path, struct mqttb_cli_config *cfg, char *err,
                          size_t errlen) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    if (errlen > 0) {
      snprintf(err, errlen, "%s: cannot open config file: %s", path, strerror(errno));
    }
    return -1;
  }
  int rc = mqttb_cli_config_load_stream(f, path, cfg, err, errlen);
  fclose(f);
  return rc;
}

static void security_free(struct mqttb_cli_security *sec) {
  free(sec->password_file);
  free(sec->acl_file);
}

void mqttb_cli_config_free(struct mqttb_cli_config *cfg) {
  for (size_t i = 0; i < cfg->listener_count; i++) {
    free(cfg->listeners[i].bind_address);
    security_free(&cfg->listeners[i].sec);
  }
  security_free(&cfg->sec);
  free(cfg->listeners);
  free(cfg->bind_address);
  free(cfg->auto_id_prefix);
  free(cfg->response_information);
  free(cfg->persistence.location);
  free(cfg->persistence.file);
  memset(cfg, 0, sizeof *cfg);
}
