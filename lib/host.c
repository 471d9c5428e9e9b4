/* SPDX-License-Identifier: MIT */
/* The application as a client: publishing, host subscribers and the
 * delivery of their messages. See host.h. */
#include "host.h"

#include <string.h>

#include "props.h"
#include "wire.h"

typedef struct mqttb_host_sub {
  mqttb_message_cb cb;
  void *user_data;
  mqttb_session *s;
  /* The map key: the bytes of cb, then of user_data. */
  char key[sizeof(mqttb_message_cb) + sizeof(void *)];
} mqttb_host_sub;

void mqttb_host_init(mqttb_host *h, mqttb_ctx *ctx, mqttb_sessions *sessions,
                     mqttb_router *router) {
  memset(h, 0, sizeof(*h));
  h->ctx = ctx;
  h->sessions = sessions;
  h->router = router;
}

static void sub_free(mqttb_host *h, mqttb_host_sub *hs) {
  mqttb_map_del(&h->subs, hs->key, sizeof(hs->key));
  mqttb_router_end_session(h->router, hs->s);
  mqttb_mem_free(&h->ctx->mem, hs);
}

void mqttb_host_free(mqttb_host *h) {
  if (!h->ctx)
    return; /* never initialised */
  h->closed = true;
  while (h->subs.count > 0) {
    for (uint32_t i = 0; i < h->subs.cap; i++) {
      if (h->subs.e[i].key) {
        sub_free(h, h->subs.e[i].val);
        break;
      }
    }
  }
  mqttb_map_free(&h->subs, &h->ctx->mem);
  mqttb_mem_free(&h->ctx->mem, h->props);
  h->props = NULL;
}

/* Whether the host calls may run now. */
static int usable(const mqttb_host *h) {
  if (h->closed || h->ctx->host_blocked)
    return MQTTB_ERR_INVALID_STATE;
  return 0;
}

/* ---------------------------------------------------------------- publish */

static bool utf8_opt(const char *s, size_t len) {
  return !s || mqttb_utf8_valid((const uint8_t *)s, len);
}

/* The MQTT 5 properties a message carries: their size, and written to out
 * (when not NULL). */
static size_t props_put(const mqttb_message *m, uint8_t *out) {
  size_t n = 0;
#define PUT(expr)                                                                                  \
  do {                                                                                             \
    uint8_t *o_ = out ? out + n : NULL;                                                            \
    n += (expr);                                                                                   \
  } while (0)
  if (m->payload_format)
    PUT(mqttb_prop_put_byte(o_, MQTTB_PROP_PAYLOAD_FORMAT, 1));
  if (m->content_type)
    PUT(mqttb_prop_put_str(o_, MQTTB_PROP_CONTENT_TYPE, (const uint8_t *)m->content_type,
                           m->content_type_len));
  if (m->response_topic)
    PUT(mqttb_prop_put_str(o_, MQTTB_PROP_RESPONSE_TOPIC, (const uint8_t *)m->response_topic,
                           m->response_topic_len));
  if (m->correlation_data)
    PUT(mqttb_prop_put_str(o_, MQTTB_PROP_CORRELATION_DATA, m->correlation_data,
                           m->correlation_data_len));
  for (size_t i = 0; i < m->user_property_count; i++) {
    const mqttb_user_property *u = &m->user_properties[i];
    PUT(mqttb_prop_put_pair(o_, MQTTB_PROP_USER_PROPERTY, (const uint8_t *)u->name, u->name_len,
                            (const uint8_t *)u->value, u->value_len));
  }
#undef PUT
  return n;
}

