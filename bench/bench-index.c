/*
 * bench-index: figures for the extent index file (fs/store/index.c), not
 * judged here.
 *
 *   bench-index [--smoke] [DIR]
 *       In DIR (default /dev/shm) builds one tree of 10,000,000 extents
 *       (--smoke: 200,000) from random 4 KiB writes into a 100 GiB disk,
 *       committed every 200,000 sets (--smoke: 20,000), and prints: the
 *       build time, file size and pages; the ns per random index_first
 *       against the same lookups in an extmap holding the same extents;
 *       the cost of a transaction of 1,000 and of 100,000 random sets into
 *       the tree (time, pages written, syncs); the process's RSS and
 *       anonymous memory with the index alone.  Removes its file.
 *
 * Exit status 0, 1 on any error (message on stderr).  Not installed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "extmap.h"
#include "index.h"

#define DISK_BLOCKS	(UINT64_C(100) << 18)	/* 100 GiB of 4 KiB blocks */
#define LOOKUPS		1000000

static uint64_t rng_state = 0x9e3779b97f4a7c15;

/* xorshift64*: fixed and reproducible. */
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

/* A line of /proc/self/status in KiB (VmRSS, RssAnon), or 0. */
static uint64_t
status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t v = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':')
			v = strtoull(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

/* The io hooks, counting syncs. */
static ssize_t
count_pwrite(void *arg, int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}

/* Count the commit's syncs. */
static int
count_sync(void *arg, int fd)
{
	(*(uint64_t *)arg)++;
	return fdatasync(fd);
}

/* n random 4 KiB sets into tree 1 in t. */
static int
random_sets(struct index_txn *t, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		int rc = index_set(t, 1, rng() % DISK_BLOCKS * 4096, 4096, rng() >> 12 << 12);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Begin, n random sets, commit: prints the figures.  0 or -1. */
static int
timed_txn(struct index *ix, uint64_t n, const uint64_t *syncs)
{
	struct index_txn *t;
	struct index_stats st;
	char err[256];
	uint64_t s0 = *syncs;
	int64_t t0 = clock_mono_ns(), t1, t2;

	if (index_begin(ix, &t) != 0 || random_sets(t, n) != 0)
		return -1;
	t1 = clock_mono_ns();
	if (index_commit(t, 0, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-index: %s\n", err);
		return -1;
	}
	t2 = clock_mono_ns();
	index_stats(ix, &st);
	printf("transaction of %" PRIu64 " random sets: begin+sets %.1f ms, commit %.1f ms, "
	    "%" PRIu64 " pages written, %" PRIu64 " syncs\n", n, (t1 - t0) / 1e6, (t2 - t1) / 1e6,
	    st.last_commit_pages, *syncs - s0);
	return 0;
}

/* The extmap copy of a tree: index_walk's callback. */
static int
copy_extent(const struct extent *e, void *arg)
{
	return extmap_set(arg, e->loff, e->len, e->laddr);
}

/* Build, look up, commit: see the top of the file. */
int
main(int argc, char **argv)
{
	int smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
	const char *dir = argc > 1 + smoke ? argv[1 + smoke] : "/dev/shm";
	uint64_t target = smoke ? 200000 : 10000000, batch = smoke ? 20000 : 200000, syncs = 0;
	struct index_io io = { count_pwrite, count_sync, &syncs };
	static const uint8_t uuid[16] = { 0xbe, 0x4c };
	struct index *ix;
	struct index_txn *t;
	struct index_root r = { 0 };
	struct index_stats st;
	struct extmap *m;
	struct extent e;
	char path[512], err[256];
	uint64_t found = 0, sets = 0, *offs;
	int64_t t0, t1;
	double ns_ix, ns_map;

	snprintf(path, sizeof(path), "%s/bench-index.%d", dir, (int)getpid());
	if (index_open(path, uuid, INDEX_CREATE, &ix, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-index: %s\n", err);
		return 1;
	}
	index_set_io(ix, &io);
	t0 = clock_mono_ns();
	while (r.extents < target) {
		if (index_begin(ix, &t) != 0 || random_sets(t, batch) != 0 ||
		    index_commit(t, 0, 0, err, sizeof(err)) != 0) {
			fprintf(stderr, "bench-index: build failed: %s\n", err);
			goto fail;
		}
		sets += batch;
		if (index_tree(ix, 1, &r) != 0)
			goto fail;
	}
	t1 = clock_mono_ns();
	index_stats(ix, &st);
	printf("build: %" PRIu64 " extents (%" PRIu64 " random 4 KiB sets into 100 GiB, a commit "
	    "each %" PRIu64 "), %.1f s, %.2f us per set\n", r.extents, sets, batch, (t1 - t0) / 1e9,
	    (t1 - t0) / 1e3 / (double)sets);
	printf("file: %.1f MiB, %" PRIu64 " pages used, %" PRIu64 " free, height %u\n",
	    st.file_bytes / 1048576.0, st.pages_used, st.pages_free, r.height);
	printf("memory with the index alone: RSS %" PRIu64 " KiB, RssAnon %" PRIu64 " KiB, "
	    "index anon_bytes %" PRIu64 " KiB\n", status_kib("VmRSS"), status_kib("RssAnon"),
	    st.anon_bytes >> 10);

	if (!(offs = malloc(LOOKUPS * sizeof(*offs))) || !(m = extmap_new()))
		goto fail;
	if (index_walk(ix, &r, 0, UINT64_MAX, copy_extent, m) != 0)
		goto fail;
	for (int i = 0; i < LOOKUPS; i++)
		offs[i] = rng() % DISK_BLOCKS * 4096;
	/* best of three rounds each, alternating: the machine is shared */
	ns_ix = ns_map = 1e12;
	for (int round = 0; round < 3; round++) {
		t0 = clock_mono_ns();
		for (int i = 0; i < LOOKUPS; i++)
			found += (uint64_t)index_first(ix, &r, offs[i], offs[i] + 4096, &e);
		t1 = clock_mono_ns();
		if ((double)(t1 - t0) / LOOKUPS < ns_ix)
			ns_ix = (double)(t1 - t0) / LOOKUPS;
		t0 = clock_mono_ns();
		for (int i = 0; i < LOOKUPS; i++)
			found -= (uint64_t)extmap_first(m, offs[i], offs[i] + 4096, &e);
		t1 = clock_mono_ns();
		if ((double)(t1 - t0) / LOOKUPS < ns_map)
			ns_map = (double)(t1 - t0) / LOOKUPS;
	}
	if (found != 0) {
		fprintf(stderr, "bench-index: the index and the extmap disagree\n");
		goto fail;
	}
	printf("lookup (index_first of 4 KiB at random, best of 3): index %.0f ns, extmap %.0f ns, "
	    "ratio %.2f\n", ns_ix, ns_map, ns_ix / ns_map);
	extmap_free(m);
	free(offs);

	if (timed_txn(ix, 1000, &syncs) != 0 || timed_txn(ix, 100000, &syncs) != 0)
		goto fail;
	index_close(ix);
	unlink(path);
	return 0;
fail:
	fprintf(stderr, "bench-index: failed\n");
	index_close(ix);
	unlink(path);
	return 1;
}
