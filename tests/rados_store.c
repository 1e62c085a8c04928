/*
 * rados_store: a store whose log and index live in RADOS (media_rados.c),
 * driven by tests/t-rados-store.sh on a cluster of the test's own.
 *
 *   rados_store a POOL/NS DATADIR TMPLDIR   create the store, write, flush,
 *                                           checkpoint, write more; exit
 *                                           without closing (the host dies)
 *   rados_store t POOL/NS DATADIR TMPLDIR   host A again (a replacement of
 *                                           its dead worker), its cache
 *                                           trusted: the write it never
 *                                           flushed is replayed from the
 *                                           cache, and the next flush sends it
 *   rados_store b POOL/NS DATADIR TMPLDIR   another host taking over: an
 *                                           empty data dir; reads back every
 *                                           flushed byte, releases a segment
 *
 * Prints the figures (RADOS writes per flush, bytes per guest write); exits
 * 1 with a line saying what was wrong.
 */
#ifndef HAVE_CEPH
/* Built without librados: nothing to drive (the shell test skips, or fails in CI). */
int
main(void)
{
	return 77;
}
#else
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "media.h"
#include "radosspec.h"
#include "store.h"
#include "store_int.h"	/* st->media, st->cache_trusted */

#define MiB		(UINT64_C(1) << 20)
#define DISK_SIZE	(64 * MiB)
#define FLUSHES		100

static int failed;

#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); \
	failed = 1; } } while (0)

/* The bytes generation gen writes at off. */
static void
fill(uint8_t *buf, uint64_t off, size_t len, unsigned gen)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(((off + i) * 2654435761u >> 13) + gen * 7);
}

/* Does the disk hold generation gen's bytes at [off, off + len)? */
static int
holds(struct store *st, uint64_t id, uint64_t off, size_t len, unsigned gen)
{
	uint8_t *want = malloc(len), *got = malloc(len);
	int ok;

	fill(want, off, len, gen);
	ok = store_read(st, id, got, len, off) == (ssize_t)len && memcmp(want, got, len) == 0;
	free(want);
	free(got);
	return ok;
}

/* Write generation gen's bytes at [off, off + len). */
static int
put(struct store *st, uint64_t id, uint64_t off, size_t len, unsigned gen)
{
	uint8_t *buf = malloc(len);
	ssize_t n;

	fill(buf, off, len, gen);
	n = store_write(st, id, buf, len, off);
	free(buf);
	return n == (ssize_t)len ? 0 : -1;
}

/* Is object seg.00000001 the first bytes of the local segment file? */
static int
segment_object_matches(rados_ioctx_t io, const char *datadir)
{
	char path[512];
	size_t cap = 32 * MiB;
	uint8_t *o = malloc(cap), *l = malloc(cap);
	int fd, n, ok = 0;

	snprintf(path, sizeof(path), "%s/log/00000001.seg", datadir);
	n = rados_read(io, "seg.00000001", (char *)o, cap, 0);
	if ((fd = open(path, O_RDONLY)) >= 0 && n > 0 && pread(fd, l, (size_t)n, 0) == n)
		ok = memcmp(o, l, (size_t)n) == 0;
	printf("object seg.00000001: %d bytes, %s the local segment's first bytes\n", n,
	    ok ? "equal to" : "NOT equal to");
	if (fd >= 0)
		close(fd);
	free(o);
	free(l);
	return ok;
}

/* Host A: create, write and flush, checkpoint, write more, die. */
static void
host_a(struct store *st, struct media *m, rados_ioctx_t io, const char *datadir)
{
	struct disk_attr a;
	char err[256];
	uint64_t w0, b0;

	CHECK(store_create(st, "d", "base.img", DISK_SIZE, NULL, &a, err, sizeof(err)) == 0,
	    "create: %s", err);
	/* 1 MiB, flushed */
	for (uint64_t off = 0; off < MiB; off += 128 * 1024)
		CHECK(put(st, a.id, off, 128 * 1024, 1) == 0, "write at %llu", (unsigned long long)off);
	w0 = m->writes;
	CHECK(store_sync(st, a.id) == 0, "flush");
	printf("a flush after 8 writes of 128 KiB: %llu RADOS write(s)\n",
	    (unsigned long long)(m->writes - w0));
	CHECK(m->writes - w0 == 1, "a flush is one RADOS write");
	CHECK(segment_object_matches(io, datadir), "the flushed bytes are in the segment object");
	/* a guest that flushes after every 4 KiB write */
	w0 = m->writes;
	b0 = m->write_bytes;
	for (int i = 0; i < FLUSHES; i++) {
		CHECK(put(st, a.id, MiB + (uint64_t)i * 4096, 4096, 1) == 0, "4k write");
		CHECK(store_sync(st, a.id) == 0, "4k flush");
	}
	printf("4 KiB write + flush: %.2f RADOS writes and %.0f bytes sent per guest write\n",
	    (double)(m->writes - w0) / FLUSHES, (double)(m->write_bytes - b0) / FLUSHES);
	CHECK(m->writes - w0 == FLUSHES, "one RADOS write per group commit");
	w0 = m->writes;
	b0 = m->write_bytes;
	CHECK(store_checkpoint(st) == 0, "checkpoint");
	printf("a checkpoint of one disk's %d extents: %llu RADOS writes, %llu bytes\n", FLUSHES + 1,
	    (unsigned long long)(m->writes - w0), (unsigned long long)(m->write_bytes - b0));
	/* after the checkpoint: only the log holds these */
	CHECK(put(st, a.id, 2 * MiB, 64 * 1024, 2) == 0, "write after the checkpoint");
	CHECK(store_sync(st, a.id) == 0, "flush after the checkpoint");
	CHECK(put(st, a.id, 3 * MiB, 64 * 1024, 3) == 0, "unflushed write");	/* may be lost */
	fflush(stdout);
	_exit(failed);	/* the host dies: nothing closed, no final checkpoint */
}

