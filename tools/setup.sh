#!/bin/bash
# Install what hcowfs needs on Debian 12 (if missing) and build it in place.
# Used by demo.sh, run-tests.sh and CI; safe to run again.  The one list of
# Debian packages the project needs is here.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES="build-essential autoconf automake libtool pkg-config libfuse3-dev fuse3
	libsqlite3-dev sqlite3 libev-dev check python3 e2fsprogs util-linux procps
	qemu-utils fio clang libclang-rt-14-dev qemu-system-common strace groff-base man-db systemd
	qemu-system-x86 busybox-static kmod libvirt-daemon-system libvirt-clients
	ceph-mon ceph-osd ceph-common librados-dev libsqlite3-mod-ceph libsqlite3-mod-ceph-dev"

# --packages: print the list (for .ci/run) and stop.  --no-build: install and
# generate configure, but do not configure or build here (for an out-of-tree
# build).  clang is for the fuzzers (tests/fuzz/run.sh) only.  libvirt-daemon-system:
# tests/t-libvirt.sh starts its libvirtd itself (no systemd needed).  ceph-mon,
# ceph-osd: the Ceph tests start a one-OSD cluster of their own (tests/ceph/cluster.sh).
if [ "${1:-}" = --packages ]; then
	echo $PACKAGES
	exit 0
fi

missing=
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	[ "$(id -u)" = 0 ] || { echo "setup: need root to install:$missing" >&2; exit 1; }
	echo "setup: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# promtool checks `hcowctl metrics` (tests/t-metrics.sh, which fails without it
# under CI=true); Debian ships it only inside the prometheus server's package.
# Not fatal here (an offline machine still builds and tests).
if ! command -v promtool >/dev/null; then
	{ [ "$(id -u)" = 0 ] && ./tools/get-promtool.sh; } ||
		echo "setup: no promtool (tools/get-promtool.sh, as root, fetches it); tests/t-metrics.sh checks without it" >&2
fi
# tests/t-lifecycle-qemu.sh and t-dir-qemu.sh boot Debian's kernel (not
# installed, only extracted to a cache) from a clone; they fail without it
# under CI=true.
if [ ! -s "${GUEST_CACHE:-/var/cache/hcowfs-guest}/modules.load" ]; then
	{ [ "$(id -u)" = 0 ] && ./tools/get-guest.sh; } ||
		echo "setup: no guest kernel (tools/get-guest.sh, as root, fetches it); the QEMU boot tests skip without it" >&2
fi
[ -x configure ] || autoreconf -fi
[ "${1:-}" = --no-build ] && exit 0
[ -f Makefile ] || ./configure ${CONFIGURE_FLAGS:-}
make -j"$(nproc)"
