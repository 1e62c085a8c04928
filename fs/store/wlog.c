/*
 * wlog: see wlog.h for the contract; logfmt.h for the bytes.
 *
 * State:
 *   segfd[]     fd+1 of every open segment, indexed by segment number (0 = none).
 *               Segments are only ever added, so readers index it without a lock.
 *   first,last  the segment numbers present; `last` is the one appended to.
 *   tail        log address of the next record (atomic: read by wlog_sync).
 *   synced      every record before it is durable (under sync_lock).
 *   broken      set when an fdatasync failed: after that the page cache may
 *               have dropped dirty pages, so no later sync may claim success.
 *   cache       headers and crc tables of records read before (reccache.h),
 *               for wlog_read_cached(); only records wholly before the tail,
 *               which nothing rewrites; a released segment's are dropped.
 *               NULL when opened read-only.
 *   segend[]    where each sealed segment's records end (logfmt.h: the next
 *               header's prev_end, or the file's size); the file may be
 *               longer (stale bytes of an earlier life) or, once released,
 *               just its header.
 *   tail_fsize  the newest segment's file size as appends know it: while it
 *               is beyond a new record, stale bytes follow, and the append
 *               writes a REC_END marker after the record.
 *   spares[]    files of released segments kept for reuse (SSSSSSSS.spare,
 *               at most WLOG_SPARES_MAX; under spare_lock: the cleaner adds,
 *               a roll takes).  Their content means nothing.
 *
 * Transitions:
 *   wlog_open      -> segments checked, tail unknown (replayed = 0)
 *   wlog_replay    -> tail found, torn tail cut off, appends allowed
 *   wlog_append    -> tail advances; when a record does not fit, the full
 *                     segment is fdatasync'ed, then the next one is made
 *                     and the log directory fsync'ed (wlog_roll)
 *   wlog_roll      -> a spare gets the next segment's header (fdatasync'ed
 *                     before the name: a segment's header is never torn)
 *                     and is renamed to it (RENAME_NOREPLACE); without a
 *                     spare the segment is created
 *   wlog_release   -> a header-only copy of the segment is made durable and
 *                     exchanged with it (RENAME_EXCHANGE), the directory
 *                     fsync'ed: the segment is its header (as when it was cut
 *                     down) and the old file is a spare.  Without room for a
 *                     spare (statvfs), or RENAME_EXCHANGE, it is cut down.
 *
 * Crash states of reuse, each seen by wlog_open:
 *   release: a leftover SSSSSSSS.spare next to a whole segment S (the spare
 *   is just a spare; releasing S again replaces it), or the exchanged pair;
 *   roll: a spare with a new header but its old name (a spare), or the new
 *   segment with a durable header and stale records of its old life after
 *   it, which replay tells by their sequence numbers.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "hlog.h"
#include "reccache.h"
#include "wlog.h"

#define REPLAY_CHUNK	(1u << 20)

/*
 * Records whose header and table a mount keeps: 4096 x 1 MiB records (FUSE's
 * largest write) cover 4 GiB of recent writes, in at most ~4.4 MiB of memory.
 */
#define RECCACHE_SLOTS	4096

/* A spare is kept only while the log's file system has more free than this. */
#define SPARE_FREE_SEGMENTS	2	/* segment sizes */
#define SPARE_FREE_PCT		10	/* percent of the file system */

struct spare {
	int		 fd;
	uint32_t	 name;		/* SSSSSSSS of SSSSSSSS.spare */
	uint64_t	 size;		/* bytes of the file */
};

struct wlog {
	char		 dir[PATH_MAX];
	int		 dirfd;
	uint8_t		 uuid[16];
	uint64_t	 segment_size;
	int		*segfd;			/* fd + 1 by segment number */
	uint32_t	 first, last;
	int		 readonly;		/* wlog_open_ro: change no file */
	char		 note[256];		/* what a read-only open left alone */
	_Atomic uint64_t tail;
	uint64_t	 next_seq;
	int		 replayed;
	_Atomic uint64_t size;			/* bytes of records (and headers) in all segments */
	_Atomic uint64_t released;		/* of which given back by wlog_release() */
	uint64_t	*segend;		/* by segment number: sealed segments' ends */
	_Atomic uint64_t tail_fsize;		/* the newest segment's file size */

	pthread_mutex_t	 spare_lock;
	struct spare	 spares[WLOG_SPARES_MAX + 1];	/* + 1: room while trimming at open */
	int		 nspares;
	_Atomic uint64_t spare_bytes;

	pthread_mutex_t	 sync_lock;
	pthread_cond_t	 sync_cond;
	uint64_t	 synced;
	int		 syncing;
	_Atomic int	 broken;		/* -errno of a failed fdatasync */

	void		(*append_hook)(void *arg);	/* fault injection */
	void		*append_hook_arg;
	struct reccache	*cache;
};

uint64_t
wlog_first_laddr(void)
{
	return LADDR(1, sizeof(struct seg_header));
}

static void
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

static const char *
seg_header_check(const struct seg_header *sh, uint32_t segno, const uint8_t uuid[16])
{
	struct seg_header c = *sh;

	c.crc = 0;
	if (memcmp(sh->magic, SEG_MAGIC, sizeof(sh->magic)) != 0)
		return "bad magic";
	if (crc32c(0, &c, sizeof(c)) != sh->crc)
		return "header checksum mismatch";
	if (sh->version < LOG_FORMAT_VERSION_MIN || sh->version > LOG_FORMAT_VERSION)
		return "unsupported log format version";
	if (sh->version >= 3 && sh->prev_end != 0 && sh->prev_end < sizeof(*sh))
		return "header names an impossible end for the previous segment";
	if (sh->header_size != sizeof(*sh) || sh->segno != segno)
		return "header does not match its file name";
	if (memcmp(sh->store_uuid, uuid, 16) != 0)
		return "segment belongs to another store";
	return NULL;
}

/* Was the header written out whole (magic and checksum), whatever it says? */
static int
seg_header_complete(const struct seg_header *sh)
{
	struct seg_header c = *sh;

	c.crc = 0;
	return memcmp(sh->magic, SEG_MAGIC, sizeof(sh->magic)) == 0 &&
	    crc32c(0, &c, sizeof(c)) == sh->crc;
}

