/*
 * fixture.c: the frame every unit-test program runs in (see fixture.h).
 *
 * It owns the run's directory: fixture_main() makes it before the suite
 * runs and removes it, whole, after; every test's files live below it, in
 * a directory of their own from fixture_tmpdir().  Nothing here knows the
 * engine, so the tests of common/ link it without the store.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hlog.h"
#include "fixture.h"

char fixture_run_dir[64];

/* the program's one suite, named after the program, made by the first fixture_tcase() */
static Suite *suite;

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

int
fixture_main(void)
{
	const char *prog = program_invocation_short_name;
	SRunner *sr = srunner_create(suite);
	int failed;

	snprintf(fixture_run_dir, sizeof(fixture_run_dir), "/tmp/%s.XXXXXX", prog);
	if (!mkdtemp(fixture_run_dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}

	/* warnings about cut tails and the like are expected; keep errors visible */
	hlog_init(prog, HLOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(fixture_run_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

TCase *
fixture_tcase(const char *name, void (*setup)(void), int timeout_s)
{
	TCase *tc = tcase_create(name);

	if (!suite) {
		const char *prog = program_invocation_short_name;
		suite = suite_create(strncmp(prog, "check_", 6) == 0 ? prog + 6 : prog);
	}

	if (setup)
		tcase_add_checked_fixture(tc, setup, NULL);
	if (timeout_s)
		tcase_set_timeout(tc, timeout_s);
	suite_add_tcase(suite, tc);
	return tc;
}

void
fixture_tmpdir(char *buf, size_t len)
{
	snprintf(buf, len, "%s/t.XXXXXX", fixture_run_dir);
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

int
contains(const char *s, const char *sub)
{
	return s && strstr(s, sub) != NULL;
}

int
exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

int64_t
file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

void
write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}
