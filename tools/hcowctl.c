/*
 * hcowctl: the command line of hcowfs.  Finds the mount and talks to its
 * supervisor through ctlclient.c (never touching the FUSE mount itself, so
 * it works while a worker hangs), and prints the answer; the data movers
 * (export, import, promote) are lifecycle.c's.
 *
 * `hcowctl check DATADIR` is the one command that works without a mount:
 * it opens the store itself, read-only (with --repair, read-write first to
 * let the open cut what is safe to cut), under the data dir's lock so no
 * mount can start meanwhile.
 *
 * Exit status: 0 done (check: no problem found), 1 refused or failed, or
 * problems found (message on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctlclient.h"
#include "datalock.h"
#include "hlog.h"
#include "lifecycle.h"
#include "metrics.h"
#include "mounts.h"
#include "names.h"
#include "proto.h"
#include "sbuf.h"
#include "store.h"
#include "tmplcmd.h"

#define CHECK_TIMEOUT_S	86400	/* a check reads the whole log */


static void
usage(FILE *f, int code)
{
	fprintf(f,
	    "usage: hcowctl [-m MOUNTPOINT] COMMAND [ARGS]\n"
	    "\n"
	    "  create NAME --template TEMPLATE [--size SIZE]   clone a template into a new disk\n"
	    "  create NAME --size SIZE                        a new disk of no template (zeros)\n"
	    "  delete NAME                                    delete a disk (its data goes when\n"
	    "                                                 the last open file closes); a disk\n"
	    "                                                 with snapshots is refused\n"
	    "  delete DISK@SNAP                               delete a snapshot\n"
	    "  snapshot DISK SNAP                             a read-only point in time, DISK@SNAP,\n"
	    "                                                 readable at MOUNT/.snapshots/DISK@SNAP\n"
	    "  snapshots [DISK] [--json]                      the snapshots (of DISK): name, time,\n"
	    "                                                 size, bytes only the snapshot holds\n"
	    "  clone DISK[@SNAP] NEWDISK                      a new writable disk from a disk or a\n"
	    "                                                 snapshot, sharing its data\n"
	    "  rollback DISK SNAP                             make DISK as it was at SNAP (refused\n"
	    "                                                 while DISK is open)\n"
	    "  list [--json]                                  the disks\n"
	    "  status [--json]                                supervisor, workers, faults, disks\n"
	    "                                                 and their I/O counters\n"
	    "  metrics                                        the status in the Prometheus text\n"
	    "                                                 format, for a scraper\n"
	    "  top [-n COUNT] [INTERVAL]                      which disks are busy: per-disk rates\n"
	    "                                                 every INTERVAL seconds (default 2);\n"
	    "                                                 q or Ctrl-C quits, or after COUNT\n"
	    "  export DISK[@SNAP] OUT.qcow2                   a qcow2 overlay of the disk's template\n"
	    "                                                 holding what the disk changed\n"
	    "  import IN.qcow2 NAME --template TEMPLATE       a new disk from a qcow2 overlay of\n"
	    "                                                 that template\n"
	    "  promote DISK[@SNAP] NEWTEMPLATE                write the disk as a new template file\n"
	    "                                                 in the template dir\n"
	    "  move DISK --to MOUNTPOINT                      move the disk to the store of another\n"
	    "                                                 mount, copying only its own data\n"
	    "  checkpoint                                     write a checkpoint now: the catalog\n"
	    "                                                 names every write so far, and the\n"
	    "                                                 next mount replays almost nothing\n"
	    "  restart                                        replace the worker (e.g. after an\n"
	    "                                                 upgrade) without disturbing I/O\n"
	    "  check                                          verify the mounted store: catalog,\n"
	    "                                                 templates, every log record in use\n"
	    "  check [--repair] [--templates DIR] DATADIR     the same for an unmounted data dir;\n"
	    "                                                 --repair cuts a torn log tail and\n"
	    "                                                 says what it cannot fix\n"
	    "  template add FILE [--name NAME] --dir TEMPLATE_DIR   publish a template (a\n"
	    "                                                 local dir or rados:POOL[/NS])\n"
	    "  template list [--json] --dir DIR [--cache C]   name, size, content hash, bytes in\n"
	    "                                                 this host's cache C\n"
	    "  template warm NAME --dir rados:P --cache C [--cache-size SIZE]\n"
	    "                                                 fill this host's template cache\n"
	    "  template ... [--ceph-conf FILE] [--ceph-id NAME]  the cluster and the client\n"
	    "  debug fault crash|hang|slow|none [--op OP] [--count N] [--ms MS]\n"
	    "                                                 make the worker fail (mounts with\n"
	    "                                                 -o fault_injection only); OP: any, read,\n"
	    "                                                 write, fsync, getattr, lookup, append,\n"
	    "                                                 control (a control request),\n"
	    "                                                 copy-logged, copy-synced, copy-row\n"
	    "                                                 (the steps of a snapshot or clone)\n"
	    "\n"
	    "  -m MOUNTPOINT  the hcowfs mount to use (needed when more than one is mounted)\n"
	    "  -n COUNT       top: stop after COUNT tables\n"
	    "  SIZE           bytes, or with a suffix K, M, G, T (powers of 1024): 20G\n"
	    "\n"
	    "Disk and template names: 1 to 200 characters of [A-Za-z0-9._+-_], not starting with '.';\n"
	    "a disk in a directory of the mount is named by its path (images/100/vm-100-disk-0.raw).\n");
	exit(code);
}

