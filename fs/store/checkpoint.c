/*
 * checkpoint: the catalog's copy of the extent maps: writing it
 * (store_checkpoint), bringing the maps back from it at open (checkpoint_load,
 * checkpoint_replay), and when the checkpoint thread (store.c) runs.
 *
 * Design notes
 *
 * Owns the checkpoint position (cp_laddr: the log tail the catalog covers;
 * cp_log_size: wlog_size() then), the checkpoints' health (cp_health,
 * cp_ok_ns, under cp_mu) and the thread's wake-up (cp_mu, cp_cond, cp_stop).
 * The catalog is written only under cat_lock; store_checkpoint is the only
 * writer of extents to SQLite.
 *
 * Checkpoint (store_checkpoint):
 *   1. under log_lock, note P = log tail and swap each changed disk's dirty
 *      set for an empty one: the swapped sets cover exactly the records < P
 *   2. for each dirty range, replace the catalog's rows by the map's current
 *      extents (which may already include writes after P: harmless, replay
 *      of the records after P rewrites those ranges in order); ranges close
 *      together go as one span, whose clean parts the map and the rows agree
 *      on (or differ only in where equal extents are split)
 *   3. sync the log up to its current tail, so that every laddr the catalog
 *      is about to name is durable
 *   4. commit, with checkpoint position P
 * On failure the swapped dirty sets are merged back and the next attempt
 * redoes the work.
 *
 * A disk's ranges, between checkpoints:
 *
 *   CLEAN     --disk_apply, store_setattr (mtime)----------> DIRTY      (d->dirty, meta_dirty)
 *   DIRTY     --store_checkpoint step 1 (swap)-------------> IN FLIGHT  (d->dirty_inflight)
 *   IN FLIGHT --store_checkpoint step 4 (commit)-----------> CLEAN      (cp_laddr = P)
 *   IN FLIGHT --store_checkpoint on failure (dirty_merge)--> DIRTY
 * A snapshot (snapshot.c) taken while IN FLIGHT saves both sets, so it
 * never waits for a checkpoint.
 *
 * Recovery (store_open, in store.c, calls these in order):
 *   checkpoint_load    the maps as of the checkpoint: from a snapshot a dead
 *                      worker left (takeover), else the catalog's rows
 *   checkpoint_replay  the log records after it, through disk_apply, so the
 *                      maps end as they were at the crash; a torn tail is cut
 * From a snapshot cp_laddr is left 0: the catalog is older than the maps,
 * and the checkpoint thread writes one soon.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "hlog.h"
#include "store_int.h"

/* ---- recovery at open ------------------------------------------------- */

struct replay_ctx {
	struct store	*st;
	uint64_t	 skipped;	/* records of disks deleted since */
};

static int
replay_apply(const struct rec_header *h, uint64_t rec_laddr, void *arg)
{
	struct replay_ctx *rc = arg;
	struct disk *d = disk_get(rc->st, h->disk_id);

	if (!d) {
		rc->skipped++;
		return 0;
	}
	return disk_apply(d, h, rec_laddr);
}

static int
load_extent(int64_t disk_id, uint64_t loff, uint64_t len, int64_t laddr, void *arg)
{
	struct store *st = arg;
	struct disk *d = disk_get(st, (uint64_t)disk_id);

	if (!d || len == 0)
		return -EUCLEAN;
	/* rows come sorted by disk and offset: one that starts before the last one ended overlaps */
	if (disk_id == st->load_disk && loff < st->load_end && st->overlaps++ == 0)
		snprintf(st->overlap_what, sizeof(st->overlap_what), "disk '%s': catalog extents "
		    "overlap at offset %llu; the later row wins", d->name, (unsigned long long)loff);
	st->load_disk = disk_id;
	st->load_end = loff + len;
	return extmap_set(d->map, loff, len, laddr < 0 ? EXTMAP_ZERO : (uint64_t)laddr);
}

int
checkpoint_load(struct store *st, int takeover, uint64_t *laddr, uint64_t *seq, char *err,
    size_t errlen)
{
	int rc;

	/* a replacement takes the maps its predecessor left in shared memory, if whole */
	if (takeover && (rc = snapshot_load(st, laddr, seq)) != 0) {
		if (rc > 0)
			return 1;
		/* slower, but the catalog and the log hold everything the snapshot did */
		hlog(HLOG_WARN, "the map snapshot in shared memory is damaged (%s); loading "
		    "the maps from the catalog instead", strerror(-rc));
	}
	if ((rc = catalog_each_extent(st->cat, load_extent, st)) < 0) {
		snprintf(err, errlen, "cannot load catalog '%s/catalog.db': %s", st->datadir,
		    rc == -EUCLEAN ? "it refers to disks it does not hold" : catalog_error(st->cat));
		return rc;
	}
	return 0;
}

