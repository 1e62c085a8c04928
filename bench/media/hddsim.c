/*
 * hddsim: a FUSE file system whose files are modelled block devices, for
 * bench/media/media to put loop devices and ext4 on.
 *
 *   MNT/hdd.img   the 7200 rpm disk (hddmodel.c), hdd_size bytes
 *   MNT/ssd.img   the SATA SSD, ssd_size bytes (absent when 0)
 *   MNT/stats     counters of both, key=value lines, read at any time
 *   MNT/ctl       write commands: "reset" (zero the counters), "wcache=0|1",
 *                 "wcache_mb=N", "timing=0|1" (0: no delays, for set-up),
 *                 "trace=PATH" (append a line per request), "trace=" (stop),
 *                 "mark=NAME" (a line "us mark NAME" in the trace: phases)
 *
 * Each image's data lives in a sparse file in backing=DIR (tmpfs), created
 * at start and unlinked at once, so it goes when hddsim exits.  Images are
 * opened direct_io: every request the loop device issues arrives here as
 * issued, is copied to or from the backing file, then waits for what the
 * model says it costs.  An fsync of an image (the loop device's cache
 * flush) drains the disk's write cache.
 *
 * Usage: hddsim MNT -o backing=DIR,hdd_size=BYTES[,ssd_size=BYTES]
 *        [,wcache=0|1][,pidfile=FILE][,trace=FILE]   (daemonizes unless -f)
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hddmodel.h"

enum { INO_ROOT = 1, INO_HDD, INO_SSD, INO_STATS, INO_CTL, INO_MAX };

static const char *const names[INO_MAX] = {
	[INO_HDD] = "hdd.img", [INO_SSD] = "ssd.img", [INO_STATS] = "stats", [INO_CTL] = "ctl",
};

static struct {
	char *backing, *pidfile, *trace, *hdd_size_s, *ssd_size_s;
	int wcache;
	uint64_t hdd_size, ssd_size;
	int hdd_fd, ssd_fd;
	struct hdd *hdd;
	struct ssd *ssd;
} sim = { .wcache = 1, .hdd_fd = -1, .ssd_fd = -1 };

static const struct fuse_opt sim_opts[] = {
	{ "backing=%s", offsetof(__typeof__(sim), backing), 0 },
	{ "pidfile=%s", offsetof(__typeof__(sim), pidfile), 0 },
	{ "trace=%s", offsetof(__typeof__(sim), trace), 0 },
	{ "hdd_size=%s", offsetof(__typeof__(sim), hdd_size_s), 0 },
	{ "ssd_size=%s", offsetof(__typeof__(sim), ssd_size_s), 0 },
	{ "wcache=%d", offsetof(__typeof__(sim), wcache), 0 },
	FUSE_OPT_END
};

static int exists(fuse_ino_t ino)
{
	return ino == INO_ROOT || (ino > INO_ROOT && ino < INO_MAX && (ino != INO_SSD || sim.ssd_size));
}

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_nlink = 1;
	if (ino == INO_ROOT) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return;
	}
	st->st_mode = S_IFREG | (ino == INO_STATS ? 0444 : ino == INO_CTL ? 0200 : 0600);
	st->st_size = ino == INO_HDD ? (off_t)sim.hdd_size : ino == INO_SSD ? (off_t)sim.ssd_size : 4096;
	st->st_blocks = st->st_size / 512;
}

static void sim_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = 1 << 20;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
}

static void sim_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	for (fuse_ino_t ino = INO_HDD; ino < INO_MAX; ino++) {
		if (parent == INO_ROOT && exists(ino) && strcmp(name, names[ino]) == 0) {
			memset(&e, 0, sizeof(e));
			e.ino = ino;
			fill_attr(ino, &e.attr);
			fuse_reply_entry(req, &e);
			return;
		}
	}
	fuse_reply_err(req, ENOENT);
}

static void sim_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	if (!exists(ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, 0);
}

/* Sizes are fixed: a truncate to the current size (O_TRUNC on ctl) is all that passes. */
static void sim_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	sim_getattr(req, ino, fi);
}

