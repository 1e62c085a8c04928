#!/bin/bash
# Put a guest kernel for the QEMU boot tests (tests/guest.sh) in a cache
# directory, from Debian's packages only and without installing a kernel
# into this machine's /boot: download the package that
# linux-image-amd64 depends on with apt-get download, extract its vmlinuz and
# modules, generate modules.dep for them (depmod -b), and keep only the
# modules a guest needs to see a virtio disk and mount ext4, with the order
# to load them in (modprobe --show-depends, soft dependencies included).
#
# The cache ($GUEST_CACHE, /var/cache/hcowfs-guest by default) then holds
#   vmlinuz        the kernel
#   modules/       those modules' .ko files
#   modules.load   their file names, one a line, in load order (written last:
#                  its presence means the cache is complete)
#   kernel         the package and version they came from
# Safe to run again: does nothing when the cache is complete.  Needs root,
# and busybox-static and kmod installed; called by tools/setup.sh.
set -euo pipefail
CACHE=${GUEST_CACHE:-/var/cache/hcowfs-guest}
# what the guest loads: the virtio PCI transport and disk, and ext4
MODULES="virtio_pci virtio_blk ext4"

[ -s "$CACHE/modules.load" ] && [ -s "$CACHE/vmlinuz" ] && exit 0
[ "$(id -u)" = 0 ] || { echo "get-guest: need root to fill $CACHE" >&2; exit 1; }
for t in depmod modprobe dpkg-deb apt-get; do
	command -v "$t" >/dev/null || { echo "get-guest: needs $t" >&2; exit 1; }
done
mkdir -p "$CACHE"
cd "$CACHE"

# the exact kernel package the metapackage points at
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
[ -n "$pkg" ] || { apt-get update -qq && pkg=$(apt-cache depends linux-image-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'); }
[ -n "$pkg" ] || { echo "get-guest: apt knows no package linux-image-amd64 depends on" >&2; exit 1; }

# fetch: download the package into the cache unless it is there already
fetch() {
	ls "${pkg}"_*.deb >/dev/null 2>&1 && return 0
	# the cache is root's, so apt's download sandbox user could not write it
	apt-get -qq -o APT::Sandbox::User=root download "$pkg"
}
fetch || { apt-get update -qq && fetch; } || { echo "get-guest: cannot download $pkg" >&2; exit 1; }
deb=$(ls -t "${pkg}"_*.deb | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# a damaged download is dropped, so the next run fetches it again
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./boot ./lib/modules ||
	{ rm -f "$deb"; echo "get-guest: cannot extract $deb" >&2; exit 1; }
kver=$(ls "$tmp/lib/modules")
[ -f "$tmp/boot/vmlinuz-$kver" ] || { rm -f "$deb"; echo "get-guest: no vmlinuz-$kver in $deb" >&2; exit 1; }

# the package ships no modules.dep (its postinst runs depmod): make one here
depmod -b "$tmp" "$kver"
# shellcheck disable=SC2086
order=$(modprobe -d "$tmp" -S "$kver" --show-depends -a $MODULES | awk '$1 == "insmod" && !seen[$2]++ { print $2 }')
[ -n "$order" ] || { echo "get-guest: modprobe resolved no modules for $MODULES" >&2; exit 1; }

rm -rf modules modules.load
mkdir modules
for ko in $order; do
	cp "$ko" modules/
	basename "$ko"
done > modules.load.new
cp "$tmp/boot/vmlinuz-$kver" vmlinuz
dpkg-deb -f "$deb" Package Version | paste -sd' ' > kernel
mv modules.load.new modules.load
rm -f "$deb"	# 70 MB: what the test needs is extracted
echo "get-guest: $CACHE/vmlinuz and $(wc -l < modules.load) modules from $pkg ($kver)"
