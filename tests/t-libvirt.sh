#!/bin/bash
# libvirt's `dir` storage pool on an hcowfs mount (issue 20), every volume
# command a user of virsh runs, each checked by its bytes:
#  1. pool-define-as + pool-start on the mount's root (no pool-build: the root
#     is there); the pool is active and empty;
#  2. vol-create-as raw, sparse (--allocation 0) and preallocated (libvirt's
#     fallocate), read as zeros at their size; a qcow2 with --backing-vol on a
#     raw volume of the mount, which qemu-img info shows and reads through;
#     `hcowctl status` lists each as a disk of no template (`-`);
#  3. vol-upload at an offset, vol-download of the whole volume: the bytes
#     uploaded, zeros around them, the same as a read of the file;
#  4. vol-clone of the raw volume reads as its source, then diverges from it;
#     vol-clone of the overlay keeps its backing;
#  5. vol-resize of raw (grow, --shrink) and qcow2: stat and qemu-img see the
#     size, the kept bytes are unchanged, the grown tail reads zeros;
#  6. vol-list/vol-info agree with the files; vol-delete removes each volume
#     from the mount and from `hcowctl list`; pool-refresh after a restart of
#     the worker still finds what is left;
#  7. a second pool in a subdirectory that pool-build makes (mkdir -p, chmod)
#     and pool-delete removes (rmdir), with a volume in it;
#  8. an external snapshot: an inactive domain (defined, never started) with
#     one raw volume of the pool; snapshot-create-as --disk-only runs
#     qemu-img create to put a qcow2 overlay next to the disk and points the
#     domain at it; a write into the overlay (qemu-io, as the guest would)
#     leaves the raw disk as it was, and `qemu-img commit` folds it back.
#     libvirt 9.0 cannot fold it back itself for a domain that is not running:
#     blockcommit finds no backing chain ("could not find base image in
#     chain": only a running QEMU has one), snapshot-delete starts a QEMU to
#     commit, snapshot-revert refuses external snapshots ("not supported
#     yet").  So the commit is qemu-img's, and the domain goes back to its raw
#     disk by snapshot-delete --metadata and update-device --config.
# The libvirt daemon: the machine's if one answers, else a libvirtd this test
# starts (Debian 12's monolithic daemon runs without systemd once its run and
# log dirs exist) and stops in its cleanup, by the PID in its pidfile.
# HCOWFS_POOL=plain runs the same commands on a plain directory, which is how
# to tell an hcowfs failure from a libvirt or test one.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test virsh qemu-img qemu-io cmp sha256sum
started=$(date +%s)
URI=qemu:///system
POOL=hcowfs-test-$$
LIBVIRTD_PIDFILE=$T.libvirtd.pid	# outside $T: lib.sh's cleanup must not take it for a daemon of the mount
LIBVIRTD_PID=
POOLS=	# the pools this test defined, for the cleanup
DOM=hcowfs-test-$$
DOMS=	# the domains this test defined, for the cleanup

V() { virsh -q -c "$URI" "$@"; }

# not_ready MESSAGE: libvirt cannot run here; a skip, but a failure in CI
not_ready() {
	[ "${CI:-}" = true ] && fail "$*"
	skip "$*"
}

# start_libvirtd: the machine's daemon if one answers, else one of our own
start_libvirtd() {
	V uri >/dev/null 2>&1 && return 0
	command -v libvirtd >/dev/null || not_ready "needs libvirtd (libvirt-daemon-system)"
	mkdir -p /var/run/libvirt /var/log/libvirt
	# -d returns once the daemon has started (or failed to)
	out=$(libvirtd -d -p "$LIBVIRTD_PIDFILE" 2>&1) || not_ready "libvirtd does not start: $out"
	LIBVIRTD_PID=$(cat "$LIBVIRTD_PIDFILE")
	wait_for V uri || not_ready "libvirtd (pid $LIBVIRTD_PID) does not answer on $URI"
}

