/*
 * datalock: see datalock.h for the contract.
 *
 * Design notes
 *
 * Why the data dir and not a file in it: the lock must be on something that
 * cannot be swapped from under it.  A lock file can be unlinked or replaced
 * while mounted, and the next mount then locks a new inode beside the old
 * one; catalog.db can be restored by rename the same way, does not exist
 * before the store is created, and SQLite opens and closes fds on it.  The
 * directory exists before anything is created in it, cannot be removed while
 * it holds a store, keeps its inode when renamed, and needs no file created:
 * a read-only data dir can be locked too.
 *
 * flock semantics we rely on: the lock belongs to the open file
 * description, which fork and exec share.  The supervisor takes it once and
 * passes the fd to each worker (spawn.c), so workers, standbys and
 * replacements all hold the same lock and never block one another; when
 * the supervisor dies its workers still hold it; it is released only when
 * the last fd of that description closes.  Any other process opens the dir
 * anew, gets a new description, and is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datalock.h"

int
datalock_take(const char *datadir)
{
	int fd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int
datalock_adopt(int fd, const char *datadir)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0 || stat(datadir, &b) < 0)
		return -errno;
	if (!S_ISDIR(a.st_mode) || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -EXDEV;
	/* on the description that holds it already, this is a no-op */
	return flock(fd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0;
}

int
datalock_record(const char *datadir, int pid, const char *mountpoint)
{
	char path[PATH_MAX + 16], line[PATH_MAX + 32];
	int fd, n, rc = 0;

	snprintf(path, sizeof(path), "%s/lock", datadir);
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = snprintf(line, sizeof(line), "%d %s\n", pid, mountpoint);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)n, 0) != n)
		rc = -errno;
	close(fd);
	return rc;
}

int
datalock_holder(const char *datadir, char *pid, size_t pidlen, char *mnt, size_t mntlen)
{
	char path[PATH_MAX + 16], line[PATH_MAX + 32], *sp;
	ssize_t n;
	int fd;

	pid[0] = mnt[0] = '\0';
	snprintf(path, sizeof(path), "%s/lock", datadir);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
		return -errno;
	n = pread(fd, line, sizeof(line) - 1, 0);
	close(fd);
	if (n < 0)
		return -errno;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if ((sp = strchr(line, ' ')) != NULL) {
		*sp++ = '\0';
		snprintf(mnt, mntlen, "%s", sp);
	}
	snprintf(pid, pidlen, "%s", line);
	return 0;
}

int
datalock_dir_private(const char *dir, const char **why)
{
	struct stat sb;

	if (stat(dir, &sb) < 0)
		return -errno;
	if (sb.st_uid != 0 && sb.st_uid != geteuid())
		*why = "it belongs to another user";
	else if (sb.st_mode & (S_IWGRP | S_IWOTH))
		*why = "other users can write it";
	else
		return 0;
	return -EPERM;
}
