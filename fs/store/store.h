/*
 * store: the storage engine of one data dir.  Everything the worker serves
 * goes through here; it knows nothing of FUSE.
 *
 * A store is the catalog (SQLite), the write log and the templates it reads
 * through.  store_open() loads the checkpointed extent maps from the catalog
 * and replays the log after the checkpoint, so a store can be opened after
 * any crash; a background thread writes checkpoints.
 *
 * Disks are named by id (= inode number - 1 for FUSE); ids are never reused.
 * Every mutation of a disk's contents or size is a log record first and a map
 * update second, through the one function replay uses too, so the state
 * after a restart is the state before it.
 *
 * Error convention: functions return 0 (or a byte count) or a negative errno;
 * they never exit.  Where a message helps the user, it goes to err.
 * All functions are thread-safe.
 */
#ifndef HCOWFS_STORE_H
#define HCOWFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "names.h"
#include "sbuf.h"

struct store;
struct cluster;

struct store_opts {
	const char	*datadir;
	const char	*tmpldir;
	uint64_t	 segment_size;		/* 0: default */
	unsigned	 checkpoint_ms;		/* 0: default */
	int		 purge_unlinked;	/* first worker of a mount: nothing is open */
	int		 takeover;		/* replacing a dead worker: see wlog_replay() */
	void		*snap_area;		/* shared memory kept across workers (handoff.c) */
	size_t		 snap_cap;
	int		 create;		/* create the store if the data dir is empty */
	int		 readonly;		/* for checking: change no file (tmpldir may be
						   NULL: the one the last mount used) */
	int		 template_leases;	/* read leases on templates: a template read
						   needs no fstat (one process per store: the
						   worker; see tmpl_lease() in tmplwatch.c) */
	int		 lock_fd;		/* an open of datadir holding its lock (datalock.h)
						   from the process that took it, or 0:
						   store_open takes the lock (fd 0 is never
						   it: a worker's stdin is /dev/null) */
	uint64_t	 space_reserve;		/* bytes of the data dir's file system kept for
						   the cleaner and checkpoints: 0 default (see
						   STORE_RESERVE_*), STORE_RESERVE_NONE none */
	uint64_t	 max_extents;		/* extents of all maps: 0 default */
	uint64_t	 max_disk_size;		/* 0: default */
	struct cluster	*cluster;		/* a Ceph connection (the caller's; outlives the
						   store), for a "rados:" template dir or data
						   dir; else NULL */
	const char	*template_cache;	/* the host's cache of pool templates (tcache.h) */
	uint64_t	 template_cache_size;	/* its cap in bytes; 0: tcache's default */
	struct catalog	*catalog;		/* opened ahead by store_catalog_preopen(), or
						   NULL; store_open() takes it, even on failure */
	/* A store in a cluster (docs/ceph.md): datadir is then this host's cache of it */
	const char	*store_spec;		/* "rados:POOL/STORE", or NULL: a local store */
	int		 store_takeover;	/* fence the host that serves it (-o takeover) */
	const char	*holder;		/* who we are, for the store's lock: "HOST:MOUNTPOINT
						   (supervisor pid N)"; the same for every worker of
						   a mount, so a replacement may fence its predecessor */
	/* The defragmenter (defrag.c): a disk with no guest I/O this long is rewritten in order */
	unsigned	 defrag_idle_ms;	/* 0: HCOWFS_DEFRAG_IDLE_MS or the default;
						   STORE_DEFRAG_OFF: no thread (store_defrag only) */
	uint64_t	 defrag_window;		/* logical bytes read per sweep of the log: 0 default */
};

#define STORE_DEFRAG_IDLE_MS_DEFAULT	5000
#define STORE_DEFRAG_OFF		UINT32_MAX

#define STORE_CHECKPOINT_MS_DEFAULT	10000
#define STORE_SNAPSHOT_MS		500	/* the longest between map snapshots */
#define STORE_CHECKPOINT_LOG_BYTES	(UINT64_C(256) << 20)
/*
 * The default reserve: two segments (what a cleaner pass copies into before
 * it releases anything, with room to roll) plus 64 MiB for the catalog's
 * growth, but at most an eighth of the file system.
 */
