/*
 * check_wlog: the write log on its own (fs/store/wlog.c, format in fs/store/logfmt.h).
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
#include <pthread.h>
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
#include "reccache.h"
#include "wlog.h"

#define MiB		(UINT64_C(1) << 20)
#define KiB		(UINT64_C(1) << 10)
#define BLK		((uint64_t)REC_BLOCK)
#define HDR		((uint64_t)sizeof(struct rec_header))
#define SEGHDR		((uint64_t)sizeof(struct seg_header))
/* A REC_WRITE of len data bytes: where its data starts (after the crc table), its size on disk. */
#define WREC_DATA(len)	(HDR + 4 * (((uint64_t)(len) + BLK - 1) / BLK))
#define WREC_SIZE(len)	(WREC_DATA(len) + (uint64_t)(len))
/*
 * A 1 MiB write record is 64 + 1 KiB (crc table: 256 entries) + 1 MiB bytes:
 * 64 + 15 * (64 + 1 KiB + 1 MiB) = 15745024 <= 16 MiB = 16777216
 *    < 64 + 16 * (64 + 1 KiB + 1 MiB) = 16794688.
 */
#define REC1M_PER_SEG	15
_Static_assert(SEGHDR + REC1M_PER_SEG * WREC_SIZE(MiB) <= WLOG_SEGMENT_SIZE_MIN &&
    SEGHDR + (REC1M_PER_SEG + 1) * WREC_SIZE(MiB) > WLOG_SEGMENT_SIZE_MIN,
    "REC1M_PER_SEG 1 MiB records fill a minimum-size segment");

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

/* Size of a file (-1 if there is none). */
static int64_t
file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static int64_t
seg_size(uint32_t segno)
{
	char p[256];
	seg_path(segno, p, sizeof(p));
	return file_size(p);
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
	uint64_t rec_laddr;
};

struct collector {
	struct seen	*v;
	size_t		 n, cap;
	size_t		 fail_at;	/* return fail_rc for the record with this index (if rc set) */
	int		 fail_rc;
};

static int
collect(const struct rec_header *h, uint64_t rec_laddr, void *arg)
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
	c->v[c->n].rec_laddr = rec_laddr;
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
log_replay_trusting(struct wlog *w, uint64_t from, uint64_t seq, int trust_complete,
    struct collector *c, struct wlog_replay_stats *rs, char *err, size_t errlen)
{
	err[0] = '\0';
	return wlog_replay(w, from, seq, trust_complete, collect, c, rs, err, errlen);
}

static int
log_replay(struct wlog *w, uint64_t from, uint64_t seq, struct collector *c,
    struct wlog_replay_stats *rs, char *err, size_t errlen)
{
	return log_replay_trusting(w, from, seq, 0, c, rs, err, errlen);
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

/*
 * Append n WRITE records of len bytes to disk 1 at disk offset i * len (data
 * seeded by index); fill laddrs[] with the records' addresses.
 */
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

/*
 * The REC_WRITE of len bytes at file offset pos of segment segno, as it is on
 * disk: a crc table of one crc32c per 4 KiB block of data (the last one
 * short), data_crc = crc32c of that table, then the data itself.
 */
static void
check_write_record_on_disk(uint32_t segno, uint64_t pos, const void *data, uint64_t len)
{
	uint64_t nblk = (len + BLK - 1) / BLK;
	uint32_t *table = malloc(4 * nblk);
	unsigned char *got = malloc(len);
	struct rec_header h;

	ck_assert_ptr_nonnull(table);
	ck_assert_ptr_nonnull(got);
	seg_pread(segno, &h, sizeof(h), pos);
	ck_assert_uint_eq(h.type, REC_WRITE);
	ck_assert_uint_eq(h.length, len);
	ck_assert_uint_eq(rec_blocks(len), nblk);
	ck_assert_uint_eq(rec_data_start(&h), WREC_DATA(len));
	ck_assert_uint_eq(rec_size(&h), WREC_SIZE(len));
	seg_pread(segno, table, 4 * nblk, pos + HDR);
	ck_assert_uint_eq(h.data_crc, crc32c(0, table, 4 * nblk));
	for (uint64_t i = 0; i < nblk; i++) {
		uint64_t blen = len - i * BLK < BLK ? len - i * BLK : BLK;
		ck_assert_uint_eq(rec_block_len(&h, i), blen);
		ck_assert_msg(table[i] == crc32c(0, (const char *)data + i * BLK, blen),
		    "crc table entry %llu of %llu", (unsigned long long)i, (unsigned long long)nblk);
	}
	seg_pread(segno, got, len, pos + WREC_DATA(len));
	assert_bytes_eq(got, data, len, "record data on disk");
	free(table);
	free(got);
}

/*
 * Change data byte `at` of the REC_WRITE of len bytes at file offset pos and
 * rewrite its block's crc table entry to match: every block agrees with the
 * table, only the header's data_crc (the crc of the table) can tell.
 */
static void
seg_rewrite_block_and_table(uint32_t segno, uint64_t pos, uint64_t len, uint64_t at)
{
	uint64_t blk = at / BLK, blen = len - blk * BLK < BLK ? len - blk * BLK : BLK;
	unsigned char *b = malloc(blen);
	uint32_t entry;

	ck_assert_ptr_nonnull(b);
	seg_pread(segno, b, blen, pos + WREC_DATA(len) + blk * BLK);
	b[at % BLK] ^= 0x10;
	seg_pwrite(segno, b, blen, pos + WREC_DATA(len) + blk * BLK);
	entry = crc32c(0, b, blen);
	seg_pwrite(segno, &entry, 4, pos + HDR + 4 * blk);
	free(b);
}

/* Set by a test: read_expect() reads through wlog_read_cached(), as a guest's read does. */
static int read_cached;

/*
 * wlog_read (or wlog_read_cached) of n bytes of disk `disk` at doff from the record at rec, into a
 * buffer with guard bytes on both sides.  want != NULL: it must succeed with
 * exactly those bytes.  want == NULL: it must fail with -EBADMSG and a reason,
 * which is returned.  Either way nothing is written outside the n bytes.
 */
static const char *
read_expect(struct wlog *w, uint64_t rec, uint64_t disk, uint64_t doff, size_t n,
    const void *want, const char *what)
{
	enum { GUARD = 16 };
	unsigned char *buf = malloc(n + 2 * GUARD);
	const char *why = NULL;
	int rc;

	ck_assert_ptr_nonnull(buf);
	memset(buf, 0xee, n + 2 * GUARD);
	rc = (read_cached ? wlog_read_cached : wlog_read)(w, rec, disk, doff, buf + GUARD, n, &why);
	for (size_t i = 0; i < GUARD; i++)
		ck_assert_msg(buf[i] == 0xee && buf[GUARD + n + i] == 0xee,
		    "%s: wlog_read wrote outside its buffer", what);
	if (want) {
		ck_assert_msg(rc == 0, "%s: wlog_read(%llx, disk %llu, [%llu, +%zu)) = %d (%s)", what,
		    (unsigned long long)rec, (unsigned long long)disk, (unsigned long long)doff, n,
		    rc, why ? why : "no reason");
		assert_bytes_eq(buf + GUARD, want, n, what);
	} else {
		ck_assert_msg(rc == -EBADMSG, "%s: wlog_read(%llx, disk %llu, [%llu, +%zu)) = %d, want -EBADMSG",
		    what, (unsigned long long)rec, (unsigned long long)disk, (unsigned long long)doff, n, rc);
		ck_assert_msg(why != NULL && why[0] != '\0', "%s: -EBADMSG without a reason", what);
	}
	free(buf);
	return why;
}

/*
 * Every read [s, e) of the record at rec (disk `disk`, data byte 0 at disk
 * offset doff0, len bytes, expected contents data) whose ends are at a block
 * edge, next to one, or at the record's ends.  Data bytes [bad_lo, bad_hi) are
 * a damaged block: a read touching it must fail with a checksum reason, every
 * other read must return the right bytes.
 */
static void
check_ranges(struct wlog *w, uint64_t rec, uint64_t disk, uint64_t doff0,
    const unsigned char *data, uint64_t len, uint64_t bad_lo, uint64_t bad_hi)
{
	uint64_t *p = malloc(sizeof(*p) * (8 * (len / BLK + 1) + 8));
	size_t np = 0, reads = 0, failed = 0;
	char what[160];

	ck_assert_ptr_nonnull(p);
	for (uint64_t x = 0; x <= len; x++) {
		uint64_t r = x % BLK;
		if (r == 0 || r == 1 || r == 50 || r == 2000 || r == BLK - 1 || x + 1 >= len)
			p[np++] = x;
	}
	for (size_t i = 0; i < np; i++) {
		for (size_t j = i; j < np; j++) {
			uint64_t s = p[i], e = p[j];
			int bad = bad_lo < bad_hi && s < bad_hi && e > bad_lo;
			if (s == e && bad_lo < bad_hi)
				continue;	/* empty reads of a damaged record: either answer */
			snprintf(what, sizeof(what), "data [%llu, %llu) of %llu, damage [%llu, %llu)",
			    (unsigned long long)s, (unsigned long long)e, (unsigned long long)len,
			    (unsigned long long)bad_lo, (unsigned long long)bad_hi);
			const char *why = read_expect(w, rec, disk, doff0 + s, (size_t)(e - s),
			    bad ? NULL : data + s, what);
			if (bad)
				ck_assert_msg(contains(why, "checksum"), "%s: reason '%s' should name a checksum",
				    what, why);
			reads++;
			failed += bad;
		}
	}
	/* the damage, if any, was seen, and so were good reads around it */
	if (bad_lo > 0 || bad_hi < len)
		ck_assert_uint_gt(reads, failed);
	if (bad_lo < bad_hi)
		ck_assert_uint_gt(failed, 0);
	free(p);
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
	const char *why;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	fill(d1, sizeof(d1), 1);
	d4[0] = 0x5a;

	/* the address returned is the record's: where the tail was */
	t0 = wlog_tail(w);
	la[0] = append(w, REC_WRITE, 7, 12345, sizeof(d1), d1, &h[0]);
	ck_assert_uint_eq(la[0], t0);
	ck_assert_uint_eq(WREC_SIZE(sizeof(d1)), 64 + 2 * 4 + 5000);	/* blocks of 4096 + 904 */
	ck_assert_uint_eq(wlog_tail(w), t0 + WREC_SIZE(sizeof(d1)));
	ck_assert_uint_eq(wlog_next_seq(w), 2);

	t0 = wlog_tail(w);
	la[1] = append(w, REC_ZERO, 7, 100, UINT64_C(1) << 30, NULL, &h[1]);
	ck_assert_uint_eq(la[1], t0);
	ck_assert_uint_eq(wlog_tail(w), t0 + HDR);	/* no table, no data */

	t0 = wlog_tail(w);
	la[2] = append(w, REC_SIZE, 8, 999999, 0, NULL, &h[2]);
	ck_assert_uint_eq(la[2], t0);
	ck_assert_uint_eq(wlog_tail(w), t0 + HDR);

	t0 = wlog_tail(w);
	la[3] = append(w, REC_WRITE, 8, 0, 1, d4, &h[3]);
	ck_assert_uint_eq(la[3], t0);
	ck_assert_uint_eq(wlog_tail(w), t0 + HDR + 4 + 1);
	ck_assert_uint_eq(wlog_next_seq(w), 5);

	/* sequence numbers +1 per record, filled in the caller's header */
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(h[i].seq, (uint64_t)i + 1);
		ck_assert_uint_eq(h[i].magic, REC_MAGIC);
		ck_assert_uint_eq(LADDR_SEG(la[i]), 1);
		pos[i] = LADDR_OFF(la[i]);
	}

