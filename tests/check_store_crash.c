/*
 * check_store_crash: crash recovery (fs/store/store.c, handoff.c, the log's
 * replay).  A forked child works on the store and exits or is killed
 * without closing it; the parent reopens the store and finds every synced
 * byte: after a sync, with checkpoints racing the writes, with garbage after
 * the log tail, after a deleted disk, and when a new worker takes over from
 * a dead one's snapshot.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "logfmt.h"
#include "store_int.h"	/* handoff_write, cp_laddr: the takeover test looks inside */
#include "store_fixture.h"

enum crash_end { END_EXIT, END_KILL };

struct crash_plan {
	int	 parts[4];	/* script parts, -1 ends */
	int	 checkpoint_after;	/* index in parts after which to checkpoint, -1: never */
	unsigned checkpoint_ms;
	int	 concurrent_checkpoints;	/* the script runs in a thread while checkpoints loop */
	enum crash_end end;
};

struct script_job {
	struct store	*st;
	uint64_t	 id;
	struct model	*m;
	const struct crash_plan *plan;
	atomic_int	 done;
	int		 rc;
};

static void *
script_thread(void *arg)
{
	struct script_job *j = arg;

	j->rc = 0;
	for (int i = 0; i < 4 && j->plan->parts[i] >= 0 && j->rc == 0; i++)
		j->rc = script(j->st, j->id, j->m, j->plan->parts[i]);
	atomic_store(&j->done, 1);
	return NULL;
}

/* In the child: run the plan on the store and end without closing it. */
static void __attribute__((noreturn))
crash_child(uint64_t id, const struct crash_plan *plan)
{
	struct store_opts o = opts();
	struct store *st = NULL;
	struct model m;
	char err[512] = "";

	o.create = 0;
	if (plan->checkpoint_ms)
		o.checkpoint_ms = plan->checkpoint_ms;
	if (store_open(&o, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "child: store_open: %s\n", err);
		_exit(10);
	}
	/* the model is not checked here, only kept so the ops compute what they expect */
	m.b = calloc(1, MODEL_CAP);
	{
		struct disk_attr a;
		if (!m.b || store_getattr(st, id, &a) != 0 || store_read(st, id, m.b, a.size, 0) != (ssize_t)a.size)
			_exit(11);
		m.size = a.size;
	}
	if (plan->concurrent_checkpoints) {
		struct script_job j = { .st = st, .id = id, .m = &m, .plan = plan };
		pthread_t t;
		int n = 0;
		if (pthread_create(&t, NULL, script_thread, &j) != 0)
			_exit(12);
		while (!atomic_load(&j.done)) {
			if (store_checkpoint(st) != 0)
				_exit(13);
			n++;
		}
		pthread_join(t, NULL);
		if (j.rc != 0) {
			fprintf(stderr, "child: %s\n", opfail);
			_exit(14);
		}
		if (n < 2) {
			fprintf(stderr, "child: only %d checkpoints ran during the writes\n", n);
			_exit(15);
		}
	} else {
		for (int i = 0; i < 4 && plan->parts[i] >= 0; i++) {
			if (script(st, id, &m, plan->parts[i]) != 0) {
				fprintf(stderr, "child: %s\n", opfail);
				_exit(16);
			}
			if (i == plan->checkpoint_after && store_checkpoint(st) != 0)
				_exit(17);
			if (plan->checkpoint_ms) {
				struct timespec ts = { 0, 300 * 1000000L };
				nanosleep(&ts, NULL);
			}
		}
	}
	if (store_sync(st, id) != 0)
		_exit(18);
	if (plan->end == END_KILL)
		raise(SIGKILL);
	_exit(0);
}

/* Fork a child that runs plan and dies; apply the plan to the model here. */
static void
crash_run(uint64_t id, struct model *m, const struct crash_plan *plan)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		crash_child(id, plan);
	for (int i = 0; i < 4 && plan->parts[i] >= 0; i++)
		OK(script(NULL, id, m, plan->parts[i]));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (plan->end == END_KILL)
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		    "child did not die of SIGKILL (status %#x)", status);
	else
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child failed (status %#x)", status);
}

