#!/bin/bash
# Proves: bit rot in synced records of the newest log segment is not taken
# for a torn tail.  Eight 64 KiB O_DIRECT writes, each fsync'd, then every
# process of the mount is killed and one byte changes in the data of write 2
# and one in the header of write 4.  After the next mount every later write
# is there, the damaged 4 KiB of write 2 and all of write 4 read EIO (never
# the template's older bytes), nothing is cut aside, and hcowctl check
# reports the damage.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test

mount_fs -o checkpoint_ms=3600000	# the writes stay in the log, to be replayed
ctl create a.img --template base.img --size 8M >/dev/null
python3 - "$M/a.img" <<'PY'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 65536)
for i in range(8):
    buf[:] = bytes([i + 1]) * 65536
    os.pwritev(fd, [buf], i * 65536)
    os.fsync(fd)
PY
s=$(supervisor_pid)
w=$(worker_pid)
kill -KILL "$s" "$w"
wait_for no_processes || fail "processes left after SIGKILL"

# change one byte of write 2's data (its block 1) and one of write 4's header
python3 - "$L" <<'PY' || fail "could not find the writes in the log"
import os, struct, sys
seg = sorted(f for f in os.listdir(sys.argv[1]) if f.endswith(".seg"))[-1]
path = os.path.join(sys.argv[1], seg)
data = open(path, "rb").read()
pos, found = 64, {}
while pos + 64 <= len(data):
    magic, typ, flags, seq, disk, off, length = struct.unpack_from("<IHHQQQQ", data, pos)
    if magic != 0x43455248:
        break
    if typ == 1 and length == 65536:
        found[off // 65536] = pos
    pos += 64 + (4 * ((length + 4095) // 4096) + length if typ == 1 else 0)
assert sorted(found) == list(range(8)), found
with open(path, "r+b") as f:
    for at in (found[1] + 64 + 64 + 4096 + 100, found[3] + 17):
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0xff]))
PY

mount_fs
got=$(python3 - "$M/a.img" <<'PY'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
bad = []
for b in range(8 * 16):
    try:
        if os.preadv(fd, [buf], b * 4096) != 4096 or buf[:] != bytes([b // 16 + 1]) * 4096:
            bad.append(f"W@{b}")
    except OSError:
        bad.append(f"E@{b}")
print(" ".join(bad) or "all-right")
PY
)
want="E@17 $(for b in $(seq 48 63); do printf 'E@%d ' "$b"; done)"
[ "$got" = "${want% }" ] || fail "reads give '$got', want '${want% }'"
ok "every fsync'd write after the damage is there; the damaged ranges read EIO"

ls "$L" | grep -q '\.cut-' && fail "records were cut aside: $(ls "$L")"
grep -q "was synced and is damaged since" "$D/hcowfs.log" || fail "no log line for the damage"
out=$(ctl check) && fail "check missed the damage: $out"
echo "$out" | grep -q "PROBLEM: disk 'a.img'" || fail "check: $out"
ok "nothing cut; the log and hcowctl check report the damage"
