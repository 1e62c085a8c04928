/*
 * workers: starting, watching and replacing the worker process, and relaying
 * control requests to it.
 *
 * Worker lifecycle (struct worker_proc.state):
 *
 *   (none) --worker_start--> STARTING --ready reply--> RUNNING
 *      ^                        |                         |
 *      |                        +------- death -----------+--> GONE
 *      +-- restart (at once, or after the throttle delay) <----+
 *
 *   ready reply: the worker opened the store (and, when taking over,
 *   replayed INIT).  The first time, the supervisor mounts only now; then it
 *   says "start".  Death with status 0 while the mount is gone is the normal
 *   end (umount); any other death is a fault: logged, counted, replaced.
 *
 * Relays: control requests for the worker wait in s->relays until its reply
 * (matched by id) comes back.  When a worker dies, the requests it was sent
 * are sent again to its replacement marked retry=1; the worker's verbs are
 * idempotent under retry.
 *
 * Throttle: more than restart_burst (-o restart_burst=, default 10) restarts
 * within RESTART_WINDOW seconds and each further restart waits RESTART_DELAY,
 * so a worker that cannot run does not fork-bomb the host.
 *
 * Standby: STANDBY_DELAY after a worker starts serving, a second one is
 * started with --standby: it execs, loads its libraries, sets up its FUSE
 * session, opens the catalog, faults in its first receive buffers and waits.
 * When the serving worker dies, the standby gets "go" and takes over, which
 * saves all that (about 2 ms of the recovery).  A deliberate restart discards it, so the
 * replacement runs the worker binary installed now.  A standby that ends
 * before it is needed is started again after a delay doubling up to
 * STANDBY_BACKOFF_MAX; -o standby=off starts none.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "hlog.h"
#include "mounts.h"
#include "supervisor.h"

#define RESTART_WINDOW	10	/* seconds */
#define RESTART_DELAY	1.0	/* seconds */
#define STANDBY_DELAY	0.1	/* seconds after a worker starts serving */
#define STANDBY_BACKOFF_MAX 60.0 /* seconds */

static void ctl_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static int still_mounted(struct sup *s);
static void standby_schedule(struct sup *s);

static struct fault *
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
cause_name(enum cause c)
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
request_describe(const struct ctl_slot *sl, uint64_t unique, char *buf, size_t len)
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
 * Send what is queued for the worker as far as the channel takes it; the
 * rest goes when it has room (ctl_write_cb).  The channel is a stream: a
 * request is queued whole once and never sent twice, or the worker would
 * read a line cut short followed by the whole one.
 */
static void
ctl_flush(struct sup *s)
{
	struct worker_proc *w = &s->worker;

	while (w->out_off < w->out.len) {
		ssize_t n = send(w->ctl_fd, w->out.buf + w->out_off, w->out.len - w->out_off,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ev_io_start(s->loop, &w->ctl_wio);
			return;
		}
		if (n < 0) {
			/* the worker is going away; its requests go to the next one */
			hlog(HLOG_WARN, "cannot send control requests to worker %d: %s",
			    (int)w->pid, strerror(errno));
			break;
		}
		w->out_off += (size_t)n;
	}
	ev_io_stop(s->loop, &w->ctl_wio);
	sbuf_reset(&w->out);
	w->out_off = 0;
}

static void
ctl_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	ctl_flush(io->data);
}

/* Send a relay's request to the running worker; without one it waits for the next. */
static void
relay_send(struct sup *s, struct relay *r)
{
	struct worker_proc *w = &s->worker;

	if (w->state != WORKER_RUNNING || r->sent)
		return;
	sbuf_printf(&w->out, "%llu %s\n", (unsigned long long)r->id, r->line);
	if (w->out.oom) {
		hlog(HLOG_WARN, "out of memory queueing a control request");
		sbuf_release(&w->out);
		w->out_off = 0;
		return;
	}
	r->sent = 1;
	ctl_flush(s);
}

