/* SPDX-License-Identifier: MIT */
/*
 * store: durable state as records (docs/persistence.md). The record format
 * (a type, a format version, then tagged fields), the encoder that the
 * session and router layers call at each durable change, which hands every
 * record to the embedder's store callback with its sequence number, the
 * decoder that restore reads records with, the identifiers records refer
 * to each other by, and the conversion of the broker's times to the wall
 * clock times records carry.
 *
 * A message is written once however many records refer to it: its
 * store_refs counts the deliveries and the retained slot that are
 * recorded; the first writes the message, the last one gone deletes it.
 */
#ifndef MQTTB_STORE_H
#define MQTTB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "msg.h"

/* Record types. Numbers are part of the format: never reused. */
enum {
  MQTTB_REC_MSG = 1,          /* a message that records below refer to */
  MQTTB_REC_MSG_DEL = 2,      /* nothing refers to it any more */
  MQTTB_REC_SESSION = 3,      /* a persistent session, created or changed */
  MQTTB_REC_SESSION_END = 4,  /* it ended, with everything it held */
  MQTTB_REC_SUB = 5,          /* a subscription added or replaced */
  MQTTB_REC_UNSUB = 6,        /* a subscription removed */
  MQTTB_REC_DLV = 7,          /* a message accepted into a session's queue or window */
  MQTTB_REC_DLV_SENT = 8,     /* it went in flight, or its QoS 2 flow moved on */
  MQTTB_REC_DLV_DEL = 9,      /* acknowledged or dropped */
  MQTTB_REC_QOS2_IN = 10,     /* an inbound QoS 2 packet id awaits PUBREL */
  MQTTB_REC_QOS2_IN_DEL = 11, /* its PUBREL came */
  MQTTB_REC_RETAIN = 12,      /* the retained message of its topic */
  MQTTB_REC_RETAIN_DEL = 13,  /* a topic's retained message cleared */
  MQTTB_REC_COMMIT = 14,      /* the deliveries of an inbound QoS 2 message are complete */
  MQTTB_REC_TYPE_MAX = 14
};

/* The format version in the second byte of each record. */
#define MQTTB_REC_FORMAT 1u

/* Field tags, per record type (docs/persistence.md has the table). A field
 * is [tag][length, LEB128][value]; integers are little-endian in as many
 * bytes as they need. */
enum {
  /* MSG */
  MQTTB_F_MSG_ID = 1,
  MQTTB_F_MSG_QOS = 2,
  MQTTB_F_MSG_RETAIN = 3,
  MQTTB_F_MSG_TOPIC = 4,
  MQTTB_F_MSG_PAYLOAD = 5,
  MQTTB_F_MSG_PROPS = 6,
  MQTTB_F_MSG_EXPIRY_AT = 7,       /* wall ms; absent: never */
  MQTTB_F_MSG_EXPIRY_INTERVAL = 8, /* seconds, kept by a will until published */
  MQTTB_F_MSG_PENDING = 9,         /* inbound QoS 2: its deliveries need a COMMIT */
  /* SESSION */
  MQTTB_F_S_ID = 1,
  MQTTB_F_S_CLIENT = 2,
  MQTTB_F_S_EXPIRY_INTERVAL = 3,
  MQTTB_F_S_EXPIRES_AT = 4, /* wall ms while offline; absent: online or never */
  MQTTB_F_S_WILL = 5,       /* a delayed will: the id of its MSG record */
  MQTTB_F_S_WILL_AT = 6,    /* wall ms */
  MQTTB_F_S_OFFLINE = 7,
  /* SUB, UNSUB (session id as MQTTB_F_S_ID) */
  MQTTB_F_SUB_FILTER = 2,
  MQTTB_F_SUB_QOS = 3,
  MQTTB_F_SUB_OPTS = 4,
  MQTTB_F_SUB_ID = 5,
  /* DLV, DLV_SENT, DLV_DEL */
  MQTTB_F_D_ID = 1,
  MQTTB_F_D_SESSION = 2,
  MQTTB_F_D_MSG = 3,
  MQTTB_F_D_QOS = 4,
  MQTTB_F_D_RETAIN = 5,
  MQTTB_F_D_SUB_IDS = 6, /* 4-byte little-endian each */
  MQTTB_F_D_PID = 7,     /* absent: queued */
  MQTTB_F_D_STATE = 8,   /* MQTTB_INF_* of window.h */
  MQTTB_F_D_SHARE = 9,   /* the shared group "name/filter" it came through */
  /* QOS2_IN, QOS2_IN_DEL (session id as MQTTB_F_S_ID) */
  MQTTB_F_Q_PID = 2,
  MQTTB_F_Q_MSG = 3, /* QOS2_IN: the message it commits, if recorded */
  /* RETAIN: MQTTB_F_MSG_ID; RETAIN_DEL: MQTTB_F_MSG_TOPIC; COMMIT: MQTTB_F_MSG_ID */
  MQTTB_F_MAX = 15 /* highest tag any type uses; higher ones are skipped */
};

