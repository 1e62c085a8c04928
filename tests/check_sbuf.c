/*
 * check_sbuf: common/sbuf.c, the growing string buffer: empty and reset,
 * printf past its first 256 bytes, and JSON strings escaped so that they
 * decode back to what was put in.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbuf.h"
#include "fixture.h"

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

FIXTURE_MAIN(tc, "core", NULL, 0)
{
	tcase_add_test(tc, test_sbuf_empty_and_reset);
	tcase_add_test(tc, test_sbuf_printf_grows_past_256_bytes);
	tcase_add_test(tc, test_sbuf_json_str_escapes);
}
