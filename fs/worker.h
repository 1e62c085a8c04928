/*
 * worker: what the worker's files share.  The worker is the process that
 * serves the FUSE requests of one mount over the /dev/fuse fd it inherits
 * from the supervisor (worker.c), with the operations in fsops.c and the
 * control verbs in control.c, all over one struct store.
 */
#ifndef HCOWFS_WORKER_H
#define HCOWFS_WORKER_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "ctlmem.h"
#include "sbuf.h"
#include "store.h"

struct worker {
	struct store		*st;
	struct fuse_session	*se;
	struct ctlmem		*ctl;
	int			 fuse_fd;
	int			 ctl_fd;	/* socketpair to the supervisor */
	int			 fault_injection; /* -o fault_injection: obey ctl->fault */
	uint32_t		 pid;		/* getpid() once: a syscall per request costs */
};

extern const struct fuse_lowlevel_ops fsops;

/*
 * True while this thread handles a request the kernel resent after a worker
 * died (bit 63 of its unique).  Its first execution may have completed, so a
 * namespace op that finds its work already done answers success.
 */
int worker_request_resent(void);

/*
 * Run one control request (a line without its id prefix) and put the reply
 * body in out.  Returns 0 or a positive errno, the body then being the message.
 */
int control_handle(struct worker *w, char *line, struct sbuf *out);

#endif
