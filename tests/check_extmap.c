/*
 * check_extmap: unit tests for fs/store/extmap.c, the in-memory extent index.
 *
 * An extent's laddr is the log address of the RECORD holding its bytes, so
 * cutting or clipping an extent never changes its laddr, and two touching
 * neighbours merge iff they have the same laddr (zeros with zeros).
 *
 * Directed tests pin down lookups at every boundary, clipping, splitting,
 * merging, unmapping and the counters.  Two randomized differential tests
 * compare the map, after every operation, with a reference model that shares
 * no code with it: a byte-granular array (64 KiB disk) and a naive sorted
 * extent list (2^47-byte disk).  The seed is printed; set EXTMAP_SEED to
 * replay a run.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extmap.h"

#define Z	EXTMAP_ZERO

/*
 * Check's ck_assert_* record the location of every passing assertion with a
 * write(2); the randomized tests make millions of checks, so they (and the
 * helpers) use these, which only call into Check on failure.
 */
#define REQUIRE(cond, ...) do {						\
	if (!(cond))							\
		ck_abort_msg(__VA_ARGS__);				\
} while (0)
#define REQ_INT(a, b) do {						\
	intmax_t a_ = (a), b_ = (b);					\
	REQUIRE(a_ == b_, "%s == %jd, expected %s == %jd", #a, a_, #b, b_); \
} while (0)
#define REQ_U64(a, b) do {						\
	uint64_t a_ = (a), b_ = (b);					\
	REQUIRE(a_ == b_, "%s == %" PRIu64 ", expected %s == %" PRIu64, #a, a_, #b, b_); \
} while (0)
#define REQ(cond) REQUIRE(cond, "'%s' is false", #cond)

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

struct vec {
	struct extent	*v;
	size_t		 n, cap;
};

static void
vec_push(struct vec *v, struct extent e)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->v = realloc(v->v, v->cap * sizeof(*v->v));
		REQ(v->v != NULL);
	}
	v->v[v->n++] = e;
}

static void
vec_free(struct vec *v)
{
	free(v->v);
	v->v = NULL;
	v->n = v->cap = 0;
}

static int
collect_cb(const struct extent *e, void *arg)
{
	vec_push(arg, *e);
	return 0;
}

/* Every extent extmap_walk reports for [off, end), in order. */
static void
collect(const struct extmap *m, uint64_t off, uint64_t end, struct vec *out)
{
	out->n = 0;
	REQ_INT(extmap_walk(m, off, end, collect_cb, out), 0);
}

static int
ext_eq(const struct extent *a, const struct extent *b)
{
	return a->loff == b->loff && a->len == b->len && a->laddr == b->laddr;
}

/* The walk of [off, end) is exactly exp[0..n). */
static void
expect_walk(const struct extmap *m, uint64_t off, uint64_t end,
    const struct extent *exp, size_t n)
{
	struct vec got = { 0 };

	collect(m, off, end, &got);
	REQUIRE(got.n == n, "walk [%" PRIu64 ",%" PRIu64 "): %zu extents, expected %zu",
	    off, end, got.n, n);
	for (size_t i = 0; i < n; i++)
		REQUIRE(ext_eq(&got.v[i], &exp[i]),
		    "walk [%" PRIu64 ",%" PRIu64 ") extent %zu: {%" PRIu64 ",%" PRIu64 ",%" PRIu64
		    "}, expected {%" PRIu64 ",%" PRIu64 ",%" PRIu64 "}", off, end, i,
		    got.v[i].loff, got.v[i].len, got.v[i].laddr,
		    exp[i].loff, exp[i].len, exp[i].laddr);
	vec_free(&got);
}

#define EXPECT_ALL(m, ...) do {						\
	const struct extent exp_[] = { __VA_ARGS__ };			\
	expect_walk((m), 0, UINT64_MAX, exp_, sizeof(exp_) / sizeof(exp_[0])); \
} while (0)

#define EXPECT_NONE(m) expect_walk((m), 0, UINT64_MAX, NULL, 0)

