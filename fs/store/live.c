/*
 * live: how many bytes of each log segment the disks still use (what the
 * cleaner may release, and what status calls live), exact when disks share
 * records.
 *
 * Design notes
 *
 * A disk alone in its family (logfmt.h: no snapshot or clone shares its
 * records) counts its view's log extents as they are: nothing else maps
 * them, so a walk is exact and takes no memory.  The members of a larger
 * family map the same bytes of the same records, once per snapshot or
 * clone; counting each view would count shared bytes many times, and a
 * segment full of one disk's shared data would look fuller than it is and
 * never be cleaned.  Their extents go into a table keyed by record (its
 * laddr), each record holding the union of the byte ranges any member maps,
 * and each segment gets the union's size.  The table holds one entry per
 * record and separate range, not per member: 100 snapshots of a disk cost
 * what one does.
 *
 * Records never cross families, so one table serves every family at once.
 * A member whose view is another's (the same committed root, no overlay:
 * snapshots of one moment) is not walked again.
 *
 * The figure status shows (store_log_space) sums the disks' log_bytes,
 * which counts shared bytes once per disk; the last exact pass leaves how
 * much that sum was over (live_excess), and it is taken off.  The checkpoint
 * thread runs a pass at least every CLEAN_LIVE_PASS_S seconds while
 * families share records, and at its next checkpoint after a snapshot, a
 * clone or a purge (they clear live_pass_ns), so the figure stays near the
 * truth.
 *
 * Error convention: 0 or -errno (-EUCLEAN: a map could not be walked whole,
 * the figures are too low and the cleaner releases nothing; -ENOMEM).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hlog.h"
#include "store_int.h"

/* One range of one record that some member maps; more ranges of it chain by next. */
struct rec_range {
	uint64_t	 laddr;
	uint64_t	 lo, hi;	/* disk bytes [lo, hi) of the record */
	uint32_t	 next;		/* the record's next range, + 1 (0: none) */
	int		 head;		/* the record's first range: the one in a slot */
};

struct live_table {
	uint32_t	*slot;		/* open addressing by laddr: range index + 1, 0 empty */
	size_t		 nslots;
	struct rec_range *r;
	size_t		 n, cap;
};

struct live_walk {
	struct store	*st;
	uint64_t	*live;		/* per segment first..last */
	uint32_t	 first, last;
	struct live_table *t;		/* NULL while walking a disk alone in its family */
	uint64_t	 met_shared;	/* bytes of shared families met, once per member */
	int		 rc;
};

static size_t
slot_of(const struct live_table *t, uint64_t laddr)
{
	uint64_t h = laddr * UINT64_C(0x9e3779b97f4a7c15);

	return (size_t)(h >> 20) & (t->nslots - 1);
}

static int
table_grow(struct live_table *t)
{
	size_t n = t->nslots ? t->nslots * 2 : 1024;
	uint32_t *s = calloc(n, sizeof(*s));

	if (!s)
		return -ENOMEM;
	free(t->slot);
	t->slot = s;
	t->nslots = n;
	/* every record's first range goes back in (the others hang off it) */
	for (size_t i = 0; i < t->n; i++) {
		size_t k;
		if (!t->r[i].head)
			continue;
		for (k = slot_of(t, t->r[i].laddr); t->slot[k]; k = (k + 1) & (t->nslots - 1))
			;
		t->slot[k] = (uint32_t)(i + 1);
	}
	return 0;
}

static int
range_new(struct live_table *t, uint64_t laddr, uint64_t lo, uint64_t hi, uint32_t *out)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4096;
		struct rec_range *r = cap > UINT32_MAX - 1 ? NULL : realloc(t->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		t->r = r;
		t->cap = cap;
	}
	t->r[t->n] = (struct rec_range){ laddr, lo, hi, 0, 0 };
	*out = (uint32_t)++t->n;
	return 0;
}

