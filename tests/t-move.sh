#!/bin/bash
# Proves `hcowctl move DISK --to MOUNTPOINT` between two local stores (two
# mounts with their own data dirs sharing one template dir):
#  1. refusals, one line each, nothing changed: a disk that does not exist, a
#     destination that is not an hcowfs mount, a name taken there, a template
#     missing there or different there, no space there, a disk that is
#     open, a disk with snapshots, a snapshot;
#  2. a move: the bytes are equal, the destination's log grew by about the
#     disk's own data (not the template's size), the source is gone;
#  3. interrupted moves leave the source intact, and a retry succeeds:
#     SIGINT while copying (nothing left behind), killed after the copy (a
#     temporary disk at the destination, removed by the retry), killed after
#     the rename (both disks; the retry deletes the source); a source
#     written in the middle of a move makes it fail, the write kept;
#  4. `hcowctl check` is clean on every store.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$top_srcdir/tests/move-lib.sh"
mount_test cmp fallocate
make_template big.img $((32 * MiB))
M2=$T/mnt2
M3=$T/mnt3
M4=$T/mnt4
mkdir "$T/data2" "$M2" "$T/tmpl3" "$T/data3" "$M3" "$T/data4" "$M4"
# store 3's template dir has a big.img of other bytes, and no base.img
$PATTERN fill "$T/tmpl3/big.img" --size $((32 * MiB)) --seed other

mount_fs
"$MOUNT_HCOWFS" "$T/tmpl" "$T/data2" "$M2" || fail "mount of store 2 failed"
MOUNTED="$M $M2"
"$MOUNT_HCOWFS" "$T/tmpl3" "$T/data3" "$M3" || fail "mount of store 3 failed"
MOUNTED="$M $M2 $M3"
# store 4 keeps more than the file system has for its cleaner: no room for guests' data
"$MOUNT_HCOWFS" "$T/tmpl" "$T/data4" "$M4" -o space_reserve=1P || fail "mount of store 4 failed"
MOUNTED="$M $M2 $M3 $M4"
ctl2() { "$HCOWCTL" -m "$M2" "$@"; }


### 1. refusals
mkdisk "$M" d1.img big.img
expect_fail "a disk that does not exist" "no disk named 'nope.img'" ctl move nope.img --to "$M2"
expect_fail "a destination that is not a mount" "no hcowfs mount" ctl move d1.img --to "$T/tmpl"
expect_fail "the same mount" "already on" ctl move d1.img --to "$M"
ctl2 create d1.img --size 1M >/dev/null
expect_fail "a name taken at the destination" "exists at .*not replacing" ctl move d1.img --to "$M2"
ctl2 delete d1.img >/dev/null
expect_fail "a template different at the destination" "template 'big.img' at .* differs" \
	ctl move d1.img --to "$M3"
ctl create b.img --template base.img >/dev/null
expect_fail "a template missing at the destination" "template 'base.img' is not at" \
	ctl move b.img --to "$M3"
expect_fail "no space at the destination" "no space at .*mnt4" ctl move d1.img --to "$M4"
exec 7<"$M/d1.img"
expect_fail "a disk that is open" "is open" ctl move d1.img --to "$M2"
exec 7<&-
ctl snapshot d1.img s1 >/dev/null
expect_fail "a disk with snapshots" "has snapshots" ctl move d1.img --to "$M2"
expect_fail "a snapshot" "not a snapshot" ctl move d1.img@s1 --to "$M2"
ctl delete d1.img@s1 >/dev/null
cmp "$M/d1.img" "$T/d1.img.ref" || fail "a refused move changed the source"
! has_disk "$M2" d1.img && ! has_disk "$M2" d1.img.move-in && ! has_disk "$M3" d1.img.move-in &&
    ! has_disk "$M4" d1.img.move-in ||
	fail "a refused move left a disk at the destination"
ok "refusals changed nothing"

### 2. a move
own=$(own_bytes "$M" d1.img)
before=$(move_log_bytes "$M2")
ctl move d1.img --to "$M2" > "$T/out" || fail "move failed: $(cat "$T/out")"
grep -q "moved 'd1.img'" "$T/out" || fail "move said: $(cat "$T/out")"
after=$(move_log_bytes "$M2")
cmp "$M2/d1.img" "$T/d1.img.ref" || fail "the moved disk's bytes differ"
grew=$((after - before))
echo "# own data $own bytes; destination log grew by $grew bytes; template $((32 * MiB))"
[ "$grew" -ge "$own" ] && [ "$grew" -le $((own + MiB)) ] ||
	fail "the destination's log grew by $grew bytes for $own bytes of the disk's own data"
