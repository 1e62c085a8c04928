/*
 * check_index: fs/store/index.c against an extmap as the model.  Random
 * edits of several trees, committed now and then, compared by full walks,
 * index_first at random points and the tree table's counts, also after
 * close and reopen; clones that share pages and drops that free them; every
 * commit cut at each of its writes and syncs, and the power cuts that drop
 * any subset of the writes after the last sync; files that are not a good
 * index of this store; a transaction whose memory must stay bounded.  The
 * seed is printed; set EXTMAP_SEED to replay a run.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "extmap_fixture.h"
#include "index.h"

#define NTREES	3

static const uint8_t uuid_a[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t uuid_b[16] = { 16, 15, 14 };

/* A path in the run's directory. */
static const char *
run_path(const char *name)
{
	static char p[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", fixture_run_dir, name);
	return p[i];
}

/* Open path for uuid_a, or fail the test. */
static struct index *
open_ok(const char *path, int flags)
{
	struct index *ix;
	char err[256] = "";
	int rc = index_open(path, uuid_a, flags, &ix, err, sizeof(err));

	REQUIRE(rc == 0, "index_open %s: %d %s", path, rc, err);
	return ix;
}

/* index_verify finds nothing, or fail the test. */
static void
verify_ok(struct index *ix)
{
	char err[256] = "";
	int rc = index_verify(ix, err, sizeof(err));

	REQUIRE(rc == 0, "index_verify: %d %s", rc, err);
}

/* Commit t at log position (pos, pos), or fail the test. */
static void
commit_ok(struct index_txn *t, uint64_t pos)
{
	char err[256] = "";
	int rc = index_commit(t, pos, pos, err, sizeof(err));

	REQUIRE(rc == 0, "index_commit: %d %s", rc, err);
}

/* Merge touching neighbours of one laddr: the index may keep them apart across leaves. */
static void
normalize(struct vec *v)
{
	size_t i = 0;

	for (size_t k = 1; k < v->n; k++) {
		if (v->v[i].loff + v->v[i].len == v->v[k].loff && v->v[i].laddr == v->v[k].laddr)
			v->v[i].len += v->v[k].len;
		else
			v->v[++i] = v->v[k];
	}
	if (v->n > 0)
		v->n = i + 1;
}

/* Tree id of ix, committed, matches model m: walks, counts, index_first at random points. */
static void
compare_tree(struct index *ix, uint64_t id, const struct extmap *m, int probes)
{
	struct vec got = { 0 }, exp = { 0 };
	struct index_root r = { 0 };
	int rc = index_tree(ix, id, &r);

	REQUIRE(rc == 0 || (rc == -ENOENT && extmap_count(m) == 0), "index_tree %" PRIu64 ": %d",
	    id, rc);
	REQ_INT(index_walk(ix, &r, 0, UINT64_MAX, collect_cb, &got), 0);
	REQ_U64(r.extents, got.n);
	REQ_U64(r.log_bytes, extmap_log_bytes(m));
	normalize(&got);
	collect(m, 0, UINT64_MAX, &exp);
	REQ_U64(got.n, exp.n);
	for (size_t i = 0; i < exp.n; i++)
		REQUIRE(ext_eq(&got.v[i], &exp.v[i]), "tree %" PRIu64 " extent %zu: %" PRIu64 "+%"
		    PRIu64 "@%" PRIx64 ", model %" PRIu64 "+%" PRIu64 "@%" PRIx64, id, i,
		    got.v[i].loff, got.v[i].len, got.v[i].laddr, exp.v[i].loff, exp.v[i].len,
		    exp.v[i].laddr);
	for (int k = 0; k < probes; k++) {
		uint64_t off = exp.n && rng() % 2 ? exp.v[rng() % exp.n].loff + rng_range(0, 8192) :
		    rng() % (UINT64_C(1) << 31);
		uint64_t end = off + rng_range(1, 1 << 20);
		struct extent a, b;
		int fa = index_first(ix, &r, off, end, &a), fb = extmap_first(m, off, end, &b);
		REQ_INT(fa, fb);
		if (fa == 1) {
			/* the index's extent may end where the model's merged one goes on */
			REQ_U64(a.loff, b.loff);
			REQ_U64(a.laddr, b.laddr);
			REQ(a.len <= b.len);
		}
		got.n = 0;
		exp.n = 0;
		REQ_INT(index_walk(ix, &r, off, end, collect_cb, &got), 0);
		normalize(&got);
		collect(m, off, end, &exp);
		REQ_U64(got.n, exp.n);
		for (size_t i = 0; i < exp.n; i++)
			REQ(ext_eq(&got.v[i], &exp.v[i]));
	}
	vec_free(&got);
	vec_free(&exp);
}

/* A random range: mostly small and 512-aligned in 2 GiB, sometimes huge. */
static void
random_range(uint64_t *off, uint64_t *len)
{
	uint64_t r = rng() % 100;

	*off = rng_range(0, (UINT64_C(1) << 22) - 1) * 512;
	if (r < 60)
		*len = rng_range(1, 64) * 512;
	else if (r < 90)
		*len = rng_range(1, 4096) * 512;
	else if (r < 98)
		*len = rng_range(1, UINT64_C(1) << 20) * 512;
	else {
		*off = rng_range(0, 1 << 20) * 512;
		*len = UINT64_C(1) << 40;
	}
}

/* A laddr from a small set, so touching pieces of one record and of zeros meet often. */
static uint64_t
random_laddr(void)
{
	uint64_t r = rng() % 10;

	return r < 2 ? Z : rng_range(1, 40) << 20;
}

/* One random edit of tree id in t and in model m. */
static void
random_edit(struct index_txn *t, uint64_t id, struct extmap *m)
{
	uint64_t off, len, laddr;

	random_range(&off, &len);
	if (rng() % 4 == 0) {
		REQ_INT(index_clear(t, id, off, len), 0);
		REQ_INT(extmap_clear(m, off, len), 0);
	} else {
		laddr = random_laddr();
		REQ_INT(index_set(t, id, off, len, laddr), 0);
		REQ_INT(extmap_set(m, off, len, laddr), 0);
	}
}

START_TEST(random_edits_match_the_model)
{
	struct extmap *m[NTREES];
	struct index *ix;
	struct index_txn *t = NULL;
	const char *path = run_path("model.index");
	int ops = 30000;

	seed_init("random_edits_match_the_model", UINT64_C(0xa4093822299f31d0));
	for (int i = 0; i < NTREES; i++)
		m[i] = extmap_new();
	ix = open_ok(path, INDEX_CREATE);
	for (int op = 1; op <= ops; op++) {
		int id = (int)(rng() % NTREES);
		if (!t)
			REQ_INT(index_begin(ix, &t), 0);
		random_edit(t, (uint64_t)id + 1, m[id]);
		if (op % 1000 == 0) {
			/* before the commit, readers still see the last generation */
			struct index_stats st;
			uint64_t laddr, seq;
			index_stats(ix, &st);
			commit_ok(t, (uint64_t)op);
			t = NULL;
			index_position(ix, &laddr, &seq);
			REQ_U64(laddr, (uint64_t)op);
			for (int i = 0; i < NTREES; i++)
				compare_tree(ix, (uint64_t)i + 1, m[i], 50);
			if (op % 4000 == 0) {
				index_close(ix);
				ix = open_ok(path, 0);
				verify_ok(ix);
				for (int i = 0; i < NTREES; i++)
					compare_tree(ix, (uint64_t)i + 1, m[i], 50);
			}
		}
	}
	REQ(t == NULL);
	/* a clear of the whole disk: each tree empties */
	REQ_INT(index_begin(ix, &t), 0);
	for (int i = 0; i < NTREES; i++) {
		REQ_INT(index_clear(t, (uint64_t)i + 1, 0, UINT64_MAX), 0);
		REQ_INT(extmap_clear(m[i], 0, UINT64_MAX), 0);
	}
	commit_ok(t, 1);
	for (int i = 0; i < NTREES; i++) {
		compare_tree(ix, (uint64_t)i + 1, m[i], 5);
		extmap_free(m[i]);
	}
	verify_ok(ix);
	index_close(ix);
}
END_TEST

/* A copy of model src. */
static struct extmap *
model_copy(const struct extmap *src)
{
	struct extmap *m = extmap_new();
	struct vec v = { 0 };

	collect(src, 0, UINT64_MAX, &v);
	for (size_t i = 0; i < v.n; i++)
		REQ_INT(extmap_set(m, v.v[i].loff, v.v[i].len, v.v[i].laddr), 0);
	vec_free(&v);
	return m;
}

/* 4 KiB writes at random places of a 100 GiB disk. */
static void
random_writes(struct index_txn *t, uint64_t id, struct extmap *m, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t off = rng_range(0, 25 * 1024 * 1024 - 1) * 4096, laddr = rng() >> 12 << 12;
		if (t)
			REQ_INT(index_set(t, id, off, 4096, laddr), 0);
		if (m)
			REQ_INT(extmap_set(m, off, 4096, laddr), 0);
	}
}