/* Host A back, its cache trusted: the unflushed write is there, and a flush sends it. */
static void
host_a_again(struct store *st, struct media *m, rados_ioctx_t io)
{
	struct disk_attr a;
	uint64_t before, after;
	time_t mtime;

	CHECK(store_lookup(st, "d", &a) == 0, "disk d on host A");
	CHECK(holds(st, a.id, 3 * MiB, 64 * 1024, 3), "the unflushed write, from the trusted cache");
	CHECK(rados_stat(io, "seg.00000001", &before, &mtime) == 0, "stat seg.00000001");
	CHECK(store_sync(st, a.id) == 0, "flush");
	CHECK(rados_stat(io, "seg.00000001", &after, &mtime) == 0, "stat seg.00000001");
	printf("host A's unacknowledged bytes sent at its next flush: %llu\n",
	    (unsigned long long)(after - before));
	CHECK(after - before >= 64 * 1024, "the next flush sends the unacknowledged records");
}

/* Host B: every flushed byte, then a segment released and its object gone. */
static void
host_b(struct store *st, rados_ioctx_t io)
{
	struct disk_attr a;
	struct clean_stats cs = { 0 };
	uint64_t size;
	time_t mtime;

	CHECK(store_lookup(st, "d", &a) == 0, "disk d on host B");
	CHECK(holds(st, a.id, 0, MiB + FLUSHES * 4096, 1), "flushed bytes before the checkpoint");
	CHECK(holds(st, a.id, 2 * MiB, 64 * 1024, 2), "flushed bytes after the checkpoint");
	CHECK(holds(st, a.id, 3 * MiB, 64 * 1024, 3), "the write host A flushed when it came back");
	if (failed)
		return;
	printf("host B reads back every flushed byte\n");
	/* 40 MiB over the same 2 MiB: segment 1 (16 MiB) rolls and becomes dead */
	for (unsigned gen = 4; gen < 24; gen++)
		CHECK(put(st, a.id, 0, 2 * MiB, gen) == 0, "overwrite");
	CHECK(store_sync(st, a.id) == 0, "flush the overwrites");
	CHECK(store_checkpoint(st) == 0, "checkpoint after the overwrites");
	CHECK(store_clean(st, 0, &cs) == 0, "clean");
	printf("the cleaner released %llu segment(s)\n", (unsigned long long)cs.segments_released);
	CHECK(cs.segments_released >= 1, "a segment released");
	CHECK(rados_stat(io, "seg.00000001", &size, &mtime) == -ENOENT,
	    "the released segment's object is gone");
	CHECK(holds(st, a.id, 0, 2 * MiB, 23), "the last overwrite");
}

int
main(int argc, char **argv)
{
	struct cluster_opts co = { .conf = getenv("CEPH_CONF") };
	struct store_opts o = { 0 };
	struct rados_spec sp;
	struct cluster *c;
	struct store *st;
	rados_ioctx_t io;
	const char *why;
	char spec[160], err[512] = "";

	if (argc != 5 || !strchr("atb", argv[1][0]) || argv[1][1]) {
		fprintf(stderr, "usage: rados_store a|t|b POOL/NS DATADIR TMPLDIR\n");
		return 2;
	}
	snprintf(spec, sizeof(spec), "rados:%s", argv[2]);
	if (rados_spec_parse(spec, 1, &sp, &why) < 0) {
		fprintf(stderr, "%s: %s\n", spec, why);
		return 2;
	}
	if (cluster_connect(&co, &c, err, sizeof(err)) < 0 ||
	    cluster_ioctx(c, &sp, &io, err, sizeof(err)) < 0) {
		printf("FAIL: %s\n", err);
		return 1;
	}
	o.datadir = argv[3];
	o.tmpldir = argv[4];
	o.segment_size = 16 * MiB;
	o.checkpoint_ms = 3600 * 1000;
	o.purge_unlinked = 1;
	o.create = argv[1][0] == 'a';
	o.cluster = c;
	o.store_spec = spec;
	/* A and its replacement are one mount; B is another host, which fences A */
	o.holder = argv[1][0] == 'b' ? "host-b:/mnt (supervisor pid 2)" : "host-a:/mnt (supervisor pid 1)";
	o.takeover = argv[1][0] == 't';
	o.store_takeover = argv[1][0] == 'b';
	if (store_open(&o, &st, err, sizeof(err)) < 0) {
		printf("FAIL: store_open: %s\n", err);
		return 1;
	}
	CHECK(st->cache_trusted == (argv[1][0] == 't'), "the cache is trusted by A's replacement only");
	if (argv[1][0] == 'a')
		host_a(st, st->media, io, o.datadir);
	else if (argv[1][0] == 't')
		host_a_again(st, st->media, io);
	else
		host_b(st, io);
	store_close(st);
	rados_ioctx_destroy(io);
	cluster_close(c);
	return failed;
}
#endif
