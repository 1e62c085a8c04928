#!/bin/bash
# Proves: the data and template dirs are trusted only when no other user can
# write them (mount.hcowfs and hcowctl check refuse them otherwise), the
# files root opens there by name never follow a symlink (DATA_DIR/lock,
# hcowfs.log), and the catalog is root's alone (0600), also one created
# world-readable by an older version.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test
nobody=$(id -u nobody 2>/dev/null) || skip "needs a user nobody"

for how in "chmod 777" "chmod 775" "chmod 1777" "chown $nobody"; do
	for dir in data tmpl; do
		saved=$(stat -c '%a %u' "$T/$dir")
		$how "$T/$dir"
		MOUNTED=$M	# unmounted by the cleanup if the test fails
		expect_fail "$dir dir after $how" "is not safe" "$MOUNT_HCOWFS" "$T/tmpl" "$D" "$M"
		MOUNTED=
		chmod "${saved% *}" "$T/$dir"
		chown "${saved#* }" "$T/$dir"
	done
done

# symlinks in the data dir are not followed, whoever put them there
echo "precious" > "$T/victim"
ln -s "$T/victim" "$D/lock"
ln -s "$T/victim" "$D/hcowfs.log"
MOUNTED=$M
expect_fail "hcowfs.log a symlink" "log file" "$MOUNT_HCOWFS" "$T/tmpl" "$D" "$M"
MOUNTED=
rm "$D/hcowfs.log"
mount_fs
[ "$(cat "$T/victim")" = precious ] || fail "the lock's symlink target was written: $(cat "$T/victim")"
ok "DATA_DIR/lock a symlink: its target is untouched"
ctl create a.img --template base.img --size 4M >/dev/null
umount_fs
[ "$(stat -c %a "$D/catalog.db")" = 600 ] || fail "new catalog has mode $(stat -c %a "$D/catalog.db")"
ok "a new catalog is 0600"
chmod 644 "$D/catalog.db"
mount_fs
umount_fs
[ "$(stat -c %a "$D/catalog.db")" = 600 ] || fail "old catalog still has mode $(stat -c %a "$D/catalog.db")"
ok "a world-readable catalog is made 0600 by the next mount"

chmod 777 "$D"
expect_fail "check of a data dir others can write" "is not safe" "$HCOWCTL" check "$D"
chmod 755 "$D"
