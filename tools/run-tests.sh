#!/bin/bash
# Build hcowfs (installing Debian packages if missing) and run the whole test
# suite, unit and integration.  Run as root: the integration tests mount.
# Ends with a line "N passed, N failed, N skipped".
#
# --sanitizers: instead build out of tree, in build-san/, configured with
# --enable-sanitizers (AddressSanitizer + UBSan; the tests fail on a report of
# any process they start, daemons included), run the suite there, then run
# each fuzzer for FUZZ_SECONDS (default 30) with tests/fuzz/run.sh.  An
# out-of-tree build needs a source tree not configured in place, so an
# in-place build is removed first (make distclean).
set -uo pipefail
cd "$(dirname "$0")/.."
san=
[ "${1:-}" = --sanitizers ] && san=1
if [ -n "$san" ]; then
	./tools/setup.sh --no-build || exit 1
	if [ -f config.status ]; then
		# an out-of-tree build refuses a source tree configured in place
		echo "run-tests: the source tree is configured in place: make distclean (the build-san/ build needs it unconfigured)"
		make distclean >/dev/null || exit 1
	fi
	mkdir -p build-san && cd build-san || exit 1
	grep -q '^SAN_CFLAGS = -fsanitize' Makefile 2>/dev/null ||
		../configure --enable-sanitizers >/dev/null || exit 1
	make -j"$(nproc)" >/dev/null || exit 1
else
	./tools/setup.sh || exit 1
fi
make check
rc=$?
summary() { awk -v k="$1" '$1 == "#" && $2 == k ":" { print $3 }' test-suite.log 2>/dev/null | head -1; }
if [ -f test-suite.log ]; then
	[ $rc -ne 0 ] && cat test-suite.log
	pass=$(summary PASS) fail=$(summary FAIL) skip=$(summary SKIP) xfail=$(summary ERROR)
	echo "${pass:-0} passed, $(( ${fail:-0} + ${xfail:-0} )) failed, ${skip:-0} skipped${san:+ (sanitizers)}"
fi
if [ -n "$san" ]; then
	../tests/fuzz/run.sh -t "${FUZZ_SECONDS:-30}" || rc=1	# in build-fuzz/
fi
exit $rc
