/*
 * names: what a disk or template name and a size may be.
 *
 * Used by hcowctl (to refuse bad input before it reaches a mount) and by the
 * worker (which trusts nothing it is sent).  Names are restricted to
 * [A-Za-z0-9._+-_], 1..NAME_MAX_LEN bytes, not starting with '.': no path
 * tricks, nothing that needs quoting in the control protocol or in JSON.
 * A disk or directory in the mount is named by its path: names joined by
 * '/' ("images/100/vm-100-disk-0.raw"), NAME_MAX_LEN bytes in all.
 */
#ifndef HCOWFS_NAMES_H
#define HCOWFS_NAMES_H

#include <stdint.h>

#define NAME_MAX_LEN	200

/* Largest disk: 256 TiB.  Anything larger is a typo, not a VM disk. */
#define DISK_SIZE_MAX	(UINT64_C(1) << 48)

/* 0 if name is a valid disk/template name; else -EINVAL and *why says why. */
int name_check(const char *name, const char **why);
/* 0 if path is names joined by single '/' (no leading, trailing or double '/'); else -EINVAL. */
int path_check(const char *path, const char **why);
/* Is path directly in directory dir ("" the root)? */
int path_in_dir(const char *path, const char *dir);
/* A name as users write it: a disk's path, or PATH@SNAP (a snapshot): both parts follow the rules. */
int full_name_check(const char *name, const char **why);

/*
 * Parse a size: digits with an optional binary suffix K, M, G, T, P
 * (optionally followed by "iB" or "B"): "20G", "512M", "1073741824".
 * Returns 0, or -EINVAL (not a size) or -ERANGE (overflows 64 bits).
 */
int size_parse(const char *s, uint64_t *out);

/* Format bytes for people: "20 GiB", "1.5 MiB", "512 B". */
void size_format(uint64_t bytes, char *buf, unsigned len);

#endif
