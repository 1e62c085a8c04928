/*
 * store_int: what the engine's own files share (the store's structs and the
 * verbs of its lower modules); nothing outside fs/store/ includes it but the
 * unit tests.  The ladder of modules and the lock order are described at the
 * top of store.c, the checkpoint protocol at the top of checkpoint.c.
 *
 * Each declaration is grouped under the file that defines it, lowest first;
 * a file calls only the groups above its own.
 */
#ifndef HCOWFS_STORE_INT_H
#define HCOWFS_STORE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "catalog.h"
#include "extmap.h"
#include "index.h"
#include "store.h"
#include "wlog.h"

struct defrag;
struct fence;
struct tcache;
struct tcache_file;
struct tmplpool;

#define READ_PIECES	64

struct tmpl {
	struct catalog_template rec;	/* the version disks were cloned from */
	int		 fd;		/* -1 when problem was set at open */
	int		 dirfd;		/* the template dir, to look the name up again */
	uint64_t	 alloc_bytes;	/* space the file takes (st_blocks) */
	/*
	 * "" when the file matches rec.  Set at open, or while serving by
	 * tmpl_check() (then fd stays open: a read may still be using it);
	 * problem[0] is written last, so a reader that sees it set sees the
	 * whole message.
	 */
	char		 problem[600];
	/*
	 * Read lease (tmpl_lease): while leased is set and no lease of this
	 * process broke since lease_gen, nobody can have opened the file for
	 * writing, so a read needs no fstat.  lease_gen is written before
	 * leased (release).
	 */
	_Atomic int	 leased;
	unsigned	 lease_gen;
	int		 local;		/* template_fs_is_local(): leases, fstat see every writer */
	/*
	 * Content sums (template.h), once known: sums_known is set (release)
	 * after sums, nchunks and verified.  verified[i]: chunk i matched its
	 * sum since fd was opened; a read serves no chunk before that.
	 */
	_Atomic int	 sums_known;
	uint32_t	*sums;
	uint64_t	 nchunks;
	_Atomic unsigned char *verified;
	/*
	 * tmpl_reopened() counts in reopens; the verifier sets done_for to
	 * reopens + 1 as it was when its pass began: it has work while they differ.
	 */
	_Atomic unsigned reopens, done_for;
	struct tcache_file *cached;	/* a template in a pool: its cached content (tmplsrc.c) */
};

/*
 * A disk's attributes as every layer keeps them under the same names (the
 * catalog's row, struct disk, the public struct disk_attr): copied by one
 * macro, as the three structs differ in everything else.  A directory's
 * (dirs.c) are the same but the size: DISK_META_COPY_TIMES.
 */
#define DISK_META_COPY_TIMES(to, from) do {	\
	(to)->mode = (from)->mode;		\
	(to)->uid = (from)->uid;		\
	(to)->gid = (from)->gid;		\
	(to)->mtime_ns = (from)->mtime_ns;	\
	(to)->ctime_ns = (from)->ctime_ns;	\
} while (0)
#define DISK_META_COPY(to, from) do {		\
	(to)->size = (from)->size;		\
	DISK_META_COPY_TIMES(to, from);		\
} while (0)

struct disk {
	int64_t		 id;
	char		 name[NAME_MAX_LEN + 1];	/* "" once unlinked, and for snapshots */
	struct tmpl	*tmpl;
	char		 token[64];
	/* lineage (lifecycle.c): fixed at creation, but for a snapshot's deletion */
	int64_t		 snap_of;	/* a snapshot (read-only): the disk it is of; 0 */
	char		 snap_name[NAME_MAX_LEN + 1];	/* a snapshot's name, "" once deleted */
	uint64_t	 family;	/* whose records it may read (logfmt.h): never 0 */
	int64_t		 origin;	/* cloned from (0: made from the template) */

