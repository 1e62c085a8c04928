#!/bin/bash
# Proves: a worker that replaced another still gives back the space of
# deleted disks.  A disk deleted after the replacement (never opened, or
# opened and closed), and one deleted while open before the crash and closed
# after it, are purged once nothing holds them; while a program holds a
# deleted disk open, its data stays readable through that open.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test

live() { status_field 's["log"]["live_bytes"]'; }
live_is() { [ "$(live)" = "$1" ]; }
# kill the serving worker and wait for its replacement
replace_worker() {
	old=$(worker_pid)
	kill -KILL "$old"
	wait_for new_worker_serving "$old" || fail "no worker serving after killing $old"
}

mount_fs
for d in a b c e; do
	ctl create $d.img --template base.img --size 4M >/dev/null
	write_mib_blocks "$M/$d.img" 2
done
[ "$(live)" = $((8 * MiB)) ] || fail "expected 8 MiB live, found $(live)"

# e.img: deleted while open before the crash; the opener goes on reading it
exec 7<"$M/e.img"
rm "$M/e.img"
replace_worker

ctl delete a.img >/dev/null			# never opened by this worker
wait_for live_is $((6 * MiB)) || fail "a.img deleted after a replacement: live bytes stay $(live)"
ok "a disk deleted after a worker replacement is purged"

cat "$M/b.img" >/dev/null
rm "$M/b.img"					# opened and closed, then deleted
wait_for live_is $((4 * MiB)) || fail "b.img removed after a replacement: live bytes stay $(live)"
ok "a disk removed through the mount after a replacement is purged"

# held open across the replacement: kept while open, purged at its close
exec 8<"$M/c.img"
rm "$M/c.img"
replace_worker
[ "$(live)" = $((4 * MiB)) ] || fail "open deleted disks lost their data: live $(live)"
head -c $MiB <&8 | cmp -s - <(python3 -c "import sys; sys.stdout.buffer.write(b'\x01' * (1 << 20))") ||
	fail "a deleted disk held open does not read back"
head -c $MiB <&7 | cmp -s - <(python3 -c "import sys; sys.stdout.buffer.write(b'\x01' * (1 << 20))") ||
	fail "a disk deleted while open before a crash does not read back"
ok "deleted disks held open keep their data across replacements"
exec 8<&-
wait_for live_is $((2 * MiB)) || fail "c.img closed after its deletion: live bytes stay $(live)"
exec 7<&-
wait_for live_is 0 || fail "e.img closed after its deletion: live bytes stay $(live)"
ok "deleted disks are purged at their last close after a replacement"
umount_fs
