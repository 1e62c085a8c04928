/*
 * datalock: one process tree per data dir.
 *
 * Every process that writes a store (the supervisor and its workers, an
 * offline hcowctl check) holds an exclusive flock on an O_DIRECTORY fd of
 * the data dir itself.  DATA_DIR/lock only says who holds it ("PID
 * MOUNTPOINT" of the supervisor), for error messages; removing it changes
 * nothing.  Error convention: 0 or a file descriptor, or -errno.
 */
#ifndef HCOWFS_DATALOCK_H
#define HCOWFS_DATALOCK_H

#include <stddef.h>

/*
 * Lock datadir: an fd (close-on-exec) holding the lock, -EWOULDBLOCK if
 * another open of the dir holds it, or another -errno.
 */
int datalock_take(const char *datadir);

/*
 * Make sure fd, inherited from the process that took the lock, is an open
 * of datadir holding it (or takes it on that fd): 0, -EXDEV if fd is not
 * datadir, -EWOULDBLOCK if someone else holds it.
 */
int datalock_adopt(int fd, const char *datadir);

/* Record "PID MOUNTPOINT" in DATA_DIR/lock (never following a symlink). */
int datalock_record(const char *datadir, int pid, const char *mountpoint);

/*
 * Who holds the lock, as DATA_DIR/lock says: *pid and *mnt ("" if unknown).
 * 0 or -errno.
 */
int datalock_holder(const char *datadir, char *pid, size_t pidlen, char *mnt, size_t mntlen);

/*
 * Root opens and creates files in the data and template dirs by name: a dir
 * that another user can write (or owns) lets that user swap a file for a
 * symlink or a file of theirs in between.  0 if only root or we can write
 * it, -EPERM if another can (*why says how), -errno if it cannot be seen.
 */
int datalock_dir_private(const char *dir, const char **why);

#endif
