#!/bin/bash
# Proves: a mount whose processes were all stopped (a suspended host, a
# paused VM, a SIGSTOP) does not replace its worker when they run again,
# though a request in flight then looks older than the hang timeout: the
# supervisor notices it did not run itself and gives the request a fresh
# timeout (supervisor/watch.c, watch_suspended).  A real hang after that is
# still caught.
. "$(dirname "$0")/lib.sh"
mount_test
mount_fs -o fault_injection,hang_timeout=2000
ctl create vm.img --template base.img >/dev/null
restarts() { status_field 's["restarts"]'; }
[ "$(restarts)" -eq 0 ] || fail "restarts before the test"
w0=$(worker_pid)
# one write held 1.5 s in the worker: in flight when everything stops
ctl debug fault slow --op write --ms 1500 --count 1 >/dev/null
dd if=/dev/zero of="$M/vm.img" bs=4k count=1 conv=notrunc oflag=direct status=none &
dd_pid=$!
sleep 0.5
pids=$(pgrep -f -- "$T/")
for p in $pids; do kill -STOP "$p"; done
sleep 4		# twice the hang timeout
for p in $pids; do kill -CONT "$p"; done
wait "$dd_pid" || fail "the write in flight across the stop failed"
sleep 3		# more than the hang timeout: a wrong kill would have happened
[ "$(restarts)" -eq 0 ] || fail "the worker was replaced after a stop of the whole mount ($(restarts) restarts)"
[ "$(worker_pid)" = "$w0" ] || fail "another worker serves after the stop"
grep -q "did not run for" "$D/hcowfs.log" || fail "the supervisor did not say it was stopped"
ok "a stopped and continued mount keeps its worker"
# a real hang is still a hang
ctl debug fault hang --op write --count 1 >/dev/null
dd if=/dev/zero of="$M/vm.img" bs=4k count=1 conv=notrunc oflag=direct status=none
wait_for new_worker_serving "$w0" || fail "a hang after the stop was not caught"
ok "a hang after the stop is still caught"
