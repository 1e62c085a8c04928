/*
 * wlog_replay: recovery.  Finds the end of the log at open: scans the
 * records after a checkpoint, hands each valid one to the caller, and
 * decides what the bytes after the last valid record are.  Also what makes
 * a record header sound (rec_header_check), for every reader of the log.
 *
 * Invariants:
 *   - a record is valid only if its header checksum, its data checksums and
 *     its sequence number (exactly the previous + 1) agree (logfmt.h); the
 *     first that is not ends the log;
 *   - only the newest segment can end early: an invalid record before the
 *     end of a sealed segment is corruption (-EUCLEAN), never cut;
 *   - an invalid record that a later record's synced mark proves was synced
 *     is damage, not a torn tail: applied as far as it is known, or the open
 *     fails; the records after it are kept (replay_damage());
 *   - whatever is cut is cut durably before wlog_replay() returns, so
 *     before anything is appended at the new end;
 *   - on success the log is REPLAYED (wlog.c): tail, next_seq and last say
 *     where appends continue; on error nothing of that is set.
 *
 * How thoroughly records are checked:
 *   first open (a machine crash may lie behind)  every record's data;
 *   takeover (trust_complete: a worker died,      only a record that ends the
 *   the machine stayed up)                        log (appends are serialized)
 *
 * What replay_end() does with the end of the newest segment:
 *
 *   found there                         first open         takeover          read-only
 *   the file's end                      nothing            nothing           nothing
 *   a header of zeros and zeros to the  left, to be        left              left
 *   file's end (the filler's,           overwritten
 *   wlog_segment.c)
 *   REC_END naming the next seq, or a   cut, durably       left, to be       left
 *   sound header of an older record     (logged at INFO)   overwritten
 *   (stale bytes of a reused file)
 *   anything else (a torn tail)         cut, durably (WARN); valid records   noted in
 *                                       of this life after it kept in        wlog_note()
 *                                       SSSSSSSS.seg.cut-OFFSET (seg_save_tail)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "hlog.h"
#include "media.h"
#include "wlog_int.h"

#define REPLAY_CHUNK	(1u << 20)

/* Header checks that need no data: returns NULL if h may start a valid record. */
const char *
rec_header_check(const struct rec_header *h, uint64_t expect_seq)
{
	struct rec_header c = *h;

	if (h->magic != REC_MAGIC)
		return "bad record magic";
	c.hdr_crc = 0;
	if (crc32c(0, &c, sizeof(c)) != h->hdr_crc)
		return "record header checksum mismatch";
	if (expect_seq && h->seq != expect_seq)
		return "record out of sequence";
	if (h->flags & ~(h->type == REC_ZERO ? REC_F_GROW : 0))
		return "unknown record flags";
	switch (h->type) {
	case REC_WRITE:
		if (h->length == 0 || h->length > REC_DATA_MAX)
			return "record length out of range";
		break;
	case REC_ZERO:
	case REC_SIZE:
	case REC_CLONE:
	case REC_LINK:
	case REC_SHARE:
		if (h->data_crc != 0)
			return "record without data has a data checksum";
		break;
	default:
		return "unknown record type";
	}
	if (h->type != REC_SIZE && h->type != REC_CLONE && h->offset + h->length < h->offset)
		return "record range overflows";
	return NULL;
}

/* What seg_later_scan() found: records of this life after some point. */
struct later {
	uint64_t	 end;		/* where the last of them ends (at most size); 0 = none */
	uint64_t	 mark;		/* the highest synced mark among them (logfmt.h) */
	uint64_t	 first_pos;	/* the one with the lowest seq: its offset, */
	struct rec_header first;	/* and its header */
};

/*
 * Records with a good header and seq > after_seq that start in [from, size)
 * of fd, found by their magic (what lies between them may be damaged).
 * Stale records of an earlier life of a reused file have sequence numbers
 * below any of this life's, so they do not count.
 */