	/* the layers of the map (dmap.c), under lock */
	pthread_rwlock_t lock;
	struct extmap	*map;		/* the overlay: changes since the checkpoint began */
	struct extmap	*frozen;	/* an overlay being (or left to be) committed, or NULL */
	struct index_root root;		/* the committed tree */
	/*
	 * root is the committed tree of this id (0: none): d->id, or after a
	 * REC_CLONE (root_pending) the source's, which the next commit clones
	 * into this disk's own tree before any other edit (checkpoint.c)
	 */
	uint64_t	 root_tree;
	int		 root_pending;
	uint64_t	 clone_src_laddr;	/* the last REC_CLONE that copied this disk's map
						   (a purge waits until a checkpoint covers it) */
	const struct index *ix;		/* the store's index (NULL: no trees, a read-only look
					   at a store from before the index) */
	uint64_t	 log_bytes;	/* bytes the view maps to the log */
	int		 meta_dirty;	/* contents, size or mtime changed since the checkpoint */
	uint64_t	 size;
	int64_t		 mtime_ns, ctime_ns;
	uint32_t	 mode, uid, gid;
	int		 opens;
	/*
	 * The log tail after this disk's newest record (under log_lock, at the
	 * append): a flush of the disk makes the log durable up to here
	 * (store_sync), not up to what other disks appended since.
	 */
	_Atomic uint64_t flush_upto;
	/* the last guest request (io_begin, CLOCK_MONOTONIC_COARSE): idle disks are defragmented */
	_Atomic int64_t	 io_ns;
	/* defrag.c, under its pass lock: a look found nothing to rewrite at this mtime */
	int		 defrag_clean;
	int64_t		 defrag_clean_mtime;
};

struct store {
	char		 datadir[PATH_MAX];
	char		 tmpldir[PATH_MAX];
	int		 tmpldirfd;
	int		 lockfd;	/* the data dir's lock, if store_open took it; else -1 */
	struct fence	*fence;		/* a store in a cluster: this host's claim (fence.h); else NULL */
	void		*cio;		/* ... and its RADOS I/O context (rados_ioctx_t) */
	int		 cache_trusted;	/* ... and whether the data dir, its cache here, was kept */
	int		 purge_allowed;	/* saw every open: purge at the last release */
	int		(*kernel_holds)(void *arg, uint64_t id);	/* store_set_kernel_probe */
	void		*kernel_arg;
	struct catalog	*cat;
	struct wlog	*log;
	struct media	*media;		/* where log and index are durable (media.h), never NULL */
	struct index	*ix;		/* the committed extent trees; NULL as disk->ix says */
	/*
	 * A schema 3 catalog's rows, on their way into the index (checkpoint.c):
	 * 2: loaded into the overlays, the index's trees not yet theirs; 1: one
	 * commit holds them; 0: two do (either meta slot has them), and the
	 * catalog's rows go in that checkpoint's transaction.  rows_left: the
	 * catalog still holds rows (and says schema 3).
	 */
	int		 ix_migrate;
	int		 rows_left;
	uint64_t	 clones_replayed;	/* REC_CLONEs replay applied (open only) */
	int		 trees_gone;	/* under cat_lock: a disk was purged, its tree not yet dropped */
	_Atomic uint64_t live_excess;	/* live.c: shared bytes the disks' log_bytes count twice */
	_Atomic int64_t	 live_pass_ns;	/* when the last exact pass ended (now_ns), 0: none */
	void		(*copy_hook)(void *arg, enum copy_step s);	/* store_set_copy_hook */
	void		*copy_hook_arg;
	void		(*cp_hook)(void *arg, enum checkpoint_step s);	/* store_set_checkpoint_hook */
	void		*cp_hook_arg;

	pthread_mutex_t	 cat_lock;
	pthread_rwlock_t ns_lock;
	pthread_mutex_t	 log_lock;

	struct disk	**disks;	/* sorted by id (disks.c) */
	size_t		 ndisks, disks_alloc;
	struct disk	**by_name;	/* the named ones, sorted by name */
	size_t		 nnamed, by_name_alloc;
	struct tmpl	**tmpls;
	size_t		 ntmpls;
	struct tmpl	*no_tmpl;	/* the template of disks made in the mount: none, 0 bytes */
	struct tmplpool	*tpool;		/* templates in a pool ("rados:" dir), and the */
	struct tcache	*tcache;	/* host's cache of them; NULL for a local dir */
	struct dir	**dirs;		/* the directories, sorted by path (dirs.c) */
	size_t		 ndirs, dirs_alloc;

