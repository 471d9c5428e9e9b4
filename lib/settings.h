/* SPDX-License-Identifier: MIT */
/*
 * settings: the public structs that carry a version (settings, callbacks,
 * stats). Defaults, and conversion between the caller's version and this
 * library's, reading and writing only as many bytes as the caller's
 * version has (the way ngtcp2 versions ngtcp2_settings).
 */
#ifndef MQTTB_SETTINGS_H
#define MQTTB_SETTINGS_H

#include <mqttb/mqttb.h>

/* Fill the latest settings struct with defaults. */
void mqttb_settings_defaults(mqttb_settings *s);
/* *out = the caller's settings of version v (NULL: defaults), fields past
 * that version defaulted. MQTTB_ERR_VERSION for an unknown version. */
int mqttb_settings_convert(mqttb_settings *out, int v, const mqttb_settings *in);
/* *out = the caller's callbacks of version v (NULL: none), later ones NULL. */
int mqttb_callbacks_convert(mqttb_callbacks *out, int v, const mqttb_callbacks *in);
/* Write the counters to a caller's struct of version v. */
int mqttb_stats_export(mqttb_stats *out, int v, const mqttb_stats *in);

#endif /* MQTTB_SETTINGS_H */
