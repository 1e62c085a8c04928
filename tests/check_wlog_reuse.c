/*
 * check_wlog_reuse: reused segment files (log format v3, fs/store/wlog.c).
 * A released segment becomes a spare whose file the next roll reuses; stale
 * records after the tail of a reused file are never replayed; every crash
 * state of release and roll opens and recovers; version 2 logs still open.
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

static void
spare_path(uint32_t segno, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%08x.spare", tdir, segno);
}

/* Inode of a file in the log dir (0 if there is none). */
static uint64_t
file_ino(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (uint64_t)sb.st_ino : 0;
}

static uint64_t
seg_ino(uint32_t segno)
{
	char p[256];
	seg_path(segno, p, sizeof(p));
	return file_ino(p);
}

static int64_t
spare_size(uint32_t segno)
{
	char p[256];
	spare_path(segno, p, sizeof(p));
	return file_size(p);
}

/*
 * A log whose segment 4 is the reused file of segment 1: segments 1..3 full
 * of 1 MiB records (la[0..45), seeds 1000 + i), segment 1 released (its
 * file a spare), and record 45 the first of segment 4.  *old_ino: segment
 * 1's file; *old_size: its size.  The log stays open.
 */
enum { REUSE_N = 3 * REC1M_PER_SEG + 1 };
static struct wlog *
reused_log(uint64_t *la, uint64_t *old_ino, int64_t *old_size)
{
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	for (int i = 0; i < 2 * REC1M_PER_SEG + 1; i++)
		la[i] = append_one(w, (uint64_t)i * MiB, MiB, 1000 + (uint64_t)i);
	*old_ino = seg_ino(1);
	*old_size = seg_size(1);
	ck_assert_int_eq(wlog_release(w, 1), 0);
	for (int i = 2 * REC1M_PER_SEG + 1; i < REUSE_N; i++)
		la[i] = append_one(w, (uint64_t)i * MiB, MiB, 1000 + (uint64_t)i);
	ck_assert_uint_eq(LADDR_SEG(la[REUSE_N - 1]), 4);
	return w;
}

/*
 * Releasing a segment keeps its file as a spare (the segment is its header,
 * as when it was cut down); the next roll makes the new segment in that
 * same file, with a version 3 header naming where the previous one ends.
 */
