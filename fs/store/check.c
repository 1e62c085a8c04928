/*
 * check: verify a store and say, in plain words, what is wrong with it.
 *
 * Runs on an open store: a live one (hcowctl check on a mount, answered by
 * the worker) or one opened read-only by hcowctl check DATADIR.  It checks
 *   - the catalog: SQLite's integrity check; rows of one disk that overlap
 *     (the schema version was checked when the catalog was opened);
 *   - the index: every page the committed trees reach (index_verify);
 *   - the directories: every disk and directory is in one that exists;
 *   - each template: its file is still the version its disks were cloned
 *     from (the fingerprint is read again, not taken on trust);
 *   - the log: what a read-only open left alone (torn tail, incomplete
 *     segment: wlog_note());
 *   - each disk: every extent that lives in the log points into a sound
 *     record of that disk, and every block it covers matches its checksum.
 * Reads go through wlog_read(), the same verification a guest's read gets.
 *
 * Design notes
 *
 * Owns nothing between calls.  On a live store no lock is held while
 * records are read: extents are copied in batches (disk_extents_copy, under
 * the disk's lock), and records never change once written.  So a check
 * slows I/O down by its reads only.  It holds clean_lock while it reads a
 * batch: the cleaner must not release a segment a batch still names
 * (cleaner.c).  Between batches it yields the lock to a cleaner that found
 * it taken (check_yield), so checks run back to back cannot starve the
 * cleaner; the next batch is copied afresh and names the moved records.
 *
 * Error convention: store_check() returns the number of problems found
 * (0 = sound) or a negative errno when it could not check at all.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_int.h"
#include "template.h"

#define CHECK_BATCH	512		/* extents copied per visit to the disk lock */
#define CHECK_CHUNK	(1u << 20)	/* bytes verified per read */
#define CHECK_REPORT_MAX 20		/* damaged ranges listed per disk */
#define CHECK_YIELD_POLL_US 10000	/* how often a yielding check looks again */
#define CHECK_YIELD_POLLS 1000		/* and for how long at most (10 s) */

struct check {
	struct store	*st;
	struct sbuf	*out;
	int		 problems;
	unsigned char	*buf;
};

static void __attribute__((format(printf, 2, 3)))
problem(struct check *c, const char *fmt, ...)
{
	va_list ap;

	c->problems++;
	sbuf_addstr(c->out, "PROBLEM: ");
	va_start(ap, fmt);
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sbuf_addstr(c->out, line);
	sbuf_addstr(c->out, "\n");
}

static void
check_catalog(struct check *c)
{
	char what[1024];
	int rc;

	pthread_mutex_lock(&c->st->cat_lock);
	rc = catalog_integrity(c->st->cat, what, sizeof(what));
	if (rc < 0)
		snprintf(what, sizeof(what), "%s", catalog_error(c->st->cat));
	pthread_mutex_unlock(&c->st->cat_lock);
	if (rc == 0)
		sbuf_addstr(c->out, "catalog: ok (SQLite integrity check passed)\n");
	else
		problem(c, "catalog: SQLite integrity check %s: %s", rc < 0 ? "could not run" : "failed",
		    what);
	if (c->st->overlaps)
		problem(c, "%s (%llu overlapping rows)", c->st->overlap_what,
		    (unsigned long long)c->st->overlaps);
}

static void
check_index(struct check *c)
{
	struct store *st = c->st;
	struct index_stats is;
	char what[512];
	int rc;

	if (!st->ix) {
		sbuf_addstr(c->out, "index: none yet (the schema 3 catalog holds the extents; the "
		    "next mount moves them into the index)\n");
		return;
	}
	/* no commit meanwhile: the pages verified stay the committed ones */
	pthread_mutex_lock(&st->cat_lock);
	rc = index_verify(st->ix, what, sizeof(what));
	index_stats(st->ix, &is);
	pthread_mutex_unlock(&st->cat_lock);
	if (rc == 0)
		sbuf_printf(c->out, "index: ok (generation %llu, %llu trees, %llu pages in use)\n",
		    (unsigned long long)is.generation, (unsigned long long)is.trees,
		    (unsigned long long)is.pages_used);
	else
		problem(c, "index: %s", rc == -EUCLEAN ? what : strerror(-rc));
}

