/*
 * check_store_share: copy_file_range inside the mount (fs/store/share.c)
 * against a byte model of every disk.  A whole copy into a blank disk
 * shares the source's records (a few headers in the log), takes its
 * template and family, and then the two diverge; partial copies, copies of
 * zeroed ranges, ranges past the template's end or after a shrink, copies at
 * other offsets (by bytes), copies into a disk of another family (by bytes)
 * and copies of a template file read exactly as the model says.  Then the
 * same after a reopen, after a crash with no checkpoint (replay applies each
 * REC_SHARE), after a crash with a checkpoint between the copies and later
 * writes, after a takeover whose area is older than the index (replay meets
 * REC_SHAREs the index holds: dmap_reveal), and after the cleaner moved the
 * records a copy shares.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbuf.h"
#include "store_fixture.h"
#include "store_int.h"	/* st->log, st->ix: what a copy appended, where the index is */

/* ---- operations on the store and the models ------------------------------ */

/*
 * What a copy of the source's bytes sb (size ssize) [off_in, +len) does to
 * model m at off_out: the bytes copied, as store_copy_range returns them.
 */
static uint64_t
model_copy_range(const unsigned char *sb, uint64_t ssize, uint64_t off_in, struct model *m,
    uint64_t off_out, uint64_t len)
{
	uint64_t n = off_in >= ssize ? 0 : len < ssize - off_in ? len : ssize - off_in;

	if (n && off_out + n > m->size)
		model_resize(m, off_out + n);
	memmove(m->b + off_out, sb + off_in, n);
	return n;
}

/* A copy between two disks (st NULL: the models only), reported like op_write. */
static int
op_copy(struct store *st, uint64_t src, const struct model *sm, uint64_t off_in, uint64_t dst,
    struct model *dm, uint64_t off_out, uint64_t len)
{
	ssize_t got = st ? store_copy_range(st, src, off_in, dst, off_out, len) : 0;
	ssize_t want = (ssize_t)model_copy_range(sm->b, sm->size, off_in, dm, off_out, len);

	if (st && got != want) {
		snprintf(opfail, sizeof(opfail), "copy %llu bytes from disk %llu at %llu to disk "
		    "%llu at %llu: got %zd, want %zd", (unsigned long long)len,
		    (unsigned long long)src, (unsigned long long)off_in, (unsigned long long)dst,
		    (unsigned long long)off_out, got, want);
		return -1;
	}
	return 0;
}

/* A copy from template base.img (t) into a disk. */
static int
op_copy_tmpl(struct store *st, uint64_t t, uint64_t off_in, uint64_t dst, struct model *dm,
    uint64_t off_out, uint64_t len)
{
	ssize_t got = st ? store_copy_template(st, t, off_in, dst, off_out, len) : 0;
	ssize_t want = (ssize_t)model_copy_range(tmpl_bytes, TSIZE, off_in, dm, off_out, len);

	if (st && got != want) {
		snprintf(opfail, sizeof(opfail), "copy %llu bytes of the template at %llu to disk "
		    "%llu at %llu: got %zd, want %zd", (unsigned long long)len,
		    (unsigned long long)off_in, (unsigned long long)dst,
		    (unsigned long long)off_out, got, want);
		return -1;
	}
	return 0;
}

/* A model of a disk of no template, size 0. */
static void
model_blank(struct model *m)
{
	model_init(m, tmpl_bytes, 0, 0);
}

static struct disk_attr
attr_of(struct store *st, uint64_t id)
{
	struct disk_attr a;

	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	return a;
}

/* base.img as the mount's .templates shows it: its version's id. */
static uint64_t
base_template(struct store *st)
{
	struct template_attr ta;

	ck_assert_int_eq(store_template_lookup(st, "base.img", &ta), 0);
	ck_assert_uint_gt(ta.id, 0);
	ck_assert_uint_eq(ta.size, TSIZE);
	return ta.id;
}

/* store_check finds nothing wrong. */
static void
assert_store_sound(struct store *st)
{
	struct sbuf sb = SBUF_INIT;
	int rc = store_check(st, &sb);

	ck_assert_msg(rc == 0, "store_check: %d: %s", rc, sbuf_str(&sb));
	sbuf_release(&sb);
}

/*
 * A past for vm (a clone of base.img, m its model) that leaves every kind of
 * range: records, zeros, the template's bytes, zeros past the template's
 * end, 6 MiB in all.
 */
static void
vm_history(struct store *st, uint64_t id, struct model *m)
{
	OK(op_resize(st, id, m, 6 * MiB, 0));
	for (uint64_t i = 0; i < 11; i++)
		OK(op_write(st, id, m, i * 500000 + 333, 200000, 40 + i));
	OK(op_zero(st, id, m, 1200000, 150000, 1));
	OK(op_write(st, id, m, TSIZE - 3000, 6000, 60));
	OK(op_write(st, id, m, 20000, 30000, 61));	/* a record inside an older one */
}

/*
 * SEEK_DATA and SEEK_HOLE answer alike on two disks at offsets all over
 * [0, size]: what `cp` of a copy finds to copy is what `cp` of its source
 * found.  0 or -1 (opfail).
 */
static int
seeks_agree(struct store *st, uint64_t a, uint64_t b, uint64_t size)
{
	for (uint64_t off = 0; off <= size; off += 65536 + 4097) {
		for (int whence = SEEK_DATA; whence <= SEEK_HOLE; whence++) {
			uint64_t ra = 0, rb = 0;
			int rca = store_seek(st, a, off, whence, &ra);
			int rcb = store_seek(st, b, off, whence, &rb);
			if (rca != rcb || (rca == 0 && ra != rb)) {
				snprintf(opfail, sizeof(opfail), "%s from %llu: disk %llu says %d/%llu, "
				    "disk %llu says %d/%llu", whence == SEEK_DATA ? "SEEK_DATA" :
				    "SEEK_HOLE", (unsigned long long)off, (unsigned long long)a, rca,
				    (unsigned long long)ra, (unsigned long long)b, rcb,
				    (unsigned long long)rb);
				return -1;
			}
		}
	}
	return 0;
}

/* Log bytes a step appended: no more than a few headers for a shared copy. */
#define SHARE_LOG_MAX	4096

/* ---- a copy that shares ---------------------------------------------------- */

/*
 * `cp vm copy`: copy is made of no template (blank), and one copy of all of
 * vm (len past its end: cut) makes it read as vm, with vm's template and
 * log bytes, while the log grows by a few headers; then writes to either
 * are the other's no more, live and after a reopen.
 */
