/*
 * hddmodel.c: the timing of a 7200 rpm disk (one actuator, rotating media,
 * a write cache) and of a SATA SSD, for hddsim's FUSE files.
 *
 * The disk.  Bytes map to positions: recording zones of equal track counts,
 * outer zones first, whose tracks hold rate(zone) * one revolution of bytes;
 * a byte's track ("cylinder"; one surface is modelled, the seek curve works
 * in fractions of the stroke so the head count does not matter) and its
 * angle on that track follow from its offset.  Consecutive tracks continue
 * each other's angle, as track skew makes them on a real disk, so a long
 * transfer streams across tracks at the zone's rate.
 *
 * One arm serves one request at a time on a virtual timeline (arm_t): a
 * request starts at max(its arrival, arm_t) and costs
 *   seek     the curve of seek_time() over the cylinder distance (plus a
 *            write settle), 0 on the same track;
 *   rotation the wait until its first sector's angle is under the head,
 *            the head's angle being (time mod revolution) / revolution;
 *   transfer length / zone rate.
 * So a request that continues where the last one ended streams if it was
 * queued in time, and waits nearly a revolution if it comes after a round
 * trip (a flush's): the figure the model exists to get right.
 *
 * Queues and their states.  A read, or a write with the cache off, waits on
 * the FUSE thread that issued it (readq) until the dispatcher has served it
 * and slept until its end time.  A write with the cache on is acknowledged
 * once it is in the cache (cache_bytes + len <= wcache_bytes, else it waits
 * for room), costs the interface time, and is drained later (wq).  A request
 * goes QUEUED -> IN SERVICE (dispatch(), which picks it, see pick(): reads
 * before the cache drain, in arrival order except that a read continuing at
 * the head goes first and reads submitted together go in ascending order,
 * as NCQ would; cached writes drain by the same rule) -> DONE (dispatch(), after
 * sleeping with TIMER_ABSTIME until its end on the model timeline, so
 * oversleeping does not add up).  hdd_flush() returns when wq is empty and
 * nothing is in service.
 *
 * Read-ahead: after a read the head goes on reading into the drive's buffer
 * while the arm is idle, up to readahead_bytes; a read that lies within what
 * has passed under the head is answered from the buffer.
 *
 * The SSD: channels requests in service at once, each read_lat (or
 * write_lat) plus its share of one transfer rate; no queue order.
 *
 * Locks: each device has one mutex over its state and counters; the trace
 * has its own.  Trace lines: "start_us dev op offset length seek_us rot_us
 * xfer_us", "start_us dev F 0 0 0 0 0" for a flush, "us mark NAME" for a
 * phase mark.
 */
#include "hddmodel.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS 1000000000LL
#define MAX_ZONES 64
#define BATCH_NS 200000	/* requests submitted together arrive within this */

struct hreq {
	enum media_op op;
	uint64_t off, len;
	int64_t arrival;
	int done, cached;
	struct hreq *next;
};

struct hdd {
	struct hdd_params p;
	uint64_t size;
	/* geometry */
	int64_t rev_ns;
	uint64_t track_bytes[MAX_ZONES], zone_start[MAX_ZONES + 1];
	uint64_t tracks_per_zone, ncyl;
	double seek_b, seek_c, seek_e, seek_x0;	/* seek curve, see fit_seek() */
	/* state, under mu */
	pthread_mutex_t mu;
	pthread_cond_t work, done, room;
	struct hreq *readq, *wq;
	uint64_t cache_bytes;
	int busy, stop, timing;
	int64_t arm_t;		/* when the arm finishes its current work */
	uint64_t head_off, head_cyl;
	uint64_t ra_base, ra_off;	/* read-ahead: buffer holds [ra_base, ra_off + read on) */
	int64_t ra_t;		/* when the head was at ra_off; 0 = no read-ahead */
	struct media_stats st;
	pthread_t thread;
};

struct ssd {
	struct ssd_params p;
	pthread_mutex_t mu;
	int64_t *chan_t;	/* when each channel is free */
	int64_t bus_t;		/* when the shared transfer is free */
	int timing;
	struct media_stats st;
};

