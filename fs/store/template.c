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
 * - A template is opened read-only and never written.  Its name is resolved
 *   beneath the template dir (openat2 RESOLVE_BENEATH, no magic links): a
 *   symlink that stays in the dir is followed, one that leaves it (absolute,
 *   or through "..") is refused.  The file is first opened O_PATH, which
 *   runs no driver and never blocks; only once fstat says it is a regular
 *   file is that same inode reopened for reading.
 * - A version is name, size, mtime, inode, birth time, file handle and
 *   fingerprint; two descriptions are the same version only if all that
 *   both know match (template_differs says which does not, in the words a
 *   user reads).  Birth time and handle tell a file put back with `cp -a`
 *   (which may get the old inode, size and mtime) from the original.  The
 *   handle is recorded only on local file systems, where it survives a
 *   remount; elsewhere it may name the file differently tomorrow.
 * - The fingerprint samples TEMPLATE_SAMPLES blocks spread over the file:
 *   its cost does not grow with the file.  template_probe_quick trusts the
 *   recorded fingerprint only when size, mtime and inode all match (a
 *   takeover must be quick; the first worker of a mount read the content).
 *   The content sums (template_chunk_sum) are what covers every byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crc32c.h"
#include "fdio.h"
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

/* crc32c of len zero bytes (len <= TEMPLATE_CHUNK): what a hole sums to. */
static uint32_t
template_zero_sum(uint64_t len)
{
	static const unsigned char zeros[64 << 10];
	static _Atomic uint32_t full;	/* of a whole chunk; 0 until computed (never its value) */
	uint32_t crc = len == TEMPLATE_CHUNK ? atomic_load(&full) : 0;

	if (crc)
		return crc;
	for (uint64_t done = 0; done < len; done += sizeof(zeros))
		crc = crc32c(crc, zeros, len - done < sizeof(zeros) ? len - done : sizeof(zeros));
	if (len == TEMPLATE_CHUNK)
		atomic_store(&full, crc);
	return crc;
}

int
template_chunk_sum(int fd, uint64_t size, uint64_t i, void *buf, uint32_t *sum)
{
	uint64_t off = i * TEMPLATE_CHUNK, want;
	ssize_t got;
	off_t data;

	if (off >= size)
		return -EINVAL;
	want = size - off < TEMPLATE_CHUNK ? size - off : TEMPLATE_CHUNK;
	/* a chunk that is all hole reads as zeros: no need to read them */
	data = lseek(fd, (off_t)off, SEEK_DATA);
	if ((data < 0 && errno == ENXIO) || (data >= 0 && (uint64_t)data >= off + want)) {
		*sum = template_zero_sum(want);
		return 0;
	}
	if ((got = fd_pread_upto(fd, buf, want, off)) < 0)
		return (int)got;
	if ((uint64_t)got < want)
		return -EIO;	/* shorter than recorded */
	*sum = crc32c(0, buf, want);
	return 0;
}

int
template_fs_is_local(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return 0;
	switch ((unsigned long)sf.f_type) {
	case EXT4_SUPER_MAGIC:
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case F2FS_SUPER_MAGIC:
	case TMPFS_MAGIC:
	case RAMFS_MAGIC:
		return 1;
	default:
		return 0;
	}
}

/* Resolve name beneath dirfd (no magic links): an O_PATH fd, or -errno. */
static int
template_resolve(int dirfd, const char *name)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long f = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));

	if (f < 0 && errno == ENOSYS) {
		/* a kernel before 5.6: a symlink is not followed (then not a regular file) */
		f = openat(dirfd, name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	}
	return f < 0 ? -errno : (int)f;
}

/*
 * Reopen the regular file behind O_PATH fd pathfd for reading: through
 * /proc/self/fd, which opens that very inode; without /proc, by name again,
 * non-blocking, then checked to be the same inode.
 */
static int
template_reopen(int pathfd, int dirfd, const char *name, const struct stat *want)
{
	char proc[64];
	struct stat sb;
	int f;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pathfd);
	f = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (f < 0 && errno == ENOENT) {
		struct open_how how = {
			.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
		};
		f = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (f >= 0)
			fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
	}
	if (f < 0)
		return -errno;
	if (fstat(f, &sb) < 0 || sb.st_ino != want->st_ino || sb.st_dev != want->st_dev) {
		close(f);
		return -ESTALE;	/* replaced between the two opens */
	}
	return f;
}

/* Birth time and (on a local file system) file handle of fd, into t: 0 and "" where unknown. */
static void
template_identity(int fd, struct catalog_template *t)
{
	union {
		struct file_handle fh;
		char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	struct statx sx;
	int mount_id;

	t->btime_ns = 0;
	t->handle[0] = '\0';
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATX_BTIME, &sx) == 0 &&
	    (sx.stx_mask & STATX_BTIME))
		t->btime_ns = (int64_t)sx.stx_btime.tv_sec * 1000000000 + sx.stx_btime.tv_nsec;
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (!template_fs_is_local(fd) ||
	    name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0)
		return;
	size_t n = (size_t)snprintf(t->handle, sizeof(t->handle), "%x:", (unsigned)h.fh.handle_type);
	for (unsigned i = 0; i < h.fh.handle_bytes && n + 3 <= sizeof(t->handle); i++)
		n += (size_t)snprintf(t->handle + n, sizeof(t->handle) - n, "%02x", h.fh.f_handle[i]);
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

/* Open and stat a template: name, size, mtime, inode, birth time, handle (no fingerprint). */
static int
template_open(int dirfd, const char *name, struct catalog_template *t, int *fd,
    char *err, size_t errlen)
{
	struct stat sb;
	int pathfd, f;

	if ((pathfd = template_resolve(dirfd, name)) < 0) {
		snprintf(err, errlen, "template '%s': %s", name,
		    pathfd == -ENOENT ? "no such file in the template dir" :
		    pathfd == -EXDEV ? "it leads outside the template dir" :
		    pathfd == -ELOOP ? "too many symlinks" : strerror(-pathfd));
		return pathfd;
	}
	if (fstat(pathfd, &sb) < 0) {
		f = -errno;
		snprintf(err, errlen, "template '%s': %s", name, strerror(errno));
		close(pathfd);
		return f;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "template '%s' is not a regular file", name);
		close(pathfd);
		return -EINVAL;
	}
	f = template_reopen(pathfd, dirfd, name, &sb);
	close(pathfd);
	if (f < 0) {
		snprintf(err, errlen, "template '%s': %s", name,
		    f == -ESTALE ? "it was replaced while being opened" : strerror(-f));
		return f;
	}
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->size = (uint64_t)sb.st_size;
	t->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	t->ino = (uint64_t)sb.st_ino;
	template_identity(f, t);
	*fd = f;
	return 0;
}

const char *
template_differs(const struct catalog_template *rec, const struct catalog_template *cur)
{
	if (rec->size != cur->size)
		return "its size changed";
	if (rec->ino != cur->ino ||
	    (rec->handle[0] && cur->handle[0] && strcmp(rec->handle, cur->handle) != 0) ||
	    (rec->btime_ns && cur->btime_ns && rec->btime_ns != cur->btime_ns))
		return "it was replaced by another file";
	if (rec->mtime_ns != cur->mtime_ns)
		return "it was modified";
	if (strcmp(rec->fingerprint, cur->fingerprint) != 0)
		return "its content changed";
	return NULL;
}
