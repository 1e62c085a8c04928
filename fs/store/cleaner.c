/*
 * cleaner: give the space of overwritten data back.
 *
 * Design notes
 *
 * The log only grows: a guest overwriting a block leaves the old record in
 * its segment, dead.  The cleaner finds sealed segments that are mostly dead,
 * copies the extents still living in them to the tail of the log (as
 * ordinary write records, so replay, snapshots and checkpoints need nothing
 * new), and then cuts those segments down to their headers.
 *
 * When (store_clean_auto, after each checkpoint): once the dead bytes pass
 * a quarter of the live data plus half a segment, a pass takes the emptiest
 * segments until they are down to an eighth plus half a segment; a log allowed
 * twice its live data broke the bound of issue 13 (1.5x live + 2 segments)
 * before cleaning began.
 *
 * It is a client of the store's verbs and keeps no state but the running
 * total of bytes given back (clean_released, also in the catalog's meta) and
 * clean_lock (one cleaner or check at a time: check.c reads records without
 * ns_lock).
 *
 * A segment S may be released only when nothing can reach its records:
 *   - no extent of any disk points into S: every live extent was moved, each
 *     move re-checked under the log lock so a guest write that landed
 *     meanwhile wins (its extent no longer points into S, nothing to move);
 *   - no committed tree and no checkpoint position: two checkpoints run
 *     after the moves (they went into the overlays) and must succeed, so
 *     the trees of both of the index's meta slots (the older one is the
 *     fallback for a damaged newer one) name the new records, and replay
 *     from either starts past S;
 *   - no snapshot: handoff_refresh() writes one of this moment and retires
 *     the older half;
 *   - no read in flight: reads hold ns_lock shared for their whole duration,
 *     so disks_read_barrier() (ns_lock taken exclusively once) waits them
 *     out; a check (check.c), which reads without it, excludes cleaning by
 *     clean_lock.
 * A crash anywhere before the release leaves S whole and the moved copies
 * are just more records; after it, nothing needs S.
 *
 * A pass (store_clean), each step by one verb of a module below:
 *   disks_segment_live   live bytes per segment: pick the candidates
 *   store_move_segment   (diskio.c) move each candidate's live extents out
 *   checkpoint_twice     the index (both meta slots) stops naming them
 *   handoff_refresh     so do the snapshots
 *   disks_read_barrier   so does every read
 *   disks_segment_live   nothing came back (it cannot: appends never go to
 *                        a sealed segment)
 *   wlog_release         give the space back
 *   store_meta_set       remember the total
 *
 * Space: a pass copies live data before it releases anything, so it needs
 * free space first.  Guests may not use the last st->space_reserve bytes of
 * the data dir's file system (diskio.c) but the cleaner's moves and the
 * checkpoints may; a pass takes candidates only while their live bytes fit
 * in half of what is free (the other half for the catalog's growth and the
 * tail segment), and when free space is down to the reserve plus a segment
 * (store_clean_auto) it runs after every checkpoint and takes segments only
 * CLEAN_SHORT_PCT % dead.  A refused guest write wakes the checkpoint thread.
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
#define CLEAN_PCT		50	/* dead enough to clean, normally */
#define CLEAN_SHORT_PCT		10	/* when space is short */
#define CLEAN_LIVE_PASS_S	60	/* with shared records: the longest between exact passes (live.c) */
/*
 * When to clean: once the dead bytes pass live / CLEAN_HIGH_SHARE + half a
 * segment, a pass gives back (the emptiest first) until they are down to
 * live / CLEAN_LOW_SHARE + half a segment.  The log's bound (issue 13) is
 * 1.5 x live + 2 segments; the margin is what the guests write while a pass
 * runs: on a disk, a pass reads a cold segment whole (5 s a GiB), and
 * guests appending 100 MiB/s meanwhile rolled a 1 GiB log into a fourth
 * segment when the passes began a whole segment later.
 */
