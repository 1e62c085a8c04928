/*
 * spawn: fork and exec a worker process.
 *
 * Owns nothing after it returns: the pid goes to the caller (workers.c for a
 * worker that serves now, standby.c for one started ahead of need), and so
 * does the supervisor's end of the new control channel.
 *
 * Invariants: exactly the /dev/fuse fd, the control memory's fd, the data
 * dir's lock (datalock.h: the worker shares our lock, so a replacement is
 * never blocked by it and the store stays locked if we die) and the
 * worker's end of the channel cross exec (everything else is close-on-exec);
 * the child runs with every signal at its default and none blocked, whatever
 * the supervisor's loop had set up.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hlog.h"
#include "supervisor.h"

/* Append "flag V" to argv if v is set (0: the worker's default), V written into buf. */
static int
worker_arg(char **argv, int argc, const char *flag, char *buf, size_t len, uint64_t v)
{
	if (!v)
		return argc;
	snprintf(buf, len, "%llu", (unsigned long long)v);
	argv[argc++] = (char *)flag;
	argv[argc++] = buf;
	return argc;
}

/*
 * Fork and exec a worker; mode is NULL, "--takeover" or "--standby".  Our end
 * of a new control channel goes in *ctl_fd.  The pid, or -1 (logged).
 */
pid_t
spawn_worker(struct sup *s, const char *mode, int *ctl_fd)
{
	char fusefd[16], ctlfd[16], shmfd[16], lockfd[16], segsz[32], cpms[32], nthreads[32];
	char reserve[32], extents[32], disksize[32], cachesz[32], optimeout[32];
	char *argv[48];
	int sv[2], argc = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		hlog(HLOG_ERROR, "cannot create the worker's control channel: %s", strerror(errno));
		return -1;
	}
	snprintf(fusefd, sizeof(fusefd), "%d", s->fuse_fd);
	snprintf(ctlfd, sizeof(ctlfd), "%d", sv[1]);
	snprintf(shmfd, sizeof(shmfd), "%d", s->shm_fd);
	snprintf(lockfd, sizeof(lockfd), "%d", s->lock_fd);
	argv[argc++] = "hcowfs-worker";
	argv[argc++] = "--fuse-fd"; argv[argc++] = fusefd;
	argv[argc++] = "--ctl-fd"; argv[argc++] = ctlfd;
	argv[argc++] = "--shm-fd"; argv[argc++] = shmfd;
	argv[argc++] = "--lock-fd"; argv[argc++] = lockfd;
	argv[argc++] = "--datadir"; argv[argc++] = s->o.datadir;
	argv[argc++] = "--tmpldir"; argv[argc++] = s->o.tmpldir;
	if (mode)
		argv[argc++] = (char *)mode;
	if (s->o.fault_injection)
		argv[argc++] = "--fault-injection";
	if (s->o.readonly)
		argv[argc++] = "--readonly";
	if (s->o.blocks_used)
		argv[argc++] = "--blocks-used";
	argc = worker_arg(argv, argc, "--segment-size", segsz, sizeof(segsz), s->o.segment_size);
	argc = worker_arg(argv, argc, "--checkpoint-ms", cpms, sizeof(cpms), s->o.checkpoint_ms);
	argc = worker_arg(argv, argc, "--space-reserve", reserve, sizeof(reserve), s->o.space_reserve);
	argc = worker_arg(argv, argc, "--max-extents", extents, sizeof(extents), s->o.max_extents);
	argc = worker_arg(argv, argc, "--max-disk-size", disksize, sizeof(disksize),
	    s->o.max_disk_size);
	argc = worker_arg(argv, argc, "--threads", nthreads, sizeof(nthreads), s->o.threads);
	argc = worker_arg(argv, argc, "--template-cache-size", cachesz, sizeof(cachesz),
	    s->o.template_cache_size);
	if (s->o.ceph_conf[0]) {
		argv[argc++] = "--ceph-conf"; argv[argc++] = s->o.ceph_conf;
	}
	argc = worker_arg(argv, argc, "--ceph-op-timeout", optimeout, sizeof(optimeout),
	    s->o.ceph_op_timeout);
	if (s->o.ceph_id[0]) {
		argv[argc++] = "--ceph-id"; argv[argc++] = s->o.ceph_id;
	}
	if (s->o.template_cache[0]) {
		argv[argc++] = "--template-cache"; argv[argc++] = s->o.template_cache;
	}
	if (s->o.store_spec[0]) {
		argv[argc++] = "--store"; argv[argc++] = s->o.store_spec;
		argv[argc++] = "--holder"; argv[argc++] = s->o.holder;
		if (s->o.store_takeover)
			argv[argc++] = "--store-takeover";
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
		fcntl(s->lock_fd, F_SETFD, 0);
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
		return -1;
	}
	*ctl_fd = sv[0];
	return pid;
}
