/*
 * workers: the life of the worker process that serves the mount: starting
 * it, seeing it ready, reaping it, replacing it, throttling replacements.
 *
 * It owns s->worker (but for the channel half, relay.c's), the child watcher,
 * the restart timer and the throttle's window.  One worker serves at a time;
 * a standby (standby.c) may wait beside it.
 *
 * Worker lifecycle (struct worker_proc.state), and the function performing
 * each transition:
 *
 *   from      to        function        when
 *   (none)    STARTING  worker_start    at mount (main.c), or to replace a
 *                                       dead worker: the standby takes over
 *                                       (standby_take) or a new one is
 *                                       forked (spawn_worker)
 *   STARTING  RUNNING   worker_ready    its ready report came (frame 0 on the
 *                                       channel): it has opened the store
 *                                       (and, taking over, replayed INIT);
 *                                       the first time, the mount is made
 *                                       only now; then it is told "start"
 *   STARTING  -         worker_ready    its report is a failure: it exits 2
 *                                       by itself; before the mount, the
 *                                       start-up fails
 *   RUNNING   (killed)  worker_restart  hcowctl restart: kill_cause is set
 *                                       and it gets SIGKILL; it stays
 *                                       RUNNING until child_cb reaps it
 *   RUNNING   (killed)  watch_kill      a hang (watch.c): the same, with
 *                                       CAUSE_HANG
 *   any       GONE      child_cb        it died: requests it held are blamed
 *                                       (fault_blame), the slots are made
 *                                       ready for the next (slots_handover),
 *                                       relays are requeued, and
 *   GONE      STARTING  child_cb        a replacement starts at once, or
 *                                       restart_cb after RESTART_DELAY when
 *                                       the throttle holds it
 *   GONE      (end)     child_cb        it exited 0 and the mount is gone:
 *                                       the normal end (umount)
 *
 * Any death other than the normal end is a fault: logged, counted,
 * replaced.  Throttle, a token bucket: restart_burst (-o restart_burst=,
 * default 10) replacements after faults go at once, the bucket refills at
 * restart_burst per RESTART_WINDOW seconds, and a replacement that finds it
 * empty waits until it refills (RESTART_DELAY at least), so a worker that
 * cannot run does not fork-bomb the host: over any stretch of time, at most
 * restart_burst plus the refill.  (A window that restarts its count every
 * RESTART_WINDOW seconds let a storm that straddled two windows through at
 * twice the rate.)  Deliberate restarts (hcowctl restart) are neither
 * counted nor held.
 *
 * Reporting up: this module never calls main.c.  What main.c must act on
 * (mount now, the start-up failed, the mount is gone) goes through the hooks
 * given to workers_init; a deliberate restart's end goes to the callback
 * given with it to worker_restart (ctlsock.c's).  It calls relay.c,
 * standby.c, watch.c, spawn.c and faults.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
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
	ctlmem_requests(s->ctl, &w->taken_at_start, &w->done_at_start);
	clock_gettime(CLOCK_MONOTONIC, &w->started);
	relay_attach(s, ctl_fd);
}

void
worker_start(struct sup *s, int takeover)
{
	pid_t pid;
	int fd;

	if (takeover && (pid = standby_take(s, &fd)) > 0) {
		worker_attach(s, pid, fd, 1);
		hlog(HLOG_INFO, "standby worker %d takes over the mount", (int)pid);
		return;
	}
	if ((pid = spawn_worker(s, takeover ? "--takeover" : NULL, &fd)) < 0) {
		ev_timer_set(&s->restart_timer, RESTART_DELAY, 0);
		ev_timer_start(s->loop, &s->restart_timer);
		return;
	}
	worker_attach(s, pid, fd, takeover);
	hlog(HLOG_INFO, "started worker %d%s", (int)pid, takeover ? " to take over the mount" : "");
}

/* The worker's start-up report (frame 0 on its channel, from relay.c). */
static void
worker_ready(struct sup *s, int err, const char *body, size_t len)
{
	struct worker_proc *w = &s->worker;
	struct timespec now;

	if (err != 0) {
		/* it exits 2 on its own; the child watcher takes it from there */
		hlog(HLOG_ERROR, "worker %d could not start: %.*s", (int)w->pid, (int)len, body);
		if (!s->mounted) {
			char msg[1024];
			snprintf(msg, sizeof(msg), "%.*s", (int)len, body);
			s->up->startup_failed(s, msg);
		}
		return;
	}
	if (!s->mounted) {
		const char *nl = memchr(body, '\n', len);
		size_t skip = nl ? (size_t)(nl + 1 - body) : len;
		s->up->mount(s, body + skip, len - skip);
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
		if (s->restart_done) {
			worker_restart_fn done = s->restart_done;
			char msg[160];
			s->restart_done = NULL;
			snprintf(msg, sizeof(msg), "restarted: worker %d replaced by %d, serving %.1f ms "
			    "after it stopped\n", (int)s->restart_old_pid, (int)w->pid, ms);
			done(s, 0, msg);
		}
	} else {
		hlog(HLOG_INFO, "worker %d serving, ready %.1f ms after start", (int)w->pid,
		    (double)(now.tv_sec - w->started.tv_sec) * 1e3 +
		    (double)(now.tv_nsec - w->started.tv_nsec) / 1e6);
	}
	relay_send_queued(s);
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
	relay_detach(s);
	w->state = WORKER_GONE;
	w->pid = 0;

	if (!s->mounted) {
		/* the first worker died before the mount existed */
		char msg[sizeof(what) + PATH_MAX + 64];
		snprintf(msg, sizeof(msg), "worker ended before the mount was ready (%s); see %s/hcowfs.log",
		    what, s->o.datadir);
		s->up->startup_failed(s, msg);
		return;
	}
	if (cause == CAUSE_EXIT && WEXITSTATUS(st) == 0 && !still_mounted(s)) {
		hlog(HLOG_INFO, "%s unmounted; supervisor exiting", s->o.mountpoint);
		s->up->unmounted(s);
		return;
	}
	if (cause == CAUSE_EXIT && WEXITSTATUS(st) == 2 && !still_mounted(s)) {
		/*
		 * A replacement could not start (its data dir is gone, say) and
		 * the mount is gone too: nobody will serve what a lazily
		 * unmounted mount's open files still ask, so end, and closing
		 * the connection fails their requests instead of holding them.
		 */
		hlog(HLOG_ERROR, "%s is unmounted and a replacement worker could not start (%s); "
		    "supervisor exiting", s->o.mountpoint, what);
		s->up->unmounted(s);
		return;
	}
	fault_blame(s, cause);
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
	relay_requeue(s);

	/*
	 * Only faults are throttled: a deliberate restart's replacement never
	 * waits (hcowctl restart is paced at the request, ctlsock.c), or a loop
	 * of restarts would stall the mount's I/O for RESTART_DELAY each time.
	 */
	if (cause == CAUSE_RESTART) {
		worker_start(s, 1);
		return;
	}
	{
		double rate = (double)s->o.restart_burst / RESTART_WINDOW;	/* tokens a second */
		double t = ev_now(loop), wait;

		s->restart_tokens += (t - s->restart_tokens_at) * rate;
		if (s->restart_tokens > s->o.restart_burst)
			s->restart_tokens = s->o.restart_burst;
		s->restart_tokens_at = t;
		s->restart_tokens -= 1;		/* a held replacement takes its token too */
		if (s->restart_tokens < 0) {
			wait = -s->restart_tokens / rate;
			wait = wait > RESTART_DELAY ? wait : RESTART_DELAY;
			hlog(HLOG_WARN, "more than %u restarts in %d s; throttling: next worker in %.1f s",
			    s->o.restart_burst, RESTART_WINDOW, wait);
			ev_timer_set(&s->restart_timer, wait, 0);
			ev_timer_start(loop, &s->restart_timer);
			return;
		}
	}
	worker_start(s, 1);
}

int
worker_restart(struct sup *s, worker_restart_fn done)
{
	struct worker_proc *w = &s->worker;

	if (w->state != WORKER_RUNNING || w->kill_cause >= 0)
		return -EAGAIN;
	w->kill_cause = CAUSE_RESTART;
	s->restart_old_pid = w->pid;
	standby_stop(s, 0);	/* it runs the binary of its time: the replacement must not */
	/* after a checkpoint, so the replacement has little log to replay */
	if (kill(w->pid, SIGKILL) < 0)
		return -errno;
	s->restart_done = done;
	return 0;
}

void
workers_init(struct sup *s, const struct workers_hooks *up)
{
	s->up = up;
	ev_child_init(&s->child_w, child_cb, 0, 0);
	s->child_w.data = s;
	ev_child_start(s->loop, &s->child_w);
	ev_timer_init(&s->restart_timer, restart_cb, RESTART_DELAY, 0);
	s->restart_timer.data = s;
	s->worker.kill_cause = -1;
	relay_init(s, worker_ready);
	standby_init(s);
	watch_init(s);
}
