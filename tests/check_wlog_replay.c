/*
 * check_wlog_replay: what opening and replaying a log makes of damage
 * (fs/store/wlog.c).  A damaged or torn record in the newest segment is cut
 * and appends continue there; damage in an older segment, a bad or foreign
 * segment header, a gap, or a replay from the wrong place fails with a
 * message and changes nothing; trust_complete replay checks only the last
 * record.
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
 * A damaged record in the newest segment: replay stops before it, cuts the
 * file there (keeping a copy when valid later records exist) and appends go
 * on from that point.  _i: 0 = a data bit (in the record's second block),
 * 1 = a header field bit, 2 = the magic, 3 = a bit of a crc table entry,
 * 4 = a crc table bit in the last record (nothing valid follows: no copy),
 * 5 = a data block rewritten along with its table entry (only data_crc knows).
 */
START_TEST(damaged_record_in_newest_segment_is_cut_and_appends_continue_there)
{
	enum { N = 5, LEN = 9000 };	/* 3 blocks: 4096 + 4096 + 808 */
	uint64_t la[N], cutpos, oldsize;
	static unsigned char data[N * LEN], fresh[777], got[LEN];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	struct rec_header h;
	int64_t cutsize = -1;
	const char *why;
	int victim = _i == 4 ? N - 1 : 2;

	append_writes(w, N, LEN, la, data);
	wlog_close(w);
	cutpos = LADDR_OFF(la[victim]);
	oldsize = (uint64_t)seg_size(1);
	if (_i == 0)
		seg_flip_bit(1, cutpos + WREC_DATA(LEN) + 5000, 3);
	else if (_i == 1)
		seg_flip_bit(1, cutpos + offsetof(struct rec_header, offset) + 1, 0);
	else if (_i == 2)
		seg_flip_bit(1, cutpos, 7);
	else if (_i == 5)
		seg_rewrite_block_and_table(1, cutpos, LEN, 4096 + 10);
	else
		seg_flip_bit(1, cutpos + HDR + 4 * 2 + 1, 5);	/* entry 2 of 3 */

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, victim);
	ck_assert_uint_eq(rs.records, (uint64_t)victim);
	ck_assert_uint_eq(c.v[victim - 1].h.seq, (uint64_t)victim);
	ck_assert_uint_eq(rs.torn_bytes, oldsize - cutpos);
	ck_assert_int_eq(seg_size(1), (int64_t)cutpos);
	ck_assert_uint_eq(wlog_size(w), cutpos);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, cutpos));
	ck_assert_uint_eq(wlog_next_seq(w), (uint64_t)victim + 1);
	if (victim < N - 1) {
		/* records 4 and 5 were valid: the cut bytes are kept aside */
		ck_assert_int_eq(cut_files(&cutsize), 1);
		ck_assert_int_eq(cutsize, (int64_t)(oldsize - cutpos));
	} else {
		ck_assert_int_eq(cut_files(NULL), 0);
	}

	fill(fresh, sizeof(fresh), 99);
	ck_assert_uint_eq(append(w, REC_WRITE, 2, 5, sizeof(fresh), fresh, &h), LADDR(1, cutpos));
	ck_assert_uint_eq(h.seq, (uint64_t)victim + 1);
	wlog_close(w);

	c.n = 0;
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, victim + 1);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(c.v[victim].h.length, sizeof(fresh));
	ck_assert_uint_eq(c.v[victim].rec_laddr, LADDR(1, cutpos));
	ck_assert_int_eq(wlog_read(w, c.v[victim].rec_laddr, 2, 5, got, sizeof(fresh), &why), 0);
	assert_bytes_eq(got, fresh, sizeof(fresh), "record appended after the cut");
	ck_assert_int_eq(wlog_read(w, c.v[1].rec_laddr, 1, LEN, got, LEN, &why), 0);
	assert_bytes_eq(got, data + LEN, LEN, "record 2 survives");
	log_close(w, &c);
}
END_TEST

