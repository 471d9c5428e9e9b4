/* SPDX-License-Identifier: MIT */
/* The broker's internal types, shared by the modules above the codec:
 * msg, trie, session, conn, broker. */
#ifndef MQTTB_INTERNAL_H
#define MQTTB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mqttb/mqttb.h>

#include "codec.h"
#include "map.h"
#include "mem.h"

typedef struct mqttb_session mqttb_session;

/* ---- msg: one published message, shared by every queue that holds it ----
 *
 * data holds [2-byte topic length][topic][payload], so the tail of a
 * PUBLISH frame for MQTT 3.x QoS 0 is one contiguous slice of it. */
typedef struct mqttb_msg {
  uint32_t refs;
  uint8_t qos;
  bool retain;
  uint16_t topic_len;
  uint32_t payload_len;
  /* MQTT 5 properties forwarded to MQTT 5 subscribers as they came
   * (payload format, content type, response topic, correlation data, user
   * properties), stored encoded after the payload. */
  uint32_t props_len;
  /* Message Expiry: when the message expires (UINT64_MAX: never). A will
   * keeps its interval until it is published. */
  uint64_t expiry_at;
  uint32_t expiry_interval;
  uint8_t *data;
} mqttb_msg;

#define MQTTB_MSG_TOPIC(m) ((const char *)(m)->data + 2)
#define MQTTB_MSG_PAYLOAD(m) ((m)->data + 2 + (m)->topic_len)
#define MQTTB_MSG_PROPS(m) (MQTTB_MSG_PAYLOAD(m) + (m)->payload_len)

/* props: an MQTT 5 property block to keep (filtered by the caller), may be
 * empty. */
mqttb_msg *mqttb_msg_new(const mqttb_mem *mem, const uint8_t *topic, size_t topic_len,
                         const uint8_t *payload, size_t payload_len, const uint8_t *props,
                         size_t props_len, uint8_t qos, bool retain);
static inline bool mqttb_msg_expired(const mqttb_msg *m, uint64_t now) {
  return m->expiry_at <= now;
}
static inline mqttb_msg *mqttb_msg_ref(mqttb_msg *m) {
  m->refs++;
  return m;
}
void mqttb_msg_unref(const mqttb_mem *mem, mqttb_msg *m);

/* ---- trie: subscriptions and retained messages by topic level ---- */
typedef struct mqttb_sub mqttb_sub;

typedef struct mqttb_share mqttb_share;

typedef struct mqttb_tnode {
  struct mqttb_tnode *parent;
  mqttb_map children;   /* level -> mqttb_tnode */
  mqttb_sub **subs;     /* subscriptions whose filter ends here */
  mqttb_share **shares; /* shared subscription groups whose filter ends here */
  mqttb_msg *retained;  /* retained message whose topic ends here */
  uint32_t nsubs, subs_cap;
  uint32_t nshares, shares_cap;
  uint32_t level_len;
  char level[]; /* this node's level, not NUL-terminated */
} mqttb_tnode;

typedef struct mqttb_trie {
  mqttb_tnode *root;
} mqttb_trie;

/* Subscription options (the MQTT 5 options byte layout). */
#define MQTTB_SUB_NO_LOCAL 0x04u
#define MQTTB_SUB_RETAIN_AS_PUBLISHED 0x08u

/* One subscription of one session to one filter. */
struct mqttb_sub {
  mqttb_session *session;
  mqttb_tnode *node;
  mqttb_share *share; /* the group, for a shared subscription */
  size_t node_idx;    /* position in node->subs or share->members */
  uint8_t qos;        /* granted QoS */
  uint8_t opts;       /* MQTTB_SUB_* */
  uint32_t sub_id;    /* MQTT 5 Subscription Identifier, 0 for none */
  uint16_t filter_len;
  char filter[]; /* as subscribed ($share/... included), NUL-terminated */
};

