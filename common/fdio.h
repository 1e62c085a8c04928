/*
 * fdio: reading and writing files whole in the face of short transfers and
 * EINTR.
 *
 * Error convention: a count of bytes or a negative errno; nothing here logs.
 */
#ifndef HCOWFS_FDIO_H
#define HCOWFS_FDIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read up to len bytes at off: the count read (short only at the file's end) or -errno. */
ssize_t fd_pread_upto(int fd, void *buf, size_t len, uint64_t off);

struct iovec;
/* Write all of iov at off, continuing after short writes (iov is consumed); 0 or -errno. */
int fd_pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t off);

#endif
