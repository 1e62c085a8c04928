/*
 * defrag: rewrite the log data of idle disks in logical order.
 *
 * Design notes
 *
 * Guest writes at random offsets become sequential appends, so a disk whose
 * blocks were written in random order lies in the log as small extents in
 * the order of the writes: a sequential read of it is one random read of
 * the log per extent (256 per MiB of 4 KiB writes: 0.4 MiB/s on a 7200 rpm
 * disk).  While such a disk is idle the defragmenter reads its scattered
 * data and appends it again, chunk by chunk in logical order, so that
 * consecutive chunks are consecutive in the log.  The old copies are dead
 * from then on; the cleaner gives their space back like any overwritten
 * data's.
 *
 * Which disks.  A pass looks at a disk when
 *   - no guest request reached it for idle_ms (disk->io_ns, which every
 *     request sets in diskio.c's io_begin): a pass never competes with the
 *     disk's own I/O;
 *   - it changed since a look found nothing to rewrite (its mtime: guest
 *     writes set it, rewrites and the cleaner's moves do not), so an idle
 *     store costs nothing;
 *   - no other disk may read its records: it is no snapshot, its family
 *     (logfmt.h) is itself alone (no snapshot, no clone).  A rewrite of a
 *     shared range would leave the sharers on the old copy, and the range
 *     would take its space twice; such disks are left as they are.
 *
 * Which chunks.  A disk's map is cut in DEFRAG_CHUNK (1 MiB) logical chunks.
 * A chunk is fragmented when reading its log data in order would seek
 * DEFRAG_BREAKS times or more: a log extent that starts neither in the
 * record of the one before it nor within DEFRAG_NEAR after it is a seek.
 * Each run of adjacent log extents of a fragmented chunk becomes one
 * ordinary REC_WRITE; a template's ranges and zeros stay as they are.  A
 * rewritten chunk is one record per run, which the next pass leaves be:
 * passes converge.
 *
 * How, one window (up to defrag_window logical bytes, a buffer that size:
 * DEFRAG_WINDOW_MAX or an eighth of the free memory) of the disk at a time:
 *   1. copy the window's log extents (disk_extents_copy), cut them at the
 *      chunks' bounds, mark the fragmented chunks;
 *   2. sweep: the extents of those chunks, sorted by log address, are read
 *      in that order (wlog_read verifies each) into the buffer at their
 *      logical place, the stretch of log they lie in prefetched one span
 *      ahead (wlog_prefetch); a span's gaps are at most DEFRAG_GAP (reading
 *      a gap costs less than the seek that skipping it would).  So the log
 *      is read in large sequential reads, not one random read per extent;
 *   3. rewrite the chunks in logical order (store_rewrite_run, diskio.c),
 *      one record per run.
 * Reading the extents in logical order instead would be the very random
 * reads the rewrite is to remove (hours for a few GiB on a disk).
 *
 * Races.  A guest write wins: store_rewrite_run appends a run only if,
 * under log_lock, each of its extents still maps the record it was read
 * from (log_copy_locked, the check of the cleaner's moves); a run that
 * changed is counted (raced) and left to a later pass.  A guest request on
 * the disk stops the pass at the next chunk or span: the disk is busy, and
 * the work resumes once it is idle again.  clean_lock is held for a window:
 * the cleaner (which could release a segment a sweep reads) and a check
 * (which reads without ns_lock) skip or wait; a pass yields it at the next
 * chunk when the cleaner asks (clean_wanted), and starts nothing while it
 * does.
 *
 * Crash safety.  A rewrite is an ordinary record of the same bytes: a crash
 * anywhere leaves each run mapped to its old copy or to its new one, which
 * read the same, before and after replay.  Nothing else is written.
 *
 * Space.  A window is rewritten only while the data dir's free space is more
 * than the reserve and twice the window's bytes to rewrite: the copies must
 * not take the room the cleaner needs to give the old ones back.
 *
 * Thread.  defrag_start runs passes on a thread of its own at low CPU
 * priority ("hcowfs-defrag"), one every DEFRAG_TICK_MS (sooner with a short
 * idle_ms), so a long pass never holds up checkpoints and map snapshots.
 * One pass at a time (pass_lock); the marks in struct disk (defrag_clean,
 * defrag_clean_mtime) are under it.  The totals (bytes rewritten, passes,
 * disks pending) are under totals_lock, for status; a disk a pass rewrote
 * gets a log line.
 *
 * Error convention: 0 or a negative errno.  A record that cannot be read
 * (damaged) is logged and its chunk left as it is.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "hlog.h"
#include "store_int.h"

#define DEFRAG_CHUNK		(UINT64_C(1) << 20)	/* rewritten as one record per run */
#define DEFRAG_BREAKS		2			/* seeks in a chunk that make it fragmented */
#define DEFRAG_NEAR		(UINT64_C(64) << 10)	/* an extent this near after the last: no seek */
#define DEFRAG_GAP		(UINT64_C(1) << 20)	/* read through gaps up to this in a sweep */
#define DEFRAG_SPAN_MAX		(UINT64_C(16) << 20)	/* the most one prefetch asks for */
#define DEFRAG_WINDOW_MAX	(UINT64_C(256) << 20)
#define DEFRAG_WINDOW_MIN	(UINT64_C(4) << 20)
#define DEFRAG_TICK_MS		1000
#define DEFRAG_NICE		10

