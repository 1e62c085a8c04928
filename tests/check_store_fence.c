/*
 * check_store_fence: one host serves a store in a cluster (fence.c,
 * store_cluster.c, catalog_ceph.c), on a real one-OSD cluster that
 * tests/t-store-fence.sh starts (CEPH_CONF names it).
 *
 * What must hold: a store made in the cluster keeps its catalog there; a
 * second host is refused, told who serves the store; a host that takes
 * over fences the first, whose I/O then fails with EIO and whose catalog
 * client can write nothing; a replacement worker of the same mount takes
 * over from a dead predecessor at once (its catalog lock too) and keeps the
 * local cache, which a host that was taken over from must not.  The lease
 * is renewed once a FENCE_RENEW_MS, not as fast as the cluster answers
 * (each renewal is a write the OSD commits).
 *
 * Each test uses its own store (a RADOS namespace named after the test and
 * the process), so tests never see each other's objects.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "fence.h"
#include "store_fixture.h"
#include "store_int.h"	/* st->fence, st->cache_trusted */

static struct cluster *cl;
static char spec[96];

/*
 * Name this test's store.  Connecting is separate (connect_here): a host
 * that runs in a child process must connect after the fork, not inherit a
 * connection, or the two would draw the same client nonce (librados's
 * random state is copied by fork) and fencing one would fence the other.
 */
static void
name_store(const char *test)
{
	snprintf(spec, sizeof(spec), "rados:vms/%s-%d", test, (int)getpid());
}

/* Connect this process to the test's cluster. */
static struct cluster *
connect_here(void)
{
	struct cluster_opts co = { .conf = getenv("CEPH_CONF") };
	struct cluster *c;
	char err[256];

	ck_assert_msg(co.conf, "CEPH_CONF is not set: run through tests/t-store-fence.sh");
	ck_assert_msg(cluster_connect(&co, &c, err, sizeof(err)) == 0, "%s", err);
	return c;
}

/* Options for host `who` (its holder string) with cache dir `cache`. */
static struct store_opts
host_opts(const char *cache, const char *who)
{
	struct store_opts o = opts();

	o.datadir = cache;
	o.cluster = cl;
	o.store_spec = spec;
	o.holder = who;
	return o;
}

/* A fresh cache dir for one host. */
static void
cache_dir(char *buf, size_t len)
{
	fixture_tmpdir(buf, len);
}

/* Open as host `who`, or fail with the error in err: the store, or NULL. */
static struct store *
host_open(const struct store_opts *o, int *rc, char *err, size_t errlen)
{
	struct store *st = NULL;

	*rc = store_open(o, &st, err, errlen);
	return *rc == 0 ? st : NULL;
}

/*
 * Another host: a child process with its own connection and store, driven
 * over two pipes.  A request is {op, id, off, seed}; the answer one int64
 * (a result, or -errno).  Ops: 'c' create disk vm1.img (answers its id),
 * 'w' write 4 KiB of seed's bytes at off and flush, 'r' read 4 KiB at off
 * (0 if it is seed's bytes), 'q' close the store and exit.
 */
struct host {
	pid_t	pid;
	int	req, ans;
};

struct host_req {
	char	 op;
	uint64_t id, off, seed;
};

/* The child's side: serve requests until 'q' or the pipe closes. */
static void
host_serve(const struct store_opts *o0, int req, int ans)
{
	struct store_opts o = *o0;
	struct host_req r;
	struct disk_attr a;
	char err[512], buf[4096], want[4096];
	struct store *st;
	int64_t res;
	int rc;

	cl = connect_here();
	o.cluster = cl;
	st = host_open(&o, &rc, err, sizeof(err));
	res = st ? 0 : rc;
	if (write(ans, &res, sizeof(res)) != sizeof(res) || !st)
		_exit(1);
	while (read(req, &r, sizeof(r)) == sizeof(r)) {
		switch (r.op) {
		case 'c':
			res = store_create(st, "vm1.img", "base.img", 0, NULL, &a, err, sizeof(err));
			res = res < 0 ? res : (int64_t)a.id;
			break;
		case 'w':
			fill(want, sizeof(want), r.seed);
			res = store_write(st, r.id, want, sizeof(want), r.off);
			res = res < 0 ? res : store_sync(st, r.id);
			break;
		case 'r':
			fill(want, sizeof(want), r.seed);
			res = store_read(st, r.id, buf, sizeof(buf), r.off);
			res = res < 0 ? res : memcmp(buf, want, sizeof(buf)) ? 1 : 0;
			break;
		default:
			store_close(st);
			_exit(0);
		}
		if (write(ans, &res, sizeof(res)) != sizeof(res))
			_exit(1);
	}
	_exit(0);
}

