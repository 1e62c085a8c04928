/*
 * check_store: the store engine through store.h (fs/store/store.c, diskio.c,
 * namespace.c on top of the log, the extent map and the catalog).
 *
 * Every test gets a fresh directory under /tmp with a template dir (holding
 * base.img: 1 MiB + 123 bytes of known pseudo-random bytes) and an empty
 * data dir; it is removed at the end of the run.  Disk contents are
 * checked against a reference buffer (struct model) that every operation is
 * also applied to.  Crash tests fork a child that works on the store and
 * exits (or is killed) without closing it; the parent then reopens the store.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "logfmt.h"
#include "hlog.h"
#include "sbuf.h"
#include "store.h"
#include "store_int.h"	/* snapshot_write, cp_laddr: the takeover test looks inside */
#include "wlog.h"

#define KiB		(UINT64_C(1) << 10)
#define MiB		(UINT64_C(1) << 20)
#define TSIZE		(MiB + 123)		/* base.img */
#define MODEL_CAP	(8 * MiB)		/* largest disk the scripts make */
#define CP_NEVER	3600000u
#define SEG_SIZE	WLOG_SEGMENT_SIZE_MIN
#define NOREPLACE	1u			/* RENAME_NOREPLACE */

/* ---- fixture ------------------------------------------------------------ */

/*
 * A failed assertion ends the forked test process with _exit(), so no
 * cleanup runs there: main() makes the run's base dir and removes it, with
 * whatever the tests left, at the end.
 */
static char run_dir[64];
static char root[128], tmpldir[160], datadir[160];
static unsigned char *tmpl_bytes;		/* what base.img holds */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

struct rng {
	uint64_t s;
};

static uint64_t
rnext(struct rng *r)
{
	uint64_t x = r->s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return r->s = x;
}

static void
fill(void *buf, size_t len, uint64_t seed)
{
	struct rng r = { seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull };
	unsigned char *p = buf;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t v = rnext(&r);
		memcpy(p + i, &v, 8);
	}
	for (; i < len; i++)
		p[i] = (unsigned char)rnext(&r);
}

static void
write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

static void
tmpl_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", tmpldir, name);
}

static void
setup(void)
{
	char p[256];

	snprintf(root, sizeof(root), "%s/t.XXXXXX", run_dir);
	ck_assert_ptr_nonnull(mkdtemp(root));
	free(tmpl_bytes);
	snprintf(tmpldir, sizeof(tmpldir), "%s/tmpl", root);
	snprintf(datadir, sizeof(datadir), "%s/data", root);
	ck_assert_int_eq(mkdir(tmpldir, 0755), 0);
	ck_assert_int_eq(mkdir(datadir, 0755), 0);
	tmpl_bytes = malloc(TSIZE);
	ck_assert_ptr_nonnull(tmpl_bytes);
	fill(tmpl_bytes, TSIZE, 1);
	tmpl_path("base.img", p, sizeof(p));
	write_file(p, tmpl_bytes, TSIZE);
}

/* ---- helpers ------------------------------------------------------------ */

static struct store_opts
opts(void)
{
	struct store_opts o = {
		.datadir = datadir,
		.tmpldir = tmpldir,
		.segment_size = SEG_SIZE,
		.checkpoint_ms = CP_NEVER,
		.purge_unlinked = 1,
		.create = 1,
	};
	return o;
}

static struct store *
sopen_with(const struct store_opts *o)
{
	struct store *st = NULL;
	char err[512] = "";
	int rc = store_open(o, &st, err, sizeof(err));
	ck_assert_msg(rc == 0, "store_open: %d (%s)", rc, err);
	ck_assert_ptr_nonnull(st);
	return st;
}

static struct store *
sopen(void)
{
	struct store_opts o = opts();
	return sopen_with(&o);
}

static uint64_t
mkdisk(struct store *st, const char *name, const char *tmpl, uint64_t size)
{
	struct disk_attr a;
	char err[512] = "";
	int rc = store_create(st, name, tmpl, size, NULL, &a, err, sizeof(err));
	ck_assert_msg(rc == 0, "store_create %s: %d (%s)", name, rc, err);
	ck_assert_str_eq(a.name, name);
	return a.id;
}

static int
contains(const char *s, const char *sub)
{
	return s && strstr(s, sub) != NULL;
}

static int
exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

static int64_t
file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* The newest log segment: its number, and its path in buf. */
static unsigned
newest_segment(char *buf, size_t len)
{
	char logdir[200];
	DIR *d;
	struct dirent *de;
	unsigned best = 0;

	snprintf(logdir, sizeof(logdir), "%s/log", datadir);
	d = opendir(logdir);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		unsigned n;
		char tail[8];
		if (strlen(de->d_name) == 12 && sscanf(de->d_name, "%8x%7s", &n, tail) == 2 &&
		    strcmp(tail, ".seg") == 0 && n > best)
			best = n;
	}
	closedir(d);
	snprintf(buf, len, "%s/%08x.seg", logdir, best);
	return best;
}

/* The reference: what a disk must read as. */
struct model {
	unsigned char	*b;
	uint64_t	 size;
};

static void
model_init(struct model *m, const unsigned char *tmpl, uint64_t tsize, uint64_t size)
{
	m->b = calloc(1, MODEL_CAP);
	ck_assert_ptr_nonnull(m->b);
	memcpy(m->b, tmpl, tsize < size ? tsize : size);
	m->size = size;
}

static void
model_free(struct model *m)
{
	free(m->b);
	m->b = NULL;
}

static void
model_resize(struct model *m, uint64_t size)
{
	if (size > m->size)
		memset(m->b + m->size, 0, size - m->size);
	m->size = size;
}

/*
 * Operations applied to the store (st may be NULL: the model only) and the
 * model.  They return 0, or -1 with opfail saying what went wrong; they do
 * not use ck_assert so that a forked child can run them too.
 */
static char opfail[512];
#define OK(x) do { int ok_rc_ = (x); ck_assert_msg(ok_rc_ == 0, "%s", opfail); } while (0)

static int
op_write(struct store *st, uint64_t id, struct model *m, uint64_t off, size_t len, uint64_t seed)
{
	unsigned char *buf = malloc(len);
	ssize_t want, got = 0;

	if (!buf)
		return -1;
	fill(buf, len, seed);
	want = off >= m->size ? -EFBIG : (ssize_t)(len < m->size - off ? len : m->size - off);
	if (st)
		got = store_write(st, id, buf, len, off);
	if (want > 0)
		memcpy(m->b + off, buf, (size_t)want);
	free(buf);
	if (st && got != want) {
		snprintf(opfail, sizeof(opfail), "write %zu at %llu (size %llu): got %zd, want %zd",
		    len, (unsigned long long)off, (unsigned long long)m->size, got, want);
		return -1;
	}
	return 0;
}

static int
op_zero(struct store *st, uint64_t id, struct model *m, uint64_t off, uint64_t len, int keep)
{
	int got = st ? store_zero(st, id, off, len, keep) : 0;
	uint64_t end;

	if (got != 0) {
		snprintf(opfail, sizeof(opfail), "zero %llu at %llu keep %d: %d",
		    (unsigned long long)len, (unsigned long long)off, keep, got);
		return -1;
	}
	if (!keep && off + len > m->size)
		model_resize(m, off + len);
	end = off + len < m->size ? off + len : m->size;
	if (off < end)
		memset(m->b + off, 0, end - off);
	return 0;
}

static int
op_resize(struct store *st, uint64_t id, struct model *m, uint64_t size, int grow_only)
{
	int got = st ? store_resize(st, id, size, grow_only) : 0;

	if (got != 0) {
		snprintf(opfail, sizeof(opfail), "resize to %llu: %d", (unsigned long long)size, got);
		return -1;
	}
	if (!grow_only || size > m->size)
		model_resize(m, size);
	return 0;
}

/* Read [off, off+len) and compare with the model; 0 or -1 (opfail). */
static int
check_read(struct store *st, uint64_t id, const struct model *m, uint64_t off, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	ssize_t want = off >= m->size ? 0 : (ssize_t)(len < m->size - off ? len : m->size - off);
	ssize_t got;
	int rc = 0;

	if (!buf)
		return -1;
	memset(buf, 0xee, len ? len : 1);
	got = store_read(st, id, buf, len, off);
	if (got != want) {
		snprintf(opfail, sizeof(opfail), "read %zu at %llu (size %llu): got %zd, want %zd",
		    len, (unsigned long long)off, (unsigned long long)m->size, got, want);
		rc = -1;
	} else {
		for (ssize_t i = 0; i < want; i++) {
			if (buf[i] != m->b[off + (uint64_t)i]) {
				snprintf(opfail, sizeof(opfail), "read %zu at %llu: byte %llu is %02x, want %02x",
				    len, (unsigned long long)off, (unsigned long long)(off + (uint64_t)i),
				    buf[i], m->b[off + (uint64_t)i]);
				rc = -1;
				break;
			}
		}
	}
	free(buf);
	return rc;
}

/* The whole disk, its size, and reads at many offsets and lengths. */
static int
check_disk(struct store *st, uint64_t id, const struct model *m, uint64_t seed)
{
	static const uint64_t lens[] = { 1, 2, 7, 511, 4095, 4096, 4097, 65536 + 3, 300000 };
	uint64_t offs[] = {
		0, 1, 4095, 4096, 4097, 65535, 65536, 123456, TSIZE - 4097, TSIZE - 1, TSIZE,
		TSIZE + 1, TSIZE + 4096, m->size ? m->size - 1 : 0, m->size, m->size + 1
	};
	struct disk_attr a;
	struct rng r = { seed * 7 + 3 };
	int rc;

	if ((rc = store_getattr(st, id, &a)) != 0) {
		snprintf(opfail, sizeof(opfail), "getattr: %d", rc);
		return -1;
	}
	if (a.size != m->size) {
		snprintf(opfail, sizeof(opfail), "size is %llu, want %llu",
		    (unsigned long long)a.size, (unsigned long long)m->size);
		return -1;
	}
	if (check_read(st, id, m, 0, (size_t)m->size + 100) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++)
			if (check_read(st, id, m, offs[i], lens[j]) < 0)
				return -1;
	for (int i = 0; i < 40; i++) {
		uint64_t off = rnext(&r) % (m->size + 10);
		size_t len = (size_t)(1 + rnext(&r) % (i % 4 == 0 ? 2 * MiB : 9000));
		if (check_read(st, id, m, off, len) < 0)
			return -1;
	}
	return 0;
}

/*
 * A deterministic mix of writes, zeros and resizes on one disk; part selects
 * the sequence.  Each part writes > 10 MiB so that two parts roll the log
 * past a 16 MiB segment.
 */
