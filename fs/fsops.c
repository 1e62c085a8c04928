/*
 * fsops: the FUSE low-level operations on open files: open, read, write,
 * flush, fallocate, lseek, copy_file_range (dirops.c has the ones on names).
 *
 * An open disk's fi->fh is its id (inode - 1, worker.h); a template file
 * (.templates/NAME, read-only) is named by its inode alone.  Never a
 * pointer: a replacement worker serves the files its predecessor opened.  Each op is named
 * after its slot (fo_read for .read), calls the store, and replies exactly
 * once.  Store calls return 0/bytes or a negative errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "dirops.h"
#include "hlog.h"
#include "inode.h"

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

static void
fo_init(void *userdata, struct fuse_conn_info *conn)
{
	dirops_init(((const struct worker *)userdata)->blocks_used);
	/* write-through: every write reaches the log before it is acknowledged */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	session_conn_init(conn);
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static void
fo_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct template_attr ta;
	struct disk_attr a;
	uint64_t id;
	int rc;

	switch (ino_kind(ino, &id)) {
	case INO_KIND_DISK:
		break;
	case INO_KIND_TMPL:
		if ((fi->flags & O_ACCMODE) != O_RDONLY)
			rc = -EROFS;
		else
			rc = store_template_get(req_store(req), id, &ta);
		if (rc < 0)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_open(req, fi);
		return;
	default:
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* a snapshot is read-only: say so at open, not at the first write */
	if ((fi->flags & O_ACCMODE) != O_RDONLY &&
	    store_getattr(req_store(req), id, &a) == 0 && a.snapshot) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if ((rc = store_open_disk(req_store(req), id)) < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	/*
	 * With atomic O_TRUNC (libfuse asks for it) the kernel leaves the
	 * truncate to the open: `echo x > disk` must not keep the old tail.
	 * A resent open truncates again: its caller has not written yet.
	 */
	if ((fi->flags & O_TRUNC) && (rc = store_resize(req_store(req), id, 0, 0)) < 0) {
		store_release_disk(req_store(req), id);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = id;
	/* every change goes through this mount, so cached pages stay valid */
	fi->keep_cache = 1;
	session_reply_open(req, NULL, fi);
}

static void
fo_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	uint64_t id;

	(void)fi;
	if (ino_kind(ino, &id) == INO_KIND_DISK)
		store_release_disk(req_store(req), id);
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
	uint64_t start = (uint64_t)clock_mono_ns(), id;
	char *buf;
	ssize_t n;

	if (reply_bad_offset(req, off))
		return;
	if (!(buf = read_buf_get(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (ino_kind(ino, &id) == INO_KIND_TMPL) {
		n = store_template_read(w->st, id, buf, size, (uint64_t)off);
	} else {
		n = store_read_from(w->st, id, buf, size, (uint64_t)off, &src);
		/* counted before the reply: a status that follows the answer sees it */
		iostat_count(w->ctl, id, CTL_IO_READ, n, &src, start);
	}
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
	uint64_t id;

	(void)datasync;
	(void)fi;
	if (ino_kind(ino, &id) != INO_KIND_DISK)
		fuse_reply_err(req, 0);		/* a template file: nothing of ours to flush */
	else
		fuse_reply_err(req, -store_sync(req_store(req), id));
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
	uint64_t id, res;
	int rc;

	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	if (ino_kind(ino, &id) == INO_KIND_TMPL) {
		/* a template file is data to its end (never ENOSYS: that would end lseek for the mount) */
		struct template_attr ta;
		if ((rc = store_template_get(req_store(req), id, &ta)) < 0)
			fuse_reply_err(req, -rc);
		else if ((uint64_t)off >= ta.size)
			fuse_reply_err(req, ENXIO);
		else
			fuse_reply_lseek(req, whence == SEEK_HOLE ? (off_t)ta.size : off);
		return;
	}
	if ((rc = store_seek(req_store(req), id, (uint64_t)off, whence, &res)) < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_lseek(req, (off_t)res);
}

/*
 * A copy inside the mount (cp, qemu-img convert -C): the store shares what
 * it can (share.c).  Never EOPNOTSUPP or EXDEV: the kernel would then copy
 * by reads and writes through the page cache for the rest of the mount.
 */
static void
fo_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
    struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
    struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct store *st = req_store(req);
	uint64_t in, out;
	enum ino_kind kin = ino_kind(ino_in, &in);
	ssize_t n;

	(void)fi_out;
	if (reply_bad_offset(req, off_in) || reply_bad_offset(req, off_out))
		return;
	if (flags != 0)
		n = -EINVAL;
	else if (ino_kind(ino_out, &out) != INO_KIND_DISK)
		n = -EROFS;
	else if (kin == INO_KIND_TMPL)
		n = store_copy_template(st, in, (uint64_t)off_in, out, (uint64_t)off_out, len);
	else if (kin == INO_KIND_DISK)
		n = store_copy_range(st, in, (uint64_t)off_in, out, (uint64_t)off_out, len);
	else
		n = -EISDIR;
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void
fsops_fill(struct fuse_lowlevel_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	dirops_fill(ops);
	ops->init = fo_init;
	ops->open = fo_open;
	ops->release = fo_release;
	ops->read = fo_read;
	ops->write = fo_write;
	ops->flush = fo_flush;
	ops->fsync = fo_fsync;
	ops->fallocate = fo_fallocate;
	ops->lseek = fo_lseek;
	ops->copy_file_range = fo_copy_file_range;
}
