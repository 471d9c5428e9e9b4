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

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

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
  /* The file whose include_dir line included this one; NULL in the main file. */
  const struct parse_ctx *parent;
  /* The main file's identity, so that an include_dir holding it is refused. */
  dev_t main_dev;
  ino_t main_ino;
  bool main_known;
};

__attribute__((format(printf, 2, 3))) static int fail(const struct parse_ctx *ctx, const char *fmt,
                                                      ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (ctx->errlen > 0) {
    if (ctx->parent != NULL) {
      snprintf(ctx->err, ctx->errlen, "%s:%u: %s (included by include_dir at %s:%u)", ctx->name,
               ctx->line, msg, ctx->parent->name, ctx->parent->line);
    } else {
      snprintf(ctx->err, ctx->errlen, "%s:%u: %s", ctx->name, ctx->line, msg);
    }
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
  mqttb_cli_tls_options_init(&l->tls);
  /* As Mosquitto 2: port 0 and a path is a Unix domain socket. */
  if (port == 0 && bind_address == NULL) {
    return fail(ctx, "a listener with port 0 must give a Unix socket path");
  }
  char **dst = port == 0 ? &l->unix_path : &l->bind_address;
  if (bind_address != NULL && set_string(ctx, dst, bind_address) != 0) {
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

/* log_dest none|stderr|stdout|syslog|file PATH; @p rest is what follows the
 * first value (the path of `file`, the rest of the line as in Mosquitto). */
static int set_log_dest(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg,
                        const char *value, const char *rest) {
  unsigned dest;
  if (strcmp(value, "file") != 0 && rest[0] != '\0') {
    return fail(ctx, "too many values for 'log_dest'");
  }
  if (strcmp(value, "none") == 0) {
    dest = 0;
  } else if (strcmp(value, "stderr") == 0) {
    dest = MQTTB_CLI_LOG_DEST_STDERR;
  } else if (strcmp(value, "stdout") == 0) {
    dest = MQTTB_CLI_LOG_DEST_STDOUT;
  } else if (strcmp(value, "syslog") == 0) {
    dest = MQTTB_CLI_LOG_DEST_SYSLOG;
  } else if (strcmp(value, "file") == 0) {
    if (rest[0] == '\0') {
      return fail(ctx, "missing path for 'log_dest file'");
    }
    /* Mosquitto keeps one log file and refuses a second. */
    if (cfg->log_file != NULL) {
      return fail(ctx, "duplicate 'log_dest file' (there can be one log file)");
    }
    if (set_string(ctx, &cfg->log_file, rest) != 0) {
      return -1;
    }
    dest = MQTTB_CLI_LOG_DEST_FILE;
  } else if (strcmp(value, "topic") == 0 || strcmp(value, "dlt") == 0) {
    return fail(ctx,
                "'log_dest %s' is not supported by mqttb (supported: none, stderr, stdout, "
                "syslog, file PATH)",
                value);
  } else {
    return bad_value(ctx, "log_dest", value, "none, stderr, stdout, syslog or file PATH");
  }
  if (!cfg->log_dest_seen || dest == 0) {
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
    {"enable_proxy_protocol", 1, 1},
    {"protocol", 1, 1},
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
    {"log_facility", 1, 1},
    {"user", 1, 1},
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

  /* TLS options, as in Mosquitto: the latest listener's (the default
   * listener's before any). Known in every build; one that needs TLS in a
   * build without it is an error naming the line. */
  struct mqttb_cli_tls_options *tls =
      cfg->listener_count > 0 ? &cfg->listeners[cfg->listener_count - 1].tls : &cfg->tls;
  char tls_err[300];
  int trc = mqttb_cli_tls_option_set(tls, opt, argc, argv, tls_err, sizeof tls_err);
  if (trc < 0) {
    return fail(ctx, "%s", tls_err);
  }
  if (trc == 0) {
    return 0;
  }
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
  if (strcmp(opt, "protocol") == 0) {
    /* As Mosquitto: the latest listener's (the default listener's before
     * any). */
    bool ws = strcmp(arg, "websockets") == 0;
    if (!ws && strcmp(arg, "mqtt") != 0) {
      return fail(ctx, "invalid value '%s' for 'protocol' (expected mqtt or websockets)", arg);
    }
    if (cfg->listener_count > 0) {
      cfg->listeners[cfg->listener_count - 1].websockets = ws;
    } else {
      cfg->websockets = ws;
    }
    return 0;
  }
  if (strcmp(opt, "enable_proxy_protocol") == 0) {
    /* Mosquitto 2.1's: the latest listener's (the default listener's
     * before any). */
    if (get_uint(ctx, opt, arg, 2, &v) != 0) {
      return -1;
    }
    if (v == 0) {
      return fail(ctx, "enable_proxy_protocol takes 1 or 2");
    }
    if (cfg->listener_count > 0) {
      cfg->listeners[cfg->listener_count - 1].proxy_protocol = (int)v;
    } else {
      cfg->proxy_protocol = (int)v;
    }
    return 0;
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
  } else if (strcmp(opt, "log_facility") == 0) {
    /* As Mosquitto: 0 to 7 select LOG_LOCAL0 to LOG_LOCAL7. */
    static const int local[] = {LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2, LOG_LOCAL3,
                                LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7};
    if (get_uint(ctx, opt, arg, 7, &v) != 0) {
      return -1;
    }
    cfg->log_facility = local[v];
  } else if (strcmp(opt, "user") == 0) {
    /* As Mosquitto: the last one counts. */
    return set_string(ctx, &cfg->user, arg);
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

/* Strip spaces, tabs and line ends from both ends of @p s, in place. */
static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') {
    s++;
  }
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) {
    s[--n] = '\0';
  }
  return s;
}

/* Options whose value is the rest of the line (so it may hold spaces), as
 * in Mosquitto. Mosquitto refuses pid_file twice, keeps the last of the
 * others. */
static int apply_rest_of_line(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg,
                              const char *opt, char *rest);

static int include_dir(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg, const char *dir);

/* Split @p line in place and apply it. */
static int parse_line(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg, char *line) {
  static const char seps[] = " \t\r\n";
  char *save = NULL;
  char *opt = strtok_r(line, seps, &save);
  if (opt == NULL || opt[0] == '#') {
    return 0;
  }
  if (strcmp(opt, "pid_file") == 0 || strcmp(opt, "include_dir") == 0 ||
      strcmp(opt, "log_timestamp_format") == 0) {
    return apply_rest_of_line(ctx, cfg, opt, trim(save != NULL ? save : (char *)""));
  }
  if (strcmp(opt, "log_dest") == 0) {
    char *value = strtok_r(NULL, seps, &save);
    if (value == NULL) {
      return fail(ctx, "missing value for 'log_dest'");
    }
    return set_log_dest(ctx, cfg, value, trim(save != NULL ? save : (char *)""));
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

static int apply_rest_of_line(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg,
                              const char *opt, char *rest) {
  if (rest[0] == '\0') {
    return fail(ctx, "missing value for '%s'", opt);
  }
  if (strcmp(opt, "include_dir") == 0) {
    return include_dir(ctx, cfg, rest);
  }
  if (strcmp(opt, "pid_file") == 0) {
    if (cfg->pid_file != NULL) {
      return fail(ctx, "duplicate 'pid_file'");
    }
    return set_string(ctx, &cfg->pid_file, rest);
  }
  return set_string(ctx, &cfg->log_timestamp_format, rest);
}

/* Mosquitto's order of include_dir files: letters compared without case
 * first, then upper case before lower case (A.conf, a.conf, B.conf). */
static int include_order(const void *pa, const void *pb) {
  const unsigned char *a = *(const unsigned char *const *)pa;
  const unsigned char *b = *(const unsigned char *const *)pb;
  for (; *a != '\0' && *b != '\0'; a++, b++) {
    int d = toupper(*a) - toupper(*b);
    if (d == 0) {
      d = (int)*a - (int)*b;
    }
    if (d != 0) {
      return d;
    }
  }
  return (int)*a - (int)*b;
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(names[i]);
  }
  free(names);
}

static int load_stream(const struct parse_ctx *parent, FILE *f, const char *name,
                       struct mqttb_cli_config *cfg, char *err, size_t errlen);

/*
 * include_dir DIR: the files of DIR whose names end in ".conf" (and are
 * longer than that), hidden ones too, in include_order, each parsed as part
 * of the configuration at this point. Directories are skipped (Mosquitto
 * reads them as empty). As in Mosquitto only the main file may include.
 */
static int include_dir(const struct parse_ctx *ctx, struct mqttb_cli_config *cfg, const char *dir) {
  if (ctx->parent != NULL) {
    return fail(ctx, "include_dir is only allowed in the main configuration file");
  }
  DIR *d = opendir(dir);
  if (d == NULL) {
    return fail(ctx, "unable to open include_dir '%s': %s", dir, strerror(errno));
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *de;
  int rc = 0;
  for (;;) {
    errno = 0;
    if ((de = readdir(d)) == NULL) {
      if (errno != 0) {
        rc = fail(ctx, "cannot read include_dir '%s': %s", dir, strerror(errno));
      }
      break;
    }
    size_t len = strlen(de->d_name);
    if (len <= 5 || strcmp(de->d_name + len - 5, ".conf") != 0) {
      continue;
    }
    char **grown = realloc(names, (n + 1) * sizeof *names);
    size_t plen = strlen(dir) + 1 + len + 1;
    char *path = malloc(plen);
    if (grown != NULL) {
      names = grown;
    }
    if (grown == NULL || path == NULL) {
      free(path);
      rc = fail(ctx, "out of memory");
      break;
    }
    snprintf(path, plen, "%s/%s", dir, de->d_name);
    names[n++] = path;
  }
  closedir(d);
  if (rc == 0 && n > 0) {
    qsort(names, n, sizeof *names, include_order);
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    struct stat st;
    if (stat(names[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      continue;
    }
    if (ctx->main_known && stat(names[i], &st) == 0 && st.st_dev == ctx->main_dev &&
        st.st_ino == ctx->main_ino) {
      rc = fail(ctx, "include_dir '%s' holds the main configuration file (%s)", dir, names[i]);
      break;
    }
    FILE *f = fopen(names[i], "re");
    if (f == NULL) {
      rc = fail(ctx, "cannot open included config file %s: %s", names[i], strerror(errno));
      break;
    }
    rc = load_stream(ctx, f, names[i], cfg, ctx->err, ctx->errlen);
    fclose(f);
  }
  free_names(names, n);
  return rc;
}

void mqttb_cli_config_init(struct mqttb_cli_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  mqttb_settings_default(&cfg->settings);
  cfg->port = -1;
  cfg->log_types = MQTTB_CLI_LOG_TYPES_DEFAULT;
  cfg->log_dests = MQTTB_CLI_LOG_DEST_STDERR;
  cfg->log_timestamp = true;
  cfg->log_facility = LOG_DAEMON;
  cfg->sec.allow_anonymous = -1;
  mqttb_cli_tls_options_init(&cfg->tls);
  cfg->persistence.autosave_interval = MQTTB_CLI_AUTOSAVE_INTERVAL;
}

static int load_stream(const struct parse_ctx *parent, FILE *f, const char *name,
                       struct mqttb_cli_config *cfg, char *err, size_t errlen) {
  struct parse_ctx ctx = {name, 0, err, errlen, parent, 0, 0, false};
  if (parent != NULL) {
    ctx.main_dev = parent->main_dev;
    ctx.main_ino = parent->main_ino;
    ctx.main_known = parent->main_known;
  } else {
    struct stat st;
    if (fstat(fileno(f), &st) == 0) {
      ctx.main_dev = st.st_dev;
      ctx.main_ino = st.st_ino;
      ctx.main_known = true;
    }
  }
  char *line = NULL;
  size_t cap = 0;
  int rc = 0;
  errno = 0;
  while (rc == 0 && getline(&line, &cap, f) >= 0) {
    ctx.line++;
    rc = parse_line(&ctx, cfg, line);
  }
  if (rc == 0 && ferror(f)) {
    rc = fail(&ctx, "read error: %s", strerror(errno));
  }
  free(line);
  return rc;
}

int mqttb_cli_config_load_stream(FILE *f, const char *name, struct mqttb_cli_config *cfg, char *err,
                                 size_t errlen) {
  int rc = load_stream(NULL, f, name, cfg, err, errlen);
  /* Acknowledgements wait for the journal's fdatasync only when there is one. */
  cfg->settings.store_sync = cfg->persistence.enabled && cfg->persistence.sync;
  return rc;
}

int mqttb_cli_config_load(const char *path, struct mqttb_cli_config *cfg, char *err,
                          size_t errlen) {
  FILE *f = fopen(path, "re");
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
    free(cfg->listeners[i].unix_path);
    mqttb_cli_tls_options_free(&cfg->listeners[i].tls);
    security_free(&cfg->listeners[i].sec);
  }
  security_free(&cfg->sec);
  mqttb_cli_tls_options_free(&cfg->tls);
  free(cfg->listeners);
  free(cfg->bind_address);
  free(cfg->auto_id_prefix);
  free(cfg->response_information);
  free(cfg->persistence.location);
  free(cfg->persistence.file);
  free(cfg->log_timestamp_format);
  free(cfg->log_file);
  free(cfg->pid_file);
  free(cfg->user);
  memset(cfg, 0, sizeof *cfg);
}
