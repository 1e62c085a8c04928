/*
 * diskio: reading and writing disk contents (the hot path), and moving
 * live data for the cleaner and rewriting it for the defragmenter.
 *
 * Design notes
 *
 * A read assembles its bytes from three sources, by extent:
 *   log extent  -> pread from the log segment
 *   zero extent -> memset
 *   no extent   -> the template (zeros past the template's end)
 * A write, zero or resize is a log record (wlog_append) applied to the map
 * (disk_apply) under log_lock; see store.c for the lock order.
 * Nothing here touches SQLite.
 *
 * Invariants:
 * - Every request holds ns_lock shared from its disk lookup to its end
 *   (io_begin .. io_end): the disk cannot be freed under it, and taking
 *   ns_lock exclusively waits out every read (disks_read_barrier).
 * - A record is applied to the map in the same log_lock section that
 *   appended it (disk_log): map order = log order = replay order.
 * - A disk's size changes only under log_lock, so a write cut at the end
 *   of the disk is cut at the size the record is applied against.
 * - A move (store_move_segment) or a rewrite (store_rewrite_run) appends
 *   its copy only if, under log_lock, the extents still map the same
 *   records (log_copy_locked): a guest write that landed after the copy was
 *   read wins, and the copy is not written.  Neither changes the mtime.
 *
 * Limits (checked under log_lock, before a guest's record is appended; the
 * cleaner's moves and the checkpoints are exempt, so they can give space
 * back when guests have taken all they may):
 * - the reserve: a write that would leave less than st->space_reserve bytes
 *   free on the data dir's file system gets ENOSPC and wakes the checkpoint
 *   thread, whose cleaner then works with the reserve (space_admit).  Free
 *   space is the last statvfs less what was appended since, looked at again
 *   when that estimate comes within SPACE_SLACK of the reserve;
 * - the extent cap: a write or zero range that could take the maps of all
 *   disks past st->extents_max extents gets ENOSPC (extents_admit), so the
 *   index file is bounded whatever the guests' write pattern;
 * - the size cap: a disk cannot be grown past st->disk_size_max (EFBIG).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "clock.h"
#include "hlog.h"
#include "fence.h"
#include "store_int.h"

/*
 * A guest request on d now (the defragmenter waits for a disk to be idle).
 * The coarse clock costs a few ns, and the line is written only when it
 * ticked (every few ms), so requests on one disk do not bounce it.
 */
static void
disk_touch_io(struct disk *d)
{
	struct timespec ts;
	int64_t now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (atomic_load_explicit(&d->io_ns, memory_order_relaxed) != now)
		atomic_store_explicit(&d->io_ns, now, memory_order_relaxed);
}

/*
 * Start a request on disk id: take ns_lock shared and find the disk, if it
 * can serve I/O.  0 (then io_end() ends the request) or -errno (nothing held).
 */
static int
io_begin(struct store *st, uint64_t id, struct disk **out)
{
	struct disk *d;
	int rc;

	/* a store in a cluster: only while this host still serves it (fence.h) */
	if (st->fence && (rc = fence_check(st->fence)) < 0)
		return rc;
	pthread_rwlock_rdlock(&st->ns_lock);
	if (!(d = disk_get(st, id)) || d->tmpl->problem[0]) {
		pthread_rwlock_unlock(&st->ns_lock);
		return d ? -EIO : -ENOENT;
	}
	disk_touch_io(d);
	*out = d;
	return 0;
}

static void
io_end(struct store *st)
{
	pthread_rwlock_unlock(&st->ns_lock);
}

/* io_begin for a change: a snapshot is read-only (-EROFS). */
static int
io_begin_change(struct store *st, uint64_t id, struct disk **out)
{
	int rc = io_begin(st, id, out);

	if (rc == 0 && (*out)->snap_of) {
		io_end(st);
		return -EROFS;
	}
	return rc;
}

/* ---- limits ------------------------------------------------------------ */

#define SPACE_SLACK	(UINT64_C(8) << 20)	/* look again when the estimate is this near */
#define SPACE_WAKE_NS	1000000000		/* wake the cleaner at most once a second */
#define REC_OVERHEAD	4096			/* more than a record's header and crc table */