/* A check report names each problem on a line of its own. */
static int
report_has_problems(const char *report)
{
	return strncmp(report, "PROBLEM: ", 9) == 0 || strstr(report, "\nPROBLEM: ") != NULL;
}

/*
 * Send one request line; print the answer.  Returns the exit status (a
 * check's report with problems in it: 1).
 */
static int
request(const struct hcow_mount *m, const char *line, int wait_s)
{
	struct sbuf body = SBUF_INIT;
	int err = ask(m, line, wait_s, &body, 1);
	int problems = report_has_problems(sbuf_str(&body));

	sbuf_release(&body);
	return err || problems ? 1 : 0;
}

/* hcowctl metrics: the status in the Prometheus text format. */
static int
metrics(const struct hcow_mount *m)
{
	struct json *s = status_get(m);
	struct sbuf out = SBUF_INIT;

	metrics_render(s, &out);
	json_free(s);
	if (out.oom)
		fail("out of memory");
	fputs(sbuf_str(&out), stdout);
	sbuf_release(&out);
	return fflush(stdout) == 0 ? 0 : 1;
}

static struct termios top_saved;

/* Give the terminal back as top found it. */
static void
top_restore(void)
{
	tcsetattr(STDIN_FILENO, TCSANOW, &top_saved);
}

static void
top_signal(int sig)
{
	(void)sig;
	top_restore();
	_exit(0);
}

/*
 * Wait `secs` for a key; 1 if it was q (or input ended on a terminal).
 * Without a terminal just sleep.
 */
static int
top_wait(double secs, int tty)
{
	struct timespec end, now;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)secs;
	end.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	for (;;) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		long ms;
		char c;
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (long)(end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0)
			return 0;
		if (!tty) {
			poll(NULL, 0, (int)ms);
			continue;
		}
		if (poll(&p, 1, (int)ms) > 0) {
			if (read(STDIN_FILENO, &c, 1) <= 0 || c == 'q' || c == 'Q')
				return 1;
		}
	}
}

/*
 * hcowctl top: per-disk rates from two statuses `secs` apart, count tables
 * (0: until q or Ctrl-C); in place on a terminal, plain lines when piped.
 */
static int
top(const struct hcow_mount *m, double secs, long count)
{
	int tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	struct json *prev = status_get(m), *cur;
	struct sbuf out = SBUF_INIT;

	if (tty && tcgetattr(STDIN_FILENO, &top_saved) == 0) {
		struct termios raw = top_saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		atexit(top_restore);
		signal(SIGINT, top_signal);
		signal(SIGTERM, top_signal);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	} else {
		tty = 0;
	}
	for (long i = 0; count == 0 || i < count; i++) {
		char when[32];
		time_t t;
		if (top_wait(secs, tty))
			break;
		cur = status_get(m);
		t = time(NULL);
		strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
		sbuf_reset(&out);
		if (tty)
			sbuf_printf(&out, "\033[H\033[2Jhcowfs top  %s  every %g s  (q quits)  %s\n\n",
			    m->mountpoint, secs, when);
		else
			sbuf_printf(&out, "%s%s  %s  per second over %g s\n", i ? "\n" : "", when,
			    m->mountpoint, secs);
		metrics_top(prev, cur, secs, &out);
		json_free(prev);
		prev = cur;
		fputs(sbuf_str(&out), stdout);
		if (fflush(stdout) != 0)
			break;
	}
	json_free(prev);
	sbuf_release(&out);
	return 0;
}

