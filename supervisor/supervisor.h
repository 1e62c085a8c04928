/*
 * supervisor: what mount.hcowfs's files share.
 *
 * The supervisor owns the mount: the /dev/fuse fd, the control memory, the
 * data dir lock and the control socket, for the life of the mount.  It never
 * runs a file system operation or store code: it starts workers (workers.c),
 * relays control requests to them and answers status itself (ctlsock.c).
 * main.c parses options, checks them, daemonizes and mounts.
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
	long	 owner_uid;		/* besides root, may use the control socket; -1 none */
};

/* A request relayed to the worker, answered when its reply comes back. */
struct relay {
	struct relay	*next;
	uint64_t	 id;
	struct client	*client;	/* NULL once the client is gone */
	char		*line;		/* FORMAT VERB ARGS, as sent */
	int		 sent;		/* to the current worker */
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
	struct timespec	 started;
	uint64_t	 taken_at_start, done_at_start;
};

struct fault {
	time_t		 when;
	pid_t		 pid;
	char		 what[160];
};

struct sup {
	struct sup_opts	 o;
	struct ev_loop	*loop;
	int		 fuse_fd;
	int		 shm_fd;
	int		 lock_fd;
	int		 log_fd;		/* -1 in the foreground */
	int		 ready_fd;		/* pipe to the waiting parent, -1 once told */
	struct ctlmem	*ctl;
	int		 mounted;
	unsigned	 dev_major, dev_minor;
	char		 sock_path[PATH_MAX];
	int		 listen_fd;
	ev_io		 listen_io;
	ev_child	 child_w;
	ev_timer	 restart_timer;
	ev_signal	 sig_term, sig_int, sig_hup;
	struct timespec	 started;

	struct worker_proc worker;
	uint64_t	 restarts;
	struct fault	 faults[FAULTS_KEPT];
	unsigned	 nfaults;		/* total ever; ring of FAULTS_KEPT */
	time_t		 restart_window;	/* throttle: start of the current window */
	unsigned	 restarts_in_window;

	struct relay	*relays;		/* oldest first */
	uint64_t	 next_id;
	int		 stopping;
};

/* main.c */
void sup_startup_failed(struct sup *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
void sup_mounted(struct sup *s);
void sup_exit(struct sup *s, int code) __attribute__((noreturn));
double sup_uptime(const struct timespec *since);

/* workers.c */
void workers_init(struct sup *s);
void worker_start(struct sup *s, int takeover);
/* Queue line (FORMAT VERB ARGS) for the worker on behalf of c. */
int relay_submit(struct sup *s, struct client *c, const char *line);
/* The client went away: its relays are answered into the void. */
void relay_forget_client(struct sup *s, struct client *c);

/* ctlsock.c */
void ctlsock_open(struct sup *s);
void ctlsock_close(struct sup *s);
/* A relayed request finished: err 0 = ok, body is the result or message. */
void client_answer(struct sup *s, struct client *c, int err, const char *body, size_t len);

#endif
