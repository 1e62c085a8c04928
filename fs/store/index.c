/*
 * index: the file, its meta pages, the io hooks, and the mark that finds the
 * free pages (the design notes are in index.h; index_txn.c holds the
 * transactions, index_tree.c the edits, index_read.c the readers).
 *
 * ix->used is a bitmap over the pages: after a mark, the pages reachable
 * from the last two committed generations (and limbo); the transaction then
 * sets the bits of the pages it takes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "index_int.h"

#define IX_MAP_BYTES	(UINT64_C(64) << 30)	/* the mapping's fixed reservation */
#define IX_GROW_PAGES	2048			/* the file grows by at least 8 MiB */

/* A page's checksum: crc32c of all but its first 4 bytes (where it is kept). */
uint32_t
ix_page_crc(const void *page)
{
	return crc32c(0, (const uint8_t *)page + 4, INDEX_PAGE - 4);
}

/* The io hooks' defaults: the system calls. */
static ssize_t
ix_default_pwrite(void *arg, int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}

/* fdatasync: the pages' bytes and the file's size, not its times. */
static int
ix_default_sync(void *arg, int fd)
{
	return fdatasync(fd);
}

/* A hook's failure as a negative errno: -1 means errno, other negative values are -errno. */
static int
ix_io_error(long r)
{
	if (r == -1)
		return errno ? -errno : -EIO;
	return (int)r;
}

