#!/bin/bash
# Proves bench/bench-index runs end to end on 200,000 extents and prints every figure.
# Its numbers are not judged here: this machine is shared and noisy.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
scratch
out=$T/out
"$top_builddir/bench/bench-index" --smoke "$T" >"$out" 2>&1 || { cat "$out"; fail "bench-index --smoke failed"; }
cat "$out"
for m in "build:" "file:" "memory with the index alone:" "lookup (index_first" \
	"transaction of 1000 random sets:" "transaction of 100000 random sets:"; do
	grep -q "^$m" "$out" || fail "no figure for '$m'"
done
ok "bench-index --smoke prints every figure"