#define STORE_RESERVE_CATALOG		(UINT64_C(64) << 20)
#define STORE_RESERVE_MAX_FRACTION	8
#define STORE_RESERVE_NONE		UINT64_MAX
/*
 * 256 Mi extents: the index file takes about 36 bytes each (~9 GiB), in the
 * page cache as used; memory holds only the overlays (docs/design.md)
 */
#define STORE_EXTENTS_MAX_DEFAULT	(UINT64_C(256) << 20)
#define STORE_DISK_SIZE_MAX_DEFAULT	(UINT64_C(16) << 40)	/* 16 TiB */

struct disk_attr {
	uint64_t id;
	char	 name[NAME_MAX_LEN + 1];
	char	 template_name[256];
	uint64_t size;
	uint32_t mode, uid, gid;
	int64_t	 mtime_ns, ctime_ns;
	uint64_t blocks;		/* 512-byte units, see store_getattr() */
	uint64_t log_bytes;		/* bytes of this disk that live in the log */
	uint64_t extents;
	int	 opens;
	const char *problem;		/* NULL if the disk can serve I/O */
	int	 snapshot;		/* a read-only snapshot (name is DISK@SNAP) */
	char	 origin[2 * NAME_MAX_LEN + 2];	/* the disk or snapshot it was copied from
						   ("" if none, or since deleted) */
	unsigned snapshots;		/* snapshots of this disk */
};

int store_open(const struct store_opts *o, struct store **out, char *err, size_t errlen);
/*
 * Open the catalog of an existing store ahead of store_open(), changing
 * nothing (a standby worker, while another serves the store).  NULL if that
 * fails: store_open() then opens it itself and reports why it cannot.
 */
struct catalog *store_catalog_preopen(const char *datadir);
/* Close a catalog opened ahead that store_open() never took (NULL is fine). */
void store_catalog_release(struct catalog *cat);
/* Checkpoint and release everything. */
void store_close(struct store *st);
int store_checkpoint(struct store *st);

/* Namespace.  -ENOENT if no such disk. */
int store_lookup(struct store *st, const char *name, struct disk_attr *a);
int store_getattr(struct store *st, uint64_t id, struct disk_attr *a);
/* The linked disk with the smallest id > after; -ENOENT when none. */
int store_next(struct store *st, uint64_t after, struct disk_attr *a);
/* The same among the disks in directory dir ("" the root). */
int store_next_in(struct store *st, const char *dir, uint64_t after, struct disk_attr *a);

/*
 * Templates as the mount shows them, read-only (tmpldir.c).  A lookup
 * records the file's version: its id, stable while the file is unchanged,
 * names it in the calls after.
 */
struct template_attr {
	uint64_t id;
	char	 name[256];
	uint64_t size;
	int64_t	 mtime_ns;
	uint64_t blocks;
};
int store_template_lookup(struct store *st, const char *name, struct template_attr *a);
int store_template_get(struct store *st, uint64_t id, struct template_attr *a);
ssize_t store_template_read(struct store *st, uint64_t id, void *buf, size_t len, uint64_t off);
/* The i-th template file by name (0 first); -ENOENT past the last. */
int store_template_at(struct store *st, size_t i, char *name, size_t len);

/*
 * copy_file_range inside the mount (share.c): dst's [off_out, +len) gets
 * the source's [off_in, +len), sharing its extents where it can.  Bytes
 * copied (0 at or past the source's end) or -errno.
 */
ssize_t store_copy_range(struct store *st, uint64_t src_id, uint64_t off_in, uint64_t dst_id,
    uint64_t off_out, uint64_t len);
ssize_t store_copy_template(struct store *st, uint64_t tmpl_id, uint64_t off_in, uint64_t dst_id,
    uint64_t off_out, uint64_t len);

/*
 * Directories (dirs.c).  A disk's name is its path: names joined by '/',
 * each in a directory that exists.  The root is id 0, path "", and has no
 * row: these calls see the others.
 */
struct dir_attr {
	uint64_t id;
	char	 path[NAME_MAX_LEN + 1];
	uint32_t mode, uid, gid;
	int64_t	 mtime_ns, ctime_ns;	/* 0 for the root: no stored times */
	unsigned subdirs;		/* directories directly in it */
};
int store_dir_lookup(struct store *st, const char *path, struct dir_attr *a);
/* By id (0: the root, mode 0755, owned by root). */
int store_dir_get(struct store *st, uint64_t id, struct dir_attr *a);
/* The directory with the smallest id > after directly in parent ("" the root); -ENOENT when none. */
int store_dir_next(struct store *st, const char *parent, uint64_t after, struct dir_attr *a);
/* -EEXIST (a disk or directory is there), -ENOENT (no parent), -EINVAL (a bad name). */
int store_mkdir(struct store *st, const char *path, uint32_t mode, uint32_t uid, uint32_t gid,
    struct dir_attr *a);
