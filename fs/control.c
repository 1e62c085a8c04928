/*
 * control: the verbs the worker answers on its control channel, relayed by
 * the supervisor from hcowctl (proto.h has the framing).
 *
 *   create name=N [template=T] [size=BYTES] [token=T]   N a path; no template:
 *                                    a disk of zeros, size= needed
 *   delete name=N [retry=1]          N: a disk, or DISK@SNAP (a snapshot)
 *   snapshot name=DISK snap=S [token=T]
 *   snapshots [name=DISK]            the snapshots, text table or JSON array
 *   clone from=DISK[@SNAP] name=N [token=T]
 *   rollback name=DISK snap=S
 *   list | disks          the disks, text table or JSON array
 *   ranges name=N [from=OFF]  the disk's ranges that do not read from its
 *                         template (export); a long answer stops
 *                         at half the reply bound and says where to go on
 *   checkpoint            write a checkpoint now (before a deliberate restart)
 *   ping
 *
 * Every verb may be sent twice (the supervisor resends what a dead worker
 * held, marked retry=1): create is matched by its token, delete of a name
 * already gone succeeds when retried.
 *
 * The channel is a socketpair with the supervisor: requests come as lines
 * "ID VERB ARGS", one at a time, on the control thread (control_start), which
 * answers each with a frame "ID ERR LEN\n" + body (control_reply; frame 0 is
 * the worker's start-up report, sent by worker.c).  When the supervisor goes
 * away the thread ends, and the worker serves on without it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hlog.h"
#include "inode.h"
#include "names.h"
#include "proto.h"
#include "worker.h"

static void
disk_json(struct sbuf *out, const struct disk_attr *a)
{
	sbuf_addstr(out, "{\"name\":");
	sbuf_json_str(out, a->name);
	sbuf_addstr(out, ",\"template\":");
	sbuf_json_str(out, a->template_name);
	sbuf_printf(out, ",\"size\":%llu,\"log_bytes\":%llu}", (unsigned long long)a->size,
	    (unsigned long long)a->log_bytes);
}

static int
control_create(struct worker *w, const struct proto_req *req, struct sbuf *out)
{
	const char *name = proto_arg(req, "name"), *tmpl = proto_arg(req, "template");
	const char *size_s = proto_arg(req, "size"), *token = proto_arg(req, "token");
	struct disk_attr a;
	uint64_t size = 0;
	char err[512] = "";
	int rc;

	if (!name || (!tmpl && !size_s)) {
		sbuf_addstr(out, "create needs name= and template= or size=");
		return EINVAL;
	}
	if (size_s && (size_parse(size_s, &size) < 0 || size == 0)) {
		sbuf_printf(out, "invalid size '%s'", size_s);
		return EINVAL;
	}
	if ((rc = store_create(w->st, name, tmpl, size, token, &a, err, sizeof(err))) < 0) {
		sbuf_addstr(out, err);
		return -rc;
	}
	if (req->json) {
		disk_json(out, &a);
	} else {
		char sz[32];
		size_format(a.size, sz, sizeof(sz));
		if (tmpl)
			sbuf_printf(out, "created disk '%s' from template '%s' (%s)\n", a.name,
			    a.template_name, sz);
		else
			sbuf_printf(out, "created disk '%s' of no template (%s)\n", a.name, sz);
	}
	return 0;
}

/*
 * The kernel's entry for path (a disk's or DISK@SNAP): its parent's inode
 * and its last name, for an invalidation.  -ENOENT if the parent is gone.
 */
static int
path_entry(struct store *st, const char *path, fuse_ino_t *parent, const char **leaf)
{
	const char *slash = strrchr(path, '/');
	char dir[NAME_MAX_LEN + 1];
	struct dir_attr da;
	int snap = strchr(path, '@') != NULL, rc = 0;

	*leaf = slash ? slash + 1 : path;
	da.id = 0;
	if (slash) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		rc = store_dir_lookup(st, dir, &da);
	}
	*parent = snap ? SNAPDIR_INO | da.id : dir_ino(da.id);
	return rc;
}