#define CLEAN_HIGH_SHARE	4
#define CLEAN_LOW_SHARE		8

/* Bytes of records in segment s (0 if it is gone). */
static uint64_t
seg_data(struct store *st, uint32_t s)
{
	int64_t size = wlog_segment_bytes(st->log, s);

	return size > (int64_t)sizeof(struct seg_header) ? (uint64_t)size - sizeof(struct seg_header) : 0;
}

/* Are at least pct % of a segment's data bytes dead, used of them live? */
static int
dead_enough(uint64_t data, uint64_t used, unsigned pct)
{
	uint64_t dead = data > used ? data - used : 0;

	return dead * 100 >= (uint64_t)pct * data;
}

/* Is s one of cand[0..n)? */
static int
taken(const uint32_t *cand, size_t n, uint32_t s)
{
	for (size_t k = 0; k < n; k++)
		if (cand[k] == s)
			return 1;
	return 0;
}

/* Why segments were left out of a pass: the pass's log line says. */
struct pick_left {
	unsigned newer;		/* the checkpoint's segment or after it */
	unsigned alive;		/* less than min_dead_pct % dead */
	unsigned budget;	/* dead enough, but their live bytes did not fit */
	unsigned full;		/* dead enough, not needed or past CLEAN_MAX_SEGMENTS */
};

/*
 * Sealed segments before the checkpoint's one, at least min_dead_pct %
 * dead, the emptiest first, up to CLEAN_MAX_SEGMENTS whose live bytes
 * together fit in budget, until their dead bytes reach want: their number;
 * what was left out, and why, in left.
 */
static size_t
pick_segments(struct store *st, uint32_t first, uint32_t last, uint32_t cp_seg,
    const uint64_t *live, unsigned min_dead_pct, uint64_t budget, uint64_t want,
    uint32_t cand[CLEAN_MAX_SEGMENTS], struct pick_left *left)
{
	size_t ncand = 0;
	uint64_t got = 0;

	memset(left, 0, sizeof(*left));
	for (;;) {
		uint32_t best = 0;
		uint64_t best_dead = 0;
		unsigned fits = 0;
		for (uint32_t s = first; s < cp_seg && s < last; s++) {
			uint64_t data = seg_data(st, s), used = live[s - first];
			uint64_t dead = data > used ? data - used : 0;
			if (taken(cand, ncand, s) || data == 0 || !dead_enough(data, used, min_dead_pct) ||
			    used > budget)
				continue;
			fits++;
			if (dead > best_dead) {
				best = s;
				best_dead = dead;
			}
		}
		if (!best || ncand == CLEAN_MAX_SEGMENTS || got >= want) {
			left->full = fits;
			break;
		}
		budget -= live[best - first];
		got += best_dead;
		cand[ncand++] = best;
	}
	/* the rest, counted once the choice is made */
	for (uint32_t s = first; s < last; s++) {
		uint64_t data = seg_data(st, s), used = live[s - first];
		if (taken(cand, ncand, s) || data == 0)
			continue;
		if (s >= cp_seg)
			left->newer++;
		else if (!dead_enough(data, used, min_dead_pct))
			left->alive++;
		else if (used > budget)
			left->budget++;
	}
	return ncand;
}

