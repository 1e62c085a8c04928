#!/bin/bash
# Proves: a template changed after disks were cloned from it (modified in
# place, truncated, replaced by a new file, deleted) is detected at mount and
# while mounted, between two reads; its disks then refuse I/O (EIO) instead
# of mixing old and new template bytes, other disks keep working, and
# hcowctl status/list say why.  Putting the template back as it was makes
# its disks work again at the next mount.  (check_store.c has the at-open
# cases against the store; these go through the mount.)  mount.hcowfs prints
# the problem when it mounts.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch

MiB=1048576
make_template base.img $((4 * MiB))
make_template other.img $((2 * MiB))
cp -a "$T/tmpl/base.img" "$T/base.orig"
M=$T/mnt
mount_fs
ctl create a.img --template base.img >/dev/null
ctl create b.img --template base.img --size 8M >/dev/null
ctl create c.img --template other.img >/dev/null
# a.img: some bytes of its own in the log, so a refusal is not just "no template"
printf 'mine' | dd of="$M/a.img" bs=1 seek=8192 conv=notrunc status=none

# check_disks WHY: a.img and b.img refuse reads and writes with EIO, c.img works,
# status (text and JSON) and list name the problem
check_disks() {
	python3 - "$M" <<'PY' || fail "$1: disks of the changed template do not refuse I/O"
import errno, os, sys
m = sys.argv[1]
for d in ("a.img", "b.img"):
    fd = os.open(f"{m}/{d}", os.O_RDWR | os.O_DIRECT)
    for what, f in (("read template range", lambda: os.pread(fd, 4096, 1 << 20)),
                    ("read own range", lambda: os.pread(fd, 4096, 8192)),
                    ("write", lambda: os.pwrite(fd, bytes(4096), 0))):
        try:
            f()
            sys.exit(f"{d}: {what} succeeded")
        except OSError as e:
            if e.errno != errno.EIO:
                sys.exit(f"{d}: {what}: {errno.errorcode[e.errno]}, not EIO")
    os.close(fd)
fd = os.open(f"{m}/c.img", os.O_RDWR)
os.pwrite(fd, b"still fine", 4096)
assert os.pread(fd, 10, 4096) == b"still fine"
PY
	cmp -n $((2 * MiB)) -i $((8192)):$((8192)) "$M/c.img" "$T/tmpl/other.img" 2>/dev/null ||
		fail "$1: c.img (another template) no longer reads its template"
	ctl status | grep -E "^a.img .*$2" >/dev/null || fail "$1: status does not say '$2': $(ctl status | grep a.img)"
	ctl list | grep -E "^b.img .*$2" >/dev/null || fail "$1: list does not say '$2': $(ctl list | grep b.img)"
	st=$(status_field '[d["state"] for d in s["disks"] if d["name"] == "a.img"][0]')
	echo "$st" | grep -qE "$2" || fail "$1: status --json state is '$st'"
	[ "$(status_field '[d["state"] for d in s["disks"] if d["name"] == "c.img"][0]')" = ok ] ||
		fail "$1: c.img is not ok"
	ok "$1: a.img and b.img refuse I/O (EIO), c.img works; status: $st"
}
ino0=$(stat -c %i "$T/tmpl/base.img")	# the inode the disks were cloned from
restore_base() { cp -a "$T/base.orig" "$T/tmpl/base.img"; }	# same bytes and mtime
# replace_base: an identical copy (bytes, mtime) under another inode than ino0;
# inode numbers are reused, so a fresh copy may get ino0 back: keep those aside
replace_base() {
	cp -a "$T/base.orig" "$T/tmpl/.new"
	while [ "$(stat -c %i "$T/tmpl/.new")" = "$ino0" ]; do
		mv "$T/tmpl/.new" "$T/held.$RANDOM"
		cp -a "$T/base.orig" "$T/tmpl/.new"
	done
	mv "$T/tmpl/.new" "$T/tmpl/base.img"
}

# ---- at mount ---------------------------------------------------------------
# modified in place, then put back byte for byte with its mtime: refused, then fine
umount_fs
cp -a "$T/tmpl/base.img" "$T/mtime.ref"
printf '\x00\x01' | dd of="$T/tmpl/base.img" bs=1 seek=100 conv=notrunc status=none
touch -r "$T/mtime.ref" "$T/tmpl/base.img"	# only the content fingerprint can tell
mount_fs
check_disks "template modified in place before the mount (mtime put back)" "content changed"
umount_fs
dd if="$T/base.orig" of="$T/tmpl/base.img" bs=1 skip=100 seek=100 count=2 conv=notrunc status=none
touch -r "$T/mtime.ref" "$T/tmpl/base.img"
cmp "$T/tmpl/base.img" "$T/base.orig" || fail "could not put the template back"
mount_fs
cmp -n 8192 "$M/a.img" "$T/base.orig" || fail "template put back: a.img does not read it again"
[ "$(status_field '[d["state"] for d in s["disks"] if d["name"] == "a.img"][0]')" = ok ] || fail "template put back: a.img not ok"
ok "template put back as it was (bytes and mtime, same file): its disks work again"