void
store_limits_init(struct store *st, const struct store_opts *o)
{
	st->space_reserve_opt = o->space_reserve;
	st->extents_max = o->max_extents ? o->max_extents : STORE_EXTENTS_MAX_DEFAULT;
	st->disk_size_max = o->max_disk_size && o->max_disk_size <= DISK_SIZE_MAX ?
	    o->max_disk_size : STORE_DISK_SIZE_MAX_DEFAULT;
}

/* statvfs the data dir: the free space and the reserve in effect.  Under log_lock. */
static void
space_look_locked(struct store *st)
{
	struct statvfs vfs;
	uint64_t fs_bytes, dflt;

	if (statvfs(st->datadir, &vfs) < 0) {
		/* cannot tell: refuse nothing, look again after a few appends */
		st->space_reserve = 0;
		st->space_free = 4 * SPACE_SLACK;
		return;
	}
	st->space_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	fs_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	dflt = 2 * st->segment_size + STORE_RESERVE_CATALOG;
	if (dflt > fs_bytes / STORE_RESERVE_MAX_FRACTION)
		dflt = fs_bytes / STORE_RESERVE_MAX_FRACTION;
	st->space_reserve = st->space_reserve_opt == STORE_RESERVE_NONE ? 0 :
	    st->space_reserve_opt ? st->space_reserve_opt : dflt;
}

void
store_space_look(struct store *st, uint64_t *free_bytes, uint64_t *reserve)
{
	pthread_mutex_lock(&st->log_lock);
	space_look_locked(st);
	*free_bytes = st->space_free;
	*reserve = st->space_reserve;
	pthread_mutex_unlock(&st->log_lock);
}

/*
 * May a guest record of need bytes go to the log, leaving the reserve?
 * Under log_lock.  0, or -ENOSPC (then the cleaner is woken, at most once a
 * second, and the first refusal of a spell is logged).
 */
static int
space_admit(struct store *st, uint64_t need)
{
	int64_t now;

	if (st->space_free < st->space_reserve + need + SPACE_SLACK)
		space_look_locked(st);
	/* no reserve: the file system itself says ENOSPC, and nothing is woken */
	if (st->space_reserve == 0 || st->space_free >= st->space_reserve + need) {
		st->space_free = st->space_free > need ? st->space_free - need : 0;
		if (st->space_woke_ns) {
			hlog(HLOG_INFO, "data dir has room again: guest writes resume");
			st->space_woke_ns = 0;
		}
		return 0;
	}
	now = clock_mono_ns();
	if (!st->space_woke_ns)
		hlog(HLOG_WARN, "data dir full: %llu MiB free, %llu MiB kept for the cleaner and "
		    "checkpoints; guest writes get ENOSPC until the cleaner gives space back",
		    (unsigned long long)(st->space_free >> 20),
		    (unsigned long long)(st->space_reserve >> 20));
	if (!st->space_woke_ns || now - st->space_woke_ns >= SPACE_WAKE_NS) {
		st->space_woke_ns = now;
		checkpoint_wake(st);
	}
	return -ENOSPC;
}

/* dmap_walk callback: count extents, stop at the third. */
static int
count_to_three(const struct extent *e, void *arg)
{
	(void)e;
	return ++*(int *)arg >= 3;
}

/*
 * May a guest record over [off, off+len) of d change the map without the
 * maps of all disks passing extents_max?  Under ns_lock shared and
 * log_lock.  A record adds at most two extents (it cuts one in three), and
 * none when it overlaps three or more (it replaces them), so writes that
 * defragment are always let through.  st->extents is an upper bound (purged
 * disks are not subtracted): near the cap it is counted again.  0 or -ENOSPC.
 */
static int
extents_admit(struct store *st, struct disk *d, uint64_t off, uint64_t len)
{
	int overlapping = 0;

	if (!st->extents_counted || st->extents + 2 > st->extents_max) {
		st->extents = disks_extent_count(st, NULL);
		st->extents_counted = 1;
	}
	if (st->extents + 2 <= st->extents_max) {
		st->extents_refusing = 0;
		return 0;
	}
	pthread_rwlock_rdlock(&d->lock);
	dmap_walk(d, off, off + len, count_to_three, &overlapping);
	pthread_rwlock_unlock(&d->lock);
	if (overlapping >= 3)
		return 0;
	/* once per spell: a guest may retry thousands of times */
	if (!st->extents_refusing)
		hlog(HLOG_WARN, "disk '%s': the maps hold %llu extents, the most allowed is %llu; "
		    "refusing writes that would add more (ENOSPC)", d->name,
		    (unsigned long long)st->extents, (unsigned long long)st->extents_max);
	st->extents_refusing = 1;
	return -ENOSPC;
}