/* One line for the pass about to run: the log, the candidates, what was left out. */
static void
log_pass(struct store *st, uint32_t first, uint32_t last, uint32_t cp_seg, const uint64_t *live,
    unsigned min_dead_pct, uint64_t budget, const uint32_t *cand, size_t ncand,
    const struct pick_left *left)
{
	char list[CLEAN_MAX_SEGMENTS * 40] = "";
	uint64_t total = 0, used = 0;
	size_t at = 0;

	for (uint32_t s = first; s <= last; s++) {
		int64_t size = wlog_segment_bytes(st->log, s);
		total += size > 0 ? (uint64_t)size : 0;
		used += live[s - first];
	}
	for (size_t k = 0; k < ncand && at < sizeof(list); k++) {
		int64_t size = wlog_segment_bytes(st->log, cand[k]);
		uint64_t u = live[cand[k] - first];
		int n = snprintf(list + at, sizeof(list) - at, " %08x (%llu %% dead, %llu MiB live)",
		    cand[k], (unsigned long long)(size > 0 && (uint64_t)size > u ?
		    ((uint64_t)size - u) * 100 / (uint64_t)size : 0),
		    (unsigned long long)(u >> 20));
		at += n > 0 ? (size_t)n : 0;
	}
	hlog(HLOG_INFO, "cleaner: pass: log %llu MiB in segments %08x..%08x (checkpoint in %08x), "
	    "%llu MiB live, budget %llu MiB; taking %zu:%s; left: %u at or after the checkpoint's "
	    "segment, %u under %u %% dead, %u over the budget, %u not needed or past %d a pass",
	    (unsigned long long)(total >> 20), first, last, cp_seg,
	    (unsigned long long)(used >> 20), (unsigned long long)(budget >> 20), ncand,
	    ncand ? list : " none", left->newer, left->alive, min_dead_pct, left->budget,
	    left->full, CLEAN_MAX_SEGMENTS);
}

/* One pass, giving back segments until want dead bytes are (store_clean). */
static int
clean_pass(struct store *st, unsigned min_dead_pct, uint64_t want, struct clean_stats *cs)
{
	uint64_t *live = NULL, free_bytes, reserve;
	uint32_t first, last, cand[CLEAN_MAX_SEGMENTS], cp_seg;
	struct pick_left left;
	size_t ncand = 0, nmoved = 0;
	char *buf = NULL;
	int rc = 0;

	memset(cs, 0, sizeof(*cs));
	if (st->readonly)
		return -EROFS;
	/*
	 * A check is reading (it may take minutes): do not hold up the
	 * checkpoint thread, but ask the check to yield between its batches
	 * (check_yield), or checks run back to back would starve the cleaner.
	 */
	if (pthread_mutex_trylock(&st->clean_lock) != 0) {
		atomic_store(&st->clean_wanted, 1);
		return -EBUSY;
	}
	atomic_store(&st->clean_wanted, 0);
	wlog_segments(st->log, &first, &last);
	cp_seg = st->cp_laddr ? LADDR_SEG(st->cp_laddr) : first;
	if (last - first < 1 || cp_seg <= first)
		goto out;		/* nothing sealed before the checkpoint */
	if (!(live = calloc(last - first + 1, sizeof(*live)))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = disks_segment_live(st, first, last, live)) < 0)
		goto out;
	atomic_fetch_add(&st->clean_passes, 1);
	store_space_look(st, &free_bytes, &reserve);
	ncand = pick_segments(st, first, last, cp_seg, live, min_dead_pct, free_bytes / 2, want,
	    cand, &left);
	log_pass(st, first, last, cp_seg, live, min_dead_pct, free_bytes / 2, cand, ncand, &left);
	if (ncand == 0)
		goto out;
	if (!(buf = malloc(REC_DATA_MAX))) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < ncand; k++) {
		if (live[cand[k] - first] && store_move_segment(st, cand[k], buf, cs) < 0)
			continue;	/* logged; stays */
		cand[nmoved++] = cand[k];
	}
	if (nmoved == 0)
		goto out;
	/* the index (both meta slots), the replay start and the snapshots must stop naming them */
	if ((rc = checkpoint_twice(st)) < 0) {
		hlog(HLOG_WARN, "cleaner: the checkpoint failed (%s); no segment released this time",
		    strerror(-rc));
		goto out;
	}
	handoff_refresh(st);
	/* a barrier: every read that could still hold an old extent has finished */
	disks_read_barrier(st);
	if ((rc = disks_segment_live(st, first, last, live)) < 0)
		goto out;
	for (size_t k = 0; k < nmoved; k++) {
		int64_t size = wlog_segment_bytes(st->log, cand[k]);
		if (live[cand[k] - first] != 0) {
			/* cannot happen: appends never go to a sealed segment */
			hlog(HLOG_ERROR, "cleaner: segment %08x still has %llu live bytes after "
			    "moving; keeping it", cand[k],
			    (unsigned long long)live[cand[k] - first]);
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
		char v[32], why[256];
		uint64_t total = atomic_fetch_add(&st->clean_released, cs->bytes_released) +
		    cs->bytes_released;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)total);
		if (store_meta_set(st, "log_released_bytes", v, why, sizeof(why)) < 0)
			hlog(HLOG_WARN, "cleaner: cannot record the released total: %s", why);
	}
	if (cs->segments_released)
		hlog(HLOG_INFO, "cleaner: released %llu segments (%llu MiB), moving %llu MiB of live data "
		    "in %llu moves, %llu of them back in their segment",
		    (unsigned long long)cs->segments_released,
		    (unsigned long long)(cs->bytes_released >> 20),
		    (unsigned long long)(cs->bytes_moved >> 20), (unsigned long long)cs->moves,
		    (unsigned long long)cs->moves_back);
