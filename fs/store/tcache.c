/*
 * tcache: see tcache.h for the contract and the files.
 *
 * Design notes
 *
 * Owns the cache dir's files this process opened, and for each open
 * template (struct tcache_file) which chunks it has verified.
 *
 * Invariants:
 * - A byte is served from a cache file only from a chunk whose verified
 *   flag is set, and that flag is set only after the chunk's bytes, read
 *   from the file (or fetched from the pool and written to it), matched its
 *   content sum.  The flag is set (release) after seg_fd, so a reader that
 *   sees it sees the file.  A hit costs one pread and no lock but the
 *   file's read lock (never contended but by an eviction).
 * - Fills of one template are serialized by its fill lock: a chunk is
 *   looked for, fetched and written once.  The lock order is evict_lock,
 *   then a file's fill lock, then its rwlock.
 * - Least recently used: each cache file's mtime is its last use.  A read
 *   notes the time in memory (a coarse clock, no system call); an eviction
 *   pass first writes those times to the files (futimens), then removes
 *   the oldest files until the dir holds TCACHE_EVICT_TO percent of the
 *   cap, never the one just filled.  A removed file of this process is
 *   closed and its chunks unverified under the file's write lock.  A file
 *   another process removed stays readable through our open fd (its bytes
 *   are right); its space comes back when this open of the template ends.
 * - The running total (used) is this process's estimate, made exact by
 *   each pass's scan of the dir (other mounts fill it too).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "fdio.h"
#include "hlog.h"
#include "tcache.h"
#include "template.h"

#define TCACHE_CHUNKS_PER_SEG	(TCACHE_SEGMENT / TEMPLATE_CHUNK)

struct tcache {
	char		 dir[4096];
	int		 dirfd;
	uint64_t	 cap;
	_Atomic uint64_t used;		/* bytes in the dir, as last counted plus our fills */
	pthread_mutex_t	 evict_lock;	/* one pass at a time; guards files */
	struct tcache_file *files;	/* this process's open templates */
	_Atomic uint64_t fetched, found, evicted;
};

struct tcache_file {
	struct tcache	*c;
	struct tmplpool	*pool;
	char		 hash[SHA256_HEX_LEN + 1];
	uint64_t	 size, nchunks, nsegs;
	uint32_t	*sums;
	pthread_mutex_t	 fill;
	pthread_rwlock_t lock;		/* shared by reads, exclusive to drop a segment */
	_Atomic int	*seg_fd;	/* fd + 1, 0 = not open */
	_Atomic int64_t	*seg_used;	/* last read, seconds (CLOCK_REALTIME_COARSE) */
	int64_t		*seg_stamped;	/* what the file's mtime says */
	_Atomic unsigned char *verified;
	struct tcache_file *next;
};

static int64_t
tcache_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec;
}

/* Is name a cache file ("HASH.SEG")?  The hash into hash if so. */
static int
tcache_name_parse(const char *name, char hash[SHA256_HEX_LEN + 1])
{
	if (strlen(name) < SHA256_HEX_LEN + 2 || name[SHA256_HEX_LEN] != '.' ||
	    strspn(name, "0123456789abcdef") != SHA256_HEX_LEN ||
	    strspn(name + SHA256_HEX_LEN + 1, "0123456789abcdef") != strlen(name) - SHA256_HEX_LEN - 1)
		return 0;
	memcpy(hash, name, SHA256_HEX_LEN);
	hash[SHA256_HEX_LEN] = '\0';
	return 1;
}

struct tcache_entry {
	char	 name[SHA256_HEX_LEN + 20];
	int64_t	 mtime;
	uint64_t bytes;
};

/* The cache files in dirfd (of hash only, if not NULL): *out malloc'ed, total bytes. */
static int
tcache_scan(int dirfd, const char *hash, struct tcache_entry **out, size_t *n, uint64_t *total)
{
	struct tcache_entry *v = NULL;
	size_t cap = 0;
	struct dirent *de;
	DIR *d;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*n = 0;
	*total = 0;
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		char h[SHA256_HEX_LEN + 1];
		struct stat sb;
		if (!tcache_name_parse(de->d_name, h) || (hash && strcmp(h, hash) != 0) ||
		    strlen(de->d_name) >= sizeof(v->name) ||
		    fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
			continue;
		if (*n == cap) {
			struct tcache_entry *w = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));
			if (!w)
				break;
			v = w;
		}
		snprintf(v[*n].name, sizeof(v[*n].name), "%s", de->d_name);
		v[*n].mtime = (int64_t)sb.st_mtim.tv_sec;
		v[*n].bytes = (uint64_t)sb.st_blocks * 512;
		*total += v[*n].bytes;
		(*n)++;
	}
	closedir(d);
	if (out)
		*out = v;
	else
		free(v);
	return 0;
}

