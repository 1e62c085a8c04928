/*
 * ranges: which bytes of a disk do not come from its template, for the
 * tool that moves a disk's changes out of hcowfs (hcowctl export,
 * tools/lifecycle.c) through the worker's `ranges` verb.
 *
 * A disk's view is its map: each extent says "in the log" or "zeros"; a
 * range with no extent reads from the template, or as zeros past the
 * template's end.  store_ranges() reports the first two kinds, in order,
 * with neighbours of one kind merged (the log's extents of one range may
 * come from many records: a reader of the disk does not care), clipped to
 * the disk's size (a shrink leaves zero extents up to the template's end).
 *
 * Design notes
 *
 * Owns nothing between calls.  Extents are copied out of the map in
 * batches of RANGES_BATCH (disk_extents_copy: ns_lock and the disk's lock,
 * shared, for one batch), and fn runs with no lock held, so a disk of
 * millions of extents costs one batch of memory and never stalls its
 * guest's I/O for longer than one batch takes to copy.  A disk written
 * while it is walked gives a picture that may mix moments (each batch is
 * consistent, two batches need not be): export a snapshot, or a disk no
 * one writes, for one moment.
 *
 * Error convention: 0 or a negative errno; fn's non-zero value stops the
 * walk and is returned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define RANGES_BATCH	4096

/* A range waiting for its neighbour: merged with it, or passed to fn. */
struct ranges_walk {
	struct store_range pending;
	int		 has_pending;
	uint64_t	 size;
	int		(*fn)(const struct store_range *r, void *arg);
	void		*arg;
};

/* The disk's size and its template's size, now; -ENOENT if it is gone. */
static int
ranges_sizes(struct store *st, uint64_t id, struct store_ranges_head *head)
{
	struct disk *d;

	pthread_rwlock_rdlock(&st->ns_lock);
	if (!(d = disk_get(st, id))) {
		pthread_rwlock_unlock(&st->ns_lock);
		return -ENOENT;
	}
	pthread_rwlock_rdlock(&d->lock);
	head->size = d->size;
	head->template_size = d->tmpl->rec.size;
	pthread_rwlock_unlock(&d->lock);
	pthread_rwlock_unlock(&st->ns_lock);
	return 0;
}

/*
 * Add extent e (clipped to the disk's size): merge it into the pending range
 * or flush that (disk_extents_each callback).
 */
static int
ranges_add(const struct extent *e, void *arg)
{
	struct ranges_walk *w = arg;
	struct store_range r = { e->loff, e->len, e->laddr == EXTMAP_ZERO };
	int rc;

	if (r.off >= w->size)
		return 0;
	if (r.len > w->size - r.off)
		r.len = w->size - r.off;
	if (w->has_pending && w->pending.zero == r.zero &&
	    w->pending.off + w->pending.len == r.off) {
		w->pending.len += r.len;
		return 0;
	}
	if (w->has_pending && (rc = w->fn(&w->pending, w->arg)) != 0)
		return rc;
	w->pending = r;
	w->has_pending = 1;
	return 0;
}

int
store_ranges(struct store *st, const char *name, uint64_t from, struct store_ranges_head *head,
    int (*fn)(const struct store_range *r, void *arg), void *arg)
{
	struct extent_batch b = { .cap = RANGES_BATCH };
	struct ranges_walk w = { .fn = fn, .arg = arg };
	struct disk_attr a;
	int rc;

	if ((rc = store_lookup_full(st, name, &a)) < 0)
		return rc;
	memset(head, 0, sizeof(*head));
	snprintf(head->template_name, sizeof(head->template_name), "%s", a.template_name);
	head->log_bytes = a.log_bytes;
	if ((rc = ranges_sizes(st, a.id, head)) < 0)
		return rc;
	w.size = head->size;
	if (!(b.e = malloc(RANGES_BATCH * sizeof(*b.e))))
		return -ENOMEM;
	rc = disk_extents_each(st, a.id, from, w.size, &b, ranges_add, &w);
	free(b.e);
	if (rc == 0 && w.has_pending)
		rc = fn(&w.pending, arg);
	return rc;
}
