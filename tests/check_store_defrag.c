/*
 * check_store_defrag: the defragmenter (fs/store/defrag.c) rewrites a disk
 * written in random order as one record per MiB, in logical order, keeping
 * every byte; a guest write racing it wins; disks sharing records with a
 * snapshot are left alone; a crash in the middle of a pass loses nothing.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store_int.h"	/* disk_extents_copy: the map's extents */
#include "store_fixture.h"

#define DSIZE	(8 * MiB)	/* the disk the tests fragment: 8 chunks */
#define BLOCK	4096u

/* The log extents of disk id now. */
static size_t
log_extents(struct store *st, uint64_t id)
{
	struct extent_batch b = { .grow = 1, .log_only = 1 };

	ck_assert_int_eq(disk_extents_copy(st, id, 0, UINT64_MAX, &b, NULL, 0), 0);
	free(b.e);
	return b.n;
}

/* Every 4 KiB block of disk id (DSIZE bytes) written once, in a random order; halfway, 3 MiB of other. */
static void
write_in_random_order(struct store *st, uint64_t id, struct model *m, uint64_t seed, uint64_t other)
{
	struct model om;

	uint32_t n = DSIZE / BLOCK, *order = malloc(n * sizeof(*order));
	struct rng r = { seed };

	ck_assert_ptr_nonnull(order);
	rshuffle(&r, order, n);
	for (uint32_t i = 0; i < n; i++) {
		if (i == n / 2) {
			model_init(&om, tmpl_bytes, TSIZE, 3 * MiB);
			OK(op_write(st, other, &om, 0, 3 * MiB, seed));
			model_free(&om);
		}
		OK(op_write(st, id, m, (uint64_t)order[i] * BLOCK, BLOCK, seed * 100000 + i));
	}
	free(order);
}

/*
 * A store with disk "vm" of DSIZE written in random order: its first half,
 * 3 MiB of another disk, its second half (so a sweep of the log reads
 * spans apart).
 */
static struct store *
fragmented_store(const struct store_opts *o, uint64_t *id, struct model *m)
{
	struct store *st = sopen_with(o);
	uint64_t other = mkdisk(st, "other", "base.img", 3 * MiB);

	*id = mkdisk(st, "vm", "base.img", DSIZE);
	model_init(m, tmpl_bytes, TSIZE, DSIZE);
	write_in_random_order(st, *id, m, 7, other);
	ck_assert_uint_ge(log_extents(st, *id), DSIZE / BLOCK / 2);
	return st;
}

/*
 * A disk whose every 4 KiB block was written in random order (2048 extents
 * scattered over the log) becomes one extent per MiB, reading the same, and
 * stays so across a reopen; a second pass finds nothing to do.  _i = 1: a
 * window of 2 MiB, so a pass sweeps the log four times.
 */
START_TEST(defrag_rewrites_a_randomly_written_disk_in_logical_order)
{
	struct store_opts o = opts();
	struct defrag_stats ds, t;
	struct sbuf sb = SBUF_INIT;
	struct model m;
	struct store *st;
	uint64_t id;

	o.defrag_window = _i ? 2 * MiB : 0;
	st = fragmented_store(&o, &id, &m);
	ck_assert_int_eq(store_defrag(st, 0, &ds), 0);
	ck_assert_uint_eq(ds.bytes_rewritten, DSIZE);
	ck_assert_uint_eq(ds.chunks, DSIZE / MiB);
	ck_assert_uint_eq(ds.raced, 0);
	ck_assert_uint_eq(ds.pending, 0);
	ck_assert_uint_ge(ds.bytes_read, DSIZE);
	ck_assert_uint_eq(log_extents(st, id), DSIZE / MiB);
	OK(check_disk(st, id, &m, 1));
	/* converged: nothing more to do, and the disk is not looked at again until it changes */
	ck_assert_int_eq(store_defrag(st, 0, &ds), 0);
	ck_assert_uint_eq(ds.bytes_rewritten, 0);
	ck_assert_uint_eq(ds.pending, 0);
	store_defrag_totals(st, &t);
	ck_assert_uint_eq(t.bytes_rewritten, DSIZE);
	ck_assert_uint_eq(t.passes, 2);
	ck_assert_msg(store_check(st, &sb) == 0, "%s", sbuf_str(&sb));
	st = reopen(st);
	ck_assert_uint_eq(log_extents(st, id), DSIZE / MiB);
	sbuf_release(&sb);
	check_and_close(st, id, &m, 2);
}
END_TEST

