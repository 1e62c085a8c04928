/*
 * reccache: see reccache.h for the contract.
 *
 * Design: an array of slots, direct-mapped (slot = a multiplicative hash of
 * the log address), no chaining: a record that hashes to a busy slot
 * replaces its occupant.  Each slot is guarded by one of RECCACHE_LOCKS
 * mutexes (slot index modulo the count), so readers of different records
 * rarely meet, and an entry is never seen half-written.
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
	unsigned	 bits;		/* slots = 1 << bits */
	_Atomic size_t	 count;
	_Atomic size_t	 table_bytes;
	struct rc_lock	 lock[RECCACHE_LOCKS];
};

static size_t
rc_index(const struct reccache *c, uint64_t rec)
{
	/* Fibonacci hashing: records are laid out at irregular strides, mix every bit */
	return (size_t)((rec * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - c->bits));
}

static pthread_mutex_t *
rc_lock_for(struct reccache *c, size_t i)
{
	return &c->lock[i & (RECCACHE_LOCKS - 1)].m;
}

struct reccache *
reccache_new(unsigned slots)
{
	struct reccache *c;
	unsigned bits = 1;

	while ((1u << bits) < slots && bits < 30)
		bits++;
	if (!(c = aligned_alloc(64, sizeof(*c))))
		return NULL;
	memset(c, 0, sizeof(*c));
	c->bits = bits;
	if (!(c->slot = calloc((size_t)1 << bits, sizeof(*c->slot)))) {
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
	for (size_t i = 0; i < (size_t)1 << c->bits; i++)
		free(c->slot[i].table);
	for (int i = 0; i < RECCACHE_LOCKS; i++)
		pthread_mutex_destroy(&c->lock[i].m);
	free(c->slot);
	free(c);
}

int
reccache_find(struct reccache *c, uint64_t rec,
    void (*fn)(const struct rec_header *h, const uint32_t *table, void *arg), void *arg)
{
	size_t i = rc_index(c, rec);
	struct rc_slot *s = &c->slot[i];
	int found;

	pthread_mutex_lock(rc_lock_for(c, i));
	found = s->rec == rec;
	if (found)
		fn(&s->hdr, s->table, arg);
	pthread_mutex_unlock(rc_lock_for(c, i));
	return found;
}

int
reccache_put(struct reccache *c, uint64_t rec, const struct rec_header *h,
    const uint32_t *table)
{
	uint64_t n = rec_blocks(h->length);
	size_t i = rc_index(c, rec);
	struct rc_slot *s = &c->slot[i];
	int rc = 0;

	if (h->type != REC_WRITE || n == 0 || n > RECCACHE_TABLE_MAX || rec == 0)
		return 0;
	pthread_mutex_lock(rc_lock_for(c, i));
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
	pthread_mutex_unlock(rc_lock_for(c, i));
	return rc;
}

void
reccache_drop_segment(struct reccache *c, uint32_t segno)
{
	for (size_t i = 0; i < (size_t)1 << c->bits; i++) {
		struct rc_slot *s = &c->slot[i];
		pthread_mutex_lock(rc_lock_for(c, i));
		if (s->rec && LADDR_SEG(s->rec) == segno) {
			s->rec = 0;
			atomic_fetch_sub(&c->count, 1);
		}
		pthread_mutex_unlock(rc_lock_for(c, i));
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
	return sizeof(*c) + ((size_t)1 << c->bits) * sizeof(struct rc_slot) +
	    atomic_load(&c->table_bytes);
}