/*
 * A torn tail: the file ends inside the last record.  _i picks where:
 * 0 = inside the header, 1 = right after the header, 2 = inside the data,
 * 3 = one byte short of the end, 4 = inside the header of a trailing ZERO,
 * 5 = inside the crc table, 6 = right after the crc table.
 */
START_TEST(torn_tail_is_cut_and_earlier_records_survive)
{
	static unsigned char d[4096];
	uint64_t la[3], lastpos, cut;
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	static const uint64_t at[] = {
		30, HDR, WREC_DATA(4096) + 100, WREC_SIZE(4096) - 1, 63, HDR + 2, WREC_DATA(4096)
	};

	fill(d, sizeof(d), 5);
	la[0] = append(w, REC_WRITE, 1, 0, sizeof(d), d, NULL);
	la[1] = append(w, REC_SIZE, 1, 1 << 20, 0, NULL, NULL);
	if (_i == 4)
		la[2] = append(w, REC_ZERO, 1, 0, 512, NULL, NULL);
	else
		la[2] = append(w, REC_WRITE, 1, 4096, sizeof(d), d, NULL);
	wlog_close(w);
	lastpos = LADDR_OFF(la[2]);
	cut = at[_i];
	seg_truncate(1, lastpos + cut);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 2);
	ck_assert_uint_eq(c.v[0].rec_laddr, la[0]);
	ck_assert_uint_eq(c.v[1].rec_laddr, la[1]);
	ck_assert_uint_eq(c.v[1].h.type, REC_SIZE);
	ck_assert_uint_eq(rs.records, 2);
	ck_assert_uint_eq(rs.bytes, lastpos - SEGHDR);
	ck_assert_uint_eq(rs.torn_bytes, cut);
	ck_assert_int_eq(seg_size(1), (int64_t)lastpos);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, lastpos));
	ck_assert_uint_eq(wlog_next_seq(w), 3);
	/* nothing valid followed the tear: no copy is kept */
	ck_assert_int_eq(cut_files(NULL), 0);
	ck_assert_uint_eq(append(w, REC_WRITE, 1, 0, 16, d, NULL), LADDR(1, lastpos));
	wlog_close(w);

	/* the second open finds a clean log */
	c.n = 0;
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 3);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	log_close(w, &c);
}
END_TEST

