/*
 * index_read: readers of the committed trees (see index.h for the format and
 * the rules; index.c owns the file, index_txn.c transactions, index_tree.c
 * the edits).
 *
 * Readers walk committed pages straight from the mapping: a binary search
 * over a page's key array, a path of at most IX_MAX_HEIGHT pages on the
 * stack, no allocation, lock or system call.  They trust the inner pages'
 * checksums that the mark verified, bound every page number by the file's
 * size, check each page's level and count and that a child keeps within
 * its parent's keys, and verify each leaf's checksum and order once (the
 * checked bitmap), so a damaged page gives -EUCLEAN, never a fault, a loop
 * or another range's extents.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "index_int.h"

/* A reader's way down one tree: the page and slot at each level, root first. */
struct ix_cursor {
	const struct index	*ix;
	uint64_t		limit;		/* pages the file holds */
	uint32_t		height;
	const uint8_t		*node[IX_MAX_HEIGHT];
	uint32_t		slot[IX_MAX_HEIGHT];
};

/*
 * Is leaf p (page pgno) whole: its checksum right, its extents non-empty,
 * sorted and apart?  Verified once per page and generation (the checked
 * bitmap): a leaf's first read costs a checksum, later reads nothing.
 */
static int
ix_leaf_sound(const struct index *ix, uint64_t pgno, const uint8_t *p)
{
	_Atomic uint64_t *word = &ix->checked[pgno >> 6];
	uint64_t bit = UINT64_C(1) << (pgno & 63), prev_end = 0;
	const struct ix_node *h = (const struct ix_node *)p;

	if (atomic_load_explicit(word, memory_order_relaxed) & bit)
		return 1;
	if (h->type != IX_LEAF || h->crc != ix_page_crc(p))
		return 0;
	for (uint32_t i = 0; i < h->count; i++) {
		uint64_t loff = IX_LOFF(p)[i], len = IX_LEN(p)[i];
		if (len == 0 || loff + len < loff || (i > 0 && loff < prev_end))
			return 0;
		prev_end = loff + len;
	}
	atomic_fetch_or_explicit(word, bit, memory_order_relaxed);
	return 1;
}

/* The committed page pgno at this level, or NULL if it cannot be (damage). */
static const uint8_t *
ix_cursor_page(const struct ix_cursor *c, uint64_t pgno, uint32_t level)
{
	const uint8_t *p;
	const struct ix_node *h;

	if (pgno < 2 || pgno >= c->limit)
		return NULL;
	p = c->ix->map + pgno * INDEX_PAGE;
	h = (const struct ix_node *)p;
	if (h->level != level || h->count == 0 ||
	    h->count > (level == 1 ? IX_LEAF_CAP : IX_INNER_CAP))
		return NULL;
	if (level == 1 && !ix_leaf_sound(c->ix, pgno, p))
		return NULL;
	return p;
}

/*
 * Does child (the page under slot s of inner node parent) keep within the
 * keys its parent gives it?  A leaf's extents, and an inner child's keys,
 * must lie in [key s, key s+1) (key 0 stands for the parent's own bound): a
 * damaged inner key that sends a reader to the wrong page shows here.
 */
static int
ix_child_fits(const uint8_t *parent, uint32_t s, const uint8_t *child)
{
	const struct ix_node *ph = (const struct ix_node *)parent;
	const struct ix_node *ch = (const struct ix_node *)child;
	const uint64_t *keys = IX_KEYS(parent);
	uint32_t last = ch->count - 1;
	uint64_t lo, hi;

	if (ch->level == 1) {
		lo = IX_LOFF(child)[0];
		hi = IX_LOFF(child)[last] + IX_LEN(child)[last];
	} else {
		if (ch->count == 1)
			return 1;
		/* an inner child's key 0 is a stand-in: its key 1 on are real */
		lo = IX_KEYS(child)[1];
		hi = IX_KEYS(child)[last] + 1;
	}
	return (s == 0 || lo >= keys[s]) && (s + 1 >= ph->count || hi <= keys[s + 1]);
}

/*
 * Ask for the cache lines of a key array of n that a binary search probes
 * first (the middle, then the quarters): their misses then overlap instead
 * of following each other.
 */
