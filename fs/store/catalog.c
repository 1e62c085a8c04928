/*
 * catalog: see catalog.h for the contract.
 *
 * Design notes
 *
 * Owns the SQLite connection, its prepared statements and the message of
 * the last failure.  The caller (the store) serializes every call under its
 * cat_lock; nothing here locks.
 *
 * The database runs in WAL mode with synchronous=FULL: a commit returns once
 * it is durable.  Statements used more than once are prepared at open.
 * The schema text is compiled in (schema_sql.c, generated from
 * schema/hcowfs.sql), so a store is always created with the schema this
 * binary understands; an existing store with another schema_version is
 * refused rather than guessed at, except version 2, which a writable open
 * migrates (catalog_migrate_v2) and a read-only one reads as it is.
 *
 * Invariants:
 * - Every write outside a checkpoint (a disk added, renamed, purged, a meta
 *   fact) is its own durable transaction.
 * - The disk rows are catalog_disks.c's; the extent rows and the checkpoint
 *   transaction are catalog_extents.c's; their heads say what they keep.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog_int.h"
#include "crc32c.h"
#include "names.h"

extern const char hcowfs_schema_sql[];


int
catalog_fail(struct catalog *c, int rc)
{
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", sqlite3_errmsg(c->db));
	if (c->in_cluster && (rc & 0xff) == SQLITE_IOERR)
		c->broken = 1;	/* libcephsqlite gives up on a lock it lost: reconnect */
	switch (rc & 0xff) {
	case SQLITE_FULL:	return -ENOSPC;
	case SQLITE_NOMEM:	return -ENOMEM;
	case SQLITE_READONLY:	return -EROFS;
	case SQLITE_CONSTRAINT:	return -EEXIST;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:	return -EUCLEAN;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:	return -EBUSY;
	case SQLITE_CANTOPEN:	return -EACCES;
	default:		return -EIO;
	}
}

/*
 * A value read from the catalog that no hcowfs wrote: say which, return
 * -EBADMSG.  The catalog is trusted no further than its values are checked:
 * a disk id indexes a table, a name reaches openat, a size bounds reads.
 */
int
catalog_bad_value(struct catalog *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

int
id_ok(int64_t id)
{
	return id > 0 && id <= CATALOG_ID_MAX;
}

int
name_ok(const char *name, int may_be_empty)
{
	const char *why;

	return (may_be_empty && !name[0]) || name_check(name, &why) == 0;
}

int
path_ok(const char *path, int may_be_empty)
{
	const char *why;

	return (may_be_empty && !path[0]) || path_check(path, &why) == 0;
}

const char *
catalog_error(struct catalog *c)
{
	return c->errmsg;
}

int
catalog_exec(struct catalog *c, const char *sql)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : catalog_fail(c, rc);
}

/* Run a prepared statement that returns no row. */
int
catalog_step_done(struct catalog *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : catalog_fail(c, rc);
}

void
column_str(sqlite3_stmt *st, int col, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(buf, len, "%s", t ? (const char *)t : "");
}

/* Prepare the statements used more than once (catalog_sql); 0 or -errno. */
static int
catalog_prepare_all(struct catalog *c)
{
	for (int i = 0; i < ST_COUNT; i++) {
		int rc = sqlite3_prepare_v3(c->db, catalog_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		    &c->st[i], NULL);
		if (rc != SQLITE_OK)
			return catalog_fail(c, rc);
	}
	return 0;
}

/* Prepare sql into *st; 0 or -errno (the message kept for catalog_error()). */
int
catalog_prepare(struct catalog *c, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(c->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : catalog_fail(c, rc);
}

int
catalog_insert(struct catalog *c, sqlite3_stmt *st, int64_t *id)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE) {
		*id = sqlite3_last_insert_rowid(c->db);
		rc = 0;
	} else {
		rc = catalog_fail(c, rc);
	}
	sqlite3_finalize(st);
	return rc;
}

