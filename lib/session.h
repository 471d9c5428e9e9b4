/* SPDX-License-Identifier: MIT */
/*
 * session: what outlives a connection. The set of sessions by client
 * identifier; each session's subscriptions (in the subscription trie, with
 * shared-subscription groups), its outbound QoS 1/2 in-flight window and
 * queue, its inbound QoS 2 packet identifiers, and its life: attach to a
 * connection, resume, detach, expiry and delayed wills.
 *
 * A session sends through the tx of its connection (tx.h) and never calls
 * the layers above it. Where its life produces work for them (a will that
 * is due, a session that must end), the call returns that work to its
 * caller: the router publishes wills and ends sessions (router.h).
 */
#ifndef MQTTB_SESSION_H
#define MQTTB_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "map.h"
#include "msg.h"
#include "pidmap.h"
#include "store.h"
#include "timer.h"
#include "trie.h"
#include "tx.h"
#include "window.h"
#include "wire.h"

typedef struct mqttb_session mqttb_session;

/* Subscription options (the MQTT 5 options byte layout). */
#define MQTTB_SUB_NO_LOCAL 0x04u
#define MQTTB_SUB_RETAIN_AS_PUBLISHED 0x08u

/* One subscription of one session to one filter. Read by the router during
 * fan-out; written here only. */
typedef struct mqttb_sub {
  mqttb_session *session;
  mqttb_tnode *node;
  struct mqttb_share *share; /* the group, for a shared subscription */
  uint32_t node_idx;         /* position in node->subs or share->members */
  uint8_t qos;               /* granted QoS */
  uint8_t opts;              /* MQTTB_SUB_* */
  uint16_t filter_len;
  uint32_t sub_id;   /* MQTT 5 Subscription Identifier, 0 for none */
  uint32_t sess_idx; /* position in session->subs */
  char filter[];     /* as subscribed ($share/... included), NUL-terminated */
} mqttb_sub;

/* A shared subscription group: $share/name/filter. One member gets each
 * message (the router picks it); deliveries reference the group so that
 * messages of a member whose session ends go to another member. Members
 * are kept here; the router reads them and advances next. */
typedef struct mqttb_share {
  uint32_t refs; /* the node's reference + one per delivery */
  mqttb_tnode *node;
  mqttb_sub **members;
  size_t nmembers, members_cap;
  size_t next;
  uint16_t name_len;
  char name[];
} mqttb_share;

/* A fan-out's per-session scratch. Owned by the router (one copy per
 * session per publish, at the highest QoS, with every matching
 * subscription identifier); kept in the session so that de-duplication
 * costs no lookup. */
typedef struct mqttb_match {
  uint64_t gen;
  uint32_t *ids;
  uint32_t nids, ids_cap;
  uint8_t qos;
  bool rap; /* Retain As Published */
} mqttb_match;

/* Retained messages matched by a SUBSCRIBE and not yet sent: they go out
 * as the subscriber's output drains (the router paces them), so a reader
 * gets all of them and a client that stops reading holds little. */
typedef struct mqttb_ret_item {
  mqttb_msg *msg; /* a reference */
  uint32_t sub_id;
  uint8_t qos; /* the subscription's granted QoS */
} mqttb_ret_item;

typedef struct mqttb_retq {
  mqttb_ret_item *e;
  size_t head, n, cap;
} mqttb_retq;

/* A delivery to a host session, waiting for the host layer to hand it to
 * the application (after the fan-out that made it). */
typedef struct mqttb_host_dlv {
  mqttb_session *s; /* NULL once the session was deleted */
  mqttb_msg *msg;   /* a reference */
  uint8_t qos;
  bool retain;
  uint8_t depth; /* how deep in host deliveries it was published */
} mqttb_host_dlv;

/* The set of all sessions of a broker. */
typedef struct mqttb_sessions {
  mqttb_ctx *ctx;
  mqttb_tx_hub *hub;
  mqttb_timers *timers;
  mqttb_store *store;          /* where durable changes are recorded; may be NULL */
  mqttb_trie subs;             /* subscriptions by filter */
  mqttb_map by_id;             /* client id -> session */
  mqttb_map shares;            /* "name/filter" -> mqttb_share */
  uint64_t queued_bytes_total; /* across all sessions */
  /* Deliveries to host sessions, a ring; host_depth is given to the ones
   * pushed now (the host layer sets it). */
  mqttb_host_dlv *hq;
  uint32_t hq_head, hq_n, hq_cap;
  uint8_t host_depth;
} mqttb_sessions;

/* The fields are this module's; the router reads match (its scratch) and
 * client_id. */
