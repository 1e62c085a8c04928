/*
 * checkpoint: committing the disks' overlays to the index (store_checkpoint),
 * bringing the maps back at open (checkpoint_load, checkpoint_replay), and
 * when the checkpoint thread (store.c) runs.
 *
 * Design notes
 *
 * Owns the checkpoint position (cp_laddr: the log tail the index and the
 * catalog cover; cp_log_size: wlog_size() then), the checkpoints' health
 * (cp_health, cp_ok_ns, under cp_mu) and the thread's wake-up (cp_mu,
 * cp_cond, cp_stop).  store_checkpoint is the only writer of the index and
 * of the disks' sizes to the catalog (under cat_lock).
 *
 * Checkpoint (store_checkpoint):
 *   1. under log_lock, note P = log tail and freeze each changed disk's
 *      overlay (dmap_freeze): the frozen overlays hold exactly the changes of
 *      the records < P since the last commit
 *   2. sync the log up to its tail: every laddr the index will name is durable
 *   3. one index transaction: each frozen overlay into its disk's tree, the
 *      trees of disks no longer in the table dropped; commit it as exact for
 *      P (index_commit: durable on return)
 *   4. publish each new tree (dmap_publish: the frozen overlay goes), then
 *      the generation they all come from (ix_published, which handoff.c saves)
 *   5. the catalog: the disks' sizes and times, position P, in one
 *      transaction (a schema 3 catalog's extent rows are deleted in the one
 *      after the second commit that holds them: until then a meta slot
 *      without them could be fallen back to)
 * A failure in 3 leaves each frozen overlay in place (readers still see it)
 * and the disk dirty: the next checkpoint folds the newer overlay into it
 * and commits both.  A failure in 5 leaves the catalog at an older position
 * than the index: open replays from the older of the two, which only
 * rewrites ranges with the values they have.
 *
 * A disk, between checkpoints (dmap.c has the layers):
 *
 *   CLEAN     --disk_apply, store_setattr (mtime)-----------> DIRTY     (overlay, meta_dirty)
 *   DIRTY     --store_checkpoint step 1 (dmap_freeze)-------> IN FLIGHT (d->frozen)
 *   IN FLIGHT --store_checkpoint step 4 (dmap_publish)------> CLEAN     (new root)
 *   IN FLIGHT --store_checkpoint on failure-----------------> DIRTY     (frozen stays)
 * A snapshot (handoff.c) taken while IN FLIGHT saves both overlays, so it
 * never waits for a checkpoint.
 *
 * Recovery (store_open, in store.c, calls these in order):
 *   checkpoint_load    the committed trees (index_tree), and above them the
 *                      overlays a dead worker left (takeover), or a schema 3
 *                      catalog's rows
 *   checkpoint_replay  the log records after it, through disk_apply, so the
 *                      maps end as they were at the crash; a torn tail is cut
 * From a snapshot or rows, cp_laddr is left 0: the next checkpoint is due.
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

/*
 * The index's size and generation for status (index_stats reads the
 * writer's state: only the checkpoint thread, or open, may call it).
 */
static void
cp_index_figures(struct store *st)
{
	struct index_stats is;

	if (!st->ix)
		return;
	index_stats(st->ix, &is);
	pthread_mutex_lock(&st->cp_mu);
	st->cp_health.index_bytes = is.file_bytes;
	st->cp_health.index_generation = is.generation;
	pthread_mutex_unlock(&st->cp_mu);
}

/* ---- recovery at open ------------------------------------------------- */

struct replay_ctx {
	struct store	*st;
	uint64_t	 skipped;	/* records of disks deleted since */
	uint64_t	 ix_seq;	/* the index is exact up to the record before this one */
};

/*
 * A REC_CLONE the index already holds (below its position): the index has
 * dst's tree as it was at that position, and the overlay built so far holds
 * only records from before the copy, which the copy replaced: dst's view
 * becomes its committed tree, and the records after the copy follow.
 */
