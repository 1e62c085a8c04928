/*
 * check_wlog_read: read-time verification (wlog_read, wlog_read_cached in
 * fs/store/wlog.c).  A read returns exactly the bytes asked for or fails
 * with -EBADMSG and a reason: a damaged block, header or crc table, a read
 * that does not match the record, or one past a record cut short never
 * returns wrong bytes, and the record cache never serves what it did not
 * check.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "wlog_fixture.h"

/*
 * A REC_WRITE of len bytes (disk 3, unaligned disk offset so that blocks are
 * counted from the data's start, not from disk alignment) between two other
 * records; returns its address, the data in *data.
 */
#define RD_DISK		3
#define RD_OFF		(UINT64_C(1000000) * 4096 + 1234)
static uint64_t
record_between_neighbours(struct wlog *w, uint64_t len, unsigned char **data,
    uint64_t *before, uint64_t *after, unsigned char *nb)
{
	uint64_t la;

	*data = malloc(len);
	ck_assert_ptr_nonnull(*data);
	fill(*data, len, len);
	fill(nb, 5000, 4242);
	*before = append(w, REC_WRITE, RD_DISK, RD_OFF - 5000, 5000, nb, NULL);
	la = append(w, REC_WRITE, RD_DISK, RD_OFF, len, *data, NULL);
	*after = append(w, REC_WRITE, RD_DISK, RD_OFF + len, 5000, nb, NULL);
	return la;
}

/* The neighbours of the record above are untouched by its damage. */
static void
check_neighbours(struct wlog *w, uint64_t len, uint64_t before, uint64_t after, const unsigned char *nb)
{
	read_expect(w, before, RD_DISK, RD_OFF - 5000, 5000, nb, "record before");
	read_expect(w, after, RD_DISK, RD_OFF + len, 5000, nb, "record after");
}

/*
 * One damaged 4 KiB block of a record: every read that touches it is
 * -EBADMSG naming a checksum, every read of the record's other blocks returns
 * the right bytes.  The damage is a flipped data bit (at data byte `at`) or a
 * flipped bit in crc table entry `at`.
 */
static const struct {
	uint64_t	len;
	int		table;		/* at = a crc table entry, else a data byte */
	uint64_t	at;
} block_damage[] = {
	{ 5 * 4096 + 100, 0, 0 },			/* first byte of the first block */
	{ 5 * 4096 + 100, 0, 2 * 4096 + 4095 },		/* last byte of a middle block */
	{ 5 * 4096 + 100, 0, 3 * 4096 + 1234 },
	{ 5 * 4096 + 100, 0, 5 * 4096 + 99 },		/* last byte of the short last block */
	{ 5 * 4096 + 100, 0, 5 * 4096 },		/* first byte of the short last block */
	{ 3000, 0, 2999 },				/* a one-block record, read in one go */
	{ 4 * 4096, 0, 4 * 4096 - 1 },			/* a full last block */
	{ 5 * 4096 + 100, 1, 0 },
	{ 5 * 4096 + 100, 1, 3 },
	{ 5 * 4096 + 100, 1, 5 },			/* the short last block's entry */
	{ 3000, 1, 0 },
};

START_TEST(read_of_a_damaged_block_fails_and_other_blocks_read_fine)
{
	uint64_t len = block_damage[_i].len, at = block_damage[_i].at, la, before, after, blk;
	static unsigned char nb[5000];
	unsigned char *data;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	/* undamaged, every range reads back */
	check_ranges(w, la, RD_DISK, RD_OFF, data, len, 0, 0);
	if (block_damage[_i].table) {
		blk = at;
		seg_flip_bit(1, LADDR_OFF(la) + HDR + 4 * at + at % 4, (int)(at % 8));
	} else {
		blk = at / BLK;
		seg_flip_bit(1, LADDR_OFF(la) + WREC_DATA(len) + at, (int)(at % 8));
	}
	check_ranges(w, la, RD_DISK, RD_OFF, data, len, blk * BLK,
	    (blk + 1) * BLK < len ? (blk + 1) * BLK : len);
	check_neighbours(w, len, before, after, nb);
	wlog_close(w);
	free(data);
}
END_TEST

