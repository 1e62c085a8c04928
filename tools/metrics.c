/*
 * metrics: see metrics.h.  Everything comes from the status JSON the
 * supervisor and the worker write (docs/operations.md names the fields); a
 * field an older mount does not give is left out, never shown as 0.
 *
 * Names follow the Prometheus conventions: prefix hcowfs_, base units
 * (bytes, seconds), _total on counters; per-disk series carry disk="NAME".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* The HELP and TYPE lines of a metric family. */
static void
family(struct sbuf *out, const char *name, const char *type, const char *help)
{
	sbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the text format wants: \\, \", \n. */
static void
label_value(struct sbuf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sbuf_printf(out, "\\%c", *v);
		else if (*v == '\n')
			sbuf_addstr(out, "\\n");
		else
			sbuf_add(out, v, 1);
	}
}

/* One sample: name{disk="D"[,extra]} value (disk NULL: no labels). */
static void
sample(struct sbuf *out, const char *name, const char *disk, const char *extra, double v)
{
	sbuf_addstr(out, name);
	if (disk || extra) {
		sbuf_addstr(out, "{");
		if (disk) {
			sbuf_addstr(out, "disk=\"");
			label_value(out, disk);
			sbuf_addstr(out, "\"");
		}
		if (extra)
			sbuf_printf(out, "%s%s", disk ? "," : "", extra);
		sbuf_addstr(out, "}");
	}
	sbuf_printf(out, " %.17g\n", v);
}

/* A family with one unlabelled sample taken from obj[key] times scale, if there. */
static void
scalar(struct sbuf *out, const struct json *obj, const char *key, double scale,
    const char *name, const char *type, const char *help)
{
	const struct json *v = json_get(obj, key);

	if (!v || v->type != JSON_NUM)
		return;
	family(out, name, type, help);
	sample(out, name, NULL, NULL, v->num * scale);
}

/* A family with one sample per element of arr: elem[key] * scale, labelled by elem[label]. */
static void
per_disk(struct sbuf *out, const struct json *arr, const char *label, const char *key,
    double scale, const char *name, const char *type, const char *help)
{
	int head = 0;

	if (!arr || arr->type != JSON_ARR)
		return;
	for (size_t i = 0; i < arr->n; i++) {
		const struct json *e = &arr->kid[i];
		const char *disk = json_str(e, label);
		const struct json *v = json_get(e, key);
		if (!disk || !v || (v->type != JSON_NUM && v->type != JSON_BOOL && v->type != JSON_STR))
			continue;
		if (!head++)
			family(out, name, type, help);
		if (v->type == JSON_STR)	/* a state: 1 if "ok" */
			sample(out, name, disk, NULL, strcmp(v->str, "ok") == 0);
		else
			sample(out, name, disk, NULL, v->num * scale);
	}
}

/* The latency histograms of the io array, one series per disk and direction. */
static void
latency_histograms(struct sbuf *out, const struct json *io, const struct json *bounds)
{
	static const char *const dirs[] = { "read", "write" };
	const char *name = "hcowfs_disk_request_duration_seconds";
	int head = 0;

	if (!io || io->type != JSON_ARR || !bounds || bounds->type != JSON_ARR)
		return;
	for (size_t i = 0; i < io->n; i++) {
		const char *disk = json_str(&io->kid[i], "disk");
		for (int d = 0; d < 2 && disk; d++) {
			char key[32], lbl[64];
			const struct json *h, *b;
			double cum = 0;

			snprintf(key, sizeof(key), "%s_latency", dirs[d]);
			h = json_get(&io->kid[i], key);
			b = json_get(h, "buckets");
			if (!b || b->type != JSON_ARR || b->n != bounds->n + 1)
				continue;
			if (!head++)
				family(out, name, "histogram", "time from a read or write request's "
				    "arrival to its answer, by disk and direction");
			for (size_t k = 0; k < b->n; k++) {
				char le[32];
				cum += b->kid[k].num;
				if (k < bounds->n)
					snprintf(le, sizeof(le), "%.17g", bounds->kid[k].num / 1e9);
				else
					snprintf(le, sizeof(le), "+Inf");
				snprintf(lbl, sizeof(lbl), "op=\"%s\",le=\"%s\"", dirs[d], le);
				sample(out, "hcowfs_disk_request_duration_seconds_bucket", disk, lbl, cum);
			}
			snprintf(lbl, sizeof(lbl), "op=\"%s\"", dirs[d]);
			sample(out, "hcowfs_disk_request_duration_seconds_sum", disk, lbl,
			    json_num(h, "sum_ns", 0) / 1e9);
			sample(out, "hcowfs_disk_request_duration_seconds_count", disk, lbl, cum);
		}
	}
}