! has_disk "$M" d1.img && [ ! -e "$M/d1.img" ] || fail "the source is still there after the move"
ok "moved: bytes equal, the destination's log grew by the disk's own data ($grew for $own), source gone"

### 3. interrupted moves
mkdisk "$M" d2.img big.img
out=$(HCOWCTL_TEST_INTERRUPT_AT=$MiB ctl move d2.img --to "$M2" 2>&1) && fail "interrupted move succeeded: $out"
echo "$out" | grep -q "interrupted" || fail "interrupted move said: $out"
cmp "$M/d2.img" "$T/d2.img.ref" || fail "SIGINT: the source changed"
! has_disk "$M2" d2.img.move-in && ! has_disk "$M2" d2.img || fail "SIGINT left a disk at the destination"
ok "SIGINT while copying: source intact, nothing left at the destination ($out)"

for at in created copied; do
	HCOWCTL_TEST_KILL_AT=$at ctl move d2.img --to "$M2" >/dev/null 2>&1 && fail "killed move ($at) succeeded"
	cmp "$M/d2.img" "$T/d2.img.ref" || fail "killed after $at: the source changed"
	has_disk "$M2" d2.img.move-in || fail "killed after $at: no temporary disk at the destination"
	! has_disk "$M2" d2.img || fail "killed after $at: the disk has its name at the destination"
done
ctl move d2.img --to "$M2" > "$T/out" || fail "retry failed: $(cat "$T/out")"
grep -q "removed 'd2.img.move-in'" "$T/out" || fail "the retry did not remove the leftover: $(cat "$T/out")"
cmp "$M2/d2.img" "$T/d2.img.ref" || fail "retry: the moved disk's bytes differ"
! has_disk "$M" d2.img && ! has_disk "$M2" d2.img.move-in || fail "retry: the source or the leftover is still there"
ok "killed after creating and after copying: source intact, the retry removed the leftover and moved"

mkdisk "$M" d3.img big.img
HCOWCTL_TEST_KILL_AT=renamed ctl move d3.img --to "$M2" >/dev/null 2>&1 && fail "killed move (renamed) succeeded"
cmp "$M/d3.img" "$T/d3.img.ref" || fail "killed after the rename: the source changed"
cmp "$M2/d3.img" "$T/d3.img.ref" || fail "killed after the rename: the destination differs"
ctl move d3.img --to "$M2" > "$T/out" || fail "retry after the rename failed: $(cat "$T/out")"
grep -q "finishing an earlier move" "$T/out" || fail "retry after the rename said: $(cat "$T/out")"
! has_disk "$M" d3.img && cmp "$M2/d3.img" "$T/d3.img.ref" || fail "retry after the rename: wrong result"
ok "killed after the rename: both disks equal; the retry deleted the source"

# a source written in the middle of a move (hcowctl stopped after its copy): nothing moves
mkdisk "$M" d4.img big.img
HCOWCTL_TEST_STOP_AT=copied "$HCOWCTL" -m "$M" move d4.img --to "$M2" > "$T/out" 2>&1 &
mover=$!
stopped() { [ "$(awk '{ print $3 }' "/proc/$1/stat")" = T ]; }
wait_for stopped $mover || fail "the move did not stop after its copy"
python3 -c "
import os
for f in ('$M/d4.img', '$T/d4.img.ref'):
    fd = os.open(f, os.O_RDWR)
    os.pwrite(fd, b'late' * 1024, 5 * $MiB)
    os.fsync(fd)
    os.close(fd)"
kill -CONT $mover
wait $mover && fail "a move whose source was written meanwhile succeeded: $(cat "$T/out")"
grep -q "written during the move" "$T/out" || fail "the move said: $(cat "$T/out")"
cmp "$M/d4.img" "$T/d4.img.ref" || fail "the written source is not as written"
! has_disk "$M2" d4.img && ! has_disk "$M2" d4.img.move-in || fail "a disk was left at the destination"
ok "a source written during the move: refused at the end, the source has the write, nothing at the destination"

### 4. check
for m in "$M" "$M2" "$M3" "$M4"; do
	"$HCOWCTL" -m "$m" check > "$T/check" || { cat "$T/check"; fail "check of $m found problems"; }
done
ok "check is clean on every store"
