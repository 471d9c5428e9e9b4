/*
 * mqttb CLI: the store on disk (see journal.h and docs/persistence.md ("The mqttb store")).
 *
 * The directory holds "<file>" (the snapshot, generation S: the state made
 * of every segment older than S), "<file>.journal.<gen>" (segments, each
 * the records that followed the previous one), "<file>.lock" (flock of the
 * running broker) and, while a snapshot is written, "<file>.tmp". The disk
 * is always one of: a snapshot and the complete segments after it, or the
 * same with the last segment cut at a record boundary. A compaction opens
 * segment N, forks, and the child writes snapshot N; the segments before N
 * are deleted only once it is renamed into place and the directory synced.
 *
 * SPDX-License-Identifier: MIT
 */
#include "journal.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Looking for a valid record after a bad one checks at most this many
 * payload bytes; past it the file counts as damaged (moved aside, not cut). */
#define RESYNC_CRC_BUDGET (256u * 1024u * 1024u)
/* Journal bytes after which start-up compacts at once. */
#define STARTUP_COMPACT_BYTES (1024u * 1024u)
/* While a compaction child runs, how often the loop looks for its end. */
#define CHILD_POLL_MS 50
#define CHILD_BUFFER (1024u * 1024u)
/* Child exit codes besides 0 and errno values. */
#define CHILD_EXIT_SNAPSHOT 250
#define CHILD_EXIT_NOMEM 251
#define CHILD_EXIT_PARENT 252

/* ---- CRC32C ---- */

static uint32_t crc_table[8][256];
static bool crc_ready;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) {
      c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++) {
    for (int t = 1; t < 8; t++) {
      uint32_t prev = crc_table[t - 1][i];
      crc_table[t][i] = (prev >> 8) ^ crc_table[0][prev & 0xffu];
    }
  }
  crc_ready = true;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* SSE 4.2's CRC32 instruction computes exactly this polynomial, 8 bytes a
 * cycle or so: several times the tables' speed. Used when the CPU has it. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t c, const uint8_t *p,
                                                               size_t len) {
  uint64_t c64 = c;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    c64 = __builtin_ia32_crc32di(c64, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = (uint32_t)c64;
  while (len-- > 0) {
    c32 = __builtin_ia32_crc32qi(c32, *p++);
  }
  return c32;
}

static int crc_hw = -1; /* -1: not asked yet */
#endif

uint32_t mqttb_cli_crc32c(uint32_t crc, const void *buf, size_t len) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (crc_hw < 0) {
    crc_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
  }
  if (crc_hw) {
    return ~crc32c_sse42(~crc, buf, len);
  }
#endif
  if (!crc_ready) {
    crc_init();
  }
  const uint8_t *p = buf;
  uint32_t c = ~crc;
  /* Slicing by 8: eight table lookups per 8 bytes. */
  while (len >= 8) {
    uint32_t lo =
        c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    uint32_t hi =
        (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    c = crc_table[7][lo & 0xffu] ^ crc_table[6][(lo >> 8) & 0xffu] ^
        crc_table[5][(lo >> 16) & 0xffu] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xffu] ^
        crc_table[2][(hi >> 8) & 0xffu] ^ crc_table[1][(hi >> 16) & 0xffu] ^ crc_table[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len-- > 0) {
    c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xffu];
  }
  return ~c;
}

/* ---- little-endian fields ---- */

static uint32_t get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p) {
  return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v) {
  put_le32(p, (uint32_t)v);
  put_le32(p + 4, (uint32_t)(v >> 32));
}

static void make_header(uint8_t out[MQTTB_CLI_JOURNAL_HEADER_SIZE],
                        enum mqttb_cli_journal_kind kind, uint64_t gen) {
  memcpy(out,
         kind == MQTTB_CLI_JOURNAL_SNAPSHOT ? MQTTB_CLI_JOURNAL_MAGIC_SNAPSHOT
                                            : MQTTB_CLI_JOURNAL_MAGIC_SEGMENT,
         8);
  put_le32(out + 8, MQTTB_CLI_JOURNAL_VERSION);
  put_le64(out + 12, gen);
  put_le32(out + 20, mqttb_cli_crc32c(0, out, 20));
}

static void make_frame(uint8_t out[MQTTB_CLI_JOURNAL_FRAME_SIZE], const uint8_t *rec, size_t len) {
  put_le32(out, (uint32_t)len);
  put_le32(out + 4, mqttb_cli_crc32c(0, rec, len));
}

/* ---- reading ---- */

/* NULL when a valid record starts at @p off (its length in @p len), else why not. */
static const char *check_record(const uint8_t *map, uint64_t size, uint64_t off, uint32_t *len,
                                char *why, size_t whylen) {
  uint64_t left = size - off;
  if (left < MQTTB_CLI_JOURNAL_FRAME_SIZE) {
    snprintf(why, whylen, "incomplete record frame (%llu bytes)", (unsigned long long)left);
    return why;
  }
  uint32_t n = get_le32(map + off);
  if (n == 0 || n > MQTTB_CLI_JOURNAL_MAX_RECORD) {
    snprintf(why, whylen, "impossible record length %lu", (unsigned long)n);
    return why;
  }
  if ((uint64_t)n > left - MQTTB_CLI_JOURNAL_FRAME_SIZE) {
    snprintf(why, whylen, "record of %lu bytes runs past the end of the file", (unsigned long)n);
    return why;
  }
  if (mqttb_cli_crc32c(0, map + off + MQTTB_CLI_JOURNAL_FRAME_SIZE, n) != get_le32(map + off + 4)) {
    snprintf(why, whylen, "checksum mismatch in a record of %lu bytes", (unsigned long)n);
    return why;
  }
  *len = n;
  return NULL;
}

/* Whether a valid record starts anywhere after @p off: then the bad bytes
 * are damage in the middle, not a torn tail. Bounded by RESYNC_CRC_BUDGET;
 * when that runs out, assume there is (the file is kept, not cut). */
