#!/bin/bash
# Proves: hcowctl check (live and offline) finds what is wrong with a store
# and says where; damage in the log is detected where it is read (EIO for
# the damaged 4 KiB block, correct bytes everywhere else, other disks
# untouched); --repair cuts a torn tail and nothing else; a check never
# changes a file.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch

D=$T/data
make_template base.img $((4 * 1048576))
make_template other.img $((1048576))
mount_fs
ctl create a.img --template base.img >/dev/null
ctl create b.img --template base.img >/dev/null
ctl create c.img --template other.img >/dev/null
cp "$T/tmpl/base.img" "$T/ref-a"
cp "$T/tmpl/base.img" "$T/ref-b"
$PATTERN mirror "$T/mnt/a.img" "$T/ref-a" --seed ca --ops 200 --max-len 20000 --fsync
$PATTERN mirror "$T/mnt/b.img" "$T/ref-b" --seed cb --ops 200 --max-len 20000 --fsync
# one 64 KiB write nothing overwrites later: the record damaged below
head -c 65536 /dev/urandom > "$T/w64k"
dd if="$T/w64k" of="$T/mnt/a.img" bs=65536 seek=16 oflag=direct conv=notrunc,fsync status=none
dd if="$T/w64k" of="$T/ref-a" bs=65536 seek=16 conv=notrunc status=none

out=$(ctl check) || fail "live check of a sound store failed: $out"
echo "$out" | grep -q "no problems found" || fail "live check: $out"
echo "$out" | grep -q "disk 'a.img': ok" || fail "live check does not report disk a.img: $out"
ok "live check of a sound store: no problems"

expect_fail "offline check of a mounted data dir is refused" "in use by a mount on $T/mnt" \
	"$HCOWCTL" check "$D"

umount_fs
sums() { find "$D" -type f ! -name lock ! -name hcowfs.log -exec md5sum {} + | sort; }
before=$(sums)
out=$("$HCOWCTL" check "$D") || fail "offline check of a sound store failed: $out"
echo "$out" | grep -q "template 'base.img': ok" || fail "offline check skipped the template: $out"
[ "$(sums)" = "$before" ] || fail "an offline check changed files"
ok "offline check of a sound store: no problems, no file changed"