struct defrag {
	struct store	*st;
	unsigned	 idle_ms;
	uint64_t	 window;		/* logical bytes per sweep, a multiple of DEFRAG_CHUNK */
	pthread_mutex_t	 pass_lock;		/* one pass at a time */
	pthread_mutex_t	 totals_lock;
	struct defrag_stats totals;
	/* the thread */
	pthread_t	 thread;
	int		 running;
	pthread_mutex_t	 wake_lock;
	pthread_cond_t	 wake;			/* CLOCK_MONOTONIC */
	_Atomic int	 stop;
	void		(*hook)(void *arg, uint64_t id, uint64_t off);	/* store_set_defrag_hook */
	void		*hook_arg;
	int		 space_short;		/* under pass_lock: a window waits for room (logged) */
};

/* A chunk of a window: what the pass does with it. */
enum chunk_mark { CHUNK_LEAVE, CHUNK_REWRITE, CHUNK_DAMAGED };

/* One disk's pass: what it knows of the disk and the window at hand. */
struct pass {
	struct store	*st;
	struct defrag	*df;
	struct defrag_stats *ds;
	uint64_t	 id, family, size;
	int64_t		 since;		/* the disk's io_ns when the pass began: a later one is I/O */
	char		 name[NAME_MAX_LEN + 1];
	char		*buf;		/* the window's bytes, at their logical place */
	uint64_t	 win, win_end;
	struct extent_batch b;		/* the window's log extents */
	struct extent	*piece;		/* ... cut at the chunks' bounds, in logical order */
	size_t		 npieces, piece_cap;
	struct extent	*sorted;	/* the pieces to rewrite, in log order */
	size_t		 nsorted;
	unsigned char	 mark[DEFRAG_WINDOW_MAX / DEFRAG_CHUNK];	/* enum chunk_mark */
	uint64_t	 rewritten, swept;
};

/* ---- the disk as a pass sees it ---------------------------------------- */

/* CLOCK_MONOTONIC_COARSE, the clock of disk->io_ns. */
static int64_t
coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* May another disk read d's records (a snapshot, a clone, one of its family)?  ns_lock held. */
static int
disk_shares(const struct store *st, const struct disk *d)
{
	if (d->snap_of || d->family != (uint64_t)d->id)
		return 1;
	for (size_t i = 0; i < st->ndisks; i++)
		if (st->disks[i] != d && st->disks[i]->family == d->family)
			return 1;
	return 0;
}

enum disk_state { DISK_GONE, DISK_CLEAN, DISK_BUSY, DISK_SHARED, DISK_WORK };

