/*
 * wlog_segment: the life of segment files after open.  See wlog_int.h for
 * the state, logfmt.h for what a reused file may hold.
 *
 * Owns rolling to a new segment when the newest is full, giving a sealed
 * segment's records back (wlog_release, for the cleaner), and the pool of
 * spare files that a roll reuses instead of allocating a new file.
 *
 * Invariants:
 *   - a segment's header is never torn: it is made durable before the file
 *     has the segment's name, and a segment is fdatasync'ed before the next
 *     one is created, so only the newest can have a torn tail;
 *   - the newest segment is never released; a released one keeps its header,
 *     so segment numbers stay contiguous and the file stays ours;
 *   - the pool holds at most WLOG_SPARES_MAX files (spare_lock: the cleaner
 *     adds, a roll takes), and none while the file system is short of space.
 *
 * A segment file's states, and the function that moves it on:
 *
 *   from            to                by                how
 *   spare           NEWEST            wlog_roll         new header written and fdatasync'ed,
 *                                     (spare_reuse)     then renamed (RENAME_NOREPLACE); the
 *                                                       directory fsync'ed
 *   -               NEWEST            wlog_roll         created with its header (seg_create)
 *                                                       when there is no spare; directory fsync'ed
 *   NEWEST          SEALED            wlog_roll         fdatasync'ed before the next exists;
 *                                                       the next header's prev_end says its end
 *   SEALED          RELEASED + spare  wlog_release      a header-only copy made durable, exchanged
 *                                     (seg_to_spare)    with it (RENAME_EXCHANGE), the directory
 *                                                       fsync'ed: the old file is a spare
 *   SEALED          RELEASED          wlog_release      cut down to its header (no room for a
 *                                                       spare (statvfs), or no RENAME_EXCHANGE)
 *   found at open   spare             wlog_take_spares  (in wlog.c, at open) beyond
 *                                                       WLOG_SPARES_MAX: removed
 *   spare           -                 spares_drop       the file system is getting full
 *
 * Crash states of reuse, each seen by wlog_open:
 *   release: a leftover SSSSSSSS.spare next to a whole segment S (the spare
 *   is just a spare; releasing S again replaces it), or the exchanged pair;
 *   roll: a spare with a new header but its old name (a spare), or the new
 *   segment with a durable header and stale records of its old life after
 *   it, which replay tells by their sequence numbers.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "hlog.h"
#include "reccache.h"
#include "wlog_int.h"

/* A spare is kept only while the log's file system has more free than this. */
#define SPARE_FREE_SEGMENTS	2	/* segment sizes */
#define SPARE_FREE_PCT		10	/* percent of the file system */

/* Take a spare from the pool; 0 with *sp filled, or -ENOENT. */
static int
spare_take(struct wlog *w, struct spare *sp)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&w->spare_lock);
	if (w->nspares > 0) {
		*sp = w->spares[--w->nspares];
		w->spare_bytes -= sp->size;
		rc = 0;
	}
	pthread_mutex_unlock(&w->spare_lock);
	return rc;
}

/*
 * Make spare sp segment segno: its new header durable first, then its name
 * (the directory is fsync'ed by the caller).  A crash in between leaves a
 * spare with a new header, which is still just a spare.  The fd, or -errno
 * (the spare is then closed and removed: the caller creates a file instead).
 */
static int
spare_reuse(struct wlog *w, struct spare *sp, uint32_t segno, uint64_t prev_end)
{
	struct seg_header sh;
	char from[32], to[32];
	int rc;

	spare_name(sp->name, from, sizeof(from));
	seg_name(segno, to, sizeof(to));
	seg_header_init(&sh, segno, w->uuid, prev_end);
	if (pwrite(sp->fd, &sh, sizeof(sh), 0) != (ssize_t)sizeof(sh) || fdatasync(sp->fd) < 0)
		goto fail;
	rc = renameat2(w->dirfd, from, w->dirfd, to, RENAME_NOREPLACE);
	if (rc < 0 && (errno == EINVAL || errno == ENOSYS)) {
		/* no RENAME_NOREPLACE here; the log lock keeps anyone else from making `to` */
		rc = renameat(w->dirfd, from, w->dirfd, to);
	}
	if (rc < 0)
		goto fail;
	return sp->fd;
fail:
	rc = errno ? -errno : -EIO;
	hlog(HLOG_WARN, "cannot reuse spare log file %s as segment %08x: %s; creating it instead",
	    from, segno, strerror(-rc));
	close(sp->fd);
	unlinkat(w->dirfd, from, 0);
	return rc;
}