START_TEST(whole_copy_into_a_blank_disk_shares_and_then_diverges)
{
	struct store *st = sopen();
	struct model vm, cp;
	uint64_t id = new_vm(st, &vm), cid, before;
	struct disk_attr a;

	vm_history(st, id, &vm);
	cid = mkdisk(st, "copy", NULL, 0);
	model_blank(&cp);
	a = attr_of(st, cid);
	ck_assert_str_eq(a.template_name, "");
	ck_assert_uint_eq(a.size, 0);
	before = wlog_size(st->log);
	OK(op_copy(st, id, &vm, 0, cid, &cp, 0, vm.size + 12345));
	ck_assert_msg(wlog_size(st->log) - before <= SHARE_LOG_MAX, "a shared copy of %llu bytes "
	    "appended %llu log bytes", (unsigned long long)vm.size,
	    (unsigned long long)(wlog_size(st->log) - before));
	a = attr_of(st, cid);
	ck_assert_str_eq(a.template_name, "base.img");
	ck_assert_uint_eq(a.log_bytes, attr_of(st, id).log_bytes);
	ck_assert_uint_gt(a.log_bytes, 0);	/* it maps vm's records */
	OK(check_disk(st, cid, &cp, 1));
	OK(check_disk(st, id, &vm, 2));
	OK(seeks_agree(st, id, cid, vm.size));
	/* diverge: each one's writes, zeros and sizes are its own */
	OK(op_write(st, id, &vm, 1000, 200000, 10));
	OK(op_write(st, cid, &cp, 150000, 300000, 11));
	OK(op_zero(st, cid, &cp, 600000, 70000, 1));
	OK(op_resize(st, id, &vm, 400000, 0));
	OK(op_write(st, cid, &cp, TSIZE - 100, 5000, 12));
	OK(check_disk(st, cid, &cp, 3));
	OK(check_disk(st, id, &vm, 4));
	st = reopen(st);
	ck_assert_str_eq(attr_of(st, cid).template_name, "base.img");
	OK(check_disk(st, cid, &cp, 5));
	OK(check_disk(st, id, &vm, 6));
	assert_store_sound(st);
	model_free(&cp);
	check_and_close(st, id, &vm, 7);
}
END_TEST

/* Sizes a resizer flips a disk between while whole copies of it are made. */
struct flipper {
	struct store	*st;
	uint64_t	 id, sizes[2];
	volatile int	 stop;
};

static void *
flip_sizes(void *arg)
{
	struct flipper *f = arg;

	for (unsigned i = 0; !f->stop; i++)
		ck_assert_int_eq(store_resize(f->st, f->id, f->sizes[i & 1], 0), 0);
	return NULL;
}

/*
 * A whole copy of a disk whose size changes meanwhile (the crash rig's
 * disks are truncated while the namespace thread copies them): the copy
 * reports len bytes, so the new disk is len bytes, whatever size the source
 * had by the time the clone was made (a REC_CLONE takes the source's size
 * as it is then: copy_whole's check and the record must see the same one).
 */
START_TEST(whole_copy_racing_a_resize_of_its_source_has_the_size_it_reports)
{
	struct store *st = sopen();
	struct model vm;
	uint64_t id = new_vm(st, &vm);
	struct flipper f = { st, id, { 3 * MiB + 4096, 2 * MiB + 8192 }, 0 };
	pthread_t t;
	unsigned wrong = 0, tries = 0;

	ck_assert_int_eq(pthread_create(&t, NULL, flip_sizes, &f), 0);
	for (int i = 0; i < 400; i++) {
		uint64_t cid = mkdisk(st, "copy", NULL, 0);
		struct disk_attr a = attr_of(st, id);
		ssize_t got = store_copy_range(st, id, 0, cid, 0, a.size);

		struct model cp;

		ck_assert_int_gt(got, 0);
		tries++;
		if (attr_of(st, cid).size != (uint64_t)got && wrong++ == 0)
			fprintf(stderr, "copy %d: copied %zd bytes, the copy has %llu\n", i, got,
			    (unsigned long long)attr_of(st, cid).size);
		/* both sizes are past the template: the source reads the same at any moment */
		model_copy(&cp, &vm);
		model_resize(&cp, (uint64_t)got);
		if (attr_of(st, cid).size == (uint64_t)got)
			OK(check_disk(st, cid, &cp, (uint64_t)i));
		model_free(&cp);
		ck_assert_int_eq(store_unlink(st, "copy"), 0);
	}
	f.stop = 1;
	pthread_join(t, NULL);
	ck_assert_msg(wrong == 0, "%u of %u whole copies have another size than they reported",
	    wrong, tries);
	model_free(&vm);
	store_close(st);
}
END_TEST

/*
 * Between disks of no template: a whole copy into a blank one shares too
 * (it keeps no template), and the two diverge.
 */
START_TEST(whole_copy_between_disks_of_no_template_shares)
{
	struct store *st = sopen();
	struct model n1, n2;
	uint64_t id1 = mkdisk(st, "n1", NULL, 0), id2 = mkdisk(st, "n2", NULL, 0), before;

	model_blank(&n1);
	model_blank(&n2);
	OK(op_write(st, id1, &n1, 0, MiB, 1));
	OK(op_write(st, id1, &n1, 3 * MiB, 500000, 2));
	OK(op_zero(st, id1, &n1, 100000, 50000, 1));
	before = wlog_size(st->log);
	OK(op_copy(st, id1, &n1, 0, id2, &n2, 0, n1.size));
	ck_assert_uint_le(wlog_size(st->log) - before, SHARE_LOG_MAX);
	ck_assert_str_eq(attr_of(st, id2).template_name, "");
	OK(seeks_agree(st, id1, id2, n1.size));
	OK(op_write(st, id2, &n2, 50000, 100000, 3));
	OK(op_write(st, id1, &n1, 3 * MiB + 7, 1000, 4));
	OK(check_disk(st, id2, &n2, 1));
	OK(check_disk(st, id1, &n1, 2));
	st = reopen(st);
	OK(check_disk(st, id2, &n2, 3));
	assert_store_sound(st);
	model_free(&n2);
	check_and_close(st, id1, &n1, 4);
}
END_TEST

/*
 * The copy of a template file (`cp .templates/base.img vm9.img`) into a
 * blank disk is a clone of it: it takes the template, reads its bytes, and
 * costs a few headers.  Only a part copied leaves the rest zeros (the
 * template must not show where nothing was copied); at other offsets the
 * copy is by bytes.
 */
