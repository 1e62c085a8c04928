/*
 * catalog_ceph: the catalog of a store in a cluster, through libcephsqlite.
 *
 * Design notes
 *
 * libcephsqlite is an SQLite VFS named "ceph": a database is the URI
 * file:///POOL:NAMESPACE/NAME?vfs=ceph, striped over RADOS objects, with
 * an exclusive RADOS lock ("striper.lock" on the first object) taken for
 * each transaction, or for the life of the connection in SQLite's
 * EXCLUSIVE locking mode, which catalog.c sets (and which lets SQLite keep
 * its WAL there: there is no shared memory between hosts).
 *
 * It opens a RADOS client of its own.  cephsqlite_setcct gives it the
 * configuration of ours (the mount's ceph_conf= and ceph_id=), and its
 * address (SELECT ceph_status()) is what the store's fence records, so
 * that a takeover blocklists it with the worker's own client.
 *
 * The VFS must be registered before the first database is opened, once per
 * process: SQLite runs the extension's init for every new connection once
 * it is an auto-extension, and the first (an in-memory database) registers
 * the VFS.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "catalog.h"
#include "catalog_int.h"
#include "cluster.h"

#define URI_PREFIX	"file:///"

int
catalog_in_cluster(const char *path)
{
	return strncmp(path, URI_PREFIX, strlen(URI_PREFIX)) == 0 && strstr(path, "vfs=ceph") != NULL;
}

void
catalog_cluster_path(const struct rados_spec *sp, char *out, size_t len)
{
	snprintf(out, len, URI_PREFIX "%s:%s/" CATALOG_CLUSTER_NAME "?vfs=ceph", sp->pool, sp->ns);
}

#ifdef HAVE_CEPH
/*
 * libcephsqlite.h declares these for C++ only (a CephContext *); their
 * linkage is C, and a CephContext is what rados_cct() returns.
 */
int sqlite3_cephsqlite_init(sqlite3 *db, char **err, const sqlite3_api_routines *api);
int cephsqlite_setcct(void *cct, char **ident);

static pthread_mutex_t vfs_mu = PTHREAD_MUTEX_INITIALIZER;
static int vfs_ready;

static char vfs_addr[128];

/* The address of libcephsqlite's client, asked through connection db. */
static int
client_addr(sqlite3 *db, char *out, size_t len)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT json_extract(ceph_status(), '$.addr')", -1, &st,
	    NULL) != SQLITE_OK)
		return -ENOTSUP;
	rc = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) ? 0 : -EIO;
	if (rc == 0)
		snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc;
}

int
catalog_cluster_init(struct cluster *cl, char *addr, size_t addrlen, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	char *ident = NULL;	/* the client's name: strdup()ed for us (free, not sqlite3_free) */
	int rc = 0;

	pthread_mutex_lock(&vfs_mu);
	if (vfs_ready)
		goto out;
	if (sqlite3_auto_extension((void (*)(void))sqlite3_cephsqlite_init) != SQLITE_OK ||
	    sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    !sqlite3_vfs_find("ceph")) {
		snprintf(err, errlen, "cannot load Ceph's SQLite VFS (libcephsqlite)");
		rc = -ENOTSUP;
		goto out;
	}
	/*
	 * The store's fence blocklists the catalog's old client before this
	 * opens (fence.h); the VFS doing it again costs a monitor proposal.
	 */
	rados_conf_set(cluster_rados(cl), "cephsqlite_blocklist_dead_locker", "false");
	if ((rc = cephsqlite_setcct(rados_cct(cluster_rados(cl)), &ident)) != 0) {
		snprintf(err, errlen, "Ceph's SQLite VFS refused the cluster's configuration (%d)", rc);
		rc = -EINVAL;
		goto out;
	}
	/* one client per process, made now: the fence records it before it writes */
	if ((rc = client_addr(db, vfs_addr, sizeof(vfs_addr))) < 0) {
		snprintf(err, errlen, "Ceph's SQLite VFS did not connect to the cluster");
		goto out;
	}
	vfs_ready = 1;
out:
	if (rc == 0)
		snprintf(addr, addrlen, "%s", vfs_addr);
	if (db)
		sqlite3_close(db);
	free(ident);
	pthread_mutex_unlock(&vfs_mu);
	return rc;
}

#else

int
catalog_cluster_init(struct cluster *cl, char *addr, size_t addrlen, char *err, size_t errlen)
{
	snprintf(err, errlen, "this hcowfs was built without Ceph");
	return -ENOTSUP;
}

#endif
