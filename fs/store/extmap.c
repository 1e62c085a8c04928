/*
 * extmap: see extmap.h for the contract.
 *
 * Design: a two-level B+tree.  Extents live in leaves, sorted arrays of up to
 * LEAF_CAP entries (24 bytes each); the map holds a sorted array of leaf
 * pointers.  A lookup is two binary searches; an insert is a memmove inside
 * one leaf, plus, every ~LEAF_CAP/2 inserts, a split that inserts one pointer
 * in the top array.  At a million extents the top array has ~10k pointers,
 * so its memmove stays cheap, and memory is ~24 bytes per extent divided by
 * the fill (50..100% after inserts, appends in order fill leaves completely).
 * Overwrites and clears can thin leaves out; two neighbouring leaves that
 * hold LEAF_CAP/2 extents or fewer together are joined (extmap_join_leaves),
 * so every pair holds more than that, leaves are on average more than a
 * quarter full, and a map costs at most ~96 bytes per extent (plus 16 per
 * leaf in the top array): its memory is bounded by its extent count.
 *
 * A position is (leaf index, slot).  Every mutation first reserves what the
 * worst case needs (two spare leaves, room for two pointers: extmap_begin),
 * so it cannot fail half-way.  Between calls count and log_bytes are the
 * number of extents and their bytes mapped to the log, and no leaf is
 * empty (one emptied is dropped: extmap_drop_leaf).
 *
 * keys[i] is leaves[i]'s first loff, kept next to the pointers so that the
 * search over leaves reads one dense array instead of one leaf per step (a
 * cache miss each on a big map).  Invariant: keys[i] == leaves[i]->e[0].loff
 * for every i < nleaves; whatever changes a leaf's first extent or moves
 * leaves calls leaf_key() or moves keys[] alike.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "extmap.h"

#define LEAF_CAP 128

struct leaf {
	uint32_t	n;
	struct extent	e[LEAF_CAP];
};

struct extmap {
	struct leaf	**leaves;
	uint64_t	 *keys;		/* keys[i] = leaves[i]->e[0].loff */
	size_t		  nleaves;
	size_t		  cap;		/* of leaves[] and keys[] */
	uint64_t	  count;
	uint64_t	  log_bytes;
	struct leaf	 *spare[2];	/* reserved for splits */
};

/* b continues a: they touch and map to the same record (or both to zeros). */
static inline int
ext_continues(const struct extent *a, const struct extent *b)
{
	return extent_end(a) == b->loff && a->laddr == b->laddr;
}

struct extmap *
extmap_new(void)
{
	return calloc(1, sizeof(struct extmap));
}

void
extmap_free(struct extmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nleaves; i++)
		free(m->leaves[i]);
	free(m->leaves);
	free(m->keys);
	free(m->spare[0]);
	free(m->spare[1]);
	free(m);
}

/* Room for cap leaves in leaves[] and keys[]; on -ENOMEM cap is unchanged. */
static int
extmap_grow(struct extmap *m, size_t cap)
{
	struct leaf **l;
	uint64_t *k;

	if (!(l = realloc(m->leaves, cap * sizeof(*l))))
		return -ENOMEM;
	m->leaves = l;
	if (!(k = realloc(m->keys, cap * sizeof(*k))))
		return -ENOMEM;
	m->keys = k;
	m->cap = cap;
	return 0;
}

/* Reserve what the worst change needs: two spare leaves, room for two more; 0 or -ENOMEM. */
static int
extmap_reserve(struct extmap *m)
{
	for (int i = 0; i < 2; i++) {
		if (!m->spare[i] && !(m->spare[i] = malloc(sizeof(struct leaf))))
			return -ENOMEM;
	}
	if (m->nleaves + 2 > m->cap)
		return extmap_grow(m, m->cap ? m->cap * 2 : 16);
	return 0;
}

/*
 * Before a change to [loff, loff+len): 1 if the range is empty (nothing to
 * do), -EINVAL if it wraps, -ENOMEM if the worst case cannot be reserved
 * (the map is unchanged), else 0 and the change cannot fail.
 */
static int
extmap_begin(struct extmap *m, uint64_t loff, uint64_t len)
{
	if (len == 0)
		return 1;
	if (loff + len < loff)
		return -EINVAL;
	return extmap_reserve(m);
}

static struct leaf *
extmap_take_spare(struct extmap *m)
{
	struct leaf *l = m->spare[0] ? m->spare[0] : m->spare[1];

	assert(l);
	if (l == m->spare[0])
		m->spare[0] = NULL;
	else
		m->spare[1] = NULL;
	l->n = 0;
	return l;
}

