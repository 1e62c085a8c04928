/*
 * handoff: a copy of the disks' overlays in memory shared with the
 * supervisor (the snapshot area of ctlmem.h), so that a worker replacing a
 * dead one takes its maps over with a copy and a short log replay.  The
 * supervisor never reads it; it only keeps the memory alive across workers.
 * (Not the user's snapshots of disks: those are lifecycle.c's.  Below, a
 * "snapshot" is one such copy of the overlays.)
 *
 * Design notes
 *
 * Owns the snapshot area (st->snap, snap_cap) and the bookkeeping of its
 * cost (snap_cost_us, which sets how often the checkpoint thread writes one).
 *
 * Layout: the area is two halves, each a snapshot: struct snap_header, then
 * for each disk a struct snap_disk followed by the extents (struct extent)
 * of its overlay and of its frozen overlay (dmap.c).  The committed trees
 * are not copied: they are in the index file, which a replacement maps.  A new snapshot overwrites the older half, so a
 * worker killed while writing one leaves the previous one whole.
 *
 * Invariants:
 * - valid is cleared before a half is rewritten and set last (release), with
 *   a generation one above the other half's: a reader takes the valid half
 *   with the highest generation.
 * - It is written under log_lock, so overlays and sizes all
 *   correspond exactly to log position laddr (the next record's address) and
 *   sequence number seq.
 * - Both overlays come along: what changed since the last commit is in
 *   nothing else before laddr.  A checkpoint in progress has frozen an
 *   overlay until it commits: the snapshot saves it too, so it never waits.
 *   A commit after the snapshot only makes the trees newer: the overlays
 *   then hide some of the newer ranges with older values, and the replay
 *   from laddr rewrites every range changed after the snapshot.  Then the
 *   disks' log_bytes, saved for the index generation of the snapshot, are
 *   counted again (dmap_recount).
 * - That generation is the one every disk's committed tree comes from
 *   (st->ix_published, read before the walk), not the index's own: a
 *   checkpoint commits, then gives the disks their new trees one by one
 *   (dmap_publish).  A snapshot between the two, saved as of the new
 *   generation, would have a copy not yet cloned in the index (root_pending)
 *   load its source's new tree, with writes made after the copy.  Saved as
 *   of the older one, the copy loads its own tree, the commit's clone.
 * - Disks created after it have no entry (they had no records before);
 *   entries of disks that no longer exist are skipped.
 *
 * One half, and the function making each transition:
 *
 *   INVALID  --handoff_write (valid cleared, then the maps)-----> WRITING
 *   WRITING  --handoff_write (valid set last, release)----------> VALID
 *   WRITING  --handoff_write when the maps do not fit-----------> INVALID
 *   VALID    --handoff_write (the older of two valid halves)----> WRITING
 *   VALID    --handoff_refresh (not of this very moment)--------> INVALID
 * handoff_load reads the newest VALID half and changes nothing in the area.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hlog.h"
#include "store_int.h"

#define SNAP_MAGIC	UINT64_C(0x70616e73776f6863)	/* "hcowsnap" */
#define SNAP_VERSION	5

struct snap_header {
	uint64_t	 magic;
	_Atomic uint32_t valid;
	uint32_t	 version;
	uint8_t		 uuid[16];	/* the store it describes */
	uint64_t	 generation;	/* the newer valid half wins */
	uint64_t	 laddr;		/* replay from here */
	uint64_t	 seq;		/* with this sequence number */
	uint64_t	 ix_generation;	/* the index's generation the overlays lie over */
	uint64_t	 ndisks;
	uint64_t	 bytes;
};

