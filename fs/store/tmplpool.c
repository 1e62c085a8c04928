/*
 * tmplpool: see tmplpool.h for the contract and the objects.
 *
 * Design notes
 *
 * An add reads the file twice: once to learn its content hash and sums
 * (the names of its objects), once to write the objects.  The second pass
 * sums every chunk again and refuses the add if the file changed in
 * between, so the objects always hold what the hash names.  A data object
 * that already exists with its full length was written whole by an earlier
 * add of the same content (rados_write_full replaces an object atomically)
 * and is not written again: an add that died is finished by the next add
 * of that content, and identical templates share their objects.
 *
 * Only the name object is ever created exclusively; content objects may be
 * written by two adds at once, with the same bytes.
 *
 * Leftovers of an add that died are content objects (sums.HEX, data.HEX.*)
 * that no tmpl.* object names; docs/ceph.md says how to list and remove
 * them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <unistd.h>

#include "crc32c.h"
#include "fdio.h"
#include "template.h"
#include "tmplpool.h"

#ifdef HAVE_CEPH

#define TMPLPOOL_NAME_MAGIC	"hcowfs-template 1"

struct tmplpool {
	rados_ioctx_t	 io;
	char		 where[2 * RADOS_NAME_MAX + 8];
	_Atomic uint64_t chunk_reads;
};

/* A RADOS failure as a user reads it: what failed, and the missing caps when that is why. */
static int
pool_fail(struct tmplpool *p, int rc, const char *what, char *err, size_t errlen)
{
	if (rc == -EPERM || rc == -EACCES)
		snprintf(err, errlen, "%s: no permission in %s (the client's caps)", what, p->where);
	else if (rc == -ETIMEDOUT)
		snprintf(err, errlen, "%s: the cluster did not answer in time", what);
	else
		snprintf(err, errlen, "%s in %s: %s", what, p->where, strerror(-rc));
	return rc;
}

int
tmplpool_open(struct cluster *c, const struct rados_spec *sp, struct tmplpool **out,
    char *err, size_t errlen)
{
	struct tmplpool *p = calloc(1, sizeof(*p));
	int rc;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((rc = cluster_ioctx(c, sp, &p->io, err, errlen)) < 0) {
		free(p);
		return rc;
	}
	snprintf(p->where, sizeof(p->where), "rados:%s%s%s", sp->pool, sp->ns[0] ? "/" : "", sp->ns);
	*out = p;
	return 0;
}

void
tmplpool_close(struct tmplpool *p)
{
	if (!p)
		return;
	rados_ioctx_destroy(p->io);
	free(p);
}

const char *
tmplpool_where(const struct tmplpool *p)
{
	return p->where;
}

uint64_t
tmplpool_chunk_reads(struct tmplpool *p)
{
	return atomic_load(&p->chunk_reads);
}

/* Parse a name object's text into e (name already set): 0 or -EINVAL. */
static int
pool_name_parse(const char *text, struct tmplpool_entry *e)
{
	unsigned long long size;
	char hash[SHA256_HEX_LEN + 2];

	if (strncmp(text, TMPLPOOL_NAME_MAGIC "\n", sizeof(TMPLPOOL_NAME_MAGIC)) != 0 ||
	    sscanf(text + sizeof(TMPLPOOL_NAME_MAGIC), "size %llu\nsha256 %65s", &size, hash) != 2 ||
	    strlen(hash) != SHA256_HEX_LEN || strspn(hash, "0123456789abcdef") != SHA256_HEX_LEN)
		return -EINVAL;
	e->size = size;
	memcpy(e->hash, hash, sizeof(e->hash));
	return 0;
}

int
tmplpool_stat(struct tmplpool *p, const char *name, struct tmplpool_entry *e,
    char *err, size_t errlen)
{
	char oid[300], text[256], what[300];
	int rc;

	snprintf(oid, sizeof(oid), "tmpl.%s", name);
	snprintf(what, sizeof(what), "template '%s'", name);
	rc = rados_read(p->io, oid, text, sizeof(text) - 1, 0);
	if (rc == -ENOENT) {
		snprintf(err, errlen, "template '%s' is not in %s", name, p->where);
		return rc;
	}
	if (rc < 0)
		return pool_fail(p, rc, what, err, errlen);
	text[rc] = '\0';
	snprintf(e->name, sizeof(e->name), "%s", name);
	if (pool_name_parse(text, e) < 0) {
		snprintf(err, errlen, "template '%s' in %s: its name object is not one of hcowfs's",
		    name, p->where);
		return -EINVAL;
	}
	return 0;
}