/* What to do with disk id now: p's size, since and family set, and its name for DISK_WORK. */
static enum disk_state
disk_state(struct store *st, uint64_t id, unsigned idle_ms, struct pass *p, int64_t *mtime)
{
	enum disk_state s = DISK_WORK;
	struct disk *d;

	pthread_rwlock_rdlock(&st->ns_lock);
	if (!(d = disk_get(st, id))) {
		pthread_rwlock_unlock(&st->ns_lock);
		return DISK_GONE;
	}
	pthread_rwlock_rdlock(&d->lock);
	*mtime = d->mtime_ns;
	p->size = d->size;
	pthread_rwlock_unlock(&d->lock);
	p->since = atomic_load(&d->io_ns);
	p->family = d->family;
	if (d->defrag_clean && d->defrag_clean_mtime == *mtime)
		s = DISK_CLEAN;
	else if (coarse_ns() - p->since < (int64_t)idle_ms * 1000000)
		s = DISK_BUSY;
	else if (disk_shares(st, d) || d->tmpl->problem[0])
		s = DISK_SHARED;
	else
		disk_full_name(st, d, p->name, sizeof(p->name));
	pthread_rwlock_unlock(&st->ns_lock);
	return s;
}

/* A look at mtime found nothing (more) to rewrite in disk id. */
static void
disk_mark_clean(struct store *st, uint64_t id, int64_t mtime)
{
	struct disk *d;

	pthread_rwlock_rdlock(&st->ns_lock);
	if ((d = disk_get(st, id)) != NULL) {
		d->defrag_clean = 1;
		d->defrag_clean_mtime = mtime;
	}
	pthread_rwlock_unlock(&st->ns_lock);
}

/*
 * Should the pass stop before its next chunk or span?  A guest request on
 * the disk since the pass began, the cleaner waiting for clean_lock, or the
 * store closing.
 */
static int
pass_must_yield(const struct pass *p)
{
	struct disk *d;
	int busy;

	if (atomic_load(&p->df->stop) || atomic_load(&p->st->clean_wanted))
		return 1;
	pthread_rwlock_rdlock(&p->st->ns_lock);
	busy = !(d = disk_get(p->st, p->id)) || atomic_load(&d->io_ns) != p->since;
	pthread_rwlock_unlock(&p->st->ns_lock);
	return busy;
}

/* ---- a window: which chunks ------------------------------------------- */

/* Would reading e after prev take a seek (see DEFRAG_NEAR)? */
static int
pieces_far(const struct extent *prev, const struct extent *e)
{
	return e->laddr != prev->laddr &&
	    (e->laddr < prev->laddr || e->laddr - prev->laddr > prev->len + DEFRAG_NEAR);
}

