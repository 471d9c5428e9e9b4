/* SPDX-License-Identifier: MIT */
/* Versioned public structs. See settings.h. */
#include "settings.h"

#include <stddef.h>
#include <string.h>

#include "wire.h"

/* The bytes of each version: up to the end of its last field. A new
 * version adds a case with its own last field. */
static size_t settings_len(int v) {
  switch (v) {
  case MQTTB_SETTINGS_V1:
    return offsetof(mqttb_settings, auto_id_key) + sizeof(((mqttb_settings *)0)->auto_id_key);
  case MQTTB_SETTINGS_V2:
    return offsetof(mqttb_settings, max_input_bytes_total) +
           sizeof(((mqttb_settings *)0)->max_input_bytes_total);
  case MQTTB_SETTINGS_V3:
    return offsetof(mqttb_settings, persistent_client_expiration) +
           sizeof(((mqttb_settings *)0)->persistent_client_expiration);
  default:
    return 0;
  }
}

static size_t callbacks_len(int v) {
  switch (v) {
  case MQTTB_CALLBACKS_V1:
  case MQTTB_CALLBACKS_V2: /* the same members; authorize is asked about reads */
    return offsetof(mqttb_callbacks, heap_usage) + sizeof(((mqttb_callbacks *)0)->heap_usage);
  case MQTTB_CALLBACKS_V3:
    return offsetof(mqttb_callbacks, store) + sizeof(((mqttb_callbacks *)0)->store);
  default:
    return 0;
  }
}

static size_t stats_len(int v) {
  switch (v) {
  case MQTTB_STATS_V1:
    return offsetof(mqttb_stats, connects_total) + sizeof(((mqttb_stats *)0)->connects_total);
  default:
    return 0;
  }
}

void mqttb_settings_defaults(mqttb_settings *s) {
  memset(s, 0, sizeof(*s));
  s->max_packet_size = MQTTB_MAX_REMAINING_LENGTH + 5u;
  s->max_inflight_messages = 20;
  s->max_queued_messages = 1000;
  s->max_queued_bytes = 0;
  s->max_connections = 0;
  s->connect_timeout_ms = 10000;
  s->max_keepalive = 0;
  s->queue_qos0_messages = 0;
  s->allow_zero_length_clientid = 1;
  s->auto_id_prefix = "auto-";
  s->retain_available = 1;
  s->sys_interval_ms = 10000;
  s->receive_maximum = 0; /* max_inflight_messages */
  s->topic_alias_maximum = 10;
  s->max_qos = 2;
  s->wildcard_subscriptions = 1;
  s->subscription_identifiers = 1;
  s->shared_subscriptions = 1;
  s->response_information = NULL;
  s->max_subscriptions = 10000;
  s->max_topic_levels = 128;
  s->max_queued_bytes_total = 268435456u;
  s->max_output_bytes = 1048576u;
  s->output_stall_timeout_ms = 60000;
  s->work_budget = 1024;
  s->max_connect_size = 262144;
  s->memory_limit = 0;
  s->max_input_bytes_total = 536870912u;
}

void mqttb_settings_default_versioned(int settings_version, mqttb_settings *settings) {
  size_t len = settings_len(settings_version);
  if (!settings || len == 0)
    return;
  mqttb_settings latest;
  mqttb_settings_defaults(&latest);
  memcpy(settings, &latest, len);
}

int mqttb_settings_convert(mqttb_settings *out, int v, const mqttb_settings *in) {
  size_t len = settings_len(v);
  if (len == 0)
    return MQTTB_ERR_VERSION;
  mqttb_settings_defaults(out);
  if (in)
    memcpy(out, in, len);
  return 0;
}

int mqttb_callbacks_convert(mqttb_callbacks *out, int v, const mqttb_callbacks *in) {
  size_t len = callbacks_len(v);
  if (len == 0)
    return MQTTB_ERR_VERSION;
  memset(out, 0, sizeof(*out));
  if (in)
    memcpy(out, in, len);
  return 0;
}

int mqttb_stats_export(mqttb_stats *out, int v, const mqttb_stats *in) {
  size_t len = stats_len(v);
  if (len == 0)
    return MQTTB_ERR_VERSION;
  memcpy(out, in, len);
  return 0;
}
