/*
 * relay: the control channel to the serving worker, and the control requests
 * relayed over it.
 *
 * It owns the channel half of struct worker_proc (ctl_fd, its two watchers,
 * the reply buffer rbuf and the queue out) and the list s->relays.  A relay
 * is a request line on behalf of a client of the control socket, waiting in
 * s->relays (oldest first) until the reply with its id comes back; it then
 * goes to the callback it was submitted with, unless its client went away.
 *
 * A relay's states:
 *
 *   QUEUED  (sent = 0) --relay_send------------------------> SENT (sent = 1)
 *   SENT   --reply with its id (relay_done)--------------> answered, freed
 *   SENT   --the worker died (relay_requeue)-------------> QUEUED, retry=1
 *   SENT   --POISON_ATTEMPTS workers died (relay_requeue)--> answered EIO, freed
 *   QUEUED --its client went away (relay_forget_client)----> freed
 *   SENT   --its client went away (relay_forget_client)----> orphan (client
 *            NULL): its reply frees it; a worker's death drops it
 *
 * Bounds, so that a flood of control clients cannot grow the supervisor's
 * memory nor bury an urgent request: at most RELAYS_MAX relays wait
 * (relay_submit refuses more), at most RELAYS_SENT_MAX of them are with the
 * worker at a time (the rest wait here, oldest first), and an urgent one
 * (status) goes ahead of every one not yet sent.
 *
 * Requests are only sent to a worker that is RUNNING (relay_send_queued runs
 * when one starts); the worker's verbs are idempotent under retry=1.
 *
 * Frames with id 0 are not replies: they are the worker's start-up report,
 * handed to the ready callback given at relay_init (workers.c).  This module
 * calls nothing above it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hlog.h"
#include "supervisor.h"

/*
 * Send what is queued for the worker as far as the channel takes it; the
 * rest goes when it has room (relay_write_cb).  The channel is a stream: a
 * request is queued whole once and never sent twice, or the worker would
 * read a line cut short followed by the whole one.
 */
static void
relay_flush(struct sup *s)
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
relay_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	relay_flush(io->data);
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
	relay_flush(s);
}

/* Send queued relays, oldest first, while fewer than RELAYS_SENT_MAX are with the worker. */
void
relay_send_queued(struct sup *s)
{
	unsigned sent = 0;

	for (struct relay *r = s->relays; r; r = r->next)
		sent += r->sent;
	for (struct relay *r = s->relays; r && sent < RELAYS_SENT_MAX; r = r->next) {
		if (!r->sent) {
			relay_send(s, r);
			sent += r->sent;
		}
	}
}

int
relay_submit(struct sup *s, struct client *c, const char *line, relay_answer_fn answer, int urgent)
{
	struct relay *r, **at;

	if (s->nrelays >= RELAYS_MAX)
		return -EBUSY;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->line = strdup(line))) {
		free(r);
		return -ENOMEM;
	}
	r->id = ++s->next_id;
	r->client = c;
	r->answer = answer;
	/* urgent: ahead of every request not yet sent (behind those sent, which keep their order) */
	for (at = &s->relays; *at && (!urgent || (*at)->sent); at = &(*at)->next)
		;
	r->next = *at;
	*at = r;
	s->nrelays++;
	relay_send_queued(s);
	return 0;
}

/* Take *p out of the list and free it. */
static void
relay_drop(struct sup *s, struct relay **p)
{
	struct relay *r = *p;

	*p = r->next;
	s->nrelays--;
	free(r->line);
	free(r);
}

void
relay_forget_client(struct sup *s, struct client *c)
{
	for (struct relay **p = &s->relays; *p; ) {
		struct relay *r = *p;
		if (r->client == c && !r->sent) {
			relay_drop(s, p);
			continue;
		}
		if (r->client == c)
			r->client = NULL;	/* the worker has it: its reply frees it */
		p = &r->next;
	}
}

