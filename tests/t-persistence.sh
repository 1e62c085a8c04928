#!/bin/bash
# Proves: fsync'd writes survive SIGKILL of the worker (the supervisor starts
# a replacement that takes over the live mount, and I/O in flight completes
# without an error), SIGKILL of the supervisor (the worker keeps serving),
# SIGKILL of both (the next mount clears the dead mount and recovers from
# the log), and a clean unmount (no process left behind).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch

make_template base.img $((4 * 1048576))
# small checkpoint interval: recovery must combine checkpoint + log replay
mount_fs -o checkpoint_ms=300
ctl create d1.img --template base.img --size 8M >/dev/null
cp "$T/tmpl/base.img" "$T/ref"
truncate -s 8M "$T/ref"

$PATTERN mirror "$T/mnt/d1.img" "$T/ref" --seed p1 --ops 300 --fsync
w=$(worker_pid)
kill -KILL "$w"
wait_for new_worker_serving "$w" || fail "no replacement after SIGKILL of worker $w"
$PATTERN compare "$T/mnt/d1.img" "$T/ref" || fail "data differs after worker SIGKILL"
ok "worker SIGKILL: replacement serves the same data"

# kill the worker repeatedly while a writer runs: the writer sees no error
(
	for i in 1 2 3; do
		sleep 0.3
		p=$(worker_pid 2>/dev/null) && kill -KILL "$p" 2>/dev/null
	done
) &
killer=$!
$PATTERN mirror "$T/mnt/d1.img" "$T/ref" --seed p2 --ops 3000 --max-len 65536 --fsync ||
	fail "writer saw an error while workers were killed"
wait $killer
$PATTERN compare "$T/mnt/d1.img" "$T/ref" || fail "data differs after kills during writes"
restarts=$(status_field 's["restarts"]')
[ "$restarts" -ge 2 ] || fail "expected at least 2 restarts, status says $restarts"
ok "writer ran through $restarts worker kills with no error and no lost byte"

s=$(supervisor_pid)
w=$(worker_pid)
kill -KILL "$s"
$PATTERN mirror "$T/mnt/d1.img" "$T/ref" --seed p3 --ops 200 --fsync ||
	fail "I/O failed after the supervisor was killed"
$PATTERN compare "$T/mnt/d1.img" "$T/ref" || fail "data differs without supervisor"
expect_fail "hcowctl without a supervisor" "not running" ctl status
ok "supervisor SIGKILL: the worker keeps serving"

kill -KILL "$w"
sleep 0.3
if stat "$T/mnt/d1.img" 2>/dev/null; then fail "mount should be dead"; fi
mount_fs
$PATTERN compare "$T/mnt/d1.img" "$T/ref" || fail "fsync'd data lost after killing everything"
ok "everything killed: mount again recovers every fsync'd byte"

umount "$T/mnt"
sleep 0.5
[ -z "$(pgrep -f -- "$T/")" ] || fail "processes left after umount: $(pgrep -af -- "$T/")"
mount_fs
$PATTERN compare "$T/mnt/d1.img" "$T/ref" || fail "data differs after clean remount"
grep "open in" "$T/data/hcowfs.log" | tail -1 | grep -q "replayed 0 records" ||
	fail "clean unmount did not leave a final checkpoint"
ok "clean unmount: no process left, final checkpoint written"

# hcowctl checkpoint: with the interval out of reach, only the command can
# have checkpointed, so a mount after killing everything replays nothing
umount_fs
mount_fs -o checkpoint_ms=3600000
$PATTERN mirror "$T/mnt/d1.img" "$T/ref" --seed p4 --ops 300
out=$(ctl checkpoint) || fail "hcowctl checkpoint failed"
[ "$out" = "checkpoint done" ] || fail "hcowctl checkpoint said '$out'"
for p in $(our_pids); do kill -KILL "$p" 2>/dev/null || true; done	# a standby may be gone
sleep 0.3
mount_fs
$PATTERN compare "$T/mnt/d1.img" "$T/ref" || fail "checkpointed data lost after killing everything"
grep "open in" "$T/data/hcowfs.log" | tail -1 | grep -q "replayed 0 records" ||
	fail "after hcowctl checkpoint the mount replayed records: $(grep "open in" "$T/data/hcowfs.log" | tail -1)"
expect_fail "checkpoint with an argument" "takes no argument" ctl checkpoint now
ok "hcowctl checkpoint: the catalog names every write, nothing is left to replay"
