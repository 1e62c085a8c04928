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
 *   - the newest segment is never released; a released one's file is
 *     removed (or kept as a spare) and its fd closed, so files and fds
 *     follow the live segments, not the history; numbers are never reused;
 *   - a released segment's predecessor, when present, is first cut down to
 *     its records' end: the released file's header said where that is, and
 *     open reads it from the file's size after that;
 *   - the pool holds at most WLOG_SPARES_MAX files (spare_lock: the cleaner
 *     adds, a roll takes), at most 1/8 of the file system, and none while
 *     the file system is short of space.
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
 *   SEALED          spare             wlog_release      renamed SSSSSSSS.spare, the directory
 *                                     (seg_to_spare)    fsync'ed; its fd closed (the pool has a dup)
 *   SEALED          -                 wlog_release      removed (no room for a spare (statvfs));
 *                                                       its fd closed
 *   header-only     -                 seg_remove        (at open) a segment released by an older
 *                                                       build, which kept its header
 *   found at open   spare             wlog_take_spares  (in wlog.c, at open) beyond
 *                                                       WLOG_SPARES_MAX: removed
 *   spare           -                 spares_drop       the file system is getting full
 *
 * Crash states of reuse, each seen by wlog_open:
 *   release: the whole segment S (with or without its predecessor cut:
 *   nothing past its end matters), then S gone, maybe as SSSSSSSS.spare.  A
 *   whole S below the checkpoint is all dead: the cleaner releases it again.
 *   From older builds: a leftover SSSSSSSS.spare next to a whole S, or S
 *   header-only next to its old file as the spare (open removes S);
 *   roll: a spare with a new header but its old name (a spare), or the new
 *   segment with a durable header and stale records of its old life after
 *   it, which replay tells by their sequence numbers.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "fdio.h"
#include "clock.h"
#include "hlog.h"
#include "media.h"
#include "reccache.h"
#include "wlog_int.h"


/* Fill sh as the header of segment segno, the previous one's records ending at prev_end. */
void
seg_header_init(struct seg_header *sh, uint32_t segno, const uint8_t uuid[16], uint64_t prev_end)
{
	memset(sh, 0, sizeof(*sh));
	memcpy(sh->magic, SEG_MAGIC, sizeof(sh->magic));
	sh->version = LOG_FORMAT_VERSION;
	sh->header_size = sizeof(*sh);
	sh->segno = segno;
	memcpy(sh->store_uuid, uuid, 16);
	sh->prev_end = prev_end;
	sh->crc = crc32c(0, sh, sizeof(*sh));
}

/* The file names of segment segno and of a spare that was segment segno. */
void
seg_name(uint32_t segno, char *buf, size_t len)
{
	snprintf(buf, len, "%08x.seg", segno);
}

void
spare_name(uint32_t segno, char *buf, size_t len)
{
	snprintf(buf, len, "%08x.spare", segno);
}

/*
 * Set segment segno's fd in the table, making its chunk first if needed
 * (only open and a roll, under the log lock, make chunks); 0 or -ENOMEM.
 */
int
seg_table_set(struct wlog *w, uint32_t segno, int fd)
{
	struct segtab_chunk *c = seg_chunk(w, segno);

	if (segno == 0 || segno >= WLOG_SEGMENTS_MAX)
		return -ENOSPC;
	if (!c) {
		if (!(c = calloc(1, sizeof(*c))))
			return -ENOMEM;
		atomic_store_explicit(&w->segtab[segno / SEGTAB_CHUNK], c, memory_order_release);
	}
	c->fd[segno % SEGTAB_CHUNK] = fd + 1;
	return 0;
}

/* Note where sealed segment segno's records end (its entry exists). */
void
seg_table_set_end(struct wlog *w, uint32_t segno, uint64_t end)
{
	seg_chunk(w, segno)->end[segno % SEGTAB_CHUNK] = end;
}

