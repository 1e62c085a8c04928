#!/bin/bash
# Put promtool (Prometheus's checker, which tests/t-metrics.sh runs on
# `hcowctl metrics`) in /usr/local/bin without installing Debian's whole
# prometheus package, which would bring a server and its service: fetch the
# package with apt-get download into a cache directory and extract only
# usr/bin/promtool.  Safe to run again: does nothing when promtool is on PATH.
# Needs root; called by tools/setup.sh.
set -euo pipefail
DEST=${PROMTOOL_DEST:-/usr/local/bin}
CACHE=${PROMTOOL_CACHE:-/var/cache/hcowfs}

command -v promtool >/dev/null && exit 0
[ "$(id -u)" = 0 ] || { echo "get-promtool: need root to install promtool in $DEST" >&2; exit 1; }
mkdir -p "$CACHE" "$DEST"
cd "$CACHE"
# fetch: download the package into the cache unless it is there already
fetch() {
	ls prometheus_*.deb >/dev/null 2>&1 && return 0
	# the cache is root's, so apt's download sandbox user could not write it
	apt-get -qq -o APT::Sandbox::User=root download prometheus
}
fetch || { apt-get update -qq && fetch; } || { echo "get-promtool: cannot download Debian's prometheus package" >&2; exit 1; }
deb=$(ls -t prometheus_*.deb | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# a damaged download is dropped, so the next run fetches it again
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/bin/promtool ||
	{ rm -f "$deb"; echo "get-promtool: no promtool in $deb" >&2; exit 1; }
install -m 0755 "$tmp/usr/bin/promtool" "$DEST/promtool"
"$DEST/promtool" --version >/dev/null
echo "get-promtool: $DEST/promtool from $deb"
