/*
 * move: `hcowctl [-m FROM] move DISK --to MOUNTPOINT`, a disk moved to the
 * store another mount serves (on this host, or a store in a cluster that
 * another mount of it serves), carrying only the disk's own data.
 *
 * Design notes
 *
 * Both stores are reached through their mounts: the source's `ranges` verb
 * names what the disk does not read from its template (store_ranges), the
 * disk's file in the source mount gives those bytes, and the destination
 * gets a disk cloned from the same template into which the log ranges are
 * written and the zero ranges punched (zero records, not zero bytes).  Its
 * cost grows with the disk's own data, not with its size, and the log of
 * the destination grows by that much only.  Nothing here knows whether a
 * store is a local data dir or a pool: the mounts do.
 *
 * The template must be the same on both sides, or the moved disk would read
 * differently: the same file (two mounts of one template dir), the same
 * name in the same pool (a pool's templates are immutable: the name fixes
 * the content hash), or else files of one size equal on sampled ranges
 * (same_file_sampled, as import does).  A template missing at the
 * destination is refused before anything is made.
 *
 * Steps, and what an interruption at each leaves (the source is never
 * touched before the last step):
 *
 *   1. checks: the disk exists and is not open (a disk in use moves
 *      nothing: stop its VM first) and has no snapshots (they would not
 *      move); the destination is another hcowfs mount with the template,
 *      room for the disk's own data, and no disk of that name;
 *   2. DISK.move-in is created at the destination (a leftover of an
 *      earlier move, not open, is deleted first: the retry);
 *   3. the ranges are copied, the disk fsynced;
 *   4. checked: the destination's ranges are the source's, and the crc32c of
 *      every log range reads the same on both sides; the source is unwritten
 *      (its log bytes and mtime unchanged) and open by no one else;
 *   5. DISK.move-in is renamed to DISK (durable when it returns);
 *   6. the source disk is deleted.
 *
 * Killed in 2-4: the source is intact and DISK.move-in is left at the
 * destination, which the next move removes (SIGINT or SIGTERM remove it at
 * once: job_abort).  Killed in 5-6: both disks exist and are equal; the
 * next move of DISK sees the destination's DISK equal to the source
 * (check 4 again) and goes on with step 6.  A disk whose name is taken by
 * anything else is refused.
 *
 * For tests, HCOWCTL_TEST_KILL_AT=created|copied|renamed makes hcowctl
 * SIGKILL itself after that step (no clean-up: what a power cut leaves),
 * and HCOWCTL_TEST_STOP_AT=STEP SIGSTOP itself there (to write the source
 * in the middle of a move).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "ctlclient.h"
#include "lifecycle.h"
#include "names.h"
#include "proto.h"

#define MOVE_SUFFIX	".move-in"
#define MOVE_SETTLE_TRIES 20	/* x 100 ms for an open count to take in a close */

/* A range of the disk that does not read from its template. */
struct move_range {
	uint64_t off, len;
	int	 zero;
};

/* A disk's ranges, all pages of them, with its size and template. */
struct move_ranges {
	struct move_range *r;
	size_t		 n, cap;
	uint64_t	 size, log_bytes;
};

/* Die here (SIGKILL), or stop (SIGSTOP) until continued, if a test hook names this step. */
static void
move_test_hook(const char *step)
{
	const char *kill_at = getenv("HCOWCTL_TEST_KILL_AT"), *stop_at = getenv("HCOWCTL_TEST_STOP_AT");

	if (kill_at && strcmp(kill_at, step) == 0)
		raise(SIGKILL);
	if (stop_at && strcmp(stop_at, step) == 0)
		raise(SIGSTOP);
}