int
relay_submit(struct sup *s, struct client *c, const char *line)
{
	struct relay *r = calloc(1, sizeof(*r)), **tail;

	if (!r || !(r->line = strdup(line))) {
		free(r);
		return -ENOMEM;
	}
	r->id = ++s->next_id;
	r->client = c;
	for (tail = &s->relays; *tail; tail = &(*tail)->next)
		;
	*tail = r;
	relay_send(s, r);
	return 0;
}

void
relay_forget_client(struct sup *s, struct client *c)
{
	for (struct relay *r = s->relays; r; r = r->next)
		if (r->client == c)
			r->client = NULL;
}

static void
relay_done(struct sup *s, uint64_t id, int err, const char *body, size_t len)
{
	for (struct relay **p = &s->relays; *p; p = &(*p)->next) {
		struct relay *r = *p;
		if (r->id != id)
			continue;
		*p = r->next;
		if (r->client)
			client_answer(s, r->client, err, body, len);
		free(r->line);
		free(r);
		return;
	}
}

/*
 * The worker died: what it was sent goes to the next one, marked as a
 * retry; but a control request held by POISON_ATTEMPTS dead workers is
 * answered with an error instead, as a poison FUSE request is.
 */
static void
relays_requeue(struct sup *s)
{
	for (struct relay **p = &s->relays; *p; ) {
		struct relay *r = *p;
		if (r->sent && ++r->deaths >= POISON_ATTEMPTS) {
			char msg[PROTO_LINE_MAX + 128];
			int n = snprintf(msg, sizeof(msg), "%u workers died while handling this request; "
			    "it is not retried (the mount's log has the details)\n", r->deaths);
			hlog(HLOG_ERROR, "control request '%s' was held by %u workers that died; "
			    "answering it with an error", r->line, r->deaths);
			*p = r->next;
			if (r->client)
				client_answer(s, r->client, EIO, msg, (size_t)n);
			free(r->line);
			free(r);
			continue;
		}
		p = &r->next;
		if (r->sent && !strstr(r->line, " retry=1")) {
			char *l;
			if (asprintf(&l, "%s retry=1", r->line) >= 0) {
				free(r->line);
				r->line = l;
			}
		}
		r->sent = 0;
	}
}

static void
worker_ready(struct sup *s, int err, const char *body, size_t len)
{
	struct worker_proc *w = &s->worker;
	struct timespec now;

	if (err != 0) {
		/* it exits 2 on its own; the child watcher takes it from there */
		hlog(HLOG_ERROR, "worker %d could not start: %.*s", (int)w->pid, (int)len, body);
		if (!s->mounted)
			sup_startup_failed(s, "%.*s", (int)len, body);
		return;
	}
	if (!s->mounted) {
		const char *nl = memchr(body, '\n', len);
		size_t skip = nl ? (size_t)(nl + 1 - body) : len;
		sup_mounted(s, body + skip, len - skip);
	}
	if (send(w->ctl_fd, "start\n", 6, MSG_NOSIGNAL) != 6) {
		hlog(HLOG_WARN, "worker %d did not take 'start': %s", (int)w->pid, strerror(errno));
		return;
	}
	w->state = WORKER_RUNNING;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (w->takeover) {
		double ms = (ev_time() - s->died_at) * 1e3;
		hlog(HLOG_INFO, "worker %d serving (replacement), %.1f ms after the previous one ended",
		    (int)w->pid, ms);
		if (s->recovering) {
			s->faults[(s->recovering - 1) % FAULTS_KEPT].recover_ms = ms;
			s->recovering = 0;
		}
		if (s->restart_waiter) {
			char msg[160];
			snprintf(msg, sizeof(msg), "restarted: worker %d replaced by %d, serving %.1f ms "
			    "after it stopped\n", (int)s->restart_old_pid, (int)w->pid, ms);
			restart_done(s, 0, msg);
		}
	} else {
		hlog(HLOG_INFO, "worker %d serving, ready %.1f ms after start", (int)w->pid,
		    (double)(now.tv_sec - w->started.tv_sec) * 1e3 +
		    (double)(now.tv_nsec - w->started.tv_nsec) / 1e6);
	}
	for (struct relay *r = s->relays; r; r = r->next)
		relay_send(s, r);
	standby_schedule(s);
}

