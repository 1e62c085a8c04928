/*
 * index_tree: editing the B+trees of the index, the public edits
 * (index_set, index_clear, index_tree_clone, index_tree_drop) and
 * index_verify (see index.h for the format and the rules; index.c owns the
 * file, index_txn.c the transaction's pages, index_read.c the readers).
 *
 * An edit is one recursive descent, ix_node_replace(): clear [a, b) and,
 * for index_set, put the new extent where a falls.  In an inner node the
 * children wholly inside [a, b) are dropped without being read (their
 * leaves are only read to keep the table's counts exact); the child where a
 * falls and the one where b falls are edited recursively; a node that
 * outgrows its page splits in two, an emptied one disappears, and a root
 * left with one child gives way to it.  Key invariant (inner nodes): every
 * extent under child i lies wholly in [key i, key i+1), key 0 counting as
 * the parent's bound; an extent put at a that reaches past its child's
 * bound moves the next surviving child's key up to its end, which is sound
 * because that child was just cleared up to there.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "index_int.h"

/* The pages a subtree became after an edit: none, itself, or a split in two. */
struct ix_out {
	uint32_t	n;
	struct ix_child	c[2];
};

/* The transaction's table entry id (created, empty, if create); NULL if none or out of memory. */
struct ix_tree *
ix_tree_find(struct index_txn *t, uint64_t id, int create)
{
	size_t lo = 0, hi = t->ntrees;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->trees[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->ntrees && t->trees[lo].id == id)
		return &t->trees[lo];
	if (!create)
		return NULL;
	if (t->ntrees == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct ix_tree *v = realloc(t->trees, cap * sizeof(*v));
		if (!v)
			return NULL;
		t->trees = v;
		t->cap = cap;
	}
	memmove(&t->trees[lo + 1], &t->trees[lo], (t->ntrees - lo) * sizeof(*t->trees));
	memset(&t->trees[lo], 0, sizeof(*t->trees));
	t->trees[lo].id = id;
	t->ntrees++;
	t->table_changed = 1;
	return &t->trees[lo];
}

/* Write n entries (struct extent for a leaf, struct ix_child else) into page pgno (copied if shared) as a node; its new number in *pgno. */
static int
ix_node_store(struct index_txn *t, uint64_t *pgno, int fresh, uint32_t level, const void *ents,
    uint32_t n)
{
	uint8_t *q = fresh ? ix_page_new(t, pgno) : ix_page_write(t, pgno);
	struct ix_node *h = (struct ix_node *)q;
	uint64_t *body;

	if (!q)
		return -ENOMEM;
	body = (uint64_t *)(q + sizeof(*h));
	memset(q, 0, INDEX_PAGE);
	h->type = level == 1 ? IX_LEAF : IX_INNER;
	h->level = (uint16_t)level;
	h->count = n;
	if (level == 1) {
		const struct extent *e = ents;
		for (uint32_t i = 0; i < n; i++) {
			body[i] = e[i].loff;
			body[IX_LEAF_CAP + i] = e[i].len;
			body[2 * IX_LEAF_CAP + i] = e[i].laddr;
		}
	} else {
		const struct ix_child *c = ents;
		for (uint32_t i = 0; i < n; i++) {
			body[i] = c[i].key;
			body[IX_INNER_CAP + i] = c[i].page;
		}
	}
	return 0;
}

/*
 * Store the m entries a node at pgno became: none (the page goes), one page,
 * or two halves.  out->c[i].key is each page's first key.
 */
static int
ix_node_emit(struct index_txn *t, uint64_t pgno, uint32_t level, const void *ents, uint32_t m,
    struct ix_out *out)
{
	uint32_t cap = level == 1 ? IX_LEAF_CAP : IX_INNER_CAP;
	size_t sz = level == 1 ? sizeof(struct extent) : sizeof(struct ix_child);
	const uint8_t *v = ents;
	uint32_t h = m > cap ? m / 2 : m;
	int rc;

