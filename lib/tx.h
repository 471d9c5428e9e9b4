/* SPDX-License-Identifier: MIT */
/*
 * tx: the sending half of a connection. What the peer announced that
 * shapes every packet sent to it (protocol level, Maximum Packet Size,
 * Receive Maximum, Topic Alias Maximum and the aliases given out so far),
 * its output queue, and packet encoding into that queue: PUBLISH (with the
 * remaining message expiry, topic alias and subscription identifiers),
 * acknowledgements, CONNACK, SUBACK/UNSUBACK and reason-code packets.
 *
 * Sessions send through it without knowing connections: a tx is embedded in
 * a connection, and a session holds a pointer to its connection's tx while
 * the client is online. Work the connection layer must do in reaction goes
 * through the hub, one per broker: the on_pending function pointer, set by
 * the connection layer, is called when a tx's output goes from empty to
 * pending; a tx that fails (out of memory in the middle of a fan-out) is
 * put on the hub's failed list, and the connection layer closes those
 * connections once the fan-out is over.
 */
#ifndef MQTTB_TX_H
#define MQTTB_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "map.h"
#include "msg.h"
#include "outq.h"
#include "store.h"

typedef struct mqttb_tx mqttb_tx;

typedef struct mqttb_tx_hub {
  mqttb_ctx *ctx;
  /* Called when a tx's output goes from empty to pending. Set by the layer
   * that owns the tx (the connection), before any tx sends. */
  void (*on_pending)(mqttb_tx *tx, void *arg);
  /* Whether a message may be sent to the tx's peer (the read check); NULL
   * when every message may. Set by the connection layer. */
  bool (*may_read)(mqttb_tx *tx, const mqttb_msg *msg, uint8_t qos, bool retain, void *arg);
  void *arg;
  mqttb_tx *failed; /* failed and not yet taken with mqttb_tx_take_failed */
  /* Acknowledgements wait for records to be durable when the store says
   * so (store_sync); NULL: never. */
  mqttb_store *store;
  mqttb_tx *held; /* txs holding acknowledgements */
} mqttb_tx_hub;

/* Acknowledgements held until the store records before them are durable
 * (store_sync): their bytes, and where each ends with the record it waits
 * for. */
struct mqttb_tx_held {
  uint8_t *buf;
  size_t len, cap, reserved;
  struct mqttb_tx_held_mark {
    uint64_t seq;
    size_t end;
  } * marks;
  uint32_t n, marks_cap;
};

/* Outbound topic aliases (MQTT 5): topic -> alias; allocated on first use. */
struct mqttb_tx_aliases {
  mqttb_map by_topic;
  char **topic; /* alias - 1 -> topic (owned; the map's keys) */
  uint16_t n;
};

/* Fields belong to this module; the connection layer sets the peer's
 * limits after CONNECT and owns the embedding. */
struct mqttb_tx {
  mqttb_outq q;
  mqttb_tx *next_failed;
  struct mqttb_tx_aliases *aliases;
  struct mqttb_tx_held *held; /* NULL when nothing is held */
  mqttb_tx *next_held;
  uint32_t max_packet;  /* the peer's Maximum Packet Size; 0: none */
  int failed;           /* non-zero: failed for this reason */
  uint16_t receive_max; /* the peer's Receive Maximum; 0: none given */
  uint16_t alias_max;   /* topic aliases the broker may use */
  uint8_t level;        /* 3, 4, 5; 0 before CONNECT */
};

void mqttb_tx_init(mqttb_tx *tx);
/* Free the output and the aliases. */
void mqttb_tx_free(mqttb_tx_hub *hub, mqttb_tx *tx);

/* Whether sessions may still send through it. */
static inline bool mqttb_tx_ok(const mqttb_tx *tx) {
  return tx->failed == 0;
}
/* Mark it failed for reason (a connection error) and put it on the hub's
 * failed list; nothing when it already failed. */
void mqttb_tx_fail(mqttb_tx_hub *hub, mqttb_tx *tx, int reason);
/* Take one failed tx off the list, or NULL. */
mqttb_tx *mqttb_tx_take_failed(mqttb_tx_hub *hub);
/* Take tx off the failed list if it is there (it is being deleted). */
void mqttb_tx_forget(mqttb_tx_hub *hub, mqttb_tx *tx);

/* One packet of at most n bytes, written by the caller between begin and
 * commit. begin returns where to write, or NULL on out-of-memory (nothing
 * changed); commit counts the packet and signals pending output. */
uint8_t *mqttb_tx_begin(mqttb_tx_hub *hub, mqttb_tx *tx, size_t n, size_t *mark);
void mqttb_tx_commit(mqttb_tx_hub *hub, mqttb_tx *tx, size_t mark);

/* Queue a PUBLISH of msg at qos with the retain flag and the subscription
 * identifiers ids; pid for QoS 1/2. Returns 0, MQTTB_ERR_PACKET_TOO_LARGE
 * when the peer's Maximum Packet Size forbids it (nothing queued), or
 * MQTTB_ERR_NOMEM. */
int mqttb_tx_publish(mqttb_tx_hub *hub, mqttb_tx *tx, mqttb_msg *msg, uint8_t qos, bool retain,
                     const uint32_t *ids, size_t nids, bool dup, uint16_t pid);
/* PUBACK, PUBREC, PUBREL, PUBCOMP or MQTT 3.x UNSUBACK; reason goes to
 * MQTT 5 peers only. 0 or MQTTB_ERR_NOMEM. */
int mqttb_tx_ack(mqttb_tx_hub *hub, mqttb_tx *tx, uint8_t type, uint16_t pid, uint8_t reason);
/* CONNACK: MQTT 5 with the property block, else the 3.x form with rc as it
 * is (MQTT 3.1 has no session-present flag). */
int mqttb_tx_connack(mqttb_tx_hub *hub, mqttb_tx *tx, bool session_present, uint8_t rc,
                     const uint8_t *props, size_t plen);
/* SUBACK, or MQTT 5 UNSUBACK, with a reason code per filter (SUBACK: either
 * level). */
int mqttb_tx_ack_codes(mqttb_tx_hub *hub, mqttb_tx *tx, uint8_t type, uint16_t pid,
                       const uint8_t *codes, size_t n);

/* Acknowledgements that say a request is durable (PUBACK, PUBREC, PUBCOMP,
 * SUBACK, UNSUBACK) are held while the store says so, and behind any
 * already held, so they go out in order. Send those whose records are now
 * durable (for every tx of the hub). */
void mqttb_tx_release_held(mqttb_tx_hub *hub);
/* DISCONNECT or AUTH (MQTT 5): a reason code and a property block. */
int mqttb_tx_reason(mqttb_tx_hub *hub, mqttb_tx *tx, uint8_t type, uint8_t reason,
                    const uint8_t *props, size_t plen);
/* A packet with no body (PINGRESP). */
int mqttb_tx_empty(mqttb_tx_hub *hub, mqttb_tx *tx, uint8_t type);

#endif /* MQTTB_TX_H */
