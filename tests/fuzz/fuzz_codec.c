/* SPDX-License-Identifier: MIT */
/* Every decoder on arbitrary bytes: no crash, no out-of-bounds read, and a
 * decoded packet re-encodes to something that decodes the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mqttb_frame f;
  if (mqttb_codec_frame(data, size, UINT32_MAX, &f) != MQTTB_CODEC_OK)
    return 0;
  size_t avail = size - f.hdr_len;
  size_t len = f.remaining < avail ? f.remaining : avail;
  const uint8_t *body = data + f.hdr_len;
  mqttb_codec_check_flags(f.type, f.flags);
  mqttb_connect ck;
  if (mqttb_decode_connect(body, len, &ck) == MQTTB_CODEC_OK) {
    size_t n = mqttb_connect_size(&ck);
    uint8_t *buf = malloc(n);
    if (mqttb_encode_connect(buf, &ck) != n)
      abort();
    mqttb_frame f2;
    mqttb_connect ck2;
    if (mqttb_codec_frame(buf, n, UINT32_MAX, &f2) != MQTTB_CODEC_OK ||
        mqttb_decode_connect(buf + f2.hdr_len, f2.remaining, &ck2) != MQTTB_CODEC_OK ||
        ck2.client_id.len != ck.client_id.len || ck2.clean != ck.clean)
      abort();
    free(buf);
  }
  mqttb_publish p;
  if (mqttb_decode_publish(f.flags, body, len, &p) == MQTTB_CODEC_OK) {
    size_t n = mqttb_publish_size(&p);
    uint8_t *buf = malloc(n);
    if (mqttb_encode_publish(buf, &p) != n)
      abort();
    mqttb_frame f2;
    mqttb_publish p2;
    if (mqttb_codec_frame(buf, n, UINT32_MAX, &f2) != MQTTB_CODEC_OK ||
        mqttb_decode_publish(f2.flags, buf + f2.hdr_len, f2.remaining, &p2) != MQTTB_CODEC_OK ||
        p2.payload.len != p.payload.len || p2.topic.len != p.topic.len ||
        memcmp(p2.payload.ptr, p.payload.ptr, p.payload.len) != 0)
      abort();
    free(buf);
  }
  mqttb_subscribe s;
  if (mqttb_decode_subscribe(body, len, &s) == MQTTB_CODEC_OK) {
    size_t pos = 0, count = 0;
    mqttb_slice filter;
    uint8_t opts;
    while (mqttb_subscribe_next(&s.entries, &pos, &filter, &opts)) {
      if (!mqttb_topic_filter_valid(filter.ptr, filter.len))
        abort();
      count++;
    }
    if (count != s.count)
      abort();
  }
  mqttb_unsubscribe u;
  if (mqttb_decode_unsubscribe(body, len, &u) == MQTTB_CODEC_OK) {
    size_t pos = 0, count = 0;
    mqttb_slice filter;
    while (mqttb_unsubscribe_next(&u.entries, &pos, &filter))
      count++;
    if (count != u.count)
      abort();
  }
  /* MQTT 5 layouts. */
  mqttb_publish p5;
  if (mqttb_decode_publish_v(f.flags, body, len, 5, &p5) == MQTTB_CODEC_OK) {
    size_t pos = 0;
    mqttb_prop prop;
    while (mqttb_props_next(&p5.props, &pos, &prop))
      ;
    if (pos != p5.props.len)
      abort(); /* a validated block iterates to its end */
    size_t n = mqttb_publish_size(&p5);
    uint8_t *buf = malloc(n);
    if (mqttb_encode_publish(buf, &p5) != n)
      abort();
    mqttb_frame f2;
    mqttb_publish q5;
    if (mqttb_codec_frame(buf, n, UINT32_MAX, &f2) != MQTTB_CODEC_OK ||
        mqttb_decode_publish_v(f2.flags, buf + f2.hdr_len, f2.remaining, 5, &q5) !=
            MQTTB_CODEC_OK ||
        q5.props.len != p5.props.len || q5.payload.len != p5.payload.len)
      abort();
    free(buf);
  }
  mqttb_subscribe s5;
  mqttb_slice props;
  mqttb_decode_subscribe_v(body, len, 5, &s5, &props);
  mqttb_unsubscribe u5;
  mqttb_decode_unsubscribe_v(body, len, 5, &u5, &props);
  uint8_t reason;
  uint16_t pid;
  mqttb_decode_ack5(f.type, body, len, &pid, &reason, &props);
  mqttb_decode_reason_props(f.type, body, len, &reason, &props);
  for (uint8_t ctx = 0; ctx < 16; ctx++) {
    size_t pos = 0;
    mqttb_props_read(body, len, &pos, ctx, &props);
  }
  mqttb_decode_ack(body, len, &pid);
  mqttb_connack a;
  mqttb_decode_connack(body, len, &a);
  mqttb_slice codes;
  mqttb_decode_suback(body, len, &pid, &codes);
  mqttb_utf8_valid(data, size);
  mqttb_topic_name_valid(data, size);
  mqttb_topic_filter_valid(data, size);
  return 0;
}
