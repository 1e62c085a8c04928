/*
 * lifecycle: hcowctl's data movers (lifecycle.c): export a disk as a qcow2
 * overlay of its template, import such an overlay as a disk, promote a disk
 * to a new template; move a disk to another mount's store (move.c).  Each
 * returns the exit status, or exits 1 with one line after cleaning up
 * (failure, SIGINT, SIGTERM).
 */
#ifndef HCOWFS_LIFECYCLE_H
#define HCOWFS_LIFECYCLE_H

#include <stdint.h>

#include "json.h"
#include "mounts.h"
#include "sbuf.h"

int lifecycle_export(const struct hcow_mount *m, const char *name, const char *out);
int lifecycle_import(const struct hcow_mount *m, const char *in, const char *name,
    const char *tmpl);
int lifecycle_promote(const struct hcow_mount *m, const char *name, const char *tmpl);
int lifecycle_move(const struct hcow_mount *m, const char *name, const struct hcow_mount *to);

/*
 * The job, shared by the data movers: one per hcowctl run (lifecycle.c).
 * job_begin catches SIGINT and SIGTERM (the copy loops stop at the next
 * chunk); job_abort undoes what the job made (the temporary disk named by
 * job_temp_disk, a temporary file, the export daemon) and exits 1 with one
 * line.  The helpers below job_abort on failure.
 */
void job_begin(const char *verb, const struct hcow_mount *m);
void job_abort(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Disk name on mount m is the job's unfinished result (NULL: no longer). */
void job_temp_disk(const struct hcow_mount *m, const char *name);
/* The bytes the job will copy, for its progress line. */
void job_total(uint64_t bytes);
/* End the progress line. */
void job_progress_end(void);
/* Read up to COPY_CHUNK of [off, off+len) of fd into buf: the bytes read (at least 1). */
size_t read_chunk(int fd, uint64_t off, uint64_t len, char *buf);
/*
 * Copy [off, off+len) from fd `from` to fd `to` at the same offsets; with
 * sparse, all-zero blocks are not written (to is a new file: they are holes).
 * buf holds COPY_CHUNK bytes.
 */
void copy_bytes(int from, int to, uint64_t off, uint64_t len, int sparse, char *buf);
/* Make [off, off+len) of fd read as zeros (mode: a fallocate mode that does). */
void zero_bytes(int fd, uint64_t off, uint64_t len, int mode);
/* Disk name's ranges on m from `from` on, parsed (one page of the `ranges` verb). */
struct json *ranges_page(const struct hcow_mount *m, const char *name, uint64_t from);
/*
 * Are files a and b of one size, and equal on IMPORT_SAMPLES ranges spread
 * over them (the first and last included)?  Catches the wrong template;
 * cannot prove two files equal.
 */
int same_file_sampled(const char *a, const char *b);

#define COPY_CHUNK	(1u << 20)

#endif
