/*
 * check_proto: common/proto.c, the control protocol's text.  Requests parse
 * or are rejected with a reason, lines are read up to their limit, status
 * lines carry ok or an errno, request ids parse, and frames split whole,
 * partial or malformed input as they should.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "proto.h"
#include "fixture.h"

/* Parse a copy of s; returns proto_parse's result. */
static int
parse(const char *s, char *buf, size_t cap, struct proto_req *req, const char **why)
{
	ck_assert_uint_lt(strlen(s), cap);
	strcpy(buf, s);
	*why = NULL;
	return proto_parse(buf, req, why);
}

static void
expect_parse_bad(const char *s, const char *label)
{
	char buf[PROTO_LINE_MAX];
	struct proto_req req;
	const char *why;

	ck_assert_msg(parse(s, buf, sizeof(buf), &req, &why) == -EINVAL, "%s: accepted", label);
	ck_assert_msg(why != NULL && why[0] != '\0', "%s: rejected without a reason", label);
}

START_TEST(test_proto_parse_valid_request_and_arg_lookup)
{
	char buf[PROTO_LINE_MAX];
	struct proto_req req;
	const char *why;

	ck_assert_int_eq(parse("json create name=a template=b", buf, sizeof(buf), &req, &why), 0);
	ck_assert_int_eq(req.json, 1);
	ck_assert_str_eq(req.verb, "create");
	ck_assert_int_eq(req.nargs, 2);
	ck_assert_str_eq(req.key[0], "name");
	ck_assert_str_eq(req.val[0], "a");
	ck_assert_str_eq(req.key[1], "template");
	ck_assert_str_eq(req.val[1], "b");
	ck_assert_str_eq(proto_arg(&req, "name"), "a");
	ck_assert_str_eq(proto_arg(&req, "template"), "b");
	ck_assert_ptr_null(proto_arg(&req, "size"));
	ck_assert_ptr_null(proto_arg(&req, "nam"));	/* no prefix matching */
	ck_assert_ptr_null(proto_arg(&req, "a"));	/* values are not keys */

	ck_assert_int_eq(parse("text disks", buf, sizeof(buf), &req, &why), 0);
	ck_assert_int_eq(req.json, 0);
	ck_assert_str_eq(req.verb, "disks");
	ck_assert_int_eq(req.nargs, 0);
	ck_assert_ptr_null(proto_arg(&req, "name"));

	/* only the first '=' splits: the value may hold more */
	ck_assert_int_eq(parse("text set k=a=b", buf, sizeof(buf), &req, &why), 0);
	ck_assert_str_eq(proto_arg(&req, "k"), "a=b");

	/* exactly PROTO_ARGS_MAX arguments fit */
	{
		char line[PROTO_LINE_MAX] = "json many";
		for (int i = 0; i < PROTO_ARGS_MAX; i++)
			snprintf(line + strlen(line), sizeof(line) - strlen(line), " k%d=v%d", i, i);
		ck_assert_int_eq(parse(line, buf, sizeof(buf), &req, &why), 0);
		ck_assert_int_eq(req.nargs, PROTO_ARGS_MAX);
		ck_assert_str_eq(proto_arg(&req, "k0"), "v0");
		ck_assert_str_eq(proto_arg(&req, "k15"), "v15");
	}
}
END_TEST

