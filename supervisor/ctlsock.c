/*
 * ctlsock: the mount's control socket, /run/hcowfs/MAJ:MIN.sock.
 *
 * One request per connection (proto.h).  Only root, or the uid given with
 * -o owner=, may talk to it: the socket is mode 0600 (0666 with an owner, the
 * peer's credentials being checked either way).  The supervisor answers
 * `status` itself (with the disks asked from the worker, or without them if
 * the worker does not answer within STATUS_WAIT seconds: status must work
 * when the worker does not) and relays everything else to the worker.
 *
 * The supervisor never blocks on a client: an answer the socket cannot take
 * at once is sent as the client reads it (an EV_WRITE watcher), and a client
 * that has not read it all within ANSWER_WAIT seconds is dropped.  (A blocking
 * send to a client that does not read would hold up the event loop, and with
 * it the replacement of a dead worker.)
 *
 * A client's life: reading its request line (CLIENT_LINE_WAIT) -> waiting
 * for the worker's answer (a relay, or a restart) or answered at once ->
 * sending the answer (ANSWER_WAIT) -> closed.  Only client_send answers, and
 * it first takes the client from the relays and the restart, so a client
 * gets one answer at most.
 *
 * main.c opens and closes it; it calls relay.c (relay_submit,
 * relay_forget_client), workers.c (worker_restart) and faults.c, which
 * answer through the callbacks it gives them (client_answer,
 * client_restart_done), never by calling into this file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "hlog.h"
#include "sbuf.h"
#include "supervisor.h"

#define STATUS_WAIT	2.0	/* seconds */
#define REQUEST_WAIT	120.0	/* seconds, for everything else */
#define CHECK_WAIT	86400.0	/* a check reads all of the log; hcowctl can be interrupted */
#define CLIENT_LINE_WAIT 10.0	/* seconds for a client to send its request line */
#define ANSWER_WAIT	10.0	/* seconds for a client to read its answer */

struct client {
	struct sup	*s;
	int		 fd;
	ev_io		 io;
	ev_timer	 timer;
	char		 buf[PROTO_LINE_MAX + 1];
	size_t		 len;
	int		 json;
	int		 status;	/* waiting for the disks to finish a status */
	int		 restart;	/* waiting for the checkpoint before a restart */
	ev_io		 wio;		/* sending the answer */
	char		*out;		/* the answer, out_off of out_len bytes sent */
	size_t		 out_len, out_off;
};

static void
client_close(struct sup *s, struct client *c)
{
	if (s->restart_waiter == c)
		s->restart_waiter = NULL;
	ev_io_stop(s->loop, &c->io);
	ev_io_stop(s->loop, &c->wio);
	ev_timer_stop(s->loop, &c->timer);
	relay_forget_client(s, c);
	close(c->fd);
	free(c->out);
	free(c);
}

/* Send what the socket takes of the answer; close once it is all sent. */
static void
client_flush(struct sup *s, struct client *c)
{
	char drain[4096];

	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!ev_is_active(&c->wio)) {
				ev_io_start(s->loop, &c->wio);
				ev_timer_set(&c->timer, ANSWER_WAIT, 0);
				ev_timer_start(s->loop, &c->timer);
			}
			return;
		}
		if (n <= 0) {
			client_close(s, c);	/* the client went away */
			return;
		}
		c->out_off += (size_t)n;
	}
	/*
	 * Input left unread at close resets the connection: the client would
	 * lose this answer.  Bounded, so a client that keeps sending cannot
	 * hold the supervisor here.
	 */
	for (int i = 0; i < 64 && recv(c->fd, drain, sizeof(drain), MSG_DONTWAIT) > 0; i++)
		;
	client_close(s, c);
}

static void
client_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct client *c = io->data;

	(void)loop;
	(void)revents;
	client_flush(c->s, c);
}

/*
 * Answer the client and close: from here on nothing else may answer it (the
 * worker's late reply, a restart's end), and its socket is only written.
 */
