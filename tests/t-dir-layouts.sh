#!/bin/bash
# Proves the mount is a directory Proxmox's and OpenStack Nova's image
# layouts work in as they are (issue 20), with the tools they run:
#  - Proxmox's directory storage: images/<vmid>/vm-<vmid>-disk-N.{raw,qcow2}
#    made with mkdir -p, qemu-img create -f raw|qcow2, qemu-io and random
#    writes, qemu-img convert raw -> qcow2 -> raw, and convert -C (copy
#    offloading: copy_file_range) raw -> raw and raw -> qcow2; and
#    hcowctl create of a disk by path;
#  - Nova's image cache: an image fetched to _base/<sha1>.part, converted
#    from qcow2 to raw and renamed; <instance uuid>/disk, a qcow2 overlay
#    with the backing file ../_base/<sha1>, written with qemu-io, its
#    directory renamed (a resize) and back, and qemu-img commit into _base;
#  - every step checked by bytes: qemu-img compare (and check for qcow2)
#    against a plain file given the same writes, cmp, sha256 of qemu-img dd
#    and qemu-io read -P; mv of a directory, rmdir of an empty one, rmdir of
#    a full one refused with ENOTEMPTY; a remount keeps the tree and its
#    bytes.
# HCOWFS_PLAIN=1 runs it on a plain directory (tests/dirtest.sh).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$top_srcdir/tests/dirtest.sh"
dir_test qemu-img qemu-io sha256sum cmp
dir_mount
start_ms=$(now_ms)

# qio FMT FILE CMD...: qemu-io commands on FILE; an error or a pattern
# mismatch fails the test
qio() {
	fmt=$1 file=$2
	shift 2
	args=()
	for c in "$@"; do args+=(-c "$c"); done
	out=$(qemu-io -f "$fmt" "${args[@]}" "$file" 2>&1) || fail "qemu-io -f $fmt $file $*: $out"
	if echo "$out" | grep -qi "verification failed\|error\|failed"; then
		fail "qemu-io -f $fmt $file $*: $out"
	fi
}

# same FMT FILE REF WHAT: FILE (of format FMT) reads exactly as the raw REF
same() {
	out=$(qemu-img compare -f "$1" -F raw "$2" "$3" 2>&1) || fail "$4: qemu-img compare $2 $3: $out"
}

# qcheck FILE WHAT: qemu-img check finds the qcow2 FILE clean
qcheck() {
	out=$(qemu-img check -f qcow2 "$1" 2>&1) || fail "$2: qemu-img check $1: $out"
}

### Proxmox: images/<vmid>/vm-<vmid>-disk-N
P=$M/images/100
mkdir -p "$P" || fail "mkdir -p images/100"
[ -d "$P" ] || fail "images/100 is not a directory after mkdir -p"
qemu-img create -q -f raw "$P/vm-100-disk-0.raw" 64M || fail "qemu-img create -f raw images/100/vm-100-disk-0.raw"
truncate -s 64M "$T/ref0.raw"
same raw "$P/vm-100-disk-0.raw" "$T/ref0.raw" "a new raw disk"
[ "$(stat -c %s "$P/vm-100-disk-0.raw")" = $((64 * MiB)) ] || fail "vm-100-disk-0.raw is not 64 MiB"
for f in "$P/vm-100-disk-0.raw" "$T/ref0.raw"; do
	qio raw "$f" 'write -P 0x5a 1M 3M' 'write -P 0xa5 17000123 777' 'write -z 2M 64k'
done
$PATTERN mirror "$P/vm-100-disk-0.raw" "$T/ref0.raw" --seed proxmox --ops 100 ||
	fail "random writes to vm-100-disk-0.raw"
qio raw "$P/vm-100-disk-0.raw" 'read -P 0xa5 17000123 777'
same raw "$P/vm-100-disk-0.raw" "$T/ref0.raw" "vm-100-disk-0.raw after qemu-io and random writes"
ok "mkdir -p images/100; qemu-img create -f raw vm-100-disk-0.raw 64M reads zeros; qemu-io and random writes read back"

qemu-img create -q -f qcow2 "$P/vm-100-disk-1.qcow2" 64M || fail "qemu-img create -f qcow2 vm-100-disk-1.qcow2"
truncate -s 64M "$T/ref1.raw"
qio qcow2 "$P/vm-100-disk-1.qcow2" 'write -P 0x11 0 1M' 'write -P 0x22 33M 2M' 'write -P 0x33 63M 1M'
qio raw "$T/ref1.raw" 'write -P 0x11 0 1M' 'write -P 0x22 33M 2M' 'write -P 0x33 63M 1M'
qio qcow2 "$P/vm-100-disk-1.qcow2" 'read -P 0x22 33M 2M' 'read -P 0 1M 32M'
qcheck "$P/vm-100-disk-1.qcow2" "vm-100-disk-1.qcow2"
same qcow2 "$P/vm-100-disk-1.qcow2" "$T/ref1.raw" "vm-100-disk-1.qcow2"
ok "qemu-img create -f qcow2 vm-100-disk-1.qcow2 64M, qemu-io writes; qemu-img check clean, compare equal"

