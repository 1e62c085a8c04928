/*
 * wlog: the append-only write log (format in logfmt.h).
 *
 * Owns the segment files of DATADIR/log: appends records at the tail, reads
 * data back by log address, makes the tail durable, and at open replays the
 * records after a checkpoint.
 *
 * Concurrency: wlog_append() and wlog_replay() must be serialized by the
 * caller (the store's log lock: the order of appends is the order of the
 * map updates).  wlog_read(), wlog_sync(), wlog_tail() may run concurrently
 * with an append.
 *
 * Durability: an appended record is in the page cache when wlog_append()
 * returns.  wlog_sync(w, upto) returns once every record before log address
 * `upto` is on stable storage (fdatasync, or its medium's ack: media.h).  A
 * segment is made durable before the next one is created, so only the
 * newest segment can ever have a torn tail.
 *
 * Error convention: 0 or a negative errno.
 */
#ifndef HCOWFS_WLOG_H
#define HCOWFS_WLOG_H

#include <stddef.h>
#include <stdint.h>

#include "logfmt.h"

#define WLOG_SEGMENT_SIZE_DEFAULT	(UINT64_C(1) << 30)
#define WLOG_SEGMENT_SIZE_MIN		(UINT64_C(16) << 20)
/*
 * Segment numbers are never reused.  A laddr has 24 bits for the number,
 * but the catalog keeps a laddr as a signed 64-bit integer: 2^23 segments,
 * 128 TiB written with 16 MiB segments, 8 PiB with 1 GiB ones.
 */
#define WLOG_SEGMENTS_MAX		(1u << 23)
#define WLOG_SPARES_MAX			8	/* released segments' files kept for reuse: a cleaner pass's */

struct wlog;

/* What replay found; filled by wlog_replay(). */
struct wlog_replay_stats {
	uint64_t records;	/* valid records applied */
	uint64_t bytes;		/* log bytes scanned */
	uint64_t torn_bytes;	/* bytes dropped from the tail */
	uint64_t stale_bytes;	/* bytes of an earlier use of a reused file cut after the end */
	uint64_t damaged;	/* of the records, damaged after they were synced (wlog_replay.c) */
};

/*
 * Create a new, empty log in dir (which must exist): segment 1, header only.
 * The first record will be at log address wlog_first_laddr().
 */
int wlog_create(const char *dir, const uint8_t uuid[16]);
/* The same, with segment 1 made durable on medium m (media.h; NULL: local). */
struct media;
int wlog_create_on(const char *dir, const uint8_t uuid[16], struct media *m);
uint64_t wlog_first_laddr(void);

/*
 * Open the log in dir.  Checks every segment header against uuid.
 * Appends are not allowed until wlog_replay() has found the tail.
 */
int wlog_open(const char *dir, const uint8_t uuid[16], uint64_t segment_size,
    struct wlog **out, char *err, size_t errlen);
/*
 * Open for checking: files are opened read-only and nothing is changed.  An
 * incomplete newest segment is skipped and a torn tail is not cut; both are
 * described by wlog_note().  Appends fail with -EROFS.
 */
int wlog_open_ro(const char *dir, const uint8_t uuid[16], struct wlog **out,
    char *err, size_t errlen);
const char *wlog_note(const struct wlog *w);	/* NULL if nothing to say */
/*
 * Make the segments durable on medium m (media.h) instead of by fdatasync
 * alone: after wlog_open, before wlog_replay.  The caller keeps m open
 * until wlog_close.
 */
void wlog_set_media(struct wlog *w, struct media *m);
void wlog_close(struct wlog *w);

/*
 * Scan the records from log address `from`, whose sequence numbers must start
 * at next_seq, calling apply for each valid one (rec_laddr = its address).
 * Stops at the first invalid record: in the newest segment that is the end
 * of the log (a torn tail, or stale bytes of an earlier use of a reused
 * file, logfmt.h), cut off (file truncated, see below) so appends continue
 * there; in an older segment, before its end, it is corruption: -EUCLEAN,
 * with err saying where.  An error from apply stops the scan and is returned.
 */
/*
 * With trust_complete (a takeover after a worker died, the machine up all
 * along), data checksums are verified only for a record that ends the log:
 * appends are serialized, so a record followed by another was written whole,
 * and the page cache holds what was written.  After a machine crash
 * (first open of a mount) every record is verified.  A takeover cuts only a
 * torn record; stale bytes after the end are left to be overwritten.  A
 * first open cuts whatever follows the end: after a power cut, records
 * written after a lost one may lie there.
 */
int wlog_replay(struct wlog *w, uint64_t from, uint64_t next_seq, int trust_complete,
    int (*apply)(const struct rec_header *h, uint64_t rec_laddr, void *arg), void *arg,
    struct wlog_replay_stats *stats, char *err, size_t errlen);

/*
 * Append a record.  The caller fills type, disk_id, offset, length; wlog
 * fills magic, seq and checksums.  data is `length` bytes for REC_WRITE and
 * NULL otherwise.  On success *rec_laddr is the record's address.  On
 * failure (-ENOSPC, -EIO...) nothing was appended.
 */
