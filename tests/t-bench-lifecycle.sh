#!/bin/bash
# Proves: bench/bench-lifecycle runs end to end on a small store (--smoke)
# and prints every figure of issue 12's targets: snapshot and clone time,
# the guest writes' longest wait during them, memory and rows with many
# snapshots, and a deep clone's reads against its root.  The figures are not
# judged here: the machine is shared and noisy.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
command -v fio >/dev/null || skip "fio is not installed"
scratch
out=$T/bench.out
python3 "$top_srcdir/bench/bench-lifecycle" --smoke --dir "$T" >"$out" 2>&1 || { cat "$out"; fail "bench-lifecycle --smoke failed"; }
cat "$out"
for f in "snapshot: in the worker" "clone: in the worker" "guest write, longest during" \
    "memory of 10 snapshots / of 1" "catalog disk rows with 10 snapshots" \
    "clone 10 deep / root, IOPS" "clone 10 deep / root, CPU per read"; do
	grep -q "$f" "$out" || fail "bench-lifecycle printed no '$f'"
done
grep -q "snapshots listed  *10 *$" "$out" || fail "bench-lifecycle did not list its 10 snapshots"
grep -q "^(10 snapshots and 10 clones timed" "$out" || fail "the worker's log did not time every snapshot and clone"
ok "bench-lifecycle --smoke prints every figure"
