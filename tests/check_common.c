/*
 * check_common: unit tests for common/ (names, proto, sbuf, crc32c).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/crc32c.h"
#include "../common/names.h"
#include "../common/proto.h"
#include "../common/sbuf.h"

/* ------------------------------------------------------------------ */
/* names: name_check                                                   */
/* ------------------------------------------------------------------ */

static void
expect_name_ok(const char *name)
{
	const char *why = NULL;
	int rc = name_check(name, &why);

	ck_assert_msg(rc == 0, "name \"%s\" rejected (%d): %s", name, rc, why ? why : "(no reason)");
}

static void
expect_name_bad(const char *name, const char *label)
{
	const char *why = NULL;

	ck_assert_msg(name_check(name, &why) == -EINVAL, "%s: name accepted", label);
	ck_assert_msg(why != NULL && why[0] != '\0', "%s: rejected without a reason", label);
}

START_TEST(test_name_check_accepts_valid_names)
{
	expect_name_ok("a");
	expect_name_ok("Z");
	expect_name_ok("0");
	expect_name_ok("vm1.img");
	expect_name_ok("deb12-base_v2+x.qcow2");
	expect_name_ok("a.");
	expect_name_ok("a..b");		/* no '/', so no path trick */
	expect_name_ok("-a");
	expect_name_ok("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-");
}
END_TEST

START_TEST(test_name_check_length_limit_is_200)
{
	char name[NAME_MAX_LEN + 2];

	ck_assert_int_eq(NAME_MAX_LEN, 200);
	memset(name, 'n', sizeof(name));
	name[200] = '\0';
	expect_name_ok(name);
	name[200] = 'n';
	name[201] = '\0';
	expect_name_bad(name, "201 bytes");
	expect_name_bad("", "empty");
}
END_TEST

START_TEST(test_name_check_rejects_slash_and_leading_dot)
{
	expect_name_bad("/", "slash");
	expect_name_bad("a/b", "inner slash");
	expect_name_bad("a/", "trailing slash");
	expect_name_bad("/etc", "absolute");
	expect_name_bad(".", "dot");
	expect_name_bad("..", "dot-dot");
	expect_name_bad(".hidden", "leading dot");
	expect_name_bad("../x", "parent path");
}
END_TEST

START_TEST(test_name_check_rejects_bytes_outside_charset)
{
	expect_name_bad("a b", "space");
	expect_name_bad(" a", "leading space");
	expect_name_bad("a ", "trailing space");
	expect_name_bad("a\nb", "newline");
	expect_name_bad("a\tb", "tab");
	expect_name_bad("a\x01", "0x01");
	expect_name_bad("a\x7f", "DEL");
	expect_name_bad("a\x80", "0x80");
	expect_name_bad("\xff", "0xff");
	expect_name_bad("caf\xc3\xa9", "UTF-8");
	expect_name_bad("a=b", "'=' (would break KEY=VALUE)");
	expect_name_bad("a\"b", "quote");
	expect_name_bad("a\\b", "backslash");
	expect_name_bad("a:b", "colon");
	expect_name_bad("a*", "star");
	expect_name_bad("a;b", "semicolon");
}
END_TEST

/* ------------------------------------------------------------------ */
/* names: size_parse, size_format                                      */
/* ------------------------------------------------------------------ */

static void
expect_size(const char *s, uint64_t want)
{
	uint64_t v = 12345;
	int rc = size_parse(s, &v);

	ck_assert_msg(rc == 0, "size_parse(\"%s\") = %d", s, rc);
	ck_assert_msg(v == want, "size_parse(\"%s\") = %" PRIu64 ", expected %" PRIu64, s, v, want);
}

static void
expect_size_err(const char *s, int err)
{
	uint64_t v = 0;
	int rc = size_parse(s, &v);

	ck_assert_msg(rc == err, "size_parse(\"%s\") = %d (value %" PRIu64 "), expected %d",
	    s, rc, v, err);
}

