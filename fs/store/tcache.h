/*
 * tcache: a host's template cache, on its local SSD, for templates kept in
 * a pool (tmplpool.h).  A chunk read once is kept in the cache dir and
 * served from there after that, across remounts and reboots, under a size
 * cap with least-recently-used eviction.
 *
 * The cache dir holds one sparse file per TCACHE_SEGMENT of a template's
 * content, named by the content: HASH.SEGMENT (hex).  Nothing else is
 * kept: a chunk is in the cache when the file's bytes match the chunk's
 * content sum, which is checked before the chunk is first served by each
 * open (a chunk torn by a crash, or changed on the disk, is fetched again,
 * never served).  Since a name means one content, two mounts (or a mount and
 * `hcowctl template warm`) may fill one cache dir at once: they write the
 * same bytes.
 *
 * Error convention: 0 or a negative errno; a message in err where given.
 */
#ifndef HCOWFS_TCACHE_H
#define HCOWFS_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "tmplpool.h"

#define TCACHE_SEGMENT		(UINT64_C(16) << 20)	/* bytes of one cache file */
#define TCACHE_SIZE_FRACTION	4	/* default cap: a quarter of the dir's file system */
#define TCACHE_EVICT_TO		90	/* percent of the cap an eviction pass leaves */

struct tcache;
struct tcache_file;

struct tcache_stats {
	uint64_t fetched;	/* chunks fetched from the pool */
	uint64_t found;		/* chunks found in the cache dir and verified */
	uint64_t evicted;	/* cache files removed to keep the cap */
	uint64_t cap;		/* bytes */
};

/* Open (creating it, mode 0700, if missing) the cache dir: cap 0 = the default. */
int tcache_open(const char *dir, uint64_t cap, struct tcache **out, char *err, size_t errlen);
void tcache_close(struct tcache *c);
void tcache_stats(struct tcache *c, struct tcache_stats *s);

/*
 * One template's content in the cache: hash and size from the pool, sums
 * (TEMPLATE_CHUNKS(size), copied) what every chunk is checked against,
 * fetched from p on a miss.
 */
int tcache_file_open(struct tcache *c, struct tmplpool *p, const char *hash, uint64_t size,
    const uint32_t *sums, struct tcache_file **out);
void tcache_file_close(struct tcache_file *f);

/* Read [off, off + len) (inside the content): from the cache, fetching what is missing. */
int tcache_read(struct tcache_file *f, void *buf, uint64_t len, uint64_t off);

/* Make chunk i present and verified (for warming). */
int tcache_fill(struct tcache_file *f, uint64_t i);

/* Bytes of content hash held in cache dir dir (0 if none). */
uint64_t tcache_bytes_of(const char *dir, const char *hash);

#endif
