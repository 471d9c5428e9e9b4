/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "ctx.h"

void mqttb_logv(const mqttb_ctx *ctx, mqttb_log_level level, const char *fmt, va_list ap) {
  if (!ctx->cb.log)
    return;
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  ctx->cb.log(ctx->broker, level, buf, ctx->user_data);
}

void mqttb_log(const mqttb_ctx *ctx, mqttb_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mqttb_logv(ctx, level, fmt, ap);
  va_end(ap);
}

void mqttb_log_flush(const mqttb_ctx *ctx, mqttb_log_limit *lim, const char *who) {
  if (lim->suppressed) {
    mqttb_log(ctx, MQTTB_LOG_NOTICE, "%s: %u more log lines suppressed", who, lim->suppressed);
    lim->suppressed = 0;
  }
}

bool mqttb_log_allow(const mqttb_ctx *ctx, mqttb_log_limit *lim, const char *who) {
  if (ctx->now - lim->since >= MQTTB_LOG_WINDOW_MS || ctx->now < lim->since) {
    lim->since = ctx->now;
    lim->lines = 0;
  }
  if (lim->lines >= MQTTB_LOG_BURST) {
    lim->suppressed++;
    return false;
  }
  if (lim->lines++ == 0)
    mqttb_log_flush(ctx, lim, who);
  return true;
}