int
tcache_open(const char *dir, uint64_t cap, struct tcache **out, char *err, size_t errlen)
{
	struct tcache *c = calloc(1, sizeof(*c));
	struct statvfs sv;
	uint64_t used;
	size_t n;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "template cache '%s': %s", dir, strerror(errno));
		free(c);
		return -errno;
	}
	if ((c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstatvfs(c->dirfd, &sv) < 0) {
		int rc = -errno;
		snprintf(err, errlen, "template cache '%s': %s", dir, strerror(errno));
		if (c->dirfd >= 0)
			close(c->dirfd);
		free(c);
		return rc;
	}
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	c->cap = cap ? cap : (uint64_t)sv.f_blocks * sv.f_frsize / TCACHE_SIZE_FRACTION;
	pthread_mutex_init(&c->evict_lock, NULL);
	tcache_scan(c->dirfd, NULL, NULL, &n, &used);
	atomic_init(&c->used, used);
	*out = c;
	return 0;
}

void
tcache_close(struct tcache *c)
{
	if (!c)
		return;
	if (c->files)
		hlog(HLOG_WARN, "template cache closed with templates open");
	close(c->dirfd);
	pthread_mutex_destroy(&c->evict_lock);
	free(c);
}

void
tcache_stats(struct tcache *c, struct tcache_stats *s)
{
	s->fetched = atomic_load(&c->fetched);
	s->found = atomic_load(&c->found);
	s->evicted = atomic_load(&c->evicted);
	s->cap = c->cap;
}

/* Free f's memory (its files closed, its locks gone). */
static void
tcache_file_free(struct tcache_file *f)
{
	free(f->sums);
	free((void *)f->seg_fd);
	free((void *)f->seg_used);
	free(f->seg_stamped);
	free((void *)f->verified);
	free(f);
}

int
tcache_file_open(struct tcache *c, struct tmplpool *p, const char *hash, uint64_t size,
    const uint32_t *sums, struct tcache_file **out)
{
	struct tcache_file *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->c = c;
	f->pool = p;
	snprintf(f->hash, sizeof(f->hash), "%s", hash);
	f->size = size;
	f->nchunks = TEMPLATE_CHUNKS(size);
	f->nsegs = (size + TCACHE_SEGMENT - 1) / TCACHE_SEGMENT;
	f->sums = malloc((f->nchunks ? f->nchunks : 1) * sizeof(*f->sums));
	f->seg_fd = calloc(f->nsegs ? f->nsegs : 1, sizeof(*f->seg_fd));
	f->seg_used = calloc(f->nsegs ? f->nsegs : 1, sizeof(*f->seg_used));
	f->seg_stamped = calloc(f->nsegs ? f->nsegs : 1, sizeof(*f->seg_stamped));
	f->verified = calloc(f->nchunks ? f->nchunks : 1, 1);
	if (!f->sums || !f->seg_fd || !f->seg_used || !f->seg_stamped || !f->verified) {
		tcache_file_free(f);
		return -ENOMEM;
	}
	memcpy(f->sums, sums, f->nchunks * sizeof(*sums));
	pthread_mutex_init(&f->fill, NULL);
	pthread_rwlock_init(&f->lock, NULL);
	pthread_mutex_lock(&c->evict_lock);
	f->next = c->files;
	c->files = f;
	pthread_mutex_unlock(&c->evict_lock);
	*out = f;
	return 0;
}

/* Write f's noted last uses to its cache files' mtimes (under evict_lock or at close). */
static void
tcache_file_stamp(struct tcache_file *f)
{
	for (uint64_t s = 0; s < f->nsegs; s++) {
		int64_t used = atomic_load(&f->seg_used[s]);
		int fd = atomic_load(&f->seg_fd[s]) - 1;
		if (fd < 0 || used <= f->seg_stamped[s])
			continue;
		struct timespec ts[2] = { { used, 0 }, { used, 0 } };
		if (futimens(fd, ts) == 0)
			f->seg_stamped[s] = used;
	}
}