/*
 * A replacement cannot count its predecessor's opens: it asks the kernel,
 * which also holds closed disks it still caches (disk_maybe_open).  Drop
 * the kernel's name of the disk and give it 10 ms: unless something has
 * the disk open, the kernel forgets its inode (FORGET), and a retry of what
 * was refused as "open" sees that.
 */
static void
kernel_drop_name(struct worker *w, const char *path)
{
	const char *leaf;
	fuse_ino_t parent;

	if (path_entry(w->st, path, &parent, &leaf) == 0)
		fuse_lowlevel_notify_inval_entry(w->se, parent, leaf, strlen(leaf));
	usleep(10000);
}

static int
control_delete(struct worker *w, const struct proto_req *req, struct sbuf *out)
{
	const char *name = proto_arg(req, "name"), *retry = proto_arg(req, "retry");
	const char *why;
	int rc;

	if (!name) {
		sbuf_addstr(out, "delete needs name=");
		return EINVAL;
	}
	if (full_name_check(name, &why) < 0) {
		sbuf_printf(out, "invalid name '%s': %s", name, why);
		return EINVAL;
	}
	rc = store_unlink(w->st, name);
	for (int i = 0; rc == -EBUSY && strchr(name, '@') && w->se && i < 50; i++) {
		kernel_drop_name(w, name);
		rc = store_unlink(w->st, name);
	}
	if (rc == -ENOENT && retry) {
		rc = 0;		/* our first attempt did it before its worker died */
	} else if (rc == -ENOENT) {
		sbuf_printf(out, "no %s named '%s'", strchr(name, '@') ? "snapshot" : "disk", name);
		return ENOENT;
	} else if (rc == -EBUSY && strchr(name, '@')) {
		sbuf_printf(out, "snapshot '%s' is open (a backup may be reading it); close it first",
		    name);
		return EBUSY;
	} else if (rc == -EBUSY) {
		sbuf_printf(out, "disk '%s' has snapshots (hcowctl snapshots %s); delete them first",
		    name, name);
		return EBUSY;
	} else if (rc < 0) {
		sbuf_printf(out, "cannot delete '%s': %s", name, strerror(-rc));
		return -rc;
	}
	/* the kernel may have the name cached: drop it */
	if (w->se) {
		const char *leaf;
		fuse_ino_t parent;
		if (path_entry(w->st, name, &parent, &leaf) == 0)
			fuse_lowlevel_notify_inval_entry(w->se, parent, leaf, strlen(leaf));
	}
	if (req->json)
		sbuf_addstr(out, "{\"deleted\":");
	else
		sbuf_addstr(out, "deleted disk ");
	sbuf_json_str(out, name);
	sbuf_addstr(out, req->json ? "}" : "\n");
	return 0;
}

/* The answer to snapshot and clone: the new disk. */
static void
made_reply(const struct proto_req *req, const struct disk_attr *a, const char *what,
    struct sbuf *out)
{
	char sz[32];

	if (req->json) {
		disk_json(out, a);
		return;
	}
	size_format(a->size, sz, sizeof(sz));
	sbuf_printf(out, "%s '%s' (%s)\n", what, a->name, sz);
}

/*
 * snapshot name=DISK snap=S, clone from=SRC name=NEW: the store's copy of
 * a map (store_snapshot and store_clone take the same arguments), answered
 * with the new disk.
 */
static int
control_copy(struct worker *w, const struct proto_req *req, struct sbuf *out, const char *k1,
    const char *k2, int (*copy)(struct store *, const char *, const char *, const char *,
    struct disk_attr *, char *, size_t), const char *done)
{
	const char *v1 = proto_arg(req, k1), *v2 = proto_arg(req, k2);
	struct disk_attr a;
	char err[512] = "";
	int rc;

	if (!v1 || !v2) {
		sbuf_printf(out, "%s needs %s= and %s=", req->verb, k1, k2);
		return EINVAL;
	}
	if ((rc = copy(w->st, v1, v2, proto_arg(req, "token"), &a, err, sizeof(err))) < 0) {
		sbuf_addstr(out, err);
		return -rc;
	}
	made_reply(req, &a, done, out);
	return 0;
}