START_TEST(clones_share_pages_and_drops_free_them)
{
	struct extmap *m1 = extmap_new(), *m2, *m3;
	struct index *ix = open_ok(run_path("clone.index"), INDEX_CREATE);
	struct index_txn *t;
	struct index_stats s0, s1, s2;

	seed_init("clones_share_pages_and_drops_free_them", UINT64_C(0x082efa98ec4e6c89));
	REQ_INT(index_begin(ix, &t), 0);
	random_writes(t, 1, m1, 40000);
	commit_ok(t, 1);
	REQ_INT(index_begin(ix, &t), 0);
	index_stats(ix, &s0);
	REQ_INT(index_tree_clone(t, 1, 2), 0);
	REQ_INT(index_tree_clone(t, 1, 2), -EEXIST);
	REQ_INT(index_tree_clone(t, 9, 10), -ENOENT);
	commit_ok(t, 2);
	m2 = model_copy(m1);
	compare_tree(ix, 2, m2, 20);
	/* both sides change; each reads as its own model */
	REQ_INT(index_begin(ix, &t), 0);
	random_writes(t, 1, m1, 2000);
	random_writes(t, 2, m2, 2000);
	/* a clone of a tree this transaction changed: neither may change the other's pages */
	m3 = model_copy(m1);
	REQ_INT(index_tree_clone(t, 1, 3), 0);
	random_writes(t, 1, m1, 500);
	random_writes(t, 3, m3, 500);
	commit_ok(t, 3);
	compare_tree(ix, 1, m1, 50);
	compare_tree(ix, 2, m2, 50);
	compare_tree(ix, 3, m3, 50);
	verify_ok(ix);
	/* 100 clones of a 40,000-extent tree cost the table's pages, not the trees' */
	REQ_INT(index_begin(ix, &t), 0);
	index_stats(ix, &s1);
	for (uint64_t id = 100; id < 200; id++)
		REQ_INT(index_tree_clone(t, 1, id), 0);
	commit_ok(t, 4);
	REQ_INT(index_begin(ix, &t), 0);
	index_stats(ix, &s2);
	index_abort(t);
	REQUIRE(s2.pages_used < s1.pages_used + 10, "100 clones took %" PRIu64 " pages",
	    s2.pages_used - s1.pages_used);
	compare_tree(ix, 150, m1, 20);
	/* drop tree 2 and the clones: after two commits the pages only 2 held are free */
	REQ_INT(index_begin(ix, &t), 0);
	index_stats(ix, &s1);
	REQ_INT(index_tree_drop(t, 2), 0);
	REQ_INT(index_tree_drop(t, 2), 0);
	for (uint64_t id = 100; id < 200; id++)
		REQ_INT(index_tree_drop(t, id), 0);
	commit_ok(t, 5);
	REQ_INT(index_begin(ix, &t), 0);
	commit_ok(t, 6);
	REQ_INT(index_begin(ix, &t), 0);
	index_stats(ix, &s2);
	index_abort(t);
	REQUIRE(s2.pages_free > s1.pages_free + 20, "free pages %" PRIu64 " -> %" PRIu64,
	    s1.pages_free, s2.pages_free);
	REQ_INT(index_tree(ix, 2, &(struct index_root){ 0 }), -ENOENT);
	compare_tree(ix, 1, m1, 50);
	compare_tree(ix, 3, m3, 50);
	verify_ok(ix);
	(void)s0;
	extmap_free(m1);
	extmap_free(m2);
	extmap_free(m3);
	index_close(ix);
}
END_TEST

