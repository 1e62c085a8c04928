#!/bin/bash
# Proves hcowfs disks work with the programs people point at them: mkfs.ext4
# and e2fsck, qemu-io on a raw image, fio with O_DIRECT and checksum
# verification, and qemu-img compare against a plain copy that received the
# same writes.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need mkfs.ext4 e2fsck qemu-io qemu-img fio
scratch

make_template base.img $((64 * 1048576))
truncate -s 256M "$T/tmpl/empty.img"
mount_fs
M=$T/mnt

ctl create fs.img --template empty.img >/dev/null
mkfs.ext4 -q -F "$M/fs.img" || fail "mkfs.ext4"
e2fsck -f -n "$M/fs.img" >"$T/fsck.log" 2>&1 || { cat "$T/fsck.log"; fail "e2fsck after mkfs"; }
umount "$M"
mount_fs
e2fsck -f -n "$M/fs.img" >"$T/fsck.log" 2>&1 || { cat "$T/fsck.log"; fail "e2fsck after remount"; }
ok "mkfs.ext4, e2fsck -f clean, also after a remount"

ctl create q.img --template base.img >/dev/null
qemu-io -f raw -c 'write -P 0xab 1M 3M' -c 'write -P 0x5c 5123 777' -c 'write -z 10M 1M' "$M/q.img" >/dev/null ||
	fail "qemu-io write"
qemu-io -f raw -c 'read -P 0xab 1M 3M' -c 'read -P 0x5c 5123 777' -c 'read -P 0 10M 1M' "$M/q.img" >"$T/qio.log" ||
	fail "qemu-io read"
grep -qi "pattern verification failed" "$T/qio.log" && { cat "$T/qio.log"; fail "qemu-io pattern"; }
qemu-io -f raw -t none -c 'write -P 0x11 20M 64k' -c 'read -P 0x11 20M 64k' "$M/q.img" >"$T/qio.log" ||
	fail "qemu-io cache=none"
grep -qi "pattern verification failed" "$T/qio.log" && fail "qemu-io cache=none pattern"
ok "qemu-io pattern writes and reads, also with cache=none"

ctl create f.img --template base.img >/dev/null
fio --name=verify --filename="$M/f.img" --direct=1 --ioengine=psync --rw=randwrite --bs=4k \
	--size=32M --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --numjobs=1 --output="$T/fio.log" ||
	{ cat "$T/fio.log"; fail "fio randwrite with verify"; }
grep -q "err= 0" "$T/fio.log" || { cat "$T/fio.log"; fail "fio reported errors"; }
fio --name=verify2 --filename="$M/f.img" --direct=1 --ioengine=psync --rw=randrw --bs=16k \
	--size=16M --offset=32M --offset_increment=16M --verify=crc32c --verify_fatal=1 --verify_state_save=0 --numjobs=2 \
	--output="$T/fio2.log" ||
	{ cat "$T/fio2.log"; fail "fio randrw with verify, 2 jobs"; }
ok "fio O_DIRECT random writes verify (crc32c), 1 and 2 jobs"

ctl create cmp.img --template base.img >/dev/null
cp "$T/tmpl/base.img" "$T/plain.img"
for target in "$M/cmp.img" "$T/plain.img"; do
	qemu-io -f raw -c 'write -P 0x77 0 4k' -c 'write -P 0x21 33M 1M' -c 'write -P 0x99 63M 1M' \
		-c 'write -z 8M 2M' "$target" >/dev/null || fail "qemu-io on $target"
done
$PATTERN mirror "$M/cmp.img" "$T/plain.img" --seed cmp --ops 300
qemu-img compare -f raw -F raw "$M/cmp.img" "$T/plain.img" || fail "qemu-img compare"
ok "qemu-img compare: the disk equals a plain copy given the same writes"