START_TEST(test_proto_parse_rejects_malformed_requests)
{
	char line[PROTO_LINE_MAX] = "json many";

	expect_parse_bad("", "empty line");
	expect_parse_bad("json", "missing verb");
	expect_parse_bad("xml create name=a", "bad format word");
	expect_parse_bad("JSON create", "format is case-sensitive");
	expect_parse_bad("jsonx create", "format prefix");
	expect_parse_bad("json create name", "argument without '='");
	expect_parse_bad("json create =a", "argument with empty key");
	expect_parse_bad("json create name=a name=b", "duplicate key");
	expect_parse_bad("json create name=a size=1 name=a", "duplicate key, not adjacent");
	expect_parse_bad("json  create", "double space (empty word)");
	expect_parse_bad("json create  name=a", "double space before an argument");
	expect_parse_bad(" json create", "leading space");
	expect_parse_bad("json create ", "trailing space");
	expect_parse_bad("json create name=a\tb", "tab");
	expect_parse_bad("json cr\x01" "eate", "0x01");
	expect_parse_bad("json create name=\x7f", "DEL");
	expect_parse_bad("json create name=\x80", "0x80");
	expect_parse_bad("json create name=caf\xc3\xa9", "UTF-8");
	expect_parse_bad("json create\r", "carriage return");
	expect_parse_bad("json create\n", "newline");

	/* PROTO_ARGS_MAX + 1 arguments */
	for (int i = 0; i < PROTO_ARGS_MAX + 1; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), " k%d=v%d", i, i);
	expect_parse_bad(line, "17 arguments");
	/* far too many: must not overrun the word array */
	strcpy(line, "json many");
	for (int i = 0; i < 200; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), " k%d=v", i);
	expect_parse_bad(line, "200 arguments");
}
END_TEST

/* A pipe with content already written; the write end closed if close_w. */
static int
pipe_with(const char *data, size_t len, int close_w, int *wfd)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(proto_write_all(p[1], data, len), 0);
	if (close_w) {
		close(p[1]);
		p[1] = -1;
	}
	if (wfd)
		*wfd = p[1];
	return p[0];
}

