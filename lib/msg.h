/* SPDX-License-Identifier: MIT */
/*
 * msg: one published message, stored once and shared (reference counted)
 * by every queue, in-flight window, output segment and retained slot that
 * holds it.
 */
#ifndef MQTTB_MSG_H
#define MQTTB_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

/* The message's bytes follow the struct in the same block (MQTTB_MSG_DATA):
 * [2-byte topic length][topic], then the payload and the MQTT 5 properties
 * at their offsets. A message made by mqttb_msg_new has the payload right
 * after the topic and the properties after it; one adopted from a
 * received PUBLISH (mqttb_msg_adopt) is the packet's body as it came, the
 * packet id and the received properties between topic and payload. The
 * fields are read by every layer that sends or stores messages; only this
 * module and the receiving connection (which sets the expiry) write them. */
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
  /* Recorded references to it (store.h): deliveries of persistent
   * sessions and the retained slot; its id in the store while non-zero. */
  uint32_t store_refs;
  uint64_t store_id;
  /* An inbound QoS 2 message whose deliveries are being recorded: a
   * store that lacks their COMMIT drops them at restore. */
  bool store_pending;
  /* Where payload and properties start, from MQTTB_MSG_DATA. */
  uint32_t payload_off, props_off;
} mqttb_msg;

#define MQTTB_MSG_DATA(m) ((const uint8_t *)((m) + 1))
#define MQTTB_MSG_TOPIC(m) ((const char *)MQTTB_MSG_DATA(m) + 2)
#define MQTTB_MSG_PAYLOAD(m) (MQTTB_MSG_DATA(m) + (m)->payload_off)
#define MQTTB_MSG_PROPS(m) (MQTTB_MSG_DATA(m) + (m)->props_off)

/* props: an MQTT 5 property block to keep (filtered by the caller), may be
 * empty or NULL (then props_len bytes are left for the caller to fill).
 * NULL on out-of-memory or a size the protocol cannot carry. */
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
/* A message made of a block of sizeof(mqttb_msg) + len bytes from
 * mqttb_mem_malloc whose bytes after the struct are a PUBLISH body: the
 * topic (with its length) at its start, the payload at payload_off to the
 * end, the properties to keep at props_off. Takes the block; its memory is
 * the message's from then on. */
mqttb_msg *mqttb_msg_adopt(void *block, size_t len, size_t payload_off, size_t props_off,
                           size_t props_len, uint8_t qos, bool retain);
void mqttb_msg_unref(const mqttb_mem *mem, mqttb_msg *m);

#endif /* MQTTB_MSG_H */
