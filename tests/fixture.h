/*
 * fixture.h: what every unit-test program shares (tests/fixture.c).
 *
 * A test program is one Check suite of one test case, named after the
 * program: its FIXTURE_MAIN block adds the tests.  Check forks each test and
 * a failed assertion ends that process with _exit(), so no cleanup runs in
 * a test: fixture_main() makes one directory per run under /tmp and removes
 * it, with whatever the tests left there, when the run ends.
 */
#ifndef HCOWFS_TESTS_FIXTURE_H
#define HCOWFS_TESTS_FIXTURE_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#define KiB		(UINT64_C(1) << 10)
#define MiB		(UINT64_C(1) << 20)

/* The run's directory, /tmp/<program>.XXXXXX, made by fixture_main(). */
extern char fixture_run_dir[64];

/*
 * A test case named name in the program's suite: setup (may be NULL) runs
 * in each test's process before the test; timeout_s 0 keeps Check's default.
 */
TCase *fixture_tcase(const char *name, void (*setup)(void), int timeout_s);

/*
 * Runs the program's suite with the engine logging errors only (the tests
 * provoke warnings on purpose) and returns main()'s exit status.
 */
int fixture_main(void);

/*
 * FIXTURE_MAIN(tc, name, setup, timeout_s) { tcase_add_test(tc, t); ... }
 * is a test program's main(): the block adds the program's tests to tc, the
 * test case fixture_tcase(name, setup, timeout_s), and fixture_main() runs
 * them.
 */
#define FIXTURE_MAIN(tc, name, setup, timeout_s)			\
static void fixture_add_tests(TCase *tc);				\
int									\
main(void)								\
{									\
	fixture_add_tests(fixture_tcase((name), (setup), (timeout_s)));	\
	return fixture_main();						\
}									\
static void								\
fixture_add_tests(TCase *tc)

/* A fresh directory under the run's directory, its path in buf. */
void fixture_tmpdir(char *buf, size_t len);

/* Whether s (may be NULL) contains sub. */
int contains(const char *s, const char *sub);

/* Whether path exists. */
int exists(const char *path);

/* The size of path, or -1 if it does not exist. */
int64_t file_size(const char *path);

/* Writes len bytes of buf as the whole of path (asserting it works). */
void write_file(const char *path, const void *buf, size_t len);

#endif