static int
control_rollback(struct worker *w, const struct proto_req *req, struct sbuf *out)
{
	const char *name = proto_arg(req, "name"), *snap = proto_arg(req, "snap");
	struct disk_attr a;
	char err[512] = "";
	int rc;

	if (!name || !snap) {
		sbuf_addstr(out, "rollback needs name= and snap=");
		return EINVAL;
	}
	rc = store_rollback(w->st, name, snap, err, sizeof(err));
	for (int i = 0; rc == -EBUSY && w->se && i < 50; i++) {
		kernel_drop_name(w, name);
		err[0] = '\0';
		rc = store_rollback(w->st, name, snap, err, sizeof(err));
	}
	if (rc < 0) {
		sbuf_addstr(out, err);
		return -rc;
	}
	/* pages the kernel kept of the disk are of its state before */
	if (w->se && store_lookup(w->st, name, &a) == 0)
		fuse_lowlevel_notify_inval_inode(w->se, (fuse_ino_t)(a.id + 1), 0, 0);
	if (req->json) {
		sbuf_addstr(out, "{\"rolled_back\":");
		sbuf_json_str(out, name);
		sbuf_addstr(out, ",\"snapshot\":");
		sbuf_json_str(out, snap);
		sbuf_addstr(out, "}");
	} else {
		sbuf_printf(out, "disk '%s' is as it was at snapshot '%s'\n", name, snap);
	}
	return 0;
}

/* One answer of the ranges verb, filled as the store walks the disk. */
struct ranges_reply {
	struct sbuf	*out;
	int		 json;
	unsigned long	 n;
	uint64_t	 next;		/* where the next request goes on; UINT64_MAX: done */
};

/* Add range r to the answer, or stop at r when the answer is long enough. */
static int
ranges_emit(const struct store_range *r, void *arg)
{
	struct ranges_reply *rr = arg;

	if (rr->out->len > proto_body_max() / 2) {
		rr->next = r->off;
		return 1;
	}
	if (rr->json)
		sbuf_printf(rr->out, "%s{\"off\":%llu,\"len\":%llu,\"kind\":\"%s\"}",
		    rr->n ? "," : "", (unsigned long long)r->off, (unsigned long long)r->len,
		    r->zero ? "zero" : "log");
	else
		sbuf_printf(rr->out, "%-4s %20llu %20llu\n", r->zero ? "zero" : "log",
		    (unsigned long long)r->off, (unsigned long long)r->len);
	rr->n++;
	return 0;
}

/*
 * ranges name=N [from=OFF]: the ranges not read from the disk's template
 * (store_ranges), written straight into the answer, then the disk's size
 * and its template's: for export.
 */
static int
control_ranges(struct worker *w, const struct proto_req *req, struct sbuf *out)
{
	const char *name = proto_arg(req, "name"), *from_s = proto_arg(req, "from");
	struct ranges_reply rr = { out, req->json, 0, UINT64_MAX };
	struct store_ranges_head head;
	uint64_t from = 0;
	int rc;

	if (!name) {
		sbuf_addstr(out, "ranges needs name=");
		return EINVAL;
	}
	if (from_s && size_parse(from_s, &from) < 0) {
		sbuf_printf(out, "invalid from '%s'", from_s);
		return EINVAL;
	}
	if (req->json) {
		sbuf_addstr(out, "{\"name\":");
		sbuf_json_str(out, name);
		sbuf_addstr(out, ",\"ranges\":[");
	} else {
		sbuf_printf(out, "kind %20s %20s\n", "offset", "length");
	}
	if ((rc = store_ranges(w->st, name, from, &head, ranges_emit, &rr)) < 0) {
		sbuf_reset(out);
		if (rc == -ENOENT)
			sbuf_printf(out, "no disk named '%s'", name);
		else
			sbuf_printf(out, "cannot list the ranges of '%s': %s", name, strerror(-rc));
		return -rc;
	}
	if (req->json) {
		sbuf_addstr(out, "],\"template\":");
		sbuf_json_str(out, head.template_name);
		sbuf_printf(out, ",\"size\":%llu,\"template_size\":%llu,\"log_bytes\":%llu,"
		    "\"next\":", (unsigned long long)head.size,
		    (unsigned long long)head.template_size, (unsigned long long)head.log_bytes);
		if (rr.next == UINT64_MAX)
			sbuf_addstr(out, "null}");
		else
			sbuf_printf(out, "%llu}", (unsigned long long)rr.next);
		return 0;
	}
	if (rr.next != UINT64_MAX)
		sbuf_printf(out, "(more: ask again with from=%llu)\n", (unsigned long long)rr.next);
	sbuf_printf(out, "disk '%s': %llu bytes, template '%s' (%llu bytes); the rest of the disk "
	    "reads from the template, or as zeros past its end\n", name,
	    (unsigned long long)head.size, head.template_name,
	    (unsigned long long)head.template_size);
	return 0;
}