/* Add piece e to p's list: 0 or -ENOMEM. */
static int
piece_add(struct pass *p, const struct extent *e)
{
	if (p->npieces == p->piece_cap) {
		size_t cap = p->piece_cap ? 2 * p->piece_cap : 1024;
		struct extent *v = realloc(p->piece, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->piece = v;
		p->piece_cap = cap;
	}
	p->piece[p->npieces++] = *e;
	return 0;
}

/*
 * The window's log extents, cut at the chunks' bounds, into p->piece, and
 * each chunk marked.  Bytes to rewrite, or -errno (-ENOENT: the disk is gone).
 */
static int64_t
window_map(struct pass *p)
{
	uint64_t todo = 0;
	size_t first = 0;
	int rc;

	p->npieces = 0;
	if ((rc = disk_extents_copy(p->st, p->id, p->win, p->win_end, &p->b, NULL, 0)) < 0)
		return rc;
	for (size_t i = 0; i < p->b.n; i++) {
		struct extent e = p->b.e[i];
		while (e.len > 0) {
			uint64_t bound = (e.loff / DEFRAG_CHUNK + 1) * DEFRAG_CHUNK;
			struct extent piece = { e.loff, e.len < bound - e.loff ? e.len : bound - e.loff,
			    e.laddr };
			if ((rc = piece_add(p, &piece)) < 0)
				return rc;
			e.loff += piece.len;
			e.len -= piece.len;
		}
	}
	memset(p->mark, CHUNK_LEAVE, sizeof(p->mark));
	for (size_t i = 1; i <= p->npieces; i++) {
		/* pieces [first, i) are one chunk's */
		if (i < p->npieces && p->piece[i].loff / DEFRAG_CHUNK == p->piece[first].loff / DEFRAG_CHUNK)
			continue;
		unsigned breaks = 0;
		uint64_t bytes = p->piece[first].len;
		for (size_t k = first + 1; k < i; k++) {
			breaks += (unsigned)pieces_far(&p->piece[k - 1], &p->piece[k]);
			bytes += p->piece[k].len;
		}
		if (breaks >= DEFRAG_BREAKS) {
			p->mark[(p->piece[first].loff - p->win) / DEFRAG_CHUNK] = CHUNK_REWRITE;
			todo += bytes;
		}
		first = i;
	}
	return (int64_t)todo;
}

/* ---- a window: the sweep ------------------------------------------------ */

/* qsort: pieces in log order (by record, then by offset in the disk). */
static int
by_laddr(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	if (x->laddr != y->laddr)
		return x->laddr < y->laddr ? -1 : 1;
	return x->loff < y->loff ? -1 : x->loff > y->loff;
}

/* Where the bytes of e end in the log, about (its record's header and crc table before them). */
static uint64_t
piece_log_end(const struct extent *e)
{
	return e->laddr + sizeof(struct rec_header) + 4 * rec_blocks(e->len) + e->len;
}

/* The end (exclusive) of the span of p->sorted starting at i: one prefetch's pieces. */
static size_t
span_end(const struct pass *p, size_t i)
{
	uint64_t start = p->sorted[i].laddr, end = piece_log_end(&p->sorted[i]);
	size_t j = i + 1;

	for (; j < p->nsorted; j++) {
		const struct extent *e = &p->sorted[j];
		if (LADDR_SEG(e->laddr) != LADDR_SEG(start) || e->laddr > end + DEFRAG_GAP ||
		    piece_log_end(e) - start > DEFRAG_SPAN_MAX)
			break;
		end = piece_log_end(e) > end ? piece_log_end(e) : end;
	}
	return j;
}

/* Prefetch the span of p->sorted [i, j). */
static void
span_prefetch(struct pass *p, size_t i, size_t j)
{
	uint64_t end = 0;

	for (size_t k = i; k < j; k++)
		end = piece_log_end(&p->sorted[k]) > end ? piece_log_end(&p->sorted[k]) : end;
	wlog_prefetch(p->st->log, p->sorted[i].laddr, end);
	p->swept += end - p->sorted[i].laddr;
}

/*
 * Read the pieces of the chunks to rewrite into p->buf, in log order, a
 * span prefetched ahead of its reading.  A piece that cannot be read marks
 * its chunk damaged.  0, 1 (the pass must yield), or -ENOMEM.
 */
static int
window_sweep(struct pass *p)
{
	size_t j, next;

	free(p->sorted);
	if (!(p->sorted = malloc((p->npieces ? p->npieces : 1) * sizeof(*p->sorted))))
		return -ENOMEM;
	p->nsorted = 0;
	for (size_t i = 0; i < p->npieces; i++)
		if (p->mark[(p->piece[i].loff - p->win) / DEFRAG_CHUNK] == CHUNK_REWRITE)
			p->sorted[p->nsorted++] = p->piece[i];
	qsort(p->sorted, p->nsorted, sizeof(*p->sorted), by_laddr);
	/* span [i, j) is read while span [j, next) is being prefetched */
	j = p->nsorted ? span_end(p, 0) : 0;
	if (p->nsorted)
		span_prefetch(p, 0, j);
	for (size_t i = 0; i < p->nsorted; i = j, j = next) {
		if (pass_must_yield(p))
			return 1;
		next = j < p->nsorted ? span_end(p, j) : j;
		if (j < p->nsorted)
			span_prefetch(p, j, next);
		for (size_t k = i; k < j; k++) {
			const struct extent *e = &p->sorted[k];
			unsigned char *mark = &p->mark[(e->loff - p->win) / DEFRAG_CHUNK];
			const char *why;
			int rc;
			if (*mark != CHUNK_REWRITE)
				continue;
			rc = wlog_read(p->st->log, e->laddr, p->family, e->loff, p->buf + (e->loff - p->win),
			    e->len, &why);
			if (rc < 0) {
				hlog(HLOG_ERROR, "defrag: disk '%s': cannot read bytes %llu..%llu from log "
				    "record %08x:%llu: %s; leaving that MiB as it is", p->name,
				    (unsigned long long)e->loff, (unsigned long long)(e->loff + e->len),
				    LADDR_SEG(e->laddr), (unsigned long long)LADDR_OFF(e->laddr),
				    why ? why : strerror(-rc));
				*mark = CHUNK_DAMAGED;
			}
		}
	}
	return 0;
}

/* ---- a window: the rewrite ---------------------------------------------- */

/*
 * Rewrite the chunks marked, in logical order, one record per run of
 * adjacent pieces.  0, 1 (the pass must yield), or -errno.
 */
static int
window_rewrite(struct pass *p)
{
	size_t i = 0;

	while (i < p->npieces) {
		uint64_t chunk = p->piece[i].loff / DEFRAG_CHUNK * DEFRAG_CHUNK;
		int todo = p->mark[(chunk - p->win) / DEFRAG_CHUNK] == CHUNK_REWRITE;
		if (todo && pass_must_yield(p))
			return 1;
		if (todo && p->df->hook)
			p->df->hook(p->df->hook_arg, p->id, chunk);
		while (i < p->npieces && p->piece[i].loff < chunk + DEFRAG_CHUNK) {
			size_t s = i++;
			while (i < p->npieces && p->piece[i].loff < chunk + DEFRAG_CHUNK &&
			    p->piece[i].loff == p->piece[i - 1].loff + p->piece[i - 1].len)
				i++;
			if (!todo)
				continue;
			int rc = store_rewrite_run(p->st, p->id, &p->piece[s], i - s,
			    p->buf + (p->piece[s].loff - p->win));
			if (rc < 0)
				return rc;
			if (rc == 0)
				p->ds->raced++;
			else
				p->rewritten += p->piece[i - 1].loff + p->piece[i - 1].len - p->piece[s].loff;
		}
		p->ds->chunks += (uint64_t)todo;
	}
	return 0;
}

/*
 * One window of disk p->id: [p->win, p->win_end).  0 (done), 1 (left for a
 * later pass: the disk is busy, the cleaner or a check runs, space is
 * short) or -errno.
 */
static int
window_defrag(struct pass *p)
{
	uint64_t free_bytes, reserve;
	int64_t todo = window_map(p);
	int rc;

	if (todo <= 0)
		return todo == -ENOENT ? 0 : (int)todo;
	store_space_look(p->st, &free_bytes, &reserve);
	if (free_bytes < reserve + 2 * (uint64_t)todo) {
		/* once a spell: the thread looks again every tick */
		if (!p->df->space_short)
			hlog(HLOG_INFO, "defrag: disk '%s': %llu MiB free, the reserve is %llu MiB; not "
			    "rewriting %llu MiB until the cleaner gives space back", p->name,
			    (unsigned long long)(free_bytes >> 20), (unsigned long long)(reserve >> 20),
			    (unsigned long long)((uint64_t)todo >> 20));
		p->df->space_short = 1;
		return 1;
	}
	p->df->space_short = 0;
	if (atomic_load(&p->st->clean_wanted) || pthread_mutex_trylock(&p->st->clean_lock) != 0)
		return 1;
	if ((rc = window_sweep(p)) == 0)
		rc = window_rewrite(p);
	pthread_mutex_unlock(&p->st->clean_lock);
	return rc;
}

/* The window: DEFRAG_WINDOW_MAX, or an eighth of the free memory, at least DEFRAG_WINDOW_MIN. */
static uint64_t
window_default(void)
{
	long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t w = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page / 8 : DEFRAG_WINDOW_MIN;

	return w > DEFRAG_WINDOW_MAX ? DEFRAG_WINDOW_MAX : w < DEFRAG_WINDOW_MIN ? DEFRAG_WINDOW_MIN : w;
}

/*
 * Disk id, if idle for idle_ms and fragmented: 0 (nothing left to do, or
 * not the defragmenter's: gone, shared), 1 (pending), or -errno.
 */
static int
disk_defrag(struct store *st, struct defrag *df, uint64_t id, unsigned idle_ms,
    struct defrag_stats *ds)
{
	struct pass p = { .st = st, .df = df, .ds = ds, .id = id,
	    .b = { .grow = 1, .log_only = 1 } };
	int64_t mtime, t0 = clock_mono_ns();
	uint64_t window;
	int rc = 0;

	switch (disk_state(st, id, idle_ms, &p, &mtime)) {
	case DISK_GONE:
	case DISK_CLEAN:
	case DISK_SHARED:
		return 0;
	case DISK_BUSY:
		return 1;
	case DISK_WORK:
		break;
	}
	window = df->window ? df->window : window_default();
	window = window < DEFRAG_CHUNK ? DEFRAG_CHUNK : window - window % DEFRAG_CHUNK;
	if (window > p.size)
		window = (p.size + DEFRAG_CHUNK - 1) / DEFRAG_CHUNK * DEFRAG_CHUNK;
	if (window == 0 || !(p.buf = malloc(window)))
		rc = window ? -ENOMEM : 0;
	for (p.win = 0; rc == 0 && p.win < p.size; p.win += window) {
		p.win_end = p.size - p.win < window ? p.size : p.win + window;
		rc = window_defrag(&p);
	}
	if (rc == 0)
		disk_mark_clean(st, id, mtime);
	if (p.rewritten)
		hlog(HLOG_INFO, "defrag: disk '%s': rewrote %.1f MiB in logical order, sweeping %.1f MiB "
		    "of log, in %.1f s%s", p.name, (double)p.rewritten / (1 << 20),
		    (double)p.swept / (1 << 20), (double)(clock_mono_ns() - t0) / 1e9,
		    rc == 1 ? "; stopped for guest I/O or the cleaner, resuming when idle" : "");
	ds->bytes_rewritten += p.rewritten;
	ds->bytes_read += p.swept;
	free(p.buf);
	free(p.b.e);
	free(p.piece);
	free(p.sorted);
	return rc;
}

int
store_defrag(struct store *st, unsigned idle_ms, struct defrag_stats *ds)
{
	struct defrag *df = st->defrag;
	uint64_t *ids;
	size_t n;
	int rc, first_err = 0;

	memset(ds, 0, sizeof(*ds));
	if (st->readonly || !df)
		return -EROFS;
	if ((rc = disk_ids(st, &ids, &n)) < 0)
		return rc;
	pthread_mutex_lock(&df->pass_lock);
	for (size_t i = 0; i < n && !atomic_load(&df->stop); i++) {
		rc = disk_defrag(st, df, ids[i], idle_ms, ds);
		if (rc != 0)
			ds->pending++;
		if (rc < 0 && !first_err) {
			hlog(HLOG_WARN, "defrag: %s", strerror(-rc));
			first_err = rc;
		}
	}
	pthread_mutex_unlock(&df->pass_lock);
	pthread_mutex_lock(&df->totals_lock);
	df->totals.bytes_rewritten += ds->bytes_rewritten;
	df->totals.bytes_read += ds->bytes_read;
	df->totals.chunks += ds->chunks;
	df->totals.raced += ds->raced;
	df->totals.pending = ds->pending;
	df->totals.passes++;
	pthread_mutex_unlock(&df->totals_lock);
	free(ids);
	return first_err;
}

void
store_defrag_totals(struct store *st, struct defrag_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!st->defrag)
		return;
	pthread_mutex_lock(&st->defrag->totals_lock);
	*out = st->defrag->totals;
	pthread_mutex_unlock(&st->defrag->totals_lock);
}

