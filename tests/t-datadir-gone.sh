#!/bin/bash
# Proves: a supervisor whose mount and data dir are both gone (lazily
# unmounted while it served) ends when its worker dies and no replacement can
# start, instead of starting replacements forever while holding the FUSE
# connection, and with it the data dir's file system, open.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch
mkdir "$T/dd"
mount -t tmpfs -o size=64M,mode=755 none "$T/dd" || skip "cannot mount a tmpfs"
MOUNTED=$T/dd	# cleanup unmounts what MOUNTED lists
mkdir -m 700 "$T/dd/data"
make_template base.img $((1024 * 1024))
"$MOUNT_HCOWFS" "$T/tmpl" "$T/dd/data" "$T/mnt" -o standby=off || fail "mount.hcowfs failed"
MOUNTED="$T/mnt $T/dd"
ctl create a.img --template base.img >/dev/null || fail "create failed"
sup=$(supervisor_pid) w=$(worker_pid)
# an open file keeps the connection after the lazy unmount, as a VM's disk would
exec 9<"$T/mnt/a.img"
umount -l "$T/dd"
umount -l "$T/mnt"
MOUNTED=
kill -KILL "$w"
supervisor_gone() { ! kill -0 "$sup" 2>/dev/null; }
wait_for supervisor_gone ||
	fail "the supervisor ($sup) still runs 10 s after its mount and data dir went away"
exec 9<&-
ok "the supervisor ended once no worker could start for a mount that is gone"
