/*
 * wlog_fixture.c: the write-log tests' helpers (see wlog_fixture.h).
 *
 * It owns the test's log directory, tdir, and the record collector that
 * replay feeds.  Helpers assert with Check as they go, so a test reads as the
 * steps it takes; the segment helpers bypass the log on purpose, to damage
 * what it wrote.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "wlog_fixture.h"

const uint8_t UUID_A[16] = {
	0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef
};
const uint8_t UUID_B[16] = {
	0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xee
};

char tdir[128];

void
wlog_setup(void)
{
	fixture_tmpdir(tdir, sizeof(tdir));
}

uint64_t rng_state;

uint64_t
rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

void
fill(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(rng() >> 24);
}

void
seg_path(uint32_t segno, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%08x.seg", tdir, segno);
}

int64_t
seg_size(uint32_t segno)
{
	char p[256];
	seg_path(segno, p, sizeof(p));
	return file_size(p);
}

/* seg_pread (rd != NULL) or seg_pwrite (wr != NULL) */
static void
seg_io(uint32_t segno, void *rd, const void *wr, size_t len, uint64_t off)
{
	char p[256];
	int fd;
	seg_path(segno, p, sizeof(p));
	fd = open(p, rd ? O_RDONLY : O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(rd ? pread(fd, rd, len, (off_t)off) : pwrite(fd, wr, len, (off_t)off),
	    (ssize_t)len);
	close(fd);
}

void
seg_pread(uint32_t segno, void *buf, size_t len, uint64_t off)
{
	seg_io(segno, buf, NULL, len, off);
}

void
seg_pwrite(uint32_t segno, const void *buf, size_t len, uint64_t off)
{
	seg_io(segno, NULL, buf, len, off);
}

void
seg_flip_bit(uint32_t segno, uint64_t off, int bit)
{
	unsigned char c;
	seg_pread(segno, &c, 1, off);
	c ^= (unsigned char)(1u << bit);
	seg_pwrite(segno, &c, 1, off);
}

void
seg_truncate(uint32_t segno, uint64_t size)
{
	char p[256];
	seg_path(segno, p, sizeof(p));
	ck_assert_int_eq(truncate(p, (off_t)size), 0);
}

int
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

int
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

void
assert_bytes_eq(const void *got, const void *want, size_t len, const char *what)
{
	const unsigned char *g = got, *w = want;
	for (size_t i = 0; i < len; i++)
		if (g[i] != w[i])
			ck_abort_msg("%s: first difference at byte %zu of %zu (got %02x, want %02x)",
			    what, i, len, g[i], w[i]);
}

int
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

void
log_close(struct wlog *w, struct collector *c)
{
	wlog_close(w);
	free(c->v);
}

struct wlog *
log_open(uint64_t segment_size)
{
	struct wlog *w = NULL;
	char err[512] = "";
	int rc = wlog_open(tdir, UUID_A, segment_size, &w, err, sizeof(err));
	ck_assert_msg(rc == 0, "wlog_open: %d (%s)", rc, err);
	ck_assert_ptr_nonnull(w);
	return w;
}

int
log_replay_trusting(struct wlog *w, uint64_t from, uint64_t seq, int trust_complete,
    struct collector *c, struct wlog_replay_stats *rs, char *err, size_t errlen)
{
	err[0] = '\0';
	return wlog_replay(w, from, seq, trust_complete, collect, c, rs, err, errlen);
}

int
log_replay(struct wlog *w, uint64_t from, uint64_t seq, struct collector *c,
    struct wlog_replay_stats *rs, char *err, size_t errlen)
{
	return log_replay_trusting(w, from, seq, 0, c, rs, err, errlen);
}

struct wlog *
log_open_replayed(uint64_t segment_size, struct collector *c, struct wlog_replay_stats *rs)
{
	struct wlog *w = log_open(segment_size);
	char err[512];
	int rc = log_replay(w, wlog_first_laddr(), 1, c, rs, err, sizeof(err));
	ck_assert_msg(rc == 0, "wlog_replay: %d (%s)", rc, err);
	return w;
}

struct wlog *
log_reopen_replayed(struct wlog *w, uint64_t segment_size, struct collector *c,
    struct wlog_replay_stats *rs)
{
	log_close(w, c);
	memset(c, 0, sizeof(*c));
	return log_open_replayed(segment_size, c, rs);
}

struct wlog *
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

uint64_t
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

uint64_t
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

uint32_t
hdr_crc_of(const struct rec_header *h)
{
	struct rec_header c = *h;
	c.hdr_crc = 0;
	return crc32c(0, &c, sizeof(c));
}

void
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

void
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

void
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

int read_cached;

const char *
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

void
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

void
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