/* One broker's record stream. Fields belong to this module; restore sets
 * muted, next_id and reads the encoder. */
typedef struct mqttb_store {
  mqttb_ctx *ctx;
  uint64_t seq;     /* the last record emitted */
  uint64_t durable; /* the last record the embedder reported durable */
  uint64_t next_id; /* of messages, sessions and deliveries alike */
  uint64_t failed;  /* records lost for lack of memory */
  bool muted;       /* restoring or deleting the broker: nothing is recorded */
  /* The record being encoded. */
  uint8_t *buf;
  size_t len, cap;
  bool overflow; /* out of memory encoding it */
} mqttb_store;

void mqttb_store_init(mqttb_store *st, mqttb_ctx *ctx);
void mqttb_store_free(mqttb_store *st);
/* Whether changes are recorded now (a store callback, not restoring). */
static inline bool mqttb_store_on(const mqttb_store *st) {
  return st->ctx->cb.store && !st->muted;
}
static inline uint64_t mqttb_store_new_id(mqttb_store *st) {
  return st->next_id++;
}
/* Whether acknowledgements must wait now (store_sync with records that are
 * not durable yet). */
static inline bool mqttb_store_hold(const mqttb_store *st) {
  return st->ctx->settings.store_sync && st->durable < st->seq;
}

/* ---- times: the broker's (ms, embedder's clock) <-> records' (wall ms) */

/* Wall clock ms for the broker time t; 0 for UINT64_MAX (never). Without
 * a wallclock callback: the ms left from now (at least 1). */
uint64_t mqttb_store_wall(const mqttb_store *st, uint64_t t);
/* The broker time for wall ms w (0: UINT64_MAX); a time already past is
 * now. */
uint64_t mqttb_store_local(const mqttb_store *st, uint64_t w);

/* ---- encoding and emitting */

void mqttb_rec_begin(mqttb_store *st, uint8_t type);
void mqttb_rec_uint(mqttb_store *st, uint8_t tag, uint64_t v);
void mqttb_rec_bytes(mqttb_store *st, uint8_t tag, const void *p, size_t n);
/* 32-bit integers, 4 little-endian bytes each. */
void mqttb_rec_u32s(mqttb_store *st, uint8_t tag, const uint32_t *v, size_t n);
/* The fields of a message (MQTTB_F_MSG_*, without its id). */
void mqttb_rec_msg_fields(mqttb_store *st, const mqttb_msg *m);
/* Hand the record to the store callback (or count it lost). */
void mqttb_rec_emit(mqttb_store *st);
/* The same, to cb instead of the store callback (snapshots); returns what
 * cb returned, MQTTB_ERR_NOMEM when it could not be encoded. */
int mqttb_rec_emit_to(mqttb_store *st, mqttb_record_cb cb, void *ud);

/* A recorded reference to m: writes the message the first time (with its
 * pending flag for an inbound QoS 2 message); returns its id. While muted
 * (restoring) only counts: restore gave m its id. */
uint64_t mqttb_store_msg_ref(mqttb_store *st, mqttb_msg *m);
/* A recorded reference gone (m may be NULL); the last writes MSG_DEL. */
void mqttb_store_msg_unref(mqttb_store *st, mqttb_msg *m);

/* ---- decoding */

typedef struct mqttb_rec_field {
  const uint8_t *p;
  size_t len;
  bool present;
} mqttb_rec_field;

/* Split a record into its fields (f[tag], tags 1..MQTTB_F_MAX; higher tags
 * are skipped). False for a record that is not well formed (truncated
 * field, repeated tag, unknown format version); *why says what. */
bool mqttb_rec_parse(const uint8_t *rec, size_t len, uint8_t *type,
                     mqttb_rec_field f[MQTTB_F_MAX + 1], const char **why);
/* An integer field: false when it is longer than 8 bytes. */
bool mqttb_rec_get_uint(const mqttb_rec_field *f, uint64_t *v);

#endif /* MQTTB_STORE_H */
