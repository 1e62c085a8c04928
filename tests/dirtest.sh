# The set-up the directory tests share (tests/t-dir-layouts.sh, t-cp-clone.sh);
# sourced after tests/lib.sh, not run.
#
# These tests drive an hcowfs mount with the tools people run on a directory
# of VM images (mkdir, cp, qemu-img, qemu-io) and check every step by bytes.
# With HCOWFS_PLAIN=1 the same steps run on a plain directory of the host
# file system instead: what passes there and fails on the mount is a finding
# about hcowfs, not about the test.  On the plain directory `hcowctl create`
# is a byte copy of the template, .templates is a link to the template dir, a
# remount changes nothing, and the figures only hcowfs has are skipped.

# on_mount: this run is against hcowfs (not HCOWFS_PLAIN=1)
on_mount() { [ "${HCOWFS_PLAIN:-0}" != 1 ]; }

# dir_test [TOOL...]: the scratch dir with the template base.img (1 MiB);
# more templates may be made (make_template) before dir_mount.  D is the data
# dir, MiB 1048576.
dir_test() {
	if on_mount; then
		mount_test "$@"
	else
		need python3 "$@"
		scratch
		make_template base.img $((1024 * 1024))
		D=$T/data
		MiB=1048576
	fi
}

# dir_mount: M, the directory under test: the mount (with the options in
# $DIR_MOUNT_OPTS), or $T/plain with .templates a link to the templates
dir_mount() {
	if on_mount; then
		# shellcheck disable=SC2086
		mount_fs ${DIR_MOUNT_OPTS:-}
		M=$T/mnt
	else
		M=$T/plain
		mkdir "$M"
		ln -s "$T/tmpl" "$M/.templates"
	fi
}

# dir_create NAME TEMPLATE: the disk NAME (a path in M) cloned from TEMPLATE
dir_create() {
	if on_mount; then
		ctl create "$1" --template "$2" >/dev/null || fail "hcowctl create $1 --template $2"
	else
		cp "$T/tmpl/$2" "$M/$1" || fail "cp of template $2 to $1"
	fi
}

# dir_remount: unmount and mount again (nothing on a plain directory)
dir_remount() {
	on_mount || return 0
	umount_fs
	# shellcheck disable=SC2086
	mount_fs ${DIR_MOUNT_OPTS:-}
}

# log_bytes: bytes of log on disk (`hcowctl status`: log disk_bytes, what
# was appended less what the cleaner gave back), after a checkpoint, so that
# what a step added is counted once its records are durable; 0 on a plain
# directory
log_bytes() {
	on_mount || { echo 0; return; }
	ctl checkpoint >/dev/null || fail "hcowctl checkpoint"
	status_field 's["log"]["disk_bytes"]'
}

# data_bytes: bytes the data dir allocates (du) after a checkpoint and a
# sync, less the log's spare (status: spare_bytes): the log writes zeros
# ahead of its records, a 4 MiB chunk at a flush (design.md "Flushes"), so a
# step that appends 128 bytes and a checkpoint's flush allocate 4 MiB that
# hold nothing yet; 0 on a plain directory
data_bytes() {
	on_mount || { echo 0; return; }
	ctl checkpoint >/dev/null || fail "hcowctl checkpoint"
	sync -f "$D"
	echo $(($(du --block-size=1 -s "$D" | cut -f1) - $(status_field 's["log"]["spare_bytes"]')))
}

# errno_of CALL PATH [PATH2]: the errno name os.CALL(PATH[, PATH2]) fails
# with, or OK
errno_of() {
	python3 - "$@" <<'PY'
import errno, os, sys
try:
    getattr(os, sys.argv[1])(*sys.argv[2:])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
PY
}

# sha FILE: the sha256 of FILE's bytes
sha() { sha256sum < "$1" | cut -d' ' -f1; }

# now_ms: a clock for the figures the tests print
now_ms() { echo $(($(date +%s%N) / 1000000)); }