# stop_libvirtd: the daemon we started, and nothing else
stop_libvirtd() {
	[ -n "$LIBVIRTD_PID" ] || return 0
	kill -TERM "$LIBVIRTD_PID" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$LIBVIRTD_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$LIBVIRTD_PID" 2>/dev/null || true
	rm -f "$LIBVIRTD_PIDFILE"
	LIBVIRTD_PID=
}

# the domain and the pools go (libvirt keeps their definitions in /etc), then
# our daemon, then lib.sh unmounts; the test's exit status is kept for
# lib.sh's cleanup
libvirt_cleanup() {
	rc=$?
	set +e
	for d in $DOMS; do
		V undefine "$d" --snapshots-metadata >/dev/null 2>&1
	done
	for p in $POOLS; do
		V pool-destroy "$p" >/dev/null 2>&1
		V pool-undefine "$p" >/dev/null 2>&1
	done
	stop_libvirtd
	return $rc
}
trap 'libvirt_cleanup; cleanup' EXIT

if [ "${HCOWFS_POOL:-mount}" = plain ]; then
	DIR=$T/plain
	mkdir "$DIR"
	echo "# HCOWFS_POOL=plain: the pool is a plain directory, not the mount"
else
	mount_fs -o segment_size=16M
	DIR=$M
fi
on_mount() { [ "$DIR" = "$M" ] && is_mounted "$M"; }

# template_of DISK: the TEMPLATE column of DISK in the disk table of `hcowctl status`
template_of() {
	ctl status | awk -v d="$1" '/^DISK / { t = 1; next } t && NF == 0 { exit } t && $1 == d { print $2; exit }'
}

# is_disk_of_no_template VOL: the mount has VOL as a disk of no template
is_disk_of_no_template() {
	on_mount || return 0
	t=$(template_of "$1")
	[ "$t" = - ] || fail "hcowctl status shows $1 with template '$t': $(ctl status)"
}

# is_gone VOL: neither the directory nor the store has VOL
is_gone() {
	[ ! -e "$DIR/$1" ] || fail "$1 is still in the directory after vol-delete: $(ls -l "$DIR")"
	V vol-list "$POOL" | awk '{ print $1 }' | grep -qx "$1" && fail "vol-list still has $1"
	on_mount || return 0
	ctl list | awk 'NR > 1 { print $1 }' | grep -qx "$1" && fail "hcowctl list still has $1: $(ctl list)"
	return 0
}

# vol_bytes VOL FIELD: vol-info's Capacity or Allocation in bytes
vol_bytes() { V vol-info --bytes --pool "$POOL" "$1" | awk -v f="$2:" '$1 == f { print $2 }'; }

# img_field FILE EXPR: a field of `qemu-img info --output=json`, by python expression on i
img_field() {
	qemu-img info -U --output=json "$1" | python3 -c "import json,sys; i=json.load(sys.stdin); print($2)"
}

# zeros FILE OFFSET LENGTH: LENGTH bytes at OFFSET of FILE are zeros
zeros() { cmp -s -n "$3" -i "$2:0" "$1" /dev/zero; }

start_libvirtd
if [ -n "$LIBVIRTD_PID" ]; then
	echo "# started libvirtd, pid $LIBVIRTD_PID"
else
	echo "# using the libvirt daemon already running on $URI"
fi

### 1. the pool
V pool-define-as "$POOL" dir --target "$DIR" >/dev/null || fail "pool-define-as $POOL dir --target $DIR"
POOLS=$POOL
out=$(V pool-start "$POOL" 2>&1) || fail "pool-start: $out"
state=$(V pool-info "$POOL" | awk '$1 == "State:" { print $2 }')
[ "$state" = running ] || fail "pool-info after pool-start: $(V pool-info "$POOL")"
[ -z "$(V vol-list "$POOL")" ] || fail "a new pool on an empty directory lists: $(V vol-list "$POOL")"
ok "pool-define-as dir --target the directory, pool-start: running, no volumes"

### 2. vol-create-as
out=$(V vol-create-as "$POOL" base.raw 64M --allocation 0 --format raw 2>&1) ||
	fail "vol-create-as base.raw 64M --allocation 0: $out"