/* The supervisor's part: restarts, faults, requests. */
static void
supervisor_metrics(const struct json *s, struct sbuf *out)
{
	const struct json *w = json_get(s, "workers"), *by = json_get(s, "restarts_by_cause");
	const struct json *faults = json_get(s, "faults");

	scalar(out, json_get(s, "supervisor"), "uptime_s", 1, "hcowfs_supervisor_uptime_seconds",
	    "gauge", "seconds since the mount's supervisor started");
	if (w && w->type == JSON_ARR && w->n > 0) {
		scalar(out, &w->kid[0], "uptime_s", 1, "hcowfs_worker_uptime_seconds", "gauge",
		    "seconds since the serving worker started");
		scalar(out, &w->kid[0], "outstanding", 1, "hcowfs_requests_outstanding", "gauge",
		    "requests the serving worker holds unanswered now");
	}
	if (by && by->type == JSON_OBJ) {
		family(out, "hcowfs_restarts_total", "counter",
		    "worker replacements by cause (crash, hang, exit, restart: hcowctl restart)");
		for (size_t i = 0; i < by->n; i++) {
			char lbl[64];
			snprintf(lbl, sizeof(lbl), "cause=\"%s\"", by->key[i]);
			sample(out, "hcowfs_restarts_total", NULL, lbl, by->kid[i].num);
		}
	}
	if (faults && faults->type == JSON_ARR && faults->n > 0) {
		const struct json *last = &faults->kid[faults->n - 1];
		scalar(out, last, "detect_ms", 1e-3, "hcowfs_last_fault_detection_seconds", "gauge",
		    "how long the last worker fault took to be noticed");
		scalar(out, last, "recover_ms", 1e-3, "hcowfs_last_fault_recovery_seconds", "gauge",
		    "how long the last worker fault took to be repaired (a new worker serving)");
	}
	scalar(out, s, "faults_total", 1, "hcowfs_faults_total", "counter", "worker faults seen");
	scalar(out, json_get(s, "poisoned"), "answered_eio", 1, "hcowfs_poisoned_requests_total",
	    "counter", "requests answered EIO unrun because they killed workers");
	scalar(out, s, "slow_waits", 1, "hcowfs_slow_requests_forgiven_total", "counter",
	    "requests over the hang timeout forgiven because the worker waited on a disk");
	scalar(out, json_get(s, "requests"), "taken", 1, "hcowfs_requests_taken_total", "counter",
	    "FUSE requests read from the kernel, all workers");
	scalar(out, json_get(s, "requests"), "done", 1, "hcowfs_requests_answered_total", "counter",
	    "FUSE requests answered, all workers");
}

/* A metric family taken from one key of a status object. */
struct family_def {
	const char *key;	/* in the object (or in each element of an array) */
	double scale;		/* to base units */
	const char *name, *type, *help;
};

