/*
 * check_store_template: a template changing under its disks
 * (fs/store/template.c): its disks refuse I/O, the other disks keep working,
 * new clones of the changed file record its new version, and the file put
 * back exactly as it was makes the old disk work again.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_fixture.h"

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

FIXTURE_MAIN(tc, "store", store_setup, 60)
{
	tcase_add_loop_test(tc, changed_template_makes_its_disks_refuse_io_and_others_keep_working, 0, 4);
}
