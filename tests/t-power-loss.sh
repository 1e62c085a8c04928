#!/bin/bash
# Proves: after a simulated power cut (the data dir rebuilt from a trace of
# the worker's writes as of a random point, keeping what fsync made durable
# and dropping, tearing or reordering the rest), the store opens and every
# disk equals its content after some prefix of its ops that holds every op
# before the last fsync acknowledged before the cut, and every snapshot or
# clone acknowledged before the cut is there as the op that made it says,
# hcowctl check clean (tests/rigs/power-loss; longer: POWER_CUTS=300).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need cc
# AddressSanitizer must be the first library of a process: the recorder cannot
# be preloaded into a sanitized worker (the normal build runs this test)
[ -z "${HCOWFS_SANITIZERS:-}" ] || skip "the power-loss recorder cannot be preloaded into a sanitized worker"
scratch
MOUNTED="$T/rig/run0/mnt $T/rig/rbmnt"
python3 "$top_srcdir/tests/rigs/power-loss" --runs 1 --cuts "${POWER_CUTS:-20}" --seconds 2 --disks 3 \
	--disk-mib 16 --seed "${POWER_SEED:-$RANDOM}" --so "$top_builddir/tests/rigs/pl-record.so" \
	--dir "$T/rig" || fail "a power cut lost or mixed data (see above)"
ok "every cut point recovered a prefix of each disk's ops"
