/*
 * fence: see fence.h for the contract.
 *
 * Design notes
 *
 * Order of a takeover, and why:
 *   1. read the holder's addresses (xattr "addrs") and the lock's lockers;
 *   2. blocklist each address, then wait for the latest OSD map: an OSD
 *      that has this map refuses the old client, and an operation of ours
 *      is not served by an OSD older than the map we carry;
 *   3. break the old lock and take ours (cookie: random per worker);
 *   4. record our holder string, and (fence_add_addr) our addresses;
 *   5. bump the cache generation on the object, then in the local file.
 * A crash between any two steps leaves the store held by nobody alive or
 * by us; the next mount or takeover starts over from step 1.
 *
 * The lease: renew() sends a lock renewal (LIBRADOS_LOCK_FLAG_MUST_RENEW:
 * it fails if the lock is not ours any more) and, when it succeeds, moves
 * lease_until to the time it was *sent* plus FENCE_LEASE_MS.  -EBUSY,
 * -ENOENT or -ESHUTDOWN (blocklisted) mean another host took the store:
 * lost for good.  Any other error (a timeout: the cluster is away) leaves
 * the lease to run out; I/O then waits in fence_check.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fence.h"
#include "hlog.h"

#ifdef HAVE_CEPH

#define ADDRS_MAX	1024

struct fence {
	rados_t		 r;
	rados_ioctx_t	 io;
	char		 cookie[40];
	char		 holder[512];
	char		 spec[160];
	char		 addrs[ADDRS_MAX];	/* space-separated */
	_Atomic uint64_t lease_until;		/* monotonic ns; 0: none */
	unsigned	 wait_s;		/* longest a request waits for a renewal; 0: no bound */
	atomic_int	 lost;
	atomic_int	 stop;
	_Atomic uint64_t renewals;		/* renewals sent (fence_renewals) */
	atomic_int	 long_outage;		/* fence_long_outage() */
	pthread_t	 renewer;
	int		 running;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;			/* a renewal happened, or the lease was lost */
	void		(*wait_hook)(void *arg, int delta);
	void		*wait_arg;
};

/* Read xattr name of the owner object into buf (NUL-terminated): length or -errno. */
static int
owner_get(rados_ioctx_t io, const char *name, char *buf, size_t len)
{
	int rc = rados_getxattr(io, FENCE_OBJECT, name, buf, len - 1);
	if (rc < 0)
		return rc;
	buf[rc] = '\0';
	return rc;
}

/* Set xattr name of the owner object to the string val. */
static int
owner_set(rados_ioctx_t io, const char *name, const char *val)
{
	return rados_setxattr(io, FENCE_OBJECT, name, val, strlen(val));
}

/* The lock's one holder (client name, cookie, address): 1, 0 if none, or -errno. */
static int
lock_holder(rados_ioctx_t io, char *client, size_t clen, char *cookie, size_t cklen,
    char *addr, size_t alen)
{
	char tag[64];
	size_t tl = sizeof(tag), cl = clen, kl = cklen, al = alen;
	int excl;
	ssize_t n = rados_list_lockers(io, FENCE_OBJECT, FENCE_LOCK, &excl, tag, &tl, client, &cl,
	    cookie, &kl, addr, &al);

	if (n < 0)
		return n == -ENOENT ? 0 : (int)n;
	return n > 0;
}

/* Break every holder of lock name on object oid (all of them fenced by now). */
static int
break_all(rados_ioctx_t io, const char *oid, const char *name)
{
	char tag[64], clients[1024], cookies[1024], addrs[1024];
	size_t tl = sizeof(tag), cl = sizeof(clients), kl = sizeof(cookies), al = sizeof(addrs);
	int excl, rc = 0;
	ssize_t n = rados_list_lockers(io, oid, name, &excl, tag, &tl, clients, &cl, cookies, &kl,
	    addrs, &al);

	if (n <= 0)
		return n == -ENOENT ? 0 : (int)n;
	for (const char *c = clients, *k = cookies; n-- > 0 && rc == 0; c += strlen(c) + 1, k += strlen(k) + 1) {
		rc = rados_break_lock(io, oid, name, c, k);
		if (rc == -ENOENT)
			rc = 0;
	}
	return rc;
}

