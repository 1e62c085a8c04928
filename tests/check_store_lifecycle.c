/*
 * check_store_lifecycle: snapshots, clones and rollback (fs/store/lifecycle.c)
 * read as their models say, live, after a reopen, after a crash whose copies
 * only the log holds, after a takeover whose snapshot area is of any moment
 * (older than the index, inside a checkpoint); the cleaner copies a record
 * several disks share once; a record of another family is never served;
 * snapshots are read-only.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store_fixture.h"
#include "store_int.h"

static uint64_t
snap(struct store *st, const char *disk, const char *name)
{
	struct disk_attr a;
	char err[512] = "";
	int rc = store_snapshot(st, disk, name, NULL, &a, err, sizeof(err));

	ck_assert_msg(rc == 0, "snapshot %s@%s: %d (%s)", disk, name, rc, err);
	ck_assert(a.snapshot);
	return a.id;
}

static void
rollback(struct store *st, const char *disk, const char *name)
{
	char err[512] = "";
	int rc = store_rollback(st, disk, name, err, sizeof(err));

	ck_assert_msg(rc == 0, "rollback %s to %s: %d (%s)", disk, name, rc, err);
}

/* The lookup id of a name users write, asserting it exists. */
static uint64_t
id_of(struct store *st, const char *name)
{
	struct disk_attr a;

	ck_assert_int_eq(store_lookup_full(st, name, &a), 0);
	return a.id;
}

/*
 * The three operations on a live store, each model checked after every
 * step and after a reopen: a snapshot keeps its bytes while the disk
 * changes, clones of it and of the disk's present state are independent,
 * a rollback brings the snapshot's bytes and size back.
 */
START_TEST(snapshot_clone_rollback_read_their_models)
{
	struct store *st = sopen();
	struct model vm, s1, c1, c2;
	uint64_t id = new_vm(st, &vm), sid, c1id, c2id;

	OK(script(st, id, &vm, 0));
	sid = snap(st, "vm", "s1");
	model_copy(&s1, &vm);
	OK(script(st, id, &vm, 1));
	OK(check_disk(st, sid, &s1, 1));
	OK(check_disk(st, id, &vm, 2));
	c1id = clone_of(st, "vm@s1", "c1");
	model_copy(&c1, &s1);
	OK(op_write(st, c1id, &c1, 4096, 300000, 7));
	c2id = clone_of(st, "vm", "c2");
	model_copy(&c2, &vm);
	OK(op_zero(st, c2id, &c2, 100, 200000, 1));
	OK(check_disk(st, sid, &s1, 3));
	OK(check_disk(st, id, &vm, 4));
	rollback(st, "vm", "s1");
	model_free(&vm);
	model_copy(&vm, &s1);
	OK(check_disk(st, id, &vm, 5));
	OK(check_disk(st, c1id, &c1, 6));
	OK(check_disk(st, c2id, &c2, 7));
	OK(op_write(st, id, &vm, 777, 5000, 8));
	st = reopen(st);
	OK(check_disk(st, id, &vm, 8));
	OK(check_disk(st, sid, &s1, 9));
	OK(check_disk(st, c1id, &c1, 10));
	OK(check_disk(st, c2id, &c2, 11));
	ck_assert_uint_eq(id_of(st, "vm@s1"), sid);
	/* who holds what, as list and status say it */
	{
		struct disk_attr a;
		ck_assert_int_eq(store_lookup(st, "vm", &a), 0);
		ck_assert_uint_eq(a.snapshots, 1);
		ck_assert_str_eq(a.origin, "");
		ck_assert_int_eq(store_lookup(st, "c1", &a), 0);
		ck_assert_str_eq(a.origin, "vm@s1");
		ck_assert_int_eq(store_lookup(st, "c2", &a), 0);
		ck_assert_str_eq(a.origin, "vm");
	}
	model_free(&c2);
	model_free(&c1);
	model_free(&s1);
	check_and_close(st, id, &vm, 12);
}
END_TEST