static void
seg_later_scan(int fd, uint64_t from, uint64_t size, uint64_t after_seq, struct later *out)
{
	static const uint32_t magic = REC_MAGIC;
	unsigned char *buf = malloc(REPLAY_CHUNK + sizeof(struct rec_header));

	memset(out, 0, sizeof(*out));
	if (!buf)
		return;
	for (uint64_t pos = from; pos < size; pos += REPLAY_CHUNK) {
		ssize_t n = pread(fd, buf, REPLAY_CHUNK + sizeof(struct rec_header), (off_t)pos);
		ssize_t lim = n < REPLAY_CHUNK + (ssize_t)sizeof(struct rec_header) ? n : REPLAY_CHUNK +
		    (ssize_t)sizeof(struct rec_header) - 1;
		unsigned char *p = buf, *q;
		while (n > 0 && p < buf + lim &&
		    (q = memmem(p, (size_t)(buf + lim - p), &magic, 4)) != NULL) {
			struct rec_header h;
			p = q + 1;
			if (q + sizeof(h) > buf + n || q - buf >= REPLAY_CHUNK)
				continue;
			memcpy(&h, q, sizeof(h));
			if (rec_header_check(&h, 0) || h.seq <= after_seq)
				continue;
			uint64_t at = pos + (uint64_t)(q - buf), e = at + rec_size(&h);
			out->end = e > out->end ? e : out->end;
			out->mark = h.synced > out->mark ? h.synced : out->mark;
			if (!out->first.seq || h.seq < out->first.seq) {
				out->first = h;
				out->first_pos = at;
			}
		}
	}
	free(buf);
	if (out->end > size)
		out->end = size;
}

/*
 * Do records with a good header and seq > after_seq start in [from, size)?
 * 0 if not, else where the last of them ends (at most size): the bytes that
 * hold them.
 */
uint64_t
seg_later_records_end(int fd, uint64_t from, uint64_t size, uint64_t after_seq)
{
	struct later l;

	seg_later_scan(fd, from, size, after_seq, &l);
	return l.end;
}

/*
 * Replay reads the log through a window of REPLAY_CHUNK bytes, so scanning
 * many small records costs few system calls.  A takeover, which reads only
 * the headers of all but the last record, maps the segment instead (the
 * window is then the whole mapping): copying every record's data through a
 * buffer was most of a replacement worker's start-up under write load.
 */
struct window {
	unsigned char	*buf;	/* the buffer, or the mapping */
	int		 fd;
	uint64_t	 off;	/* file offset of buf[0] */
	size_t		 len;	/* valid bytes in buf */
	unsigned char	*chunk;	/* the REPLAY_CHUNK buffer */
	void		*map;	/* non-NULL: buf is this mapping of map_len bytes */
	size_t		 map_len;
};

/* Point the window at fd, of size bytes, from file offset pos on; map it if asked. */
static void
window_open(struct window *win, int fd, uint64_t pos, uint64_t size, int map)
{
	if (win->map)
		munmap(win->map, win->map_len);
	win->map = NULL;
	win->buf = win->chunk;
	win->fd = fd;
	win->off = 0;
	win->len = 0;
	if (map) {
		uint64_t start = pos & ~(uint64_t)(sysconf(_SC_PAGESIZE) - 1);
		void *m = size > start ? mmap(NULL, (size_t)(size - start), PROT_READ, MAP_SHARED,
		    fd, (off_t)start) : MAP_FAILED;
		if (m != MAP_FAILED) {
			win->map = m;
			win->map_len = (size_t)(size - start);
			win->buf = m;
			win->off = start;
			win->len = win->map_len;
		}
	}
}

static void
window_close(struct window *win)
{
	if (win->map)
		munmap(win->map, win->map_len);
	win->map = NULL;
}

/* Make [pos, pos+len) (len <= REPLAY_CHUNK) be in the window; 0, or -1 past the file's end. */
static int
window_fill(struct window *win, uint64_t pos, size_t len)
{
	if (pos >= win->off && pos + len <= win->off + win->len)
		return 0;
	if (win->map)
		return -1;	/* the mapping ends where the file did */
	ssize_t n = pread(win->fd, win->buf, REPLAY_CHUNK, (off_t)pos);
	win->off = pos;
	win->len = n > 0 ? (size_t)n : 0;
	return win->len < len ? -1 : 0;
}

