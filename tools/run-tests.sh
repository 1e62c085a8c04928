#!/bin/bash
# Build hcowfs (installing Debian packages if missing) and run the whole test
# suite, unit and integration.  Run as root: the integration tests mount.
# Ends with a line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
./tools/setup.sh || exit 1
make check
rc=$?
summary() { awk -v k="$1" '$1 == "#" && $2 == k ":" { print $3 }' test-suite.log 2>/dev/null | head -1; }
if [ -f test-suite.log ]; then
	[ $rc -ne 0 ] && cat test-suite.log
	pass=$(summary PASS) fail=$(summary FAIL) skip=$(summary SKIP) xfail=$(summary ERROR)
	echo "${pass:-0} passed, $(( ${fail:-0} + ${xfail:-0} )) failed, ${skip:-0} skipped"
fi
exit $rc