int
catalog_run_once(struct catalog *c, sqlite3_stmt *st)
{
	int rc = catalog_step_done(c, st);

	sqlite3_finalize(st);
	return rc;
}

int
catalog_meta_get(struct catalog *c, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "SELECT value FROM meta WHERE key = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		column_str(st, 0, buf, len);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		snprintf(c->errmsg, sizeof(c->errmsg), "meta key '%s' is missing", key);
		rc = -EUCLEAN;
	} else {
		rc = catalog_fail(c, rc);
	}
	sqlite3_finalize(st);
	return rc;
}

int
catalog_meta_set(struct catalog *c, const char *key, const char *value)
{
	sqlite3_stmt *st = c->st[ST_SET_META];

	if (!st)
		return -EIO;	/* a reconnect that failed (catalog_reconnect) */
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
	return catalog_step_done(c, st);
}

static int
catalog_init_schema(struct catalog *c, const uint8_t uuid[16], uint64_t first_laddr)
{
	char hex[33], v[32];
	int rc;

	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
	if ((rc = catalog_exec(c, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = catalog_exec(c, hcowfs_schema_sql)) < 0)
		goto fail;
	if ((rc = catalog_prepare_all(c)) < 0)
		goto fail;
	snprintf(v, sizeof(v), "%d", CATALOG_SCHEMA_VERSION);
	if ((rc = catalog_meta_set(c, "schema_version", v)) < 0 ||
	    (rc = catalog_meta_set(c, "store_uuid", hex)) < 0)
		goto fail;
	snprintf(v, sizeof(v), "%" PRIu64, first_laddr);
	if ((rc = catalog_meta_set(c, "checkpoint_laddr", v)) < 0 ||
	    (rc = catalog_meta_set(c, "checkpoint_seq", "1")) < 0)
		goto fail;
	snprintf(v, sizeof(v), "%lld", (long long)time(NULL));
	if ((rc = catalog_meta_set(c, "created", v)) < 0)
		goto fail;
	return catalog_exec(c, "COMMIT");
fail:
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Does PATH-wal hold anything? */
static int
wal_has_frames(const char *path)
{
	char wal[PATH_MAX + 8];
	struct stat sb;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	return stat(wal, &sb) == 0 && sb.st_size > 0;
}

/* file: URI for an immutable read-only open of path. */
static void
catalog_uri(const char *path, char *out, size_t len)
{
	size_t n = (size_t)snprintf(out, len, "file:");

	for (const char *p = path; *p && n + 4 < len; p++) {
		if (*p == '%' || *p == '?' || *p == '#')
			n += (size_t)snprintf(out + n, len - n, "%%%02X", (unsigned char)*p);
		else
			out[n++] = *p;
	}
	snprintf(out + n, len - n, "?mode=ro&immutable=1");
}

/*
 * Run a migration's statements in order; on a failure roll back (and turn
 * foreign keys on again, for one that turned them off): 0 or -errno.
 */
static int
run_steps(struct catalog *c, const char *const *steps, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		if ((rc = catalog_exec(c, steps[i])) < 0) {
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			sqlite3_exec(c->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
			return rc;
		}
	}
	return 0;
}

/*
 * Schema 2 -> 3: templates gain btime_ns, handle (both in the UNIQUE key, so
 * a file put back with the old inode and mtime is a new version) and
 * content_sums.  SQLite cannot change a UNIQUE constraint in place: the
 * table is rebuilt (SQLite's documented way: foreign keys off, new table,
 * copy, drop, rename, check) in one transaction, with the version.
 */
static int
catalog_migrate_v2(struct catalog *c)
{
	static const char *const steps[] = {
		"PRAGMA foreign_keys = OFF",
		"BEGIN IMMEDIATE",
		"CREATE TABLE templates_v3 ("
		"id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
		"size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, "
		"fingerprint TEXT NOT NULL, btime_ns INTEGER NOT NULL DEFAULT 0, "
		"handle TEXT NOT NULL DEFAULT '', content_sums BLOB, "
		"UNIQUE (name, size, mtime_ns, ino, fingerprint, btime_ns, handle))",
		"INSERT INTO templates_v3 (id, name, size, mtime_ns, ino, fingerprint) "
		"SELECT id, name, size, mtime_ns, ino, fingerprint FROM templates",
		"DROP TABLE templates",
		"ALTER TABLE templates_v3 RENAME TO templates",
		"UPDATE meta SET value = '3' WHERE key = 'schema_version'",
		"COMMIT",
		"PRAGMA foreign_keys = ON",
	};
	int rc;

	if ((rc = run_steps(c, steps, sizeof(steps) / sizeof(steps[0]))) < 0)
		return rc;
	c->version = 3;
	return 0;
}

/*
 * Schema 4 (or 3) -> 5: the disks table gains the snapshot and clone
 * columns.  Adding columns with defaults changes no row; a schema 3 catalog
 * stays 3 (it still holds extent rows) and becomes 5 when they are retired.
 */
static int
catalog_add_lineage(struct catalog *c)
{
	static const char *const steps[] = {
		"BEGIN IMMEDIATE",
		"ALTER TABLE disks ADD COLUMN snap_of INTEGER NOT NULL DEFAULT 0",
		"ALTER TABLE disks ADD COLUMN snap_name TEXT",
		"ALTER TABLE disks ADD COLUMN family INTEGER NOT NULL DEFAULT 0",
		"ALTER TABLE disks ADD COLUMN origin INTEGER NOT NULL DEFAULT 0",
		"CREATE UNIQUE INDEX disks_snapshots ON disks (snap_of, snap_name) "
		"WHERE snap_name IS NOT NULL",
		"UPDATE meta SET value = '5' WHERE key = 'schema_version' AND value = '4'",
		"COMMIT",
	};
	int rc;

	if ((rc = run_steps(c, steps, sizeof(steps) / sizeof(steps[0]))) < 0)
		return rc;
	if (c->version == 4)
		c->version = 5;
	return 0;
}

/*
 * Schema 5 (or a 3 with the lineage columns) -> 6: directories, and disks
 * of no template.  template_id loses its NOT NULL, which SQLite cannot drop
 * in place: the disks table is rebuilt as catalog_migrate_v2 rebuilds
 * templates, in one transaction with the new dirs table and the version.
 */
static int
catalog_add_dirs(struct catalog *c)
{
	static const char *const steps[] = {
		"PRAGMA foreign_keys = OFF",
		"BEGIN IMMEDIATE",
		"CREATE TABLE disks_v6 ("
		"id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, "
		"template_id INTEGER REFERENCES templates(id), size INTEGER NOT NULL, "
		"mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, "
		"mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, created INTEGER NOT NULL, "
		"create_token TEXT NOT NULL, snap_of INTEGER NOT NULL DEFAULT 0, snap_name TEXT, "
		"family INTEGER NOT NULL DEFAULT 0, origin INTEGER NOT NULL DEFAULT 0)",
		"INSERT INTO disks_v6 SELECT id, name, template_id, size, mode, uid, gid, mtime_ns, "
		"ctime_ns, created, create_token, snap_of, snap_name, family, origin FROM disks",
		/* AUTOINCREMENT's high-water mark: a reserved id stays taken */
		"UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'disks') "
		"WHERE name = 'disks_v6'",
		"DROP TABLE disks",
		"ALTER TABLE disks_v6 RENAME TO disks",
		"CREATE UNIQUE INDEX disks_snapshots ON disks (snap_of, snap_name) "
		"WHERE snap_name IS NOT NULL",
		"CREATE TABLE dirs (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL UNIQUE, "
		"mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, "
		"mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL)",
		"UPDATE meta SET value = '6' WHERE key = 'schema_version' AND value = '5'",
		"PRAGMA foreign_key_check",
		"COMMIT",
		"PRAGMA foreign_keys = ON",
	};
	int rc;

	if ((rc = run_steps(c, steps, sizeof(steps) / sizeof(steps[0]))) < 0)
		return rc;
	if (c->version == 5)
		c->version = 6;
	return 0;
}

/* Does the catalog have table name?  1, 0, or -errno. */
static int
catalog_has_table(struct catalog *c, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
	    "AND name = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) > 0 : catalog_fail(c, rc);
	sqlite3_finalize(st);
	return rc;
}

/* Has the disks table the snapshot columns?  1, 0, or -errno. */
static int
catalog_has_lineage(struct catalog *c)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "SELECT count(*) FROM pragma_table_info('disks') "
	    "WHERE name = 'snap_of'", &st)) < 0)
		return rc;
	rc = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) > 0 : catalog_fail(c, rc);
	sqlite3_finalize(st);
	return rc;
}

