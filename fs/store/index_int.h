/*
 * index_int.h: the on-disk format of the index file and what index.c (file,
 * meta pages, free pages, commit) and index_tree.c (lookups and edits of the
 * trees) share.  The format is described in index.h's design notes; it is
 * defined here, once, with its version.
 */
#ifndef HCOWFS_INDEX_INT_H
#define HCOWFS_INDEX_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "index.h"

#define IX_MAGIC	UINT64_C(0x31584449574f4348)	/* "HCOWIDX1" little-endian */
#define IX_VERSION	1
#define IX_MAX_HEIGHT	16		/* 169 * 254^15 extents: never reached */

/* Page types (struct ix_node.type). */
enum { IX_LEAF = 1, IX_INNER = 2, IX_TABLE = 3 };

/* Pages 0 and 1.  crc: crc32c of bytes 4..4095 of the page (the rest is zeros). */
struct ix_meta {
	uint32_t	crc;
	uint32_t	version;
	uint64_t	magic;
	uint8_t		uuid[16];
	uint64_t	generation;	/* the valid meta with the higher one wins */
	uint64_t	log_laddr;	/* the log position the trees are exact for */
	uint64_t	log_seq;
	uint64_t	table_page;	/* first page of the tree table chain; 0: no trees */
	uint64_t	trees;
	uint64_t	pages;		/* high-water mark: no reachable page at or past it */
};
_Static_assert(sizeof(struct ix_meta) == 80, "meta page layout");

/* Every other page starts with this.  crc: crc32c of bytes 4..4095. */
struct ix_node {
	uint32_t	crc;
	uint16_t	type;		/* IX_LEAF, IX_INNER, IX_TABLE */
	uint16_t	level;		/* 1 for a leaf, its children's + 1 for an inner node */
	uint32_t	count;		/* entries that follow */
	uint32_t	pad;
	uint64_t	next;		/* IX_TABLE: the chain's next page, or 0 */
};
_Static_assert(sizeof(struct ix_node) == 24, "node header layout");

/*
 * Node bodies are arrays side by side, so a binary search reads only keys:
 * a leaf is loff[169], len[169], laddr[169]; an inner node key[254],
 * page[254], child page[i] holding the extents in [key[i], key[i+1]).  In
 * memory, edits use struct extent and struct ix_child arrays.
 */
struct ix_child {
	uint64_t	key;
	uint64_t	page;
};

/* Tree table entry, sorted by id along the chain. */
struct ix_tree {
	uint64_t	id;
	uint64_t	root;
	uint64_t	height;
	uint64_t	extents;
	uint64_t	log_bytes;
};
_Static_assert(sizeof(struct ix_tree) == 40, "tree table entry layout");
_Static_assert(sizeof(struct extent) == 24, "leaf entry layout");

#define IX_BODY		(INDEX_PAGE - sizeof(struct ix_node))
#define IX_LEAF_CAP	((uint32_t)(IX_BODY / sizeof(struct extent)))	/* 169 */
#define IX_INNER_CAP	((uint32_t)(IX_BODY / sizeof(struct ix_child)))	/* 254 */
#define IX_TABLE_CAP	((uint32_t)(IX_BODY / sizeof(struct ix_tree)))	/* 101 */

#define IX_BODY_U64(p)	((const uint64_t *)((const uint8_t *)(p) + sizeof(struct ix_node)))
#define IX_LOFF(p)	(IX_BODY_U64(p))
#define IX_LEN(p)	(IX_BODY_U64(p) + IX_LEAF_CAP)
#define IX_LADDR(p)	(IX_BODY_U64(p) + 2 * IX_LEAF_CAP)
#define IX_KEYS(p)	(IX_BODY_U64(p))
#define IX_PAGES(p)	(IX_BODY_U64(p) + IX_INNER_CAP)
#define IX_TREES(p)	((struct ix_tree *)((uint8_t *)(p) + sizeof(struct ix_node)))

/* A transaction's page held in memory; on the LRU list while it is. */
struct ix_buf {
	uint64_t	pgno;
	struct ix_buf	*hnext;		/* hash chain */
	struct ix_buf	*prev, *next;	/* LRU: oldest first */
	uint8_t		page[INDEX_PAGE] __attribute__((aligned(16)));
};

