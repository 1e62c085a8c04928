/*
 * check_wlog: the write log on its own (fs/wlog.c, format in fs/logfmt.h).
 *
 * Every test works in a fresh directory under /tmp (the log directory
 * itself), removed at the end of the run.  Records are appended through
 * wlog_append(), then the segment files are inspected and damaged with plain
 * file I/O to check what replay makes of them.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "hlog.h"
#include "logfmt.h"
#include "wlog.h"

#define MiB		(UINT64_C(1) << 20)
#define HDR		((uint64_t)sizeof(struct rec_header))
#define SEGHDR		((uint64_t)sizeof(struct seg_header))
#define REC1M_PER_SEG	15	/* 64 + 15 * (1 MiB + 64) <= 16 MiB < 64 + 16 * (1 MiB + 64) */

static const uint8_t UUID_A[16] = {
	0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef
};
static const uint8_t UUID_B[16] = {
	0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xee
};

/* ---- fixture: one temp dir per test, all inside one dir per run ---------- */

/*
 * A failed assertion ends the forked test process with _exit(), so no
 * cleanup runs there: main() makes the run's base dir and removes it, with
 * whatever the tests left, at the end.
 */
static char run_dir[64];
static char tdir[128];

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

static void
setup(void)
{
	snprintf(tdir, sizeof(tdir), "%s/t.XXXXXX", run_dir);
	ck_assert_ptr_nonnull(mkdtemp(tdir));
}

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t
rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void
fill(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(rng() >> 24);
}

static void
seg_path(uint32_t segno, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%08x.seg", tdir, segno);
}

