/*
 * mqttb CLI: log output.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_LOG_H
#define MQTTB_CLI_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include <mqttb/mqttb.h>

struct mqttb_cli_config;

/* @p types: MQTTB_CLI_LOG_BIT() mask; @p dests: MQTTB_CLI_LOG_DEST_* mask (config.h). */
void mqttb_cli_log_setup(unsigned types, unsigned dests, bool timestamp);

/*
 * Log as @p cfg says (log_dest, log_timestamp, log_timestamp_format,
 * log_facility) at the levels of @p types. The log file is (re)opened in
 * append mode whenever this is called, so a call after logrotate moved it
 * starts a new one; syslog is opened with ident "mqttb". Returns 0, or -1
 * when the log file cannot be opened, with "cannot open log file PATH:
 * reason" in @p err: logging then goes on to the other destinations and
 * stderr.
 */
int mqttb_cli_log_configure(unsigned types, const struct mqttb_cli_config *cfg, char *err,
                            size_t errlen);

/* Close the log file and syslog; later lines go to stderr. */
void mqttb_cli_log_close(void);

/* One line "[EPOCH: ]mqttb: [LEVEL: ]message"; the level is shown for error, warning, debug. */
__attribute__((format(printf, 2, 3))) void mqttb_cli_log(mqttb_log_level level, const char *fmt,
                                                         ...);

/* Startup failures: always printed to stderr as "mqttb: message", whatever
 * the log settings, and also to the log file and syslog when they are open. */
__attribute__((format(printf, 1, 2))) void mqttb_cli_fatal(const char *fmt, ...);

/* Lines that tools read from stderr ("mqttb: listening on ADDR"): always
 * printed there as "mqttb: message", and also to the log file and syslog. */
__attribute__((format(printf, 1, 2))) void mqttb_cli_announce(const char *fmt, ...);

#endif /* MQTTB_CLI_LOG_H */
