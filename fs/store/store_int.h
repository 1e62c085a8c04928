/*
 * store_int: what the store's own files (store.c, diskio.c, namespace.c)
 * share; nothing else includes it.  The lock order and the checkpoint
 * protocol are described at the top of store.c.
 */
#ifndef HCOWFS_STORE_INT_H
#define HCOWFS_STORE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "catalog.h"
#include "extmap.h"
#include "store.h"
#include "wlog.h"

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
};

struct disk {
	int64_t		 id;
	char		 name[NAME_MAX_LEN + 1];	/* "" once unlinked */
	struct tmpl	*tmpl;
	char		 token[64];

	pthread_rwlock_t lock;
	struct extmap	*map;
	struct extmap	*dirty;		/* ranges changed since the checkpoint */
	struct extmap	*dirty_inflight; /* swapped out by a checkpoint not yet committed */
	int		 meta_dirty;	/* size/mtime changed since the checkpoint */
	uint64_t	 size;
	int64_t		 mtime_ns, ctime_ns;
	uint32_t	 mode, uid, gid;
	int		 opens;
};

struct store {
	char		 datadir[PATH_MAX];
	char		 tmpldir[PATH_MAX];
	int		 tmpldirfd;
	int		 purge_allowed;
	struct catalog	*cat;
	struct wlog	*log;

	pthread_mutex_t	 cat_lock;
	pthread_rwlock_t ns_lock;
	pthread_mutex_t	 log_lock;

	struct disk	**disks;	/* by id */
	size_t		 disks_cap;
	struct tmpl	**tmpls;
	size_t		 ntmpls;

	pthread_t	 cp_thread;
	int		 cp_running;
	pthread_mutex_t	 cp_mu;
	pthread_cond_t	 cp_cond;
	int		 cp_stop;
	unsigned	 cp_ms;
	_Atomic uint64_t cp_log_size;	/* wlog_size() at the last checkpoint */
	uint64_t	 cp_laddr;	/* log tail at the last checkpoint */
	struct store_cp_health cp_health;	/* under cp_mu; age_s and log_bytes_since unused */
	int64_t		 cp_ok_ns;	/* under cp_mu: CLOCK_MONOTONIC when the last good one ended */

	pthread_mutex_t	 clean_lock;	/* one cleaner or check at a time (cleaner.c) */
	uint64_t	 segment_size;
	_Atomic uint64_t clean_released;	/* bytes the cleaner ever gave back (catalog meta) */

	uint8_t		 uuid[16];
	int		 readonly;	/* opened for checking: changes nothing */
	int64_t		 load_disk;	/* load_extent(): the previous row, for overlaps */
	uint64_t	 load_end;
	uint64_t	 overlaps;	/* catalog rows that overlapped an earlier one */
	char		 overlap_what[NAME_MAX_LEN + 100];
	int		 takeover;	/* opened to replace a dead worker */
	int		 tmpl_leases;	/* take read leases on templates (tmpl_lease) */
	void		*snap;		/* the map snapshot area (snapshot.c), or NULL */
	size_t		 snap_cap;
	int		 snap_full_logged;
	long		 snap_cost_us;	/* time the last snapshot held the log lock */
};

int64_t now_ns(void);

/* Disk table, under ns_lock (shared to look up, exclusive to change). */
struct disk *disk_get(struct store *st, uint64_t id);
struct disk *disk_by_name(struct store *st, const char *name);
struct disk *disk_new(const struct catalog_disk *cd, struct tmpl *t);
void disk_free(struct disk *d);
int disk_table_put(struct store *st, struct disk *d);

/* Call fn for each disk, under ns_lock shared and the disk's lock shared. */
void disks_each(struct store *st, void (*fn)(struct disk *d, void *arg), void *arg);
/* The ids of the disks now (for work that visits them one at a time, without ns_lock). */
int disk_ids(struct store *st, uint64_t **ids, size_t *n);

struct tmpl *tmpl_by_id(struct store *st, int64_t id);
int tmpl_add(struct store *st, struct tmpl *t);
int tmpl_read(struct tmpl *t, char *buf, uint64_t len, uint64_t off);
/* Does the template file still match rec (by_name: its name too)?  If not, set problem: 0 or -EIO. */
int tmpl_check(struct tmpl *t, int by_name);
uint64_t fd_alloc_bytes(int fd);

/* Under d->lock (shared is enough). */
void disk_attr_fill(const struct disk *d, struct disk_attr *a);
/* Under d->lock exclusive: the one place a disk's contents and size change. */
int disk_apply(struct disk *d, const struct rec_header *h, uint64_t rec_laddr);
int dirty_mark(struct disk *d, uint64_t off, uint64_t len);

/* snapshot.c: write the maps to the shared area; load them (1), not usable (0), or -errno. */
int snapshot_write(struct store *st);
int snapshot_load(struct store *st, uint64_t *laddr, uint64_t *seq);
/*
 * A snapshot of this moment, every older one retired (the cleaner: older
 * snapshots may name segments it is about to release).  If the maps no
 * longer fit, none is left: a replacement then loads from the catalog.
 */
int snapshot_refresh(struct store *st);

/* diskio.c: append a record for d and apply it; ns_lock shared and log_lock held. */
int disk_log(struct store *st, struct disk *d, struct rec_header *h, const void *data,
    const struct wlog_sums *sums);

/* After appending: wake the checkpointer if the log since the checkpoint is long. */
void checkpoint_nudge(struct store *st);

#endif