START_TEST(released_segment_becomes_a_spare_and_the_next_roll_reuses_its_file)
{
	uint64_t la[2 * REC1M_PER_SEG + 2];
	unsigned char *buf = malloc(MiB), *want = malloc(MiB);
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	struct seg_header before, after;
	uint64_t ino1, seg1 = SEGHDR + REC1M_PER_SEG * WREC_SIZE(MiB);
	const char *why;

	append_writes(w, 2 * REC1M_PER_SEG + 1, MiB, la, NULL);
	ck_assert_uint_eq(LADDR_SEG(la[2 * REC1M_PER_SEG]), 3);
	ino1 = seg_ino(1);
	seg_pread(1, &before, sizeof(before), 0);
	ck_assert_uint_eq(before.version, LOG_FORMAT_VERSION);
	ck_assert_uint_eq(before.prev_end, 0);
	ck_assert_int_eq(wlog_spare_bytes(w), 0);
	ck_assert_int_eq(wlog_release(w, 1), 0);
	/* the segment is gone; its old file is the spare */
	ck_assert_int_eq(seg_size(1), -1);
	ck_assert_int_eq(spare_size(1), (int64_t)seg1);
	{
		char p[256];
		spare_path(1, p, sizeof(p));
		ck_assert_uint_eq(file_ino(p), ino1);
	}
	ck_assert_int_eq(wlog_segment_bytes(w, 1), -EINVAL);
	ck_assert_uint_eq(wlog_spare_bytes(w), seg1);
	ck_assert_uint_eq(wlog_disk_bytes(w), wlog_size(w) - seg1);
	/* releasing it again changes nothing */
	ck_assert_int_eq(wlog_release(w, 1), 0);
	ck_assert_uint_eq(wlog_spare_bytes(w), seg1);

	/* fill segment 3; the next record makes segment 4 in the spare */
	for (int i = 1; i < REC1M_PER_SEG; i++)
		append_one(w, 0, MiB, 7);
	ck_assert_int_eq(seg_size(4), -1);
	la[2 * REC1M_PER_SEG + 1] = append_one(w, 5 * MiB, MiB, 77);
	ck_assert_uint_eq(la[2 * REC1M_PER_SEG + 1], LADDR(4, SEGHDR));
	ck_assert_uint_eq(seg_ino(4), ino1);
	ck_assert_int_eq(spare_size(1), -1);
	ck_assert_int_eq(seg_size(4), (int64_t)seg1);	/* overwritten in place, not grown */
	seg_pread(4, &after, sizeof(after), 0);
	ck_assert_uint_eq(after.version, LOG_FORMAT_VERSION);
	ck_assert_uint_eq(after.segno, 4);
	ck_assert_uint_eq(after.prev_end, seg1);
	ck_assert_int_eq(wlog_segment_bytes(w, 3), (int64_t)seg1);
	ck_assert_int_eq(wlog_segment_bytes(w, 4), (int64_t)(SEGHDR + WREC_SIZE(MiB)));
	/* what is not yet overwritten counts as spare; an end marker follows the record */
	ck_assert_uint_eq(wlog_spare_bytes(w), seg1 - SEGHDR - WREC_SIZE(MiB));
	{
		struct rec_header m;
		seg_pread(4, &m, sizeof(m), SEGHDR + WREC_SIZE(MiB));
		ck_assert_uint_eq(m.magic, REC_MAGIC);
		ck_assert_uint_eq(m.type, REC_END);
		ck_assert_uint_eq(m.seq, 3 * REC1M_PER_SEG + 2);	/* the next record's */
		ck_assert_uint_eq(m.hdr_crc, hdr_crc_of(&m));
	}
	ck_assert_int_eq(wlog_read(w, la[2 * REC1M_PER_SEG + 1], 1, 5 * MiB, buf, MiB, &why), 0);
	fill(want, MiB, 77);
	assert_bytes_eq(buf, want, MiB, "record in the reused file");
	/* the pool is empty: the next release makes a spare again, the next roll a new file */
	ck_assert_int_eq(wlog_release(w, 2), 0);
	ck_assert_int_eq(spare_size(2), (int64_t)seg1);
	wlog_close(w);
	free(buf);
	free(want);
}
END_TEST

/*
 * Stale records of the reused file's earlier life after the tail are never
 * replayed.  _i: 0 = the end marker as the append left it; 1 = the marker
 * lost (a power cut), the stale record it covered is there; 2 = the marker
 * torn (garbage); 3 = the second new record made it to disk but the first
 * was lost (its old bytes are back): replay ends at the first, and a first
 * open cuts the second too, which could otherwise come back after a second
 * power cut.  Takeovers (trust_complete) leave stale bytes alone.
 */
START_TEST(stale_records_after_the_tail_are_not_replayed)
{
	uint64_t la[REUSE_N + 2], ino1, end;
	int64_t old_size;
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = reused_log(la, &ino1, &old_size);
	uint64_t from = la[REC1M_PER_SEG], from_seq = REC1M_PER_SEG + 1;
	size_t want_n;
	char err[512];
	unsigned char stale[HDR];

	la[REUSE_N] = append_one(w, 0, 8192, 5);	/* short records: stale 1 MiB ones behind */
	la[REUSE_N + 1] = append_one(w, 8192, 8192, 6);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	end = LADDR_OFF(la[REUSE_N + 1]) + WREC_SIZE(8192);
	wlog_close(w);
	ck_assert_int_eq(seg_size(4), old_size);
	want_n = REUSE_N + 2 - REC1M_PER_SEG;
	/* the header of a stale record of the earlier life, beyond what was overwritten */
	seg_pread(4, stale, HDR, SEGHDR + 2 * WREC_SIZE(MiB));
	ck_assert_uint_eq(((struct rec_header *)(void *)stale)->seq, 3);
	if (_i == 1) {
		/* put the header of that stale record where the marker is */
		seg_pwrite(4, stale, HDR, end);
	} else if (_i == 2) {
		seg_flip_bit(4, end + 20, 3);
	} else if (_i == 3) {
		seg_pwrite(4, stale, HDR, LADDR_OFF(la[REUSE_N]));
		end = LADDR_OFF(la[REUSE_N]);
		want_n -= 2;	/* the second record is on disk, but after a lost one */
	}

	/* a takeover: nothing is cut but a torn record (_i == 2: the garbage after the end) */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay_trusting(w, from, from_seq, 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, want_n);
	ck_assert_uint_eq(wlog_tail(w), LADDR(4, end));
	ck_assert_int_eq(seg_size(4), _i == 2 ? (int64_t)end : old_size);
	ck_assert_uint_eq(rs.torn_bytes, _i == 2 ? (uint64_t)old_size - end : 0);
	ck_assert_uint_eq(rs.stale_bytes, 0);
	for (size_t k = 0; k < c.n; k++)
		ck_assert_uint_eq(c.v[k].h.seq, from_seq + k);
	ck_assert_uint_eq(wlog_size(w), 2 * SEGHDR + 2 * REC1M_PER_SEG * WREC_SIZE(MiB) + end);
	wlog_close(w);
	if (_i == 2) {
		ck_assert_int_eq(cut_files(NULL), 0);	/* no record of this life after it */
		goto out;
	}

	/* a first open: every byte after the end goes, durably */
	c.n = 0;
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, from, from_seq, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, want_n);
	ck_assert_int_eq(seg_size(4), (int64_t)end);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(rs.stale_bytes, (uint64_t)old_size - end);
	ck_assert_int_eq(cut_files(NULL), 0);
	ck_assert_uint_eq(wlog_spare_bytes(w), 0);
	/* appends continue at the end */
	ck_assert_uint_eq(append_one(w, 0, 8192, 9), LADDR(4, end));
	wlog_close(w);
