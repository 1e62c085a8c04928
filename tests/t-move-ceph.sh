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
log_disk_bytes() { hctl "$1" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['log']['disk_bytes'])"; }
has_disk() { hctl "$1" list --json | python3 -c "import json,sys; sys.exit(0 if any(d['name'] == '$2' for d in json.load(sys.stdin)) else 1)"; }

mount_host a rados:vms/host-a
mount_host b rados:vms/host-b

# mkdisk NAME: a 48 MiB clone with 3 MiB of its own data, a zero range, a tail
mkdisk() {
	hctl a create "$1" --template base.img --size 48M >/dev/null
	write_mib_blocks "$T/mnta/$1" 3
	fallocate -p -o $((10 * MiB)) -l "$MiB" "$T/mnta/$1"
	python3 -c "
import os
fd = os.open('$T/mnta/$1', os.O_RDWR)
os.pwrite(fd, b'tail' * 16384, 40 * $MiB + 12345)
os.fsync(fd)"
	cp "$T/mnta/$1" "$T/$1.ref"
}

mkdisk d1.img
own=$(hctl a list --json | python3 -c "import json,sys; print([d for d in json.load(sys.stdin) if d['name'] == 'd1.img'][0]['log_bytes'])")
before=$(log_disk_bytes b)
hctl a move d1.img --to "$T/mntb" > "$T/out" || fail "move failed: $(cat "$T/out")"
after=$(log_disk_bytes b)
grew=$((after - before))
echo "# own data $own bytes; host-b's log grew by $grew bytes; template $((32 * MiB))"
cmp "$T/mntb/d1.img" "$T/d1.img.ref" || fail "the moved disk's bytes differ"
[ "$grew" -ge "$own" ] && [ "$grew" -le $((own + MiB)) ] ||
	fail "host-b's log grew by $grew bytes for $own bytes of the disk's own data"
! has_disk a d1.img || fail "the disk is still on host-a"
ok "moved host-a -> host-b: bytes equal, B's log grew by the disk's own data ($grew for $own), gone from A"

mkdisk d2.img
HCOWCTL_TEST_KILL_AT=copied hctl a move d2.img --to "$T/mntb" >/dev/null 2>&1 && fail "killed move succeeded"
cmp "$T/mnta/d2.img" "$T/d2.img.ref" || fail "killed after the copy: the source changed"
has_disk b d2.img.move-in || fail "killed after the copy: no temporary disk on host-b"
hctl a move d2.img --to "$T/mntb" > "$T/out" || fail "retry failed: $(cat "$T/out")"
cmp "$T/mntb/d2.img" "$T/d2.img.ref" && ! has_disk a d2.img && ! has_disk b d2.img.move-in ||
	fail "retry: wrong result"
ok "killed after the copy: source intact; the retry removed the leftover and moved"

# host C: a store whose templates are in another namespace, with other bytes under the same name
$PATTERN fill "$T/other.img" --size $((32 * MiB)) --seed other
timeout 60 "$HCOWCTL" template add "$T/other.img" --name base.img --dir rados:vms/tmpl2 \
    --ceph-conf "$CEPH_CONF" >/dev/null || fail "template add (other) failed"
mount_host c rados:vms/host-c rados:vms/tmpl2
mkdisk d3.img
expect_fail "a template of other bytes at the destination" "template 'base.img' at .* differs" \
	hctl a move d3.img --to "$T/mntc"
cmp "$T/mnta/d3.img" "$T/d3.img.ref" && ! has_disk c d3.img.move-in || fail "the refused move changed something"

for h in a b; do
	hctl $h check > "$T/check" || { cat "$T/check"; fail "check of host $h found problems"; }
done
ok "check is clean on both stores"