static int64_t
seg_size(uint32_t segno)
{
	char p[256];
	struct stat sb;
	seg_path(segno, p, sizeof(p));
	return stat(p, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static void
seg_pread(uint32_t segno, void *buf, size_t len, uint64_t off)
{
	char p[256];
	int fd;
	seg_path(segno, p, sizeof(p));
	fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void
seg_pwrite(uint32_t segno, const void *buf, size_t len, uint64_t off)
{
	char p[256];
	int fd;
	seg_path(segno, p, sizeof(p));
	fd = open(p, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void
seg_flip_bit(uint32_t segno, uint64_t off, int bit)
{
	unsigned char c;
	seg_pread(segno, &c, 1, off);
	c ^= (unsigned char)(1u << bit);
	seg_pwrite(segno, &c, 1, off);
}

static void
seg_truncate(uint32_t segno, uint64_t size)
{
	char p[256];
	seg_path(segno, p, sizeof(p));
	ck_assert_int_eq(truncate(p, (off_t)size), 0);
}

/* How many "*.seg.cut-*" files the log dir holds, and the size of the last. */
static int
cut_files(int64_t *size)
{
	DIR *d = opendir(tdir);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		char p[400];
		struct stat sb;
		if (!strstr(de->d_name, ".seg.cut-"))
			continue;
		n++;
		snprintf(p, sizeof(p), "%s/%s", tdir, de->d_name);
		if (size && stat(p, &sb) == 0)
			*size = (int64_t)sb.st_size;
	}
	closedir(d);
	return n;
}

/* Open file descriptors of this process. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void
assert_bytes_eq(const void *got, const void *want, size_t len, const char *what)
{
	const unsigned char *g = got, *w = want;
	for (size_t i = 0; i < len; i++)
		if (g[i] != w[i])
			ck_abort_msg("%s: first difference at byte %zu of %zu (got %02x, want %02x)",
			    what, i, len, g[i], w[i]);
}

static int
contains(const char *s, const char *sub)
{
	return strstr(s, sub) != NULL;
}

/* Replay collector. */
struct seen {
	struct rec_header h;
	uint64_t data_laddr;
};

struct collector {
	struct seen	*v;
	size_t		 n, cap;
	size_t		 fail_at;	/* return fail_rc for the record with this index (if rc set) */
	int		 fail_rc;
};

static int
collect(const struct rec_header *h, uint64_t data_laddr, void *arg)
{
	struct collector *c = arg;

	if (c->fail_rc && c->n == c->fail_at)
		return c->fail_rc;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		ck_assert_ptr_nonnull(c->v);
	}
	c->v[c->n].h = *h;
	c->v[c->n].data_laddr = data_laddr;
	c->n++;
	return 0;
}

static struct wlog *
log_open(uint64_t segment_size)
{
	struct wlog *w = NULL;
	char err[512] = "";
	int rc = wlog_open(tdir, UUID_A, segment_size, &w, err, sizeof(err));
	ck_assert_msg(rc == 0, "wlog_open: %d (%s)", rc, err);
	ck_assert_ptr_nonnull(w);
	return w;
}

static int
log_replay(struct wlog *w, uint64_t from, uint64_t seq, struct collector *c,
    struct wlog_replay_stats *rs, char *err, size_t errlen)
{
	err[0] = '\0';
	return wlog_replay(w, from, seq, 0, collect, c, rs, err, errlen);
}

/* Open and replay a log from its start; asserts success. */
static struct wlog *
log_open_replayed(uint64_t segment_size, struct collector *c, struct wlog_replay_stats *rs)
{
	struct wlog *w = log_open(segment_size);
	char err[512];
	int rc = log_replay(w, wlog_first_laddr(), 1, c, rs, err, sizeof(err));
	ck_assert_msg(rc == 0, "wlog_replay: %d (%s)", rc, err);
	return w;
}

static struct wlog *
new_log(uint64_t segment_size)
{
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w;

	ck_assert_int_eq(wlog_create(tdir, UUID_A), 0);
	w = log_open_replayed(segment_size, &c, &rs);
	ck_assert_int_eq(c.n, 0);
	free(c.v);
	return w;
}

static uint64_t
append(struct wlog *w, uint16_t type, uint64_t disk, uint64_t off, uint64_t len,
    const void *data, struct rec_header *out)
{
	struct rec_header h;
	uint64_t laddr = 0;
	int rc;

	memset(&h, 0, sizeof(h));
	h.type = type;
	h.disk_id = disk;
	h.offset = off;
	h.length = len;
	rc = wlog_append(w, &h, data, &laddr);
	ck_assert_msg(rc == 0, "wlog_append type %u len %llu: %d", type, (unsigned long long)len, rc);
	if (out)
		*out = h;
	return laddr;
}

static uint32_t
hdr_crc_of(const struct rec_header *h)
{
	struct rec_header c = *h;
	c.hdr_crc = 0;
	return crc32c(0, &c, sizeof(c));
}

/* Append n WRITE records of len bytes (data seeded by index); fill laddrs[] and hdr offsets. */
static void
append_writes(struct wlog *w, int n, size_t len, uint64_t *laddrs, unsigned char *data_out)
{
	unsigned char *buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < n; i++) {
		fill(buf, len, 1000 + (uint64_t)i);
		laddrs[i] = append(w, REC_WRITE, 1, (uint64_t)i * len, len, buf, NULL);
		if (data_out)
			memcpy(data_out + (size_t)i * len, buf, len);
	}
	free(buf);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(empty_log_replays_nothing_and_tail_is_first_laddr)
{
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct seg_header sh, z;
	struct wlog *w;

	ck_assert_int_eq(wlog_create(tdir, UUID_A), 0);
	ck_assert_int_eq(seg_size(1), (int64_t)SEGHDR);
	ck_assert_int_eq(wlog_first_laddr(), LADDR(1, SEGHDR));
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	memset(&rs, 0xa5, sizeof(rs));
	{
		char err[256];
		ck_assert_int_eq(log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err)), 0);
	}
	ck_assert_int_eq(c.n, 0);
	ck_assert_uint_eq(rs.records, 0);
	ck_assert_uint_eq(rs.bytes, 0);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(wlog_tail(w), wlog_first_laddr());
	ck_assert_uint_eq(wlog_next_seq(w), 1);
	ck_assert_uint_eq(wlog_size(w), SEGHDR);

	/* the segment header as written by wlog_create */
	seg_pread(1, &sh, sizeof(sh), 0);
	ck_assert_mem_eq(sh.magic, SEG_MAGIC, 8);
	ck_assert_uint_eq(sh.version, LOG_FORMAT_VERSION);
	ck_assert_uint_eq(sh.header_size, 64);
	ck_assert_uint_eq(sh.segno, 1);
	ck_assert_mem_eq(sh.store_uuid, UUID_A, 16);
	z = sh;
	z.crc = 0;
	ck_assert_uint_eq(sh.crc, crc32c(0, &z, sizeof(z)));
	wlog_close(w);

	/* creating over an existing log is refused, the old one is left alone */
	ck_assert_int_eq(wlog_create(tdir, UUID_B), -EEXIST);
	seg_pread(1, &sh, sizeof(sh), 0);
	ck_assert_mem_eq(sh.store_uuid, UUID_A, 16);
	free(c.v);
}
END_TEST

START_TEST(append_each_record_type_reads_back_with_headers_and_crcs_on_disk)
{
	static unsigned char d1[5000], d4[1], got[5000];
	struct rec_header h[4], ondisk;
	uint64_t la[4], t0, pos[4];
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	fill(d1, sizeof(d1), 1);
	d4[0] = 0x5a;

	t0 = wlog_tail(w);
	la[0] = append(w, REC_WRITE, 7, 12345, sizeof(d1), d1, &h[0]);
	ck_assert_uint_eq(la[0], t0 + HDR);
	ck_assert_uint_eq(wlog_tail(w), la[0] + sizeof(d1));
	ck_assert_uint_eq(wlog_next_seq(w), 2);

	t0 = wlog_tail(w);
	la[1] = append(w, REC_ZERO, 7, 100, UINT64_C(1) << 30, NULL, &h[1]);
	ck_assert_uint_eq(la[1], t0 + HDR);
	ck_assert_uint_eq(wlog_tail(w), t0 + HDR);	/* no data */

	t0 = wlog_tail(w);
	la[2] = append(w, REC_SIZE, 8, 999999, 0, NULL, &h[2]);
	ck_assert_uint_eq(wlog_tail(w), t0 + HDR);

	t0 = wlog_tail(w);
	la[3] = append(w, REC_WRITE, 8, 0, 1, d4, &h[3]);
	ck_assert_uint_eq(la[3], t0 + HDR);
	ck_assert_uint_eq(wlog_tail(w), t0 + HDR + 1);
	ck_assert_uint_eq(wlog_next_seq(w), 5);

	/* sequence numbers +1 per record, filled in the caller's header */
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(h[i].seq, (uint64_t)i + 1);
		ck_assert_uint_eq(h[i].magic, REC_MAGIC);
		ck_assert_uint_eq(LADDR_SEG(la[i]), 1);
		pos[i] = LADDR_OFF(la[i]) - HDR;
	}

	/* data reads back at the returned address */
	ck_assert_int_eq(wlog_read(w, la[0], got, sizeof(d1)), 0);
	assert_bytes_eq(got, d1, sizeof(d1), "record 1 data");
	ck_assert_int_eq(wlog_read(w, la[3], got, 1), 0);
	ck_assert_uint_eq(got[0], 0x5a);
	ck_assert_int_eq(wlog_read(w, la[0] + 4000, got, 1000), 0);
	assert_bytes_eq(got, d1 + 4000, 1000, "record 1 data tail");
	/* reading past what the log holds is a short read: -EIO */
	ck_assert_int_eq(wlog_read(w, wlog_tail(w), got, 1), -EIO);
	ck_assert_int_eq(wlog_read(w, la[3], got, 2), -EIO);
	/* a segment that does not exist */
	ck_assert_int_eq(wlog_read(w, LADDR(2, SEGHDR), got, 1), -EIO);

	/* the headers on disk: what the caller got back, with valid checksums */
	for (int i = 0; i < 4; i++) {
		seg_pread(1, &ondisk, sizeof(ondisk), pos[i]);
		ck_assert_mem_eq(&ondisk, &h[i], sizeof(ondisk));
		ck_assert_uint_eq(ondisk.magic, REC_MAGIC);
		ck_assert_uint_eq(ondisk.seq, (uint64_t)i + 1);
		ck_assert_uint_eq(ondisk.flags, 0);
		ck_assert_uint_eq(ondisk.hdr_crc, hdr_crc_of(&ondisk));
	}
	seg_pread(1, &ondisk, sizeof(ondisk), pos[0]);
	ck_assert_uint_eq(ondisk.type, REC_WRITE);
	ck_assert_uint_eq(ondisk.disk_id, 7);
	ck_assert_uint_eq(ondisk.offset, 12345);
	ck_assert_uint_eq(ondisk.length, sizeof(d1));
	ck_assert_uint_eq(ondisk.data_crc, crc32c(0, d1, sizeof(d1)));
	seg_pread(1, got, sizeof(d1), pos[0] + HDR);
	assert_bytes_eq(got, d1, sizeof(d1), "record 1 data on disk");
	seg_pread(1, &ondisk, sizeof(ondisk), pos[1]);
	ck_assert_uint_eq(ondisk.type, REC_ZERO);
	ck_assert_uint_eq(ondisk.offset, 100);
	ck_assert_uint_eq(ondisk.length, UINT64_C(1) << 30);
	ck_assert_uint_eq(ondisk.data_crc, 0);
	seg_pread(1, &ondisk, sizeof(ondisk), pos[2]);
	ck_assert_uint_eq(ondisk.type, REC_SIZE);
	ck_assert_uint_eq(ondisk.disk_id, 8);
	ck_assert_uint_eq(ondisk.offset, 999999);
	ck_assert_uint_eq(ondisk.data_crc, 0);
	seg_pread(1, &ondisk, sizeof(ondisk), pos[3]);
	ck_assert_uint_eq(ondisk.data_crc, crc32c(0, d4, 1));

	/* records are packed back to back; size accounting matches the file */
	ck_assert_uint_eq(pos[0], SEGHDR);
	ck_assert_uint_eq(pos[1], pos[0] + HDR + sizeof(d1));
	ck_assert_uint_eq(pos[2], pos[1] + HDR);
	ck_assert_uint_eq(pos[3], pos[2] + HDR);
	ck_assert_int_eq(seg_size(1), (int64_t)(pos[3] + HDR + 1));
	ck_assert_uint_eq(wlog_size(w), (uint64_t)seg_size(1));

	{
		int fd;
		uint64_t off;
		ck_assert_int_eq(wlog_locate(w, la[0], &fd, &off), 0);
		ck_assert_uint_eq(off, pos[0] + HDR);
		ck_assert_int_eq(pread(fd, got, 10, (off_t)off), 10);
		assert_bytes_eq(got, d1, 10, "data through wlog_locate");
		ck_assert_int_eq(wlog_locate(w, LADDR(5, 100), &fd, &off), -EIO);
	}
	wlog_close(w);
}
END_TEST

