/*
 * tmpldir: the template dir as the mount shows it, read-only, at
 * .templates/NAME: looked up, listed, read, and copied from (share.c).
 *
 * Design notes
 *
 * A template file shown is the version the catalog records for it
 * (tmpl_acquire: looking one up records it, as hcowctl create would), so
 * its inode (its row id, fs/worker.h) names one version: a file replaced
 * in the template dir is a new version with a new inode, and its old one
 * goes on reading the old content or fails, never mixes the two.  Reads
 * go through tmpl_read, with its checks (a changed file is refused), under
 * ns_lock shared as a disk's reads are: a handle is an id, never a pointer,
 * since a replacement worker gets the open files of the one before.
 * The listing is the dir's regular files whose names follow the rules,
 * sorted; nothing is recorded by listing.
 *
 * Error convention: 0 or -errno.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"

static void
template_attr_fill(const struct tmpl *t, struct template_attr *a)
{
	a->id = (uint64_t)t->rec.id;
	snprintf(a->name, sizeof(a->name), "%s", t->rec.name);
	a->size = t->rec.size;
	a->mtime_ns = t->rec.mtime_ns;
	a->blocks = (t->alloc_bytes + 511) / 512;
}

int
store_template_lookup(struct store *st, const char *name, struct template_attr *a)
{
	char err[256];
	const char *why;
	struct tmpl *t;
	int rc;

	if (name_check(name, &why) < 0 || (st->tmpldirfd < 0 && !st->tpool))
		return -ENOENT;
	pthread_mutex_lock(&st->cat_lock);
	if ((rc = tmpl_acquire(st, name, &t, err, sizeof(err))) == 0) {
		template_attr_fill(t, a);
	}
	pthread_mutex_unlock(&st->cat_lock);
	return rc < 0 && rc != -ENOMEM ? -ENOENT : rc;
}

int
store_template_get(struct store *st, uint64_t id, struct template_attr *a)
{
	struct tmpl *t;

	pthread_rwlock_rdlock(&st->ns_lock);
	if ((t = tmpl_by_id(st, (int64_t)id)) != NULL)
		template_attr_fill(t, a);
	pthread_rwlock_unlock(&st->ns_lock);
	return t ? 0 : -ENOENT;
}

ssize_t
store_template_read(struct store *st, uint64_t id, void *buf, size_t len, uint64_t off)
{
	struct tmpl *t;
	ssize_t rc;

	pthread_rwlock_rdlock(&st->ns_lock);
	if (!(t = tmpl_by_id(st, (int64_t)id)))
		rc = -ENOENT;
	else if (t->problem[0])
		rc = -EIO;
	else if (off >= t->rec.size)
		rc = 0;
	else {
		if (len > t->rec.size - off)
			len = (size_t)(t->rec.size - off);
		rc = tmpl_read(t, buf, len, off);
		rc = rc < 0 ? rc : (ssize_t)len;
	}
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
store_template_at(struct store *st, size_t i, char *name, size_t len)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dir;
	int fd, rc = -ENOENT;

	if (st->tpool)
		return tmpl_pool_at(st, i, name, len);
	if (st->tmpldirfd < 0 || (fd = openat(st->tmpldirfd, ".", O_RDONLY | O_DIRECTORY)) < 0)
		return -ENOENT;
	if (!(dir = fdopendir(fd))) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(dir)) != NULL) {
		const char *why;
		struct stat sb;
		if (name_check(de->d_name, &why) < 0 ||
		    fstatat(fd, de->d_name, &sb, 0) < 0 || !S_ISREG(sb.st_mode))
			continue;
		if (n == cap) {
			char **v = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof(*v));
			if (!v)
				break;
			names = v;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(dir);
	qsort(names, n, sizeof(*names), cmp_str);
	if (i < n) {
		snprintf(name, len, "%s", names[i]);
		rc = 0;
	}
	for (size_t k = 0; k < n; k++)
		free(names[k]);
	free(names);
	return rc;
}
