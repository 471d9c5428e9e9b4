/* SPDX-License-Identifier: MIT */
/* Rebuilding from store records, and snapshots. See restore.h. */
#include "restore.h"

#include <stdlib.h>
#include <string.h>

#include "props.h"
#include "wire.h"

/* A delivery between its records and the end of the restore. */
struct mqttb_rdlv {
  uint64_t id; /* the map's key */
  uint64_t session;
  mqttb_msg *msg; /* a reference and a recorded one; NULL past PUBREC */
  uint32_t *ids;
  char *share;
  uint16_t nids, share_len, pid;
  uint8_t qos, state;
  bool retain;
};

#define KEY(p) ((const char *)(p)), sizeof(uint64_t)

void mqttb_restore_init(mqttb_restore *r, mqttb_ctx *ctx, mqttb_store *store,
                        mqttb_sessions *sessions, mqttb_router *router) {
  memset(r, 0, sizeof(*r));
  r->ctx = ctx;
  r->store = store;
  r->sessions = sessions;
  r->router = router;
}

static void rdlv_free(mqttb_restore *r, struct mqttb_rdlv *d) {
  const mqttb_mem *mem = &r->ctx->mem;
  if (d->msg) {
    mqttb_store_msg_unref(r->store, d->msg);
    mqttb_msg_unref(mem, d->msg);
  }
  mqttb_mem_free(mem, d->ids);
  mqttb_mem_free(mem, d->share);
  mqttb_mem_free(mem, d);
}

/* Empty a map, calling fn for each value. */
static void drain(mqttb_restore *r, mqttb_map *m, void (*fn)(mqttb_restore *r, void *v)) {
  for (uint32_t i = 0; i < m->cap; i++)
    if (m->e[i].key && fn)
      fn(r, m->e[i].val);
  mqttb_map_free(m, &r->ctx->mem);
}

static void drop_dlv(mqttb_restore *r, void *v) {
  rdlv_free(r, v);
}

static void drop_msg(mqttb_restore *r, void *v) {
  mqttb_msg_unref(&r->ctx->mem, v);
}

void mqttb_restore_free(mqttb_restore *r) {
  if (!r->ctx)
    return;
  drain(r, &r->dlvs, drop_dlv);
  drain(r, &r->msgs, drop_msg);
  drain(r, &r->sessions_by_id, NULL);
  drain(r, &r->online, NULL);
}

/* ---------------------------------------------------------------- applying */

typedef struct rec_view {
  mqttb_restore *r;
  uint8_t type;
  mqttb_rec_field f[MQTTB_F_MAX + 1];
} rec_view;

static const char *const type_names[] = {
    "?",        "MSG",     "MSG_DEL", "SESSION",     "SESSION_END", "SUB",        "UNSUB", "DLV",
    "DLV_SENT", "DLV_DEL", "QOS2_IN", "QOS2_IN_DEL", "RETAIN",      "RETAIN_DEL", "COMMIT"};

static int corrupt(rec_view *v, const char *why) {
  mqttb_restore *r = v->r;
  r->refused++;
  mqttb_log(r->ctx, MQTTB_LOG_ERROR, "store record %llu (%s) refused: %s",
            (unsigned long long)(r->applied + r->refused),
            v->type <= MQTTB_REC_TYPE_MAX ? type_names[v->type] : "unknown type", why);
  return MQTTB_ERR_STORE_CORRUPT;
}

/* An integer field, required or with a default; false when it is there but
 * too long or above max. */
static bool get(const rec_view *v, int tag, uint64_t max, uint64_t *out, bool required) {
  const mqttb_rec_field *f = &v->f[tag];
  if (!f->present) {
    *out = 0;
    return !required;
  }
  return mqttb_rec_get_uint(f, out) && *out <= max;
}

/* An id field (non-zero), which raises the highest id seen. */
static bool get_id(rec_view *v, int tag, uint64_t *out) {
  if (!get(v, tag, UINT64_MAX - 1, out, true) || *out == 0)
    return false;
  if (*out > v->r->max_id)
    v->r->max_id = *out;
  return true;
}

