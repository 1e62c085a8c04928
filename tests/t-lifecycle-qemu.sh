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
# The guest's pieces are in tests/guest.sh.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$top_srcdir/tests/guest.sh"
guest_test

### the root disk: the template
guest_template "$T/tmpl/guest.img" a b c
guest_initramfs

### A, its snapshot, the clone of a clone
mount_fs -o segment_size=16M,checkpoint_ms=200
M=$T/mnt
ctl create A.img --template guest.img >/dev/null || fail "create A.img"
guest_put A.img a "a-at-snapshot"
ctl snapshot A.img s >/dev/null || fail "snapshot A.img s"
guest_put A.img a "a-after-snapshot"
ctl clone A.img@s B.img >/dev/null || fail "clone A.img@s B.img"
ctl clone B.img C.img >/dev/null || fail "clone B.img C.img"
guest_put B.img b "b-after-clone"
guest_put C.img c "c-own"
[ "$(guest_get "$M/C.img" /etc/a-note)" = a-at-snapshot ] || fail "C.img does not hold A's file as at the snapshot"
ok "A.img from the ext4 template, A.img@s, clone B.img of it, clone C.img of B.img; each changed"

### the boot
guest_boot C.img "template=from-template a=a-at-snapshot b=none c=c-own"
ok "the guest booted from C.img in ${secs}s and read the template's, A's (as at the snapshot) and C's own files, not B's"

### what the guest wrote: in C, and nowhere else
wrote=$(guest_get "$M/C.img" /guest-wrote)
[ "$wrote" = "written by the guest, which read template=from-template a=a-at-snapshot b=none c=c-own" ] ||
	fail "C.img's /guest-wrote holds '$wrote'"
e2fsck -f -n "$M/C.img" >"$T/fsck.log" 2>&1 || fail "e2fsck of C.img after the boot: $(cat "$T/fsck.log")"
for d in A.img B.img .snapshots/A.img@s; do
	debugfs -R "stat /guest-wrote" "$M/$d" 2>&1 | grep -q "File not found" ||
		fail "$d has the file the guest wrote into C.img"
done
[ "$(guest_get "$M/A.img" /etc/a-note)" = a-after-snapshot ] || fail "A.img lost its change after the snapshot"
[ "$(guest_get "$M/.snapshots/A.img@s" /etc/a-note)" = a-at-snapshot ] || fail "A.img@s changed"
[ "$(guest_get "$M/B.img" /etc/b-note)" = b-after-clone ] || fail "B.img lost its change"
out=$(ctl check) || fail "check after the boot: $out"
ok "the guest's write is in C.img only (not A.img, B.img or A.img@s); e2fsck and hcowctl check are clean"