	pthread_t	 cp_thread;
	int		 cp_running;
	pthread_mutex_t	 cp_mu;
	pthread_cond_t	 cp_cond;
	int		 cp_stop;
	unsigned	 cp_ms;
	_Atomic uint64_t cp_log_size;	/* wlog_size() at the last checkpoint */
	uint64_t	 cp_laddr;	/* log tail at the last checkpoint */
	_Atomic uint64_t ix_published;	/* the index generation of every disk's committed
					   tree (d->root): set once a checkpoint published
					   all its commit changed (handoff.c saves it) */
	uint64_t	 flush_floor;	/* the log tail at open: the disks' records of an
					   earlier life have no flush_upto, so every flush
					   covers them */
	struct store_cp_health cp_health;	/* under cp_mu; age_s and log_bytes_since unused */
	int64_t		 cp_ok_ns;	/* under cp_mu: CLOCK_MONOTONIC when the last good one ended */

	/*
	 * Limits (diskio.c).  A guest write that would leave less than
	 * space_reserve bytes free on the data dir's file system, or grow the
	 * maps past extents_max extents, gets ENOSPC; the cleaner's moves and
	 * the checkpoints are not held to either, so they can still run.
	 */
	uint64_t	 space_reserve_opt;	/* store_opts.space_reserve */
	uint64_t	 space_reserve;		/* under log_lock: in effect */
	uint64_t	 space_free;		/* under log_lock: as of the last look, less appends since */
	int64_t		 space_woke_ns;		/* under log_lock: the last wake of the cleaner */
	uint64_t	 extents_max;
	uint64_t	 extents;		/* under log_lock: at least the extents of all maps */
	int		 extents_counted;	/* under log_lock: extents was counted since open */
	int		 extents_refusing;	/* under log_lock: the cap was hit (logged once) */
	uint64_t	 disk_size_max;		/* a disk cannot be made larger (store_resize) */

	pthread_mutex_t	 clean_lock;	/* one cleaner or check at a time (cleaner.c) */
	atomic_int	 clean_wanted;	/* the cleaner found clean_lock held by a check,
					   which yields it between batches (check.c) */
	uint64_t	 segment_size;
	_Atomic uint64_t clean_released;	/* bytes the cleaner ever gave back (catalog meta) */
	_Atomic uint64_t clean_passes;	/* passes that weighed the segments (tests count them) */
	uint64_t	 clean_idle_log;	/* checkpoint thread: the log's bytes on disk when
					   its last pass found nothing to take, or 0 */

	uint8_t		 uuid[16];
	int		 readonly;	/* opened for checking: changes nothing */
	int64_t		 load_disk;	/* load_extent(): the previous row, for overlaps */
	uint64_t	 load_end;
	uint64_t	 overlaps;	/* catalog rows that overlapped an earlier one */
	char		 overlap_what[NAME_MAX_LEN + 100];
	int		 takeover;	/* opened to replace a dead worker */
	int		 from_area;	/* its maps came from the dead worker's snapshot area */
	int		 tmpl_leases;	/* take read leases on templates (tmpl_lease) */
	void		*snap;		/* the handoff area (handoff.c), or NULL */
	size_t		 snap_cap;
	int		 snap_full_logged;
	long		 snap_cost_us;	/* time the last snapshot held the log lock */
	struct tmpl_verifier *tverify;	/* tmplwatch.c's content thread, or NULL */
	struct defrag	*defrag;	/* defrag.c: its thread, totals and settings */
};

/* The generation of the committed trees (0 without an index). */
static inline uint64_t
store_ix_generation(const struct store *st)
{
	struct index_stats s;

	if (!st->ix)
		return 0;
	index_stats(st->ix, &s);
	return s.generation;
}

/* ---- tmplsrc.c: templates in a pool, read through the host's cache ------ */