void
store_set_defrag_hook(struct store *st, void (*hook)(void *arg, uint64_t id, uint64_t off),
    void *arg)
{
	if (!st->defrag)
		return;
	st->defrag->hook_arg = arg;
	st->defrag->hook = hook;
}

/* ---- the thread ----------------------------------------------------------- */

/* Wait up to ms, or until told to stop: 0, or -1 to stop. */
static int
defrag_wait(struct defrag *df, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&df->wake_lock);
	if (!atomic_load(&df->stop))
		pthread_cond_timedwait(&df->wake, &df->wake_lock, &ts);
	pthread_mutex_unlock(&df->wake_lock);
	return atomic_load(&df->stop) ? -1 : 0;
}

/* A pass every tick, at low priority: the guests' requests come first. */
static void *
defrag_thread(void *arg)
{
	struct defrag *df = arg;
	unsigned tick = df->idle_ms / 2 < DEFRAG_TICK_MS ? df->idle_ms / 2 : DEFRAG_TICK_MS;
	struct defrag_stats ds;

	tick = tick < 20 ? 20 : tick;
	/* this thread alone (Linux: a thread is a process to setpriority) */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), DEFRAG_NICE);
	while (defrag_wait(df, tick) == 0)
		store_defrag(df->st, df->idle_ms, &ds);
	return NULL;
}