/* May d grow to size?  Logs why not.  0 or -EFBIG. */
static int
size_admit(struct store *st, const struct disk *d, uint64_t size)
{
	if (size <= d->size || size <= st->disk_size_max)
		return 0;
	hlog(HLOG_WARN, "disk '%s': refusing to grow it to %llu bytes, past the largest disk "
	    "size of %llu bytes (EFBIG)", d->name, (unsigned long long)size,
	    (unsigned long long)st->disk_size_max);
	return -EFBIG;
}

void
store_space(struct store *st, struct store_space *out)
{
	store_space_look(st, &out->free_bytes, &out->reserve_bytes);
	pthread_rwlock_rdlock(&st->ns_lock);
	out->extents = disks_extent_count(st, &out->map_bytes);
	pthread_rwlock_unlock(&st->ns_lock);
	out->extents_max = st->extents_max;
	out->disk_size_max = st->disk_size_max;
}

/*
 * Read one log extent, verified.  A damaged record fails just the read that
 * touches it, with EIO and a log line naming the disk and the range; the
 * rest of the disk keeps working.
 */
static int
log_read(struct store *st, struct disk *d, const struct extent *e, char *out)
{
	const char *why;
	int rc = wlog_read_cached(st->log, e->laddr, d->family, e->loff, out, e->len, &why);

	if (rc == 0)
		return 0;
	hlog(HLOG_ERROR, "disk '%s': cannot read bytes %llu..%llu from log record %08x:%llu: %s; "
	    "returning EIO (hcowctl check explains the damage)", d->name,
	    (unsigned long long)e->loff, (unsigned long long)(e->loff + e->len),
	    LADDR_SEG(e->laddr), (unsigned long long)LADDR_OFF(e->laddr),
	    why ? why : strerror(-rc));
	return -EIO;
}

/* The index gave extents out of order around off: a read there fails, the rest of the disk works. */
static int
map_damaged(const struct disk *d, uint64_t off)
{
	hlog(HLOG_ERROR, "disk '%s': the index's extents around byte %llu are out of order (a "
	    "damaged page); returning EIO (hcowctl check explains the damage)", d->name,
	    (unsigned long long)off);
	return -EIO;
}

ssize_t
store_read(struct store *st, uint64_t id, void *buf, size_t len, uint64_t off)
{
	return store_read_from(st, id, buf, len, off, NULL);
}

ssize_t
store_read_from(struct store *st, uint64_t id, void *buf, size_t len, uint64_t off,
    struct store_read_src *src)
{
	struct extent pieces[READ_PIECES];
	struct extent_batch b = { .e = pieces, .cap = READ_PIECES };
	struct disk *d;
	uint64_t pos, end;
	char *out = buf;
	int rc;

	if ((rc = io_begin(st, id, &d)) < 0)
		return rc;
	/* the size and the first batch in one visit to the lock: most reads need no other */
	pthread_rwlock_rdlock(&d->lock);
	end = off < d->size ? off + (len < d->size - off ? len : d->size - off) : off;
	extent_batch_fill(d, off, end, &b);
	pthread_rwlock_unlock(&d->lock);
	for (pos = off; pos < end; ) {
		if (b.rc < 0) {
			rc = map_damaged(d, pos);
			goto out;
		}
		/* a full batch may stop short of end: continue after its last piece */
		uint64_t batch_end = b.n == b.cap ? b.e[b.n - 1].loff + b.e[b.n - 1].len : end;

		for (size_t i = 0; i <= b.n; i++) {
			uint64_t gap_end = i < b.n ? b.e[i].loff : batch_end;
			if (gap_end > pos &&
			    (rc = tmpl_read(d->tmpl, out + (pos - off), gap_end - pos, pos)) < 0)
				goto out;
			if (src && gap_end > pos)
				src->tmpl_bytes += gap_end - pos;
			if (i == b.n)
				break;
			if (b.e[i].laddr == EXTMAP_ZERO)
				memset(out + (b.e[i].loff - off), 0, b.e[i].len);
			else if ((rc = log_read(st, d, &b.e[i], out + (b.e[i].loff - off))) < 0)
				goto out;
			else if (src)
				src->log_bytes += b.e[i].len;
			pos = b.e[i].loff + b.e[i].len;
		}
		pos = batch_end;
		if (pos < end) {
			pthread_rwlock_rdlock(&d->lock);
			extent_batch_fill(d, pos, end, &b);
			pthread_rwlock_unlock(&d->lock);
		}
	}
	rc = (int)(end - off);
out:
	io_end(st);
	return rc;
}

