#!/bin/bash
# Proves `bench/bench-ceph --smoke` runs end to end: a BlueStore OSD on the
# modelled HDD, hcowfs's store and template cache against an RBD clone; it
# prints a RESULT line per job and the table, its CSV has a row per job and
# system, and it leaves no mount, loop device or process behind.  Its
# figures are not judged here: this machine is shared and noisy.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
[ -c /dev/loop-control ] || skip "needs /dev/loop-control"
need fio rbd ceph ceph-mon ceph-osd losetup mkfs.ext4 timeout
grep -q '^#define HAVE_CEPH 1' "$top_builddir/config.h" || skip "hcowfs built without Ceph"
fio --enghelp 2>/dev/null | grep -qw rbd || skip "this fio has no rbd engine"
[ -x "$top_builddir/bench/media/hddsim" ] || fail "bench/media/hddsim is not built"
export HDDSIM=$top_builddir/bench/media/hddsim
scratch

mkdir "$T/run"
out=$T/out
timeout 300 python3 "$top_srcdir/bench/bench-ceph" --smoke --dir "$T/run" --csv "$T/bench.csv" \
    >"$out" 2>&1 || { cat "$out"; fail "bench-ceph --smoke failed"; }
cat "$out"
for j in "template randread" randwrite fdatasync "randwrite written"; do
	grep -q "^RESULT $j  *hcowfs  *[0-9.]*/s  *[a-z-]*  *[0-9.]*/s  *ratio " "$out" ||
	    fail "no RESULT line for $j"
done
grep -q "^job  *system  *IOPS  *osd ops" "$out" || fail "no table"
ok "bench-ceph --smoke prints a RESULT line per job and the table"

for row in "template randread,,hcowfs" "template randread,,local-ssd" "template randread,,rbd-clone" \
	"template randread,,hcowfs-local" "randwrite,,hcowfs" "randwrite,,rbd-clone" "fdatasync,,hcowfs" "fdatasync,,rbd-clone" \
	"randwrite written,,hcowfs" "randwrite written,,rbd-clone"; do
	grep -q "^io,$row,[0-9.]*,IOPS$" "$T/bench.csv" || fail "no CSV row for $row"
done
grep -q "^per guest I/O,osd ops,randwrite,hcowfs," "$T/bench.csv" || fail "no RADOS figures in the CSV"
ok "the CSV has a row for every job and system ($(wc -l <"$T/bench.csv") lines)"
wait_for left_nothing "$T/run" >/dev/null 2>&1 ||
    left_nothing "$T/run" || fail "the run left the above behind"
ok "the run left no mount, loop device or process"