static mqttb_msg *find_msg(mqttb_restore *r, uint64_t id) {
  return mqttb_map_get(&r->msgs, KEY(&id));
}

static mqttb_session *find_session(mqttb_restore *r, uint64_t id) {
  return mqttb_map_get(&r->sessions_by_id, KEY(&id));
}

/* The props of a message are a PUBLISH property block without its length. */
static bool props_ok(const mqttb_ctx *ctx, const mqttb_rec_field *f) {
  if (!f->present || f->len == 0)
    return true;
  if (f->len > MQTTB_MAX_REMAINING_LENGTH)
    return false;
  uint8_t *buf = mqttb_mem_malloc(&ctx->mem, f->len + 4);
  if (!buf)
    return false;
  size_t n = mqttb_codec_varint_encode(buf, (uint32_t)f->len);
  memcpy(buf + n, f->p, f->len);
  size_t pos = 0;
  mqttb_slice props;
  bool ok =
      mqttb_props_read(buf, n + f->len, &pos, MQTTB_PKT_PUBLISH, &props) == 0 && pos == n + f->len;
  mqttb_mem_free(&ctx->mem, buf);
  return ok;
}

static int apply_msg(rec_view *v) {
  mqttb_restore *r = v->r;
  uint64_t id, qos, retain, expiry_at, interval, pending;
  const mqttb_rec_field *topic = &v->f[MQTTB_F_MSG_TOPIC], *payload = &v->f[MQTTB_F_MSG_PAYLOAD],
                        *props = &v->f[MQTTB_F_MSG_PROPS];
  if (!get_id(v, MQTTB_F_MSG_ID, &id))
    return corrupt(v, "no message id");
  if (!get(v, MQTTB_F_MSG_QOS, 2, &qos, false) || !get(v, MQTTB_F_MSG_RETAIN, 1, &retain, false) ||
      !get(v, MQTTB_F_MSG_EXPIRY_AT, UINT64_MAX, &expiry_at, false) ||
      !get(v, MQTTB_F_MSG_EXPIRY_INTERVAL, UINT32_MAX, &interval, false) ||
      !get(v, MQTTB_F_MSG_PENDING, 1, &pending, false))
    return corrupt(v, "a field out of range");
  if (!topic->present || topic->len == 0 || topic->len > UINT16_MAX ||
      !mqttb_topic_name_valid(topic->p, topic->len))
    return corrupt(v, "no valid topic name");
  if (payload->len > MQTTB_MAX_REMAINING_LENGTH || !props_ok(r->ctx, props))
    return corrupt(v, "payload or properties not valid");
  if (find_msg(r, id))
    return corrupt(v, "message id already in use");
  mqttb_msg *m = mqttb_msg_new(&r->ctx->mem, topic->p, topic->len, payload->p, payload->len,
                               props->p, props->len, (uint8_t)qos, retain != 0);
  if (!m)
    return MQTTB_ERR_NOMEM;
  m->store_id = id;
  m->store_pending = pending != 0;
  m->expiry_at = mqttb_store_local(r->store, expiry_at);
  m->expiry_interval = (uint32_t)interval;
  if (mqttb_map_put(&r->msgs, &r->ctx->mem, KEY(&m->store_id), m) != 0) {
    mqttb_msg_unref(&r->ctx->mem, m);
    return MQTTB_ERR_NOMEM;
  }
  return 0;
}

static int apply_msg_del(rec_view *v) {
  uint64_t id;
  if (!get_id(v, MQTTB_F_MSG_ID, &id))
    return corrupt(v, "no message id");
  mqttb_msg *m = mqttb_map_del(&v->r->msgs, KEY(&id));
  if (!m)
    return corrupt(v, "no such message");
  mqttb_msg_unref(&v->r->ctx->mem, m);
  return 0;
}

static void session_end(mqttb_restore *r, mqttb_session *s) {
  mqttb_map_del(&r->sessions_by_id, KEY(&s->store_id));
  mqttb_map_del(&r->online, KEY(&s->store_id));
  mqttb_session_del(s);
}

