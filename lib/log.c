/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

void mqttb_log(mqttb_broker *b, mqttb_log_level level, const char *fmt, ...) {
  if (!b->cb.log)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  b->cb.log(b, level, buf, b->user_data);
}