/* index_each_tree's callback: count the trees, in increasing id order. */
static int
count_tree(uint64_t id, const struct index_root *r, void *arg)
{
	uint64_t *last = arg;

	if (id <= last[0] && last[1] > 0)
		return -1;
	last[0] = id;
	last[1]++;
	return 0;
}

START_TEST(thousands_of_trees)
{
	const char *path = run_path("trees.index");
	struct extmap *m = extmap_new();
	struct index *ix = open_ok(path, INDEX_CREATE);
	struct index_txn *t;
	uint64_t seen[2] = { 0, 0 };

	seed_init("thousands_of_trees", UINT64_C(0xba7c9045f12c7f99));
	REQ_INT(index_begin(ix, &t), 0);
	random_writes(t, 1, m, 2000);
	for (uint64_t id = 5000; id > 1; id--)
		REQ_INT(index_tree_clone(t, 1, id * 3), 0);
	commit_ok(t, 1);
	/* every tenth clone changes, every hundredth goes */
	REQ_INT(index_begin(ix, &t), 0);
	for (uint64_t id = 2; id <= 5000; id++) {
		if (id % 100 == 0)
			REQ_INT(index_tree_drop(t, id * 3), 0);
		else if (id % 10 == 0)
			REQ_INT(index_set(t, id * 3, 0, 4096, id << 12), 0);
	}
	commit_ok(t, 2);
	index_close(ix);
	ix = open_ok(path, 0);
	REQ_INT(index_each_tree(ix, count_tree, seen), 0);
	REQ_U64(seen[1], 1 + 4999 - 50);
	compare_tree(ix, 1, m, 20);
	compare_tree(ix, 3 * 4999, m, 20);
	REQ_INT(extmap_set(m, 0, 4096, UINT64_C(4990) << 12), 0);
	compare_tree(ix, 3 * 4990, m, 20);
	REQ_INT(index_tree(ix, 3 * 4900, &(struct index_root){ 0 }), -ENOENT);
	REQ_INT(index_tree(ix, 3 * 4900 + 1, &(struct index_root){ 0 }), -ENOENT);
	verify_ok(ix);
	index_close(ix);
	extmap_free(m);
}
END_TEST