umount_fs
rm "$T/tmpl/base.img"
out=$("$MOUNT_HCOWFS" "$T/tmpl" "$T/data" "$M" 2>&1) || fail "mount with a missing template failed: $out"
MOUNTED=$M
[ "$out" = "mount.hcowfs: warning: template 'base.img': no such file in the template dir; these disks refuse I/O: a.img, b.img" ] ||
	fail "mount with a missing template: the admin is not told (printed '$out')"
ok "mount with a missing template says so: $out"
check_disks "template deleted before the mount" "no such file"
grep -q "template 'base.img': no such file in the template dir; its disks refuse I/O" "$T/data/hcowfs.log" ||
	fail "the missing template is not logged at mount"

umount_fs
restore_base
truncate -s $((3 * MiB)) "$T/tmpl/base.img"
mount_fs
check_disks "template truncated before the mount" "size changed"

# put back in place, byte-identical with the same mtime, but a new inode: still refused
umount_fs
replace_base
mount_fs
check_disks "template replaced by an identical copy (new inode)" "replaced by another file"

# the original file put back (same inode as at clone time is impossible after
# a delete): a new template version is what a new clone gets
ctl create d.img --template base.img >/dev/null
cmp "$M/d.img" "$T/tmpl/base.img" || fail "a new clone of the new base.img does not read it"
ok "a new clone of the replaced template uses the new version"
ctl delete d.img >/dev/null

# ---- while mounted: the old disks of a template that is fine ---------------------
# start again from disks cloned from the file as it now is
for d in a.img b.img; do ctl delete "$d" >/dev/null; done
ctl create a.img --template base.img >/dev/null
ctl create b.img --template base.img --size 8M >/dev/null
printf 'mine' | dd of="$M/a.img" bs=1 seek=8192 conv=notrunc status=none
cmp -n $((4 * MiB - 16384)) -i 16384:16384 "$M/b.img" "$T/tmpl/base.img" || fail "fresh clone does not read its template"
cp -a "$T/tmpl/base.img" "$T/base.orig"

# wait_template_lease: the worker holds a read lease on base.img (its reads skip the fstat)
wait_template_lease() {
	local pid ino
	pid=$(worker_pid)
	ino=$(stat -c %i "$T/tmpl/base.img")
	for _ in $(seq 50); do
		grep -q "LEASE .* READ $pid [0-9a-f]*:[0-9a-f]*:$ino " /proc/locks && return 0
		sleep 0.1
	done
	fail "worker $pid took no lease on base.img within 5 s"
}

# each change while mounted, then the next read: EIO, never the new bytes
live() {
	what=$1 pat=$2
	shift 2
	cmp -n 4096 -i $((MiB)):$((MiB)) "$M/b.img" "$T/base.orig" || fail "$what: b.img did not read right before the change"
	# the worker reads templates under a lease once it has taken one (store.c,
	# tmpl_lease): make the change then, so the lease's path is the one tested
	wait_template_lease
	"$@"
	# the very next read, at once: a modified template must never be served
	out=$(python3 -c '
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
try:
    b = os.pread(fd, 4096, 1 << 20)
    print("served " + ("new bytes" if b == b"\xee" * 4096 else "old bytes"))
except OSError as e:
    print(errno.errorcode[e.errno])' "$M/b.img")
	case $what in
	*modified*|*truncated*) [ "$out" = EIO ] || fail "$what: the next read gave '$out', not EIO" ;;
	esac
	# within a second at most, everything refuses
	for _ in $(seq 20); do
		python3 -c 'import os,sys; os.pread(os.open(sys.argv[1], os.O_RDONLY), 1, 8192)' "$M/a.img" 2>/dev/null || break
		sleep 0.1
	done
	check_disks "$what while mounted (next read: $out)" "$pat"
}
live "template modified in place" "modified|content changed" \
	dd if=<(head -c 4096 /dev/zero | tr '\0' '\356') of="$T/tmpl/base.img" bs=4096 seek=256 conv=notrunc status=none
