/* proto: see proto.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

static int
proto_word_ok(const char *w)
{
	if (*w == '\0')
		return 0;
	for (; *w; w++)
		if (*w < 0x21 || *w > 0x7e)
			return 0;
	return 1;
}

int
proto_parse(char *line, struct proto_req *req, const char **why)
{
	char *words[PROTO_ARGS_MAX + 2];
	int n = 0;
	char *p = line;

	memset(req, 0, sizeof(*req));
	for (;;) {
		char *sp = strchr(p, ' ');
		if (n == PROTO_ARGS_MAX + 2) {
			*why = "too many arguments";
			return -EINVAL;
		}
		words[n++] = p;
		if (!sp)
			break;
		*sp = '\0';
		p = sp + 1;
	}
	for (int i = 0; i < n; i++) {
		if (!proto_word_ok(words[i])) {
			*why = "empty word or byte outside printable ASCII";
			return -EINVAL;
		}
	}
	if (n < 2) {
		*why = "expected FORMAT VERB";
		return -EINVAL;
	}
	if (strcmp(words[0], "json") == 0)
		req->json = 1;
	else if (strcmp(words[0], "text") != 0) {
		*why = "format is neither 'text' nor 'json'";
		return -EINVAL;
	}
	req->verb = words[1];
	for (int i = 2; i < n; i++) {
		char *eq = strchr(words[i], '=');
		if (!eq || eq == words[i]) {
			*why = "argument is not KEY=VALUE";
			return -EINVAL;
		}
		*eq = '\0';
		for (int j = 0; j < req->nargs; j++) {
			if (strcmp(req->key[j], words[i]) == 0) {
				*why = "argument given twice";
				return -EINVAL;
			}
		}
		req->key[req->nargs] = words[i];
		req->val[req->nargs] = eq + 1;
		req->nargs++;
	}
	return 0;
}

const char *
proto_arg(const struct proto_req *req, const char *key)
{
	for (int i = 0; i < req->nargs; i++)
		if (strcmp(req->key[i], key) == 0)
			return req->val[i];
	return NULL;
}

/*
 * A decimal number at *p as printf writes it (digits only, no sign, space or
 * leading zero), at most max; advances *p past it.  0 or -1.
 */
static int
proto_number(const char **p, unsigned long long max, unsigned long long *out)
{
	const char *s = *p;
	unsigned long long v = 0;

	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

int
proto_parse_status(const char *line, int *err)
{
	unsigned long long v;

	if (strcmp(line, "ok") == 0) {
		*err = 0;
		return 0;
	}
	if (strncmp(line, "error ", 6) != 0)
		return -EINVAL;
	line += 6;
	if (proto_number(&line, INT_MAX, &v) < 0 || *line != '\0' || v == 0)
		return -EINVAL;
	*err = (int)v;
	return 0;
}

char *
proto_parse_request_id(char *line, unsigned long long *id)
{
	const char *p = line;

	if (proto_number(&p, ULLONG_MAX, id) < 0 || *p != ' ')
		return NULL;
	return line + (p - line) + 1;
}

size_t
proto_body_max(void)
{
	static size_t max;

	if (max == 0) {
		const char *env = getenv("HCOWFS_TEST_REPLY_MAX");
		unsigned long long v = env ? strtoull(env, NULL, 10) : 0;
		max = v > 0 && v < PROTO_BODY_MAX ? (size_t)v : PROTO_BODY_MAX;
	}
	return max;
}

ssize_t
proto_frame_split(const char *buf, size_t n, struct proto_frame *f)
{
	const char *nl = memchr(buf, '\n', n < PROTO_FRAME_HEAD_MAX ? n : PROTO_FRAME_HEAD_MAX);
	const char *p = buf;
	unsigned long long id, err, len;
	size_t head;

	if (!nl)
		return n < PROTO_FRAME_HEAD_MAX ? 0 : -EINVAL;
	if (proto_number(&p, ULLONG_MAX, &id) < 0 || *p++ != ' ' ||
	    proto_number(&p, INT_MAX, &err) < 0 || *p++ != ' ' ||
	    proto_number(&p, proto_body_max(), &len) < 0 || p != nl)
		return -EINVAL;
	head = (size_t)(nl - buf) + 1;
	if (n - head < len)
		return 0;
	f->id = id;
	f->err = (int)err;
	f->body = nl + 1;
	f->len = (size_t)len;
	return (ssize_t)(head + len);
}

ssize_t
proto_read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return n == 0 ? 0 : -EPIPE;
		if (c == '\n')
			break;
		if (n + 1 >= cap)
			return -E2BIG;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

void
proto_reader_init(struct proto_reader *r, int fd)
{
	r->fd = fd;
	r->off = r->len = 0;
}

ssize_t
proto_reader_line(struct proto_reader *r, char *line, size_t cap)
{
	size_t n = 0;
	int too_long = 0;

	for (;;) {
		const char *start = r->buf + r->off;
		const char *nl = memchr(start, '\n', r->len - r->off);
		size_t take = nl ? (size_t)(nl - start) : r->len - r->off;
		ssize_t got;

		if (!too_long && n + take < cap) {
			memcpy(line + n, start, take);
			n += take;
		} else {
			too_long = 1;	/* consumed all the same: the next call starts a line */
		}
		if (nl) {
			r->off += take + 1;
			break;
		}
		r->off = r->len = 0;
		do
			got = read(r->fd, r->buf, sizeof(r->buf));
		while (got < 0 && errno == EINTR);
		if (got < 0)
			return -errno;
		if (got == 0)
			return n == 0 && !too_long ? 0 : -EPIPE;
		r->len = (size_t)got;
	}
	if (too_long)
		return -E2BIG;
	line[n] = '\0';
	return (ssize_t)n;
}

/*
 * Move exactly len bytes between fd and p, in as many calls as it takes;
 * 0 or -errno.  Reading, an end of file before len bytes is -EPIPE.
 */
static int
io_all(int fd, char *p, size_t len, int writing)
{
	while (len > 0) {
		ssize_t r = writing ? write(fd, p, len) : read(fd, p, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0 && !writing)
			return -EPIPE;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int
proto_write_all(int fd, const void *buf, size_t len)
{
	return io_all(fd, (char *)buf, len, 1);	/* writing: buf is only read */
}

int
proto_read_all(int fd, void *buf, size_t len)
{
	return io_all(fd, buf, len, 0);
}

int
proto_read_more(int fd, char *buf, size_t *len, size_t cap)
{
	ssize_t n = read(fd, buf + *len, cap - *len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	*len += (size_t)n;
	return 1;
}

void
proto_socket_path(unsigned major, unsigned minor, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%u:%u.sock", PROTO_RUNDIR, major, minor);
}