START_TEST(test_size_parse_accepts_numbers_and_binary_suffixes)
{
	expect_size("0", 0);
	expect_size("512", 512);
	expect_size("1073741824", UINT64_C(1) << 30);
	expect_size("4K", 4096);
	expect_size("4k", 4096);
	expect_size("512M", UINT64_C(512) << 20);
	expect_size("20G", UINT64_C(20) << 30);
	expect_size("1T", UINT64_C(1) << 40);
	expect_size("3P", UINT64_C(3) << 50);
	expect_size("1GiB", UINT64_C(1) << 30);
	expect_size("1GB", UINT64_C(1) << 30);	/* "B" after a suffix is still binary */
	expect_size("2KiB", 2048);
	expect_size("007", 7);
	/* the largest values that fit */
	expect_size("18446744073709551615", UINT64_MAX);
	expect_size("16383P", UINT64_C(16383) << 50);
	expect_size("17179869183G", UINT64_C(17179869183) << 30);
}
END_TEST

START_TEST(test_size_parse_rejects_garbage_with_einval)
{
	expect_size_err("", -EINVAL);
	expect_size_err("abc", -EINVAL);
	expect_size_err("12X", -EINVAL);
	expect_size_err("-1", -EINVAL);
	expect_size_err("+1", -EINVAL);
	expect_size_err(" 1", -EINVAL);
	expect_size_err("1 ", -EINVAL);
	expect_size_err("1 G", -EINVAL);
	expect_size_err("G", -EINVAL);
	expect_size_err("1.5G", -EINVAL);
	expect_size_err("0x10", -EINVAL);
	expect_size_err("1G\n", -EINVAL);
	expect_size_err("1Gi", -EINVAL);
	expect_size_err("1GiBB", -EINVAL);
	expect_size_err("1GG", -EINVAL);
	expect_size_err("1iB", -EINVAL);	/* "iB" needs a unit before it */
	expect_size_err("1E", -EINVAL);		/* no exbi suffix */
}
END_TEST

START_TEST(test_size_parse_overflow_is_erange)
{
	expect_size_err("18446744073709551616", -ERANGE);	/* 2^64 */
	expect_size_err("99999999999999999999", -ERANGE);
	expect_size_err("999999999999999999999999999999", -ERANGE);
	expect_size_err("16384P", -ERANGE);			/* exactly 2^64 */
	expect_size_err("16777216P", -ERANGE);			/* 2^74 */
	expect_size_err("17179869184G", -ERANGE);		/* exactly 2^64 */
	expect_size_err("18446744073709551615K", -ERANGE);
}
END_TEST

static void
expect_format(uint64_t bytes, const char *want)
{
	char buf[64];

	memset(buf, 'X', sizeof(buf));
	size_format(bytes, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, want) == 0, "size_format(%" PRIu64 ") = \"%s\", expected \"%s\"",
	    bytes, buf, want);
}

START_TEST(test_size_format_picks_unit_and_precision)
{
	expect_format(0, "0 B");
	expect_format(1, "1 B");
	expect_format(512, "512 B");
	expect_format(1023, "1023 B");
	expect_format(1024, "1 KiB");
	expect_format(1536, "1.5 KiB");
	expect_format(UINT64_C(3) << 19, "1.5 MiB");
	expect_format(UINT64_C(512) << 20, "512 MiB");
	expect_format(UINT64_C(20) << 30, "20 GiB");
	expect_format(UINT64_C(1) << 40, "1 TiB");
	expect_format(UINT64_C(1) << 50, "1 PiB");
	expect_format(UINT64_C(1) << 60, "1 EiB");
	expect_format(UINT64_C(8) << 60, "8 EiB");
}
END_TEST

START_TEST(test_size_format_respects_buffer_length)
{
	char buf[16];

	memset(buf, 'X', sizeof(buf));
	size_format(UINT64_C(20) << 30, buf, 4);	/* "20 GiB" does not fit */
	ck_assert_str_eq(buf, "20 ");
	for (size_t i = 4; i < sizeof(buf); i++)
		ck_assert_msg(buf[i] == 'X', "byte %zu past the given length was written", i);
	memset(buf, 'X', sizeof(buf));
	size_format(1536, buf, 1);
	ck_assert_int_eq(buf[0], '\0');
	ck_assert_int_eq(buf[1], 'X');
}
END_TEST

/* ------------------------------------------------------------------ */
/* proto                                                               */
/* ------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------ */
/* sbuf                                                                */
/* ------------------------------------------------------------------ */