static int
script(struct store *st, uint64_t id, struct model *m, int part)
{
	struct rng r = { 0x5eed0000u + (uint64_t)part * 7919 };
	uint64_t seed = (uint64_t)part * 1000000;

	if (op_resize(st, id, m, 6 * MiB + 5, 1) < 0)
		return -1;
	for (int i = 0; i < 11; i++)
		if (op_write(st, id, m, (rnext(&r) % (5 * MiB)) | 1, MiB + 17, seed++) < 0)
			return -1;
	for (int i = 0; i < 120; i++) {
		uint64_t k = rnext(&r) % 100, off, len;
		int rc;

		if (k < 55) {
			off = rnext(&r) % (m->size + 2);
			len = 1 + rnext(&r) % (k < 10 ? 70000 : 5000);
			rc = op_write(st, id, m, off, len, seed++);
		} else if (k < 62) {
			/* across the template's end */
			off = TSIZE - 1 - rnext(&r) % 3000;
			rc = op_write(st, id, m, off, 1 + rnext(&r) % 6000, seed++);
		} else if (k < 77) {
			off = rnext(&r) % (m->size + 1);
			rc = op_zero(st, id, m, off, 1 + rnext(&r) % 200000, 1);
		} else if (k < 84) {
			off = rnext(&r) % (MODEL_CAP - 300000);
			rc = op_zero(st, id, m, off, 1 + rnext(&r) % 200000, 0);
		} else if (k < 92) {
			/* shrink, often below the template's end */
			rc = op_resize(st, id, m, 1 + rnext(&r) % (m->size + 1), 0);
		} else {
			rc = op_resize(st, id, m, rnext(&r) % (MODEL_CAP + 1), k & 1);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

static void
assert_template_file_unchanged(void)
{
	char p[256];
	unsigned char *buf = malloc(TSIZE + 1);
	int fd;

	tmpl_path("base.img", p, sizeof(p));
	fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, TSIZE + 1), (ssize_t)TSIZE);
	close(fd);
	ck_assert_msg(memcmp(buf, tmpl_bytes, TSIZE) == 0, "template file was modified");
	free(buf);
}

/* ---- opening ------------------------------------------------------------ */

START_TEST(open_with_create_makes_catalog_and_log_and_reopens)
{
	struct store *st;
	char p[256];
	uint64_t id;

	st = sopen();
	snprintf(p, sizeof(p), "%s/catalog.db", datadir);
	ck_assert(exists(p));
	snprintf(p, sizeof(p), "%s/log/00000001.seg", datadir);
	ck_assert_int_eq(file_size(p), 64);
	id = mkdisk(st, "vm", "base.img", 0);
	store_close(st);

	/* create=0 opens what is there; create=1 on an existing store does not recreate it */
	{
		struct store_opts o = opts();
		struct disk_attr a;
		o.create = 0;
		st = sopen_with(&o);
		ck_assert_int_eq(store_lookup(st, "vm", &a), 0);
		ck_assert_uint_eq(a.id, id);
		store_close(st);
		st = sopen();
		ck_assert_int_eq(store_lookup(st, "vm", &a), 0);
		store_close(st);
	}
}
END_TEST

START_TEST(open_refuses_to_create_over_a_non_empty_unrelated_dir)
{
	struct store_opts o = opts();
	struct store *st = NULL;
	char err[512] = "", p[256];
	int rc;

	snprintf(p, sizeof(p), "%s/precious.txt", datadir);
	write_file(p, "keep me", 7);
	rc = store_open(&o, &st, err, sizeof(err));
	ck_assert_int_eq(rc, -EEXIST);
	ck_assert_ptr_null(st);
	ck_assert_msg(contains(err, "precious.txt") && contains(err, "not empty"), "message: '%s'", err);
	ck_assert_int_eq(file_size(p), 7);
	snprintf(p, sizeof(p), "%s/catalog.db", datadir);
	ck_assert(!exists(p));
	snprintf(p, sizeof(p), "%s/log", datadir);
	ck_assert(!exists(p));
}
END_TEST

/*
 * A data dir whose catalog is gone but whose log holds records (a store that
 * lost catalog.db, or someone else's files): open with create must refuse
 * and must not delete anything on the way.  _i: 0 = the catalog was moved
 * aside, 1 = it was deleted, 2 = as 1 and the log has a second segment.
 */
START_TEST(open_with_create_never_deletes_a_log_that_has_records)
{
	struct store_opts o = opts();
	struct store *st = NULL;
	char err[512] = "", cat[256], bak[256], seg1[256], seg2[256];
	int64_t s1;
	int rc;

	if (_i == 2)
		o.segment_size = SEG_SIZE;
	st = sopen_with(&o);
	{
		uint64_t id = mkdisk(st, "vm", "base.img", 4 * MiB);
		unsigned char *buf = calloc(1, MiB);
		for (int i = 0; i < (_i == 2 ? 20 : 2); i++)
			ck_assert_int_eq(store_write(st, id, buf, MiB, (uint64_t)(i % 4) * MiB), (ssize_t)MiB);
		free(buf);
	}
	store_close(st);
	st = NULL;
	snprintf(cat, sizeof(cat), "%s/catalog.db", datadir);
	snprintf(bak, sizeof(bak), "%s/catalog.db.bak", datadir);
	snprintf(seg1, sizeof(seg1), "%s/log/00000001.seg", datadir);
	snprintf(seg2, sizeof(seg2), "%s/log/00000002.seg", datadir);
	if (_i == 0)
		ck_assert_int_eq(rename(cat, bak), 0);
	else
		ck_assert_int_eq(unlink(cat), 0);
	s1 = file_size(seg1);
	ck_assert_int_gt(s1, (int64_t)MiB);
	ck_assert(_i != 2 || exists(seg2));

	rc = store_open(&o, &st, err, sizeof(err));
	ck_assert_msg(rc < 0, "store_open created a store over an existing log (%d)", rc);
	ck_assert_ptr_null(st);
	ck_assert(err[0] != '\0');
	ck_assert_int_eq(file_size(seg1), s1);
	ck_assert(_i != 2 || exists(seg2));
}
END_TEST

/* What a creation that stopped before the catalog existed leaves is cleaned up. */
START_TEST(open_with_create_finishes_an_interrupted_creation)
{
	static const uint8_t uuid[16] = { 1, 2, 3 };
	struct store *st;
	char p[256];
	struct disk_attr a;

	snprintf(p, sizeof(p), "%s/log", datadir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	ck_assert_int_eq(wlog_create(p, uuid), 0);
	snprintf(p, sizeof(p), "%s/catalog.db.new", datadir);
	write_file(p, "half a database", 15);
	st = sopen();
	mkdisk(st, "vm", "base.img", 0);
	store_close(st);
	st = sopen();
	ck_assert_int_eq(store_lookup(st, "vm", &a), 0);
	store_close(st);
	ck_assert(!exists(p));
}
END_TEST

START_TEST(open_without_create_on_empty_dir_is_ENOENT)
{
	struct store_opts o = opts();
	struct store *st = NULL;
	char err[512] = "", p[256];
	DIR *d;
	int entries = 0;

	o.create = 0;
	ck_assert_int_eq(store_open(&o, &st, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_null(st);
	ck_assert_msg(contains(err, "no hcowfs store"), "message: '%s'", err);
	d = opendir(datadir);
	while (readdir(d))
		entries++;
	closedir(d);
	ck_assert_int_eq(entries, 2);		/* . and .. only */

	/* a data dir that is a file */
	snprintf(p, sizeof(p), "%s/afile", root);
	write_file(p, "x", 1);
	o.datadir = p;
	o.create = 1;
	err[0] = '\0';
	ck_assert_int_eq(store_open(&o, &st, err, sizeof(err)), -ENOTDIR);
	ck_assert(err[0] != '\0');
}
END_TEST

/* ---- store_create ------------------------------------------------------- */

START_TEST(clone_reads_exactly_the_template)
{
	struct store *st = sopen();
	struct disk_attr a;
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 0);

	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.size, TSIZE);
	ck_assert_str_eq(a.template_name, "base.img");
	ck_assert_uint_eq(a.log_bytes, 0);
	ck_assert_ptr_null(a.problem);
	model_init(&m, tmpl_bytes, TSIZE, TSIZE);
	OK(check_disk(st, id, &m, 1));
	model_free(&m);
	store_close(st);
}
END_TEST

START_TEST(clone_larger_than_template_reads_zeros_past_its_end)
{
	struct store *st = sopen();
	struct disk_attr a;
	struct model m;
	uint64_t id = mkdisk(st, "big", "base.img", 3 * MiB + 1);

	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.size, 3 * MiB + 1);
	model_init(&m, tmpl_bytes, TSIZE, 3 * MiB + 1);
	OK(check_disk(st, id, &m, 2));
	model_free(&m);
	store_close(st);
}
END_TEST

START_TEST(clone_smaller_than_template_is_EINVAL)
{
	struct store *st = sopen();
	struct disk_attr a;
	char err[512] = "";

	ck_assert_int_eq(store_create(st, "small", "base.img", TSIZE - 1, NULL, &a, err, sizeof(err)), -EINVAL);
	ck_assert_msg(contains(err, "smaller"), "message: '%s'", err);
	ck_assert_int_eq(store_lookup(st, "small", &a), -ENOENT);
	err[0] = '\0';
	ck_assert_int_eq(store_create(st, "huge", "base.img", (UINT64_C(1) << 48) + 1, NULL, &a,
	    err, sizeof(err)), -EINVAL);
	ck_assert(err[0] != '\0');
	ck_assert_int_eq(store_lookup(st, "huge", &a), -ENOENT);
	store_close(st);
}
END_TEST

START_TEST(create_rejects_bad_names)
{
	static const char *const bad[] = { "", "a/b", "/abs", ".hidden", "..", "sp ace", "q\"uote" };
	struct store *st = sopen();
	struct disk_attr a;
	char err[512], longname[202];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(store_create(st, bad[i], "base.img", 0, NULL, &a, err, sizeof(err)) == -EINVAL,
		    "name '%s' accepted", bad[i]);
		ck_assert_msg(err[0] != '\0', "no message for '%s'", bad[i]);
	}
	memset(longname, 'a', 201);
	longname[201] = '\0';
	err[0] = '\0';
	ck_assert_int_eq(store_create(st, longname, "base.img", 0, NULL, &a, err, sizeof(err)), -EINVAL);
	ck_assert(err[0] != '\0');
	/* template names are checked the same way */
	ck_assert_int_eq(store_create(st, "ok", "../data/catalog.db", 0, NULL, &a, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(store_next(st, 0, &a), -ENOENT);	/* nothing was created */

	/* 200 characters is the limit, inclusive */
	longname[200] = '\0';
	mkdisk(st, longname, "base.img", 0);
	ck_assert_int_eq(store_lookup(st, longname, &a), 0);
	store_close(st);
}
END_TEST

START_TEST(create_duplicate_is_EEXIST_unless_same_token)
{
	struct store *st = sopen();
	struct disk_attr a, b;
	char err[512] = "";

	ck_assert_int_eq(store_create(st, "vm", "base.img", 0, "tok-1", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(store_create(st, "vm", "base.img", 0, NULL, &b, err, sizeof(err)), -EEXIST);
	ck_assert_msg(contains(err, "already exists"), "message: '%s'", err);
	ck_assert_int_eq(store_create(st, "vm", "base.img", 0, "", &b, err, sizeof(err)), -EEXIST);
	ck_assert_int_eq(store_create(st, "vm", "base.img", 0, "tok-2", &b, err, sizeof(err)), -EEXIST);
	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(store_create(st, "vm", "base.img", 0, "tok-1", &b, err, sizeof(err)), 0);
	ck_assert_uint_eq(b.id, a.id);
	ck_assert_uint_eq(b.size, TSIZE);
	/* an untokened create can never be confirmed by an untokened retry */
	ck_assert_int_eq(store_create(st, "vm2", "base.img", 0, "", &b, err, sizeof(err)), 0);
	ck_assert_int_eq(store_create(st, "vm2", "base.img", 0, "", &b, err, sizeof(err)), -EEXIST);
	ck_assert_int_eq(store_create(st, "vm3", "base.img", 0, NULL, &b, err, sizeof(err)), 0);
	ck_assert_int_eq(store_create(st, "vm3", "base.img", 0, NULL, &b, err, sizeof(err)), -EEXIST);
	ck_assert_int_eq(store_create(st, "vm3", "base.img", 0, "", &b, err, sizeof(err)), -EEXIST);
	store_close(st);

	/* the token survives a restart */
	st = sopen();
	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(store_create(st, "vm", "base.img", 0, "tok-1", &b, err, sizeof(err)), 0);
	ck_assert_uint_eq(b.id, a.id);
	ck_assert_int_eq(store_create(st, "vm", "base.img", 0, "tok-2", &b, err, sizeof(err)), -EEXIST);
	store_close(st);
}
END_TEST

START_TEST(create_from_missing_or_non_regular_template_fails)
{
	struct store *st = sopen();
	struct disk_attr a;
	char err[512] = "", p[256];

	ck_assert_int_eq(store_create(st, "vm", "nosuch.img", 0, NULL, &a, err, sizeof(err)), -ENOENT);
	ck_assert_msg(contains(err, "nosuch.img"), "message: '%s'", err);
	tmpl_path("adir", p, sizeof(p));
	ck_assert_int_eq(mkdir(p, 0755), 0);
	err[0] = '\0';
	ck_assert_int_eq(store_create(st, "vm", "adir", 0, NULL, &a, err, sizeof(err)), -EINVAL);
	ck_assert_msg(contains(err, "not a regular file"), "message: '%s'", err);
	tmpl_path("fifo", p, sizeof(p));
	ck_assert_int_eq(mkfifo(p, 0644), 0);
	err[0] = '\0';
	ck_assert_int_eq(store_create(st, "vm", "fifo", 0, NULL, &a, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(store_lookup(st, "vm", &a), -ENOENT);
	ck_assert_int_eq(store_next(st, 0, &a), -ENOENT);
	/* a symlink to a regular file is a fine template */
	tmpl_path("link.img", p, sizeof(p));
	ck_assert_int_eq(symlink("base.img", p), 0);
	mkdisk(st, "vm", "link.img", 0);
	{
		struct model m;
		uint64_t id;
		ck_assert_int_eq(store_lookup(st, "vm", &a), 0);
		id = a.id;
		model_init(&m, tmpl_bytes, TSIZE, TSIZE);
		OK(check_disk(st, id, &m, 3));
		model_free(&m);
	}
	store_close(st);
}
END_TEST

/* ---- I/O ------------------------------------------------------------------ */

START_TEST(unaligned_writes_across_boundaries_read_back_exactly)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 3 * MiB);
	uint64_t s = 100;
	struct rng r = { 42 };
	struct {
		uint64_t off, len;
	} steps[] = {
		{ 0, 1 }, { 1, 4095 }, { 4095, 4097 }, { 8191, 1 }, { TSIZE - 1, 1 },
		{ TSIZE - 5000, 10000 },		/* spans the template's end */
		{ 4096 - 100, 300 },			/* inside earlier writes */
		{ 3 * MiB - 1, 1 }, { 123457, 65536 + 7 }, { 2 * MiB + 3, 4097 },
		{ 100, 12000 },				/* covers several earlier writes */
		{ TSIZE, 1 }, { TSIZE + 1, 4095 },
	};

	model_init(&m, tmpl_bytes, TSIZE, 3 * MiB);
	OK(check_disk(st, id, &m, s));
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		OK(op_write(st, id, &m, steps[i].off, (size_t)steps[i].len, s));
		OK(check_disk(st, id, &m, ++s));
	}
	OK(op_zero(st, id, &m, 50, 5000, 1));			/* punch over writes and template */
	OK(check_disk(st, id, &m, ++s));
	OK(op_write(st, id, &m, 1000, 10, s));			/* inside the punched range */
	OK(check_disk(st, id, &m, ++s));
	for (int i = 0; i < 60; i++) {
		uint64_t off = rnext(&r) % m.size;
		OK(op_write(st, id, &m, off, (size_t)(1 + rnext(&r) % 20000), ++s));
		if (i % 6 == 0)
			OK(check_disk(st, id, &m, s));
	}
	OK(check_disk(st, id, &m, ++s));
	model_free(&m);
	store_close(st);
}
END_TEST

/* A read over more extents than one lookup batch collects (READ_PIECES = 64). */
START_TEST(read_across_hundreds_of_extents_is_assembled_in_order)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 2 * MiB);
	struct disk_attr a;

	model_init(&m, tmpl_bytes, TSIZE, 2 * MiB);
	/* alternating log bytes, zero ranges and template gaps, past the template end too */
	for (uint64_t i = 0; i < 400; i++) {
		uint64_t off = 1000 + i * 4000 + (i % 7);
		if (i % 5 == 4)
			OK(op_zero(st, id, &m, off, 1 + i % 300, 1));
		else
			OK(op_write(st, id, &m, off, (size_t)(1 + i % 37), 5000 + i));
	}
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_ge(a.extents, 400);
	OK(check_read(st, id, &m, 0, 2 * MiB));
	OK(check_read(st, id, &m, 999, 300 * 4000 + 17));
	OK(check_read(st, id, &m, 1001, 64 * 4000 + 1));
	OK(check_disk(st, id, &m, 7));
	model_free(&m);
	store_close(st);
}
END_TEST

START_TEST(clones_are_isolated_and_template_file_is_unchanged)
{
	struct store *st = sopen();
	struct model m1, m2;
	uint64_t id1 = mkdisk(st, "one", "base.img", 0);
	uint64_t id2 = mkdisk(st, "two", "base.img", 2 * MiB);
	struct stat before, after;
	char p[256];

	tmpl_path("base.img", p, sizeof(p));
	ck_assert_int_eq(stat(p, &before), 0);
	ck_assert_uint_ne(id1, id2);
	model_init(&m1, tmpl_bytes, TSIZE, TSIZE);
	model_init(&m2, tmpl_bytes, TSIZE, 2 * MiB);
	OK(op_write(st, id1, &m1, 0, 70000, 1));
	OK(op_write(st, id1, &m1, TSIZE - 10, 20, 2));
	OK(op_zero(st, id1, &m1, 500000, 100000, 1));
	OK(check_disk(st, id2, &m2, 1));			/* untouched by disk one */
	OK(op_write(st, id2, &m2, 30000, 100000, 3));
	OK(op_resize(st, id2, &m2, 600000, 0));
	OK(op_resize(st, id2, &m2, 2 * MiB, 0));
	OK(check_disk(st, id1, &m1, 2));			/* untouched by disk two */
	OK(check_disk(st, id2, &m2, 3));
	assert_template_file_unchanged();
	store_close(st);

	st = sopen();
	OK(check_disk(st, id1, &m1, 4));
	OK(check_disk(st, id2, &m2, 5));
	store_close(st);
	assert_template_file_unchanged();
	ck_assert_int_eq(stat(p, &after), 0);
	ck_assert_int_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	model_free(&m1);
	model_free(&m2);
}
END_TEST

START_TEST(zero_punches_in_place_or_grows_the_disk)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 0);
	struct disk_attr a;

	model_init(&m, tmpl_bytes, TSIZE, TSIZE);
	OK(op_write(st, id, &m, 2000, 8000, 1));
	OK(op_zero(st, id, &m, 1000, 5000, 1));			/* over template and log */
	OK(check_disk(st, id, &m, 1));
	OK(op_zero(st, id, &m, TSIZE - 10, 100, 1));		/* keep_size: cut at the end */
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.size, TSIZE);
	OK(check_disk(st, id, &m, 2));
	OK(op_zero(st, id, &m, TSIZE + 500, 100, 1));		/* entirely past the end: nothing */
	OK(check_disk(st, id, &m, 3));
	OK(op_zero(st, id, &m, TSIZE - 10, 1000, 0));		/* grows */
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.size, TSIZE + 990);
	OK(check_disk(st, id, &m, 4));
	OK(op_zero(st, id, &m, 2 * MiB, 10, 0));		/* grows over a gap */
	ck_assert_uint_eq(m.size, 2 * MiB + 10);
	OK(check_disk(st, id, &m, 5));
	OK(op_zero(st, id, &m, 100, 0, 1));			/* empty range */
	OK(check_disk(st, id, &m, 6));
	ck_assert_int_eq(store_zero(st, id, UINT64_MAX - 5, 10, 1), -EFBIG);
	ck_assert_int_eq(store_zero(st, id, 0, (UINT64_C(1) << 48) + 1, 0), -EFBIG);
	ck_assert_int_eq(store_zero(st, 999, 0, 10, 1), -ENOENT);
	OK(check_disk(st, id, &m, 7));
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 8));
	model_free(&m);
	store_close(st);
}
END_TEST

