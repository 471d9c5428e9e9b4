/* SPDX-License-Identifier: MIT */
/*
 * ctx: what every layer of one broker shares. The allocator, the settings
 * and callbacks as the embedder gave them (converted to this version), the
 * counters, and the time of the public call in progress. Owned by the
 * broker (core.h); each layer keeps a pointer to it. Plain data: its fields
 * are read and written by every layer on purpose, and nothing here calls
 * anything.
 */
#ifndef MQTTB_CTX_H
#define MQTTB_CTX_H

#include <stdbool.h>
#include <stdint.h>

#include <mqttb/mqttb.h>

typedef struct mqttb_ctx {
  mqttb_mem mem;
  mqttb_settings settings;
  mqttb_callbacks cb;
  int cb_version;  /* the version the embedder's callbacks were written for */
  void *user_data; /* passed last to every callback */
  mqttb_stats stats;
  /* The time of the public call in progress (message expiry, output since,
   * session expiry). Set by every public entry point that takes a time. */
  uint64_t now;
  /* Units of work done so far (packets handled, deliveries, subscription
   * filters, retained messages sent), for settings.work_budget. */
  uint64_t work;
  /* Bytes of input buffers of all connections (max_input_bytes_total). */
  uint64_t input_bytes;
  /* The handle given to callbacks that take the broker; only passed on. */
  mqttb_broker *broker;
  /* Callbacks running now (nested): the calls no callback may make refuse
   * while this is non-zero. */
  uint32_t in_callback;
  /* Nonzero while the host calls and output acknowledgements are refused:
   * inside want_write, and while a fan-out is in progress (it holds
   * scratch state and walks the subscription trie). */
  uint32_t host_blocked;
} mqttb_ctx;

/* Run a callback expression with in_callback raised. */
#define MQTTB_CALLBACK(ctx, expr)                                                                  \
  do {                                                                                             \
    (ctx)->in_callback++;                                                                          \
    expr;                                                                                          \
    (ctx)->in_callback--;                                                                          \
  } while (0)

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define MQTTB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MQTTB_PRINTF(f, a)
#endif

/* Format and hand a line to the log callback (if any). */
void mqttb_log(const mqttb_ctx *ctx, mqttb_log_level level, const char *fmt, ...)
    MQTTB_PRINTF(3, 4);
void mqttb_logv(const mqttb_ctx *ctx, mqttb_log_level level, const char *fmt, va_list ap)
    MQTTB_PRINTF(3, 0);

/* Bytes of a string a client chose (client id, topic, filter) that go into
 * a log line: "%.*s" with mqttb_log_cut(len). */
#define MQTTB_LOG_MAX_STR 64
static inline int mqttb_log_cut(size_t len) {
  return len > MQTTB_LOG_MAX_STR ? MQTTB_LOG_MAX_STR : (int)len;
}

/* Lines one client causes are rate-limited: at most MQTTB_LOG_BURST per
 * MQTTB_LOG_WINDOW_MS; the rest are counted, and the count is logged with
 * the next line let through, or when the client goes. The caller keeps one
 * of these per client. */
#define MQTTB_LOG_BURST 10u
#define MQTTB_LOG_WINDOW_MS 10000u
typedef struct mqttb_log_limit {
  uint64_t since;      /* start of the current window */
  uint32_t lines;      /* let through in it */
  uint32_t suppressed; /* not let through since the last count was logged */
} mqttb_log_limit;

/* Whether a line may go out now; logs the count of suppressed lines first
 * when a new window lets one through (who: the "client X" it is about). */
bool mqttb_log_allow(const mqttb_ctx *ctx, mqttb_log_limit *lim, const char *who);
/* Log the count of suppressed lines, if any (the client is going). */
void mqttb_log_flush(const mqttb_ctx *ctx, mqttb_log_limit *lim, const char *who);

#endif /* MQTTB_CTX_H */
