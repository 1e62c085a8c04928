/*
 * namespace: the disks as files: lookup, listing, create, unlink, rename,
 * attributes, and open counts.
 *
 * Design notes
 *
 * Owns no state of its own: it changes the catalog's disks and templates
 * rows and the disk table (disks.c) together.
 *
 * Namespace changes are durable SQLite transactions made under cat_lock,
 * then published in memory under ns_lock exclusive.  An unlinked disk keeps
 * its data while it is open (name "" in memory, NULL in the catalog) and is
 * purged at its last release.  A replacement worker did not count its
 * predecessor's opens: it purges an unlinked disk when the kernel holds
 * its inode no more (st->kernel_holds, asked at once and again at FORGET).
 *
 * Invariants:
 * - The catalog changes first: a crash after it and before the memory
 *   change loses nothing, as the next open reads the catalog.
 * - Names and ids: a name maps to at most one linked disk; ids are never
 *   reused (the catalog's rowid), so a kernel inode never names another disk.
 * - A retried create (same non-empty token) answers as the first did.
 *
 * The life of a disk, and the function making each transition:
 *
 *   (none)    --store_create------------------------------------> LINKED
 *   LINKED    --store_rename (it moves; a replaced target is unlinked)--> LINKED
 *   LINKED    --store_unlink, or replaced by store_rename (disk_unname)--> UNLINKED
 *   UNLINKED  --disk_unname when not open, store_release_disk at the
 *               last close, store_forget_disk when the kernel drops it,
 *               store_purge_unheld in a replacement (disk_purge),
 *               purge_unlinked at open---------------------------------> (gone)
 * Only a store that can tell no open remains purges: the first worker of a
 * mount (purge_allowed), or a replacement that asks the kernel (kernel_holds).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "hlog.h"
#include "store_int.h"
#include "template.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif

/* The snapshots disk d has.  ns_lock held. */
static size_t
disk_snapshot_count(struct store *st, const struct disk *d)
{
	size_t n = 0;

	for (size_t i = 0; i < st->ndisks; i++)
		n += st->disks[i]->snap_of == d->id && st->disks[i]->snap_name[0];
	return n;
}

int
disk_has_snapshots(struct store *st, const struct disk *d)
{
	return disk_snapshot_count(st, d) > 0;
}

/* Which disk d was copied from, and how many snapshots it has (status: who holds what). */
static void
lineage_fill(struct store *st, const struct disk *d, struct disk_attr *a)
{
	const struct disk *o = d->origin && !d->snap_of ? disk_get(st, (uint64_t)d->origin) : NULL;

	a->origin[0] = '\0';
	if (o && disk_linked(o))
		disk_full_name(st, o, a->origin, sizeof(a->origin));
	a->snapshots = d->snap_of ? 0 : (unsigned)disk_snapshot_count(st, d);
}

/* Fill a from d (a snapshot's name: DISK@SNAP), or -ENOENT if d is NULL.  ns_lock held shared. */
static int
attr_get(struct store *st, struct disk *d, struct disk_attr *a)
{
	if (!d)
		return -ENOENT;
	pthread_rwlock_rdlock(&d->lock);
	disk_attr_fill(d, a);
	pthread_rwlock_unlock(&d->lock);
	if (d->snap_of)
		disk_full_name(st, d, a->name, sizeof(a->name));
	lineage_fill(st, d, a);
	return 0;
}

