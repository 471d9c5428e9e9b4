/*
 * mqttb CLI: log output.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_LOG_H
#define MQTTB_CLI_LOG_H

#include <stdbool.h>

#include <mqttb/mqttb.h>

/* @p types: MQTTB_CLI_LOG_BIT() mask; @p dests: MQTTB_CLI_LOG_DEST_* mask (config.h). */
void mqttb_cli_log_setup(unsigned types, unsigned dests, bool timestamp);

/* One line "[EPOCH: ]mqttb: [LEVEL: ]message"; the level is shown for error, warning, debug. */
__attribute__((format(printf, 2, 3))) void mqttb_cli_log(mqttb_log_level level, const char *fmt,
                                                         ...);

/* Startup failures: always printed to stderr as "mqttb: message", whatever the log settings. */
__attribute__((format(printf, 1, 2))) void mqttb_cli_fatal(const char *fmt, ...);

#endif /* MQTTB_CLI_LOG_H */
