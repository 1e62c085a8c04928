/*
 * hcowctl: the command line of hcowfs.  Finds the mount in
 * /proc/self/mountinfo (never touching the FUSE mount itself, so it works
 * while a worker hangs), talks to its supervisor over the control socket
 * (proto.h), and prints the answer.
 *
 * Exit status: 0 done, 1 refused or failed (message on stderr), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mounts.h"
#include "names.h"
#include "proto.h"

#define REPLY_TIMEOUT_S	150

static const char *prog = "hcowctl";

static void
usage(FILE *f, int code)
{
	fprintf(f,
	    "usage: hcowctl [-m MOUNTPOINT] COMMAND [ARGS]\n"
	    "\n"
	    "  create NAME --template TEMPLATE [--size SIZE]   clone a template into a new disk\n"
	    "  delete NAME                                    delete a disk (its data goes when\n"
	    "                                                 the last open file closes)\n"
	    "  list [--json]                                  the disks\n"
	    "  status [--json]                                supervisor, workers, faults, disks\n"
	    "  restart                                        replace the worker (e.g. after an\n"
	    "                                                 upgrade) without disturbing I/O\n"
	    "  debug fault crash|hang|slow|none [--op OP] [--count N] [--ms MS]\n"
	    "                                                 make the worker fail (mounts with\n"
	    "                                                 -o fault_injection only); OP: any, read,\n"
	    "                                                 write, fsync, getattr, lookup, append\n"
	    "\n"
	    "  -m MOUNTPOINT  the hcowfs mount to use (needed when more than one is mounted)\n"
	    "  SIZE           bytes, or with a suffix K, M, G, T (powers of 1024): 20G\n"
	    "\n"
	    "Disk and template names: 1 to 200 characters of [A-Za-z0-9._+-], not starting with '.'.\n");
	exit(code);
}

static void __attribute__((format(printf, 1, 2), noreturn))
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

static void
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

/* Send one request line; print the answer.  Returns the exit status. */
static int
request(const struct hcow_mount *m, const char *line)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { REPLY_TIMEOUT_S, 0 };
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
	if (proto_write_all(fd, line, strlen(line)) < 0 || proto_write_all(fd, "\n", 1) < 0)
		fail("cannot send the request to %s: %s", sa.sun_path, strerror(errno));
	n = proto_read_line(fd, head, sizeof(head));
	if (n <= 0)
		fail("no answer from the supervisor of %s%s", m->mountpoint,
		    n == -EAGAIN ? " (timed out)" : "");
	if (proto_parse_status(head, &err) < 0)
		fail("malformed answer from the supervisor: '%s'", head);
	if (err)
		fprintf(stderr, "%s: ", prog);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		last = buf[n - 1];
		if (fwrite(buf, 1, (size_t)n, err ? stderr : stdout) != (size_t)n)
			break;
	}
	close(fd);
	if (last != '\n')
		fputc('\n', err ? stderr : stdout);
	return err ? 1 : 0;
}

