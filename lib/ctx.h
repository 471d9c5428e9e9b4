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

#include <stdint.h>

#include <mqttb/mqttb.h>

typedef struct mqttb_ctx {
  mqttb_mem mem;
  mqttb_settings settings;
  mqttb_callbacks cb;
  void *user_data; /* passed last to every callback */
  mqttb_stats stats;
  /* The time of the public call in progress (message expiry, output since,
   * session expiry). Set by every public entry point that takes a time. */
  uint64_t now;
  /* The handle given to callbacks that take the broker; only passed on. */
  mqttb_broker *broker;
} mqttb_ctx;

/* Format and hand a line to the log callback (if any). */
void mqttb_log(const mqttb_ctx *ctx, mqttb_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* MQTTB_CTX_H */
