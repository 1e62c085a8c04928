/*
 * store: see store.h for the contract.  This file opens and closes a store
 * and runs its background thread; the work is done by the modules below.
 *
 * Design notes
 *
 * The engine is a ladder; each file calls only files below it:
 *
 *   store.c       open, close, the checkpoint thread (this file)
 *   cleaner.c     check.c  defrag.c clients of the verbs below (defrag.c
 *                                   has a thread of its own)
 *   namespace.c   diskio.c          the disks as files; reads and writes
 *   checkpoint.c  handoff.c        the catalog's copy of the maps; the shared-memory copy
 *   disks.c                         the disk table, disk_apply, extent batches
 *   tmplwatch.c                     the templates in use
 *   wlog, extmap, catalog, template (and logfmt.h): media and formats
 *
 * Within a rung, checkpoint.c calls handoff_load at open and handoff.c
 * calls nothing of checkpoint.c.  The hot path wakes the thread above it
 * without calling up: diskio.c calls checkpoint_nudge (checkpoint.c, below
 * it), which signals the condition the thread waits on in checkpoint_wait.
 *
 * Locks, always taken in this order (a function may skip levels):
 *
 *   cat_lock  (mutex)   the catalog connection: namespace changes, checkpoints
 *   ns_lock   (rwlock)  the disk table and names.  I/O holds it shared for
 *                       its whole duration, so a disk struct cannot be freed
 *                       under a request; create/unlink/rename/purge take it
 *                       exclusively (writer-preferring, so they are not starved)
 *   log_lock  (mutex)   the log tail: append a record and apply it to the map
 *                       as one step, so map order = log order = replay order
 *   disk->lock (rwlock) a disk's map, dirty set, size and times
 *
 * Write path: log_lock, wlog_append (record in the page cache), disk->lock,
 * disk_apply (the same function replay uses).  Read path: disk->lock shared
 * to copy up to READ_PIECES extents, then preads with no lock held; safe
 * because log bytes are never rewritten, so a stale extent still points at
 * the bytes it named.  The checkpoint protocol is at the top of checkpoint.c.
 * (cp_mu, the checkpoint thread's wake-up and health, and clean_lock, one
 * cleaner or check at a time, are taken with none of the four held.)
 *
 * Open (store_open), the states and the function making each transition;
 * a failure anywhere goes to CLOSED through store_close:
 *
 *   NO STORE     --store_create_files (create, empty data dir)---> FILES
 *   FILES        --store_new: the struct, its locks----------------> NEW
 *   NEW          --store_open_files: catalog, template dir, log---> OPEN
 *   OPEN         --tmpls_load, disks_load: tables, empty maps-----> TABLES
 *   TABLES       --checkpoint_load: snapshot or catalog rows------> AT CHECKPOINT
 *   AT CHECKPOINT--checkpoint_replay: the log after it-------------> CURRENT
 *   CURRENT      --purge_unlinked (first worker of a mount)-------> CURRENT
 *   CURRENT      --checkpoint_thread_start (not readonly),
 *                  defrag_start (its thread, unless off)----------> RUNNING
 *   RUNNING      --store_close: checkpoint_stop, join, a last
 *                  store_checkpoint, free everything--------------> CLOSED
 *
 * The checkpoint thread (checkpoint_thread) loops:
 *
 *   WAITING  --checkpoint_wait: a tick, or checkpoint_nudge------> AWAKE
 *   AWAKE    --handoff_write (with a snapshot area)-------------> AWAKE
 *   AWAKE    --tmpls_watch: templates deleted, replaced, leases--> AWAKE
 *   AWAKE    --store_checkpoint, then store_clean_auto, when
 *              cp_ms passed or nudged--------------------------> WAITING
 *   any      --checkpoint_stop (store_close)---------------------> STOPPED
 * The snapshot comes first: a long checkpoint must not keep a replacement's
 * replay long.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datalock.h"
#include "hlog.h"
#include "media.h"
#include "radosspec.h"
#include "store_int.h"
#include "store_cluster.h"

#define TMPL_WATCH_MS	500	/* the longest between two looks at the templates' names */

static void *checkpoint_thread(void *arg);

/* The index file's writes go through medium m, when it has hooks (media.h). */
static void
store_index_media(struct index *ix, struct media *m)
{
	struct index_io io;

	m = media_or_local(m);
	if (m->ops->index_io) {
		m->ops->index_io(m, &io);
		index_set_io(ix, &io);
	}
}

