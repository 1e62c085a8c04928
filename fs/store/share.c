/*
 * share: copy_file_range inside the mount.  A copy shares the source's
 * extents where it can, and copies bytes where it cannot.
 *
 * Design notes
 *
 * `cp vm1.img vm2.img` (coreutils asks copy_file_range, once per data run
 * that SEEK_DATA finds) and `qemu-img convert -C` should cost what a clone
 * costs: a record, not the bytes.  One record does it: REC_SHARE (logfmt.h)
 * "dst's [off, off+len) becomes what src maps there", applied by dmap_share
 * to the overlay (records, zeros, and unmapped ranges, which read the
 * template), and by replay.  It is lifecycle.c's REC_CLONE for a range, and
 * it keeps its rule: a disk reads only records of its family, so a range is
 * shared only between disks of one family and template, at equal offsets
 * (an extent's bytes are at its record's own offset).
 *
 * A blank destination (size 0 and nothing in the log, as `cp` makes it; or
 * a disk of no template that reads only zeros, as `qemu-img convert` makes
 * it: truncated to size, a block of zeros written at 0) first joins the
 * source's family and template (adopt).  In order:
 *   1. a REC_ZERO over what the disk and the new template hold, synced:
 *      no range may read the disk's own records (of the family it leaves)
 *      or the template (where nothing was copied); zeros past the disk's
 *      end are nothing.  Appended only if the disk is as it was checked
 *      (its mtime moves with every record), so a concurrent write is never
 *      wiped: the copy then goes by bytes
 *   2. the catalog row takes the template, family and origin
 *   3. memory (ns_lock exclusive)
 * A crash after any step leaves a blank disk that reads what it should.
 * Copying from a template file (`cp .templates/deb12.img vm9.img`) adopts
 * the template, then shares with aux 0: the range reads the template, as a
 * clone made by `hcowctl create` does.
 *
 * A copy of a whole disk into a blank one is a REC_CLONE (lifecycle.c)
 * instead, which shares the source's committed tree: its cost does not grow
 * with the source's map.
 *
 * Everything else (other offsets, another family with data of its own,
 * another template) is copied by bytes, in chunks: the copy is exact either
 * way, only its cost differs.  A copy, like a write, is durable at the next
 * flush; the adoption is durable at once.
 *
 * Error convention: bytes copied (short only at the source's end, or when a
 * chunk fails after others were copied) or -errno.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hlog.h"
#include "store_int.h"

#define COPY_CHUNK	(1u << 20)	/* bytes a byte copy moves per read and write */

/*
 * What a destination holds, to tell whether it may take another family and
 * template, and whether it changed meanwhile (every record sets mtime).
 */
struct dst_state {
	uint64_t	 size, log_bytes;
	int64_t		 mtime_ns;
	int		 no_template;
	int		 has_snapshots;
};

/* d's state; ns_lock held. */
static void
dst_state_get(struct store *st, struct disk *d, struct dst_state *s)
{
	pthread_rwlock_rdlock(&d->lock);
	s->size = d->size;
	s->log_bytes = d->log_bytes;
	s->mtime_ns = d->mtime_ns;
	s->no_template = d->tmpl == st->no_tmpl;
	pthread_rwlock_unlock(&d->lock);
	s->has_snapshots = disk_has_snapshots(st, d);
}

static int
dst_state_same(const struct dst_state *a, const struct dst_state *b)
{
	return a->size == b->size && a->log_bytes == b->log_bytes && a->mtime_ns == b->mtime_ns;
}

/*
 * Blank: holds nothing (size 0, no log bytes), or, with no template and at
 * most COPY_CHUNK in the log, may read only zeros (what `qemu-img convert`
 * makes before it copies: a file truncated to size, zeros written at 0);
 * adopt() reads to be sure.  Never a disk with snapshots: a rollback gives
 * it their map back, which reads records of the family it would leave.
 */
static int
may_be_blank(const struct dst_state *s)
{
	return !s->has_snapshots &&
	    ((s->size == 0 && s->log_bytes == 0) || (s->no_template && s->log_bytes <= COPY_CHUNK));
}

static int
add_extent(const struct extent *e, void *arg)
{
	struct extent_batch *all = arg;

	if (all->n == all->cap)
		return 1;
	all->e[all->n++] = *e;
	return 0;
}