/* Parse complete "ID ERR LEN\n<body>" frames out of the read buffer. */
static void
ctl_parse(struct sup *s)
{
	struct worker_proc *w = &s->worker;

	for (;;) {
		struct proto_frame f;
		ssize_t n = proto_frame_split(w->rbuf, w->rlen, &f);

		if (n == 0)
			return;
		if (n < 0) {
			hlog(HLOG_ERROR, "worker %d sent a malformed control reply; killing it", (int)w->pid);
			kill(w->pid, SIGKILL);
			w->rlen = 0;
			return;
		}
		if (f.id == 0)
			worker_ready(s, f.err, f.body, f.len);
		else
			relay_done(s, f.id, f.err, f.body, f.len);
		memmove(w->rbuf, w->rbuf + n, w->rlen - (size_t)n);
		w->rlen -= (size_t)n;
	}
}

static void
ctl_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sup *s = io->data;
	struct worker_proc *w = &s->worker;
	ssize_t n;

	(void)revents;
	if (w->rcap - w->rlen < 4096) {
		size_t cap = w->rcap ? w->rcap * 2 : 65536;
		char *b = realloc(w->rbuf, cap);
		if (!b)
			return;
		w->rbuf = b;
		w->rcap = cap;
	}
	n = read(w->ctl_fd, w->rbuf + w->rlen, w->rcap - w->rlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* the worker is going away; its death is handled by the child watcher */
		ev_io_stop(loop, io);
		return;
	}
	w->rlen += (size_t)n;
	ctl_parse(s);
}

/*
 * Fork and exec a worker; mode is NULL, "--takeover" or "--standby".  Its end
 * of a new control channel goes in *ctl_fd.  The pid, or -1 (logged).
 */
static pid_t
worker_spawn(struct sup *s, const char *mode, int *ctl_fd)
{
	char fusefd[16], ctlfd[16], shmfd[16], segsz[32], cpms[16], nthreads[16];
	char *argv[24];
	int sv[2], argc = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		hlog(HLOG_ERROR, "cannot create the worker's control channel: %s", strerror(errno));
		return -1;
	}
	snprintf(fusefd, sizeof(fusefd), "%d", s->fuse_fd);
	snprintf(ctlfd, sizeof(ctlfd), "%d", sv[1]);
	snprintf(shmfd, sizeof(shmfd), "%d", s->shm_fd);
	argv[argc++] = "hcowfs-worker";
	argv[argc++] = "--fuse-fd"; argv[argc++] = fusefd;
	argv[argc++] = "--ctl-fd"; argv[argc++] = ctlfd;
	argv[argc++] = "--shm-fd"; argv[argc++] = shmfd;
	argv[argc++] = "--datadir"; argv[argc++] = s->o.datadir;
	argv[argc++] = "--tmpldir"; argv[argc++] = s->o.tmpldir;
	if (mode)
		argv[argc++] = (char *)mode;
	if (s->o.fault_injection)
		argv[argc++] = "--fault-injection";
	if (s->o.segment_size) {
		snprintf(segsz, sizeof(segsz), "%llu", (unsigned long long)s->o.segment_size);
		argv[argc++] = "--segment-size"; argv[argc++] = segsz;
	}
	if (s->o.checkpoint_ms) {
		snprintf(cpms, sizeof(cpms), "%u", s->o.checkpoint_ms);
		argv[argc++] = "--checkpoint-ms"; argv[argc++] = cpms;
	}
	if (s->o.threads) {
		snprintf(nthreads, sizeof(nthreads), "%u", s->o.threads);
		argv[argc++] = "--threads"; argv[argc++] = nthreads;
	}
	argv[argc] = NULL;

	pid = fork();
	if (pid == 0) {
		sigset_t all;
		int null = open("/dev/null", O_RDWR);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		/* exactly these fds cross exec */
		fcntl(s->fuse_fd, F_SETFD, 0);
		fcntl(s->shm_fd, F_SETFD, 0);
		fcntl(sv[1], F_SETFD, 0);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(s->log_fd >= 0 ? s->log_fd : STDERR_FILENO, STDOUT_FILENO);
		}
		if (s->log_fd >= 0)
			dup2(s->log_fd, STDERR_FILENO);
		execv(s->o.worker_path, argv);
		hlog(HLOG_ERROR, "cannot run worker '%s': %s", s->o.worker_path, strerror(errno));
		_exit(2);
	}
	close(sv[1]);
	if (pid < 0) {
		hlog(HLOG_ERROR, "cannot fork a worker: %s", strerror(errno));
		close(sv[0]);
		return -1;
	}
	*ctl_fd = sv[0];
	return pid;
}

