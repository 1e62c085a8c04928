/*
 * hlog: the one logging function of hcowfs.
 *
 * Every program (supervisor, worker, hcowctl) writes its messages through
 * hlog().  A line reads
 *
 *     2026-11-24T22:51:11.123Z mount.hcowfs[123] error: template 'deb12.img' changed since clone
 *
 * and goes to stderr, which the supervisor points at the mount's log file
 * (DATADIR/hcowfs.log) when it daemonizes, so the log of a mount is one file
 * with the supervisor's and every worker's lines interleaved.  Messages are
 * lowercase with no full stop; the subject is quoted.
 */
#ifndef HCOWFS_HLOG_H
#define HCOWFS_HLOG_H

enum hlog_level { HLOG_DEBUG, HLOG_INFO, HLOG_WARN, HLOG_ERROR };

/* Set the program name shown in each line and the lowest level written. */
void hlog_init(const char *prog, enum hlog_level min_level);

/*
 * Plain mode prints "prog: message", for a person at a terminal (a command
 * that fails at start-up); log mode, the default, prefixes time, pid and level.
 */
void hlog_plain(int on);

void hlog(enum hlog_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* For start-up and tools only: log at error level and exit(code). */
void die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

#endif