static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *trace;

void hdd_default_params(struct hdd_params *p)
{
	p->rpm = 7200;
	p->rate_outer = 200e6;
	p->rate_inner = 100e6;
	p->zones = 16;
	p->seek_tt_ms = 0.8;
	p->seek_avg_ms = 8.5;
	p->seek_full_ms = 16.0;
	p->write_settle_ms = 0.5;
	p->iface_rate = 550e6;
	p->wcache_bytes = 64ULL << 20;
	p->wcache_on = 1;
	p->readahead_bytes = 2 << 20;
}

void ssd_default_params(struct ssd_params *p)
{
	p->read_lat_us = 90;
	p->write_lat_us = 40;
	p->channels = 16;
	p->rate = 530e6;
}

int64_t media_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NS + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
	struct timespec ts = { t / NS, t % NS };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void trace_line(int64_t start, const char *dev, char op, uint64_t off, uint64_t len,
		       int64_t seek, int64_t rot, int64_t xfer)
{
	pthread_mutex_lock(&trace_mu);
	if (trace)
		fprintf(trace, "%lld %s %c %llu %llu %lld %lld %lld\n", (long long)(start / 1000), dev,
			op, (unsigned long long)off, (unsigned long long)len, (long long)(seek / 1000),
			(long long)(rot / 1000), (long long)(xfer / 1000));
	pthread_mutex_unlock(&trace_mu);
}

void media_set_trace(FILE *f)
{
	pthread_mutex_lock(&trace_mu);
	if (trace)
		fclose(trace);
	trace = f;
	if (f)	/* a line per request: a reader never sees half of one */
		setvbuf(f, NULL, _IOLBF, 0);
	pthread_mutex_unlock(&trace_mu);
}

void media_trace_mark(const char *name)
{
	pthread_mutex_lock(&trace_mu);
	if (trace) {
		fprintf(trace, "%lld mark %s\n", (long long)(media_now() / 1000), name);
		fflush(trace);
	}
	pthread_mutex_unlock(&trace_mu);
}

/* ---- the disk's geometry and mechanics ---------------------------------- */

/* Seek time in ms over x, a fraction of the full stroke: a + b*sqrt(x) for
 * short seeks (the arm accelerates half way and decelerates), c + e*x beyond
 * x0 (coasting), joined with equal slope at x0. */
static double seek_curve(const struct hdd *d, double x)
{
	if (x <= d->seek_x0)
		return d->p.seek_tt_ms + d->seek_b * sqrt(x);
	return d->seek_c + d->seek_e * x;
}

static void seek_fit_at(struct hdd *d, double x0)
{
	double s = sqrt(x0);

	d->seek_x0 = x0;
	d->seek_b = (d->p.seek_full_ms - d->p.seek_tt_ms) / (s + (1 - x0) / (2 * s));
	d->seek_e = d->seek_b / (2 * s);
	d->seek_c = d->p.seek_full_ms - d->seek_e;
}

/* mean of seek_curve over two uniformly random positions (density 2(1-x)) */
static double seek_mean(const struct hdd *d)
{
	double sum = 0;
	int n = 2000;

	for (int i = 0; i < n; i++) {
		double x = (i + 0.5) / n;
		sum += seek_curve(d, x) * 2 * (1 - x) / n;
	}
	return sum;
}

/* Chooses x0 (bisection; the mean grows with x0) so that the curve meets
 * track-to-track, full stroke and the datasheet's average. */
static void fit_seek(struct hdd *d)
{
	double lo = 0.01, hi = 1.0;

	for (int i = 0; i < 50; i++) {
		seek_fit_at(d, (lo + hi) / 2);
		if (seek_mean(d) < d->p.seek_avg_ms)
			lo = d->seek_x0;
		else
			hi = d->seek_x0;
	}
}