static void
client_send(struct sup *s, struct client *c, int err, const char *body, size_t len)
{
	char head[32];
	int n = err ? snprintf(head, sizeof(head), "error %d\n", err) : snprintf(head, sizeof(head), "ok\n");

	if (s->restart_waiter == c)
		s->restart_waiter = NULL;
	relay_forget_client(s, c);
	ev_io_stop(s->loop, &c->io);
	ev_timer_stop(s->loop, &c->timer);
	c->status = c->restart = 0;
	if (!(c->out = malloc((size_t)n + len))) {
		hlog(HLOG_WARN, "control connection dropped: no memory for its answer");
		client_close(s, c);
		return;
	}
	memcpy(c->out, head, (size_t)n);
	memcpy(c->out + n, body, len);
	c->out_len = (size_t)n + len;
	c->out_off = 0;
	client_flush(s, c);
}

static void
client_fail(struct sup *s, struct client *c, int err, const char *msg)
{
	client_send(s, c, err, msg, strlen(msg));
}

/* Seconds since a CLOCK_MONOTONIC time. */
static double
uptime_since(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static const char *
worker_state_name(const struct worker_proc *w)
{
	switch (w->state) {
	case WORKER_STARTING: return "starting";
	case WORKER_RUNNING: return "running";
	default: return "restarting";
	}
}

static unsigned
outstanding(struct sup *s)
{
	unsigned n = 0;

	for (int i = 0; i < CTLMEM_SLOTS; i++)
		n += atomic_load(&s->ctl->slot[i].unique) != 0;
	return n;
}

static void
status_json(struct sup *s, struct sbuf *b, const char *disks, size_t dlen)
{
	struct worker_proc *w = &s->worker;
	unsigned kept = s->nfaults < FAULTS_KEPT ? s->nfaults : FAULTS_KEPT;
	unsigned pkept = s->npoison < POISON_KEPT ? s->npoison : POISON_KEPT;
	uint64_t taken, done;

	ctlmem_requests(s->ctl, &taken, &done);

	sbuf_addstr(b, "{\"mountpoint\":");
	sbuf_json_str(b, s->o.mountpoint);
	sbuf_addstr(b, ",\"templates\":");
	sbuf_json_str(b, s->o.tmpldir);
	sbuf_addstr(b, ",\"datadir\":");
	sbuf_json_str(b, s->o.datadir);
	sbuf_printf(b, ",\"supervisor\":{\"pid\":%d,\"uptime_s\":%.0f}", (int)getpid(),
	    uptime_since(&s->started));
	sbuf_printf(b, ",\"reissue\":\"%s\",\"watch\":%s,\"hang_timeout_ms\":%u,\"slow_waits\":%llu,"
	    "\"fault_injection\":%s", s->ctl->reissue == REISSUE_REPLAY ? "replay" : "resend",
	    s->ctl->watch ? "true" : "false", s->o.hang_timeout_ms, (unsigned long long)s->slow_waits,
	    s->o.fault_injection ? "true" : "false");
	sbuf_addstr(b, ",\"workers\":[");
	if (w->pid > 0)
		sbuf_printf(b, "{\"pid\":%d,\"state\":\"%s\",\"uptime_s\":%.0f,\"requests_served\":%llu,"
		    "\"outstanding\":%u,\"replacement\":%s}",
		    (int)w->pid, worker_state_name(w), uptime_since(&w->started),
		    (unsigned long long)(done - w->done_at_start),
		    outstanding(s), w->takeover ? "true" : "false");
	if (s->standby.pid > 0)
		sbuf_printf(b, "%s{\"pid\":%d,\"state\":\"standby\",\"uptime_s\":%.0f,"
		    "\"requests_served\":0,\"outstanding\":0,\"replacement\":false}",
		    w->pid > 0 ? "," : "", (int)s->standby.pid, uptime_since(&s->standby.started));
	sbuf_printf(b, "],\"restarts\":%llu,\"restarts_by_cause\":{", (unsigned long long)s->restarts);
	for (int c = 0; c < CAUSE_COUNT; c++)
		sbuf_printf(b, "%s\"%s\":%llu", c ? "," : "", fault_cause_name(c),
		    (unsigned long long)s->by_cause[c]);
	sbuf_printf(b, "},\"faults_total\":%u,\"faults\":[", s->nfaults);
	for (unsigned i = 0; i < kept; i++) {
		const struct fault *f = &s->faults[(s->nfaults - kept + i) % FAULTS_KEPT];
		char when[32];
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&f->when));
		sbuf_printf(b, "%s{\"time\":\"%s\",\"kind\":\"%s\",\"pid\":%d,\"what\":", i ? "," : "",
		    when, fault_cause_name(f->cause), (int)f->pid);
		sbuf_json_str(b, f->what);
		sbuf_printf(b, ",\"detect_ms\":%.1f,\"recover_ms\":", f->detect_ms);
		if (f->recover_ms >= 0)
			sbuf_printf(b, "%.2f}", f->recover_ms);
		else
			sbuf_addstr(b, "null}");
	}
	sbuf_printf(b, "],\"poisoned\":{\"answered_eio\":%llu,\"requests\":[",
	    (unsigned long long)atomic_load(&s->ctl->poisoned));
	for (unsigned i = 0; i < pkept; i++) {
		sbuf_addstr(b, i ? "," : "");
		sbuf_json_str(b, s->poison_what[(s->npoison - pkept + i) % POISON_KEPT]);
	}
	sbuf_printf(b, "]},\"faults_injected\":%llu", (unsigned long long)atomic_load(&s->ctl->faults_fired));
	sbuf_printf(b, ",\"requests\":{\"taken\":%llu,\"done\":%llu},\"disks\":",
	    (unsigned long long)taken, (unsigned long long)done);
	if (disks)
		sbuf_add(b, disks, dlen);
	else
		sbuf_addstr(b, "null,\"disks_error\":\"the worker did not answer\"");
	sbuf_addstr(b, "}\n");
}