static void
clone_reset(struct store *st, struct disk *d, const struct disk *src)
{
	struct extmap *fresh = extmap_new();

	if (!fresh)
		return;		/* the overlay stays: only what a failed malloc can cost */
	extmap_free(d->map);
	extmap_free(d->frozen);
	d->map = fresh;
	d->frozen = NULL;
	if (index_tree(st->ix, (uint64_t)d->id, &d->root) < 0)
		memset(&d->root, 0, sizeof(d->root));
	d->root_tree = (uint64_t)d->id;
	d->root_pending = 0;
	d->log_bytes = d->root.log_bytes;
	if (src)
		d->size = src->size;
	d->meta_dirty = 1;
}

/* A REC_CLONE in replay: applied above the index's position, a reset below it. */
static int
replay_clone(struct replay_ctx *rc, struct disk *d, const struct rec_header *h, uint64_t laddr)
{
	struct disk *src = disk_get(rc->st, rec_aux(h));

	if (h->seq < rc->ix_seq) {
		clone_reset(rc->st, d, src);
		return 0;
	}
	if (!src) {
		/* disk_purge waits for a checkpoint past every copy of a disk: not reached */
		hlog(HLOG_ERROR, "disk %lld: the disk it was copied from (%llu) is gone; it keeps "
		    "what the index holds", (long long)d->id, (unsigned long long)rec_aux(h));
		clone_reset(rc->st, d, NULL);
		return 0;
	}
	rc->st->clones_replayed++;
	return dmap_copy(d, src, laddr);
}

/* A REC_SHARE in replay: applied above the index's position; below it, the index's range shows. */
static int
replay_share(struct replay_ctx *rc, struct disk *d, const struct rec_header *h, uint64_t laddr)
{
	struct disk *src = rec_aux(h) ? disk_get(rc->st, rec_aux(h)) : NULL;

	if (h->offset + h->length > DISK_SIZE_MAX) {
		/* no copy makes that: a damaged record whose checksums held */
		hlog(HLOG_ERROR, "disk %lld: a copy record past the largest disk (%llu + %llu) is "
		    "skipped", (long long)d->id, (unsigned long long)h->offset,
		    (unsigned long long)h->length);
		return 0;
	}
	if (h->seq >= rc->ix_seq && (src || !rec_aux(h)))
		return dmap_share(d, src, h->offset, h->length, laddr);
	if (h->seq >= rc->ix_seq)
		/* disk_purge waits for a checkpoint past every copy of a disk: not reached */
		hlog(HLOG_ERROR, "disk %lld: the disk a range was copied from (%llu) is gone; the "
		    "range keeps what the index holds", (long long)d->id,
		    (unsigned long long)rec_aux(h));
	dmap_reveal(d, h->offset, h->length);
	if (h->offset + h->length > d->size)
		d->size = h->offset + h->length;
	return 0;
}

static int
replay_apply(const struct rec_header *h, uint64_t rec_laddr, void *arg)
{
	struct replay_ctx *rc = arg;
	struct disk *d = disk_get(rc->st, h->disk_id);

	if (!d) {
		rc->skipped++;
		return 0;
	}
	if (h->type == REC_CLONE)
		return replay_clone(rc, d, h, rec_laddr);
	if (h->type == REC_SHARE)
		return replay_share(rc, d, h, rec_laddr);
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
	return dmap_set(d, loff, len, laddr < 0 ? EXTMAP_ZERO : (uint64_t)laddr);
}

/* Each disk's committed tree; replay must start at the older of the index's and the catalog's positions. */
static void
load_trees(struct store *st, uint64_t *laddr, uint64_t *seq)
{
	uint64_t ix_laddr, ix_seq;

	for (size_t i = 0; i < st->ndisks; i++) {
		struct disk *d = st->disks[i];
		if (index_tree(st->ix, (uint64_t)d->id, &d->root) < 0)
			memset(&d->root, 0, sizeof(d->root));
		d->root_tree = (uint64_t)d->id;
		d->log_bytes = d->root.log_bytes;
	}
	index_position(st->ix, &ix_laddr, &ix_seq);
	/* (0, 0): nothing committed yet */
	if (ix_laddr != 0 && ix_seq < *seq) {
		*laddr = ix_laddr;
		*seq = ix_seq;
	}
}

