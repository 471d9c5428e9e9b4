/* SPDX-License-Identifier: MIT */
/* The broker: creation and deletion of its parts (core.h), its counters,
 * and the timers. The top of the library with the connection layer. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "conn.h"
#include "core.h"
#include "settings.h"

const char *mqttb_version(void) {
  return MQTTB_VERSION_STRING;
}

/* Keep a copy of the prefix of assigned identifiers. */
static void own_prefix(mqttb_broker *b, const char *prefix) {
  size_t plen = prefix ? strlen(prefix) : 0;
  if (plen > sizeof(b->auto_id_prefix) - 1)
    plen = sizeof(b->auto_id_prefix) - 1;
  if (plen)
    memmove(b->auto_id_prefix, prefix, plen);
  b->auto_id_prefix[plen] = '\0';
  b->ctx.settings.auto_id_prefix = b->auto_id_prefix;
}

/* Bring values out of range into it; 0 means "derive" where documented. */
static void clamp_settings(mqttb_settings *st) {
  if (st->max_packet_size == 0 || st->max_packet_size > MQTTB_MAX_REMAINING_LENGTH + 5u)
    st->max_packet_size = MQTTB_MAX_REMAINING_LENGTH + 5u;
  if (st->max_qos > 2)
    st->max_qos = 2;
  if (st->max_connect_size == 0 || st->max_connect_size > st->max_packet_size)
    st->max_connect_size = st->max_packet_size;
  if (st->receive_maximum == 0)
    st->receive_maximum = st->max_inflight_messages && st->max_inflight_messages < 65535
                              ? (uint16_t)st->max_inflight_messages
                              : 65535;
}

/* Copy the strings the settings point to, and clamp what is out of range. */
static int own_settings(mqttb_broker *b) {
  mqttb_settings *st = &b->ctx.settings;
  own_prefix(b, st->auto_id_prefix);
  clamp_settings(st);
  if (!st->auto_id_key[0] && !st->auto_id_key[1]) {
    /* No key given: one made from the broker's address, so that brokers
     * alive at once in one process assign different identifiers. */
    uint64_t a = (uint64_t)(uintptr_t)b;
    st->auto_id_key[0] = a ^ 0x6d717474622d6964ull; /* "mqttb-id" */
    st->auto_id_key[1] = ~a;
  }
  if (st->response_information) {
    size_t n = strlen(st->response_information);
    b->response_information = mqttb_mem_malloc(&b->ctx.mem, n + 1);
    if (!b->response_information)
      return MQTTB_ERR_NOMEM;
    memcpy(b->response_information, st->response_information, n + 1);
    st->response_information = b->response_information;
  }
  return 0;
}

/* Free the parts, in the reverse of the order they were made. */
static void parts_free(mqttb_broker *b) {
  /* What goes now goes with the broker, not from the store. */
  b->store.muted = true;
  mqttb_restore_free(&b->restore);
  mqttb_host_free(&b->host);
  mqttb_sys_del(b->sys);
  b->sys = NULL;
  mqttb_sessions_free(&b->sessions);
  mqttb_router_free(&b->router);
  mqttb_timers_free(&b->timers);
  mqttb_store_free(&b->store);
  mqttb_mem_free(&b->ctx.mem, b->response_information);
}

int mqttb_broker_new_versioned(mqttb_broker **pb, int settings_version,
                               const mqttb_settings *settings, int callbacks_version,
                               const mqttb_callbacks *callbacks, const mqttb_mem *mem,
                               void *user_data) {
  if (!pb)
    return MQTTB_ERR_INVALID_ARGUMENT;
  mqttb_settings st;
  mqttb_callbacks cb;
  if (mqttb_settings_convert(&st, settings_version, settings) != 0 ||
      mqttb_callbacks_convert(&cb, callbacks_version, callbacks) != 0)
    return MQTTB_ERR_VERSION;
  if (!mem)
    mem = mqttb_mem_default();
  if (!mem->malloc || !mem->free || !mem->calloc || !mem->realloc)
    return MQTTB_ERR_INVALID_ARGUMENT;
  mqttb_broker *b = mem->calloc(1, sizeof(*b), mem->user_data);
  if (!b)
    return MQTTB_ERR_NOMEM;
  mqttb_ctx *ctx = &b->ctx;
  b->outer = *mem;
  ctx->mem = *mem;
  if (st.memory_limit)
    mqttb_mem_limit_init(&b->limit, mem, st.memory_limit, &ctx->mem);
  ctx->settings = st;
  ctx->cb = cb;
  ctx->cb_version = callbacks_version;
  ctx->user_data = user_data;
  ctx->broker = b;
  mqttb_conn_setup_hub(b);
  mqttb_store_init(&b->store, ctx);
  b->hub.store = &b->store;
  mqttb_timers_init(&b->timers, &ctx->mem);
  /* The parts start empty (calloc), so parts_free may run after any of
   * these fails. */
  if (own_settings(b) != 0 || mqttb_router_init(&b->router, ctx, &b->sessions) != 0 ||
      mqttb_sessions_init(&b->sessions, ctx, &b->hub, &b->timers) != 0 ||
      mqttb_sys_new(&b->sys, ctx, &b->router) != 0) {
    parts_free(b);
    mqttb_mem_free(&b->outer, b);
    return MQTTB_ERR_NOMEM;
  }
  mqttb_host_init(&b->host, ctx, &b->sessions, &b->router);
  b->sessions.store = &b->store;
  mqttb_restore_init(&b->restore, ctx, &b->store, &b->sessions, &b->router);
  *pb = b;
  return MQTTB_OK;
}

