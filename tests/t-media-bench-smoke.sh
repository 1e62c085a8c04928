#!/bin/bash
# Proves `bench/bench --media hybrid --quick` runs end to end on the modelled HDD and
# SSD: it prints the table and the targets, its CSV has a row per system and job,
# and it leaves no mount, loop device or daemon behind, also when it is
# interrupted (SIGTERM) in the middle; hcowfs's defragmenter finished rewriting
# the fragmented disk before the sequential read.  Its figures are not judged
# here: this machine is shared and noisy.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
[ -c /dev/loop-control ] || skip "needs /dev/loop-control"
need fio qemu-storage-daemon qemu-img losetup mkfs.ext4 filefrag debugfs
[ -x "$top_builddir/bench/media/hddsim" ] || fail "bench/media/hddsim is not built"
export HDDSIM=$top_builddir/bench/media/hddsim
scratch
BENCH=$top_srcdir/bench/bench

mkdir "$T/run"
out=$T/out
python3 "$BENCH" --media hybrid --quick --dir "$T/run" --csv "$T/bench.csv" >"$out" 2>&1 ||
    { cat "$out"; fail "bench --media hybrid --quick failed"; }
cat "$out"
for m in "^job  *unit  *hcowfs  *qcow2-hybrid  *qcow2-hdd  *raw-hdd  *raw-ssd" "^template randread " \
	"^randwrite QD8 " "^seqread 1M " "^fdatasync 4 disks " "^mixed 70/30 4 disks " \
	"^targets (issue 13)" "HDD bytes written by hcowfs without a seek" "^targets met: "; do
	grep -q "$m" "$out" || fail "no line '$m' in the output"
done
ok "bench --media hybrid --quick prints the table and the targets"
# the defragmenter of the mount rewrote the fragmented disk before the sequential read
grep -q "^hcowfs defragmenter before seqread: nothing left .*rewrote [1-9]" "$out" ||
	fail "the defragmenter did not finish its work on the fragmented disk"
grep -q "^defrag,rewritten,,hcowfs,[1-9]" "$T/bench.csv" || fail "no CSV row for the defragmenter"
ok "the defragmenter rewrote the fragmented disk before the sequential read"

for s in hcowfs qcow2-hybrid qcow2-hdd raw-hdd raw-ssd; do
	for j in "template randread" "randwrite QD1" "randwrite QD8" "rewritten randread" "seqread 1M" \
		"fdatasync 1 writer" "fdatasync 4 writers"; do
		grep -q "^io,$j,,$s,[0-9.]*,IOPS$" "$T/bench.csv" || fail "no CSV row for $j on $s"
	done
done
for s in hcowfs qcow2-hybrid qcow2-hdd; do
	grep -q "^io,mixed 70/30 4 disks,,$s," "$T/bench.csv" || fail "no CSV row for the mixed job on $s"
done
grep -q "^overwrite,write amplification," "$T/bench.csv" || fail "no CSV row for the overwrite"
[ "$(grep -c '^target,' "$T/bench.csv")" -ge 12 ] || fail "the CSV lacks target rows"
ok "the CSV has a row for every system and job ($(wc -l <"$T/bench.csv") lines)"
left_nothing "$T/run" || fail "the run left the above behind"
ok "the run left no mount, loop device or process"

# interrupted once its systems are up
interrupted_run_cleans "$T/int" "template randread" python3 "$BENCH" --media hybrid --quick --dir "$T/int"