/*
 * A new store's index: empty trees, exact for the log's first record, in
 * both meta slots, so that falling back to the older slot (the newer one
 * damaged) replays the log from its start until two commits replace them.
 */
static int
index_create(const char *path, const uint8_t uuid[16], struct media *m, char *err, size_t errlen)
{
	struct index_txn *t;
	struct index *ix;
	int rc;

	if ((rc = index_open(path, uuid, INDEX_CREATE, &ix, err, errlen)) < 0)
		return rc;
	store_index_media(ix, m);
	for (int i = 0; rc == 0 && i < 2; i++) {
		if ((rc = index_begin(ix, &t)) < 0)
			snprintf(err, errlen, "index '%s': %s", path, strerror(-rc));
		else
			rc = index_commit(t, wlog_first_laddr(), 1, err, errlen);
	}
	index_close(ix);
	return rc;
}

/* The data dir may hold our own files only before the store is created. */
static int
datadir_is_fresh(const char *datadir, char *err, size_t errlen)
{
	DIR *dir = opendir(datadir);
	struct dirent *de;
	int rc = 0;

	if (!dir) {
		snprintf(err, errlen, "cannot read data dir '%s': %s", datadir, strerror(errno));
		return -errno;
	}
	while ((de = readdir(dir)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "lock") || !strcmp(de->d_name, "hcowfs.log"))
			continue;
		snprintf(err, errlen, "data dir '%s' is not empty (found '%s') and holds no hcowfs "
		    "store (no catalog.db); refusing to create a store over it", datadir, de->d_name);
		rc = -EEXIST;
		break;
	}
	closedir(dir);
	return rc;
}

/*
 * Create a store: the log and the index in datadir, then the catalog, last,
 * as DATADIR/catalog.db or, for a store in a cluster, at catpath (there
 * datadir is this host's cache, emptied of what an earlier store left).
 */