/*
 * Append a record for d and apply it.  Caller holds ns_lock shared and
 * log_lock.  sums: the data's checksums if the caller computed them before
 * taking log_lock, else NULL.  touch: the record changes d's contents (its
 * mtime becomes now); a move or a rewrite of the same bytes does not.
 */
static int
disk_log_record(struct store *st, struct disk *d, struct rec_header *h, const void *data,
    const struct wlog_sums *sums, int touch)
{
	uint64_t laddr = 0, before;
	int rc;

	/* a clone's bytes belong to its family (logfmt.h); 0 for a family's first disk */
	if (h->type == REC_WRITE)
		rec_set_aux(h, d->family == (uint64_t)d->id ? 0 : d->family);
	if ((rc = wlog_append_sums(st->log, h, data, sums, &laddr)) < 0)
		return rc;
	disk_logged(st, d);
	pthread_rwlock_wrlock(&d->lock);
	before = dmap_count(d);
	rc = disk_apply(d, h, laddr);
	/* modulo 2^64: right as long as extents was at least the true sum */
	st->extents += dmap_count(d) - before;
	if (touch)
		d->mtime_ns = now_ns();
	pthread_rwlock_unlock(&d->lock);
	if (rc < 0)
		hlog(HLOG_ERROR, "disk '%s': record %llu is in the log but not in memory (%s); "
		    "it takes effect at the next mount", d->name,
		    (unsigned long long)h->seq, strerror(-rc));
	return rc;
}

int
disk_log(struct store *st, struct disk *d, struct rec_header *h, const void *data,
    const struct wlog_sums *sums)
{
	return disk_log_record(st, d, h, data, sums, 1);
}

/* Set the size of d by a REC_SIZE record.  Caller holds ns_lock shared and log_lock. */
static int
disk_resize(struct store *st, struct disk *d, uint64_t size)
{
	struct rec_header h = { 0 };

	int rc;

	if (size == d->size)
		return 0;
	if ((rc = size_admit(st, d, size)) < 0)
		return rc;
	h.type = REC_SIZE;
	h.disk_id = (uint64_t)d->id;
	h.offset = size;
	return disk_log(st, d, &h, NULL, NULL);
}

ssize_t
store_write(struct store *st, uint64_t id, const void *buf, size_t len, uint64_t off)
{
	struct rec_header h = { 0 };
	uint64_t n = len < REC_DATA_MAX ? len : REC_DATA_MAX;
	struct wlog_sums sums;
	struct disk *d;
	ssize_t rc;

	if (len == 0)
		return 0;
	/* at the largest disk's end, as a file system at its largest file: what fits, then EFBIG */
	if (off >= st->disk_size_max)
		return -EFBIG;
	if (n > st->disk_size_max - off)
		n = st->disk_size_max - off;
	/* checksum outside log_lock, so that writers do it in parallel */
	wlog_sums_compute(&sums, buf, n);
	if ((rc = io_begin_change(st, id, &d)) < 0)
		return rc;
	pthread_mutex_lock(&st->log_lock);
	h.type = REC_WRITE;
	h.disk_id = (uint64_t)d->id;
	h.offset = off;
	h.length = n;
	/*
	 * The size only changes under log_lock, so it holds until the append.  A
	 * write past the end grows the disk first, as a file grows: a crash
	 * between the two records leaves it grown, not written.
	 */
	if ((rc = space_admit(st, n + REC_OVERHEAD)) == 0 &&
	    (rc = extents_admit(st, d, off, n)) == 0 &&
	    (off + n <= d->size || (rc = disk_resize(st, d, off + n)) == 0) &&
	    (rc = disk_log(st, d, &h, buf, &sums)) == 0)
		rc = (ssize_t)n;
	pthread_mutex_unlock(&st->log_lock);
	if (rc > 0)
		checkpoint_nudge(st);
	io_end(st);
	return rc;
}


