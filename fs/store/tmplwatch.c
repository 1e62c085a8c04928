/*
 * tmplwatch: the templates the store's disks read through (struct tmpl):
 * their table, the reads a disk makes from them, and the watch that stops
 * those reads when a template changes.
 *
 * Design notes
 *
 * Owns st->tmpls (the table, which only grows, under cat_lock and ns_lock
 * exclusive: holding either is enough to read it), and for each
 * template its open file, its problem and its read lease.  template.c knows
 * template files; this file knows the ones in use.
 *
 * Invariants:
 * - A template whose problem is set never serves a read again (diskio.c's
 *   disk_for_io refuses its disks, tmpl_read fails): problem[0] is written
 *   last and read with acquire, so a reader that sees it sees the message.
 * - A byte read from a template is served only if, after the read, the file
 *   was seen unchanged: by one fstat (tmpl_check) or by an unbroken lease.
 *   On a file system that is not local (FUSE, network: template_fs_is_local)
 *   no lease is taken and the look is a statx that asks the server
 *   (AT_STATX_FORCE_SYNC), not the kernel's cached attributes.
 * - Once a template's content sums are known, a read serves no byte of a
 *   chunk whose sum has not matched since the file was opened
 *   (tmpl_verify_range verifies it first, holding that one read).  The
 *   verifier thread (one per writable store) computes the sums of a new
 *   version once, in the background, and records them in the catalog; on
 *   every later open it verifies every chunk in the background too.
 * - A problem is cleared only by store_create (namespace.c), under cat_lock
 *   and ns_lock exclusive, when the file is back as it was.
 *
 * States of one template, and the function making each transition:
 *
 *   LOADED ok    --tmpl_check sees a change----------------> PROBLEM
 *   LOADED ok    --tmpl_lease (checkpoint thread)-----------> LEASED
 *   LEASED       --lease_broken (signal: a writer opens it)--> LOADED ok
 *   LEASED       --tmpl_check (by name: deleted, replaced)--> PROBLEM
 *   PROBLEM      --store_create finds it as recorded (tmpl_reopened)--> LOADED ok
 *   any ok       --a chunk's sum does not match (tmpl_verify_chunk)---> PROBLEM
 *   (open: tmpls_load sets LOADED ok or PROBLEM)
 *
 * Content sums of one template, apart from the states above:
 *
 *   UNKNOWN  --verifier: full read, file unchanged, row written--> KNOWN (all verified)
 *   KNOWN    --tmpls_load (sums read from the catalog)-----------> KNOWN (none verified)
 *   KNOWN    --tmpl_verify_chunk, by a read or the verifier------> chunk verified
 *   KNOWN    --tmpl_reopened------------------------------------> KNOWN (none verified)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "hlog.h"
#include "store_int.h"
#include "tcache.h"
#include "template.h"

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
	struct tmpl **v;
	int rc = 0;

	/* ns_lock too: a reader of .templates (tmpldir.c) looks a template up under ns_lock shared */
	pthread_rwlock_wrlock(&st->ns_lock);
	if ((v = realloc(st->tmpls, (st->ntmpls + 1) * sizeof(*v))) != NULL) {
		st->tmpls = v;
		st->tmpls[st->ntmpls++] = t;
	} else {
		rc = -ENOMEM;
	}
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

int
tmpl_acquire(struct store *st, const char *name, struct tmpl **out, char *err, size_t errlen)
{
	struct catalog_template rec;
	uint32_t *sums = NULL;
	struct tmpl *t;
	int fd = -1, rc;

	if (st->tpool && (t = tmpl_pool_named(st, name)) != NULL) {
		*out = t;	/* a pool's names never change: no round trip to look again */
		return 0;
	}
	if ((rc = st->tpool ? tmpl_pool_probe(st, name, &rec, &sums, err, errlen) :
	    template_probe(st->tmpldirfd, name, &rec, &fd, err, errlen)) < 0)
		return rc;
	if ((rc = catalog_template_get(st->cat, &rec)) < 0) {
		snprintf(err, errlen, "cannot record template '%s': %s", name, catalog_error(st->cat));
		goto fail;
	}
	if (sums && catalog_template_set_sums(st->cat, rec.id, sums, TEMPLATE_CHUNKS(rec.size)) < 0)
		hlog(HLOG_WARN, "template '%s': cannot record its content sums: %s", name,
		    catalog_error(st->cat));	/* taken from the pool again at the next open */
	if (!(t = tmpl_by_id(st, rec.id))) {
		if (!(t = tmpl_new(&rec, fd, st->tmpldirfd))) {
			rc = -ENOMEM;
			goto fail;
		}
		if (sums && (rc = tmpl_pool_attach(st, t, sums, err, errlen)) < 0) {
			tmpl_free(t);
			free(sums);
			return rc;
		}
		if ((rc = tmpl_add(st, t)) < 0) {
			tmpl_free(t);
			free(sums);
			return rc;
		}
	} else if (t->problem[0]) {
		/* the file is back as it was when those disks were cloned */
		pthread_rwlock_wrlock(&st->ns_lock);
		tmpl_reopened(t, fd);
		pthread_rwlock_unlock(&st->ns_lock);
		hlog(HLOG_INFO, "template '%s' matches its recorded version again", name);
	} else if (fd >= 0) {
		close(fd);
	}
	free(sums);
	*out = t;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(sums);
	return rc;
}