# --- a torn tail: bytes after the last record, as a crash leaves them ----------
seg=$(ls "$D"/log/*.seg | tail -1)
# right after the last record: the segment may be zero-filled beyond it
head -c 3000 /dev/urandom | dd of="$seg" bs=1 seek="$(log_end "$seg")" conv=notrunc status=none
before=$(sums)
expect_fail "offline check finds a torn tail" "torn tail" "$HCOWCTL" check "$D"
[ "$(sums)" = "$before" ] || fail "check without --repair changed files"
out=$("$HCOWCTL" check --repair "$D" 2>&1) || fail "repair of a torn tail failed: $out"
echo "$out" | grep -q "no problems found" || fail "after repair: $out"
ok "check --repair cut the torn tail: $(echo "$out" | grep -c PROBLEM) problems left"

# --- a flipped bit in a record of a.img ------------------------------------------
# find the 64 KiB WRITE record at 1 MiB of a.img (disk id 1) and flip a bit in its second block
where=$(python3 - "$D/log" <<'EOF'
import os, struct, sys
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    if not name.endswith(".seg"):
        continue
    data = open(os.path.join(d, name), "rb").read()
    pos = 64
    while pos + 64 <= len(data):
        magic, typ, flags, seq, disk, off, length = struct.unpack_from("<IHHQQQQ", data, pos)
        if magic != 0x43455248:
            break
        nblk = (length + 4095) // 4096 if typ == 1 else 0
        if typ == 1 and disk == 1 and off == 1048576 and length == 65536:
            start = pos + 64 + 4 * nblk
            print(os.path.join(d, name), start + 5000, off, length)
            sys.exit(0)
        pos += 64 + (4 * nblk + length if typ == 1 else 0)
sys.exit(1)
EOF
) || fail "no 64 KiB WRITE record of a.img at 1 MiB in the log"
set -- $where
file=$1 at=$2 doff=$3 dlen=$4
python3 -c "
import sys; f = open('$file', 'r+b'); f.seek($at); b = f.read(1); f.seek($at); f.write(bytes([b[0] ^ 0x40]))"
bad_start=$((doff + 4096))		# the data's second 4 KiB block holds byte 5000
out=$("$HCOWCTL" check "$D") && fail "offline check missed a flipped data bit: $out"
echo "$out" | grep -q "PROBLEM: disk 'a.img': bytes $bad_start\.\." ||
	fail "offline check does not name the damaged range (from $bad_start): $out"
echo "$out" | grep -q "disk 'b.img': ok" || fail "offline check blames b.img too: $out"
ok "offline check names the damaged range of a.img, b.img ok"

out=$("$HCOWCTL" check --repair "$D" 2>&1) && fail "repair claims to fix a flipped bit: $out"
echo "$out" | grep -q "could not fix" || fail "repair does not say what it could not fix: $out"
ok "check --repair leaves damaged data alone and says so"

mount_fs
# the damaged block: EIO, whether read alone or as part of a larger read
expect_fail "reading the damaged block" "Input/output error" \
	dd if="$T/mnt/a.img" of=/dev/null bs=4096 skip=$((bad_start / 4096)) count=1 iflag=direct status=none
expect_fail "a 64 KiB read over the damaged block" "Input/output error" \
	dd if="$T/mnt/a.img" of=/dev/null bs=65536 skip=16 count=1 iflag=direct status=none
python3 - "$T/mnt/a.img" "$T/ref-a" "$bad_start" "$doff" "$dlen" <<'EOF' || fail "bytes outside the damaged block differ"
import os, sys
disk, ref, bad, doff, dlen = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
fd = os.open(disk, os.O_RDONLY)
r = open(ref, "rb").read()
size = len(r)
step = 4096
checked = 0
# every 4 KiB of the disk, the damaged block's neighbours in the same record included
for off in range(0, size, step):
    n = min(step, size - off)
    try:
        got = os.pread(fd, n, off)
    except OSError as e:
        if off == bad:
            continue
        sys.exit("read at %d failed: %s" % (off, e))
    if off == bad:
        sys.exit("the damaged block at %d read without an error" % off)
    if got != r[off:off + n]:
        sys.exit("bytes at %d differ" % off)
    checked += n
print("checked", checked, "bytes")
EOF
$PATTERN compare "$T/mnt/b.img" "$T/ref-b" || fail "b.img differs"
grep -q "disk 'a.img': cannot read bytes .* data block checksum mismatch" "$D/hcowfs.log" ||
	fail "the worker did not log the damaged read"
ok "damaged block: EIO and a log line; the rest of a.img and all of b.img read correctly"

out=$(ctl check) && fail "live check missed the flipped bit: $out"
echo "$out" | grep -q "PROBLEM: disk 'a.img'" || fail "live check: $out"
ok "live check reports the damage too"

# --- a template modified in place while mounted -------------------------------------
dd if="$T/mnt/b.img" of=/dev/null bs=4096 skip=1000 count=1 iflag=direct status=none ||
	fail "b.img unreadable before the template changed"
printf 'X' | dd of="$T/tmpl/base.img" bs=1 seek=1000 conv=notrunc status=none
b_fails() { ! dd if="$T/mnt/b.img" of=/dev/null bs=4096 skip=1000 count=1 iflag=direct status=none; }
wait_for b_fails || fail "b.img still serves after its template was modified in place"
grep -q "template 'base.img' changed since its disks were cloned (it was modified); its disks refuse I/O from now on" "$D/hcowfs.log" || fail "no log line for the change"
cmp -s "$T/mnt/c.img" "$T/tmpl/other.img" || fail "c.img (another template) stopped serving"
ok "template modified while mounted: its disks refuse I/O, other disks serve"
umount_fs

# --- the template changed after cloning (above), seen offline -----------------------
out=$("$HCOWCTL" check "$D") && fail "check missed a changed template: $out"
echo "$out" | grep -q "template 'base.img' changed since its disks were cloned" ||
	fail "check does not explain the template change: $out"
ok "offline check: template changed since cloning"

# --- a damaged catalog ------------------------------------------------------------
cp "$D/catalog.db" "$T/catalog.bak"
# every page but the first (the header) overwritten: the tables are gone
python3 -c "
import os
f = open('$D/catalog.db', 'r+b'); n = os.path.getsize('$D/catalog.db'); f.seek(4096); f.write(b'\xa5' * (n - 4096))"
before=$(sums)
out=$("$HCOWCTL" check "$D") && fail "check missed a damaged catalog: $out"
echo "$out" | grep -qiE "PROBLEM: (catalog|cannot open)" || fail "check: $out"
[ "$(sums)" = "$before" ] || fail "checking a damaged catalog changed files"
ok "offline check: damaged catalog reported, nothing changed ($(echo "$out" | grep -m1 PROBLEM | cut -c1-100))"
