/*
 * check_store_io: a clone's reads and writes through store.h (fs/store/diskio.c
 * on the log and the extent map).  Unaligned writes, hundreds of extents,
 * zeroing, shrinking and growing, writes at the end, oversized writes and
 * SEEK_DATA/SEEK_HOLE all read back as the model says, and clones never see
 * each other's bytes nor change the template file.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_fixture.h"

START_TEST(unaligned_writes_across_boundaries_read_back_exactly)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 3 * MiB);
	uint64_t s = 100;
	struct rng r = { 42 };
	struct {
		uint64_t off, len;
	} steps[] = {
		{ 0, 1 }, { 1, 4095 }, { 4095, 4097 }, { 8191, 1 }, { TSIZE - 1, 1 },
		{ TSIZE - 5000, 10000 },		/* spans the template's end */
		{ 4096 - 100, 300 },			/* inside earlier writes */
		{ 3 * MiB - 1, 1 }, { 123457, 65536 + 7 }, { 2 * MiB + 3, 4097 },
		{ 100, 12000 },				/* covers several earlier writes */
		{ TSIZE, 1 }, { TSIZE + 1, 4095 },
	};

	model_init(&m, tmpl_bytes, TSIZE, 3 * MiB);
	OK(check_disk(st, id, &m, s));
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		OK(op_write(st, id, &m, steps[i].off, (size_t)steps[i].len, s));
		OK(check_disk(st, id, &m, ++s));
	}
	OK(op_zero(st, id, &m, 50, 5000, 1));			/* punch over writes and template */
	OK(check_disk(st, id, &m, ++s));
	OK(op_write(st, id, &m, 1000, 10, s));			/* inside the punched range */
	OK(check_disk(st, id, &m, ++s));
	for (int i = 0; i < 60; i++) {
		uint64_t off = rnext(&r) % m.size;
		OK(op_write(st, id, &m, off, (size_t)(1 + rnext(&r) % 20000), ++s));
		if (i % 6 == 0)
			OK(check_disk(st, id, &m, s));
	}
	OK(check_disk(st, id, &m, ++s));
	model_free(&m);
	store_close(st);
}
END_TEST

/* A read over more extents than one lookup batch collects (READ_PIECES = 64). */
START_TEST(read_across_hundreds_of_extents_is_assembled_in_order)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 2 * MiB);
	struct disk_attr a;

	model_init(&m, tmpl_bytes, TSIZE, 2 * MiB);
	/* alternating log bytes, zero ranges and template gaps, past the template end too */
	for (uint64_t i = 0; i < 400; i++) {
		uint64_t off = 1000 + i * 4000 + (i % 7);
		if (i % 5 == 4)
			OK(op_zero(st, id, &m, off, 1 + i % 300, 1));
		else
			OK(op_write(st, id, &m, off, (size_t)(1 + i % 37), 5000 + i));
	}
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_ge(a.extents, 400);
	OK(check_read(st, id, &m, 0, 2 * MiB));
	OK(check_read(st, id, &m, 999, 300 * 4000 + 17));
	OK(check_read(st, id, &m, 1001, 64 * 4000 + 1));
	check_and_close(st, id, &m, 7);
}
END_TEST

START_TEST(clones_are_isolated_and_template_file_is_unchanged)
{
	struct store *st = sopen();
	struct model m1, m2;
	uint64_t id1 = mkdisk(st, "one", "base.img", 0);
	uint64_t id2 = mkdisk(st, "two", "base.img", 2 * MiB);
	struct stat before, after;
	char p[256];

	tmpl_path("base.img", p, sizeof(p));
	ck_assert_int_eq(stat(p, &before), 0);
	ck_assert_uint_ne(id1, id2);
	model_init(&m1, tmpl_bytes, TSIZE, TSIZE);
	model_init(&m2, tmpl_bytes, TSIZE, 2 * MiB);
	OK(op_write(st, id1, &m1, 0, 70000, 1));
	OK(op_write(st, id1, &m1, TSIZE - 10, 20, 2));
	OK(op_zero(st, id1, &m1, 500000, 100000, 1));
	OK(check_disk(st, id2, &m2, 1));			/* untouched by disk one */
	OK(op_write(st, id2, &m2, 30000, 100000, 3));
	OK(op_resize(st, id2, &m2, 600000, 0));
	OK(op_resize(st, id2, &m2, 2 * MiB, 0));
	OK(check_disk(st, id1, &m1, 2));			/* untouched by disk two */
	OK(check_disk(st, id2, &m2, 3));
	assert_template_file_unchanged();
	store_close(st);

	st = sopen();
	OK(check_disk(st, id1, &m1, 4));
	OK(check_disk(st, id2, &m2, 5));
	store_close(st);
	assert_template_file_unchanged();
	ck_assert_int_eq(stat(p, &after), 0);
	ck_assert_int_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	model_free(&m1);
	model_free(&m2);
}
END_TEST

