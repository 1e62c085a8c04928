#!/bin/bash
# Proves: bad input to mount.hcowfs and hcowctl gets a one-line message naming
# the problem and a non-zero exit, and leaves the store as it was.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch

make_template base.img $((2 * 1048576))
mkdir "$T/tmpl/adir.img"
M=$T/mnt

# hcowctl before any mount of ours: name a mount point that has none
expect_fail "hcowctl on a dir with no mount" "no hcowfs mount" "$HCOWCTL" -m "$M" status

expect_fail "missing template dir" "template dir.*No such file" "$MOUNT_HCOWFS" "$T/nope" "$T/data" "$M"
expect_fail "template dir is a file" "not a directory" "$MOUNT_HCOWFS" "$T/tmpl/base.img" "$T/data" "$M"
expect_fail "missing data dir" "data dir.*No such file" "$MOUNT_HCOWFS" "$T/tmpl" "$T/nope" "$M"
expect_fail "missing mount point" "mount point.*No such file" "$MOUNT_HCOWFS" "$T/tmpl" "$T/data" "$T/nope"
expect_fail "unknown option" "unknown mount option 'frobnicate'" "$MOUNT_HCOWFS" "$T/tmpl" "$T/data" "$M" -o frobnicate
expect_fail "bad option value" "segment_size" "$MOUNT_HCOWFS" "$T/tmpl" "$T/data" "$M" -o segment_size=12
mkdir "$T/junk"
touch "$T/junk/precious.txt"
expect_fail "data dir holding other files" "not empty.*precious.txt" "$MOUNT_HCOWFS" "$T/tmpl" "$T/junk" "$M"
[ -f "$T/junk/precious.txt" ] && [ ! -e "$T/junk/catalog.db" ] || fail "the unrelated data dir was changed"
grep -q " $M " /proc/self/mountinfo && fail "a failed mount left a mount behind"

mount_fs
ctl create good.img --template base.img --size 4M >/dev/null
dd if=/dev/urandom of="$M/good.img" bs=64k count=8 conv=notrunc,fsync status=none
sum=$(sha256sum < "$M/good.img")
catalog_sum() { sqlite3 "$T/data/catalog.db" 'select id, name, template_id, size, mode from disks; select * from templates;'; }
# the template's content sums are recorded in the background after its first clone
wait_for grep -q "template 'base.img': content sums of" "$T/data/hcowfs.log" || fail "base.img's content sums not recorded"
before=$(catalog_sum)

mkdir "$T/mnt2"
expect_fail "second mount of the same data dir" "in use by another mount" "$MOUNT_HCOWFS" "$T/tmpl" "$T/data" "$T/mnt2"
expect_fail "mount on a mount point already in use" "already has an hcowfs mount" "$MOUNT_HCOWFS" "$T/tmpl" "$T/data" "$M"

long=$(printf 'x%.0s' $(seq 201))
expect_fail "empty name" "name is empty" ctl create "" --template base.img
expect_fail "name too long" "longer than 200" ctl create "$long" --template base.img
expect_fail "name in a directory that does not exist" "no directory 'a'" ctl create "a/b" --template base.img
expect_fail "path with an empty component" "name is empty" ctl create "a//b" --template base.img
expect_fail "path to a hidden name" "starts with '.'" ctl create "a/.b" --template base.img
expect_fail "name starting with ." "starts with '.'" ctl create ".hidden" --template base.img
expect_fail "name with a space" "characters outside" ctl create "a b" --template base.img
expect_fail "name with a newline" "characters outside" ctl create "$(printf 'a\nb')" --template base.img
expect_fail "existing name" "already exists" ctl create good.img --template base.img
expect_fail "missing template" "no such file in the template dir" ctl create n1.img --template nope.img
expect_fail "template that is a directory" "not a regular file" ctl create n2.img --template adir.img
expect_fail "template path trick" "invalid template name" ctl create n3.img --template ../data/catalog.db
expect_fail "size not a number" "invalid size" ctl create n4.img --template base.img --size lots
expect_fail "size with junk" "invalid size" ctl create n5.img --template base.img --size 12Q
expect_fail "size smaller than the template" "smaller than template" ctl create n6.img --template base.img --size 1M
expect_fail "absurd size" "larger than the largest disk" ctl create n7.img --template base.img --size 1P
expect_fail "size overflowing 64 bits" "larger than the largest disk" ctl create n8.img --template base.img --size 99999999999999999999
expect_fail "delete a missing disk" "no disk named" ctl delete nope.img
expect_fail "create without template" "needs a disk name and --template" ctl create n9.img
expect_fail "unknown command" "unknown command" ctl frobnicate

# malformed requests straight to the control socket
sock=/run/hcowfs/$(awk -v m="$M" '$5 == m { print $3 }' /proc/self/mountinfo).sock
[ -S "$sock" ] || fail "control socket not found"
py_ctl() { python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode("latin1"))
s.shutdown(socket.SHUT_WR); out = b""
while True:
    try:
        b = s.recv(65536)
    except ConnectionResetError:  # the server closed with part of an oversized request unread
        break
    if not b: break
    out += b
print(out.decode("latin1", "replace").replace("\n", " "))' "$@"; }
out=$(py_ctl "$sock" $'json frobnicate\n'); echo "$out" | grep -q "^error 22 unknown request" || fail "unknown verb: $out"
out=$(py_ctl "$sock" $'yaml status\n'); echo "$out" | grep -q "^error 22 malformed" || fail "bad format: $out"
out=$(py_ctl "$sock" $'json create name\n'); echo "$out" | grep -q "^error 22 malformed" || fail "bad arg: $out"
out=$(py_ctl "$sock" "json $(head -c 5000 /dev/zero | tr '\0' 'a')"$'\n'); echo "$out" | grep -q "^error 7 request longer" || fail "long: $out"
out=$(py_ctl "$sock" $'json create name=x.img template=base.img size=-5\n'); echo "$out" | grep -q "^error 22 invalid size" || fail "negative size: $out"
out=$(py_ctl "$sock" $'json create name=../x template=base.img\n'); echo "$out" | grep -q "^error 22 invalid disk name" || fail "path trick: $out"
ok "malformed control messages are refused"

expect_fail "non-root user controls the mount" "permission denied" setpriv --reuid=23456 --regid=23456 --clear-groups "$HCOWCTL" -m "$M" status

[ "$(catalog_sum)" = "$before" ] || fail "the catalog changed after refused requests"
[ "$(sha256sum < "$M/good.img")" = "$sum" ] || fail "the disk changed"
[ "$(ls "$M")" = "good.img" ] || fail "listing changed: $(ls "$M")"
ok "after all refusals the store is unchanged"
