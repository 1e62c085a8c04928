/*
 * store_cluster: a store in a cluster, as store_open sees it (see the
 * design notes in store_cluster.c and docs/ceph.md).
 *
 * Error convention: 0 or a negative errno, with a message in err.
 */
#ifndef HCOWFS_STORE_CLUSTER_H
#define HCOWFS_STORE_CLUSTER_H

#include <stddef.h>

struct store;
struct store_opts;

/*
 * Make this host the store's one server (fence.h) and say where its
 * catalog is: the path for catalog_open in catpath, *exists whether the
 * store has been created, *trust_cache whether the data dir (this host's
 * cache of it) may be used as it is.  Sets st->fence and st->cio.
 */
int store_cluster_join(struct store *st, const struct store_opts *o, int *trust_cache,
    char *catpath, size_t catlen, int *exists, char *err, size_t errlen);

/*
 * After a long outage (fence_long_outage), or once the catalog failed with
 * an I/O error (catalog_broken): open it again, under cat_lock, while the
 * fence says this host still serves the store.  Nothing otherwise.
 */
void store_cluster_heal(struct store *st);

/* Give the store back (a clean close) and drop the I/O context. */
void store_cluster_leave(struct store *st);

#endif
