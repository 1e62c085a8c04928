/* mounts: see mounts.h. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mounts.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void
mounts_unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; ) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' &&
		    r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

int
mounts_find(const char *mountpoint, struct hcow_mount *out, int max)
{
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char *save = NULL, *field[6] = { 0 };
		char *sep = strstr(line, " - ");
		unsigned maj, min;
		int n = 0;

		if (!sep)
			continue;
		*sep = '\0';
		for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
			field[n++] = t;
		if (n < 5 || sscanf(field[2], "%u:%u", &maj, &min) != 2)
			continue;
		save = NULL;
		char *fstype = strtok_r(sep + 3, " ", &save);
		char *source = strtok_r(NULL, " ", &save);
		if (!fstype || !source || strcmp(fstype, HCOWFS_FSTYPE) != 0)
			continue;
		mounts_unescape(field[4]);
		mounts_unescape(source);
		if (mountpoint && strcmp(mountpoint, field[4]) != 0)
			continue;
		if (found < max) {
			out[found].major = maj;
			out[found].minor = min;
			snprintf(out[found].mountpoint, sizeof(out[found].mountpoint), "%s", field[4]);
			snprintf(out[found].source, sizeof(out[found].source), "%s", source);
		}
		found++;
	}
	free(line);
	fclose(f);
	return found;
}

int
mounts_canonical(const char *path, char *out, size_t len)
{
	char a[PATH_MAX], b[PATH_MAX], dir[PATH_MAX];
	char *base, *parent;

	if (snprintf(a, sizeof(a), "%s", path) >= (int)sizeof(a) ||
	    snprintf(b, sizeof(b), "%s", path) >= (int)sizeof(b))
		return -ENAMETOOLONG;
	/* strip trailing slashes so basename() names the last component */
	for (size_t l = strlen(a); l > 1 && a[l - 1] == '/'; l--)
		a[l - 1] = b[l - 1] = '\0';
	parent = dirname(a);
	base = basename(b);
	if (!realpath(parent, dir))
		return -errno;
	if (strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		/* no last component to protect; resolve the whole path */
		if (!realpath(path, dir))
			return -errno;
		base = NULL;
	}
	if (!base)
		return snprintf(out, len, "%s", dir) >= (int)len ? -ENAMETOOLONG : 0;
	if (snprintf(out, len, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", base) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}
