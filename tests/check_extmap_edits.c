/*
 * check_extmap_edits: directed tests of fs/store/extmap.c, the in-memory
 * extent index.  They pin down lookups at every boundary, clipping,
 * splitting, merging (same record only, zeros with zeros, across leaves),
 * clearing, bad ranges that leave the map unchanged, a walk that stops
 * when its callback says so, and thinned-out leaves joined so that memory
 * follows the extent count.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extmap_fixture.h"

static int
count_cb(const struct extent *e, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

START_TEST(test_empty_map_reports_nothing)
{
	struct extmap *m = extmap_new();
	int calls = 0;

	REQ(m != NULL);
	REQ_U64(extmap_count(m), 0);
	REQ_U64(extmap_log_bytes(m), 0);
	expect_no_first(m, 0, UINT64_MAX);
	REQ_INT(extmap_walk(m, 0, UINT64_MAX, count_cb, &calls), 0);
	REQ_INT(calls, 0);
	EXPECT_NONE(m);
	/* clearing an empty map is a no-op, not an error */
	REQ_INT(extmap_clear(m, 0, 1000), 0);
	REQ_U64(extmap_count(m), 0);
	extmap_free(m);
	extmap_free(NULL);
}
END_TEST

START_TEST(test_lookup_at_every_boundary_and_clipping)
{
	struct extmap *m = extmap_new();

	REQ_INT(extmap_set(m, 1000, 500, 7000), 0);
	REQ_U64(extmap_count(m), 1);
	REQ_U64(extmap_log_bytes(m), 500);

	/* loff - 1 */
	expect_no_first(m, 0, 1000);		/* query ends where the extent starts */
	expect_no_first(m, 999, 1000);
	expect_first(m, 999, 1001, 1000, 1, 7000);
	expect_first(m, 999, 2000, 1000, 500, 7000);
	/* loff */
	expect_first(m, 1000, 1001, 1000, 1, 7000);
	expect_first(m, 1000, UINT64_MAX, 1000, 500, 7000);
	/* loff + len - 1: clipped at the front, laddr (the record) unchanged */
	expect_first(m, 1499, 1500, 1499, 1, 7000);
	expect_first(m, 1499, 5000, 1499, 1, 7000);
	/* loff + len */
	expect_no_first(m, 1500, 1501);
	expect_no_first(m, 1500, UINT64_MAX);
	/* both ends clipped */
	expect_first(m, 1100, 1200, 1100, 100, 7000);
	expect_first(m, 0, UINT64_MAX, 1000, 500, 7000);

	/* the same boundaries through extmap_walk */
	{ const struct extent e[] = { { 1000, 1, 7000 } }; expect_walk(m, 999, 1001, e, 1); }
	{ const struct extent e[] = { { 1000, 1, 7000 } }; expect_walk(m, 1000, 1001, e, 1); }
	{ const struct extent e[] = { { 1499, 1, 7000 } }; expect_walk(m, 1499, 1501, e, 1); }
	{ const struct extent e[] = { { 1250, 50, 7000 } }; expect_walk(m, 1250, 1300, e, 1); }
	expect_walk(m, 0, 1000, NULL, 0);
	expect_walk(m, 1500, 1600, NULL, 0);
	/* empty and inverted queries report nothing */
	expect_walk(m, 1200, 1200, NULL, 0);
	expect_walk(m, 1300, 1200, NULL, 0);
	expect_no_first(m, 1200, 1200);

	/* a zero extent clipped stays zero */
	REQ_INT(extmap_set(m, 5000, 100, Z), 0);
	expect_first(m, 5050, 5060, 5050, 10, Z);
	expect_first(m, 1500, 6000, 5000, 100, Z);
	{
		const struct extent e[] = { { 1400, 100, 7000 }, { 5000, 50, Z } };
		expect_walk(m, 1400, 5050, e, 2);
	}
	REQ_U64(extmap_count(m), 2);
	REQ_U64(extmap_log_bytes(m), 500);
	check_invariants(m, NULL);
	extmap_free(m);
}
END_TEST