static void
status_text(struct sup *s, struct sbuf *b, const char *disks, size_t dlen)
{
	struct worker_proc *w = &s->worker;
	uint64_t taken, done;

	ctlmem_requests(s->ctl, &taken, &done);

	sbuf_printf(b, "mount       %s\ntemplates   %s\ndata        %s\n", s->o.mountpoint,
	    s->o.tmpldir, s->o.datadir);
	sbuf_printf(b, "supervisor  pid %d, up %.0f s; hang timeout %u ms", (int)getpid(),
	    uptime_since(&s->started), s->o.hang_timeout_ms);
	if (s->slow_waits)
		sbuf_printf(b, " (%llu slow requests forgiven: disk wait)", (unsigned long long)s->slow_waits);
	sbuf_printf(b, "; reissue by %s\n", s->ctl->reissue == REISSUE_REPLAY ? "replay" : "kernel resend");
	if (w->pid > 0)
		sbuf_printf(b, "worker      pid %d, %s, up %.0f s, %llu requests served, %u outstanding\n",
		    (int)w->pid, worker_state_name(w), uptime_since(&w->started),
		    (unsigned long long)(done - w->done_at_start), outstanding(s));
	else
		sbuf_addstr(b, "worker      none (restarting)\n");
	if (s->standby.pid > 0)
		sbuf_printf(b, "standby     pid %d, up %.0f s, ready to take over\n", (int)s->standby.pid,
		    uptime_since(&s->standby.started));
	sbuf_printf(b, "restarts    %llu (crash %llu, hang %llu, exit %llu, restart %llu)\n",
	    (unsigned long long)s->restarts, (unsigned long long)s->by_cause[CAUSE_CRASH],
	    (unsigned long long)s->by_cause[CAUSE_HANG], (unsigned long long)s->by_cause[CAUSE_EXIT],
	    (unsigned long long)s->by_cause[CAUSE_RESTART]);
	if (s->nfaults) {
		const struct fault *f = &s->faults[(s->nfaults - 1) % FAULTS_KEPT];
		char when[32];
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&f->when));
		sbuf_printf(b, "last fault  %s: worker %d, %s", when, (int)f->pid, f->what);
		if (f->recover_ms >= 0)
			sbuf_printf(b, "; replaced in %.1f ms", f->recover_ms);
		sbuf_addstr(b, "\n");
	}
	if (s->npoison)
		sbuf_printf(b, "poisoned    %u requests answered EIO, last: %s\n", s->npoison,
		    s->poison_what[(s->npoison - 1) % POISON_KEPT]);
	sbuf_addstr(b, "\n");
	if (disks)
		sbuf_add(b, disks, dlen);
	else
		sbuf_addstr(b, "disks: unknown (the worker did not answer)\n");
}

