/*
 * lifecycle: hcowctl export, import and promote, the commands that move a
 * disk's data out of hcowfs and in again.
 *
 *   export DISK[@SNAP] OUT.qcow2   a qcow2 overlay of the disk's template
 *   import IN.qcow2 NAME --template T   a new disk from an overlay of T
 *   promote DISK[@SNAP] NEW        the disk, whole, as a new template file
 *
 * Design notes
 *
 * The qcow2 format is qemu's: these commands drive qemu-img (create, info,
 * map, check, all with JSON output where they have it) and
 * qemu-storage-daemon, whose FUSE export shows a qcow2 image as a raw file,
 * and never read or write qcow2 structures themselves.  Only the bytes a
 * disk changed are moved:
 *
 *   - export asks the worker for the disk's ranges that do not read from the
 *     template (the `ranges` verb, in pages: store_ranges), creates an
 *     overlay of the template (backing format raw, the template's absolute
 *     path), and through a writable export of it copies each log range from
 *     the disk's file in the mount and zeroes each zero range (ZERO_RANGE:
 *     qemu writes zero clusters), and the part past the template's end.  Its
 *     cost grows with the log data, not with the disk's size.
 *   - import reads `qemu-img map` of IN: the ranges IN holds itself (depth
 *     0) are copied (data) or zeroed (zero: PUNCH_HOLE|KEEP_SIZE, which
 *     hcowfs turns into a zero record) from a read-only export of IN into a
 *     disk created from T; the rest reads from T already.  IN's backing
 *     file must be T: the same file (after realpath), or, for an overlay
 *     made on another host, a file of the same size whose bytes equal T's
 *     on IMPORT_SAMPLES ranges spread over it (the first and last included).
 *     Sampling cannot prove two files equal; it catches the wrong template,
 *     which is the mistake that happens.  Anything else is refused.
 *   - promote copies the disk's file sparsely (SEEK_DATA/SEEK_HOLE, and all-
 *     zero blocks skipped) into a new file of the template dir.
 *
 * Atomicity: nothing appears under the final name until it is whole.
 * export writes OUT's directory's .OUT.export-PID, checks it (qemu-img
 * check), fsyncs it, renames it to OUT (RENAME_NOREPLACE) and fsyncs the
 * directory; promote does the same in the template dir; import writes a
 * disk NAME.import-PID and renames it inside the mount.  A failure, SIGINT
 * or SIGTERM stops the daemon, removes the temporary file or disk
 * (job_abort) and exits 1 with one line.  The signal handler only sets
 * `interrupted`; the copy loops look at it between chunks.  For tests,
 * HCOWCTL_TEST_INTERRUPT_AT=BYTES raises SIGINT once that many bytes are
 * copied.
 *
 * A disk being written while it is exported gives a copy that may mix
 * moments (the worker answers the ranges in batches): export a snapshot,
 * or a disk no one writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctlclient.h"
#include "lifecycle.h"
#include "names.h"
#include "proto.h"

#define ZERO_BLOCK	4096		/* promote: all-zero blocks of this size stay holes */
#define IMPORT_SAMPLES	64
#define SAMPLE_LEN	(64u << 10)
#define QSD_START_S	30		/* for qemu-storage-daemon's export to appear */

/* What a job has made so far, undone by job_abort. */
static struct job {
	const char	*verb;
	const struct hcow_mount *m;
	pid_t		 qsd;		/* qemu-storage-daemon, or 0 */
	char		 expfile[PATH_MAX];	/* its export's mount point, or "" */
	char		 tmpfile[PATH_MAX];	/* the result before its rename, or "" */
	char		 tmpdisk[NAME_MAX_LEN + 1];	/* a disk before its rename, or "" */
	const struct hcow_mount *tmpm;	/* the mount tmpdisk is on */
	/* progress */
	uint64_t	 done, total;
	uint64_t	 interrupt_at;	/* HCOWCTL_TEST_INTERRUPT_AT, or 0 */
	int		 tty;
	struct timespec	 shown;
} job;

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	interrupted = sig;
}