/* Make pid, reached on ctl_fd, the worker that serves the mount. */
static void
worker_attach(struct sup *s, pid_t pid, int ctl_fd, int takeover)
{
	struct worker_proc *w = &s->worker;

	w->pid = pid;
	w->state = WORKER_STARTING;
	w->takeover = takeover;
	w->kill_cause = -1;
	s->pending_since = 0;
	w->ctl_fd = ctl_fd;
	w->rlen = 0;
	ctlmem_requests(s->ctl, &w->taken_at_start, &w->done_at_start);
	clock_gettime(CLOCK_MONOTONIC, &w->started);
	fcntl(w->ctl_fd, F_SETFL, O_NONBLOCK);
	ev_io_init(&w->ctl_io, ctl_read_cb, w->ctl_fd, EV_READ);
	w->ctl_io.data = s;
	ev_io_start(s->loop, &w->ctl_io);
	ev_io_init(&w->ctl_wio, ctl_write_cb, w->ctl_fd, EV_WRITE);
	w->ctl_wio.data = s;
}

/* Hand the mount to the standby worker; 0, or -1 if there is none that takes it. */
static int
standby_promote(struct sup *s)
{
	pid_t pid = s->standby.pid;
	int fd = s->standby.ctl_fd;

	if (pid <= 0)
		return -1;
	s->standby.pid = 0;
	s->standby.ctl_fd = -1;
	if (send(fd, "go\n", 3, MSG_NOSIGNAL) != 3) {
		hlog(HLOG_WARN, "standby worker %d did not take 'go' (%s); starting another",
		    (int)pid, strerror(errno));
		close(fd);
		kill(pid, SIGKILL);	/* reaped by child_cb, which no longer knows it */
		return -1;
	}
	s->standby.failures = 0;
	worker_attach(s, pid, fd, 1);
	hlog(HLOG_INFO, "standby worker %d takes over the mount", (int)pid);
	return 0;
}

void
worker_start(struct sup *s, int takeover)
{
	pid_t pid;
	int fd;

	if (takeover && standby_promote(s) == 0)
		return;
	if ((pid = worker_spawn(s, takeover ? "--takeover" : NULL, &fd)) < 0) {
		ev_timer_set(&s->restart_timer, RESTART_DELAY, 0);
		ev_timer_start(s->loop, &s->restart_timer);
		return;
	}
	worker_attach(s, pid, fd, takeover);
	hlog(HLOG_INFO, "started worker %d%s", (int)pid, takeover ? " to take over the mount" : "");
}

static void
standby_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sup *s = t->data;
	pid_t pid;
	int fd;

	(void)loop;
	(void)revents;
	if (s->o.nostandby || s->stopping || s->standby.pid > 0 || s->worker.state != WORKER_RUNNING)
		return;
	if ((pid = worker_spawn(s, "--standby", &fd)) < 0)
		return;
	s->standby.pid = pid;
	s->standby.ctl_fd = fd;
	clock_gettime(CLOCK_MONOTONIC, &s->standby.started);
}

/* How long until the next standby: STANDBY_DELAY, doubled for each that ended unused. */
static double
standby_delay(const struct sup *s)
{
	double delay = STANDBY_DELAY;

	for (unsigned i = 0; i < s->standby.failures && delay < STANDBY_BACKOFF_MAX; i++)
		delay *= 2;
	return delay < STANDBY_BACKOFF_MAX ? delay : STANDBY_BACKOFF_MAX;
}

static void
standby_schedule(struct sup *s)
{
	if (s->o.nostandby || s->standby.pid > 0 || ev_is_active(&s->standby.timer))
		return;
	ev_timer_set(&s->standby.timer, standby_delay(s), 0);
	ev_timer_start(s->loop, &s->standby.timer);
}