/* The settings of every connection: WAL (unless read-only), full syncs, foreign keys. */
static int
catalog_session(struct catalog *c, int readonly)
{
	int rc;

	if ((!readonly && (rc = catalog_exec(c, "PRAGMA journal_mode = WAL")) < 0) ||
	    (rc = catalog_exec(c, "PRAGMA synchronous = FULL")) < 0)
		return rc;
	return catalog_exec(c, "PRAGMA foreign_keys = ON");
}

int
catalog_open(const char *path, int how, const uint8_t uuid[16],
    uint64_t first_laddr, struct catalog **out, char *err, size_t errlen)
{
	struct catalog *c = calloc(1, sizeof(*c));
	int create = how & CATALOG_CREATE, readonly = how & CATALOG_READONLY;
	char v[64];
	int rc, flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
	int in_cluster = catalog_in_cluster(path);

	if (!c)
		return -ENOMEM;
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	c->in_cluster = in_cluster;
	if (in_cluster) {
		/* libcephsqlite: the path is its URI; no -wal file to look at */
		snprintf(c->uri, sizeof(c->uri), "%s", path);
		c->flags = flags & ~SQLITE_OPEN_CREATE;
		rc = sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_URI, NULL);
	} else if (readonly && !wal_has_frames(path)) {
		/*
		 * Nothing in the WAL: the file alone is the database, and
		 * immutable keeps SQLite from creating -wal and -shm files, so a
		 * check changes nothing.  With frames in the WAL (a crash before
		 * SQLite's checkpoint), a plain read-only open must read them.
		 */
		char uri[PATH_MAX * 3 + 32];
		catalog_uri(path, uri, sizeof(uri));
		rc = sqlite3_open_v2(uri, &c->db, flags | SQLITE_OPEN_URI, NULL);
	} else {
		rc = sqlite3_open_v2(path, &c->db, flags, NULL);
	}
	if (rc != SQLITE_OK) {
		rc = c->db ? catalog_fail(c, rc) : -ENOMEM;
		snprintf(err, errlen, "cannot open catalog '%s': %s", path,
		    c->db ? c->errmsg : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(c->db, 5000);
	/*
	 * An existing catalog is checked before anything is set: switching a
	 * file that is not our catalog (empty, say) to WAL would write to it,
	 * and a damaged catalog must stay as it was for whoever investigates.
	 */
	if (in_cluster && (rc = catalog_exec(c, "PRAGMA locking_mode = EXCLUSIVE")) < 0) {
		snprintf(err, errlen, "catalog '%s' is not usable: %s", path, c->errmsg);
		goto fail;
	}
	if (!create && (rc = catalog_meta_get(c, "schema_version", v, sizeof(v))) < 0) {
		snprintf(err, errlen, "catalog '%s' is not an hcowfs catalog: %s", path, c->errmsg);
		goto fail;
	}
	/*
	 * In a cluster: one connection holds the database for its life (the
	 * store's fence says whose it is), which is also what lets SQLite keep
	 * a WAL there (no shared memory between processes); 64 KiB pages, as
	 * few RADOS operations as a page change can take.
	 */
	if (in_cluster && ((create && (rc = catalog_exec(c, "PRAGMA page_size = 65536")) < 0) ||
	    (rc = catalog_exec(c, "PRAGMA temp_store = MEMORY")) < 0)) {
		snprintf(err, errlen, "catalog '%s' is not usable: %s", path, c->errmsg);
		goto fail;
	}
	if ((rc = catalog_session(c, readonly)) < 0) {
		snprintf(err, errlen, "catalog '%s' is not usable: %s", path, c->errmsg);
		goto fail;
	}
	if (create) {
		c->version = CATALOG_SCHEMA_VERSION;
		c->lineage = c->dirs = 1;
		if ((rc = catalog_init_schema(c, uuid, first_laddr)) < 0) {
			snprintf(err, errlen, "cannot create catalog '%s': %s", path, c->errmsg);
			goto fail;
		}
	} else {
		c->version = atoi(v);
		if (c->version == 2 && !readonly && (rc = catalog_migrate_v2(c)) < 0) {
			snprintf(err, errlen, "cannot migrate catalog '%s' from schema version 2: %s",
			    path, c->errmsg);
			goto fail;
		}
		if ((c->version == 3 || c->version == 4) && (rc = catalog_has_lineage(c)) >= 0)
			c->lineage = rc;
		if ((c->version == 3 || c->version == 4) && !readonly && !c->lineage &&
		    (rc = catalog_add_lineage(c)) < 0) {
			snprintf(err, errlen, "cannot migrate catalog '%s' to schema version %d: %s",
			    path, CATALOG_SCHEMA_VERSION, c->errmsg);
			goto fail;
		}
		if (!readonly || c->version >= 5)
			c->lineage = 1;
		if (c->version >= 3 && c->version <= 5 && (rc = catalog_has_table(c, "dirs")) >= 0)
			c->dirs = rc;
		if (c->version >= 3 && c->version <= 5 && !readonly && !c->dirs &&
		    (rc = catalog_add_dirs(c)) < 0) {
			snprintf(err, errlen, "cannot migrate catalog '%s' to schema version %d: %s",
			    path, CATALOG_SCHEMA_VERSION, c->errmsg);
			goto fail;
		}
		if (!readonly || c->version == CATALOG_SCHEMA_VERSION)
			c->dirs = 1;
		if (c->version != CATALOG_SCHEMA_VERSION && c->version != 3 &&
		    !((c->version == 2 || c->version == 4 || c->version == 5) && readonly)) {
			rc = -EPROTO;
			snprintf(err, errlen, "catalog '%s' has schema version %s; this build reads version %d",
			    path, v, CATALOG_SCHEMA_VERSION);
			goto fail;
		}
		if ((rc = catalog_prepare_all(c)) < 0) {
			snprintf(err, errlen, "catalog '%s' does not match the schema: %s",
			    path, c->errmsg);
			goto fail;
		}
	}
	*out = c;
	return 0;
fail:
	catalog_close(c);
	return rc;
}

int
catalog_broken(const struct catalog *c)
{
	return c->broken;
}

/*
 * A catalog in a cluster whose connection failed with an I/O error: after an
 * outage longer than libcephsqlite's lock renewal timeout (30 s, which Ceph
 * 16.2 does not let us raise) its lock on the database expired, and it fails
 * every later call.  The store's fence still holds the store, so nobody else
 * wrote the catalog: a new connection takes the lock again and SQLite
 * recovers the WAL as at any open.  A transaction in flight was rolled back
 * and its caller told; the checkpoint that failed is redone by the next.
 */
int
catalog_reconnect(struct catalog *c, char *err, size_t errlen)
{
	int rc;

	if (!c->in_cluster)
		return -ENOTSUP;
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(c->st[i]);
		c->st[i] = NULL;
	}
	sqlite3_close_v2(c->db);
	c->db = NULL;
	rc = sqlite3_open_v2(c->uri, &c->db, c->flags | SQLITE_OPEN_URI, NULL);
	if (rc != SQLITE_OK) {
		rc = c->db ? catalog_fail(c, rc) : -ENOMEM;
		snprintf(err, errlen, "cannot open catalog '%s' again: %s", c->uri,
		    c->db ? c->errmsg : "out of memory");
		return rc;
	}
	sqlite3_busy_timeout(c->db, 5000);
	if ((rc = catalog_exec(c, "PRAGMA locking_mode = EXCLUSIVE")) < 0 ||
	    (rc = catalog_exec(c, "PRAGMA temp_store = MEMORY")) < 0 ||
	    (rc = catalog_session(c, 0)) < 0 ||
	    (rc = catalog_prepare_all(c)) < 0) {
		snprintf(err, errlen, "catalog '%s' is not usable again: %s", c->uri, c->errmsg);
		return rc;
	}
	c->broken = 0;
	return 0;
}

