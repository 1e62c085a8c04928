/*
 * ctlmem: the control memory the supervisor shares with its workers.
 *
 * The supervisor creates it (a memfd) before the first worker and keeps it
 * for the life of the mount; every worker maps it.  It holds what a
 * replacement worker needs from its predecessor and cannot get from the store
 * or the kernel, the progress the supervisor watches, and the supervisor's
 * orders to workers:
 *
 *   init_req   the raw FUSE_INIT the kernel sent the first worker.  The kernel
 *              sends INIT once per connection; a replacement feeds this copy
 *              to its own libfuse session (and drops the reply).
 *   init_answered  set once INIT's reply was written.  A first worker can die
 *              between reading INIT and answering it: the kernel then waits
 *              for that reply forever, so the replacement sends the one its
 *              own session made (session_answer_init).
 *   slot[]     one per worker thread: the request it is serving (unique 0 =
 *              idle) and since when, and how many requests the threads that
 *              held the slot read and answered.  The supervisor reads them to
 *              detect a hang (one request older than the hang timeout), to
 *              blame the requests a dead worker held (poison detection), to
 *              count requests (their sum is `hcowctl status`'s served and
 *              taken), and, in replay mode, a replacement re-runs the
 *              requests whose bytes they hold.
 *   poison[]   requests (unique without the resend bit) that killed
 *              POISON_ATTEMPTS workers: a worker answers them EIO unrun.
 *              The supervisor writes an entry, then poison_count (release);
 *              a worker reads poison_count first, so the usual empty list
 *              costs it one load per request.
 *   fault      fault injection, armed by `hcowctl debug fault` (only on a
 *              mount started with -o fault_injection).
 *   diskio[]   per-disk I/O counters (reads, writes, bytes, where read bytes
 *              came from, latency histograms), kept here so they survive a
 *              worker replacement; see "Per-disk I/O counters" below.
 *
 * Slot protocol (worker thread, in io_read/io_writev):
 *   read a request  -> taken + 1; fill opcode..offset, start_ns, then unique
 *                      (release)
 *   write its reply -> done + 1; unique = 0 (release)
 * The supervisor reads unique first (acquire), so a non-zero unique comes with
 * its fields (or, if the slot moved on meanwhile, with a later start_ns: a
 * request can look younger than it is, never older).  Only the slot's thread
 * writes its slot, so every store is a plain one, the counters included (the
 * thread keeps its counts and only stores them: no load, no locked add).  A
 * thread that found no free slot counts in requests_taken/requests_done
 * instead (atomic adds); requests taken or
 * done = those two plus the sums over the slots (ctlmem_requests()).
 *
 * In replay mode the thread read()s the request straight into its slot's
 * buffer, whose fuse_in_header is the record of what is held (unique 0 =
 * nothing): a request is safe from the instant read() returns, and its
 * header's unique is cleared once it is answered (or needs no answer).
 *
 * Slot ownership: bit i of slots_used; a thread takes a free bit at its first
 * request and gives it back when it exits.  After a worker died the
 * supervisor reads the slots, then clears slots_used for the replacement (in
 * replay mode the replacement clears each slot as it re-runs it).  The
 * counters stay: the next owner goes on from them.
 *
 * Cost: the worker does this bookkeeping on every request, and it must stay
 * a small fraction of a request's CPU time (issue 3: under 1 % of fio 4k
 * random I/O, measured against -o watch=off).  Hence no locked instruction
 * and no full barrier on the request path, no cache line that two threads
 * write, and the coarse clock (ctlmem_now_ns()).  The one exception is
 * diskio[]: a READ or WRITE pays seven relaxed atomic adds on its disk's
 * slot and two reads of the precise clock (fs/iostat.c), which threads
 * serving the same disk share; bench/bench-ab measured it within the noise
 * of 4k random I/O with one fio job (CPU per I/O: randread x1.004, randwrite
 * x0.994 and x1.052 in two runs).  The precise clock is most of it (2 x 22
 * to 180 ns, by the host's load, against ~75 ns for the adds).  If many
 * threads hammering one disk show it, make the counters per slot.
 */
#ifndef HCOWFS_CTLMEM_H
#define HCOWFS_CTLMEM_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <linux/fuse.h>

#define CTLMEM_MAGIC	UINT64_C(0x34766d656d776f68)	/* "howmemv4" */
#define CTLMEM_VERSION	5	/* 4: diskio[]; 5: cluster_wait */
#define CTLMEM_INIT_MAX	1024
#define CTLMEM_SLOTS	64	/* >= the worker's thread limit */
#define CTLMEM_POISON	16
#define POISON_ATTEMPTS	3
/* Replay mode keeps each request's bytes; the largest FUSE request. */
#define CTLMEM_REQ_MAX	((256u << 12) + 4096)