/* Add bytes [lo, hi) of the record at laddr to the union. */
static int
table_add(struct live_table *t, uint64_t laddr, uint64_t lo, uint64_t hi)
{
	size_t k;
	uint32_t idx;
	int rc;

	if (t->n + 1 > t->nslots / 2 && (rc = table_grow(t)) < 0)
		return rc;
	for (k = slot_of(t, laddr); t->slot[k]; k = (k + 1) & (t->nslots - 1))
		if (t->r[t->slot[k] - 1].laddr == laddr)
			break;
	if (!t->slot[k]) {
		if ((rc = range_new(t, laddr, lo, hi, &idx)) < 0)
			return rc;
		t->r[idx - 1].head = 1;
		t->slot[k] = idx;
		return 0;
	}
	/* the record's ranges: widen the one it meets, and absorb any that then meet it */
	struct rec_range *hit = NULL;
	for (uint32_t i = t->slot[k]; i; i = t->r[i - 1].next) {
		struct rec_range *x = &t->r[i - 1];
		if (hi < x->lo || lo > x->hi)
			continue;
		if (!hit) {
			hit = x;
			if (lo < x->lo)
				x->lo = lo;
			if (hi > x->hi)
				x->hi = hi;
		} else {
			/* x now meets hit: hit takes it, x becomes empty */
			if (x->lo < hit->lo)
				hit->lo = x->lo;
			if (x->hi > hit->hi)
				hit->hi = x->hi;
			x->lo = x->hi = 0;
		}
	}
	if (hit)
		return 0;
	if ((rc = range_new(t, laddr, lo, hi, &idx)) < 0)
		return rc;
	t->r[idx - 1].next = t->r[t->slot[k] - 1].next;
	t->r[t->slot[k] - 1].next = idx;
	return 0;
}

static int
live_extent(const struct extent *e, void *arg)
{
	struct live_walk *w = arg;
	uint32_t s = LADDR_SEG(e->laddr);

	if (s < w->first || s > w->last)
		return 0;
	if (!w->t) {
		w->live[s - w->first] += e->len;
		return 0;
	}
	w->met_shared += e->len;
	return w->rc = table_add(w->t, e->laddr, e->loff, e->loff + e->len);
}

/*
 * Disk id's log extents (disk_extents_each: a guest write waits for one
 * batch, and creates and snapshots do not wait for the pass).  What moved
 * between batches was rewritten, never into a sealed segment; a disk
 * deleted meanwhile has nothing left to count.
 */
static int
live_disk(struct store *st, uint64_t id, struct live_walk *w, struct extent_batch *b)
{
	int rc = disk_extents_each(st, id, 0, UINT64_MAX, b, live_extent, w);

	return rc == -ENOENT ? 0 : rc;
}

int
disks_share(struct store *st)
{
	for (size_t i = 0; i < st->ndisks; i++)
		if (st->disks[i]->family != (uint64_t)st->disks[i]->id)
			return 1;
	return 0;
}

/*
 * d's view is its committed tree alone (no overlay): two such disks with
 * one root map the same extents (snapshots of one moment, a clone not yet
 * written).  Caller holds d's lock, or ns_lock exclusive.
 */
static uint64_t
plain_root(const struct disk *d)
{
	return !d->frozen && extmap_count(d->map) == 0 ? d->root.page : 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Does family f have more than one member?  fam: every disk's family, sorted. */
static int
family_shared(const uint64_t *fam, size_t n, uint64_t f)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (fam[mid] < f)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo + 1 < n && fam[lo] == f && fam[lo + 1] == f;
}