	/* data reads back from the returned address, named by disk and disk offset */
	ck_assert_int_eq(wlog_read(w, la[0], 7, 12345, got, sizeof(d1), &why), 0);
	assert_bytes_eq(got, d1, sizeof(d1), "record 1 data");
	ck_assert_int_eq(wlog_read(w, la[3], 8, 0, got, 1, &why), 0);
	ck_assert_uint_eq(got[0], 0x5a);
	ck_assert_int_eq(wlog_read(w, la[0], 7, 12345 + 4000, got, 1000, &why), 0);
	assert_bytes_eq(got, d1 + 4000, 1000, "record 1 data tail");
	/* no record there, or more than the record holds: -EBADMSG with a reason */
	why = NULL;
	ck_assert_int_eq(wlog_read(w, wlog_tail(w), 8, 0, got, 1, &why), -EBADMSG);
	ck_assert_ptr_nonnull(why);
	why = NULL;
	ck_assert_int_eq(wlog_read(w, la[3], 8, 0, got, 2, &why), -EBADMSG);
	ck_assert_ptr_nonnull(why);
	/* a segment that does not exist */
	why = NULL;
	ck_assert_int_eq(wlog_read(w, LADDR(2, SEGHDR), 8, 0, got, 1, &why), -EBADMSG);
	ck_assert_ptr_nonnull(why);

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
	/* data_crc == crc32c(table), table[i] == crc32c(block i), then the data */
	check_write_record_on_disk(1, pos[0], d1, sizeof(d1));
	{
		uint32_t table[2];
		seg_pread(1, table, sizeof(table), pos[0] + HDR);
		ck_assert_uint_eq(table[0], crc32c(0, d1, 4096));
		ck_assert_uint_eq(table[1], crc32c(0, d1 + 4096, 904));
		ck_assert_uint_eq(ondisk.data_crc, crc32c(0, table, sizeof(table)));
		seg_pread(1, got, sizeof(d1), pos[0] + HDR + sizeof(table));
		assert_bytes_eq(got, d1, sizeof(d1), "record 1 data on disk");
	}
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
	{
		uint32_t entry, want = crc32c(0, d4, 1);
		seg_pread(1, &entry, 4, pos[3] + HDR);
		ck_assert_uint_eq(entry, want);
		ck_assert_uint_eq(ondisk.data_crc, crc32c(0, &want, 4));
		seg_pread(1, got, 1, pos[3] + HDR + 4);
		ck_assert_uint_eq(got[0], 0x5a);
	}
	check_write_record_on_disk(1, pos[3], d4, 1);

	/* records are packed back to back; size accounting matches the file */
	ck_assert_uint_eq(pos[0], SEGHDR);
	ck_assert_uint_eq(pos[1], pos[0] + WREC_SIZE(sizeof(d1)));
	ck_assert_uint_eq(pos[2], pos[1] + HDR);
	ck_assert_uint_eq(pos[3], pos[2] + HDR);
	ck_assert_int_eq(seg_size(1), (int64_t)(pos[3] + WREC_SIZE(1)));
	ck_assert_uint_eq(wlog_size(w), (uint64_t)seg_size(1));

	/* logfmt.h's size helpers agree with the layout */
	ck_assert_uint_eq(rec_size(&h[0]), WREC_SIZE(sizeof(d1)));
	ck_assert_uint_eq(rec_data_start(&h[0]), HDR + 8);
	ck_assert_uint_eq(rec_blocks(sizeof(d1)), 2);
	ck_assert_uint_eq(rec_block_len(&h[0], 0), 4096);
	ck_assert_uint_eq(rec_block_len(&h[0], 1), 904);
	ck_assert_uint_eq(rec_size(&h[1]), HDR);
	ck_assert_uint_eq(rec_size(&h[2]), HDR);
	ck_assert_uint_eq(rec_size(&h[3]), HDR + 4 + 1);
	ck_assert_uint_eq(rec_data_start(&h[3]), HDR + 4);
	ck_assert_uint_eq(rec_blocks(4096), 1);
	ck_assert_uint_eq(rec_blocks(4097), 2);
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
		want[i].rec_laddr = append(w, type, (uint64_t)(i % 4) + 1, (uint64_t)i * 1000 + 3,
		    len, type == REC_WRITE ? data[i] : NULL, &want[i].h);
		bytes += type == REC_WRITE ? WREC_SIZE(len) : HDR;
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
		ck_assert_uint_eq(c.v[i].rec_laddr, want[i].rec_laddr);
		ck_assert_uint_eq(c.v[i].h.seq, (uint64_t)i + 1);
		if (c.v[i].h.type == REC_WRITE) {
			const char *why;
			ck_assert_int_eq(wlog_read(w, c.v[i].rec_laddr, (uint64_t)(i % 4) + 1,
			    (uint64_t)i * 1000 + 3, got, c.v[i].h.length, &why), 0);
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
		ck_assert_uint_eq(la, tail);
		ck_assert_uint_eq(h.seq, N + 1);
	}
	wlog_close(w);

	/* replay can start in the middle, at a record boundary with its seq */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	c.n = 0;
	ck_assert_int_eq(log_replay(w, want[17].rec_laddr, 18, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, N + 1 - 17);
	ck_assert_uint_eq(c.v[0].h.seq, 18);
	ck_assert_uint_eq(c.v[0].rec_laddr, want[17].rec_laddr);
	ck_assert_uint_eq(c.v[c.n - 1].h.seq, N + 1);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	wlog_close(w);
	free(c.v);
}
END_TEST

/*
 * A damaged record in the newest segment: replay stops before it, cuts the
 * file there (keeping a copy when valid later records exist) and appends go
 * on from that point.  _i: 0 = a data bit (in the record's second block),
 * 1 = a header field bit, 2 = the magic, 3 = a bit of a crc table entry,
 * 4 = a crc table bit in the last record (nothing valid follows: no copy),
 * 5 = a data block rewritten along with its table entry (only data_crc knows).
 */
START_TEST(damaged_record_in_newest_segment_is_cut_and_appends_continue_there)
{
	enum { N = 5, LEN = 9000 };	/* 3 blocks: 4096 + 4096 + 808 */
	uint64_t la[N], cutpos, oldsize;
	static unsigned char data[N * LEN], fresh[777], got[LEN];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	struct rec_header h;
	int64_t cutsize = -1;
	const char *why;
	int victim = _i == 4 ? N - 1 : 2;

	append_writes(w, N, LEN, la, data);
	wlog_close(w);
	cutpos = LADDR_OFF(la[victim]);
	oldsize = (uint64_t)seg_size(1);
	if (_i == 0)
		seg_flip_bit(1, cutpos + WREC_DATA(LEN) + 5000, 3);
	else if (_i == 1)
		seg_flip_bit(1, cutpos + offsetof(struct rec_header, offset) + 1, 0);
	else if (_i == 2)
		seg_flip_bit(1, cutpos, 7);
	else if (_i == 5)
		seg_rewrite_block_and_table(1, cutpos, LEN, 4096 + 10);
	else
		seg_flip_bit(1, cutpos + HDR + 4 * 2 + 1, 5);	/* entry 2 of 3 */

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, victim);
	ck_assert_uint_eq(rs.records, (uint64_t)victim);
	ck_assert_uint_eq(c.v[victim - 1].h.seq, (uint64_t)victim);
	ck_assert_uint_eq(rs.torn_bytes, oldsize - cutpos);
	ck_assert_int_eq(seg_size(1), (int64_t)cutpos);
	ck_assert_uint_eq(wlog_size(w), cutpos);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, cutpos));
	ck_assert_uint_eq(wlog_next_seq(w), (uint64_t)victim + 1);
	if (victim < N - 1) {
		/* records 4 and 5 were valid: the cut bytes are kept aside */
		ck_assert_int_eq(cut_files(&cutsize), 1);
		ck_assert_int_eq(cutsize, (int64_t)(oldsize - cutpos));
	} else {
		ck_assert_int_eq(cut_files(NULL), 0);
	}

	fill(fresh, sizeof(fresh), 99);
	ck_assert_uint_eq(append(w, REC_WRITE, 2, 5, sizeof(fresh), fresh, &h), LADDR(1, cutpos));
	ck_assert_uint_eq(h.seq, (uint64_t)victim + 1);
	wlog_close(w);

	c.n = 0;
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, victim + 1);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(c.v[victim].h.length, sizeof(fresh));
	ck_assert_uint_eq(c.v[victim].rec_laddr, LADDR(1, cutpos));
	ck_assert_int_eq(wlog_read(w, c.v[victim].rec_laddr, 2, 5, got, sizeof(fresh), &why), 0);
	assert_bytes_eq(got, fresh, sizeof(fresh), "record appended after the cut");
	ck_assert_int_eq(wlog_read(w, c.v[1].rec_laddr, 1, LEN, got, LEN, &why), 0);
	assert_bytes_eq(got, data + LEN, LEN, "record 2 survives");
	wlog_close(w);
	free(c.v);
}
END_TEST

/*
 * A torn tail: the file ends inside the last record.  _i picks where:
 * 0 = inside the header, 1 = right after the header, 2 = inside the data,
 * 3 = one byte short of the end, 4 = inside the header of a trailing ZERO,
 * 5 = inside the crc table, 6 = right after the crc table.
 */