int
store_lookup(struct store *st, const char *name, struct disk_attr *a)
{
	int rc;

	if (name[0] == '\0')
		return -ENOENT;
	pthread_rwlock_rdlock(&st->ns_lock);
	rc = attr_get(st, disk_by_name(st, name), a);
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

int
store_getattr(struct store *st, uint64_t id, struct disk_attr *a)
{
	int rc;

	pthread_rwlock_rdlock(&st->ns_lock);
	rc = attr_get(st, disk_get(st, id), a);
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

/* The first disk with an id > after that pick accepts in directory dir (NULL: any). */
static int
next_where(struct store *st, uint64_t after, struct disk_attr *a,
    int (*pick)(struct store *st, const struct disk *d, const char *dir), const char *dir)
{
	struct disk *d = NULL;
	int rc;

	pthread_rwlock_rdlock(&st->ns_lock);
	for (size_t i = disk_index_after(st, after + 1); !d && i < st->ndisks; i++)
		if (pick(st, st->disks[i], dir))
			d = st->disks[i];
	rc = attr_get(st, d, a);
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

static int
is_named_disk(struct store *st, const struct disk *d, const char *dir)
{
	(void)st;
	return d->name[0] != '\0' && (!dir || path_in_dir(d->name, dir));
}

static int
is_named_snapshot(struct store *st, const struct disk *d, const char *dir)
{
	const struct disk *of;

	if (!d->snap_of || !d->snap_name[0])
		return 0;
	return !dir || ((of = disk_get(st, (uint64_t)d->snap_of)) && path_in_dir(of->name, dir));
}

int
store_next(struct store *st, uint64_t after, struct disk_attr *a)
{
	return next_where(st, after, a, is_named_disk, NULL);
}

int
store_next_in(struct store *st, const char *dir, uint64_t after, struct disk_attr *a)
{
	return next_where(st, after, a, is_named_disk, dir);
}

int
store_lookup_full(struct store *st, const char *name, struct disk_attr *a)
{
	int rc;

	pthread_rwlock_rdlock(&st->ns_lock);
	rc = attr_get(st, name[0] ? disk_by_full_name(st, name) : NULL, a);
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

int
store_next_snapshot(struct store *st, uint64_t after, struct disk_attr *a)
{
	return next_where(st, after, a, is_named_snapshot, NULL);
}

int
store_next_snapshot_in(struct store *st, const char *dir, uint64_t after, struct disk_attr *a)
{
	return next_where(st, after, a, is_named_snapshot, dir);
}

int
disk_maybe_open(struct store *st, const struct disk *d)
{
	if (d->opens > 0)
		return 1;
	if (st->purge_allowed)
		return 0;
	return !st->kernel_holds || st->kernel_holds(st->kernel_arg, (uint64_t)d->id);
}

/*
 * May unlinked disk d go?  Not while this worker has it open; the first
 * worker of a mount saw every open; a replacement asks the kernel.
 * ns_lock held, and d->lock or ns_lock exclusive (d->opens stays put).
 */
static int
disk_purgeable(struct store *st, const struct disk *d)
{
	if (disk_linked(d) || d->opens > 0 || st->readonly)
		return 0;
	if (st->purge_allowed)
		return 1;
	return st->kernel_holds && !st->kernel_holds(st->kernel_arg, (uint64_t)d->id);
}

/*
 * Drop an unlinked disk's rows and memory.  cat_lock held; ns_lock not held.
 * A disk a copy read since the last checkpoint (lifecycle.c) waits for one:
 * replay of that copy needs it.
 */
static void
disk_purge(struct store *st, struct disk *d)
{
	int rc;

	if (d->clone_src_laddr && d->clone_src_laddr >= st->cp_laddr &&
	    (rc = checkpoint_locked(st)) < 0) {
		hlog(HLOG_WARN, "cannot purge disk %lld before a checkpoint covers the copies made "
		    "of it (%s); the next mount will", (long long)d->id, strerror(-rc));
		return;
	}

	if ((rc = catalog_disk_purge(st->cat, d->id)) < 0) {
		hlog(HLOG_WARN, "cannot purge unlinked disk %lld now (%s); the next mount will",
		    (long long)d->id, catalog_error(st->cat));
		return;
	}
	pthread_rwlock_wrlock(&st->ns_lock);
	disk_table_remove(st, d);
	pthread_rwlock_unlock(&st->ns_lock);
	disk_free(d);
	st->trees_gone = 1;	/* the next checkpoint drops its tree: its pages come back */
	atomic_store(&st->live_pass_ns, 0);	/* what is shared may have changed (live.c) */
}

int
path_namespace_check(struct store *st, const char *path, char *err, size_t errlen)
{
	if (!path_parent_exists(st, path)) {
		snprintf(err, errlen, "no directory '%.*s' (make it first)",
		    (int)(strrchr(path, '/') - path), path);
		return -ENOENT;
	}
	if (path_is_dir(st, path)) {
		snprintf(err, errlen, "'%s' is a directory", path);
		return -EEXIST;
	}
	return 0;
}

/*
 * A new disk's template (none if tmpl_name is NULL) and size (0: the
 * template's, which it may not be below).  cat_lock held; 0 or -errno with err.
 */
static int
create_template(struct store *st, const char *tmpl_name, uint64_t *size, struct tmpl **t,
    char *err, size_t errlen)
{
	int rc;

	*t = st->no_tmpl;
	if (!tmpl_name)
		return 0;
	if ((rc = tmpl_acquire(st, tmpl_name, t, err, errlen)) < 0)
		return rc;
	if (*size == 0)
		*size = (*t)->rec.size;
	if (*size < (*t)->rec.size) {
		snprintf(err, errlen, "size %llu is smaller than template '%s' (%llu bytes)",
		    (unsigned long long)*size, tmpl_name, (unsigned long long)(*t)->rec.size);
		return -EINVAL;
	}
	if (*size > st->disk_size_max) {
		snprintf(err, errlen, "template '%s' is larger than the largest disk (%llu bytes)",
		    tmpl_name, (unsigned long long)st->disk_size_max);
		return -EINVAL;
	}
	return 0;
}

int
store_create(struct store *st, const char *name, const char *tmpl_name, uint64_t size,
    const char *token, struct disk_attr *a, char *err, size_t errlen)
{
	struct catalog_disk cd = { 0 };
	struct tmpl *t;
	struct disk *d;
	const char *why;
	int rc;

	if (st->readonly) {
		snprintf(err, errlen, "the store is open read-only (mounted with -o ro)");
		return -EROFS;
	}
	if (path_check(name, &why) < 0) {
		snprintf(err, errlen, "invalid disk name '%s': %s", name, why);
		return -EINVAL;
	}
	if (tmpl_name && name_check(tmpl_name, &why) < 0) {
		snprintf(err, errlen, "invalid template name '%s': %s", tmpl_name, why);
		return -EINVAL;
	}
	if (size > st->disk_size_max) {
		snprintf(err, errlen, "size %llu is larger than the largest disk (%llu bytes)",
		    (unsigned long long)size, (unsigned long long)st->disk_size_max);
		return -EINVAL;
	}
	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);
	if ((d = disk_by_name(st, name)) != NULL) {
		if (disk_made_by(d, token)) {
			/* a retry of a create that succeeded: same answer */
			disk_attr_fill(d, a);
			rc = 0;
		} else {
			snprintf(err, errlen, "disk '%s' already exists", name);
			rc = -EEXIST;
		}
		pthread_rwlock_unlock(&st->ns_lock);
		goto out;
	}
	rc = path_namespace_check(st, name, err, errlen);
	pthread_rwlock_unlock(&st->ns_lock);
	if (rc < 0)
		goto out;
	if ((rc = create_template(st, tmpl_name, &size, &t, err, errlen)) < 0)
		goto out;
	snprintf(cd.name, sizeof(cd.name), "%s", name);
	cd.template_id = t->rec.id;
	cd.size = size;
	cd.mode = 0600;
	cd.mtime_ns = cd.ctime_ns = now_ns();
	cd.created = time(NULL);
	snprintf(cd.create_token, sizeof(cd.create_token), "%s", token ? token : "");
	if ((rc = catalog_disk_add(st->cat, &cd)) < 0) {
		snprintf(err, errlen, "cannot record disk '%s': %s", name, catalog_error(st->cat));
		goto out;
	}
	if (!(d = disk_new(&cd, t))) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_rwlock_wrlock(&st->ns_lock);
	rc = disk_table_put(st, d);
	pthread_rwlock_unlock(&st->ns_lock);
	if (rc < 0) {
		disk_free(d);
		goto out;
	}
	disk_attr_fill(d, a);
	hlog(HLOG_INFO, "created disk '%s' (id %lld) from template '%s', %llu bytes",
	    name, (long long)cd.id, tmpl_name ? tmpl_name : "-", (unsigned long long)size);
out:
	pthread_mutex_unlock(&st->cat_lock);
	if (rc < 0 && !err[0])
		snprintf(err, errlen, "%s", strerror(-rc));
	return rc;
}

/* Take the name from d (under cat_lock); purge it if nothing holds it open. */
static void
disk_unname(struct store *st, struct disk *d)
{
	int purge;

	pthread_rwlock_wrlock(&st->ns_lock);
	if (d->snap_of)
		d->snap_name[0] = '\0';
	else
		disk_table_rename(st, d, "");
	purge = disk_purgeable(st, d);
	pthread_rwlock_unlock(&st->ns_lock);
	if (purge)
		disk_purge(st, d);
}

int
store_unlink(struct store *st, const char *name)
{
	struct disk *d;
	size_t snaps;
	int rc, open;

	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);
	d = name[0] ? disk_by_full_name(st, name) : NULL;
	snaps = d ? disk_snapshot_count(st, d) : 0;
	open = d && d->snap_of && disk_maybe_open(st, d);
	pthread_rwlock_unlock(&st->ns_lock);
	if (!d) {
		rc = name[0] && path_is_dir(st, name) ? -EISDIR : -ENOENT;
	} else if (snaps) {
		hlog(HLOG_WARN, "not deleting disk '%s': it has %zu snapshot%s (hcowctl snapshots "
		    "%s); delete them first", name, snaps, snaps == 1 ? "" : "s", name);
		rc = -EBUSY;
	} else if (open) {
		/* a backup may be reading it: not deleted under its reader */
		rc = -EBUSY;
	} else if (d->snap_of) {
		if ((rc = catalog_snapshot_unname(st->cat, d->id)) == 0) {
			hlog(HLOG_INFO, "deleted snapshot '%s' (id %lld)", name, (long long)d->id);
			disk_unname(st, d);
		}
	} else if ((rc = catalog_disk_rename(st->cat, d->id, NULL, 0)) == 0) {
		hlog(HLOG_INFO, "deleted disk '%s' (id %lld)", name, (long long)d->id);
		disk_unname(st, d);
	}
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}

int
store_rename(struct store *st, const char *from, const char *to, unsigned flags)
{
	struct disk *src, *dst;
	const char *why;
	int rc, from_dir, to_dir, parent;

	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if (path_check(to, &why) < 0)
		return -EINVAL;
	if (st->readonly)
		return -EROFS;
	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);
	src = from[0] ? disk_by_name(st, from) : NULL;
	dst = disk_by_name(st, to);
	from_dir = from[0] && path_is_dir(st, from);
	to_dir = path_is_dir(st, to);
	parent = path_parent_exists(st, to);
	pthread_rwlock_unlock(&st->ns_lock);
	if (from_dir) {
		rc = strcmp(from, to) == 0 ? 0 : dir_rename_locked(st, from, to, flags & RENAME_NOREPLACE);
	} else if (!src)
		rc = -ENOENT;
	else if (src == dst)
		rc = 0;
	else if (to_dir)
		rc = -EISDIR;
	else if (!parent)
		rc = -ENOENT;
	else if (dst && (flags & RENAME_NOREPLACE))
		rc = -EEXIST;
	else if (dst && disk_snapshot_count(st, dst))
		rc = -EBUSY;	/* it would be deleted, and it has snapshots */
	else if ((rc = catalog_disk_rename(st->cat, src->id, to, dst ? dst->id : 0)) == 0) {
		pthread_rwlock_wrlock(&st->ns_lock);
		disk_table_rename(st, src, to);
		src->ctime_ns = now_ns();
		pthread_rwlock_unlock(&st->ns_lock);
		hlog(HLOG_INFO, "renamed disk '%s' to '%s'%s", from, to, dst ? ", replacing it" : "");
		if (dst)
			disk_unname(st, dst);
	}
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}

int
store_setattr(struct store *st, uint64_t id, int mask, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t mtime_ns)
{
	struct disk *d;
	int rc = 0;

	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);
	if (!(d = disk_get(st, id))) {
		rc = -ENOENT;
		goto out;
	}
	if (d->snap_of) {
		rc = -EROFS;	/* a snapshot is as it was taken, attributes too */
		goto out;
	}
	if (mask & (STORE_SET_MODE | STORE_SET_UID | STORE_SET_GID)) {
		uint32_t m = mask & STORE_SET_MODE ? mode & 07777 : d->mode;
		uint32_t u = mask & STORE_SET_UID ? uid : d->uid;
		uint32_t g = mask & STORE_SET_GID ? gid : d->gid;
		int64_t now = now_ns();
		if ((rc = catalog_disk_setattr(st->cat, d->id, m, u, g, now)) < 0)
			goto out;
		pthread_rwlock_wrlock(&d->lock);
		d->mode = m;
		d->uid = u;
		d->gid = g;
		d->ctime_ns = now;
		pthread_rwlock_unlock(&d->lock);
	}
	if (mask & STORE_SET_MTIME) {
		pthread_rwlock_wrlock(&d->lock);
		d->mtime_ns = mtime_ns;
		d->meta_dirty = 1;
		pthread_rwlock_unlock(&d->lock);
	}
out:
	pthread_rwlock_unlock(&st->ns_lock);
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}