/* Start the next segment, in a spare if there is one.  The full one is made durable first. */
int
wlog_roll(struct wlog *w)
{
	uint32_t next = w->last + 1;
	uint64_t prev_end = LADDR_OFF(w->tail), fsize = sizeof(struct seg_header), stale = fsize;
	struct spare sp;
	int fd = -1;

	if (next >= WLOG_SEGMENTS_MAX)
		return -ENOSPC;
	if (wlog_sync_segment(w, w->last, seg_fd(w, w->last)) < 0)
		return -EIO;
	if (spare_take(w, &sp) == 0 && (fd = spare_reuse(w, &sp, next, prev_end)) >= 0) {
		fsize = sp.size > fsize ? sp.size : fsize;
		stale = sp.stale > stale ? sp.stale : stale;
	}
	if (fd < 0)
		fd = seg_create(w->dirfd, next, w->uuid, prev_end);
	if (fd < 0)
		return fd;
	if (fsync(w->dirfd) < 0) {
		int rc = -errno;
		char name[32];
		close(fd);
		seg_name(next, name, sizeof(name));
		unlinkat(w->dirfd, name, 0);
		return rc;
	}
	/* the filler moves on to the new segment with it */
	pthread_mutex_lock(&w->fill_lock);
	w->segend[w->last] = prev_end;
	w->segfd[next] = fd + 1;
	w->last = next;
	w->size += sizeof(struct seg_header);
	w->tail_fsize = fsize;
	w->stale_end = stale;
	w->tail = LADDR(next, sizeof(struct seg_header));
	pthread_cond_signal(&w->fill_cond);
	pthread_mutex_unlock(&w->fill_lock);
	return 0;
}

void
wlog_segments(const struct wlog *w, uint32_t *first, uint32_t *last)
{
	*first = w->first;
	*last = w->last;
}

/* Where sealed segment segno's records end now (its header alone once released); -errno. */
int64_t
wlog_segment_bytes(const struct wlog *w, uint32_t segno)
{
	struct stat sb;
	int fd = seg_fd(w, segno);

	if (fd < 0 || segno < w->first || segno > w->last || fstat(fd, &sb) < 0)
		return -EINVAL;
	if (segno == w->last)
		return w->replayed ? (int64_t)LADDR_OFF(w->tail) : (int64_t)sb.st_size;
	return (int64_t)((uint64_t)sb.st_size < w->segend[segno] ? (uint64_t)sb.st_size :
	    w->segend[segno]);
}

/* Remove every spare (the file system is getting full: give their space back). */
static void
spares_drop(struct wlog *w)
{
	struct spare sp;

	while (spare_take(w, &sp) == 0) {
		char name[32];
		spare_name(sp.name, name, sizeof(name));
		close(sp.fd);
		if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT)
			hlog(HLOG_WARN, "cannot remove spare log file %s: %s", name, strerror(errno));
	}
}

/*
 * Has the log's file system room for bytes written ahead of need (spares,
 * the filler's zeros): more than `keep` bytes and pct percent free?  Not
 * when it is short of space: those bytes would be missed by SQLite, the
 * snapshots, or the log itself more than a roll or an append misses fresh
 * pages.  1 or 0 (*avail = bytes free), -1 if unknown.
 */
static int
log_fs_roomy(struct wlog *w, uint64_t keep, unsigned pct, uint64_t *avail)
{
	struct statvfs vfs;

	if (fstatvfs(w->dirfd, &vfs) < 0)
		return -1;
	*avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return *avail > keep && (uint64_t)vfs.f_bavail * 100 > (uint64_t)vfs.f_blocks * pct;
}