int
store_zero(struct store *st, uint64_t id, uint64_t off, uint64_t len, int keep_size)
{
	struct rec_header h = { 0 };
	struct disk *d;
	int rc;

	if (off + len < off || off + len > DISK_SIZE_MAX)
		return -EFBIG;
	if ((rc = io_begin_change(st, id, &d)) < 0)
		return rc;
	pthread_mutex_lock(&st->log_lock);
	h.type = REC_ZERO;
	h.disk_id = (uint64_t)d->id;
	h.offset = off;
	if (!keep_size && off + len > d->size) {
		/* one record grows and zeroes: a crash between two would grow without zeroing */
		h.flags = REC_F_GROW;
		h.length = len;
		if (!len)
			rc = disk_resize(st, d, off);
		else if ((rc = size_admit(st, d, off + len)) == 0 &&
		    (rc = extents_admit(st, d, off, len)) == 0)
			rc = disk_log(st, d, &h, NULL, NULL);
	} else if (off < d->size && len > 0) {
		h.length = (off + len < d->size ? off + len : d->size) - off;
		if ((rc = extents_admit(st, d, off, h.length)) == 0)
			rc = disk_log(st, d, &h, NULL, NULL);
	}
	pthread_mutex_unlock(&st->log_lock);
	io_end(st);
	return rc;
}

int
store_resize(struct store *st, uint64_t id, uint64_t size, int grow_only)
{
	struct disk *d;
	int rc;

	if ((rc = io_begin_change(st, id, &d)) < 0)
		return rc;
	pthread_mutex_lock(&st->log_lock);
	if (size > d->size || !grow_only)
		rc = disk_resize(st, d, size);
	pthread_mutex_unlock(&st->log_lock);
	io_end(st);
	return rc;
}

void
disk_logged(struct store *st, struct disk *d)
{
	/* log_lock orders appends, so the mark only grows */
	atomic_store(&d->flush_upto, wlog_tail(st->log));
}

/*
 * A flush of disk id: the log made durable up to the disk's newest record,
 * or up to the tail at open, whichever is later.  Every record of the disk
 * acknowledged before the flush began lies before that point (the kernel
 * sends FSYNC once the writes it covers are answered, and each record's
 * append sets the mark before its answer), so a flush that finds it durable
 * already (another disk's flush, or another writer's on this disk, covered
 * it) costs nothing.  What the catalog holds (names, modes, a new disk) is
 * durable at its commit.
 */
int
store_sync(struct store *st, uint64_t id)
{
	uint64_t upto = st->flush_floor;
	struct disk *d;
	int rc = 0;

	pthread_rwlock_rdlock(&st->ns_lock);
	if (!(d = disk_get(st, id)))
		rc = -ENOENT;
	else if (atomic_load(&d->flush_upto) > upto)
		upto = atomic_load(&d->flush_upto);
	pthread_rwlock_unlock(&st->ns_lock);
	return rc < 0 ? rc : wlog_sync(st->log, upto);
}

/*
 * What kind of bytes start at pos, and where that run ends (<= end):
 * 1 = data, 0 = hole.  Log extents are data, zero extents and bytes past
 * the template's end are holes, and unwritten template ranges are what the
 * template file says (its own holes stay holes).
 */
static int
disk_run_at(struct disk *d, uint64_t pos, uint64_t end, uint64_t *run_end)
{
	struct extent e;
	uint64_t tsize = d->tmpl->rec.size;
	off_t data, hole;

	if (dmap_first(d, pos, end, &e)) {
		if (e.loff == pos) {
			*run_end = e.loff + e.len;
			return e.laddr != EXTMAP_ZERO;
		}
		end = e.loff;		/* template bytes up to the next extent */
	}
	if (pos >= tsize) {
		*run_end = end;
		return 0;
	}
	if (end > tsize)
		end = tsize;
	if (d->tmpl->cached) {
		*run_end = end;		/* a pool template is data throughout */
		return 1;
	}
	data = lseek(d->tmpl->fd, (off_t)pos, SEEK_DATA);
	if (data < 0 || (uint64_t)data >= end) {
		*run_end = end;
		return 0;
	}
	if ((uint64_t)data > pos) {
		*run_end = (uint64_t)data;
		return 0;
	}
	hole = lseek(d->tmpl->fd, (off_t)pos, SEEK_HOLE);
	*run_end = hole < 0 || (uint64_t)hole > end ? end : (uint64_t)hole;
	return 1;
}