START_TEST(test_sbuf_empty_and_reset)
{
	struct sbuf sb = SBUF_INIT;

	ck_assert_str_eq(sbuf_str(&sb), "");
	ck_assert_uint_eq(sb.len, 0);
	sbuf_addstr(&sb, "abc");
	ck_assert_str_eq(sbuf_str(&sb), "abc");
	ck_assert_uint_eq(sb.len, 3);
	sbuf_reset(&sb);
	ck_assert_str_eq(sbuf_str(&sb), "");
	ck_assert_uint_eq(sb.len, 0);
	sbuf_add(&sb, "xy", 2);
	ck_assert_str_eq(sbuf_str(&sb), "xy");
	sbuf_printf(&sb, "%s", "");
	ck_assert_str_eq(sbuf_str(&sb), "xy");
	ck_assert_int_eq(sb.oom, 0);
	sbuf_release(&sb);
	ck_assert_str_eq(sbuf_str(&sb), "");
	ck_assert_uint_eq(sb.len, 0);
}
END_TEST

START_TEST(test_sbuf_printf_grows_past_256_bytes)
{
	struct sbuf sb = SBUF_INIT;
	char want[4096];
	size_t wl = 0;

	/* many small appends, crossing 256, 512 and 1024 */
	for (int i = 0; i < 300; i++) {
		sbuf_printf(&sb, "%04d,", i);
		wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%04d,", i);
		ck_assert_uint_eq(sb.len, wl);
		ck_assert_uint_ge(sb.cap, sb.len + 1);
	}
	ck_assert_uint_eq(wl, 1500);
	ck_assert_str_eq(sbuf_str(&sb), want);
	ck_assert_uint_eq(strlen(sbuf_str(&sb)), sb.len);

	/* one append much larger than the buffer: several doublings at once */
	{
		char big[3000];
		memset(big, 'q', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		sbuf_reset(&sb);
		sbuf_addstr(&sb, "<");
		sbuf_printf(&sb, "%s|%d", big, 42);
		ck_assert_uint_eq(sb.len, 1 + 2999 + 3);
		ck_assert_int_eq(sbuf_str(&sb)[0], '<');
		ck_assert_int_eq(memcmp(sbuf_str(&sb) + 1, big, 2999), 0);
		ck_assert_str_eq(sbuf_str(&sb) + 3000, "|42");
		ck_assert_uint_ge(sb.cap, sb.len + 1);
	}

	/* exactly filling the first 256-byte allocation, then one more byte */
	sbuf_release(&sb);
	{
		char s255[256];
		memset(s255, 'z', 255);
		s255[255] = '\0';
		sbuf_printf(&sb, "%s", s255);
		ck_assert_uint_eq(sb.len, 255);
		sbuf_printf(&sb, "%c", '!');
		ck_assert_uint_eq(sb.len, 256);
		ck_assert_int_eq(sbuf_str(&sb)[255], '!');
		ck_assert_int_eq(sbuf_str(&sb)[256], '\0');
		ck_assert_int_eq(memcmp(sbuf_str(&sb), s255, 255), 0);
	}
	ck_assert_int_eq(sb.oom, 0);
	sbuf_release(&sb);
}
END_TEST

/*
 * Decode a JSON string literal (RFC 8259) holding only code points < 0x100,
 * into out.  Returns its length, or -1 if lit is not one exactly.  Also
 * refuses a raw DEL, which sbuf_json_str promises to escape.
 */
static int
json_decode(const char *lit, char *out, size_t cap)
{
	const unsigned char *p = (const unsigned char *)lit;
	size_t n = 0;

	if (*p++ != '"')
		return -1;
	for (;;) {
		unsigned c = *p++;
		if (n + 1 >= cap)
			return -1;
		if (c == '"')
			break;
		if (c < 0x20 || c == 0x7f)
			return -1;	/* raw control byte */
		if (c != '\\') {
			out[n++] = (char)c;
			continue;
		}
		c = *p++;
		switch (c) {
		case '"': case '\\': case '/': out[n++] = (char)c; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u': {
			unsigned v = 0;
			for (int i = 0; i < 4; i++) {
				unsigned h = *p++;
				if (h >= '0' && h <= '9')
					v = v * 16 + (h - '0');
				else if (h >= 'a' && h <= 'f')
					v = v * 16 + (h - 'a' + 10);
				else if (h >= 'A' && h <= 'F')
					v = v * 16 + (h - 'A' + 10);
				else
					return -1;
			}
			if (v == 0 || v >= 0x80)
				return -1;
			out[n++] = (char)v;
			break;
		}
		default:
			return -1;
		}
	}
	if (*p != '\0')
		return -1;	/* trailing bytes after the closing quote */
	out[n] = '\0';
	return (int)n;
}