/* Copy len bytes at file offset pos; 0, or -1 if they are not all in the file. */
static int
window_read(struct window *win, uint64_t pos, void *out, size_t len)
{
	if (len > REPLAY_CHUNK)
		return pread(win->fd, out, len, (off_t)pos) == (ssize_t)len ? 0 : -1;
	if (window_fill(win, pos, len) < 0)
		return -1;
	memcpy(out, win->buf + (pos - win->off), len);
	return 0;
}

/* crc32c of len bytes at file offset pos, through the window. */
static int
window_crc(struct window *win, uint64_t pos, uint64_t len, uint32_t *crc)
{
	*crc = 0;
	while (len > 0) {
		size_t n = len < REPLAY_CHUNK ? (size_t)len : REPLAY_CHUNK;
		if (window_fill(win, pos, n) < 0)
			return -1;
		*crc = crc32c(*crc, win->buf + (pos - win->off), n);
		pos += n;
		len -= n;
	}
	return 0;
}

/* Keep a copy of bytes about to be cut off, for whoever investigates. */
static void
seg_save_tail(struct wlog *w, uint32_t segno, int fd, uint64_t from, uint64_t size)
{
	char name[64];
	unsigned char *buf = malloc(REPLAY_CHUNK);
	int out;

	if (!buf)
		return;
	snprintf(name, sizeof(name), "%08x.seg.cut-%llx", segno, (unsigned long long)from);
	/* a new file only: never through a symlink, never over an older copy */
	out = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	for (uint64_t pos = from; out >= 0 && pos < size; ) {
		/* up to size only: zeros ahead of the tail (the filler) are not cut bytes */
		size_t want = size - pos < REPLAY_CHUNK ? (size_t)(size - pos) : REPLAY_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)pos);
		if (n <= 0 || write(out, buf, (size_t)n) != n)
			break;
		pos += (uint64_t)n;
	}
	if (out >= 0) {
		fsync(out);
		close(out);
		hlog(HLOG_WARN, "kept the %llu bytes cut from segment %08x in %s/%s",
		    (unsigned long long)(size - from), segno, w->dir, name);
	}
	free(buf);
}

/* Is the REC_WRITE at file offset pos (header h, already checked) whole?  NULL if so. */
static const char *
window_verify(struct window *win, uint64_t pos, const struct rec_header *h, uint32_t *table)
{
	uint64_t nblk = rec_blocks(h->length);
	uint64_t data = pos + rec_data_start(h);

	if (nblk > REC_DATA_MAX / REC_BLOCK)	/* rec_header_check() saw to that */
		return "record length out of range";
	if (window_read(win, pos + sizeof(*h), table, 4 * nblk) < 0)
		return "unreadable crc table";
	if (crc32c(0, table, 4 * nblk) != h->data_crc)
		return "crc table checksum mismatch";
	for (uint64_t i = 0; i < nblk; i++) {
		uint32_t crc;
		if (window_crc(win, data + i * REC_BLOCK, rec_block_len(h, i), &crc) < 0)
			return "unreadable record data";
		if (crc != table[i])
			return "record data checksum mismatch";
	}
	return NULL;
}

/* Is h all zeros (never written, or the filler's)? */
static int
rec_header_blank(const struct rec_header *h)
{
	static const struct rec_header zero;

	return memcmp(h, &zero, sizeof(*h)) == 0;
}

/* Are bytes [from, size) of fd all zeros? */
static int
seg_zeros(int fd, uint64_t from, uint64_t size)
{
	static const unsigned char zero[64 << 10];
	unsigned char *buf = malloc(sizeof(zero));
	int all = buf != NULL;

	for (uint64_t pos = from; all && pos < size; ) {
		size_t n = size - pos < sizeof(zero) ? (size_t)(size - pos) : sizeof(zero);
		all = pread(fd, buf, n, (off_t)pos) == (ssize_t)n && memcmp(buf, zero, n) == 0;
		pos += n;
	}
	free(buf);
	return all;
}