/* Is a spare wanted?  Not when the pool is full, nor when the file system is short of space. */
static int
spare_wanted(struct wlog *w)
{
	uint64_t avail;
	int n, roomy;

	pthread_mutex_lock(&w->spare_lock);
	n = w->nspares;
	pthread_mutex_unlock(&w->spare_lock);
	if ((roomy = log_fs_roomy(w, SPARE_FREE_SEGMENTS * w->segment_size, SPARE_FREE_PCT,
	    &avail)) < 0)
		return 0;
	if (!roomy) {
		if (n > 0) {
			hlog(HLOG_INFO, "log: the file system is getting full (%llu MiB free); removing "
			    "the spare segment files", (unsigned long long)(avail >> 20));
			spares_drop(w);
		}
		return 0;
	}
	return n < WLOG_SPARES_MAX;
}

/*
 * Give segment segno's file to the spare pool: a header-only copy of it
 * (the same header bytes) is made durable as SSSSSSSS.spare, exchanged with
 * SSSSSSSS.seg, and the exchange made durable.  Every step is atomic: a
 * crash leaves the whole segment (released again later) or the exchanged
 * pair.  1 when it is a spare now, 0 when the caller should cut the segment
 * down instead (no RENAME_EXCHANGE here, or a step failed: logged).
 */
static int
seg_to_spare(struct wlog *w, uint32_t segno, int fd)
{
	struct seg_header sh;
	char sname[32], gname[32];
	struct stat sb;
	int nfd = -1;

	spare_name(segno, sname, sizeof(sname));
	seg_name(segno, gname, sizeof(gname));
	/* a leftover of an interrupted release of this segment: in the pool, or not */
	pthread_mutex_lock(&w->spare_lock);
	for (int i = 0; i < w->nspares; i++) {
		if (w->spares[i].name != segno)
			continue;
		close(w->spares[i].fd);
		w->spare_bytes -= w->spares[i].size;
		w->spares[i] = w->spares[--w->nspares];
		break;
	}
	pthread_mutex_unlock(&w->spare_lock);
	if (unlinkat(w->dirfd, sname, 0) < 0 && errno != ENOENT)
		goto fail;
	if (pread(fd, &sh, sizeof(sh), 0) != (ssize_t)sizeof(sh) || fstat(fd, &sb) < 0)
		goto fail;
	nfd = openat(w->dirfd, sname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (nfd < 0 || pwrite(nfd, &sh, sizeof(sh), 0) != (ssize_t)sizeof(sh) || fdatasync(nfd) < 0)
		goto fail;
	if (renameat2(w->dirfd, sname, w->dirfd, gname, RENAME_EXCHANGE) < 0) {
		if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
			close(nfd);
			unlinkat(w->dirfd, sname, 0);
			return 0;	/* quietly: this file system cannot; cut down as before */
		}
		goto fail;
	}
	/* segno's name is the header-only file now; nothing reads a released segment */
	w->segfd[segno] = nfd + 1;
	if (fsync(w->dirfd) < 0) {
		/* the exchange may not be durable: the old file must not get a new header */
		hlog(HLOG_WARN, "cannot fsync log directory after releasing segment %08x: %s; "
		    "not keeping its file", segno, strerror(errno));
		if (ftruncate(fd, (off_t)sizeof(sh)) < 0)
			hlog(HLOG_WARN, "cannot cut spare log file %s: %s", sname, strerror(errno));
		close(fd);
		return 1;
	}
	pthread_mutex_lock(&w->spare_lock);
	w->spares[w->nspares++] = (struct spare){ fd, segno, (uint64_t)sb.st_size,
	    (uint64_t)sb.st_size };
	w->spare_bytes += (uint64_t)sb.st_size;
	pthread_mutex_unlock(&w->spare_lock);
	return 1;
fail:
	hlog(HLOG_WARN, "cannot keep the file of log segment %08x as a spare (%s): %s; cutting it "
	    "down instead", segno, sname, strerror(errno));
	if (nfd >= 0) {
		close(nfd);
		unlinkat(w->dirfd, sname, 0);
	}
	return 0;
}

int
wlog_release(struct wlog *w, uint32_t segno)
{
	int64_t size;
	int fd = seg_fd(w, segno);

	if (w->readonly)
		return -EROFS;
	if (fd < 0 || segno < w->first || segno >= w->last)
		return -EINVAL;		/* never the segment appends go to */
	if ((size = wlog_segment_bytes(w, segno)) < 0)
		return (int)size;
	if ((uint64_t)size <= sizeof(struct seg_header))
		return 0;
	if (w->cache)
		reccache_drop_segment(w->cache, segno);
	/* the header stays: the segment numbers stay contiguous and the file stays ours */
	if (!(spare_wanted(w) && seg_to_spare(w, segno, fd)) &&
	    ftruncate(fd, (off_t)sizeof(struct seg_header)) < 0)
		return -errno;
	w->released += (uint64_t)size - sizeof(struct seg_header);
	return 0;
}

