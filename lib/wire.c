/* SPDX-License-Identifier: MIT */
/* MQTT data representations. See wire.h. Every read is bounds-checked
 * against the length the caller gave (the decoders above are fuzzed). */
#include "wire.h"

#include <string.h>

bool mqttb_read_u16(const uint8_t *body, size_t len, size_t *pos, uint16_t *v) {
  if (len - *pos < 2) {
    return false;
  }
  *v = mqttb_get_u16(body + *pos);
  *pos += 2;
  return true;
}

bool mqttb_read_bin(const uint8_t *body, size_t len, size_t *pos, mqttb_slice *s) {
  size_t p = *pos;
  uint16_t n;
  if (!mqttb_read_u16(body, len, &p, &n)) {
    return false;
  }
  if (len - p < n) {
    return false;
  }
  s->ptr = body + p;
  s->len = n;
  *pos = p + n;
  return true;
}

bool mqttb_read_varint(const uint8_t *buf, size_t len, size_t *pos, uint32_t *v) {
  uint32_t value = 0;
  for (unsigned i = 0; i < 4; i++) {
    if (*pos >= len)
      return false;
    uint8_t b = buf[(*pos)++];
    value |= (uint32_t)(b & 0x7Fu) << (7 * i);
    if (!(b & 0x80u)) {
      *v = value;
      return true;
    }
  }
  return false;
}

uint8_t *mqttb_put_bin(uint8_t *out, const mqttb_slice *s) {
  out = mqttb_put_u16(out, (uint16_t)s->len);
  if (s->len > 0) {
    memcpy(out, s->ptr, s->len);
  }
  return out + s->len;
}

uint8_t *mqttb_put_block(uint8_t *out, const mqttb_slice *block) {
  out += mqttb_codec_varint_encode(out, (uint32_t)block->len);
  if (block->len > 0) {
    memcpy(out, block->ptr, block->len);
  }
  return out + block->len;
}

uint8_t *mqttb_put_header(uint8_t *out, uint8_t first, uint32_t remaining) {
  *out++ = first;
  return out + mqttb_codec_varint_encode(out, remaining);
}

size_t mqttb_packet_size(size_t remaining) {
  if (remaining > MQTTB_MAX_REMAINING_LENGTH) {
    return 0;
  }
  return 1 + mqttb_codec_varint_size((uint32_t)remaining) + remaining;
}

/* ---- variable byte integer ---- */

size_t mqttb_codec_varint_size(uint32_t value) {
  if (value < 128u) {
    return 1;
  }
  if (value < 16384u) {
    return 2;
  }
  if (value < 2097152u) {
    return 3;
  }
  if (value <= MQTTB_MAX_REMAINING_LENGTH) {
    return 4;
  }
  return 0;
}

size_t mqttb_codec_varint_encode(uint8_t *out, uint32_t value) {
  size_t n = 0;
  if (value > MQTTB_MAX_REMAINING_LENGTH) {
    return 0;
  }
  do {
    uint8_t b = (uint8_t)(value & 0x7Fu);
    value >>= 7;
    if (value > 0) {
      b = (uint8_t)(b | 0x80u);
    }
    out[n++] = b;
  } while (value > 0);
  return n;
}

/* ---- strings and topics ---- */

