#!/bin/bash
# Proves: the log's files and the worker's descriptors follow the live data,
# not the history.  A guest overwrites a small disk 60 segments' worth
# (16 MiB segments) under a mount with a low fd limit: released segments'
# files are removed (or kept as one of the spares) and their fds closed,
# so writes never meet EMFILE, the fd count and the count of log files stay
# bounded, a remount under the same limit works, every byte reads back and
# the store checks clean.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch

FD_LIMIT=96
nfds() { ls "/proc/$(worker_pid)/fd" | wc -l; }
nsegs() { ls "$T/data/log" | grep -c '\.seg$'; }
mount_limited() {
	(ulimit -n $FD_LIMIT && mount_fs -o segment_size=16M,checkpoint_ms=200) || fail "mount failed"
	MOUNTED="$T/mnt"
}

make_template base.img $((1048576))
mount_limited
ctl create a.img --template base.img --size 16M >/dev/null
ctl create b.img --template base.img --size 4M >/dev/null
# b is written once, early: its data sits in the first segments and must be moved
head -c 4M /dev/urandom >"$T/ref-b"
dd if="$T/ref-b" of="$T/mnt/b.img" bs=1M conv=notrunc,fsync status=none || fail "writing b.img"
fds0=$(nfds)
max_fds=0 max_segs=0
for round in $(seq 60); do
	head -c 16M /dev/urandom >"$T/ref-a"
	dd if="$T/ref-a" of="$T/mnt/a.img" bs=1M conv=notrunc,fsync status=none ||
		fail "round $round: the write failed ($(grep -c EMFILE "$T/data/hcowfs.log") EMFILE in the log)"
	n=$(nfds); [ "$n" -gt "$max_fds" ] && max_fds=$n
	n=$(nsegs); [ "$n" -gt "$max_segs" ] && max_segs=$n
done
grep -q "cleaner: released" "$T/data/hcowfs.log" || fail "the cleaner never released a segment"
# live data is 20 MiB: a few segments, a tail the cleaner has not reached, the spares
[ "$max_segs" -le 16 ] || fail "up to $max_segs segment files for 20 MiB of live data"
[ "$max_fds" -le $((fds0 + 16)) ] || fail "the worker's fds grew from $fds0 to $max_fds"
ok "60 segments written: at most $max_segs segment files, worker fds $fds0 -> at most $max_fds"
cmp "$T/mnt/a.img" "$T/ref-a" || fail "a.img differs"
cmp "$T/mnt/b.img" "$T/ref-b" || fail "b.img differs"
out=$(ctl check) || fail "check: $out"

umount_fs
out=$("$HCOWCTL" check "$T/data") || fail "offline check: $out"
mount_limited
[ "$(nfds)" -le $((fds0 + 16)) ] || fail "after a remount the worker holds $(nfds) fds"
cmp "$T/mnt/a.img" "$T/ref-a" || fail "a.img differs after remount"
cmp "$T/mnt/b.img" "$T/ref-b" || fail "b.img differs after remount"
p=$(worker_pid)
kill -KILL "$p"
wait_for new_worker_serving "$p" || fail "no worker took over"
cmp "$T/mnt/a.img" "$T/ref-a" || fail "a.img differs after a takeover"
[ "$(nfds)" -le $((fds0 + 16)) ] || fail "after a takeover the worker holds $(nfds) fds"
ok "remount and takeover under ulimit -n $FD_LIMIT: every byte reads back, check clean"
