/*
 * dmap: a disk's map as readers see it, in three layers.
 *
 * Design notes
 *
 * A disk's extents live in up to three layers, looked up top first:
 *
 *   d->map     the overlay: what was written since the checkpoint began
 *              (in memory, an extmap; small: bounded by the checkpoint
 *              interval, not by the disk's history)
 *   d->frozen  an overlay a checkpoint is committing to the index (or
 *              one a failed commit or a dead worker left), read-only
 *              until it is folded in; NULL most of the time
 *   d->root    the disk's committed tree in the index file (index.h),
 *              shared by every worker generation through the page cache
 *
 * A range an upper layer maps hides the layers below it.  An overlay says
 * "reads from the template" with EXTMAP_UNMAPPED (a truncate or unmap of
 * a range a lower layer maps); readers never see that value.  Pieces of the
 * same record that meet at a layer boundary are joined, so a walk gives the
 * extents a single map would have (the cleaner compares whole extents).
 *
 * A disk's layers change only under d->lock exclusive, in these ways:
 *
 *   dmap_set          a record applied (disk_apply): the overlay changes
 *   dmap_freeze       a checkpoint begins: the overlay becomes frozen (or,
 *                     if a frozen one is left, is folded into it) and an
 *                     empty overlay takes its place: the view is unchanged
 *   dmap_publish      the checkpoint's commit is durable: the new tree
 *                     holds what frozen held; frozen goes: unchanged view
 *   dmap_copy         a REC_CLONE applied (lifecycle.c, replay): the layers
 *                     become a copy of another disk's, the committed tree
 *                     shared (root_tree names it until the next commit
 *                     clones it, root_pending) and the overlays copied
 *
 *   dmap_share        a REC_SHARE applied (share.c, replay): a range of
 *                     the overlay becomes another disk's view of it
 *   dmap_reveal       replay met a REC_SHARE the index holds: the range
 *                     leaves the overlay, the committed tree shows
 *
 * d->log_bytes (the bytes the view maps to the log) is kept exact by
 * dmap_set; dmap_recount computes it from the layers when they came from
 * somewhere else (a dead worker's snapshot of an older tree).
 *
 * Error convention: 0 or a negative errno (-EUCLEAN: the index gave
 * extents out of order; its pages are damaged).  A failed dmap_set leaves
 * the view as it was (extmap_set's guarantee).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* ---- walking the layers ------------------------------------------------- */

struct dwalk {
	const struct disk *d;
	int		 with_tree;	/* 0: the overlays only, unmapped ranges kept */
	int		(*fn)(const struct extent *e, void *arg);
	void		*arg;
	struct extent	 pending;	/* the extent being joined, not yet passed on */
	int		 has_pending;
	uint64_t	 next_off;	/* where the next extent may start, at the earliest */
};

/*
 * Pass e on, joined to the pending extent if it continues it.  An extent
 * that is empty or goes back over the last one can only come from a damaged
 * index page (the checksums are not checked on this path): -EUCLEAN, so a
 * read fails with EIO instead of looping or serving another range's bytes.
 */
static int
dwalk_emit(struct dwalk *w, const struct extent *e)
{
	int rc;

	if (e->len == 0 || e->loff < w->next_off || e->loff + e->len < e->loff)
		return -EUCLEAN;
	w->next_off = e->loff + e->len;
	if (w->has_pending && w->pending.loff + w->pending.len == e->loff &&
	    w->pending.laddr == e->laddr) {
		w->pending.len += e->len;
		return 0;
	}
	if (w->has_pending && (rc = w->fn(&w->pending, w->arg)) != 0)
		return rc;
	w->pending = *e;
	w->has_pending = 1;
	return 0;
}

static int
tree_emit(const struct extent *e, void *arg)
{
	return dwalk_emit(arg, e);
}

static int dwalk_layer(struct dwalk *w, int layer, uint64_t off, uint64_t end);

/* One layer's walk: its extents, and the layers below in its gaps. */
struct dwalk_level {
	struct dwalk	*w;
	int		 layer;
	uint64_t	 pos;
};

static int
level_extent(const struct extent *e, void *arg)
{
	struct dwalk_level *lv = arg;
	int rc;

	if (e->loff > lv->pos && (rc = dwalk_layer(lv->w, lv->layer + 1, lv->pos, e->loff)) != 0)
		return rc;
	lv->pos = e->loff + e->len;
	if (e->laddr == EXTMAP_UNMAPPED && lv->w->with_tree)
		return 0;
	return dwalk_emit(lv->w, e);
}