/* Where the previous segment's records end, per this (checked) header; 0 = not said. */
static uint64_t
seg_header_prev_end(const struct seg_header *sh)
{
	return sh->version >= 3 ? sh->prev_end : 0;
}

static void
seg_name(uint32_t segno, char *buf, size_t len)
{
	snprintf(buf, len, "%08x.seg", segno);
}

static void
spare_name(uint32_t segno, char *buf, size_t len)
{
	snprintf(buf, len, "%08x.spare", segno);
}

/* Create segment segno with its header; returns the fd or -errno. */
static int
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

int
wlog_create(const char *dir, const uint8_t uuid[16])
{
	int dirfd, fd, rc = 0;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	fd = seg_create(dirfd, 1, uuid, 0);
	if (fd < 0) {
		close(dirfd);
		return fd;
	}
	if (fdatasync(fd) < 0 || fsync(dirfd) < 0)
		rc = -errno;
	close(fd);
	close(dirfd);
	return rc;
}

static int
seg_fd(const struct wlog *w, uint32_t segno)
{
	if (segno == 0 || segno >= WLOG_SEGMENTS_MAX)
		return -1;
	return w->segfd[segno] - 1;
}

static uint64_t seg_later_records_end(int fd, uint64_t from, uint64_t size, uint64_t after_seq);

/* Was the header never written: the file shorter than it, or zeros? */
static int
seg_header_blank(int fd)
{
	static const struct seg_header zero;
	struct seg_header sh;

	return pread(fd, &sh, sizeof(sh), 0) != (ssize_t)sizeof(sh) ||
	    memcmp(&sh, &zero, sizeof(sh)) == 0;
}

static int
segno_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Append x to the growing array *v of *cnt entries; 0 or -ENOMEM. */
static int
segno_push(uint32_t **v, size_t *cnt, size_t *cap, uint32_t x)
{
	if (*cnt == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		uint32_t *nv = realloc(*v, ncap * sizeof(**v));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*cnt)++] = x;
	return 0;
}

/* List the segment numbers (sorted) and the spares' names in the log dir. */
static int
wlog_list(struct wlog *w, uint32_t **out, size_t *n, uint32_t **spares, size_t *nspares)
{
	DIR *d = fdopendir(dup(w->dirfd));
	struct dirent *de;
	uint32_t *v = NULL, *sp = NULL;
	size_t cnt = 0, cap = 0, scnt = 0, scap = 0;
	int rc = 0;

	if (!d)
		return -errno;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		unsigned segno;
		char tail[8];
		if ((len != 12 && len != 14) ||
		    sscanf(de->d_name, "%8x%7s", &segno, tail) != 2)
			continue;
		if (len == 12 && strcmp(tail, ".seg") == 0)
			rc = segno_push(&v, &cnt, &cap, segno);
		else if (len == 14 && strcmp(tail, ".spare") == 0)
			rc = segno_push(&sp, &scnt, &scap, segno);
	}
	closedir(d);
	if (rc < 0) {
		free(v);
		free(sp);
		return rc;
	}
	if (cnt > 1)	/* v is NULL when the directory holds no segment */
		qsort(v, cnt, sizeof(*v), segno_cmp);
	*out = v;
	*n = cnt;
	*spares = sp;
	*nspares = scnt;
	return 0;
}

/*
 * Take the spares found at open into the pool: open them, note their sizes.
 * Beyond WLOG_SPARES_MAX (leftovers of interrupted releases) they are
 * removed.  A read-only open only counts their bytes.
 */
static void
wlog_take_spares(struct wlog *w, const uint32_t *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char name[32];
		struct stat st;
		int fd;

		spare_name(names[i], name, sizeof(name));
		if (w->readonly || w->nspares == WLOG_SPARES_MAX) {
			if (w->readonly && fstatat(w->dirfd, name, &st, 0) == 0)
				w->spare_bytes += (uint64_t)st.st_size;
			else if (!w->readonly && unlinkat(w->dirfd, name, 0) < 0)
				hlog(HLOG_WARN, "cannot remove spare log file %s: %s", name, strerror(errno));
			continue;
		}
		fd = openat(w->dirfd, name, O_RDWR | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			hlog(HLOG_WARN, "cannot open spare log file %s: %s; not reusing it", name,
			    strerror(errno));
			if (fd >= 0)
				close(fd);
			continue;
		}
		w->spares[w->nspares++] = (struct spare){ fd, names[i], (uint64_t)st.st_size };
		w->spare_bytes += (uint64_t)st.st_size;
	}
	if (w->spare_bytes)
		hlog(HLOG_INFO, "log: %d spare segment file%s (%llu MiB) kept for reuse", w->nspares,
		    w->nspares == 1 ? "" : "s", (unsigned long long)(w->spare_bytes >> 20));
}

