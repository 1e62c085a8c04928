#!/bin/bash
# Proves a real guest boots Linux from a clone of a clone (issue 12) and that
# what it reads and writes is that clone's alone:
#  - an ext4 image made by mke2fs -d (busybox and an /init) is the template;
#    disk A is created from it and given a file (debugfs -w through the
#    mount); snapshot A@s; A changed again; clone A@s -> B; clone B -> C;
#    B changed again; C given a file of its own;
#  - QEMU (TCG) boots Debian's kernel with a tiny initramfs (busybox, the
#    virtio and ext4 modules in modules.dep order) that mounts C.img through
#    virtio and switch_roots into it; the guest's /init prints what it reads
#    (the template's file, A's as at the snapshot, none of A's or B's later
#    changes, C's own) on the serial console, writes a file, syncs, remounts
#    read-only and powers off;
#  - afterwards the guest's file is in C (debugfs, read-only) and not in A, B
#    or A@s; e2fsck finds C clean; hcowctl check is clean.
# The kernel comes from tools/get-guest.sh (run by tools/setup.sh); without
# it, qemu-system-x86_64 or a static busybox the test is skipped, except
# under CI=true, where that fails it.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
GUEST=${GUEST_CACHE:-/var/cache/hcowfs-guest}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-150}

# missing WHAT: skip, or under CI fail, for a piece of the guest not here
missing() {
	[ "${CI:-}" = true ] && fail "$1 (CI must provide it: tools/setup.sh)"
	skip "$1"
}
if [ ! -s "$GUEST/modules.load" ] || [ ! -s "$GUEST/vmlinuz" ]; then
	missing "no guest kernel in $GUEST (run tools/get-guest.sh as root)"
fi
mount_test qemu-system-x86_64 busybox mke2fs debugfs e2fsck gzip
# the guest has no libc: its busybox must be the static one (busybox-static)
ldd "$(command -v busybox)" >/dev/null 2>&1 && missing "busybox is dynamically linked (install busybox-static)"
BUSYBOX=$(command -v busybox)
QEMU_PID=

# guest_cleanup: on any exit, stop the QEMU this test started (its timeout
# process, which passes the signal on) and reap it before lib.sh's cleanup
# unmounts: QEMU holds C.img open on the mount
guest_cleanup() {
	status=$?
	set +e
	if [ -n "$QEMU_PID" ]; then
		kill "$QEMU_PID" 2>/dev/null
		wait "$QEMU_PID" 2>/dev/null
	fi
	(exit $status)
	cleanup
}
trap guest_cleanup EXIT

# busybox_tree DIR: DIR/bin with busybox and a link for each of its applets
busybox_tree() {
	mkdir -p "$1/bin" "$1/proc" "$1/sys" "$1/dev"
	cp "$BUSYBOX" "$1/bin/busybox"
	for a in $("$BUSYBOX" --list); do
		[ "$a" = busybox ] || ln -s busybox "$1/bin/$a"
	done
}

### the root disk: the template
R=$T/rootdir
busybox_tree "$R"
mkdir -p "$R/etc" "$R/lost+found"
echo "from-template" > "$R/etc/template-note"
cat > "$R/init" <<'EOF'
#!/bin/busybox sh
# The guest: say what the disk holds, write a file, power off.
export PATH=/bin
mount -t proc proc /proc
note() { cat "/etc/$1-note" 2>/dev/null || echo none; }
echo "HCOWFS-GUEST template=$(note template) a=$(note a) b=$(note b) c=$(note c)"
echo "written by the guest booted from C, which read a=$(note a) c=$(note c)" > /guest-wrote
sync
mount -o remount,ro / && echo "HCOWFS-GUEST-DONE"
poweroff -f
EOF
chmod 755 "$R/init"
truncate -s 32M "$T/tmpl/guest.img"
mke2fs -q -F -t ext4 -L hcowguest -d "$R" "$T/tmpl/guest.img" || fail "mke2fs -d"

### the initramfs: busybox, the modules, an init that mounts /dev/vda
I=$T/initramfs
busybox_tree "$I"
mkdir -p "$I/modules" "$I/newroot"
cp "$GUEST/modules.load" "$I/"
while read -r ko; do cp "$GUEST/modules/$ko" "$I/modules/"; done < "$GUEST/modules.load"
cat > "$I/init" <<'EOF'
#!/bin/busybox sh
# Load the disk and ext4 modules in order, mount the virtio disk, switch to it.
export PATH=/bin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
# a module the machine cannot use (crc32c-intel without SSE4.2 under TCG) fails: others stand in
while read -r ko; do insmod "/modules/$ko" 2>/dev/null || echo "initramfs: $ko not loaded"; done < /modules.load
for i in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.1; done
if mount -t ext4 /dev/vda /newroot; then
	umount /proc /sys
	mount --move /dev /newroot/dev
	exec switch_root /newroot /init