	out->n = 0;
	if (m == 0) {
		ix_page_free(t, pgno);
		return 0;
	}
	if ((rc = ix_node_store(t, &pgno, 0, level, v, h)) != 0)
		return rc;
	out->c[0].key = *(const uint64_t *)v;
	out->c[0].page = pgno;
	out->n = 1;
	if (h == m)
		return 0;
	if ((rc = ix_node_store(t, &pgno, 1, level, v + h * sz, m - h)) != 0)
		return rc;
	out->c[1].key = *(const uint64_t *)(v + h * sz);
	out->c[1].page = pgno;
	out->n = 2;
	return 0;
}

/* Take the subtree at pgno out of tree tr: its extents leave the counts; its own pages are freed. */
static int
ix_subtree_drop(struct index_txn *t, struct ix_tree *tr, uint64_t pgno, uint32_t level)
{
	const uint8_t *p = ix_page_read(t, pgno);
	uint32_t n;

	if (!p)
		return -EUCLEAN;
	n = ((const struct ix_node *)p)->count;
	if (level == 1) {
		tr->extents -= n;
		for (uint32_t i = 0; i < n; i++)
			if (IX_LADDR(p)[i] != EXTMAP_ZERO)
				tr->log_bytes -= IX_LEN(p)[i];
	} else {
		for (uint32_t i = 0; i < n; i++) {
			int rc = ix_subtree_drop(t, tr, IX_PAGES(p)[i], level - 1);
			if (rc != 0)
				return rc;
		}
	}
	ix_page_free(t, pgno);
	return 0;
}

/* The leaf case of ix_node_replace. */
static int
ix_leaf_replace(struct index_txn *t, struct ix_tree *tr, uint64_t pgno, uint64_t a, uint64_t b,
    const struct extent *ins, struct ix_out *out)
{
	struct extent v[IX_LEAF_CAP + 3], e[IX_LEAF_CAP];
	const uint8_t *p = ix_page_read(t, pgno);
	uint32_t n, i, j, m = 0, k;

	if (!p)
		return -EUCLEAN;
	n = ((const struct ix_node *)p)->count;
	if (n > IX_LEAF_CAP)
		return -EUCLEAN;
	for (i = 0; i < n; i++)
		ix_leaf_get(p, i, &e[i]);
	i = ix_leaf_search(p, n, a);
	for (j = i; j < n && e[j].loff < b; j++)
		;
	if (i == j && !ins)
		return 1;
	memcpy(v, e, i * sizeof(*e));
	m = i;
	if (i < j && e[i].loff < a)
		v[m++] = (struct extent){ e[i].loff, a - e[i].loff, e[i].laddr };
	if (ins)
		v[m++] = *ins;
	if (i < j && extent_end(&e[j - 1]) > b)
		v[m++] = (struct extent){ b, extent_end(&e[j - 1]) - b, e[j - 1].laddr };
	for (k = i; k < j; k++)
		tr->log_bytes -= extent_log_bytes(&e[k]);
	if (ins)
		tr->log_bytes += extent_log_bytes(ins);
	if (i < j && e[i].loff < a)
		tr->log_bytes += extent_log_bytes(&v[i]);
	if (i < j && extent_end(&e[j - 1]) > b)
		tr->log_bytes += extent_log_bytes(&v[m - 1]);
	memcpy(&v[m], &e[j], (n - j) * sizeof(*e));
	m += n - j;
	/* touching neighbours of one record (or both zeros) merge, within this leaf */
	for (i = 0, k = 1; k < m; k++) {
		if (extent_end(&v[i]) == v[k].loff && v[i].laddr == v[k].laddr)
			v[i].len += v[k].len;
		else
			v[++i] = v[k];
	}
	if (m > 0)
		m = i + 1;
	tr->extents += (uint64_t)m - n;
	return ix_node_emit(t, pgno, 1, v, m, out);
}

/* Read node p's entries into v (struct extent for a leaf, struct ix_child else); its count. */
static uint32_t
ix_node_load(const uint8_t *p, uint32_t level, void *v)
{
	uint32_t n = ((const struct ix_node *)p)->count;

	for (uint32_t i = 0; i < n; i++) {
		if (level == 1)
			ix_leaf_get(p, i, &((struct extent *)v)[i]);
		else
			((struct ix_child *)v)[i] = (struct ix_child){ IX_KEYS(p)[i], IX_PAGES(p)[i] };
	}
	return n;
}

