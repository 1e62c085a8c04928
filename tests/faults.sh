# The fault campaign, sourced by t-faults-resend.sh and t-faults-replay.sh
# with REISSUE and FAULTS set.
#
# Proves: with several disks under fio O_DIRECT random writes with crc32c
# verification, a reader comparing template ranges, and an ext4 disk being
# written, faults of every kind injected again and again (SIGKILL, SIGSEGV and
# SIGSTOP of the worker; injected crashes in read, write, fsync and in the
# middle of a log append; injected hangs) cost no I/O error, no verify
# failure, no wrong byte and no fsck error, and the supervisor counts exactly
# the faults injected.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need fio mkfs.ext4 e2fsck debugfs
scratch

make_template base.img $((64 * 1048576))
truncate -s 128M "$T/tmpl/empty.img"
mount_fs -o "fault_injection,hang_timeout=1000,checkpoint_ms=500,reissue=$REISSUE"
[ "$(status_field 's["reissue"]')" = "$REISSUE" ] || fail "reissue mode is not $REISSUE"
M=$T/mnt
for d in f1 f2 reader; do ctl create $d.img --template base.img >/dev/null; done
ctl create fs.img --template empty.img >/dev/null
mkfs.ext4 -q -F "$M/fs.img"

pids=
for d in f1 f2; do
	fio --name=$d --filename="$M/$d.img" --direct=1 --ioengine=psync --rw=randwrite \
		--bsrange=4k-64k --size=48M --loops=1000 --time_based --runtime=3600 \
		--verify=crc32c --verify_backlog=256 --verify_fatal=1 --verify_state_save=0 \
		--fsync=16 --output="$T/fio-$d.log" &
	pids="$pids $!"
done
(
	# the never-written disk must read as its template, however often the worker dies
	while [ ! -e "$T/stop" ]; do
		$PATTERN compare "$M/reader.img" "$T/tmpl/base.img" || { touch "$T/reader-failed"; exit 1; }
	done
) &
reader=$!
(
	# an ext4 disk written all along: files in, files out
	i=0
	while [ ! -e "$T/stop" ]; do
		i=$((i + 1))
		head -c $((RANDOM * 8)) /dev/urandom > "$T/file"
		debugfs -w -R "write $T/file f$((i % 20))" "$M/fs.img" >/dev/null 2>&1 ||
			{ touch "$T/debugfs-failed"; exit 1; }
		debugfs -w -R "rm f$(((i + 7) % 20))" "$M/fs.img" >/dev/null 2>&1
	done
) &
writer=$!
sleep 2

restarts() { status_field 's["restarts"]'; }
# inject: run one fault, then wait until it has cost exactly one worker
declare -A expect=([crash]=0 [hang]=0)
inject() {
	kind=$1
	shift
	before=$(restarts)
	"$@" >/dev/null
	for _ in $(seq 150); do
		sleep 0.1
		[ "$(restarts)" -gt "$before" ] && break
	done
	[ "$(restarts)" -eq $((before + 1)) ] || fail "fault '$*' did not cost exactly one worker ($before -> $(restarts))"
	expect[$kind]=$((expect[$kind] + 1))
	wait_for new_worker_serving 0 || fail "no worker serving after '$*'"
}
RANDOM=42
for n in $(seq "$FAULTS"); do
	case $((RANDOM % 9)) in
	0) inject crash kill -KILL "$(worker_pid)" ;;
	1) inject crash kill -SEGV "$(worker_pid)" ;;
	2) inject hang kill -STOP "$(worker_pid)" ;;
	3) inject crash ctl debug fault crash --op write ;;
	4) inject crash ctl debug fault crash --op read ;;
	5) inject crash ctl debug fault crash --op fsync ;;
	6) inject crash ctl debug fault crash --op append ;;
	7) inject hang ctl debug fault hang --op write ;;
	8) inject hang ctl debug fault hang --op read ;;
	esac
	sleep 0.$((RANDOM % 5))
	for p in $pids $reader $writer; do
		kill -0 "$p" 2>/dev/null || { cat "$T"/fio-*.log; fail "a client died during fault $n"; }
	done
done
# a stall shorter than the timeout is not a hang: no worker is killed for it
before=$(restarts)
ctl debug fault slow --op write --ms 300 >/dev/null
sleep 1
[ "$(restarts)" -eq "$before" ] || fail "a 300 ms stall was taken for a hang"

touch "$T/stop"
for p in $pids; do kill -INT "$p" 2>/dev/null; done
for p in $pids; do wait "$p" || true; done	# stopped by SIGINT: its log says how it went
wait $reader || fail "the template reader saw wrong bytes"
wait $writer
[ -e "$T/debugfs-failed" ] && fail "writing the ext4 disk failed during faults"
for d in f1 f2; do
	grep -q "err= 0" "$T/fio-$d.log" || { cat "$T/fio-$d.log"; fail "fio on $d reported errors"; }
	grep -q "write: IOPS=" "$T/fio-$d.log" || { cat "$T/fio-$d.log"; fail "fio on $d did not run"; }
	grep -qi "verify.*fail\|bad header\|bad magic" "$T/fio-$d.log" && fail "fio on $d: verify failure"
done
e2fsck -f -n "$M/fs.img" >"$T/fsck.log" 2>&1 || { cat "$T/fsck.log"; fail "e2fsck on the disk written during faults"; }

crash=$(status_field 's["restarts_by_cause"]["crash"]')
hang=$(status_field 's["restarts_by_cause"]["hang"]')
[ "$crash" -eq "${expect[crash]}" ] && [ "$hang" -eq "${expect[hang]}" ] ||
	fail "supervisor counted $crash crashes and $hang hangs; injected ${expect[crash]} and ${expect[hang]}"
[ "$(status_field 's["poisoned"]["answered_eio"]')" -eq 0 ] || fail "a request was failed as poison"
rec=$(status_field '" ".join("%.1f" % f["recover_ms"] for f in s["faults"] if f["recover_ms"] is not None)')
ok "$FAULTS faults ($crash crashes, $hang hangs, reissue by $REISSUE): no I/O error, no verify failure, e2fsck clean; recovery ms: $rec"
