/*
 * lifecycle: snapshots, clones and rollback: one disk's map becoming a copy
 * of another's, sharing every log record and index page it can.
 *
 * Design notes
 *
 * One primitive does all three: a REC_CLONE record (logfmt.h) "disk dst's
 * map and size become those of disk src", applied by dmap_copy (dmap.c) to the
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
 * into the new disk's overlay, under log_lock (guest writes wait): when
 * they hold more than COPY_OVERLAY_MAX extents, a checkpoint comes first,
 * so they are small whatever the size of the map.  The new disk's root is then the
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
 *   1. if the source's overlays are large, a checkpoint (they become small)
 *   2. a new disk's id is taken for good in the catalog (never reused, even
 *      if what follows fails: a REC_CLONE naming an id with no row is
 *      skipped by replay)
 *   3. under ns_lock exclusive and log_lock: REC_CLONE appended and applied
 *      (the new disk enters the table): map order = log order, as for writes
 *   4. the log synced: the record is durable
 *   5. a new disk's row in the catalog
 * and the next checkpoint makes the copy the new disk's own tree.
 * A crash before 4 leaves nothing; between 4 and 5 a record replay skips;
 * after 5 the row and the record, which replay applies; after the
 * checkpoint, the index.  A disk that a copy not yet checkpointed read is
 * not purged before a checkpoint covers the copy (disk_purge), so replay
 * always finds the source.
 *
 * Error convention: 0 or -errno, with a one-line message in err.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "hlog.h"
#include "store_int.h"

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

/*
 * What an existing dst must be for a copy into it: not open (a rollback),
 * or unchanged since mtime (a blank disk a copy_file_range fills, share.c:
 * open, but a write meanwhile would be lost); and, for copy_file_range, src
 * still of the size the caller checked (the copy reports that many bytes,
 * and the record gives dst src's size as it is when appended).
 */
struct copy_into {
	int		 refuse_open;
	const int64_t	*unchanged_since;
	const uint64_t	*src_size;
};

/*
 * Steps 2-5 of a copy (see the top), cat_lock held; nd: the new disk's row,
 * or NULL for an existing dst, as `into` says.
 */
static int
copy_map(struct store *st, struct disk *src, struct disk *dst, struct catalog_disk *nd,
    const struct copy_into *into, char *err, size_t errlen)
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
	if (into->refuse_open && disk_maybe_open(st, dst)) {
		pthread_rwlock_unlock(&st->ns_lock);
		snprintf(err, errlen, "disk '%s' is open; stop what uses it first", dst->name);
		return -EBUSY;
	}
	/* no write can come between this look and the record: ns_lock is held exclusive */
	if (into->unchanged_since && dst->mtime_ns != *into->unchanged_since) {
		pthread_rwlock_unlock(&st->ns_lock);
		snprintf(err, errlen, "disk '%s' was written meanwhile", dst->name);
		return -EAGAIN;
	}
	if (into->src_size) {
		uint64_t size;

		pthread_rwlock_rdlock(&src->lock);
		size = src->size;
		pthread_rwlock_unlock(&src->lock);
		if (size != *into->src_size) {
			pthread_rwlock_unlock(&st->ns_lock);
			snprintf(err, errlen, "disk '%s' changed size meanwhile", src->name);
			return -EAGAIN;
		}
	}
	pthread_mutex_lock(&st->log_lock);
	h.type = REC_CLONE;
	h.disk_id = (uint64_t)dst->id;
	rec_set_aux(&h, (uint64_t)src->id);
	/* if the table refuses it, the record names an id without a row: replay skips it */
	if ((rc = wlog_append(st->log, &h, NULL, &laddr)) == 0)
		disk_logged(st, dst);
	if (rc == 0 && fresh)
		rc = disk_table_put(st, fresh);
	if (rc == 0 && (rc = dmap_copy(dst, src, laddr)) == 0) {
		pthread_rwlock_wrlock(&dst->lock);
		dst->mtime_ns = now_ns();	/* its contents changed (or began) now */
		pthread_rwlock_unlock(&dst->lock);
		atomic_store(&st->live_pass_ns, 0);	/* what is shared changed: count again (live.c) */
	}
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
	}
	if (rc < 0 && !err[0])
		snprintf(err, errlen, "%s", strerror(-rc));
	return rc;
}

/*
 * Overlay extents above which a copy checkpoints first: copying them holds
 * log_lock (every guest write waits), 10 to 40 ns each (overlay_copy; 65536
 * took 0.6 to 2.2 ms here).
 */
#define COPY_OVERLAY_MAX	65536

