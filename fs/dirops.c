/*
 * dirops: the FUSE low-level operations on names: lookup, attributes,
 * listing, create, mkdir, unlink, rmdir, rename.  fsops.c has the ones on
 * open files' bytes.
 *
 * The tree the mount shows (inode numbers: worker.h):
 *
 *   /                      the root: disks and directories (dirs.c)
 *   /DIR/.../DISK          a disk is a regular file, named by its path
 *   /.snapshots/           read-only, not listed in the root (as ZFS hides
 *     DIR/.../DISK@SNAP    .zfs): the tree again, each directory holding
 *                          the snapshots of its disks
 *   /.templates/NAME       read-only, not listed: the template files, so a
 *                          qcow2 overlay can name one as its backing file and
 *                          a copy of one is a clone of it (share.c)
 *
 * Creating a regular file (create, mknod S_IFREG) makes a disk of no
 * template; mkdir, rmdir and rename work at any depth.  Links, symlinks and
 * special files are refused with EPERM; any change in .snapshots or
 * .templates with EROFS; each with a line in the log.
 *
 * Each op is named after its slot (do_lookup for .lookup), calls the store
 * (0 or -errno), and replies exactly once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dirops.h"
#include "hlog.h"
#include "inode.h"

#define SNAPDIR_NAME	".snapshots"
#define TMPLDIR_NAME	".templates"
/*
 * A disk's st_blksize: the chunk tools copy in (libvirt's vol-clone writes
 * the non-zero chunks of this size, so 4 KiB made a record, and an extent,
 * per 4 KiB: 1,269 extents where the source had 21).
 */
#define DISK_BLKSIZE	65536
#define ENTRY_TIMEOUT	1.0
#define ATTR_TIMEOUT	1.0
/*
 * readdir cookies: 1 ".", 2 "..", then DIR_COOKIE_BASE + a disk's id, then
 * DIR_COOKIE_DIRS + a directory's id (in .templates: DIR_COOKIE_BASE + index)
 */
#define DIR_COOKIE_BASE	2
#define DIR_COOKIE_DIRS	((off_t)1 << 50)

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif

/* The root and the read-only directories have no stored times: when this worker started. */
static time_t start_time;
/*
 * st_blocks of a clone of a template: its size (the default), or the log
 * and template bytes it reads from (-o blocks=used, what every other disk
 * shows).  coreutils' cp (9.1) reads and writes a file whose st_blocks says
 * it is sparse, and asks copy_file_range (which shares) only of one that
 * looks full; clones of sparse templates look sparse.  A clone may read
 * all of its template, whose blocks it shares, so what is "its" has no one
 * answer; hcowctl status says what each disk holds.  Disks of no template
 * (libvirt's volumes, qemu-img's files) show what they hold, so that
 * libvirt sees them thin and lets them shrink.
 */
static int blocks_used;

struct store *
req_store(fuse_req_t req)
{
	return ((struct worker *)fuse_req_userdata(req))->st;
}

void
dirops_init(int used)
{
	start_time = time(NULL);
	blocks_used = used;
}

static void
ns_time(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = ns ? ns / 1000000000 : start_time;
	ts->tv_nsec = ns ? ns % 1000000000 : 0;
}

static void
dir_stat(fuse_ino_t ino, const struct dir_attr *a, int readonly, struct stat *s)
{
	memset(s, 0, sizeof(*s));
	s->st_ino = ino;
	s->st_mode = S_IFDIR | (readonly ? 0555 : (a->mode & 07777));
	s->st_nlink = 2 + a->subdirs;
	s->st_uid = a->uid;
	s->st_gid = a->gid;
	s->st_blksize = 4096;
	ns_time(&s->st_mtim, a->mtime_ns);
	ns_time(&s->st_ctim, a->ctime_ns);
	s->st_atim = s->st_mtim;
}

void
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
	if (!blocks_used && a->template_name[0] && a->blocks < (a->size + 511) / 512)
		s->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	s->st_blksize = DISK_BLKSIZE;
	ns_time(&s->st_mtim, a->mtime_ns);
	s->st_atim = s->st_mtim;
	ns_time(&s->st_ctim, a->ctime_ns);
}