/* Why a message cannot be published, or NULL when it can. */
static const char *invalid(const mqttb_host *h, const mqttb_message *m, size_t tlen) {
  const mqttb_settings *st = &h->ctx->settings;
  const uint8_t *topic = (const uint8_t *)m->topic;
  if (!mqttb_topic_name_valid(topic, tlen))
    return "topic is not a valid topic name";
  if (st->max_topic_levels && mqttb_topic_levels(topic, tlen) > st->max_topic_levels)
    return "topic has more levels than max_topic_levels";
  if (m->qos < 0 || m->qos > 2 || (m->payload_format != 0 && m->payload_format != 1))
    return "QoS or payload format out of range";
  if (!m->payload && m->payload_len)
    return "no payload";
  if (m->payload_format == 1 && !mqttb_utf8_valid(m->payload, m->payload_len))
    return "payload is not the UTF-8 its payload format says";
  if (!utf8_opt(m->content_type, m->content_type_len) || m->content_type_len > MQTTB_STR_MAX)
    return "content type is not a UTF-8 string";
  if (m->response_topic &&
      !mqttb_topic_name_valid((const uint8_t *)m->response_topic, m->response_topic_len))
    return "response topic is not a valid topic name";
  if (m->correlation_data_len > MQTTB_STR_MAX || (!m->correlation_data && m->correlation_data_len))
    return "correlation data longer than 65535 bytes";
  if (m->user_property_count && !m->user_properties)
    return "no user properties";
  for (size_t i = 0; i < m->user_property_count; i++) {
    const mqttb_user_property *u = &m->user_properties[i];
    if (!u->name || !u->value || u->name_len > MQTTB_STR_MAX || u->value_len > MQTTB_STR_MAX ||
        !mqttb_utf8_valid((const uint8_t *)u->name, u->name_len) ||
        !mqttb_utf8_valid((const uint8_t *)u->value, u->value_len))
      return "a user property is not a pair of UTF-8 strings";
  }
  return NULL;
}

