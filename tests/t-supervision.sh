#!/bin/bash
# Proves the supervisor's rules one at a time: a poison request (one that kills
# every worker it is given) is failed with EIO after 3 tries while everything
# else goes on, with both reissue paths; restarts are throttled; hcowctl restart
# replaces the worker under I/O with no error; a stall shorter than the hang
# timeout kills nothing while a stuck request is caught even as other threads
# progress; fault injection is refused unless the mount allows it; hcowctl
# status counts every request, across a worker's replacement too.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch

make_template base.img $((16 * 1048576))
M=$T/mnt

mount_fs
ctl create d.img --template base.img >/dev/null
expect_fail "fault injection without -o fault_injection" "fault injection is off" ctl debug fault crash
[ "$(status_field 's["restarts"]')" = 0 ] || fail "restarts without faults"
served0=$(status_field 's["workers"][0]["requests_served"]')
dd if="$M/d.img" of=/dev/null bs=4k count=200 iflag=direct status=none || fail "reads"
served=$(( $(status_field 's["workers"][0]["requests_served"]') - served0 ))
[ "$served" -ge 200 ] || fail "200 reads, but $served requests served"
[ "$(status_field 's["workers"][0]["outstanding"]')" = 0 ] || fail "requests outstanding while idle"
[ "$(status_field 's["requests"]["taken"] >= s["requests"]["done"] >= 200')" = True ] ||
	fail "request counts: $(ctl status --json)"
ok "status counts the requests served ($served for 200 reads), none outstanding"
umount "$M"

for mode in resend replay; do
	mount_fs -o "fault_injection,hang_timeout=1000,reissue=$mode"
	# every FSYNC kills its worker: the one fsync is poison, the writes around it are not
	ctl debug fault crash --op fsync --count 1000 >/dev/null
	python3 - "$M/d.img" <<'PY' || fail "poison handling ($mode)"
import os, sys, errno
fd = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(fd, b"before" * 100, 0)
try:
    os.fsync(fd)
    sys.exit("the poison fsync succeeded")
except OSError as e:
    assert e.errno == errno.EIO, e
os.pwrite(fd, b"after!" * 100, 4096)
assert os.pread(fd, 600, 0) == b"before" * 100
assert os.pread(fd, 600, 4096) == b"after!" * 100
PY
	ctl debug fault none >/dev/null
	[ "$(status_field 's["restarts_by_cause"]["crash"]')" = 3 ] || fail "poison: expected 3 crashes ($mode)"
	[ "$(status_field 's["poisoned"]["answered_eio"]')" = 1 ] || fail "poison: expected 1 EIO ($mode)"
	status_field 's["poisoned"]["requests"][0]' | grep -q FSYNC || fail "poison not named in status"
	ok "$mode: a request that killed 3 workers is answered EIO; the writes around it work"
	umount "$M"
	sleep 0.3
done

mount_fs -o "fault_injection,hang_timeout=1000"
# a control request that kills every worker it reaches is answered with an error after 3
ctl debug fault crash --op control --count 3 >/dev/null
expect_fail "a control request that killed 3 workers" "3 workers died while handling this request" ctl list
wait_for new_worker_serving 0 || fail "no worker after the poison control request"
ctl list >/dev/null || fail "hcowctl list fails after the poison control request"
[ "$(status_field 's["restarts_by_cause"]["crash"]')" = 3 ] || fail "poison control request: expected 3 crashes"
dd if=/dev/urandom of="$M/d.img" bs=4k count=1 conv=notrunc oflag=direct status=none || fail "I/O after it"

# a crash on every request: the supervisor must slow down, not fork-bomb
storm_from=$(status_field 's["restarts"]')
ctl debug fault crash --op any --count 40 >/dev/null
( for _ in $(seq 60); do dd if="$M/d.img" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null || true; done ) &
reader=$!
sleep 6
restarts=$(( $(status_field 's["restarts"]') - storm_from ))
[ "$restarts" -le 18 ] || fail "$restarts restarts in 6 s: not throttled"
grep -q "throttling: next worker in" "$T/data/hcowfs.log" || fail "no throttling logged ($restarts restarts, $(grep -c "fault injection: crash" "$T/data/hcowfs.log") injected crashes)"
ctl debug fault none >/dev/null
wait $reader || true
wait_for new_worker_serving 0 || fail "no worker after the crash storm"
ok "a crash storm is throttled ($restarts restarts in 6 s)"

# one stuck request is caught while another thread keeps working
before=$(status_field 's["restarts_by_cause"]["hang"]')
ctl debug fault hang --op write >/dev/null
dd if=/dev/urandom of="$M/d.img" bs=4k count=1 seek=100 conv=notrunc status=none &
writer=$!
t0=$(date +%s%N)
cmp -n 1048576 "$M/d.img" "$T/tmpl/base.img" >/dev/null || true	# reads progress meanwhile
wait $writer || fail "the write stuck in a hung worker failed"
t1=$(date +%s%N)
[ "$(status_field 's["restarts_by_cause"]["hang"]')" = $((before + 1)) ] || fail "hang not detected"
detect=$(status_field 's["faults"][-1]["detect_ms"]')
ok "a hung write is detected in ${detect} ms (timeout 1000) and completes in $(((t1 - t0) / 1000000)) ms"

