/* SPDX-License-Identifier: MIT */
/* An in-process test bed: one broker, fake clients that speak through the
 * library's codec, and a fake clock. No sockets. */
#ifndef MQTTB_TEST_HARNESS_H
#define MQTTB_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mqttb/mqttb.h>

#include "codec_client.h"

/* An allocator that counts live blocks and can fail the Nth allocation. */
typedef struct tb_alloc {
  long live;       /* blocks allocated and not freed */
  long count;      /* allocations so far */
  long fail_at;    /* fail allocation number fail_at (1-based); 0: never */
  long fail_after; /* fail every allocation after this many; 0: never */
  long bytes;      /* bytes in live blocks */
} tb_alloc;

void tb_alloc_init(tb_alloc *a, mqttb_mem *mem);

typedef struct tb tb;

typedef struct tc {
  tb *bed;
  struct tc *next; /* the bed's list */
  mqttb_conn *conn;
  uint8_t *in; /* bytes the broker sent, not yet parsed */
  size_t inlen, incap;
  bool closed; /* on_close was called */
  int close_reason;
  int want_write; /* times want_write was called */
  int connected;  /* times on_connect was called */
  /* The last packet read by tc_read. */
  mqttb_frame f;
  uint8_t *body;
  size_t bodycap;
} tc;

struct tb {
  mqttb_broker *broker;
  mqttb_settings settings;
  mqttb_callbacks cb;
  tb_alloc alloc;
  mqttb_mem mem;
  uint64_t now;
  int64_t wall; /* what the wallclock callback returns */
  tc *clients;
  /* Optional hooks the tests set. */
  int (*authenticate)(const mqttb_auth_request *req);
  int (*authorize)(mqttb_access access, const char *topic, size_t len);
  /* Called from inside the want_write and on_close callbacks (c is NULL
   * for a connection a test made without tc_new). */
  void (*want_write_hook)(tb *bed, tc *c);
  void (*on_close_hook)(tb *bed, tc *c, int reason);
  void *hook_data;
  int closes; /* on_close calls, all connections */
  /* Every store record, in order (the store callback keeps them). */
  struct tb_record {
    uint8_t *bytes;
    size_t len;
  } * records;
  size_t nrecords, records_cap;
  uint64_t last_seq; /* the seq of the last record */
  int logs[5];
  char last_log[512];
};

/* Create a bed with default settings (changed through *settings if not
 * NULL). */
tb *tb_new(const mqttb_settings *settings);
/* Delete every client, the broker, and check no block leaked. */
void tb_del(tb *bed);
/* The process dies: the broker and its clients are gone (the records their
 * going would write are not kept), a new broker is made with the same
 * settings and restored from the records, which are kept. Returns what
 * mqttb_broker_restore_end returned; *refused (if not NULL) counts the
 * records mqttb_broker_restore refused. */
int tb_restart(tb *bed, int *refused);
/* Replace the records by a snapshot of the broker. */
void tb_compact(tb *bed);
/* Restore a new broker from the given records into bed (which must have no
 * broker): for the tests of damaged stores. */
int tb_restore_from(tb *bed, const struct tb_record *recs, size_t n, int *refused);
void tb_advance(tb *bed, uint64_t ms);

tc *tc_new(tb *bed);
void tc_del(tc *c);
/* Feed raw bytes, and go on until nothing is held back by the work
 * budget; returns mqttb_conn_recv's result. */
int tc_send(tc *c, const void *bytes, size_t len);
/* One mqttb_conn_recv call: held input stays held. */
int tc_send_once(tc *c, const void *bytes, size_t len);
/* Feed bytes split into chunks of at most `chunk` bytes. */
int tc_send_split(tc *c, const void *bytes, size_t len, size_t chunk);
/* Drain the broker's output into c->in. */
void tc_drain(tc *c);
/* Parse the next packet the broker sent into c->f / c->body. Returns false
 * when there is none. */
bool tc_read(tc *c);
/* Read up to the next packet of this type; packets of other types before
 * it stay queued for later reads. */
bool tc_read_type(tc *c, uint8_t type);
/* Whether the broker sent nothing more. */
bool tc_quiet(tc *c);

typedef struct tc_connect_opts {
  const char *client_id;
  bool clean;
  uint16_t keepalive;
  uint8_t level; /* 0 means 4 */
  const char *will_topic;
  const char *will_payload;
  uint8_t will_qos;
  bool will_retain;
  const char *username;
  const char *password;
} tc_connect_opts;

/* Send CONNECT; returns the CONNACK return code, or -1 when the broker sent
 * no CONNACK. *session_present receives the flag when not NULL. */
int tc_connect(tc *c, const tc_connect_opts *o, bool *session_present);
/* A new client connected with clean session and the given id. */
tc *tc_open(tb *bed, const char *client_id, bool clean);
/* SUBSCRIBE to one filter; returns the SUBACK code or -1. */
int tc_subscribe(tc *c, const char *filter, uint8_t qos);
int tc_unsubscribe(tc *c, const char *filter);
/* PUBLISH and run the acknowledgement flow as a client would (PUBACK or
 * PUBREC/PUBREL/PUBCOMP). Returns true when the expected acks arrived. */
bool tc_publish(tc *c, const char *topic, const char *payload, uint8_t qos, bool retain);
/* Send a PUBLISH without handling acks. */
void tc_publish_raw(tc *c, const char *topic, const void *payload, size_t plen, uint8_t qos,
                    bool retain, bool dup, uint16_t pid);

/* Read the next packet and require it to be a PUBLISH; fills *p (slices
 * point into c->body). Returns false otherwise. */
bool tc_expect_publish(tc *c, mqttb_publish *p);
/* Acknowledge a received PUBLISH as a client would. */
void tc_ack(tc *c, const mqttb_publish *p);
void tc_send_ack(tc *c, uint8_t type, uint16_t pid);
void tc_disconnect(tc *c);
/* Drop the transport without DISCONNECT. */
void tc_drop(tc *c);

/* Slice equality with a C string. */
bool slice_eq(mqttb_slice s, const char *str);

#endif
