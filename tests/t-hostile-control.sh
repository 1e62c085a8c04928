#!/bin/bash
# Proves: the control socket cannot be used to starve the mount.  A flood of
# clients that never read their (large) answers leaves the supervisor's memory
# bounded; status still answers with the disks while hundreds of requests
# wait; a request whose client hung up is dropped, not run; connections held
# open up to the descriptor limit leave descriptors for a replacement worker
# and are refused politely beyond, logged a line a second, not one each;
# hcowctl restart in a loop is paced at the request and never throttled like
# a crash; a reply larger than the control channel's bound is an error to the
# client, not a dead worker.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test
need setpriv

sock_of() { echo "/run/hcowfs/$(awk -v m="$M" '$5 == m { print $3 }' /proc/self/mountinfo).sock"; }
peak_rss_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

# 2400 disks: a list is about 330 KiB, more than a socket buffer takes
"$top_builddir/bench/bench-store" build --datadir "$D" --tmpldir "$T/tmpl" --template base.img \
	--disks 2400 --extents 1 --disk-size $((16 * MiB)) >/dev/null 2>&1 || fail "bench-store build"

# ---- a reply over the bound (lowered for the test) is an error, not a crash --------
HCOWFS_TEST_REPLY_MAX=65536 mount_fs
out=$(ctl list 2>&1) && fail "list of 2400 disks over a 64 KiB bound succeeded"
echo "$out" | grep -q "over the 65536 bytes a control reply may hold" || fail "oversized list: '$out'"
st=$(ctl status --json) || fail "status with an oversized disk list failed"
echo "$st" | grep -q '"disks_error":"the answer is [0-9]* bytes, over the 65536' || fail "status: $st"
[ "$(status_field 's["restarts"]')" = 0 ] || fail "an oversized reply killed workers: $(status_field 's["faults"]')"
ctl checkpoint >/dev/null || fail "checkpoint after an oversized reply"
umount_fs
ok "a list over the reply bound: an error to the client (EFBIG), status says why, no worker died"

mount_fs -o owner=23457,fault_injection
sock=$(sock_of)
S=$(supervisor_pid)

# ---- the socket with owner=: the owner's, 0600 --------------------------------------
[ "$(stat -c '%a %u' "$sock")" = "600 23457" ] || fail "socket with owner=: $(stat -c '%a %u' "$sock")"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$HCOWCTL" -m "$M" checkpoint 2>&1) &&
	fail "another user ran checkpoint"
setpriv --reuid=23457 --regid=23457 --clear-groups "$HCOWCTL" -m "$M" checkpoint >/dev/null ||
	fail "the owner cannot run checkpoint"
ok "owner=: the socket is 0600 and the owner's; other users cannot connect"

# ---- memory: 400 clients ask for 330 KiB each and never read ------------------------
before=$(peak_rss_kib "$S")
python3 - "$sock" <<'PY' || fail "clients that never read"
import socket, sys, time
held = []
for i in range(400):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"json list\n"); held.append(s)
# until every client has (the start of) its answer: then the supervisor holds the rest
for s in held:
    s.settimeout(60); s.recv(1, socket.MSG_PEEK)
PY
after=$(peak_rss_kib "$S")
echo "supervisor peak RSS: ${before} KiB before, ${after} KiB after 400 unread 330 KiB answers"
[ "$after" -lt $((before + 64 * 1024)) ] || fail "supervisor grew from $before to $after KiB"
ctl checkpoint >/dev/null || fail "checkpoint after the unread answers"
ok "400 unread 330 KiB answers: the supervisor's peak grew by $(( (after - before) / 1024 )) MiB"

# ---- status answers with the disks while 300 requests wait ---------------------------
# (each control request made 30 ms slower: 300 ahead of status would be 9 s;
# small answers, so that memory for answers is not what is tested here)
ctl debug fault slow --op control --count 1000 --ms 30 >/dev/null
python3 - "$sock" "$HCOWCTL" "$M" <<'PY' || fail "status while requests wait"
import json, socket, subprocess, sys, time
socks = []
for i in range(300):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); socks.append(s)
for s in socks:
    s.sendall(b"json checkpoint\n")