int
tmplpool_sums(struct tmplpool *p, const struct tmplpool_entry *e, uint32_t **sums,
    char *err, size_t errlen)
{
	uint64_t n = TEMPLATE_CHUNKS(e->size);
	size_t len = (size_t)n * 4;
	unsigned char *raw = malloc(len ? len : 1);
	uint32_t *v = malloc((n ? n : 1) * sizeof(*v));
	char oid[80], what[300];
	int rc = 0;

	snprintf(oid, sizeof(oid), "sums.%s", e->hash);
	snprintf(what, sizeof(what), "content sums of template '%s'", e->name);
	if (!raw || !v) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
	} else if (len && (rc = rados_read(p->io, oid, (char *)raw, len, 0)) >= 0 &&
	    (size_t)rc != len) {
		snprintf(err, errlen, "%s in %s: %d bytes, expected %zu", what, p->where, rc, len);
		rc = -EIO;
	} else if (rc < 0) {
		pool_fail(p, rc, what, err, errlen);
	}
	if (rc >= 0) {
		for (uint64_t i = 0; i < n; i++)
			v[i] = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
			    (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
		*sums = v;
		v = NULL;
		rc = 0;
	}
	free(raw);
	free(v);
	return rc;
}

int
tmplpool_read_chunk(struct tmplpool *p, const char *hash, uint64_t size, uint64_t i, void *buf)
{
	uint64_t off = i * TEMPLATE_CHUNK, want;
	char oid[96];
	int rc;

	if (off >= size)
		return -EINVAL;
	want = size - off < TEMPLATE_CHUNK ? size - off : TEMPLATE_CHUNK;
	snprintf(oid, sizeof(oid), "data.%s.%08" PRIx64, hash, off / TMPLPOOL_OBJECT);
	atomic_fetch_add(&p->chunk_reads, 1);
	rc = rados_read(p->io, oid, buf, (size_t)want, off % TMPLPOOL_OBJECT);
	if (rc >= 0 && (uint64_t)rc != want)
		return -EIO;	/* a content object shorter than its name says */
	return rc < 0 ? rc : (int)want;
}

/* Pass 1 of an add: the content hash and sums of fd's size bytes. */
static int
pool_add_hash(int fd, uint64_t size, char *buf, char hash[SHA256_HEX_LEN + 1], uint32_t *sums)
{
	struct sha256 s;

	sha256_init(&s);
	for (uint64_t off = 0, i = 0; off < size; off += TEMPLATE_CHUNK, i++) {
		size_t want = size - off < TEMPLATE_CHUNK ? (size_t)(size - off) : TEMPLATE_CHUNK;
		ssize_t got = fd_pread_upto(fd, buf, want, off);
		if (got < 0)
			return (int)got;
		if ((size_t)got != want)
			return -ESTALE;	/* shrank while read */
		sha256_update(&s, buf, want);
		sums[i] = crc32c(0, buf, want);
	}
	sha256_final_hex(&s, hash);
	return 0;
}

/* Pass 2: write data object k (absent or short), its chunks checked against sums. */
static int
pool_add_object(struct tmplpool *p, int fd, uint64_t size, const char *hash, uint64_t k,
    const uint32_t *sums, char *buf)
{
	uint64_t off = k * TMPLPOOL_OBJECT;
	uint64_t len = size - off < TMPLPOOL_OBJECT ? size - off : TMPLPOOL_OBJECT, have;
	char oid[96];
	time_t mtime;
	ssize_t got;

	snprintf(oid, sizeof(oid), "data.%s.%08" PRIx64, hash, k);
	if (rados_stat(p->io, oid, &have, &mtime) == 0 && have == len)
		return 0;	/* written whole by an earlier add of this content */
	if ((got = fd_pread_upto(fd, buf, len, off)) < 0)
		return (int)got;
	if ((uint64_t)got != len)
		return -ESTALE;
	for (uint64_t c = 0; c < len; c += TEMPLATE_CHUNK) {
		size_t n = len - c < TEMPLATE_CHUNK ? (size_t)(len - c) : TEMPLATE_CHUNK;
		if (crc32c(0, buf + c, n) != sums[(off + c) / TEMPLATE_CHUNK])
			return -ESTALE;
	}
	return rados_write_full(p->io, oid, buf, len);
}

/* Write the sums object, then create the name exclusively: the add becomes visible. */
static int
pool_add_publish(struct tmplpool *p, const char *name, uint64_t size, const char *hash,
    const uint32_t *sums, char *err, size_t errlen)
{
	uint64_t n = TEMPLATE_CHUNKS(size);
	unsigned char *raw = malloc(n ? n * 4 : 1);
	char oid[300], text[256];
	rados_write_op_t op;
	int rc, len;

	if (!raw) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < n; i++)
		for (int b = 0; b < 4; b++)
			raw[4 * i + (uint64_t)b] = (unsigned char)(sums[i] >> (8 * b));
	snprintf(oid, sizeof(oid), "sums.%s", hash);
	rc = rados_write_full(p->io, oid, (const char *)raw, (size_t)(n * 4));
	free(raw);
	if (rc < 0)
		return pool_fail(p, rc, "cannot write the content sums", err, errlen);
	len = snprintf(text, sizeof(text), TMPLPOOL_NAME_MAGIC "\nsize %" PRIu64 "\nsha256 %s\n",
	    size, hash);
	snprintf(oid, sizeof(oid), "tmpl.%s", name);
	op = rados_create_write_op();
	rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_write_full(op, text, (size_t)len);
	rc = rados_write_op_operate(op, p->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (rc == -EEXIST)
		snprintf(err, errlen, "template '%s' already exists in %s", name, p->where);
	else if (rc < 0)
		pool_fail(p, rc, "cannot publish the template", err, errlen);
	return rc;
}

