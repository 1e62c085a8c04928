/*
 * check_store_flush: a disk's flush (store_sync, fs/store/diskio.c) makes
 * the log durable up to that disk's newest record, not up to the tail.
 *
 * What must not weaken: a flush covers every record of its disk appended
 * before it began, of every kind (a write, a zero range, a size change, a
 * shared range of a copy), by any thread, and, after a restart, whatever
 * an earlier life appended.  What it gains: a flush whose disk's records
 * are durable already does no fdatasync, however far other disks wrote on.
 * And the group commit gathers: the next fdatasync waits a little for as
 * many callers as the last one served.  Each test looks at the log's synced
 * mark and its count of fdatasyncs (wlog_int.h); the filler is off, so
 * nothing else moves either.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store_fixture.h"
#include "store_int.h"	/* st->log */
#include "wlog_int.h"	/* the log's synced mark and flush count */

/* Every record before this is durable. */
static uint64_t
durable(struct store *st)
{
	uint64_t v;

	pthread_mutex_lock(&st->log->sync_lock);
	v = st->log->synced;
	pthread_mutex_unlock(&st->log->sync_lock);
	return v;
}

/* The log's fdatasyncs for wlog_sync so far. */
static uint64_t
fdatasyncs(struct store *st)
{
	return atomic_load(&st->log->flushes);
}

/* The store opened with no filler: only flushes move the synced mark. */
static struct store *
sopen_no_filler(void)
{
	struct store *st;

	setenv("HCOWFS_BENCH_FILL_AHEAD", "0", 1);
	st = sopen();
	unsetenv("HCOWFS_BENCH_FILL_AHEAD");
	return st;
}

/* 4 KiB of seed's bytes at off of disk id, asserting success. */
static void
write_block(struct store *st, uint64_t id, uint64_t off, uint64_t seed)
{
	unsigned char blk[4096];

	fill(blk, sizeof(blk), seed);
	ck_assert_int_eq(store_write(st, id, blk, sizeof(blk), off), (ssize_t)sizeof(blk));
}

struct writer {
	struct store	*st;
	uint64_t	 id;
};

/* A write on another thread than the flush's. */
static void *
writer_thread(void *arg)
{
	struct writer *w = arg;

	write_block(w->st, w->id, 3 * 4096, 77);
	return NULL;
}

enum rec_kind { K_WRITE, K_ZERO, K_SIZE, K_SHARE, K_OTHER_THREAD, K_COUNT };

/*
 * A record of kind k on disk x (a clone of vm), then a write on disk y; a
 * flush of x must make x's record durable, whichever kind it is.
 */
START_TEST(a_flush_covers_every_kind_of_record_of_its_disk)
{
	static const char *what[] = { "write", "zero range", "size change", "shared range",
	    "write by another thread" };
	struct store *st = sopen_no_filler();
	uint64_t vm = mkdisk(st, "vm", "base.img", 2 * MiB);
	uint64_t x = clone_of(st, "vm", "x");
	uint64_t y = mkdisk(st, "y", "base.img", 2 * MiB);
	uint64_t before, upto;
	struct writer w = { st, x };
	pthread_t th;

	write_block(st, vm, 8192, 1);
	ck_assert_int_eq(store_sync(st, vm), 0);
	before = wlog_tail(st->log);
	switch (_i) {
	case K_WRITE:
		write_block(st, x, 4096, 2);
		break;
	case K_ZERO:
		ck_assert_int_eq(store_zero(st, x, 0, 4096, 1), 0);
		break;
	case K_SIZE:
		ck_assert_int_eq(store_resize(st, x, 3 * MiB, 1), 0);
		break;
	case K_SHARE:
		ck_assert_int_eq(store_copy_range(st, vm, 8192, x, 8192, 4096), 4096);
		/* a header, not the bytes: the range was shared (REC_SHARE), not copied */
		ck_assert_uint_lt(wlog_tail(st->log) - before, 4096);
		break;
	case K_OTHER_THREAD:
		ck_assert_int_eq(pthread_create(&th, NULL, writer_thread, &w), 0);
		pthread_join(th, NULL);
		break;
	}
	upto = wlog_tail(st->log);
	ck_assert_uint_gt(upto, before);
	write_block(st, y, 0, 3);
	ck_assert_uint_lt(durable(st), upto);
	ck_assert_int_eq(store_sync(st, x), 0);
	ck_assert_msg(durable(st) >= upto, "a flush of the disk left its %s not durable", what[_i]);
	store_close(st);
}
END_TEST

/*
 * Two disks: b's flush covered a's write, then b wrote on.  a's flush has
 * nothing to do; b's next one does its fdatasync.
 */