/* Does disk id, of no template, read only zeros (its log bytes, at most COPY_CHUNK, read)? */
static int
reads_zeros(struct store *st, uint64_t id)
{
	struct extent v[64], batch[64];
	struct extent_batch b = { .e = batch, .cap = 64, .log_only = 1 };
	struct extent_batch all = { .e = v, .cap = 64 };
	char *buf = malloc(COPY_CHUNK);
	int zero = buf != NULL;

	if (zero && disk_extents_each(st, id, 0, UINT64_MAX, &b, add_extent, &all) != 0)
		zero = 0;	/* more pieces than a blank file has */
	for (size_t i = 0; zero && i < all.n; i++) {
		uint64_t len = v[i].len < COPY_CHUNK ? v[i].len : COPY_CHUNK;
		zero = store_read(st, id, buf, len, v[i].loff) == (ssize_t)len &&
		    buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0;
	}
	free(buf);
	return zero;
}

/*
 * Step 1 of an adoption: a synced REC_ZERO over what dst holds and t
 * holds, so that no range reads dst's own records (whose family it leaves)
 * or t's bytes (where nothing was copied), if dst is still as s says.
 */
static int
hide_all(struct store *st, uint64_t dst_id, const struct tmpl *t, const struct dst_state *s)
{
	struct rec_header h = { 0 };
	struct dst_state now;
	struct disk *dst;
	int rc = 0;

	pthread_rwlock_rdlock(&st->ns_lock);
	pthread_mutex_lock(&st->log_lock);
	if (!(dst = disk_get(st, dst_id))) {
		rc = -ENOENT;
	} else {
		dst_state_get(st, dst, &now);
		h.type = REC_ZERO;
		h.disk_id = dst_id;
		h.length = t != dst->tmpl && t->rec.size > now.size ? t->rec.size : now.size;
		if (!dst_state_same(s, &now))
			rc = -EAGAIN;	/* written meanwhile: copy bytes */
		else if (h.length)
			rc = disk_log(st, dst, &h, NULL, NULL);
	}
	pthread_mutex_unlock(&st->log_lock);
	pthread_rwlock_unlock(&st->ns_lock);
	return rc < 0 || !h.length ? rc : wlog_sync(st->log, wlog_tail(st->log));
}

/* dst (blank) joins template t and family (a disk's, or its own), copied from origin.  cat_lock held. */
static int
adopt(struct store *st, uint64_t dst_id, struct tmpl *t, uint64_t family, int64_t origin)
{
	struct dst_state s;
	struct disk *dst;
	int rc;

	/* the disk stays: purging needs cat_lock, which the caller holds */
	pthread_rwlock_rdlock(&st->ns_lock);
	if ((dst = disk_get(st, dst_id)) != NULL)
		dst_state_get(st, dst, &s);
	pthread_rwlock_unlock(&st->ns_lock);
	if (!dst)
		return -ENOENT;
	if (!may_be_blank(&s) || (s.log_bytes && !reads_zeros(st, dst_id)))
		return -EAGAIN;
	if ((rc = hide_all(st, dst_id, t, &s)) < 0)
		return rc;
	if (!family)
		family = (uint64_t)dst->id;
	if ((rc = catalog_disk_adopt(st->cat, dst->id, t->rec.id,
	    family == (uint64_t)dst->id ? 0 : (int64_t)family, origin)) < 0) {
		hlog(HLOG_WARN, "disk '%s': cannot record its copy's template: %s", dst->name,
		    catalog_error(st->cat));
		return rc;
	}
	pthread_rwlock_wrlock(&st->ns_lock);
	dst->tmpl = t;
	dst->family = family;
	dst->origin = origin;
	pthread_rwlock_unlock(&st->ns_lock);
	atomic_store(&st->live_pass_ns, 0);	/* what is shared changed: count again (live.c) */
	hlog(HLOG_INFO, "disk '%s' takes template '%s' and family %llu for a copy into it",
	    dst->name, t->rec.name[0] ? t->rec.name : "-", (unsigned long long)family);
	return 0;
}

