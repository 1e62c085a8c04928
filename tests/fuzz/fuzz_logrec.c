/*
 * fuzz_logrec: libFuzzer target for the write log's record decoder, through
 * the public wlog API only (fs/store/wlog.h), so it follows changes of the record
 * format (fs/store/logfmt.h) without change.  Built and run by tests/fuzz/run.sh.
 *
 * An input is the content of the log directory: the bytes of segment files
 * 00000001.seg, 00000002.seg, ... one after the other; a new segment starts
 * wherever SEG_MAGIC starts (at most SEGS_MAX).  Per input:
 *
 *   1. wlog_open + wlog_replay from the first record, every checksum
 *      verified (as after a machine crash), collecting the records.
 *      Refusing the log (-EUCLEAN, with a message) is a fine answer.
 *   2. If replay accepted it: append one record, read its data back.
 *   3. wlog_close, wlog_open, wlog_replay again, trusting complete records
 *      (as a worker's takeover does): the records must be exactly those of
 *      step 1 followed by the appended one, at the same log addresses, and
 *      nothing may be cut.  A torn tail cut in step 1 must stay cut; a log
 *      that accepted an append must replay it.
 *
 * Anything else (a crash, an ASan/UBSan report, a violated check) aborts.
 *
 * Seeds: with FUZZ_LOGREC_SEEDS=DIR set, the binary writes logs made by
 * wlog_append (records of every type, one and several segments) into DIR as
 * inputs and exits, so the seeds always have the current format.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hlog.h"
#include "wlog.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_logrec: %s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

#define SEGS_MAX	8
#define SEG_SIZE	512	/* small, so that the append of step 2 often starts a segment */

static const uint8_t uuid[16] = "fuzz-logrec-uuid";
static char dir[256];

struct rec {
	struct rec_header h;
	uint64_t data_laddr;
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

static int
collect(const struct rec_header *h, uint64_t data_laddr, void *arg)
{
	struct recs *r = arg;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		CHECK(r->v);
	}
	r->v[r->n].h = *h;
	r->v[r->n].data_laddr = data_laddr;
	r->n++;
	return 0;
}

static void
empty_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	CHECK(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			CHECK(unlinkat(dirfd(d), de->d_name, 0) == 0);
	closedir(d);
}

static void
write_file(const char *name, const void *data, size_t n)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, data, n) == (ssize_t)n);
	close(fd);
}

/* The log directory as one byte string: the segments, in order. */
static uint8_t *
read_log(size_t *len)
{
	uint8_t *out = NULL;
	size_t n = 0;

	for (unsigned s = 1; ; s++) {
		char path[512];
		struct stat st;
		int fd;

		snprintf(path, sizeof(path), "%s/%08x.seg", dir, s);
		if ((fd = open(path, O_RDONLY)) < 0)
			break;
		CHECK(fstat(fd, &st) == 0);
		out = realloc(out, n + (size_t)st.st_size);
		CHECK(out && read(fd, out + n, (size_t)st.st_size) == st.st_size);
		n += (size_t)st.st_size;
		close(fd);
	}
	*len = n;
	return out;
}

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	hlog_init("fuzz_logrec", HLOG_ERROR);	/* torn tails are warnings: too many to print */
	if (!tmp && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(dir, sizeof(dir), "%s/fuzz_logrec.%d", tmp ? tmp : "/tmp", (int)getpid());
	CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
}

static void
teardown(void)
{
	empty_dir();
	rmdir(dir);
}

