#!/bin/bash
# Proves bench/bench-scale runs end to end (--smoke: 200,000 extents, 10 kills
# under load, 2 s of writes before a kill -9 of every process) and prints
# every figure, so the benchmark of issue 22 cannot rot.  No figure is
# judged here: the machine is shared and noisy.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
command -v fio >/dev/null || skip "fio is not installed"
scratch
out=$T/bench.out
python3 "$top_srcdir/bench/bench-scale" --smoke --dir "$T" >"$out" 2>&1 || { cat "$out"; fail "bench-scale --smoke failed"; }
cat "$out"
for f in "mount to first read, clean" "mount to first read, after kill -9 of all" \
    "worker RssAnon" "replacement, idle: kill to first read, p50" \
    "replacement: kill to first read, p50" "replacement: kill to first read, p99"; do
	grep -q "$f" "$out" || fail "bench-scale printed no '$f'"
done
grep -q "200,000 extents" "$out" || fail "bench-scale did not build the store"
ok "bench-scale --smoke prints every figure"
