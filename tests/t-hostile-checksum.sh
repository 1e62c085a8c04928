#!/bin/bash
# Proves: a flipped data byte in a log record that replay
# does not read again (in a segment before the checkpoint, or changed under a
# running mount) makes a read of that 4 KiB fail with EIO, and every other
# block still reads right.  Never the damaged bytes.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test

tbl=1024			# a 1 MiB record's crc table: 256 blocks x 4 bytes (fs/store/logfmt.h)
rec=$((MiB + 64 + tbl))
OPTS="-o segment_size=16M"
mount_fs $OPTS
ctl create a.img --template base.img --size 64M >/dev/null
write_mib_blocks "$M/a.img" 40
umount_fs

# blocks: one letter per 4 KiB of the 40 MiB written, '.' right, 'E' EIO, 'W' wrong;
# prints the positions that are not '.', e.g. "E@771"
blocks() {
	python3 - "$M/a.img" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
import mmap
buf = mmap.mmap(-1, 4096)
bad = []
for b in range(40 * 256):
    want = bytes([b // 256 + 1]) * 4096
    try:
        n = os.preadv(fd, [buf], b * 4096)
        if n != 4096 or buf[:] != want:
            bad.append(f"W@{b}")
    except OSError:
        bad.append(f"E@{b}")
print(" ".join(bad) or "all-right")
PY
}

failed=0
check() {	# check WHAT GOT WANT
	if [ "$2" = "$3" ]; then
		ok "$1: $2"
	else
		echo "not ok - $1: reads give '$2', want '$3'"
		failed=1
	fi
}

# 1. segment 1 (checkpointed, never replayed again): block 3, byte 5000 of its data
flip_at=$((64 + 3 * rec + 64 + tbl + 5000))
python3 -c 'import sys; f=open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x40]))' "$L/00000001.seg" $flip_at
mount_fs $OPTS
check "data byte flipped in a segment before the checkpoint" "$(blocks)" "E@$((3 * 256 + 1))"

# 2. while mounted: a byte of block 20 (segment 2) changes under the running worker
off=$((64 + 5 * rec + 64 + tbl + 8192 + 7))	# segment 2 holds blocks 15-29
python3 -c 'import sys; f=open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 1]))' "$L/00000002.seg" $off
check "data byte flipped under a running mount" "$(blocks)" "E@$((3 * 256 + 1)) E@$((20 * 256 + 2))"

[ $failed = 0 ] || fail "damaged log data was served, or good data refused"