static void
tmpl_stat(const struct template_attr *a, struct stat *s)
{
	memset(s, 0, sizeof(*s));
	s->st_ino = INO_TMPL | a->id;
	s->st_mode = S_IFREG | 0444;
	s->st_nlink = 1;
	s->st_size = (off_t)a->size;
	/* as a disk's: a copy of it shares only if it does not look sparse (blocks_used) */
	s->st_blocks = (blkcnt_t)(blocks_used ? a->blocks : (a->size + 511) / 512);
	s->st_blksize = DISK_BLKSIZE;
	ns_time(&s->st_mtim, a->mtime_ns);
	s->st_atim = s->st_ctim = s->st_mtim;
}

/* The stat of any inode: 0 or -errno. */
static int
ino_stat(struct store *st, fuse_ino_t ino, struct stat *s)
{
	struct template_attr ta;
	struct disk_attr a;
	struct dir_attr da;
	uint64_t id;
	enum ino_kind kind = ino_kind(ino, &id);
	int rc;

	switch (kind) {
	case INO_KIND_DIR:
	case INO_KIND_SNAPDIR:
		if ((rc = store_dir_get(st, id, &da)) == 0)
			dir_stat(ino, &da, kind == INO_KIND_SNAPDIR, s);
		return rc;
	case INO_KIND_TMPLDIR:
		memset(&da, 0, sizeof(da));
		dir_stat(ino, &da, 1, s);
		return 0;
	case INO_KIND_TMPL:
		if ((rc = store_template_get(st, id, &ta)) == 0)
			tmpl_stat(&ta, s);
		return rc;
	case INO_KIND_DISK:
		break;
	}
	if ((rc = store_getattr(st, id, &a)) == 0)
		disk_stat(&a, s);
	return rc;
}

/*
 * The path of name in directory parent (a directory or a .snapshots view)
 * into out: 0, -ENOENT (no such directory), -ENAMETOOLONG.
 */
static int
child_path(struct store *st, uint64_t dir_id, const char *name, char *out, size_t len)
{
	struct dir_attr da;
	int rc;

	if ((rc = store_dir_get(st, dir_id, &da)) < 0)
		return rc;
	if ((size_t)snprintf(out, len, "%s%s%s", da.path, da.path[0] ? "/" : "", name) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* Reply with the entry of ino (looked up once more: the kernel counts each reply). */
static void
reply_entry(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_entry_param e;
	int rc;

	memset(&e, 0, sizeof(e));
	if ((rc = ino_stat(req_store(req), ino, &e.attr)) < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	e.ino = ino;
	e.generation = 1;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void
do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct store *st = req_store(req);
	struct template_attr ta;
	struct disk_attr a;
	struct dir_attr da;
	char path[NAME_MAX_LEN + 2 + NAME_MAX_LEN];
	uint64_t pid;
	int rc;

	switch (ino_kind(parent, &pid)) {
	case INO_KIND_TMPLDIR:
		rc = store_template_lookup(st, name, &ta);
		if (rc == 0)
			reply_entry(req, INO_TMPL | ta.id);
		break;
	case INO_KIND_DIR:
		if (parent == ROOT_INO && strcmp(name, SNAPDIR_NAME) == 0) {
			reply_entry(req, SNAPDIR_INO);
			return;
		}
		if (parent == ROOT_INO && strcmp(name, TMPLDIR_NAME) == 0) {
			reply_entry(req, TMPLDIR_INO);
			return;
		}
		if ((rc = child_path(st, pid, name, path, sizeof(path))) < 0)
			break;
		if ((rc = store_dir_lookup(st, path, &da)) == 0)
			reply_entry(req, dir_ino(da.id));
		else if ((rc = store_lookup(st, path, &a)) == 0)
			reply_entry(req, a.id + 1);
		break;
	case INO_KIND_SNAPDIR:
		/* the directories again, and in each, its disks' snapshots by DISK@SNAP */
		if ((rc = child_path(st, pid, name, path, sizeof(path))) < 0)
			break;
		if (!strchr(name, '@') && (rc = store_dir_lookup(st, path, &da)) == 0)
			reply_entry(req, SNAPDIR_INO | da.id);
		else if (strchr(name, '@') && (rc = store_lookup_full(st, path, &a)) == 0)
			reply_entry(req, a.id + 1);
		else
			rc = -ENOENT;
		break;
	default:
		rc = -ENOTDIR;
		break;
	}
	if (rc < 0)
		fuse_reply_err(req, -rc);
}

static void
do_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat s;
	int rc;

	(void)fi;
	if ((rc = ino_stat(req_store(req), ino, &s)) < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &s, ATTR_TIMEOUT);
}

/* The store's mask and mtime for what setattr asks. */
static int
setattr_mask(const struct stat *attr, int to_set, int64_t *mtime)
{
	int mask = 0;

	if (to_set & FUSE_SET_ATTR_MODE)
		mask |= STORE_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		mask |= STORE_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		mask |= STORE_SET_GID;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		*mtime = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		mask |= STORE_SET_MTIME;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		*mtime = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
		mask |= STORE_SET_MTIME;
	}
	return mask;
}

static void
do_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
    struct fuse_file_info *fi)
{
	struct store *st = req_store(req);
	struct stat s;
	int64_t mtime = 0;
	int mask = setattr_mask(attr, to_set, &mtime), rc = 0;
	uint64_t id;

