/*
 * pl-record: an LD_PRELOAD interposer that records every call that changes
 * a file under one directory tree, for the power-loss rig (tests/rigs/power-loss).
 *
 *   PL_ROOT=/abs/data/dir PL_TRACE=/abs/trace LD_PRELOAD=pl-record.so prog
 *
 * Each successful mutating call on a path under PL_ROOT (open with O_CREAT
 * or O_TRUNC, pwrite*, write*, ftruncate, fallocate, fsync, fdatasync,
 * sync_file_range, rename*, unlink*, mkdir*, rmdir) becomes one trace entry:
 * a fixed header (struct pl_entry below, little-endian), then the path(s),
 * then, for writes, the bytes written.  Files are named by inode number (from
 * fstat at open), so renames and fd reuse need no guessing; directories too
 * (an fsync of a directory names its inode).
 *
 * Ordering: t_start is CLOCK_MONOTONIC before the real call; after it
 * returns, under one mutex, the entry takes the next sequence number and
 * t_end, and is written with one writev to the trace.  So the trace's order
 * is the order calls returned, and t_end grows with it.  The rebuilder uses
 * "write W returned before fsync F started" (W.t_end < F.t_start) to decide
 * that F made W durable; anything else is left to chance.
 *
 * Failed calls are not recorded: a failed write changed nothing we rely on.
 * Writes through mmap (SQLite's -shm index) are not seen; the -shm file is
 * rebuilt by SQLite after a crash and the rebuilder leaves it out.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum pl_type {
	PL_CREATE = 1,	/* path, ino: a new file (or dir) appeared at path */
	PL_TRUNC_OPEN,	/* ino: opened with O_TRUNC: size 0 */
	PL_WRITE,	/* ino, off, len + data */
	PL_TRUNCATE,	/* ino, off = new size */
	PL_FALLOC,	/* ino, off, len, flags = mode */
	PL_FSYNC,	/* ino: fsync (file or directory) */
	PL_FDATASYNC,	/* ino */
	PL_RANGESYNC,	/* ino, off, len: sync_file_range (makes nothing durable) */
	PL_RENAME,	/* path -> path2; flags = renameat2's (RENAME_EXCHANGE: swapped) */
	PL_UNLINK,	/* path */
	PL_MKDIR,	/* path, ino */
	PL_RMDIR,	/* path */
};

#define PL_MAGIC 0x504c5452u	/* "RTLP" */

struct pl_entry {
	uint32_t magic;
	uint16_t type;
	uint16_t flags;
	uint32_t pid;
	uint32_t tid;
	uint64_t seq;
	uint64_t t_start, t_end;	/* CLOCK_MONOTONIC ns */
	uint64_t ino;
	int64_t	 off;
	uint64_t len;			/* bytes of data following (writes) or range length */
	uint32_t pathlen, path2len;
};

#define MAXFD 65536

static char root[PATH_MAX];
static size_t rootlen;
static int trace_fd = -1;
static uint64_t seqno;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* per fd: inode + 1 of a traced file (0 = not traced), and the path of traced directories */
static uint64_t fd_ino[MAXFD];
static char *fd_dir[MAXFD];

static int (*r_open)(const char *, int, ...);
static int (*r_open64)(const char *, int, ...);
static int (*r_openat)(int, const char *, int, ...);
static int (*r_openat64)(int, const char *, int, ...);
static int (*r_close)(int);
static int (*r_dup)(int);
static int (*r_dup2)(int, int);
static int (*r_dup3)(int, int, int);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*r_pwritev64)(int, const struct iovec *, int, off_t);
static ssize_t (*r_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*r_ftruncate)(int, off_t);
static int (*r_ftruncate64)(int, off_t);
static int (*r_truncate)(const char *, off_t);
static int (*r_fallocate)(int, int, off_t, off_t);
static int (*r_fallocate64)(int, int, off_t, off_t);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_sync_file_range)(int, off_t, off_t, unsigned);
static int (*r_rename)(const char *, const char *);
static int (*r_renameat)(int, const char *, int, const char *);
static int (*r_renameat2)(int, const char *, int, const char *, unsigned);
static int (*r_unlink)(const char *);
static int (*r_unlinkat)(int, const char *, int);
static int (*r_mkdir)(const char *, mode_t);
static int (*r_mkdirat)(int, const char *, mode_t);
static int (*r_rmdir)(const char *);

