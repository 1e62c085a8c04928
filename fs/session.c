/*
 * session: the worker's libfuse session over the inherited /dev/fuse fd,
 * with custom I/O (fuse_session_custom_io), and what a replacement does to
 * take over the connection of a worker that died.
 *
 * The custom read (io_read) is where the supervisor sees each request: it
 * records it in the thread's slot (slots.c), answers poison requests EIO
 * without running them, saves the connection's FUSE_INIT for replacements,
 * and fires injected faults.  The custom writev (io_writev) clears the slot
 * once the reply is out, and drops the one reply of a replayed INIT.  It
 * also sets FOPEN_PARALLEL_DIRECT_WRITES in the reply to an O_DIRECT open
 * (session_reply_open), which libfuse 3.14 cannot say.
 *
 * Taking over, in this order (worker.c drives it):
 *
 *   session_new         a fresh session: it answers EIO to everything until
 *                       it has seen an INIT
 *   session_replay_init feed it the first worker's INIT, kept in the control
 *                       memory (the kernel sends INIT once per connection);
 *                       the replay must negotiate exactly as the first; its
 *                       reply is kept, not written
 *   session_answer_init if the first worker died before answering INIT, write
 *                       that kept reply: the kernel still waits for one
 *   then, once the store is open, either
 *   session_resend      FUSE_NOTIFY_RESEND: the kernel requeues every request
 *                       the dead worker read but did not answer, or
 *   session_replay_held replay mode: re-run the requests left in the slots
 *
 * Rule: never fuse_session_destroy(): it would close the shared fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "hlog.h"
#include "worker.h"

#define NOTIFY_RESEND		7	/* FUSE_NOTIFY_RESEND, Linux 6.9+ */
#ifndef FOPEN_PARALLEL_DIRECT_WRITES
#define FOPEN_PARALLEL_DIRECT_WRITES	(1 << 6)	/* FUSE 7.36, Linux 6.2+ */
#endif
_Static_assert(sizeof(struct fuse_open_out) == 16 && sizeof(struct fuse_entry_out) == 128,
    "the OPEN and CREATE replies as libfuse 3.14 sends them");

/* libfuse reads and handles a request on the same thread: what io_read saw applies to the op. */
static __thread int request_resent;

int
session_request_resent(void)
{
	return request_resent;
}

/*
 * Set while this thread feeds the saved INIT to the session: its reply is
 * kept here, not written (session_answer_init may still need it).
 */
static __thread int replaying_init;
static __thread int replayed_init_error;
static uint8_t init_reply[256];		/* fuse_out_header + fuse_init_out */
static size_t init_reply_len;

/* Once this process saw INIT answered, no reply is checked for it again. */
static _Atomic int init_answered_known;

/*
 * If this process dies while the kernel copies a request into a page of the
 * receive buffer that was never touched, the kernel fails that request with
 * EIO and no resend can save it.  So each thread's buffer (libfuse keeps one
 * per thread) is faulted in before its first read.
 */
static __thread void *populated_buf;

