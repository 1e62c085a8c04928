/*
 * fsops: the FUSE low-level operations of the worker.
 *
 * The mount's root directory (inode 1) lists one regular file per disk;
 * disk id N is inode N + 1, stable across worker restarts because ids are
 * never reused, which is what lets a replacement worker answer requests about
 * inodes the kernel learnt from its predecessor.  The root also holds
 * `.snapshots` (SNAPDIR_INO, not listed, as ZFS hides .zfs): a read-only
 * directory of the snapshots, DISK@SNAP, each a read-only file whose
 * inode is its id + 1 as well.  Snapshots are taken and deleted with hcowctl;
 * in .snapshots every change is EROFS.
 *
 * Each op is named after its slot (fo_read for .read), calls the store, and
 * replies exactly once.  Store calls return 0/bytes or a negative errno.
 * Files can only be created with hcowctl: create, mknod, mkdir, symlink and
 * link fail with EPERM, and the log says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "hlog.h"
#include "worker.h"

#define ROOT_INO	1
#define SNAPDIR_NAME	".snapshots"
#define ENTRY_TIMEOUT	1.0
#define ATTR_TIMEOUT	1.0
#define DIR_COOKIE_BASE	2	/* readdir cookies: 1 ".", 2 "..", id+2 a disk */

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif

static struct store *
req_store(fuse_req_t req)
{
	return ((struct worker *)fuse_req_userdata(req))->st;
}

static uint64_t
ino_disk(fuse_ino_t ino)
{
	return (uint64_t)ino - 1;
}

/*
 * The store takes offsets unsigned: a negative one is answered EINVAL here.
 * Returns 1 if it answered.
 */
static int
reply_bad_offset(fuse_req_t req, off_t off)
{
	if (off >= 0)
		return 0;
	fuse_reply_err(req, EINVAL);
	return 1;
}

/* The root has no stored times: it shows when this worker started serving. */
static time_t root_time;

/* The root (ROOT_INO) or .snapshots (SNAPDIR_INO, read-only). */
static void
dir_stat(fuse_ino_t ino, struct stat *s)
{
	memset(s, 0, sizeof(*s));
	s->st_mtim.tv_sec = s->st_ctim.tv_sec = s->st_atim.tv_sec = root_time;
	s->st_ino = ino;
	s->st_mode = S_IFDIR | (ino == ROOT_INO ? 0755 : 0555);
	s->st_nlink = 2;
	s->st_blksize = 4096;
}

static int
is_dir(fuse_ino_t ino)
{
	return ino == ROOT_INO || ino == SNAPDIR_INO;
}

static void
disk_stat(const struct disk_attr *a, struct stat *s)
{
	memset(s, 0, sizeof(*s));
	s->st_ino = (ino_t)(a->id + 1);
	s->st_mode = S_IFREG | (a->mode & 07777);
	s->st_nlink = 1;
	s->st_uid = a->uid;
	s->st_gid = a->gid;
	s->st_size = (off_t)a->size;
	s->st_blocks = (blkcnt_t)a->blocks;
	s->st_blksize = 4096;
	s->st_mtim.tv_sec = a->mtime_ns / 1000000000;
	s->st_mtim.tv_nsec = a->mtime_ns % 1000000000;
	s->st_atim = s->st_mtim;
	s->st_ctim.tv_sec = a->ctime_ns / 1000000000;
	s->st_ctim.tv_nsec = a->ctime_ns % 1000000000;
}

static void
fo_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	root_time = time(NULL);
	/* write-through: every write reaches the log before it is acknowledged */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static void
fo_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct disk_attr a;
	int rc;

	if (!is_dir(parent)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	memset(&e, 0, sizeof(e));
	if (parent == ROOT_INO && strcmp(name, SNAPDIR_NAME) == 0) {
		e.ino = SNAPDIR_INO;
		e.attr_timeout = e.entry_timeout = ENTRY_TIMEOUT;
		dir_stat(SNAPDIR_INO, &e.attr);
		fuse_reply_entry(req, &e);
		return;
	}
	/* disks in the root, snapshots (only, and only by DISK@SNAP) in .snapshots */
	if (parent == SNAPDIR_INO)
		rc = strchr(name, '@') ? store_lookup_full(req_store(req), name, &a) : -ENOENT;
	else
		rc = store_lookup(req_store(req), name, &a);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	e.ino = a.id + 1;
	e.generation = 1;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	disk_stat(&a, &e.attr);
	fuse_reply_entry(req, &e);
}

static void
fo_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct disk_attr a;
	struct stat s;
	int rc;

	(void)fi;
	if (is_dir(ino)) {
		dir_stat(ino, &s);
		fuse_reply_attr(req, &s, ATTR_TIMEOUT);
		return;
	}
	if ((rc = store_getattr(req_store(req), ino_disk(ino), &a)) < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	disk_stat(&a, &s);
	fuse_reply_attr(req, &s, ATTR_TIMEOUT);
}