START_TEST(torn_tail_is_cut_and_earlier_records_survive)
{
	static unsigned char d[4096];
	uint64_t la[3], lastpos, cut;
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	static const uint64_t at[] = {
		30, HDR, WREC_DATA(4096) + 100, WREC_SIZE(4096) - 1, 63, HDR + 2, WREC_DATA(4096)
	};

	fill(d, sizeof(d), 5);
	la[0] = append(w, REC_WRITE, 1, 0, sizeof(d), d, NULL);
	la[1] = append(w, REC_SIZE, 1, 1 << 20, 0, NULL, NULL);
	if (_i == 4)
		la[2] = append(w, REC_ZERO, 1, 0, 512, NULL, NULL);
	else
		la[2] = append(w, REC_WRITE, 1, 4096, sizeof(d), d, NULL);
	wlog_close(w);
	lastpos = LADDR_OFF(la[2]);
	cut = at[_i];
	seg_truncate(1, lastpos + cut);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 2);
	ck_assert_uint_eq(c.v[0].rec_laddr, la[0]);
	ck_assert_uint_eq(c.v[1].rec_laddr, la[1]);
	ck_assert_uint_eq(c.v[1].h.type, REC_SIZE);
	ck_assert_uint_eq(rs.records, 2);
	ck_assert_uint_eq(rs.bytes, lastpos - SEGHDR);
	ck_assert_uint_eq(rs.torn_bytes, cut);
	ck_assert_int_eq(seg_size(1), (int64_t)lastpos);
	ck_assert_uint_eq(wlog_tail(w), LADDR(1, lastpos));
	ck_assert_uint_eq(wlog_next_seq(w), 3);
	/* nothing valid followed the tear: no copy is kept */
	ck_assert_int_eq(cut_files(NULL), 0);
	ck_assert_uint_eq(append(w, REC_WRITE, 1, 0, 16, d, NULL), LADDR(1, lastpos));
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
	uint64_t seg1 = SEGHDR + REC1M_PER_SEG * WREC_SIZE(MiB);

	append_writes(w, N, MiB, la, NULL);
	for (int i = 0; i < N; i++) {
		uint32_t seg = (uint32_t)(i / REC1M_PER_SEG) + 1;
		ck_assert_msg(LADDR_SEG(la[i]) == seg, "record %d in segment %u, want %u",
		    i, LADDR_SEG(la[i]), seg);
		ck_assert_uint_eq(LADDR_OFF(la[i]), SEGHDR + (uint64_t)(i % REC1M_PER_SEG) * WREC_SIZE(MiB));
	}
	ck_assert_int_eq(seg_size(1), (int64_t)seg1);
	ck_assert_int_le(seg_size(1), (int64_t)WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(seg_size(2), (int64_t)seg1);
	ck_assert_int_eq(seg_size(3), (int64_t)(SEGHDR + 10 * WREC_SIZE(MiB)));
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
	ck_assert_uint_eq(rs.bytes, (uint64_t)N * WREC_SIZE(MiB));
	for (int i = 0; i < N; i++) {
		const char *why;
		ck_assert_uint_eq(c.v[i].rec_laddr, la[i]);
		ck_assert_uint_eq(c.v[i].h.seq, (uint64_t)i + 1);
		ck_assert_int_eq(wlog_read(w, la[i], 1, (uint64_t)i * MiB, buf, MiB, &why), 0);
		fill(want, MiB, 1000 + (uint64_t)i);
		assert_bytes_eq(buf, want, MiB, "1 MiB record");
	}
	ck_assert_uint_eq(wlog_tail(w), LADDR(3, SEGHDR + 10 * WREC_SIZE(MiB)));
	/* a record in a later segment is laid out like any other */
	fill(want, MiB, 1000 + 20);
	check_write_record_on_disk(2, LADDR_OFF(la[20]), want, MiB);
	/* appends go on in segment 3 */
	ck_assert_uint_eq(LADDR_SEG(append(w, REC_WRITE, 1, 0, MiB, buf, NULL)), 3);
	wlog_close(w);

	/* replay from a checkpoint inside segment 2 */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	c.n = 0;
	ck_assert_int_eq(log_replay(w, la[20], 21, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, N + 1 - 20);
	ck_assert_uint_eq(c.v[0].rec_laddr, la[20]);
	ck_assert_uint_eq(LADDR_SEG(c.v[c.n - 1].rec_laddr), 3);
	wlog_close(w);

	/* a checkpoint at the very end of a full segment continues into the next */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	c.n = 0;
	ck_assert_int_eq(log_replay(w, LADDR(1, seg1), REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, N + 1 - REC1M_PER_SEG);
	ck_assert_uint_eq(c.v[0].rec_laddr, la[REC1M_PER_SEG]);
	wlog_close(w);
	free(c.v);
	free(buf);
	free(want);
}
END_TEST

/*
 * Damage in a segment that is not the newest is corruption, not a torn tail:
 * -EUCLEAN with a message naming the segment, and nothing is cut.
 * _i: 0 = a flipped data bit, 1 = the segment cut short, 2 = a header bit,
 * 3 = a bit of a crc table entry, 4 = a data block rewritten along with its
 * table entry (only data_crc, the crc of the table, can tell).
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
		seg_flip_bit(1, LADDR_OFF(la[5]) + WREC_DATA(MiB) + 12345, 1);
		expect_applied = 5;
	} else if (_i == 1) {
		seg_truncate(1, (uint64_t)seg_size(1) - 100);
		expect_applied = REC1M_PER_SEG - 1;
	} else if (_i == 2) {
		seg_flip_bit(1, LADDR_OFF(la[9]) + offsetof(struct rec_header, disk_id), 2);
		expect_applied = 9;
	} else if (_i == 3) {
		seg_flip_bit(1, LADDR_OFF(la[7]) + HDR + 4 * 100 + 2, 6);	/* entry 100 of 256 */
		expect_applied = 7;
	} else {
		seg_rewrite_block_and_table(1, LADDR_OFF(la[11]), MiB, 200 * 4096 + 5);
		expect_applied = 11;
	}
	s1 = seg_size(1);
	s2 = seg_size(2);

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	rc = log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err));
	ck_assert_int_eq(rc, -EUCLEAN);
	ck_assert_msg(contains(err, "00000001") && contains(err, "corrupt"),
	    "message should name segment 00000001 as corrupt: '%s'", err);
	/* and say where: the damaged record's offset in the segment */
	{
		char at[32];
		snprintf(at, sizeof(at), "offset %llu:", (unsigned long long)LADDR_OFF(la[expect_applied]));
		ck_assert_msg(contains(err, at), "message should say '%s': '%s'", at, err);
	}
	if (_i != 1)
		ck_assert_msg(contains(err, "checksum"), "message should name a checksum: '%s'", err);
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
	ck_assert_uint_eq(append(w, REC_WRITE, 1, 0, MiB, buf, &h), LADDR(2, SEGHDR));
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
	ck_assert_uint_eq(c.v[1].rec_laddr, la);
	{
		unsigned char *got = malloc(REC_DATA_MAX);
		const char *why;
		ck_assert_int_eq(wlog_read(w, la, 0, 0, got, REC_DATA_MAX, &why), 0);
		assert_bytes_eq(got, big, REC_DATA_MAX, "16 MiB record");
		free(got);
	}
	wlog_close(w);
	free(c.v);
	free(big);
}
END_TEST

/* ---- read-time verification --------------------------------------------- */

/*
 * A REC_WRITE of len bytes (disk 3, unaligned disk offset so that blocks are
 * counted from the data's start, not from disk alignment) between two other
 * records; returns its address, the data in *data.
 */
#define RD_DISK		3
#define RD_OFF		(UINT64_C(1000000) * 4096 + 1234)
static uint64_t
record_between_neighbours(struct wlog *w, uint64_t len, unsigned char **data,
    uint64_t *before, uint64_t *after, unsigned char *nb)
{
	uint64_t la;

	*data = malloc(len);
	ck_assert_ptr_nonnull(*data);
	fill(*data, len, len);
	fill(nb, 5000, 4242);
	*before = append(w, REC_WRITE, RD_DISK, RD_OFF - 5000, 5000, nb, NULL);
	la = append(w, REC_WRITE, RD_DISK, RD_OFF, len, *data, NULL);
	*after = append(w, REC_WRITE, RD_DISK, RD_OFF + len, 5000, nb, NULL);
	return la;
}

/* The neighbours of the record above are untouched by its damage. */
static void
check_neighbours(struct wlog *w, uint64_t len, uint64_t before, uint64_t after, const unsigned char *nb)
{
	read_expect(w, before, RD_DISK, RD_OFF - 5000, 5000, nb, "record before");
	read_expect(w, after, RD_DISK, RD_OFF + len, 5000, nb, "record after");
}

/*
 * One damaged 4 KiB block of a record: every read that touches it is
 * -EBADMSG naming a checksum, every read of the record's other blocks returns
 * the right bytes.  The damage is a flipped data bit (at data byte `at`) or a
 * flipped bit in crc table entry `at`.
 */
static const struct {
	uint64_t	len;
	int		table;		/* at = a crc table entry, else a data byte */
	uint64_t	at;
} block_damage[] = {
	{ 5 * 4096 + 100, 0, 0 },			/* first byte of the first block */
	{ 5 * 4096 + 100, 0, 2 * 4096 + 4095 },		/* last byte of a middle block */
	{ 5 * 4096 + 100, 0, 3 * 4096 + 1234 },
	{ 5 * 4096 + 100, 0, 5 * 4096 + 99 },		/* last byte of the short last block */
	{ 5 * 4096 + 100, 0, 5 * 4096 },		/* first byte of the short last block */
	{ 3000, 0, 2999 },				/* a one-block record, read in one go */
	{ 4 * 4096, 0, 4 * 4096 - 1 },			/* a full last block */
	{ 5 * 4096 + 100, 1, 0 },
	{ 5 * 4096 + 100, 1, 3 },
	{ 5 * 4096 + 100, 1, 5 },			/* the short last block's entry */
	{ 3000, 1, 0 },
};

START_TEST(read_of_a_damaged_block_fails_and_other_blocks_read_fine)
{
	uint64_t len = block_damage[_i].len, at = block_damage[_i].at, la, before, after, blk;
	static unsigned char nb[5000];
	unsigned char *data;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	/* undamaged, every range reads back */
	check_ranges(w, la, RD_DISK, RD_OFF, data, len, 0, 0);
	if (block_damage[_i].table) {
		blk = at;
		seg_flip_bit(1, LADDR_OFF(la) + HDR + 4 * at + at % 4, (int)(at % 8));
	} else {
		blk = at / BLK;
		seg_flip_bit(1, LADDR_OFF(la) + WREC_DATA(len) + at, (int)(at % 8));
	}
	check_ranges(w, la, RD_DISK, RD_OFF, data, len, blk * BLK,
	    (blk + 1) * BLK < len ? (blk + 1) * BLK : len);
	check_neighbours(w, len, before, after, nb);
	wlog_close(w);
	free(data);
}
END_TEST

