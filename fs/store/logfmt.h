/*
 * logfmt: the on-disk format of the write log.  Defined here and nowhere else.
 * Segment headers are written by wlog.c and wlog_segment.c, records by
 * wlog_append.c; replay (wlog_replay.c) and reads (wlog_read.c) check them.
 *
 * The log is a sequence of segment files DATADIR/log/SSSSSSSS.seg (SSSSSSSS =
 * segment number, hex, from 1).  A segment starts with a seg_header and is
 * followed by records packed back to back:
 *
 *     seg_header (64) | rec_header (64) [crc table] [data] | rec_header (64) | ...
 *
 * A record is self-describing: which disk, which logical range, its sequence
 * number (one counter for the whole store, +1 per record) and checksums.
 * From the log alone every mapping since the last checkpoint can be rebuilt;
 * a record is valid only if its header checksum, its data checksums and its
 * sequence number (exactly previous + 1) all agree, so a torn or stale tail
 * ends replay.
 *
 * Reused files (version 3).  A segment file given back by the cleaner may be
 * kept as a spare, DATADIR/log/SSSSSSSS.spare (SSSSSSSS = the segment it was;
 * its content means nothing), and later become a new segment: a fresh header
 * is written over its first 64 bytes and it is renamed to the new segment's
 * name.  Overwriting pages a file already has is cheaper than allocating new
 * ones, for tmpfs and disk file systems alike.  So in a version 3 log the
 * bytes after a segment's last record may be stale: records of an earlier
 * life of the file, whose sequence numbers are all below those of the new
 * life (the counter is store-wide), or anything else.  Where records end:
 *   - a sealed segment (not the newest): at the next segment's header's
 *     prev_end, if that is not 0; else (a version 2 segment after it) at the
 *     file's size.  A segment given back by the cleaner is cut to its header
 *     (as it always was), so its records end at min(file size, prev_end);
 *   - the newest segment: at the first record that is not valid.  In a reused
 *     file, each append also writes a REC_END marker after its record when
 *     stale bytes follow, so that the end after a clean stop, a killed worker
 *     or a killed mount is a marker and not something that looks torn.
 *
 * Version 2 segments (prev_end 0, never reused) are still read; new segments
 * are written as version 5 (the record types below say which version
 * brought each).
 *
 * Record types:
 *   REC_WRITE  the disk's bytes at [offset, offset+length).  The header is
 *              followed by a crc table, one crc32c per REC_BLOCK bytes of
 *              data (counted from the data's start, the last block may be
 *              short), then the `length` data bytes.  data_crc is the crc32c
 *              of the table, so the header vouches for every block.  A read
 *              verifies just the blocks it touches: a damaged block is an
 *              error for the ranges it holds, never wrong bytes.
 *   REC_ZERO   [offset, offset+length) reads as zeros (discard, zero range).
 *              With REC_F_GROW the disk first grows to offset+length if it
 *              is smaller: a zero range past the end is one record, so a
 *              crash cannot leave the disk grown but not zeroed.
 *   REC_SIZE   the disk's size becomes `offset` (truncate, grow or shrink).
 *   REC_CLONE  (v4) disk_id's map and size become a copy of those of disk
 *              aux, as they are at this record (a snapshot, a clone, a
 *              rollback); offset and length are 0.  Replay applies it only
 *              above the index's position (checkpoint.c): below it, the
 *              index already holds the copy and what followed it.
 *   REC_LINK   (v4) disk_id's [offset, offset+length) maps to the bytes of
 *              the REC_WRITE at laddr aux, as its own writes would: a
 *              record the cleaner moved for one disk, shared by others.
 *   REC_SHARE  (v5) disk_id's [offset, offset+length) becomes what disk aux
 *              maps there, as it is at this record (its records, zeros,
 *              or its template's bytes; copy_file_range in the mount,
 *              share.c), and the disk grows to offset+length if smaller;
 *              aux 0: the range reads from disk_id's own template.  Both
 *              disks are of one family and template.  Replay applies it
 *              above the index's position; below it, the index holds it,
 *              and the range is cleared from what replay built so far.
 *   REC_END    not a record: a 64-byte header (seq = the next record's, all
 *              else 0 but magic and hdr_crc) marking the end of the log in a
 *              reused file.  Never replayed, never pointed at, overwritten by
 *              the next append.
 *
 * Families (v4).  A REC_WRITE's aux names the family its bytes belong to:
 * the disk first made from a template, whose snapshots and clones (and
 * theirs) share its records; 0 (every older record) means the writing disk.
 * A read checks the record's family against the reading disk's, so a map
 * that points into another family's records is an error, never that
 * family's data.
 *
 * The synced mark.  Each record's header carries `synced`: the log address
 * before which every record was known durable (fdatasync'ed) when it was
 * appended.  A record whose header checks out proves that claim, so replay
 * can tell damage inside synced records (bit rot: keep what follows) from a
 * torn tail (records not yet synced when power failed: cut).  It was a
 * reserved field, always 0, which still means "no claim": older records are
 * read as before, and older readers ignore it, so the version stays 3.
 *
 * A log address (laddr) names a byte of the log: segment number << 40 |
 * offset in the segment.  An extent points at the laddr of the record
 * holding its bytes; disk offset x of the extent is data byte
 * x - header.offset of that record.
 *
 * All integers are little-endian (the only byte order hcowfs runs on; the
 * static assertion below refuses to build elsewhere).
 */
