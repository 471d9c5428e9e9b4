/* SPDX-License-Identifier: MIT */
/* cli/journal.c: the store files of mqttb. CRC32C test vectors; records
 * written and read back; a segment cut at every byte of its last records
 * (the complete ones come back, the tail is cut off); a flipped byte in the
 * middle (the records before it come back, the file is moved aside);
 * damaged headers, empty files, a 0xFFFFFFFF length under a small address
 * space limit; replay of a snapshot and segments; forked and synchronous
 * compaction; a full disk (RLIMIT_FSIZE) and recovery. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../cli/journal.h"

/* ---- helpers ---- */

static char dir[256];

static void make_dir(void) {
  snprintf(dir, sizeof dir, "/tmp/mqttb-journal-test-XXXXXX");
  cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
}

static void remove_dir(void) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    return;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
      char p[600];
      snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
      unlink(p);
    }
  }
  closedir(d);
  rmdir(dir);
}

static void path(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", dir, name);
}

static bool exists(const char *name) {
  char p[600];
  path(p, sizeof p, name);
  return access(p, F_OK) == 0;
}

static size_t count_files(const char *prefix) {
  DIR *d = opendir(dir);
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
  }
  closedir(d);
  return n;
}

static uint64_t file_size(const char *p) {
  struct stat sb;
  cr_assert(eq(int, stat(p, &sb), 0), "%s: %s", p, strerror(errno));
  return (uint64_t)sb.st_size;
}

/* Record i: "rec-<i>-" and then i % 300 bytes of (i + k). */
static size_t make_record(unsigned i, uint8_t *out) {
  int n = snprintf((char *)out, 32, "rec-%u-", i);
  size_t len = (size_t)n;
  for (unsigned k = 0; k < i % 300; k++) {
    out[len++] = (uint8_t)(i + k);
  }
  return len;
}

/* What the reader handed over. */
struct seen {
  uint8_t *data[4096];
  size_t len[4096];
  size_t n;
};

static void collect(const uint8_t *rec, size_t len, void *arg) {
  struct seen *s = arg;
  cr_assert(lt(sz, s->n, 4096));
  s->data[s->n] = malloc(len);
  memcpy(s->data[s->n], rec, len);
  s->len[s->n] = len;
  s->n++;
}

static void seen_free(struct seen *s) {
  for (size_t i = 0; i < s->n; i++) {
    free(s->data[i]);
  }
  s->n = 0;
}

/* Records first..first+n-1 came in that order. */
static void assert_records(const struct seen *s, size_t at, unsigned first, unsigned n) {
  uint8_t want[400];
  for (unsigned i = 0; i < n; i++) {
    size_t len = make_record(first + i, want);
    cr_assert(lt(sz, at + i, s->n), "record %u missing (%zu seen)", first + i, s->n);
    cr_assert(eq(sz, s->len[at + i], len), "record %u: length", first + i);
    cr_assert(eq(int, memcmp(s->data[at + i], want, len), 0), "record %u: contents", first + i);
  }
}

/* A segment file "<name>" of generation @p gen with records 0..n-1, byte
 * for byte as the format says; @p ends receives each record's end offset. */
static void put32(uint8_t *p, uint32_t v) {
  for (int k = 0; k < 4; k++) {
    p[k] = (uint8_t)(v >> (8 * k));
  }
}

static size_t build_file(uint8_t *buf, const char *magic, uint64_t gen, unsigned first, unsigned n,
                         size_t *ends) {
  memcpy(buf, magic, 8);
  put32(buf + 8, 1);
  put32(buf + 12, (uint32_t)gen);
  put32(buf + 16, (uint32_t)(gen >> 32));
  put32(buf + 20, mqttb_cli_crc32c(0, buf, 20));
  size_t off = MQTTB_CLI_JOURNAL_HEADER_SIZE;
  for (unsigned i = 0; i < n; i++) {
    size_t len = make_record(first + i, buf + off + 8);
    put32(buf + off, (uint32_t)len);
    put32(buf + off + 4, mqttb_cli_crc32c(0, buf + off + 8, len));
    off += 8 + len;
    if (ends != NULL) {
      ends[i] = off;
    }
  }
  return off;
}

static void write_file(const char *name, const uint8_t *buf, size_t len) {
  char p[600];
  path(p, sizeof p, name);
  FILE *f = fopen(p, "wb");
  cr_assert(not(eq(ptr, f, NULL)));
  cr_assert(eq(sz, fwrite(buf, 1, len, f), len));
  fclose(f);
}

