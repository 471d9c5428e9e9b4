/* SPDX-License-Identifier: MIT */
/* The $SYS topic tree. See sys.h. */
#include "sys.h"

#include <stdio.h>
#include <string.h>

enum {
  SYS_VERSION,
  SYS_UPTIME,
  SYS_TIME,
  SYS_BYTES_RECEIVED,
  SYS_BYTES_SENT,
  SYS_CLIENTS_CONNECTED,
  SYS_CLIENTS_DISCONNECTED,
  SYS_CLIENTS_MAXIMUM,
  SYS_CLIENTS_TOTAL,
  SYS_MESSAGES_RECEIVED,
  SYS_MESSAGES_SENT,
  SYS_PUBLISH_DROPPED,
  SYS_PUBLISH_RECEIVED,
  SYS_PUBLISH_SENT,
  SYS_RETAINED_COUNT,
  SYS_SUBSCRIPTIONS_COUNT,
  SYS_HEAP_CURRENT,
  SYS_LOAD_FIRST /* then LOAD_KINDS x 3 periods */
};

/* The moving averages, as Mosquitto publishes them: per-minute rates,
 * exponentially smoothed over 1, 5 and 15 minutes. */
enum {
  LOAD_MESSAGES_RECEIVED,
  LOAD_MESSAGES_SENT,
  LOAD_PUBLISH_RECEIVED,
  LOAD_PUBLISH_SENT,
  LOAD_PUBLISH_DROPPED,
  LOAD_BYTES_RECEIVED,
  LOAD_BYTES_SENT,
  LOAD_CONNECTIONS,
  LOAD_KINDS
};

static const char *const load_names[LOAD_KINDS] = {
    "messages/received", "messages/sent",  "publish/received", "publish/sent",
    "publish/dropped",   "bytes/received", "bytes/sent",       "connections",
};
static const unsigned load_periods[3] = {1, 5, 15};

#define SYS_COUNT (SYS_LOAD_FIRST + LOAD_KINDS * 3)

static const char *const fixed_topics[SYS_LOAD_FIRST] = {
    "$SYS/broker/version",
    "$SYS/broker/uptime",
    "$SYS/broker/time",
    "$SYS/broker/load/bytes/received",
    "$SYS/broker/load/bytes/sent",
    "$SYS/broker/clients/connected",
    "$SYS/broker/clients/disconnected",
    "$SYS/broker/clients/maximum",
    "$SYS/broker/clients/total",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/messages/publish/dropped",
    "$SYS/broker/messages/publish/received",
    "$SYS/broker/messages/publish/sent",
    "$SYS/broker/messages/retained/count",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/heap/current",
};

struct mqttb_sys {
  mqttb_ctx *ctx;
  mqttb_router *router;
  uint64_t next; /* when the next update is due */
  uint64_t start_ms;
  uint64_t last_ms;
  bool first;
  uint64_t last_counts[LOAD_KINDS];
  double load[LOAD_KINDS][3];
  /* What was last published on each topic, so only changes go out. */
  char last[SYS_COUNT][40];
};

/* exp(x) for x <= 0 without libm: halve until small, sum the series, square
 * back. Accurate to well under the two decimals published. */
static double neg_exp(double x) {
  if (x < -700.0)
    return 0.0;
  int k = 0;
  while (x < -0.5) {
    x /= 2.0;
    k++;
  }
  double term = 1.0, sum = 1.0;
  for (int i = 1; i < 12; i++) {
    term *= x / i;
    sum += term;
  }
  while (k-- > 0)
    sum *= sum;
  return sum;
}

int mqttb_sys_new(mqttb_sys **out, mqttb_ctx *ctx, mqttb_router *router) {
  *out = NULL;
  if (ctx->settings.sys_interval_ms == 0)
    return 0;
  mqttb_sys *sys = mqttb_mem_calloc(&ctx->mem, 1, sizeof(*sys));
  if (!sys)
    return MQTTB_ERR_NOMEM;
  sys->ctx = ctx;
  sys->router = router;
  sys->first = true;
  /* The first handle_timers call publishes the tree and starts the clock. */
  sys->next = 0;
  *out = sys;
  return 0;
}

void mqttb_sys_del(mqttb_sys *sys) {
  if (sys)
    mqttb_mem_free(&sys->ctx->mem, sys);
}

uint64_t mqttb_sys_next(const mqttb_sys *sys) {
  return sys ? sys->next : UINT64_MAX;
}

static void publish(mqttb_sys *sys, int idx, const char *topic, const char *value) {
  mqttb_ctx *ctx = sys->ctx;
  if (strcmp(sys->last[idx], value) == 0 && !sys->first)
    return;
  size_t vlen = strlen(value);
  mqttb_msg *m = mqttb_msg_new(&ctx->mem, (const uint8_t *)topic, strlen(topic),
                               (const uint8_t *)value, vlen, NULL, 0, 0, true);
  if (!m) {
    mqttb_log(ctx, MQTTB_LOG_ERROR, "out of memory: %s not updated", topic);
    return;
  }
  /* $SYS messages are retained even when clients may not retain. */
  if (!ctx->settings.retain_available)
    mqttb_router_retain(sys->router, m);
  mqttb_router_publish(sys->router, m, NULL);
  mqttb_msg_unref(&ctx->mem, m);
  snprintf(sys->last[idx], sizeof(sys->last[idx]), "%s", value);
}

