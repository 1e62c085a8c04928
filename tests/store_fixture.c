/*
 * store_fixture.c: the store-engine tests' helpers (see store_fixture.h).
 *
 * It owns the test's root (template dir and data dir) and the model that
 * mirrors a disk.  The op_*() and check_*() helpers report through opfail
 * instead of asserting, so that a forked child that crashes on purpose can
 * run them; everything else asserts with Check as it goes.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_fixture.h"
#include "store_int.h"

char root[128], tmpldir[160], datadir[160];
unsigned char *tmpl_bytes;
char opfail[512];

uint64_t
rnext(struct rng *r)
{
	uint64_t x = r->s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return r->s = x;
}

void
rshuffle(struct rng *r, uint32_t *order, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		order[i] = i;
	for (uint32_t i = n - 1; i > 0 && n > 0; i--) {
		uint32_t j = (uint32_t)(rnext(r) % (i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
}

void
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

void
tmpl_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", tmpldir, name);
}

void
store_setup(void)
{
	char p[256];

	fixture_tmpdir(root, sizeof(root));
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

struct store_opts
opts(void)
{
	struct store_opts o = {
		.datadir = datadir,
		.tmpldir = tmpldir,
		.segment_size = SEG_SIZE,
		.checkpoint_ms = CP_NEVER,
		.purge_unlinked = 1,
		.create = 1,
		.defrag_idle_ms = STORE_DEFRAG_OFF,	/* a test that wants passes runs them */
	};
	return o;
}

struct store *
sopen_with(const struct store_opts *o)
{
	struct store *st = NULL;
	char err[512] = "";
	int rc = store_open(o, &st, err, sizeof(err));
	ck_assert_msg(rc == 0, "store_open: %d (%s)", rc, err);
	ck_assert_ptr_nonnull(st);
	return st;
}

struct store *
sopen(void)
{
	struct store_opts o = opts();
	return sopen_with(&o);
}

struct store *
reopen(struct store *st)
{
	store_close(st);
	return sopen();
}

uint64_t
mkdisk(struct store *st, const char *name, const char *tmpl, uint64_t size)
{
	struct disk_attr a;
	char err[512] = "";
	int rc = store_create(st, name, tmpl, size, NULL, &a, err, sizeof(err));
	ck_assert_msg(rc == 0, "store_create %s: %d (%s)", name, rc, err);
	ck_assert_str_eq(a.name, name);
	return a.id;
}

DIR *
log_dir(char *path, size_t len)
{
	DIR *d;

	snprintf(path, len, "%s/log", datadir);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	return d;
}

unsigned
newest_segment(char *buf, size_t len)
{
	char logdir[200];
	DIR *d = log_dir(logdir, sizeof(logdir));
	struct dirent *de;
	unsigned best = 0;

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

void
model_init(struct model *m, const unsigned char *tmpl, uint64_t tsize, uint64_t size)
{
	m->b = calloc(1, MODEL_CAP);
	ck_assert_ptr_nonnull(m->b);
	memcpy(m->b, tmpl, tsize < size ? tsize : size);
	m->size = size;
}

void
model_free(struct model *m)
{
	free(m->b);
	m->b = NULL;
}

void
model_resize(struct model *m, uint64_t size)
{
	if (size > m->size)
		memset(m->b + m->size, 0, size - m->size);
	m->size = size;
}

int
op_write(struct store *st, uint64_t id, struct model *m, uint64_t off, size_t len, uint64_t seed)
{
	unsigned char *buf = malloc(len);
	ssize_t want, got = 0;

	if (!buf)
		return -1;
	fill(buf, len, seed);
	/* a write past the end grows the disk, as a file grows (within what the model holds) */
	if (off >= MODEL_CAP || len > MODEL_CAP - off)
		len = off < MODEL_CAP ? (size_t)(MODEL_CAP - off) : 0;
	want = (ssize_t)len;
	if (st && len)
		got = store_write(st, id, buf, len, off);
	if (off + len > m->size)
		model_resize(m, off + len);
	memcpy(m->b + off, buf, len);
	free(buf);
	if (st && got != want) {
		snprintf(opfail, sizeof(opfail), "write %zu at %llu (size %llu): got %zd, want %zd",
		    len, (unsigned long long)off, (unsigned long long)m->size, got, want);
		return -1;
	}
	return 0;
}

int
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

int
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

int
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

int
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

int
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

uint64_t
new_vm(struct store *st, struct model *m)
{
	uint64_t id = mkdisk(st, "vm", "base.img", 0);

	model_init(m, tmpl_bytes, TSIZE, TSIZE);
	return id;
}

void
model_copy(struct model *to, const struct model *from)
{
	model_init(to, from->b, from->size, from->size);
}

uint64_t
clone_of(struct store *st, const char *from, const char *name)
{
	struct disk_attr a;
	char err[512] = "";
	int rc = store_clone(st, from, name, NULL, &a, err, sizeof(err));

	ck_assert_msg(rc == 0, "clone %s -> %s: %d (%s)", from, name, rc, err);
	return a.id;
}

void
check_and_close(struct store *st, uint64_t id, struct model *m, uint64_t seed)
{
	OK(check_disk(st, id, m, seed));
	model_free(m);
	store_close(st);
}

void
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

uint64_t
fresh_store_with_disk(struct model *m)
{
	struct store *st = sopen();
	uint64_t id = new_vm(st, m);

	store_close(st);
	return id;
}

int index_failing;

static ssize_t
failing_pwrite(void *arg, int fd, const void *buf, size_t len, off_t off)
{
	(void)arg;
	if (index_failing) {
		errno = EIO;
		return -1;
	}
	return pwrite(fd, buf, len, off);
}

static int
failing_sync(void *arg, int fd)
{
	(void)arg;
	if (index_failing) {
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

void
index_failing_io(struct store *st)
{
	static const struct index_io io = { failing_pwrite, failing_sync, NULL };

	index_set_io(st->ix, &io);
}

struct store_opts
handoff_opts(uint8_t **area, size_t cap)
{
	struct store_opts o = opts();

	*area = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(*area, MAP_FAILED);
	o.create = 0;
	o.snap_area = *area;
	o.snap_cap = cap;
	return o;
}