	(void)fi;
	switch (ino_kind(ino, &id)) {
	case INO_KIND_DIR:
		if (id == 0)
			rc = mask ? -EPERM : 0;	/* the root's attributes are the mount's */
		else if (to_set & FUSE_SET_ATTR_SIZE)
			rc = -EISDIR;
		else if (mask)
			rc = store_dir_setattr(st, id, mask, attr->st_mode, attr->st_uid,
			    attr->st_gid, mtime);
		break;
	case INO_KIND_DISK:
		if (to_set & FUSE_SET_ATTR_SIZE)
			rc = store_resize(st, id, (uint64_t)attr->st_size, 0);
		if (rc == 0 && mask)
			rc = store_setattr(st, id, mask, attr->st_mode, attr->st_uid,
			    attr->st_gid, mtime);
		break;
	default:
		rc = -EROFS;
		break;
	}
	if (rc == 0)
		rc = ino_stat(st, ino, &s);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &s, ATTR_TIMEOUT);
}

/* Add one entry at cookie off; 0 if it did not fit (the kernel asks again from there). */
static int
add_entry(fuse_req_t req, char *buf, size_t size, size_t *used, const char *name,
    const struct stat *s, off_t off)
{
	size_t n = fuse_add_direntry(req, buf + *used, size - *used, name, s, off);

	if (*used + n > size)
		return 0;
	*used += n;
	return 1;
}

static const char *
leaf_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* The entries of a directory (snaps: its .snapshots view) from cookie off on. */
static void
list_dir(fuse_req_t req, uint64_t id, int snaps, char *buf, size_t size, off_t off,
    size_t *used)
{
	struct store *st = req_store(req);
	struct dir_attr self, da;
	struct disk_attr a;
	struct stat s;

	if (store_dir_get(st, id, &self) < 0)
		return;
	if (off < DIR_COOKIE_DIRS) {
		for (uint64_t after = off > DIR_COOKIE_BASE ? (uint64_t)off - DIR_COOKIE_BASE : 0;
		    (snaps ? store_next_snapshot_in(st, self.path, after, &a) :
		    store_next_in(st, self.path, after, &a)) == 0; after = a.id) {
			disk_stat(&a, &s);
			if (!add_entry(req, buf, size, used, leaf_of(a.name), &s,
			    (off_t)(a.id + DIR_COOKIE_BASE)))
				return;
		}
	}
	for (uint64_t after = off > DIR_COOKIE_DIRS ? (uint64_t)(off - DIR_COOKIE_DIRS) : 0;
	    store_dir_next(st, self.path, after, &da) == 0; after = da.id) {
		fuse_ino_t dino = snaps ? SNAPDIR_INO | da.id : dir_ino(da.id);
		dir_stat(dino, &da, snaps, &s);
		if (!add_entry(req, buf, size, used, leaf_of(da.path), &s,
		    DIR_COOKIE_DIRS + (off_t)da.id))
			return;
	}
}