/* Extents in src's overlays (what a copy of it copies).  Takes src's lock. */
static uint64_t
overlay_extents(struct disk *src)
{
	uint64_t n;

	pthread_rwlock_rdlock(&src->lock);
	n = extmap_count(src->map) + (src->frozen ? extmap_count(src->frozen) : 0);
	pthread_rwlock_unlock(&src->lock);
	return n;
}

/*
 * A copy of src into dst (or a new disk, nd), checkpointing first if src's
 * overlays are large; logs what it took as "what ... in N ms".  cat_lock held.
 */
static int
copy_timed(struct store *st, struct disk *src, struct disk *dst, struct catalog_disk *nd,
    const struct copy_into *into, const char *what, char *err, size_t errlen)
{
	int64_t t0 = clock_mono_ns(), t1;
	int rc;

	if (overlay_extents(src) > COPY_OVERLAY_MAX && (rc = checkpoint_locked(st)) < 0)
		hlog(HLOG_WARN, "checkpoint before %s failed (%s); copying the overlays as they are",
		    what, strerror(-rc));
	t1 = clock_mono_ns();
	if ((rc = copy_map(st, src, dst, nd, into, err, errlen)) == 0)
		hlog(HLOG_INFO, "%s in %.1f ms (checkpoint first %.1f ms)", what,
		    (clock_mono_ns() - t0) / 1e6, (t1 - t0) / 1e6);
	return rc;
}

static const struct copy_into new_disk = { 0, NULL, NULL }, closed = { 1, NULL, NULL };

/* A new disk's row: src's template, size, owner; times now; src's family, src as origin. */
static void
row_from(struct catalog_disk *nd, const struct disk *src, const char *token)
{
	nd->family = (int64_t)src->family;
	nd->origin = src->id;
	nd->template_id = src->tmpl->rec.id;
	nd->size = src->size;
	nd->uid = src->uid;
	nd->gid = src->gid;
	nd->mtime_ns = nd->ctime_ns = now_ns();
	nd->created = time(NULL);
	snprintf(nd->create_token, sizeof(nd->create_token), "%s", token ? token : "");
}

int
disk_copy_whole(struct store *st, struct disk *src, struct disk *dst, uint64_t src_size,
    int64_t unchanged_since)
{
	const struct copy_into into = { 0, &unchanged_since, &src_size };
	char what[2 * NAME_MAX_LEN + 40], err[256] = "";
	int rc;

	snprintf(what, sizeof(what), "disk '%s' copied whole into '%s'", src->name, dst->name);
	if ((rc = copy_timed(st, src, dst, NULL, &into, what, err, sizeof(err))) < 0 && rc != -EAGAIN)
		hlog(HLOG_WARN, "%s failed: %s", what, err);
	return rc;
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
	if ((strcmp(what, "disk") == 0 ? path_check(name, &why) : name_check(name, &why)) < 0) {
		snprintf(err, errlen, "invalid %s name '%s': %s", what, name, why);
		return -EINVAL;
	}
	return 0;
}

int
store_snapshot(struct store *st, const char *disk, const char *snap, const char *token,
    struct disk_attr *a, char *err, size_t errlen)
{
	struct catalog_disk nd = { 0 };
	struct disk *d, *old;
	char what[2 * NAME_MAX_LEN + 40];
	int rc;

	if ((rc = lifecycle_precheck(st, "snapshot", snap, err, errlen)) < 0)
		return rc;
	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);
	d = disk_by_name(st, disk);
	old = d ? disk_snapshot(st, d->id, snap) : NULL;
	pthread_rwlock_unlock(&st->ns_lock);
	if (!d) {
		snprintf(err, errlen, "no disk named '%s'", disk);
		rc = -ENOENT;
	} else if (old) {
		rc = disk_made_by(old, token) ? 0 : -EEXIST;
		if (rc < 0)
			snprintf(err, errlen, "disk '%s' already has a snapshot '%s'", disk, snap);
	} else {
		row_from(&nd, d, token);
		snprintf(nd.snap_name, sizeof(nd.snap_name), "%s", snap);
		nd.snap_of = d->id;
		nd.mode = 0400;
		snprintf(what, sizeof(what), "snapshot '%s@%s' taken", disk, snap);
		rc = copy_timed(st, d, NULL, &nd, &new_disk, what, err, errlen);
	}
	/* the snapshot as a lookup gives it (cat_lock held: nothing unnames it meanwhile) */
	if (rc == 0 && a) {
		snprintf(what, sizeof(what), "%s@%s", disk, snap);
		rc = store_lookup_full(st, what, a);
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
	char what[2 * NAME_MAX_LEN + 40];
	int rc;

	if ((rc = lifecycle_precheck(st, "disk", name, err, errlen)) < 0)
		return rc;
	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);
	src = disk_by_full_name(st, from);
	old = disk_by_name(st, name);
	pthread_rwlock_unlock(&st->ns_lock);
	if (old) {
		rc = disk_made_by(old, token) ? 0 : -EEXIST;
		if (rc < 0)
			snprintf(err, errlen, "disk '%s' already exists", name);
	} else if (!src) {
		snprintf(err, errlen, "no disk or snapshot named '%s'", from);
		rc = -ENOENT;
	} else if ((rc = path_namespace_check(st, name, err, errlen)) == 0) {
		row_from(&nd, src, token);
		snprintf(nd.name, sizeof(nd.name), "%s", name);
		nd.mode = 0600;
		snprintf(what, sizeof(what), "disk '%s' cloned from '%s'", name, from);
		rc = copy_timed(st, src, NULL, &nd, &new_disk, what, err, errlen);
	}
	if (rc == 0 && a)
		rc = store_lookup(st, name, a);
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
	} else {
		char what[2 * NAME_MAX_LEN + 40];
		snprintf(what, sizeof(what), "disk '%s' rolled back to snapshot '%s'", disk, snap);
		rc = copy_timed(st, s, d, NULL, &closed, what, err, errlen);
	}
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}

