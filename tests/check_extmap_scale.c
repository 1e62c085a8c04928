/*
 * check_extmap_scale: fs/store/extmap.c at scale.  extmap_load of sorted
 * extents equals setting them one by one and refuses overlapping, unsorted
 * or empty input and a non-empty map; 100k appended or prepended extents
 * look up right and stay within 64 bytes each.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extmap_fixture.h"

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

FIXTURE_MAIN(tc, "core", NULL, 60)
{
	tcase_add_loop_test(tc, test_load_sorted_equals_set_one_by_one, 0, 3);
	tcase_add_test(tc, test_load_refuses_overlap_unsorted_empty_and_nonempty_map);
	tcase_add_test(tc, test_append_100k_extents_lookup_and_memory);
	tcase_add_test(tc, test_prepend_100k_extents_memory);
}
