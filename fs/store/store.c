/*
 * store: see store.h for the contract.
 *
 * Design notes
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
 * the bytes it named.
 *
 * Checkpoint (store_checkpoint), the only writer of extents to SQLite:
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
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hlog.h"
#include "store_int.h"
#include "template.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif

int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- disks and templates ---------------------------------------------- */

struct disk *
disk_get(struct store *st, uint64_t id)
{
	return id < st->disks_cap ? st->disks[id] : NULL;
}

struct disk *
disk_by_name(struct store *st, const char *name)
{
	for (size_t i = 0; i < st->disks_cap; i++)
		if (st->disks[i] && strcmp(st->disks[i]->name, name) == 0)
			return st->disks[i];
	return NULL;
}

void
disk_free(struct disk *d)
{
	if (!d)
		return;
	extmap_free(d->map);
	extmap_free(d->dirty);
	pthread_rwlock_destroy(&d->lock);
	free(d);
}

struct disk *
disk_new(const struct catalog_disk *cd, struct tmpl *t)
{
	struct disk *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->map = extmap_new();
	d->dirty = extmap_new();
	if (!d->map || !d->dirty) {
		extmap_free(d->map);
		extmap_free(d->dirty);
		free(d);
		return NULL;
	}
	pthread_rwlock_init(&d->lock, NULL);
	d->id = cd->id;
	snprintf(d->name, sizeof(d->name), "%.*s", NAME_MAX_LEN, cd->name);
	snprintf(d->token, sizeof(d->token), "%s", cd->create_token);
	d->tmpl = t;
	d->size = cd->size;
	d->mode = cd->mode;
	d->uid = cd->uid;
	d->gid = cd->gid;
	d->mtime_ns = cd->mtime_ns;
	d->ctime_ns = cd->ctime_ns;
	return d;
}

/* Insert d in the disk table (ns_lock exclusive, or during open). */
int
disk_table_put(struct store *st, struct disk *d)
{
	if ((size_t)d->id >= st->disks_cap) {
		size_t cap = st->disks_cap ? st->disks_cap : 64;
		struct disk **v;
		while (cap <= (size_t)d->id)
			cap *= 2;
		v = realloc(st->disks, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + st->disks_cap, 0, (cap - st->disks_cap) * sizeof(*v));
		st->disks = v;
		st->disks_cap = cap;
	}
	st->disks[d->id] = d;
	return 0;
}

struct tmpl *
tmpl_by_id(struct store *st, int64_t id)
{
	for (size_t i = 0; i < st->ntmpls; i++)
		if (st->tmpls[i]->rec.id == id)
			return st->tmpls[i];
	return NULL;
}