static void
check_templates(struct check *c)
{
	struct store *st = c->st;
	struct tmpl *copy;
	size_t n;

	/* copies: a create may add templates meanwhile (under cat_lock), and probing takes a while */
	pthread_mutex_lock(&st->cat_lock);
	n = st->ntmpls;
	copy = malloc((n ? n : 1) * sizeof(*copy));
	for (size_t i = 0; copy && i < n; i++)
		copy[i] = *st->tmpls[i];
	pthread_mutex_unlock(&st->cat_lock);
	if (!copy) {
		problem(c, "templates: out of memory while checking");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct tmpl *t = &copy[i];
		struct catalog_template cur;
		const char *why;
		char err[300];
		int fd = -1;

		if (t->problem[0]) {
			problem(c, "%s; its disks refuse I/O", t->problem);
			continue;
		}
		if (st->tmpldirfd < 0)
			continue;
		if (template_probe(st->tmpldirfd, t->rec.name, &cur, &fd, err, sizeof(err)) < 0)
			problem(c, "template '%s': %s (it was fine when the store was opened)",
			    t->rec.name, err);
		else if ((why = template_differs(&t->rec, &cur)) != NULL)
			problem(c, "template '%s' changed since its disks were cloned (%s)",
			    t->rec.name, why);
		else
			sbuf_printf(c->out, "template '%s': ok (%llu bytes, fingerprint matches)\n",
			    t->rec.name, (unsigned long long)t->rec.size);
		if (fd >= 0)
			close(fd);
	}
	free(copy);
}

/* Report damage in [off, off+len) of extent e by 4 KiB pieces, neighbours merged; bytes damaged. */
static void
orphan_found(void *arg, const char *path)
{
	struct check *c = arg;

	problem(c, "'%s' is in directory '%.*s', which the catalog does not hold: it cannot be "
	    "reached in the mount until that directory is made again (mkdir -p in the mount)",
	    path, (int)(strrchr(path, '/') - path), path);
}

static void
check_tree(struct check *c)
{
	size_t n;

	pthread_rwlock_rdlock(&c->st->ns_lock);
	n = dirs_count(c->st);
	if (dirs_orphans(c->st, orphan_found, c) == 0)
		sbuf_printf(c->out, "directories: ok (%zu; every disk and directory is in one)\n", n);
	pthread_rwlock_unlock(&c->st->ns_lock);
}

static uint64_t
check_damage(struct check *c, const char *name, uint64_t family, const struct extent *e,
    uint64_t off, uint64_t len, uint64_t *bad)
{
	uint64_t damaged = 0, run = 0, run_start = 0;
	const char *why = NULL, *run_why = NULL;

	for (uint64_t p = off; p <= off + len; p += REC_BLOCK) {
		uint64_t n = off + len - p < REC_BLOCK ? off + len - p : REC_BLOCK;
		int rc = n ? wlog_read(c->st->log, e->laddr, family, p, c->buf, n, &why) : 0;
		if (rc < 0) {
			if (!run) {
				run_start = p;
				run_why = why ? why : strerror(-rc);
			}
			run += n;
			damaged += n;
			continue;
		}
		if (run && (*bad)++ < CHECK_REPORT_MAX)
			problem(c, "disk '%s': bytes %llu..%llu (log record %08x:%llu): %s", name,
			    (unsigned long long)run_start, (unsigned long long)(run_start + run),
			    LADDR_SEG(e->laddr), (unsigned long long)LADDR_OFF(e->laddr), run_why);
		run = 0;
		if (n == 0)
			break;
	}
	return damaged;
}

/*
 * Give clean_lock to a cleaner that asked for it (clean_wanted), between
 * batches: wake the checkpoint thread, which runs the cleaner, and take the
 * lock back once the cleaner has it (it clears the flag) or has decided it
 * need not run.  clean_lock held on entry and on return.
 */
static void
check_yield(struct store *st)
{
	if (!atomic_load(&st->clean_wanted))
		return;
	pthread_mutex_unlock(&st->clean_lock);
	checkpoint_wake(st);
	for (int i = 0; i < CHECK_YIELD_POLLS && atomic_load(&st->clean_wanted); i++)
		usleep(CHECK_YIELD_POLL_US);
	pthread_mutex_lock(&st->clean_lock);
}