START_TEST(reopen_replay_sees_exactly_the_appended_records_in_order)
{
	enum { N = 30 };
	struct seen want[N];
	static unsigned char data[N][9000];
	unsigned char got[9000];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	uint64_t tail, bytes = 0;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[256];

	for (int i = 0; i < N; i++) {
		uint16_t type = i % 3 == 0 ? REC_WRITE : i % 3 == 1 ? REC_ZERO : REC_SIZE;
		uint64_t len = type == REC_WRITE ? 1 + (uint64_t)(i * 331) % 9000 : (uint64_t)i * 4096;
		fill(data[i], sizeof(data[i]), (uint64_t)i);
		want[i].data_laddr = append(w, type, (uint64_t)(i % 4) + 1, (uint64_t)i * 1000 + 3,
		    len, type == REC_WRITE ? data[i] : NULL, &want[i].h);
		bytes += HDR + (type == REC_WRITE ? len : 0);
	}
	tail = wlog_tail(w);
	wlog_close(w);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, N);
	ck_assert_uint_eq(rs.records, N);
	ck_assert_uint_eq(rs.bytes, bytes);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(memcmp(&c.v[i].h, &want[i].h, sizeof(struct rec_header)) == 0,
		    "record %d: header differs", i);
		ck_assert_uint_eq(c.v[i].data_laddr, want[i].data_laddr);
		ck_assert_uint_eq(c.v[i].h.seq, (uint64_t)i + 1);
		if (c.v[i].h.type == REC_WRITE) {
			ck_assert_int_eq(wlog_read(w, c.v[i].data_laddr, got, c.v[i].h.length), 0);
			assert_bytes_eq(got, data[i], c.v[i].h.length, "replayed record data");
		}
	}
	ck_assert_uint_eq(wlog_tail(w), tail);
	ck_assert_uint_eq(wlog_next_seq(w), N + 1);
	ck_assert_uint_eq(wlog_size(w), (uint64_t)seg_size(1));

	/* appends continue exactly at the replayed tail */
	{
		struct rec_header h;
		uint64_t la = append(w, REC_WRITE, 1, 0, 10, data[0], &h);
		ck_assert_uint_eq(la, tail + HDR);
		ck_assert_uint_eq(h.seq, N + 1);
	}
	wlog_close(w);

	/* replay can start in the middle, at a record boundary with its seq */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	c.n = 0;
	ck_assert_int_eq(log_replay(w, want[17].data_laddr - HDR, 18, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, N + 1 - 17);
	ck_assert_uint_eq(c.v[0].h.seq, 18);
	ck_assert_uint_eq(c.v[0].data_laddr, want[17].data_laddr);
	ck_assert_uint_eq(c.v[c.n - 1].h.seq, N + 1);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	wlog_close(w);
	free(c.v);
}
END_TEST