int mqttb_host_publish(mqttb_host *h, const mqttb_message *m) {
  int rv = usable(h);
  if (rv)
    return rv;
  if (!m || !m->topic)
    return MQTTB_ERR_INVALID_ARGUMENT;
  /* A delivered view's topic is not NUL-terminated: only its length counts. */
  size_t tlen = m->topic_len ? m->topic_len : strlen(m->topic);
  if (h->draining && h->depth >= MQTTB_HOST_MAX_DEPTH) {
    mqttb_log(h->ctx, MQTTB_LOG_WARNING,
              "application message to %.*s refused: published from deliveries nested %u deep",
              mqttb_log_cut(tlen), m->topic, (unsigned)h->depth);
    return MQTTB_ERR_QUOTA;
  }
  const char *why = invalid(h, m, tlen);
  /* What fits in one PUBLISH: topic, packet id, properties, payload. */
  size_t plen = why ? 0 : props_put(m, NULL);
  if (!why && (plen > MQTTB_MAX_REMAINING_LENGTH ||
               m->payload_len > MQTTB_MAX_REMAINING_LENGTH - 2 - tlen - 2 - 4 - 8 - plen))
    why = "message larger than a PUBLISH can carry";
  if (why) {
    mqttb_log(h->ctx, MQTTB_LOG_NOTICE, "application message to %.*s refused: %s",
              mqttb_log_cut(tlen), m->topic, why);
    return MQTTB_ERR_INVALID_ARGUMENT;
  }
  mqttb_msg *msg = mqttb_msg_new(&h->ctx->mem, (const uint8_t *)m->topic, tlen, m->payload,
                                 m->payload_len, NULL, plen, (uint8_t)m->qos, m->retain != 0);
  if (!msg)
    return MQTTB_ERR_NOMEM;
  if (plen)
    props_put(m, (uint8_t *)MQTTB_MSG_PROPS(msg));
  if (m->has_message_expiry)
    msg->expiry_at = h->ctx->now + (uint64_t)m->message_expiry * 1000u;
  size_t n = mqttb_router_publish_host(h->router, msg);
  mqttb_msg_unref(&h->ctx->mem, msg);
  if (n == MQTTB_ROUTER_NOMEM)
    return MQTTB_ERR_NOMEM;
  return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* ---------------------------------------------------------------- subscribe */

static void make_key(char *key, mqttb_message_cb cb, void *user_data) {
  memcpy(key, &cb, sizeof(cb));
  memcpy(key + sizeof(cb), &user_data, sizeof(user_data));
}

static mqttb_host_sub *find(const mqttb_host *h, mqttb_message_cb cb, void *user_data) {
  char key[sizeof(mqttb_message_cb) + sizeof(void *)];
  make_key(key, cb, user_data);
  return mqttb_map_get(&h->subs, key, sizeof(key));
}

/* Why a filter cannot be subscribed to, or NULL. */
static const char *bad_filter(const mqttb_host *h, const char *filter, size_t len, int options,
                              bool *shared) {
  const mqttb_settings *st = &h->ctx->settings;
  mqttb_slice name, real = {(const uint8_t *)filter, len};
  bool valid = true;
  *shared = mqttb_share_parse(filter, len, &name, &real, &valid);
  if (options & ~0x3F || (options & 3) == 3 || ((options >> 4) & 3) == 3)
    return "unknown option bits";
  if (!mqttb_topic_filter_valid((const uint8_t *)filter, len) || !valid)
    return "not a valid topic filter";
  if (*shared && !st->shared_subscriptions)
    return "shared subscriptions are turned off";
  if (*shared && (options & MQTTB_SUBOPT_NO_LOCAL))
    return "No Local on a shared subscription";
  if (!st->wildcard_subscriptions && mqttb_topic_has_wildcard(real.ptr, real.len))
    return "wildcard subscriptions are turned off";
  if (st->max_topic_levels && mqttb_topic_levels(real.ptr, real.len) > st->max_topic_levels)
    return "filter has more levels than max_topic_levels";
  return NULL;
}

int mqttb_host_subscribe(mqttb_host *h, const char *filter, int options, mqttb_message_cb cb,
                         void *user_data) {
  int rv = usable(h);
  if (rv)
    return rv;
  if (!filter || !cb)
    return MQTTB_ERR_INVALID_ARGUMENT;
  size_t len = strlen(filter);
  bool shared;
  const char *why = bad_filter(h, filter, len, options, &shared);
  if (why) {
    mqttb_log(h->ctx, MQTTB_LOG_NOTICE, "application subscription to %.*s refused: %s",
              mqttb_log_cut(len), filter, why);
    return MQTTB_ERR_INVALID_ARGUMENT;
  }
  const mqttb_mem *mem = &h->ctx->mem;
  mqttb_host_sub *hs = find(h, cb, user_data);
  bool made = false;
  if (!hs) {
    hs = mqttb_mem_calloc(mem, 1, sizeof(*hs));
    if (!hs)
      return MQTTB_ERR_NOMEM;
    hs->cb = cb;
    hs->user_data = user_data;
    make_key(hs->key, cb, user_data);
    hs->s = mqttb_session_new_host(h->sessions, hs);
    if (!hs->s || mqttb_map_put(&h->subs, mem, hs->key, sizeof(hs->key), hs) != 0) {
      if (hs->s)
        mqttb_session_del(hs->s);
      mqttb_mem_free(mem, hs);
      return MQTTB_ERR_NOMEM;
    }
    made = true;
  }
  uint8_t qos = (uint8_t)(options & 3);
  if (qos > h->ctx->settings.max_qos)
    qos = h->ctx->settings.max_qos;
  uint8_t opts = (uint8_t)(options & (MQTTB_SUBOPT_NO_LOCAL | MQTTB_SUBOPT_RETAIN_AS_PUBLISHED));
  bool existed = false;
  rv = mqttb_session_subscribe(hs->s, filter, len, qos, opts, 0, &existed);
  if (rv != 0) {
    if (made)
      sub_free(h, hs);
    return rv == MQTTB_ERR_NOMEM ? MQTTB_ERR_NOMEM : MQTTB_ERR_INVALID_ARGUMENT;
  }
  /* Retain Handling as in SUBSCRIBE; shared subscriptions get none. */
  int rh = (options >> 4) & 3;
  if (!shared && (rh == 0 || (rh == 1 && !existed))) {
    if (mqttb_router_send_retained(h->router, hs->s, filter, len, qos, 0) != 0)
      mqttb_log(h->ctx, MQTTB_LOG_WARNING,
                "out of memory: retained messages for the application's subscription to %.*s "
                "not all sent",
                mqttb_log_cut(len), filter);
    /* The router paces retained messages by the subscriber's output; the
     * application takes them all. */
    while (mqttb_session_retained_front(hs->s))
      mqttb_router_pump_retained(h->router, hs->s);
  }
  return MQTTB_OK;
}

int mqttb_host_unsubscribe(mqttb_host *h, const char *filter, mqttb_message_cb cb,
                           void *user_data) {
  int rv = usable(h);
  if (rv)
    return rv;
  if (!filter || !cb)
    return MQTTB_ERR_INVALID_ARGUMENT;
  mqttb_host_sub *hs = find(h, cb, user_data);
  if (!hs || !mqttb_session_unsubscribe(hs->s, filter, strlen(filter)))
    return MQTTB_ERR_NOT_FOUND;
  if (hs->s->nsubs == 0)
    sub_free(h, hs); /* what still waits for it is dropped */
  return MQTTB_OK;
}

/* ---------------------------------------------------------------- delivery */

/* The view of a delivery; false on out-of-memory for its user properties. */
static bool view(mqttb_host *h, const mqttb_host_dlv *d, mqttb_message *v) {
  const mqttb_msg *msg = d->msg;
  memset(v, 0, sizeof(*v));
  v->topic = MQTTB_MSG_TOPIC(msg);
  v->topic_len = msg->topic_len;
  v->payload = MQTTB_MSG_PAYLOAD(msg);
  v->payload_len = msg->payload_len;
  v->qos = d->qos;
  v->retain = d->retain;
  if (msg->expiry_at != UINT64_MAX) {
    uint64_t now = h->ctx->now;
    uint64_t left = msg->expiry_at > now ? msg->expiry_at - now : 0;
    v->has_message_expiry = 1;
    v->message_expiry = (uint32_t)((left + 999u) / 1000u);
  }
  mqttb_slice props = {MQTTB_MSG_PROPS(msg), msg->props_len};
  size_t pos = 0, nuser = 0;
  mqttb_prop p;
  while (mqttb_props_next(&props, &pos, &p)) {
    switch (p.id) {
    case MQTTB_PROP_PAYLOAD_FORMAT:
      v->payload_format = (int)p.value;
      break;
    case MQTTB_PROP_CONTENT_TYPE:
      v->content_type = (const char *)p.a.ptr;
      v->content_type_len = p.a.len;
      break;
    case MQTTB_PROP_RESPONSE_TOPIC:
      v->response_topic = (const char *)p.a.ptr;
      v->response_topic_len = p.a.len;
      break;
    case MQTTB_PROP_CORRELATION_DATA:
      v->correlation_data = p.a.ptr;
      v->correlation_data_len = p.a.len;
      break;
    case MQTTB_PROP_USER_PROPERTY: {
      void *arr = h->props;
      if (mqttb_mem_grow(&h->ctx->mem, &arr, &h->props_cap, nuser + 1, sizeof(*h->props)) != 0)
        return false;
      h->props = arr;
      h->props[nuser++] =
          (mqttb_user_property){(const char *)p.a.ptr, p.a.len, (const char *)p.b.ptr, p.b.len};
      break;
    }
    default:
      break;
    }
  }
  v->user_properties = nuser ? h->props : NULL;
  v->user_property_count = nuser;
  return true;
}

void mqttb_host_drain(mqttb_host *h) {
  mqttb_ctx *ctx = h->ctx;
  if (h->draining || ctx->in_callback || h->closed)
    return;
  h->draining = true;
  mqttb_host_dlv d;
  while (mqttb_sessions_host_pop(h->sessions, &d)) {
    mqttb_host_sub *hs = d.s->host;
    mqttb_message v;
    if (view(h, &d, &v)) {
      h->depth = d.depth;
      h->sessions->host_depth = (uint8_t)(d.depth + 1);
      MQTTB_CALLBACK(ctx, hs->cb(ctx->broker, &v, hs->user_data));
      h->sessions->host_depth = 0;
    } else {
      ctx->stats.publish_dropped++;
      mqttb_log(ctx, MQTTB_LOG_WARNING, "out of memory: dropped a message for the application");
    }
    mqttb_msg_unref(&ctx->mem, d.msg);
  }
  h->depth = 0;
  h->draining = false;
}