int
checkpoint_load(struct store *st, int takeover, uint64_t *laddr, uint64_t *seq, char *err,
    size_t errlen)
{
	int rc;

	if (st->ix && !st->ix_migrate)
		load_trees(st, laddr, seq);
	atomic_store(&st->ix_published, store_ix_generation(st));
	/* a replacement takes the overlays its predecessor left in shared memory, if whole */
	if (takeover && (rc = handoff_load(st, laddr, seq)) != 0) {
		if (rc > 0)
			return 1;
		/* slower, but the catalog and the log hold everything the snapshot did */
		hlog(HLOG_WARN, "the map snapshot in shared memory is damaged (%s); replaying "
		    "the log from the checkpoint instead", strerror(-rc));
	}
	if (!st->ix_migrate)
		return 0;
	/* a schema 3 catalog: its rows, until the first checkpoint moves them into the index */
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
	struct replay_ctx rctx = { st, 0, 0 };
	uint64_t ix_laddr;
	int rc;

	if (st->ix && !st->ix_migrate)
		index_position(st->ix, &ix_laddr, &rctx.ix_seq);
	if ((rc = wlog_replay(st->log, laddr, seq, takeover, replay_apply, &rctx, rs,
	    err, errlen)) < 0)
		return rc;
	cp_index_figures(st);
	/* from a snapshot or rows, the index is older than laddr: let the next checkpoint run */
	st->cp_laddr = from_snapshot || st->ix_migrate ? 0 : laddr;
	st->cp_log_size = wlog_size(st->log) - rs->bytes;
	return 0;
}

/* ---- writing a checkpoint --------------------------------------------- */


struct cp_item {
	struct disk	*d;
	int		 root_pending;	/* its tree becomes a clone of root_tree first */
	uint64_t	 root_tree;
	struct extmap	*frozen;	/* what this checkpoint commits */
	uint64_t	 size;
	int64_t		 mtime_ns;
};

struct cp_put_ctx {
	struct index_txn *txn;
	uint64_t	 id;
};

/* One frozen extent into the disk's tree. */
static int
cp_put(const struct extent *e, void *arg)
{
	struct cp_put_ctx *c = arg;

	if (e->laddr == EXTMAP_UNMAPPED)
		return index_clear(c->txn, c->id, e->loff, e->len);
	return index_set(c->txn, c->id, e->loff, e->len, e->laddr);
}

struct cp_gone {
	struct store	*st;
	uint64_t	*ids;
	size_t		 n, cap;
};

/* Collect the trees whose disk is gone (every tree, while moving a schema 3 catalog's rows). */
static int
cp_find_gone(uint64_t id, const struct index_root *r, void *arg)
{
	struct cp_gone *g = arg;

	(void)r;
	/* the first commit of a schema 3 catalog's rows: whatever the index held is not theirs */
	if (g->st->ix_migrate != 2 && disk_get(g->st, id))
		return 0;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 16;
		uint64_t *v = realloc(g->ids, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		g->ids = v;
		g->cap = cap;
	}
	g->ids[g->n++] = id;
	return 0;
}

/* A tree id no disk has: where a clone waits while its target is replaced. */
#define CP_TREE_TMP(id)	((id) | UINT64_C(1) << 62)

/*
 * Step 3's first part: each disk a REC_CLONE changed gets, as its own tree,
 * the committed tree its root names, before any tree changes in the
 * transaction (all are copied aside first, so one disk's rollback cannot
 * change what another's clone copies).
 */
static int
cp_clone_pending(struct index_txn *txn, const struct cp_item *items, size_t n)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint64_t id = (uint64_t)items[i].d->id;
		if (items[i].root_pending && items[i].root_tree && items[i].root_tree != id &&
		    (rc = index_tree_clone(txn, items[i].root_tree, CP_TREE_TMP(id))) == -ENOENT)
			rc = 0;		/* an empty tree: nothing to copy */
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint64_t id = (uint64_t)items[i].d->id;
		if (!items[i].root_pending || items[i].root_tree == id)
			continue;
		if ((rc = index_tree_drop(txn, id)) == 0 && items[i].root_tree &&
		    (rc = index_tree_clone(txn, CP_TREE_TMP(id), id)) == 0)
			rc = index_tree_drop(txn, CP_TREE_TMP(id));
		else if (rc == -ENOENT)
			rc = 0;
	}
	return rc;
}