/*
 * SEEK_DATA/SEEK_HOLE answer in whole blocks of SEEK_BLOCK bytes, as a file
 * system's do: a block is a hole only if all of it is.  qemu-img rounds a
 * data run's start up to its sector and reads what lies before as zeros,
 * so a byte-exact answer inside a block lost data in `qemu-img convert`.
 */
#define SEEK_BLOCK	4096u

/* The first byte of [pos, end) that is data (end if none), under d->lock. */
static uint64_t
first_data(struct disk *d, uint64_t pos, uint64_t end)
{
	uint64_t run_end;

	while (pos < end && !disk_run_at(d, pos, end, &run_end))
		pos = run_end;
	return pos < end ? pos : end;
}

/* The first block at or after block-aligned pos that is all hole (the disk's size if none). */
static uint64_t
first_hole_block(struct disk *d, uint64_t pos)
{
	while (pos < d->size) {
		uint64_t block_end = d->size - pos < SEEK_BLOCK ? d->size : pos + SEEK_BLOCK;
		uint64_t data = first_data(d, pos, block_end), run_end;
		if (data == block_end)
			return pos;
		/* past the data run found, to the block after it: runs, not blocks, are counted */
		disk_run_at(d, data, d->size, &run_end);
		pos = run_end + (SEEK_BLOCK - run_end % SEEK_BLOCK) % SEEK_BLOCK;
	}
	return d->size;
}

int
store_seek(struct store *st, uint64_t id, uint64_t off, int whence, uint64_t *res)
{
	struct disk *d;
	uint64_t block = off - off % SEEK_BLOCK, at;
	int rc = 0;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if ((rc = io_begin(st, id, &d)) < 0)
		return rc;
	pthread_rwlock_rdlock(&d->lock);
	if (off >= d->size) {
		rc = -ENXIO;
	} else if (whence == SEEK_DATA) {
		/* in the block of the first data byte from off's block on */
		at = first_data(d, block, d->size);
		if (at >= d->size)
			rc = -ENXIO;
		else
			*res = at - at % SEEK_BLOCK > off ? at - at % SEEK_BLOCK : off;
	} else {
		/* the end of a disk counts as a hole */
		at = first_hole_block(d, block);
		*res = at > off ? at : off;
	}
	pthread_rwlock_unlock(&d->lock);
	io_end(st);
	return rc;
}

/* ---- moving live data (the cleaner) ----------------------------------- */

/* The extent e still maps its whole range to the same record?  Under d->lock. */
static int
extent_unchanged(const struct disk *d, const struct extent *e)
{
	struct extent x;

	return dmap_first(d, e->loff, e->loff + e->len, &x) &&
	    x.loff == e->loff && x.len == e->len && x.laddr == e->laddr;
}

/*
 * The copy of a move or a rewrite: buf, the bytes of run e[0..n) (extents
 * each following the one before) read from their records with no lock
 * held, appended as one REC_WRITE for d if every extent still maps the
 * record it did.  A guest write that landed after the bytes were read
 * changed the map, so it wins and nothing is appended; log addresses are
 * never reused, so an unchanged extent names the very bytes that were read.
 * Under ns_lock shared and log_lock.  1 (appended), 0 (changed), -errno.
 */
static int
log_copy_locked(struct store *st, struct disk *d, const struct extent *e, size_t n,
    const char *buf)
{
	struct rec_header h = { 0 };
	uint64_t end = e[n - 1].loff + e[n - 1].len;
	int same = end <= d->size;
	int rc;

	pthread_rwlock_rdlock(&d->lock);
	for (size_t i = 0; same && i < n; i++)
		same = extent_unchanged(d, &e[i]);
	pthread_rwlock_unlock(&d->lock);
	if (!same)
		return 0;
	h.type = REC_WRITE;
	h.disk_id = (uint64_t)d->id;
	h.offset = e[0].loff;
	h.length = end - e[0].loff;
	rc = disk_log_record(st, d, &h, buf, NULL, 0);
	return rc < 0 ? rc : 1;
}

