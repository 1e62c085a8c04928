#!/bin/bash
# Proves the mount is a directory that tools can use as it is (issue 20):
#  1. files made in it (touch, truncate, fallocate, a shell redirect) are disks
#     of no template that read zeros, grow as they are written, and are listed
#     by hcowctl with template '-'; hcowctl create takes a path and --size alone;
#  2. mkdir/rmdir/rename at any depth with the errors a file system gives
#     (EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, EINVAL), permissions as given to
#     the creator, and the names' rules per component;
#  3. .snapshots shows the tree with each disk's snapshots where the disk is;
#     .templates shows the template files read-only; both are refused every
#     change and neither is listed in the root;
#  4. cp of a disk or of .templates/NAME shares instead of copying (the log
#     does not grow) and the copies then diverge, for a disk of a sparse
#     template too (st_blocks is the disk's size, so cp asks copy_file_range);
#  5. a replacement worker serves the tree, the names a shell holds included;
#     a remount keeps it; hcowctl check knows the directories; df is the data dir's.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test fallocate setpriv qemu-img
make_template base.img $((4 * MiB))
mount_fs

# log_used: the bytes appended to the log that it still holds (status --json)
log_used() { status_field 's["log"]["disk_bytes"]'; }
# log_added CMD...: run CMD between checkpoints; print the log bytes it added
log_added() {
	ctl checkpoint >/dev/null
	b=$(log_used)
	"$@" || return 1
	ctl checkpoint >/dev/null
	echo $(($(log_used) - b))
}

# ---- 1. files of no template ------------------------------------------------
touch "$M/empty.raw"
truncate -s 8M "$M/trunc.raw"
fallocate -l 16M "$M/falloc.raw"
echo hello > "$M/shell.txt"
[ "$(stat -c %s "$M/empty.raw" "$M/trunc.raw" "$M/falloc.raw")" = "$(printf '0\n8388608\n16777216')" ] ||
	fail "sizes of new files: $(stat -c %s "$M/empty.raw" "$M/trunc.raw" "$M/falloc.raw")"
cmp -s "$M/trunc.raw" <(head -c 8M /dev/zero) || fail "a truncated new file does not read zeros"
[ "$(cat "$M/shell.txt")" = hello ] || fail "a shell redirect into the mount"
for n in empty.raw trunc.raw falloc.raw shell.txt; do
	ctl list | grep -qE "^$n +- " || fail "$n is not a disk of no template: $(ctl list)"
done
[ "$(status_field '[d["template"] for d in s["disks"] if d["name"] == "falloc.raw"][0]')" = None ] ||
	fail "status --json does not say null for no template"
# qemu-img's preallocation=falloc reserves nothing in a log (fallocate only sets the size)
added=$(log_added qemu-img create -q -f raw -o preallocation=falloc "$M/prealloc.raw" 64M) ||
	fail "qemu-img create -o preallocation=falloc"
# (qemu-img itself writes one 4 KiB block of zeros at 0, to learn the alignment)
[ "$added" -lt 65536 ] || fail "a preallocated 64 MiB file added $added log bytes"
cmp -s "$M/prealloc.raw" <(head -c 64M /dev/zero) || fail "a preallocated file does not read zeros"
rm "$M/prealloc.raw"
ctl create sized.raw --size 1M >/dev/null || fail "hcowctl create --size without a template"
[ "$(stat -c %s "$M/sized.raw")" = 1048576 ] || fail "hcowctl create --size: wrong size"
ok "touch, truncate, fallocate, >, qemu-img -o preallocation=falloc ($added log bytes) make disks of no template; hcowctl create --size too"

# ---- 2. directories -----------------------------------------------------------
mkdir -p "$M/images/100" "$M/_base"
ctl create images/100/vm-100-disk-0.raw --template base.img >/dev/null ||
	fail "hcowctl create with a path"