void
standby_stop(struct sup *s, int reap)
{
	pid_t pid = s->standby.pid;

	ev_timer_stop(s->loop, &s->standby.timer);
	if (pid <= 0)
		return;
	s->standby.pid = 0;
	close(s->standby.ctl_fd);	/* it exits on its own when it sees that */
	s->standby.ctl_fd = -1;
	kill(pid, SIGKILL);
	if (reap)
		waitpid(pid, NULL, 0);
}

/* The standby ended before it was needed. */
static void
standby_ended(struct sup *s, int status)
{
	close(s->standby.ctl_fd);
	s->standby.ctl_fd = -1;
	s->standby.pid = 0;
	s->standby.failures++;
	hlog(HLOG_WARN, "standby worker ended before it was needed (%s %d); next one in %.1f s",
	    WIFSIGNALED(status) ? "signal" : "status",
	    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), standby_delay(s));
	standby_schedule(s);
}

static void
restart_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sup *s = t->data;

	(void)loop;
	(void)revents;
	worker_start(s, s->mounted);
}

static int
still_mounted(struct sup *s)
{
	struct hcow_mount m[8];
	int n = mounts_find(s->o.mountpoint, m, 8);

	for (int i = 0; i < n && i < 8; i++)
		if (m[i].major == s->dev_major && m[i].minor == s->dev_minor)
			return 1;
	return 0;
}

/*
 * The requests a dead worker held are suspects: one that was held by
 * POISON_ATTEMPTS dead workers is poison, and workers answer it EIO from now
 * on.  After a hang only the stuck requests are suspects; after a deliberate
 * restart none is.
 */
static void
blame_requests(struct sup *s, enum cause cause)
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
			request_describe(sl, u, x->what, sizeof(x->what));
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

/* Make the slots ready for the replacement (see ctlmem.h). */
static void
slots_handover(struct sup *s)
{
	int64_t now = ctlmem_now_ns();

	for (int i = 0; i < CTLMEM_SLOTS; i++) {
		struct ctl_slot *sl = &s->ctl->slot[i];
		const struct fuse_in_header *h = (const void *)ctlmem_req_buf(s->ctl, (unsigned)i);
		uint64_t held = s->ctl->reissue == REISSUE_REPLAY ?
		    __atomic_load_n(&h->unique, __ATOMIC_ACQUIRE) : 0;
		if (held && !ctlmem_opcode_tracked(h->opcode))
			held = 0;	/* read, but never answered nor re-run */
		if (held) {
			/* the replacement re-runs it; show it as outstanding, its age starting now */
			sl->opcode = h->opcode;
			sl->nodeid = h->nodeid;
			atomic_store(&sl->start_ns, now);
			atomic_store(&sl->unique, held);
		} else {
			atomic_store(&sl->unique, 0);
		}
	}
	atomic_store(&s->ctl->slots_used, 0);
}

