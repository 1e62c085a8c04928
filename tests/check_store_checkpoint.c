/*
 * check_store_checkpoint: what survives close, reopen and checkpoints
 * (fs/store/store.c, catalog.c).  Extents cut by a shrink stay cut,
 * attributes persist, the catalog's range replace matches a unit model, and
 * a checkpoint between writes changes nothing a reader sees.
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

#include "catalog.h"
#include "store_fixture.h"

/*
 * A checkpointed extent past the template's end, then a shrink into it and a
 * grow back: the catalog must keep only the extent's head, so the regrown
 * part reads zeros after a reopen.
 */
START_TEST(checkpointed_extent_cut_by_shrink_stays_cut_after_reopen)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 3 * MiB);

	model_init(&m, tmpl_bytes, TSIZE, 3 * MiB);
	OK(op_write(st, id, &m, 2 * MiB, 512 * KiB, 1));
	OK(op_write(st, id, &m, 300 * KiB, 512 * KiB, 2));	/* inside the template */
	ck_assert_int_eq(store_checkpoint(st), 0);
	OK(op_resize(st, id, &m, 2 * MiB + 100 * KiB, 0));
	OK(op_resize(st, id, &m, 3 * MiB, 0));
	OK(op_zero(st, id, &m, 500 * KiB, 10, 1));		/* a hole in the middle of an extent */
	OK(check_disk(st, id, &m, 1));
	st = reopen(st);
	OK(check_disk(st, id, &m, 2));
	ck_assert_int_eq(store_checkpoint(st), 0);
	OK(op_resize(st, id, &m, 400 * KiB, 0));		/* inside the template this time */
	OK(op_resize(st, id, &m, 3 * MiB, 0));
	st = reopen(st);
	check_and_close(st, id, &m, 3);
}
END_TEST

START_TEST(attributes_persist_across_reopen)
{
	struct store *st = sopen();
	uint64_t id = mkdisk(st, "vm", "base.img", 0);
	const int64_t mt = INT64_C(1500000000123456789);
	struct disk_attr a;

	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.mode, 0600);
	store_close(st);

	/* nothing written since the last checkpoint: only attributes change */
	st = sopen();
	ck_assert_int_eq(store_setattr(st, id, STORE_SET_MODE | STORE_SET_UID | STORE_SET_GID,
	    0640, 1234, 5678, 0), 0);
	ck_assert_int_eq(store_setattr(st, id, STORE_SET_MTIME, 0, 0, 0, mt), 0);
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.mode, 0640);
	ck_assert_int_eq(a.mtime_ns, mt);
	ck_assert_int_eq(store_setattr(st, 999, STORE_SET_MODE, 0600, 0, 0, 0), -ENOENT);
	st = reopen(st);
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.mode, 0640);
	ck_assert_uint_eq(a.uid, 1234);
	ck_assert_uint_eq(a.gid, 5678);
	ck_assert_int_eq(a.mtime_ns, mt);
	ck_assert_uint_eq(a.size, TSIZE);
	store_close(st);
}
END_TEST

START_TEST(close_and_reopen_reads_the_same_bytes)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = new_vm(st, &m);

	OK(script(st, id, &m, 0));
	OK(check_disk(st, id, &m, 1));
	st = reopen(st);
	OK(check_disk(st, id, &m, 2));
	store_close(st);
	st = sopen();				/* a second round trip, nothing changed */
	check_and_close(st, id, &m, 3);
}
END_TEST

/*
 * catalog_range_replace() against a model of 2048 one-byte units: random
 * ranges replaced by random extents (gaps, zero extents, extents equal to
 * the rows already there, rows straddling either bound), the rows read back
 * after every replacement: the units they cover must be exactly the model's,
 * with no overlap and every row's checksum right.
 */
#define RR_UNITS	2048
#define RR_NONE		INT64_MIN

static int64_t rr_got[RR_UNITS];

static int
rr_collect(int64_t disk_id, uint64_t loff, uint64_t len, int64_t laddr, void *arg)
{
	(void)disk_id;
	(void)arg;
	ck_assert_uint_le(loff + len, RR_UNITS);
	for (uint64_t u = loff; u < loff + len; u++) {
		ck_assert_msg(rr_got[u] == RR_NONE, "rows overlap at unit %llu", (unsigned long long)u);
		rr_got[u] = laddr;
	}
	return 0;
}

