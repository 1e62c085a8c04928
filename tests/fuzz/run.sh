#!/bin/bash
# Build the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, AddressSanitizer
# and UBSan, and run each for a while.
#
#   tests/fuzz/run.sh [-t SECONDS] [-o DIR] [TARGET...]
#
# TARGET: proto (the control protocol parsers, common/proto.c) and logrec (the
# write log's record decoder, through fs/store/wlog.h); default both.  SECONDS per
# target, default 30.  DIR (default: build-fuzz in the source tree) holds the
# binaries, each target's growing corpus (corpus-TARGET: run again to continue
# from it) and any crash, as DIR/artifacts-TARGET/crash-*.  Seeds: tests/fuzz/corpus-proto/;
# the logrec seeds are written by fuzz_logrec itself (FUZZ_LOGREC_SEEDS), so
# they always have the current log format.
#
# Needs clang with its runtime (Debian: clang libclang-rt-14-dev).  Exits 1 if
# a target crashed or reported an error; ends with one line per target:
# "fuzz TARGET: N runs in S s (X exec/s), cov C, ft F, corpus K inputs, 0 crashes".
set -euo pipefail
here=$PWD
cd "$(dirname "$0")/../.."
src=$PWD
secs=30
out=$src/build-fuzz
while getopts t:o: opt; do
	case $opt in
	t) secs=$OPTARG ;;
	o) case $OPTARG in /*) out=$OPTARG ;; *) out=$here/$OPTARG ;; esac ;;
	*) sed -n '2,18s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
targets=${*:-proto logrec}
CC=${CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

CFLAGS="-g -O1 -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Wall -Wextra -Wshadow -Wno-unused-parameter
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
	-I$src/common -I$src/fs/store"
declare -A sources=(
	[proto]="common/proto.c"
	[logrec]="fs/store/media_local.c fs/store/wlog.c fs/store/wlog_segment.c fs/store/wlog_replay.c fs/store/wlog_append.c fs/store/wlog_sync.c fs/store/wlog_read.c fs/store/reccache.c common/crc32c.c common/hlog.c common/fdio.c"
)

summary=()
rc=0
for t in $targets; do
	[ -n "${sources[$t]:-}" ] || { echo "fuzz: no target '$t' (proto, logrec)" >&2; exit 2; }
	bin=$out/fuzz_$t
	# shellcheck disable=SC2086
	$CC $CFLAGS -o "$bin" "tests/fuzz/fuzz_$t.c" ${sources[$t]} -pthread
	seeds=$out/seeds-$t
	rm -rf "$seeds"
	if [ "$t" = logrec ]; then
		FUZZ_LOGREC_SEEDS=$seeds "$bin"
	else
		cp -r "tests/fuzz/corpus-$t" "$seeds"
	fi
	mkdir -p "$out/corpus-$t" "$out/artifacts-$t"
	touch "$out/started-$t"	# crashes of earlier runs stay, but are not this run's
	log=$out/fuzz-$t.log
	echo "fuzz $t: running for $secs s (log: $log)"
	set +e
	"$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$out/artifacts-$t/" "$out/corpus-$t" "$seeds" >"$log" 2>&1
	status=$?
	set -e
	runs=$(awk '/^Done [0-9]+ runs in/ { print $2 }' "$log")
	took=$(awk '/^Done [0-9]+ runs in/ { print $5 }' "$log")
	eps=$(awk '/^stat::average_exec_per_sec:/ { print $2 }' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	crashes=$(find "$out/artifacts-$t" -type f -newer "$out/started-$t" | wc -l)
	line="fuzz $t: ${runs:-?} runs in ${took:-?} s (${eps:-?} exec/s), cov ${cov:-?}, ft ${ft:-?}, corpus $(find "$out/corpus-$t" -type f | wc -l) inputs, $crashes crashes"
	if [ $status -ne 0 ] || [ "$crashes" -ne 0 ]; then
		tail -60 "$log"
		line="$line: FAILED (exit $status; inputs in $out/artifacts-$t/)"
		rc=1
	fi
	summary+=("$line")
done
printf '%s\n' "${summary[@]}"
exit $rc
