#!/bin/bash
# Proves: a first worker that dies between reading FUSE_INIT and answering it
# (-o fault_injection=init crashes it there) does not hang the mount: the
# replacement answers INIT for the connection, I/O works and umount returns.
# With both reissue paths.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test

for mode in replay resend; do
	mount_fs -o reissue=$mode,fault_injection=init
	# the kernel waits for INIT's reply before any request: a hang shows here
	timeout 30 ls "$M" >/dev/null || fail "$mode: the mount hangs or fails after the first worker died at INIT"
	ctl create d.img --template base.img --size 1M >/dev/null || fail "$mode: create"
	timeout 30 cmp -n $MiB "$M/d.img" "$T/tmpl/base.img" || fail "$mode: reads of the new disk"
	[ "$(status_field 's["faults_injected"]')" = 1 ] || fail "$mode: the fault at INIT did not fire"
	[ "$(status_field 's["restarts_by_cause"]["crash"]')" = 1 ] || fail "$mode: expected 1 crash"
	grep -q "died before answering FUSE_INIT; answered it" "$D/hcowfs.log" ||
		fail "$mode: the replacement did not answer INIT"
	timeout 30 umount "$M" || fail "$mode: umount hangs"
	MOUNTED=
	wait_for no_processes || fail "$mode: processes left after umount"
	rm -rf "$D" && mkdir "$D"
	ok "$mode: first worker crashed at INIT; the replacement answered it, the mount serves and unmounts"
done
