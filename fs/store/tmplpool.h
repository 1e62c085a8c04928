/*
 * tmplpool: templates kept in a Ceph pool (a template dir written
 * "rados:POOL[/NAMESPACE]"), read by hosts through their template cache
 * (tcache.h).
 *
 * A template in a pool is immutable once added: a name, a size, the
 * SHA-256 of its bytes ("the content hash", computed as it goes in) and the
 * crc32c of every TEMPLATE_CHUNK bytes ("the content sums"), with which a
 * cache verifies each chunk it fetches or finds on its disk.  Objects, in
 * the namespace:
 *
 *   tmpl.NAME          the name: "hcowfs-template 1\nsize N\nsha256 HEX\n"
 *   sums.HEX           the content sums, little-endian, one per chunk
 *   data.HEX.NNNNNNNN  bytes [N * 4 MiB, +4 MiB) of the content
 *
 * Data and sums are named by the content, so they are written first and
 * the name last, created exclusively in one RADOS operation: a name is
 * never visible before its bytes, and an add of a name that exists changes
 * nothing.  An add that dies leaves only content objects no name refers
 * to; adding the same content again (under any name) finds and reuses them.
 *
 * Error convention: 0 or a negative errno, with a one-line message in err.
 */
#ifndef HCOWFS_TMPLPOOL_H
#define HCOWFS_TMPLPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "sha256.h"

#define TMPLPOOL_OBJECT		(UINT64_C(4) << 20)	/* bytes of one data object */
#define TMPLPOOL_FP_PREFIX	"sha256:"		/* a pool template's catalog fingerprint */

struct tmplpool;

struct tmplpool_entry {
	char	 name[256];
	uint64_t size;
	char	 hash[SHA256_HEX_LEN + 1];
};

/* Open the templates of the pool and namespace sp names (connection c stays the caller's). */
int tmplpool_open(struct cluster *c, const struct rados_spec *sp, struct tmplpool **out,
    char *err, size_t errlen);
void tmplpool_close(struct tmplpool *p);

/* "rados:POOL[/NS]", as the user wrote it. */
const char *tmplpool_where(const struct tmplpool *p);

/* Template name: -ENOENT "template 'x' is not in rados:P". */
int tmplpool_stat(struct tmplpool *p, const char *name, struct tmplpool_entry *e,
    char *err, size_t errlen);

/* The content sums of e (*sums malloc'ed, TEMPLATE_CHUNKS(e->size) of them). */
int tmplpool_sums(struct tmplpool *p, const struct tmplpool_entry *e, uint32_t **sums,
    char *err, size_t errlen);

/*
 * Read chunk i of the content hash (size bytes) into buf (TEMPLATE_CHUNK
 * bytes): the chunk's length (shorter for the last chunk) or -errno.
 */
int tmplpool_read_chunk(struct tmplpool *p, const char *hash, uint64_t size, uint64_t i,
    void *buf);

/* Chunks read from RADOS since open (what a warm cache saves). */
uint64_t tmplpool_chunk_reads(struct tmplpool *p);

/*
 * Add the content of fd (a regular file) as template name.  progress(arg,
 * done, total) is called as bytes go in (NULL: silent).  -EEXIST if the
 * name is taken (then nothing changed).
 */
int tmplpool_add(struct tmplpool *p, int fd, const char *name,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    char *err, size_t errlen);

/* Call each(e, arg) for every template, in no particular order; stops at a non-zero return. */
int tmplpool_each(struct tmplpool *p, int (*each)(const struct tmplpool_entry *e, void *arg),
    void *arg, char *err, size_t errlen);

#endif
