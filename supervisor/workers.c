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
 * Throttle: more than RESTART_BURST restarts within RESTART_WINDOW seconds
 * and each further restart waits RESTART_DELAY, so a worker that cannot run
 * does not fork-bomb the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hlog.h"
#include "mounts.h"
#include "supervisor.h"

#define RESTART_BURST	10
#define RESTART_WINDOW	10	/* seconds */
#define RESTART_DELAY	1.0	/* seconds */

static void ctl_read_cb(struct ev_loop *loop, ev_io *w, int revents);

static void
fault_record(struct sup *s, pid_t pid, const char *what)
{
	struct fault *f = &s->faults[s->nfaults % FAULTS_KEPT];

	f->when = time(NULL);
	f->pid = pid;
	snprintf(f->what, sizeof(f->what), "%s", what);
	s->nfaults++;
}

/* Send a relay's request to the running worker; on failure it waits for the next one. */
static void
relay_send(struct sup *s, struct relay *r)
{
	char *msg;
	int n;

	if (s->worker.state != WORKER_RUNNING || r->sent)
		return;
	n = asprintf(&msg, "%llu %s\n", (unsigned long long)r->id, r->line);
	if (n < 0)
		return;
	if (send(s->worker.ctl_fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) == n)
		r->sent = 1;
	else
		hlog(HLOG_WARN, "cannot send control request to worker %d: %s",
		    (int)s->worker.pid, strerror(errno));
	free(msg);
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

/* The worker died: what it was sent goes to the next one, marked as a retry. */
static void
relays_requeue(struct sup *s)
{
	for (struct relay *r = s->relays; r; r = r->next) {
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
	if (!s->mounted)
		sup_mounted(s);
	if (send(w->ctl_fd, "start\n", 6, MSG_NOSIGNAL) != 6) {
		hlog(HLOG_WARN, "worker %d did not take 'start': %s", (int)w->pid, strerror(errno));
		return;
	}
	w->state = WORKER_RUNNING;
	clock_gettime(CLOCK_MONOTONIC, &now);
	hlog(HLOG_INFO, "worker %d serving%s, ready %.1f ms after start", (int)w->pid,
	    w->takeover ? " (replacement)" : "",
	    (double)(now.tv_sec - w->started.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - w->started.tv_nsec) / 1e6);
	for (struct relay *r = s->relays; r; r = r->next)
		relay_send(s, r);
}

/* Parse complete "ID ERR LEN\n<body>" frames out of the read buffer. */
static void
ctl_parse(struct sup *s)
{
	struct worker_proc *w = &s->worker;

	for (;;) {
		char *nl = memchr(w->rbuf, '\n', w->rlen);
		unsigned long long id;
		int err;
		size_t len, head;

		if (!nl)
			return;
		*nl = '\0';
		if (sscanf(w->rbuf, "%llu %d %zu", &id, &err, &len) != 3 || len > PROTO_BODY_MAX) {
			hlog(HLOG_ERROR, "worker %d sent a malformed control reply; killing it", (int)w->pid);
			kill(w->pid, SIGKILL);
			w->rlen = 0;
			return;
		}
		head = (size_t)(nl - w->rbuf) + 1;
		if (w->rlen < head + len) {
			*nl = '\n';
			return;
		}
		if (id == 0)
			worker_ready(s, err, w->rbuf + head, len);
		else
			relay_done(s, id, err, w->rbuf + head, len);
		memmove(w->rbuf, w->rbuf + head + len, w->rlen - head - len);
		w->rlen -= head + len;
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

void
worker_start(struct sup *s, int takeover)
{
	struct worker_proc *w = &s->worker;
	char fusefd[16], ctlfd[16], shmfd[16], segsz[32], cpms[16];
	char *argv[20];
	int sv[2], argc = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		hlog(HLOG_ERROR, "cannot create the worker's control channel: %s", strerror(errno));
		ev_timer_set(&s->restart_timer, RESTART_DELAY, 0);
		ev_timer_start(s->loop, &s->restart_timer);
		return;
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
	if (takeover)
		argv[argc++] = "--takeover";
	if (s->o.segment_size) {
		snprintf(segsz, sizeof(segsz), "%llu", (unsigned long long)s->o.segment_size);
		argv[argc++] = "--segment-size"; argv[argc++] = segsz;
	}
	if (s->o.checkpoint_ms) {
		snprintf(cpms, sizeof(cpms), "%u", s->o.checkpoint_ms);
		argv[argc++] = "--checkpoint-ms"; argv[argc++] = cpms;
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
		ev_timer_set(&s->restart_timer, RESTART_DELAY, 0);
		ev_timer_start(s->loop, &s->restart_timer);
		return;
	}
	w->pid = pid;
	w->state = WORKER_STARTING;
	w->takeover = takeover;
	w->ctl_fd = sv[0];
	w->rlen = 0;
	w->taken_at_start = atomic_load(&s->ctl->requests_taken);
	w->done_at_start = atomic_load(&s->ctl->requests_done);
	clock_gettime(CLOCK_MONOTONIC, &w->started);
	fcntl(w->ctl_fd, F_SETFL, O_NONBLOCK);
	ev_io_init(&w->ctl_io, ctl_read_cb, w->ctl_fd, EV_READ);
	w->ctl_io.data = s;
	ev_io_start(s->loop, &w->ctl_io);
	hlog(HLOG_INFO, "started worker %d%s", (int)pid, takeover ? " to take over the mount" : "");
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

static void
child_cb(struct ev_loop *loop, ev_child *cw, int revents)
{
	struct sup *s = cw->data;
	struct worker_proc *w = &s->worker;
	char what[160];
	int st = cw->rstatus;
	time_t now = time(NULL);

	(void)revents;
	if (cw->rpid != w->pid)
		return;
	if (WIFSIGNALED(st))
		snprintf(what, sizeof(what), "crash: killed by signal %d (%s)", WTERMSIG(st),
		    strsignal(WTERMSIG(st)));
	else
		snprintf(what, sizeof(what), "exit: status %d", WEXITSTATUS(st));
	ev_io_stop(loop, &w->ctl_io);
	close(w->ctl_fd);
	w->ctl_fd = -1;
	w->state = WORKER_GONE;
	w->pid = 0;

	if (!s->mounted) {
		/* the first worker died before the mount existed */
		sup_startup_failed(s, "worker ended before the mount was ready (%s); see %s/hcowfs.log",
		    what, s->o.datadir);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !still_mounted(s)) {
		hlog(HLOG_INFO, "%s unmounted; supervisor exiting", s->o.mountpoint);
		sup_exit(s, 0);
	}
	s->restarts++;
	fault_record(s, cw->rpid, what);
	hlog(HLOG_ERROR, "worker %d ended (%s); starting a replacement", (int)cw->rpid, what);
	relays_requeue(s);

	if (now - s->restart_window >= RESTART_WINDOW) {
		s->restart_window = now;
		s->restarts_in_window = 0;
	}
	if (++s->restarts_in_window > RESTART_BURST) {
		hlog(HLOG_WARN, "%u restarts in %d s; throttling: next worker in %.1f s",
		    s->restarts_in_window, RESTART_WINDOW, RESTART_DELAY);
		ev_timer_set(&s->restart_timer, RESTART_DELAY, 0);
		ev_timer_start(loop, &s->restart_timer);
		return;
	}
	worker_start(s, 1);
}

void
workers_init(struct sup *s)
{
	ev_child_init(&s->child_w, child_cb, 0, 0);
	s->child_w.data = s;
	ev_child_start(s->loop, &s->child_w);
	ev_timer_init(&s->restart_timer, restart_cb, RESTART_DELAY, 0);
	s->restart_timer.data = s;
	s->worker.ctl_fd = -1;
}