static uint8_t filebuf[1 << 20];

/* ---- CRC32C ---- */

static uint32_t crc_bitwise(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) {
      c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
  }
  return ~c;
}

Test(journal, crc32c_test_vectors) {
  cr_assert(eq(u32, mqttb_cli_crc32c(0, "123456789", 9), 0xE3069283u));
  cr_assert(eq(u32, mqttb_cli_crc32c(0, "", 0), 0u));
  /* RFC 3720 B.4 (iSCSI). */
  uint8_t b[32];
  memset(b, 0, sizeof b);
  cr_assert(eq(u32, mqttb_cli_crc32c(0, b, 32), 0x8A9136AAu));
  memset(b, 0xff, sizeof b);
  cr_assert(eq(u32, mqttb_cli_crc32c(0, b, 32), 0x62A8AB43u));
  for (int i = 0; i < 32; i++) {
    b[i] = (uint8_t)i;
  }
  cr_assert(eq(u32, mqttb_cli_crc32c(0, b, 32), 0x46DD794Eu));
  for (int i = 0; i < 32; i++) {
    b[i] = (uint8_t)(31 - i);
  }
  cr_assert(eq(u32, mqttb_cli_crc32c(0, b, 32), 0x113FDB5Cu));
}

Test(journal, crc32c_matches_bitwise_at_every_length_and_alignment) {
  uint8_t data[300];
  srand(7);
  for (size_t i = 0; i < sizeof data; i++) {
    data[i] = (uint8_t)rand();
  }
  for (size_t start = 0; start < 9; start++) {
    for (size_t n = 0; start + n <= sizeof data; n += 7) {
      cr_assert(eq(u32, mqttb_cli_crc32c(0, data + start, n), crc_bitwise(data + start, n)),
                "start %zu length %zu", start, n);
      /* Continued in two pieces. */
      size_t half = n / 3;
      uint32_t c = mqttb_cli_crc32c(0, data + start, half);
      cr_assert(eq(u32, mqttb_cli_crc32c(c, data + start + half, n - half),
                   crc_bitwise(data + start, n)));
    }
  }
}

/* ---- reading files ---- */

Test(journal, records_written_by_the_store_read_back, .init = make_dir, .fini = remove_dir) {
  struct mqttb_cli_journal_options o = {.dir = dir, .file = "t.db", .sync = true};
  char err[256];
  struct mqttb_cli_journal *j = mqttb_cli_journal_open(&o, 0, err, sizeof err);
  cr_assert(not(eq(ptr, j, NULL)), "%s", err);
  struct mqttb_cli_journal_replay rp;
  mqttb_cli_journal_replay(j, NULL, NULL, &rp);
  cr_assert(eq(u64, rp.records, 0));
  uint8_t rec[400];
  for (unsigned i = 0; i < 1000; i++) {
    size_t len = make_record(i, rec);
    mqttb_cli_journal_append(j, rec, len);
    if (i % 97 == 0) {
      cr_assert(eq(int, mqttb_cli_journal_flush(j), 0));
    }
  }
  cr_assert(eq(int, mqttb_cli_journal_flush(j), 0));
  const struct mqttb_cli_journal_stats *st = mqttb_cli_journal_get_stats(j);
  cr_assert(eq(u64, st->records_written, 1000));
  cr_assert(eq(u64, st->records_lost, 0));
  cr_assert(not(st->degraded));
  mqttb_cli_journal_close(j);
  cr_assert(exists("t.db.journal.1"));
  cr_assert(exists("t.db.lock"));

  char p[600];
  path(p, sizeof p, "t.db.journal.1");
  struct seen s = {.n = 0};
  struct mqttb_cli_journal_read r;
  cr_assert(
      eq(int, mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, true, collect, &s, &r), 0));
  cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_CLEAN));
  cr_assert(eq(u64, r.generation, 1));
  cr_assert(eq(u64, r.records, 1000));
  cr_assert(eq(u64, r.good_bytes, r.file_bytes));
  assert_records(&s, 0, 0, 1000);
  seen_free(&s);
  /* The byte layout is the documented one: our own builder makes the same file. */
  size_t len = build_file(filebuf, "MQTTBJNL", 1, 0, 1000, NULL);
  cr_assert(eq(u64, file_size(p), len));
  FILE *f = fopen(p, "rb");
  static uint8_t got[sizeof filebuf];
  cr_assert(eq(sz, fread(got, 1, sizeof got, f), len));
  fclose(f);
  cr_assert(eq(int, memcmp(got, filebuf, len), 0));
}