START_TEST(shrink_then_grow_reads_zeros_where_the_template_had_data)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 0);
	unsigned char buf[16];

	model_init(&m, tmpl_bytes, TSIZE, TSIZE);
	OK(op_write(st, id, &m, 290000, 20000, 1));		/* straddles the new end */
	OK(op_resize(st, id, &m, 300000, 0));
	OK(check_disk(st, id, &m, 1));
	ck_assert_int_eq(store_read(st, id, buf, sizeof(buf), 300000), 0);
	OK(op_resize(st, id, &m, 2 * MiB, 0));
	OK(check_disk(st, id, &m, 2));				/* [300000, 2 MiB) all zeros */
	ck_assert_int_eq(store_read(st, id, buf, sizeof(buf), 500000), (ssize_t)sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0);
	OK(op_resize(st, id, &m, MiB, 1));			/* grow_only: no shrink */
	ck_assert_uint_eq(m.size, 2 * MiB);
	OK(check_disk(st, id, &m, 3));
	OK(op_resize(st, id, &m, 3 * MiB, 1));			/* grow_only grows */
	OK(check_disk(st, id, &m, 4));
	OK(op_resize(st, id, &m, 0, 0));			/* to nothing, and back */
	OK(op_resize(st, id, &m, TSIZE, 0));
	OK(check_disk(st, id, &m, 5));
	OK(op_write(st, id, &m, 10, 10, 2));
	OK(check_disk(st, id, &m, 6));
	ck_assert_int_eq(store_resize(st, id, (UINT64_C(1) << 48) + 1, 0), -EFBIG);
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 7));
	model_free(&m);
	store_close(st);
}
END_TEST

START_TEST(writes_at_end_are_EFBIG_and_across_end_are_cut_short)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 0);
	unsigned char buf[100] = { 1, 2, 3 };

	model_init(&m, tmpl_bytes, TSIZE, TSIZE);
	ck_assert_int_eq(store_write(st, id, buf, sizeof(buf), TSIZE), -EFBIG);
	ck_assert_int_eq(store_write(st, id, buf, sizeof(buf), TSIZE + 4096), -EFBIG);
	ck_assert_int_eq(store_write(st, id, buf, sizeof(buf), TSIZE - 10), 10);
	memcpy(m.b + TSIZE - 10, buf, 10);
	ck_assert_int_eq(store_write(st, id, buf, 0, 0), 0);
	OK(check_disk(st, id, &m, 1));
	OK(op_resize(st, id, &m, 5000, 0));
	ck_assert_int_eq(store_write(st, id, buf, sizeof(buf), 5000), -EFBIG);
	OK(op_write(st, id, &m, 4999, 100, 3));			/* 1 byte */
	OK(check_disk(st, id, &m, 2));
	ck_assert_int_eq(store_write(st, 12345, buf, 1, 0), -ENOENT);
	ck_assert_int_eq(store_read(st, 12345, buf, 1, 0), -ENOENT);
	model_free(&m);
	store_close(st);
}
END_TEST