/* extmap_first(off, end) finds exactly {loff, len, laddr}. */
static void
expect_first(const struct extmap *m, uint64_t off, uint64_t end,
    uint64_t loff, uint64_t len, uint64_t laddr)
{
	struct extent e = { 0, 0, 0 };

	REQUIRE(extmap_first(m, off, end, &e) == 1,
	    "first [%" PRIu64 ",%" PRIu64 ") found nothing", off, end);
	REQUIRE(e.loff == loff && e.len == len && e.laddr == laddr,
	    "first [%" PRIu64 ",%" PRIu64 "): {%" PRIu64 ",%" PRIu64 ",%" PRIu64
	    "}, expected {%" PRIu64 ",%" PRIu64 ",%" PRIu64 "}", off, end,
	    e.loff, e.len, e.laddr, loff, len, laddr);
}

static void
expect_no_first(const struct extmap *m, uint64_t off, uint64_t end)
{
	struct extent e;

	REQUIRE(extmap_first(m, off, end, &e) == 0,
	    "first [%" PRIu64 ",%" PRIu64 ") found {%" PRIu64 ",%" PRIu64 ",%" PRIu64
	    "}, expected nothing", off, end, e.loff, e.len, e.laddr);
}

/*
 * b continues a (the merge rule, written independently of extmap.c): they
 * touch and their bytes are in the same record, or both read as zeros.
 */
static int
continues(const struct extent *a, const struct extent *b)
{
	if (a->loff + a->len != b->loff)
		return 0;
	if (a->laddr == Z || b->laddr == Z)
		return a->laddr == Z && b->laddr == Z;
	return a->laddr == b->laddr;
}

/*
 * The documented invariants, checked on the whole map: sorted,
 * non-overlapping, len > 0, no mergeable neighbours, and count and log_bytes
 * agree with what the walk shows.  Returns the walk in *all if given.
 */
static void
check_invariants(const struct extmap *m, struct vec *all)
{
	struct vec local = { 0 };
	struct vec *v = all ? all : &local;
	uint64_t log = 0;

	collect(m, 0, UINT64_MAX, v);
	for (size_t i = 0; i < v->n; i++) {
		const struct extent *e = &v->v[i];
		REQUIRE(e->len > 0, "extent %zu at %" PRIu64 " has len 0", i, e->loff);
		REQUIRE(e->loff + e->len > e->loff, "extent %zu wraps", i);
		if (i > 0) {
			const struct extent *p = &v->v[i - 1];
			REQUIRE(p->loff + p->len <= e->loff,
			    "extents %zu {%" PRIu64 ",%" PRIu64 "} and %zu {%" PRIu64 ",%" PRIu64
			    "} overlap or are unsorted", i - 1, p->loff, p->len, i, e->loff, e->len);
			REQUIRE(!continues(p, e),
			    "extents %zu {%" PRIu64 ",%" PRIu64 ",%" PRIu64 "} and %zu {%" PRIu64
			    ",%" PRIu64 ",%" PRIu64 "} should have been merged",
			    i - 1, p->loff, p->len, p->laddr, i, e->loff, e->len, e->laddr);
		}
		if (e->laddr != Z)
			log += e->len;
	}
	REQ_U64(extmap_count(m), v->n);
	REQ_U64(extmap_log_bytes(m), log);
	if (!all)
		vec_free(&local);
}

/* xorshift64*: small, fixed, reproducible. */
static uint64_t rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

/* Uniform in [lo, hi] (hi - lo small enough that modulo bias is irrelevant). */
static uint64_t
rng_range(uint64_t lo, uint64_t hi)
{
	return lo + rng() % (hi - lo + 1);
}