struct snap_disk {
	int64_t		 id;
	uint64_t	 size;
	uint64_t	 nmap;		/* extents of the overlay */
	uint64_t	 nfrozen;	/* then of the frozen overlay */
	int64_t		 mtime_ns;
	uint64_t	 meta_dirty;
	uint64_t	 log_bytes;
	uint64_t	 root_tree;	/* v5: d->root names this committed tree, */
	uint64_t	 root_pending;	/* not yet cloned into the disk's own (lifecycle.c) */
	uint64_t	 clone_src_laddr;
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
handoff_write(struct store *st)
{
	struct snap_header *h, *newest;
	struct snap_writer w;
	struct timespec t0, t1;
	uint64_t ndisks = 0, tail, gen, ix_gen;
	int rc = 0;

	if (!st->snap)
		return 0;
	pthread_rwlock_rdlock(&st->ns_lock);
	pthread_mutex_lock(&st->log_lock);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tail = wlog_tail(st->log);
	/* before the walk: a commit may come during it, whose trees the disks then get one by one */
	ix_gen = atomic_load(&st->ix_published);
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
	for (size_t i = 0; rc == 0 && i < st->ndisks; i++) {
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
		sd->log_bytes = d->log_bytes;
		sd->root_tree = d->root_tree;
		sd->root_pending = (uint64_t)d->root_pending;
		sd->clone_src_laddr = d->clone_src_laddr;
		sd->nmap = sd->nfrozen = 0;
		w.count = &sd->nmap;
		rc = extmap_walk(d->map, 0, UINT64_MAX, snap_put, &w);
		w.count = &sd->nfrozen;
		if (rc == 0 && d->frozen)
			rc = extmap_walk(d->frozen, 0, UINT64_MAX, snap_put, &w);
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
		h->ix_generation = ix_gen;
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

int
handoff_refresh(struct store *st)
{
	if (!st->snap)
		return 0;
	/* a failed write (the maps outgrew the area) is logged there; retiring is what matters */
	(void)handoff_write(st);
	pthread_rwlock_rdlock(&st->ns_lock);
	pthread_mutex_lock(&st->log_lock);
	struct snap_header *newest = snap_newest(st);
	for (int i = 0; i < 2; i++) {
		struct snap_header *h = snap_half(st, i);
		/* keep only a snapshot of this very moment */
		if (h != newest || h->laddr != wlog_tail(st->log))
			atomic_store_explicit(&h->valid, 0, memory_order_release);
	}
	pthread_mutex_unlock(&st->log_lock);
	pthread_rwlock_unlock(&st->ns_lock);
	return 0;
}

/* One disk's state read from a snapshot, applied only once all of it is read. */
struct snap_loaded {
	struct disk	*d;
	struct extmap	*map, *frozen;
	struct snap_disk sd;
};

/* Read one disk's overlays into fresh maps; 0 or -errno. */
static int
snap_load_disk(struct snap_loaded *l, const struct extent *ext)
{
	int rc;

	if (!(l->map = extmap_new()) || (l->sd.nfrozen && !(l->frozen = extmap_new())))
		return -ENOMEM;
	/* whole leaves at a time */
	if ((rc = extmap_load(l->map, ext, l->sd.nmap)) < 0 ||
	    (l->frozen && (rc = extmap_load(l->frozen, ext + l->sd.nmap, l->sd.nfrozen)) < 0))
		return rc;
	return 0;
}

int
handoff_load(struct store *st, uint64_t *laddr, uint64_t *seq)
{
	const struct snap_header *h = st->snap ? snap_newest(st) : NULL;
	struct snap_loaded *loaded;
	const uint8_t *p, *end;
	uint64_t n = 0;
	int rc = 0;

	if (!h || memcmp(h->uuid, st->uuid, 16) != 0 || h->bytes > st->snap_cap / 2)
		return 0;
	if (h->ndisks > h->bytes / sizeof(struct snap_disk))
		return -EUCLEAN;
	if (!(loaded = calloc(h->ndisks ? h->ndisks : 1, sizeof(*loaded))))
		return -ENOMEM;
	p = (const uint8_t *)h + sizeof(*h);
	end = (const uint8_t *)h + h->bytes;
	/* read everything first: a damaged snapshot must leave the disks as they were */
	for (uint64_t i = 0; i < h->ndisks; i++) {
		struct snap_loaded *l = &loaded[n];
		const struct extent *ext;
		uint64_t room;

		if (p + sizeof(l->sd) > end) {
			rc = -EUCLEAN;
			break;
		}
		memcpy(&l->sd, p, sizeof(l->sd));
		ext = (const struct extent *)(p + sizeof(l->sd));
		room = (uint64_t)(end - p - sizeof(l->sd)) / sizeof(struct extent);
		if (l->sd.nmap > room || l->sd.nfrozen > room - l->sd.nmap) {
			rc = -EUCLEAN;
			break;
		}
		p += sizeof(l->sd) + (l->sd.nmap + l->sd.nfrozen) * sizeof(struct extent);
		if (!(l->d = disk_get(st, (uint64_t)l->sd.id)))
			continue;	/* deleted since */
		n++;
		if ((rc = snap_load_disk(l, ext)) < 0)
			break;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct snap_loaded *l = &loaded[i];
		if (rc == 0) {
			extmap_free(l->d->map);
			extmap_free(l->d->frozen);
			l->d->map = l->map;
			l->d->frozen = l->frozen;
			l->d->size = l->sd.size;
			l->d->mtime_ns = l->sd.mtime_ns;
			l->d->meta_dirty = (int)l->sd.meta_dirty;
			l->d->log_bytes = l->sd.log_bytes;
			l->d->clone_src_laddr = l->sd.clone_src_laddr;
			/* a commit after the snapshot made the pending copy the disk's own tree */
			if (l->sd.root_pending && h->ix_generation == store_ix_generation(st)) {
				l->d->root_pending = 1;
				l->d->root_tree = l->sd.root_tree;
				if (!l->sd.root_tree ||
				    index_tree(st->ix, l->sd.root_tree, &l->d->root) < 0)
					memset(&l->d->root, 0, sizeof(l->d->root));
			}
			if (h->ix_generation != store_ix_generation(st))
				dmap_recount(l->d);	/* a commit came after the snapshot */
		} else {
			extmap_free(l->map);
			extmap_free(l->frozen);
		}
	}
	free(loaded);
	if (rc < 0)
		return rc;
	*laddr = h->laddr;
	*seq = h->seq;
	return 1;
}