/* Layers: 0 the overlay, 1 frozen, 2 the committed tree. */
static int
dwalk_layer(struct dwalk *w, int layer, uint64_t off, uint64_t end)
{
	const struct disk *d = w->d;
	const struct extmap *m;
	struct dwalk_level lv;
	int rc;

	if (layer == 2)
		return w->with_tree && d->ix && d->root.height ?
		    index_walk(d->ix, &d->root, off, end, tree_emit, w) : 0;
	m = layer == 0 ? d->map : d->frozen;
	if (!m)
		return dwalk_layer(w, layer + 1, off, end);
	lv.w = w;
	lv.layer = layer;
	lv.pos = off;
	if ((rc = extmap_walk(m, off, end, level_extent, &lv)) != 0)
		return rc;
	return lv.pos < end ? dwalk_layer(w, layer + 1, lv.pos, end) : 0;
}

static int
dwalk_run(struct dwalk *w, uint64_t off, uint64_t end)
{
	int rc;

	if (off >= end)
		return 0;
	if ((rc = dwalk_layer(w, 0, off, end)) != 0)
		return rc;
	return w->has_pending ? w->fn(&w->pending, w->arg) : 0;
}

int
dmap_walk(const struct disk *d, uint64_t off, uint64_t end,
    int (*fn)(const struct extent *e, void *arg), void *arg)
{
	struct dwalk w = { .d = d, .with_tree = 1, .fn = fn, .arg = arg };

	return dwalk_run(&w, off, end);
}

static int
first_take(const struct extent *e, void *arg)
{
	*(struct extent *)arg = *e;
	return 1;
}

int
dmap_first(const struct disk *d, uint64_t off, uint64_t end, struct extent *out)
{
	return dmap_walk(d, off, end, first_take, out) == 1;
}

/* ---- counting ------------------------------------------------------------- */

static int
sum_log(const struct extent *e, void *arg)
{
	*(uint64_t *)arg += extent_log_bytes(e);
	return 0;
}

/* Bytes of [off, end) the view maps to the log. */
static uint64_t
view_log_bytes(const struct disk *d, uint64_t off, uint64_t end)
{
	uint64_t n = 0;

	dmap_walk(d, off, end, sum_log, &n);
	return n;
}

/* Bytes of [off, end) the committed tree maps to the log. */
static uint64_t
tree_log_bytes(const struct disk *d, uint64_t off, uint64_t end)
{
	uint64_t n = 0;

	if (d->ix && d->root.height)
		index_walk(d->ix, &d->root, off, end, sum_log, &n);
	return n;
}

uint64_t
dmap_count(const struct disk *d)
{
	return d->root.extents + extmap_count(d->map) + (d->frozen ? extmap_count(d->frozen) : 0);
}

size_t
dmap_memory(const struct disk *d)
{
	return extmap_memory(d->map) + (d->frozen ? extmap_memory(d->frozen) : 0);
}

static int
recount_extent(const struct extent *e, void *arg)
{
	struct disk *d = arg;

	d->log_bytes += extent_log_bytes(e) - tree_log_bytes(d, e->loff, extent_end(e));
	return 0;
}

void
dmap_recount(struct disk *d)
{
	struct dwalk w = { .d = d, .with_tree = 0, .fn = recount_extent, .arg = d };

	d->log_bytes = d->root.log_bytes;
	dwalk_run(&w, 0, UINT64_MAX);
}

/* ---- changing the layers -------------------------------------------------- */

static int
any_extent(const struct extent *e, void *arg)
{
	(void)e;
	(void)arg;
	return 1;
}

/* Does a layer below the overlay map anything in [off, end)? */
static int
below_maps(const struct disk *d, uint64_t off, uint64_t end)
{
	return (d->frozen && extmap_walk(d->frozen, off, end, any_extent, NULL) == 1) ||
	    (d->ix && d->root.height && index_walk(d->ix, &d->root, off, end, any_extent, NULL) == 1);
}

int
dmap_set(struct disk *d, uint64_t loff, uint64_t len, uint64_t laddr)
{
	uint64_t before = view_log_bytes(d, loff, loff + len);
	int rc;

	if (laddr == EXTMAP_UNMAPPED && !below_maps(d, loff, loff + len))
		rc = extmap_clear(d->map, loff, len);	/* nothing below to hide */
	else
		rc = extmap_set(d->map, loff, len, laddr);
	if (rc < 0)
		return rc;
	d->log_bytes += (extmap_in_log(laddr) ? len : 0) - before;
	return 0;
}

/* Copy one overlay extent into the frozen map below it. */
static int
fold_extent(const struct extent *e, void *arg)
{
	return extmap_set(arg, e->loff, e->len, e->laddr);
}

int
dmap_freeze(struct disk *d, struct extmap *fresh)
{
	int rc;

	if (!d->frozen) {
		d->frozen = d->map;
		d->map = fresh;
		return 0;
	}
	/* a frozen map is left: the overlay's newer extents go into it, the view stays */
	if ((rc = extmap_walk(d->map, 0, UINT64_MAX, fold_extent, d->frozen)) < 0)
		return rc;
	extmap_free(d->map);
	d->map = fresh;
	return 0;
}