/* Open the pool and the cache a "rados:" template dir needs (st->tmpldir): 0 or -errno, err. */
int tmpls_pool_open(struct store *st, const struct store_opts *o, char *err, size_t errlen);
void tmpls_pool_close(struct store *st);
/* Is rec a pool template's version (its fingerprint is its content hash)? */
int tmpl_rec_in_pool(const struct catalog_template *rec);
/* Template name in the pool as rec (id 0), its content sums in *sums (malloc'ed). */
int tmpl_pool_probe(struct store *st, const char *name, struct catalog_template *rec,
    uint32_t **sums, char *err, size_t errlen);
/* Open t's content in the cache; sums: its content sums (NULL: from the catalog, or the pool). */
int tmpl_pool_attach(struct store *st, struct tmpl *t, const uint32_t *sums, char *err,
    size_t errlen);
/* The pool template this open already knows by name, or NULL (cat_lock held). */
struct tmpl *tmpl_pool_named(struct store *st, const char *name);
/* The i-th pool template by name (0 first); -ENOENT past the last. */
int tmpl_pool_at(struct store *st, size_t i, char *name, size_t len);

/* ---- tmplwatch.c: the templates in use --------------------------------- */

struct tmpl *tmpl_by_id(struct store *st, int64_t id);
/*
 * The template file `name` as it is now, recorded in the catalog and
 * opened (cat_lock held): a version seen before is the same struct.
 * 0, or -errno with a line in err.
 */
int tmpl_acquire(struct store *st, const char *name, struct tmpl **out, char *err, size_t errlen);
int tmpl_add(struct store *st, struct tmpl *t);
/* A template loaded from its open file fd (owned from now on) and catalog row; NULL if out of memory. */
struct tmpl *tmpl_new(const struct catalog_template *rec, int fd, int dirfd);
/* t's file is back as recorded, open as fd: serve it again, verifying afresh.  Under ns_lock exclusive. */
void tmpl_reopened(struct tmpl *t, int fd);
void tmpl_free(struct tmpl *t);
int tmpl_read(struct tmpl *t, char *buf, uint64_t len, uint64_t off);
/* Does the template file still match rec (by_name: its name too)?  If not, set problem: 0 or -EIO. */
int tmpl_check(struct tmpl *t, int by_name);
uint64_t fd_alloc_bytes(int fd);
/* Open: load the catalog's templates, checking each file (a problem, not an error, if changed). */
int tmpls_load(struct store *st);
/* The checkpoint thread: look at every template by name, take or renew leases. */
void tmpls_watch(struct store *st);
void tmpls_free(struct store *st);

/* ---- dirs.c: the directories ------------------------------------------- */

int dirs_load(struct store *st);
void dirs_free(struct store *st);
/* Does the directory path is in exist (the root always does)?  ns_lock or cat_lock held. */
int path_parent_exists(const struct store *st, const char *path);
/* Is path a directory ("" is the root)?  ns_lock held. */
int path_is_dir(const struct store *st, const char *path);
/* May a new disk be at path (its directory exists, no directory is there)?  0, or -errno with err. */
int path_namespace_check(struct store *st, const char *path, char *err, size_t errlen);
/* Directories and disks whose directory does not exist (a damaged catalog): fn for each; their count.  ns_lock held. */
size_t dirs_orphans(struct store *st, void (*fn)(void *arg, const char *path), void *arg);
size_t dirs_count(const struct store *st);
/* Rename directory from to to, and all below it (cat_lock held; namespace.c's store_rename). */
int dir_rename_locked(struct store *st, const char *from, const char *to, unsigned noreplace);

/* ---- dmap.c: a disk's map as readers see it ----------------------------- */

/* Under d->lock shared: extmap_walk and extmap_first over the layers' view. */
int dmap_walk(const struct disk *d, uint64_t off, uint64_t end,
    int (*fn)(const struct extent *e, void *arg), void *arg);