/* -ENOTEMPTY while anything is in it. */
int store_rmdir(struct store *st, const char *path);
int store_dir_setattr(struct store *st, uint64_t id, int mask, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t mtime_ns);

/*
 * Create disk `name` (a path) as a clone of template `tmpl` (size 0: the
 * template's), or, with tmpl NULL, of no template: it reads zeros.
 * A retry with the same non-empty token of a create that succeeded returns 0.
 */
int store_create(struct store *st, const char *name, const char *tmpl, uint64_t size,
    const char *token, struct disk_attr *a, char *err, size_t errlen);
/*
 * Snapshots and clones (lifecycle.c).  A snapshot is named DISK@SNAP: a
 * read-only disk listed under the mount's .snapshots; it shares the disk's
 * records and index pages, so taking one costs a checkpoint and a record,
 * whatever the map's size.  A retry with the same non-empty token of an
 * operation that succeeded returns 0.  a (if not NULL) gets the new disk's
 * attributes (a snapshot's name: DISK@SNAP).  -errno with a line in err.
 */
int store_snapshot(struct store *st, const char *disk, const char *snap, const char *token,
    struct disk_attr *a, char *err, size_t errlen);
/* A new writable disk `name` from a disk or a snapshot ("DISK@SNAP"). */
int store_clone(struct store *st, const char *from, const char *name, const char *token,
    struct disk_attr *a, char *err, size_t errlen);
/* Disk `disk` becomes as its snapshot `snap` is; -EBUSY while the disk is open. */
int store_rollback(struct store *st, const char *disk, const char *snap, char *err,
    size_t errlen);
/*
 * The snapshots (of disk, or all if NULL) as JSON (an array) or a table,
 * each with the log bytes no other disk or snapshot maps (what deleting it
 * gives back): -ENOENT if there is no such disk, -ENOMEM.
 */
int store_describe_snapshots(struct store *st, const char *disk, struct sbuf *sb, int json);
/* A snapshot's or a disk's attributes by the name users write ("DISK" or "DISK@SNAP"). */
int store_lookup_full(struct store *st, const char *name, struct disk_attr *a);
/* The next snapshot (id > after) of any disk, for .snapshots' listing; a->name is DISK@SNAP. */
int store_next_snapshot(struct store *st, uint64_t after, struct disk_attr *a);
/* The same among the snapshots of the disks in directory dir. */
int store_next_snapshot_in(struct store *st, const char *dir, uint64_t after, struct disk_attr *a);

/*
 * Unlink: the disk disappears from the namespace; its data goes when the
 * last open closes.  "DISK@SNAP" deletes a snapshot, but not while it is
 * open (-EBUSY: a backup may be reading it); a disk that has snapshots is
 * refused with -EBUSY too (delete them first).
 */
int store_unlink(struct store *st, const char *name);
/* flags: 0 or RENAME_NOREPLACE. */
int store_rename(struct store *st, const char *from, const char *to, unsigned flags);

#define STORE_SET_MODE	1
#define STORE_SET_UID	2
#define STORE_SET_GID	4
#define STORE_SET_MTIME	8
/* Change owner, mode or mtime (size: store_resize). */
int store_setattr(struct store *st, uint64_t id, int mask, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t mtime_ns);

int store_open_disk(struct store *st, uint64_t id);
void store_release_disk(struct store *st, uint64_t id);

/*
 * Unlinked disks and the kernel.  An unlinked disk keeps its data while the
 * kernel may hold it open.  The first worker of a mount counts every open
 * and purges at the last release; a replacement did not see its
 * predecessor's opens, so it is given kernel_holds (1 if the kernel may
 * still hold disk id's inode, 0 if it surely does not) and purges an
 * unlinked disk it has not opened itself when the kernel holds none:
 * at once (store_purge_unheld, called once serving; after an unlink, a
 * release) or when the kernel drops the inode (store_forget_disk, FORGET).
 */