int
catalog_version(const struct catalog *c)
{
	return c->version;
}

int
catalog_integrity(struct catalog *c, char *out, size_t outlen)
{
	sqlite3_stmt *st;
	size_t used = 0;
	int rc, bad = 0;

	out[0] = '\0';
	if ((rc = catalog_prepare(c, "PRAGMA integrity_check(20)", &st)) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(st, 0);
		if (!line || strcmp(line, "ok") == 0)
			continue;
		bad = 1;
		if (used + 3 < outlen)
			used += (size_t)snprintf(out + used, outlen - used, "%s%s", used ? "; " : "", line);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return catalog_fail(c, rc);
	return bad;
}

void
catalog_close(struct catalog *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

int
catalog_uuid(struct catalog *c, uint8_t uuid[16])
{
	char hex[64];
	int rc;

	if ((rc = catalog_meta_get(c, "store_uuid", hex, sizeof(hex))) < 0)
		return rc;
	if (strlen(hex) != 32)
		goto bad;
	for (int i = 0; i < 16; i++) {
		unsigned b;
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			goto bad;
		uuid[i] = (uint8_t)b;
	}
	return 0;
bad:
	snprintf(c->errmsg, sizeof(c->errmsg), "store_uuid '%s' is malformed", hex);
	return -EUCLEAN;
}

/* Decimal digits only, no overflow: 0 or -EINVAL. */
static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return *end || errno ? -EINVAL : 0;
}

int
catalog_checkpoint_pos(struct catalog *c, uint64_t *laddr, uint64_t *seq)
{
	char a[32], s[32];
	int rc;

	if ((rc = catalog_meta_get(c, "checkpoint_laddr", a, sizeof(a))) < 0 ||
	    (rc = catalog_meta_get(c, "checkpoint_seq", s, sizeof(s))) < 0)
		return rc;
	if (parse_u64(a, laddr) < 0 || parse_u64(s, seq) < 0)
		return catalog_bad_value(c, "checkpoint position '%s' / '%s' is not a number", a, s);
	return 0;
}

/*
 * Run a query and hand each row to row(), which decodes it and calls the
 * caller's function; row()'s non-zero return stops and is returned.
 */
int
catalog_each_row(struct catalog *c, const char *sql,
    int (*row)(struct catalog *c, sqlite3_stmt *st, const struct each_row *e),
    const struct each_row *ctx)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	if ((rc = catalog_prepare(c, sql, &st)) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = row(c, st, ctx)) != 0)
			break;
	if (r == 0)
		r = rc == SQLITE_DONE ? 0 : catalog_fail(c, rc);
	sqlite3_finalize(st);
	return r;
}