/* A shared subscription group: $share/name/filter. One member gets each
 * message, round robin. Deliveries reference the group so that messages of
 * a member whose session ends go to another member. */
struct mqttb_share {
  uint32_t refs; /* the node's reference + one per delivery */
  mqttb_tnode *node;
  mqttb_sub **members;
  size_t nmembers, members_cap;
  size_t next;
  uint16_t name_len;
  char name[];
};

/* ---- session: what outlives a connection ---- */
enum { MQTTB_INF_PUBACK = 1, MQTTB_INF_PUBREC = 2, MQTTB_INF_PUBCOMP = 3 };

/* One message on its way to one session. */
typedef struct mqttb_dlv {
  mqttb_msg *msg;
  mqttb_share *share; /* set when delivered through a shared subscription */
  uint32_t *ids;      /* MQTT 5 Subscription Identifiers (owned) */
  uint16_t nids;
  uint8_t qos;
  bool retain;
} mqttb_dlv;

typedef struct mqttb_inflight {
  mqttb_dlv d;
  uint16_t pid;
  uint8_t state; /* MQTTB_INF_*: what the broker waits for */
} mqttb_inflight;

typedef mqttb_dlv mqttb_qitem;

struct mqttb_session {
  mqttb_broker *broker;
  struct mqttb_conn *conn; /* NULL while the client is offline */
  uint64_t expires_at;     /* while offline; UINT64_MAX: never */
  /* A will waiting for its Will Delay Interval (MQTT 5). */
  mqttb_msg *will;
  uint64_t will_at;
  size_t timer_idx;
  /* Subscriptions. */
  mqttb_sub **subs;
  /* Outbound QoS 1/2 messages sent and not yet fully acknowledged, oldest
   * first. */
  mqttb_inflight *inflight;
  /* Messages waiting for an in-flight slot (or for the client to return):
   * a ring. */
  mqttb_qitem *queue;
  uint64_t queued_bytes;
  /* Inbound QoS 2 packet ids that got PUBREC and await PUBREL. */
  uint16_t *in_qos2;
  /* Fan-out de-duplication: one copy per session per publish, at the
   * highest QoS, with every matching subscription identifier. */
  uint64_t match_gen;
  uint32_t *match_ids;
  uint32_t nsubs, subs_cap;
  uint32_t ninflight, inflight_cap;
  uint32_t qhead, qcount, qcap;
  uint32_t nin_qos2, in_qos2_cap;
  uint32_t nmatch_ids, match_ids_cap;
  /* Seconds the session outlives its connection: 0 for MQTT 3.x clean
   * session, UINT32_MAX (never expires) for MQTT 3.x persistent sessions. */
  uint32_t expiry_interval;
  uint16_t next_pid;
  uint16_t id_len;
  uint8_t match_qos;
  bool match_rap;
  char client_id[]; /* NUL-terminated */
};

/* ---- conn ---- */
enum mqttb_conn_state {
  MQTTB_CONN_AWAIT_CONNECT = 0,
  MQTTB_CONN_CONNECTED,
  MQTTB_CONN_CLOSING, /* the broker closed it; output may still drain */
  MQTTB_CONN_DEAD     /* transport gone */
};

/* A piece of pending output: bytes of a shared message, or of c->wbuf when
 * msg is NULL. */
typedef struct mqttb_oseg {
  mqttb_msg *msg;
  size_t off;
  size_t len;
} mqttb_oseg;

/* Connection state only MQTT 5 topic aliases, enhanced authentication and
 * redirection need: kept out of every connection's footprint. */
