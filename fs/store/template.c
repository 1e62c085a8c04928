/*
 * template: see template.h for the contract.
 *
 * Design notes
 *
 * Owns nothing that lives: each call opens, describes and hands back one
 * template file.  The templates a running store reads through are
 * tmplwatch.c's; this file only says what version a file is.
 *
 * Invariants:
 * - A template is opened read-only and never written.  A symlink in the
 *   template dir is followed, but its target must be a regular file.
 * - A version is name, size, mtime, inode and fingerprint; two descriptions
 *   are the same version only if all match (template_differs says which
 *   does not, in the words a user reads).
 * - The fingerprint samples TEMPLATE_SAMPLES blocks spread over the file:
 *   its cost does not grow with the file.  template_probe_quick trusts the
 *   recorded fingerprint only when size, mtime and inode all match (a
 *   takeover must be quick; the first worker of a mount read the content).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "template.h"

static int
template_fingerprint(int fd, uint64_t size, char *out, size_t len)
{
	unsigned char *buf = malloc(TEMPLATE_SAMPLE_SIZE);
	uint32_t crc = crc32c(0, &size, sizeof(size));

	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < TEMPLATE_SAMPLES && size > 0; i++) {
		uint64_t off = size <= TEMPLATE_SAMPLE_SIZE ? 0 :
		    (size - TEMPLATE_SAMPLE_SIZE) / (TEMPLATE_SAMPLES - 1) * (uint64_t)i;
		ssize_t n = pread(fd, buf, TEMPLATE_SAMPLE_SIZE, (off_t)off);
		if (n < 0) {
			int rc = -errno;
			free(buf);
			return rc;
		}
		crc = crc32c(crc, buf, (size_t)n);
	}
	free(buf);
	snprintf(out, len, "crc32c-s%d:%08" PRIx32, TEMPLATE_SAMPLES, crc);
	return 0;
}

static int template_open(int dirfd, const char *name, struct catalog_template *t, int *fd,
    char *err, size_t errlen);

int
template_probe(int dirfd, const char *name, struct catalog_template *t, int *fd,
    char *err, size_t errlen)
{
	int rc;

	if ((rc = template_open(dirfd, name, t, fd, err, errlen)) < 0)
		return rc;
	if ((rc = template_fingerprint(*fd, t->size, t->fingerprint, sizeof(t->fingerprint))) < 0) {
		snprintf(err, errlen, "template '%s' is unreadable: %s", name, strerror(-rc));
		close(*fd);
		return rc;
	}
	return 0;
}

int
template_probe_quick(int dirfd, const struct catalog_template *rec,
    struct catalog_template *t, int *fd, char *err, size_t errlen)
{
	int rc;

	if ((rc = template_open(dirfd, rec->name, t, fd, err, errlen)) < 0)
		return rc;
	if (t->size == rec->size && t->mtime_ns == rec->mtime_ns && t->ino == rec->ino) {
		snprintf(t->fingerprint, sizeof(t->fingerprint), "%s", rec->fingerprint);
		return 0;
	}
	if ((rc = template_fingerprint(*fd, t->size, t->fingerprint, sizeof(t->fingerprint))) < 0) {
		snprintf(err, errlen, "template '%s' is unreadable: %s", rec->name, strerror(-rc));
		close(*fd);
		return rc;
	}
	return 0;
}

/* Open and stat a template: name, size, mtime, inode (no fingerprint). */
static int
template_open(int dirfd, const char *name, struct catalog_template *t, int *fd,
    char *err, size_t errlen)
{
	struct stat sb;
	int f, rc;

	f = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (f < 0 && errno == ELOOP) {
		/* a symlink in the template dir is fine: follow it, still check the target */
		f = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	}
	if (f < 0) {
		rc = -errno;
		snprintf(err, errlen, "template '%s': %s", name,
		    errno == ENOENT ? "no such file in the template dir" : strerror(errno));
		return rc;
	}
	if (fstat(f, &sb) < 0) {
		rc = -errno;
		snprintf(err, errlen, "template '%s': %s", name, strerror(errno));
		close(f);
		return rc;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "template '%s' is not a regular file", name);
		close(f);
		return -EINVAL;
	}
	fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->size = (uint64_t)sb.st_size;
	t->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	t->ino = (uint64_t)sb.st_ino;
	*fd = f;
	return 0;
}

const char *
template_differs(const struct catalog_template *rec, const struct catalog_template *cur)
{
	if (rec->size != cur->size)
		return "its size changed";
	if (rec->ino != cur->ino)
		return "it was replaced by another file";
	if (rec->mtime_ns != cur->mtime_ns)
		return "it was modified";
	if (strcmp(rec->fingerprint, cur->fingerprint) != 0)
		return "its content changed";
	return NULL;
}