out:
	free(c.v);
}
END_TEST

/*
 * A reused file that was filled and sealed has stale bytes after its
 * records (here an end marker and the last 1 MiB record of its earlier
 * life); replay crosses it by the next header's prev_end.  Without that,
 * the marker would be corruption in a sealed segment.
 */
START_TEST(replay_crosses_a_reused_sealed_segment_at_its_recorded_end)
{
	uint64_t la[REUSE_N + REC1M_PER_SEG], ino1, end4;
	int64_t old_size;
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = reused_log(la, &ino1, &old_size);
	char err[512];
	int n = REUSE_N;
	uint64_t big;
	unsigned char *buf = malloc(2 * MiB), *want = malloc(2 * MiB);
	const char *why;

	/* 13 more 1 MiB records: segment 4 holds 14; a 2 MiB one does not fit, so rolls */
	for (int i = 0; i < REC1M_PER_SEG - 2; i++, n++)
		la[n] = append_one(w, (uint64_t)n * MiB, MiB, 1000 + (uint64_t)n);
	end4 = SEGHDR + (REC1M_PER_SEG - 1) * WREC_SIZE(MiB);
	ck_assert_uint_eq(LADDR_OFF(wlog_tail(w)), end4);
	big = append_one(w, 0, 2 * MiB, 4242);
	ck_assert_uint_eq(big, LADDR(5, SEGHDR));
	ck_assert_int_eq(seg_size(4), old_size);
	ck_assert_int_eq(wlog_segment_bytes(w, 4), (int64_t)end4);
	{
		struct seg_header sh;
		seg_pread(5, &sh, sizeof(sh), 0);
		ck_assert_uint_eq(sh.prev_end, end4);
	}
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, n - REC1M_PER_SEG + 1);
	ck_assert_uint_eq(c.v[c.n - 1].rec_laddr, big);
	ck_assert_uint_eq(c.v[c.n - 2].rec_laddr, la[n - 1]);
	ck_assert_int_eq(seg_size(4), old_size);	/* a sealed segment is never cut */
	ck_assert_int_eq(wlog_segment_bytes(w, 4), (int64_t)end4);
	ck_assert_int_eq(wlog_read(w, la[n - 1], 1, (uint64_t)(n - 1) * MiB, buf, MiB, &why), 0);
	fill(want, MiB, 1000 + (uint64_t)(n - 1));
	assert_bytes_eq(buf, want, MiB, "last record of the reused sealed segment");
	ck_assert_int_eq(wlog_read(w, big, 1, 0, buf, 2 * MiB, &why), 0);
	fill(want, 2 * MiB, 4242);
	assert_bytes_eq(buf, want, 2 * MiB, "record after it");
	wlog_close(w);

	/* a record damaged before the recorded end is still corruption */
	seg_flip_bit(4, LADDR_OFF(la[n - 1]) + WREC_DATA(MiB) + 100, 2);
	c.n = 0;
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)),
	    -EUCLEAN);
	ck_assert_msg(contains(err, "00000004") && contains(err, "corrupt"), "message: '%s'", err);
	wlog_close(w);
	free(c.v);
	free(buf);
	free(want);
}
END_TEST

