/*
 * mount.hcowfs: the supervisor.  Parses the command line (its own form and
 * mount(8)'s), checks the directories, takes the data dir lock, daemonizes,
 * starts the first worker, mounts when the worker has opened the store, and
 * then runs the event loop of workers.c and ctlsock.c until the file system
 * is unmounted.
 *
 *   mount.hcowfs TMPLDIR DATADIR MOUNTPOINT [-o OPTS] [-f]
 *   mount.hcowfs TMPLDIR MOUNTPOINT -o datadir=DATADIR[,OPTS]     (mount(8), fstab)
 *
 * Start-up: the parent waits on a pipe until the daemon says the mount is
 * ready (exit 0) or why it failed (exit 1, message on stderr).
 *
 * The top of the supervisor's ladder (supervisor.h): it calls workers.c and
 * ctlsock.c, and the worker lifecycle reports back through the hooks given
 * to workers_init (struct workers_hooks): the first worker is ready
 * (sup_mounted), the mount could not be made (sup_startup_failed), the file
 * system was unmounted (sup_exit).  The supervisor's states, all in here:
 *
 *   checking -> daemonized -> first worker starting --sup_mounted--> mounted
 *   (any of these) --sup_startup_failed--> exit 1
 *   mounted --worker exits 0, mount gone: sup_exit--> exit 0
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "datalock.h"
#include "hlog.h"
#include "mounts.h"
#include "names.h"
#include "radosspec.h"
#include "supervisor.h"

#define NOTIFY_RESEND	7	/* FUSE_NOTIFY_RESEND, Linux 6.9+ */
#define SUPERVISOR_NICE	(-10)

static void
usage(FILE *f, int code)
{
	fprintf(f,
	    "usage: mount.hcowfs TEMPLATE_DIR DATA_DIR MOUNTPOINT [-f] [-o OPTIONS]\n"
	    "       mount.hcowfs TEMPLATE_DIR MOUNTPOINT -o datadir=DATA_DIR[,OPTIONS]\n"
	    "\n"
	    "Mounts the VM disks stored in DATA_DIR (created on first use) as files under\n"
	    "MOUNTPOINT, each a copy-on-write clone of a template in TEMPLATE_DIR.\n"
	    "\n"
	    "  -f            stay in the foreground, log to stderr\n"
	    "  -o OPTIONS    comma-separated:\n"
	    "       datadir=DIR          the data dir (second form)\n"
	    "       owner=USER|UID       may also use hcowctl on this mount (default: root only)\n"
	    "       ro                   mount read-only\n"
	    "       segment_size=BYTES   log segment size (default 1G, minimum 16M)\n"
	    "       checkpoint_ms=MS     checkpoint interval (default 10000)\n"
	    "       space_reserve=BYTES  free space guests may not use, for the cleaner and\n"
	    "                            checkpoints (default 2 segments + 64M, at most 1/8 of\n"
	    "                            the file system; 0: none)\n"
	    "       max_extents=N        extents in the index for all disks (default 268435456)\n"
	    "       max_disk_size=BYTES  largest size a disk can be given (default 16T, up to 256T)\n"
	    "       threads=N            worker threads serving requests, 1 to 32 (default 12)\n"
	    "       worker=PATH          worker executable (default: the installed one)\n"
	    "       hang_timeout=MS      a request older than this means a hung worker (default 10000)\n"
	    "       reissue=auto|resend|replay  how a replacement gets the requests a dead worker held\n"
	    "       fault_injection      allow hcowctl debug fault (for tests)\n"
	    "       fault_injection=init the same, and the first worker crashes on reading FUSE_INIT\n"
	    "       watch=off            no hang detection or request tracking (to measure their cost)\n"
	    "       restart_burst=N      restarts in 10 s before each waits 1 s (default 10)\n"
	    "       standby=off          no second worker kept ready to take over (default on)\n"
	    "       blocks=full|used     a clone's st_blocks: its size (default: cp shares copies\n"
	    "                            of it), or the log and template bytes it holds\n"
	    "       template_cache=DIR   this host's cache of the templates of a rados:POOL[/NS]\n"
	    "                            TEMPLATE_DIR (required with one; created if missing)\n"
	    "       template_cache_size=BYTES  its cap (default a quarter of its file system)\n"
	    "       ceph_conf=FILE       ceph.conf of the cluster (default: Ceph's search)\n"
	    "       ceph_id=NAME         Ceph client name without \"client.\" (default admin)\n"
	    "       ceph_op_timeout=SECONDS  fail a request (EIO) that waited that long for the\n"
	    "                            cluster (default 0: wait until it is back)\n"
	    "       store_cache=DIR      this host's cache of a rados:POOL/STORE DATA_DIR (default\n"
	    "                            " STORE_CACHE_ROOT "/POOL/STORE; created if missing)\n"
	    "       takeover             serve a rados:POOL/STORE that another host serves: fence\n"
	    "                            that host first (docs/ceph.md)\n"
	    "     generic mount options (rw, defaults, noauto, nofail, _netdev, x-*...) are accepted.\n"
	    "\n"
	    "The log of the mount is DATA_DIR/hcowfs.log.  Unmount with umount MOUNTPOINT.\n");
	exit(code);
}