/* The io hooks of the crash tests: count, fail at the k-th call, tear, record. */
struct cut {
	int		writes, syncs;
	int		fail_write, fail_sync;	/* 1-based; 0: never */
	int		tear;			/* the failing write puts half its bytes */
	int		record;
	uint64_t	failed_off;		/* of the write made to fail */
	struct {
		uint64_t	off;
		size_t		len;
		uint8_t		*buf;
		int		epoch;		/* syncs completed before it */
	}		w[4096];
	int		nw;
};

/* pwrite, unless this is the write to fail (or tear); recorded if asked. */
static ssize_t
cut_pwrite(void *arg, int fd, const void *buf, size_t len, off_t off)
{
	struct cut *c = arg;

	if (++c->writes == c->fail_write) {
		c->failed_off = (uint64_t)off;
		if (c->tear)
			REQ(pwrite(fd, buf, len / 2, off) == (ssize_t)(len / 2));
		return -EIO;
	}
	if (c->record && c->nw < 4096) {
		c->w[c->nw].off = (uint64_t)off;
		c->w[c->nw].len = len;
		c->w[c->nw].buf = malloc(len);
		memcpy(c->w[c->nw].buf, buf, len);
		c->w[c->nw].epoch = c->syncs;
		c->nw++;
	}
	return pwrite(fd, buf, len, off);
}

/* fdatasync, unless this is the sync to fail. */
static int
cut_sync(void *arg, int fd)
{
	struct cut *c = arg;

	if (++c->syncs == c->fail_sync)
		return -EIO;
	return fdatasync(fd);
}

/* The same changes each time: what the cut commits try to make durable (t or m may be NULL). */
static void
crash_changes(struct index_txn *t, struct extmap *m)
{
	uint64_t save = rng_state;

	rng_state = 0x1234567;
	random_writes(t, 1, m, 3000);
	if (t) {
		REQ_INT(index_clear(t, 1, UINT64_C(50) << 30, UINT64_C(10) << 30), 0);
		REQ_INT(index_tree_clone(t, 1, 7), 0);
	}
	if (m)
		REQ_INT(extmap_clear(m, UINT64_C(50) << 30, UINT64_C(10) << 30), 0);
	rng_state = save;
}

/* Commit 20,000 writes into ix (and old), close it: the model of the crash changes on top. */
static struct extmap *
crash_setup(struct index *ix, struct extmap *old)
{
	struct index_txn *t;
	struct extmap *new;

	REQ_INT(index_begin(ix, &t), 0);
	random_writes(t, 1, old, 20000);
	commit_ok(t, 1);
	index_close(ix);
	new = model_copy(old);
	crash_changes(NULL, new);
	return new;
}

/* The file at path now reads as model m (tree 1), checked and verified. */
static void
reopen_is(const char *path, const struct extmap *m)
{
	struct index *ix = open_ok(path, 0);

	verify_ok(ix);
	compare_tree(ix, 1, m, 20);
	index_close(ix);
}

/* Which model the file at path reads as: 0 old, 1 new; verified whole. */
static int
which_model(const char *path, const struct extmap *old, const struct extmap *new)
{
	struct index *ix = open_ok(path, INDEX_READONLY);
	struct index_root r;
	int is_new = index_tree(ix, 7, &r) == 0;

	verify_ok(ix);
	compare_tree(ix, 1, is_new ? new : old, 5);
	index_close(ix);
	return is_new;
}