[ "$(stat -c %s "$DIR/base.raw")" = $((64 * MiB)) ] || fail "base.raw: $(stat -c %s "$DIR/base.raw") bytes, not 64 MiB"
zeros "$DIR/base.raw" 0 $((64 * MiB)) || fail "a new sparse raw volume does not read zeros"
is_disk_of_no_template base.raw
ok "vol-create-as raw 64M --allocation 0: 64 MiB of zeros, a disk of no template"

# no --allocation: libvirt preallocates the whole volume (posix_fallocate)
out=$(V vol-create-as "$POOL" pre.raw 16M --format raw 2>&1) || fail "vol-create-as pre.raw 16M (preallocated): $out"
[ "$(stat -c %s "$DIR/pre.raw")" = $((16 * MiB)) ] || fail "pre.raw: $(stat -c %s "$DIR/pre.raw") bytes, not 16 MiB"
zeros "$DIR/pre.raw" 0 $((16 * MiB)) || fail "a new preallocated raw volume does not read zeros"
is_disk_of_no_template pre.raw
ok "vol-create-as raw 16M (allocation = capacity, preallocated): 16 MiB of zeros, a disk of no template"

out=$(V vol-create-as "$POOL" over.qcow2 64M --format qcow2 --backing-vol base.raw --backing-vol-format raw 2>&1) ||
	fail "vol-create-as over.qcow2 --backing-vol base.raw: $out"
[ "$(img_field "$DIR/over.qcow2" '(i["format"], i["virtual-size"], i["backing-filename"], i["backing-filename-format"])')" = \
    "('qcow2', $((64 * MiB)), '$DIR/base.raw', 'raw')" ] ||
	fail "qemu-img info of the overlay: $(qemu-img info -U "$DIR/over.qcow2")"
qemu-img check -q "$DIR/over.qcow2" || fail "qemu-img check of the new overlay"
is_disk_of_no_template over.qcow2
ok "vol-create-as qcow2 --backing-vol base.raw --backing-vol-format raw: qemu-img info shows the backing"

### 3. vol-upload, vol-download
python3 -c "import os,sys; sys.stdout.buffer.write(os.urandom(5 * 1048576 + 12345))" > "$T/up.bin"
truncate -s $((64 * MiB)) "$T/base-ref"
dd if="$T/up.bin" of="$T/base-ref" bs=1M seek=3 conv=notrunc status=none
out=$(V vol-upload --pool "$POOL" base.raw "$T/up.bin" --offset $((3 * MiB)) 2>&1) ||
	fail "vol-upload base.raw at 3 MiB: $out"
cmp "$DIR/base.raw" "$T/base-ref" || fail "base.raw after vol-upload is not zeros + the uploaded bytes at 3 MiB"
out=$(V vol-download --pool "$POOL" base.raw "$T/down.bin" 2>&1) || fail "vol-download base.raw: $out"
[ "$(sha256sum < "$T/down.bin")" = "$(sha256sum < "$T/base-ref")" ] ||
	fail "vol-download of base.raw differs from what was uploaded"
cmp -n "$(stat -c %s "$T/up.bin")" -i 0:$((3 * MiB)) "$T/up.bin" "$T/down.bin" ||
	fail "the downloaded bytes at 3 MiB are not the uploaded ones"
ok "vol-upload of $(stat -c %s "$T/up.bin") random bytes at 3 MiB, vol-download: same sha256 as the reference"

# the overlay reads through to its backing, and takes writes of its own
qemu-img compare -q -f qcow2 -F raw "$DIR/over.qcow2" "$DIR/base.raw" ||
	fail "the overlay does not read as its backing"
qemu-io -f qcow2 -c "write -P 0x5a $((4 * MiB)) $((2 * MiB))" "$DIR/over.qcow2" >/dev/null ||
	fail "qemu-io write into the overlay"
cp "$T/base-ref" "$T/over-ref"
python3 -c "import sys; sys.stdout.buffer.write(b'\x5a' * (2 << 20))" |
	dd of="$T/over-ref" bs=1M seek=4 conv=notrunc status=none
qemu-img compare -q -f qcow2 -F raw "$DIR/over.qcow2" "$T/over-ref" ||
	fail "the overlay after a write does not read as backing + write"