uint64_t
fd_alloc_bytes(int fd)
{
	struct stat sb;
	return fstat(fd, &sb) == 0 ? (uint64_t)sb.st_blocks * 512 : 0;
}

struct tmpl *
tmpl_new(const struct catalog_template *rec, int fd, int dirfd)
{
	struct tmpl *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->rec = *rec;
	t->fd = fd;
	t->dirfd = dirfd;
	if (fd >= 0) {
		t->alloc_bytes = fd_alloc_bytes(fd);
		t->local = template_fs_is_local(fd);
	}
	return t;
}

void
tmpl_free(struct tmpl *t)
{
	if (t->fd >= 0)
		close(t->fd);
	tcache_file_close(t->cached);
	free(t->sums);
	free((void *)t->verified);
	free(t);
}

/* Take the content sums recorded for t's version, if any: none of its chunks verified yet. */
static int
tmpl_sums_load(struct store *st, struct tmpl *t)
{
	uint32_t *sums;
	uint64_t n;
	int rc;

	if ((rc = catalog_template_sums(st->cat, t->rec.id, &sums, &n)) < 0)
		return rc;
	if (n == 0 || n != TEMPLATE_CHUNKS(t->rec.size)) {
		free(sums);	/* none, or not this size's: computed again */
		return 0;
	}
	if (!(t->verified = calloc(n, 1))) {
		free(sums);
		return -ENOMEM;
	}
	t->sums = sums;
	t->nchunks = n;
	atomic_store_explicit(&t->sums_known, 1, memory_order_release);
	return 0;
}

/*
 * A row from schema version 2 knows no birth time or handle: take them from
 * the file that matched everything else, once (trust on first use).
 */
static void
tmpl_learn_identity(struct store *st, struct tmpl *t, const struct catalog_template *cur)
{
	if (st->readonly || t->rec.btime_ns || t->rec.handle[0] || (!cur->btime_ns && !cur->handle[0]))
		return;
	t->rec.btime_ns = cur->btime_ns;
	snprintf(t->rec.handle, sizeof(t->rec.handle), "%s", cur->handle);
	if (catalog_template_set_identity(st->cat, &t->rec) < 0)
		hlog(HLOG_WARN, "template '%s': cannot record its birth time and handle: %s",
		    t->rec.name, catalog_error(st->cat));
}

/* Check the template file behind a catalog row; load it (catalog_each_template callback). */
static int
tmpl_load(const struct catalog_template *rec, void *arg)
{
	struct store *st = arg;
	struct tmpl *t = tmpl_new(rec, -1, st->tmpldirfd);
	struct catalog_template cur;
	char err[256];
	const char *why;
	int rc;

	if (!t)
		return -ENOMEM;
	if (tmpl_rec_in_pool(rec)) {
		/* immutable: nothing to compare, the cache checks every chunk it serves */
		if (tmpl_pool_attach(st, t, NULL, err, sizeof(err)) < 0)
			snprintf(t->problem, sizeof(t->problem), "%s", err);
		if ((rc = tmpl_add(st, t)) < 0)
			tmpl_free(t);
		return rc;
	}
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
		t->local = template_fs_is_local(t->fd);
		tmpl_learn_identity(st, t, &cur);
	}
add:
	/* even with a problem: a file put back is checked against these, never re-summed */
	if ((rc = tmpl_sums_load(st, t)) < 0 || (rc = tmpl_add(st, t)) < 0)
		tmpl_free(t);
	return rc;
}