#define RESOLVE(name) (r_##name = dlsym(RTLD_NEXT, #name))

__attribute__((constructor)) static void
pl_init(void)
{
	const char *r = getenv("PL_ROOT"), *t = getenv("PL_TRACE");

	RESOLVE(open); RESOLVE(open64); RESOLVE(openat); RESOLVE(openat64);
	RESOLVE(close); RESOLVE(dup); RESOLVE(dup2); RESOLVE(dup3);
	RESOLVE(write); RESOLVE(pwrite); RESOLVE(pwrite64); RESOLVE(writev);
	RESOLVE(pwritev); RESOLVE(pwritev64); RESOLVE(pwritev2);
	RESOLVE(ftruncate); RESOLVE(ftruncate64); RESOLVE(truncate);
	RESOLVE(fallocate); RESOLVE(fallocate64); RESOLVE(fsync); RESOLVE(fdatasync);
	RESOLVE(sync_file_range); RESOLVE(rename); RESOLVE(renameat); RESOLVE(renameat2);
	RESOLVE(unlink); RESOLVE(unlinkat); RESOLVE(mkdir); RESOLVE(mkdirat); RESOLVE(rmdir);
	if (!r || !t || !realpath(r, root)) {
		fprintf(stderr, "pl-record: PL_ROOT and PL_TRACE must be set (PL_ROOT an existing dir)\n");
		abort();
	}
	rootlen = strlen(root);
	trace_fd = r_open(t, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (trace_fd < 0) {
		fprintf(stderr, "pl-record: cannot open trace '%s'\n", t);
		abort();
	}
}

static uint64_t
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Absolute path of (dirfd, name) into out; 0 if it lies under root. */
static int
resolve(int dirfd, const char *name, char *out)
{
	char base[PATH_MAX];

	if (!name)
		return -1;
	if (name[0] == '/') {
		snprintf(out, PATH_MAX, "%s", name);
	} else {
		if (dirfd == AT_FDCWD) {
			if (!getcwd(base, sizeof(base)))
				return -1;
		} else if (dirfd >= 0 && dirfd < MAXFD && fd_dir[dirfd]) {
			snprintf(base, sizeof(base), "%s", fd_dir[dirfd]);
		} else {
			return -1;
		}
		if (snprintf(out, PATH_MAX, "%s/%s", base, name) >= PATH_MAX)
			return -1;
	}
	/* the prefix test is enough: hcowfs and SQLite never use ".." or symlinks in these paths */
	return strncmp(out, root, rootlen) == 0 && (out[rootlen] == '/' || out[rootlen] == 0) ? 0 : -1;
}

static void
emit(uint16_t type, uint16_t flags, uint64_t t_start, uint64_t ino, int64_t off, uint64_t len,
    const char *p1, const char *p2, const struct iovec *data, int ndata)
{
	struct pl_entry e = { .magic = PL_MAGIC, .type = type, .flags = flags,
	    .pid = (uint32_t)getpid(), .tid = (uint32_t)syscall(SYS_gettid), .t_start = t_start,
	    .ino = ino, .off = off, .len = len };
	struct iovec v[3 + 64];
	int n = 0;
	size_t total;
	ssize_t w;

	e.pathlen = p1 ? (uint32_t)strlen(p1) : 0;
	e.path2len = p2 ? (uint32_t)strlen(p2) : 0;
	v[n].iov_base = &e;
	v[n++].iov_len = sizeof(e);
	if (p1) {
		v[n].iov_base = (void *)p1;
		v[n++].iov_len = e.pathlen;
	}
	if (p2) {
		v[n].iov_base = (void *)p2;
		v[n++].iov_len = e.path2len;
	}
	pthread_mutex_lock(&mu);
	e.seq = ++seqno;
	e.t_end = now();
	total = 0;
	for (int i = 0; i < n; i++)
		total += v[i].iov_len;
	w = r_writev(trace_fd, v, n);
	/* the data: write it in pieces of at most 64 iovecs, all under the lock */
	for (int i = 0; w == (ssize_t)total && i < ndata; ) {
		int k = ndata - i < 64 ? ndata - i : 64;
		total = 0;
		for (int j = 0; j < k; j++)
			total += data[i + j].iov_len;
		w = r_writev(trace_fd, data + i, k);
		i += k;
	}
	pthread_mutex_unlock(&mu);
	if (w != (ssize_t)total) {
		fprintf(stderr, "pl-record: cannot write the trace\n");
		abort();
	}
}

static uint64_t
traced(int fd)
{
	return fd >= 0 && fd < MAXFD ? fd_ino[fd] : 0;
}

static void
fd_forget(int fd)
{
	if (fd >= 0 && fd < MAXFD) {
		fd_ino[fd] = 0;
		free(fd_dir[fd]);
		fd_dir[fd] = NULL;
	}
}

static void
fd_copy(int from, int to)
{
	if (to < 0 || to >= MAXFD || from < 0 || from >= MAXFD)
		return;
	fd_forget(to);
	fd_ino[to] = fd_ino[from];
	if (fd_dir[from])
		fd_dir[to] = strdup(fd_dir[from]);
}

/* After an open of path (under root or not) returned fd. */
static void
opened(int fd, const char *path, int under, int flags, int existed, uint64_t t0)
{
	struct stat sb;

	if (fd < 0 || fd >= MAXFD)
		return;
	fd_forget(fd);
	if (!under || fstat(fd, &sb) < 0)
		return;
	fd_ino[fd] = (uint64_t)sb.st_ino + 1;
	if (S_ISDIR(sb.st_mode))
		fd_dir[fd] = strdup(path);
	if ((flags & O_CREAT) && !existed)
		emit(PL_CREATE, 0, t0, (uint64_t)sb.st_ino, 0, 0, path, NULL, NULL, 0);
	else if ((flags & O_TRUNC) && S_ISREG(sb.st_mode) && (flags & O_ACCMODE) != O_RDONLY)
		emit(PL_TRUNC_OPEN, 0, t0, (uint64_t)sb.st_ino, 0, 0, NULL, NULL, NULL, 0);
}

static int
do_open(int dirfd, const char *name, int flags, mode_t mode, int use_at)
{
	char path[PATH_MAX];
	int under = resolve(dirfd, name, path) == 0;
	struct stat sb;
	int existed = under && (flags & O_CREAT) ? stat(path, &sb) == 0 : 1;
	uint64_t t0 = now();
	int fd = use_at ? r_openat(dirfd, name, flags, mode) : r_open(name, flags, mode);
	int saved = errno;

	if (fd >= 0)
		opened(fd, path, under, flags, existed, t0);
	errno = saved;
	return fd;
}

#define MODE_ARG(flags, mode) do { \
	if ((flags) & (O_CREAT | __O_TMPFILE)) { \
		va_list ap; va_start(ap, flags); mode = va_arg(ap, int); va_end(ap); \
	} } while (0)

