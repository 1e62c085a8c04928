/*
 * watch: hang detection for the serving worker.
 *
 * Every tick (a few times per hang timeout, at most 100 a second) it looks at
 * the request slots in the control memory, and at the /dev/fuse fd, and kills
 * the worker (SIGKILL, kill_cause = CAUSE_HANG) when one of these holds:
 *
 *   - a request has been outstanding longer than the hang timeout, even
 *     while the worker's other threads progress (a global counter of
 *     completed requests missed one hung thread for 3.4 s: DESIGN.md);
 *   - requests are pending in the kernel and the worker has taken none for a
 *     whole timeout (its threads all stopped while waiting for requests hold
 *     none, so the slots cannot show that hang).
 *
 * Unless the worker is merely slow: while some thread of it waits on the
 * disk (state D), the device is the bottleneck and killing the worker would
 * only add a restart, so a request gets up to HANG_TIMEOUT_MAX_FACTOR
 * timeouts.  Nor while the worker says its requests wait for a cluster that
 * cannot be reached (ctlmem's cluster_wait: a store in a cluster), or after
 * the supervisor itself did not run for a while (the host was suspended or
 * the mount's processes stopped: watch_suspended).  The death itself is handled by workers.c's child watcher, which
 * reads kill_cause, hang_req and hang_age_ms.
 *
 * It owns s->watch_timer, slow_waits, slow_unique, watch_taken and
 * pending_since (workers.c clears pending_since for a new worker).  It only
 * watches a RUNNING worker not already being killed; -o watch=off stops it.
 * It calls only faults.c.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hlog.h"
#include "supervisor.h"

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
watch_kill(struct sup *s, double age)
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
watch_unread_stuck(struct sup *s, double now_ns)
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
	watch_kill(s, age);
	s->pending_since = 0;
	return 1;
}

/*
 * Did we not run for a while (the host was suspended, or the mount's
 * processes were stopped)?  Then every request in flight looks old, though
 * the worker was stopped with us: each gets a fresh timeout from now.
 * 1 while that grace lasts.
 */
static int
watch_suspended(struct sup *s, double now_ns)
{
	double gap_ms = s->watch_last_ns ? (now_ns - s->watch_last_ns) / 1e6 : 0;
	double limit_ms = s->o.hang_timeout_ms / 2.0 > 1000 ? s->o.hang_timeout_ms / 2.0 : 1000;

	s->watch_last_ns = now_ns;
	if (gap_ms > limit_ms) {
		hlog(HLOG_WARN, "the supervisor did not run for %.1f s (host suspended or the mount's "
		    "processes stopped); requests in flight get a fresh timeout", gap_ms / 1e3);
		s->watch_grace_ns = now_ns + (double)s->o.hang_timeout_ms * 1e6;
		s->pending_since = 0;
	}
	return now_ns < s->watch_grace_ns;
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
	if (watch_suspended(s, now_ns))
		return;
	if (atomic_load(&s->ctl->cluster_wait))
		return;	/* waiting for the cluster (fence.h): I/O resumes when it is back */
	if (watch_unread_stuck(s, now_ns))
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
				fault_describe_request(sl, u, what, sizeof(what));
				hlog(HLOG_WARN, "worker %d is slow, not hung: %s outstanding for %.0f ms while "
				    "it waits on the disk", (int)w->pid, what, age);
			}
			continue;
		}
		fault_describe_request(sl, u, w->hang_req, sizeof(w->hang_req) - 12);
		strcat(w->hang_req, " outstanding");
		watch_kill(s, age);
		return;
	}
}

void
watch_init(struct sup *s)
{
	/* look at the slots a few times per timeout, but not more than 100 times a second */
	double tick = s->o.hang_timeout_ms / 4000.0;

	if (tick < 0.01)
		tick = 0.01;
	if (tick > 0.25)
		tick = 0.25;
	ev_timer_init(&s->watch_timer, watch_cb, tick, tick);
	s->watch_timer.data = s;
	ev_timer_start(s->loop, &s->watch_timer);
}
