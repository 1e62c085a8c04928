#!/bin/bash
# Proves hcowctl export, import and promote (issue 12's data movers): an
# export is a qcow2 overlay of the template that qemu-img checks clean and
# finds equal to the disk, costing about the log's data, not the disk's size
# (the worker's answer to `ranges` comes in pages: a small reply bound here);
# an import of it, and of an overlay qemu-io wrote, is equal to it and holds
# only the overlay's data; a promoted template equals the disk and serves
# create at once; existing results, missing disks and a wrong backing file
# are refused; an interrupted run leaves nothing under the final name and no
# temporary file, disk or daemon.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test qemu-img qemu-storage-daemon qemu-io fallocate
export TMPDIR=$T	# hcowctl's export mount points: cleanup finds their daemons by $T
O=$T/out
mkdir "$O"
make_template deb.img $((8 * MiB))
HCOWFS_TEST_REPLY_MAX=16384 mount_fs
ctl create vm.img --template deb.img >/dev/null
# a truncate then a grow (past the template's end), random 4k writes, a discarded range
truncate -s $((6 * MiB)) "$M/vm.img"
truncate -s $((256 * MiB)) "$M/vm.img"
python3 - "$M/vm.img" <<'PY'
import os, random, sys
r = random.Random(12)
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(400):
    os.pwrite(fd, os.urandom(4096), r.randrange(0, 256 << 20, 4096))
os.fsync(fd)
PY
fallocate -p -o $((2 * MiB)) -l $((256 * 1024)) "$M/vm.img"
log_bytes() { ctl list --json | python3 -c "import json,sys; print([d['log_bytes'] for d in json.load(sys.stdin) if d['name'] == '$1'][0])"; }
vm_log=$(log_bytes vm.img)

ctl export vm.img "$O/vm.qcow2" >/dev/null || fail "export"
qemu-img check -q "$O/vm.qcow2" || fail "qemu-img check of the export"
qemu-img compare -q -f qcow2 -F raw "$O/vm.qcow2" "$M/vm.img" || fail "export differs from the disk"
qemu-img info --output=json "$O/vm.qcow2" | python3 -c "
import json, os, sys
i = json.load(sys.stdin)
assert i['backing-filename'] == os.path.realpath('$T/tmpl/deb.img'), i
assert i.get('backing-filename-format') == 'raw', i
assert i['virtual-size'] == 256 << 20, i" || fail "backing file or size of the export"
alloc=$(( $(stat -c %b "$O/vm.qcow2") * 512 ))
# 4k writes land in 64 KiB clusters: at most 16 times the log's bytes, plus metadata
[ "$alloc" -le $((16 * vm_log + 2 * MiB)) ] && [ "$alloc" -lt $((32 * MiB)) ] ||
	fail "export takes $alloc bytes for $vm_log bytes of log in a 256 MiB disk"
ok "export: check clean, equal to the disk, backing $T/tmpl/deb.img raw; $alloc bytes on disk for $vm_log bytes of log, disk 256 MiB"

