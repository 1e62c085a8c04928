#!/bin/bash
# Proves: a full data dir (HDD) is survivable.  The writer gets ENOSPC (not
# EIO, not a hang, not a worker restart), whatever fsync returned reads back
# intact, a record cut short by the full disk leaves no trace in the log, a
# new segment that cannot be created leaves none either, a checkpoint that
# fails with SQLITE_FULL loses nothing, and once space is freed (outside
# hcowfs) writes work again without a remount; after a remount everything
# fsync'd is there.  Cases 1-5 run without the reserve (space_reserve=0), as
# when something outside hcowfs takes all the space.  Case 6 keeps the
# default reserve: a guest overwriting its disk fills the file system, gets
# ENOSPC, and the cleaner (which may use the reserve) gives space back so
# that the writes resume, with no checkpoint failing and no byte lost.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test

D=$T/hdd/data
SEG=$((16 * MiB))
# the data dir on its own small file system; cleanup unmounts it after the mount
rmdir "$T/data"
mkdir "$T/hdd"
mount -t tmpfs -o size=48m,mode=755 hcowfs-test-hdd "$T/hdd" || skip "cannot mount a tmpfs"
MOUNTED="$T/hdd"
mkdir "$D"
mount_here() {
	"$MOUNT_HCOWFS" "$T/tmpl" "$D" "$M" -o segment_size=$SEG,checkpoint_ms=3600000${RESERVE-,space_reserve=0} "$@" ||
		fail "mount.hcowfs failed"
	MOUNTED="$M $T/hdd"
}
free_bytes() { python3 -c 'import os,sys; s=os.statvfs(sys.argv[1]); print(s.f_bavail * s.f_frsize)' "$T/hdd"; }
# fill_to N: a filler file outside hcowfs leaves exactly N bytes free
fill_to() {
	rm -f "$T/hdd/filler"
	sync
	f=$(free_bytes)
	[ "$f" -gt "$1" ] || fail "only $f bytes free, need more than $1"
	fallocate -l $((f - $1)) "$T/hdd/filler"
	[ "$(free_bytes)" = "$1" ] || fail "filler left $(free_bytes) bytes free, wanted $1"
}

mount_here
ctl create a.img --template base.img --size 200M >/dev/null
W=$(worker_pid)

# writer.py ACTION...: O_DIRECT 1 MiB writes of block i = byte (i % 250) + 1,
# fsync after each; prints what happened.  The model of what the disk holds
# is in $T/model (block -> byte), updated only after a successful fsync.
cat > "$T/writer.py" <<'PY'
import errno, json, mmap, os, sys, time
MiB = 1 << 20
disk, model_path = sys.argv[1], sys.argv[2]
model = json.load(open(model_path)) if os.path.exists(model_path) else {}
fd = os.open(disk, os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, MiB)
def save():
    json.dump(model, open(model_path, "w"))
def write(block, val):
    buf[:] = bytes([val]) * MiB
    t = time.monotonic()
    try:
        if os.pwrite(fd, buf, block * MiB) != MiB:
            return "short"
        os.fsync(fd)
    except OSError as e:
        if time.monotonic() - t > 5:
            return "slow " + errno.errorcode[e.errno]
        return errno.errorcode[e.errno]
    model[str(block)] = val
    return "ok"
def verify():
    for b, v in model.items():
        got = os.pread(fd, MiB, int(b) * MiB)
        if got != bytes([v]) * MiB:
            sys.exit(f"block {b}: expected byte {v}, got {got[:8]!r}... ({len(got)} bytes)")
    # blocks never written read as the template (1 MiB) or zeros
    return len(model)
cmd = sys.argv[3]
if cmd == "until-full":      # write blocks from FIRST on until one fails; print its error
    b = int(sys.argv[4])
    while True:
        r = write(b, b % 250 + 1)
        if r != "ok":
            print(f"{b} {r}")
            break
        b += 1
        if b > 190:
            print(f"{b} never-full")
            break
elif cmd == "one":           # write block B once
    print(write(int(sys.argv[4]), int(sys.argv[5])))
elif cmd == "verify":
    print(verify())
save()
PY
writer() { python3 "$T/writer.py" "$M/a.img" "$T/model" "$@"; }