int
store_rewrite_run(struct store *st, uint64_t id, const struct extent *e, size_t n,
    const char *buf)
{
	struct disk *d;
	int rc = 0;

	assert(n > 0 && e[n - 1].loff + e[n - 1].len - e[0].loff <= REC_DATA_MAX);
	pthread_rwlock_rdlock(&st->ns_lock);
	pthread_mutex_lock(&st->log_lock);
	if ((d = disk_get(st, id)) != NULL && !d->snap_of)
		rc = log_copy_locked(st, d, e, n, buf);
	pthread_mutex_unlock(&st->log_lock);
	pthread_rwlock_unlock(&st->ns_lock);
	if (rc > 0)
		checkpoint_nudge(st);
	return rc;
}

/*
 * Moves of one segment, so that a record several disks share (snapshots,
 * clones) is copied once: each copy made is noted, and a later disk mapping
 * the same bytes of the same record gets a REC_LINK to the copy instead.
 * The moves come in log order, so the notes are in (old_laddr, loff) order.
 */
struct move_note {
	uint64_t	 old_laddr, loff, len;	/* the bytes copied */
	uint64_t	 new_laddr;		/* the copy, a record starting at loff */
};

struct moves {
	struct move_note *v;
	size_t		 n, cap;
};

/* The copy holding all of extent e, or NULL. */
static const struct move_note *
moves_find(const struct moves *m, const struct extent *e)
{
	size_t lo = 0, hi = m->n;

	/* the last note at or before (e->laddr, e->loff) */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct move_note *x = &m->v[mid];
		if (x->old_laddr < e->laddr || (x->old_laddr == e->laddr && x->loff <= e->loff))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct move_note *x = &m->v[lo - 1];
	return x->old_laddr == e->laddr && x->loff <= e->loff &&
	    e->loff + e->len <= x->loff + x->len ? x : NULL;
}

static void
moves_note(struct moves *m, const struct extent *e, uint64_t new_laddr)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct move_note *v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return;		/* a later sharer gets a copy of its own: more bytes, still right */
		m->v = v;
		m->cap = cap;
	}
	m->v[m->n++] = (struct move_note){ e->laddr, e->loff, e->len, new_laddr };
}

/*
 * Move one extent of disk id (family: whose records it reads) to the tail:
 * a REC_LINK to a copy made for another disk, else a copy.  0 (moved, or
 * overwritten meanwhile) or -errno.
 */
static int
move_extent(struct store *st, uint64_t id, uint64_t family, const struct extent *e, char *buf,
    struct moves *m, struct clean_stats *cs)
{
	const struct move_note *copy = moves_find(m, e);
	struct rec_header h = { 0 };
	const char *why;
	struct disk *d;
	int rc;