static void
check_disk(struct check *c, uint64_t id)
{
	/* copies of up to CHECK_BATCH log extents at a time, read with no lock held */
	struct extent_batch b = { .e = malloc(CHECK_BATCH * sizeof(*b.e)), .cap = CHECK_BATCH,
	    .log_only = 1 };
	char name[NAME_MAX_LEN + 32] = "";
	uint64_t pos = 0, extents = 0, bytes = 0, bad = 0, bad_bytes = 0;

	if (!b.e) {
		problem(c, "disk %llu: out of memory while checking", (unsigned long long)id);
		return;
	}
	for (;;) {
		if (disk_extents_copy(c->st, id, pos, UINT64_MAX, &b, name, sizeof(name)) < 0)
			break;
		if (!name[0])
			snprintf(name, sizeof(name), "(deleted, still open)");
		if (b.n == 0)
			break;
		for (size_t i = 0; i < b.n; i++) {
			const struct extent *e = &b.e[i];
			for (uint64_t done = 0; done < e->len; ) {
				uint64_t n = e->len - done < CHECK_CHUNK ? e->len - done : CHECK_CHUNK;
				const char *why;
				if (wlog_read(c->st->log, e->laddr, b.family, e->loff + done, c->buf, n, &why) < 0)
					bad_bytes += check_damage(c, name, b.family, e, e->loff + done, n, &bad);
				done += n;
			}
			extents++;
			bytes += e->len;
		}
		pos = b.e[b.n - 1].loff + b.e[b.n - 1].len;
		check_yield(c->st);
	}
	free(b.e);
	if (!name[0])
		return;		/* deleted before we got to it */
	if (bad > CHECK_REPORT_MAX)
		problem(c, "disk '%s': %llu more damaged ranges not listed", name,
		    (unsigned long long)(bad - CHECK_REPORT_MAX));
	if (bad)
		sbuf_printf(c->out, "disk '%s': DAMAGED: %llu of %llu bytes in the log unreadable; "
		    "reads of them return EIO, the rest of the disk works\n", name,
		    (unsigned long long)bad_bytes, (unsigned long long)bytes);
	else
		sbuf_printf(c->out, "disk '%s': ok (%llu log extents, %llu bytes verified)\n", name,
		    (unsigned long long)extents, (unsigned long long)bytes);
}

/*
 * The log bytes in use, shared ones once: a check walks every map anyway,
 * so it counts exactly (live.c) where status estimates; guess if it cannot.
 */
static uint64_t
exact_live(struct store *st, uint64_t guess)
{
	uint32_t first, last;
	uint64_t *live, sum = 0;

	wlog_segments(st->log, &first, &last);
	if (last < first || !(live = calloc((size_t)(last - first) + 1, sizeof(*live))))
		return guess;
	if (disks_segment_live(st, first, last, live) == 0)
		for (uint32_t s = first; s <= last; s++)
			sum += live[s - first];
	else
		sum = guess;
	free(live);
	return sum;
}

int
store_check(struct store *st, struct sbuf *out)
{
	struct check c = { st, out, 0, malloc(CHECK_CHUNK) };
	uint64_t *ids = NULL;
	size_t n = 0;
	const char *note;

	if (!c.buf)
		return -ENOMEM;
	/* the cleaner must not release a segment under our reads (cleaner.c) */
	pthread_mutex_lock(&st->clean_lock);
	{
		uint64_t disk, live;
		store_log_space(st, &disk, &live);
		live = exact_live(st, live);
		sbuf_printf(out, "store '%s': schema version %d, log format %d (new segments); log: %llu bytes on "
		    "disk, %llu bytes of them in use by the disks, %llu more kept for reuse\n",
		    st->datadir, catalog_version(st->cat), LOG_FORMAT_VERSION, (unsigned long long)disk,
		    (unsigned long long)live, (unsigned long long)store_log_spare(st));
	}
	check_catalog(&c);
	check_index(&c);
	check_tree(&c);
	check_templates(&c);
	if ((note = wlog_note(st->log)) != NULL)
		problem(&c, "%s; mounting (or hcowctl check --repair) cuts it", note);

	if (disk_ids(st, &ids, &n) < 0) {
		pthread_mutex_unlock(&st->clean_lock);
		free(c.buf);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		check_yield(st);
		check_disk(&c, ids[i]);
	}
	free(ids);
	free(c.buf);
	pthread_mutex_unlock(&st->clean_lock);
	if (c.problems)
		sbuf_printf(out, "%d problem%s found\n", c.problems, c.problems == 1 ? "" : "s");
	else
		sbuf_addstr(out, "no problems found\n");
	return c.problems;
}
