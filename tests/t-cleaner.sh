#!/bin/bash
# Proves: on a mount, the cleaner keeps the log near what the disks use while
# a guest overwrites its disk, loses nothing when workers are killed in the
# middle of it, and leaves a store that checks clean and reads the same after
# a remount.  Small segments (16 MiB) so that cleaning starts early.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch

make_template base.img $((2 * 1048576))
mount_fs -o segment_size=16M,checkpoint_ms=200
ctl create a.img --template base.img --size 8M >/dev/null
ctl create b.img --template base.img --size 4M >/dev/null
cp "$T/tmpl/base.img" "$T/ref-a"; truncate -s 8M "$T/ref-a"
cp "$T/tmpl/base.img" "$T/ref-b"; truncate -s 4M "$T/ref-b"
# b is written once, early: its data sits in the first segments and must be moved
$PATTERN mirror "$T/mnt/b.img" "$T/ref-b" --seed cb --ops 200 --max-len 65536 --fsync

(
	for i in 1 2 3 4; do
		sleep 2.5
		p=$(worker_pid 2>/dev/null) && kill -KILL "$p" 2>/dev/null
	done
) &
killer=$!
for round in 1 2 3 4 5 6; do
	$PATTERN mirror "$T/mnt/a.img" "$T/ref-a" --seed "ca$round" --ops 1500 --max-len 131072 --fsync ||
		fail "writer saw an error (round $round)"
done
wait $killer
# let a last checkpoint and cleaning pass run
sleep 1.5
log_bytes=$(du -sb "$T/data/log" | cut -f1)
written=$(ctl status --json | python3 -c "import json,sys; s=json.load(sys.stdin); print(sum(d['log_bytes'] for d in s['disks']))")
grep -q "cleaner: released" "$T/data/hcowfs.log" || fail "the cleaner never released a segment"
released=$(status_field 's["log"]["released_bytes"]')
[ "$released" -gt 0 ] || fail "status says the cleaner released nothing"
# spare segment files (at most 8: a cleaner pass's, WLOG_SPARES_MAX) and the stale rest of a reused newest segment are
# counted apart: bytes kept for reuse, not records
reported=$(status_field 's["log"]["disk_bytes"] + s["log"]["spare_bytes"]')
spare=$(status_field 's["log"]["spare_bytes"]')
[ "$reported" -le "$log_bytes" ] && [ "$reported" -ge $((log_bytes - 1048576)) ] ||
	fail "status says the log takes $reported bytes with its spares, du says $log_bytes"
[ "$spare" -le $((9 * 16 * 1048576)) ] || fail "$spare bytes kept for reuse: more than 8 spares and a segment"
[ $((log_bytes - spare)) -lt $((64 * 1048576)) ] ||
	fail "log is $log_bytes bytes ($spare for reuse) for $written bytes in use: the cleaner is not keeping up"
$PATTERN compare "$T/mnt/a.img" "$T/ref-a" || fail "a.img differs after cleaning"
$PATTERN compare "$T/mnt/b.img" "$T/ref-b" || fail "b.img differs after cleaning"
ok "log $((log_bytes >> 20)) MiB on disk for $((written >> 20)) MiB in use; $(grep -c 'cleaner: released' "$T/data/hcowfs.log") cleaning passes; 4 worker kills; no byte lost"

out=$(ctl check) || fail "check after cleaning: $out"
ok "live check after cleaning: no problems"
umount_fs
out=$("$HCOWCTL" check "$T/data") || fail "offline check after cleaning: $out"
mount_fs -o segment_size=16M
$PATTERN compare "$T/mnt/a.img" "$T/ref-a" || fail "a.img differs after remount"
$PATTERN compare "$T/mnt/b.img" "$T/ref-b" || fail "b.img differs after remount"
ok "offline check clean, remount reads the same"
