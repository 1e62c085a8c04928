/*
 * ctlsock: the mount's control socket, /run/hcowfs/MAJ:MIN.sock.
 *
 * One request per connection (proto.h).  Only root, or the uid given with
 * -o owner=, may talk to it: the socket is mode 0600 (0666 with an owner, the
 * peer's credentials being checked either way).  The supervisor answers
 * `status` itself (with the disks asked from the worker, or without them if
 * the worker does not answer within STATUS_WAIT seconds: status must work
 * when the worker does not) and relays everything else to the worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hlog.h"
#include "sbuf.h"
#include "supervisor.h"

#define STATUS_WAIT	2.0	/* seconds */
#define REQUEST_WAIT	120.0	/* seconds, for everything else */

struct client {
	struct sup	*s;
	int		 fd;
	ev_io		 io;
	ev_timer	 timer;
	char		 buf[PROTO_LINE_MAX + 1];
	size_t		 len;
	int		 json;
	int		 status;	/* waiting for the disks to finish a status */
};

static void
client_close(struct sup *s, struct client *c)
{
	ev_io_stop(s->loop, &c->io);
	ev_timer_stop(s->loop, &c->timer);
	relay_forget_client(s, c);
	close(c->fd);
	free(c);
}

static void
client_send(struct sup *s, struct client *c, int err, const char *body, size_t len)
{
	char head[32];
	int n = err ? snprintf(head, sizeof(head), "error %d\n", err) : snprintf(head, sizeof(head), "ok\n");
	struct timeval tv = { 2, 0 };

	/* a client that does not read its answer must not stall the supervisor */
	fcntl(c->fd, F_SETFL, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (proto_write_all(c->fd, head, (size_t)n) == 0)
		proto_write_all(c->fd, body, len);
	client_close(s, c);
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

static void
status_json(struct sup *s, struct sbuf *b, const char *disks, size_t dlen)
{
	struct worker_proc *w = &s->worker;
	unsigned kept = s->nfaults < FAULTS_KEPT ? s->nfaults : FAULTS_KEPT;

	sbuf_addstr(b, "{\"mountpoint\":");
	sbuf_json_str(b, s->o.mountpoint);
	sbuf_addstr(b, ",\"templates\":");
	sbuf_json_str(b, s->o.tmpldir);
	sbuf_addstr(b, ",\"datadir\":");
	sbuf_json_str(b, s->o.datadir);
	sbuf_printf(b, ",\"supervisor\":{\"pid\":%d,\"uptime_s\":%.0f}", (int)getpid(),
	    sup_uptime(&s->started));
	sbuf_addstr(b, ",\"workers\":[");
	if (w->pid > 0)
		sbuf_printf(b, "{\"pid\":%d,\"state\":\"%s\",\"uptime_s\":%.0f,\"requests_served\":%llu}",
		    (int)w->pid, worker_state_name(w), sup_uptime(&w->started),
		    (unsigned long long)(atomic_load(&s->ctl->requests_done) - w->done_at_start));
	sbuf_printf(b, "],\"restarts\":%llu,\"faults\":[", (unsigned long long)s->restarts);
	for (unsigned i = 0; i < kept; i++) {
		const struct fault *f = &s->faults[(s->nfaults - kept + i) % FAULTS_KEPT];
		char when[32];
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&f->when));
		sbuf_printf(b, "%s{\"time\":\"%s\",\"pid\":%d,\"what\":", i ? "," : "", when, (int)f->pid);
		sbuf_json_str(b, f->what);
		sbuf_addstr(b, "}");
	}
	sbuf_printf(b, "],\"requests\":{\"taken\":%llu,\"done\":%llu},\"disks\":",
	    (unsigned long long)atomic_load(&s->ctl->requests_taken),
	    (unsigned long long)atomic_load(&s->ctl->requests_done));
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

	sbuf_printf(b, "mount       %s\ntemplates   %s\ndata        %s\n", s->o.mountpoint,
	    s->o.tmpldir, s->o.datadir);
	sbuf_printf(b, "supervisor  pid %d, up %.0f s\n", (int)getpid(), sup_uptime(&s->started));
	if (w->pid > 0)
		sbuf_printf(b, "worker      pid %d, %s, up %.0f s, %llu requests served\n", (int)w->pid,
		    worker_state_name(w), sup_uptime(&w->started),
		    (unsigned long long)(atomic_load(&s->ctl->requests_done) - w->done_at_start));
	else
		sbuf_addstr(b, "worker      none (restarting)\n");
	sbuf_printf(b, "restarts    %llu\n", (unsigned long long)s->restarts);
	if (s->nfaults) {
		const struct fault *f = &s->faults[(s->nfaults - 1) % FAULTS_KEPT];
		char when[32];
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&f->when));
		sbuf_printf(b, "last fault  %s: worker %d, %s\n", when, (int)f->pid, f->what);
	}
	sbuf_addstr(b, "\n");
	if (disks)
		sbuf_add(b, disks, dlen);
	else
		sbuf_addstr(b, "disks: unknown (the worker did not answer)\n");
}

