/*
 * reccache: the headers and crc tables of log records read before, by log
 * address.
 *
 * A read of a few blocks from a record of many needs the record's header
 * (which disk and range it holds, where its data starts) and the crcs of
 * the blocks it touches; both sit away from those blocks, so the read costs
 * two preads.  With the header and table kept here from an earlier read it
 * costs one, straight into the caller's buffer.  The data blocks are still
 * read from the log and checked against the table every time.
 *
 * What the caller puts here must have been checked (the header's crc, the
 * table against the header's data_crc) and must never change: records are
 * immutable once written and log addresses are never reused (wlog.h), so an
 * entry stays true until its segment is released.
 *
 * A fixed number of slots, each holding one record; a record may live in
 * one small set of them, chosen by a hash of its log address, and a record
 * for a full set replaces one of its others.  Memory: at most slots x (a
 * slot + RECCACHE_TABLE_MAX crcs).
 *
 * Thread-safe: every call may run concurrently with any other but
 * reccache_free().  Error convention: 0 or a negative errno.
 */
#ifndef HCOWFS_RECCACHE_H
#define HCOWFS_RECCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "logfmt.h"

/* Records with a longer crc table are not kept (1 MiB of data, FUSE's largest write). */
#define RECCACHE_TABLE_MAX	256u

struct reccache;

/* A cache of `slots` records (rounded up to a power of two, at least 8); NULL without memory. */
struct reccache *reccache_new(unsigned slots);
void reccache_free(struct reccache *c);

/*
 * If the REC_WRITE at log address rec is cached, call fn with its header and
 * its whole crc table (rec_blocks(h->length) entries) and return 1; else 0.
 * The pointers are valid during the call only, and the slot stays locked
 * until fn returns: fn copies what it needs and does nothing slow.
 */
int reccache_find(struct reccache *c, uint64_t rec,
    void (*fn)(const struct rec_header *h, const uint32_t *table, void *arg), void *arg);

/*
 * Keep the REC_WRITE at rec: its header h and its whole crc table, both
 * checked by the caller.  A table longer than RECCACHE_TABLE_MAX is not
 * kept (returns 0 all the same); -ENOMEM leaves the slot empty.
 */
int reccache_put(struct reccache *c, uint64_t rec, const struct rec_header *h,
    const uint32_t *table);

/* Forget every record of segment segno (its records are being given back). */
void reccache_drop_segment(struct reccache *c, uint32_t segno);

/* Records cached now, and bytes of memory held. */
size_t reccache_count(struct reccache *c);
size_t reccache_memory(struct reccache *c);

#endif
