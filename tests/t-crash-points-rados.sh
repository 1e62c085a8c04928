#!/bin/bash
# Proves: the crash-point rig (tests/t-crash-points.sh) holds for a store in
# a Ceph cluster too (issue 23): SIGKILL of every process of the mount at
# random moments of the mixed workload (writes, syncs, discards, snapshots,
# clones, names), then a new mount takes the store over (-o takeover: the
# dead one's lock is still held), half of the time from a new, empty cache
# with another client name, i.e. another host after this one was lost;
# every disk is a prefix of its ops holding every op that returned, every
# snapshot and clone is as its op says, hcowctl check is clean
# (tests/rigs/crash-points --rados; longer: CRASH_POINTS=50).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need ceph rados timeout
scratch
ceph_start
MOUNTED="$T/rig/mnt"
python3 "$top_srcdir/tests/rigs/crash-points" --rados vms --new-host 0.5 --points "${CRASH_POINTS:-6}" \
	--disks 2 --disk-mib 16 --fresh-every 50 --max-ms 400 --seed "${CRASH_SEED:-$RANDOM}" --dir "$T/rig" ||
	{ tail -n 30 "$T"/rig/cache*/hcowfs.log; fail "a crash point lost or mixed data (see above)"; }
ok "every crash point recovered a prefix of each disk's ops from the cluster"
