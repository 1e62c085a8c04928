/*
 * dirs: the mount's directories: a table of paths in memory, mirrored from
 * the catalog's dirs rows, and the namespace changes that touch them
 * (mkdir, rmdir, a directory's rename, its attributes).
 *
 * Design notes
 *
 * A disk's name is its path ("images/100/vm-100-disk-0.raw"), so a
 * directory is only a path that exists: a row that makes the names below
 * it valid and gives it an id (its inode, fs/worker.h), owner, mode and
 * times.  Children are found by prefix in the sorted tables (disks by name,
 * directories by path), never stored in a list.  Renaming a directory is one
 * catalog transaction rewriting every path below it (catalog_dir_rename),
 * then the same rewrite in memory under ns_lock exclusive: O(entries below),
 * which for a host's few hundred disks is nothing, and it keeps every name
 * the rest of the store and the control protocol use a plain path.
 *
 * Invariants:
 * - Every directory's parent exists (the root, path "", always does), and
 *   so does every linked disk's.
 * - Catalog first, then memory (namespace.c's rule): a crash between them
 *   loses nothing, as the next open reads the catalog.
 * - Ids are never reused (AUTOINCREMENT), so a kernel inode never names
 *   another directory.
 *
 * Error convention: 0 or -errno.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlog.h"
#include "store_int.h"

struct dir {
	int64_t		 id;
	char		 path[NAME_MAX_LEN + 1];
	uint32_t	 mode, uid, gid;
	int64_t		 mtime_ns, ctime_ns;
};

/* The first index in st->dirs whose path is >= path. */
static size_t
dir_slot(const struct store *st, const char *path)
{
	size_t lo = 0, hi = st->ndirs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(st->dirs[mid]->path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The directory at path, or NULL.  ns_lock held. */
static struct dir *
dir_by_path(const struct store *st, const char *path)
{
	size_t i = dir_slot(st, path);

	return i < st->ndirs && strcmp(st->dirs[i]->path, path) == 0 ? st->dirs[i] : NULL;
}

/* The directory with this id, or NULL.  ns_lock held. */
static struct dir *
dir_by_id(const struct store *st, int64_t id)
{
	for (size_t i = 0; i < st->ndirs; i++)
		if (st->dirs[i]->id == id)
			return st->dirs[i];
	return NULL;
}

static int
dir_insert(struct store *st, struct dir *d)
{
	size_t at = dir_slot(st, d->path);

	if (st->ndirs == st->dirs_alloc) {
		size_t n = st->dirs_alloc ? 2 * st->dirs_alloc : 16;
		struct dir **v = realloc(st->dirs, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		st->dirs = v;
		st->dirs_alloc = n;
	}
	memmove(st->dirs + at + 1, st->dirs + at, (st->ndirs - at) * sizeof(*st->dirs));
	st->dirs[at] = d;
	st->ndirs++;
	return 0;
}

static void
dir_delete(struct store *st, const struct dir *d)
{
	size_t at = dir_slot(st, d->path);

	memmove(st->dirs + at, st->dirs + at + 1, (st->ndirs - at - 1) * sizeof(*st->dirs));
	st->ndirs--;
}

static int
load_dir(const struct catalog_dir *cd, void *arg)
{
	struct dir *d = malloc(sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->id = cd->id;
	snprintf(d->path, sizeof(d->path), "%.200s", cd->path);
	DISK_META_COPY_TIMES(d, cd);
	if ((rc = dir_insert(arg, d)) < 0)
		free(d);
	return rc;
}

int
dirs_load(struct store *st)
{
	return catalog_each_dir(st->cat, load_dir, st);
}

void
dirs_free(struct store *st)
{
	for (size_t i = 0; i < st->ndirs; i++)
		free(st->dirs[i]);
	free(st->dirs);
	st->dirs = NULL;
	st->ndirs = st->dirs_alloc = 0;
}

int
path_parent_exists(const struct store *st, const char *path)
{
	const char *slash = strrchr(path, '/');
	char parent[NAME_MAX_LEN + 1];

	if (!slash)
		return 1;
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	return dir_by_path(st, parent) != NULL;
}

size_t
dirs_orphans(struct store *st, void (*fn)(void *arg, const char *path), void *arg)
{
	size_t n = 0;

	for (size_t i = 0; i < st->ndirs; i++) {
		if (!path_parent_exists(st, st->dirs[i]->path)) {
			fn(arg, st->dirs[i]->path);
			n++;
		}
	}
	for (size_t i = 0; i < st->nnamed; i++) {
		if (!path_parent_exists(st, st->by_name[i]->name)) {
			fn(arg, st->by_name[i]->name);
			n++;
		}
	}
	return n;
}

size_t
dirs_count(const struct store *st)
{
	return st->ndirs;
}

int
path_is_dir(const struct store *st, const char *path)
{
	return !path[0] || dir_by_path(st, path) != NULL;
}

/* Is anything (a directory, a linked disk) below path?  ns_lock held. */
static int
dir_has_children(const struct store *st, const char *path)
{
	size_t len = strlen(path);
	char below[NAME_MAX_LEN + 2];
	size_t i;

	snprintf(below, sizeof(below), "%s/", path);
	i = dir_slot(st, below);
	if (i < st->ndirs && strncmp(st->dirs[i]->path, below, len + 1) == 0)
		return 1;
	i = disk_name_slot(st, below);
	return i < st->nnamed && strncmp(st->by_name[i]->name, below, len + 1) == 0;
}

/* Directories directly in path ("" the root).  ns_lock held. */
static unsigned
dir_subdirs(const struct store *st, const char *path)
{
	unsigned n = 0;

	for (size_t i = 0; i < st->ndirs; i++)
		n += path_in_dir(st->dirs[i]->path, path);
	return n;
}

static void
dir_attr_fill(const struct store *st, const struct dir *d, struct dir_attr *a)
{
	a->id = (uint64_t)d->id;
	snprintf(a->path, sizeof(a->path), "%s", d->path);
	DISK_META_COPY_TIMES(a, d);
	a->subdirs = dir_subdirs(st, d->path);
}

int
store_dir_lookup(struct store *st, const char *path, struct dir_attr *a)
{
	struct dir *d;

	pthread_rwlock_rdlock(&st->ns_lock);
	if ((d = dir_by_path(st, path)) != NULL)
		dir_attr_fill(st, d, a);
	pthread_rwlock_unlock(&st->ns_lock);
	return d ? 0 : -ENOENT;
}

int
store_dir_get(struct store *st, uint64_t id, struct dir_attr *a)
{
	struct dir *d;

	if (id == 0) {
		memset(a, 0, sizeof(*a));
		a->mode = 0755;
		pthread_rwlock_rdlock(&st->ns_lock);
		a->subdirs = dir_subdirs(st, "");
		pthread_rwlock_unlock(&st->ns_lock);
		return 0;
	}
	pthread_rwlock_rdlock(&st->ns_lock);
	if ((d = dir_by_id(st, (int64_t)id)) != NULL)
		dir_attr_fill(st, d, a);
	pthread_rwlock_unlock(&st->ns_lock);
	return d ? 0 : -ENOENT;
}

int
store_dir_next(struct store *st, const char *parent, uint64_t after, struct dir_attr *a)
{
	const struct dir *best = NULL;

	pthread_rwlock_rdlock(&st->ns_lock);
	for (size_t i = 0; i < st->ndirs; i++) {
		const struct dir *d = st->dirs[i];
		if ((uint64_t)d->id > after && (!best || d->id < best->id) &&
		    path_in_dir(d->path, parent))
			best = d;
	}
	if (best)
		dir_attr_fill(st, best, a);
	pthread_rwlock_unlock(&st->ns_lock);
	return best ? 0 : -ENOENT;
}

/* Refuse a change to a read-only store or a bad path: 0 or -errno. */
static int
dir_change_check(const struct store *st, const char *path)
{
	const char *why;

	if (st->readonly)
		return -EROFS;
	return path_check(path, &why) < 0 ? -EINVAL : 0;
}

int
store_mkdir(struct store *st, const char *path, uint32_t mode, uint32_t uid, uint32_t gid,
    struct dir_attr *a)
{
	struct catalog_dir cd = { 0 };
	struct dir *d;
	int rc;

	if ((rc = dir_change_check(st, path)) < 0)
		return rc;
	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);
	if (!path_parent_exists(st, path))
		rc = -ENOENT;
	else if (dir_by_path(st, path) || disk_by_name(st, path))
		rc = -EEXIST;
	pthread_rwlock_unlock(&st->ns_lock);
	if (rc < 0)
		goto out;
	snprintf(cd.path, sizeof(cd.path), "%s", path);
	cd.mode = mode & 07777;
	cd.uid = uid;
	cd.gid = gid;
	cd.mtime_ns = cd.ctime_ns = now_ns();
	if (!(d = malloc(sizeof(*d)))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = catalog_dir_add(st->cat, &cd)) < 0) {
		hlog(HLOG_WARN, "cannot record directory '%s': %s", path, catalog_error(st->cat));
		free(d);
		goto out;
	}
	d->id = cd.id;
	snprintf(d->path, sizeof(d->path), "%s", path);
	DISK_META_COPY_TIMES(d, &cd);
	pthread_rwlock_wrlock(&st->ns_lock);
	if ((rc = dir_insert(st, d)) == 0)
		dir_attr_fill(st, d, a);
	pthread_rwlock_unlock(&st->ns_lock);
	if (rc < 0)
		free(d);	/* in the catalog: the next open has it */
	else
		hlog(HLOG_INFO, "made directory '%s' (id %lld)", path, (long long)d->id);
out:
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}

int
store_rmdir(struct store *st, const char *path)
{
	struct dir *d;
	int rc = 0;

	if (st->readonly)
		return -EROFS;
	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);
	if (!(d = dir_by_path(st, path)))
		rc = disk_by_name(st, path) ? -ENOTDIR : -ENOENT;
	else if (dir_has_children(st, path))
		rc = -ENOTEMPTY;
	pthread_rwlock_unlock(&st->ns_lock);
	if (rc == 0 && (rc = catalog_dir_remove(st->cat, d->id)) == 0) {
		pthread_rwlock_wrlock(&st->ns_lock);
		dir_delete(st, d);
		pthread_rwlock_unlock(&st->ns_lock);
		hlog(HLOG_INFO, "removed directory '%s' (id %lld)", path, (long long)d->id);
		free(d);
	}
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}

/* Rewrite the paths below from (and from itself) to start with to.  ns_lock exclusive. */
static int
move_below(struct store *st, const char *from, const char *to)
{
	size_t flen = strlen(from);
	char below[NAME_MAX_LEN + 2], name[NAME_MAX_LEN + 1];
	struct dir **moved;
	size_t n = 0, i;

	snprintf(below, sizeof(below), "%s/", from);
	/* disks: taken out and put back under the new name, one at a time */
	while ((i = disk_name_slot(st, below)) < st->nnamed &&
	    strncmp(st->by_name[i]->name, below, flen + 1) == 0) {
		struct disk *d = st->by_name[i];
		snprintf(name, sizeof(name), "%s%s", to, d->name + flen);
		disk_table_rename(st, d, name);
	}
	if (!(moved = malloc((st->ndirs + 1) * sizeof(*moved))))
		return -ENOMEM;
	for (i = 0; i < st->ndirs; ) {
		struct dir *d = st->dirs[i];
		if (strcmp(d->path, from) == 0 || strncmp(d->path, below, flen + 1) == 0) {
			dir_delete(st, d);
			moved[n++] = d;
		} else {
			i++;
		}
	}
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%s", to, moved[i]->path + flen);
		snprintf(moved[i]->path, sizeof(moved[i]->path), "%s", name);
		moved[i]->ctime_ns = now_ns();
		(void)dir_insert(st, moved[i]);	/* cannot fail: the table had room for them */
	}
	free(moved);
	return 0;
}

