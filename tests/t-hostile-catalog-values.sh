#!/bin/bash
# Proves: a catalog whose disk, template or meta values no hcowfs writes
# (an id <= 0, a name with a slash, a size past the largest disk, a
# checkpoint position that is not a number) is refused by mount.hcowfs and
# by hcowctl check with a one-line error naming the row, never a hang or a
# crash.  And: a catalog whose extent rows were changed
# in a way SQLite cannot see (a flipped bit in an laddr or loff value, a
# structurally valid page) is refused at mount or answers EIO for the ranges
# it misplaces; it never serves another range's bytes.  t-hostile-store.sh
# shows that SQLite catches damaged pages; values inside valid pages need
# the log's own checks (an extent's log address must land inside a record
# of its disk, at its offset, with matching checksums).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test sqlite3

mount_fs
ctl create a.img --template base.img --size 16M >/dev/null
write_mib_blocks "$M/a.img" 8
umount_fs
cp -a "$D" "$T/pristine"
rows=$(sqlite3 "$D/catalog.db" "select count(*) from extents where disk_id = 1")
[ "$rows" -ge 8 ] || fail "expected at least 8 extent rows, found $rows"

# blocks: per MiB block, '.' right, 'E' EIO or short, 'W' wrong bytes; blocks
# 8-15 were never written and read as zeros
blocks() {
	python3 - "$M/a.img" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
out = ""
for i in range(16):
    try:
        b = os.pread(fd, 1 << 20, i << 20)
        want = bytes([i + 1]) * (1 << 20) if i < 8 else bytes(1 << 20)
        out += "." if b == want else ("E" if len(b) < (1 << 20) else "W")
    except OSError:
        out += "E"
print(out)
PY
}

failed=0
for change in "laddr = laddr + 4096" "laddr = laddr + 1048640" "laddr = laddr - 64" \
	"laddr = laddr | 2199023255552" "loff = loff + 9437184" "len = len + 1048576"; do
	rm -rf "$D"
	cp -a "$T/pristine" "$D"
	# the row of block 3 (the one starting at 3 MiB); block 4's row follows it
	sqlite3 "$D/catalog.db" "update extents set $change where disk_id = 1 and loff = $((3 * MiB))"
	if out=$("$MOUNT_HCOWFS" "$T/tmpl" "$D" "$M" 2>&1); then
		MOUNTED=$M
		r=$(blocks)
		umount_fs
		case $r in
		*W*) echo "not ok - extent row changed ($change): served wrong bytes: $r"; failed=1 ;;
		*) ok "extent row changed ($change): $r" ;;
		esac
	else
		ok "extent row changed ($change): refused: $out"
	fi
done
[ $failed = 0 ] || fail "a catalog with changed extent values served wrong bytes"

# reseal_extents DB: recompute every extent row's crc (crc32c of its four values)
reseal_extents() {
	python3 - "$1" <<'PY'
import sqlite3, struct, sys
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)
def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
db = sqlite3.connect(sys.argv[1])
for row in db.execute("select disk_id, loff, len, laddr from extents").fetchall():
    v = struct.pack("<QQQQ", *[x & (2**64 - 1) for x in row])
    db.execute("update extents set crc = ? where disk_id = ? and loff = ?", (crc32c(v), row[0], row[1]))
db.commit()
PY
}

# values SQLite accepts but no hcowfs writes; a refusal must come quickly
# (before the fix a disk id <= 0 made the disk table loop forever)
for change in "update disks set id = -1 where id = 1" "update disks set id = 0 where id = 1" \
	"update disks set name = '../a.img' where id = 1" \
	"update disks set size = 1 << 62 where id = 1" \
	"update disks set template_id = -5 where id = 1" \
	"update templates set name = '../../etc/passwd'" "update templates set name = ''" \
	"update templates set id = -3; update disks set template_id = -3" \
	"update meta set value = 'x12' where key = 'checkpoint_laddr'" \
	"update extents set len = 0 where disk_id = 1 and loff = 0" \
	"update extents set laddr = -7 where disk_id = 1 and loff = 0"; do
	rm -rf "$D"
	cp -a "$T/pristine" "$D"
	sqlite3 "$D/catalog.db" "$change"
	# an extent row changed with its checksum recomputed: its values are checked too
	case $change in *extents*) reseal_extents "$D/catalog.db" ;; esac
	if out=$(timeout 30 "$MOUNT_HCOWFS" "$T/tmpl" "$D" "$M" 2>&1); then
		MOUNTED=$M
		umount_fs
		fail "catalog changed ($change): mounted"
	fi
	[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "catalog changed ($change): not one line: $out"
	echo "$out" | grep -q "out of range\|not a number\|fails its checksum" ||
		fail "catalog changed ($change): mount refused it but did not say why: $out"
	ok "catalog changed ($change): mount refused: $out"
	rc=0
	out=$(timeout 30 "$HCOWCTL" check "$D" 2>&1) || rc=$?
	[ $rc = 1 ] || fail "catalog changed ($change): check exited $rc: $out"
	echo "$out" | grep -q "out of range\|not a number\|fails its checksum" ||
		fail "catalog changed ($change): check did not say why: $out"
	ok "catalog changed ($change): check refused it"
done
