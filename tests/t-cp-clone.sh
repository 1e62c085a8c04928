#!/bin/bash
# Proves copying is cloning in the mount (issue 20): coreutils cp of a disk
# shares its extents instead of copying its bytes.
#  - vm1.img, cloned from a template with hcowctl create, gets 1 GiB of
#    random data of its own (dd, O_DIRECT); `cp vm1.img vm2.img` adds under
#    1 MiB of log and under 1 MiB to the data dir (both printed, with the
#    time cp took), and vm2.img reads back as vm1.img;
#  - the two then diverge: random writes to vm2.img leave vm1.img as it was
#    and the other way round, checked against plain files given the same
#    writes, also after a remount;
#  - `cp .templates/big.img vm3.img` reads as the template, adds no log and
#    is a disk of that template (as hcowctl create makes);
#  - copy_file_range of part of a file (at equal offsets, aligned or not, at
#    other offsets, within one disk, from a template) gives exact bytes.
# HCOWFS_PLAIN=1 runs it on a plain directory (tests/dirtest.sh): there the
# copies take the host file system's space and only the bytes are checked.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$top_srcdir/tests/dirtest.sh"
dir_test cp dd cmp truncate
start_ms=$(now_ms)
make_template big.img $((64 * MiB))
dir_mount
GiB=$((1024 * MiB))

# added WHAT BEFORE_LOG BEFORE_DU LIMIT: print what WHAT added to the log and
# the data dir since the BEFORE figures; on the mount each must be < LIMIT
added() {
	log=$(($(log_bytes) - $2)) du=$(($(data_bytes) - $3))
	echo "# $1: $log bytes of log, $du bytes of data dir added"
	if on_mount; then
		[ "$log" -lt "$4" ] || fail "$1 added $log bytes of log (limit $4)"
		[ "$du" -lt "$4" ] || fail "$1 added $du bytes to the data dir (limit $4)"
	fi
}

### vm1.img: 1 GiB of its own
dir_create vm1.img base.img
truncate -s $GiB "$M/vm1.img" || fail "truncate -s 1G vm1.img"
head -c $GiB /dev/urandom > "$T/ref1" || fail "1 GiB of random data"
dd if="$T/ref1" of="$M/vm1.img" bs=1M oflag=direct conv=notrunc,fsync status=none ||
	fail "dd of 1 GiB into vm1.img"
ok "vm1.img from base.img, 1 GiB of random data written with dd oflag=direct"

### cp: a clone
log0=$(log_bytes) du0=$(data_bytes)
t0=$(now_ms)
cp "$M/vm1.img" "$M/vm2.img" || fail "cp vm1.img vm2.img"
t1=$(now_ms)
echo "# cp vm1.img vm2.img (1 GiB of its own) took $((t1 - t0)) ms"
added "cp vm1.img vm2.img" "$log0" "$du0" "$MiB"
cmp "$M/vm2.img" "$T/ref1" || fail "vm2.img does not read as vm1.img's data"
cmp "$M/vm1.img" "$T/ref1" || fail "vm1.img changed by the cp"
ok "cp vm1.img vm2.img in $((t1 - t0)) ms; both read back as vm1.img's 1 GiB (cmp)"

### divergence
cp "$T/ref1" "$T/ref2"
$PATTERN mirror "$M/vm2.img" "$T/ref2" --seed vm2 --ops 200 || fail "random writes to vm2.img"
$PATTERN compare "$M/vm1.img" "$T/ref1" || fail "writes to vm2.img changed vm1.img"
$PATTERN mirror "$M/vm1.img" "$T/ref1" --seed vm1 --ops 200 || fail "random writes to vm1.img"
$PATTERN compare "$M/vm2.img" "$T/ref2" || fail "writes to vm1.img changed vm2.img"
$PATTERN compare "$M/vm1.img" "$T/ref1" || fail "vm1.img does not read its own writes"
ok "200 random writes each to vm2.img then vm1.img: each reads its own, not the other's"

### a template through .templates
cmp "$M/.templates/big.img" "$T/tmpl/big.img" || fail ".templates/big.img does not read as the template"
log0=$(log_bytes) du0=$(data_bytes)
cp "$M/.templates/big.img" "$M/vm3.img" || fail "cp .templates/big.img vm3.img"
added "cp .templates/big.img vm3.img" "$log0" "$du0" 65536
cmp "$M/vm3.img" "$T/tmpl/big.img" || fail "vm3.img does not read as big.img"
if on_mount; then
	tmpl=$(status_field '[d["template"] for d in s["disks"] if d["name"] == "vm3.img"]')
	[ "$tmpl" = "['big.img']" ] || fail "status: vm3.img has template $tmpl, not big.img"
fi
ok "cp .templates/big.img vm3.img reads as the template and is a disk of big.img"

### copies of part of a file
truncate -s $((64 * MiB)) "$M/vm4.img" "$T/ref4" || fail "truncate -s 64M vm4.img"
# part SRC SRC_REF SRC_OFF DST_OFF LEN: copy_file_range into vm4.img
part() {
	$PATTERN copy "$1" "$M/vm4.img" "$2" "$T/ref4" --src-off "$3" --dst-off "$4" --len "$5" ||
		fail "copy_file_range of $5 bytes of $1 at $3 to vm4.img at $4"
}
part "$M/vm1.img" "$T/ref1" $((8 * MiB)) $((8 * MiB)) $((4 * MiB))
part "$M/vm1.img" "$T/ref1" $((20 * MiB + 4095)) $((20 * MiB + 4095)) $((3 * MiB + 1))
part "$M/vm2.img" "$T/ref2" $((1 * MiB + 7)) $((40 * MiB + 3)) $((2 * MiB + 100))
part "$M/vm2.img" "$T/ref2" $((4 * MiB)) $((30 * MiB)) $MiB
part "$M/.templates/big.img" "$T/tmpl/big.img" $((50 * MiB)) $((50 * MiB)) $((2 * MiB + 512))
part "$M/vm4.img" "$T/ref4" $((8 * MiB)) $((60 * MiB)) $MiB
$PATTERN compare "$M/vm4.img" "$T/ref4" || fail "vm4.img after the partial copies"
$PATTERN compare "$M/vm1.img" "$T/ref1" || fail "vm1.img after copies from it"
ok "copy_file_range of parts at equal offsets (aligned, unaligned), other offsets, within vm4.img, from a template: exact bytes"

### after a remount
dir_remount
for d in 1 2 4; do
	$PATTERN compare "$M/vm$d.img" "$T/ref$d" || fail "vm$d.img after the remount"
done
cmp "$M/vm3.img" "$T/tmpl/big.img" || fail "vm3.img after the remount"
if on_mount; then
	out=$(ctl check) || fail "hcowctl check: $out"
fi
ok "after a remount vm1.img, vm2.img, vm3.img and vm4.img read as before; check clean"
echo "# t-cp-clone took $(($(now_ms) - start_ms)) ms"