static int
wlog_open_mode(const char *dir, const uint8_t uuid[16], uint64_t segment_size, int readonly,
    struct wlog **out, char *err, size_t errlen)
{
	struct wlog *w;
	uint32_t *segs = NULL, *spares = NULL;
	uint64_t *fsize = NULL, *prev_end = NULL;
	size_t nsegs = 0, nspares = 0;
	int rc;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->segfd = calloc(WLOG_SEGMENTS_MAX, sizeof(int));
	w->segend = calloc(WLOG_SEGMENTS_MAX, sizeof(uint64_t));
	if (!w->segfd || !w->segend) {
		free(w->segfd);
		free(w->segend);
		free(w);
		return -ENOMEM;
	}
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	memcpy(w->uuid, uuid, 16);
	w->segment_size = segment_size;
	w->readonly = readonly;
	pthread_mutex_init(&w->sync_lock, NULL);
	pthread_cond_init(&w->sync_cond, NULL);
	pthread_mutex_init(&w->spare_lock, NULL);
	if (!readonly && !(w->cache = reccache_new(RECCACHE_SLOTS))) {
		rc = -ENOMEM;
		snprintf(err, errlen, "no memory for the log's record cache");
		w->dirfd = -1;
		goto fail;
	}
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open log directory '%s': %s", dir, strerror(errno));
		goto fail;
	}
	if ((rc = wlog_list(w, &segs, &nsegs, &spares, &nspares)) < 0) {
		snprintf(err, errlen, "cannot list log directory '%s': %s", dir, strerror(-rc));
		goto fail;
	}
	if (nsegs == 0) {
		rc = -EUCLEAN;
		snprintf(err, errlen, "log directory '%s' has no segment", dir);
		goto fail;
	}
	fsize = calloc(nsegs, sizeof(*fsize));
	prev_end = calloc(nsegs, sizeof(*prev_end));
	if (!fsize || !prev_end) {
		rc = -ENOMEM;
		snprintf(err, errlen, "no memory to open the log");
		goto fail;
	}
	for (size_t i = 0; i < nsegs; i++) {
		struct seg_header sh;
		struct stat st;
		const char *why;
		char name[32];
		int fd, whole = 0;

		seg_name(segs[i], name, sizeof(name));
		if (segs[i] >= WLOG_SEGMENTS_MAX || (i > 0 && segs[i] != segs[i - 1] + 1)) {
			rc = -EUCLEAN;
			snprintf(err, errlen, "log segment %s is missing or out of sequence", name);
			goto fail;
		}
		fd = openat(w->dirfd, name, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot open log segment %s: %s", name, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto fail;
		}
		if (pread(fd, &sh, sizeof(sh), 0) != (ssize_t)sizeof(sh))
			why = "shorter than its header";
		else if ((why = seg_header_check(&sh, segs[i], uuid)) != NULL)
			whole = seg_header_complete(&sh);
		/*
		 * A whole header naming another store, segment or version was not
		 * torn; nor was a damaged (not blank) one followed by a record: a
		 * bit flip in the header of a segment of synced records must not
		 * delete them.
		 */
		if (why && !whole && i == nsegs - 1 && i > 0 &&
		    (seg_header_blank(fd) || !seg_later_records_end(fd, sizeof(sh), (uint64_t)st.st_size, 0))) {
			/*
			 * The newest segment was being created when the machine
			 * stopped: its header never became durable, so neither did
			 * any record in it (a sync covers the header too).  Drop it;
			 * appends continue in the previous segment.
			 */
			close(fd);
			if (readonly) {
				snprintf(w->note, sizeof(w->note), "the newest log segment %s is "
				    "incomplete (%s): no record in it was ever made durable", name, why);
				nsegs--;
				break;
			}
			hlog(HLOG_WARN, "log segment %s is incomplete (%s); removing it", name, why);
			if (unlinkat(w->dirfd, name, 0) < 0) {
				rc = -errno;
				snprintf(err, errlen, "cannot remove incomplete log segment %s: %s",
				    name, strerror(errno));
				goto fail;
			}
			fsync(w->dirfd);
			nsegs--;
			break;
		}
		if (why) {
			close(fd);
			rc = -EUCLEAN;
			snprintf(err, errlen, "log segment %s: %s%s", name, why, i == nsegs - 1 && i > 0 && !whole ?
			    " (it holds records, so it is damaged, not half-created)" : "");
			goto fail;
		}
		w->segfd[segs[i]] = fd + 1;
		w->first = segs[0];	/* so that wlog_close() on failure closes it */
		w->last = segs[i];
		fsize[i] = (uint64_t)st.st_size;
		prev_end[i] = seg_header_prev_end(&sh);
	}
	w->first = segs[0];
	w->last = segs[nsegs - 1];
	/*
	 * A sealed segment's records end where the next header says (logfmt.h);
	 * a released one's file is just its header.  The newest one's end is
	 * found by replay: until then, its file size.
	 */
	for (size_t i = 0; i + 1 < nsegs; i++) {
		w->segend[segs[i]] = prev_end[i + 1] ? prev_end[i + 1] : fsize[i];
		w->size += fsize[i] < w->segend[segs[i]] ? fsize[i] : w->segend[segs[i]];
	}
	w->size += fsize[nsegs - 1];
	w->tail_fsize = fsize[nsegs - 1];
	wlog_take_spares(w, spares, nspares);
	free(segs);
	free(spares);
	free(fsize);
	free(prev_end);
	*out = w;
	return 0;
fail:
	free(segs);
	free(spares);
	free(fsize);
	free(prev_end);
	wlog_close(w);
	return rc;
}

int
wlog_open(const char *dir, const uint8_t uuid[16], uint64_t segment_size,
    struct wlog **out, char *err, size_t errlen)
{
	return wlog_open_mode(dir, uuid, segment_size, 0, out, err, errlen);
}

int
wlog_open_ro(const char *dir, const uint8_t uuid[16], struct wlog **out, char *err, size_t errlen)
{
	return wlog_open_mode(dir, uuid, WLOG_SEGMENT_SIZE_DEFAULT, 1, out, err, errlen);
}

const char *
wlog_note(const struct wlog *w)
{
	return w->note[0] ? w->note : NULL;
}

