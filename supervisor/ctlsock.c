/*
 * ctlsock: the mount's control socket, /run/hcowfs/MAJ:MIN.sock.
 *
 * One request per connection (proto.h).  Only root, or the uid given with
 * -o owner=, may talk to it: the socket is mode 0600, owned by that uid if
 * there is one (root passes the mode anyway), and the peer's credentials are
 * checked besides.  The supervisor answers `status` itself (with the disks
 * asked from the worker, or without them if the worker does not answer
 * within STATUS_WAIT seconds: status must work when the worker does not) and
 * relays everything else to the worker.
 *
 * The supervisor never blocks on a client: an answer the socket cannot take
 * at once is sent as the client reads it (an EV_WRITE watcher), and a client
 * that has not read it all within ANSWER_WAIT seconds is dropped.  (A blocking
 * send to a client that does not read would hold up the event loop, and with
 * it the replacement of a dead worker.)
 *
 * Bounds, so that clients (the owner's included) cannot starve the mount:
 * at most CLIENTS_MAX connections at a time, and none that would leave fewer
 * than FD_RESERVE descriptors free (a replacement worker needs some); more
 * are answered EBUSY and closed at once.  At most ANSWERS_MAX bytes of
 * answers wait to be read (beyond, an answer over ANSWER_SMALL is replaced
 * by EBUSY, and status leaves its disks out), and
 * RELAYS_MAX requests wait for the worker, status ahead of the rest (relay.c).  When accept() finds no descriptor left (EMFILE), one
 * kept in reserve is closed to take the connection and refuse it, or failing
 * that the socket is not watched for ACCEPT_PAUSE seconds: never a busy loop.
 * A refused connection is logged at most once a second, with a count.  A
 * client that hangs up while its request waits is dropped with its request.
 * `hcowctl restart` sooner than RESTART_GAP after the previous one waits for
 * the rest of the gap (it is answered when done), so a loop of restarts
 * cannot keep the mount replacing workers.
 *
 * A client's life: reading its request line (CLIENT_LINE_WAIT) -> waiting
 * for the worker's answer (a relay, or a restart) or answered at once ->
 * sending the answer (ANSWER_WAIT) -> closed.  Only client_send answers, and
 * it first takes the client from the relays and the restart, so a client
 * gets one answer at most.
 *
 * The text and JSON of status are status.c's.
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
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
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
#define CLIENTS_MAX	2048	/* control connections open at a time */
#define ANSWERS_MAX	(32u << 20)	/* bytes of answers held for clients to read */
#define ANSWER_SMALL	(16u << 10)	/* an answer this small is never refused for memory */
#define FD_RESERVE	32	/* descriptors never given to clients: workers need them */
#define ACCEPT_PAUSE	0.1	/* seconds without accepting when out of descriptors */
#define REFUSAL_LOG_GAP	1.0	/* seconds between log lines about refused connections */
#define RESTART_GAP	1.0	/* seconds from one hcowctl restart to the next */

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
	int		 restart_gap;	/* waiting for RESTART_GAP to pass before a restart */
	int		 got_line;	/* its request line was read */
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
	if (c->out)
		s->ctl_bounds.answer_bytes -= c->out_len;
	free(c->out);
	free(c);
	s->ctl_bounds.clients--;
}

/*
 * Close a connection we have answered.  Input left unread at close resets
 * it: the client would lose the answer.  Bounded, so a client that keeps
 * sending cannot hold the supervisor here.
 */
static void
drain_input(int fd)
{
	char drain[4096];

	for (int i = 0; i < 64 && recv(fd, drain, sizeof(drain), MSG_DONTWAIT) > 0; i++)
		;
}

