/*
 * wlog: see wlog.h for the contract, logfmt.h for the bytes, wlog_int.h for
 * the state and which file of the log does what.
 *
 * This file owns opening and closing the log: listing DATADIR/log, checking
 * every segment's header, learning where each sealed segment's records end;
 * the names and headers of segment files; and the counters read by the
 * store (tail, size...).
 *
 * Invariants after a successful open:
 *   - the segments present between first and last are open, and each has a
 *     sound header naming its own number and this store's uuid; numbers
 *     missing between them were released (wlog_replay requires the ones it
 *     reads, from its start to last);
 *   - the end of every sealed segment s < last is set (the next header's
 *     prev_end; for a version 2 segment, or one whose successor was
 *     released, its file size: a release cuts the predecessor to its end);
 *   - no header-only segment but the newest: a store made before released
 *     segments were removed has them; open removes them (seg_remove);
 *   - size counts the bytes of records and headers of every segment; the
 *     newest segment's file size stands in for its end until wlog_replay()
 *     finds it.
 *
 * The life of a struct wlog, and the function that moves it on:
 *
 *   from        to          by                   what happens
 *   -           OPEN        wlog_open            headers checked; a newest segment
 *                                                whose header never became durable
 *                                                is removed; spares taken into the pool
 *   -           OPEN (ro)   wlog_open_ro         as above, but no file changes:
 *                                                what would have is in wlog_note()
 *   OPEN        REPLAYED    wlog_replay          the end found, a torn tail cut
 *                                                off; appends allowed (wlog_replay.c)
 *   REPLAYED    REPLAYED    wlog_append,         the tail advances, segments are
 *                           wlog_release         added and given back (wlog_segment.c)
 *   REPLAYED    BROKEN      wlog_sync,           an fdatasync failed: every later
 *                           wlog_roll            append and sync fails (wlog_append.c)
 *   any         -           wlog_close
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "hlog.h"
#include "media.h"
#include "reccache.h"
#include "wlog_int.h"

/*
 * Records whose header and table a mount keeps: 4096 x 1 MiB records (FUSE's
 * largest write) cover 4 GiB of recent writes, in at most ~4.4 MiB of memory.
 */
#define RECCACHE_SLOTS	4096

uint64_t
wlog_first_laddr(void)
{
	return LADDR(1, sizeof(struct seg_header));
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

int
wlog_create(const char *dir, const uint8_t uuid[16])
{
	return wlog_create_on(dir, uuid, NULL);
}

int
wlog_create_on(const char *dir, const uint8_t uuid[16], struct media *m)
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
	m = media_or_local(m);
	if ((rc = m->ops->seg_sync(m, 1, fd, sizeof(struct seg_header))) == 0 && fsync(dirfd) < 0)
		rc = -errno;
	close(fd);
	close(dirfd);
	return rc;
}

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
		/* what it holds is unknown: stale records, as far as appends are concerned */
		w->spares[w->nspares++] = (struct spare){ fd, names[i], (uint64_t)st.st_size,
		    (uint64_t)st.st_size };
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
	char name_buf[32];
	int rc;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	memcpy(w->uuid, uuid, 16);
	w->segment_size = segment_size;
	w->readonly = readonly;
	w->media = media_local();
	pthread_mutex_init(&w->sync_lock, NULL);
	{
		/* the group commit's gathering waits on the monotonic clock */
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&w->sync_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	w->gather_max_ns = WLOG_GATHER_MAX_NS;
	pthread_mutex_init(&w->spare_lock, NULL);
	pthread_mutex_init(&w->fill_lock, NULL);
	pthread_cond_init(&w->fill_cond, NULL);
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
		if (segs[i] == 0 || segs[i] >= WLOG_SEGMENTS_MAX) {
			rc = -EUCLEAN;
			snprintf(err, errlen, "log segment %s: number out of range", name);
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
		if ((rc = seg_table_set(w, segs[i], fd)) < 0) {
			close(fd);
			snprintf(err, errlen, "no memory for the log's segment table");
			goto fail;
		}
		w->first = segs[0];	/* so that wlog_close() on failure closes it */
		w->last = segs[i];
		fsize[i] = (uint64_t)st.st_size;
		prev_end[i] = seg_header_prev_end(&sh);
	}
	w->first = segs[0];
	w->last = segs[nsegs - 1];
	/*
	 * A sealed segment's records end where the next header says (logfmt.h);
	 * when the next was released, where its file ends (the release cut it
	 * there).  The newest one's end is found by replay: until then, its
	 * file size.
	 */
	for (size_t i = 0; i + 1 < nsegs; i++) {
		uint64_t end = segs[i + 1] == segs[i] + 1 && prev_end[i + 1] ? prev_end[i + 1] : fsize[i];
		seg_table_set_end(w, segs[i], end);
		w->size += fsize[i] < end ? fsize[i] : end;
	}
	w->size += fsize[nsegs - 1];
	w->tail_fsize = fsize[nsegs - 1];
	/* released segments of a store made before they were removed: header-only files */
	for (size_t i = 0; !readonly && i + 1 < nsegs; i++) {
		if (fsize[i] > sizeof(struct seg_header))
			continue;
		if ((rc = seg_remove(w, segs[i])) < 0) {
			seg_name(segs[i], name_buf, sizeof(name_buf));
			snprintf(err, errlen, "cannot remove released log segment %s: %s", name_buf,
			    strerror(-rc));
			goto fail;
		}
		w->size -= fsize[i];
	}
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
wlog_set_media(struct wlog *w, struct media *m)
{
	w->media = media_or_local(m);
}

void
wlog_close(struct wlog *w)
{
	if (!w)
		return;
	wlog_fill_stop(w);
	for (size_t k = 0; k < SEGTAB_DIR; k++) {
		struct segtab_chunk *c = w->segtab[k];
		for (size_t i = 0; c && i < SEGTAB_CHUNK; i++)
			if (c->fd[i] > 0)
				close(c->fd[i] - 1);
		free(c);
	}
	for (int i = 0; i < w->nspares; i++)
		close(w->spares[i].fd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	pthread_mutex_destroy(&w->sync_lock);
	pthread_cond_destroy(&w->sync_cond);
	pthread_mutex_destroy(&w->spare_lock);
	pthread_mutex_destroy(&w->fill_lock);
	pthread_cond_destroy(&w->fill_cond);
	reccache_free(w->cache);
	free(w);
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