/*
 * Replay met something that is not the next record at offset pos of the
 * newest segment segno (file bytes up to fsize; h = its header if one was
 * read).  That is the end of the log; decide what the bytes from pos on are:
 *   - a REC_END marker naming seq, or a sound header of a record older than
 *     seq: the end as an append left it in a reused file, with stale bytes
 *     after it.  Said at INFO, nothing kept.
 *   - anything else: a torn tail, said at WARN; if valid records of this
 *     life follow it, they are kept in a .cut- file for whoever looks.
 * Either way, bytes after pos are cut off (durably) on a first open: after
 * a power cut, records of this life may lie beyond the end (writes land out
 * of order), and once appends continue at pos they could be taken for their
 * successors after a second power cut (tests/rigs/power-loss found this).  A
 * takeover (trust_complete: the page cache holds all that was written, and
 * appends are serialized) leaves stale bytes alone, to be overwritten, and
 * cuts only a torn record.  A read-only open cuts nothing and notes a torn
 * tail.
 *
 * A header of zeros is where the filler's zeros begin: the end of the log,
 * never damage.  When zeros run to the file's end, they are kept for
 * appends to overwrite, and need no REC_END marker (stale_end).  When
 * something follows them, it is what a REC_END would have announced
 * (stale bytes, cut at INFO) unless records of this life (seq or later)
 * lie there: after a power cut one may (its write landed, an earlier one's
 * did not), and that is a torn tail like any other.  A takeover keeps all.
 * 0 or -errno with err set.
 */
static int
replay_end(struct wlog *w, uint32_t segno, int fd, uint64_t pos, uint64_t fsize, uint64_t seq,
    int trust_complete, const struct rec_header *h, const char *why,
    struct wlog_replay_stats *stats, char *err, size_t errlen)
{
	struct rec_header c, part;
	int stale = 0, rc;
	uint64_t rest = fsize - pos, later;

	/* less than a header left: zeros of the filler's too, if that is what they are */
	memset(&part, 0, sizeof(part));
	if (!h && rest < sizeof(part) && pread(fd, &part, (size_t)rest, (off_t)pos) == (ssize_t)rest)
		h = &part;
	if (h) {
		c = *h;
		c.hdr_crc = 0;
		stale = h->magic == REC_MAGIC && crc32c(0, &c, sizeof(c)) == h->hdr_crc &&
		    (h->type == REC_END ? h->seq <= seq : h->seq < seq);
	}
	if (!stale && h && rec_header_blank(h)) {
		if (trust_complete || seg_zeros(fd, pos, fsize)) {
			w->size -= rest;
			w->tail_fsize = fsize;
			w->stale_end = trust_complete ? fsize : pos;
			return 0;
		}
		/* zeros, then bytes of an earlier life of the file, unless records of this one follow */
		stale = !seg_later_records_end(fd, pos + 1, fsize, seq - 1);
	}
	if (stale) {
		w->size -= rest;
		w->tail_fsize = fsize;
		if (w->readonly || trust_complete)
			return 0;
		hlog(HLOG_INFO, "log segment %08x: records end at offset %llu; cutting the %llu bytes "
		    "after them (%s)", segno, (unsigned long long)pos, (unsigned long long)rest,
		    h->type == REC_END ? "an end marker and an earlier use of the file" :
		    "an earlier use of the file");
		if (ftruncate(fd, (off_t)pos) < 0 || fdatasync(fd) < 0) {
			int e = errno;
			snprintf(err, errlen, "cannot cut log segment %08x at its end: %s", segno,
			    strerror(e));
			return -e;
		}
		if ((rc = w->media->ops->seg_cut(w->media, segno, pos)) < 0) {
			snprintf(err, errlen, "cannot cut log segment %08x at its end (%s): %s", segno,
			    w->media->ops->name, strerror(-rc));
			return rc;
		}
		stats->stale_bytes = rest;
		w->tail_fsize = pos;
		w->stale_end = pos;
		return 0;
	}
	later = seg_later_records_end(fd, pos + 1, fsize, seq);
	if (w->readonly) {
		/* a check: say what an open would cut, cut nothing */
		stats->torn_bytes = rest;
		snprintf(w->note, sizeof(w->note), "log segment %08x ends in %llu bytes "
		    "of torn tail at offset %llu (%s)%s", segno, (unsigned long long)rest,
		    (unsigned long long)pos, why, later ? "; valid records follow it" : "");
		w->size -= rest;
		w->tail_fsize = fsize;
		return 0;
	}
	if (later)
		seg_save_tail(w, segno, fd, pos, later);
	hlog(HLOG_WARN, "log segment %08x: cutting %llu bytes of torn tail at offset %llu (%s)",
	    segno, (unsigned long long)rest, (unsigned long long)pos, why);
	/*
	 * Durably, before anything is appended here: if a power cut undid the
	 * cut, records it removed (valid ones can follow a torn one) would come
	 * back after new records of the same length, and replay would take them
	 * as their successors.  (Found by tests/rigs/power-loss with a second power cut.)
	 */
	if (ftruncate(fd, (off_t)pos) < 0 || fdatasync(fd) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot cut torn tail of segment %08x: %s",
		    segno, strerror(e));
		return -e;
	}
	/* the medium may hold the torn record too (sent by a sync it never acknowledged) */
	if ((rc = w->media->ops->seg_cut(w->media, segno, pos)) < 0) {
		snprintf(err, errlen, "cannot cut torn tail of segment %08x (%s): %s", segno,
		    w->media->ops->name, strerror(-rc));
		return rc;
	}
	stats->torn_bytes = rest;
	w->size -= rest;
	w->tail_fsize = pos;
	w->stale_end = pos;
	return 0;
}

