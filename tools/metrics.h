/*
 * metrics: what hcowctl makes of `status --json` (json.h): the Prometheus
 * text format (`hcowctl metrics`) and the per-disk rates of `hcowctl top`.
 */
#ifndef HCOWFS_METRICS_H
#define HCOWFS_METRICS_H

#include "json.h"
#include "sbuf.h"

/* The status as Prometheus text exposition format 0.0.4. */
void metrics_render(const struct json *status, struct sbuf *out);
/*
 * top's table: per-disk rates between two statuses `secs` apart (prev NULL:
 * totals since the counters began), busiest disk first.
 */
void metrics_top(const struct json *prev, const struct json *cur, double secs, struct sbuf *out);

#endif