/*
 * A replacement worker starts from the map snapshot its predecessor left in
 * shared memory and replays only the log written after it; it must end up
 * exactly where the dead worker was.  _i: 0 = a sound snapshot (used),
 * 1 = its extents overwritten with garbage (refused, and the catalog plus
 * the log give the same result), 2 = a snapshot taken, then more disks'
 * worth of changes, then another snapshot (the newer half wins).
 */
START_TEST(takeover_from_snapshot_matches_the_dead_worker)
{
	size_t cap = 64 * MiB;
	uint8_t *area;
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	struct store_opts o = handoff_opts(&area, cap);
	struct store *st;
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct model cm;
		struct disk_attr a;
		char err[512];
		if (store_open(&o, &st, err, sizeof(err)) != 0)
			_exit(10);
		cm.b = calloc(1, MODEL_CAP);
		if (!cm.b || store_getattr(st, id, &a) != 0 ||
		    store_read(st, id, cm.b, a.size, 0) != (ssize_t)a.size)
			_exit(11);
		cm.size = a.size;
		if (script(st, id, &cm, 0) != 0 || handoff_write(st) != 0)
			_exit(12);
		if (_i == 2 && (script(st, id, &cm, 2) != 0 || handoff_write(st) != 0))
			_exit(13);
		/* after the snapshot: only in the log */
		if (script(st, id, &cm, 1) != 0 || store_sync(st, id) != 0)
			_exit(14);
		_exit(0);
	}
	OK(script(NULL, id, &m, 0));
	if (_i == 2)
		OK(script(NULL, id, &m, 2));
	OK(script(NULL, id, &m, 1));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status %#x)", status);
	if (_i == 1) {
		/* both halves: past the header and the first disk record, the extents */
		for (int half = 0; half < 2; half++)
			memset(area + (size_t)half * (cap / 2) + 128, 0xff, 4096);
	}
	o.takeover = 1;
	st = sopen_with(&o);
	/* which path ran (not cp_laddr, 0 from an area: the replacement checkpoints at once) */
	ck_assert_int_eq(st->from_area, _i != 1);
	OK(check_disk(st, id, &m, 40 + (uint64_t)_i));
	/* and it keeps working, and a later ordinary open agrees */
	OK(op_write(st, id, &m, 4321, 77777, 31));
	st = reopen(st);
	OK(check_disk(st, id, &m, 50 + (uint64_t)_i));
	store_close(st);
	munmap(area, cap);
	model_free(&m);
}
END_TEST

/*
 * A zero range past the end grows the disk and zeroes it in one record
 * (REC_F_GROW): with two, a crash between them left the disk grown but not
 * zeroed (found by tests/rigs/power-loss).  Also after a shrink that hid template
 * bytes, and a fallocate that only grows (one REC_SIZE).
 */
START_TEST(zero_past_the_end_is_one_record)
{
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	struct store *st;
	pid_t pid;
	int status;

	/* in a child that ends without a checkpoint, so the parent's open replays the records */
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct store_opts o = opts();
		char err[512];
		uint64_t seq;
		o.create = 0;
		if (store_open(&o, &st, err, sizeof(err)) != 0)
			_exit(10);
		if (op_write(st, id, &m, 1000, 300000, 5) || op_resize(st, id, &m, 500000, 0))
			_exit(11);
		seq = wlog_next_seq(st->log);
		if (op_zero(st, id, &m, 400000, 900000, 0) || wlog_next_seq(st->log) - seq != 1)
			_exit(12);	/* crosses the end: one record grows to 1300000 */
		seq = wlog_next_seq(st->log);
		if (op_zero(st, id, &m, 1400000, 1000, 0) || wlog_next_seq(st->log) - seq != 1)
			_exit(13);	/* past the end, leaving a gap */
		if (check_disk(st, id, &m, 80) || store_sync(st, id))
			_exit(14);
		_exit(0);
	}
	OK(op_write(NULL, id, &m, 1000, 300000, 5));
	OK(op_resize(NULL, id, &m, 500000, 0));	/* shrink: hides template bytes past it */
	OK(op_zero(NULL, id, &m, 400000, 900000, 0));
	OK(op_zero(NULL, id, &m, 1400000, 1000, 0));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status %#x)", status);
	ck_assert_uint_eq(m.size, 1401000);
	st = sopen();
	OK(check_disk(st, id, &m, 81));
	store_close(st);
	model_free(&m);
}
END_TEST