START_TEST(copy_of_a_template_is_a_clone_of_it)
{
	struct store *st = sopen();
	uint64_t t = base_template(st);
	struct model m9, part, off;
	uint64_t id9 = mkdisk(st, "vm9", NULL, 0), pid = mkdisk(st, "part", NULL, 0);
	uint64_t oid = mkdisk(st, "off", NULL, 0), before;

	model_blank(&m9);
	model_blank(&part);
	model_blank(&off);
	before = wlog_size(st->log);
	OK(op_copy_tmpl(st, t, 0, id9, &m9, 0, 8 * MiB));
	ck_assert_uint_le(wlog_size(st->log) - before, SHARE_LOG_MAX);
	ck_assert_uint_eq(m9.size, TSIZE);
	ck_assert_str_eq(attr_of(st, id9).template_name, "base.img");
	ck_assert_uint_eq(attr_of(st, id9).log_bytes, 0);
	OK(check_disk(st, id9, &m9, 1));
	OK(op_write(st, id9, &m9, 4000, 10000, 1));
	/* a part, then another: the gap and the rest of the template read zeros */
	OK(op_copy_tmpl(st, t, 300000, pid, &part, 300000, 200000));
	OK(op_copy_tmpl(st, t, 800000, pid, &part, 800000, 100000));
	ck_assert_str_eq(attr_of(st, pid).template_name, "base.img");
	OK(check_disk(st, pid, &part, 2));
	/* into a clone of the template with writes and a shrink: the ranges read it again */
	{
		struct model sh;
		uint64_t shid = mkdisk(st, "shrunk", "base.img", 0);
		model_init(&sh, tmpl_bytes, TSIZE, TSIZE);
		OK(op_write(st, shid, &sh, 1000, 300000, 4));
		OK(op_resize(st, shid, &sh, 500000, 0));
		OK(op_copy_tmpl(st, t, 600000, shid, &sh, 600000, 100000));
		OK(op_copy_tmpl(st, t, 2000, shid, &sh, 2000, 5000));
		OK(check_disk(st, shid, &sh, 8));
		st = reopen(st);
		OK(check_disk(st, shid, &sh, 9));
		t = base_template(st);
		model_free(&sh);
	}
	/* at other offsets: bytes, template or not */
	before = wlog_size(st->log);
	OK(op_copy_tmpl(st, t, 1000, oid, &off, 5000, 300000));
	ck_assert_uint_ge(wlog_size(st->log) - before, 300000);
	OK(check_disk(st, oid, &off, 3));
	/* at or past its end: nothing */
	ck_assert_int_eq(store_copy_template(st, t, TSIZE, id9, 0, 10), 0);
	ck_assert_int_eq(store_copy_template(st, t, TSIZE + 5, id9, 0, 10), 0);
	st = reopen(st);
	OK(check_disk(st, id9, &m9, 4));
	OK(check_disk(st, pid, &part, 5));
	OK(check_disk(st, oid, &off, 6));
	assert_store_sound(st);
	model_free(&part);
	model_free(&off);
	check_and_close(st, id9, &m9, 7);
}
END_TEST

/* ---- partial copies: one sequence, run live and replayed ------------------- */

/* The disks of the sequence: vm (a clone of base.img), c (a clone of vm), b (made blank). */
struct trio {
	uint64_t	 vm, c, b;
	struct model	 mvm, mc, mb;
};

/* A store holding the trio, closed again: vm worked on, c cloned from it, b of no template. */
static void
trio_make(struct trio *k)
{
	struct store *st = sopen();

	k->vm = new_vm(st, &k->mvm);
	vm_history(st, k->vm, &k->mvm);
	k->c = clone_of(st, "vm", "c");
	model_copy(&k->mc, &k->mvm);
	k->b = mkdisk(st, "b", NULL, 0);
	model_blank(&k->mb);
	store_close(st);
}

static void
trio_free(struct trio *k)
{
	model_free(&k->mvm);
	model_free(&k->mc);
	model_free(&k->mb);
}

static int
trio_check(struct store *st, const struct trio *k, uint64_t seed)
{
	return check_disk(st, k->vm, &k->mvm, seed) || check_disk(st, k->c, &k->mc, seed + 1) ||
	    check_disk(st, k->b, &k->mb, seed + 2) ? -1 : 0;
}

/*
 * Part 0: copies at equal offsets over earlier writes, of zeroed ranges,
 * past the template's end, after a shrink; the first copy into b adopts vm's
 * family at an offset (what lies before it must read zeros); one copy at
 * other offsets (by bytes).  Part 1: writes over shared ranges, and copies
 * the other way (c to vm, b to c: one family now).  check: the disks read
 * their models after each step (a forked child passes 0: no checks).
 */
static int
trio_part(struct store *st, struct trio *k, int part, int check)
{
	struct model *vm = &k->mvm, *c = &k->mc, *b = &k->mb;
	struct template_attr ta = { 0 };
	uint64_t t = 0;

	if (st && store_template_lookup(st, "base.img", &ta) != 0) {
		snprintf(opfail, sizeof(opfail), "no template base.img");
		return -1;
	}
	t = ta.id;

#define STEP(x) do { if ((x) < 0 || (check && st && trio_check(st, k, __LINE__) < 0)) return -1; } while (0)
	if (part == 0) {
		STEP(op_write(st, k->c, c, 100000, 200000, 11));
		STEP(op_copy(st, k->vm, vm, 150000, k->c, c, 150000, 400000));
		STEP(op_copy(st, k->vm, vm, 2 * MiB, k->b, b, 2 * MiB, 300000));
		STEP(op_copy(st, k->vm, vm, 0, k->b, b, 0, 70000));
		STEP(op_zero(st, k->vm, vm, 300000, 100000, 1));
		STEP(op_copy(st, k->vm, vm, 250000, k->c, c, 250000, 300000));
		STEP(op_copy(st, k->vm, vm, TSIZE - 5000, k->c, c, TSIZE - 5000, 3 * MiB));
		STEP(op_copy(st, k->vm, vm, TSIZE - 7, k->b, b, TSIZE - 7, 20));
		STEP(op_write(st, k->vm, vm, 0, 70000, 12));
		STEP(op_resize(st, k->vm, vm, 700000, 0));
		STEP(op_resize(st, k->vm, vm, 5 * MiB, 0));
		STEP(op_copy(st, k->vm, vm, 600000, k->c, c, 600000, 2 * MiB));
		STEP(op_copy(st, k->vm, vm, 650000, k->b, b, 650000, MiB));
		STEP(op_copy(st, k->vm, vm, 10000, k->c, c, 4 * MiB + 3, 200000));
		STEP(op_copy_tmpl(st, t, 30000, k->c, c, 30000, 150000));
		STEP(op_write(st, k->b, b, 20000, 4000, 13));
		return 0;
	}
	STEP(op_write(st, k->c, c, 160000, 5000, 21));
	STEP(op_write(st, k->vm, vm, 600100, 3000, 22));
	STEP(op_copy(st, k->c, c, 100000, k->vm, vm, 100000, 100000));
	STEP(op_copy(st, k->b, b, 0, k->c, c, 0, 60000));
	STEP(op_write(st, k->b, b, 650000, 1000, 23));
	STEP(op_copy(st, k->c, c, TSIZE, k->b, b, TSIZE, 100000));
	STEP(op_resize(st, k->c, c, 1000, 0));
	STEP(op_copy(st, k->vm, vm, 500, k->c, c, 500, 300000));
	STEP(op_copy_tmpl(st, t, 200000, k->vm, vm, 200000, TSIZE));
	STEP(op_copy_tmpl(st, t, 0, k->b, b, 0, 4096));
	return 0;
#undef STEP
}