START_TEST(zero_punches_in_place_or_grows_the_disk)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = new_vm(st, &m);
	struct disk_attr a;

	OK(op_write(st, id, &m, 2000, 8000, 1));
	OK(op_zero(st, id, &m, 1000, 5000, 1));			/* over template and log */
	OK(check_disk(st, id, &m, 1));
	OK(op_zero(st, id, &m, TSIZE - 10, 100, 1));		/* keep_size: cut at the end */
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.size, TSIZE);
	OK(check_disk(st, id, &m, 2));
	OK(op_zero(st, id, &m, TSIZE + 500, 100, 1));		/* entirely past the end: nothing */
	OK(check_disk(st, id, &m, 3));
	OK(op_zero(st, id, &m, TSIZE - 10, 1000, 0));		/* grows */
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.size, TSIZE + 990);
	OK(check_disk(st, id, &m, 4));
	OK(op_zero(st, id, &m, 2 * MiB, 10, 0));		/* grows over a gap */
	ck_assert_uint_eq(m.size, 2 * MiB + 10);
	OK(check_disk(st, id, &m, 5));
	OK(op_zero(st, id, &m, 100, 0, 1));			/* empty range */
	OK(check_disk(st, id, &m, 6));
	ck_assert_int_eq(store_zero(st, id, UINT64_MAX - 5, 10, 1), -EFBIG);
	ck_assert_int_eq(store_zero(st, id, 0, (UINT64_C(1) << 48) + 1, 0), -EFBIG);
	ck_assert_int_eq(store_zero(st, 999, 0, 10, 1), -ENOENT);
	OK(check_disk(st, id, &m, 7));
	st = reopen(st);
	check_and_close(st, id, &m, 8);
}
END_TEST

START_TEST(shrink_then_grow_reads_zeros_where_the_template_had_data)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = new_vm(st, &m);
	unsigned char buf[16];

	OK(op_write(st, id, &m, 290000, 20000, 1));		/* straddles the new end */
	OK(op_resize(st, id, &m, 300000, 0));
	OK(check_disk(st, id, &m, 1));
	ck_assert_int_eq(store_read(st, id, buf, sizeof(buf), 300000), 0);
	OK(op_resize(st, id, &m, 2 * MiB, 0));
	OK(check_disk(st, id, &m, 2));				/* [300000, 2 MiB) all zeros */
	ck_assert_int_eq(store_read(st, id, buf, sizeof(buf), 500000), (ssize_t)sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0);
	OK(op_resize(st, id, &m, MiB, 1));			/* grow_only: no shrink */
	ck_assert_uint_eq(m.size, 2 * MiB);
	OK(check_disk(st, id, &m, 3));
	OK(op_resize(st, id, &m, 3 * MiB, 1));			/* grow_only grows */
	OK(check_disk(st, id, &m, 4));
	OK(op_resize(st, id, &m, 0, 0));			/* to nothing, and back */
	OK(op_resize(st, id, &m, TSIZE, 0));
	OK(check_disk(st, id, &m, 5));
	OK(op_write(st, id, &m, 10, 10, 2));
	OK(check_disk(st, id, &m, 6));
	ck_assert_int_eq(store_resize(st, id, (UINT64_C(1) << 48) + 1, 0), -EFBIG);
	st = reopen(st);
	check_and_close(st, id, &m, 7);
}
END_TEST