/* A decimal option value in [min, max], or die naming the option. */
static unsigned
option_uint(const char *opt, const char *val, unsigned long min, unsigned long max, const char *unit)
{
	char *end;
	unsigned long n = strtoul(val, &end, 10);

	if (!*val || *end || n < min || n > max)
		die(1, "option %s=%s: expected %s between %lu and %lu", opt, val, unit, min, max);
	return (unsigned)n;
}

static void
parse_option(struct sup_opts *o, char *opt)
{
	static const char *const ignored[] = {
		"rw", "defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser",
		"users", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "async",
		"atime", "noatime", "relatime", NULL
	};
	char *val = strchr(opt, '=');
	uint64_t v;

	if (val)
		*val++ = '\0';
	if (strcmp(opt, "datadir") == 0 && val) {
		snprintf(o->datadir, sizeof(o->datadir), "%s", val);
	} else if (strcmp(opt, "ro") == 0 && !val) {
		o->readonly = 1;
	} else if (strcmp(opt, "worker") == 0 && val) {
		snprintf(o->worker_path, sizeof(o->worker_path), "%s", val);
	} else if (strcmp(opt, "segment_size") == 0 && val) {
		if (size_parse(val, &v) < 0 || v < (UINT64_C(16) << 20) || v > (UINT64_C(1) << 39))
			die(1, "option segment_size=%s: expected a size between 16M and 512G", val);
		o->segment_size = v;
	} else if (strcmp(opt, "space_reserve") == 0 && val) {
		if (size_parse(val, &v) < 0 || v > (UINT64_C(1) << 50))
			die(1, "option space_reserve=%s: expected a size up to 1P", val);
		o->space_reserve = v ? v : UINT64_MAX;
	} else if (strcmp(opt, "max_extents") == 0 && val) {
		o->max_extents = option_uint(opt, val, 1, UINT64_C(1) << 36, "extents");
	} else if (strcmp(opt, "max_disk_size") == 0 && val) {
		if (size_parse(val, &v) < 0 || v < (UINT64_C(1) << 20) || v > DISK_SIZE_MAX)
			die(1, "option max_disk_size=%s: expected a size between 1M and 256T", val);
		o->max_disk_size = v;
	} else if (strcmp(opt, "threads") == 0 && val) {
		o->threads = option_uint(opt, val, 1, 32, "threads");
	} else if (strcmp(opt, "checkpoint_ms") == 0 && val) {
		o->checkpoint_ms = option_uint(opt, val, 10, 3600000, "milliseconds");
	} else if (strcmp(opt, "hang_timeout") == 0 && val) {
		o->hang_timeout_ms = option_uint(opt, val, 50, 3600000, "milliseconds");
	} else if (strcmp(opt, "reissue") == 0 && val) {
		if (strcmp(val, "auto") == 0)
			o->reissue = 0;
		else if (strcmp(val, "resend") == 0)
			o->reissue = REISSUE_RESEND;
		else if (strcmp(val, "replay") == 0)
			o->reissue = REISSUE_REPLAY;
		else
			die(1, "option reissue=%s: expected auto, resend or replay", val);
	} else if (strcmp(opt, "restart_burst") == 0 && val) {
		o->restart_burst = option_uint(opt, val, 1, 100000, "restarts per 10 s");
	} else if (strcmp(opt, "watch") == 0 && val && (!strcmp(val, "on") || !strcmp(val, "off"))) {
		o->nowatch = strcmp(val, "off") == 0;
	} else if (strcmp(opt, "blocks") == 0 && val && (!strcmp(val, "full") || !strcmp(val, "used"))) {
		o->blocks_used = strcmp(val, "used") == 0;
	} else if (strcmp(opt, "standby") == 0 && val && (!strcmp(val, "on") || !strcmp(val, "off"))) {
		o->nostandby = strcmp(val, "off") == 0;
	} else if (strcmp(opt, "fault_injection") == 0 && (!val || strcmp(val, "init") == 0)) {
		o->fault_injection = 1;
		o->fault_at_init = val != NULL;
	} else if (strcmp(opt, "ceph_conf") == 0 && val) {
		snprintf(o->ceph_conf, sizeof(o->ceph_conf), "%s", val);
	} else if (strcmp(opt, "ceph_id") == 0 && val) {
		snprintf(o->ceph_id, sizeof(o->ceph_id), "%s", val);
	} else if (strcmp(opt, "ceph_op_timeout") == 0 && val) {
		o->ceph_op_timeout = option_uint(opt, val, 0, 86400, "seconds");
	} else if (strcmp(opt, "template_cache") == 0 && val) {
		if (val[0] != '/')
			die(1, "option template_cache=%s: expected an absolute path", val);
		snprintf(o->template_cache, sizeof(o->template_cache), "%s", val);
	} else if (strcmp(opt, "store_cache") == 0 && val) {
		if (val[0] != '/')
			die(1, "option store_cache=%s: expected an absolute path", val);
		snprintf(o->store_cache, sizeof(o->store_cache), "%s", val);
	} else if (strcmp(opt, "takeover") == 0 && !val) {
		o->store_takeover = 1;
	} else if (strcmp(opt, "template_cache_size") == 0 && val) {
		if (size_parse(val, &v) < 0 || v < (UINT64_C(16) << 20))
			die(1, "option template_cache_size=%s: expected a size of at least 16M", val);
		o->template_cache_size = v;
	} else if (strcmp(opt, "owner") == 0 && val) {
		struct passwd *pw = getpwnam(val);
		char *end;
		long uid = strtol(val, &end, 10);
		if (pw)
			o->owner_uid = (long)pw->pw_uid;
		else if (*val && !*end && uid >= 0)
			o->owner_uid = uid;
		else
			die(1, "option owner=%s: no such user", val);
	} else {
		for (int i = 0; ignored[i]; i++)
			if (strcmp(opt, ignored[i]) == 0 && !val)
				return;
		/* the "=value" is already cut off: comment=... arrives as "comment" */
		if (strncmp(opt, "x-", 2) == 0 || (strcmp(opt, "comment") == 0 && val))
			return;
		die(1, "unknown mount option '%s%s%s'", opt, val ? "=" : "", val ? val : "");
	}
}