/* A damaged record header: every read of the record fails, whatever the field. */
START_TEST(read_of_a_record_with_a_damaged_header_always_fails)
{
	static const struct { const char *name; size_t off; } field[] = {
		{ "magic", offsetof(struct rec_header, magic) },
		{ "magic top byte", offsetof(struct rec_header, magic) + 3 },
		{ "type", offsetof(struct rec_header, type) },
		{ "flags", offsetof(struct rec_header, flags) },
		{ "seq", offsetof(struct rec_header, seq) },
		{ "disk_id", offsetof(struct rec_header, disk_id) },
		{ "offset", offsetof(struct rec_header, offset) + 1 },
		{ "offset top byte", offsetof(struct rec_header, offset) + 7 },
		{ "length", offsetof(struct rec_header, length) },
		{ "length top byte", offsetof(struct rec_header, length) + 7 },
		{ "data_crc", offsetof(struct rec_header, data_crc) + 2 },
		{ "aux_lo", offsetof(struct rec_header, aux_lo) },
		{ "synced", offsetof(struct rec_header, synced) + 5 },
		{ "aux_hi", offsetof(struct rec_header, aux_hi) },
		{ "hdr_crc", offsetof(struct rec_header, hdr_crc) },
		{ "hdr_crc top byte", offsetof(struct rec_header, hdr_crc) + 3 },
	};
	const uint64_t len = 2 * 4096 + 100;
	static const uint64_t rs[][2] = {	/* data ranges [s, e) */
		{ 0, 2 * 4096 + 100 }, { 0, 1 }, { 4096, 8192 }, { 5000, 5001 },
		{ 2 * 4096 + 99, 2 * 4096 + 100 }, { 4095, 4097 },
	};
	static unsigned char nb[5000];
	uint64_t la, before, after;
	unsigned char *data;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char what[160];

	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	for (size_t f = 0; f < sizeof(field) / sizeof(field[0]); f++) {
		for (int bit = 0; bit < 8; bit += 7) {
			seg_flip_bit(1, LADDR_OFF(la) + field[f].off, bit);
			for (size_t r = 0; r < sizeof(rs) / sizeof(rs[0]); r++) {
				snprintf(what, sizeof(what), "header field %s bit %d flipped, data [%llu, %llu)",
				    field[f].name, bit, (unsigned long long)rs[r][0], (unsigned long long)rs[r][1]);
				const char *why = read_expect(w, la, RD_DISK, RD_OFF + rs[r][0],
				    (size_t)(rs[r][1] - rs[r][0]), NULL, what);
				ck_assert_msg(contains(why, "checksum") || contains(why, "magic"),
				    "%s: reason '%s'", what, why);
			}
			check_neighbours(w, len, before, after, nb);
			/* undone, the record reads again: nothing was remembered */
			seg_flip_bit(1, LADDR_OFF(la) + field[f].off, bit);
			snprintf(what, sizeof(what), "header field %s restored", field[f].name);
			read_expect(w, la, RD_DISK, RD_OFF, len, data, what);
		}
	}
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * A read that is not what the record holds, or at an address that holds no
 * record: -EBADMSG with a reason, never a crash, never bytes.
 */
START_TEST(read_that_does_not_match_the_record_is_EBADMSG)
{
	const uint64_t len = 2 * 4096 + 100;
	static unsigned char nb[5000], small[100];
	uint64_t la, before, after, zla, sla, end;
	unsigned char *data;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	const char *why;
	int rc;

	read_cached = _i;	/* 1: the first read below caches the record, the others find it */

	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	zla = append(w, REC_ZERO, RD_DISK, RD_OFF, len, NULL, NULL);
	sla = append(w, REC_SIZE, RD_DISK, RD_OFF, 0, NULL, NULL);
	end = (uint64_t)seg_size(1);
	ck_assert_uint_eq(LADDR(1, end), wlog_tail(w));
	/* the right question is answered */
	read_expect(w, la, RD_DISK, RD_OFF, len, data, "whole record");
	read_expect(w, la, RD_DISK, RD_OFF + len, 0, data, "empty read at the end");

	/* another disk */
	read_expect(w, la, RD_DISK + 1, RD_OFF, len, NULL, "disk + 1");
	read_expect(w, la, 0, RD_OFF, 1, NULL, "disk 0");
	read_expect(w, la, RD_DISK | UINT64_C(1) << 32, RD_OFF, 1, NULL, "disk with a high bit");
	/* starting before the record's offset */
	read_expect(w, la, RD_DISK, RD_OFF - 1, 1, NULL, "the byte before");
	read_expect(w, la, RD_DISK, RD_OFF - 1, 2, NULL, "straddling the start");
	read_expect(w, la, RD_DISK, 0, 1, NULL, "disk offset 0");
	read_expect(w, la, RD_DISK, RD_OFF - 4096, len, NULL, "a block early");
	/* running past its end */
	read_expect(w, la, RD_DISK, RD_OFF, len + 1, NULL, "one byte too many");
	read_expect(w, la, RD_DISK, RD_OFF + len - 1, 2, NULL, "straddling the end");
	read_expect(w, la, RD_DISK, RD_OFF + len, 1, NULL, "the byte after");
	read_expect(w, la, RD_DISK, RD_OFF + len + 1, 0, NULL, "an empty read past the end");
	read_expect(w, la, RD_DISK, RD_OFF - 1, 0, NULL, "an empty read before the start");
	read_expect(w, la, RD_DISK, RD_OFF + len + 4096, 1, NULL, "a block after");
	read_expect(w, la, RD_DISK, RD_OFF + 1, len, NULL, "shifted by one");
	read_expect(w, la, RD_DISK, UINT64_MAX, 1, NULL, "disk offset UINT64_MAX");
	read_expect(w, la, RD_DISK, UINT64_MAX - 1, 2, NULL, "disk offset wrapping");
	/* lengths that wrap: refused before a byte is written */
	why = NULL;
	rc = wlog_read(w, la, RD_DISK, RD_OFF, small, SIZE_MAX, &why);
	ck_assert_int_eq(rc, -EBADMSG);
	ck_assert_ptr_nonnull(why);
	why = NULL;
	rc = wlog_read(w, la, RD_DISK, RD_OFF + 10, small, SIZE_MAX - 5, &why);
	ck_assert_int_eq(rc, -EBADMSG);
	ck_assert_ptr_nonnull(why);

	/* records that hold no data */
	read_expect(w, zla, RD_DISK, RD_OFF, 1, NULL, "a ZERO record");
	read_expect(w, sla, RD_DISK, RD_OFF, 1, NULL, "a SIZE record");
	read_expect(w, sla, RD_DISK, RD_OFF, 0, NULL, "a SIZE record, empty read");
	/* addresses that are not a record's start */
	read_expect(w, la + 1, RD_DISK, RD_OFF, 1, NULL, "one byte into the header");
	read_expect(w, la + HDR, RD_DISK, RD_OFF, 1, NULL, "the crc table");
	read_expect(w, la + WREC_DATA(len), RD_DISK, RD_OFF, 1, NULL, "the data");
	read_expect(w, LADDR(1, 0), RD_DISK, RD_OFF, 1, NULL, "the segment header");
	/* segments that do not exist */
	read_expect(w, LADDR(2, SEGHDR), RD_DISK, RD_OFF, 1, NULL, "segment 2");
	read_expect(w, LADDR(0, LADDR_OFF(la)), RD_DISK, RD_OFF, 1, NULL, "segment 0");
	read_expect(w, LADDR(WLOG_SEGMENTS_MAX - 1, SEGHDR), RD_DISK, RD_OFF, 1, NULL, "the last segment number");
	read_expect(w, LADDR(WLOG_SEGMENTS_MAX, SEGHDR), RD_DISK, RD_OFF, 1, NULL, "segment WLOG_SEGMENTS_MAX");
	read_expect(w, LADDR(0xffffff, LADDR_OFF(la)), RD_DISK, RD_OFF, 1, NULL, "segment 0xffffff");
	read_expect(w, UINT64_MAX, RD_DISK, RD_OFF, 1, NULL, "log address UINT64_MAX");
	/* past the segment's end */
	read_expect(w, LADDR(1, end), RD_DISK, RD_OFF, 1, NULL, "the tail");
	read_expect(w, LADDR(1, end - 10), RD_DISK, RD_OFF, 1, NULL, "10 bytes before the end");
	read_expect(w, LADDR(1, end + 4096), RD_DISK, RD_OFF, 1, NULL, "past the end");
	read_expect(w, LADDR(1, LADDR_OFF_MASK), RD_DISK, RD_OFF, 1, NULL, "the segment's last address");

	/* all that left the record readable */
	read_expect(w, la, RD_DISK, RD_OFF, len, data, "whole record, afterwards");
	check_neighbours(w, len, before, after, nb);
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * A record whose end is missing from its segment (a torn tail that replay has
 * not cut yet): the blocks that are not there cannot be read.  _i: where the
 * file ends: 0 = inside the header, 1 = inside the crc table, 2 = right after
 * it, 3 = inside block 1 (of 3), 4 = one byte short.
 */
START_TEST(read_of_a_record_cut_short_is_EBADMSG_for_the_missing_part)
{
	const uint64_t len = 3 * 4096;
	const uint64_t at[] = { 40, HDR + 6, WREC_DATA(len), WREC_DATA(len) + 5000, WREC_SIZE(len) - 1 };
	static unsigned char d[3 * 4096];
	uint64_t la, la0, keep;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char what[64];

	fill(d, sizeof(d), 31);
	la0 = append(w, REC_WRITE, 1, 0, 100, d, NULL);
	la = append(w, REC_WRITE, 2, 8192, len, d, NULL);
	seg_truncate(1, LADDR_OFF(la) + at[_i]);
	keep = at[_i] > WREC_DATA(len) ? (at[_i] - WREC_DATA(len)) / BLK : 0;	/* whole blocks left */
	for (uint64_t b = 0; b < 3; b++) {
		snprintf(what, sizeof(what), "block %llu", (unsigned long long)b);
		if (b < keep) {
			read_expect(w, la, 2, 8192 + b * BLK, BLK, d + b * BLK, what);
		} else {
			/* missing, not damaged: the reason says the segment ends first */
			const char *why = read_expect(w, la, 2, 8192 + b * BLK, BLK, NULL, what);
			ck_assert_msg(contains(why, "end") && !contains(why, "checksum"),
			    "%s: reason '%s' should say the segment ends", what, why);
		}
	}
	read_expect(w, la, 2, 8192, len, NULL, "the whole record");
	read_expect(w, la, 2, 8192 + len - 1, 1, NULL, "its last byte");
	read_expect(w, la0, 1, 0, 100, d, "the record before");
	wlog_close(w);
}
END_TEST

/*
 * Every (start, end) among block edges and their neighbours, of records of
 * 100 bytes, one block, one block + 1, two blocks and 3 blocks + 100: each
 * reads back exactly its bytes, including reads inside the last short block.
 */
START_TEST(unaligned_reads_return_exactly_the_bytes_asked_for)
{
	static const uint64_t lens[] = { 100, 4096, 4097, 8192, 3 * 4096 + 100, 1 };
	uint64_t la[6], off = 7 * 4096 + 5;
	unsigned char *data[6];
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	read_cached = _i;
	for (int i = 0; i < 6; i++) {
		data[i] = malloc(lens[i]);
		ck_assert_ptr_nonnull(data[i]);
		fill(data[i], lens[i], 50 + (uint64_t)i);
		la[i] = append(w, REC_WRITE, 4, off, lens[i], data[i], NULL);
		off += lens[i];
	}
	off = 7 * 4096 + 5;
	for (int i = 0; i < 6; i++) {
		check_ranges(w, la[i], 4, off, data[i], lens[i], 0, 0);
		off += lens[i];
	}
	/* and the same once the log is reopened (nothing cached) */
	wlog_close(w);
	{
		struct collector c = { 0 };
		struct wlog_replay_stats rs;
		w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
		ck_assert_int_eq(c.n, 6);
		free(c.v);
	}
	check_ranges(w, la[4], 4, 7 * 4096 + 5 + 100 + 4096 + 4097 + 8192, data[4], lens[4], 0, 0);
	wlog_close(w);
	for (int i = 0; i < 6; i++)
		free(data[i]);
}
END_TEST

/*
 * An 8 MiB record: its crc table (8 KiB) is longer than what a read takes in
 * one go with the header.  Reads at its end, in its middle, across the edge of
 * that first read, and then with a damaged table entry and data block far in.
 */
START_TEST(large_record_reads_at_its_end_and_middle)
{
	const uint64_t len = 8 * MiB, off = 12345, nblk = len / BLK;
	unsigned char *data = malloc(len), small[100];
	uint64_t la;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	/* data ranges [s, e) */
	const uint64_t ok[][2] = {
		{ 0, len }, { len - 1, len }, { len - 100, len }, { len - BLK, len }, { len - 5000, len },
		{ 4 * MiB - 1, 4 * MiB + 1 }, { 4 * MiB, 4 * MiB + BLK }, { 3 * MiB + 7, 4 * MiB + 7 },
		{ 1023 * BLK - 10, 1024 * BLK + 10 },	/* blocks 1022..1024: table slice in the first read */
		{ 1024 * BLK - 10, 1025 * BLK + 10 },	/* 1023..1025: just past it */
		{ 1025 * BLK, 1026 * BLK }, { 0, 1 }, { 10, 100000 },
		/* table slices read on their own: 64, 65 and 200 entries */
		{ 1100 * BLK, 1164 * BLK }, { 1100 * BLK, 1165 * BLK }, { 1100 * BLK + 1, 1300 * BLK - 1 },
	};
	char what[96];

	read_cached = _i;	/* too long a table to be cached: the same answers either way */
	ck_assert_ptr_nonnull(data);
	fill(data, len, 8);
	fill(small, sizeof(small), 9);
	append(w, REC_WRITE, 9, 0, sizeof(small), small, NULL);
	la = append(w, REC_WRITE, 9, off, len, data, NULL);
	append(w, REC_WRITE, 9, off + len, sizeof(small), small, NULL);
	check_write_record_on_disk(1, LADDR_OFF(la), data, len);
	for (size_t r = 0; r < sizeof(ok) / sizeof(ok[0]); r++) {
		snprintf(what, sizeof(what), "data [%llu, %llu)", (unsigned long long)ok[r][0],
		    (unsigned long long)ok[r][1]);
		read_expect(w, la, 9, off + ok[r][0], (size_t)(ok[r][1] - ok[r][0]), data + ok[r][0], what);
	}

	/* the last block's table entry, the first entry past the first read, and a data bit in block 1500 */
	seg_flip_bit(1, LADDR_OFF(la) + HDR + 4 * (nblk - 1) + 1, 0);
	seg_flip_bit(1, LADDR_OFF(la) + HDR + 4 * 1025 + 3, 7);
	seg_flip_bit(1, LADDR_OFF(la) + WREC_DATA(len) + 1500 * BLK + 777, 4);
	{
		const uint64_t bad[][2] = {
			{ 0, len }, { len - 1, len }, { len - 100, len }, { len - BLK, len },
			{ len - 5000, len - BLK + 1 }, { 1025 * BLK, 1025 * BLK + 1 }, { 1400 * BLK, 1600 * BLK },
			{ 1024 * BLK - 10, 1025 * BLK + 10 }, { 1500 * BLK + 4095, 1500 * BLK + 4097 },
			{ 1499 * BLK + 4095, 1500 * BLK + 1 }, { 3 * MiB, 7 * MiB },
		};
		const uint64_t good[][2] = {
			{ len - 5000, len - BLK }, { 1024 * BLK, 1025 * BLK }, { 1026 * BLK, 1026 * BLK + 7 },
			{ 1023 * BLK - 10, 1024 * BLK + 10 }, { 1499 * BLK, 1500 * BLK },
			{ 1501 * BLK, 1502 * BLK + 3 }, { 4 * MiB - 1, 4 * MiB + 1 }, { 0, 1025 * BLK },
			{ 1026 * BLK, 1500 * BLK }, { 1501 * BLK, len - BLK },
			{ 1100 * BLK, 1164 * BLK }, { 1100 * BLK, 1165 * BLK }, { 1100 * BLK + 1, 1300 * BLK - 1 },
		};
		for (size_t r = 0; r < sizeof(bad) / sizeof(bad[0]); r++) {
			snprintf(what, sizeof(what), "damaged, data [%llu, %llu)", (unsigned long long)bad[r][0],
			    (unsigned long long)bad[r][1]);
			const char *why = read_expect(w, la, 9, off + bad[r][0],
			    (size_t)(bad[r][1] - bad[r][0]), NULL, what);
			ck_assert_msg(contains(why, "checksum"), "%s: reason '%s'", what, why);
		}
		for (size_t r = 0; r < sizeof(good) / sizeof(good[0]); r++) {
			snprintf(what, sizeof(what), "damaged elsewhere, data [%llu, %llu)",
			    (unsigned long long)good[r][0], (unsigned long long)good[r][1]);
			read_expect(w, la, 9, off + good[r][0], (size_t)(good[r][1] - good[r][0]),
			    data + good[r][0], what);
		}
	}
	wlog_close(w);
	free(data);
}
END_TEST

/* ---- reads through the record cache (wlog_read_cached) --------------------- */

/*
 * The damage of block_damage[_i] after the record was read whole through the
 * cache: a damaged data block still fails every read that touches it, the
 * other blocks read right.  A table entry damaged after the table was cached
 * may go unseen by a cached read (its data is right), but never gives wrong
 * bytes, and wlog_read(), which reads the disk, still sees it.
 */
START_TEST(cached_read_checks_every_data_block_and_never_serves_wrong_bytes)
{
	uint64_t len = block_damage[_i].len, at = block_damage[_i].at, la, before, after, blk;
	static unsigned char nb[5000];
	unsigned char *data, *got;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	read_cached = 1;
	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	check_ranges(w, la, RD_DISK, RD_OFF, data, len, 0, 0);
	blk = block_damage[_i].table ? at : at / BLK;
	if (block_damage[_i].table)
		seg_flip_bit(1, LADDR_OFF(la) + HDR + 4 * at + at % 4, (int)(at % 8));
	else
		seg_flip_bit(1, LADDR_OFF(la) + WREC_DATA(len) + at, (int)(at % 8));
	if (!block_damage[_i].table) {
		check_ranges(w, la, RD_DISK, RD_OFF, data, len, blk * BLK,
		    (blk + 1) * BLK < len ? (blk + 1) * BLK : len);
	} else {
		got = malloc(len);
		ck_assert_ptr_nonnull(got);
		for (uint64_t s = 0; s < len; s += BLK / 2) {
			uint64_t n = len - s < BLK ? len - s : BLK;
			const char *why = NULL;
			int rc = wlog_read_cached(w, la, RD_DISK, RD_OFF + s, got, n, &why);
			ck_assert_msg(rc == 0 || (rc == -EBADMSG && contains(why, "checksum")),
			    "table entry %llu damaged: cached read of [%llu, +%llu): %d (%s)",
			    (unsigned long long)at, (unsigned long long)s, (unsigned long long)n, rc,
			    why ? why : "no reason");
			if (rc == 0)
				assert_bytes_eq(got, data + s, n, "cached read after table damage");
		}
		free(got);
		read_cached = 0;
		check_ranges(w, la, RD_DISK, RD_OFF, data, len, blk * BLK,
		    (blk + 1) * BLK < len ? (blk + 1) * BLK : len);
		read_cached = 1;
	}
	check_neighbours(w, len, before, after, nb);
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * A record read once through the cache: its header is not read again by a
 * cached read (one pread for the data), so a header damaged on disk since
 * goes unseen there; wlog_read(), what hcowctl check uses, still refuses it.
 * Before the record was cached, a cached read refuses it too.
 */
START_TEST(cached_read_keeps_the_header_it_checked_and_check_still_sees_the_disk)
{
	const uint64_t len = 5 * 4096 + 100;
	static unsigned char nb[5000];
	uint64_t la, before, after, la2;
	unsigned char *data;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	la2 = append(w, REC_WRITE, RD_DISK, RD_OFF + 2 * len, len, data, NULL);
	read_cached = 1;
	read_expect(w, la, RD_DISK, RD_OFF + 3 * BLK, BLK, data + 3 * BLK, "first cached read");
	seg_flip_bit(1, LADDR_OFF(la) + offsetof(struct rec_header, offset), 2);
	seg_flip_bit(1, LADDR_OFF(la2) + offsetof(struct rec_header, offset), 2);
	read_expect(w, la, RD_DISK, RD_OFF + BLK, 2 * BLK, data + BLK, "cached, header damaged since");
	read_expect(w, la, RD_DISK, RD_OFF, len, data, "cached, whole record");
	/* the cache answers only what the record holds */
	read_expect(w, la, RD_DISK + 1, RD_OFF, BLK, NULL, "cached, another disk");
	read_expect(w, la, RD_DISK, RD_OFF + len - 1, 2, NULL, "cached, past its end");
	/* the other record was never read: its damaged header is seen */
	read_expect(w, la2, RD_DISK, RD_OFF + 2 * len + BLK, BLK, NULL, "never cached, header damaged");
	read_cached = 0;
	ck_assert(contains(read_expect(w, la, RD_DISK, RD_OFF + BLK, BLK, NULL, "uncached"), "checksum"));
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * A table that does not match its header's data_crc is not cached: every
 * read of the record goes to the disk and checks it again, so the blocks
 * whose entries are right read, the damaged one fails, and a header damaged
 * later is seen.
 */
START_TEST(record_with_a_damaged_table_is_not_cached)
{
	const uint64_t len = 5 * 4096 + 100;
	static unsigned char nb[5000];
	uint64_t la, before, after;
	unsigned char *data;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	seg_flip_bit(1, LADDR_OFF(la) + HDR + 4 * 3, 1);
	read_cached = 1;
	read_expect(w, la, RD_DISK, RD_OFF + 4 * BLK, BLK, data + 4 * BLK, "block 4");
	read_expect(w, la, RD_DISK, RD_OFF + 1 * BLK, BLK, data + 1 * BLK, "block 1");
	read_expect(w, la, RD_DISK, RD_OFF + 3 * BLK, BLK, NULL, "block 3, its entry damaged");
	seg_flip_bit(1, LADDR_OFF(la) + offsetof(struct rec_header, length), 0);
	read_expect(w, la, RD_DISK, RD_OFF + 4 * BLK, BLK, NULL, "block 4, header damaged since");
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * wlog_release() gives a segment's records back: a cached read of one of them
 * fails as an uncached one does (nothing of the segment is left to read),
 * records of the other segments still read.
 */
START_TEST(records_of_a_released_segment_are_forgotten)
{
	const int n = REC1M_PER_SEG + 2;
	uint64_t la[REC1M_PER_SEG + 2];
	unsigned char *data = malloc((size_t)n * MiB);
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	ck_assert_ptr_nonnull(data);
	append_writes(w, n, MiB, la, data);
	ck_assert_uint_eq(LADDR_SEG(la[0]), 1);
	ck_assert_uint_eq(LADDR_SEG(la[n - 1]), 2);
	read_cached = 1;
	read_expect(w, la[0], 1, 5 * BLK, BLK, data + 5 * BLK, "segment 1, before release");
	read_expect(w, la[n - 1], 1, (uint64_t)(n - 1) * MiB + 5 * BLK, BLK,
	    data + (size_t)(n - 1) * MiB + 5 * BLK, "segment 2");
	ck_assert_int_eq(wlog_release(w, 1), 0);
	read_expect(w, la[0], 1, 5 * BLK, BLK, NULL, "segment 1, released");
	read_expect(w, la[n - 1], 1, (uint64_t)(n - 1) * MiB + 5 * BLK, BLK,
	    data + (size_t)(n - 1) * MiB + 5 * BLK, "segment 2, after segment 1 was released");
	wlog_close(w);
	free(data);
}
END_TEST

FIXTURE_MAIN(tc, "wlog", wlog_setup, 60)
{
	tcase_add_loop_test(tc, read_of_a_damaged_block_fails_and_other_blocks_read_fine, 0,
	    (int)(sizeof(block_damage) / sizeof(block_damage[0])));
	tcase_add_test(tc, read_of_a_record_with_a_damaged_header_always_fails);
	tcase_add_loop_test(tc, read_that_does_not_match_the_record_is_EBADMSG, 0, 2);
	tcase_add_loop_test(tc, read_of_a_record_cut_short_is_EBADMSG_for_the_missing_part, 0, 5);
	tcase_add_loop_test(tc, unaligned_reads_return_exactly_the_bytes_asked_for, 0, 2);
	tcase_add_loop_test(tc, large_record_reads_at_its_end_and_middle, 0, 2);
	tcase_add_loop_test(tc, cached_read_checks_every_data_block_and_never_serves_wrong_bytes, 0,
	    (int)(sizeof(block_damage) / sizeof(block_damage[0])));
	tcase_add_test(tc, cached_read_keeps_the_header_it_checked_and_check_still_sees_the_disk);
	tcase_add_test(tc, record_with_a_damaged_table_is_not_cached);
	tcase_add_test(tc, records_of_a_released_segment_are_forgotten);
}