void
wlog_close(struct wlog *w)
{
	if (!w)
		return;
	for (uint32_t s = w->first; s && s <= w->last; s++)
		if (seg_fd(w, s) >= 0)
			close(seg_fd(w, s));
	for (int i = 0; i < w->nspares; i++)
		close(w->spares[i].fd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	pthread_mutex_destroy(&w->sync_lock);
	pthread_cond_destroy(&w->sync_cond);
	pthread_mutex_destroy(&w->spare_lock);
	reccache_free(w->cache);
	free(w->segfd);
	free(w->segend);
	free(w);
}

/* Header checks that need no data: returns NULL if h may start a valid record. */
static const char *
rec_header_check(const struct rec_header *h, uint64_t expect_seq)
{
	struct rec_header c = *h;

	if (h->magic != REC_MAGIC)
		return "bad record magic";
	c.hdr_crc = 0;
	if (crc32c(0, &c, sizeof(c)) != h->hdr_crc)
		return "record header checksum mismatch";
	if (expect_seq && h->seq != expect_seq)
		return "record out of sequence";
	if (h->flags & ~(h->type == REC_ZERO ? REC_F_GROW : 0))
		return "unknown record flags";
	switch (h->type) {
	case REC_WRITE:
		if (h->length == 0 || h->length > REC_DATA_MAX)
			return "record length out of range";
		break;
	case REC_ZERO:
	case REC_SIZE:
		if (h->data_crc != 0)
			return "record without data has a data checksum";
		break;
	default:
		return "unknown record type";
	}
	if (h->type != REC_SIZE && h->offset + h->length < h->offset)
		return "record range overflows";
	return NULL;
}

/*
 * Do records with a good header and seq > after_seq start in [from, size)?
 * 0 if not, else where the last of them ends (at most size): the bytes that
 * hold them.  Stale records of an earlier life of a reused file have
 * sequence numbers below any of this life's, so they do not count.
 */
static uint64_t
seg_later_records_end(int fd, uint64_t from, uint64_t size, uint64_t after_seq)
{
	static const uint32_t magic = REC_MAGIC;
	unsigned char *buf = malloc(REPLAY_CHUNK + sizeof(struct rec_header));
	uint64_t end = 0;

	if (!buf)
		return 0;
	for (uint64_t pos = from; pos < size; pos += REPLAY_CHUNK) {
		ssize_t n = pread(fd, buf, REPLAY_CHUNK + sizeof(struct rec_header), (off_t)pos);
		ssize_t lim = n < REPLAY_CHUNK + (ssize_t)sizeof(struct rec_header) ? n : REPLAY_CHUNK +
		    (ssize_t)sizeof(struct rec_header) - 1;
		unsigned char *p = buf, *q;
		while (n > 0 && p < buf + lim &&
		    (q = memmem(p, (size_t)(buf + lim - p), &magic, 4)) != NULL) {
			struct rec_header h;
			p = q + 1;
			if (q + sizeof(h) > buf + n || q - buf >= REPLAY_CHUNK)
				continue;
			memcpy(&h, q, sizeof(h));
			if (!rec_header_check(&h, 0) && h.seq > after_seq) {
				uint64_t e = pos + (uint64_t)(q - buf) + rec_size(&h);
				end = e > end ? e : end;
			}
		}
	}
	free(buf);
	return end < size ? end : size;
}

/*
 * Replay reads the log through a window of REPLAY_CHUNK bytes, so scanning
 * many small records costs few system calls.  A takeover, which reads only
 * the headers of all but the last record, maps the segment instead (the
 * window is then the whole mapping): copying every record's data through a
 * buffer was most of a replacement worker's start-up under write load.
 */
struct window {
	unsigned char	*buf;	/* the buffer, or the mapping */
	int		 fd;
	uint64_t	 off;	/* file offset of buf[0] */
	size_t		 len;	/* valid bytes in buf */
	unsigned char	*chunk;	/* the REPLAY_CHUNK buffer */
	void		*map;	/* non-NULL: buf is this mapping of map_len bytes */
	size_t		 map_len;
};

/* Point the window at fd, of size bytes, from file offset pos on; map it if asked. */
static void
window_open(struct window *win, int fd, uint64_t pos, uint64_t size, int map)
{
	if (win->map)
		munmap(win->map, win->map_len);
	win->map = NULL;
	win->buf = win->chunk;
	win->fd = fd;
	win->off = 0;
	win->len = 0;
	if (map) {
		uint64_t start = pos & ~(uint64_t)(sysconf(_SC_PAGESIZE) - 1);
		void *m = size > start ? mmap(NULL, (size_t)(size - start), PROT_READ, MAP_SHARED,
		    fd, (off_t)start) : MAP_FAILED;
		if (m != MAP_FAILED) {
			win->map = m;
			win->map_len = (size_t)(size - start);
			win->buf = m;
			win->off = start;
			win->len = win->map_len;
		}
	}
}

static void
window_close(struct window *win)
{
	if (win->map)
		munmap(win->map, win->map_len);
	win->map = NULL;
}

/* Make [pos, pos+len) (len <= REPLAY_CHUNK) be in the window; 0, or -1 past the file's end. */
static int
window_fill(struct window *win, uint64_t pos, size_t len)
{
	if (pos >= win->off && pos + len <= win->off + win->len)
		return 0;
	if (win->map)
		return -1;	/* the mapping ends where the file did */
	ssize_t n = pread(win->fd, win->buf, REPLAY_CHUNK, (off_t)pos);
	win->off = pos;
	win->len = n > 0 ? (size_t)n : 0;
	return win->len < len ? -1 : 0;
}

/* Copy len bytes at file offset pos; 0, or -1 if they are not all in the file. */
static int
window_read(struct window *win, uint64_t pos, void *out, size_t len)
{
	if (len > REPLAY_CHUNK)
		return pread(win->fd, out, len, (off_t)pos) == (ssize_t)len ? 0 : -1;
	if (window_fill(win, pos, len) < 0)
		return -1;
	memcpy(out, win->buf + (pos - win->off), len);
	return 0;
}

/* crc32c of len bytes at file offset pos, through the window. */
static int
window_crc(struct window *win, uint64_t pos, uint64_t len, uint32_t *crc)
{
	*crc = 0;
	while (len > 0) {
		size_t n = len < REPLAY_CHUNK ? (size_t)len : REPLAY_CHUNK;
		if (window_fill(win, pos, n) < 0)
			return -1;
		*crc = crc32c(*crc, win->buf + (pos - win->off), n);
		pos += n;
		len -= n;
	}
	return 0;
}

/* Keep a copy of bytes about to be cut off, for whoever investigates. */
static void
seg_save_tail(struct wlog *w, uint32_t segno, int fd, uint64_t from, uint64_t size)
{
	char name[64];
	unsigned char *buf = malloc(REPLAY_CHUNK);
	int out;

	if (!buf)
		return;
	snprintf(name, sizeof(name), "%08x.seg.cut-%llx", segno, (unsigned long long)from);
	out = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	for (uint64_t pos = from; out >= 0 && pos < size; ) {
		ssize_t n = pread(fd, buf, REPLAY_CHUNK, (off_t)pos);
		if (n <= 0 || write(out, buf, (size_t)n) != n)
			break;
		pos += (uint64_t)n;
	}
	if (out >= 0) {
		fsync(out);
		close(out);
		hlog(HLOG_WARN, "kept the %llu bytes cut from segment %08x in %s/%s",
		    (unsigned long long)(size - from), segno, w->dir, name);
	}
	free(buf);
}

/* Is the REC_WRITE at file offset pos (header h, already checked) whole?  NULL if so. */
static const char *
window_verify(struct window *win, uint64_t pos, const struct rec_header *h, uint32_t *table)
{
	uint64_t nblk = rec_blocks(h->length);
	uint64_t data = pos + rec_data_start(h);

	if (nblk > REC_DATA_MAX / REC_BLOCK)	/* rec_header_check() saw to that */
		return "record length out of range";
	if (window_read(win, pos + sizeof(*h), table, 4 * nblk) < 0)
		return "unreadable crc table";
	if (crc32c(0, table, 4 * nblk) != h->data_crc)
		return "crc table checksum mismatch";
	for (uint64_t i = 0; i < nblk; i++) {
		uint32_t crc;
		if (window_crc(win, data + i * REC_BLOCK, rec_block_len(h, i), &crc) < 0)
			return "unreadable record data";
		if (crc != table[i])
			return "record data checksum mismatch";
	}
	return NULL;
}

/*
 * Replay met something that is not the next record at offset pos of the
 * newest segment segno (file bytes up to fsize; h = its header if one was
 * read).  That is the end of the log; decide what the bytes from pos on are:
 *   - a REC_END marker naming seq, or a sound header of a record older than
 *     seq: the end as an append left it in a reused file, with stale bytes
 *     after it.  Said at INFO, nothing kept.
 *   - anything else: a torn tail, said at WARN; if valid records of this
 *     life follow it, they are kept in a .cut- file for whoever looks.
 * Either way, bytes after pos are cut off (durably) on a first open: after
 * a power cut, records of this life may lie beyond the end (writes land out
 * of order), and once appends continue at pos they could be taken for their
 * successors after a second power cut (tests/rigs/power-loss found this).  A
 * takeover (trust_complete: the page cache holds all that was written, and
 * appends are serialized) leaves stale bytes alone, to be overwritten, and
 * cuts only a torn record.  A read-only open cuts nothing and notes a torn
 * tail.  0 or -errno with err set.
 */
static int
replay_end(struct wlog *w, uint32_t segno, int fd, uint64_t pos, uint64_t fsize, uint64_t seq,
    int trust_complete, const struct rec_header *h, const char *why,
    struct wlog_replay_stats *stats, char *err, size_t errlen)
{
	struct rec_header c;
	int stale = 0;
	uint64_t rest = fsize - pos, later;

	if (h) {
		c = *h;
		c.hdr_crc = 0;
		stale = h->magic == REC_MAGIC && crc32c(0, &c, sizeof(c)) == h->hdr_crc &&
		    (h->type == REC_END ? h->seq <= seq : h->seq < seq);
	}
	if (stale) {
		w->size -= rest;
		w->tail_fsize = fsize;
		if (w->readonly || trust_complete)
			return 0;
		hlog(HLOG_INFO, "log segment %08x: records end at offset %llu; cutting the %llu bytes "
		    "after them (%s)", segno, (unsigned long long)pos, (unsigned long long)rest,
		    h->type == REC_END ? "an end marker and an earlier use of the file" :
		    "an earlier use of the file");
		if (ftruncate(fd, (off_t)pos) < 0 || fdatasync(fd) < 0) {
			int e = errno;
			snprintf(err, errlen, "cannot cut log segment %08x at its end: %s", segno,
			    strerror(e));
			return -e;
		}
		stats->stale_bytes = rest;
		w->tail_fsize = pos;
		return 0;
	}
	later = seg_later_records_end(fd, pos + 1, fsize, seq);
	if (w->readonly) {
		/* a check: say what an open would cut, cut nothing */
		stats->torn_bytes = rest;
		snprintf(w->note, sizeof(w->note), "log segment %08x ends in %llu bytes "
		    "of torn tail at offset %llu (%s)%s", segno, (unsigned long long)rest,
		    (unsigned long long)pos, why, later ? "; valid records follow it" : "");
		w->size -= rest;
		w->tail_fsize = fsize;
		return 0;
	}
	if (later)
		seg_save_tail(w, segno, fd, pos, later);
	hlog(HLOG_WARN, "log segment %08x: cutting %llu bytes of torn tail at offset %llu (%s)",
	    segno, (unsigned long long)rest, (unsigned long long)pos, why);
	/*
	 * Durably, before anything is appended here: if a power cut undid the
	 * cut, records it removed (valid ones can follow a torn one) would come
	 * back after new records of the same length, and replay would take them
	 * as their successors.  (Found by tests/rigs/power-loss with a second power cut.)
	 */
	if (ftruncate(fd, (off_t)pos) < 0 || fdatasync(fd) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot cut torn tail of segment %08x: %s",
		    segno, strerror(e));
		return -e;
	}
	stats->torn_bytes = rest;
	w->size -= rest;
	w->tail_fsize = pos;
	return 0;
}