static bool valid_record_after(const uint8_t *map, uint64_t size, uint64_t off) {
  uint64_t budget = RESYNC_CRC_BUDGET;
  for (uint64_t p = off + 1; p + MQTTB_CLI_JOURNAL_FRAME_SIZE < size; p++) {
    uint32_t n = get_le32(map + p);
    if (n == 0 || n > MQTTB_CLI_JOURNAL_MAX_RECORD ||
        (uint64_t)n > size - p - MQTTB_CLI_JOURNAL_FRAME_SIZE) {
      continue;
    }
    if (n > budget) {
      return true;
    }
    budget -= n;
    if (mqttb_cli_crc32c(0, map + p + MQTTB_CLI_JOURNAL_FRAME_SIZE, n) == get_le32(map + p + 4)) {
      return true;
    }
  }
  return false;
}

static void move_aside(const char *path, struct mqttb_cli_journal_read *out) {
  snprintf(out->moved_to, sizeof out->moved_to, "%s.corrupt.%lld", path, (long long)time(NULL));
  if (rename(path, out->moved_to) != 0) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: cannot move %s aside to %s: %s", path,
                  out->moved_to, strerror(errno));
    out->moved_to[0] = '\0';
  }
}

int mqttb_cli_journal_read_file(const char *path, enum mqttb_cli_journal_kind kind, bool repair,
                                mqttb_cli_journal_record_fn fn, void *arg,
                                struct mqttb_cli_journal_read *out) {
  memset(out, 0, sizeof *out);
  int fd = open(path, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    out->outcome = MQTTB_CLI_READ_ERROR;
    out->error = errno;
    snprintf(out->reason, sizeof out->reason, "%s", strerror(errno));
    if (fd >= 0) {
      close(fd);
    }
    return -1;
  }
  uint64_t size = (uint64_t)sb.st_size;
  out->file_bytes = size;
  if (size < MQTTB_CLI_JOURNAL_HEADER_SIZE) {
    /* A segment whose creation was interrupted. A snapshot only ever
     * appears complete (rename), so a short one is damage. */
    snprintf(out->reason, sizeof out->reason, "%llu bytes, shorter than the header",
             (unsigned long long)size);
    out->outcome =
        kind == MQTTB_CLI_JOURNAL_SEGMENT ? MQTTB_CLI_READ_EMPTY : MQTTB_CLI_READ_BAD_HEADER;
    close(fd);
    if (out->outcome == MQTTB_CLI_READ_BAD_HEADER && repair) {
      move_aside(path, out);
    }
    return 0;
  }
  const uint8_t *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) {
    out->outcome = MQTTB_CLI_READ_ERROR;
    out->error = errno;
    snprintf(out->reason, sizeof out->reason, "mmap: %s", strerror(errno));
    close(fd);
    return -1;
  }
  uint8_t want[MQTTB_CLI_JOURNAL_HEADER_SIZE];
  make_header(want, kind, 0);
  if (memcmp(map, want, 8) != 0) {
    snprintf(out->reason, sizeof out->reason, "not a %s (bad magic)",
             kind == MQTTB_CLI_JOURNAL_SNAPSHOT ? "mqttb snapshot" : "mqttb journal segment");
    out->outcome = MQTTB_CLI_READ_BAD_HEADER;
  } else if (mqttb_cli_crc32c(0, map, 20) != get_le32(map + 20)) {
    snprintf(out->reason, sizeof out->reason, "header checksum mismatch");
    out->outcome = MQTTB_CLI_READ_BAD_HEADER;
  } else if (get_le32(map + 8) != MQTTB_CLI_JOURNAL_VERSION) {
    snprintf(out->reason, sizeof out->reason, "unsupported format version %lu",
             (unsigned long)get_le32(map + 8));
    out->outcome = MQTTB_CLI_READ_BAD_HEADER;
  }
  if (out->outcome == MQTTB_CLI_READ_BAD_HEADER) {
    munmap((void *)map, (size_t)size);
    close(fd);
    if (repair) {
      move_aside(path, out);
    }
    return 0;
  }
  out->generation = get_le64(map + 12);
  uint64_t off = MQTTB_CLI_JOURNAL_HEADER_SIZE;
  while (off < size) {
    uint32_t len = 0;
    if (check_record(map, size, off, &len, out->reason, sizeof out->reason) != NULL) {
      break;
    }
    if (fn != NULL) {
      fn(map + off + MQTTB_CLI_JOURNAL_FRAME_SIZE, len, arg);
    }
    out->records++;
    off += MQTTB_CLI_JOURNAL_FRAME_SIZE + len;
  }
  out->good_bytes = off;
  out->damage_offset = off;
  if (off == size) {
    out->outcome = MQTTB_CLI_READ_CLEAN;
    out->reason[0] = '\0';
  } else if (valid_record_after(map, size, off)) {
    out->outcome = MQTTB_CLI_READ_DAMAGED;
  } else {
    out->outcome = MQTTB_CLI_READ_TORN;
  }
  munmap((void *)map, (size_t)size);
  if (repair && out->outcome == MQTTB_CLI_READ_TORN && ftruncate(fd, (off_t)off) != 0) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: cannot cut %s at offset %llu: %s", path,
                  (unsigned long long)off, strerror(errno));
  }
  close(fd);
  if (repair && out->outcome == MQTTB_CLI_READ_DAMAGED) {
    move_aside(path, out);
  }
  return 0;
}

/* ---- the store ---- */

struct mqttb_cli_journal {
  char *dir; /* for messages and paths */
  char *file;
  int dirfd;
  int lockfd;
  bool sync;
  uint32_t autosave_interval;
  bool autosave_on_changes;
  mqttb_cli_journal_snapshot_fn snapshot;
  void *snapshot_arg;

