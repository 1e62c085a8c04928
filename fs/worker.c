/*
 * worker: the process that serves one mount's FUSE requests.
 *
 * Started (fork + exec) by the supervisor, which keeps the /dev/fuse fd, the
 * control memory and the mount; the worker inherits the fds and may be
 * killed at any instruction.  Life of a worker:
 *
 *   session     -> libfuse session over the inherited fd (custom io)
 *   [takeover]  -> replay the saved FUSE_INIT into the new session, reply dropped
 *   [standby]   -> started ahead of need (--standby): all of the above done,
 *                  and the catalog opened; waits for "go" (then it takes
 *                  over) or for the channel to close (then exit 0)
 *   open store  -> catalog + log replay; on failure report it and exit 2
 *   ready       -> tell the supervisor ("0 0 5\nready"), wait for "start"
 *                  (the first worker's fd is mounted only after ready)
 *   [takeover]  -> FUSE_NOTIFY_RESEND: the kernel requeues every request the
 *                  dead worker had read but not answered
 *   serve       -> a pool of serving threads (started early, waiting at a
 *                  gate until now) + a control thread
 *   unmounted   -> the fd reports ENODEV: final checkpoint, exit 0
 *
 * Exit status: 0 unmounted, 2 could not start (the supervisor does not
 * retry), anything else is a fault to recover from.
 *
 * Rule: never fuse_session_destroy(): it would close the shared fd.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "hlog.h"
#include "proto.h"
#include "worker.h"

#define WORKER_MAX_THREADS	32	/* <= CTLMEM_SLOTS */
#define WORKER_THREADS_DEFAULT	12	/* see --threads */
#define NOTIFY_RESEND		7	/* FUSE_NOTIFY_RESEND, Linux 6.9+ */

/* libfuse reads and handles a request on the same thread: what io_read saw applies to the op. */
static __thread int request_resent;

int
worker_request_resent(void)
{
	return request_resent;
}

/* Set while this thread feeds the saved INIT to the session: drop its reply. */
static __thread int replaying_init;
static __thread int replayed_init_error;

/*
 * If this process dies while the kernel copies a request into a page of the
 * receive buffer that was never touched, the kernel fails that request with
 * EIO and no resend can save it.  So each thread's buffer (libfuse keeps one
 * per thread) is faulted in before its first read.
 */
static __thread void *populated_buf;

static void
populate(void *buf, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)buf & ~(uintptr_t)(page - 1);
	uintptr_t end = ((uintptr_t)buf + len + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);

	if (madvise((void *)start, end - start, MADV_POPULATE_WRITE) < 0)
		memset(buf, 0, len);	/* older kernel: touch it by hand */
}

/* ---- request slots (ctlmem.h has the protocol) ------------------------- */

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
static void
slot_adopt(struct ctlmem *c, int i)
{
	my_slot = i;
	my_taken = atomic_load_explicit(&c->slot[i].taken, memory_order_relaxed);
	my_done = atomic_load_explicit(&c->slot[i].done, memory_order_relaxed);
}

/* This thread's slot, taken at its first request; -1 if all are taken. */
static int
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

/*
 * One more request read (count_taken) or reply written (count_done) by this
 * thread.  In its slot, which only it writes: a store of the count it keeps,
 * into the line it writes for the request anyway, and no load of that line
 * (which may be in the other core's cache).  Without a slot, the shared
 * counters take an atomic add.
 */
static void
count_taken(struct ctlmem *c)
{
	if (my_slot >= 0)
		atomic_store_explicit(&c->slot[my_slot].taken, ++my_taken, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&c->requests_taken, 1, memory_order_relaxed);
}

static void
count_done(struct ctlmem *c)
{
	if (my_slot >= 0)
		atomic_store_explicit(&c->slot[my_slot].done, ++my_done, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&c->requests_done, 1, memory_order_relaxed);
}

