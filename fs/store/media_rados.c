/*
 * media_rados: a store whose durable home is a RADOS pool and namespace;
 * the data dir's files are its write-back cache (media.h, docs/design.md
 * "A store in a cluster").
 *
 * Objects, in the store's namespace:
 *   seg.SSSSSSSS     log segment SSSSSSSS, byte for byte its file's
 *                    [0, end): header and records, never the stale bytes of
 *                    a reused file nor the filler's zeros (there is no filler)
 *   index.CCCCCCCC   bytes [C * 4 MiB, (C + 1) * 4 MiB) of the index file;
 *                    index.00000000 also has the xattr "size": the file's size
 *
 * Invariants:
 *   - a sealed segment's object holds all its records (the roll synced it
 *     before the next segment existed); only the newest object grows, and
 *     `acked` says how far (the first bytes of `seg` the cluster
 *     acknowledged); seg_sync is called by the log's one syncer at a time,
 *     so these need no lock;
 *   - the index objects hold every page the newest committed meta reaches:
 *     index.c writes pages, syncs, writes the meta, syncs; this medium's
 *     sync sends what was written since the last one and waits, so the
 *     order holds in the pool too.
 *
 *   event          what the cluster sees                       function
 *   group commit   one write of [acked, upto) (split at        rados_seg_sync
 *                  MEDIA_RADOS_WRITE_MAX), acked = upto
 *   replay's cut   the object truncated if longer               rados_seg_cut
 *   release        the object removed                           rados_seg_release
 *   index commit   the pages' chunks written, waited for,       rados_ix_pwrite,
 *                  then the meta page's                         rados_ix_sync
 *   open           the data dir made to agree (below)           rados_fetch
 *
 * Open (rados_fetch), before anything reads the files.  Without trust_cache
 * every local segment and the index are discarded and every object fetched,
 * at once (eagerly: simpler than a read path that fetches on first use).
 * With it, a local segment is kept when it is a byte-for-byte extension of
 * its object (at least as long, and its last acknowledged 4 KiB the same):
 * bytes past the object are records nobody acknowledged, which replay
 * validates as usual and the next sync sends; local segments older than the
 * newest object that have none were released.  The index is kept when its
 * two meta pages are the objects'.  Every failure is one log line naming the
 * object and the error; a failed sync breaks the log (wlog_sync.c).
 */
#ifdef HAVE_CEPH
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "hlog.h"
#include "index.h"
#include "logfmt.h"
#include "media.h"

#define RADOS_CMP_TAIL		4096	/* bytes of a segment compared with the local copy */
#define RADOS_FETCH_CHUNK	(UINT64_C(4) << 20)

struct ix_range {
	uint64_t off, end;
};

struct media_rados {
	struct media	 base;
	rados_ioctx_t	 io;
	uint32_t	 seg;		/* the segment acked is about (the newest seen) */
	uint64_t	 acked;		/* its first bytes the cluster acknowledged */
	struct ix_range	*ranges;	/* index bytes written since the last sync */
	size_t		 nranges, cap;
	uint64_t	 ix_size;	/* the index file size the pool last recorded */
};

static void
seg_object(uint32_t segno, char *buf, size_t len)
{
	snprintf(buf, len, "seg.%08x", segno);
}

static void
ix_object(uint64_t chunk, char *buf, size_t len)
{
	snprintf(buf, len, "index.%08" PRIx64, chunk);
}

/* Read exactly len bytes at off of fd; 0 or a negative errno (-EIO: the file is shorter). */
static int
pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = fd_pread_upto(fd, buf, len, off);

	return n < 0 ? (int)n : (size_t)n == len ? 0 : -EIO;
}

/* Write exactly len bytes at off of fd; 0 or a negative errno. */
static int
pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	struct iovec iov = { (void *)buf, len };

	return fd_pwritev_all(fd, &iov, 1, off);
}

/*
 * Writes in flight together (an index commit's pages go out at once, and
 * are waited for together).  librados copies a write's bytes when it is
 * issued, so one buffer serves them all.  While an OSD is down a write
 * waits (rados_osd_op_timeout is 0 unless the user set it): once the wait
 * has lasted MEDIA_SLOW_MS the medium's wait hook says so, so that the
 * requests behind this sync are not taken for a hung worker.
 */