int dmap_first(const struct disk *d, uint64_t off, uint64_t end, struct extent *out);
/* Extents (an upper bound: a range in two layers counts twice), memory of the overlays. */
uint64_t dmap_count(const struct disk *d);
size_t dmap_memory(const struct disk *d);
/* Under d->lock exclusive: map [loff, loff+len) to laddr (EXTMAP_UNMAPPED: to the template). */
int dmap_set(struct disk *d, uint64_t loff, uint64_t len, uint64_t laddr);
/* Compute d->log_bytes from the layers (after loading them from elsewhere). */
void dmap_recount(struct disk *d);
/* A checkpoint begins: the overlay goes below, fresh (owned from now on) takes its place. */
int dmap_freeze(struct disk *d, struct extmap *fresh);
/* The commit is durable: root holds what frozen did; returns frozen, for the caller to free. */
struct extmap *dmap_publish(struct disk *d, const struct index_root *root);
/*
 * A REC_CLONE at rec_laddr: dst's layers and size become a copy of src's
 * (dst's lock exclusive and src's shared are taken here unless they are one
 * disk, whose lock the caller then holds exclusive).  0 or -ENOMEM (nothing
 * changed).
 */
int dmap_copy(struct disk *dst, struct disk *src, uint64_t rec_laddr);
/*
 * A REC_SHARE at rec_laddr: dst's [off, off+len) becomes src's (src NULL:
 * unmapped, dst's template), dst growing to cover it.  Takes dst's lock
 * exclusive and src's shared (two disks).  0 or -ENOMEM.
 */
int dmap_share(struct disk *dst, struct disk *src, uint64_t off, uint64_t len, uint64_t rec_laddr);
/*
 * Replay met a REC_SHARE the index holds: the overlays' [off, off+len) goes
 * (a frozen one's too), so the committed tree (which has the share and what
 * followed) shows.
 * d->lock exclusive (or replay).
 */
void dmap_reveal(struct disk *d, uint64_t off, uint64_t len);

/* ---- disks.c: the disk table, applying records ------------------------- */

int64_t now_ns(void);

/* Disk table, under ns_lock (shared to look up, exclusive to change). */
struct disk *disk_get(struct store *st, uint64_t id);
struct disk *disk_by_name(struct store *st, const char *name);
struct disk *disk_new(const struct catalog_disk *cd, struct tmpl *t);
void disk_free(struct disk *d);
int disk_table_put(struct store *st, struct disk *d);
void disk_table_remove(struct store *st, struct disk *d);
/* Rename d ("" unlinks it), keeping the name index sorted. */
void disk_table_rename(struct store *st, struct disk *d, const char *name);
/* The index in st->by_name of the first name >= name. */
size_t disk_name_slot(const struct store *st, const char *name);
/* The index in st->disks of the first disk whose id is id or more. */
size_t disk_index_after(struct store *st, uint64_t id);
/* Open: the catalog's disks, with empty maps; close: free them all. */
int disks_load(struct store *st);
void disks_free(struct store *st);

/* The extents of every disk's map now, and (if mem) the bytes maps and dirty sets hold (ns_lock held). */
uint64_t disks_extent_count(struct store *st, uint64_t *mem);
/* The ids of the disks now (for work that visits them one at a time, without ns_lock). */
int disk_ids(struct store *st, uint64_t **ids, size_t *n);

/* Was d made by a request with this token (a retry of a create, snapshot or clone)? */
static inline int
disk_made_by(const struct disk *d, const char *token)
{
	return token && token[0] && strcmp(token, d->token) == 0;
}

/* Has d a name (a disk's, or a snapshot's)?  Else it is deleted, kept while open. */
static inline int
disk_linked(const struct disk *d)
{
	return d->snap_of ? d->snap_name[0] != '\0' : d->name[0] != '\0';
}
/* d's name as users write it: "DISK" or "DISK@SNAP" ("" if deleted).  ns_lock held. */
void disk_full_name(struct store *st, const struct disk *d, char *buf, size_t len);
/* The snapshot `snap` of disk parent, or NULL.  ns_lock held. */
struct disk *disk_snapshot(struct store *st, int64_t parent, const char *snap);
/* A disk by the name users write ("DISK" or "DISK@SNAP"), or NULL.  ns_lock held. */
struct disk *disk_by_full_name(struct store *st, const char *name);

/* Under d->lock (shared is enough). */
void disk_attr_fill(const struct disk *d, struct disk_attr *a);
/* Under d->lock exclusive: the one place a disk's contents and size change. */
int disk_apply(struct disk *d, const struct rec_header *h, uint64_t rec_laddr);

