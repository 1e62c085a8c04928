-- hcowfs catalog, schema version 6 (log format 4: extents name records).
-- Version 2 had no btime_ns, handle, content_sums in templates; a version 2
-- catalog is migrated at its first writable open (fs/store/catalog.c).
-- Version 3 kept the extent map in the extents table; from version 4 it is in
-- the index file (DATADIR/index, fs/store/index.h), and the table stays empty:
-- a version 3 store's first checkpoint moves the rows there and deletes them.
-- Version 5 added the snapshot and clone columns of disks (snap_of,
-- snap_name, family, origin), added to an older catalog at its first
-- writable open.
-- Version 6 added directories (dirs) and disks of no template (template_id
-- NULL, a file created in the mount); a version 5 catalog's disks table is
-- rebuilt at its first writable open, as SQLite cannot drop a NOT NULL.
--
-- The catalog lives in DATADIR/catalog.db.  It holds the disks and the
-- template versions they were cloned from as of the last checkpoint.  Writes
-- after the checkpoint are only in the log; opening the store replays them on
-- top of this and of the index.  The worker writes this file; nothing
-- else should.

-- key/value facts about the store: schema_version, store_uuid (hex),
-- checkpoint_laddr (log address replay starts at), checkpoint_seq (the
-- sequence number the record there must carry), created (unix time).
CREATE TABLE meta (
	key	TEXT PRIMARY KEY,
	value	TEXT NOT NULL
) WITHOUT ROWID;

-- One row per version of a template file that disks were cloned from.  A disk
-- refuses I/O when its template file no longer matches this row.
CREATE TABLE templates (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	name		TEXT NOT NULL,		-- file name in the template dir
	size		INTEGER NOT NULL,	-- bytes
	mtime_ns	INTEGER NOT NULL,
	ino		INTEGER NOT NULL,
	fingerprint	TEXT NOT NULL,		-- crc32c samples, see fs/store/template.c
	btime_ns	INTEGER NOT NULL DEFAULT 0,	-- birth time (statx); 0 = not known
	handle		TEXT NOT NULL DEFAULT '',	-- name_to_handle_at, "type:hex"; '' = not known
	content_sums	BLOB,			-- crc32c of each 1 MiB, little-endian
						-- uint32 each; NULL until the first full read
	UNIQUE (name, size, mtime_ns, ino, fingerprint, btime_ns, handle)
);

-- One row per directory of the mount (the root has none).  A disk's name and a
-- directory's path are names joined by '/' ("images/100/vm-100-disk-0.raw");
-- the directory a name is in exists.  Renaming a directory rewrites the
-- paths below it in one transaction.  Ids are never reused: a directory's
-- inode number is made from its id (fs/worker.h).
CREATE TABLE dirs (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	path		TEXT NOT NULL UNIQUE,
	mode		INTEGER NOT NULL,	-- permission bits
	uid		INTEGER NOT NULL,
	gid		INTEGER NOT NULL,
	mtime_ns	INTEGER NOT NULL,
	ctime_ns	INTEGER NOT NULL
);

-- One row per disk.  Ids are never reused (AUTOINCREMENT): they are the
-- inode numbers the kernel knows the disks by, and log records name them.
-- An unlinked disk that may still be open keeps its row with name NULL until
-- it is purged.
CREATE TABLE disks (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	name		TEXT UNIQUE,
	template_id	INTEGER REFERENCES templates(id),	-- NULL: no template (reads zeros)
	size		INTEGER NOT NULL,	-- as of the checkpoint
	mode		INTEGER NOT NULL,	-- permission bits
	uid		INTEGER NOT NULL,
	gid		INTEGER NOT NULL,
	mtime_ns	INTEGER NOT NULL,
	ctime_ns	INTEGER NOT NULL,
	created		INTEGER NOT NULL,	-- unix time
	create_token	TEXT NOT NULL,		-- makes a retried create idempotent
	-- A snapshot is a row with snap_of = the disk it is of, its name in
	-- snap_name and name NULL; it is read-only.  A deleted snapshot still
	-- open has both names NULL until it is purged, like an unlinked disk.
	snap_of		INTEGER NOT NULL DEFAULT 0,
	snap_name	TEXT,
	-- Snapshots and clones share the log records of the disk first made
	-- from the template: family is its id (0: the disk's own id).  origin
	-- is the disk or snapshot this one was cloned from (0: none).
	family		INTEGER NOT NULL DEFAULT 0,
	origin		INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX disks_snapshots ON disks (snap_of, snap_name) WHERE snap_name IS NOT NULL;

-- Schema 3's checkpointed extent map (empty from schema 4, kept so that a
-- version 3 store can be read and moved): disk bytes [loff, loff+len) live in the log
-- record at log address laddr, as its data bytes from loff - record.offset
-- on (or read as zeros when laddr = -1).  Rows of one disk never
-- overlap.  Ranges without a row read from the template.
CREATE TABLE extents (
	disk_id	INTEGER NOT NULL REFERENCES disks(id) ON DELETE CASCADE,
	loff	INTEGER NOT NULL,
	len	INTEGER NOT NULL,
	laddr	INTEGER NOT NULL,
	crc	INTEGER NOT NULL,	-- crc32c of the four values above (fs/store/catalog.c)
	PRIMARY KEY (disk_id, loff)
) WITHOUT ROWID;
