/*
 * iostat: the worker's per-disk I/O counters, in the control memory
 * (ctlmem.h, struct ctl_diskio) so they outlive the worker that counted
 * them, and their part of `hcowctl status`.
 *
 * fsops.c counts each READ and WRITE once it is answered (iostat_count):
 * a few relaxed atomic adds on the disk's slot, no lock, and the precise
 * clock twice for the latency (the slot's coarse clock ticks every 4 ms, more
 * than a 4k request takes).  The control thread reads the slots for status
 * (iostat_describe), naming each disk from the store.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "worker.h"

static const uint64_t lat_bounds_ns[CTL_LAT_BUCKETS - 1] = CTL_LAT_BOUNDS_NS;

/*
 * The slot that counts disk `id`, claiming it if it counts an older disk;
 * NULL if it counts a newer one, or is being claimed.
 */
static struct ctl_diskio *
iostat_slot(struct ctlmem *c, uint64_t id)
{
	struct ctl_diskio *s = &c->diskio[id % CTLMEM_DISKS];
	uint64_t cur = atomic_load_explicit(&s->id, memory_order_acquire);

	if (cur == id + 1)
		return s;
	if (cur == CTL_DISKIO_CLAIMING || cur > id + 1)
		return NULL;
	if (!atomic_compare_exchange_strong(&s->id, &cur, CTL_DISKIO_CLAIMING))
		return NULL;
	memset((char *)s + sizeof(s->id), 0, sizeof(*s) - sizeof(s->id));
	atomic_store_explicit(&s->id, id + 1, memory_order_release);
	return s;
}

void
iostat_count(struct ctlmem *c, uint64_t id, enum ctl_io_dir dir, ssize_t res,
    const struct store_read_src *src, uint64_t start_ns)
{
	uint64_t lat = (uint64_t)clock_mono_ns() - start_ns;
	struct ctl_diskio *s;
	int b = 0;

	if (!c || !(s = iostat_slot(c, id)))
		return;
	while (b < CTL_LAT_BUCKETS - 1 && lat > lat_bounds_ns[b])
		b++;
	atomic_fetch_add_explicit(&s->ops[dir], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->lat_ns[dir], lat, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->lat[dir][b], 1, memory_order_relaxed);
	if (res < 0) {
		atomic_fetch_add_explicit(&s->errors[dir], 1, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&s->bytes[dir], (uint64_t)res, memory_order_relaxed);
	if (src && src->tmpl_bytes)
		atomic_fetch_add_explicit(&s->tmpl_bytes, src->tmpl_bytes, memory_order_relaxed);
	if (src && src->log_bytes)
		atomic_fetch_add_explicit(&s->log_bytes, src->log_bytes, memory_order_relaxed);
}

/* A relaxed load, for reading the counters. */
static unsigned long long
ld(_Atomic uint64_t *v)
{
	return (unsigned long long)atomic_load_explicit(v, memory_order_relaxed);
}

/* One direction's latency histogram as JSON: the buckets' bounds are the docs'. */
static void
latency_json(struct sbuf *out, struct ctl_diskio *s, int dir)
{
	sbuf_printf(out, "{\"sum_ns\":%llu,\"buckets\":[", ld(&s->lat_ns[dir]));
	for (int b = 0; b < CTL_LAT_BUCKETS; b++)
		sbuf_printf(out, "%s%llu", b ? "," : "", ld(&s->lat[dir][b]));
	sbuf_addstr(out, "]}");
}

void
iostat_describe(struct ctlmem *c, struct store *st, struct sbuf *out, int json)
{
	struct disk_attr a;
	uint64_t id = 0;
	int first = 1;

	if (json) {
		sbuf_addstr(out, ",\"io_latency_bounds_ns\":[");
		for (int b = 0; b < CTL_LAT_BUCKETS - 1; b++)
			sbuf_printf(out, "%s%llu", b ? "," : "", (unsigned long long)lat_bounds_ns[b]);
		sbuf_addstr(out, "],\"io\":[");
	} else {
		sbuf_printf(out, "\n%-24s %12s %12s %14s %14s %14s %14s\n", "I/O SINCE MOUNT", "READS",
		    "WRITES", "READ BYTES", "WRITTEN", "FROM TEMPLATE", "FROM LOG");
	}
	while (store_next(st, id, &a) == 0) {
		struct ctl_diskio *s = &c->diskio[a.id % CTLMEM_DISKS];

		id = a.id;
		if (ld(&s->id) != a.id + 1) {
			if (!json)
				sbuf_printf(out, "%-24s not counted (no I/O yet, or its counter slot "
				    "went to a newer disk)\n", a.name);
			continue;
		}
		if (!json) {
			sbuf_printf(out, "%-24s %12llu %12llu %14llu %14llu %14llu %14llu\n", a.name,
			    ld(&s->ops[0]), ld(&s->ops[1]), ld(&s->bytes[0]), ld(&s->bytes[1]),
			    ld(&s->tmpl_bytes), ld(&s->log_bytes));
			continue;
		}
		sbuf_addstr(out, first ? "{\"disk\":" : ",{\"disk\":");
		sbuf_json_str(out, a.name);
		sbuf_printf(out, ",\"reads\":%llu,\"writes\":%llu,\"read_bytes\":%llu,"
		    "\"written_bytes\":%llu,\"read_errors\":%llu,\"write_errors\":%llu,"
		    "\"template_read_bytes\":%llu,\"log_read_bytes\":%llu,\"read_latency\":",
		    ld(&s->ops[0]), ld(&s->ops[1]), ld(&s->bytes[0]), ld(&s->bytes[1]),
		    ld(&s->errors[0]), ld(&s->errors[1]), ld(&s->tmpl_bytes), ld(&s->log_bytes));
		latency_json(out, s, 0);
		sbuf_addstr(out, ",\"write_latency\":");
		latency_json(out, s, 1);
		sbuf_addstr(out, "}");
		first = 0;
	}
	if (json)
		sbuf_addstr(out, "]");
}