int
dir_rename_locked(struct store *st, const char *from, const char *to, unsigned noreplace)
{
	size_t flen = strlen(from);
	struct dir *victim;
	int rc = 0;

	pthread_rwlock_rdlock(&st->ns_lock);
	victim = dir_by_path(st, to);
	if (strncmp(to, from, flen) == 0 && to[flen] == '/')
		rc = -EINVAL;		/* into itself */
	else if (!path_parent_exists(st, to))
		rc = -ENOENT;
	else if (disk_by_name(st, to))
		rc = -ENOTDIR;
	else if (victim && noreplace)
		rc = -EEXIST;
	else if (victim && dir_has_children(st, to))
		rc = -ENOTEMPTY;
	pthread_rwlock_unlock(&st->ns_lock);
	if (rc == 0 && (rc = catalog_dir_rename(st->cat, from, to, victim ? victim->id : 0)) == 0) {
		pthread_rwlock_wrlock(&st->ns_lock);
		if (victim)
			dir_delete(st, victim);
		rc = move_below(st, from, to);
		pthread_rwlock_unlock(&st->ns_lock);
		free(victim);
		hlog(HLOG_INFO, "renamed directory '%s' to '%s'%s", from, to,
		    victim ? ", replacing an empty one" : "");
	}
	return rc;
}

int
store_dir_setattr(struct store *st, uint64_t id, int mask, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t mtime_ns)
{
	struct dir *d;
	struct dir next;
	int rc = 0;

	if (st->readonly)
		return -EROFS;
	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);
	if ((d = dir_by_id(st, (int64_t)id)) != NULL)
		next = *d;
	pthread_rwlock_unlock(&st->ns_lock);
	if (!d) {
		rc = -ENOENT;
		goto out;
	}
	if (mask & STORE_SET_MODE)
		next.mode = mode & 07777;
	if (mask & STORE_SET_UID)
		next.uid = uid;
	if (mask & STORE_SET_GID)
		next.gid = gid;
	if (mask & STORE_SET_MTIME)
		next.mtime_ns = mtime_ns;
	next.ctime_ns = now_ns();
	if ((rc = catalog_dir_setattr(st->cat, next.id, next.mode, next.uid, next.gid,
	    next.mtime_ns, next.ctime_ns)) == 0) {
		pthread_rwlock_wrlock(&st->ns_lock);
		DISK_META_COPY_TIMES(d, &next);
		pthread_rwlock_unlock(&st->ns_lock);
	}
out:
	pthread_mutex_unlock(&st->cat_lock);
	return rc;
}
