/*
 * catalog: the store's SQLite database (schema in schema/hcowfs.sql).
 *
 * Holds disks and template versions as of the last checkpoint (the extent
 * map lives in the index file, index.h; a schema 3 catalog still holds it in
 * rows, read once to move them).  Not on the I/O path: the store reads it once at open and
 * writes it in batches (checkpoints) and for rare namespace changes.
 *
 * Not thread-safe: the store serializes all calls (catalog lock).
 * Error convention: 0 or a negative errno; SQLite's message for the last
 * failure is in catalog_error().  Every write outside a checkpoint is its own
 * durable transaction.
 */
#ifndef HCOWFS_CATALOG_H
#define HCOWFS_CATALOG_H

#include <stdint.h>

/*
 * 2 (before template identity) is migrated to 3 at open; 3 (extents in rows)
 * is opened as it is, and becomes 4 when the store has moved its rows into
 * the index (catalog_extents_retire).
 */
#define CATALOG_SCHEMA_VERSION	6
#define CATALOG_STR_(x)		#x
#define CATALOG_VERSION_STR	CATALOG_STR_(6)	/* the same, as text */
_Static_assert(CATALOG_SCHEMA_VERSION == 6, "CATALOG_VERSION_STR follows CATALOG_SCHEMA_VERSION");
#define CATALOG_LADDR_ZERO	(-1)	/* extents.laddr of a zero extent */

struct catalog;

struct catalog_template {
	int64_t	 id;
	char	 name[256];
	uint64_t size;
	int64_t	 mtime_ns;
	uint64_t ino;
	char	 fingerprint[80];
	int64_t	 btime_ns;		/* birth time; 0 = not known */
	char	 handle[272];		/* file handle, "type:hex"; "" = not known */
};

struct catalog_disk {
	int64_t	 id;
	char	 name[256];		/* "" when unlinked, and for snapshots */
	int64_t	 snap_of;		/* a snapshot: the disk it is of; 0 for a disk */
	char	 snap_name[256];	/* a snapshot's name ("" when deleted) */
	int64_t	 family;		/* the disk whose records it shares (0: its own id) */
	int64_t	 origin;		/* cloned from this disk or snapshot (0: a template) */
	int64_t	 template_id;		/* 0: none (a file created in the mount) */
	uint64_t size;
	uint32_t mode, uid, gid;
	int64_t	 mtime_ns, ctime_ns;
	int64_t	 created;
	char	 create_token[64];
};

struct catalog_dir {
	int64_t	 id;
	char	 path[256];		/* "images/100" */
	uint32_t mode, uid, gid;
	int64_t	 mtime_ns, ctime_ns;
};

#define CATALOG_CREATE		1	/* create a missing database */
#define CATALOG_READONLY	2	/* for checking: never write */

/*
 * Open DATADIR/catalog.db, or a catalog in a cluster (a path that
 * catalog_cluster_path made).  With CATALOG_CREATE, a missing database is
 * created with the schema and the given uuid and checkpoint; without, it
 * must exist.
 */
int catalog_open(const char *path, int how, const uint8_t uuid[16],
    uint64_t first_laddr, struct catalog **out, char *err, size_t errlen);
void catalog_close(struct catalog *c);
const char *catalog_error(struct catalog *c);

/*
 * A catalog in a cluster (catalog_ceph.c): SQLite through libcephsqlite,
 * Ceph's SQLite VFS, which keeps the database striped over RADOS objects
 * (CATALOG_CLUSTER_OBJECT is the first, which carries its lock).
 * catalog_cluster_init registers the VFS once per process, on cluster c's
 * configuration (its ceph.conf and client name), and gives the address of
 * the one RADOS client libcephsqlite writes with in this process (the
 * store's fence must record it before it writes: fence_add_addr);
 * catalog_cluster_path writes the path catalog_open takes.
 */
#define CATALOG_CLUSTER_NAME	"catalog.db"
#define CATALOG_CLUSTER_OBJECT	"catalog.db.0000000000000000"
#define CATALOG_CLUSTER_LOCK	"striper.lock"
struct cluster;
struct rados_spec;
int catalog_cluster_init(struct cluster *cl, char *addr, size_t addrlen, char *err, size_t errlen);
void catalog_cluster_path(const struct rados_spec *sp, char *out, size_t len);
int catalog_in_cluster(const char *path);
/*
 * A catalog in a cluster that failed with an I/O error (its lock expired
 * while the cluster was away) is broken until catalog_reconnect() opens it
 * again; the caller holds what serializes catalog calls.  -ENOTSUP locally.
 */
int catalog_broken(const struct catalog *c);
int catalog_reconnect(struct catalog *c, char *err, size_t errlen);