/*
 * A damaged record in the newest segment: replay stops before it, cuts the
 * file there (keeping a copy since valid later records exist) and appends go
 * on from that point.  _i: 0 = a data bit, 1 = a header field bit, 2 = the magic.
 */
START_TEST(damaged_record_in_newest_segment_is_cut_and_appends_continue_there)
{
	enum { N = 5, LEN = 3000 };
	uint64_t la[N], cutpos, oldsize;
	static unsigned char data[N * LEN], fresh[777], got[LEN];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	struct rec_header h;
	int64_t cutsize = -1;

	append_writes(w, N, LEN, la, data);
	wlog_close(w);
	cutpos = LADDR_OFF(la[2]) - HDR;
	oldsize = (uint64_t)seg_size(1);
	if (_i == 0)
		seg_flip_bit(1, cutpos + HDR + 1000, 3);
	else if (_i == 1)
		seg_flip_bit(1, cutpos + offsetof(struct rec_header, offset) + 1, 0);
	else
		seg_flip_bit(1, cutpos, 7);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 2);
	ck_assert_uint_eq(rs.records, 2);
	ck_assert_uint_eq(c.v[1].h.seq, 2);
	ck_assert_uint_eq(rs.torn_bytes, oldsize - cutpos);
	ck_assert_int_eq(seg_size(1), (int64_t)cutpos);
	ck_assert_uint_eq(wlog_size(w), cutpos);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, cutpos));
	ck_assert_uint_eq(wlog_next_seq(w), 3);
	/* records 4 and 5 were valid: the cut bytes are kept aside */
	ck_assert_int_eq(cut_files(&cutsize), 1);
	ck_assert_int_eq(cutsize, (int64_t)(oldsize - cutpos));

	fill(fresh, sizeof(fresh), 99);
	ck_assert_uint_eq(append(w, REC_WRITE, 2, 5, sizeof(fresh), fresh, &h), LADDR(1, cutpos + HDR));
	ck_assert_uint_eq(h.seq, 3);
	wlog_close(w);

	c.n = 0;
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 3);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(c.v[2].h.length, sizeof(fresh));
	ck_assert_uint_eq(c.v[2].data_laddr, LADDR(1, cutpos + HDR));
	ck_assert_int_eq(wlog_read(w, c.v[2].data_laddr, got, sizeof(fresh)), 0);
	assert_bytes_eq(got, fresh, sizeof(fresh), "record appended after the cut");
	ck_assert_int_eq(wlog_read(w, c.v[1].data_laddr, got, LEN), 0);
	assert_bytes_eq(got, data + LEN, LEN, "record 2 survives");
	wlog_close(w);
	free(c.v);
}
END_TEST

/*
 * A torn tail: the file ends inside the last record.  _i picks where:
 * 0 = inside the header, 1 = right after the header, 2 = inside the data,
 * 3 = one byte short of the end, 4 = inside the header of a trailing ZERO.
 */