/* A damaged record header: every read of the record fails, whatever the field. */
START_TEST(read_of_a_record_with_a_damaged_header_always_fails)
{
	static const struct { const char *name; size_t off; } field[] = {
		{ "magic", offsetof(struct rec_header, magic) },
		{ "magic top byte", offsetof(struct rec_header, magic) + 3 },
		{ "type", offsetof(struct rec_header, type) },
		{ "flags", offsetof(struct rec_header, flags) },
		{ "seq", offsetof(struct rec_header, seq) },
		{ "disk_id", offsetof(struct rec_header, disk_id) },
		{ "offset", offsetof(struct rec_header, offset) + 1 },
		{ "offset top byte", offsetof(struct rec_header, offset) + 7 },
		{ "length", offsetof(struct rec_header, length) },
		{ "length top byte", offsetof(struct rec_header, length) + 7 },
		{ "data_crc", offsetof(struct rec_header, data_crc) + 2 },
		{ "reserved1", offsetof(struct rec_header, reserved1) },
		{ "reserved2", offsetof(struct rec_header, reserved2) + 5 },
		{ "reserved3", offsetof(struct rec_header, reserved3) },
		{ "hdr_crc", offsetof(struct rec_header, hdr_crc) },
		{ "hdr_crc top byte", offsetof(struct rec_header, hdr_crc) + 3 },
	};
	const uint64_t len = 2 * 4096 + 100;
	static const uint64_t rs[][2] = {	/* data ranges [s, e) */
		{ 0, 2 * 4096 + 100 }, { 0, 1 }, { 4096, 8192 }, { 5000, 5001 },
		{ 2 * 4096 + 99, 2 * 4096 + 100 }, { 4095, 4097 },
	};
	static unsigned char nb[5000];
	uint64_t la, before, after;
	unsigned char *data;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char what[160];

	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	for (size_t f = 0; f < sizeof(field) / sizeof(field[0]); f++) {
		for (int bit = 0; bit < 8; bit += 7) {
			seg_flip_bit(1, LADDR_OFF(la) + field[f].off, bit);
			for (size_t r = 0; r < sizeof(rs) / sizeof(rs[0]); r++) {
				snprintf(what, sizeof(what), "header field %s bit %d flipped, data [%llu, %llu)",
				    field[f].name, bit, (unsigned long long)rs[r][0], (unsigned long long)rs[r][1]);
				const char *why = read_expect(w, la, RD_DISK, RD_OFF + rs[r][0],
				    (size_t)(rs[r][1] - rs[r][0]), NULL, what);
				ck_assert_msg(contains(why, "checksum") || contains(why, "magic"),
				    "%s: reason '%s'", what, why);
			}
			check_neighbours(w, len, before, after, nb);
			/* undone, the record reads again: nothing was remembered */
			seg_flip_bit(1, LADDR_OFF(la) + field[f].off, bit);
			snprintf(what, sizeof(what), "header field %s restored", field[f].name);
			read_expect(w, la, RD_DISK, RD_OFF, len, data, what);
		}
	}
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * A read that is not what the record holds, or at an address that holds no
 * record: -EBADMSG with a reason, never a crash, never bytes.
 */
START_TEST(read_that_does_not_match_the_record_is_EBADMSG)
{
	const uint64_t len = 2 * 4096 + 100;
	static unsigned char nb[5000], small[100];
	uint64_t la, before, after, zla, sla, end;
	unsigned char *data;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	const char *why;
	int rc;

	read_cached = _i;	/* 1: the first read below caches the record, the others find it */

	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	zla = append(w, REC_ZERO, RD_DISK, RD_OFF, len, NULL, NULL);
	sla = append(w, REC_SIZE, RD_DISK, RD_OFF, 0, NULL, NULL);
	end = (uint64_t)seg_size(1);
	ck_assert_uint_eq(LADDR(1, end), wlog_tail(w));
	/* the right question is answered */
	read_expect(w, la, RD_DISK, RD_OFF, len, data, "whole record");
	read_expect(w, la, RD_DISK, RD_OFF + len, 0, data, "empty read at the end");

	/* another disk */
	read_expect(w, la, RD_DISK + 1, RD_OFF, len, NULL, "disk + 1");
	read_expect(w, la, 0, RD_OFF, 1, NULL, "disk 0");
	read_expect(w, la, RD_DISK | UINT64_C(1) << 32, RD_OFF, 1, NULL, "disk with a high bit");
	/* starting before the record's offset */
	read_expect(w, la, RD_DISK, RD_OFF - 1, 1, NULL, "the byte before");
	read_expect(w, la, RD_DISK, RD_OFF - 1, 2, NULL, "straddling the start");
	read_expect(w, la, RD_DISK, 0, 1, NULL, "disk offset 0");
	read_expect(w, la, RD_DISK, RD_OFF - 4096, len, NULL, "a block early");
	/* running past its end */
	read_expect(w, la, RD_DISK, RD_OFF, len + 1, NULL, "one byte too many");
	read_expect(w, la, RD_DISK, RD_OFF + len - 1, 2, NULL, "straddling the end");
	read_expect(w, la, RD_DISK, RD_OFF + len, 1, NULL, "the byte after");
	read_expect(w, la, RD_DISK, RD_OFF + len + 1, 0, NULL, "an empty read past the end");
	read_expect(w, la, RD_DISK, RD_OFF - 1, 0, NULL, "an empty read before the start");
	read_expect(w, la, RD_DISK, RD_OFF + len + 4096, 1, NULL, "a block after");
	read_expect(w, la, RD_DISK, RD_OFF + 1, len, NULL, "shifted by one");
	read_expect(w, la, RD_DISK, UINT64_MAX, 1, NULL, "disk offset UINT64_MAX");
	read_expect(w, la, RD_DISK, UINT64_MAX - 1, 2, NULL, "disk offset wrapping");
	/* lengths that wrap: refused before a byte is written */
	why = NULL;
	rc = wlog_read(w, la, RD_DISK, RD_OFF, small, SIZE_MAX, &why);
	ck_assert_int_eq(rc, -EBADMSG);
	ck_assert_ptr_nonnull(why);
	why = NULL;
	rc = wlog_read(w, la, RD_DISK, RD_OFF + 10, small, SIZE_MAX - 5, &why);
	ck_assert_int_eq(rc, -EBADMSG);
	ck_assert_ptr_nonnull(why);

	/* records that hold no data */
	read_expect(w, zla, RD_DISK, RD_OFF, 1, NULL, "a ZERO record");
	read_expect(w, sla, RD_DISK, RD_OFF, 1, NULL, "a SIZE record");
	read_expect(w, sla, RD_DISK, RD_OFF, 0, NULL, "a SIZE record, empty read");
	/* addresses that are not a record's start */
	read_expect(w, la + 1, RD_DISK, RD_OFF, 1, NULL, "one byte into the header");
	read_expect(w, la + HDR, RD_DISK, RD_OFF, 1, NULL, "the crc table");
	read_expect(w, la + WREC_DATA(len), RD_DISK, RD_OFF, 1, NULL, "the data");
	read_expect(w, LADDR(1, 0), RD_DISK, RD_OFF, 1, NULL, "the segment header");
	/* segments that do not exist */
	read_expect(w, LADDR(2, SEGHDR), RD_DISK, RD_OFF, 1, NULL, "segment 2");
	read_expect(w, LADDR(0, LADDR_OFF(la)), RD_DISK, RD_OFF, 1, NULL, "segment 0");
	read_expect(w, LADDR(WLOG_SEGMENTS_MAX - 1, SEGHDR), RD_DISK, RD_OFF, 1, NULL, "the last segment number");
	read_expect(w, LADDR(WLOG_SEGMENTS_MAX, SEGHDR), RD_DISK, RD_OFF, 1, NULL, "segment WLOG_SEGMENTS_MAX");
	read_expect(w, LADDR(0xffffff, LADDR_OFF(la)), RD_DISK, RD_OFF, 1, NULL, "segment 0xffffff");
	read_expect(w, UINT64_MAX, RD_DISK, RD_OFF, 1, NULL, "log address UINT64_MAX");
	/* past the segment's end */
	read_expect(w, LADDR(1, end), RD_DISK, RD_OFF, 1, NULL, "the tail");
	read_expect(w, LADDR(1, end - 10), RD_DISK, RD_OFF, 1, NULL, "10 bytes before the end");
	read_expect(w, LADDR(1, end + 4096), RD_DISK, RD_OFF, 1, NULL, "past the end");
	read_expect(w, LADDR(1, LADDR_OFF_MASK), RD_DISK, RD_OFF, 1, NULL, "the segment's last address");

	/* all that left the record readable */
	read_expect(w, la, RD_DISK, RD_OFF, len, data, "whole record, afterwards");
	check_neighbours(w, len, before, after, nb);
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * A record whose end is missing from its segment (a torn tail that replay has
 * not cut yet): the blocks that are not there cannot be read.  _i: where the
 * file ends: 0 = inside the header, 1 = inside the crc table, 2 = right after
 * it, 3 = inside block 1 (of 3), 4 = one byte short.
 */
START_TEST(read_of_a_record_cut_short_is_EBADMSG_for_the_missing_part)
{
	const uint64_t len = 3 * 4096;
	const uint64_t at[] = { 40, HDR + 6, WREC_DATA(len), WREC_DATA(len) + 5000, WREC_SIZE(len) - 1 };
	static unsigned char d[3 * 4096];
	uint64_t la, la0, keep;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char what[64];

	fill(d, sizeof(d), 31);
	la0 = append(w, REC_WRITE, 1, 0, 100, d, NULL);
	la = append(w, REC_WRITE, 2, 8192, len, d, NULL);
	seg_truncate(1, LADDR_OFF(la) + at[_i]);
	keep = at[_i] > WREC_DATA(len) ? (at[_i] - WREC_DATA(len)) / BLK : 0;	/* whole blocks left */
	for (uint64_t b = 0; b < 3; b++) {
		snprintf(what, sizeof(what), "block %llu", (unsigned long long)b);
		if (b < keep) {
			read_expect(w, la, 2, 8192 + b * BLK, BLK, d + b * BLK, what);
		} else {
			/* missing, not damaged: the reason says the segment ends first */
			const char *why = read_expect(w, la, 2, 8192 + b * BLK, BLK, NULL, what);
			ck_assert_msg(contains(why, "end") && !contains(why, "checksum"),
			    "%s: reason '%s' should say the segment ends", what, why);
		}
	}
	read_expect(w, la, 2, 8192, len, NULL, "the whole record");
	read_expect(w, la, 2, 8192 + len - 1, 1, NULL, "its last byte");
	read_expect(w, la0, 1, 0, 100, d, "the record before");
	wlog_close(w);
}
END_TEST

/*
 * Every (start, end) among block edges and their neighbours, of records of
 * 100 bytes, one block, one block + 1, two blocks and 3 blocks + 100: each
 * reads back exactly its bytes, including reads inside the last short block.
 */
START_TEST(unaligned_reads_return_exactly_the_bytes_asked_for)
{
	static const uint64_t lens[] = { 100, 4096, 4097, 8192, 3 * 4096 + 100, 1 };
	uint64_t la[6], off = 7 * 4096 + 5;
	unsigned char *data[6];
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	read_cached = _i;
	for (int i = 0; i < 6; i++) {
		data[i] = malloc(lens[i]);
		ck_assert_ptr_nonnull(data[i]);
		fill(data[i], lens[i], 50 + (uint64_t)i);
		la[i] = append(w, REC_WRITE, 4, off, lens[i], data[i], NULL);
		off += lens[i];
	}
	off = 7 * 4096 + 5;
	for (int i = 0; i < 6; i++) {
		check_ranges(w, la[i], 4, off, data[i], lens[i], 0, 0);
		off += lens[i];
	}
	/* and the same once the log is reopened (nothing cached) */
	wlog_close(w);
	{
		struct collector c = { 0 };
		struct wlog_replay_stats rs;
		w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
		ck_assert_int_eq(c.n, 6);
		free(c.v);
	}
	check_ranges(w, la[4], 4, 7 * 4096 + 5 + 100 + 4096 + 4097 + 8192, data[4], lens[4], 0, 0);
	wlog_close(w);
	for (int i = 0; i < 6; i++)
		free(data[i]);
}
END_TEST

/*
 * An 8 MiB record: its crc table (8 KiB) is longer than what a read takes in
 * one go with the header.  Reads at its end, in its middle, across the edge of
 * that first read, and then with a damaged table entry and data block far in.
 */
START_TEST(large_record_reads_at_its_end_and_middle)
{
	const uint64_t len = 8 * MiB, off = 12345, nblk = len / BLK;
	unsigned char *data = malloc(len), small[100];
	uint64_t la;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	/* data ranges [s, e) */
	const uint64_t ok[][2] = {
		{ 0, len }, { len - 1, len }, { len - 100, len }, { len - BLK, len }, { len - 5000, len },
		{ 4 * MiB - 1, 4 * MiB + 1 }, { 4 * MiB, 4 * MiB + BLK }, { 3 * MiB + 7, 4 * MiB + 7 },
		{ 1023 * BLK - 10, 1024 * BLK + 10 },	/* blocks 1022..1024: table slice in the first read */
		{ 1024 * BLK - 10, 1025 * BLK + 10 },	/* 1023..1025: just past it */
		{ 1025 * BLK, 1026 * BLK }, { 0, 1 }, { 10, 100000 },
		/* table slices read on their own: 64, 65 and 200 entries */
		{ 1100 * BLK, 1164 * BLK }, { 1100 * BLK, 1165 * BLK }, { 1100 * BLK + 1, 1300 * BLK - 1 },
	};
	char what[96];

	read_cached = _i;	/* too long a table to be cached: the same answers either way */
	ck_assert_ptr_nonnull(data);
	fill(data, len, 8);
	fill(small, sizeof(small), 9);
	append(w, REC_WRITE, 9, 0, sizeof(small), small, NULL);
	la = append(w, REC_WRITE, 9, off, len, data, NULL);
	append(w, REC_WRITE, 9, off + len, sizeof(small), small, NULL);
	check_write_record_on_disk(1, LADDR_OFF(la), data, len);
	for (size_t r = 0; r < sizeof(ok) / sizeof(ok[0]); r++) {
		snprintf(what, sizeof(what), "data [%llu, %llu)", (unsigned long long)ok[r][0],
		    (unsigned long long)ok[r][1]);
		read_expect(w, la, 9, off + ok[r][0], (size_t)(ok[r][1] - ok[r][0]), data + ok[r][0], what);
	}

	/* the last block's table entry, the first entry past the first read, and a data bit in block 1500 */
	seg_flip_bit(1, LADDR_OFF(la) + HDR + 4 * (nblk - 1) + 1, 0);
	seg_flip_bit(1, LADDR_OFF(la) + HDR + 4 * 1025 + 3, 7);
	seg_flip_bit(1, LADDR_OFF(la) + WREC_DATA(len) + 1500 * BLK + 777, 4);
	{
		const uint64_t bad[][2] = {
			{ 0, len }, { len - 1, len }, { len - 100, len }, { len - BLK, len },
			{ len - 5000, len - BLK + 1 }, { 1025 * BLK, 1025 * BLK + 1 }, { 1400 * BLK, 1600 * BLK },
			{ 1024 * BLK - 10, 1025 * BLK + 10 }, { 1500 * BLK + 4095, 1500 * BLK + 4097 },
			{ 1499 * BLK + 4095, 1500 * BLK + 1 }, { 3 * MiB, 7 * MiB },
		};
		const uint64_t good[][2] = {
			{ len - 5000, len - BLK }, { 1024 * BLK, 1025 * BLK }, { 1026 * BLK, 1026 * BLK + 7 },
			{ 1023 * BLK - 10, 1024 * BLK + 10 }, { 1499 * BLK, 1500 * BLK },
			{ 1501 * BLK, 1502 * BLK + 3 }, { 4 * MiB - 1, 4 * MiB + 1 }, { 0, 1025 * BLK },
			{ 1026 * BLK, 1500 * BLK }, { 1501 * BLK, len - BLK },
			{ 1100 * BLK, 1164 * BLK }, { 1100 * BLK, 1165 * BLK }, { 1100 * BLK + 1, 1300 * BLK - 1 },
		};
		for (size_t r = 0; r < sizeof(bad) / sizeof(bad[0]); r++) {
			snprintf(what, sizeof(what), "damaged, data [%llu, %llu)", (unsigned long long)bad[r][0],
			    (unsigned long long)bad[r][1]);
			const char *why = read_expect(w, la, 9, off + bad[r][0],
			    (size_t)(bad[r][1] - bad[r][0]), NULL, what);
			ck_assert_msg(contains(why, "checksum"), "%s: reason '%s'", what, why);
		}
		for (size_t r = 0; r < sizeof(good) / sizeof(good[0]); r++) {
			snprintf(what, sizeof(what), "damaged elsewhere, data [%llu, %llu)",
			    (unsigned long long)good[r][0], (unsigned long long)good[r][1]);
			read_expect(w, la, 9, off + good[r][0], (size_t)(good[r][1] - good[r][0]),
			    data + good[r][0], what);
		}
	}
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * With trust_complete, replay checks the data of a segment's last record only:
 * a damaged crc table entry in a record followed by others is applied (and
 * then caught by the read), one in the last record is a torn tail.  Without
 * trust_complete the same log is cut at the damaged record.
 * _i: 0 = record 2 of 4 damaged, 1 = record 4 of 4.
 */
START_TEST(trust_complete_replay_verifies_only_the_last_record)
{
	enum { N = 4, LEN = 9000 };
	uint64_t la[N], pos, oldsize;
	static unsigned char data[N * LEN];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	int victim = _i == 0 ? 1 : N - 1;
	char err[512];

	append_writes(w, N, LEN, la, data);
	wlog_close(w);
	pos = LADDR_OFF(la[victim]);
	oldsize = (uint64_t)seg_size(1);
	seg_flip_bit(1, pos + HDR + 4 * 1 + 2, 1);	/* entry 1: data bytes [4096, 8192) */

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay_trusting(w, wlog_first_laddr(), 1, 1, &c, &rs, err, sizeof(err)), 0);
	if (_i == 0) {
		ck_assert_int_eq(c.n, N);
		ck_assert_uint_eq(rs.torn_bytes, 0);
		ck_assert_int_eq(seg_size(1), (int64_t)oldsize);
		/* the read still refuses the damaged block, and only it */
		const char *why = read_expect(w, la[victim], 1, (uint64_t)victim * LEN + 4096, 1, NULL,
		    "damaged block of a trusted record");
		ck_assert_msg(contains(why, "checksum"), "reason '%s'", why);
		read_expect(w, la[victim], 1, (uint64_t)victim * LEN, 4096, data + victim * LEN,
		    "undamaged block of a trusted record");
		read_expect(w, la[victim], 1, (uint64_t)victim * LEN + 8192, LEN - 8192,
		    data + victim * LEN + 8192, "undamaged last block of a trusted record");
		wlog_close(w);

		/* after a machine crash every record is checked: cut there */
		c.n = 0;
		w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
		ck_assert_int_eq(c.n, victim);
		ck_assert_uint_eq(rs.torn_bytes, oldsize - pos);
		ck_assert_int_eq(seg_size(1), (int64_t)pos);
	} else {
		ck_assert_int_eq(c.n, victim);
		ck_assert_uint_eq(rs.torn_bytes, oldsize - pos);
		ck_assert_int_eq(seg_size(1), (int64_t)pos);
		ck_assert_uint_eq(wlog_tail(w), la[victim]);
	}
	wlog_close(w);
	free(c.v);
}
END_TEST

/*
 * Checksums computed before the append (outside the store's log lock) make
 * the same record as wlog_append(); sums for another length are not used,
 * so a write cut short by its caller still carries its own data's crcs.
 */
START_TEST(append_with_sums_computed_beforehand_writes_the_same_record)
{
	static const uint64_t lens[] = { 1, BLK - 1, BLK, 3 * BLK, 3 * BLK + 5, MiB };
	unsigned char *data = malloc(MiB);
	struct wlog_sums *sums = malloc(sizeof(*sums));
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	uint64_t la[2 * 6 + 2];
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	int n = 0;

	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(sums);
	fill(data, MiB, 5);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct rec_header h = { .type = REC_WRITE, .disk_id = 1, .offset = 0, .length = lens[i] };
		struct rec_header plain;

		wlog_sums_compute(sums, data, lens[i]);
		ck_assert_uint_eq(sums->length, lens[i]);
		ck_assert_int_eq(wlog_append_sums(w, &h, data, sums, &la[n++]), 0);
		la[n++] = append(w, REC_WRITE, 1, 0, lens[i], data, &plain);
		ck_assert_uint_eq(h.data_crc, plain.data_crc);
		check_write_record_on_disk(1, LADDR_OFF(la[n - 2]), data, lens[i]);
	}
	/* sums of 3 blocks + 5 bytes given for a record cut to 2 blocks + 1 byte */
	{
		struct rec_header h = { .type = REC_WRITE, .disk_id = 1, .offset = 0, .length = 2 * BLK + 1 };
		wlog_sums_compute(sums, data, 3 * BLK + 5);
		ck_assert_int_eq(wlog_append_sums(w, &h, data, sums, &la[n++]), 0);
		check_write_record_on_disk(1, LADDR_OFF(la[n - 1]), data, 2 * BLK + 1);
	}
	/* a REC_ZERO ignores sums */
	{
		struct rec_header h = { .type = REC_ZERO, .disk_id = 1, .offset = 0, .length = BLK };
		ck_assert_int_eq(wlog_append_sums(w, &h, NULL, sums, &la[n++]), 0);
		ck_assert_uint_eq(h.data_crc, 0);
	}
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	/* every record replays with every block verified */
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, n);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	for (int i = 0; i < n; i++)
		ck_assert_uint_eq(c.v[i].rec_laddr, la[i]);
	wlog_close(w);
	free(c.v);
	free(sums);
	free(data);
}
END_TEST