static void
expect_json_roundtrip(const char *s)
{
	struct sbuf sb = SBUF_INIT;
	char dec[1024];
	int n;

	sbuf_json_str(&sb, s);
	n = json_decode(sbuf_str(&sb), dec, sizeof(dec));
	ck_assert_msg(n >= 0, "sbuf_json_str produced an invalid JSON string: %s", sbuf_str(&sb));
	ck_assert_msg((size_t)n == strlen(s) && memcmp(dec, s, (size_t)n) == 0,
	    "JSON %s does not decode to the input", sbuf_str(&sb));
	sbuf_release(&sb);
}

START_TEST(test_sbuf_json_str_escapes)
{
	struct sbuf sb = SBUF_INIT;
	char all[128];

	/* the exact forms JSON allows for quote and backslash */
	sbuf_json_str(&sb, "a\"b\\c");
	ck_assert_str_eq(sbuf_str(&sb), "\"a\\\"b\\\\c\"");
	sbuf_reset(&sb);
	sbuf_json_str(&sb, "");
	ck_assert_str_eq(sbuf_str(&sb), "\"\"");
	/* appends after what is there */
	sbuf_json_str(&sb, "x");
	ck_assert_str_eq(sbuf_str(&sb), "\"\"\"x\"");
	sbuf_release(&sb);

	/* control bytes are escaped, and everything decodes back to the input */
	expect_json_roundtrip("line1\nline2");
	expect_json_roundtrip("\x01");
	expect_json_roundtrip("del\x7f");
	expect_json_roundtrip("tab\tcr\rff\fbs\b\x1f");
	expect_json_roundtrip("\"\\\"\\");
	expect_json_roundtrip("vm1.img");
	expect_json_roundtrip("/a/b");
	/* every byte 0x01..0x7f at once */
	for (int i = 1; i < 128; i++)
		all[i - 1] = (char)i;
	all[127] = '\0';
	expect_json_roundtrip(all);
	/* non-ASCII bytes (UTF-8) pass through untouched */
	sbuf_json_str(&sb, "caf\xc3\xa9");
	ck_assert_str_eq(sbuf_str(&sb), "\"caf\xc3\xa9\"");
	sbuf_release(&sb);
}
END_TEST

/* ------------------------------------------------------------------ */
/* crc32c                                                              */
/* ------------------------------------------------------------------ */

