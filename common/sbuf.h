/*
 * sbuf: a growable string, for building control replies (text and JSON).
 *
 * An allocation failure does not abort: the buffer remembers it (sb->oom)
 * and later appends do nothing, so a reply path checks once at the end.
 */
#ifndef HCOWFS_SBUF_H
#define HCOWFS_SBUF_H

#include <stddef.h>

struct sbuf {
	char	*buf;		/* always NUL-terminated once non-empty */
	size_t	 len;
	size_t	 cap;
	int	 oom;
};

#define SBUF_INIT { NULL, 0, 0, 0 }

void sbuf_release(struct sbuf *sb);
void sbuf_reset(struct sbuf *sb);
void sbuf_add(struct sbuf *sb, const void *p, size_t n);
void sbuf_addstr(struct sbuf *sb, const char *s);
void sbuf_printf(struct sbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal, quotes included. */
void sbuf_json_str(struct sbuf *sb, const char *s);
/* The contents, "" when empty. */
const char *sbuf_str(const struct sbuf *sb);

#endif