START_TEST(segments_roll_at_segment_size_and_replay_spans_them)
{
	enum { N = 40 };
	uint64_t la[N];
	unsigned char *buf = malloc(MiB), *want = malloc(MiB);
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[256];
	uint64_t seg1 = SEGHDR + REC1M_PER_SEG * WREC_SIZE(MiB);

	append_writes(w, N, MiB, la, NULL);
	for (int i = 0; i < N; i++) {
		uint32_t seg = (uint32_t)(i / REC1M_PER_SEG) + 1;
		ck_assert_msg(LADDR_SEG(la[i]) == seg, "record %d in segment %u, want %u",
		    i, LADDR_SEG(la[i]), seg);
		ck_assert_uint_eq(LADDR_OFF(la[i]), SEGHDR + (uint64_t)(i % REC1M_PER_SEG) * WREC_SIZE(MiB));
	}
	ck_assert_int_eq(seg_size(1), (int64_t)seg1);
	ck_assert_int_le(seg_size(1), (int64_t)WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(seg_size(2), (int64_t)seg1);
	ck_assert_int_eq(seg_size(3), (int64_t)(SEGHDR + 10 * WREC_SIZE(MiB)));
	ck_assert_int_eq(seg_size(4), -1);
	ck_assert_uint_eq(wlog_size(w), (uint64_t)(seg_size(1) + seg_size(2) + seg_size(3)));
	{
		/* each new segment has a proper header of its own */
		struct seg_header sh, z;
		seg_pread(3, &sh, sizeof(sh), 0);
		ck_assert_mem_eq(sh.magic, SEG_MAGIC, 8);
		ck_assert_uint_eq(sh.segno, 3);
		ck_assert_mem_eq(sh.store_uuid, UUID_A, 16);
		z = sh;
		z.crc = 0;
		ck_assert_uint_eq(sh.crc, crc32c(0, &z, sizeof(z)));
	}
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, N);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(rs.bytes, (uint64_t)N * WREC_SIZE(MiB));
	for (int i = 0; i < N; i++) {
		const char *why;
		ck_assert_uint_eq(c.v[i].rec_laddr, la[i]);
		ck_assert_uint_eq(c.v[i].h.seq, (uint64_t)i + 1);
		ck_assert_int_eq(wlog_read(w, la[i], 1, (uint64_t)i * MiB, buf, MiB, &why), 0);
		fill(want, MiB, 1000 + (uint64_t)i);
		assert_bytes_eq(buf, want, MiB, "1 MiB record");
	}
	ck_assert_uint_eq(wlog_tail(w), LADDR(3, SEGHDR + 10 * WREC_SIZE(MiB)));
	/* a record in a later segment is laid out like any other */
	fill(want, MiB, 1000 + 20);
	check_write_record_on_disk(2, LADDR_OFF(la[20]), want, MiB);
	/* appends go on in segment 3 */
	ck_assert_uint_eq(LADDR_SEG(append(w, REC_WRITE, 1, 0, MiB, buf, NULL)), 3);
	wlog_close(w);

	/* replay from a checkpoint inside segment 2 */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	c.n = 0;
	ck_assert_int_eq(log_replay(w, la[20], 21, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, N + 1 - 20);
	ck_assert_uint_eq(c.v[0].rec_laddr, la[20]);
	ck_assert_uint_eq(LADDR_SEG(c.v[c.n - 1].rec_laddr), 3);
	wlog_close(w);

	/* a checkpoint at the very end of a full segment continues into the next */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	c.n = 0;
	ck_assert_int_eq(log_replay(w, LADDR(1, seg1), REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, N + 1 - REC1M_PER_SEG);
	ck_assert_uint_eq(c.v[0].rec_laddr, la[REC1M_PER_SEG]);
	wlog_close(w);
	free(c.v);
	free(buf);
	free(want);
}
END_TEST

/*
 * Damage in a segment that is not the newest is corruption, not a torn tail:
 * -EUCLEAN with a message naming the segment, and nothing is cut.
 * _i: 0 = a flipped data bit, 1 = the segment cut short, 2 = a header bit,
 * 3 = a bit of a crc table entry, 4 = a data block rewritten along with its
 * table entry (only data_crc, the crc of the table, can tell).
 */
START_TEST(damage_in_older_segment_is_EUCLEAN_and_nothing_is_cut)
{
	enum { N = 20 };
	uint64_t la[N];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	int64_t s1, s2;
	char err[512];
	int rc;
	size_t expect_applied;

	append_writes(w, N, MiB, la, NULL);
	wlog_close(w);
	ck_assert_uint_eq(LADDR_SEG(la[N - 1]), 2);
	if (_i == 0) {
		seg_flip_bit(1, LADDR_OFF(la[5]) + WREC_DATA(MiB) + 12345, 1);
		expect_applied = 5;
	} else if (_i == 1) {
		seg_truncate(1, (uint64_t)seg_size(1) - 100);
		expect_applied = REC1M_PER_SEG - 1;
	} else if (_i == 2) {
		seg_flip_bit(1, LADDR_OFF(la[9]) + offsetof(struct rec_header, disk_id), 2);
		expect_applied = 9;
	} else if (_i == 3) {
		seg_flip_bit(1, LADDR_OFF(la[7]) + HDR + 4 * 100 + 2, 6);	/* entry 100 of 256 */
		expect_applied = 7;
	} else {
		seg_rewrite_block_and_table(1, LADDR_OFF(la[11]), MiB, 200 * 4096 + 5);
		expect_applied = 11;
	}
	s1 = seg_size(1);
	s2 = seg_size(2);

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	rc = log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err));
	ck_assert_int_eq(rc, -EUCLEAN);
	ck_assert_msg(contains(err, "00000001") && contains(err, "corrupt"),
	    "message should name segment 00000001 as corrupt: '%s'", err);
	/* and say where: the damaged record's offset in the segment */
	{
		char at[32];
		snprintf(at, sizeof(at), "offset %llu:", (unsigned long long)LADDR_OFF(la[expect_applied]));
		ck_assert_msg(contains(err, at), "message should say '%s': '%s'", at, err);
	}
	if (_i != 1)
		ck_assert_msg(contains(err, "checksum"), "message should name a checksum: '%s'", err);
	ck_assert_int_eq(c.n, expect_applied);
	ck_assert_int_eq(seg_size(1), s1);
	ck_assert_int_eq(seg_size(2), s2);
	ck_assert_int_eq(cut_files(NULL), 0);
	log_close(w, &c);
}
END_TEST