/*
 * With trust_complete, the record that ends the log is verified even when
 * the file goes on (stale bytes): "ends the log" means no valid successor
 * follows it, not "the file ends".
 */
START_TEST(trust_complete_replay_verifies_the_last_record_of_a_reused_file)
{
	uint64_t la[REUSE_N], ino1;
	int64_t old_size;
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = reused_log(la, &ino1, &old_size);
	uint64_t last = LADDR_OFF(la[REUSE_N - 1]);
	char err[512];

	wlog_close(w);
	seg_flip_bit(4, last + WREC_DATA(MiB) + 3 * 4096 + 1, 0);
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay_trusting(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, 1, &c, &rs,
	    err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, REUSE_N - 1 - REC1M_PER_SEG);
	ck_assert_uint_eq(wlog_tail(w), la[REUSE_N - 1]);
	ck_assert_uint_eq(rs.torn_bytes, (uint64_t)old_size - last);
	log_close(w, &c);
}
END_TEST

/*
 * What a crash can leave of a release or a roll, and what open makes of it.
 * _i: 0 = a leftover SSSSSSSS.spare (created, not yet exchanged) next to the
 * whole segment; 1 = the exchanged pair (release done, nothing reused yet);
 * 2 = a spare with the next segment's header written but not yet renamed;
 * 3 = the spare renamed to the next segment, its header durable, nothing
 * appended: stale records of its earlier life follow the header.
 */
START_TEST(crash_states_of_release_and_roll_open_and_recover)
{
	uint64_t la[2 * REC1M_PER_SEG + 1], seg1 = SEGHDR + REC1M_PER_SEG * WREC_SIZE(MiB);
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	uint64_t tail, ino1 = 0;
	char err[512], a[256], b[256];
	size_t n;

	append_writes(w, 2 * REC1M_PER_SEG + 1, MiB, la, NULL);
	tail = wlog_tail(w);
	ck_assert_uint_eq(LADDR_SEG(tail), 3);
	if (_i == 0) {
		/* an interrupted release: a partly written header-only copy */
		int fd;
		spare_path(1, a, sizeof(a));
		fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0600);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, "HCOW", 4), 4);
		close(fd);
	} else {
		ino1 = seg_ino(1);
		ck_assert_int_eq(wlog_release(w, 1), 0);
	}
	ck_assert_int_eq(wlog_sync(w, tail), 0);
	wlog_close(w);
	if (_i >= 2) {
		/* the roll to segment 4 got as far as its header (and, with 3, its name) */
		struct seg_header sh;
		memset(&sh, 0, sizeof(sh));
		memcpy(sh.magic, SEG_MAGIC, 8);
		sh.version = LOG_FORMAT_VERSION;
		sh.header_size = sizeof(sh);
		sh.segno = 4;
		memcpy(sh.store_uuid, UUID_A, 16);
		sh.prev_end = LADDR_OFF(tail);
		sh.crc = crc32c(0, &sh, sizeof(sh));
		spare_path(1, a, sizeof(a));
		seg_path(4, b, sizeof(b));
		int fd = open(a, O_WRONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(pwrite(fd, &sh, sizeof(sh), 0), (ssize_t)sizeof(sh));
		close(fd);
		if (_i == 3)
			ck_assert_int_eq(rename(a, b), 0);
	}

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)), 0);
	n = REC1M_PER_SEG + 1;
	ck_assert_int_eq(c.n, n);
	for (size_t k = 0; k < c.n; k++)
		ck_assert_uint_eq(c.v[k].rec_laddr, la[REC1M_PER_SEG + k]);
	if (_i == 3) {
		ck_assert_uint_eq(wlog_tail(w), LADDR(4, SEGHDR));
		ck_assert_uint_eq(rs.stale_bytes, seg1 - SEGHDR);
		ck_assert_int_eq(seg_size(4), (int64_t)SEGHDR);
		ck_assert_int_eq(wlog_segment_bytes(w, 3), (int64_t)LADDR_OFF(tail));
		ck_assert_uint_eq(wlog_spare_bytes(w), 0);
	} else {
		ck_assert_uint_eq(wlog_tail(w), tail);
		ck_assert_uint_eq(wlog_spare_bytes(w), _i == 0 ? 4 : seg1);
	}
	ck_assert_uint_eq(rs.torn_bytes, 0);
	if (_i == 0) {
		/* releasing segment 1 now replaces the leftover */
		ck_assert_int_eq(seg_size(1), (int64_t)seg1);
		ino1 = seg_ino(1);
		ck_assert_int_eq(wlog_release(w, 1), 0);
		ck_assert_int_eq(spare_size(1), (int64_t)seg1);
		ck_assert_int_eq(seg_size(1), -1);
		ck_assert_uint_eq(wlog_spare_bytes(w), seg1);
	}
	if (_i != 3) {
		/* the next roll reuses the spare */
		for (int k = 0; k < REC1M_PER_SEG; k++)
			append_one(w, 0, MiB, 3);
		ck_assert_uint_eq(LADDR_SEG(wlog_tail(w)), 4);
		ck_assert_uint_eq(seg_ino(4), ino1);
		ck_assert_int_eq(spare_size(1), -1);
	} else {
		ck_assert_uint_eq(seg_ino(4), ino1);
		ck_assert_uint_eq(append_one(w, 0, MiB, 3), LADDR(4, SEGHDR));
	}
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	/* and all of it replays again */
	c.n = 0;
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, _i == 3 ? n + 1 : n + REC1M_PER_SEG);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	log_close(w, &c);
}
END_TEST