/* Send what the socket takes of the answer; close once it is all sent. */
static void
client_flush(struct sup *s, struct client *c)
{
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
	drain_input(c->fd);
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
	static const char busy[] = "the supervisor holds too many answers not yet read by their "
	    "clients; try again\n";
	char head[32];
	int n;

	if (len > ANSWER_SMALL && s->ctl_bounds.answer_bytes &&
	    s->ctl_bounds.answer_bytes + len > ANSWERS_MAX) {
		err = EBUSY;
		body = busy;
		len = sizeof(busy) - 1;
	}
	n = err ? snprintf(head, sizeof(head), "error %d\n", err) : snprintf(head, sizeof(head), "ok\n");
	if (s->restart_waiter == c)
		s->restart_waiter = NULL;
	relay_forget_client(s, c);
	ev_io_stop(s->loop, &c->io);
	ev_timer_stop(s->loop, &c->timer);
	c->status = c->restart = c->restart_gap = 0;
	if (!(c->out = malloc((size_t)n + len))) {
		hlog(HLOG_WARN, "control connection dropped: no memory for its answer");
		client_close(s, c);
		return;
	}
	memcpy(c->out, head, (size_t)n);
	memcpy(c->out + n, body, len);
	c->out_len = (size_t)n + len;
	c->out_off = 0;
	s->ctl_bounds.answer_bytes += c->out_len;
	client_flush(s, c);
}

static void
client_fail(struct sup *s, struct client *c, int err, const char *msg)
{
	client_send(s, c, err, msg, strlen(msg));
}

/* The replacement asked for by hcowctl restart is serving (workers.c calls it back). */
static void
client_restart_done(struct sup *s, int err, const char *msg)
{
	struct client *c = s->restart_waiter;

	s->restart_waiter = NULL;
	s->ctl_bounds.restart_at = ev_now(s->loop);
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
		s->ctl_bounds.restart_at = ev_now(s->loop);
		s->restart_waiter = c;
		return;
	}
	if (!c->status) {
		client_send(s, c, err, body, len);
		return;
	}
	if (!err && s->ctl_bounds.answer_bytes &&
	    s->ctl_bounds.answer_bytes + len > ANSWERS_MAX) {
		/* status must answer: without the disks, rather than not at all */
		static const char held[] = "too many answers held for clients that have not read them";
		err = EBUSY;
		body = held;
		len = sizeof(held) - 1;
	}
	if (c->json)
		status_json(s, &b, body, len, err);
	else
		status_text(s, &b, body, len, err);
	if (b.oom)
		client_send(s, c, ENOMEM, "out of memory", 13);
	else
		client_send(s, c, 0, sbuf_str(&b), b.len);
	sbuf_release(&b);
}

/* Relay line for c; 0, or c was answered with why not (-1: c is gone). */
static int
client_relay(struct sup *s, struct client *c, const char *line)
{
	int rc = relay_submit(s, c, line, client_answer, 0);

	if (rc == -EBUSY)
		client_fail(s, c, EBUSY, "too many control requests waiting for the worker; try again\n");
	else if (rc < 0)
		client_fail(s, c, ENOMEM, "out of memory\n");
	return rc < 0 ? -1 : 0;
}

/* The checkpoint that comes before a restart (its gap has passed); 0, or -1: c is gone. */
static int
client_restart_checkpoint(struct sup *s, struct client *c)
{
	c->restart_gap = 0;
	/* a checkpoint first, so the replacement has little log to replay */
	if (client_relay(s, c, "json checkpoint") < 0)
		return -1;
	ev_timer_set(&c->timer, REQUEST_WAIT, 0);
	ev_timer_start(s->loop, &c->timer);
	return 0;
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
	if (c->restart_gap) {
		client_restart_checkpoint(c->s, c);
		return;
	}
	if (c->status) {
		client_answer(c->s, c, ETIMEDOUT, NULL, 0);
		return;
	}
	if (!c->got_line) {
		/* the client, not the worker, is late */
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
		{ "copy-logged", FAULT_OP_COPY_LOGGED }, { "copy-synced", FAULT_OP_COPY_SYNCED },
		{ "copy-row", FAULT_OP_COPY_ROW },
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
			    "lookup, append, control, copy-logged, copy-synced, copy-row\n");
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

/*
 * After its request line, a client only waits: if it hangs up meanwhile, it
 * is dropped with its request.  A half close (shutdown of its sending side)
 * is not a hang-up: it still reads the answer.
 */
static void
client_hangup_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct client *c = io->data;
	struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
	char drain[512];
	ssize_t n = recv(c->fd, drain, sizeof(drain), MSG_DONTWAIT);

	(void)revents;
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;		/* bytes after the request are ignored */
	if (n == 0 && poll(&pfd, 1, 0) == 1 && !(pfd.revents & (POLLHUP | POLLERR))) {
		ev_io_stop(loop, io);	/* half closed: it still waits for the answer */
		return;
	}
	client_close(c->s, c);
}