/* Bit-at-a-time CRC-32C, the textbook definition. */
static uint32_t
crc32c_ref(uint32_t crc, const unsigned char *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

/*
 * The crc tests are loop tests over the implementations (_i: CRC32C_IMPL_*):
 * each runs with crc32c limited to one; one this CPU lacks passes untried.
 */
static int
crc32c_impl(int impl)
{
	if (crc32c_limit(impl) != impl) {
		fprintf(stderr, "crc32c implementation %d: not on this CPU, not tested\n", impl);
		return 0;
	}
	return 1;
}

START_TEST(test_crc32c_standard_check_values)
{
	unsigned char b[32];

	if (!crc32c_impl(_i))
		return;
	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c_ref(0, (const unsigned char *)"123456789", 9), 0xE3069283u);
	/* RFC 3720, B.4 */
	memset(b, 0, sizeof(b));
	ck_assert_uint_eq(crc32c(0, b, 32), 0x8A9136AAu);
	memset(b, 0xff, sizeof(b));
	ck_assert_uint_eq(crc32c(0, b, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)i;
	ck_assert_uint_eq(crc32c(0, b, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)(31 - i);
	ck_assert_uint_eq(crc32c(0, b, 32), 0x113FDB5Cu);
}
END_TEST

START_TEST(test_crc32c_empty_input_changes_nothing)
{
	if (!crc32c_impl(_i))
		return;
	ck_assert_uint_eq(crc32c(0, "", 0), 0);
	ck_assert_uint_eq(crc32c(0, NULL, 0), 0);
	ck_assert_uint_eq(crc32c(0xE3069283u, "x", 0), 0xE3069283u);
	ck_assert_uint_eq(crc32c(0xdeadbeefu, NULL, 0), 0xdeadbeefu);
}
END_TEST

START_TEST(test_crc32c_split_calls_equal_one_call)
{
	unsigned char buf[1100];
	uint64_t x = 0x9e3779b97f4a7c15u;

	if (!crc32c_impl(_i))
		return;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	/* every split of the check string */
	for (size_t k = 0; k <= 9; k++)
		ck_assert_uint_eq(crc32c(crc32c(0, "123456789", k), "123456789" + k, 9 - k),
		    0xE3069283u);
	/* every split of 1 KiB, and three-way splits at odd offsets */
	{
		uint32_t whole = crc32c(0, buf, 1024);
		ck_assert_uint_eq(whole, crc32c_ref(0, buf, 1024));
		for (size_t k = 0; k <= 1024; k++) {
			uint32_t c = crc32c(crc32c(0, buf, k), buf + k, 1024 - k);
			if (c != whole)
				ck_abort_msg("split at %zu: %08x != %08x", k, c, whole);
		}
		for (size_t a = 1; a < 40; a += 3)
			for (size_t b = a; b < 1024; b += 97) {
				uint32_t c = crc32c(crc32c(crc32c(0, buf, a), buf + a, b - a),
				    buf + b, 1024 - b);
				if (c != whole)
					ck_abort_msg("split at %zu,%zu: %08x != %08x", a, b, c, whole);
			}
	}
}
END_TEST

START_TEST(test_crc32c_matches_bitwise_reference_at_all_alignments)
{
	unsigned char buf[600];

	if (!crc32c_impl(_i))
		return;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= sizeof(buf); len += (len < 64 ? 1 : 37)) {
			uint32_t seed = (uint32_t)(len * 2654435761u);
			uint32_t got = crc32c(seed, buf + off, len), want = crc32c_ref(seed, buf + off, len);
			if (got != want)
				ck_abort_msg("off %zu len %zu: %08x, expected %08x", off, len, got, want);
		}
}
END_TEST

START_TEST(test_crc32c_long_buffers_match_bitwise_reference)
{
	/* around runs of 256 bytes (folding) and of three lanes (4080 bytes), at odd addresses and seeds */
	static const size_t lens[] = { 255, 256, 257, 511, 512, 513, 767, 768, 1279, 1280,
	    4079, 4080, 4081, 4095, 4096, 4097, 8159, 8160, 8161, 12239, 12240, 12247, 65536, 65537 };
	size_t cap = 65537 + 8;
	unsigned char *buf;

	if (!crc32c_impl(_i))
		return;
	buf = malloc(cap);

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < cap; i++)
		buf[i] = (unsigned char)(i * 2246822519u >> 11);
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++)
		for (size_t off = 0; off < 8; off += 3) {
			uint32_t seed = (uint32_t)(lens[li] * 40503u + off), want;
			want = crc32c_ref(seed, buf + off, lens[li]);
			if (crc32c(seed, buf + off, lens[li]) != want)
				ck_abort_msg("len %zu off %zu: %08x, expected %08x", lens[li], off,
				    crc32c(seed, buf + off, lens[li]), want);
			/* continued across a lane run */
			ck_assert_uint_eq(crc32c(crc32c(seed, buf + off, 5), buf + off + 5, lens[li] - 5), want);
		}
	/* all zeros and all ones: registers the lane join must carry through unchanged */
	memset(buf, 0, cap);
	ck_assert_uint_eq(crc32c(0, buf, 12240), crc32c_ref(0, buf, 12240));
	memset(buf, 0xff, cap);
	ck_assert_uint_eq(crc32c(0xffffffffu, buf, 12240), crc32c_ref(0xffffffffu, buf, 12240));
	free(buf);
}
END_TEST

/* crc32c_blocks(buf + off, len, block) against crc32c_ref of each piece; aborts on a difference. */
static void
crc32c_blocks_expect(const unsigned char *buf, size_t off, size_t len, size_t block)
{
	size_t n = (len + block - 1) / block;
	uint32_t *got = malloc((n + 1) * sizeof(*got));

	ck_assert_ptr_nonnull(got);
	got[n] = 0x5a5a5a5au;		/* guard: nothing past the last piece is written */
	crc32c_blocks(buf + off, len, block, got);
	for (size_t i = 0; i < n; i++) {
		size_t plen = len - i * block < block ? len - i * block : block;
		uint32_t want = crc32c_ref(0, buf + off + i * block, plen);
		if (got[i] != want || crc32c(0, buf + off + i * block, plen) != want)
			ck_abort_msg("off %zu len %zu block %zu piece %zu: %08x, expected %08x",
			    off, len, block, i, got[i], want);
	}
	ck_assert_uint_eq(got[n], 0x5a5a5a5au);
	free(got);
}