void
tcache_file_close(struct tcache_file *f)
{
	struct tcache *c;

	if (!f)
		return;
	c = f->c;
	pthread_mutex_lock(&c->evict_lock);
	for (struct tcache_file **pp = &c->files; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	tcache_file_stamp(f);
	pthread_mutex_unlock(&c->evict_lock);
	for (uint64_t s = 0; s < f->nsegs; s++)
		if (atomic_load(&f->seg_fd[s]) > 0)
			close(atomic_load(&f->seg_fd[s]) - 1);
	pthread_mutex_destroy(&f->fill);
	pthread_rwlock_destroy(&f->lock);
	tcache_file_free(f);
}

/* Bytes of segment s of f. */
static uint64_t
tcache_seg_len(const struct tcache_file *f, uint64_t s)
{
	uint64_t off = s * TCACHE_SEGMENT;
	return f->size - off < TCACHE_SEGMENT ? f->size - off : TCACHE_SEGMENT;
}

/* Open (creating it, sized) segment s's cache file; under f->fill.  The fd or -errno. */
static int
tcache_seg_open(struct tcache_file *f, uint64_t s)
{
	char name[SHA256_HEX_LEN + 20];
	struct stat sb;
	int fd = atomic_load(&f->seg_fd[s]) - 1;

	if (fd >= 0)
		return fd;
	snprintf(name, sizeof(name), "%s.%04" PRIx64, f->hash, s);
	if ((fd = openat(f->c->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return -errno;
	/* a file cut short (by hand, or a crash mid-create) is sized again: its holes read as misses */
	if (fstat(fd, &sb) < 0 || ((uint64_t)sb.st_size != tcache_seg_len(f, s) &&
	    ftruncate(fd, (off_t)tcache_seg_len(f, s)) < 0)) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	atomic_store(&f->seg_used[s], tcache_now());
	atomic_store(&f->seg_fd[s], fd + 1);
	return fd;
}

/* Drop this process's open of segment s of f (its file was evicted). */
static void
tcache_seg_drop(struct tcache_file *f, uint64_t s)
{
	pthread_mutex_lock(&f->fill);
	pthread_rwlock_wrlock(&f->lock);
	for (uint64_t i = s * TCACHE_CHUNKS_PER_SEG; i < f->nchunks && i < (s + 1) * TCACHE_CHUNKS_PER_SEG; i++)
		atomic_store(&f->verified[i], 0);
	if (atomic_load(&f->seg_fd[s]) > 0)
		close(atomic_load(&f->seg_fd[s]) - 1);
	atomic_store(&f->seg_fd[s], 0);
	f->seg_stamped[s] = 0;
	pthread_rwlock_unlock(&f->lock);
	pthread_mutex_unlock(&f->fill);
}

static int
tcache_entry_older(const void *a, const void *b)
{
	const struct tcache_entry *x = a, *y = b;
	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Remove the least recently used cache files down to TCACHE_EVICT_TO % of the cap, keeping keep. */
static void
tcache_evict(struct tcache *c, const char *keep)
{
	struct tcache_entry *v = NULL;
	uint64_t total, goal = c->cap / 100 * TCACHE_EVICT_TO;
	size_t n;

	pthread_mutex_lock(&c->evict_lock);
	for (struct tcache_file *f = c->files; f; f = f->next)
		tcache_file_stamp(f);
	if (tcache_scan(c->dirfd, NULL, &v, &n, &total) < 0 || total <= c->cap) {
		atomic_store(&c->used, total);
		goto out;
	}
	qsort(v, n, sizeof(*v), tcache_entry_older);
	for (size_t i = 0; i < n && total > goal; i++) {
		char hash[SHA256_HEX_LEN + 1];
		if (strcmp(v[i].name, keep) == 0 || unlinkat(c->dirfd, v[i].name, 0) < 0)
			continue;
		total -= v[i].bytes;
		atomic_fetch_add(&c->evicted, 1);
		tcache_name_parse(v[i].name, hash);
		for (struct tcache_file *f = c->files; f; f = f->next)
			if (strcmp(f->hash, hash) == 0)
				tcache_seg_drop(f, strtoull(v[i].name + SHA256_HEX_LEN + 1, NULL, 16));
	}
	atomic_store(&c->used, total);
out:
	pthread_mutex_unlock(&c->evict_lock);
	free(v);
}

/*
 * Make chunk i verified, under f->fill: the cache file's bytes if they
 * match the sum, else fetched from the pool (checked) and written there.
 * Sets *grew when the cache grew.
 */
static int
tcache_fill_locked(struct tcache_file *f, uint64_t i, char *buf, int *grew)
{
	uint64_t s = i / TCACHE_CHUNKS_PER_SEG, off = i * TEMPLATE_CHUNK;
	uint64_t want = f->size - off < TEMPLATE_CHUNK ? f->size - off : TEMPLATE_CHUNK;
	uint64_t in_seg = off - s * TCACHE_SEGMENT;
	ssize_t got;
	int fd, rc;

	if (atomic_load_explicit(&f->verified[i], memory_order_acquire))
		return 0;
	if ((fd = tcache_seg_open(f, s)) < 0) {
		hlog(HLOG_ERROR, "template cache '%s': cannot open a file: %s", f->c->dir, strerror(-fd));
		return -EIO;
	}
	got = fd_pread_upto(fd, buf, want, in_seg);
	if (got == (ssize_t)want && crc32c(0, buf, want) == f->sums[i]) {
		atomic_fetch_add(&f->c->found, 1);
	} else {
		if ((rc = tmplpool_read_chunk(f->pool, f->hash, f->size, i, buf)) < 0) {
			hlog(HLOG_ERROR, "template %s: cannot read chunk %" PRIu64 " from %s: %s",
			    f->hash, i, tmplpool_where(f->pool), strerror(-rc));
			return -EIO;
		}
		if (crc32c(0, buf, want) != f->sums[i]) {
			hlog(HLOG_ERROR, "template %s: chunk %" PRIu64 " in %s does not match its "
			    "content sum", f->hash, i, tmplpool_where(f->pool));
			return -EIO;
		}
		if (pwrite(fd, buf, want, (off_t)in_seg) != (ssize_t)want) {
			hlog(HLOG_ERROR, "template cache '%s': cannot write: %s", f->c->dir,
			    strerror(errno));
			return -EIO;
		}
		atomic_fetch_add(&f->c->fetched, 1);
		atomic_fetch_add(&f->c->used, want);
		*grew = 1;
	}
	atomic_store_explicit(&f->verified[i], 1, memory_order_release);
	return 0;
}

int
tcache_fill(struct tcache_file *f, uint64_t i)
{
	char keep[SHA256_HEX_LEN + 20];
	char *buf;
	int grew = 0, rc;

	if (atomic_load_explicit(&f->verified[i], memory_order_acquire))
		return 0;
	if (!(buf = malloc(TEMPLATE_CHUNK)))
		return -ENOMEM;
	pthread_mutex_lock(&f->fill);
	rc = tcache_fill_locked(f, i, buf, &grew);
	pthread_mutex_unlock(&f->fill);
	free(buf);
	if (grew && atomic_load(&f->c->used) > f->c->cap) {
		snprintf(keep, sizeof(keep), "%s.%04" PRIx64, f->hash, i / TCACHE_CHUNKS_PER_SEG);
		tcache_evict(f->c, keep);
	}
	return rc;
}

int
tcache_read(struct tcache_file *f, void *buf, uint64_t len, uint64_t off)
{
	char *out = buf;
	int rc = 0;

	while (len > 0 && rc == 0) {
		uint64_t s = off / TCACHE_SEGMENT, in_seg = off - s * TCACHE_SEGMENT;
		uint64_t n = TCACHE_SEGMENT - in_seg < len ? TCACHE_SEGMENT - in_seg : len;
		uint64_t first = off / TEMPLATE_CHUNK, last = (off + n - 1) / TEMPLATE_CHUNK, i;
		int64_t now = tcache_now();
		ssize_t got;

		pthread_rwlock_rdlock(&f->lock);
		for (i = first; i <= last && atomic_load_explicit(&f->verified[i],
		    memory_order_acquire); i++)
			;
		if (i <= last) {
			/* a miss: fill outside the read lock (an eviction may take it), then look again */
			pthread_rwlock_unlock(&f->lock);
			rc = tcache_fill(f, i);
			continue;
		}
		got = fd_pread_upto(atomic_load(&f->seg_fd[s]) - 1, out, n, in_seg);
		if (atomic_load_explicit(&f->seg_used[s], memory_order_relaxed) != now)
			atomic_store_explicit(&f->seg_used[s], now, memory_order_relaxed);
		pthread_rwlock_unlock(&f->lock);
		if (got != (ssize_t)n)
			rc = got < 0 ? (int)got : -EIO;
		out += n;
		off += n;
		len -= n;
	}
	return rc;
}

uint64_t
tcache_bytes_of(const char *dir, const char *hash)
{
	uint64_t total = 0;
	size_t n;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	tcache_scan(fd, hash, NULL, &n, &total);
	close(fd);
	return total;
}