START_TEST(test_overwrite_middle_splits_one_extent_into_three)
{
	struct extmap *m = extmap_new();

	REQ_INT(extmap_set(m, 0, 300, 1000), 0);
	REQ_INT(extmap_set(m, 100, 100, 50000), 0);
	/* both outer pieces keep the record's laddr; same laddr, not touching */
	EXPECT_ALL(m, { 0, 100, 1000 }, { 100, 100, 50000 }, { 200, 100, 1000 });
	REQ_U64(extmap_count(m), 3);
	REQ_U64(extmap_log_bytes(m), 300);

	/* a 1-byte zero hole in the middle of the right piece */
	REQ_INT(extmap_set(m, 250, 1, Z), 0);
	EXPECT_ALL(m, { 0, 100, 1000 }, { 100, 100, 50000 }, { 200, 50, 1000 },
	    { 250, 1, Z }, { 251, 49, 1000 });
	REQ_U64(extmap_count(m), 5);
	REQ_U64(extmap_log_bytes(m), 299);
	check_invariants(m, NULL);
	extmap_free(m);
}
END_TEST

START_TEST(test_overwrite_head_tail_several_and_exact)
{
	struct extmap *m = extmap_new();

	/* overlapping the head: the old extent keeps its tail, laddr unchanged */
	REQ_INT(extmap_set(m, 100, 100, 1000), 0);
	REQ_INT(extmap_set(m, 50, 100, 9000), 0);
	EXPECT_ALL(m, { 50, 100, 9000 }, { 150, 50, 1000 });
	REQ_U64(extmap_log_bytes(m), 150);
	extmap_free(m);

	/* overlapping the head of a zero extent: its remainder stays zero, 0 log bytes */
	m = extmap_new();
	REQ_INT(extmap_set(m, 100, 100, Z), 0);
	REQ_INT(extmap_set(m, 50, 100, 9000), 0);
	EXPECT_ALL(m, { 50, 100, 9000 }, { 150, 50, Z });
	REQ_U64(extmap_log_bytes(m), 100);
	REQ_INT(extmap_clear(m, 0, 160), 0);
	EXPECT_ALL(m, { 160, 40, Z });
	REQ_U64(extmap_log_bytes(m), 0);
	extmap_free(m);

	/* overlapping the tail: the old extent keeps its head */
	m = extmap_new();
	REQ_INT(extmap_set(m, 100, 100, 1000), 0);
	REQ_INT(extmap_set(m, 150, 100, 9000), 0);
	EXPECT_ALL(m, { 100, 50, 1000 }, { 150, 100, 9000 });
	REQ_U64(extmap_log_bytes(m), 150);
	/* ... with zeros: log bytes drop by what was overwritten */
	REQ_INT(extmap_set(m, 120, 200, Z), 0);
	EXPECT_ALL(m, { 100, 20, 1000 }, { 120, 200, Z });
	REQ_U64(extmap_log_bytes(m), 20);
	extmap_free(m);

	/* covering several: two trimmed, two swallowed */
	m = extmap_new();
	REQ_INT(extmap_set(m, 0, 10, 100), 0);
	REQ_INT(extmap_set(m, 20, 10, 300), 0);
	REQ_INT(extmap_set(m, 40, 10, 500), 0);
	REQ_INT(extmap_set(m, 60, 10, 700), 0);
	REQ_U64(extmap_count(m), 4);
	REQ_U64(extmap_log_bytes(m), 40);
	REQ_INT(extmap_set(m, 5, 60, 9000), 0);
	EXPECT_ALL(m, { 0, 5, 100 }, { 5, 60, 9000 }, { 65, 5, 700 });
	REQ_U64(extmap_count(m), 3);
	REQ_U64(extmap_log_bytes(m), 70);
	/* covering exactly whole extents and the gaps around them */
	REQ_INT(extmap_set(m, 0, 70, Z), 0);
	EXPECT_ALL(m, { 0, 70, Z });
	REQ_U64(extmap_log_bytes(m), 0);
	extmap_free(m);

	/* exact replacement */
	m = extmap_new();
	REQ_INT(extmap_set(m, 100, 100, 1000), 0);
	REQ_INT(extmap_set(m, 100, 100, 2000), 0);
	EXPECT_ALL(m, { 100, 100, 2000 });
	REQ_U64(extmap_count(m), 1);
	REQ_U64(extmap_log_bytes(m), 100);
	REQ_INT(extmap_set(m, 100, 100, Z), 0);
	EXPECT_ALL(m, { 100, 100, Z });
	REQ_U64(extmap_log_bytes(m), 0);
	REQ_INT(extmap_set(m, 100, 100, 3000), 0);
	EXPECT_ALL(m, { 100, 100, 3000 });
	REQ_U64(extmap_log_bytes(m), 100);
	check_invariants(m, NULL);
	extmap_free(m);
}
END_TEST

