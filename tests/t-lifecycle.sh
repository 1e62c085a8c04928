#!/bin/bash
# Proves snapshots, clones and rollback (issue 12) through real clients:
#  1. a snapshot reads as the disk did when it was taken (writes, a discard, a
#     grow before it), and keeps doing so while the disk is rewritten; it is
#     read-only (each way of changing it fails with EROFS or EPERM), hidden
#     from the root's listing, and `snapshots --json` says what it alone holds;
#  2. a backup copied from .snapshots while fio writes the disk is the
#     snapshot's content;
#  3. clones of a snapshot and of a disk are writable and independent; the
#     100th of a chain of clones reads every write of the chain; check is clean;
#  4. rollback is refused while the disk is open (nothing changes), then makes
#     the disk, size included, read as the snapshot through the page cache;
#  5. a disk with snapshots cannot be deleted; its clones outlive it; a
#     snapshot in use (open, a backup reading it) cannot be deleted; a renamed disk keeps its
#     snapshots; deleting a snapshot whose data the disk overwrote gives the
#     log space back;
#  6. worker restart and kill, remount, and killing everything keep every
#     disk, clone and snapshot as it was;
#  7. bad input: one line on stderr, exit 1, nothing changed;
#  8. an export of DISK@SNAP equals the snapshot.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test fallocate cmp
LC="python3 $top_srcdir/tests/lifecycle.py"
S=$M/.snapshots
export TMPDIR=$T	# hcowctl export's mount points: cleanup finds their daemons by $T

# optional TOOL...: 0 if every TOOL is here; else a note (a failure under CI) and 1
optional() {
	for t in "$@"; do
		if ! command -v "$t" >/dev/null; then
			[ "${CI:-}" = true ] && fail "$t is not installed (CI must install it)"
			echo "# $t is missing: part of this test skipped"
			return 1
		fi
	done
}


# raw_equal A B: same bytes, by cmp, and by qemu-img where it is installed
raw_equal() {
	cmp "$1" "$2" || return 1
	if command -v qemu-img >/dev/null; then
		qemu-img compare -q -f raw -F raw "$1" "$2" || return 1
	fi
}

# snap_field DISK@SNAP EXPR: a field of `snapshots --json`, by python expression on s
snap_field() {
	ctl snapshots --json | python3 -c "
import json, sys
s = [x for x in json.load(sys.stdin) if x['name'] == '$1'][0]
print($2)"
}

