#!/bin/bash
# Proves a real guest boots Linux from a disk made with cp (issue 20):
#  - an ext4 image made by mke2fs -d (busybox and an /init) is the template;
#    `mkdir -p images/300` and `cp .templates/guest.img
#    images/300/vm-300-disk-0.raw` make the disk, a clone of the template
#    (status names it), adding almost nothing to the log; it is given a file
#    (debugfs -w through the mount);
#  - QEMU (TCG) boots it (tests/guest.sh); the guest prints the template's
#    file and the disk's own on the serial console, writes a file, syncs,
#    remounts read-only and powers off;
#  - afterwards the guest's file is in the disk and not in .templates/
#    guest.img nor in the template file; a cp of the booted disk holds it
#    too; e2fsck finds both clean; hcowctl check is clean.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$top_srcdir/tests/guest.sh"
guest_test cp sha256sum

### the template
guest_template "$T/tmpl/guest.img" own
tmpl_sha=$(sha256sum < "$T/tmpl/guest.img")
guest_initramfs
mount_fs -o segment_size=16M,checkpoint_ms=200

### the disk: cp of the template
V=images/300/vm-300-disk-0.raw
mkdir -p "$M/images/300" || fail "mkdir -p images/300"
ctl checkpoint >/dev/null || fail "checkpoint"
log0=$(status_field 's["log"]["disk_bytes"]')
cp "$M/.templates/guest.img" "$M/$V" || fail "cp .templates/guest.img $V"
ctl checkpoint >/dev/null || fail "checkpoint"
added=$(($(status_field 's["log"]["disk_bytes"]') - log0))
[ "$added" -lt 65536 ] || fail "cp of the 32 MiB template added $added bytes of log"
cmp "$M/$V" "$T/tmpl/guest.img" || fail "$V does not read as the template"
tmpl=$(status_field '[d["template"] for d in s["disks"] if d["name"] == "'"$V"'"]')
[ "$tmpl" = "['guest.img']" ] || fail "status: $V has template $tmpl, not guest.img"
guest_put "$V" own "own-note"
ok "cp .templates/guest.img $V: a disk of guest.img, $added bytes of log added; given its own file"

### the boot
guest_boot "$V" "template=from-template own=own-note"
ok "the guest booted from $V in ${secs}s and read the template's file and the disk's own"

### what the guest wrote: in the disk (and a cp of it), not in the template
want="written by the guest, which read template=from-template own=own-note"
[ "$(guest_get "$M/$V" /guest-wrote)" = "$want" ] || fail "$V's /guest-wrote holds '$(guest_get "$M/$V" /guest-wrote)'"
cp "$M/$V" "$M/images/300/vm-300-disk-1.raw" || fail "cp of the booted disk"
[ "$(guest_get "$M/images/300/vm-300-disk-1.raw" /guest-wrote)" = "$want" ] || fail "the cp of $V lacks /guest-wrote"
for d in "$M/$V" "$M/images/300/vm-300-disk-1.raw"; do
	e2fsck -f -n "$d" >"$T/fsck.log" 2>&1 || fail "e2fsck of $d after the boot: $(cat "$T/fsck.log")"
done
for d in "$M/.templates/guest.img" "$T/tmpl/guest.img"; do
	debugfs -R "stat /guest-wrote" "$d" 2>&1 | grep -q "File not found" || fail "$d has the file the guest wrote"
done
[ "$(sha256sum < "$T/tmpl/guest.img")" = "$tmpl_sha" ] || fail "the template file changed"
out=$(ctl check) || fail "check after the boot: $out"
ok "the guest's write is in $V and its cp, not in the template; e2fsck and hcowctl check are clean"