START_TEST(torn_tail_is_cut_and_earlier_records_survive)
{
	static unsigned char d[4096];
	uint64_t la[3], lastpos, cut;
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	static const uint64_t at[] = { 30, HDR, HDR + 100, HDR + sizeof(d) - 1, 63 };

	fill(d, sizeof(d), 5);
	la[0] = append(w, REC_WRITE, 1, 0, sizeof(d), d, NULL);
	la[1] = append(w, REC_SIZE, 1, 1 << 20, 0, NULL, NULL);
	if (_i == 4)
		la[2] = append(w, REC_ZERO, 1, 0, 512, NULL, NULL);
	else
		la[2] = append(w, REC_WRITE, 1, 4096, sizeof(d), d, NULL);
	wlog_close(w);
	lastpos = LADDR_OFF(la[2]) - HDR;
	cut = at[_i];
	seg_truncate(1, lastpos + cut);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 2);
	ck_assert_uint_eq(c.v[0].data_laddr, la[0]);
	ck_assert_uint_eq(c.v[1].h.type, REC_SIZE);
	ck_assert_uint_eq(rs.records, 2);
	ck_assert_uint_eq(rs.bytes, lastpos - SEGHDR);
	ck_assert_uint_eq(rs.torn_bytes, cut);
	ck_assert_int_eq(seg_size(1), (int64_t)lastpos);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, lastpos));
	ck_assert_uint_eq(wlog_next_seq(w), 3);
	/* nothing valid followed the tear: no copy is kept */
	ck_assert_int_eq(cut_files(NULL), 0);
	ck_assert_uint_eq(append(w, REC_WRITE, 1, 0, 16, d, NULL), LADDR(1, lastpos + HDR));
	wlog_close(w);

	/* the second open finds a clean log */
	c.n = 0;
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 3);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	wlog_close(w);
	free(c.v);
}
END_TEST

START_TEST(segments_roll_at_segment_size_and_replay_spans_them)
{
	enum { N = 40 };
	uint64_t la[N];
	unsigned char *buf = malloc(MiB), *want = malloc(MiB);
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[256];
	uint64_t seg1 = SEGHDR + REC1M_PER_SEG * (HDR + MiB);

	append_writes(w, N, MiB, la, NULL);
	for (int i = 0; i < N; i++) {
		uint32_t seg = (uint32_t)(i / REC1M_PER_SEG) + 1;
		ck_assert_msg(LADDR_SEG(la[i]) == seg, "record %d in segment %u, want %u",
		    i, LADDR_SEG(la[i]), seg);
		ck_assert_uint_eq(LADDR_OFF(la[i]), SEGHDR + HDR + (uint64_t)(i % REC1M_PER_SEG) * (HDR + MiB));
	}
	ck_assert_int_eq(seg_size(1), (int64_t)seg1);
	ck_assert_int_le(seg_size(1), (int64_t)WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(seg_size(2), (int64_t)seg1);
	ck_assert_int_eq(seg_size(3), (int64_t)(SEGHDR + 10 * (HDR + MiB)));
	ck_assert_int_eq(seg_size(4), -1);
	ck_assert_uint_eq(wlog_size(w), (uint64_t)(seg_size(1) + seg_size(2) + seg_size(3)));
	{
		/* each new segment has a proper header of its own */
		struct seg_header sh, z;
		seg_pread(3, &sh, sizeof(sh), 0);
		ck_assert_mem_eq(sh.magic, SEG_MAGIC, 8);
		ck_assert_uint_eq(sh.segno, 3);
		ck_assert_mem_eq(sh.store_uuid, UUID_A, 16);
		z = sh;
		z.crc = 0;
		ck_assert_uint_eq(sh.crc, crc32c(0, &z, sizeof(z)));
	}
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, N);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(rs.bytes, (uint64_t)N * (HDR + MiB));
	for (int i = 0; i < N; i++) {
		ck_assert_uint_eq(c.v[i].data_laddr, la[i]);
		ck_assert_uint_eq(c.v[i].h.seq, (uint64_t)i + 1);
		ck_assert_int_eq(wlog_read(w, la[i], buf, MiB), 0);
		fill(want, MiB, 1000 + (uint64_t)i);
		assert_bytes_eq(buf, want, MiB, "1 MiB record");
	}
	ck_assert_uint_eq(wlog_tail(w), LADDR(3, SEGHDR + 10 * (HDR + MiB)));
	/* appends go on in segment 3 */
	ck_assert_uint_eq(LADDR_SEG(append(w, REC_WRITE, 1, 0, MiB, buf, NULL)), 3);
	wlog_close(w);

	/* replay from a checkpoint inside segment 2 */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	c.n = 0;
	ck_assert_int_eq(log_replay(w, la[20] - HDR, 21, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, N + 1 - 20);
	ck_assert_uint_eq(c.v[0].data_laddr, la[20]);
	ck_assert_uint_eq(LADDR_SEG(c.v[c.n - 1].data_laddr), 3);
	wlog_close(w);

	/* a checkpoint at the very end of a full segment continues into the next */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	c.n = 0;
	ck_assert_int_eq(log_replay(w, LADDR(1, seg1), REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, N + 1 - REC1M_PER_SEG);
	ck_assert_uint_eq(c.v[0].data_laddr, la[REC1M_PER_SEG]);
	wlog_close(w);
	free(c.v);
	free(buf);
	free(want);
}
END_TEST

/*
 * Damage in a segment that is not the newest is corruption, not a torn tail:
 * -EUCLEAN with a message naming the segment, and nothing is cut.
 * _i: 0 = a flipped data bit, 1 = the segment cut short, 2 = a header bit.
 */
START_TEST(damage_in_older_segment_is_EUCLEAN_and_nothing_is_cut)
{
	enum { N = 20 };
	uint64_t la[N];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	int64_t s1, s2;
	char err[512];
	int rc;
	size_t expect_applied;

	append_writes(w, N, MiB, la, NULL);
	wlog_close(w);
	ck_assert_uint_eq(LADDR_SEG(la[N - 1]), 2);
	if (_i == 0) {
		seg_flip_bit(1, LADDR_OFF(la[5]) + 12345, 1);
		expect_applied = 5;
	} else if (_i == 1) {
		seg_truncate(1, (uint64_t)seg_size(1) - 100);
		expect_applied = REC1M_PER_SEG - 1;
	} else {
		seg_flip_bit(1, LADDR_OFF(la[9]) - HDR + offsetof(struct rec_header, disk_id), 2);
		expect_applied = 9;
	}
	s1 = seg_size(1);
	s2 = seg_size(2);

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	rc = log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err));
	ck_assert_int_eq(rc, -EUCLEAN);
	ck_assert_msg(contains(err, "00000001") && contains(err, "corrupt"),
	    "message should name segment 00000001 as corrupt: '%s'", err);
	ck_assert_int_eq(c.n, expect_applied);
	ck_assert_int_eq(seg_size(1), s1);
	ck_assert_int_eq(seg_size(2), s2);
	ck_assert_int_eq(cut_files(NULL), 0);
	wlog_close(w);
	free(c.v);
}
END_TEST