struct mqttb_conn_ext {
  /* Inbound topic aliases: alias -> topic (owned), 1..topic_alias_maximum. */
  char **alias_in;
  uint16_t *alias_in_len;
  /* Outbound topic aliases: topic -> alias. Keys are alias_out_topic[i]. */
  mqttb_map alias_out;
  char **alias_out_topic;
  uint16_t nalias_out;
  /* MQTT 5 enhanced authentication. */
  char *auth_method;
  size_t auth_method_len;
  uint8_t *auth_data;
  size_t auth_data_len;
  int auth_step;
  bool reauth;
  uint8_t *pending_connect; /* CONNECT body held while authenticating */
  size_t pending_connect_len;
  char *server_reference;
};

struct mqttb_conn {
  mqttb_broker *broker;
  void *user_data;
  struct mqttb_conn *prev, *next; /* the broker's list */
  enum mqttb_conn_state state;
  int close_reason;
  bool close_notified;
  int doomed_reason; /* non-zero once doomed */
  uint8_t level;
  bool clean;
  uint16_t keepalive;
  /* MQTT 5 limits the client announced. */
  uint16_t client_receive_max; /* outbound in-flight window */
  uint32_t client_max_packet;  /* largest packet it accepts */
  uint16_t client_alias_max;   /* aliases the broker may use */
  bool request_response_info;
  /* MQTT 5 reason for the DISCONNECT sent when the broker closes; 0 means
   * derive it from the close reason. */
  uint8_t disconnect_reason;
  bool disconnect_reason_set; /* an explicit reason, 0 included */
  /* What few connections need, allocated on first use. */
  struct mqttb_conn_ext *x;
  char *client_id;
  mqttb_session *session;
  mqttb_msg *will;
  uint32_t will_delay; /* MQTT 5 Will Delay Interval, seconds */
  uint64_t created;
  uint64_t last_rx;
  /* Timer heap slot (SIZE_MAX when not in the heap). */
  size_t timer_idx;
  /* A partial incoming packet. */
  uint8_t *rbuf;
  size_t rlen, rcap;
  /* Output: a ring of segments and the byte buffer small packets use. */
  mqttb_oseg *seg;
  size_t seg_head, seg_count, seg_cap;
  uint8_t *wbuf;
  size_t wlen, wcap;
  size_t out_pending;
  uint64_t out_since; /* when output last went from empty, or last drained */
};

/* ---- broker ---- */
/* A timer belongs to a connection (keep-alive, connect timeout) or to an
 * offline session (expiry, will delay). */
typedef struct mqttb_timer {
  uint64_t deadline;
  void *obj;
  bool session;
} mqttb_timer;

struct mqttb_broker {
  mqttb_mem mem;
  mqttb_settings settings;
  char auto_id_prefix[33];
  mqttb_callbacks cb;
  void *user_data;
  mqttb_map sessions; /* client id -> session */
  mqttb_map shares;   /* "name/filter" -> mqttb_share */
  char *response_information;
  /* The time of the public call in progress (for message expiry). */
  uint64_t now;
  mqttb_trie subs;
  mqttb_trie retained;
  struct mqttb_conn *conns; /* all connection objects */
  mqttb_timer *timers;      /* min-heap by deadline */
  size_t ntimers, timers_cap;
  mqttb_stats stats;
  uint64_t queued_bytes_total; /* across all sessions */
  uint64_t match_gen;
  uint64_t auto_id_counter;
  /* Scratch space reused by every fan-out and trie walk. */
  mqttb_session **match;
  size_t nmatch, match_cap;
  mqttb_sub **share_match; /* members chosen from shared groups */
  size_t nshare_match, share_match_cap;
  mqttb_session *publisher; /* for No Local during a fan-out */
  struct mqttb_walk {
    void *node;
    size_t pos;
  } * walk;
  size_t walk_cap;
  /* $SYS: NULL when sys_interval_ms is 0. */
  struct mqttb_sys *sys;
  uint64_t sys_next; /* UINT64_MAX when off */
  uint64_t start_ms;
  /* Connections whose failure was found in the middle of a fan-out; they
   * are closed once the fan-out is over. */
  struct mqttb_conn **doomed;
  size_t ndoomed, doomed_cap;
};