static int
store_create_files(const char *datadir, const char *catpath, struct media *m, char *err,
    size_t errlen)
{
	char path[PATH_MAX + 32], logdir[PATH_MAX + 8];
	uint8_t uuid[16];
	struct catalog *cat;
	int rc;

	if (!catpath && (rc = datadir_is_fresh(datadir, err, errlen)) < 0)
		return rc;
	if (getrandom(uuid, sizeof(uuid), 0) != sizeof(uuid)) {
		snprintf(err, errlen, "cannot get random bytes for the store id: %s", strerror(errno));
		return -EIO;
	}
	snprintf(logdir, sizeof(logdir), "%s/log", datadir);
	if (mkdir(logdir, 0700) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create '%s': %s", logdir, strerror(errno));
		return rc;
	}
	if ((rc = wlog_create_on(logdir, uuid, m)) < 0) {
		snprintf(err, errlen, "cannot create the log in '%s': %s", logdir, strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/index", datadir);
	unlink(path);	/* a creation that stopped before the catalog: nothing in it */
	if ((rc = index_create(path, uuid, m, err, errlen)) < 0)
		return rc;
	/* the catalog comes last: its existence says the store is complete */
	if (catpath) {
		/* in a cluster: made in one transaction, so it exists whole or not at all */
		if ((rc = catalog_open(catpath, CATALOG_CREATE, uuid, wlog_first_laddr(), &cat, err,
		    errlen)) < 0)
			return rc;
		catalog_close(cat);
		hlog(HLOG_INFO, "created a new store in the cluster (this host's cache: '%s')", datadir);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/catalog.db.new", datadir);
	unlink(path);
	/* root's alone, whatever the umask: SQLite gives -wal and -shm the same mode */
	if ((rc = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create '%s': %s", path, strerror(errno));
		return rc;
	}
	close(rc);
	if ((rc = catalog_open(path, CATALOG_CREATE, uuid, wlog_first_laddr(), &cat, err, errlen)) < 0)
		return rc;
	catalog_close(cat);
	{
		char final[PATH_MAX + 32];
		int dfd;
		snprintf(final, sizeof(final), "%s/catalog.db", datadir);
		if (rename(path, final) < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot create '%s': %s", final, strerror(errno));
			return rc;
		}
		dfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	hlog(HLOG_INFO, "created a new store in '%s'", datadir);
	return 0;
}

/* A store creation that stopped before the catalog existed left only these. */
static void
store_remove_partial(const char *datadir)
{
	char p[PATH_MAX + 32];
	struct stat sb;

	/* a creation never got to write records: a segment holding any is not ours to delete */
	snprintf(p, sizeof(p), "%s/log/00000001.seg", datadir);
	if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size <= sizeof(struct seg_header))
		unlink(p);
	snprintf(p, sizeof(p), "%s/log", datadir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/catalog.db.new", datadir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/index", datadir);
	unlink(p);
}

/* store_open() gave up before its store held the catalog opened ahead: close that. */
static int
open_fail(const struct store_opts *o, int rc)
{
	catalog_close(o->catalog);
	return rc;
}

/*
 * Older stores made the catalog world-readable: root's alone from now on.
 * Only before this process opens the catalog with SQLite: closing any fd of
 * a file drops every POSIX lock the process holds on it, SQLite's too, and a
 * connection without its SHARED lock on the database lets another process's
 * close believe it is the last one, checkpoint and delete the WAL that this
 * one goes on committing into (lost at the next open).
 */
static void
catalog_make_private(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || fchmod(fd, 0600) < 0)
		hlog(HLOG_WARN, "cannot make '%s' private: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

struct catalog *
store_catalog_preopen(const char *datadir)
{
	struct catalog *cat = NULL;
	char path[PATH_MAX + 32], err[256];

	snprintf(path, sizeof(path), "%s/catalog.db", datadir);
	catalog_make_private(path);	/* before SQLite holds locks on it (see there) */
	if (catalog_open(path, 0, NULL, 0, &cat, err, sizeof(err)) < 0)
		return NULL;
	return cat;
}

void
store_catalog_release(struct catalog *cat)
{
	catalog_close(cat);
}

/*
 * Hold the data dir's lock before anything in it is read or written: take
 * it, or check that the fd handed down holds it.  *lockfd is the fd we took
 * (-1 if handed down).  0, or -EBUSY naming the holder, or -errno.
 */
static int
store_lock_datadir(const struct store_opts *o, int *lockfd, char *err, size_t errlen)
{
	char pid[32], mnt[PATH_MAX];
	int rc;

	*lockfd = -1;
	if (o->lock_fd > 0)
		rc = datalock_adopt(o->lock_fd, o->datadir);
	else if ((rc = datalock_take(o->datadir)) >= 0)
		*lockfd = rc;
	if (rc >= 0)
		return 0;
	if (rc != -EWOULDBLOCK) {
		snprintf(err, errlen, "cannot lock data dir '%s': %s", o->datadir,
		    rc == -EXDEV ? "the lock handed down is not on it" : strerror(-rc));
		return rc;
	}
	datalock_holder(o->datadir, pid, sizeof(pid), mnt, sizeof(mnt));
	snprintf(err, errlen, "data dir '%s' is in use by another mount or check (supervisor "
	    "pid %s%s%s)", o->datadir, pid[0] ? pid : "unknown", mnt[0] ? ", mounted on " : "", mnt);
	return -EBUSY;
}

/* Refuse what is not a data dir; create the store files in one that may get them. */
static int
store_prepare_dir(const struct store_opts *o, int *lockfd, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	const char *why;
	struct stat sb;
	int rc;

	if (stat(o->datadir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "data dir '%s': %s", o->datadir,
		    errno == 0 || S_ISDIR(sb.st_mode) ? "not a directory" : strerror(errno));
		return -ENOTDIR;
	}
	if (access(o->datadir, o->readonly ? R_OK | X_OK : R_OK | W_OK | X_OK) < 0) {
		rc = -errno;
		snprintf(err, errlen, "data dir '%s' is not writable: %s", o->datadir, strerror(errno));
		return rc;
	}
	if (datalock_dir_private(o->datadir, &why) == -EPERM) {
		snprintf(err, errlen, "data dir '%s' is not safe: %s (chmod go-w, chown root)",
		    o->datadir, why);
		return -EPERM;
	}
	if ((rc = store_lock_datadir(o, lockfd, err, errlen)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/catalog.db", o->datadir);
	if (!o->store_spec && access(path, F_OK) < 0) {
		if (!o->create || o->readonly) {
			snprintf(err, errlen, "data dir '%s' holds no hcowfs store", o->datadir);
			return -ENOENT;
		}
		store_remove_partial(o->datadir);
		if ((rc = store_create_files(o->datadir, NULL, media_local(), err, errlen)) < 0)
			return rc;
	}
	return 0;
}

/* The struct and its locks, nothing opened yet; NULL if out of memory. */
static struct store *
store_new(const struct store_opts *o)
{
	static const struct catalog_template none = { 0 };
	struct store *st = calloc(1, sizeof(*st));
	pthread_rwlockattr_t rwa;

	if (!st)
		return NULL;
	if (!(st->no_tmpl = tmpl_new(&none, -1, -1))) {
		free(st);
		return NULL;
	}
	st->tmpldirfd = -1;
	snprintf(st->datadir, sizeof(st->datadir), "%s", o->datadir);
	snprintf(st->tmpldir, sizeof(st->tmpldir), "%s", o->tmpldir ? o->tmpldir : "");
	st->readonly = o->readonly;
	st->purge_allowed = o->purge_unlinked && !o->readonly;
	st->cp_ms = o->checkpoint_ms ? o->checkpoint_ms : STORE_CHECKPOINT_MS_DEFAULT;
	pthread_mutex_init(&st->cat_lock, NULL);
	pthread_mutex_init(&st->clean_lock, NULL);
	st->segment_size = o->segment_size ? o->segment_size : WLOG_SEGMENT_SIZE_DEFAULT;
	st->media = media_local();	/* a store in a cluster: the RADOS medium (store_join) */
	store_limits_init(st, o);
	pthread_rwlockattr_init(&rwa);
	pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&st->ns_lock, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	pthread_mutex_init(&st->log_lock, NULL);
	pthread_mutex_init(&st->cp_mu, NULL);
	pthread_cond_init(&st->cp_cond, NULL);
	st->takeover = o->takeover;
	st->tmpl_leases = o->template_leases;
	st->snap = o->snap_area;
	st->snap_cap = o->snap_cap;
	return st;
}

/*
 * Open the index file (its trees are the disks' committed maps).  A schema 3
 * catalog still holds them in rows: a writable open creates the index (or
 * empties what a move that did not finish left in it) and the first
 * checkpoint moves the rows; a read-only one reads the rows alone.
 */
static int
store_open_index(struct store *st, const struct store_opts *o, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	int rc;

	snprintf(path, sizeof(path), "%s/index", o->datadir);
	st->rows_left = catalog_version(st->cat) < 4;
	st->ix_migrate = st->rows_left ? 2 : 0;
	if (st->ix_migrate && o->readonly)
		return 0;
	/* a replacement serves first: its first checkpoint marks the free pages */
	rc = index_open(path, st->uuid, (o->readonly ? INDEX_READONLY : st->ix_migrate ? INDEX_CREATE : 0) |
	    (o->takeover ? INDEX_DEFER_MARK : 0), &st->ix, err, errlen);
	if (rc == 0 && !o->readonly)
		store_index_media(st->ix, st->media);
	if (rc == -ENOENT)
		snprintf(err, errlen, "the store's index '%s' is missing: the disks' data cannot be "
		    "found without it (restore it from a backup of the data dir)", path);
	if (rc == 0 && !o->readonly && index_damage(st->ix)) {
		/* serving would misplace what the damaged pages reach, and no checkpoint could commit */
		snprintf(err, errlen, "the store's index '%s' is damaged: %s (hcowctl check %s tells "
		    "more)", path, index_damage(st->ix), o->datadir);
		return -EUCLEAN;
	}
	return rc;
}

/*
 * Open the catalog (or take the one opened ahead), the template dir, the
 * log and the index; read the checkpoint position into *cp_laddr, *cp_seq.
 */
static int
store_open_files(struct store *st, const struct store_opts *o, const char *catpath,
    uint64_t *cp_laddr, uint64_t *cp_seq, char *err, size_t errlen)
{
	char path[PATH_MAX + 32], logdir[PATH_MAX + 8];
	const char *why;
	uint8_t uuid[16];
	int rc;

	/* the local files are a cache of the medium's: make them agree before reading any */
	if (!o->readonly && (rc = st->media->ops->fetch(st->media, o->datadir, st->cache_trusted,
	    err, errlen)) < 0)
		return rc;
	if (catpath)
		snprintf(path, sizeof(path), "%s", catpath);
	else
		snprintf(path, sizeof(path), "%s/catalog.db", o->datadir);
	/* a catalog opened ahead was made private then: an open and close now would drop its locks */
	if (!o->readonly && !catpath && !o->catalog)
		catalog_make_private(path);
	if (o->catalog)
		st->cat = o->catalog;
	else if ((rc = catalog_open(path, o->readonly ? CATALOG_READONLY : 0, NULL, 0, &st->cat,
	    err, errlen)) < 0)
		return rc;
	if (!o->tmpldir) {
		/* checking: the dir the last mount used */
		if (catalog_meta_get(st->cat, "template_dir", st->tmpldir, sizeof(st->tmpldir)) < 0)
			st->tmpldir[0] = '\0';
	}
	if (rados_spec_is(st->tmpldir)) {
		/* templates in a pool: no dir to open, a connection and a cache instead */
		if ((rc = tmpls_pool_open(st, o, err, errlen)) < 0 && !o->readonly)
			return rc;
	} else if (!o->readonly && st->tmpldir[0] &&
	    datalock_dir_private(st->tmpldir, &why) == -EPERM) {
		snprintf(err, errlen, "template dir '%s' is not safe: %s (chmod go-w, chown root)",
		    st->tmpldir, why);
		return -EPERM;
	}
	st->tmpldirfd = st->tmpldir[0] && !rados_spec_is(st->tmpldir) ?
	    open(st->tmpldir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (st->tmpldirfd < 0 && !st->tpool && !o->readonly) {
		rc = st->tmpldir[0] ? -errno : -EINVAL;
		if (st->tmpldir[0])
			snprintf(err, errlen, "template dir '%s': %s", st->tmpldir, strerror(errno));
		else
			snprintf(err, errlen, "no template dir given, and the catalog names none");
		return rc;
	}
	{
		char v[32];
		if (catalog_meta_get(st->cat, "log_released_bytes", v, sizeof(v)) == 0)
			st->clean_released = strtoull(v, NULL, 10);
	}
	if (!o->readonly) {
		/* remembered so that an offline check finds the templates */
		char old[PATH_MAX];
		if ((catalog_meta_get(st->cat, "template_dir", old, sizeof(old)) < 0 ||
		    strcmp(old, st->tmpldir) != 0) &&
		    catalog_meta_set(st->cat, "template_dir", st->tmpldir) < 0)
			hlog(HLOG_WARN, "cannot record the template dir in the catalog: %s",
			    catalog_error(st->cat));
	}
	if ((rc = catalog_uuid(st->cat, uuid)) < 0 ||
	    (rc = catalog_checkpoint_pos(st->cat, cp_laddr, cp_seq)) < 0) {
		snprintf(err, errlen, "catalog '%s': %s", path, catalog_error(st->cat));
		return rc;
	}
	snprintf(logdir, sizeof(logdir), "%s/log", o->datadir);
	rc = o->readonly ? wlog_open_ro(logdir, uuid, &st->log, err, errlen) :
	    wlog_open(logdir, uuid, st->segment_size, &st->log, err, errlen);
	if (rc < 0)
		return rc;
	wlog_set_media(st->log, st->media);
	memcpy(st->uuid, uuid, 16);
	return store_open_index(st, o, err, errlen);
}

/* Drop the disks unlinked while open whose last opener is gone (with its worker). */
static void
purge_unlinked(struct store *st)
{
	for (size_t i = st->ndisks; i-- > 0; ) {
		struct disk *d = st->disks[i];
		/* a copy replay applied may still need its source: the next mount purges it */
		if (disk_linked(d) || (d->clone_src_laddr && d->clone_src_laddr >= st->cp_laddr))
			continue;
		if (catalog_disk_purge(st->cat, d->id) < 0) {
			hlog(HLOG_WARN, "cannot purge unlinked disk %lld: %s",
			    (long long)d->id, catalog_error(st->cat));
			continue;
		}
		disk_table_remove(st, d);
		disk_free(d);
	}
}

static double
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int
checkpoint_thread_start(struct store *st, char *err, size_t errlen)
{
	int rc;

	if ((rc = pthread_create(&st->cp_thread, NULL, checkpoint_thread, st)) != 0) {
		snprintf(err, errlen, "cannot start the checkpoint thread: %s", strerror(rc));
		return -rc;
	}
	pthread_setname_np(st->cp_thread, "hcowfs-ckpt");	/* for top -H and perf */
	st->cp_running = 1;
	return 0;
}


/*
 * How far ahead the log's filler writes zeros: WLOG_FILL_AHEAD_DEFAULT, or,
 * for benchmarks only (an A/B of the filler), HCOWFS_BENCH_FILL_AHEAD in
 * bytes, 0 for no filler (docs/performance.md).
 */
static uint64_t
bench_fill_ahead(void)
{
	const char *env = getenv("HCOWFS_BENCH_FILL_AHEAD");

	return env && *env ? strtoull(env, NULL, 0) : WLOG_FILL_AHEAD_DEFAULT;
}
/*
 * A store in a cluster: become its server, and create it if it does not
 * exist yet and we may.  The catalog's path goes to catpath.
 */
static int
store_join(struct store *st, const struct store_opts *o, char *catpath, size_t len, char *err,
    size_t errlen)
{
	int trust, exists, rc;

	if (o->readonly) {
		snprintf(err, errlen, "%s: checking a store in a cluster offline is not supported; "
		    "use hcowctl check on its mount", o->store_spec);
		return -ENOTSUP;
	}
	if ((rc = store_cluster_join(st, o, &trust, catpath, len, &exists, err, errlen)) < 0)
		return rc;
	st->cache_trusted = trust;
	if (st->media->ops->segment_max && st->segment_size > st->media->ops->segment_max)
		st->segment_size = st->media->ops->segment_max;	/* one object a segment */
	if (exists)
		return 0;
	if (!o->create) {
		snprintf(err, errlen, "%s holds no hcowfs store", o->store_spec);
		return -ENOENT;
	}
	store_remove_partial(o->datadir);
	return store_create_files(o->datadir, catpath, st->media, err, errlen);
}

int
store_open(const struct store_opts *o, struct store **out, char *err, size_t errlen)
{
	struct store *st;
	struct wlog_replay_stats rs;
	uint64_t cp_laddr, cp_seq;
	struct timespec t0, t1, t_cat;
	char catpath[PATH_MAX];
	int lockfd = -1, rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((rc = store_prepare_dir(o, &lockfd, err, errlen)) < 0 || !(st = store_new(o))) {
		if (lockfd >= 0)
			close(lockfd);
		return open_fail(o, rc < 0 ? rc : -ENOMEM);
	}
	st->lockfd = lockfd;
	if (o->store_spec && (rc = store_join(st, o, catpath, sizeof(catpath), err, errlen)) < 0)
		goto fail;
	if ((rc = store_open_files(st, o, o->store_spec ? catpath : NULL, &cp_laddr, &cp_seq, err,
	    errlen)) < 0)
		goto fail;
	if ((rc = tmpls_load(st)) < 0 || (rc = disks_load(st)) < 0 || (rc = dirs_load(st)) < 0) {
		snprintf(err, errlen, "cannot load catalog '%s/catalog.db': %s", o->datadir,
		    rc == -EUCLEAN ? "it refers to templates it does not hold" : catalog_error(st->cat));
		goto fail;
	}
	if ((rc = checkpoint_load(st, o->takeover, &cp_laddr, &cp_seq, err, errlen)) < 0)
		goto fail;
	st->from_area = rc;
	for (size_t i = 0; i < st->ntmpls && !o->readonly; i++)
		if (st->tmpls[i]->problem[0])
			hlog(HLOG_ERROR, "%s; its disks refuse I/O", st->tmpls[i]->problem);
	if (st->overlaps && !o->readonly)
		hlog(HLOG_ERROR, "%s (%llu overlaps; hcowctl check tells more)", st->overlap_what,
		    (unsigned long long)st->overlaps);
	clock_gettime(CLOCK_MONOTONIC, &t_cat);
	if ((rc = checkpoint_replay(st, cp_laddr, cp_seq, o->takeover, st->from_area, &rs,
	    err, errlen)) < 0)
		goto fail;
	/* what replay found may not be durable (a dead worker's writes): the first flush covers it */
	st->flush_floor = wlog_tail(st->log);
	if (st->purge_allowed)
		purge_unlinked(st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	hlog(HLOG_INFO, "store '%s' open in %.1f ms (maps from %s: %.1f ms): replayed %llu records "
	    "(%llu bytes) after it, cut %llu torn bytes", o->datadir, ms_between(&t0, &t1),
	    st->from_area ? "the snapshot" : "the checkpoint", ms_between(&t0, &t_cat),
	    (unsigned long long)rs.records, (unsigned long long)rs.bytes,
	    (unsigned long long)rs.torn_bytes);

	if (!o->readonly && (rc = checkpoint_thread_start(st, err, errlen)) < 0)
		goto fail;
	if ((rc = defrag_start(st, o, err, errlen)) < 0)
		goto fail;
	/* flushes then write log blocks that exist already: no journal commit (wlog.h) */
	if (!o->readonly && st->media->ops->fill)
		wlog_set_fill(st->log, bench_fill_ahead());
	*out = st;
	return 0;
fail:
	store_close(st);
	return rc;
}

void
store_close(struct store *st)
{
	if (!st)
		return;
	defrag_stop(st);	/* first: a pass appends records and wakes the checkpointer */
	if (st->cp_running) {
		checkpoint_stop(st);
		pthread_join(st->cp_thread, NULL);
		if (store_checkpoint(st) < 0)
			hlog(HLOG_WARN, "final checkpoint failed; the next open replays the log");
	}
	disks_free(st);
	dirs_free(st);
	tmpls_free(st);
	tmpls_pool_close(st);
	if (st->no_tmpl)
		tmpl_free(st->no_tmpl);
	index_close(st->ix);
	wlog_close(st->log);
	catalog_close(st->cat);
	media_close(st->media);
	store_cluster_leave(st);	/* after the catalog: its client has let go */
	if (st->tmpldirfd >= 0)
		close(st->tmpldirfd);
	if (st->lockfd >= 0)
		close(st->lockfd);	/* last: everything is written */
	free(st);
}

/* ---- the checkpoint thread -------------------------------------------- */

/*
 * Background work: a checkpoint every cp_ms (or sooner when nudged), and,
 * when the store has a snapshot area, a map snapshot every
 * STORE_SNAPSHOT_MS so a replacement worker has little log to replay.
 */
static void *
checkpoint_thread(void *arg)
{
	struct store *st = arg;
	/*
	 * The first snapshot at once for a replacement (in a crash storm it may
	 * not live long, and the next one would replay all it replayed), soon
	 * otherwise; then as often as its cost allows.
	 */
	unsigned tick = !st->snap ? (st->cp_ms < TMPL_WATCH_MS ? st->cp_ms : TMPL_WATCH_MS) :
	    st->takeover ? 1 : st->cp_ms > 100 ? 100 : st->cp_ms;
	unsigned snap_every;
	struct timespec last_cp, now;
	int nudged;

	clock_gettime(CLOCK_MONOTONIC, &last_cp);
	if (st->cp_laddr == 0)
		last_cp.tv_sec -= st->cp_ms / 1000 + 1;	/* came up from a snapshot: checkpoint soon */
	while ((nudged = checkpoint_wait(st, tick)) >= 0) {
		if (st->snap && handoff_write(st) == 0) {
			/* as often as 20x its cost (log lock held) allows, within 100 to STORE_SNAPSHOT_MS */
			snap_every = (unsigned)(st->snap_cost_us * 20 / 1000);
			snap_every = snap_every < 100 ? 100 : snap_every > STORE_SNAPSHOT_MS ?
			    STORE_SNAPSHOT_MS : snap_every;
			tick = snap_every < st->cp_ms ? snap_every : st->cp_ms;
			tick = tick < TMPL_WATCH_MS ? tick : TMPL_WATCH_MS;
		}
		/* a template deleted or replaced is seen here even if no read comes */
		tmpls_watch(st);
		/* a catalog in a cluster that lost its lock in a long outage: open it again */
		store_cluster_heal(st);
		/* after the snapshot: a long checkpoint must not keep a replacement's replay long */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (nudged || (now.tv_sec - last_cp.tv_sec) * 1000 +
		    (now.tv_nsec - last_cp.tv_nsec) / 1000000 >= (long)st->cp_ms) {
			store_checkpoint(st);
			last_cp = now;
			store_clean_auto(st);
		}
	}
	return NULL;
}

void
store_set_append_hook(struct store *st, void (*hook)(void *arg), void *arg)
{
	wlog_set_append_hook(st->log, hook, arg);
}