/* One write is one record of at most REC_DATA_MAX bytes: a larger one is cut short. */
START_TEST(write_larger_than_a_record_is_cut_to_one_record_and_persists)
{
	struct store *st = sopen();
	uint64_t id = mkdisk(st, "vm", "base.img", 20 * MiB);
	size_t len = REC_DATA_MAX + 3 * MiB;
	unsigned char *buf = malloc(len), *got = malloc(len);
	struct statvfs sv;

	fill(buf, len, 11);
	ck_assert_int_eq(store_write(st, id, buf, len, 100), (ssize_t)REC_DATA_MAX);
	ck_assert_int_eq(store_write(st, id, buf + REC_DATA_MAX, len - REC_DATA_MAX, 100 + REC_DATA_MAX),
	    (ssize_t)(len - REC_DATA_MAX));
	ck_assert_int_eq(store_read(st, id, got, len, 100), (ssize_t)len);
	ck_assert_msg(memcmp(got, buf, len) == 0, "read back differs");
	ck_assert_int_eq(store_statfs(st, &sv), 0);
	ck_assert_uint_eq(sv.f_namemax, 200);
	store_close(st);
	st = sopen();
	memset(got, 0, len);
	ck_assert_int_eq(store_read(st, id, got, len, 100), (ssize_t)len);
	ck_assert_msg(memcmp(got, buf, len) == 0, "read back after reopen differs");
	ck_assert_int_eq(store_read(st, id, got, 100, 0), 100);
	ck_assert_msg(memcmp(got, tmpl_bytes, 100) == 0, "template head differs");
	store_close(st);
	free(buf);
	free(got);
}
END_TEST

START_TEST(seek_data_and_hole_follow_template_punches_and_writes)
{
	struct store *st = sopen();
	uint64_t id = mkdisk(st, "vm", "base.img", 0);
	uint64_t big = mkdisk(st, "big", "base.img", 3 * MiB);
	uint64_t res = 0;

	/* a fresh clone: all template data, the end is a hole */
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 0);
	ck_assert_int_eq(store_seek(st, id, 777, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 777);
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, TSIZE);
	ck_assert_int_eq(store_seek(st, id, TSIZE - 1, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, TSIZE - 1);
	/* past the disk end */
	ck_assert_int_eq(store_seek(st, id, TSIZE, SEEK_DATA, &res), -ENXIO);
	ck_assert_int_eq(store_seek(st, id, TSIZE, SEEK_HOLE, &res), -ENXIO);
	ck_assert_int_eq(store_seek(st, id, TSIZE + MiB, SEEK_HOLE, &res), -ENXIO);
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_SET, &res), -EINVAL);

	/* a punch in the middle */
	ck_assert_int_eq(store_zero(st, id, 256 * KiB, 256 * KiB, 1), 0);
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 256 * KiB);
	ck_assert_int_eq(store_seek(st, id, 256 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 512 * KiB);
	ck_assert_int_eq(store_seek(st, id, 300 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 512 * KiB);
	ck_assert_int_eq(store_seek(st, id, 300 * KiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 300 * KiB);
	ck_assert_int_eq(store_seek(st, id, 512 * KiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, TSIZE);
	/* written bytes inside the punch are data */
	ck_assert_int_eq(store_write(st, id, "abc", 3, 400 * KiB), 3);
	ck_assert_int_eq(store_seek(st, id, 256 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 400 * KiB);
	ck_assert_int_eq(store_seek(st, id, 400 * KiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 400 * KiB + 3);

	/* past the template's end, inside the disk: a hole until written */
	ck_assert_int_eq(store_seek(st, big, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, TSIZE);
	ck_assert_int_eq(store_seek(st, big, TSIZE, SEEK_DATA, &res), -ENXIO);
	ck_assert_int_eq(store_seek(st, big, TSIZE + 5, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, TSIZE + 5);
	ck_assert_int_eq(store_write(st, big, "xyz", 3, 2 * MiB), 3);
	ck_assert_int_eq(store_seek(st, big, TSIZE, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 2 * MiB);
	ck_assert_int_eq(store_seek(st, big, 2 * MiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 2 * MiB + 3);
	ck_assert_int_eq(store_seek(st, big, 2 * MiB + 3, SEEK_DATA, &res), -ENXIO);
	ck_assert_int_eq(store_seek(st, big, 3 * MiB - 1, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 3 * MiB - 1);
	ck_assert_int_eq(store_seek(st, big, 3 * MiB, SEEK_DATA, &res), -ENXIO);
	/* a shrink below the template end then a grow: zeros, so a hole */
	ck_assert_int_eq(store_resize(st, id, 100 * KiB, 0), 0);
	ck_assert_int_eq(store_resize(st, id, 2 * MiB, 0), 0);
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 100 * KiB);
	ck_assert_int_eq(store_seek(st, id, 100 * KiB, SEEK_DATA, &res), -ENXIO);
	store_close(st);
}
END_TEST

START_TEST(seek_passes_through_holes_of_a_sparse_template)
{
	struct store *st;
	unsigned char blk[64 * KiB];
	char p[256];
	uint64_t id, res = 0;
	int fd;
	off_t h;

	tmpl_path("sparse.img", p, sizeof(p));
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	fill(blk, sizeof(blk), 9);
	ck_assert_int_eq(pwrite(fd, blk, sizeof(blk), 0), (ssize_t)sizeof(blk));
	ck_assert_int_eq(pwrite(fd, blk, sizeof(blk), 3 * MiB), (ssize_t)sizeof(blk));
	ck_assert_int_eq(ftruncate(fd, 4 * MiB), 0);
	close(fd);
	fd = open(p, O_RDONLY);
	h = lseek(fd, 0, SEEK_HOLE);
	close(fd);
	if (h != (off_t)(64 * KiB))
		return;		/* this file system does not report holes: nothing to pass through */

	st = sopen();
	id = mkdisk(st, "vm", "sparse.img", 0);
	ck_assert_int_eq(store_seek(st, id, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 64 * KiB);
	ck_assert_int_eq(store_seek(st, id, 64 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, 3 * MiB);
	ck_assert_int_eq(store_seek(st, id, 3 * MiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 3 * MiB + 64 * KiB);
	ck_assert_int_eq(store_seek(st, id, 3 * MiB + 64 * KiB, SEEK_DATA, &res), -ENXIO);
	/* a write inside the template's hole is data */
	ck_assert_int_eq(store_write(st, id, "q", 1, MiB), 1);
	ck_assert_int_eq(store_seek(st, id, 64 * KiB, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, MiB);
	ck_assert_int_eq(store_seek(st, id, MiB, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, MiB + 1);
	{
		unsigned char got[64 * KiB];
		ck_assert_int_eq(store_read(st, id, got, sizeof(got), 3 * MiB), (ssize_t)sizeof(got));
		ck_assert(memcmp(got, blk, sizeof(got)) == 0);
		ck_assert_int_eq(store_read(st, id, got, 100, 2 * MiB), 100);
		for (int i = 0; i < 100; i++)
			ck_assert_uint_eq(got[i], 0);
	}
	store_close(st);
}
END_TEST

/* ---- persistence -------------------------------------------------------- */

/*
 * A checkpointed extent past the template's end, then a shrink into it and a
 * grow back: the catalog must keep only the extent's head, so the regrown
 * part reads zeros after a reopen.
 */
START_TEST(checkpointed_extent_cut_by_shrink_stays_cut_after_reopen)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 3 * MiB);

	model_init(&m, tmpl_bytes, TSIZE, 3 * MiB);
	OK(op_write(st, id, &m, 2 * MiB, 512 * KiB, 1));
	OK(op_write(st, id, &m, 300 * KiB, 512 * KiB, 2));	/* inside the template */
	ck_assert_int_eq(store_checkpoint(st), 0);
	OK(op_resize(st, id, &m, 2 * MiB + 100 * KiB, 0));
	OK(op_resize(st, id, &m, 3 * MiB, 0));
	OK(op_zero(st, id, &m, 500 * KiB, 10, 1));		/* a hole in the middle of an extent */
	OK(check_disk(st, id, &m, 1));
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 2));
	ck_assert_int_eq(store_checkpoint(st), 0);
	OK(op_resize(st, id, &m, 400 * KiB, 0));		/* inside the template this time */
	OK(op_resize(st, id, &m, 3 * MiB, 0));
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 3));
	model_free(&m);
	store_close(st);
}
END_TEST

START_TEST(attributes_persist_across_reopen)
{
	struct store *st = sopen();
	uint64_t id = mkdisk(st, "vm", "base.img", 0);
	const int64_t mt = INT64_C(1500000000123456789);
	struct disk_attr a;

	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.mode, 0600);
	store_close(st);

	/* nothing written since the last checkpoint: only attributes change */
	st = sopen();
	ck_assert_int_eq(store_setattr(st, id, STORE_SET_MODE | STORE_SET_UID | STORE_SET_GID,
	    0640, 1234, 5678, 0), 0);
	ck_assert_int_eq(store_setattr(st, id, STORE_SET_MTIME, 0, 0, 0, mt), 0);
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.mode, 0640);
	ck_assert_int_eq(a.mtime_ns, mt);
	ck_assert_int_eq(store_setattr(st, 999, STORE_SET_MODE, 0600, 0, 0, 0), -ENOENT);
	store_close(st);
	st = sopen();
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.mode, 0640);
	ck_assert_uint_eq(a.uid, 1234);
	ck_assert_uint_eq(a.gid, 5678);
	ck_assert_int_eq(a.mtime_ns, mt);
	ck_assert_uint_eq(a.size, TSIZE);
	store_close(st);
}
END_TEST

START_TEST(close_and_reopen_reads_the_same_bytes)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 0);

	model_init(&m, tmpl_bytes, TSIZE, TSIZE);
	OK(script(st, id, &m, 0));
	OK(check_disk(st, id, &m, 1));
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 2));
	store_close(st);
	st = sopen();				/* a second round trip, nothing changed */
	OK(check_disk(st, id, &m, 3));
	model_free(&m);
	store_close(st);
}
END_TEST

/*
 * catalog_range_replace() against a model of 2048 one-byte units: random
 * ranges replaced by random extents (gaps, zero extents, extents equal to
 * the rows already there, rows straddling either bound), the rows read back
 * after every replacement: the units they cover must be exactly the model's,
 * with no overlap and every row's checksum right.
 */
#define RR_UNITS	2048
#define RR_NONE		INT64_MIN

static int64_t rr_got[RR_UNITS];

static int
rr_collect(int64_t disk_id, uint64_t loff, uint64_t len, int64_t laddr, void *arg)
{
	(void)disk_id;
	(void)arg;
	ck_assert_uint_le(loff + len, RR_UNITS);
	for (uint64_t u = loff; u < loff + len; u++) {
		ck_assert_msg(rr_got[u] == RR_NONE, "rows overlap at unit %llu", (unsigned long long)u);
		rr_got[u] = laddr;
	}
	return 0;
}

START_TEST(catalog_range_replace_matches_unit_model)
{
	static int64_t model[RR_UNITS];
	uint64_t ext[64][3];
	char path[256], err[256];
	uint8_t uuid[16] = { 7 };
	struct catalog *cat;
	struct catalog_template t = { .size = 1, .mtime_ns = 1, .ino = 1 };
	struct catalog_disk d = { .size = RR_UNITS, .mode = 0600 };
	uint64_t rng = 0x9e3779b97f4a7c15u;
#define RR_RAND(n)	(rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17, rng % (n))

	snprintf(path, sizeof(path), "%s/rr.db", datadir);
	ck_assert_int_eq(catalog_open(path, CATALOG_CREATE, uuid, 64, &cat, err, sizeof(err)), 0);
	snprintf(t.name, sizeof(t.name), "t.img");
	snprintf(t.fingerprint, sizeof(t.fingerprint), "x");
	ck_assert_int_eq(catalog_template_get(cat, &t), 0);
	snprintf(d.name, sizeof(d.name), "d.img");
	d.template_id = t.id;
	ck_assert_int_eq(catalog_disk_add(cat, &d), 0);
	for (int u = 0; u < RR_UNITS; u++)
		model[u] = RR_NONE;
	ck_assert_int_eq(catalog_begin(cat), 0);
	for (int op = 0; op < 3000; op++) {
		uint64_t start = RR_RAND(RR_UNITS - 1), end = start + 1 + RR_RAND(op % 4 ? 64 : 600);
		size_t n = 0;
		if (end > RR_UNITS)
			end = RR_UNITS;
		for (uint64_t pos = start + RR_RAND(4) * RR_RAND(2); pos < end && n < 64; ) {
			uint64_t len = 1 + RR_RAND(op % 3 ? 8 : 80);
			int64_t laddr = RR_RAND(5) == 0 ? -1 : (int64_t)(1 + RR_RAND(6));
			if (pos + len > end)
				len = end - pos;
			/* now and then exactly what the rows already hold there */
			if (RR_RAND(3) == 0 && model[pos] != RR_NONE)
				laddr = model[pos];
			ext[n][0] = pos;
			ext[n][1] = len;
			ext[n][2] = laddr < 0 ? UINT64_MAX : (uint64_t)laddr;
			n++;
			pos += len + RR_RAND(3) * RR_RAND(5);
		}
		for (uint64_t u = start; u < end; u++)
			model[u] = RR_NONE;
		for (size_t k = 0; k < n; k++)
			for (uint64_t u = ext[k][0]; u < ext[k][0] + ext[k][1]; u++)
				model[u] = ext[k][2] == UINT64_MAX ? CATALOG_LADDR_ZERO : (int64_t)ext[k][2];
		ck_assert_int_eq(catalog_range_replace(cat, d.id, start, end,
		    (const uint64_t (*)[3])ext, n), 0);
		for (int u = 0; u < RR_UNITS; u++)
			rr_got[u] = RR_NONE;
		ck_assert_int_eq(catalog_each_extent(cat, rr_collect, NULL), 0);
		for (int u = 0; u < RR_UNITS; u++)
			ck_assert_msg(rr_got[u] == model[u], "op %d [%llu, %llu): unit %d is %lld, "
			    "model %lld", op, (unsigned long long)start, (unsigned long long)end, u,
			    (long long)rr_got[u], (long long)model[u]);
	}
	ck_assert_int_eq(catalog_commit(cat, 64, 1), 0);
	catalog_close(cat);
#undef RR_RAND
}
END_TEST

START_TEST(checkpoint_between_writes_then_reopen_reads_the_same_bytes)
{
	struct store *st = sopen();
	struct model m, m2;
	uint64_t id = mkdisk(st, "vm", "base.img", 0);
	uint64_t id2 = mkdisk(st, "other", "base.img", 2 * MiB);

	model_init(&m, tmpl_bytes, TSIZE, TSIZE);
	model_init(&m2, tmpl_bytes, TSIZE, 2 * MiB);
	OK(script(st, id, &m, 0));
	OK(op_write(st, id2, &m2, 1000, 300000, 77));
	ck_assert_int_eq(store_checkpoint(st), 0);
	ck_assert_int_eq(store_checkpoint(st), 0);		/* nothing new: still fine */
	OK(check_disk(st, id, &m, 1));
	OK(script(st, id, &m, 1));				/* overlaps and straddles part 0 */
	OK(op_write(st, id2, &m2, 200000, 50000, 78));		/* inside the checkpointed extent */
	OK(op_zero(st, id2, &m2, 900, 200, 1));			/* straddles its start */
	OK(check_disk(st, id, &m, 2));
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 3));
	OK(check_disk(st, id2, &m2, 4));
	ck_assert_int_eq(store_checkpoint(st), 0);
	OK(script(st, id, &m, 2));
	ck_assert_int_eq(store_checkpoint(st), 0);
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 5));
	OK(check_disk(st, id2, &m2, 6));
	model_free(&m);
	model_free(&m2);
	store_close(st);
}
END_TEST

