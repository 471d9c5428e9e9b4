/* SPDX-License-Identifier: MIT */
/*
 * sys: the $SYS topic tree. Broker figures published as retained messages
 * every sys_interval through the router; only values that changed since
 * the last update are published again, and a new subscriber gets the
 * current ones from the retained store. Each update also sweeps expired
 * retained messages.
 */
#ifndef MQTTB_SYS_H
#define MQTTB_SYS_H

#include <stdint.h>

#include "ctx.h"
#include "router.h"

typedef struct mqttb_sys mqttb_sys;

/* *out is NULL (and 0 returned) when settings.sys_interval_ms is 0. */
int mqttb_sys_new(mqttb_sys **out, mqttb_ctx *ctx, mqttb_router *router);
void mqttb_sys_del(mqttb_sys *sys);
/* When the next update is due; UINT64_MAX for a NULL sys. */
uint64_t mqttb_sys_next(const mqttb_sys *sys);
/* Publish the tree (changed values only) and schedule the next update. */
void mqttb_sys_update(mqttb_sys *sys, uint64_t now);
/* ISO 8601 UTC, "2026-11-25T15:08:18Z". */
void mqttb_sys_format_time(int64_t unix_seconds, char *buf, size_t len);

#endif /* MQTTB_SYS_H */
