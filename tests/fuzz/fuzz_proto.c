/*
 * fuzz_proto: libFuzzer target for every parser of the control protocol
 * (common/proto.c), built and run by tests/fuzz/run.sh.
 *
 * Each input goes through all of them, and each result is checked against
 * what the protocol says (proto.h), so a wrong answer aborts like a crash:
 *
 *   proto_parse          a request line: on success the words are printable,
 *                        keys unique and found by proto_arg, and the request
 *                        written back out parses to the same request
 *   proto_parse_status   "ok" / "error ERRNO": the accepted line is exactly
 *                        what the supervisor would write for that errno
 *   proto_parse_request_id   "ID REQUEST": ID printed back is the prefix
 *                        (numbers are accepted only as printf writes them)
 *   proto_frame_split    the worker's reply stream: frames lie inside the
 *                        buffer, bodies are at most PROTO_BODY_MAX, and the
 *                        stream fed in arbitrary chunks (as the supervisor
 *                        reads it) splits into the same frames as when whole
 *   proto_read_line      lines read from a file holding the input: never
 *                        longer than the buffer, no '\n' in them, and they
 *                        are the input's lines
 *
 * Every input is copied into a buffer of its exact size so that AddressSanitizer
 * sees any read past its end.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_proto: %s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

/* A NUL-terminated copy of data[0, n) in a buffer of exactly n + 1 bytes. */
static char *
cstr(const uint8_t *data, size_t n)
{
	char *s = malloc(n + 1);

	CHECK(s);
	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

static int
printable_word(const char *w)
{
	if (!*w)
		return 0;
	for (; *w; w++)
		if (*w < 0x21 || *w > 0x7e)
			return 0;
	return 1;
}

static void
fuzz_request(const uint8_t *data, size_t n)
{
	char *line = cstr(data, n), *orig = cstr(data, n), *again;
	struct proto_req req, req2;
	const char *why = NULL;
	size_t cap = n + 1, len;

	if (proto_parse(line, &req, &why) < 0) {
		CHECK(why && *why);
		goto out;
	}
	CHECK(req.verb && printable_word(req.verb));
	CHECK(req.nargs >= 0 && req.nargs <= PROTO_ARGS_MAX);
	again = malloc(cap);
	CHECK(again);
	len = (size_t)snprintf(again, cap, "%s %s", req.json ? "json" : "text", req.verb);
	for (int i = 0; i < req.nargs; i++) {
		CHECK(printable_word(req.key[i]) && strchr(req.key[i], '=') == NULL);
		CHECK(req.val[i] && strchr(req.val[i], ' ') == NULL);
		CHECK(proto_arg(&req, req.key[i]) == req.val[i]);	/* keys are unique */
		CHECK(len < cap);
		len += (size_t)snprintf(again + len, cap - len, " %s=%s", req.key[i], req.val[i]);
	}
	/* one space between words, none elsewhere: the request written back is the line */
	CHECK(len < cap && strcmp(again, orig) == 0);
	CHECK(proto_parse(again, &req2, &why) == 0);
	CHECK(req2.json == req.json && strcmp(req2.verb, req.verb) == 0 && req2.nargs == req.nargs);
	for (int i = 0; i < req.nargs; i++)
		CHECK(strcmp(req2.key[i], req.key[i]) == 0 && strcmp(req2.val[i], req.val[i]) == 0);
	free(again);
out:
	free(orig);
	free(line);
}

static void
fuzz_status(const uint8_t *data, size_t n)
{
	char *line = cstr(data, n), out[32];
	int err = -1;

	if (proto_parse_status(line, &err) == 0) {
		/* exactly what client_send() in supervisor/ctlsock.c writes */
		CHECK(err >= 0);
		if (err)
			snprintf(out, sizeof(out), "error %d", err);
		else
			snprintf(out, sizeof(out), "ok");
		CHECK(strcmp(out, line) == 0);
	}
	free(line);
}

static void
fuzz_request_id(const uint8_t *data, size_t n)
{
	char *line = cstr(data, n), *rest, head[32];
	unsigned long long id;

	if ((rest = proto_parse_request_id(line, &id)) != NULL) {
		CHECK(rest > line && rest <= line + strlen(line) && rest[-1] == ' ');
		snprintf(head, sizeof(head), "%llu ", id);
		CHECK(strncmp(line, head, strlen(head)) == 0 && rest == line + strlen(head));
	}
	free(line);
}

struct frame_rec {
	unsigned long long id;
	int err;
	size_t off, len;	/* body, as offsets in the stream */
};

/* Split the whole stream; returns how many frames, *bad if it ended malformed. */
static size_t
split_whole(const char *buf, size_t n, struct frame_rec *out, size_t max, int *bad)
{
	size_t pos = 0, k = 0;

	*bad = 0;
	while (k < max) {
		struct proto_frame f;
		ssize_t r = proto_frame_split(buf + pos, n - pos, &f);
		if (r <= 0) {
			*bad = r < 0;
			break;
		}
		CHECK((size_t)r <= n - pos);
		CHECK(f.len <= PROTO_BODY_MAX && f.err >= 0);
		CHECK(f.body > buf + pos && f.body + f.len == buf + pos + r);
		CHECK(f.body[-1] == '\n');
		{	/* the head is exactly what worker_reply() in fs/worker.c writes */
			char head[PROTO_FRAME_HEAD_MAX];
			int hl = snprintf(head, sizeof(head), "%llu %d %zu\n", f.id, f.err, f.len);
			CHECK(buf + pos + hl == f.body && memcmp(head, buf + pos, (size_t)hl) == 0);
		}
		out[k++] = (struct frame_rec){ f.id, f.err, (size_t)(f.body - buf), f.len };
		pos += (size_t)r;
	}
	return k;
}

static void
fuzz_frames(const uint8_t *data, size_t n)
{
	size_t max = n / 6 + 1;	/* the shortest frame is "0 0 0\n" */
	struct frame_rec *whole = malloc(max * sizeof(*whole)), *inc = malloc(max * sizeof(*inc));
	char *buf = malloc(n ? n : 1), *acc = malloc(n ? n : 1);
	size_t nw, ni = 0, alen = 0, fed = 0, consumed = 0;
	int bad_whole, bad_inc = 0;
	unsigned step = n ? data[0] % 7 + 1 : 1;

	CHECK(buf && acc && whole && inc);
	memcpy(buf, data, n);
	nw = split_whole(buf, n, whole, max, &bad_whole);
	CHECK(nw < max);
	/* as ctl_parse() in supervisor/workers.c: append what read() gave, split what is whole */
	while (fed < n && !bad_inc) {
		size_t chunk = n - fed < step ? n - fed : step;
		memcpy(acc + alen, buf + fed, chunk);
		alen += chunk;
		fed += chunk;
		for (;;) {
			struct proto_frame f;
			ssize_t r = proto_frame_split(acc, alen, &f);
			if (r < 0)
				bad_inc = 1;
			if (r <= 0)
				break;
			CHECK(ni < nw);
			inc[ni++] = (struct frame_rec){ f.id, f.err, consumed + (size_t)(f.body - acc), f.len };
			memmove(acc, acc + r, alen - (size_t)r);
			alen -= (size_t)r;
			consumed += (size_t)r;
		}
	}
	CHECK(ni == nw && bad_inc == bad_whole);
	for (size_t i = 0; i < nw; i++)
		CHECK(inc[i].id == whole[i].id && inc[i].err == whole[i].err &&
		    inc[i].off == whole[i].off && inc[i].len == whole[i].len);
	free(inc);
	free(whole);
	free(acc);
	free(buf);
}

/* The input as a file, read line by line with a buffer of 1 to 64 bytes. */
static void
fuzz_read_line(const uint8_t *data, size_t n)
{
	static int fd = -1;
	size_t cap = n ? data[0] % 64 + 1 : 1, pos = 0;
	char *buf;

	if (n > 1024)	/* one read() per byte: keep it cheap */
		n = 1024;
	if (fd < 0)
		fd = memfd_create("fuzz_proto", 0);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, data, n, 0) == (ssize_t)n && lseek(fd, 0, SEEK_SET) == 0);
	buf = malloc(cap);
	CHECK(buf);
	for (;;) {
		ssize_t r = proto_read_line(fd, buf, cap);
		if (r == 0 && pos == n)
			break;		/* end of file */
		if (r == 0) {		/* an empty line reads the same as the end of file */
			CHECK(data[pos] == '\n');
			pos++;
			continue;
		}
		if (r == -EPIPE) {	/* a last line without '\n' */
			CHECK(pos < n && memchr(data + pos, '\n', n - pos) == NULL);
			break;
		}
		if (r == -E2BIG) {	/* the rest of that line is read as the next one */
			CHECK(n - pos >= cap);
			CHECK(memchr(data + pos, '\n', cap) == NULL);
			pos += cap;	/* cap - 1 bytes kept, the one that did not fit dropped */
			continue;
		}
		CHECK(r > 0);
		CHECK((size_t)r < cap && buf[r] == '\0');
		CHECK(pos + (size_t)r < n && memcmp(buf, data + pos, (size_t)r) == 0 && data[pos + r] == '\n');
		pos += (size_t)r + 1;
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > PROTO_LINE_MAX * 4)
		return -1;	/* longer than anything the protocol carries in one piece */
	fuzz_request(data, size);
	fuzz_status(data, size);
	fuzz_request_id(data, size);
	fuzz_frames(data, size);
	fuzz_read_line(data, size);
	return 0;
}
