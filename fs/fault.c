/*
 * fault: fault injection (hcowctl debug fault, allowed by -o fault_injection).
 *
 * The supervisor arms it in the control memory (fault_kind, fault_op,
 * fault_count, fault_ms); every worker checks it at the points that name an
 * op: each request read (its opcode; FUSE_INIT, armed at mount by
 * -o fault_injection=init, only when named), each control request
 * (FAULT_OP_CONTROL), each log append (FAULT_OP_APPEND, through the store's
 * append hook), each step of a snapshot, clone or rollback (FAULT_OP_COPY_*,
 * through the store's copy hook: the crash rig kills inside them).
 * fault_count is taken down with compare-and-swap, so a fault armed for n
 * fires exactly n times across all threads and workers.
 */
#include <signal.h>
#include <unistd.h>

#include "hlog.h"
#include "worker.h"

void
fault_maybe(struct ctlmem *c, uint32_t op)
{
	uint32_t kind = atomic_load(&c->fault_kind), fop;
	int32_t left;

	if (kind == FAULT_NONE)
		return;
	fop = atomic_load(&c->fault_op);
	/* control requests, copy steps and INIT are only hit when named, never by "any" */
	if ((fop != FAULT_OP_ANY || op == FAULT_OP_CONTROL || op >= FAULT_OP_COPY_LOGGED ||
	    op == FUSE_INIT) && fop != op)
		return;
	left = atomic_load(&c->fault_count);
	do {
		if (left <= 0)
			return;
	} while (!atomic_compare_exchange_weak(&c->fault_count, &left, left - 1));
	atomic_fetch_add(&c->faults_fired, 1);
	hlog(HLOG_WARN, "fault injection: %s in opcode %u", kind == FAULT_CRASH ? "crash" :
	    kind == FAULT_HANG ? "hang" : "stall", op);
	switch (kind) {
	case FAULT_CRASH:
		raise(SIGSEGV);
		break;
	case FAULT_HANG:
		for (;;)
			pause();
	case FAULT_SLOW:
		usleep((useconds_t)atomic_load(&c->fault_ms) * 1000);
		break;
	}
}

void
fault_append_hook(void *arg)
{
	fault_maybe(arg, FAULT_OP_APPEND);
}

/* The store's copy hook: step s of a snapshot, clone or rollback is done (cat_lock held). */
void
fault_copy_hook(void *arg, enum copy_step s)
{
	fault_maybe(arg, FAULT_OP_COPY_LOGGED + (uint32_t)s - COPY_LOGGED);
}
