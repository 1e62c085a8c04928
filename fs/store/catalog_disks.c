/*
 * catalog_disks: the disks table's rows: loading them, adding a disk or a
 * snapshot (with an id reserved before, for a copy: lifecycle.c), renaming,
 * unnaming, attributes, a blank disk adopting a template and family (a copy
 * into it: share.c), purging (catalog.h has the contract; catalog.c the
 * connection).
 *
 * Invariants:
 * - Each change is its own durable transaction (a rename that replaces a
 *   disk unnames the victim in the same one).
 * - Every value read is checked before use (disk_row): a row out of range
 *   refuses the catalog with one line naming it.
 * - A reserved id is never given to another disk: sqlite_sequence is raised
 *   past it in its own transaction.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "catalog_int.h"
#include "names.h"

static int
disk_row(struct catalog *c, sqlite3_stmt *st, const struct each_row *e)
{
	struct catalog_disk d;

	d.id = sqlite3_column_int64(st, 0);
	column_str(st, 1, d.name, sizeof(d.name));
	d.template_id = sqlite3_column_int64(st, 2);
	d.size = (uint64_t)sqlite3_column_int64(st, 3);
	d.mode = (uint32_t)sqlite3_column_int(st, 4);
	d.uid = (uint32_t)sqlite3_column_int64(st, 5);
	d.gid = (uint32_t)sqlite3_column_int64(st, 6);
	d.mtime_ns = sqlite3_column_int64(st, 7);
	d.ctime_ns = sqlite3_column_int64(st, 8);
	d.created = sqlite3_column_int64(st, 9);
	column_str(st, 10, d.create_token, sizeof(d.create_token));
	d.snap_of = sqlite3_column_int64(st, 11);
	column_str(st, 12, d.snap_name, sizeof(d.snap_name));
	d.family = sqlite3_column_int64(st, 13);
	d.origin = sqlite3_column_int64(st, 14);
	if (!id_ok(d.id) || !path_ok(d.name, 1) || (d.template_id && !id_ok(d.template_id)) ||
	    d.size > DISK_SIZE_MAX || (d.mode & ~07777u) || d.snap_of < 0 || d.family < 0 ||
	    d.origin < 0 || !name_ok(d.snap_name, 1) || (d.snap_of && d.name[0]) ||
	    (!d.snap_of && d.snap_name[0]))
		return catalog_bad_value(c, "disk row %lld ('%.64s', template %lld, %llu bytes, "
		    "mode %o, snapshot of %lld '%.64s') is out of range", (long long)d.id, d.name,
		    (long long)d.template_id, (unsigned long long)d.size, d.mode,
		    (long long)d.snap_of, d.snap_name);
	return e->fn.disk(&d, e->arg);
}

int
catalog_each_disk(struct catalog *c,
    int (*fn)(const struct catalog_disk *d, void *arg), void *arg)
{
	struct each_row e = { .fn.disk = fn, .arg = arg };

	return catalog_each_row(c, c->lineage ?
	    "SELECT id, name, template_id, size, mode, uid, gid, mtime_ns, ctime_ns, created, "
	    "create_token, snap_of, snap_name, family, origin FROM disks ORDER BY id" :
	    "SELECT id, name, template_id, size, mode, uid, gid, mtime_ns, ctime_ns, created, "
	    "create_token, 0, NULL, 0, 0 FROM disks ORDER BY id", disk_row, &e);
}

int
catalog_disk_add(struct catalog *c, struct catalog_disk *d)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "INSERT INTO disks (name, template_id, size, mode, uid, gid, "
	    "mtime_ns, ctime_ns, created, create_token, snap_of, snap_name, family, origin, id) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)", &st)) < 0)
		return rc;
	if (d->name[0])
		sqlite3_bind_text(st, 1, d->name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 1);
	sqlite3_bind_int64(st, 11, d->snap_of);
	if (d->snap_name[0])
		sqlite3_bind_text(st, 12, d->snap_name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 12);
	sqlite3_bind_int64(st, 13, d->family);
	sqlite3_bind_int64(st, 14, d->origin);
	if (d->id > 0)
		sqlite3_bind_int64(st, 15, d->id);
	else
		sqlite3_bind_null(st, 15);
	if (d->template_id)
		sqlite3_bind_int64(st, 2, d->template_id);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)d->size);
	sqlite3_bind_int(st, 4, (int)d->mode);
	sqlite3_bind_int64(st, 5, d->uid);
	sqlite3_bind_int64(st, 6, d->gid);
	sqlite3_bind_int64(st, 7, d->mtime_ns);
	sqlite3_bind_int64(st, 8, d->ctime_ns);
	sqlite3_bind_int64(st, 9, d->created);
	sqlite3_bind_text(st, 10, d->create_token, -1, SQLITE_STATIC);
	return catalog_insert(c, st, &d->id);
}

int
catalog_disk_reserve_id(struct catalog *c, int64_t *id)
{
	sqlite3_stmt *st;
	int rc;

	/* AUTOINCREMENT never gives an id at or below sqlite_sequence's: raise it */
	if ((rc = catalog_prepare(c, "UPDATE sqlite_sequence SET seq = seq + 1 "
	    "WHERE name = 'disks' RETURNING seq", &st)) < 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : catalog_fail(c, rc);
	} else if (rc == SQLITE_DONE) {
		snprintf(c->errmsg, sizeof(c->errmsg), "no disk was ever created");
		rc = -ENOENT;
	} else {
		rc = catalog_fail(c, rc);
	}
	sqlite3_finalize(st);
	return rc;
}