  /* The segment records go to (-1: none, records are lost). */
  int seg_fd;
  uint64_t seg_gen;      /* the current segment's, or the last one used */
  uint64_t seg_size;     /* bytes in it that end at a record boundary */
  uint64_t seg_synced;   /* of which fdatasync'ed */
  uint64_t unsynced;     /* records written since the last fdatasync */
  uint64_t seg_records;  /* records written into it */
  uint64_t older_bytes;  /* bytes of the older segments after the snapshot */
  uint64_t snapshot_gen; /* 0: no snapshot */
  bool replayed;

  uint8_t *buf;
  size_t buf_len, buf_cap;
  uint64_t buf_records;

  /* Records are dropped (a write failed); durable: the disk has every
   * record since the last snapshot. Recovery: degraded false, durable
   * false, a compaction running. */
  bool degraded;
  bool durable;
  bool quiet_retry; /* a failed retry was logged in this episode */
  uint64_t retry_at;

  pid_t child;
  uint64_t child_gen;
  bool child_recovery;
  uint64_t last_compaction_ms;
  bool clock_started;
  uint64_t records_since_compaction;
  bool want_compaction;

  struct mqttb_cli_journal_stats st;
};

/* "<dir>/<name>", for messages and for read_file. */
static void path_of(const struct mqttb_cli_journal *j, const char *name, char *out, size_t outlen) {
  snprintf(out, outlen, "%s/%s", j->dir, name);
}

static void segment_name(const struct mqttb_cli_journal *j, uint64_t gen, char *out,
                         size_t outlen) {
  snprintf(out, outlen, "%s.journal.%llu", j->file, (unsigned long long)gen);
}

/* The generation of a segment file name, or false for any other name. */
static bool parse_segment_name(const struct mqttb_cli_journal *j, const char *name, uint64_t *gen) {
  size_t fl = strlen(j->file);
  static const char mid[] = ".journal.";
  if (strncmp(name, j->file, fl) != 0 || strncmp(name + fl, mid, sizeof mid - 1) != 0) {
    return false;
  }
  const char *d = name + fl + sizeof mid - 1;
  if (*d == '\0' || strlen(d) > 20) {
    return false;
  }
  uint64_t v = 0;
  for (const char *p = d; *p != '\0'; p++) {
    if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) {
      return false;
    }
    v = v * 10 + (uint64_t)(*p - '0');
  }
  *gen = v;
  return true;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The generations of the segment files there are, sorted; NULL and 0 when
 * none (or on error, logged). */
static uint64_t *list_segments(const struct mqttb_cli_journal *j, size_t *count) {
  *count = 0;
  int fd = dup(j->dirfd);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: cannot list %s: %s", j->dir, strerror(errno));
    if (fd >= 0) {
      close(fd);
    }
    return NULL;
  }
  rewinddir(d);
  uint64_t *gens = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    uint64_t g;
    if (!parse_segment_name(j, de->d_name, &g)) {
      continue;
    }
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      uint64_t *grown = realloc(gens, ncap * sizeof *grown);
      if (grown == NULL) {
        break;
      }
      gens = grown;
      cap = ncap;
    }
    gens[n++] = g;
  }
  closedir(d);
  if (n > 0) {
    qsort(gens, n, sizeof *gens, cmp_u64);
  }
  *count = n;
  return gens;
}

/* Delete the segments older than @p gen (the snapshot has them). */
static void delete_segments_before(struct mqttb_cli_journal *j, uint64_t gen) {
  size_t n = 0;
  uint64_t *gens = list_segments(j, &n);
  for (size_t i = 0; i < n && gens[i] < gen; i++) {
    char name[512];
    segment_name(j, gens[i], name, sizeof name);
    if (unlinkat(j->dirfd, name, 0) != 0 && errno != ENOENT) {
      mqttb_cli_log(MQTTB_LOG_WARNING, "persistence: cannot delete %s/%s: %s", j->dir, name,
                    strerror(errno));
    }
  }
  free(gens);
}

static void enter_degraded(struct mqttb_cli_journal *j, const char *what, uint64_t offset,
                           int err) {
  j->st.errors++;
  if (!j->degraded && j->durable) {
    char name[512];
    segment_name(j, j->seg_gen, name, sizeof name);
    mqttb_cli_log(MQTTB_LOG_ERROR,
                  "persistence: %s %s/%s failed at offset %llu: %s. The store is degraded: "
                  "state is kept in memory only until a snapshot succeeds (tried every %u s)",
                  what, j->dir, name, (unsigned long long)offset, strerror(err),
                  MQTTB_CLI_JOURNAL_RETRY_MS / 1000u);
  }
  j->degraded = true;
  j->durable = false;
  j->retry_at = 0;
}

/* Open segment @p gen with its header, synced with its directory entry. */
static int create_segment(struct mqttb_cli_journal *j, uint64_t gen, int *perr) {
  char name[512];
  segment_name(j, gen, name, sizeof name);
  int fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *perr = errno;
    return -1;
  }
  uint8_t h[MQTTB_CLI_JOURNAL_HEADER_SIZE];
  make_header(h, MQTTB_CLI_JOURNAL_SEGMENT, gen);
  ssize_t w = pwrite(fd, h, sizeof h, 0);
  if (w != (ssize_t)sizeof h || fdatasync(fd) != 0 || fsync(j->dirfd) != 0) {
    *perr = w < 0 || w == (ssize_t)sizeof h ? errno : ENOSPC;
    close(fd);
    unlinkat(j->dirfd, name, 0);
    return -1;
  }
  return fd;
}

static void close_segment(struct mqttb_cli_journal *j) {
  if (j->seg_fd >= 0) {
    close(j->seg_fd);
    j->seg_fd = -1;
  }
}