void
tmpl_reopened(struct tmpl *t, int fd)
{
	if (t->fd >= 0)
		close(t->fd);	/* kept open when the change was seen while serving */
	t->fd = fd;
	t->alloc_bytes = fd_alloc_bytes(fd);
	t->local = template_fs_is_local(fd);
	for (uint64_t i = 0; atomic_load(&t->sums_known) && i < t->nchunks; i++)
		atomic_store(&t->verified[i], 0);
	atomic_fetch_add(&t->reopens, 1);
	t->problem[0] = '\0';
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

static const char tmpl_changed[] = "template '%s' changed since its disks were cloned (%s)";

/*
 * fstat t's open file; on a file system that is not local, ask the server
 * (FUSE, NFS: the kernel's cached attributes may predate another writer).
 */
static int
tmpl_fstat(const struct tmpl *t, struct stat *sb)
{
	struct statx sx;

	if (t->local)
		return fstat(t->fd, sb);
	if (statx(t->fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &sx) < 0)
		return -1;
	memset(sb, 0, sizeof(*sb));
	sb->st_size = (off_t)sx.stx_size;
	sb->st_mtim.tv_sec = sx.stx_mtime.tv_sec;
	sb->st_mtim.tv_nsec = sx.stx_mtime.tv_nsec;
	sb->st_nlink = sx.stx_nlink;
	sb->st_ino = sx.stx_ino;
	sb->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	return 0;
}

/*
 * A template changed while its disks are served: written in place or cut
 * (size, mtime of the open file), or deleted or replaced (its link count
 * drops to 0, or, with by_name, its name leads to another file).  Called
 * by the checkpoint thread with by_name, and after each read from a template
 * that has no lease (tmpl_read_checked): one fstat (tmpl_fstat), so bytes
 * read after a write(2) to it are never served (the writer updates mtime
 * before it copies its data).
 */
int
tmpl_check(struct tmpl *t, int by_name)
{
	struct stat sb, named;

	if (__atomic_load_n(&t->problem[0], __ATOMIC_ACQUIRE))
		return -EIO;
	if (t->fd < 0 || tmpl_fstat(t, &sb) < 0)
		return 0;	/* nothing to check against: an open problem covers it */
	if ((uint64_t)sb.st_size != t->rec.size)
		tmpl_set_problem(t, tmpl_changed, "its size changed");
	else if ((int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec != t->rec.mtime_ns)
		tmpl_set_problem(t, tmpl_changed, "it was modified");
	else if (!by_name && sb.st_nlink > 0)
		;	/* the read path: one fstat, no name lookup */
	else if (fstatat(t->dirfd, t->rec.name, &named, 0) < 0 && errno == ENOENT)
		tmpl_set_problem(t, "template '%s': %s", "no such file in the template dir");
	else if (sb.st_nlink == 0 || named.st_ino != sb.st_ino || named.st_dev != sb.st_dev)
		tmpl_set_problem(t, tmpl_changed, "it was replaced by another file");
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
 * open) or would not be broken by every writer (a FUSE or network file
 * system, where the server or another host writes: not t->local) reads keep
 * the fstat.  Only a process that owns the whole store
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
	if (!lease_ready || t->fd < 0 || !t->local ||
	    __atomic_load_n(&t->problem[0], __ATOMIC_ACQUIRE))
		return;		/* not local: a writer elsewhere would not break it */
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

/* Verify chunk i of t against its sum (buf: TEMPLATE_CHUNK bytes); -EIO and a problem if it differs. */
static int
tmpl_verify_chunk(struct tmpl *t, uint64_t i, void *buf)
{
	uint32_t sum;
	int rc;

	if (atomic_load(&t->verified[i]))
		return 0;
	if ((rc = template_chunk_sum(t->fd, t->rec.size, i, buf, &sum)) < 0) {
		hlog(HLOG_ERROR, "template '%s': cannot read bytes %llu..: %s", t->rec.name,
		    (unsigned long long)(i * TEMPLATE_CHUNK), strerror(-rc));
		return -EIO;
	}
	if (sum != t->sums[i]) {
		tmpl_set_problem(t, tmpl_changed, "its content changed");
		return -EIO;
	}
	atomic_store(&t->verified[i], 1);
	return 0;
}

/* Before t's bytes [off, off+len) are read: verify their chunks not verified yet. */
static int
tmpl_verify_range(struct tmpl *t, uint64_t off, uint64_t len)
{
	void *buf = NULL;
	int rc = 0;

	if (!atomic_load_explicit(&t->sums_known, memory_order_acquire))
		return 0;	/* the version is this open file (tmpl_check guards it) */
	for (uint64_t i = off / TEMPLATE_CHUNK; rc == 0 && i <= (off + len - 1) / TEMPLATE_CHUNK; i++) {
		if (atomic_load(&t->verified[i]))
			continue;
		if (!buf && !(buf = malloc(TEMPLATE_CHUNK)))
			return -ENOMEM;
		rc = tmpl_verify_chunk(t, i, buf);
	}
	free(buf);
	return rc;
}

/* Read template bytes for a disk: zeros past the template's end. */
int
tmpl_read(struct tmpl *t, char *buf, uint64_t len, uint64_t off)
{
	uint64_t have = off < t->rec.size ? t->rec.size - off : 0;
	int rc;

	if (have > len)
		have = len;
	if (t->cached) {
		if (have > 0 && (rc = tcache_read(t->cached, buf, have, off)) < 0)
			return rc;
		memset(buf + have, 0, len - have);
		return 0;
	}
	if (have > 0 && (rc = tmpl_verify_range(t, off, have)) < 0)
		return rc;
	if (have > 0) {
		ssize_t got = fd_pread_upto(t->fd, buf, have, off);
		if (got < 0)
			return (int)got;
		if ((uint64_t)got < have) {
			/* the file shrank under us: that is a changed template */
			hlog(HLOG_ERROR, "template '%s' is shorter than recorded", t->rec.name);
			return -EIO;
		}
	}
	if (have > 0 && tmpl_read_checked(t) < 0)
		return -EIO;
	memset(buf + have, 0, len - have);
	return 0;
}

/*
 * The verifier: one thread per writable store (started by the checkpoint
 * thread's first tmpls_watch) that reads every template in
 * use once per open, chunk by chunk, so that reads seldom wait for a chunk
 * to be verified.  For a version whose sums are not known it computes them,
 * and records them once the whole file was read and the file was seen
 * unchanged (by name too).  It reads under ns_lock shared, one chunk at a
 * time, so store_create can swap a template's file (tmpl_reopened) between
 * two chunks; it never holds cat_lock while reading.
 */
struct tmpl_verifier {
	pthread_t	 thread;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;
	int		 stop;
	void		*buf;		/* TEMPLATE_CHUNK bytes */
};

#define TMPL_VERIFY_IDLE_MS	500	/* between two looks for work */

static int
verifier_stopped(struct tmpl_verifier *v)
{
	int stop;

	pthread_mutex_lock(&v->mu);
	stop = v->stop;
	pthread_mutex_unlock(&v->mu);
	return stop;
}

/* The next template with work for the verifier, or NULL. */
static struct tmpl *
verifier_next(struct store *st)
{
	struct tmpl *t = NULL;

	pthread_mutex_lock(&st->cat_lock);
	for (size_t i = 0; i < st->ntmpls && !t; i++)
		if (atomic_load(&st->tmpls[i]->done_for) != atomic_load(&st->tmpls[i]->reopens) + 1 &&
		    st->tmpls[i]->fd >= 0 &&
		    !__atomic_load_n(&st->tmpls[i]->problem[0], __ATOMIC_ACQUIRE))
			t = st->tmpls[i];
	pthread_mutex_unlock(&st->cat_lock);
	return t;
}

/*
 * Chunk i of t, under ns_lock shared: with sums known, verify it, else
 * compute its sum into sums[i].  1 when t has a problem (stop with it), 0 or -errno.
 */
static int
verifier_chunk(struct store *st, struct tmpl *t, uint64_t i, uint32_t *sums, void *buf)
{
	int rc;

	pthread_rwlock_rdlock(&st->ns_lock);
	if (__atomic_load_n(&t->problem[0], __ATOMIC_ACQUIRE))
		rc = 1;
	else if (sums)
		rc = template_chunk_sum(t->fd, t->rec.size, i, buf, &sums[i]);
	else
		rc = tmpl_verify_chunk(t, i, buf) < 0 ? 1 : 0;
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

/* Compute t's sums (none known yet), check t unchanged, record and publish them. */
static void
verifier_compute(struct store *st, struct tmpl_verifier *v, struct tmpl *t)
{
	uint64_t n = TEMPLATE_CHUNKS(t->rec.size);
	uint32_t *sums = malloc((n ? n : 1) * sizeof(*sums));
	_Atomic unsigned char *verified = malloc(n ? n : 1);
	unsigned pass = atomic_load(&t->reopens) + 1;
	int rc = sums && verified ? 0 : -ENOMEM;

	for (uint64_t i = 0; rc == 0 && i < n; i++)
		if (verifier_stopped(v))
			goto out;	/* computed again at the next open */
		else
			rc = verifier_chunk(st, t, i, sums, v->buf);
	if (rc == 0 && tmpl_check(t, 1) < 0)
		rc = 1;
	if (rc == 0) {
		pthread_mutex_lock(&st->cat_lock);
		if ((rc = catalog_template_set_sums(st->cat, t->rec.id, sums, n)) < 0) {
			/* this open still knows them; the next one computes them again */
			hlog(HLOG_WARN, "template '%s': cannot record its content sums: %s",
			    t->rec.name, catalog_error(st->cat));
			rc = 0;
		}
		pthread_mutex_unlock(&st->cat_lock);
	}
	if (rc == 0) {
		for (uint64_t i = 0; i < n; i++)
			atomic_init(&verified[i], 1);
		t->sums = sums;
		t->verified = verified;
		t->nchunks = n;
		atomic_store_explicit(&t->sums_known, 1, memory_order_release);
		sums = NULL;
		verified = NULL;
		hlog(HLOG_INFO, "template '%s': content sums of %llu MiB recorded", t->rec.name,
		    (unsigned long long)n);
	} else if (rc < 0) {
		hlog(HLOG_WARN, "template '%s': content sums not computed: %s", t->rec.name,
		    strerror(-rc));
	}
	atomic_store(&t->done_for, pass);
out:
	free(sums);
	free((void *)verified);
}

/* Verify every chunk of t not verified yet (sums known). */
static void
verifier_verify(struct store *st, struct tmpl_verifier *v, struct tmpl *t)
{
	unsigned pass = atomic_load(&t->reopens) + 1;

	for (uint64_t i = 0; i < t->nchunks; i++) {
		if (verifier_stopped(v))
			return;
		if (verifier_chunk(st, t, i, NULL, v->buf) != 0)
			break;		/* a problem: tmpl_set_problem said it */
	}
	if (!__atomic_load_n(&t->problem[0], __ATOMIC_ACQUIRE))
		hlog(HLOG_INFO, "template '%s': content verified (%llu MiB)", t->rec.name,
		    (unsigned long long)t->nchunks);
	atomic_store(&t->done_for, pass);
}

static void *
verifier_main(void *arg)
{
	struct store *st = arg;
	struct tmpl_verifier *v = st->tverify;

	while (!verifier_stopped(v)) {
		struct tmpl *t = verifier_next(st);
		if (t && atomic_load_explicit(&t->sums_known, memory_order_acquire))
			verifier_verify(st, v, t);
		else if (t)
			verifier_compute(st, v, t);
		else {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += TMPL_VERIFY_IDLE_MS * 1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			pthread_mutex_lock(&v->mu);
			if (!v->stop)
				pthread_cond_timedwait(&v->cond, &v->mu, &until);
			pthread_mutex_unlock(&v->mu);
		}
	}
	return NULL;
}

/* Start the verifier; 0 or -errno. */
static int
verifier_start(struct store *st)
{
	struct tmpl_verifier *v = calloc(1, sizeof(*v));
	int rc;

	if (!v || !(v->buf = malloc(TEMPLATE_CHUNK))) {
		free(v);
		return -ENOMEM;
	}
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cond, NULL);
	st->tverify = v;
	if ((rc = pthread_create(&v->thread, NULL, verifier_main, st)) != 0) {
		st->tverify = NULL;
		free(v->buf);
		free(v);
		return -rc;
	}
	return 0;
}

/* Stop and join the verifier, if any. */
static void
verifier_stop(struct store *st)
{
	struct tmpl_verifier *v = st->tverify;

	if (!v)
		return;
	pthread_mutex_lock(&v->mu);
	v->stop = 1;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->mu);
	pthread_join(v->thread, NULL);
	pthread_mutex_destroy(&v->mu);
	pthread_cond_destroy(&v->cond);
	free(v->buf);
	free(v);
	st->tverify = NULL;
}

int
tmpls_load(struct store *st)
{
	return catalog_each_template(st->cat, tmpl_load, st);
}

void
tmpls_watch(struct store *st)
{
	/*
	 * The verifier starts here, not at open: it writes the catalog, which
	 * the open uses without cat_lock until the checkpoint thread runs.
	 */
	if (!st->tverify && !st->readonly && st->tmpldirfd >= 0 && verifier_start(st) < 0)
		hlog(HLOG_WARN, "cannot start the template verifier; trying again");
	pthread_mutex_lock(&st->cat_lock);	/* tmpls only grow, under it */
	for (size_t i = 0; i < st->ntmpls; i++) {
		tmpl_check(st->tmpls[i], 1);
		if (st->tmpl_leases)
			tmpl_lease(st->tmpls[i]);
	}
	pthread_mutex_unlock(&st->cat_lock);
}

void
tmpls_free(struct store *st)
{
	verifier_stop(st);
	for (size_t i = 0; i < st->ntmpls; i++)
		tmpl_free(st->tmpls[i]);
	free(st->tmpls);
	st->tmpls = NULL;
	st->ntmpls = 0;
}