int
store_open_disk(struct store *st, uint64_t id)
{
	struct disk *d;
	int rc = 0;

	pthread_rwlock_rdlock(&st->ns_lock);
	if (!(d = disk_get(st, id))) {
		rc = -ENOENT;
	} else {
		pthread_rwlock_wrlock(&d->lock);
		d->opens++;
		pthread_rwlock_unlock(&d->lock);
	}
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

void
store_release_disk(struct store *st, uint64_t id)
{
	struct disk *d;
	int purge = 0;

	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);
	if ((d = disk_get(st, id)) != NULL) {
		pthread_rwlock_wrlock(&d->lock);
		/* a replacement worker sees releases of opens it never saw */
		if (d->opens > 0)
			d->opens--;
		purge = disk_purgeable(st, d);
		pthread_rwlock_unlock(&d->lock);
	}
	pthread_rwlock_unlock(&st->ns_lock);
	if (purge)
		disk_purge(st, d);
	pthread_mutex_unlock(&st->cat_lock);
}

void
store_set_kernel_probe(struct store *st, int (*kernel_holds)(void *arg, uint64_t id), void *arg)
{
	pthread_mutex_lock(&st->cat_lock);
	st->kernel_arg = arg;
	st->kernel_holds = kernel_holds;
	pthread_mutex_unlock(&st->cat_lock);
}

