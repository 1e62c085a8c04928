/*
 * diskio: reading and writing disk contents (the hot path).
 *
 * A read assembles its bytes from three sources, by extent:
 *   log extent  -> pread from the log segment
 *   zero extent -> memset
 *   no extent   -> the template (zeros past the template's end)
 * A write, zero or resize is a log record (wlog_append) applied to the map
 * (disk_apply) under log_lock; see store.c for the lock order.
 * Nothing here touches SQLite.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hlog.h"
#include "store_int.h"

/* Look up a disk that can serve I/O; ns_lock held shared by the caller. */
static int
disk_for_io(struct store *st, uint64_t id, struct disk **out)
{
	struct disk *d = disk_get(st, id);

	if (!d)
		return -ENOENT;
	if (d->tmpl->problem[0])
		return -EIO;
	*out = d;
	return 0;
}

struct read_batch {
	struct extent	p[READ_PIECES];
	int		n;
};

static int
read_collect(const struct extent *e, void *arg)
{
	struct read_batch *b = arg;

	b->p[b->n++] = *e;
	return b->n == READ_PIECES;
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
	int rc = wlog_read_cached(st->log, e->laddr, d->id, e->loff, out, e->len, &why);

	if (rc == 0)
		return 0;
	hlog(HLOG_ERROR, "disk '%s': cannot read bytes %llu..%llu from log record %08x:%llu: %s; "
	    "returning EIO (hcowctl check explains the damage)", d->name,
	    (unsigned long long)e->loff, (unsigned long long)(e->loff + e->len),
	    LADDR_SEG(e->laddr), (unsigned long long)LADDR_OFF(e->laddr),
	    why ? why : strerror(-rc));
	return -EIO;
}

/* Copy the extents over [pos, end) into b, up to READ_PIECES; d->lock held shared. */
static void
read_batch_fill(struct disk *d, uint64_t pos, uint64_t end, struct read_batch *b)
{
	b->n = 0;
	if (pos < end)
		extmap_walk(d->map, pos, end, read_collect, b);
}