static inline void
ix_prefetch_search(const uint64_t *k, uint32_t n)
{
	__builtin_prefetch(&k[n / 2]);
	__builtin_prefetch(&k[n / 4]);
	__builtin_prefetch(&k[3 * n / 4]);
}

/* Descend from node at depth d along the leftmost (first) children.  0, or -EUCLEAN. */
static int
ix_cursor_leftmost(struct ix_cursor *c, uint32_t d)
{
	for (; d + 1 < c->height; d++) {
		c->node[d + 1] = ix_cursor_page(c, IX_PAGES(c->node[d])[c->slot[d]], c->height - d - 1);
		if (!c->node[d + 1] || !ix_child_fits(c->node[d], c->slot[d], c->node[d + 1]))
			return -EUCLEAN;
		c->slot[d + 1] = 0;
	}
	return 0;
}

/*
 * Position c at the first extent of root r ending after off.  1 if there is
 * one (possibly in a later leaf, which is only entered if its key is below
 * end), 0 if none, -EUCLEAN on damage.
 */
static int
ix_cursor_seek(struct ix_cursor *c, const struct index *ix, const struct index_root *r,
    uint64_t off, uint64_t end)
{
	uint32_t d, n;
	const struct ix_node *h;

	c->ix = ix;
	c->height = (uint32_t)r->height;
	if (r->height == 0)
		return 0;
	if (r->height > IX_MAX_HEIGHT)
		return -EUCLEAN;
	c->limit = atomic_load_explicit(&((struct index *)ix)->file_pages, memory_order_acquire);
	c->node[0] = ix_cursor_page(c, r->page, c->height);
	if (!c->node[0])
		return -EUCLEAN;
	for (d = 0; d + 1 < c->height; d++) {
		h = (const struct ix_node *)c->node[d];
		ix_prefetch_search(IX_KEYS(c->node[d]), h->count);
		c->slot[d] = ix_key_search(IX_KEYS(c->node[d]), h->count, off);
		c->node[d + 1] = ix_cursor_page(c, IX_PAGES(c->node[d])[c->slot[d]], c->height - d - 1);
		if (!c->node[d + 1] || !ix_child_fits(c->node[d], c->slot[d], c->node[d + 1]))
			return -EUCLEAN;
	}
	n = ((const struct ix_node *)c->node[d])->count;
	/* a leaf is rarely cached: ask for all its key lines at once (22 at most) */
	for (uint32_t i = 0; i < n; i += 8)
		__builtin_prefetch(&IX_LOFF(c->node[d])[i]);
	c->slot[d] = ix_leaf_search(c->node[d], n, off);
	if (c->slot[d] < n)
		return 1;
	c->slot[d] = n - 1;
	/* past this leaf's last extent: the next leaf, unless it starts at or after end */
	for (;;) {
		int rc;
		while (d > 0) {
			d--;
			h = (const struct ix_node *)c->node[d];
			if (c->slot[d] + 1 < h->count)
				break;
			if (d == 0)
				return 0;
		}
		h = (const struct ix_node *)c->node[d];
		if (c->slot[d] + 1 >= h->count)
			return 0;
		c->slot[d]++;
		if (IX_KEYS(c->node[d])[c->slot[d]] >= end)
			return 0;
		rc = ix_cursor_leftmost(c, d);
		return rc < 0 ? rc : 1;
	}
}

/* Move c to the next extent: 1, 0 at the tree's end or when the next leaf starts at or past end. */
static int
ix_cursor_next(struct ix_cursor *c, uint64_t end)
{
	uint32_t d = c->height - 1;

	if (++c->slot[d] < ((const struct ix_node *)c->node[d])->count)
		return 1;
	while (d > 0) {
		d--;
		if (c->slot[d] + 1 < ((const struct ix_node *)c->node[d])->count) {
			int rc;
			c->slot[d]++;
			if (IX_KEYS(c->node[d])[c->slot[d]] >= end)
				return 0;
			rc = ix_cursor_leftmost(c, d);
			return rc < 0 ? rc : 1;
		}
	}
	return 0;
}

