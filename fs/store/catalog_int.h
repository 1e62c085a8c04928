/*
 * catalog_int: what the catalog's two files share (catalog.c: the
 * connection, meta facts, templates and disks; catalog_extents.c: schema
 * 3's extent rows and the checkpoint transaction).  Not for other modules:
 * catalog.h is the contract.
 */
#ifndef HCOWFS_CATALOG_INT_H
#define HCOWFS_CATALOG_INT_H

#include <stdatomic.h>

#include <sqlite3.h>

#include "catalog.h"

enum {
	ST_DISK_UPDATE,
	ST_SET_META,
	ST_COUNT
};

static const char *const catalog_sql[ST_COUNT] = {
	[ST_DISK_UPDATE] = "UPDATE disks SET size = ?2, mtime_ns = ?3 WHERE id = ?1",
	[ST_SET_META] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
};

struct catalog {
	sqlite3		*db;
	sqlite3_stmt	*st[ST_COUNT];
	char		 errmsg[256];
	int		 version;	/* schema version (2: read-only, not migrated) */
	int		 lineage;	/* the disks table has the snapshot columns (schema 5) */
	int		 dirs;		/* the dirs table, disks of no template (schema 6) */
	int		 in_cluster;	/* through libcephsqlite (catalog_ceph.c) */
	atomic_int	 broken;	/* in a cluster: an I/O error, reconnect (catalog_reconnect) */
	char		 uri[512];	/* in a cluster: what catalog_open opened */
	int		 flags;		/* and how */
};

/* The caller's function and argument, for the row decoder of its query. */
struct each_row {
	union {
		int	(*tmpl)(const struct catalog_template *t, void *arg);
		int	(*disk)(const struct catalog_disk *d, void *arg);
		int	(*dir)(const struct catalog_dir *d, void *arg);
		int	(*extent)(int64_t disk_id, uint64_t loff, uint64_t len, int64_t laddr,
			    void *arg);
	} fn;
	void	*arg;
};

/* The largest row id a catalog may hold (a disk's inode is its id + 1). */
#define CATALOG_ID_MAX	(INT64_C(1) << 40)

/* A table row's id: 1 .. CATALOG_ID_MAX (AUTOINCREMENT starts at 1). */
int id_ok(int64_t id);
/* A name as create wrote it ("" allowed where unlinked is). */
int name_ok(const char *name, int may_be_empty);
/* A disk's or directory's path as create wrote it ("" allowed where unlinked is). */
int path_ok(const char *path, int may_be_empty);
/* A text column; "" for NULL. */
void column_str(sqlite3_stmt *st, int col, char *buf, size_t len);
/* Step a one-off INSERT, set *id to its row's id, then finalize it; 0 or -errno. */
int catalog_insert(struct catalog *c, sqlite3_stmt *st, int64_t *id);
/* Step a one-off statement that returns no row, then finalize it; 0 or -errno. */
int catalog_run_once(struct catalog *c, sqlite3_stmt *st);
/* A value no hcowfs would write, named in catalog_error(): -EBADMSG. */
int catalog_bad_value(struct catalog *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* SQLite's rc as a negative errno, its message kept for catalog_error(). */
int catalog_fail(struct catalog *c, int rc);
/* Prepare sql into *st; 0 or -errno. */
int catalog_prepare(struct catalog *c, const char *sql, sqlite3_stmt **st);
/* Run sql that returns no row; 0 or -errno. */
int catalog_exec(struct catalog *c, const char *sql);
/* Step a prepared statement that returns no row, and reset it; 0 or -errno. */
int catalog_step_done(struct catalog *c, sqlite3_stmt *st);
/*
 * Run a query and hand each row to row(), which decodes it and calls the
 * caller's function; row()'s non-zero return stops and is returned.
 */
int catalog_each_row(struct catalog *c, const char *sql,
    int (*row)(struct catalog *c, sqlite3_stmt *st, const struct each_row *e),
    const struct each_row *ctx);

#endif