/* The template files, cookie DIR_COOKIE_BASE + 1 + their index. */
static void
list_templates(fuse_req_t req, char *buf, size_t size, off_t off, size_t *used)
{
	char name[256];
	struct stat s;

	memset(&s, 0, sizeof(s));
	s.st_mode = S_IFREG | 0444;
	for (size_t i = off > DIR_COOKIE_BASE ? (size_t)(off - DIR_COOKIE_BASE) : 0;
	    store_template_at(req_store(req), i, name, sizeof(name)) == 0; i++) {
		s.st_ino = INO_TMPL;	/* the version is known at lookup */
		if (!add_entry(req, buf, size, used, name, &s, DIR_COOKIE_BASE + (off_t)i + 1))
			return;
	}
}

static void
do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct store *st = req_store(req);
	enum ino_kind kind;
	struct stat s;
	size_t used = 0;
	uint64_t id;
	char *buf;
	int rc;

	(void)fi;
	kind = ino_kind(ino, &id);
	if (kind == INO_KIND_DISK || kind == INO_KIND_TMPL) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if ((rc = ino_stat(st, ino, &s)) < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (!(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off < 1 && !add_entry(req, buf, size, &used, ".", &s, 1))
		goto out;
	/* ".." is the kernel's to resolve: its inode here is only a hint */
	if (off < 2 && !add_entry(req, buf, size, &used, "..", &s, 2))
		goto out;
	if (kind == INO_KIND_TMPLDIR)
		list_templates(req, buf, size, off, &used);
	else
		list_dir(req, id, kind == INO_KIND_SNAPDIR, buf, size, off, &used);
out:
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/*
 * The path for a new name in parent: 0, or -errno (EROFS in the read-only
 * directories, with a line in the log saying what was refused).
 */
static int
new_path(fuse_req_t req, fuse_ino_t parent, const char *what, const char *name, char *path,
    size_t len)
{
	uint64_t id;
	const char *why;

	if (ino_kind(parent, &id) != INO_KIND_DIR) {
		hlog(HLOG_INFO, "refused to %s '%s' in a read-only directory", what, name);
		return -EROFS;
	}
	if (name_check(name, &why) < 0) {
		hlog(HLOG_INFO, "refused to %s '%s': %s", what, name, why);
		return -EINVAL;
	}
	return child_path(req_store(req), id, name, path, len);
}

/* Make a disk of no template at name in parent; its entry, or -errno. */
static int
create_disk(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_entry_param *e)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct store *st = req_store(req);
	char path[NAME_MAX_LEN + 2 + NAME_MAX_LEN], err[256] = "";
	struct disk_attr a;
	int rc;

	if ((rc = new_path(req, parent, "create", name, path, sizeof(path))) < 0)
		return rc;
	if ((rc = store_create(st, path, NULL, 0, NULL, &a, err, sizeof(err))) < 0) {
		if (rc == -EEXIST && store_lookup(st, path, &a) == 0 && session_request_resent())
			rc = 0;		/* made by the worker that died before answering */
		else if (rc != -EEXIST)
			hlog(HLOG_INFO, "refused to create '%s': %s", path, err);
	}
	/* the creator owns it, with the mode it asked (its umask applied) */
	if (rc == 0 && (rc = store_setattr(st, a.id, STORE_SET_MODE | STORE_SET_UID | STORE_SET_GID,
	    mode & ~ctx->umask, ctx->uid, ctx->gid, 0)) == 0)
		rc = store_getattr(st, a.id, &a);
	if (rc < 0)
		return rc;
	memset(e, 0, sizeof(*e));
	e->ino = a.id + 1;
	e->generation = 1;
	e->attr_timeout = ATTR_TIMEOUT;
	e->entry_timeout = ENTRY_TIMEOUT;
	disk_stat(&a, &e->attr);
	return 0;
}

static void
do_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int rc;

	if ((rc = create_disk(req, parent, name, mode, &e)) < 0 ||
	    (rc = store_open_disk(req_store(req), e.ino - 1)) < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = e.ino - 1;
	fi->keep_cache = 1;
	if (session_reply_open(req, &e, fi) != 0)
		store_release_disk(req_store(req), e.ino - 1);	/* the caller was interrupted */
}

static void
do_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fuse_entry_param e;
	int rc;

	(void)rdev;
	if (!S_ISREG(mode)) {
		hlog(HLOG_INFO, "refused to make special file '%s': only disk images live here", name);
		fuse_reply_err(req, EPERM);
		return;
	}
	if ((rc = create_disk(req, parent, name, mode, &e)) < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void
do_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct store *st = req_store(req);
	char path[NAME_MAX_LEN + 2 + NAME_MAX_LEN];
	struct dir_attr da;
	int rc;

	if ((rc = new_path(req, parent, "make directory", name, path, sizeof(path))) == 0 &&
	    (rc = store_mkdir(st, path, mode & ~ctx->umask, ctx->uid, ctx->gid, &da)) == -EEXIST &&
	    session_request_resent() && store_dir_lookup(st, path, &da) == 0)
		rc = 0;		/* made by the worker that died before answering */
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, dir_ino(da.id));
}