# sums: each disk, clone and snapshot with its size and a digest, sorted
sums() {
	(cd "$M" && for f in * .snapshots/*; do
		[ -f "$f" ] && echo "$f $(stat -c %s "$f") $(md5sum < "$f" | cut -d' ' -f1)"
	done)
}

# the store's disks and snapshots (less their open counts, and extent counts
# that a checkpoint may merge), to see that a refused command changed nothing
state() {
	{ ctl list --json; echo; ctl snapshots --json; } | python3 -c "
import json, sys
for line in filter(str.strip, sys.stdin):
    print([{k: v for k, v in d.items() if k not in ('opens', 'extents')} for d in json.loads(line)])"
}

mount_fs -o segment_size=16M,checkpoint_ms=200

### 1. snapshot semantics
ctl create v.img --template base.img --size 8M >/dev/null
cp "$T/tmpl/base.img" "$T/v-ref"
truncate -s 8M "$T/v-ref"
$LC write "$M/v.img" "$T/v-ref" $((2 * MiB)) "$MiB" v1
$LC scatter "$M/v.img" "$T/v-ref" 40 v2
fallocate -p -o $((2 * MiB + 65536)) -l 131072 "$M/v.img"
fallocate -p -o $((2 * MiB + 65536)) -l 131072 "$T/v-ref"
truncate -s 12M "$M/v.img"
truncate -s 12M "$T/v-ref"
raw_equal "$M/v.img" "$T/v-ref" || fail "the disk differs from its reference before the snapshot"
cmp -n 131072 -i $((2 * MiB + 65536)):0 "$M/v.img" /dev/zero || fail "the discarded range is not zeros"
cp --sparse=always "$M/v.img" "$T/v-s1"
out=$(ctl snapshot v.img s1) || fail "snapshot: $out"
[ "$out" = "took snapshot 'v.img@s1' (12 MiB)" ] || fail "snapshot said: $out"
raw_equal "$S/v.img@s1" "$T/v-s1" || fail "the snapshot differs from the disk it was taken of"
[ "$(snap_field v.img@s1 '(s["snapshot"], s["size"], s["own_bytes"])')" = "('s1', 12582912, 0)" ] ||
	fail "snapshots --json right after the snapshot: $(ctl snapshots --json)"
snap_field v.img@s1 's["created"]' | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' ||
	fail "created is not a UTC time: $(ctl snapshots --json)"
ok "snapshot equals the disk (1 MiB + 40 x 4 KiB writes, a discard, a grow to 12 MiB); own_bytes 0"

# the disk rewritten over the snapshot's data and beyond it
$LC write "$M/v.img" "$T/v-ref" $((2 * MiB)) "$MiB" v3
$LC scatter "$M/v.img" "$T/v-ref" 40 v4
raw_equal "$M/v.img" "$T/v-ref" || fail "the disk does not read its new bytes"
raw_equal "$S/v.img@s1" "$T/v-s1" || fail "the snapshot changed when the disk was rewritten"
cmp -s "$M/v.img" "$S/v.img@s1" && fail "the disk reads as its snapshot after the rewrite"
own=$(snap_field v.img@s1 's["own_bytes"]')
# the snapshot's 1 MiB at 2 MiB less its 128 KiB discard, at least, is its alone now
[ "$own" -ge $((MiB - 131072)) ] && [ "$own" -le $((MiB + 40 * 4096)) ] ||
	fail "own_bytes $own after the disk overwrote 896 KiB of the snapshot's data and 40 blocks"
ok "after a rewrite the disk has the new bytes, the snapshot the old ($own bytes its own)"

ls -a "$M" | grep -q snapshots && fail "ls -a of the root lists .snapshots: $(ls -a "$M")"
[ "$(ls "$S")" = "v.img@s1" ] || fail ".snapshots lists: $(ls "$S")"
# every way of changing a snapshot fails with EROFS or EPERM
ro='Read-only file system|Operation not permitted'
expect_fail "write into a snapshot" "$ro" sh -c "echo x > '$S/v.img@s1'"
expect_fail "dd into a snapshot" "$ro" dd if=/dev/zero of="$S/v.img@s1" bs=4k count=1 conv=notrunc status=none
expect_fail "truncate of a snapshot" "$ro" truncate -s 1M "$S/v.img@s1"
expect_fail "chmod of a snapshot" "$ro" chmod 644 "$S/v.img@s1"
expect_fail "touch of a snapshot" "$ro" touch "$S/v.img@s1"
expect_fail "rm of a snapshot" "$ro" rm -f "$S/v.img@s1"
expect_fail "mv of a snapshot in .snapshots" "$ro" mv "$S/v.img@s1" "$S/x.img"
expect_fail "mv of a snapshot to the root" "$ro" mv "$S/v.img@s1" "$M/x.img"
expect_fail "mv of a disk into .snapshots" "$ro" mv "$M/v.img" "$S/v.img@s2"
expect_fail "a new file in .snapshots" "$ro" touch "$S/new.img"
expect_fail "a hard link of a snapshot" "$ro" ln "$S/v.img@s1" "$M/link.img"
expect_fail "punch a hole in a snapshot" "$ro" fallocate -p -o 0 -l 4096 "$S/v.img@s1"
expect_fail "rmdir .snapshots" "$ro" rmdir "$S"
expect_fail "open O_RDWR of a snapshot" "$ro" python3 -c "
import os, sys
try:
    os.open('$S/v.img@s1', os.O_RDWR)
except OSError as e:
    sys.exit(e.strerror)"
raw_equal "$S/v.img@s1" "$T/v-s1" || fail "a refused change changed the snapshot"
[ "$(ls "$M")" = "v.img" ] || fail "a refused change left a file: $(ls "$M")"
ok "snapshots are read-only, hidden from ls -a of the root"

### 2. a backup read from .snapshots while fio writes the disk
ctl snapshot v.img s2 >/dev/null || fail "snapshot s2"
cp --sparse=always "$S/v.img@s2" "$T/v-s2"
raw_equal "$T/v-s2" "$M/v.img" || fail "snapshot s2 differs from the disk"
if optional fio; then
	fio --name=guest --filename="$M/v.img" --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
	    --size=12M --time_based --runtime=4 --randrepeat=0 --output="$T/fio.out" >/dev/null &
	fio=$!
	sleep 1
	cp --sparse=always "$S/v.img@s2" "$T/backup-cp" || fail "cp of the snapshot"
	backup="cp"
	if command -v qemu-img >/dev/null; then
		qemu-img convert -f raw -O raw "$S/v.img@s2" "$T/backup-qemu" || fail "qemu-img convert of the snapshot"
		backup="cp and qemu-img convert"
	fi
	kill -0 $fio 2>/dev/null || fail "fio ended before the backup did: the copy did not run during the writes"
	wait $fio || fail "fio failed: $(cat "$T/fio.out")"
	raw_equal "$T/backup-cp" "$T/v-s2" || fail "the backup cp made during fio differs from the snapshot"
	[ ! -e "$T/backup-qemu" ] || raw_equal "$T/backup-qemu" "$T/v-s2" ||
		fail "the backup qemu-img convert made during fio differs from the snapshot"
	raw_equal "$S/v.img@s2" "$T/v-s2" || fail "the snapshot changed under fio"
	cmp -s "$M/v.img" "$T/v-s2" && fail "fio wrote nothing to the disk"
	cp "$M/v.img" "$T/v-ref"	# what fio left
	ok "a backup ($backup) of .snapshots made while fio wrote the disk is the snapshot"
fi

### 3. clones: of a snapshot, of a disk's present state; a chain of 100
ctl clone v.img@s1 c1.img >/dev/null || fail "clone of a snapshot"
ctl clone v.img c2.img >/dev/null || fail "clone of a disk"
cp "$T/v-s1" "$T/c1-ref"
cp "$T/v-ref" "$T/c2-ref"
raw_equal "$M/c1.img" "$T/c1-ref" || fail "the clone of v.img@s1 differs from the snapshot"
raw_equal "$M/c2.img" "$T/c2-ref" || fail "the clone of v.img differs from the disk"
$LC write "$M/c1.img" "$T/c1-ref" 0 65536 c1
$LC write "$M/c2.img" "$T/c2-ref" 65536 65536 c2
$LC write "$M/v.img" "$T/v-ref" 131072 65536 v5
$LC scatter "$M/c1.img" "$T/c1-ref" 20 c1b
$LC scatter "$M/c2.img" "$T/c2-ref" 20 c2b
for d in c1 c2 v; do raw_equal "$M/$d.img" "$T/$d-ref" || fail "$d.img: writes are not its own alone"; done
raw_equal "$S/v.img@s1" "$T/v-s1" || fail "a clone's write reached the snapshot it came from"
ok "clones of a snapshot and of a disk are writable and independent"

ctl create chain0.img --template base.img >/dev/null
$LC chain "$HCOWCTL" "$M" chain0.img 100 || fail "the chain of 100 clones"
out=$(ctl check) || fail "check after the chain: $out"
ok "a chain of 100 clones: the last reads every write of the chain; check is clean"

### 4. rollback
ctl create r.img --template base.img --size 4M >/dev/null
$LC write "$M/r.img" - $MiB "$MiB" r1
cp "$M/r.img" "$T/r-s"
ctl snapshot r.img s >/dev/null || fail "snapshot of r.img"
truncate -s 8M "$M/r.img"
$LC write "$M/r.img" - $MiB $((6 * MiB)) r2
cp "$M/r.img" "$T/r-now"
cat "$M/r.img" > /dev/null	# its pages in the kernel's cache
before=$(state)
exec 3<>"$M/r.img"
expect_fail "rollback while the disk is open" "r.img' is open; stop what uses it first" ctl rollback r.img s
exec 3>&-
state | diff <(echo "$before") - || fail "a refused rollback changed the store"
cmp "$M/r.img" "$T/r-now" || fail "a refused rollback changed the disk"
cat "$M/r.img" > /dev/null
# the kernel sends the release after close returns: retry while it is on its way
rollback_r() { out=$(ctl rollback r.img s 2>&1); }
wait_for rollback_r || fail "rollback after closing: $out"
echo "$out" | grep -q "^disk 'r.img' is as it was at snapshot 's'$" || fail "rollback said: $out"
[ "$(stat -c %s "$M/r.img")" = $((4 * MiB)) ] || fail "after rollback the size is $(stat -c %s "$M/r.img")"
cmp "$M/r.img" "$T/r-s" || fail "after rollback the disk (read through the page cache) is not the snapshot"
raw_equal "$S/r.img@s" "$T/r-s" || fail "the snapshot changed in the rollback"
$LC write "$M/r.img" - 0 65536 r3
raw_equal "$S/r.img@s" "$T/r-s" || fail "a write after the rollback reached the snapshot"
cp "$M/r.img" "$T/r-ref"
ok "rollback refused while open, then the disk and its size are the snapshot's; the snapshot stays"

# a replacement worker did not see the open: it asks the kernel, which also
# holds a disk's inode while it caches it (after any stat), open or not; the
# worker drops the kernel's name of the disk first, so only an open refuses
exec 3<>"$M/r.img"
ctl restart | grep -q "^restarted: worker" || fail "hcowctl restart with r.img open"
expect_fail "rollback while the disk is open, after a restart" "r.img' is open" ctl rollback r.img s
cmp "$M/r.img" "$T/r-ref" || fail "r.img changed in the refused rollback"
exec 3>&-
stat "$M/r.img" >/dev/null
wait_for rollback_r || fail "after a restart, rollback of the closed disk: $out"
cmp "$M/r.img" "$T/r-s" || fail "after the rollback by a replacement, r.img is not the snapshot"
cp "$T/r-s" "$T/r-ref"
ok "a replacement worker refuses the rollback of an open disk and does the closed one's"
umount_fs	# a fresh worker counts its own opens
mount_fs -o segment_size=16M,checkpoint_ms=200
cmp "$M/r.img" "$T/r-ref" || fail "r.img is not as the rollback left it after a remount"

# two snapshots with nothing written between them hold the same records: when
# the disk overwrites them neither holds them alone (deleting one gives back
# nothing), but own_bytes compares a snapshot with its disk only
ctl create o.img --template base.img --size 4M >/dev/null
$LC write "$M/o.img" - 0 $((2 * MiB)) o1
ctl snapshot o.img t >/dev/null && ctl snapshot o.img u >/dev/null || fail "snapshots of o.img"
$LC write "$M/o.img" - 0 $MiB o2
own_shared() { [ "$(snap_field o.img@t 's["own_bytes"]') $(snap_field o.img@u 's["own_bytes"]')" = "0 0" ]; }
own_shared || fail "snapshots --json: own_bytes counts bytes another snapshot (or a clone) holds too"
ok "own_bytes counts only what no other snapshot or clone holds"
ctl delete o.img@t >/dev/null && ctl delete o.img@u >/dev/null && ctl delete o.img >/dev/null || fail "delete of o.img"

### 7. bad input: one line on stderr, exit 1, nothing changed
# bad WHAT PATTERN CMD...: exit 1, one line on stderr matching PATTERN, nothing on stdout
bad() {
	what=$1 pat=$2
	shift 2
	before=$(state)
	rc=0
	"$@" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
	[ "$rc" = 1 ] || fail "$what: exit $rc (want 1): $(cat "$T/bad.err")"
	[ ! -s "$T/bad.out" ] || fail "$what: said on stdout: $(cat "$T/bad.out")"
	[ "$(wc -l < "$T/bad.err")" = 1 ] || fail "$what: not one line on stderr: $(cat "$T/bad.err")"
	grep -qE -- "$pat" "$T/bad.err" || fail "$what: '$(cat "$T/bad.err")' does not match '$pat'"
	state | diff <(echo "$before") - || fail "$what: the store changed"
	ok "$what: $(cat "$T/bad.err")"
}
long=$(printf 'n%.0s' $(seq 201))
bad "snapshot of a missing disk" "no disk named 'nope.img'" ctl snapshot nope.img s
bad "duplicate snapshot name" "already has a snapshot 's1'" ctl snapshot v.img s1
bad "snapshot name a/b" "invalid snapshot name 'a/b'" ctl snapshot v.img a/b
bad "snapshot name .x" "invalid snapshot name '.x'" ctl snapshot v.img .x
bad "snapshot name of 201 bytes" "invalid snapshot name .*longer than 200" ctl snapshot v.img "$long"
bad "snapshot name with @" "invalid snapshot name" ctl snapshot v.img a@b
bad "snapshot of a snapshot" "v.img@s1" ctl snapshot v.img@s1 s9
bad "clone onto an existing disk" "'c2.img' already exists" ctl clone v.img@s1 c2.img
bad "clone onto the source" "'v.img' already exists" ctl clone v.img v.img
bad "clone of a missing snapshot" "v.img@nope" ctl clone v.img@nope n.img
bad "clone to an invalid name" "invalid .*name '.n'" ctl clone v.img .n
bad "rollback to a missing snapshot" "has no snapshot 'nope'" ctl rollback v.img nope
bad "rollback to another disk's snapshot" "has no snapshot 's'" ctl rollback v.img s
bad "rollback to another disk's snapshot, full name" "r.img@s" ctl rollback v.img r.img@s
bad "rollback of a missing disk" "nope.img" ctl rollback nope.img s1
bad "delete of a missing snapshot" "no snapshot named 'v.img@nope'" ctl delete v.img@nope
bad "delete of a snapshot of a missing disk" "no snapshot named 'nope.img@s1'" ctl delete nope.img@s1
# every other verb names a missing disk; `snapshots nope.img` lists nothing, exit 0
bad "snapshots of a missing disk" "no disk named 'nope.img'" ctl snapshots nope.img
raw_equal "$S/v.img@s1" "$T/v-s1" && raw_equal "$M/v.img" "$T/v-ref" || fail "bad input changed a disk"

### 8. export of DISK@SNAP
if optional qemu-img qemu-storage-daemon; then
	ctl export v.img@s1 "$T/s1.qcow2" >/dev/null || fail "export of v.img@s1"
	qemu-img check -q "$T/s1.qcow2" || fail "qemu-img check of the snapshot's export"
	qemu-img compare -q -f qcow2 -F raw "$T/s1.qcow2" "$S/v.img@s1" || fail "the export differs from the snapshot"
	qemu-img compare -q -f qcow2 -F raw "$T/s1.qcow2" "$T/v-s1" || fail "the export differs from the saved snapshot"
	ok "export of v.img@s1: qemu-img check clean, compare equal to the snapshot"
fi

### 5. delete
bad "delete of a disk with snapshots" "has snapshots \(hcowctl snapshots v.img\); delete them first" ctl delete v.img
ctl delete v.img@s1 >/dev/null || fail "delete of v.img@s1"
ctl delete v.img@s2 >/dev/null || fail "delete of v.img@s2"
[ ! -e "$S/v.img@s1" ] && [ -z "$(ctl snapshots v.img --json | tr -d '[]')" ] || fail "deleted snapshots are still there"
ctl delete v.img >/dev/null || fail "delete of v.img once its snapshots are gone"
[ ! -e "$M/v.img" ] || fail "v.img is still there"
# clones of deleted disks and snapshots, and a chain's end with its middle gone
for i in $(seq 1 99); do ctl delete "chain$i.img" >/dev/null || fail "delete chain$i.img"; done
for d in c1 c2; do raw_equal "$M/$d.img" "$T/$d-ref" || fail "$d.img changed when its source was deleted"; done
cp "$M/chain100.img" "$T/chain100-ref"
ok "a disk with snapshots is refused; its snapshots, then it deleted; its clones read the same"

# a snapshot in use (a backup reading it) is not deleted under its reader
ctl snapshot c1.img open >/dev/null || fail "snapshot of c1"
cp "$T/c1-ref" "$T/c1-open"
exec 4<"$S/c1.img@open"
expect_fail "delete of a snapshot a reader has open" "c1.img@open' is open" ctl delete c1.img@open
[ -e "$S/c1.img@open" ] || fail "a refused delete took the snapshot away"
$LC write "$M/c1.img" "$T/c1-ref" 0 $MiB c1c	# the disk overwrites what the snapshot holds
ctl checkpoint >/dev/null
cmp - "$T/c1-open" <&4 || fail "the open snapshot does not read as it was"
exec 4<&-
delete_open() { out=$(ctl delete c1.img@open 2>&1); }
wait_for delete_open || fail "delete of the snapshot once closed: $out"
[ ! -e "$S/c1.img@open" ] || fail "a deleted snapshot is still listed"
ok "a snapshot in use is refused deletion (it reads on), and goes once closed"

# a disk with snapshots renamed takes them along; nothing is renamed over it
mv "$M/r.img" "$M/r2.img" || fail "rename of a disk with snapshots"
[ "$(ls "$S")" = "r2.img@s" ] || fail "after a rename .snapshots lists: $(ls "$S")"
cmp "$S/r2.img@s" "$T/r-s" && cmp "$M/r2.img" "$T/r-ref" || fail "a rename changed a disk or its snapshot"
ctl rollback r2.img s >/dev/null || fail "rollback under the new name"
cp "$T/r-s" "$T/r2-ref"
expect_fail "a rename over a disk with snapshots" "Device or resource busy" mv "$M/c1.img" "$M/r2.img"
cmp "$M/c1.img" "$T/c1-ref" && cmp "$M/r2.img" "$T/r2-ref" || fail "a refused rename changed a disk"
ok "a disk renamed keeps its snapshots (r2.img@s); renaming over it is refused"

# overwritten data that only snapshots hold: the cleaner gives it back once they go
ctl create g.img --template base.img --size 48M >/dev/null
$LC write "$M/g.img" - 0 $((48 * MiB)) g1
ctl snapshot g.img g1 >/dev/null
$LC write "$M/g.img" - 0 $((48 * MiB)) g2
ctl snapshot g.img g2 >/dev/null
$LC write "$M/g.img" - 0 $((48 * MiB)) g3
cp "$M/g.img" "$T/g-ref"
ctl checkpoint >/dev/null
log_disk() { status_field 's["log"]["disk_bytes"]'; }
released() { status_field 's["log"]["released_bytes"]'; }
disk0=$(log_disk) released0=$(released)
ctl delete g.img@g1 >/dev/null && ctl delete g.img@g2 >/dev/null || fail "delete of g's snapshots"
given_back() { ctl checkpoint && [ "$(released)" -gt "$released0" ]; }
wait_for given_back || fail "the cleaner gave nothing back after the snapshots went (log $disk0 bytes, $(ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["log"])'))"
# a pass may not take every segment at once: the next checkpoints' passes go on
shrunk() { ctl checkpoint >/dev/null && [ "$(log_disk)" -le $((disk0 - 64 * MiB)) ]; }
wait_for shrunk || fail "the log went from $disk0 to $(log_disk) bytes only"
disk1=$(log_disk)
cmp "$M/g.img" "$T/g-ref" || fail "g.img differs after cleaning"
for d in c1 c2 r2 chain100; do cmp "$M/$d.img" "$T/$d-ref" || fail "$d.img differs after cleaning"; done
cmp "$S/r2.img@s" "$T/r-s" || fail "r2.img@s differs after cleaning"
out=$(ctl check) || fail "check after cleaning: $out"
ok "deleting the snapshots gave the log back $(( (disk0 - disk1) >> 20 )) MiB; every disk reads the same, check is clean"

# the same with a clone sharing the disk's present data: 48 MiB shared by a
# disk and its clone must count once, or the cleaner's trigger (the log
# more than twice what is live) never fires
shared_clean() {
	ctl snapshot g.img g4 >/dev/null && $LC write "$M/g.img" - 0 $((48 * MiB)) g5 &&
	ctl snapshot g.img g5 >/dev/null && $LC write "$M/g.img" - 0 $((48 * MiB)) g6 &&
	ctl clone g.img gc.img >/dev/null && ctl checkpoint >/dev/null || return 1
	released0=$(released)
	ctl delete g.img@g4 >/dev/null && ctl delete g.img@g5 >/dev/null || return 1
	wait_for given_back
}
shared_clean || fail "space of deleted snapshots was not given back while a clone shares the disk's data"
ok "with a clone sharing the disk's data, deleting snapshots gives their space back"

### 6. durability: worker restart and kill, remount, everything killed
ctl snapshot c2.img keep >/dev/null || fail "snapshot of c2"
sums > "$T/sums"
[ "$(wc -l < "$T/sums")" -ge 7 ] || fail "too few files to compare: $(cat "$T/sums")"
same() { sums | diff "$T/sums" - || fail "after $1 the disks read differently"; }
ctl restart | grep -q "^restarted: worker" || fail "hcowctl restart"
same "hcowctl restart"
w=$(worker_pid)
kill -KILL "$w"
wait_for new_worker_serving "$w" || fail "no replacement after SIGKILL of worker $w"
same "kill -9 of the worker"
umount_fs
out=$("$HCOWCTL" check "$D") || fail "offline check: $out"
echo "$out" | grep -q "disk 'c2.img@keep': ok" || fail "the offline check did not check the snapshot: $out"
# no checkpoint but the operations' own from here: the crash below replays the writes
mount_fs -o segment_size=16M,checkpoint_ms=3600000
same "umount and mount"
ok "restart, worker kill and remount: every disk, clone and snapshot reads the same; offline check clean"
# the crash: a clone and snapshots just before, and writes after them in the log only
ctl clone c2.img@keep late.img >/dev/null && ctl snapshot late.img l >/dev/null || fail "late clone and snapshot"
$LC write "$M/late.img" - 0 65536 late
$LC write "$M/c2.img" "$T/c2-ref" 0 65536 c2late
ctl snapshot c2.img late >/dev/null || fail "snapshot c2.img@late"
$LC write "$M/c2.img" "$T/c2-ref" 65536 65536 c2later
sums > "$T/sums"
# stopped first, so that no supervisor starts a worker while they are killed
for p in $(our_pids); do kill -STOP "$p" 2>/dev/null || true; done
for p in $(our_pids); do kill -KILL "$p" 2>/dev/null || true; done
wait_for no_processes || fail "processes left after kill -9: $(pgrep -af -- "$T/")"
mount_fs -o segment_size=16M,checkpoint_ms=3600000
grep "open in" "$D/hcowfs.log" | tail -1 | grep -q "replayed [1-9]" ||
	fail "the crash left nothing to replay: $(grep "open in" "$D/hcowfs.log" | tail -1)"
same "kill -9 of the worker and the supervisor"
out=$(ctl check) || fail "check after the crash: $out"
ok "killing worker and supervisor: every disk, clone and snapshot reads the same; check is clean"