out:
	pthread_mutex_unlock(&st->clean_lock);
	free(buf);
	free(live);
	return rc;
}

int
store_clean(struct store *st, unsigned min_dead_pct, struct clean_stats *cs)
{
	return clean_pass(st, min_dead_pct, UINT64_MAX, cs);
}

/*
 * Is a pass due, and how many dead bytes should it give back (*want)?
 * *short_of_space: the data dir's file system is down to its reserve and a
 * segment.  Not while the log has grown less than half a segment since a
 * pass found nothing to take: the dead bytes may be spread over segments
 * none of which is half dead yet, and weighing them walks every map.
 */
static int
clean_due(struct store *st, uint64_t *want, int *short_of_space)
{
	uint64_t disk, live, dead, free_bytes, reserve;
	int stale;

	store_space_look(st, &free_bytes, &reserve);
	*short_of_space = reserve && free_bytes < reserve + st->segment_size;
	store_log_space(st, &disk, &live);
	/* with shared records, live is an estimate from the last exact pass: renew it now and then */
	pthread_rwlock_rdlock(&st->ns_lock);
	stale = disks_share(st) &&
	    now_ns() - atomic_load(&st->live_pass_ns) > (int64_t)CLEAN_LIVE_PASS_S * 1000000000;
	pthread_rwlock_unlock(&st->ns_lock);
	dead = disk > live ? disk - live : 0;
	*want = UINT64_MAX;
	if (*short_of_space || stale)
		return 1;
	if (dead <= live / CLEAN_HIGH_SHARE + st->segment_size / 2 ||
	    (st->clean_idle_log && disk < st->clean_idle_log + st->segment_size / 2))
		return 0;
	*want = dead - (live / CLEAN_LOW_SHARE + st->segment_size / 2);
	return 1;
}

void
store_clean_auto(struct store *st)
{
	struct clean_stats cs;
	uint64_t want;
	int short_of_space;
	int rc;

	if (!clean_due(st, &want, &short_of_space)) {
		atomic_store(&st->clean_wanted, 0);	/* a yielding check need not wait */
		return;
	}
	rc = clean_pass(st, short_of_space ? CLEAN_SHORT_PCT : CLEAN_PCT, want, &cs);
	if (rc < 0 && rc != -EBUSY)
		hlog(HLOG_WARN, "cleaner: %s", strerror(-rc));
	st->clean_idle_log = rc == 0 && cs.segments_released == 0 ? wlog_disk_bytes(st->log) : 0;
}

uint64_t
store_log_released(struct store *st)
{
	return atomic_load(&st->clean_released);
}