/* _i: 0 = the child exits without store_close, 1 = it is killed by SIGKILL */
START_TEST(crash_after_sync_loses_nothing)
{
	struct crash_plan p1 = { { 0, 1, -1 }, 0, 0, 0, _i ? END_KILL : END_EXIT };
	struct crash_plan p2 = { { 2, -1 }, -1, 0, 0, _i ? END_KILL : END_EXIT };
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	struct store *st;
	char seg[256];

	/* writes, a checkpoint, more writes (replayed on top of it), crash */
	crash_run(id, &m, &p1);
	ck_assert_uint_ge(newest_segment(seg, sizeof(seg)), 2);	/* the log rolled */
	st = sopen();
	OK(check_disk(st, id, &m, 1));
	store_close(st);

	/* again on top of the recovered store, without a checkpoint */
	crash_run(id, &m, &p2);
	st = sopen();
	OK(check_disk(st, id, &m, 2));
	/* and the recovered store keeps working */
	OK(op_write(st, id, &m, 12345, 54321, 999));
	st = reopen(st);
	check_and_close(st, id, &m, 3);
}
END_TEST

START_TEST(crash_with_checkpoints_racing_the_writes_loses_nothing)
{
	struct crash_plan p = { { 0, 1, -1 }, -1, 0, 1, END_KILL };
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);

	crash_run(id, &m, &p);
	check_and_close(sopen(), id, &m, 1);
}
END_TEST

START_TEST(checkpoint_thread_runs_and_crash_after_it_loses_nothing)
{
	struct crash_plan p = { { 0, 1, -1 }, -1, 50, 0, END_KILL };
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	struct catalog *cat = NULL;
	char path[256], err[512] = "";
	uint64_t laddr = 0, seq = 0;

	crash_run(id, &m, &p);
	/* the background thread moved the checkpoint past the start of the log */
	snprintf(path, sizeof(path), "%s/catalog.db", datadir);
	ck_assert_int_eq(catalog_open(path, 0, NULL, 0, &cat, err, sizeof(err)), 0);
	ck_assert_int_eq(catalog_checkpoint_pos(cat, &laddr, &seq), 0);
	catalog_close(cat);
	ck_assert_uint_gt(laddr, wlog_first_laddr());
	ck_assert_uint_gt(seq, 1);
	check_and_close(sopen(), id, &m, 1);
}
END_TEST

/*
 * After a crash, the newest segment ends in garbage (a write that never
 * completed).  _i: 0 = random bytes, 1 = a copy of an earlier record (stale
 * sequence number), 2 = half a record header.
 */
START_TEST(garbage_after_the_log_tail_is_cut_and_data_is_intact)
{
	struct crash_plan p = { { 0, 1, -1 }, 0, 0, 0, END_KILL };
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	unsigned char junk[5000];
	struct store *st;
	char seg[256];
	int64_t size;
	int fd;

	crash_run(id, &m, &p);
	newest_segment(seg, sizeof(seg));
	size = file_size(seg);
	ck_assert_int_gt(size, 64);
	if (_i == 0) {
		fill(junk, sizeof(junk), 4242);
	} else {
		fd = open(seg, O_RDONLY);
		ck_assert_int_eq(pread(fd, junk, sizeof(junk), 64), (ssize_t)sizeof(junk));
		close(fd);
	}
	fd = open(seg, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, junk, _i == 2 ? 40 : sizeof(junk)), _i == 2 ? 40 : (ssize_t)sizeof(junk));
	close(fd);

	st = sopen();
	/* the garbage was cut, at the end of the records (the filler's zeros may have been before it) */
	ck_assert_int_eq(file_size(seg), (int64_t)LADDR_OFF(wlog_tail(st->log)));
	ck_assert_int_le(file_size(seg), size);
	OK(check_disk(st, id, &m, 1));
	OK(op_write(st, id, &m, 777, 3333, 31337));		/* appends continue at the cut */
	ck_assert_int_eq(store_sync(st, id), 0);
	st = reopen(st);
	check_and_close(st, id, &m, 2);
}
END_TEST