ssize_t
store_read(struct store *st, uint64_t id, void *buf, size_t len, uint64_t off)
{
	struct read_batch b;
	struct disk *d;
	uint64_t pos, end;
	char *out = buf;
	int rc;

	pthread_rwlock_rdlock(&st->ns_lock);
	if ((rc = disk_for_io(st, id, &d)) < 0)
		goto out;
	/* the size and the first batch in one visit to the lock: most reads need no other */
	pthread_rwlock_rdlock(&d->lock);
	end = off < d->size ? off + (len < d->size - off ? len : d->size - off) : off;
	read_batch_fill(d, off, end, &b);
	pthread_rwlock_unlock(&d->lock);
	for (pos = off; pos < end; ) {
		/* a full batch may stop short of end: continue after its last piece */
		uint64_t batch_end = b.n == READ_PIECES ? b.p[b.n - 1].loff + b.p[b.n - 1].len : end;

		for (int i = 0; i <= b.n; i++) {
			uint64_t gap_end = i < b.n ? b.p[i].loff : batch_end;
			if (gap_end > pos &&
			    (rc = tmpl_read(d->tmpl, out + (pos - off), gap_end - pos, pos)) < 0)
				goto out;
			if (i == b.n)
				break;
			if (b.p[i].laddr == EXTMAP_ZERO)
				memset(out + (b.p[i].loff - off), 0, b.p[i].len);
			else if ((rc = log_read(st, d, &b.p[i], out + (b.p[i].loff - off))) < 0)
				goto out;
			pos = b.p[i].loff + b.p[i].len;
		}
		pos = batch_end;
		if (pos < end) {
			pthread_rwlock_rdlock(&d->lock);
			read_batch_fill(d, pos, end, &b);
			pthread_rwlock_unlock(&d->lock);
		}
	}
	rc = (int)(end - off);
out:
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

/*
 * Append a record for d and apply it.  Caller holds ns_lock shared and
 * log_lock.  sums: the data's checksums if the caller computed them before
 * taking log_lock, else NULL.
 */
int
disk_log(struct store *st, struct disk *d, struct rec_header *h, const void *data,
    const struct wlog_sums *sums)
{
	uint64_t laddr = 0;
	int rc;

	if ((rc = wlog_append_sums(st->log, h, data, sums, &laddr)) < 0)
		return rc;
	pthread_rwlock_wrlock(&d->lock);
	rc = disk_apply(d, h, laddr);
	d->mtime_ns = now_ns();
	pthread_rwlock_unlock(&d->lock);
	if (rc < 0)
		hlog(HLOG_ERROR, "disk '%s': record %llu is in the log but not in memory (%s); "
		    "it takes effect at the next mount", d->name,
		    (unsigned long long)h->seq, strerror(-rc));
	return rc;
}

ssize_t
store_write(struct store *st, uint64_t id, const void *buf, size_t len, uint64_t off)
{
	struct rec_header h = { 0 };
	struct wlog_sums sums;
	struct disk *d;
	ssize_t rc;

	if (len == 0)
		return 0;
	/*
	 * Checksum outside log_lock, so that writers do it in parallel.  If the
	 * write is cut at the disk's end below, wlog computes them again for
	 * the shorter record.
	 */
	wlog_sums_compute(&sums, buf, len < REC_DATA_MAX ? len : REC_DATA_MAX);
	pthread_rwlock_rdlock(&st->ns_lock);
	if ((rc = disk_for_io(st, id, &d)) < 0)
		goto out;
	pthread_mutex_lock(&st->log_lock);
	/* the size only changes under log_lock, so it holds until the append */
	if (off >= d->size) {
		rc = -EFBIG;
	} else {
		uint64_t n = len < d->size - off ? len : d->size - off;
		if (n > REC_DATA_MAX)
			n = REC_DATA_MAX;
		h.type = REC_WRITE;
		h.disk_id = (uint64_t)d->id;
		h.offset = off;
		h.length = n;
		rc = disk_log(st, d, &h, buf, &sums);
		if (rc == 0)
			rc = (ssize_t)n;
	}
	pthread_mutex_unlock(&st->log_lock);
	if (rc > 0)
		checkpoint_nudge(st);
out:
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

/* Set the size of d by a REC_SIZE record.  Caller holds ns_lock shared and log_lock. */
static int
disk_resize(struct store *st, struct disk *d, uint64_t size)
{
	struct rec_header h = { 0 };

	if (size > DISK_SIZE_MAX)
		return -EFBIG;
	if (size == d->size)
		return 0;
	h.type = REC_SIZE;
	h.disk_id = (uint64_t)d->id;
	h.offset = size;
	return disk_log(st, d, &h, NULL, NULL);
}

int
store_zero(struct store *st, uint64_t id, uint64_t off, uint64_t len, int keep_size)
{
	struct rec_header h = { 0 };
	struct disk *d;
	int rc;

	if (off + len < off || off + len > DISK_SIZE_MAX)
		return -EFBIG;
	pthread_rwlock_rdlock(&st->ns_lock);
	if ((rc = disk_for_io(st, id, &d)) < 0)
		goto out;
	pthread_mutex_lock(&st->log_lock);
	h.type = REC_ZERO;
	h.disk_id = (uint64_t)d->id;
	h.offset = off;
	if (!keep_size && off + len > d->size) {
		/* one record grows and zeroes: a crash between two would grow without zeroing */
		h.flags = REC_F_GROW;
		h.length = len;
		rc = len ? disk_log(st, d, &h, NULL, NULL) : disk_resize(st, d, off);
	} else if (off < d->size && len > 0) {
		h.length = (off + len < d->size ? off + len : d->size) - off;
		rc = disk_log(st, d, &h, NULL, NULL);
	}
	pthread_mutex_unlock(&st->log_lock);
out:
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

int
store_resize(struct store *st, uint64_t id, uint64_t size, int grow_only)
{
	struct disk *d;
	int rc;

	pthread_rwlock_rdlock(&st->ns_lock);
	if ((rc = disk_for_io(st, id, &d)) < 0)
		goto out;
	pthread_mutex_lock(&st->log_lock);
	if (size > d->size || !grow_only)
		rc = disk_resize(st, d, size);
	pthread_mutex_unlock(&st->log_lock);
out:
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

int
store_sync(struct store *st, uint64_t id)
{
	int rc = 0;

	pthread_rwlock_rdlock(&st->ns_lock);
	if (!disk_get(st, id))
		rc = -ENOENT;
	pthread_rwlock_unlock(&st->ns_lock);
	if (rc == 0)
		rc = wlog_sync(st->log, wlog_tail(st->log));
	return rc;
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

	if (extmap_first(d->map, pos, end, &e)) {
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

int
store_seek(struct store *st, uint64_t id, uint64_t off, int whence, uint64_t *res)
{
	struct disk *d;
	int rc, want_data = whence == SEEK_DATA;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	pthread_rwlock_rdlock(&st->ns_lock);
	if ((rc = disk_for_io(st, id, &d)) < 0)
		goto out;
	pthread_rwlock_rdlock(&d->lock);
	if (off >= d->size) {
		rc = -ENXIO;
	} else {
		uint64_t pos = off, run_end;
		rc = want_data ? -ENXIO : 0;
		*res = d->size;		/* the end of a disk counts as a hole */
		while (pos < d->size) {
			if (disk_run_at(d, pos, d->size, &run_end) == want_data) {
				*res = pos;
				rc = 0;
				break;
			}
			pos = run_end;
		}
	}
	pthread_rwlock_unlock(&d->lock);
out:
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}