/* A log of version 2 segments (written before reuse existed) opens, replays and goes on. */
START_TEST(version_2_segments_still_open_and_the_log_goes_on_in_the_current_version)
{
	enum { N = REC1M_PER_SEG + 3 };
	uint64_t la[N + REC1M_PER_SEG];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	uint64_t end2;
	struct seg_header sh;
	int n = N;

	append_writes(w, N, MiB, la, NULL);
	wlog_close(w);
	write_seg_header(1, 1, UUID_A, 2);
	write_seg_header(2, 2, UUID_A, 2);
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, N);
	ck_assert_int_eq(wlog_segment_bytes(w, 1), seg_size(1));
	for (; n < N + REC1M_PER_SEG - 3 + 1; n++)
		la[n] = append_one(w, 0, MiB, (uint64_t)n);
	end2 = (uint64_t)seg_size(2);
	ck_assert_uint_eq(LADDR_SEG(la[n - 1]), 3);
	seg_pread(3, &sh, sizeof(sh), 0);
	ck_assert_uint_eq(sh.version, LOG_FORMAT_VERSION);
	ck_assert_uint_eq(sh.prev_end, end2);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	/* a version 2 segment released: removed or kept as a spare, it is gone either way */
	ck_assert_int_eq(wlog_release(w, 1), 0);
	ck_assert_int_eq(seg_size(1), -1);
	wlog_close(w);
	c.n = 0;
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	{
		char err[512];
		ck_assert_int_eq(log_replay(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, &c, &rs, err,
		    sizeof(err)), 0);
	}
	ck_assert_int_eq(c.n, n - REC1M_PER_SEG);
	ck_assert_int_eq(wlog_segment_bytes(w, 2), (int64_t)end2);
	log_close(w, &c);
}
END_TEST

/*
 * A released segment leaves no file and no fd behind, and the log opens
 * with the gaps that leaves below the replay start: recovery opens only the
 * segments present.  A segment released by an older build (a header-only
 * file) is removed at open.  Replay from before a gap is refused, and a
 * read into a released segment fails, never returns other bytes.
 */
