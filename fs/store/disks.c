/*
 * disks: the disk table and the one function that changes a disk's
 * contents (disk_apply), for live writes and replay alike.
 *
 * Design notes
 *
 * Owns the disk table: st->disks, the disks sorted by id, and st->by_name,
 * the named ones sorted by name (both looked up by binary search: a LOOKUP
 * or a request costs O(log disks), and memory follows the disks that exist,
 * not the largest id ever created); and, for each struct disk, its size and
 * times (its map's layers are dmap.c's).  The lock order is at the top of
 * store.c; here:
 *   - the table is read under ns_lock shared and changed under it exclusive
 *     (or during open and close, when no other thread runs);
 *   - a disk's map, size and times are read under d->lock shared and
 *     changed under it exclusive;
 *   - disk_apply is the only place a disk's contents and size change, so a
 *     record applied live and the same record applied by replay give the
 *     same map.
 *
 * Invariants:
 * - Every change disk_apply makes is in the overlay (d->map) and sets
 *   meta_dirty: the next checkpoint commits it.
 * - Extents copied out (struct extent_batch) stay valid to read with no
 *   lock held: log bytes are never rewritten, and a segment is released only
 *   after disks_read_barrier() (cleaner.c).
 *
 * The verbs other modules use instead of walking the table themselves:
 * disk_ids (visit disks one at a time), disk_extents_copy (a batch of a
 * disk's extents), disks_segment_live (live.c: what the cleaner may release),
 * disks_read_barrier (wait out every read in flight), store_log_space.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hlog.h"
#include "store_int.h"

int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The index in v[0..n) of the first disk whose key is not below the key sought. */
static size_t
table_search(struct disk *const *v, size_t n, int (*cmp)(const struct disk *d, const void *key),
    const void *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cmp(v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
cmp_id(const struct disk *d, const void *key)
{
	uint64_t id = *(const uint64_t *)key;

	return (uint64_t)d->id < id ? -1 : (uint64_t)d->id > id;
}

static int
cmp_name(const struct disk *d, const void *key)
{
	return strcmp(d->name, key);
}

struct disk *
disk_get(struct store *st, uint64_t id)
{
	size_t i = table_search(st->disks, st->ndisks, cmp_id, &id);

	return i < st->ndisks && (uint64_t)st->disks[i]->id == id ? st->disks[i] : NULL;
}

size_t
disk_name_slot(const struct store *st, const char *name)
{
	return table_search(st->by_name, st->nnamed, cmp_name, name);
}

struct disk *
disk_by_name(struct store *st, const char *name)
{
	size_t i;

	if (!name[0])
		return NULL;
	i = table_search(st->by_name, st->nnamed, cmp_name, name);
	return i < st->nnamed && strcmp(st->by_name[i]->name, name) == 0 ? st->by_name[i] : NULL;
}

/* The index in st->disks of the first disk whose id is id or more (for walks in id order). */
size_t
disk_index_after(struct store *st, uint64_t id)
{
	return table_search(st->disks, st->ndisks, cmp_id, &id);
}

void
disk_free(struct disk *d)
{
	if (!d)
		return;
	extmap_free(d->map);
	extmap_free(d->frozen);
	pthread_rwlock_destroy(&d->lock);
	free(d);
}

struct disk *
disk_new(const struct catalog_disk *cd, struct tmpl *t)
{
	struct disk *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	if (!(d->map = extmap_new())) {
		free(d);
		return NULL;
	}
	pthread_rwlock_init(&d->lock, NULL);
	d->id = cd->id;
	snprintf(d->name, sizeof(d->name), "%.*s", NAME_MAX_LEN, cd->name);
	snprintf(d->token, sizeof(d->token), "%s", cd->create_token);
	d->tmpl = t;
	DISK_META_COPY(d, cd);
	d->snap_of = cd->snap_of;
	snprintf(d->snap_name, sizeof(d->snap_name), "%.*s", NAME_MAX_LEN, cd->snap_name);
	d->family = cd->family ? (uint64_t)cd->family : (uint64_t)cd->id;
	d->origin = cd->origin;
	return d;
}

struct disk *
disk_snapshot(struct store *st, int64_t parent, const char *snap)
{
	/* snapshots are few next to reads: a scan, not another index */
	for (size_t i = 0; i < st->ndisks; i++) {
		struct disk *d = st->disks[i];
		if (d->snap_of == parent && d->snap_name[0] && strcmp(d->snap_name, snap) == 0)
			return d;
	}
	return NULL;
}

struct disk *
disk_by_full_name(struct store *st, const char *name)
{
	const char *at = strchr(name, '@');
	char disk[NAME_MAX_LEN + 1];
	struct disk *p;

	if (!at)
		return disk_by_name(st, name);
	if ((size_t)(at - name) >= sizeof(disk))
		return NULL;
	memcpy(disk, name, (size_t)(at - name));
	disk[at - name] = '\0';
	return (p = disk_by_name(st, disk)) ? disk_snapshot(st, p->id, at + 1) : NULL;
}

void
disk_full_name(struct store *st, const struct disk *d, char *buf, size_t len)
{
	const struct disk *p;

	if (!d->snap_of || !d->snap_name[0])
		snprintf(buf, len, "%s", d->name);
	else if ((p = disk_get(st, (uint64_t)d->snap_of)) != NULL && p->name[0])
		snprintf(buf, len, "%s@%s", p->name, d->snap_name);
	else
		snprintf(buf, len, "(disk %lld)@%s", (long long)d->snap_of, d->snap_name);
}

/* Make room for one more pointer in *v (holding n, room for *alloc): 0 or -ENOMEM. */
static int
table_reserve(struct disk ***v, size_t n, size_t *alloc)
{
	struct disk **nv;
	size_t cap;

	if (n < *alloc)
		return 0;
	cap = *alloc ? *alloc * 2 : 64;
	if (!(nv = realloc(*v, cap * sizeof(*nv))))
		return -ENOMEM;
	*v = nv;
	*alloc = cap;
	return 0;
}

static void
table_insert(struct disk **v, size_t *n, size_t at, struct disk *d)
{
	memmove(v + at + 1, v + at, (*n - at) * sizeof(*v));
	v[at] = d;
	(*n)++;
}

/* Take d out of v[0..n) (by pointer, at or after index from). */
static void
table_delete(struct disk **v, size_t *n, size_t from, const struct disk *d)
{
	for (size_t i = from; i < *n; i++) {
		if (v[i] == d) {
			memmove(v + i, v + i + 1, (*n - i - 1) * sizeof(*v));
			(*n)--;
			return;
		}
	}
}

/*
 * Insert d in the disk table (ns_lock exclusive, or during open): by id and,
 * if it has a name, by name.  Both arrays hold only the disks that exist, so
 * memory follows the number of disks, not the largest id ever created.
 */
int
disk_table_put(struct store *st, struct disk *d)
{
	uint64_t id = (uint64_t)d->id;
	size_t at;

	if (table_reserve(&st->disks, st->ndisks, &st->disks_alloc) < 0 ||
	    table_reserve(&st->by_name, st->nnamed, &st->by_name_alloc) < 0)
		return -ENOMEM;
	at = table_search(st->disks, st->ndisks, cmp_id, &id);
	if (at < st->ndisks && st->disks[at]->id == d->id)
		return -EEXIST;
	d->ix = st->ix;
	table_insert(st->disks, &st->ndisks, at, d);
	if (d->name[0])
		table_insert(st->by_name, &st->nnamed, table_search(st->by_name, st->nnamed,
		    cmp_name, d->name), d);
	return 0;
}

/* Take d out of the table (ns_lock exclusive); the caller frees it. */
void
disk_table_remove(struct store *st, struct disk *d)
{
	uint64_t id = (uint64_t)d->id;

	table_delete(st->disks, &st->ndisks, table_search(st->disks, st->ndisks, cmp_id, &id), d);
	if (d->name[0])
		table_delete(st->by_name, &st->nnamed, table_search(st->by_name, st->nnamed,
		    cmp_name, d->name), d);
}

/* Rename d to name ("" unlinks it), keeping the name index sorted (ns_lock exclusive). */
void
disk_table_rename(struct store *st, struct disk *d, const char *name)
{
	if (d->name[0])
		table_delete(st->by_name, &st->nnamed, table_search(st->by_name, st->nnamed,
		    cmp_name, d->name), d);
	snprintf(d->name, sizeof(d->name), "%s", name);
	/* room is there: the name index never holds more than the id index has room for */
	if (d->name[0] && table_reserve(&st->by_name, st->nnamed, &st->by_name_alloc) == 0)
		table_insert(st->by_name, &st->nnamed, table_search(st->by_name, st->nnamed,
		    cmp_name, d->name), d);
}

/* A catalog row: a disk with an empty map (catalog_each_disk callback). */
static int
load_disk(const struct catalog_disk *cd, void *arg)
{
	struct store *st = arg;
	struct tmpl *t = cd->template_id ? tmpl_by_id(st, cd->template_id) : st->no_tmpl;
	struct disk *d;
	int rc;

	if (!t) {
		hlog(HLOG_ERROR, "disk %lld refers to unknown template %lld",
		    (long long)cd->id, (long long)cd->template_id);
		return -EUCLEAN;
	}
	if (!(d = disk_new(cd, t)))
		return -ENOMEM;
	if ((rc = disk_table_put(st, d)) < 0)
		disk_free(d);
	return rc;
}

int
disks_load(struct store *st)
{
	return catalog_each_disk(st->cat, load_disk, st);
}

void
disks_free(struct store *st)
{
	for (size_t i = 0; i < st->ndisks; i++)
		disk_free(st->disks[i]);
	free(st->disks);
	free(st->by_name);
	st->disks = st->by_name = NULL;
	st->ndisks = st->nnamed = st->disks_alloc = st->by_name_alloc = 0;
}

/* ---- attributes and applying records ---------------------------------- */

void
disk_attr_fill(const struct disk *d, struct disk_attr *a)
{
	uint64_t tbytes = d->tmpl->alloc_bytes;

	memset(a, 0, sizeof(*a));
	a->id = (uint64_t)d->id;
	snprintf(a->name, sizeof(a->name), "%s", d->name);
	snprintf(a->template_name, sizeof(a->template_name), "%s", d->tmpl->rec.name);
	DISK_META_COPY(a, d);
	a->log_bytes = d->log_bytes;
	a->extents = dmap_count(d);
	if (tbytes > d->size)
		tbytes = d->size;
	/* what the disk reads data from: its log bytes plus the template's allocation */
	a->blocks = (a->log_bytes + tbytes + 511) / 512;
	a->opens = d->opens;
	a->problem = d->tmpl->problem[0] ? d->tmpl->problem : NULL;
	a->snapshot = d->snap_of != 0;
}

/*
 * Apply one log record to a disk.  Caller holds d->lock exclusively.
 * The only place disk contents and size change.
 */
int
disk_apply(struct disk *d, const struct rec_header *h, uint64_t rec_laddr)
{
	uint64_t tsize = d->tmpl->rec.size;
	int rc;

	d->meta_dirty = 1;
	switch (h->type) {
	case REC_WRITE:
		return dmap_set(d, h->offset, h->length, rec_laddr);
	case REC_LINK:
		/* the cleaner moved bytes this disk shares with another: the moved copy's */
		return dmap_set(d, h->offset, h->length, rec_aux(h));
	case REC_ZERO:
		if ((h->flags & REC_F_GROW) && h->offset + h->length > d->size)
			/* as a REC_SIZE growing it: what the old end hid was zeroed when it shrank */
			d->size = h->offset + h->length;
		return dmap_set(d, h->offset, h->length, EXTMAP_ZERO);
	case REC_SIZE: {
		uint64_t newsize = h->offset;
		uint64_t top = d->size > tsize ? d->size : tsize;
		if (newsize < top) {
			/* cut everything past the new end; template bytes there must read as zeros if it grows back */
			if ((rc = dmap_set(d, newsize, top - newsize, EXTMAP_UNMAPPED)) < 0)
				return rc;
			if (newsize < tsize && (rc = dmap_set(d, newsize, tsize - newsize, EXTMAP_ZERO)) < 0)
				return rc;
		}
		d->size = newsize;
		return 0;
	}
	}
	return -EINVAL;
}

/* ---- visiting the disks ---------------------------------------------- */

/* Call fn for each disk, under ns_lock shared and the disk's lock shared. */
static void
disks_each(struct store *st, void (*fn)(struct disk *d, void *arg), void *arg)
{
	pthread_rwlock_rdlock(&st->ns_lock);
	for (size_t i = 0; i < st->ndisks; i++) {
		struct disk *d = st->disks[i];
		pthread_rwlock_rdlock(&d->lock);
		fn(d, arg);
		pthread_rwlock_unlock(&d->lock);
	}
	pthread_rwlock_unlock(&st->ns_lock);
}

uint64_t
disks_extent_count(struct store *st, uint64_t *mem)
{
	uint64_t n = 0, bytes = 0;

	for (size_t i = 0; i < st->ndisks; i++) {
		struct disk *d = st->disks[i];
		pthread_rwlock_rdlock(&d->lock);
		n += dmap_count(d);
		bytes += dmap_memory(d);
		pthread_rwlock_unlock(&d->lock);
	}
	if (mem)
		*mem = bytes;
	return n;
}

int
disk_ids(struct store *st, uint64_t **ids, size_t *n)
{
	pthread_rwlock_rdlock(&st->ns_lock);
	*n = 0;
	*ids = calloc(st->ndisks ? st->ndisks : 1, sizeof(**ids));
	for (size_t i = 0; *ids && i < st->ndisks; i++)
		(*ids)[(*n)++] = (uint64_t)st->disks[i]->id;
	pthread_rwlock_unlock(&st->ns_lock);
	return *ids ? 0 : -ENOMEM;
}

/* Copy one extent into b if b keeps it; stop when b is full. */
static int
batch_collect(const struct extent *e, void *arg)
{
	struct extent_batch *b = arg;

	if (b->log_only && (e->laddr == EXTMAP_ZERO || (b->seg && LADDR_SEG(e->laddr) != b->seg)))
		return 0;
	if (b->n == b->cap) {
		size_t cap;
		struct extent *v;
		if (!b->grow)
			return 1;
		cap = b->cap ? b->cap * 2 : 256;
		v = realloc(b->e, cap * sizeof(*v));
		if (!v) {
			b->rc = -ENOMEM;
			return 1;
		}
		b->e = v;
		b->cap = cap;
	}
	b->e[b->n++] = *e;
	return !b->grow && b->n == b->cap;
}

void
extent_batch_fill(const struct disk *d, uint64_t pos, uint64_t end, struct extent_batch *b)
{
	int rc;

	b->n = 0;
	b->family = d->family;
	if (pos < end && (rc = dmap_walk(d, pos, end, batch_collect, b)) < 0)
		b->rc = rc;
}

int
disk_extents_copy(struct store *st, uint64_t id, uint64_t pos, uint64_t end,
    struct extent_batch *b, char *name, size_t namelen)
{
	struct disk *d;

	b->n = 0;
	pthread_rwlock_rdlock(&st->ns_lock);
	if (!(d = disk_get(st, id))) {
		pthread_rwlock_unlock(&st->ns_lock);
		return -ENOENT;
	}
	if (name)
		disk_full_name(st, d, name, namelen);
	pthread_rwlock_rdlock(&d->lock);
	extent_batch_fill(d, pos, end, b);
	pthread_rwlock_unlock(&d->lock);
	pthread_rwlock_unlock(&st->ns_lock);
	return b->rc;
}

int
disk_extents_each(struct store *st, uint64_t id, uint64_t pos, uint64_t end,
    struct extent_batch *b, int (*fn)(const struct extent *e, void *arg), void *arg)
{
	int rc;

	for (;;) {
		if ((rc = disk_extents_copy(st, id, pos, end, b, NULL, 0)) < 0)
			return rc;
		for (size_t i = 0; i < b->n; i++)
			if ((rc = fn(&b->e[i], arg)) != 0)
				return rc;
		if (b->n < b->cap)
			return 0;	/* the batch was not full: nothing follows */
		pos = extent_end(&b->e[b->n - 1]);
	}
}

void
disks_read_barrier(struct store *st)
{
	/* reads hold ns_lock shared for their whole duration */
	pthread_rwlock_wrlock(&st->ns_lock);
	pthread_rwlock_unlock(&st->ns_lock);
}

/* ---- log space ---------------------------------------------------------- */

static void
add_log_bytes(struct disk *d, void *arg)
{
	*(uint64_t *)arg += d->log_bytes;
}

void
store_log_space(struct store *st, uint64_t *disk_bytes, uint64_t *live_bytes)
{
	uint64_t live = 0, excess;

	disks_each(st, add_log_bytes, &live);
	*disk_bytes = wlog_disk_bytes(st->log);
	/* shared bytes once, as of the last exact pass (live.c) */
	excess = atomic_load(&st->live_excess);
	*live_bytes = live > excess ? live - excess : 0;
}

uint64_t
store_log_spare(struct store *st)
{
	return wlog_spare_bytes(st->log);
}