/*
 * A log with one segment whose header is not this store's: open fails with a
 * message and the file is left alone.
 */
START_TEST(bad_segment_header_fails_open_with_message)
{
	static const char *const expect[] = {
		"another store", "bad magic", "checksum", "does not match", "version",
		"does not match"
	};
	struct wlog *w = NULL;
	char err[512] = "";
	const uint8_t *uuid = UUID_A;
	int rc;

	ck_assert_int_eq(wlog_create(tdir, UUID_A), 0);
	switch (_i) {
	case 0: uuid = UUID_B; break;				/* another store */
	case 1: seg_flip_bit(1, 0, 0); break;			/* magic */
	case 2: seg_flip_bit(1, offsetof(struct seg_header, reserved) + 3, 4); break;
	case 3: write_seg_header(1, 2, UUID_A, LOG_FORMAT_VERSION); break;	/* segno */
	case 4: write_seg_header(1, 1, UUID_A, LOG_FORMAT_VERSION + 1); break;
	case 5: {						/* file name says 2 */
		char a[256], b[256];
		seg_path(1, a, sizeof(a));
		seg_path(2, b, sizeof(b));
		ck_assert_int_eq(rename(a, b), 0);
		break;
	}
	}
	rc = wlog_open(tdir, uuid, WLOG_SEGMENT_SIZE_MIN, &w, err, sizeof(err));
	ck_assert_int_eq(rc, -EUCLEAN);
	ck_assert_msg(contains(err, expect[_i]), "message '%s' should say '%s'", err, expect[_i]);
	ck_assert_int_eq(seg_size(_i == 5 ? 2 : 1), (int64_t)SEGHDR);
}
END_TEST

START_TEST(log_dir_without_segments_fails_open_and_a_gap_fails_replay)
{
	struct wlog *w = NULL;
	char err[512] = "", a[256], b[256];
	uint64_t la[16];
	int fds;

	/* no segment at all */
	ck_assert_int_eq(wlog_open(tdir, UUID_A, WLOG_SEGMENT_SIZE_MIN, &w, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(contains(err, "no segment"), "message: '%s'", err);

	/* segments 1, 3: 2 is missing */
	w = new_log(WLOG_SEGMENT_SIZE_MIN);
	append_writes(w, REC1M_PER_SEG + 1, MiB, la, NULL);
	wlog_close(w);
	seg_path(2, a, sizeof(a));
	seg_path(3, b, sizeof(b));
	ck_assert_int_eq(rename(a, b), 0);
	write_seg_header(3, 3, UUID_A, LOG_FORMAT_VERSION);
	err[0] = '\0';
	w = NULL;
	fds = open_fds();
	/* a gap may be released segments: open takes it, replay from before it refuses */
	ck_assert_int_eq(wlog_open(tdir, UUID_A, WLOG_SEGMENT_SIZE_MIN, &w, err, sizeof(err)), 0);
	{
		struct wlog_replay_stats rs;
		struct collector c = { 0 };
		ck_assert_int_eq(log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err)),
		    -EUCLEAN);
		free(c.v);
	}
	ck_assert_msg(contains(err, "00000002") && contains(err, "missing"), "message: '%s'", err);
	wlog_close(w);
	ck_assert_int_eq(open_fds(), fds);
	ck_assert_int_ge(seg_size(3), (int64_t)SEGHDR);
}
END_TEST