Test(journal, cut_at_every_byte_of_the_last_records_gives_the_complete_ones, .init = make_dir,
     .fini = remove_dir) {
  size_t ends[40];
  size_t total = build_file(filebuf, "MQTTBJNL", 7, 0, 40, ends);
  char p[600];
  path(p, sizeof p, "x.journal.7");
  /* Every cut from the middle of the 36th record to the end. */
  for (size_t cut = ends[34] - 3; cut <= total; cut++) {
    write_file("x.journal.7", filebuf, cut);
    struct seen s = {.n = 0};
    struct mqttb_cli_journal_read r;
    cr_assert(eq(
        int, mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, true, collect, &s, &r), 0));
    unsigned complete = 0;
    while (complete < 40 && ends[complete] <= cut) {
      complete++;
    }
    size_t boundary = ends[complete - 1];
    cr_assert(eq(u64, r.records, complete), "cut at %zu", cut);
    cr_assert(eq(sz, s.n, complete));
    assert_records(&s, 0, 0, complete);
    cr_assert(eq(u64, r.good_bytes, boundary), "cut at %zu", cut);
    if (cut == boundary) {
      cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_CLEAN), "cut at %zu", cut);
    } else {
      cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_TORN), "cut at %zu: outcome %d (%s)", cut,
                r.outcome, r.reason);
      cr_assert(eq(u64, r.damage_offset, boundary));
    }
    /* Repaired: cut back to the boundary, so the next read is clean. */
    cr_assert(eq(u64, file_size(p), boundary), "cut at %zu", cut);
    seen_free(&s);
    cr_assert(eq(
        int, mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, false, NULL, NULL, &r), 0));
    cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_CLEAN));
  }
  /* Inside the header: an empty segment, nothing read. */
  for (size_t cut = 0; cut < MQTTB_CLI_JOURNAL_HEADER_SIZE; cut++) {
    write_file("x.journal.7", filebuf, cut);
    struct mqttb_cli_journal_read r;
    mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, true, NULL, NULL, &r);
    cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_EMPTY), "cut at %zu", cut);
    cr_assert(eq(u64, r.records, 0));
  }
}

Test(journal, a_zero_filled_tail_is_torn, .init = make_dir, .fini = remove_dir) {
  /* Power loss after the size grew but before the data reached the disk. */
  size_t ends[10];
  size_t total = build_file(filebuf, "MQTTBJNL", 1, 0, 10, ends);
  memset(filebuf + total, 0, 4096);
  write_file("z", filebuf, total + 4096);
  char p[600];
  path(p, sizeof p, "z");
  struct mqttb_cli_journal_read r;
  mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, true, NULL, NULL, &r);
  cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_TORN), "%s", r.reason);
  cr_assert(eq(u64, r.records, 10));
  cr_assert(eq(u64, file_size(p), total));
}

Test(journal, a_flipped_byte_in_the_middle_keeps_what_came_before_and_moves_the_file,
     .init = make_dir, .fini = remove_dir) {
  size_t ends[50];
  size_t total = build_file(filebuf, "MQTTBJNL", 3, 0, 50, ends);
  char p[600];
  path(p, sizeof p, "m.journal.3");
  /* In record 20's payload, in its CRC field, in its length field. */
  size_t spots[] = {ends[19] + 12, ends[19] + 5, ends[19] + 1, ends[19] + 3};
  for (size_t k = 0; k < sizeof spots / sizeof spots[0]; k++) {
    static uint8_t copy[sizeof filebuf];
    memcpy(copy, filebuf, total);
    copy[spots[k]] ^= 0x40;
    write_file("m.journal.3", copy, total);
    struct seen s = {.n = 0};
    struct mqttb_cli_journal_read r;
    mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, true, collect, &s, &r);
    cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_DAMAGED), "spot %zu: %d %s", spots[k], r.outcome,
              r.reason);
    cr_assert(eq(u64, r.records, 20));
    assert_records(&s, 0, 0, 20);
    cr_assert(eq(sz, s.n, 20));
    cr_assert(eq(u64, r.damage_offset, ends[19]));
    cr_assert(eq(u64, r.good_bytes, ends[19]));
    cr_assert(eq(u64, r.file_bytes, total));
    cr_assert(eq(int, access(p, F_OK), -1), "the damaged file is still there");
    cr_assert(eq(int, strncmp(r.moved_to, p, strlen(p)), 0));
    cr_assert(not(eq(ptr, strstr(r.moved_to, ".corrupt."), NULL)));
    /* Moved aside whole, for a post mortem. */
    cr_assert(eq(u64, file_size(r.moved_to), total));
    unlink(r.moved_to);
    seen_free(&s);
  }
}