/* Steps 3: the frozen overlays into the index, durable as of (pos, seq). */
static int
cp_index_commit(struct store *st, const struct cp_item *items, size_t n, uint64_t pos,
    uint64_t seq, char *err, size_t errlen)
{
	struct cp_gone gone = { .st = st };
	struct cp_put_ctx c;
	int rc;

	if ((rc = index_begin(st->ix, &c.txn)) < 0) {
		snprintf(err, errlen, "the index cannot begin a transaction");
		return rc;
	}
	rc = cp_clone_pending(c.txn, items, n);
	if (rc == 0)
		rc = index_each_tree(st->ix, cp_find_gone, &gone);
	for (size_t i = 0; rc == 0 && i < gone.n; i++)
		rc = index_tree_drop(c.txn, gone.ids[i]);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		c.id = (uint64_t)items[i].d->id;
		rc = extmap_walk(items[i].frozen, 0, UINT64_MAX, cp_put, &c);
	}
	free(gone.ids);
	if (rc < 0) {
		index_abort(c.txn);
		snprintf(err, errlen, "changing the index");
		return rc;
	}
	return index_commit(c.txn, pos, seq, err, errlen);
}

/* Step 5: the disks' sizes and times at position (pos, seq). */
static int
cp_catalog_commit(struct store *st, const struct cp_item *items, size_t n, uint64_t pos,
    uint64_t seq, char *err, size_t errlen)
{
	int rc = catalog_begin(st->cat);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = catalog_disk_update(st->cat, items[i].d->id, items[i].size, items[i].mtime_ns);
	if (rc == 0 && st->rows_left && st->ix_migrate == 0)
		rc = catalog_extents_retire(st->cat);
	if (rc == 0)
		rc = catalog_commit(st->cat, pos, seq);
	if (rc < 0) {
		snprintf(err, errlen, "catalog: %s", catalog_error(st->cat));
		catalog_rollback(st->cat);
	}
	return rc;
}

/* Step 1, under log_lock: freeze the overlay of each disk changed since the last checkpoint. */
static int
cp_freeze(struct store *st, struct cp_item *items, size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < st->ndisks; i++) {
		struct disk *d = st->disks[i];
		struct extmap *fresh;
		int rc;
		if (!d || (!d->meta_dirty && !d->frozen && !extmap_count(d->map) &&
		    !d->root_pending))
			continue;
		if (!(fresh = extmap_new()))
			return -ENOMEM;
		pthread_rwlock_wrlock(&d->lock);
		if ((rc = dmap_freeze(d, fresh)) < 0) {
			pthread_rwlock_unlock(&d->lock);
			extmap_free(fresh);
			return rc;
		}
		items[*n].d = d;
		items[*n].root_pending = d->root_pending;
		items[*n].root_tree = d->root_tree;
		items[*n].frozen = d->frozen;
		items[*n].size = d->size;
		items[*n].mtime_ns = d->mtime_ns;
		(*n)++;
		d->meta_dirty = 0;
		pthread_rwlock_unlock(&d->lock);
	}
	return 0;
}

/* Fault injection: call hook after steps 1, 3 and 4 of a checkpoint (see the top). */
void
store_set_checkpoint_hook(struct store *st, void (*hook)(void *arg, enum checkpoint_step s),
    void *arg)
{
	st->cp_hook_arg = arg;
	st->cp_hook = hook;
}

/* A step of a checkpoint is done: tell the fault injection, if any. */
static void
cp_step_done(struct store *st, enum checkpoint_step s)
{
	if (st->cp_hook)
		st->cp_hook(st->cp_hook_arg, s);
}

