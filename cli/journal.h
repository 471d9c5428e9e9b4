/*
 * mqttb CLI: the store on disk. A snapshot file and journal segments in
 * persistence_location, holding the library's store records as opaque
 * bytes; docs/persistence.md ("The mqttb store") describes the files and the promises.
 *
 * Nothing here calls the library: the snapshot is taken through a callback,
 * so the module is tested on its own (tests/unit/test_journal.c).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_JOURNAL_H
#define MQTTB_CLI_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* File header: magic, u32 LE version, u64 LE generation, u32 LE CRC32C of
 * the 20 bytes before it. */
#define MQTTB_CLI_JOURNAL_HEADER_SIZE 24u
#define MQTTB_CLI_JOURNAL_VERSION 1u
#define MQTTB_CLI_JOURNAL_MAGIC_SNAPSHOT "MQTTBSNP"
#define MQTTB_CLI_JOURNAL_MAGIC_SEGMENT "MQTTBJNL"
/* Record frame: u32 LE payload length, u32 LE CRC32C of the payload. */
#define MQTTB_CLI_JOURNAL_FRAME_SIZE 8u
/* The largest payload a frame may announce: a PUBLISH of the protocol's
 * maximum size with its session data fits several times. Anything longer
 * is damage. */
#define MQTTB_CLI_JOURNAL_MAX_RECORD (512u * 1024u * 1024u)

/* CRC32C (Castagnoli, reflected, as iSCSI and ext4): continue @p crc (0 to
 * start) over @p len bytes. crc32c("123456789") is 0xE3069283. */
uint32_t mqttb_cli_crc32c(uint32_t crc, const void *buf, size_t len);

enum mqttb_cli_journal_kind { MQTTB_CLI_JOURNAL_SNAPSHOT, MQTTB_CLI_JOURNAL_SEGMENT };

/* What reading one file found. */
enum mqttb_cli_journal_outcome {
  MQTTB_CLI_READ_CLEAN,      /* every byte was a complete, valid record */
  MQTTB_CLI_READ_EMPTY,      /* shorter than a header (a segment just created) */
  MQTTB_CLI_READ_TORN,       /* the tail after the last valid record is cut off */
  MQTTB_CLI_READ_DAMAGED,    /* a bad record with valid ones after it: moved aside */
  MQTTB_CLI_READ_BAD_HEADER, /* header unreadable or of another version: moved aside */
  MQTTB_CLI_READ_ERROR,      /* the file could not be read (error holds errno) */
};

struct mqttb_cli_journal_read {
  enum mqttb_cli_journal_outcome outcome;
  int error;
  uint64_t generation; /* from the header */
  uint64_t records;    /* handed to the callback */
  uint64_t file_bytes;
  uint64_t good_bytes; /* header and the complete records handed over */
  /* Where the first bad byte was, and why (outcomes TORN, DAMAGED, BAD_HEADER). */
  uint64_t damage_offset;
  char reason[96];
  /* With repair, the name a DAMAGED or BAD_HEADER file was moved to. */
  char moved_to[512];
};

typedef void (*mqttb_cli_journal_record_fn)(const uint8_t *rec, size_t len, void *arg);

/*
 * Read the file at @p path of @p kind: each valid record, in order, goes to
 * @p fn until the first bad one. With @p repair, a torn tail is cut off
 * (ftruncate) and a DAMAGED or BAD_HEADER file is renamed to
 * "<path>.corrupt.<unix time>"; an EMPTY one is left alone. Returns 0, or -1
 * with outcome MQTTB_CLI_READ_ERROR.
 */
int mqttb_cli_journal_read_file(const char *path, enum mqttb_cli_journal_kind kind, bool repair,
                                mqttb_cli_journal_record_fn fn, void *arg,
                                struct mqttb_cli_journal_read *out);

/* Receives one snapshot record; non-zero stops the snapshot (the library's
 * mqttb_record_cb has this shape). */
typedef int (*mqttb_cli_journal_sink)(const uint8_t *rec, size_t len, void *sink_arg);
/* Writes the state as records into @p sink; 0 on success. Runs in a forked
 * child for a background compaction. */
typedef int (*mqttb_cli_journal_snapshot_fn)(mqttb_cli_journal_sink sink, void *sink_arg,
                                             void *arg);

struct mqttb_cli_journal_options {
  const char *dir;  /* persistence_location; NULL or "": the current directory */
  const char *file; /* the snapshot's name; segments are "<file>.journal.<gen>" */
  /* fdatasync at each flush. */
  bool sync;
  /* Compaction: every autosave_interval seconds if anything was recorded,
   * or with autosave_on_changes after that many records; 0: only at
   * start-up and shutdown (and when the journal outgrows
   * MQTTB_CLI_JOURNAL_GROWTH_LIMIT and twice the snapshot). */
  uint32_t autosave_interval;
  bool autosave_on_changes;
  /* How the state is taken. */
  mqttb_cli_journal_snapshot_fn snapshot;
  void *snapshot_arg;
};

