/* SPDX-License-Identifier: MIT */
/* MQTT 5 client helpers for the scenario tests; each function is described
 * in v5.h. */
#include "v5.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Property blocks                                                         */
/* ---------------------------------------------------------------------- */

pb *pb_byte(pb *p, uint8_t id, uint8_t v) {
  p->n += mqttb_prop_put_byte(p->b + p->n, id, v);
  return p;
}
pb *pb_u16(pb *p, uint8_t id, uint16_t v) {
  p->n += mqttb_prop_put_u16(p->b + p->n, id, v);
  return p;
}
pb *pb_u32(pb *p, uint8_t id, uint32_t v) {
  p->n += mqttb_prop_put_u32(p->b + p->n, id, v);
  return p;
}
pb *pb_var(pb *p, uint8_t id, uint32_t v) {
  p->n += mqttb_prop_put_varint(p->b + p->n, id, v);
  return p;
}
pb *pb_bin(pb *p, uint8_t id, const void *d, size_t len) {
  p->n += mqttb_prop_put_str(p->b + p->n, id, d, len);
  return p;
}
pb *pb_str(pb *p, uint8_t id, const char *s) {
  return pb_bin(p, id, s, strlen(s));
}
/* Append a string with its two-byte length. */
static void put_s(pb *p, const char *s) {
  size_t n = strlen(s);
  p->b[p->n++] = (uint8_t)(n >> 8);
  p->b[p->n++] = (uint8_t)n;
  memcpy(p->b + p->n, s, n);
  p->n += n;
}
pb *pb_pair(pb *p, const char *k, const char *v) {
  p->b[p->n++] = MQTTB_PROP_USER_PROPERTY;
  put_s(p, k);
  put_s(p, v);
  return p;
}
mqttb_slice pb_slice(const pb *p) {
  mqttb_slice s = {p ? p->b : NULL, p ? p->n : 0};
  return s;
}
void pb_copy(pb *dst, mqttb_slice s) {
  cr_assert(le(sz, s.len, sizeof(dst->b)));
  dst->n = s.len;
  if (s.len)
    memcpy(dst->b, s.ptr, s.len);
}
bool pb_find(const pb *p, uint8_t id, mqttb_prop *out) {
  mqttb_slice s = pb_slice(p);
  return mqttb_props_find(&s, id, out);
}
size_t pb_count(const pb *p, uint8_t id) {
  mqttb_slice s = pb_slice(p);
  size_t pos = 0, n = 0;
  mqttb_prop q;
  while (mqttb_props_next(&s, &pos, &q))
    if (q.id == id)
      n++;
  return n;
}
long pb_int(const pb *p, uint8_t id) {
  mqttb_prop q;
  return pb_find(p, id, &q) ? (long)q.value : -1;
}
bool pb_str_is(const pb *p, uint8_t id, const char *v) {
  mqttb_prop q;
  return pb_find(p, id, &q) && slice_eq(q.a, v);
}

/* ---------------------------------------------------------------------- */
/* Clients                                                                 */
/* ---------------------------------------------------------------------- */

static uint16_t pid_ctr = 30000;

uint16_t v5_next_pid(void) {
  uint16_t p = pid_ctr++;
  if (pid_ctr == 0)
    pid_ctr = 1;
  return p;
}

mqttb_slice v5_slice(const char *s) {
  mqttb_slice r = {(const uint8_t *)s, s ? strlen(s) : 0};
  return r;
}

int send_connect5(tc *c, const c5o *o) {
  mqttb_connect ck;
  memset(&ck, 0, sizeof(ck));
  ck.level = 5;
  ck.protocol_name = v5_slice("MQTT");
  ck.clean = o->clean;
  ck.keepalive = o->keepalive;
  ck.client_id = v5_slice(o->id ? o->id : "");
  ck.props = pb_slice(o->props);
  if (o->will_topic) {
    ck.will = true;
    ck.will_topic = v5_slice(o->will_topic);
    ck.will_payload = v5_slice(o->will_payload ? o->will_payload : "");
    ck.will_qos = o->will_qos;
    ck.will_retain = o->will_retain;
    ck.will_props = pb_slice(o->will_props);
  }
  if (o->username) {
    ck.has_username = true;
    ck.username = v5_slice(o->username);
  }
  if (o->password) {
    ck.has_password = true;
    ck.password = v5_slice(o->password);
  }
  size_t n = mqttb_connect_size(&ck);
  uint8_t *buf = malloc(n);
  cr_assert(eq(sz, mqttb_encode_connect(buf, &ck), n));
  int rv = tc_send(c, buf, n);
  free(buf);
  return rv;
}

