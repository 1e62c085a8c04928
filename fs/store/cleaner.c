/*
 * cleaner: give the space of overwritten data back.
 *
 * The log only grows: a guest overwriting a block leaves the old record in
 * its segment, dead.  The cleaner finds sealed segments that are mostly dead,
 * copies the extents still living in them to the tail of the log (as
 * ordinary write records, so replay, snapshots and checkpoints need nothing
 * new), and then cuts those segments down to their headers.
 *
 * A segment S may be released only when nothing can reach its records:
 *   - no extent of any disk points into S: every live extent was moved, each
 *     move re-checked under the log lock so a guest write that landed
 *     meanwhile wins (its extent no longer points into S, nothing to move);
 *   - no catalog row and no checkpoint position: a checkpoint runs after the
 *     moves (they marked their ranges dirty) and must succeed, so the
 *     catalog names the new records and replay starts past S;
 *   - no snapshot: snapshot_refresh() writes one of this moment and retires
 *     the older half;
 *   - no read in flight: reads hold ns_lock shared for their whole duration,
 *     so taking it exclusively once is a barrier; a check (check.c), which
 *     reads without it, excludes cleaning by clean_lock.
 * A crash anywhere before the release leaves S whole and the moved copies
 * are just more records; after it, nothing needs S.
 *
 * Error convention: 0 or a negative errno; a segment that cannot be moved
 * (a damaged record in it) is skipped and logged, never released.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlog.h"
#include "store_int.h"

#define CLEAN_MAX_SEGMENTS	8	/* per pass: bounds the copying one pass does */

struct live_ctx {
	uint64_t	*live;		/* bytes, by segment - first */
	uint32_t	 first, last;
};

static int
live_count(const struct extent *e, void *arg)
{
	struct live_ctx *c = arg;
	uint32_t s = LADDR_SEG(e->laddr);

	if (e->laddr != EXTMAP_ZERO && s >= c->first && s <= c->last)
		c->live[s - c->first] += e->len;
	return 0;
}

static void
live_disk(struct disk *d, void *arg)
{
	extmap_walk(d->map, 0, UINT64_MAX, live_count, arg);
}

/* Live bytes of every segment, from every disk's map. */
static void
live_bytes(struct store *st, struct live_ctx *c)
{
	disks_each(st, live_disk, c);
}

struct in_seg {
	uint32_t	 seg;
	struct extent	*v;
	size_t		 n, cap;
	int		 rc;
};

static int
collect_in_seg(const struct extent *e, void *arg)
{
	struct in_seg *c = arg;

	if (e->laddr == EXTMAP_ZERO || LADDR_SEG(e->laddr) != c->seg)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct extent *v = realloc(c->v, cap * sizeof(*v));
		if (!v) {
			c->rc = -ENOMEM;
			return 1;
		}
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = *e;
	return 0;
}

/* The extent e of disk id still maps its whole range to the same record? Under d->lock. */
static int
extent_unchanged(const struct disk *d, const struct extent *e)
{
	struct extent x;

	return extmap_first(d->map, e->loff, e->loff + e->len, &x) &&
	    x.loff == e->loff && x.len == e->len && x.laddr == e->laddr;
}

/* Copy one extent to the tail: 0 (moved, or overwritten meanwhile) or -errno. */
static int
move_extent(struct store *st, uint64_t id, const struct extent *e, char *buf,
    uint64_t *moved)
{
	struct rec_header h = { 0 };
	const char *why;
	struct disk *d;
	int rc;

	/* read without locks (slow), append under them only if nothing changed */
	if ((rc = wlog_read(st->log, e->laddr, id, e->loff, buf, e->len, &why)) < 0) {
		hlog(HLOG_ERROR, "cleaner: cannot move bytes %llu..%llu of disk %llu out of log "
		    "record %08x:%llu: %s; that segment keeps its space",
		    (unsigned long long)e->loff, (unsigned long long)(e->loff + e->len),
		    (unsigned long long)id, LADDR_SEG(e->laddr),
		    (unsigned long long)LADDR_OFF(e->laddr), why ? why : strerror(-rc));
		return rc;
	}
	pthread_rwlock_rdlock(&st->ns_lock);
	pthread_mutex_lock(&st->log_lock);
	d = disk_get(st, id);
	if (d) {
		pthread_rwlock_rdlock(&d->lock);
		int same = extent_unchanged(d, e);
		pthread_rwlock_unlock(&d->lock);
		if (same) {
			h.type = REC_WRITE;
			h.disk_id = id;
			h.offset = e->loff;
			h.length = e->len;
			rc = disk_log(st, d, &h, buf, NULL);
			if (rc == 0)
				*moved += e->len;
		}
	}
	pthread_mutex_unlock(&st->log_lock);
	pthread_rwlock_unlock(&st->ns_lock);
	return rc;
}

/* Move every live extent out of segment seg; 0 or -errno (then seg must stay). */
static int
evacuate(struct store *st, uint32_t seg, char *buf, uint64_t *moved)
{
	uint64_t *ids;
	size_t n;
	int rc;

	if ((rc = disk_ids(st, &ids, &n)) < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct in_seg c = { .seg = seg };
		struct disk *d;

		pthread_rwlock_rdlock(&st->ns_lock);
		if ((d = disk_get(st, ids[i])) != NULL) {
			pthread_rwlock_rdlock(&d->lock);
			extmap_walk(d->map, 0, UINT64_MAX, collect_in_seg, &c);
			pthread_rwlock_unlock(&d->lock);
		}
		pthread_rwlock_unlock(&st->ns_lock);
		rc = c.rc;
		for (size_t k = 0; rc == 0 && k < c.n; k++)
			rc = move_extent(st, ids[i], &c.v[k], buf, moved);
		free(c.v);
	}
	free(ids);
	return rc;
}