#define RADOS_INFLIGHT	32

struct rados_batch {
	rados_completion_t c[RADOS_INFLIGHT];
	char		 name[RADOS_INFLIGHT][32];
	uint64_t	 off[RADOS_INFLIGHT];
	size_t		 n;
	size_t		 done;	/* of the n, completed (batch_done) */
	int		 rc;	/* the first failure */
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;
};

#define RADOS_BATCH_INIT	{ .n = 0, .mu = PTHREAD_MUTEX_INITIALIZER, \
				  .cond = PTHREAD_COND_INITIALIZER }

/* A write of the batch completed (librados's finisher thread). */
static void
batch_done(rados_completion_t c, void *arg)
{
	struct rados_batch *b = arg;

	(void)c;
	pthread_mutex_lock(&b->mu);
	b->done++;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->mu);
}

/* Until every write of b completed; the wait hook while that takes MEDIA_SLOW_MS or more. */
static void
batch_wait_all(struct media_rados *r, struct rados_batch *b)
{
	struct timespec slow;
	int waiting = 0;

	clock_gettime(CLOCK_REALTIME, &slow);
	slow.tv_sec += MEDIA_SLOW_MS / 1000;
	slow.tv_nsec += (MEDIA_SLOW_MS % 1000) * 1000000L;
	if (slow.tv_nsec >= 1000000000L) {
		slow.tv_sec++;
		slow.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->mu);
	while (b->done < b->n) {
		if (waiting || !r->base.wait_hook)
			pthread_cond_wait(&b->cond, &b->mu);
		else if (pthread_cond_timedwait(&b->cond, &b->mu, &slow) == ETIMEDOUT &&
		    b->done < b->n) {
			waiting = 1;
			r->base.wait_hook(r->base.wait_arg, 1);
		}
	}
	pthread_mutex_unlock(&b->mu);
	if (waiting)
		r->base.wait_hook(r->base.wait_arg, -1);
}

/* Wait for every write of the batch; 0 or the first failure (logged, naming the object). */
static int
batch_wait(struct media_rados *r, struct rados_batch *b)
{
	batch_wait_all(r, b);
	for (size_t i = 0; i < b->n; i++) {
		int rc;
		/* at once: only so that batch_done has returned before b goes */
		rados_aio_wait_for_complete_and_cb(b->c[i]);
		rc = rados_aio_get_return_value(b->c[i]);
		rados_aio_release(b->c[i]);
		if (rc < 0 && b->rc == 0) {
			b->rc = rc;
			hlog(HLOG_ERROR, "rados: cannot write object '%s' at %" PRIu64 ": %s",
			    b->name[i], b->off[i], strerror(-rc));
		}
	}
	b->n = b->done = 0;
	return b->rc;
}

/*
 * Send bytes [from, to) of fd to object name, which holds the file's bytes
 * from base on, in writes of at most MEDIA_RADOS_WRITE_MAX added to batch b
 * (batch_wait waits for them).  0 or a negative errno.
 */
static int
rados_send(struct media_rados *r, struct rados_batch *b, const char *name, int fd, uint64_t base,
    uint64_t from, uint64_t to)
{
	size_t cap = to - from < MEDIA_RADOS_WRITE_MAX ? (size_t)(to - from) : MEDIA_RADOS_WRITE_MAX;
	char *buf = malloc(cap ? cap : 1);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (rc == 0 && from < to) {
		size_t n = to - from < cap ? (size_t)(to - from) : cap;
		if (b->n == RADOS_INFLIGHT && (rc = batch_wait(r, b)) < 0)
			break;
		if ((rc = pread_full(fd, buf, n, from)) < 0 ||
		    (rc = rados_aio_create_completion(b, batch_done, NULL, &b->c[b->n])) < 0)
			break;
		snprintf(b->name[b->n], sizeof(b->name[b->n]), "%s", name);
		b->off[b->n] = from - base;
		/* complete once the write is on every replica */
		if ((rc = rados_aio_write(r->io, name, b->c[b->n], buf, n, from - base)) < 0) {
			rados_aio_release(b->c[b->n]);
			break;
		}
		b->n++;
		r->base.writes++;
		r->base.write_bytes += n;
		from += n;
	}
	free(buf);
	if (rc < 0 && b->rc == 0)
		hlog(HLOG_ERROR, "rados: cannot write object '%s' at %" PRIu64 ": %s", name, from - base,
		    strerror(-rc));
	return rc;
}