/* Make segment @p gen the current one; the previous one stays on disk. */
static int switch_segment(struct mqttb_cli_journal *j, uint64_t gen, int *perr) {
  int fd = create_segment(j, gen, perr);
  if (fd < 0) {
    return -1;
  }
  if (j->seg_fd >= 0) {
    j->older_bytes += j->seg_size;
  }
  close_segment(j);
  j->seg_fd = fd;
  j->seg_gen = gen;
  j->seg_size = MQTTB_CLI_JOURNAL_HEADER_SIZE;
  j->seg_synced = j->seg_size;
  j->unsynced = 0;
  j->seg_records = 0;
  return 0;
}

static void update_bytes(struct mqttb_cli_journal *j) {
  j->st.journal_bytes = j->older_bytes + (j->seg_fd >= 0 ? j->seg_size : 0);
  j->st.degraded = !j->durable;
}

/* Cut the current segment back to @p size, a record boundary. */
static void cut_segment(struct mqttb_cli_journal *j, uint64_t size) {
  if (ftruncate(j->seg_fd, (off_t)size) != 0) {
    /* What is left past @p size is a torn tail to the next replay. */
    mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: cannot cut the journal back to offset %llu: %s",
                  (unsigned long long)size, strerror(errno));
  }
  j->seg_size = size;
}

static int write_buffer(struct mqttb_cli_journal *j) {
  size_t done = 0;
  int err = 0;
  while (done < j->buf_len) {
    ssize_t w = pwrite(j->seg_fd, j->buf + done, j->buf_len - done, (off_t)(j->seg_size + done));
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      err = w < 0 ? errno : ENOSPC;
      break;
    }
    done += (size_t)w;
  }
  if (err == 0) {
    j->seg_size += j->buf_len;
    j->st.records_written += j->buf_records;
    j->seg_records += j->buf_records;
    j->unsynced += j->buf_records;
  } else {
    /* Keep the records that got in whole. */
    size_t keep = 0;
    uint64_t whole = 0;
    while (keep + MQTTB_CLI_JOURNAL_FRAME_SIZE <= j->buf_len) {
      size_t next = keep + MQTTB_CLI_JOURNAL_FRAME_SIZE + get_le32(j->buf + keep);
      if (next > done) {
        break;
      }
      keep = next;
      whole++;
    }
    uint64_t failed_at = j->seg_size + done;
    cut_segment(j, j->seg_size + keep);
    j->st.records_written += whole;
    j->seg_records += whole;
    j->unsynced += whole;
    j->st.records_lost += j->buf_records - whole;
    enter_degraded(j, "writing", failed_at, err);
  }
  j->buf_len = 0;
  j->buf_records = 0;
  if (j->buf_cap > 4 * MQTTB_CLI_JOURNAL_BUFFER) {
    /* One huge record does not keep its buffer. */
    free(j->buf);
    j->buf = NULL;
    j->buf_cap = 0;
  }
  update_bytes(j);
  return err == 0 ? 0 : -1;
}

static int sync_segment(struct mqttb_cli_journal *j) {
  if (j->seg_fd < 0 || j->seg_synced == j->seg_size) {
    return 0;
  }
  if (fdatasync(j->seg_fd) != 0) {
    int err = errno;
    /* After a failed fdatasync what is in the file past the last good one
     * is unknown: keep only that. */
    uint64_t at = j->seg_size;
    cut_segment(j, j->seg_synced);
    j->st.records_written -= j->unsynced;
    j->seg_records -= j->unsynced;
    j->st.records_lost += j->unsynced;
    j->unsynced = 0;
    enter_degraded(j, "syncing", at, err);
    update_bytes(j);
    return -1;
  }
  j->seg_synced = j->seg_size;
  j->unsynced = 0;
  return 0;
}

void mqttb_cli_journal_append(struct mqttb_cli_journal *j, const uint8_t *rec, size_t len) {
  j->records_since_compaction++;
  if (j->degraded || j->seg_fd < 0) {
    j->st.records_lost++;
    return;
  }
  if (len == 0 || len > MQTTB_CLI_JOURNAL_MAX_RECORD) {
    /* A frame cannot carry it: the disk would miss a record from here on. */
    mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: a store record of %zu bytes cannot be framed",
                  len);
    j->st.records_lost++;
    enter_degraded(j, "framing a record for", j->seg_size, EINVAL);
    return;
  }
  size_t need = j->buf_len + MQTTB_CLI_JOURNAL_FRAME_SIZE + len;
  if (need > j->buf_cap) {
    size_t cap = j->buf_cap ? j->buf_cap : MQTTB_CLI_JOURNAL_BUFFER * 2;
    while (cap < need) {
      cap *= 2;
    }
    uint8_t *grown = realloc(j->buf, cap);
    if (grown == NULL) {
      j->st.records_lost++;
      enter_degraded(j, "buffering a record for", j->seg_size, ENOMEM);
      return;
    }
    j->buf = grown;
    j->buf_cap = cap;
  }
  make_frame(j->buf + j->buf_len, rec, len);
  memcpy(j->buf + j->buf_len + MQTTB_CLI_JOURNAL_FRAME_SIZE, rec, len);
  j->buf_len = need;
  j->buf_records++;
  if (j->buf_len >= MQTTB_CLI_JOURNAL_BUFFER) {
    write_buffer(j);
  }
}

void mqttb_cli_journal_write(struct mqttb_cli_journal *j) {
  if (j->buf_len > 0 && j->seg_fd >= 0 && !j->degraded) {
    write_buffer(j);
  }
}

int mqttb_cli_journal_flush(struct mqttb_cli_journal *j) {
  if (j->buf_len > 0 && j->seg_fd >= 0 && !j->degraded) {
    write_buffer(j);
  }
  if (j->sync && !j->degraded) {
    sync_segment(j);
  }
  return j->degraded ? -1 : 0;
}

/* ---- snapshots ---- */

struct snap_writer {
  int fd;
  uint8_t *buf;
  size_t len;
  uint64_t bytes;
  int err;
};