/* Both parts live, every disk checked after each step, then after a reopen. */
START_TEST(partial_copies_read_as_the_model_says)
{
	struct trio k;
	struct store *st;

	trio_make(&k);
	st = sopen();
	OK(trio_part(st, &k, 0, 1));
	ck_assert_str_eq(attr_of(st, k.b).template_name, "base.img");
	/* the copies were of what they meant to copy: nothing cut short */
	ck_assert_uint_eq(k.mb.size, 2 * MiB + 300000);
	OK(trio_part(st, &k, 1, 1));
	st = reopen(st);
	OK(trio_check(st, &k, 1));
	assert_store_sound(st);
	ck_assert_int_eq(store_checkpoint(st), 0);
	st = reopen(st);
	OK(trio_check(st, &k, 2));
	store_close(st);
	trio_free(&k);
}
END_TEST

/*
 * What cannot share is copied by bytes and is just as exact: into a disk
 * of another family with data of its own (same template, or none), at
 * other offsets in one disk.  A snapshot is not a destination (EROFS) but a
 * source (and then shares).  len is cut at the source's end; at or after it
 * the copy is 0 bytes; a range onto itself changes nothing.
 */
START_TEST(copies_that_cannot_share_are_exact_bytes)
{
	struct store *st = sopen();
	struct model vm, o, n, s1, bs;
	uint64_t id = new_vm(st, &vm), oid, nid, sid, bid, before;
	struct disk_attr a;
	char err[512];

	vm_history(st, id, &vm);
	oid = mkdisk(st, "other", "base.img", 0);
	model_init(&o, tmpl_bytes, TSIZE, TSIZE);
	OK(op_write(st, oid, &o, 500000, 1000, 1));
	nid = mkdisk(st, "none", NULL, 0);
	model_blank(&n);
	OK(op_write(st, nid, &n, 0, 10, 2));
	before = wlog_size(st->log);
	OK(op_copy(st, id, &vm, 100000, oid, &o, 100000, 2 * MiB + 7));
	ck_assert_uint_ge(wlog_size(st->log) - before, 2 * MiB);	/* bytes, not shared */
	OK(op_copy(st, id, &vm, 0, nid, &n, 0, 3 * MiB));
	ck_assert_str_eq(attr_of(st, nid).template_name, "");
	OK(op_copy(st, id, &vm, 3 * MiB, id, &vm, 100, 2 * MiB));
	OK(op_copy(st, id, &vm, 7, id, &vm, 7, 2 * MiB));
	OK(check_disk(st, oid, &o, 1));
	OK(check_disk(st, nid, &n, 2));
	OK(check_disk(st, id, &vm, 3));
	/* snapshots: EROFS as a destination, a source that shares */
	ck_assert_int_eq(store_snapshot(st, "vm", "s1", NULL, &a, err, sizeof(err)), 0);
	sid = a.id;
	model_copy(&s1, &vm);
	ck_assert_int_eq(store_copy_range(st, id, 0, sid, 0, 4096), -EROFS);
	bid = mkdisk(st, "fromsnap", NULL, 0);
	model_blank(&bs);
	OK(op_write(st, id, &vm, 0, 300000, 3));
	before = wlog_size(st->log);
	OK(op_copy(st, sid, &s1, 0, bid, &bs, 0, s1.size));
	ck_assert_uint_le(wlog_size(st->log) - before, SHARE_LOG_MAX);
	OK(check_disk(st, bid, &bs, 4));
	OK(check_disk(st, sid, &s1, 5));
	/* the source's end */
	ck_assert_int_eq(store_copy_range(st, id, vm.size - 10, oid, 0, 100), 10);
	OK(op_copy(NULL, id, &vm, vm.size - 10, oid, &o, 0, 100));
	ck_assert_int_eq(store_copy_range(st, id, vm.size, oid, 0, 100), 0);
	ck_assert_int_eq(store_copy_range(st, id, vm.size + 1, oid, 0, 100), 0);
	ck_assert_int_eq(store_copy_range(st, id, 0, oid, 0, 0), 0);
	ck_assert_int_eq(store_copy_range(st, id, 0, 999999, 0, 10), -ENOENT);
	ck_assert_int_eq(store_copy_range(st, 999999, 0, oid, 0, 10), -ENOENT);
	/* past the largest disk, or wrapping around */
	{
		struct store_space sp;
		store_space(st, &sp);
		ck_assert_int_eq(store_copy_range(st, id, 0, oid, sp.disk_size_max - 5, 10), -EFBIG);
		ck_assert_int_eq(store_copy_range(st, id, 0, oid, UINT64_MAX - 5, 10), -EFBIG);
	}
	OK(check_disk(st, oid, &o, 6));
	st = reopen(st);
	OK(check_disk(st, oid, &o, 7));
	OK(check_disk(st, nid, &n, 8));
	OK(check_disk(st, sid, &s1, 9));
	OK(check_disk(st, bid, &bs, 10));
	assert_store_sound(st);
	/* a store open read-only copies nothing */
	{
		struct store_opts ro = opts();
		struct store *rst;
		store_close(st);
		ro.create = 0;
		ro.readonly = 1;
		rst = sopen_with(&ro);
		ck_assert_int_eq(store_copy_range(rst, id, 0, oid, 0, 4096), -EROFS);
		ck_assert_int_eq(store_copy_range(rst, id, 0, nid, 0, 4096), -EROFS);
		store_close(rst);
		st = sopen();
		OK(check_disk(st, oid, &o, 12));
	}
	model_free(&o);
	model_free(&n);
	model_free(&s1);
	model_free(&bs);
	check_and_close(st, id, &vm, 11);
}
END_TEST

