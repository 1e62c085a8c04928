/*
 * reccache: see reccache.h for the contract.
 *
 * Design: an array of slots in sets of RECCACHE_WAYS; a record lives in the
 * set chosen by a multiplicative hash of its log address, in any of its
 * slots; a record for a full set replaces one in turn (victim[]).  With one
 * slot per set, a quarter-full cache already loses ~20% of its records to
 * collisions (measured: 1.24 preads per 4 KiB read with 1024 records in 4096
 * slots); four ways make that rare.  Each set is guarded by one of
 * RECCACHE_LOCKS mutexes (set index modulo the count), so readers of
 * different records rarely meet, and an entry is never seen half-written.
 *
 * Invariants (under the slot's lock): rec == 0 means empty (no record
 * starts at log address 0: segment 0 does not exist); otherwise hdr is the
 * record's header and table holds rec_blocks(hdr.length) crcs, table_cap >=
 * that.  A slot keeps its table buffer when emptied, so a later record of
 * the same size needs no allocation.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "reccache.h"

#define RECCACHE_LOCKS	64	/* power of two */
#define RECCACHE_WAYS	4u	/* slots per set, power of two */

struct rc_slot {
	uint64_t	 rec;
	struct rec_header hdr;
	uint32_t	*table;
	uint32_t	 table_cap;	/* entries */
};

struct rc_lock {
	pthread_mutex_t	 m;
} __attribute__((aligned(64)));	/* one cache line each: two cores do not fight over them */

struct reccache {
	struct rc_slot	*slot;
	uint8_t		*victim;	/* per set: the slot a full set gives up next */
	unsigned	 bits;		/* sets = 1 << bits */
	_Atomic size_t	 count;
	_Atomic size_t	 table_bytes;
	struct rc_lock	 lock[RECCACHE_LOCKS];
};

/* The set rec belongs to. */
static size_t
rc_set(const struct reccache *c, uint64_t rec)
{
	/* Fibonacci hashing: records are laid out at irregular strides, mix every bit */
	return (size_t)((rec * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - c->bits));
}

static pthread_mutex_t *
rc_lock_for(struct reccache *c, size_t set)
{
	return &c->lock[set & (RECCACHE_LOCKS - 1)].m;
}

/* The slot of set that holds rec, or NULL; the set's lock held. */
static struct rc_slot *
rc_lookup(struct reccache *c, size_t set, uint64_t rec)
{
	struct rc_slot *s = &c->slot[set * RECCACHE_WAYS];

	for (unsigned w = 0; w < RECCACHE_WAYS; w++)
		if (s[w].rec == rec)
			return &s[w];
	return NULL;
}

struct reccache *
reccache_new(unsigned slots)
{
	struct reccache *c;
	unsigned bits = 1;

	while ((RECCACHE_WAYS << bits) < slots && bits < 28)
		bits++;
	if (!(c = aligned_alloc(64, sizeof(*c))))
		return NULL;
	memset(c, 0, sizeof(*c));
	c->bits = bits;
	c->slot = calloc((size_t)RECCACHE_WAYS << bits, sizeof(*c->slot));
	c->victim = calloc((size_t)1 << bits, 1);
	if (!c->slot || !c->victim) {
		free(c->slot);
		free(c->victim);
		free(c);
		return NULL;
	}
	for (int i = 0; i < RECCACHE_LOCKS; i++)
		pthread_mutex_init(&c->lock[i].m, NULL);
	return c;
}

void
reccache_free(struct reccache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < (size_t)RECCACHE_WAYS << c->bits; i++)
		free(c->slot[i].table);
	for (int i = 0; i < RECCACHE_LOCKS; i++)
		pthread_mutex_destroy(&c->lock[i].m);
	free(c->slot);
	free(c->victim);
	free(c);
}

int
reccache_find(struct reccache *c, uint64_t rec,
    void (*fn)(const struct rec_header *h, const uint32_t *table, void *arg), void *arg)
{
	size_t set = rc_set(c, rec);
	struct rc_slot *s;

	if (rec == 0)
		return 0;
	pthread_mutex_lock(rc_lock_for(c, set));
	if ((s = rc_lookup(c, set, rec)) != NULL)
		fn(&s->hdr, s->table, arg);
	pthread_mutex_unlock(rc_lock_for(c, set));
	return s != NULL;
}

int
reccache_put(struct reccache *c, uint64_t rec, const struct rec_header *h,
    const uint32_t *table)
{
	uint64_t n = rec_blocks(h->length);
	size_t set = rc_set(c, rec);
	struct rc_slot *s;
	int rc = 0;

	if (h->type != REC_WRITE || n == 0 || n > RECCACHE_TABLE_MAX || rec == 0)
		return 0;
	pthread_mutex_lock(rc_lock_for(c, set));
	/* the record's own slot, else an empty one, else the set's next victim */
	if (!(s = rc_lookup(c, set, rec)) && !(s = rc_lookup(c, set, 0))) {
		s = &c->slot[set * RECCACHE_WAYS + c->victim[set]];
		c->victim[set] = (uint8_t)((c->victim[set] + 1) % RECCACHE_WAYS);
	}
	if (s->rec)
		atomic_fetch_sub(&c->count, 1);
	s->rec = 0;
	if (s->table_cap < n) {
		uint32_t *t = realloc(s->table, n * sizeof(*t));
		if (!t) {
			rc = -ENOMEM;
			goto out;
		}
		atomic_fetch_add(&c->table_bytes, (n - s->table_cap) * sizeof(*t));
		s->table = t;
		s->table_cap = (uint32_t)n;
	}
	memcpy(s->table, table, n * sizeof(*table));
	s->hdr = *h;
	s->rec = rec;
	atomic_fetch_add(&c->count, 1);
out:
	pthread_mutex_unlock(rc_lock_for(c, set));
	return rc;
}

void
reccache_drop_segment(struct reccache *c, uint32_t segno)
{
	for (size_t set = 0; set < (size_t)1 << c->bits; set++) {
		struct rc_slot *s = &c->slot[set * RECCACHE_WAYS];
		pthread_mutex_lock(rc_lock_for(c, set));
		for (unsigned w = 0; w < RECCACHE_WAYS; w++)
			if (s[w].rec && LADDR_SEG(s[w].rec) == segno) {
				s[w].rec = 0;
				atomic_fetch_sub(&c->count, 1);
			}
		pthread_mutex_unlock(rc_lock_for(c, set));
	}
}

size_t
reccache_count(struct reccache *c)
{
	return atomic_load(&c->count);
}

size_t
reccache_memory(struct reccache *c)
{
	return sizeof(*c) + ((size_t)1 << c->bits) * (RECCACHE_WAYS * sizeof(struct rc_slot) + 1) +
	    atomic_load(&c->table_bytes);
}
