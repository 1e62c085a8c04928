#!/bin/bash
# Brings the modelled disks of bench/media up at a tiny size, writes and reads
# a file on the modelled HDD, checks that an fsync reaches the model as a
# cache flush and that the byte attribution runs, and takes it all down.
# No timing is judged here.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
[ -c /dev/loop-control ] || skip "needs /dev/loop-control"
need losetup mkfs.ext4 filefrag debugfs
[ -x "$top_builddir/bench/media/hddsim" ] || fail "bench/media/hddsim is not built"
MEDIA=$top_srcdir/bench/media/media
export HDDSIM=$top_builddir/bench/media/hddsim
scratch
M=$T/media
trap 'st=$?; "$MEDIA" down "$M"; (exit $st); cleanup' EXIT

out=$("$MEDIA" up "$M" --hdd-size 256M --ssd-size 64M) || fail "media up failed"
echo "$out"
[ "$out" = "hdd=$M/hdd
ssd=$M/ssd" ] || fail "media up printed '$out'"
is_mounted "$M/hdd" && is_mounted "$M/ssd" || fail "the modelled disks are not mounted"
ok "media up mounts ext4 on the modelled HDD and SSD"

stat_of() { "$MEDIA" stats "$M" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
mkdir -p "$M/hdd/data/log"
head -c 4M /dev/urandom >"$T/ref"
f0=$(stat_of hdd.flushes)
cp "$T/ref" "$M/hdd/data/log/00000001.seg"
sync -d "$M/hdd/data/log/00000001.seg"
f1=$(stat_of hdd.flushes)
[ "$f1" -gt "$f0" ] || fail "an fsync did not reach the model as a flush ($f0 -> $f1)"
ok "an fsync on the modelled HDD drains its cache ($f0 -> $f1 flushes)"

dd if="$M/hdd/data/log/00000001.seg" iflag=direct bs=1M status=none >"$T/back"
cmp "$T/ref" "$T/back" || fail "the file read back differs"
[ "$(stat_of hdd.bytes_read)" -gt 0 ] || fail "no read reached the model"
[ "$(stat_of hdd.bytes_written)" -ge 4194304 ] || fail "the writes did not reach the model"
ok "a file written on the modelled HDD reads back the same"

attr=$("$MEDIA" attribute "$M" "$M/hdd/data") || fail "media attribute failed"
logw=$(echo "$attr" | awk -F= '$1 == "attr.all.log.write_bytes" { print $2 }')
[ "${logw:-0}" -ge 4194304 ] || { echo "$attr"; fail "the segment's bytes were not attributed to the log"; }
ok "media attribute puts the segment's bytes under log ($logw bytes)"

"$MEDIA" down "$M"
is_mounted "$M/hdd" || is_mounted "$M/sim" && fail "media down left a mount"
[ -f "$M/state" ] && fail "media down left its state file"
ok "media down removes what up made"