static void
fo_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
    struct fuse_file_info *fi)
{
	struct store *st = req_store(req);
	struct disk_attr a;
	struct stat s;
	int mask = 0, rc = 0;
	int64_t mtime = 0;

	(void)fi;
	if (is_dir(ino)) {
		fuse_reply_err(req, ino == ROOT_INO ? EPERM : EROFS);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE)
		rc = store_resize(st, ino_disk(ino), (uint64_t)attr->st_size, 0);
	if (to_set & FUSE_SET_ATTR_MODE)
		mask |= STORE_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		mask |= STORE_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		mask |= STORE_SET_GID;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		mtime = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		mask |= STORE_SET_MTIME;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		mtime = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
		mask |= STORE_SET_MTIME;
	}
	if (rc == 0 && mask)
		rc = store_setattr(st, ino_disk(ino), mask, attr->st_mode, attr->st_uid,
		    attr->st_gid, mtime);
	if (rc == 0)
		rc = store_getattr(st, ino_disk(ino), &a);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	disk_stat(&a, &s);
	fuse_reply_attr(req, &s, ATTR_TIMEOUT);
}

static void
fo_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct store *st = req_store(req);
	struct disk_attr a;
	struct stat s;
	char *buf;
	size_t used = 0;

	(void)fi;
	if (!is_dir(ino)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (!(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dir_stat(ino, &s);
	if (off < 1)
		used += fuse_add_direntry(req, buf + used, size - used, ".", &s, 1);
	dir_stat(ROOT_INO, &s);
	if (off < 2 && used <= size)
		used += fuse_add_direntry(req, buf + used, size - used, "..", &s, 2);
	for (uint64_t after = off > DIR_COOKIE_BASE ? (uint64_t)off - DIR_COOKIE_BASE : 0;
	    used <= size && (ino == ROOT_INO ? store_next(st, after, &a) :
	    store_next_snapshot(st, after, &a)) == 0; after = a.id) {
		size_t n;
		disk_stat(&a, &s);
		n = fuse_add_direntry(req, buf + used, size - used, a.name, &s,
		    (off_t)(a.id + DIR_COOKIE_BASE));
		if (used + n > size)
			break;	/* does not fit: the kernel asks again from the last cookie */
		used += n;
	}
	fuse_reply_buf(req, buf, used > size ? size : used);
	free(buf);
}

static void
fo_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct disk_attr a;
	int rc;

	if (is_dir(ino)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* a snapshot is read-only: say so at open, not at the first write */
	if ((fi->flags & O_ACCMODE) != O_RDONLY &&
	    store_getattr(req_store(req), ino_disk(ino), &a) == 0 && a.snapshot) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if ((rc = store_open_disk(req_store(req), ino_disk(ino))) < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = ino_disk(ino);
	/* every change goes through this mount, so cached pages stay valid */
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* The kernel dropped the inode: an unlinked disk may be purged now (store.h). */
static void
fo_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)nlookup;
	store_forget_disk(req_store(req), ino_disk(ino));
	fuse_reply_none(req);
}

static void
fo_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		store_forget_disk(req_store(req), ino_disk(forgets[i].ino));
	fuse_reply_none(req);
}

static void
fo_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	store_release_disk(req_store(req), ino_disk(ino));
	fuse_reply_err(req, 0);
}

/*
 * One read buffer per worker thread, grown to the largest read seen.  libfuse
 * retires idle threads, so the buffer is freed by a key destructor.
 */
struct read_buf {
	size_t	len;
	char	data[];
};
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void
read_buf_key_init(void)
{
	if (pthread_key_create(&read_buf_key, free) != 0)
		abort();	/* at start-up, out of keys: nothing sensible to do */
}

static char *
read_buf_get(size_t size)
{
	struct read_buf *b;

	pthread_once(&read_buf_once, read_buf_key_init);
	b = pthread_getspecific(read_buf_key);
	if (!b || b->len < size) {
		struct read_buf *nb = realloc(b, sizeof(*nb) + size);
		if (!nb)
			return NULL;
		nb->len = size;
		pthread_setspecific(read_buf_key, nb);
		b = nb;
	}
	return b->data;
}