cmp "$DIR/base.raw" "$T/base-ref" || fail "a write into the overlay changed its backing"
qemu-img check -q "$DIR/over.qcow2" || fail "qemu-img check of the overlay after a write"
out=$(V vol-download --pool "$POOL" over.qcow2 "$T/over-down" 2>&1) || fail "vol-download over.qcow2: $out"
cmp "$T/over-down" "$DIR/over.qcow2" || fail "vol-download of the overlay is not its file"
ok "the overlay reads as its backing, then backing + its own 2 MiB write; vol-download of it is its file"

### 4. vol-clone
out=$(V vol-clone --pool "$POOL" base.raw clone.raw 2>&1) || fail "vol-clone base.raw clone.raw: $out"
cmp "$DIR/clone.raw" "$DIR/base.raw" || fail "the clone does not read as its source"
[ "$(vol_bytes clone.raw Capacity)" = $((64 * MiB)) ] || fail "vol-info of the clone: $(V vol-info --pool "$POOL" clone.raw)"
is_disk_of_no_template clone.raw
head -c 65536 /dev/urandom > "$T/w.bin"
cp "$T/base-ref" "$T/clone-ref"
for f in "$DIR/clone.raw" "$T/clone-ref"; do
	dd if="$T/w.bin" of="$f" bs=64k seek=50 conv=notrunc,fsync status=none
done
cmp "$DIR/clone.raw" "$T/clone-ref" || fail "the clone does not read its write"
cmp "$DIR/base.raw" "$T/base-ref" || fail "a write into the clone changed its source"
cmp -s "$DIR/clone.raw" "$DIR/base.raw" && fail "the clone still reads as its source after a write"
ok "vol-clone of raw: reads as its source, diverges on a write"

out=$(V vol-clone --pool "$POOL" over.qcow2 over2.qcow2 2>&1) || fail "vol-clone over.qcow2 over2.qcow2: $out"
qemu-img compare -q -f qcow2 -F qcow2 "$DIR/over2.qcow2" "$DIR/over.qcow2" ||
	fail "the clone of the overlay does not read as it"
qemu-img check -q "$DIR/over2.qcow2" || fail "qemu-img check of the overlay's clone"
echo "# the overlay's clone: $(img_field "$DIR/over2.qcow2" 'i.get("backing-filename", "no backing")')"
is_disk_of_no_template over2.qcow2
ok "vol-clone of the qcow2 overlay reads as it"

### 5. vol-resize
out=$(V vol-resize --pool "$POOL" clone.raw 96M 2>&1) || fail "vol-resize clone.raw 96M: $out"
[ "$(stat -c %s "$DIR/clone.raw")" = $((96 * MiB)) ] || fail "stat of the grown clone: $(stat -c %s "$DIR/clone.raw")"
[ "$(vol_bytes clone.raw Capacity)" = $((96 * MiB)) ] || fail "vol-info of the grown clone: $(V vol-info --pool "$POOL" clone.raw)"
cmp -n $((64 * MiB)) "$DIR/clone.raw" "$T/clone-ref" || fail "the grown clone lost its bytes"
zeros "$DIR/clone.raw" $((64 * MiB)) $((32 * MiB)) || fail "the grown tail of the clone is not zeros"
out=$(V vol-resize --pool "$POOL" clone.raw 6M --shrink 2>&1) || fail "vol-resize clone.raw 6M --shrink: $out"
[ "$(stat -c %s "$DIR/clone.raw")" = $((6 * MiB)) ] || fail "stat of the shrunk clone: $(stat -c %s "$DIR/clone.raw")"
cmp "$DIR/clone.raw" <(head -c $((6 * MiB)) "$T/clone-ref") || fail "the shrunk clone is not the first 6 MiB it had"
ok "vol-resize raw to 96M (stat 96 MiB, tail zeros) and --shrink to 6M (the first 6 MiB kept)"

out=$(V vol-resize --pool "$POOL" over.qcow2 128M 2>&1) || fail "vol-resize over.qcow2 128M: $out"
[ "$(img_field "$DIR/over.qcow2" 'i["virtual-size"]')" = $((128 * MiB)) ] ||
	fail "qemu-img info of the grown overlay: $(qemu-img info -U "$DIR/over.qcow2")"
