/*
 * check_reccache: the record cache on its own (fs/store/reccache.c): it finds
 * what was put until it is replaced or dropped, and concurrent readers and
 * writers never see a record mixed from two puts.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logfmt.h"
#include "reccache.h"
#include "fixture.h"

#define BLK		((uint64_t)REC_BLOCK)

/* ---- reccache on its own -------------------------------------------------- */

/* A REC_WRITE header for the cache tests: length bytes, its table's entries all `mark`. */
static struct rec_header
rc_header(uint64_t length, uint32_t mark)
{
	struct rec_header h;

	memset(&h, 0, sizeof(h));
	h.magic = REC_MAGIC;
	h.type = REC_WRITE;
	h.disk_id = 7;
	h.offset = mark;
	h.length = length;
	h.data_crc = mark;
	return h;
}

struct rc_seen {
	struct rec_header h;
	uint32_t	 table[RECCACHE_TABLE_MAX];
	int		 calls;
};

static void
rc_take(const struct rec_header *h, const uint32_t *table, void *arg)
{
	struct rc_seen *seen = arg;

	seen->h = *h;
	memcpy(seen->table, table, rec_blocks(h->length) * sizeof(*table));
	seen->calls++;
}

static void
rc_put(struct reccache *c, uint64_t rec, uint64_t length, uint32_t mark)
{
	struct rec_header h = rc_header(length, mark);
	uint32_t table[RECCACHE_TABLE_MAX + 1];

	for (size_t i = 0; i <= RECCACHE_TABLE_MAX; i++)
		table[i] = mark;
	ck_assert_int_eq(reccache_put(c, rec, &h, table), 0);
}

/* Is rec cached with the header and table rc_put() gave it (mark)? */
static int
rc_has(struct reccache *c, uint64_t rec, uint32_t mark)
{
	struct rc_seen seen = { .calls = 0 };

	if (!reccache_find(c, rec, rc_take, &seen))
		return 0;
	ck_assert_int_eq(seen.calls, 1);
	ck_assert_uint_eq(seen.h.data_crc, mark);
	ck_assert_uint_eq(seen.h.offset, mark);
	for (uint64_t i = 0; i < rec_blocks(seen.h.length); i++)
		ck_assert_uint_eq(seen.table[i], mark);
	return 1;
}

/*
 * What is put is found, with its header and whole table; other addresses are
 * not; a record replaces what its slot held; a table longer than
 * RECCACHE_TABLE_MAX is not kept; dropping a segment forgets its records
 * only; the count and the memory follow.
 */