/* For status: the data dir's free space, the reserve, and the maps' extents against their cap. */
static void
space_status(struct store *st, struct sbuf *out, int json)
{
	struct store_space sp;

	store_space(st, &sp);
	if (json)
		sbuf_printf(out, ",\"space\":{\"free_bytes\":%llu,\"reserve_bytes\":%llu,"
		    "\"extents\":%llu,\"extents_max\":%llu,\"map_bytes\":%llu,"
		    "\"disk_size_max\":%llu}",
		    (unsigned long long)sp.free_bytes, (unsigned long long)sp.reserve_bytes,
		    (unsigned long long)sp.extents, (unsigned long long)sp.extents_max,
		    (unsigned long long)sp.map_bytes, (unsigned long long)sp.disk_size_max);
	else
		sbuf_printf(out, "space: %llu MiB free in the data dir, %llu MiB of it kept for the "
		    "cleaner and checkpoints; %llu extents in the maps (%llu MiB of recent changes in "
		    "memory), at most %llu\n",
		    (unsigned long long)(sp.free_bytes >> 20), (unsigned long long)(sp.reserve_bytes >> 20),
		    (unsigned long long)sp.extents, (unsigned long long)(sp.map_bytes >> 20),
		    (unsigned long long)sp.extents_max);
}

/* For status: when the index last caught up with the log, and whether it is failing to. */
static void
checkpoint_health(struct store *st, struct sbuf *out, int json)
{
	struct store_cp_health h;

	store_checkpoint_health(st, &h);
	if (json) {
		sbuf_addstr(out, ",\"checkpoint\":{\"age_s\":");
		if (h.age_s >= 0)
			sbuf_printf(out, "%.1f,\"took_ms\":%.1f", h.age_s, h.last_ms);
		else
			sbuf_addstr(out, "null,\"took_ms\":null");
		sbuf_printf(out, ",\"log_bytes_since\":%llu,\"index_bytes\":%llu,"
		    "\"index_generation\":%llu,\"failures\":%u,\"error\":",
		    (unsigned long long)h.log_bytes_since, (unsigned long long)h.index_bytes,
		    (unsigned long long)h.index_generation, h.failures);
		if (h.failures)
			sbuf_json_str(out, h.error);
		else
			sbuf_addstr(out, "null");
		sbuf_addstr(out, "}");
		return;
	}
	sbuf_addstr(out, "checkpoint: ");
	if (h.failures)
		sbuf_printf(out, "FAILING, %u attempt%s in a row: %s; ", h.failures,
		    h.failures == 1 ? "" : "s", h.error);
	if (h.age_s >= 0)
		sbuf_printf(out, "last written %.1f s ago (took %.1f ms)", h.age_s, h.last_ms);
	else
		sbuf_addstr(out, "none written since this worker started");
	sbuf_printf(out, "; %llu MiB of log not yet in the index; index %llu MiB, generation "
	    "%llu\n", (unsigned long long)(h.log_bytes_since >> 20),
	    (unsigned long long)(h.index_bytes >> 20), (unsigned long long)h.index_generation);
}

