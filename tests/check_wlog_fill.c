/*
 * check_wlog_fill: the newest segment written ahead of the tail with zeros
 * (the filler, fs/store/wlog_segment.c), so that a flush writes data alone.
 * Zeros after the tail are the end of the log, never damage, and are kept;
 * a record of this life after zeros (a power cut kept a later write and
 * lost an earlier one) is a torn tail; zeros then stale bytes are stale
 * bytes; appends into the zeros neither grow the file nor leave a marker;
 * the filler runs from the first flush on, and across a roll, and fills all
 * the way ahead while the log is idle.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wlog_fixture.h"
#include "wlog_int.h"	/* the log's flush count */

#define ZEROS	(2 * MiB)	/* what a test writes after the tail, as the filler would */

/* Write n zero bytes at off of segment segno's file (past the log). */
static void
seg_zero(uint32_t segno, uint64_t off, size_t n)
{
	void *z = calloc(1, n);

	ck_assert_ptr_nonnull(z);
	seg_pwrite(segno, z, n, off);
	free(z);
}

/* Are bytes [off, off+n) of segment segno all zeros? */
static int
seg_is_zero(uint32_t segno, uint64_t off, size_t n)
{
	unsigned char *b = malloc(n);
	int zero = 1;

	ck_assert_ptr_nonnull(b);
	seg_pread(segno, b, n, off);
	for (size_t i = 0; i < n && zero; i++)
		zero = b[i] == 0;
	free(b);
	return zero;
}

/* Wait (up to a minute: no timing is asserted) until segment segno's file has at least size bytes. */
static void
wait_seg_size(uint32_t segno, int64_t size)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };

	for (int i = 0; i < 6000 && seg_size(segno) < size; i++)
		nanosleep(&pause, NULL);
	ck_assert_int_ge(seg_size(segno), size);
}

/*
 * Records, synced, then ZEROS bytes of zeros (what the filler leaves, and
 * after a clean stop what follows the tail).  Every open finds the end at
 * the last record, cuts nothing, calls nothing torn or stale, and keeps the
 * zeros; appends go on into them without growing the file and without an
 * end marker.  _i: 0 = first open, 1 = takeover, 2 = read-only (a check).
 */
START_TEST(zeros_after_the_tail_are_the_end_and_are_kept)
{
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	uint64_t la[5], end;
	char err[512];
	int64_t size;

	for (int i = 0; i < 5; i++)
		la[i] = append_one(w, (uint64_t)i * 8192, 4096 + 100 * (size_t)i, 70 + (uint64_t)i);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	end = LADDR_OFF(wlog_tail(w));
	wlog_close(w);
	seg_zero(1, end, ZEROS);
	size = seg_size(1);

	if (_i == 2)
		ck_assert_int_eq(wlog_open_ro(tdir, UUID_A, &w, err, sizeof(err)), 0);
	else
		w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay_trusting(w, wlog_first_laddr(), 1, _i == 1, &c, &rs, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(c.n, 5);
	ck_assert_uint_eq(c.v[4].rec_laddr, la[4]);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, end));
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(rs.stale_bytes, 0);
	ck_assert_ptr_null(wlog_note(w));
	ck_assert_int_eq(seg_size(1), size);
	ck_assert_int_eq(cut_files(NULL), 0);
	if (_i == 2) {
		log_close(w, &c);
		return;
	}
	/* into the zeros: the file keeps its size; after a first open no marker is needed */
	ck_assert_uint_eq(append_one(w, 0, 4096, 80), LADDR(1, end));
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	ck_assert_int_eq(seg_size(1), size);
	if (_i == 0)
		ck_assert(seg_is_zero(1, end + WREC_SIZE(4096), HDR));
	w = log_reopen_replayed(w, WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 6);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, end + WREC_SIZE(4096)));
	log_close(w, &c);
}
END_TEST

/*
 * Power cuts in the zeros.  Three records were appended into zeros and
 * synced only up to the first; then the disk kept some writes and not
 * others.  _i: 0 = the second record lost (zeros) but the third kept: a
 * record of this life after zeros is a torn tail, cut (kept aside), never
 * the end of a clean log, or appends would later take it for a successor;
 * 1 = the second and third lost, only a partial zero header at the file's
 * end after the first: the end; 2 = zeros, then stale records of an
 * earlier life of the file (seq below the tail's): cut as stale bytes, not
 * torn.  The synced record survives in every case.
 */
