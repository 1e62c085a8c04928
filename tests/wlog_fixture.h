/*
 * wlog_fixture.h: what the write-log tests share (tests/wlog_fixture.c).
 *
 * Every test works in a fresh log directory, tdir, under the run's directory.
 * Records are appended through wlog_append(); the seg_*() helpers then read
 * and damage the segment files with plain file I/O, so that a test can check
 * what replay and wlog_read() make of them.
 */
#ifndef HCOWFS_TESTS_WLOG_FIXTURE_H
#define HCOWFS_TESTS_WLOG_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "fixture.h"
#include "logfmt.h"
#include "wlog.h"

#define BLK		((uint64_t)REC_BLOCK)
#define HDR		((uint64_t)sizeof(struct rec_header))
#define SEGHDR		((uint64_t)sizeof(struct seg_header))
/* A REC_WRITE of len data bytes: where its data starts (after the crc table), its size on disk. */
#define WREC_DATA(len)	(HDR + 4 * (((uint64_t)(len) + BLK - 1) / BLK))
#define WREC_SIZE(len)	(WREC_DATA(len) + (uint64_t)(len))
/*
 * A 1 MiB write record is 64 + 1 KiB (crc table: 256 entries) + 1 MiB bytes:
 * 64 + 15 * (64 + 1 KiB + 1 MiB) = 15745024 <= 16 MiB = 16777216
 *    < 64 + 16 * (64 + 1 KiB + 1 MiB) = 16794688.
 */
#define REC1M_PER_SEG	15
_Static_assert(SEGHDR + REC1M_PER_SEG * WREC_SIZE(MiB) <= WLOG_SEGMENT_SIZE_MIN &&
    SEGHDR + (REC1M_PER_SEG + 1) * WREC_SIZE(MiB) > WLOG_SEGMENT_SIZE_MIN,
    "REC1M_PER_SEG 1 MiB records fill a minimum-size segment");

/* this store's uuid, and another store's */
extern const uint8_t UUID_A[16];
extern const uint8_t UUID_B[16];

/* The test's log directory, made by wlog_setup(). */
extern char tdir[128];

/* Check fixture: a fresh, empty log directory for each test. */
void wlog_setup(void);

/* xorshift64, and buffers filled from it by seed */
extern uint64_t rng_state;
uint64_t rng(void);
void fill(void *buf, size_t len, uint64_t seed);

void seg_path(uint32_t segno, char *buf, size_t len);

int64_t seg_size(uint32_t segno);

/* Exactly len bytes at off of segment segno's file, read or written past the log. */
void seg_pread(uint32_t segno, void *buf, size_t len, uint64_t off);
void seg_pwrite(uint32_t segno, const void *buf, size_t len, uint64_t off);

void seg_flip_bit(uint32_t segno, uint64_t off, int bit);

void seg_truncate(uint32_t segno, uint64_t size);

/* How many "*.seg.cut-*" files the log dir holds, and the size of the last. */
int cut_files(int64_t *size);

/* Open file descriptors of this process. */
int open_fds(void);

void assert_bytes_eq(const void *got, const void *want, size_t len, const char *what);

/* Replay collector. */
struct seen {
	struct rec_header h;
	uint64_t rec_laddr;
};

struct collector {
	struct seen	*v;
	size_t		 n, cap;
	size_t		 fail_at;	/* return fail_rc for the record with this index (if rc set) */
	int		 fail_rc;
};

int collect(const struct rec_header *h, uint64_t rec_laddr, void *arg);

struct wlog *log_open(uint64_t segment_size);

/* Closes w and frees the records c collected. */
void log_close(struct wlog *w, struct collector *c);

int log_replay_trusting(struct wlog *w, uint64_t from, uint64_t seq, int trust_complete,
    struct collector *c, struct wlog_replay_stats *rs, char *err, size_t errlen);

int log_replay(struct wlog *w, uint64_t from, uint64_t seq, struct collector *c,
    struct wlog_replay_stats *rs, char *err, size_t errlen);

/* Open and replay a log from its start; asserts success. */
struct wlog *log_open_replayed(uint64_t segment_size, struct collector *c,
    struct wlog_replay_stats *rs);
/* Close w (NULL: already closed) and c's records, open again and replay from the start. */
struct wlog *log_reopen_replayed(struct wlog *w, uint64_t segment_size, struct collector *c,
    struct wlog_replay_stats *rs);

struct wlog *new_log(uint64_t segment_size);

uint64_t append(struct wlog *w, uint16_t type, uint64_t disk, uint64_t off, uint64_t len,
    const void *data, struct rec_header *out);

/* Append one REC_WRITE of len bytes of disk 1 at doff, data seeded by seed; its address. */
uint64_t append_one(struct wlog *w, uint64_t doff, size_t len, uint64_t seed);

uint32_t hdr_crc_of(const struct rec_header *h);

/*
 * Append n WRITE records of len bytes to disk 1 at disk offset i * len (data
 * seeded by index); fill laddrs[] with the records' addresses.
 */
void append_writes(struct wlog *w, int n, size_t len, uint64_t *laddrs, unsigned char *data_out);

/*
 * The REC_WRITE of len bytes at file offset pos of segment segno, as it is on
 * disk: a crc table of one crc32c per 4 KiB block of data (the last one
 * short), data_crc = crc32c of that table, then the data itself.
 */
void check_write_record_on_disk(uint32_t segno, uint64_t pos, const void *data, uint64_t len);

/*
 * Change data byte `at` of the REC_WRITE of len bytes at file offset pos and
 * rewrite its block's crc table entry to match: every block agrees with the
 * table, only the header's data_crc (the crc of the table) can tell.
 */
void seg_rewrite_block_and_table(uint32_t segno, uint64_t pos, uint64_t len, uint64_t at);

/* Set by a test: read_expect() reads through wlog_read_cached(), as a guest's read does. */
extern int read_cached;

/*
 * wlog_read (or wlog_read_cached) of n bytes of disk `disk` at doff from the record at rec, into a
 * buffer with guard bytes on both sides.  want != NULL: it must succeed with
 * exactly those bytes.  want == NULL: it must fail with -EBADMSG and a reason,
 * which is returned.  Either way nothing is written outside the n bytes.
 */
const char *read_expect(struct wlog *w, uint64_t rec, uint64_t disk, uint64_t doff,
    size_t n, const void *want, const char *what);

/*
 * Every read [s, e) of the record at rec (disk `disk`, data byte 0 at disk
 * offset doff0, len bytes, expected contents data) whose ends are at a block
 * edge, next to one, or at the record's ends.  Data bytes [bad_lo, bad_hi) are
 * a damaged block: a read touching it must fail with a checksum reason, every
 * other read must return the right bytes.
 */
void check_ranges(struct wlog *w, uint64_t rec, uint64_t disk, uint64_t doff0,
    const unsigned char *data, uint64_t len, uint64_t bad_lo, uint64_t bad_hi);

void write_seg_header(uint32_t file_segno, uint64_t segno, const uint8_t uuid[16],
    uint32_t version);

#endif
