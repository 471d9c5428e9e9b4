/*
 * mqttb CLI: log output.
 *
 * SPDX-License-Identifier: MIT
 */
#include "log.h"

#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static unsigned log_types = MQTTB_CLI_LOG_TYPES_DEFAULT;
static unsigned log_dests = MQTTB_CLI_LOG_DEST_STDERR;
static bool log_timestamp = true;

void mqttb_cli_log_setup(unsigned types, unsigned dests, bool timestamp) {
  log_types = types;
  log_dests = dests;
  log_timestamp = timestamp;
}

/* Notice and information lines carry no tag, like Mosquitto's. */
static const char *level_tag(mqttb_log_level level) {
  switch (level) {
  case MQTTB_LOG_ERROR:
    return "error: ";
  case MQTTB_LOG_WARNING:
    return "warning: ";
  case MQTTB_LOG_DEBUG:
    return "debug: ";
  case MQTTB_LOG_NOTICE:
  case MQTTB_LOG_INFO:
    break;
  }
  return "";
}

void mqttb_cli_log(mqttb_log_level level, const char *fmt, ...) {
  if ((log_types & MQTTB_CLI_LOG_BIT(level)) == 0) {
    return;
  }
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* Client ids, user names and topics are the clients' choice: a control
   * byte (a newline) must not forge a log line that a scanner such as
   * fail2ban would read as someone else's. */
  for (char *p = msg; *p != '\0'; p++) {
    if ((unsigned char)*p < 0x20 || *p == 0x7f) {
      *p = '?';
    }
  }

  char stamp[32] = "";
  if (log_timestamp) {
    snprintf(stamp, sizeof stamp, "%lld: ", (long long)time(NULL));
  }
  if (log_dests & MQTTB_CLI_LOG_DEST_STDERR) {
    fprintf(stderr, "%smqttb: %s%s\n", stamp, level_tag(level), msg);
  }
  if (log_dests & MQTTB_CLI_LOG_DEST_STDOUT) {
    fprintf(stdout, "%smqttb: %s%s\n", stamp, level_tag(level), msg);
    /* stdout is block-buffered when redirected; logs should not lag. */
    fflush(stdout);
  }
}

void mqttb_cli_fatal(const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "mqttb: %s\n", msg);
}