struct extmap *
dmap_publish(struct disk *d, const struct index_root *root)
{
	struct extmap *frozen = d->frozen;

	d->root = *root;
	d->frozen = NULL;
	return frozen;
}

/* ---- copying a disk's layers (a snapshot, a clone, a rollback) ---------- */

/* An extent of a source's overlay into the copy (extmap_walk callback). */
static int
copy_extent(const struct extent *e, void *arg)
{
	return extmap_set(arg, e->loff, e->len, e->laddr);
}

struct extent_array {
	struct extent	*v;
	size_t		 n;
};

static int
array_extent(const struct extent *e, void *arg)
{
	struct extent_array *a = arg;

	a->v[a->n++] = *e;
	return 0;
}

/*
 * A copy of src's overlays, one map with the same view.  One overlay (the
 * usual case: a frozen one is only left by a failed checkpoint) is copied
 * whole leaves at a time (extmap_load); two are merged extent by extent.
 * Caller holds src's lock.
 */
static struct extmap *
overlay_copy(const struct disk *src)
{
	struct extmap *copy = extmap_new();
	struct extent_array a = { NULL, 0 };
	uint64_t n = extmap_count(src->map);
	int rc = copy ? 0 : -ENOMEM;

	if (rc == 0 && !src->frozen && n > 0) {
		if (!(a.v = malloc(n * sizeof(*a.v))))
			rc = -ENOMEM;
		else if ((rc = extmap_walk(src->map, 0, UINT64_MAX, array_extent, &a)) == 0)
			rc = extmap_load(copy, a.v, a.n);
		free(a.v);
	} else if (rc == 0 && src->frozen) {
		/* the frozen overlay below, the newer one above */
		if ((rc = extmap_walk(src->frozen, 0, UINT64_MAX, copy_extent, copy)) == 0)
			rc = extmap_walk(src->map, 0, UINT64_MAX, copy_extent, copy);
	}
	if (rc < 0) {
		extmap_free(copy);
		return NULL;
	}
	return copy;
}

int
dmap_copy(struct disk *dst, struct disk *src, uint64_t rec_laddr)
{
	struct extmap *copy;

	if (src != dst)
		pthread_rwlock_rdlock(&src->lock);
	if (!(copy = overlay_copy(src))) {
		if (src != dst)
			pthread_rwlock_unlock(&src->lock);
		return -ENOMEM;
	}
	if (src != dst)
		pthread_rwlock_wrlock(&dst->lock);
	extmap_free(dst->map);
	extmap_free(dst->frozen);
	dst->map = copy;
	dst->frozen = NULL;
	dst->root = src->root;
	dst->root_tree = src->root_tree;
	dst->root_pending = 1;
	dst->log_bytes = src->log_bytes;
	dst->size = src->size;
	dst->meta_dirty = 1;
	src->clone_src_laddr = rec_laddr;
	if (src != dst) {
		pthread_rwlock_unlock(&dst->lock);
		pthread_rwlock_unlock(&src->lock);
	}
	return 0;
}

/* ---- sharing a range ------------------------------------------------------ */

/* A walk's extents, gathered into a growing array (dmap_share). */
struct extent_list {
	struct extent	*v;
	size_t		 n, cap;
};

static int
list_extent(const struct extent *e, void *arg)
{
	struct extent_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct extent *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *e;
	return 0;
}

int
dmap_share(struct disk *dst, struct disk *src, uint64_t off, uint64_t len, uint64_t rec_laddr)
{
	struct extent_list l = { NULL, 0, 0 };
	uint64_t end = off + len;
	int rc = 0;

	if (src) {
		pthread_rwlock_rdlock(&src->lock);
		rc = dmap_walk(src, off, end, list_extent, &l);
		src->clone_src_laddr = rec_laddr;
		pthread_rwlock_unlock(&src->lock);
	}
	pthread_rwlock_wrlock(&dst->lock);
	/* what src leaves unmapped reads from the template, which both disks have */
	if (rc == 0)
		rc = dmap_set(dst, off, len, EXTMAP_UNMAPPED);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		uint64_t lo = l.v[i].loff > off ? l.v[i].loff : off;
		uint64_t hi = extent_end(&l.v[i]) < end ? extent_end(&l.v[i]) : end;
		if (lo < hi)
			rc = dmap_set(dst, lo, hi - lo, l.v[i].laddr);
	}
	if (rc == 0 && end > dst->size)
		dst->size = end;
	dst->meta_dirty = 1;
	pthread_rwlock_unlock(&dst->lock);
	free(l.v);
	return rc;
}

void
dmap_reveal(struct disk *d, uint64_t off, uint64_t len)
{
	uint64_t before = view_log_bytes(d, off, off + len);

	if (extmap_clear(d->map, off, len) == 0)
		d->log_bytes += view_log_bytes(d, off, off + len) - before;
	d->meta_dirty = 1;
}