int open(const char *p, int flags, ...) { mode_t m = 0; MODE_ARG(flags, m); return do_open(AT_FDCWD, p, flags, m, 0); }
int open64(const char *p, int flags, ...) { mode_t m = 0; MODE_ARG(flags, m); return do_open(AT_FDCWD, p, flags, m, 0); }
int openat(int d, const char *p, int flags, ...) { mode_t m = 0; MODE_ARG(flags, m); return do_open(d, p, flags, m, 1); }
int openat64(int d, const char *p, int flags, ...) { mode_t m = 0; MODE_ARG(flags, m); return do_open(d, p, flags, m, 1); }
int creat(const char *p, mode_t m) { return do_open(AT_FDCWD, p, O_CREAT | O_WRONLY | O_TRUNC, m, 0); }
int creat64(const char *p, mode_t m) { return do_open(AT_FDCWD, p, O_CREAT | O_WRONLY | O_TRUNC, m, 0); }

int
close(int fd)
{
	fd_forget(fd);
	return r_close(fd);
}

int
dup(int fd)
{
	int n = r_dup(fd);
	if (n >= 0)
		fd_copy(fd, n);
	return n;
}

int
dup2(int fd, int to)
{
	int n = r_dup2(fd, to);
	if (n >= 0 && n != fd)
		fd_copy(fd, n);
	return n;
}