static void
child_cb(struct ev_loop *loop, ev_child *cw, int revents)
{
	struct sup *s = cw->data;
	struct worker_proc *w = &s->worker;
	char what[200];
	int st = cw->rstatus;
	time_t now = time(NULL);
	enum cause cause;

	(void)revents;
	if (s->standby.pid > 0 && cw->rpid == s->standby.pid) {
		standby_ended(s, st);
		return;
	}
	if (cw->rpid != w->pid)
		return;	/* a standby we stopped */
	s->died_at = ev_time();
	if (w->kill_cause == CAUSE_HANG) {
		cause = CAUSE_HANG;
		snprintf(what, sizeof(what), "hang: %s for %.0f ms", w->hang_req, w->hang_age_ms);
	} else if (w->kill_cause == CAUSE_RESTART) {
		cause = CAUSE_RESTART;
		snprintf(what, sizeof(what), "restart asked for with hcowctl");
	} else if (WIFSIGNALED(st)) {
		cause = CAUSE_CRASH;
		snprintf(what, sizeof(what), "crash: killed by signal %d (%s)", WTERMSIG(st),
		    strsignal(WTERMSIG(st)));
	} else {
		cause = CAUSE_EXIT;
		snprintf(what, sizeof(what), "exit: status %d", WEXITSTATUS(st));
	}
	/*
	 * What it wrote before it died is still in the channel: read it first,
	 * or the first worker's reason for not starting (a damaged store, say)
	 * loses the race with its exit and the admin gets "worker ended".
	 */
	for (int i = 0; i < 64 && ev_is_active(&w->ctl_io); i++)
		ctl_read_cb(loop, &w->ctl_io, EV_READ);
	ev_io_stop(loop, &w->ctl_io);
	ev_io_stop(loop, &w->ctl_wio);
	sbuf_reset(&w->out);
	w->out_off = 0;
	close(w->ctl_fd);
	w->ctl_fd = -1;
	w->state = WORKER_GONE;
	w->pid = 0;

	if (!s->mounted) {
		/* the first worker died before the mount existed */
		sup_startup_failed(s, "worker ended before the mount was ready (%s); see %s/hcowfs.log",
		    what, s->o.datadir);
	}
	if (cause == CAUSE_EXIT && WEXITSTATUS(st) == 0 && !still_mounted(s)) {
		hlog(HLOG_INFO, "%s unmounted; supervisor exiting", s->o.mountpoint);
		sup_exit(s, 0);
	}
	blame_requests(s, cause);
	slots_handover(s);
	s->restarts++;
	s->by_cause[cause]++;
	if (cause != CAUSE_RESTART) {
		struct fault *f = fault_record(s, cw->rpid, cause, what);
		if (cause == CAUSE_HANG)
			f->detect_ms = w->hang_age_ms;
		s->recovering = (int)(s->nfaults - 1) % FAULTS_KEPT + 1;
		hlog(HLOG_ERROR, "worker %d ended (%s); starting a replacement", (int)cw->rpid, what);
	} else {
		hlog(HLOG_INFO, "worker %d stopped for a restart; starting a replacement", (int)cw->rpid);
	}
	relays_requeue(s);

	if (now - s->restart_window >= RESTART_WINDOW) {
		s->restart_window = now;
		s->restarts_in_window = 0;
	}
	if (++s->restarts_in_window > s->o.restart_burst) {
		hlog(HLOG_WARN, "%u restarts in %d s; throttling: next worker in %.1f s",
		    s->restarts_in_window, RESTART_WINDOW, RESTART_DELAY);
		ev_timer_set(&s->restart_timer, RESTART_DELAY, 0);
		ev_timer_start(loop, &s->restart_timer);
		return;
	}
	worker_start(s, 1);
}

int
worker_restart(struct sup *s)
{
	struct worker_proc *w = &s->worker;

	if (w->state != WORKER_RUNNING || w->kill_cause >= 0)
		return -EAGAIN;
	w->kill_cause = CAUSE_RESTART;
	s->restart_old_pid = w->pid;
	standby_stop(s, 0);	/* it runs the binary of its time: the replacement must not */
	/* after a checkpoint, so the replacement has little log to replay */
	return kill(w->pid, SIGKILL) < 0 ? -errno : 0;
}

/* Is some thread of pid in uninterruptible sleep, i.e. waiting for the disk? */
static int
waiting_on_disk(pid_t pid)
{
	char path[64], buf[512];
	struct dirent *de;
	DIR *d;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(d = opendir(path)))
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		char *rp;
		ssize_t n;
		int fd;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stat", (int)pid, de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* "tid (comm) S ...": the state follows the last ')' */
		if ((rp = strrchr(buf, ')')) != NULL && rp[1] == ' ' && rp[2] == 'D')
			found = 1;
	}
	closedir(d);
	return found;
}

static void
hang_kill(struct sup *s, double age)
{
	struct worker_proc *w = &s->worker;

	w->hang_age_ms = age;
	w->kill_cause = CAUSE_HANG;
	hlog(HLOG_ERROR, "worker %d is hung: %s for %.0f ms (timeout %u ms); killing it",
	    (int)w->pid, w->hang_req, age, s->o.hang_timeout_ms);
	kill(w->pid, SIGKILL);
}

