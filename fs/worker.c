/*
 * worker: the process that serves one mount's FUSE requests; its main and
 * its life.
 *
 * Started (fork + exec) by the supervisor, which keeps the /dev/fuse fd, the
 * control memory and the mount; the worker inherits the fds and may be
 * killed at any instruction.  Life of a worker, and the function performing
 * each step (all called from main, in this order):
 *
 *   step         function             what
 *   threads      pool_start           the first serving threads start and
 *                                     wait at the gate, faulting in their
 *                                     receive buffers meanwhile
 *   session      session_new          libfuse session over the inherited fd
 *                                     (custom io)
 *   [takeover]   session_replay_init  replay the saved FUSE_INIT into the new
 *                                     session, its reply kept, not written
 *   [standby]    store_catalog_preopen started ahead of need (--standby): all
 *                                     of the above done, and the catalog
 *                                     opened; waits for "go" (then it takes
 *                                     over) or for the channel to close
 *                                     (then exit 0)
 *   [takeover]   session_answer_init  answer INIT if the worker before us
 *                                     died between reading and answering it
 *   open store   store_open           catalog + log replay; on failure report
 *                                     it (control_reply) and exit 2
 *   ready        control_reply        tell the supervisor ("0 0 5\nready"),
 *                                     wait for "start" (the first worker's fd
 *                                     is mounted only after ready)
 *   [takeover]   session_resend       FUSE_NOTIFY_RESEND: the kernel requeues
 *                                     every request the dead worker had read
 *                                     but not answered; in replay mode
 *                session_replay_held  instead re-runs the requests in the slots
 *   serve        control_start,       a control thread; the serving threads
 *                pool_open_gate       pass the gate
 *   unmounted    pool_join,           the fd reports ENODEV: the threads end;
 *                store_close          final checkpoint, exit 0
 *
 * Exit status: 0 unmounted, 2 could not start (the supervisor does not
 * retry), anything else is a fault to recover from.
 *
 * Rule: never fuse_session_destroy(): it would close the shared fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hlog.h"
#include "proto.h"
#include "worker.h"
#include "cluster.h"
#include "radosspec.h"

#define WORKER_THREADS_DEFAULT	12	/* see --threads */

/* Requests waiting for the cluster are not hung: tell the supervisor's watch. */
static void
cluster_wait_hook(void *arg, int delta)
{
	struct ctlmem *ctl = arg;

	atomic_fetch_add(&ctl->cluster_wait, (uint32_t)delta);
}

static void
usage(void)
{
	fprintf(stderr, "usage: hcowfs-worker --fuse-fd N --ctl-fd N --shm-fd N --datadir DIR "
	    "--tmpldir DIR [--lock-fd N] [--readonly] [--blocks-used] [--takeover | --standby] [--segment-size BYTES] [--checkpoint-ms MS] [--threads N]\n"
	    "       [--ceph-conf FILE] [--ceph-id NAME] [--ceph-op-timeout S] [--template-cache DIR] [--template-cache-size BYTES]\n"
	    "       [--store rados:POOL/STORE --holder TEXT [--store-takeover]]\n"
	    "hcowfs-worker is started by mount.hcowfs, not by hand\n");
	exit(2);
}

/*
 * Does the kernel still hold disk id's inode (inode id + 1)?  Invalidating
 * its attributes (offset -1: no pages) fails with ENOENT when the kernel has
 * no such inode, so nothing can have it open.  Any other answer: it may.
 */
static int
kernel_holds_disk(void *arg, uint64_t id)
{
	struct worker *w = arg;

	return fuse_lowlevel_notify_inval_inode(w->se, (fuse_ino_t)(id + 1), -1, 0) != -ENOENT;
}