int
tmpl_add(struct store *st, struct tmpl *t)
{
	struct tmpl **v = realloc(st->tmpls, (st->ntmpls + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	st->tmpls = v;
	st->tmpls[st->ntmpls++] = t;
	return 0;
}

uint64_t
fd_alloc_bytes(int fd)
{
	struct stat sb;
	return fstat(fd, &sb) == 0 ? (uint64_t)sb.st_blocks * 512 : 0;
}

/* Check the template file behind a catalog row; load it (catalog_each_template callback). */
static int
tmpl_load(const struct catalog_template *rec, void *arg)
{
	struct store *st = arg;
	struct tmpl *t = calloc(1, sizeof(*t));
	struct catalog_template cur;
	char err[256];
	const char *why;
	int rc;

	if (!t)
		return -ENOMEM;
	t->rec = *rec;
	t->fd = -1;
	t->dirfd = st->tmpldirfd;
	if (st->tmpldirfd < 0) {
		/* a read-only open for checking, without the template dir */
		snprintf(t->problem, sizeof(t->problem), "template '%s' not checked: the template "
		    "dir is not known", rec->name);
		goto add;
	}
	rc = st->takeover ? template_probe_quick(st->tmpldirfd, rec, &cur, &t->fd, err, sizeof(err)) :
	    template_probe(st->tmpldirfd, rec->name, &cur, &t->fd, err, sizeof(err));
	if (rc < 0) {
		snprintf(t->problem, sizeof(t->problem), "%s", err);
	} else if ((why = template_differs(rec, &cur)) != NULL) {
		snprintf(t->problem, sizeof(t->problem),
		    "template '%s' changed since its disks were cloned (%s)", rec->name, why);
		close(t->fd);
		t->fd = -1;
	} else {
		t->alloc_bytes = fd_alloc_bytes(t->fd);
	}
add:
	if ((rc = tmpl_add(st, t)) < 0) {
		if (t->fd >= 0)
			close(t->fd);
		free(t);
	}
	return rc;
}

/* Set t's problem while it serves; the first to see the change logs it. */
static void
tmpl_set_problem(struct tmpl *t, const char *fmt, const char *why)
{
	char msg[sizeof(t->problem)];

	if (__atomic_load_n(&t->problem[0], __ATOMIC_ACQUIRE))
		return;
	snprintf(msg, sizeof(msg), fmt, t->rec.name, why);
	/* two threads may get here at once: they write the same bytes */
	memcpy(t->problem + 1, msg + 1, strlen(msg));
	__atomic_store_n(&t->problem[0], msg[0], __ATOMIC_RELEASE);
	hlog(HLOG_ERROR, "%s; its disks refuse I/O from now on", msg);
}

/*
 * A template changed while its disks are served: written in place or cut
 * (size, mtime of the open file), or deleted or replaced (its link count
 * drops to 0, or, with by_name, its name leads to another file).  Called
 * by the checkpoint thread with by_name, and after each read from a template
 * that has no lease (tmpl_read_checked): one fstat, so bytes read after a
 * write(2) to it are never served (the writer updates mtime before it
 * copies its data).
 */
int
tmpl_check(struct tmpl *t, int by_name)
{
	static const char changed[] = "template '%s' changed since its disks were cloned (%s)";
	struct stat sb, named;

	if (__atomic_load_n(&t->problem[0], __ATOMIC_ACQUIRE))
		return -EIO;
	if (t->fd < 0 || fstat(t->fd, &sb) < 0)
		return 0;	/* nothing to check against: an open problem covers it */
	if ((uint64_t)sb.st_size != t->rec.size)
		tmpl_set_problem(t, changed, "its size changed");
	else if ((int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec != t->rec.mtime_ns)
		tmpl_set_problem(t, changed, "it was modified");
	else if (!by_name && sb.st_nlink > 0)
		;	/* the read path: one fstat, no name lookup */
	else if (fstatat(t->dirfd, t->rec.name, &named, 0) < 0 && errno == ENOENT)
		tmpl_set_problem(t, "template '%s': %s", "no such file in the template dir");
	else if (sb.st_nlink == 0 || named.st_ino != sb.st_ino || named.st_dev != sb.st_dev)
		tmpl_set_problem(t, changed, "it was replaced by another file");
	return __atomic_load_n(&t->problem[0], __ATOMIC_ACQUIRE) ? -EIO : 0;
}

/*
 * Template leases.  A read from a template is checked after it is made
 * (tmpl_check: one fstat, about a microsecond, on the path most guest reads
 * take).  A read lease (fcntl F_SETLEASE, F_RDLCK) gives the same guarantee
 * without the system call: while this process holds one, an open of the
 * file for writing (or a truncate) waits until the kernel has told us with
 * TMPL_LEASE_SIGNAL, and the handler, before it gives the lease up (which
 * lets the writer go on), counts the break in lease_breaks.  A read whose
 * pread saw a writer's bytes therefore sees the count changed, and falls
 * back to tmpl_check, which sees the writer's mtime.
 *
 *   lease_breaks   breaks of any template's lease in this process (the
 *                  handler only counts: it cannot look anything up).
 *   t->lease_gen   lease_breaks when t's lease was taken; a read skips the
 *                  fstat only while the two are equal.
 *
 * The checkpoint thread takes or renews leases (tmpl_lease) every
 * TMPL_WATCH_MS: after a break, once no writer holds the file open.  A
 * deletion or rename does not break a lease (the open file keeps its
 * bytes): the by-name look of the same thread sees those.  Where leases are
 * refused (the file system, /proc/sys/fs/leases-enable, a writer has it
 * open) reads keep the fstat.  Only a process that owns the whole store
 * (the worker, store_opts.template_leases) takes them: the signal is the
 * process's, and no thread of it may block TMPL_LEASE_SIGNAL (a break
 * nobody handles would end, after /proc/sys/fs/lease-break-time, with the
 * writer writing and the reads uncounted).
 */
#define TMPL_LEASE_SIGNAL	(SIGRTMIN + 2)

static _Atomic unsigned lease_breaks;
static pthread_once_t lease_once = PTHREAD_ONCE_INIT;
static int lease_ready;

static void
lease_broken(int sig, siginfo_t *si, void *ctx)
{
	int saved = errno;

	(void)sig;
	(void)ctx;
	/* counted before the lease goes: the writer cannot write before that */
	atomic_fetch_add(&lease_breaks, 1);
	fcntl(si->si_fd, F_SETLEASE, F_UNLCK);
	errno = saved;
}

static void
lease_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = lease_broken;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	lease_ready = sigaction(TMPL_LEASE_SIGNAL, &sa, NULL) == 0;
}

/* Take or renew t's read lease; leave t on fstat checks if that fails. */
static void
tmpl_lease(struct tmpl *t)
{
	unsigned gen = atomic_load(&lease_breaks);

	pthread_once(&lease_once, lease_setup);
	if (!lease_ready || t->fd < 0 || __atomic_load_n(&t->problem[0], __ATOMIC_ACQUIRE))
		return;
	if (atomic_load_explicit(&t->leased, memory_order_acquire) && t->lease_gen == gen)
		return;
	atomic_store(&t->leased, 0);
	if (fcntl(t->fd, F_SETSIG, TMPL_LEASE_SIGNAL) < 0 || fcntl(t->fd, F_SETOWN, getpid()) < 0 ||
	    fcntl(t->fd, F_SETLEASE, F_RDLCK) < 0)
		return;		/* e.g. EAGAIN: someone has it open for writing */
	/* a write before the lease changed mtime: look once now */
	if (tmpl_check(t, 0) < 0)
		return;
	t->lease_gen = gen;
	atomic_store_explicit(&t->leased, 1, memory_order_release);
}

/* After a read from t: -EIO if t changed, as tmpl_check(), but without a system call under a lease. */
static int
tmpl_read_checked(struct tmpl *t)
{
	if (atomic_load_explicit(&t->leased, memory_order_acquire) &&
	    atomic_load(&lease_breaks) == t->lease_gen)
		return __atomic_load_n(&t->problem[0], __ATOMIC_ACQUIRE) ? -EIO : 0;
	return tmpl_check(t, 0);
}

/* Read template bytes for a disk: zeros past the template's end. */
int
tmpl_read(struct tmpl *t, char *buf, uint64_t len, uint64_t off)
{
	uint64_t have = off < t->rec.size ? t->rec.size - off : 0;

	if (have > len)
		have = len;
	for (uint64_t done = 0; done < have; ) {
		ssize_t n = pread(t->fd, buf + done, have - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			/* the file shrank under us: that is a changed template */
			hlog(HLOG_ERROR, "template '%s' is shorter than recorded", t->rec.name);
			return -EIO;
		}
		done += (uint64_t)n;
	}
	if (have > 0 && tmpl_read_checked(t) < 0)
		return -EIO;
	memset(buf + have, 0, len - have);
	return 0;
}

void
disk_attr_fill(const struct disk *d, struct disk_attr *a)
{
	uint64_t tbytes = d->tmpl->alloc_bytes;

	memset(a, 0, sizeof(*a));
	a->id = (uint64_t)d->id;
	snprintf(a->name, sizeof(a->name), "%s", d->name);
	snprintf(a->template_name, sizeof(a->template_name), "%s", d->tmpl->rec.name);
	a->size = d->size;
	a->mode = d->mode;
	a->uid = d->uid;
	a->gid = d->gid;
	a->mtime_ns = d->mtime_ns;
	a->ctime_ns = d->ctime_ns;
	a->log_bytes = extmap_log_bytes(d->map);
	a->extents = extmap_count(d->map);
	if (tbytes > d->size)
		tbytes = d->size;
	/* what the disk reads data from: its log bytes plus the template's allocation */
	a->blocks = (a->log_bytes + tbytes + 511) / 512;
	a->opens = d->opens;
	a->problem = d->tmpl->problem[0] ? d->tmpl->problem : NULL;
}

/* ---- applying records (live and replay) ------------------------------- */

int
dirty_mark(struct disk *d, uint64_t off, uint64_t len)
{
	d->meta_dirty = 1;
	return extmap_set(d->dirty, off, len, EXTMAP_ZERO);
}

/*
 * Apply one log record to a disk.  Caller holds d->lock exclusively.
 * The only place disk contents and size change.
 */
int
disk_apply(struct disk *d, const struct rec_header *h, uint64_t rec_laddr)
{
	uint64_t tsize = d->tmpl->rec.size;
	int rc;

	switch (h->type) {
	/*
	 * Dirty first: if the map update then fails, the next checkpoint
	 * writes the range as the map still has it, which is what readers saw.
	 */
	case REC_WRITE:
		if ((rc = dirty_mark(d, h->offset, h->length)) < 0)
			return rc;
		return extmap_set(d->map, h->offset, h->length, rec_laddr);
	case REC_ZERO:
		if ((rc = dirty_mark(d, h->offset, h->length)) < 0)
			return rc;
		if ((h->flags & REC_F_GROW) && h->offset + h->length > d->size) {
			/* as a REC_SIZE growing it: what the old end hid was zeroed when it shrank */
			d->size = h->offset + h->length;
			d->meta_dirty = 1;
		}
		return extmap_set(d->map, h->offset, h->length, EXTMAP_ZERO);
	case REC_SIZE: {
		uint64_t newsize = h->offset;
		uint64_t top = d->size > tsize ? d->size : tsize;
		if (newsize < top) {
			/* cut everything past the new end; template bytes there must read as zeros if it grows back */
			if ((rc = dirty_mark(d, newsize, top - newsize)) < 0 ||
			    (rc = extmap_clear(d->map, newsize, top - newsize)) < 0)
				return rc;
			if (newsize < tsize && (rc = extmap_set(d->map, newsize, tsize - newsize, EXTMAP_ZERO)) < 0)
				return rc;
		}
		d->size = newsize;
		d->meta_dirty = 1;
		return 0;
	}
	}
	return -EINVAL;
}

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

/* ---- opening ---------------------------------------------------------- */

static int
load_disk(const struct catalog_disk *cd, void *arg)
{
	struct store *st = arg;
	struct tmpl *t = tmpl_by_id(st, cd->template_id);
	struct disk *d;
	int rc;

	if (!t) {
		hlog(HLOG_ERROR, "disk %lld refers to unknown template %lld",
		    (long long)cd->id, (long long)cd->template_id);
		return -EUCLEAN;
	}
	if (!(d = disk_new(cd, t)))
		return -ENOMEM;
	if ((rc = disk_table_put(st, d)) < 0)
		disk_free(d);
	return rc;
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

static int
store_create_files(const char *datadir, char *err, size_t errlen)
{
	char path[PATH_MAX + 32], logdir[PATH_MAX + 8];
	uint8_t uuid[16];
	struct catalog *cat;
	int rc;

	if ((rc = datadir_is_fresh(datadir, err, errlen)) < 0)
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
	if ((rc = wlog_create(logdir, uuid)) < 0) {
		snprintf(err, errlen, "cannot create the log in '%s': %s", logdir, strerror(-rc));
		return rc;
	}
	/* the catalog comes last: its existence says the store is complete */
	snprintf(path, sizeof(path), "%s/catalog.db.new", datadir);
	unlink(path);
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
}

static void *checkpoint_thread(void *arg);

#define TMPL_WATCH_MS	500	/* the longest between two looks at the templates' names */

/* store_open() gave up before its store held the catalog opened ahead: close that. */
static int
open_fail(const struct store_opts *o, int rc)
{
	catalog_close(o->catalog);
	return rc;
}

struct catalog *
store_catalog_preopen(const char *datadir)
{
	struct catalog *cat = NULL;
	char path[PATH_MAX + 32], err[256];

	snprintf(path, sizeof(path), "%s/catalog.db", datadir);
	if (catalog_open(path, 0, NULL, 0, &cat, err, sizeof(err)) < 0)
		return NULL;
	return cat;
}

void
store_catalog_release(struct catalog *cat)
{
	catalog_close(cat);
}

int
store_open(const struct store_opts *o, struct store **out, char *err, size_t errlen)
{
	struct store *st;
	struct replay_ctx rctx;
	struct wlog_replay_stats rs;
	char path[PATH_MAX + 32], logdir[PATH_MAX + 8];
	uint8_t uuid[16];
	uint64_t cp_laddr, cp_seq;
	struct timespec t0, t1, t_cat;
	int from_snapshot = 0;
	struct stat sb;
	pthread_rwlockattr_t rwa;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (stat(o->datadir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "data dir '%s': %s", o->datadir,
		    errno == 0 || S_ISDIR(sb.st_mode) ? "not a directory" : strerror(errno));
		return open_fail(o, -ENOTDIR);
	}
	if (access(o->datadir, o->readonly ? R_OK | X_OK : R_OK | W_OK | X_OK) < 0) {
		rc = -errno;
		snprintf(err, errlen, "data dir '%s' is not writable: %s", o->datadir, strerror(errno));
		return open_fail(o, rc);
	}
	snprintf(path, sizeof(path), "%s/catalog.db", o->datadir);
	if (access(path, F_OK) < 0) {
		if (!o->create || o->readonly) {
			snprintf(err, errlen, "data dir '%s' holds no hcowfs store", o->datadir);
			return open_fail(o, -ENOENT);
		}
		store_remove_partial(o->datadir);
		if ((rc = store_create_files(o->datadir, err, errlen)) < 0)
			return open_fail(o, rc);
	}

	st = calloc(1, sizeof(*st));
	if (!st)
		return open_fail(o, -ENOMEM);
	st->tmpldirfd = -1;
	snprintf(st->datadir, sizeof(st->datadir), "%s", o->datadir);
	snprintf(st->tmpldir, sizeof(st->tmpldir), "%s", o->tmpldir ? o->tmpldir : "");
	st->readonly = o->readonly;
	st->purge_allowed = o->purge_unlinked && !o->readonly;
	st->cp_ms = o->checkpoint_ms ? o->checkpoint_ms : STORE_CHECKPOINT_MS_DEFAULT;
	pthread_mutex_init(&st->cat_lock, NULL);
	pthread_mutex_init(&st->clean_lock, NULL);
	st->segment_size = o->segment_size ? o->segment_size : WLOG_SEGMENT_SIZE_DEFAULT;
	pthread_rwlockattr_init(&rwa);
	pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&st->ns_lock, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	pthread_mutex_init(&st->log_lock, NULL);
	pthread_mutex_init(&st->cp_mu, NULL);
	pthread_cond_init(&st->cp_cond, NULL);

	if (o->catalog)
		st->cat = o->catalog;
	else if ((rc = catalog_open(path, o->readonly ? CATALOG_READONLY : 0, NULL, 0, &st->cat,
	    err, errlen)) < 0)
		goto fail;
	if (!o->tmpldir) {
		/* checking: the dir the last mount used */
		if (catalog_meta_get(st->cat, "template_dir", st->tmpldir, sizeof(st->tmpldir)) < 0)
			st->tmpldir[0] = '\0';
	}
	st->tmpldirfd = st->tmpldir[0] ? open(st->tmpldir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (st->tmpldirfd < 0 && !o->readonly) {
		rc = st->tmpldir[0] ? -errno : -EINVAL;
		if (st->tmpldir[0])
			snprintf(err, errlen, "template dir '%s': %s", st->tmpldir, strerror(errno));
		else
			snprintf(err, errlen, "no template dir given, and the catalog names none");
		goto fail;
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
	    (rc = catalog_checkpoint_pos(st->cat, &cp_laddr, &cp_seq)) < 0) {
		snprintf(err, errlen, "catalog '%s': %s", path, catalog_error(st->cat));
		goto fail;
	}
	snprintf(logdir, sizeof(logdir), "%s/log", o->datadir);
	rc = o->readonly ? wlog_open_ro(logdir, uuid, &st->log, err, errlen) :
	    wlog_open(logdir, uuid, o->segment_size ? o->segment_size : WLOG_SEGMENT_SIZE_DEFAULT,
	    &st->log, err, errlen);
	if (rc < 0)
		goto fail;
	memcpy(st->uuid, uuid, 16);
	st->takeover = o->takeover;
	st->tmpl_leases = o->template_leases;
	st->snap = o->snap_area;
	st->snap_cap = o->snap_cap;
	if ((rc = catalog_each_template(st->cat, tmpl_load, st)) < 0 ||
	    (rc = catalog_each_disk(st->cat, load_disk, st)) < 0) {
		snprintf(err, errlen, "cannot load catalog '%s': %s", path,
		    rc == -EUCLEAN ? "it refers to templates it does not hold" : catalog_error(st->cat));
		goto fail;
	}
	/* a replacement takes the maps its predecessor left in shared memory, if whole */
	if (o->takeover && (rc = snapshot_load(st, &cp_laddr, &cp_seq)) != 0) {
		if (rc > 0) {
			from_snapshot = 1;
		} else {
			/* slower, but the catalog and the log hold everything the snapshot did */
			hlog(HLOG_WARN, "the map snapshot in shared memory is damaged (%s); loading "
			    "the maps from the catalog instead", strerror(-rc));
		}
	}
	if (!from_snapshot && (rc = catalog_each_extent(st->cat, load_extent, st)) < 0) {
		snprintf(err, errlen, "cannot load catalog '%s': %s", path,
		    rc == -EUCLEAN ? "it refers to disks it does not hold" : catalog_error(st->cat));
		goto fail;
	}
	for (size_t i = 0; i < st->ntmpls && !o->readonly; i++)
		if (st->tmpls[i]->problem[0])
			hlog(HLOG_ERROR, "%s; its disks refuse I/O", st->tmpls[i]->problem);
	if (st->overlaps && !o->readonly)
		hlog(HLOG_ERROR, "%s (%llu overlaps; hcowctl check tells more)", st->overlap_what,
		    (unsigned long long)st->overlaps);
	clock_gettime(CLOCK_MONOTONIC, &t_cat);
	rctx.st = st;
	rctx.skipped = 0;
	if ((rc = wlog_replay(st->log, cp_laddr, cp_seq, o->takeover, replay_apply, &rctx, &rs,
	    err, errlen)) < 0)
		goto fail;
	/* from a snapshot, the checkpoint is older than cp_laddr: let the next one run */
	st->cp_laddr = from_snapshot ? 0 : cp_laddr;
	st->cp_log_size = wlog_size(st->log) - rs.bytes;

	if (st->purge_allowed) {
		for (size_t i = 0; i < st->disks_cap; i++) {
			struct disk *d = st->disks[i];
			if (!d || d->name[0])
				continue;
			if ((rc = catalog_disk_purge(st->cat, d->id)) < 0) {
				hlog(HLOG_WARN, "cannot purge unlinked disk %lld: %s",
				    (long long)d->id, catalog_error(st->cat));
				continue;
			}
			st->disks[i] = NULL;
			disk_free(d);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	hlog(HLOG_INFO, "store '%s' open in %.1f ms (maps from %s: %.1f ms): replayed %llu records "
	    "(%llu bytes) after it, cut %llu torn bytes", o->datadir,
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	    from_snapshot ? "the snapshot" : "the checkpoint",
	    (double)(t_cat.tv_sec - t0.tv_sec) * 1e3 + (double)(t_cat.tv_nsec - t0.tv_nsec) / 1e6,
	    (unsigned long long)rs.records, (unsigned long long)rs.bytes,
	    (unsigned long long)rs.torn_bytes);

	if (o->readonly) {
		*out = st;
		return 0;
	}
	if ((rc = pthread_create(&st->cp_thread, NULL, checkpoint_thread, st)) != 0) {
		rc = -rc;
		snprintf(err, errlen, "cannot start the checkpoint thread: %s", strerror(-rc));
		goto fail;
	}
	pthread_setname_np(st->cp_thread, "hcowfs-ckpt");	/* for top -H and perf */
	st->cp_running = 1;
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
	if (st->cp_running) {
		pthread_mutex_lock(&st->cp_mu);
		st->cp_stop = 1;
		pthread_cond_signal(&st->cp_cond);
		pthread_mutex_unlock(&st->cp_mu);
		pthread_join(st->cp_thread, NULL);
		if (store_checkpoint(st) < 0)
			hlog(HLOG_WARN, "final checkpoint failed; the next open replays the log");
	}
	for (size_t i = 0; i < st->disks_cap; i++)
		disk_free(st->disks[i]);
	free(st->disks);
	for (size_t i = 0; i < st->ntmpls; i++) {
		if (st->tmpls[i]->fd >= 0)
			close(st->tmpls[i]->fd);
		free(st->tmpls[i]);
	}
	free(st->tmpls);
	wlog_close(st->log);
	catalog_close(st->cat);
	if (st->tmpldirfd >= 0)
		close(st->tmpldirfd);
	free(st);
}

/* ---- checkpoints ------------------------------------------------------ */

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

/* For one dirty range: make the catalog's rows match the map. */
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
	int64_t t0 = mono_ns();
	int rc = 0;

	pthread_mutex_lock(&st->cat_lock);
	pthread_rwlock_rdlock(&st->ns_lock);

	pthread_mutex_lock(&st->log_lock);
	pos = wlog_tail(st->log);
	seq = wlog_next_seq(st->log);
	pos_size = wlog_size(st->log);	/* the log up to pos: what the catalog will cover */
	items = calloc(st->disks_cap ? st->disks_cap : 1, sizeof(*items));
	if (!items)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < st->disks_cap; i++) {
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
		st->cp_ok_ns = mono_ns();
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
	out->age_s = st->cp_ok_ns ? (double)(mono_ns() - st->cp_ok_ns) / 1e9 : -1;
	pthread_mutex_unlock(&st->cp_mu);
	out->log_bytes_since = wlog_size(st->log) - atomic_load(&st->cp_log_size);
}

/*
 * Background work: a checkpoint every cp_ms (or sooner when nudged), and,
 * when the store has a snapshot area, a map snapshot every
 * STORE_SNAPSHOT_MS so a replacement worker has little log to replay.
 */
void
disks_each(struct store *st, void (*fn)(struct disk *d, void *arg), void *arg)
{
	pthread_rwlock_rdlock(&st->ns_lock);
	for (size_t i = 0; i < st->disks_cap; i++) {
		struct disk *d = st->disks[i];
		if (!d)
			continue;
		pthread_rwlock_rdlock(&d->lock);
		fn(d, arg);
		pthread_rwlock_unlock(&d->lock);
	}
	pthread_rwlock_unlock(&st->ns_lock);
}

int
disk_ids(struct store *st, uint64_t **ids, size_t *n)
{
	pthread_rwlock_rdlock(&st->ns_lock);
	*n = 0;
	*ids = calloc(st->disks_cap ? st->disks_cap : 1, sizeof(**ids));
	for (size_t i = 0; *ids && i < st->disks_cap; i++)
		if (st->disks[i])
			(*ids)[(*n)++] = (uint64_t)st->disks[i]->id;
	pthread_rwlock_unlock(&st->ns_lock);
	return *ids ? 0 : -ENOMEM;
}

static void
add_log_bytes(struct disk *d, void *arg)
{
	*(uint64_t *)arg += extmap_log_bytes(d->map);
}

void
store_log_space(struct store *st, uint64_t *disk_bytes, uint64_t *live_bytes)
{
	uint64_t live = 0;

	disks_each(st, add_log_bytes, &live);
	*disk_bytes = wlog_disk_bytes(st->log);
	*live_bytes = live;
}

uint64_t
store_log_released(struct store *st)
{
	return atomic_load(&st->clean_released);
}

uint64_t
store_log_spare(struct store *st)
{
	return wlog_spare_bytes(st->log);
}

/*
 * Clean when the log holds more than twice what the disks use, and the
 * difference is worth more than two segments: a log at most ~2x its live
 * data, cleaned in batches, not a segment at a time.
 */
static void
clean_if_worth_it(struct store *st)
{
	struct clean_stats cs;
	uint64_t disk, live;
	int rc;

	store_log_space(st, &disk, &live);
	if (disk <= 2 * live || disk - live <= 2 * st->segment_size)
		return;
	if ((rc = store_clean(st, 50, &cs)) < 0 && rc != -EBUSY)
		hlog(HLOG_WARN, "cleaner: %s", strerror(-rc));
}

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

	clock_gettime(CLOCK_MONOTONIC, &last_cp);
	if (st->cp_laddr == 0)
		last_cp.tv_sec -= st->cp_ms / 1000 + 1;	/* came up from a snapshot: checkpoint soon */
	pthread_mutex_lock(&st->cp_mu);
	while (!st->cp_stop) {
		struct timespec ts;
		int nudged;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += tick / 1000;
		ts.tv_nsec += (long)(tick % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		nudged = pthread_cond_timedwait(&st->cp_cond, &st->cp_mu, &ts) == 0;
		if (st->cp_stop)
			break;
		pthread_mutex_unlock(&st->cp_mu);
		if (st->snap && snapshot_write(st) == 0) {
			/* as often as 20x its cost (log lock held) allows, within 100 to STORE_SNAPSHOT_MS */
			snap_every = (unsigned)(st->snap_cost_us * 20 / 1000);
			snap_every = snap_every < 100 ? 100 : snap_every > STORE_SNAPSHOT_MS ?
			    STORE_SNAPSHOT_MS : snap_every;
			tick = snap_every < st->cp_ms ? snap_every : st->cp_ms;
			tick = tick < TMPL_WATCH_MS ? tick : TMPL_WATCH_MS;
		}
		/* a template deleted or replaced is seen here even if no read comes */
		pthread_mutex_lock(&st->cat_lock);	/* tmpls only grow, under it */
		for (size_t i = 0; i < st->ntmpls; i++) {
			tmpl_check(st->tmpls[i], 1);
			if (st->tmpl_leases)
				tmpl_lease(st->tmpls[i]);
		}
		pthread_mutex_unlock(&st->cat_lock);
		/* after the snapshot: a long checkpoint must not keep a replacement's replay long */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (nudged || (now.tv_sec - last_cp.tv_sec) * 1000 +
		    (now.tv_nsec - last_cp.tv_nsec) / 1000000 >= (long)st->cp_ms) {
			store_checkpoint(st);
			last_cp = now;
			clean_if_worth_it(st);
		}
		pthread_mutex_lock(&st->cp_mu);
	}
	pthread_mutex_unlock(&st->cp_mu);
	return NULL;
}

/* Called after appends: wake the checkpointer early when the replay tail grows large. */
void
checkpoint_nudge(struct store *st)
{
	if (wlog_size(st->log) - st->cp_log_size > STORE_CHECKPOINT_LOG_BYTES) {
		pthread_mutex_lock(&st->cp_mu);
		pthread_cond_signal(&st->cp_cond);
		pthread_mutex_unlock(&st->cp_mu);
	}
}

void
store_set_append_hook(struct store *st, void (*hook)(void *arg), void *arg)
{
	wlog_set_append_hook(st->log, hook, arg);
}
