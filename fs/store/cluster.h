/*
 * cluster: one connection to a Ceph cluster (librados), for the engine's
 * parts that keep bytes there: templates in a pool (hcowctl template, the
 * template cache) and stores in a pool.
 *
 * A connection is made from a ceph.conf (NULL: Ceph's default search,
 * CEPH_CONF, /etc/ceph/ceph.conf) and a client name (NULL: "admin", Ceph's
 * default), and gives up after connect_timeout_s seconds with one line
 * saying why: an unreachable cluster at mount is an error, never a hang.
 * op_timeout_s 0 lets an operation wait for the cluster as long as it takes
 * (I/O stalls while the cluster is away and resumes when it returns);
 * otherwise an operation fails with -ETIMEDOUT after that many seconds.
 *
 * Built only with Ceph (configure finds librados: HAVE_CEPH); without it
 * every function here fails with -ENOTSUP and says so.
 *
 * Error convention: 0 or a negative errno, with a message in err.
 */
#ifndef HCOWFS_CLUSTER_H
#define HCOWFS_CLUSTER_H

#include <stddef.h>

#include "radosspec.h"

#define CLUSTER_CONNECT_TIMEOUT_S	10

struct cluster;

struct cluster_opts {
	const char	*conf;			/* ceph.conf, NULL = Ceph's default */
	const char	*id;			/* client name without "client.", NULL = admin */
	unsigned	 connect_timeout_s;	/* 0 = CLUSTER_CONNECT_TIMEOUT_S */
	unsigned	 op_timeout_s;		/* 0 = wait for the cluster */
};

/* Connect: *out on success. */
int cluster_connect(const struct cluster_opts *o, struct cluster **out, char *err, size_t errlen);

/* The connection's op_timeout_s: how long a request may wait for the cluster (0: no bound). */
unsigned cluster_op_timeout(const struct cluster *c);

/* Disconnect and free (NULL is fine). */
void cluster_close(struct cluster *c);

#ifdef HAVE_CEPH
#include <rados/librados.h>

/* The librados handle, for modules that speak RADOS. */
rados_t cluster_rados(struct cluster *c);

/*
 * An I/O context on sp's pool and namespace: -ENOENT "pool P does not
 * exist" if it does not.
 */
int cluster_ioctx(struct cluster *c, const struct rados_spec *sp, rados_ioctx_t *out,
    char *err, size_t errlen);
#endif

#endif
