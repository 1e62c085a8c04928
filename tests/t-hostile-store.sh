#!/bin/bash
# Proves: a damaged store is refused with a clear message and left as it
# was, or served correctly; never served with wrong bytes.  Covers the
# catalog (emptied, truncated, garbage, wrong schema_version, damaged pages),
# the index (missing, emptied, truncated, garbage, damaged pages),
# the log (torn and damaged tail after the checkpoint, truncated and damaged
# segments before it, damaged segment headers, a missing old segment) and a data
# dir on a read-only file system.  Damaged log *data* before the checkpoint
# is t-hostile-checksum.sh's (it needs read-time checksums).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test sqlite3

OPTS="-o segment_size=16M,checkpoint_ms=3600000"

# The store under test: disk a.img, 40 MiB written in 1 MiB records (block i
# = byte i+1) over segments 1-3 and checkpointed; then, after the checkpoint,
# 8 records of 64 KiB at 48 MiB (byte 100+j), fsync'd; then both processes
# killed, so the tail is only in the log.
mount_fs $OPTS
ctl create a.img --template base.img --size 64M >/dev/null
write_mib_blocks "$M/a.img" 40
umount_fs
mount_fs $OPTS
python3 - "$M/a.img" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for j in range(8):
    os.pwrite(fd, bytes([100 + j]) * 65536, (48 << 20) + j * 65536)
os.fsync(fd)
PY
for p in $(our_pids); do kill -KILL "$p"; done
sleep 0.3
umount -l "$M" 2>/dev/null || true
MOUNTED=
[ "$(ls "$L")" = "$(printf '00000001.seg\n00000002.seg\n00000003.seg')" ] || fail "unexpected segments: $(ls "$L")"
cp -a "$D" "$T/pristine"

# Each case starts from the pristine store: the files that differ from it
# (size or mtime: the copy keeps the original mtime) are copied back, the
# others removed; copying all 40 MiB each time would double the test's time.
restore() {
	(cd "$T/pristine" && find . -type f) | while read -r f; do
		[ "$(stat -c '%s %y' "$D/$f" 2>/dev/null)" = "$(stat -c '%s %y' "$T/pristine/$f")" ] ||
			cp -a "$T/pristine/$f" "$D/$f"
	done
	(cd "$D" && find . -type f) | while read -r f; do
		[ -e "$T/pristine/$f" ] || rm -f "$D/$f"
	done
}
# the bytes of every file of the store, to prove a refused mount changed nothing
store_sums() { (cd "$D" && find . -type f ! -name hcowfs.log ! -name lock ! -name '*-shm' ! -name '*-wal' | sort | xargs sha256sum); }
# flip BYTE-OFFSET FILE: invert one byte
flip() { python3 -c 'import sys; f=open(sys.argv[2], "r+b"); f.seek(int(sys.argv[1])); b=f.read(1); f.seek(int(sys.argv[1])); f.write(bytes([b[0] ^ 0xff]))' "$1" "$2"; }

# expect_refused WHAT PATTERN: mount fails with a message matching PATTERN; nothing changed
expect_refused() {
	before=$(store_sums)
	if out=$("$MOUNT_HCOWFS" "$T/tmpl" "$D" "$M" $OPTS 2>&1); then
		MOUNTED=$M
		fail "$1: mounted, but should have been refused"
	fi
	echo "$out" | grep -qiE -- "$2" || fail "$1: message '$out' does not match '$2'"
	is_mounted "$M" && fail "$1: a refused mount left a mount behind"
	[ "$(store_sums)" = "$before" ] || fail "$1: the refused mount changed the store"
	ok "$1: refused, store unchanged: $out"
}