/* Write a segment header by hand (valid crc), for headers wlog would never write. */
static void
write_seg_header(uint32_t file_segno, uint64_t segno, const uint8_t uuid[16], uint32_t version)
{
	struct seg_header sh;
	memset(&sh, 0, sizeof(sh));
	memcpy(sh.magic, SEG_MAGIC, 8);
	sh.version = version;
	sh.header_size = sizeof(sh);
	sh.segno = segno;
	memcpy(sh.store_uuid, uuid, 16);
	sh.crc = crc32c(0, &sh, sizeof(sh));
	seg_pwrite(file_segno, &sh, sizeof(sh), 0);
}

/*
 * A log with one segment whose header is not this store's: open fails with a
 * message and the file is left alone.
 */
START_TEST(bad_segment_header_fails_open_with_message)
{
	static const char *const expect[] = {
		"another store", "bad magic", "checksum", "does not match", "version",
		"does not match"
	};
	struct wlog *w = NULL;
	char err[512] = "";
	const uint8_t *uuid = UUID_A;
	int rc;

	ck_assert_int_eq(wlog_create(tdir, UUID_A), 0);
	switch (_i) {
	case 0: uuid = UUID_B; break;				/* another store */
	case 1: seg_flip_bit(1, 0, 0); break;			/* magic */
	case 2: seg_flip_bit(1, offsetof(struct seg_header, reserved) + 3, 4); break;
	case 3: write_seg_header(1, 2, UUID_A, LOG_FORMAT_VERSION); break;	/* segno */
	case 4: write_seg_header(1, 1, UUID_A, LOG_FORMAT_VERSION + 1); break;
	case 5: {						/* file name says 2 */
		char a[256], b[256];
		seg_path(1, a, sizeof(a));
		seg_path(2, b, sizeof(b));
		ck_assert_int_eq(rename(a, b), 0);
		break;
	}
	}
	rc = wlog_open(tdir, uuid, WLOG_SEGMENT_SIZE_MIN, &w, err, sizeof(err));
	ck_assert_int_eq(rc, -EUCLEAN);
	ck_assert_msg(contains(err, expect[_i]), "message '%s' should say '%s'", err, expect[_i]);
	ck_assert_int_eq(seg_size(_i == 5 ? 2 : 1), (int64_t)SEGHDR);
}
END_TEST

