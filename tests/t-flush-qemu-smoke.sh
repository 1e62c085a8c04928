#!/bin/bash
# Proves bench/bench-flush-qemu (issue 17: flushing writers through QEMU's
# block layer) runs end to end on the modelled HDD and SSD: a RESULT line per
# writer count with both systems and the HDD's work per write, and nothing
# left behind (mount, loop device, daemon), also when it is interrupted by
# SIGTERM in the middle.  Its figures are not judged here.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
[ -c /dev/loop-control ] || skip "needs /dev/loop-control"
need fio qemu-storage-daemon qemu-img losetup mkfs.ext4 numfmt
fio --enghelp 2>&1 | grep -qw nbd || skip "this fio has no nbd engine"
[ -x "$top_builddir/bench/media/hddsim" ] || fail "bench/media/hddsim is not built"
export HDDSIM=$top_builddir/bench/media/hddsim
scratch
BENCH=$top_srcdir/bench/bench-flush-qemu
ARGS=(--size 4M --writers "1 2" --rounds 1 --runtime 1 --build "$top_builddir")

mkdir "$T/run"
TMPDIR=$T/run "$BENCH" "${ARGS[@]}" >"$T/out" 2>&1 || { cat "$T/out"; fail "bench-flush-qemu failed"; }
cat "$T/out"
for n in 1 2; do
	grep -Eq "^RESULT round 1, +$n writer\(s\): hcowfs +[0-9.]+/s +qcow2-hybrid +[0-9.]+/s +ratio" "$T/out" ||
		fail "no RESULT line for $n writer(s)"
done
[ "$(grep -c 'HDD per guest write: [0-9.]* KiB written, [0-9.]* flushes, [0-9.]* seeks' "$T/out")" = 4 ] ||
	fail "not a line of HDD work per write for each system and job"
ok "bench-flush-qemu prints both systems and the HDD's work per write"
left_nothing "$T/run" || fail "the run left the above behind"
[ -z "$(ls -A "$T/run")" ] || fail "the run left its work directory: $(ls "$T/run")"
ok "the run left no mount, loop device, process or file"

"$BENCH" --writers 9 >/dev/null 2>&1 && fail "9 writers were accepted"
"$BENCH" --size 3k >/dev/null 2>&1 && fail "a size of 3k was accepted"
ok "bad options are refused"

interrupted_run_cleans "$T/int" "load average" env TMPDIR="$T/int" "$BENCH" "${ARGS[@]}" --runtime 30