/*
 * The one header that a change of a single byte of h makes sound, with
 * sequence number seq and rec_size() len; 1 if there is exactly one
 * (stored in *fix), else 0.  A bit flip or a byte rotted in a header is
 * what this recovers; a header it recovers still fails its checksum on
 * disk, so reads of its range fail (wlog_read.c) instead of serving stale bytes.
 */
static int
rec_header_repair(const struct rec_header *h, uint64_t seq, uint64_t len, struct rec_header *fix)
{
	int found = 0;

	for (size_t i = 0; i < sizeof(*h); i++) {
		for (unsigned v = 0; v < 256; v++) {
			struct rec_header c = *h;
			unsigned char *b = (unsigned char *)&c;
			if (b[i] == v)
				continue;
			b[i] = (unsigned char)v;
			if (rec_header_check(&c, seq) || rec_size(&c) != len)
				continue;
			if (found++)
				return 0;	/* ambiguous: trust neither */
			*fix = c;
		}
	}
	return found == 1;
}

/*
 * Replay found damage at offset pos of the newest segment segno (file bytes
 * up to end), where record seq should be (h = what its header holds, whole
 * or not, header_sound = it passed rec_header_check).  Is it a torn tail or
 * bit rot in records that were synced?  A later record of this life whose
 * synced mark (logfmt.h) reaches past the damaged bytes proves they had been
 * fdatasync'ed: a power cut cannot have torn them.  Then:
 *   - a sound header (the damage is in the crc table or data): 1, apply
 *     *fix = *h as usual; reads fail just the damaged blocks;
 *   - a damaged header: the range is known only if exactly one record is
 *     missing before the next of this life and one changed byte of the
 *     header makes it sound with the length of the gap: 1, apply that
 *     (reads of it fail: its header stays bad on disk);
 *   - otherwise -EUCLEAN with err set: which bytes of which disk the records
 *     held is unknown, and serving the older bytes would be wrong.
 * 0 if the damage is not proven synced (a torn tail: replay_end()).
 * Replay goes on after *fix (rec_size(fix) bytes).  *proof_end is where
 * the records that proved it end: replay must keep them all, or the next
 * replay, without the proof, would cut what this one kept (wlog_replay
 * refuses the log rather than end it before *proof_end).
 */