# 1. ENOSPC in the middle of a record: 1.5 MiB free, 1 MiB records
rec=$((MiB + 64 + 1024))	# header, crc table (256 x 4 bytes), data
echo '{}' > "$T/model"
fill_to $((MiB + MiB / 2))
out=$(writer until-full 1)
[ "${out#* }" = ENOSPC ] || fail "full data dir: the writer got '$out', not ENOSPC"
n=$(writer verify)
[ "$n" -ge 1 ] || fail "nothing was written before the disk was full"
seg1=$(stat -c %s "$D/log/00000001.seg")
[ "$seg1" = $((64 + n * rec)) ] ||
	fail "segment holds $seg1 bytes, not the header and $n whole records: a partial record was left"
[ "$(worker_pid)" = "$W" ] || fail "the worker was replaced"
[ "$(status_field 's["restarts"]')" = 0 ] || fail "the supervisor restarted the worker"
ok "full data dir: ENOSPC at block ${out% *}, $n fsync'd blocks intact, no partial record left"

# the same error again, at once, and reads keep working
out=$(timeout 20 python3 "$T/writer.py" "$M/a.img" "$T/model" one 0 77) || fail "a write on a full disk hung"
[ "$out" = ENOSPC ] || fail "second write on the full disk: '$out'"
cmp -n $MiB "$M/a.img" "$T/tmpl/base.img" || fail "the unwritten block 0 no longer reads as the template"
ok "further writes get ENOSPC at once; reads still work"

# 2. the checkpoint cannot be written (SQLITE_FULL): nothing is lost
fill_to 0
out=$(ctl restart 2>&1) && fail "restart (which checkpoints first) succeeded on a full disk: $out"
echo "$out" | grep -qi "no space" || fail "failed checkpoint: unclear message '$out'"
grep -q "checkpoint failed: No space left on device" "$D/hcowfs.log" || fail "the failed checkpoint is not logged"
[ "$(writer verify)" = "$n" ] || fail "data changed after a failed checkpoint"
# the operator sees it in status, in words and in JSON
cpline=$(ctl status | grep "^checkpoint:")
echo "$cpline" | grep -q "^checkpoint: FAILING, 1 attempt in a row: No space left on device" ||
	fail "status does not show the failing checkpoint: $cpline"
[ "$(status_field 's["checkpoint"]["failures"]')" = 1 ] || fail "status --json: checkpoint failures not 1"
ok "checkpoint on a full disk fails cleanly: $out; status: $cpline"
expect_fail "create a disk on a full data dir" "full|no space" ctl create b.img --template base.img
[ "$(ls "$M")" = a.img ] || fail "a create that failed left something: $(ls "$M")"
expect_fail "chmod on a full data dir" "no space" chmod 640 "$M/a.img"
[ "$(stat -c %a "$M/a.img")" = 600 ] || fail "a chmod that failed changed the mode"

# 3. space freed outside hcowfs: writes work again, no remount
rm -f "$T/hdd/filler"
out=$(writer one 0 77)
[ "$out" = ok ] || fail "after freeing space the write still fails: $out"
ctl checkpoint >/dev/null || fail "checkpoint after freeing space failed"
ctl status | grep -q "^checkpoint: last written [0-9.]* s ago (took [0-9.]* ms); 0 MiB of log not yet in the index; index [0-9]* MiB, generation [0-9]*$" ||
	fail "status after a good checkpoint: $(ctl status | grep '^checkpoint')"
[ "$(status_field 's["checkpoint"]["failures"]')" = 0 ] || fail "status --json: failures not reset"
[ "$(status_field 's["checkpoint"]["index_bytes"] > 8192 and s["checkpoint"]["index_generation"] > 2')" = True ] ||
	fail "status --json: no index size or generation: $(status_field 's["checkpoint"]')"
ctl restart >/dev/null || fail "checkpoint + restart after freeing space failed"
wait_for new_worker_serving "$W" || fail "no new worker after restart"
[ "$(writer verify)" = $((n + 1)) ] || fail "data changed after the checkpoint"
ok "after freeing space: writes and checkpoints work again without a remount"

# 4. the disk fills exactly when a new segment must be created
# Fill segment 1 to its last record, leave no page free: the next
# write must roll to segment 2, whose header cannot be written.
used=$(stat -c %s "$D/log/00000001.seg")
room=$(( (SEG - used) / rec ))
b=$((n + 2))
for _ in $(seq "$room"); do
	[ "$(writer one $b $((b % 250 + 1)))" = ok ] || fail "write $b before the segment roll failed"
	b=$((b + 1))
