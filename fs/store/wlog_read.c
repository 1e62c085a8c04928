/*
 * wlog_read: reading a record's data back by log address, for guest reads
 * (wlog_read_cached, through the record cache) and for hcowctl check and
 * the cleaner (wlog_read, straight from the segment), and the advice that
 * brings a stretch of a segment into the page cache ahead of such reads
 * (wlog_prefetch).
 *
 * Invariants:
 *   - no byte is returned unless the block holding it matched its crc in a
 *     table vouched for by a sound header; a damaged record is -EBADMSG with
 *     a reason, never wrong bytes;
 *   - the cache holds only records wholly before the tail, whose table was
 *     checked against the header's data_crc: nothing rewrites them until
 *     their segment is released (wlog_release drops them first);
 *   - reads run concurrently with an append and a release: they index the
 *     segment table without a lock (wlog_int.h: an entry never moves); an
 *     address in a released segment is -EBADMSG, "names no segment".
 *
 * Cost: a first read of a record takes one pread of READ_HEAD bytes (a
 * 4 KiB record whole, else its header and the start of its table) and, for
 * a longer record, one more for the blocks it wants; with the header and
 * table cached, a read is one pread into the caller's buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "fdio.h"
#include "reccache.h"
#include "wlog_int.h"

/* Exactly len bytes at off: 0, -errno, or -EBADMSG with *why when the file ends first. */
static int
pread_exact(int fd, void *buf, size_t len, uint64_t off, const char *what, const char **why)
{
	ssize_t got = fd_pread_upto(fd, buf, len, off);

	if (got < 0)
		return (int)got;
	if ((size_t)got < len) {
		*why = what;
		return -EBADMSG;
	}
	return 0;
}

/* A record's first read takes this much: a 4 KiB record whole, else its header and table. */
#define READ_HEAD	(sizeof(struct rec_header) + 4 + REC_BLOCK)

/* What a read wants of a record: data bytes [s, e), in blocks [b0, b1) = data bytes [cs, ce). */
struct rec_span {
	uint64_t s, e, b0, b1, cs, ce;
};

/*
 * Does REC_WRITE h hold bytes [doff, doff+len) of a disk of this family?
 * NULL with *sp filled, or why not.
 */
static const char *
rec_span(const struct rec_header *h, uint64_t family, uint64_t doff, size_t len,
    struct rec_span *sp)
{
	if (h->type != REC_WRITE || rec_family(h) != family || doff < h->offset ||
	    doff - h->offset > h->length || len > h->length - (doff - h->offset))
		return "record does not hold these bytes of this disk";
	sp->s = doff - h->offset;
	sp->e = sp->s + len;
	sp->b0 = sp->s / REC_BLOCK;
	sp->b1 = (sp->e + REC_BLOCK - 1) / REC_BLOCK;
	sp->cs = sp->b0 * REC_BLOCK;
	sp->ce = sp->b1 * REC_BLOCK < h->length ? sp->b1 * REC_BLOCK : h->length;
	return NULL;
}

/*
 * Read span sp of the data of the record at segment offset pos (header h)
 * into buf, checking each block against table (the crcs of blocks [b0, b1)).
 * head holds the first got bytes of the record (NULL: none were read).
 * 0, -errno, or -EBADMSG with *why; buf may hold anything after an error.
 */
static int
rec_read_blocks(int fd, uint64_t pos, const struct rec_header *h, const struct rec_span *sp,
    const uint32_t *table, const unsigned char *head, uint64_t got, void *buf, const char **why)
{
	unsigned char edge[2 * REC_BLOCK];
	void *heap_data = NULL;
	const unsigned char *data;
	uint64_t dstart = rec_data_start(h);
	int rc = 0;

	if (head && dstart + sp->ce <= got) {
		data = head + dstart + sp->cs;		/* the first read brought it all */
	} else {
		/* whole blocks wanted go straight to buf; partial ones through a bounce buffer */
		unsigned char *to = sp->cs == sp->s && sp->ce == sp->e ? buf :
		    sp->ce - sp->cs <= sizeof(edge) ? edge : (heap_data = malloc(sp->ce - sp->cs));
		if (!to)
			return -ENOMEM;
		if ((rc = pread_exact(fd, to, sp->ce - sp->cs, pos + dstart + sp->cs,
		    "record data past the end of its segment", why)) < 0)
			goto out;
		data = to;
	}
	for (uint64_t i = sp->b0; i < sp->b1; i++) {
		const unsigned char *blk = data + (i - sp->b0) * REC_BLOCK;
		uint64_t blen = rec_block_len(h, i);
		if (crc32c(0, blk, blen) != table[i - sp->b0]) {
			*why = "data block checksum mismatch";
			rc = -EBADMSG;
			goto out;
		}
	}
	if (data != buf)
		memcpy(buf, data + (sp->s - sp->cs), sp->e - sp->s);
out:
	free(heap_data);
	return rc;
}

/* A read looked up in the record cache: what it asks, and what the cache gave. */
struct cached_read {
	uint64_t	 family, doff;
	size_t		 len;
	int		 usable;
	struct rec_header h;
	struct rec_span	 sp;
	uint32_t	 crcs[RECCACHE_TABLE_MAX];
};