int read_connack5(tc *c, connack5 *a) {
  connack5 tmp;
  if (!a)
    a = &tmp;
  memset(a, 0, sizeof(*a));
  if (!tc_read(c) || c->f.type != MQTTB_PKT_CONNACK)
    return -1;
  cr_assert(ge(u32, c->f.remaining, 3), "an MQTT 5 CONNACK carries a property length");
  cr_assert(eq(u8, c->body[0] & 0xFE, 0), "CONNACK reserved flag bits set");
  a->sp = (c->body[0] & 1) != 0;
  a->reason = c->body[1];
  size_t pos = 2;
  mqttb_slice props;
  cr_assert(eq(int, mqttb_props_read(c->body, c->f.remaining, &pos, MQTTB_PKT_CONNACK, &props),
               MQTTB_CODEC_OK),
            "CONNACK properties invalid");
  cr_assert(eq(sz, pos, c->f.remaining), "bytes after the CONNACK properties");
  pb_copy(&a->props, props);
  return a->reason;
}

int connect5(tc *c, const c5o *o, connack5 *a) {
  send_connect5(c, o);
  return read_connack5(c, a);
}

pb expiry_props(uint32_t expiry) {
  pb p = {.n = 0};
  if (expiry)
    pb_u32(&p, MQTTB_PROP_SESSION_EXPIRY, expiry);
  return p;
}

tc *open5p(tb *bed, const char *id, bool clean, const pb *props, bool *sp) {
  tc *c = tc_new(bed);
  c5o o = {.id = id, .clean = clean, .props = props};
  connack5 a;
  cr_assert(eq(int, connect5(c, &o, &a), 0), "MQTT 5 CONNECT of %s refused", id);
  if (sp)
    *sp = a.sp;
  return c;
}

tc *open5(tb *bed, const char *id, uint32_t expiry) {
  pb p = expiry_props(expiry);
  return open5p(bed, id, true, &p, NULL);
}

tc *resume5(tb *bed, const char *id, uint32_t expiry, bool *sp) {
  pb p = expiry_props(expiry);
  return open5p(bed, id, false, &p, sp);
}

void send_subscribe5n(tc *c, const char *const *filters, const uint8_t *opts, size_t n,
                      uint32_t sub_id, uint16_t pid) {
  uint8_t buf[2048];
  pb props = {.n = 0};
  if (sub_id)
    pb_var(&props, MQTTB_PROP_SUBSCRIPTION_ID, sub_id);
  size_t rem = 2 + mqttb_codec_varint_size((uint32_t)props.n) + props.n;
  for (size_t i = 0; i < n; i++)
    rem += 2 + strlen(filters[i]) + 1;
  size_t k = 0;
  buf[k++] = 0x82;
  k += mqttb_codec_varint_encode(buf + k, (uint32_t)rem);
  buf[k++] = (uint8_t)(pid >> 8);
  buf[k++] = (uint8_t)pid;
  k += mqttb_codec_varint_encode(buf + k, (uint32_t)props.n);
  memcpy(buf + k, props.b, props.n);
  k += props.n;
  for (size_t i = 0; i < n; i++) {
    size_t fl = strlen(filters[i]);
    buf[k++] = (uint8_t)(fl >> 8);
    buf[k++] = (uint8_t)fl;
    memcpy(buf + k, filters[i], fl);
    k += fl;
    buf[k++] = opts[i];
  }
  cr_assert(le(sz, k, sizeof(buf)));
  tc_send(c, buf, k);
}

bool subscribe5n(tc *c, const char *const *filters, const uint8_t *opts, size_t n, uint32_t sub_id,
                 uint8_t *codes) {
  uint16_t pid = v5_next_pid();
  send_subscribe5n(c, filters, opts, n, sub_id, pid);
  if (!tc_read_type(c, MQTTB_PKT_SUBACK))
    return false;
  cr_assert(ge(u32, c->f.remaining, 3));
  cr_assert(eq(u16, (uint16_t)(c->body[0] << 8 | c->body[1]), pid), "SUBACK packet id");
  size_t pos = 2;
  mqttb_slice sp;
  cr_assert(eq(int, mqttb_props_read(c->body, c->f.remaining, &pos, MQTTB_PKT_SUBACK, &sp), 0));
  cr_assert(eq(sz, c->f.remaining - pos, n), "one SUBACK reason code per filter");
  memcpy(codes, c->body + pos, n);
  return true;
}