/* Purge disk id if it is unlinked and purgeable.  cat_lock held. */
static void
disk_purge_if_unheld(struct store *st, uint64_t id)
{
	struct disk *d;
	int purge = 0;

	pthread_rwlock_rdlock(&st->ns_lock);
	if ((d = disk_get(st, id)) != NULL) {
		pthread_rwlock_rdlock(&d->lock);
		purge = disk_purgeable(st, d);
		pthread_rwlock_unlock(&d->lock);
	}
	pthread_rwlock_unlock(&st->ns_lock);
	if (purge)
		disk_purge(st, d);
}

void
store_forget_disk(struct store *st, uint64_t id)
{
	struct disk *d;
	int unlinked;

	/* every inode the kernel drops comes here: cat_lock only for an unlinked disk */
	pthread_rwlock_rdlock(&st->ns_lock);
	d = disk_get(st, id);
	unlinked = d && !disk_linked(d);
	pthread_rwlock_unlock(&st->ns_lock);
	if (!unlinked)
		return;
	pthread_mutex_lock(&st->cat_lock);
	disk_purge_if_unheld(st, id);
	pthread_mutex_unlock(&st->cat_lock);
}

void
store_purge_unheld(struct store *st)
{
	uint64_t next = 1, id;

	/* cat_lock keeps names and ids from changing; a purge only removes the disk it looks at */
	pthread_mutex_lock(&st->cat_lock);
	for (;;) {
		size_t i;

		pthread_rwlock_rdlock(&st->ns_lock);
		i = disk_index_after(st, next);
		id = i < st->ndisks ? (uint64_t)st->disks[i]->id : 0;
		pthread_rwlock_unlock(&st->ns_lock);
		if (!id)
			break;
		disk_purge_if_unheld(st, id);
		next = id + 1;
	}
	pthread_mutex_unlock(&st->cat_lock);
}