/*
 * The newest segment has a complete, checksummed header that is not this
 * store's (another store's uuid, or a newer format version).  That is not a
 * segment whose creation was interrupted: open must refuse, not delete it.
 */
START_TEST(foreign_header_in_newest_segment_fails_open_and_keeps_the_file)
{
	uint64_t la[REC1M_PER_SEG + 1];
	struct wlog *w = NULL;
	char err[512] = "";
	int64_t s2;
	int rc;

	w = new_log(WLOG_SEGMENT_SIZE_MIN);
	append_writes(w, REC1M_PER_SEG + 1, MiB, la, NULL);
	wlog_close(w);
	ck_assert_uint_eq(LADDR_SEG(la[REC1M_PER_SEG]), 2);
	if (_i == 0)
		write_seg_header(2, 2, UUID_B, LOG_FORMAT_VERSION);
	else
		write_seg_header(2, 2, UUID_A, LOG_FORMAT_VERSION + 1);
	s2 = seg_size(2);

	w = NULL;
	rc = wlog_open(tdir, UUID_A, WLOG_SEGMENT_SIZE_MIN, &w, err, sizeof(err));
	ck_assert_msg(rc == -EUCLEAN, "wlog_open returned %d (%s)", rc, err);
	ck_assert_msg(contains(err, _i == 0 ? "another store" : "version"), "message: '%s'", err);
	ck_assert_int_eq(seg_size(2), s2);
}
END_TEST

/*
 * The newest segment is only partly there (its creation was interrupted):
 * open removes it and the log continues at the end of the previous segment.
 * _i: 0 = truncated to 10 bytes, 1 = empty, 2 = its header never written (zeros).
 */
START_TEST(incomplete_newest_segment_is_removed_and_log_continues_before_it)
{
	uint64_t la[REC1M_PER_SEG + 1];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct rec_header h;
	struct wlog *w;
	unsigned char *buf = calloc(1, MiB);
	int64_t s1;

	w = new_log(WLOG_SEGMENT_SIZE_MIN);
	append_writes(w, REC1M_PER_SEG + 1, MiB, la, NULL);
	wlog_close(w);
	ck_assert_uint_eq(LADDR_SEG(la[REC1M_PER_SEG]), 2);
	s1 = seg_size(1);
	if (_i == 0)
		seg_truncate(2, 10);
	else if (_i == 1)
		seg_truncate(2, 0);
	else
		seg_pwrite(2, buf, SEGHDR, 0);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(seg_size(2), -1);
	ck_assert_int_eq(c.n, REC1M_PER_SEG);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, (uint64_t)s1));
	ck_assert_uint_eq(wlog_size(w), (uint64_t)s1);
	ck_assert_uint_eq(wlog_next_seq(w), REC1M_PER_SEG + 1);
	/* the next record does not fit in segment 1: a fresh segment 2 */
	ck_assert_uint_eq(append(w, REC_WRITE, 1, 0, MiB, buf, &h), LADDR(2, SEGHDR));
	ck_assert_uint_eq(h.seq, REC1M_PER_SEG + 1);
	wlog_close(w);

	c.n = 0;
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, REC1M_PER_SEG + 1);
	wlog_close(w);
	free(c.v);
	free(buf);
}
END_TEST

