/*
 * ctlclient: how hcowctl reaches a mount's supervisor: the mount found in
 * /proc/self/mountinfo (never touching the FUSE mount itself, so it works
 * while a worker hangs), one request over its control socket (proto.h), the
 * status parsed, and the one way a command fails (a line on stderr, exit 1).
 * hcowctl.c's commands and lifecycle.c's data movers both stand on it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlclient.h"
#include "proto.h"

const char *prog = "hcowctl";

void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void
find_mount(const char *want, struct hcow_mount *m)
{
	struct hcow_mount all[16];
	char path[PATH_MAX];
	int n, rc;

	if (want) {
		if ((rc = mounts_canonical(want, path, sizeof(path))) < 0)
			fail("mount point '%s': %s", want, strerror(-rc));
		n = mounts_find(path, all, 16);
		if (n == 0)
			fail("no hcowfs mount at '%s'", path);
	} else {
		n = mounts_find(NULL, all, 16);
		if (n == 0)
			fail("no hcowfs mount is running (start one with mount.hcowfs)");
		if (n > 1) {
			fprintf(stderr, "%s: %d hcowfs mounts; choose one with -m:", prog, n);
			for (int i = 0; i < n && i < 16; i++)
				fprintf(stderr, " %s", all[i].mountpoint);
			fputc('\n', stderr);
			exit(1);
		}
	}
	if (n < 0)
		fail("cannot read /proc/self/mountinfo: %s", strerror(-n));
	*m = all[(n > 16 ? 16 : n) - 1];
}

/*
 * Send one request line; the answer goes to body, and also to stdout (or,
 * refused, stderr) as it comes when echo is set.  Returns the answer's error
 * (0: done); fails (exits) when there is no answer.
 */
int
ask(const struct hcow_mount *m, const char *line, int wait_s, struct sbuf *body, int echo)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { wait_s, 0 };
	char head[64], buf[65536];
	ssize_t n;
	char last = '\n';
	int fd, err = 0;

	proto_socket_path(m->major, m->minor, sa.sun_path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			fail("the supervisor of %s is not running (no one listens on %s); the mount may "
			    "still serve I/O, unsupervised: unmount and mount it again to restore control",
			    m->mountpoint, sa.sun_path);
		if (errno == EACCES)
			fail("permission denied: only root or the mount's owner may control %s",
			    m->mountpoint);
		fail("cannot connect to %s: %s", sa.sun_path, strerror(errno));
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/*
	 * A supervisor that refuses us (another user's mount with an owner)
	 * answers and closes before reading: the send then fails with EPIPE,
	 * SIGPIPE being ignored, and its answer is still there to read.
	 */
	if ((err = proto_write_all(fd, line, strlen(line))) == 0)
		err = proto_write_all(fd, "\n", 1);
	n = proto_read_line(fd, head, sizeof(head));
	if (n <= 0 && err < 0)
		fail("cannot send the request to %s: %s", sa.sun_path, strerror(-err));
	if (n <= 0)
		fail("no answer from the supervisor of %s%s", m->mountpoint,
		    n == -EAGAIN ? " (timed out)" : "");
	err = 0;
	if (proto_parse_status(head, &err) < 0)
		fail("malformed answer from the supervisor: '%s'", head);
	if (err && echo)
		fprintf(stderr, "%s: ", prog);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		last = buf[n - 1];
		sbuf_add(body, buf, (size_t)n);
		if (echo && fwrite(buf, 1, (size_t)n, err ? stderr : stdout) != (size_t)n)
			break;
	}
	close(fd);
	if (last != '\n' && echo)
		fputc('\n', err ? stderr : stdout);
	return err;
}

/* The mount's status, parsed; fails (exits) when it cannot be had. */
struct json *
status_get(const struct hcow_mount *m)
{
	struct sbuf body = SBUF_INIT;
	struct json *s;
	int err = ask(m, "json status", REPLY_TIMEOUT_S, &body, 0);

	if (err)
		fail("status refused: %s", sbuf_str(&body));
	if (!(s = json_parse(sbuf_str(&body))))
		fail("malformed status from the supervisor of %s", m->mountpoint);
	sbuf_release(&body);
	return s;
}

