/*
 * catalog_extents: a schema 3 catalog's extent rows (read once, to move
 * them into the index, then deleted: catalog_extents_retire) and the
 * checkpoint transaction (see catalog.h for the contract and catalog.c for
 * the connection).
 *
 * Invariants:
 * - The disks' sizes and the checkpoint position (meta checkpoint_laddr,
 *   checkpoint_seq) change in one transaction (catalog_begin ..
 *   catalog_commit); so does the deletion of the rows with the schema's
 *   version.
 * - Every extent row carries its own checksum (extent_row_crc), checked as
 *   it is read (catalog_each_extent): a row whose values changed is an
 *   error, not a mapping.
 *
 * A checkpoint transaction, and the function making each transition:
 *
 *   IDLE  --catalog_begin (BEGIN IMMEDIATE)--------------------> OPEN
 *   OPEN  --catalog_disk_update, catalog_extents_retire----------> OPEN
 *   OPEN  --catalog_commit (position, COMMIT)--------------------> IDLE (durable)
 *   OPEN  --catalog_rollback------------------------------------> IDLE (unchanged)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "catalog_int.h"
#include "crc32c.h"
#include "names.h"

/*
 * An extent row's own checksum: SQLite checks its pages, not the values in
 * them, and a row whose numbers changed would serve the wrong bytes.
 */
static int64_t
extent_row_crc(int64_t id, uint64_t loff, uint64_t len, int64_t laddr)
{
	uint64_t v[4] = { (uint64_t)id, loff, len, (uint64_t)laddr };

	return (int64_t)crc32c(0, v, sizeof(v));
}

static int
extent_row(struct catalog *c, sqlite3_stmt *st, const struct each_row *e)
{
	int64_t id = sqlite3_column_int64(st, 0), laddr = sqlite3_column_int64(st, 3);
	uint64_t loff = (uint64_t)sqlite3_column_int64(st, 1);
	uint64_t len = (uint64_t)sqlite3_column_int64(st, 2);

	if (sqlite3_column_int64(st, 4) != extent_row_crc(id, loff, len, laddr)) {
		snprintf(c->errmsg, sizeof(c->errmsg), "the extent row of disk %lld at offset "
		    "%llu fails its checksum: its values were changed", (long long)id,
		    (unsigned long long)loff);
		return -EBADMSG;
	}
	/*
	 * A checksum can be recomputed: the values must make sense as well.
	 * Where an laddr points is the log's to verify, at every read.
	 */
	if (id <= 0 || id > CATALOG_ID_MAX || len == 0 || loff > DISK_SIZE_MAX ||
	    len > DISK_SIZE_MAX - loff || laddr < CATALOG_LADDR_ZERO)
		return catalog_bad_value(c, "the extent row of disk %lld at offset %llu (%llu bytes "
		    "at log address %lld) is out of range", (long long)id, (unsigned long long)loff,
		    (unsigned long long)len, (long long)laddr);
	return e->fn.extent(id, loff, len, laddr, e->arg);
}

int
catalog_each_extent(struct catalog *c,
    int (*fn)(int64_t disk_id, uint64_t loff, uint64_t len, int64_t laddr, void *arg), void *arg)
{
	struct each_row e = { .fn.extent = fn, .arg = arg };

	return catalog_each_row(c, "SELECT disk_id, loff, len, laddr, crc FROM extents "
	    "ORDER BY disk_id, loff", extent_row, &e);
}

int
catalog_begin(struct catalog *c)
{
	c->errmsg[0] = '\0';	/* catalog_error() then speaks of this transaction only */
	return catalog_exec(c, "BEGIN IMMEDIATE");
}

int
catalog_disk_update(struct catalog *c, int64_t id, uint64_t size, int64_t mtime_ns)
{
	sqlite3_stmt *st = c->st[ST_DISK_UPDATE];

	if (!st)
		return -EIO;	/* a reconnect that failed (catalog_reconnect) */
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 3, mtime_ns);
	return catalog_step_done(c, st);
}

int
catalog_commit(struct catalog *c, uint64_t laddr, uint64_t seq)
{
	char v[32];
	int rc;

	snprintf(v, sizeof(v), "%" PRIu64, laddr);
	if ((rc = catalog_meta_set(c, "checkpoint_laddr", v)) < 0)
		return rc;
	snprintf(v, sizeof(v), "%" PRIu64, seq);
	if ((rc = catalog_meta_set(c, "checkpoint_seq", v)) < 0)
		return rc;
	if ((rc = catalog_exec(c, "COMMIT")) < 0)
		return rc;
	/*
	 * Fold the WAL into the database and empty it: a worker that replaces a
	 * dead one must recover the WAL by reading all of it, so a WAL left to
	 * grow makes every takeover slower (88 MB and 30 ms after a minute of
	 * 4k random writes before this).  Failing here loses nothing.  In a
	 * cluster, RESTART: the next frames start the WAL again and recovery
	 * stops at the first old one, as after TRUNCATE, but the WAL's RADOS
	 * objects are not deleted at every checkpoint to be made again (31 of
	 * the 48 operations a checkpoint cost, bench/bench-ceph).
	 */
	sqlite3_exec(c->db, c->in_cluster ? "PRAGMA wal_checkpoint(RESTART)" :
	    "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	return 0;
}

void
catalog_rollback(struct catalog *c)
{
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

int
catalog_extents_retire(struct catalog *c)
{
	int rc;

	/* c->version stays: the transaction may still roll back, and it is read only at open */
	if ((rc = catalog_exec(c, "DELETE FROM extents")) < 0)
		return rc;
	return catalog_exec(c, "UPDATE meta SET value = '" CATALOG_VERSION_STR "' WHERE key = "
	    "'schema_version'");
}
