/*
 * tmplcmd: see tmplcmd.h.
 *
 * A local add is an atomic copy in: the bytes go to a hidden temp file in
 * the dir, are made durable, and get their name with linkat (which, unlike
 * rename, refuses a name that exists), then the dir is synced.  A pool add
 * is tmplpool_add's (name last, created exclusively).  Every failure is one
 * line on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "names.h"
#include "radosspec.h"
#include "tcache.h"
#include "template.h"
#include "ctlclient.h"
#include "tmplcmd.h"
#include "tmplpool.h"

#define TMPLCMD_OP_TIMEOUT_S	30	/* an operation of a cluster that went away fails */

struct tmplcmd {
	const char	*dir, *name, *cache;
	struct cluster_opts co;
	uint64_t	 cache_size;
	int		 json;
	struct cluster	*cluster;
	struct tmplpool	*pool;
};

static void
tmplcmd_usage(FILE *f, int code)
{
	fprintf(f,
	    "usage: hcowctl template add FILE [--name NAME] [--dir TEMPLATE_DIR]\n"
	    "       hcowctl template list [--json] [--dir TEMPLATE_DIR] [--cache DIR]\n"
	    "       hcowctl template warm NAME [--dir rados:POOL[/NS]] [--cache DIR] [--cache-size SIZE]\n"
	    "  TEMPLATE_DIR: a directory, or rados:POOL[/NAMESPACE]; with a pool:\n"
	    "  --ceph-conf FILE, --ceph-id NAME  the cluster and client (default: Ceph's)\n"
	    "  Without --dir: the template dir of the mount (-m MOUNTPOINT, or the only one),\n"
	    "  and its template cache and cluster options where none are given.\n");
	exit(code);
}

/* Connect to the pool the dir names; exit 1 saying why if that fails. */
static void
tmplcmd_connect(struct tmplcmd *tc)
{
	struct rados_spec sp;
	const char *why;
	char err[512];

	if (rados_spec_parse(tc->dir, 0, &sp, &why) < 0) {
		fprintf(stderr, "hcowctl: template dir '%s': %s\n", tc->dir, why);
		exit(1);
	}
	tc->co.op_timeout_s = TMPLCMD_OP_TIMEOUT_S;
	if (cluster_connect(&tc->co, &tc->cluster, err, sizeof(err)) < 0 ||
	    tmplpool_open(tc->cluster, &sp, &tc->pool, err, sizeof(err)) < 0) {
		fprintf(stderr, "hcowctl: %s\n", err);
		exit(1);
	}
}

/* Progress of a long transfer, on a terminal only. */
static void
tmplcmd_progress(void *arg, uint64_t done, uint64_t total)
{
	const char *what = arg;

	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r%s: %" PRIu64 " of %" PRIu64 " MiB (%d%%)", what, done >> 20, total >> 20,
	    total ? (int)(done * 100 / total) : 100);
	if (done == total)
		fputc('\n', stderr);
}