/*
 * Every checkpoint fails (the index's disk is failing) while copies are
 * made and the disks written around them, and the store is then closed
 * without one (a crash, as far as the index goes): the next open rebuilds
 * every copy from the REC_CLONE records alone, including a clone of a
 * clone and a rollback made in the same stretch of log.
 */
START_TEST(copies_only_the_log_holds_are_replayed)
{
	struct store *st = sopen();
	struct model vm, s1, c1, c2;
	uint64_t id = new_vm(st, &vm), sid, c1id, c2id;

	OK(script(st, id, &vm, 0));
	ck_assert_int_eq(store_checkpoint(st), 0);
	index_failing_io(st);
	index_failing = 1;
	OK(script(st, id, &vm, 1));
	sid = snap(st, "vm", "s1");
	model_copy(&s1, &vm);
	c1id = clone_of(st, "vm@s1", "c1");
	model_copy(&c1, &s1);
	OK(op_write(st, c1id, &c1, 70000, 90000, 3));
	c2id = clone_of(st, "c1", "c2");
	model_copy(&c2, &c1);
	OK(op_write(st, c1id, &c1, 1000, 3000, 4));	/* after c2's copy: not in c2 */
	OK(script(st, id, &vm, 2));
	rollback(st, "vm", "s1");
	model_free(&vm);
	model_copy(&vm, &s1);
	OK(op_write(st, id, &vm, 5, 50, 5));
	ck_assert_ptr_nonnull(st->disks);
	ck_assert(disk_get(st, c2id)->root_pending);
	store_close(st);		/* its final checkpoint fails too */
	index_failing = 0;
	st = sopen();
	OK(check_disk(st, id, &vm, 1));
	OK(check_disk(st, sid, &s1, 2));
	OK(check_disk(st, c1id, &c1, 3));
	OK(check_disk(st, c2id, &c2, 4));
	/* and once a checkpoint holds them, from the index */
	ck_assert_int_eq(store_checkpoint(st), 0);
	ck_assert(!disk_get(st, c2id)->root_pending);
	st = reopen(st);
	OK(check_disk(st, sid, &s1, 5));
	OK(check_disk(st, c1id, &c1, 6));
	OK(check_disk(st, c2id, &c2, 7));
	model_free(&c2);
	model_free(&c1);
	model_free(&s1);
	check_and_close(st, id, &vm, 8);
}
END_TEST

/*
 * The moments of the dead worker's script (below) at which it writes its
 * snapshot area, the last time: AT_ANY, once after s1 with its checkpoint
 * thread free to write it at any later moment (every 100 ms); the others
 * with the thread stopped, after each step, and inside its checkpoint after
 * each of its steps (the overlays frozen; the index committed; the new trees
 * published, the catalog not yet written).
 */
enum area_moment {
	AT_ANY, AT_SNAPSHOT_S1, AT_WRITE_50, AT_S2_LOGGED, AT_SNAPSHOT_S2, AT_WRITE_51,
	AT_CP_FROZEN, AT_CP_COMMITTED, AT_CP_PUBLISHED, AT_CHECKPOINT, AT_WRITE_9, AT_COUNT
};

static struct store *moment_st;
static int moment_wanted, moment_hits, moment_failed;

/* The area written at the chosen moment, and only then. */
static void
moment_reached(int m)
{
	if (m == moment_wanted && moment_hits++ == 0 && handoff_write(moment_st) != 0)
		moment_failed = 1;
}

/* A copy hook: s2's REC_CLONE is in the log and applied, its row not yet in the catalog. */
static void
moment_copy_hook(void *arg, enum copy_step s)
{
	(void)arg;
	if (s == COPY_LOGGED)
		moment_reached(AT_S2_LOGGED);
}

/* A checkpoint hook: the moments inside the checkpoint. */
static void
moment_cp_hook(void *arg, enum checkpoint_step s)
{
	(void)arg;
	moment_reached(s == CHECKPOINT_FROZEN ? AT_CP_FROZEN : s == CHECKPOINT_COMMITTED ?
	    AT_CP_COMMITTED : AT_CP_PUBLISHED);
}