/*
 * Copies and the lifecycle: a snapshot of a copy keeps its bytes while the
 * copy changes; a copy from a snapshot back into its disk (a partial
 * rollback) shares; a copy into a clone made since the last checkpoint
 * (its tree still the origin's); a rollback over copies; a blank disk
 * made from another, longer template adopts base.img and reads zeros where
 * nothing was copied.  Live, after a checkpoint and after a reopen.
 */
START_TEST(copies_with_snapshots_clones_and_templates)
{
	struct store *st;
	struct model vm, cp, s1, c, big;
	uint64_t id, cpid, sid, cid, bid, before;
	unsigned char *bigbytes = malloc(2 * MiB);
	char p[256], err[512];
	struct disk_attr a;

	ck_assert_ptr_nonnull(bigbytes);
	fill(bigbytes, 2 * MiB, 77);
	tmpl_path("big.img", p, sizeof(p));
	write_file(p, bigbytes, 2 * MiB);
	free(bigbytes);
	st = sopen();
	id = new_vm(st, &vm);
	vm_history(st, id, &vm);
	cpid = mkdisk(st, "copy", NULL, 0);
	model_blank(&cp);
	OK(op_copy(st, id, &vm, 0, cpid, &cp, 0, vm.size));
	ck_assert_int_eq(store_snapshot(st, "copy", "s1", NULL, &a, err, sizeof(err)), 0);
	sid = a.id;
	model_copy(&s1, &cp);
	OK(op_write(st, cpid, &cp, 10000, 400000, 1));
	OK(op_copy(st, id, &vm, 2 * MiB, cpid, &cp, 2 * MiB, MiB));
	OK(op_write(st, id, &vm, 2 * MiB, 100000, 2));
	OK(check_disk(st, sid, &s1, 1));
	/* a partial rollback: the snapshot's range back into the copy */
	before = wlog_size(st->log);
	OK(op_copy(st, sid, &s1, 0, cpid, &cp, 0, 300000));
	ck_assert_uint_le(wlog_size(st->log) - before, SHARE_LOG_MAX);
	OK(check_disk(st, cpid, &cp, 2));
	/* into a clone whose tree is still its origin's */
	cid = clone_of(st, "copy@s1", "c");
	model_copy(&c, &s1);
	OK(op_copy(st, id, &vm, 100000, cid, &c, 100000, 2 * MiB));
	OK(check_disk(st, cid, &c, 3));
	ck_assert_int_eq(store_checkpoint(st), 0);
	OK(check_disk(st, cid, &c, 4));
	/* rollback over the copies */
	ck_assert_int_eq(store_rollback(st, "copy", "s1", err, sizeof(err)), 0);
	model_free(&cp);
	model_copy(&cp, &s1);
	OK(check_disk(st, cpid, &cp, 5));
	/* a blank disk of another template */
	bid = mkdisk(st, "big", "big.img", 0);
	model_init(&big, tmpl_bytes, 0, 0);
	OK(op_resize(st, bid, &big, 0, 0));
	ck_assert_uint_eq(attr_of(st, bid).log_bytes, 0);
	OK(op_copy(st, id, &vm, 400000, bid, &big, 400000, 200000));
	ck_assert_str_eq(attr_of(st, bid).template_name, "base.img");
	OK(op_resize(st, bid, &big, 3 * MiB, 0));
	OK(check_disk(st, bid, &big, 6));
	st = reopen(st);
	OK(check_disk(st, cpid, &cp, 7));
	OK(check_disk(st, sid, &s1, 8));
	OK(check_disk(st, cid, &c, 9));
	OK(check_disk(st, bid, &big, 10));
	OK(check_disk(st, id, &vm, 11));
	assert_store_sound(st);
	model_free(&cp);
	model_free(&s1);
	model_free(&c);
	model_free(&big);
	check_and_close(st, id, &vm, 12);
}
END_TEST

/* ---- crashes and takeovers --------------------------------------------------- */

/*
 * The checkpoint thread of a store with a handoff area writes a new one
 * every 100 ms or so.  A test that needs the replacement to start from an
 * older one keeps a copy of the area as it is now (area_keep) and puts it
 * back before the worker dies (area_restore): both under log_lock, which
 * handoff_write holds throughout, so no half is caught being written.
 * area_restore returns with log_lock held: no area is written after it.
 */
static uint8_t *
area_keep(struct store *st)
{
	uint8_t *copy = malloc(st->snap_cap);

	if (copy) {
		pthread_mutex_lock(&st->log_lock);
		memcpy(copy, st->snap, st->snap_cap);
		pthread_mutex_unlock(&st->log_lock);
	}
	return copy;
}

static void
area_restore(struct store *st, const uint8_t *copy)
{
	pthread_mutex_lock(&st->log_lock);
	memcpy(st->snap, copy, st->snap_cap);
}

/*
 * The catalog's files (catalog.db and its WAL) copied with suffix from to
 * suffix to ("" the live ones); the live shared-memory index removed when
 * restoring, as after a reboot.  0 or -1.  Only while no catalog
 * transaction runs: a test's store between its own calls.
 */
static int
catalog_files_copy(const char *from, const char *to)
{
	static const char *const names[] = { "catalog.db", "catalog.db-wal" };
	char src[300], dst[300], buf[65536];
	int rc = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && rc == 0; i++) {
		FILE *in, *out;
		size_t n;
		snprintf(src, sizeof(src), "%s/%s%s", datadir, names[i], from);
		snprintf(dst, sizeof(dst), "%s/%s%s", datadir, names[i], to);
		if (!(in = fopen(src, "rb"))) {
			unlink(dst);	/* no WAL then: none after */
			continue;
		}
		if (!(out = fopen(dst, "wb"))) {
			fclose(in);
			return -1;
		}
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			if (fwrite(buf, 1, n, out) != n)
				rc = -1;
		fclose(in);
		if (fclose(out) != 0)
			rc = -1;
	}
	if (!to[0]) {
		snprintf(dst, sizeof(dst), "%s/catalog.db-shm", datadir);
		unlink(dst);
	}
	return rc;
}