/* Per disk: from "disks" (labelled by "name") and "io" (by "disk"). */
static const struct family_def disk_families[] = {
	{ "size", 1, "hcowfs_disk_size_bytes", "gauge", "disk size" },
	{ "log_bytes", 1, "hcowfs_disk_log_bytes", "gauge",
	  "bytes of the disk held in the log (the rest is the template's or zeros)" },
	{ "extents", 1, "hcowfs_disk_extents", "gauge", "extents in the disk's map" },
	{ "opens", 1, "hcowfs_disk_open_files", "gauge", "open files of the disk" },
	{ "state", 1, "hcowfs_disk_ok", "gauge",
	  "1 if the disk serves I/O, 0 if it refuses it (its template changed)" },
	{ NULL, 0, NULL, NULL, NULL }
}, io_families[] = {
	{ "reads", 1, "hcowfs_disk_reads_total", "counter", "read requests answered" },
	{ "writes", 1, "hcowfs_disk_writes_total", "counter", "write requests answered" },
	{ "read_errors", 1, "hcowfs_disk_read_errors_total", "counter",
	  "read requests answered with an error" },
	{ "write_errors", 1, "hcowfs_disk_write_errors_total", "counter",
	  "write requests answered with an error" },
	{ "read_bytes", 1, "hcowfs_disk_read_bytes_total", "counter", "bytes read" },
	{ "written_bytes", 1, "hcowfs_disk_written_bytes_total", "counter", "bytes written" },
	{ "template_read_bytes", 1, "hcowfs_disk_template_read_bytes_total", "counter",
	  "bytes read that came from the template" },
	{ "log_read_bytes", 1, "hcowfs_disk_log_read_bytes_total", "counter",
	  "bytes read that came from the log" },
	{ NULL, 0, NULL, NULL, NULL }
};

/* The store's: from "log", "space" and "checkpoint". */
static const struct family_def log_families[] = {
	{ "disk_bytes", 1, "hcowfs_log_size_bytes", "gauge",
	  "bytes the log's segments take in the data dir" },
	{ "live_bytes", 1, "hcowfs_log_live_bytes", "gauge", "bytes of the log the disks still use" },
	{ "spare_bytes", 1, "hcowfs_log_spare_bytes", "gauge",
	  "bytes of released segments kept for reuse" },
	{ "released_bytes", 1, "hcowfs_cleaner_released_bytes_total", "counter",
	  "log bytes the cleaner ever gave back" },
	{ NULL, 0, NULL, NULL, NULL }
}, space_families[] = {
	{ "free_bytes", 1, "hcowfs_space_free_bytes", "gauge",
	  "free bytes on the data dir's file system" },
	{ "reserve_bytes", 1, "hcowfs_space_reserve_bytes", "gauge",
	  "free bytes kept for the cleaner and checkpoints" },
	{ "extents", 1, "hcowfs_extents", "gauge", "extents in the maps of all disks (an upper bound)" },
	{ "extents_max", 1, "hcowfs_extents_max", "gauge",
	  "extents allowed in the maps (-o max_extents)" },
	{ NULL, 0, NULL, NULL, NULL }
}, checkpoint_families[] = {
	{ "age_s", 1, "hcowfs_checkpoint_age_seconds", "gauge",
	  "seconds since the last checkpoint this worker wrote" },
	{ "took_ms", 1e-3, "hcowfs_checkpoint_duration_seconds", "gauge",
	  "how long the last checkpoint took" },
	{ "log_bytes_since", 1, "hcowfs_checkpoint_pending_log_bytes", "gauge",
	  "log bytes written since the last checkpoint" },
	{ "failures", 1, "hcowfs_checkpoint_failures", "gauge",
	  "checkpoints failed in a row (0: the last one worked)" },
	{ "index_bytes", 1, "hcowfs_index_size_bytes", "gauge",
	  "bytes the index file (the disks' committed maps) takes in the data dir" },
	{ NULL, 0, NULL, NULL, NULL }
};

/* Each family of defs from obj: one sample, or (label set) one per element of the array obj. */
static void
families(struct sbuf *out, const struct json *obj, const char *label, const struct family_def *defs)
{
	for (const struct family_def *f = defs; f->key; f++) {
		if (label)
			per_disk(out, obj, label, f->key, f->scale, f->name, f->type, f->help);
		else
			scalar(out, obj, f->key, f->scale, f->name, f->type, f->help);
	}
}