remount_fresh() {
	umount_fs
	cp -a "$T/base.orig" "$T/tmpl/base.img"
	mount_fs
	for d in a.img b.img; do ctl delete "$d" >/dev/null; done
	ctl create a.img --template base.img >/dev/null
	ctl create b.img --template base.img --size 8M >/dev/null
	cp -a "$T/tmpl/base.img" "$T/base.orig"
}
remount_fresh
# truncate(2) by name: coreutils' truncate opens with O_NONBLOCK, which the
# worker's lease turns into one EAGAIN (the lease is broken all the same)
live "template truncated" "size changed" \
	python3 -c 'import os, sys; os.truncate(sys.argv[1], 2 << 20)' "$T/tmpl/base.img"
remount_fresh
cp "$T/tmpl/base.img" "$T/tmpl/.new"
live "template replaced (rename over it)" "replaced by another file" mv "$T/tmpl/.new" "$T/tmpl/base.img"
remount_fresh
live "template deleted" "no such file" rm "$T/tmpl/base.img"

# ---- one byte no sample covers: only the content sums can tell ----------------------
# wait_sums: the catalog holds the content sums of the version of base.img
# that a.img was cloned from (by its id: a file deleted and copied back may
# get an older version's inode number, and that version's sums say nothing
# of this one)
wait_sums() {
	sums_known() {
		python3 - "$T/data/catalog.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
n = db.execute("SELECT count(*) FROM templates t JOIN disks d ON d.template_id = t.id "
               "WHERE d.name = 'a.img' AND t.content_sums IS NOT NULL").fetchone()[0]
sys.exit(0 if n else 1)
PY
	}
	wait_for sums_known || fail "the content sums of base.img were not recorded"
}
# flip FILE OFF: one byte of FILE changed in place, its mtime put back
flip() {
	python3 - "$1" "$2" <<'PY'
import os, sys
st = os.stat(sys.argv[1])
fd = os.open(sys.argv[1], os.O_RDWR)
b = os.pread(fd, 1, int(sys.argv[2]))
os.pwrite(fd, bytes([b[0] ^ 0x01]), int(sys.argv[2]))
os.close(fd)
os.utime(sys.argv[1], ns=(st.st_atime_ns, st.st_mtime_ns))
PY
}
unsampled=65540	# between the fingerprint's first two 64 KiB samples of a 4 MiB file
remount_fresh
wait_sums
umount_fs
# deleted and copied back (cp -a) from a copy differing in that one byte:
# ext4 often gives the old inode number back, size and mtime are the same
cp -a "$T/tmpl/base.img" "$T/mod.img"
flip "$T/mod.img" $unsampled
ino_before=$(stat -c %i "$T/tmpl/base.img")
rm "$T/tmpl/base.img"
cp -a "$T/mod.img" "$T/tmpl/base.img"
same=$([ "$(stat -c %i "$T/tmpl/base.img")" = "$ino_before" ] && echo "the same" || echo "another")
mount_fs
check_disks "template swapped for a copy differing in one byte ($same inode number)" \
	"replaced by another file|content changed"

remount_fresh
wait_sums
umount_fs
flip "$T/tmpl/base.img" $unsampled	# same file: inode, birth time, handle, size, mtime
mount_fs
# the mount cannot tell; the first read of that chunk (or the background pass) does
python3 -c 'import os,sys; os.pread(os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT), 4096, 65536)' \
	"$M/a.img" 2>/dev/null && fail "one byte changed in place (mtime put back): its chunk was served"
check_disks "one byte changed in place, mtime put back (only the content sums differ)" "content changed"

# ---- names that lead outside the template dir, files that are not files --------
echo "not a template" > "$T/secret"
ln -s "$T/secret" "$T/tmpl/innocent.img"
ln -s ../secret "$T/tmpl/up.img"
mkfifo "$T/tmpl/pipe.img"
for n in innocent.img up.img; do
	out=$(ctl create "x-$n" --template "$n" 2>&1) && fail "a clone of $n (a symlink out of the template dir) was made"
	echo "$out" | grep -q "leads outside the template dir" || fail "clone of $n: $out"
done
out=$(timeout 10 "$HCOWCTL" -m "$M" create x-pipe.img --template pipe.img 2>&1) &&
	fail "a clone of a FIFO was made"
echo "$out" | grep -q "not a regular file" || fail "clone of a FIFO: $out"
ln -s other.img "$T/tmpl/alias.img"
ctl create x-alias.img --template alias.img >/dev/null || fail "a symlink inside the template dir is not followed"
cmp -n $((2 * MiB)) "$M/x-alias.img" "$T/tmpl/other.img" || fail "x-alias.img does not read other.img"
ok "symlinks out of the template dir and FIFOs are refused ($out); one inside it is followed"