#define UNIQUE_RESENT	(UINT64_C(1) << 63)	/* set by the kernel on resent requests */

enum ctl_reissue {
	REISSUE_RESEND = 1,	/* FUSE_NOTIFY_RESEND: the kernel requeues them */
	REISSUE_REPLAY = 2,	/* the replacement re-runs the bytes in the slots */
};

enum ctl_fault_kind {
	FAULT_NONE = 0,
	FAULT_CRASH = 1,	/* SIGSEGV in the worker */
	FAULT_HANG = 2,		/* the serving thread stops forever */
	FAULT_SLOW = 3,		/* the serving thread sleeps fault_ms */
};

#define FAULT_OP_ANY	0		/* any request */
#define FAULT_OP_APPEND	10000		/* between a log record's header and data */
#define FAULT_OP_CONTROL	10001		/* a control request (create, list...); never "any" */
/* the steps of a snapshot, clone or rollback (lifecycle.c's order of a copy); never "any" */
#define FAULT_OP_COPY_LOGGED	10002		/* REC_CLONE appended, the log not synced */
#define FAULT_OP_COPY_SYNCED	10003		/* the log synced, no catalog row yet */
#define FAULT_OP_COPY_ROW	10004		/* the row added, the checkpoint not taken */

/* One cache line each: two threads' slots must not share one (false sharing). */
struct ctl_slot {
	_Atomic uint64_t unique;	/* 0 = idle */
	_Atomic int64_t	 start_ns;	/* ctlmem_now_ns() when read */
	uint32_t	 opcode;
	uint32_t	 size;		/* READ/WRITE: bytes */
	uint64_t	 nodeid;
	uint64_t	 offset;	/* READ/WRITE: offset */
	uint32_t	 pid;		/* worker whose thread holds the slot */
	uint32_t	 pad;
	_Atomic uint64_t taken;		/* requests read by the slot's threads, all workers */
	_Atomic uint64_t done;		/* replies they wrote */
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct ctl_slot) == 64, "a request slot is one cache line");

/*
 * Per-disk I/O counters.  Disk d counts in diskio[d % CTLMEM_DISKS], which
 * names the disk it counts for (id + 1; 0 = never used).  Disk ids are never
 * reused and grow, so a slot whose id is older than the disk doing I/O is a
 * stale one (a deleted disk, or a live disk CTLMEM_DISKS ids older): the newer
 * disk claims it, zeroing the counters, and from then on the older one's I/O
 * is not counted (status shows no counters for it).  So with ids spanning at
 * most CTLMEM_DISKS every live disk is counted.
 *
 * Claim: id -> CTL_DISKIO_CLAIMING (CAS), zero, id + 1 (release).  A request
 * that finds the slot being claimed is not counted.  Counting: relaxed atomic
 * adds (no barrier; the counters of one disk may be a request apart from one
 * another when read).  Counters of different slots are on different lines.
 */
#define CTLMEM_DISKS		256
#define CTL_DISKIO_CLAIMING	UINT64_MAX
#define CTL_LAT_BUCKETS		6	/* <= 100us, 1ms, 10ms, 100ms, 1s, more */

enum ctl_io_dir { CTL_IO_READ = 0, CTL_IO_WRITE = 1 };

struct ctl_diskio {
	_Atomic uint64_t id;			/* disk id + 1; 0 unused */
	_Atomic uint64_t ops[2];		/* reads, writes answered (errors included) */
	_Atomic uint64_t bytes[2];		/* bytes read, written */
	_Atomic uint64_t errors[2];		/* reads, writes answered with an error */
	_Atomic uint64_t tmpl_bytes;		/* read bytes served from the template */
	_Atomic uint64_t log_bytes;		/* read bytes served from the log */
	_Atomic uint64_t lat_ns[2];		/* sum of latencies */
	_Atomic uint64_t lat[2][CTL_LAT_BUCKETS];	/* latency histogram, not cumulative */
} __attribute__((aligned(64)));

/* Upper bounds of the latency buckets, ns; the last bucket has none. */
#define CTL_LAT_BOUNDS_NS	{ 100000, 1000000, 10000000, 100000000, 1000000000 }

