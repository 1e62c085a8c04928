/*
 * clock: the precise monotonic clock in nanoseconds, for durations (request
 * latency, a checkpoint's age, rate limits): never the wall clock, which can
 * jump.  The request slots read the coarse one instead (ctlmem_now_ns in
 * ctlmem.h, where the reason is).
 */
#ifndef HCOWFS_CLOCK_H
#define HCOWFS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
