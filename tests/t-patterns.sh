#!/bin/bash
# Proves: a clone reads its template's bytes where never written, its own
# bytes where written (unaligned writes of any size, no copy-up) and zeros past
# the template's end; two clones of one template never see each other's
# writes; the template files are never modified; all of it survives a remount.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch

make_template base.img $((8 * 1048576 + 12345))	# ends mid-block
make_template other.img $((3 * 1048576))
tmpl_sums=$(cd "$T/tmpl" && sha256sum * && stat -c '%n %s %Y %i' *)
mount_fs
ctl create a.img --template base.img --size 12M >/dev/null
ctl create b.img --template base.img --size 12M >/dev/null
ctl create c.img --template other.img >/dev/null

cp "$T/tmpl/base.img" "$T/ref-a"
truncate -s 12M "$T/ref-a"
cp "$T/ref-a" "$T/ref-b"
$PATTERN compare "$T/mnt/a.img" "$T/ref-a" || fail "fresh clone differs from template + zeros"
ok "fresh clone reads the template, then zeros past its end"

$PATTERN mirror "$T/mnt/a.img" "$T/ref-a" --seed a1 --ops 400
$PATTERN compare "$T/mnt/a.img" "$T/ref-a" || fail "a.img differs after random writes"
$PATTERN compare "$T/mnt/b.img" "$T/ref-b" || fail "writes to a.img showed in b.img"
ok "400 unaligned writes read back; the sibling clone is untouched"

$PATTERN mirror "$T/mnt/b.img" "$T/ref-b" --seed b1 --ops 400
$PATTERN compare "$T/mnt/b.img" "$T/ref-b" || fail "b.img differs"
$PATTERN compare "$T/mnt/a.img" "$T/ref-a" || fail "writes to b.img showed in a.img"
cmp "$T/mnt/c.img" "$T/tmpl/other.img" || fail "c.img differs from its template"
ok "clones of the same template are isolated"

# O_DIRECT, as QEMU's cache=none does it
dd if=/dev/urandom of="$T/blk" bs=64k count=4 status=none
dd if="$T/blk" of="$T/mnt/a.img" bs=64k seek=37 oflag=direct conv=notrunc status=none
dd if="$T/blk" of="$T/ref-a" bs=64k seek=37 conv=notrunc status=none
dd if="$T/mnt/a.img" of="$T/back" bs=64k skip=37 count=4 iflag=direct status=none
cmp "$T/back" "$T/blk" || fail "O_DIRECT read does not return O_DIRECT write"
ok "O_DIRECT writes and reads"

# many disks of two templates, written at the same time
pids=
for i in 1 2 3 4 5 6; do
	t=base.img
	[ $((i % 2)) = 0 ] && t=other.img
	ctl create "m$i.img" --template $t >/dev/null
	cp "$T/tmpl/$t" "$T/ref-m$i"
	$PATTERN mirror "$T/mnt/m$i.img" "$T/ref-m$i" --seed "m$i" --ops 300 --fsync &
	pids="$pids $!"
done
for p in $pids; do wait "$p" || fail "a concurrent writer failed"; done
for i in 1 2 3 4 5 6; do
	$PATTERN compare "$T/mnt/m$i.img" "$T/ref-m$i" || fail "m$i.img differs after concurrent writes"
done
ok "6 disks of 2 templates written concurrently"

[ "$(cd "$T/tmpl" && sha256sum * && stat -c '%n %s %Y %i' *)" = "$tmpl_sums" ] ||
	fail "template files changed"
ok "template files unchanged (content, size, mtime, inode)"

umount "$T/mnt"
mount_fs
for d in a b m1 m2 m3 m4 m5 m6; do
	$PATTERN compare "$T/mnt/$d.img" "$T/ref-$d" || fail "$d.img differs after remount"
done
ok "contents survive unmount and mount"