static int
replay_damage(uint32_t segno, int fd, uint64_t pos, uint64_t end, uint64_t seq,
    const struct rec_header *h, int header_sound, const char *why, struct rec_header *fix,
    uint64_t *proof_end, char *err, size_t errlen)
{
	struct rec_header c = *h;
	struct later l;
	uint64_t next;

	c.hdr_crc = 0;
	if (header_sound) {
		next = pos + rec_size(h);
		if (next > end)
			return 0;
		seg_later_scan(fd, next, end, seq, &l);
		if (!l.end || l.mark < LADDR(segno, next))
			return 0;
		*proof_end = l.end;
		hlog(HLOG_ERROR, "log segment %08x: record %llu at offset %llu was synced and is "
		    "damaged since (%s); later records kept, reads of its damaged blocks fail with EIO",
		    segno, (unsigned long long)seq, (unsigned long long)pos, why);
		*fix = *h;
		return 1;
	}
	/* a REC_END or a stale record is no damage; neither is the filler's zeros */
	if (rec_header_blank(h) || (h->magic == REC_MAGIC && crc32c(0, &c, sizeof(c)) == h->hdr_crc))
		return 0;
	seg_later_scan(fd, pos + 1, end, seq - 1, &l);
	if (!l.end || l.mark < LADDR(segno, l.first_pos))
		return 0;
	if (l.first.seq == seq + 1 && rec_header_repair(h, seq, l.first_pos - pos, fix)) {
		*proof_end = l.end;
		hlog(HLOG_ERROR, "log segment %08x: the header of record %llu at offset %llu was "
		    "synced and is damaged since (%s); later records kept, reads of disk %llu bytes "
		    "%llu..%llu fail with EIO", segno, (unsigned long long)seq,
		    (unsigned long long)pos, why, (unsigned long long)fix->disk_id,
		    (unsigned long long)fix->offset,
		    (unsigned long long)(fix->offset + fix->length));
		return 1;
	}
	snprintf(err, errlen, "log segment %08x is damaged at offset %llu (%s): records %llu..%llu "
	    "in bytes %llu..%llu were synced, and what they changed cannot be known; refusing to "
	    "serve older bytes in their place", segno, (unsigned long long)pos, why,
	    (unsigned long long)seq, (unsigned long long)(l.first.seq - 1),
	    (unsigned long long)pos, (unsigned long long)l.first_pos);
	return -EUCLEAN;
}

int
wlog_replay(struct wlog *w, uint64_t from, uint64_t next_seq, int trust_complete,
    int (*apply)(const struct rec_header *h, uint64_t rec_laddr, void *arg), void *arg,
    struct wlog_replay_stats *stats, char *err, size_t errlen)
{
	uint32_t table[REC_DATA_MAX / REC_BLOCK];
	unsigned char *buf;
	uint32_t segno = LADDR_SEG(from);
	uint64_t pos = LADDR_OFF(from);
	uint64_t seq = next_seq;
	int rc = 0;