/*
 * Child pos of v (m children at level clevel), just edited, holds under a
 * quarter of a page: join it with a neighbour if both fit in one page, so
 * that clears cannot leave a tree of near-empty pages.  0 or a negative errno.
 */
static int
ix_join_small(struct index_txn *t, struct ix_tree *tr, struct ix_child *v, uint32_t *m,
    uint32_t pos, uint32_t clevel)
{
	union {
		struct extent	e[2 * IX_LEAF_CAP];
		struct ix_child	c[2 * IX_INNER_CAP];
	} u;
	uint32_t cap = clevel == 1 ? IX_LEAF_CAP : IX_INNER_CAP, l, nl, nr;
	const uint8_t *pl, *pr;
	struct ix_out out;
	int rc;

	if (*m < 2 || pos >= *m)
		return 0;
	if (!(pl = ix_page_read(t, v[pos].page)))
		return -EUCLEAN;
	if (((const struct ix_node *)pl)->count >= cap / 4)
		return 0;
	l = pos + 1 < *m ? pos : pos - 1;
	if (!(pl = ix_page_read(t, v[l].page)) || !(pr = ix_page_read(t, v[l + 1].page)))
		return -EUCLEAN;
	if (((const struct ix_node *)pl)->count + ((const struct ix_node *)pr)->count > cap)
		return 0;
	nl = ix_node_load(pl, clevel, &u);
	if (clevel == 1) {
		nr = ix_node_load(pr, clevel, &u.e[nl]);
		if (extent_end(&u.e[nl - 1]) == u.e[nl].loff && u.e[nl - 1].laddr == u.e[nl].laddr) {
			u.e[nl - 1].len += u.e[nl].len;	/* one record (or zeros) across the seam */
			memmove(&u.e[nl], &u.e[nl + 1], --nr * sizeof(u.e[0]));
			tr->extents--;
		}
	} else {
		nr = ix_node_load(pr, clevel, &u.c[nl]);
		u.c[nl].key = v[l + 1].key;	/* the right node's lower bound becomes a key */
	}
	ix_page_free(t, v[l + 1].page);
	if ((rc = ix_node_emit(t, v[l].page, clevel, &u, nl + nr, &out)) != 0)
		return rc;
	v[l].page = out.c[0].page;
	memmove(&v[l + 1], &v[l + 2], (*m - l - 2) * sizeof(*v));
	(*m)--;
	return 0;
}

/*
 * Clear [a, b) under the node pgno at level (>= 1) and, if ins, put *ins
 * (which starts at a) where a falls.  0 with what the node became in out,
 * 1 if nothing changed (out unset), or a negative errno (the transaction is
 * then unusable: the caller aborts it).
 */