int
checkpoint_replay(struct store *st, uint64_t laddr, uint64_t seq, int takeover,
    int from_snapshot, struct wlog_replay_stats *rs, char *err, size_t errlen)
{
	struct replay_ctx rctx = { st, 0 };
	int rc;

	if ((rc = wlog_replay(st->log, laddr, seq, takeover, replay_apply, &rctx, rs,
	    err, errlen)) < 0)
		return rc;
	/* from a snapshot, the checkpoint is older than laddr: let the next one run */
	st->cp_laddr = from_snapshot ? 0 : laddr;
	st->cp_log_size = wlog_size(st->log) - rs->bytes;
	return 0;
}

/* ---- writing a checkpoint --------------------------------------------- */

struct cp_item {
	struct disk	*d;
	struct extmap	*dirty;
	uint64_t	 size;
	int64_t		 mtime_ns;
};

/*
 * Dirty ranges closer than CP_MERGE_GAP are written as one span (up to
 * CP_MERGE_SPAN long): the rows between them are read and, equal to the
 * map's extents there, left alone (catalog_range_replace writes only
 * differences), which costs less than the two lookups each range's edges
 * take.  Random 4 KiB writes leave ranges a few blocks apart.  The span
 * bounds how long a disk's lock is held for reading its extents.
 */
#define CP_MERGE_GAP	(UINT64_C(64) << 10)
#define CP_MERGE_SPAN	(UINT64_C(8) << 20)

struct cp_range_ctx {
	struct store	*st;
	struct disk	*d;
	uint64_t	(*ext)[3];
	size_t		 n, cap;
	uint64_t	 span_start, span_end;	/* dirty ranges gathered, not yet written */
};

static int
cp_collect(const struct extent *e, void *arg)
{
	struct cp_range_ctx *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		uint64_t (*v)[3] = realloc(c->ext, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->ext = v;
		c->cap = cap;
	}
	c->ext[c->n][0] = e->loff;
	c->ext[c->n][1] = e->len;
	c->ext[c->n][2] = e->laddr;
	c->n++;
	return 0;
}

/* Write the gathered span's rows: the map's extents over it. */
static int
cp_span_flush(struct cp_range_ctx *c)
{
	uint64_t start = c->span_start, end = c->span_end;
	int rc;

	if (start == end)
		return 0;
	c->span_start = c->span_end = 0;
	c->n = 0;
	pthread_rwlock_rdlock(&c->d->lock);
	rc = extmap_walk(c->d->map, start, end, cp_collect, c);
	pthread_rwlock_unlock(&c->d->lock);
	if (rc < 0)
		return rc;
	return catalog_range_replace(c->st->cat, c->d->id, start, end,
	    (const uint64_t (*)[3])c->ext, c->n);
}

/* A dirty range: join it to the span, or write the span and start a new one. */
static int
cp_range(const struct extent *r, void *arg)
{
	struct cp_range_ctx *c = arg;
	int rc;

	if (c->span_start != c->span_end && r->loff - c->span_end <= CP_MERGE_GAP &&
	    r->loff + r->len - c->span_start <= CP_MERGE_SPAN) {
		c->span_end = r->loff + r->len;
		return 0;
	}
	if ((rc = cp_span_flush(c)) < 0)
		return rc;
	c->span_start = r->loff;
	c->span_end = r->loff + r->len;
	return 0;
}

static int
dirty_merge(const struct extent *r, void *arg)
{
	return dirty_mark(arg, r->loff, r->len);
}

