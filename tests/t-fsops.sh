#!/bin/bash
# Proves the file operations a hypervisor and its admin use: listing, stat
# (size, st_blocks), chmod/chown with permission checks for other users,
# truncate to grow, fallocate punch-hole and zero-range, SEEK_DATA/SEEK_HOLE,
# fdatasync, rename, unlink with open-file semantics, writes past the end (they grow it);
# a file created in the mount is a disk of no template; links, symlinks and special
# files are refused with a line in the log (t-dirs.sh has directories).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
need fallocate setpriv
scratch

make_template base.img $((4 * 1048576))
mount_fs -o blocks=used	# st_blocks as the disk holds it (the default is its size: t-dirs.sh)
ctl create d.img --template base.img --size 8M >/dev/null
M=$T/mnt

[ "$(ls "$M")" = "d.img" ] || fail "listing: $(ls "$M")"
[ "$(stat -c %s "$M/d.img")" = 8388608 ] || fail "size"
blocks0=$(stat -c %b "$M/d.img")
[ "$blocks0" -gt 0 ] || fail "st_blocks is 0 for a disk full of template data"
dd if=/dev/urandom of="$M/d.img" bs=1M count=1 seek=5 conv=notrunc status=none
blocks1=$(stat -c %b "$M/d.img")
[ "$blocks1" -ge $((blocks0 + 2048)) ] || fail "st_blocks did not grow by 1 MiB: $blocks0 -> $blocks1"
ok "ls and stat (st_blocks $blocks0 -> $blocks1 after writing 1 MiB)"

touch "$M/new.img" || fail "touch a new file"
ctl list | grep -qE '^new.img +- ' || fail "a file made by touch is not a disk of no template: $(ctl list)"
rm "$M/new.img"
expect_fail "hard link" "not permitted" ln "$M/d.img" "$M/link.img"
expect_fail "symlink" "not permitted" ln -s d.img "$M/sym.img"
expect_fail "fifo" "not permitted" mkfifo "$M/fifo"
grep -q "refused to make hard link 'link.img'" "$T/data/hcowfs.log" || fail "no line in the log for the link"
ok "touch makes a disk of no template; links, symlinks, fifos refused"

# open(O_TRUNC) truncates (the kernel leaves it to the open): a shell's > keeps no old tail
dd if=/dev/urandom of="$M/trunc.raw" bs=1M count=2 status=none
echo hi > "$M/trunc.raw"
[ "$(stat -c %s "$M/trunc.raw")" = 3 ] && [ "$(cat "$M/trunc.raw")" = hi ] ||
	fail "> over a 2 MiB file left $(stat -c %s "$M/trunc.raw") bytes"
ctl create trunc.img --template base.img >/dev/null
printf 'xy' > "$M/trunc.img"
[ "$(stat -c %s "$M/trunc.img")" = 2 ] && [ "$(cat "$M/trunc.img")" = xy ] ||
	fail "> over a clone left $(stat -c %s "$M/trunc.img") bytes"
rm "$M/trunc.raw" "$M/trunc.img"
ok "open with O_TRUNC truncates a file and a clone"

chmod 0640 "$M/d.img"
chown 12345:12345 "$M/d.img"
[ "$(stat -c '%a %u %g' "$M/d.img")" = "640 12345 12345" ] || fail "chmod/chown: $(stat -c '%a %u %g' "$M/d.img")"
expect_fail "another user reads a 0640 disk" "denied" setpriv --reuid=23456 --regid=23456 --clear-groups cat "$M/d.img"
setpriv --reuid=12345 --regid=12345 --clear-groups cmp -n 4096 "$M/d.img" "$T/tmpl/base.img" ||
	fail "the owner cannot read the disk"
ok "chmod/chown give a disk to the hypervisor's user and keep others out"

truncate -s 16M "$M/d.img"
[ "$(stat -c %s "$M/d.img")" = 16777216 ] || fail "truncate grow"
cmp -n 8388608 -i 8388608:0 "$M/d.img" /dev/zero || fail "grown region is not zeros"
ok "truncate grows a disk; the new range reads as zeros"