/* From its request line on, notice if the client hangs up. */
static void
client_watch_hangup(struct sup *s, struct client *c)
{
	ev_io_stop(s->loop, &c->io);
	ev_set_cb(&c->io, client_hangup_cb);
	ev_io_start(s->loop, &c->io);
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
	c->got_line = 1;
	ev_io_stop(s->loop, &c->io);
	/* the request line's timer is running: a timer is only set when stopped */
	ev_timer_stop(s->loop, &c->timer);
	if (strcmp(req.verb, "status") == 0) {
		c->status = 1;
		if (relay_submit(s, c, c->json ? "json disks" : "text disks", client_answer, 1) < 0) {
			/* status must answer even when the queue is full: without the disks */
			static const char full[] = "too many control requests waiting for the worker";
			client_answer(s, c, EBUSY, full, sizeof(full) - 1);
			return;
		}
		ev_timer_set(&c->timer, STATUS_WAIT, 0);
	} else if (strcmp(req.verb, "restart") == 0) {
		double wait = s->ctl_bounds.restart_at + RESTART_GAP - ev_now(s->loop);
		if (s->worker.state != WORKER_RUNNING || s->restart_waiter) {
			client_fail(s, c, EAGAIN, "the worker is being replaced already; try again\n");
			return;
		}
		c->restart = 1;
		s->restart_waiter = c;	/* one restart at a time, from here to its end */
		if (s->ctl_bounds.restart_at > 0 && wait > 0) {
			hlog(HLOG_INFO, "hcowctl restart %.1f s after the previous one: waiting %.1f s "
			    "(at most one restart per %.0f s)", RESTART_GAP - wait, wait, RESTART_GAP);
			c->restart_gap = 1;
			ev_timer_set(&c->timer, wait, 0);
			ev_timer_start(s->loop, &c->timer);
		} else if (client_restart_checkpoint(s, c) < 0) {
			return;
		}
		client_watch_hangup(s, c);
		return;
	} else if (strcmp(req.verb, "fault") == 0) {
		client_arm_fault(s, c, &req);
		return;
	} else if (!strcmp(req.verb, "create") || !strcmp(req.verb, "delete") ||
	    !strcmp(req.verb, "list") || !strcmp(req.verb, "ping") || !strcmp(req.verb, "check") ||
	    !strcmp(req.verb, "checkpoint") || !strcmp(req.verb, "snapshot") ||
	    !strcmp(req.verb, "snapshots") || !strcmp(req.verb, "clone") ||
	    !strcmp(req.verb, "rollback") || !strcmp(req.verb, "ranges")) {
		if (client_relay(s, c, c->buf) < 0)
			return;
		ev_timer_set(&c->timer, strcmp(req.verb, "check") ? REQUEST_WAIT : CHECK_WAIT, 0);
	} else {
		snprintf(msg, sizeof(msg), "unknown request '%s'\n", req.verb);
		client_fail(s, c, EINVAL, msg);
		return;
	}
	ev_timer_start(s->loop, &c->timer);
	client_watch_hangup(s, c);
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

/*
 * A connection refused: log it (at most one line per REFUSAL_LOG_GAP, with
 * how many went unlogged, so a flood cannot fill the data dir's file system
 * with log lines), answer it and close it, all without a struct client.
 */
static void
refuse(struct sup *s, int fd, int err, const char *msg, const char *why, int uid)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "error %d\n", err);
	struct iovec iov[2] = { { head, (size_t)n }, { (char *)msg, strlen(msg) } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	double now = ev_now(s->loop);

	if (now - s->ctl_bounds.refused_logged_at >= REFUSAL_LOG_GAP) {
		if (s->ctl_bounds.refused_unlogged)
			hlog(HLOG_WARN, "refused control connection from uid %d: %s (and %u more "
			    "refused since the last such line)", uid, why, s->ctl_bounds.refused_unlogged);
		else
			hlog(HLOG_WARN, "refused control connection from uid %d: %s", uid, why);
		s->ctl_bounds.refused_logged_at = now;
		s->ctl_bounds.refused_unlogged = 0;
	} else {
		s->ctl_bounds.refused_unlogged++;
	}
	/* a fresh socket's buffer takes these few bytes at once */
	if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* the client is gone already */
	}
	drain_input(fd);
	close(fd);
}