/* ---- crash recovery ----------------------------------------------------- */

enum crash_end { END_EXIT, END_KILL };

struct crash_plan {
	int	 parts[4];	/* script parts, -1 ends */
	int	 checkpoint_after;	/* index in parts after which to checkpoint, -1: never */
	unsigned checkpoint_ms;
	int	 concurrent_checkpoints;	/* the script runs in a thread while checkpoints loop */
	enum crash_end end;
};

struct script_job {
	struct store	*st;
	uint64_t	 id;
	struct model	*m;
	const struct crash_plan *plan;
	atomic_int	 done;
	int		 rc;
};

static void *
script_thread(void *arg)
{
	struct script_job *j = arg;

	j->rc = 0;
	for (int i = 0; i < 4 && j->plan->parts[i] >= 0 && j->rc == 0; i++)
		j->rc = script(j->st, j->id, j->m, j->plan->parts[i]);
	atomic_store(&j->done, 1);
	return NULL;
}

/* In the child: run the plan on the store and end without closing it. */
static void __attribute__((noreturn))
crash_child(uint64_t id, const struct crash_plan *plan)
{
	struct store_opts o = opts();
	struct store *st = NULL;
	struct model m;
	char err[512] = "";

	o.create = 0;
	if (plan->checkpoint_ms)
		o.checkpoint_ms = plan->checkpoint_ms;
	if (store_open(&o, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "child: store_open: %s\n", err);
		_exit(10);
	}
	/* the model is not checked here, only kept so the ops compute what they expect */
	m.b = calloc(1, MODEL_CAP);
	{
		struct disk_attr a;
		if (!m.b || store_getattr(st, id, &a) != 0 || store_read(st, id, m.b, a.size, 0) != (ssize_t)a.size)
			_exit(11);
		m.size = a.size;
	}
	if (plan->concurrent_checkpoints) {
		struct script_job j = { .st = st, .id = id, .m = &m, .plan = plan };
		pthread_t t;
		int n = 0;
		if (pthread_create(&t, NULL, script_thread, &j) != 0)
			_exit(12);
		while (!atomic_load(&j.done)) {
			if (store_checkpoint(st) != 0)
				_exit(13);
			n++;
		}
		pthread_join(t, NULL);
		if (j.rc != 0) {
			fprintf(stderr, "child: %s\n", opfail);
			_exit(14);
		}
		if (n < 2) {
			fprintf(stderr, "child: only %d checkpoints ran during the writes\n", n);
			_exit(15);
		}
	} else {
		for (int i = 0; i < 4 && plan->parts[i] >= 0; i++) {
			if (script(st, id, &m, plan->parts[i]) != 0) {
				fprintf(stderr, "child: %s\n", opfail);
				_exit(16);
			}
			if (i == plan->checkpoint_after && store_checkpoint(st) != 0)
				_exit(17);
			if (plan->checkpoint_ms) {
				struct timespec ts = { 0, 300 * 1000000L };
				nanosleep(&ts, NULL);
			}
		}
	}
	if (store_sync(st, id) != 0)
		_exit(18);
	if (plan->end == END_KILL)
		raise(SIGKILL);
	_exit(0);
}

/* Fork a child that runs plan and dies; apply the plan to the model here. */
static void
crash_run(uint64_t id, struct model *m, const struct crash_plan *plan)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		crash_child(id, plan);
	for (int i = 0; i < 4 && plan->parts[i] >= 0; i++)
		OK(script(NULL, id, m, plan->parts[i]));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (plan->end == END_KILL)
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		    "child did not die of SIGKILL (status %#x)", status);
	else
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child failed (status %#x)", status);
}

static uint64_t
fresh_store_with_disk(struct model *m)
{
	struct store *st = sopen();
	uint64_t id = mkdisk(st, "vm", "base.img", 0);
	store_close(st);
	model_init(m, tmpl_bytes, TSIZE, TSIZE);
	return id;
}

/*
 * A replacement worker starts from the map snapshot its predecessor left in
 * shared memory and replays only the log written after it; it must end up
 * exactly where the dead worker was.  _i: 0 = a sound snapshot (used),
 * 1 = its extents overwritten with garbage (refused, and the catalog plus
 * the log give the same result), 2 = a snapshot taken, then more disks'
 * worth of changes, then another snapshot (the newer half wins).
 */
START_TEST(takeover_from_snapshot_matches_the_dead_worker)
{
	size_t cap = 64 * MiB;
	uint8_t *area = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	struct store_opts o = opts();
	struct store *st;
	pid_t pid;
	int status;

	ck_assert_ptr_ne(area, MAP_FAILED);
	o.create = 0;
	o.snap_area = area;
	o.snap_cap = cap;
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct model cm;
		struct disk_attr a;
		char err[512];
		if (store_open(&o, &st, err, sizeof(err)) != 0)
			_exit(10);
		cm.b = calloc(1, MODEL_CAP);
		if (!cm.b || store_getattr(st, id, &a) != 0 ||
		    store_read(st, id, cm.b, a.size, 0) != (ssize_t)a.size)
			_exit(11);
		cm.size = a.size;
		if (script(st, id, &cm, 0) != 0 || snapshot_write(st) != 0)
			_exit(12);
		if (_i == 2 && (script(st, id, &cm, 2) != 0 || snapshot_write(st) != 0))
			_exit(13);
		/* after the snapshot: only in the log */
		if (script(st, id, &cm, 1) != 0 || store_sync(st, id) != 0)
			_exit(14);
		_exit(0);
	}
	OK(script(NULL, id, &m, 0));
	if (_i == 2)
		OK(script(NULL, id, &m, 2));
	OK(script(NULL, id, &m, 1));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status %#x)", status);
	if (_i == 1) {
		/* both halves: past the header and the first disk record, the extents */
		for (int half = 0; half < 2; half++)
			memset(area + (size_t)half * (cap / 2) + 128, 0xff, 4096);
	}
	o.takeover = 1;
	st = sopen_with(&o);
	/* from a snapshot the checkpoint position is not known (0): that tells which path ran */
	if (_i == 1)
		ck_assert_uint_ne(st->cp_laddr, 0);
	else
		ck_assert_uint_eq(st->cp_laddr, 0);
	OK(check_disk(st, id, &m, 40 + (uint64_t)_i));
	/* and it keeps working, and a later ordinary open agrees */
	OK(op_write(st, id, &m, 4321, 77777, 31));
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 50 + (uint64_t)_i));
	store_close(st);
	munmap(area, cap);
	model_free(&m);
}
END_TEST

