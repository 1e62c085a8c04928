/*
 * check_crc32c: common/crc32c.c, every implementation (table, and the
 * accelerated ones the CPU has) against the standard check values and a
 * bitwise reference, at all alignments, split across calls, and per block
 * as the log's crc tables use it.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "fixture.h"

/* Bit-at-a-time CRC-32C, the textbook definition. */
static uint32_t
crc32c_ref(uint32_t crc, const unsigned char *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

/*
 * The crc tests are loop tests over the implementations (_i: CRC32C_IMPL_*):
 * each runs with crc32c limited to one; one this CPU lacks passes untried.
 */
static int
crc32c_impl(int impl)
{
	if (crc32c_limit(impl) != impl) {
		fprintf(stderr, "crc32c implementation %d: not on this CPU, not tested\n", impl);
		return 0;
	}
	return 1;
}

START_TEST(test_crc32c_standard_check_values)
{
	unsigned char b[32];

	if (!crc32c_impl(_i))
		return;
	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c_ref(0, (const unsigned char *)"123456789", 9), 0xE3069283u);
	/* RFC 3720, B.4 */
	memset(b, 0, sizeof(b));
	ck_assert_uint_eq(crc32c(0, b, 32), 0x8A9136AAu);
	memset(b, 0xff, sizeof(b));
	ck_assert_uint_eq(crc32c(0, b, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)i;
	ck_assert_uint_eq(crc32c(0, b, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)(31 - i);
	ck_assert_uint_eq(crc32c(0, b, 32), 0x113FDB5Cu);
}
END_TEST

START_TEST(test_crc32c_empty_input_changes_nothing)
{
	if (!crc32c_impl(_i))
		return;
	ck_assert_uint_eq(crc32c(0, "", 0), 0);
	ck_assert_uint_eq(crc32c(0, NULL, 0), 0);
	ck_assert_uint_eq(crc32c(0xE3069283u, "x", 0), 0xE3069283u);
	ck_assert_uint_eq(crc32c(0xdeadbeefu, NULL, 0), 0xdeadbeefu);
}
END_TEST

START_TEST(test_crc32c_split_calls_equal_one_call)
{
	unsigned char buf[1100];
	uint64_t x = 0x9e3779b97f4a7c15u;

	if (!crc32c_impl(_i))
		return;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	/* every split of the check string */
	for (size_t k = 0; k <= 9; k++)
		ck_assert_uint_eq(crc32c(crc32c(0, "123456789", k), "123456789" + k, 9 - k),
		    0xE3069283u);
	/* every split of 1 KiB, and three-way splits at odd offsets */
	{
		uint32_t whole = crc32c(0, buf, 1024);
		ck_assert_uint_eq(whole, crc32c_ref(0, buf, 1024));
		for (size_t k = 0; k <= 1024; k++) {
			uint32_t c = crc32c(crc32c(0, buf, k), buf + k, 1024 - k);
			if (c != whole)
				ck_abort_msg("split at %zu: %08x != %08x", k, c, whole);
		}
		for (size_t a = 1; a < 40; a += 3)
			for (size_t b = a; b < 1024; b += 97) {
				uint32_t c = crc32c(crc32c(crc32c(0, buf, a), buf + a, b - a),
				    buf + b, 1024 - b);
				if (c != whole)
					ck_abort_msg("split at %zu,%zu: %08x != %08x", a, b, c, whole);
			}
	}
}
END_TEST

START_TEST(test_crc32c_matches_bitwise_reference_at_all_alignments)
{
	unsigned char buf[600];

	if (!crc32c_impl(_i))
		return;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= sizeof(buf); len += (len < 64 ? 1 : 37)) {
			uint32_t seed = (uint32_t)(len * 2654435761u);
			uint32_t got = crc32c(seed, buf + off, len), want = crc32c_ref(seed, buf + off, len);
			if (got != want)
				ck_abort_msg("off %zu len %zu: %08x, expected %08x", off, len, got, want);
		}
}
END_TEST

/*
 * Select implementation impl (crc32c_impl) and return cap bytes of the
 * pattern i * mult >> shift to checksum, or NULL if this CPU lacks it.
 */
static unsigned char *
impl_pattern(int impl, size_t cap, uint32_t mult, unsigned shift)
{
	unsigned char *buf;

	if (!crc32c_impl(impl))
		return NULL;
	buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < cap; i++)
		buf[i] = (unsigned char)(i * mult >> shift);
	return buf;
}