done
[ -e "$D/log/00000002.seg" ] && fail "segment 2 exists before the roll"
fill_to 0
out=$(writer one $b 99)
[ "$out" = ENOSPC ] || fail "write needing a new segment on a full disk: '$out', not ENOSPC"
[ -e "$D/log/00000002.seg" ] && fail "a half-created segment 2 was left behind ($(stat -c %s "$D/log/00000002.seg") bytes)"
rm -f "$T/hdd/filler"
[ "$(writer one $b 99)" = ok ] || fail "after freeing space the segment roll still fails"
[ "$(stat -c %s "$D/log/00000002.seg")" = $((64 + rec)) ] || fail "segment 2 is not header + 1 record"
total=$(writer verify)
ok "no space for a new segment: ENOSPC, nothing left behind; it is created once there is room"

# 5. full again, then unmount (final checkpoint fails) and mount: all fsync'd data is there
fill_to 0
[ "$(writer one 5 55)" = ENOSPC ] || fail "not full again"
umount "$M"
MOUNTED="$T/hdd"
rm -f "$T/hdd/filler"
mount_here
[ "$(writer verify)" = "$total" ] || fail "after the remount the disk lost data"
[ "$(writer one 6 66)" = ok ] || fail "cannot write after the remount"
ok "remount after a full disk: all $total fsync'd blocks intact"

# 6. with the reserve: a guest overwriting 8 MiB of its disk over and over
# fills the file system; it gets ENOSPC, the cleaner moves the live data with
# the reserve and releases segments, and the writes resume.  No checkpoint is
# due (checkpoint_ms is an hour): only the refused writes wake the cleaner.
umount "$M"
MOUNTED="$T/hdd"
rm -rf "$D" "$T/model"
mkdir "$D"
RESERVE= mount_here
ctl create a.img --template base.img --size 200M >/dev/null
reserve=$(status_field 's["space"]["reserve_bytes"]')
[ "$reserve" = $((48 * MiB / 8)) ] || fail "default reserve on a 48 MiB file system: $reserve, not 1/8 of it"
ctl status | grep -q "^space: [0-9]* MiB free in the data dir, 6 MiB of it kept for the cleaner" ||
	fail "status has no space line: $(ctl status | grep '^space')"
python3 - "$M/a.img" 120 > "$T/overwrite.out" <<'PY' || fail "overwriting on a full file system: $(tail -3 "$T/overwrite.out")"
import errno, mmap, os, sys, time
MiB = 1 << 20
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, MiB)
refused = 0
for i in range(int(sys.argv[2])):
    buf[:] = bytes([i % 250 + 1]) * MiB
    deadline = time.monotonic() + 60
    while True:
        try:
            os.pwrite(fd, buf, (i % 8) * MiB)
            os.fsync(fd)
            break
        except OSError as e:
            if e.errno != errno.ENOSPC or time.monotonic() > deadline:
                sys.exit(f"write {i}: {errno.errorcode[e.errno]} (after {refused} ENOSPC)")
            refused += 1
            time.sleep(0.1)
for b in range(8):
    last = max(i for i in range(int(sys.argv[2])) if i % 8 == b)
    if os.pread(fd, MiB, b * MiB) != bytes([last % 250 + 1]) * MiB:
        sys.exit(f"block {b} does not hold write {last}")
print(f"refused {refused}")
PY
refused=$(awk '/^refused/ { print $2 }' "$T/overwrite.out")
[ "${refused:-0}" -ge 1 ] || fail "120 MiB written on a 48 MiB file system without one ENOSPC: the test did not fill it"
grep -q "data dir full:" "$D/hcowfs.log" || fail "the refused writes are not logged"
grep -q "cleaner: released" "$D/hcowfs.log" || fail "the cleaner released nothing"
grep -q "checkpoint failed" "$D/hcowfs.log" && fail "a checkpoint failed: the reserve did not keep room for it"
[ "$(worker_pid)" = "$(status_field 's["workers"][0]["pid"]')" ] || fail "no worker"
[ "$(status_field 's["restarts"]')" = 0 ] || fail "the supervisor restarted the worker"
umount "$M"
MOUNTED="$T/hdd"
RESERVE= mount_here
python3 - "$M/a.img" 120 <<'PY' || fail "after a remount the overwritten blocks are wrong"
import os, sys
MiB = 1 << 20
fd = os.open(sys.argv[1], os.O_RDONLY)
for b in range(8):
    last = max(i for i in range(int(sys.argv[2])) if i % 8 == b)
    assert os.pread(fd, MiB, b * MiB) == bytes([last % 250 + 1]) * MiB, b
PY
ok "with the reserve: $refused writes refused while the file system was full, the cleaner freed space, all 120 MiB of overwrites landed, every checkpoint worked"