socks[0].settimeout(30); socks[0].recv(1, socket.MSG_PEEK)   # the worker is at them
out = subprocess.run([sys.argv[2], "-m", sys.argv[3], "status", "--json"], capture_output=True, text=True)
s = json.loads(out.stdout)
assert s["disks"] is not None, f"status without disks: {s.get('disks_error')}"
assert len(s["disks"]) == 2400, len(s["disks"])
for c in socks:
    c.close()
PY
ctl debug fault none >/dev/null
ok "status answers with the 2400 disks while 300 requests wait for the worker"

# ---- requests whose clients hung up are dropped --------------------------------------
ctl debug fault slow --op control --count 1 --ms 3000 >/dev/null
python3 - "$sock" <<'PY' || fail "hung-up creates"
import socket, sys, time
socks = []
for i in range(100):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); socks.append(s)
socks[0].sendall(b"json checkpoint\n")     # the worker stalls 3 s on it: the creates wait
time.sleep(0.3)
for i, s in enumerate(socks[1:]):
    s.sendall(b"json create name=gone%d.img template=base.img\n" % i)
time.sleep(0.5)
for s in socks:
    s.close()
PY
ctl checkpoint >/dev/null || fail "checkpoint after hung-up clients"
n=$(ls "$M" | grep -c '^gone' || true)
[ "$n" -lt 50 ] || fail "$n of 99 creates whose clients hung up were run"
ok "99 creates whose clients hung up while they waited: $n run, the rest dropped"

umount_fs

# ---- descriptors: connections held up to the limit leave room for a worker --------
# (a flood that reconnects at once keeps every descriptor the supervisor gives it)
(ulimit -n 160; mount_fs -o standby=off)	# a replacement then needs descriptors
MOUNTED=$M
sock=$(sock_of)
python3 - "$sock" "$M/d0.img" "$(worker_pid)" <<'PY' || fail "a replacement worker under a connection flood"
import os, signal, socket, sys, threading, time
sock, disk, worker = sys.argv[1], sys.argv[2], int(sys.argv[3])
stop = False
def flood():                      # 700 idle connections, more than the descriptors and the backlog
    held = []
    while not stop:
        try:
            s = socket.socket(socket.AF_UNIX); s.settimeout(0.5); s.connect(sock); held.append(s)
        except OSError:
            time.sleep(0.01)
        if len(held) >= 700:
            time.sleep(0.05)
    for s in held:
        s.close()
t = threading.Thread(target=flood); t.start()
time.sleep(2)
os.kill(worker, signal.SIGKILL)
done = []
def read():
    fd = os.open(disk, os.O_RDONLY | os.O_DIRECT)
    os.preadv(fd, [bytearray(4096)], 0)
    done.append(1)
r = threading.Thread(target=read, daemon=True); r.start()
r.join(30)                        # without a replacement it never completes
stop = True; t.join()
if not done:
    print("no replacement worker served a read within 30 s of the kill")
    os._exit(1)
PY
wait_for new_worker_serving 0 || fail "no worker after the flood"
lines=$(grep -c "refused control connection" "$D/hcowfs.log" || true)
refusals=$(grep -o "and [0-9]* more refused" "$D/hcowfs.log" | awk '{ n += $2 } END { print n + 0 }')
echo "refusal log lines: $lines, refusals they count: $((lines + refusals))"
[ $((lines + refusals)) -gt 50 ] || fail "the flood was not refused ($lines lines, $refusals more)"
[ "$lines" -lt 30 ] || fail "$lines log lines for refused connections: not rate-limited"
umount_fs
ok "connections flooding the descriptor limit: refused politely, a replacement worker started, $lines log lines"

# ---- hcowctl restart in a loop: paced at the request, never throttled ---------------
mount_fs -o restart_burst=1
for _ in 1 2 3 4; do
	ctl restart | grep -q "^restarted: worker" || fail "hcowctl restart"
done
[ "$(status_field 's["restarts_by_cause"]["restart"]')" = 4 ] || fail "restarts not counted"
! grep -q "throttling: next worker in" "$D/hcowfs.log" || fail "deliberate restarts were throttled like crashes"
grep -q "at most one restart per" "$D/hcowfs.log" || fail "back-to-back restarts were not paced"
dd if="$M/d0.img" of=/dev/null bs=4k count=10 iflag=direct status=none || fail "reads after restarts"
umount_fs
ok "4 back-to-back restarts with restart_burst=1: paced at the request, no replacement held back"