START_TEST(power_cut_states_in_the_zeros_recover_every_synced_record)
{
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	uint64_t la[3], first, e1;
	unsigned char old[HDR];

	append_one(w, 0, 4096, 1);			/* seq 1, an "earlier life" header to copy */
	first = LADDR_OFF(wlog_tail(w));
	wlog_close(w);
	seg_zero(1, first, ZEROS);
	seg_pread(1, old, HDR, SEGHDR);
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	for (int i = 0; i < 3; i++)
		la[i] = append_one(w, 4096 * (uint64_t)(i + 1), 4096, 10 + (uint64_t)i);
	ck_assert_int_eq(wlog_sync(w, la[1]), 0);	/* la[0] is durable */
	e1 = LADDR_OFF(la[1]);
	wlog_close(w);

	if (_i == 0) {
		seg_zero(1, e1, WREC_SIZE(4096));
	} else if (_i == 1) {
		seg_truncate(1, e1 + 40);
		seg_zero(1, e1, 40);
	} else {
		seg_zero(1, e1, 2 * WREC_SIZE(4096));
		seg_pwrite(1, old, HDR, e1 + 8192);
	}
	w = log_reopen_replayed(NULL, WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 2);
	ck_assert_uint_eq(c.v[1].rec_laddr, la[0]);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, e1));
	ck_assert_uint_eq(rs.torn_bytes, _i == 0 ? (uint64_t)(first + ZEROS - e1) : 0);
	ck_assert_uint_eq(rs.stale_bytes, _i == 2 ? (uint64_t)(first + ZEROS - e1) : 0);
	ck_assert_int_eq(cut_files(NULL), _i == 0);
	ck_assert_int_eq(seg_size(1), _i == 1 ? (int64_t)(e1 + 40) : (int64_t)e1);
	/* appends go on at the end; the next open finds them */
	ck_assert_uint_eq(append_one(w, 0, 4096, 99), LADDR(1, e1));
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	w = log_reopen_replayed(w, WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 3);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	log_close(w, &c);
}
END_TEST

/*
 * The filler: after a flush, zeros ahead of the tail (a chunk per flush at
 * most while appends go on), so an append lands in bytes the file has and
 * the file does not grow; across a roll the new segment is filled too,
 * never past the segment size; everything replays after a close.
 */
START_TEST(filler_writes_ahead_from_the_first_flush_and_across_a_roll)
{
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	uint64_t tail, n = 0;
	int64_t size;

	ck_assert_int_eq(wlog_set_fill(w, 4 * MiB), 0);
	append_one(w, 0, 4096, n++);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	/* it fills in chunks of half the distance: at least that much is ahead */
	wait_seg_size(1, (int64_t)(LADDR_OFF(wlog_tail(w)) + 2 * MiB));
	size = seg_size(1);
	ck_assert_int_le(size, 4 * MiB + SEGHDR + WREC_SIZE(4096));
	tail = LADDR_OFF(append_one(w, 4096, 4096, n++));
	ck_assert_int_le(tail + WREC_SIZE(4096), size);		/* into bytes the file had */
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	ck_assert(seg_is_zero(1, tail + WREC_SIZE(4096), 64 * 1024));
	/* on to segment 2 with 1 MiB records, synced now and then */
	while (LADDR_SEG(wlog_tail(w)) == 1) {
		append_one(w, n * MiB, MiB, n);
		n++;
		if (n % 4 == 0)
			ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	}
	ck_assert_int_le(seg_size(1), WLOG_SEGMENT_SIZE_MIN);
	/* a flush in segment 2: the filler writes a chunk per flush at most */
	append_one(w, n * MiB, 4096, n);
	n++;
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wait_seg_size(2, (int64_t)(LADDR_OFF(wlog_tail(w)) + 2 * MiB));
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, n);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(rs.stale_bytes, 0);
	log_close(w, &c);
}
END_TEST

/*
 * A log flushed once, then idle: the filler does not wait for more flushes
 * but fills all the way ahead (two whole chunks of the three it may
 * write, where a chunk per flush would write one), so a guest that flushes after a pause finds its zeros
 * written.  No timing is asserted: the test waits up to a minute.
 */
START_TEST(an_idle_log_is_filled_all_the_way_ahead)
{
	struct collector c = { 0 };
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	uint64_t n = 0, flushes;

	ck_assert_int_eq(wlog_set_fill(w, 12 * MiB), 0);	/* chunks of 4 MiB, whole ones only */
	append_one(w, 0, 4096, n++);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	flushes = atomic_load(&w->flushes);
	wait_seg_size(1, (int64_t)(LADDR_OFF(wlog_tail(w)) + 8 * MiB));
	ck_assert_uint_eq(atomic_load(&w->flushes), flushes);
	ck_assert(seg_is_zero(1, LADDR_OFF(wlog_tail(w)), 8 * MiB));
	log_close(w, &c);
}
END_TEST

FIXTURE_MAIN(tc, "wlog", wlog_setup, 120)
{
	tcase_add_loop_test(tc, zeros_after_the_tail_are_the_end_and_are_kept, 0, 3);
	tcase_add_loop_test(tc, power_cut_states_in_the_zeros_recover_every_synced_record, 0, 3);
	tcase_add_test(tc, filler_writes_ahead_from_the_first_flush_and_across_a_roll);
	tcase_add_test(tc, an_idle_log_is_filled_all_the_way_ahead);
}