static int
template_row(struct catalog *c, sqlite3_stmt *st, const struct each_row *e)
{
	struct catalog_template t;

	t.id = sqlite3_column_int64(st, 0);
	column_str(st, 1, t.name, sizeof(t.name));
	t.size = (uint64_t)sqlite3_column_int64(st, 2);
	t.mtime_ns = sqlite3_column_int64(st, 3);
	t.ino = (uint64_t)sqlite3_column_int64(st, 4);
	column_str(st, 5, t.fingerprint, sizeof(t.fingerprint));
	t.btime_ns = sqlite3_column_int64(st, 6);
	column_str(st, 7, t.handle, sizeof(t.handle));
	if (!id_ok(t.id) || !name_ok(t.name, 0) || t.size > DISK_SIZE_MAX)
		return catalog_bad_value(c, "template row %lld ('%.64s', %llu bytes) is out of range",
		    (long long)t.id, t.name, (unsigned long long)t.size);
	return e->fn.tmpl(&t, e->arg);
}

int
catalog_each_template(struct catalog *c,
    int (*fn)(const struct catalog_template *t, void *arg), void *arg)
{
	struct each_row e = { .fn.tmpl = fn, .arg = arg };

	/* a version 2 catalog open read-only has neither column: not known */
	return catalog_each_row(c, c->version == 2 ?
	    "SELECT id, name, size, mtime_ns, ino, fingerprint, 0, '' FROM templates ORDER BY id" :
	    "SELECT id, name, size, mtime_ns, ino, fingerprint, btime_ns, handle "
	    "FROM templates ORDER BY id", template_row, &e);
}