/* An address without its messenger prefix ("v1:", "v2:"): how two lists name one client. */
static const char *
addr_bare(const char *a)
{
	return strncmp(a, "v1:", 3) == 0 || strncmp(a, "v2:", 3) == 0 ? a + 3 : a;
}

struct blocklisting {
	rados_t		 r;
	char		*addr;
	int		 rc;
	int		 threaded;	/* t runs it; else it ran in the caller */
	pthread_t	 t;
};

/* One address onto the blocklist (a thread: the monitor takes a proposal each). */
static void *
blocklist_one(void *arg)
{
	struct blocklisting *b = arg;

	/* expiry 0: the cluster's default (an hour), after which the old host is long gone */
	b->rc = rados_blocklist_add(b->r, b->addr, 0);
	return NULL;
}

/*
 * Blocklist every address in the space-separated list and extra (once each,
 * all at once: each is a monitor proposal, about a second), then wait for
 * the OSD map that has them.
 */
static int
blocklist_all(rados_t r, const char *list, const char *extra, char *err, size_t errlen)
{
	char buf[ADDRS_MAX + 128], *save = NULL;
	struct blocklisting b[16];
	int n = 0, rc = 0;

	snprintf(buf, sizeof(buf), "%s %s", list, extra ? extra : "");
	for (char *a = strtok_r(buf, " ", &save); a && n < 16; a = strtok_r(NULL, " ", &save)) {
		int dup = 0;
		for (int i = 0; i < n; i++)
			dup |= strcmp(addr_bare(b[i].addr), addr_bare(a)) == 0;
		if (dup)
			continue;
		b[n] = (struct blocklisting){ .r = r, .addr = a };
		b[n].threaded = pthread_create(&b[n].t, NULL, blocklist_one, &b[n]) == 0;
		if (!b[n].threaded)
			blocklist_one(&b[n]);
		n++;
	}
	for (int i = 0; i < n; i++) {
		if (b[i].threaded)
			pthread_join(b[i].t, NULL);
		if (b[i].rc < 0 && rc == 0) {
			rc = b[i].rc;
			snprintf(err, errlen, "cannot fence the old holder's client %s: %s (the "
			    "client key needs mon 'profile simple-rados-client-with-blocklist')",
			    b[i].addr, strerror(-rc));
		} else if (b[i].rc == 0) {
			hlog(HLOG_WARN, "fenced client %s (blocklisted)", b[i].addr);
		}
	}
	return rc < 0 ? rc : rados_wait_for_latest_osdmap(r);
}

/* n random bytes as 2n hex digits and a NUL into out: 0, or -EIO. */
static int
random_hex(char *out, size_t n)
{
	uint8_t rnd[16];

	if (n > sizeof(rnd) || getrandom(rnd, n, 0) != (ssize_t)n)
		return -EIO;
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
	return 0;
}

/* The local cache's "ID GEN", or a new id with generation 0 if it has none. */
static void
cache_read(const char *cachedir, char *id, size_t idlen, uint64_t *gen)
{
	char path[4200], buf[128] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cachedir, FENCE_CACHE_FILE);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		close(fd);
		if (sscanf(buf, "%32s %" SCNu64, id, gen) == 2 && strlen(id) == 16)
			return;
	}
	if (random_hex(id, 8) < 0)
		snprintf(id, idlen, "%016x", 0);
	*gen = 0;
}

/* Write "ID GEN" to the local cache file durably (temp file, fsync, rename). */
static int
cache_write(const char *cachedir, const char *id, uint64_t gen)
{
	char path[4200], tmp[4210], buf[64];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", cachedir, FENCE_CACHE_FILE);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	snprintf(buf, sizeof(buf), "%s %" PRIu64 "\n", id, gen);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf) || fsync(fd) < 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	return rc;
}

/*
 * Decide whether the local cache may be trusted and move both generations
 * on: object first, so a crash in between leaves them different (untrusted).
 */