qemu-img convert -f raw -O qcow2 "$P/vm-100-disk-0.raw" "$P/vm-100-disk-2.qcow2" ||
	fail "qemu-img convert raw -> qcow2"
qcheck "$P/vm-100-disk-2.qcow2" "convert raw -> qcow2"
same qcow2 "$P/vm-100-disk-2.qcow2" "$T/ref0.raw" "convert raw -> qcow2"
qemu-img convert -f qcow2 -O raw "$P/vm-100-disk-2.qcow2" "$P/vm-100-disk-3.raw" ||
	fail "qemu-img convert qcow2 -> raw"
cmp "$P/vm-100-disk-3.raw" "$T/ref0.raw" || fail "convert raw -> qcow2 -> raw is not the same bytes"
ok "qemu-img convert raw -> qcow2 (check clean, compare equal) -> raw (cmp equal)"

# copy offloading: copy_file_range between disks of the mount
mkdir "$M/images/101" || fail "mkdir images/101"
before=$(log_bytes)
t0=$(now_ms)
qemu-img convert -C -f raw -O raw "$P/vm-100-disk-0.raw" "$M/images/101/vm-101-disk-0.raw" ||
	fail "qemu-img convert -C raw -> raw"
t1=$(now_ms)
added=$(($(log_bytes) - before))
cmp "$M/images/101/vm-101-disk-0.raw" "$T/ref0.raw" || fail "convert -C raw -> raw is not the same bytes"
if on_mount; then
	[ "$added" -lt "$MiB" ] || fail "convert -C of a disk added $added bytes of log (not shared)"
fi
ok "qemu-img convert -C raw -> raw: cmp equal, $((t1 - t0)) ms, $added bytes of log added"
qemu-img convert -C -f raw -O qcow2 "$P/vm-100-disk-0.raw" "$M/images/101/vm-101-disk-1.qcow2" ||
	fail "qemu-img convert -C raw -> qcow2"
qcheck "$M/images/101/vm-101-disk-1.qcow2" "convert -C raw -> qcow2"
same qcow2 "$M/images/101/vm-101-disk-1.qcow2" "$T/ref0.raw" "convert -C raw -> qcow2"
ok "qemu-img convert -C raw -> qcow2 (copies at other offsets): check clean, compare equal"

mkdir "$M/images/200" || fail "mkdir images/200"
dir_create images/200/vm-200-disk-0.raw base.img
cmp "$M/images/200/vm-200-disk-0.raw" "$T/tmpl/base.img" || fail "images/200/vm-200-disk-0.raw is not its template"
if on_mount; then
	tmpl=$(status_field '[d["template"] for d in s["disks"] if d["name"] == "images/200/vm-200-disk-0.raw"]')
	[ "$tmpl" = "['base.img']" ] || fail "status: images/200/vm-200-disk-0.raw has template $tmpl"
fi
ok "hcowctl create images/200/vm-200-disk-0.raw --template base.img reads as the template"

### Nova: _base/<sha1> and <instance uuid>/disk
sha1=$(printf 'glance-image-0001' | sha1sum | cut -d' ' -f1)
base=$M/_base/$sha1
uuid=3f0c5e2a-8b1d-4c7e-9a6f-2d4b8e1c0a57
$PATTERN fill "$T/image.raw" --size $((32 * MiB)) --seed glance
qemu-img convert -f raw -O qcow2 "$T/image.raw" "$T/image.qcow2" || fail "qemu-img convert of the glance image"
mkdir -p "$M/_base" || fail "mkdir -p _base"
# fetch_to_raw: download to .part, convert to .converted, rename into place
cp "$T/image.qcow2" "$base.part" || fail "cp of the image to _base/$sha1.part"
qemu-img convert -f qcow2 -O raw "$base.part" "$base.converted" || fail "qemu-img convert qcow2 -> raw into _base"
rm "$base.part" || fail "rm _base/$sha1.part"
mv "$base.converted" "$base" || fail "mv _base/$sha1.converted _base/$sha1"
cmp "$base" "$T/image.raw" || fail "_base/$sha1 is not the image"
ok "_base/$sha1: image copied in as .part, qemu-img convert qcow2 -> raw, renamed; cmp equal"

mkdir "$M/$uuid" || fail "mkdir $uuid"
(cd "$M/$uuid" && qemu-img create -q -f qcow2 -b "../_base/$sha1" -F raw disk 64M) ||
	fail "qemu-img create -f qcow2 -b ../_base/$sha1 $uuid/disk"