START_TEST(test_merge_same_record_only)
{
	struct extmap *m = extmap_new();

	/* touching, same laddr, appended after: merges with its predecessor */
	REQ_INT(extmap_set(m, 0, 100, 1000), 0);
	REQ_INT(extmap_set(m, 100, 100, 1000), 0);
	EXPECT_ALL(m, { 0, 200, 1000 });
	REQ_U64(extmap_count(m), 1);
	REQ_U64(extmap_log_bytes(m), 200);
	/* same laddr, not touching (gap of 100): no merge, either order */
	REQ_INT(extmap_set(m, 400, 100, 1000), 0);
	EXPECT_ALL(m, { 0, 200, 1000 }, { 400, 100, 1000 });
	/* touching, same laddr, prepended before: merges with its successor only */
	REQ_INT(extmap_set(m, 300, 100, 1000), 0);
	EXPECT_ALL(m, { 0, 200, 1000 }, { 300, 200, 1000 });
	REQ_U64(extmap_count(m), 2);
	/* filling the gap with another record: touches both, merges with neither */
	REQ_INT(extmap_set(m, 200, 100, 2000), 0);
	EXPECT_ALL(m, { 0, 200, 1000 }, { 200, 100, 2000 }, { 300, 200, 1000 });
	REQ_U64(extmap_count(m), 3);
	/* ... and with the same record: merges all three */
	REQ_INT(extmap_set(m, 200, 100, 1000), 0);
	EXPECT_ALL(m, { 0, 500, 1000 });
	REQ_U64(extmap_count(m), 1);
	REQ_U64(extmap_log_bytes(m), 500);
	/* overwriting part of it with what it already maps changes nothing */
	REQ_INT(extmap_set(m, 123, 77, 1000), 0);
	REQ_INT(extmap_set(m, 0, 1, 1000), 0);
	REQ_INT(extmap_set(m, 499, 1, 1000), 0);
	EXPECT_ALL(m, { 0, 500, 1000 });
	REQ_U64(extmap_count(m), 1);
	/* split, then restore: merges back to one */
	REQ_INT(extmap_set(m, 100, 100, 77777), 0);
	EXPECT_ALL(m, { 0, 100, 1000 }, { 100, 100, 77777 }, { 200, 300, 1000 });
	REQ_INT(extmap_set(m, 100, 100, 1000), 0);
	EXPECT_ALL(m, { 0, 500, 1000 });
	REQ_U64(extmap_log_bytes(m), 500);
	check_invariants(m, NULL);
	extmap_free(m);

	/*
	 * Touching, different laddr: no merge.  1100 and 1200 are where the
	 * next byte would be under "laddr + len" arithmetic (the old rule),
	 * 1001 and 999 are off by one from the same record.
	 */
	m = extmap_new();
	REQ_INT(extmap_set(m, 0, 100, 1000), 0);
	REQ_INT(extmap_set(m, 100, 100, 1100), 0);
	REQ_INT(extmap_set(m, 200, 100, 1200), 0);
	REQ_INT(extmap_set(m, 300, 100, 1201), 0);
	REQ_INT(extmap_set(m, 400, 100, 1200), 0);	/* same as 200's, not touching it */
	REQ_INT(extmap_set(m, 500, 100, 1199), 0);
	EXPECT_ALL(m, { 0, 100, 1000 }, { 100, 100, 1100 }, { 200, 100, 1200 },
	    { 300, 100, 1201 }, { 400, 100, 1200 }, { 500, 100, 1199 });
	REQ_U64(extmap_count(m), 6);
	REQ_U64(extmap_log_bytes(m), 600);
	/* the same, inserted before its successor rather than appended */
	REQ_INT(extmap_clear(m, 0, 100), 0);
	REQ_INT(extmap_set(m, 0, 100, 1000), 0);	/* 1000 + 100 == 1100 */
	EXPECT_ALL(m, { 0, 100, 1000 }, { 100, 100, 1100 }, { 200, 100, 1200 },
	    { 300, 100, 1201 }, { 400, 100, 1200 }, { 500, 100, 1199 });
	REQ_INT(extmap_set(m, 0, 100, 1101), 0);
	EXPECT_ALL(m, { 0, 100, 1101 }, { 100, 100, 1100 }, { 200, 100, 1200 },
	    { 300, 100, 1201 }, { 400, 100, 1200 }, { 500, 100, 1199 });
	REQ_U64(extmap_count(m), 6);
	check_invariants(m, NULL);
	extmap_free(m);

	/* same laddr but not touching (gap of one byte): no merge, either side */
	m = extmap_new();
	REQ_INT(extmap_set(m, 1000, 100, 7), 0);
	REQ_INT(extmap_set(m, 1101, 100, 7), 0);	/* after, as an append */
	REQ_INT(extmap_set(m, 899, 100, 7), 0);	/* before, as an insert */
	EXPECT_ALL(m, { 899, 100, 7 }, { 1000, 100, 7 }, { 1101, 100, 7 });
	REQ_U64(extmap_count(m), 3);
	REQ_U64(extmap_log_bytes(m), 300);
	/* closing each one-byte gap with the same record merges */
	REQ_INT(extmap_set(m, 999, 1, 7), 0);
	EXPECT_ALL(m, { 899, 201, 7 }, { 1101, 100, 7 });
	REQ_INT(extmap_set(m, 1100, 1, 7), 0);
	EXPECT_ALL(m, { 899, 302, 7 });
	REQ_U64(extmap_count(m), 1);
	REQ_U64(extmap_log_bytes(m), 302);
	check_invariants(m, NULL);
	extmap_free(m);
}
END_TEST

