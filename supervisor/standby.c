/*
 * standby: a second worker started ahead of need.
 *
 * STANDBY_DELAY after a worker starts serving, a second one is started with
 * --standby: it execs, loads its libraries, sets up its FUSE session, opens
 * the catalog, faults in its first receive buffers and waits.  When the
 * serving worker dies, the standby gets "go" and takes over, which saves all
 * that (about 2 ms of the recovery).  A deliberate restart discards it, so the
 * replacement runs the worker binary installed now.  A standby that ends
 * before it is needed is started again after a delay doubling up to
 * STANDBY_BACKOFF_MAX; -o standby=off starts none.
 *
 * It owns s->standby.  Its states, and the function performing each
 * transition:
 *
 *   from    to      function           when
 *   NONE    TIMED   standby_schedule   a worker started serving (workers.c),
 *                                      or the last standby ended unused
 *   TIMED   NONE    standby_cb         the timer fired, but the mount is not
 *                                      being served (or stopping, or off)
 *   TIMED   READY   standby_cb         forked and exec'd (spawn_worker)
 *   READY   NONE    standby_take       the serving worker died: it gets "go"
 *                                      and workers.c makes it the worker
 *   READY   NONE    standby_ended      it died unused (failures++)
 *   any     NONE    standby_stop       hcowctl restart, or the supervisor exits
 *
 *   NONE: pid 0, timer stopped; TIMED: pid 0, timer running; READY: pid > 0.
 *
 * It calls only spawn.c; workers.c calls it.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hlog.h"
#include "supervisor.h"

#define STANDBY_DELAY	0.1	/* seconds after a worker starts serving */
#define STANDBY_BACKOFF_MAX 60.0 /* seconds */

/*
 * Hand the mount to the standby worker: it is told "go", and its pid and our
 * end of its channel are the caller's.  The pid, or -1 if there is none that
 * takes it.
 */
pid_t
standby_take(struct sup *s, int *ctl_fd)
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
		kill(pid, SIGKILL);	/* reaped by the child watcher, which no longer knows it */
		return -1;
	}
	s->standby.failures = 0;
	*ctl_fd = fd;
	return pid;
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
	if ((pid = spawn_worker(s, "--standby", &fd)) < 0)
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

void
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
void
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

void
standby_init(struct sup *s)
{
	ev_timer_init(&s->standby.timer, standby_cb, STANDBY_DELAY, 0);
	s->standby.timer.data = s;
	s->standby.ctl_fd = -1;
}