/* Write len bytes at off through the io hook.  0 or a negative errno. */
int
ix_write(struct index *ix, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t w = ix->io.pwrite(ix->io.arg, ix->fd, p, len, (off_t)off);
		if (w < 0)
			return ix_io_error(w);
		if (w == 0)
			return -EIO;
		p += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Sync the file through the io hook.  0 or a negative errno. */
int
ix_sync(struct index *ix)
{
	int r = ix->io.sync(ix->io.arg, ix->fd);

	return r < 0 ? ix_io_error(r) : 0;
}

void
index_set_io(struct index *ix, const struct index_io *io)
{
	static const struct index_io def = { ix_default_pwrite, ix_default_sync, NULL };

	ix->io = io ? *io : def;
}

/*
 * Make the file hold at least pages pages, growing it in large steps so that
 * no page the mapping reaches lies past its end (no SIGBUS).  0, -EFBIG past
 * the reservation, or posix_fallocate's error (-ENOSPC): the file keeps its
 * size and whatever it held.
 */
int
ix_grow(struct index *ix, uint64_t pages)
{
	uint64_t have = atomic_load(&ix->file_pages), want;
	int rc;

	if (pages <= have)
		return 0;
	if (pages * INDEX_PAGE > ix->map_bytes)
		return -EFBIG;
	want = pages > have + have / 8 ? pages : have + have / 8;
	want = (want + IX_GROW_PAGES - 1) / IX_GROW_PAGES * IX_GROW_PAGES;
	if (want * INDEX_PAGE > ix->map_bytes)
		want = pages;
	rc = posix_fallocate(ix->fd, (off_t)(have * INDEX_PAGE), (off_t)((want - have) * INDEX_PAGE));
	if (rc != 0)
		return -rc;
	atomic_store_explicit(&ix->file_pages, want, memory_order_release);
	return 0;
}

/* Make the bitmaps hold at least pages bits (new bits clear).  0 or -ENOMEM. */
static int
ix_bitmap_grow(uint64_t **b, size_t *words, uint64_t pages)
{
	size_t need = (size_t)(pages + 63) / 64, cap;
	uint64_t *v;

	if (need <= *words)
		return 0;
	cap = need < 2 * *words ? 2 * *words : need;
	if (!(v = realloc(*b, cap * sizeof(*v))))
		return -ENOMEM;
	memset(v + *words, 0, (cap - *words) * sizeof(*v));
	*b = v;
	*words = cap;
	return 0;
}

/* Make the bitmaps of ix (and of t) cover pages pages; paired ones keep equal sizes.  0 or -ENOMEM. */
int
ix_bitmaps_cover(struct index *ix, struct index_txn *t, uint64_t pages)
{
	size_t w = ix->words;

	if (ix_bitmap_grow(&ix->used, &ix->words, pages) != 0 ||
	    ix_bitmap_grow(&ix->limbo, &w, pages) != 0)
		return -ENOMEM;
	if (!t)
		return 0;
	w = t->words;
	if (ix_bitmap_grow(&t->dirty, &t->words, pages) != 0 ||
	    ix_bitmap_grow(&t->writable, &w, pages) != 0)
		return -ENOMEM;
	return 0;
}

/* The mark's view of one page: in the file and carrying its checksum.  0 or -EUCLEAN. */
int
ix_mark_check(struct index *ix, uint64_t pgno, int type, char *err, size_t errlen)
{
	const uint8_t *p;

	if (pgno < 2 || pgno >= atomic_load(&ix->file_pages) || pgno >= ix->words * 64) {
		snprintf(err, errlen, "page %" PRIu64 " is outside the file", pgno);
		return -EUCLEAN;
	}
	p = ix->map + pgno * INDEX_PAGE;
	if (((const struct ix_node *)p)->crc != ix_page_crc(p) ||
	    ((const struct ix_node *)p)->type != type) {
		snprintf(err, errlen, "page %" PRIu64 ": bad checksum or type", pgno);
		return -EUCLEAN;
	}
	return 0;
}

/* Mark the pages of the subtree at pgno; subtrees marked already (shared) are not visited again. */
static int
ix_mark_tree(struct index *ix, uint64_t pgno, uint32_t level, char *err, size_t errlen)
{
	const uint8_t *p;
	int rc;

	if (pgno >= atomic_load(&ix->file_pages) || pgno >= ix->words * 64 || pgno < 2) {
		snprintf(err, errlen, "page %" PRIu64 " is outside the file", pgno);
		return -EUCLEAN;
	}
	if (ix_bit(ix->used, pgno))
		return 0;
	ix_bit_set(ix->used, pgno);
	if (level <= 1)
		return 0;
	if ((rc = ix_mark_check(ix, pgno, IX_INNER, err, errlen)) != 0)
		return rc;
	p = ix->map + pgno * INDEX_PAGE;
	if (((const struct ix_node *)p)->level != level ||
	    ((const struct ix_node *)p)->count > IX_INNER_CAP) {
		snprintf(err, errlen, "page %" PRIu64 ": bad level or count", pgno);
		return -EUCLEAN;
	}
	for (uint32_t i = 0; i < ((const struct ix_node *)p)->count; i++)
		if ((rc = ix_mark_tree(ix, IX_PAGES(p)[i], level - 1, err, errlen)) != 0)
			return rc;
	return 0;
}

/*
 * Find the free pages: mark every page reachable from the valid meta pages
 * (the last two generations) and from limbo.  Interior pages are read and
 * checked; leaves are marked from their parents.  0, or -EUCLEAN with the
 * damage in err (the marks are then incomplete: nothing may be allocated).
 */
int
ix_mark(struct index *ix, char *err, size_t errlen)
{
	uint64_t hwm = 2, n = 0;
	int rc;

	for (int s = 0; s < 2; s++)
		if (ix->valid[s] && ix->meta[s].pages > hwm)
			hwm = ix->meta[s].pages;
	if (ix_bitmaps_cover(ix, NULL, hwm) != 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t w = 0; w < ix->words; w++)
		ix->used[w] = ix->limbo[w];
	ix->used[0] |= 3;
	for (int s = 0; s < 2; s++) {
		uint64_t pg = ix->valid[s] ? ix->meta[s].table_page : 0;
		while (pg != 0) {
			const uint8_t *p;
			if ((rc = ix_mark_check(ix, pg, IX_TABLE, err, errlen)) != 0)
				return rc;
			p = ix->map + pg * INDEX_PAGE;
			if (ix_bit(ix->used, pg))
				break;		/* the other generation's chain, marked already */
			ix_bit_set(ix->used, pg);
			for (uint32_t i = 0; i < ((const struct ix_node *)p)->count && i < IX_TABLE_CAP; i++) {
				const struct ix_tree *tr = &IX_TREES(p)[i];
				if (tr->height > IX_MAX_HEIGHT) {
					snprintf(err, errlen, "tree %" PRIu64 ": bad height", tr->id);
					return -EUCLEAN;
				}
				if (tr->height > 0 &&
				    (rc = ix_mark_tree(ix, tr->root, (uint32_t)tr->height, err, errlen)) != 0)
					return rc;
			}
			pg = ((const struct ix_node *)p)->next;
		}
	}
	for (size_t w = 0; w < ix->words; w++)
		n += (uint64_t)__builtin_popcountll(ix->used[w]);
	ix->pages_used = n;
	return 0;
}

/* Read the table chain starting at pg into ix->trees.  0, -EUCLEAN or -ENOMEM. */
static int
ix_load_table(struct index *ix, uint64_t pg, char *err, size_t errlen)
{
	size_t cap = 0;
	int rc;

	ix->ntrees = 0;
	for (uint64_t hops = 0; pg != 0; hops++) {
		const uint8_t *p;
		uint32_t n;
		if ((rc = ix_mark_check(ix, pg, IX_TABLE, err, errlen)) != 0)
			return rc;
		p = ix->map + pg * INDEX_PAGE;
		n = ((const struct ix_node *)p)->count;
		if (n > IX_TABLE_CAP || hops > atomic_load(&ix->file_pages)) {
			snprintf(err, errlen, "tree table page %" PRIu64 ": bad count or a loop", pg);
			return -EUCLEAN;
		}
		if (ix->ntrees + n > cap) {
			struct ix_tree *v;
			cap = (ix->ntrees + n) * 2;
			if (!(v = realloc(ix->trees, cap * sizeof(*v))))
				return -ENOMEM;
			ix->trees = v;
		}
		memcpy(&ix->trees[ix->ntrees], IX_TREES(p), n * sizeof(struct ix_tree));
		ix->ntrees += n;
		pg = ((const struct ix_node *)p)->next;
	}
	return 0;
}

/* Why meta page buf cannot be used, or NULL if it can. */
static const char *
ix_meta_problem(const struct index *ix, const uint8_t *buf)
{
	const struct ix_meta *m = (const struct ix_meta *)buf;

	if (m->crc != ix_page_crc(buf) || m->magic != IX_MAGIC)
		return "no valid meta page (not an index file, or damaged)";
	if (m->version != IX_VERSION)
		return "unknown index version";
	if (memcmp(m->uuid, ix->uuid, 16) != 0)
		return "the index belongs to another store (uuid differs)";
	return NULL;
}

/* Write the meta page m into slot through the io hook and sync.  0 or a negative errno. */
int
ix_write_meta(struct index *ix, struct ix_meta *m, int slot)
{
	uint8_t page[INDEX_PAGE] __attribute__((aligned(16)));
	int rc;

	memset(page, 0, sizeof(page));
	m->crc = 0;
	memcpy(page, m, sizeof(*m));
	m->crc = ix_page_crc(page);
	memcpy(page, m, sizeof(*m));
	if ((rc = ix_write(ix, page, INDEX_PAGE, (uint64_t)slot * INDEX_PAGE)) != 0)
		return rc;
	return ix_sync(ix);
}

/* A new index in the empty file: generation 1 in slot 0, no trees. */
static int
ix_create(struct index *ix)
{
	struct ix_meta m = { .version = IX_VERSION, .magic = IX_MAGIC, .generation = 1, .pages = 2 };
	int rc;

	memcpy(m.uuid, ix->uuid, 16);
	if ((rc = ix_grow(ix, 2)) != 0)
		return rc;
	return ix_write_meta(ix, &m, 0);
}

int
index_open(const char *path, const uint8_t uuid[16], int flags, struct index **out,
    char *err, size_t errlen)
{
	uint8_t buf[2 * INDEX_PAGE];
	const char *why[2];
	char table_err[160];
	struct index *ix;
	struct stat st;
	int rc, ro = (flags & INDEX_READONLY) != 0;

	*out = NULL;
	if (!(ix = calloc(1, sizeof(*ix))))
		return -ENOMEM;
	ix->readonly = ro;
	memcpy(ix->uuid, uuid, 16);
	index_set_io(ix, NULL);
	ix->map = MAP_FAILED;
	ix->checked = MAP_FAILED;
	ix->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC |
	    ((flags & INDEX_CREATE) && !ro ? O_CREAT : 0), 0600);
	if (ix->fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "index '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(ix->fd, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "index '%s': %s", path, strerror(errno));
		goto fail;
	}
	ix->map_bytes = IX_MAP_BYTES;
	ix->map = mmap(NULL, ix->map_bytes, PROT_READ, MAP_SHARED, ix->fd, 0);
	if (ix->map == MAP_FAILED) {
		rc = -errno;
		snprintf(err, errlen, "index '%s': cannot map: %s", path, strerror(errno));
		goto fail;
	}
	ix->checked_bytes = ix->map_bytes / INDEX_PAGE / 8;
	ix->checked = mmap(NULL, ix->checked_bytes, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ix->checked == MAP_FAILED) {
		rc = -errno;
		snprintf(err, errlen, "index '%s': cannot map its checked pages: %s", path,
		    strerror(errno));
		goto fail;
	}
	atomic_store(&ix->file_pages, (uint64_t)st.st_size / INDEX_PAGE);
	if ((uint64_t)st.st_size > ix->map_bytes) {
		rc = -EFBIG;
		snprintf(err, errlen, "index '%s' is larger than its mapping", path);
		goto fail;
	}
	if (st.st_size == 0 && (flags & INDEX_CREATE) && !ro && (rc = ix_create(ix)) != 0) {
		snprintf(err, errlen, "index '%s': cannot create: %s", path, strerror(-rc));
		goto fail;
	}
	memset(buf, 0, sizeof(buf));
	if (pread(ix->fd, buf, sizeof(buf), 0) < 0) {
		rc = -errno;
		snprintf(err, errlen, "index '%s': %s", path, strerror(errno));
		goto fail;
	}
	for (int s = 0; s < 2; s++) {
		why[s] = ix_meta_problem(ix, buf + s * INDEX_PAGE);
		ix->valid[s] = why[s] == NULL;
		memcpy(&ix->meta[s], buf + s * INDEX_PAGE, sizeof(ix->meta[s]));
	}
	if (!ix->valid[0] && !ix->valid[1]) {
		rc = -EUCLEAN;
		snprintf(err, errlen, "index '%s': %s", path,
		    strstr(why[0], "no valid") && !strstr(why[1], "no valid") ? why[1] : why[0]);
		goto fail;
	}
	ix->cur = ix->valid[1] && (!ix->valid[0] || ix->meta[1].generation > ix->meta[0].generation);
	/* a commit grows the file before its meta is written: a shorter file lost pages */
	if (ix->meta[ix->cur].pages < 2 || ix->meta[ix->cur].pages > atomic_load(&ix->file_pages)) {
		rc = -EUCLEAN;
		snprintf(err, errlen, "index '%s': the file is truncated (%" PRIu64 " pages, the meta"
		    " page names %" PRIu64 ")", path, atomic_load(&ix->file_pages),
		    ix->meta[ix->cur].pages);
		goto fail;
	}
	if ((rc = ix_bitmaps_cover(ix, NULL, ix->meta[ix->cur].pages)) != 0) {
		snprintf(err, errlen, "index '%s': out of memory", path);
		goto fail;
	}
	if ((rc = ix_load_table(ix, ix->meta[ix->cur].table_page, table_err,
	    sizeof(table_err))) != 0) {
		snprintf(err, errlen, "index '%s': %s", path, table_err);
		goto fail;
	}
	atomic_store(&ix->table_page, ix->meta[ix->cur].table_page);
	/* readers may go on after damage; begin refuses, verify says why */
	if (!(flags & INDEX_DEFER_MARK) && ix_mark(ix, ix->damage, sizeof(ix->damage)) != 0)
		ix->broken = 1;
	*out = ix;
	return 0;
fail:
	ix_free(ix);
	return rc;
}