# map: mount, read every block of a.img, print one letter per block:
# 40 1 MiB blocks, '|', 8 64 KiB tail blocks.  '.' right, 'E' EIO (or a
# short read), 'o' the content before the write (template or zeros), 'W' wrong.
map() {
	"$MOUNT_HCOWFS" "$T/tmpl" "$D" "$M" $OPTS || fail "$1: mount failed"
	MOUNTED=$M
	read_map
	umount "$M"
	MOUNTED=
	# the worker writes its final checkpoint after the unmount: the next
	# restore must not race it (a late write showed as "the refused mount
	# changed the store" in the check that follows)
	wait_for no_processes || fail "$1: processes left after umount: $(pgrep -af -- "$T/")"
}
# read_map: the same on the mounted store
read_map() {
	python3 - "$M/a.img" "$T/tmpl/base.img" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
tmpl = open(sys.argv[2], "rb").read()
def old(off, n):
    b = tmpl[off:off + n]
    return b + bytes(n - len(b))
def probe(off, n, want):
    try:
        if os.pread(fd, n, off) == want:
            return "."
    except OSError:
        pass
    # then per 4 KiB, so that one damaged block shows as E, not the whole read
    res = "."
    for o in range(off, off + n, 4096):
        try:
            got = os.pread(fd, 4096, o)
        except OSError:
            return "E"
        w = want[o - off:o - off + 4096]
        if len(got) < 4096:
            return "E"
        if got != w:
            res = "o" if got == old(o, 4096) else "W"
            if res == "W":
                return res
    return res
out = [probe(i << 20, 1 << 20, bytes([i + 1]) * (1 << 20)) for i in range(40)] + ["|"]
out += [probe((48 << 20) + j * 65536, 65536, bytes([100 + j]) * 65536) for j in range(8)]
print("".join(out))
PY
}
ALL="........................................|........"
# mount_damaged WHAT: mount the damaged store; if it mounts, read every block
# into r and unmount (0); if it is refused, the message is in out (1)
mount_damaged() {
	if out=$("$MOUNT_HCOWFS" "$T/tmpl" "$D" "$M" $OPTS 2>&1); then
		MOUNTED=$M
		r=$(read_map)
		umount "$M"
		MOUNTED=
		wait_for no_processes || fail "$1: processes left after umount"
		return 0
	fi
	return 1
}

restore
[ "$(map pristine)" = "$ALL" ] || fail "the pristine store does not read back"
ok "pristine store: 40 checkpointed blocks and 8 tail records read back"

# ---- catalog -------------------------------------------------------------
restore
: > "$D/catalog.db"
expect_refused "empty catalog" "not an hcowfs catalog"
restore
truncate -s $(( $(stat -c %s "$D/catalog.db") / 2 )) "$D/catalog.db"
expect_refused "catalog cut in half" "malformed|not usable|not an hcowfs"
restore
head -c "$(stat -c %s "$D/catalog.db")" /dev/urandom > "$D/catalog.db"
expect_refused "catalog replaced by garbage" "not a database"
restore
sqlite3 "$D/catalog.db" "update meta set value = '99' where key = 'schema_version'"
expect_refused "catalog of another schema version" "schema version 99"
restore
sqlite3 "$D/catalog.db" "delete from meta where key = 'store_uuid'"
expect_refused "catalog without its store id" "store_uuid"
restore
sqlite3 "$D/catalog.db" "update meta set value = '12' where key = 'store_uuid'"
expect_refused "catalog with a malformed store id" "malformed"
restore
sqlite3 "$D/catalog.db" "update meta set value = '00112233445566778899aabbccddeeff' where key = 'store_uuid'"
expect_refused "catalog of another store" "belongs to another store"
restore
sqlite3 "$D/catalog.db" "drop table disks"
expect_refused "catalog without the disks table" "does not match the schema|no such table"
# A damaged b-tree page: flip the page-type byte of every page after the
# first, one at a time.  Each must be refused or read back right.
pages=$(( $(stat -c %s "$T/pristine/catalog.db") / 4096 ))
refused=0 served=0
for p in $(seq 1 $((pages - 1))); do
	restore
	flip $((p * 4096)) "$D/catalog.db"
	before=$(store_sums)
	if mount_damaged "catalog page $p"; then
		[ "$r" = "$ALL" ] || fail "catalog page $p damaged: served, but reads give $r"
		served=$((served + 1))
	else
		echo "$out" | grep -qiE "malformed|not an hcowfs|refers to|not usable|does not match" ||
			fail "catalog page $p damaged: unclear message '$out'"
		[ "$(store_sums)" = "$before" ] || fail "catalog page $p damaged: the refused mount changed the store"
		refused=$((refused + 1))
	fi