/* The disks of mount m, parsed (`list --json`). */
static struct json *
move_list(const struct hcow_mount *m)
{
	struct sbuf body = SBUF_INIT;
	struct json *l;

	if (ask(m, "json list", REPLY_TIMEOUT_S, &body, 0) != 0)
		job_abort("cannot list the disks of %s: %s", m->mountpoint, sbuf_str(&body));
	if (!(l = json_parse(sbuf_str(&body))) || l->type != JSON_ARR)
		job_abort("malformed list from the supervisor of %s", m->mountpoint);
	sbuf_release(&body);
	return l;
}

/* Disk name's entry in list l, or NULL. */
static const struct json *
move_find(const struct json *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *n = json_str(&l->kid[i], "name");
		if (n && strcmp(n, name) == 0)
			return &l->kid[i];
	}
	return NULL;
}

/* Send a request that must succeed; job_abort with its answer (prefixed by what) if not. */
static void
move_ask(const struct hcow_mount *m, const char *line, const char *what)
{
	struct sbuf body = SBUF_INIT;

	if (ask(m, line, REPLY_TIMEOUT_S, &body, 0) != 0)
		job_abort("%s: %s", what, sbuf_str(&body));
	sbuf_release(&body);
}

/* Every range of disk name on m, in order, into rs (rs->r malloc'd). */
static void
move_ranges_get(const struct hcow_mount *m, const char *name, struct move_ranges *rs)
{
	struct json *page = ranges_page(m, name, 0);

	memset(rs, 0, sizeof(*rs));
	rs->size = (uint64_t)json_num(page, "size", 0);
	rs->log_bytes = (uint64_t)json_num(page, "log_bytes", 0);
	for (;;) {
		const struct json *list = json_get(page, "ranges"), *next;
		for (size_t i = 0; i < list->n; i++) {
			const char *kind = json_str(&list->kid[i], "kind");
			if (rs->n == rs->cap) {
				rs->cap = rs->cap ? 2 * rs->cap : 256;
				if (!(rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r))))
					job_abort("out of memory");
			}
			rs->r[rs->n].off = (uint64_t)json_num(&list->kid[i], "off", 0);
			rs->r[rs->n].len = (uint64_t)json_num(&list->kid[i], "len", 0);
			rs->r[rs->n].zero = kind && strcmp(kind, "zero") == 0;
			rs->n++;
		}
		next = json_get(page, "next");
		if (!next || next->type != JSON_NUM)
			break;
		json_free(page);
		page = ranges_page(m, name, (uint64_t)next->num);
	}
	json_free(page);
}

/* crc32c of the log ranges of rs as fd reads them (buf: COPY_CHUNK bytes). */
static uint32_t
move_sum(int fd, const struct move_ranges *rs, char *buf)
{
	uint32_t crc = 0;

	for (size_t i = 0; i < rs->n; i++) {
		uint64_t off = rs->r[i].off, end = off + rs->r[i].len;
		if (rs->r[i].zero)
			continue;
		while (off < end) {
			size_t got = read_chunk(fd, off, end - off, buf);
			crc = crc32c(crc, buf, got);
			off += got;
		}
	}
	return crc;
}

/*
 * Is disk dname on `to` (open as dfd) the source (ranges src, open as sfd)?
 * NULL if so, else what differs.  Its size, its ranges and the bytes of
 * its log ranges, read past the page cache's copy of what we wrote.
 */
static const char *
move_differs(const struct move_ranges *src, int sfd, const struct hcow_mount *to,
    const char *dname, int dfd, char *buf)
{
	struct move_ranges dst;
	struct stat sb;
	const char *why = NULL;

	if (fstat(dfd, &sb) < 0 || (uint64_t)sb.st_size != src->size)
		return "its size differs";
	move_ranges_get(to, dname, &dst);
	for (size_t i = 0; !why && i < src->n; i++)
		if (i >= dst.n || dst.r[i].off != src->r[i].off || dst.r[i].len != src->r[i].len ||
		    dst.r[i].zero != src->r[i].zero)
			why = "its ranges differ";
	if (dst.n != src->n)
		why = "its ranges differ";
	free(dst.r);
	if (why)
		return why;
	posix_fadvise(dfd, 0, 0, POSIX_FADV_DONTNEED);
	if (move_sum(sfd, src, buf) != move_sum(dfd, src, buf))
		return "its bytes differ (crc32c of the disk's own ranges)";
	return NULL;
}

