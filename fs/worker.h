/*
 * worker: what the worker's files share.  The worker is the process that
 * serves the FUSE requests of one mount over the /dev/fuse fd it inherits
 * from the supervisor, with the operations in fsops.c and the control verbs
 * in control.c, all over one struct store.
 *
 * Its files form a ladder; each calls only those below it:
 *
 *   worker.c    main: options, the control memory, the life of the worker
 *   control.c   the control thread and its verbs (over the store)
 *   pool.c      the serving threads and their gate
 *   fsops.c     the FUSE operations (over the store; libfuse calls them)
 *   session.c   the libfuse session's custom I/O; taking over from a dead
 *               worker (INIT replay, resend, replay of held requests)
 *   slots.c     request slots, counters and the poison list in the control
 *               memory
 *   fault.c     fault injection
 */
#ifndef HCOWFS_WORKER_H
#define HCOWFS_WORKER_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "ctlmem.h"
#include "proto.h"
#include "sbuf.h"
#include "store.h"

#define WORKER_MAX_THREADS	32	/* <= CTLMEM_SLOTS */
struct worker {
	struct store		*st;
	struct fuse_session	*se;
	struct ctlmem		*ctl;
	int			 fuse_fd;
	int			 ctl_fd;	/* socketpair to the supervisor */
	struct proto_reader	 ctl_in;	/* every line read from ctl_fd */
	int			 fault_injection; /* -o fault_injection: obey ctl->fault */
	int			 blocks_used;	/* -o blocks=used: st_blocks as held (dirops.c) */
};

/* fsops.c: every operation the worker serves (dirops.c's too). */
void fsops_fill(struct fuse_lowlevel_ops *ops);

/* control.c */
/*
 * Run one control request (a line without its id prefix) and put the reply
 * body in out.  Returns 0 or a positive errno, the body then being the message.
 */
int control_handle(struct worker *w, char *line, struct sbuf *out);
/* Send one framed reply to the supervisor (id 0: the start-up report); 0 or -errno. */
int control_reply(struct worker *w, unsigned long long id, int err, const char *body, size_t len);
/* Start the thread that serves the supervisor's requests. */
void control_start(struct worker *w);

/* pool.c */
/* Set the limit (--threads) and start the first threads; they wait at the gate. */
void pool_start(struct worker *w, unsigned threads);
void pool_open_gate(void);
/* Wait for every serving thread to end (the session ended); 0 or -errno. */
int pool_join(void);

/* session.c */
/* The libfuse session over w->fuse_fd with the custom I/O, in w->se; 0 or -1. */
int session_new(struct worker *w, const struct fuse_lowlevel_ops *ops, size_t opsize);
/* Feed the first worker's INIT to our fresh session.  0 or -errno (-ENOENT: none saved yet). */
int session_replay_init(struct worker *w);
/*
 * Taking over: if no worker answered the connection's INIT (the first died
 * after reading it), answer it with the reply our replay made.  0 or -errno.
 */
int session_answer_init(struct worker *w);
/* Ask the kernel to requeue what the previous worker held.  0 or -errno. */
int session_resend(struct worker *w);
/* Replay mode: re-run the requests the dead worker held, on this thread. */
void session_replay_held(struct worker *w);
/* Fault in this thread's receive buffer before its first read (once per buffer). */
void session_populate(void *buf, size_t len);
/*
 * True while this thread handles a request the kernel resent after a worker
 * died (bit 63 of its unique).  Its first execution may have completed, so a
 * namespace op that finds its work already done answers success.
 */
int session_request_resent(void);
/* At INIT (fo_init): may O_DIRECT opens take parallel writes (session_reply_open)? */
void session_conn_init(const struct fuse_conn_info *conn);
/*
 * fuse_reply_open (e NULL) or fuse_reply_create; an O_DIRECT open gets
 * FOPEN_DIRECT_IO and FOPEN_PARALLEL_DIRECT_WRITES when the kernel allows.
 */
int session_reply_open(fuse_req_t req, const struct fuse_entry_param *e,
    struct fuse_file_info *fi);

/* slots.c */
void slot_init(struct ctlmem *c);
/* This thread's slot, taken at its first request; -1 if all are taken. */
int slot_mine(struct ctlmem *c);
/* From now on this thread writes slot i; its counts go on from what the slot holds. */
void slot_adopt(struct ctlmem *c, int i);
void slot_forget(void);
/* One more request read (done 0) or reply written (done 1) by this thread. */
void slot_count(struct ctlmem *c, int done);
/* Record the request just read (buf, n bytes) in slot i. */
void slot_fill(struct ctlmem *c, int i, const void *buf, size_t n);
/* In replay mode the request in slot i's buffer is answered: it must not be re-run. */
void slot_buf_done(struct ctlmem *c, int i);
/* Slot i's request is answered: nothing held there any more. */
void slot_done(struct ctlmem *c, int i);
/* The reply to unique was written: clear the slot that holds it. */
void slot_clear(struct ctlmem *c, uint64_t unique);
int slot_poisoned(struct ctlmem *c, uint64_t unique);

/* iostat.c */
/*
 * Count a READ or WRITE of disk id answered with res (bytes, or -errno),
 * begun at start_ns (clock_mono_ns(), clock.h); src: a read's sources, or NULL.
 */
void iostat_count(struct ctlmem *c, uint64_t id, enum ctl_io_dir dir, ssize_t res,
    const struct store_read_src *src, uint64_t start_ns);
/* For status: each disk's counters, text table or JSON keys after the disks array. */
void iostat_describe(struct ctlmem *c, struct store *st, struct sbuf *out, int json);

/* fault.c */
/* Fire the armed fault if it applies to op (an opcode, FAULT_OP_APPEND, FAULT_OP_CONTROL). */
void fault_maybe(struct ctlmem *c, uint32_t op);
/* The store's append hook: arg is the control memory. */
void fault_append_hook(void *arg);
/* The store's copy hook: arg is the control memory; fires FAULT_OP_COPY_* by step. */
void fault_copy_hook(void *arg, enum copy_step s);

#endif