/* The replacement asked for by hcowctl restart is serving (workers.c calls it back). */
static void
client_restart_done(struct sup *s, int err, const char *msg)
{
	struct client *c = s->restart_waiter;

	s->restart_waiter = NULL;
	if (c)
		client_send(s, c, err, msg, strlen(msg));
}

/* A relayed request finished: err 0 = ok, body is the result or message (relay.c calls it back). */
static void
client_answer(struct sup *s, struct client *c, int err, const char *body, size_t len)
{
	struct sbuf b = SBUF_INIT;

	if (c->restart) {
		int rc;
		if (err) {
			client_send(s, c, err, body, len);
			return;
		}
		c->restart = 0;
		if ((rc = worker_restart(s, client_restart_done)) < 0) {
			client_fail(s, c, -rc, "the worker is not running (starting or being replaced); "
			    "try again\n");
			return;
		}
		s->restart_waiter = c;
		return;
	}
	if (!c->status) {
		client_send(s, c, err, body, len);
		return;
	}
	if (err)
		body = NULL;
	if (c->json)
		status_json(s, &b, body, len);
	else
		status_text(s, &b, body, len);
	if (b.oom)
		client_send(s, c, ENOMEM, "out of memory", 13);
	else
		client_send(s, c, 0, sbuf_str(&b), b.len);
	sbuf_release(&b);
}

static void
client_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct client *c = t->data;

	(void)loop;
	(void)revents;
	if (c->out) {
		hlog(HLOG_WARN, "control connection dropped: the client did not read its answer "
		    "(%zu of %zu bytes) in %.0f s", c->out_off, c->out_len, ANSWER_WAIT);
		client_close(c->s, c);
		return;
	}
	if (c->status) {
		client_answer(c->s, c, ETIMEDOUT, NULL, 0);
		return;
	}
	if (ev_is_active(&c->io)) {
		/* still reading: the client, not the worker, is late */
		hlog(HLOG_WARN, "control connection dropped: no complete request line in %.0f s",
		    CLIENT_LINE_WAIT);
		client_fail(c->s, c, ETIMEDOUT, "no complete request line in time\n");
		return;
	}
	hlog(HLOG_WARN, "control request timed out");
	client_send(c->s, c, ETIMEDOUT, "the worker did not answer in time\n", 34);
}