int
wlog_replay(struct wlog *w, uint64_t from, uint64_t next_seq, int trust_complete,
    int (*apply)(const struct rec_header *h, uint64_t rec_laddr, void *arg), void *arg,
    struct wlog_replay_stats *stats, char *err, size_t errlen)
{
	uint32_t table[REC_DATA_MAX / REC_BLOCK];
	unsigned char *buf;
	uint32_t segno = LADDR_SEG(from);
	uint64_t pos = LADDR_OFF(from);
	uint64_t seq = next_seq;
	int rc = 0;

	memset(stats, 0, sizeof(*stats));
	if (next_seq == 0) {
		/* records start at 1; 0 would also disable the sequence check below */
		snprintf(err, errlen, "checkpoint names sequence number 0, which no record has");
		return -EUCLEAN;
	}
	if (segno < w->first || segno > w->last || pos < sizeof(struct seg_header)) {
		snprintf(err, errlen, "checkpoint points at log address %llx, outside segments %08x..%08x",
		    (unsigned long long)from, w->first, w->last);
		return -EUCLEAN;
	}
	buf = malloc(REPLAY_CHUNK);
	if (!buf)
		return -ENOMEM;
	struct window win = { .buf = buf, .fd = -1, .chunk = buf };
	struct stat st;
	uint64_t end = 0;	/* where this segment's records end (the newest: its file's end) */
	for (;;) {
		int fd = seg_fd(w, segno);
		struct rec_header h;
		const char *why = NULL;
		int header_read = 0;

		if (win.fd != fd) {
			/* nothing else writes the log while it is replayed: one fstat per segment */
			if (fstat(fd, &st) < 0) {
				rc = -errno;
				snprintf(err, errlen, "cannot stat log segment %08x: %s", segno,
				    strerror(errno));
				break;
			}
			end = segno == w->last ? (uint64_t)st.st_size : w->segend[segno];
			/* a sealed file shorter than its end is damaged: reads past it fail below */
			window_open(&win, fd, pos, end < (uint64_t)st.st_size ? end : (uint64_t)st.st_size,
			    trust_complete);
		}
		if (pos == end) {
			if (segno == w->last)
				break;
			segno++;
			pos = sizeof(struct seg_header);
			continue;
		}
		if (pos + sizeof(h) > end)
			why = "partial record header";
		else if (window_read(&win, pos, &h, sizeof(h)) < 0)
			why = "unreadable record header";
		else if ((header_read = 1, why = rec_header_check(&h, seq)) == NULL && h.type == REC_WRITE) {
			/*
			 * With trust_complete, only a record that ends the log can be
			 * incomplete: one followed by its successor was written whole.
			 * In a reused file the bytes after the last record are stale,
			 * so "ends the log" is "no valid successor follows", not "the
			 * file ends".
			 */
			uint64_t next = pos + rec_size(&h);
			int verify = !trust_complete || next + sizeof(h) > end;
			struct rec_header nh;
			if (!verify)
				verify = window_read(&win, next, &nh, sizeof(nh)) < 0 ||
				    rec_header_check(&nh, seq + 1) != NULL;
			if (next > end)
				why = "record data cut short";
			else if (verify)
				why = window_verify(&win, pos, &h, table);
		}
		if (why) {
			if (segno != w->last) {
				rc = -EUCLEAN;
				snprintf(err, errlen, "log segment %08x is corrupt at offset %llu: %s",
				    segno, (unsigned long long)pos, why);
				break;
			}
			rc = replay_end(w, segno, fd, pos, end, seq, trust_complete,
			    header_read ? &h : NULL, why, stats, err, errlen);
			if (rc == 0)
				end = pos;
			break;
		}
		if ((rc = apply(&h, LADDR(segno, pos), arg)) < 0) {
			snprintf(err, errlen, "cannot apply record %llu: %s",
			    (unsigned long long)h.seq, strerror(-rc));
			break;
		}
		stats->records++;
		stats->bytes += rec_size(&h);
		pos += rec_size(&h);
		seq++;
	}
	window_close(&win);
	free(buf);
	if (rc == 0) {
		w->last = segno;	/* later segments were empty or never existed */
		w->tail = LADDR(segno, pos);
		w->synced = 0;
		w->next_seq = seq;
		w->replayed = 1;
	}
	return rc;
}

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
static int
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