static int
cache_claim(struct fence *f, const char *cachedir, int *trust, char *err, size_t errlen)
{
	char id[40], rec[128], want[80];
	uint64_t gen;
	int rc;

	cache_read(cachedir, id, sizeof(id), &gen);
	snprintf(want, sizeof(want), "%s %" PRIu64, id, gen);
	rc = owner_get(f->io, "cache", rec, sizeof(rec));
	*trust = rc > 0 && strcmp(rec, want) == 0;
	snprintf(want, sizeof(want), "%s %" PRIu64, id, gen + 1);
	if ((rc = owner_set(f->io, "cache", want)) < 0 || (rc = cache_write(cachedir, id, gen + 1)) < 0) {
		snprintf(err, errlen, "cannot record this host's cache of %s: %s", f->spec, strerror(-rc));
		return rc;
	}
	return 0;
}

/* One renewal: the outcome for the lease (see the design notes). */
static void
renew(struct fence *f)
{
	uint64_t sent = (uint64_t)clock_mono_ns();
	int rc;

	f->renewals++;
	rc = rados_lock_exclusive(f->io, FENCE_OBJECT, FENCE_LOCK, f->cookie, f->holder, NULL,
	    LIBRADOS_LOCK_FLAG_MUST_RENEW);

	pthread_mutex_lock(&f->mu);
	if (rc == 0) {
		/* back after longer than libcephsqlite keeps its lock: the catalog needs a reopen */
		if (f->lease_until + (uint64_t)FENCE_OUTAGE_LONG_MS * 1000000 < sent)
			f->long_outage = 1;
		if (sent + (uint64_t)FENCE_LEASE_MS * 1000000 > f->lease_until)
			f->lease_until = sent + (uint64_t)FENCE_LEASE_MS * 1000000;
	} else if (rc == -EBUSY || rc == -ENOENT || rc == -ESHUTDOWN) {
		if (!f->lost)
			hlog(HLOG_ERROR, "%s: this host no longer holds the store (%s): another host "
			    "took it over; every request now fails with EIO", f->spec, strerror(-rc));
		f->lost = 1;
	} else {
		hlog(HLOG_WARN, "%s: cannot renew the store's lock: %s (I/O waits for the cluster)",
		    f->spec, strerror(-rc));
	}
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
}

