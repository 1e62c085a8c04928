/* hddmodel.h: timing models of a 7200 rpm disk and a SATA SSD (see hddmodel.c). */
#ifndef HDDMODEL_H
#define HDDMODEL_H

#include <stdint.h>
#include <stdio.h>

enum media_op { MEDIA_READ = 'R', MEDIA_WRITE = 'W' };

/* Every figure of the disk; README.md gives each one's source. */
struct hdd_params {
	double rpm;		/* spindle speed */
	double rate_outer;	/* sustained transfer, outermost zone, bytes/s */
	double rate_inner;	/* sustained transfer, innermost zone, bytes/s */
	int zones;		/* recording zones, equal numbers of tracks each */
	double seek_tt_ms;	/* track-to-track seek */
	double seek_avg_ms;	/* average seek over random pairs of positions */
	double seek_full_ms;	/* full-stroke seek */
	double write_settle_ms;	/* extra settle before a write after a seek */
	double iface_rate;	/* host interface (SATA 6 Gb/s), bytes/s */
	uint64_t wcache_bytes;	/* write cache size */
	int wcache_on;		/* write cache enabled */
	uint64_t readahead_bytes; /* how far the drive reads on after a read */
};

struct ssd_params {
	double read_lat_us;	/* per request, random read */
	double write_lat_us;	/* per request, write */
	int channels;		/* requests in service at once */
	double rate;		/* transfer, bytes/s, shared */
};

/* Counters of one device, as the stats file shows them. */
struct media_stats {
	uint64_t reads, writes, bytes_read, bytes_written, flushes;
	uint64_t seeks, ra_hits, cache_waits;
	int64_t seek_ns, rot_ns, xfer_ns;
	int64_t since;		/* CLOCK_MONOTONIC ns of the last reset */
};

struct hdd;
struct ssd;

void hdd_default_params(struct hdd_params *p);
void ssd_default_params(struct ssd_params *p);

int64_t media_now(void);

struct hdd *hdd_create(const struct hdd_params *p, uint64_t size);
void hdd_destroy(struct hdd *d);
/* Charges one request its model time; returns when the disk would answer. */
void hdd_io(struct hdd *d, enum media_op op, uint64_t off, uint64_t len);
/* Returns when the write cache is drained (a cache flush). */
void hdd_flush(struct hdd *d);
void hdd_set_wcache(struct hdd *d, int on, uint64_t bytes);
/* timing off: requests complete at once (fast set-up), queued ones too */
void hdd_set_timing(struct hdd *d, int on);
void hdd_reset_stats(struct hdd *d);
int hdd_format_stats(struct hdd *d, char *buf, size_t size);

struct ssd *ssd_create(const struct ssd_params *p);
void ssd_destroy(struct ssd *s);
void ssd_io(struct ssd *s, enum media_op op, uint64_t off, uint64_t len);
void ssd_flush(struct ssd *s);
void ssd_set_timing(struct ssd *s, int on);
void ssd_reset_stats(struct ssd *s);
int ssd_format_stats(struct ssd *s, char *buf, size_t size);

/* One text line per request and flush, or NULL for none (see hddmodel.c). */
void media_set_trace(FILE *f);
void media_trace_mark(const char *name);

#endif
