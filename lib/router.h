/* SPDX-License-Identifier: MIT */
/*
 * router: where a published message goes. Fan-out to every matching
 * subscription (one copy per session at the highest matching QoS, No
 * Local, Retain As Published, subscription identifiers), one member of
 * each matching shared group, the retained store and its sweep of expired
 * messages, retained delivery on subscribe, and the end of a session's
 * life: publishing the wills its session layer hands back and re-routing
 * what it held through shared groups.
 */
#ifndef MQTTB_ROUTER_H
#define MQTTB_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "msg.h"
#include "session.h"
#include "trie.h"

/* Fields belong to this module. */
typedef struct mqttb_router {
  mqttb_ctx *ctx;
  mqttb_sessions *sessions;
  mqttb_trie retained;
  /* Scratch space reused by every fan-out. A fan-out can publish wills
   * only through the connection layer's reaping, after it ends, so it is
   * never used twice at once. */
  uint64_t match_gen;
  mqttb_session **match;
  size_t nmatch, match_cap;
  mqttb_sub **share_match; /* members chosen from shared groups */
  size_t nshare_match, share_match_cap;
  mqttb_session *publisher; /* for No Local during a fan-out */
  bool host_publisher;      /* the application publishes: No Local for host sessions */
} mqttb_router;

int mqttb_router_init(mqttb_router *r, mqttb_ctx *ctx, mqttb_sessions *sessions);
void mqttb_router_free(mqttb_router *r);

/* Publish a message from a client (or a will, or the broker): retained
 * store and fan-out. publisher (may be NULL) is excluded by No Local
 * subscriptions. Returns the number of sessions it was delivered to, or
 * MQTTB_ROUTER_NOMEM when the subscribers could not all be found for lack
 * of memory: then it went to none of them (counted as dropped), so that a
 * publisher told so can send it again without duplicates. */
#define MQTTB_ROUTER_NOMEM SIZE_MAX
size_t mqttb_router_publish(mqttb_router *r, mqttb_msg *msg, mqttb_session *publisher);
/* The same for a message the application publishes: host sessions'
 * No Local subscriptions exclude it. */
size_t mqttb_router_publish_host(mqttb_router *r, mqttb_msg *msg);
/* Store or clear (empty payload) the retained message of msg's topic. */
void mqttb_router_retain(mqttb_router *r, mqttb_msg *msg);
/* Drop retained messages whose expiry passed (topics not starting with
 * '$'). */
void mqttb_router_retain_sweep(mqttb_router *r);
/* Send s the retained messages matching filter, at most at qos, with the
 * subscription identifier sub_id (0: none): they are queued in the session
 * and sent as its client takes them (mqttb_router_pump_retained). 0 or
 * MQTTB_ERR_NOMEM. */
int mqttb_router_send_retained(mqttb_router *r, mqttb_session *s, const char *filter, size_t len,
                               uint8_t qos, uint32_t sub_id);
/* Send s's pending retained messages while its client has room for them
 * (mqttb_session_has_room); called after SUBSCRIBE and whenever room may
 * have appeared (output written, an acknowledgement, a reconnect). A
 * message no longer retained when its turn comes (cleared, replaced,
 * expired) is skipped. */
void mqttb_router_pump_retained(mqttb_router *r, mqttb_session *s);

/* Carry out what a session's life asked for: publish the will, end the
 * session if it must. */
void mqttb_router_do(mqttb_router *r, mqttb_session *s, mqttb_session_due due);
/* End a session now: publish its pending will, hand its shared deliveries
 * to other members, free it. */
void mqttb_router_end_session(mqttb_router *r, mqttb_session *s);

#endif /* MQTTB_ROUTER_H */