/* ---- reads through the record cache (wlog_read_cached) --------------------- */

/*
 * The damage of block_damage[_i] after the record was read whole through the
 * cache: a damaged data block still fails every read that touches it, the
 * other blocks read right.  A table entry damaged after the table was cached
 * may go unseen by a cached read (its data is right), but never gives wrong
 * bytes, and wlog_read(), which reads the disk, still sees it.
 */
START_TEST(cached_read_checks_every_data_block_and_never_serves_wrong_bytes)
{
	uint64_t len = block_damage[_i].len, at = block_damage[_i].at, la, before, after, blk;
	static unsigned char nb[5000];
	unsigned char *data, *got;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	read_cached = 1;
	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	check_ranges(w, la, RD_DISK, RD_OFF, data, len, 0, 0);
	blk = block_damage[_i].table ? at : at / BLK;
	if (block_damage[_i].table)
		seg_flip_bit(1, LADDR_OFF(la) + HDR + 4 * at + at % 4, (int)(at % 8));
	else
		seg_flip_bit(1, LADDR_OFF(la) + WREC_DATA(len) + at, (int)(at % 8));
	if (!block_damage[_i].table) {
		check_ranges(w, la, RD_DISK, RD_OFF, data, len, blk * BLK,
		    (blk + 1) * BLK < len ? (blk + 1) * BLK : len);
	} else {
		got = malloc(len);
		ck_assert_ptr_nonnull(got);
		for (uint64_t s = 0; s < len; s += BLK / 2) {
			uint64_t n = len - s < BLK ? len - s : BLK;
			const char *why = NULL;
			int rc = wlog_read_cached(w, la, RD_DISK, RD_OFF + s, got, n, &why);
			ck_assert_msg(rc == 0 || (rc == -EBADMSG && contains(why, "checksum")),
			    "table entry %llu damaged: cached read of [%llu, +%llu): %d (%s)",
			    (unsigned long long)at, (unsigned long long)s, (unsigned long long)n, rc,
			    why ? why : "no reason");
			if (rc == 0)
				assert_bytes_eq(got, data + s, n, "cached read after table damage");
		}
		free(got);
		read_cached = 0;
		check_ranges(w, la, RD_DISK, RD_OFF, data, len, blk * BLK,
		    (blk + 1) * BLK < len ? (blk + 1) * BLK : len);
		read_cached = 1;
	}
	check_neighbours(w, len, before, after, nb);
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * A record read once through the cache: its header is not read again by a
 * cached read (one pread for the data), so a header damaged on disk since
 * goes unseen there; wlog_read(), what hcowctl check uses, still refuses it.
 * Before the record was cached, a cached read refuses it too.
 */
START_TEST(cached_read_keeps_the_header_it_checked_and_check_still_sees_the_disk)
{
	const uint64_t len = 5 * 4096 + 100;
	static unsigned char nb[5000];
	uint64_t la, before, after, la2;
	unsigned char *data;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	la2 = append(w, REC_WRITE, RD_DISK, RD_OFF + 2 * len, len, data, NULL);
	read_cached = 1;
	read_expect(w, la, RD_DISK, RD_OFF + 3 * BLK, BLK, data + 3 * BLK, "first cached read");
	seg_flip_bit(1, LADDR_OFF(la) + offsetof(struct rec_header, offset), 2);
	seg_flip_bit(1, LADDR_OFF(la2) + offsetof(struct rec_header, offset), 2);
	read_expect(w, la, RD_DISK, RD_OFF + BLK, 2 * BLK, data + BLK, "cached, header damaged since");
	read_expect(w, la, RD_DISK, RD_OFF, len, data, "cached, whole record");
	/* the cache answers only what the record holds */
	read_expect(w, la, RD_DISK + 1, RD_OFF, BLK, NULL, "cached, another disk");
	read_expect(w, la, RD_DISK, RD_OFF + len - 1, 2, NULL, "cached, past its end");
	/* the other record was never read: its damaged header is seen */
	read_expect(w, la2, RD_DISK, RD_OFF + 2 * len + BLK, BLK, NULL, "never cached, header damaged");
	read_cached = 0;
	ck_assert(contains(read_expect(w, la, RD_DISK, RD_OFF + BLK, BLK, NULL, "uncached"), "checksum"));
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * A table that does not match its header's data_crc is not cached: every
 * read of the record goes to the disk and checks it again, so the blocks
 * whose entries are right read, the damaged one fails, and a header damaged
 * later is seen.
 */
START_TEST(record_with_a_damaged_table_is_not_cached)
{
	const uint64_t len = 5 * 4096 + 100;
	static unsigned char nb[5000];
	uint64_t la, before, after;
	unsigned char *data;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	la = record_between_neighbours(w, len, &data, &before, &after, nb);
	seg_flip_bit(1, LADDR_OFF(la) + HDR + 4 * 3, 1);
	read_cached = 1;
	read_expect(w, la, RD_DISK, RD_OFF + 4 * BLK, BLK, data + 4 * BLK, "block 4");
	read_expect(w, la, RD_DISK, RD_OFF + 1 * BLK, BLK, data + 1 * BLK, "block 1");
	read_expect(w, la, RD_DISK, RD_OFF + 3 * BLK, BLK, NULL, "block 3, its entry damaged");
	seg_flip_bit(1, LADDR_OFF(la) + offsetof(struct rec_header, length), 0);
	read_expect(w, la, RD_DISK, RD_OFF + 4 * BLK, BLK, NULL, "block 4, header damaged since");
	wlog_close(w);
	free(data);
}
END_TEST

/*
 * wlog_release() gives a segment's records back: a cached read of one of them
 * fails as an uncached one does (nothing of the segment is left to read),
 * records of the other segments still read.
 */
START_TEST(records_of_a_released_segment_are_forgotten)
{
	const int n = REC1M_PER_SEG + 2;
	uint64_t la[REC1M_PER_SEG + 2];
	unsigned char *data = malloc((size_t)n * MiB);
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	ck_assert_ptr_nonnull(data);
	append_writes(w, n, MiB, la, data);
	ck_assert_uint_eq(LADDR_SEG(la[0]), 1);
	ck_assert_uint_eq(LADDR_SEG(la[n - 1]), 2);
	read_cached = 1;
	read_expect(w, la[0], 1, 5 * BLK, BLK, data + 5 * BLK, "segment 1, before release");
	read_expect(w, la[n - 1], 1, (uint64_t)(n - 1) * MiB + 5 * BLK, BLK,
	    data + (size_t)(n - 1) * MiB + 5 * BLK, "segment 2");
	ck_assert_int_eq(wlog_release(w, 1), 0);
	read_expect(w, la[0], 1, 5 * BLK, BLK, NULL, "segment 1, released");
	read_expect(w, la[n - 1], 1, (uint64_t)(n - 1) * MiB + 5 * BLK, BLK,
	    data + (size_t)(n - 1) * MiB + 5 * BLK, "segment 2, after segment 1 was released");
	wlog_close(w);
	free(data);
}
END_TEST

/* ---- reused segment files (log format v3) ------------------------------- */

static void
spare_path(uint32_t segno, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%08x.spare", tdir, segno);
}

/* Inode of a file in the log dir (0 if there is none). */
static uint64_t
file_ino(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (uint64_t)sb.st_ino : 0;
}

static uint64_t
seg_ino(uint32_t segno)
{
	char p[256];
	seg_path(segno, p, sizeof(p));
	return file_ino(p);
}

static int64_t
spare_size(uint32_t segno)
{
	char p[256];
	spare_path(segno, p, sizeof(p));
	return file_size(p);
}

/* Append one REC_WRITE of len bytes of disk 1 at doff, data seeded by seed. */
static uint64_t
append_one(struct wlog *w, uint64_t doff, size_t len, uint64_t seed)
{
	unsigned char *buf = malloc(len);
	uint64_t la;

	ck_assert_ptr_nonnull(buf);
	fill(buf, len, seed);
	la = append(w, REC_WRITE, 1, doff, len, buf, NULL);
	free(buf);
	return la;
}

/*
 * A log whose segment 4 is the reused file of segment 1: segments 1..3 full
 * of 1 MiB records (la[0..45), seeds 1000 + i), segment 1 released (its
 * file a spare), and record 45 the first of segment 4.  *old_ino: segment
 * 1's file; *old_size: its size.  The log stays open.
 */
enum { REUSE_N = 3 * REC1M_PER_SEG + 1 };
static struct wlog *
reused_log(uint64_t *la, uint64_t *old_ino, int64_t *old_size)
{
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	for (int i = 0; i < 2 * REC1M_PER_SEG + 1; i++)
		la[i] = append_one(w, (uint64_t)i * MiB, MiB, 1000 + (uint64_t)i);
	*old_ino = seg_ino(1);
	*old_size = seg_size(1);
	ck_assert_int_eq(wlog_release(w, 1), 0);
	for (int i = 2 * REC1M_PER_SEG + 1; i < REUSE_N; i++)
		la[i] = append_one(w, (uint64_t)i * MiB, MiB, 1000 + (uint64_t)i);
	ck_assert_uint_eq(LADDR_SEG(la[REUSE_N - 1]), 4);
	return w;
}

/*
 * Releasing a segment keeps its file as a spare (the segment is its header,
 * as when it was cut down); the next roll makes the new segment in that
 * same file, with a version 3 header naming where the previous one ends.
 */
START_TEST(released_segment_becomes_a_spare_and_the_next_roll_reuses_its_file)
{
	uint64_t la[2 * REC1M_PER_SEG + 2];
	unsigned char *buf = malloc(MiB), *want = malloc(MiB);
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	struct seg_header before, after;
	uint64_t ino1, seg1 = SEGHDR + REC1M_PER_SEG * WREC_SIZE(MiB);
	const char *why;

	append_writes(w, 2 * REC1M_PER_SEG + 1, MiB, la, NULL);
	ck_assert_uint_eq(LADDR_SEG(la[2 * REC1M_PER_SEG]), 3);
	ino1 = seg_ino(1);
	seg_pread(1, &before, sizeof(before), 0);
	ck_assert_uint_eq(before.version, 3);
	ck_assert_uint_eq(before.prev_end, 0);
	ck_assert_int_eq(wlog_spare_bytes(w), 0);
	ck_assert_int_eq(wlog_release(w, 1), 0);
	/* the segment is its header, the same bytes; its old file is the spare */
	ck_assert_int_eq(seg_size(1), (int64_t)SEGHDR);
	seg_pread(1, &after, sizeof(after), 0);
	ck_assert_mem_eq(&after, &before, sizeof(before));
	ck_assert_int_eq(spare_size(1), (int64_t)seg1);
	{
		char p[256];
		spare_path(1, p, sizeof(p));
		ck_assert_uint_eq(file_ino(p), ino1);
	}
	ck_assert_uint_ne(seg_ino(1), ino1);
	ck_assert_int_eq(wlog_segment_bytes(w, 1), (int64_t)SEGHDR);
	ck_assert_uint_eq(wlog_spare_bytes(w), seg1);
	ck_assert_uint_eq(wlog_disk_bytes(w), wlog_size(w) - (seg1 - SEGHDR));
	/* releasing it again changes nothing */
	ck_assert_int_eq(wlog_release(w, 1), 0);
	ck_assert_uint_eq(wlog_spare_bytes(w), seg1);

	/* fill segment 3; the next record makes segment 4 in the spare */
	for (int i = 1; i < REC1M_PER_SEG; i++)
		append_one(w, 0, MiB, 7);
	ck_assert_int_eq(seg_size(4), -1);
	la[2 * REC1M_PER_SEG + 1] = append_one(w, 5 * MiB, MiB, 77);
	ck_assert_uint_eq(la[2 * REC1M_PER_SEG + 1], LADDR(4, SEGHDR));
	ck_assert_uint_eq(seg_ino(4), ino1);
	ck_assert_int_eq(spare_size(1), -1);
	ck_assert_int_eq(seg_size(4), (int64_t)seg1);	/* overwritten in place, not grown */
	seg_pread(4, &after, sizeof(after), 0);
	ck_assert_uint_eq(after.version, LOG_FORMAT_VERSION);
	ck_assert_uint_eq(after.segno, 4);
	ck_assert_uint_eq(after.prev_end, seg1);
	ck_assert_int_eq(wlog_segment_bytes(w, 3), (int64_t)seg1);
	ck_assert_int_eq(wlog_segment_bytes(w, 4), (int64_t)(SEGHDR + WREC_SIZE(MiB)));
	/* what is not yet overwritten counts as spare; an end marker follows the record */
	ck_assert_uint_eq(wlog_spare_bytes(w), seg1 - SEGHDR - WREC_SIZE(MiB));
	{
		struct rec_header m;
		seg_pread(4, &m, sizeof(m), SEGHDR + WREC_SIZE(MiB));
		ck_assert_uint_eq(m.magic, REC_MAGIC);
		ck_assert_uint_eq(m.type, REC_END);
		ck_assert_uint_eq(m.seq, 3 * REC1M_PER_SEG + 2);	/* the next record's */
		ck_assert_uint_eq(m.hdr_crc, hdr_crc_of(&m));
	}
	ck_assert_int_eq(wlog_read(w, la[2 * REC1M_PER_SEG + 1], 1, 5 * MiB, buf, MiB, &why), 0);
	fill(want, MiB, 77);
	assert_bytes_eq(buf, want, MiB, "record in the reused file");
	/* the pool is empty: the next release makes a spare again, the next roll a new file */
	ck_assert_int_eq(wlog_release(w, 2), 0);
	ck_assert_int_eq(spare_size(2), (int64_t)seg1);
	wlog_close(w);
	free(buf);
	free(want);
}
END_TEST

/*
 * Stale records of the reused file's earlier life after the tail are never
 * replayed.  _i: 0 = the end marker as the append left it; 1 = the marker
 * lost (a power cut), the stale record it covered is there; 2 = the marker
 * torn (garbage); 3 = the second new record made it to disk but the first
 * was lost (its old bytes are back): replay ends at the first, and a first
 * open cuts the second too, which could otherwise come back after a second
 * power cut.  Takeovers (trust_complete) leave stale bytes alone.
 */
START_TEST(stale_records_after_the_tail_are_not_replayed)
{
	uint64_t la[REUSE_N + 2], ino1, end;
	int64_t old_size;
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = reused_log(la, &ino1, &old_size);
	uint64_t from = la[REC1M_PER_SEG], from_seq = REC1M_PER_SEG + 1;
	size_t want_n;
	char err[512];
	unsigned char stale[HDR];

	la[REUSE_N] = append_one(w, 0, 8192, 5);	/* short records: stale 1 MiB ones behind */
	la[REUSE_N + 1] = append_one(w, 8192, 8192, 6);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	end = LADDR_OFF(la[REUSE_N + 1]) + WREC_SIZE(8192);
	wlog_close(w);
	ck_assert_int_eq(seg_size(4), old_size);
	want_n = REUSE_N + 2 - REC1M_PER_SEG;
	/* the header of a stale record of the earlier life, beyond what was overwritten */
	seg_pread(4, stale, HDR, SEGHDR + 2 * WREC_SIZE(MiB));
	ck_assert_uint_eq(((struct rec_header *)(void *)stale)->seq, 3);
	if (_i == 1) {
		/* put the header of that stale record where the marker is */
		seg_pwrite(4, stale, HDR, end);
	} else if (_i == 2) {
		seg_flip_bit(4, end + 20, 3);
	} else if (_i == 3) {
		seg_pwrite(4, stale, HDR, LADDR_OFF(la[REUSE_N]));
		end = LADDR_OFF(la[REUSE_N]);
		want_n -= 2;	/* the second record is on disk, but after a lost one */
	}

	/* a takeover: nothing is cut but a torn record (_i == 2: the garbage after the end) */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay_trusting(w, from, from_seq, 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, want_n);
	ck_assert_uint_eq(wlog_tail(w), LADDR(4, end));
	ck_assert_int_eq(seg_size(4), _i == 2 ? (int64_t)end : old_size);
	ck_assert_uint_eq(rs.torn_bytes, _i == 2 ? (uint64_t)old_size - end : 0);
	ck_assert_uint_eq(rs.stale_bytes, 0);
	for (size_t k = 0; k < c.n; k++)
		ck_assert_uint_eq(c.v[k].h.seq, from_seq + k);
	ck_assert_uint_eq(wlog_size(w), 3 * SEGHDR + 2 * REC1M_PER_SEG * WREC_SIZE(MiB) + end);
	wlog_close(w);
	if (_i == 2) {
		ck_assert_int_eq(cut_files(NULL), 0);	/* no record of this life after it */
		goto out;
	}

	/* a first open: every byte after the end goes, durably */
	c.n = 0;
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, from, from_seq, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, want_n);
	ck_assert_int_eq(seg_size(4), (int64_t)end);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(rs.stale_bytes, (uint64_t)old_size - end);
	ck_assert_int_eq(cut_files(NULL), 0);
	ck_assert_uint_eq(wlog_spare_bytes(w), 0);
	/* appends continue at the end */
	ck_assert_uint_eq(append_one(w, 0, 8192, 9), LADDR(4, end));
	wlog_close(w);
out:
	free(c.v);
}
END_TEST

/*
 * A reused file that was filled and sealed has stale bytes after its
 * records (here an end marker and the last 1 MiB record of its earlier
 * life); replay crosses it by the next header's prev_end.  Without that,
 * the marker would be corruption in a sealed segment.
 */
START_TEST(replay_crosses_a_reused_sealed_segment_at_its_recorded_end)
{
	uint64_t la[REUSE_N + REC1M_PER_SEG], ino1, end4;
	int64_t old_size;
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = reused_log(la, &ino1, &old_size);
	char err[512];
	int n = REUSE_N;
	uint64_t big;
	unsigned char *buf = malloc(2 * MiB), *want = malloc(2 * MiB);
	const char *why;

	/* 13 more 1 MiB records: segment 4 holds 14; a 2 MiB one does not fit, so rolls */
	for (int i = 0; i < REC1M_PER_SEG - 2; i++, n++)
		la[n] = append_one(w, (uint64_t)n * MiB, MiB, 1000 + (uint64_t)n);
	end4 = SEGHDR + (REC1M_PER_SEG - 1) * WREC_SIZE(MiB);
	ck_assert_uint_eq(LADDR_OFF(wlog_tail(w)), end4);
	big = append_one(w, 0, 2 * MiB, 4242);
	ck_assert_uint_eq(big, LADDR(5, SEGHDR));
	ck_assert_int_eq(seg_size(4), old_size);
	ck_assert_int_eq(wlog_segment_bytes(w, 4), (int64_t)end4);
	{
		struct seg_header sh;
		seg_pread(5, &sh, sizeof(sh), 0);
		ck_assert_uint_eq(sh.prev_end, end4);
	}
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, n - REC1M_PER_SEG + 1);
	ck_assert_uint_eq(c.v[c.n - 1].rec_laddr, big);
	ck_assert_uint_eq(c.v[c.n - 2].rec_laddr, la[n - 1]);
	ck_assert_int_eq(seg_size(4), old_size);	/* a sealed segment is never cut */
	ck_assert_int_eq(wlog_segment_bytes(w, 4), (int64_t)end4);
	ck_assert_int_eq(wlog_read(w, la[n - 1], 1, (uint64_t)(n - 1) * MiB, buf, MiB, &why), 0);
	fill(want, MiB, 1000 + (uint64_t)(n - 1));
	assert_bytes_eq(buf, want, MiB, "last record of the reused sealed segment");
	ck_assert_int_eq(wlog_read(w, big, 1, 0, buf, 2 * MiB, &why), 0);
	fill(want, 2 * MiB, 4242);
	assert_bytes_eq(buf, want, 2 * MiB, "record after it");
	wlog_close(w);

	/* a record damaged before the recorded end is still corruption */
	seg_flip_bit(4, LADDR_OFF(la[n - 1]) + WREC_DATA(MiB) + 100, 2);
	c.n = 0;
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)),
	    -EUCLEAN);
	ck_assert_msg(contains(err, "00000004") && contains(err, "corrupt"), "message: '%s'", err);
	wlog_close(w);
	free(c.v);
	free(buf);
	free(want);
}
END_TEST

