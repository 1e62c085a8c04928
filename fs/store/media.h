/*
 * media: where the store's log and index are durable, behind one small
 * table of operations, as SQLite's VFS or RocksDB's Env (docs/design.md,
 * "A store in a cluster").
 *
 * The local data dir is always where the engine reads and appends: segment
 * files, the index file, spares.  A medium says what makes those bytes
 * durable and where else they must be:
 *
 *   local   (media_local.c)  the files are the store: fdatasync, nothing more.
 *   RADOS   (media_rados.c)  the files are a write-back cache of objects in a
 *                            pool: a segment is one object, the index file is
 *                            4 MiB chunk objects; a sync sends the bytes the
 *                            objects lack and waits for the cluster's ack.
 *
 * The log (wlog_*.c) and the index (through index_set_io) call the medium
 * and do not know which one it is.  Calls of seg_sync are serialized by the
 * log's group commit; seg_cut and seg_release by the log lock; fetch runs
 * before anything is opened; the index io hooks run in the checkpoint
 * thread alone.
 *
 * Error convention: 0 or a negative errno.  A failed sync breaks the log
 * (wlog_sync.c), as a failed fdatasync does; the medium logs one line naming
 * the object and the error.
 */
#ifndef HCOWFS_MEDIA_H
#define HCOWFS_MEDIA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct media;
struct index_io;

struct media_ops {
	const char *name;
	/*
	 * The log's filler helps (a file system journal under the segments:
	 * docs/design.md, "Flushes"); with a remote medium it only costs.
	 */
	int	 fill;
	uint64_t segment_max;		/* the largest segment the medium holds, 0 = any */
	/*
	 * Make bytes [0, upto) of segment segno (its file fd) durable.  Only
	 * the newest segment grows; a sealed one was synced to its end before
	 * the next was created, so a medium may remember how far the newest
	 * one is durable already and send only the rest.
	 */
	int	(*seg_sync)(struct media *m, uint32_t segno, int fd, uint64_t upto);
	/* Replay cut segment segno's file to size bytes (a torn tail, stale bytes). */
	int	(*seg_cut)(struct media *m, uint32_t segno, uint64_t size);
	/* Segment segno was released: nothing refers to it any more. */
	int	(*seg_release)(struct media *m, uint32_t segno);
	/*
	 * Before the log and the index of datadir are opened: make the local
	 * files agree with the medium.  trust_cache: the files were this
	 * host's, in this dir, and nobody else held the store since.
	 */
	int	(*fetch)(struct media *m, const char *datadir, int trust_cache, char *err,
		    size_t errlen);
	/* Fill the index file's io hooks (index.h); NULL: the file alone, as it is. */
	void	(*index_io)(struct media *m, struct index_io *io);
	void	(*close)(struct media *m);
};

/* What every medium holds first. */
struct media {
	const struct media_ops *ops;
	_Atomic uint64_t writes;	/* writes sent to the medium (not the local files) */
	_Atomic uint64_t write_bytes;	/* bytes they carried */
	/*
	 * Called with +1 when a wait for a remote medium has lasted
	 * MEDIA_SLOW_MS (the cluster is away: an OSD down waits, it does not
	 * fail), -1 when it ends: requests behind it wait for the cluster and
	 * are not hung (fence.h's wait hook, the supervisor's watch).
	 */
	void	(*wait_hook)(void *arg, int delta);
	void	*wait_arg;
};

#define MEDIA_SLOW_MS	1000

/* Set m's wait hook (the local medium waits on a disk, not a cluster: ignored). */
void media_set_wait_hook(struct media *m, void (*hook)(void *arg, int delta), void *arg);

/* The local medium (no state: shared by every store that has no other). */
struct media *media_local(void);

/* The medium of a store: m, or the local one for NULL. */
static inline struct media *
media_or_local(struct media *m)
{
	return m ? m : media_local();
}

/* Release a medium (NULL and the local one are fine). */
void media_close(struct media *m);

#ifdef HAVE_CEPH
#include <rados/librados.h>
/*
 * A store's objects in io's pool and namespace (the caller keeps io and
 * its connection open until media_close).
 */
int media_rados_open(rados_ioctx_t io, struct media **out);
#define MEDIA_RADOS_SEGMENT_MAX		(UINT64_C(64) << 20)
#define MEDIA_RADOS_WRITE_MAX		(UINT64_C(64) << 20)	/* < osd_max_write_size, 90 MiB */
#define MEDIA_RADOS_INDEX_CHUNK		(UINT64_C(4) << 20)
#endif

#endif