int
disks_segment_live(struct store *st, uint32_t first, uint32_t last, uint64_t *live)
{
	struct live_table t = { 0 };
	struct live_walk w = { st, live, first, last, NULL, 0, 0 };
	struct extent_batch b = { .cap = 4096, .log_only = 1 };
	uint64_t *fam = NULL, *ids = NULL, *ifam = NULL, *root = NULL, *same = NULL;
	size_t n = 0;

	memset(live, 0, (size_t)(last - first + 1) * sizeof(*live));
	/*
	 * The disks and their families now; each is then walked on its own,
	 * but one whose view is an earlier one's (plain_root) adds nothing to
	 * the union: only its log bytes, to what the sum counts twice.
	 */
	pthread_rwlock_rdlock(&st->ns_lock);
	n = st->ndisks;
	fam = malloc((n ? n : 1) * sizeof(*fam));
	ids = malloc((n ? n : 1) * sizeof(*ids));
	ifam = malloc((n ? n : 1) * sizeof(*ifam));
	root = calloc(n ? n : 1, sizeof(*root));
	same = calloc(n ? n : 1, sizeof(*same));
	for (size_t i = 0; fam && ids && ifam && root && same && i < n; i++) {
		struct disk *d = st->disks[i];
		ids[i] = (uint64_t)d->id;
		fam[i] = ifam[i] = d->family;
		pthread_rwlock_rdlock(&d->lock);
		root[i] = plain_root(d);
		for (size_t k = 0; root[i] && k < i && !same[i]; k++)
			if (root[k] == root[i] && ifam[k] == ifam[i])
				same[i] = d->log_bytes + 1;
		pthread_rwlock_unlock(&d->lock);
	}
	pthread_rwlock_unlock(&st->ns_lock);
	if (!fam || !ids || !ifam || !root || !same || !(b.e = malloc(b.cap * sizeof(*b.e)))) {
		w.rc = -ENOMEM;
		goto out;
	}
	qsort(fam, n, sizeof(*fam), cmp_u64);
	for (size_t i = 0; i < n && w.rc == 0; i++) {
		int rc;
		if (same[i]) {
			w.met_shared += same[i] - 1;
			continue;
		}
		w.t = family_shared(fam, n, ifam[i]) ? &t : NULL;
		if ((rc = live_disk(st, ids[i], &w, &b)) < 0 && w.rc == 0) {
			hlog(HLOG_ERROR, "disk %llu: its map cannot be walked whole (%s); the cleaner "
			    "releases nothing until hcowctl check finds the damage",
			    (unsigned long long)ids[i], strerror(-rc));
			w.rc = rc;
		}
	}
	if (w.rc == 0) {
		uint64_t exact = 0;
		for (size_t i = 0; i < t.n; i++) {
			uint64_t len = t.r[i].hi - t.r[i].lo;
			live[LADDR_SEG(t.r[i].laddr) - first] += len;
			exact += len;
		}
		/* the disks' log_bytes count shared bytes once per member: the union once */
		atomic_store(&st->live_excess, w.met_shared - exact);
		atomic_store(&st->live_pass_ns, now_ns());
	}
out:
	free(fam);
	free(ids);
	free(ifam);
	free(root);
	free(same);
	free(b.e);
	free(t.slot);
	free(t.r);
	return w.rc;
}

/* ---- what each member of a family alone holds --------------------------- */

/* One member's (or group's) range of a record, for the sweep. */
struct hold {
	uint64_t	 laddr, lo, hi;
	uint32_t	 who;		/* the group's index */
};

/* Members whose views are the same (one committed root, no overlay) walk once, as a group. */
struct group {
	uint64_t	 id;		/* the member walked */
	uint32_t	 weight;	/* members in the group */
};

