/*
 * check_store_limits: what bounds a store's memory and a disk's size
 * (fs/store/diskio.c, fs/store/disks.c).  Guest writes that would grow the
 * extent maps past max_extents get ENOSPC (and writes that replace extents
 * still work, and everything written reads back after a reopen); a disk
 * cannot be made larger than max_disk_size by truncate, fallocate or
 * create; the disk table holds the disks that exist, not one slot per id
 * ever created, and finds every disk by name after renames and deletes.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_fixture.h"
#include "store_int.h"

#define CAP	1024

/* 512-byte writes 1 KiB apart (the pattern that costs the most map per byte) until one fails. */
static int
write_sparse_until_refused(struct store *st, uint64_t id, uint64_t *nwritten)
{
	char buf[512];
	ssize_t rc = 0;

	memset(buf, 'x', sizeof(buf));
	for (*nwritten = 0; *nwritten < 4 * CAP; (*nwritten)++) {
		if ((rc = store_write(st, id, buf, sizeof(buf), *nwritten * 1024)) < 0)
			return (int)rc;
		ck_assert_int_eq(rc, sizeof(buf));
	}
	return 0;
}

START_TEST(extent_cap_refuses_writes_that_add_extents_but_not_ones_that_replace)
{
	struct store_opts o = opts();
	struct store *st;
	struct store_space sp;
	struct disk_attr a;
	uint64_t id, n;
	char *big = malloc(64 * 1024), back[512];

	o.max_extents = CAP;
	st = sopen_with(&o);
	id = mkdisk(st, "vm", "base.img", 8 * MiB);
	ck_assert_int_eq(write_sparse_until_refused(st, id, &n), -ENOSPC);
	store_space(st, &sp);
	ck_assert_uint_le(sp.extents, CAP);
	ck_assert_uint_ge(sp.extents, CAP - 2);
	ck_assert_uint_eq(sp.extents_max, CAP);
	/* a write over many extents replaces them: allowed, and the map shrinks */
	memset(big, 'y', 64 * 1024);
	ck_assert_int_eq(store_write(st, id, big, 64 * 1024, 0), 64 * 1024);
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_lt(a.extents, CAP - 40);
	/* now there is room again */
	ck_assert_int_eq(store_write(st, id, big, 512, (n + 1) * 1024), 512);
	/* what was written before the refusal is there after a reopen (replay) */
	st = reopen(st);
	ck_assert_int_eq(store_read(st, id, back, sizeof(back), (n - 1) * 1024), sizeof(back));
	ck_assert_int_eq(back[0], 'x');
	ck_assert_int_eq(store_read(st, id, back, sizeof(back), 0), sizeof(back));
	ck_assert_int_eq(back[0], 'y');
	store_close(st);
	free(big);
}
END_TEST

START_TEST(disk_cannot_grow_past_max_disk_size)
{
	struct store_opts o = opts();
	struct store *st = sopen_with(&o);
	uint64_t id = mkdisk(st, "vm", "base.img", 0), lim = STORE_DISK_SIZE_MAX_DEFAULT;
	struct disk_attr a;
	char err[512];

	ck_assert_int_eq(store_resize(st, id, lim + 1, 0), -EFBIG);
	ck_assert_int_eq(store_resize(st, id, DISK_SIZE_MAX, 1), -EFBIG);
	ck_assert_int_eq(store_zero(st, id, lim, 4096, 0), -EFBIG);
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.size, TSIZE);
	ck_assert_int_eq(store_resize(st, id, lim, 0), 0);
	ck_assert_int_eq(store_resize(st, id, MiB, 0), 0);
	ck_assert_int_eq(store_create(st, "big", "base.img", lim + 4096, NULL, &a, err, sizeof(err)),
	    -EINVAL);
	store_close(st);

	/* raised by the option, up to the engine's own limit */
	o.max_disk_size = DISK_SIZE_MAX;
	st = sopen_with(&o);
	ck_assert_int_eq(store_resize(st, id, DISK_SIZE_MAX, 0), 0);
	ck_assert_int_eq(store_resize(st, id, DISK_SIZE_MAX + 1, 0), -EFBIG);
	store_close(st);
}
END_TEST

START_TEST(disk_table_follows_live_disks_and_finds_every_name)
{
	struct store *st = sopen();
	struct disk_attr a;
	char name[32], to[32];
	uint64_t keep = mkdisk(st, "keep", "base.img", 0);

	/* ids climb to 600 while at most a handful of disks exist */
	for (int i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "tmp%d", i);
		mkdisk(st, name, "base.img", 0);
		ck_assert_int_eq(store_unlink(st, name), 0);
	}
	ck_assert_uint_eq(st->ndisks, 1);
	ck_assert_uint_le(st->disks_alloc, 64);
	/* names in an order unlike the ids, renamed and deleted, all found */
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "d%03d", (i * 37) % 200);
		mkdisk(st, name, "base.img", 0);
	}
	for (int i = 0; i < 200; i += 3) {
		snprintf(name, sizeof(name), "d%03d", i);
		snprintf(to, sizeof(to), "r%03d", 199 - i);
		ck_assert_int_eq(store_rename(st, name, to, 0), 0);
	}
	for (int i = 1; i < 200; i += 3) {
		snprintf(name, sizeof(name), "d%03d", i);
		ck_assert_int_eq(store_unlink(st, name), 0);
	}
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "d%03d", i);
		snprintf(to, sizeof(to), "r%03d", 199 - i);
		ck_assert_int_eq(store_lookup(st, name, &a), i % 3 == 2 ? 0 : -ENOENT);
		ck_assert_int_eq(store_lookup(st, to, &a), i % 3 == 0 ? 0 : -ENOENT);
	}
	ck_assert_int_eq(store_lookup(st, "keep", &a), 0);
	ck_assert_uint_eq(a.id, keep);
	ck_assert_int_eq(store_getattr(st, keep, &a), 0);
	st = reopen(st);
	ck_assert_int_eq(store_lookup(st, "r199", &a), 0);
	ck_assert_int_eq(store_lookup(st, "d002", &a), 0);
	ck_assert_int_eq(store_lookup(st, "d001", &a), -ENOENT);
	store_close(st);
}
END_TEST

FIXTURE_MAIN(tc, "store", store_setup, 120)
{
	tcase_add_test(tc, extent_cap_refuses_writes_that_add_extents_but_not_ones_that_replace);
	tcase_add_test(tc, disk_cannot_grow_past_max_disk_size);
	tcase_add_test(tc, disk_table_follows_live_disks_and_finds_every_name);
}
