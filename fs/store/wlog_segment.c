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
	uint64_t prev_end = LADDR_OFF(w->tail), fsize = sizeof(struct seg_header);
	struct spare sp;
	int fd = -1;

	if (next >= WLOG_SEGMENTS_MAX)
		return -ENOSPC;
	if (fdatasync(seg_fd(w, w->last)) < 0) {
		/* as in wlog_sync: the page cache may have dropped what failed to write */
		int rc = -errno;
		hlog(HLOG_ERROR, "fdatasync of log segment %08x failed: %s; the log refuses "
		    "further writes until the mount restarts", w->last, strerror(-rc));
		w->broken = rc;
		return -EIO;
	}
	if (spare_take(w, &sp) == 0 && (fd = spare_reuse(w, &sp, next, prev_end)) >= 0)
		fsize = sp.size > fsize ? sp.size : fsize;
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
	w->segend[w->last] = prev_end;
	w->segfd[next] = fd + 1;
	w->last = next;
	w->size += sizeof(struct seg_header);
	w->tail_fsize = fsize;
	w->tail = LADDR(next, sizeof(struct seg_header));
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
 * Is a spare wanted?  Not when the pool is full, nor when the log's file
 * system is short of space: a spare's bytes would be missed by SQLite, the
 * snapshots, or the log itself more than a roll misses fresh pages.
 */
static int
spare_wanted(struct wlog *w)
{
	struct statvfs vfs;
	uint64_t avail;
	int n;

	pthread_mutex_lock(&w->spare_lock);
	n = w->nspares;
	pthread_mutex_unlock(&w->spare_lock);
	if (fstatvfs(w->dirfd, &vfs) < 0)
		return 0;
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail <= SPARE_FREE_SEGMENTS * w->segment_size ||
	    (uint64_t)vfs.f_bavail * 100 <= (uint64_t)vfs.f_blocks * SPARE_FREE_PCT) {
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
	w->spares[w->nspares++] = (struct spare){ fd, segno, (uint64_t)sb.st_size };
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
