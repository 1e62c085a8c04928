/*
 * wlog_sync: the group commit, making records durable.  See wlog.h for the
 * contract, wlog_int.h for the state.
 *
 * The group commit (under sync_lock), and the function that moves it on.
 * Every fdatasync of a log segment goes through it (a guest's flush, a
 * roll's full segment, the filler's zeros: wlog_sync_segment), so that no
 * two run at once: a failed writeback is reported to one fdatasync only,
 * and the one that sees it must break the log before any other can claim
 * the same pages durable.
 *
 *   from      to        by          when
 *   IDLE      SYNCING   syncer_     a caller's `upto` is beyond synced (wlog_sync),
 *                       enter       or a segment must be synced (wlog_sync_segment);
 *                                   wlog_sync's first gathers its group
 *                                   (syncer_gather, below), then it takes
 *                                   target = tail, and does the fdatasync unlocked
 *   SYNCING   IDLE      syncer_run  the fdatasync succeeded: synced = target (if the
 *                                   file synced holds it), every waiter wakes and
 *                                   finds itself served or starts the next one
 *   SYNCING   BROKEN    syncer_run  the fdatasync failed: the page cache may have
 *                                   dropped the pages, so no later sync may succeed
 *
 * BROKEN lasts until the mount restarts: every wlog_sync() and wlog_append()
 * fails with -EIO.
 *
 * Gathering.  The callers an fdatasync served go on at once: a guest that
 * flushes after each write writes and flushes again within a fraction of a
 * millisecond.  But by then the next fdatasync has started, for whoever came
 * during the last one, so with many flushing writers each rode every other
 * fdatasync.  So wlog_sync's syncer waits, before it takes its target, until
 * as many callers wait as the last one took in (last_group), or
 * for a quarter of the time the last fdatasync took, at most
 * WLOG_GATHER_MAX_NS, whichever comes first.  On a disk the wait is free:
 * after a flush the next sector of the log has just passed under the head,
 * and a write waits most of a revolution for it anyway.  On a fast device it
 * costs at most a quarter of a flush, and only when fewer callers came than
 * last time; a lone writer (a group of one) never waits.  What the wait
 * changes is only how much one fdatasync covers: target is taken after it.
 *
 * A lower file of the log: it calls no other file of it.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "hlog.h"
#include "media.h"
#include "wlog_int.h"

/* As the next syncer (sync_lock held), wait a little for as many callers as the last group had. */
static void
syncer_gather(struct wlog *w)
{
	int64_t wait = w->last_sync_ns / 4, end;
	struct timespec until;

	if (w->arrived >= w->last_group || wait <= 0)
		return;
	if (wait > w->gather_max_ns)
		wait = w->gather_max_ns;
	end = clock_mono_ns() + wait;
	until.tv_sec = end / 1000000000;
	until.tv_nsec = end % 1000000000;
	w->gathering = 1;
	while (w->arrived < w->last_group && !w->broken &&
	    pthread_cond_timedwait(&w->sync_cond, &w->sync_lock, &until) == 0)
		;
	w->gathering = 0;
}

/*
 * Wait until no fdatasync of the log runs, then own the next one (1), with
 * *target = the tail then; 0 if the records before upto became durable
 * meanwhile; -EIO if the log is broken.  gather: a caller of wlog_sync (a
 * guest's flush, a checkpoint, a copy), which counts in the groups and
 * gathers one; a segment's sync (wlog_sync_segment) does neither.
 */
static int
syncer_enter(struct wlog *w, uint64_t upto, int gather, uint64_t *target)
{
	int rc, counted = 0;

	pthread_mutex_lock(&w->sync_lock);
	for (;;) {
		if (w->broken) {
			rc = -EIO;
			break;
		}
		if (w->synced >= upto) {
			rc = 0;
			break;
		}
		if (gather && !counted) {
			counted = 1;
			w->arrived++;
			if (w->gathering)
				pthread_cond_broadcast(&w->sync_cond);
		}
		if (!w->syncing) {
			w->syncing = 1;
			if (gather) {
				syncer_gather(w);
				w->last_group = w->arrived;
				w->arrived = 0;
			}
			*target = w->tail;
			rc = 1;
			break;
		}
		pthread_cond_wait(&w->sync_cond, &w->sync_lock);
	}
	pthread_mutex_unlock(&w->sync_lock);
	return rc;
}

/*
 * As the owner (syncer_enter), make fd, the file of segment segno, durable
 * through the medium (fdatasync, or the bytes sent to the cluster) up to
 * upto; on success every record before target is durable (0: it says
 * nothing of records).  Hands the ownership on.  0 or -EIO (the log is
 * broken then).
 */
static int
syncer_run(struct wlog *w, int fd, uint32_t segno, uint64_t upto, uint64_t target)
{
	int64_t start = clock_mono_ns();
	int rc;

	if ((rc = w->media->ops->seg_sync(w->media, segno, fd, upto)) < 0)
		hlog(HLOG_ERROR, "sync of log segment %08x (%s) failed: %s; the log refuses "
		    "further writes until the mount restarts", segno, w->media->ops->name,
		    strerror(-rc));
	pthread_mutex_lock(&w->sync_lock);
	w->syncing = 0;
	w->last_sync_ns = clock_mono_ns() - start;
	if (rc < 0)
		w->broken = rc;
	else if (target > w->synced)
		w->synced = target;
	pthread_cond_broadcast(&w->sync_cond);
	pthread_mutex_unlock(&w->sync_lock);
	return rc < 0 ? -EIO : 0;
}

int
wlog_sync(struct wlog *w, uint64_t upto)
{
	uint64_t target;
	int rc;

	if ((rc = syncer_enter(w, upto, 1, &target)) <= 0)
		return rc;
	w->flushes++;
	/* older segments were synced when the log rolled past them */
	return syncer_run(w, seg_fd(w, LADDR_SEG(target)), LADDR_SEG(target), LADDR_OFF(target),
	    target);
}

/* Make segment segno's file durable (fd), as the log's one syncer; 0 or -EIO. */
int
wlog_sync_segment(struct wlog *w, uint32_t segno, int fd)
{
	uint64_t target;
	int rc;

	if ((rc = syncer_enter(w, UINT64_MAX, 0, &target)) < 0)
		return rc;
	if (LADDR_SEG(target) != segno)	/* the filler's zeros: no record */
		return syncer_run(w, fd, segno, 0, 0);
	return syncer_run(w, fd, segno, LADDR_OFF(target), target);
}
