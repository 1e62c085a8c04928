/*
 * dirops: the FUSE operations on names (dirops.c), and what fsops.c shares
 * with them.
 */
#ifndef HCOWFS_DIROPS_H
#define HCOWFS_DIROPS_H

#include <sys/stat.h>

#include "worker.h"

/* The store the request's worker serves. */
struct store *req_store(fuse_req_t req);
/*
 * At FUSE init: the time the root and the read-only directories show, and
 * whether a disk's st_blocks is what it holds (used) or its size.
 */
void dirops_init(int blocks_used);
/* A disk's attributes as stat shows them. */
void disk_stat(const struct disk_attr *a, struct stat *s);
/* Set the name operations in ops (lookup ... statfs). */
void dirops_fill(struct fuse_lowlevel_ops *ops);

#endif