void
session_populate(void *buf, size_t len)
{
	long page;
	uintptr_t start, end;

	if (buf == populated_buf)
		return;
	page = sysconf(_SC_PAGESIZE);
	start = (uintptr_t)buf & ~(uintptr_t)(page - 1);
	end = ((uintptr_t)buf + len + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
	if (madvise((void *)start, end - start, MADV_POPULATE_WRITE) < 0)
		memset(buf, 0, len);	/* older kernel: touch it by hand */
	populated_buf = buf;
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

	slot_count(w->ctl, 1);
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

/* A reply was written (n = writev's result): if it was INIT's, say so in the control memory. */
static void
init_note_reply(struct worker *w, const struct fuse_out_header *out, ssize_t n)
{
	const struct fuse_in_header *in = (const void *)w->ctl->init_req;

	if (atomic_load_explicit(&init_answered_known, memory_order_relaxed))
		return;
	if (atomic_load(&w->ctl->init_answered)) {
		atomic_store(&init_answered_known, 1);
		return;
	}
	/* ENOENT: the kernel had it already */
	if ((n >= 0 || errno == ENOENT) &&
	    atomic_load_explicit(&w->ctl->init_len, memory_order_acquire) != 0 &&
	    out->unique == in->unique) {
		atomic_store(&w->ctl->init_answered, 1);
		atomic_store(&init_answered_known, 1);
	}
}

/*
 * Writers of one disk at once.  The kernel holds a FUSE inode's lock across
 * each write, so one disk's writes, and the flushes behind them, reach the
 * worker one at a time; unless the open's reply says FOPEN_DIRECT_IO and
 * FOPEN_PARALLEL_DIRECT_WRITES: then O_DIRECT writes within the file's size
 * take it shared.  Only from FUSE 7.40 (Linux 6.9) on, whose io modes take
 * the lock exclusively again while any open of the inode uses the page
 * cache, so that no cached page misses a write.  FSYNC still takes it
 * exclusively, after the writes in flight are answered: store_sync relies
 * on that.  Only O_DIRECT opens: a buffered open keeps the page cache.
 *
 * libfuse 3.14's fuse_file_info has no bit for the second flag, so
 * session_reply_open arms this thread's next reply, and io_writev sets the
 * flag in the fuse_open_out that ends an OPEN or a CREATE reply.
 */
static int parallel_writes_ok;		/* this connection's kernel has io modes */
static __thread int reply_parallel_writes;

void
session_conn_init(const struct fuse_conn_info *conn)
{
	parallel_writes_ok = conn->proto_major > 7 || conn->proto_minor >= 40;
}

int
session_reply_open(fuse_req_t req, const struct fuse_entry_param *e, struct fuse_file_info *fi)
{
	int rc;

	if (parallel_writes_ok && (fi->flags & O_DIRECT)) {
		fi->direct_io = 1;
		reply_parallel_writes = 1;
	}
	rc = e ? fuse_reply_create(req, e, fi) : fuse_reply_open(req, fi);
	reply_parallel_writes = 0;
	return rc;
}

/*
 * writev() of a successful OPEN or CREATE reply (the header, then one
 * buffer: [fuse_entry_out] fuse_open_out) with FOPEN_PARALLEL_DIRECT_WRITES
 * added; any other reply as it is.
 */
static ssize_t
writev_parallel_writes(int fd, const struct iovec *iov, int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_open_out open_out;
	struct iovec v[3];
	size_t head;

	if (out->error != 0 || count != 2 || (iov[1].iov_len != sizeof(open_out) &&
	    iov[1].iov_len != sizeof(struct fuse_entry_out) + sizeof(open_out)))
		return writev(fd, iov, count);
	head = iov[1].iov_len - sizeof(open_out);
	memcpy(&open_out, (const char *)iov[1].iov_base + head, sizeof(open_out));
	open_out.open_flags |= FOPEN_PARALLEL_DIRECT_WRITES;
	v[0] = iov[0];
	v[1].iov_base = iov[1].iov_base;
	v[1].iov_len = head;
	v[2].iov_base = &open_out;
	v[2].iov_len = sizeof(open_out);
	return writev(fd, v, 3);
}

static ssize_t
io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct worker *w = userdata;

	/* a buffer libfuse allocated (the pool could not give this thread one) */
	session_populate(buf, len);
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
		slot_count(w->ctl, 0);
		init_save(w, buf, n);
		if (!ctlmem_opcode_tracked(in->opcode)) {
			/*
			 * No reply, nothing to re-run.  Where the slot's buffer is
			 * the one libfuse parses, its unique must survive until
			 * then (INIT's reply carries it): serve_thread clears it.
			 */
			if (slot >= 0 && ctlmem_req_buf(w->ctl, (unsigned)slot) != (uint8_t *)buf)
				slot_buf_done(w->ctl, slot);
			if (in->opcode == FUSE_INIT && w->fault_injection)
				fault_maybe(w->ctl, FUSE_INIT);	/* read and saved, not answered */
			return n;
		}
		if (slot_poisoned(w->ctl, in->unique)) {
			hlog(HLOG_ERROR, "request %llx (opcode %u, node %llu) killed %d workers; "
			    "answering it EIO", (unsigned long long)(in->unique & ~UNIQUE_RESENT),
			    in->opcode, (unsigned long long)in->nodeid, POISON_ATTEMPTS);
			reply_eio(w, in->unique);
			if (slot >= 0)
				slot_buf_done(w->ctl, slot);
			continue;
		}
		if (slot >= 0)
			slot_fill(w->ctl, slot, buf, (size_t)n);
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
		for (int i = 0; i < count; i++) {
			if (total + iov[i].iov_len <= sizeof(init_reply))
				memcpy(init_reply + total, iov[i].iov_base, iov[i].iov_len);
			total += iov[i].iov_len;
		}
		init_reply_len = total <= sizeof(init_reply) ? total : 0;
		replayed_init_error = out->error;
		return (ssize_t)total;	/* the kernel has its answer from the first worker, or see session_answer_init */
	}
	n = reply_parallel_writes ? writev_parallel_writes(fd, iov, count) : writev(fd, iov, count);
	reply_parallel_writes = 0;
	init_note_reply(w, out, n);
	if (out->unique != 0 && w->ctl->watch) {
		slot_count(w->ctl, 1);
		slot_clear(w->ctl, out->unique);
	}
	return n;
}

static const struct fuse_custom_io worker_io = {
	.read = io_read,
	.writev = io_writev,
};

int
session_new(struct worker *w, const struct fuse_lowlevel_ops *ops, size_t opsize)
{
	char *fargv[] = { "hcowfs-worker", NULL };
	struct fuse_args fargs = FUSE_ARGS_INIT(1, fargv);

	w->se = fuse_session_new(&fargs, ops, opsize, w);
	fuse_opt_free_args(&fargs);	/* parsing them allocated a copy */
	if (!w->se || fuse_session_custom_io(w->se, &worker_io, w->fuse_fd) < 0)
		return -1;
	return 0;
}

/* Feed the first worker's INIT to our fresh session.  0 or -errno (-ENOENT: none saved yet). */
int
session_replay_init(struct worker *w)
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

/* Answer INIT if the worker before us died holding it (the reply our replay made).  0 or -errno. */
int
session_answer_init(struct worker *w)
{
	ssize_t n;

	if (atomic_load(&w->ctl->init_answered) || atomic_load(&w->ctl->init_len) == 0)
		return 0;
	if (init_reply_len == 0)
		return -ENOENT;
	n = write(w->fuse_fd, init_reply, init_reply_len);
	if (n < 0 && errno != ENOENT)
		return -errno;
	/* ENOENT: the previous worker's reply got there after all */
	atomic_store(&w->ctl->init_answered, 1);
	if (n >= 0)
		hlog(HLOG_WARN, "the previous worker died before answering FUSE_INIT; answered it");
	return 0;
}

/* Ask the kernel to requeue what the previous worker held.  0 or -errno. */
int
session_resend(struct worker *w)
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
void
session_replay_held(struct worker *w)
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
		if (slot_poisoned(w->ctl, u)) {
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
	slot_forget();
	free(copy);
	if (replayed)
		hlog(HLOG_INFO, "re-ran %d requests the previous worker held", replayed);
}