/*
 * The dead worker (a child process): a script, snapshot s1, a write,
 * snapshot s2, a write, a checkpoint, a write, its area written at moment m;
 * the exit status says which step failed.
 */
static void
dead_worker(struct store_opts *o, uint64_t id, struct model *vm, int m)
{
	struct store *st;
	char err[512];

	if (store_open(o, &st, err, sizeof(err)) != 0)
		_exit(10);
	if (m != AT_ANY) {
		checkpoint_stop(st);
		pthread_join(st->cp_thread, NULL);
		st->cp_running = 0;
	}
	moment_st = st;
	moment_wanted = m == AT_ANY ? AT_SNAPSHOT_S1 : m;
	if (script(st, id, vm, 0) != 0 || op_resize(st, id, vm, 2 * MiB, 0) != 0 ||
	    store_snapshot(st, "vm", "s1", NULL, NULL, err, sizeof(err)) != 0)
		_exit(11);
	moment_reached(AT_SNAPSHOT_S1);
	if (op_write(st, id, vm, 0, 4096, 50) != 0)
		_exit(12);
	moment_reached(AT_WRITE_50);
	store_set_copy_hook(st, moment_copy_hook, NULL);
	if (store_snapshot(st, "vm", "s2", NULL, NULL, err, sizeof(err)) != 0)
		_exit(13);
	store_set_copy_hook(st, NULL, NULL);
	moment_reached(AT_SNAPSHOT_S2);
	if (op_write(st, id, vm, 100000, 50000, 51) != 0)
		_exit(14);
	moment_reached(AT_WRITE_51);
	store_set_checkpoint_hook(st, moment_cp_hook, NULL);
	if (store_checkpoint(st) != 0)
		_exit(15);
	store_set_checkpoint_hook(st, NULL, NULL);
	moment_reached(AT_CHECKPOINT);
	if (op_write(st, id, vm, 10, 70000, 9) != 0 || store_sync(st, id) != 0)
		_exit(16);
	moment_reached(AT_WRITE_9);
	_exit(moment_hits > 0 && !moment_failed ? 0 : 17);
}

/*
 * A replacement takes a dead worker's snapshot area, whatever the moment it
 * was written at, and reads every disk as its model says, and so does the
 * store opened after the replacement's last checkpoint.  Mostly the index is
 * newer than the area: replay from the area's position goes over records the
 * index already holds, so at the snapshot's REC_CLONE the disk's view is not
 * as it was then (its tree already has the writes after it): the copy must
 * come from the index (the snapshot's committed tree), not from that view,
 * or the snapshot would hold writes made after it.  Inside the checkpoint,
 * between its commit and the disks getting their new trees, the area must
 * not name the new generation: a snapshot not yet cloned in the index would
 * load its source's new tree, which holds writes made after it.
 */
START_TEST(takeover_from_an_area_of_any_moment_keeps_every_copy)
{
	size_t cap = 64 * MiB;
	uint8_t *area;
	struct model vm, s1, s2;
	uint64_t id = fresh_store_with_disk(&vm);
	struct store_opts o = handoff_opts(&area, cap);
	struct store *st;
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		dead_worker(&o, id, &vm, _i);
	OK(script(NULL, id, &vm, 0));
	OK(op_resize(NULL, id, &vm, 2 * MiB, 0));
	model_copy(&s1, &vm);
	OK(op_write(NULL, id, &vm, 0, 4096, 50));
	model_copy(&s2, &vm);
	OK(op_write(NULL, id, &vm, 100000, 50000, 51));
	OK(op_write(NULL, id, &vm, 10, 70000, 9));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status %#x)", status);
	o.takeover = 1;
	st = sopen_with(&o);
	ck_assert(st->from_area);
	OK(check_disk(st, id, &vm, 1));
	OK(check_disk(st, id_of(st, "vm@s1"), &s1, 2));
	OK(check_disk(st, id_of(st, "vm@s2"), &s2, 3));
	st = reopen(st);
	OK(check_disk(st, id, &vm, 4));
	OK(check_disk(st, id_of(st, "vm@s1"), &s1, 5));
	OK(check_disk(st, id_of(st, "vm@s2"), &s2, 6));
	model_free(&s2);
	model_free(&s1);
	check_and_close(st, id, &vm, 7);
	munmap(area, cap);	/* after the close: the store's checkpoint thread may write the area */
}
END_TEST

