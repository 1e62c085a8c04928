/*
 * check_store_open: opening a store and making clones (fs/store/store.c,
 * namespace.c).  Open with create makes the catalog and the log, never
 * deletes a log that has records and finishes an interrupted creation;
 * store_create reads exactly the template and rejects bad names, sizes,
 * duplicates and missing templates.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_fixture.h"

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
	st = reopen(st);
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
	uint64_t id = new_vm(st, &m);

	ck_assert_int_eq(store_getattr(st, id, &a), 0);
	ck_assert_uint_eq(a.size, TSIZE);
	ck_assert_str_eq(a.template_name, "base.img");
	ck_assert_uint_eq(a.log_bytes, 0);
	ck_assert_ptr_null(a.problem);
	check_and_close(st, id, &m, 1);
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
	check_and_close(st, id, &m, 2);
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
	static const char *const bad[] = { "", "a//b", "a/", "/abs", ".hidden", "a/.b", "..",
	    "sp ace", "q\"uote" };
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
	/* a path is a name in a directory that exists */
	err[0] = '\0';
	ck_assert_int_eq(store_create(st, "nodir/a", "base.img", 0, NULL, &a, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, "no directory 'nodir'"), "message: %s", err);
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

FIXTURE_MAIN(tc, "store", store_setup, 60)
{
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
}