START_TEST(test_proto_read_line_lines_and_eof)
{
	char buf[64];
	int fd = pipe_with("hello\nworld\n", 12, 1, NULL);

	ck_assert_int_eq(proto_read_line(fd, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "hello");
	ck_assert_int_eq(proto_read_line(fd, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "world");
	ck_assert_int_eq(proto_read_line(fd, buf, sizeof(buf)), 0);	/* EOF */
	close(fd);

	/* EOF in the middle of a line */
	fd = pipe_with("ok\npartial", 10, 1, NULL);
	ck_assert_int_eq(proto_read_line(fd, buf, sizeof(buf)), 2);
	ck_assert_str_eq(buf, "ok");
	ck_assert_int_eq(proto_read_line(fd, buf, sizeof(buf)), -EPIPE);
	close(fd);

	/* a bad descriptor is reported as -errno */
	ck_assert_int_eq(proto_read_line(-1, buf, sizeof(buf)), -EBADF);
}
END_TEST

START_TEST(test_proto_read_line_too_long_is_e2big)
{
	char buf[PROTO_LINE_MAX];
	char *big = malloc(PROTO_LINE_MAX + 100);
	int fd;

	/* cap 8: 7 bytes fit (plus the NUL), 8 do not */
	fd = pipe_with("abcdefg\nabcdefgh\n", 17, 1, NULL);
	memset(buf, 'X', sizeof(buf));
	ck_assert_int_eq(proto_read_line(fd, buf, 8), 7);
	ck_assert_str_eq(buf, "abcdefg");
	memset(buf, 'X', sizeof(buf));
	ck_assert_int_eq(proto_read_line(fd, buf, 8), -E2BIG);
	for (int i = 8; i < 64; i++)
		ck_assert_msg(buf[i] == 'X', "byte %d past cap was written", i);
	close(fd);

	/* a request line longer than PROTO_LINE_MAX */
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', PROTO_LINE_MAX + 99);
	big[PROTO_LINE_MAX + 99] = '\n';
	fd = pipe_with(big, PROTO_LINE_MAX + 100, 1, NULL);
	ck_assert_int_eq(proto_read_line(fd, buf, sizeof(buf)), -E2BIG);
	close(fd);

	/* exactly PROTO_LINE_MAX - 1 bytes still fit */
	big[PROTO_LINE_MAX - 1] = '\n';
	fd = pipe_with(big, PROTO_LINE_MAX, 1, NULL);
	ck_assert_int_eq(proto_read_line(fd, buf, sizeof(buf)), PROTO_LINE_MAX - 1);
	ck_assert_uint_eq(strlen(buf), PROTO_LINE_MAX - 1);
	close(fd);
	free(big);
}
END_TEST

/* The worker's control channel is read a chunk at a time, not a byte per read(). */
START_TEST(test_proto_reader_takes_a_chunk_per_read)
{
	struct proto_reader r;
	char line[16];
	char *big = malloc(PROTO_LINE_MAX + 100);
	int wfd, left = -1;
	int fd = pipe_with("1 json list\n2 json disks\n3 par", 30, 0, &wfd);

	proto_reader_init(&r, fd);
	ck_assert_int_eq(proto_reader_line(&r, line, sizeof(line)), 11);
	ck_assert_str_eq(line, "1 json list");
	/* one read() took all the pipe held: the next lines come from the buffer */
	ck_assert_int_eq(ioctl(fd, FIONREAD, &left), 0);
	ck_assert_int_eq(left, 0);
	ck_assert_int_eq(proto_reader_line(&r, line, sizeof(line)), 12);
	ck_assert_str_eq(line, "2 json disks");
	/* a line cut across two reads */
	ck_assert_int_eq(proto_write_all(wfd, "tial\n", 5), 0);
	ck_assert_int_eq(proto_reader_line(&r, line, sizeof(line)), 9);
	ck_assert_str_eq(line, "3 partial");
	/* too long: E2BIG, and the whole line is gone, the next one intact */
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', PROTO_LINE_MAX + 99);
	big[PROTO_LINE_MAX + 99] = '\n';
	ck_assert_int_eq(proto_write_all(wfd, big, PROTO_LINE_MAX + 100), 0);
	ck_assert_int_eq(proto_write_all(wfd, "4 ok\nend", 8), 0);
	close(wfd);
	ck_assert_int_eq(proto_reader_line(&r, line, sizeof(line)), -E2BIG);
	ck_assert_int_eq(proto_reader_line(&r, line, sizeof(line)), 4);
	ck_assert_str_eq(line, "4 ok");
	/* end of file within a line, then at a line's start */
	ck_assert_int_eq(proto_reader_line(&r, line, sizeof(line)), -EPIPE);
	ck_assert_int_eq(proto_reader_line(&r, line, sizeof(line)), 0);
	close(fd);
	free(big);
}
END_TEST

START_TEST(test_proto_read_all_and_socket_path)
{
	char buf[16];
	int fd;

	fd = pipe_with("0123456789", 10, 1, NULL);
	ck_assert_int_eq(proto_read_all(fd, buf, 4), 0);
	ck_assert_int_eq(memcmp(buf, "0123", 4), 0);
	ck_assert_int_eq(proto_read_all(fd, buf, 6), 0);
	ck_assert_int_eq(memcmp(buf, "456789", 6), 0);
	ck_assert_int_eq(proto_read_all(fd, buf, 1), -EPIPE);
	close(fd);
	fd = pipe_with("abc", 3, 1, NULL);
	ck_assert_int_eq(proto_read_all(fd, buf, 4), -EPIPE);	/* short by one */
	close(fd);

	proto_socket_path(8, 17, buf, sizeof(buf));
	ck_assert_str_eq(buf, "/run/hcowfs/8:1");		/* truncated to 15 */
	{
		char path[64];
		proto_socket_path(259, 3, path, sizeof(path));
		ck_assert_str_eq(path, "/run/hcowfs/259:3.sock");
	}
}
END_TEST

START_TEST(test_proto_parse_status_ok_and_errno)
{
	static const char *bad[] = { "", "ok ", "OK", "error", "error ", "error 0", "error -5",
		"error +5", "error 5x", "error  5", "error 5 ", "error 2147483648", "errors 5", "error 05" };
	int err = -1;

	ck_assert_int_eq(proto_parse_status("ok", &err), 0);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(proto_parse_status("error 22", &err), 0);
	ck_assert_int_eq(err, 22);
	ck_assert_int_eq(proto_parse_status("error 2147483647", &err), 0);
	ck_assert_int_eq(err, 2147483647);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = -1;
		ck_assert_msg(proto_parse_status(bad[i], &err) == -EINVAL, "accepted '%s'", bad[i]);
		ck_assert_int_eq(err, -1);
	}
}
END_TEST

START_TEST(test_proto_parse_request_id)
{
	static const char *bad[] = { "", " 1 text ping", "1", "1text ping", "-1 text ping",
		"+1 text ping", "x1 text ping", "18446744073709551616 text ping", "017 text ping" };
	unsigned long long id = 0;
	char line[64];

	strcpy(line, "17 json disks");
	ck_assert_str_eq(proto_parse_request_id(line, &id), "json disks");
	ck_assert_uint_eq(id, 17);
	strcpy(line, "18446744073709551615 ");
	ck_assert_str_eq(proto_parse_request_id(line, &id), "");
	ck_assert_uint_eq(id, 18446744073709551615ull);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(line, bad[i]);
		ck_assert_msg(proto_parse_request_id(line, &id) == NULL, "accepted '%s'", bad[i]);
	}
}
END_TEST