START_TEST(only_segment_truncated_below_header_fails_open)
{
	struct wlog *w = NULL;
	char err[512] = "";

	ck_assert_int_eq(wlog_create(tdir, UUID_A), 0);
	seg_truncate(1, 10);
	ck_assert_int_eq(wlog_open(tdir, UUID_A, WLOG_SEGMENT_SIZE_MIN, &w, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(contains(err, "00000001") && contains(err, "shorter"), "message: '%s'", err);
	ck_assert_int_eq(seg_size(1), 10);
}
END_TEST

/* Replay must start at the expected sequence number; _i picks a wrong one. */
START_TEST(replay_with_wrong_next_seq_applies_nothing)
{
	static const uint64_t wrong[] = { 2, 100, 0 };
	static unsigned char d[100];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[512];
	int rc;

	for (int i = 0; i < 3; i++)
		append(w, REC_WRITE, 1, (uint64_t)i * 100, sizeof(d), d, NULL);
	wlog_close(w);

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	rc = log_replay(w, wlog_first_laddr(), wrong[_i], &c, &rs, err, sizeof(err));
	ck_assert_int_eq(c.n, 0);
	ck_assert_uint_eq(rs.records, 0);
	if (rc == 0) {
		/* stopped at the very first record */
		ck_assert_uint_eq(wlog_tail(w), wlog_first_laddr());
		ck_assert_uint_eq(rs.bytes, 0);
	} else {
		ck_assert_msg(err[0] != '\0', "an error needs a message");
	}
	log_close(w, &c);
}
END_TEST

START_TEST(replay_from_outside_the_log_is_EUCLEAN)
{
	static unsigned char d[100];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[512];
	int64_t size;

	append(w, REC_WRITE, 1, 0, sizeof(d), d, NULL);
	wlog_close(w);
	size = seg_size(1);
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, LADDR(2, SEGHDR), 1, &c, &rs, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(contains(err, "outside"), "message: '%s'", err);
	ck_assert_int_eq(log_replay(w, LADDR(1, 10), 1, &c, &rs, err, sizeof(err)), -EUCLEAN);
	ck_assert_int_eq(log_replay(w, LADDR(0, SEGHDR), 1, &c, &rs, err, sizeof(err)), -EUCLEAN);
	ck_assert_int_eq(c.n, 0);
	ck_assert_int_eq(seg_size(1), size);
	/* the right start still works afterwards */
	ck_assert_int_eq(log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, 1);
	log_close(w, &c);
}
END_TEST

START_TEST(apply_error_stops_replay_and_is_returned)
{
	static unsigned char d[100];
	struct collector c = { .fail_at = 2, .fail_rc = -ENOMEM };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[512];
	int64_t size;

	for (int i = 0; i < 5; i++)
		append(w, REC_WRITE, 1, (uint64_t)i * 100, sizeof(d), d, NULL);
	wlog_close(w);
	size = seg_size(1);

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err)), -ENOMEM);
	ck_assert_int_eq(c.n, 2);
	ck_assert_uint_eq(rs.records, 2);
	ck_assert_msg(contains(err, "record 3"), "message: '%s'", err);
	/* an apply failure is not damage: nothing is cut */
	ck_assert_int_eq(seg_size(1), size);
	log_close(w, &c);
}
END_TEST

/*
 * With trust_complete, replay checks the data of a segment's last record only:
 * a damaged crc table entry in a record followed by others is applied (and
 * then caught by the read), one in the last record is a torn tail.  Without
 * trust_complete the same log is cut at the damaged record.
 * _i: 0 = record 2 of 4 damaged, 1 = record 4 of 4.
 */