/* The worker's part: the disks, their I/O, the log, space, checkpoints. */
static void
worker_metrics(const struct json *s, struct sbuf *out)
{
	families(out, json_get(s, "disks"), "name", disk_families);
	families(out, json_get(s, "io"), "disk", io_families);
	latency_histograms(out, json_get(s, "io"), json_get(s, "io_latency_bounds_ns"));
	families(out, json_get(s, "log"), NULL, log_families);
	families(out, json_get(s, "space"), NULL, space_families);
	families(out, json_get(s, "checkpoint"), NULL, checkpoint_families);
}

void
metrics_render(const struct json *s, struct sbuf *out)
{
	const struct json *disks = json_get(s, "disks");

	family(out, "hcowfs_worker_up", "gauge",
	    "1 if the worker answered for this status (the disk metrics are then present)");
	sample(out, "hcowfs_worker_up", NULL, NULL, disks && disks->type == JSON_ARR);
	supervisor_metrics(s, out);
	worker_metrics(s, out);
}

/* One disk's row of top. */
struct top_row {
	const char *disk;
	double reads, writes, rbytes, wbytes, lat_ns;
};

/* Busiest first: most requests, then name. */
static int
top_row_cmp(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;
	double dx = x->reads + x->writes, dy = y->reads + y->writes;

	if (dx != dy)
		return dx < dy ? 1 : -1;
	return strcmp(x->disk, y->disk);
}

/* The element of io (an array) for disk, or NULL. */
static const struct json *
io_of(const struct json *io, const char *disk)
{
	for (size_t i = 0; io && io->type == JSON_ARR && i < io->n; i++) {
		const char *d = json_str(&io->kid[i], "disk");
		if (d && strcmp(d, disk) == 0)
			return &io->kid[i];
	}
	return NULL;
}

/* Total latency of both directions, ns. */
static double
lat_sum(const struct json *e)
{
	return json_num(json_get(e, "read_latency"), "sum_ns", 0) +
	    json_num(json_get(e, "write_latency"), "sum_ns", 0);
}

void
metrics_top(const struct json *prev, const struct json *cur, double secs, struct sbuf *out)
{
	const struct json *io = json_get(cur, "io"), *pio = json_get(prev, "io");
	struct top_row *rows;
	size_t n = 0;

	if (!io || io->type != JSON_ARR) {
		sbuf_addstr(out, "no per-disk I/O counters (the worker did not answer, or is older)\n");
		return;
	}
	if (!(rows = calloc(io->n ? io->n : 1, sizeof(*rows))))
		return;
	for (size_t i = 0; i < io->n; i++) {
		const struct json *e = &io->kid[i], *p;
		struct top_row *r = &rows[n];
		if (!(r->disk = json_str(e, "disk")))
			continue;
		p = prev ? io_of(pio, r->disk) : NULL;
		r->reads = json_num(e, "reads", 0) - json_num(p, "reads", 0);
		r->writes = json_num(e, "writes", 0) - json_num(p, "writes", 0);
		r->rbytes = json_num(e, "read_bytes", 0) - json_num(p, "read_bytes", 0);
		r->wbytes = json_num(e, "written_bytes", 0) - json_num(p, "written_bytes", 0);
		r->lat_ns = lat_sum(e) - (p ? lat_sum(p) : 0);
		n++;
	}
	qsort(rows, n, sizeof(*rows), top_row_cmp);
	sbuf_printf(out, "%-24s %10s %10s %10s %10s %9s\n", "DISK",
	    prev ? "READS/S" : "READS", prev ? "WRITES/S" : "WRITES", prev ? "READ MB/S" : "READ MB",
	    prev ? "WRITE MB/S" : "WRITE MB", "AVG MS");
	for (size_t i = 0; i < n; i++) {
		const struct top_row *r = &rows[i];
		double div = prev && secs > 0 ? secs : 1, ops = r->reads + r->writes;
		sbuf_printf(out, "%-24s %10.0f %10.0f %10.2f %10.2f %9.3f\n", r->disk, r->reads / div,
		    r->writes / div, r->rbytes / div / 1e6, r->wbytes / div / 1e6,
		    ops > 0 ? r->lat_ns / ops / 1e6 : 0.0);
	}
	free(rows);
}