struct index {
	int		fd;
	int		readonly;
	int		broken;		/* mark found damage: begin refuses (damage holds why) */
	char		damage[160];
	uint8_t		uuid[16];
	const uint8_t	*map;		/* one read-only mapping of map_bytes, never moved */
	size_t		map_bytes;
	_Atomic uint64_t file_pages;	/* pages the file holds: readers' bound */
	_Atomic uint64_t table_page;	/* the committed tree table's first page */
	struct ix_meta	meta[2];	/* as on disk; valid[] says which are */
	int		valid[2];
	int		cur;		/* the slot of the committed generation */
	struct ix_tree	*trees;		/* the committed table, the writer's copy */
	size_t		ntrees;
	uint64_t	*used;		/* bitmap: pages reachable or taken by the transaction */
	uint64_t	*limbo;		/* pages a commit that failed after its meta write reaches */
	/*
	 * Leaves a reader has verified (checksum and order) since they were
	 * last written: one bit a page of the whole mapping, in anonymous
	 * memory that costs only what is touched.  Set by readers, cleared by
	 * index_commit for every page its transaction wrote.
	 */
	_Atomic uint64_t *checked;
	size_t		checked_bytes;
	size_t		words;		/* of used and limbo */
	uint64_t	pages_used;	/* the last mark's count */
	uint64_t	commits, last_commit_pages;
	struct index_io	io;
	struct index_txn *txn;
};

struct index_txn {
	struct index	*ix;
	struct ix_tree	*trees;		/* the table as the transaction changes it */
	size_t		ntrees, cap;
	int		table_changed;
	int		err;		/* a spill failed: the commit will fail with it */
	uint64_t	*dirty;		/* bitmap: pages this transaction wrote */
	uint64_t	*writable;	/* bitmap: dirty pages no clone shares: changed in place */
	size_t		words;
	uint64_t	hwm;		/* high-water mark of pages */
	uint64_t	cursor;		/* where the search for a free page resumes */
	struct ix_buf	**hash;
	size_t		hash_mask;
	struct ix_buf	lru;		/* list head */
	size_t		nbufs, max_bufs;
	uint64_t	spilled;
};

static inline int
ix_bit(const uint64_t *b, uint64_t i)
{
	return (int)((b[i >> 6] >> (i & 63)) & 1);
}

static inline void
ix_bit_set(uint64_t *b, uint64_t i)
{
	b[i >> 6] |= UINT64_C(1) << (i & 63);
}

static inline void
ix_bit_clear(uint64_t *b, uint64_t i)
{
	b[i >> 6] &= ~(UINT64_C(1) << (i & 63));
}

/* The last of the n sorted keys that is <= off (0 if none: key 0 stands for the lower bound). */
static inline uint32_t
ix_key_search(const uint64_t *k, uint32_t n, uint64_t off)
{
	uint32_t lo = 1, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (k[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

/* In leaf p of n extents, the first ending after off (n if none): extents do not overlap. */
static inline uint32_t
ix_leaf_search(const uint8_t *p, uint32_t n, uint64_t off)
{
	uint32_t i = ix_key_search(IX_LOFF(p), n, off);

	if (IX_LOFF(p)[i] + IX_LEN(p)[i] > off)
		return i;
	return i + 1;
}

/* Extent i of leaf p. */
static inline void
ix_leaf_get(const uint8_t *p, uint32_t i, struct extent *e)
{
	e->loff = IX_LOFF(p)[i];
	e->len = IX_LEN(p)[i];
	e->laddr = IX_LADDR(p)[i];
}

/* index.c: the file (0 or a negative errno each). */
int ix_write(struct index *ix, const void *buf, size_t len, uint64_t off);
int ix_sync(struct index *ix);
int ix_grow(struct index *ix, uint64_t pages);
int ix_bitmaps_cover(struct index *ix, struct index_txn *t, uint64_t pages);
int ix_mark(struct index *ix, char *err, size_t errlen);
int ix_write_meta(struct index *ix, struct ix_meta *m, int slot);
/* Page pgno checked as the mark checks it: in the file, of this type, its checksum right. */
int ix_mark_check(struct index *ix, uint64_t pgno, int type, char *err, size_t errlen);
/* Unmap and free what index_open set up (index_close, in index_txn.c, ends a transaction first). */
void ix_free(struct index *ix);

/* index_txn.c: pages of a transaction. */
const uint8_t *ix_page_read(struct index_txn *t, uint64_t pgno);
uint8_t *ix_page_write(struct index_txn *t, uint64_t *pgno);
uint8_t *ix_page_new(struct index_txn *t, uint64_t *pgno);
void ix_page_free(struct index_txn *t, uint64_t pgno);
int ix_txn_room(struct index_txn *t);
uint32_t ix_page_crc(const void *page);

/* index_tree.c: a tree table entry of the transaction, and the edits. */
struct ix_tree *ix_tree_find(struct index_txn *t, uint64_t id, int create);
int ix_tree_replace(struct index_txn *t, struct ix_tree *tr, uint64_t a, uint64_t b,
    const struct extent *ins);
void ix_subtree_release(struct index_txn *t, uint64_t pgno, uint32_t level);
int ix_tree_check(struct index *ix, const struct ix_tree *tr, char *err, size_t errlen);

#endif