static void
slot_fill(struct worker *w, int i, const void *buf, size_t n)
{
	const struct fuse_in_header *in = buf;
	struct ctl_slot *sl = &w->ctl->slot[i];

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
static void
slot_buf_done(struct ctlmem *c, int i)
{
	if (c->reissue == REISSUE_REPLAY) {
		struct fuse_in_header *h = (struct fuse_in_header *)ctlmem_req_buf(c, (unsigned)i);
		__atomic_store_n(&h->unique, 0, __ATOMIC_RELEASE);
	}
}

/* Slot i's request is answered: nothing held there any more. */
static void
slot_done(struct ctlmem *c, int i)
{
	slot_buf_done(c, i);
	atomic_store_explicit(&c->slot[i].unique, 0, memory_order_release);
}

static void
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

static int
request_poisoned(struct ctlmem *c, uint64_t unique)
{
	uint64_t u = unique & ~UNIQUE_RESENT;
	uint32_t n = atomic_load_explicit(&c->poison_count, memory_order_acquire);

	for (uint32_t i = 0; i < n && i < CTLMEM_POISON; i++)
		if (atomic_load(&c->poison[i]) == u)
			return 1;
	return 0;
}

/*
 * Answer a request EIO without running it.  In replay mode a slot can still
 * hold a request its worker answered just before dying (the reply goes out
 * before the slot is cleared, or a death in between would lose it): the
 * kernel no longer knows it (ENOENT), and it is not counted as failed.
 */
static void
reply_eio(struct worker *w, uint64_t unique)
{
	struct fuse_out_header out = { .len = sizeof(out), .error = -EIO, .unique = unique };

	count_done(w->ctl);
	if (write(w->fuse_fd, &out, sizeof(out)) < 0) {
		if (errno == ENOENT)
			hlog(HLOG_INFO, "request %llx was answered before its worker died; nothing "
			    "to fail", (unsigned long long)unique);
		else
			hlog(HLOG_WARN, "cannot fail request %llx: %s", (unsigned long long)unique,
			    strerror(errno));
		return;
	}
	atomic_fetch_add(&w->ctl->poisoned, 1);
}

/* ---- fault injection (hcowctl debug fault, -o fault_injection) --------- */

static void
fault_maybe(struct ctlmem *c, uint32_t op)
{
	uint32_t kind = atomic_load(&c->fault_kind), fop;
	int32_t left;

	if (kind == FAULT_NONE)
		return;
	fop = atomic_load(&c->fault_op);
	if ((fop != FAULT_OP_ANY || op == FAULT_OP_CONTROL) && fop != op)
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

static void
append_fault_hook(void *arg)
{
	fault_maybe(arg, FAULT_OP_APPEND);
}

/* The first worker keeps the connection's INIT for its replacements. */
static void
init_save(struct worker *w, const void *buf, ssize_t n)
{
	const struct fuse_in_header *in = buf;

	if (n >= (ssize_t)sizeof(*in) && in->opcode == FUSE_INIT && (size_t)n <= CTLMEM_INIT_MAX &&
	    atomic_load(&w->ctl->init_len) == 0) {
		memcpy(w->ctl->init_req, buf, (size_t)n);
		atomic_store_explicit(&w->ctl->init_len, (uint32_t)n, memory_order_release);
	}
}

static ssize_t
io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct worker *w = userdata;

	if (buf != populated_buf) {
		/* a buffer libfuse allocated (the pool could not give this thread one) */
		populate(buf, len);
		populated_buf = buf;
	}
	if (!w->ctl->watch) {
		/* -o watch=off: no bookkeeping at all (benchmark of its cost) */
		ssize_t n = read(fd, buf, len);
		init_save(w, buf, n);
		return n;
	}
	for (;;) {
		const struct fuse_in_header *in = buf;
		int slot = slot_mine(w->ctl);
		ssize_t n;

		if (slot >= 0 && w->ctl->reissue == REISSUE_REPLAY) {
			/*
			 * Replay mode: the kernel writes the request straight into
			 * shared memory, so from the moment read() returns a
			 * replacement can re-run it; the buffer's header is the
			 * record (unique 0 = nothing held), cleared once answered.
			 */
			uint8_t *sb = ctlmem_req_buf(w->ctl, (unsigned)slot);
			n = read(fd, sb, len < CTLMEM_REQ_MAX ? len : CTLMEM_REQ_MAX);
			if (n > 0 && sb != buf)
				memcpy(buf, sb, (size_t)n);
		} else {
			n = read(fd, buf, len);
		}
		if (n < (ssize_t)sizeof(struct fuse_in_header))
			return n;
		request_resent = (in->unique & UNIQUE_RESENT) != 0;
		count_taken(w->ctl);
		init_save(w, buf, n);
		if (!ctlmem_opcode_tracked(in->opcode)) {
			/*
			 * No reply, nothing to re-run.  Where the slot's buffer is
			 * the one libfuse parses, its unique must survive until
			 * then (INIT's reply carries it): serve_thread clears it.
			 */
			if (slot >= 0 && ctlmem_req_buf(w->ctl, (unsigned)slot) != (uint8_t *)buf)
				slot_buf_done(w->ctl, slot);
			return n;
		}
		if (request_poisoned(w->ctl, in->unique)) {
			hlog(HLOG_ERROR, "request %llx (opcode %u, node %llu) killed %d workers; "
			    "answering it EIO", (unsigned long long)(in->unique & ~UNIQUE_RESENT),
			    in->opcode, (unsigned long long)in->nodeid, POISON_ATTEMPTS);
			reply_eio(w, in->unique);
			if (slot >= 0)
				slot_buf_done(w->ctl, slot);
			continue;
		}
		if (slot >= 0)
			slot_fill(w, slot, buf, (size_t)n);
		if (w->fault_injection)
			fault_maybe(w->ctl, in->opcode);
		return n;
	}
}

static ssize_t
io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct worker *w = userdata;
	const struct fuse_out_header *out = iov[0].iov_base;
	ssize_t n;

	if (replaying_init) {
		size_t total = 0;
		for (int i = 0; i < count; i++)
			total += iov[i].iov_len;
		replayed_init_error = out->error;
		return (ssize_t)total;	/* the kernel had its answer from the first worker */
	}
	n = writev(fd, iov, count);
	if (out->unique != 0 && w->ctl->watch) {
		count_done(w->ctl);
		slot_clear(w->ctl, out->unique);
	}
	return n;
}