static void
do_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	(void)parent;
	hlog(HLOG_INFO, "refused to make symlink '%s': only disk images live here", name);
	fuse_reply_err(req, EPERM);
}

static void
do_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	(void)ino;
	(void)parent;
	hlog(HLOG_INFO, "refused to make hard link '%s': a disk has one name (cp makes a "
	    "copy that shares its data)", name);
	fuse_reply_err(req, EPERM);
}

/* The path of name in a directory where names may change: 0, or -errno. */
static int
changing_path(fuse_req_t req, fuse_ino_t parent, const char *name, char *path, size_t len)
{
	uint64_t id;

	if (ino_kind(parent, &id) != INO_KIND_DIR)
		/* snapshots are deleted with hcowctl: an rm -rf of the mount keeps them */
		return -EROFS;
	if (parent == ROOT_INO && (strcmp(name, SNAPDIR_NAME) == 0 ||
	    strcmp(name, TMPLDIR_NAME) == 0))
		return -EROFS;
	return child_path(req_store(req), id, name, path, len);
}

/* unlink and rmdir: remove name from parent with the store's call, and reply. */
static void
remove_name(fuse_req_t req, fuse_ino_t parent, const char *name,
    int (*remove)(struct store *st, const char *path))
{
	char path[NAME_MAX_LEN + 2 + NAME_MAX_LEN];
	int rc;

	if ((rc = changing_path(req, parent, name, path, sizeof(path))) == 0 &&
	    (rc = remove(req_store(req), path)) == -ENOENT && session_request_resent())
		rc = 0;		/* done by the worker that died before answering */
	fuse_reply_err(req, -rc);
}

static void
do_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, store_unlink);
}

static void
do_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, store_rmdir);
}

static void
do_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
    const char *newname, unsigned int flags)
{
	char from[NAME_MAX_LEN + 2 + NAME_MAX_LEN], to[NAME_MAX_LEN + 2 + NAME_MAX_LEN];
	struct store *st = req_store(req);
	struct disk_attr a;
	struct dir_attr da;
	int rc;

	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((rc = changing_path(req, parent, name, from, sizeof(from))) == 0 &&
	    (rc = changing_path(req, newparent, newname, to, sizeof(to))) == 0)
		rc = store_rename(st, from, to, flags & RENAME_NOREPLACE);
	/* done by the worker that died before answering: the source is gone, the target is there */
	if (rc == -ENOENT && session_request_resent() &&
	    (store_lookup(st, to, &a) == 0 || store_dir_lookup(st, to, &da) == 0))
		rc = 0;
	fuse_reply_err(req, -rc);
}

/* The kernel dropped the inode: an unlinked disk may be purged now (store.h). */
static void
forget_one(struct store *st, fuse_ino_t ino)
{
	uint64_t id;

	if (ino_kind(ino, &id) == INO_KIND_DISK)
		store_forget_disk(st, id);
}

static void
do_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)nlookup;
	forget_one(req_store(req), ino);
	fuse_reply_none(req);
}

static void
do_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(req_store(req), forgets[i].ino);
	fuse_reply_none(req);
}

static void
do_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int rc;

	(void)ino;
	if ((rc = store_statfs(req_store(req), &sv)) < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &sv);
}

void
dirops_fill(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = do_lookup;
	ops->getattr = do_getattr;
	ops->setattr = do_setattr;
	ops->readdir = do_readdir;
	ops->create = do_create;
	ops->mknod = do_mknod;
	ops->mkdir = do_mkdir;
	ops->symlink = do_symlink;
	ops->link = do_link;
	ops->unlink = do_unlink;
	ops->rmdir = do_rmdir;
	ops->rename = do_rename;
	ops->forget = do_forget;
	ops->forget_multi = do_forget_multi;
	ops->statfs = do_statfs;
}
