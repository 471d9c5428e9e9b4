/* SPDX-License-Identifier: MIT */
/*
 * restore: a broker rebuilt from store records (store.h), and its state
 * written as the smallest set of records (a snapshot, for compaction).
 *
 * While records are applied, the store is muted. Sessions, subscriptions,
 * retained messages and inbound QoS 2 packet ids go straight to their
 * layers; messages and deliveries are kept here by id until the end,
 * because later records move and delete them. At the end each session's
 * deliveries go back into its window (those with a packet id) and queue,
 * in the order they were accepted; deliveries of an inbound QoS 2 message
 * whose COMMIT never came (a store torn in the middle of its fan-out) are
 * dropped, since the client was not acknowledged and sends it again.
 */
#ifndef MQTTB_RESTORE_H
#define MQTTB_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "map.h"
#include "router.h"
#include "session.h"
#include "store.h"

typedef struct mqttb_restore {
  mqttb_ctx *ctx;
  mqttb_store *store;
  mqttb_sessions *sessions;
  mqttb_router *router;
  mqttb_map msgs;           /* id -> mqttb_msg (a reference); keyed by its store_id */
  mqttb_map sessions_by_id; /* id -> mqttb_session; keyed by its store_id */
  mqttb_map dlvs;           /* id -> struct mqttb_rdlv */
  mqttb_map online;         /* id -> session recorded with its client connected */
  uint64_t max_id;
  uint64_t applied, refused;
  bool started, ended;
} mqttb_restore;

void mqttb_restore_init(mqttb_restore *r, mqttb_ctx *ctx, mqttb_store *store,
                        mqttb_sessions *sessions, mqttb_router *router);
/* Whatever a restore still holds (it never ended). */
void mqttb_restore_free(mqttb_restore *r);
/* Apply one record: 0, MQTTB_ERR_STORE_CORRUPT (logged), MQTTB_ERR_QUOTA,
 * MQTTB_ERR_NOMEM. */
int mqttb_restore_apply(mqttb_restore *r, const uint8_t *rec, size_t len);
/* Finish (see mqttb_broker_restore_end); nothing when none started or it
 * ended. Returns the sessions restored or MQTTB_ERR_NOMEM. */
int mqttb_restore_end(mqttb_restore *r);

/* Emit the snapshot records to cb. */
int mqttb_snapshot(mqttb_store *st, mqttb_sessions *sessions, mqttb_router *router,
                   mqttb_record_cb cb, void *ud);

#endif /* MQTTB_RESTORE_H */
