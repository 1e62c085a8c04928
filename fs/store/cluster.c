/*
 * cluster: see cluster.h for the contract.
 *
 * Design notes
 *
 * Timeouts are librados options: client_mount_timeout bounds the connect
 * (monitor handshake and first maps), rados_osd_op_timeout and
 * rados_mon_op_timeout bound each later operation when the user asked for
 * failure over waiting.  Nothing else is set here: a user's ceph.conf
 * (addresses, auth, messenger) is taken as it is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#ifdef HAVE_CEPH

struct cluster {
	rados_t		r;
	unsigned	op_timeout_s;
};

/* Set one librados option, or say which one was refused. */
static int
cluster_set(rados_t r, const char *opt, const char *val, char *err, size_t errlen)
{
	int rc = rados_conf_set(r, opt, val);
	if (rc < 0)
		snprintf(err, errlen, "ceph option %s=%s: %s", opt, val, strerror(-rc));
	return rc;
}

int
cluster_connect(const struct cluster_opts *o, struct cluster **out, char *err, size_t errlen)
{
	struct cluster *c;
	char num[32];
	unsigned ct = o->connect_timeout_s ? o->connect_timeout_s : CLUSTER_CONNECT_TIMEOUT_S;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = rados_create(&c->r, o->id && o->id[0] ? o->id : NULL);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create a ceph client%s%s: %s", o->id ? " " : "",
		    o->id ? o->id : "", strerror(-rc));
		free(c);
		return rc;
	}
	rc = rados_conf_read_file(c->r, o->conf && o->conf[0] ? o->conf : NULL);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read ceph config %s: %s",
		    o->conf && o->conf[0] ? o->conf : "(default search: CEPH_CONF, /etc/ceph/ceph.conf)",
		    strerror(-rc));
		goto fail;
	}
	rados_conf_parse_env(c->r, NULL);
	snprintf(num, sizeof(num), "%u", ct);
	if ((rc = cluster_set(c->r, "client_mount_timeout", num, err, errlen)) < 0)
		goto fail;
	if (o->op_timeout_s) {
		snprintf(num, sizeof(num), "%u", o->op_timeout_s);
		if ((rc = cluster_set(c->r, "rados_osd_op_timeout", num, err, errlen)) < 0 ||
		    (rc = cluster_set(c->r, "rados_mon_op_timeout", num, err, errlen)) < 0)
			goto fail;
	}
	rc = rados_connect(c->r);
	if (rc < 0) {
		snprintf(err, errlen, "cannot connect to the ceph cluster%s%s (within %u s): %s",
		    o->conf && o->conf[0] ? " of " : "", o->conf && o->conf[0] ? o->conf : "", ct,
		    rc == -ETIMEDOUT ? "no monitor answered" : strerror(-rc));
		goto fail;
	}
	c->op_timeout_s = o->op_timeout_s;
	*out = c;
	return 0;
fail:
	rados_shutdown(c->r);
	free(c);
	return rc;
}

void
cluster_close(struct cluster *c)
{
	if (!c)
		return;
	rados_shutdown(c->r);
	free(c);
}

unsigned
cluster_op_timeout(const struct cluster *c)
{
	return c->op_timeout_s;
}

rados_t
cluster_rados(struct cluster *c)
{
	return c->r;
}

int
cluster_ioctx(struct cluster *c, const struct rados_spec *sp, rados_ioctx_t *out,
    char *err, size_t errlen)
{
	int rc = rados_ioctx_create(c->r, sp->pool, out);
	if (rc < 0) {
		snprintf(err, errlen, rc == -ENOENT ? "pool %s does not exist" : "pool %s: %s",
		    sp->pool, strerror(-rc));
		return rc;
	}
	rados_ioctx_set_namespace(*out, sp->ns);
	return 0;
}

#else	/* !HAVE_CEPH */

struct cluster {
	int	unused;
};

int
cluster_connect(const struct cluster_opts *o, struct cluster **out, char *err, size_t errlen)
{
	snprintf(err, errlen, "this hcowfs was built without Ceph (configure found no librados-dev)");
	return -ENOTSUP;
}

void
cluster_close(struct cluster *c)
{
}

unsigned
cluster_op_timeout(const struct cluster *c)
{
	return 0;
}

#endif
