/*
 * index: the committed extent trees of a store, in one file of 4 KiB pages
 * shared by every worker generation (the data dir's `index`).
 *
 * A tree maps a disk's logical byte ranges to log addresses, exactly as an
 * extmap does (struct extent, EXTMAP_ZERO: reads as zeros; no extent: not
 * written, reads from the template).  Trees are named by a 64-bit id (a disk's,
 * a snapshot's or a clone's: lifecycle.c).  The file holds many trees, and trees
 * share pages: a committed page is never changed, so a clone is a new
 * tree-table entry naming the same root.
 *
 * Design notes
 *
 * File layout.  Pages of INDEX_PAGE bytes (format in index_int.h, version
 * IX_VERSION).  Pages 0 and 1 are meta pages: magic, version, the store's
 * uuid (another store's file is refused: -EUCLEAN), generation, the log
 * position (laddr, seq), the first page of the tree table, the number of
 * trees, the high-water mark (no reachable page at or past it) and a crc32c.
 * Every other page is a node: a 24-byte header (crc32c of the page, type,
 * level, count, next) and sorted entries, stored as arrays side by side so
 * that a search reads only keys.  Leaves (level 1) hold up to 169 24-byte
 * extents (loff[169], len[169], laddr[169]), as an extmap: sorted, not
 * overlapping, len > 0, and touching neighbours of one laddr merged where
 * they are in the same leaf (across leaves they may stay two: readers must
 * not assume maximal extents).  Inner nodes hold up to 254 keys and
 * children (key[254], page[254]); every extent under child i lies wholly
 * within [key i, key i+1) (key 0 stands for the parent's bound).  A page
 * left under a quarter full by an edit joins a neighbour if both fit.  The
 * tree table is a chain of pages (101 entries each, sorted by id) of {id,
 * root, height, extents, log_bytes}; a commit that changed any tree writes
 * the chain anew.
 *
 * Invariants.  (1) A page reachable from a committed meta page is never
 * written again while that meta page is one of the last two generations.
 * (2) Every page a meta page reaches is durable before that meta page is
 * written (a sync separates them), and the file holds the meta's high-water
 * mark of pages.  (3) The valid meta page with the higher generation is the
 * committed state; a commit writes the other slot.  So a crash anywhere
 * leaves the last committed meta page and all it reaches whole: a torn or
 * lost new meta fails its crc (or still holds the older generation) and the
 * other slot wins.  (4) The mapping is one read-only MAP_SHARED view of a
 * fixed 64 GiB reservation that never moves; readers check each page number
 * against the file's size, so damage gives -EUCLEAN, never SIGBUS.
 *
 * Free pages are not recorded: clones share pages without reference counts.
 * index_open and index_begin mark every page reachable from both valid meta
 * pages (inner and table pages are read and their crc checked; leaves are
 * marked from their parents; a subtree marked already is not visited again),
 * and every other page below the high-water mark, and past it, is free.
 * The cost is the number of inner pages, about 1/170 of the leaves.  Pages a
 * transaction stops using are therefore reused no earlier than by the
 * transaction after the next commit, which is what keeps a reader's root
 * valid until then.  A commit that failed after issuing its meta write may
 * have left that meta on disk: its pages stay marked (limbo) until a commit
 * succeeds.
 *
 * A transaction copies each committed page it changes, and the path to the
 * root, into a free page once, then changes its copy in place (a clone in
 * the transaction freezes all its copies: both trees copy again).  Its
 * pages live in memory up to 16 MiB; older ones are spilled to their own
 * (unreachable) page of the file and read back through the mapping, so
 * memory stays bounded whatever the transaction's size.
 *
 * Transaction states and the function making each transition:
 *
 *      (none) --index_begin--> OPEN --index_set/clear/clone/drop--> OPEN
 *      OPEN --an edit fails (ENOMEM, EFBIG, a failed spill)--> FAILED
 *      OPEN --index_commit: table chain, grow the file (posix_fallocate),
 *             pages in page order, sync, meta page in the other slot,
 *             sync--> (none), generation + 1, readers see the new trees
 *      OPEN/FAILED --index_commit fails, or index_abort--> (none), the
 *             committed generation unchanged
 *
 * In FAILED every call returns the error and a commit fails with it.
 * Checksums are checked on the meta pages at open, on inner and table
 * pages by the mark, and on every page by index_verify; not by readers.
 *
 * The io hooks: a negative result is an error (-1: see errno; else -errno).
 *
 * Threads: index_tree, index_each_tree, index_walk and index_first read
 * only the mapping and two atomics (the table's first page, the file's
 * size): no lock.  index_position, index_stats and index_verify read the
 * writer's state: call them from the thread that runs transactions (or
 * under the caller's lock).  A reader holding a root of generation h must
 * be done when commit h + 2 ends: the transaction begun after it may reuse
 * the pages only h reaches.
 *
 * Concurrency: any number of threads may read committed trees (index_walk,
 * index_first on a struct index_root taken from index_tree) with no lock, at
 * the same time as one thread builds and commits a transaction.  A root
 * stays readable until the commit after the next one: pages reachable from
 * the last two committed generations are never reused.  Transactions are
 * serialized by the caller (one at a time per index).
 *
 * Error convention: 0 (or a count) or a negative errno; a message in the
 * caller's err buffer where one is taken.  A failed commit leaves the file's
 * last committed generation as it was, and the index usable.
 */