void store_set_kernel_probe(struct store *st, int (*kernel_holds)(void *arg, uint64_t id),
    void *arg);
void store_forget_disk(struct store *st, uint64_t id);
void store_purge_unheld(struct store *st);

/* I/O.  read returns bytes read (short at end of disk); write returns bytes written. */
ssize_t store_read(struct store *st, uint64_t id, void *buf, size_t len, uint64_t off);
/* Where a read's bytes came from (the rest were zeros: holes, discarded ranges). */
struct store_read_src {
	uint64_t tmpl_bytes;	/* from the template */
	uint64_t log_bytes;	/* from the log */
};
/* store_read(), adding to *src (zeroed by the caller) where the bytes came from. */
ssize_t store_read_from(struct store *st, uint64_t id, void *buf, size_t len, uint64_t off,
    struct store_read_src *src);
ssize_t store_write(struct store *st, uint64_t id, const void *buf, size_t len, uint64_t off);
/* Zero [off, off+len).  Without keep_size, grows the disk to cover the range. */
int store_zero(struct store *st, uint64_t id, uint64_t off, uint64_t len, int keep_size);
/* Set the disk's size (truncate); with grow_only, only ever grow it (fallocate). */
int store_resize(struct store *st, uint64_t id, uint64_t size, int grow_only);
/* Make every acknowledged write durable. */
int store_sync(struct store *st, uint64_t id);
/* SEEK_DATA / SEEK_HOLE; -ENXIO past the end or when no data follows. */
int store_seek(struct store *st, uint64_t id, uint64_t off, int whence, uint64_t *res);
int store_statfs(struct store *st, struct statvfs *sv);

/*
 * A store in a cluster: hook(arg, +1) when a request starts to wait for the
 * cluster to come back (fence_check), hook(arg, -1) when it stops, so the
 * supervisor does not take the wait for a hang.  Nothing for a local store.
 */
void store_set_cluster_wait_hook(struct store *st, void (*hook)(void *arg, int delta), void *arg);

/* Fault injection: see wlog_set_append_hook(). */
void store_set_append_hook(struct store *st, void (*hook)(void *arg), void *arg);
/* The steps of a copy a copy hook is called after (lifecycle.c: the order of a copy). */
enum copy_step { COPY_LOGGED = 1, COPY_SYNCED, COPY_ROW };
/* Fault injection: hook(arg, step) after each step of a snapshot, clone or rollback. */
void store_set_copy_hook(struct store *st, void (*hook)(void *arg, enum copy_step s), void *arg);
/* The steps of a checkpoint a checkpoint hook is called after (checkpoint.c: 1, 3 and 4). */
enum checkpoint_step { CHECKPOINT_FROZEN = 1, CHECKPOINT_COMMITTED, CHECKPOINT_PUBLISHED };
/* Fault injection: hook(arg, step) after each of those steps of a checkpoint that commits. */
void store_set_checkpoint_hook(struct store *st, void (*hook)(void *arg, enum checkpoint_step s),
    void *arg);

/*
 * Clean the log (cleaner.c): move the live data out of sealed segments at
 * least min_dead_pct % dead and give their space back.  The checkpoint
 * thread calls it when the log holds more than twice the live data; 0 or
 * -errno (-EBUSY while a check runs), with what was done in cs.
 */
struct clean_stats {
	uint64_t segments_released;
	uint64_t bytes_released;
	uint64_t bytes_moved;
	uint64_t moves;			/* extents copied or linked */
	/*
	 * Of those, how many read a record before the previous move's in the
	 * same segment: a seek back on a disk, where a segment no longer in the
	 * page cache is read at random-read speed.
	 */
	uint64_t moves_back;
};
int store_clean(struct store *st, unsigned min_dead_pct, struct clean_stats *cs);

/* Log space: bytes on disk and bytes the disks still use (the rest is the cleaner's). */
void store_log_space(struct store *st, uint64_t *disk_bytes, uint64_t *live_bytes);
uint64_t store_log_released(struct store *st);	/* bytes the cleaner ever gave back */
uint64_t store_log_spare(struct store *st);	/* bytes kept for reuse (wlog_spare_bytes) */

