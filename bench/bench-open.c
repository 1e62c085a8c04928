/*
 * bench-open: how long opening a store takes (what a mount, a replacement
 * worker without a snapshot, or hcowctl check pays), for a store with many
 * extents in the catalog and a long log tail after the checkpoint.
 *
 *   bench-open [-e EXTENTS] [-t TAIL_MIB] [-d DIR] [-r RUNS]
 *
 * Builds, in DIR (default: a fresh directory under /tmp; put it on the file
 * system you want to measure), a store with one disk whose map has EXTENTS
 * extents (512-byte writes 4 KiB apart, so none merge) and checkpoints it;
 * then appends TAIL_MIB MiB of 4 KiB write records straight to the log, as a
 * crash right before a checkpoint would leave them (a running store never
 * lets its tail grow past 256 MiB: STORE_CHECKPOINT_LOG_BYTES).  Then opens
 * the store RUNS times (the page cache is warm: the figure is the software
 * cost) and prints the open times with what the store's own log line says.
 *
 * Error convention: any failure prints a message and exits 1.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "hlog.h"
#include "store.h"
#include "wlog.h"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static struct store *
open_store(const char *data, const char *tmpl, int create)
{
	struct store_opts o = { .datadir = data, .tmpldir = tmpl, .create = create,
	    .purge_unlinked = 1, .checkpoint_ms = 3600 * 1000 };
	struct store *st;
	char err[1024];
	int rc = store_open(&o, &st, err, sizeof(err));

	if (rc < 0)
		die(1, "cannot open the store in %s: %s", data, err);
	return st;
}

static int
no_op(const struct rec_header *h, uint64_t rec, void *arg)
{
	(void)h; (void)rec; (void)arg;
	return 0;
}

/* Append tail_mib MiB of 4 KiB writes to disk 1's log after the checkpoint, with no checkpoint. */
static void
append_tail(const char *data, uint64_t tail_mib, uint64_t disk_size)
{
	char path[PATH_MAX + 32], err[1024];
	struct wlog_replay_stats rs;
	struct catalog *cat;
	struct wlog *w;
	uint8_t uuid[16];
	uint64_t laddr, seq, rec;
	static char buf[4096];

	snprintf(path, sizeof(path), "%s/catalog.db", data);
	if (catalog_open(path, 0, NULL, 0, &cat, err, sizeof(err)) < 0)
		die(1, "%s", err);
	if (catalog_uuid(cat, uuid) < 0 || catalog_checkpoint_pos(cat, &laddr, &seq) < 0)
		die(1, "catalog: %s", catalog_error(cat));
	catalog_close(cat);
	snprintf(path, sizeof(path), "%s/log", data);
	if (wlog_open(path, uuid, WLOG_SEGMENT_SIZE_DEFAULT, &w, err, sizeof(err)) < 0 ||
	    wlog_replay(w, laddr, seq, 0, no_op, NULL, &rs, err, sizeof(err)) < 0)
		die(1, "log: %s", err);
	for (uint64_t i = 0; i < tail_mib * 256; i++) {
		struct rec_header h = { .type = REC_WRITE, .disk_id = 1, .length = sizeof(buf) };
		h.offset = (i * 7919 % (disk_size / sizeof(buf))) * sizeof(buf);
		memset(buf, (int)(i & 0xff), sizeof(buf));
		if (wlog_append(w, &h, buf, &rec) < 0)
			die(1, "cannot append to the log");
	}
	if (wlog_sync(w, wlog_tail(w)) < 0)
		die(1, "cannot sync the log");
	wlog_close(w);
}