static const struct fuse_custom_io worker_io = {
	.read = io_read,
	.writev = io_writev,
};

/* Feed the first worker's INIT to our fresh session.  0 or -errno (-ENOENT: none saved yet). */
static int
worker_replay_init(struct worker *w)
{
	uint32_t len = atomic_load_explicit(&w->ctl->init_len, memory_order_acquire);
	struct fuse_buf fbuf;
	char *copy;

	if (len == 0)
		return -ENOENT;		/* no worker has read it yet */
	if (!(copy = malloc(len)))
		return -ENOMEM;
	memcpy(copy, w->ctl->init_req, len);
	memset(&fbuf, 0, sizeof(fbuf));
	fbuf.mem = copy;
	fbuf.size = len;
	replaying_init = 1;
	replayed_init_error = -EPROTO;
	fuse_session_process_buf(w->se, &fbuf);
	replaying_init = 0;
	free(copy);
	return replayed_init_error;
}

/*
 * The serving threads.  libfuse's own loop would allocate each thread's
 * receive buffer itself; this pool chooses it: a huge page (recv_buf_alloc())
 * with the kernel's resend, the thread's slot in the control memory in replay
 * mode (the request is then its own record, no copy).  Either way every page
 * is faulted in before the first read (see populate()).  Like libfuse's loop,
 * the pool grows by one when a request takes the last idle thread, up to the
 * --threads limit, and never shrinks.  The first threads start before the
 * store opens and wait at the gate, so their buffers are faulted in on the
 * other core while the store loads (or while a standby waits).
 */
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

static void
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
	int replay;

	/*
	 * A huge page unless replay is known to be the mode: the first worker
	 * starts before the mount, and the supervisor chooses the mode there.
	 */
	memset(&fbuf, 0, sizeof(fbuf));
	if (w->ctl->reissue != REISSUE_REPLAY && (fbuf.mem = recv_buf_alloc(CTLMEM_REQ_MAX)) != NULL) {
		populate(fbuf.mem, CTLMEM_REQ_MAX);
		populated_buf = fbuf.mem;
	}
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
	if (replay && slot_mine(w->ctl) >= 0) {
		if (fbuf.mem)
			recv_buf_free(fbuf.mem, CTLMEM_REQ_MAX);
		fbuf.mem = ctlmem_req_buf(w->ctl, (unsigned)my_slot);	/* the record itself */
		populate(fbuf.mem, CTLMEM_REQ_MAX);
		populated_buf = fbuf.mem;
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
		if (replay && my_slot >= 0 && fbuf.mem == ctlmem_req_buf(w->ctl, (unsigned)my_slot) &&
		    !ctlmem_opcode_tracked(((const struct fuse_in_header *)fbuf.mem)->opcode))
			slot_buf_done(w->ctl, my_slot);	/* parsed: io_read left it */
		atomic_fetch_add(&pool.idle, 1);
	}
	return NULL;	/* the buffer goes with the process */
}

