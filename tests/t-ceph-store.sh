#!/bin/bash
# Proves: a store in a Ceph cluster is served by one host at a time and moves
# between hosts without losing what a guest flushed (issue 23).  Two mounts
# on this machine with their own cache dirs and client names are two hosts.
#   - a second host is refused, told who serves the store;
#   - planned handover: A unmounts, B mounts, every byte is equal, and back;
#   - split brain: A is stopped (SIGSTOP, every process) in the middle of
#     fsync-acknowledged writes, B takes over and writes, A resumes: A's
#     writes fail, B's data is unchanged, `hcowctl check` is clean, and every
#     write A acknowledged with fsync before the stop is on B;
#   - host loss: every process of B is killed; C takes over; nothing
#     acknowledged is lost.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need ceph rados timeout
scratch
ceph_start
MiB=1048576
make_template base.img $((8 * MiB))
STORE=rados:vms/store1

# mount_host H [OPTS]: host H's mount of the store, with a cache dir of its own
mount_host() {
	h=$1
	shift
	mkdir -p "$T/cache$h" "$T/mnt$h"
	"$MOUNT_HCOWFS" "$T/tmpl" "$STORE" "$T/mnt$h" \
	    -o "ceph_conf=$CEPH_CONF,ceph_id=host$h,store_cache=$T/cache$h${1:+,$1}" || return 1
	MOUNTED="$MOUNTED $T/mnt$h"
}
host_pids() { pgrep -f -- "$T/cache$1([ ,]|$)" || true; }
host_gone() { [ -z "$(host_pids "$1")" ]; }
umount_host() {
	umount "$T/mnt$1" || umount -l "$T/mnt$1" || fail "umount of host $1 failed"
	MOUNTED=${MOUNTED/ $T\/mnt$1/}
	wait_for host_gone "$1" || fail "host $1 left processes: $(pgrep -af -- "$T/cache$1")"
}
hctl() { h=$1; shift; "$HCOWCTL" -m "$T/mnt$h" "$@"; }

# writer FILE LOG FIRST: 4 KiB blocks FIRST, FIRST+1, ... each fsync'ed;
# the index of every block whose fsync returned goes to LOG.  Stops at the
# first error (which it logs as "error ERRNO").
writer() {
	python3 - "$1" "$2" "$3" <<'PY' &
import os, sys
path, log, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(path, os.O_RDWR | os.O_DIRECT)
out = open(log, "a", buffering=1)
import mmap
buf = mmap.mmap(-1, 4096)
i = first
while i < first + 100000:
    buf[:] = (b"%08d" % i) * 512
    try:
        os.pwrite(fd, buf, i * 4096)
        os.fsync(fd)
    except OSError as e:
        out.write("error %d\n" % e.errno)
        break
    out.write("%d\n" % i)
    i += 1
PY
	WRITER=$!
}
# lines_at_least FILE N: FILE has N lines or more (for wait_for)
lines_at_least() { [ "$(wc -l < "$1")" -ge "$2" ]; }
# blocks_ok FILE LOG: every block LOG names holds what the writer wrote
blocks_ok() {
	python3 - "$1" "$2" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
bad = 0; n = 0
for line in open(sys.argv[2]):
    if line.startswith("error"):
        continue
    i = int(line); n += 1
    if os.pread(fd, 4096, i * 4096) != (b"%08d" % i) * 512:
        bad += 1
print(n, bad)
sys.exit(1 if bad else 0)
PY
}

# ---- a store made by the first host; a second host is refused --------------------
mount_host A || fail "host A could not mount $STORE"
hctl A create vm1.img --template base.img >/dev/null || fail "create failed"
$PATTERN fill "$T/expect" --size $((8 * MiB)) --seed base.img
dd if=/dev/urandom of="$T/mine" bs=1M count=2 status=none
dd if="$T/mine" of="$T/mntA/vm1.img" bs=1M seek=3 conv=notrunc,fsync oflag=direct status=none
dd if="$T/mine" of="$T/expect" bs=1M seek=3 conv=notrunc status=none
cmp "$T/mntA/vm1.img" "$T/expect" || fail "host A does not read what it wrote"
expect_fail "a second host while the first serves" "is served by .*host.*takeover" mount_host B
ok "second host refused"