int
tmplpool_add(struct tmplpool *p, int fd, const char *name,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    char *err, size_t errlen)
{
	struct tmplpool_entry e;
	char hash[SHA256_HEX_LEN + 1];
	uint32_t *sums = NULL;
	char *buf = NULL;
	uint64_t size, nobj;
	off_t end;
	int rc;

	if ((rc = tmplpool_stat(p, name, &e, err, errlen)) == 0) {
		snprintf(err, errlen, "template '%s' already exists in %s", name, p->where);
		return -EEXIST;
	}
	if (rc != -ENOENT)
		return rc;
	if ((end = lseek(fd, 0, SEEK_END)) < 0) {
		snprintf(err, errlen, "cannot size the file: %s", strerror(errno));
		return -errno;
	}
	size = (uint64_t)end;
	nobj = (size + TMPLPOOL_OBJECT - 1) / TMPLPOOL_OBJECT;
	sums = malloc((TEMPLATE_CHUNKS(size) ? TEMPLATE_CHUNKS(size) : 1) * sizeof(*sums));
	buf = malloc(TMPLPOOL_OBJECT);
	if (!sums || !buf) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = pool_add_hash(fd, size, buf, hash, sums)) < 0) {
		snprintf(err, errlen, "cannot read the file: %s",
		    rc == -ESTALE ? "it changed while being read" : strerror(-rc));
		goto out;
	}
	for (uint64_t k = 0; k < nobj; k++) {
		if (progress)
			progress(arg, k * TMPLPOOL_OBJECT, size);
		if ((rc = pool_add_object(p, fd, size, hash, k, sums, buf)) == -ESTALE) {
			snprintf(err, errlen, "the file changed while being added");
			goto out;
		} else if (rc < 0) {
			pool_fail(p, rc, "cannot write the template's data", err, errlen);
			goto out;
		}
	}
	if (progress)
		progress(arg, size, size);
	rc = pool_add_publish(p, name, size, hash, sums, err, errlen);
out:
	free(sums);
	free(buf);
	return rc;
}

int
tmplpool_each(struct tmplpool *p, int (*each)(const struct tmplpool_entry *e, void *arg),
    void *arg, char *err, size_t errlen)
{
	rados_list_ctx_t ls;
	const char *oid;
	int rc;

	if ((rc = rados_nobjects_list_open(p->io, &ls)) < 0)
		return pool_fail(p, rc, "cannot list the templates", err, errlen);
	while ((rc = rados_nobjects_list_next(ls, &oid, NULL, NULL)) == 0) {
		struct tmplpool_entry e;
		if (strncmp(oid, "tmpl.", 5) != 0)
			continue;
		if ((rc = tmplpool_stat(p, oid + 5, &e, err, errlen)) == -ENOENT)
			continue;	/* not there any more */
		if (rc < 0 || (rc = each(&e, arg)) != 0)
			break;
	}
	rados_nobjects_list_close(ls);
	if (rc == -ENOENT)
		rc = 0;		/* the end of the list */
	else if (rc < 0 && !err[0])
		pool_fail(p, rc, "cannot list the templates", err, errlen);
	return rc;
}

#else	/* !HAVE_CEPH: cluster_connect fails first; nothing here is reached */

struct tmplpool {
	int	unused;
};

int
tmplpool_open(struct cluster *c, const struct rados_spec *sp, struct tmplpool **out,
    char *err, size_t errlen)
{
	snprintf(err, errlen, "this hcowfs was built without Ceph");
	return -ENOTSUP;
}

void tmplpool_close(struct tmplpool *p) { }
const char *tmplpool_where(const struct tmplpool *p) { return ""; }
uint64_t tmplpool_chunk_reads(struct tmplpool *p) { return 0; }
int tmplpool_stat(struct tmplpool *p, const char *name, struct tmplpool_entry *e,
    char *err, size_t errlen) { return -ENOTSUP; }
int tmplpool_sums(struct tmplpool *p, const struct tmplpool_entry *e, uint32_t **sums,
    char *err, size_t errlen) { return -ENOTSUP; }
int tmplpool_read_chunk(struct tmplpool *p, const char *hash, uint64_t size, uint64_t i,
    void *buf) { return -ENOTSUP; }
int tmplpool_add(struct tmplpool *p, int fd, const char *name,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    char *err, size_t errlen) { return -ENOTSUP; }
int tmplpool_each(struct tmplpool *p, int (*each)(const struct tmplpool_entry *e, void *arg),
    void *arg, char *err, size_t errlen) { return -ENOTSUP; }

#endif