/* log.c */
void mqttb_log(mqttb_broker *b, mqttb_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* trie.c */
int mqttb_trie_init(mqttb_trie *t, const mqttb_mem *mem);
void mqttb_trie_free(mqttb_trie *t, const mqttb_mem *mem);
/* Find or create the node for a topic or filter. NULL on out-of-memory. */
mqttb_tnode *mqttb_trie_insert(mqttb_trie *t, const mqttb_mem *mem, const char *topic, size_t len);
/* Find the node for a topic or filter, or NULL. */
mqttb_tnode *mqttb_trie_find(const mqttb_trie *t, const char *topic, size_t len);
/* Free node and its now-empty ancestors when they hold nothing. */
void mqttb_trie_prune(mqttb_trie *t, const mqttb_mem *mem, mqttb_tnode *node);
/* Call fn for every subscription whose filter matches the topic name; for
 * shared groups, call share_fn once per matching group. */
typedef void (*mqttb_sub_fn)(mqttb_sub *sub, void *ctx);
typedef void (*mqttb_share_fn)(mqttb_share *share, void *ctx);
int mqttb_trie_match_subs(mqttb_broker *b, const mqttb_trie *t, const char *topic, size_t len,
                          mqttb_sub_fn fn, mqttb_share_fn share_fn, void *ctx);
/* Call fn for every retained message whose topic matches the filter. */
typedef void (*mqttb_retained_fn)(mqttb_msg *msg, void *ctx);
int mqttb_trie_match_retained(mqttb_broker *b, const mqttb_trie *t, const char *filter, size_t len,
                              mqttb_retained_fn fn, void *ctx);
/* Whether a filter matches a topic name (the same rules, without a trie). */
bool mqttb_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen);

/* session.c */
mqttb_session *mqttb_session_new(mqttb_broker *b, const char *client_id, size_t len);
void mqttb_session_del(mqttb_session *s);
/* mqttb_session_subscribe: the session holds max_subscriptions already. */
#define MQTTB_SUB_QUOTA 1
/* Add or replace a subscription; *existed tells whether it replaced one.
 * A filter "$share/name/f" joins the shared group name on f. */
int mqttb_session_subscribe(mqttb_session *s, const char *filter, size_t len, uint8_t qos,
                            uint8_t opts, uint32_t sub_id, bool *existed);
/* Split "$share/name/filter": true when it is a shared filter (name and
 * filter set); false when it is not shared. *valid is false for a $share
 * filter without a proper name or filter. */
bool mqttb_share_parse(const char *f, size_t len, mqttb_slice *name, mqttb_slice *filter,
                       bool *valid);
void mqttb_share_unref(mqttb_broker *b, mqttb_share *sh);
/* Returns true when a subscription was removed. */
bool mqttb_session_unsubscribe(mqttb_session *s, const char *filter, size_t len);
/* Deliver msg at the given QoS with the given retain flag: send now, queue,
 * or drop (counted). ids (copied) are the matching subscription
 * identifiers; share the group it came through. */
void mqttb_session_deliver(mqttb_session *s, mqttb_msg *msg, uint8_t qos, bool retain,
                           mqttb_share *share, const uint32_t *ids, size_t nids);
/* The session's client left: keep it (expiry, delayed will) or end it. */
void mqttb_session_detach(mqttb_session *s, mqttb_msg *will, uint32_t will_delay);
/* End a session now: publish a pending will, hand shared deliveries to
 * other members, free it. */
void mqttb_session_end(mqttb_session *s);
/* A session timer fired. */
void mqttb_session_on_timer(mqttb_session *s, uint64_t now);
/* The outbound in-flight window: the setting, capped by the client's
 * Receive Maximum. */
uint32_t mqttb_session_max_inflight(const mqttb_session *s);
/* Pick a member of a shared group for a message, round robin, preferring
 * connected clients; never `not`. NULL when there is none. */
