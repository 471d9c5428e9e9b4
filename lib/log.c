/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "ctx.h"

void mqttb_log(const mqttb_ctx *ctx, mqttb_log_level level, const char *fmt, ...) {
  if (!ctx->cb.log)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  ctx->cb.log(ctx->broker, level, buf, ctx->user_data);
}