/*
 * Extents copied out of a map, to use with no lock held.  The caller sets
 * e and cap (a fixed array: filling stops when it is full) or grow (e is
 * malloc'd and grown as needed; the caller frees it), and what to keep.
 */
struct extent_batch {
	struct extent	*e;
	size_t		 n, cap;
	int		 grow;
	int		 log_only;	/* keep only extents in the log, not zero extents */
	uint32_t	 seg;		/* with log_only, if not 0: only those in this segment */
	int		 rc;		/* -ENOMEM if growing failed, -EUCLEAN if the index is damaged */
	uint64_t	 family;	/* set by the fill: the family the disk reads (logfmt.h) */
};
/* Copy the extents of d over [pos, end) into b (n reset first); d->lock held shared. */
void extent_batch_fill(const struct disk *d, uint64_t pos, uint64_t end, struct extent_batch *b);
/*
 * The same for disk id, under ns_lock and its lock, with its name (if name
 * is not NULL; "" when unlinked): 0, -ENOENT if it is gone, or b->rc.
 */
int disk_extents_copy(struct store *st, uint64_t id, uint64_t pos, uint64_t end,
    struct extent_batch *b, char *name, size_t namelen);
/*
 * Call fn for each extent of disk id over [pos, end) that b keeps, in
 * batches of b->cap (a fixed array), ns_lock and the disk's lock held only
 * while a batch is copied: a guest write waits for one batch, never for the
 * whole map.  The map may change between batches.  0, fn's non-zero value,
 * or disk_extents_copy's error (-ENOENT: the disk is gone).
 */
int disk_extents_each(struct store *st, uint64_t id, uint64_t pos, uint64_t end,
    struct extent_batch *b, int (*fn)(const struct extent *e, void *arg), void *arg);
/* Return once every read that started before the call has finished. */
void disks_read_barrier(struct store *st);

/* ---- handoff.c: the overlays in shared memory, for a replacement -------- */

/* Write the maps to the shared area; load them (1), not usable (0), or -errno. */
int handoff_write(struct store *st);
int handoff_load(struct store *st, uint64_t *laddr, uint64_t *seq);
/*
 * A snapshot of this moment, every older one retired (the cleaner: older
 * snapshots may name segments it is about to release).  If the maps no
 * longer fit, none is left: a replacement then loads from the catalog.
 */
int handoff_refresh(struct store *st);

/* ---- checkpoint.c: the catalog's copy of the maps ----------------------- */

/*
 * Open: the maps as of the checkpoint, from the snapshot (takeover; laddr
 * and seq are then the snapshot's): 1, from the catalog: 0, or -errno.
 */
int checkpoint_load(struct store *st, int takeover, uint64_t *laddr, uint64_t *seq, char *err,
    size_t errlen);
/*
 * Two checkpoints, the second committing even with nothing new: then
 * neither of the index's meta slots names what the first one replaced (the
 * cleaner, before it releases the segments it moved data out of).
 */
int checkpoint_twice(struct store *st);
/* Open: replay the log from laddr; sets the checkpoint position.  0 or -errno. */
int checkpoint_replay(struct store *st, uint64_t laddr, uint64_t seq, int takeover,
    int from_snapshot, struct wlog_replay_stats *rs, char *err, size_t errlen);
/* After appending: wake the checkpointer if the log since the checkpoint is long. */
void checkpoint_nudge(struct store *st);
/* Wake the checkpoint thread now (a checkpoint, then the cleaner: space is short). */
void checkpoint_wake(struct store *st);
/* The checkpoint thread: wait up to ms: 1 if nudged, 0 if not, -1 when told to stop. */
int checkpoint_wait(struct store *st, unsigned ms);
void checkpoint_stop(struct store *st);
/* Set a meta fact in the catalog (its own transaction); on failure, why in err. */
int store_meta_set(struct store *st, const char *key, const char *value, char *err,
    size_t errlen);

/* The checkpoint of store_checkpoint, for a caller holding cat_lock. */
int checkpoint_locked(struct store *st);


/* ---- namespace.c: names and opens ----------------------------------------- */

