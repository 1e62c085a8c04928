#!/bin/bash
# Proves: an OSD killed and restarted under a writer (issue 23) stalls I/O
# and then resumes it, and loses nothing.  A BlueStore cluster (the OSD keeps
# its data across the restart), a mount of a store in it, a writer doing
# write + fsync of 4 KiB blocks in a loop and logging each acknowledged one;
# the OSD is SIGKILLed for longer than the lease (fence.h, FENCE_LEASE_MS),
# so the lease cannot be renewed and `hcowctl status` says the mount waits;
# then it starts again:
#   - the writer goes on without an error, and the supervisor keeps its
#     worker (a request that waits for the cluster is no hang: watch.c);
#   - every acknowledged block is there, on this mount, and on another host
#     that takes over from an empty cache after every process of this one
#     was killed; `hcowctl check` is clean on both.
#   - the catalog takes a change again (a new disk).
# OSD_DOWN_S (8) sets how long the OSD is down.  Longer than 30 s and
# libcephsqlite's lock on the catalog expires meanwhile (its
# cephsqlite_lock_renewal_timeout, which Ceph 16.2 refuses to change): it
# then fails every call with EIO, and the worker opens the catalog again
# (store_cluster_heal); OSD_DOWN_S=45 shows that.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need ceph rados timeout
scratch
ceph_start bluestore
MiB=1048576
make_template base.img $((8 * MiB))
STORE=rados:vms/osdrestart
ACKED="python3 $top_srcdir/tests/ceph/acked.py"

# mount_host H [OPTS]: host H's mount of the store, with a cache dir of its own
mount_host() {
	mkdir -p "$T/cache$1" "$T/mnt$1"
	"$MOUNT_HCOWFS" "$T/tmpl" "$STORE" "$T/mnt$1" \
	    -o "ceph_conf=$CEPH_CONF,ceph_id=host$1,store_cache=$T/cache$1${2:+,$2}" || return 1
	MOUNTED="$MOUNTED $T/mnt$1"
}
hctl() { h=$1; shift; timeout 10 "$HCOWCTL" -m "$T/mnt$h" "$@"; }
field() { hctl A status --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }
acks() { grep -c '^[0-9]' "$T/acked" || true; }
acks_beyond() { [ "$(acks)" -ge "$1" ]; }

mount_host A || fail "host A could not mount $STORE"
hctl A create vm1.img --template base.img --size $((64 * MiB)) >/dev/null || fail "create failed"
worker=$(field 's["workers"][0]["pid"]')
: > "$T/acked"
$ACKED write "$T/mntA/vm1.img" "$T/acked" 0 &
WRITER=$!
wait_for acks_beyond 20 || fail "the writer made no progress"

"$top_srcdir/tests/ceph/cluster.sh" osd-stop "$T/ceph" || fail "cannot stop the OSD"
before=$(acks)
# longer than the lease: the renewals need the OSD that holds the lock object
waiting=no
for _ in $(seq $((2 * ${OSD_DOWN_S:-8}))); do
	sleep 0.5
	[ "$(field 's["cluster"]["lease"]' 2>/dev/null)" = waiting ] && waiting=yes
done
during=$(acks)
[ "$during" -le $((before + 1)) ] || fail "$((during - before)) writes acknowledged with no OSD up"
[ "$waiting" = yes ] || fail "status never said the mount waits for the cluster while the OSD was down"
ok "OSD down: I/O stalled ($before blocks acknowledged before), status said waiting"

"$top_srcdir/tests/ceph/cluster.sh" osd-start "$T/ceph" >/dev/null || fail "cannot start the OSD again"
for _ in 1 2 3; do wait_for acks_beyond $((during + 20)) && break; done
acks_beyond $((during + 20)) || fail "I/O did not resume after the OSD came back ($(acks) blocks)"
kill -TERM "$WRITER"
wait "$WRITER" || fail "the writer failed: $(grep error "$T/acked")"
[ "$(field 's["workers"][0]["pid"]')" = "$worker" ] ||
    { tail -n 40 "$T"/cacheA/hcowfs.log; fail "the supervisor replaced its worker while the OSD was down"; }
read -r n bad longest <<< "$($ACKED check "$T/mntA/vm1.img" "$T/acked")" || true
[ "$bad" = 0 ] || fail "$bad of $n acknowledged blocks are wrong after the OSD restart"
hctl A check >/dev/null ||
    { tail -n 30 "$T"/cacheA/hcowfs.log; fail "hcowctl check after the OSD restart: $(hctl A check 2>&1)"; }
ok "OSD back: the writer went on without an error (longest write+fsync $longest ms), same worker, all $n blocks there, check clean"
created() { hctl A create vm2.img --template base.img >/dev/null 2>&1 || hctl A list | grep -q '^vm2.img '; }
wait_for created || { tail -n 20 "$T"/cacheA/hcowfs.log; fail "the catalog takes no change after the OSD came back"; }
grep -q 'the catalog is open again' "$T"/cacheA/hcowfs.log && healed=" (reopened after the long outage)"
ok "the catalog takes changes again${healed:-}"

# every process of A killed; B takes over from an empty cache
for p in $(pgrep -f -- "$T/cacheA([ ,]|$)"); do kill -KILL "$p"; done
umount -l "$T/mntA" 2>/dev/null || true
MOUNTED=${MOUNTED/ $T\/mntA/}
mount_host B takeover || fail "host B could not take over"
read -r n bad longest <<< "$($ACKED check "$T/mntB/vm1.img" "$T/acked")" || true
[ "$bad" = 0 ] || fail "$bad of $n acknowledged blocks are missing on the host that took over"
hctl B check >/dev/null || fail "hcowctl check on B: $(hctl B check 2>&1)"
ok "host B took over from an empty cache: all $n acknowledged blocks there, check clean"