/* hcowctl debug fault: arm the workers' fault injection (ctlmem.h). */
static void
client_arm_fault(struct sup *s, struct client *c, const struct proto_req *req)
{
	static const struct { const char *name; uint32_t op; } ops[] = {
		{ "any", FAULT_OP_ANY }, { "read", FUSE_READ }, { "write", FUSE_WRITE },
		{ "fsync", FUSE_FSYNC }, { "getattr", FUSE_GETATTR }, { "lookup", FUSE_LOOKUP },
		{ "append", FAULT_OP_APPEND }, { "control", FAULT_OP_CONTROL },
	};
	const char *kind = proto_arg(req, "kind"), *op = proto_arg(req, "op");
	const char *count = proto_arg(req, "count"), *ms = proto_arg(req, "ms");
	uint32_t k, o = FAULT_OP_ANY;
	long n = 1, m = 0;
	char msg[160];

	if (!s->o.fault_injection) {
		client_fail(s, c, EPERM, "fault injection is off on this mount (mount it with -o fault_injection)\n");
		return;
	}
	if (!kind || (strcmp(kind, "crash") && strcmp(kind, "hang") && strcmp(kind, "slow") &&
	    strcmp(kind, "none"))) {
		client_fail(s, c, EINVAL, "fault kind is one of crash, hang, slow, none\n");
		return;
	}
	k = !strcmp(kind, "crash") ? FAULT_CRASH : !strcmp(kind, "hang") ? FAULT_HANG :
	    !strcmp(kind, "slow") ? FAULT_SLOW : FAULT_NONE;
	if (op) {
		size_t i;
		for (i = 0; i < sizeof(ops) / sizeof(ops[0]) && strcmp(op, ops[i].name); i++)
			;
		if (i == sizeof(ops) / sizeof(ops[0])) {
			client_fail(s, c, EINVAL, "fault op is one of any, read, write, fsync, getattr, "
			    "lookup, append, control\n");
			return;
		}
		o = ops[i].op;
	}
	if ((count && ((n = strtol(count, NULL, 10)) < 1 || n > 1000000)) ||
	    (ms && ((m = strtol(ms, NULL, 10)) < 1 || m > 3600000))) {
		client_fail(s, c, EINVAL, "count is 1 to 1000000, ms is 1 to 3600000\n");
		return;
	}
	if (k == FAULT_SLOW && !ms)
		m = 2 * (long)s->o.hang_timeout_ms;
	atomic_store(&s->ctl->fault_count, 0);
	atomic_store(&s->ctl->fault_op, o);
	atomic_store(&s->ctl->fault_ms, (uint32_t)m);
	atomic_store(&s->ctl->fault_kind, k);
	atomic_store(&s->ctl->fault_count, k == FAULT_NONE ? 0 : (int32_t)n);
	if (k == FAULT_NONE)
		snprintf(msg, sizeof(msg), "fault injection disarmed\n");
	else
		snprintf(msg, sizeof(msg), "armed: %s in %s, %ld time%s%s\n", kind, op ? op : "any request",
		    n, n == 1 ? "" : "s", k == FAULT_SLOW ? " (stall)" : "");
	hlog(HLOG_WARN, "fault injection %s", msg);
	client_send(s, c, 0, msg, strlen(msg));
}

static void
client_request(struct sup *s, struct client *c)
{
	struct proto_req req;
	char copy[PROTO_LINE_MAX + 1];
	const char *why;
	char msg[PROTO_LINE_MAX + 64];

	memcpy(copy, c->buf, c->len + 1);
	if (proto_parse(copy, &req, &why) < 0) {
		snprintf(msg, sizeof(msg), "malformed request: %s\n", why);
		client_fail(s, c, EINVAL, msg);
		return;
	}
	c->json = req.json;
	ev_io_stop(s->loop, &c->io);
	/* the request line's timer is running: a timer is only set when stopped */
	ev_timer_stop(s->loop, &c->timer);
	if (strcmp(req.verb, "status") == 0) {
		c->status = 1;
		if (relay_submit(s, c, c->json ? "json disks" : "text disks", client_answer) < 0) {
			client_fail(s, c, ENOMEM, "out of memory\n");
			return;
		}
		ev_timer_set(&c->timer, STATUS_WAIT, 0);
	} else if (strcmp(req.verb, "restart") == 0) {
		if (s->worker.state != WORKER_RUNNING || s->restart_waiter) {
			client_fail(s, c, EAGAIN, "the worker is being replaced already; try again\n");
			return;
		}
		/* a checkpoint first, so the replacement has little log to replay */
		c->restart = 1;
		if (relay_submit(s, c, "json checkpoint", client_answer) < 0) {
			client_fail(s, c, ENOMEM, "out of memory\n");
			return;
		}
		ev_timer_set(&c->timer, REQUEST_WAIT, 0);
	} else if (strcmp(req.verb, "fault") == 0) {
		client_arm_fault(s, c, &req);
		return;
	} else if (!strcmp(req.verb, "create") || !strcmp(req.verb, "delete") ||
	    !strcmp(req.verb, "list") || !strcmp(req.verb, "ping") || !strcmp(req.verb, "check") ||
	    !strcmp(req.verb, "checkpoint")) {
		if (relay_submit(s, c, c->buf, client_answer) < 0) {
			client_fail(s, c, ENOMEM, "out of memory\n");
			return;
		}
		ev_timer_set(&c->timer, strcmp(req.verb, "check") ? REQUEST_WAIT : CHECK_WAIT, 0);
	} else {
		snprintf(msg, sizeof(msg), "unknown request '%s'\n", req.verb);
		client_fail(s, c, EINVAL, msg);
		return;
	}
	ev_timer_start(s->loop, &c->timer);
}