/*
 * body(arg) in a forked child that ends without closing its store: it exits
 * with body's value, or once body returned 0 dies of signal die_by (0: it
 * exits).  The parent waits and asserts that it ended so.
 */
static void
in_child(int (*body)(void *arg), void *arg, int die_by)
{
	pid_t pid;
	int status, rc;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if ((rc = body(arg)) != 0)
			fprintf(stderr, "child: step %d failed: %s\n", rc, opfail);
		else if (die_by)
			raise(die_by);
		_exit(rc);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (die_by)
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == die_by,
		    "child did not die of signal %d (status %#x)", die_by, status);
	else
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child failed (status %#x)", status);
}

/*
 * The trio's parts in a forked child that ends without closing the store
 * (_i 0: exits, no checkpoint at all; 1: a checkpoint between the parts,
 * then killed; 2: a handoff area written first, a checkpoint between the
 * parts, and the replacement takes the area over: its replay starts below
 * the index's position and meets part 0's REC_SHAREs, which the index
 * holds; 3: the area written between the parts, no checkpoint: the
 * replacement applies part 1's REC_SHAREs over the area's overlays; 4: the
 * catalog as it was before the checkpoint between the parts is put back, as
 * if that checkpoint's last step had failed: the index is newer than the
 * catalog, and an ordinary open replays from the catalog's position, below
 * the index's, through part 0's REC_SHAREs).  The parent runs the parts on the models and opens the store:
 * every disk reads its model, then again after a checkpoint and a reopen.
 */
/* A crash plan for the trio (copies_survive_a_crash_and_a_takeover's _i). */
struct trio_job {
	struct trio		*k;
	const struct store_opts	*o;
	int			 plan;
};

static int
trio_child(void *arg)
{
	const struct trio_job *j = arg;
	uint64_t l0, s0, l1, s1;
	uint8_t *kept = NULL;
	struct store *st;
	char err[512];

	if (store_open(j->o, &st, err, sizeof(err)) != 0)
		return 10;
	index_position(st->ix, &l0, &s0);
	if (j->plan == 2 && (handoff_write(st) != 0 || !(kept = area_keep(st))))
		return 11;
	if (trio_part(st, j->k, 0, 0) != 0)
		return 12;
	if (j->plan == 4 && catalog_files_copy("", ".kept") != 0)
		return 13;
	if ((j->plan == 1 || j->plan == 2 || j->plan == 4) && store_checkpoint(st) != 0)
		return 13;
	if (j->plan == 3 && (handoff_write(st) != 0 || !(kept = area_keep(st))))
		return 14;
	if (trio_part(st, j->k, 1, 0) != 0)
		return 15;
	index_position(st->ix, &l1, &s1);
	if ((j->plan == 0 || j->plan == 3) != (l0 == l1 && s0 == s1))
		return 16;	/* a checkpoint ran, or did not, against the plan */
	if (store_sync(st, j->k->vm) != 0)
		return 17;
	if (kept)
		area_restore(st, kept);	/* the area as it was written above */
	return 0;
}

START_TEST(copies_survive_a_crash_and_a_takeover)
{
	size_t cap = 64 * MiB;
	uint8_t *area = NULL;
	struct store_opts o = opts();
	struct trio k;
	struct trio_job j = { &k, &o, _i };
	struct store *st;

	trio_make(&k);
	if (_i == 2 || _i == 3)
		o = handoff_opts(&area, cap);
	o.create = 0;
	in_child(trio_child, &j, _i == 1 ? SIGKILL : 0);
	if (_i == 4)
		ck_assert_int_eq(catalog_files_copy(".kept", ""), 0);
	OK(trio_part(NULL, &k, 0, 0));
	OK(trio_part(NULL, &k, 1, 0));
	o.takeover = _i == 2 || _i == 3;
	st = sopen_with(&o);
	if (o.takeover)
		ck_assert(st->from_area);
	if (_i == 4) {
		uint64_t ix_laddr, ix_seq;
		index_position(st->ix, &ix_laddr, &ix_seq);
		ck_assert_uint_lt(st->cp_laddr, ix_laddr);	/* replayed from below the index */
	}
	OK(trio_check(st, &k, 1));
	ck_assert_str_eq(attr_of(st, k.b).template_name, "base.img");
	assert_store_sound(st);
	ck_assert_int_eq(store_checkpoint(st), 0);
	st = reopen(st);
	OK(trio_check(st, &k, 2));
	store_close(st);
	if (area)
		munmap(area, cap);
	trio_free(&k);
}
END_TEST

/*
 * Copies while every checkpoint fails (the index's disk is failing), and a
 * close whose checkpoint fails too: the next open has only the log, and
 * replays each REC_SHARE over sources that have a frozen overlay (the
 * failed checkpoints left them) as well as a committed tree.
 */
START_TEST(copies_over_failed_checkpoints_are_replayed)
{
	struct trio k;
	struct store *st;

	trio_make(&k);
	st = sopen();
	index_failing_io(st);
	ck_assert_int_eq(store_checkpoint(st), 0);
	index_failing = 1;
	OK(trio_part(st, &k, 0, 0));
	ck_assert_int_ne(store_checkpoint(st), 0);
	OK(trio_part(st, &k, 1, 1));
	store_close(st);
	index_failing = 0;
	st = sopen();
	OK(trio_check(st, &k, 1));
	store_close(st);
	trio_free(&k);
}
END_TEST

/* ---- the cleaner --------------------------------------------------------------- */

/*
 * The records a copy shares are what keeps a segment's bytes alive: vm is
 * written (generation 1), copied whole into a blank disk and in part into
 * a clone, then overwritten twice, so the first segment is generations 1
 * and 2, half of it dead to every disk and the other half alive only
 * through the copies.  The cleaner moves that half (once, not once per
 * disk that shares it) and gives the segment back; every disk reads
 * right, a check finds nothing wrong, and so does a reopen.  _i 1: vm is
 * deleted before the cleaning (its records live on in the copies alone).
 */