int subscribe5(tc *c, const char *filter, uint8_t opts, uint32_t sub_id) {
  uint8_t code;
  if (!subscribe5n(c, &filter, &opts, 1, sub_id, &code))
    return -1;
  return code;
}

bool unsubscribe5n(tc *c, const char *const *filters, size_t n, uint8_t *codes) {
  uint8_t buf[1024];
  size_t rem = 2 + 1;
  for (size_t i = 0; i < n; i++)
    rem += 2 + strlen(filters[i]);
  size_t k = 0;
  buf[k++] = 0xA2;
  k += mqttb_codec_varint_encode(buf + k, (uint32_t)rem);
  uint16_t pid = v5_next_pid();
  buf[k++] = (uint8_t)(pid >> 8);
  buf[k++] = (uint8_t)pid;
  buf[k++] = 0; /* no properties */
  for (size_t i = 0; i < n; i++) {
    size_t fl = strlen(filters[i]);
    buf[k++] = (uint8_t)(fl >> 8);
    buf[k++] = (uint8_t)fl;
    memcpy(buf + k, filters[i], fl);
    k += fl;
  }
  tc_send(c, buf, k);
  if (!tc_read_type(c, MQTTB_PKT_UNSUBACK))
    return false;
  cr_assert(eq(u16, (uint16_t)(c->body[0] << 8 | c->body[1]), pid), "UNSUBACK packet id");
  size_t pos = 2;
  mqttb_slice sp;
  cr_assert(eq(int, mqttb_props_read(c->body, c->f.remaining, &pos, MQTTB_PKT_UNSUBACK, &sp), 0));
  cr_assert(eq(sz, c->f.remaining - pos, n), "one UNSUBACK reason code per filter");
  memcpy(codes, c->body + pos, n);
  return true;
}

int unsubscribe5(tc *c, const char *filter) {
  uint8_t code;
  if (!unsubscribe5n(c, &filter, 1, &code))
    return -1;
  return code;
}

int send_pub5(tc *c, const char *topic, const void *payload, size_t plen, uint8_t qos, bool retain,
              uint16_t pid, const pb *props) {
  mqttb_publish p;
  memset(&p, 0, sizeof(p));
  p.v5 = true;
  p.props = pb_slice(props);
  p.qos = qos;
  p.retain = retain;
  p.topic = v5_slice(topic);
  p.packet_id = pid;
  p.payload.ptr = payload;
  p.payload.len = plen;
  size_t n = mqttb_publish_size(&p);
  uint8_t *buf = malloc(n);
  cr_assert(eq(sz, mqttb_encode_publish(buf, &p), n));
  int rv = tc_send(c, buf, n);
  free(buf);
  return rv;
}

bool read_ack5(tc *c, uint8_t type, uint16_t *pid, uint8_t *reason) {
  if (!tc_read(c) || c->f.type != type)
    return false;
  mqttb_slice props;
  uint16_t id;
  uint8_t r;
  cr_assert(eq(int, mqttb_decode_ack5(type, c->body, c->f.remaining, &id, &r, &props), 0),
            "bad acknowledgement from the broker");
  if (pid)
    *pid = id;
  if (reason)
    *reason = r;
  return true;
}

bool read_ack5_skip(tc *c, uint8_t type, uint16_t *pid, uint8_t *reason) {
  if (!tc_read_type(c, type))
    return false;
  mqttb_slice props;
  uint16_t id;
  uint8_t r;
  cr_assert(eq(int, mqttb_decode_ack5(type, c->body, c->f.remaining, &id, &r, &props), 0),
            "bad acknowledgement from the broker");
  if (pid)
    *pid = id;
  if (reason)
    *reason = r;
  return true;
}

void send_ack5(tc *c, uint8_t type, uint16_t pid, uint8_t reason) {
  uint8_t buf[8];
  size_t n = mqttb_encode_ack5(buf, type, pid, reason);
  tc_send(c, buf, n);
}

