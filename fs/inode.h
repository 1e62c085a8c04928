/*
 * inode: how the worker numbers what the mount shows (dirops.c, fsops.c,
 * control.c).  Only numbers: no state, no calls.
 */
#ifndef HCOWFS_INODE_H
#define HCOWFS_INODE_H

#include <stdint.h>

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>

/*
 * Disk (or snapshot) id N is inode N + 1 (ids
 * stay below 2^40); the root is 1.  A high bit marks each other kind, with
 * the row id of what it names below it; ids are never reused, so an inode
 * never names another thing, in any worker generation.
 */
#define ROOT_INO	((fuse_ino_t)1)
#define INO_TMPL	((fuse_ino_t)1 << 59)	/* | template version id: .templates/NAME */
#define TMPLDIR_INO	((fuse_ino_t)1 << 60)	/* the mount's .templates */
#define INO_DIR		((fuse_ino_t)1 << 61)	/* | directory id: a directory */
#define SNAPDIR_INO	((fuse_ino_t)1 << 62)	/* .snapshots; | directory id: its view of one */

/* A disk's id from its inode (an inode the caller knows is a disk's). */
static inline uint64_t
ino_disk(fuse_ino_t ino)
{
	return (uint64_t)ino - 1;
}

enum ino_kind { INO_KIND_DISK, INO_KIND_DIR, INO_KIND_SNAPDIR, INO_KIND_TMPLDIR, INO_KIND_TMPL };

/* What ino names, and its id (a disk's, a directory's (0: the root), a template's). */
static inline enum ino_kind
ino_kind(fuse_ino_t ino, uint64_t *id)
{
	if (ino == ROOT_INO || (ino & INO_DIR)) {
		*id = ino == ROOT_INO ? 0 : ino & ~INO_DIR;
		return INO_KIND_DIR;
	}
	if (ino & SNAPDIR_INO) {
		*id = ino & ~SNAPDIR_INO;
		return INO_KIND_SNAPDIR;
	}
	if (ino == TMPLDIR_INO) {
		*id = 0;
		return INO_KIND_TMPLDIR;
	}
	if (ino & INO_TMPL) {
		*id = ino & ~INO_TMPL;
		return INO_KIND_TMPL;
	}
	*id = ino_disk(ino);
	return INO_KIND_DISK;
}

/* A directory's inode (id 0: the root). */
static inline fuse_ino_t
dir_ino(uint64_t id)
{
	return id ? INO_DIR | id : ROOT_INO;
}

#endif
