#!/bin/bash
# Proves: a catalog whose disk, template or meta values no hcowfs writes
# (an id <= 0, a name with a slash, a size past the largest disk, a
# checkpoint position that is not a number) is refused by mount.hcowfs and
# by hcowctl check with a one-line error naming the row, never a hang or a
# crash.  And: an index whose extents were changed in a way its page
# checksums cannot see (a value changed and the page's crc recomputed) is
# refused at mount or answers EIO for the ranges it misplaces; it never
# serves another range's bytes, never hangs, and hcowctl check names the
# damage.  Readers do not verify index pages (that would cost the hot path
# a crc per page); values inside them need the log's own checks (an
# extent's log address must land inside a record of its disk, at its
# offset, with matching checksums) and the order checks of the walk.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test sqlite3
INDEXFILE="python3 $top_srcdir/tests/indexfile.py"

mount_fs
ctl create a.img --template base.img --size 16M >/dev/null
write_mib_blocks "$M/a.img" 8
umount_fs
cp -a "$D" "$T/pristine"
rows=$($INDEXFILE "$D/index" extents 1 | wc -l)
[ "$rows" -ge 8 ] || fail "expected at least 8 extents in the index, found $rows"

# blocks: per MiB block, '.' right, 'E' EIO or short, 'W' wrong bytes; blocks
# 8-15 were never written and read as zeros; "hang" if the reads did not end
blocks() {
	timeout 60 python3 - "$M/a.img" <<'PY' || echo hang
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
for change in "laddr laddr+4096" "laddr laddr+1048640" "laddr laddr-64" \
	"laddr laddr|2199023255552" "loff loff+9437184" "len len+1048576" "len 0" "laddr -7" \
	"loff loff-1048576"; do
	rm -rf "$D"
	cp -a "$T/pristine" "$D"
	# the extent of block 3 (the one starting at 3 MiB); block 4's follows it
	# shellcheck disable=SC2086
	$INDEXFILE "$D/index" change 1 $((3 * MiB)) $change || fail "cannot change the index"
	if out=$(timeout 60 "$MOUNT_HCOWFS" "$T/tmpl" "$D" "$M" 2>&1); then
		MOUNTED=$M
		r=$(blocks)
		umount_fs
		case $r in
		*W*|hang) echo "not ok - index extent changed ($change): $r"; failed=1 ;;
		*) ok "index extent changed ($change): $r" ;;
		esac
	else
		ok "index extent changed ($change): refused: $out"
	fi
	rc=0
	out=$(timeout 60 "$HCOWCTL" check "$D" 2>&1) || rc=$?
	if [ $rc != 1 ] || ! echo "$out" | grep -q "PROBLEM"; then
		echo "not ok - index extent changed ($change): check exited $rc: $out"
		failed=1
	else
		ok "index extent changed ($change): check says: $(echo "$out" | grep -m1 PROBLEM)"
	fi
done
# the same change without recomputing the checksum: check finds the page
rm -rf "$D"
cp -a "$T/pristine" "$D"
$INDEXFILE "$D/index" change 1 $((3 * MiB)) laddr laddr+4096 --no-reseal
out=$("$HCOWCTL" check "$D" 2>&1) && fail "check passed an index page that fails its checksum"
echo "$out" | grep -q "PROBLEM: index" || fail "check did not name the index: $out"
ok "an index page that fails its checksum: $(echo "$out" | grep -m1 "PROBLEM: index")"
[ $failed = 0 ] || fail "an index with changed extent values served wrong bytes, hung, or passed check"

# values SQLite accepts but no hcowfs writes; a refusal must come quickly
# (before the fix a disk id <= 0 made the disk table loop forever)
for change in "update disks set id = -1 where id = 1" "update disks set id = 0 where id = 1" \
	"update disks set name = '../a.img' where id = 1" \
	"update disks set size = 1 << 62 where id = 1" \
	"update disks set template_id = -5 where id = 1" \
	"update templates set name = '../../etc/passwd'" "update templates set name = ''" \
	"update templates set id = -3; update disks set template_id = -3" \
	"update meta set value = 'x12' where key = 'checkpoint_laddr'"; do
	rm -rf "$D"
	cp -a "$T/pristine" "$D"
	sqlite3 "$D/catalog.db" "$change"
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