/* Close every open connection as on the embedder's request. */
static void shut_all(mqttb_broker *b) {
  b->shut_down = true;
  for (mqttb_conn *c = b->conns; c; c = c->next)
    if (c->state < MQTTB_CONN_CLOSING)
      mqttb_conn_shut(c, MQTTB_REASON_SERVER_SHUTTING_DOWN);
  mqttb_conn_reap(b);
}

int mqttb_broker_shutdown(mqttb_broker *b, uint64_t now) {
  if (!b)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (b->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE;
  b->ctx.now = now;
  shut_all(b);
  mqttb_host_drain(&b->host);
  return MQTTB_OK;
}

void mqttb_broker_del(mqttb_broker *b) {
  if (!b)
    return;
  if (b->ctx.in_callback) {
    mqttb_log(&b->ctx, MQTTB_LOG_ERROR, "mqttb_broker_del called from a callback: ignored");
    return;
  }
  /* The host calls refuse from here on; open connections are closed, each
   * through on_close, then every connection object is freed. */
  b->host.closed = true;
  shut_all(b);
  while (b->conns)
    mqttb_conn_free(b->conns);
  /* Every remaining session is offline and persistent. */
  parts_free(b);
  mqttb_mem mem = b->outer;
  mqttb_mem_free(&mem, b);
}

int mqttb_broker_get_stats_versioned(const mqttb_broker *b, int stats_version, mqttb_stats *stats) {
  if (!b || !stats)
    return MQTTB_ERR_INVALID_ARGUMENT;
  return mqttb_stats_export(stats, stats_version, &b->ctx.stats);
}

/* ---------------------------------------------------------------- reload */

int mqttb_broker_reload_settings_versioned(mqttb_broker *b, int settings_version,
                                           const mqttb_settings *settings) {
  if (!b || !settings)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (b->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE;
  mqttb_settings in;
  if (mqttb_settings_convert(&in, settings_version, settings) != 0)
    return MQTTB_ERR_VERSION;
  mqttb_settings *st = &b->ctx.settings;
  mqttb_settings next = *st;
#define TAKE(f) next.f = in.f
  TAKE(max_packet_size);
  TAKE(max_inflight_messages);
  TAKE(max_queued_messages);
  TAKE(max_queued_bytes);
  TAKE(connect_timeout_ms);
  TAKE(max_keepalive);
  TAKE(queue_qos0_messages);
  TAKE(allow_zero_length_clientid);
  TAKE(retain_available);
  TAKE(receive_maximum);
  TAKE(max_subscriptions);
  TAKE(max_topic_levels);
  TAKE(max_queued_bytes_total);
  TAKE(max_output_bytes);
  TAKE(output_stall_timeout_ms);
  TAKE(work_budget);
  TAKE(max_connect_size);
  TAKE(max_input_bytes_total);
  TAKE(store_sync);
  TAKE(persistent_client_expiration);
#undef TAKE
  /* $SYS is made or not at creation; its period may change. */
  if ((in.sys_interval_ms != 0) == (b->sys != NULL))
    next.sys_interval_ms = in.sys_interval_ms;
  /* A memory limit given at creation may change; none can be added. */
  if (st->memory_limit && in.memory_limit) {
    next.memory_limit = in.memory_limit;
    mqttb_mem_limit_set(&b->limit, in.memory_limit);
  }
  clamp_settings(&next);
  next.auto_id_prefix = st->auto_id_prefix;
  *st = next;
  own_prefix(b, in.auto_id_prefix);
  if (!st->store_sync && b->hub.held) {
    /* Nothing waits for the store any more. */
    b->store.durable = b->store.seq;
    mqttb_tx_release_held(&b->hub);
    mqttb_conn_reap(b);
  }
  return MQTTB_OK;
}

/* ---------------------------------------------------------------- store */

int mqttb_broker_restore(mqttb_broker *b, const uint8_t *rec, size_t len, uint64_t now) {
  if (!b || (!rec && len))
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (b->ctx.in_callback || b->restore.ended || b->conns || b->shut_down)
    return MQTTB_ERR_INVALID_STATE;
  b->ctx.now = now;
  return mqttb_restore_apply(&b->restore, rec ? rec : (const uint8_t *)"", len);
}

int mqttb_broker_restore_end(mqttb_broker *b, uint64_t now) {
  if (!b)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (b->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE;
  b->ctx.now = now;
  return mqttb_restore_end(&b->restore);
}

int mqttb_broker_snapshot(mqttb_broker *b, mqttb_record_cb cb, void *user_data) {
  if (!b || !cb)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (b->ctx.in_callback || (b->restore.started && !b->restore.ended))
    return MQTTB_ERR_INVALID_STATE;
  return mqttb_snapshot(&b->store, &b->sessions, &b->router, cb, user_data);
}

uint64_t mqttb_broker_store_seq(const mqttb_broker *b) {
  return b ? b->store.seq : 0;
}

int mqttb_broker_store_durable(mqttb_broker *b, uint64_t seq, uint64_t now) {
  if (!b)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (b->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE;
  b->ctx.now = now;
  if (seq > b->store.seq)
    seq = b->store.seq;
  if (seq > b->store.durable)
    b->store.durable = seq;
  if (b->hub.held) {
    mqttb_tx_release_held(&b->hub);
    mqttb_conn_reap(b);
  }
  return MQTTB_OK;
}

/* ---------------------------------------------------------------- timers */

uint64_t mqttb_broker_next_deadline(const mqttb_broker *b) {
  if (!b)
    return UINT64_MAX;
  uint64_t dl = mqttb_sys_next(b->sys);
  uint64_t t = mqttb_timers_next(&b->timers);
  return t < dl ? t : dl;
}

int mqttb_broker_timeout(const mqttb_broker *b, uint64_t now) {
  uint64_t dl = mqttb_broker_next_deadline(b);
  if (dl == UINT64_MAX)
    return -1;
  if (dl <= now)
    return 0;
  return dl - now > (uint64_t)INT32_MAX ? INT32_MAX : (int)(dl - now);
}

int mqttb_broker_handle_timers(mqttb_broker *b, uint64_t now) {
  if (!b)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (b->ctx.in_callback)
    return MQTTB_ERR_INVALID_STATE;
  b->ctx.now = now;
  mqttb_timer *t;
  while ((t = mqttb_timers_pop_due(&b->timers, now)) != NULL) {
    if (t->kind == MQTTB_TIMER_SESSION) {
      mqttb_session *s = mqttb_session_of_timer(t);
      mqttb_router_do(&b->router, s, mqttb_session_on_timer(s, now));
    } else {
      mqttb_conn *c = mqttb_conn_of_timer(t);
      if (mqttb_conn_on_timer(c, now) != 0)
        mqttb_conn_close(c, MQTTB_ERR_CONN_NOMEM);
    }
    mqttb_conn_reap(b);
  }
  if (b->sys && mqttb_sys_next(b->sys) <= now) {
    mqttb_sys_update(b->sys, now);
    mqttb_conn_reap(b);
  }
  mqttb_host_drain(&b->host);
  return MQTTB_OK;
}

/* ---------------------------------------------------------------- host */

int mqttb_broker_publish_versioned(mqttb_broker *b, int message_version, const mqttb_message *msg,
                                   uint64_t now) {
  if (!b || !msg)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (message_version != MQTTB_MESSAGE_V1)
    return MQTTB_ERR_VERSION;
  if (!b->ctx.in_callback)
    b->ctx.now = now;
  mqttb_restore_end(&b->restore);
  int rv = mqttb_host_publish(&b->host, msg);
  mqttb_conn_reap(b);
  mqttb_host_drain(&b->host);
  return rv;
}

int mqttb_broker_subscribe(mqttb_broker *b, const char *filter, int options, mqttb_message_cb cb,
                           void *user_data, uint64_t now) {
  if (!b)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (!b->ctx.in_callback)
    b->ctx.now = now;
  mqttb_restore_end(&b->restore);
  int rv = mqttb_host_subscribe(&b->host, filter, options, cb, user_data);
  mqttb_host_drain(&b->host);
  return rv;
}

int mqttb_broker_unsubscribe(mqttb_broker *b, const char *filter, mqttb_message_cb cb,
                             void *user_data, uint64_t now) {
  if (!b)
    return MQTTB_ERR_INVALID_ARGUMENT;
  if (!b->ctx.in_callback)
    b->ctx.now = now;
  return mqttb_host_unsubscribe(&b->host, filter, cb, user_data);
}