/* Has disk d named snapshots (a rollback may give it their map back)?  ns_lock held. */
int disk_has_snapshots(struct store *st, const struct disk *d);
/*
 * May disk d be open in the kernel?  This worker counts its own opens; a
 * replacement did not see its predecessor's and asks the kernel (which also
 * holds inodes it only caches).  ns_lock held.
 */
int disk_maybe_open(struct store *st, const struct disk *d);

/* ---- lifecycle.c: snapshots, clones, rollback ---------------------------- */

/*
 * dst (blank, of src's family and template, possibly open) becomes a copy
 * of src by a REC_CLONE, sharing its committed tree (lifecycle.c): what a
 * whole-disk copy_file_range is (share.c).  -EAGAIN (nothing done) if dst
 * was written since unchanged_since (its mtime) or src's size is no longer
 * src_size (the bytes the copy reports).  cat_lock held; 0 or -errno.
 */
int disk_copy_whole(struct store *st, struct disk *src, struct disk *dst, uint64_t src_size,
    int64_t unchanged_since);

/* ---- live.c: what the disks still use of the log ------------------------- */

/*
 * Bytes of segments first..last that disk maps still use, shared bytes once,
 * into live[0..last-first]: 0, -ENOMEM, or -EUCLEAN if a map could not be
 * walked whole (then the figures are too low: release nothing).
 */
int disks_segment_live(struct store *st, uint32_t first, uint32_t last, uint64_t *live);
/* Do disks share records (a family of more than one)?  ns_lock held. */
int disks_share(struct store *st);
/*
 * For each member of family (ids[0..n), in id order): the log bytes it alone
 * maps, that no other member does (what deleting it gives back).  Members
 * with the same view (one committed root, no overlay) share theirs: 0 each.
 * The arrays are malloc'd; 0 or -errno.  No lock held.
 */
int family_own_bytes(struct store *st, uint64_t family, uint64_t **ids, uint64_t **own,
    size_t *n);

/* ---- diskio.c: reading and writing disks -------------------------------- */

/* Append h (and data) for d and apply it; ns_lock shared and log_lock held. */
int disk_log(struct store *st, struct disk *d, struct rec_header *h, const void *data,
    const struct wlog_sums *sums);

/* d's newest record was just appended (log_lock held): a flush of d covers it. */
void disk_logged(struct store *st, struct disk *d);

/* Open: the limits of store_opts (or their defaults). */
void store_limits_init(struct store *st, const struct store_opts *o);
/* Look at the data dir's free space again (the cleaner, status): free bytes, reserve. */
void store_space_look(struct store *st, uint64_t *free_bytes, uint64_t *reserve);

/*
 * Move every live extent of every disk out of log segment seg, to the log's
 * tail (the cleaner).  buf holds REC_DATA_MAX bytes; bytes moved and moves
 * are added to cs.  0, or -errno: then seg must stay.
 */
int store_move_segment(struct store *st, uint32_t seg, char *buf, struct clean_stats *cs);

/*
 * Rewrite run e[0..n) of disk id (log extents, each following the one before
 * with no gap) as one record at the log's tail, its bytes from buf (read
 * from their records): the defragmenter.  Applied only if, under log_lock,
 * each extent still maps the record it did (a guest write since wins), as a
 * move's is; the disk's mtime stays.  1 (rewritten), 0 (changed meanwhile,
 * or the disk is gone) or -errno.
 */
int store_rewrite_run(struct store *st, uint64_t id, const struct extent *e, size_t n,
    const char *buf);

/* ---- cleaner.c: giving space back ---------------------------------------- */

/*
 * The checkpoint thread, after a checkpoint: clean when the log's dead
 * bytes pass a quarter of what the disks use plus half a segment, until
 * they are down to an eighth plus half a segment (a log under 1.5x its live
 * data and two segments), or when the data dir's free space is down to the reserve plus
 * a segment.
 */
void store_clean_auto(struct store *st);

/* ---- defrag.c: rewriting idle disks in logical order ----------------------- */

/* Open: the defragmenter's state, and its thread unless o says off (or readonly).  0 or -errno. */
int defrag_start(struct store *st, const struct store_opts *o, char *err, size_t errlen);
/* Close: stop the thread (a pass in progress stops between chunks) and free the state. */
void defrag_stop(struct store *st);

#endif
