/*
 * index: the file, its meta pages, free pages, transactions and commits.
 * The design notes are in index.h; index_tree.c reads and edits the trees.
 *
 * Memory of a transaction: the pages it changes live in struct ix_buf, on an
 * LRU list and in a hash by page number, at most max_bufs of them.  Before
 * each edit (ix_txn_room) the oldest beyond that are spilled: written to
 * their own page of the file, which no committed generation reaches, and
 * freed; touched again, a page is read back through the mapping.  Edits
 * never spill, so the pointers an edit holds stay valid during it.  Three
 * bitmaps over the pages: used (the mark: reachable from the last two
 * committed generations, plus what the transaction took), dirty (written by
 * the transaction: in memory or spilled) and writable (dirty, and shared
 * with no clone: changed in place; a clone clears them all).
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
#define IX_TXN_BUFS	4096			/* 16 MiB of changed pages in memory */
#define IX_RUN_PAGES	64			/* a commit writes runs of up to 256 KiB */

uint32_t
ix_page_crc(const void *page)
{
	return crc32c(0, (const uint8_t *)page + 4, INDEX_PAGE - 4);
}

static ssize_t
ix_default_pwrite(void *arg, int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}

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
static int
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
static int
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
static int
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
static int
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
static int
ix_mark_check(struct index *ix, uint64_t pgno, int type, char *err, size_t errlen)
{
	const uint8_t *p;

	if (pgno < 2 || pgno >= atomic_load(&ix->file_pages)) {
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

	if (pgno >= atomic_load(&ix->file_pages) || pgno < 2) {
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
static int
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
static int
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
	if ((rc = ix_load_table(ix, ix->meta[ix->cur].table_page, err, errlen)) != 0)
		goto fail;
	atomic_store(&ix->table_page, ix->meta[ix->cur].table_page);
	if (ix_mark(ix, ix->damage, sizeof(ix->damage)) != 0)
		ix->broken = 1;		/* readers may go on; begin refuses, verify says why */
	*out = ix;
	return 0;
fail:
	index_close(ix);
	return rc;
}

void
index_close(struct index *ix)
{
	if (!ix)
		return;
	if (ix->txn)
		index_abort(ix->txn);
	if (ix->map != MAP_FAILED)
		munmap((void *)ix->map, ix->map_bytes);
	if (ix->fd >= 0)
		close(ix->fd);
	free(ix->trees);
	free(ix->used);
	free(ix->limbo);
	free(ix);
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

/* The transaction's in-memory copy of pgno, or NULL. */
static struct ix_buf *
ix_buf_find(const struct index_txn *t, uint64_t pgno)
{
	struct ix_buf *b = t->hash[(pgno * UINT64_C(0x9e3779b97f4a7c15) >> 32) & t->hash_mask];

	while (b && b->pgno != pgno)
		b = b->hnext;
	return b;
}

/* Take b off the LRU list. */
static void
ix_lru_unlink(struct ix_buf *b)
{
	b->prev->next = b->next;
	b->next->prev = b->prev;
}

/* Put b at the LRU list's young end. */
static void
ix_lru_push(struct index_txn *t, struct ix_buf *b)
{
	b->prev = t->lru.prev;
	b->next = &t->lru;
	t->lru.prev->next = b;
	t->lru.prev = b;
}

/* Hold pgno's page in memory (contents from src, or zeros): the new buffer, or NULL. */
static struct ix_buf *
ix_buf_add(struct index_txn *t, uint64_t pgno, const uint8_t *src)
{
	struct ix_buf *b = malloc(sizeof(*b));
	size_t h = (pgno * UINT64_C(0x9e3779b97f4a7c15) >> 32) & t->hash_mask;

	if (!b) {
		t->err = -ENOMEM;
		return NULL;
	}
	b->pgno = pgno;
	if (src)
		memcpy(b->page, src, INDEX_PAGE);
	else
		memset(b->page, 0, INDEX_PAGE);
	b->hnext = t->hash[h];
	t->hash[h] = b;
	ix_lru_push(t, b);
	t->nbufs++;
	return b;
}

/* Forget b (it is written, or its page freed). */
static void
ix_buf_drop(struct index_txn *t, struct ix_buf *b)
{
	struct ix_buf **pp = &t->hash[(b->pgno * UINT64_C(0x9e3779b97f4a7c15) >> 32) & t->hash_mask];

	while (*pp != b)
		pp = &(*pp)->hnext;
	*pp = b->hnext;
	ix_lru_unlink(b);
	t->nbufs--;
	free(b);
}

const uint8_t *
ix_page_read(struct index_txn *t, uint64_t pgno)
{
	if (pgno >= t->hwm || pgno < 2)
		return NULL;
	if (ix_bit(t->dirty, pgno)) {
		struct ix_buf *b = ix_buf_find(t, pgno);
		if (b)
			return b->page;
	}
	if (pgno >= atomic_load(&t->ix->file_pages))
		return NULL;
	return t->ix->map + pgno * INDEX_PAGE;
}

/* A free page for the transaction: the first below the high-water mark the mark left, else past it. */
static int
ix_page_alloc(struct index_txn *t, uint64_t *pgno)
{
	struct index *ix = t->ix;
	uint64_t pg = t->cursor;

	while (pg < t->hwm) {
		uint64_t w = ~ix->used[pg >> 6] & (~UINT64_C(0) << (pg & 63));
		if (w) {
			pg = (pg & ~UINT64_C(63)) + (uint64_t)__builtin_ctzll(w);
			break;
		}
		pg = (pg | 63) + 1;
	}
	if (pg >= t->hwm) {
		pg = t->hwm;
		if ((pg + 1) * INDEX_PAGE > ix->map_bytes) {
			t->err = -EFBIG;
			return -EFBIG;
		}
		if (ix_bitmaps_cover(ix, t, pg + 1) != 0) {
			t->err = -ENOMEM;
			return -ENOMEM;
		}
		t->hwm = pg + 1;
	}
	t->cursor = pg + 1;
	ix_bit_set(ix->used, pg);
	ix_bit_set(t->dirty, pg);
	ix_bit_set(t->writable, pg);
	*pgno = pg;
	return 0;
}

uint8_t *
ix_page_new(struct index_txn *t, uint64_t *pgno)
{
	struct ix_buf *b;

	if (ix_page_alloc(t, pgno) != 0)
		return NULL;
	if (!(b = ix_buf_add(t, *pgno, NULL)))
		return NULL;
	return b->page;
}

uint8_t *
ix_page_write(struct index_txn *t, uint64_t *pgno)
{
	const uint8_t *src;
	struct ix_buf *b;
	uint64_t np;

	if (*pgno < t->hwm && ix_bit(t->writable, *pgno)) {
		if ((b = ix_buf_find(t, *pgno)) != NULL) {
			ix_lru_unlink(b);
			ix_lru_push(t, b);
		} else if (*pgno < atomic_load(&t->ix->file_pages)) {
			b = ix_buf_add(t, *pgno, t->ix->map + *pgno * INDEX_PAGE);	/* spilled */
		}
		return b ? b->page : NULL;
	}
	/* copy on write: the committed (or clone-shared) page stays as it is */
	if (!(src = ix_page_read(t, *pgno)) || ix_page_alloc(t, &np) != 0)
		return NULL;
	if (!(b = ix_buf_add(t, np, src)))
		return NULL;
	*pgno = np;
	return b->page;
}

void
ix_page_free(struct index_txn *t, uint64_t pgno)
{
	struct ix_buf *b;

	if (pgno >= t->hwm || !ix_bit(t->writable, pgno))
		return;		/* committed or shared: the next mark finds it free */
	if ((b = ix_buf_find(t, pgno)) != NULL)
		ix_buf_drop(t, b);
	ix_bit_clear(t->ix->used, pgno);
	ix_bit_clear(t->dirty, pgno);
	ix_bit_clear(t->writable, pgno);
	if (pgno < t->cursor)
		t->cursor = pgno;
}

/* Write buffer b to its page (its last contents unless touched again) and let it go. */
static int
ix_spill(struct index_txn *t, struct ix_buf *b)
{
	int rc;

	((struct ix_node *)b->page)->crc = ix_page_crc(b->page);
	if ((rc = ix_grow(t->ix, t->hwm)) != 0 ||
	    (rc = ix_write(t->ix, b->page, INDEX_PAGE, b->pgno * INDEX_PAGE)) != 0)
		return rc;
	ix_buf_drop(t, b);
	t->spilled++;
	return 0;
}

int
ix_txn_room(struct index_txn *t)
{
	int rc;

	while (t->err == 0 && t->nbufs > t->max_bufs)
		if ((rc = ix_spill(t, t->lru.next)) != 0)
			t->err = rc;
	return t->err;
}

int
index_begin(struct index *ix, struct index_txn **out)
{
	struct index_txn *t;
	char err[160];
	int rc;

	*out = NULL;
	if (ix->readonly)
		return -EROFS;
	if (ix->txn)
		return -EBUSY;
	if (ix->broken)
		return -EUCLEAN;
	if ((rc = ix_mark(ix, err, sizeof(err))) != 0) {
		if (rc == -EUCLEAN) {
			ix->broken = 1;
			snprintf(ix->damage, sizeof(ix->damage), "%s", err);
		}
		return rc;
	}
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->ix = ix;
	t->hwm = ix->meta[ix->cur].pages;
	for (int s = 0; s < 2; s++)
		if (ix->valid[s] && ix->meta[s].pages > t->hwm)
			t->hwm = ix->meta[s].pages;
	t->cursor = 2;
	t->max_bufs = IX_TXN_BUFS;
	t->hash_mask = 2 * IX_TXN_BUFS - 1;
	t->lru.prev = t->lru.next = &t->lru;
	t->cap = ix->ntrees + 16;
	t->hash = calloc(t->hash_mask + 1, sizeof(*t->hash));
	t->trees = malloc(t->cap * sizeof(*t->trees));
	if (!t->hash || !t->trees || ix_bitmaps_cover(ix, t, t->hwm) != 0) {
		ix->txn = t;
		index_abort(t);
		return -ENOMEM;
	}
	memcpy(t->trees, ix->trees, ix->ntrees * sizeof(*t->trees));
	t->ntrees = ix->ntrees;
	ix->txn = t;
	*out = t;
	return 0;
}

/* The common part of index_set and index_clear. */
static int
ix_txn_replace(struct index_txn *t, uint64_t id, uint64_t loff, uint64_t len,
    const struct extent *ins)
{
	struct ix_tree *tr;
	int rc;

	if (t->err)
		return t->err;
	if (len == 0)
		return 0;
	if (loff + len < loff)
		return -EINVAL;
	if ((rc = ix_txn_room(t)) != 0)
		return rc;
	if (!(tr = ix_tree_find(t, id, ins != NULL)))
		return ins ? (t->err = -ENOMEM) : 0;
	if ((rc = ix_tree_replace(t, tr, loff, loff + len, ins)) != 0)
		t->err = t->err ? t->err : rc;	/* half an edit: only abort remains */
	return t->err;
}

int
index_set(struct index_txn *t, uint64_t id, uint64_t loff, uint64_t len, uint64_t laddr)
{
	struct extent e = { loff, len, laddr };

	return ix_txn_replace(t, id, loff, len, &e);
}

int
index_clear(struct index_txn *t, uint64_t id, uint64_t loff, uint64_t len)
{
	return ix_txn_replace(t, id, loff, len, NULL);
}

int
index_tree_clone(struct index_txn *t, uint64_t src, uint64_t dst)
{
	struct ix_tree *s, *d;

	if (t->err)
		return t->err;
	if (!ix_tree_find(t, src, 0))
		return -ENOENT;
	if (ix_tree_find(t, dst, 0))
		return -EEXIST;
	if (!(d = ix_tree_find(t, dst, 1)))
		return -ENOMEM;
	s = ix_tree_find(t, src, 0);
	d->root = s->root;
	d->height = s->height;
	d->extents = s->extents;
	d->log_bytes = s->log_bytes;
	/* the two trees now share this transaction's pages too: change neither in place */
	memset(t->writable, 0, t->words * sizeof(*t->writable));
	return 0;
}

int
index_tree_drop(struct index_txn *t, uint64_t id)
{
	struct ix_tree *tr;

	if (t->err)
		return t->err;
	if (!(tr = ix_tree_find(t, id, 0)))
		return 0;
	if (tr->height > 0)
		ix_subtree_release(t, tr->root, (uint32_t)tr->height);
	memmove(tr, tr + 1, (size_t)(t->trees + t->ntrees - (tr + 1)) * sizeof(*tr));
	t->ntrees--;
	t->table_changed = 1;
	return 0;
}

/* Write the tree table as a chain of new pages; its first page in *first (0: no trees). */
static int
ix_write_table(struct index_txn *t, uint64_t *first)
{
	uint64_t next = 0;
	size_t n = t->ntrees;

	/* from the end, so each page knows its successor */
	while (n > 0) {
		size_t k = (n - 1) % IX_TABLE_CAP + 1;
		uint64_t pg;
		uint8_t *q = ix_page_new(t, &pg);
		struct ix_node *h = (struct ix_node *)q;
		if (!q)
			return t->err ? t->err : -ENOMEM;
		h->type = IX_TABLE;
		h->count = (uint32_t)k;
		h->next = next;
		memcpy(IX_TREES(q), &t->trees[n - k], k * sizeof(struct ix_tree));
		next = pg;
		n -= k;
	}
	*first = next;
	return 0;
}

/*
 * Write the pages held in memory in page order, runs of neighbours in one
 * write each.  *pages counts them.  0 or a negative errno.
 */
static int
ix_write_pages(struct index_txn *t, uint64_t *pages)
{
	uint8_t *run = malloc(IX_RUN_PAGES * INDEX_PAGE);
	uint64_t start = 0;
	size_t n = 0;
	int rc = 0;

	if (!run)
		return -ENOMEM;

	for (size_t w = 0; w < t->words; w++) {
		uint64_t bits = t->dirty[w];
		while (bits) {
			uint64_t pg = (uint64_t)w * 64 + (uint64_t)__builtin_ctzll(bits);
			struct ix_buf *b = ix_buf_find(t, pg);
			bits &= bits - 1;
			if (!b)
				continue;	/* spilled: written already */
			if (n > 0 && (pg != start + n || n == IX_RUN_PAGES)) {
				if ((rc = ix_write(t->ix, run, n * INDEX_PAGE, start * INDEX_PAGE)) != 0)
					goto out;
				n = 0;
			}
			if (n == 0)
				start = pg;
			((struct ix_node *)b->page)->crc = ix_page_crc(b->page);
			memcpy(run + n * INDEX_PAGE, b->page, INDEX_PAGE);
			n++;
			(*pages)++;
		}
	}
	if (n > 0)
		rc = ix_write(t->ix, run, n * INDEX_PAGE, start * INDEX_PAGE);
out:
	free(run);
	return rc;
}

int
index_commit(struct index_txn *t, uint64_t laddr, uint64_t seq, char *err, size_t errlen)
{
	struct index *ix = t->ix;
	struct ix_meta m = ix->meta[ix->cur];
	uint64_t table = m.table_page, pages = t->spilled;
	int slot = !ix->cur, meta_issued = 0, rc = t->err;
	const char *step = "change";

	if (rc == 0 && t->table_changed) {
		step = "write the tree table";
		rc = ix_write_table(t, &table);
	}
	if (rc == 0) {
		step = "grow the file";
		rc = ix_grow(ix, t->hwm);
	}
	if (rc == 0) {
		step = "write pages";
		rc = ix_write_pages(t, &pages);
	}
	if (rc == 0) {
		step = "sync pages";
		rc = ix_sync(ix);
	}
	if (rc == 0) {
		/* every page the new meta names is durable: now the meta, in the other slot */
		m.generation++;
		m.log_laddr = laddr;
		m.log_seq = seq;
		m.table_page = table;
		m.trees = t->ntrees;
		m.pages = t->hwm;
		step = "write the meta page";
		meta_issued = 1;
		rc = ix_write_meta(ix, &m, slot);
	}
	if (rc != 0) {
		snprintf(err, errlen, "index commit: %s: %s", step, strerror(-rc));
		if (meta_issued) {
			/* the meta may be on disk: keep what it names until a commit replaces it */
			for (size_t w = 0; w < t->words && w < ix->words; w++)
				ix->limbo[w] |= t->dirty[w];
		}
		index_abort(t);
		return rc;
	}
	ix->meta[slot] = m;
	ix->valid[slot] = 1;
	ix->cur = slot;
	{
		struct ix_tree *v = ix->trees;
		ix->trees = t->trees;
		ix->ntrees = t->ntrees;
		t->trees = v;
	}
	atomic_store_explicit(&ix->table_page, table, memory_order_release);
	memset(ix->limbo, 0, ix->words * sizeof(*ix->limbo));
	ix->commits++;
	ix->last_commit_pages = pages;
	index_abort(t);
	return 0;
}

void
index_abort(struct index_txn *t)
{
	while (t->lru.next != &t->lru && t->hash)
		ix_buf_drop(t, t->lru.next);
	t->ix->txn = NULL;
	free(t->hash);
	free(t->trees);
	free(t->dirty);
	free(t->writable);
	free(t);
}

int
index_verify(struct index *ix, char *err, size_t errlen)
{
	uint64_t pg = atomic_load(&ix->table_page), trees = 0, last = 0;
	int rc;

	if (ix->broken) {
		snprintf(err, errlen, "%s", ix->damage);
		return -EUCLEAN;
	}
	while (pg != 0) {
		const uint8_t *p;
		if ((rc = ix_mark_check(ix, pg, IX_TABLE, err, errlen)) != 0)
			return rc;
		p = ix->map + pg * INDEX_PAGE;
		for (uint32_t i = 0; i < ((const struct ix_node *)p)->count; i++) {
			const struct ix_tree *tr = &IX_TREES(p)[i];
			if (trees > 0 && tr->id <= last) {
				snprintf(err, errlen, "tree table: id %" PRIu64 " out of order", tr->id);
				return -EUCLEAN;
			}
			last = tr->id;
			trees++;
			if ((rc = ix_tree_check(ix, tr, err, errlen)) != 0)
				return rc;
		}
		pg = ((const struct ix_node *)p)->next;
	}
	if (trees != ix->meta[ix->cur].trees) {
		snprintf(err, errlen, "tree table: %" PRIu64 " trees, the meta page says %" PRIu64,
		    trees, ix->meta[ix->cur].trees);
		return -EUCLEAN;
	}
	return 0;
}