START_TEST(writes_past_the_end_grow_the_disk)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = new_vm(st, &m);
	unsigned char buf[100] = { 1, 2, 3 };

	/* as a file grows: across the end, at the end, and past it (a gap of zeros) */
	OK(op_write(st, id, &m, TSIZE - 10, 100, 1));
	OK(op_write(st, id, &m, TSIZE + 90, 100, 2));
	OK(op_write(st, id, &m, TSIZE + 4096, 100, 3));
	ck_assert_uint_eq(m.size, TSIZE + 4196);
	ck_assert_int_eq(store_write(st, id, buf, 0, 0), 0);
	OK(check_disk(st, id, &m, 1));
	/* after a shrink, the template's bytes past the new end stay hidden when a write grows it */
	OK(op_resize(st, id, &m, 5000, 0));
	OK(op_write(st, id, &m, 9000, 100, 4));
	OK(check_disk(st, id, &m, 2));
	/* past the largest disk: EFBIG, nothing changes */
	ck_assert_int_eq(store_write(st, id, buf, sizeof(buf), (UINT64_C(1) << 48) - 10), -EFBIG);
	ck_assert_int_eq(store_write(st, id, buf, sizeof(buf), UINT64_MAX - 10), -EFBIG);
	OK(check_disk(st, id, &m, 3));
	ck_assert_int_eq(store_write(st, 12345, buf, 1, 0), -ENOENT);
	ck_assert_int_eq(store_read(st, 12345, buf, 1, 0), -ENOENT);
	st = reopen(st);
	check_and_close(st, id, &m, 4);
}
END_TEST

/* One write is one record of at most REC_DATA_MAX bytes: a larger one is cut short. */
START_TEST(write_larger_than_a_record_is_cut_to_one_record_and_persists)
{
	struct store *st = sopen();
	uint64_t id = mkdisk(st, "vm", "base.img", 20 * MiB);
	size_t len = REC_DATA_MAX + 3 * MiB;
	unsigned char *buf = malloc(len), *got = malloc(len);
	struct statvfs sv;

	fill(buf, len, 11);
	ck_assert_int_eq(store_write(st, id, buf, len, 100), (ssize_t)REC_DATA_MAX);
	ck_assert_int_eq(store_write(st, id, buf + REC_DATA_MAX, len - REC_DATA_MAX, 100 + REC_DATA_MAX),
	    (ssize_t)(len - REC_DATA_MAX));
	ck_assert_int_eq(store_read(st, id, got, len, 100), (ssize_t)len);
	ck_assert_msg(memcmp(got, buf, len) == 0, "read back differs");
	ck_assert_int_eq(store_statfs(st, &sv), 0);
	ck_assert_uint_eq(sv.f_namemax, 200);
	st = reopen(st);
	memset(got, 0, len);
	ck_assert_int_eq(store_read(st, id, got, len, 100), (ssize_t)len);
	ck_assert_msg(memcmp(got, buf, len) == 0, "read back after reopen differs");
	ck_assert_int_eq(store_read(st, id, got, 100, 0), 100);
	ck_assert_msg(memcmp(got, tmpl_bytes, 100) == 0, "template head differs");
	store_close(st);
	free(buf);
	free(got);
}
END_TEST