static int snap_out(struct snap_writer *w, const uint8_t *p, size_t n) {
  while (n > 0) {
    if (w->len == CHILD_BUFFER) {
      size_t done = 0;
      while (done < w->len) {
        ssize_t k = write(w->fd, w->buf + done, w->len - done);
        if (k < 0 && errno == EINTR) {
          continue;
        }
        if (k <= 0) {
          w->err = k < 0 ? errno : ENOSPC;
          return -1;
        }
        done += (size_t)k;
      }
      w->len = 0;
    }
    size_t take = CHILD_BUFFER - w->len < n ? CHILD_BUFFER - w->len : n;
    memcpy(w->buf + w->len, p, take);
    w->len += take;
    w->bytes += take;
    p += take;
    n -= take;
  }
  return 0;
}

static int snap_sink(const uint8_t *rec, size_t len, void *arg) {
  struct snap_writer *w = arg;
  if (len == 0 || len > MQTTB_CLI_JOURNAL_MAX_RECORD) {
    w->err = EINVAL;
    return -1;
  }
  uint8_t frame[MQTTB_CLI_JOURNAL_FRAME_SIZE];
  make_frame(frame, rec, len);
  if (snap_out(w, frame, sizeof frame) != 0 || snap_out(w, rec, len) != 0) {
    return -1;
  }
  return 0;
}

/* Write snapshot @p gen to "<file>.tmp", sync, rename over "<file>", sync
 * the directory. Returns 0, an errno value, or CHILD_EXIT_*. */
static int write_snapshot(struct mqttb_cli_journal *j, uint64_t gen, uint64_t *bytes) {
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s.tmp", j->file);
  struct snap_writer w = {.fd = -1};
  w.buf = malloc(CHILD_BUFFER);
  if (w.buf == NULL) {
    return CHILD_EXIT_NOMEM;
  }
  int rc = 0;
  w.fd = openat(j->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (w.fd < 0) {
    rc = errno;
  } else {
    uint8_t h[MQTTB_CLI_JOURNAL_HEADER_SIZE];
    make_header(h, MQTTB_CLI_JOURNAL_SNAPSHOT, gen);
    if (snap_out(&w, h, sizeof h) != 0) {
      rc = w.err;
    } else if (j->snapshot(snap_sink, &w, j->snapshot_arg) != 0) {
      rc = w.err != 0 ? w.err : CHILD_EXIT_SNAPSHOT;
    }
  }
  if (rc == 0) {
    /* The rest of the buffer. */
    size_t done = 0;
    size_t len = w.len;
    while (done < len) {
      ssize_t k = write(w.fd, w.buf + done, len - done);
      if (k < 0 && errno == EINTR) {
        continue;
      }
      if (k <= 0) {
        rc = k < 0 ? errno : ENOSPC;
        break;
      }
      done += (size_t)k;
    }
  }
  if (rc == 0 && fsync(w.fd) != 0) {
    rc = errno;
  }
  if (w.fd >= 0 && close(w.fd) != 0 && rc == 0) {
    rc = errno;
  }
  if (rc == 0 && renameat(j->dirfd, tmp, j->dirfd, j->file) != 0) {
    rc = errno;
  }
  if (rc == 0 && fsync(j->dirfd) != 0) {
    rc = errno;
  }
  if (rc != 0) {
    unlinkat(j->dirfd, tmp, 0);
  }
  free(w.buf);
  *bytes = w.bytes;
  return rc;
}

static const char *snapshot_error(int code) {
  switch (code) {
  case CHILD_EXIT_SNAPSHOT:
    return "the broker could not produce its snapshot";
  case CHILD_EXIT_NOMEM:
    return "out of memory";
  case CHILD_EXIT_PARENT:
    return "the broker exited first";
  default:
    return strerror(code);
  }
}

static void snapshot_done(struct mqttb_cli_journal *j, uint64_t gen) {
  delete_segments_before(j, gen);
  j->snapshot_gen = gen;
  j->older_bytes = 0;
  struct stat sb;
  j->st.snapshot_bytes = fstatat(j->dirfd, j->file, &sb, 0) == 0 ? (uint64_t)sb.st_size : 0;
  j->st.compactions++;
  update_bytes(j);
}

/* A recovery failed: the current segment follows a state that is not on
 * disk, so it goes, and its records count as lost. */
static void abandon_segment(struct mqttb_cli_journal *j) {
  if (j->seg_fd >= 0 && j->seg_gen == j->child_gen) {
    char name[512];
    segment_name(j, j->seg_gen, name, sizeof name);
    close_segment(j);
    unlinkat(j->dirfd, name, 0);
    j->st.records_written -= j->seg_records;
    j->st.records_lost += j->seg_records;
    j->seg_records = 0;
  }
  j->buf_len = 0;
  j->st.records_lost += j->buf_records;
  j->buf_records = 0;
  j->degraded = true;
  j->durable = false;
  j->retry_at = 0;
}

static void child_finished(struct mqttb_cli_journal *j, int status) {
  pid_t pid = j->child;
  j->child = 0;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 0) {
    snapshot_done(j, j->child_gen);
    mqttb_cli_log(MQTTB_LOG_INFO,
                  "persistence: snapshot %s/%s written (generation %llu, %llu bytes); "
                  "older journal segments removed",
                  j->dir, j->file, (unsigned long long)j->child_gen,
                  (unsigned long long)j->st.snapshot_bytes);
    if (!j->degraded && !j->durable) {
      j->durable = true;
      j->quiet_retry = false;
      mqttb_cli_log(MQTTB_LOG_NOTICE,
                    "persistence: the store is durable again (snapshot generation %llu holds "
                    "the state; records go to the journal)",
                    (unsigned long long)j->child_gen);
    }
    update_bytes(j);
    return;
  }
  j->st.errors++;
  char why[128];
  if (code >= 0) {
    snprintf(why, sizeof why, "%s", snapshot_error(code));
  } else {
    snprintf(why, sizeof why, "compaction process %d killed by signal %d", (int)pid,
             WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
  if (j->child_recovery) {
    /* The new segment follows a state that is not on disk: drop it. */
    if (!j->quiet_retry) {
      mqttb_cli_log(MQTTB_LOG_ERROR,
                    "persistence: writing the snapshot %s/%s.tmp failed: %s; the store stays "
                    "degraded",
                    j->dir, j->file, why);
    }
    j->quiet_retry = true;
    abandon_segment(j);
  } else {
    mqttb_cli_log(MQTTB_LOG_ERROR,
                  "persistence: writing the snapshot %s/%s.tmp failed: %s; the journal "
                  "segments are kept",
                  j->dir, j->file, why);
  }
  update_bytes(j);
}

static void reap(struct mqttb_cli_journal *j, bool block) {
  if (j->child <= 0) {
    return;
  }
  int status = 0;
  pid_t r;
  do {
    r = waitpid(j->child, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == j->child) {
    child_finished(j, status);
  } else if (r < 0) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: waitpid: %s", strerror(errno));
    child_finished(j, 1 << 8);
  }
}

bool mqttb_cli_journal_compacting(const struct mqttb_cli_journal *j) {
  return j->child > 0;
}

void mqttb_cli_journal_wait(struct mqttb_cli_journal *j) {
  reap(j, true);
}

int mqttb_cli_journal_compact(struct mqttb_cli_journal *j, uint64_t now_ms) {
  if (j->child > 0 || j->snapshot == NULL) {
    return -1;
  }
  j->last_compaction_ms = now_ms;
  j->records_since_compaction = 0;
  j->want_compaction = false;
  /* Everything so far goes into the segments before the new one. */
  mqttb_cli_journal_flush(j);
  if (!j->degraded) {
    sync_segment(j);
  }
  bool recovery = !j->durable;
  uint64_t gen = j->seg_gen + 1;
  int err = 0;
  if (switch_segment(j, gen, &err) != 0) {
    j->st.errors++;
    if (!recovery) {
      mqttb_cli_log(MQTTB_LOG_WARNING,
                    "persistence: compaction postponed: cannot create a journal segment in %s: "
                    "%s",
                    j->dir, strerror(err));
    } else if (!j->quiet_retry) {
      mqttb_cli_log(MQTTB_LOG_ERROR,
                    "persistence: the store stays degraded: cannot create a journal segment in "
                    "%s: %s",
                    j->dir, strerror(err));
      j->quiet_retry = true;
    }
    /* A recovery's next try gets a fresh generation. */
    j->seg_gen = gen;
    update_bytes(j);
    return -1;
  }
  if (recovery) {
    /* Records go to the new segment from now on; it counts once the
     * snapshot under it exists. */
    j->degraded = false;
  }
  fflush(NULL);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    /* The child: no sockets, no atexit handlers, dies with the broker so
     * that a restarted one never races with it over the files. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(CHILD_EXIT_PARENT);
    }
    uint64_t bytes = 0;
    _exit(write_snapshot(j, gen, &bytes));
  }
  j->child_gen = gen;
  j->child_recovery = recovery;
  if (pid < 0) {
    /* A plain compaction keeps the new segment: the chain is whole. */
    mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: cannot fork for a compaction: %s",
                  strerror(errno));
    j->st.errors++;
    if (recovery) {
      abandon_segment(j);
    }
    update_bytes(j);
    return -1;
  }
  j->child = pid;
  mqttb_cli_log(MQTTB_LOG_DEBUG, "persistence: compaction %d started (generation %llu)", (int)pid,
                (unsigned long long)gen);
  update_bytes(j);
  return 0;
}

