#!/bin/bash
# Proves: templates in a Ceph pool (issue 23).  A template added once with
# `hcowctl template add` is cloned and read on two "hosts" (two mounts with
# their own data dirs, cache dirs and client names); a block read once is
# served from the host's template cache after that, without a RADOS read
# (the OSD's own op_r counter does not move), across a remount too, and after
# `hcowctl template warm`; the cache keeps its cap (least recently used
# files go); a byte flipped in a cache file is never served (the chunk is
# fetched again); and the error cases are one line each: a name taken, a
# missing pool, a missing template, an unreachable cluster, a rados: template
# dir without template_cache=.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need ceph rados timeout sha256sum
scratch
ceph_start
MiB=1048576
SRC=$T/src/base.img
mkdir -p "$T/src"
$PATTERN fill "$SRC" --size $((40 * MiB)) --seed base.img
HASH=$(sha256sum "$SRC" | cut -d' ' -f1)
TD=rados:vms/tmpl

# op_r: reads the OSD has served so far
op_r() {
	timeout 20 ceph --conf "$CEPH_CONF" tell osd.0 perf dump 2>/dev/null |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["osd"]["op_r"])'
}
tctl() { "$HCOWCTL" template "$@" --ceph-conf "$CEPH_CONF"; }
# mount_host H [OPTS]: host H's mount of the pool's templates, data dir and cache of its own
mount_host() {
	h=$1
	shift
	mkdir -p "$T/data$h" "$T/mnt$h"
	"$MOUNT_HCOWFS" "$TD" "$T/data$h" "$T/mnt$h" \
	    -o "ceph_conf=$CEPH_CONF,ceph_id=host$h,template_cache=$T/cache$h${1:+,$1}" ||
	    fail "mount of host $h failed"
	MOUNTED="$MOUNTED $T/mnt$h"
}
umount_host() {
	umount "$T/mnt$1" || fail "umount of host $1 failed"
	MOUNTED=${MOUNTED/ $T\/mnt$1/}
	wait_for host_gone "$1" || fail "host $1 left processes: $(pgrep -af -- "$T/data$1 ")"
}
host_gone() { ! pgrep -f -- "$T/data$1 " >/dev/null; }
# read_direct FILE: every byte through the mount, O_DIRECT (not the page cache)
read_direct() { dd if="$1" iflag=direct bs=1M status=none | cmp - "$SRC"; }

# ---- add, and its errors -------------------------------------------------------
tctl add "$SRC" --dir $TD || fail "template add failed"
ok "template add"
expect_fail "a name that is taken" "already exists" tctl add "$SRC" --dir $TD
expect_fail "a missing pool" "pool nopool does not exist" tctl add "$SRC" --dir rados:nopool
expect_fail "a missing template" "template 'nope.img' is not in rados:vms/tmpl" \
    tctl warm nope.img --dir $TD --cache "$T/cacheW"
printf '[global]\nmon_host = 127.0.0.1:1\n' > "$T/dead.conf"
expect_fail "an unreachable cluster" "cannot connect" \
    timeout 60 "$HCOWCTL" template list --dir $TD --ceph-conf "$T/dead.conf"
expect_fail "a pool template dir without a cache" "template_cache" \
    "$MOUNT_HCOWFS" $TD "$T/data" "$T/mnt" -o "ceph_conf=$CEPH_CONF"
tctl list --json --dir $TD > "$T/list.json"
python3 - "$T/list.json" "$HASH" $((40 * MiB)) <<'PY' || fail "template list: $(cat "$T/list.json")"
import json, sys
l = json.load(open(sys.argv[1]))
assert [(t["name"], t["sha256"], t["size"]) for t in l] == [("base.img", sys.argv[2], int(sys.argv[3]))], l
PY
ok "template list: name, size and content hash"
# an add to a local template dir: an atomic copy in, a taken name refused
mkdir -p "$T/local"
"$HCOWCTL" template add "$SRC" --name copy.img --dir "$T/local" || fail "local add failed"
cmp "$SRC" "$T/local/copy.img" || fail "local add: the copy differs"
expect_fail "a local name that is taken" "already exists" \
    "$HCOWCTL" template add "$SRC" --name copy.img --dir "$T/local"
[ -z "$(ls -A "$T/local" | grep -v '^copy.img$')" ] || fail "local add left files: $(ls -A "$T/local")"

