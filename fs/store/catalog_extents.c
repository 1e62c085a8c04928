/*
 * catalog_extents: the extent rows of the catalog and the checkpoint
 * transaction that rewrites them (see catalog.h for the contract and
 * catalog.c for the connection).
 *
 * Invariants:
 * - The extent rows and the checkpoint position (meta checkpoint_laddr,
 *   checkpoint_seq) change in one transaction (catalog_begin ..
 *   catalog_commit): after any crash the rows are exactly those of the
 *   position the meta table names.
 * - Every extent row carries its own checksum (extent_row_crc), checked as
 *   it is read (catalog_each_extent): a row whose values changed is an
 *   error, not a mapping.
 *
 * A checkpoint transaction, and the function making each transition:
 *
 *   IDLE  --catalog_begin (BEGIN IMMEDIATE)--------------------> OPEN
 *   OPEN  --catalog_range_replace, catalog_disk_update----------> OPEN
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

/* Fetch one (loff, len, laddr) row; 1 if found, 0 if none, <0 on error. */
static int
catalog_row(struct catalog *c, sqlite3_stmt *st, int64_t row[3])
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		for (int i = 0; i < 3; i++)
			row[i] = sqlite3_column_int64(st, i);
		sqlite3_reset(st);
		return 1;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : catalog_fail(c, rc);
}

/* Insert (ST_INSERT) or rewrite (ST_SET_ROW) the row at loff of disk id; 0 or -errno. */
static int
catalog_put_row(struct catalog *c, int which, int64_t id, uint64_t loff, uint64_t len, int64_t laddr)
{
	sqlite3_stmt *st = c->st[which];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)loff);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)len);
	sqlite3_bind_int64(st, 4, laddr);
	sqlite3_bind_int64(st, 5, extent_row_crc(id, loff, len, laddr));
	return catalog_step_done(c, st);
}

static int
catalog_insert(struct catalog *c, int64_t id, uint64_t loff, uint64_t len, int64_t laddr)
{
	return catalog_put_row(c, ST_INSERT, id, loff, len, laddr);
}

static int
catalog_del_row(struct catalog *c, int64_t id, uint64_t loff)
{
	sqlite3_bind_int64(c->st[ST_DEL_ROW], 1, id);
	sqlite3_bind_int64(c->st[ST_DEL_ROW], 2, (sqlite3_int64)loff);
	return catalog_step_done(c, c->st[ST_DEL_ROW]);
}

/*
 * The rows are read first and only the differences written: a row already
 * equal to its extent costs nothing, one at the same offset is updated in
 * place, the rest are deleted or inserted by key.  A checkpoint after random
 * 4 KiB writes mostly inserts new rows and updates rewritten ones, one
 * statement each, where deleting the whole range first took two more.
 */
int
catalog_range_replace(struct catalog *c, int64_t id, uint64_t start, uint64_t end,
    const uint64_t (*ext)[3], size_t n)
{
	sqlite3_stmt *q = c->st[ST_RANGE_ROWS];
	int64_t row[3], tail[3] = { 0, 0, 0 };
	size_t nrows = 0, i, j;
	int rc, have_tail = 0;

	/* a row that starts before the range and reaches into it keeps its head */
	sqlite3_bind_int64(c->st[ST_PRED], 1, id);
	sqlite3_bind_int64(c->st[ST_PRED], 2, (sqlite3_int64)start);
	if ((rc = catalog_row(c, c->st[ST_PRED], row)) < 0)
		return rc;
	if (rc == 1 && (uint64_t)(row[0] + row[1]) > start) {
		uint64_t rend = (uint64_t)(row[0] + row[1]);
		if (rend > end) {
			tail[0] = (int64_t)end;
			tail[1] = (int64_t)(rend - end);
			tail[2] = row[2];	/* an extent's tail lives in the same record */
			have_tail = 1;
		}
		sqlite3_bind_int64(c->st[ST_SET_LEN], 1, id);
		sqlite3_bind_int64(c->st[ST_SET_LEN], 2, row[0]);
		sqlite3_bind_int64(c->st[ST_SET_LEN], 3, (sqlite3_int64)(start - (uint64_t)row[0]));
		sqlite3_bind_int64(c->st[ST_SET_LEN], 4, extent_row_crc(id, (uint64_t)row[0],
		    start - (uint64_t)row[0], row[2]));
		if ((rc = catalog_step_done(c, c->st[ST_SET_LEN])) < 0)
			return rc;
	}
	/* the rows starting inside, read whole before any of them changes */
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)start);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)end);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (nrows == c->rows_cap) {
			size_t cap = c->rows_cap ? 2 * c->rows_cap : 256;
			int64_t (*v)[3] = realloc(c->rows, cap * sizeof(*v));
			if (!v) {
				sqlite3_reset(q);
				return -ENOMEM;
			}
			c->rows = v;
			c->rows_cap = cap;
		}
		for (int k = 0; k < 3; k++)
			c->rows[nrows][k] = sqlite3_column_int64(q, k);
		nrows++;
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return catalog_fail(c, rc);
	/* the last of them may reach past the range: keep its tail */
	if (nrows > 0 && (uint64_t)(c->rows[nrows - 1][0] + c->rows[nrows - 1][1]) > end) {
		const int64_t *r = c->rows[nrows - 1];
		tail[0] = (int64_t)end;
		tail[1] = r[0] + r[1] - (int64_t)end;
		tail[2] = r[2];
		have_tail = 1;
	}
	/* both lists are sorted by offset: merge them */
	for (i = 0, j = 0; rc >= 0 && (i < nrows || j < n); ) {
		int64_t laddr = j < n ? (ext[j][2] == UINT64_MAX ? CATALOG_LADDR_ZERO : (int64_t)ext[j][2]) : 0;
		if (i < nrows && j < n && (uint64_t)c->rows[i][0] == ext[j][0]) {
			if ((uint64_t)c->rows[i][1] != ext[j][1] || c->rows[i][2] != laddr)
				rc = catalog_put_row(c, ST_SET_ROW, id, ext[j][0], ext[j][1], laddr);
			i++;
			j++;
		} else if (i < nrows && (j == n || (uint64_t)c->rows[i][0] < ext[j][0])) {
			rc = catalog_del_row(c, id, (uint64_t)c->rows[i++][0]);
		} else {
			rc = catalog_insert(c, id, ext[j][0], ext[j][1], laddr);
			j++;
		}
	}
	if (rc < 0)
		return rc;
	if (have_tail)
		return catalog_insert(c, id, (uint64_t)tail[0], (uint64_t)tail[1], tail[2]);
	return 0;
}

int
catalog_disk_update(struct catalog *c, int64_t id, uint64_t size, int64_t mtime_ns)
{
	sqlite3_stmt *st = c->st[ST_DISK_UPDATE];

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
	 * 4k random writes before this).  Failing here loses nothing.
	 */
	sqlite3_exec(c->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	return 0;
}

void
catalog_rollback(struct catalog *c)
{
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}