START_TEST(trust_complete_replay_verifies_only_the_last_record)
{
	enum { N = 4, LEN = 9000 };
	uint64_t la[N], pos, oldsize;
	static unsigned char data[N * LEN];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	int victim = _i == 0 ? 1 : N - 1;
	char err[512];

	append_writes(w, N, LEN, la, data);
	wlog_close(w);
	pos = LADDR_OFF(la[victim]);
	oldsize = (uint64_t)seg_size(1);
	seg_flip_bit(1, pos + HDR + 4 * 1 + 2, 1);	/* entry 1: data bytes [4096, 8192) */

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay_trusting(w, wlog_first_laddr(), 1, 1, &c, &rs, err, sizeof(err)), 0);
	if (_i == 0) {
		ck_assert_int_eq(c.n, N);
		ck_assert_uint_eq(rs.torn_bytes, 0);
		ck_assert_int_eq(seg_size(1), (int64_t)oldsize);
		/* the read still refuses the damaged block, and only it */
		const char *why = read_expect(w, la[victim], 1, (uint64_t)victim * LEN + 4096, 1, NULL,
		    "damaged block of a trusted record");
		ck_assert_msg(contains(why, "checksum"), "reason '%s'", why);
		read_expect(w, la[victim], 1, (uint64_t)victim * LEN, 4096, data + victim * LEN,
		    "undamaged block of a trusted record");
		read_expect(w, la[victim], 1, (uint64_t)victim * LEN + 8192, LEN - 8192,
		    data + victim * LEN + 8192, "undamaged last block of a trusted record");
		wlog_close(w);

		/* after a machine crash every record is checked: cut there */
		c.n = 0;
		w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
		ck_assert_int_eq(c.n, victim);
		ck_assert_uint_eq(rs.torn_bytes, oldsize - pos);
		ck_assert_int_eq(seg_size(1), (int64_t)pos);
	} else {
		ck_assert_int_eq(c.n, victim);
		ck_assert_uint_eq(rs.torn_bytes, oldsize - pos);
		ck_assert_int_eq(seg_size(1), (int64_t)pos);
		ck_assert_uint_eq(wlog_tail(w), la[victim]);
	}
	log_close(w, &c);
}
END_TEST

/*
 * Bit rot, not a torn tail: every record was synced (wlog_sync after each),
 * then one byte of record 3 of 5 changed.  The later records' synced marks
 * prove it was durable, so replay keeps all five, cuts nothing, and reads of
 * the damaged bytes fail while everything else reads right.  _i: 0 = a data
 * byte (its block only fails), 1 = a byte of its crc table's entry for
 * block 1 (again that block only: reads check the entries they use), 2 = a byte of
 * its header's offset field, 3 = its magic (the whole record fails; the one
 * one-byte change that makes the header sound with the gap's length says
 * which range that is), 4 = the last record's data (nothing later vouches
 * for it: a torn tail, cut as before).
 */
START_TEST(damage_in_synced_records_keeps_later_records)
{
	enum { N = 5, LEN = 9000 };
	uint64_t la[N], oldsize, pos, at;
	static unsigned char data[N * LEN], got[LEN];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	const char *why;
	int victim = _i == 4 ? N - 1 : 2;
	unsigned char b;

	for (int i = 0; i < N; i++) {
		fill(data + i * LEN, LEN, (uint64_t)i + 1);
		la[i] = append(w, REC_WRITE, 1, (uint64_t)i * LEN, LEN, data + i * LEN, NULL);
		ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	}
	wlog_close(w);
	pos = LADDR_OFF(la[victim]);
	oldsize = (uint64_t)seg_size(1);
	at = _i == 1 ? pos + HDR + 5 : _i == 2 ? pos + offsetof(struct rec_header, offset) + 1 :
	    _i == 3 ? pos : pos + WREC_DATA(LEN) + 5000;
	seg_pread(1, &b, 1, at);
	b ^= 0xff;
	seg_pwrite(1, &b, 1, at);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	if (_i == 4) {
		ck_assert_int_eq(c.n, N - 1);
		ck_assert_uint_eq(rs.torn_bytes, oldsize - pos);
		ck_assert_uint_eq(rs.damaged, 0);
		log_close(w, &c);
		return;
	}
	ck_assert_int_eq(c.n, N);
	ck_assert_uint_eq(rs.records, N);
	ck_assert_uint_eq(rs.damaged, 1);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_int_eq(cut_files(NULL), 0);
	ck_assert_int_eq(seg_size(1), (int64_t)oldsize);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, oldsize));
	ck_assert_uint_eq(wlog_next_seq(w), N + 1);
	/* the damaged record is applied with its true range */
	ck_assert_uint_eq(c.v[victim].rec_laddr, la[victim]);
	ck_assert_uint_eq(c.v[victim].h.seq, (uint64_t)victim + 1);
	ck_assert_uint_eq(c.v[victim].h.offset, (uint64_t)victim * LEN);
	ck_assert_uint_eq(c.v[victim].h.length, LEN);
	for (int i = 0; i < N; i++) {
		if (i == victim)
			continue;
		ck_assert_int_eq(wlog_read(w, la[i], 1, (uint64_t)i * LEN, got, LEN, &why), 0);
		assert_bytes_eq(got, data + i * LEN, LEN, "a record around the damaged one");
	}
	if (_i <= 1) {
		/* blocks 0 and 2 read right, block 1 (its data, or its table entry) fails */
		check_ranges(w, la[victim], 1, (uint64_t)victim * LEN, data + victim * LEN, LEN,
		    BLK, 2 * BLK);
	} else {
		ck_assert_int_eq(wlog_read(w, la[victim], 1, (uint64_t)victim * LEN, got, 100, &why),
		    -EBADMSG);
	}
	log_close(w, &c);
}
END_TEST