/* Append and apply a REC_SHARE: dst's [off, off+len) becomes src's (NULL: the template's). */
static int
share_range(struct store *st, uint64_t dst_id, uint64_t src_id, uint64_t off, uint64_t len)
{
	struct rec_header h = { 0 };
	struct disk *dst, *src = NULL;
	uint64_t laddr, before;
	int rc = 0;

	pthread_rwlock_rdlock(&st->ns_lock);
	if (!(dst = disk_get(st, dst_id)) || (src_id && !(src = disk_get(st, src_id))))
		rc = -ENOENT;
	else if (src && (src->family != dst->family || src->tmpl != dst->tmpl))
		rc = -EAGAIN;	/* changed meanwhile: copy bytes */
	if (rc < 0) {
		pthread_rwlock_unlock(&st->ns_lock);
		return rc;
	}
	h.type = REC_SHARE;
	h.disk_id = dst_id;
	h.offset = off;
	h.length = len;
	rec_set_aux(&h, src_id);
	pthread_mutex_lock(&st->log_lock);
	before = dmap_count(dst);
	if ((rc = wlog_append(st->log, &h, NULL, &laddr)) == 0)
		disk_logged(st, dst);
	if (rc == 0 && (rc = dmap_share(dst, src, off, len, laddr)) < 0)
		hlog(HLOG_ERROR, "disk '%s': a copy is in the log but not in memory (%s); it "
		    "takes effect at the next mount", dst->name, strerror(-rc));
	st->extents += dmap_count(dst) - before;
	pthread_rwlock_wrlock(&dst->lock);
	dst->mtime_ns = now_ns();
	pthread_rwlock_unlock(&dst->lock);
	pthread_mutex_unlock(&st->log_lock);
	pthread_rwlock_unlock(&st->ns_lock);
	if (rc == 0)
		checkpoint_nudge(st);
	return rc;
}

/*
 * All of src into blank dst: a REC_CLONE, which shares src's committed
 * tree instead of copying its extents into dst's overlay (a disk of a
 * million extents copies in milliseconds, and its index pages are not
 * written twice).  -EAGAIN if it is not that case.  cat_lock held.
 */
static int
copy_whole(struct store *st, uint64_t src_id, uint64_t dst_id, uint64_t len)
{
	struct dst_state ds = { 0 };
	struct disk *src, *dst;
	int whole;

	pthread_rwlock_rdlock(&st->ns_lock);
	src = disk_get(st, src_id);
	dst = disk_get(st, dst_id);
	if (dst)
		dst_state_get(st, dst, &ds);
	/* nothing of dst's own may be lost: after an adoption it holds zeros at most */
	whole = src && dst && src != dst && ds.log_bytes == 0 && ds.size <= len;
	if (whole) {
		pthread_rwlock_rdlock(&src->lock);
		whole = len == src->size;
		pthread_rwlock_unlock(&src->lock);
	}
	pthread_rwlock_unlock(&st->ns_lock);
	/*
	 * the disks stay: purging needs cat_lock, which the caller holds; src
	 * may be resized before the clone is made: the clone checks it again
	 */
	return whole ? disk_copy_whole(st, src, dst, len, ds.mtime_ns) : -EAGAIN;
}

/* Where a copy reads from: a disk (id) or a template file (t). */
struct copy_src {
	uint64_t	 id;
	struct tmpl	*t;
};

static ssize_t
src_read(struct store *st, const struct copy_src *s, char *buf, size_t len, uint64_t off)
{
	int rc;

	if (!s->t)
		return store_read(st, s->id, buf, len, off);
	if (off >= s->t->rec.size)
		return 0;
	if (len > s->t->rec.size - off)
		len = (size_t)(s->t->rec.size - off);
	rc = tmpl_read(s->t, buf, len, off);
	return rc < 0 ? rc : (ssize_t)len;
}

/* The copy by bytes: chunks read from s and written to dst. */
static ssize_t
copy_bytes(struct store *st, const struct copy_src *s, uint64_t off_in, uint64_t dst_id,
    uint64_t off_out, uint64_t len)
{
	char *buf = malloc(len < COPY_CHUNK ? len : COPY_CHUNK);
	uint64_t done = 0;
	ssize_t rc = 0;

	if (!buf)
		return -ENOMEM;
	while (done < len) {
		size_t n = len - done < COPY_CHUNK ? (size_t)(len - done) : COPY_CHUNK;
		if ((rc = src_read(st, s, buf, n, off_in + done)) <= 0)
			break;
		/* a write past dst's end grows it, as the copy must */
		if ((rc = store_write(st, dst_id, buf, (size_t)rc, off_out + done)) <= 0)
			break;
		done += (uint64_t)rc;
	}
	free(buf);
	return done > 0 ? (ssize_t)done : rc;
}

