/*
 * extmap: the in-memory extent index of one disk.
 *
 * Maps logical byte ranges of a disk to where their bytes live: the log
 * address of the record that holds them (the record knows the disk offset
 * of its first byte, so cutting an extent never changes its laddr), or
 * EXTMAP_ZERO (reads as zeros).  A range with no extent is not written: it
 * reads from the template (or as zeros past its end).
 *
 * Invariants: extents are sorted by loff, never overlap, have len > 0, and two
 * neighbours that touch and have the same laddr are merged into one.  The same structure, with every extent
 * EXTMAP_ZERO, serves as a set of ranges (the checkpoint's dirty ranges).
 *
 * Not thread-safe: the owner (struct disk) serializes access.
 * Error convention: 0 or a negative errno; a failed call leaves the map as it
 * was (memory for the worst case is reserved before anything is changed).
 */
#ifndef HCOWFS_EXTMAP_H
#define HCOWFS_EXTMAP_H

#include <stddef.h>
#include <stdint.h>

#define EXTMAP_ZERO	UINT64_MAX
/*
 * Unmapped, in a map that lies over another (a disk's overlay above its
 * committed tree, dmap.c): the range reads from the template, whatever
 * the maps below say.  A map alone never needs it (no extent says the same).
 */
#define EXTMAP_UNMAPPED	(UINT64_MAX - 1)

struct extent {
	uint64_t loff;		/* logical offset in the disk */
	uint64_t len;		/* bytes, > 0 */
	uint64_t laddr;		/* log address of the record holding the bytes, or EXTMAP_ZERO */
};

/* Does laddr name bytes in the log (not zeros, not unmapped)? */
static inline int
extmap_in_log(uint64_t laddr)
{
	return laddr < EXTMAP_UNMAPPED;
}

/* Where extent e ends. */
static inline uint64_t
extent_end(const struct extent *e)
{
	return e->loff + e->len;
}

/* The bytes extent e maps to the log. */
static inline uint64_t
extent_log_bytes(const struct extent *e)
{
	return extmap_in_log(e->laddr) ? e->len : 0;
}

struct extmap;

struct extmap *extmap_new(void);
void extmap_free(struct extmap *m);

/* Map [loff, loff+len) to laddr (EXTMAP_ZERO for zeros), replacing what was there. */
int extmap_set(struct extmap *m, uint64_t loff, uint64_t len, uint64_t laddr);

/*
 * Fill an empty map from n extents sorted by loff (a snapshot of a map):
 * leaves are filled whole, no search.  Extents that overlap, are unsorted or
 * empty: -EUCLEAN and the map stays empty.
 */
int extmap_load(struct extmap *m, const struct extent *v, size_t n);

/* Unmap [loff, loff+len): it reads from the template again. */
int extmap_clear(struct extmap *m, uint64_t loff, uint64_t len);

/*
 * Call fn for each extent overlapping [off, end), clipped to it, in order.
 * Stops early and returns fn's value if fn returns non-zero; else 0.
 */
int extmap_walk(const struct extmap *m, uint64_t off, uint64_t end,
    int (*fn)(const struct extent *e, void *arg), void *arg);

/* The first extent overlapping [off, end), clipped; 1 if found, else 0. */
int extmap_first(const struct extmap *m, uint64_t off, uint64_t end, struct extent *out);

uint64_t extmap_count(const struct extmap *m);		/* extents */
uint64_t extmap_log_bytes(const struct extmap *m);	/* bytes mapped to the log (extmap_in_log) */
size_t extmap_memory(const struct extmap *m);		/* bytes of memory held */

#endif