int wlog_append(struct wlog *w, struct rec_header *h, const void *data,
    uint64_t *rec_laddr);

/*
 * The checksums of a REC_WRITE's data: its crc table and the table's crc.
 * They depend on the data alone, so a writer computes them before it takes
 * the lock that serializes appends, and concurrent writers checksum in
 * parallel instead of one after another.
 */
struct wlog_sums {
	uint64_t length;			/* data bytes they were computed for */
	uint32_t data_crc;			/* crc32c of the table */
	uint32_t table[REC_DATA_MAX / REC_BLOCK];
};
void wlog_sums_compute(struct wlog_sums *sums, const void *data, uint64_t length);
/*
 * wlog_append() with the data's checksums computed beforehand.  sums may be
 * NULL, and sums for a length other than h->length are ignored: wlog
 * computes them itself then, so a record always carries its own data's crcs.
 */
int wlog_append_sums(struct wlog *w, struct rec_header *h, const void *data,
    const struct wlog_sums *sums, uint64_t *rec_laddr);

/*
 * Read bytes [doff, doff+len) of a disk of this family (logfmt.h) from the
 * REC_WRITE at log address rec, after checking that its header is sound and
 * names them, and
 * that every block they touch matches its checksum.  0; -EBADMSG with *why
 * set when the record is damaged or is not what the caller expected; other
 * -errno when the segment cannot be read.
 */
int wlog_read(struct wlog *w, uint64_t rec, uint64_t family, uint64_t doff,
    void *buf, size_t len, const char **why);

/*
 * wlog_read for a guest's reads: the same checks, but the header and crc
 * table of a record read before may come from memory (reccache.h), so a
 * read of a few blocks of a long record costs one pread, not two.  Every
 * data block is still read from the segment and checked against its crc;
 * what goes unseen is a header or table damaged on disk after it was
 * cached (the bytes served are right all the same).  hcowctl check must
 * see the log as it is on disk, so it uses wlog_read().
 */
int wlog_read_cached(struct wlog *w, uint64_t rec, uint64_t family, uint64_t doff,
    void *buf, size_t len, const char **why);

/*
 * Ask for log bytes [from, to) (one segment's) to be brought into the page
 * cache in the background, as large sequential reads: a caller about to
 * read many records there in log order (the cleaner's moves, the
 * defragmenter's sweeps) gets them from one long read of the disk instead
 * of a seek each.  Only advice: nothing is checked, and reads still verify
 * what they return.
 */
void wlog_prefetch(struct wlog *w, uint64_t from, uint64_t to);

/*
 * Keep the newest segment's file written, with zeros made durable, `ahead`
 * bytes beyond the tail (a thread of the log does it, from the first
 * wlog_sync() on), so that an append and its fdatasync write data alone,
 * and no file system metadata (docs/design.md, "Flushes").  0 stops
 * filling.  After wlog_replay(), never on a read-only log; 0 or -EINVAL.
 */
int wlog_set_fill(struct wlog *w, uint64_t ahead);
#define WLOG_FILL_AHEAD_DEFAULT		(UINT64_C(32) << 20)

/* Make every record before `upto` durable (group commit: one fdatasync serves all waiters). */
int wlog_sync(struct wlog *w, uint64_t upto);

/*
 * Fault injection only: when set, an append writes the record header, calls
 * hook(arg), then writes the data, so a crash can be placed inside a record.
 */
void wlog_set_append_hook(struct wlog *w, void (*hook)(void *arg), void *arg);

uint64_t wlog_tail(const struct wlog *w);	/* address of the next record */
uint64_t wlog_next_seq(const struct wlog *w);
uint64_t wlog_size(const struct wlog *w);	/* bytes appended to all segments */
uint64_t wlog_disk_bytes(const struct wlog *w);	/* of those, still on disk */
/*
 * Bytes on disk kept for reuse, not holding records: spare files, and the
 * stale rest of the newest segment when it is a reused file.
 */
uint64_t wlog_spare_bytes(const struct wlog *w);

/*
 * The cleaner's view: the lowest and the newest segment numbers (numbers
 * between them may be missing: released), one segment's size in bytes:
 * where its records end, header included (-EINVAL if there is no such
 * segment, or it was released), and giving a segment's records back.
 * wlog_release() removes a sealed segment (never the newest) and closes its
 * fd: its file becomes a spare, reused by a later roll, when the pool has
 * room and the file system has plenty of free space; else it is deleted.
 * Releasing it again is 0.  The caller guarantees that nothing refers to
 * its records any more: no extent, no catalog row, no snapshot, no
 * checkpoint position, no read in flight.
 */
void wlog_segments(const struct wlog *w, uint32_t *first, uint32_t *last);
int64_t wlog_segment_bytes(const struct wlog *w, uint32_t segno);
int wlog_release(struct wlog *w, uint32_t segno);

#endif