/*
 * How to copy: 1 share as things are, 2 adopt first, 0 by bytes.  The disks
 * as they are now (the caller holds cat_lock: no other adoption races).
 */
static int
copy_plan(struct store *st, const struct copy_src *s, uint64_t dst_id, uint64_t off_in,
    uint64_t off_out, struct tmpl **t, uint64_t *family)
{
	struct disk *src = NULL, *dst;
	struct dst_state ds;
	int plan = 0;

	if (off_in != off_out)
		return 0;
	pthread_rwlock_rdlock(&st->ns_lock);
	dst = disk_get(st, dst_id);
	if (!s->t)
		src = disk_get(st, s->id);
	if (dst && (src || s->t)) {
		*t = src ? src->tmpl : s->t;
		*family = src ? src->family : 0;
		dst_state_get(st, dst, &ds);
		if (*t == dst->tmpl && (!src || src->family == dst->family))
			plan = 1;
		else if (may_be_blank(&ds))
			plan = 2;	/* adopt() makes sure */
	}
	pthread_rwlock_unlock(&st->ns_lock);
	return plan;
}

/* A copy from s; len already cut at the source's end. */
static ssize_t
copy_from(struct store *st, const struct copy_src *s, uint64_t off_in, uint64_t dst_id,
    uint64_t off_out, uint64_t len, int64_t origin)
{
	struct tmpl *t = NULL;
	uint64_t family = 0;
	int plan, rc = -EAGAIN;

	if (len == 0)
		return 0;
	if (off_out + len < off_out || off_out + len > st->disk_size_max)
		return -EFBIG;
	if (!s->t && s->id == dst_id && off_in == off_out)
		return (ssize_t)len;	/* the range onto itself */
	pthread_mutex_lock(&st->cat_lock);
	plan = copy_plan(st, s, dst_id, off_in, off_out, &t, &family);
	if (plan == 2 && (rc = adopt(st, dst_id, t, family, origin)) == 0)
		plan = 1;
	if (plan == 1 && !s->t && off_in == 0 && (rc = copy_whole(st, s->id, dst_id, len)) != -EAGAIN)
		plan = 0;	/* done (or failed) as a clone */
	if (plan == 1)
		rc = share_range(st, dst_id, s->t ? 0 : s->id, off_out, len);
	pthread_mutex_unlock(&st->cat_lock);
	if (rc == 0)
		return (ssize_t)len;
	if (rc != -EAGAIN)
		return rc;
	return copy_bytes(st, s, off_in, dst_id, off_out, len);
}

/* May dst be copied into?  0, or -EROFS (a read-only store, a snapshot) or -ENOENT. */
static int
dst_writable(struct store *st, uint64_t dst_id)
{
	struct disk_attr a;
	int rc;

	if (st->readonly)
		return -EROFS;
	if ((rc = store_getattr(st, dst_id, &a)) < 0)
		return rc;
	return a.snapshot ? -EROFS : 0;
}

ssize_t
store_copy_range(struct store *st, uint64_t src_id, uint64_t off_in, uint64_t dst_id,
    uint64_t off_out, uint64_t len)
{
	struct copy_src s = { src_id, NULL };
	struct disk_attr a;
	int rc;

	if ((rc = dst_writable(st, dst_id)) < 0 || (rc = store_getattr(st, src_id, &a)) < 0)
		return rc;
	if (off_in >= a.size)
		return 0;
	return copy_from(st, &s, off_in, dst_id, off_out,
	    len < a.size - off_in ? len : a.size - off_in, (int64_t)src_id);
}

ssize_t
store_copy_template(struct store *st, uint64_t tmpl_id, uint64_t off_in, uint64_t dst_id,
    uint64_t off_out, uint64_t len)
{
	struct copy_src s = { 0, NULL };
	uint64_t tsize;
	int rc;

	if ((rc = dst_writable(st, dst_id)) < 0)
		return rc;
	/* templates are never freed while the store is open: the pointer outlives the lock */
	pthread_rwlock_rdlock(&st->ns_lock);
	s.t = tmpl_by_id(st, (int64_t)tmpl_id);
	pthread_rwlock_unlock(&st->ns_lock);
	if (!s.t)
		return -ENOENT;
	tsize = s.t->rec.size;
	if (off_in >= tsize)
		return 0;
	return copy_from(st, &s, off_in, dst_id, off_out, len < tsize - off_in ? len : tsize - off_in, 0);
}