int
main(int argc, char **argv)
{
	uint64_t extents = 1000000, tail_mib = 1024;
	const char *dir = NULL;
	char base[PATH_MAX], data[PATH_MAX + 8], tmpl[PATH_MAX + 8], path[PATH_MAX + 32];
	static char buf[512];
	struct store *st;
	struct disk_attr attr;
	uint64_t disk_size;
	int runs = 3, opt, made = 0;
	double t0, best = 0, sum = 0;
	FILE *f;

	while ((opt = getopt(argc, argv, "e:t:d:r:h")) != -1) {
		switch (opt) {
		case 'e': extents = strtoull(optarg, NULL, 10); break;
		case 't': tail_mib = strtoull(optarg, NULL, 10); break;
		case 'd': dir = optarg; break;
		case 'r': runs = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench-open [-e EXTENTS] [-t TAIL_MIB] [-d DIR] [-r RUNS]\n");
			return 2;
		}
	}
	if (extents == 0 || runs < 1)
		die(1, "extents and runs must be at least 1");
	hlog_init("bench-open", getenv("BENCH_OPEN_VERBOSE") ? HLOG_INFO : HLOG_WARN);
	hlog_plain(1);
	if (dir) {
		snprintf(base, sizeof(base), "%s", dir);
	} else {
		snprintf(base, sizeof(base), "/tmp/bench-open.XXXXXX");
		if (!mkdtemp(base))
			die(1, "mkdtemp: %s", strerror(errno));
		made = 1;
	}
	snprintf(data, sizeof(data), "%s/data", base);
	snprintf(tmpl, sizeof(tmpl), "%s/tmpl", base);
	if (mkdir(data, 0755) < 0 || mkdir(tmpl, 0755) < 0)
		die(1, "cannot make %s and %s: %s", data, tmpl, strerror(errno));
	disk_size = extents * 4096;
	snprintf(path, sizeof(path), "%s/t.img", tmpl);
	if (!(f = fopen(path, "w")) || ftruncate(fileno(f), 1 << 20) < 0 || fclose(f) != 0)
		die(1, "cannot make the template %s", path);

	t0 = now_ms();
	st = open_store(data, tmpl, 1);
	if (store_create(st, "d.img", "t.img", disk_size, "", &attr, path, sizeof(path)) < 0)
		die(1, "cannot create the disk: %s", path);
	for (uint64_t i = 0; i < extents; i++) {
		memset(buf, (int)(i & 0xff) | 1, sizeof(buf));
		if (store_write(st, 1, buf, sizeof(buf), i * 4096) != (ssize_t)sizeof(buf))
			die(1, "write %llu failed", (unsigned long long)i);
	}
	if (store_checkpoint(st) < 0)
		die(1, "checkpoint failed");
	store_close(st);
	printf("built: %llu extents in the catalog (%.1f s)\n", (unsigned long long)extents,
	    (now_ms() - t0) / 1e3);
	t0 = now_ms();
	append_tail(data, tail_mib, disk_size);
	printf("built: %llu MiB of log tail after the checkpoint (%.1f s)\n",
	    (unsigned long long)tail_mib, (now_ms() - t0) / 1e3);

	for (int r = 0; r < runs; r++) {
		/* the open replays the tail but, with no appends, leaves it in place: every run replays it all */
		struct store_opts o = { .datadir = data, .tmpldir = tmpl, .readonly = 1 };
		char err[1024];
		double ms;
		t0 = now_ms();
		if (store_open(&o, &st, err, sizeof(err)) < 0)
			die(1, "open: %s", err);
		ms = now_ms() - t0;
		store_close(st);
		printf("open %d: %.1f ms\n", r + 1, ms);
		sum += ms;
		if (r == 0 || ms < best)
			best = ms;
	}
	printf("open time, %llu extents + %llu MiB log tail: best %.1f ms, mean %.1f ms over %d runs\n",
	    (unsigned long long)extents, (unsigned long long)tail_mib, best, sum / runs, runs);
	if (made) {
		snprintf(path, sizeof(path), "rm -rf '%s'", base);
		if (system(path) != 0)
			fprintf(stderr, "bench-open: could not remove %s\n", base);
	}
	return 0;
}