[ "$(vol_bytes over.qcow2 Capacity)" = $((128 * MiB)) ] || fail "vol-info of the grown overlay: $(V vol-info --pool "$POOL" over.qcow2)"
qemu-img check -q "$DIR/over.qcow2" || fail "qemu-img check of the grown overlay"
truncate -s $((128 * MiB)) "$T/over-ref"
qemu-img compare -q -f qcow2 -F raw "$DIR/over.qcow2" "$T/over-ref" || fail "the grown overlay does not read as before + zeros"
ok "vol-resize qcow2 to 128M: qemu-img and vol-info see it, it reads as before + zeros"

### 6. vol-list, vol-info, vol-delete
list=$(V vol-list "$POOL" | awk '{ print $1 " " $2 }' | sort)
want=$(for v in base.raw clone.raw over.qcow2 over2.qcow2 pre.raw; do echo "$v $DIR/$v"; done)
[ "$list" = "$want" ] || fail "vol-list: $list"
for v in base.raw clone.raw pre.raw; do
	[ "$(vol_bytes $v Capacity)" = "$(stat -c %s "$DIR/$v")" ] || fail "vol-info $v: $(V vol-info --pool "$POOL" $v)"
done
[ "$(V vol-info --pool "$POOL" over.qcow2 | awk '$1 == "Type:" { print $2 }')" = file ] ||
	fail "vol-info over.qcow2: $(V vol-info --pool "$POOL" over.qcow2)"
ok "vol-list has the five volumes at their paths; vol-info's capacity is each raw file's size"

for v in over2.qcow2 clone.raw pre.raw; do
	out=$(V vol-delete --pool "$POOL" "$v" 2>&1) || fail "vol-delete $v: $out"
	is_gone "$v"
done
ok "vol-delete of a qcow2 and two raw volumes: gone from the directory, vol-list and hcowctl list"

# what is left survives a new worker: libvirt's refresh finds it as it was
if on_mount; then
	w=$(worker_pid)
	ctl restart >/dev/null || fail "hcowctl restart"
	wait_for new_worker_serving "$w" || fail "no new worker after restart"
fi
V pool-refresh "$POOL" >/dev/null || fail "pool-refresh"
[ "$(V vol-list "$POOL" | awk '{ print $1 }' | sort | tr '\n' ' ')" = "base.raw over.qcow2 " ] ||
	fail "vol-list after pool-refresh: $(V vol-list "$POOL")"
cmp "$DIR/base.raw" "$T/base-ref" || fail "base.raw changed"
qemu-img compare -q -f qcow2 -F raw "$DIR/over.qcow2" "$T/over-ref" || fail "the overlay changed"
for v in over.qcow2 base.raw; do
	out=$(V vol-delete --pool "$POOL" "$v" 2>&1) || fail "vol-delete $v: $out"
	is_gone "$v"
done
ok "pool-refresh finds the two volumes left with their bytes; vol-delete of those leaves the pool empty"

### 7. a pool in a subdirectory: pool-build makes it, pool-delete removes it
SUB=$POOL-sub
V pool-define-as "$SUB" dir --target "$DIR/pools/sub" >/dev/null || fail "pool-define-as $SUB --target $DIR/pools/sub"
POOLS="$POOLS $SUB"
out=$(V pool-build "$SUB" 2>&1) || fail "pool-build of $DIR/pools/sub: $out"
[ -d "$DIR/pools/sub" ] || fail "pool-build made no $DIR/pools/sub"
out=$(V pool-start "$SUB" 2>&1) || fail "pool-start $SUB: $out"
out=$(V vol-create-as "$SUB" vm-100-disk-0.raw 8M --allocation 0 --format raw 2>&1) ||
	fail "vol-create-as in the subdirectory: $out"
out=$(V vol-upload --pool "$SUB" vm-100-disk-0.raw "$T/up.bin" 2>&1) || fail "vol-upload in the subdirectory: $out"
cmp -n "$(stat -c %s "$T/up.bin")" "$DIR/pools/sub/vm-100-disk-0.raw" "$T/up.bin" ||
	fail "the volume in the subdirectory does not read its upload"