/*
 * With trust_complete, the record that ends the log is verified even when
 * the file goes on (stale bytes): "ends the log" means no valid successor
 * follows it, not "the file ends".
 */
START_TEST(trust_complete_replay_verifies_the_last_record_of_a_reused_file)
{
	uint64_t la[REUSE_N], ino1;
	int64_t old_size;
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = reused_log(la, &ino1, &old_size);
	uint64_t last = LADDR_OFF(la[REUSE_N - 1]);
	char err[512];

	wlog_close(w);
	seg_flip_bit(4, last + WREC_DATA(MiB) + 3 * 4096 + 1, 0);
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay_trusting(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, 1, &c, &rs,
	    err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, REUSE_N - 1 - REC1M_PER_SEG);
	ck_assert_uint_eq(wlog_tail(w), la[REUSE_N - 1]);
	ck_assert_uint_eq(rs.torn_bytes, (uint64_t)old_size - last);
	wlog_close(w);
	free(c.v);
}
END_TEST

/*
 * What a crash can leave of a release or a roll, and what open makes of it.
 * _i: 0 = a leftover SSSSSSSS.spare (created, not yet exchanged) next to the
 * whole segment; 1 = the exchanged pair (release done, nothing reused yet);
 * 2 = a spare with the next segment's header written but not yet renamed;
 * 3 = the spare renamed to the next segment, its header durable, nothing
 * appended: stale records of its earlier life follow the header.
 */
