/*
 * check_extmap_model: two randomized differential tests of fs/store/extmap.c.
 * After every operation the map is compared with a reference model that
 * shares no code with it: a byte-granular array (64 KiB disk) and a naive
 * sorted extent list (2^47-byte disk).  The seed is printed; set EXTMAP_SEED
 * to replay a run.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extmap_fixture.h"

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

FIXTURE_MAIN(tc, "core", NULL, 60)
{
	tcase_add_test(tc, test_random_ops_match_byte_model);
	tcase_add_test(tc, test_random_sparse_ops_in_huge_space_match_list_model);
}