START_TEST(log_dir_without_segments_or_with_a_gap_fails_open)
{
	struct wlog *w = NULL;
	char err[512] = "", a[256], b[256];
	uint64_t la[16];
	int fds;

	/* no segment at all */
	ck_assert_int_eq(wlog_open(tdir, UUID_A, WLOG_SEGMENT_SIZE_MIN, &w, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(contains(err, "no segment"), "message: '%s'", err);

	/* segments 1, 3: 2 is missing */
	w = new_log(WLOG_SEGMENT_SIZE_MIN);
	append_writes(w, REC1M_PER_SEG + 1, MiB, la, NULL);
	wlog_close(w);
	seg_path(2, a, sizeof(a));
	seg_path(3, b, sizeof(b));
	ck_assert_int_eq(rename(a, b), 0);
	write_seg_header(3, 3, UUID_A, LOG_FORMAT_VERSION);
	err[0] = '\0';
	w = NULL;
	fds = open_fds();
	ck_assert_int_eq(wlog_open(tdir, UUID_A, WLOG_SEGMENT_SIZE_MIN, &w, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(contains(err, "00000003") && contains(err, "missing"), "message: '%s'", err);
	/* the segment opened before the failure is closed again */
	ck_assert_int_eq(open_fds(), fds);
	ck_assert_int_ge(seg_size(3), (int64_t)SEGHDR);
}
END_TEST

/*
 * The newest segment has a complete, checksummed header that is not this
 * store's (another store's uuid, or a newer format version).  That is not a
 * segment whose creation was interrupted: open must refuse, not delete it.
 */
START_TEST(foreign_header_in_newest_segment_fails_open_and_keeps_the_file)
{
	uint64_t la[REC1M_PER_SEG + 1];
	struct wlog *w = NULL;
	char err[512] = "";
	int64_t s2;
	int rc;

	w = new_log(WLOG_SEGMENT_SIZE_MIN);
	append_writes(w, REC1M_PER_SEG + 1, MiB, la, NULL);
	wlog_close(w);
	ck_assert_uint_eq(LADDR_SEG(la[REC1M_PER_SEG]), 2);
	if (_i == 0)
		write_seg_header(2, 2, UUID_B, LOG_FORMAT_VERSION);
	else
		write_seg_header(2, 2, UUID_A, LOG_FORMAT_VERSION + 1);
	s2 = seg_size(2);

	w = NULL;
	rc = wlog_open(tdir, UUID_A, WLOG_SEGMENT_SIZE_MIN, &w, err, sizeof(err));
	ck_assert_msg(rc == -EUCLEAN, "wlog_open returned %d (%s)", rc, err);
	ck_assert_msg(contains(err, _i == 0 ? "another store" : "version"), "message: '%s'", err);
	ck_assert_int_eq(seg_size(2), s2);
}
END_TEST

/*
 * The newest segment is only partly there (its creation was interrupted):
 * open removes it and the log continues at the end of the previous segment.
 * _i: 0 = truncated to 10 bytes, 1 = empty, 2 = its header never written (zeros).
 */
START_TEST(incomplete_newest_segment_is_removed_and_log_continues_before_it)
{
	uint64_t la[REC1M_PER_SEG + 1];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct rec_header h;
	struct wlog *w;
	unsigned char *buf = calloc(1, MiB);
	int64_t s1;

	w = new_log(WLOG_SEGMENT_SIZE_MIN);
	append_writes(w, REC1M_PER_SEG + 1, MiB, la, NULL);
	wlog_close(w);
	ck_assert_uint_eq(LADDR_SEG(la[REC1M_PER_SEG]), 2);
	s1 = seg_size(1);
	if (_i == 0)
		seg_truncate(2, 10);
	else if (_i == 1)
		seg_truncate(2, 0);
	else
		seg_pwrite(2, buf, SEGHDR, 0);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(seg_size(2), -1);
	ck_assert_int_eq(c.n, REC1M_PER_SEG);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, (uint64_t)s1));
	ck_assert_uint_eq(wlog_size(w), (uint64_t)s1);
	ck_assert_uint_eq(wlog_next_seq(w), REC1M_PER_SEG + 1);
	/* the next record does not fit in segment 1: a fresh segment 2 */
	ck_assert_uint_eq(append(w, REC_WRITE, 1, 0, MiB, buf, &h), LADDR(2, SEGHDR + HDR));
	ck_assert_uint_eq(h.seq, REC1M_PER_SEG + 1);
	wlog_close(w);

	c.n = 0;
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, REC1M_PER_SEG + 1);
	wlog_close(w);
	free(c.v);
	free(buf);
}
END_TEST

START_TEST(only_segment_truncated_below_header_fails_open)
{
	struct wlog *w = NULL;
	char err[512] = "";

	ck_assert_int_eq(wlog_create(tdir, UUID_A), 0);
	seg_truncate(1, 10);
	ck_assert_int_eq(wlog_open(tdir, UUID_A, WLOG_SEGMENT_SIZE_MIN, &w, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(contains(err, "00000001") && contains(err, "shorter"), "message: '%s'", err);
	ck_assert_int_eq(seg_size(1), 10);
}
END_TEST

/* Replay must start at the expected sequence number; _i picks a wrong one. */
START_TEST(replay_with_wrong_next_seq_applies_nothing)
{
	static const uint64_t wrong[] = { 2, 100, 0 };
	static unsigned char d[100];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[512];
	int rc;

	for (int i = 0; i < 3; i++)
		append(w, REC_WRITE, 1, (uint64_t)i * 100, sizeof(d), d, NULL);
	wlog_close(w);

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	rc = log_replay(w, wlog_first_laddr(), wrong[_i], &c, &rs, err, sizeof(err));
	ck_assert_int_eq(c.n, 0);
	ck_assert_uint_eq(rs.records, 0);
	if (rc == 0) {
		/* stopped at the very first record */
		ck_assert_uint_eq(wlog_tail(w), wlog_first_laddr());
		ck_assert_uint_eq(rs.bytes, 0);
	} else {
		ck_assert_msg(err[0] != '\0', "an error needs a message");
	}
	wlog_close(w);
	free(c.v);
}
END_TEST

START_TEST(replay_from_outside_the_log_is_EUCLEAN)
{
	static unsigned char d[100];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[512];
	int64_t size;

	append(w, REC_WRITE, 1, 0, sizeof(d), d, NULL);
	wlog_close(w);
	size = seg_size(1);
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, LADDR(2, SEGHDR), 1, &c, &rs, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(contains(err, "outside"), "message: '%s'", err);
	ck_assert_int_eq(log_replay(w, LADDR(1, 10), 1, &c, &rs, err, sizeof(err)), -EUCLEAN);
	ck_assert_int_eq(log_replay(w, LADDR(0, SEGHDR), 1, &c, &rs, err, sizeof(err)), -EUCLEAN);
	ck_assert_int_eq(c.n, 0);
	ck_assert_int_eq(seg_size(1), size);
	/* the right start still works afterwards */
	ck_assert_int_eq(log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, 1);
	wlog_close(w);
	free(c.v);
}
END_TEST

START_TEST(apply_error_stops_replay_and_is_returned)
{
	static unsigned char d[100];
	struct collector c = { .fail_at = 2, .fail_rc = -ENOMEM };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[512];
	int64_t size;

	for (int i = 0; i < 5; i++)
		append(w, REC_WRITE, 1, (uint64_t)i * 100, sizeof(d), d, NULL);
	wlog_close(w);
	size = seg_size(1);

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err)), -ENOMEM);
	ck_assert_int_eq(c.n, 2);
	ck_assert_uint_eq(rs.records, 2);
	ck_assert_msg(contains(err, "record 3"), "message: '%s'", err);
	/* an apply failure is not damage: nothing is cut */
	ck_assert_int_eq(seg_size(1), size);
	wlog_close(w);
	free(c.v);
}
END_TEST