int
catalog_snapshot_unname(struct catalog *c, int64_t id)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "UPDATE disks SET snap_name = NULL WHERE id = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return catalog_run_once(c, st);
}

int
catalog_disk_rename(struct catalog *c, int64_t id, const char *name, int64_t victim)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_exec(c, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = catalog_prepare(c, "UPDATE disks SET name = ?2 WHERE id = ?1", &st)) < 0)
		goto fail;
	if (victim > 0) {
		/* the disk renamed over loses its name in the same transaction */
		sqlite3_bind_int64(st, 1, victim);
		sqlite3_bind_null(st, 2);
		if ((rc = catalog_step_done(c, st)) < 0)
			goto fail_st;
	}
	sqlite3_bind_int64(st, 1, id);
	if (name)
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	if ((rc = catalog_step_done(c, st)) < 0)
		goto fail_st;
	sqlite3_finalize(st);
	return catalog_exec(c, "COMMIT");
fail_st:
	sqlite3_finalize(st);
fail:
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int
catalog_disk_setattr(struct catalog *c, int64_t id, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t ctime_ns)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "UPDATE disks SET mode = ?2, uid = ?3, gid = ?4, "
	    "ctime_ns = ?5 WHERE id = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, (int)mode);
	sqlite3_bind_int64(st, 3, uid);
	sqlite3_bind_int64(st, 4, gid);
	sqlite3_bind_int64(st, 5, ctime_ns);
	return catalog_run_once(c, st);
}

int
catalog_disk_adopt(struct catalog *c, int64_t id, int64_t template_id, int64_t family,
    int64_t origin)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "UPDATE disks SET template_id = ?2, family = ?3, origin = ?4 "
	    "WHERE id = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	if (template_id)
		sqlite3_bind_int64(st, 2, template_id);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, family);
	sqlite3_bind_int64(st, 4, origin);
	return catalog_run_once(c, st);
}

int
catalog_disk_purge(struct catalog *c, int64_t id)
{
	char sql[160];
	int rc;

	if ((rc = catalog_exec(c, "BEGIN IMMEDIATE")) < 0)
		return rc;
	snprintf(sql, sizeof(sql), "DELETE FROM extents WHERE disk_id = %lld; "
	    "DELETE FROM disks WHERE id = %lld", (long long)id, (long long)id);
	if ((rc = catalog_exec(c, sql)) < 0) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return catalog_exec(c, "COMMIT");
}

