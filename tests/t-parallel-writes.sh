#!/bin/bash
# Proves that O_DIRECT writers on one disk reach the worker together: the reply
# to an O_DIRECT open carries FOPEN_DIRECT_IO and FOPEN_PARALLEL_DIRECT_WRITES
# (fs/session.c), so the kernel takes the inode's lock shared for their writes
# instead of sending them one at a time.  Two writes are held in the worker (a
# stall injected into each); the second must arrive while the first is still
# held there.  Also: a buffered reader of the disk sees what an O_DIRECT writer
# wrote after it (the kernel drops its cached pages), and every write reads back.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test dd cmp
case $(uname -r) in
[0-5].* | 6.[0-8].*) skip "parallel direct writes need Linux 6.9 (FUSE 7.40)" ;;
esac
mount_fs -o fault_injection,hang_timeout=60000
ctl create d.img --template base.img >/dev/null
for i in 1 2 3; do head -c 4096 /dev/urandom >"$T/b$i"; done

# the page cache of a buffered open, then an O_DIRECT write over it
cmp -n 4096 "$M/d.img" "$T/tmpl/base.img" || fail "the disk does not read as its template"
dd if="$T/b1" of="$M/d.img" bs=4096 oflag=direct conv=notrunc status=none || fail "O_DIRECT write"
cmp -n 4096 "$M/d.img" "$T/b1" || fail "a buffered read after an O_DIRECT write sees the old bytes"
ok "a buffered reader sees an O_DIRECT write over its cached page"

faults() { status_field 's["faults_injected"]'; }
held() { status_field 's["workers"][0]["outstanding"]'; }
both_fired() { [ "$(faults)" -ge $((f0 + 2)) ]; }

# held_together WHAT CMD...: CMD writes two blocks of one disk with O_DIRECT at once;
# with both writes stalled in the worker, both must be held there together
held_together() {
	what=$1
	shift
	f0=$(faults)
	ctl debug fault slow --op write --ms 4000 --count 2 >/dev/null
	"$@" &
	p=$!
	wait_for both_fired || fail "$what: the two stalled writes never reached the worker"
	n=$(held)
	wait "$p" || fail "$what: a writer failed"
	[ "$n" -ge 2 ] || fail "$what: the second O_DIRECT write reached the worker only once the first was answered ($n held)"
	ok "$what: two O_DIRECT writes of one disk held by the worker at once"
}

# two processes, each its own open (FUSE OPEN)
two_dd() {
	dd if="$T/b2" of="$M/d.img" bs=4096 seek=16 oflag=direct conv=notrunc status=none &
	dd if="$T/b3" of="$M/d.img" bs=4096 seek=32 oflag=direct conv=notrunc status=none &
	wait %1 && wait %2
}
held_together "opened" two_dd
cmp -n 4096 -i 0:$((16 * 4096)) "$T/b2" "$M/d.img" || fail "the first parallel write does not read back"
cmp -n 4096 -i 0:$((32 * 4096)) "$T/b3" "$M/d.img" || fail "the second parallel write does not read back"
ok "both writes read back"

# one file created with O_DIRECT (FUSE CREATE), two threads writing through it
two_threads() {
	python3 - "$M/new.img" "$T/b2" "$T/b3" <<'PY'
import mmap, os, sys, threading
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
os.ftruncate(fd, 1 << 20)	# writes past the end take the inode's lock alone

def write(src, off):
    buf = mmap.mmap(-1, 4096)	# page-aligned, as O_DIRECT wants
    buf.write(open(src, "rb").read())
    os.pwrite(fd, buf, off)

ts = [threading.Thread(target=write, args=(src, off))
      for src, off in ((sys.argv[2], 65536), (sys.argv[3], 131072))]
for t in ts:
    t.start()
for t in ts:
    t.join()
PY
}
held_together "created" two_threads
cmp -n 4096 -i 0:65536 "$T/b2" "$M/new.img" && cmp -n 4096 -i 0:131072 "$T/b3" "$M/new.img" ||
	fail "the writes through the created file do not read back"
ok "both writes read back"