/* Wait for every serving thread to end (the session ended); 0 or -errno. */
static int
pool_join(void)
{
	for (unsigned i = 0; i < atomic_load(&pool.started); i++)
		if (pool.tid[i])
			pthread_join(pool.tid[i], NULL);
	return atomic_load(&pool.error);
}

/* Ask the kernel to requeue what the previous worker held.  0 or -errno. */
static int
worker_resend(struct worker *w)
{
	struct fuse_out_header out = { .len = sizeof(out), .error = NOTIFY_RESEND, .unique = 0 };

	if (write(w->fuse_fd, &out, sizeof(out)) != (ssize_t)sizeof(out))
		return -errno;
	return 0;
}

/*
 * Replay mode: re-run the requests the dead worker held (their bytes are in
 * the slots), on this thread, before serving anything new.  Each keeps its
 * slot until answered, so if it kills us too the next worker sees it again
 * and the supervisor counts it.
 */
static void
worker_replay_slots(struct worker *w)
{
	char *copy = malloc(CTLMEM_REQ_MAX);
	int replayed = 0;

	if (!copy)
		return;
	for (int i = 0; i < CTLMEM_SLOTS; i++) {
		struct ctl_slot *sl = &w->ctl->slot[i];
		const struct fuse_in_header *h = (const void *)ctlmem_req_buf(w->ctl, (unsigned)i);
		uint64_t u = __atomic_load_n(&h->unique, __ATOMIC_ACQUIRE);
		uint32_t len = h->len;
		struct fuse_buf fbuf;

		if (!u || len < sizeof(struct fuse_in_header) || len > CTLMEM_REQ_MAX)
			continue;
		if (!ctlmem_opcode_tracked(h->opcode)) {
			slot_done(w->ctl, i);	/* read, never to be answered: nothing held */
			continue;
		}
		memcpy(copy, h, len);
		slot_adopt(w->ctl, i);	/* its reply clears it; no serving thread has slots yet */
		if (request_poisoned(w->ctl, u)) {
			reply_eio(w, u);
			slot_done(w->ctl, i);
			continue;
		}
		atomic_store(&sl->start_ns, ctlmem_now_ns());
		if (w->fault_injection)
			fault_maybe(w->ctl, ((const struct fuse_in_header *)copy)->opcode);
		memset(&fbuf, 0, sizeof(fbuf));
		fbuf.mem = copy;
		fbuf.size = len;
		request_resent = 1;
		fuse_session_process_buf(w->se, &fbuf);
		request_resent = 0;
		slot_done(w->ctl, i);
		replayed++;
	}
	my_slot = -1;
	free(copy);
	if (replayed)
		hlog(HLOG_INFO, "re-ran %d requests the previous worker held", replayed);
}

/* Send one framed reply to the supervisor. */
static int
worker_reply(struct worker *w, unsigned long long id, int err, const char *body, size_t len)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "%llu %d %zu\n", id, err, len);
	int rc = proto_write_all(w->ctl_fd, head, (size_t)n);

	return rc < 0 ? rc : proto_write_all(w->ctl_fd, body, len);
}