int mqttb_cli_journal_tick(struct mqttb_cli_journal *j, uint64_t now_ms) {
  if (!j->clock_started) {
    j->clock_started = true;
    j->last_compaction_ms = now_ms;
  }
  reap(j, false);
  if (j->child <= 0) {
    uint64_t interval_ms = (uint64_t)j->autosave_interval * 1000u;
    bool go = false;
    if (!j->durable) {
      if (j->retry_at == 0) {
        j->retry_at = now_ms + MQTTB_CLI_JOURNAL_RETRY_MS;
      }
      go = now_ms >= j->retry_at;
    } else if (j->want_compaction) {
      go = true;
    } else if (j->autosave_interval > 0 && j->autosave_on_changes) {
      go = j->records_since_compaction >= j->autosave_interval;
    } else if (j->autosave_interval > 0) {
      go = j->records_since_compaction > 0 && now_ms - j->last_compaction_ms >= interval_ms;
    }
    if (!go && j->durable && j->st.journal_bytes > MQTTB_CLI_JOURNAL_GROWTH_LIMIT &&
        j->st.journal_bytes / 2 > j->st.snapshot_bytes) {
      go = true;
    }
    if (go) {
      if (!j->durable) {
        j->retry_at = now_ms + MQTTB_CLI_JOURNAL_RETRY_MS;
      }
      mqttb_cli_journal_compact(j, now_ms);
    }
  }
  mqttb_cli_journal_flush(j);
  if (j->child > 0) {
    return CHILD_POLL_MS;
  }
  if (!j->durable) {
    return j->retry_at > now_ms ? (int)(j->retry_at - now_ms) : 0;
  }
  if (j->autosave_interval > 0 && !j->autosave_on_changes && j->records_since_compaction > 0) {
    uint64_t due = j->last_compaction_ms + (uint64_t)j->autosave_interval * 1000u;
    uint64_t left = due > now_ms ? due - now_ms : 0;
    return left > 60000u ? 60000 : (int)left;
  }
  return -1;
}