static int apply_session(rec_view *v) {
  mqttb_restore *r = v->r;
  const mqttb_mem *mem = &r->ctx->mem;
  uint64_t id, interval, offline, expires_at, will_id, will_at;
  const mqttb_rec_field *cid = &v->f[MQTTB_F_S_CLIENT];
  if (!get_id(v, MQTTB_F_S_ID, &id))
    return corrupt(v, "no session id");
  if (!get(v, MQTTB_F_S_EXPIRY_INTERVAL, UINT32_MAX, &interval, true) || interval == 0 ||
      !get(v, MQTTB_F_S_OFFLINE, 1, &offline, false) ||
      !get(v, MQTTB_F_S_EXPIRES_AT, UINT64_MAX, &expires_at, false) ||
      !get(v, MQTTB_F_S_WILL, UINT64_MAX, &will_id, false) ||
      !get(v, MQTTB_F_S_WILL_AT, UINT64_MAX, &will_at, false))
    return corrupt(v, "a field out of range");
  if (!cid->present || cid->len > UINT16_MAX || !mqttb_utf8_valid(cid->p, cid->len))
    return corrupt(v, "no valid client identifier");
  mqttb_msg *will = will_id ? find_msg(r, will_id) : NULL;
  if (will_id && !will)
    return corrupt(v, "its will is no known message");
  mqttb_session *s = find_session(r, id);
  if (s && (s->id_len != cid->len || memcmp(s->client_id, cid->p, cid->len) != 0))
    return corrupt(v, "session id of another client");
  if (!s) {
    mqttb_session *old = mqttb_sessions_find(r->sessions, (const char *)cid->p, cid->len);
    if (old && old->store_id && find_session(r, old->store_id) == old)
      session_end(r, old); /* replaced by a new session of that client */
    s = mqttb_session_new(r->sessions, (const char *)cid->p, cid->len);
    if (!s)
      return MQTTB_ERR_NOMEM;
    s->store_id = id;
    if (mqttb_map_put(&r->sessions_by_id, mem, KEY(&s->store_id), s) != 0) {
      mqttb_session_del(s);
      return MQTTB_ERR_NOMEM;
    }
  }
  s->expiry_interval = (uint32_t)interval;
  s->expires_at = offline ? mqttb_store_local(r->store, expires_at) : UINT64_MAX;
  if (offline)
    mqttb_map_del(&r->online, KEY(&s->store_id));
  else if (!mqttb_map_get(&r->online, KEY(&s->store_id)) &&
           mqttb_map_put(&r->online, mem, KEY(&s->store_id), s) != 0)
    return MQTTB_ERR_NOMEM; /* (a map holds a key once only if put once) */
  /* The delayed will, held as the session's and as the record's. */
  mqttb_session_drop_will(s);
  if (s->store_will) {
    mqttb_store_msg_unref(r->store, s->store_will);
    mqttb_msg_unref(mem, s->store_will);
    s->store_will = NULL;
  }
  if (will) {
    s->will = mqttb_msg_ref(will);
    s->will_at = mqttb_store_local(r->store, will_at);
    s->store_will = mqttb_msg_ref(will);
    mqttb_store_msg_ref(r->store, will);
  }
  return 0;
}

static int apply_session_end(rec_view *v) {
  uint64_t id;
  if (!get_id(v, MQTTB_F_S_ID, &id))
    return corrupt(v, "no session id");
  mqttb_session *s = find_session(v->r, id);
  if (!s)
    return corrupt(v, "no such session");
  session_end(v->r, s);
  return 0;
}