#ifndef HCOWFS_INDEX_H
#define HCOWFS_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "extmap.h"	/* struct extent, EXTMAP_ZERO */

#define INDEX_PAGE	4096

struct index;
struct index_txn;

/* A committed tree, as readers use it: a copy, valid as the rules above say. */
struct index_root {
	uint64_t	page;		/* the root page; 0 for an empty tree */
	uint32_t	height;		/* 0 for an empty tree, 1 when the root is a leaf */
	uint64_t	extents;	/* extents in the tree */
	uint64_t	log_bytes;	/* bytes mapped to the log (laddr != EXTMAP_ZERO) */
};

struct index_stats {
	uint64_t	generation;	/* of the last commit */
	uint64_t	file_bytes;
	uint64_t	pages_used;	/* reachable from the last two generations */
	uint64_t	pages_free;
	uint64_t	trees;
	uint64_t	anon_bytes;	/* malloc'd memory the index holds now */
	uint64_t	commits;
	uint64_t	last_commit_pages;	/* pages written by the last commit */
};

/* Open flags. */
#define INDEX_CREATE	1	/* create the file if it does not exist */
#define INDEX_READONLY	2	/* never write (hcowctl check): begin fails with -EROFS */
/*
 * Leave the mark of the inner pages to the first index_begin (a worker
 * replacing a dead one: readers need no mark, and the mark of a large
 * index costs milliseconds).  Until then index_damage cannot know of
 * damage and index_stats counts no pages in use.
 */
#define INDEX_DEFER_MARK 4

/*
 * Open (or create) the index file path for the store with this uuid.  A file
 * of another store, an unknown version, or no valid meta page: -EUCLEAN with
 * the reason in err.  Missing without INDEX_CREATE: -ENOENT.
 */
int index_open(const char *path, const uint8_t uuid[16], int flags, struct index **out,
    char *err, size_t errlen);
void index_close(struct index *ix);

/*
 * NULL, or what the mark at open found damaged (an inner or table page that
 * fails its checksum or its structure): readers of the trees it reaches may
 * fail with -EUCLEAN, and index_begin refuses.
 */
const char *index_damage(const struct index *ix);

/* The log position the committed trees are exact for (0, 0 for a new file). */
void index_position(const struct index *ix, uint64_t *laddr, uint64_t *seq);
void index_stats(const struct index *ix, struct index_stats *out);

/* The committed tree id: 0, or -ENOENT if there is none. */
int index_tree(const struct index *ix, uint64_t id, struct index_root *out);
/* Call fn for each committed tree id, in order; stops at and returns fn's non-zero value. */
int index_each_tree(const struct index *ix, int (*fn)(uint64_t id, const struct index_root *r,
    void *arg), void *arg);

/*
 * Reading a committed tree, with the semantics of extmap_walk and
 * extmap_first: extents overlapping [off, end), clipped to it, in order.
 */
int index_walk(const struct index *ix, const struct index_root *r, uint64_t off, uint64_t end,
    int (*fn)(const struct extent *e, void *arg), void *arg);
int index_first(const struct index *ix, const struct index_root *r, uint64_t off, uint64_t end,
    struct extent *out);

/*
 * Changing: begin a transaction, change trees, commit.  Until the commit,
 * readers see only the committed trees.  -EROFS if opened read-only.
 */
int index_begin(struct index *ix, struct index_txn **out);
/* Map [loff, loff+len) of tree id to laddr (EXTMAP_ZERO for zeros); creates the tree if missing. */
int index_set(struct index_txn *t, uint64_t id, uint64_t loff, uint64_t len, uint64_t laddr);
/* Unmap [loff, loff+len) of tree id (reads from the template again). */
int index_clear(struct index_txn *t, uint64_t id, uint64_t loff, uint64_t len);
/* Tree dst (which must not exist: -EEXIST) is a copy of src (-ENOENT), sharing all its pages. */
int index_tree_clone(struct index_txn *t, uint64_t src, uint64_t dst);
/* Drop tree id (no error if it does not exist); its pages not shared are free after the commit. */
int index_tree_drop(struct index_txn *t, uint64_t id);
/*
 * Make the transaction durable as the generation exact for log position
 * (laddr, seq): every page it wrote is on stable storage before the meta page
 * that names them.  Frees t, whatever the result.  On failure the committed
 * generation is the previous one and the index stays usable.
 */
int index_commit(struct index_txn *t, uint64_t laddr, uint64_t seq, char *err, size_t errlen);
/* Forget the transaction's changes; frees t. */
void index_abort(struct index_txn *t);

/*
 * Read every page reachable from the committed trees: checksums, key order,
 * extents that do not overlap, counts that match the tree table.  0, or
 * -EUCLEAN with the first problem in err.
 */
int index_verify(struct index *ix, char *err, size_t errlen);

/*
 * Tests only: the index writes and syncs through these (default: pwrite,
 * fdatasync), so a test can stop a commit at any write or drop the writes a
 * power cut would lose.  NULL restores the default.
 */
struct index_io {
	ssize_t	(*pwrite)(void *arg, int fd, const void *buf, size_t len, off_t off);
	int	(*sync)(void *arg, int fd);
	void	*arg;
};
void index_set_io(struct index *ix, const struct index_io *io);

#endif
