/*
 * fence: who may serve a store in a cluster, and the proof that it still may.
 *
 * One host serves a store at a time.  Its worker holds an exclusive RADOS
 * lock on the store's `owner` object (FENCE_LOCK); the object's xattrs say
 * who holds it, for people ("holder": host, mount point, supervisor pid) and
 * for fencing ("addrs": every RADOS client address the holder writes with:
 * the worker's own and its catalog's, which libcephsqlite opens as a second
 * client).  Another mount is refused, naming the holder.
 *
 * Taking over (the user's `-o takeover`, a replacement worker of the same
 * mount, which cannot prove its predecessor dead, or a new mount of the
 * cache dir the holder used, which can: below): every address of the
 * holder is blocklisted (rados_blocklist_add), this client waits for the
 * OSD map that says so, and only then breaks the lock and takes it.  From
 * then on every RADOS operation of the old holder fails, on every object.
 *
 * Reads need more than that: a host that was stopped (SIGSTOP, a VM pause, a
 * partition) could serve stale bytes from its local cache without asking
 * RADOS anything.  So the lock is also a lease.  A thread renews it every
 * FENCE_RENEW_MS; I/O is served only while the last renewal that succeeded
 * was sent less than FENCE_LEASE_MS ago (monotonic clock), waits while the
 * cluster cannot be reached, and fails with EIO for good once a renewal
 * says the lock is gone or this client is blocklisted.  A host that takes
 * over waits FENCE_LEASE_MS after the blocklist before it serves, so the
 * old holder's last lease has run out by then (a replacement worker does
 * not: the supervisor reaped its predecessor, and a dead process serves
 * nothing).
 *
 * The local data dir is a cache of the store (media_rados.c).  It may be
 * trusted only if nobody else served the store since this dir last did: the
 * owner object's "cache" xattr and the dir's FENCE_CACHE_FILE both hold
 * "CACHE_ID GENERATION"; each acquisition bumps the generation (object
 * first), so a cache whose pair differs is stale and is thrown away.
 * A pair that agrees also says the holder was a mount of this dir; the
 * mount now holds the dir's lock, so that mount's processes are all dead
 * (the mount after a crash of every process of this host's): it takes the
 * store over without -o takeover, fencing and waiting out the lease all
 * the same.  Another dir, or a host that has lost its cache, needs the flag.
 *
 * Error convention: 0 or a negative errno, with a message in err.
 */
#ifndef HCOWFS_FENCE_H
#define HCOWFS_FENCE_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

#define FENCE_OBJECT		"owner"
#define FENCE_LOCK		"hcowfs.owner"
#define FENCE_RENEW_MS		1000
#define FENCE_LEASE_MS		5000
#define FENCE_CACHE_FILE	"cluster-cache"
#define FENCE_OUTAGE_LONG_MS	20000	/* past this the catalog's own lock may be gone (30 s) */

struct fence;

struct fence_opts {
	const char	*cachedir;	/* the local data dir (a cache of the store) */
	const char	*holder;	/* "HOST MOUNTPOINT PID": who we are, for messages */
	int		 takeover;	/* fence whoever holds the store */
	int		 replace;	/* a replacement worker: fence the holder if it is our
					   own mount (same holder string) */
	const char	*spec;		/* "rados:POOL/STORE", for messages */
	const char	*also_object;	/* after fencing, break every lock also_lock on this */
	const char	*also_lock;	/* object (the catalog's: its old client is gone) */
};

#ifdef HAVE_CEPH
/*
 * Become the store's one server, as described above.  *trust_cache: 1 if the
 * local data dir may be used as it is, 0 if it must be discarded.  -EBUSY
 * (naming the holder) if another host holds the store and o->takeover is 0.
 */
int fence_acquire(struct cluster *c, rados_ioctx_t io, const struct fence_opts *o,
    struct fence **out, int *trust_cache, char *err, size_t errlen);
#endif

/*
 * Record another client address this server writes with (the catalog's), so
 * that a takeover fences it too.  Call before that client writes.
 */
int fence_add_addr(struct fence *f, const char *addr, char *err, size_t errlen);

/*
 * May I/O be served now?  0 while the lease holds (a clock read); waits
 * while the cluster cannot be reached (at most the connection's
 * op_timeout_s, if it has one: then -EIO); -EIO once this server is fenced.
 */
int fence_check(struct fence *f);

/* Called with +1 when a request starts waiting in fence_check, -1 when it ends. */
void fence_set_wait_hook(struct fence *f, void (*hook)(void *arg, int delta), void *arg);

/*
 * Did the lease come back after an outage longer than FENCE_OUTAGE_LONG_MS
 * since the last call?  (libcephsqlite's lock on the catalog may have
 * expired meanwhile: store_cluster_heal reopens it.)
 */
int fence_long_outage(struct fence *f);

/* Is this server fenced for good?  For status. */
int fence_lost(const struct fence *f);

/* Lock renewals sent so far (one every FENCE_RENEW_MS): for tests. */
uint64_t fence_renewals(const struct fence *f);

/*
 * For status: the lease's state ("held", "waiting": the cluster cannot be
 * reached, "lost": another host took over), the store and our holder string.
 */
const char *fence_state(const struct fence *f);
const char *fence_store(const struct fence *f);
const char *fence_holder(const struct fence *f);

/* Stop renewing and give the lock back (a clean unmount); NULL is fine. */
void fence_release(struct fence *f);

#endif
