#!/bin/bash
# The Debian package, end to end, as root on Debian 12 (run by .ci/run after
# the test suite; not part of `make check`, since it rebuilds everything):
#
#   build   dpkg-buildpackage -us -uc -b in a scratch copy of the checkout's
#           tracked files under /tmp (the source tree stays untouched)
#   lint    lintian: an error fails, the warnings that remain are printed
#   install dpkg -i; the man pages are found by man -w, the programs, the
#           completion and the example units are where the package says, and
#           systemd-analyze verifies the units with their man: links
#   mount   mount -t hcowfs TEMPLATE_DIR MOUNTPOINT -o datadir=DATA_DIR (the
#           form mount.hcowfs(8) documents), served by the installed
#           programs; the installed hcowctl creates a disk; bytes written
#           are read back; umount; then the same through an fstab line
#           (mount --fstab) and the bytes are still there; umount
#   remove  dpkg --purge
#
# However it ends, a trap unmounts, kills only the processes started under
# the scratch dir, purges the package and removes the scratch dir.  It
# refuses to run where hcowfs is installed already (by dpkg or make install),
# so that it never removes what it did not install.  The packages the build
# needs (debian/control's Build-Depends, lintian) are installed if missing
# and stay.  Prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
PKG=hcowfs

step() { echo "package-test: [${SECONDS}s] $*"; }
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (it installs a package and mounts)"
[ -c /dev/fuse ] || fail "needs /dev/fuse"
git -c safe.directory="$SRC" -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1 || fail "needs a git checkout (it copies the tracked files)"
dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "installed" && fail "$PKG is installed already: remove it first"
for f in /sbin/mount.hcowfs /usr/bin/hcowctl /usr/libexec/hcowfs/hcowfs-worker; do
	[ -e "$f" ] && fail "$f exists (make install?): the package would overwrite it and the purge remove it"
done