static void geometry(struct hdd *d)
{
	uint64_t per_set = 0;
	int z;

	d->rev_ns = (int64_t)(60.0 * NS / d->p.rpm);
	for (z = 0; z < d->p.zones; z++) {
		double rate = d->p.rate_outer -
			(d->p.rate_outer - d->p.rate_inner) * z / (d->p.zones > 1 ? d->p.zones - 1 : 1);
		d->track_bytes[z] = ((uint64_t)(rate * d->rev_ns / NS) / 512) * 512;
		per_set += d->track_bytes[z];
	}
	if (per_set == 0)	/* no zones: hdd_create() clamps zones to 1.. */
		per_set = 512;
	d->tracks_per_zone = (d->size + per_set - 1) / per_set;
	d->zone_start[0] = 0;
	for (z = 0; z < d->p.zones; z++)
		d->zone_start[z + 1] = d->zone_start[z] + d->tracks_per_zone * d->track_bytes[z];
	d->ncyl = d->tracks_per_zone * d->p.zones;
	fit_seek(d);
}

static int zone_of(const struct hdd *d, uint64_t off)
{
	int z = 0;

	while (z < d->p.zones - 1 && off >= d->zone_start[z + 1])
		z++;
	return z;
}

static uint64_t cyl_of(const struct hdd *d, uint64_t off)
{
	int z = zone_of(d, off);

	return z * d->tracks_per_zone + (off - d->zone_start[z]) / d->track_bytes[z];
}

static double zone_rate(const struct hdd *d, int z)
{
	return (double)d->track_bytes[z] * NS / d->rev_ns;
}

/* Waiting time from t until the sector at off is under the head. */
static int64_t rot_wait(const struct hdd *d, uint64_t off, int64_t t)
{
	int z = zone_of(d, off);
	uint64_t tb = d->track_bytes[z];
	int64_t sector_ns = (int64_t)((double)((off - d->zone_start[z]) % tb) / tb * d->rev_ns);
	int64_t head_ns = t % d->rev_ns;
	int64_t w = ((sector_ns - head_ns) % d->rev_ns + d->rev_ns) % d->rev_ns;

	/* rounding must not turn "just in time" into a whole revolution */
	return w > d->rev_ns - 2000 ? 0 : w;
}

/* Is [off, off+len) in the read-ahead buffer at time t, or arriving under
 * the head while the drive still reads on?  Sets *end to when it is all
 * there. */
static int ra_hit(const struct hdd *d, uint64_t off, uint64_t len, int64_t t, int64_t *end)
{
	double rate = zone_rate(d, zone_of(d, d->ra_off));
	uint64_t ahead;

	if (!d->ra_t || off < d->ra_base)
		return 0;
	ahead = (uint64_t)((t - d->ra_t) * rate / NS);
	if (ahead >= d->p.readahead_bytes) {	/* buffer full: the drive stopped */
		ahead = d->p.readahead_bytes;
		if (off + len > d->ra_off + ahead)
			return 0;
	}
	if (off > d->ra_off + ahead)
		return 0;
	*end = d->ra_t + (off + len > d->ra_off ? (int64_t)((off + len - d->ra_off) * NS / rate) : 0);
	return 1;
}