START_TEST(test_merge_zero_with_zero_but_not_with_log)
{
	struct extmap *m = extmap_new();

	REQ_INT(extmap_set(m, 0, 100, Z), 0);
	REQ_INT(extmap_set(m, 100, 50, Z), 0);
	EXPECT_ALL(m, { 0, 150, Z });
	REQ_U64(extmap_count(m), 1);
	REQ_U64(extmap_log_bytes(m), 0);
	REQ_INT(extmap_set(m, 200, 50, Z), 0);
	REQ_INT(extmap_set(m, 150, 50, Z), 0);	/* bridges both */
	EXPECT_ALL(m, { 0, 250, Z });
	REQ_U64(extmap_count(m), 1);

	/* log next to zero on both sides: no merge */
	REQ_INT(extmap_set(m, 250, 100, 1000), 0);
	REQ_INT(extmap_set(m, 350, 10, Z), 0);
	EXPECT_ALL(m, { 0, 250, Z }, { 250, 100, 1000 }, { 350, 10, Z });
	REQ_U64(extmap_count(m), 3);
	REQ_U64(extmap_log_bytes(m), 100);
	extmap_free(m);

	/*
	 * Log addresses next to EXTMAP_ZERO: a log extent at Z - 10 or Z - 2
	 * (laddr + len reaches Z; Z - 1 is EXTMAP_UNMAPPED, not a log address)
	 * is not merged with a zero extent, nor is a zero extent with a log
	 * extent at (UINT64_MAX + len) mod 2^64.
	 */
	m = extmap_new();
	REQ_INT(extmap_set(m, 0, 10, Z - 10), 0);
	REQ_INT(extmap_set(m, 10, 10, Z), 0);
	EXPECT_ALL(m, { 0, 10, Z - 10 }, { 10, 10, Z });
	REQ_U64(extmap_log_bytes(m), 10);
	REQ_INT(extmap_set(m, 20, 10, 9), 0);	/* Z + 10 wraps to 9 */
	EXPECT_ALL(m, { 0, 10, Z - 10 }, { 10, 10, Z }, { 20, 10, 9 });
	REQ_U64(extmap_count(m), 3);
	REQ_U64(extmap_log_bytes(m), 20);
	REQ_INT(extmap_set(m, 30, 10, Z), 0);
	REQ_INT(extmap_set(m, 40, 2, Z - 2), 0);
	REQ_INT(extmap_set(m, 42, 8, Z), 0);
	EXPECT_ALL(m, { 0, 10, Z - 10 }, { 10, 10, Z }, { 20, 10, 9 }, { 30, 10, Z },
	    { 40, 2, Z - 2 }, { 42, 8, Z });
	REQ_U64(extmap_count(m), 6);
	REQ_U64(extmap_log_bytes(m), 22);
	REQ_INT(extmap_set(m, 5, 10, EXTMAP_UNMAPPED), 0);	/* an overlay's unmapped range */
	REQ_U64(extmap_log_bytes(m), 17);
	check_invariants(m, NULL);
	extmap_free(m);
}
END_TEST

