/*
 * wlog_append: putting records at the tail; wlog_sync.c makes them durable
 * (the group commit).  See wlog.h for the contract, wlog_int.h for the state.
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
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "fdio.h"
#include "hlog.h"
#include "wlog_int.h"

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
	if (h->type < REC_WRITE || h->type > REC_SHARE || h->type == REC_END)
		return -EINVAL;
	if (h->type == REC_WRITE && (dlen == 0 || dlen > REC_DATA_MAX))
		return -EINVAL;
	if (h->type != REC_SIZE && h->type != REC_CLONE && h->offset + h->length < h->offset)
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
	pthread_mutex_lock(&w->sync_lock);
	h->synced = w->synced;		/* the mark (logfmt.h): what replay may trust */
	pthread_mutex_unlock(&w->sync_lock);
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
		if ((rc = fd_pwritev_all(fd, iov, 1, off)) == 0) {
			w->append_hook(w->append_hook_arg);
			rc = fd_pwritev_all(fd, iov + 1, cnt - 1, off + sizeof(*h));
		}
	} else {
		rc = fd_pwritev_all(fd, iov, cnt, off);
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

void
wlog_set_append_hook(struct wlog *w, void (*hook)(void *arg), void *arg)
{
	w->append_hook_arg = arg;
	w->append_hook = hook;
}
