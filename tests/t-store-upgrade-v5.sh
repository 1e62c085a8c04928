#!/bin/bash
# Proves: a store made by the build before directories (catalog schema 5, log
# format 4) works unchanged.  tests/fixtures/store-v5.tar.gz is the data dir
# 55df685's mount.hcowfs made: vm.img cloned from a 1 MiB base.img
# (make_template's bytes) with 'written by 55df685' at 8192, its snapshot
# vm.img@s1 (taken then), 'after the snapshot' at 16384, and c.img, a clone of
# vm.img@s1 with 'the clone' at 32768.  An offline check reads it as it is
# and changes nothing; a mount moves the catalog to schema 6 (directories,
# disks of no template) and every disk and snapshot reads as it was; the
# mount then takes directories and new files, and all of it is there after a
# remount.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch

M=$T/mnt
make_template base.img 1048576
tar -C "$T/data" -xzf "${top_srcdir:-$(dirname "$0")/..}/tests/fixtures/store-v5.tar.gz"
catalog() {
	python3 - "$T/data/catalog.db" "$@" <<'PY'
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
if sys.argv[2] == "fix":
    # the row names the inode and mtime the template had where the fixture was made
    st = os.stat(sys.argv[3] + "/base.img")
    db.execute("UPDATE templates SET ino = ?, mtime_ns = ?, btime_ns = 0, handle = ''",
               (st.st_ino, st.st_mtime_ns))
    db.execute("UPDATE meta SET value = ? WHERE key = 'template_dir'", (sys.argv[3],))
    db.commit()
else:
    print(db.execute(sys.argv[2]).fetchone()[0])
PY
}
catalog fix "$T/tmpl"
[ "$(catalog "SELECT value FROM meta WHERE key = 'schema_version'")" = 5 ] || fail "the fixture is not a schema 5 store"

out=$("$HCOWCTL" check "$T/data") || fail "offline check of a schema 5 store failed: $out"
[ "$(catalog "SELECT value FROM meta WHERE key = 'schema_version'")" = 5 ] ||
	fail "an offline check migrated the catalog"
ok "offline check reads a schema 5 store as it is"

# expect_disk FILE OFF=TEXT...: the template's bytes with these writes
expect_disk() {
	python3 - "$T/tmpl/base.img" "$@" <<'PY' || fail "$2 does not read as it was written by 55df685"
import sys
want = bytearray(open(sys.argv[1], "rb").read())
for w in sys.argv[3:]:
    off, text = w.split("=", 1)
    want[int(off):int(off) + len(text)] = text.encode()
assert open(sys.argv[2], "rb").read() == bytes(want)
PY
}
check_disks() {
	expect_disk "$M/vm.img" "8192=written by 55df685" "16384=after the snapshot"
	expect_disk "$M/.snapshots/vm.img@s1" "8192=written by 55df685"
	expect_disk "$M/c.img" "8192=written by 55df685" "32768=the clone"
}

mount_fs
check_disks
[ "$(catalog "SELECT value FROM meta WHERE key = 'schema_version'")" = 6 ] ||
	fail "the catalog was not moved to schema 6"
[ "$(catalog "SELECT count(*) FROM sqlite_master WHERE name = 'dirs'")" = 1 ] || fail "no dirs table"
[ "$(catalog "SELECT \"notnull\" FROM pragma_table_info('disks') WHERE name = 'template_id'")" = 0 ] ||
	fail "disks.template_id is still NOT NULL"
ctl list | grep -q "c.img .*clone of vm.img@s1" || fail "the clone lost its origin: $(ctl list)"
ok "a mount moves the catalog to schema 6; every disk and snapshot reads as it was"

mkdir -p "$M/images/100"
printf 'new' > "$M/images/100/new.raw"
ctl create images/100/vm2.img --template base.img >/dev/null
umount_fs
mount_fs
check_disks
[ "$(cat "$M/images/100/new.raw")" = new ] || fail "a file made after the move is gone after a remount"
expect_disk "$M/images/100/vm2.img"
ctl list | grep -qE '^images/100/new.raw +- ' || fail "the new file is not a disk of no template: $(ctl list)"
"$HCOWCTL" check -m "$M" >/dev/null 2>&1 || true
umount_fs
out=$("$HCOWCTL" check "$T/data") || fail "check after the move: $out"
ok "directories and files of no template on the moved store, after a remount too; check is clean"