/* The group commit: send what the object lacks of [0, upto), wait for the ack. */
static int
rados_seg_sync(struct media *m, uint32_t segno, int fd, uint64_t upto)
{
	struct media_rados *r = (struct media_rados *)m;
	struct rados_batch b = RADOS_BATCH_INIT;
	char name[32];
	int rc;

	if (segno != r->seg) {
		/* a new segment: the roll synced the previous one to its end */
		r->seg = segno;
		r->acked = 0;
	}
	if (upto <= r->acked)
		return 0;
	seg_object(segno, name, sizeof(name));
	rc = rados_send(r, &b, name, fd, 0, r->acked, upto);
	if (batch_wait(r, &b) < 0 && rc == 0)
		rc = b.rc;
	if (rc < 0)
		return rc;
	r->acked = upto;
	return 0;
}

/* Replay cut the segment: cut its object too, if it holds more. */
static int
rados_seg_cut(struct media *m, uint32_t segno, uint64_t size)
{
	struct media_rados *r = (struct media_rados *)m;
	char name[32];
	uint64_t osize;
	time_t mtime;
	int rc;

	seg_object(segno, name, sizeof(name));
	if ((rc = rados_stat(r->io, name, &osize, &mtime)) == -ENOENT)
		return 0;
	if (rc == 0 && osize > size && (rc = rados_trunc(r->io, name, size)) == 0)
		r->base.writes++;
	if (rc < 0)
		hlog(HLOG_ERROR, "rados: cannot cut object '%s' to %" PRIu64 " bytes: %s", name, size,
		    strerror(-rc));
	else if (segno == r->seg && r->acked > size)
		r->acked = size;
	return rc;
}

/* A released segment's object goes (again is fine). */
static int
rados_seg_release(struct media *m, uint32_t segno)
{
	struct media_rados *r = (struct media_rados *)m;
	char name[32];
	int rc;

	seg_object(segno, name, sizeof(name));
	rc = rados_remove(r->io, name);
	if (rc < 0 && rc != -ENOENT) {
		hlog(HLOG_ERROR, "rados: cannot remove object '%s' of a released segment: %s", name,
		    strerror(-rc));
		return rc;
	}
	return 0;
}

/* ---- the index file's io hooks --------------------------------------- */

/* index.c's pwrite: the local file, and the range noted for the next sync. */
static ssize_t
rados_ix_pwrite(void *arg, int fd, const void *buf, size_t len, off_t off)
{
	struct media_rados *r = arg;
	ssize_t w = pwrite(fd, buf, len, off);

	if (w <= 0)
		return w;
	if (r->nranges && r->ranges[r->nranges - 1].end == (uint64_t)off) {
		r->ranges[r->nranges - 1].end += (uint64_t)w;	/* index.c writes in page order */
		return w;
	}
	if (r->nranges == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 64;
		struct ix_range *n = realloc(r->ranges, ncap * sizeof(*n));
		if (!n) {
			errno = ENOMEM;
			return -1;
		}
		r->ranges = n;
		r->cap = ncap;
	}
	r->ranges[r->nranges++] = (struct ix_range){ (uint64_t)off, (uint64_t)off + (uint64_t)w };
	return w;
}

/*
 * index.c's sync: every range written since the last one into its chunk
 * objects, in flight together and waited for; then the file's size, when it
 * grew.  No fdatasync: the pool is where the index is durable.  The ranges
 * stay noted on failure (the next sync sends them again).
 */