START_TEST(test_proto_frame_split_whole_partial_and_malformed)
{
	static const char two[] = "0 0 5\nready17 22 3\nabc";
	static const char *bad[] = { "1 0\n", "1  0 0\n", " 1 0 0\n", "1 0 0 \n", "1 -1 0\n",
		"1 0 -1\n", "x 0 0\n", "1 0 0x\n", "1 2147483648 0\n", "1 0 16777217\n",
		"18446744073709551616 0 0\n", "\n", "01 0 0\n", "1 00 0\n", "1 0 00\n" };
	struct proto_frame f;
	char big[PROTO_FRAME_HEAD_MAX + 8];

	ck_assert_int_eq(proto_frame_split(two, sizeof(two) - 1, &f), 11);
	ck_assert_uint_eq(f.id, 0);
	ck_assert_int_eq(f.err, 0);
	ck_assert_uint_eq(f.len, 5);
	ck_assert_ptr_eq(f.body, two + 6);
	ck_assert_int_eq(proto_frame_split(two + 11, sizeof(two) - 12, &f), 11);
	ck_assert_uint_eq(f.id, 17);
	ck_assert_int_eq(f.err, 22);
	ck_assert_int_eq(memcmp(f.body, "abc", 3), 0);
	/* every proper prefix of a frame is incomplete, not malformed */
	for (size_t n = 0; n < 11; n++)
		ck_assert_int_eq(proto_frame_split(two + 11, n, &f), 0);
	ck_assert_int_eq(proto_frame_split("1 0 16777216\n", 13, &f), 0);	/* the bound itself */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(proto_frame_split(bad[i], strlen(bad[i]), &f) == -EINVAL,
		    "accepted '%s'", bad[i]);
	/* a head that never ends is malformed once it is longer than any real one */
	memset(big, '1', sizeof(big));
	ck_assert_int_eq(proto_frame_split(big, PROTO_FRAME_HEAD_MAX - 1, &f), 0);
	ck_assert_int_eq(proto_frame_split(big, sizeof(big), &f), -EINVAL);
}
END_TEST

FIXTURE_MAIN(tc, "core", NULL, 0)
{
	tcase_add_test(tc, test_proto_parse_valid_request_and_arg_lookup);
	tcase_add_test(tc, test_proto_parse_rejects_malformed_requests);
	tcase_add_test(tc, test_proto_read_line_lines_and_eof);
	tcase_add_test(tc, test_proto_read_line_too_long_is_e2big);
	tcase_add_test(tc, test_proto_reader_takes_a_chunk_per_read);
	tcase_add_test(tc, test_proto_read_all_and_socket_path);
	tcase_add_test(tc, test_proto_parse_status_ok_and_errno);
	tcase_add_test(tc, test_proto_parse_request_id);
	tcase_add_test(tc, test_proto_frame_split_whole_partial_and_malformed);
}