START_TEST(test_crc32c_long_buffers_match_bitwise_reference)
{
	/* around runs of 256 bytes (folding) and of three lanes (4080 bytes), at odd addresses and seeds */
	static const size_t lens[] = { 255, 256, 257, 511, 512, 513, 767, 768, 1279, 1280,
	    4079, 4080, 4081, 4095, 4096, 4097, 8159, 8160, 8161, 12239, 12240, 12247, 65536, 65537 };
	size_t cap = 65537 + 8;
	unsigned char *buf = impl_pattern(_i, cap, 2246822519u, 11);

	if (!buf)
		return;
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++)
		for (size_t off = 0; off < 8; off += 3) {
			uint32_t seed = (uint32_t)(lens[li] * 40503u + off), want;
			want = crc32c_ref(seed, buf + off, lens[li]);
			if (crc32c(seed, buf + off, lens[li]) != want)
				ck_abort_msg("len %zu off %zu: %08x, expected %08x", lens[li], off,
				    crc32c(seed, buf + off, lens[li]), want);
			/* continued across a lane run */
			ck_assert_uint_eq(crc32c(crc32c(seed, buf + off, 5), buf + off + 5, lens[li] - 5), want);
		}
	/* all zeros and all ones: registers the lane join must carry through unchanged */
	memset(buf, 0, cap);
	ck_assert_uint_eq(crc32c(0, buf, 12240), crc32c_ref(0, buf, 12240));
	memset(buf, 0xff, cap);
	ck_assert_uint_eq(crc32c(0xffffffffu, buf, 12240), crc32c_ref(0xffffffffu, buf, 12240));
	free(buf);
}
END_TEST

/* crc32c_blocks(buf + off, len, block) against crc32c_ref of each piece; aborts on a difference. */
static void
crc32c_blocks_expect(const unsigned char *buf, size_t off, size_t len, size_t block)
{
	size_t n = (len + block - 1) / block;
	uint32_t *got = malloc((n + 1) * sizeof(*got));

	ck_assert_ptr_nonnull(got);
	got[n] = 0x5a5a5a5au;		/* guard: nothing past the last piece is written */
	crc32c_blocks(buf + off, len, block, got);
	for (size_t i = 0; i < n; i++) {
		size_t plen = len - i * block < block ? len - i * block : block;
		uint32_t want = crc32c_ref(0, buf + off + i * block, plen);
		if (got[i] != want || crc32c(0, buf + off + i * block, plen) != want)
			ck_abort_msg("off %zu len %zu block %zu piece %zu: %08x, expected %08x",
			    off, len, block, i, got[i], want);
	}
	ck_assert_uint_eq(got[n], 0x5a5a5a5au);
	free(got);
}

START_TEST(test_crc32c_blocks_equal_crc32c_of_each_block)
{
	static const size_t blocks[] = { 1, 3, 8, 13, 64, 256, 511, 512, 1000, 4093, 4096 };
	size_t cap = 9 * 4096 + 16;
	unsigned char *buf = impl_pattern(_i, cap, 2654435761u, 13);

	if (!buf)
		return;
	for (size_t bi = 0; bi < sizeof(blocks) / sizeof(blocks[0]); bi++) {
		size_t block = blocks[bi];
		/* whole groups of three, a group plus one or two, odd tails, at odd addresses */
		for (size_t nb = 0; nb <= 9 && nb * block <= 9 * 4096; nb++)
			for (size_t tail = 0; tail < block && tail < 10; tail += (block > 3 ? 3 : 1))
				for (size_t off = 0; off < 8; off += 5)
					if (off + nb * block + tail <= cap)
						crc32c_blocks_expect(buf, off, nb * block + tail, block);
	}
	free(buf);
}
END_TEST

START_TEST(test_crc32c_blocks_of_a_full_record)
{
	/* the largest REC_WRITE: 4096 blocks of 4 KiB, and one byte short of it */
	size_t len = 16u << 20;
	unsigned char *buf;

	if (!crc32c_impl(_i))
		return;
	buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i ^ (i >> 9) ^ (i >> 17));
	crc32c_blocks_expect(buf, 0, len, 4096);
	crc32c_blocks_expect(buf, 0, len - 1, 4096);
	free(buf);
}
END_TEST

FIXTURE_MAIN(tc, "core", NULL, 0)
{
	/* each crc test once per implementation (_i), see crc32c_impl() */
#define CRC_TEST(t) tcase_add_loop_test(tc, t, CRC32C_IMPL_TABLE, CRC32C_IMPL_VPCLMUL + 1)
	CRC_TEST(test_crc32c_standard_check_values);
	CRC_TEST(test_crc32c_empty_input_changes_nothing);
	CRC_TEST(test_crc32c_split_calls_equal_one_call);
	CRC_TEST(test_crc32c_matches_bitwise_reference_at_all_alignments);
	CRC_TEST(test_crc32c_long_buffers_match_bitwise_reference);
	CRC_TEST(test_crc32c_blocks_equal_crc32c_of_each_block);
	CRC_TEST(test_crc32c_blocks_of_a_full_record);
#undef CRC_TEST
}