START_TEST(a_cut_commit_leaves_the_old_generation)
{
	const char *path = run_path("cut.index");
	struct extmap *old = extmap_new(), *new;
	struct index *ix = open_ok(path, INDEX_CREATE);
	struct index_txn *t;
	struct cut c;
	struct index_io io = { cut_pwrite, cut_sync, &c };
	char err[256];
	int k, total;

	seed_init("a_cut_commit_leaves_the_old_generation", UINT64_C(0x452821e638d01377));
	new = crash_setup(ix, old);
	/* every write and every sync of the commit, cut in turn; torn at the meta write too */
	for (int kind = 0; kind < 3; kind++) {
		for (k = 1;; k++) {
			memset(&c, 0, sizeof(c));
			if (kind == 1)
				c.fail_sync = k;
			else
				c.fail_write = k;
			c.tear = kind == 2;
			ix = open_ok(path, 0);
			index_set_io(ix, &io);
			REQ_INT(index_begin(ix, &t), 0);
			crash_changes(t, NULL);
			if (index_commit(t, 2, 2, err, sizeof(err)) == 0) {
				index_close(ix);
				break;
			}
			REQ(strstr(err, "index commit") != NULL);
			/* the index serves the old generation, and can commit again */
			compare_tree(ix, 1, old, 5);
			REQ_INT(index_tree(ix, 7, &(struct index_root){ 0 }), -ENOENT);
			index_close(ix);
			if ((kind == 1 && k == 2) || (kind == 2 && c.failed_off < 2 * 4096)) {
				/*
				 * The meta's sync failed, or half the meta page arrived
				 * (the half that holds all of it): either generation,
				 * whole, is right.
				 */
				which_model(path, old, new);
				break;
			}
			reopen_is(path, old);
		}
		total = k;
		REQUIRE(total > (kind == 1 ? 1 : 3), "the commit made only %d calls", total);
		if (kind != 1)
			reopen_is(path, new);
		/* undo the commit that went through by rebuilding the old state */
		ix = open_ok(path, 0);
		REQ_INT(index_begin(ix, &t), 0);
		REQ_INT(index_tree_drop(t, 7), 0);
		REQ_INT(index_tree_drop(t, 1), 0);
		{
			struct vec v = { 0 };
			collect(old, 0, UINT64_MAX, &v);
			for (size_t i = 0; i < v.n; i++)
				REQ_INT(index_set(t, 1, v.v[i].loff, v.v[i].len, v.v[i].laddr), 0);
			vec_free(&v);
		}
		commit_ok(t, 1);
		index_close(ix);
		reopen_is(path, old);
	}
	/*
	 * The meta's sync fails, but the meta arrived: the next transaction's
	 * pages must not land on what it names, even if that commit fails too.
	 */
	ix = open_ok(path, 0);
	memset(&c, 0, sizeof(c));
	index_set_io(ix, &io);
	REQ_INT(index_begin(ix, &t), 0);
	crash_changes(t, NULL);
	c.fail_sync = 2;		/* the meta's sync */
	REQ(index_commit(t, 2, 2, err, sizeof(err)) < 0);
	REQ_INT(index_begin(ix, &t), 0);
	random_writes(t, 1, NULL, 3000);
	REQ_INT(index_clear(t, 1, 0, UINT64_C(40) << 30), 0);
	c.fail_sync = c.syncs + 1;	/* its pages are written, its meta is not */
	REQ(index_commit(t, 3, 3, err, sizeof(err)) < 0);
	/* and the index goes on */
	c.fail_sync = 0;
	REQ_INT(index_begin(ix, &t), 0);
	index_abort(t);
	index_close(ix);
	reopen_is(path, new);
	extmap_free(old);
	extmap_free(new);
}
END_TEST

/* Copy file src to dst. */
static void
copy_file(const char *src, const char *dst)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, dst);
	REQ_INT(system(cmd), 0);
}

START_TEST(a_power_cut_leaves_one_whole_generation)
{
	const char *path = run_path("power.index"), *base = run_path("power.base"),
	    *copy = run_path("power.copy");
	struct extmap *old = extmap_new(), *new;
	struct index *ix = open_ok(path, INDEX_CREATE);
	struct index_txn *t;
	static struct cut c;
	struct index_io io = { cut_pwrite, cut_sync, &c };
	int seen[2] = { 0, 0 };

	seed_init("a_power_cut_leaves_one_whole_generation", UINT64_C(0xbe5466cf34e90c6c));
	new = crash_setup(ix, old);
	copy_file(path, base);
	ix = open_ok(path, 0);
	memset(&c, 0, sizeof(c));
	c.record = 1;
	index_set_io(ix, &io);
	REQ_INT(index_begin(ix, &t), 0);
	crash_changes(t, NULL);
	commit_ok(t, 2);
	index_close(ix);
	REQ_INT(c.syncs, 2);
	/* the power goes after `epoch` syncs: writes before arrived, later ones in any subset */
	for (int epoch = 0; epoch <= c.syncs; epoch++) {
		for (int trial = 0; trial < 12; trial++) {
			int fd, torn = trial % 3 == 0 ? (int)(rng() % (unsigned)c.nw) : -1;
			struct stat st;
			copy_file(base, copy);
			fd = open(copy, O_RDWR);
			REQ(fd >= 0);
			REQ_INT(stat(path, &st), 0);
			REQ_INT(ftruncate(fd, st.st_size), 0);
			for (int i = 0; i < c.nw; i++) {
				size_t len = c.w[i].len;
				if (c.w[i].epoch > epoch)
					continue;
				if (c.w[i].epoch == epoch && rng() % 2)
					continue;
				if (c.w[i].epoch == epoch && i == torn)
					len = 512;
				REQ(pwrite(fd, c.w[i].buf, len, (off_t)c.w[i].off) == (ssize_t)len);
			}
			close(fd);
			seen[which_model(copy, old, new)]++;
		}
	}
	REQ(seen[0] > 0 && seen[1] > 0);
	for (int i = 0; i < c.nw; i++)
		free(c.w[i].buf);
	extmap_free(old);
	extmap_free(new);
}
END_TEST

