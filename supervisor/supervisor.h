/*
 * supervisor: what mount.hcowfs's files share.
 *
 * The supervisor owns the mount: the /dev/fuse fd, the control memory, the
 * data dir lock and the control socket, for the life of the mount.  It never
 * runs a file system operation or store code: it starts workers, relays
 * control requests to them and answers status itself.
 *
 * Its files form a ladder; each calls only those below it, and hears back
 * from them through callbacks it gave them (as SQLite's pager takes its
 * btree's reinit callback), never by calling up:
 *
 *   main.c      options, checks, daemonizing, the mount, the event loop, exit
 *   ctlsock.c   the control socket and its clients; status
 *   workers.c   the serving worker's lifecycle: start, ready, reap, replace,
 *               throttle (hooks up: struct workers_hooks, worker_restart_fn)
 *   standby.c   the worker started ahead of need
 *   relay.c     the control channel to the worker, requests relayed over it
 *               (calls back: relay_ready_fn, relay_answer_fn)
 *   watch.c     hang detection
 *   spawn.c     fork and exec of a worker
 *   faults.c    the record of faults, suspects and poison requests
 *
 * Everything runs on one libev loop in one thread.  Error convention: startup
 * code dies with a message (die()); code on the loop logs and carries on.
 */
#ifndef HCOWFS_SUPERVISOR_H
#define HCOWFS_SUPERVISOR_H

#include <ev.h>
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "ctlmem.h"
#include "proto.h"
#include "sbuf.h"

#define FAULTS_KEPT	16

struct sup_opts {
	char	 tmpldir[PATH_MAX];
	char	 datadir[PATH_MAX];
	char	 mountpoint[PATH_MAX];
	char	 worker_path[PATH_MAX];
	int	 foreground;
	int	 readonly;
	uint64_t segment_size;		/* 0: the worker's default */
	unsigned checkpoint_ms;		/* 0: the worker's default */
	uint64_t space_reserve;		/* 0: the worker's default; UINT64_MAX: none */
	uint64_t max_extents;		/* 0: the worker's default */
	uint64_t max_disk_size;		/* 0: the worker's default */
	unsigned threads;		/* 0: the worker's default */
	long	 owner_uid;		/* besides root, may use the control socket; -1 none */
	unsigned hang_timeout_ms;	/* a request older than this means a hung worker */
	int	 reissue;		/* 0 auto, else enum ctl_reissue */
	int	 fault_injection;	/* hcowctl debug fault allowed */
	int	 fault_at_init;		/* -o fault_injection=init: the first worker crashes at INIT */
	int	 nowatch;		/* -o watch=off: no hang detection, no request slots */
	unsigned restart_burst;		/* restarts per 10 s before throttling */
	int	 nostandby;		/* -o standby=off: no worker started ahead of need */
	int	 blocks_used;		/* -o blocks=used: st_blocks says what a disk holds */
	char	 ceph_conf[PATH_MAX];	/* -o ceph_conf=, "" Ceph's default */
	char	 ceph_id[128];		/* -o ceph_id=, "" Ceph's default */
	unsigned ceph_op_timeout;	/* -o ceph_op_timeout=, s; 0: wait for the cluster */
	char	 template_cache[PATH_MAX];	/* -o template_cache=, for a rados: template dir */
	uint64_t template_cache_size;	/* 0: the worker's default */
	char	 store_spec[160];	/* DATA_DIR rados:POOL/STORE; datadir is then its cache here */
	char	 store_cache[PATH_MAX];	/* -o store_cache=, "" STORE_CACHE_ROOT/POOL/STORE */
	int	 store_takeover;	/* -o takeover: fence the host that serves the store */
	char	 holder[PATH_MAX + 128];	/* "HOST:MOUNTPOINT (supervisor pid N)", for its lock */
};

#define HANG_TIMEOUT_MS_DEFAULT	10000
#define STORE_CACHE_ROOT	"/var/cache/hcowfs"	/* a cluster store's default cache: POOL/STORE below */
#define HANG_TIMEOUT_MAX_FACTOR	8	/* a worker waiting on the disk gets up to 8 timeouts */

/* Why a worker ended. */
enum cause { CAUSE_CRASH, CAUSE_HANG, CAUSE_EXIT, CAUSE_RESTART, CAUSE_COUNT };

struct sup;
struct client;

/* A relayed request finished: err 0 = ok, body is the result or message. */
typedef void (*relay_answer_fn)(struct sup *s, struct client *c, int err, const char *body,
    size_t len);
/* The worker's start-up report (frame 0 on its channel). */
typedef void (*relay_ready_fn)(struct sup *s, int err, const char *body, size_t len);
/* A deliberate restart ended: the replacement is serving (err 0), msg for the admin. */
typedef void (*worker_restart_fn)(struct sup *s, int err, const char *msg);