struct race {
	struct store	*st;
	uint64_t	 id;
	struct model	*m;
	int		 fired;
	int		 rc;
};

/* The defrag hook: before the rewrite of the third MiB, a guest writes into it. */
static void
race_write(void *arg, uint64_t id, uint64_t off)
{
	struct race *r = arg;

	if (r->fired || id != r->id || off != 2 * MiB)
		return;
	r->fired = 1;
	r->rc = op_write(r->st, id, r->m, 2 * MiB + 3 * BLOCK + 100, 5000, 4242);
}

/*
 * A guest write that lands between the sweep's read of a chunk and its
 * rewrite wins: the rewrite of that run is not applied (it would put the
 * old bytes back), and a later pass rewrites the chunk with the new bytes.
 */
START_TEST(defrag_loses_to_a_racing_guest_write)
{
	struct store_opts o = opts();
	struct defrag_stats ds;
	struct race r = { 0 };
	struct model m;
	struct store *st;
	uint64_t id, raced = 0;

	st = fragmented_store(&o, &id, &m);
	r = (struct race){ .st = st, .id = id, .m = &m };
	store_set_defrag_hook(st, race_write, &r);
	/* the write makes the disk busy: the pass stops after that chunk; later ones finish */
	for (int pass = 0; pass < 10; pass++) {
		ck_assert_int_eq(store_defrag(st, 0, &ds), 0);
		raced += ds.raced;
		if (pass > 0 && ds.pending == 0 && ds.bytes_rewritten == 0)
			break;
	}
	ck_assert_int_eq(r.fired, 1);
	ck_assert_msg(r.rc == 0, "%s", opfail);
	OK(check_disk(st, id, &m, 3));	/* the guest's bytes, not the chunk's old ones */
	ck_assert_uint_eq(raced, 1);
	ck_assert_uint_eq(ds.pending, 0);
	ck_assert_uint_eq(log_extents(st, id), DSIZE / MiB);
	st = reopen(st);
	check_and_close(st, id, &m, 4);
}
END_TEST

/*
 * A disk with a snapshot shares its records with it: rewriting them would
 * take their space twice, so the disk is left as it is (and so is the
 * snapshot).  Once the snapshot is deleted, the disk is defragmented.
 */
START_TEST(defrag_leaves_a_disk_with_a_snapshot_alone)
{
	struct store_opts o = opts();
	struct defrag_stats ds;
	struct model m;
	struct store *st;
	char err[512];
	uint64_t id;
	size_t before;

	st = fragmented_store(&o, &id, &m);
	ck_assert_int_eq(store_snapshot(st, "vm", "s1", NULL, NULL, err, sizeof(err)), 0);
	before = log_extents(st, id);
	ck_assert_int_eq(store_defrag(st, 0, &ds), 0);
	ck_assert_uint_eq(ds.bytes_rewritten, 0);
	ck_assert_uint_eq(ds.pending, 0);
	ck_assert_uint_eq(log_extents(st, id), before);
	ck_assert_int_eq(store_unlink(st, "vm@s1"), 0);
	ck_assert_int_eq(store_defrag(st, 0, &ds), 0);
	ck_assert_uint_eq(ds.bytes_rewritten, DSIZE);
	ck_assert_uint_eq(log_extents(st, id), DSIZE / MiB);
	check_and_close(st, id, &m, 5);
}
END_TEST