static int
rados_ix_sync(void *arg, int fd)
{
	struct media_rados *r = arg;
	struct rados_batch b = RADOS_BATCH_INIT;
	struct stat sb;
	char name[32];
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < r->nranges; i++) {
		uint64_t off = r->ranges[i].off, end = r->ranges[i].end;
		while (rc == 0 && off < end) {
			uint64_t chunk = off / MEDIA_RADOS_INDEX_CHUNK;
			uint64_t cend = (chunk + 1) * MEDIA_RADOS_INDEX_CHUNK;
			ix_object(chunk, name, sizeof(name));
			rc = rados_send(r, &b, name, fd, chunk * MEDIA_RADOS_INDEX_CHUNK, off,
			    end < cend ? end : cend);
			off = end < cend ? end : cend;
		}
	}
	if (batch_wait(r, &b) < 0 && rc == 0)
		rc = b.rc;
	if (rc == 0 && fstat(fd, &sb) < 0)
		rc = -errno;
	if (rc == 0 && (uint64_t)sb.st_size != r->ix_size) {
		char v[32];
		int n = snprintf(v, sizeof(v), "%" PRIu64, (uint64_t)sb.st_size);
		ix_object(0, name, sizeof(name));
		if ((rc = rados_setxattr(r->io, name, "size", v, (size_t)n)) < 0)
			hlog(HLOG_ERROR, "rados: cannot record the index size on '%s': %s", name,
			    strerror(-rc));
		else
			r->ix_size = (uint64_t)sb.st_size;
	}
	if (rc == 0)
		r->nranges = 0;
	return rc;
}

static void
rados_index_io(struct media *m, struct index_io *io)
{
	io->pwrite = rados_ix_pwrite;
	io->sync = rados_ix_sync;
	io->arg = m;
}

/* ---- open: the data dir made to agree with the pool ----------------- */

/* What the namespace holds: segment numbers (sorted) and how many index chunks. */
struct rados_listing {
	uint32_t *segs;
	size_t	  nsegs, cap;
	uint64_t  ix_chunks;	/* 1 + the highest chunk number, 0 = none */
};

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* List the store's objects; 0 or a negative errno. */
static int
rados_list(struct media_rados *r, struct rados_listing *l)
{
	rados_list_ctx_t ctx;
	const char *entry;
	int rc;

	memset(l, 0, sizeof(*l));
	if ((rc = rados_nobjects_list_open(r->io, &ctx)) < 0)
		return rc;
	while ((rc = rados_nobjects_list_next(ctx, &entry, NULL, NULL)) == 0) {
		unsigned segno;
		uint64_t chunk;
		char end;
		if (sscanf(entry, "seg.%8x%c", &segno, &end) == 1 && strlen(entry) == 12) {
			if (l->nsegs == l->cap) {
				size_t ncap = l->cap ? l->cap * 2 : 64;
				uint32_t *n = realloc(l->segs, ncap * sizeof(*n));
				if (!n) {
					rc = -ENOMEM;
					break;
				}
				l->segs = n;
				l->cap = ncap;
			}
			l->segs[l->nsegs++] = segno;
		} else if (sscanf(entry, "index.%8" SCNx64 "%c", &chunk, &end) == 1 &&
		    chunk + 1 > l->ix_chunks) {
			l->ix_chunks = chunk + 1;
		}
	}
	rados_nobjects_list_close(ctx);
	if (rc == -ENOENT)
		rc = 0;		/* the end of the listing */
	if (rc == 0 && l->nsegs > 1)
		qsort(l->segs, l->nsegs, sizeof(*l->segs), u32_cmp);
	return rc;
}

/* Is object name's [off, off + len) what fd holds there? 1, 0, or a negative errno. */
static int
rados_same(struct media_rados *r, const char *name, int fd, uint64_t off, size_t len)
{
	uint8_t a[RADOS_CMP_TAIL * 2], b[RADOS_CMP_TAIL * 2];
	int rc;

	if (len > sizeof(a))
		return -EINVAL;
	if ((rc = rados_read(r->io, name, (char *)a, len, off)) < 0)
		return rc;
	if ((size_t)rc != len || pread_full(fd, b, len, off) < 0)
		return 0;
	return memcmp(a, b, len) == 0;
}

/*
 * Copy objects names[i], each holding the file's bytes from i * chunk_bytes
 * on (a missing one: never written), into the file at path, through
 * path.fetch renamed over it once whole and synced; the file is made size
 * bytes long at least.  0 or a negative errno.
 */