/* index_open of path gives rc, with want in the message. */
static void
open_fails(const char *path, const uint8_t *uuid, int flags, int rc, const char *want)
{
	struct index *ix = NULL;
	char err[256] = "";
	int got = index_open(path, uuid, flags, &ix, err, sizeof(err));

	REQUIRE(got == rc, "index_open %s: %d (%s), expected %d", path, got, err, rc);
	REQUIRE(strstr(err, want) != NULL, "index_open %s: '%s' lacks '%s'", path, err, want);
	REQ(ix == NULL);
}

START_TEST(bad_files_are_refused)
{
	const char *path = run_path("bad.index"), *copy = run_path("bad.copy");
	struct index *ix;
	struct index_txn *t;
	struct index_root r;
	struct extmap *m = extmap_new();
	char err[256] = "";
	uint8_t junk[65536];
	int fd;

	seed_init("bad_files_are_refused", UINT64_C(0x3f84d5b5b5470917));
	open_fails(path, uuid_a, 0, -ENOENT, "No such file");
	ix = open_ok(path, INDEX_CREATE);
	REQ_INT(index_begin(ix, &t), 0);
	random_writes(t, 1, m, 30000);
	commit_ok(t, 1);
	REQ_INT(index_tree(ix, 1, &r), 0);
	REQ(r.height >= 2);
	index_close(ix);
	open_fails(path, uuid_b, 0, -EUCLEAN, "another store");
	/* read-only: no transaction */
	ix = open_ok(path, INDEX_READONLY);
	REQ_INT(index_begin(ix, &t), -EROFS);
	index_close(ix);
	/* truncated */
	copy_file(path, copy);
	REQ_INT(truncate(copy, 3 * 4096), 0);
	open_fails(copy, uuid_a, 0, -EUCLEAN, "truncated");
	/* garbage */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rng();
	fd = open(copy, O_WRONLY | O_TRUNC);
	REQ(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	close(fd);
	open_fails(copy, uuid_a, 0, -EUCLEAN, "no valid meta");
	REQ_INT(truncate(copy, 0), 0);
	open_fails(copy, uuid_a, 0, -EUCLEAN, "no valid meta");
	/* a flipped byte in the root (an inner page): open works, verify and begin refuse */
	copy_file(path, copy);
	fd = open(copy, O_RDWR);
	REQ(pwrite(fd, "\x5a", 1, (off_t)(r.page * 4096 + 100)) == 1);
	close(fd);
	ix = open_ok(copy, 0);
	REQ_INT(index_verify(ix, err, sizeof(err)), -EUCLEAN);
	REQUIRE(strstr(err, "checksum") != NULL, "verify said '%s'", err);
	REQ_INT(index_begin(ix, &t), -EUCLEAN);
	index_close(ix);
	/* a child page number past the file: readers get -EUCLEAN, not a fault */
	copy_file(path, copy);
	fd = open(copy, O_RDWR);
	REQ(pwrite(fd, "\xff\xff\xff\xff\xff\xff", 6, (off_t)(r.page * 4096 + 24 + 254 * 8)) == 6);
	close(fd);
	ix = open_ok(copy, 0);
	{
		struct extent e;
		struct vec v = { 0 };
		REQ_INT(index_first(ix, &r, 0, UINT64_MAX, &e), -EUCLEAN);
		REQ_INT(index_walk(ix, &r, 0, UINT64_MAX, collect_cb, &v), -EUCLEAN);
		vec_free(&v);
	}
	REQ_INT(index_verify(ix, err, sizeof(err)), -EUCLEAN);
	index_close(ix);
	/* a flipped byte in a leaf: verify finds it; lookups elsewhere work */
	copy_file(path, copy);
	ix = open_ok(copy, 0);
	REQ_INT(index_tree(ix, 1, &r), 0);
	{
		struct extent e;
		REQ_INT(index_first(ix, &r, 0, UINT64_MAX, &e), 1);
	}
	index_close(ix);
	fd = open(copy, O_RDWR);
	REQ(pread(fd, junk, 4096, (off_t)(r.page * 4096)) == 4096);
	{
		uint64_t leaf;
		memcpy(&leaf, junk + 24 + 254 * 8, 8);	/* the root's first child (page[0]) */
		REQ(pwrite(fd, "\x5a", 1, (off_t)(leaf * 4096 + 200)) == 1);
	}
	close(fd);
	ix = open_ok(copy, 0);
	REQ_INT(index_verify(ix, err, sizeof(err)), -EUCLEAN);
	index_close(ix);
	/* a damaged newest meta page: the other generation serves */
	ix = open_ok(path, 0);
	REQ_INT(index_begin(ix, &t), 0);
	REQ_INT(index_set(t, 1, 0, 4096, 77 << 20), 0);
	commit_ok(t, 2);
	index_close(ix);
	copy_file(path, copy);
	{
		uint64_t gen[2];
		fd = open(copy, O_RDWR);
		REQ(pread(fd, junk, 8192, 0) == 8192);
		memcpy(&gen[0], junk + 32, 8);
		memcpy(&gen[1], junk + 4096 + 32, 8);
		REQ(pwrite(fd, "\x5a", 1, (gen[1] > gen[0] ? 4096 : 0) + 40) == 1);
		close(fd);
	}
	ix = open_ok(copy, 0);
	{
		uint64_t laddr, seq;
		index_position(ix, &laddr, &seq);
		REQ_U64(laddr, 1);
	}
	verify_ok(ix);
	index_close(ix);
	extmap_free(m);
}
END_TEST

/* The pages the last mark found reachable (a transaction begun and aborted). */
static uint64_t
pages_used(struct index *ix)
{
	struct index_txn *t;
	struct index_stats st;

	REQ_INT(index_begin(ix, &t), 0);
	index_stats(ix, &st);
	index_abort(t);
	return st.pages_used;
}

START_TEST(clears_leave_no_near_empty_pages)
{
	struct extmap *m = extmap_new();
	struct index *ix = open_ok(run_path("thin.index"), INDEX_CREATE);
	struct index_txn *t;
	uint64_t full, thin;

	seed_init("clears_leave_no_near_empty_pages", UINT64_C(0x636920d871574e69));
	REQ_INT(index_begin(ix, &t), 0);
	for (uint64_t i = 0; i < 50000; i++) {
		REQ_INT(index_set(t, 1, 8192 * i, 4096, i << 12), 0);
		REQ_INT(extmap_set(m, 8192 * i, 4096, i << 12), 0);
	}
	commit_ok(t, 1);
	REQ_INT(index_begin(ix, &t), 0);
	commit_ok(t, 2);
	full = pages_used(ix);
	/* nine extents in ten go, one by one, in random order of leaves */
	REQ_INT(index_begin(ix, &t), 0);
	for (uint64_t k = 0; k < 50000; k++) {
		uint64_t i = (k * 7919) % 50000;
		if (i % 10 == 0)
			continue;
		REQ_INT(index_clear(t, 1, 8192 * i, 4096), 0);
		REQ_INT(extmap_clear(m, 8192 * i, 4096), 0);
	}
	commit_ok(t, 3);
	REQ_INT(index_begin(ix, &t), 0);
	commit_ok(t, 4);
	thin = pages_used(ix);
	printf("50,000 extents: %" PRIu64 " pages; a tenth of them left: %" PRIu64 " pages\n",
	    full, thin);
	REQUIRE(thin < full / 3, "%" PRIu64 " pages for a tenth of the extents, %" PRIu64
	    " for all", thin, full);
	compare_tree(ix, 1, m, 100);
	verify_ok(ix);
	index_close(ix);
	extmap_free(m);
}
END_TEST

/* What a reader thread and the writer share. */
struct readers {
	struct index		*ix;
	_Atomic uint64_t	gen;		/* the writer's last commit */
	_Atomic uint64_t	in_use;		/* the generation of the root being read, 0: none */
	_Atomic int		stop;
	uint64_t		walks;
	int			bad;
};

/* What a reader's walk has seen so far. */
struct reader_seen {
	struct extent	last;
	uint64_t	n;
};

/* Check the extents a reader sees: sorted and apart. */
static int
reader_walk(const struct extent *e, void *arg)
{
	struct reader_seen *s = arg;

	if (s->n > 0 && e->loff < s->last.loff + s->last.len)
		return 1;
	s->last = *e;
	s->n++;
	return 0;
}

/* A reader: takes the current root and walks it, again and again, without a lock. */
static void *
reader_main(void *arg)
{
	struct readers *rd = arg;

	while (!atomic_load(&rd->stop)) {
		struct index_root r;
		struct reader_seen seen = { { 0, 0, 0 }, 0 };
		struct extent e;
		atomic_store(&rd->in_use, atomic_load(&rd->gen));
		if (index_tree(rd->ix, 1, &r) == 0) {
			if (index_walk(rd->ix, &r, 0, UINT64_MAX, reader_walk, &seen) != 0 ||
			    seen.n != r.extents)
				rd->bad++;
			if (index_first(rd->ix, &r, rng_state % (UINT64_C(100) << 30), UINT64_MAX, &e) < 0)
				rd->bad++;
			rd->walks++;
		}
		atomic_store(&rd->in_use, 0);
	}
	return NULL;
}

START_TEST(readers_need_no_lock)
{
	struct readers rd = { 0 };
	struct index_txn *t;
	pthread_t th;

	seed_init("readers_need_no_lock", UINT64_C(0xd1310ba698dfb5ac));
	rd.ix = open_ok(run_path("readers.index"), INDEX_CREATE);
	atomic_store(&rd.gen, 1);
	REQ_INT(pthread_create(&th, NULL, reader_main, &rd), 0);
	for (uint64_t g = 2; g < 60; g++) {
		/*
		 * A root of generation h stays valid until commit h + 2 ends: a
		 * reader may hold g - 2's through this transaction and commit.
		 */
		while (atomic_load(&rd.in_use) != 0 && atomic_load(&rd.in_use) + 3 <= g)
			sched_yield();
		REQ_INT(index_begin(rd.ix, &t), 0);
		random_writes(t, 1, NULL, 3000);
		if (g % 7 == 0)
			REQ_INT(index_clear(t, 1, rng() % (UINT64_C(90) << 30), UINT64_C(5) << 30), 0);
		commit_ok(t, g);
		atomic_store(&rd.gen, g);
	}
	atomic_store(&rd.stop, 1);
	pthread_join(th, NULL);
	printf("readers_need_no_lock: %" PRIu64 " walks during 58 commits\n", rd.walks);
	REQ_INT(rd.bad, 0);
	REQ(rd.walks > 0);
	verify_ok(rd.ix);
	index_close(rd.ix);
}
END_TEST

START_TEST(a_full_disk_fails_the_commit_cleanly)
{
	const char *path = run_path("full.index");
	struct extmap *m = extmap_new();
	struct index *ix = open_ok(path, INDEX_CREATE);
	struct index_txn *t;
	struct rlimit rl;
	struct stat st;
	char err[256] = "";

	seed_init("a_full_disk_fails_the_commit_cleanly", UINT64_C(0x9216d5d98979fb1b));
	REQ_INT(index_begin(ix, &t), 0);
	random_writes(t, 1, m, 1000);
	commit_ok(t, 1);
	/* the file may not grow (as on a full disk): the commit fails, nothing else does */
	REQ_INT(stat(path, &st), 0);
	signal(SIGXFSZ, SIG_IGN);
	rl.rlim_cur = rl.rlim_max = (rlim_t)st.st_size;
	REQ_INT(setrlimit(RLIMIT_FSIZE, &rl), 0);
	REQ_INT(index_begin(ix, &t), 0);
	random_writes(t, 1, NULL, 250000);	/* ~10 MiB of leaves, held in memory */
	REQ(index_commit(t, 2, 2, err, sizeof(err)) < 0);
	REQUIRE(strstr(err, "index commit") != NULL, "the commit said '%s'", err);
	compare_tree(ix, 1, m, 20);
	index_close(ix);
	reopen_is(path, m);
	extmap_free(m);
}
END_TEST

START_TEST(a_huge_transaction_keeps_memory_bounded)
{
	struct extmap *m = extmap_new();
	struct index *ix = open_ok(run_path("huge.index"), INDEX_CREATE);
	struct index_txn *t;
	struct index_stats st;
	uint64_t peak = 0;

	seed_init("a_huge_transaction_keeps_memory_bounded", UINT64_C(0xc0ac29b7c97c50dd));
	REQ_INT(index_begin(ix, &t), 0);
	for (int i = 0; i < 20; i++) {
		random_writes(t, 1, m, 100000);
		index_stats(ix, &st);
		if (st.anon_bytes > peak)
			peak = st.anon_bytes;
	}
	printf("2,000,000 sets in one transaction: %" PRIu64 " extents, peak anon %" PRIu64
	    " KiB\n", extmap_count(m), peak >> 10);
	REQUIRE(peak < 20 * MiB, "the transaction held %" PRIu64 " bytes", peak);
	commit_ok(t, 1);
	compare_tree(ix, 1, m, 100);
	verify_ok(ix);
	index_close(ix);
	extmap_free(m);
}
END_TEST

FIXTURE_MAIN(tc, "index", NULL, 300)
{
	tcase_add_test(tc, random_edits_match_the_model);
	tcase_add_test(tc, clones_share_pages_and_drops_free_them);
	tcase_add_test(tc, thousands_of_trees);
	tcase_add_test(tc, a_cut_commit_leaves_the_old_generation);
	tcase_add_test(tc, a_power_cut_leaves_one_whole_generation);
	tcase_add_test(tc, bad_files_are_refused);
	tcase_add_test(tc, clears_leave_no_near_empty_pages);
	tcase_add_test(tc, readers_need_no_lock);
	tcase_add_test(tc, a_full_disk_fails_the_commit_cleanly);
	tcase_add_test(tc, a_huge_transaction_keeps_memory_bounded);
}
