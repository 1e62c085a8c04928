/*
 * mounts: find hcowfs mounts in /proc/self/mountinfo.
 *
 * Reading mountinfo never touches the FUSE file system itself, so hcowctl
 * can find (and talk to the supervisor of) a mount whose worker is hung.
 */
#ifndef HCOWFS_MOUNTS_H
#define HCOWFS_MOUNTS_H

#include <limits.h>

#define HCOWFS_FSTYPE	"fuse.hcowfs"

struct hcow_mount {
	unsigned major, minor;		/* device of the mount (= connection) */
	char	 mountpoint[PATH_MAX];
	char	 source[PATH_MAX];	/* the template dir */
};

/*
 * Fill out[] with up to max hcowfs mounts (fstype fuse.hcowfs) whose mount
 * point is `mountpoint` (NULL = any).  Returns how many matched (may exceed
 * max), or -errno.
 */
int mounts_find(const char *mountpoint, struct hcow_mount *out, int max);

/*
 * Absolute, normalized form of a mount point path, resolved without looking
 * up its last component (a FUSE mount point whose worker hangs would hang us).
 * Returns 0 or -errno.
 */
int mounts_canonical(const char *path, char *out, size_t len);

#endif