/*
 * The cleaner empties a segment whose records a disk, its snapshot and a
 * clone of the snapshot share: each shared record is copied once (the
 * others get a REC_LINK), so it moves about what is live once, not three
 * times; every disk reads right after the segment is gone, and after a
 * reopen that replays the links.
 */
START_TEST(cleaner_copies_a_shared_record_once)
{
	struct store *st = sopen();
	struct model vm, s1, c1, f;
	uint64_t id = mkdisk(st, "vm", "base.img", 8 * MiB), fid, sid, cid;
	struct clean_stats cs = { 0 };

	model_init(&vm, tmpl_bytes, TSIZE, 8 * MiB);
	for (uint64_t off = 0; off < 8 * MiB; off += MiB)
		OK(op_write(st, id, &vm, off, MiB, 100 + off / MiB));
	sid = snap(st, "vm", "s1");
	model_copy(&s1, &vm);
	cid = clone_of(st, "vm@s1", "c1");
	model_copy(&c1, &s1);
	for (uint64_t off = 0; off < 4 * MiB; off += MiB)
		OK(op_write(st, id, &vm, off, MiB, 200 + off / MiB));
	/* dead bytes, to seal the segment and make it worth cleaning */
	fid = mkdisk(st, "filler", "base.img", 2 * MiB);
	model_init(&f, tmpl_bytes, TSIZE, 2 * MiB);
	for (int i = 0; i < 12; i++)
		OK(op_write(st, fid, &f, 0, MiB, 300 + (uint64_t)i));
	ck_assert_int_eq(store_checkpoint(st), 0);
	ck_assert_int_eq(store_clean(st, 1, &cs), 0);
	ck_assert_uint_ge(cs.segments_released, 1);
	/* live in segment 1: s1's 8 MiB (c1 and half of vm share them), vm's 4 MiB, filler's 1 MiB */
	ck_assert_msg(cs.bytes_moved <= 14 * MiB, "moved %llu bytes: shared records copied "
	    "more than once", (unsigned long long)cs.bytes_moved);
	OK(check_disk(st, id, &vm, 1));
	OK(check_disk(st, sid, &s1, 2));
	OK(check_disk(st, cid, &c1, 3));
	OK(check_disk(st, fid, &f, 4));
	st = reopen(st);
	OK(check_disk(st, sid, &s1, 5));
	OK(check_disk(st, cid, &c1, 6));
	ck_assert_int_eq(store_checkpoint(st), 0);
	st = reopen(st);
	OK(check_disk(st, cid, &c1, 7));
	model_free(&f);
	model_free(&c1);
	model_free(&s1);
	check_and_close(st, id, &vm, 8);
}
END_TEST