/* Bytes the log's segment files take; how many are cut to their header. */
static uint64_t
log_file_bytes(int *released)
{
	char dir[600];
	DIR *d;
	struct dirent *de;
	uint64_t sum = 0;

	*released = 0;
	snprintf(dir, sizeof(dir), "%s/log", datadir);
	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		char p[1200];
		struct stat sb;
		if (!strstr(de->d_name, ".seg") || strstr(de->d_name, ".cut"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		ck_assert_int_eq(stat(p, &sb), 0);
		sum += (uint64_t)sb.st_size;
		*released += sb.st_size == (off_t)sizeof(struct seg_header);
	}
	closedir(d);
	return sum;
}

/*
 * The cleaner gives back the space of overwritten data and nothing else:
 * a disk rewritten six times (most of the log dead) next to a disk written
 * once at the start (its data live in the oldest segments, so it must be
 * moved).  After cleaning, every byte of both reads back, a check finds
 * nothing wrong, and so does a reopen (which replays from the checkpoint the
 * cleaner wrote).  _i = 1: the disk written once is deleted first (its
 * records die with it).
 */
START_TEST(cleaner_releases_dead_segments_and_keeps_every_byte)
{
	struct model m, m2;
	uint64_t id = fresh_store_with_disk(&m), id2, before, after, appended;
	struct store *st = sopen();
	struct clean_stats cs;
	struct sbuf sb = SBUF_INIT;
	int rel_before, rel_after;

	id2 = mkdisk(st, "keep", "base.img", 4 * MiB);
	model_init(&m2, tmpl_bytes, TSIZE, 4 * MiB);
	for (uint64_t off = 0; off < 4 * MiB; off += 256 * 1024)
		OK(op_write(st, id2, &m2, off, 256 * 1024, 900 + off));
	OK(op_resize(st, id, &m, 6 * MiB, 0));
	for (int pass = 0; pass < 6; pass++) {
		for (uint64_t off = 0; off < 6 * MiB; off += 128 * 1024)
			OK(op_write(st, id, &m, off + (uint64_t)pass * 512, 128 * 1024 - 1024,
			    (uint64_t)pass * 100000 + off));
		ck_assert_int_eq(store_checkpoint(st), 0);
	}
	if (_i == 1)
		ck_assert_int_eq(store_unlink(st, "keep"), 0);
	before = log_file_bytes(&rel_before);
	ck_assert_uint_ge(before, 36 * MiB);	/* 4 + 6 x ~6 MiB */
	appended = wlog_size(st->log);
	ck_assert_int_eq(store_clean(st, 50, &cs), 0);
	appended = wlog_size(st->log) - appended;	/* the moved data, as new records */
	after = log_file_bytes(&rel_after);
	ck_assert_uint_ge(cs.segments_released, 1);
	ck_assert_int_eq(rel_after - rel_before, (int)cs.segments_released);
	ck_assert_uint_eq(before + appended - after, cs.bytes_released);
	ck_assert_uint_le(after, before / 2);
	if (_i == 0)
		ck_assert_uint_ge(cs.bytes_moved, 4 * MiB);	/* all of "keep" lived in segment 1 */
	OK(check_disk(st, id, &m, 60));
	if (_i == 0)
		OK(check_disk(st, id2, &m2, 61));
	ck_assert_int_eq(store_check(st, &sb), 0);
	/* a second pass has nothing left worth doing */
	ck_assert_int_eq(store_clean(st, 50, &cs), 0);
	ck_assert_uint_eq(cs.segments_released, 0);
	store_close(st);

	st = sopen();
	OK(check_disk(st, id, &m, 62));
	if (_i == 0)
		OK(check_disk(st, id2, &m2, 63));
	sbuf_reset(&sb);
	ck_assert_msg(store_check(st, &sb) == 0, "%s", sbuf_str(&sb));
	store_close(st);
	sbuf_release(&sb);
	model_free(&m);
	model_free(&m2);
}
END_TEST

struct clean_race {
	struct store	*st;
	uint64_t	 id, id2;
	struct model	*m, *m2;
	atomic_int	 stop;
	int		 rc;
	uint64_t	 reads;
};

/* Rewrite disk id over and over (the model follows). */
static void *
race_writer(void *arg)
{
	struct clean_race *r = arg;

	for (int pass = 0; pass < 14 && r->rc == 0; pass++)
		for (uint64_t off = 0; off < 6 * MiB && r->rc == 0; off += 192 * 1024)
			r->rc = op_write(r->st, r->id, r->m, off + (uint64_t)(pass % 5) * 4096,
			    64 * 1024 + (uint64_t)pass * 512, 7000000 + (uint64_t)pass * 1000 + off);
	atomic_store(&r->stop, 1);
	return NULL;
}

/* Read disk id2 (never written again) while the cleaner moves it: always the right bytes. */
static void *
race_reader(void *arg)
{
	struct clean_race *r = arg;
	unsigned char *buf = malloc(64 * 1024);
	uint64_t x = 12345;

	while (!atomic_load(&r->stop) && buf) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		uint64_t off = (x >> 20) % (4 * MiB - 64 * 1024);
		ssize_t n = store_read(r->st, r->id2, buf, 64 * 1024, off);
		if (n != 64 * 1024 || memcmp(buf, r->m2->b + off, 64 * 1024) != 0) {
			snprintf(opfail, sizeof(opfail), "read of %llu at %llu during cleaning: %zd, %s",
			    (unsigned long long)r->id2, (unsigned long long)off, n,
			    n == 64 * 1024 ? "wrong bytes" : "error");
			r->rc = -1;
			break;
		}
		r->reads++;
	}
	free(buf);
	return NULL;
}

/*
 * Cleaning while a writer rewrites one disk and a reader reads another: a
 * guest write that lands while its old extent is being moved wins (the move
 * is dropped), and no read ever sees a released segment.
 */
START_TEST(cleaner_races_writers_and_readers_without_losing_anything)
{
	struct model m, m2;
	uint64_t id = fresh_store_with_disk(&m), id2;
	struct store *st = sopen();
	struct clean_race r = { 0 };
	struct clean_stats cs;
	uint64_t released = 0, passes = 0;
	struct sbuf sb = SBUF_INIT;
	pthread_t tw, tr;

	id2 = mkdisk(st, "keep", "base.img", 4 * MiB);
	model_init(&m2, tmpl_bytes, TSIZE, 4 * MiB);
	for (uint64_t off = 0; off < 4 * MiB; off += 256 * 1024)
		OK(op_write(st, id2, &m2, off, 256 * 1024, 900 + off));
	OK(op_resize(st, id, &m, 6 * MiB + 128 * 1024, 0));
	r = (struct clean_race){ .st = st, .id = id, .id2 = id2, .m = &m, .m2 = &m2 };
	ck_assert_int_eq(pthread_create(&tw, NULL, race_writer, &r), 0);
	ck_assert_int_eq(pthread_create(&tr, NULL, race_reader, &r), 0);
	while (!atomic_load(&r.stop)) {
		ck_assert_int_eq(store_checkpoint(st), 0);
		ck_assert_int_eq(store_clean(st, 30, &cs), 0);
		released += cs.segments_released;
		passes++;
	}
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	ck_assert_msg(r.rc == 0, "%s", opfail);
	/* how many passes ran during the writes depends on the machine: finish the job now */
	for (int k = 0; k < 3; k++) {
		ck_assert_int_eq(store_checkpoint(st), 0);
		ck_assert_int_eq(store_clean(st, 30, &cs), 0);
		released += cs.segments_released;
	}
	ck_assert_uint_ge(released, 2);
	ck_assert_uint_ge(r.reads, 20);
	OK(check_disk(st, id, &m, 70));
	OK(check_disk(st, id2, &m2, 71));
	ck_assert_msg(store_check(st, &sb) == 0, "%s", sbuf_str(&sb));
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 72));
	OK(check_disk(st, id2, &m2, 73));
	store_close(st);
	printf("cleaner race: %llu passes released %llu segments; %llu reads checked\n",
	    (unsigned long long)passes, (unsigned long long)released, (unsigned long long)r.reads);
	sbuf_release(&sb);
	model_free(&m);
	model_free(&m2);
}
END_TEST

/*
 * A zero range past the end grows the disk and zeroes it in one record
 * (REC_F_GROW): with two, a crash between them left the disk grown but not
 * zeroed (found by tests/rigs/power-loss).  Also after a shrink that hid template
 * bytes, and a fallocate that only grows (one REC_SIZE).
 */
START_TEST(zero_past_the_end_is_one_record)
{
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	struct store *st;
	pid_t pid;
	int status;

	/* in a child that ends without a checkpoint, so the parent's open replays the records */
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct store_opts o = opts();
		char err[512];
		uint64_t seq;
		o.create = 0;
		if (store_open(&o, &st, err, sizeof(err)) != 0)
			_exit(10);
		if (op_write(st, id, &m, 1000, 300000, 5) || op_resize(st, id, &m, 500000, 0))
			_exit(11);
		seq = wlog_next_seq(st->log);
		if (op_zero(st, id, &m, 400000, 900000, 0) || wlog_next_seq(st->log) - seq != 1)
			_exit(12);	/* crosses the end: one record grows to 1300000 */
		seq = wlog_next_seq(st->log);
		if (op_zero(st, id, &m, 1400000, 1000, 0) || wlog_next_seq(st->log) - seq != 1)
			_exit(13);	/* past the end, leaving a gap */
		if (check_disk(st, id, &m, 80) || store_sync(st, id))
			_exit(14);
		_exit(0);
	}
	OK(op_write(NULL, id, &m, 1000, 300000, 5));
	OK(op_resize(NULL, id, &m, 500000, 0));	/* shrink: hides template bytes past it */
	OK(op_zero(NULL, id, &m, 400000, 900000, 0));
	OK(op_zero(NULL, id, &m, 1400000, 1000, 0));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status %#x)", status);
	ck_assert_uint_eq(m.size, 1401000);
	st = sopen();
	OK(check_disk(st, id, &m, 81));
	store_close(st);
	model_free(&m);
}
END_TEST

/* _i: 0 = the child exits without store_close, 1 = it is killed by SIGKILL */
START_TEST(crash_after_sync_loses_nothing)
{
	struct crash_plan p1 = { { 0, 1, -1 }, 0, 0, 0, _i ? END_KILL : END_EXIT };
	struct crash_plan p2 = { { 2, -1 }, -1, 0, 0, _i ? END_KILL : END_EXIT };
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	struct store *st;
	char seg[256];

	/* writes, a checkpoint, more writes (replayed on top of it), crash */
	crash_run(id, &m, &p1);
	ck_assert_uint_ge(newest_segment(seg, sizeof(seg)), 2);	/* the log rolled */
	st = sopen();
	OK(check_disk(st, id, &m, 1));
	store_close(st);

	/* again on top of the recovered store, without a checkpoint */
	crash_run(id, &m, &p2);
	st = sopen();
	OK(check_disk(st, id, &m, 2));
	/* and the recovered store keeps working */
	OK(op_write(st, id, &m, 12345, 54321, 999));
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 3));
	model_free(&m);
	store_close(st);
}
END_TEST

START_TEST(crash_with_checkpoints_racing_the_writes_loses_nothing)
{
	struct crash_plan p = { { 0, 1, -1 }, -1, 0, 1, END_KILL };
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	struct store *st;

	crash_run(id, &m, &p);
	st = sopen();
	OK(check_disk(st, id, &m, 1));
	model_free(&m);
	store_close(st);
}
END_TEST

