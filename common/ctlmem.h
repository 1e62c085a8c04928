/*
 * ctlmem: the control memory the supervisor shares with its workers.
 *
 * The supervisor creates it (a memfd) before the first worker and keeps it
 * for the life of the mount; every worker maps it.  It holds what a
 * replacement worker needs from its predecessor and cannot get from the store
 * or the kernel, and the progress counters the supervisor watches:
 *
 *   init_req   the raw FUSE_INIT request the kernel sent the first worker.
 *              The kernel sends INIT once per connection; a replacement
 *              feeds this copy to its own libfuse session (and drops the
 *              reply) so the session is ready without a remount.
 *   counters   requests read from /dev/fuse and replies written, summed over
 *              all workers of the mount.
 *
 * Writers: init_req/init_len by the first worker only (init_len is stored
 * last, with release order, so a reader that sees it non-zero sees the bytes).
 */
#ifndef HCOWFS_CTLMEM_H
#define HCOWFS_CTLMEM_H

#include <stdatomic.h>
#include <stdint.h>

#define CTLMEM_MAGIC	UINT64_C(0x31766d656d776f68)	/* "howmemv1" */
#define CTLMEM_VERSION	1
#define CTLMEM_INIT_MAX	1024

struct ctlmem {
	uint64_t		magic;
	uint32_t		version;
	uint32_t		size;			/* sizeof(struct ctlmem) */
	_Atomic uint32_t	init_len;		/* 0 until INIT was seen */
	uint32_t		pad;
	uint8_t			init_req[CTLMEM_INIT_MAX];
	_Atomic uint64_t	requests_taken;
	_Atomic uint64_t	requests_done;
};

#endif
