/*
 * check_store_template: a template changing under its disks
 * (fs/store/template.c): its disks refuse I/O, the other disks keep working,
 * new clones of the changed file record its new version, and the file put
 * back exactly as it was makes the old disk work again; a file that differs
 * in one byte nothing but a full read sees is refused once its chunk is
 * read; template names resolve only beneath the template dir, and a FIFO or
 * device node there is never opened.
 */
#include <check.h>
#include <sqlite3.h>
#include <sys/inotify.h>
#include <sys/sysmacros.h>
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

/* Wait (10 s at most) until the catalog holds template name's content sums. */
static void
wait_content_sums(const char *name)
{
	char path[256];
	sqlite3 *db;
	int have = 0;

	snprintf(path, sizeof(path), "%s/catalog.db", datadir);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 1000);
	for (int i = 0; i < 1000 && !have; i++) {
		sqlite3_stmt *q;
		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM templates WHERE name = ?1 "
		    "AND content_sums IS NOT NULL", -1, &q, NULL) == SQLITE_OK &&
		    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC) == SQLITE_OK &&
		    sqlite3_step(q) == SQLITE_ROW)
			have = sqlite3_column_int(q, 0) > 0;
		sqlite3_finalize(q);
		if (!have)
			usleep(10000);
	}
	sqlite3_close(db);
	ck_assert_msg(have, "the content sums of %s were not recorded within 10 s", name);
}

/*
 * base.img changes after disks were cloned from it.  _i:
 * 0 = one byte rewritten where the fingerprint does not sample, mtime changed
 * 1 = replaced by another file with the same bytes and mtime (new inode)
 * 2 = one sampled byte rewritten, mtime put back (content fingerprint)
 * 3 = a byte appended (size)
 * 4 = one byte no sample covers rewritten in place, mtime put back: only the
 *     content sums can tell, when that chunk is first read
 * 5 = deleted and copied back (`cp -a`) with that byte changed: a new birth
 *     time and file handle, even where the inode number comes back
 */
START_TEST(changed_template_makes_its_disks_refuse_io_and_others_keep_working)
{
	static const char *const why[] = {
		"modified", "replaced", "content changed", "size changed", "content changed",
		"replaced"
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
	if (_i >= 4)
		wait_content_sums("base.img");
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
	case 4:
		poke_byte(base, 65540, (unsigned char)(tmpl_bytes[65540] ^ 0x01));
		set_mtime(base, sb.st_mtim);
		break;
	case 5: {
		/* ext4 gives a freed inode number back soon: try for it, keep misses aside */
		char held[256];
		tmpl_bytes[65540] ^= 0x01;
		for (int k = 0; k < 20; k++) {
			struct stat now;
			snprintf(held, sizeof(held), "%s/held.%d", root, k);
			ck_assert_int_eq(rename(base, held), 0);
			if (k == 0)
				ck_assert_int_eq(unlink(held), 0);
			write_file(base, tmpl_bytes, TSIZE);
			set_mtime(base, sb.st_mtim);
			ck_assert_int_eq(stat(base, &now), 0);
			if (now.st_ino == sb.st_ino)
				break;
		}
		tmpl_bytes[65540] ^= 0x01;
		break;
	}
	}

	st = sopen();
	if (_i == 4)	/* nothing but the sum of chunk 0 differs: its first read sees it */
		ck_assert_int_eq(store_read(st, ida, buf, sizeof(buf), 65536), -EIO);
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
		/* 4: the same version but for its content, which a clone never reads */
		ck_assert_int_eq(store_read(st, idn, buf, sizeof(buf), 0),
		    _i == 4 ? -EIO : (ssize_t)sizeof(buf));
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

/* The sums of a sparse template cover its holes: a byte written into one is seen. */
START_TEST(content_sums_cover_a_sparse_templates_holes)
{
	struct store *st = sopen();
	unsigned char buf[16];
	char path[256];
	struct stat sb;
	uint64_t id;
	int fd;

	tmpl_path("sparse.img", path, sizeof(path));
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 3 * (1 << 20)), 0);
	ck_assert_int_eq(pwrite(fd, tmpl_bytes, 4096, 1 << 20), 4096);	/* chunk 1: data */
	close(fd);
	id = mkdisk(st, "ds", "sparse.img", 0);
	wait_content_sums("sparse.img");
	store_close(st);

	ck_assert_int_eq(stat(path, &sb), 0);
	poke_byte(path, 100, 0x5a);	/* chunk 0 was all hole */
	set_mtime(path, sb.st_mtim);
	st = sopen();
	ck_assert_int_eq(store_read(st, id, buf, sizeof(buf), 0), -EIO);
	store_close(st);
}
END_TEST