	memset(stats, 0, sizeof(*stats));
	w->stale_end = w->tail_fsize;	/* the newest file's size: unknown bytes may follow */
	if (next_seq == 0) {
		/* records start at 1; 0 would also disable the sequence check below */
		snprintf(err, errlen, "checkpoint names sequence number 0, which no record has");
		return -EUCLEAN;
	}
	if (segno < w->first || segno > w->last || pos < sizeof(struct seg_header)) {
		snprintf(err, errlen, "checkpoint points at log address %llx, outside segments %08x..%08x",
		    (unsigned long long)from, w->first, w->last);
		return -EUCLEAN;
	}
	/* segments below the start may have been released; replay needs every one after it */
	for (uint32_t s = segno; s <= w->last; s++) {
		if (seg_fd(w, s) < 0) {
			snprintf(err, errlen, "log segment %08x is missing: replay from %llx needs every "
			    "segment up to %08x", s, (unsigned long long)from, w->last);
			return -EUCLEAN;
		}
	}
	buf = malloc(REPLAY_CHUNK);
	if (!buf)
		return -ENOMEM;
	struct window win = { .buf = buf, .fd = -1, .chunk = buf };
	struct stat st;
	uint64_t end = 0;	/* where this segment's records end (the newest: its file's end) */
	uint64_t proof_end = 0;	/* replay_damage: records that proved damage synced end here */
	for (;;) {
		int fd = seg_fd(w, segno);
		struct rec_header h;
		const char *why = NULL;
		int header_read = 0;	/* 1: h was read, 2: and it is sound */

		if (win.fd != fd) {
			/* nothing else writes the log while it is replayed: one fstat per segment */
			if (fstat(fd, &st) < 0) {
				rc = -errno;
				snprintf(err, errlen, "cannot stat log segment %08x: %s", segno,
				    strerror(errno));
				break;
			}
			end = segno == w->last ? (uint64_t)st.st_size : seg_end(w, segno);
			/* a sealed file shorter than its end is damaged: reads past it fail below */
			window_open(&win, fd, pos, end < (uint64_t)st.st_size ? end : (uint64_t)st.st_size,
			    trust_complete);
		}
		if (pos == end) {
			if (segno == w->last)
				break;
			segno++;
			pos = sizeof(struct seg_header);
			continue;
		}
		if (pos + sizeof(h) > end)
			why = "partial record header";
		else if (window_read(&win, pos, &h, sizeof(h)) < 0)
			why = "unreadable record header";
		else if ((header_read = 1, why = rec_header_check(&h, seq)) == NULL &&
		    (header_read = 2, h.type == REC_WRITE)) {
			/*
			 * With trust_complete, only a record that ends the log can be
			 * incomplete: one followed by its successor was written whole.
			 * In a reused file the bytes after the last record are stale,
			 * so "ends the log" is "no valid successor follows", not "the
			 * file ends".
			 */
			uint64_t next = pos + rec_size(&h);
			int verify = !trust_complete || next + sizeof(h) > end;
			struct rec_header nh;
			if (!verify)
				verify = window_read(&win, next, &nh, sizeof(nh)) < 0 ||
				    rec_header_check(&nh, seq + 1) != NULL;
			if (next > end)
				why = "record data cut short";
			else if (verify)
				why = window_verify(&win, pos, &h, table);
		}
		if (why && segno == w->last && header_read) {
			struct rec_header fix;
			rc = replay_damage(segno, fd, pos, end, seq, &h, header_read == 2, why, &fix,
			    &proof_end,
			    err, errlen);
			if (rc < 0)
				break;
			if (rc > 0) {
				/* synced, then damaged: apply what is known, go on after it */
				h = fix;
				why = NULL;
				rc = 0;
				stats->damaged++;
			}
		}
		if (why) {
			if (segno != w->last) {
				rc = -EUCLEAN;
				snprintf(err, errlen, "log segment %08x is corrupt at offset %llu: %s",
				    segno, (unsigned long long)pos, why);
				break;
			}
			if (pos < proof_end) {
				/* the records that proved earlier damage synced would go */
				rc = -EUCLEAN;
				snprintf(err, errlen, "log segment %08x: records up to offset %llu prove "
				    "that damaged records before them were synced, but the log cannot "
				    "be read past offset %llu (%s); refusing rather than cutting either",
				    segno, (unsigned long long)proof_end, (unsigned long long)pos, why);
				break;
			}
			rc = replay_end(w, segno, fd, pos, end, seq, trust_complete,
			    header_read ? &h : NULL, why, stats, err, errlen);
			if (rc == 0)
				end = pos;
			break;
		}
		if ((rc = apply(&h, LADDR(segno, pos), arg)) < 0) {
			snprintf(err, errlen, "cannot apply record %llu: %s",
			    (unsigned long long)h.seq, strerror(-rc));
			break;
		}
		stats->records++;
		stats->bytes += rec_size(&h);
		pos += rec_size(&h);
		seq++;
	}
	window_close(&win);
	free(buf);
	if (rc == 0) {
		w->last = segno;	/* later segments were empty or never existed */
		w->tail = LADDR(segno, pos);
		w->synced = 0;
		w->next_seq = seq;
		w->replayed = 1;
	}
	return rc;
}