int
store_checkpoint(struct store *st)
{
	struct cp_item *items = NULL;
	size_t nitems = 0;
	struct cp_range_ctx c = { .st = st };
	uint64_t pos, seq, pos_size;
	int64_t t0 = clock_mono_ns();
	int rc = 0;

	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);

	pthread_mutex_lock(&st->log_lock);
	pos = wlog_tail(st->log);
	seq = wlog_next_seq(st->log);
	pos_size = wlog_size(st->log);	/* the log up to pos: what the catalog will cover */
	items = calloc(st->ndisks ? st->ndisks : 1, sizeof(*items));
	if (!items)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < st->ndisks; i++) {
		struct disk *d = st->disks[i];
		struct extmap *fresh;
		if (!d || !d->meta_dirty)
			continue;
		if (!(fresh = extmap_new())) {
			rc = -ENOMEM;
			break;
		}
		pthread_rwlock_wrlock(&d->lock);
		items[nitems].d = d;
		items[nitems].dirty = d->dirty;
		d->dirty_inflight = d->dirty;	/* a snapshot saves it until the commit */
		items[nitems].size = d->size;
		items[nitems].mtime_ns = d->mtime_ns;
		nitems++;
		d->dirty = fresh;
		d->meta_dirty = 0;
		pthread_rwlock_unlock(&d->lock);
	}
	pthread_mutex_unlock(&st->log_lock);
	/* an mtime set by store_setattr() is a change without a log record */
	if (rc == 0 && nitems == 0 && pos == st->cp_laddr)
		goto out;	/* nothing new since the last checkpoint */

	if (rc == 0)
		rc = catalog_begin(st->cat);
	for (size_t i = 0; rc == 0 && i < nitems; i++) {
		c.d = items[i].d;
		c.span_start = c.span_end = 0;
		rc = extmap_walk(items[i].dirty, 0, UINT64_MAX, cp_range, &c);
		if (rc == 0)
			rc = cp_span_flush(&c);
		if (rc == 0)
			rc = catalog_disk_update(st->cat, c.d->id, items[i].size, items[i].mtime_ns);
	}
	if (rc == 0)
		rc = wlog_sync(st->log, wlog_tail(st->log));
	if (rc == 0)
		rc = catalog_commit(st->cat, pos, seq);
	if (rc == 0) {
		st->cp_laddr = pos;
		st->cp_log_size = pos_size;
	} else {
		catalog_rollback(st->cat);
		pthread_mutex_lock(&st->cp_mu);
		st->cp_health.failures++;
		snprintf(st->cp_health.error, sizeof(st->cp_health.error), "%s%s%s", strerror(-rc),
		    catalog_error(st->cat)[0] ? ": " : "", catalog_error(st->cat));
		pthread_mutex_unlock(&st->cp_mu);
		/* only checkpoints, serialized by cat_lock, write it */
		hlog(HLOG_WARN, "checkpoint failed: %s", st->cp_health.error);
		for (size_t i = 0; i < nitems; i++) {
			pthread_rwlock_wrlock(&items[i].d->lock);
			extmap_walk(items[i].dirty, 0, UINT64_MAX, dirty_merge, items[i].d);
			items[i].d->meta_dirty = 1;
			pthread_rwlock_unlock(&items[i].d->lock);
		}
	}
	for (size_t i = 0; i < nitems; i++) {
		pthread_rwlock_wrlock(&items[i].d->lock);
		items[i].d->dirty_inflight = NULL;
		pthread_rwlock_unlock(&items[i].d->lock);
		extmap_free(items[i].dirty);
	}
out:
	if (rc == 0) {
		/* also when there was nothing to write: the catalog is current */
		pthread_mutex_lock(&st->cp_mu);
		st->cp_ok_ns = clock_mono_ns();
		st->cp_health.last_ms = (double)(st->cp_ok_ns - t0) / 1e6;
		st->cp_health.failures = 0;
		st->cp_health.error[0] = '\0';
		pthread_mutex_unlock(&st->cp_mu);
	}
	pthread_rwlock_unlock(&st->ns_lock);
	pthread_mutex_unlock(&st->cat_lock);
	free(items);
	free(c.ext);
	return rc;
}

void
store_checkpoint_health(struct store *st, struct store_cp_health *out)
{
	pthread_mutex_lock(&st->cp_mu);
	*out = st->cp_health;
	out->age_s = st->cp_ok_ns ? (double)(clock_mono_ns() - st->cp_ok_ns) / 1e9 : -1;
	pthread_mutex_unlock(&st->cp_mu);
	out->log_bytes_since = wlog_size(st->log) - atomic_load(&st->cp_log_size);
}

/* ---- when the checkpoint thread runs ---------------------------------- */

int
checkpoint_wait(struct store *st, unsigned ms)
{
	struct timespec ts;
	int rc;

	pthread_mutex_lock(&st->cp_mu);
	if (st->cp_stop) {
		pthread_mutex_unlock(&st->cp_mu);
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	rc = pthread_cond_timedwait(&st->cp_cond, &st->cp_mu, &ts) == 0;
	if (st->cp_stop)
		rc = -1;
	pthread_mutex_unlock(&st->cp_mu);
	return rc;
}

void
checkpoint_stop(struct store *st)
{
	pthread_mutex_lock(&st->cp_mu);
	st->cp_stop = 1;
	pthread_cond_signal(&st->cp_cond);
	pthread_mutex_unlock(&st->cp_mu);
}

/* Called after appends: wake the checkpointer early when the replay tail grows large. */
void
checkpoint_wake(struct store *st)
{
	pthread_mutex_lock(&st->cp_mu);
	pthread_cond_signal(&st->cp_cond);
	pthread_mutex_unlock(&st->cp_mu);
}

void
checkpoint_nudge(struct store *st)
{
	if (wlog_size(st->log) - st->cp_log_size > STORE_CHECKPOINT_LOG_BYTES)
		checkpoint_wake(st);
}

/* ---- other writes to the catalog's meta table ------------------------- */

int
store_meta_set(struct store *st, const char *key, const char *value, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&st->cat_lock);
	if ((rc = catalog_meta_set(st->cat, key, value)) < 0)
		snprintf(err, errlen, "%s", catalog_error(st->cat));
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}