static int
cmp_hold(const void *a, const void *b)
{
	const struct hold *x = a, *y = b;

	if (x->laddr != y->laddr)
		return x->laddr < y->laddr ? -1 : 1;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

struct edge {
	uint64_t	 pos;
	int32_t	 	 step;		/* +weight at a range's start, -weight at its end */
	uint32_t	 who;
};

static int
cmp_edge(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * The ranges of one record, h[0..n): each byte held by exactly one member is
 * that member's own.  The count of holders and the xor of their indexes
 * name the one holder whenever the count is 1.
 */
static int
sweep_record(const struct hold *h, size_t n, const struct group *g, uint64_t *own)
{
	struct edge *e = malloc(2 * n * sizeof(*e));
	uint64_t count = 0, who = 0;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		e[2 * i] = (struct edge){ h[i].lo, (int32_t)g[h[i].who].weight, h[i].who };
		e[2 * i + 1] = (struct edge){ h[i].hi, -(int32_t)g[h[i].who].weight, h[i].who };
	}
	qsort(e, 2 * n, sizeof(*e), cmp_edge);
	for (size_t i = 0; i < 2 * n; i++) {
		if (i > 0 && count == 1 && e[i].pos > e[i - 1].pos)
			own[who] += e[i].pos - e[i - 1].pos;
		count += (uint64_t)(int64_t)e[i].step;
		who ^= e[i].who;
	}
	free(e);
	return 0;
}

struct hold_walk {
	struct hold	*v;
	size_t		 n, cap;
	uint32_t	 first, last;	/* the segments this window takes */
	uint32_t	 who;		/* the group being walked */
};

/* One extent of group w->who, if in the window (disk_extents_each callback). */
static int
hold_extent(const struct extent *e, void *arg)
{
	struct hold_walk *w = arg;
	uint32_t s = LADDR_SEG(e->laddr);

	if (s < w->first || s > w->last)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4096;
		struct hold *v = realloc(w->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = (struct hold){ e->laddr, e->loff, extent_end(e), w->who };
	return 0;
}

/* Collect group `who`'s log ranges in the window; 0 or -errno. */
static int
hold_disk(struct store *st, uint64_t id, uint32_t who, struct hold_walk *w,
    struct extent_batch *b)
{
	int rc;

	w->who = who;
	rc = disk_extents_each(st, id, 0, UINT64_MAX, b, hold_extent, w);
	return rc == -ENOENT ? 0 : rc;
}

/* Ranges held at once, at most (the windows of segments are cut to stay under it). */
#define OWN_HOLDS_MAX	(UINT64_C(4) << 20)

int
family_own_bytes(struct store *st, uint64_t family, uint64_t **ids_out, uint64_t **own_out,
    size_t *n_out)
{
	struct extent_batch b = { .cap = 4096, .log_only = 1 };
	struct hold_walk w = { 0 };
	struct group *g = NULL;
	uint64_t *ids = NULL, *own = NULL, *gown = NULL, holds = 0;
	uint32_t *group_of = NULL, first, last, windows;
	size_t n = 0, ng = 0;
	int rc = 0;

	/* the members, grouped by identical views */
	pthread_rwlock_rdlock(&st->ns_lock);
	for (size_t i = 0; i < st->ndisks; i++)
		n += st->disks[i]->family == family;
	ids = calloc(n ? n : 1, sizeof(*ids));
	own = calloc(n ? n : 1, sizeof(*own));
	group_of = calloc(n ? n : 1, sizeof(*group_of));
	g = calloc(n ? n : 1, sizeof(*g));
	n = 0;
	for (size_t i = 0; ids && own && group_of && g && i < st->ndisks; i++) {
		struct disk *d = st->disks[i];
		size_t k;
		int plain;
		if (d->family != family)
			continue;
		pthread_rwlock_rdlock(&d->lock);
		plain = plain_root(d) != 0;
		for (k = 0; plain && k < ng; k++) {
			struct disk *o = disk_get(st, g[k].id);
			if (o && plain_root(o) == d->root.page)
				break;
		}
		if (!plain || k == ng) {
			k = ng++;
			g[k].id = (uint64_t)d->id;
			holds += dmap_count(d);
		}
		pthread_rwlock_unlock(&d->lock);
		g[k].weight++;
		ids[n] = (uint64_t)d->id;
		group_of[n++] = (uint32_t)k;
	}
	pthread_rwlock_unlock(&st->ns_lock);
	if (!ids || !own || !group_of || !g || !(gown = calloc(ng ? ng : 1, sizeof(*gown))) ||
	    !(b.e = malloc(b.cap * sizeof(*b.e)))) {
		rc = -ENOMEM;
		goto out;
	}
	/* windows of segments, each holding about OWN_HOLDS_MAX ranges at most */
	wlog_segments(st->log, &first, &last);
	windows = (uint32_t)(holds / OWN_HOLDS_MAX + 1);
	for (uint64_t s = first; s <= last && rc == 0; ) {
		uint64_t span = ((uint64_t)last - first + windows) / windows;
		w.first = (uint32_t)s;
		w.last = (uint32_t)(s + span - 1 < last ? s + span - 1 : last);
		w.n = 0;
		for (size_t k = 0; k < ng && rc == 0; k++)
			rc = hold_disk(st, g[k].id, (uint32_t)k, &w, &b);
		if (rc == 0 && w.n)
			qsort(w.v, w.n, sizeof(*w.v), cmp_hold);
		for (size_t i = 0, j; rc == 0 && i < w.n; i = j) {
			for (j = i + 1; j < w.n && w.v[j].laddr == w.v[i].laddr; j++)
				;
			rc = sweep_record(w.v + i, j - i, g, gown);
		}
		s = (uint64_t)w.last + 1;
	}
	/* a group of one owns what it alone holds; a larger group shares it among its members */
	for (size_t i = 0; i < n; i++)
		own[i] = g[group_of[i]].weight == 1 ? gown[group_of[i]] : 0;
out:
	free(w.v);
	free(b.e);
	free(g);
	free(gown);
	free(group_of);
	if (rc < 0) {
		free(ids);
		free(own);
		return rc;
	}
	*ids_out = ids;
	*own_out = own;
	*n_out = n;
	return 0;
}