bool mqttb_utf8_valid(const uint8_t *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    /* Eight ASCII bytes at a time, none of them NUL (topics are mostly
     * that). */
    while (len - i >= 8) {
      uint64_t v;
      memcpy(&v, s + i, 8);
      if ((v & 0x8080808080808080u) || ((v - 0x0101010101010101u) & ~v & 0x8080808080808080u))
        break;
      i += 8;
    }
    if (i == len)
      break;
    uint8_t b = s[i];
    uint32_t cp;
    uint32_t min;
    size_t n;
    size_t k;

    if (b < 0x80u) {
      if (b == 0) {
        return false; /* [MQTT-1.5.3-2] */
      }
      i++;
      continue;
    }
    if ((b & 0xE0u) == 0xC0u) {
      n = 1;
      cp = b & 0x1Fu;
      min = 0x80u;
    } else if ((b & 0xF0u) == 0xE0u) {
      n = 2;
      cp = b & 0x0Fu;
      min = 0x800u;
    } else if ((b & 0xF8u) == 0xF0u) {
      n = 3;
      cp = b & 0x07u;
      min = 0x10000u;
    } else {
      return false; /* stray continuation byte or 0xF8..0xFF */
    }
    if (len - i - 1 < n) {
      return false; /* truncated sequence */
    }
    for (k = 1; k <= n; k++) {
      uint8_t c = s[i + k];
      if ((c & 0xC0u) != 0x80u) {
        return false;
      }
      cp = (cp << 6) | (uint32_t)(c & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) {
      return false; /* overlong, out of range, surrogate [MQTT-1.5.3-1] */
    }
    i += n + 1;
  }
  return true;
}

/* 0x80 in each byte of v that is zero, and only there. */
static uint64_t zero_bytes(uint64_t v) {
  uint64_t t = (v & 0x7F7F7F7F7F7F7F7Fu) + 0x7F7F7F7F7F7F7F7Fu;
  return ~(t | v | 0x7F7F7F7F7F7F7F7Fu);
}

#define BYTES(c) (0x0101010101010101u * (uint8_t)(c))

bool mqttb_topic_name_valid(const uint8_t *s, size_t len) {
  size_t i = 0;
  if (len == 0 || len > MQTTB_STR_MAX) {
    return false; /* [MQTT-4.7.3-1] */
  }
  if (!mqttb_utf8_valid(s, len)) {
    return false;
  }
  for (; len - i >= 8; i += 8) {
    uint64_t v;
    memcpy(&v, s + i, 8);
    if (zero_bytes(v ^ BYTES('+')) | zero_bytes(v ^ BYTES('#'))) {
      return false; /* [MQTT-3.3.2-2] */
    }
  }
  for (; i < len; i++) {
    if (s[i] == '+' || s[i] == '#') {
      return false; /* [MQTT-3.3.2-2] */
    }
  }
  return true;
}

bool mqttb_topic_filter_valid(const uint8_t *s, size_t len) {
  size_t i;
  if (len == 0 || len > MQTTB_STR_MAX) {
    return false; /* [MQTT-4.7.3-1] */
  }
  if (!mqttb_utf8_valid(s, len)) {
    return false;
  }
  for (i = 0; i < len; i++) {
    if (s[i] == '+') {
      /* [MQTT-4.7.1-3] '+' occupies an entire level */
      if (i > 0 && s[i - 1] != '/') {
        return false;
      }
      if (i + 1 < len && s[i + 1] != '/') {
        return false;
      }
    } else if (s[i] == '#') {
      /* [MQTT-4.7.1-2] '#' alone in the last level */
      if (i + 1 != len) {
        return false;
      }
      if (i > 0 && s[i - 1] != '/') {
        return false;
      }
    }
  }
  return true;
}

bool mqttb_topic_has_wildcard(const uint8_t *filter, size_t len) {
  return memchr(filter, '+', len) != NULL || memchr(filter, '#', len) != NULL;
}

size_t mqttb_topic_levels(const uint8_t *topic, size_t len) {
  size_t n = 1, i = 0;
  for (; len - i >= 8; i += 8) {
    uint64_t v;
    memcpy(&v, topic + i, 8);
    n += (size_t)__builtin_popcountll(zero_bytes(v ^ BYTES('/')));
  }
  for (; i < len; i++)
    n += topic[i] == '/';
  return n;
}

bool mqttb_sys_topic(const uint8_t *topic, size_t len) {
  return len >= 4 && memcmp(topic, "$SYS", 4) == 0 && (len == 4 || topic[4] == '/');
}
