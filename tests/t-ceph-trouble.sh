#!/bin/bash
# Proves: cluster trouble is told in one line and loses nothing (issue 23).
#   - an unreachable cluster at mount: one line within the connect timeout;
#   - a missing pool, a store name that is not one: one line, nothing made;
#   - the cluster gone while mounted (its daemons stopped): I/O waits,
#     `hcowctl status` says so, the worker is not taken for hung, and I/O
#     resumes when the cluster is back, every acknowledged write there;
#   - with -o ceph_op_timeout=S, a request fails (EIO) after waiting instead.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need ceph rados timeout
scratch
ceph_start
make_template base.img $((4 * 1048576))
cluster_pids() { cat "$T/ceph/run/mon.a.pid" "$T/ceph/run/osd.0.pid"; }

# ---- at mount ---------------------------------------------------------------------
printf '[global]\nmon_host = 127.0.0.1:1\n' > "$T/dead.conf"
start=$(date +%s)
expect_fail "an unreachable cluster" "cannot connect to the ceph cluster.*within 10 s" \
    timeout 60 "$MOUNT_HCOWFS" "$T/tmpl" rados:vms/s1 "$T/mnt" -o "ceph_conf=$T/dead.conf,store_cache=$T/c0"
[ $(($(date +%s) - start)) -lt 30 ] || fail "the unreachable cluster took more than 30 s to report"
expect_fail "a missing pool" "pool nopool does not exist" \
    timeout 60 "$MOUNT_HCOWFS" "$T/tmpl" rados:nopool/s1 "$T/mnt" -o "ceph_conf=$CEPH_CONF,store_cache=$T/c1"
expect_fail "a store without a name" "rados:POOL/STORE" \
    "$MOUNT_HCOWFS" "$T/tmpl" rados:vms "$T/mnt" -o "ceph_conf=$CEPH_CONF"
expect_fail "takeover for a local data dir" "rados:POOL/STORE" \
    "$MOUNT_HCOWFS" "$T/tmpl" "$T/data" "$T/mnt" -o takeover
is_mounted "$T/mnt" && fail "a failed mount left a mount"
[ -z "$(timeout 10 rados -p vms -N s1 ls 2>/dev/null)" ] || fail "a failed mount made objects"

# ---- the cluster goes away while mounted, and comes back ----------------------------
"$MOUNT_HCOWFS" "$T/tmpl" rados:vms/s2 "$T/mnt" -o "ceph_conf=$CEPH_CONF,store_cache=$T/c2,hang_timeout=3000" ||
    fail "mount failed"
MOUNTED=$T/mnt
ctl create vm.img --template base.img >/dev/null
w0=$(worker_pid)
dd if=/dev/urandom of="$T/a" bs=64k count=1 status=none
dd if="$T/a" of="$T/mnt/vm.img" bs=64k seek=1 conv=notrunc,fsync oflag=direct status=none
for p in $(cluster_pids); do kill -STOP "$p"; done
# a write and its flush while the cluster is away: they wait
dd if=/dev/urandom of="$T/b" bs=64k count=1 status=none
dd if="$T/b" of="$T/mnt/vm.img" bs=64k seek=2 conv=notrunc,fsync oflag=direct status=none &
dd_pid=$!
waiting() { ctl status | grep -q "WAITING: the cluster cannot be reached"; }
wait_for waiting || { ctl status; fail "status does not say the mount waits for the cluster"; }
sleep 4		# longer than the hang timeout
kill -0 "$dd_pid" 2>/dev/null || fail "the write did not wait for the cluster"
for p in $(cluster_pids); do kill -CONT "$p"; done
wait "$dd_pid" || fail "the write failed once the cluster was back"
[ "$(worker_pid)" = "$w0" ] || fail "the worker was replaced while it waited for the cluster"
dd if="$T/mnt/vm.img" bs=64k skip=1 count=2 iflag=direct status=none | cmp - <(cat "$T/a" "$T/b") ||
    fail "the mount reads other bytes after the cluster came back"
ok "cluster away: I/O waited (status said so), resumed, same worker, bytes right"
umount "$T/mnt"
MOUNTED=
mount_gone() { ! pgrep -f -- "$T/c2" >/dev/null; }
wait_for mount_gone || fail "processes left after umount: $(pgrep -af -- "$T/c2")"

# ---- with ceph_op_timeout, a request fails instead --------------------------------
"$MOUNT_HCOWFS" "$T/tmpl" rados:vms/s2 "$T/mnt" -o "ceph_conf=$CEPH_CONF,store_cache=$T/c2,ceph_op_timeout=2" ||
    fail "mount with ceph_op_timeout failed"
MOUNTED=$T/mnt
dd if="$T/mnt/vm.img" bs=64k skip=1 count=2 iflag=direct status=none | cmp - <(cat "$T/a" "$T/b") ||
    fail "a remount reads other bytes"
for p in $(cluster_pids); do kill -STOP "$p"; done
sleep 6		# the lease (5 s) runs out
start=$(date +%s)
if dd if="$T/mnt/vm.img" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null; then
	for p in $(cluster_pids); do kill -CONT "$p"; done
	fail "a read succeeded while the cluster was away and the lease had run out"
fi
took=$(($(date +%s) - start))
for p in $(cluster_pids); do kill -CONT "$p"; done
[ "$took" -lt 15 ] || fail "the read took $took s to fail (ceph_op_timeout=2)"
wait_for dd if="$T/mnt/vm.img" of=/dev/null bs=4k count=1 iflag=direct status=none ||
    fail "reads did not resume when the cluster came back"
ok "ceph_op_timeout=2: a read failed after $took s, and reads resumed with the cluster"