START_TEST(cleaner_moves_records_a_copy_shares)
{
	struct store *st = sopen();
	struct model vm, cp, c;
	uint64_t id = mkdisk(st, "vm", "base.img", 8 * MiB), cpid = 0, cid;
	struct clean_stats cs = { 0 };

	model_init(&vm, tmpl_bytes, TSIZE, 8 * MiB);
	cid = clone_of(st, "vm", "c");
	model_copy(&c, &vm);
	for (int gen = 1; gen <= 3; gen++) {
		for (uint64_t off = 0; off < 8 * MiB; off += 512 * KiB)
			OK(op_write(st, id, &vm, off, 512 * KiB, (uint64_t)gen * 1000 + off / KiB));
		if (gen > 1)
			continue;
		cpid = mkdisk(st, "copy", NULL, 0);
		model_blank(&cp);
		OK(op_copy(st, id, &vm, 0, cpid, &cp, 0, vm.size));
		OK(op_copy(st, id, &vm, 3 * MiB + 5, cid, &c, 3 * MiB + 5, 2 * MiB));
	}
	if (_i == 1) {
		ck_assert_int_eq(store_unlink(st, "vm"), 0);
		ck_assert_ptr_null(disk_get(st, id));	/* purged */
	}
	ck_assert_int_eq(store_checkpoint(st), 0);
	ck_assert_int_eq(store_clean(st, 1, &cs), 0);
	ck_assert_uint_ge(cs.segments_released, 1);
	/* live in segment 1: generation 1's 8 MiB, which the copy and the clone share */
	ck_assert_uint_ge(cs.bytes_moved, 4 * MiB);	/* what only the copies hold */
	ck_assert_msg(cs.bytes_moved <= 9 * MiB, "moved %llu bytes: shared records copied "
	    "more than once", (unsigned long long)cs.bytes_moved);
	if (_i == 0)
		OK(check_disk(st, id, &vm, 1));
	OK(check_disk(st, cpid, &cp, 2));
	OK(check_disk(st, cid, &c, 3));
	assert_store_sound(st);
	st = reopen(st);
	OK(check_disk(st, cpid, &cp, 4));
	OK(check_disk(st, cid, &c, 5));
	ck_assert_int_eq(store_checkpoint(st), 0);
	st = reopen(st);
	OK(check_disk(st, cpid, &cp, 6));
	OK(check_disk(st, cid, &c, 7));
	if (_i == 0)
		OK(check_disk(st, id, &vm, 8));
	assert_store_sound(st);
	model_free(&c);
	model_free(&vm);
	check_and_close(st, cpid, &cp, 9);
}
END_TEST

/*
 * A copy whose source is deleted right after it, then a crash: the source
 * is purged only after a checkpoint past its copies (disk_purge), so the
 * copy's range comes from its committed tree, which names records of a
 * disk that is gone; the copy's later write is replayed over it.
 */
/* Two disks and their models: a source and a copy (or a clone) of it. */
struct pair {
	uint64_t	 src, dst;
	struct model	 ms, md;
	const struct store_opts *o;
};

/* The source written, copied whole, deleted; the copy written (st NULL: the models only). */
static int
deleted_steps(struct store *st, struct pair *p)
{
	if (op_resize(st, p->src, &p->ms, 3 * MiB, 0) ||
	    op_write(st, p->src, &p->ms, 100000, 500000, 5) ||
	    op_write(st, p->src, &p->ms, 2 * MiB, 300000, 6))
		return 1;
	if (op_copy(st, p->src, &p->ms, 0, p->dst, &p->md, 0, p->ms.size))
		return 2;
	if (st && store_unlink(st, "vm") != 0)
		return 3;
	return op_write(st, p->dst, &p->md, 5000, 5000, 3) ? 4 : 0;
}

static int
deleted_child(void *arg)
{
	struct pair *p = arg;
	struct store *st;
	char err[512];
	int rc;

	if (store_open(p->o, &st, err, sizeof(err)) != 0)
		return 10;
	if ((rc = deleted_steps(st, p)) != 0)
		return rc;
	return store_sync(st, p->dst) != 0 ? 11 : 0;
}

START_TEST(copy_survives_its_source_deleted_before_a_crash)
{
	struct store_opts o = opts();
	struct pair p = { .o = &o };
	struct store *st;

	p.src = fresh_store_with_disk(&p.ms);
	st = sopen();
	p.dst = mkdisk(st, "copy", NULL, 0);
	model_blank(&p.md);
	store_close(st);
	in_child(deleted_child, &p, 0);
	OK(deleted_steps(NULL, &p));
	st = sopen();
	OK(check_disk(st, p.dst, &p.md, 1));
	ck_assert_int_eq(store_checkpoint(st), 0);
	st = reopen(st);
	OK(check_disk(st, p.dst, &p.md, 2));
	assert_store_sound(st);
	model_free(&p.ms);
	check_and_close(st, p.dst, &p.md, 3);
}
END_TEST

/* ---- what the engine once got wrong ----------------------------------------- */

/*
 * A takeover from an area that holds a frozen overlay (a checkpoint failed
 * before the area was written) and is older than the index.  c's range
 * [100000, 150000) was written (W1), the checkpoint failed (W1 frozen),
 * the area was written, then vm's [90000, 190000) was copied over it
 * (REC_SHARE) and a checkpoint committed that.  The replacement's replay
 * starts at the area, meets the REC_SHARE below the index's position and
 * clears the range from the overlay only (dmap_reveal): the frozen overlay
 * from the area still hides the committed tree, and W1 shows where vm's
 * bytes should.  (replay_clone's clone_reset drops frozen too.)
 */
static int
frozen_child(void *arg)
{
	struct pair *p = arg;
	struct store *st;
	uint8_t *kept;
	char err[512];

	if (store_open(p->o, &st, err, sizeof(err)) != 0)
		return 10;
	index_failing_io(st);
	if (store_checkpoint(st) != 0 || op_write(st, p->dst, &p->md, 100000, 50000, 2) != 0)
		return 11;
	index_failing = 1;
	if (store_checkpoint(st) == 0)
		return 12;	/* it must fail, leaving c's overlay frozen */
	if (!disk_get(st, p->dst)->frozen || handoff_write(st) != 0 || !(kept = area_keep(st)))
		return 13;
	index_failing = 0;
	if (op_copy(st, p->src, &p->ms, 90000, p->dst, &p->md, 90000, 100000) != 0 ||
	    store_checkpoint(st) != 0 || op_write(st, p->dst, &p->md, 0, 1000, 3) != 0 ||
	    check_disk(st, p->dst, &p->md, 1) != 0 || store_sync(st, p->dst) != 0)
		return 14;
	area_restore(st, kept);
	return 0;
}