backing=$(qemu-img info --output=json "$M/$uuid/disk" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["backing-filename"])')
[ "$backing" = "../_base/$sha1" ] || fail "$uuid/disk has backing file $backing"
cp "$T/image.raw" "$T/refn.raw"
truncate -s 64M "$T/refn.raw"
same qcow2 "$M/$uuid/disk" "$T/refn.raw" "a new overlay"
for w in "qcow2 $M/$uuid/disk" "raw $T/refn.raw"; do
	# shellcheck disable=SC2086
	qio $w 'write -P 0xc3 4M 1M' 'write -P 0x3c 40M 512k' 'write -z 8M 64k' 'write -P 0x7e 31M 2M'
done
qio qcow2 "$M/$uuid/disk" 'read -P 0xc3 4M 1M' 'read -P 0 8M 64k' 'read -P 0x7e 31M 2M'
qcheck "$M/$uuid/disk" "$uuid/disk after qemu-io writes"
same qcow2 "$M/$uuid/disk" "$T/refn.raw" "$uuid/disk after qemu-io writes"
qemu-img dd -f qcow2 -O raw bs=1M if="$M/$uuid/disk" of="$T/dd.raw" || fail "qemu-img dd of $uuid/disk"
[ "$(sha "$T/dd.raw")" = "$(sha "$T/refn.raw")" ] || fail "sha256 of qemu-img dd of $uuid/disk differs"
cmp "$base" "$T/image.raw" || fail "writes to the overlay changed _base/$sha1"
ok "$uuid/disk, qcow2 over ../_base/$sha1: qemu-io writes, check clean, compare and sha256 of qemu-img dd equal, base unchanged"

# a resize renames the instance's directory to <uuid>_resize
mv "$M/$uuid" "$M/${uuid}_resize" || fail "mv $uuid ${uuid}_resize"
[ ! -e "$M/$uuid" ] || fail "$uuid is still there after mv"
same qcow2 "$M/${uuid}_resize/disk" "$T/refn.raw" "the overlay in the renamed directory"
mv "$M/${uuid}_resize" "$M/$uuid" || fail "mv ${uuid}_resize $uuid"
ok "mv of the instance directory to ${uuid}_resize and back; the overlay reads the same"

qemu-img commit -f qcow2 "$M/$uuid/disk" >/dev/null || fail "qemu-img commit $uuid/disk"
cmp "$base" "$T/refn.raw" || fail "_base/$sha1 after the commit is not the overlay's bytes"
qcheck "$M/$uuid/disk" "$uuid/disk after the commit"
same qcow2 "$M/$uuid/disk" "$T/refn.raw" "$uuid/disk after the commit"
ok "qemu-img commit of $uuid/disk into _base/$sha1: the base holds the overlay's bytes (cmp), check clean"

### directories
mkdir "$M/images/999" || fail "mkdir images/999"
rmdir "$M/images/999" || fail "rmdir of the empty images/999"
[ ! -e "$M/images/999" ] || fail "images/999 is still there after rmdir"
e=$(errno_of rmdir "$P")
[ "$e" = ENOTEMPTY ] || fail "rmdir of images/100 (not empty): $e, not ENOTEMPTY"
mv "$M/images/101" "$M/images/102" || fail "mv images/101 images/102"
[ ! -e "$M/images/101" ] || fail "images/101 is still there after mv"
cmp "$M/images/102/vm-101-disk-0.raw" "$T/ref0.raw" || fail "images/102/vm-101-disk-0.raw after mv"
same qcow2 "$M/images/102/vm-101-disk-1.qcow2" "$T/ref0.raw" "images/102/vm-101-disk-1.qcow2 after mv"
ok "rmdir of an empty directory; rmdir of images/100 fails with ENOTEMPTY; mv images/101 images/102 keeps its disks"

# tree: every entry under M (type, path, size, sha256 of files)
tree() {
	(cd "$M" && find . -path ./.templates -prune -o -printf '%y %p %s\n' | sort |
		while read -r type path size; do
			if [ "$type" = f ]; then echo "$type $path $size $(sha "$path")"; else echo "$type $path"; fi
		done)
}
tree > "$T/tree.before"
if on_mount; then
	# each file of the tree is a disk of the store, named by its path
	(cd "$M" && find . -type f -printf '%P\n' | sort) > "$T/files"
	status_field '"\n".join(sorted(d["name"] for d in s["disks"]))' > "$T/disks"
	diff "$T/files" "$T/disks" >/dev/null || fail "the files of the tree and the store's disks differ: $(diff "$T/files" "$T/disks")"
fi
dir_remount
tree > "$T/tree.after"
diff "$T/tree.before" "$T/tree.after" >/dev/null ||
	fail "the tree changed across a remount: $(diff "$T/tree.before" "$T/tree.after")"
qcheck "$M/$uuid/disk" "$uuid/disk after the remount"
same qcow2 "$M/$uuid/disk" "$T/refn.raw" "$uuid/disk after the remount"
if on_mount; then
	out=$(ctl check) || fail "hcowctl check: $out"
fi
ok "after a remount: the same $(wc -l < "$T/tree.after") entries, sizes and sha256; the overlay still reads through ../_base; check clean"
echo "# t-dir-layouts took $(($(now_ms) - start_ms)) ms"