/* Refuse unless template tmpl reads the same at both mounts (design notes). */
static void
move_check_template(const struct hcow_mount *m, const struct hcow_mount *to, const char *tmpl)
{
	struct json *sa = status_get(m), *sb = status_get(to);
	const char *da = json_str(sa, "templates"), *db = json_str(sb, "templates");
	char pa[PATH_MAX * 2], pb[PATH_MAX * 2];
	struct stat a, b;

	snprintf(pa, sizeof(pa), "%s/.templates/%s", m->mountpoint, tmpl);
	snprintf(pb, sizeof(pb), "%s/.templates/%s", to->mountpoint, tmpl);
	if (stat(pb, &b) < 0)
		job_abort("template '%s' is not at %s (template dir %s): add it there first", tmpl,
		    to->mountpoint, db ? db : "unknown");
	if (stat(pa, &a) < 0)
		job_abort("template '%s' of the disk cannot be read at %s: %s", tmpl, m->mountpoint,
		    strerror(errno));
	if (da && db && strcmp(da, db) == 0 && strncmp(da, "rados:", 6) == 0 &&
	    a.st_size == b.st_size)
		goto same;	/* one pool: the name fixes the content */
	if (da && db && strncmp(da, "rados:", 6) != 0 && strncmp(db, "rados:", 6) != 0) {
		char fa[PATH_MAX * 2], fb[PATH_MAX * 2];
		struct stat la, lb;
		snprintf(fa, sizeof(fa), "%s/%s", da, tmpl);
		snprintf(fb, sizeof(fb), "%s/%s", db, tmpl);
		if (stat(fa, &la) == 0 && stat(fb, &lb) == 0 && la.st_dev == lb.st_dev &&
		    la.st_ino == lb.st_ino)
			goto same;	/* one file */
	}
	if (a.st_size != b.st_size || !same_file_sampled(pa, pb))
		job_abort("template '%s' at %s differs from the one at %s (%s): the disk would read "
		    "differently there", tmpl, to->mountpoint, m->mountpoint,
		    a.st_size != b.st_size ? "size" : "bytes");
same:
	json_free(sa);
	json_free(sb);
}

/* Refuse unless the destination has room for the disk's own data (own bytes). */
static void
move_check_space(const struct hcow_mount *to, uint64_t own)
{
	struct json *s = status_get(to);
	const struct json *sp = json_get(s, "space");
	uint64_t fr = (uint64_t)json_num(sp, "free_bytes", 0), res = (uint64_t)json_num(sp,
	    "reserve_bytes", 0);
	char need[32], have[32];

	if (sp && fr < res + own) {
		size_format(own, need, sizeof(need));
		size_format(fr > res ? fr - res : 0, have, sizeof(have));
		job_abort("no space at %s: the disk's own data is %s, the store has %s free above its "
		    "reserve", to->mountpoint, need, have);
	}
	json_free(s);
}