/* Stop the export daemon: SIGTERM, and wait for it (it unmounts the export). */
static int
qsd_stop(void)
{
	int status = 0;

	if (job.qsd <= 0)
		return 0;
	kill(job.qsd, SIGTERM);
	while (waitpid(job.qsd, &status, 0) < 0 && errno == EINTR)
		;
	job.qsd = 0;
	if (job.expfile[0]) {
		unlink(job.expfile);
		job.expfile[0] = '\0';
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

void
job_abort(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (job.tty && job.total)
		fputc('\n', stderr);
	qsd_stop();
	if (job.tmpfile[0])
		unlink(job.tmpfile);
	if (job.tmpdisk[0]) {
		struct sbuf body = SBUF_INIT;
		char line[PROTO_LINE_MAX];
		snprintf(line, sizeof(line), "text delete name=%s", job.tmpdisk);
		if (ask(job.tmpm, line, REPLY_TIMEOUT_S, &body, 0) != 0)
			fprintf(stderr, "hcowctl: could not delete the unfinished disk '%s': %s\n",
			    job.tmpdisk, sbuf_str(&body));
		sbuf_release(&body);
	}
	if (interrupted)
		fail("%s interrupted (%s): %s", job.verb, strsignal(interrupted), msg);
	fail("%s", msg);
}

void
job_begin(const char *verb, const struct hcow_mount *m)
{
	struct sigaction sa = { .sa_handler = on_signal };
	const char *at = getenv("HCOWCTL_TEST_INTERRUPT_AT");

	job.verb = verb;
	job.m = m;
	job.tty = isatty(STDERR_FILENO);
	if (at)
		job.interrupt_at = strtoull(at, NULL, 10);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);	/* no SA_RESTART: a wait ends early */
	sigaction(SIGTERM, &sa, NULL);
}

/* Count n bytes done; show progress at most 5 times a second; stop if interrupted. */
static void
job_progress(uint64_t n)
{
	struct timespec now;

	job.done += n;
	if (job.interrupt_at && job.done >= job.interrupt_at)
		raise(SIGINT);
	if (interrupted)
		job_abort("nothing was left behind");
	if (!job.tty)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((now.tv_sec - job.shown.tv_sec) * 1000 + (now.tv_nsec - job.shown.tv_nsec) / 1000000 < 200 &&
	    job.done < job.total)
		return;
	job.shown = now;
	fprintf(stderr, "\r%s: %llu of %llu MiB (%.0f%%)   ", job.verb,
	    (unsigned long long)(job.done >> 20), (unsigned long long)(job.total >> 20),
	    job.total ? 100.0 * (double)job.done / (double)job.total : 100.0);
}

void
job_temp_disk(const struct hcow_mount *m, const char *name)
{
	job.tmpm = m;
	snprintf(job.tmpdisk, sizeof(job.tmpdisk), "%s", name ? name : "");
}

void
job_total(uint64_t bytes)
{
	job.total = bytes;
}

void
job_progress_end(void)
{
	if (job.tty && job.total)
		fputc('\n', stderr);
	job.total = 0;
}

/*
 * Run a tool (argv[0] found in PATH) and wait for it; its stdout into out
 * if out is not NULL.  Its exit status, or 128+signal.
 */
static int
run_tool(char *const argv[], struct sbuf *out)
{
	int pfd[2] = { -1, -1 }, status;
	char buf[65536];
	ssize_t n;
	pid_t pid;

	if (out && pipe2(pfd, O_CLOEXEC) < 0)
		job_abort("pipe: %s", strerror(errno));
	if ((pid = fork()) < 0)
		job_abort("fork: %s", strerror(errno));
	if (pid == 0) {
		if (out)
			dup2(pfd[1], STDOUT_FILENO);
		execvp(argv[0], argv);
		fprintf(stderr, "hcowctl: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (out) {
		close(pfd[1]);
		while ((n = read(pfd[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
			if (n > 0)
				sbuf_add(out, buf, (size_t)n);
		close(pfd[0]);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			job_abort("waitpid: %s", strerror(errno));
	if (interrupted)
		job_abort("nothing was left behind");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Start qemu-storage-daemon exporting image (format fmt: "qcow2") as a raw
 * file at a new job.expfile; return once the export is mounted there.
 */
static void
qsd_start(const char *image, int writable)
{
	char file[PATH_MAX + 64], fmt[160], exp[PATH_MAX + 96];
	const char *tmp = getenv("TMPDIR");
	struct stat before, now;
	int fd, status;

	snprintf(job.expfile, sizeof(job.expfile), "%s/hcowctl-%s.XXXXXX", tmp && *tmp ? tmp : "/tmp",
	    job.verb);
	if ((fd = mkstemp(job.expfile)) < 0) {
		job.expfile[0] = '\0';
		job_abort("cannot make a file to export the image on: %s", strerror(errno));
	}
	close(fd);
	stat(job.expfile, &before);
	snprintf(file, sizeof(file), "driver=file,filename=%s,node-name=f%s", image,
	    writable ? "" : ",read-only=on");
	snprintf(fmt, sizeof(fmt), "driver=qcow2,file=f,node-name=q%s", writable ? "" : ",read-only=on");
	snprintf(exp, sizeof(exp), "type=fuse,id=e,node-name=q,mountpoint=%s,writable=%s", job.expfile,
	    writable ? "on" : "off");
	if ((job.qsd = fork()) < 0)
		job_abort("fork: %s", strerror(errno));
	if (job.qsd == 0) {
		/* its own process group: a Ctrl-C is ours to handle, in order */
		setpgid(0, 0);
		execlp("qemu-storage-daemon", "qemu-storage-daemon", "--blockdev", file, "--blockdev", fmt,
		    "--export", exp, (char *)NULL);
		fprintf(stderr, "hcowctl: cannot run qemu-storage-daemon: %s\n", strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < QSD_START_S * 100; i++) {
		if (stat(job.expfile, &now) == 0 && now.st_dev != before.st_dev)
			return;
		if (waitpid(job.qsd, &status, WNOHANG) == job.qsd) {
			job.qsd = 0;
			job_abort("qemu-storage-daemon could not export '%s' (see its message above)", image);
		}
		if (interrupted)
			job_abort("nothing was left behind");
		usleep(10000);
	}
	job_abort("qemu-storage-daemon did not export '%s' within %d s", image, QSD_START_S);
}

/* Is buf all zeros? */
static int
all_zero(const char *buf, size_t n)
{
	return n == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0);
}

size_t
read_chunk(int fd, uint64_t off, uint64_t len, char *buf)
{
	size_t n = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
	ssize_t got;

	while ((got = pread(fd, buf, n, (off_t)off)) < 0 && errno == EINTR)
		;
	if (got <= 0)
		job_abort("cannot read at offset %llu: %s", (unsigned long long)off,
		    got < 0 ? strerror(errno) : "unexpected end of file");
	return (size_t)got;
}

void
copy_bytes(int from, int to, uint64_t off, uint64_t len, int sparse, char *buf)
{
	while (len > 0) {
		size_t got = read_chunk(from, off, len, buf);
		for (size_t pos = 0; pos < got; ) {
			size_t b = got - pos < ZERO_BLOCK ? got - pos : ZERO_BLOCK;
			if (!sparse) {
				b = got - pos;
			} else if (all_zero(buf + pos, b)) {
				pos += b;
				continue;
			}
			ssize_t put = pwrite(to, buf + pos, b, (off_t)(off + pos));
			if (put < 0 && errno == EINTR)
				continue;
			if (put <= 0)
				job_abort("cannot write at offset %llu: %s",
				    (unsigned long long)(off + pos), put < 0 ? strerror(errno) : "no space");
			pos += (size_t)put;
		}
		off += got;
		len -= got;
		job_progress(got);
	}
}

void
zero_bytes(int fd, uint64_t off, uint64_t len, int mode)
{
	while (fallocate(fd, mode, (off_t)off, (off_t)len) < 0)
		if (errno != EINTR)
			job_abort("cannot zero %llu bytes at offset %llu: %s", (unsigned long long)len,
			    (unsigned long long)off, strerror(errno));
}

/* fsync path's directory (after a rename into it). */
static void
fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(fd) < 0)
		fail("the new '%s' is there, but its directory could not be synced: %s", path,
		    strerror(errno));
	close(fd);
}

/*
 * Make job.tmpfile durable, check nothing holds `final` and rename it
 * there; the job's temporary is then the result.
 */
static void
commit_file(const char *final)
{
	int fd;

	if ((fd = open(job.tmpfile, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) < 0)
		job_abort("cannot sync '%s': %s", job.tmpfile, strerror(errno));
	close(fd);
	if (renameat2(AT_FDCWD, job.tmpfile, AT_FDCWD, final, RENAME_NOREPLACE) < 0)
		job_abort("cannot rename '%s' to '%s': %s", job.tmpfile, final, strerror(errno));
	job.tmpfile[0] = '\0';
	fsync_dir_of(final);
}

/* Refuse a path that exists (the commands never replace anything). */
static void
refuse_existing(const char *what, const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) == 0)
		fail("%s '%s' exists; not replacing it", what, path);
}

/* dir/.base.VERB-PID for final, in final's directory. */
static void
temp_name_for(const char *final, char *out, size_t outlen)
{
	const char *slash = strrchr(final, '/');
	int dirlen = slash ? (int)(slash - final + 1) : 0;

	snprintf(out, outlen, "%.*s.%s.%s-%d", dirlen, final, final + dirlen, job.verb, (int)getpid());
}

/* The template dir of the mount, from its status. */
static void
template_dir(const struct hcow_mount *m, char *out, size_t outlen)
{
	struct json *s = status_get(m);
	const char *dir = json_str(s, "templates");

	if (!dir)
		fail("the supervisor of %s did not say where its templates are", m->mountpoint);
	snprintf(out, outlen, "%s", dir);
	json_free(s);
}

/* Check DISK or DISK@SNAP; the file that shows it under the mount into path. */
static void
source_path(const struct hcow_mount *m, const char *name, char *path, size_t pathlen)
{
	const char *at = strchr(name, '@'), *why;
	char disk[NAME_MAX_LEN + 1];

	snprintf(disk, sizeof(disk), "%.*s", at ? (int)(at - name) : (int)strlen(name), name);
	if (path_check(disk, &why) < 0 || (at && name_check(at + 1, &why) < 0))
		fail("invalid disk name '%s': %s", name, why);
	if ((size_t)snprintf(path, pathlen, "%s/%s%s", m->mountpoint, at ? ".snapshots/" : "",
	    name) >= pathlen)
		fail("the path of '%s' under %s is too long", name, m->mountpoint);
}

struct json *
ranges_page(const struct hcow_mount *m, const char *name, uint64_t from)
{
	struct sbuf body = SBUF_INIT;
	char line[PROTO_LINE_MAX];
	struct json *page;

	snprintf(line, sizeof(line), "json ranges name=%s from=%llu", name, (unsigned long long)from);
	if (ask(m, line, REPLY_TIMEOUT_S, &body, 0) != 0)
		job_abort("%s", sbuf_str(&body));
	if (!(page = json_parse(sbuf_str(&body))) || !json_get(page, "ranges"))
		job_abort("malformed answer to ranges from the supervisor of %s", m->mountpoint);
	sbuf_release(&body);
	return page;
}

/* Export's copy of one page's ranges from src into the export exp. */
static void
export_page(const struct json *page, int src, int exp, char *buf)
{
	const struct json *rs = json_get(page, "ranges");

	for (size_t i = 0; i < rs->n; i++) {
		const struct json *r = &rs->kid[i];
		uint64_t off = (uint64_t)json_num(r, "off", 0), len = (uint64_t)json_num(r, "len", 0);
		const char *kind = json_str(r, "kind");
		if (kind && strcmp(kind, "zero") == 0)
			zero_bytes(exp, off, len, FALLOC_FL_ZERO_RANGE);
		else
			copy_bytes(src, exp, off, len, 0, buf);
	}
}

int
lifecycle_export(const struct hcow_mount *m, const char *name, const char *out)
{
	char src[PATH_MAX], tmpldir[PATH_MAX], tmpl[PATH_MAX * 2], real[PATH_MAX], size_s[32];
	struct json *page;
	uint64_t size, tsize, next;
	char *buf;
	int sfd, efd;

	job_begin("export", m);
	source_path(m, name, src, sizeof(src));
	refuse_existing("output file", out);
	template_dir(m, tmpldir, sizeof(tmpldir));
	page = ranges_page(m, name, 0);
	size = (uint64_t)json_num(page, "size", 0);
	tsize = (uint64_t)json_num(page, "template_size", 0);
	job.total = (uint64_t)json_num(page, "log_bytes", 0);
	snprintf(tmpl, sizeof(tmpl), "%s/%s", tmpldir, json_str(page, "template") ?
	    json_str(page, "template") : "");
	if (!realpath(tmpl, real))
		job_abort("template '%s' of disk '%s': %s", tmpl, name, strerror(errno));
	if ((sfd = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		job_abort("cannot open '%s': %s", src, strerror(errno));
	temp_name_for(out, job.tmpfile, sizeof(job.tmpfile));
	snprintf(size_s, sizeof(size_s), "%llu", (unsigned long long)size);
	if (run_tool((char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-b", real, "-F",
	    "raw", job.tmpfile, size_s, NULL }, NULL) != 0)
		job_abort("qemu-img could not create '%s'", job.tmpfile);
	qsd_start(job.tmpfile, 1);
	if ((efd = open(job.expfile, O_RDWR | O_CLOEXEC)) < 0)
		job_abort("cannot open the export of '%s': %s", job.tmpfile, strerror(errno));
	if (!(buf = malloc(COPY_CHUNK)))
		job_abort("out of memory");
	/* first, so that log ranges past the template's end are written over it */
	if (size > tsize)
		zero_bytes(efd, tsize, size - tsize, FALLOC_FL_ZERO_RANGE);
	for (;;) {
		const struct json *n;
		export_page(page, sfd, efd, buf);
		n = json_get(page, "next");
		if (!n || n->type != JSON_NUM)
			break;
		next = (uint64_t)n->num;
		json_free(page);
		page = ranges_page(m, name, next);
	}
	json_free(page);
	free(buf);
	close(sfd);
	if (fsync(efd) < 0)
		job_abort("cannot flush the export of '%s': %s", job.tmpfile, strerror(errno));
	close(efd);
	job_progress_end();
	if (qsd_stop() < 0)
		job_abort("qemu-storage-daemon did not stop cleanly");
	if (run_tool((char *const[]){ "qemu-img", "check", "-q", job.tmpfile, NULL }, NULL) != 0)
		job_abort("qemu-img check found problems in '%s'", job.tmpfile);
	commit_file(out);
	printf("exported '%s' to '%s' (%llu bytes, overlay of '%s')\n", name, out,
	    (unsigned long long)size, real);
	return 0;
}

/* Are files a and b equal on IMPORT_SAMPLES ranges spread over size bytes? */
static int
same_samples(int a, int b, uint64_t size, char *ba, char *bb)
{
	for (unsigned i = 0; i < IMPORT_SAMPLES; i++) {
		uint64_t off = size <= SAMPLE_LEN ? 0 :
		    (size - SAMPLE_LEN) / (IMPORT_SAMPLES - 1) * i;
		ssize_t na = pread(a, ba, SAMPLE_LEN, (off_t)off);
		ssize_t nb = pread(b, bb, SAMPLE_LEN, (off_t)off);
		if (na < 0 || na != nb || memcmp(ba, bb, (size_t)na) != 0)
			return 0;
	}
	return 1;
}

int
same_file_sampled(const char *a, const char *b)
{
	struct stat sa, sb;
	char *ba = NULL, *bb = NULL;
	int fa, fb = -1, same = 0;

	if ((fa = open(a, O_RDONLY | O_CLOEXEC)) >= 0 && (fb = open(b, O_RDONLY | O_CLOEXEC)) >= 0) {
		ba = malloc(SAMPLE_LEN);
		bb = malloc(SAMPLE_LEN);
		same = ba && bb && fstat(fa, &sa) == 0 && fstat(fb, &sb) == 0 &&
		    sa.st_size == sb.st_size && same_samples(fa, fb, (uint64_t)sa.st_size, ba, bb);
	}
	free(ba);
	free(bb);
	if (fb >= 0)
		close(fb);
	if (fa >= 0)
		close(fa);
	return same;
}

/*
 * Refuse IN unless it is a qcow2 overlay of a raw file that is template
 * tmplpath (see the design notes); its virtual size into *size.
 */
static void
import_check_backing(const char *in, const char *tmplpath, uint64_t *size)
{
	struct sbuf out = SBUF_INIT;
	struct json *info;
	const char *fmt, *backing, *bfmt;
	char rb[PATH_MAX], rt[PATH_MAX];

	if (run_tool((char *const[]){ "qemu-img", "info", "--output=json", (char *)in, NULL },
	    &out) != 0 || !(info = json_parse(sbuf_str(&out))))
		job_abort("qemu-img cannot read '%s'", in);
	sbuf_release(&out);
	fmt = json_str(info, "format");
	backing = json_str(info, "full-backing-filename");
	bfmt = json_str(info, "backing-filename-format");
	*size = (uint64_t)json_num(info, "virtual-size", 0);
	if (!fmt || strcmp(fmt, "qcow2") != 0)
		job_abort("'%s' is not a qcow2 image (%s)", in, fmt ? fmt : "unknown format");
	if (!backing)
		job_abort("'%s' has no backing file: import takes an overlay of the template", in);
	if (bfmt && strcmp(bfmt, "raw") != 0)
		job_abort("'%s' has a %s backing file; import takes an overlay of a raw template", in,
		    bfmt);
	if (!realpath(tmplpath, rt))
		job_abort("template '%s': %s", tmplpath, strerror(errno));
	if (realpath(backing, rb) && strcmp(rb, rt) == 0) {
		json_free(info);
		return;
	}
	/* another path: the same size and the same bytes where sampled */
	if (!same_file_sampled(backing, rt))
		job_abort("'%s' is an overlay of '%s', which is not template '%s'", in, backing,
		    tmplpath);
	json_free(info);
}

/*
 * What an entry of `qemu-img map` asks of import: 'd' copy its data, 'z'
 * zero it (IN holds both itself: depth 0), 0 nothing (the backing file's
 * part, which the new disk reads from the template already).
 */
static int
map_kind(const struct json *e)
{
	const struct json *zero = json_get(e, "zero"), *data = json_get(e, "data");

	if (json_num(e, "depth", 1) != 0)
		return 0;
	if (zero && zero->type == JSON_BOOL && zero->num)
		return 'z';
	return data && data->type == JSON_BOOL && data->num ? 'd' : 0;
}

int
lifecycle_import(const struct hcow_mount *m, const char *in, const char *name, const char *tmpl)
{
	char tmpldir[PATH_MAX], tpath[PATH_MAX * 2], dst[PATH_MAX * 2], line[PROTO_LINE_MAX];
	char from[PATH_MAX * 2];
	struct sbuf body = SBUF_INIT;
	struct json *map;
	uint64_t size;
	const char *why;
	char *buf;
	int ifd, dfd;

	job_begin("import", m);
	if (path_check(name, &why) < 0)
		fail("invalid disk name '%s': %s", name, why);
	if (name_check(tmpl, &why) < 0)
		fail("invalid template name '%s': %s", tmpl, why);
	snprintf(dst, sizeof(dst), "%s/%s", m->mountpoint, name);
	refuse_existing("disk", dst);
	template_dir(m, tmpldir, sizeof(tmpldir));
	snprintf(tpath, sizeof(tpath), "%s/%s", tmpldir, tmpl);
	import_check_backing(in, tpath, &size);
	if (run_tool((char *const[]){ "qemu-img", "map", "--output=json", (char *)in, NULL },
	    &body) != 0 || !(map = json_parse(sbuf_str(&body))) || map->type != JSON_ARR)
		job_abort("qemu-img cannot map '%s'", in);
	sbuf_release(&body);
	for (size_t i = 0; i < map->n; i++)
		if (map_kind(&map->kid[i]) == 'd')
			job.total += (uint64_t)json_num(&map->kid[i], "length", 0);

	/* the disk, under a name of its own until it is whole */
	snprintf(job.tmpdisk, sizeof(job.tmpdisk), "%.*s.import-%d", NAME_MAX_LEN - 20, name,
	    (int)getpid());
	job.tmpm = m;
	snprintf(line, sizeof(line), "text create name=%s template=%s size=%llu token=import-%d",
	    job.tmpdisk, tmpl, (unsigned long long)size, (int)getpid());
	if (ask(m, line, REPLY_TIMEOUT_S, &body, 0) != 0) {
		job.tmpdisk[0] = '\0';
		job_abort("%s", sbuf_str(&body));
	}
	sbuf_release(&body);
	snprintf(dst, sizeof(dst), "%s/%s", m->mountpoint, job.tmpdisk);
	if ((dfd = open(dst, O_RDWR | O_CLOEXEC)) < 0)
		job_abort("cannot open '%s': %s", dst, strerror(errno));
	qsd_start(in, 0);
	if ((ifd = open(job.expfile, O_RDONLY | O_CLOEXEC)) < 0)
		job_abort("cannot open the export of '%s': %s", in, strerror(errno));
	if (!(buf = malloc(COPY_CHUNK)))
		job_abort("out of memory");
	for (size_t i = 0; i < map->n; i++) {
		const struct json *e = &map->kid[i];
		uint64_t off = (uint64_t)json_num(e, "start", 0), len = (uint64_t)json_num(e, "length", 0);
		if (map_kind(e) == 'z')
			zero_bytes(dfd, off, len, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
		else if (map_kind(e) == 'd')
			copy_bytes(ifd, dfd, off, len, 0, buf);
	}
	free(buf);
	json_free(map);
	close(ifd);
	if (fsync(dfd) < 0)
		job_abort("cannot sync '%s': %s", dst, strerror(errno));
	close(dfd);
	job_progress_end();
	qsd_stop();
	snprintf(from, sizeof(from), "%s/%s", m->mountpoint, job.tmpdisk);
	snprintf(dst, sizeof(dst), "%s/%s", m->mountpoint, name);
	if (renameat2(AT_FDCWD, from, AT_FDCWD, dst, RENAME_NOREPLACE) < 0)
		job_abort("cannot rename disk '%s' to '%s': %s", job.tmpdisk, name, strerror(errno));
	job.tmpdisk[0] = '\0';
	printf("imported '%s' as disk '%s' (template '%s', %llu bytes)\n", in, name, tmpl,
	    (unsigned long long)size);
	return 0;
}

/* Bytes of fd (size bytes) in data ranges (SEEK_DATA/SEEK_HOLE). */
static uint64_t
data_bytes(int fd, uint64_t size)
{
	uint64_t n = 0;
	off_t pos = 0, data, hole;

	while ((uint64_t)pos < size && (data = lseek(fd, pos, SEEK_DATA)) >= 0) {
		if ((hole = lseek(fd, data, SEEK_HOLE)) < 0)
			hole = (off_t)size;
		n += (uint64_t)(hole - data);
		pos = hole;
	}
	return n;
}

int
lifecycle_promote(const struct hcow_mount *m, const char *name, const char *tmpl)
{
	char src[PATH_MAX], tmpldir[PATH_MAX], final[PATH_MAX * 2], sz[32], dz[32];
	const char *why;
	struct stat sb;
	off_t pos = 0, data, hole;
	char *buf;
	int sfd, tfd;

	job_begin("promote", m);
	source_path(m, name, src, sizeof(src));
	if (name_check(tmpl, &why) < 0)
		fail("invalid template name '%s': %s", tmpl, why);
	template_dir(m, tmpldir, sizeof(tmpldir));
	snprintf(final, sizeof(final), "%s/%s", tmpldir, tmpl);
	refuse_existing("template", final);
	if ((sfd = open(src, O_RDONLY | O_CLOEXEC)) < 0 || fstat(sfd, &sb) < 0)
		fail("cannot open '%s': %s", src, strerror(errno));
	job.total = data_bytes(sfd, (uint64_t)sb.st_size);
	size_format((uint64_t)sb.st_size, sz, sizeof(sz));
	size_format(job.total, dz, sizeof(dz));
	printf("promote: writing template '%s' in %s: %s, of which %s hold data (all-zero blocks "
	    "are left as holes)\n", tmpl, tmpldir, sz, dz);
	fflush(stdout);
	temp_name_for(final, job.tmpfile, sizeof(job.tmpfile));
	if ((tfd = open(job.tmpfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		job.tmpfile[0] = '\0';
		job_abort("cannot create a file in %s: %s", tmpldir, strerror(errno));
	}
	if (ftruncate(tfd, sb.st_size) < 0)
		job_abort("cannot size '%s': %s", job.tmpfile, strerror(errno));
	if (!(buf = malloc(COPY_CHUNK)))
		job_abort("out of memory");
	while (pos < sb.st_size && (data = lseek(sfd, pos, SEEK_DATA)) >= 0) {
		if ((hole = lseek(sfd, data, SEEK_HOLE)) < 0)
			hole = sb.st_size;
		copy_bytes(sfd, tfd, (uint64_t)data, (uint64_t)(hole - data), 1, buf);
		pos = hole;
	}
	free(buf);
	close(sfd);
	if (fsync(tfd) < 0 || close(tfd) < 0)
		job_abort("cannot sync '%s': %s", job.tmpfile, strerror(errno));
	job_progress_end();
	commit_file(final);
	printf("promoted '%s' to template '%s'; use it with: hcowctl create NAME --template %s\n",
	    name, tmpl, tmpl);
	return 0;
}