# a worker stopped while idle holds no request: what is caught is that nobody reads
sleep 0.5
w=$(worker_pid)
kill -STOP "$w"
sleep 0.2
dd if="$M/d.img" of=/dev/null bs=4k count=1 skip=3 iflag=direct status=none || fail "read after SIGSTOP of an idle worker"
status_field 's["faults"][-1]["what"]' | grep -q "requests pending, none read" || fail "unread requests not named as the hang"
ok "a worker stopped while idle is caught by its unread requests"

before=$(status_field 's["restarts"]')
ctl debug fault slow --op write --ms 500 >/dev/null
dd if=/dev/urandom of="$M/d.img" bs=4k count=1 seek=101 conv=notrunc status=none
[ "$(status_field 's["restarts"]')" = "$before" ] || fail "a 500 ms stall was taken for a hang"
ok "a stall shorter than the hang timeout is left alone"

dd if=/dev/urandom of="$T/ref" bs=1M count=16 status=none
( dd if="$T/ref" of="$M/d.img" bs=4k conv=notrunc,fsync oflag=direct status=none ) &
writer=$!
for _ in 1 2 3; do
	sleep 0.3
	ctl restart | grep -q "^restarted: worker" || fail "hcowctl restart"
done
wait $writer || fail "I/O failed across hcowctl restart"
cmp "$M/d.img" "$T/ref" || fail "data differs after restarts"
[ "$(status_field 's["restarts_by_cause"]["restart"]')" = 3 ] || fail "restarts not counted as such"
ok "hcowctl restart three times under a writer: no error, no lost byte"

# a standby worker waits, ready; when the serving worker dies it is the one that takes over
standby_pid() { status_field '[w["pid"] for w in s["workers"] if w["state"] == "standby"][0]'; }
wait_for standby_pid || fail "no standby worker in status: $(ctl status)"
sb=$(standby_pid) old=$(worker_pid)
done0=$(status_field 's["requests"]["done"]')
kill -KILL "$old"
wait_for new_worker_serving "$old" || fail "no worker serving after killing $old"
[ "$(worker_pid)" = "$sb" ] || fail "standby $sb did not take over (serving: $(worker_pid))"
cmp "$M/d.img" "$T/ref" || fail "data differs after the standby took over"
dd if="$M/d.img" of=/dev/null bs=4k count=100 iflag=direct status=none || fail "reads after the takeover"
[ "$(status_field "s['requests']['done'] >= $done0 + 100 and s['workers'][0]['requests_served'] >= 100")" = True ] ||
	fail "100 reads after the takeover: requests done went from $done0 to $(status_field 's["requests"]["done"]')"
ok "standby worker $sb took over from $old"

# a standby that dies is replaced; the serving worker is not touched
wait_for standby_pid || fail "no standby after the takeover"
sb=$(standby_pid) w=$(worker_pid)
kill -KILL "$sb"
standby_replaced() { p=$(standby_pid) && [ "$p" != "$sb" ]; }
wait_for standby_replaced || fail "standby $sb was not replaced"
[ "$(worker_pid)" = "$w" ] || fail "the serving worker changed when the standby died"
grep -q "standby worker ended before it was needed" "$T/data/hcowfs.log" || fail "the standby's end was not logged"
ok "a dead standby is replaced by $(standby_pid), worker $w serves on"

# hcowctl restart must run the worker binary installed now, not a standby exec'd earlier
sb=$(standby_pid) old=$(worker_pid)
ctl restart | grep -q "^restarted: worker" || fail "hcowctl restart"
new=$(worker_pid)
[ "$new" != "$sb" ] && [ "$new" != "$old" ] || fail "restart promoted standby $sb"
ok "hcowctl restart starts a fresh worker ($new), not standby $sb"
umount_fs

mount_fs -o standby=off
sleep 0.5
[ "$(status_field 'len(s["workers"])')" = 1 ] || fail "standby=off: $(ctl status)"
umount_fs
ok "standby=off keeps no standby"

# A control client that asks for a long answer and never reads it must not
# hold the supervisor up: a worker killed meanwhile is replaced at once.
# (The answer must outgrow the socket's buffer, ~200 KiB: 3000 disks list in 330 KiB.)
rm -rf "$T/data"
mkdir "$T/data"
"$top_builddir/bench/bench-store" build --datadir "$T/data" --tmpldir "$T/tmpl" --template base.img \
	--disks 3000 --extents 1 --disk-size $((16 * 1048576)) >/dev/null 2>&1 || fail "bench-store build"
mount_fs
sock=/run/hcowfs/$(mountpoint -d "$M").sock
w=$(worker_pid)
python3 - "$sock" "$M/d0.img" "$w" <<'PY' || fail "a client not reading its answer held up the supervisor"
import os, signal, socket, sys, time
sock, disk, worker = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sock)
c.sendall(b"json list\n")
time.sleep(0.3)  # the worker has answered; the supervisor is sending (or stuck sending)
head = c.recv(3, socket.MSG_PEEK)
assert head == b"ok\n", head
t0 = time.monotonic()
os.kill(worker, signal.SIGKILL)
fd = os.open(disk, os.O_RDONLY | os.O_DIRECT)
os.preadv(fd, [bytearray(4096)], 0)
took = time.monotonic() - t0
print(f"replaced and read back {took * 1000:.1f} ms after the kill")
sys.exit(0 if took < 1.0 else 1)
PY
[ "$(status_field 's["restarts"]')" = 1 ] || fail "the kill was not counted"
umount_fs
ok "a control client that does not read its answer delays nothing"