START_TEST(checkpoint_thread_runs_and_crash_after_it_loses_nothing)
{
	struct crash_plan p = { { 0, 1, -1 }, -1, 50, 0, END_KILL };
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	struct store *st;
	struct catalog *cat = NULL;
	char path[256], err[512] = "";
	uint64_t laddr = 0, seq = 0;

	crash_run(id, &m, &p);
	/* the background thread moved the checkpoint past the start of the log */
	snprintf(path, sizeof(path), "%s/catalog.db", datadir);
	ck_assert_int_eq(catalog_open(path, 0, NULL, 0, &cat, err, sizeof(err)), 0);
	ck_assert_int_eq(catalog_checkpoint_pos(cat, &laddr, &seq), 0);
	catalog_close(cat);
	ck_assert_uint_gt(laddr, wlog_first_laddr());
	ck_assert_uint_gt(seq, 1);
	st = sopen();
	OK(check_disk(st, id, &m, 1));
	model_free(&m);
	store_close(st);
}
END_TEST

/*
 * After a crash, the newest segment ends in garbage (a write that never
 * completed).  _i: 0 = random bytes, 1 = a copy of an earlier record (stale
 * sequence number), 2 = half a record header.
 */
START_TEST(garbage_after_the_log_tail_is_cut_and_data_is_intact)
{
	struct crash_plan p = { { 0, 1, -1 }, 0, 0, 0, END_KILL };
	struct model m;
	uint64_t id = fresh_store_with_disk(&m);
	unsigned char junk[5000];
	struct store *st;
	char seg[256];
	int64_t size;
	int fd;

	crash_run(id, &m, &p);
	newest_segment(seg, sizeof(seg));
	size = file_size(seg);
	ck_assert_int_gt(size, 64);
	if (_i == 0) {
		fill(junk, sizeof(junk), 4242);
	} else {
		fd = open(seg, O_RDONLY);
		ck_assert_int_eq(pread(fd, junk, sizeof(junk), 64), (ssize_t)sizeof(junk));
		close(fd);
	}
	fd = open(seg, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, junk, _i == 2 ? 40 : sizeof(junk)), _i == 2 ? 40 : (ssize_t)sizeof(junk));
	close(fd);

	st = sopen();
	ck_assert_int_eq(file_size(seg), size);			/* the garbage was cut */
	OK(check_disk(st, id, &m, 1));
	OK(op_write(st, id, &m, 777, 3333, 31337));		/* appends continue at the cut */
	ck_assert_int_eq(store_sync(st, id), 0);
	store_close(st);
	st = sopen();
	OK(check_disk(st, id, &m, 2));
	model_free(&m);
	store_close(st);
}
END_TEST

/*
 * The child deletes a disk it wrote to (purged at once: nothing holds it
 * open) and creates another, then dies.  The log still holds records of the
 * deleted disk after the checkpoint: replay must skip them.
 */
START_TEST(crash_after_deleting_a_written_disk_replays_the_others)
{
	struct store *st = sopen();
	uint64_t ida = mkdisk(st, "a", "base.img", 0), idb = mkdisk(st, "b", "base.img", 0);
	struct model ma, mb;
	struct disk_attr at;
	pid_t pid;
	int status;

	store_close(st);
	model_init(&ma, tmpl_bytes, TSIZE, TSIZE);
	model_init(&mb, tmpl_bytes, TSIZE, TSIZE);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct store_opts o = opts();
		struct store *cs = NULL;
		char err[512] = "";
		struct disk_attr c;
		if (store_open(&o, &cs, err, sizeof(err)) != 0)
			_exit(10);
		if (op_write(cs, idb, &mb, 100, 200000, 1) || op_write(cs, ida, &ma, 1000, 300000, 2) ||
		    op_resize(cs, idb, &mb, 2 * MiB, 0) || op_write(cs, idb, &mb, MiB + 5000, 9000, 3))
			_exit(11);
		if (store_unlink(cs, "b") != 0 || store_getattr(cs, idb, &c) != -ENOENT)
			_exit(12);
		if (store_create(cs, "c", "base.img", 0, NULL, &c, err, sizeof(err)) != 0)
			_exit(13);
		if (op_write(cs, ida, &ma, 5000, 100, 4) || store_sync(cs, ida) != 0)
			_exit(14);
		raise(SIGKILL);
	}
	OK(op_write(NULL, ida, &ma, 1000, 300000, 2));
	OK(op_write(NULL, ida, &ma, 5000, 100, 4));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %#x", status);

	st = sopen();
	OK(check_disk(st, ida, &ma, 1));
	ck_assert_int_eq(store_getattr(st, idb, &at), -ENOENT);
	ck_assert_int_eq(store_lookup(st, "b", &at), -ENOENT);
	ck_assert_int_eq(store_lookup(st, "c", &at), 0);
	ck_assert_uint_gt(at.id, idb);				/* ids are not reused */
	model_free(&mb);
	model_init(&mb, tmpl_bytes, TSIZE, TSIZE);
	OK(check_disk(st, at.id, &mb, 2));
	model_free(&ma);
	model_free(&mb);
	store_close(st);
}
END_TEST

/* ---- namespace ------------------------------------------------------------ */

START_TEST(listing_shows_linked_disks_in_id_order)
{
	struct store *st = sopen();
	uint64_t id1 = mkdisk(st, "one", "base.img", 0);
	uint64_t id2 = mkdisk(st, "two", "base.img", 0);
	uint64_t id3 = mkdisk(st, "three", "base.img", 2 * MiB);
	struct disk_attr a;
	struct sbuf sb = SBUF_INIT;

	ck_assert(id1 < id2 && id2 < id3);
	ck_assert_int_eq(store_unlink(st, "two"), 0);
	ck_assert_int_eq(store_next(st, 0, &a), 0);
	ck_assert_uint_eq(a.id, id1);
	ck_assert_str_eq(a.name, "one");
	ck_assert_int_eq(store_next(st, a.id, &a), 0);
	ck_assert_uint_eq(a.id, id3);
	ck_assert_str_eq(a.name, "three");
	ck_assert_uint_eq(a.size, 2 * MiB);
	ck_assert_int_eq(store_next(st, a.id, &a), -ENOENT);
	store_describe(st, &sb, 1);
	ck_assert_str_eq(sbuf_str(&sb),
	    "[{\"name\":\"one\",\"template\":\"base.img\",\"size\":1048699,\"log_bytes\":0,"
	    "\"extents\":0,\"opens\":0,\"state\":\"ok\"},"
	    "{\"name\":\"three\",\"template\":\"base.img\",\"size\":2097152,\"log_bytes\":0,"
	    "\"extents\":0,\"opens\":0,\"state\":\"ok\"}]");
	sbuf_reset(&sb);
	store_describe(st, &sb, 0);
	ck_assert_msg(contains(sbuf_str(&sb), "one") && contains(sbuf_str(&sb), "three") &&
	    !contains(sbuf_str(&sb), "two"), "describe: %s", sbuf_str(&sb));
	sbuf_release(&sb);
	store_close(st);
}
END_TEST


START_TEST(unlinked_open_disk_works_until_released_then_is_gone)
{
	struct store *st = sopen();
	struct model m;
	uint64_t id = mkdisk(st, "vm", "base.img", 0), id2;
	struct disk_attr a;

	model_init(&m, tmpl_bytes, TSIZE, TSIZE);
	OK(op_write(st, id, &m, 100, 5000, 1));
	ck_assert_int_eq(store_open_disk(st, id), 0);
	ck_assert_int_eq(store_open_disk(st, id), 0);
	ck_assert_int_eq(store_unlink(st, "vm"), 0);
	ck_assert_int_eq(store_lookup(st, "vm", &a), -ENOENT);
	ck_assert_int_eq(store_next(st, 0, &a), -ENOENT);	/* not listed */
	ck_assert_int_eq(store_unlink(st, "vm"), -ENOENT);
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_str_eq(a.name, "");
	ck_assert_int_eq(a.opens, 2);
	OK(check_disk(st, id, &m, 1));
	OK(op_write(st, id, &m, 200000, 7000, 2));
	OK(op_resize(st, id, &m, 2 * MiB, 0));
	OK(check_disk(st, id, &m, 2));
	/* the name is free for a new disk meanwhile */
	id2 = mkdisk(st, "vm", "base.img", 0);
	ck_assert_uint_ne(id2, id);
	store_release_disk(st, id);
	OK(check_disk(st, id, &m, 3));				/* one open left */
	store_release_disk(st, id);
	ck_assert_int_eq(store_getattr(st, id, &a), -ENOENT);
	{
		unsigned char b[4];
		ck_assert_int_eq(store_read(st, id, b, sizeof(b), 0), -ENOENT);
		ck_assert_int_eq(store_write(st, id, b, sizeof(b), 0), -ENOENT);
	}
	model_free(&m);
	/* the new "vm" is a clean clone */
	model_init(&m, tmpl_bytes, TSIZE, TSIZE);
	OK(check_disk(st, id2, &m, 4));
	store_close(st);
	st = sopen();
	ck_assert_int_eq(store_getattr(st, id, &a), -ENOENT);
	ck_assert_int_eq(store_lookup(st, "vm", &a), 0);
	ck_assert_uint_eq(a.id, id2);
	OK(check_disk(st, id2, &m, 5));
	model_free(&m);
	store_close(st);
}
END_TEST

START_TEST(unlinked_disk_is_kept_without_purge_and_purged_at_next_purging_open)
{
	struct store_opts o = opts();
	struct store *st;
	struct model m;
	struct disk_attr a;
	uint64_t id;

	o.purge_unlinked = 0;
	st = sopen_with(&o);
	id = mkdisk(st, "vm", "base.img", 0);
	model_init(&m, tmpl_bytes, TSIZE, TSIZE);
	OK(op_write(st, id, &m, 0, 100, 1));
	ck_assert_int_eq(store_unlink(st, "vm"), 0);
	/* a replacement worker cannot know who holds it open: kept */
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	OK(check_disk(st, id, &m, 1));
	store_release_disk(st, id);				/* a release it never saw opened */
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	store_close(st);
	st = sopen_with(&o);
	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_str_eq(a.name, "");
	OK(check_disk(st, id, &m, 2));
	store_close(st);
	st = sopen();						/* purge_unlinked = 1 */
	ck_assert_int_eq(store_getattr(st, id, &a), -ENOENT);
	store_close(st);
	st = sopen_with(&o);
	ck_assert_int_eq(store_getattr(st, id, &a), -ENOENT);
	model_free(&m);
	store_close(st);
}
END_TEST