int
store_clean(struct store *st, unsigned min_dead_pct, struct clean_stats *cs)
{
	struct live_ctx lc = { NULL, 0, 0 };
	uint32_t cand[CLEAN_MAX_SEGMENTS], cp_seg;
	size_t ncand = 0, nmoved = 0;
	char *buf = NULL;
	int rc = 0;

	memset(cs, 0, sizeof(*cs));
	if (st->readonly)
		return -EROFS;
	/* a check is reading (it may take minutes): do not hold up the checkpoint thread */
	if (pthread_mutex_trylock(&st->clean_lock) != 0)
		return -EBUSY;
	wlog_segments(st->log, &lc.first, &lc.last);
	cp_seg = st->cp_laddr ? LADDR_SEG(st->cp_laddr) : lc.first;
	if (lc.last - lc.first < 1 || cp_seg <= lc.first)
		goto out;		/* nothing sealed before the checkpoint */
	if (!(lc.live = calloc(lc.last - lc.first + 1, sizeof(*lc.live)))) {
		rc = -ENOMEM;
		goto out;
	}
	live_bytes(st, &lc);
	/* candidates: sealed, before the checkpoint's segment, mostly dead; the emptiest first */
	for (;;) {
		uint32_t best = 0;
		uint64_t best_dead = 0;
		for (uint32_t s = lc.first; s < cp_seg && s < lc.last; s++) {
			int64_t size = wlog_segment_bytes(st->log, s);
			uint64_t data = size > (int64_t)sizeof(struct seg_header) ?
			    (uint64_t)size - sizeof(struct seg_header) : 0;
			uint64_t live = lc.live[s - lc.first], dead = data > live ? data - live : 0;
			int taken = 0;
			for (size_t k = 0; k < ncand; k++)
				taken |= cand[k] == s;
			if (taken || data == 0 || dead * 100 < (uint64_t)min_dead_pct * data)
				continue;
			if (dead > best_dead) {
				best = s;
				best_dead = dead;
			}
		}
		if (!best || ncand == CLEAN_MAX_SEGMENTS)
			break;
		cand[ncand++] = best;
	}
	if (ncand == 0)
		goto out;
	if (!(buf = malloc(REC_DATA_MAX))) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < ncand; k++) {
		if (lc.live[cand[k] - lc.first] && evacuate(st, cand[k], buf, &cs->bytes_moved) < 0)
			continue;	/* logged; stays */
		cand[nmoved++] = cand[k];
	}
	if (nmoved == 0)
		goto out;
	/* the catalog, the replay start and the snapshots must stop naming them */
	if ((rc = store_checkpoint(st)) < 0) {
		hlog(HLOG_WARN, "cleaner: the checkpoint failed (%s); no segment released this time",
		    strerror(-rc));
		goto out;
	}
	snapshot_refresh(st);
	/* a barrier: every read that could still hold an old extent has finished */
	pthread_rwlock_wrlock(&st->ns_lock);
	pthread_rwlock_unlock(&st->ns_lock);
	memset(lc.live, 0, (lc.last - lc.first + 1) * sizeof(*lc.live));
	live_bytes(st, &lc);
	for (size_t k = 0; k < nmoved; k++) {
		int64_t size = wlog_segment_bytes(st->log, cand[k]);
		if (lc.live[cand[k] - lc.first] != 0) {
			/* cannot happen: appends never go to a sealed segment */
			hlog(HLOG_ERROR, "cleaner: segment %08x still has %llu live bytes after "
			    "moving; keeping it", cand[k],
			    (unsigned long long)lc.live[cand[k] - lc.first]);
			continue;
		}
		if ((rc = wlog_release(st->log, cand[k])) < 0) {
			hlog(HLOG_WARN, "cleaner: cannot release segment %08x: %s", cand[k],
			    strerror(-rc));
			continue;
		}
		cs->segments_released++;
		cs->bytes_released += (uint64_t)size - sizeof(struct seg_header);
	}
	rc = 0;
	if (cs->bytes_released) {
		/* the running total lives in the catalog, so status shows it across restarts */
		char v[32];
		uint64_t total = atomic_fetch_add(&st->clean_released, cs->bytes_released) +
		    cs->bytes_released;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)total);
		pthread_mutex_lock(&st->cat_lock);
		if (catalog_meta_set(st->cat, "log_released_bytes", v) < 0)
			hlog(HLOG_WARN, "cleaner: cannot record the released total: %s",
			    catalog_error(st->cat));
		pthread_mutex_unlock(&st->cat_lock);
	}
	if (cs->segments_released)
		hlog(HLOG_INFO, "cleaner: released %llu segments (%llu MiB), moving %llu MiB of live data",
		    (unsigned long long)cs->segments_released,
		    (unsigned long long)(cs->bytes_released >> 20),
		    (unsigned long long)(cs->bytes_moved >> 20));
out:
	pthread_mutex_unlock(&st->clean_lock);
	free(buf);
	free(lc.live);
	return rc;
}
