/*
 * template: the read-only template images in the template dir.
 *
 * A template version is identified by name, size, mtime, inode number,
 * birth time and file handle (where the file system gives them: statx,
 * name_to_handle_at), a content fingerprint (crc32c of TEMPLATE_SAMPLES
 * blocks spread over the file, ~1 MiB of reads whatever the size), and,
 * once a full read has made them, the crc32c of every TEMPLATE_CHUNK bytes
 * (the content sums, kept in the catalog; tmplwatch.c computes and checks
 * them in the background and before a chunk is first served).  A disk
 * records the version it was cloned from; if the file later differs in any
 * of these, the disk refuses I/O instead of mixing old and new bytes.
 *
 * Templates are looked up beneath the template dir only: a symlink in it may
 * lead to another file in it, never outside, and only a regular file is ever
 * opened for reading (a FIFO or device node is refused before it is opened).
 *
 * Error convention: 0 or a negative errno, with a message in err.
 */
#ifndef HCOWFS_TEMPLATE_H
#define HCOWFS_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

#define TEMPLATE_SAMPLES	16
#define TEMPLATE_SAMPLE_SIZE	(64u << 10)
#define TEMPLATE_CHUNK		(1u << 20)	/* bytes covered by one content sum */

/* Number of content sums of a template of size bytes. */
#define TEMPLATE_CHUNKS(size)	(((size) + TEMPLATE_CHUNK - 1) / TEMPLATE_CHUNK)

/*
 * Open template `name` in the template dir (dirfd) read-only and describe
 * its current version in t (id left 0).  On success *fd is the open file.
 * Fails if it is missing, unreadable, not a regular file, or (through a
 * symlink) outside the template dir.
 */
int template_probe(int dirfd, const char *name, struct catalog_template *t, int *fd,
    char *err, size_t errlen);

/*
 * The same, but the fingerprint is copied from rec instead of read, when
 * size, mtime and inode match it: for a worker taking over a mount whose
 * first worker read the content (a takeover must be quick).
 */
int template_probe_quick(int dirfd, const struct catalog_template *rec,
    struct catalog_template *t, int *fd, char *err, size_t errlen);

/*
 * The content sum of chunk i of the open template fd (size bytes): crc32c
 * of its bytes, read into buf (TEMPLATE_CHUNK bytes).  0 or -errno; -EIO if
 * the file is shorter than size.
 */
int template_chunk_sum(int fd, uint64_t size, uint64_t i, void *buf, uint32_t *sum);

/*
 * NULL if cur describes the same version as rec, else what differs.  A
 * birth time or file handle unknown on either side (0, "") is not compared.
 */
const char *template_differs(const struct catalog_template *rec,
    const struct catalog_template *cur);

/*
 * Does fd's file system see every writer through the file we hold, so a
 * read lease and a cached fstat are trustworthy?  0 for FUSE and network
 * file systems, where another host or the FUSE server's own file system
 * writes without breaking our lease and attributes may be cached.
 */
int template_fs_is_local(int fd);

#endif