/* Create segment segno with its header; returns the fd or -errno. */
int
seg_create(int dirfd, uint32_t segno, const uint8_t uuid[16], uint64_t prev_end)
{
	struct seg_header sh;
	char name[32];
	int fd, rc;

	seg_name(segno, name, sizeof(name));
	fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	seg_header_init(&sh, segno, uuid, prev_end);
	if (pwrite(fd, &sh, sizeof(sh), 0) != (ssize_t)sizeof(sh)) {
		rc = errno ? -errno : -EIO;
		close(fd);
		unlinkat(dirfd, name, 0);
		return rc;
	}
	return fd;
}

/*
 * A spare is kept only while the log's file system has more free than this,
 * and while the pool holds at most 1/SPARE_POOL_SHARE of the file system (as
 * the reserve, diskio.c): so a cleaner pass's releases (up to 8) all become
 * spares on a roomy file system, and a small one keeps few.
 */
#define SPARE_FREE_SEGMENTS	2	/* segment sizes */
#define SPARE_FREE_PCT		10	/* percent of the file system */
#define SPARE_POOL_SHARE	8

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
	int fd = -1, rc;

	if (next >= WLOG_SEGMENTS_MAX)
		return -ENOSPC;
	if ((rc = seg_table_set(w, next, -1)) < 0)	/* its table chunk, before anything changes */
		return rc;
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
		rc = -errno;
		char name[32];
		close(fd);
		seg_name(next, name, sizeof(name));
		unlinkat(w->dirfd, name, 0);
		return rc;
	}
	/* the filler moves on to the new segment with it */
	pthread_mutex_lock(&w->fill_lock);
	seg_table_set_end(w, w->last, prev_end);
	seg_table_set(w, next, fd);	/* cannot fail: the chunk exists */
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