/* Write all of iov at off, continuing after short writes; 0 or -errno. */
static int
pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t off)
{
	while (cnt > 0) {
		ssize_t n = pwritev(fd, iov, cnt, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (uint64_t)n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

void
wlog_sums_compute(struct wlog_sums *sums, const void *data, uint64_t length)
{
	assert(length > 0 && length <= REC_DATA_MAX);
	sums->length = length;
	crc32c_blocks(data, length, REC_BLOCK, sums->table);
	sums->data_crc = crc32c(0, sums->table, 4 * rec_blocks(length));
}

int
wlog_append(struct wlog *w, struct rec_header *h, const void *data, uint64_t *rec_laddr)
{
	return wlog_append_sums(w, h, data, NULL, rec_laddr);
}

int
wlog_append_sums(struct wlog *w, struct rec_header *h, const void *data,
    const struct wlog_sums *sums, uint64_t *rec_laddr)
{
	uint64_t dlen = h->type == REC_WRITE ? h->length : 0;
	struct wlog_sums own;
	uint64_t tail, off, reclen, fsize;
	struct rec_header mark;
	struct iovec iov[4];
	int fd, rc, cnt = 1;

	assert(w->replayed);
	if (w->broken)
		return -EIO;
	if (w->readonly)
		return -EROFS;
	/* never write what replay would refuse: it would cut everything after it */
	if (h->type != REC_WRITE && h->type != REC_ZERO && h->type != REC_SIZE)
		return -EINVAL;
	if (h->type == REC_WRITE && (dlen == 0 || dlen > REC_DATA_MAX))
		return -EINVAL;
	if (h->type != REC_SIZE && h->offset + h->length < h->offset)
		return -EINVAL;
	if (h->flags & ~(h->type == REC_ZERO ? REC_F_GROW : 0))
		return -EINVAL;
	/* sums for another length (the caller cut the write at the disk's end) do not apply */
	if (dlen && (!sums || sums->length != dlen)) {
		wlog_sums_compute(&own, data, dlen);
		sums = &own;
	}
	reclen = rec_size(h);
	tail = w->tail;
	if (LADDR_OFF(tail) + reclen > w->segment_size &&
	    LADDR_OFF(tail) > sizeof(struct seg_header)) {
		if ((rc = wlog_roll(w)) < 0)
			return rc;
		tail = w->tail;
	}
	off = LADDR_OFF(tail);
	fd = seg_fd(w, LADDR_SEG(tail));

	h->magic = REC_MAGIC;
	h->seq = w->next_seq;
	h->reserved1 = 0;
	h->reserved2 = 0;
	h->reserved3 = 0;
	h->data_crc = 0;
	iov[0] = (struct iovec){ h, sizeof(*h) };
	if (dlen) {
		h->data_crc = sums->data_crc;
		iov[1] = (struct iovec){ (void *)sums->table, 4 * rec_blocks(dlen) };
		iov[2] = (struct iovec){ (void *)data, dlen };
		cnt = 3;
	}
	h->hdr_crc = 0;
	h->hdr_crc = crc32c(0, h, sizeof(*h));
	fsize = w->tail_fsize;
	if (off + reclen < fsize) {
		/* stale bytes follow in this reused file: end the log visibly (logfmt.h) */
		memset(&mark, 0, sizeof(mark));
		mark.magic = REC_MAGIC;
		mark.type = REC_END;
		mark.seq = h->seq + 1;
		mark.hdr_crc = crc32c(0, &mark, sizeof(mark));
		iov[cnt++] = (struct iovec){ &mark, sizeof(mark) };
		if (off + reclen + sizeof(mark) > fsize)
			fsize = off + reclen + sizeof(mark);
	} else {
		fsize = off + reclen;
	}

	if (w->append_hook && dlen) {
		/* fault injection: the header alone, then the hook, then the rest */
		if ((rc = pwritev_all(fd, iov, 1, off)) == 0) {
			w->append_hook(w->append_hook_arg);
			rc = pwritev_all(fd, iov + 1, cnt - 1, off + sizeof(*h));
		}
	} else {
		rc = pwritev_all(fd, iov, cnt, off);
	}
	if (rc < 0) {
		/* leave no partial record behind for the next append to follow */
		if (ftruncate(fd, (off_t)off) < 0)
			hlog(HLOG_WARN, "cannot cut partial record in segment %08x: %s",
			    LADDR_SEG(tail), strerror(errno));
		else
			w->tail_fsize = off;	/* the stale bytes after it went too */
		return rc;
	}
	w->tail_fsize = fsize;
	w->next_seq++;
	w->size += reclen;
	w->tail = LADDR(LADDR_SEG(tail), off + reclen);
	*rec_laddr = tail;
	return 0;
}

/* Read up to len bytes at off: the count read (short only at the file's end) or -errno. */
static ssize_t
pread_upto(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Exactly len bytes at off: 0, -errno, or -EBADMSG with *why when the file ends first. */
static int
pread_exact(int fd, void *buf, size_t len, uint64_t off, const char *what, const char **why)
{
	ssize_t got = pread_upto(fd, buf, len, off);

	if (got < 0)
		return (int)got;
	if ((size_t)got < len) {
		*why = what;
		return -EBADMSG;
	}
	return 0;
}

/* A record's first read takes this much: a 4 KiB record whole, else its header and table. */
#define READ_HEAD	(sizeof(struct rec_header) + 4 + REC_BLOCK)

/* What a read wants of a record: data bytes [s, e), in blocks [b0, b1) = data bytes [cs, ce). */
struct rec_span {
	uint64_t s, e, b0, b1, cs, ce;
};

/* Does REC_WRITE h hold bytes [doff, doff+len) of disk disk_id?  NULL with *sp filled, or why not. */
static const char *
rec_span(const struct rec_header *h, uint64_t disk_id, uint64_t doff, size_t len,
    struct rec_span *sp)
{
	if (h->type != REC_WRITE || h->disk_id != disk_id || doff < h->offset ||
	    doff - h->offset > h->length || len > h->length - (doff - h->offset))
		return "record does not hold these bytes of this disk";
	sp->s = doff - h->offset;
	sp->e = sp->s + len;
	sp->b0 = sp->s / REC_BLOCK;
	sp->b1 = (sp->e + REC_BLOCK - 1) / REC_BLOCK;
	sp->cs = sp->b0 * REC_BLOCK;
	sp->ce = sp->b1 * REC_BLOCK < h->length ? sp->b1 * REC_BLOCK : h->length;
	return NULL;
}

/*
 * Read span sp of the data of the record at segment offset pos (header h)
 * into buf, checking each block against table (the crcs of blocks [b0, b1)).
 * head holds the first got bytes of the record (NULL: none were read).
 * 0, -errno, or -EBADMSG with *why; buf may hold anything after an error.
 */
static int
rec_read_blocks(int fd, uint64_t pos, const struct rec_header *h, const struct rec_span *sp,
    const uint32_t *table, const unsigned char *head, uint64_t got, void *buf, const char **why)
{
	unsigned char edge[2 * REC_BLOCK];
	void *heap_data = NULL;
	const unsigned char *data;
	uint64_t dstart = rec_data_start(h);
	int rc = 0;

	if (head && dstart + sp->ce <= got) {
		data = head + dstart + sp->cs;		/* the first read brought it all */
	} else {
		/* whole blocks wanted go straight to buf; partial ones through a bounce buffer */
		unsigned char *to = sp->cs == sp->s && sp->ce == sp->e ? buf :
		    sp->ce - sp->cs <= sizeof(edge) ? edge : (heap_data = malloc(sp->ce - sp->cs));
		if (!to)
			return -ENOMEM;
		if ((rc = pread_exact(fd, to, sp->ce - sp->cs, pos + dstart + sp->cs,
		    "record data past the end of its segment", why)) < 0)
			goto out;
		data = to;
	}
	for (uint64_t i = sp->b0; i < sp->b1; i++) {
		const unsigned char *blk = data + (i - sp->b0) * REC_BLOCK;
		uint64_t blen = rec_block_len(h, i);
		if (crc32c(0, blk, blen) != table[i - sp->b0]) {
			*why = "data block checksum mismatch";
			rc = -EBADMSG;
			goto out;
		}
	}
	if (data != buf)
		memcpy(buf, data + (sp->s - sp->cs), sp->e - sp->s);
out:
	free(heap_data);
	return rc;
}

/* A read looked up in the record cache: what it asks, and what the cache gave. */
struct cached_read {
	uint64_t	 disk_id, doff;
	size_t		 len;
	int		 usable;
	struct rec_header h;
	struct rec_span	 sp;
	uint32_t	 crcs[RECCACHE_TABLE_MAX];
};

/* reccache_find() callback: copy the header and the crcs of the blocks the read touches. */
static void
cached_read_take(const struct rec_header *h, const uint32_t *table, void *arg)
{
	struct cached_read *cr = arg;

	/* not bytes of this record: the uncached read says what is wrong */
	if (rec_span(h, cr->disk_id, cr->doff, cr->len, &cr->sp) != NULL ||
	    cr->sp.b1 - cr->sp.b0 > RECCACHE_TABLE_MAX)
		return;
	cr->h = *h;
	memcpy(cr->crcs, table + cr->sp.b0, (cr->sp.b1 - cr->sp.b0) * sizeof(*table));
	cr->usable = 1;
}

/*
 * After a read that needed a second pread for its data: keep the record's
 * header and table (all in head, got bytes) if the table is sound and the
 * record is wholly before the tail, where no append can rewrite it.
 */
static void
rec_cache_put(struct wlog *w, uint64_t rec, const struct rec_header *h,
    const unsigned char *head, uint64_t got)
{
	uint64_t tlen = 4 * rec_blocks(h->length);

	if (sizeof(*h) + tlen > got || rec + rec_size(h) > atomic_load(&w->tail) ||
	    crc32c(0, head + sizeof(*h), tlen) != h->data_crc)
		return;
	reccache_put(w->cache, rec, h, (const uint32_t *)(const void *)(head + sizeof(*h)));
}

static int
wlog_read_from(struct wlog *w, int cached, uint64_t rec, uint64_t disk_id, uint64_t doff,
    void *buf, size_t len, const char **why)
{
	uint64_t headbuf[(READ_HEAD + 7) / 8];		/* 8-aligned: the table is read in place */
	unsigned char *head = (unsigned char *)headbuf;
	uint32_t tslice[64];
	void *heap_table = NULL;
	const uint32_t *table;
	struct rec_header h;
	struct rec_span sp;
	uint64_t pos = LADDR_OFF(rec);
	int fd = seg_fd(w, LADDR_SEG(rec));
	ssize_t got;
	int rc;

	*why = NULL;
	if (fd < 0 || LADDR_SEG(rec) < w->first || LADDR_SEG(rec) > w->last) {
		*why = "log address names no segment";
		return -EBADMSG;
	}
	cached = cached && w->cache;
	if (cached) {
		struct cached_read cr;
		cr.disk_id = disk_id;
		cr.doff = doff;
		cr.len = len;
		cr.usable = 0;
		if (reccache_find(w->cache, rec, cached_read_take, &cr) && cr.usable)
			return rec_read_blocks(fd, pos, &cr.h, &cr.sp, cr.crcs, NULL, 0, buf, why);
	}
	if ((got = pread_upto(fd, head, READ_HEAD, pos)) < 0)
		return (int)got;
	if ((size_t)got < sizeof(h)) {
		*why = "record header past the end of its segment";
		return -EBADMSG;
	}
	memcpy(&h, head, sizeof(h));
	if ((*why = rec_header_check(&h, 0)) != NULL || (*why = rec_span(&h, disk_id, doff, len, &sp)) != NULL)
		return -EBADMSG;
	if (sizeof(h) + 4 * sp.b1 <= (uint64_t)got) {
		table = (const uint32_t *)(const void *)(head + sizeof(h)) + sp.b0;
	} else {
		size_t tlen = 4 * (sp.b1 - sp.b0);
		uint32_t *t = tlen <= sizeof(tslice) ? tslice : (heap_table = malloc(tlen));
		if (!t)
			return -ENOMEM;
		if ((rc = pread_exact(fd, t, tlen, pos + sizeof(h) + 4 * sp.b0,
		    "crc table past the end of its segment", why)) < 0)
			goto out;
		table = t;
	}
	if (cached && rec_data_start(&h) + sp.ce > (uint64_t)got)
		rec_cache_put(w, rec, &h, head, (uint64_t)got);
	rc = rec_read_blocks(fd, pos, &h, &sp, table, head, (uint64_t)got, buf, why);
out:
	free(heap_table);
	return rc;
}

int
wlog_read(struct wlog *w, uint64_t rec, uint64_t disk_id, uint64_t doff,
    void *buf, size_t len, const char **why)
{
	return wlog_read_from(w, 0, rec, disk_id, doff, buf, len, why);
}

int
wlog_read_cached(struct wlog *w, uint64_t rec, uint64_t disk_id, uint64_t doff,
    void *buf, size_t len, const char **why)
{
	return wlog_read_from(w, 1, rec, disk_id, doff, buf, len, why);
}

int
wlog_sync(struct wlog *w, uint64_t upto)
{
	uint64_t target;
	int rc = 0, fd;

	pthread_mutex_lock(&w->sync_lock);
	for (;;) {
		if (w->broken) {
			pthread_mutex_unlock(&w->sync_lock);
			return -EIO;
		}
		if (w->synced >= upto) {
			pthread_mutex_unlock(&w->sync_lock);
			return 0;
		}
		if (!w->syncing)
			break;
		pthread_cond_wait(&w->sync_cond, &w->sync_lock);
	}
	w->syncing = 1;
	target = w->tail;
	pthread_mutex_unlock(&w->sync_lock);

	/* older segments were synced when the log rolled past them */
	fd = seg_fd(w, LADDR_SEG(target));
	if (fdatasync(fd) < 0) {
		rc = -errno;
		hlog(HLOG_ERROR, "fdatasync of log segment %08x failed: %s; the log refuses "
		    "further writes until the mount restarts", LADDR_SEG(target), strerror(errno));
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

void
wlog_set_append_hook(struct wlog *w, void (*hook)(void *arg), void *arg)
{
	w->append_hook_arg = arg;
	w->append_hook = hook;
}

uint64_t
wlog_tail(const struct wlog *w)
{
	return w->tail;
}

uint64_t
wlog_next_seq(const struct wlog *w)
{
	return w->next_seq;
}

uint64_t
wlog_size(const struct wlog *w)
{
	return w->size;
}

uint64_t
wlog_disk_bytes(const struct wlog *w)
{
	return w->size - w->released;
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