static void
client_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct client *c = io->data;
	struct sup *s = c->s;
	char *nl;

	(void)loop;
	(void)revents;
	switch (proto_read_more(c->fd, c->buf, &c->len, sizeof(c->buf) - 1)) {
	case 0:
		return;
	case -1:
		client_close(s, c);
		return;
	}
	c->buf[c->len] = '\0';
	if ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
		*nl = '\0';
		c->len = (size_t)(nl - c->buf);
		/* the parser sees a C string: a NUL would hide the rest of the line */
		if (memchr(c->buf, '\0', c->len))
			client_fail(s, c, EINVAL, "malformed request: NUL byte in the line\n");
		else
			client_request(s, c);
	} else if (c->len == sizeof(c->buf) - 1) {
		client_fail(s, c, E2BIG, "request longer than 4096 bytes\n");
	}
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sup *s = io->data;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct client *c;
	int fd;

	(void)revents;
	fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (!(c = calloc(1, sizeof(*c)))) {
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	ev_io_init(&c->io, client_read_cb, fd, EV_READ);
	c->io.data = c;
	ev_io_init(&c->wio, client_write_cb, fd, EV_WRITE);
	c->wio.data = c;
	ev_timer_init(&c->timer, client_timeout_cb, REQUEST_WAIT, 0);
	c->timer.data = c;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    (cred.uid != 0 && (s->o.owner_uid < 0 || cred.uid != (uid_t)s->o.owner_uid))) {
		hlog(HLOG_WARN, "refused control connection from uid %d", (int)cred.uid);
		client_fail(s, c, EACCES, "permission denied: only root or the mount's owner "
		    "may control it\n");
		return;
	}
	/* a client that never finishes its request line is dropped */
	ev_timer_set(&c->timer, CLIENT_LINE_WAIT, 0);
	ev_timer_start(loop, &c->timer);
	ev_io_start(loop, &c->io);
}

/* Listen on the mount's control socket; 0, or -1 with the reason in err. */
int
ctlsock_open(struct sup *s, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	proto_socket_path(s->dev_major, s->dev_minor, s->sock_path, sizeof(s->sock_path));
	if (mkdir(PROTO_RUNDIR, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create '%s': %s", PROTO_RUNDIR, strerror(errno));
		return -1;
	}
	if (strlen(s->sock_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path '%s' is too long", s->sock_path);
		return -1;
	}
	strcpy(sa.sun_path, s->sock_path);
	/* a socket left by a mount with the same device number that died is stale */
	unlink(s->sock_path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(s->sock_path, s->o.owner_uid >= 0 ? 0666 : 0600) < 0 ||
	    listen(s->listen_fd, 512) < 0) {
		snprintf(err, errlen, "cannot open control socket '%s': %s", s->sock_path, strerror(errno));
		return -1;
	}
	{
		struct stat sb;
		if (stat(s->sock_path, &sb) == 0) {
			s->sock_dev = sb.st_dev;
			s->sock_ino = sb.st_ino;
		}
	}
	ev_io_init(&s->listen_io, accept_cb, s->listen_fd, EV_READ);
	s->listen_io.data = s;
	ev_io_start(s->loop, &s->listen_io);
	return 0;
}

/*
 * Remove our socket, and only ours: a supervisor finishing its final
 * checkpoint after the umount may outlive its device number, and a new mount
 * that got the same number has put its own socket at the same path.
 */
void
ctlsock_close(struct sup *s)
{
	struct stat sb;

	if (s->sock_path[0] && stat(s->sock_path, &sb) == 0 &&
	    sb.st_dev == s->sock_dev && sb.st_ino == s->sock_ino)
		unlink(s->sock_path);
}
