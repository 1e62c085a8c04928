/*
 * tmplwatch: the templates the store's disks read through (struct tmpl):
 * their table, the reads a disk makes from them, and the watch that stops
 * those reads when a template changes.
 *
 * Design notes
 *
 * Owns st->tmpls (the table, which only grows, under cat_lock), and for each
 * template its open file, its problem and its read lease.  template.c knows
 * template files; this file knows the ones in use.
 *
 * Invariants:
 * - A template whose problem is set never serves a read again (diskio.c's
 *   disk_for_io refuses its disks, tmpl_read fails): problem[0] is written
 *   last and read with acquire, so a reader that sees it sees the message.
 * - A byte read from a template is served only if, after the read, the file
 *   was seen unchanged: by one fstat (tmpl_check) or by an unbroken lease.
 * - A problem is cleared only by store_create (namespace.c), under cat_lock
 *   and ns_lock exclusive, when the file is back as it was.
 *
 * States of one template, and the function making each transition:
 *
 *   LOADED ok    --tmpl_check sees a change----------------> PROBLEM
 *   LOADED ok    --tmpl_lease (checkpoint thread)-----------> LEASED
 *   LEASED       --lease_broken (signal: a writer opens it)--> LOADED ok
 *   LEASED       --tmpl_check (by name: deleted, replaced)--> PROBLEM
 *   PROBLEM      --store_create finds it as recorded---------> LOADED ok
 *   (open: tmpls_load sets LOADED ok or PROBLEM)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hlog.h"
#include "store_int.h"
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

int
tmpls_load(struct store *st)
{
	return catalog_each_template(st->cat, tmpl_load, st);
}

void
tmpls_watch(struct store *st)
{
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
	for (size_t i = 0; i < st->ntmpls; i++) {
		if (st->tmpls[i]->fd >= 0)
			close(st->tmpls[i]->fd);
		free(st->tmpls[i]);
	}
	free(st->tmpls);
	st->tmpls = NULL;
	st->ntmpls = 0;
}
