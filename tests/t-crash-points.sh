#!/bin/bash
# Proves: SIGKILL of every process of a mount (supervisor and workers) at
# random moments of a mixed workload on 3 disks (O_DIRECT and buffered
# writes, fsync, fdatasync, punch hole, zero range, truncate) loses no write
# that returned, tears no write and mixes no disks: after each remount every
# disk equals its content after some prefix of its ops holding every op that
# returned; snapshots, clones, rollbacks and deletes run meanwhile (some kills
# land inside a copy, between its log record, sync, catalog row and
# checkpoint) and every snapshot and clone is as the op that made it says;
# files created, renamed (with their directories) and copied (copy_file_range,
# shared or by bytes) through the mount meanwhile are as their ops say;
# hcowctl check clean (tests/rigs/crash-points; longer: CRASH_POINTS=300).
# The defragmenter takes a disk idle for 100 ms, so kills land inside its
# passes too (sweeps and rewrites of fragmented chunks).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch
export HCOWFS_DEFRAG_IDLE_MS="${HCOWFS_DEFRAG_IDLE_MS:-100}"
MOUNTED="$T/rig/mnt"
python3 "$top_srcdir/tests/rigs/crash-points" --points "${CRASH_POINTS:-15}" --disks 3 --disk-mib 16 \
	--fresh-every 10 --max-ms 400 --seed "${CRASH_SEED:-$RANDOM}" --dir "$T/rig" ||
	fail "a crash point lost or mixed data (see above)"
ok "every crash point recovered a prefix of each disk's ops"