int
store_statfs(struct store *st, struct statvfs *sv)
{
	if (statvfs(st->datadir, sv) < 0)
		return -errno;
	sv->f_namemax = NAME_MAX_LEN;
	return 0;
}

static const char *
disk_state(const struct disk_attr *a)
{
	return a->problem ? a->problem : "ok";
}

void
store_describe(struct store *st, struct sbuf *sb, int json)
{
	struct disk_attr a;
	uint64_t id = 0;
	int first = 1;

	if (json)
		sbuf_addstr(sb, "[");
	else
		sbuf_printf(sb, "%-24s %-20s %12s %12s %9s %5s  %s\n", "DISK", "TEMPLATE", "SIZE",
		    "LOG", "EXTENTS", "OPEN", "STATE");
	while (store_next(st, id, &a) == 0) {
		id = a.id;
		if (json) {
			sbuf_addstr(sb, first ? "{\"name\":" : ",{\"name\":");
			sbuf_json_str(sb, a.name);
			sbuf_addstr(sb, ",\"template\":");
			if (a.template_name[0])
				sbuf_json_str(sb, a.template_name);
			else
				sbuf_addstr(sb, "null");	/* made in the mount: none */
			sbuf_printf(sb, ",\"size\":%llu,\"log_bytes\":%llu,\"extents\":%llu,\"opens\":%d,"
			    "\"snapshots\":%u,\"origin\":", (unsigned long long)a.size,
			    (unsigned long long)a.log_bytes, (unsigned long long)a.extents, a.opens,
			    a.snapshots);
			if (a.origin[0])
				sbuf_json_str(sb, a.origin);
			else
				sbuf_addstr(sb, "null");
			sbuf_addstr(sb, ",\"state\":");
			sbuf_json_str(sb, disk_state(&a));
			sbuf_addstr(sb, "}");
		} else {
			char size[32], log[32];
			size_format(a.size, size, sizeof(size));
			size_format(a.log_bytes, log, sizeof(log));
			sbuf_printf(sb, "%-24s %-20s %12s %12s %9llu %5d  %s", a.name,
			    a.template_name[0] ? a.template_name : "-",
			    size, log, (unsigned long long)a.extents, a.opens, disk_state(&a));
			/* who shares what: a disk with snapshots cannot go, a clone reads its origin's */
			if (a.snapshots)
				sbuf_printf(sb, "; %u snapshot%s", a.snapshots, a.snapshots == 1 ? "" : "s");
			if (a.origin[0])
				sbuf_printf(sb, "; clone of %s", a.origin);
			sbuf_addstr(sb, "\n");
		}
		first = 0;
	}
	if (json)
		sbuf_addstr(sb, "]");
}

void
store_problems(struct store *st, struct sbuf *sb)
{
	pthread_mutex_lock(&st->cat_lock);	/* tmpls only grow, under it */
	pthread_rwlock_rdlock(&st->ns_lock);
	for (size_t i = 0; i < st->ntmpls; i++) {
		struct tmpl *t = st->tmpls[i];
		const char *sep = "";
		if (!__atomic_load_n(&t->problem[0], __ATOMIC_ACQUIRE))
			continue;
		sbuf_printf(sb, "%s; these disks refuse I/O:", t->problem);
		for (size_t j = 0; j < st->ndisks; j++) {
			struct disk *d = st->disks[j];
			if (d->tmpl == t && d->name[0]) {
				sbuf_printf(sb, "%s %s", sep, d->name);
				sep = ",";
			}
		}
		sbuf_addstr(sb, "\n");
	}
	pthread_rwlock_unlock(&st->ns_lock);
	pthread_mutex_unlock(&st->cat_lock);
}