/*
 * Offline check of DATADIR.  The lock keeps a mount from starting while we
 * look (and from racing a repair); a mounted data dir is checked live.
 */
static int
check_offline(const char *datadir, const char *tmpldir, int repair)
{
	struct store_opts o = { .datadir = datadir, .tmpldir = tmpldir };
	struct sbuf report = SBUF_INIT;
	struct store *st = NULL;
	char pid[32], mnt[PATH_MAX], err[1024] = "";
	int fd, rc;

	/* held across both opens below, so no mount starts between the repair and the check */
	if ((fd = datalock_take(datadir)) == -EWOULDBLOCK) {
		datalock_holder(datadir, pid, sizeof(pid), mnt, sizeof(mnt));
		fail("data dir '%s' is in use by a mount%s%s (supervisor pid %s); check it live with: "
		    "hcowctl -m %s check", datadir, mnt[0] ? " on " : "", mnt,
		    pid[0] ? pid : "unknown", mnt[0] ? mnt : "MOUNTPOINT");
	}
	if (fd < 0)
		fail("cannot lock data dir '%s': %s", datadir, strerror(-fd));
	o.lock_fd = fd;
	if (repair) {
		/* an ordinary open repairs what needs no decision; its log lines say what */
		o.purge_unlinked = 1;		/* tmpldir NULL: the one the last mount used */
		if ((rc = store_open(&o, &st, err, sizeof(err))) < 0) {
			printf("PROBLEM: cannot open the store to repair it: %s\n", err);
			printf("repair: nothing changed; this needs a decision (restore the named file "
			    "from a backup, or move the damaged part aside)\n");
			return 1;
		}
		rc = store_checkpoint(st);
		store_close(st);
		if (rc < 0)
			fail("repair: the checkpoint after repairing failed: %s", strerror(-rc));
		printf("repair: the store opened and was checkpointed; checking it again\n");
	}
	o.readonly = 1;
	o.purge_unlinked = 0;
	if ((rc = store_open(&o, &st, err, sizeof(err))) < 0) {
		printf("PROBLEM: cannot open the store: %s\n1 problem found\n", err);
		return 1;
	}
	rc = store_check(st, &report);
	store_close(st);
	fputs(sbuf_str(&report), stdout);
	sbuf_release(&report);
	close(fd);
	if (rc < 0)
		fail("check failed: %s", strerror(-rc));
	if (rc > 0 && repair)
		printf("repair could not fix the problems above: they need a decision (restore from "
		    "a backup, or delete the damaged disk)\n");
	return rc > 0 ? 1 : 0;
}

static void
check_name(const char *what, const char *name)
{
	const char *why;

	if (name_check(name, &why) < 0)
		fail("invalid %s name '%s': %s", what, name, why);
}

/* A disk's path: names joined by '/'. */
static void
check_path(const char *what, const char *path)
{
	const char *why;

	if (path_check(path, &why) < 0)
		fail("invalid %s name '%s': %s", what, path, why);
}

/* A disk, or DISK@SNAP. */
static void
check_full_name(const char *name)
{
	const char *why;

	if (full_name_check(name, &why) < 0)
		fail("invalid name '%s': %s", name, why);
}

/* The commands of two names (snapshot DISK SNAP, clone FROM NEW, rollback DISK SNAP, ...). */
static int
takes_two(const char *cmd)
{
	static const char *const two[] = { "snapshot", "clone", "rollback", "export", "import",
	    "promote" };

	for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++)
		if (strcmp(cmd, two[i]) == 0)
			return 1;
	return 0;
}

