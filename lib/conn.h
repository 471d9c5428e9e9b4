/* SPDX-License-Identifier: MIT */
/*
 * conn: one client connection, the top of the protocol. One module in four
 * files split by concern, sharing struct mqttb_conn through this header:
 *
 *   conn_input.c    input framing, the packet dispatch, mqttb_conn_recv
 *   conn_connect.c  CONNECT, enhanced authentication (AUTH), DISCONNECT
 *   conn_publish.c  PUBLISH, the acknowledgements, SUBSCRIBE, UNSUBSCRIBE
 *   conn.c          lifecycle: creation, timers, output, closing, deletion
 *
 * and calls run in that order, downward: input dispatches to connect and
 * publish, which use the lifecycle; conn.c calls none of the other three.
 */
#ifndef MQTTB_CONN_H
#define MQTTB_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mqttb/mqttb.h>

#include "codec.h"
#include "core.h"
#include "msg.h"
#include "session.h"
#include "timer.h"
#include "tx.h"

enum mqttb_conn_state {
  MQTTB_CONN_AWAIT_CONNECT = 0,
  MQTTB_CONN_CONNECTED,
  MQTTB_CONN_CLOSING, /* the broker closed it; output may still drain */
  MQTTB_CONN_DEAD     /* transport gone */
};

/* Connection state only MQTT 5 topic aliases, enhanced authentication and
 * redirection need: kept out of every connection's footprint. */
/* Blocks of expected large packets offered at once (conn_input.c): 64
 * packets of 4 KiB fill the 256 KiB offered. */
#define MQTTB_CONN_SPEC_MAX 64

/* The blocks offered for the packets expected after a large PUBLISH, each
 * behind a place for its fixed header; allocated when first offered. */
struct mqttb_conn_spec {
  uint8_t *block[MQTTB_CONN_SPEC_MAX];
  uint8_t hdr[MQTTB_CONN_SPEC_MAX][5];
};

struct mqttb_conn_ext {
  /* Inbound topic aliases: alias -> topic (owned), 1..topic_alias_maximum. */
  char **alias_in;
  uint16_t *alias_in_len;
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
  mqttb_log_limit log; /* lines this client caused */
  /* Input received but not yet processed, held when a call had done its
   * share of work (settings.work_budget). */
  uint8_t *held;
  size_t held_len, held_cap;
  /* A large PUBLISH received straight into the block that becomes its
   * message (mqttb_conn_recv_buffer): sizeof(mqttb_msg) + big_f.remaining
   * bytes, big_len of the body in. Counted in ctx.input_bytes. */
  uint8_t *big;
  size_t big_len;
  mqttb_frame big_f;
  /* Blocks for the packets expected after it (nspec of them, for PUBLISH
   * packets with the fixed header of spec_f, spec_want encoded), offered
   * by mqttb_conn_recv_buffers behind a place for each one's header. */
  struct mqttb_conn_spec *spec;
  uint8_t spec_want[5];
  unsigned nspec;
  /* Blocks to offer next: twice as many as the last read reached (0: 2),
   * so that a steady stream gets reads of up to 256 KiB and a single large
   * message does not pay for 64 blocks it never fills. */
  unsigned spec_goal;
  mqttb_frame spec_f;
  /* The last input ended just after such a packet, read into its block:
   * blocks are offered for the next ones even with no packet in progress
   * (the only case of blocks without one). */
  bool spec_next;
  /* While that PUBLISH is handled, its block, for mqttb_conn_make_msg to
   * adopt (which sets it to NULL). */
  uint8_t *adopt;
};

/* Fields ordered so that none leaves a hole: thousands of idle
 * connections pay for each byte. */
struct mqttb_conn {
  mqttb_broker *broker;
  void *user_data;
  struct mqttb_conn *prev, *next; /* the broker's list */
  mqttb_tx tx;                    /* output, and the peer's limits */
  enum mqttb_conn_state state;
  int close_reason;
  uint32_t will_delay; /* MQTT 5 Will Delay Interval, seconds */
  mqttb_timer timer;
  /* A partial incoming packet (rbuf, below): bytes in, bytes allocated. */
  uint32_t rlen, rcap;
  uint16_t keepalive;
  bool close_notified;
  bool clean;
  bool request_response_info;
  /* MQTT 5 reason for the DISCONNECT sent when the broker closes; 0 means
   * derive it from the close reason. */
  uint8_t disconnect_reason;
  bool disconnect_reason_set; /* an explicit reason, 0 included */
  /* Before CONNECT: the embedder holds input of this connection back
   * (mqttb_conn_input_deferred); no connect timeout until it is fed. */
  bool input_deferred;
  /* What few connections need, allocated on first use. */
  struct mqttb_conn_ext *x;
  char *client_id;
  mqttb_session *session;
  mqttb_msg *will;
  /* When a packet last came in; until CONNECT completes, when the
   * connection was made (the connect timeout counts from there). */
  uint64_t last_rx;
  uint8_t *rbuf;
};