int pub5(tc *c, const char *topic, const char *payload, uint8_t qos, bool retain, const pb *props) {
  uint16_t pid = qos ? v5_next_pid() : 0;
  send_pub5(c, topic, payload, strlen(payload), qos, retain, pid, props);
  if (qos == 0)
    return 0;
  uint16_t rpid;
  uint8_t reason;
  if (!read_ack5_skip(c, qos == 1 ? MQTTB_PKT_PUBACK : MQTTB_PKT_PUBREC, &rpid, &reason) ||
      rpid != pid)
    return -1;
  if (qos == 2 && reason < 0x80) {
    send_ack5(c, MQTTB_PKT_PUBREL, pid, 0);
    uint8_t r2;
    if (!read_ack5_skip(c, MQTTB_PKT_PUBCOMP, &rpid, &r2) || rpid != pid || r2 != 0)
      return -1;
  }
  return reason;
}

bool read_pub5(tc *c, rpub *r) {
  if (!tc_read(c) || c->f.type != MQTTB_PKT_PUBLISH)
    return false;
  mqttb_publish p;
  cr_assert(
      eq(int, mqttb_decode_publish_v(c->f.flags, c->body, c->f.remaining, 5, &p), MQTTB_CODEC_OK),
      "the broker sent an invalid MQTT 5 PUBLISH");
  memset(r, 0, sizeof(*r));
  r->qos = p.qos;
  r->retain = p.retain;
  r->dup = p.dup;
  r->pid = p.packet_id;
  cr_assert(lt(sz, p.topic.len, sizeof(r->topic)));
  memcpy(r->topic, p.topic.ptr, p.topic.len);
  r->tlen = p.topic.len;
  cr_assert(le(sz, p.payload.len, sizeof(r->payload)));
  if (p.payload.len)
    memcpy(r->payload, p.payload.ptr, p.payload.len);
  r->plen = p.payload.len;
  pb_copy(&r->props, p.props);
  r->remaining = c->f.remaining;
  return true;
}

bool payload_is(const rpub *r, const char *s) {
  return r->plen == strlen(s) && memcmp(r->payload, s, r->plen) == 0;
}

void expect_pub5(tc *c, rpub *r, const char *topic, const char *payload) {
  cr_assert(read_pub5(c, r), "expected a PUBLISH on %s", topic);
  cr_assert(eq(str, r->topic, (char *)topic));
  cr_assert(payload_is(r, payload), "payload %.*s, expected %s", (int)r->plen,
            (const char *)r->payload, payload);
}

void ack_pub5(tc *c, const rpub *r) {
  if (r->qos == 1) {
    send_ack5(c, MQTTB_PKT_PUBACK, r->pid, 0);
  } else if (r->qos == 2) {
    send_ack5(c, MQTTB_PKT_PUBREC, r->pid, 0);
    uint16_t pid;
    cr_assert(read_ack5(c, MQTTB_PKT_PUBREL, &pid, NULL) && pid == r->pid, "expected PUBREL");
    send_ack5(c, MQTTB_PKT_PUBCOMP, r->pid, 0);
  }
}

int read_disconnect5(tc *c, pb *props) {
  if (!tc_read(c) || c->f.type != MQTTB_PKT_DISCONNECT)
    return -1;
  uint8_t reason;
  mqttb_slice p;
  cr_assert(
      eq(int, mqttb_decode_reason_props(MQTTB_PKT_DISCONNECT, c->body, c->f.remaining, &reason, &p),
         0));
  if (props)
    pb_copy(props, p);
  return reason;
}

void send_disconnect5(tc *c, uint8_t reason, const pb *props) {
  uint8_t buf[2100];
  size_t n = mqttb_encode_reason_props(buf, MQTTB_PKT_DISCONNECT, reason, props ? props->b : NULL,
                                       props ? props->n : 0);
  tc_send(c, buf, n);
}

void send_auth5(tc *c, uint8_t reason, const char *method, const char *data) {
  pb p = {.n = 0};
  if (method)
    pb_str(&p, MQTTB_PROP_AUTH_METHOD, method);
  if (data)
    pb_str(&p, MQTTB_PROP_AUTH_DATA, data);
  uint8_t buf[2100];
  size_t n = mqttb_encode_reason_props(buf, MQTTB_PKT_AUTH, reason, p.b, p.n);
  tc_send(c, buf, n);
}

int read_auth5(tc *c, pb *props) {
  if (!tc_read(c) || c->f.type != MQTTB_PKT_AUTH)
    return -1;
  uint8_t reason;
  mqttb_slice p;
  cr_assert(
      eq(int, mqttb_decode_reason_props(MQTTB_PKT_AUTH, c->body, c->f.remaining, &reason, &p), 0));
  if (props)
    pb_copy(props, p);
  return reason;
}
