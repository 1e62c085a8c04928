/*
 * check_store_namespace: names of disks (fs/store/namespace.c).  Listing
 * shows linked disks in id order; an unlinked disk works while open and is
 * purged when released (or at the next purging open); rename replaces its
 * target, and with NOREPLACE is EEXIST.  A store opened on a catalog opened
 * ahead (a standby worker's) keeps its SQLite locks: another process closing
 * its own connection (the next standby, dismissed) must not take the WAL
 * away from under the store's later namespace changes.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbuf.h"
#include "store_fixture.h"

/*
 * Another process with a connection of its own to the catalog, as a standby
 * worker's: forked before this one opens any (a child forked later would
 * share the parent's SQLite state of the file, locks included).  Each query
 * opens the catalog, runs sql and closes it, as a standby dismissed unused
 * does; the answer is 0 if sql gave a row whose first column is non-zero,
 * 1 if not, 2 on an error.
 */
struct other {
	pid_t	pid;
	int	to, from;
};

static void
other_serve(int in, int out)
{
	char sql[512], path[256];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/catalog.db", datadir);
	while ((n = read(in, sql, sizeof(sql) - 1)) > 0) {
		sqlite3 *db;
		sqlite3_stmt *q;
		char answer = 2;

		sql[n] = '\0';
		if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
		    sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
			answer = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) != 0 ? 0 : 1;
			sqlite3_finalize(q);
		}
		sqlite3_close(db);
		if (write(out, &answer, 1) != 1)
			break;
	}
	_exit(0);
}

static struct other
other_start(void)
{
	struct other o;
	int down[2], up[2];

	ck_assert_int_eq(pipe(down), 0);
	ck_assert_int_eq(pipe(up), 0);
	if ((o.pid = fork()) == 0) {
		close(down[1]);
		close(up[0]);
		other_serve(down[0], up[1]);
	}
	ck_assert_int_gt(o.pid, 0);
	close(down[0]);
	close(up[1]);
	o.to = down[1];
	o.from = up[0];
	return o;
}

static int
other_query(struct other *o, const char *sql)
{
	char answer;

	ck_assert_int_eq(write(o->to, sql, strlen(sql)), (ssize_t)strlen(sql));
	ck_assert_int_eq(read(o->from, &answer, 1), 1);
	return answer;
}

static void
other_stop(struct other *o)
{
	close(o->to);
	close(o->from);
	ck_assert_int_eq(waitpid(o->pid, NULL, 0), o->pid);
}

START_TEST(catalog_opened_ahead_keeps_its_changes_when_another_connection_closes)
{
	struct other other = other_start();
	struct store *st = sopen();
	struct store_opts o = opts();
	struct dir_attr da;
	char wal[256];

	mkdisk(st, "one", "base.img", 0);
	store_close(st);
	/* a standby's open: the catalog first, the store when it takes over */
	ck_assert_ptr_nonnull(o.catalog = store_catalog_preopen(datadir));
	o.takeover = 1;
	st = sopen_with(&o);
	/* the next standby, dismissed: its connection closes */
	ck_assert_int_eq(other_query(&other, "SELECT count(*) FROM disks"), 0);
	snprintf(wal, sizeof(wal), "%s/catalog.db-wal", datadir);
	ck_assert_msg(access(wal, F_OK) == 0, "another process's close removed the WAL of a "
	    "catalog the store holds open");
	ck_assert_int_eq(store_mkdir(st, "kept", 0755, 0, 0, &da), 0);
	/* what the store committed is in the catalog, for any process (a kill loses nothing) */
	ck_assert_int_eq(other_query(&other, "SELECT count(*) FROM dirs WHERE path = 'kept'"), 0);
	other_stop(&other);
	store_close(st);
}
END_TEST

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
	    "\"extents\":0,\"opens\":0,\"snapshots\":0,\"origin\":null,\"state\":\"ok\"},"
	    "{\"name\":\"three\",\"template\":\"base.img\",\"size\":2097152,\"log_bytes\":0,"
	    "\"extents\":0,\"opens\":0,\"snapshots\":0,\"origin\":null,\"state\":\"ok\"}]");
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
	st = reopen(st);
	ck_assert_int_eq(store_getattr(st, id, &a), -ENOENT);
	ck_assert_int_eq(store_lookup(st, "vm", &a), 0);
	ck_assert_uint_eq(a.id, id2);
	check_and_close(st, id2, &m, 5);
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
	ck_assert_int_eq(store_rename(st, "b", "bad//name", 0), -EINVAL);
	ck_assert_int_eq(store_rename(st, "b", "nodir/name", 0), -ENOENT);
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

FIXTURE_MAIN(tc, "store", store_setup, 60)
{
	tcase_add_test(tc, listing_shows_linked_disks_in_id_order);
	tcase_add_test(tc, unlinked_open_disk_works_until_released_then_is_gone);
	tcase_add_test(tc, unlinked_disk_is_kept_without_purge_and_purged_at_next_purging_open);
	tcase_add_test(tc, rename_replaces_target_and_noreplace_is_EEXIST);
	tcase_add_test(tc, catalog_opened_ahead_keeps_its_changes_when_another_connection_closes);
}
