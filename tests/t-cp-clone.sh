#!/bin/bash
# Proves copying is cloning in the mount (issue 20): coreutils cp of a disk
# shares its extents instead of copying its bytes.
#  - vm1.img, cloned from a template with hcowctl create, gets 1 GiB of
#    random data of its own (dd, O_DIRECT); `cp vm1.img vm2.img` adds under
#    1 MiB of log and under 1 MiB to the data dir, not counting the zeros the
#    log writes ahead (both printed, with the time cp took), and vm2.img
#    reads back as vm1.img;
#  - the two then diverge: random writes to vm2.img leave vm1.img as it was
#    and the other way round, checked against plain files given the same
#    writes, also after a remount;
#  - `cp .templates/big.img vm3.img` reads as the template, adds no log and
#    is a disk of that template (as hcowctl create makes);
#  - copy_file_range of part of a file gives exact bytes: at equal offsets
#    between copies (where 4 MiB add no log: shared), aligned or not, at
#    other offsets, from the template, within a disk, from a disk of another
#    template, into an empty file.
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
# vm6.img, a cp of vm5.img (of big.img, with writes of its own), gets parts
# of vm5.img, of the template, of itself and of vm1.img; vm7.img, empty, one
# part of vm5.img past its end
dir_create vm5.img big.img
cp "$T/tmpl/big.img" "$T/ref5"
$PATTERN mirror "$M/vm5.img" "$T/ref5" --seed vm5 --ops 100 || fail "random writes to vm5.img"
log0=$(log_bytes) du0=$(data_bytes)
cp "$M/vm5.img" "$M/vm6.img" || fail "cp vm5.img vm6.img"
added "cp vm5.img vm6.img" "$log0" "$du0" 65536
cp "$T/ref5" "$T/ref6"
touch "$M/vm7.img" "$T/ref7" || fail "touch vm7.img"
# part SRC SRC_REF DST OFF_IN OFF_OUT LEN: copy_file_range of LEN bytes into DST
part() {
	$PATTERN copy "$1" "$M/$3.img" "$2" "$T/ref${3#vm}" --src-off "$4" --dst-off "$5" --len "$6" ||
		fail "copy_file_range of $6 bytes of $1 at $4 to $3.img at $5"
}
log0=$(log_bytes) du0=$(data_bytes)
part "$M/vm5.img" "$T/ref5" vm6 $((8 * MiB)) $((8 * MiB)) $((4 * MiB))
added "copy_file_range of 4 MiB of vm5.img to vm6.img at the same offset" "$log0" "$du0" 65536
part "$M/vm5.img" "$T/ref5" vm6 $((20 * MiB + 4095)) $((20 * MiB + 4095)) $((3 * MiB + 1))
part "$M/vm5.img" "$T/ref5" vm6 $((MiB + 7)) $((40 * MiB + 3)) $((2 * MiB + 100))
part "$M/vm5.img" "$T/ref5" vm6 $((4 * MiB)) $((30 * MiB)) "$MiB"
part "$M/.templates/big.img" "$T/tmpl/big.img" vm6 $((50 * MiB)) $((50 * MiB)) $((2 * MiB + 512))
part "$M/vm6.img" "$T/ref6" vm6 $((8 * MiB)) $((60 * MiB)) "$MiB"
part "$M/vm1.img" "$T/ref1" vm6 $((12 * MiB)) $((12 * MiB)) $((MiB + 99))
part "$M/vm5.img" "$T/ref5" vm7 $((8 * MiB)) $((8 * MiB)) $((4 * MiB + 5))
for d in 5 6 7 1; do
	$PATTERN compare "$M/vm$d.img" "$T/ref$d" || fail "vm$d.img after the copies of parts"
done
ok "copy_file_range of parts at equal offsets (aligned, not), at others, from the template, within a disk, from another family, into an empty file: exact bytes"

### after a remount
dir_remount
for d in 1 2 5 6 7; do
	$PATTERN compare "$M/vm$d.img" "$T/ref$d" || fail "vm$d.img after the remount"
done
cmp "$M/vm3.img" "$T/tmpl/big.img" || fail "vm3.img after the remount"
if on_mount; then
	out=$(ctl check) || fail "hcowctl check: $out"
fi
ok "after a remount vm1.img, vm2.img, vm3.img, vm5.img, vm6.img and vm7.img read as before; check clean"
echo "# t-cp-clone took $(($(now_ms) - start_ms)) ms"