/* Copy fd into a new file name of local dir: temp file, fsync, link (no replace), dir fsync. */
static int
tmplcmd_add_local(struct tmplcmd *tc, int fd)
{
	char tmp[300];
	int dfd, out, rc = 1;
	ssize_t n;

	if ((dfd = open(tc->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "hcowctl: template dir '%s': %s\n", tc->dir, strerror(errno));
		return 1;
	}
	if (faccessat(dfd, tc->name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		fprintf(stderr, "hcowctl: template '%s' already exists in %s\n", tc->name, tc->dir);
		close(dfd);
		return 1;
	}
	snprintf(tmp, sizeof(tmp), ".%s.adding.%ld", tc->name, (long)getpid());
	if ((out = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		fprintf(stderr, "hcowctl: template dir '%s': %s\n", tc->dir, strerror(errno));
		close(dfd);
		return 1;
	}
	while ((n = copy_file_range(fd, NULL, out, NULL, 1 << 30, 0)) > 0)
		;
	if (n < 0 || fsync(out) < 0)
		fprintf(stderr, "hcowctl: cannot copy into %s: %s\n", tc->dir, strerror(errno));
	else if (linkat(dfd, tmp, dfd, tc->name, 0) < 0)
		fprintf(stderr, "hcowctl: template '%s'%s%s\n", tc->name,
		    errno == EEXIST ? " already exists in " : ": ",
		    errno == EEXIST ? tc->dir : strerror(errno));
	else
		rc = 0;
	close(out);
	unlinkat(dfd, tmp, 0);
	if (rc == 0 && fsync(dfd) < 0) {
		fprintf(stderr, "hcowctl: cannot sync %s: %s\n", tc->dir, strerror(errno));
		rc = 1;
	}
	close(dfd);
	return rc;
}

/* template add FILE */
static int
tmplcmd_add(struct tmplcmd *tc, const char *file)
{
	char err[512], *copy = strdup(file);
	const char *why;
	struct stat sb;
	int fd, rc;

	if (!tc->name)
		tc->name = copy ? basename(copy) : file;
	if (name_check(tc->name, &why) < 0) {
		fprintf(stderr, "hcowctl: template name '%s': %s\n", tc->name, why);
		return 1;
	}
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
		fprintf(stderr, "hcowctl: '%s': %s\n", file, strerror(errno));
		return 1;
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr, "hcowctl: '%s': not a regular file\n", file);
		close(fd);
		return 1;
	}
	if (!rados_spec_is(tc->dir)) {
		rc = tmplcmd_add_local(tc, fd);
	} else {
		tmplcmd_connect(tc);
		rc = tmplpool_add(tc->pool, fd, tc->name, tmplcmd_progress, "adding", err,
		    sizeof(err)) < 0;
		if (rc)
			fprintf(stderr, "hcowctl: %s\n", err);
	}
	close(fd);
	free(copy);
	return rc;
}

/* One template of a pool, as template list prints it (tmplpool_each callback). */
static int
tmplcmd_list_one(const struct tmplpool_entry *e, void *arg)
{
	struct tmplcmd *tc = arg;
	uint64_t cached = tc->cache ? tcache_bytes_of(tc->cache, e->hash) : 0;

	if (tc->json)
		printf("{\"name\":\"%s\",\"size\":%" PRIu64 ",\"sha256\":\"%s\",\"cached\":%" PRIu64 "}",
		    e->name, e->size, e->hash, cached);
	else
		printf("%-32s %14" PRIu64 " %s %14" PRIu64 "\n", e->name, e->size, e->hash, cached);
	return 0;
}

static int first_entry;

/* Print the separator of a JSON list before every entry but the first. */
static int
tmplcmd_list_json(const struct tmplpool_entry *e, void *arg)
{
	if (!first_entry)
		putchar(',');
	first_entry = 0;
	return tmplcmd_list_one(e, arg);
}

/* template list: the pool's templates, or a local dir's files (no hash: not read). */
static int
tmplcmd_list(struct tmplcmd *tc)
{
	char err[512] = "";
	int rc;

	if (!rados_spec_is(tc->dir)) {
		DIR *d = opendir(tc->dir);
		struct dirent *de;
		const char *why;
		if (!d) {
			fprintf(stderr, "hcowctl: template dir '%s': %s\n", tc->dir, strerror(errno));
			return 1;
		}
		first_entry = 1;
		if (tc->json)
			putchar('[');
		while ((de = readdir(d)) != NULL) {
			struct tmplpool_entry e = { .hash = "" };
			struct stat sb;
			if (name_check(de->d_name, &why) < 0 || fstatat(dirfd(d), de->d_name, &sb, 0) < 0 ||
			    !S_ISREG(sb.st_mode))
				continue;
			snprintf(e.name, sizeof(e.name), "%s", de->d_name);
			e.size = (uint64_t)sb.st_size;
			(tc->json ? tmplcmd_list_json : tmplcmd_list_one)(&e, tc);
		}
		closedir(d);
		if (tc->json)
			puts("]");
		return 0;
	}
	tmplcmd_connect(tc);
	first_entry = 1;
	if (tc->json)
		putchar('[');
	else
		printf("%-32s %14s %-64s %14s\n", "NAME", "SIZE", "SHA256", "CACHED");
	rc = tmplpool_each(tc->pool, tc->json ? tmplcmd_list_json : tmplcmd_list_one, tc, err,
	    sizeof(err));
	if (tc->json)
		puts("]");
	if (rc < 0)
		fprintf(stderr, "hcowctl: %s\n", err);
	return rc < 0;
}

/* template warm NAME: fetch every chunk not in the cache dir yet. */
static int
tmplcmd_warm(struct tmplcmd *tc, const char *name)
{
	struct tmplpool_entry e;
	struct tcache_file *f = NULL;
	struct tcache *c = NULL;
	uint32_t *sums = NULL;
	char err[512];
	uint64_t n;
	int rc = 0;

	if (!rados_spec_is(tc->dir) || !tc->cache) {
		fprintf(stderr, "hcowctl: template warm needs --dir rados:POOL[/NS] and --cache DIR\n");
		return 2;
	}
	tmplcmd_connect(tc);
	if (tmplpool_stat(tc->pool, name, &e, err, sizeof(err)) < 0 ||
	    tmplpool_sums(tc->pool, &e, &sums, err, sizeof(err)) < 0 ||
	    tcache_open(tc->cache, tc->cache_size, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "hcowctl: %s\n", err);
		free(sums);
		return 1;
	}
	if ((rc = tcache_file_open(c, tc->pool, e.hash, e.size, sums, &f)) < 0) {
		fprintf(stderr, "hcowctl: %s\n", strerror(-rc));
		goto out;
	}
	n = TEMPLATE_CHUNKS(e.size);
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		tmplcmd_progress("warming", i * TEMPLATE_CHUNK, e.size);
		if ((rc = tcache_fill(f, i)) < 0)
			fprintf(stderr, "hcowctl: template '%s': cannot fetch chunk %" PRIu64 ": %s\n",
			    name, i, strerror(-rc));
	}
	if (rc == 0)
		tmplcmd_progress("warming", e.size, e.size);
out:
	tcache_file_close(f);
	tcache_close(c);
	free(sums);
	return rc < 0;
}