/* SQLite's integrity check: 0 if sound, 1 with what is wrong in out, or -errno. */
int catalog_integrity(struct catalog *c, char *out, size_t outlen);

/* The meta table's key/value facts: -EUCLEAN if key is absent. */
int catalog_meta_get(struct catalog *c, const char *key, char *buf, size_t len);
int catalog_meta_set(struct catalog *c, const char *key, const char *value);

int catalog_uuid(struct catalog *c, uint8_t uuid[16]);
/*
 * The schema version of the open catalog (2, 4 and 5 only read-only; 3 still
 * holds extent rows; 5 has the snapshot columns, 6 directories, both added
 * at a writable open).
 */
int catalog_version(const struct catalog *c);
int catalog_checkpoint_pos(struct catalog *c, uint64_t *laddr, uint64_t *seq);

/* Iterate rows; the callback's non-zero return stops and is returned. */
int catalog_each_template(struct catalog *c,
    int (*fn)(const struct catalog_template *t, void *arg), void *arg);
int catalog_each_disk(struct catalog *c,
    int (*fn)(const struct catalog_disk *d, void *arg), void *arg);
/* Extents of all disks, ordered by disk then offset; laddr < 0 = zeros. */
int catalog_each_extent(struct catalog *c,
    int (*fn)(int64_t disk_id, uint64_t loff, uint64_t len, int64_t laddr, void *arg), void *arg);

/* The id of the template row matching t exactly, added if new. */
int catalog_template_get(struct catalog *c, struct catalog_template *t);

/*
 * Fill in a template row's birth time and handle where they were not known
 * (a row from schema version 2): once, from the file that matched the rest.
 */
int catalog_template_set_identity(struct catalog *c, const struct catalog_template *t);
/* The content sums of template id (n 0 and *sums NULL while not recorded); free(*sums). */
int catalog_template_sums(struct catalog *c, int64_t id, uint32_t **sums, uint64_t *n);
/* Record template id's content sums (written once, after the first full read). */
int catalog_template_set_sums(struct catalog *c, int64_t id, const uint32_t *sums, uint64_t n);

/*
 * Add a disk (or snapshot): with d->id 0 sets d->id; else with that id,
 * reserved before.  -EEXIST if the name is taken.
 */
int catalog_disk_add(struct catalog *c, struct catalog_disk *d);
/*
 * Take the next disk id for good without a row (a clone names its id in the
 * log before its row exists: the id is never given to another disk).
 */
int catalog_disk_reserve_id(struct catalog *c, int64_t *id);
/* A snapshot loses its name (deleted; its row goes at the purge). */
int catalog_snapshot_unname(struct catalog *c, int64_t id);
/* Rename disk id (name NULL: unlink it); victim > 0 loses its name in the same transaction. */
int catalog_disk_rename(struct catalog *c, int64_t id, const char *name, int64_t victim);
int catalog_disk_setattr(struct catalog *c, int64_t id, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t ctime_ns);
int catalog_disk_purge(struct catalog *c, int64_t id);
/*
 * A disk with nothing of its own (size 0, no extents) takes a template and
 * a family, as a copy into it shares their bytes (template_id 0: none).
 */
int catalog_disk_adopt(struct catalog *c, int64_t id, int64_t template_id, int64_t family,
    int64_t origin);

/* Directories (catalog_dirs.c).  Rows by path; none on a catalog of schema 5 or older. */
int catalog_each_dir(struct catalog *c, int (*fn)(const struct catalog_dir *d, void *arg),
    void *arg);
/* Add a directory: sets d->id.  -EEXIST if the path is taken. */
int catalog_dir_add(struct catalog *c, struct catalog_dir *d);
int catalog_dir_remove(struct catalog *c, int64_t id);
int catalog_dir_setattr(struct catalog *c, int64_t id, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t mtime_ns, int64_t ctime_ns);
/*
 * Rename directory from to to in one transaction: its row and every path
 * below it, disks' names included.  victim > 0: an empty directory at to,
 * removed in the same transaction.
 */
int catalog_dir_rename(struct catalog *c, const char *from, const char *to, int64_t victim);

/*
 * Checkpoint transaction: begin, disk updates (and, once, the rows' retirement),
 * then commit with the new checkpoint position (or rollback).
 */
int catalog_begin(struct catalog *c);
int catalog_disk_update(struct catalog *c, int64_t id, uint64_t size, int64_t mtime_ns);
/*
 * In the checkpoint transaction: the extent rows are in the index now
 * (committed before): delete them and make the catalog schema 4, so that no
 * older build reads a catalog without its extents.
 */
int catalog_extents_retire(struct catalog *c);
int catalog_commit(struct catalog *c, uint64_t laddr, uint64_t seq);
void catalog_rollback(struct catalog *c);

#endif