int
catalog_template_get(struct catalog *c, struct catalog_template *t)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "INSERT INTO templates (name, size, mtime_ns, ino, fingerprint, "
	    "btime_ns, handle) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
	    "ON CONFLICT DO UPDATE SET name = name RETURNING id", &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)t->size);
	sqlite3_bind_int64(st, 3, t->mtime_ns);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)t->ino);
	sqlite3_bind_text(st, 5, t->fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, t->btime_ns);
	sqlite3_bind_text(st, 7, t->handle, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		t->id = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : catalog_fail(c, rc);
	} else {
		rc = catalog_fail(c, rc);
	}
	sqlite3_finalize(st);
	return rc;
}

int
catalog_template_set_identity(struct catalog *c, const struct catalog_template *t)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = catalog_prepare(c, "UPDATE templates SET btime_ns = ?2, handle = ?3 "
	    "WHERE id = ?1 AND btime_ns = 0 AND handle = ''", &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int64(st, 2, t->btime_ns);
	sqlite3_bind_text(st, 3, t->handle, -1, SQLITE_STATIC);
	return catalog_run_once(c, st);
}

int
catalog_template_sums(struct catalog *c, int64_t id, uint32_t **sums, uint64_t *n)
{
	sqlite3_stmt *st;
	int rc;

	*sums = NULL;
	*n = 0;
	if (c->version == 2)
		return 0;
	if ((rc = catalog_prepare(c, "SELECT content_sums FROM templates WHERE id = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_BLOB) {
		const unsigned char *b = sqlite3_column_blob(st, 0);
		uint64_t count = (uint64_t)sqlite3_column_bytes(st, 0) / 4;
		if (count > 0 && !(*sums = malloc(count * sizeof(**sums)))) {
			sqlite3_finalize(st);
			return -ENOMEM;
		}
		for (uint64_t i = 0; i < count; i++)
			(*sums)[i] = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
			    (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
		*n = count;
		rc = 0;
	} else {
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : catalog_fail(c, rc);
	}
	sqlite3_finalize(st);
	return rc;
}

int
catalog_template_set_sums(struct catalog *c, int64_t id, const uint32_t *sums, uint64_t n)
{
	unsigned char *b = malloc(n * 4 + 1);
	sqlite3_stmt *st;
	int rc;

	if (!b)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++)
		for (int k = 0; k < 4; k++)
			b[4 * i + (uint64_t)k] = (unsigned char)(sums[i] >> (8 * k));
	/* never over sums already recorded: they, not the file, say what the version is */
	if ((rc = catalog_prepare(c, "UPDATE templates SET content_sums = ?2 "
	    "WHERE id = ?1 AND content_sums IS NULL", &st)) == 0) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_blob64(st, 2, b, n * 4, SQLITE_STATIC);
		rc = catalog_run_once(c, st);
	}
	free(b);
	return rc;
}