/* Write seed inputs into out: logs made by the log itself. */
static void
write_seeds(const char *out)
{
	/* how many records, in segments of what size (small ones: several segments) */
	static const struct { uint64_t segsize; int recs; } plan[] = {
		{ 1u << 20, 0 }, { 1u << 20, 1 }, { 1u << 20, 6 }, { 200, 4 }, { 400, 7 } };
	uint8_t data[1500];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 1);
	mkdir(out, 0755);
	for (size_t p = 0; p < sizeof(plan) / sizeof(plan[0]); p++) {
		struct wlog_replay_stats st;
		struct recs r = { 0 };
		struct wlog *w;
		char err[256], path[512];
		uint8_t *log;
		size_t len;
		int fd;

		empty_dir();
		CHECK(wlog_create(dir, uuid) == 0);
		CHECK(wlog_open(dir, uuid, plan[p].segsize, &w, err, sizeof(err)) == 0);
		CHECK(wlog_replay(w, wlog_first_laddr(), 1, 0, collect, &r, &st, err, sizeof(err)) == 0);
		for (int k = 0; k < plan[p].recs; k++) {
			struct rec_header h = { 0 };
			uint64_t laddr;
			/* every type a disk's records can have: data, zeros, size, copies, links */
			static const uint16_t types[] = { REC_WRITE, REC_ZERO, REC_SIZE, REC_CLONE,
			    REC_LINK, REC_SHARE };
			h.type = types[k % 6];
			h.disk_id = 1 + k % 2;
			h.offset = h.type == REC_CLONE ? 0 : (uint64_t)k * 4096;
			h.length = h.type == REC_WRITE ? 1 + (uint64_t)(k * 97) % 300 :
			    h.type == REC_ZERO || h.type == REC_LINK || h.type == REC_SHARE ? 8192 : 0;
			if (h.type == REC_CLONE || h.type == REC_SHARE || h.type == REC_LINK)
				rec_set_aux(&h, 2 - k % 2);
			CHECK(wlog_append(w, &h, h.type == REC_WRITE ? data + k : NULL, &laddr) == 0);
		}
		wlog_close(w);
		free(r.v);
		log = read_log(&len);
		snprintf(path, sizeof(path), "%s/seed-%zu-recs%d", out, p, plan[p].recs);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0 && write(fd, log, len) == (ssize_t)len);
		close(fd);
		free(log);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("FUZZ_LOGREC_SEEDS");

	setup();
	atexit(teardown);
	if (seeds) {
		write_seeds(seeds);
		exit(0);
	}
	return 0;
}

static const uint8_t *
find_magic(const uint8_t *p, const uint8_t *end)
{
	size_t m = strlen(SEG_MAGIC);

	for (; p + m <= end; p++)
		if (memcmp(p, SEG_MAGIC, m) == 0)
			return p;
	return end;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t payload[] = "appended after a fuzzed replay";
	const uint8_t *p = data, *end = data + size;
	struct recs r1 = { 0 }, r2 = { 0 };
	struct wlog_replay_stats st1, st2;
	struct rec_header h = { 0 };
	struct wlog *w;
	char err[512] = "";
	const char *why = NULL;	/* wlog_read: what is wrong with a record it refuses */
	uint64_t laddr;
	uint8_t back[sizeof(payload)];
	int rc;

	/* the input as segment files */
	empty_dir();
	for (unsigned s = 1; s <= SEGS_MAX && (s == 1 || p < end); s++) {
		const uint8_t *next = p < end ? find_magic(p + 1, end) : end;
		char name[32];
		if (s == SEGS_MAX)
			next = end;
		snprintf(name, sizeof(name), "%08x.seg", s);
		write_file(name, p, (size_t)(next - p));
		p = next;
	}

	/* 1: replay as after a crash */
	if (wlog_open(dir, uuid, SEG_SIZE, &w, err, sizeof(err)) < 0) {
		CHECK(err[0]);
		return 0;
	}
	rc = wlog_replay(w, wlog_first_laddr(), 1, 0, collect, &r1, &st1, err, sizeof(err));
	if (rc < 0) {
		CHECK(rc == -EUCLEAN && err[0]);
		wlog_close(w);
		free(r1.v);
		return 0;
	}
	CHECK(st1.records == r1.n && wlog_next_seq(w) == r1.n + 1);

	/* 2: the log takes an append where replay stopped */
	h.type = REC_WRITE;
	h.disk_id = 7;
	h.offset = 4096;
	h.length = sizeof(payload);
	CHECK(wlog_append(w, &h, payload, &laddr) == 0);
	CHECK(wlog_read(w, laddr, 7, 4096, back, sizeof(back), &why) == 0 && memcmp(back, payload, sizeof(back)) == 0);
	collect(&h, laddr, &r1);
	wlog_close(w);

	/* 3: a takeover replays the same records and the appended one */
	err[0] = '\0';
	rc = wlog_open(dir, uuid, SEG_SIZE, &w, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "fuzz_logrec: reopen: %s\n", err);
	CHECK(rc == 0);
	rc = wlog_replay(w, wlog_first_laddr(), 1, 1, collect, &r2, &st2, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "fuzz_logrec: second replay: %s\n", err);
	CHECK(rc == 0 && st2.torn_bytes == 0);
	CHECK(r2.n == r1.n);
	for (size_t i = 0; i < r1.n; i++)
		CHECK(memcmp(&r1.v[i], &r2.v[i], sizeof(r1.v[i])) == 0);	/* on-disk structs: no padding */
	CHECK(wlog_read(w, laddr, 7, 4096, back, sizeof(back), &why) == 0 && memcmp(back, payload, sizeof(back)) == 0);
	wlog_close(w);
	free(r1.v);
	free(r2.v);
	return 0;
}
