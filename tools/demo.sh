#!/bin/bash
# A small demo of hcowfs, start to finish: builds if needed, makes an ext4
# template, mounts, clones two VM disks from it, changes one, shows that the
# other and the template are untouched; takes a snapshot, changes the disk
# again, clones the snapshot, rolls the disk back; prints status, unmounts.
# Run as root: sudo ./tools/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/setup.sh >/dev/null
MOUNT=$PWD/supervisor/mount.hcowfs
CTL="$PWD/tools/hcowctl"

D=$(mktemp -d /tmp/hcowfs-demo.XXXXXX)
cleanup() {
	grep -q " $D/vms " /proc/self/mountinfo && umount "$D/vms"
	sleep 0.3
	rm -rf "$D"
}
trap cleanup EXIT
mkdir -p "$D/ssd/tmpl" "$D/hdd/data" "$D/vms" "$D/rootfs/etc"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "deb12-demo" > "$D/rootfs/etc/hostname"
echo "a file from the template" > "$D/rootfs/README"
mkfs.ext4 -q -F -L deb12 -d "$D/rootfs" "$D/ssd/tmpl/deb12.img" 128M
sha_before=$(sha256sum < "$D/ssd/tmpl/deb12.img")

step "$MOUNT" "$D/ssd/tmpl" "$D/hdd/data" "$D/vms"
CTL="$CTL -m $D/vms"
step $CTL create vm1.img --template deb12.img
step $CTL create vm2.img --template deb12.img --size 1G
step ls -l "$D/vms"

echo vm1 > "$D/hostname"
step debugfs -w -R "rm /etc/hostname" "$D/vms/vm1.img"
step debugfs -w -R "write $D/hostname /etc/hostname" "$D/vms/vm1.img"
step resize2fs "$D/vms/vm2.img"
step e2fsck -f -n "$D/vms/vm1.img"
step e2fsck -f -n "$D/vms/vm2.img"
printf '\nvm1 hostname: %s\n' "$(debugfs -R 'cat /etc/hostname' "$D/vms/vm1.img" 2>/dev/null)"
printf 'vm2 hostname: %s\n' "$(debugfs -R 'cat /etc/hostname' "$D/vms/vm2.img" 2>/dev/null)"
[ "$(sha256sum < "$D/ssd/tmpl/deb12.img")" = "$sha_before" ] && echo "template unchanged"

# a point in time, a clone of it, and a rollback to it
step $CTL snapshot vm1.img before-upgrade
echo vm1-upgraded > "$D/hostname"
step debugfs -w -R "rm /etc/hostname" "$D/vms/vm1.img"
step debugfs -w -R "write $D/hostname /etc/hostname" "$D/vms/vm1.img"
step ls -l "$D/vms/.snapshots"
step $CTL clone vm1.img@before-upgrade vm3.img
printf '\nvm1 hostname now: %s\n' "$(debugfs -R 'cat /etc/hostname' "$D/vms/vm1.img" 2>/dev/null)"
printf 'vm1.img@before-upgrade: %s\n' \
    "$(debugfs -R 'cat /etc/hostname' "$D/vms/.snapshots/vm1.img@before-upgrade" 2>/dev/null)"
printf 'vm3 (its clone): %s\n' "$(debugfs -R 'cat /etc/hostname' "$D/vms/vm3.img" 2>/dev/null)"
step $CTL rollback vm1.img before-upgrade
printf '\nvm1 hostname after the rollback: %s\n' \
    "$(debugfs -R 'cat /etc/hostname' "$D/vms/vm1.img" 2>/dev/null)"
step $CTL snapshots
# the mount is a directory: cp shares (a copy of a template is a clone of it), qemu-img and mkdir work
step mkdir -p "$D/vms/images/100"
step cp "$D/vms/vm1.img" "$D/vms/images/100/vm-100-disk-0.raw"
step cp "$D/vms/.templates/deb12.img" "$D/vms/vm4.img"
step qemu-img create -q -f qcow2 -b ../../vm1.img -F raw "$D/vms/images/100/vm-100-disk-1.qcow2"
step $CTL list
step $CTL status
step du -sh "$D/hdd/data"
step umount "$D/vms"
echo
echo "demo done"