fallocate -p -o 1048576 -l 65536 "$M/d.img"
cmp -n 65536 -i 1048576:0 "$M/d.img" /dev/zero || fail "punched range not zero"
fallocate -z -o 2097152 -l 4096 "$M/d.img"
cmp -n 4096 -i 2097152:0 "$M/d.img" /dev/zero || fail "zero range not zero"
cmp -n 4096 -i 1048576:1048576 "$M/d.img" "$T/tmpl/base.img" 2>/dev/null && fail "punch had no effect"
[ "$(stat -c %s "$M/d.img")" = 16777216 ] || fail "punch changed the size"
fallocate -z -o 16777216 -l 1048576 "$M/d.img"
[ "$(stat -c %s "$M/d.img")" = 17825792 ] || fail "zero range without keep-size did not grow"
ok "fallocate punch-hole and zero-range"

python3 - "$M/d.img" <<'PY' || fail "SEEK_DATA/SEEK_HOLE"
import os, sys, errno
fd = os.open(sys.argv[1], os.O_RDONLY)
M = 1 << 20
assert os.lseek(fd, 0, os.SEEK_DATA) == 0
assert os.lseek(fd, M, os.SEEK_HOLE) == M, os.lseek(fd, M, os.SEEK_HOLE)
assert os.lseek(fd, M, os.SEEK_DATA) == M + 65536
assert os.lseek(fd, 4 * M, os.SEEK_HOLE) == 4 * M         # template ends at 4M
assert os.lseek(fd, 4 * M, os.SEEK_DATA) == 5 * M         # the 1 MiB written at 5M
assert os.lseek(fd, 6 * M, os.SEEK_HOLE) == 6 * M
try:
    os.lseek(fd, 7 * M, os.SEEK_DATA)
    sys.exit("SEEK_DATA past the last data should fail")
except OSError as e:
    assert e.errno == errno.ENXIO
try:
    os.lseek(fd, 100 * M, os.SEEK_HOLE)
    sys.exit("SEEK_HOLE past the end should fail")
except OSError as e:
    assert e.errno == errno.ENXIO
PY
ok "SEEK_DATA/SEEK_HOLE follow written, punched and template ranges"

python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, b'x'*4096, 0); os.fdatasync(fd); os.fsync(fd)" "$M/d.img" ||
	fail "fdatasync"
size=$(stat -c %s "$M/d.img")
# a write past the end grows the disk, as a file grows, with zeros in the gap
printf 'tail' | dd of="$M/d.img" bs=1 seek=$((size + 8192)) conv=notrunc status=none ||
	fail "write past the end"
[ "$(stat -c %s "$M/d.img")" = $((size + 8196)) ] || fail "a write past the end did not grow the disk"
python3 -c 'import sys; f = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2]) - 8192)
assert f.read() == bytes(8192) + b"tail"' "$M/d.img" $((size + 8192)) ||
	fail "the gap a write past the end left does not read as zeros"
truncate -s "$size" "$M/d.img"
ok "fdatasync; a write past the end grows the disk, the gap reads zeros"

ctl create e.img --template base.img >/dev/null
mv "$M/d.img" "$M/x.img"
[ "$(ls "$M" | tr '\n' ' ')" = "e.img x.img " ] || fail "rename: $(ls "$M")"
mv -f "$M/e.img" "$M/x.img"
[ "$(ls "$M")" = "x.img" ] || fail "rename over: $(ls "$M")"
cmp "$M/x.img" "$T/tmpl/base.img" || fail "renamed disk has the wrong content"
ok "rename, and rename over an existing disk"

python3 - "$M/x.img" "$T" <<'PY' || fail "unlink with an open file"
import os, sys, subprocess
path, t = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
os.pwrite(fd, b"still here", 100)
os.unlink(path)
assert not os.path.exists(path)
assert os.pread(fd, 10, 100) == b"still here"
os.pwrite(fd, b"and writable", 200)
assert os.pread(fd, 12, 200) == b"and writable"
os.close(fd)
PY
[ -z "$(ls "$M")" ] || fail "unlinked disk still listed"
ok "an unlinked disk stays usable while open, then disappears"

ctl create f.img --template base.img >/dev/null
ctl delete f.img >/dev/null
[ -z "$(ls "$M")" ] || fail "deleted disk still listed"
expect_fail "stat of a deleted disk" "No such file" stat "$M/f.img"
ok "hcowctl delete"