static int
rados_copy_in(struct media_rados *r, int dirfd, const char *path, const char *const *names,
    size_t nnames, uint64_t chunk_bytes, uint64_t size)
{
	char tmp[PATH_MAX];
	char *buf = malloc(RADOS_FETCH_CHUNK);
	uint64_t have = 0;
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.fetch", path);
	fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !buf) {
		rc = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < nnames; i++) {
		uint64_t off = 0;
		for (;;) {
			int n = rados_read(r->io, names[i], buf, RADOS_FETCH_CHUNK, off);
			if (n == -ENOENT)
				break;		/* an index chunk never written */
			if (n < 0) {
				rc = n;
				hlog(HLOG_ERROR, "rados: cannot read object '%s': %s", names[i],
				    strerror(-n));
				break;
			}
			if (n == 0)
				break;
			if ((rc = pwrite_full(fd, buf, (size_t)n, i * chunk_bytes + off)) < 0)
				break;
			off += (uint64_t)n;
			if (i * chunk_bytes + off > have)
				have = i * chunk_bytes + off;
		}
	}
	if (rc == 0 && have < size && ftruncate(fd, (off_t)size) < 0)
		rc = -errno;
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (rc == 0 && renameat(dirfd, tmp, dirfd, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(dirfd, tmp, 0);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* Keep the local copy of segment segno (fd) with its object of osize bytes? */
static int
rados_seg_trusted(struct media_rados *r, const char *name, int fd, uint64_t osize)
{
	struct stat sb;
	uint64_t n = osize < RADOS_CMP_TAIL ? osize : RADOS_CMP_TAIL;

	if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size < osize)
		return 0;
	return rados_same(r, name, fd, osize - n, (size_t)n) == 1;
}

/*
 * The log: every segment object in DIR/log, the newest one's acknowledged
 * length noted; local segments the pool does not hold (or, untrusted, any
 * local file) removed, but for newer ones a trusted cache appended to.
 */
static int
rados_fetch_log(struct media_rados *r, int logfd, const struct rados_listing *l, int trust,
    char *err, size_t errlen)
{
	uint32_t newest = l->nsegs ? l->segs[l->nsegs - 1] : 0;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	/* first the local files that must go */
	if (!(d = fdopendir(dup(logfd))))
		return -errno;
	while ((de = readdir(d)) != NULL) {
		unsigned segno;
		char tail[16];
		int seg, drop;
		if (sscanf(de->d_name, "%8x%15s", &segno, tail) != 2)
			continue;
		seg = strcmp(tail, ".seg") == 0;
		/* kept: a trusted segment the pool holds or that is newer; .cut- copies */
		drop = strstr(tail, ".fetch") || (seg && (!trust || (segno <= newest &&
		    !bsearch(&(uint32_t){ segno }, l->segs, l->nsegs, sizeof(*l->segs), u32_cmp)))) ||
		    (!trust && strcmp(tail, ".spare") == 0);
		if (drop && unlinkat(logfd, de->d_name, 0) < 0 && errno != ENOENT)
			hlog(HLOG_WARN, "cannot remove '%s' from the log cache: %s", de->d_name,
			    strerror(errno));
	}
	closedir(d);
	for (size_t i = 0; rc == 0 && i < l->nsegs; i++) {
		char name[32], local[32];
		const char *names[1] = { name };
		uint64_t osize;
		time_t mtime;
		int fd;

		seg_object(l->segs[i], name, sizeof(name));
		snprintf(local, sizeof(local), "%08x.seg", l->segs[i]);
		if ((rc = rados_stat(r->io, name, &osize, &mtime)) < 0) {
			snprintf(err, errlen, "rados: cannot stat object '%s': %s", name, strerror(-rc));
			break;
		}
		fd = openat(logfd, local, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && trust && rados_seg_trusted(r, name, fd, osize)) {
			close(fd);
		} else {
			if (fd >= 0)
				close(fd);
			if ((rc = rados_copy_in(r, logfd, local, names, 1, 0, 0)) < 0)
				snprintf(err, errlen, "cannot fetch log segment object '%s': %s", name,
				    strerror(-rc));
		}
		if (l->segs[i] == newest) {
			r->seg = newest;
			r->acked = osize;
		}
	}
	return rc;
}

/* The index: kept when trusted and its meta pages are the pool's, else fetched whole. */
static int
rados_fetch_index(struct media_rados *r, int dirfd, const struct rados_listing *l, int trust,
    char *err, size_t errlen)
{
	char first[32], v[32], **names = NULL;
	uint64_t size = 0;
	int fd, rc;

	ix_object(0, first, sizeof(first));
	if ((rc = rados_getxattr(r->io, first, "size", v, sizeof(v) - 1)) < 0) {
		snprintf(err, errlen, "rados: the store's index '%s' has no size: %s", first,
		    strerror(-rc));
		return rc;
	}
	v[rc] = '\0';
	size = strtoull(v, NULL, 10);
	r->ix_size = size;
	fd = openat(dirfd, "index", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		rc = trust ? rados_same(r, first, fd, 0, 2 * INDEX_PAGE) : 0;
		close(fd);
		if (rc == 1)
			return 0;
	}
	if (!(names = calloc(l->ix_chunks, sizeof(*names))))
		return -ENOMEM;
	rc = 0;
	for (uint64_t c = 0; rc == 0 && c < l->ix_chunks; c++) {
		if (!(names[c] = malloc(32)))
			rc = -ENOMEM;
		else
			ix_object(c, names[c], 32);
	}
	if (rc == 0 && (rc = rados_copy_in(r, dirfd, "index", (const char *const *)names,
	    l->ix_chunks, MEDIA_RADOS_INDEX_CHUNK, size)) < 0)
		snprintf(err, errlen, "cannot fetch the store's index from the pool: %s", strerror(-rc));
	for (uint64_t c = 0; c < l->ix_chunks; c++)
		free(names[c]);
	free(names);
	return rc;
}

static int
rados_fetch(struct media *m, const char *datadir, int trust_cache, char *err, size_t errlen)
{
	struct media_rados *r = (struct media_rados *)m;
	struct rados_listing l;
	char logdir[PATH_MAX];
	int dirfd = -1, logfd = -1, rc;

	if ((rc = rados_list(r, &l)) < 0) {
		snprintf(err, errlen, "rados: cannot list the store's objects: %s", strerror(-rc));
		return rc;
	}
	if (l.nsegs == 0 || l.ix_chunks == 0) {
		/* a store being created: the files are made here, then sent */
		free(l.segs);
		if (trust_cache)
			return 0;
		snprintf(err, errlen, "rados: the pool holds no %s of this store",
		    l.nsegs ? "index" : "log");
		return -ENOENT;
	}
	snprintf(logdir, sizeof(logdir), "%s/log", datadir);
	if (mkdir(logdir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create '%s': %s", logdir, strerror(errno));
	} else if ((dirfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (logfd = open(logdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open '%s': %s", logdir, strerror(errno));
	} else if ((rc = rados_fetch_log(r, logfd, &l, trust_cache, err, errlen)) == 0 &&
	    (rc = rados_fetch_index(r, dirfd, &l, trust_cache, err, errlen)) == 0 &&
	    (fsync(logfd) < 0 || fsync(dirfd) < 0)) {
		rc = -errno;
		snprintf(err, errlen, "cannot sync '%s': %s", logdir, strerror(errno));
	}
	if (rc == 0)
		hlog(HLOG_INFO, "rados: %s the store's %zu log segment%s and its index in '%s'",
		    trust_cache ? "checked" : "fetched", l.nsegs, l.nsegs == 1 ? "" : "s", datadir);
	if (logfd >= 0)
		close(logfd);
	if (dirfd >= 0)
		close(dirfd);
	free(l.segs);
	return rc;
}

static void
rados_close(struct media *m)
{
	struct media_rados *r = (struct media_rados *)m;

	free(r->ranges);
	free(r);
}

static const struct media_ops rados_ops = {
	.name = "rados",
	.fill = 0,	/* no file system journal on the way to the pool */
	.segment_max = MEDIA_RADOS_SEGMENT_MAX,
	.seg_sync = rados_seg_sync,
	.seg_cut = rados_seg_cut,
	.seg_release = rados_seg_release,
	.fetch = rados_fetch,
	.index_io = rados_index_io,
	.close = rados_close,
};

int
media_rados_open(rados_ioctx_t io, struct media **out)
{
	struct media_rados *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->base.ops = &rados_ops;
	r->io = io;
	*out = &r->base;
	return 0;
}
#else
/* Without Ceph, the local medium alone (media.h declares no RADOS one). */
typedef int media_rados_unused;
#endif