fi
echo "HCOWFS-INITRAMFS-FAILED: cannot mount /dev/vda"
poweroff -f
EOF
chmod 755 "$I/init"
(cd "$I" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1) > "$T/initrd.gz" ||
	fail "cpio of the initramfs"

### A, its snapshot, the clone of a clone
mount_fs -o segment_size=16M,checkpoint_ms=200
M=$T/mnt
# put DISK NAME TEXT: /etc/NAME-note in the ext4 of DISK holds TEXT, written through the mount
put() {
	echo "$3" > "$T/note"
	printf 'cd /etc\nrm %s-note\nwrite %s %s-note\n' "$2" "$T/note" "$2" > "$T/debugfs.cmd"
	debugfs -w -f "$T/debugfs.cmd" "$M/$1" >"$T/debugfs.out" 2>&1 || fail "debugfs -w on $1: $(cat "$T/debugfs.out")"
	sync "$M/$1"
}
# get DISK PATH: the file at PATH in the ext4 of DISK, read-only
get() { debugfs -R "cat $2" "$1" 2>/dev/null; }
ctl create A.img --template guest.img >/dev/null || fail "create A.img"
put A.img a "a-at-snapshot"
ctl snapshot A.img s >/dev/null || fail "snapshot A.img s"
put A.img a "a-after-snapshot"
ctl clone A.img@s B.img >/dev/null || fail "clone A.img@s B.img"
ctl clone B.img C.img >/dev/null || fail "clone B.img C.img"
put B.img b "b-after-clone"
put C.img c "c-own"
[ "$(get "$M/C.img" /etc/a-note)" = a-at-snapshot ] || fail "C.img does not hold A's file as at the snapshot"
ok "A.img from the ext4 template, A.img@s, clone B.img of it, clone C.img of B.img; each changed"

### the boot
start=$(date +%s)
timeout -k 10 "$BOOT_TIMEOUT" qemu-system-x86_64 -machine pc -accel tcg -m 256 -smp 1 \
	-kernel "$GUEST/vmlinuz" -initrd "$T/initrd.gz" -append "console=ttyS0 panic=-1" \
	-drive file="$M/C.img",format=raw,cache=none,if=virtio -nic none \
	-nographic -no-reboot </dev/null >"$T/serial.log" 2>&1 &
QEMU_PID=$!
qrc=0
wait "$QEMU_PID" || qrc=$?
QEMU_PID=
secs=$(($(date +%s) - start))
serial() { tr -d '\r' < "$T/serial.log"; }
[ "$qrc" = 0 ] || fail "QEMU exit $qrc after ${secs}s (124: no poweroff in ${BOOT_TIMEOUT}s); serial: $(serial | tail -30)"
want="HCOWFS-GUEST template=from-template a=a-at-snapshot b=none c=c-own"
serial | grep -qx "$want" || fail "the guest did not say '$want'; serial: $(serial | tail -30)"
serial | grep -qx "HCOWFS-GUEST-DONE" || fail "the guest did not remount / read-only; serial: $(serial | tail -30)"
ok "the guest booted from C.img in ${secs}s and read the template's, A's (as at the snapshot) and C's own files, not B's"

### what the guest wrote: in C, and nowhere else
wrote=$(get "$M/C.img" /guest-wrote)
[ "$wrote" = "written by the guest booted from C, which read a=a-at-snapshot c=c-own" ] ||
	fail "C.img's /guest-wrote holds '$wrote'"
e2fsck -f -n "$M/C.img" >"$T/fsck.log" 2>&1 || fail "e2fsck of C.img after the boot: $(cat "$T/fsck.log")"
for d in A.img B.img .snapshots/A.img@s; do
	debugfs -R "stat /guest-wrote" "$M/$d" 2>&1 | grep -q "File not found" ||
		fail "$d has the file the guest wrote into C.img"
done
[ "$(get "$M/A.img" /etc/a-note)" = a-after-snapshot ] || fail "A.img lost its change after the snapshot"
[ "$(get "$M/.snapshots/A.img@s" /etc/a-note)" = a-at-snapshot ] || fail "A.img@s changed"
[ "$(get "$M/B.img" /etc/b-note)" = b-after-clone ] || fail "B.img lost its change"
out=$(ctl check) || fail "check after the boot: $out"
ok "the guest's write is in C.img only (not A.img, B.img or A.img@s); e2fsck and hcowctl check are clean"
