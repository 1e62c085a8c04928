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
 *                                   it takes target = tail, and does the fdatasync
 *                                   unlocked
 *   SYNCING   IDLE      syncer_run  the fdatasync succeeded: synced = target (if the
 *                                   file synced holds it), every waiter wakes and
 *                                   finds itself served or starts the next one
 *   SYNCING   BROKEN    syncer_run  the fdatasync failed: the page cache may have
 *                                   dropped the pages, so no later sync may succeed
 *
 * BROKEN lasts until the mount restarts: every wlog_sync() and wlog_append()
 * fails with -EIO.
 *
 * A lower file of the log: it calls no other file of it.  The first flush
 * starts the filler through w->first_flush (wlog.c sets it at open to
 * wlog_fill_start), so the group commit does not call up into the segments.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "hlog.h"
#include "wlog_int.h"

/*
 * Wait until no fdatasync of the log runs, then own the next one (1), with
 * *target = the tail then; 0 if the records before upto became durable
 * meanwhile; -EIO if the log is broken.
 */
static int
syncer_enter(struct wlog *w, uint64_t upto, uint64_t *target)
{
	int rc;

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
		if (!w->syncing) {
			w->syncing = 1;
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
 * As the owner (syncer_enter), fdatasync fd, the file of segment segno;
 * on success every record before target is durable (0: it says nothing of
 * records).  Hands the ownership on.  0 or -EIO (the log is broken then).
 */
static int
syncer_run(struct wlog *w, int fd, uint32_t segno, uint64_t target)
{
	int rc = 0;

	if (fdatasync(fd) < 0) {
		rc = -errno;
		hlog(HLOG_ERROR, "fdatasync of log segment %08x failed: %s; the log refuses "
		    "further writes until the mount restarts", segno, strerror(errno));
	}
	pthread_mutex_lock(&w->sync_lock);
	w->syncing = 0;
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

	if ((rc = syncer_enter(w, upto, &target)) <= 0)
		return rc;
	w->flushes++;
	if (w->fill_ahead && !w->filling && w->first_flush)
		w->first_flush(w);	/* the filler, from the first flush on */
	/* older segments were synced when the log rolled past them */
	return syncer_run(w, seg_fd(w, LADDR_SEG(target)), LADDR_SEG(target), target);
}

/* Make segment segno's file durable (fd), as the log's one syncer; 0 or -EIO. */
int
wlog_sync_segment(struct wlog *w, uint32_t segno, int fd)
{
	uint64_t target;
	int rc;

	if ((rc = syncer_enter(w, UINT64_MAX, &target)) < 0)
		return rc;
	return syncer_run(w, fd, segno, LADDR_SEG(target) == segno ? target : 0);
}