int
dup3(int fd, int to, int flags)
{
	int n = r_dup3(fd, to, flags);
	if (n >= 0)
		fd_copy(fd, n);
	return n;
}

static ssize_t
wrote(int fd, uint64_t t0, int64_t off, const struct iovec *v, int cnt, ssize_t n)
{
	uint64_t ino = traced(fd);
	int saved = errno;

	if (ino && n > 0) {
		/* record exactly the n bytes that were written */
		struct iovec cut[1024];
		int k = 0;
		size_t left = (size_t)n;
		for (int i = 0; i < cnt && left > 0 && k < 1024; i++) {
			size_t l = v[i].iov_len < left ? v[i].iov_len : left;
			cut[k].iov_base = v[i].iov_base;
			cut[k++].iov_len = l;
			left -= l;
		}
		emit(PL_WRITE, 0, t0, ino - 1, off, (uint64_t)n, NULL, NULL, cut, k);
	}
	errno = saved;
	return n;
}

/* The offset a write() at the file position lands at. */
static int64_t
pos_of(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	struct stat sb;

	if (fl >= 0 && (fl & O_APPEND))
		return fstat(fd, &sb) == 0 ? (int64_t)sb.st_size : -1;
	return (int64_t)lseek(fd, 0, SEEK_CUR);
}

/*
 * A traced write at the file position: the offset is taken before the call
 * moves it.  vectored: the caller was writev(), else write() of v[0].
 */
static ssize_t
wrote_at_pos(int fd, const struct iovec *v, int c, int vectored)
{
	int64_t off = pos_of(fd);
	uint64_t t0 = now();
	ssize_t n = vectored ? r_writev(fd, v, c) : r_write(fd, v[0].iov_base, v[0].iov_len);

	return wrote(fd, t0, off, v, c, n);
}

ssize_t
write(int fd, const void *b, size_t l)
{
	struct iovec v = { (void *)b, l };

	if (!traced(fd))
		return r_write(fd, b, l);
	return wrote_at_pos(fd, &v, 1, 0);
}

ssize_t
writev(int fd, const struct iovec *v, int c)
{
	if (!traced(fd))
		return r_writev(fd, v, c);
	return wrote_at_pos(fd, v, c, 1);
}

ssize_t
pwrite(int fd, const void *b, size_t l, off_t o)
{
	struct iovec v = { (void *)b, l };
	uint64_t t0 = now();
	return wrote(fd, t0, o, &v, 1, r_pwrite(fd, b, l, o));
}

ssize_t
pwrite64(int fd, const void *b, size_t l, off_t o)
{
	struct iovec v = { (void *)b, l };
	uint64_t t0 = now();
	return wrote(fd, t0, o, &v, 1, r_pwrite64(fd, b, l, o));
}

ssize_t
pwritev(int fd, const struct iovec *v, int c, off_t o)
{
	uint64_t t0 = now();
	return wrote(fd, t0, o, v, c, r_pwritev(fd, v, c, o));
}

ssize_t
pwritev64(int fd, const struct iovec *v, int c, off_t o)
{
	uint64_t t0 = now();
	return wrote(fd, t0, o, v, c, r_pwritev64(fd, v, c, o));
}

ssize_t
pwritev2(int fd, const struct iovec *v, int c, off_t o, int flags)
{
	uint64_t t0 = now();
	if (o == -1 && traced(fd))
		o = pos_of(fd);
	return wrote(fd, t0, o, v, c, r_pwritev2(fd, v, c, o, flags));
}

static int
done_fd(int rc, uint16_t type, uint16_t flags, int fd, uint64_t t0, int64_t off, uint64_t len)
{
	int saved = errno;
	uint64_t ino = traced(fd);

	if (rc == 0 && ino)
		emit(type, flags, t0, ino - 1, off, len, NULL, NULL, NULL, 0);
	errno = saved;
	return rc;
}

