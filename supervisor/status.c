/*
 * status: the text and JSON of `hcowctl status`, as the supervisor answers
 * it: its own state (uptime, workers, restarts by cause, faults, poison
 * requests, detection and recovery times, outstanding requests, the watch)
 * with the disks part the worker gave (or why it could not be had).  It only
 * reads struct sup; ctlsock.c calls it to answer a client.
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

/* The disks part of status could not be had: why, for the admin. */
static const char *
disks_missing(const char *why, size_t len, char *buf, size_t cap)
{
	if (!why || len == 0)
		return "the worker did not answer";
	snprintf(buf, cap, "%.*s", (int)(why[len - 1] == '\n' ? len - 1 : len), why);
	return buf;
}

void
status_json(struct sup *s, struct sbuf *b, const char *disks, size_t dlen, int err)
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
	/* for hcowctl template: the cache and the cluster of a rados: template dir or store */
	sbuf_addstr(b, ",\"store\":");
	sbuf_json_str(b, s->o.store_spec);
	sbuf_addstr(b, ",\"template_cache\":");
	sbuf_json_str(b, s->o.template_cache);
	sbuf_addstr(b, ",\"ceph_conf\":");
	sbuf_json_str(b, s->o.ceph_conf);
	sbuf_addstr(b, ",\"ceph_id\":");
	sbuf_json_str(b, s->o.ceph_id);
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
	if (!err) {
		sbuf_add(b, disks, dlen);
	} else {
		char why[256];
		sbuf_addstr(b, "null,\"disks_error\":");
		sbuf_json_str(b, disks_missing(disks, dlen, why, sizeof(why)));
	}
	sbuf_addstr(b, "}\n");
}

void
status_text(struct sup *s, struct sbuf *b, const char *disks, size_t dlen, int err)
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
	if (!err) {
		sbuf_add(b, disks, dlen);
	} else {
		char why[256];
		sbuf_printf(b, "disks: unknown (%s)\n", disks_missing(disks, dlen, why, sizeof(why)));
	}
}

