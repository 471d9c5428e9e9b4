/*
 * mqttb CLI: persistence, between the broker and its files.
 *
 * SPDX-License-Identifier: MIT
 */
#include "persist.h"

#include "journal.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broker killed a moment ago may still hold the lock through its
 * compaction child, which dies with it: wait that long for it. */
#define LOCK_WAIT_MS 5000u

/* The figures under $SYS/broker/store/, published when they change. */
enum {
  SYS_ERRORS,
  SYS_DEGRADED,
  SYS_WRITTEN,
  SYS_LOST,
  SYS_JOURNAL_BYTES,
  SYS_SNAPSHOT_BYTES,
  SYS_COMPACTIONS,
  SYS_RESTORED,
  SYS_REFUSED,
  SYS_COUNT
};

static const char *const sys_topics[SYS_COUNT] = {
    "$SYS/broker/store/errors",          "$SYS/broker/store/degraded",
    "$SYS/broker/store/records/written", "$SYS/broker/store/records/lost",
    "$SYS/broker/store/journal/bytes",   "$SYS/broker/store/snapshot/bytes",
    "$SYS/broker/store/compactions",     "$SYS/broker/store/restore/records",
    "$SYS/broker/store/restore/refused",
};

struct mqttb_cli_persist {
  struct mqttb_cli_journal *j;
  mqttb_broker *broker;
  uint64_t now; /* during replay */
  uint64_t restored, refused, failed;
  /* The last sequence number reported with mqttb_broker_store_durable. */
  uint64_t durable_seq;
  uint32_t sys_interval_ms;
  uint64_t next_sys;
  uint64_t sys_values[SYS_COUNT];
  bool sys_published;
};

static int take_snapshot(mqttb_cli_journal_sink sink, void *sink_arg, void *arg) {
  struct mqttb_cli_persist *p = arg;
  /* The sink has the shape of mqttb_record_cb. */
  return mqttb_broker_snapshot(p->broker, sink, sink_arg);
}

struct mqttb_cli_persist *mqttb_cli_persist_open(const struct mqttb_cli_persistence *cfg,
                                                 uint32_t sys_interval_ms, char *err,
                                                 size_t errlen) {
  struct mqttb_cli_persist *p = calloc(1, sizeof *p);
  if (p == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  struct mqttb_cli_journal_options o = {
      .dir = cfg->location,
      .file = cfg->file != NULL ? cfg->file : MQTTB_CLI_PERSISTENCE_FILE,
      .sync = cfg->sync,
      .autosave_interval = cfg->autosave_interval,
      .autosave_on_changes = cfg->autosave_on_changes,
      .snapshot = take_snapshot,
      .snapshot_arg = p,
  };
  p->j = mqttb_cli_journal_open(&o, LOCK_WAIT_MS, err, errlen);
  if (p->j == NULL) {
    free(p);
    return NULL;
  }
  p->sys_interval_ms = sys_interval_ms;
  return p;
}

static void on_record(void *arg, uint64_t seq, const uint8_t *rec, size_t len) {
  struct mqttb_cli_persist *p = arg;
  (void)seq;
  mqttb_cli_journal_append(p->j, rec, len);
}

static void replay_record(const uint8_t *rec, size_t len, void *arg) {
  struct mqttb_cli_persist *p = arg;
  int rc = mqttb_broker_restore(p->broker, rec, len, p->now);
  if (rc == MQTTB_OK) {
    p->restored++;
  } else if (rc == MQTTB_ERR_STORE_CORRUPT) {
    p->refused++; /* the library logged why */
  } else {
    if (p->failed == 0) {
      mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: restoring a record failed: %s",
                    mqttb_strerror(rc));
    }
    p->failed++;
  }
}

void mqttb_cli_persist_restore(struct mqttb_cli_persist *p, mqttb_broker *broker, uint64_t now) {
  p->broker = broker;
  p->now = now;
  struct mqttb_cli_journal_replay rp;
  mqttb_cli_journal_replay(p->j, replay_record, p, &rp);
  int sessions = mqttb_broker_restore_end(broker, now);
  if (sessions < 0) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: ending the restore failed: %s",
                  mqttb_strerror(sessions));
  }
  if (rp.records > 0 || p->refused > 0) {
    mqttb_cli_log(MQTTB_LOG_NOTICE,
                  "persistence: %" PRIu64 " records applied, %" PRIu64 " refused as inconsistent%s"
                  "; %d sessions restored",
                  p->restored, p->refused + p->failed, p->failed > 0 ? " or failed" : "",
                  sessions < 0 ? 0 : sessions);
  }
  p->durable_seq = mqttb_broker_store_seq(broker);
}