/* reccache_find() callback: copy the header and the crcs of the blocks the read touches. */
static void
cached_read_take(const struct rec_header *h, const uint32_t *table, void *arg)
{
	struct cached_read *cr = arg;

	/* not bytes of this record: the uncached read says what is wrong */
	if (rec_span(h, cr->family, cr->doff, cr->len, &cr->sp) != NULL ||
	    cr->sp.b1 - cr->sp.b0 > RECCACHE_TABLE_MAX)
		return;
	cr->h = *h;
	memcpy(cr->crcs, table + cr->sp.b0, (cr->sp.b1 - cr->sp.b0) * sizeof(*table));
	cr->usable = 1;
}

/*
 * After a read that needed a second pread for its data: keep the record's
 * header and table (all in head, got bytes) if the table is sound and the
 * record is wholly before the tail, where no append can rewrite it.
 */
static void
rec_cache_put(struct wlog *w, uint64_t rec, const struct rec_header *h,
    const unsigned char *head, uint64_t got)
{
	uint64_t tlen = 4 * rec_blocks(h->length);

	if (sizeof(*h) + tlen > got || rec + rec_size(h) > atomic_load(&w->tail) ||
	    crc32c(0, head + sizeof(*h), tlen) != h->data_crc)
		return;
	reccache_put(w->cache, rec, h, (const uint32_t *)(const void *)(head + sizeof(*h)));
}

static int
wlog_read_from(struct wlog *w, int cached, uint64_t rec, uint64_t family, uint64_t doff,
    void *buf, size_t len, const char **why)
{
	uint64_t headbuf[(READ_HEAD + 7) / 8];		/* 8-aligned: the table is read in place */
	unsigned char *head = (unsigned char *)headbuf;
	uint32_t tslice[64];
	void *heap_table = NULL;
	const uint32_t *table;
	struct rec_header h;
	struct rec_span sp;
	uint64_t pos = LADDR_OFF(rec);
	int fd = seg_fd(w, LADDR_SEG(rec));
	ssize_t got;
	int rc;

	*why = NULL;
	if (fd < 0 || LADDR_SEG(rec) < w->first || LADDR_SEG(rec) > w->last) {
		*why = "log address names no segment";
		return -EBADMSG;
	}
	cached = cached && w->cache;
	if (cached) {
		struct cached_read cr;
		cr.family = family;
		cr.doff = doff;
		cr.len = len;
		cr.usable = 0;
		if (reccache_find(w->cache, rec, cached_read_take, &cr) && cr.usable)
			return rec_read_blocks(fd, pos, &cr.h, &cr.sp, cr.crcs, NULL, 0, buf, why);
	}
	if ((got = fd_pread_upto(fd, head, READ_HEAD, pos)) < 0)
		return (int)got;
	if ((size_t)got < sizeof(h)) {
		*why = "record header past the end of its segment";
		return -EBADMSG;
	}
	memcpy(&h, head, sizeof(h));
	if ((*why = rec_header_check(&h, 0)) != NULL || (*why = rec_span(&h, family, doff, len, &sp)) != NULL)
		return -EBADMSG;
	if (sizeof(h) + 4 * sp.b1 <= (uint64_t)got) {
		table = (const uint32_t *)(const void *)(head + sizeof(h)) + sp.b0;
	} else {
		size_t tlen = 4 * (sp.b1 - sp.b0);
		uint32_t *t = tlen <= sizeof(tslice) ? tslice : (heap_table = malloc(tlen));
		if (!t)
			return -ENOMEM;
		if ((rc = pread_exact(fd, t, tlen, pos + sizeof(h) + 4 * sp.b0,
		    "crc table past the end of its segment", why)) < 0)
			goto out;
		table = t;
	}
	if (cached && rec_data_start(&h) + sp.ce > (uint64_t)got)
		rec_cache_put(w, rec, &h, head, (uint64_t)got);
	rc = rec_read_blocks(fd, pos, &h, &sp, table, head, (uint64_t)got, buf, why);
out:
	free(heap_table);
	return rc;
}

int
wlog_read(struct wlog *w, uint64_t rec, uint64_t family, uint64_t doff,
    void *buf, size_t len, const char **why)
{
	return wlog_read_from(w, 0, rec, family, doff, buf, len, why);
}

int
wlog_read_cached(struct wlog *w, uint64_t rec, uint64_t family, uint64_t doff,
    void *buf, size_t len, const char **why)
{
	return wlog_read_from(w, 1, rec, family, doff, buf, len, why);
}

void
wlog_prefetch(struct wlog *w, uint64_t from, uint64_t to)
{
	uint32_t seg = LADDR_SEG(from);
	int fd = seg_fd(w, seg);

	if (fd < 0 || seg < w->first || seg > w->last || to <= from || LADDR_SEG(to - 1) != seg)
		return;
	(void)posix_fadvise(fd, (off_t)LADDR_OFF(from), (off_t)(to - from), POSIX_FADV_WILLNEED);
}