void
client_answer(struct sup *s, struct client *c, int err, const char *body, size_t len)
{
	struct sbuf b = SBUF_INIT;

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
	if (c->status) {
		client_answer(c->s, c, ETIMEDOUT, NULL, 0);
		return;
	}
	hlog(HLOG_WARN, "control request timed out");
	client_send(c->s, c, ETIMEDOUT, "the worker did not answer in time\n", 34);
}

static void
client_fail(struct sup *s, struct client *c, int err, const char *msg)
{
	client_send(s, c, err, msg, strlen(msg));
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
	if (strcmp(req.verb, "status") == 0) {
		c->status = 1;
		if (relay_submit(s, c, c->json ? "json disks" : "text disks") < 0) {
			client_fail(s, c, ENOMEM, "out of memory\n");
			return;
		}
		ev_timer_set(&c->timer, STATUS_WAIT, 0);
	} else if (!strcmp(req.verb, "create") || !strcmp(req.verb, "delete") ||
	    !strcmp(req.verb, "list") || !strcmp(req.verb, "ping")) {
		if (relay_submit(s, c, c->buf) < 0) {
			client_fail(s, c, ENOMEM, "out of memory\n");
			return;
		}
		ev_timer_set(&c->timer, REQUEST_WAIT, 0);
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
	ssize_t n;
	char *nl;

	(void)loop;
	(void)revents;
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(s, c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
		*nl = '\0';
		c->len = (size_t)(nl - c->buf);
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
	ev_timer_set(&c->timer, 10.0, 0);
	ev_timer_start(loop, &c->timer);
	ev_io_start(loop, &c->io);
}

void
ctlsock_open(struct sup *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	proto_socket_path(s->dev_major, s->dev_minor, s->sock_path, sizeof(s->sock_path));
	if (mkdir(PROTO_RUNDIR, 0755) < 0 && errno != EEXIST)
		sup_startup_failed(s, "cannot create '%s': %s", PROTO_RUNDIR, strerror(errno));
	if (strlen(s->sock_path) >= sizeof(sa.sun_path))
		sup_startup_failed(s, "control socket path '%s' is too long", s->sock_path);
	strcpy(sa.sun_path, s->sock_path);
	/* a socket left by a mount with the same device number that died is stale */
	unlink(s->sock_path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(s->sock_path, s->o.owner_uid >= 0 ? 0666 : 0600) < 0 ||
	    listen(s->listen_fd, 16) < 0)
		sup_startup_failed(s, "cannot open control socket '%s': %s", s->sock_path, strerror(errno));
	ev_io_init(&s->listen_io, accept_cb, s->listen_fd, EV_READ);
	s->listen_io.data = s;
	ev_io_start(s->loop, &s->listen_io);
}

void
ctlsock_close(struct sup *s)
{
	if (s->sock_path[0])
		unlink(s->sock_path);
}
