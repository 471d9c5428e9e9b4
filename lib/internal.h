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
  uint8_t *data;
} mqttb_msg;

#define MQTTB_MSG_TOPIC(m) ((const char *)(m)->data + 2)
#define MQTTB_MSG_PAYLOAD(m) ((m)->data + 2 + (m)->topic_len)

mqttb_msg *mqttb_msg_new(const mqttb_mem *mem, const uint8_t *topic, size_t topic_len,
                         const uint8_t *payload, size_t payload_len, uint8_t qos, bool retain);
static inline mqttb_msg *mqttb_msg_ref(mqttb_msg *m) {
  m->refs++;
  return m;
}
void mqttb_msg_unref(const mqttb_mem *mem, mqttb_msg *m);

/* ---- trie: subscriptions and retained messages by topic level ---- */
typedef struct mqttb_sub mqttb_sub;

typedef struct mqttb_tnode {
  struct mqttb_tnode *parent;
  mqttb_map children;  /* level -> mqttb_tnode */
  mqttb_sub **subs;    /* subscriptions whose filter ends here */
  size_t nsubs, subs_cap;
  mqttb_msg *retained; /* retained message whose topic ends here */
  uint32_t level_len;
  char level[];        /* this node's level, not NUL-terminated */
} mqttb_tnode;

typedef struct mqttb_trie {
  mqttb_tnode *root;
} mqttb_trie;

/* One subscription of one session to one filter. */
struct mqttb_sub {
  mqttb_session *session;
  mqttb_tnode *node;
  size_t node_idx; /* position in node->subs */
  uint8_t qos;     /* granted QoS */
  uint16_t filter_len;
  char filter[];   /* NUL-terminated */
};

/* ---- session: what outlives a connection ---- */
enum { MQTTB_INF_PUBACK = 1, MQTTB_INF_PUBREC = 2, MQTTB_INF_PUBCOMP = 3 };

typedef struct mqttb_inflight {
  mqttb_msg *msg;
  uint16_t pid;
  uint8_t qos;
  uint8_t state; /* MQTTB_INF_*: what the broker waits for */
  bool retain;
} mqttb_inflight;

typedef struct mqttb_qitem {
  mqttb_msg *msg;
  uint8_t qos;
  bool retain;
} mqttb_qitem;

struct mqttb_session {
  mqttb_broker *broker;
  struct mqttb_conn *conn; /* NULL while the client is offline */
  bool clean;
  /* Subscriptions. */
  mqttb_sub **subs;
  size_t nsubs, subs_cap;
  /* Outbound QoS 1/2 messages sent and not yet fully acknowledged, oldest
   * first. */
  mqttb_inflight *inflight;
  size_t ninflight, inflight_cap;
  /* Messages waiting for an in-flight slot (or for the client to return):
   * a ring. */
  mqttb_qitem *queue;
  size_t qhead, qcount, qcap;
  uint64_t queued_bytes;
  /* Inbound QoS 2 packet ids that got PUBREC and await PUBREL. */
  uint16_t *in_qos2;
  size_t nin_qos2, in_qos2_cap;
  uint16_t next_pid;
  /* Fan-out de-duplication: one copy per session per publish. */
  uint64_t match_gen;
  uint8_t match_qos;
  size_t id_len;
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
  char *client_id;
  mqttb_session *session;
  mqttb_msg *will;
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
};

/* ---- broker ---- */
typedef struct mqttb_timer {
  uint64_t deadline;
  struct mqttb_conn *conn;
} mqttb_timer;

struct mqttb_broker {
  mqttb_mem mem;
  mqttb_settings settings;
  char auto_id_prefix[33];
  mqttb_callbacks cb;
  void *user_data;
  mqttb_map sessions; /* client id -> session */
  mqttb_trie subs;
  mqttb_trie retained;
  struct mqttb_conn *conns; /* all connection objects */
  mqttb_timer *timers;      /* min-heap by deadline */
  size_t ntimers, timers_cap;
  mqttb_stats stats;
  uint64_t match_gen;
  uint64_t auto_id_counter;
  /* Scratch space reused by every fan-out and trie walk. */
  mqttb_session **match;
  size_t nmatch, match_cap;
  struct mqttb_walk {
    void *node;
    size_t pos;
  } *walk;
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
mqttb_tnode *mqttb_trie_insert(mqttb_trie *t, const mqttb_mem *mem, const char *topic,
                               size_t len);
/* Find the node for a topic or filter, or NULL. */
mqttb_tnode *mqttb_trie_find(const mqttb_trie *t, const char *topic, size_t len);
/* Free node and its now-empty ancestors when they hold nothing. */
void mqttb_trie_prune(mqttb_trie *t, const mqttb_mem *mem, mqttb_tnode *node);
/* Call fn for every subscription whose filter matches the topic name. */
typedef void (*mqttb_sub_fn)(mqttb_sub *sub, void *ctx);
int mqttb_trie_match_subs(mqttb_broker *b, const mqttb_trie *t, const char *topic, size_t len,
                          mqttb_sub_fn fn, void *ctx);
/* Call fn for every retained message whose topic matches the filter. */
typedef void (*mqttb_retained_fn)(mqttb_msg *msg, void *ctx);
int mqttb_trie_match_retained(mqttb_broker *b, const mqttb_trie *t, const char *filter,
                              size_t len, mqttb_retained_fn fn, void *ctx);
/* Whether a filter matches a topic name (the same rules, without a trie). */
bool mqttb_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen);

