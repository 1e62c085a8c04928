/*
 * wlog_int.h: what the files of the write log share, and nothing else
 * includes.  wlog.h is the contract; this is the state behind it.
 *
 *   wlog.c          open, close, listing the log directory, the counters
 *   wlog_append.c   appending records
 *   wlog_read.c     reading data back, the record cache
 *   wlog_replay.c   recovery: finding the end of the log, the torn tail
 *   wlog_segment.c  segment files: names, headers, the segment table; roll,
 *                   release, spares, the filler
 *   wlog_sync.c     the group commit (wlog_sync, wlog_sync_segment)
 * Each calls only those below it in this list.
 *
 * State (struct wlog):
 *   segtab      the segment table: fd+1 of every open segment and where each
 *               sealed one's records end (`end`, below), by segment number, in
 *               chunks of SEGTAB_CHUNK entries reached through a fixed
 *               directory.  A chunk is allocated (by open, or a roll under the
 *               log lock) before its first entry is set, published with a
 *               release store, and kept until close: an entry never moves,
 *               so readers index it without a lock.  A released segment's
 *               entry is cleared and its fd closed (nothing can reach it:
 *               wlog_release's contract).  Memory: 48 KiB per 4096 segments
 *               numbered while open; at open, only the chunks of the
 *               segments present.
 *   first,last  the lowest segment number present and the newest (appended
 *               to).  Segments between them may be missing: released ones
 *               are removed, and numbers are never reused.  Every segment
 *               from the replay start to `last` is present (wlog_replay
 *               checks it).
 *   tail        log address of the next record (atomic: read by wlog_sync).
 *   synced      every record before it is durable (under sync_lock).
 *   broken      set when an fdatasync failed: after that the page cache may
 *               have dropped dirty pages, so no later sync may claim success.
 *   cache       headers and crc tables of records read before (reccache.h),
 *               for wlog_read_cached(); only records wholly before the tail,
 *               which nothing rewrites; a released segment's are dropped.
 *               NULL when opened read-only.
 *   end         where each sealed segment's records end (logfmt.h: the next
 *               header's prev_end, or the file's size); the file may be
 *               longer (stale bytes of an earlier life) or, once released,
 *               just its header.
 *   tail_fsize  the newest segment's file size as appends know it (records,
 *               stale bytes of a reused file, zeros of the filler).  Grows
 *               under fill_lock only, except by an append that stays below it.
 *   stale_end   the newest segment's bytes before it may hold stale records
 *               of an earlier life of the file: an append that ends before it
 *               writes a REC_END marker after its record.  After it, up to
 *               tail_fsize, the filler's zeros, which read as the end of the
 *               log by themselves (logfmt.h).
 *   fill_ahead  how far ahead of the tail the filler keeps the newest segment
 *               written (wlog_set_fill; 0 = no filler).  fill_lock is held
 *               while the filler writes zeros and by an append that extends
 *               the file, so the two never write the same bytes.  It
 *               writes a chunk only when flushes moved since its last one.
 *   media       where the segments are durable (media.h): the local medium
 *               (fdatasync) unless wlog_set_media named another before replay.
 *   spares[]    files of released segments kept for reuse (SSSSSSSS.spare,
 *               at most WLOG_SPARES_MAX; under spare_lock: the cleaner adds,
 *               a roll takes).  Their content means nothing.
 */
#ifndef HCOWFS_WLOG_INT_H
#define HCOWFS_WLOG_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "logfmt.h"
#include "wlog.h"

struct reccache;
struct media;

#define SEGTAB_CHUNK	4096
#define SEGTAB_DIR	(WLOG_SEGMENTS_MAX / SEGTAB_CHUNK)

/* SEGTAB_CHUNK segments' entries: fd + 1 (0 = none), sealed segments' ends. */
struct segtab_chunk {
	int		 fd[SEGTAB_CHUNK];
	uint64_t	 end[SEGTAB_CHUNK];
};

struct spare {
	int		 fd;
	uint32_t	 name;		/* SSSSSSSS of SSSSSSSS.spare */
	uint64_t	 size;		/* bytes of the file */
	uint64_t	 stale;		/* bytes that may hold records of an earlier life */
};

#define WLOG_GATHER_MAX_NS	1000000		/* a syncer waits at most 1 ms for its group */