/* For the snapshots listing: one snapshot, as JSON or a table row.  ns_lock held. */
static void
describe_snapshot(struct store *st, struct disk *d, uint64_t own, struct sbuf *sb, int json,
    int first)
{
	struct disk_attr a;
	char full[2 * NAME_MAX_LEN + 2], when[32], size[32], ownb[32];
	struct tm tm;
	time_t t;

	pthread_rwlock_rdlock(&d->lock);
	disk_attr_fill(d, &a);
	pthread_rwlock_unlock(&d->lock);
	disk_full_name(st, d, full, sizeof(full));
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

/* The snapshots a listing shows: their ids and families, and what each alone holds. */
struct listing {
	uint64_t	*id, *family, *own;
	size_t		 n;
};

/* Fill l->own: one pass over each family (live.c's family_own_bytes). */
static int
listing_own(struct store *st, struct listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		uint64_t *ids, *own;
		size_t n;
		int rc, seen = 0;
		for (size_t j = 0; j < i && !seen; j++)
			seen = l->family[j] == l->family[i];
		if (seen)
			continue;
		if ((rc = family_own_bytes(st, l->family[i], &ids, &own, &n)) < 0)
			return rc;
		for (size_t j = i; j < l->n; j++)
			for (size_t k = 0; k < n && l->family[j] == l->family[i]; k++)
				if (ids[k] == l->id[j])
					l->own[j] = own[k];
		free(ids);
		free(own);
	}
	return 0;
}

int
store_describe_snapshots(struct store *st, const char *disk, struct sbuf *sb, int json)
{
	struct listing l = { 0 };
	int first = 1, rc = 0;

	/* which snapshots, then what each alone holds (walks, no lock held), then the rows */
	pthread_rwlock_rdlock(&st->ns_lock);
	if (disk && !disk_by_name(st, disk)) {
		pthread_rwlock_unlock(&st->ns_lock);
		return -ENOENT;
	}
	l.id = calloc(st->ndisks + 1, sizeof(*l.id));
	l.family = calloc(st->ndisks + 1, sizeof(*l.family));
	l.own = calloc(st->ndisks + 1, sizeof(*l.own));
	for (size_t i = 0; l.id && l.family && l.own && i < st->ndisks; i++) {
		struct disk *d = st->disks[i], *p;
		if (!d->snap_of || !d->snap_name[0])
			continue;
		p = disk_get(st, (uint64_t)d->snap_of);
		if (disk && (!p || strcmp(p->name, disk) != 0))
			continue;
		l.id[l.n] = (uint64_t)d->id;
		l.family[l.n++] = d->family;
	}
	pthread_rwlock_unlock(&st->ns_lock);
	if (!l.id || !l.family || !l.own)
		rc = -ENOMEM;
	else
		rc = listing_own(st, &l);
	if (rc == 0) {
		sbuf_addstr(sb, json ? "[" : "");
		if (!json)
			sbuf_printf(sb, "%-40s %-20s %12s %12s\n", "SNAPSHOT", "CREATED (UTC)",
			    "SIZE", "OWN");
		pthread_rwlock_rdlock(&st->ns_lock);
		for (size_t i = 0; i < l.n; i++) {
			struct disk *d = disk_get(st, l.id[i]);
			if (!d || !disk_linked(d))
				continue;	/* deleted meanwhile */
			describe_snapshot(st, d, l.own[i], sb, json, first);
			first = 0;
		}
		pthread_rwlock_unlock(&st->ns_lock);
		if (json)
			sbuf_addstr(sb, "]");
	}
	free(l.id);
	free(l.family);
	free(l.own);
	return rc;
}
