/*
 * lifecycle: snapshots, clones and rollback: one disk's map becoming a copy
 * of another's, sharing every log record and index page it can.
 *
 * Design notes
 *
 * One primitive does all three: a REC_CLONE record (logfmt.h) "disk dst's
 * map and size become those of disk src", applied by clone_apply to the
 * memory of the live store and, after a crash, by replay.
 *
 *   snapshot   dst is a new read-only disk (snap_of = the disk, a name of
 *              its own), src the disk
 *   clone      dst is a new writable disk, src a disk or a snapshot
 *   rollback   dst is the disk, src one of its snapshots (the disk closed)
 *
 * A copy is cheap because nothing is copied that a checkpoint already
 * holds: the disk's committed tree (d->root) is shared as it is, and only
 * its overlays (what changed since the last checkpoint, dmap.c) are copied
 * into the new disk's overlay.  Each operation checkpoints first, so those
 * are small whatever the size of the map.  The new disk's root is then the
 * source's committed tree (d->root_tree names it, root_pending is set) until
 * the next checkpoint clones that tree in the index (index_tree_clone: a
 * tree-table entry naming the same root page) before it commits any overlay
 * (checkpoint.c).  Memory and index pages grow with what changes after the
 * copy, never with the map shared.
 *
 * Lineage.  Snapshots and clones read the records of the disk they came
 * from, so every disk has a family (the first disk made from the template),
 * carried into each REC_WRITE it appends (logfmt.h), and a read checks that
 * the record belongs to the reading disk's family.  A disk's template is its
 * source's.
 *
 * Order of a copy (cat_lock held throughout, so no checkpoint runs between):
 *   1. checkpoint (the overlays become small)
 *   2. a new disk's id is taken for good in the catalog (never reused, even
 *      if what follows fails: a REC_CLONE naming an id with no row is
 *      skipped by replay)
 *   3. under ns_lock exclusive and log_lock: REC_CLONE appended and applied
 *      (the new disk enters the table): map order = log order, as for writes
 *   4. the log synced: the record is durable
 *   5. a new disk's row in the catalog
 *   6. checkpoint (the copy becomes the new disk's own tree)
 * A crash before 4 leaves nothing; between 4 and 5 a record replay skips;
 * after 5 the row and the record, which replay applies; after 6 the index.
 * A failed 6 is retried by the checkpoint thread.  A disk that a pending
 * copy read is not purged before a checkpoint covers the copy (disk_purge),
 * so replay always finds the source.
 *
 * Error convention: 0 or -errno, with a one-line message in err.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hlog.h"
#include "store_int.h"

/* An extent of a source's overlay into the copy (extmap_walk callback). */
static int
copy_extent(const struct extent *e, void *arg)
{
	return extmap_set(arg, e->loff, e->len, e->laddr);
}