/* Start host h with options o; the answer to its open (0 or -errno). */
static int64_t
host_start(struct host *h, const struct store_opts *o)
{
	int req[2], ans[2];
	int64_t res;

	ck_assert_int_eq(pipe(req), 0);
	ck_assert_int_eq(pipe(ans), 0);
	h->pid = fork();
	ck_assert_int_ge(h->pid, 0);
	if (h->pid == 0) {
		close(req[1]);
		close(ans[0]);
		host_serve(o, req[0], ans[1]);
	}
	close(req[0]);
	close(ans[1]);
	h->req = req[1];
	h->ans = ans[0];
	ck_assert_int_eq(read(h->ans, &res, sizeof(res)), (int)sizeof(res));
	return res;
}

/* One request to host h; its answer. */
static int64_t
host_do(struct host *h, char op, uint64_t id, uint64_t off, uint64_t seed)
{
	struct host_req r = { op, id, off, seed };
	int64_t res;

	ck_assert_int_eq(write(h->req, &r, sizeof(r)), (int)sizeof(r));
	ck_assert_int_eq(read(h->ans, &res, sizeof(res)), (int)sizeof(res));
	return res;
}

/* End host h: a clean close ('q') or a SIGKILL. */
static void
host_end(struct host *h, int kill_it)
{
	struct host_req r = { 'q', 0, 0, 0 };
	int status;

	if (kill_it)
		kill(h->pid, SIGKILL);
	else
		ck_assert_int_eq(write(h->req, &r, sizeof(r)), (int)sizeof(r));
	ck_assert_int_eq(waitpid(h->pid, &status, 0), h->pid);
	close(h->req);
	close(h->ans);
}

START_TEST(test_a_store_made_in_the_cluster_keeps_its_catalog_there)
{
	char a[160], err[512], buf[4096], want[4096];
	struct store_opts o;
	struct store *st;
	uint64_t id;
	int rc;

	name_store("made");
	cl = connect_here();
	cache_dir(a, sizeof(a));
	o = host_opts(a, "host-a:/mnt (supervisor pid 1)");
	st = host_open(&o, &rc, err, sizeof(err));
	ck_assert_msg(st, "%s", err);
	ck_assert_ptr_nonnull(st->fence);
	id = mkdisk(st, "vm1.img", "base.img", 0);
	fill(want, sizeof(want), 7);
	ck_assert_int_eq(store_write(st, id, want, sizeof(want), 8192), (int)sizeof(want));
	ck_assert_int_eq(store_sync(st, id), 0);
	store_close(st);
	/* no catalog on this host: it is in the cluster */
	snprintf(buf, sizeof(buf), "%s/catalog.db", a);
	ck_assert(!exists(buf));
	st = host_open(&o, &rc, err, sizeof(err));
	ck_assert_msg(st, "%s", err);
	ck_assert_int_eq(st->cache_trusted, 1);
	ck_assert_int_eq(store_read(st, id, buf, sizeof(buf), 8192), (int)sizeof(buf));
	ck_assert_mem_eq(buf, want, sizeof(buf));
	store_close(st);
}
END_TEST

START_TEST(test_a_second_host_is_refused_and_told_who_serves_the_store)
{
	char a[160], b[160], err[512];
	struct store_opts oa, ob;
	struct store *st;
	struct host ha;
	int rc;

	name_store("refused");
	cache_dir(a, sizeof(a));
	cache_dir(b, sizeof(b));
	oa = host_opts(a, "host-a:/mnt/vms (supervisor pid 11)");
	ck_assert_int_eq(host_start(&ha, &oa), 0);
	cl = connect_here();
	ob = host_opts(b, "host-b:/mnt/vms (supervisor pid 22)");
	st = host_open(&ob, &rc, err, sizeof(err));
	ck_assert_ptr_null(st);
	ck_assert_int_eq(rc, -EBUSY);
	ck_assert_msg(contains(err, "host-a:/mnt/vms") && contains(err, "takeover"), "%s", err);
	/* a replacement of another mount is no replacement: still refused */
	ob.takeover = 1;
	st = host_open(&ob, &rc, err, sizeof(err));
	ck_assert_ptr_null(st);
	ck_assert_int_eq(rc, -EBUSY);
	/* the first host serves on */
	ck_assert_int_gt(host_do(&ha, 'c', 0, 0, 0), 0);
	host_end(&ha, 0);
	/* a clean close gives the store back: now the second host may have it */
	ob.takeover = 0;
	st = host_open(&ob, &rc, err, sizeof(err));
	ck_assert_msg(st, "%s", err);
	ck_assert_int_eq(st->cache_trusted, 0);
	store_close(st);
}
END_TEST

