/*
 * check_store_checkpoint: what survives close, reopen and checkpoints
 * (fs/store/checkpoint.c, dmap.c).  Extents cut by a shrink stay cut,
 * attributes persist, a checkpoint between writes changes nothing a reader
 * sees, and failed commits to the index lose nothing.
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
#include "store_int.h"

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
 * Commits to the index that fail leave each disk's frozen overlay in place:
 * readers still see it, the next writes go into a new overlay above it, the
 * next failure folds that overlay into it, and the first commit that
 * succeeds takes both.  A close whose final checkpoint fails leaves the log
 * to replay.  Every step reads as the model says, also after reopening.
 */
START_TEST(failed_index_commits_lose_nothing)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = new_vm(st, &m);

	OK(script(st, id, &m, 0));
	ck_assert_int_eq(store_checkpoint(st), 0);
	index_failing_io(st);
	index_failing = 1;
	OK(script(st, id, &m, 1));
	ck_assert_int_lt(store_checkpoint(st), 0);
	OK(check_disk(st, id, &m, 1));
	OK(op_resize(st, id, &m, 700 * KiB, 0));		/* unmaps what the layers below hold */
	OK(op_resize(st, id, &m, TSIZE + 300 * KiB, 0));
	OK(script(st, id, &m, 2));
	ck_assert_int_lt(store_checkpoint(st), 0);
	OK(check_disk(st, id, &m, 2));
	index_failing = 0;
	ck_assert_int_eq(store_checkpoint(st), 0);
	OK(check_disk(st, id, &m, 3));
	st = reopen(st);
	OK(check_disk(st, id, &m, 4));
	/* the final checkpoint of a close fails: the next open replays the log */
	index_failing_io(st);
	OK(script(st, id, &m, 0));
	index_failing = 1;
	store_close(st);
	index_failing = 0;
	st = sopen();
	check_and_close(st, id, &m, 5);
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
	tcase_add_test(tc, failed_index_commits_lose_nothing);
}