static int
ix_node_replace(struct index_txn *t, struct ix_tree *tr, uint64_t pgno, uint32_t level,
    uint64_t a, uint64_t b, const struct extent *ins, struct ix_out *out)
{
	struct ix_child v[IX_INNER_CAP + 4];
	const uint8_t *p;
	struct ix_out ra, rb;
	uint32_t n, ia, ib, m, k;
	int rc, ca, cb = 1;

	if (level == 1)
		return ix_leaf_replace(t, tr, pgno, a, b, ins, out);
	if (!(p = ix_page_read(t, pgno)))
		return -EUCLEAN;
	n = ((const struct ix_node *)p)->count;
	if (n > IX_INNER_CAP)
		return -EUCLEAN;
	ia = ix_key_search(IX_KEYS(p), n, a);
	ib = ix_key_search(IX_KEYS(p), n, b - 1);
	/* the entries are edited in v; the page itself is copied (or changed) last */
	for (k = 0; k < n; k++)
		v[k] = (struct ix_child){ IX_KEYS(p)[k], IX_PAGES(p)[k] };
	ca = ix_node_replace(t, tr, v[ia].page, level - 1, a, ib == ia ? b : v[ia + 1].key, ins,
	    &ra);
	if (ca < 0)
		return ca;
	if (ib > ia) {
		cb = ix_node_replace(t, tr, v[ib].page, level - 1, v[ib].key, b, NULL, &rb);
		if (cb < 0)
			return cb;
		for (k = ia + 1; k < ib; k++)
			if ((rc = ix_subtree_drop(t, tr, v[k].page, level - 1)) != 0)
				return rc;
	}
	if (ca == 1 && cb == 1 && ib <= ia + 1)
		return 1;
	/* v becomes: v[0..ia), ra, rb, v(ib..n) */
	{
		struct ix_child tail[IX_INNER_CAP];
		uint32_t ntail = n - ib - 1;
		uint64_t key_a = v[ia].key, page_b = v[ib].page;
		memcpy(tail, &v[ib + 1], ntail * sizeof(*v));
		m = ia;
		if (ca == 1) {
			v[m++] = (struct ix_child){ key_a, v[ia].page };
		} else {
			for (k = 0; k < ra.n; k++)
				v[m++] = ra.c[k];
			if (ra.n > 0)
				v[m - ra.n].key = key_a;
		}
		if (ib > ia) {
			if (cb == 1) {
				v[m++] = (struct ix_child){ b, page_b };	/* nothing below b in it */
			} else {
				for (k = 0; k < rb.n; k++)
					v[m++] = rb.c[k];
				if (rb.n > 0)
					v[m - rb.n].key = b;
			}
		}
		memcpy(&v[m], tail, ntail * sizeof(*v));
		m += ntail;
		/* the right one first: joining it cannot move the left one */
		if (ib > ia && cb == 0 && rb.n == 1 &&
		    (rc = ix_join_small(t, tr, v, &m, ia + (ca == 1 ? 1 : ra.n), level - 1)) != 0)
			return rc;
		if (ca == 0 && ra.n == 1 && (rc = ix_join_small(t, tr, v, &m, ia, level - 1)) != 0)
			return rc;
	}
	return ix_node_emit(t, pgno, level, v, m, out);
}

/* Clear [a, b) of tree tr and, if ins, map it as *ins; 0 or a negative errno. */
int
ix_tree_replace(struct index_txn *t, struct ix_tree *tr, uint64_t a, uint64_t b,
    const struct extent *ins)
{
	struct ix_out out;
	int rc;

	if (tr->height == 0) {
		uint64_t pg;
		if (!ins)
			return 0;
		if ((rc = ix_node_store(t, &pg, 1, 1, ins, 1)) != 0)
			return rc;
		tr->root = pg;
		tr->height = 1;
		tr->extents = 1;
		tr->log_bytes = extent_log_bytes(ins);
		t->table_changed = 1;
		return 0;
	}
	rc = ix_node_replace(t, tr, tr->root, (uint32_t)tr->height, a, b, ins, &out);
	if (rc == 1)
		return 0;
	if (rc < 0)
		return rc;
	t->table_changed = 1;
	if (out.n == 0) {
		tr->root = 0;
		tr->height = 0;
	} else if (out.n == 2) {
		uint64_t pg;
		if (tr->height >= IX_MAX_HEIGHT)
			return -EFBIG;
		out.c[0].key = 0;
		if ((rc = ix_node_store(t, &pg, 1, (uint32_t)tr->height + 1, out.c, 2)) != 0)
			return rc;
		tr->root = pg;
		tr->height++;
	} else {
		tr->root = out.c[0].page;
		/* a root with one child gives way to it */
		while (tr->height > 1) {
			const uint8_t *p = ix_page_read(t, tr->root);
			uint64_t old = tr->root;
			if (!p)
				return -EUCLEAN;
			if (((const struct ix_node *)p)->count != 1)
				break;
			tr->root = IX_PAGES(p)[0];
			tr->height--;
			ix_page_free(t, old);
		}
	}
	return 0;
}

struct ix_check {
	struct index	*ix;
	uint64_t	limit;
	uint64_t	extents, log_bytes;
	char		*err;
	size_t		errlen;
};

