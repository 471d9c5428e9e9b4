/*
 * mqttb CLI: log output.
 *
 * SPDX-License-Identifier: MIT
 */
#include "log.h"

#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static unsigned log_types = MQTTB_CLI_LOG_TYPES_DEFAULT;
static unsigned log_dests = MQTTB_CLI_LOG_DEST_STDERR;
static bool log_timestamp = true;
/* strftime format, or NULL: seconds since the epoch. */
static char *log_timestamp_format;
/* log_dest file, while open. */
static FILE *log_file;
static bool syslog_open;

void mqttb_cli_log_setup(unsigned types, unsigned dests, bool timestamp) {
  log_types = types;
  log_dests = dests;
  log_timestamp = timestamp;
}

void mqttb_cli_log_close(void) {
  if (log_file != NULL) {
    fclose(log_file);
    log_file = NULL;
  }
  if (syslog_open) {
    closelog();
    syslog_open = false;
  }
  log_dests &= ~(MQTTB_CLI_LOG_DEST_FILE | MQTTB_CLI_LOG_DEST_SYSLOG);
  if (log_dests == 0) {
    log_dests = MQTTB_CLI_LOG_DEST_STDERR;
  }
  free(log_timestamp_format);
  log_timestamp_format = NULL;
}

int mqttb_cli_log_configure(unsigned types, const struct mqttb_cli_config *cfg, char *err,
                            size_t errlen) {
  /* As Mosquitto on SIGHUP: close everything, then open what is configured. */
  mqttb_cli_log_close();
  unsigned dests = cfg->log_dests;
  int rc = 0;
  if ((dests & MQTTB_CLI_LOG_DEST_FILE) && cfg->log_file != NULL) {
    log_file = fopen(cfg->log_file, "ae");
    if (log_file == NULL) {
      snprintf(err, errlen, "cannot open log file %s: %s", cfg->log_file, strerror(errno));
      dests = (dests & ~MQTTB_CLI_LOG_DEST_FILE) | MQTTB_CLI_LOG_DEST_STDERR;
      rc = -1;
    }
  } else {
    dests &= ~MQTTB_CLI_LOG_DEST_FILE;
  }
  if (dests & MQTTB_CLI_LOG_DEST_SYSLOG) {
    openlog("mqttb", LOG_PID, cfg->log_facility);
    syslog_open = true;
  }
  if (cfg->log_timestamp_format != NULL) {
    log_timestamp_format = strdup(cfg->log_timestamp_format);
  }
  mqttb_cli_log_setup(types, dests, cfg->log_timestamp);
  return rc;
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

static int syslog_priority(mqttb_log_level level) {
  switch (level) {
  case MQTTB_LOG_ERROR:
    return LOG_ERR;
  case MQTTB_LOG_WARNING:
    return LOG_WARNING;
  case MQTTB_LOG_NOTICE:
    return LOG_NOTICE;
  case MQTTB_LOG_INFO:
    return LOG_INFO;
  case MQTTB_LOG_DEBUG:
    break;
  }
  return LOG_DEBUG;
}

static void format_stamp(char *stamp, size_t len) {
  stamp[0] = '\0';
  if (!log_timestamp) {
    return;
  }
  time_t now = time(NULL);
  if (log_timestamp_format != NULL) {
    struct tm tm;
    size_t n = 0;
    if (localtime_r(&now, &tm) != NULL) {
      /* The format is the configuration's, as Mosquitto's log_timestamp_format. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
      n = strftime(stamp, len - 2, log_timestamp_format, &tm);
#pragma GCC diagnostic pop
    }
    if (n == 0) {
      /* Mosquitto's words for a format that gives nothing. */
      n = (size_t)snprintf(stamp, len - 2, "Time error");
    }
    stamp[n] = ':';
    stamp[n + 1] = ' ';
    stamp[n + 2] = '\0';
    return;
  }
  snprintf(stamp, len, "%lld: ", (long long)now);
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

  char stamp[128];
  format_stamp(stamp, sizeof stamp);
  if (log_dests & MQTTB_CLI_LOG_DEST_STDERR) {
    fprintf(stderr, "%smqttb: %s%s\n", stamp, level_tag(level), msg);
  }
  if (log_dests & MQTTB_CLI_LOG_DEST_STDOUT) {
    fprintf(stdout, "%smqttb: %s%s\n", stamp, level_tag(level), msg);
    /* stdout is block-buffered when redirected; logs should not lag. */
    fflush(stdout);
  }
  if ((log_dests & MQTTB_CLI_LOG_DEST_FILE) && log_file != NULL) {
    fprintf(log_file, "%smqttb: %s%s\n", stamp, level_tag(level), msg);
    fflush(log_file);
  }
  if ((log_dests & MQTTB_CLI_LOG_DEST_SYSLOG) && syslog_open) {
    /* syslog stamps and names the line itself. */
    syslog(syslog_priority(level), "%s%s", level_tag(level), msg);
  }
}

/* "mqttb: msg" on stderr whatever the settings; the log file and syslog get
 * it as a line of @p level when they are open. */
static void unconditional(mqttb_log_level level, const char *msg) {
  fprintf(stderr, "mqttb: %s\n", msg);
  if (log_file != NULL) {
    char stamp[128];
    format_stamp(stamp, sizeof stamp);
    fprintf(log_file, "%smqttb: %s%s\n", stamp, level_tag(level), msg);
    fflush(log_file);
  }
  if (syslog_open) {
    syslog(syslog_priority(level), "%s%s", level_tag(level), msg);
  }
}

void mqttb_cli_fatal(const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  unconditional(MQTTB_LOG_ERROR, msg);
}

void mqttb_cli_announce(const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  unconditional(MQTTB_LOG_NOTICE, msg);
}
