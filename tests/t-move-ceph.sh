#!/bin/bash
# Proves `hcowctl move` between two stores in a Ceph cluster (issue 23):
# host A serves rados:vms/host-a, host B rados:vms/host-b (two mounts on
# this machine, each with its own caches and client name), both clone from
# templates in the pool.  A disk moved from A to B reads the same on B, B's
# log grew by the disk's own data (not the template's size), the disk is
# gone from A; a move killed after its copy leaves A's disk intact and a
# retry finishes; a template of the same name in another pool with other
# bytes is refused; check is clean on both.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$top_srcdir/tests/move-lib.sh"
need_root_fuse
need ceph rados timeout cmp
scratch
ceph_start
MiB=1048576
TD=rados:vms/tmpl
make_template base.img $((32 * MiB))
timeout 60 "$HCOWCTL" template add "$T/tmpl/base.img" --dir $TD --ceph-conf "$CEPH_CONF" >/dev/null ||
	fail "template add failed"

# mount_host H STORE [TEMPLATE_DIR]: host H's mount of STORE, caches of its own
mount_host() {
	mkdir -p "$T/cache$1" "$T/tcache$1" "$T/mnt$1"
	timeout 60 "$MOUNT_HCOWFS" "${3:-$TD}" "$2" "$T/mnt$1" \
	    -o "ceph_conf=$CEPH_CONF,ceph_id=host$1,store_cache=$T/cache$1,template_cache=$T/tcache$1" ||
	    fail "mount of host $1 failed"
	MOUNTED="$MOUNTED $T/mnt$1"
}
hctl() { h=$1; shift; timeout 120 "$HCOWCTL" -m "$T/mnt$h" "$@"; }

mount_host a rados:vms/host-a
mount_host b rados:vms/host-b


mkdisk "$T/mnta" d1.img base.img
own=$(own_bytes "$T/mnta" d1.img)
before=$(move_log_bytes "$T/mntb")
hctl a move d1.img --to "$T/mntb" > "$T/out" || fail "move failed: $(cat "$T/out")"
after=$(move_log_bytes "$T/mntb")
grew=$((after - before))
echo "# own data $own bytes; host-b's log grew by $grew bytes; template $((32 * MiB))"
cmp "$T/mntb/d1.img" "$T/d1.img.ref" || fail "the moved disk's bytes differ"
[ "$grew" -ge "$own" ] && [ "$grew" -le $((own + MiB)) ] ||
	fail "host-b's log grew by $grew bytes for $own bytes of the disk's own data"
! has_disk "$T/mnta" d1.img || fail "the disk is still on host-a"
ok "moved host-a -> host-b: bytes equal, B's log grew by the disk's own data ($grew for $own), gone from A"

mkdisk "$T/mnta" d2.img base.img
HCOWCTL_TEST_KILL_AT=copied hctl a move d2.img --to "$T/mntb" >/dev/null 2>&1 && fail "killed move succeeded"
cmp "$T/mnta/d2.img" "$T/d2.img.ref" || fail "killed after the copy: the source changed"
has_disk "$T/mntb" d2.img.move-in || fail "killed after the copy: no temporary disk on host-b"
hctl a move d2.img --to "$T/mntb" > "$T/out" || fail "retry failed: $(cat "$T/out")"
cmp "$T/mntb/d2.img" "$T/d2.img.ref" && ! has_disk "$T/mnta" d2.img && ! has_disk "$T/mntb" d2.img.move-in ||
	fail "retry: wrong result"
ok "killed after the copy: source intact; the retry removed the leftover and moved"

# host C: a store whose templates are in another namespace, with other bytes under the same name
$PATTERN fill "$T/other.img" --size $((32 * MiB)) --seed other
timeout 60 "$HCOWCTL" template add "$T/other.img" --name base.img --dir rados:vms/tmpl2 \
    --ceph-conf "$CEPH_CONF" >/dev/null || fail "template add (other) failed"
mount_host c rados:vms/host-c rados:vms/tmpl2
mkdisk "$T/mnta" d3.img base.img
expect_fail "a template of other bytes at the destination" "template 'base.img' at .* differs" \
	hctl a move d3.img --to "$T/mntc"
cmp "$T/mnta/d3.img" "$T/d3.img.ref" && ! has_disk "$T/mntc" d3.img.move-in || fail "the refused move changed something"

for h in a b; do
	hctl $h check > "$T/check" || { cat "$T/check"; fail "check of host $h found problems"; }
done
ok "check is clean on both stores"