START_TEST(crash_states_of_release_and_roll_open_and_recover)
{
	uint64_t la[2 * REC1M_PER_SEG + 1], seg1 = SEGHDR + REC1M_PER_SEG * WREC_SIZE(MiB);
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	uint64_t tail, ino1 = 0;
	char err[512], a[256], b[256];
	size_t n;

	append_writes(w, 2 * REC1M_PER_SEG + 1, MiB, la, NULL);
	tail = wlog_tail(w);
	ck_assert_uint_eq(LADDR_SEG(tail), 3);
	if (_i == 0) {
		/* an interrupted release: a partly written header-only copy */
		int fd;
		spare_path(1, a, sizeof(a));
		fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0600);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, "HCOW", 4), 4);
		close(fd);
	} else {
		ino1 = seg_ino(1);
		ck_assert_int_eq(wlog_release(w, 1), 0);
	}
	ck_assert_int_eq(wlog_sync(w, tail), 0);
	wlog_close(w);
	if (_i >= 2) {
		/* the roll to segment 4 got as far as its header (and, with 3, its name) */
		struct seg_header sh;
		memset(&sh, 0, sizeof(sh));
		memcpy(sh.magic, SEG_MAGIC, 8);
		sh.version = LOG_FORMAT_VERSION;
		sh.header_size = sizeof(sh);
		sh.segno = 4;
		memcpy(sh.store_uuid, UUID_A, 16);
		sh.prev_end = LADDR_OFF(tail);
		sh.crc = crc32c(0, &sh, sizeof(sh));
		spare_path(1, a, sizeof(a));
		seg_path(4, b, sizeof(b));
		int fd = open(a, O_WRONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(pwrite(fd, &sh, sizeof(sh), 0), (ssize_t)sizeof(sh));
		close(fd);
		if (_i == 3)
			ck_assert_int_eq(rename(a, b), 0);
	}

	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)), 0);
	n = REC1M_PER_SEG + 1;
	ck_assert_int_eq(c.n, n);
	for (size_t k = 0; k < c.n; k++)
		ck_assert_uint_eq(c.v[k].rec_laddr, la[REC1M_PER_SEG + k]);
	if (_i == 3) {
		ck_assert_uint_eq(wlog_tail(w), LADDR(4, SEGHDR));
		ck_assert_uint_eq(rs.stale_bytes, seg1 - SEGHDR);
		ck_assert_int_eq(seg_size(4), (int64_t)SEGHDR);
		ck_assert_int_eq(wlog_segment_bytes(w, 3), (int64_t)LADDR_OFF(tail));
		ck_assert_uint_eq(wlog_spare_bytes(w), 0);
	} else {
		ck_assert_uint_eq(wlog_tail(w), tail);
		ck_assert_uint_eq(wlog_spare_bytes(w), _i == 0 ? 4 : seg1);
	}
	ck_assert_uint_eq(rs.torn_bytes, 0);
	if (_i == 0) {
		/* releasing segment 1 now replaces the leftover */
		ck_assert_int_eq(seg_size(1), (int64_t)seg1);
		ino1 = seg_ino(1);
		ck_assert_int_eq(wlog_release(w, 1), 0);
		ck_assert_int_eq(spare_size(1), (int64_t)seg1);
		ck_assert_int_eq(seg_size(1), (int64_t)SEGHDR);
		ck_assert_uint_eq(wlog_spare_bytes(w), seg1);
	}
	if (_i != 3) {
		/* the next roll reuses the spare */
		for (int k = 0; k < REC1M_PER_SEG; k++)
			append_one(w, 0, MiB, 3);
		ck_assert_uint_eq(LADDR_SEG(wlog_tail(w)), 4);
		ck_assert_uint_eq(seg_ino(4), ino1);
		ck_assert_int_eq(spare_size(1), -1);
	} else {
		ck_assert_uint_eq(seg_ino(4), ino1);
		ck_assert_uint_eq(append_one(w, 0, MiB, 3), LADDR(4, SEGHDR));
	}
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	/* and all of it replays again */
	c.n = 0;
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	ck_assert_int_eq(log_replay(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, _i == 3 ? n + 1 : n + REC1M_PER_SEG);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	wlog_close(w);
	free(c.v);
}
END_TEST