/*
 * No --dir: the mount's own (-m, or the only hcowfs mount), and with it its
 * template cache and cluster options, where the command line gave none.
 * The status the strings point into, for the caller to free.
 */
static struct json *
tmplcmd_from_mount(struct tmplcmd *tc, const char *mnt)
{
	struct hcow_mount m;
	struct json *st;
	const char *v;

	find_mount(mnt, &m);
	st = status_get(&m);
	tc->dir = json_str(st, "templates");
	if (!tc->cache && (v = json_str(st, "template_cache")) && *v)
		tc->cache = v;
	if (!tc->co.conf && (v = json_str(st, "ceph_conf")) && *v)
		tc->co.conf = v;
	if (!tc->co.id && (v = json_str(st, "ceph_id")) && *v)
		tc->co.id = v;
	return st;
}

int
tmplcmd_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "cache", required_argument, NULL, 'c' },
		{ "cache-size", required_argument, NULL, 'S' },
		{ "ceph-conf", required_argument, NULL, 'C' },
		{ "ceph-id", required_argument, NULL, 'I' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct tmplcmd tc = { 0 };
	struct json *st = NULL;
	const char *mnt = NULL;
	const char *verb, *cache_size = NULL;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "hjm:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm': mnt = optarg; break;
		case 'd': tc.dir = optarg; break;
		case 'n': tc.name = optarg; break;
		case 'c': tc.cache = optarg; break;
		case 'S': cache_size = optarg; break;	/* checked after --help */
		case 'C': tc.co.conf = optarg; break;
		case 'I': tc.co.id = optarg; break;
		case 'j': tc.json = 1; break;
		case 'h': tmplcmd_usage(stdout, 0); break;
		default: tmplcmd_usage(stderr, 2);
		}
	}
	if (optind >= argc)
		tmplcmd_usage(stderr, 2);
	if (cache_size && size_parse(cache_size, &tc.cache_size) < 0) {
		fprintf(stderr, "hcowctl: --cache-size %s: not a size\n", cache_size);
		return 2;
	}
	verb = argv[optind++];
	if (!tc.dir && (mnt || mounts_find(NULL, NULL, 0) > 0))
		st = tmplcmd_from_mount(&tc, mnt);
	if (!tc.dir) {
		fprintf(stderr, "hcowctl: template %s needs --dir TEMPLATE_DIR (or an hcowfs mount, "
		    "-m MOUNTPOINT, whose template dir it takes)\n", verb);
		return 2;
	}
	if (strcmp(verb, "add") == 0 && optind + 1 == argc)
		rc = tmplcmd_add(&tc, argv[optind]);
	else if (strcmp(verb, "list") == 0 && optind == argc)
		rc = tmplcmd_list(&tc);
	else if (strcmp(verb, "warm") == 0 && optind + 1 == argc)
		rc = tmplcmd_warm(&tc, argv[optind]);
	else
		tmplcmd_usage(stderr, 2);
	tmplpool_close(tc.pool);
	cluster_close(tc.cluster);
	json_free(st);
	return rc;
}
