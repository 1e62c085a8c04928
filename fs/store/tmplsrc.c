/*
 * tmplsrc: templates kept in a pool (a template dir "rados:POOL[/NS]"),
 * as the store's disks and .templates read them: through the host's
 * template cache (tcache.c), never from the pool on a cache hit.
 *
 * Design notes
 *
 * A pool template is immutable and named by its content, so a version is
 * its content hash: the catalog's templates row has the name, the size and
 * the fingerprint "sha256:HEX" (mtime, inode, birth time and handle 0), and
 * the content sums are the pool's, recorded in the catalog at the first
 * clone so that a remount needs no round trip to the cluster.  No lease, no
 * fstat, no verifier pass: the cache checks each chunk against its sum
 * before an open first serves it (tcache.h).  A name later bound to other
 * content (impossible through hcowctl: names are never replaced) would be a
 * new version, and disks cloned from the old one keep reading the old one.
 *
 * Owns st->tpool and st->tcache; the struct tmpl of each pool template
 * holds its tcache_file (t->cached, t->fd -1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlog.h"
#include "radosspec.h"
#include "store_int.h"
#include "tcache.h"
#include "template.h"
#include "tmplpool.h"

int
tmpls_pool_open(struct store *st, const struct store_opts *o, char *err, size_t errlen)
{
	struct rados_spec sp;
	const char *why;
	int rc;

	if (rados_spec_parse(st->tmpldir, 0, &sp, &why) < 0) {
		snprintf(err, errlen, "template dir '%s': %s", st->tmpldir, why);
		return -EINVAL;
	}
	if (!o->cluster) {
		snprintf(err, errlen, "template dir '%s': not connected to a ceph cluster", st->tmpldir);
		return -EINVAL;
	}
	if (!o->template_cache || !o->template_cache[0]) {
		snprintf(err, errlen, "template dir '%s' needs a template cache (-o template_cache=DIR)",
		    st->tmpldir);
		return -EINVAL;
	}
	if ((rc = tmplpool_open(o->cluster, &sp, &st->tpool, err, errlen)) < 0)
		return rc;
	if ((rc = tcache_open(o->template_cache, o->template_cache_size, &st->tcache, err,
	    errlen)) < 0) {
		tmplpool_close(st->tpool);
		st->tpool = NULL;
	}
	return rc;
}

void
tmpls_pool_close(struct store *st)
{
	tcache_close(st->tcache);
	tmplpool_close(st->tpool);
	st->tcache = NULL;
	st->tpool = NULL;
}

int
tmpl_rec_in_pool(const struct catalog_template *rec)
{
	return strncmp(rec->fingerprint, TMPLPOOL_FP_PREFIX, strlen(TMPLPOOL_FP_PREFIX)) == 0;
}

int
tmpl_pool_probe(struct store *st, const char *name, struct catalog_template *rec,
    uint32_t **sums, char *err, size_t errlen)
{
	struct tmplpool_entry e;
	int rc;

	if ((rc = tmplpool_stat(st->tpool, name, &e, err, errlen)) < 0 ||
	    (rc = tmplpool_sums(st->tpool, &e, sums, err, errlen)) < 0)
		return rc;
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	rec->size = e.size;
	snprintf(rec->fingerprint, sizeof(rec->fingerprint), TMPLPOOL_FP_PREFIX "%s", e.hash);
	return 0;
}

int
tmpl_pool_attach(struct store *st, struct tmpl *t, const uint32_t *sums, char *err,
    size_t errlen)
{
	const char *hash = t->rec.fingerprint + strlen(TMPLPOOL_FP_PREFIX);
	uint64_t n = TEMPLATE_CHUNKS(t->rec.size);
	uint32_t *owned = NULL;
	int rc;

	if (!st->tcache) {
		snprintf(err, errlen, "template '%s' is in a pool, and the template dir is not one",
		    t->rec.name);
		return -ENOENT;
	}
	if (!sums) {
		uint64_t have = 0;
		if ((rc = catalog_template_sums(st->cat, t->rec.id, &owned, &have)) < 0 || have != n) {
			/* not recorded (a crash after the row): the pool has them */
			struct catalog_template rec;
			free(owned);
			owned = NULL;
			if ((rc = tmpl_pool_probe(st, t->rec.name, &rec, &owned, err, errlen)) < 0)
				return rc;
			if (strcmp(rec.fingerprint, t->rec.fingerprint) != 0 || rec.size != t->rec.size) {
				free(owned);
				snprintf(err, errlen, "template '%s' in %s is not the version its disks "
				    "were cloned from", t->rec.name, tmplpool_where(st->tpool));
				return -ESTALE;
			}
		}
		sums = owned;
	}
	rc = tcache_file_open(st->tcache, st->tpool, hash, t->rec.size, sums, &t->cached);
	if (rc < 0)
		snprintf(err, errlen, "template '%s': %s", t->rec.name, strerror(-rc));
	free(owned);
	return rc;
}

struct tmpl *
tmpl_pool_named(struct store *st, const char *name)
{
	for (size_t i = 0; i < st->ntmpls; i++)
		if (st->tmpls[i]->cached && strcmp(st->tmpls[i]->rec.name, name) == 0)
			return st->tmpls[i];
	return NULL;
}

struct pool_names {
	char	**v;
	size_t	 n, cap;
};

/* Collect a template's name (tmplpool_each callback). */
static int
pool_names_add(const struct tmplpool_entry *e, void *arg)
{
	struct pool_names *pn = arg;

	if (pn->n == pn->cap) {
		char **v = realloc(pn->v, (pn->cap = pn->cap ? 2 * pn->cap : 16) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		pn->v = v;
	}
	if (!(pn->v[pn->n] = strdup(e->name)))
		return -ENOMEM;
	pn->n++;
	return 0;
}

static int
pool_names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
tmpl_pool_at(struct store *st, size_t i, char *name, size_t len)
{
	struct pool_names pn = { 0 };
	char err[256] = "";
	int rc;

	if ((rc = tmplpool_each(st->tpool, pool_names_add, &pn, err, sizeof(err))) < 0)
		hlog(HLOG_WARN, "listing the templates: %s", err[0] ? err : strerror(-rc));
	qsort(pn.v, pn.n, sizeof(*pn.v), pool_names_cmp);
	rc = i < pn.n ? 0 : -ENOENT;
	if (rc == 0)
		snprintf(name, len, "%s", pn.v[i]);
	for (size_t k = 0; k < pn.n; k++)
		free(pn.v[k]);
	free(pn.v);
	return rc;
}