static void sim_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	char buf[1024];
	size_t n = 0;
	struct stat st;

	if (ino != INO_ROOT) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (fuse_ino_t i = INO_HDD; i < INO_MAX; i++) {
		size_t len;
		if ((off_t)i <= off || !exists(i))
			continue;
		fill_attr(i, &st);
		len = fuse_add_direntry(req, buf + n, sizeof(buf) - n, names[i], &st, i);
		if (n + len > size || n + len > sizeof(buf))
			break;
		n += len;
	}
	fuse_reply_buf(req, buf, n);
}

static void sim_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!exists(ino) || ino == INO_ROOT) {
		fuse_reply_err(req, ino == INO_ROOT ? EISDIR : ENOENT);
		return;
	}
	fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

static void data_io(fuse_ino_t ino, enum media_op op, uint64_t off, uint64_t len)
{
	if (ino == INO_HDD)
		hdd_io(sim.hdd, op, off, len);
	else
		ssd_io(sim.ssd, op, off, len);
}

static void sim_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	char *buf;
	ssize_t n;

	if (ino == INO_STATS) {
		char text[4096];
		int len = hdd_format_stats(sim.hdd, text, sizeof(text));
		if (sim.ssd && len >= 0 && (size_t)len < sizeof(text))
			len += ssd_format_stats(sim.ssd, text + len, sizeof(text) - len);
		if (len < 0)
			len = 0;
		if ((size_t)len > sizeof(text) - 1)
			len = sizeof(text) - 1;
		fuse_reply_buf(req, off < len ? text + off : NULL,
			       off < len ? ((size_t)(len - off) < size ? (size_t)(len - off) : size) : 0);
		return;
	}
	if (ino != INO_HDD && ino != INO_SSD) {
		fuse_reply_err(req, EBADF);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pread(ino == INO_HDD ? sim.hdd_fd : sim.ssd_fd, buf, size, off);
	if (n < 0) {
		fuse_reply_err(req, errno);
	} else {
		data_io(ino, MEDIA_READ, off, n);
		fuse_reply_buf(req, buf, n);
	}
	free(buf);
}

/* One ctl command; returns 0 or an errno. */
static int ctl_command(char *cmd)
{
	char *v = strchr(cmd, '=');

	if (strcmp(cmd, "reset") == 0) {
		hdd_reset_stats(sim.hdd);
		if (sim.ssd)
			ssd_reset_stats(sim.ssd);
		return 0;
	}
	if (!v)
		return EINVAL;
	*v++ = '\0';
	if (strcmp(cmd, "wcache") == 0)
		hdd_set_wcache(sim.hdd, atoi(v) != 0, 0);
	else if (strcmp(cmd, "wcache_mb") == 0 && atoi(v) > 0)
		hdd_set_wcache(sim.hdd, 1, (uint64_t)atoi(v) << 20);
	else if (strcmp(cmd, "timing") == 0) {
		hdd_set_timing(sim.hdd, atoi(v) != 0);
		if (sim.ssd)
			ssd_set_timing(sim.ssd, atoi(v) != 0);
	} else if (strcmp(cmd, "trace") == 0) {
		FILE *f = NULL;
		if (*v && !(f = fopen(v, "a")))
			return errno;
		media_set_trace(f);
	} else if (strcmp(cmd, "mark") == 0)
		media_trace_mark(v);
	else
		return EINVAL;
	return 0;
}

static void sim_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	ssize_t n;

	if (ino == INO_CTL) {
		char text[1024], *save, *cmd;
		int err = 0;
		if (size >= sizeof(text)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		memcpy(text, buf, size);
		text[size] = '\0';
		for (cmd = strtok_r(text, " \n", &save); cmd && !err; cmd = strtok_r(NULL, " \n", &save))
			err = ctl_command(cmd);
		if (err)
			fuse_reply_err(req, err);
		else
			fuse_reply_write(req, size);
		return;
	}
	if (ino != INO_HDD && ino != INO_SSD) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if ((uint64_t)off + size > (ino == INO_HDD ? sim.hdd_size : sim.ssd_size)) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	n = pwrite(ino == INO_HDD ? sim.hdd_fd : sim.ssd_fd, buf, size, off);
	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	data_io(ino, MEDIA_WRITE, off, n);
	fuse_reply_write(req, n);
}