START_TEST(takeover_reveal_clears_a_frozen_overlay_too)
{
	size_t cap = 16 * MiB;
	uint8_t *area;
	struct store_opts o;
	struct pair p = { .o = &o };
	struct store *st;

	p.src = fresh_store_with_disk(&p.ms);
	st = sopen();
	OK(op_write(st, p.src, &p.ms, 0, 300000, 1));
	p.dst = clone_of(st, "vm", "c");
	model_copy(&p.md, &p.ms);
	store_close(st);
	o = handoff_opts(&area, cap);
	in_child(frozen_child, &p, 0);
	OK(op_write(NULL, p.dst, &p.md, 100000, 50000, 2));
	OK(op_copy(NULL, p.src, &p.ms, 90000, p.dst, &p.md, 90000, 100000));
	OK(op_write(NULL, p.dst, &p.md, 0, 1000, 3));
	o.takeover = 1;
	st = sopen_with(&o);
	ck_assert(st->from_area);
	OK(check_read(st, p.dst, &p.md, 90000, 100000));
	OK(check_disk(st, p.dst, &p.md, 2));
	model_free(&p.md);
	check_and_close(st, p.src, &p.ms, 3);
	munmap(area, cap);	/* after the close: the store's checkpoint thread writes the area */
}
END_TEST

/*
 * A disk of no template is written (family: itself) and snapshotted, then
 * truncated to 0: size 0, no log bytes of its own, though its snapshot
 * holds its records.  Were a copy from vm into it to adopt vm's family and
 * base.img, a rollback to the snapshot (lifecycle.c copy_map: the map, not
 * the family or template) would read its own old records as another
 * family's (EIO, _i 0: [0, 100000)) and base.img where the snapshot read
 * zeros (_i 1: [100000, 300000)), as it did before share.c's may_be_blank
 * refused disks with snapshots.  The copy goes by bytes instead.
 */
START_TEST(rollback_after_an_adoption_reads_the_snapshot)
{
	struct store *st = sopen();
	struct model vm, d, s1;
	uint64_t id = new_vm(st, &vm), did = mkdisk(st, "d", NULL, 0), sid;
	struct disk_attr a;
	char err[512];

	model_blank(&d);
	OK(op_write(st, did, &d, 0, 100000, 1));
	OK(op_resize(st, did, &d, 300000, 0));
	ck_assert_int_eq(store_snapshot(st, "d", "s1", NULL, &a, err, sizeof(err)), 0);
	sid = a.id;
	model_copy(&s1, &d);
	OK(op_resize(st, did, &d, 0, 0));
	ck_assert_uint_eq(attr_of(st, did).log_bytes, 0);
	OK(op_copy(st, id, &vm, 0, did, &d, 0, 50000));
	ck_assert_str_eq(attr_of(st, did).template_name, "");	/* not adopted: it has a snapshot */
	OK(check_disk(st, did, &d, 1));
	ck_assert_int_eq(store_rollback(st, "d", "s1", err, sizeof(err)), 0);
	model_free(&d);
	model_copy(&d, &s1);
	OK(check_disk(st, sid, &s1, 2));
	if (_i == 0)
		OK(check_read(st, did, &d, 0, 100000));
	else
		OK(check_read(st, did, &d, 100000, 200000));
	OK(check_disk(st, did, &d, 3));
	model_free(&d);
	model_free(&s1);
	check_and_close(st, id, &vm, 4);
}
END_TEST

/*
 * `qemu-img convert -C -O raw vm.img new.img` (qemu 7.2) creates new.img,
 * truncates it to the source's size and only then calls copy_file_range
 * (seen with strace: ftruncate(8, 0), ftruncate(8, 3145728),
 * copy_file_range(4, [0], 8, [0], 2097152, 0), ...).  A disk of no
 * template that reads only zeros adopts the source as a size-0 one does
 * (share.c may_be_blank); when it asked for size 0, the copy went by bytes
 * and the log grew by the whole disk.  The bytes are checked first.
 */
START_TEST(qemu_img_convert_into_a_truncated_new_disk_shares)
{
	struct store *st = sopen();
	struct model vm, cp;
	uint64_t id = new_vm(st, &vm), cid, before;

	vm_history(st, id, &vm);
	cid = mkdisk(st, "new", NULL, 0);
	model_blank(&cp);
	OK(op_resize(st, cid, &cp, vm.size, 0));
	before = wlog_size(st->log);
	OK(op_copy(st, id, &vm, 0, cid, &cp, 0, 2 * MiB));
	OK(op_copy(st, id, &vm, 2 * MiB, cid, &cp, 2 * MiB, vm.size - 2 * MiB));
	OK(check_disk(st, cid, &cp, 1));
	ck_assert_msg(wlog_size(st->log) - before <= SHARE_LOG_MAX, "copying %llu bytes into a "
	    "new disk truncated to its size appended %llu log bytes", (unsigned long long)vm.size,
	    (unsigned long long)(wlog_size(st->log) - before));
	model_free(&cp);
	check_and_close(st, id, &vm, 2);
}
END_TEST

FIXTURE_MAIN(tc, "share", store_setup, 240)
{
	tcase_add_test(tc, whole_copy_into_a_blank_disk_shares_and_then_diverges);
	tcase_add_test(tc, whole_copy_between_disks_of_no_template_shares);
	tcase_add_test(tc, whole_copy_racing_a_resize_of_its_source_has_the_size_it_reports);
	tcase_add_test(tc, copy_of_a_template_is_a_clone_of_it);
	tcase_add_test(tc, partial_copies_read_as_the_model_says);
	tcase_add_test(tc, copies_that_cannot_share_are_exact_bytes);
	tcase_add_test(tc, copies_with_snapshots_clones_and_templates);
	tcase_add_loop_test(tc, copies_survive_a_crash_and_a_takeover, 0, 5);
	tcase_add_test(tc, copies_over_failed_checkpoints_are_replayed);
	tcase_add_loop_test(tc, cleaner_moves_records_a_copy_shares, 0, 2);
	tcase_add_test(tc, copy_survives_its_source_deleted_before_a_crash);
	tcase_add_test(tc, takeover_reveal_clears_a_frozen_overlay_too);
	tcase_add_loop_test(tc, rollback_after_an_adoption_reads_the_snapshot, 0, 2);
	tcase_add_test(tc, qemu_img_convert_into_a_truncated_new_disk_shares);
}