/*
 * A damaged header whose range cannot be told (two fields changed: no single
 * byte repairs it) among synced records: the open fails with a message,
 * rather than serve older bytes for the range, and changes nothing.
 */
START_TEST(damaged_header_of_unknown_range_in_synced_records_fails_open)
{
	enum { N = 4, LEN = 5000 };
	uint64_t la[N], oldsize;
	static unsigned char data[N * LEN];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[512] = "";

	for (int i = 0; i < N; i++) {
		fill(data + i * LEN, LEN, (uint64_t)i + 7);
		la[i] = append(w, REC_WRITE, 1, (uint64_t)i * LEN, LEN, data + i * LEN, NULL);
		ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	}
	wlog_close(w);
	oldsize = (uint64_t)seg_size(1);
	seg_flip_bit(1, LADDR_OFF(la[1]) + offsetof(struct rec_header, offset), 2);
	seg_flip_bit(1, LADDR_OFF(la[1]) + offsetof(struct rec_header, disk_id), 4);
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(strstr(err, "were synced") != NULL, "message: %s", err);
	ck_assert_int_eq(seg_size(1), (int64_t)oldsize);
	ck_assert_int_eq(cut_files(NULL), 0);
	log_close(w, &c);
}
END_TEST

FIXTURE_MAIN(tc, "wlog", wlog_setup, 60)
{
	tcase_add_loop_test(tc, damaged_record_in_newest_segment_is_cut_and_appends_continue_there, 0, 6);
	tcase_add_loop_test(tc, torn_tail_is_cut_and_earlier_records_survive, 0, 7);
	tcase_add_test(tc, segments_roll_at_segment_size_and_replay_spans_them);
	tcase_add_loop_test(tc, damage_in_older_segment_is_EUCLEAN_and_nothing_is_cut, 0, 5);
	tcase_add_loop_test(tc, bad_segment_header_fails_open_with_message, 0, 6);
	tcase_add_test(tc, log_dir_without_segments_fails_open_and_a_gap_fails_replay);
	tcase_add_loop_test(tc, foreign_header_in_newest_segment_fails_open_and_keeps_the_file, 0, 2);
	tcase_add_loop_test(tc, incomplete_newest_segment_is_removed_and_log_continues_before_it, 0, 3);
	tcase_add_test(tc, only_segment_truncated_below_header_fails_open);
	tcase_add_loop_test(tc, replay_with_wrong_next_seq_applies_nothing, 0, 3);
	tcase_add_test(tc, replay_from_outside_the_log_is_EUCLEAN);
	tcase_add_test(tc, apply_error_stops_replay_and_is_returned);
	tcase_add_loop_test(tc, trust_complete_replay_verifies_only_the_last_record, 0, 2);
	tcase_add_loop_test(tc, damage_in_synced_records_keeps_later_records, 0, 5);
	tcase_add_test(tc, damaged_header_of_unknown_range_in_synced_records_fails_open);
}