ctl import "$O/vm.qcow2" back.img --template deb.img >/dev/null || fail "import"
cmp "$M/back.img" "$M/vm.img" || fail "imported disk differs"
overlay_data=$(qemu-img map --output=json "$O/vm.qcow2" | python3 -c "
import json, sys
print(sum(e['length'] for e in json.load(sys.stdin) if e['depth'] == 0 and e['data'] and not e['zero']))")
back_log=$(log_bytes back.img)
[ "$back_log" = "$overlay_data" ] || fail "imported disk holds $back_log bytes in the log, the overlay $overlay_data"
ok "import of the export: equal; $back_log bytes in the log = the overlay's data"

qemu-img create -q -f qcow2 -b "$T/tmpl/deb.img" -F raw "$O/q.qcow2"
qemu-io -c 'write -P 0xab 1M 64k' -c 'write -z 3M 128k' "$O/q.qcow2" >/dev/null
ctl import "$O/q.qcow2" q.img --template deb.img >/dev/null || fail "import of qemu-io's overlay"
qemu-img compare -q -f raw -F qcow2 "$M/q.img" "$O/q.qcow2" || fail "import of qemu-io's overlay differs"
[ "$(od -An -tx1 -j $((MiB)) -N 4 "$M/q.img" | tr -d ' ')" = abababab ] || fail "no 0xab at 1M"
cmp -n $((128 * 1024)) -i $((3 * MiB)):0 "$M/q.img" /dev/zero || fail "zeroed range is not zeros"
ok "import of an overlay qemu-io wrote (data and zero clusters)"

# an overlay of a copy of the template at another path: same size, same bytes
cp "$T/tmpl/deb.img" "$O/deb-copy.raw"
qemu-img create -q -f qcow2 -b "$O/deb-copy.raw" -F raw "$O/copy.qcow2"
qemu-io -c 'write -P 0x5a 0 4k' "$O/copy.qcow2" >/dev/null
ctl import "$O/copy.qcow2" copy.img --template deb.img >/dev/null || fail "import of an overlay of a copy"
qemu-img compare -q -f raw -F qcow2 "$M/copy.img" "$O/copy.qcow2" || fail "import of an overlay of a copy differs"
ok "import of an overlay of the template's copy at another path"

ctl promote vm.img web.img >/dev/null || fail "promote"
cmp "$T/tmpl/web.img" "$M/vm.img" || fail "promoted template differs from the disk"
talloc=$(( $(stat -c %b "$T/tmpl/web.img") * 512 ))
[ "$talloc" -lt $((32 * MiB)) ] || fail "promoted template is not sparse: $talloc bytes"
ctl create web1.img --template web.img >/dev/null || fail "create from the promoted template"
cmp "$M/web1.img" "$T/tmpl/web.img" || fail "disk of the promoted template differs"
ok "promote: the template equals the disk ($talloc bytes allocated of 256 MiB), create works at once"

expect_fail "export to an existing file" "exists" ctl export vm.img "$O/q.qcow2"
expect_fail "import to an existing disk" "exists" ctl import "$O/q.qcow2" vm.img --template deb.img
expect_fail "promote to an existing template" "exists" ctl promote vm.img deb.img
expect_fail "export of a missing disk" "no disk named 'nope.img'" ctl export nope.img "$O/nope.qcow2"
expect_fail "promote of a missing disk" "nope.img" ctl promote nope.img nope-t.img
make_template other.img $((8 * MiB))
qemu-img create -q -f qcow2 -b "$T/tmpl/other.img" -F raw "$O/other.qcow2"
expect_fail "import of an overlay of another template" "not template" \
	ctl import "$O/other.qcow2" other.img --template deb.img
expect_fail "import of a raw file" "not a qcow2" ctl import "$T/tmpl/deb.img" raw.img --template deb.img
[ ! -e "$O/nope.qcow2" ] && [ ! -e "$M/other.img" ] && [ ! -e "$T/tmpl/nope-t.img" ] ||
	fail "a refused command left a result"

# interrupted (SIGINT raised once 1 MiB is copied): nothing under the final name, no temporary
qsds() { pgrep -f "qemu-storage-daemon.*$T/" || true; }
HCOWCTL_TEST_INTERRUPT_AT=$MiB expect_fail "interrupted export" "interrupted" \
	ctl export vm.img "$O/int.qcow2"
HCOWCTL_TEST_INTERRUPT_AT=$MiB expect_fail "interrupted import" "interrupted" \
	ctl import "$O/vm.qcow2" int.img --template deb.img
HCOWCTL_TEST_INTERRUPT_AT=$MiB expect_fail "interrupted promote" "interrupted" \
	ctl promote vm.img int.img
[ -z "$(ls -A "$O" | grep -v -e '^vm.qcow2$' -e '^q.qcow2$' -e '^copy.qcow2$' -e '^deb-copy.raw$' -e '^other.qcow2$')" ] ||
	fail "left in the output dir: $(ls -A "$O")"
[ "$(ls -A "$T/tmpl" | sort | tr '\n' ' ')" = "base.img deb.img other.img web.img " ] ||
	fail "left in the template dir: $(ls -A "$T/tmpl")"
[ "$(ls "$M" | sort | tr '\n' ' ')" = "back.img copy.img q.img vm.img web1.img " ] ||
	fail "left in the mount: $(ls "$M")"
[ -z "$(qsds)" ] || fail "qemu-storage-daemon left running: $(qsds)"
[ -z "$(ls "$T" | grep hcowctl-)" ] || fail "export mount points left: $(ls "$T")"
ok "interrupted export, import and promote leave nothing behind"