/* The renewal thread. */
static void *
renewer_main(void *arg)
{
	struct fence *f = arg;

	while (!f->stop && !f->lost) {
		/* tv_nsec must stay under a second: nanosleep refuses it at once (EINVAL) */
		struct timespec ts = { FENCE_RENEW_MS / 1000, (FENCE_RENEW_MS % 1000) * 1000000L };
		renew(f);
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

/*
 * Was the holder a mount of this very cache dir, which is now ours?  The
 * owner's "cache" is this dir's "ID GEN" only if nobody acquired the store
 * since this dir's mount did; and the mount running us holds the dir's lock
 * (datalock.h, inherited by each of its workers), so every process of that
 * mount is dead.
 */
static int
holder_was_this_cache(struct fence *f, const char *cachedir)
{
	char id[40], rec[128], mine[80];
	uint64_t gen;

	cache_read(cachedir, id, sizeof(id), &gen);
	snprintf(mine, sizeof(mine), "%s %" PRIu64, id, gen);
	return gen > 0 && owner_get(f->io, "cache", rec, sizeof(rec)) > 0 && strcmp(rec, mine) == 0;
}

/* Take the lock, breaking the holder's if we may (see the design notes). */
static int
take_lock(struct fence *f, const struct fence_opts *o, char *err, size_t errlen)
{
	char client[128], cookie[128], addr[256], holder[512] = "", addrs[ADDRS_MAX] = "";
	int rc;

	rc = rados_lock_exclusive(f->io, FENCE_OBJECT, FENCE_LOCK, f->cookie, f->holder, NULL, 0);
	if (rc != -EBUSY) {
		if (rc < 0)
			snprintf(err, errlen, "cannot lock %s: %s", f->spec, strerror(-rc));
		return rc;
	}
	if ((rc = lock_holder(f->io, client, sizeof(client), cookie, sizeof(cookie), addr,
	    sizeof(addr))) <= 0) {
		snprintf(err, errlen, "cannot see who holds %s: %s", f->spec, strerror(rc ? -rc : EAGAIN));
		return rc ? rc : -EAGAIN;
	}
	owner_get(f->io, "holder", holder, sizeof(holder));
	owner_get(f->io, "addrs", addrs, sizeof(addrs));
	if (!o->takeover && !(o->replace && strcmp(holder, f->holder) == 0) &&
	    !holder_was_this_cache(f, o->cachedir)) {
		snprintf(err, errlen, "%s is served by %s (%s at %s); to fence that host and serve "
		    "the store here, mount with -o takeover", f->spec, holder[0] ? holder : "an unknown host",
		    client, addr);
		return -EBUSY;
	}
	hlog(HLOG_WARN, "%s: taking over from %s (%s at %s)", f->spec,
	    holder[0] ? holder : "an unknown host", client, addr);
	if ((rc = blocklist_all(f->r, addrs, addr, err, errlen)) < 0)
		return rc;
	rc = rados_break_lock(f->io, FENCE_OBJECT, FENCE_LOCK, client, cookie);
	if (rc < 0 && rc != -ENOENT) {
		snprintf(err, errlen, "cannot break %s's lock on %s: %s", client, f->spec, strerror(-rc));
		return rc;
	}
	if (o->also_object && (rc = break_all(f->io, o->also_object, o->also_lock)) < 0) {
		snprintf(err, errlen, "cannot break the old holder's lock %s on %s: %s", o->also_lock,
		    o->also_object, strerror(-rc));
		return rc;
	}
	rc = rados_lock_exclusive(f->io, FENCE_OBJECT, FENCE_LOCK, f->cookie, f->holder, NULL, 0);
	if (rc < 0)
		snprintf(err, errlen, "cannot lock %s after fencing its holder: %s", f->spec,
		    rc == -EBUSY ? "another host took it meanwhile" : strerror(-rc));
	return rc < 0 ? rc : 1;
}

int
fence_acquire(struct cluster *c, rados_ioctx_t io, const struct fence_opts *o,
    struct fence **out, int *trust_cache, char *err, size_t errlen)
{
	struct fence *f = calloc(1, sizeof(*f));
	char *mine = NULL;
	int rc, fenced;

	if (!f)
		return -ENOMEM;
	f->r = cluster_rados(c);
	f->io = io;
	pthread_mutex_init(&f->mu, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&f->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	f->wait_s = cluster_op_timeout(c);
	snprintf(f->holder, sizeof(f->holder), "%s", o->holder);
	snprintf(f->spec, sizeof(f->spec), "%s", o->spec);
	if ((rc = random_hex(f->cookie, 16)) < 0) {
		snprintf(err, errlen, "cannot get random bytes for a lock cookie");
		goto fail;
	}
	if ((rc = take_lock(f, o, err, errlen)) < 0)
		goto fail;
	fenced = rc == 1;
	f->lease_until = (uint64_t)clock_mono_ns() + (uint64_t)FENCE_LEASE_MS * 1000000;
	if ((rc = rados_getaddrs(f->r, &mine)) < 0) {
		snprintf(err, errlen, "cannot learn this client's address: %s", strerror(-rc));
		goto fail_locked;
	}
	snprintf(f->addrs, sizeof(f->addrs), "%s", mine);
	free(mine);
	if ((rc = owner_set(io, "holder", f->holder)) < 0 || (rc = owner_set(io, "addrs", f->addrs)) < 0) {
		snprintf(err, errlen, "cannot record the holder of %s: %s", f->spec, strerror(-rc));
		goto fail_locked;
	}
	if ((rc = cache_claim(f, o->cachedir, trust_cache, err, errlen)) < 0)
		goto fail_locked;
	if (fenced && !o->replace) {
		/*
		 * The old holder's last lease runs out before we serve.  Not for
		 * a replacement worker: the supervisor starts one only once its
		 * predecessor is dead (reaped), and a dead process serves nothing.
		 */
		struct timespec ts = { FENCE_LEASE_MS / 1000, (FENCE_LEASE_MS % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	if ((rc = pthread_create(&f->renewer, NULL, renewer_main, f)) != 0) {
		rc = -rc;
		snprintf(err, errlen, "cannot start the lock renewal thread: %s", strerror(-rc));
		goto fail_locked;
	}
	f->running = 1;
	*out = f;
	return 0;
fail_locked:
	rados_unlock(io, FENCE_OBJECT, FENCE_LOCK, f->cookie);
fail:
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cond);
	free(f);
	return rc;
}

int
fence_add_addr(struct fence *f, const char *addr, char *err, size_t errlen)
{
	size_t n = strlen(f->addrs);
	int rc;

	if (n + 1 + strlen(addr) + 1 > sizeof(f->addrs)) {
		snprintf(err, errlen, "too many client addresses to record");
		return -ENAMETOOLONG;
	}
	snprintf(f->addrs + n, sizeof(f->addrs) - n, " %s", addr);
	if ((rc = owner_set(f->io, "addrs", f->addrs)) < 0)
		snprintf(err, errlen, "cannot record client %s as a holder of %s: %s", addr, f->spec,
		    strerror(-rc));
	return rc;
}

int
fence_check(struct fence *f)
{
	if (f->lost)
		return -EIO;
	if ((uint64_t)clock_mono_ns() < f->lease_until)
		return 0;
	struct timespec until;
	int timed_out = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += f->wait_s;
	if (f->wait_hook)
		f->wait_hook(f->wait_arg, 1);
	pthread_mutex_lock(&f->mu);
	while (!f->lost && (uint64_t)clock_mono_ns() >= f->lease_until && !f->stop && !timed_out) {
		if (f->wait_s)
			timed_out = pthread_cond_timedwait(&f->cond, &f->mu, &until) == ETIMEDOUT;
		else
			pthread_cond_wait(&f->cond, &f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	if (f->wait_hook)
		f->wait_hook(f->wait_arg, -1);
	return f->lost || f->stop || timed_out ? -EIO : 0;
}

void
fence_set_wait_hook(struct fence *f, void (*hook)(void *arg, int delta), void *arg)
{
	f->wait_arg = arg;
	f->wait_hook = hook;
}

int
fence_lost(const struct fence *f)
{
	return f->lost;
}

int
fence_long_outage(struct fence *f)
{
	return atomic_exchange(&f->long_outage, 0);
}

uint64_t
fence_renewals(const struct fence *f)
{
	return f->renewals;
}

const char *
fence_state(const struct fence *f)
{
	if (f->lost)
		return "lost";
	return (uint64_t)clock_mono_ns() < f->lease_until ? "held" : "waiting";
}

const char *
fence_store(const struct fence *f)
{
	return f->spec;
}

const char *
fence_holder(const struct fence *f)
{
	return f->holder;
}

void
fence_release(struct fence *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
	if (f->running)
		pthread_join(f->renewer, NULL);
	if (!f->lost) {
		owner_set(f->io, "addrs", "");
		rados_unlock(f->io, FENCE_OBJECT, FENCE_LOCK, f->cookie);
	}
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cond);
	free(f);
}

#else	/* !HAVE_CEPH: no store is ever in a cluster, so no fence exists */

void
fence_set_wait_hook(struct fence *f, void (*hook)(void *arg, int delta), void *arg)
{
}

int
fence_add_addr(struct fence *f, const char *addr, char *err, size_t errlen)
{
	return -ENOTSUP;
}

int
fence_check(struct fence *f)
{
	return 0;
}

int
fence_lost(const struct fence *f)
{
	return 0;
}

int
fence_long_outage(struct fence *f)
{
	return 0;
}

uint64_t
fence_renewals(const struct fence *f)
{
	return 0;
}

const char *
fence_state(const struct fence *f)
{
	return "none";
}

const char *
fence_store(const struct fence *f)
{
	return "";
}

const char *
fence_holder(const struct fence *f)
{
	return "";
}

void
fence_release(struct fence *f)
{
}

#endif