START_TEST(test_crc32c_blocks_equal_crc32c_of_each_block)
{
	static const size_t blocks[] = { 1, 3, 8, 13, 64, 256, 511, 512, 1000, 4093, 4096 };
	size_t cap = 9 * 4096 + 16;
	unsigned char *buf;

	if (!crc32c_impl(_i))
		return;
	buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < cap; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 13);
	for (size_t bi = 0; bi < sizeof(blocks) / sizeof(blocks[0]); bi++) {
		size_t block = blocks[bi];
		/* whole groups of three, a group plus one or two, odd tails, at odd addresses */
		for (size_t nb = 0; nb <= 9 && nb * block <= 9 * 4096; nb++)
			for (size_t tail = 0; tail < block && tail < 10; tail += (block > 3 ? 3 : 1))
				for (size_t off = 0; off < 8; off += 5)
					if (off + nb * block + tail <= cap)
						crc32c_blocks_expect(buf, off, nb * block + tail, block);
	}
	free(buf);
}
END_TEST

START_TEST(test_crc32c_blocks_of_a_full_record)
{
	/* the largest REC_WRITE: 4096 blocks of 4 KiB, and one byte short of it */
	size_t len = 16u << 20;
	unsigned char *buf;

	if (!crc32c_impl(_i))
		return;
	buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i ^ (i >> 9) ^ (i >> 17));
	crc32c_blocks_expect(buf, 0, len, 4096);
	crc32c_blocks_expect(buf, 0, len - 1, 4096);
	free(buf);
}
END_TEST

static Suite *
common_suite(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_name_check_accepts_valid_names);
	tcase_add_test(tc, test_name_check_length_limit_is_200);
	tcase_add_test(tc, test_name_check_rejects_slash_and_leading_dot);
	tcase_add_test(tc, test_name_check_rejects_bytes_outside_charset);
	tcase_add_test(tc, test_size_parse_accepts_numbers_and_binary_suffixes);
	tcase_add_test(tc, test_size_parse_rejects_garbage_with_einval);
	tcase_add_test(tc, test_size_parse_overflow_is_erange);
	tcase_add_test(tc, test_size_format_picks_unit_and_precision);
	tcase_add_test(tc, test_size_format_respects_buffer_length);
	tcase_add_test(tc, test_proto_parse_valid_request_and_arg_lookup);
	tcase_add_test(tc, test_proto_parse_rejects_malformed_requests);
	tcase_add_test(tc, test_proto_read_line_lines_and_eof);
	tcase_add_test(tc, test_proto_read_line_too_long_is_e2big);
	tcase_add_test(tc, test_proto_read_all_and_socket_path);
	tcase_add_test(tc, test_proto_parse_status_ok_and_errno);
	tcase_add_test(tc, test_proto_parse_request_id);
	tcase_add_test(tc, test_proto_frame_split_whole_partial_and_malformed);
	tcase_add_test(tc, test_sbuf_empty_and_reset);
	tcase_add_test(tc, test_sbuf_printf_grows_past_256_bytes);
	tcase_add_test(tc, test_sbuf_json_str_escapes);
	/* each crc test once per implementation (_i), see crc32c_impl() */
#define CRC_TEST(t) tcase_add_loop_test(tc, t, CRC32C_IMPL_TABLE, CRC32C_IMPL_VPCLMUL + 1)
	CRC_TEST(test_crc32c_standard_check_values);
	CRC_TEST(test_crc32c_empty_input_changes_nothing);
	CRC_TEST(test_crc32c_split_calls_equal_one_call);
	CRC_TEST(test_crc32c_matches_bitwise_reference_at_all_alignments);
	CRC_TEST(test_crc32c_long_buffers_match_bitwise_reference);
	CRC_TEST(test_crc32c_blocks_equal_crc32c_of_each_block);
	CRC_TEST(test_crc32c_blocks_of_a_full_record);
#undef CRC_TEST
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(common_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