/* A log of version 2 segments (written before reuse existed) opens, replays and goes on. */
START_TEST(version_2_segments_still_open_and_the_log_goes_on_in_version_3)
{
	enum { N = REC1M_PER_SEG + 3 };
	uint64_t la[N + REC1M_PER_SEG];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	uint64_t end2;
	struct seg_header sh;
	int n = N;

	append_writes(w, N, MiB, la, NULL);
	wlog_close(w);
	write_seg_header(1, 1, UUID_A, 2);
	write_seg_header(2, 2, UUID_A, 2);
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, N);
	ck_assert_int_eq(wlog_segment_bytes(w, 1), seg_size(1));
	for (; n < N + REC1M_PER_SEG - 3 + 1; n++)
		la[n] = append_one(w, 0, MiB, (uint64_t)n);
	end2 = (uint64_t)seg_size(2);
	ck_assert_uint_eq(LADDR_SEG(la[n - 1]), 3);
	seg_pread(3, &sh, sizeof(sh), 0);
	ck_assert_uint_eq(sh.version, 3);
	ck_assert_uint_eq(sh.prev_end, end2);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	/* a version 2 segment released: cut down or kept, it is its header either way */
	ck_assert_int_eq(wlog_release(w, 1), 0);
	ck_assert_int_eq(seg_size(1), (int64_t)SEGHDR);
	wlog_close(w);
	c.n = 0;
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	{
		char err[512];
		ck_assert_int_eq(log_replay(w, la[REC1M_PER_SEG], REC1M_PER_SEG + 1, &c, &rs, err,
		    sizeof(err)), 0);
	}
	ck_assert_int_eq(c.n, n - REC1M_PER_SEG);
	ck_assert_int_eq(wlog_segment_bytes(w, 2), (int64_t)end2);
	wlog_close(w);
	free(c.v);
}
END_TEST

/* ---- reccache on its own -------------------------------------------------- */

/* A REC_WRITE header for the cache tests: length bytes, its table's entries all `mark`. */
static struct rec_header
rc_header(uint64_t length, uint32_t mark)
{
	struct rec_header h;

	memset(&h, 0, sizeof(h));
	h.magic = REC_MAGIC;
	h.type = REC_WRITE;
	h.disk_id = 7;
	h.offset = mark;
	h.length = length;
	h.data_crc = mark;
	return h;
}

struct rc_seen {
	struct rec_header h;
	uint32_t	 table[RECCACHE_TABLE_MAX];
	int		 calls;
};

static void
rc_take(const struct rec_header *h, const uint32_t *table, void *arg)
{
	struct rc_seen *seen = arg;

	seen->h = *h;
	memcpy(seen->table, table, rec_blocks(h->length) * sizeof(*table));
	seen->calls++;
}

static void
rc_put(struct reccache *c, uint64_t rec, uint64_t length, uint32_t mark)
{
	struct rec_header h = rc_header(length, mark);
	uint32_t table[RECCACHE_TABLE_MAX + 1];

	for (size_t i = 0; i <= RECCACHE_TABLE_MAX; i++)
		table[i] = mark;
	ck_assert_int_eq(reccache_put(c, rec, &h, table), 0);
}

/* Is rec cached with the header and table rc_put() gave it (mark)? */
static int
rc_has(struct reccache *c, uint64_t rec, uint32_t mark)
{
	struct rc_seen seen = { .calls = 0 };

	if (!reccache_find(c, rec, rc_take, &seen))
		return 0;
	ck_assert_int_eq(seen.calls, 1);
	ck_assert_uint_eq(seen.h.data_crc, mark);
	ck_assert_uint_eq(seen.h.offset, mark);
	for (uint64_t i = 0; i < rec_blocks(seen.h.length); i++)
		ck_assert_uint_eq(seen.table[i], mark);
	return 1;
}

/*
 * What is put is found, with its header and whole table; other addresses are
 * not; a record replaces what its slot held; a table longer than
 * RECCACHE_TABLE_MAX is not kept; dropping a segment forgets its records
 * only; the count and the memory follow.
 */
START_TEST(reccache_finds_what_was_put_until_replaced_or_dropped)
{
	struct reccache *c = reccache_new(1000);
	size_t empty;
	int found = 0;

	ck_assert_ptr_nonnull(c);
	empty = reccache_memory(c);
	ck_assert_uint_eq(reccache_count(c), 0);
	ck_assert(!rc_has(c, LADDR(1, 64), 0));
	rc_put(c, LADDR(1, 64), 5 * BLK + 100, 11);
	rc_put(c, LADDR(2, 64), MiB, 22);
	ck_assert(rc_has(c, LADDR(1, 64), 11));
	ck_assert(rc_has(c, LADDR(2, 64), 22));
	ck_assert(!rc_has(c, LADDR(1, 65), 0));
	ck_assert(!rc_has(c, LADDR(3, 64), 0));
	ck_assert_uint_eq(reccache_count(c), 2);
	ck_assert_uint_ge(reccache_memory(c), empty + 4 * (6 + 256));
	/* put again: the new header and table replace the old */
	rc_put(c, LADDR(1, 64), 2 * BLK, 33);
	ck_assert(rc_has(c, LADDR(1, 64), 33));
	ck_assert_uint_eq(reccache_count(c), 2);
	/* too long a table: not kept, not an error */
	rc_put(c, LADDR(1, 9999), (RECCACHE_TABLE_MAX + 1) * BLK, 44);
	ck_assert(!rc_has(c, LADDR(1, 9999), 44));
	ck_assert_uint_eq(reccache_count(c), 2);
	reccache_drop_segment(c, 1);
	ck_assert(!rc_has(c, LADDR(1, 64), 33));
	ck_assert(rc_has(c, LADDR(2, 64), 22));
	ck_assert_uint_eq(reccache_count(c), 1);
	/* 1000 slots hold at most 1024 records: many more leave some out, all found are right */
	for (uint32_t i = 0; i < 5000; i++)
		rc_put(c, LADDR(3, 64 + (uint64_t)i * 4164), BLK, i + 1);
	ck_assert_uint_le(reccache_count(c), 1024);
	for (uint32_t i = 0; i < 5000; i++)
		found += rc_has(c, LADDR(3, 64 + (uint64_t)i * 4164), i + 1);
	ck_assert_int_gt(found, 0);
	ck_assert_int_lt(found, 5000);
	ck_assert_uint_eq((size_t)found + rc_has(c, LADDR(2, 64), 22), reccache_count(c));
	reccache_free(c);

	/* a set holds several records: any four fit in the smallest cache, whatever their hashes */
	for (uint32_t round = 0; round < 50; round++) {
		c = reccache_new(1);
		ck_assert_ptr_nonnull(c);
		for (uint32_t i = 0; i < 4; i++)
			rc_put(c, LADDR(1 + round, 64 + (uint64_t)i * 77777), BLK, i + 1);
		for (uint32_t i = 0; i < 4; i++)
			ck_assert(rc_has(c, LADDR(1 + round, 64 + (uint64_t)i * 77777), i + 1));
		reccache_free(c);
	}
}
END_TEST

struct rc_race {
	struct reccache	*c;
	int		 id;
	int		 bad;
};

/*
 * Writers and readers on a cache of 2 slots, every record's header and table
 * carrying the same mark: a reader must never see a header from one record
 * and a table from another, or a record under another's address.
 */
static void *
rc_race_thread(void *arg)
{
	struct rc_race *r = arg;

	for (uint32_t i = 0; i < 20000; i++) {
		uint64_t k = (i * 7 + (uint32_t)r->id) % 16;
		uint32_t mark = (uint32_t)k * 1000 + 1;
		struct rc_seen seen = { .calls = 0 };
		if ((i + (uint32_t)r->id) % 3 == 0) {
			struct rec_header h = rc_header((k % 4 + 1) * 50 * BLK, mark);
			uint32_t table[RECCACHE_TABLE_MAX];
			for (size_t j = 0; j < RECCACHE_TABLE_MAX; j++)
				table[j] = mark;
			if (reccache_put(r->c, LADDR(1, 64 + k), &h, table) != 0)
				r->bad++;
		} else if (reccache_find(r->c, LADDR(1, 64 + k), rc_take, &seen)) {
			if (seen.h.data_crc != mark || seen.h.length != (k % 4 + 1) * 50 * BLK)
				r->bad++;
			for (uint64_t j = 0; j < rec_blocks(seen.h.length); j++)
				if (seen.table[j] != mark)
					r->bad++;
		}
	}
	return NULL;
}

START_TEST(reccache_readers_and_writers_never_see_a_mixed_record)
{
	struct rc_race r[4];
	pthread_t t[4];
	struct reccache *c = reccache_new(2);

	ck_assert_ptr_nonnull(c);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct rc_race){ .c = c, .id = i, .bad = 0 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, rc_race_thread, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(r[i].bad, 0);
	}
	reccache_free(c);
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
	tcase_add_loop_test(tc, damaged_record_in_newest_segment_is_cut_and_appends_continue_there, 0, 6);
	tcase_add_loop_test(tc, torn_tail_is_cut_and_earlier_records_survive, 0, 7);
	tcase_add_test(tc, segments_roll_at_segment_size_and_replay_spans_them);
	tcase_add_loop_test(tc, damage_in_older_segment_is_EUCLEAN_and_nothing_is_cut, 0, 5);
	tcase_add_loop_test(tc, bad_segment_header_fails_open_with_message, 0, 6);
	tcase_add_test(tc, log_dir_without_segments_or_with_a_gap_fails_open);
	tcase_add_loop_test(tc, foreign_header_in_newest_segment_fails_open_and_keeps_the_file, 0, 2);
	tcase_add_loop_test(tc, incomplete_newest_segment_is_removed_and_log_continues_before_it, 0, 3);
	tcase_add_test(tc, only_segment_truncated_below_header_fails_open);
	tcase_add_loop_test(tc, replay_with_wrong_next_seq_applies_nothing, 0, 3);
	tcase_add_test(tc, replay_from_outside_the_log_is_EUCLEAN);
	tcase_add_test(tc, apply_error_stops_replay_and_is_returned);
	tcase_add_test(tc, sync_succeeds_and_bad_write_lengths_are_EINVAL);
	tcase_add_test(tc, append_with_sums_computed_beforehand_writes_the_same_record);
	tcase_add_loop_test(tc, read_of_a_damaged_block_fails_and_other_blocks_read_fine, 0,
	    (int)(sizeof(block_damage) / sizeof(block_damage[0])));
	tcase_add_test(tc, read_of_a_record_with_a_damaged_header_always_fails);
	tcase_add_loop_test(tc, read_that_does_not_match_the_record_is_EBADMSG, 0, 2);
	tcase_add_loop_test(tc, read_of_a_record_cut_short_is_EBADMSG_for_the_missing_part, 0, 5);
	tcase_add_loop_test(tc, unaligned_reads_return_exactly_the_bytes_asked_for, 0, 2);
	tcase_add_loop_test(tc, large_record_reads_at_its_end_and_middle, 0, 2);
	tcase_add_loop_test(tc, cached_read_checks_every_data_block_and_never_serves_wrong_bytes, 0,
	    (int)(sizeof(block_damage) / sizeof(block_damage[0])));
	tcase_add_test(tc, cached_read_keeps_the_header_it_checked_and_check_still_sees_the_disk);
	tcase_add_test(tc, record_with_a_damaged_table_is_not_cached);
	tcase_add_test(tc, records_of_a_released_segment_are_forgotten);
	tcase_add_loop_test(tc, trust_complete_replay_verifies_only_the_last_record, 0, 2);
	tcase_add_test(tc, released_segment_becomes_a_spare_and_the_next_roll_reuses_its_file);
	tcase_add_loop_test(tc, stale_records_after_the_tail_are_not_replayed, 0, 4);
	tcase_add_test(tc, replay_crosses_a_reused_sealed_segment_at_its_recorded_end);
	tcase_add_test(tc, trust_complete_replay_verifies_the_last_record_of_a_reused_file);
	tcase_add_loop_test(tc, crash_states_of_release_and_roll_open_and_recover, 0, 4);
	tcase_add_test(tc, version_2_segments_still_open_and_the_log_goes_on_in_version_3);
	suite_add_tcase(s, tc);

	tc = tcase_create("reccache");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, reccache_finds_what_was_put_until_replaced_or_dropped);
	tcase_add_test(tc, reccache_readers_and_writers_never_see_a_mixed_record);
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