static void publish_u64(mqttb_sys *sys, int idx, uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
  publish(sys, idx, fixed_topics[idx], buf);
}

/* Civil date from days since the epoch (Howard Hinnant's algorithm). */
static void civil(int64_t days, int *y, unsigned *m, unsigned *d) {
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  unsigned doe = (unsigned)(days - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

void mqttb_sys_format_time(int64_t t, char *buf, size_t len) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  int y;
  unsigned mo, d;
  civil(days, &y, &mo, &d);
  snprintf(buf, len, "%04d-%02u-%02uT%02u:%02u:%02uZ", y, mo, d, (unsigned)(secs / 3600),
           (unsigned)(secs % 3600 / 60), (unsigned)(secs % 60));
}

static void update_loads(mqttb_sys *sys, uint64_t now) {
  const mqttb_stats *st = &sys->ctx->stats;
  uint64_t counts[LOAD_KINDS] = {
      st->packets_received, st->packets_sent,   st->publish_received, st->publish_sent,
      st->publish_dropped,  st->bytes_received, st->bytes_sent,       st->connects_total,
  };
  double elapsed = (double)(now - sys->last_ms) / 1000.0;
  for (int k = 0; k < LOAD_KINDS; k++) {
    double rate = 0.0;
    if (!sys->first && elapsed > 0.0)
      rate = (double)(counts[k] - sys->last_counts[k]) * 60.0 / elapsed;
    for (int p = 0; p < 3; p++) {
      double e = sys->first ? 0.0 : neg_exp(-elapsed / (60.0 * load_periods[p]));
      double *cur = &sys->load[k][p];
      *cur = rate + e * (*cur - rate);
      char topic[64], val[32];
      snprintf(topic, sizeof(topic), "$SYS/broker/load/%s/%umin", load_names[k], load_periods[p]);
      snprintf(val, sizeof(val), "%.2f", *cur);
      publish(sys, SYS_LOAD_FIRST + k * 3 + p, topic, val);
    }
    sys->last_counts[k] = counts[k];
  }
}

void mqttb_sys_update(mqttb_sys *sys, uint64_t now) {
  mqttb_ctx *ctx = sys->ctx;
  if (sys->first)
    sys->start_ms = now;
  mqttb_router_retain_sweep(sys->router);
  const mqttb_stats *st = &ctx->stats;
  char buf[64];
  snprintf(buf, sizeof(buf), "mqttb version %s", MQTTB_VERSION_STRING);
  publish(sys, SYS_VERSION, fixed_topics[SYS_VERSION], buf);
  snprintf(buf, sizeof(buf), "%llu seconds", (unsigned long long)((now - sys->start_ms) / 1000));
  publish(sys, SYS_UPTIME, fixed_topics[SYS_UPTIME], buf);
  if (ctx->cb.wallclock) {
    mqttb_sys_format_time(ctx->cb.wallclock(ctx->user_data), buf, sizeof(buf));
    publish(sys, SYS_TIME, fixed_topics[SYS_TIME], buf);
  }
  publish_u64(sys, SYS_BYTES_RECEIVED, st->bytes_received);
  publish_u64(sys, SYS_BYTES_SENT, st->bytes_sent);
  publish_u64(sys, SYS_CLIENTS_CONNECTED, st->clients_connected);
  publish_u64(sys, SYS_CLIENTS_DISCONNECTED, st->clients_disconnected);
  publish_u64(sys, SYS_CLIENTS_MAXIMUM, st->clients_maximum);
  publish_u64(sys, SYS_CLIENTS_TOTAL, st->clients_connected + st->clients_disconnected);
  publish_u64(sys, SYS_MESSAGES_RECEIVED, st->packets_received);
  publish_u64(sys, SYS_MESSAGES_SENT, st->packets_sent);
  publish_u64(sys, SYS_PUBLISH_DROPPED, st->publish_dropped);
  publish_u64(sys, SYS_PUBLISH_RECEIVED, st->publish_received);
  publish_u64(sys, SYS_PUBLISH_SENT, st->publish_sent);
  publish_u64(sys, SYS_RETAINED_COUNT, st->retained_count);
  publish_u64(sys, SYS_SUBSCRIPTIONS_COUNT, st->subscription_count);
  if (ctx->cb.heap_usage)
    publish_u64(sys, SYS_HEAP_CURRENT, ctx->cb.heap_usage(ctx->user_data));
  update_loads(sys, now);
  sys->first = false;
  sys->last_ms = now;
  sys->next = now + ctx->settings.sys_interval_ms;
}
