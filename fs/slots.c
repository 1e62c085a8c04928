/*
 * slots: the worker's half of the request slots and counters in the control
 * memory (common/ctlmem.h has the protocol; the supervisor's half is in
 * supervisor/faults.c, watch.c and workers.c).
 *
 * Each serving thread takes a slot at its first request and keeps it until it
 * exits (slot_release, a thread-exit destructor).  A slot says which request
 * the thread holds now (unique != 0, published last with release order),
 * since when, and counts what the thread read and answered.  In replay mode
 * the slot's request buffer holds the raw request, its header's unique
 * cleared once the request is answered.
 *
 * A slot's states, and the function performing each transition:
 *
 *   free   -> owned    slot_mine     a thread's first request (or slot_adopt,
 *                                    for the replay of a dead worker's slot)
 *   owned  -> holding  slot_fill     a request was read (unique published)
 *   holding -> owned   slot_clear    its reply was written (slot_done)
 *   owned  -> free     slot_release  the thread exited
 *
 * Ordering: the reply goes out before the slot is cleared (a death in
 * between would otherwise lose the request); so a slot may name a request
 * already answered, which a replacement finds answered (ENOENT).
 *
 * Thread-local: my_slot and its counts, written only by their thread.
 *
 * Also here, the worker's reading of the poison list the supervisor keeps
 * there (slot_poisoned): requests held by POISON_ATTEMPTS dead workers.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "worker.h"

static struct ctlmem *slot_ctl;		/* for the thread-exit destructor */
static uint32_t slot_pid;		/* ours, for the slots: getpid() is a system call */
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static __thread int my_slot = -1;
static __thread uint64_t my_taken, my_done;	/* my_slot's counts: only this thread writes them */

static void
slot_release(void *v)
{
	int i = (int)(intptr_t)v - 1;

	atomic_store(&slot_ctl->slot[i].unique, 0);
	atomic_fetch_and(&slot_ctl->slots_used, ~(UINT64_C(1) << i));
}

static void
slot_key_init(void)
{
	if (pthread_key_create(&slot_key, slot_release) != 0)
		abort();	/* at start-up, out of keys: nothing sensible to do */
}

/* From now on this thread writes slot i; its counts go on from what the slot holds. */
void
slot_adopt(struct ctlmem *c, int i)
{
	my_slot = i;
	my_taken = atomic_load_explicit(&c->slot[i].taken, memory_order_relaxed);
	my_done = atomic_load_explicit(&c->slot[i].done, memory_order_relaxed);
}

/* This thread's slot, taken at its first request; -1 if all are taken. */
int
slot_mine(struct ctlmem *c)
{
	uint64_t used;

	if (my_slot >= 0)
		return my_slot;
	pthread_once(&slot_once, slot_key_init);
	used = atomic_load(&c->slots_used);
	while (used != UINT64_MAX) {
		int i = __builtin_ctzll(~used);
		if (atomic_compare_exchange_weak(&c->slots_used, &used, used | (UINT64_C(1) << i))) {
			slot_adopt(c, i);
			c->slot[i].pid = slot_pid;
			pthread_setspecific(slot_key, (void *)(intptr_t)(i + 1));
			break;
		}
	}
	return my_slot;
}

void
slot_init(struct ctlmem *c)
{
	slot_ctl = c;
	slot_pid = (uint32_t)getpid();
}

/* This thread no longer owns a slot (the main thread, after replaying). */
void
slot_forget(void)
{
	my_slot = -1;
}

/*
 * One more request read (done = 0) or reply written (done = 1) by this
 * thread.  In its slot, which only it writes: a store of the count it keeps,
 * into the line it writes for the request anyway, and no load of that line
 * (which may be in the other core's cache).  Without a slot, the shared
 * counters take an atomic add.
 */
void
slot_count(struct ctlmem *c, int done)
{
	if (my_slot < 0)
		atomic_fetch_add_explicit(done ? &c->requests_done : &c->requests_taken, 1,
		    memory_order_relaxed);
	else if (done)
		atomic_store_explicit(&c->slot[my_slot].done, ++my_done, memory_order_relaxed);
	else
		atomic_store_explicit(&c->slot[my_slot].taken, ++my_taken, memory_order_relaxed);
}

void
slot_fill(struct ctlmem *c, int i, const void *buf, size_t n)
{
	const struct fuse_in_header *in = buf;
	struct ctl_slot *sl = &c->slot[i];

	sl->opcode = in->opcode;
	sl->nodeid = in->nodeid;
	sl->offset = 0;
	sl->size = 0;
	if ((in->opcode == FUSE_READ || in->opcode == FUSE_WRITE) &&
	    n >= sizeof(*in) + sizeof(struct fuse_read_in)) {
		/* fuse_read_in and fuse_write_in both start with fh, offset, size */
		const struct fuse_read_in *rd = (const void *)(in + 1);
		sl->offset = rd->offset;
		sl->size = rd->size;
	}
	atomic_store_explicit(&sl->start_ns, ctlmem_now_ns(), memory_order_relaxed);
	atomic_store_explicit(&sl->unique, in->unique, memory_order_release);	/* publishes the rest */
}

/* In replay mode the request in slot i's buffer is answered: it must not be re-run. */
void
slot_buf_done(struct ctlmem *c, int i)
{
	if (c->reissue == REISSUE_REPLAY) {
		struct fuse_in_header *h = (struct fuse_in_header *)ctlmem_req_buf(c, (unsigned)i);
		__atomic_store_n(&h->unique, 0, __ATOMIC_RELEASE);
	}
}

/* Slot i's request is answered: nothing held there any more. */
void
slot_done(struct ctlmem *c, int i)
{
	slot_buf_done(c, i);
	atomic_store_explicit(&c->slot[i].unique, 0, memory_order_release);
}

void
slot_clear(struct ctlmem *c, uint64_t unique)
{
	if (my_slot >= 0 && atomic_load_explicit(&c->slot[my_slot].unique, memory_order_relaxed) == unique) {
		slot_done(c, my_slot);
		return;
	}
	for (int i = 0; i < CTLMEM_SLOTS; i++)
		if (atomic_load(&c->slot[i].unique) == unique)
			slot_done(c, i);
}

/* Is this request (resent or not) on the supervisor's poison list? */
int
slot_poisoned(struct ctlmem *c, uint64_t unique)
{
	uint64_t u = unique & ~UNIQUE_RESENT;
	uint32_t n = atomic_load_explicit(&c->poison_count, memory_order_acquire);

	for (uint32_t i = 0; i < n && i < CTLMEM_POISON; i++)
		if (atomic_load(&c->poison[i]) == u)
			return 1;
	return 0;
}
