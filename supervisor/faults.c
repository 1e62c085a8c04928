/*
 * faults: the supervisor's record of what went wrong with its workers.
 *
 * It owns three ledgers in struct sup, all rings that keep the newest:
 *
 *   faults[FAULTS_KEPT]    each worker death other than a deliberate restart:
 *                          when, which pid, why, how long the hang took to see
 *                          and the replacement to serve (recover_ms < 0 while
 *                          it is being replaced; workers.c fills it in)
 *   suspects[SUSPECTS_KEPT] the requests dead workers held, with how many
 *                          workers each has outlived
 *   poison_what[POISON_KEPT] the requests found poison, for status; the
 *                          uniques themselves go in the control memory
 *                          (ctl->poison), where every worker checks them
 *
 * Invariant: a request enters ctl->poison exactly once, when the
 * POISON_ATTEMPTS-th worker that held it dies; from then on workers answer it
 * EIO without running it.
 *
 * The bottom of the supervisor's ladder: it calls nothing of the others.
 */
#include <stdio.h>
#include <time.h>

#include <linux/fuse.h>

#include "hlog.h"
#include "supervisor.h"

/* A new entry in the ring of faults, its recovery still to come. */
struct fault *
fault_record(struct sup *s, pid_t pid, enum cause cause, const char *what)
{
	struct fault *f = &s->faults[s->nfaults % FAULTS_KEPT];

	f->when = time(NULL);
	f->pid = pid;
	f->cause = cause;
	snprintf(f->what, sizeof(f->what), "%s", what);
	f->detect_ms = 0;
	f->recover_ms = -1;
	s->nfaults++;
	return f;
}

const char *
fault_cause_name(enum cause c)
{
	static const char *const names[CAUSE_COUNT] = { "crash", "hang", "exit", "restart" };
	return names[c];
}

static const char *
opcode_name(uint32_t op)
{
	switch (op) {
	case FUSE_LOOKUP: return "LOOKUP";
	case FUSE_GETATTR: return "GETATTR";
	case FUSE_SETATTR: return "SETATTR";
	case FUSE_UNLINK: return "UNLINK";
	case FUSE_RENAME: case FUSE_RENAME2: return "RENAME";
	case FUSE_OPEN: return "OPEN";
	case FUSE_READ: return "READ";
	case FUSE_WRITE: return "WRITE";
	case FUSE_STATFS: return "STATFS";
	case FUSE_RELEASE: return "RELEASE";
	case FUSE_FSYNC: return "FSYNC";
	case FUSE_FLUSH: return "FLUSH";
	case FUSE_READDIR: return "READDIR";
	case FUSE_FALLOCATE: return "FALLOCATE";
	case FUSE_LSEEK: return "LSEEK";
	default: return NULL;
	}
}

void
fault_describe_request(const struct ctl_slot *sl, uint64_t unique, char *buf, size_t len)
{
	const char *name = opcode_name(sl->opcode);
	char op[24];
	int n;

	if (!name) {
		snprintf(op, sizeof(op), "opcode %u", sl->opcode);
		name = op;
	}
	n = snprintf(buf, len, "%s node %llu", name, (unsigned long long)sl->nodeid);
	if ((sl->opcode == FUSE_READ || sl->opcode == FUSE_WRITE) && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " [%llu+%u]", (unsigned long long)sl->offset, sl->size);
	(void)unique;
}

/*
 * The requests a dead worker held are suspects: one that was held by
 * POISON_ATTEMPTS dead workers is poison, and workers answer it EIO from now
 * on.  After a hang only the stuck requests are suspects; after a deliberate
 * restart none is.
 */
void
fault_blame(struct sup *s, enum cause cause)
{
	int64_t now_ns = ctlmem_now_ns();

	if (cause == CAUSE_RESTART || cause == CAUSE_EXIT)
		return;
	for (int i = 0; i < CTLMEM_SLOTS; i++) {
		struct ctl_slot *sl = &s->ctl->slot[i];
		uint64_t u = atomic_load_explicit(&sl->unique, memory_order_acquire) & ~UNIQUE_RESENT;
		struct suspect *x = NULL;

		if (!u)
			continue;
		if (cause == CAUSE_HANG &&
		    (double)(now_ns - atomic_load(&sl->start_ns)) / 1e6 < s->o.hang_timeout_ms / 2.0)
			continue;	/* it was progressing; the stuck one is older */
		for (unsigned j = 0; j < SUSPECTS_KEPT && j < s->nsuspects; j++)
			if (s->suspects[j].unique == u)
				x = &s->suspects[j];
		if (!x) {
			x = &s->suspects[s->nsuspects++ % SUSPECTS_KEPT];
			x->unique = u;
			x->deaths = 0;
			fault_describe_request(sl, u, x->what, sizeof(x->what));
		}
		if (++x->deaths == POISON_ATTEMPTS) {
			atomic_store(&s->ctl->poison[s->npoison % CTLMEM_POISON], u);
			/* past CTLMEM_POISON entries the oldest are overwritten; the count stays full */
			if (s->npoison < CTLMEM_POISON)
				atomic_store_explicit(&s->ctl->poison_count, s->npoison + 1,
				    memory_order_release);
			snprintf(s->poison_what[s->npoison % POISON_KEPT], sizeof(s->poison_what[0]),
			    "%s (request %llx)", x->what, (unsigned long long)u);
			s->npoison++;
			hlog(HLOG_ERROR, "request %llx (%s) was held by %u workers that died; it is "
			    "answered EIO from now on", (unsigned long long)u, x->what, x->deaths);
		}
	}
}
