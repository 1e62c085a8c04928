/*
 * extmap_fixture.h: what the extent-map tests share (tests/extmap_fixture.c).
 *
 * An extent's laddr is the log address of the RECORD holding its bytes, so
 * cutting or clipping an extent never changes its laddr, and two touching
 * neighbours merge iff they have the same laddr (zeros with zeros).  The
 * helpers walk a map into a vector and hold it to what a test expects and to
 * the map's documented invariants.
 */
#ifndef HCOWFS_TESTS_EXTMAP_FIXTURE_H
#define HCOWFS_TESTS_EXTMAP_FIXTURE_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#include "extmap.h"
#include "fixture.h"

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

struct vec {
	struct extent	*v;
	size_t		 n, cap;
};

void vec_push(struct vec *v, struct extent e);

void vec_free(struct vec *v);

int collect_cb(const struct extent *e, void *arg);

/* Every extent extmap_walk reports for [off, end), in order. */
void collect(const struct extmap *m, uint64_t off, uint64_t end, struct vec *out);

int ext_eq(const struct extent *a, const struct extent *b);

/* The walk of [off, end) is exactly exp[0..n). */
void expect_walk(const struct extmap *m, uint64_t off, uint64_t end,
    const struct extent *exp, size_t n);

#define EXPECT_ALL(m, ...) do {						\
	const struct extent exp_[] = { __VA_ARGS__ };			\
	expect_walk((m), 0, UINT64_MAX, exp_, sizeof(exp_) / sizeof(exp_[0])); \
} while (0)

#define EXPECT_NONE(m) expect_walk((m), 0, UINT64_MAX, NULL, 0)

/* extmap_first(off, end) finds exactly {loff, len, laddr}. */
void expect_first(const struct extmap *m, uint64_t off, uint64_t end, uint64_t loff,
    uint64_t len, uint64_t laddr);

void expect_no_first(const struct extmap *m, uint64_t off, uint64_t end);

/*
 * b continues a (the merge rule, written independently of extmap.c): they
 * touch and their bytes are in the same record, or both read as zeros.
 */
int continues(const struct extent *a, const struct extent *b);

/*
 * The documented invariants, checked on the whole map: sorted,
 * non-overlapping, len > 0, no mergeable neighbours, and count and log_bytes
 * agree with what the walk shows.  Returns the walk in *all if given.
 */
void check_invariants(const struct extmap *m, struct vec *all);

/* xorshift64*: small, fixed, reproducible. */
extern uint64_t rng_state;
uint64_t rng(void);

/* Uniform in [lo, hi] (hi - lo small enough that modulo bias is irrelevant). */
uint64_t rng_range(uint64_t lo, uint64_t hi);

uint64_t seed_init(const char *test, uint64_t dflt);

#endif
