/*
 * template: the read-only template images in the template dir.
 *
 * A template version is identified by name, size, mtime, inode number and a
 * content fingerprint (crc32c of TEMPLATE_SAMPLES blocks spread over the file,
 * so it costs ~1 MiB of reads whatever the size).  A disk records the version
 * it was cloned from; if the file later differs in any of these, the disk
 * refuses I/O instead of mixing old and new template bytes.
 *
 * Error convention: 0 or a negative errno, with a message in err.
 */
#ifndef HCOWFS_TEMPLATE_H
#define HCOWFS_TEMPLATE_H

#include <stddef.h>

#include "catalog.h"

#define TEMPLATE_SAMPLES	16
#define TEMPLATE_SAMPLE_SIZE	(64u << 10)

/*
 * Open template `name` in the template dir (dirfd) read-only and describe
 * its current version in t (id left 0).  On success *fd is the open file.
 * Fails if it is missing, unreadable, or not a regular file.
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

/* NULL if cur describes the same version as rec, else what differs. */
const char *template_differs(const struct catalog_template *rec,
    const struct catalog_template *cur);

#endif