mqttb_sub *mqttb_share_pick(mqttb_share *sh, const mqttb_session * not );
/* Send queued messages while in-flight slots are free. */
void mqttb_session_pump(mqttb_session *s);
/* After a reconnect: re-send in-flight PUBLISH (DUP) and PUBREL, then pump. */
void mqttb_session_resume(mqttb_session *s);
/* Outbound acknowledgements from the client. */
void mqttb_session_on_puback(mqttb_session *s, uint16_t pid);
/* Returns the reason code for the PUBREL to send (0, or 0x92 for an unknown
 * packet id), or -1 when no PUBREL is due: a reason >= 0x80 (MQTT 5) ends
 * the flow. */
int mqttb_session_on_pubrec(mqttb_session *s, uint16_t pid, uint8_t reason);
void mqttb_session_on_pubcomp(mqttb_session *s, uint16_t pid);
/* Inbound QoS 2 packet ids. */
bool mqttb_session_qos2_has(const mqttb_session *s, uint16_t pid);
int mqttb_session_qos2_add(mqttb_session *s, uint16_t pid);
void mqttb_session_qos2_del(mqttb_session *s, uint16_t pid);

/* conn.c */
/* Queue an encoded PUBLISH of a delivery. pid 0 for QoS 0. Returns 0,
 * MQTTB_ERR_PACKET_TOO_LARGE when the client's Maximum Packet Size forbids
 * it (nothing queued; the caller drops it), or MQTTB_ERR_NOMEM (the caller
 * dooms the connection). */
int mqttb_conn_send_publish(struct mqttb_conn *c, const mqttb_dlv *d, bool dup, uint16_t pid);
/* PUBACK/PUBREC/PUBREL/PUBCOMP/UNSUBACK; reason is sent to MQTT 5 clients
 * only. */
int mqttb_conn_send_ack(struct mqttb_conn *c, uint8_t type, uint16_t pid, uint8_t reason);
/* Close the connection now for reason: publish the will unless the client
 * disconnected, detach the session, notify the embedder. */
void mqttb_conn_close(struct mqttb_conn *c, int reason);
/* Close later, once the current fan-out is over. */
void mqttb_conn_doom(struct mqttb_conn *c, int reason);
/* mqttb_conn_del at the broker's current time. */
void mqttb_conn_free(struct mqttb_conn *c);
/* A timer of this connection fired: close it if its deadline passed, else
 * re-arm. */
int mqttb_conn_on_timer(struct mqttb_conn *c, uint64_t now);

/* sys.c */
int mqttb_sys_init(mqttb_broker *b);
void mqttb_sys_free(mqttb_broker *b);
/* Publish the tree (changed values only) and schedule the next update. */
void mqttb_sys_update(mqttb_broker *b, uint64_t now);
/* ISO 8601 UTC, "2026-11-25T15:08:18Z". */
void mqttb_sys_format_time(int64_t unix_seconds, char *buf, size_t len);

/* broker.c */
/* Store or clear (empty payload) the retained message of msg's topic. */
void mqttb_retain_store(mqttb_broker *b, mqttb_msg *msg);
/* Drop retained messages whose expiry passed (topics not starting with
 * '$'); run with each $SYS update. */
void mqttb_retain_sweep(mqttb_broker *b);
/* Publish a message from a client (or a will): retained store and fan-out.
 * publisher (may be NULL) is excluded by No Local subscriptions. Returns
 * the number of sessions it was delivered to. */
size_t mqttb_broker_publish(mqttb_broker *b, mqttb_msg *msg, mqttb_session *publisher);
/* Close every doomed connection. */
void mqttb_broker_reap(mqttb_broker *b);
int mqttb_timer_set(mqttb_broker *b, void *obj, bool session, uint64_t deadline);
void mqttb_timer_remove(mqttb_broker *b, void *obj, bool session);

#endif