void
ix_free(struct index *ix)
{
	if (!ix)
		return;
	if (ix->map != MAP_FAILED)
		munmap((void *)ix->map, ix->map_bytes);
	if (ix->checked != MAP_FAILED)
		munmap((void *)ix->checked, ix->checked_bytes);
	if (ix->fd >= 0)
		close(ix->fd);
	free(ix->trees);
	free(ix->used);
	free(ix->limbo);
	free(ix);
}

const char *
index_damage(const struct index *ix)
{
	return ix->broken ? ix->damage : NULL;
}

void
index_position(const struct index *ix, uint64_t *laddr, uint64_t *seq)
{
	*laddr = ix->meta[ix->cur].log_laddr;
	*seq = ix->meta[ix->cur].log_seq;
}

void
index_stats(const struct index *ix, struct index_stats *out)
{
	const struct index_txn *t = ix->txn;

	memset(out, 0, sizeof(*out));
	out->generation = ix->meta[ix->cur].generation;
	out->file_bytes = atomic_load(&((struct index *)ix)->file_pages) * INDEX_PAGE;
	out->pages_used = ix->pages_used;
	out->pages_free = out->file_bytes / INDEX_PAGE - ix->pages_used;
	out->trees = ix->ntrees;
	out->anon_bytes = sizeof(*ix) + ix->ntrees * sizeof(struct ix_tree) +
	    2 * ix->words * sizeof(uint64_t);
	if (t)
		out->anon_bytes += sizeof(*t) + t->cap * sizeof(struct ix_tree) +
		    2 * t->words * sizeof(uint64_t) + (t->hash_mask + 1) * sizeof(*t->hash) +
		    t->nbufs * sizeof(struct ix_buf);
	out->commits = ix->commits;
	out->last_commit_pages = ix->last_commit_pages;
}
