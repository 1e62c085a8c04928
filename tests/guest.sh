# The pieces of a QEMU boot test (tests/t-lifecycle-qemu.sh, t-dir-qemu.sh);
# sourced after tests/lib.sh, not run.
#
# A guest is Debian's kernel (from tools/get-guest.sh, run by tools/setup.sh)
# with a tiny initramfs (static busybox, the virtio and ext4 modules in
# modules.dep order) that mounts /dev/vda, an ext4 disk in the mount, and
# switch_roots into it; the disk's /init (the test's) says what it reads on
# the serial console, writes, syncs, remounts read-only and powers off.
# Without the kernel, qemu-system-x86_64 or a static busybox the test is
# skipped, except under CI=true, where that fails it.
GUEST=${GUEST_CACHE:-/var/cache/hcowfs-guest}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-150}
QEMU_PID=

# missing WHAT: skip, or under CI fail, for a piece of the guest not here
missing() {
	[ "${CI:-}" = true ] && fail "$1 (CI must provide it: tools/setup.sh)"
	skip "$1"
}

# guest_test [TOOL...]: mount_test with what a boot needs (and each TOOL), and
# a cleanup that stops the test's QEMU first
guest_test() {
	if [ ! -s "$GUEST/modules.load" ] || [ ! -s "$GUEST/vmlinuz" ]; then
		missing "no guest kernel in $GUEST (run tools/get-guest.sh as root)"
	fi
	mount_test qemu-system-x86_64 busybox mke2fs debugfs e2fsck gzip "$@"
	# the guest has no libc: its busybox must be the static one (busybox-static)
	ldd "$(command -v busybox)" >/dev/null 2>&1 && missing "busybox is dynamically linked (install busybox-static)"
	BUSYBOX=$(command -v busybox)
	trap guest_cleanup EXIT
}

# guest_cleanup: on any exit, stop the QEMU this test started (its timeout
# process, which passes the signal on) and reap it before lib.sh's cleanup
# unmounts: QEMU holds its disk open on the mount
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

# busybox_tree DIR: DIR/bin with busybox and a link for each of its applets
busybox_tree() {
	mkdir -p "$1/bin" "$1/proc" "$1/sys" "$1/dev"
	cp "$BUSYBOX" "$1/bin/busybox"
	for a in $("$BUSYBOX" --list); do
		[ "$a" = busybox ] || ln -s busybox "$1/bin/$a"
	done
}

# guest_template IMAGE NOTE...: a 32 MiB ext4 template IMAGE (busybox, /etc,
# /lost+found) whose /etc/template-note says from-template and whose /init
# says "HCOWFS-GUEST template=... NOTE=..." on the console with what each
# /etc/NOTE-note holds (none if absent), writes "written by the guest, which
# read template=... NOTE=..." to /guest-wrote, syncs, remounts / read-only
# (then says HCOWFS-GUEST-DONE) and powers off
guest_template() {
	img=$1
	shift
	R=$T/rootdir
	busybox_tree "$R"
	mkdir -p "$R/etc" "$R/lost+found"
	echo "from-template" > "$R/etc/template-note"
	# the guest evaluates the notes when it boots
	# shellcheck disable=SC2016
	says='template=$(note template)'
	for n in "$@"; do says="$says $n=\$(note $n)"; done
	cat > "$R/init" <<EOF
#!/bin/busybox sh
# The guest: say what the disk holds, write a file, power off.
export PATH=/bin
mount -t proc proc /proc
note() { cat "/etc/\$1-note" 2>/dev/null || echo none; }
seen="$says"
echo "HCOWFS-GUEST \$seen"
echo "written by the guest, which read \$seen" > /guest-wrote
sync
mount -o remount,ro / && echo "HCOWFS-GUEST-DONE"
poweroff -f
EOF
	chmod 755 "$R/init"
	truncate -s 32M "$img"
	mke2fs -q -F -t ext4 -L hcowguest -d "$R" "$img" || fail "mke2fs -d $R $img"
}

# guest_initramfs: $T/initrd.gz, busybox, the modules, an init that mounts
# /dev/vda and switches to it
guest_initramfs() {
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
}

# guest_put DISK NAME TEXT: /etc/NAME-note in the ext4 of DISK (in the mount)
# holds TEXT, written through the mount
guest_put() {
	echo "$3" > "$T/note"
	printf 'cd /etc\nrm %s-note\nwrite %s %s-note\n' "$2" "$T/note" "$2" > "$T/debugfs.cmd"
	debugfs -w -f "$T/debugfs.cmd" "$M/$1" >"$T/debugfs.out" 2>&1 || fail "debugfs -w on $1: $(cat "$T/debugfs.out")"
	sync "$M/$1"
}

# guest_get IMAGE PATH: the file at PATH in the ext4 of IMAGE, read-only
guest_get() { debugfs -R "cat $2" "$1" 2>/dev/null; }

# guest_boot DISK SEEN: boot the guest (TCG) from DISK (a path in the mount)
# until it powers off; it must have said "HCOWFS-GUEST SEEN" and remounted
# read-only.  Its console is in $T/serial.log (serial prints it), the seconds
# it took in secs.
guest_boot() {
	start=$(date +%s)
	timeout -k 10 "$BOOT_TIMEOUT" qemu-system-x86_64 -machine pc -accel tcg -m 256 -smp 1 \
		-kernel "$GUEST/vmlinuz" -initrd "$T/initrd.gz" -append "console=ttyS0 panic=-1" \
		-drive file="$M/$1",format=raw,cache=none,if=virtio -nic none \
		-nographic -no-reboot </dev/null >"$T/serial.log" 2>&1 &
	QEMU_PID=$!
	qrc=0
	wait "$QEMU_PID" || qrc=$?
	QEMU_PID=
	secs=$(($(date +%s) - start))
	[ "$qrc" = 0 ] || fail "QEMU exit $qrc after ${secs}s (124: no poweroff in ${BOOT_TIMEOUT}s); serial: $(serial | tail -30)"
	serial | grep -qx "HCOWFS-GUEST $2" || fail "the guest did not say '$2'; serial: $(serial | tail -30)"
	serial | grep -qx "HCOWFS-GUEST-DONE" || fail "the guest did not remount / read-only; serial: $(serial | tail -30)"
}
serial() { tr -d '\r' < "$T/serial.log"; }