START_TEST(a_flush_finding_its_disk_durable_does_no_fdatasync)
{
	struct store *st = sopen_no_filler();
	uint64_t a = mkdisk(st, "a", "base.img", 2 * MiB);
	uint64_t b = mkdisk(st, "b", "base.img", 2 * MiB);
	uint64_t n;

	write_block(st, a, 0, 1);
	write_block(st, b, 0, 2);
	ck_assert_int_eq(store_sync(st, b), 0);
	n = fdatasyncs(st);
	write_block(st, b, 4096, 3);
	ck_assert_int_eq(store_sync(st, a), 0);
	ck_assert_uint_eq(fdatasyncs(st), n);
	ck_assert_int_eq(store_sync(st, b), 0);
	ck_assert_uint_eq(fdatasyncs(st), n + 1);
	ck_assert_uint_eq(durable(st), wlog_tail(st->log));
	store_close(st);
}
END_TEST

/*
 * A worker wrote and died without a flush; the next life's first flush of
 * that disk must make what it replayed durable, though this life appended
 * nothing for the disk.
 */
START_TEST(a_flush_after_a_restart_covers_what_the_earlier_life_appended)
{
	struct store *st = sopen_no_filler();
	uint64_t id = mkdisk(st, "vm", "base.img", 2 * MiB);
	int status;
	pid_t pid;

	store_close(st);
	if ((pid = fork()) == 0) {
		st = sopen_no_filler();
		write_block(st, id, 0, 9);
		_exit(0);	/* no close: no checkpoint, no sync */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(status, 0);
	st = sopen_no_filler();
	ck_assert_uint_lt(durable(st), wlog_tail(st->log));
	ck_assert_int_eq(store_sync(st, id), 0);
	ck_assert_uint_ge(durable(st), wlog_tail(st->log));
	store_close(st);
}
END_TEST

struct flusher {
	struct store	*st;
	uint64_t	 id;
	int		 rc;
	atomic_int	 done;
};

/* A flush on its own thread; done once it returned. */
static void *
flusher_thread(void *arg)
{
	struct flusher *f = arg;

	f->rc = store_sync(f->st, f->id);
	atomic_store(&f->done, 1);
	return NULL;
}

/* Does a syncer own the next (or the current) fdatasync? */
static int
syncer_busy(struct wlog *w)
{
	int busy;

	pthread_mutex_lock(&w->sync_lock);
	busy = w->syncing;
	pthread_mutex_unlock(&w->sync_lock);
	return busy;
}

/*
 * The last fdatasync took in two callers (a group of two, its wait bound
 * raised so that the test does not race a clock): the next syncer waits for
 * a second caller, and one fdatasync serves both, the second caller's write
 * (appended while the first waited) included.  Without the wait, the first
 * fdatasync starts at once and the second caller needs one of its own.
 */
START_TEST(a_flush_gathers_as_many_callers_as_the_last_fdatasync_served)
{
	struct store *st = sopen_no_filler();
	uint64_t a = mkdisk(st, "a", "base.img", 2 * MiB);
	uint64_t b = mkdisk(st, "b", "base.img", 2 * MiB);
	struct flusher f = { st, a, -1, 0 };
	struct wlog *w = st->log;
	pthread_t th;
	uint64_t n;

	write_block(st, a, 0, 1);
	pthread_mutex_lock(&w->sync_lock);
	w->last_group = 2;
	w->last_sync_ns = INT64_C(40000000000);
	w->gather_max_ns = INT64_C(10000000000);
	pthread_mutex_unlock(&w->sync_lock);
	n = fdatasyncs(st);
	ck_assert_int_eq(pthread_create(&th, NULL, flusher_thread, &f), 0);
	/* the first caller owns the next fdatasync (or, without a wait, is done with it) */
	while (!syncer_busy(w) && !atomic_load(&f.done))
		usleep(1000);
	write_block(st, b, 0, 2);
	ck_assert_int_eq(store_sync(st, b), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(f.rc, 0);
	ck_assert_uint_eq(fdatasyncs(st), n + 1);
	ck_assert_uint_eq(durable(st), wlog_tail(st->log));
	store_close(st);
}
END_TEST

FIXTURE_MAIN(tc, "store", store_setup, 60)
{
	tcase_add_loop_test(tc, a_flush_covers_every_kind_of_record_of_its_disk, 0, K_COUNT);
	tcase_add_test(tc, a_flush_finding_its_disk_durable_does_no_fdatasync);
	tcase_add_test(tc, a_flush_after_a_restart_covers_what_the_earlier_life_appended);
	tcase_add_test(tc, a_flush_gathers_as_many_callers_as_the_last_fdatasync_served);
}
