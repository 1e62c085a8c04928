/*
 * check_names: common/names.c.  name_check accepts the names a disk may have
 * and rejects the rest (length, slash, leading dot, bytes outside the
 * charset); size_parse and size_format read and write sizes with binary
 * suffixes, with EINVAL for garbage and ERANGE for overflow.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "names.h"
#include "radosspec.h"
#include "fixture.h"

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

START_TEST(test_rados_spec_parses_pool_and_namespace_and_refuses_the_rest)
{
	struct rados_spec sp;
	const char *why = NULL;

	ck_assert(rados_spec_is("rados:vms"));
	ck_assert(!rados_spec_is("/srv/rados:vms"));
	ck_assert_int_eq(rados_spec_parse("rados:vms", 0, &sp, &why), 0);
	ck_assert_str_eq(sp.pool, "vms");
	ck_assert_str_eq(sp.ns, "");
	ck_assert_int_eq(rados_spec_parse("rados:vms/host-a", 1, &sp, &why), 0);
	ck_assert_str_eq(sp.pool, "vms");
	ck_assert_str_eq(sp.ns, "host-a");
	/* a store must name its namespace; names are checked */
	ck_assert_int_eq(rados_spec_parse("rados:vms", 1, &sp, &why), -EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "rados:POOL/STORE"));
	ck_assert_int_eq(rados_spec_parse("rados:", 0, &sp, &why), -EINVAL);
	ck_assert_int_eq(rados_spec_parse("rados:vms/", 0, &sp, &why), -EINVAL);
	ck_assert_int_eq(rados_spec_parse("rados:vms/a/b", 0, &sp, &why), -EINVAL);
	ck_assert_int_eq(rados_spec_parse("rados:.vms", 0, &sp, &why), -EINVAL);
	ck_assert_int_eq(rados_spec_parse("rados:v ms", 0, &sp, &why), -EINVAL);
	ck_assert_int_eq(rados_spec_parse("/srv/tmpl", 0, &sp, &why), -EINVAL);
	char long_name[80];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	char spec[100];
	snprintf(spec, sizeof(spec), "rados:%s", long_name);
	ck_assert_int_eq(rados_spec_parse(spec, 0, &sp, &why), -EINVAL);
}
END_TEST

START_TEST(test_path_in_dir_is_the_directory_a_path_is_directly_in)
{
	ck_assert(path_in_dir("vm.img", ""));
	ck_assert(!path_in_dir("a/vm.img", ""));
	ck_assert(path_in_dir("a/vm.img", "a"));
	ck_assert(path_in_dir("a/b/vm.img", "a/b"));
	ck_assert(!path_in_dir("a/b/vm.img", "a"));
	ck_assert(!path_in_dir("ab/vm.img", "a"));
	ck_assert(!path_in_dir("a/vm.img", "a/vm.img"));
}
END_TEST

FIXTURE_MAIN(tc, "core", NULL, 0)
{
	tcase_add_test(tc, test_name_check_accepts_valid_names);
	tcase_add_test(tc, test_name_check_length_limit_is_200);
	tcase_add_test(tc, test_name_check_rejects_slash_and_leading_dot);
	tcase_add_test(tc, test_name_check_rejects_bytes_outside_charset);
	tcase_add_test(tc, test_size_parse_accepts_numbers_and_binary_suffixes);
	tcase_add_test(tc, test_size_parse_rejects_garbage_with_einval);
	tcase_add_test(tc, test_size_parse_overflow_is_erange);
	tcase_add_test(tc, test_size_format_picks_unit_and_precision);
	tcase_add_test(tc, test_size_format_respects_buffer_length);
	tcase_add_test(tc, test_path_in_dir_is_the_directory_a_path_is_directly_in);
	tcase_add_test(tc, test_rados_spec_parses_pool_and_namespace_and_refuses_the_rest);
}