/* Where sealed segment segno's records end; -EINVAL once released. */
int64_t
wlog_segment_bytes(const struct wlog *w, uint32_t segno)
{
	struct stat sb;
	int fd = seg_fd(w, segno);

	if (fd < 0 || segno > w->last || fstat(fd, &sb) < 0)
		return -EINVAL;
	if (segno == w->last)
		return w->replayed ? (int64_t)LADDR_OFF(w->tail) : (int64_t)sb.st_size;
	return (int64_t)((uint64_t)sb.st_size < seg_end(w, segno) ? (uint64_t)sb.st_size :
	    seg_end(w, segno));
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
 * pages.  1 or 0 (*avail = bytes free, *total = the file system's size), -1
 * if unknown.
 */
static int
log_fs_roomy(struct wlog *w, uint64_t keep, unsigned pct, uint64_t *avail, uint64_t *total)
{
	struct statvfs vfs;

	if (fstatvfs(w->dirfd, &vfs) < 0)
		return -1;
	*avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	*total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	return *avail > keep && (uint64_t)vfs.f_bavail * 100 > (uint64_t)vfs.f_blocks * pct;
}

/*
 * Is a spare of size bytes wanted?  Not when the pool is full, nor when the
 * file system is short of space.
 */
static int
spare_wanted(struct wlog *w, uint64_t size)
{
	uint64_t avail, total, pool;
	int n, roomy;

	pthread_mutex_lock(&w->spare_lock);
	n = w->nspares;
	pool = w->spare_bytes;
	pthread_mutex_unlock(&w->spare_lock);
	if ((roomy = log_fs_roomy(w, SPARE_FREE_SEGMENTS * w->segment_size, SPARE_FREE_PCT,
	    &avail, &total)) < 0)
		return 0;
	if (!roomy) {
		if (n > 0) {
			hlog(HLOG_INFO, "log: the file system is getting full (%llu MiB free); removing "
			    "the spare segment files", (unsigned long long)(avail >> 20));
			spares_drop(w);
		}
		return 0;
	}
	return n < WLOG_SPARES_MAX && (pool + size) * SPARE_POOL_SHARE <= total;
}

/*
 * Give released segment segno's file to the spare pool: renamed
 * SSSSSSSS.spare and the rename made durable (a crash leaves the whole
 * segment, released again later, or the spare).  1 when it is a spare now
 * (or gone: a failed directory fsync), 0 when the caller should remove it
 * instead (a step failed: logged).
 */
static int
seg_to_spare(struct wlog *w, uint32_t segno, int fd)
{
	char sname[32], gname[32];
	struct stat sb;
	int nfd;

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
	if ((unlinkat(w->dirfd, sname, 0) < 0 && errno != ENOENT) || fstat(fd, &sb) < 0 ||
	    renameat(w->dirfd, gname, w->dirfd, sname) < 0) {
		hlog(HLOG_WARN, "cannot keep the file of log segment %08x as a spare (%s): %s; "
		    "removing it instead", segno, sname, strerror(errno));
		return 0;
	}
	if ((nfd = dup(fd)) < 0 || fsync(w->dirfd) < 0) {
		/* the rename may not be durable: the old file must not get a new header */
		hlog(HLOG_WARN, "cannot keep the file of log segment %08x as a spare: %s; removing it",
		    segno, strerror(errno));
		if (nfd >= 0)
			close(nfd);
		unlinkat(w->dirfd, sname, 0);
		return 1;
	}
	pthread_mutex_lock(&w->spare_lock);
	w->spares[w->nspares++] = (struct spare){ nfd, segno, (uint64_t)sb.st_size,
	    (uint64_t)sb.st_size };
	w->spare_bytes += (uint64_t)sb.st_size;
	pthread_mutex_unlock(&w->spare_lock);
	return 1;
}

/*
 * Before segment segno's file goes: cut its predecessor, if present, down to
 * where its records end, which segno's header said and the predecessor's
 * file size will say from now on (wlog.c, at open).  Nothing reads past the
 * end; if the cut is lost in a crash, open takes a later end, which only
 * makes the segment look bigger to the cleaner.
 */
static void
seg_cut_prev(struct wlog *w, uint32_t segno)
{
	int fd = seg_fd(w, segno - 1);
	uint64_t end = seg_end(w, segno - 1);
	struct stat sb;

	if (fd < 0 || end < sizeof(struct seg_header) || fstat(fd, &sb) < 0 ||
	    (uint64_t)sb.st_size <= end)
		return;
	if (ftruncate(fd, (off_t)end) < 0)
		hlog(HLOG_WARN, "cannot cut log segment %08x to its end: %s", segno - 1, strerror(errno));
}

/* Drop segment segno, whose file is gone, from the table: its fd closed, `first` moved past it. */
static void
seg_forget(struct wlog *w, uint32_t segno)
{
	int fd = seg_fd(w, segno);

	seg_chunk(w, segno)->fd[segno % SEGTAB_CHUNK] = 0;
	close(fd);
	if (segno == w->first) {
		uint32_t s = segno + 1;
		while (s < w->last && seg_fd(w, s) < 0)
			s++;
		w->first = s;
	}
}

int
seg_remove(struct wlog *w, uint32_t segno)
{
	char name[32];

	seg_name(segno, name, sizeof(name));
	seg_cut_prev(w, segno);
	if (unlinkat(w->dirfd, name, 0) < 0)
		return -errno;
	seg_forget(w, segno);
	return 0;
}

int
wlog_release(struct wlog *w, uint32_t segno)
{
	int64_t size;
	int fd = seg_fd(w, segno), rc;

	if (w->readonly)
		return -EROFS;
	if (segno == 0 || segno >= w->last)
		return -EINVAL;		/* never the segment appends go to */
	if (fd < 0)
		return 0;		/* released before (numbers are never reused) */
	if ((size = wlog_segment_bytes(w, segno)) < 0)
		return (int)size;
	/* the medium's copy first: a local file left by a crash is dropped at the next open */
	if ((rc = w->media->ops->seg_release(w->media, segno)) < 0)
		return rc;
	if (w->cache)
		reccache_drop_segment(w->cache, segno);
	if (spare_wanted(w, (uint64_t)size)) {
		seg_cut_prev(w, segno);
		if (seg_to_spare(w, segno, fd)) {
			seg_forget(w, segno);
			goto out;
		}
	}
	if ((fd = seg_remove(w, segno)) < 0)
		return fd;
out:
	w->released += (uint64_t)size;
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
 * But once nothing was appended for FILL_IDLE_FILL_MS, the disk is free and
 * the filler fills all the way ahead, from the store's open on: a guest that
 * starts flushing after a pause (or after a fill of its disk) then finds its
 * zeros written, rather than waiting behind a chunk's journal commit at each of
 * its first flushes (eight 4 MiB chunks: 40 to 100 ms each on the modelled
 * HDD, more than a second of a fresh mount's first flushes before).
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
#define FILL_IDLE_FILL_MS	500	/* no append for this long: fill without flushes */
/* Zeros are written only while more than this is free (a spare needs more: it is bigger). */
#define FILL_FREE_AHEADS	4	/* times fill_ahead */
#define FILL_FREE_PCT		5	/* percent of the file system */

/* Under fill_lock: was nothing appended for FILL_IDLE_FILL_MS? */
static int
fill_log_idle(struct wlog *w)
{
	int64_t now = clock_mono_ns();

	if (w->tail != w->fill_seen_tail || !w->fill_seen_ns) {
		w->fill_seen_tail = w->tail;
		w->fill_seen_ns = now;
		return 0;
	}
	return now - w->fill_seen_ns >= (int64_t)FILL_IDLE_FILL_MS * 1000000;
}

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
	/* one chunk per flush at most (writes that are not flushed gain nothing from zeros), or more while idle */
	if (w->flushes == w->fill_flushes && !fill_log_idle(w))
		return 0;
	w->fill_flushes = w->flushes;
	n = target - start < chunk ? target - start : chunk;
	for (cnt = 0; cnt * sizeof(fill_zeros) < n; cnt++) {
		uint64_t left = n - cnt * sizeof(fill_zeros);
		iov[cnt] = (struct iovec){ (void *)fill_zeros,
		    left < sizeof(fill_zeros) ? left : sizeof(fill_zeros) };
	}
	if ((rc = fd_pwritev_all(sfd, iov, cnt, start)) < 0 || (*fd = dup(sfd)) < 0) {
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
	uint64_t avail, total;

	pthread_mutex_lock(&w->fill_lock);
	while (!w->fill_stop && !w->broken) {
		struct timespec until;
		int fd = -1, ms;

		int roomy = log_fs_roomy(w, FILL_FREE_AHEADS * w->fill_ahead, FILL_FREE_PCT,
		    &avail, &total);
		seg = roomy > 0 ? fill_chunk(w, &fd) : 0;
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

/*
 * Set how far ahead the filler writes, and start its thread if it is wanted
 * and not running.  From the start it fills only while the log is idle; a
 * chunk per flush once flushes come (fill_chunk).  A failure to start is
 * logged; appends extend the file then.
 */
int
wlog_set_fill(struct wlog *w, uint64_t ahead)
{
	int rc = 0;

	if (w->readonly || !w->replayed)
		return -EINVAL;
	pthread_mutex_lock(&w->fill_lock);
	w->fill_ahead = ahead;
	if (w->fill_ahead && !w->filling && !w->fill_stop) {
		if ((rc = pthread_create(&w->filler, NULL, filler_main, w)) == 0)
			w->filling = 1;
		else
			w->fill_ahead = 0;
	}
	pthread_cond_signal(&w->fill_cond);
	pthread_mutex_unlock(&w->fill_lock);
	if (rc)
		hlog(HLOG_WARN, "cannot start the log's filler: %s; flushes will cost more",
		    strerror(rc));
	return 0;
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
