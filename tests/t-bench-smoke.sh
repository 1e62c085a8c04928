#!/bin/bash
# Proves bench/bench-recovery and bench/bench-open run end to end (10 crashes idle and under load,
# 3 hangs, 1 s of fio with the watch on and off) and prints every figure.
# Its numbers are not judged here: this machine is shared and noisy.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need fio
scratch	# for the sanitizer reports of the mounts bench-recovery makes
out=$T/out
python3 "$top_srcdir/bench/bench-recovery" --quick >"$out" 2>&1 || { cat "$out"; fail "bench-recovery --quick failed"; }
cat "$out"
for m in "crash recovery, idle" "crash recovery, under fio load" "crash recovery, under load, standby=off" \
	"hang detected" "hung read completed" "4k randread IOPS" "4k randwrite IOPS" \
	"4k randread CPU us per I/O" "4k randwrite CPU us per I/O"; do
	grep -q "^$m" "$out" || fail "no figure for '$m'"
done
ok "bench-recovery --quick prints every figure"

"$top_builddir/bench/bench-open" -e 2000 -t 4 -r 1 >"$out" 2>&1 || { cat "$out"; fail "bench-open failed"; }
cat "$out"
grep -q "^open time, 2000 extents + 4 MiB log tail: best" "$out" || fail "bench-open printed no open time"
ok "bench-open builds a store, opens it and prints the open time"