/* ---- conn.c: lifecycle ---- */

/* Reading the rarely used part of a connection; mqttb_conn_ext to write. */
extern const struct mqttb_conn_ext mqttb_conn_no_ext;
static inline const struct mqttb_conn_ext *mqttb_conn_x(const mqttb_conn *c) {
  return c->x ? c->x : &mqttb_conn_no_ext;
}
/* The extension, allocated on first use; NULL on out-of-memory. */
struct mqttb_conn_ext *mqttb_conn_ext(mqttb_conn *c);
/* The client id for log lines. */
const char *mqttb_conn_cid(const mqttb_conn *c);
/* Log a line this client caused, as "client ID: ...", with the client id
 * cut to MQTTB_LOG_MAX_STR bytes; error, warning and notice lines are
 * rate-limited per connection (mqttb_log_allow). Strings the client chose
 * go in with "%.*s" and mqttb_log_cut. */
void mqttb_conn_log(mqttb_conn *c, mqttb_log_level level, const char *fmt, ...) MQTTB_PRINTF(3, 4);
/* The same without the "client ID: " prefix (before CONNECT names one). */
void mqttb_conn_log_anon(mqttb_conn *c, mqttb_log_level level, const char *fmt, ...)
    MQTTB_PRINTF(3, 4);
/* A copy of len bytes with a NUL after them; NULL on out-of-memory. */
char *mqttb_conn_strdup(const mqttb_conn *c, const void *s, size_t len);

/* Close the connection now for reason: an MQTT 5 DISCONNECT when due,
 * publish the will unless the client disconnected, detach the session,
 * notify the embedder. */
void mqttb_conn_close(mqttb_conn *c, int reason);
/* Close it on the embedder's request: an MQTT 5 DISCONNECT with reason,
 * the will unless reason is 0, on_close with MQTTB_ERR_SHUTDOWN. The
 * caller checks that it is open and reaps afterwards. */
void mqttb_conn_shut(mqttb_conn *c, int reason);
/* Set the broker's tx hub up for connections (called by mqttb_broker_new). */
void mqttb_conn_setup_hub(mqttb_broker *b);
/* Close every connection whose tx failed during a fan-out. */
void mqttb_conn_reap(mqttb_broker *b);
/* Free a connection object (closing it first as transport loss). */
void mqttb_conn_free(mqttb_conn *c);
/* The connection's timer fired: close it if a deadline passed, else re-arm.
 * 0 or MQTTB_ERR_NOMEM (the caller closes it). */
int mqttb_conn_on_timer(mqttb_conn *c, uint64_t now);
mqttb_conn *mqttb_conn_of_timer(mqttb_timer *t);
/* After input: make sure the timer covers the connection's deadline. 0 or
 * MQTTB_ERR_NOMEM. */
int mqttb_conn_arm(mqttb_conn *c);
/* The connection behind a session's tx. */
mqttb_conn *mqttb_conn_of_tx(mqttb_tx *tx);
/* A message from PUBLISH or will fields and, for MQTT 5 (pp not NULL), the
 * properties to forward. NULL on out-of-memory. */
mqttb_msg *mqttb_conn_make_msg(mqttb_conn *c, mqttb_slice topic, mqttb_slice payload,
                               const mqttb_slice *props, const mqttb_pub_props *pp, uint8_t qos,
                               bool retain);
/* Ask the authorize callback: 0 (allowed, or no callback) or the MQTT 5
 * reason code to refuse with (0x80 to 0xFF). */
uint8_t mqttb_conn_authorize(mqttb_conn *c, mqttb_access access, const uint8_t *topic, size_t len,
                             uint8_t qos, bool retain);
/* Log why, set the MQTT 5 reason for the DISCONNECT, and return err. */
int mqttb_conn_fail(mqttb_conn *c, uint8_t v5, int err, const char *why);
/* The connection error for a codec error. */
int mqttb_conn_codec_err(mqttb_conn *c, int r);

/* ---- conn_connect.c ---- */
int mqttb_conn_on_connect(mqttb_conn *c, uint8_t flags, const uint8_t *body, size_t len);
int mqttb_conn_on_auth(mqttb_conn *c, const uint8_t *body, size_t len);
int mqttb_conn_on_disconnect(mqttb_conn *c, const uint8_t *body, size_t len);

/* ---- conn_publish.c ---- */
int mqttb_conn_on_publish(mqttb_conn *c, uint8_t flags, const uint8_t *body, size_t len);
int mqttb_conn_on_ack(mqttb_conn *c, const mqttb_frame *f, const uint8_t *body, size_t len);
int mqttb_conn_on_subscribe(mqttb_conn *c, const uint8_t *body, size_t len);
int mqttb_conn_on_unsubscribe(mqttb_conn *c, const uint8_t *body, size_t len);

#endif /* MQTTB_CONN_H */