static void
fo_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct worker *w = fuse_req_userdata(req);
	struct store_read_src src = { 0, 0 };
	uint64_t start = (uint64_t)clock_mono_ns();
	char *buf;
	ssize_t n;

	(void)fi;
	if (reply_bad_offset(req, off))
		return;
	if (!(buf = read_buf_get(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = store_read_from(w->st, ino_disk(ino), buf, size, (uint64_t)off, &src);
	/* counted before the reply: a status that follows the answer sees it */
	iostat_count(w->ctl, ino_disk(ino), CTL_IO_READ, n, &src, start);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void
fo_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct worker *w = fuse_req_userdata(req);
	uint64_t start = (uint64_t)clock_mono_ns();
	ssize_t n;

	(void)fi;
	if (reply_bad_offset(req, off))
		return;
	n = store_write(w->st, ino_disk(ino), buf, size, (uint64_t)off);
	/* counted before the reply: a status that follows the answer sees it */
	iostat_count(w->ctl, ino_disk(ino), CTL_IO_WRITE, n, NULL, start);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void
fo_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void
fo_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -store_sync(req_store(req), ino_disk(ino)));
}

static void
fo_refuse_new(fuse_req_t req, fuse_ino_t parent, const char *what, const char *name)
{
	if (parent == SNAPDIR_INO) {
		fuse_reply_err(req, EROFS);
		return;
	}
	hlog(HLOG_WARN, "refused to %s '%s': disks are created with 'hcowctl create'", what, name);
	fuse_reply_err(req, EPERM);
}

static void
fo_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	(void)mode;
	(void)fi;
	fo_refuse_new(req, parent, "create", name);
}

static void
fo_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)mode;
	(void)rdev;
	fo_refuse_new(req, parent, "create", name);
}

static void
fo_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	fo_refuse_new(req, parent, "make directory", name);
}

static void
fo_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	fo_refuse_new(req, parent, "make symlink", name);
}

static void
fo_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	(void)ino;
	fo_refuse_new(req, parent, "make hard link", name);
}

static void
fo_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (parent != ROOT_INO) {
		/* snapshots are deleted with hcowctl: an rm -rf of the mount keeps them */
		fuse_reply_err(req, parent == SNAPDIR_INO ? EROFS : ENOTDIR);
		return;
	}
	if (strcmp(name, SNAPDIR_NAME) == 0) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	int rc = store_unlink(req_store(req), name);

	if (rc == -ENOENT && session_request_resent())
		rc = 0;		/* done by the worker that died before answering */
	fuse_reply_err(req, -rc);
}

static void
fo_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, parent == ROOT_INO && strcmp(name, SNAPDIR_NAME) == 0 ? EROFS : ENOTDIR);
}

static void
fo_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
    const char *newname, unsigned int flags)
{
	if (parent == SNAPDIR_INO || newparent == SNAPDIR_INO ||
	    strcmp(name, SNAPDIR_NAME) == 0 || strcmp(newname, SNAPDIR_NAME) == 0) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (parent != ROOT_INO || newparent != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct disk_attr a;
	int rc = store_rename(req_store(req), name, newname, flags & RENAME_NOREPLACE);

	/* done by the worker that died before answering: the source is gone, the target is there */
	if (rc == -ENOENT && session_request_resent() && store_lookup(req_store(req), newname, &a) == 0)
		rc = 0;
	fuse_reply_err(req, -rc);
}

static void
fo_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int rc;

	(void)ino;
	if ((rc = store_statfs(req_store(req), &sv)) < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &sv);
}

static void
fo_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
    struct fuse_file_info *fi)
{
	struct store *st = req_store(req);
	uint64_t id = ino_disk(ino);
	int rc;

	(void)fi;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	switch (mode) {
	case 0:
		/* nothing is reserved on a log; just make the file that long */
		rc = store_resize(st, id, (uint64_t)off + (uint64_t)len, 1);
		break;
	case FALLOC_FL_KEEP_SIZE:
		rc = 0;
		break;
	case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE:
		rc = store_zero(st, id, (uint64_t)off, (uint64_t)len, 1);
		break;
	case FALLOC_FL_ZERO_RANGE:
	case FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE:
		rc = store_zero(st, id, (uint64_t)off, (uint64_t)len, mode & FALLOC_FL_KEEP_SIZE);
		break;
	default:
		rc = -EOPNOTSUPP;
		break;
	}
	fuse_reply_err(req, -rc);
}

static void
fo_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	uint64_t res;
	int rc;

	(void)fi;
	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	if ((rc = store_seek(req_store(req), ino_disk(ino), (uint64_t)off, whence, &res)) < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_lseek(req, (off_t)res);
}

const struct fuse_lowlevel_ops fsops = {
	.init		= fo_init,
	.lookup		= fo_lookup,
	.getattr	= fo_getattr,
	.setattr	= fo_setattr,
	.readdir	= fo_readdir,
	.open		= fo_open,
	.release	= fo_release,
	.forget		= fo_forget,
	.forget_multi	= fo_forget_multi,
	.read		= fo_read,
	.write		= fo_write,
	.flush		= fo_flush,
	.fsync		= fo_fsync,
	.create		= fo_create,
	.mknod		= fo_mknod,
	.mkdir		= fo_mkdir,
	.symlink	= fo_symlink,
	.link		= fo_link,
	.unlink		= fo_unlink,
	.rmdir		= fo_rmdir,
	.rename		= fo_rename,
	.statfs		= fo_statfs,
	.fallocate	= fo_fallocate,
	.lseek		= fo_lseek,
};