/*
 * A worker whose threads all stopped while waiting for requests holds none:
 * the slots cannot show its hang.  The supervisor polls the fd (it never
 * reads it): requests pending while the worker has taken none for a whole
 * timeout mean nobody is reading.  Returns 1 if it killed the worker.
 */
static int
unread_requests_stuck(struct sup *s, double now_ns)
{
	struct pollfd p = { .fd = s->fuse_fd, .events = POLLIN };
	uint64_t taken, done;
	double age;

	ctlmem_requests(s->ctl, &taken, &done);
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN) || taken != s->watch_taken) {
		s->watch_taken = taken;
		s->pending_since = 0;
		return 0;
	}
	if (s->pending_since == 0) {
		s->pending_since = now_ns;
		return 0;
	}
	age = (now_ns - s->pending_since) / 1e6;
	if (age <= s->o.hang_timeout_ms)
		return 0;
	if (age <= (double)s->o.hang_timeout_ms * HANG_TIMEOUT_MAX_FACTOR && waiting_on_disk(s->worker.pid))
		return 0;	/* every thread busy on a slow disk: not a hang */
	snprintf(s->worker.hang_req, sizeof(s->worker.hang_req), "requests pending, none read");
	hang_kill(s, age);
	s->pending_since = 0;
	return 1;
}

/*
 * Hang detection: a request outstanding longer than the hang timeout means
 * the worker is hung, even while its other threads progress.  Unless it is
 * merely slow: while some thread of the worker waits on the disk (state D),
 * the device is the bottleneck and killing the worker would only add a
 * restart, so the request gets up to HANG_TIMEOUT_MAX_FACTOR timeouts.
 */
static void
watch_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sup *s = t->data;
	struct worker_proc *w = &s->worker;
	double now_ns;

	(void)loop;
	(void)revents;
	if (w->state != WORKER_RUNNING || w->kill_cause >= 0 || !s->ctl->watch)
		return;
	now_ns = (double)ctlmem_now_ns();
	if (unread_requests_stuck(s, now_ns))
		return;
	for (int i = 0; i < CTLMEM_SLOTS; i++) {
		struct ctl_slot *sl = &s->ctl->slot[i];
		uint64_t u = atomic_load_explicit(&sl->unique, memory_order_acquire);
		double age;

		if (!u)
			continue;
		age = (now_ns - (double)atomic_load(&sl->start_ns)) / 1e6;
		if (age <= s->o.hang_timeout_ms)
			continue;
		if (age <= (double)s->o.hang_timeout_ms * HANG_TIMEOUT_MAX_FACTOR && waiting_on_disk(w->pid)) {
			if (u != s->slow_unique) {
				char what[160];
				s->slow_unique = u;
				s->slow_waits++;
				request_describe(sl, u, what, sizeof(what));
				hlog(HLOG_WARN, "worker %d is slow, not hung: %s outstanding for %.0f ms while "
				    "it waits on the disk", (int)w->pid, what, age);
			}
			continue;
		}
		request_describe(sl, u, w->hang_req, sizeof(w->hang_req) - 12);
		strcat(w->hang_req, " outstanding");
		hang_kill(s, age);
		return;
	}
}

void
workers_init(struct sup *s)
{
	ev_child_init(&s->child_w, child_cb, 0, 0);
	s->child_w.data = s;
	ev_child_start(s->loop, &s->child_w);
	ev_timer_init(&s->restart_timer, restart_cb, RESTART_DELAY, 0);
	s->restart_timer.data = s;
	ev_timer_init(&s->standby.timer, standby_cb, STANDBY_DELAY, 0);
	s->standby.timer.data = s;
	s->standby.ctl_fd = -1;
	s->worker.ctl_fd = -1;
	s->worker.kill_cause = -1;
	{
		/* look at the slots a few times per timeout, but not more than 100 times a second */
		double tick = s->o.hang_timeout_ms / 4000.0;
		if (tick < 0.01)
			tick = 0.01;
		if (tick > 0.25)
			tick = 0.25;
		ev_timer_init(&s->watch_timer, watch_cb, tick, tick);
	}
	s->watch_timer.data = s;
	ev_timer_start(s->loop, &s->watch_timer);
}