struct wlog {
	char		 dir[PATH_MAX];
	int		 dirfd;
	uint8_t		 uuid[16];
	uint64_t	 segment_size;
	struct segtab_chunk *_Atomic segtab[SEGTAB_DIR];	/* see above */
	uint32_t	 first, last;
	int		 readonly;		/* wlog_open_ro: change no file */
	struct media	*media;			/* never NULL (media.h) */
	char		 note[256];		/* what a read-only open left alone */
	_Atomic uint64_t tail;
	uint64_t	 next_seq;
	int		 replayed;
	_Atomic uint64_t size;			/* bytes of records (and headers) in all segments */
	_Atomic uint64_t released;		/* of which given back by wlog_release() */
	_Atomic uint64_t tail_fsize;		/* the newest segment's file size */
	uint64_t	 stale_end;		/* stale bytes may lie before it (appends only) */

	pthread_mutex_t	 fill_lock;
	pthread_cond_t	 fill_cond;
	pthread_t	 filler;
	_Atomic int	 filling;		/* the filler thread runs */
	int		 fill_stop;
	uint64_t	 fill_ahead;
	_Atomic uint64_t flushes;		/* wlog_sync calls that synced */
	uint64_t	 fill_flushes;		/* flushes when the filler last wrote */
	uint64_t	 fill_seen_tail;	/* the tail when the filler last saw it move ... */
	int64_t		 fill_seen_ns;		/* ... and when (CLOCK_MONOTONIC) */

	pthread_mutex_t	 spare_lock;
	struct spare	 spares[WLOG_SPARES_MAX + 1];	/* + 1: room while trimming at open */
	int		 nspares;
	_Atomic uint64_t spare_bytes;

	pthread_mutex_t	 sync_lock;
	pthread_cond_t	 sync_cond;
	uint64_t	 synced;
	int		 syncing;
	/* gathering a group (wlog_sync.c, WLOG_GATHER_MAX_NS), under sync_lock */
	int		 gathering;		/* a syncer waits for callers */
	unsigned	 arrived;		/* callers since the last target was taken */
	unsigned	 last_group;		/* callers the last wlog_sync fdatasync took in */
	int64_t		 last_sync_ns;		/* how long the last fdatasync took */
	int64_t		 gather_max_ns;		/* the longest wait for a group */
	_Atomic int	 broken;		/* -errno of a failed fdatasync */

	void		(*append_hook)(void *arg);	/* fault injection */
	void		*append_hook_arg;
	struct reccache	*cache;
};

/* The table chunk holding segment segno's entry, NULL if none was made. */
static inline struct segtab_chunk *
seg_chunk(const struct wlog *w, uint32_t segno)
{
	if (segno == 0 || segno >= WLOG_SEGMENTS_MAX)
		return NULL;
	return atomic_load_explicit((struct segtab_chunk *_Atomic *)&w->segtab[segno / SEGTAB_CHUNK],
	    memory_order_acquire);
}

/* The fd of segment segno, or -1 if it is not open. */
static inline int
seg_fd(const struct wlog *w, uint32_t segno)
{
	struct segtab_chunk *c = seg_chunk(w, segno);

	return c ? c->fd[segno % SEGTAB_CHUNK] - 1 : -1;
}

/* Where sealed segment segno's records end (0 if it is not open). */
static inline uint64_t
seg_end(const struct wlog *w, uint32_t segno)
{
	struct segtab_chunk *c = seg_chunk(w, segno);

	return c ? c->end[segno % SEGTAB_CHUNK] : 0;
}

/* wlog_segment.c: segment headers, names and files, the segment table */
void seg_header_init(struct seg_header *sh, uint32_t segno, const uint8_t uuid[16],
    uint64_t prev_end);
void seg_name(uint32_t segno, char *buf, size_t len);
void spare_name(uint32_t segno, char *buf, size_t len);
int seg_create(int dirfd, uint32_t segno, const uint8_t uuid[16], uint64_t prev_end);
int seg_table_set(struct wlog *w, uint32_t segno, int fd);
void seg_table_set_end(struct wlog *w, uint32_t segno, uint64_t end);

/* wlog_sync.c: the group commit */
int wlog_sync_segment(struct wlog *w, uint32_t segno, int fd);

/* wlog_segment.c */
int wlog_roll(struct wlog *w);
void wlog_fill_stop(struct wlog *w);
int seg_remove(struct wlog *w, uint32_t segno);

/* wlog_replay.c: what makes a record (header) sound */
const char *rec_header_check(const struct rec_header *h, uint64_t expect_seq);
uint64_t seg_later_records_end(int fd, uint64_t from, uint64_t size, uint64_t after_seq);

#endif