/* The idle time: o's, else HCOWFS_DEFRAG_IDLE_MS (tests, benchmarks), else the default. */
static unsigned
defrag_idle_ms(const struct store_opts *o)
{
	const char *env = getenv("HCOWFS_DEFRAG_IDLE_MS");

	if (o->defrag_idle_ms)
		return o->defrag_idle_ms;
	return env && *env ? (unsigned)strtoul(env, NULL, 10) : STORE_DEFRAG_IDLE_MS_DEFAULT;
}

int
defrag_start(struct store *st, const struct store_opts *o, char *err, size_t errlen)
{
	struct defrag *df = calloc(1, sizeof(*df));
	pthread_condattr_t ca;
	int rc;

	if (!df) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	df->st = st;
	df->idle_ms = defrag_idle_ms(o);
	df->window = o->defrag_window > DEFRAG_WINDOW_MAX ? DEFRAG_WINDOW_MAX : o->defrag_window;
	pthread_mutex_init(&df->pass_lock, NULL);
	pthread_mutex_init(&df->totals_lock, NULL);
	pthread_mutex_init(&df->wake_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&df->wake, &ca);
	pthread_condattr_destroy(&ca);
	st->defrag = df;
	if (o->readonly || df->idle_ms == STORE_DEFRAG_OFF)
		return 0;
	if ((rc = pthread_create(&df->thread, NULL, defrag_thread, df)) != 0) {
		snprintf(err, errlen, "cannot start the defrag thread: %s", strerror(rc));
		return -rc;
	}
	pthread_setname_np(df->thread, "hcowfs-defrag");
	df->running = 1;
	return 0;
}

void
defrag_stop(struct store *st)
{
	struct defrag *df = st->defrag;

	if (!df)
		return;
	if (df->running) {
		pthread_mutex_lock(&df->wake_lock);
		atomic_store(&df->stop, 1);
		pthread_cond_signal(&df->wake);
		pthread_mutex_unlock(&df->wake_lock);
		pthread_join(df->thread, NULL);
	}
	pthread_mutex_destroy(&df->pass_lock);
	pthread_mutex_destroy(&df->totals_lock);
	pthread_mutex_destroy(&df->wake_lock);
	pthread_cond_destroy(&df->wake);
	free(df);
	st->defrag = NULL;
}