done
ok "catalog pages damaged one at a time: $refused refused, $served served correctly"

# ---- index ----------------------------------------------------------------
restore
rm "$D/index"
expect_refused "store without its index" "index .* is missing"
restore
: > "$D/index"
expect_refused "empty index" "index"
restore
truncate -s 8192 "$D/index"
expect_refused "index cut to its meta pages" "index .* truncated"
# cut in half: the file is grown ahead of its pages in use, so the cut may
# take only unused room: then it must serve every block right
restore
truncate -s $(( $(stat -c %s "$D/index") / 2 )) "$D/index"
if mount_damaged "index cut in half"; then
	[ "$r" = "$ALL" ] || fail "index cut in half: served, but reads give $r"
	ok "index cut in half: only unused room was cut; served right"
else
	echo "$out" | grep -q "truncated" || fail "index cut in half: unclear message '$out'"
	ok "index cut in half: refused: $out"
fi
restore
head -c "$(stat -c %s "$D/index")" /dev/urandom > "$D/index"
expect_refused "index replaced by garbage" "index"
# A flipped byte in each page, one at a time (in the meta fields, a node's
# header or its first entries): refused, or every block reads right or EIO,
# never old or wrong bytes; the second meta page stands in for a damaged one.
pages=$(python3 "$top_srcdir/tests/indexfile.py" "$T/pristine/index" pages)	# in use; room follows
refused=0 served=0
for p in $(seq 0 $((pages - 1))); do
	for at in 12 40; do
		restore
		flip $((p * 4096 + at)) "$D/index"
		before=$(store_sums)
		if mount_damaged "index page $p"; then
			case $r in
			*[oW]*) fail "index page $p byte $at damaged: served, but reads give $r" ;;
			esac
			served=$((served + 1))
		else
			echo "$out" | grep -qi "index" || fail "index page $p damaged: unclear message '$out'"
			[ "$(store_sums)" = "$before" ] || fail "index page $p damaged: the refused mount changed the store"
			refused=$((refused + 1))
		fi
	done
done
ok "index pages damaged one at a time ($pages pages, 2 bytes each): $refused refused, $served served with no wrong bytes"

# ---- log: the tail after the checkpoint ------------------------------------
rec=$((65536 + 64 + 64))		# header, crc table (16 blocks x 4 bytes), 64 KiB of data
restore
size3=$(log_end "$L/00000003.seg")	# the records' end, zeros may follow
truncate -s $((size3 - 30000)) "$L/00000003.seg"
r=$(map "torn tail")
[ "$r" = "........................................|.......o" ] || fail "torn tail: reads give $r"
# 30000 bytes gone from the last record: the rest of it is cut
grep -q "cutting $((rec - 30000)) bytes of torn tail" "$D/hcowfs.log" || fail "torn tail: the cut is not logged"
ok "tail record cut short: cut off at mount (logged), everything before it intact"

# A damaged record in the tail with whole records after it: the log cannot
# tell it from a torn tail (after a power cut, writeback order is arbitrary),
# so it is cut there, and the cut bytes are kept, byte-identical.
for what in data header; do
	restore
	at=$((size3 - 4 * rec))			# record 5 of the 8 tail records
	[ $what = data ] && at=$((at + 64 + 64 + 1000))
	flip $((at + 8)) "$L/00000003.seg"
	cut_from=$((size3 - 4 * rec))
	dd if="$L/00000003.seg" of="$T/tail.orig" bs=1 skip=$cut_from count=$((4 * rec)) status=none
	r=$(map "tail $what")
	case $r in
	........................................\|....[oE][oE][oE][oE]) ;;
	*) fail "damaged tail record ($what): reads give $r" ;;
	esac
	kept=$(printf '%s/00000003.seg.cut-%x' "$L" $cut_from)
	[ -f "$kept" ] || fail "damaged tail record ($what): the cut bytes were not kept ($(ls "$L"))"
	cmp "$kept" "$T/tail.orig" >&2 || fail "damaged tail record ($what): the kept bytes differ"
	ok "damaged tail record ($what): records before it intact, it and the 3 after it cut ($r), kept in $(basename "$kept")"