START_TEST(seek_data_and_hole_follow_template_punches_and_writes)
{
	struct store *st = sopen();
	uint64_t id = mkdisk(st, "vm", "base.img", 0);
	uint64_t big = mkdisk(st, "big", "base.img", 3 * MiB);
	uint64_t res = 0;

	/* a fresh clone: all template data, the end is a hole */
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 0);
	ck_assert_int_eq(store_seek(st, id, 777, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 777);
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, TSIZE);
	ck_assert_int_eq(store_seek(st, id, TSIZE - 1, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, TSIZE - 1);
	/* past the disk end */
	ck_assert_int_eq(store_seek(st, id, TSIZE, SEEK_DATA, &res), -ENXIO);
	ck_assert_int_eq(store_seek(st, id, TSIZE, SEEK_HOLE, &res), -ENXIO);
	ck_assert_int_eq(store_seek(st, id, TSIZE + MiB, SEEK_HOLE, &res), -ENXIO);
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_SET, &res), -EINVAL);

	/* a punch in the middle */
	ck_assert_int_eq(store_zero(st, id, 256 * KiB, 256 * KiB, 1), 0);
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 256 * KiB);
	ck_assert_int_eq(store_seek(st, id, 256 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 512 * KiB);
	ck_assert_int_eq(store_seek(st, id, 300 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 512 * KiB);
	ck_assert_int_eq(store_seek(st, id, 300 * KiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 300 * KiB);
	ck_assert_int_eq(store_seek(st, id, 512 * KiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, TSIZE);
	/* written bytes inside the punch are data, in whole 4 KiB blocks as a file system's */
	ck_assert_int_eq(store_write(st, id, "abc", 3, 400 * KiB), 3);
	ck_assert_int_eq(store_seek(st, id, 256 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 400 * KiB);
	ck_assert_int_eq(store_seek(st, id, 400 * KiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 404 * KiB);
	ck_assert_int_eq(store_write(st, id, "d", 1, 450 * KiB + 5), 1);
	ck_assert_int_eq(store_seek(st, id, 404 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 448 * KiB);	/* the start of the block, never past a data byte */
	ck_assert_int_eq(store_seek(st, id, 450 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 450 * KiB);

	/* past the template's end, inside the disk: a hole until written, from the
	 * block after the template's last (TSIZE is not a block's end) */
	ck_assert_int_eq(store_seek(st, big, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, MiB + 4 * KiB);
	ck_assert_int_eq(store_seek(st, big, TSIZE, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, TSIZE);
	ck_assert_int_eq(store_seek(st, big, MiB + 4 * KiB, SEEK_DATA, &res), -ENXIO);
	ck_assert_int_eq(store_seek(st, big, TSIZE + 5, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, MiB + 4 * KiB);
	ck_assert_int_eq(store_seek(st, big, MiB + 5 * KiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, MiB + 5 * KiB);
	ck_assert_int_eq(store_write(st, big, "xyz", 3, 2 * MiB), 3);
	ck_assert_int_eq(store_seek(st, big, MiB + 4 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 2 * MiB);
	ck_assert_int_eq(store_seek(st, big, 2 * MiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 2 * MiB + 4 * KiB);
	ck_assert_int_eq(store_seek(st, big, 2 * MiB + 3, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 2 * MiB + 3);	/* in the data's block */
	ck_assert_int_eq(store_seek(st, big, 2 * MiB + 4 * KiB, SEEK_DATA, &res), -ENXIO);
	ck_assert_int_eq(store_seek(st, big, 3 * MiB - 1, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 3 * MiB - 1);
	ck_assert_int_eq(store_seek(st, big, 3 * MiB, SEEK_DATA, &res), -ENXIO);
	/* a shrink below the template end then a grow: zeros, so a hole */
	ck_assert_int_eq(store_resize(st, id, 100 * KiB, 0), 0);
	ck_assert_int_eq(store_resize(st, id, 2 * MiB, 0), 0);
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 100 * KiB);
	ck_assert_int_eq(store_seek(st, id, 100 * KiB, SEEK_DATA, &res), -ENXIO);
	store_close(st);
}
END_TEST

START_TEST(seek_passes_through_holes_of_a_sparse_template)
{
	struct store *st;
	unsigned char blk[64 * KiB];
	char p[256];
	uint64_t id, res = 0;
	int fd;
	off_t h;

	tmpl_path("sparse.img", p, sizeof(p));
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	fill(blk, sizeof(blk), 9);
	ck_assert_int_eq(pwrite(fd, blk, sizeof(blk), 0), (ssize_t)sizeof(blk));
	ck_assert_int_eq(pwrite(fd, blk, sizeof(blk), 3 * MiB), (ssize_t)sizeof(blk));
	ck_assert_int_eq(ftruncate(fd, 4 * MiB), 0);
	close(fd);
	fd = open(p, O_RDONLY);
	h = lseek(fd, 0, SEEK_HOLE);
	close(fd);
	if (h != (off_t)(64 * KiB))
		return;		/* this file system does not report holes: nothing to pass through */

	st = sopen();
	id = mkdisk(st, "vm", "sparse.img", 0);
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 64 * KiB);
	ck_assert_int_eq(store_seek(st, id, 64 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 3 * MiB);
	ck_assert_int_eq(store_seek(st, id, 3 * MiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 3 * MiB + 64 * KiB);
	ck_assert_int_eq(store_seek(st, id, 3 * MiB + 64 * KiB, SEEK_DATA, &res), -ENXIO);
	/* a write inside the template's hole is data */
	ck_assert_int_eq(store_write(st, id, "q", 1, MiB), 1);
	ck_assert_int_eq(store_seek(st, id, 64 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, MiB);
	ck_assert_int_eq(store_seek(st, id, MiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, MiB + 4 * KiB);
	{
		unsigned char got[64 * KiB];
		ck_assert_int_eq(store_read(st, id, got, sizeof(got), 3 * MiB), (ssize_t)sizeof(got));
		ck_assert(memcmp(got, blk, sizeof(got)) == 0);
		ck_assert_int_eq(store_read(st, id, got, 100, 2 * MiB), 100);
		for (int i = 0; i < 100; i++)
			ck_assert_uint_eq(got[i], 0);
	}
	store_close(st);
}
END_TEST

/* The newest segment's size, waiting up to 5 s for it to pass min (0: now). */
static int64_t
newest_size(int64_t min)
{
	char path[PATH_MAX];
	struct stat sb;

	newest_segment(path, sizeof(path));
	for (int i = 0; i < 500; i++) {
		ck_assert_int_eq(stat(path, &sb), 0);
		if (sb.st_size > min)
			break;
		usleep(10000);
	}
	return (int64_t)sb.st_size;
}

START_TEST(bench_switch_turns_the_filler_off)
{
	unsigned char blk[4096];
	struct store *st;
	uint64_t id;
	int64_t size;

	fill(blk, sizeof(blk), 5);
	setenv("HCOWFS_BENCH_FILL_AHEAD", "0", 1);
	st = sopen();
	unsetenv("HCOWFS_BENCH_FILL_AHEAD");
	id = mkdisk(st, "vm", "base.img", 20 * MiB);
	ck_assert_int_eq(store_write(st, id, blk, sizeof(blk), 0), (ssize_t)sizeof(blk));
	ck_assert_int_eq(store_sync(st, id), 0);
	size = newest_size(0);
	usleep(200000);
	ck_assert_int_eq(newest_size(0), size);		/* nothing written ahead */
	/* by default, zeros are written ahead of the tail (here from the first flush on) */
	st = reopen(st);
	ck_assert_int_eq(store_write(st, id, blk, sizeof(blk), 4096), (ssize_t)sizeof(blk));
	ck_assert_int_eq(store_sync(st, id), 0);
	ck_assert_int_gt(newest_size(size + (int64_t)MiB), size + (int64_t)MiB);
	store_close(st);
}
END_TEST

FIXTURE_MAIN(tc, "store", store_setup, 60)
{
	tcase_add_test(tc, unaligned_writes_across_boundaries_read_back_exactly);
	tcase_add_test(tc, read_across_hundreds_of_extents_is_assembled_in_order);
	tcase_add_test(tc, clones_are_isolated_and_template_file_is_unchanged);
	tcase_add_test(tc, zero_punches_in_place_or_grows_the_disk);
	tcase_add_test(tc, shrink_then_grow_reads_zeros_where_the_template_had_data);
	tcase_add_test(tc, writes_past_the_end_grow_the_disk);
	tcase_add_test(tc, write_larger_than_a_record_is_cut_to_one_record_and_persists);
	tcase_add_test(tc, seek_data_and_hole_follow_template_punches_and_writes);
	tcase_add_test(tc, seek_passes_through_holes_of_a_sparse_template);
	tcase_add_test(tc, bench_switch_turns_the_filler_off);
}