/* The pause after EMFILE is over: accept again. */
static void
accept_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sup *s = t->data;

	(void)revents;
	ev_io_start(loop, &s->listen_io);
}

/*
 * accept() found no descriptor free.  Level-triggered, the socket stays
 * readable: take the connection with the reserve descriptor and refuse it,
 * or, without one, stop watching the socket for ACCEPT_PAUSE.
 */
static void
accept_out_of_fds(struct sup *s)
{
	int fd = -1;

	if (s->ctl_bounds.reserve_fd >= 0) {
		close(s->ctl_bounds.reserve_fd);
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			refuse(s, fd, EBUSY, "the mount's supervisor has no file descriptor free; "
			    "try again\n", "no file descriptor free", -1);
		s->ctl_bounds.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		ev_io_stop(s->loop, &s->listen_io);
		ev_timer_set(&s->ctl_bounds.pause, ACCEPT_PAUSE, 0);
		ev_timer_start(s->loop, &s->ctl_bounds.pause);
	}
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sup *s = io->data;
	struct ucred cred = { .uid = (uid_t)-1 };
	socklen_t clen = sizeof(cred);
	struct client *c;
	int fd;

	(void)revents;
	fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			accept_out_of_fds(s);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    (cred.uid != 0 && (s->o.owner_uid < 0 || cred.uid != (uid_t)s->o.owner_uid))) {
		refuse(s, fd, EACCES, "permission denied: only root or the mount's owner may control "
		    "it\n", "not root nor the owner", (int)cred.uid);
		return;
	}
	if (s->ctl_bounds.clients >= CLIENTS_MAX || fd >= s->ctl_bounds.fd_limit - FD_RESERVE) {
		refuse(s, fd, EBUSY, "too many control connections open; try again\n",
		    "too many connections open", (int)cred.uid);
		return;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		close(fd);
		return;
	}
	s->ctl_bounds.clients++;
	c->s = s;
	c->fd = fd;
	ev_io_init(&c->io, client_read_cb, fd, EV_READ);
	c->io.data = c;
	ev_io_init(&c->wio, client_write_cb, fd, EV_WRITE);
	c->wio.data = c;
	ev_timer_init(&c->timer, client_timeout_cb, REQUEST_WAIT, 0);
	c->timer.data = c;
	/* a client that never finishes its request line is dropped */
	ev_timer_set(&c->timer, CLIENT_LINE_WAIT, 0);
	ev_timer_start(loop, &c->timer);
	ev_io_start(loop, &c->io);
}

/* How many descriptors we may have open; clients are refused near it. */
static int
fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1 << 20)
		return 1 << 20;
	return (int)rl.rlim_cur;
}

/* Listen on the mount's control socket; 0, or -1 with the reason in err. */
int
ctlsock_open(struct sup *s, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t umask_was;
	int rc;

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
	/* 0600 from its creation: nobody else may connect in between */
	umask_was = umask(0177);
	rc = s->listen_fd < 0 ? -1 : bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(umask_was);
	/* the owner connects by owning it; root passes the mode anyway */
	if (rc < 0 || chmod(s->sock_path, 0600) < 0 ||
	    (s->o.owner_uid >= 0 && chown(s->sock_path, (uid_t)s->o.owner_uid, (gid_t)-1) < 0) ||
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
	s->ctl_bounds.fd_limit = fd_limit();
	s->ctl_bounds.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ev_timer_init(&s->ctl_bounds.pause, accept_pause_cb, ACCEPT_PAUSE, 0);
	s->ctl_bounds.pause.data = s;
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