uint64_t
wlog_spare_bytes(const struct wlog *w)
{
	uint64_t tail = LADDR_OFF(w->tail), fsize = w->tail_fsize;

	return w->spare_bytes + (w->replayed && fsize > tail ? fsize - tail : 0);
}

/*
 * The filler.  An append that extends a file makes its fdatasync commit the
 * new size and block mapping through the file system's journal: on a disk,
 * two more writes, a second cache flush and two seeks for every guest flush
 * (docs/design.md).  Writing into blocks the file already has, and that
 * already hold written data, costs the data alone.  So a thread keeps the
 * newest segment written with zeros, made durable, fill_ahead bytes beyond
 * the tail (never past segment_size); an append lands in them, and the
 * zeros after the last record read as the end of the log (wlog_replay.c).
 * A reused spare's file is written already: the filler starts past its end.
 * It writes at most one chunk per flush (wlog_sync): between flushes,
 * buffered writes would only pay for their bytes twice (an A/B on the
 * modelled disk found no cost of the filler to them: docs/performance.md).
 *
 * The filler writes zeros only at tail_fsize and beyond, under fill_lock,
 * and moves tail_fsize past them once written; an append that would pass
 * tail_fsize takes fill_lock for its write.  Its fdatasync goes through the
 * group commit like any other (wlog_sync_segment), on a dup of the fd, so
 * that a segment released meanwhile is no concern.  When it falls behind,
 * appends extend the file as they always did: slower flushes, nothing else.
 */

/* Zeros the filler writes; FILL_IOV of them make one chunk. */
static const char fill_zeros[64 << 10];
#define FILL_CHUNK	(UINT64_C(4) << 20)
#define FILL_IOV	(FILL_CHUNK / sizeof(fill_zeros))
#define FILL_IDLE_MS	50	/* how often an idle filler looks at the tail */
#define FILL_RETRY_MS	1000	/* after a failed write */
#define FILL_WARM	(UINT64_C(1) << 20)	/* kept in the page cache past the tail */
/* Zeros are written only while more than this is free (a spare needs more: it is bigger). */
#define FILL_FREE_AHEADS	4	/* times fill_ahead */
#define FILL_FREE_PCT		5	/* percent of the file system */

/*
 * Under fill_lock: write a chunk of zeros (FILL_CHUNK, or half of
 * fill_ahead if less) at the newest segment's end, once that much is
 * missing of fill_ahead bytes past the tail.  The segment's number when
 * zeros were written (*fd: a dup of its fd, the caller's to close), 0 when
 * there was nothing to do, -errno when the write failed (the file is cut
 * back to where it was).
 */
static int64_t
fill_chunk(struct wlog *w, int *fd)
{
	uint64_t start = w->tail_fsize, target = LADDR_OFF(w->tail) + w->fill_ahead, n;
	uint64_t chunk = w->fill_ahead / 2 < FILL_CHUNK ? w->fill_ahead / 2 : FILL_CHUNK;
	struct iovec iov[FILL_IOV];
	int sfd = seg_fd(w, w->last), cnt, rc;

	if (target > w->segment_size)
		target = w->segment_size;
	target &= ~(uint64_t)(REC_BLOCK - 1);
	/* whole chunks only (but the segment's last): each costs a journal commit */
	if (start >= target || (target - start < chunk && target < w->segment_size))
		return 0;
	/* one chunk per flush at most: writes that are not flushed gain nothing from zeros */
	if (w->flushes == w->fill_flushes)
		return 0;
	w->fill_flushes = w->flushes;
	n = target - start < chunk ? target - start : chunk;
	for (cnt = 0; cnt * sizeof(fill_zeros) < n; cnt++) {
		uint64_t left = n - cnt * sizeof(fill_zeros);
		iov[cnt] = (struct iovec){ (void *)fill_zeros,
		    left < sizeof(fill_zeros) ? left : sizeof(fill_zeros) };
	}
	if ((rc = pwritev_all(sfd, iov, cnt, start)) < 0 || (*fd = dup(sfd)) < 0) {
		rc = rc < 0 ? rc : -errno;
		if (ftruncate(sfd, (off_t)start) < 0)
			hlog(HLOG_WARN, "cannot cut log segment %08x back after a failed fill: %s",
			    w->last, strerror(errno));
		return rc;
	}
	w->tail_fsize = start + n;
	return w->last;
}