/* Serves r from start on the timeline; returns its end.  Under mu. */
static int64_t serve(struct hdd *d, struct hreq *r, int64_t start)
{
	int64_t seek = 0, rot = 0, xfer, t, end;
	uint64_t cyl = cyl_of(d, r->off);

	if (!d->timing) {
		d->head_off = r->off + r->len;
		d->head_cyl = cyl_of(d, d->head_off - 1);
		d->ra_t = 0;
		return start;
	}
	if (r->op == MEDIA_READ && ra_hit(d, r->off, r->len, start, &end)) {
		d->st.ra_hits++;
		d->st.reads++;
		d->st.bytes_read += r->len;
		end = end > start ? end : start;
		trace_line(start, "hdd", 'R', r->off, r->len, 0, 0, end - start);
		if (end > start) {
			d->st.xfer_ns += end - start;
			d->head_off = r->off + r->len;
			d->head_cyl = cyl_of(d, d->head_off - 1);
			d->ra_off = d->head_off;
			d->ra_t = end;
		}
		return end;
	}
	if (r->off != d->head_off)
		d->st.seeks++;
	if (cyl != d->head_cyl) {
		uint64_t dist = cyl > d->head_cyl ? cyl - d->head_cyl : d->head_cyl - cyl;
		double ms = seek_curve(d, (double)dist / d->ncyl);
		if (r->op == MEDIA_WRITE)
			ms += d->p.write_settle_ms;
		seek = (int64_t)(ms * 1e6);
	}
	t = start + seek;
	rot = rot_wait(d, r->off, t);
	xfer = (int64_t)(r->len * NS / zone_rate(d, zone_of(d, r->off)));
	end = t + rot + xfer;
	d->st.seek_ns += seek;
	d->st.rot_ns += rot;
	d->st.xfer_ns += xfer;
	if (r->op == MEDIA_READ) {
		d->st.reads++;
		d->st.bytes_read += r->len;
		d->ra_base = r->off;
		d->ra_off = r->off + r->len;
		d->ra_t = end;
	} else {
		d->st.writes++;
		d->st.bytes_written += r->len;
		d->ra_t = 0;
	}
	d->head_off = r->off + r->len;
	d->head_cyl = cyl_of(d, d->head_off - 1);
	trace_line(start, "hdd", r->op, r->off, r->len, seek, rot, xfer);
	return end;
}

/* The request of q to serve next: one continuing at the head; else, of
 * those that arrived together with the oldest (within BATCH_NS, as one
 * submission), the lowest offset.  NULL when q is empty. */
static struct hreq **next_of(struct hdd *d, struct hreq **q)
{
	struct hreq **pp, **best = q;

	if (!*q)
		return NULL;
	for (pp = q; *pp; pp = &(*pp)->next)
		if ((*pp)->off == d->head_off)
			return pp;
	for (pp = q; *pp; pp = &(*pp)->next)
		if ((*pp)->arrival <= (*q)->arrival + BATCH_NS && (*pp)->off < (*best)->off)
			best = pp;
	return best;
}

/* Takes the next request off the queues: reads before the cache drain. */
static struct hreq *pick(struct hdd *d)
{
	struct hreq **best = next_of(d, &d->readq), *r;

	if (!best)
		best = next_of(d, &d->wq);
	r = *best;
	*best = r->next;
	return r;
}