/* A map that points at another family's record (a bug, or damage) reads EIO, never its bytes. */
START_TEST(another_familys_record_is_never_served)
{
	struct store *st = sopen();
	struct model vm, other;
	uint64_t id = new_vm(st, &vm), oid = mkdisk(st, "other", "base.img", 0);
	struct extent_batch b = { .grow = 1, .log_only = 1 };
	char buf[4096];
	struct disk *d;

	model_init(&other, tmpl_bytes, TSIZE, TSIZE);
	OK(op_write(st, id, &vm, 0, 8192, 1));
	ck_assert_int_eq(disk_extents_copy(st, id, 0, UINT64_MAX, &b, NULL, 0), 0);
	ck_assert_uint_eq(b.n, 1);
	d = disk_get(st, oid);
	pthread_rwlock_wrlock(&d->lock);
	ck_assert_int_eq(dmap_set(d, 0, 4096, b.e[0].laddr), 0);
	pthread_rwlock_unlock(&d->lock);
	ck_assert_int_eq(store_read(st, oid, buf, sizeof(buf), 0), -EIO);
	/* a clone of vm is of its family: it reads vm's record */
	uint64_t cid = clone_of(st, "vm", "c");
	ck_assert_int_eq(store_read(st, cid, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ck_assert_mem_eq(buf, vm.b, sizeof(buf));
	free(b.e);
	model_free(&other);
	check_and_close(st, id, &vm, 1);
}
END_TEST

/*
 * What may not be done: write, zero, resize, chmod a snapshot (EROFS);
 * delete or rename over a disk that has snapshots (EBUSY); a name taken
 * (EEXIST) unless the same token retries; bad names (EINVAL); a missing
 * source (ENOENT); a rollback of an open disk, a delete of an open snapshot
 * (EBUSY); none changes a byte.
 * A deleted snapshot goes, and its tree with the next checkpoint.
 */
START_TEST(what_a_snapshot_refuses)
{
	struct store *st = sopen();
	struct model vm, s1;
	uint64_t id = new_vm(st, &vm), sid;
	struct disk_attr a;
	struct index_root r;
	char err[512];

	OK(op_write(st, id, &vm, 0, 100000, 1));
	ck_assert_int_eq(store_snapshot(st, "vm", "s1", "tok1", &a, err, sizeof(err)), 0);
	sid = a.id;
	ck_assert_str_eq(a.name, "vm@s1");
	model_copy(&s1, &vm);
	ck_assert_int_eq(store_write(st, sid, "x", 1, 0), -EROFS);
	ck_assert_int_eq(store_zero(st, sid, 0, 10, 1), -EROFS);
	ck_assert_int_eq(store_resize(st, sid, 10, 0), -EROFS);
	ck_assert_int_eq(store_setattr(st, sid, STORE_SET_MODE, 0666, 0, 0, 0), -EROFS);
	ck_assert_int_eq(store_unlink(st, "vm"), -EBUSY);
	mkdisk(st, "x", "base.img", 0);
	ck_assert_int_eq(store_rename(st, "x", "vm", 0), -EBUSY);
	ck_assert_int_eq(store_snapshot(st, "vm", "s1", "tok2", NULL, err, sizeof(err)), -EEXIST);
	ck_assert_int_eq(store_snapshot(st, "vm", "s1", "tok1", &a, err, sizeof(err)), 0);
	ck_assert_uint_eq(a.id, sid);
	ck_assert_int_eq(store_snapshot(st, "vm", "a/b", NULL, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(store_snapshot(st, "vm", ".x", NULL, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(store_snapshot(st, "nope", "s", NULL, NULL, err, sizeof(err)), -ENOENT);
	ck_assert_int_eq(store_clone(st, "vm@nope", "c", NULL, NULL, err, sizeof(err)), -ENOENT);
	ck_assert_int_eq(store_clone(st, "vm", "x", NULL, NULL, err, sizeof(err)), -EEXIST);
	ck_assert_int_eq(store_rollback(st, "vm", "nope", err, sizeof(err)), -ENOENT);
	ck_assert_int_eq(store_rollback(st, "x", "s1", err, sizeof(err)), -ENOENT);
	ck_assert_int_eq(store_open_disk(st, id), 0);
	ck_assert_int_eq(store_rollback(st, "vm", "s1", err, sizeof(err)), -EBUSY);
	ck_assert_msg(strstr(err, "open") != NULL, "the refusal says why: %s", err);
	store_release_disk(st, id);
	OK(check_disk(st, id, &vm, 1));
	OK(check_disk(st, sid, &s1, 2));
	/* its own tree from the first checkpoint on; deleted: gone, its tree after the next */
	ck_assert_int_eq(store_checkpoint(st), 0);
	ck_assert_int_eq(index_tree(st->ix, sid, &r), 0);
	/* not while a reader has it open */
	ck_assert_int_eq(store_open_disk(st, sid), 0);
	ck_assert_int_eq(store_unlink(st, "vm@s1"), -EBUSY);
	store_release_disk(st, sid);
	ck_assert_int_eq(store_unlink(st, "vm@s1"), 0);
	ck_assert_int_eq(store_lookup_full(st, "vm@s1", &a), -ENOENT);
	ck_assert_int_eq(store_checkpoint(st), 0);
	ck_assert_int_eq(index_tree(st->ix, sid, &r), -ENOENT);
	ck_assert_int_eq(store_unlink(st, "vm"), 0);
	model_free(&s1);
	model_free(&vm);
	store_close(st);
}
END_TEST

/* What a member of a family alone holds (family_own_bytes), by id. */
static uint64_t
own_of(struct store *st, uint64_t family, uint64_t id)
{
	uint64_t *ids, *own, v = UINT64_MAX;
	size_t n;

	ck_assert_int_eq(family_own_bytes(st, family, &ids, &own, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			v = own[i];
	free(ids);
	free(own);
	ck_assert_msg(v != UINT64_MAX, "disk %llu is not in family %llu", (unsigned long long)id,
	    (unsigned long long)family);
	return v;
}

/*
 * own bytes: what deleting a snapshot would give back.  Two snapshots of
 * the same moment share everything (0 each, before and after a checkpoint);
 * the disk overwriting half leaves the old half to them (still 0: both hold
 * it); one deleted, the other owns it; a clone of it shares it again, and
 * the clone overwriting a part gives that part back to the snapshot alone.
 */
START_TEST(own_bytes_count_what_nothing_else_holds)
{
	struct store *st = sopen();
	struct model vm;
	uint64_t id = mkdisk(st, "vm", "base.img", 2 * MiB), s1, s2, c;

	model_init(&vm, tmpl_bytes, TSIZE, 2 * MiB);
	OK(op_write(st, id, &vm, 0, MiB, 1));
	s1 = snap(st, "vm", "s1");
	s2 = snap(st, "vm", "s2");
	ck_assert_uint_eq(own_of(st, id, s1), 0);
	ck_assert_int_eq(store_checkpoint(st), 0);
	ck_assert_uint_eq(own_of(st, id, s2), 0);
	OK(op_write(st, id, &vm, 0, 512 * KiB, 2));
	ck_assert_uint_eq(own_of(st, id, s1), 0);
	ck_assert_uint_eq(own_of(st, id, s2), 0);
	ck_assert_uint_eq(own_of(st, id, id), 512 * KiB);
	ck_assert_int_eq(store_unlink(st, "vm@s2"), 0);
	ck_assert_uint_eq(own_of(st, id, s1), 512 * KiB);
	c = clone_of(st, "vm@s1", "c");
	ck_assert_uint_eq(own_of(st, id, s1), 0);
	ck_assert_int_eq(store_write(st, c, vm.b, 128 * KiB, 0), (ssize_t)(128 * KiB));
	ck_assert_uint_eq(own_of(st, id, s1), 128 * KiB);
	ck_assert_uint_eq(own_of(st, id, c), 128 * KiB);
	ck_assert_int_eq(store_checkpoint(st), 0);
	ck_assert_uint_eq(own_of(st, id, s1), 128 * KiB);
	check_and_close(st, id, &vm, 1);
}
END_TEST

FIXTURE_MAIN(tc, "store", store_setup, 120)
{
	tcase_add_test(tc, snapshot_clone_rollback_read_their_models);
	tcase_add_test(tc, copies_only_the_log_holds_are_replayed);
	tcase_add_loop_test(tc, takeover_from_an_area_of_any_moment_keeps_every_copy, 0, AT_COUNT);
	tcase_add_test(tc, cleaner_copies_a_shared_record_once);
	tcase_add_test(tc, another_familys_record_is_never_served);
	tcase_add_test(tc, what_a_snapshot_refuses);
	tcase_add_test(tc, own_bytes_count_what_nothing_else_holds);
}