/* For status: a store in a cluster, who serves it and whether this host still may. */
static void
cluster_health(struct store *st, struct sbuf *out, int json)
{
	static const char *const said[] = {
		"held", "this host serves it",
		"waiting", "WAITING: the cluster cannot be reached; I/O waits until it can",
		"lost", "LOST: another host took the store over; every request fails",
	};
	struct store_cluster_health h;
	const char *what = "";

	if (store_cluster_health(st, &h) < 0)
		return;
	for (size_t i = 0; i < sizeof(said) / sizeof(said[0]); i += 2)
		if (strcmp(h.lease, said[i]) == 0)
			what = said[i + 1];
	if (json) {
		sbuf_addstr(out, ",\"cluster\":{\"store\":");
		sbuf_json_str(out, h.store);
		sbuf_addstr(out, ",\"holder\":");
		sbuf_json_str(out, h.holder);
		sbuf_printf(out, ",\"lease\":\"%s\"}", h.lease);
		return;
	}
	sbuf_printf(out, "cluster: store %s, held by %s: %s\n", h.store, h.holder, what);
}

/* For status: what the defragmenter did since the worker began, and what it has left. */
static void
defrag_status(struct store *st, struct sbuf *out, int json)
{
	struct defrag_stats t;

	store_defrag_totals(st, &t);
	if (json)
		sbuf_printf(out, ",\"defrag\":{\"rewritten_bytes\":%llu,\"chunks\":%llu,"
		    "\"raced\":%llu,\"swept_bytes\":%llu,\"passes\":%llu,\"pending_disks\":%llu}",
		    (unsigned long long)t.bytes_rewritten, (unsigned long long)t.chunks,
		    (unsigned long long)t.raced, (unsigned long long)t.bytes_read,
		    (unsigned long long)t.passes, (unsigned long long)t.pending);
	else
		sbuf_printf(out, "defrag: rewrote %llu MiB in logical order in %llu passes; %llu "
		    "disks may still be fragmented (busy, or not looked at since they changed)\n",
		    (unsigned long long)(t.bytes_rewritten >> 20), (unsigned long long)t.passes,
		    (unsigned long long)t.pending);
}

int
control_handle(struct worker *w, char *line, struct sbuf *out)
{
	struct proto_req req;
	const char *why;

	if (proto_parse(line, &req, &why) < 0) {
		sbuf_printf(out, "malformed request: %s", why);
		return EINVAL;
	}
	if (strcmp(req.verb, "create") == 0)
		return control_create(w, &req, out);
	if (strcmp(req.verb, "delete") == 0)
		return control_delete(w, &req, out);
	if (strcmp(req.verb, "ranges") == 0)
		return control_ranges(w, &req, out);
	if (strcmp(req.verb, "list") == 0) {
		store_describe(w->st, out, req.json);
		return 0;
	}
	if (strcmp(req.verb, "snapshot") == 0)
		return control_copy(w, &req, out, "name", "snap", store_snapshot, "took snapshot");
	if (strcmp(req.verb, "snapshots") == 0) {
		int rc = store_describe_snapshots(w->st, proto_arg(&req, "name"), out, req.json);
		if (rc == -ENOENT)
			sbuf_printf(out, "no disk named '%s'", proto_arg(&req, "name"));
		else if (rc < 0)
			sbuf_printf(out, "cannot list the snapshots: %s", strerror(-rc));
		return -rc;
	}
	if (strcmp(req.verb, "clone") == 0)
		return control_copy(w, &req, out, "from", "name", store_clone, "made disk");
	if (strcmp(req.verb, "rollback") == 0)
		return control_rollback(w, &req, out);
	if (strcmp(req.verb, "disks") == 0) {
		/* for status: the disks, then the log's space (JSON: a key after the array) */
		uint64_t disk, live, released, spare;
		store_describe(w->st, out, req.json);
		store_log_space(w->st, &disk, &live);
		released = store_log_released(w->st);
		spare = store_log_spare(w->st);
		if (req.json)
			sbuf_printf(out, ",\"log\":{\"disk_bytes\":%llu,\"live_bytes\":%llu,"
			    "\"released_bytes\":%llu,\"spare_bytes\":%llu}", (unsigned long long)disk,
			    (unsigned long long)live, (unsigned long long)released,
			    (unsigned long long)spare);
		else
			sbuf_printf(out, "\nlog: %llu MiB on disk, %llu MiB of it in use by the disks; "
			    "the cleaner has given back %llu MiB; %llu MiB more kept for reuse\n",
			    (unsigned long long)(disk >> 20), (unsigned long long)(live >> 20),
			    (unsigned long long)(released >> 20), (unsigned long long)(spare >> 20));
		defrag_status(w->st, out, req.json);
		space_status(w->st, out, req.json);
		checkpoint_health(w->st, out, req.json);
		cluster_health(w->st, out, req.json);
		iostat_describe(w->ctl, w->st, out, req.json);
		return 0;
	}
	if (strcmp(req.verb, "checkpoint") == 0) {
		int rc = store_checkpoint(w->st);
		if (rc < 0) {
			sbuf_printf(out, "checkpoint failed: %s", strerror(-rc));
			return -rc;
		}
		sbuf_addstr(out, req.json ? "{\"checkpoint\":\"done\"}" : "checkpoint done\n");
		return 0;
	}
	if (strcmp(req.verb, "check") == 0) {
		/* the report is the body; problems found are an answer, not a failure */
		int n = store_check(w->st, out);
		if (n < 0) {
			sbuf_printf(out, "check failed: %s\n", strerror(-n));
			return -n;
		}
		return 0;
	}
	if (strcmp(req.verb, "ping") == 0) {
		sbuf_addstr(out, req.json ? "\"pong\"" : "pong\n");
		return 0;
	}
	sbuf_printf(out, "unknown request '%s'", req.verb);
	return EINVAL;
}