/* What the worker lifecycle reports to main.c (workers_init). */
struct workers_hooks {
	/* the first worker opened the store: mount now; warnings are lines for the admin */
	void (*mount)(struct sup *s, const char *warnings, size_t len);
	/* the mount could not be made ready (msg says why); does not return */
	void (*startup_failed)(struct sup *s, const char *msg);
	/* the worker ended because the file system was unmounted; does not return */
	void (*unmounted)(struct sup *s);
};

/* A request relayed to the worker, answered when its reply comes back. */
struct relay {
	struct relay	*next;
	uint64_t	 id;
	struct client	*client;	/* waiting for it; NULL: gone (relay_forget_client) */
	relay_answer_fn	 answer;	/* tells the client */
	char		*line;		/* FORMAT VERB ARGS, as sent */
	int		 sent;		/* to the current worker */
	unsigned	 deaths;	/* workers that died holding it (poison: POISON_ATTEMPTS) */
};

enum worker_state { WORKER_STARTING, WORKER_RUNNING, WORKER_GONE };

struct worker_proc {
	pid_t		 pid;
	enum worker_state state;
	int		 takeover;
	int		 ctl_fd;
	ev_io		 ctl_io;
	char		*rbuf;		/* replies being read */
	size_t		 rlen, rcap;
	struct sbuf	 out;		/* requests not yet taken by the channel */
	size_t		 out_off;	/* bytes of out already sent */
	ev_io		 ctl_wio;	/* waits for room in the channel while out is not empty */
	struct timespec	 started;
	uint64_t	 taken_at_start, done_at_start;
	int		 kill_cause;	/* CAUSE_HANG/CAUSE_RESTART when we killed it, else -1 */
	double		 hang_age_ms;	/* age of the stuck request when the hang was seen */
	char		 hang_req[160];	/* which request */
};

struct fault {
	time_t		 when;
	pid_t		 pid;
	enum cause	 cause;
	char		 what[200];
	double		 detect_ms;	/* hang: age of the stuck request when killed; crash: 0 */
	double		 recover_ms;	/* death to replacement ready; < 0 while recovering */
};

/* A request held by a worker that died, and how many workers it has outlived. */
struct suspect {
	uint64_t	 unique;	/* without the resend bit */
	unsigned	 deaths;
	char		 what[160];
};

#define SUSPECTS_KEPT	64
#define POISON_KEPT	8

struct sup {
	struct sup_opts	 o;
	struct ev_loop	*loop;
	ev_timer	 watch_timer;		/* hang detection */
	uint64_t	 slow_waits;		/* requests past the timeout forgiven: disk wait */
	uint64_t	 slow_unique;		/* the last one, to log each once */
	uint64_t	 watch_taken;		/* requests_taken at the last watch */
	double		 pending_since;		/* ns: requests pending, none taken since */
	double		 watch_last_ns;		/* when the watch last ran */
	double		 watch_grace_ns;	/* no hang before this (we were not running) */
	uint64_t	 by_cause[CAUSE_COUNT];
	int		 recovering;		/* index + 1 in faults[] of the fault being recovered */
	double		 died_at;		/* ev_now when the last worker's death was seen */
	struct suspect	 suspects[SUSPECTS_KEPT];
	unsigned	 nsuspects;
	char		 poison_what[POISON_KEPT][200];
	unsigned	 npoison;
	struct client	*restart_waiter;	/* hcowctl restart waiting for the replacement (ctlsock.c) */
	worker_restart_fn restart_done;		/* told when the replacement serves (workers.c) */
	pid_t		 restart_old_pid;
	const struct workers_hooks *up;		/* workers.c reports to main.c */
	relay_ready_fn	 relay_ready;		/* relay.c reports frame 0 to workers.c */
	int		 fuse_fd;
	int		 shm_fd;
	int		 lock_fd;
	int		 log_fd;		/* -1 in the foreground */
	int		 ready_fd;		/* pipe to the waiting parent, -1 once told */
	struct ctlmem	*ctl;
	int		 mounted;
	unsigned	 dev_major, dev_minor;
	char		 sock_path[PATH_MAX];
	dev_t		 sock_dev;	/* the socket file we made (ctlsock_close) */
	ino_t		 sock_ino;
	int		 listen_fd;
	ev_io		 listen_io;
	struct {			/* the control socket's bounds (ctlsock.c) */
		unsigned	 clients;	/* connections open */
		size_t		 answer_bytes;	/* of answers not yet all sent */
		int		 fd_limit;	/* RLIMIT_NOFILE: refuse clients near it */
		int		 reserve_fd;	/* closed to accept and refuse at EMFILE */
		ev_timer	 pause;		/* accepting again after EMFILE */
		double		 refused_logged_at;	/* refusals: one log line a second */
		unsigned	 refused_unlogged;
		double		 restart_at;	/* ev_now of the last hcowctl restart */
	} ctl_bounds;
	ev_child	 child_w;
	ev_timer	 restart_timer;
	ev_signal	 sig_term, sig_int, sig_hup;
	struct timespec	 started;