static int apply_sub(rec_view *v, bool add) {
  mqttb_restore *r = v->r;
  uint64_t id, qos, opts, sub_id;
  const mqttb_rec_field *f = &v->f[MQTTB_F_SUB_FILTER];
  if (!get_id(v, MQTTB_F_S_ID, &id))
    return corrupt(v, "no session id");
  mqttb_session *s = find_session(r, id);
  if (!s)
    return corrupt(v, "no such session");
  if (!f->present || f->len == 0 || f->len > UINT16_MAX || !mqttb_topic_filter_valid(f->p, f->len))
    return corrupt(v, "no valid topic filter");
  if (!add) {
    mqttb_session_unsubscribe(s, (const char *)f->p, f->len);
    return 0;
  }
  if (!get(v, MQTTB_F_SUB_QOS, 2, &qos, false) || !get(v, MQTTB_F_SUB_OPTS, 0xff, &opts, false) ||
      !get(v, MQTTB_F_SUB_ID, 268435455u, &sub_id, false))
    return corrupt(v, "a field out of range");
  bool existed;
  int rv =
      mqttb_session_subscribe(s, (const char *)f->p, f->len, (uint8_t)qos,
                              (uint8_t)opts & (MQTTB_SUB_NO_LOCAL | MQTTB_SUB_RETAIN_AS_PUBLISHED),
                              (uint32_t)sub_id, &existed);
  if (rv == MQTTB_ERR_INVALID_ARGUMENT)
    return corrupt(v, "not a valid shared subscription");
  if (rv == MQTTB_ERR_QUOTA)
    mqttb_log(r->ctx, MQTTB_LOG_WARNING,
              "restore: session %.*s holds more subscriptions than max_subscriptions; "
              "%.*s dropped",
              mqttb_log_cut(s->id_len), s->client_id, mqttb_log_cut(f->len), (const char *)f->p);
  return rv;
}

static bool state_ok(uint64_t qos, uint64_t state) {
  return qos == 1 ? state == MQTTB_INF_PUBACK
                  : qos == 2 && (state == MQTTB_INF_PUBREC || state == MQTTB_INF_PUBCOMP);
}