# ---- planned handover ------------------------------------------------------------
umount_host A
mount_host B || fail "host B could not mount after A unmounted"
cmp "$T/mntB/vm1.img" "$T/expect" || fail "host B reads other bytes after a handover"
umount_host B
mount_host A || fail "host A could not mount again"
cmp "$T/mntA/vm1.img" "$T/expect" || fail "host A reads other bytes after B served the store"
ok "planned handover A -> B -> A: every byte equal"

# ---- split brain -----------------------------------------------------------------
: > "$T/acked"
writer "$T/mntA/vm1.img" "$T/acked" 0
wait_for lines_at_least "$T/acked" 20 || fail "the writer on A made no progress"
for p in $(host_pids A); do kill -STOP "$p"; done
kill -STOP "$WRITER"
acked=$(grep -c '^[0-9]' "$T/acked")
mount_host B takeover || fail "host B could not take over"
blocks_ok "$T/mntB/vm1.img" "$T/acked" >/dev/null || fail "a write A acknowledged with fsync is not on B"
dd if=/dev/urandom of="$T/b-block" bs=1M count=1 status=none
dd if="$T/b-block" of="$T/mntB/vm1.img" bs=1M seek=6 conv=notrunc,fsync oflag=direct status=none
for p in $(host_pids A); do kill -CONT "$p"; done
kill -CONT "$WRITER"
wait "$WRITER" || true
grep -q '^error' "$T/acked" || fail "A's writes did not fail after B took over"
after=$(grep -c '^[0-9]' "$T/acked")
[ "$after" -le $((acked + 1)) ] || fail "A acknowledged $((after - acked)) writes after it was fenced"
if dd if="$T/mntA/vm1.img" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null; then
	fail "A still serves reads after B took over"
fi
sleep 2
dd if="$T/mntB/vm1.img" bs=1M skip=6 count=1 iflag=direct status=none | cmp - "$T/b-block" ||
    fail "B's data changed after A resumed"
read -r n bad <<< "$(blocks_ok "$T/mntB/vm1.img" "$T/acked")" || true
[ "$bad" = 0 ] || fail "$bad of A's fsync-acknowledged writes are not on B"
hctl B check >/dev/null || fail "hcowctl check on B after the split brain: $(hctl B check 2>&1)"
umount_host A
ok "split brain: A fenced (writes and reads fail), B unchanged, $n acknowledged writes of A on B, check clean"

# ---- host loss --------------------------------------------------------------------
: > "$T/acked2"
writer "$T/mntB/vm1.img" "$T/acked2" 1000
wait_for lines_at_least "$T/acked2" 20 || fail "the writer on B made no progress"
for p in $(host_pids B); do kill -KILL "$p"; done
wait "$WRITER" || true
umount -l "$T/mntB" 2>/dev/null
MOUNTED=${MOUNTED/ $T\/mntB/}
mount_host C takeover || fail "host C could not take over from a dead host"
read -r n bad <<< "$(blocks_ok "$T/mntC/vm1.img" "$T/acked2")" || true
[ "$bad" = 0 ] || fail "$bad of B's fsync-acknowledged writes were lost with B"
dd if="$T/mntC/vm1.img" bs=1M skip=6 count=1 iflag=direct status=none | cmp - "$T/b-block" ||
    fail "C reads other bytes than B wrote before it died"
hctl C check >/dev/null || fail "hcowctl check on C: $(hctl C check 2>&1)"
umount_host C
ok "host loss: C took over, all $n acknowledged writes of B there, check clean"