[ "$(V vol-path --pool "$SUB" vm-100-disk-0.raw)" = "$DIR/pools/sub/vm-100-disk-0.raw" ] ||
	fail "vol-path in the subdirectory: $(V vol-path --pool "$SUB" vm-100-disk-0.raw)"
out=$(V vol-delete --pool "$SUB" vm-100-disk-0.raw 2>&1) || fail "vol-delete in the subdirectory: $out"
[ -z "$(ls -A "$DIR/pools/sub")" ] || fail "the subdirectory after vol-delete: $(ls -A "$DIR/pools/sub")"
V pool-destroy "$SUB" >/dev/null || fail "pool-destroy $SUB"
out=$(V pool-delete "$SUB" 2>&1) || fail "pool-delete (rmdir) of $DIR/pools/sub: $out"
[ ! -e "$DIR/pools/sub" ] || fail "pool-delete left $DIR/pools/sub"
V pool-undefine "$SUB" >/dev/null || fail "pool-undefine $SUB"
rmdir "$DIR/pools" || fail "rmdir $DIR/pools"
ok "pool-build of pools/sub, a volume uploaded and deleted in it, pool-delete removes the directory"

### 8. an external snapshot of an inactive domain, committed back with qemu-img
# put_bytes FILE OFFSET LENGTH BYTE: LENGTH bytes of value BYTE at OFFSET of a reference FILE
put_bytes() {
	python3 - "$@" <<'PY'
import os, sys
f, off, n, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 0)
fd = os.open(f, os.O_WRONLY)
os.pwrite(fd, bytes([b]) * n, off)
os.close(fd)
PY
}

# disk_of DOMAIN: the driver type and source file of the domain's one disk
disk_of() {
	V dumpxml "$1" | python3 -c "import sys, xml.etree.ElementTree as E
d = E.parse(sys.stdin).find('devices/disk')
print(d.find('driver').get('type'), d.find('source').get('file'))"
}

out=$(V vol-create-as "$POOL" vm.raw 32M --allocation 0 --format raw 2>&1) || fail "vol-create-as vm.raw: $out"
qemu-io -f raw -c "write -P 0x11 0 $((4 * MiB))" "$DIR/vm.raw" >/dev/null || fail "qemu-io write into vm.raw"
truncate -s $((32 * MiB)) "$T/vm-ref"
put_bytes "$T/vm-ref" 0 $((4 * MiB)) 0x11
cmp "$DIR/vm.raw" "$T/vm-ref" || fail "vm.raw does not read as its 4 MiB of 0x11"
# the smallest domain libvirt takes: TCG, no network, no graphics, one disk
cat > "$T/disk.xml" <<XML
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$DIR/vm.raw'/>
      <target dev='vda' bus='virtio'/>
    </disk>
XML
{
	echo "<domain type='qemu'><name>$DOM</name><memory unit='MiB'>64</memory>"
	echo "  <os><type arch='x86_64'>hvm</type></os>"
	echo "  <devices>"
	cat "$T/disk.xml"
	echo "  </devices>"
	echo "</domain>"
} > "$T/dom.xml"
out=$(V define "$T/dom.xml" 2>&1) || fail "define $DOM: $out"
DOMS=$DOM
[ "$(disk_of "$DOM")" = "raw $DIR/vm.raw" ] || fail "the defined domain's disk: $(disk_of "$DOM")"
out=$(V snapshot-create-as "$DOM" s1 --disk-only --atomic 2>&1) ||
	fail "snapshot-create-as $DOM s1 --disk-only --atomic: $out"
[ -f "$DIR/vm.s1" ] || fail "no overlay vm.s1 next to the disk: $(ls -l "$DIR")"
[ "$(img_field "$DIR/vm.s1" '(i["format"], i["virtual-size"], i["backing-filename"], i["backing-filename-format"])')" = \
    "('qcow2', $((32 * MiB)), '$DIR/vm.raw', 'raw')" ] ||
	fail "qemu-img info of the snapshot's overlay: $(qemu-img info -U "$DIR/vm.s1")"