/*
 * The child deletes a disk it wrote to (purged at once: nothing holds it
 * open) and creates another, then dies.  The log still holds records of the
 * deleted disk after the checkpoint: replay must skip them.
 */
START_TEST(crash_after_deleting_a_written_disk_replays_the_others)
{
	struct store *st = sopen();
	uint64_t ida = mkdisk(st, "a", "base.img", 0), idb = mkdisk(st, "b", "base.img", 0);
	struct model ma, mb;
	struct disk_attr at;
	pid_t pid;
	int status;

	store_close(st);
	model_init(&ma, tmpl_bytes, TSIZE, TSIZE);
	model_init(&mb, tmpl_bytes, TSIZE, TSIZE);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct store_opts o = opts();
		struct store *cs = NULL;
		char err[512] = "";
		struct disk_attr c;
		if (store_open(&o, &cs, err, sizeof(err)) != 0)
			_exit(10);
		if (op_write(cs, idb, &mb, 100, 200000, 1) || op_write(cs, ida, &ma, 1000, 300000, 2) ||
		    op_resize(cs, idb, &mb, 2 * MiB, 0) || op_write(cs, idb, &mb, MiB + 5000, 9000, 3))
			_exit(11);
		if (store_unlink(cs, "b") != 0 || store_getattr(cs, idb, &c) != -ENOENT)
			_exit(12);
		if (store_create(cs, "c", "base.img", 0, NULL, &c, err, sizeof(err)) != 0)
			_exit(13);
		if (op_write(cs, ida, &ma, 5000, 100, 4) || store_sync(cs, ida) != 0)
			_exit(14);
		raise(SIGKILL);
	}
	OK(op_write(NULL, ida, &ma, 1000, 300000, 2));
	OK(op_write(NULL, ida, &ma, 5000, 100, 4));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %#x", status);

	st = sopen();
	OK(check_disk(st, ida, &ma, 1));
	ck_assert_int_eq(store_getattr(st, idb, &at), -ENOENT);
	ck_assert_int_eq(store_lookup(st, "b", &at), -ENOENT);
	ck_assert_int_eq(store_lookup(st, "c", &at), 0);
	ck_assert_uint_gt(at.id, idb);				/* ids are not reused */
	model_free(&mb);
	model_init(&mb, tmpl_bytes, TSIZE, TSIZE);
	OK(check_disk(st, at.id, &mb, 2));
	model_free(&ma);
	model_free(&mb);
	store_close(st);
}
END_TEST

FIXTURE_MAIN(tc, "store", store_setup, 60)
{
	tcase_add_loop_test(tc, crash_after_sync_loses_nothing, 0, 2);
	tcase_add_loop_test(tc, takeover_from_snapshot_matches_the_dead_worker, 0, 3);
	tcase_add_test(tc, zero_past_the_end_is_one_record);
	tcase_add_test(tc, crash_with_checkpoints_racing_the_writes_loses_nothing);
	tcase_add_test(tc, checkpoint_thread_runs_and_crash_after_it_loses_nothing);
	tcase_add_loop_test(tc, garbage_after_the_log_tail_is_cut_and_data_is_intact, 0, 3);
	tcase_add_test(tc, crash_after_deleting_a_written_disk_replays_the_others);
}