int mqttb_cli_journal_compact_sync(struct mqttb_cli_journal *j) {
  reap(j, true);
  if (j->snapshot == NULL) {
    return -1;
  }
  mqttb_cli_journal_flush(j);
  if (!j->degraded) {
    sync_segment(j);
  }
  uint64_t gen = j->seg_gen + 1;
  uint64_t bytes = 0;
  int rc = write_snapshot(j, gen, &bytes);
  if (rc != 0) {
    j->st.errors++;
    mqttb_cli_log(MQTTB_LOG_ERROR,
                  "persistence: writing the snapshot %s/%s.tmp at shutdown failed: %s; %s", j->dir,
                  j->file, snapshot_error(rc),
                  j->durable ? "the journal segments are kept"
                             : "changes since the store became degraded are lost");
    return -1;
  }
  close_segment(j);
  j->seg_gen = gen;
  snapshot_done(j, gen);
  j->durable = true;
  j->degraded = false;
  update_bytes(j);
  mqttb_cli_log(MQTTB_LOG_NOTICE, "persistence: saved the state to %s/%s (%llu bytes)", j->dir,
                j->file, (unsigned long long)bytes);
  return 0;
}

/* ---- open, replay, close ---- */

static int take_lock(struct mqttb_cli_journal *j, unsigned wait_ms, char *err, size_t errlen) {
  char name[512];
  snprintf(name, sizeof name, "%s.lock", j->file);
  j->lockfd = openat(j->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (j->lockfd < 0) {
    snprintf(err, errlen, "persistence_location %s: cannot create %s: %s", j->dir, name,
             strerror(errno));
    return -1;
  }
  struct timespec pause = {0, 20 * 1000000L};
  for (unsigned waited = 0;; waited += 20) {
    if (flock(j->lockfd, LOCK_EX | LOCK_NB) == 0) {
      break;
    }
    if (errno != EWOULDBLOCK && errno != EINTR) {
      snprintf(err, errlen, "persistence_location %s: cannot lock %s: %s", j->dir, name,
               strerror(errno));
      return -1;
    }
    if (waited >= wait_ms) {
      char pid[32] = "";
      ssize_t n = pread(j->lockfd, pid, sizeof pid - 1, 0);
      pid[n > 0 ? n : 0] = '\0';
      pid[strcspn(pid, "\n")] = '\0';
      snprintf(err, errlen,
               "persistence_location %s: %s/%s is in use by another process (pid %s): one "
               "broker per persistence_location and persistence_file",
               j->dir, j->dir, j->file, pid[0] ? pid : "?");
      return -1;
    }
    nanosleep(&pause, NULL);
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(j->lockfd, 0) != 0 || pwrite(j->lockfd, pid, (size_t)n, 0) != n) {
    /* Only informative. */
    mqttb_cli_log(MQTTB_LOG_DEBUG, "persistence: cannot write the pid into %s: %s", name,
                  strerror(errno));
  }
  return 0;
}

struct mqttb_cli_journal *mqttb_cli_journal_open(const struct mqttb_cli_journal_options *opts,
                                                 unsigned lock_wait_ms, char *err, size_t errlen) {
  struct mqttb_cli_journal *j = calloc(1, sizeof *j);
  const char *dir = opts->dir != NULL && opts->dir[0] != '\0' ? opts->dir : ".";
  if (j == NULL || (j->dir = strdup(dir)) == NULL || (j->file = strdup(opts->file)) == NULL) {
    snprintf(err, errlen, "out of memory");
    mqttb_cli_journal_close(j);
    return NULL;
  }
  /* "/var/lib/mosquitto/" names the same directory as "/var/lib/mosquitto". */
  size_t dl = strlen(j->dir);
  while (dl > 1 && j->dir[dl - 1] == '/') {
    j->dir[--dl] = '\0';
  }
  j->dirfd = -1;
  j->lockfd = -1;
  j->seg_fd = -1;
  j->durable = true;
  j->sync = opts->sync;
  j->autosave_interval = opts->autosave_interval;
  j->autosave_on_changes = opts->autosave_on_changes;
  j->snapshot = opts->snapshot;
  j->snapshot_arg = opts->snapshot_arg;
  if (mkdir(j->dir, 0700) == 0) {
    mqttb_cli_log(MQTTB_LOG_NOTICE, "persistence: created the directory %s", j->dir);
  } else if (errno != EEXIST) {
    snprintf(err, errlen, "persistence_location %s: cannot create the directory: %s", j->dir,
             strerror(errno));
    mqttb_cli_journal_close(j);
    return NULL;
  }
  j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (j->dirfd < 0) {
    snprintf(err, errlen, "persistence_location %s: %s", j->dir, strerror(errno));
    mqttb_cli_journal_close(j);
    return NULL;
  }
  if (take_lock(j, lock_wait_ms, err, errlen) != 0) {
    mqttb_cli_journal_close(j);
    return NULL;
  }
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s.tmp", j->file);
  if (unlinkat(j->dirfd, tmp, 0) == 0) {
    mqttb_cli_log(MQTTB_LOG_NOTICE,
                  "persistence: removed %s/%s, an unfinished snapshot of an earlier run", j->dir,
                  tmp);
  }
  return j;
}

/* Log what a damaged file cost; true when anything was wrong. */
static bool report(const char *path, const struct mqttb_cli_journal_read *r,
                   struct mqttb_cli_journal_replay *out) {
  uint64_t lost = r->file_bytes - r->good_bytes;
  switch (r->outcome) {
  case MQTTB_CLI_READ_CLEAN:
  case MQTTB_CLI_READ_EMPTY:
    return false;
  case MQTTB_CLI_READ_TORN:
    out->torn_files++;
    out->lost_bytes += lost;
    mqttb_cli_log(MQTTB_LOG_WARNING,
                  "persistence: %s: torn tail at offset %llu (%s): cut off %llu bytes after %llu "
                  "complete records",
                  path, (unsigned long long)r->damage_offset, r->reason, (unsigned long long)lost,
                  (unsigned long long)r->records);
    return true;
  case MQTTB_CLI_READ_DAMAGED:
  case MQTTB_CLI_READ_BAD_HEADER:
    out->damaged_files++;
    out->lost_bytes += lost;
    mqttb_cli_log(MQTTB_LOG_ERROR,
                  "persistence: %s is damaged at offset %llu (%s): %llu records before it "
                  "applied, %llu bytes lost; the file was moved to %s",
                  path, (unsigned long long)r->damage_offset, r->reason,
                  (unsigned long long)r->records, (unsigned long long)lost,
                  r->moved_to[0] ? r->moved_to : "(could not be moved)");
    return true;
  case MQTTB_CLI_READ_ERROR:
    break;
  }
  out->damaged_files++;
  mqttb_cli_log(MQTTB_LOG_ERROR, "persistence: cannot read %s: %s; what it held is not restored",
                path, r->reason);
  return true;
}

void mqttb_cli_journal_replay(struct mqttb_cli_journal *j, mqttb_cli_journal_record_fn fn,
                              void *arg, struct mqttb_cli_journal_replay *out) {
  memset(out, 0, sizeof *out);
  bool trouble = false;
  char path[1024];
  struct mqttb_cli_journal_read r;
  uint64_t snap_gen = 0;
  uint64_t snap_records = 0;
  path_of(j, j->file, path, sizeof path);
  if (access(path, F_OK) == 0) {
    mqttb_cli_journal_read_file(path, MQTTB_CLI_JOURNAL_SNAPSHOT, true, fn, arg, &r);
    out->files++;
    out->records += r.records;
    snap_records = r.records;
    trouble |= report(path, &r, out);
    if (r.outcome != MQTTB_CLI_READ_BAD_HEADER && r.outcome != MQTTB_CLI_READ_ERROR) {
      snap_gen = r.generation;
      j->st.snapshot_bytes = r.good_bytes;
    }
  }
  j->snapshot_gen = snap_gen;
  size_t n = 0;
  uint64_t *gens = list_segments(j, &n);
  uint64_t highest = 0;
  uint64_t kept_bytes = 0;
  uint64_t seg_records = 0, segs = 0;
  for (size_t i = 0; i < n; i++) {
    char name[512];
    segment_name(j, gens[i], name, sizeof name);
    path_of(j, name, path, sizeof path);
    highest = gens[i] > highest ? gens[i] : highest;
    if (gens[i] < snap_gen) {
      /* Left over by a compaction that ended before it could delete them. */
      unlinkat(j->dirfd, name, 0);
      continue;
    }
    mqttb_cli_journal_read_file(path, MQTTB_CLI_JOURNAL_SEGMENT, true, fn, arg, &r);
    out->files++;
    segs++;
    out->records += r.records;
    seg_records += r.records;
    trouble |= report(path, &r, out);
    if (r.outcome == MQTTB_CLI_READ_EMPTY) {
      unlinkat(j->dirfd, name, 0);
    } else if (r.outcome == MQTTB_CLI_READ_CLEAN || r.outcome == MQTTB_CLI_READ_TORN) {
      kept_bytes += r.good_bytes;
      if (r.generation != gens[i]) {
        mqttb_cli_log(MQTTB_LOG_WARNING,
                      "persistence: %s has generation %llu in its header; read as %llu", path,
                      (unsigned long long)r.generation, (unsigned long long)gens[i]);
      }
    }
  }
  free(gens);
  if (out->files > 0) {
    mqttb_cli_log(MQTTB_LOG_NOTICE,
                  "persistence: restored %llu records from %s/%s (snapshot generation %llu, %llu "
                  "records; %llu journal segments, %llu records)%s",
                  (unsigned long long)out->records, j->dir, j->file, (unsigned long long)snap_gen,
                  (unsigned long long)snap_records, (unsigned long long)segs,
                  (unsigned long long)seg_records, trouble ? "; damage found, see above" : "");
  } else {
    mqttb_cli_log(MQTTB_LOG_NOTICE, "persistence: no stored state in %s/%s; starting empty", j->dir,
                  j->file);
  }
  j->older_bytes = kept_bytes;
  uint64_t gen = highest + 1 > snap_gen ? highest + 1 : snap_gen;
  if (gen == 0) {
    gen = 1;
  }
  int err = 0;
  j->seg_gen = gen - 1;
  if (switch_segment(j, gen, &err) != 0) {
    j->seg_gen = gen;
    enter_degraded(j, "creating", 0, err);
  }
  j->replayed = true;
  j->want_compaction = trouble || kept_bytes > STARTUP_COMPACT_BYTES;
  update_bytes(j);
}

bool mqttb_cli_journal_wants_compaction(const struct mqttb_cli_journal *j) {
  return j->want_compaction;
}

void mqttb_cli_journal_set_sync(struct mqttb_cli_journal *j, bool sync) {
  j->sync = sync;
}

void mqttb_cli_journal_set_autosave(struct mqttb_cli_journal *j, uint32_t interval,
                                    bool on_changes) {
  j->autosave_interval = interval;
  j->autosave_on_changes = on_changes;
}

const struct mqttb_cli_journal_stats *
mqttb_cli_journal_get_stats(const struct mqttb_cli_journal *j) {
  return &j->st;
}

void mqttb_cli_journal_close(struct mqttb_cli_journal *j) {
  if (j == NULL) {
    return;
  }
  reap(j, true);
  if (j->seg_fd >= 0) {
    mqttb_cli_journal_flush(j);
    if (!j->degraded) {
      sync_segment(j);
    }
    close_segment(j);
  }
  if (j->lockfd >= 0) {
    close(j->lockfd);
  }
  if (j->dirfd >= 0) {
    close(j->dirfd);
  }
  free(j->buf);
  free(j->dir);
  free(j->file);
  free(j);
}