static void publish_sys(struct mqttb_cli_persist *p, mqttb_broker *b, uint64_t now) {
  const struct mqttb_cli_journal_stats *st = mqttb_cli_journal_get_stats(p->j);
  uint64_t v[SYS_COUNT] = {
      [SYS_ERRORS] = st->errors,
      [SYS_DEGRADED] = st->degraded ? 1 : 0,
      [SYS_WRITTEN] = st->records_written,
      [SYS_LOST] = st->records_lost,
      [SYS_JOURNAL_BYTES] = st->journal_bytes,
      [SYS_SNAPSHOT_BYTES] = st->snapshot_bytes,
      [SYS_COMPACTIONS] = st->compactions,
      [SYS_RESTORED] = p->restored,
      [SYS_REFUSED] = p->refused + p->failed,
  };
  for (int i = 0; i < SYS_COUNT; i++) {
    if (p->sys_published && v[i] == p->sys_values[i]) {
      continue;
    }
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, v[i]);
    mqttb_message m;
    memset(&m, 0, sizeof m);
    m.topic = sys_topics[i];
    m.payload = text;
    m.payload_len = (size_t)n;
    m.retain = 1;
    int rc = mqttb_broker_publish(b, &m, now);
    if (rc < 0) {
      mqttb_cli_log(MQTTB_LOG_DEBUG, "persistence: publishing %s: %s", sys_topics[i],
                    mqttb_strerror(rc));
    }
    p->sys_values[i] = v[i];
  }
  p->sys_published = true;
}

/* Before the iteration's output: $SYS, compaction, then the journal is
 * written (and synced), and the broker told how far records are durable.
 * A degraded store reports them all the same: acknowledgements held for
 * persistence_sync must not wait for a disk that is not being written. */
static int before_output(void *arg, mqttb_broker *b, uint64_t now) {
  struct mqttb_cli_persist *p = arg;
  int wait = -1;
  if (p->sys_interval_ms > 0) {
    if (now >= p->next_sys) {
      publish_sys(p, b, now);
      p->next_sys = now + p->sys_interval_ms;
    }
    wait = (int)(p->next_sys - now);
  }
  int jw = mqttb_cli_journal_tick(p->j, now);
  if (jw >= 0 && (wait < 0 || jw < wait)) {
    wait = jw;
  }
  uint64_t seq = mqttb_broker_store_seq(b);
  if (seq != p->durable_seq) {
    p->durable_seq = seq;
    int rc = mqttb_broker_store_durable(b, seq, now);
    if (rc != MQTTB_OK) {
      mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: mqttb_broker_store_durable: %s",
                    mqttb_strerror(rc));
    }
  }
  return wait;
}

static void before_write(void *arg) {
  struct mqttb_cli_persist *p = arg;
  mqttb_cli_journal_write(p->j);
}

/* Shutdown: the whole state as a fresh snapshot, written in this process. */
static void on_final(void *arg, mqttb_broker *b, uint64_t now) {
  struct mqttb_cli_persist *p = arg;
  (void)b;
  (void)now;
  mqttb_cli_journal_compact_sync(p->j);
}

struct mqttb_cli_loop_store mqttb_cli_persist_hooks(struct mqttb_cli_persist *p) {
  struct mqttb_cli_loop_store s = {.record = on_record,
                                   .before_output = before_output,
                                   .before_write = before_write,
                                   .final = on_final,
                                   .arg = p};
  return s;
}

void mqttb_cli_persist_reload(struct mqttb_cli_persist *p, const struct mqttb_cli_persistence *cfg,
                              uint32_t sys_interval_ms) {
  mqttb_cli_journal_set_sync(p->j, cfg->sync);
  mqttb_cli_journal_set_autosave(p->j, cfg->autosave_interval, cfg->autosave_on_changes);
  p->sys_interval_ms = sys_interval_ms;
}

void mqttb_cli_persist_close(struct mqttb_cli_persist *p) {
  if (p == NULL) {
    return;
  }
  mqttb_cli_journal_close(p->j);
  free(p);
}