/* The extent the cursor is at. */
static inline void
ix_cursor_extent(const struct ix_cursor *c, struct extent *e)
{
	ix_leaf_get(c->node[c->height - 1], c->slot[c->height - 1], e);
}

/* Clip e to [off, end) into out. */
static void
ix_clip(const struct extent *e, uint64_t off, uint64_t end, struct extent *out)
{
	uint64_t s = e->loff > off ? e->loff : off;
	uint64_t x = extent_end(e) < end ? extent_end(e) : end;

	out->loff = s;
	out->len = x - s;
	out->laddr = e->laddr;
}

int
index_first(const struct index *ix, const struct index_root *r, uint64_t off, uint64_t end,
    struct extent *out)
{
	struct ix_cursor c;
	struct extent e;
	int rc;

	if (off >= end)
		return 0;
	if ((rc = ix_cursor_seek(&c, ix, r, off, end)) <= 0)
		return rc;
	ix_cursor_extent(&c, &e);
	if (e.loff >= end)
		return 0;
	ix_clip(&e, off, end, out);
	return 1;
}

int
index_walk(const struct index *ix, const struct index_root *r, uint64_t off, uint64_t end,
    int (*fn)(const struct extent *e, void *arg), void *arg)
{
	struct ix_cursor c;
	int rc;

	if (off >= end)
		return 0;
	for (rc = ix_cursor_seek(&c, ix, r, off, end); rc > 0; rc = ix_cursor_next(&c, end)) {
		struct extent e, x;
		ix_cursor_extent(&c, &e);
		if (e.loff >= end)
			return 0;
		ix_clip(&e, off, end, &x);
		if ((rc = fn(&x, arg)) != 0)
			return rc;
	}
	return rc;
}

/* The committed table page pgno, or NULL if it cannot be one. */
static const uint8_t *
ix_table_page(const struct index *ix, uint64_t pgno)
{
	uint64_t limit = atomic_load_explicit(&((struct index *)ix)->file_pages, memory_order_acquire);
	const uint8_t *p;

	if (pgno < 2 || pgno >= limit)
		return NULL;
	p = ix->map + pgno * INDEX_PAGE;
	if (((const struct ix_node *)p)->type != IX_TABLE ||
	    ((const struct ix_node *)p)->count > IX_TABLE_CAP)
		return NULL;
	return p;
}

/* A table entry as readers see it. */
static void
ix_root_of(const struct ix_tree *tr, struct index_root *out)
{
	out->page = tr->root;
	out->height = (uint32_t)tr->height;
	out->extents = tr->extents;
	out->log_bytes = tr->log_bytes;
}

int
index_tree(const struct index *ix, uint64_t id, struct index_root *out)
{
	uint64_t pg = atomic_load_explicit(&((struct index *)ix)->table_page, memory_order_acquire);

	while (pg != 0) {
		const uint8_t *p = ix_table_page(ix, pg);
		const struct ix_tree *tr;
		uint32_t n, lo = 0, hi;
		if (!p)
			return -EUCLEAN;
		n = ((const struct ix_node *)p)->count;
		tr = IX_TREES(p);
		if (n > 0 && tr[n - 1].id >= id) {
			hi = n;
			while (lo < hi) {
				uint32_t mid = lo + (hi - lo) / 2;
				if (tr[mid].id < id)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (tr[lo].id != id)
				return -ENOENT;
			ix_root_of(&tr[lo], out);
			return 0;
		}
		pg = ((const struct ix_node *)p)->next;
	}
	return -ENOENT;
}

int
index_each_tree(const struct index *ix, int (*fn)(uint64_t id, const struct index_root *r,
    void *arg), void *arg)
{
	uint64_t pg = atomic_load_explicit(&((struct index *)ix)->table_page, memory_order_acquire);

	while (pg != 0) {
		const uint8_t *p = ix_table_page(ix, pg);
		if (!p)
			return -EUCLEAN;
		for (uint32_t i = 0; i < ((const struct ix_node *)p)->count; i++) {
			struct index_root r;
			int rc;
			ix_root_of(&IX_TREES(p)[i], &r);
			if ((rc = fn(IX_TREES(p)[i].id, &r, arg)) != 0)
				return rc;
		}
		pg = ((const struct ix_node *)p)->next;
	}
	return 0;
}