cmp -s "$M/images/100/vm-100-disk-0.raw" "$T/tmpl/base.img" || fail "a disk made by path does not read its template"
expect_fail "mkdir over a directory" "exists" mkdir "$M/images"
expect_fail "mkdir over a disk" "exists" mkdir "$M/empty.raw"
expect_fail "mkdir in a missing directory" "No such file" mkdir "$M/nosuch/dir"
expect_fail "rmdir of a directory with a disk" "not empty" rmdir "$M/images/100"
expect_fail "rmdir of a directory with a directory" "not empty" rmdir "$M/images"
expect_fail "rmdir of a disk" "Not a directory" rmdir "$M/empty.raw"
expect_fail "unlink of a directory" "Is a directory" unlink "$M/images"
expect_fail "bad character in a name" "Invalid argument" mkdir "$M/images/bad name"
expect_fail "hidden name" "Invalid argument" touch "$M/images/.hidden"
expect_fail "create in .snapshots" "Read-only" touch "$M/.snapshots/x"
expect_fail "create in .templates" "Read-only" touch "$M/.templates/x"
expect_fail "mkdir in .templates" "Read-only" mkdir "$M/.templates/x"
expect_fail "rename .snapshots" "Read-only" mv "$M/.snapshots" "$M/snaps"
expect_fail "rename a directory into itself" "Invalid argument|subdirectory of itself" mv "$M/images" "$M/images/100/in"
mkdir "$M/images/101"
expect_fail "rename a disk over a directory" "Is a directory|cannot overwrite directory" \
	mv -T "$M/empty.raw" "$M/images/101"
mv "$M/trunc.raw" "$M/images/101/" || fail "move a disk into a directory"
expect_fail "rename a directory over a non-empty one" "not empty|exists" mv -T "$M/images/100" "$M/images/101"
mkdir "$M/images/102"
mv -T "$M/images/101" "$M/images/102" || fail "rename a directory over an empty one"
mv "$M/images" "$M/vms" || fail "rename a directory with disks below it"
[ "$(cd "$M/vms" && find . | sort | tr '\n' ' ')" = ". ./100 ./100/vm-100-disk-0.raw ./102 ./102/trunc.raw " ] ||
	fail "the tree after renames: $(cd "$M/vms" && find . | sort | tr '\n' ' ')"
ctl list | grep -q "^vms/100/vm-100-disk-0.raw " || fail "hcowctl does not see the moved disk: $(ctl list)"
cmp -s "$M/vms/100/vm-100-disk-0.raw" "$T/tmpl/base.img" || fail "a disk moved with its directory reads wrong"
[ "$(stat -c %h "$M/vms")" = 4 ] || fail "link count of a directory with 2 subdirectories: $(stat -c %h "$M/vms")"
# permissions: the creator owns what it makes, with its mode; others are kept out
mkdir -m 0700 "$M/private"
chown 12345:12345 "$M/private"
setpriv --reuid=12345 --regid=12345 --clear-groups sh -c "umask 077; touch '$M/private/mine.raw'" ||
	fail "the owner of a directory cannot create in it"
[ "$(stat -c '%u %a' "$M/private/mine.raw")" = "12345 600" ] || fail "owner/mode of a user's file: $(stat -c '%U %a' "$M/private/mine.raw")"
expect_fail "another user creates in a 0700 directory" "denied" \
	setpriv --reuid=23456 --regid=23456 --clear-groups touch "$M/private/theirs.raw"
expect_fail "a user creates in the root" "denied" setpriv --reuid=23456 --regid=23456 --clear-groups touch "$M/x.raw"
ok "mkdir, rmdir, rename at any depth, with a file system's errors and permissions"

# ---- 3. .snapshots and .templates -------------------------------------------------
ctl snapshot vms/100/vm-100-disk-0.raw s1 >/dev/null || fail "snapshot of a disk in a directory"
[ "$(ls "$M/.snapshots/vms/100")" = "vm-100-disk-0.raw@s1" ] || fail ".snapshots does not show the tree: $(ls -R "$M/.snapshots")"
cmp -s "$M/.snapshots/vms/100/vm-100-disk-0.raw@s1" "$T/tmpl/base.img" || fail "the snapshot reads wrong"
expect_fail "write a snapshot in a directory" "Read-only" sh -c "echo x > '$M/.snapshots/vms/100/vm-100-disk-0.raw@s1'"
[ "$(ls "$M/.templates")" = base.img ] || fail ".templates lists: $(ls "$M/.templates")"
cmp -s "$M/.templates/base.img" "$T/tmpl/base.img" || fail ".templates/base.img reads wrong"
expect_fail "write a template" "Read-only" sh -c "echo x >> '$M/.templates/base.img'"
expect_fail "delete a template" "Read-only" rm -f "$M/.templates/base.img"
ls -a "$M" | grep -q '^\.snapshots$\|^\.templates$' && fail "the root lists .snapshots or .templates: $(ls -a "$M")"
ctl delete vms/100/vm-100-disk-0.raw@s1 >/dev/null || fail "delete a snapshot by path"
ok ".snapshots mirrors the tree; .templates reads, refuses changes; neither is listed"

