/*
 * mqttb CLI: configuration file parsing (a subset of mosquitto.conf).
 *
 * Kept free of any I/O besides reading the files (and include_dir's
 * directory) so unit tests can call it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_CONFIG_H
#define MQTTB_CLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mqttb/mqttb.h>

#include "tls.h"

/* log_types holds one bit per mqttb_log_level. */
#define MQTTB_CLI_LOG_BIT(level) (1u << (unsigned)(level))
#define MQTTB_CLI_LOG_TYPES_ALL                                                                    \
  (MQTTB_CLI_LOG_BIT(MQTTB_LOG_ERROR) | MQTTB_CLI_LOG_BIT(MQTTB_LOG_WARNING) |                     \
   MQTTB_CLI_LOG_BIT(MQTTB_LOG_NOTICE) | MQTTB_CLI_LOG_BIT(MQTTB_LOG_INFO) |                       \
   MQTTB_CLI_LOG_BIT(MQTTB_LOG_DEBUG))
/* Mosquitto's default: everything but debug. */
#define MQTTB_CLI_LOG_TYPES_DEFAULT (MQTTB_CLI_LOG_TYPES_ALL & ~MQTTB_CLI_LOG_BIT(MQTTB_LOG_DEBUG))

#define MQTTB_CLI_LOG_DEST_STDERR 1u
#define MQTTB_CLI_LOG_DEST_STDOUT 2u
/* log_dest file PATH: appended to, reopened on SIGHUP. */
#define MQTTB_CLI_LOG_DEST_FILE 4u
/* log_dest syslog: syslog(3) with log_facility. */
#define MQTTB_CLI_LOG_DEST_SYSLOG 8u

/* Security options: the broker's, or (per_listener_settings true) one
 * listener's. */
struct mqttb_cli_security {
  /* allow_anonymous: 1, 0, or -1 when not given (Mosquitto 2's default then
   * depends on whether listeners are configured). */
  int allow_anonymous;
  char *password_file; /* NULL: none */
  char *acl_file;      /* NULL: none */
};

/* The persistence options (Mosquitto's, plus persistence_sync). */
struct mqttb_cli_persistence {
  bool enabled; /* persistence */
  /* persistence_location, or NULL: the current directory. */
  char *location;
  /* persistence_file, or NULL: MQTTB_CLI_PERSISTENCE_FILE. */
  char *file;
  /* autosave_interval: seconds between compactions of a grown journal, or
   * with autosave_on_changes records; 0: only at start-up and shutdown. */
  uint32_t autosave_interval;
  bool autosave_on_changes;
  /* persistence_sync: fdatasync once per loop iteration before output, and
   * acknowledgements wait for it (settings.store_sync). */
  bool sync;
};

#define MQTTB_CLI_PERSISTENCE_FILE "mqttb.db"
#define MQTTB_CLI_AUTOSAVE_INTERVAL 1800u

/* One `listener PORT [BIND_ADDRESS]` line, or `listener 0 PATH`. */
struct mqttb_cli_listener {
  uint16_t port;
  /* NULL: all addresses (0.0.0.0 and ::). */
  char *bind_address;
  /* `listener 0 PATH`: a Unix domain socket at PATH (port is 0). */
  char *unix_path;
  /* enable_proxy_protocol: 1 or 2, the PROXY protocol version every
   * connection starts with; 0: none. */
  int proxy_protocol;
  /* Its TLS options (certfile, keyfile, ...): a TLS listener when any is
   * given. */
  struct mqttb_cli_tls_options tls;
  /* protocol websockets: MQTT over WebSockets (with TLS options: wss). */
  bool websockets;
  /* Its security options, with per_listener_settings true. */
  struct mqttb_cli_security sec;
};

struct mqttb_cli_config {
  /* Broker settings; starts as mqttb_settings_default(). */
  mqttb_settings settings;
  /* `port`, or -1 when not given. */
  int port;
  /* `bind_address`, or NULL when not given. */
  char *bind_address;
  /* enable_proxy_protocol before any `listener` line: the default
   * listener's. */
  int proxy_protocol;
  /* TLS options before any `listener` line: the default listener's. */
  struct mqttb_cli_tls_options tls;
  /* protocol websockets before any `listener` line. */
  bool websockets;
  /* `listener` lines, in file order. */
  struct mqttb_cli_listener *listeners;
  size_t listener_count;
  /* per_listener_settings: security options after a `listener` line are
   * that listener's. */
  bool per_listener_settings;
  /* The broker's security options; with per_listener_settings, those given
   * before the first `listener` line, which apply to the default listener
   * (port / bind_address / -p / -b). */
  struct mqttb_cli_security sec;
  struct mqttb_cli_persistence persistence;
  /* MQTTB_CLI_LOG_BIT() of each level to print. */
  unsigned log_types;
  /* MQTTB_CLI_LOG_DEST_* bits. */
  unsigned log_dests;
  bool log_timestamp;
  /* log_timestamp_format: a strftime(3) format (local time), or NULL: seconds since the epoch. */
  char *log_timestamp_format;
  /* The path of `log_dest file`, or NULL. */
  char *log_file;
  /* log_facility N: LOG_LOCAL0 + N; default LOG_DAEMON. */
  int log_facility;
  /* pid_file: written at start-up, removed at exit; NULL: none. */
  char *pid_file;
  /* user: the account to switch to when started as root; NULL: none given. */
  char *user;

  /* The first log_type / log_dest line replaces the default, later ones add (as Mosquitto). */
  bool log_type_seen;
  bool log_dest_seen;
  /* Owned copy behind settings.auto_id_prefix, or NULL while it is the library default. */
  char *auto_id_prefix;
  /* Owned copy behind settings.response_information, or NULL. */
  char *response_information;
};

/* Fill @p cfg with defaults (Mosquitto's where they exist). */
void mqttb_cli_config_init(struct mqttb_cli_config *cfg);

/*
 * Parse the config file at @p path into @p cfg (which must have been
 * initialised). `include_dir DIR` in it parses DIR's files whose names end
 * in ".conf", in Mosquitto's order, at that point; errors in them name the
 * included file and its line. settings.store_sync is set when both persistence and
 * persistence_sync are true. Returns 0 on success; -1 on error with a message such as
 * "/etc/mqttb.conf:12: unknown option 'foo'" in @p err. On error @p cfg may be
 * partly updated but can still be freed.
 */
int mqttb_cli_config_load(const char *path, struct mqttb_cli_config *cfg, char *err, size_t errlen);

/* As mqttb_cli_config_load, reading from an open stream; @p name is used in messages. */
int mqttb_cli_config_load_stream(FILE *f, const char *name, struct mqttb_cli_config *cfg, char *err,
                                 size_t errlen);

/*
 * Parse Mosquitto's persistent_client_expiration duration: a positive
 * integer followed by h, d, w, m (30 days) or y (365 days). Stores seconds
 * in @p seconds; returns false for anything else or more than UINT32_MAX
 * seconds.
 */
bool mqttb_cli_parse_duration(const char *s, uint32_t *seconds);

/* Free what @p cfg owns; it must be initialised again before reuse. */
void mqttb_cli_config_free(struct mqttb_cli_config *cfg);

#endif /* MQTTB_CLI_CONFIG_H */