static void sim_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	if (ino == INO_HDD)
		hdd_flush(sim.hdd);
	else if (ino == INO_SSD)
		ssd_flush(sim.ssd);
	fuse_reply_err(req, 0);
}

static void sim_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops sim_ops = {
	.init = sim_init,
	.lookup = sim_lookup,
	.getattr = sim_getattr,
	.setattr = sim_setattr,
	.readdir = sim_readdir,
	.open = sim_open,
	.read = sim_read,
	.write = sim_write,
	.fsync = sim_fsync,
	.flush = sim_flush,
};

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s)
		return -1;
	v = strtoull(s, &end, 0);
	switch (*end) {
	case 'G': case 'g': v <<= 30; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'K': case 'k': v <<= 10; end++; break;
	default: break;
	}
	if (*end || v == 0 || v % 4096)
		return -1;
	*out = v;
	return 0;
}

/* Creates a sparse backing file of size bytes and unlinks it. */
static int backing_file(const char *name, uint64_t size)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", sim.backing, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
		perror(path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	unlink(path);
	return fd;
}

/* The models' threads must start after fuse_daemonize() forks. */
static int start_models(void)
{
	struct hdd_params hp;
	struct ssd_params sp;

	hdd_default_params(&hp);
	hp.wcache_on = sim.wcache;
	sim.hdd = hdd_create(&hp, sim.hdd_size);
	if (!sim.hdd)
		return -1;
	if (sim.ssd_size) {
		ssd_default_params(&sp);
		sim.ssd = ssd_create(&sp);
		if (!sim.ssd)
			return -1;
	}
	return 0;
}

static int setup_devices(void)
{

	if (!sim.backing || parse_size(sim.hdd_size_s, &sim.hdd_size) != 0 ||
	    (sim.ssd_size_s && strcmp(sim.ssd_size_s, "0") != 0 &&
	     parse_size(sim.ssd_size_s, &sim.ssd_size) != 0)) {
		fprintf(stderr, "hddsim: needs -o backing=DIR,hdd_size=N[GMK][,ssd_size=N] "
			"(multiples of 4096)\n");
		return -1;
	}
	sim.hdd_fd = backing_file("hdd.img", sim.hdd_size);
	if (sim.hdd_fd < 0)
		return -1;
	if (sim.ssd_size) {
		sim.ssd_fd = backing_file("ssd.img", sim.ssd_size);
		if (sim.ssd_fd < 0)
			return -1;
	}
	if (sim.trace) {
		FILE *f = fopen(sim.trace, "a");
		if (!f) {
			perror(sim.trace);
			return -1;
		}
		media_set_trace(f);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	int ret = 1;

	if (fuse_parse_cmdline(&args, &opts) != 0 || fuse_opt_parse(&args, &sim, sim_opts, NULL) != 0)
		return 1;
	if (!opts.mountpoint) {
		fprintf(stderr, "usage: %s MNT -o backing=DIR,hdd_size=N[,ssd_size=N]"
			"[,wcache=0|1][,pidfile=F][,trace=F] [-f]\n", argv[0]);
		goto out;
	}
	if (setup_devices() != 0)
		goto out;
	se = fuse_session_new(&args, &sim_ops, sizeof(sim_ops), NULL);
	if (!se || fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_handlers;
	if (fuse_daemonize(opts.foreground) != 0 || start_models() != 0)
		goto out_unmount;
	if (sim.pidfile) {
		FILE *f = fopen(sim.pidfile, "w");
		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
	}
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto out_unmount;
	fuse_loop_cfg_set_max_threads(cfg, 64);
	fuse_loop_cfg_set_idle_threads(cfg, 16);
	ret = fuse_session_loop_mt(se, cfg) != 0;
	fuse_loop_cfg_destroy(cfg);
out_unmount:
	fuse_session_unmount(se);
out_handlers:
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	if (sim.hdd)
		hdd_destroy(sim.hdd);
	if (sim.ssd)
		ssd_destroy(sim.ssd);
	media_set_trace(NULL);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
