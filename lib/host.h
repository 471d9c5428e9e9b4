/* SPDX-License-Identifier: MIT */
/*
 * host: the application as a client (mqttb_broker_publish, _subscribe,
 * _unsubscribe). A host subscriber, one (callback, user data) pair, owns a
 * host session (session.h): in the subscription trie and the shared groups
 * like any session, but with no client id and always online. Fan-out puts
 * its deliveries in the session set's host queue; mqttb_host_drain hands
 * them to the callbacks once the library call that routed them is done, so
 * that a callback never runs inside a fan-out and may publish and
 * subscribe itself.
 */
#ifndef MQTTB_HOST_H
#define MQTTB_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "map.h"
#include "router.h"
#include "session.h"

typedef struct mqttb_host {
  mqttb_ctx *ctx;
  mqttb_sessions *sessions;
  mqttb_router *router;
  mqttb_map subs; /* (callback, user data) -> mqttb_host_sub */
  bool draining;  /* a drain is handing out deliveries */
  bool closed;    /* the broker is being deleted: the calls refuse */
  uint8_t depth;  /* depth of the delivery being handed out */
  /* The user properties of the delivery being handed out. */
  mqttb_user_property *props;
  size_t props_cap;
} mqttb_host;

void mqttb_host_init(mqttb_host *h, mqttb_ctx *ctx, mqttb_sessions *sessions, mqttb_router *router);
/* Delete every host subscriber (before the session set is freed). */
void mqttb_host_free(mqttb_host *h);

/* The public calls, after the broker checked its arguments' versions. */
int mqttb_host_publish(mqttb_host *h, const mqttb_message *m);
int mqttb_host_subscribe(mqttb_host *h, const char *filter, int options, mqttb_message_cb cb,
                         void *user_data);
int mqttb_host_unsubscribe(mqttb_host *h, const char *filter, mqttb_message_cb cb, void *user_data);

/* Hand the waiting deliveries to their callbacks. Every public call that
 * can route a message calls this last; it does nothing inside a callback
 * (the outermost call's drain goes on with what callbacks publish). */
void mqttb_host_drain(mqttb_host *h);

#endif /* MQTTB_HOST_H */