	struct worker_proc worker;
	struct {			/* a worker started ahead of need (standby.c) */
		pid_t		 pid;		/* 0: none */
		int		 ctl_fd;
		struct timespec	 started;
		unsigned	 failures;	/* in a row, ended before it was needed */
		ev_timer	 timer;		/* starts the next one */
	} standby;
	uint64_t	 restarts;
	struct fault	 faults[FAULTS_KEPT];
	unsigned	 nfaults;		/* total ever; ring of FAULTS_KEPT */
	double		 restart_tokens;	/* throttle: replacements that may go at once */
	double		 restart_tokens_at;	/* ev_now() when it was last refilled */

	struct relay	*relays;		/* oldest first */
	unsigned	 nrelays;		/* at most RELAYS_MAX */
	uint64_t	 next_id;
	int		 stopping;
};

/* ctlsock.c */
/* Listen on the mount's control socket; 0, or -1 with the reason in err. */
int ctlsock_open(struct sup *s, char *err, size_t errlen);
/* Remove the socket, if it is still ours. */
void ctlsock_close(struct sup *s);

/* status.c: `hcowctl status` as text or JSON, with the worker's disks part
 * (disks, dlen) or, when err is set, why it could not be had. */
void status_json(struct sup *s, struct sbuf *b, const char *disks, size_t dlen, int err);
void status_text(struct sup *s, struct sbuf *b, const char *disks, size_t dlen, int err);

/* workers.c */
void workers_init(struct sup *s, const struct workers_hooks *up);
/* Start the worker that serves the mount (takeover: replacing one). */
void worker_start(struct sup *s, int takeover);
/* Deliberate replacement (hcowctl restart), done told once it serves; 0 or -errno. */
int worker_restart(struct sup *s, worker_restart_fn done);

/* standby.c */
void standby_init(struct sup *s);
/* Start a standby after the delay, unless there is one or it is off. */
void standby_schedule(struct sup *s);
/* Tell the standby "go": its pid and our end of its channel (*ctl_fd), or -1. */
pid_t standby_take(struct sup *s, int *ctl_fd);
/* The standby died unused (status from waitpid): another one later. */
void standby_ended(struct sup *s, int status);
/* Stop the standby worker, if any, and reap it (at exit). */
void standby_stop(struct sup *s, int reap);

/* relay.c */
void relay_init(struct sup *s, relay_ready_fn ready);
/* The channel of a new worker (our end ctl_fd): start reading it. */
void relay_attach(struct sup *s, int ctl_fd);
/* The worker died: read what it left in the channel, then close it. */
void relay_detach(struct sup *s);
#define RELAYS_MAX	2048	/* requests waiting for the worker; more are refused */
#define RELAYS_SENT_MAX	8	/* of them with the worker at a time */
/*
 * Queue line (FORMAT VERB ARGS) for the worker on behalf of c, ahead of the
 * requests not yet sent if urgent; 0, -ENOMEM or -EBUSY (RELAYS_MAX wait).
 */
int relay_submit(struct sup *s, struct client *c, const char *line, relay_answer_fn answer,
    int urgent);
/* The client went away or was answered: its relays are dropped (or, sent, orphaned). */
void relay_forget_client(struct sup *s, struct client *c);
/* A worker is running: send it what waits. */
void relay_send_queued(struct sup *s);
/* The worker died: resend what it held, marked retry=1, or fail the poison ones. */
void relay_requeue(struct sup *s);

/* watch.c */
void watch_init(struct sup *s);

/* spawn.c */
/* Fork and exec a worker (mode NULL, "--takeover", "--standby"); the pid, or -1 (logged). */
pid_t spawn_worker(struct sup *s, const char *mode, int *ctl_fd);

/* faults.c */
struct fault *fault_record(struct sup *s, pid_t pid, enum cause cause, const char *what);
/* Count the requests a dead worker held; poison those held by POISON_ATTEMPTS. */
void fault_blame(struct sup *s, enum cause cause);
const char *fault_cause_name(enum cause c);
/* "WRITE node 3 [4096+512]" */
void fault_describe_request(const struct ctl_slot *sl, uint64_t unique, char *buf, size_t len);

#endif
