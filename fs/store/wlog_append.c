/*
 * wlog_append: putting records at the tail, and making them durable (the
 * group commit).  See wlog.h for the contract, wlog_int.h for the state.
 *
 * Invariants:
 *   - appends are serialized by the caller (the store's log lock), so tail,
 *     next_seq and stale_end change under that lock only (tail_fsize also
 *     grows by the filler, wlog_segment.c); wlog_sync() and readers load
 *     tail atomically;
 *   - a record is written with one pwritev (header, crc table, data, and a
 *     REC_END marker when stale bytes of a reused file follow); tail and
 *     next_seq advance only once all of it is written, and a failed write
 *     is cut off, so the next record never follows a partial one;
 *   - a record never goes out that replay would refuse (type, length,
 *     flags): replay would cut everything after it;
 *   - each record carries the synced mark, as synced was at its append
 *     (logfmt.h), so a mark never claims more than was durable;
 *   - after replay, synced only grows, and only to a tail whose segment was
 *     fdatasync'ed; older segments were made durable when the log rolled
 *     past them;
 *   - an append that ends within tail_fsize writes bytes the file already
 *     has (the filler's zeros, or stale bytes of a reused file), which the
 *     filler never writes again; one that extends the file holds fill_lock,
 *     so the filler never writes zeros over a record.
 *
 * The group commit (under sync_lock), and the function that moves it on.
 * Every fdatasync of a log segment goes through it (a guest's flush, a
 * roll's full segment, the filler's zeros: wlog_sync_segment), so that no
 * two run at once: a failed writeback is reported to one fdatasync only,
 * and the one that sees it must break the log before any other can claim
 * the same pages durable.
 *
 *   from      to        by          when
 *   IDLE      SYNCING   syncer_     a caller's `upto` is beyond synced (wlog_sync),
 *                       enter       or a segment must be synced (wlog_sync_segment);
 *                                   it takes target = tail, and does the fdatasync
 *                                   unlocked
 *   SYNCING   IDLE      syncer_run  the fdatasync succeeded: synced = target (if the
 *                                   file synced holds it), every waiter wakes and
 *                                   finds itself served or starts the next one
 *   SYNCING   BROKEN    syncer_run  the fdatasync failed: the page cache may have
 *                                   dropped the pages, so no later sync may succeed
 *
 * BROKEN lasts until the mount restarts: every wlog_sync() and wlog_append()
 * fails with -EIO.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "hlog.h"
#include "wlog_int.h"

/* Write all of iov at off, continuing after short writes; 0 or -errno. */
int
pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t off)
{
	while (cnt > 0) {
		ssize_t n = pwritev(fd, iov, cnt, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (uint64_t)n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

void
wlog_sums_compute(struct wlog_sums *sums, const void *data, uint64_t length)
{
	assert(length > 0 && length <= REC_DATA_MAX);
	sums->length = length;
	crc32c_blocks(data, length, REC_BLOCK, sums->table);
	sums->data_crc = crc32c(0, sums->table, 4 * rec_blocks(length));
}

int
wlog_append(struct wlog *w, struct rec_header *h, const void *data, uint64_t *rec_laddr)
{
	return wlog_append_sums(w, h, data, NULL, rec_laddr);
}

int
wlog_append_sums(struct wlog *w, struct rec_header *h, const void *data,
    const struct wlog_sums *sums, uint64_t *rec_laddr)
{
	uint64_t dlen = h->type == REC_WRITE ? h->length : 0;
	struct wlog_sums own;
	uint64_t tail, off, reclen, end;
	struct rec_header mark;
	struct iovec iov[4];
	int fd, rc, cnt = 1, extend;

	assert(w->replayed);
	if (w->broken)
		return -EIO;
	if (w->readonly)
		return -EROFS;
	/* never write what replay would refuse: it would cut everything after it */
	if (h->type != REC_WRITE && h->type != REC_ZERO && h->type != REC_SIZE)
		return -EINVAL;
	if (h->type == REC_WRITE && (dlen == 0 || dlen > REC_DATA_MAX))
		return -EINVAL;
	if (h->type != REC_SIZE && h->offset + h->length < h->offset)
		return -EINVAL;
	if (h->flags & ~(h->type == REC_ZERO ? REC_F_GROW : 0))
		return -EINVAL;
	/* sums for another length (the caller cut the write at the disk's end) do not apply */
	if (dlen && (!sums || sums->length != dlen)) {
		wlog_sums_compute(&own, data, dlen);
		sums = &own;
	}
	reclen = rec_size(h);
	tail = w->tail;
	if (LADDR_OFF(tail) + reclen > w->segment_size &&
	    LADDR_OFF(tail) > sizeof(struct seg_header)) {
		if ((rc = wlog_roll(w)) < 0)
			return rc;
		tail = w->tail;
	}
	off = LADDR_OFF(tail);
	end = off + reclen;
	fd = seg_fd(w, LADDR_SEG(tail));

	h->magic = REC_MAGIC;
	h->seq = w->next_seq;
	h->reserved1 = 0;
	pthread_mutex_lock(&w->sync_lock);
	h->synced = w->synced;		/* the mark (logfmt.h): what replay may trust */
	pthread_mutex_unlock(&w->sync_lock);
	h->reserved3 = 0;
	h->data_crc = 0;
	iov[0] = (struct iovec){ h, sizeof(*h) };
	if (dlen) {
		h->data_crc = sums->data_crc;
		iov[1] = (struct iovec){ (void *)sums->table, 4 * rec_blocks(dlen) };
		iov[2] = (struct iovec){ (void *)data, dlen };
		cnt = 3;
	}
	h->hdr_crc = 0;
	h->hdr_crc = crc32c(0, h, sizeof(*h));
	if (off + reclen < w->stale_end) {
		/* stale bytes follow in this reused file: end the log visibly (logfmt.h) */
		memset(&mark, 0, sizeof(mark));
		mark.magic = REC_MAGIC;
		mark.type = REC_END;
		mark.seq = h->seq + 1;
		mark.hdr_crc = crc32c(0, &mark, sizeof(mark));
		iov[cnt++] = (struct iovec){ &mark, sizeof(mark) };
		end += sizeof(mark);
	}
	/* past the bytes the file has, the filler may be writing: keep it out */
	extend = end > w->tail_fsize;
	if (extend)
		pthread_mutex_lock(&w->fill_lock);

	if (w->append_hook && dlen) {
		/* fault injection: the header alone, then the hook, then the rest */
		if ((rc = pwritev_all(fd, iov, 1, off)) == 0) {
			w->append_hook(w->append_hook_arg);
			rc = pwritev_all(fd, iov + 1, cnt - 1, off + sizeof(*h));
		}
	} else {
		rc = pwritev_all(fd, iov, cnt, off);
	}
	if (rc < 0) {
		/* leave no partial record behind for the next append to follow */
		if (!extend)
			pthread_mutex_lock(&w->fill_lock);
		if (ftruncate(fd, (off_t)off) < 0) {
			hlog(HLOG_WARN, "cannot cut partial record in segment %08x: %s",
			    LADDR_SEG(tail), strerror(errno));
		} else {
			w->tail_fsize = off;	/* the bytes after it went too */
			if (w->stale_end > off)
				w->stale_end = off;
		}
		pthread_mutex_unlock(&w->fill_lock);
		return rc;
	}
	if (extend) {
		w->tail_fsize = end;
		pthread_mutex_unlock(&w->fill_lock);
	}
	w->next_seq++;
	w->size += reclen;
	w->tail = LADDR(LADDR_SEG(tail), off + reclen);
	*rec_laddr = tail;
	return 0;
}

/*
 * Wait until no fdatasync of the log runs, then own the next one (1), with
 * *target = the tail then; 0 if the records before upto became durable
 * meanwhile; -EIO if the log is broken.
 */
static int
syncer_enter(struct wlog *w, uint64_t upto, uint64_t *target)
{
	int rc;

	pthread_mutex_lock(&w->sync_lock);
	for (;;) {
		if (w->broken) {
			rc = -EIO;
			break;
		}
		if (w->synced >= upto) {
			rc = 0;
			break;
		}
		if (!w->syncing) {
			w->syncing = 1;
			*target = w->tail;
			rc = 1;
			break;
		}
		pthread_cond_wait(&w->sync_cond, &w->sync_lock);
	}
	pthread_mutex_unlock(&w->sync_lock);
	return rc;
}

/*
 * As the owner (syncer_enter), fdatasync fd, the file of segment segno;
 * on success every record before target is durable (0: it says nothing of
 * records).  Hands the ownership on.  0 or -EIO (the log is broken then).
 */
static int
syncer_run(struct wlog *w, int fd, uint32_t segno, uint64_t target)
{
	int rc = 0;

	if (fdatasync(fd) < 0) {
		rc = -errno;
		hlog(HLOG_ERROR, "fdatasync of log segment %08x failed: %s; the log refuses "
		    "further writes until the mount restarts", segno, strerror(errno));
	}
	pthread_mutex_lock(&w->sync_lock);
	w->syncing = 0;
	if (rc < 0)
		w->broken = rc;
	else if (target > w->synced)
		w->synced = target;
	pthread_cond_broadcast(&w->sync_cond);
	pthread_mutex_unlock(&w->sync_lock);
	return rc < 0 ? -EIO : 0;
}

int
wlog_sync(struct wlog *w, uint64_t upto)
{
	uint64_t target;
	int rc;

	if ((rc = syncer_enter(w, upto, &target)) <= 0)
		return rc;
	w->flushes++;
	if (w->fill_ahead && !w->filling)
		wlog_fill_start(w);	/* from the first flush on */
	/* older segments were synced when the log rolled past them */
	return syncer_run(w, seg_fd(w, LADDR_SEG(target)), LADDR_SEG(target), target);
}

/* Make segment segno's file durable (fd), as the log's one syncer; 0 or -EIO. */
int
wlog_sync_segment(struct wlog *w, uint32_t segno, int fd)
{
	uint64_t target;
	int rc;

	if ((rc = syncer_enter(w, UINT64_MAX, &target)) < 0)
		return rc;
	return syncer_run(w, fd, segno, LADDR_SEG(target) == segno ? target : 0);
}

void
wlog_set_append_hook(struct wlog *w, void (*hook)(void *arg), void *arg)
{
	w->append_hook_arg = arg;
	w->append_hook = hook;
}
