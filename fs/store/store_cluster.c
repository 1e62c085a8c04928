/*
 * store_cluster: opening a store that lives in a cluster (rados:POOL/STORE).
 *
 * Design notes
 *
 * The store's durable home is RADOS: its catalog (libcephsqlite,
 * catalog_ceph.c), its log segments and index (the RADOS medium).  The data
 * dir given to store_open is this host's cache of it: segment files and the
 * index as a local store has them, so reads and the page cache work as
 * they do locally, plus the mount's own files (lock, hcowfs.log).
 *
 * The log and the index reach RADOS through the RADOS medium (media.h),
 * which this opens on the store's I/O context.
 *
 * Before anything of the store is read, this host becomes its one server
 * (fence.c): lock, or fence the holder and take over; the catalog client's
 * address is recorded with the worker's so a later takeover fences both.
 * Only then is the catalog opened.  Whether the store exists is whether its
 * catalog does (the catalog is created last, as in a local store).
 *
 * Error convention: 0 or a negative errno, with a message in err.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "fence.h"
#include "hlog.h"
#include "media.h"
#include "radosspec.h"
#include "store_int.h"
#include "store_cluster.h"

int
store_cluster_health(struct store *st, struct store_cluster_health *out)
{
	if (!st->fence)
		return -ENOENT;
	snprintf(out->store, sizeof(out->store), "%s", fence_store(st->fence));
	snprintf(out->holder, sizeof(out->holder), "%s", fence_holder(st->fence));
	out->lease = fence_state(st->fence);
	return 0;
}

void
store_cluster_heal(struct store *st)
{
	char err[512];
	int rc;

	int outage;

	if (!st->fence || fence_lost(st->fence))
		return;	/* local, or another host has the store: nothing to heal */
	outage = fence_long_outage(st->fence);
	if (!outage && !catalog_broken(st->cat))
		return;
	pthread_mutex_lock(&st->cat_lock);
	if (outage || catalog_broken(st->cat)) {
		if ((rc = catalog_reconnect(st->cat, err, sizeof(err))) == 0)
			hlog(HLOG_WARN, "%s: the catalog is open again (%s)", fence_store(st->fence),
			    outage ? "after a long outage its lock may have expired" :
			    "it failed: its lock expired while the cluster was away");
		else
			hlog(HLOG_ERROR, "%s: %s", fence_store(st->fence), err);
	}
	pthread_mutex_unlock(&st->cat_lock);
}

void
store_set_cluster_wait_hook(struct store *st, void (*hook)(void *arg, int delta), void *arg)
{
	if (st->fence)
		fence_set_wait_hook(st->fence, hook, arg);
	media_set_wait_hook(st->media, hook, arg);
}

#ifdef HAVE_CEPH

int
store_cluster_join(struct store *st, const struct store_opts *o, int *trust_cache,
    char *catpath, size_t catlen, int *exists, char *err, size_t errlen)
{
	struct rados_spec sp;
	struct fence_opts fo = { 0 };
	char addr[128];
	const char *why;
	rados_ioctx_t io;
	uint64_t size;
	time_t mtime;
	int rc;

	if (!o->cluster) {
		snprintf(err, errlen, "%s: no connection to a cluster", o->store_spec);
		return -EINVAL;
	}
	if ((rc = rados_spec_parse(o->store_spec, 1, &sp, &why)) < 0) {
		snprintf(err, errlen, "data dir %s: %s", o->store_spec, why);
		return rc;
	}
	if ((rc = cluster_ioctx(o->cluster, &sp, &io, err, errlen)) < 0)
		return rc;
	st->cio = io;
	if ((rc = catalog_cluster_init(o->cluster, addr, sizeof(addr), err, errlen)) < 0)
		return rc;
	fo.cachedir = o->datadir;
	fo.holder = o->holder ? o->holder : "unknown";
	fo.takeover = o->store_takeover;
	fo.replace = o->takeover;
	fo.spec = o->store_spec;
	fo.also_object = CATALOG_CLUSTER_OBJECT;
	fo.also_lock = CATALOG_CLUSTER_LOCK;
	if ((rc = fence_acquire(o->cluster, io, &fo, &st->fence, trust_cache, err, errlen)) < 0)
		return rc;
	if ((rc = fence_add_addr(st->fence, addr, err, errlen)) < 0)
		return rc;
	if ((rc = media_rados_open(io, &st->media)) < 0) {
		snprintf(err, errlen, "%s: cannot set up its log's medium: %s", o->store_spec,
		    strerror(-rc));
		return rc;
	}
	rc = rados_stat(io, CATALOG_CLUSTER_OBJECT, &size, &mtime);
	if (rc < 0 && rc != -ENOENT) {
		snprintf(err, errlen, "%s: cannot look for the catalog: %s", o->store_spec, strerror(-rc));
		return rc;
	}
	*exists = rc == 0 && size > 0;
	catalog_cluster_path(&sp, catpath, catlen);
	hlog(HLOG_INFO, "%s: this host serves the store (local cache %s, %s)", o->store_spec,
	    o->datadir, *trust_cache ? "kept" : "stale or new: refilled from the cluster");
	return 0;
}

void
store_cluster_leave(struct store *st)
{
	fence_release(st->fence);
	st->fence = NULL;
	if (st->cio)
		rados_ioctx_destroy(st->cio);
	st->cio = NULL;
}

#else

int
store_cluster_join(struct store *st, const struct store_opts *o, int *trust_cache,
    char *catpath, size_t catlen, int *exists, char *err, size_t errlen)
{
	snprintf(err, errlen, "data dir %s: this hcowfs was built without Ceph", o->store_spec);
	return -ENOTSUP;
}

void
store_cluster_leave(struct store *st)
{
}

#endif