/* Journal bytes beyond which a compaction starts whatever autosave says,
 * once they are also twice the snapshot's size. Each compaction forks the
 * broker, and the parent then pays copy-on-write faults for the pages it
 * writes: at 64 MiB a QoS 1 load that journals 90 MB/s compacted every
 * second and lost about a third of its throughput. 512 MiB replays in a few
 * seconds at start-up (1M retained messages, 189 MiB: 1.3 s). */
#define MQTTB_CLI_JOURNAL_GROWTH_LIMIT (512u * 1024u * 1024u)
/* Bytes buffered before a write() within an iteration. */
#define MQTTB_CLI_JOURNAL_BUFFER (64u * 1024u)
/* While the store is degraded, how often a compaction tries to recover. */
#define MQTTB_CLI_JOURNAL_RETRY_MS 10000u

struct mqttb_cli_journal_stats {
  uint64_t records_written; /* records of this process that reached a file */
  uint64_t records_lost;    /* records not on disk because of a write error */
  uint64_t errors;          /* failed writes, syncs, file operations, compactions */
  uint64_t journal_bytes;   /* bytes in the segments after the snapshot */
  uint64_t snapshot_bytes;  /* size of the snapshot file */
  uint64_t compactions;     /* snapshots written */
  bool degraded;            /* records are not being kept on disk */
};

/* What replay found, for the log and the caller. */
struct mqttb_cli_journal_replay {
  uint64_t files;
  uint64_t records;    /* handed to the callback */
  uint64_t lost_bytes; /* bytes cut off or moved aside */
  uint64_t damaged_files;
  uint64_t torn_files;
};

struct mqttb_cli_journal;

/*
 * Check or create the directory, take its lock ("<file>.lock", flock; a
 * broker that was just killed is waited for up to @p lock_wait_ms) and
 * remove a stale "<file>.tmp". Returns NULL with a message in @p err for
 * a location that cannot be used.
 */
struct mqttb_cli_journal *mqttb_cli_journal_open(const struct mqttb_cli_journal_options *opts,
                                                 unsigned lock_wait_ms, char *err, size_t errlen);

/*
 * Hand the snapshot's and then each segment's records to @p fn, repairing
 * what is damaged (logged with file, offset and reason), delete segments
 * the snapshot covers, and open a new segment. A new segment that cannot
 * be created leaves the store degraded (logged); replay itself always
 * succeeds. Call once, before the first append.
 */
void mqttb_cli_journal_replay(struct mqttb_cli_journal *j, mqttb_cli_journal_record_fn fn,
                              void *arg, struct mqttb_cli_journal_replay *out);

/* Whether replay found damage or a large journal: compact at once. */
bool mqttb_cli_journal_wants_compaction(const struct mqttb_cli_journal *j);

/* Add one record. It is buffered, and written once the buffer passes
 * MQTTB_CLI_JOURNAL_BUFFER; while degraded it is counted as lost. */
void mqttb_cli_journal_append(struct mqttb_cli_journal *j, const uint8_t *rec, size_t len);

/*
 * Write what is buffered (and with the sync option fdatasync it). Returns
 * 0 when everything appended so far is in the file, -1 when the store is
 * degraded (the failure was logged once).
 */
int mqttb_cli_journal_flush(struct mqttb_cli_journal *j);

/*
 * Write what is buffered, without syncing: before connection output is
 * written in the middle of an iteration (acknowledging output can produce
 * records: a queued message going in flight), so that a process that dies
 * right after the output has the records in the file.
 */
void mqttb_cli_journal_write(struct mqttb_cli_journal *j);

/* Change the sync option (SIGHUP). */
void mqttb_cli_journal_set_sync(struct mqttb_cli_journal *j, bool sync);
void mqttb_cli_journal_set_autosave(struct mqttb_cli_journal *j, uint32_t interval,
                                    bool on_changes);

/*
 * Once per loop iteration: reap a finished compaction, start one when
 * autosave, growth or recovery from a degraded store calls for it, then
 * flush. Returns the milliseconds until it wants to run again (-1: no
 * timer of its own).
 */
int mqttb_cli_journal_tick(struct mqttb_cli_journal *j, uint64_t now_ms);

/*
 * Start a compaction in a forked child now (unless one is running).
 * Returns 0 when started, -1 otherwise (logged).
 */
int mqttb_cli_journal_compact(struct mqttb_cli_journal *j, uint64_t now_ms);

/* Whether a compaction child is running. */
bool mqttb_cli_journal_compacting(const struct mqttb_cli_journal *j);

/* Wait for a running compaction child and handle its result. */
void mqttb_cli_journal_wait(struct mqttb_cli_journal *j);

/*
 * At shutdown: wait for a running compaction, flush, then write the
 * snapshot in this process and delete the segments it covers. Returns 0,
 * or -1 when the snapshot failed (the segments are then kept, fsynced).
 */
int mqttb_cli_journal_compact_sync(struct mqttb_cli_journal *j);

const struct mqttb_cli_journal_stats *
mqttb_cli_journal_get_stats(const struct mqttb_cli_journal *j);

/* Close the files and the lock; @p j may be NULL. A running compaction
 * child is waited for. */
void mqttb_cli_journal_close(struct mqttb_cli_journal *j);

#endif /* MQTTB_CLI_JOURNAL_H */