/* A disk busy within idle_ms is not touched, and counts as pending. */
START_TEST(defrag_waits_for_the_disk_to_be_idle)
{
	struct store_opts o = opts();
	struct defrag_stats ds;
	struct model m;
	struct store *st;
	uint64_t id;
	size_t before;

	st = fragmented_store(&o, &id, &m);
	before = log_extents(st, id);
	ck_assert_int_eq(store_defrag(st, 3600 * 1000, &ds), 0);
	ck_assert_uint_eq(ds.bytes_rewritten, 0);
	ck_assert_uint_eq(ds.pending, 2);	/* "vm" and "other", both just written */
	ck_assert_uint_eq(log_extents(st, id), before);
	check_and_close(st, id, &m, 6);
}
END_TEST

/* The store's own thread defragments a disk once it is idle (idle_ms short). */
START_TEST(defrag_thread_defragments_an_idle_disk)
{
	struct store_opts o = opts();
	struct defrag_stats t;
	struct model m;
	struct store *st;
	uint64_t id;

	o.defrag_idle_ms = 100;
	st = fragmented_store(&o, &id, &m);
	/* no timing asserted: the cap only ends a test that would hang */
	for (int i = 0; i < 600; i++) {
		store_defrag_totals(st, &t);
		if (t.bytes_rewritten == DSIZE && t.pending == 0)
			break;
		usleep(100 * 1000);
	}
	ck_assert_uint_eq(t.bytes_rewritten, DSIZE);
	ck_assert_uint_eq(log_extents(st, id), DSIZE / MiB);
	check_and_close(st, id, &m, 7);
}
END_TEST

/* The defrag hook of a child: die (as a worker killed mid-pass) before the fourth MiB. */
static void
die_at_fourth_chunk(void *arg, uint64_t id, uint64_t off)
{
	(void)arg;
	(void)id;
	if (off == 3 * MiB)
		_exit(0);
}

/*
 * A worker killed in the middle of a pass: the chunks rewritten before are
 * replayed as rewritten, the rest as they were, every byte the same; the
 * next pass finishes the job.
 */
START_TEST(defrag_killed_mid_pass_keeps_every_byte)
{
	struct store_opts o = opts();
	struct defrag_stats ds;
	struct sbuf sb = SBUF_INIT;
	struct model m;
	struct store *st;
	uint64_t id;
	size_t n;
	pid_t pid;
	int status;

	st = fragmented_store(&o, &id, &m);
	store_close(st);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char err[512];
		o.create = 0;
		if (store_open(&o, &st, err, sizeof(err)) != 0)
			_exit(10);
		store_set_defrag_hook(st, die_at_fourth_chunk, NULL);
		store_defrag(st, 0, &ds);
		_exit(11);	/* the hook did not fire */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status %#x)", status);
	st = sopen_with(&o);
	OK(check_disk(st, id, &m, 8));
	n = log_extents(st, id);
	ck_assert_msg(n > DSIZE / MiB && n <= DSIZE / BLOCK - 3 * (MiB / BLOCK) + 3,
	    "%zu extents: the first three MiB were not rewritten", n);
	ck_assert_msg(store_check(st, &sb) == 0, "%s", sbuf_str(&sb));
	ck_assert_int_eq(store_defrag(st, 0, &ds), 0);
	ck_assert_uint_eq(log_extents(st, id), DSIZE / MiB);
	sbuf_release(&sb);
	check_and_close(st, id, &m, 9);
}
END_TEST

FIXTURE_MAIN(tc, "store", store_setup, 60)
{
	tcase_add_loop_test(tc, defrag_rewrites_a_randomly_written_disk_in_logical_order, 0, 2);
	tcase_add_test(tc, defrag_loses_to_a_racing_guest_write);
	tcase_add_test(tc, defrag_leaves_a_disk_with_a_snapshot_alone);
	tcase_add_test(tc, defrag_waits_for_the_disk_to_be_idle);
	tcase_add_test(tc, defrag_thread_defragments_an_idle_disk);
	tcase_add_test(tc, defrag_killed_mid_pass_keeps_every_byte);
}