/* Check the committed subtree at pgno: everything under it within [lo, hi). 0 or -EUCLEAN. */
static int
ix_check_node(struct ix_check *k, uint64_t pgno, uint32_t level, uint64_t lo, uint64_t hi)
{
	const uint8_t *p;
	const struct ix_node *h;

	if (pgno < 2 || pgno >= k->limit) {
		snprintf(k->err, k->errlen, "page %" PRIu64 " is outside the file", pgno);
		return -EUCLEAN;
	}
	p = k->ix->map + pgno * INDEX_PAGE;
	h = (const struct ix_node *)p;
	if (ix_page_crc(p) != h->crc) {
		snprintf(k->err, k->errlen, "page %" PRIu64 ": bad checksum", pgno);
		return -EUCLEAN;
	}
	if (h->level != level || h->type != (level == 1 ? IX_LEAF : IX_INNER) || h->count == 0 ||
	    h->count > (level == 1 ? IX_LEAF_CAP : IX_INNER_CAP)) {
		snprintf(k->err, k->errlen, "page %" PRIu64 ": bad header (type %u level %u count %u)",
		    pgno, h->type, h->level, h->count);
		return -EUCLEAN;
	}
	if (level == 1) {
		uint64_t prev = lo;
		for (uint32_t i = 0; i < h->count; i++) {
			struct extent e;
			ix_leaf_get(p, i, &e);
			if (e.len == 0 || e.loff < prev || extent_end(&e) < e.loff || extent_end(&e) > hi) {
				snprintf(k->err, k->errlen, "page %" PRIu64 ": extent %u out of order", pgno, i);
				return -EUCLEAN;
			}
			prev = extent_end(&e);
			k->extents++;
			k->log_bytes += extent_log_bytes(&e);
		}
		return 0;
	}
	for (uint32_t i = 0; i < h->count; i++) {
		uint64_t clo = i == 0 ? lo : IX_KEYS(p)[i];
		uint64_t chi = i + 1 < h->count ? IX_KEYS(p)[i + 1] : hi;
		int rc;
		if (clo < lo || chi > hi || clo > chi) {
			snprintf(k->err, k->errlen, "page %" PRIu64 ": key %u out of order", pgno, i);
			return -EUCLEAN;
		}
		if ((rc = ix_check_node(k, IX_PAGES(p)[i], level - 1, clo, chi)) != 0)
			return rc;
	}
	return 0;
}

/* Check every page of committed tree tr and its counts; 0 or -EUCLEAN with err. */
int
ix_tree_check(struct index *ix, const struct ix_tree *tr, char *err, size_t errlen)
{
	struct ix_check k = { ix, atomic_load(&ix->file_pages), 0, 0, err, errlen };
	int rc;

	if (tr->height == 0) {
		if (tr->root != 0 || tr->extents != 0 || tr->log_bytes != 0) {
			snprintf(err, errlen, "tree %" PRIu64 ": empty with a root or counts", tr->id);
			return -EUCLEAN;
		}
		return 0;
	}
	if (tr->height > IX_MAX_HEIGHT) {
		snprintf(err, errlen, "tree %" PRIu64 ": height %" PRIu64, tr->id, tr->height);
		return -EUCLEAN;
	}
	if ((rc = ix_check_node(&k, tr->root, (uint32_t)tr->height, 0, UINT64_MAX)) != 0)
		return rc;
	if (k.extents != tr->extents || k.log_bytes != tr->log_bytes) {
		snprintf(err, errlen, "tree %" PRIu64 ": %" PRIu64 " extents, %" PRIu64
		    " log bytes; the table says %" PRIu64 ", %" PRIu64, tr->id, k.extents,
		    k.log_bytes, tr->extents, tr->log_bytes);
		return -EUCLEAN;
	}
	return 0;
}

/* Free the pages of a subtree that this transaction wrote and no clone shares (none under the others). */
void
ix_subtree_release(struct index_txn *t, uint64_t pgno, uint32_t level)
{
	const uint8_t *p;

	if (pgno >= t->hwm || !ix_bit(t->writable, pgno))
		return;
	if (level > 1 && (p = ix_page_read(t, pgno)) != NULL) {
		for (uint32_t i = 0; i < ((const struct ix_node *)p)->count; i++)
			ix_subtree_release(t, IX_PAGES(p)[i], level - 1);
	}
	ix_page_free(t, pgno);
}

/* ---- the public edits ---------------------------------------------------- */

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

/* ---- verifying ------------------------------------------------------------- */

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
