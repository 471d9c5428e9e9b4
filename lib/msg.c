/* SPDX-License-Identifier: MIT */
#include "msg.h"

#include <string.h>

#include "wire.h"

static void init(mqttb_msg *m, uint8_t qos, bool retain) {
  m->refs = 1;
  m->qos = qos;
  m->retain = retain;
  m->expiry_at = UINT64_MAX;
  m->expiry_interval = 0;
  m->store_refs = 0;
  m->store_id = 0;
  m->store_pending = false;
}

mqttb_msg *mqttb_msg_new(const mqttb_mem *mem, const uint8_t *topic, size_t topic_len,
                         const uint8_t *payload, size_t payload_len, const uint8_t *props,
                         size_t props_len, uint8_t qos, bool retain) {
  if (topic_len > UINT16_MAX || payload_len > MQTTB_MAX_REMAINING_LENGTH ||
      props_len > MQTTB_MAX_REMAINING_LENGTH)
    return NULL;
  /* Past a memory limit only messages without payload (a retained topic
   * cleared) are still stored. */
  if (payload_len && !mqttb_mem_room(mem, sizeof(mqttb_msg) + topic_len + payload_len + props_len))
    return NULL;
  /* One block: the header, then the wire-format topic, the payload and the
   * properties. */
  mqttb_msg *m = mqttb_mem_malloc(mem, sizeof(*m) + 2 + topic_len + payload_len + props_len);
  if (!m)
    return NULL;
  init(m, qos, retain);
  m->topic_len = (uint16_t)topic_len;
  m->payload_len = (uint32_t)payload_len;
  m->props_len = (uint32_t)props_len;
  m->payload_off = (uint32_t)(2 + topic_len);
  m->props_off = (uint32_t)(2 + topic_len + payload_len);
  uint8_t *data = (uint8_t *)(m + 1);
  data[0] = (uint8_t)(topic_len >> 8);
  data[1] = (uint8_t)(topic_len & 0xff);
  if (topic_len)
    memcpy(data + 2, topic, topic_len);
  if (payload_len)
    memcpy(data + m->payload_off, payload, payload_len);
  if (props_len && props)
    memcpy(data + m->props_off, props, props_len);
  return m;
}

mqttb_msg *mqttb_msg_adopt(void *block, size_t len, size_t payload_off, size_t props_off,
                           size_t props_len, uint8_t qos, bool retain) {
  mqttb_msg *m = block;
  const uint8_t *data = (const uint8_t *)(m + 1);
  init(m, qos, retain);
  m->topic_len = (uint16_t)(data[0] << 8 | data[1]);
  m->payload_off = (uint32_t)payload_off;
  m->payload_len = (uint32_t)(len - payload_off);
  m->props_off = (uint32_t)props_off;
  m->props_len = (uint32_t)props_len;
  return m;
}

void mqttb_msg_unref(const mqttb_mem *mem, mqttb_msg *m) {
  if (m && --m->refs == 0)
    mqttb_mem_free(mem, m);
}
