/*
 * catalog_dirs: the dirs table's rows (schema 6): the mount's directories,
 * each a path of names joined by '/' (catalog.h has the contract).
 *
 * Invariants:
 * - Each change is its own durable transaction; a directory's rename moves
 *   every path below it (directories and disks) in the same one, so a crash
 *   leaves the tree before or after, never between.
 * - Every value read is checked before use (dir_row).
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "catalog_int.h"

static int
dir_row(struct catalog *c, sqlite3_stmt *st, const struct each_row *e)
{
	struct catalog_dir d;

	d.id = sqlite3_column_int64(st, 0);
	column_str(st, 1, d.path, sizeof(d.path));
	d.mode = (uint32_t)sqlite3_column_int(st, 2);
	d.uid = (uint32_t)sqlite3_column_int64(st, 3);
	d.gid = (uint32_t)sqlite3_column_int64(st, 4);
	d.mtime_ns = sqlite3_column_int64(st, 5);
	d.ctime_ns = sqlite3_column_int64(st, 6);
	if (!id_ok(d.id) || !path_ok(d.path, 0) || (d.mode & ~07777u))
		return catalog_bad_value(c, "directory row %lld ('%.64s', mode %o) is out of range",
		    (long long)d.id, d.path, d.mode);
	return e->fn.dir(&d, e->arg);
}

int
catalog_each_dir(struct catalog *c, int (*fn)(const struct catalog_dir *d, void *arg),
    void *arg)
{
	struct each_row e = { .fn.dir = fn, .arg = arg };

	if (!c->dirs)
		return 0;
	return catalog_each_row(c, "SELECT id, path, mode, uid, gid, mtime_ns, ctime_ns FROM dirs "
	    "ORDER BY id", dir_row, &e);
}

int
catalog_dir_add(struct catalog *c, struct catalog_dir *d)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "INSERT INTO dirs (path, mode, uid, gid, mtime_ns, ctime_ns) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, d->path, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)d->mode);
	sqlite3_bind_int64(st, 3, d->uid);
	sqlite3_bind_int64(st, 4, d->gid);
	sqlite3_bind_int64(st, 5, d->mtime_ns);
	sqlite3_bind_int64(st, 6, d->ctime_ns);
	return catalog_insert(c, st, &d->id);
}

int
catalog_dir_remove(struct catalog *c, int64_t id)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "DELETE FROM dirs WHERE id = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return catalog_run_once(c, st);
}

int
catalog_dir_setattr(struct catalog *c, int64_t id, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t mtime_ns, int64_t ctime_ns)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "UPDATE dirs SET mode = ?2, uid = ?3, gid = ?4, "
	    "mtime_ns = ?5, ctime_ns = ?6 WHERE id = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, (int)mode);
	sqlite3_bind_int64(st, 3, uid);
	sqlite3_bind_int64(st, 4, gid);
	sqlite3_bind_int64(st, 5, mtime_ns);
	sqlite3_bind_int64(st, 6, ctime_ns);
	return catalog_run_once(c, st);
}

/* Run sql with ?1 = from, ?2 = to, ?3 = from's length + 1 (paths below: from/...). */
static int
rename_below(struct catalog *c, const char *sql, const char *from, const char *to)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, sql, &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)strlen(from) + 1);
	return catalog_run_once(c, st);
}

int
catalog_dir_rename(struct catalog *c, const char *from, const char *to, int64_t victim)
{
	int rc;

	if ((rc = catalog_exec(c, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((victim > 0 && (rc = catalog_dir_remove(c, victim)) < 0) ||
	    (rc = rename_below(c, "UPDATE dirs SET path = ?2 WHERE path = ?1", from, to)) < 0 ||
	    /* substr from ?3 is what follows "from" in "from/...": "/..." */
	    (rc = rename_below(c, "UPDATE dirs SET path = ?2 || substr(path, ?3) "
	    "WHERE substr(path, 1, ?3) = ?1 || '/'", from, to)) < 0 ||
	    (rc = rename_below(c, "UPDATE disks SET name = ?2 || substr(name, ?3) "
	    "WHERE substr(name, 1, ?3) = ?1 || '/'", from, to)) < 0) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return catalog_exec(c, "COMMIT");
}