START_TEST(reccache_finds_what_was_put_until_replaced_or_dropped)
{
	struct reccache *c = reccache_new(1000);
	size_t empty;
	int found = 0;

	ck_assert_ptr_nonnull(c);
	empty = reccache_memory(c);
	ck_assert_uint_eq(reccache_count(c), 0);
	ck_assert(!rc_has(c, LADDR(1, 64), 0));
	rc_put(c, LADDR(1, 64), 5 * BLK + 100, 11);
	rc_put(c, LADDR(2, 64), MiB, 22);
	ck_assert(rc_has(c, LADDR(1, 64), 11));
	ck_assert(rc_has(c, LADDR(2, 64), 22));
	ck_assert(!rc_has(c, LADDR(1, 65), 0));
	ck_assert(!rc_has(c, LADDR(3, 64), 0));
	ck_assert_uint_eq(reccache_count(c), 2);
	ck_assert_uint_ge(reccache_memory(c), empty + 4 * (6 + 256));
	/* put again: the new header and table replace the old */
	rc_put(c, LADDR(1, 64), 2 * BLK, 33);
	ck_assert(rc_has(c, LADDR(1, 64), 33));
	ck_assert_uint_eq(reccache_count(c), 2);
	/* too long a table: not kept, not an error */
	rc_put(c, LADDR(1, 9999), (RECCACHE_TABLE_MAX + 1) * BLK, 44);
	ck_assert(!rc_has(c, LADDR(1, 9999), 44));
	ck_assert_uint_eq(reccache_count(c), 2);
	reccache_drop_segment(c, 1);
	ck_assert(!rc_has(c, LADDR(1, 64), 33));
	ck_assert(rc_has(c, LADDR(2, 64), 22));
	ck_assert_uint_eq(reccache_count(c), 1);
	/* 1000 slots hold at most 1024 records: many more leave some out, all found are right */
	for (uint32_t i = 0; i < 5000; i++)
		rc_put(c, LADDR(3, 64 + (uint64_t)i * 4164), BLK, i + 1);
	ck_assert_uint_le(reccache_count(c), 1024);
	for (uint32_t i = 0; i < 5000; i++)
		found += rc_has(c, LADDR(3, 64 + (uint64_t)i * 4164), i + 1);
	ck_assert_int_gt(found, 0);
	ck_assert_int_lt(found, 5000);
	ck_assert_uint_eq((size_t)found + rc_has(c, LADDR(2, 64), 22), reccache_count(c));
	reccache_free(c);

	/* a set holds several records: any four fit in the smallest cache, whatever their hashes */
	for (uint32_t round = 0; round < 50; round++) {
		c = reccache_new(1);
		ck_assert_ptr_nonnull(c);
		for (uint32_t i = 0; i < 4; i++)
			rc_put(c, LADDR(1 + round, 64 + (uint64_t)i * 77777), BLK, i + 1);
		for (uint32_t i = 0; i < 4; i++)
			ck_assert(rc_has(c, LADDR(1 + round, 64 + (uint64_t)i * 77777), i + 1));
		reccache_free(c);
	}
}
END_TEST

struct rc_race {
	struct reccache	*c;
	int		 id;
	int		 bad;
};

/*
 * Writers and readers on a cache of 2 slots, every record's header and table
 * carrying the same mark: a reader must never see a header from one record
 * and a table from another, or a record under another's address.
 */
static void *
rc_race_thread(void *arg)
{
	struct rc_race *r = arg;

	for (uint32_t i = 0; i < 20000; i++) {
		uint64_t k = (i * 7 + (uint32_t)r->id) % 16;
		uint32_t mark = (uint32_t)k * 1000 + 1;
		struct rc_seen seen = { .calls = 0 };
		if ((i + (uint32_t)r->id) % 3 == 0) {
			struct rec_header h = rc_header((k % 4 + 1) * 50 * BLK, mark);
			uint32_t table[RECCACHE_TABLE_MAX];
			for (size_t j = 0; j < RECCACHE_TABLE_MAX; j++)
				table[j] = mark;
			if (reccache_put(r->c, LADDR(1, 64 + k), &h, table) != 0)
				r->bad++;
		} else if (reccache_find(r->c, LADDR(1, 64 + k), rc_take, &seen)) {
			if (seen.h.data_crc != mark || seen.h.length != (k % 4 + 1) * 50 * BLK)
				r->bad++;
			for (uint64_t j = 0; j < rec_blocks(seen.h.length); j++)
				if (seen.table[j] != mark)
					r->bad++;
		}
	}
	return NULL;
}

START_TEST(reccache_readers_and_writers_never_see_a_mixed_record)
{
	struct rc_race r[4];
	pthread_t t[4];
	struct reccache *c = reccache_new(2);

	ck_assert_ptr_nonnull(c);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct rc_race){ .c = c, .id = i, .bad = 0 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, rc_race_thread, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(r[i].bad, 0);
	}
	reccache_free(c);
}
END_TEST

FIXTURE_MAIN(tc, "reccache", NULL, 60)
{
	tcase_add_test(tc, reccache_finds_what_was_put_until_replaced_or_dropped);
	tcase_add_test(tc, reccache_readers_and_writers_never_see_a_mixed_record);
}
