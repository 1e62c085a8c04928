#!/bin/bash
# A one-mon, one-OSD Ceph cluster of its own for a test or a benchmark, in a
# scratch directory, on free 127.0.0.1 ports, from Debian's ceph-mon and
# ceph-osd: no systemd, no cephadm, no containers, `auth none`, pool size 1.
#
#   tests/ceph/cluster.sh start DIR [memstore|bluestore [BLOCK_FILE]]
#   tests/ceph/cluster.sh stop DIR
#   tests/ceph/cluster.sh osd-stop DIR      (SIGKILL the OSD, keep its data)
#   tests/ceph/cluster.sh osd-start DIR     (start it again; bluestore keeps data)
#
# `start` makes DIR/ceph.conf (pass it as -c or ceph_conf=), creates the pool
# "vms" and returns once a write to it has succeeded.  memstore (the default)
# holds its objects in the OSD's memory: fast, and gone when the OSD stops.
# bluestore keeps them in BLOCK_FILE (default DIR/osd.0.block, a sparse
# 2 GiB file), so an OSD survives a restart.  `stop` kills only the daemons
# whose pid files are in DIR (the pids it started) and waits for them.
# CEPH_CONF_EXTRA, if set, is appended to DIR/ceph.conf before the daemons
# start: sections of its own ([osd], [client]) override [global]'s values
# (bench/bench-ceph sets BlueStore's size and cache and the clients' options).
# Every ceph command here has a timeout: a cluster that does not come up is
# an error within about 60 s, never a hang.
set -euo pipefail

cmd=${1:?usage: cluster.sh start|stop|osd-stop|osd-start DIR [memstore|bluestore [BLOCK_FILE]]}
D=${2:?usage: cluster.sh $cmd DIR}
C=$D/ceph.conf

die() { echo "ceph cluster: $*" >&2; exit 1; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ceph_() { timeout 30 ceph -c "$C" --connect-timeout 20 "$@"; }

pid_of() { cat "$D/run/$1.pid" 2>/dev/null || true; }

kill_daemon() {	# NAME SIGNAL: signal the daemon whose pid file is in DIR and wait for it
	local pid
	pid=$(pid_of "$1")
	[ -n "$pid" ] || return 0
	kill -"$2" "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$D/run/$1.pid"
}

wait_osd_up() {
	for _ in $(seq 120); do
		if ceph_ osd dump 2>/dev/null | grep -q '^osd.0 up'; then
			return 0
		fi
		sleep 0.5
	done
	die "osd.0 did not come up (see $D/log/osd.0.log)"
}

case $cmd in
start)
	store=${3:-memstore}
	block=${4:-$D/osd.0.block}
	for b in ceph-mon ceph-osd ceph monmaptool rados; do
		command -v "$b" >/dev/null || die "$b is not installed (tools/setup.sh installs it)"
	done
	mkdir -p "$D/run" "$D/log" "$D/mon.a" "$D/osd.0"
	fsid=$(cat /proc/sys/kernel/random/uuid)
	port=$(free_port)
	cat > "$C" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
run dir = $D/run
log file = $D/log/\$name.log
mon cluster log file = $D/log/cluster.log
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
mon data = $D/mon.\$id
osd data = $D/osd.\$id
osd objectstore = $store
memstore device bytes = 2147483648
bluestore block path = $block
bluestore block size = 2147483648
bluestore block create = true
osd memory target = 536870912
osd op num shards = 2
osd op num threads per shard = 1
EOF
	[ -z "${CEPH_CONF_EXTRA:-}" ] || printf '%s\n' "$CEPH_CONF_EXTRA" >> "$C"
	monmaptool --create --addv a "[v2:127.0.0.1:$port]" --fsid "$fsid" "$D/monmap" >/dev/null
	ceph-mon -c "$C" --mkfs -i a --monmap "$D/monmap" 2>>"$D/log/setup.log"
	ceph-mon -c "$C" -i a 2>>"$D/log/setup.log"
	uuid=$(cat /proc/sys/kernel/random/uuid)
	id=$(ceph_ osd new "$uuid") || die "the monitor did not answer (see $D/log/mon.a.log)"
	[ "$id" = 0 ] || die "osd new gave id $id"
	ceph-osd -c "$C" -i 0 --mkfs --osd-uuid "$uuid" >>"$D/log/setup.log" 2>&1 ||
		die "ceph-osd --mkfs failed (see $D/log/setup.log)"
	ceph-osd -c "$C" -i 0 2>>"$D/log/setup.log"
	wait_osd_up
	ceph_ osd pool create vms 8 >/dev/null 2>&1
	ceph_ osd pool application enable vms hcowfs >/dev/null 2>&1
	echo probe > "$D/probe"
	for _ in $(seq 60); do
		timeout 10 rados -c "$C" -p vms put hcowfs-probe "$D/probe" 2>/dev/null && break
		sleep 0.5
	done
	timeout 10 rados -c "$C" -p vms rm hcowfs-probe || die "pool vms does not take writes"
	;;
stop)
	kill_daemon osd.0 TERM
	kill_daemon mon.a TERM
	;;
osd-stop)
	kill_daemon osd.0 KILL
	;;
osd-start)
	ceph-osd -c "$C" -i 0 2>>"$D/log/setup.log"
	wait_osd_up
	;;
*)
	die "unknown command $cmd"
	;;
esac