int
clone_apply(struct disk *dst, struct disk *src, uint64_t rec_laddr)
{
	struct extmap *copy = extmap_new();
	int rc = copy ? 0 : -ENOMEM;

	if (src != dst)
		pthread_rwlock_rdlock(&src->lock);
	/* the frozen overlay below, the newer one above: one overlay with the same view */
	if (rc == 0 && src->frozen)
		rc = extmap_walk(src->frozen, 0, UINT64_MAX, copy_extent, copy);
	if (rc == 0)
		rc = extmap_walk(src->map, 0, UINT64_MAX, copy_extent, copy);
	if (rc < 0) {
		if (src != dst)
			pthread_rwlock_unlock(&src->lock);
		extmap_free(copy);
		return rc;
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
	dst->mtime_ns = now_ns();
	dst->meta_dirty = 1;
	src->clone_src_laddr = rec_laddr;
	if (src != dst) {
		pthread_rwlock_unlock(&dst->lock);
		pthread_rwlock_unlock(&src->lock);
	}
	return 0;
}

/*
 * May disk d be open in the kernel?  This worker counts its own opens; a
 * replacement did not see its predecessor's and asks the kernel.  ns_lock held.
 */
static int
disk_maybe_open(struct store *st, const struct disk *d)
{
	if (d->opens > 0)
		return 1;
	if (st->purge_allowed)
		return 0;
	return !st->kernel_holds || st->kernel_holds(st->kernel_arg, (uint64_t)d->id);
}

/* Fault injection: call hook after each step of a copy (see the top). */
void
store_set_copy_hook(struct store *st, void (*hook)(void *arg, enum copy_step s), void *arg)
{
	st->copy_hook_arg = arg;
	st->copy_hook = hook;
}

/* A step of a copy is done: tell the fault injection, if any. */
static void
copy_step_done(struct store *st, enum copy_step s)
{
	if (st->copy_hook)
		st->copy_hook(st->copy_hook_arg, s);
}

/* Steps 2-5 of a copy (see the top), cat_lock held; nd: the new disk's row, or NULL for rollback. */
static int
copy_map(struct store *st, struct disk *src, struct disk *dst, struct catalog_disk *nd,
    char *err, size_t errlen)
{
	struct rec_header h = { 0 };
	struct disk *fresh = NULL;
	uint64_t laddr;
	int rc;

	if (nd) {
		if ((rc = catalog_disk_reserve_id(st->cat, &nd->id)) < 0) {
			snprintf(err, errlen, "catalog: %s", catalog_error(st->cat));
			return rc;
		}
		if (!(fresh = disk_new(nd, src->tmpl)))
			return -ENOMEM;
		dst = fresh;
	}
	pthread_rwlock_wrlock(&st->ns_lock);
	if (!nd && disk_maybe_open(st, dst)) {
		pthread_rwlock_unlock(&st->ns_lock);
		snprintf(err, errlen, "disk '%s' is open; stop what uses it first", dst->name);
		return -EBUSY;
	}
	pthread_mutex_lock(&st->log_lock);
	h.type = REC_CLONE;
	h.disk_id = (uint64_t)dst->id;
	rec_set_aux(&h, (uint64_t)src->id);
	if ((rc = wlog_append(st->log, &h, NULL, &laddr)) == 0 && fresh &&
	    (rc = disk_table_put(st, fresh)) < 0)
		fresh = NULL;	/* the record names an id without a row: replay skips it */
	if (rc == 0)
		rc = clone_apply(dst, src, laddr);
	pthread_mutex_unlock(&st->log_lock);
	pthread_rwlock_unlock(&st->ns_lock);
	if (rc == 0) {
		copy_step_done(st, COPY_LOGGED);
		rc = wlog_sync(st->log, wlog_tail(st->log));
	}
	if (rc == 0) {
		copy_step_done(st, COPY_SYNCED);
		if (nd && (rc = catalog_disk_add(st->cat, nd)) < 0)
			snprintf(err, errlen, "catalog: %s", catalog_error(st->cat));
		else if (nd)
			copy_step_done(st, COPY_ROW);
	}
	if (rc < 0 && fresh) {
		pthread_rwlock_wrlock(&st->ns_lock);
		if (disk_get(st, (uint64_t)fresh->id) == fresh)
			disk_table_remove(st, fresh);
		pthread_rwlock_unlock(&st->ns_lock);
		disk_free(fresh);
	} else if (rc < 0) {
		disk_free(fresh);
	}
	if (rc < 0 && !err[0])
		snprintf(err, errlen, "%s", strerror(-rc));
	return rc;
}

/* Checkpoints around a copy: failing is not fatal (replay covers it), but it is logged. */
static void
copy_checkpoint(struct store *st, const char *when)
{
	int rc = checkpoint_locked(st);

	if (rc < 0)
		hlog(HLOG_WARN, "checkpoint %s a snapshot or clone failed (%s); the copy is in the "
		    "log and the next checkpoint retries", when, strerror(-rc));
}

/* Check a new name's rules and that the store can change: 0, or -errno with err set. */
static int
lifecycle_precheck(struct store *st, const char *what, const char *name, char *err,
    size_t errlen)
{
	const char *why;

	if (st->readonly) {
		snprintf(err, errlen, "the store is open read-only");
		return -EROFS;
	}
	if (name_check(name, &why) < 0) {
		snprintf(err, errlen, "invalid %s name '%s': %s", what, name, why);
		return -EINVAL;
	}
	return 0;
}

/* A retry (same non-empty token) of an operation that made d: 1, else 0. */
static int
is_retry(const struct disk *d, const char *token)
{
	return d && token && token[0] && strcmp(token, d->token) == 0;
}

int
store_snapshot(struct store *st, const char *disk, const char *snap, const char *token,
    struct disk_attr *a, char *err, size_t errlen)
{
	struct catalog_disk nd = { 0 };
	struct disk *d, *old;
	int rc;

	if ((rc = lifecycle_precheck(st, "snapshot", snap, err, errlen)) < 0)
		return rc;
	pthread_mutex_lock(&st->cat_lock);
	copy_checkpoint(st, "before");
	pthread_rwlock_rdlock(&st->ns_lock);
	d = disk_by_name(st, disk);
	old = d ? disk_snapshot(st, d->id, snap) : NULL;
	pthread_rwlock_unlock(&st->ns_lock);
	if (!d) {
		snprintf(err, errlen, "no disk named '%s'", disk);
		rc = -ENOENT;
	} else if (old) {
		rc = is_retry(old, token) ? 0 : -EEXIST;
		if (rc < 0)
			snprintf(err, errlen, "disk '%s' already has a snapshot '%s'", disk, snap);
		d = old;
	} else {
		snprintf(nd.snap_name, sizeof(nd.snap_name), "%s", snap);
		nd.snap_of = d->id;
		nd.family = (int64_t)d->family;
		nd.origin = d->id;
		nd.template_id = d->tmpl->rec.id;
		nd.size = d->size;
		nd.mode = 0400;
		nd.uid = d->uid;
		nd.gid = d->gid;
		nd.mtime_ns = nd.ctime_ns = now_ns();
		nd.created = time(NULL);
		snprintf(nd.create_token, sizeof(nd.create_token), "%s", token ? token : "");
		if ((rc = copy_map(st, d, NULL, &nd, err, errlen)) == 0) {
			copy_checkpoint(st, "after");
			hlog(HLOG_INFO, "snapshot '%s@%s' (id %lld) taken", disk, snap,
			    (long long)nd.id);
			pthread_rwlock_rdlock(&st->ns_lock);
			d = disk_get(st, (uint64_t)nd.id);
			pthread_rwlock_unlock(&st->ns_lock);
		}
	}
	if (rc == 0 && d && a) {
		pthread_rwlock_rdlock(&st->ns_lock);
		pthread_rwlock_rdlock(&d->lock);
		disk_attr_fill(d, a);
		disk_full_name(st, d, a->name, sizeof(a->name));
		pthread_rwlock_unlock(&d->lock);
		pthread_rwlock_unlock(&st->ns_lock);
	}
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}

int
store_clone(struct store *st, const char *from, const char *name, const char *token,
    struct disk_attr *a, char *err, size_t errlen)
{
	struct catalog_disk nd = { 0 };
	struct disk *src, *old;
	int rc;

	if ((rc = lifecycle_precheck(st, "disk", name, err, errlen)) < 0)
		return rc;
	pthread_mutex_lock(&st->cat_lock);
	copy_checkpoint(st, "before");
	pthread_rwlock_rdlock(&st->ns_lock);
	src = disk_by_full_name(st, from);
	old = disk_by_name(st, name);
	pthread_rwlock_unlock(&st->ns_lock);
	if (old) {
		rc = is_retry(old, token) ? 0 : -EEXIST;
		if (rc < 0)
			snprintf(err, errlen, "disk '%s' already exists", name);
	} else if (!src) {
		snprintf(err, errlen, "no disk or snapshot named '%s'", from);
		rc = -ENOENT;
	} else {
		snprintf(nd.name, sizeof(nd.name), "%s", name);
		nd.family = (int64_t)src->family;
		nd.origin = src->id;
		nd.template_id = src->tmpl->rec.id;
		nd.size = src->size;
		nd.mode = 0600;
		nd.uid = src->uid;
		nd.gid = src->gid;
		nd.mtime_ns = nd.ctime_ns = now_ns();
		nd.created = time(NULL);
		snprintf(nd.create_token, sizeof(nd.create_token), "%s", token ? token : "");
		if ((rc = copy_map(st, src, NULL, &nd, err, errlen)) == 0) {
			copy_checkpoint(st, "after");
			hlog(HLOG_INFO, "disk '%s' (id %lld) cloned from '%s'", name,
			    (long long)nd.id, from);
		}
	}
	if (rc == 0 && a) {
		pthread_rwlock_rdlock(&st->ns_lock);
		rc = (old = disk_by_name(st, name)) ? 0 : -ENOENT;
		if (old) {
			pthread_rwlock_rdlock(&old->lock);
			disk_attr_fill(old, a);
			pthread_rwlock_unlock(&old->lock);
		}
		pthread_rwlock_unlock(&st->ns_lock);
	}
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}

int
store_rollback(struct store *st, const char *disk, const char *snap, char *err, size_t errlen)
{
	struct disk *d, *s;
	int rc;

	if (st->readonly) {
		snprintf(err, errlen, "the store is open read-only");
		return -EROFS;
	}
	pthread_mutex_lock(&st->cat_lock);
	copy_checkpoint(st, "before");
	pthread_rwlock_rdlock(&st->ns_lock);
	d = disk_by_name(st, disk);
	s = d ? disk_snapshot(st, d->id, snap) : NULL;
	pthread_rwlock_unlock(&st->ns_lock);
	if (!d) {
		snprintf(err, errlen, "no disk named '%s'", disk);
		rc = -ENOENT;
	} else if (!s) {
		snprintf(err, errlen, "disk '%s' has no snapshot '%s'", disk, snap);
		rc = -ENOENT;
	} else if ((rc = copy_map(st, s, d, NULL, err, errlen)) == 0) {
		copy_checkpoint(st, "after");
		hlog(HLOG_INFO, "disk '%s' rolled back to snapshot '%s'", disk, snap);
	}
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}

struct same_ctx {
	uint64_t laddr;
	uint64_t bytes;
};

/* Bytes of the parent's view that map the same record as the snapshot (dmap_walk callback). */
static int
count_same(const struct extent *e, void *arg)
{
	struct same_ctx *c = arg;

	if (e->laddr == c->laddr)
		c->bytes += e->len;
	return 0;
}

/*
 * The log bytes snapshot s holds that its disk no longer maps (what deleting
 * it could give back, unless another snapshot or clone holds them too),
 * walked in batches so that no lock is held for long.  ns_lock held.
 */
static uint64_t
snapshot_own_bytes(struct store *st, struct disk *s)
{
	struct extent_batch b = { .cap = 1024, .log_only = 1 };
	struct disk *p = disk_get(st, (uint64_t)s->snap_of);
	uint64_t pos = 0, own = 0;

	if (!(b.e = malloc(b.cap * sizeof(*b.e))))
		return 0;
	for (;;) {
		pthread_rwlock_rdlock(&s->lock);
		extent_batch_fill(s, pos, UINT64_MAX, &b);
		pthread_rwlock_unlock(&s->lock);
		if (b.rc < 0 || b.n == 0)
			break;
		if (p)
			pthread_rwlock_rdlock(&p->lock);
		for (size_t i = 0; i < b.n; i++) {
			struct same_ctx c = { b.e[i].laddr, 0 };
			if (p)
				dmap_walk(p, b.e[i].loff, b.e[i].loff + b.e[i].len, count_same, &c);
			own += b.e[i].len - c.bytes;
		}
		if (p)
			pthread_rwlock_unlock(&p->lock);
		if (b.n < b.cap)
			break;
		pos = b.e[b.n - 1].loff + b.e[b.n - 1].len;
	}
	free(b.e);
	return own;
}

/* For the snapshots listing: one snapshot, as JSON or a table row.  ns_lock held. */
static void
describe_snapshot(struct store *st, struct disk *d, struct sbuf *sb, int json, int first)
{
	struct disk_attr a;
	uint64_t own;
	char full[2 * NAME_MAX_LEN + 2], when[32], size[32], ownb[32];
	struct tm tm;
	time_t t;

	pthread_rwlock_rdlock(&d->lock);
	disk_attr_fill(d, &a);
	pthread_rwlock_unlock(&d->lock);
	disk_full_name(st, d, full, sizeof(full));
	own = snapshot_own_bytes(st, d);
	t = (time_t)(a.ctime_ns / 1000000000);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (json) {
		sbuf_addstr(sb, first ? "{\"name\":" : ",{\"name\":");
		sbuf_json_str(sb, full);
		sbuf_addstr(sb, ",\"snapshot\":");
		sbuf_json_str(sb, d->snap_name);
		sbuf_printf(sb, ",\"created\":\"%s\",\"size\":%llu,\"log_bytes\":%llu,"
		    "\"own_bytes\":%llu,\"opens\":%d}", when, (unsigned long long)a.size,
		    (unsigned long long)a.log_bytes, (unsigned long long)own, a.opens);
		return;
	}
	size_format(a.size, size, sizeof(size));
	size_format(own, ownb, sizeof(ownb));
	sbuf_printf(sb, "%-40s %-20s %12s %12s\n", full, when, size, ownb);
}

void
store_describe_snapshots(struct store *st, const char *disk, struct sbuf *sb, int json)
{
	int first = 1;

	pthread_rwlock_rdlock(&st->ns_lock);
	if (json)
		sbuf_addstr(sb, "[");
	else
		sbuf_printf(sb, "%-40s %-20s %12s %12s\n", "SNAPSHOT", "CREATED (UTC)", "SIZE",
		    "OWN");
	for (size_t i = 0; i < st->ndisks; i++) {
		struct disk *d = st->disks[i], *p;
		if (!d->snap_of || !d->snap_name[0])
			continue;
		p = disk_get(st, (uint64_t)d->snap_of);
		if (disk && (!p || strcmp(p->name, disk) != 0))
			continue;
		describe_snapshot(st, d, sb, json, first);
		first = 0;
	}
	if (json)
		sbuf_addstr(sb, "]");
	pthread_rwlock_unlock(&st->ns_lock);
}