int ftruncate(int fd, off_t l) { uint64_t t0 = now(); return done_fd(r_ftruncate(fd, l), PL_TRUNCATE, 0, fd, t0, l, 0); }
int ftruncate64(int fd, off_t l) { uint64_t t0 = now(); return done_fd(r_ftruncate64(fd, l), PL_TRUNCATE, 0, fd, t0, l, 0); }
int fsync(int fd) { uint64_t t0 = now(); return done_fd(r_fsync(fd), PL_FSYNC, 0, fd, t0, 0, 0); }
int fdatasync(int fd) { uint64_t t0 = now(); return done_fd(r_fdatasync(fd), PL_FDATASYNC, 0, fd, t0, 0, 0); }

int
fallocate(int fd, int mode, off_t o, off_t l)
{
	uint64_t t0 = now();
	return done_fd(r_fallocate(fd, mode, o, l), PL_FALLOC, (uint16_t)mode, fd, t0, o, (uint64_t)l);
}

int
fallocate64(int fd, int mode, off_t o, off_t l)
{
	uint64_t t0 = now();
	return done_fd(r_fallocate64(fd, mode, o, l), PL_FALLOC, (uint16_t)mode, fd, t0, o, (uint64_t)l);
}

int
sync_file_range(int fd, off_t o, off_t l, unsigned f)
{
	uint64_t t0 = now();
	return done_fd(r_sync_file_range(fd, o, l, f), PL_RANGESYNC, (uint16_t)f, fd, t0, o, (uint64_t)l);
}

int
truncate(const char *p, off_t l)
{
	char path[PATH_MAX];
	struct stat sb;
	uint64_t t0 = now();
	int rc = r_truncate(p, l), saved = errno;

	if (rc == 0 && resolve(AT_FDCWD, p, path) == 0 && stat(path, &sb) == 0)
		emit(PL_TRUNCATE, 0, t0, (uint64_t)sb.st_ino, l, 0, NULL, NULL, NULL, 0);
	errno = saved;
	return rc;
}

static int
done_ns(int rc, uint16_t type, uint16_t flags, uint64_t t0, int d1, const char *n1, int d2,
    const char *n2)
{
	char p1[PATH_MAX], p2[PATH_MAX];
	int saved = errno, u1, u2 = 0;
	struct stat sb;
	uint64_t ino = 0;

	if (rc == 0) {
		u1 = resolve(d1, n1, p1) == 0;
		if (n2)
			u2 = resolve(d2, n2, p2) == 0;
		if (type == PL_MKDIR && u1 && stat(p1, &sb) == 0)
			ino = (uint64_t)sb.st_ino;
		if (u1 || u2)
			emit(type, flags, t0, ino, 0, 0, u1 ? p1 : "", n2 ? (u2 ? p2 : "") : NULL, NULL, 0);
	}
	errno = saved;
	return rc;
}

int rename(const char *a, const char *b) { uint64_t t0 = now(); return done_ns(r_rename(a, b), PL_RENAME, 0, t0, AT_FDCWD, a, AT_FDCWD, b); }
int renameat(int da, const char *a, int db, const char *b) { uint64_t t0 = now(); return done_ns(r_renameat(da, a, db, b), PL_RENAME, 0, t0, da, a, db, b); }
int renameat2(int da, const char *a, int db, const char *b, unsigned f) { uint64_t t0 = now(); return done_ns(r_renameat2(da, a, db, b, f), PL_RENAME, (uint16_t)f, t0, da, a, db, b); }
int unlink(const char *a) { uint64_t t0 = now(); return done_ns(r_unlink(a), PL_UNLINK, 0, t0, AT_FDCWD, a, 0, NULL); }
int rmdir(const char *a) { uint64_t t0 = now(); return done_ns(r_rmdir(a), PL_RMDIR, 0, t0, AT_FDCWD, a, 0, NULL); }
int mkdir(const char *a, mode_t m) { uint64_t t0 = now(); return done_ns(r_mkdir(a, m), PL_MKDIR, 0, t0, AT_FDCWD, a, 0, NULL); }
int mkdirat(int d, const char *a, mode_t m) { uint64_t t0 = now(); return done_ns(r_mkdirat(d, a, m), PL_MKDIR, 0, t0, d, a, 0, NULL); }

int
unlinkat(int d, const char *a, int flags)
{
	uint64_t t0 = now();
	return done_ns(r_unlinkat(d, a, flags), (flags & AT_REMOVEDIR) ? PL_RMDIR : PL_UNLINK, 0, t0,
	    d, a, 0, NULL);
}
