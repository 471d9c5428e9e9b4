/* SPDX-License-Identifier: MIT */
/*
 * core: struct mqttb_broker, the parts of one broker, one per layer. It is
 * shared on purpose by broker.c, which creates, drives and deletes the
 * parts, and by the connection layer (conn*.c), whose public calls take a
 * broker and serve a connection with them. Neither calls the other's
 * functions through it: the connection layer uses the parts' own
 * interfaces, and broker.c calls down into conn.h.
 */
#ifndef MQTTB_CORE_H
#define MQTTB_CORE_H

#include <stdint.h>

#include "ctx.h"
#include "host.h"
#include "restore.h"
#include "router.h"
#include "session.h"
#include "store.h"
#include "sys.h"
#include "timer.h"
#include "tx.h"

struct mqttb_conn;

struct mqttb_broker {
  mqttb_ctx ctx;              /* allocator, settings, callbacks, counters, now */
  mqttb_mem_limit limit;      /* behind ctx.mem when settings.memory_limit is set */
  mqttb_mem outer;            /* the embedder's hooks, which hold this struct */
  mqttb_tx_hub hub;           /* output signals and failed connections */
  mqttb_timers timers;        /* every connection and session deadline */
  mqttb_sessions sessions;    /* sessions, subscriptions, shared groups */
  mqttb_router router;        /* fan-out and the retained store */
  mqttb_sys *sys;             /* $SYS; NULL when sys_interval_ms is 0 */
  mqttb_host host;            /* the application's publishing and subscribers */
  mqttb_store store;          /* the record stream of durable changes */
  mqttb_restore restore;      /* rebuilding from records, until it ends */
  struct mqttb_conn *conns;   /* all connection objects */
  char *response_information; /* the copy settings point into */
  char auto_id_prefix[33];    /* the copy settings point into */
  uint64_t auto_id_counter;   /* assigned client identifiers so far */
  bool shut_down;             /* mqttb_broker_shutdown ran: no new connections */
};

#endif /* MQTTB_CORE_H */