static void *dispatch(void *arg)
{
	struct hdd *d = arg;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		struct hreq *r;
		int64_t start, end;

		while (!d->readq && !d->wq && !d->stop)
			pthread_cond_wait(&d->work, &d->mu);
		if (d->stop)
			break;
		if (d->timing && d->arm_t + BATCH_NS < media_now()) {
			/* the arm was idle: let the rest of a submission arrive (real
			 * time only; the request still starts at its arrival) */
			pthread_mutex_unlock(&d->mu);
			sleep_until(media_now() + BATCH_NS / 4);
			pthread_mutex_lock(&d->mu);
		}
		r = pick(d);
		d->busy = 1;
		start = r->arrival > d->arm_t ? r->arrival : d->arm_t;
		end = serve(d, r, start);
		if (end > d->arm_t)
			d->arm_t = end;
		if (d->timing) {
			pthread_mutex_unlock(&d->mu);
			sleep_until(end);
			pthread_mutex_lock(&d->mu);
		}
		d->busy = 0;
		if (r->cached) {
			d->cache_bytes -= r->len;
			free(r);
			pthread_cond_broadcast(&d->room);
		} else {
			r->done = 1;
		}
		pthread_cond_broadcast(&d->done);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static void append(struct hreq **q, struct hreq *r)
{
	while (*q)
		q = &(*q)->next;
	*q = r;
}

void hdd_io(struct hdd *d, enum media_op op, uint64_t off, uint64_t len)
{
	struct hreq mine = { .op = op, .off = off, .len = len }, *r;
	int64_t arrival = media_now();

	if (len == 0)
		return;
	pthread_mutex_lock(&d->mu);
	if (op == MEDIA_WRITE && d->p.wcache_on && len <= d->p.wcache_bytes) {
		if (d->cache_bytes + len > d->p.wcache_bytes)
			d->st.cache_waits++;
		while (d->cache_bytes + len > d->p.wcache_bytes)
			pthread_cond_wait(&d->room, &d->mu);
		r = calloc(1, sizeof(*r));
		if (r) {
			*r = mine;
			r->cached = 1;
			/* it entered the cache when room was made */
			r->arrival = media_now();
			d->cache_bytes += len;
			append(&d->wq, r);
			pthread_cond_signal(&d->work);
			pthread_mutex_unlock(&d->mu);
			if (d->timing)
				sleep_until(r->arrival + (int64_t)(len * NS / d->p.iface_rate));
			return;
		}
	}
	mine.arrival = arrival;
	append(&d->readq, &mine);
	pthread_cond_signal(&d->work);
	while (!mine.done)
		pthread_cond_wait(&d->done, &d->mu);
	pthread_mutex_unlock(&d->mu);
}

void hdd_flush(struct hdd *d)
{
	pthread_mutex_lock(&d->mu);
	while (d->wq || (d->busy && d->cache_bytes))
		pthread_cond_wait(&d->done, &d->mu);
	d->st.flushes++;
	pthread_mutex_unlock(&d->mu);
	trace_line(media_now(), "hdd", 'F', 0, 0, 0, 0, 0);
}

void hdd_set_wcache(struct hdd *d, int on, uint64_t bytes)
{
	pthread_mutex_lock(&d->mu);
	d->p.wcache_on = on;
	if (bytes)
		d->p.wcache_bytes = bytes;
	pthread_cond_broadcast(&d->room);
	pthread_mutex_unlock(&d->mu);
}

void hdd_set_timing(struct hdd *d, int on)
{
	pthread_mutex_lock(&d->mu);
	d->timing = on;
	d->arm_t = media_now();
	pthread_mutex_unlock(&d->mu);
}

static void stats_reset(pthread_mutex_t *mu, struct media_stats *st)
{
	pthread_mutex_lock(mu);
	memset(st, 0, sizeof(*st));
	st->since = media_now();
	pthread_mutex_unlock(mu);
}

void hdd_reset_stats(struct hdd *d)
{
	stats_reset(&d->mu, &d->st);
}

static int format_common(const char *dev, const struct media_stats *st, char *buf, size_t size)
{
	int64_t elapsed = media_now() - st->since;
	int64_t busy = st->seek_ns + st->rot_ns + st->xfer_ns;

	return snprintf(buf, size,
			"%s.reads=%llu\n%s.writes=%llu\n%s.bytes_read=%llu\n%s.bytes_written=%llu\n"
			"%s.flushes=%llu\n%s.seeks=%llu\n%s.seek_ms=%.3f\n%s.rotate_ms=%.3f\n"
			"%s.transfer_ms=%.3f\n%s.idle_ms=%.3f\n%s.elapsed_ms=%.3f\n"
			"%s.seek_share=%.4f\n",
			dev, (unsigned long long)st->reads, dev, (unsigned long long)st->writes,
			dev, (unsigned long long)st->bytes_read, dev, (unsigned long long)st->bytes_written,
			dev, (unsigned long long)st->flushes, dev, (unsigned long long)st->seeks,
			dev, st->seek_ns / 1e6, dev, st->rot_ns / 1e6, dev, st->xfer_ns / 1e6,
			dev, elapsed > busy ? (elapsed - busy) / 1e6 : 0.0, dev, elapsed / 1e6,
			dev, elapsed > 0 ? (double)st->seek_ns / elapsed : 0.0);
}

int hdd_format_stats(struct hdd *d, char *buf, size_t size)
{
	int n;

	pthread_mutex_lock(&d->mu);
	n = format_common("hdd", &d->st, buf, size);
	if (n >= 0 && (size_t)n < size)
		n += snprintf(buf + n, size - n,
			      "hdd.readahead_hits=%llu\nhdd.cache_full_waits=%llu\n"
			      "hdd.wcache=%d\nhdd.wcache_bytes=%llu\nhdd.cache_dirty_bytes=%llu\n"
			      "hdd.timing=%d\nhdd.size=%llu\nhdd.cylinders=%llu\n",
			      (unsigned long long)d->st.ra_hits, (unsigned long long)d->st.cache_waits,
			      d->p.wcache_on, (unsigned long long)d->p.wcache_bytes,
			      (unsigned long long)d->cache_bytes, d->timing,
			      (unsigned long long)d->size, (unsigned long long)d->ncyl);
	pthread_mutex_unlock(&d->mu);
	return n;
}

struct hdd *hdd_create(const struct hdd_params *p, uint64_t size)
{
	struct hdd *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->p = *p;
	if (d->p.zones < 1 || d->p.zones > MAX_ZONES)
		d->p.zones = 16;
	d->size = size;
	geometry(d);
	d->timing = 1;
	d->arm_t = media_now();
	d->st.since = d->arm_t;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->work, NULL);
	pthread_cond_init(&d->done, NULL);
	pthread_cond_init(&d->room, NULL);
	if (pthread_create(&d->thread, NULL, dispatch, d) != 0) {
		free(d);
		return NULL;
	}
	return d;
}

