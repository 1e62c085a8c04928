/*
 * bench-store: builds the large stores bench/bench measures, straight through
 * the store API (a million 4 KiB writes through FUSE would take minutes), and
 * measures the extent index's memory.
 *
 *   bench-store build --datadir DIR --tmpldir DIR --template NAME --disks N
 *                     --extents E --disk-size BYTES [--block BYTES] [--pattern interleave]
 *       Creates a store in the empty DIR with N disks d0.img..d{N-1}.img, clones
 *       of NAME of BYTES each, and gives each E extents of --block bytes (4096;
 *       a multiple of 512): blocks 0, 2, 4... are written first, then 1, 3,
 *       5..., so no two neighbours are contiguous in the log and nothing
 *       merges.  Closing the store writes the final checkpoint, so a mount
 *       finds every extent in the index.
 *
 *   bench-store mapmem --extents E
 *       Builds one extent index of E such extents and prints its memory per
 *       extent (extmap_memory / extmap_count) and in total.
 *
 * Exit status 0, 1 on any error (message on stderr).  Not installed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extmap.h"
#include "store.h"

#define BLOCK	4096	/* the default block, and the one mapmem uses */

static void
usage(void)
{
	fprintf(stderr, "usage: bench-store build --datadir DIR --tmpldir DIR --template NAME "
	    "--disks N --extents E --disk-size BYTES [--block BYTES] [--pattern interleave]\n"
	    "       bench-store mapmem --extents E\n");
	exit(2);
}

/* The i-th block written when a disk gets e extents: evens, then odds. */
static uint64_t
interleave_block(uint64_t i, uint64_t e)
{
	uint64_t evens = (e + 1) / 2;

	return i < evens ? 2 * i : 2 * (i - evens) + 1;
}

static int
cmd_mapmem(uint64_t extents)
{
	struct extmap *m = extmap_new();

	if (!m)
		return 1;
	for (uint64_t i = 0; i < extents; i++) {
		uint64_t b = interleave_block(i, extents);
		if (extmap_set(m, b * BLOCK, BLOCK, (i + 1) * (BLOCK + 64)) < 0) {
			fprintf(stderr, "bench-store: extmap_set failed at extent %llu\n",
			    (unsigned long long)i);
			return 1;
		}
	}
	printf("%.2f bytes per extent, %zu bytes for %llu extents\n",
	    (double)extmap_memory(m) / (double)extmap_count(m), extmap_memory(m),
	    (unsigned long long)extmap_count(m));
	extmap_free(m);
	return 0;
}

static int
cmd_build(const char *datadir, const char *tmpldir, const char *tmpl, unsigned disks,
    uint64_t extents, uint64_t disk_size, uint64_t bs)
{
	struct store_opts so = { .datadir = datadir, .tmpldir = tmpldir, .create = 1,
	    .purge_unlinked = 1 };
	struct store *st;
	char err[512] = "", name[32];
	static char block[BLOCK];
	uint64_t *ids = calloc(disks, sizeof(*ids));
	int rc;

	if (!ids)
		return 1;
	if (bs == 0 || bs % 512 || bs > BLOCK || extents * bs > disk_size) {
		fprintf(stderr, "bench-store: %llu extents of %llu bytes (a multiple of 512 up to "
		    "4096) do not fit a disk of %llu bytes\n", (unsigned long long)extents,
		    (unsigned long long)bs, (unsigned long long)disk_size);
		free(ids);
		return 1;
	}
	if ((rc = store_open(&so, &st, err, sizeof(err))) < 0) {
		fprintf(stderr, "bench-store: %s\n", err[0] ? err : strerror(-rc));
		free(ids);
		return 1;
	}
	for (unsigned d = 0; d < disks; d++) {
		struct disk_attr a;
		snprintf(name, sizeof(name), "d%u.img", d);
		if ((rc = store_create(st, name, tmpl, disk_size, "", &a, err, sizeof(err))) < 0) {
			fprintf(stderr, "bench-store: create %s: %s\n", name, err[0] ? err : strerror(-rc));
			store_close(st);
			free(ids);
			return 1;
		}
		ids[d] = a.id;
	}
	/* disks in turn, so their records interleave in the log as with real clients */
	for (uint64_t i = 0; i < extents; i++) {
		uint64_t b = interleave_block(i, extents);
		for (unsigned d = 0; d < disks; d++) {
			ssize_t n;
			memcpy(block, &b, sizeof(b));
			memcpy(block + 8, &ids[d], sizeof(ids[d]));
			if ((n = store_write(st, ids[d], block, bs, b * bs)) != (ssize_t)bs) {
				fprintf(stderr, "bench-store: write: %s\n",
				    strerror(n < 0 ? (int)-n : EIO));
				store_close(st);
				free(ids);
				return 1;
			}
		}
	}
	store_close(st);
	printf("%u disks, %llu extents each\n", disks, (unsigned long long)extents);
	free(ids);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "datadir", required_argument, NULL, 'd' },
		{ "tmpldir", required_argument, NULL, 't' },
		{ "template", required_argument, NULL, 'T' },
		{ "disks", required_argument, NULL, 'n' },
		{ "extents", required_argument, NULL, 'e' },
		{ "disk-size", required_argument, NULL, 's' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "block", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 }
	};
	const char *datadir = NULL, *tmpldir = NULL, *tmpl = NULL;
	uint64_t extents = 0, disk_size = 0, bs = BLOCK;
	unsigned disks = 1;
	int opt;

	if (argc < 2)
		usage();
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': datadir = optarg; break;
		case 't': tmpldir = optarg; break;
		case 'T': tmpl = optarg; break;
		case 'n': disks = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'e': extents = strtoull(optarg, NULL, 10); break;
		case 's': disk_size = strtoull(optarg, NULL, 10); break;
		case 'b': bs = strtoull(optarg, NULL, 10); break;
		case 'p':
			if (strcmp(optarg, "interleave") != 0)
				usage();
			break;
		default: usage();
		}
	}
	if (strcmp(argv[1], "mapmem") == 0 && extents > 0)
		return cmd_mapmem(extents);
	if (strcmp(argv[1], "build") == 0 && datadir && tmpldir && tmpl && disks > 0 && disk_size > 0)
		return cmd_build(datadir, tmpldir, tmpl, disks, extents, disk_size, bs);
	usage();
	return 2;
}
