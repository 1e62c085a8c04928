/*
 * pool: the threads that serve the session's requests.
 *
 * libfuse's own loop would allocate each thread's receive buffer itself; this
 * pool chooses it: a huge page (recv_buf_alloc()) with the kernel's resend,
 * the thread's slot in the control memory in replay mode (the request is then
 * its own record, no copy).  Either way every page is faulted in before the
 * first read (see session_populate()).  Like libfuse's loop, the pool grows by
 * one when a request takes the last idle thread, up to the --threads limit,
 * and never shrinks.
 *
 * The gate: the first threads start before the store opens and wait at it,
 * so their buffers are faulted in on the other core while the store loads (or
 * while a standby waits).  The pool's states, and the function performing
 * each transition:
 *
 *   (none)  -> gated    pool_start      two threads, waiting at the gate
 *   gated   -> serving  pool_open_gate  the worker was told "start"
 *   serving -> ended    serve_thread    a read failed or the fd reported
 *                                       ENODEV (unmounted): the session exits
 *   ended   -> joined   pool_join       every thread has returned
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <linux/fuse.h>

#include "hlog.h"
#include "worker.h"

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;
	int		 open;
	unsigned	 max;		/* --threads */
	_Atomic unsigned started;
	_Atomic unsigned idle;		/* threads waiting in read() */
	_Atomic int	 error;		/* a read error that ended the loop, -errno */
	pthread_t	 tid[WORKER_MAX_THREADS];
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *serve_thread(void *arg);

/* Start one more serving thread if the limit allows; 0 or -errno. */
static int
pool_grow(struct worker *w)
{
	unsigned n = atomic_load(&pool.started);
	int rc;

	do {
		if (n >= pool.max)
			return 0;
	} while (!atomic_compare_exchange_weak(&pool.started, &n, n + 1));
	atomic_fetch_add(&pool.idle, 1);	/* counted idle until its first request */
	if ((rc = pthread_create(&pool.tid[n], NULL, serve_thread, w)) != 0) {
		atomic_fetch_sub(&pool.idle, 1);
		pool.tid[n] = 0;
		hlog(HLOG_WARN, "cannot start a serving thread: %s", strerror(rc));
		return -rc;
	}
	pthread_setname_np(pool.tid[n], "hcowfs-serve");	/* for top -H and perf */
	return 0;
}

void
pool_open_gate(void)
{
	pthread_mutex_lock(&pool.mu);
	pool.open = 1;
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.mu);
}

/*
 * A receive buffer of len bytes in transparent huge pages where the system
 * allows them (madvise mode): one 2 MiB page instead of 257 small ones.  A
 * worker killed with small pages spent ~1 ms unmapping them before its
 * death was reported (the supervisor's SIGCHLD); huge pages unmap in one
 * step.  NULL if out of memory.
 */
static void *
recv_buf_alloc(size_t len)
{
	const size_t huge = (size_t)2 << 20;
	size_t size = (len + huge - 1) & ~(huge - 1);
	char *p = mmap(NULL, size + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	munmap(a + size, (size_t)(p + size + huge - (a + size)));
	madvise(a, size, MADV_HUGEPAGE);
	return a;
}

static void
recv_buf_free(void *buf, size_t len)
{
	const size_t huge = (size_t)2 << 20;

	munmap(buf, (len + huge - 1) & ~(huge - 1));
}

static void *
serve_thread(void *arg)
{
	struct worker *w = arg;
	struct fuse_buf fbuf;
	int replay, slot = -1;	/* slot: whose buffer is the receive buffer (replay mode) */

	/*
	 * A huge page unless replay is known to be the mode: the first worker
	 * starts before the mount, and the supervisor chooses the mode there.
	 */
	memset(&fbuf, 0, sizeof(fbuf));
	if (w->ctl->reissue != REISSUE_REPLAY && (fbuf.mem = recv_buf_alloc(CTLMEM_REQ_MAX)) != NULL)
		session_populate(fbuf.mem, CTLMEM_REQ_MAX);
	pthread_mutex_lock(&pool.mu);
	while (!pool.open)
		pthread_cond_wait(&pool.cond, &pool.mu);
	pthread_mutex_unlock(&pool.mu);
	/*
	 * Past the gate the mode is chosen, and the same for every thread
	 * (deciding it before made the first worker's threads differ with the
	 * scheduling).  Slots only now: a standby's threads wait at the gate
	 * while the serving worker owns them.
	 */
	replay = w->ctl->reissue == REISSUE_REPLAY;
	if (replay && (slot = slot_mine(w->ctl)) >= 0) {
		if (fbuf.mem)
			recv_buf_free(fbuf.mem, CTLMEM_REQ_MAX);
		fbuf.mem = ctlmem_req_buf(w->ctl, (unsigned)slot);	/* the record itself */
		session_populate(fbuf.mem, CTLMEM_REQ_MAX);
	}
	for (;;) {
		int res = fuse_session_receive_buf(w->se, &fbuf);
		if (atomic_fetch_sub(&pool.idle, 1) == 1 && res > 0)
			pool_grow(w);	/* that was the last idle thread */
		if (res == -EINTR) {
			atomic_fetch_add(&pool.idle, 1);
			continue;
		}
		if (res <= 0) {
			if (res < 0)
				atomic_store(&pool.error, res);
			fuse_session_exit(w->se);
			break;
		}
		fuse_session_process_buf(w->se, &fbuf);
		if (slot >= 0 && fbuf.mem == ctlmem_req_buf(w->ctl, (unsigned)slot) &&
		    !ctlmem_opcode_tracked(((const struct fuse_in_header *)fbuf.mem)->opcode))
			slot_buf_done(w->ctl, slot);	/* parsed: io_read left it */
		atomic_fetch_add(&pool.idle, 1);
	}
	return NULL;	/* the buffer goes with the process */
}

/* Wait for every serving thread to end (the session ended); 0 or -errno. */
int
pool_join(void)
{
	for (unsigned i = 0; i < atomic_load(&pool.started); i++)
		if (pool.tid[i])
			pthread_join(pool.tid[i], NULL);
	return atomic_load(&pool.error);
}

void
pool_start(struct worker *w, unsigned threads)
{
	pool.max = threads;
	for (int i = 0; i < 2; i++)
		pool_grow(w);	/* they wait at the gate */
}