	/* read without locks (slow), append under them only if nothing changed */
	if (!copy && (rc = wlog_read(st->log, e->laddr, family, e->loff, buf, e->len, &why)) < 0) {
		hlog(HLOG_ERROR, "cleaner: cannot move bytes %llu..%llu of disk %llu out of log "
		    "record %08x:%llu: %s; that segment keeps its space",
		    (unsigned long long)e->loff, (unsigned long long)(e->loff + e->len),
		    (unsigned long long)id, LADDR_SEG(e->laddr),
		    (unsigned long long)LADDR_OFF(e->laddr), why ? why : strerror(-rc));
		return rc;
	}
	rc = 0;
	pthread_rwlock_rdlock(&st->ns_lock);
	pthread_mutex_lock(&st->log_lock);
	d = disk_get(st, id);
	if (d && copy) {
		pthread_rwlock_rdlock(&d->lock);
		int same = extent_unchanged(d, e);
		pthread_rwlock_unlock(&d->lock);
		h.disk_id = id;
		h.offset = e->loff;
		h.length = e->len;
		h.type = REC_LINK;
		rec_set_aux(&h, copy->new_laddr);
		if (same)
			rc = disk_log_record(st, d, &h, NULL, NULL, 0);
	} else if (d) {
		uint64_t before = wlog_tail(st->log);
		if ((rc = log_copy_locked(st, d, e, 1, buf)) > 0) {
			cs->bytes_moved += e->len;
			struct extent now;
			/* the copy's address: where the map points now */
			pthread_rwlock_rdlock(&d->lock);
			if (dmap_first(d, e->loff, e->loff + e->len, &now) && now.laddr >= before)
				moves_note(m, e, now.laddr);
			pthread_rwlock_unlock(&d->lock);
		}
		rc = rc < 0 ? rc : 0;
	}
	pthread_mutex_unlock(&st->log_lock);
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

/* One disk's live extent in the segment being moved, with whose records it reads. */
struct seg_extent {
	struct extent	 e;
	uint64_t	 id, family;
};

/* Log order: by record, then by offset in it (the order of the bytes in the segment). */
static int
seg_extent_cmp(const void *a, const void *b)
{
	const struct extent *x = &((const struct seg_extent *)a)->e;
	const struct extent *y = &((const struct seg_extent *)b)->e;

	if (x->laddr != y->laddr)
		return x->laddr < y->laddr ? -1 : 1;
	return x->loff < y->loff ? -1 : x->loff > y->loff;
}

/*
 * Every disk's live extents in segment seg, in log order: *out (the
 * caller frees it), *n.  0 or -errno.
 */
static int
seg_extents(struct store *st, uint32_t seg, struct seg_extent **out, size_t *n)
{
	struct seg_extent *v = NULL;
	size_t cnt = 0, cap = 0;
	uint64_t *ids;
	size_t nids;
	int rc;

	if ((rc = disk_ids(st, &ids, &nids)) < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < nids; i++) {
		struct extent_batch b = { .grow = 1, .log_only = 1, .seg = seg };

		/* a disk deleted since disk_ids has nothing left to move */
		rc = disk_extents_copy(st, ids[i], 0, UINT64_MAX, &b, NULL, 0);
		if (rc == -ENOENT)
			rc = 0;
		if (rc == 0 && cnt + b.n > cap) {
			size_t ncap = (cnt + b.n) * 2;
			struct seg_extent *nv = realloc(v, ncap * sizeof(*nv));
			if (nv) {
				v = nv;
				cap = ncap;
			} else {
				rc = -ENOMEM;
			}
		}
		for (size_t k = 0; rc == 0 && k < b.n; k++)
			v[cnt++] = (struct seg_extent){ b.e[k], ids[i], b.family };
		free(b.e);
	}
	free(ids);
	if (rc < 0) {
		free(v);
		return rc;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), seg_extent_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

/*
 * The cleaner reads a segment ahead of its moves in windows of this many
 * bytes: on a disk, one long read where the segment has left the page
 * cache, and one trip of the arm away from the log's tail per window.
 */
#define MOVE_PREFETCH	(UINT64_C(16) << 20)

/*
 * The extents are moved in log order, whichever disk they belong to, so the
 * segment is read front to back (a disk written at random has its blocks in
 * the log in no logical order), and a record's sharers come one after the
 * other.
 */
int
store_move_segment(struct store *st, uint32_t seg, char *buf, struct clean_stats *cs)
{
	struct moves m = { 0 };
	struct extent last = { 0 };
	struct seg_extent *v;
	uint64_t ahead = 0;	/* segment offset the prefetch reaches */
	size_t n;
	int rc;

	if ((rc = seg_extents(st, seg, &v, &n)) < 0)
		return rc;
	for (size_t k = 0; rc == 0 && k < n; k++) {
		const struct extent *e = &v[k].e;
		uint64_t at = LADDR_OFF(e->laddr);
		if (at >= ahead) {
			/* this window and the next: the disk reads on while we move */
			wlog_prefetch(st->log, LADDR(seg, at), LADDR(seg, at + 2 * MOVE_PREFETCH));
			ahead = at + MOVE_PREFETCH;
		}
		cs->moves++;
		cs->moves_back += e->laddr < last.laddr ||
		    (e->laddr == last.laddr && e->loff < last.loff);
		last = *e;
		rc = move_extent(st, v[k].id, v[k].family, e, buf, &m, cs);
	}
	free(m.v);
	free(v);
	return rc;
}