static void
parse_options(struct sup_opts *o, char *list)
{
	char *save = NULL;

	for (char *opt = strtok_r(list, ",", &save); opt; opt = strtok_r(NULL, ",", &save))
		parse_option(o, opt);
}

/* An absolute path for a directory that must exist. */
static void
check_dir(const char *what, const char *path, char *out, size_t len, int want_write)
{
	struct stat sb;
	char real[PATH_MAX];
	const char *why;

	if (stat(path, &sb) < 0)
		die(1, "%s '%s': %s", what, path, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		die(1, "%s '%s' is not a directory", what, path);
	if (access(path, want_write ? R_OK | W_OK | X_OK : R_OK | X_OK) < 0)
		die(1, "%s '%s' is not %s: %s", what, path, want_write ? "writable" : "readable",
		    strerror(errno));
	if (!realpath(path, real))
		die(1, "%s '%s': %s", what, path, strerror(errno));
	if (datalock_dir_private(real, &why) == -EPERM)
		die(1, "%s '%s' is not safe: %s (chmod go-w, chown root)", what, real, why);
	snprintf(out, len, "%s", real);
}

/*
 * DATA_DIR rados:POOL/STORE: the store is in a cluster, and the local data
 * dir is this host's cache of it (store_cache=, or one under
 * STORE_CACHE_ROOT, made if missing).  Returns the cache dir's path.
 */
static char *
store_in_cluster(struct sup_opts *o, const char *spec)
{
	struct rados_spec sp;
	const char *why;

	if (rados_spec_parse(spec, 1, &sp, &why) < 0)
		die(1, "data dir '%s': %s", spec, why);
	if (o->readonly)
		die(1, "data dir '%s': a store in a cluster cannot be mounted read-only", spec);
	snprintf(o->store_spec, sizeof(o->store_spec), "%s", spec);
	if (!o->store_cache[0]) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", STORE_CACHE_ROOT);
		mkdir(dir, 0700);
		snprintf(dir, sizeof(dir), "%s/%s", STORE_CACHE_ROOT, sp.pool);
		mkdir(dir, 0700);
		snprintf(o->store_cache, sizeof(o->store_cache), "%s/%s/%s", STORE_CACHE_ROOT, sp.pool,
		    sp.ns);
	}
	if (mkdir(o->store_cache, 0700) < 0 && errno != EEXIST)
		die(1, "store cache '%s': %s", o->store_cache, strerror(errno));
	return o->store_cache;
}