void hdd_destroy(struct hdd *d)
{
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	pthread_cond_signal(&d->work);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	while (d->wq) {
		struct hreq *r = d->wq;
		d->wq = r->next;
		free(r);
	}
	free(d);
}

/* ---- the SSD ------------------------------------------------------------ */

struct ssd *ssd_create(const struct ssd_params *p)
{
	struct ssd *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->p = *p;
	if (s->p.channels < 1)
		s->p.channels = 1;
	s->chan_t = calloc(s->p.channels, sizeof(*s->chan_t));
	if (!s->chan_t) {
		free(s);
		return NULL;
	}
	s->timing = 1;
	s->st.since = media_now();
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void ssd_destroy(struct ssd *s)
{
	free(s->chan_t);
	free(s);
}

void ssd_io(struct ssd *s, enum media_op op, uint64_t off, uint64_t len)
{
	int64_t now = media_now(), start, end, xfer;
	int c, best = 0;

	pthread_mutex_lock(&s->mu);
	for (c = 1; c < s->p.channels; c++)
		if (s->chan_t[c] < s->chan_t[best])
			best = c;
	start = s->chan_t[best] > now ? s->chan_t[best] : now;
	xfer = (int64_t)(len * NS / s->p.rate);
	end = start + (int64_t)((op == MEDIA_READ ? s->p.read_lat_us : s->p.write_lat_us) * 1000);
	s->bus_t = (s->bus_t > end ? s->bus_t : end) + xfer;
	end = s->bus_t;
	if (!s->timing)
		start = end = now;
	s->chan_t[best] = end;
	if (op == MEDIA_READ) {
		s->st.reads++;
		s->st.bytes_read += len;
	} else {
		s->st.writes++;
		s->st.bytes_written += len;
	}
	s->st.xfer_ns += end - start;
	pthread_mutex_unlock(&s->mu);
	trace_line(start, "ssd", op, off, len, 0, 0, end - start);
	if (s->timing)
		sleep_until(end);
}

void ssd_flush(struct ssd *s)
{
	pthread_mutex_lock(&s->mu);
	s->st.flushes++;
	pthread_mutex_unlock(&s->mu);
}

void ssd_set_timing(struct ssd *s, int on)
{
	pthread_mutex_lock(&s->mu);
	s->timing = on;
	pthread_mutex_unlock(&s->mu);
}

void ssd_reset_stats(struct ssd *s)
{
	stats_reset(&s->mu, &s->st);
}

int ssd_format_stats(struct ssd *s, char *buf, size_t size)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = format_common("ssd", &s->st, buf, size);
	pthread_mutex_unlock(&s->mu);
	return n;
}