/*
 * Under fill_lock: ask for the zeros just past the tail to be in the page
 * cache.  Written long ago (at a few hundred flushes a second, 32 MiB last
 * minutes), they may have been dropped as clean pages; an append covers
 * pages partly (records are not page-sized), so each would read one back
 * from the disk first, between two flushes.  One read ahead of need instead.
 */
static void
fill_warm(struct wlog *w)
{
	uint64_t tail = LADDR_OFF(w->tail);

	if (tail < w->tail_fsize)
		posix_fadvise(seg_fd(w, w->last), (off_t)tail, (off_t)FILL_WARM, POSIX_FADV_WILLNEED);
}

/* The filler thread: fill, sync, and look again; idle, a look every FILL_IDLE_MS. */
static void *
filler_main(void *arg)
{
	struct wlog *w = arg;
	int64_t seg = 0;
	uint64_t avail;

	pthread_mutex_lock(&w->fill_lock);
	while (!w->fill_stop && !w->broken) {
		struct timespec until;
		int fd = -1, ms;

		seg = log_fs_roomy(w, FILL_FREE_AHEADS * w->fill_ahead, FILL_FREE_PCT, &avail) > 0 ?
		    fill_chunk(w, &fd) : 0;
		if (seg > 0) {
			pthread_mutex_unlock(&w->fill_lock);
			wlog_sync_segment(w, (uint32_t)seg, fd);	/* a failure breaks the log */
			close(fd);
			pthread_mutex_lock(&w->fill_lock);
			continue;
		}
		if (seg < 0)
			hlog(HLOG_WARN, "cannot write ahead in log segment %08x: %s; appends extend it "
			    "instead", w->last, strerror((int)-seg));
		else
			fill_warm(w);
		ms = seg < 0 ? FILL_RETRY_MS : FILL_IDLE_MS;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)ms % 1000 * 1000000L;
		until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&w->fill_cond, &w->fill_lock, &until);
	}
	pthread_mutex_unlock(&w->fill_lock);
	return NULL;
}

int
wlog_set_fill(struct wlog *w, uint64_t ahead)
{
	if (w->readonly || !w->replayed)
		return -EINVAL;
	pthread_mutex_lock(&w->fill_lock);
	w->fill_ahead = ahead;
	pthread_cond_signal(&w->fill_cond);
	pthread_mutex_unlock(&w->fill_lock);
	return 0;
}

/*
 * Start the filler thread if it is wanted and not running.  wlog_sync()
 * calls it: a log that is never flushed gains nothing from writing its
 * blocks twice.  A failure is logged; appends extend the file then.
 */
void
wlog_fill_start(struct wlog *w)
{
	int rc = 0;

	pthread_mutex_lock(&w->fill_lock);
	if (w->fill_ahead && !w->filling && !w->fill_stop) {
		if ((rc = pthread_create(&w->filler, NULL, filler_main, w)) == 0)
			w->filling = 1;
		else
			w->fill_ahead = 0;	/* once is enough */
	}
	pthread_mutex_unlock(&w->fill_lock);
	if (rc)
		hlog(HLOG_WARN, "cannot start the log's filler: %s; flushes will cost more",
		    strerror(rc));
}

/* Stop the filler thread, if it runs (before the segments' fds are closed). */
void
wlog_fill_stop(struct wlog *w)
{
	pthread_mutex_lock(&w->fill_lock);
	if (!w->filling) {
		pthread_mutex_unlock(&w->fill_lock);
		return;
	}
	w->fill_stop = 1;
	pthread_cond_signal(&w->fill_cond);
	pthread_mutex_unlock(&w->fill_lock);
	pthread_join(w->filler, NULL);
	w->filling = 0;
	w->fill_stop = 0;
}
