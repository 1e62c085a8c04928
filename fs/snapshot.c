/*
 * snapshot: a copy of the store's extent maps in memory shared with the
 * supervisor (the snapshot area of ctlmem.h), so that a worker replacing a
 * dead one rebuilds its maps with a copy and a short log replay instead of
 * reading every extent from SQLite.  The supervisor never reads it; it only
 * keeps the memory alive across workers.
 *
 * Layout: the area is two halves, each a snapshot: struct snap_header, then
 * for each disk a struct snap_disk followed by its map extents and its dirty
 * extents (struct extent).  A new snapshot overwrites the older half, so a
 * worker killed while writing one leaves the previous one whole.
 *
 * Invariants:
 * - valid is cleared before a half is rewritten and set last (release), with
 *   a generation one above the other half's: a reader takes the valid half
 *   with the highest generation.
 * - It is written under log_lock, so maps, dirty sets and sizes all
 *   correspond exactly to log position laddr (the next record's address) and
 *   sequence number seq.
 * - The dirty sets come along: the ranges changed since the last checkpoint
 *   must still reach SQLite, and nothing else remembers those before laddr.
 *   A checkpoint in progress has swapped a disk's set out (dirty_inflight)
 *   until it commits: the snapshot saves both, so it never waits for one.
 * - Disks created after it have no entry (they had no records before);
 *   entries of disks that no longer exist are skipped.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "hlog.h"
#include "store_int.h"

#define SNAP_MAGIC	UINT64_C(0x70616e73776f6863)	/* "hcowsnap" */
#define SNAP_VERSION	2

struct snap_header {
	uint64_t	 magic;
	_Atomic uint32_t valid;
	uint32_t	 version;
	uint8_t		 uuid[16];	/* the store it describes */
	uint64_t	 generation;	/* the newer valid half wins */
	uint64_t	 laddr;		/* replay from here */
	uint64_t	 seq;		/* with this sequence number */
	uint64_t	 ndisks;
	uint64_t	 bytes;
};

struct snap_disk {
	int64_t		 id;
	uint64_t	 size;
	uint64_t	 nmap;
	uint64_t	 ndirty;
	int64_t		 mtime_ns;
	uint64_t	 meta_dirty;
};

struct snap_writer {
	uint8_t		*area;
	size_t		 cap, used;
	uint64_t	*count;
};

static int
snap_put(const struct extent *e, void *arg)
{
	struct snap_writer *w = arg;

	if (w->used + sizeof(*e) > w->cap)
		return -ENOSPC;
	memcpy(w->area + w->used, e, sizeof(*e));
	w->used += sizeof(*e);
	(*w->count)++;
	return 0;
}

static struct snap_header *
snap_half(struct store *st, int i)
{
	return (struct snap_header *)((uint8_t *)st->snap + (size_t)i * (st->snap_cap / 2));
}

/* The valid half with the highest generation, or NULL. */
static struct snap_header *
snap_newest(struct store *st)
{
	struct snap_header *best = NULL;

	for (int i = 0; i < 2; i++) {
		struct snap_header *h = snap_half(st, i);
		if (atomic_load_explicit(&h->valid, memory_order_acquire) && h->magic == SNAP_MAGIC &&
		    h->version == SNAP_VERSION && (!best || h->generation > best->generation))
			best = h;
	}
	return best;
}

