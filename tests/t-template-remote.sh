#!/bin/bash
# Proves: a template changed while its disks are served is caught where read
# leases do not see the writer: with the template dir on a FUSE file system
# (libfuse's passthrough_ll over a backing dir, its attribute cache a day
# long, as a network file system's may be) and the backing file written
# directly, the very next read of the disk is refused (EIO), never the new
# bytes.  The same with the template dir on a read-only bind mount and the
# file written through the writable path.  Skips (77) without the
# passthrough_ll example source or a compiler.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need cc pkg-config
scratch

MiB=1048576
M=$T/mnt
src=
for f in /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c /usr/share/doc/fuse3/examples/passthrough_ll.c; do
	[ -f "$f" ] && src=$f && break
done
[ -n "$src" ] || skip "no passthrough_ll.c (Debian's libfuse3-dev examples)"
cc -Wall -o "$T/passthrough_ll" "$src" $(pkg-config --cflags --libs fuse3) 2>"$T/cc.log" ||
	skip "passthrough_ll does not build here: $(head -3 "$T/cc.log")"

# read_new_bytes DISK OFF WHAT: the next read of DISK at OFF, O_DIRECT, at
# once after the change: EIO is right; bytes (old or new) are not
read_after_change() {
	python3 - "$M/$1" "$2" <<'PY' || fail "$3: the read after the change was not refused"
import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
try:
    os.preadv(fd, [buf], int(sys.argv[2]))
    sys.exit("read returned bytes")
except OSError as e:
    if e.errno != errno.EIO:
        sys.exit(f"{errno.errorcode[e.errno]}, not EIO")
PY
}

# poke FILE OFF: flip one byte of FILE in place
poke() {
	python3 - "$1" "$2" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
b = os.pread(fd, 1, int(sys.argv[2]))
os.pwrite(fd, bytes([b[0] ^ 0xff]), int(sys.argv[2]))
os.close(fd)
PY
}

# ---- the template dir on FUSE (passthrough_ll) -----------------------------------
mkdir "$T/backing"
$PATTERN fill "$T/backing/base.img" --size $((4 * MiB)) --seed base.img
# cache=never: every read reaches the backing file; timeout: attributes cached a day.
# Relative paths: umount_fs waits for every process naming "$T/" to go.
(cd "$T" && exec ./passthrough_ll -f -o source=backing,cache=never,timeout=86400 tmpl 2>pt.log) &
wait_for is_mounted "$T/tmpl" || fail "passthrough_ll did not mount: $(cat "$T/pt.log")"
MOUNTED="$T/tmpl"
mount_fs
MOUNTED="$T/mnt $T/tmpl"
ctl create a.img --template base.img >/dev/null
cmp -n 4096 -i $MiB:$MiB "$M/a.img" "$T/backing/base.img" || fail "a.img does not read its template through FUSE"
sleep 1		# two looks at the templates (a lease, where one is taken, is held by now)
poke "$T/backing/base.img" $((MiB + 10))
read_after_change a.img $MiB "template on FUSE written underneath"
ctl status | grep -E "^a.img .*modified" >/dev/null || fail "status does not say why: $(ctl status | grep a.img)"
ok "template on FUSE written underneath: the next read is refused (EIO), status says 'modified'"
umount_fs
umount "$T/tmpl" || fail "cannot unmount passthrough_ll"
MOUNTED=
wait

# ---- the template dir on a read-only bind mount ------------------------------------
mkdir "$T/rw"
$PATTERN fill "$T/rw/ro.img" --size $((4 * MiB)) --seed ro.img
mount --bind "$T/rw" "$T/tmpl" || skip "cannot bind mount"
MOUNTED="$T/tmpl"
mount -o remount,bind,ro "$T/tmpl" || fail "cannot make the bind mount read-only"
mount_fs
MOUNTED="$T/mnt $T/tmpl"
ctl create b.img --template ro.img >/dev/null
cmp -n 4096 -i $MiB:$MiB "$M/b.img" "$T/rw/ro.img" || fail "b.img does not read its template"
sleep 1
poke "$T/rw/ro.img" $((MiB + 10))
read_after_change b.img $MiB "template on a read-only bind mount written through the writable path"
ok "template on a read-only bind mount written elsewhere: the next read is refused (EIO)"
umount_fs
umount "$T/tmpl"
MOUNTED=
