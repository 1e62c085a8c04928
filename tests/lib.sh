# Shared by the integration tests (tests/t-*.sh); sourced, not run.
#
# Each test gets its own scratch dir with tmpl/, data/ and mnt/, and a trap
# that, however the test ends, unmounts what it mounted and kills only the
# processes it started (found by its own scratch path), then removes the
# scratch dir.  Exit 77 = skipped.
#
# Sanitizers (a build configured with --enable-sanitizers): every process a
# test starts, daemons included, writes its AddressSanitizer/UBSan report to a
# file in $T/san instead of a stderr nobody reads (or, for gcc's UBSan, to the
# mount's log); cleanup prints the reports and fails the test if there is one.
# A non-sanitized build ignores this.

set -eu
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
MOUNT_HCOWFS=$top_builddir/supervisor/mount.hcowfs
HCOWCTL=$top_builddir/tools/hcowctl
PATTERN="python3 $top_srcdir/tests/pattern.py"
T=
MOUNTED=

is_mounted() { awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

need_root_fuse() {
	[ "$(id -u)" = 0 ] || skip "needs root"
	[ -c /dev/fuse ] || skip "needs /dev/fuse"
	command -v python3 >/dev/null || skip "needs python3"
}

# need TOOL...: skip without it, but in CI a missing tool is a failure
need() {
	for t in "$@"; do
		if ! command -v "$t" >/dev/null; then
			[ "${CI:-}" = true ] && fail "$t is not installed (CI must install it)"
			skip "needs $t"
		fi
	done
}

# Processes of this test's mounts: supervisors and workers name its dirs.
our_pids() { pgrep -f -- "$T/" || true; }

cleanup() {
	status=$?
	set +e
	# the test's own background jobs (client loops) would go on after a failure
	for j in $(jobs -p); do kill "$j" 2>/dev/null; done
	if [ -n "$T" ]; then
		for p in $(our_pids); do kill -CONT "$p" 2>/dev/null; done
		for m in $MOUNTED; do
			while is_mounted "$m"; do
				timeout 10 umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || break
			done
		done
		# a Ceph cluster of the test's own (ceph_start) goes after the mounts that use it
		[ -f "$T/ceph/ceph.conf" ] && "$top_srcdir/tests/ceph/cluster.sh" stop "$T/ceph"
		# let unmounted daemons exit by themselves (LeakSanitizer reports at exit)
		for _ in $(seq 50); do [ -z "$(our_pids)" ] && break; sleep 0.1; done
		for p in $(our_pids); do kill -KILL "$p" 2>/dev/null; done
		# a leak check cut short (its process was killed while LeakSanitizer
		# stopped its threads) leaves only these lines: no finding, nothing checked
		for f in "$T"/san/*; do
			[ -f "$f" ] && ! grep -qv 'Unable to get registers from thread\|was not suspended. False leaks are possible' "$f" &&
			    rm -f "$f"
		done
		# gcc's UBSan ignores log_path next to ASan: its reports are in the mount's log
		if [ -n "$(ls -A "$T/san" 2>/dev/null)" ] ||
		    grep -qs 'runtime error: \|ERROR: AddressSanitizer\|ERROR: LeakSanitizer' "$T"/data*/hcowfs.log; then
			for f in "$T"/san/*; do [ -f "$f" ] && { echo "--- sanitizer report $f"; cat "$f"; }; done
			grep -hs -B2 -A20 'runtime error: \|ERROR: AddressSanitizer\|ERROR: LeakSanitizer' "$T"/data*/hcowfs.log
			echo "FAIL: sanitizer reports (above)"
			[ $status -eq 0 ] || [ $status -eq 77 ] && status=1
		fi
		if [ $status -ne 0 ] && [ $status -ne 77 ]; then
			for l in "$T"/data*/hcowfs.log; do
				[ -f "$l" ] && { echo "--- $l (last ${LOG_TAIL:-40} lines)"; tail -n "${LOG_TAIL:-40}" "$l"; }
			done
		fi
		# never recurse into a mount that is still there
		if grep -q " $T/" /proc/self/mountinfo; then
			echo "cleanup: $T still has a mount; not removing it" >&2
		else
			rm -rf "$T"
		fi
	fi
	exit $status
}

# scratch: make the test's dirs and arm the cleanup
scratch() {
	T=$(mktemp -d /tmp/hcowfs-test.XXXXXX)
	chmod 755 "$T"	# other users must reach the mount point: permission tests test the disks' modes
	mkdir "$T/tmpl" "$T/data" "$T/mnt" "$T/san"
	export ASAN_OPTIONS="log_path=$T/san/asan:detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	export UBSAN_OPTIONS="log_path=$T/san/ubsan:print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

# ceph_start [memstore|bluestore]: a one-OSD Ceph cluster of the test's own in
# $T/ceph with the pool "vms" (tests/ceph/cluster.sh; about 6 s); CEPH_CONF
# names its ceph.conf, for the tests' own rados commands and for hcowfs.
# Skips without Ceph (fails in CI); cleanup stops it.
ceph_start() {
	need ceph-mon ceph-osd rados
	if ! grep -q '^#define HAVE_CEPH 1' "$top_builddir/config.h"; then
		[ "${CI:-}" = true ] && fail "hcowfs was built without Ceph (CI must install librados-dev)"
		skip "hcowfs built without Ceph"
	fi
	mkdir -p "$T/ceph"
	"$top_srcdir/tests/ceph/cluster.sh" start "$T/ceph" "${1:-memstore}" > "$T/ceph/start.log" 2>&1 ||
	    { cat "$T/ceph/start.log"; fail "the test's Ceph cluster did not start"; }
	export CEPH_CONF=$T/ceph/ceph.conf
}

# make_template NAME SIZE: a template of deterministic pseudo-random bytes
make_template() {
	$PATTERN fill "$T/tmpl/$1" --size "$2" --seed "$1"
}

# mount_test [TOOL...]: the start of a test against one store: root and FUSE
# (and each TOOL) or skip, the scratch dir, and a 1 MiB template base.img.
# M, D and L name the mount point, the data dir and its log; MiB is 1048576.
mount_test() {
	need_root_fuse
	[ $# -eq 0 ] || need "$@"
	scratch
	make_template base.img $((1024 * 1024))
	M=$T/mnt
	D=$T/data
	L=$T/data/log
	MiB=1048576
}

# write_mib_blocks FILE N: fill the first N MiB of FILE, block i with the byte
# i + 1 in one 1 MiB write (one log record) each, then fsync it
write_mib_blocks() {
	python3 - "$1" "$2" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(int(sys.argv[2])):
    os.pwrite(fd, bytes([i + 1]) * (1 << 20), i << 20)
os.fsync(fd)
PY
}

# log_end SEGMENT: where the records of a segment file end.  The newest
# segment may be zero-filled ahead of its records (the filler, design.md
# "Flushes"), so its size is not its end: the end is after the last non-zero
# byte (the tests' records end in non-zero data).
log_end() {
	python3 - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
print(len(data.rstrip(b"\0")))
PY
}

# mount_fs [OPTS...]: mount tmpl+data on mnt and wait until it serves.
# With fault injection the test crashes workers with SIGSEGV on purpose:
# AddressSanitizer must not report those as bugs.
mount_fs() {
	san=
	case "$*" in *fault_injection*) san=handle_segv=0 ;; esac
	ASAN_OPTIONS=$ASAN_OPTIONS${san:+:$san} "$MOUNT_HCOWFS" "$T/tmpl" "$T/data" "$T/mnt" "$@" ||
		fail "mount.hcowfs failed"
	MOUNTED="$T/mnt"
}

ctl() { "$HCOWCTL" -m "$T/mnt" "$@"; }

# umount_fs: unmount, then wait for the supervisor's final checkpoint and exit
no_processes() { [ -z "$(pgrep -f -- "$T/")" ]; }
umount_fs() {
	umount "$T/mnt" || fail "umount failed"
	MOUNTED=
	wait_for no_processes || fail "processes left after umount: $(pgrep -af -- "$T/")"
}

# A field of `hcowctl status --json`, by python expression on s
status_field() { ctl status --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }
worker_pid() { status_field 's["workers"][0]["pid"]'; }
supervisor_pid() { status_field 's["supervisor"]["pid"]'; }

# wait_for CMD...: retry for up to 10 s
wait_for() {
	for _ in $(seq 100); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# left_nothing DIR: nothing of a benchmark run under DIR is left (mounts, loop
# devices over its model, processes); prints what is
left_nothing() {
	grep -q " $1/" /proc/self/mountinfo && { grep " $1/" /proc/self/mountinfo; return 1; }
	losetup -a | grep -qF "$1/" && { losetup -a | grep -F "$1/"; return 1; }
	[ -z "$(pgrep -f -- "$1/")" ] || { pgrep -af -- "$1/"; return 1; }
}

# interrupted_run_cleans DIR PATTERN CMD...: CMD (a benchmark working under DIR, its output
# in DIR.out) gets SIGTERM once its output shows PATTERN: it must exit non-zero and leave
# no mount, loop device or process under DIR behind
interrupted_run_cleans() {
	dir=$1 pat=$2
	shift 2
	mkdir "$dir"
	"$@" >"$dir.out" 2>&1 &
	pid=$!
	for _ in $(seq 1200); do
		grep -q "$pat" "$dir.out" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	grep -q "$pat" "$dir.out" || { cat "$dir.out"; fail "the interrupted run did not start its jobs"; }
	kill -TERM "$pid"
	st=0
	wait "$pid" || st=$?
	[ "$st" -ne 0 ] || fail "an interrupted run exited 0"
	# processes killed by the cleanup may take a moment to be gone
	wait_for left_nothing "$dir" >/dev/null 2>&1 ||
		left_nothing "$dir" || { cat "$dir.out"; fail "the interrupted run left the above behind"; }
	ok "interrupted by SIGTERM, it cleaned up (exit $st)"
}

# A worker other than $1 is serving
new_worker_serving() { p=$(worker_pid) && [ -n "$p" ] && [ "$p" != "$1" ] && [ "$(status_field 's["workers"][0]["state"]')" = running ]; }

# expect_fail "WHAT" PATTERN CMD...: CMD must fail with a message matching PATTERN
expect_fail() {
	what=$1 pat=$2
	shift 2
	if out=$("$@" 2>&1); then
		fail "$what: succeeded but should have failed: $out"
	fi
	echo "$out" | grep -qiE -- "$pat" || fail "$what: message '$out' does not match '$pat'"
	ok "$what: $out"
}