/* The supervisor's control memory, mapped; NULL if it is not one this build knows. */
static struct ctlmem *
ctl_map(int shm_fd)
{
	struct stat sb;
	struct ctlmem *c;

	if (fstat(shm_fd, &sb) < 0 || (uint64_t)sb.st_size < ctlmem_size())
		return NULL;
	c = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
	if (c == MAP_FAILED || c->magic != CTLMEM_MAGIC || c->version != CTLMEM_VERSION)
		return NULL;
	return c;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "fuse-fd", required_argument, NULL, 'f' },
		{ "ctl-fd", required_argument, NULL, 'c' },
		{ "shm-fd", required_argument, NULL, 'm' },
		{ "datadir", required_argument, NULL, 'd' },
		{ "tmpldir", required_argument, NULL, 't' },
		{ "takeover", no_argument, NULL, 'T' },
		{ "segment-size", required_argument, NULL, 's' },
		{ "checkpoint-ms", required_argument, NULL, 'p' },
		{ "fault-injection", no_argument, NULL, 'F' },
		{ "threads", required_argument, NULL, 'n' },
		{ "space-reserve", required_argument, NULL, 'r' },
		{ "max-extents", required_argument, NULL, 'x' },
		{ "max-disk-size", required_argument, NULL, 'z' },
		{ "standby", no_argument, NULL, 'S' },
		{ "lock-fd", required_argument, NULL, 'L' },
		{ "readonly", no_argument, NULL, 'R' },
		{ "blocks-used", no_argument, NULL, 'B' },
		{ "ceph-conf", required_argument, NULL, 'C' },
		{ "ceph-id", required_argument, NULL, 'I' },
		{ "ceph-op-timeout", required_argument, NULL, 'W' },
		{ "template-cache", required_argument, NULL, 'K' },
		{ "template-cache-size", required_argument, NULL, 'Z' },
		{ "store", required_argument, NULL, 'Q' },
		{ "holder", required_argument, NULL, 'H' },
		{ "store-takeover", no_argument, NULL, 'O' },
		{ NULL, 0, NULL, 0 }
	};
	/* static: the session is never destroyed (see Rule) but stays reachable to the end */
	static struct worker w = { .fuse_fd = -1, .ctl_fd = -1 };
	static struct fuse_lowlevel_ops ops;
	struct store_opts so = { 0 };
	struct cluster_opts co = { 0 };
	char err[512] = "", line[64];
	int shm_fd = -1, takeover = 0, standby = 0, opt, rc;
	unsigned threads = WORKER_THREADS_DEFAULT;

	hlog_init("hcowfs-worker", HLOG_INFO);
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': w.fuse_fd = atoi(optarg); break;
		case 'c': w.ctl_fd = atoi(optarg); break;
		case 'm': shm_fd = atoi(optarg); break;
		case 'd': so.datadir = optarg; break;
		case 't': so.tmpldir = optarg; break;
		case 'T': takeover = 1; break;
		case 's': so.segment_size = strtoull(optarg, NULL, 10); break;
		case 'p': so.checkpoint_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': so.space_reserve = strtoull(optarg, NULL, 10); break;
		case 'x': so.max_extents = strtoull(optarg, NULL, 10); break;
		case 'z': so.max_disk_size = strtoull(optarg, NULL, 10); break;
		case 'F': w.fault_injection = 1; break;
		case 'S': standby = 1; break;
		case 'R': so.readonly = 1; break;	/* -o ro: change no file */
		case 'B': w.blocks_used = 1; break;	/* -o blocks=used (dirops.c) */
		case 'C': co.conf = optarg; break;
		case 'I': co.id = optarg; break;
		case 'W': co.op_timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'K': so.template_cache = optarg; break;
		case 'Z': so.template_cache_size = strtoull(optarg, NULL, 10); break;
		case 'Q': so.store_spec = optarg; break;	/* a store in a cluster: datadir caches it */
		case 'H': so.holder = optarg; break;
		case 'O': so.store_takeover = 1; break;	/* -o takeover */
		case 'L':
			/* the supervisor's lock on the data dir, held while we live (datalock.h) */
			so.lock_fd = atoi(optarg);
			if (so.lock_fd <= 0 || fcntl(so.lock_fd, F_SETFD, FD_CLOEXEC) < 0)
				usage();
			break;
		case 'n':
			threads = (unsigned)strtoul(optarg, NULL, 10);
			if (threads < 1 || threads > WORKER_MAX_THREADS)
				usage();
			break;
		default: usage();
		}
	}
	if (w.fuse_fd < 0 || w.ctl_fd < 0 || shm_fd < 0 || !so.datadir || !so.tmpldir)
		usage();
	signal(SIGPIPE, SIG_IGN);
	umask(077);	/* the store's files (catalog, segments, copies of cut tails) are root's */
	proto_reader_init(&w.ctl_in, w.ctl_fd);

	if (!(w.ctl = ctl_map(shm_fd)))
		die(2, "control memory is not usable (is this worker from the same build as the supervisor?)");
	slot_init(w.ctl);
	/* touch the pages now: a fault in a page first mapped mid-request can cost that request */
	madvise(w.ctl, sizeof(struct ctlmem), MADV_POPULATE_WRITE);

	pool_start(&w, threads);
	/* the session takes no store: a standby sets it up ahead of need too */
	fsops_fill(&ops);
	if (session_new(&w, &ops, sizeof(ops)) < 0) {
		snprintf(err, sizeof(err), "cannot set up the FUSE session");
		goto fail;
	}
	if ((takeover || standby) && (rc = session_replay_init(&w)) != 0) {
		if (rc == -ENOENT && takeover) {
			/*
			 * The first worker died before any thread read INIT (a
			 * crash at start, or one in a control request that came
			 * first): the kernel still holds it, so this worker takes
			 * it as the first one would have.  (Without this, every
			 * replacement exited and the mount never served.)
			 */
			hlog(HLOG_WARN, "no saved FUSE_INIT: the previous worker died before reading "
			    "it; this one takes it from the kernel");
		} else {
			snprintf(err, sizeof(err), "cannot take over the FUSE session: saved INIT %s (%s)",
			    rc == -ENOENT ? "missing" : "refused", strerror(rc < 0 ? -rc : rc));
			goto fail;
		}
	}
	/* one connection for the worker's life, made ahead of need by a standby too */
	if ((rados_spec_is(so.tmpldir) || so.store_spec) &&
	    (rc = cluster_connect(&co, &so.cluster, err, sizeof(err))) < 0)
		goto fail;
	if (standby) {
		/*
		 * Started ahead of need: exec, libraries, the session, the
		 * catalog's connection and the first threads' buffers are done.
		 * The supervisor says "go" when the serving worker has died, or
		 * closes the channel if it wants us gone.
		 */
		/* a catalog in a cluster is the serving worker's alone (fence.h) */
		so.catalog = so.readonly || so.store_spec ? NULL : store_catalog_preopen(so.datadir);
		if (proto_reader_line(&w.ctl_in, line, sizeof(line)) <= 0 || strcmp(line, "go") != 0) {
			store_catalog_release(so.catalog);	/* not needed after all */
			cluster_close(so.cluster);
			return 0;
		}
		takeover = 1;
	}

	if (takeover && (rc = session_answer_init(&w)) < 0) {
		snprintf(err, sizeof(err), "cannot answer the FUSE_INIT the previous worker left "
		    "unanswered: %s", strerror(-rc));
		goto fail;
	}
	so.purge_unlinked = !takeover && !so.readonly;
	so.create = !takeover && !so.readonly;
	so.takeover = takeover;
	so.template_leases = 1;	/* the worker owns its process: see tmpl_lease() */
	so.snap_area = ctlmem_snap(w.ctl);
	so.snap_cap = CTLMEM_SNAP_MAX;
	if ((rc = store_open(&so, &w.st, err, sizeof(err))) < 0) {
		hlog(HLOG_ERROR, "%s", err);
		control_reply(&w, 0, -rc, err, strlen(err));
		cluster_close(so.cluster);
		return 2;
	}
	{
		/* "ready", then what the admin must hear at mount (mount.hcowfs prints it) */
		struct sbuf ready = SBUF_INIT;
		sbuf_addstr(&ready, "ready\n");
		store_problems(w.st, &ready);
		rc = control_reply(&w, 0, 0, sbuf_str(&ready), ready.len);
		sbuf_release(&ready);
		if (rc < 0)
			return 1;
	}
	rc = (int)proto_reader_line(&w.ctl_in, line, sizeof(line));
	if (rc == 0) {
		/* the mount failed (the supervisor's log says why) and we are dismissed */
		hlog(HLOG_INFO, "supervisor closed the control channel before start; exiting");
		exit(1);
	}
	if (rc < 0 || strcmp(line, "start") != 0)
		die(1, "supervisor did not say start");
	store_set_cluster_wait_hook(w.st, cluster_wait_hook, w.ctl);
	if (w.fault_injection) {
		store_set_append_hook(w.st, fault_append_hook, w.ctl);
		store_set_copy_hook(w.st, fault_copy_hook, w.ctl);
	}
	if (takeover && w.ctl->reissue == REISSUE_REPLAY)
		session_replay_held(&w);
	else if (takeover && (rc = session_resend(&w)) < 0)
		hlog(HLOG_WARN, "kernel refused FUSE_NOTIFY_RESEND (%s): requests held by the "
		    "previous worker are not reissued", strerror(-rc));
	if (takeover && !so.readonly) {
		/* the disks our predecessor saw deleted while open: gone unless the kernel holds them */
		store_set_kernel_probe(w.st, kernel_holds_disk, &w);
		store_purge_unheld(w.st);
	}
	control_start(&w);
	hlog(HLOG_INFO, "serving%s", takeover ? " (took over from a previous worker)" : "");

	/*
	 * Few threads: the kernel hands a request to the thread idle longest, so
	 * a big pool wakes a cold thread (cache, scheduler) for each request;
	 * measured with bench/bench, 32 threads cost about twice the CPU per 4k
	 * read of 10.  Blocking reads from a slow template disk want more.
	 */
	pool_open_gate();
	rc = pool_join();
	if (rc != 0)
		hlog(HLOG_WARN, "FUSE loop ended: %s", strerror(rc < 0 ? -rc : rc));
	hlog(HLOG_INFO, "file system unmounted; writing the final checkpoint");
	store_close(w.st);
	cluster_close(so.cluster);
	return 0;
fail:
	hlog(HLOG_ERROR, "%s", err);
	control_reply(&w, 0, EPROTO, err, strlen(err));
	cluster_close(so.cluster);
	return 2;
}