/* store_create's answer for template tmpl: its rc, the message in err. */
static int
try_clone(struct store *st, const char *name, const char *tmpl, char *err, size_t errlen)
{
	struct disk_attr a;

	err[0] = '\0';
	return store_create(st, name, tmpl, 0, NULL, &a, err, errlen);
}

/*
 * A template name resolves beneath the template dir: a symlink to a file
 * outside it (absolute, or through "..") is refused; one to a file inside
 * it is followed.
 */
START_TEST(template_names_resolve_only_beneath_the_template_dir)
{
	struct store *st = sopen();
	char secret[256], link[256], err[512];
	unsigned char buf[16];
	uint64_t id;
	int rc;

	snprintf(secret, sizeof(secret), "%s/secret", root);
	write_file(secret, (const unsigned char *)"not a template, not yours", 25);
	tmpl_path("innocent.img", link, sizeof(link));
	ck_assert_int_eq(symlink(secret, link), 0);
	rc = try_clone(st, "d1", "innocent.img", err, sizeof(err));
	ck_assert_msg(rc == -EXDEV && contains(err, "outside the template dir"), "%d: %s", rc, err);
	tmpl_path("up.img", link, sizeof(link));
	ck_assert_int_eq(symlink("../secret", link), 0);
	rc = try_clone(st, "d2", "up.img", err, sizeof(err));
	ck_assert_msg(rc == -EXDEV && contains(err, "outside the template dir"), "%d: %s", rc, err);

	tmpl_path("alias.img", link, sizeof(link));
	ck_assert_int_eq(symlink("base.img", link), 0);
	id = mkdisk(st, "d3", "alias.img", 0);
	ck_assert_int_eq(store_read(st, id, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ck_assert_mem_eq(buf, tmpl_bytes, sizeof(buf));
	store_close(st);
}
END_TEST

/* A FIFO or device node in the template dir is refused without being opened (inotify sees no open). */
START_TEST(fifo_and_device_templates_are_never_opened)
{
	static const char *const names[] = { "pipe.img", "null.img" };
	struct store *st = sopen();
	char path[256], err[512];
	int in = inotify_init1(IN_NONBLOCK), rc;
	char ev[4096];

	ck_assert_int_ge(in, 0);
	tmpl_path(names[0], path, sizeof(path));
	ck_assert_int_eq(mkfifo(path, 0644), 0);
	ck_assert_int_ge(inotify_add_watch(in, path, IN_OPEN), 0);
	tmpl_path(names[1], path, sizeof(path));
	if (mknod(path, S_IFCHR | 0644, makedev(1, 3)) == 0)	/* /dev/null's numbers; needs root */
		ck_assert_int_ge(inotify_add_watch(in, path, IN_OPEN), 0);
	for (int i = 0; i < 2; i++) {
		rc = try_clone(st, "d", names[i], err, sizeof(err));
		ck_assert_msg((rc == -EINVAL && contains(err, "not a regular file")) ||
		    (i == 1 && rc == -ENOENT), "%s: %d: %s", names[i], rc, err);
	}
	ck_assert_msg(read(in, ev, sizeof(ev)) < 0 && errno == EAGAIN,
	    "a FIFO or device node in the template dir was opened");
	close(in);
	store_close(st);
}
END_TEST

FIXTURE_MAIN(tc, "store", store_setup, 60)
{
	tcase_add_loop_test(tc, changed_template_makes_its_disks_refuse_io_and_others_keep_working, 0, 6);
	tcase_add_test(tc, content_sums_cover_a_sparse_templates_holes);
	tcase_add_test(tc, template_names_resolve_only_beneath_the_template_dir);
	tcase_add_test(tc, fifo_and_device_templates_are_never_opened);
}
