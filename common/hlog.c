/*
 * hlog: timestamped log lines on stderr.  See hlog.h.
 *
 * One write(2) per line so that lines of concurrent processes sharing the
 * log file (O_APPEND) never interleave inside a line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hlog.h"

static const char *hlog_prog = "hcowfs";
static enum hlog_level hlog_min = HLOG_INFO;
static int hlog_is_plain;

static const char *const hlog_names[] = { "debug", "info", "warning", "error" };

void
hlog_init(const char *prog, enum hlog_level min_level)
{
	hlog_prog = prog;
	hlog_min = min_level;
}

void
hlog_plain(int on)
{
	hlog_is_plain = on;
}

static void
hlog_v(enum hlog_level level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int saved = errno;

	if (level < hlog_min)
		return;
	if (hlog_is_plain) {
		n = (size_t)snprintf(line, sizeof(line), "%s: %s", hlog_prog,
		    level == HLOG_WARN ? "warning: " : "");
	} else {
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%ld] %s: ",
		    (long)tv.tv_usec / 1000, hlog_prog, (long)getpid(), hlog_names[level]);
	}
	if (n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	n = strlen(line);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

void
hlog(enum hlog_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hlog_v(level, fmt, ap);
	va_end(ap);
}

void
die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hlog_v(HLOG_ERROR, fmt, ap);
	va_end(ap);
	exit(code);
}
