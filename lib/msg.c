/* SPDX-License-Identifier: MIT */
#include "msg.h"

#include <string.h>

#include "wire.h"

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
  m->refs = 1;
  m->qos = qos;
  m->retain = retain;
  m->topic_len = (uint16_t)topic_len;
  m->payload_len = (uint32_t)payload_len;
  m->props_len = (uint32_t)props_len;
  m->expiry_at = UINT64_MAX;
  m->expiry_interval = 0;
  m->store_refs = 0;
  m->store_id = 0;
  m->store_pending = false;
  m->data = (uint8_t *)(m + 1);
  m->data[0] = (uint8_t)(topic_len >> 8);
  m->data[1] = (uint8_t)(topic_len & 0xff);
  if (topic_len)
    memcpy(m->data + 2, topic, topic_len);
  if (payload_len)
    memcpy(m->data + 2 + topic_len, payload, payload_len);
  if (props_len && props)
    memcpy(m->data + 2 + topic_len + payload_len, props, props_len);
  return m;
}

void mqttb_msg_unref(const mqttb_mem *mem, mqttb_msg *m) {
  if (m && --m->refs == 0)
    mqttb_mem_free(mem, m);
}