static int apply_dlv(rec_view *v) {
  mqttb_restore *r = v->r;
  const mqttb_mem *mem = &r->ctx->mem;
  uint64_t id, sid, mid, qos, retain, pid, state;
  const mqttb_rec_field *ids = &v->f[MQTTB_F_D_SUB_IDS], *share = &v->f[MQTTB_F_D_SHARE];
  if (!get_id(v, MQTTB_F_D_ID, &id) || !get_id(v, MQTTB_F_D_SESSION, &sid))
    return corrupt(v, "no delivery or session id");
  if (!get(v, MQTTB_F_D_MSG, UINT64_MAX, &mid, false) || !get(v, MQTTB_F_D_QOS, 2, &qos, false) ||
      !get(v, MQTTB_F_D_RETAIN, 1, &retain, false) ||
      !get(v, MQTTB_F_D_PID, UINT16_MAX, &pid, false) ||
      !get(v, MQTTB_F_D_STATE, MQTTB_INF_PUBCOMP, &state, false))
    return corrupt(v, "a field out of range");
  if (pid && !state_ok(qos, state))
    return corrupt(v, "in flight in a state its QoS does not have");
  if (ids->len % 4 || ids->len / 4 > UINT16_MAX || share->len > UINT16_MAX)
    return corrupt(v, "subscription identifiers or group malformed");
  if (!find_session(r, sid))
    return corrupt(v, "no such session");
  if (mqttb_map_get(&r->dlvs, KEY(&id)))
    return corrupt(v, "delivery id already in use");
  mqttb_msg *m = mid ? find_msg(r, mid) : NULL;
  if (!m && !(pid && state == MQTTB_INF_PUBCOMP))
    return corrupt(v, "no known message");
  struct mqttb_rdlv *d = mqttb_mem_calloc(mem, 1, sizeof(*d));
  if (!d)
    return MQTTB_ERR_NOMEM;
  d->id = id;
  d->session = sid;
  d->nids = (uint16_t)(ids->len / 4);
  d->qos = (uint8_t)qos;
  d->retain = retain != 0;
  d->pid = (uint16_t)pid;
  d->state = (uint8_t)state;
  if ((d->nids && !(d->ids = mqttb_mem_malloc(mem, ids->len))) ||
      (share->len && !(d->share = mqttb_mem_malloc(mem, share->len))) ||
      mqttb_map_put(&r->dlvs, mem, KEY(&d->id), d) != 0) {
    rdlv_free(r, d);
    return MQTTB_ERR_NOMEM;
  }
  for (size_t i = 0; i < d->nids; i++) {
    const uint8_t *p = ids->p + 4 * i;
    d->ids[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  }
  if (share->len)
    memcpy(d->share, share->p, share->len);
  d->share_len = (uint16_t)share->len;
  if (m && state != MQTTB_INF_PUBCOMP) {
    d->msg = mqttb_msg_ref(m);
    mqttb_store_msg_ref(r->store, m);
  }
  return 0;
}

static int apply_dlv_sent(rec_view *v) {
  mqttb_restore *r = v->r;
  uint64_t id, pid, state;
  if (!get_id(v, MQTTB_F_D_ID, &id))
    return corrupt(v, "no delivery id");
  if (!get(v, MQTTB_F_D_PID, UINT16_MAX, &pid, true) || pid == 0 ||
      !get(v, MQTTB_F_D_STATE, MQTTB_INF_PUBCOMP, &state, true))
    return corrupt(v, "no valid packet id or state");
  struct mqttb_rdlv *d = mqttb_map_get(&r->dlvs, KEY(&id));
  if (!d)
    return corrupt(v, "no such delivery");
  if (!state_ok(d->qos, state))
    return corrupt(v, "a state its QoS does not have");
  if (!d->msg && state != MQTTB_INF_PUBCOMP)
    return corrupt(v, "back before PUBREC, its message no longer kept");
  d->pid = (uint16_t)pid;
  d->state = (uint8_t)state;
  if (state == MQTTB_INF_PUBCOMP && d->msg) {
    /* The message is the client's: only the packet id is left. */
    mqttb_store_msg_unref(r->store, d->msg);
    mqttb_msg_unref(&r->ctx->mem, d->msg);
    d->msg = NULL;
  }
  return 0;
}

static int apply_dlv_del(rec_view *v) {
  uint64_t id, mid;
  if (!get_id(v, MQTTB_F_D_ID, &id))
    return corrupt(v, "no delivery id");
  if (!get(v, MQTTB_F_D_MSG, UINT64_MAX, &mid, false))
    return corrupt(v, "a field out of range");
  struct mqttb_rdlv *d = mqttb_map_get(&v->r->dlvs, KEY(&id));
  if (!d)
    return corrupt(v, "no such delivery");
  /* With a message id: that message goes too (its last reference). */
  if (mid && !find_msg(v->r, mid))
    return corrupt(v, "no such message");
  mqttb_map_del(&v->r->dlvs, KEY(&id));
  rdlv_free(v->r, d);
  if (mid) {
    mqttb_msg *m = mqttb_map_del(&v->r->msgs, KEY(&mid));
    mqttb_msg_unref(&v->r->ctx->mem, m);
  }
  return 0;
}

/* A COMMIT, or the message of a QOS2_IN: its deliveries stand. */
static int commit(rec_view *v, int tag) {
  uint64_t mid;
  if (!get(v, tag, UINT64_MAX, &mid, false))
    return corrupt(v, "a field out of range");
  if (!mid)
    return 0;
  mqttb_msg *m = find_msg(v->r, mid);
  if (!m)
    return corrupt(v, "no such message");
  m->store_pending = false;
  return 0;
}

static int apply_qos2(rec_view *v, bool add) {
  uint64_t sid, pid;
  if (!get_id(v, MQTTB_F_S_ID, &sid))
    return corrupt(v, "no session id");
  if (!get(v, MQTTB_F_Q_PID, UINT16_MAX, &pid, true) || pid == 0)
    return corrupt(v, "no valid packet id");
  mqttb_session *s = find_session(v->r, sid);
  if (!s)
    return corrupt(v, "no such session");
  if (!add) {
    mqttb_session_qos2_del(s, (uint16_t)pid);
    return 0;
  }
  int rv = commit(v, MQTTB_F_Q_MSG);
  if (rv != 0)
    return rv;
  return mqttb_session_qos2_add(s, (uint16_t)pid);
}

static int apply_retain(rec_view *v) {
  uint64_t mid;
  if (!get_id(v, MQTTB_F_MSG_ID, &mid))
    return corrupt(v, "no message id");
  mqttb_msg *m = find_msg(v->r, mid);
  if (!m)
    return corrupt(v, "no such message");
  if (m->payload_len == 0)
    return corrupt(v, "an empty message cannot be retained");
  mqttb_router_retain(v->r->router, m);
  mqttb_tnode *n = mqttb_trie_find(&v->r->router->retained, MQTTB_MSG_TOPIC(m), m->topic_len);
  return n && n->retained == m ? 0 : MQTTB_ERR_NOMEM;
}

static int apply_retain_del(rec_view *v) {
  const mqttb_rec_field *t = &v->f[MQTTB_F_MSG_TOPIC];
  if (!t->present || t->len == 0 || t->len > UINT16_MAX || !mqttb_topic_name_valid(t->p, t->len))
    return corrupt(v, "no valid topic name");
  mqttb_msg *empty = mqttb_msg_new(&v->r->ctx->mem, t->p, t->len, NULL, 0, NULL, 0, 0, true);
  if (!empty)
    return MQTTB_ERR_NOMEM;
  mqttb_router_retain(v->r->router, empty); /* an empty message clears the topic */
  mqttb_msg_unref(&v->r->ctx->mem, empty);
  return 0;
}

int mqttb_restore_apply(mqttb_restore *r, const uint8_t *rec, size_t len) {
  rec_view v;
  v.r = r;
  v.type = 0;
  const char *why = NULL;
  if (!mqttb_rec_parse(rec, len, &v.type, v.f, &why)) {
    if (len < 1)
      v.type = 0;
    return corrupt(&v, why);
  }
  r->started = true;
  r->store->muted = true;
  int rv;
  switch (v.type) {
  case MQTTB_REC_MSG:
    rv = apply_msg(&v);
    break;
  case MQTTB_REC_MSG_DEL:
    rv = apply_msg_del(&v);
    break;
  case MQTTB_REC_SESSION:
    rv = apply_session(&v);
    break;
  case MQTTB_REC_SESSION_END:
    rv = apply_session_end(&v);
    break;
  case MQTTB_REC_SUB:
  case MQTTB_REC_UNSUB:
    rv = apply_sub(&v, v.type == MQTTB_REC_SUB);
    break;
  case MQTTB_REC_DLV:
    rv = apply_dlv(&v);
    break;
  case MQTTB_REC_DLV_SENT:
    rv = apply_dlv_sent(&v);
    break;
  case MQTTB_REC_DLV_DEL:
    rv = apply_dlv_del(&v);
    break;
  case MQTTB_REC_QOS2_IN:
  case MQTTB_REC_QOS2_IN_DEL:
    rv = apply_qos2(&v, v.type == MQTTB_REC_QOS2_IN);
    break;
  case MQTTB_REC_RETAIN:
    rv = apply_retain(&v);
    break;
  case MQTTB_REC_RETAIN_DEL:
    rv = apply_retain_del(&v);
    break;
  case MQTTB_REC_COMMIT:
    rv = commit(&v, MQTTB_F_MSG_ID);
    break;
  default:
    rv = corrupt(&v, "unknown record type");
    break;
  }
  if (rv == 0)
    r->applied++;
  return rv;
}

/* ---------------------------------------------------------------- the end */

static int by_id(const void *a, const void *b) {
  const struct mqttb_rdlv *x = *(const struct mqttb_rdlv *const *)a;
  const struct mqttb_rdlv *y = *(const struct mqttb_rdlv *const *)b;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* Put one delivery back into its session; takes d. */
static int put_back(mqttb_restore *r, struct mqttb_rdlv *d, uint64_t *torn) {
  const mqttb_mem *mem = &r->ctx->mem;
  mqttb_session *s = find_session(r, d->session);
  if (!s || (d->msg && d->msg->store_pending)) {
    if (s)
      (*torn)++;
    rdlv_free(r, d); /* its session ended, or its message never committed */
    return 0;
  }
  mqttb_dlv x = {.msg = d->msg,
                 .ids = d->ids,
                 .nids = d->nids,
                 .qos = d->qos,
                 .retain = d->retain,
                 .store_id = d->id};
  if (d->share_len && d->msg) {
    mqttb_share *sh = mqttb_map_get(&r->sessions->shares, d->share, d->share_len);
    if (sh) {
      sh->refs++;
      x.share = sh;
    }
  }
  int rv = mqttb_session_put_back(s, &x, d->pid, d->state);
  if (rv != 0) {
    if (x.share)
      mqttb_share_unref(r->sessions, x.share);
    if (rv == MQTTB_ERR_INVALID_ARGUMENT)
      mqttb_log(r->ctx, MQTTB_LOG_ERROR,
                "restore: session %.*s has two messages in flight with packet id %u; one dropped",
                mqttb_log_cut(s->id_len), s->client_id, d->pid);
    rdlv_free(r, d);
    return rv == MQTTB_ERR_NOMEM ? rv : 0;
  }
  /* The session owns message, identifiers and recorded reference now. */
  mqttb_mem_free(mem, d->share);
  mqttb_mem_free(mem, d);
  return 0;
}

int mqttb_restore_end(mqttb_restore *r) {
  if (r->ended)
    return 0;
  r->ended = true;
  const mqttb_mem *mem = &r->ctx->mem;
  int rv = 0;
  /* Deliveries in the order they were accepted. */
  size_t n = r->dlvs.count, k = 0;
  struct mqttb_rdlv **all = n ? mqttb_mem_malloc(mem, n * sizeof(*all)) : NULL;
  uint64_t torn = 0;
  if (n && !all) {
    rv = MQTTB_ERR_NOMEM;
  } else {
    for (uint32_t i = 0; i < r->dlvs.cap; i++)
      if (r->dlvs.e[i].key)
        all[k++] = r->dlvs.e[i].val;
    mqttb_map_free(&r->dlvs, mem);
    if (k)
      qsort(all, k, sizeof(*all), by_id);
    for (size_t i = 0; i < k; i++)
      if (put_back(r, all[i], &torn) != 0)
        rv = MQTTB_ERR_NOMEM;
    mqttb_mem_free(mem, all);
  }
  if (torn)
    mqttb_log(r->ctx, MQTTB_LOG_WARNING,
              "restore: %llu deliveries of QoS 2 messages whose PUBREC was never sent dropped "
              "(their publishers send them again)",
              (unsigned long long)torn);
  int sessions = 0;
  for (uint32_t i = 0; i < r->sessions_by_id.cap; i++) {
    mqttb_session *s = r->sessions_by_id.e[i].val;
    if (!r->sessions_by_id.e[i].key)
      continue;
    mqttb_session_restored(s, mqttb_map_get(&r->online, KEY(&s->store_id)) != NULL);
    sessions++;
  }
  mqttb_restore_free(r);
  if (r->started)
    mqttb_log(r->ctx, MQTTB_LOG_NOTICE,
              "restored %d sessions and %llu retained messages from %llu store records "
              "(%llu refused)",
              sessions, (unsigned long long)r->ctx->stats.retained_count,
              (unsigned long long)r->applied, (unsigned long long)r->refused);
  if (r->max_id >= r->store->next_id)
    r->store->next_id = r->max_id + 1;
  r->store->muted = false;
  return rv ? rv : sessions;
}

/* ---------------------------------------------------------------- snapshot */

typedef struct snap {
  mqttb_store *st;
  mqttb_record_cb cb;
  void *ud;
  mqttb_map written; /* messages written, keyed by their store_id */
  int rv;
} snap;

static void emit(snap *sn) {
  if (sn->rv == 0)
    sn->rv = mqttb_rec_emit_to(sn->st, sn->cb, sn->ud);
}

/* Write m unless it was. */
static void need_msg(snap *sn, mqttb_msg *m) {
  if (sn->rv || !m || mqttb_map_get(&sn->written, KEY(&m->store_id)))
    return;
  if (mqttb_map_put(&sn->written, &sn->st->ctx->mem, KEY(&m->store_id), m) != 0) {
    sn->rv = MQTTB_ERR_NOMEM;
    return;
  }
  mqttb_rec_begin(sn->st, MQTTB_REC_MSG);
  mqttb_rec_uint(sn->st, MQTTB_F_MSG_ID, m->store_id);
  mqttb_rec_msg_fields(sn->st, m);
  emit(sn);
}

static void snap_dlv(snap *sn, mqttb_session *s, const mqttb_dlv *d, uint16_t pid, uint8_t state) {
  if (!d->store_id)
    return;
  need_msg(sn, d->msg);
  mqttb_session_encode_dlv(s, d, pid, state, sn->st);
  emit(sn);
}

static void snap_session(snap *sn, mqttb_session *s) {
  mqttb_store *st = sn->st;
  need_msg(sn, s->store_will);
  mqttb_session_encode(s, st);
  emit(sn);
  for (uint32_t i = 0; i < s->nsubs && !sn->rv; i++) {
    mqttb_session_encode_sub(s, s->subs[i], st);
    emit(sn);
  }
  for (uint32_t i = s->win ? s->win->head : MQTTB_WINDOW_END; i != MQTTB_WINDOW_END && !sn->rv;) {
    const mqttb_inflight *f = mqttb_window_at(s->win, i);
    i = f->next;
    snap_dlv(sn, s, &f->d, f->pid, f->state);
  }
  for (uint32_t i = 0; i < s->qcount && !sn->rv; i++)
    snap_dlv(sn, s, &s->queue[(s->qhead + i) % s->qcap], 0, 0);
  const mqttb_pidmap *q = s->in_qos2;
  for (uint32_t i = 0; q && i < q->cap && !sn->rv; i++) {
    if (!q->e[i].key)
      continue;
    mqttb_rec_begin(st, MQTTB_REC_QOS2_IN);
    mqttb_rec_uint(st, MQTTB_F_S_ID, s->store_id);
    mqttb_rec_uint(st, MQTTB_F_Q_PID, q->e[i].key);
    emit(sn);
  }
}

/* Every retained message, $ topics included, with an explicit stack (topics
 * may be deep). */
static void snap_retained(snap *sn, mqttb_router *router) {
  const mqttb_mem *mem = &sn->st->ctx->mem;
  mqttb_tnode *root = router->retained.root;
  if (!root)
    return;
  mqttb_tnode **stack = NULL;
  size_t n = 0, cap = 0;
  void *arr = stack;
  if (mqttb_mem_grow(mem, &arr, &cap, 1, sizeof(*stack)) != 0) {
    sn->rv = MQTTB_ERR_NOMEM;
    return;
  }
  stack = arr;
  stack[n++] = root;
  while (n && !sn->rv) {
    mqttb_tnode *t = stack[--n];
    mqttb_msg *m = t->retained;
    if (m && m->store_refs && !mqttb_sys_topic((const uint8_t *)MQTTB_MSG_TOPIC(m), m->topic_len)) {
      need_msg(sn, m);
      mqttb_rec_begin(sn->st, MQTTB_REC_RETAIN);
      mqttb_rec_uint(sn->st, MQTTB_F_MSG_ID, m->store_id);
      emit(sn);
    }
    arr = stack;
    if (mqttb_mem_grow(mem, &arr, &cap, n + t->children.count, sizeof(*stack)) != 0) {
      sn->rv = MQTTB_ERR_NOMEM;
      break;
    }
    stack = arr;
    for (uint32_t i = 0; i < t->children.cap; i++)
      if (t->children.e[i].key)
        stack[n++] = t->children.e[i].val;
  }
  mqttb_mem_free(mem, stack);
}

int mqttb_snapshot(mqttb_store *st, mqttb_sessions *sessions, mqttb_router *router,
                   mqttb_record_cb cb, void *ud) {
  snap sn = {st, cb, ud, {NULL, 0, 0}, 0};
  const mqttb_map *by = &sessions->by_id;
  for (uint32_t i = 0; i < by->cap && !sn.rv; i++) {
    mqttb_session *s = by->e[i].val;
    if (by->e[i].key && s->store_id)
      snap_session(&sn, s);
  }
  if (!sn.rv)
    snap_retained(&sn, router);
  mqttb_map_free(&sn.written, &st->ctx->mem);
  return sn.rv;
}