/* Send one framed reply to the supervisor; 0 or -errno. */
int
control_reply(struct worker *w, unsigned long long id, int err, const char *body, size_t len)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "%llu %d %zu\n", id, err, len);
	int rc = proto_write_all(w->ctl_fd, head, (size_t)n);

	return rc < 0 ? rc : proto_write_all(w->ctl_fd, body, len);
}

static void *
control_thread(void *arg)
{
	struct worker *w = arg;
	char line[PROTO_LINE_MAX + 32];
	struct sbuf out = SBUF_INIT;

	for (;;) {
		unsigned long long id;
		char *rest;
		ssize_t n = proto_reader_line(&w->ctl_in, line, sizeof(line));
		int err;

		if (n <= 0) {
			if (n < 0 && n != -E2BIG)
				hlog(HLOG_WARN, "control channel: %s", strerror((int)-n));
			if (n == -E2BIG)
				continue;
			hlog(HLOG_WARN, "supervisor gone; still serving the mount without it");
			break;
		}
		if (!(rest = proto_parse_request_id(line, &id))) {
			hlog(HLOG_WARN, "malformed control request from the supervisor");
			continue;
		}
		sbuf_reset(&out);
		fault_maybe(w->ctl, FAULT_OP_CONTROL);
		err = control_handle(w, rest, &out);
		if (out.oom) {
			sbuf_release(&out);
			err = ENOMEM;
		} else if (out.len > proto_body_max()) {
			/* a frame over the bound would be a broken stream to the supervisor */
			size_t len = out.len;
			sbuf_reset(&out);
			sbuf_printf(&out, "the answer is %zu bytes, over the %zu bytes a control reply "
			    "may hold; not sent\n", len, proto_body_max());
			err = EFBIG;
		}
		if (control_reply(w, id, err, sbuf_str(&out), out.len) < 0)
			break;
	}
	sbuf_release(&out);
	return NULL;
}

void
control_start(struct worker *w)
{
	pthread_t t;

	if (pthread_create(&t, NULL, control_thread, w) == 0) {
		pthread_setname_np(t, "hcowfs-ctl");
		pthread_detach(t);
	} else
		hlog(HLOG_WARN, "cannot start the control thread; hcowctl will time out");
}