/* Leaf li's first extent changed (or it is new): its key follows. */
static inline void
leaf_key(struct extmap *m, size_t li)
{
	assert(m->leaves[li]->n > 0);
	m->keys[li] = m->leaves[li]->e[0].loff;
}

static void
extmap_drop_leaf(struct extmap *m, size_t li)
{
	struct leaf *l = m->leaves[li];

	memmove(&m->leaves[li], &m->leaves[li + 1], (m->nleaves - li - 1) * sizeof(*m->leaves));
	memmove(&m->keys[li], &m->keys[li + 1], (m->nleaves - li - 1) * sizeof(*m->keys));
	m->nleaves--;
	if (!m->spare[0])
		m->spare[0] = l;
	else if (!m->spare[1])
		m->spare[1] = l;
	else
		free(l);
}

/* Index of the last leaf whose first loff <= off (0 if none). */
static size_t
extmap_leaf_for(const struct extmap *m, uint64_t off)
{
	size_t lo = 0, hi = m->nleaves;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->keys[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* First slot in l whose end > off (l->n if none). */
static uint32_t
leaf_slot_end_after(const struct leaf *l, uint64_t off)
{
	uint32_t lo = 0, hi = l->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (extent_end(&l->e[mid]) > off)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/*
 * Position of the first extent whose end > off.  Returns 0 and sets *li,*si,
 * or -1 if there is none.
 */
static int
extmap_seek(const struct extmap *m, uint64_t off, size_t *li, uint32_t *si)
{
	size_t l;
	uint32_t s;

	if (m->nleaves == 0)
		return -1;
	l = extmap_leaf_for(m, off);
	s = leaf_slot_end_after(m->leaves[l], off);
	if (s == m->leaves[l]->n) {
		if (l + 1 == m->nleaves)
			return -1;
		l++;
		s = 0;
	}
	*li = l;
	*si = s;
	return 0;
}

/*
 * Insert e at (li, si) in leaf li, splitting it if full.  Space is reserved.
 * Returns e's slot; *li becomes its leaf (the right half after a split).
 */
static uint32_t
extmap_insert_at(struct extmap *m, size_t *pli, uint32_t si, const struct extent *e)
{
	size_t li = *pli;
	struct leaf *l = m->leaves[li];
	size_t at = li;		/* the leaf e goes into */

	if (l->n == LEAF_CAP) {
		struct leaf *r = extmap_take_spare(m);
		uint32_t keep = (si == LEAF_CAP && li + 1 == m->nleaves) ? LEAF_CAP : LEAF_CAP / 2;

		/* appending at the very end: start a fresh leaf, keep this one full */
		r->n = LEAF_CAP - keep;
		memcpy(r->e, &l->e[keep], r->n * sizeof(struct extent));
		l->n = keep;
		memmove(&m->leaves[li + 2], &m->leaves[li + 1], (m->nleaves - li - 1) * sizeof(*m->leaves));
		memmove(&m->keys[li + 2], &m->keys[li + 1], (m->nleaves - li - 1) * sizeof(*m->keys));
		m->leaves[li + 1] = r;
		m->nleaves++;
		if (r->n > 0)
			leaf_key(m, li + 1);
		if (si > keep || (si == keep && keep == LEAF_CAP)) {
			l = r;
			si -= keep;
			at = li + 1;
		}
	}
	memmove(&l->e[si + 1], &l->e[si], (l->n - si) * sizeof(struct extent));
	l->e[si] = *e;
	l->n++;
	if (si == 0)
		leaf_key(m, at);
	m->count++;
	m->log_bytes += extent_log_bytes(e);
	*pli = at;
	return si;
}

/*
 * Remove every mapping in [s, e).  Space is reserved.  Sets (*pli, *psi) to
 * where an extent starting at s now goes (the slot of the first extent after
 * the range, or one past the last extent of the map); with an empty map,
 * (0, 0).  A writer inserts there without a second search.
 */
static void
extmap_remove_range(struct extmap *m, uint64_t s, uint64_t e, size_t *pli, uint32_t *psi)
{
	size_t li;
	uint32_t si;

	if (extmap_seek(m, s, &li, &si) < 0)
		goto end_of_map;
	{
		struct extent *x = &m->leaves[li]->e[si];
		if (x->loff >= e)
			goto here;
		if (x->loff < s) {
			uint64_t xend = extent_end(x);
			if (xend > e) {
				/* the range is strictly inside x: split it in two */
				struct extent right = { e, xend - e, x->laddr };
				m->log_bytes -= extent_log_bytes(x);
				x->len = s - x->loff;
				m->log_bytes += extent_log_bytes(x);
				si = extmap_insert_at(m, &li, si + 1, &right);
				goto here;
			}
			m->log_bytes -= extmap_in_log(x->laddr) ? xend - s : 0;
			x->len = s - x->loff;
			si++;
		}
	}
	while (li < m->nleaves) {
		struct leaf *l = m->leaves[li];
		uint32_t a = si, b = si;

		while (b < l->n && extent_end(&l->e[b]) <= e) {
			m->log_bytes -= extent_log_bytes(&l->e[b]);
			b++;
		}
		if (b > a) {
			memmove(&l->e[a], &l->e[b], (l->n - b) * sizeof(struct extent));
			l->n -= b - a;
			m->count -= b - a;
		}
		if (a < l->n) {
			struct extent *x = &l->e[a];
			if (x->loff < e) {
				uint64_t d = e - x->loff;
				m->log_bytes -= extmap_in_log(x->laddr) ? d : 0;
				x->loff = e;
				x->len -= d;
			}
			if (a == 0)
				leaf_key(m, li);
			si = a;
			goto here;
		}
		if (l->n == 0)
			extmap_drop_leaf(m, li);
		else
			li++;
		si = 0;
	}
end_of_map:
	li = m->nleaves ? m->nleaves - 1 : 0;
	si = m->nleaves ? m->leaves[li]->n : 0;
here:
	*pli = li;
	*psi = si;
}

/* Remove the extent at (li, si). */
static void
extmap_delete_at(struct extmap *m, size_t li, uint32_t si)
{
	struct leaf *l = m->leaves[li];

	m->log_bytes -= extent_log_bytes(&l->e[si]);
	m->count--;
	memmove(&l->e[si], &l->e[si + 1], (l->n - si - 1) * sizeof(struct extent));
	l->n--;
	if (l->n == 0)
		extmap_drop_leaf(m, li);
	else if (si == 0)
		leaf_key(m, li);
}

/*
 * After a change around leaf li: join each pair of neighbouring leaves in
 * li-2..li+2 that together hold LEAF_CAP/2 extents or fewer (a change
 * shrinks at most the leaves next to where it ended).  The left leaf keeps
 * its first extent, so its key holds.
 */
static void
extmap_join_leaves(struct extmap *m, size_t li)
{
	size_t i = li > 2 ? li - 2 : 0;

	while (i + 1 < m->nleaves && i <= li + 2) {
		struct leaf *a = m->leaves[i], *b = m->leaves[i + 1];
		if (a->n + b->n > LEAF_CAP / 2) {
			i++;
			continue;
		}
		memcpy(&a->e[a->n], b->e, b->n * sizeof(struct extent));
		a->n += b->n;
		extmap_drop_leaf(m, i + 1);
	}
}

/* Merge the extent at (li, si) with its neighbours where they continue it. */
static void
extmap_merge_around(struct extmap *m, size_t li, uint32_t si)
{
	struct extent *x = &m->leaves[li]->e[si];
	/* successor */
	{
		size_t nl = li;
		uint32_t ns = si + 1;
		if (ns == m->leaves[li]->n) {
			nl = li + 1;
			ns = 0;
		}
		if (nl < m->nleaves && ext_continues(x, &m->leaves[nl]->e[ns])) {
			uint64_t add = m->leaves[nl]->e[ns].len;
			extmap_delete_at(m, nl, ns);
			/* deleting from another leaf never moves x */
			x->len += add;
			m->log_bytes += extmap_in_log(x->laddr) ? add : 0;
		}
	}
	/* predecessor */
	{
		struct extent *p;
		if (si > 0)
			p = &m->leaves[li]->e[si - 1];
		else if (li > 0)
			p = &m->leaves[li - 1]->e[m->leaves[li - 1]->n - 1];
		else
			return;
		if (ext_continues(p, x)) {
			p->len += x->len;
			m->log_bytes += extmap_in_log(p->laddr) ? x->len : 0;
			extmap_delete_at(m, li, si);
		}
	}
}

int
extmap_set(struct extmap *m, uint64_t loff, uint64_t len, uint64_t laddr)
{
	struct extent e = { loff, len, laddr };
	size_t li;
	uint32_t si;
	int rc;

	if ((rc = extmap_begin(m, loff, len)) != 0)
		return rc < 0 ? rc : 0;
	if (m->nleaves > 0) {
		/* loading a map in order (catalog, snapshot): past the last extent, no search */
		size_t ll = m->nleaves - 1;
		struct leaf *last = m->leaves[ll];
		if (extent_end(&last->e[last->n - 1]) <= loff) {
			if (ext_continues(&last->e[last->n - 1], &e)) {
				last->e[last->n - 1].len += len;
				m->log_bytes += extent_log_bytes(&e);
			} else {
				extmap_insert_at(m, &ll, last->n, &e);
			}
			return 0;
		}
	}
	/* one search: the removal leaves the position where e goes */
	extmap_remove_range(m, loff, loff + len, &li, &si);
	if (m->nleaves == 0) {
		m->leaves[0] = extmap_take_spare(m);
		m->nleaves = 1;
	}
	si = extmap_insert_at(m, &li, si, &e);
	extmap_merge_around(m, li, si);
	extmap_join_leaves(m, li);
	return 0;
}

int
extmap_load(struct extmap *m, const struct extent *v, size_t n)
{
	struct extent prev = { 0, 0, 0 };

	if (m->count != 0)
		return -EINVAL;
	/* check everything first: a refused load leaves the map empty and whole */
	for (size_t i = 0; i < n; i++) {
		struct extent e;
		memcpy(&e, &v[i], sizeof(e));
		if (e.len == 0 || e.loff + e.len < e.loff || (i > 0 && e.loff < extent_end(&prev)))
			return -EUCLEAN;
		prev = e;
	}
	for (size_t i = 0; i < n; ) {
		struct leaf *l;
		size_t want = m->nleaves + 1;
		if (want + 2 > m->cap) {
			size_t cap = m->cap ? m->cap : 16;
			while (want + 2 > cap)
				cap *= 2;
			if (extmap_grow(m, cap) < 0)
				goto nomem;
		}
		if (!(l = malloc(sizeof(*l))))
			goto nomem;
		l->n = 0;
		/* full leaves, merging neighbours that continue each other */
		for (; i < n && l->n < LEAF_CAP; i++) {
			struct extent e;
			memcpy(&e, &v[i], sizeof(e));
			if (l->n > 0 && ext_continues(&l->e[l->n - 1], &e)) {
				l->e[l->n - 1].len += e.len;
			} else if (l->n == 0 && m->nleaves > 0 &&
			    ext_continues(&m->leaves[m->nleaves - 1]->e[LEAF_CAP - 1], &e)) {
				m->leaves[m->nleaves - 1]->e[LEAF_CAP - 1].len += e.len;
			} else {
				l->e[l->n++] = e;
				m->count++;
			}
			m->log_bytes += extent_log_bytes(&e);
		}
		if (l->n == 0) {
			free(l);
		} else {
			m->leaves[m->nleaves] = l;
			leaf_key(m, m->nleaves++);
		}
	}
	return 0;
nomem:
	for (size_t i = 0; i < m->nleaves; i++)
		free(m->leaves[i]);
	m->nleaves = 0;
	m->count = 0;
	m->log_bytes = 0;
	return -ENOMEM;
}

int
extmap_clear(struct extmap *m, uint64_t loff, uint64_t len)
{
	size_t li;
	uint32_t si;
	int rc;

	if ((rc = extmap_begin(m, loff, len)) != 0)
		return rc < 0 ? rc : 0;
	extmap_remove_range(m, loff, loff + len, &li, &si);
	extmap_join_leaves(m, li);
	return 0;
}

int
extmap_walk(const struct extmap *m, uint64_t off, uint64_t end,
    int (*fn)(const struct extent *e, void *arg), void *arg)
{
	size_t li;
	uint32_t si;

	if (off >= end || extmap_seek(m, off, &li, &si) < 0)
		return 0;
	for (; li < m->nleaves; li++, si = 0) {
		const struct leaf *l = m->leaves[li];
		for (; si < l->n; si++) {
			struct extent c = l->e[si];
			int rc;
			if (c.loff >= end)
				return 0;
			if (c.loff < off) {
				c.len -= off - c.loff;
				c.loff = off;
			}
			if (extent_end(&c) > end)
				c.len = end - c.loff;
			if ((rc = fn(&c, arg)) != 0)
				return rc;
		}
	}
	return 0;
}

static int
extmap_first_cb(const struct extent *e, void *arg)
{
	*(struct extent *)arg = *e;
	return 1;
}

int
extmap_first(const struct extmap *m, uint64_t off, uint64_t end, struct extent *out)
{
	return extmap_walk(m, off, end, extmap_first_cb, out);
}

uint64_t
extmap_count(const struct extmap *m)
{
	return m->count;
}

uint64_t
extmap_log_bytes(const struct extmap *m)
{
	return m->log_bytes;
}

size_t
extmap_memory(const struct extmap *m)
{
	return sizeof(*m) + m->cap * (sizeof(*m->leaves) + sizeof(*m->keys)) +
	    (m->nleaves + (m->spare[0] != NULL) + (m->spare[1] != NULL)) * sizeof(struct leaf);
}