START_TEST(rename_replaces_target_and_noreplace_is_EEXIST)
{
	struct store *st = sopen();
	struct model ma, mb, mc;
	uint64_t ida = mkdisk(st, "a", "base.img", 0);
	uint64_t idb = mkdisk(st, "b", "base.img", 0);
	uint64_t idc = mkdisk(st, "c", "base.img", 2 * MiB);
	struct disk_attr at;

	model_init(&ma, tmpl_bytes, TSIZE, TSIZE);
	model_init(&mb, tmpl_bytes, TSIZE, TSIZE);
	model_init(&mc, tmpl_bytes, TSIZE, 2 * MiB);
	OK(op_write(st, ida, &ma, 0, 10000, 1));
	OK(op_write(st, idb, &mb, 0, 10000, 2));
	OK(op_write(st, idc, &mc, 0, 10000, 3));

	/* NOREPLACE onto an existing name: nothing changes */
	ck_assert_int_eq(store_rename(st, "a", "b", NOREPLACE), -EEXIST);
	ck_assert_int_eq(store_lookup(st, "a", &at), 0);
	ck_assert_uint_eq(at.id, ida);
	ck_assert_int_eq(store_lookup(st, "b", &at), 0);
	ck_assert_uint_eq(at.id, idb);
	OK(check_disk(st, idb, &mb, 1));

	/* replace b: a's disk is now called b, the old b is gone */
	ck_assert_int_eq(store_rename(st, "a", "b", 0), 0);
	ck_assert_int_eq(store_lookup(st, "a", &at), -ENOENT);
	ck_assert_int_eq(store_lookup(st, "b", &at), 0);
	ck_assert_uint_eq(at.id, ida);
	OK(check_disk(st, ida, &ma, 2));
	ck_assert_int_eq(store_getattr(st, idb, &at), -ENOENT);

	/* errors */
	ck_assert_int_eq(store_rename(st, "nosuch", "x", 0), -ENOENT);
	ck_assert_int_eq(store_rename(st, "b", "bad/name", 0), -EINVAL);
	ck_assert_int_eq(store_rename(st, "b", "", 0), -EINVAL);
	ck_assert_int_eq(store_rename(st, "b", "x", 4), -EINVAL);
	ck_assert_int_eq(store_rename(st, "b", "b", 0), 0);
	ck_assert_int_eq(store_rename(st, "b", "b", NOREPLACE), 0);
	ck_assert_int_eq(store_lookup(st, "b", &at), 0);

	/* NOREPLACE to a free name works */
	ck_assert_int_eq(store_rename(st, "b", "d", NOREPLACE), 0);

	/* replace a disk that is open: it lives until released */
	ck_assert_int_eq(store_open_disk(st, idc), 0);
	ck_assert_int_eq(store_rename(st, "d", "c", 0), 0);
	ck_assert_int_eq(store_lookup(st, "c", &at), 0);
	ck_assert_uint_eq(at.id, ida);
	OK(check_disk(st, idc, &mc, 3));
	store_release_disk(st, idc);
	ck_assert_int_eq(store_getattr(st, idc, &at), -ENOENT);
	store_close(st);

	st = sopen();
	ck_assert_int_eq(store_lookup(st, "c", &at), 0);
	ck_assert_uint_eq(at.id, ida);
	OK(check_disk(st, ida, &ma, 4));
	ck_assert_int_eq(store_lookup(st, "a", &at), -ENOENT);
	ck_assert_int_eq(store_lookup(st, "b", &at), -ENOENT);
	ck_assert_int_eq(store_lookup(st, "d", &at), -ENOENT);
	ck_assert_int_eq(store_getattr(st, idb, &at), -ENOENT);
	ck_assert_int_eq(store_getattr(st, idc, &at), -ENOENT);
	model_free(&ma);
	model_free(&mb);
	model_free(&mc);
	store_close(st);
}
END_TEST

/* ---- templates changing under their disks -------------------------------- */

static void
set_mtime(const char *path, struct timespec mt)
{
	struct timespec ts[2] = { mt, mt };
	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
poke_byte(const char *path, uint64_t off, unsigned char v)
{
	int fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, &v, 1, (off_t)off), 1);
	close(fd);
}

/*
 * base.img changes after disks were cloned from it.  _i:
 * 0 = one byte rewritten where the fingerprint does not sample, mtime changed
 * 1 = replaced by another file with the same bytes and mtime (new inode)
 * 2 = one sampled byte rewritten, mtime put back (content fingerprint)
 * 3 = a byte appended (size)
 */
START_TEST(changed_template_makes_its_disks_refuse_io_and_others_keep_working)
{
	static const char *const why[] = {
		"modified", "replaced", "content changed", "size changed"
	};
	struct store *st = sopen();
	struct model ma, mb;
	unsigned char *other = malloc(TSIZE);
	char base[256], oth[256];
	struct disk_attr a;
	struct stat sb;
	struct sbuf js = SBUF_INIT;
	uint64_t ida, idb, res;
	unsigned char buf[16];

	fill(other, TSIZE, 2);
	tmpl_path("base.img", base, sizeof(base));
	tmpl_path("other.img", oth, sizeof(oth));
	write_file(oth, other, TSIZE);
	ida = mkdisk(st, "da", "base.img", 0);
	idb = mkdisk(st, "db", "other.img", 0);
	model_init(&ma, tmpl_bytes, TSIZE, TSIZE);
	model_init(&mb, other, TSIZE, TSIZE);
	OK(op_write(st, ida, &ma, 5000, 100, 1));
	OK(op_write(st, idb, &mb, 5000, 100, 2));
	store_close(st);

	ck_assert_int_eq(stat(base, &sb), 0);
	switch (_i) {
	case 0: {
		struct timespec mt = sb.st_mtim;
		poke_byte(base, 65540, (unsigned char)(tmpl_bytes[65540] ^ 0xff));
		mt.tv_sec -= 100;
		set_mtime(base, mt);
		break;
	}
	case 1: {
		char tmp[256];
		tmpl_path("base.img.new", tmp, sizeof(tmp));
		write_file(tmp, tmpl_bytes, TSIZE);
		set_mtime(tmp, sb.st_mtim);
		ck_assert_int_eq(rename(tmp, base), 0);
		break;
	}
	case 2:
		poke_byte(base, 10, (unsigned char)(tmpl_bytes[10] ^ 0x01));
		set_mtime(base, sb.st_mtim);
		break;
	case 3: {
		int fd = open(base, O_WRONLY | O_APPEND);
		ck_assert_int_eq(write(fd, "x", 1), 1);
		close(fd);
		set_mtime(base, sb.st_mtim);
		break;
	}
	}

	st = sopen();
	ck_assert_int_eq(store_read(st, ida, buf, sizeof(buf), 0), -EIO);
	ck_assert_int_eq(store_read(st, ida, buf, sizeof(buf), 5000), -EIO);	/* even log bytes */
	ck_assert_int_eq(store_write(st, ida, buf, sizeof(buf), 0), -EIO);
	ck_assert_int_eq(store_zero(st, ida, 0, 10, 1), -EIO);
	ck_assert_int_eq(store_resize(st, ida, 10, 0), -EIO);
	ck_assert_int_eq(store_seek(st, ida, 0, SEEK_DATA, &res), -EIO);
	ck_assert_int_eq(store_getattr(st, ida, &a), 0);
	ck_assert_msg(contains(a.problem, "base.img") && contains(a.problem, why[_i]),
	    "problem: '%s', want '%s'", a.problem ? a.problem : "(none)", why[_i]);

	store_describe(st, &js, 1);
	ck_assert_msg(contains(sbuf_str(&js), "\"name\":\"da\"") &&
	    contains(sbuf_str(&js), "changed since its disks were cloned") &&
	    contains(sbuf_str(&js), why[_i]), "describe: %s", sbuf_str(&js));
	ck_assert_msg(contains(sbuf_str(&js), "\"name\":\"db\"") &&
	    contains(sbuf_str(&js), "\"state\":\"ok\""), "describe: %s", sbuf_str(&js));
	sbuf_release(&js);

	/* the disk of the other template is not affected */
	ck_assert_int_eq(store_getattr(st, idb, &a), 0);
	ck_assert_ptr_null(a.problem);
	OK(check_disk(st, idb, &mb, 1));
	OK(op_write(st, idb, &mb, 0, 10, 3));
	OK(check_disk(st, idb, &mb, 2));
	/* and new clones of the changed file are fine: they record the new version */
	{
		uint64_t idn = mkdisk(st, "dn", "base.img", 0);
		ck_assert_int_eq(store_read(st, idn, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	}
	store_close(st);

	if (_i == 0) {
		/* the file back exactly as it was: the old disk works again */
		poke_byte(base, 65540, tmpl_bytes[65540]);
		set_mtime(base, sb.st_mtim);
		st = sopen();
		OK(check_disk(st, ida, &ma, 3));
		store_close(st);
	}
	model_free(&ma);
	model_free(&mb);
	free(other);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, open_with_create_makes_catalog_and_log_and_reopens);
	tcase_add_test(tc, open_refuses_to_create_over_a_non_empty_unrelated_dir);
	tcase_add_loop_test(tc, open_with_create_never_deletes_a_log_that_has_records, 0, 3);
	tcase_add_test(tc, open_with_create_finishes_an_interrupted_creation);
	tcase_add_test(tc, open_without_create_on_empty_dir_is_ENOENT);
	tcase_add_test(tc, clone_reads_exactly_the_template);
	tcase_add_test(tc, clone_larger_than_template_reads_zeros_past_its_end);
	tcase_add_test(tc, clone_smaller_than_template_is_EINVAL);
	tcase_add_test(tc, create_rejects_bad_names);
	tcase_add_test(tc, create_duplicate_is_EEXIST_unless_same_token);
	tcase_add_test(tc, create_from_missing_or_non_regular_template_fails);
	tcase_add_test(tc, unaligned_writes_across_boundaries_read_back_exactly);
	tcase_add_test(tc, read_across_hundreds_of_extents_is_assembled_in_order);
	tcase_add_test(tc, clones_are_isolated_and_template_file_is_unchanged);
	tcase_add_test(tc, zero_punches_in_place_or_grows_the_disk);
	tcase_add_test(tc, shrink_then_grow_reads_zeros_where_the_template_had_data);
	tcase_add_test(tc, writes_at_end_are_EFBIG_and_across_end_are_cut_short);
	tcase_add_test(tc, write_larger_than_a_record_is_cut_to_one_record_and_persists);
	tcase_add_test(tc, seek_data_and_hole_follow_template_punches_and_writes);
	tcase_add_test(tc, seek_passes_through_holes_of_a_sparse_template);
	tcase_add_test(tc, checkpointed_extent_cut_by_shrink_stays_cut_after_reopen);
	tcase_add_test(tc, attributes_persist_across_reopen);
	tcase_add_test(tc, close_and_reopen_reads_the_same_bytes);
	tcase_add_test(tc, checkpoint_between_writes_then_reopen_reads_the_same_bytes);
	tcase_add_test(tc, catalog_range_replace_matches_unit_model);
	tcase_add_loop_test(tc, crash_after_sync_loses_nothing, 0, 2);
	tcase_add_loop_test(tc, takeover_from_snapshot_matches_the_dead_worker, 0, 3);
	tcase_add_loop_test(tc, cleaner_releases_dead_segments_and_keeps_every_byte, 0, 2);
	tcase_add_test(tc, cleaner_races_writers_and_readers_without_losing_anything);
	tcase_add_test(tc, zero_past_the_end_is_one_record);
	tcase_add_test(tc, crash_with_checkpoints_racing_the_writes_loses_nothing);
	tcase_add_test(tc, checkpoint_thread_runs_and_crash_after_it_loses_nothing);
	tcase_add_loop_test(tc, garbage_after_the_log_tail_is_cut_and_data_is_intact, 0, 3);
	tcase_add_test(tc, crash_after_deleting_a_written_disk_replays_the_others);
	tcase_add_test(tc, listing_shows_linked_disks_in_id_order);
	tcase_add_test(tc, unlinked_open_disk_works_until_released_then_is_gone);
	tcase_add_test(tc, unlinked_disk_is_kept_without_purge_and_purged_at_next_purging_open);
	tcase_add_test(tc, rename_replaces_target_and_noreplace_is_EEXIST);
	tcase_add_loop_test(tc, changed_template_makes_its_disks_refuse_io_and_others_keep_working, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	snprintf(run_dir, sizeof(run_dir), "/tmp/check_store.XXXXXX");
	if (!mkdtemp(run_dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}

	hlog_init("check_store", HLOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(run_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