/* A token that makes a resent request idempotent (the worker matches it). */
static void
make_token(char token[17])
{
	unsigned char rnd[8];

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		fail("getrandom: %s", strerror(errno));
	for (int i = 0; i < 8; i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
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
		{ "repair", no_argument, NULL, 'r' },
		{ "templates", required_argument, NULL, 'T' },
		{ "to", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *mnt = NULL, *tmpl = NULL, *size_s = NULL, *cmd, *name = NULL, *kind = NULL;
	const char *arg2 = NULL;
	const char *fop = NULL, *fcount = NULL, *fms = NULL, *tmpldir = NULL, *dest = NULL;
	int repair = 0, wait_s = REPLY_TIMEOUT_S;
	const char *count_s = NULL;
	char line[PROTO_LINE_MAX];
	struct hcow_mount m;
	uint64_t size = 0;
	int json = 0, opt;

	signal(SIGPIPE, SIG_IGN);	/* a closed control socket is an error, not a silent death */
	if (argc > 1 && strcmp(argv[1], "template") == 0)
		return tmplcmd_main(argc - 1, argv + 1);	/* the template dir, not a mount */
	if (argc > 3 && strcmp(argv[1], "-m") == 0 && strcmp(argv[3], "template") == 0) {
		/* -m MOUNTPOINT template ...: the mount's template dir (as template -m MOUNTPOINT ...) */
		argv[3] = argv[2];
		argv[2] = "-m";
		argv[1] = "template";
		return tmplcmd_main(argc - 1, argv + 1);
	}
	while ((opt = getopt_long(argc, argv, "m:n:t:s:jhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm': mnt = optarg; break;
		case 'n': count_s = optarg; break;
		case 't': tmpl = optarg; break;
		case 's': size_s = optarg; break;
		case 'j': json = 1; break;
		case 'o': fop = optarg; break;
		case 'c': fcount = optarg; break;
		case 'M': fms = optarg; break;
		case 'r': repair = 1; break;
		case 'T': tmpldir = optarg; break;
		case 'D': dest = optarg; break;
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
	else if (takes_two(cmd) && optind < argc)
		arg2 = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		usage(stderr, 2);
	}

	if (takes_two(cmd) && (!name || !arg2)) {
		fprintf(stderr, "%s: %s needs two names\n", prog, cmd);
		usage(stderr, 2);
	}
	if (strcmp(cmd, "create") == 0) {
		char token[17];
		if (!name || (!tmpl && !size_s)) {
			fprintf(stderr, "%s: create needs a disk name and --template or --size\n", prog);
			usage(stderr, 2);
		}
		check_path("disk", name);
		if (tmpl)
			check_name("template", tmpl);
		if (size_s) {
			int rc = size_parse(size_s, &size);
			if (rc == -ERANGE || (rc == 0 && size > DISK_SIZE_MAX))
				fail("size '%s' is larger than the largest disk (256 TiB)", size_s);
			if (rc < 0 || size == 0)
				fail("invalid size '%s': expected bytes or a number with K, M, G or T", size_s);
		}
		make_token(token);
		int n = snprintf(line, sizeof(line), "%s create name=%s token=%s",
		    json ? "json" : "text", name, token);
		if (tmpl)
			n += snprintf(line + n, sizeof(line) - (size_t)n, " template=%s", tmpl);
		if (size)
			snprintf(line + n, sizeof(line) - (size_t)n, " size=%llu", (unsigned long long)size);
	} else if (strcmp(cmd, "delete") == 0) {
		if (!name) {
			fprintf(stderr, "%s: delete needs a disk name\n", prog);
			usage(stderr, 2);
		}
		check_full_name(name);
		snprintf(line, sizeof(line), "%s delete name=%s", json ? "json" : "text", name);
	} else if (strcmp(cmd, "snapshot") == 0 || strcmp(cmd, "clone") == 0) {
		char token[17];
		int snap = cmd[0] == 's';
		if (snap) {
			check_path("disk", name);
			check_name("snapshot", arg2);
		} else {
			check_full_name(name);
			check_path("disk", arg2);
		}
		make_token(token);
		snprintf(line, sizeof(line), snap ? "%s snapshot name=%s snap=%s token=%s" :
		    "%s clone from=%s name=%s token=%s", json ? "json" : "text", name, arg2, token);
	} else if (strcmp(cmd, "rollback") == 0) {
		check_path("disk", name);
		check_name("snapshot", arg2);
		snprintf(line, sizeof(line), "%s rollback name=%s snap=%s", json ? "json" : "text",
		    name, arg2);
	} else if (strcmp(cmd, "snapshots") == 0) {
		int n = snprintf(line, sizeof(line), "%s snapshots", json ? "json" : "text");
		if (name) {
			check_path("disk", name);
			snprintf(line + n, sizeof(line) - (size_t)n, " name=%s", name);
		}
	} else if (strcmp(cmd, "list") == 0 || strcmp(cmd, "status") == 0) {
		if (name) {
			fprintf(stderr, "%s: %s takes no argument\n", prog, cmd);
			usage(stderr, 2);
		}
		snprintf(line, sizeof(line), "%s %s", json ? "json" : "text", cmd);
	} else if (strcmp(cmd, "export") == 0 || strcmp(cmd, "import") == 0 ||
	    strcmp(cmd, "promote") == 0) {
		if (json || size_s || (tmpl != NULL) != (strcmp(cmd, "import") == 0)) {
			fprintf(stderr, "%s: usage: export DISK OUT.qcow2 | import IN.qcow2 NAME "
			    "--template TEMPLATE | promote DISK NEWTEMPLATE\n", prog);
			usage(stderr, 2);
		}
		find_mount(mnt, &m);
		if (strcmp(cmd, "export") == 0)
			return lifecycle_export(&m, name, arg2);
		if (strcmp(cmd, "import") == 0)
			return lifecycle_import(&m, name, arg2, tmpl);
		return lifecycle_promote(&m, name, arg2);
	} else if (strcmp(cmd, "move") == 0) {
		struct hcow_mount to;
		if (!name || !dest || json || size_s || tmpl) {
			fprintf(stderr, "%s: usage: move DISK --to MOUNTPOINT\n", prog);
			usage(stderr, 2);
		}
		find_mount(mnt, &m);
		find_mount(dest, &to);
		return lifecycle_move(&m, name, &to);
	} else if (strcmp(cmd, "metrics") == 0) {
		if (name || json) {
			fprintf(stderr, "%s: metrics takes no argument\n", prog);
			usage(stderr, 2);
		}
		find_mount(mnt, &m);
		return metrics(&m);
	} else if (strcmp(cmd, "top") == 0) {
		double secs = 2;
		long count = 0;
		char *end;
		if (name && (secs = strtod(name, &end), *end || !(secs >= 0.1 && secs <= 86400)))
			fail("invalid interval '%s': seconds, 0.1 to 86400", name);
		if (count_s && (count = strtol(count_s, &end, 10), *end || count < 1))
			fail("invalid -n '%s': a count of 1 or more", count_s);
		find_mount(mnt, &m);
		return top(&m, secs, count);
	} else if (strcmp(cmd, "restart") == 0 || strcmp(cmd, "checkpoint") == 0) {
		if (name) {
			fprintf(stderr, "%s: %s takes no argument\n", prog, cmd);
			usage(stderr, 2);
		}
		snprintf(line, sizeof(line), "%s %s", json ? "json" : "text", cmd);
	} else if (strcmp(cmd, "check") == 0) {
		if (name) {
			hlog_init("hcowctl", HLOG_WARN);
			hlog_plain(1);
			return check_offline(name, tmpldir, repair);
		}
		if (repair || tmpldir) {
			fprintf(stderr, "%s: --repair and --templates are for an unmounted data dir: "
			    "check [--repair] [--templates DIR] DATADIR\n", prog);
			usage(stderr, 2);
		}
		snprintf(line, sizeof(line), "%s check", json ? "json" : "text");
		wait_s = CHECK_TIMEOUT_S;
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
	if (count_s) {
		fprintf(stderr, "%s: -n is for top\n", prog);
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
	if (dest) {
		fprintf(stderr, "%s: --to is for move\n", prog);
		usage(stderr, 2);
	}
	if ((repair || tmpldir) && strcmp(cmd, "check") != 0) {
		fprintf(stderr, "%s: --repair and --templates are for check\n", prog);
		usage(stderr, 2);
	}
	find_mount(mnt, &m);
	return request(&m, line, wait_s);
}