static uint64_t
seed_init(const char *test, uint64_t dflt)
{
	const char *s = getenv("EXTMAP_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : dflt;

	if (seed == 0)
		seed = 1;
	printf("%s: seed %#" PRIx64 " (set EXTMAP_SEED to replay)\n", test, seed);
	fflush(stdout);
	rng_state = seed;
	return seed;
}

/* ------------------------------------------------------------------ */
/* directed tests                                                      */
/* ------------------------------------------------------------------ */

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
	 * Log addresses next to EXTMAP_ZERO: a log extent at Z - 10 or Z - 1
	 * (laddr + len reaches Z) is not merged with a zero extent, nor is a
	 * zero extent with a log extent at (UINT64_MAX + len) mod 2^64.
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
	REQ_INT(extmap_set(m, 40, 1, Z - 1), 0);
	REQ_INT(extmap_set(m, 41, 9, Z), 0);
	EXPECT_ALL(m, { 0, 10, Z - 10 }, { 10, 10, Z }, { 20, 10, 9 }, { 30, 10, Z },
	    { 40, 1, Z - 1 }, { 41, 9, Z });
	REQ_U64(extmap_count(m), 6);
	REQ_U64(extmap_log_bytes(m), 21);
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

/* ------------------------------------------------------------------ */
/* randomized: byte-granular model of a 64 KiB disk                    */
/* ------------------------------------------------------------------ */

#define BM_SIZE		65536u
#define BM_UNMAPPED	(UINT64_MAX - 1)	/* distinct from EXTMAP_ZERO */
#define BM_LADDR_MAX	(UINT64_C(1) << 40)

static uint64_t bm[BM_SIZE];	/* per byte: its record's log address, Z, or BM_UNMAPPED */

static int
bm_is_log(uint64_t v)
{
	return v != Z && v != BM_UNMAPPED;
}

/* Byte i+1 (value b) continues byte i (value a) within one extent: same record, or both zero. */
static int
bm_cont(uint64_t a, uint64_t b)
{
	if (a == BM_UNMAPPED || b == BM_UNMAPPED)
		return 0;
	return a == b;
}

/* The maximal runs of [a, b): what a walk of [a, b) must report. */
static void
bm_runs(uint64_t a, uint64_t b, struct vec *out)
{
	out->n = 0;
	if (b > BM_SIZE)
		b = BM_SIZE;
	for (uint64_t i = a; i < b;) {
		uint64_t j;
		if (bm[i] == BM_UNMAPPED) {
			i++;
			continue;
		}
		for (j = i + 1; j < b && bm_cont(bm[j - 1], bm[j]); j++)
			;
		vec_push(out, (struct extent){ i, j - i, bm[i] });
		i = j;
	}
}

static void
bm_compare(const struct extmap *m, uint64_t a, uint64_t b, uint64_t op)
{
	struct vec want = { 0 }, got = { 0 };

	bm_runs(a, b, &want);
	collect(m, a, b, &got);
	for (size_t i = 0; i < want.n || i < got.n; i++) {
		REQUIRE(i < got.n && i < want.n && ext_eq(&got.v[i], &want.v[i]),
		    "op %" PRIu64 ", walk [%" PRIu64 ",%" PRIu64 ") extent %zu: got {%" PRIu64
		    ",%" PRIu64 ",%" PRIu64 "} (of %zu), model {%" PRIu64 ",%" PRIu64 ",%" PRIu64
		    "} (of %zu)", op, a, b, i,
		    i < got.n ? got.v[i].loff : 0, i < got.n ? got.v[i].len : 0,
		    i < got.n ? got.v[i].laddr : 0, got.n,
		    i < want.n ? want.v[i].loff : 0, i < want.n ? want.v[i].len : 0,
		    i < want.n ? want.v[i].laddr : 0, want.n);
	}
	if (want.n > 0) {
		expect_first(m, a, b, want.v[0].loff, want.v[0].len, want.v[0].laddr);
	} else {
		expect_no_first(m, a, b);
	}
	vec_free(&want);
	vec_free(&got);
}

static uint64_t
bm_len(void)
{
	uint64_t r = rng() % 100;

	if (r < 40)
		return rng_range(1, 8);
	if (r < 75)
		return rng_range(1, 256);
	if (r < 92)
		return rng_range(1, 4096);
	if (r < 99)
		return rng_range(1, BM_SIZE / 2);
	return rng_range(1, BM_SIZE);
}

START_TEST(test_random_ops_match_byte_model)
{
	enum { OPS = 12000 };
	struct extmap *m = extmap_new();
	struct vec all = { 0 }, want = { 0 };
	uint64_t model_log = 0, peak = 0, low_after_peak = UINT64_MAX;
	unsigned n_sets = 0, n_zero = 0, n_clears = 0, n_contig = 0, n_old = 0, n_one = 0;

	seed_init("random_ops_match_byte_model", UINT64_C(0x243f6a8885a308d3));
	for (size_t i = 0; i < BM_SIZE; i++)
		bm[i] = BM_UNMAPPED;

	for (uint64_t op = 0; op < OPS; op++) {
		/* phases: 3000 ops of mostly tiny writes build many extents, then normal mix */
		int build = (op % 4000) < 3000;
		uint64_t len = build && rng() % 100 < 97 ? rng_range(1, 12) : bm_len();
		uint64_t loff = rng_range(0, BM_SIZE - len);
		uint64_t kind = rng() % 100;
		uint64_t laddr;
		int rc;

		if (len == 1)
			n_one++;
		if (kind < (build ? 3u : 20u)) {
			rc = extmap_clear(m, loff, len);
			for (uint64_t i = loff; i < loff + len; i++)
				bm[i] = BM_UNMAPPED;
			n_clears++;
		} else {
			if (kind < 35) {
				laddr = Z;
				n_zero++;
			} else if (kind < 46 && loff > 0 && bm_is_log(bm[loff - 1])) {
				laddr = bm[loff - 1];			/* same record as the left */
				n_contig++;
			} else if (kind < 50 && loff > 0 && bm_is_log(bm[loff - 1])) {
				/* the left's laddr + its length so far (the old rule): a different record */
				uint64_t s = loff - 1;
				while (s > 0 && bm[s - 1] == bm[loff - 1])
					s--;
				laddr = (bm[loff - 1] + (loff - s)) % BM_LADDR_MAX;
				n_old++;
			} else if (kind < 61 && loff + len < BM_SIZE && bm_is_log(bm[loff + len])) {
				laddr = bm[loff + len];			/* same record as the right */
				n_contig++;
			} else if (kind < 65 && loff + len < BM_SIZE && bm_is_log(bm[loff + len]) &&
			    bm[loff + len] >= len) {
				laddr = bm[loff + len] - len;		/* right's laddr - len (the old rule) */
				n_old++;
			} else if (kind < 70 && bm_is_log(bm[loff])) {
				laddr = bm[loff];			/* rewrite the same mapping */
				n_contig++;
			} else {
				laddr = rng() % BM_LADDR_MAX;
			}
			rc = extmap_set(m, loff, len, laddr);
			for (uint64_t i = 0; i < len; i++)
				bm[loff + i] = laddr;
			n_sets++;
		}
		REQUIRE(rc == 0, "op %" PRIu64 " failed: %d", op, rc);

		/* full comparison and invariants after every op */
		check_invariants(m, &all);
		bm_runs(0, BM_SIZE, &want);
		REQUIRE(all.n == want.n, "op %" PRIu64 ": map has %zu extents, model %zu",
		    op, all.n, want.n);
		for (size_t i = 0; i < want.n; i++)
			REQUIRE(ext_eq(&all.v[i], &want.v[i]),
			    "op %" PRIu64 " extent %zu: got {%" PRIu64 ",%" PRIu64 ",%" PRIu64
			    "}, model {%" PRIu64 ",%" PRIu64 ",%" PRIu64 "}", op, i,
			    all.v[i].loff, all.v[i].len, all.v[i].laddr,
			    want.v[i].loff, want.v[i].len, want.v[i].laddr);
		model_log = 0;
		for (size_t i = 0; i < BM_SIZE; i++)
			model_log += bm_is_log(bm[i]);
		REQ_U64(extmap_log_bytes(m), model_log);

		/* a random clipped query, and one around the op's edges */
		{
			uint64_t a = rng_range(0, BM_SIZE), b = rng_range(a, BM_SIZE + 16);
			bm_compare(m, a, b, op);
			bm_compare(m, loff > 0 ? loff - 1 : 0, loff + len + 1, op);
		}

		if (extmap_count(m) > peak) {
			peak = extmap_count(m);
			low_after_peak = peak;
		}
		if (extmap_count(m) < low_after_peak)
			low_after_peak = extmap_count(m);
	}
	printf("random_ops_match_byte_model: %d ops (%u sets, %u zero, %u same-record, "
	    "%u old-rule-contiguous, %u clears, %u one-byte), peak %" PRIu64 " extents, "
	    "low after peak %" PRIu64 "\n",
	    OPS, n_sets, n_zero, n_contig, n_old, n_clears, n_one, peak, low_after_peak);
	/* the run must have exercised what it claims to */
	/* >= 8 leaves of 128 at once (typically 1600-2400) */
	REQUIRE(peak >= 1000, "peak of %" PRIu64 " extents: too few leaf splits", peak);
	REQUIRE(low_after_peak * 4 < peak, "count never fell well below its peak: no leaf removals");
	vec_free(&all);
	vec_free(&want);
	extmap_free(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* randomized: naive extent-list model of a 2^47-byte disk            */
/* ------------------------------------------------------------------ */

#define HM_SPACE	(UINT64_C(1) << 47)	/* where ops start */
#define HM_LIMIT	(UINT64_C(1) << 48)	/* where every op ends */

static int
cmp_loff(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->loff < y->loff ? -1 : x->loff > y->loff;
}

/* Remove [s, e) from the sorted list, the slow obvious way. */
static void
lm_remove(struct vec *lm, uint64_t s, uint64_t e)
{
	struct vec out = { 0 };

	for (size_t i = 0; i < lm->n; i++) {
		struct extent x = lm->v[i];
		uint64_t xe = x.loff + x.len;
		if (xe <= s || x.loff >= e) {
			vec_push(&out, x);
			continue;
		}
		if (x.loff < s)
			vec_push(&out, (struct extent){ x.loff, s - x.loff, x.laddr });
		if (xe > e)	/* the tail keeps its record: laddr unchanged */
			vec_push(&out, (struct extent){ e, xe - e, x.laddr });
	}
	vec_free(lm);
	*lm = out;
}

static void
lm_set(struct vec *lm, uint64_t loff, uint64_t len, uint64_t laddr)
{
	size_t w = 0;

	lm_remove(lm, loff, loff + len);
	vec_push(lm, (struct extent){ loff, len, laddr });
	qsort(lm->v, lm->n, sizeof(*lm->v), cmp_loff);
	/* canonical form: merge every continuing pair */
	for (size_t i = 0; i < lm->n; i++) {
		if (w > 0 && continues(&lm->v[w - 1], &lm->v[i]))
			lm->v[w - 1].len += lm->v[i].len;
		else
			lm->v[w++] = lm->v[i];
	}
	lm->n = w;
}

/* The model's extent holding byte off, or NULL. */
static const struct extent *
lm_find(const struct vec *lm, uint64_t off)
{
	for (size_t i = 0; i < lm->n; i++)
		if (lm->v[i].loff <= off && off < lm->v[i].loff + lm->v[i].len)
			return &lm->v[i];
	return NULL;
}

static uint64_t
hm_len(void)
{
	uint64_t r = rng() % 1000;

	if (r < 500)
		return rng_range(1, 4096);
	if (r < 850)
		return rng_range(1, UINT64_C(1) << 20);
	if (r < 980)
		return rng_range(1, UINT64_C(1) << 32);
	if (r < 998)
		return rng_range(1, UINT64_C(1) << 42);
	return rng_range(1, UINT64_C(1) << 46);
}

START_TEST(test_random_sparse_ops_in_huge_space_match_list_model)
{
	enum { OPS = 12000 };
	struct extmap *m = extmap_new();
	struct vec lm = { 0 }, all = { 0 };
	uint64_t peak = 0, wipes = 0;
	uint64_t cluster;

	seed_init("random_sparse_ops_in_huge_space", UINT64_C(0x13198a2e03707344));
	cluster = rng_range(0, HM_SPACE - (UINT64_C(1) << 30));
	for (uint64_t op = 0; op < OPS; op++) {
		uint64_t len = hm_len(), loff, laddr, kind = rng() % 100, where = rng() % 100;
		int rc;

		if (op % 4000 == 3999) {
			/* wipe everything: removal across every leaf at once */
			loff = 0;
			len = HM_LIMIT;
			kind = rng() % 2 ? 0 : 20;	/* clear, or set to zero */
			wipes++;
		} else if (where < 20 || lm.n == 0) {
			loff = rng_range(0, HM_SPACE - len);
		} else if (where < 80) {
			/* a dense cluster: many small extents close together */
			len = rng_range(1, 8192);
			loff = cluster + rng_range(0, UINT64_C(1) << 28);
		} else {
			/* next to, or inside, an existing extent */
			const struct extent *x = &lm.v[rng() % lm.n];
			uint64_t r = rng() % 3;
			if (r == 0)
				loff = x->loff + x->len;
			else if (r == 1 && x->loff >= len)
				loff = x->loff - len;
			else
				loff = x->loff + rng() % x->len;
			if (loff + len > HM_LIMIT)	/* keep every op below HM_LIMIT */
				loff = rng_range(0, HM_SPACE - len);
		}

		if (kind < 15) {
			rc = extmap_clear(m, loff, len);
			lm_remove(&lm, loff, loff + len);
		} else {
			const struct extent *l = loff > 0 ? lm_find(&lm, loff - 1) : NULL;
			if (kind < 35)
				laddr = Z;
			else if (kind < 54 && l && l->laddr != Z)
				laddr = l->laddr;			/* same record as the left */
			else if (kind < 60 && l && l->laddr != Z)
				laddr = l->laddr + (loff - l->loff);	/* old rule: another record */
			else
				laddr = rng() % (UINT64_C(1) << 50);
			rc = extmap_set(m, loff, len, laddr);
			lm_set(&lm, loff, len, laddr);
		}
		REQUIRE(rc == 0, "op %" PRIu64 " failed: %d", op, rc);

		check_invariants(m, &all);
		REQUIRE(all.n == lm.n, "op %" PRIu64 ": map has %zu extents, model %zu",
		    op, all.n, lm.n);
		for (size_t i = 0; i < lm.n; i++)
			REQUIRE(ext_eq(&all.v[i], &lm.v[i]),
			    "op %" PRIu64 " extent %zu: got {%" PRIu64 ",%" PRIu64 ",%" PRIu64
			    "}, model {%" PRIu64 ",%" PRIu64 ",%" PRIu64 "}", op, i,
			    all.v[i].loff, all.v[i].len, all.v[i].laddr,
			    lm.v[i].loff, lm.v[i].len, lm.v[i].laddr);

		/* a clipped lookup starting inside a random model extent */
		if (lm.n > 0) {
			const struct extent *x = &lm.v[rng() % lm.n];
			uint64_t d = rng() % x->len, q = rng_range(1, x->len - d);
			expect_first(m, x->loff + d, x->loff + d + q, x->loff + d, q, x->laddr);
		}
		if (extmap_count(m) > peak)
			peak = extmap_count(m);
		if (op % 4000 == 3999)
			REQ_U64(extmap_count(m), kind == 0 ? 0 : 1);
	}
	printf("random_sparse_ops_in_huge_space: %d ops, peak %" PRIu64 " extents, %" PRIu64
	    " wipes, final %zu\n", OPS, peak, wipes, lm.n);
	/* >= 5 leaves of 128 at once (typically 1000-1900) */
	REQUIRE(peak >= 640, "peak of %" PRIu64 " extents: too few leaf splits", peak);
	vec_free(&lm);
	vec_free(&all);
	extmap_free(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* scale                                                               */
/* ------------------------------------------------------------------ */

/*
 * extmap_load (a replacement worker's bulk load of a snapshot) builds the
 * same map as extmap_set one extent at a time: same walk, count, log bytes,
 * invariants (neighbours that continue each other merged, also across the
 * leaves it fills), and the map then takes changes like any other.
 */
START_TEST(test_load_sorted_equals_set_one_by_one)
{
	seed_init("load_sorted_equals_set_one_by_one", UINT64_C(0x10adf00d) + (uint64_t)_i);
	for (int round = 0; round < 40; round++) {
		size_t n = round == 0 ? 0 : round == 1 ? 1 : round < 5 ? 128 * (size_t)round + (size_t)round - 3 :	/* leaf-sized, 128 each */
		    (size_t)rng_range(1, 5000);
		struct extent *v = malloc((n ? n : 1) * sizeof(*v));
		struct extmap *a = extmap_new(), *b = extmap_new();
		struct vec va = { 0 }, vb = { 0 };
		uint64_t pos = rng_range(0, 1000);

		REQ(v && a && b);
		for (size_t i = 0; i < n; i++) {
			uint64_t kind = rng() % 10;
			/* gaps or touching; same record as the left (must merge), zeros, or a new record */
			pos += kind < 4 ? 0 : rng_range(1, 5000);
			v[i].loff = pos;
			v[i].len = rng_range(1, 9000);
			v[i].laddr = kind < 2 && i > 0 ? v[i - 1].laddr : kind < 5 ? Z : rng() % (UINT64_C(1) << 50);
			pos += v[i].len;
		}
		REQ_INT(extmap_load(a, v, n), 0);
		for (size_t i = 0; i < n; i++)
			REQ_INT(extmap_set(b, v[i].loff, v[i].len, v[i].laddr), 0);
		check_invariants(a, &va);
		check_invariants(b, &vb);
		REQUIRE(va.n == vb.n, "round %d: load made %zu extents, set made %zu", round, va.n, vb.n);
		for (size_t i = 0; i < va.n; i++)
			REQUIRE(ext_eq(&va.v[i], &vb.v[i]), "round %d: extent %zu differs", round, i);
		REQ_U64(extmap_log_bytes(a), extmap_log_bytes(b));
		/* the loaded map takes changes like the other */
		for (int k = 0; k < 200 && n > 0; k++) {
			uint64_t off = rng_range(0, pos), len = rng_range(1, 20000), la = rng() % 1000;
			if (rng() % 3 == 0) {
				REQ_INT(extmap_clear(a, off, len), 0);
				REQ_INT(extmap_clear(b, off, len), 0);
			} else {
				REQ_INT(extmap_set(a, off, len, la), 0);
				REQ_INT(extmap_set(b, off, len, la), 0);
			}
		}
		check_invariants(a, &va);
		check_invariants(b, &vb);
		REQUIRE(va.n == vb.n, "round %d after changes: %zu vs %zu extents", round, va.n, vb.n);
		for (size_t i = 0; i < va.n; i++)
			REQUIRE(ext_eq(&va.v[i], &vb.v[i]), "round %d after changes: extent %zu differs", round, i);
		vec_free(&va);
		vec_free(&vb);
		extmap_free(a);
		extmap_free(b);
		free(v);
	}
}
END_TEST

/* Input a sound map never has is refused whole: the map stays empty. */
START_TEST(test_load_refuses_overlap_unsorted_empty_and_nonempty_map)
{
	static const struct extent bad[][3] = {
		{ { 0, 10, 1 }, { 5, 10, 2 }, { 100, 1, 3 } },		/* overlap */
		{ { 100, 10, 1 }, { 0, 10, 2 }, { 200, 1, 3 } },	/* unsorted */
		{ { 0, 10, 1 }, { 10, 0, 2 }, { 200, 1, 3 } },		/* empty extent */
		{ { 0, 10, 1 }, { 20, 1, 2 }, { UINT64_MAX - 5, 10, 3 } },	/* wraps */
	};
	static const struct extent good[] = { { 0, 10, 1 }, { 10, 10, 2 } };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct extmap *m = extmap_new();
		REQ(m);
		REQ_INT(extmap_load(m, bad[i], 3), -EUCLEAN);
		REQ_U64(extmap_count(m), 0);
		REQ_U64(extmap_log_bytes(m), 0);
		expect_no_first(m, 0, UINT64_MAX);
		/* and it is still a usable, empty map */
		REQ_INT(extmap_load(m, good, 2), 0);
		EXPECT_ALL(m, { 0, 10, 1 }, { 10, 10, 2 });
		extmap_free(m);
	}
	{
		struct extmap *m = extmap_new();
		REQ(m);
		REQ_INT(extmap_set(m, 50, 5, 9), 0);
		REQ_INT(extmap_load(m, good, 2), -EINVAL);
		EXPECT_ALL(m, { 50, 5, 9 });
		extmap_free(m);
	}
}
END_TEST

START_TEST(test_append_100k_extents_lookup_and_memory)
{
	enum { N = 100000, L = 4096 };
	struct extmap *m = extmap_new();
	double per;

	/*
	 * Touching, each its own record: no merging, although laddr i * L is
	 * where the previous one's bytes would end under the old rule.
	 */
	for (uint64_t i = 0; i < N; i++)
		REQ_INT(extmap_set(m, i * L, L, i * L), 0);
	REQ_U64(extmap_count(m), N);
	REQ_U64(extmap_log_bytes(m), (uint64_t)N * L);

	rng_state = 0xa55a;
	for (uint64_t i = 0; i < N; i++) {
		uint64_t d = rng() % L;
		expect_first(m, i * L + d, i * L + d + 1, i * L + d, 1, i * L);
	}
	for (int k = 0; k < 10000; k++) {
		uint64_t i = rng() % N;
		expect_first(m, i * L, UINT64_MAX, i * L, L, i * L);
		if (i > 0)	/* query straddling two extents reports the left one, clipped */
			expect_first(m, i * L - 1, i * L + 1, i * L - 1, 1, (i - 1) * L);
	}
	expect_no_first(m, (uint64_t)N * L, UINT64_MAX);
	check_invariants(m, NULL);

	per = (double)extmap_memory(m) / (double)extmap_count(m);
	printf("append_100k: %zu bytes for %" PRIu64 " extents = %.2f bytes/extent\n",
	    extmap_memory(m), extmap_count(m), per);
	REQUIRE(per <= 64.0, "%.2f bytes per extent", per);
	/* extmap.c's design: appends in order fill leaves completely (~24 B) */
	REQUIRE(per <= 32.0, "%.2f bytes per extent: appends no longer fill leaves", per);
	/* memory must at least hold the extents themselves */
	REQ(extmap_memory(m) >= (size_t)N * sizeof(struct extent));
	extmap_free(m);
}
END_TEST

START_TEST(test_prepend_100k_extents_memory)
{
	enum { N = 100000, L = 512 };
	struct extmap *m = extmap_new();
	double per;

	/* in reverse order: every insert lands at the front, leaves split half-full */
	for (uint64_t i = N; i-- > 0;)
		REQ_INT(extmap_set(m, i * L, L, i * 3 * L), 0);
	REQ_U64(extmap_count(m), N);
	REQ_U64(extmap_log_bytes(m), (uint64_t)N * L);
	check_invariants(m, NULL);
	expect_first(m, 77777 * L + 5, UINT64_MAX, 77777 * L + 5, L - 5, 77777 * 3 * L);
	per = (double)extmap_memory(m) / (double)extmap_count(m);
	printf("prepend_100k: %zu bytes for %" PRIu64 " extents = %.2f bytes/extent\n",
	    extmap_memory(m), extmap_count(m), per);
	REQUIRE(per <= 64.0, "%.2f bytes per extent", per);
	extmap_free(m);
}
END_TEST

static Suite *
extmap_suite(void)
{
	Suite *s = suite_create("extmap");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
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
	tcase_add_test(tc, test_bad_range_rejected_and_map_unchanged);
	tcase_add_test(tc, test_walk_stops_when_callback_returns_nonzero);
	tcase_add_test(tc, test_random_ops_match_byte_model);
	tcase_add_test(tc, test_random_sparse_ops_in_huge_space_match_list_model);
	tcase_add_loop_test(tc, test_load_sorted_equals_set_one_by_one, 0, 3);
	tcase_add_test(tc, test_load_refuses_overlap_unsorted_empty_and_nonempty_map);
	tcase_add_test(tc, test_append_100k_extents_lookup_and_memory);
	tcase_add_test(tc, test_prepend_100k_extents_memory);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(extmap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