done

# ---- log: segments before the checkpoint -------------------------------------
restore
truncate -s 10000000 "$L/00000002.seg"	# segment 2 holds blocks 15-29
r=$(map "old segment cut")
[ "$r" = "........................................|........" ] && fail "old segment cut: reads give all right"
case $r in
........................EEEEEE..........\|........) ;;
*) fail "old segment cut short: reads give $r (want EIO for blocks 24-29 only)" ;;
esac
grep -q "cannot read bytes .* from log record" "$D/hcowfs.log" || fail "old segment cut: not logged"
ok "segment before the checkpoint cut short: EIO for the lost blocks only ($r)"

restore
flip 20 "$L/00000002.seg"
expect_refused "damaged header of an old segment" "00000002.seg: header checksum mismatch"
restore
flip 20 "$L/00000003.seg"
expect_refused "damaged header of the newest segment (holding records)" "00000003.seg: header checksum mismatch.*holds records, so it is damaged"
restore
# released segments leave gaps below the checkpoint, so a missing one there is
# not refused: what pointed into it reads EIO and check names it
mv "$L/00000002.seg" "$T/seg2"
r=$(map "missing old segment")
case $r in
...............EEEEEEEEEEEEEEE..........\|........) ;;
*) fail "missing old segment: reads give $r (want EIO for blocks 15-29 only)" ;;
esac
out=$("$HCOWCTL" check "$D" 2>&1) && fail "missing old segment: check found nothing: $out"
echo "$out" | grep -q "names no segment" || fail "missing old segment: check says: $out"
ok "segment before the checkpoint missing: EIO for its blocks only ($r), check reports them"
restore
dd if=/dev/zero of="$L/00000001.seg" bs=64 count=1 conv=notrunc status=none
expect_refused "zeroed header of the first segment" "00000001.seg: bad magic"

# ---- a data dir on a read-only file system -----------------------------------
restore
mkdir "$T/ro"
mount --bind "$D" "$T/ro"
MOUNTED="$T/ro"
mount -o remount,ro,bind "$T/ro"
before=$(store_sums)
# shellcheck disable=SC2086
if out=$("$MOUNT_HCOWFS" "$T/tmpl" "$T/ro" "$M" 2>&1); then
	MOUNTED="$M $T/ro"
	fail "data dir on a read-only file system: mounted read-write"
fi
echo "$out" | grep -q "is not writable: Read-only file system" ||
	fail "data dir on a read-only file system: unclear message '$out'"
ok "data dir on a read-only file system: refused read-write: $out"
# -o ro serves it: a snapshot of the HDD or a read-only medium can be inspected
"$MOUNT_HCOWFS" "$T/tmpl" "$T/ro" "$M" -o ro 2>"$T/ro-err" ||
	fail "data dir on a read-only file system (-o ro): refused: $(cat "$T/ro-err")"
MOUNTED="$M $T/ro"
r=$(read_map)
[ "$r" = "$ALL" ] || fail "read-only mount of a read-only data dir serves $r"
"$HCOWCTL" -m "$M" list | grep -q a.img || fail "read-only mount: hcowctl list does not show a.img"
expect_fail "write on the read-only mount" "read-only" dd if=/dev/zero of="$M/a.img" bs=4096 count=1 conv=notrunc status=none
expect_fail "create on the read-only mount" "read-?only" "$HCOWCTL" -m "$M" create b.img --template base.img
umount "$M"
MOUNTED="$T/ro"
wait_for no_processes || fail "processes left after umount: $(pgrep -af -- "$T/")"
ok "data dir on a read-only file system (-o ro): served all blocks read-only ($r)"
[ "$(store_sums)" = "$before" ] || fail "the read-only attempt changed the store"
