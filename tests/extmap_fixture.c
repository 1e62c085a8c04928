/*
 * extmap_fixture.c: the extent-map tests' helpers (see extmap_fixture.h).
 *
 * Nothing here shares code with fs/store/extmap.c: the merge rule and the
 * invariants are written again, independently, so that a test compares the
 * map with a second opinion.  Helpers use REQUIRE, which calls into Check
 * only on failure (the randomized tests make millions of checks).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extmap_fixture.h"

void
vec_push(struct vec *v, struct extent e)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->v = realloc(v->v, v->cap * sizeof(*v->v));
		REQ(v->v != NULL);
	}
	v->v[v->n++] = e;
}

void
vec_free(struct vec *v)
{
	free(v->v);
	v->v = NULL;
	v->n = v->cap = 0;
}

int
collect_cb(const struct extent *e, void *arg)
{
	vec_push(arg, *e);
	return 0;
}

void
collect(const struct extmap *m, uint64_t off, uint64_t end, struct vec *out)
{
	out->n = 0;
	REQ_INT(extmap_walk(m, off, end, collect_cb, out), 0);
}

int
ext_eq(const struct extent *a, const struct extent *b)
{
	return a->loff == b->loff && a->len == b->len && a->laddr == b->laddr;
}

void
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

void
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

void
expect_no_first(const struct extmap *m, uint64_t off, uint64_t end)
{
	struct extent e;

	REQUIRE(extmap_first(m, off, end, &e) == 0,
	    "first [%" PRIu64 ",%" PRIu64 ") found {%" PRIu64 ",%" PRIu64 ",%" PRIu64
	    "}, expected nothing", off, end, e.loff, e.len, e.laddr);
}

int
continues(const struct extent *a, const struct extent *b)
{
	if (a->loff + a->len != b->loff)
		return 0;
	if (a->laddr == Z || b->laddr == Z)
		return a->laddr == Z && b->laddr == Z;
	return a->laddr == b->laddr;
}

void
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
		if (extmap_in_log(e->laddr))
			log += e->len;
	}
	REQ_U64(extmap_count(m), v->n);
	REQ_U64(extmap_log_bytes(m), log);
	if (!all)
		vec_free(&local);
}

uint64_t rng_state;

uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

uint64_t
rng_range(uint64_t lo, uint64_t hi)
{
	return lo + rng() % (hi - lo + 1);
}

uint64_t
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