# ---- host A: clone, read, read again from the cache ------------------------------
mount_host A
"$HCOWCTL" -m "$T/mntA" create vm.img --template base.img || fail "create on host A"
expect_fail "a clone of a missing template" "nope.img" \
    "$HCOWCTL" -m "$T/mntA" create vm2.img --template nope.img
read_direct "$T/mntA/vm.img" || fail "host A: the clone does not read as the template"
[ "$(ls "$T/cacheA" | grep -c "^$HASH\.")" = 3 ] || fail "host A: cache files: $(ls "$T/cacheA")"
r0=$(op_r)
read_direct "$T/mntA/vm.img" || fail "host A: second read"
cmp "$T/mntA/.templates/base.img" "$SRC" || fail "host A: .templates/base.img differs"
r1=$(op_r)
[ "$r1" = "$r0" ] || fail "host A: a second read reached RADOS ($r0 -> $r1 reads)"
ok "host A: the second read came from the cache (op_r stays $r0)"
"$HCOWCTL" -m "$T/mntA" restart >/dev/null || fail "host A: restart"
read_direct "$T/mntA/vm.img" || fail "host A: read after a worker restart"
ok "host A: a replacement worker serves the pool template"

# ---- host B: a cap of 16M, its own cache ----------------------------------------
mount_host B template_cache_size=16M
"$HCOWCTL" -m "$T/mntB" create vm.img --template base.img || fail "create on host B"
read_direct "$T/mntB/vm.img" || fail "host B: the clone does not read as the template"
used=$(du -sk "$T/cacheB" | cut -f1)
[ "$used" -le $((16 * 1024 + 64)) ] || fail "host B: the cache holds ${used} KiB, cap 16 MiB"
ok "host B: read every byte, the cache kept its cap (${used} KiB)"
umount_host B

# ---- host A again: remount, then a corrupted cache file --------------------------
umount_host A
mount_host A
r0=$(op_r)
read_direct "$T/mntA/vm.img" || fail "host A after remount: read"
r1=$(op_r)
[ "$r1" = "$r0" ] || fail "host A: after a remount, reads reached RADOS ($r0 -> $r1)"
ok "host A: the cache survived the remount"
umount_host A
python3 - "$T/cacheA/$HASH.0001" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
b = os.pread(fd, 1, 4096)
os.pwrite(fd, bytes([b[0] ^ 0xff]), 4096)
PY
mount_host A
r0=$(op_r)
read_direct "$T/mntA/vm.img" || fail "host A: a corrupted cache chunk was served"
r1=$(op_r)
[ "$r1" -gt "$r0" ] || fail "host A: the corrupted chunk was not fetched again"
umount_host A
ok "a corrupted cache chunk was fetched again, never served"

# ---- warm: fills the cache a mount then reads from ---------------------------------
tctl warm base.img --dir $TD --cache "$T/cacheW" || fail "template warm"
tctl list --dir $TD --cache "$T/cacheW" | grep -q "base.img .* $HASH  *$((40 * MiB))\$" ||
    fail "template list does not show the warmed bytes: $(tctl list --dir $TD --cache "$T/cacheW")"
mkdir -p "$T/dataW" "$T/mntW"
"$MOUNT_HCOWFS" "$TD" "$T/dataW" "$T/mntW" -o "ceph_conf=$CEPH_CONF,template_cache=$T/cacheW" ||
    fail "mount W"
MOUNTED="$MOUNTED $T/mntW"
"$HCOWCTL" -m "$T/mntW" create vm.img --template base.img || fail "create on host W"
r0=$(op_r)
read_direct "$T/mntW/vm.img" || fail "host W: read"
r1=$(op_r)
[ "$r1" = "$r0" ] || fail "host W: reads after warm reached RADOS ($r0 -> $r1)"
ok "template warm filled the cache the mount reads"
# without --dir: the mount's own template dir, cache and cluster
"$HCOWCTL" -m "$T/mntW" template list | grep -q "base.img .* $HASH  *$((40 * MiB))\$" ||
    fail "template list of a mount: $("$HCOWCTL" -m "$T/mntW" template list 2>&1)"
"$HCOWCTL" -m "$T/mntW" template warm base.img || fail "template warm of a mount's template"
ok "hcowctl -m MNT template list|warm: the mount's template dir, cache and cluster"
