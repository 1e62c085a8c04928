#!/bin/bash
# Proves: a store made by the previous version (catalog schema 2, before
# template identity) still works.  tests/fixtures/store-v2.tar.gz is the
# data dir 6ddaeb9's mount.hcowfs made: one disk vm.img cloned from a 1 MiB
# base.img (make_template's bytes), 'written by 6ddaeb9' at 8192.  An offline
# check reads it as it is and changes nothing; a mount migrates its catalog
# to schema 3, and its first checkpoint moves the extent rows into the index
# file (schema 6, no rows left, with the snapshot columns and directories); the disk reads its own bytes and the
# template's; the template's birth time, file handle and content sums are
# recorded; and the store mounts again after that, its extents read from the
# index alone.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_root_fuse
scratch

MiB=1048576
M=$T/mnt
make_template base.img $MiB
tar -C "$T/data" -xzf "${top_srcdir:-$(dirname "$0")/..}/tests/fixtures/store-v2.tar.gz"
# the row names the inode and mtime the template had where the fixture was
# made: point it at this copy of the same bytes, and at this template dir
catalog() {
	python3 - "$T/data/catalog.db" "$@" <<'PY'
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
if sys.argv[2] == "fix":
    st = os.stat(sys.argv[3] + "/base.img")
    db.execute("UPDATE templates SET ino = ?, mtime_ns = ?", (st.st_ino, st.st_mtime_ns))
    db.execute("UPDATE meta SET value = ? WHERE key = 'template_dir'", (sys.argv[3],))
    db.commit()
else:
    print(db.execute(sys.argv[2]).fetchone()[0])
PY
}
catalog fix "$T/tmpl"
[ "$(catalog "SELECT value FROM meta WHERE key = 'schema_version'")" = 2 ] || fail "the fixture is not a schema 2 store"

out=$("$HCOWCTL" check "$T/data") || fail "offline check of a schema 2 store failed: $out"
echo "$out" | grep -q "template 'base.img': ok" || fail "offline check of a schema 2 store: $out"
[ "$(catalog "SELECT value FROM meta WHERE key = 'schema_version'")" = 2 ] ||
	fail "an offline check migrated the catalog"
ok "offline check reads a schema 2 store as it is"

mount_fs
expect=$(python3 -c '
import sys
t = bytearray(open(sys.argv[1], "rb").read())
t[8192:8192 + 18] = b"written by 6ddaeb9"
sys.stdout.buffer.write(t)' "$T/tmpl/base.img" | md5sum)
[ "$(md5sum < "$M/vm.img")" = "$expect" ] || fail "vm.img from the schema 2 store does not read right"
# the first checkpoint moves the rows into the index; they stay in the
# catalog until a second commit holds them too (either meta slot may be the
# one a damaged newer slot falls back to)
ctl checkpoint >/dev/null
ctl checkpoint >/dev/null
wait_for test "$(catalog "SELECT value FROM meta WHERE key = 'schema_version'")" = 6 ||
	fail "catalog not migrated to schema 6"
[ "$(catalog "SELECT count(*) FROM extents")" = 0 ] || fail "schema 6 catalog still holds extent rows"
[ "$(catalog "SELECT count(*) FROM sqlite_master WHERE name = 'dirs'")" = 1 ] ||
	fail "the migrated catalog has no dirs table"
[ "$(catalog "SELECT count(*) FROM pragma_table_info('disks') WHERE name IN ('snap_of', 'snap_name', 'family', 'origin')")" = 4 ] ||
	fail "the migrated catalog has no snapshot columns"
[ -s "$T/data/index" ] || fail "no index file after the migration"
wait_for grep -q "template 'base.img': content sums of 1 MiB recorded" "$T/data/hcowfs.log" ||
	fail "the content sums of the migrated template were not recorded"
[ "$(catalog "SELECT handle != '' OR btime_ns != 0 FROM templates")" = 1 ] ||
	fail "the migrated template row did not learn its birth time or handle"
ok "the schema 2 store mounts: catalog migrated, extents moved to the index, vm.img reads right, template identity recorded"

umount_fs
mount_fs
[ "$(md5sum < "$M/vm.img")" = "$expect" ] || fail "vm.img does not read right after the migration"
wait_for grep -q "template 'base.img': content verified (1 MiB)" "$T/data/hcowfs.log" ||
	fail "the template was not verified against its sums at the next mount"
ok "the migrated store mounts again, its extents from the index; the template is verified against its recorded sums"
umount_fs