/*
 * Defragment (defrag.c): rewrite, in logical order, the log data of every
 * disk idle (no guest I/O) for idle_ms whose 1 MiB chunks lie scattered in
 * the log, so that a sequential read of it is a sequential read of the log.
 * The store's defrag thread calls it; tests call it directly.  0 or -errno,
 * with what this pass did in ds (added to the totals status shows).
 */
struct defrag_stats {
	uint64_t bytes_rewritten;	/* log bytes appended as rewrites */
	uint64_t chunks;		/* chunks rewritten */
	uint64_t raced;			/* runs a guest write changed meanwhile: not rewritten */
	uint64_t pending;		/* disks that may hold fragmented chunks still (busy, no room,
					   or not looked at since they changed) */
	uint64_t passes;		/* (totals only) passes run */
	uint64_t bytes_read;		/* log bytes asked of the prefetch (the sweeps) */
};
int store_defrag(struct store *st, unsigned idle_ms, struct defrag_stats *ds);
/* The totals since open, for status; pending as the last pass left it. */
void store_defrag_totals(struct store *st, struct defrag_stats *out);
/* Tests only: hook(arg, disk, chunk) after a chunk's bytes are read, before its rewrite. */
void store_set_defrag_hook(struct store *st, void (*hook)(void *arg, uint64_t id, uint64_t off),
    void *arg);

/* Space and memory limits, for status (diskio.c). */
struct store_space {
	uint64_t free_bytes;	/* free on the data dir's file system now */
	uint64_t reserve_bytes;	/* of which guests may not use */
	uint64_t extents;	/* in all disks' maps (an upper bound) */
	uint64_t extents_max;
	uint64_t map_bytes;	/* memory the maps' overlays hold (what changed since the checkpoint) */
	uint64_t disk_size_max;
};
void store_space(struct store *st, struct store_space *out);

/*
 * The checkpoints' health, for status: an operator must see a catalog that
 * has stopped following the log (the log then grows, and the next mount
 * replays all of it).
 */
struct store_cp_health {
	double	 age_s;		/* since the last good checkpoint ended; < 0: none since open */
	double	 last_ms;	/* how long it took */
	unsigned failures;	/* attempts failed since then */
	char	 error[256];	/* the latest failure's message, when failures > 0 */
	uint64_t log_bytes_since; /* log after the catalog's checkpoint: what an open would replay */
	uint64_t index_bytes;	/* the index file's size, as of the last commit (or the open) */
	uint64_t index_generation; /* and its generation */
};
void store_checkpoint_health(struct store *st, struct store_cp_health *out);

/*
 * For status, a store in a cluster (store_cluster.c): which, who serves it
 * (this host, as its lock's holder string says), and whether this host
 * still may: "held" (the lease is fresh), "waiting" (the cluster cannot be
 * reached: I/O waits until it can), "lost" (another host took the store
 * over: every request fails).  -ENOENT for a local store.
 */
struct store_cluster_health {
	char	 store[96];
	char	 holder[256];
	const char *lease;
};
int store_cluster_health(struct store *st, struct store_cluster_health *out);

/*
 * Verify the catalog, the templates, the log and every disk's extents
 * (check.c); a report in plain words goes to out.  The number of problems
 * found (0: sound), or -errno if it could not check.
 */
int store_check(struct store *st, struct sbuf *out);

/*
 * The ranges of disk `name` that do not read from its template (ranges.c),
 * for hcowctl export: from offset `from` on, in order, each passed to
 * fn with no lock held; neighbours of one kind are merged.  The rest of
 * the disk reads from the template, or as zeros past template_size.
 * 0, -ENOENT, or fn's non-zero value (it stops the walk).
 */
struct store_range {
	uint64_t off, len;
	int	 zero;		/* reads as zeros (discarded, or cut by a shrink); else in the log */
};
struct store_ranges_head {
	uint64_t size;			/* the disk's */
	uint64_t template_size;
	uint64_t log_bytes;		/* the disk's bytes in the log, when the walk began */
	char	 template_name[256];
};
int store_ranges(struct store *st, const char *name, uint64_t from, struct store_ranges_head *head,
    int (*fn)(const struct store_range *r, void *arg), void *arg);

/* The disks as JSON (an array) or text (a table), for status and list. */
void store_describe(struct store *st, struct sbuf *sb, int json);
/* One line per template whose disks refuse I/O, saying why; nothing if none. */
void store_problems(struct store *st, struct sbuf *sb);

#endif