W=$(mktemp -d /tmp/hcowfs-package.XXXXXX)
INSTALLED=
# is_mounted DIR: DIR is a mount point now
is_mounted() { awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }
# our_pids: the supervisors and workers of this test's mounts (they name $W)
our_pids() { pgrep -f -- "$W/" || true; }
# cleanup: undo whatever the steps did, whatever step failed
cleanup() {
	status=$?
	set +e
	while is_mounted "$W/mnt"; do
		timeout 10 umount "$W/mnt" 2>/dev/null || umount -l "$W/mnt" 2>/dev/null || break
	done
	for _ in $(seq 100); do [ -z "$(our_pids)" ] && break; sleep 0.1; done
	for p in $(our_pids); do kill -KILL "$p" 2>/dev/null; done
	if [ -n "$INSTALLED" ]; then
		dpkg --purge "$PKG" >/dev/null || { echo "package-test: dpkg --purge $PKG failed" >&2; status=1; }
	fi
	[ $status -ne 0 ] && [ -f "$W/data/hcowfs.log" ] && { echo "--- the mount's log"; tail -n 40 "$W/data/hcowfs.log"; }
	rm -rf "$W"
	[ $status -eq 0 ] && step "passed" || echo "package-test: failed" >&2
	exit $status
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- build -----------------------------------------------------------------
step "copying the tracked files to $W/src"
mkdir "$W/src"
git -c safe.directory="$SRC" -C "$SRC" ls-files -z | tar -C "$SRC" --null -T - -cf - | tar -x -C "$W/src"
export DEBIAN_FRONTEND=noninteractive
missing=
for p in build-essential dpkg-dev debhelper lintian man-db python3; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	step "installing$missing"
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if ! (cd "$W/src" && dpkg-checkbuilddeps) 2>/dev/null; then
	step "installing the Build-Depends"
	apt-get update -qq
	apt-get build-dep -y -qq --no-install-recommends "$W/src" >/dev/null
fi
step "building: dpkg-buildpackage -us -uc -b (log: $W/build.log)"
(cd "$W/src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b) >"$W/build.log" 2>&1 ||
    { tail -n 60 "$W/build.log"; fail "dpkg-buildpackage failed"; }
deb=$(ls "$W/${PKG}_"*"_$(dpkg --print-architecture).deb")
step "built $(basename "$deb")"

# ---- lint ------------------------------------------------------------------
lintian --fail-on error "$W"/*.changes >"$W/lintian" 2>&1 || { cat "$W/lintian"; fail "lintian reports errors"; }
grep -v 'running with root privileges' "$W/lintian" >"$W/lintian.tags" || true
step "lintian: no errors; $(grep -c '^W: ' "$W/lintian.tags" || true) warning(s) remain"
sed 's/^/    /' "$W/lintian.tags"

# ---- install ---------------------------------------------------------------
INSTALLED=1
dpkg -i "$deb" >/dev/null || fail "dpkg -i $(basename "$deb") failed"
step "installed"
for page in "8 hcowctl" "8 mount.hcowfs" "5 hcowfs"; do
	# shellcheck disable=SC2086
	path=$(man -w $page) || fail "man -w $page finds no page"
	dpkg -S "$path" >/dev/null 2>&1 || fail "man -w $page gives $path, which the package does not own"
done
for f in /sbin/mount.hcowfs /usr/bin/hcowctl /usr/libexec/hcowfs/hcowfs-worker \
    /usr/share/bash-completion/completions/hcowctl /usr/share/doc/hcowfs/examples/mnt-vms.mount \
    /usr/share/doc/hcowfs/examples/hcowfs-metrics.service /usr/share/doc/hcowfs/examples/hcowfs-metrics.timer; do
	[ -e "$f" ] || fail "the package installs no $f"
done
step "man -w finds hcowctl(8), mount.hcowfs(8), hcowfs(5); programs, completion and example units in place"
UNITS="mnt-vms.mount hcowfs-metrics.service hcowfs-metrics.timer"
if command -v systemd-analyze >/dev/null; then
	mkdir "$W/units"
	for u in $UNITS; do cp "/usr/share/doc/hcowfs/examples/$u" "$W/units/"; done
	# --man=yes: the units' Documentation= pages must resolve, now installed
	# shellcheck disable=SC2086
	if (cd "$W/units" && systemd-analyze verify --man=yes $UNITS) >"$W/verify" 2>&1 && [ ! -s "$W/verify" ]; then
		step "systemd-analyze verify --man=yes accepts the installed $UNITS"
	elif printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n' >"$W/units/probe.service" &&
	    ! (cd "$W/units" && systemd-analyze verify --man=no probe.service) >/dev/null 2>&1; then
		step "skipped systemd-analyze verify (it cannot run here: $(head -1 "$W/verify"))"
	else
		fail "systemd-analyze verify rejects the installed units: $(cat "$W/verify")"
	fi
else
	step "skipped systemd-analyze verify (no systemd-analyze)"
fi

# ---- mount through mount(8) ------------------------------------------------
mkdir "$W/tmpl" "$W/data" "$W/mnt"
python3 -c 'import sys; open(sys.argv[1], "wb").write(bytes(range(256)) * 4096)' "$W/tmpl/base.img"
# the installed programs only: a build tree on PATH must not serve this
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t hcowfs "$W/tmpl" "$W/mnt" -o datadir="$W/data" || fail "mount -t hcowfs failed"
awk -v m="$W/mnt" '$5 == m { for (i = 7; $i != "-"; i++); print $(i + 1) }' /proc/self/mountinfo | grep -qx fuse.hcowfs ||
    fail "$W/mnt is not a fuse.hcowfs mount"
# the programs serving it are the installed ones (/sbin may be /usr/sbin)
exes=$(for p in $(our_pids); do readlink "/proc/$p/exe"; done)
for f in /sbin/mount.hcowfs /usr/libexec/hcowfs/hcowfs-worker; do
	echo "$exes" | grep -qxF "$(readlink -f "$f")" || fail "no $f serves the mount (running: $exes)"
done
hcowctl -m "$W/mnt" create vm1.img --template base.img >/dev/null || fail "hcowctl create"
printf 'written through the installed package\n' >"$W/bytes"
dd if="$W/bytes" of="$W/mnt/vm1.img" bs=4096 seek=1 conv=notrunc,fsync status=none || fail "write to vm1.img"
# check_disk WHEN: the written bytes and the template around them read back
check_disk() {
	cmp -n "$(stat -c %s "$W/bytes")" "$W/bytes" <(dd if="$W/mnt/vm1.img" bs=4096 skip=1 count=1 status=none) ||
	    fail "$1: vm1.img does not read back the bytes written"
	cmp -n 4096 "$W/tmpl/base.img" "$W/mnt/vm1.img" || fail "$1: vm1.img's first block differs from its template"
}
check_disk "mount -t hcowfs"
hcowctl -m "$W/mnt" status >/dev/null || fail "hcowctl status"
umount "$W/mnt" || fail "umount"
step "mount -t hcowfs, hcowctl create, write, read back, status, umount"
for _ in $(seq 100); do [ -z "$(our_pids)" ] && break; sleep 0.1; done
[ -z "$(our_pids)" ] || fail "the supervisor or worker outlived umount"

printf '%s %s hcowfs datadir=%s,nofail 0 0\n' "$W/tmpl" "$W/mnt" "$W/data" >"$W/fstab"
mount --fstab "$W/fstab" "$W/mnt" || fail "mount --fstab (the fstab line) failed"
check_disk "the fstab line's mount"
umount "$W/mnt" || fail "umount"
step "an fstab line's mount reads the bytes back; umount"
for _ in $(seq 100); do [ -z "$(our_pids)" ] && break; sleep 0.1; done

# ---- remove ----------------------------------------------------------------
dpkg --purge "$PKG" >/dev/null || fail "dpkg --purge failed"
INSTALLED=
for f in /sbin/mount.hcowfs /usr/bin/hcowctl /usr/libexec/hcowfs; do
	[ -e "$f" ] && fail "$f is left after dpkg --purge"
done
step "purged; nothing of the package is left"