START_TEST(catalog_range_replace_matches_unit_model)
{
	static int64_t model[RR_UNITS];
	uint64_t ext[64][3];
	char path[256], err[256];
	uint8_t uuid[16] = { 7 };
	struct catalog *cat;
	struct catalog_template t = { .size = 1, .mtime_ns = 1, .ino = 1 };
	struct catalog_disk d = { .size = RR_UNITS, .mode = 0600 };
	uint64_t rng = 0x9e3779b97f4a7c15u;
#define RR_RAND(n)	(rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17, rng % (n))

	snprintf(path, sizeof(path), "%s/rr.db", datadir);
	ck_assert_int_eq(catalog_open(path, CATALOG_CREATE, uuid, 64, &cat, err, sizeof(err)), 0);
	snprintf(t.name, sizeof(t.name), "t.img");
	snprintf(t.fingerprint, sizeof(t.fingerprint), "x");
	ck_assert_int_eq(catalog_template_get(cat, &t), 0);
	snprintf(d.name, sizeof(d.name), "d.img");
	d.template_id = t.id;
	ck_assert_int_eq(catalog_disk_add(cat, &d), 0);
	for (int u = 0; u < RR_UNITS; u++)
		model[u] = RR_NONE;
	ck_assert_int_eq(catalog_begin(cat), 0);
	for (int op = 0; op < 3000; op++) {
		uint64_t start = RR_RAND(RR_UNITS - 1), end = start + 1 + RR_RAND(op % 4 ? 64 : 600);
		size_t n = 0;
		if (end > RR_UNITS)
			end = RR_UNITS;
		for (uint64_t pos = start + RR_RAND(4) * RR_RAND(2); pos < end && n < 64; ) {
			uint64_t len = 1 + RR_RAND(op % 3 ? 8 : 80);
			int64_t laddr = RR_RAND(5) == 0 ? -1 : (int64_t)(1 + RR_RAND(6));
			if (pos + len > end)
				len = end - pos;
			/* now and then exactly what the rows already hold there */
			if (RR_RAND(3) == 0 && model[pos] != RR_NONE)
				laddr = model[pos];
			ext[n][0] = pos;
			ext[n][1] = len;
			ext[n][2] = laddr < 0 ? UINT64_MAX : (uint64_t)laddr;
			n++;
			pos += len + RR_RAND(3) * RR_RAND(5);
		}
		for (uint64_t u = start; u < end; u++)
			model[u] = RR_NONE;
		for (size_t k = 0; k < n; k++)
			for (uint64_t u = ext[k][0]; u < ext[k][0] + ext[k][1]; u++)
				model[u] = ext[k][2] == UINT64_MAX ? CATALOG_LADDR_ZERO : (int64_t)ext[k][2];
		ck_assert_int_eq(catalog_range_replace(cat, d.id, start, end,
		    (const uint64_t (*)[3])ext, n), 0);
		for (int u = 0; u < RR_UNITS; u++)
			rr_got[u] = RR_NONE;
		ck_assert_int_eq(catalog_each_extent(cat, rr_collect, NULL), 0);
		for (int u = 0; u < RR_UNITS; u++)
			ck_assert_msg(rr_got[u] == model[u], "op %d [%llu, %llu): unit %d is %lld, "
			    "model %lld", op, (unsigned long long)start, (unsigned long long)end, u,
			    (long long)rr_got[u], (long long)model[u]);
	}
	ck_assert_int_eq(catalog_commit(cat, 64, 1), 0);
	catalog_close(cat);
#undef RR_RAND
}
END_TEST

START_TEST(checkpoint_between_writes_then_reopen_reads_the_same_bytes)
{
	struct store *st = sopen();
	struct model m, m2;
	uint64_t id = new_vm(st, &m);
	uint64_t id2 = mkdisk(st, "other", "base.img", 2 * MiB);

	model_init(&m2, tmpl_bytes, TSIZE, 2 * MiB);
	OK(script(st, id, &m, 0));
	OK(op_write(st, id2, &m2, 1000, 300000, 77));
	ck_assert_int_eq(store_checkpoint(st), 0);
	ck_assert_int_eq(store_checkpoint(st), 0);		/* nothing new: still fine */
	OK(check_disk(st, id, &m, 1));
	OK(script(st, id, &m, 1));				/* overlaps and straddles part 0 */
	OK(op_write(st, id2, &m2, 200000, 50000, 78));		/* inside the checkpointed extent */
	OK(op_zero(st, id2, &m2, 900, 200, 1));			/* straddles its start */
	OK(check_disk(st, id, &m, 2));
	st = reopen(st);
	OK(check_disk(st, id, &m, 3));
	OK(check_disk(st, id2, &m2, 4));
	ck_assert_int_eq(store_checkpoint(st), 0);
	OK(script(st, id, &m, 2));
	ck_assert_int_eq(store_checkpoint(st), 0);
	st = reopen(st);
	OK(check_disk(st, id, &m, 5));
	OK(check_disk(st, id2, &m2, 6));
	model_free(&m);
	model_free(&m2);
	store_close(st);
}
END_TEST

FIXTURE_MAIN(tc, "store", store_setup, 60)
{
	tcase_add_test(tc, checkpointed_extent_cut_by_shrink_stays_cut_after_reopen);
	tcase_add_test(tc, attributes_persist_across_reopen);
	tcase_add_test(tc, close_and_reopen_reads_the_same_bytes);
	tcase_add_test(tc, checkpoint_between_writes_then_reopen_reads_the_same_bytes);
	tcase_add_test(tc, catalog_range_replace_matches_unit_model);
}