Test(journal, damaged_headers_are_moved_aside_with_nothing_read, .init = make_dir,
     .fini = remove_dir) {
  size_t total = build_file(filebuf, "MQTTBSNP", 9, 0, 5, NULL);
  char p[600];
  path(p, sizeof p, "h.db");
  const char *reasons[] = {"magic", "checksum", "checksum", "version"};
  for (int k = 0; k < 4; k++) {
    static uint8_t copy[sizeof filebuf];
    memcpy(copy, filebuf, total);
    if (k == 0) {
      copy[3] ^= 1; /* magic */
    } else if (k == 1) {
      copy[14] ^= 1; /* generation */
    } else if (k == 2) {
      copy[21] ^= 1; /* the CRC itself */
    } else {
      put32(copy + 8, 2); /* a later format, with a matching CRC */
      put32(copy + 20, mqttb_cli_crc32c(0, copy, 20));
    }
    write_file("h.db", copy, total);
    struct seen s = {.n = 0};
    struct mqttb_cli_journal_read r;
    mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SNAPSHOT, true, collect, &s, &r);
    cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_BAD_HEADER), "case %d", k);
    cr_assert(eq(u64, r.records, 0));
    cr_assert(eq(sz, s.n, 0));
    cr_assert(not(eq(ptr, strstr(r.reason, reasons[k]), NULL)), "case %d: %s", k, r.reason);
    cr_assert(eq(int, access(p, F_OK), -1));
    unlink(r.moved_to);
  }
  /* A segment's magic is not a snapshot's. */
  total = build_file(filebuf, "MQTTBJNL", 9, 0, 5, NULL);
  write_file("h.db", filebuf, total);
  struct mqttb_cli_journal_read r;
  mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SNAPSHOT, false, NULL, NULL, &r);
  cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_BAD_HEADER));
}

Test(journal, zero_length_files, .init = make_dir, .fini = remove_dir) {
  write_file("e", filebuf, 0);
  char p[600];
  path(p, sizeof p, "e");
  struct mqttb_cli_journal_read r;
  cr_assert(
      eq(int, mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, true, NULL, NULL, &r), 0));
  cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_EMPTY));
  cr_assert(eq(u64, r.records, 0));
  /* A snapshot only appears complete: an empty one is damage. */
  cr_assert(
      eq(int, mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SNAPSHOT, true, NULL, NULL, &r), 0));
  cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_BAD_HEADER));
  cr_assert(eq(int, access(p, F_OK), -1));
  unlink(r.moved_to);
  /* A missing file is an error, not a crash. */
  cr_assert(
      eq(int, mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, true, NULL, NULL, &r), -1));
  cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_ERROR));
  cr_assert(eq(int, r.error, ENOENT));
}

Test(journal, a_length_of_0xffffffff_allocates_nothing, .init = make_dir, .fini = remove_dir) {
  size_t ends[4];
  size_t total = build_file(filebuf, "MQTTBJNL", 1, 0, 4, ends);
  /* Record 2's length becomes 0xFFFFFFFF; records 3 and 4 are intact. */
  put32(filebuf + ends[1], 0xFFFFFFFFu);
  write_file("big", filebuf, total);
  /* 4 GiB could not be had under this limit. AddressSanitizer reserves
   * terabytes of address space for its shadow memory, so under it the
   * limit is left out (the outcome is checked all the same). */
#if !defined(__SANITIZE_ADDRESS__)
  struct rlimit rl = {.rlim_cur = 1024u * 1024u * 1024u, .rlim_max = RLIM_INFINITY};
  getrlimit(RLIMIT_AS, &rl);
  rl.rlim_cur = 1024u * 1024u * 1024u;
  cr_assert(eq(int, setrlimit(RLIMIT_AS, &rl), 0));
#endif
  char p[600];
  path(p, sizeof p, "big");
  struct seen s = {.n = 0};
  struct mqttb_cli_journal_read r;
  cr_assert(
      eq(int, mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, true, collect, &s, &r), 0));
  cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_DAMAGED), "%d %s", r.outcome, r.reason);
  cr_assert(eq(u64, r.records, 2));
  cr_assert(not(eq(ptr, strstr(r.reason, "4294967295"), NULL)), "%s", r.reason);
  seen_free(&s);
  /* As the last record: a torn tail. */
  total = build_file(filebuf, "MQTTBJNL", 1, 0, 4, ends);
  put32(filebuf + ends[2], 0xFFFFFFFFu);
  write_file("big2", filebuf, total);
  path(p, sizeof p, "big2");
  mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, true, NULL, NULL, &r);
  cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_TORN));
  cr_assert(eq(u64, r.records, 3));
  cr_assert(eq(u64, file_size(p), ends[2]));
}