/* Copy the ranges of rs from sfd into dfd: log ranges as bytes, zero ranges as zero records. */
static void
move_copy(const struct move_ranges *rs, int sfd, int dfd, char *buf)
{
	uint64_t total = 0;

	for (size_t i = 0; i < rs->n; i++)
		total += rs->r[i].zero ? 0 : rs->r[i].len;
	job_total(total);
	for (size_t i = 0; i < rs->n; i++) {
		if (rs->r[i].zero)
			zero_bytes(dfd, rs->r[i].off, rs->r[i].len,
			    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
		else
			copy_bytes(sfd, dfd, rs->r[i].off, rs->r[i].len, 0, buf);
	}
	if (fsync(dfd) < 0)
		job_abort("cannot sync the copy at the destination: %s", strerror(errno));
	job_progress_end();
}

/* Open disk name under mount m (flags: O_RDONLY or O_RDWR). */
static int
move_open(const struct hcow_mount *m, const char *name, int flags)
{
	char path[PATH_MAX * 2];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", m->mountpoint, name);
	if ((fd = open(path, flags | O_CLOEXEC)) < 0)
		job_abort("cannot open '%s': %s", path, strerror(errno));
	return fd;
}

/* Disk name's mtime, to see that nothing wrote it during the move. */
static struct timespec
move_mtime(const struct hcow_mount *m, const char *name)
{
	char path[PATH_MAX * 2];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", m->mountpoint, name);
	if (stat(path, &sb) < 0)
		job_abort("cannot stat '%s': %s", path, strerror(errno));
	return sb.st_mtim;
}

/*
 * Disk name's opens on m besides `mine` (ours) into *others, and its log
 * bytes; job_abort if it is gone.  The kernel sends a file's release after
 * close returns, so a count taken just after a close may still hold that
 * open: it is asked again, MOVE_SETTLE_TRIES times 100 ms at most, until it
 * falls to mine.
 */
static void
move_disk_state(const struct hcow_mount *m, const char *name, int mine, int *others,
    uint64_t *log_bytes)
{
	for (int i = 0;; i++) {
		struct json *l = move_list(m);
		const struct json *e = move_find(l, name);
		if (!e)
			job_abort("no disk named '%s' at %s", name, m->mountpoint);
		*others = (int)json_num(e, "opens", 0) - mine;
		*log_bytes = (uint64_t)json_num(e, "log_bytes", 0);
		json_free(l);
		if (*others <= 0 || i == MOVE_SETTLE_TRIES)
			return;
		usleep(100000);
	}
}

int
lifecycle_move(const struct hcow_mount *m, const char *name, const struct hcow_mount *to)
{
	char tmp[NAME_MAX_LEN + 1], line[PROTO_LINE_MAX], own[32], tmpl_buf[NAME_MAX_LEN + 1];
	struct move_ranges rs;
	struct json *l;
	const struct json *e;
	struct timespec mt0, mt1;
	const char *why, *tmpl;
	uint64_t size, log_bytes;
	sigset_t block;
	char *buf;
	int sfd, dfd, others, finishing = 0;

	job_begin("move", m);
	if (strchr(name, '@'))
		fail("move takes a disk, not a snapshot ('%s'): clone the snapshot, then move the clone",
		    name);
	if (path_check(name, &why) < 0)
		fail("invalid disk name '%s': %s", name, why);
	if (m->major == to->major && m->minor == to->minor)
		fail("'%s' is already on %s", name, to->mountpoint);
	if (strlen(name) + sizeof(MOVE_SUFFIX) > sizeof(tmp))
		fail("disk name '%s' is too long to move (its temporary name would not fit)", name);
	snprintf(tmp, sizeof(tmp), "%s%s", name, MOVE_SUFFIX);

	/* 1. the source */
	l = move_list(m);
	if (!(e = move_find(l, name)))
		fail("no disk named '%s' at %s", name, m->mountpoint);
	if (json_num(e, "snapshots", 0) > 0)
		fail("disk '%s' has snapshots, which do not move: delete them first", name);
	tmpl = json_str(e, "template");
	if (tmpl) {
		snprintf(tmpl_buf, sizeof(tmpl_buf), "%s", tmpl);
		tmpl = tmpl_buf;
	}
	json_free(l);
	move_disk_state(m, name, 0, &others, &log_bytes);
	if (others > 0)
		fail("disk '%s' is open (%d time%s): a disk moves while nothing uses it; stop its VM "
		    "first", name, others, others == 1 ? "" : "s");
	mt0 = move_mtime(m, name);
	move_ranges_get(m, name, &rs);
	size = rs.size;
	sfd = move_open(m, name, O_RDONLY);
	if (!(buf = malloc(COPY_CHUNK)))
		job_abort("out of memory");

	/* ... and the destination */
	l = move_list(to);
	if (move_find(l, tmp)) {
		move_disk_state(to, tmp, 0, &others, &log_bytes);
		if (others > 0)
			job_abort("'%s' at %s is open: is another move of '%s' running?", tmp,
			    to->mountpoint, name);
		snprintf(line, sizeof(line), "text delete name=%s", tmp);
		move_ask(to, line, "cannot remove the unfinished copy of an earlier move");
		printf("removed '%s', the unfinished copy of an earlier move, at %s\n", tmp,
		    to->mountpoint);
	}
	if (move_find(l, name)) {
		/* an earlier move that got as far as the rename: finish it, or refuse */
		dfd = move_open(to, name, O_RDONLY);
		if (move_differs(&rs, sfd, to, name, dfd, buf))
			job_abort("a disk named '%s' exists at %s; not replacing it", name,
			    to->mountpoint);
		close(dfd);
		finishing = 1;
	}
	json_free(l);
	if (!finishing) {
		if (tmpl)
			move_check_template(m, to, tmpl);
		move_check_space(to, rs.log_bytes);

		/* 2. the copy, under its temporary name */
		snprintf(line, sizeof(line), "text create name=%s size=%llu token=move-%d%s%s", tmp,
		    (unsigned long long)size, (int)getpid(), tmpl ? " template=" : "",
		    tmpl ? tmpl : "");
		move_ask(to, line, "cannot create the copy at the destination");
		job_temp_disk(to, tmp);
		move_test_hook("created");
		dfd = move_open(to, tmp, O_RDWR);

		/* 3. filled and flushed, 4. checked */
		move_copy(&rs, sfd, dfd, buf);
		move_test_hook("copied");
		if ((why = move_differs(&rs, sfd, to, tmp, dfd, buf)) != NULL)
			job_abort("the copy at %s is not the disk: %s", to->mountpoint, why);
		close(dfd);
	}
	/* the source again, ours still open: unwritten, and no one else's open */
	move_disk_state(m, name, 1, &others, &log_bytes);
	mt1 = move_mtime(m, name);
	if (log_bytes != rs.log_bytes || mt0.tv_sec != mt1.tv_sec || mt0.tv_nsec != mt1.tv_nsec)
		job_abort("disk '%s' was written during the move; nothing moved", name);
	if (others > 0)
		job_abort("disk '%s' was opened during the move; nothing moved", name);
	close(sfd);
	free(buf);

	/* 5. its name; from here on a signal waits: the two last steps are short */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	if (!finishing) {
		char from[PATH_MAX * 2], dst[PATH_MAX * 2];
		snprintf(from, sizeof(from), "%s/%s", to->mountpoint, tmp);
		snprintf(dst, sizeof(dst), "%s/%s", to->mountpoint, name);
		if (renameat2(AT_FDCWD, from, AT_FDCWD, dst, RENAME_NOREPLACE) < 0)
			job_abort("cannot rename '%s' to '%s' at %s: %s", tmp, name, to->mountpoint,
			    strerror(errno));
		job_temp_disk(NULL, NULL);
		move_test_hook("renamed");
	}

	/* 6. the source goes */
	snprintf(line, sizeof(line), "text delete name=%s", name);
	{
		struct sbuf body = SBUF_INIT;
		if (ask(m, line, REPLY_TIMEOUT_S, &body, 0) != 0)
			fail("'%s' is at %s now, but the source could not be deleted: %s; delete it "
			    "with: hcowctl -m %s delete %s", name, to->mountpoint, sbuf_str(&body),
			    m->mountpoint, name);
		sbuf_release(&body);
	}
	size_format(rs.log_bytes, own, sizeof(own));
	printf("moved '%s' from %s to %s%s (%s of its own data%s%s)\n", name, m->mountpoint,
	    to->mountpoint, finishing ? ", finishing an earlier move" : "", own,
	    tmpl ? ", template " : "", tmpl ? tmpl : "");
	free(rs.r);
	return 0;
}