static void
check_name(const char *what, const char *name)
{
	const char *why;

	if (name_check(name, &why) < 0)
		fail("invalid %s name '%s': %s", what, name, why);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "template", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "op", required_argument, NULL, 'o' },
		{ "count", required_argument, NULL, 'c' },
		{ "ms", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *mnt = NULL, *tmpl = NULL, *size_s = NULL, *cmd, *name = NULL, *kind = NULL;
	const char *fop = NULL, *fcount = NULL, *fms = NULL;
	char line[PROTO_LINE_MAX];
	struct hcow_mount m;
	uint64_t size = 0;
	int json = 0, opt;

	while ((opt = getopt_long(argc, argv, "m:t:s:jhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm': mnt = optarg; break;
		case 't': tmpl = optarg; break;
		case 's': size_s = optarg; break;
		case 'j': json = 1; break;
		case 'o': fop = optarg; break;
		case 'c': fcount = optarg; break;
		case 'M': fms = optarg; break;
		case 'h': usage(stdout, 0); break;
		case 'V': printf("hcowctl %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr, 2);
		}
	}
	if (optind >= argc)
		usage(stderr, 2);
	cmd = argv[optind++];
	if (optind < argc)
		name = argv[optind++];
	if (strcmp(cmd, "debug") == 0 && optind < argc)
		kind = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		usage(stderr, 2);
	}

	if (strcmp(cmd, "create") == 0) {
		unsigned char rnd[8];
		char token[17];
		if (!name || !tmpl) {
			fprintf(stderr, "%s: create needs a disk name and --template\n", prog);
			usage(stderr, 2);
		}
		check_name("disk", name);
		check_name("template", tmpl);
		if (size_s) {
			int rc = size_parse(size_s, &size);
			if (rc == -ERANGE || (rc == 0 && size > DISK_SIZE_MAX))
				fail("size '%s' is larger than the largest disk (256 TiB)", size_s);
			if (rc < 0 || size == 0)
				fail("invalid size '%s': expected bytes or a number with K, M, G or T", size_s);
		}
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			fail("getrandom: %s", strerror(errno));
		for (int i = 0; i < 8; i++)
			snprintf(token + 2 * i, 3, "%02x", rnd[i]);
		if (size)
			snprintf(line, sizeof(line), "%s create name=%s template=%s size=%llu token=%s",
			    json ? "json" : "text", name, tmpl, (unsigned long long)size, token);
		else
			snprintf(line, sizeof(line), "%s create name=%s template=%s token=%s",
			    json ? "json" : "text", name, tmpl, token);
	} else if (strcmp(cmd, "delete") == 0) {
		if (!name) {
			fprintf(stderr, "%s: delete needs a disk name\n", prog);
			usage(stderr, 2);
		}
		check_name("disk", name);
		snprintf(line, sizeof(line), "%s delete name=%s", json ? "json" : "text", name);
	} else if (strcmp(cmd, "list") == 0 || strcmp(cmd, "status") == 0) {
		if (name) {
			fprintf(stderr, "%s: %s takes no argument\n", prog, cmd);
			usage(stderr, 2);
		}
		snprintf(line, sizeof(line), "%s %s", json ? "json" : "text", cmd);
	} else if (strcmp(cmd, "restart") == 0) {
		if (name) {
			fprintf(stderr, "%s: restart takes no argument\n", prog);
			usage(stderr, 2);
		}
		snprintf(line, sizeof(line), "%s restart", json ? "json" : "text");
	} else if (strcmp(cmd, "debug") == 0) {
		int n;
		if (!name || strcmp(name, "fault") != 0 || !kind) {
			fprintf(stderr, "%s: debug needs: fault crash|hang|slow|none\n", prog);
			usage(stderr, 2);
		}
		n = snprintf(line, sizeof(line), "%s fault kind=%s", json ? "json" : "text", kind);
		for (const char *const *kv = (const char *const[]){ "op", fop, "count", fcount, "ms", fms, NULL };
		    *kv; kv += 2) {
			if (kv[1] && (strchr(kv[1], ' ') || !kv[1][0]))
				fail("invalid --%s '%s'", kv[0], kv[1]);
			if (kv[1])
				n += snprintf(line + n, sizeof(line) - (size_t)n, " %s=%s", kv[0], kv[1]);
		}
	} else {
		fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
		usage(stderr, 2);
	}
	if ((fop || fcount || fms) && strcmp(cmd, "debug") != 0) {
		fprintf(stderr, "%s: --op, --count and --ms are for debug fault\n", prog);
		usage(stderr, 2);
	}
	if ((tmpl || size_s) && strcmp(cmd, "create") != 0) {
		fprintf(stderr, "%s: --template and --size are for create\n", prog);
		usage(stderr, 2);
	}
	find_mount(mnt, &m);
	return request(&m, line);
}
