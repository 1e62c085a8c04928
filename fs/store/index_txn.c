/*
 * index_txn: a transaction of the index: begin, the pages it changes,
 * commit and abort, and close (which ends one left open) (see index.h for
 * the rules and the states; index.c owns the file and finds the free pages,
 * index_tree.c edits, above this file).
 *
 * Memory of a transaction: the pages it changes live in struct ix_buf, on an
 * LRU list and in a hash by page number, at most max_bufs of them.  Before
 * each edit (ix_txn_room) the oldest beyond that are spilled: written to
 * their own page of the file, which no committed generation reaches, and
 * freed; touched again, a page is read back through the mapping.  Edits
 * never spill, so the pointers an edit holds stay valid during it.  Two
 * bitmaps of the transaction: dirty (pages it wrote: in memory or spilled)
 * and writable (dirty, and shared with no clone: changed in place; a clone
 * clears them all).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_int.h"

#define IX_TXN_BUFS	4096			/* 16 MiB of changed pages in memory */
#define IX_RUN_PAGES	64			/* a commit writes runs of up to 256 KiB */

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

/* Page pgno as the transaction sees it (its copy, or the file's), or NULL past its end. */
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

/* A free page for the transaction, zeroed in memory; its number in *pgno; NULL on error (t->err). */
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

/* Page *pgno to change: itself if the transaction owns it alone, else a copy (*pgno changes). */
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

/* Give back a page the transaction owns alone; others are left to the next mark. */
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

/* Spill the oldest pages beyond the bound, before an edit.  0 or the transaction's error. */
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
	if (ix->ntrees > 0)
		memcpy(t->trees, ix->trees, ix->ntrees * sizeof(*t->trees));
	t->ntrees = ix->ntrees;
	ix->txn = t;
	*out = t;
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
		/* what readers verified of these pages was another generation's */
		for (size_t w = 0; w < t->words && w < ix->checked_bytes / 8; w++)
			if (t->dirty[w])
				atomic_fetch_and(&ix->checked[w], ~t->dirty[w]);
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

void
index_close(struct index *ix)
{
	if (!ix)
		return;
	if (ix->txn)
		index_abort(ix->txn);
	ix_free(ix);
}