static void *
control_thread(void *arg)
{
	struct worker *w = arg;
	char line[PROTO_LINE_MAX + 32];
	struct sbuf out = SBUF_INIT;

	for (;;) {
		unsigned long long id;
		char *rest;
		ssize_t n = proto_read_line(w->ctl_fd, line, sizeof(line));
		int err;

		if (n <= 0) {
			if (n < 0 && n != -E2BIG)
				hlog(HLOG_WARN, "control channel: %s", strerror((int)-n));
			if (n == -E2BIG)
				continue;
			hlog(HLOG_WARN, "supervisor gone; still serving the mount without it");
			break;
		}
		if (!(rest = proto_parse_request_id(line, &id))) {
			hlog(HLOG_WARN, "malformed control request from the supervisor");
			continue;
		}
		sbuf_reset(&out);
		fault_maybe(w->ctl, FAULT_OP_CONTROL);
		err = control_handle(w, rest, &out);
		if (out.oom) {
			sbuf_release(&out);
			err = ENOMEM;
		}
		if (worker_reply(w, id, err, sbuf_str(&out), out.len) < 0)
			break;
	}
	sbuf_release(&out);
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr, "usage: hcowfs-worker --fuse-fd N --ctl-fd N --shm-fd N --datadir DIR "
	    "--tmpldir DIR [--takeover | --standby] [--segment-size BYTES] [--checkpoint-ms MS] [--threads N]\n"
	    "hcowfs-worker is started by mount.hcowfs, not by hand\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "fuse-fd", required_argument, NULL, 'f' },
		{ "ctl-fd", required_argument, NULL, 'c' },
		{ "shm-fd", required_argument, NULL, 'm' },
		{ "datadir", required_argument, NULL, 'd' },
		{ "tmpldir", required_argument, NULL, 't' },
		{ "takeover", no_argument, NULL, 'T' },
		{ "segment-size", required_argument, NULL, 's' },
		{ "checkpoint-ms", required_argument, NULL, 'p' },
		{ "fault-injection", no_argument, NULL, 'F' },
		{ "threads", required_argument, NULL, 'n' },
		{ "standby", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 }
	};
	/* static: the session is never destroyed (see Rule) but stays reachable to the end */
	static struct worker w = { .fuse_fd = -1, .ctl_fd = -1 };
	struct store_opts so = { 0 };
	char *fargv[] = { "hcowfs-worker", NULL };
	struct fuse_args fargs = FUSE_ARGS_INIT(1, fargv);
	char err[512] = "", line[64];
	int shm_fd = -1, takeover = 0, standby = 0, opt, rc;
	unsigned threads = WORKER_THREADS_DEFAULT;

	hlog_init("hcowfs-worker", HLOG_INFO);
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': w.fuse_fd = atoi(optarg); break;
		case 'c': w.ctl_fd = atoi(optarg); break;
		case 'm': shm_fd = atoi(optarg); break;
		case 'd': so.datadir = optarg; break;
		case 't': so.tmpldir = optarg; break;
		case 'T': takeover = 1; break;
		case 's': so.segment_size = strtoull(optarg, NULL, 10); break;
		case 'p': so.checkpoint_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'F': w.fault_injection = 1; break;
		case 'S': standby = 1; break;
		case 'n':
			threads = (unsigned)strtoul(optarg, NULL, 10);
			if (threads < 1 || threads > WORKER_MAX_THREADS)
				usage();
			break;
		default: usage();
		}
	}
	if (w.fuse_fd < 0 || w.ctl_fd < 0 || shm_fd < 0 || !so.datadir || !so.tmpldir)
		usage();
	signal(SIGPIPE, SIG_IGN);

	{
		struct stat sb;
		if (fstat(shm_fd, &sb) < 0 || (uint64_t)sb.st_size < ctlmem_size())
			die(2, "control memory is not usable (is this worker from the same build as the supervisor?)");
		w.ctl = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
	}
	if (w.ctl == MAP_FAILED || w.ctl->magic != CTLMEM_MAGIC || w.ctl->version != CTLMEM_VERSION)
		die(2, "control memory is not usable (is this worker from the same build as the supervisor?)");
	slot_ctl = w.ctl;
	slot_pid = (uint32_t)getpid();
	/* touch the pages now: a fault in a page first mapped mid-request can cost that request */
	madvise(w.ctl, sizeof(struct ctlmem), MADV_POPULATE_WRITE);

	pool.max = threads;
	for (int i = 0; i < 2; i++)
		pool_grow(&w);	/* they wait at the gate */
	/* the session takes no store: a standby sets it up ahead of need too */
	w.se = fuse_session_new(&fargs, &fsops, sizeof(fsops), &w);
	fuse_opt_free_args(&fargs);	/* parsing them allocated a copy */
	if (!w.se || fuse_session_custom_io(w.se, &worker_io, w.fuse_fd) < 0) {
		snprintf(err, sizeof(err), "cannot set up the FUSE session");
		goto fail;
	}
	if ((takeover || standby) && (rc = worker_replay_init(&w)) != 0) {
		if (rc == -ENOENT && takeover) {
			/*
			 * The first worker died before any thread read INIT (a
			 * crash at start, or one in a control request that came
			 * first): the kernel still holds it, so this worker takes
			 * it as the first one would have.  (Without this, every
			 * replacement exited and the mount never served.)
			 */
			hlog(HLOG_WARN, "no saved FUSE_INIT: the previous worker died before reading "
			    "it; this one takes it from the kernel");
		} else {
			snprintf(err, sizeof(err), "cannot take over the FUSE session: saved INIT %s (%s)",
			    rc == -ENOENT ? "missing" : "refused", strerror(rc < 0 ? -rc : rc));
			goto fail;
		}
	}
	if (standby) {
		/*
		 * Started ahead of need: exec, libraries, the session, the
		 * catalog's connection and the first threads' buffers are done.
		 * The supervisor says "go" when the serving worker has died, or
		 * closes the channel if it wants us gone.
		 */
		so.catalog = store_catalog_preopen(so.datadir);
		if (proto_read_line(w.ctl_fd, line, sizeof(line)) <= 0 || strcmp(line, "go") != 0) {
			store_catalog_release(so.catalog);	/* not needed after all */
			return 0;
		}
		takeover = 1;
	}

	so.purge_unlinked = !takeover;
	so.create = !takeover;
	so.takeover = takeover;
	so.template_leases = 1;	/* the worker owns its process: see tmpl_lease() */
	so.snap_area = ctlmem_snap(w.ctl);
	so.snap_cap = CTLMEM_SNAP_MAX;
	if ((rc = store_open(&so, &w.st, err, sizeof(err))) < 0) {
		hlog(HLOG_ERROR, "%s", err);
		worker_reply(&w, 0, -rc, err, strlen(err));
		return 2;
	}
	{
		/* "ready", then what the admin must hear at mount (mount.hcowfs prints it) */
		struct sbuf ready = SBUF_INIT;
		sbuf_addstr(&ready, "ready\n");
		store_problems(w.st, &ready);
		rc = worker_reply(&w, 0, 0, sbuf_str(&ready), ready.len);
		sbuf_release(&ready);
		if (rc < 0)
			return 1;
	}
	rc = (int)proto_read_line(w.ctl_fd, line, sizeof(line));
	if (rc == 0) {
		/* the mount failed (the supervisor's log says why) and we are dismissed */
		hlog(HLOG_INFO, "supervisor closed the control channel before start; exiting");
		exit(1);
	}
	if (rc < 0 || strcmp(line, "start") != 0)
		die(1, "supervisor did not say start");
	if (w.fault_injection)
		store_set_append_hook(w.st, append_fault_hook, w.ctl);
	if (takeover && w.ctl->reissue == REISSUE_REPLAY)
		worker_replay_slots(&w);
	else if (takeover && (rc = worker_resend(&w)) < 0)
		hlog(HLOG_WARN, "kernel refused FUSE_NOTIFY_RESEND (%s): requests held by the "
		    "previous worker are not reissued", strerror(-rc));
	{
		pthread_t t;
		if (pthread_create(&t, NULL, control_thread, &w) == 0) {
			pthread_setname_np(t, "hcowfs-ctl");
			pthread_detach(t);
		} else
			hlog(HLOG_WARN, "cannot start the control thread; hcowctl will time out");
	}
	hlog(HLOG_INFO, "serving%s", takeover ? " (took over from a previous worker)" : "");

	/*
	 * Few threads: the kernel hands a request to the thread idle longest, so
	 * a big pool wakes a cold thread (cache, scheduler) for each request;
	 * measured with bench/bench, 32 threads cost about twice the CPU per 4k
	 * read of 10.  Blocking reads from a slow template disk want more.
	 */
	pool_open_gate();
	rc = pool_join();
	if (rc != 0)
		hlog(HLOG_WARN, "FUSE loop ended: %s", strerror(rc < 0 ? -rc : rc));
	hlog(HLOG_INFO, "file system unmounted; writing the final checkpoint");
	store_close(w.st);
	return 0;
fail:
	hlog(HLOG_ERROR, "%s", err);
	worker_reply(&w, 0, EPROTO, err, strlen(err));
	return 2;
}