START_TEST(test_a_takeover_fences_the_old_host)
{
	char a[160], b[160], err[512];
	struct store_opts oa, ob;
	struct store *sb;
	struct disk_attr attr;
	struct host ha;
	int64_t id;
	int rc;

	name_store("takeover");
	cache_dir(a, sizeof(a));
	cache_dir(b, sizeof(b));
	oa = host_opts(a, "host-a:/mnt/vms (supervisor pid 11)");
	ck_assert_int_eq(host_start(&ha, &oa), 0);
	id = host_do(&ha, 'c', 0, 0, 0);
	ck_assert_int_gt(id, 0);
	cl = connect_here();
	ob = host_opts(b, "host-b:/mnt/vms (supervisor pid 22)");
	ob.store_takeover = 1;
	sb = host_open(&ob, &rc, err, sizeof(err));
	ck_assert_msg(sb, "%s", err);
	ck_assert_int_eq(sb->cache_trusted, 0);
	/* B reads the catalog A wrote */
	ck_assert_int_eq(store_lookup(sb, "vm1.img", &attr), 0);
	ck_assert_uint_eq(attr.id, (uint64_t)id);
	/* A's lease ran out while B waited; A fails every request from now on */
	ck_assert_int_eq(host_do(&ha, 'r', (uint64_t)id, 0, 1), -EIO);
	ck_assert_int_eq(host_do(&ha, 'w', (uint64_t)id, 0, 1), -EIO);
	ck_assert_int_lt(host_do(&ha, 'c', 0, 0, 0), 0);
	host_end(&ha, 0);
	/* and nothing of A's reached the store after B took it */
	ck_assert_int_eq(store_lookup(sb, "vm1.img", &attr), 0);
	store_close(sb);
}
END_TEST

START_TEST(test_a_replacement_worker_takes_over_from_its_dead_predecessor)
{
	char a[160], err[512], buf[4096], want[4096];
	struct store_opts o;
	struct store *st;
	struct host ha;
	int64_t id;
	int rc;

	name_store("replace");
	cache_dir(a, sizeof(a));
	o = host_opts(a, "host-a:/mnt/vms (supervisor pid 11)");
	ck_assert_int_eq(host_start(&ha, &o), 0);
	id = host_do(&ha, 'c', 0, 0, 0);
	ck_assert_int_gt(id, 0);
	ck_assert_int_eq(host_do(&ha, 'w', (uint64_t)id, 0, 3), 0);
	host_end(&ha, 1);
	/* the replacement: same mount (holder), takeover of a dead worker; its catalog lock too */
	cl = connect_here();
	o.cluster = cl;
	o.takeover = 1;
	o.purge_unlinked = 0;
	st = host_open(&o, &rc, err, sizeof(err));
	ck_assert_msg(st, "%s", err);
	ck_assert_int_eq(st->cache_trusted, 1);
	fill(want, sizeof(want), 3);
	ck_assert_int_eq(store_read(st, (uint64_t)id, buf, sizeof(buf), 0), (int)sizeof(buf));
	ck_assert_mem_eq(buf, want, sizeof(buf));
	store_close(st);
}
END_TEST

START_TEST(test_the_lease_is_renewed_once_a_period_not_in_a_loop)
{
	char a[160], err[512];
	struct store_opts o;
	struct store *st;
	uint64_t before, sent;
	int rc;

	name_store("renew");
	cache_dir(a, sizeof(a));
	cl = connect_here();
	o = host_opts(a, "host-a:/mnt/vms (supervisor pid 11)");
	st = host_open(&o, &rc, err, sizeof(err));
	ck_assert_msg(st, "%s", err);
	before = fence_renewals(st->fence);
	sleep(3);
	sent = fence_renewals(st->fence) - before;
	/* 3 periods: 3 renewals, 4 if one was due at the start; a slow host sends fewer */
	ck_assert_msg(sent <= 4, "%" PRIu64 " lock renewals in 3 s (one a second is due)", sent);
	store_close(st);
}
END_TEST

FIXTURE_MAIN(tc, "fence", store_setup, 120)
{
	tcase_add_test(tc, test_the_lease_is_renewed_once_a_period_not_in_a_loop);
	tcase_add_test(tc, test_a_store_made_in_the_cluster_keeps_its_catalog_there);
	tcase_add_test(tc, test_a_second_host_is_refused_and_told_who_serves_the_store);
	tcase_add_test(tc, test_a_takeover_fences_the_old_host);
	tcase_add_test(tc, test_a_replacement_worker_takes_over_from_its_dead_predecessor);
}