/* session.c */
mqttb_session *mqttb_session_new(mqttb_broker *b, const char *client_id, size_t len);
void mqttb_session_del(mqttb_session *s);
/* Add or replace a subscription. */
int mqttb_session_subscribe(mqttb_session *s, const char *filter, size_t len, uint8_t qos);
/* Returns true when a subscription was removed. */
bool mqttb_session_unsubscribe(mqttb_session *s, const char *filter, size_t len);
/* Deliver msg at the given QoS with the given retain flag: send now, queue,
 * or drop (counted). */
void mqttb_session_deliver(mqttb_session *s, mqttb_msg *msg, uint8_t qos, bool retain);
/* Send queued messages while in-flight slots are free. */
void mqttb_session_pump(mqttb_session *s);
/* After a reconnect: re-send in-flight PUBLISH (DUP) and PUBREL, then pump. */
void mqttb_session_resume(mqttb_session *s);
/* Outbound acknowledgements from the client. */
void mqttb_session_on_puback(mqttb_session *s, uint16_t pid);
void mqttb_session_on_pubrec(mqttb_session *s, uint16_t pid);
void mqttb_session_on_pubcomp(mqttb_session *s, uint16_t pid);
/* Inbound QoS 2 packet ids. */
bool mqttb_session_qos2_has(const mqttb_session *s, uint16_t pid);
int mqttb_session_qos2_add(mqttb_session *s, uint16_t pid);
void mqttb_session_qos2_del(mqttb_session *s, uint16_t pid);

/* conn.c */
/* Queue an encoded PUBLISH of msg. pid 0 for QoS 0. Returns 0 or an error
 * (the caller dooms the connection). */
int mqttb_conn_send_publish(struct mqttb_conn *c, mqttb_msg *msg, uint8_t qos, bool retain,
                            bool dup, uint16_t pid);
int mqttb_conn_send_ack(struct mqttb_conn *c, uint8_t type, uint16_t pid);
/* Close the connection now for reason: publish the will unless the client
 * disconnected, detach the session, notify the embedder. */
void mqttb_conn_close(struct mqttb_conn *c, int reason);
/* Close later, once the current fan-out is over. */
void mqttb_conn_doom(struct mqttb_conn *c, int reason);
/* A timer of this connection fired: close it if its deadline passed, else
 * re-arm. */
int mqttb_conn_on_timer(struct mqttb_conn *c, uint64_t now);

/* sys.c */
int mqttb_sys_init(mqttb_broker *b);
void mqttb_sys_free(mqttb_broker *b);
/* Publish the tree (changed values only) and schedule the next update. */
void mqttb_sys_update(mqttb_broker *b, uint64_t now);
/* Whether a topic name lies in the $SYS tree. */
bool mqttb_sys_topic(const uint8_t *topic, size_t len);
/* ISO 8601 UTC, "2026-11-25T15:08:18Z". */
void mqttb_sys_format_time(int64_t unix_seconds, char *buf, size_t len);

/* broker.c */
/* Store or clear (empty payload) the retained message of msg's topic. */
void mqttb_retain_store(mqttb_broker *b, mqttb_msg *msg);
/* Publish a message from a client (or a will): retained store and fan-out. */
void mqttb_broker_publish(mqttb_broker *b, mqttb_msg *msg);
/* Close every doomed connection. */
void mqttb_broker_reap(mqttb_broker *b);
int mqttb_timer_set(mqttb_broker *b, struct mqttb_conn *c, uint64_t deadline);
void mqttb_timer_remove(mqttb_broker *b, struct mqttb_conn *c);

#endif