struct mqttb_session {
  mqttb_sessions *set;
  mqttb_tx *tx;        /* the connection's sending half; NULL while offline */
  uint64_t expires_at; /* while offline; UINT64_MAX: never */
  uint64_t store_id;   /* its id in the store while it is recorded; 0: not */
  /* A will waiting for its Will Delay Interval (MQTT 5). */
  mqttb_msg *will;
  uint64_t will_at;
  /* The delayed will its store record refers to (a reference). */
  mqttb_msg *store_will;
  mqttb_timer timer;
  mqttb_sub **subs;
  /* Filter -> subscription, once the session holds enough of them for a
   * scan to cost more than a lookup; NULL below that (or after running out
   * of memory for it: it is only an index). */
  mqttb_map *sub_index;
  /* Outbound QoS 1/2 messages sent and not yet fully acknowledged (the
   * window is allocated on first use). */
  mqttb_window *win;
  /* Messages waiting for an in-flight slot (or for the client to return):
   * a ring. */
  mqttb_dlv *queue;
  uint64_t queued_bytes;
  /* Inbound QoS 2 packet ids that got PUBREC and await PUBREL (allocated on
   * first use). */
  mqttb_pidmap *in_qos2;
  mqttb_match match;
  mqttb_retq *retained; /* pending retained messages; NULL when none */
  uint32_t nsubs, subs_cap;
  uint32_t qhead, qcount, qcap;
  /* Seconds the session outlives its connection: 0 for MQTT 3.x clean
   * session, UINT32_MAX (never expires) for MQTT 3.x persistent sessions. */
  uint32_t expiry_interval;
  uint16_t id_len;
  bool offline; /* detached and kept: counted in clients_disconnected */
  /* A host session (the application's subscriber, host.h): always online,
   * not in the set by client id, never limited by max_subscriptions; its
   * deliveries go to the set's host queue. The owner's pointer. */
  void *host;
  char client_id[]; /* NUL-terminated */
};

/* What a session's life asks of the layer above: a will to publish now
 * (a reference the caller owns), and whether the session must end now
 * (after the will is published). */
typedef struct mqttb_session_due {
  mqttb_msg *will;
  bool end;
} mqttb_session_due;

int mqttb_sessions_init(mqttb_sessions *set, mqttb_ctx *ctx, mqttb_tx_hub *hub,
                        mqttb_timers *timers);
/* Delete every session, then the set. */
void mqttb_sessions_free(mqttb_sessions *set);
mqttb_session *mqttb_sessions_find(const mqttb_sessions *set, const char *id, size_t len);

mqttb_session *mqttb_session_new(mqttb_sessions *set, const char *client_id, size_t len);
/* A host session for owner (see mqttb_session.host). */
mqttb_session *mqttb_session_new_host(mqttb_sessions *set, void *owner);
/* Take the oldest delivery to a host session; false when none waits. */
bool mqttb_sessions_host_pop(mqttb_sessions *set, mqttb_host_dlv *out);
/* Free a session and everything it holds (no will, no re-routing: see
 * mqttb_router_end_session). */
void mqttb_session_del(mqttb_session *s);

/* A client with this session's id connected again: no expiry, no longer
 * counted as disconnected. Its delayed will stays for the caller to decide
 * (mqttb_session_drop_will, or end the session). */
void mqttb_session_reclaim(mqttb_session *s);
/* Discard a delayed will: the client came back in time [MQTT-3.1.3-9]. */
void mqttb_session_drop_will(mqttb_session *s);
/* Take the delayed will (a reference), if any. */
mqttb_msg *mqttb_session_take_will(mqttb_session *s);
/* Take the delayed will if its delay has passed at now. */
mqttb_msg *mqttb_session_take_due_will(mqttb_session *s, uint64_t now);
/* Whether the session's expiry has passed at now (it is gone). */
static inline bool mqttb_session_expired(const mqttb_session *s, uint64_t now) {
  return s->expires_at <= now;
}
/* Connect it to the sending half of a connection. */
void mqttb_session_attach(mqttb_session *s, mqttb_tx *tx);
/* After a reconnect: re-send in-flight PUBLISH (DUP) and PUBREL, then pump. */
void mqttb_session_resume(mqttb_session *s);
/* The client left with this will (may be NULL; the session takes its own
 * reference) and MQTT 5 Will Delay Interval: keep the session (expiry,
 * delayed will) or say it ends. */
mqttb_session_due mqttb_session_detach(mqttb_session *s, mqttb_msg *will, uint32_t will_delay);
/* The session's timer fired at now. */
mqttb_session_due mqttb_session_on_timer(mqttb_session *s, uint64_t now);
/* The session from its timer handle. */
mqttb_session *mqttb_session_of_timer(mqttb_timer *t);

/* Record the session as it is now (store.h): a persistent session (expiry
 * interval above 0) is written, with its expiry and delayed will while
 * offline; one that stopped being persistent is ended in the store. */
void mqttb_session_record(mqttb_session *s);
/* Store record encoders (store.h; the caller emits): the session, one of
 * its subscriptions, one of its deliveries (pid 0: queued). */