int
snapshot_write(struct store *st)
{
	struct snap_header *h, *newest;
	struct snap_writer w;
	struct timespec t0, t1;
	uint64_t ndisks = 0, tail, gen;
	int rc = 0;

	if (!st->snap)
		return 0;
	pthread_rwlock_rdlock(&st->ns_lock);
	pthread_mutex_lock(&st->log_lock);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tail = wlog_tail(st->log);
	newest = snap_newest(st);
	if (newest && tail == newest->laddr && memcmp(newest->uuid, st->uuid, 16) == 0)
		goto out;	/* nothing new */
	/* overwrite the other half: the newest stays whole until this one is */
	h = newest == snap_half(st, 0) ? snap_half(st, 1) : snap_half(st, 0);
	gen = newest ? newest->generation + 1 : 1;
	w.area = (uint8_t *)h;
	w.cap = st->snap_cap / 2;
	w.used = sizeof(*h);
	w.count = NULL;
	atomic_store_explicit(&h->valid, 0, memory_order_release);
	for (size_t i = 0; rc == 0 && i < st->disks_cap; i++) {
		struct disk *d = st->disks[i];
		struct snap_disk *sd;
		if (!d)
			continue;
		if (w.used + sizeof(*sd) > w.cap) {
			rc = -ENOSPC;
			break;
		}
		sd = (struct snap_disk *)(w.area + w.used);
		w.used += sizeof(*sd);
		pthread_rwlock_rdlock(&d->lock);
		sd->id = d->id;
		sd->size = d->size;
		sd->mtime_ns = d->mtime_ns;
		sd->meta_dirty = (uint64_t)d->meta_dirty;
		sd->nmap = sd->ndirty = 0;
		w.count = &sd->nmap;
		rc = extmap_walk(d->map, 0, UINT64_MAX, snap_put, &w);
		w.count = &sd->ndirty;
		if (rc == 0)
			rc = extmap_walk(d->dirty, 0, UINT64_MAX, snap_put, &w);
		if (rc == 0 && d->dirty_inflight)
			rc = extmap_walk(d->dirty_inflight, 0, UINT64_MAX, snap_put, &w);
		pthread_rwlock_unlock(&d->lock);
		ndisks++;
	}
	if (rc == 0) {
		h->magic = SNAP_MAGIC;
		h->version = SNAP_VERSION;
		memcpy(h->uuid, st->uuid, 16);
		h->generation = gen;
		h->laddr = tail;
		h->seq = wlog_next_seq(st->log);
		h->ndisks = ndisks;
		h->bytes = w.used;
		atomic_store_explicit(&h->valid, 1, memory_order_release);
	} else if (!st->snap_full_logged) {
		st->snap_full_logged = 1;
		hlog(HLOG_WARN, "the extent maps no longer fit the %zu MiB snapshot area; a replacement "
		    "worker will load them from the catalog (slower)", st->snap_cap >> 21);
	}
out:
	clock_gettime(CLOCK_MONOTONIC, &t1);
	st->snap_cost_us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	pthread_mutex_unlock(&st->log_lock);
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

/* Fill map (empty) from n extents at p; 0 or -errno. */
static int
snap_load_map(struct extmap *map, const struct extent *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		struct extent e;
		int rc;
		memcpy(&e, p + i, sizeof(e));
		if ((rc = extmap_set(map, e.loff, e.len, e.laddr)) < 0)
			return rc;
	}
	return 0;
}

int
snapshot_load(struct store *st, uint64_t *laddr, uint64_t *seq)
{
	const struct snap_header *h = st->snap ? snap_newest(st) : NULL;
	const uint8_t *p, *end;

	if (!h || memcmp(h->uuid, st->uuid, 16) != 0 || h->bytes > st->snap_cap / 2)
		return 0;
	p = (const uint8_t *)h + sizeof(*h);
	end = (const uint8_t *)h + h->bytes;
	for (uint64_t i = 0; i < h->ndisks; i++) {
		struct snap_disk sd;
		const struct extent *ext;
		struct disk *d;
		int rc;

		if (p + sizeof(sd) > end)
			return -EUCLEAN;
		memcpy(&sd, p, sizeof(sd));
		ext = (const struct extent *)(p + sizeof(sd));
		p += sizeof(sd) + (sd.nmap + sd.ndirty) * sizeof(struct extent);
		if (p > end)
			return -EUCLEAN;
		if (!(d = disk_get(st, (uint64_t)sd.id)))
			continue;	/* deleted since */
		if ((rc = snap_load_map(d->map, ext, sd.nmap)) < 0 ||
		    (rc = snap_load_map(d->dirty, ext + sd.nmap, sd.ndirty)) < 0)
			return rc;
		d->size = sd.size;
		d->mtime_ns = sd.mtime_ns;
		d->meta_dirty = (int)sd.meta_dirty;
	}
	*laddr = h->laddr;
	*seq = h->seq;
	return 1;
}