/* The mount point: a directory; a dead hcowfs mount left there is cleared. */
static void
check_mountpoint(const char *path, char *out, size_t len)
{
	struct hcow_mount m;
	struct stat sb;
	int rc;

	if ((rc = mounts_canonical(path, out, len)) < 0)
		die(1, "mount point '%s': %s", path, strerror(-rc));
	if (mounts_find(out, &m, 1) > 0) {
		struct statfs sf;
		/* statfs always asks the file system (stat may answer from cache) */
		if (statfs(out, &sf) == 0 || errno != ENOTCONN)
			die(1, "mount point '%s' already has an hcowfs mount (hcowctl -m %s status)", out, out);
		hlog(HLOG_WARN, "mount point '%s' has a dead hcowfs mount (its processes were "
		    "killed); unmounting it", out);
		if (umount2(out, MNT_DETACH) < 0)
			die(1, "cannot unmount the dead mount on '%s': %s", out, strerror(errno));
	}
	if (stat(out, &sb) < 0)
		die(1, "mount point '%s': %s", out, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		die(1, "mount point '%s' is not a directory", out);
}

/* The worker next to us in a build tree, else the installed one. */
static void
find_worker(struct sup_opts *o)
{
	char self[PATH_MAX], cand[PATH_MAX + 64];
	const char *env = getenv("HCOWFS_WORKER");
	ssize_t n;

	if (o->worker_path[0])
		return;
	if (env && *env) {
		snprintf(o->worker_path, sizeof(o->worker_path), "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		snprintf(cand, sizeof(cand), "%s/../fs/hcowfs-worker", dirname(self));
		if (access(cand, X_OK) == 0 && strstr(cand, "/supervisor/../fs/")) {
			snprintf(o->worker_path, sizeof(o->worker_path), "%.*s", (int)sizeof(o->worker_path) - 1, cand);
			return;
		}
	}
	snprintf(o->worker_path, sizeof(o->worker_path), "%s", HCOWFS_WORKER_PATH);
}

/*
 * The data dir's lock (datalock.h): on the dir itself, so that removing
 * DATA_DIR/lock changes nothing, and passed to every worker, so that the
 * store stays locked while any of them runs.  A holder whose mount is gone
 * is finishing its final checkpoint after an umount: wait for it (umount &&
 * mount must work) rather than refuse.
 */
static void
take_lock(struct sup *s)
{
	char pid[32], mnt[PATH_MAX];
	struct hcow_mount m;

	for (int waited = 0; (s->lock_fd = datalock_take(s->o.datadir)) < 0; waited++) {
		if (s->lock_fd != -EWOULDBLOCK)
			die(1, "cannot lock data dir '%s': %s", s->o.datadir, strerror(-s->lock_fd));
		datalock_holder(s->o.datadir, pid, sizeof(pid), mnt, sizeof(mnt));
		if (!mnt[0] || mounts_find(mnt, &m, 1) > 0 || waited == 600)
			die(1, "data dir '%s' is in use by another mount or check (supervisor pid %s%s%s)",
			    s->o.datadir, pid[0] ? pid : "unknown", mnt[0] ? ", mounted on " : "", mnt);
		if (waited == 0)
			hlog(HLOG_INFO, "waiting for the previous mount of '%s' to finish shutting down",
			    s->o.datadir);
		usleep(100000);
	}
}

/* Who holds the lock, for the next one refused; a read-only data dir cannot say. */
static void
write_lock_pid(struct sup *s)
{
	int rc = datalock_record(s->o.datadir, (int)getpid(), s->o.mountpoint);

	if (rc < 0 && !(rc == -EROFS && s->o.readonly))
		hlog(HLOG_WARN, "cannot record our pid in the lock file: %s", strerror(-rc));
}

static void
create_ctlmem(struct sup *s)
{
	/* sized for replay mode; in resend mode the request buffers are never touched */
	s->shm_fd = memfd_create("hcowfs-ctl", MFD_CLOEXEC);
	if (s->shm_fd < 0 || ftruncate(s->shm_fd, (off_t)ctlmem_size()) < 0)
		die(1, "cannot create control memory: %s", strerror(errno));
	s->ctl = mmap(NULL, (size_t)ctlmem_size(), PROT_READ | PROT_WRITE, MAP_SHARED, s->shm_fd, 0);
	if (s->ctl == MAP_FAILED)
		die(1, "cannot map control memory: %s", strerror(errno));
	s->ctl->magic = CTLMEM_MAGIC;
	s->ctl->version = CTLMEM_VERSION;
	s->ctl->size = (uint32_t)sizeof(struct ctlmem);
	if (s->o.fault_at_init) {
		/* armed before any worker: INIT is read once, right after the mount */
		atomic_store(&s->ctl->fault_op, FUSE_INIT);
		atomic_store(&s->ctl->fault_kind, FAULT_CRASH);
		atomic_store(&s->ctl->fault_count, 1);
	}
}

/*
 * How a replacement gets the requests a dead worker held: the kernel's
 * FUSE_NOTIFY_RESEND where it has it (Linux 6.9+; writing it with nothing in
 * flight is harmless, and an older kernel refuses it), else replay from the
 * slots.  Decided once, at mount, before the first worker serves.
 */
static void
choose_reissue(struct sup *s)
{
	struct fuse_out_header out = { .len = sizeof(out), .error = NOTIFY_RESEND, .unique = 0 };
	int have_resend = write(s->fuse_fd, &out, sizeof(out)) == (ssize_t)sizeof(out);

	if (s->o.reissue == REISSUE_RESEND && !have_resend)
		hlog(HLOG_WARN, "reissue=resend asked for, but this kernel has no FUSE_NOTIFY_RESEND");
	s->ctl->reissue = s->o.reissue ? (uint32_t)s->o.reissue :
	    have_resend ? REISSUE_RESEND : REISSUE_REPLAY;
	if (s->o.nowatch && s->ctl->reissue == REISSUE_REPLAY) {
		hlog(HLOG_WARN, "watch=off ignored: replay of held requests needs the request slots");
		s->o.nowatch = 0;
	}
	s->ctl->watch = !s->o.nowatch;
	hlog(HLOG_INFO, "requests held by a dead worker will be %s", s->ctl->reissue == REISSUE_RESEND ?
	    "resent by the kernel (FUSE_NOTIFY_RESEND)" : "replayed from shared memory");
}

/* Fork; the parent waits for the daemon's word and exits with it. */
static void
daemonize(struct sup *s)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		die(1, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die(1, "fork: %s", strerror(errno));
	if (pid > 0) {
		char msg[1024];
		ssize_t n, got = 0;
		close(p[1]);
		while ((n = read(p[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0)
			got += n;
		msg[got] = '\0';
		if (got > 0 && msg[0] == '0') {
			/* mounted, with a warning per line, if any */
			for (char *l = msg + 1; *l; ) {
				size_t len = strcspn(l, "\n");
				fprintf(stderr, "mount.hcowfs: warning: %.*s\n", (int)len, l);
				l += len + (l[len] == '\n');
			}
			_exit(0);
		}
		fprintf(stderr, "mount.hcowfs: %s\n", got > 1 ? msg + 1 : "the daemon died while starting");
		_exit(1);
	}
	close(p[0]);
	s->ready_fd = p[1];
	setsid();
	if (chdir("/") < 0)
		hlog(HLOG_WARN, "chdir /: %s", strerror(errno));
	{
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(s->log_fd, STDOUT_FILENO);
			close(null);
		}
	}
	dup2(s->log_fd, STDERR_FILENO);
}

/*
 * A worker that has not started serving leaves by itself when its control
 * socket closes (or after it reported its own failure): give it a moment to
 * run its exit path, so nothing it does at exit is cut short, then kill it.
 */
static void
worker_dismiss(struct worker_proc *w)
{
	if (w->ctl_fd >= 0) {
		close(w->ctl_fd);
		w->ctl_fd = -1;
	}
	/* 2 s to leave, then killed; 2 s more to be reaped (a worker stuck in the
	 * kernel, on a hung disk, is left behind rather than holding us) */
	for (int i = 0; i < 400; i++) {
		if (waitpid(w->pid, NULL, WNOHANG) != 0)
			return;
		if (i == 200)
			kill(w->pid, SIGKILL);
		usleep(10 * 1000);
	}
}

static void sup_startup_failed(struct sup *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Tell the waiting parent why we could not mount, undo what was done, exit 1. */
static void
sup_startup_failed(struct sup *s, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg + 1, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	msg[0] = '1';
	hlog(HLOG_ERROR, "%s", msg + 1);
	if (s->ready_fd >= 0 && write(s->ready_fd, msg, strlen(msg)) < 0) {
		/* the parent is gone; the log has it */
	}
	if (s->mounted)
		umount2(s->o.mountpoint, MNT_DETACH);
	if (s->worker.pid > 0)
		worker_dismiss(&s->worker);
	ctlsock_close(s);
	exit(1);
}

/* The first worker is ready: mount, open the control socket, release the parent. */
static void
sup_mounted(struct sup *s, const char *warnings, size_t len)
{
	char data[256], err[PATH_MAX + 128];
	struct hcow_mount m[8];
	unsigned long flags = MS_NOSUID | MS_NODEV | (s->o.readonly ? MS_RDONLY : 0);
	int n;

	snprintf(data, sizeof(data), "fd=%d,rootmode=40000,user_id=0,group_id=0,"
	    "allow_other,default_permissions", s->fuse_fd);
	if (mount(s->o.tmpldir, s->o.mountpoint, "fuse.hcowfs", flags, data) < 0)
		sup_startup_failed(s, "cannot mount on '%s': %s", s->o.mountpoint, strerror(errno));
	s->mounted = 1;
	choose_reissue(s);
	n = mounts_find(s->o.mountpoint, m, 8);
	if (n <= 0)
		sup_startup_failed(s, "mounted '%s' but cannot find it in /proc/self/mountinfo",
		    s->o.mountpoint);
	/* the newest mount on that path is ours */
	s->dev_major = m[(n > 8 ? 8 : n) - 1].major;
	s->dev_minor = m[(n > 8 ? 8 : n) - 1].minor;
	if (ctlsock_open(s, err, sizeof(err)) < 0)
		sup_startup_failed(s, "%s", err);
	hlog(HLOG_INFO, "mounted %s (templates %s, data %s), control socket %s", s->o.mountpoint,
	    s->o.tmpldir, s->o.datadir, s->sock_path);
	if (s->ready_fd >= 0) {
		/* "0" = mounted, then warnings for the parent to print */
		if (write(s->ready_fd, "0", 1) < 0 || write(s->ready_fd, warnings, len) < 0) {
			/* nobody is waiting */
		}
		close(s->ready_fd);
		s->ready_fd = -1;
	}
}

static void sup_exit(struct sup *s, int code) __attribute__((noreturn));

static void
sup_exit(struct sup *s, int code)
{
	standby_stop(s, 1);
	ctlsock_close(s);
	exit(code);
}

/* The hooks of workers.c: how the worker lifecycle tells us to act. */
static void
hook_startup_failed(struct sup *s, const char *msg)
{
	sup_startup_failed(s, "%s", msg);
}

static void
hook_unmounted(struct sup *s)
{
	sup_exit(s, 0);
}

static const struct workers_hooks workers_up = {
	.mount = sup_mounted,
	.startup_failed = hook_startup_failed,
	.unmounted = hook_unmounted,
};

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct sup *s = w->data;

	(void)loop;
	(void)revents;
	if (w->signum == SIGHUP) {
		hlog(HLOG_INFO, "SIGHUP ignored (unmount with umount %s)", s->o.mountpoint);
		return;
	}
	hlog(HLOG_INFO, "signal %d: unmounting %s", w->signum, s->o.mountpoint);
	if (umount2(s->o.mountpoint, 0) < 0)
		hlog(HLOG_WARN, "cannot unmount %s: %s; still serving", s->o.mountpoint, strerror(errno));
	/* the worker sees the unmount, exits 0, and the child watcher ends us */
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static struct sup s;
	char *pos[3];
	int npos = 0, opt;

	hlog_init("mount.hcowfs", HLOG_INFO);
	hlog_plain(1);
	s.o.owner_uid = -1;
	s.o.hang_timeout_ms = HANG_TIMEOUT_MS_DEFAULT;
	s.o.restart_burst = 10;
	s.ready_fd = -1;
	s.log_fd = -1;
	s.listen_fd = -1;
	/* mount(8) passes -n (no mtab), -s (sloppy), -v (verbose); none matters here.
	 * GNU getopt lets options come after the positional arguments, as mount(8) puts them. */
	while ((opt = getopt_long(argc, argv, "fo:nsvhVt:N:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': s.o.foreground = 1; break;
		case 'o': parse_options(&s.o, optarg); break;
		case 'n': case 's': case 'v': case 't': case 'N': break;
		case 'h': usage(stdout, 0); break;
		case 'V': printf("mount.hcowfs %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr, 1);
		}
	}
	while (optind < argc && npos < 3)
		pos[npos++] = argv[optind++];
	if (optind < argc)
		die(1, "too many arguments (see mount.hcowfs --help)");
	if (npos == 2 && s.o.datadir[0]) {
		pos[2] = pos[1];
		pos[1] = s.o.datadir;
	} else if (npos == 3 && s.o.datadir[0]) {
		die(1, "data dir given twice: as an argument and as -o datadir=");
	} else if (npos != 3) {
		usage(stderr, 1);
	}
	if (geteuid() != 0)
		die(1, "must run as root (it mounts a file system and owns its control socket)");
	umask(077);	/* the store's files are root's: the log, the catalog, segments */
	if (rados_spec_is(pos[0])) {
		/* templates in a pool: the worker connects; a local cache is where they are read */
		struct rados_spec sp;
		const char *why;
		if (rados_spec_parse(pos[0], 0, &sp, &why) < 0)
			die(1, "template dir '%s': %s", pos[0], why);
		if (!s.o.template_cache[0])
			die(1, "template dir '%s' is in a pool: give the host's cache with "
			    "-o template_cache=DIR", pos[0]);
		snprintf(s.o.tmpldir, sizeof(s.o.tmpldir), "%s", pos[0]);
	} else {
		check_dir("template dir", pos[0], s.o.tmpldir, sizeof(s.o.tmpldir), 0);
	}
	if (rados_spec_is(pos[1]))
		pos[1] = store_in_cluster(&s.o, pos[1]);
	else if (s.o.store_takeover || s.o.store_cache[0])
		die(1, "takeover and store_cache= are for a data dir in a cluster (rados:POOL/STORE)");
	/* -o ro changes no file: a snapshot or a read-only medium can be served */
	check_dir("data dir", pos[1], s.o.datadir, sizeof(s.o.datadir), !s.o.readonly);
	check_mountpoint(pos[2], s.o.mountpoint, sizeof(s.o.mountpoint));
	if (s.o.store_spec[0]) {
		char host[256] = "unknown";
		gethostname(host, sizeof(host) - 1);
		snprintf(s.o.holder, sizeof(s.o.holder), "%s:%s (supervisor pid %d)", host,
		    s.o.mountpoint, (int)getpid());
	}
	if (strcmp(s.o.datadir, s.o.tmpldir) == 0)
		die(1, "the data dir and the template dir must differ");
	find_worker(&s.o);
	if (access(s.o.worker_path, X_OK) < 0)
		die(1, "worker program '%s': %s", s.o.worker_path, strerror(errno));
	take_lock(&s);
	if (!s.o.foreground) {
		char path[PATH_MAX + 16];
		snprintf(path, sizeof(path), "%s/hcowfs.log", s.o.datadir);
		s.log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (s.log_fd < 0 && s.o.readonly && (errno == EROFS || errno == EACCES)) {
			fprintf(stderr, "mount.hcowfs: data dir '%s' is read-only: no log file (mount "
			    "with -f to see the log)\n", s.o.datadir);
			s.log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		}
		if (s.log_fd < 0)
			die(1, "cannot open log file '%s': %s", path, strerror(errno));
		daemonize(&s);
	}
	write_lock_pid(&s);
	clock_gettime(CLOCK_MONOTONIC, &s.started);
	/* from here on, messages are log lines: in the log file, or on stderr with -f */
	hlog_plain(0);
	create_ctlmem(&s);
	s.fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (s.fuse_fd < 0)
		sup_startup_failed(&s, "cannot open /dev/fuse: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Recovery must not queue for a CPU behind the applications whose I/O
	 * waits on it: the supervisor (idle but for faults) and the workers it
	 * starts run ahead of ordinary processes.
	 */
	if (setpriority(PRIO_PROCESS, 0, SUPERVISOR_NICE) < 0)
		hlog(HLOG_WARN, "cannot raise our priority (nice %d): %s", SUPERVISOR_NICE, strerror(errno));

	s.loop = ev_default_loop(EVFLAG_AUTO);
	ev_signal_init(&s.sig_term, signal_cb, SIGTERM);
	ev_signal_init(&s.sig_int, signal_cb, SIGINT);
	ev_signal_init(&s.sig_hup, signal_cb, SIGHUP);
	s.sig_term.data = s.sig_int.data = s.sig_hup.data = &s;
	ev_signal_start(s.loop, &s.sig_term);
	ev_signal_start(s.loop, &s.sig_int);
	ev_signal_start(s.loop, &s.sig_hup);
	workers_init(&s, &workers_up);
	hlog(HLOG_INFO, "starting: templates %s, data %s, mount point %s", s.o.tmpldir,
	    s.o.datadir, s.o.mountpoint);
	worker_start(&s, 0);
	ev_run(s.loop, 0);
	sup_exit(&s, 0);
}