void mqttb_session_encode(const mqttb_session *s, mqttb_store *st);
void mqttb_session_encode_sub(const mqttb_session *s, const mqttb_sub *sub, mqttb_store *st);
void mqttb_session_encode_dlv(const mqttb_session *s, const mqttb_dlv *d, uint16_t pid,
                              uint8_t state, mqttb_store *st);
/* A restored session starts its life offline: expiry counting (from now
 * when its client was online as the records were written), its timer set
 * for expiry and delayed will. */
void mqttb_session_restored(mqttb_session *s, bool was_online);
/* Put a restored delivery back (takes d): in flight with pid in state, or
 * at the end of the queue when pid is 0. 0, MQTTB_ERR_NOMEM or
 * MQTTB_ERR_INVALID_ARGUMENT (pid already in flight). */
int mqttb_session_put_back(mqttb_session *s, mqttb_dlv *d, uint16_t pid, uint8_t state);

/* Whether its client is online and reachable. */
bool mqttb_session_online(const mqttb_session *s);

/* Add or replace a subscription; *existed tells whether it replaced one.
 * A filter "$share/name/f" joins the shared group name on f. 0,
 * MQTTB_ERR_INVALID_ARGUMENT (a $share filter without a proper name or
 * filter), MQTTB_ERR_QUOTA (max_subscriptions) or MQTTB_ERR_NOMEM. */
int mqttb_session_subscribe(mqttb_session *s, const char *filter, size_t len, uint8_t qos,
                            uint8_t opts, uint32_t sub_id, bool *existed);
/* Returns true when a subscription was removed. */
bool mqttb_session_unsubscribe(mqttb_session *s, const char *filter, size_t len);
void mqttb_session_unsubscribe_all(mqttb_session *s);
/* Split "$share/name/filter": true when it is a shared filter (name and
 * filter set); false when it is not shared. *valid is false for a $share
 * filter without a proper name or filter. */
bool mqttb_share_parse(const char *f, size_t len, mqttb_slice *name, mqttb_slice *filter,
                       bool *valid);
void mqttb_share_unref(mqttb_sessions *set, mqttb_share *sh);

/* Deliver msg at the given QoS with the given retain flag: send now, queue,
 * or drop (counted). ids (copied) are the matching subscription
 * identifiers; share the group it came through. */
void mqttb_session_deliver(mqttb_session *s, mqttb_msg *msg, uint8_t qos, bool retain,
                           mqttb_share *share, const uint32_t *ids, size_t nids);
/* Call fn for every delivery still owed through a shared group: queued, or
 * in flight before PUBREC. */
void mqttb_session_each_shared(mqttb_session *s, void (*fn)(const mqttb_dlv *d, void *ctx),
                               void *ctx);

/* Pending retained messages (see mqttb_retq). push takes a reference; 0
 * or MQTTB_ERR_NOMEM. front is NULL when none is pending; pop drops the
 * front's reference. */
int mqttb_session_retained_push(mqttb_session *s, mqttb_msg *msg, uint8_t qos, uint32_t sub_id);
const mqttb_ret_item *mqttb_session_retained_front(const mqttb_session *s);
void mqttb_session_retained_pop(mqttb_session *s);
/* Whether a delivery at qos can go to the client now without waiting:
 * online; for QoS 0 its output below half of max_output_bytes (or 256 KiB
 * without a limit); for QoS 1 and 2 nothing queued and a free in-flight
 * slot. */
bool mqttb_session_has_room(const mqttb_session *s, uint8_t qos);

/* Outbound acknowledgements from the client. An unknown packet id is
 * ignored (0); the wrong acknowledgement for a message in flight (PUBACK
 * for QoS 2, PUBREC for QoS 1, PUBCOMP for QoS 1 or before PUBREC) is
 * MQTTB_ERR_PROTOCOL. */
int mqttb_session_on_puback(mqttb_session *s, uint16_t pid);
/* PUBREC: *rel tells whether a PUBREL is due, with *rel_reason (0, or 0x92
 * for an unknown packet id); none when the client refused the message
 * (MQTT 5 reason >= 0x80) and the flow ends. */
int mqttb_session_on_pubrec(mqttb_session *s, uint16_t pid, uint8_t reason, bool *rel,
                            uint8_t *rel_reason);
int mqttb_session_on_pubcomp(mqttb_session *s, uint16_t pid);

/* Inbound QoS 2 packet ids. */
bool mqttb_session_qos2_has(const mqttb_session *s, uint16_t pid);
int mqttb_session_qos2_add(mqttb_session *s, uint16_t pid);
/* The inbound QoS 2 message msg (packet id pid, added before it was routed)
 * has been delivered: record the packet id, which also commits what was
 * recorded of msg's deliveries. */
void mqttb_session_qos2_commit(mqttb_session *s, uint16_t pid, mqttb_msg *msg);
/* False when pid was not there. */
bool mqttb_session_qos2_del(mqttb_session *s, uint16_t pid);
uint32_t mqttb_session_qos2_count(const mqttb_session *s);

#endif /* MQTTB_SESSION_H */
