/*
 * worker: the process that serves one mount's FUSE requests.
 *
 * Started (fork + exec) by the supervisor, which keeps the /dev/fuse fd, the
 * control memory and the mount; the worker inherits the fds and may be
 * killed at any instruction.  Life of a worker:
 *
 *   open store  -> catalog + log replay; on failure report it and exit 2
 *   session     -> libfuse session over the inherited fd (custom io)
 *   [takeover]  -> replay the saved FUSE_INIT into the new session, reply dropped
 *   ready       -> tell the supervisor ("0 0 5\nready"), wait for "start"
 *                  (the first worker's fd is mounted only after ready)
 *   [takeover]  -> FUSE_NOTIFY_RESEND: the kernel requeues every request the
 *                  dead worker had read but not answered
 *   serve       -> fuse_session_loop_mt + a control thread
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "hlog.h"
#include "proto.h"
#include "worker.h"

#define WORKER_MAX_THREADS	32
#define NOTIFY_RESEND		7	/* FUSE_NOTIFY_RESEND, Linux 6.9+ */

#define UNIQUE_RESENT		(UINT64_C(1) << 63)

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

static ssize_t
io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct worker *w = userdata;
	ssize_t n;

	if (buf != populated_buf) {
		populate(buf, len);
		populated_buf = buf;
	}
	n = read(fd, buf, len);

	if (n >= (ssize_t)sizeof(struct fuse_in_header)) {
		const struct fuse_in_header *in = buf;
		request_resent = (in->unique & UNIQUE_RESENT) != 0;
		atomic_fetch_add(&w->ctl->requests_taken, 1);
		if (in->opcode == FUSE_INIT && atomic_load(&w->ctl->init_len) == 0 &&
		    (size_t)n <= CTLMEM_INIT_MAX) {
			memcpy(w->ctl->init_req, buf, (size_t)n);
			atomic_store_explicit(&w->ctl->init_len, (uint32_t)n, memory_order_release);
		}
	}
	return n;
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
	if (out->unique != 0)
		atomic_fetch_add(&w->ctl->requests_done, 1);
	return n;
}

static const struct fuse_custom_io worker_io = {
	.read = io_read,
	.writev = io_writev,
};

/* Feed the first worker's INIT to our fresh session.  0 or -errno. */
static int
worker_replay_init(struct worker *w)
{
	uint32_t len = atomic_load_explicit(&w->ctl->init_len, memory_order_acquire);
	struct fuse_buf fbuf;
	char *copy;

	if (len == 0)
		return -EPROTO;
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

/* Ask the kernel to requeue what the previous worker held.  0 or -errno. */
static int
worker_resend(struct worker *w)
{
	struct fuse_out_header out = { .len = sizeof(out), .error = NOTIFY_RESEND, .unique = 0 };

	if (write(w->fuse_fd, &out, sizeof(out)) != (ssize_t)sizeof(out))
		return -errno;
	return 0;
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
		id = strtoull(line, &rest, 10);
		if (*rest != ' ') {
			hlog(HLOG_WARN, "malformed control request from the supervisor");
			continue;
		}
		sbuf_reset(&out);
		err = control_handle(w, rest + 1, &out);
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
	    "--tmpldir DIR [--takeover] [--segment-size BYTES] [--checkpoint-ms MS]\n"
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
		{ NULL, 0, NULL, 0 }
	};
	struct worker w = { .fuse_fd = -1, .ctl_fd = -1 };
	struct store_opts so = { 0 };
	struct fuse_loop_config *cfg;
	char *fargv[] = { "hcowfs-worker", NULL };
	struct fuse_args fargs = FUSE_ARGS_INIT(1, fargv);
	char err[512] = "", line[64];
	int shm_fd = -1, takeover = 0, opt, rc;

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
		default: usage();
		}
	}
	if (w.fuse_fd < 0 || w.ctl_fd < 0 || shm_fd < 0 || !so.datadir || !so.tmpldir)
		usage();
	signal(SIGPIPE, SIG_IGN);

	w.ctl = mmap(NULL, sizeof(struct ctlmem), PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
	if (w.ctl == MAP_FAILED || w.ctl->magic != CTLMEM_MAGIC || w.ctl->version != CTLMEM_VERSION)
		die(2, "control memory is not usable (is this worker from the same build as the supervisor?)");
	/* touch every page now: a fault in a page first mapped mid-request can cost that request */
	madvise(w.ctl, sizeof(struct ctlmem), MADV_POPULATE_WRITE);

	so.purge_unlinked = !takeover;
	so.create = !takeover;
	if ((rc = store_open(&so, &w.st, err, sizeof(err))) < 0) {
		hlog(HLOG_ERROR, "%s", err);
		worker_reply(&w, 0, -rc, err, strlen(err));
		return 2;
	}
	w.se = fuse_session_new(&fargs, &fsops, sizeof(fsops), &w);
	if (!w.se || fuse_session_custom_io(w.se, &worker_io, w.fuse_fd) < 0) {
		snprintf(err, sizeof(err), "cannot set up the FUSE session");
		goto fail;
	}
	if (takeover && (rc = worker_replay_init(&w)) != 0) {
		snprintf(err, sizeof(err), "cannot take over the FUSE session: saved INIT %s (%s)",
		    rc == -EPROTO ? "missing" : "refused", strerror(rc < 0 ? -rc : rc));
		goto fail;
	}
	if (worker_reply(&w, 0, 0, "ready", 5) < 0)
		return 1;
	rc = (int)proto_read_line(w.ctl_fd, line, sizeof(line));
	if (rc <= 0 || strcmp(line, "start") != 0)
		die(1, "supervisor did not say start");
	if (takeover && (rc = worker_resend(&w)) < 0)
		hlog(HLOG_WARN, "kernel refused FUSE_NOTIFY_RESEND (%s): requests held by the "
		    "previous worker are not reissued", strerror(-rc));
	{
		pthread_t t;
		if (pthread_create(&t, NULL, control_thread, &w) == 0)
			pthread_detach(t);
		else
			hlog(HLOG_WARN, "cannot start the control thread; hcowctl will time out");
	}
	hlog(HLOG_INFO, "serving%s", takeover ? " (took over from a previous worker)" : "");

	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, WORKER_MAX_THREADS);
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	rc = fuse_session_loop_mt(w.se, cfg);
	fuse_loop_cfg_destroy(cfg);
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