struct ctlmem {
	uint64_t		magic;
	uint32_t		version;
	uint32_t		size;		/* bytes mapped, request buffers included */
	_Atomic uint32_t	init_len;	/* 0 until INIT was seen */
	uint32_t		reissue;	/* enum ctl_reissue, set before any worker */
	uint32_t		watch;		/* 0: -o watch=off, no slots, no counters */
	_Atomic uint32_t	init_answered;	/* 1 once the kernel has INIT's reply */
	uint8_t			init_req[CTLMEM_INIT_MAX];
	_Atomic uint64_t	requests_taken;	/* read by threads without a slot */
	_Atomic uint64_t	requests_done;	/* replies written by them */

	_Atomic uint32_t	poison_count;	/* entries of poison[] in use */
	_Atomic uint32_t	cluster_wait;	/* the worker's requests waiting for a cluster to come
						   back (a store in a cluster): not a hang (watch.c) */
	_Atomic uint64_t	poison[CTLMEM_POISON];
	_Atomic uint64_t	poisoned;	/* requests answered EIO, all time */

	_Atomic uint32_t	fault_kind;	/* enum ctl_fault_kind */
	_Atomic uint32_t	fault_op;	/* FUSE opcode, FAULT_OP_ANY or FAULT_OP_APPEND */
	_Atomic int32_t		fault_count;	/* faults left to fire */
	_Atomic uint32_t	fault_ms;	/* FAULT_SLOW */
	_Atomic uint64_t	faults_fired;

	_Atomic uint64_t	slots_used;	/* bit i: slot i has a thread */
	struct ctl_slot		slot[CTLMEM_SLOTS];
	struct ctl_diskio	diskio[CTLMEM_DISKS];
	/* replay mode only: CTLMEM_SLOTS buffers of CTLMEM_REQ_MAX bytes follow */
};

/* Requests read from /dev/fuse and replies written so far, all workers. */
static inline void
ctlmem_requests(struct ctlmem *c, uint64_t *taken, uint64_t *done)
{
	uint64_t t = atomic_load_explicit(&c->requests_taken, memory_order_relaxed);
	uint64_t d = atomic_load_explicit(&c->requests_done, memory_order_relaxed);

	for (int i = 0; i < CTLMEM_SLOTS; i++) {
		t += atomic_load_explicit(&c->slot[i].taken, memory_order_relaxed);
		d += atomic_load_explicit(&c->slot[i].done, memory_order_relaxed);
	}
	*taken = t;
	*done = d;
}

/*
 * The clock of ctl_slot.start_ns, read by workers and supervisor alike.  The
 * coarse clock (the time of the last timer tick: 1 to 10 ms old by the
 * kernel's HZ, 4 ms here) costs a fifth of the precise one (5 ns against
 * 22 ns here, paid on every request), and a hang timeout is at least 50 ms,
 * looked at every 10 ms at most: a tick of error changes nothing.  Both
 * sides must read the same clock.
 */
static inline int64_t
ctlmem_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * After the request buffers: the map snapshot, bytes the worker owns (see
 * fs/store/handoff.c) so a replacement need not rebuild its extent maps from
 * SQLite.  The supervisor never reads it.  The memfd is sparse: pages cost
 * memory only once written.
 */
#define CTLMEM_SNAP_MAX	(UINT64_C(512) << 20)

/* Bytes to map: the struct, the request buffers, the snapshot area. */
static inline uint64_t
ctlmem_size(void)
{
	return sizeof(struct ctlmem) + (uint64_t)CTLMEM_SLOTS * CTLMEM_REQ_MAX + CTLMEM_SNAP_MAX;
}

static inline void *
ctlmem_snap(struct ctlmem *c)
{
	return (uint8_t *)(c + 1) + (uint64_t)CTLMEM_SLOTS * CTLMEM_REQ_MAX;
}

static inline uint8_t *
ctlmem_req_buf(struct ctlmem *c, unsigned slot)
{
	return (uint8_t *)(c + 1) + (uint64_t)slot * CTLMEM_REQ_MAX;
}

/*
 * Requests that get no reply (or, INIT, only the first worker's) are not
 * tracked: a slot would hold them forever, and none is ever re-run.  In
 * replay mode a slot's buffer can still show one (its unique is cleared only
 * once libfuse has parsed it): never held, whatever its unique.
 */
static inline int
ctlmem_opcode_tracked(uint32_t op)
{
	return op != FUSE_FORGET && op != FUSE_BATCH_FORGET && op != FUSE_INTERRUPT &&
	    op != FUSE_INIT && op != FUSE_NOTIFY_REPLY;
}

#endif