# ---- 4. copies share ----------------------------------------------------------------
dd if=/dev/urandom of="$M/vms/100/vm-100-disk-0.raw" bs=64k count=32 seek=8 conv=notrunc oflag=direct status=none
added=$(log_added sh -c "cp '$M/vms/100/vm-100-disk-0.raw' '$M/vms/100/copy.raw' &&
	cp '$M/.templates/base.img' '$M/_base/from-template.raw'") || fail "cp in the mount"
[ "$added" -lt 65536 ] || fail "cp added $added bytes to the log (2 MiB were shared)"
cmp -s "$M/vms/100/vm-100-disk-0.raw" "$M/vms/100/copy.raw" || fail "the copy differs"
cmp -s "$M/_base/from-template.raw" "$T/tmpl/base.img" || fail "the copy of the template differs"
ctl list | grep -qE "^_base/from-template.raw +base.img " || fail "a copy of .templates/base.img is not a clone of it: $(ctl list)"
printf 'diverge' | dd of="$M/vms/100/copy.raw" bs=1 seek=600000 conv=notrunc status=none
cmp -s "$M/vms/100/vm-100-disk-0.raw" "$M/vms/100/copy.raw" && fail "a write to the copy shows in the source"
ok "cp shares: $added log bytes for a 4 MiB disk with 2 MiB of its own; copies diverge"

# a disk of a sparse template (as VM images are): cp shares it too
truncate -s 256M "$T/tmpl/sparse.img"
dd if=/dev/urandom of="$T/tmpl/sparse.img" bs=1M count=2 seek=100 conv=notrunc status=none
ctl create sp1.raw --template sparse.img >/dev/null
dd if=/dev/urandom of="$M/sp1.raw" bs=64k count=16 seek=200 conv=notrunc oflag=direct status=none
[ "$(stat -c %b "$M/sp1.raw")" = $((256 * MiB / 512)) ] || fail "st_blocks is not the disk's size: $(stat -c %b "$M/sp1.raw")"
added=$(log_added sh -c "cp '$M/sp1.raw' '$M/sp2.raw' && cp '$M/.templates/sparse.img' '$M/sp3.raw'") ||
	fail "cp of a sparse template or a disk of one"
[ "$added" -lt 65536 ] || fail "cp of a disk of a sparse template added $added log bytes"
cmp -s "$M/sp1.raw" "$M/sp2.raw" || fail "the copy of a disk of a sparse template differs"
cmp -s "$M/sp3.raw" "$T/tmpl/sparse.img" || fail "the copy of a sparse template differs"
ctl list | grep -qE "^sp3.raw +sparse.img .* 0 B " || fail "a copy of a sparse template is not a clone of it: $(ctl list)"
ok "cp of a sparse template and of a disk of one share too ($added log bytes)"

# ---- 5. replacement, remount, check, df ------------------------------------------------
exec 9<"$M/vms/100/copy.raw"
(cd "$M/vms/100" && W=$(worker_pid) && kill -9 "$W" && wait_for new_worker_serving "$W" &&
	[ "$(ls | tr '\n' ' ')" = "copy.raw vm-100-disk-0.raw " ] && cmp -s copy.raw /dev/fd/9) ||
	fail "a replacement worker does not serve a directory a shell is in"
exec 9<&-
umount_fs
mount_fs
[ "$(cd "$M" && find . -path ./.snapshots -prune -o -print | sort | tr '\n' ' ')" = \
	". ./_base ./_base/from-template.raw ./empty.raw ./falloc.raw ./private ./private/mine.raw ./shell.txt ./sized.raw ./sp1.raw ./sp2.raw ./sp3.raw ./vms ./vms/100 ./vms/100/copy.raw ./vms/100/vm-100-disk-0.raw ./vms/102 ./vms/102/trunc.raw " ] ||
	fail "the tree after a remount: $(cd "$M" && find . | sort | tr '\n' ' ')"
out=$(ctl check) || fail "check: $out"
echo "$out" | grep -q "directories: ok (5;" || fail "check does not know the directories: $out"
[ "$(df --output=size -B1 "$M" | tail -1)" = "$(df --output=size -B1 "$D" | tail -1)" ] ||
	fail "df of the mount is not the data dir's"
ok "a replacement worker and a remount serve the tree; check knows 5 directories; df is the data dir's"