/* ---- the store ---- */

/* The test's "broker": its state is records first..first+n-1. */
struct fake_state {
  unsigned first, n;
  int fail;
};

static int fake_snapshot(mqttb_cli_journal_sink sink, void *sink_arg, void *arg) {
  struct fake_state *st = arg;
  if (st->fail) {
    return 1;
  }
  uint8_t rec[400];
  for (unsigned i = 0; i < st->n; i++) {
    size_t len = make_record(st->first + i, rec);
    int rc = sink(rec, len, sink_arg);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static struct mqttb_cli_journal *open_store(struct fake_state *fs, struct seen *s,
                                            struct mqttb_cli_journal_replay *rp) {
  struct mqttb_cli_journal_options o = {.dir = dir,
                                        .file = "s.db",
                                        .autosave_interval = 0,
                                        .snapshot = fake_snapshot,
                                        .snapshot_arg = fs};
  char err[256];
  struct mqttb_cli_journal *j = mqttb_cli_journal_open(&o, 0, err, sizeof err);
  cr_assert(not(eq(ptr, j, NULL)), "%s", err);
  mqttb_cli_journal_replay(j, collect, s, rp);
  return j;
}

static void append_range(struct mqttb_cli_journal *j, unsigned first, unsigned n) {
  uint8_t rec[400];
  for (unsigned i = first; i < first + n; i++) {
    size_t len = make_record(i, rec);
    mqttb_cli_journal_append(j, rec, len);
  }
}

Test(journal, replay_reads_the_snapshot_then_its_segments_in_order, .init = make_dir,
     .fini = remove_dir) {
  size_t len = build_file(filebuf, "MQTTBSNP", 3, 0, 10, NULL);
  write_file("s.db", filebuf, len);
  /* Segment 2 is in the snapshot already; 3 and 10 follow it. */
  len = build_file(filebuf, "MQTTBJNL", 2, 500, 5, NULL);
  write_file("s.db.journal.2", filebuf, len);
  len = build_file(filebuf, "MQTTBJNL", 3, 10, 5, NULL);
  write_file("s.db.journal.3", filebuf, len);
  len = build_file(filebuf, "MQTTBJNL", 10, 15, 7, NULL);
  write_file("s.db.journal.10", filebuf, len);
  write_file("s.db.journal.x", filebuf, len); /* not a segment name: left alone */
  write_file("s.db.tmp", filebuf, 10);        /* an unfinished snapshot */
  struct fake_state fs = {0, 0, 0};
  struct seen s = {.n = 0};
  struct mqttb_cli_journal_replay rp;
  struct mqttb_cli_journal *j = open_store(&fs, &s, &rp);
  cr_assert(eq(u64, rp.records, 22));
  cr_assert(eq(u64, rp.files, 3));
  cr_assert(eq(u64, rp.damaged_files + rp.torn_files, 0));
  assert_records(&s, 0, 0, 22);
  cr_assert(not(exists("s.db.journal.2")));
  cr_assert(not(exists("s.db.tmp")));
  cr_assert(exists("s.db.journal.x"));
  /* New records go to a new segment after the highest. */
  cr_assert(exists("s.db.journal.11"));
  cr_assert(not(mqttb_cli_journal_wants_compaction(j)));
  mqttb_cli_journal_close(j);
  seen_free(&s);
}

Test(journal, replay_goes_on_after_a_damaged_file_and_compacts, .init = make_dir,
     .fini = remove_dir) {
  size_t ends[10];
  size_t len = build_file(filebuf, "MQTTBJNL", 1, 0, 10, ends);
  filebuf[ends[3] + 10] ^= 1; /* record 4 */
  write_file("s.db.journal.1", filebuf, len);
  len = build_file(filebuf, "MQTTBJNL", 2, 10, 3, ends);
  write_file("s.db.journal.2", filebuf, len - 2); /* torn */
  struct fake_state fs = {0, 0, 0};
  struct seen s = {.n = 0};
  struct mqttb_cli_journal_replay rp;
  struct mqttb_cli_journal *j = open_store(&fs, &s, &rp);
  cr_assert(eq(u64, rp.records, 4 + 2));
  assert_records(&s, 0, 0, 4);
  assert_records(&s, 4, 10, 2);
  cr_assert(eq(u64, rp.damaged_files, 1));
  cr_assert(eq(u64, rp.torn_files, 1));
  cr_assert(eq(u64, count_files("s.db.journal.1.corrupt."), 1));
  cr_assert(mqttb_cli_journal_wants_compaction(j));
  /* The first tick compacts; the state is what was restored. */
  fs.first = 0;
  fs.n = 6;
  mqttb_cli_journal_tick(j, 1000);
  cr_assert(mqttb_cli_journal_compacting(j));
  mqttb_cli_journal_wait(j);
  cr_assert(exists("s.db"));
  cr_assert(not(exists("s.db.journal.2")));
  cr_assert(not(exists("s.db.journal.3")));
  cr_assert(exists("s.db.journal.4"));
  cr_assert(eq(u64, mqttb_cli_journal_get_stats(j)->compactions, 1));
  mqttb_cli_journal_close(j);
  seen_free(&s);
}

Test(journal, forked_compaction_then_replay_gives_snapshot_and_later_records, .init = make_dir,
     .fini = remove_dir) {
  struct fake_state fs = {0, 0, 0};
  struct seen s = {.n = 0};
  struct mqttb_cli_journal_replay rp;
  struct mqttb_cli_journal *j = open_store(&fs, &s, &rp);
  append_range(j, 0, 100);
  /* The "broker" state is the 100 records; compaction forks and records
   * appended meanwhile go to the next segment. */
  fs.n = 100;
  cr_assert(eq(int, mqttb_cli_journal_compact(j, 5), 0));
  append_range(j, 100, 50);
  mqttb_cli_journal_flush(j);
  mqttb_cli_journal_wait(j);
  cr_assert(not(mqttb_cli_journal_compacting(j)));
  cr_assert(not(exists("s.db.journal.1")));
  cr_assert(exists("s.db.journal.2"));
  const struct mqttb_cli_journal_stats *st = mqttb_cli_journal_get_stats(j);
  cr_assert(eq(u64, st->compactions, 1));
  cr_assert(lt(u64, 100 * 8, st->snapshot_bytes));
  mqttb_cli_journal_close(j);

  struct seen s2 = {.n = 0};
  j = open_store(&fs, &s2, &rp);
  cr_assert(eq(sz, s2.n, 150));
  assert_records(&s2, 0, 0, 150);
  mqttb_cli_journal_close(j);
  seen_free(&s);
  seen_free(&s2);
}

Test(journal, a_failed_compaction_keeps_the_segments, .init = make_dir, .fini = remove_dir) {
  struct fake_state fs = {0, 0, 1};
  struct seen s = {.n = 0};
  struct mqttb_cli_journal_replay rp;
  struct mqttb_cli_journal *j = open_store(&fs, &s, &rp);
  append_range(j, 0, 30);
  cr_assert(eq(int, mqttb_cli_journal_compact(j, 5), 0));
  append_range(j, 30, 30);
  mqttb_cli_journal_wait(j);
  const struct mqttb_cli_journal_stats *st = mqttb_cli_journal_get_stats(j);
  cr_assert(eq(u64, st->compactions, 0));
  cr_assert(eq(u64, st->errors, 1));
  cr_assert(not(st->degraded));
  cr_assert(not(exists("s.db")));
  cr_assert(not(exists("s.db.tmp")));
  mqttb_cli_journal_close(j);
  struct seen s2 = {.n = 0};
  j = open_store(&fs, &s2, &rp);
  assert_records(&s2, 0, 0, 60);
  cr_assert(eq(sz, s2.n, 60));
  mqttb_cli_journal_close(j);
  seen_free(&s2);
}

Test(journal, shutdown_snapshot_replaces_every_segment, .init = make_dir, .fini = remove_dir) {
  struct fake_state fs = {0, 0, 0};
  struct seen s = {.n = 0};
  struct mqttb_cli_journal_replay rp;
  struct mqttb_cli_journal *j = open_store(&fs, &s, &rp);
  append_range(j, 0, 40);
  fs.first = 5; /* the state is not the history: the snapshot is what counts */
  fs.n = 20;
  cr_assert(eq(int, mqttb_cli_journal_compact_sync(j), 0));
  mqttb_cli_journal_close(j);
  cr_assert(eq(sz, count_files("s.db.journal."), 0));
  struct seen s2 = {.n = 0};
  j = open_store(&fs, &s2, &rp);
  cr_assert(eq(sz, s2.n, 20));
  assert_records(&s2, 0, 5, 20);
  cr_assert(exists("s.db.journal.2"));
  mqttb_cli_journal_close(j);
  seen_free(&s2);
}

Test(journal, autosave_interval_and_on_changes, .init = make_dir, .fini = remove_dir) {
  struct fake_state fs = {0, 0, 0};
  struct seen s = {.n = 0};
  struct mqttb_cli_journal_replay rp;
  struct mqttb_cli_journal *j = open_store(&fs, &s, &rp);
  mqttb_cli_journal_set_autosave(j, 10, false);
  mqttb_cli_journal_tick(j, 1000);
  /* Nothing recorded: no compaction however long it has been. */
  mqttb_cli_journal_tick(j, 100000);
  cr_assert(not(mqttb_cli_journal_compacting(j)));
  append_range(j, 0, 3);
  int wait = mqttb_cli_journal_tick(j, 100000);
  cr_assert(mqttb_cli_journal_compacting(j), "wait %d", wait);
  mqttb_cli_journal_wait(j);
  append_range(j, 3, 3);
  wait = mqttb_cli_journal_tick(j, 105000);
  cr_assert(not(mqttb_cli_journal_compacting(j)));
  cr_assert(eq(int, wait, 5000));
  mqttb_cli_journal_tick(j, 110000);
  cr_assert(mqttb_cli_journal_compacting(j));
  mqttb_cli_journal_wait(j);
  /* On changes: after 5 records. */
  mqttb_cli_journal_set_autosave(j, 5, true);
  append_range(j, 6, 4);
  mqttb_cli_journal_tick(j, 999999);
  cr_assert(not(mqttb_cli_journal_compacting(j)));
  append_range(j, 10, 1);
  mqttb_cli_journal_tick(j, 999999);
  cr_assert(mqttb_cli_journal_compacting(j));
  mqttb_cli_journal_close(j);
  cr_assert(eq(u64, count_files("s.db.tmp"), 0));
}

Test(journal, a_full_disk_degrades_then_a_snapshot_recovers, .init = make_dir, .fini = remove_dir) {
  signal(SIGXFSZ, SIG_IGN); /* writes past RLIMIT_FSIZE fail with EFBIG */
  struct fake_state fs = {0, 0, 0};
  struct seen s = {.n = 0};
  struct mqttb_cli_journal_replay rp;
  struct mqttb_cli_journal *j = open_store(&fs, &s, &rp);
  struct rlimit rl;
  getrlimit(RLIMIT_FSIZE, &rl);
  struct rlimit small = {.rlim_cur = 20000, .rlim_max = rl.rlim_max};
  cr_assert(eq(int, setrlimit(RLIMIT_FSIZE, &small), 0));
  mqttb_cli_journal_tick(j, 1000);
  unsigned i = 0;
  while (mqttb_cli_journal_flush(j) == 0 && i < 2000) {
    append_range(j, i, 10);
    i += 10;
  }
  const struct mqttb_cli_journal_stats *st = mqttb_cli_journal_get_stats(j);
  cr_assert(st->degraded);
  cr_assert(lt(u32, i, 2000));
  cr_assert(eq(u64, st->errors, 1));
  cr_assert(lt(u64, 0, st->records_lost));
  uint64_t written = st->records_written;
  cr_assert(eq(u64, written + st->records_lost, i));
  /* More records while degraded: counted, not written. */
  append_range(j, i, 10);
  i += 10;
  cr_assert(eq(int, mqttb_cli_journal_flush(j), -1));
  cr_assert(eq(u64, st->records_written + st->records_lost, i));
  /* The segment ends at a record boundary: the records that made it. */
  char p[600];
  path(p, sizeof p, "s.db.journal.1");
  struct mqttb_cli_journal_read r;
  mqttb_cli_journal_read_file(p, MQTTB_CLI_JOURNAL_SEGMENT, false, NULL, NULL, &r);
  cr_assert(eq(int, r.outcome, MQTTB_CLI_READ_CLEAN), "%s", r.reason);
  cr_assert(eq(u64, r.records, written));

  /* Still full at the retry, 10 s later: the snapshot fails, still degraded,
   * the half-made segment goes. The state is larger than the limit. */
  fs.n = 400;
  int wait = mqttb_cli_journal_tick(j, 5000);
  cr_assert(not(mqttb_cli_journal_compacting(j)));
  cr_assert(eq(int, wait, 10000));
  mqttb_cli_journal_tick(j, 15000);
  cr_assert(mqttb_cli_journal_compacting(j));
  mqttb_cli_journal_wait(j);
  cr_assert(st->degraded);
  cr_assert(not(exists("s.db")));
  cr_assert(not(exists("s.db.tmp")));
  cr_assert(not(exists("s.db.journal.2")));
  cr_assert(exists("s.db.journal.1"));
  cr_assert(eq(u64, st->errors, 2));

  /* Space again: the next retry writes the whole state. */
  cr_assert(eq(int, setrlimit(RLIMIT_FSIZE, &rl), 0));
  wait = mqttb_cli_journal_tick(j, 16000);
  cr_assert(eq(int, wait, 10000));
  mqttb_cli_journal_tick(j, 26000);
  cr_assert(mqttb_cli_journal_compacting(j));
  append_range(j, 400, 5); /* after the fork: into the new segment */
  mqttb_cli_journal_wait(j);
  mqttb_cli_journal_flush(j);
  cr_assert(not(st->degraded));
  cr_assert(exists("s.db"));
  cr_assert(not(exists("s.db.journal.1")));
  cr_assert(exists("s.db.journal.3"));
  mqttb_cli_journal_close(j);

  struct seen s2 = {.n = 0};
  j = open_store(&fs, &s2, &rp);
  cr_assert(eq(sz, s2.n, 405));
  assert_records(&s2, 0, 0, 405);
  mqttb_cli_journal_close(j);
  seen_free(&s2);
}

Test(journal, a_second_broker_on_the_same_files_is_refused, .init = make_dir, .fini = remove_dir) {
  struct mqttb_cli_journal_options o = {.dir = dir, .file = "l.db"};
  char err[256];
  struct mqttb_cli_journal *a = mqttb_cli_journal_open(&o, 0, err, sizeof err);
  cr_assert(not(eq(ptr, a, NULL)));
  struct mqttb_cli_journal *b = mqttb_cli_journal_open(&o, 100, err, sizeof err);
  cr_assert(eq(ptr, b, NULL));
  cr_assert(not(eq(ptr, strstr(err, "in use by another process"), NULL)), "%s", err);
  mqttb_cli_journal_close(a);
  b = mqttb_cli_journal_open(&o, 0, err, sizeof err);
  cr_assert(not(eq(ptr, b, NULL)), "%s", err);
  mqttb_cli_journal_close(b);
}

Test(journal, a_missing_directory_is_created_an_impossible_one_refused, .init = make_dir,
     .fini = remove_dir) {
  char sub[400];
  snprintf(sub, sizeof sub, "%s/sub/", dir);
  struct mqttb_cli_journal_options o = {.dir = sub, .file = "d.db"};
  char err[256];
  struct mqttb_cli_journal *j = mqttb_cli_journal_open(&o, 0, err, sizeof err);
  cr_assert(not(eq(ptr, j, NULL)), "%s", err);
  mqttb_cli_journal_close(j);
  snprintf(sub, sizeof sub, "%s/sub/d.db.lock", dir);
  unlink(sub);
  snprintf(sub, sizeof sub, "%s/sub", dir);
  rmdir(sub);
  snprintf(sub, sizeof sub, "%s/no/such/dir", dir);
  o.dir = sub;
  j = mqttb_cli_journal_open(&o, 0, err, sizeof err);
  cr_assert(eq(ptr, j, NULL));
  cr_assert(not(eq(ptr, strstr(err, sub), NULL)), "%s", err);
  cr_assert(not(eq(ptr, strstr(err, "No such file"), NULL)), "%s", err);
}