START_TEST(released_segments_leave_no_file_and_a_gap_below_the_start_opens)
{
	enum { N = 4 * REC1M_PER_SEG + 1 };
	uint64_t la[N], end1 = SEGHDR + REC1M_PER_SEG * WREC_SIZE(MiB);
	unsigned char *buf = malloc(MiB), *want = malloc(MiB);
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	struct wlog_replay_stats rs;
	struct collector c = { 0 };
	const char *why;
	char err[512];
	int fds;

	append_writes(w, N, MiB, la, NULL);	/* segments 1..5 */
	ck_assert_uint_eq(LADDR_SEG(la[N - 1]), 5);
	fds = open_fds();
	for (uint32_t s = 2; s <= 3; s++) {
		ck_assert_int_eq(wlog_release(w, s), 0);
		ck_assert_int_eq(seg_size(s), -1);
	}
	ck_assert_int_le(open_fds(), fds);	/* the two spares hold what the segments did */
	ck_assert_int_eq(seg_size(1), (int64_t)end1);	/* cut to its end: segment 2 said where */
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);
	/* segment 4 released the old way: its header kept */
	seg_truncate(4, SEGHDR);

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(seg_size(4), -1);
	ck_assert_int_eq(wlog_segment_bytes(w, 1), (int64_t)end1);
	ck_assert_int_eq(log_replay(w, la[N - 1], N, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, 1);
	ck_assert_int_eq(wlog_read(w, la[0], 1, 0, buf, MiB, &why), 0);
	fill(want, MiB, 1000);
	assert_bytes_eq(buf, want, MiB, "a record below the gap");
	ck_assert_int_lt(wlog_read(w, la[REC1M_PER_SEG], 1, REC1M_PER_SEG * MiB, buf, MiB, &why), 0);
	ck_assert_int_lt(wlog_read(w, la[3 * REC1M_PER_SEG], 1, 3 * REC1M_PER_SEG * MiB, buf, MiB,
	    &why), 0);
	/* the tail stays in 5 (a roll makes 6: numbers are never reused) */
	ck_assert_uint_eq(LADDR_SEG(wlog_tail(w)), 5);
	log_close(w, &c);
	c = (struct collector){ 0 };

	/* replay needs every segment from its start on */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, la[0], 1, &c, &rs, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(strstr(err, "00000002") && strstr(err, "missing"), "message: '%s'", err);
	log_close(w, &c);
	free(buf);
	free(want);
}
END_TEST

/*
 * A cleaner pass releases up to 8 segments at once: every one of their
 * files is kept as a spare (the file system here is roomy), and the next 8
 * rolls reuse them, so no new file is made while the pool lasts (with 64 MiB
 * segments on tmpfs, new files were 6 of every 8: issue 13).
 */
START_TEST(a_pass_worth_of_released_segments_all_become_spares)
{
	enum { NREL = 8, N = (NREL + 1) * REC1M_PER_SEG + 1 };
	uint64_t *la = calloc(N, sizeof(*la)), seg1 = SEGHDR + REC1M_PER_SEG * WREC_SIZE(MiB);
	uint64_t ino[NREL + 1];
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	append_writes(w, N, MiB, la, NULL);	/* segments 1..NREL+1 full, the tail in NREL+2 */
	ck_assert_uint_eq(LADDR_SEG(la[N - 1]), NREL + 2);
	for (uint32_t s = 1; s <= NREL; s++) {
		ino[s] = seg_ino(s);
		ck_assert_int_eq(wlog_release(w, s), 0);
		ck_assert_int_eq(spare_size(s), (int64_t)seg1);
	}
	ck_assert_uint_eq(wlog_spare_bytes(w), NREL * seg1);
	/* the next NREL rolls take the spares, newest first: no new file */
	for (uint32_t s = NREL + 3; s <= 2 * NREL + 2; s++) {
		for (int i = 0; i < REC1M_PER_SEG; i++)
			append_one(w, 0, MiB, 9);
		ck_assert_uint_eq(LADDR_SEG(wlog_tail(w)), s);
		ck_assert_uint_eq(seg_ino(s), ino[2 * NREL + 3 - s]);
	}
	wlog_close(w);
	free(la);
}
END_TEST

FIXTURE_MAIN(tc, "wlog", wlog_setup, 60)
{
	tcase_add_test(tc, released_segment_becomes_a_spare_and_the_next_roll_reuses_its_file);
	tcase_add_loop_test(tc, stale_records_after_the_tail_are_not_replayed, 0, 4);
	tcase_add_test(tc, replay_crosses_a_reused_sealed_segment_at_its_recorded_end);
	tcase_add_test(tc, trust_complete_replay_verifies_the_last_record_of_a_reused_file);
	tcase_add_loop_test(tc, crash_states_of_release_and_roll_open_and_recover, 0, 4);
	tcase_add_test(tc, version_2_segments_still_open_and_the_log_goes_on_in_the_current_version);
	tcase_add_test(tc, released_segments_leave_no_file_and_a_gap_below_the_start_opens);
	tcase_add_test(tc, a_pass_worth_of_released_segments_all_become_spares);
}