START_TEST(sync_succeeds_and_bad_write_lengths_are_EINVAL)
{
	static unsigned char d[64];
	unsigned char *big = malloc(REC_DATA_MAX);
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct rec_header h;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	uint64_t tail, la = 0;

	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(wlog_sync(w, 0), 0);
	append(w, REC_WRITE, 1, 0, sizeof(d), d, NULL);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);	/* already durable */

	tail = wlog_tail(w);
	memset(&h, 0, sizeof(h));
	h.type = REC_WRITE;
	h.length = 0;
	ck_assert_int_eq(wlog_append(w, &h, d, &la), -EINVAL);
	h.length = (uint64_t)REC_DATA_MAX + 1;
	ck_assert_int_eq(wlog_append(w, &h, big, &la), -EINVAL);
	/* nothing was appended */
	ck_assert_uint_eq(wlog_tail(w), tail);
	ck_assert_uint_eq(wlog_next_seq(w), 2);
	ck_assert_int_eq(seg_size(1), (int64_t)LADDR_OFF(tail));

	/* exactly REC_DATA_MAX is allowed, and replays */
	fill(big, REC_DATA_MAX, 77);
	h.length = REC_DATA_MAX;
	ck_assert_int_eq(wlog_append(w, &h, big, &la), 0);
	ck_assert_uint_eq(h.seq, 2);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 2);
	ck_assert_uint_eq(c.v[1].h.length, REC_DATA_MAX);
	ck_assert_uint_eq(c.v[1].data_laddr, la);
	{
		unsigned char *got = malloc(REC_DATA_MAX);
		ck_assert_int_eq(wlog_read(w, la, got, REC_DATA_MAX), 0);
		assert_bytes_eq(got, big, REC_DATA_MAX, "16 MiB record");
		free(got);
	}
	wlog_close(w);
	free(c.v);
	free(big);
}
END_TEST

static Suite *
wlog_suite(void)
{
	Suite *s = suite_create("wlog");
	TCase *tc = tcase_create("wlog");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, empty_log_replays_nothing_and_tail_is_first_laddr);
	tcase_add_test(tc, append_each_record_type_reads_back_with_headers_and_crcs_on_disk);
	tcase_add_test(tc, reopen_replay_sees_exactly_the_appended_records_in_order);
	tcase_add_loop_test(tc, damaged_record_in_newest_segment_is_cut_and_appends_continue_there, 0, 3);
	tcase_add_loop_test(tc, torn_tail_is_cut_and_earlier_records_survive, 0, 5);
	tcase_add_test(tc, segments_roll_at_segment_size_and_replay_spans_them);
	tcase_add_loop_test(tc, damage_in_older_segment_is_EUCLEAN_and_nothing_is_cut, 0, 3);
	tcase_add_loop_test(tc, bad_segment_header_fails_open_with_message, 0, 6);
	tcase_add_test(tc, log_dir_without_segments_or_with_a_gap_fails_open);
	tcase_add_loop_test(tc, foreign_header_in_newest_segment_fails_open_and_keeps_the_file, 0, 2);
	tcase_add_loop_test(tc, incomplete_newest_segment_is_removed_and_log_continues_before_it, 0, 3);
	tcase_add_test(tc, only_segment_truncated_below_header_fails_open);
	tcase_add_loop_test(tc, replay_with_wrong_next_seq_applies_nothing, 0, 3);
	tcase_add_test(tc, replay_from_outside_the_log_is_EUCLEAN);
	tcase_add_test(tc, apply_error_stops_replay_and_is_returned);
	tcase_add_test(tc, sync_succeeds_and_bad_write_lengths_are_EINVAL);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(wlog_suite());
	int failed;

	snprintf(run_dir, sizeof(run_dir), "/tmp/check_wlog.XXXXXX");
	if (!mkdtemp(run_dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}

	/* warnings about cut tails are expected here; keep errors visible */
	hlog_init("check_wlog", HLOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(run_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