/* Take *p out of the list, answer its client (if still there), free it. */
static void
relay_finish(struct sup *s, struct relay **p, int err, const char *body, size_t len)
{
	struct relay *r = *p;
	struct client *c = r->client;
	relay_answer_fn answer = r->answer;

	relay_drop(s, p);
	if (c)
		answer(s, c, err, body, len);
}

static void
relay_done(struct sup *s, uint64_t id, int err, const char *body, size_t len)
{
	for (struct relay **p = &s->relays; *p; p = &(*p)->next) {
		if ((*p)->id == id) {
			relay_finish(s, p, err, body, len);
			relay_send_queued(s);
			return;
		}
	}
}

/*
 * The worker died: what it was sent goes to the next one, marked as a
 * retry; but a control request held by POISON_ATTEMPTS dead workers is
 * answered with an error instead, as a poison FUSE request is.
 */
void
relay_requeue(struct sup *s)
{
	for (struct relay **p = &s->relays; *p; ) {
		struct relay *r = *p;
		if (!r->client) {
			relay_drop(s, p);	/* nobody waits for it: not worth a retry */
			continue;
		}
		if (r->sent && ++r->deaths >= POISON_ATTEMPTS) {
			char msg[PROTO_LINE_MAX + 128];
			int n = snprintf(msg, sizeof(msg), "%u workers died while handling this request; "
			    "it is not retried (the mount's log has the details)\n", r->deaths);
			hlog(HLOG_ERROR, "control request '%s' was held by %u workers that died; "
			    "answering it with an error", r->line, r->deaths);
			relay_finish(s, p, EIO, msg, (size_t)n);
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

/* Parse complete "ID ERR LEN\n<body>" frames out of the read buffer. */
static void
relay_parse(struct sup *s)
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
			s->relay_ready(s, f.err, f.body, f.len);
		else
			relay_done(s, f.id, f.err, f.body, f.len);
		memmove(w->rbuf, w->rbuf + n, w->rlen - (size_t)n);
		w->rlen -= (size_t)n;
	}
}

static void
relay_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sup *s = io->data;
	struct worker_proc *w = &s->worker;

	(void)revents;
	if (w->rcap - w->rlen < 4096) {
		size_t cap = w->rcap ? w->rcap * 2 : 65536;
		char *b = realloc(w->rbuf, cap);
		if (!b)
			return;
		w->rbuf = b;
		w->rcap = cap;
	}
	switch (proto_read_more(w->ctl_fd, w->rbuf, &w->rlen, w->rcap)) {
	case 0:
		return;
	case -1:
		/* the worker is going away; its death is handled by the child watcher */
		ev_io_stop(loop, io);
		return;
	}
	relay_parse(s);
}

void
relay_init(struct sup *s, relay_ready_fn ready)
{
	s->relay_ready = ready;
	s->worker.ctl_fd = -1;
}

void
relay_attach(struct sup *s, int ctl_fd)
{
	struct worker_proc *w = &s->worker;

	w->ctl_fd = ctl_fd;
	w->rlen = 0;
	fcntl(w->ctl_fd, F_SETFL, O_NONBLOCK);
	ev_io_init(&w->ctl_io, relay_read_cb, w->ctl_fd, EV_READ);
	w->ctl_io.data = s;
	ev_io_start(s->loop, &w->ctl_io);
	ev_io_init(&w->ctl_wio, relay_write_cb, w->ctl_fd, EV_WRITE);
	w->ctl_wio.data = s;
}

void
relay_detach(struct sup *s)
{
	struct worker_proc *w = &s->worker;

	/*
	 * What it wrote before it died is still in the channel: read it first,
	 * or the first worker's reason for not starting (a damaged store, say)
	 * loses the race with its exit and the admin gets "worker ended".
	 */
	for (int i = 0; i < 64 && ev_is_active(&w->ctl_io); i++)
		relay_read_cb(s->loop, &w->ctl_io, EV_READ);
	ev_io_stop(s->loop, &w->ctl_io);
	ev_io_stop(s->loop, &w->ctl_wio);
	sbuf_reset(&w->out);
	w->out_off = 0;
	close(w->ctl_fd);
	w->ctl_fd = -1;
}