/* A checkpoint, cat_lock held; with force, a commit even when nothing changed since the last one. */
static int
checkpoint_run_locked(struct store *st, int force)
{
	struct cp_item *items = NULL;
	size_t nitems = 0;
	uint64_t pos, seq, pos_size;
	int64_t t0 = clock_mono_ns();
	char err[sizeof(st->cp_health.error)] = "";
	int rc = 0;

	pthread_rwlock_rdlock(&st->ns_lock);

	pthread_mutex_lock(&st->log_lock);
	pos = wlog_tail(st->log);
	seq = wlog_next_seq(st->log);
	pos_size = wlog_size(st->log);	/* the log up to pos: what the checkpoint will cover */
	items = calloc(st->ndisks ? st->ndisks : 1, sizeof(*items));
	rc = items ? cp_freeze(st, items, &nitems) : -ENOMEM;
	pthread_mutex_unlock(&st->log_lock);
	/* an mtime set by store_setattr() is a change without a log record */
	if (rc == 0 && nitems == 0 && pos == st->cp_laddr && !st->rows_left && !st->trees_gone &&
	    !force)
		goto out;	/* nothing new since the last checkpoint */

	if (rc == 0)
		cp_step_done(st, CHECKPOINT_FROZEN);
	if (rc < 0)
		snprintf(err, sizeof(err), "freezing the overlays");
	else if ((rc = wlog_sync(st->log, wlog_tail(st->log))) < 0)
		snprintf(err, sizeof(err), "syncing the log");
	else if ((rc = cp_index_commit(st, items, nitems, pos, seq, err, sizeof(err))) == 0) {
		cp_step_done(st, CHECKPOINT_COMMITTED);
		for (size_t i = 0; i < nitems; i++) {
			struct disk *d = items[i].d;
			struct index_root r;
			struct extmap *old;
			if (index_tree(st->ix, (uint64_t)d->id, &r) < 0)
				memset(&r, 0, sizeof(r));
			pthread_rwlock_wrlock(&d->lock);
			old = dmap_publish(d, &r);
			d->root_tree = (uint64_t)d->id;
			d->root_pending = 0;
			pthread_rwlock_unlock(&d->lock);
			extmap_free(old);
		}
		/* only now: until the last disk has its new tree, a map snapshot may see old ones */
		atomic_store(&st->ix_published, store_ix_generation(st));
		cp_step_done(st, CHECKPOINT_PUBLISHED);
		if (st->ix_migrate > 0)
			st->ix_migrate--;
		rc = cp_catalog_commit(st, items, nitems, pos, seq, err, sizeof(err));
	}
	if (rc == 0) {
		st->cp_laddr = pos;
		st->cp_log_size = pos_size;
		st->trees_gone = 0;
		if (st->ix_migrate == 0)
			st->rows_left = 0;
	} else {
		pthread_mutex_lock(&st->cp_mu);
		st->cp_health.failures++;
		/* the errno's words first: operators and tests look for them */
		snprintf(st->cp_health.error, sizeof(st->cp_health.error), "%s%s%s", strerror(-rc),
		    err[0] ? ": " : "", err);
		pthread_mutex_unlock(&st->cp_mu);
		/* only checkpoints, serialized by cat_lock, write it */
		hlog(HLOG_WARN, "checkpoint failed: %s", st->cp_health.error);
		/* what was frozen stays frozen (or is published): commit it and the sizes next time */
		for (size_t i = 0; i < nitems; i++) {
			pthread_rwlock_wrlock(&items[i].d->lock);
			items[i].d->meta_dirty = 1;
			pthread_rwlock_unlock(&items[i].d->lock);
		}
	}
out:
	if (rc == 0) {
		/* also when there was nothing to write: the checkpoint is current */
		cp_index_figures(st);
		pthread_mutex_lock(&st->cp_mu);
		st->cp_ok_ns = clock_mono_ns();
		st->cp_health.last_ms = (double)(st->cp_ok_ns - t0) / 1e6;
		st->cp_health.failures = 0;
		st->cp_health.error[0] = '\0';
		pthread_mutex_unlock(&st->cp_mu);
	}
	pthread_rwlock_unlock(&st->ns_lock);
	free(items);
	return rc;
}

static int
checkpoint_run(struct store *st, int force)
{
	int rc;

	pthread_mutex_lock(&st->cat_lock);
	rc = checkpoint_run_locked(st, force);
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}

int
store_checkpoint(struct store *st)
{
	return checkpoint_run(st, 0);
}

int
checkpoint_locked(struct store *st)
{
	return checkpoint_run_locked(st, 0);
}

int
checkpoint_twice(struct store *st)
{
	int rc = checkpoint_run(st, 0);

	return rc < 0 ? rc : checkpoint_run(st, 1);
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