#ifndef HCOWFS_LOGFMT_H
#define HCOWFS_LOGFMT_H

#include <stdint.h>

#define LOG_FORMAT_VERSION	5
#define LOG_FORMAT_VERSION_MIN	2	/* oldest segment header still read */

#define SEG_MAGIC		"HCOWSEG1"
#define REC_MAGIC		0x43455248u	/* "HREC" */

#define LADDR_SEG_SHIFT		40
#define LADDR_OFF_MASK		((UINT64_C(1) << LADDR_SEG_SHIFT) - 1)
#define LADDR(seg, off)		(((uint64_t)(seg) << LADDR_SEG_SHIFT) | (uint64_t)(off))
#define LADDR_SEG(a)		((uint32_t)((a) >> LADDR_SEG_SHIFT))
#define LADDR_OFF(a)		((a) & LADDR_OFF_MASK)

/* A record's data is at most this long; FUSE writes are far smaller. */
#define REC_DATA_MAX		(16u << 20)

/* Data bytes per entry of a REC_WRITE's crc table. */
#define REC_BLOCK		4096u

enum rec_type {
	REC_WRITE = 1,
	REC_ZERO = 2,
	REC_SIZE = 3,
	REC_END = 4,			/* end marker, not a record (see above) */
	REC_CLONE = 5,			/* v4: the disk's map becomes a copy of another's */
	REC_LINK = 6,			/* v4: a range maps to an existing record's bytes */
	REC_SHARE = 7,			/* v5: a range becomes another disk's same range */
};

#define REC_F_GROW	1		/* REC_ZERO only: grow the disk to cover it */

struct seg_header {
	char	 magic[8];		/* SEG_MAGIC */
	uint32_t version;		/* LOG_FORMAT_VERSION */
	uint32_t header_size;		/* sizeof(struct seg_header) */
	uint64_t segno;			/* must match the file name */
	uint8_t	 store_uuid[16];	/* must match the catalog's */
	uint64_t prev_end;		/* v3: where segment segno-1's records end; 0 = unknown */
	uint8_t	 reserved[12];
	uint32_t crc;			/* crc32c of the header with crc = 0 */
};

struct rec_header {
	uint32_t magic;			/* REC_MAGIC */
	uint16_t type;			/* enum rec_type */
	uint16_t flags;			/* REC_F_*, 0 if none */
	uint64_t seq;			/* store-wide, +1 per record */
	uint64_t disk_id;
	uint64_t offset;		/* logical offset; new size for REC_SIZE */
	uint64_t length;		/* bytes covered (data bytes for REC_WRITE) */
	uint32_t data_crc;		/* crc32c of the crc table, 0 without data */
	uint32_t aux_lo;		/* rec_aux(): low half */
	uint64_t synced;		/* laddr: records before it were durable at append; 0 = no claim */
	uint32_t aux_hi;		/* rec_aux(): high half */
	uint32_t hdr_crc;		/* crc32c of the header with hdr_crc = 0 */
};

_Static_assert(sizeof(struct seg_header) == 64, "seg_header is 64 bytes on disk");

/* The 64-bit aux field (two reserved words before version 4; 0 in older records). */
static inline uint64_t
rec_aux(const struct rec_header *h)
{
	return (uint64_t)h->aux_hi << 32 | h->aux_lo;
}

static inline void
rec_set_aux(struct rec_header *h, uint64_t v)
{
	h->aux_lo = (uint32_t)v;
	h->aux_hi = (uint32_t)(v >> 32);
}

/* The family a REC_WRITE's bytes belong to (its aux, or its disk in older records). */
static inline uint64_t
rec_family(const struct rec_header *h)
{
	return rec_aux(h) ? rec_aux(h) : h->disk_id;
}

_Static_assert(sizeof(struct rec_header) == 64, "rec_header is 64 bytes on disk");
/* Blocks in a REC_WRITE of `length` data bytes. */
static inline uint64_t
rec_blocks(uint64_t length)
{
	return (length + REC_BLOCK - 1) / REC_BLOCK;
}

/* Bytes of a record on disk, header included. */
static inline uint64_t
rec_size(const struct rec_header *h)
{
	return h->type == REC_WRITE ? 64 + 4 * rec_blocks(h->length) + h->length : 64;
}

/* Data bytes in block i of a REC_WRITE (the last one may be short). */
static inline uint64_t
rec_block_len(const struct rec_header *h, uint64_t i)
{
	uint64_t left = h->length - i * REC_BLOCK;
	return left < REC_BLOCK ? left : REC_BLOCK;
}

/* Offset of a REC_WRITE's first data byte from the start of its header. */
static inline uint64_t
rec_data_start(const struct rec_header *h)
{
	return 64 + 4 * rec_blocks(h->length);
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the log format is little-endian");

#endif
