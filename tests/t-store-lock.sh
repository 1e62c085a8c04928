#!/bin/bash
# Proves: a store has one writer.  The data dir's lock is held by the
# supervisor and by its worker, so that after the supervisor is killed
# (its worker goes on serving) a second mount of the same data dir, and
# hcowctl check --repair, are refused with a message naming the holder;
# removing DATA_DIR/lock while mounted changes nothing; a replacement worker
# is not blocked by the lock it shares.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test
mkdir "$T/mnt2"

mount_fs
ctl create a.img --template base.img --size 4M >/dev/null
write_mib_blocks "$M/a.img" 2

# a replacement worker shares the lock: it starts and serves
old=$(worker_pid)
kill -KILL "$old"
wait_for new_worker_serving "$old" || fail "no worker serving after killing $old"
ok "a replacement worker takes over under the same lock"

# the supervisor dies; its worker serves on, unlocked before the fix
sup=$(supervisor_pid)
kill -KILL "$sup"
wait_for sh -c "! kill -0 $sup 2>/dev/null" || fail "supervisor $sup did not die"
cmp -n $((2 * MiB)) "$M/a.img" <(python3 -c "
import sys
for i in range(2): sys.stdout.buffer.write(bytes([i + 1]) * (1 << 20))") ||
	fail "the orphaned worker does not serve"
MOUNTED="$M $T/mnt2"	# unmounted by the cleanup if the test fails
expect_fail "a second mount of the store after its supervisor died" "in use.*pid $sup, mounted on $M" \
	"$MOUNT_HCOWFS" "$T/tmpl" "$D" "$T/mnt2"
is_mounted "$T/mnt2" && fail "mounted twice"
MOUNTED=$M
expect_fail "check --repair after the supervisor died" "in use by a mount on $M" \
	"$HCOWCTL" check --repair "$D"
# DATA_DIR/lock only names the holder: removing it unlocks nothing
rm -f "$D/lock"
expect_fail "check --repair with DATA_DIR/lock removed while mounted" "in use" \
	"$HCOWCTL" check --repair "$D"


# once the orphaned worker is unmounted and gone, the store opens again
umount_fs
out=$("$HCOWCTL" check "$D") || fail "check after unmount: $out"
ok "after unmount the store is free: $(echo "$out" | tail -1)"