START_TEST(test_merge_across_leaf_boundaries)
{
	enum { N = 700 };	/* several leaves of 128 */
	struct extmap *m = extmap_new();
	unsigned order[N];

	/*
	 * N extents of one record with gaps: the same laddr, but not touching,
	 * so not merged.  Filling gap i with another record joins nothing;
	 * filling it with the same record joins extent i and i+1.
	 */
	for (unsigned i = 0; i < N; i++)
		REQ_INT(extmap_set(m, i * 20, 10, 100), 0);
	REQ_U64(extmap_count(m), N);
	REQ_U64(extmap_log_bytes(m), N * 10);
	check_invariants(m, NULL);

	rng_state = 0x5eed;
	for (unsigned i = 0; i < N; i++)
		order[i] = i;
	for (unsigned i = N - 1; i > 0; i--) {
		unsigned j = (unsigned)(rng() % (i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned k = 0; k < N; k++) {
		unsigned i = order[k];
		if (i == N - 1)
			continue;	/* no gap after the last one */
		uint64_t before = extmap_count(m);
		REQ_INT(extmap_set(m, i * 20 + 10, 10, 100 + i * 20 + 10), 0);
		REQ_U64(extmap_count(m), before + 1);
		REQ_INT(extmap_set(m, i * 20 + 10, 10, 100), 0);
		REQ_U64(extmap_count(m), before - 1);
		if (k % 37 == 0)
			check_invariants(m, NULL);
	}
	EXPECT_ALL(m, { 0, (N - 1) * 20 + 10, 100 });
	REQ_U64(extmap_log_bytes(m), (N - 1) * 20 + 10);
	extmap_free(m);
}
END_TEST

START_TEST(test_append_continuing_last_extent_of_full_leaf_merges)
{
	/*
	 * Appends fill leaves completely (128 extents), so appending past a
	 * full last leaf starts a new leaf: the new extent's predecessor is
	 * then in the previous leaf and must still be merged with it.
	 */
	for (unsigned leaves = 1; leaves <= 3; leaves++) {
		struct extmap *m = extmap_new();
		unsigned n = leaves * 128;

		/* alternate log and zero extents: no two of them merge */
		for (unsigned i = 0; i < n; i++)
			REQ_INT(extmap_set(m, i * 10, 10, i % 2 ? Z : (uint64_t)i * 1000), 0);
		REQ_U64(extmap_count(m), n);
		/* the last one (odd) is zero: more zeros continue it */
		REQ_INT(extmap_set(m, n * 10, 10, Z), 0);
		REQ_U64(extmap_count(m), n);
		expect_first(m, n * 10 - 10, UINT64_MAX, n * 10 - 10, 20, Z);
		/* a log extent after it, then more of the same record continuing that */
		REQ_INT(extmap_set(m, n * 10 + 10, 10, 5000000), 0);
		REQ_U64(extmap_count(m), n + 1);
		for (unsigned k = 0; k < 200; k++)
			REQ_INT(extmap_set(m, n * 10 + 20 + k * 10, 10, 5000000), 0);
		REQ_U64(extmap_count(m), n + 1);
		expect_first(m, n * 10 + 10, UINT64_MAX, n * 10 + 10, 2010, 5000000);
		REQ_U64(extmap_log_bytes(m), (n / 2) * 10 + 2010);
		/* touching, another record (at laddr + len, the old rule): no merge */
		REQ_INT(extmap_set(m, n * 10 + 2020, 10, 5002010), 0);
		REQ_U64(extmap_count(m), n + 2);
		check_invariants(m, NULL);
		extmap_free(m);

		/* the same with the full leaf ending in a log extent */
		m = extmap_new();
		for (unsigned i = 0; i < n; i++)
			REQ_INT(extmap_set(m, i * 10, 10, i % 2 ? (uint64_t)i * 1000 : Z), 0);
		REQ_U64(extmap_count(m), n);
		REQ_INT(extmap_set(m, n * 10, 10, (uint64_t)(n - 1) * 1000), 0);
		REQ_U64(extmap_count(m), n);
		expect_first(m, n * 10 - 10, UINT64_MAX, n * 10 - 10, 20, (uint64_t)(n - 1) * 1000);
		REQ_INT(extmap_set(m, n * 10 + 10, 10, (uint64_t)(n - 1) * 1000 + 20), 0);
		REQ_U64(extmap_count(m), n + 1);
		REQ_U64(extmap_log_bytes(m), (n / 2) * 10 + 20);
		check_invariants(m, NULL);
		extmap_free(m);
	}
}
END_TEST

START_TEST(test_clear_middle_head_tail)
{
	struct extmap *m = extmap_new();

	REQ_INT(extmap_set(m, 0, 300, 1000), 0);
	REQ_INT(extmap_clear(m, 100, 100), 0);
	/* both pieces keep the record's laddr */
	EXPECT_ALL(m, { 0, 100, 1000 }, { 200, 100, 1000 });
	REQ_U64(extmap_count(m), 2);
	REQ_U64(extmap_log_bytes(m), 200);
	expect_no_first(m, 100, 200);

	/* head and tail of the two pieces, one byte each */
	REQ_INT(extmap_clear(m, 99, 1), 0);
	REQ_INT(extmap_clear(m, 200, 1), 0);
	EXPECT_ALL(m, { 0, 99, 1000 }, { 201, 99, 1000 });
	REQ_U64(extmap_log_bytes(m), 198);
	/* a range covering a whole piece and part of the other */
	REQ_INT(extmap_clear(m, 50, 200), 0);
	EXPECT_ALL(m, { 0, 50, 1000 }, { 250, 50, 1000 });
	REQ_U64(extmap_count(m), 2);
	REQ_U64(extmap_log_bytes(m), 100);
	/* where nothing is mapped: no change */
	REQ_INT(extmap_clear(m, 60, 100), 0);
	REQ_INT(extmap_clear(m, 1000, 1000), 0);
	EXPECT_ALL(m, { 0, 50, 1000 }, { 250, 50, 1000 });
	/* mapping the hole to the record again makes it whole */
	REQ_INT(extmap_set(m, 50, 200, 1000), 0);
	EXPECT_ALL(m, { 0, 300, 1000 });
	REQ_U64(extmap_log_bytes(m), 300);
	extmap_free(m);

	/* clearing inside a zero extent does not touch log bytes */
	m = extmap_new();
	REQ_INT(extmap_set(m, 0, 100, 5000), 0);
	REQ_INT(extmap_set(m, 100, 300, Z), 0);
	REQ_INT(extmap_clear(m, 200, 100), 0);
	EXPECT_ALL(m, { 0, 100, 5000 }, { 100, 100, Z }, { 300, 100, Z });
	REQ_U64(extmap_count(m), 3);
	REQ_U64(extmap_log_bytes(m), 100);
	/* re-mapping the hole with zeros merges the three zero ranges */
	REQ_INT(extmap_set(m, 200, 100, Z), 0);
	EXPECT_ALL(m, { 0, 100, 5000 }, { 100, 300, Z });
	check_invariants(m, NULL);
	extmap_free(m);
}
END_TEST

START_TEST(test_clear_across_leaves)
{
	enum { N = 1000 };
	struct extmap *m = extmap_new();
	struct vec all = { 0 };

	for (unsigned i = 0; i < N; i++)
		REQ_INT(extmap_set(m, i * 10, 10, (uint64_t)i * 100), 0);
	REQ_U64(extmap_count(m), N);
	REQ_U64(extmap_log_bytes(m), N * 10);

	/* [2505, 7505): trims extents 250 and 750, removes 251..749 */
	REQ_INT(extmap_clear(m, 2505, 5000), 0);
	check_invariants(m, &all);
	REQ_U64(all.n, 250 + 1 + 1 + 249);
	for (unsigned i = 0; i < 250; i++) {
		const struct extent e = { i * 10, 10, (uint64_t)i * 100 };
		REQ(ext_eq(&all.v[i], &e));
	}
	{
		const struct extent a = { 2500, 5, 25000 }, b = { 7505, 5, 75000 };
		REQ(ext_eq(&all.v[250], &a));
		REQ(ext_eq(&all.v[251], &b));
	}
	for (unsigned i = 751; i < N; i++) {
		const struct extent e = { i * 10, 10, (uint64_t)i * 100 };
		REQ(ext_eq(&all.v[i - 751 + 252], &e));
	}
	REQ_U64(extmap_log_bytes(m), 5000);
	expect_no_first(m, 2505, 7505);
	expect_first(m, 2504, 7506, 2504, 1, 25000);
	expect_first(m, 7504, 7506, 7505, 1, 75000);

	/* a cleared range can be mapped again, inside the hole */
	REQ_INT(extmap_set(m, 5000, 10, 1), 0);
	expect_first(m, 2505, 7505, 5000, 10, 1);
	REQ_U64(extmap_count(m), 502);

	/* clear everything; the map is empty and usable again */
	REQ_INT(extmap_clear(m, 0, UINT64_MAX), 0);
	REQ_U64(extmap_count(m), 0);
	REQ_U64(extmap_log_bytes(m), 0);
	EXPECT_NONE(m);
	REQ_INT(extmap_set(m, 42, 8, 4200), 0);
	EXPECT_ALL(m, { 42, 8, 4200 });
	REQ_U64(extmap_log_bytes(m), 8);
	vec_free(&all);
	extmap_free(m);
}
END_TEST

START_TEST(test_bad_range_rejected_and_map_unchanged)
{
	struct extmap *m = extmap_new();

	REQ_INT(extmap_set(m, 0, 100, 1000), 0);
	REQ_INT(extmap_set(m, 200, 100, Z), 0);

	/* loff + len wraps past 2^64 */
	REQ_INT(extmap_set(m, UINT64_MAX - 5, 10, 0), -EINVAL);
	REQ_INT(extmap_set(m, 50, UINT64_MAX, 7), -EINVAL);
	REQ_INT(extmap_clear(m, 50, UINT64_MAX), -EINVAL);
	REQ_INT(extmap_clear(m, UINT64_MAX, 2), -EINVAL);
	/* zero length: a no-op that must not split what it points into */
	REQ_INT(extmap_set(m, 50, 0, 9), 0);
	REQ_INT(extmap_clear(m, 250, 0), 0);
	EXPECT_ALL(m, { 0, 100, 1000 }, { 200, 100, Z });
	REQ_U64(extmap_count(m), 2);
	REQ_U64(extmap_log_bytes(m), 100);

	/* the largest range that does not wrap is accepted */
	REQ_INT(extmap_set(m, UINT64_MAX - 10, 10, 1), 0);
	expect_first(m, UINT64_MAX - 5, UINT64_MAX, UINT64_MAX - 5, 5, 1);
	check_invariants(m, NULL);
	extmap_free(m);
}
END_TEST

static int
stop_at_second(const struct extent *e, void *arg)
{
	int *calls = arg;

	(*calls)++;
	return *calls == 2 ? 42 : 0;
}

START_TEST(test_walk_stops_when_callback_returns_nonzero)
{
	struct extmap *m = extmap_new();
	int calls = 0;

	for (int i = 0; i < 5; i++)
		REQ_INT(extmap_set(m, (uint64_t)i * 100, 10, (uint64_t)i * 1000), 0);
	REQ_INT(extmap_walk(m, 0, UINT64_MAX, stop_at_second, &calls), 42);
	REQ_INT(calls, 2);
	calls = 0;
	REQ_INT(extmap_walk(m, 150, 450, stop_at_second, &calls), 42);
	REQ_INT(calls, 2);
	calls = 0;
	REQ_INT(extmap_walk(m, 350, 450, stop_at_second, &calls), 0);
	REQ_INT(calls, 1);
	extmap_free(m);
}
END_TEST

/*
 * Overwrites that replace most extents of every leaf leave thin leaves; they
 * are joined, so memory stays bounded by the extent count (~96 bytes each at
 * worst) instead of a 3 KiB leaf per handful of extents.
 */
START_TEST(test_thinned_leaves_are_joined_so_memory_follows_extents)
{
	struct extmap *m = extmap_new();
	const uint64_t nleaves = 200, per = 128;

	REQ(m != NULL);
	/* in order: full leaves of 1-byte extents 2 bytes apart, each its own record */
	for (uint64_t i = 0; i < nleaves * per; i++)
		REQ(extmap_set(m, 2 * i, 1, 1000 + i) == 0);
	REQ_U64(extmap_count(m), nleaves * per);
	/* each leaf's span: all but its first and last few extents become one */
	for (uint64_t k = 0; k < nleaves; k++)
		REQ(extmap_set(m, k * 2 * per + 2, 2 * per - 8, 7) == 0);
	REQ_U64(extmap_count(m), nleaves * 5);
	REQUIRE(extmap_memory(m) <= 100 * extmap_count(m) + 64 * 1024,
	    "%zu bytes for %llu extents", extmap_memory(m), (unsigned long long)extmap_count(m));
	/* and clearing most of what is left keeps the bound too */
	for (uint64_t k = 0; k < nleaves; k += 2)
		REQ(extmap_clear(m, k * 2 * per, 2 * per) == 0);
	REQ_U64(extmap_count(m), nleaves / 2 * 5);
	REQUIRE(extmap_memory(m) <= 100 * extmap_count(m) + 64 * 1024,
	    "%zu bytes for %llu extents", extmap_memory(m), (unsigned long long)extmap_count(m));
	extmap_free(m);
}
END_TEST

FIXTURE_MAIN(tc, "core", NULL, 60)
{
	tcase_add_test(tc, test_empty_map_reports_nothing);
	tcase_add_test(tc, test_lookup_at_every_boundary_and_clipping);
	tcase_add_test(tc, test_overwrite_middle_splits_one_extent_into_three);
	tcase_add_test(tc, test_overwrite_head_tail_several_and_exact);
	tcase_add_test(tc, test_merge_same_record_only);
	tcase_add_test(tc, test_merge_zero_with_zero_but_not_with_log);
	tcase_add_test(tc, test_merge_across_leaf_boundaries);
	tcase_add_test(tc, test_append_continuing_last_extent_of_full_leaf_merges);
	tcase_add_test(tc, test_clear_middle_head_tail);
	tcase_add_test(tc, test_clear_across_leaves);
	tcase_add_test(tc, test_thinned_leaves_are_joined_so_memory_follows_extents);
	tcase_add_test(tc, test_bad_range_rejected_and_map_unchanged);
	tcase_add_test(tc, test_walk_stops_when_callback_returns_nonzero);
}