[ "$(disk_of "$DOM")" = "qcow2 $DIR/vm.s1" ] || fail "the domain's disk after the snapshot: $(disk_of "$DOM")"
[ "$(V snapshot-list "$DOM" --name)" = s1 ] || fail "snapshot-list: $(V snapshot-list "$DOM")"
qemu-img check -q "$DIR/vm.s1" || fail "qemu-img check of the snapshot's overlay"
is_disk_of_no_template vm.s1
cmp "$DIR/vm.raw" "$T/vm-ref" || fail "the snapshot changed the raw disk"
ok "snapshot-create-as --disk-only --atomic of an inactive domain: overlay vm.s1 next to vm.raw, backed by it, the domain's disk"

# the guest's write goes to the overlay; the raw disk stays as it was
qemu-io -f qcow2 -c "write -P 0x77 $((3 * MiB)) $((2 * MiB))" "$DIR/vm.s1" >/dev/null ||
	fail "qemu-io write into the overlay"
cp "$T/vm-ref" "$T/vm-new"
put_bytes "$T/vm-new" $((3 * MiB)) $((2 * MiB)) 0x77
qemu-img compare -q -f qcow2 -F raw "$DIR/vm.s1" "$T/vm-new" || fail "the overlay does not read as the disk + its write"
cmp "$DIR/vm.raw" "$T/vm-ref" || fail "a write into the overlay changed the raw disk"
ok "qemu-io write of 2 MiB at 3 MiB into the overlay: the overlay reads it, vm.raw is unchanged"

out=$(qemu-img commit -f qcow2 "$DIR/vm.s1" 2>&1) || fail "qemu-img commit of the overlay: $out"
cmp "$DIR/vm.raw" "$T/vm-new" || fail "vm.raw after qemu-img commit is not the disk + the overlay's write"
qemu-img check -q "$DIR/vm.s1" || fail "qemu-img check of the overlay after commit"
qemu-img compare -q -f qcow2 -F raw "$DIR/vm.s1" "$T/vm-new" || fail "the overlay after commit does not read as vm.raw"
ok "qemu-img commit: vm.raw holds the write, the overlay checks clean and reads through to it"

out=$(V snapshot-delete "$DOM" s1 --metadata 2>&1) || fail "snapshot-delete $DOM s1 --metadata: $out"
out=$(V update-device "$DOM" "$T/disk.xml" --config 2>&1) || fail "update-device $DOM back to vm.raw: $out"
[ "$(disk_of "$DOM")" = "raw $DIR/vm.raw" ] || fail "the domain's disk after the revert: $(disk_of "$DOM")"
[ -z "$(V snapshot-list "$DOM" --name)" ] || fail "snapshot-list after snapshot-delete: $(V snapshot-list "$DOM")"
out=$(V undefine "$DOM" 2>&1) || fail "undefine $DOM: $out"
DOMS=
V pool-refresh "$POOL" >/dev/null || fail "pool-refresh"
[ "$(V vol-list "$POOL" | awk '{ print $1 }' | sort | tr '\n' ' ')" = "vm.raw vm.s1 " ] ||
	fail "vol-list after the snapshot: $(V vol-list "$POOL")"
for v in vm.s1 vm.raw; do
	out=$(V vol-delete --pool "$POOL" "$v" 2>&1) || fail "vol-delete $v: $out"
	is_gone "$v"
done
ok "snapshot-delete --metadata, update-device --config back to vm.raw, undefine; vol-delete of the overlay and the disk"

V pool-destroy "$POOL" >/dev/null || fail "pool-destroy"
V pool-undefine "$POOL" >/dev/null || fail "pool-undefine"
POOLS=
if on_mount; then
	[ "$(ctl list | awk 'NR > 1' | wc -l)" = 0 ] || fail "disks left in the store: $(ctl list)"
	ctl check >/dev/null || fail "hcowctl check: $(ctl check)"
	umount_fs
	ok "no disk left in the store, hcowctl check clean, unmounted"
fi
stop_libvirtd
ok "pool-destroy, pool-undefine ($(($(date +%s) - started)) s in all)"
