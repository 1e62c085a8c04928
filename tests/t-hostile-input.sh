#!/bin/bash
# Proves: hostile input through every entry point leaves the mount serving and
# the store as it was.  Huge and negative offsets and sizes (pread, pwrite,
# truncate, fallocate, lseek, hcowctl --size), names with path tricks and odd
# bytes (hcowctl, the control socket, rename through the mount), the control
# socket abused (malformed and oversized lines, a NUL, a line that never ends,
# a client that never reads, hundreds of connections held open), and other
# users (refused on the socket unless -o owner=, kept out of a 0600 disk).
# t-bad-input.sh has the plain bad-argument cases; these are the rest.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test setpriv

# the engine's own limit (256 TiB), not the default max_disk_size, is what the offsets below probe
mount_fs -o owner=23457,max_disk_size=256T
ctl create d.img --template base.img --size 8M >/dev/null
W=$(worker_pid)
S=$(supervisor_pid)
sock=/run/hcowfs/$(awk -v m="$M" '$5 == m { print $3 }' /proc/self/mountinfo).sock
[ -S "$sock" ] || fail "control socket not found"

# alive: the mount reads and writes, the control socket answers, nobody restarted
alive() {
	python3 - "$M/d.img" <<'PY' || fail "after $1: the disk does not read/write"
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(fd, b"alive!", 4096)
os.fsync(fd)
assert os.pread(fd, 6, 4096) == b"alive!"
PY
	ctl list >/dev/null || fail "after $1: hcowctl list fails"
	[ "$(worker_pid)" = "$W" ] || fail "after $1: the worker was replaced"
	[ "$(supervisor_pid)" = "$S" ] || fail "after $1: the supervisor changed"
}

# ---- offsets and sizes -------------------------------------------------------
python3 - "$M/d.img" <<'PY' || fail "huge or negative offsets"
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
MAXOFF = (1 << 63) - 1
DISK_MAX = 1 << 48
size = os.fstat(fd).st_size
def expect(what, errs, f, *a):
    try:
        r = f(*a)
    except OSError as e:
        if e.errno not in errs:
            sys.exit(f"{what}: {errno.errorcode[e.errno]}, expected one of {[errno.errorcode[x] for x in errs]}")
        return None
    return r
# reads past the end are empty, never an error or garbage
for off in (size, size + 1, 1 << 40, DISK_MAX, MAXOFF - 10, MAXOFF):
    r = expect(f"pread at {off}", (errno.EINVAL,), os.pread, fd, 4096, off)
    assert r in (None, b""), f"pread at {off} returned {len(r)} bytes"
expect("pread at -1", (errno.EINVAL,), os.pread, fd, 10, -1) is None or sys.exit("pread at -1 worked")
# writes past the largest disk fail, at huge offsets too (below it, a write grows the disk)
for off in (DISK_MAX, DISK_MAX + 4096, MAXOFF - 10, MAXOFF):
    if expect(f"pwrite at {off}", (errno.EFBIG, errno.EINVAL), os.pwrite, fd, b"x" * 10, off) is not None:
        sys.exit(f"pwrite at {off} succeeded")
assert os.fstat(fd).st_size == size, "a refused write changed the size"
# across the largest disk's end: what fits is written, as a file system does at its largest file
assert os.pwrite(fd, b"x" * 10, DISK_MAX - 1) == 1, "a write across 256 TiB was not cut"
assert os.fstat(fd).st_size == DISK_MAX
os.ftruncate(fd, size)
expect("pwrite at -1", (errno.EINVAL,), os.pwrite, fd, b"x", -1) is None or sys.exit("pwrite at -1 worked")
# truncate: negative and beyond the largest disk refused, the size unchanged
for n in (-1, -(1 << 62)):
    expect(f"truncate {n}", (errno.EINVAL,), os.ftruncate, fd, n) is None or sys.exit(f"truncate {n} worked")
for n in (DISK_MAX + 1, DISK_MAX + 4096, MAXOFF):
    expect(f"truncate {n}", (errno.EFBIG, errno.EINVAL), os.ftruncate, fd, n) is None or sys.exit(f"truncate {n} worked")
assert os.fstat(fd).st_size == size, "a refused truncate changed the size"
# the largest disk: a byte written at its last offset reads back, one past fails
os.ftruncate(fd, DISK_MAX)
assert os.fstat(fd).st_size == DISK_MAX
assert os.pwrite(fd, b"Z", DISK_MAX - 1) == 1 and os.pread(fd, 10, DISK_MAX - 1) == b"Z"
assert os.pwrite(fd, b"YZ", DISK_MAX - 2) == 2
expect("pwrite at 256 TiB", (errno.EFBIG,), os.pwrite, fd, b"x", DISK_MAX) is None or sys.exit("write past 256 TiB")
os.ftruncate(fd, size)
assert os.pread(fd, 10, size - 5) == os.pread(fd, 5, size - 5) and len(os.pread(fd, 10, size - 5)) == 5
# fallocate (mode 0) past the largest disk: EFBIG, size unchanged
for off, n in ((0, DISK_MAX + 1), (DISK_MAX, 1), (1 << 62, 1 << 62), (MAXOFF - 1, 1)):
    expect(f"fallocate {off}+{n}", (errno.EFBIG, errno.EINVAL), os.posix_fallocate, fd, off, n) is None or \
        sys.exit(f"fallocate {off}+{n} worked")
expect("fallocate len 0", (errno.EINVAL,), os.posix_fallocate, fd, 0, 0)
expect("fallocate len -1", (errno.EINVAL,), os.posix_fallocate, fd, 0, -1) is None or sys.exit("fallocate -1 worked")
assert os.fstat(fd).st_size == size, "a refused fallocate changed the size"
# SEEK_DATA / SEEK_HOLE at and past the end, huge and negative
for off in (size, size + 1, DISK_MAX, MAXOFF):
    for wh in (os.SEEK_DATA, os.SEEK_HOLE):
        expect(f"lseek {off} {wh}", (errno.ENXIO,), os.lseek, fd, off, wh) is None or sys.exit(f"lseek {off} {wh} worked")
for wh in (os.SEEK_DATA, os.SEEK_HOLE):
    expect(f"lseek -1 {wh}", (errno.ENXIO, errno.EINVAL), os.lseek, fd, -1, wh) is None or sys.exit("lseek -1 worked")
assert os.lseek(fd, size - 1, os.SEEK_HOLE) == size - 1	# past the template: a hole
assert os.lseek(fd, 0, os.SEEK_DATA) == 0
PY
ok "pread/pwrite/truncate/fallocate/lseek at huge and negative offsets: refused or empty; 256 TiB is the limit"

# punching a hole (keep size) across the end of the disk is not an error on a
# regular file: the part inside is punched, the size unchanged
python3 - "$M/d.img" <<'PY' || fail "punch hole past the end"
import ctypes, ctypes.util, errno, os, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
KEEP, PUNCH = 1, 2
fd = os.open(sys.argv[1], os.O_RDWR)
size = os.fstat(fd).st_size
os.pwrite(fd, b"q" * 8192, size - 8192)
for n in (8192 + 4096, (1 << 48) - (size - 4096)):
    if libc.fallocate(fd, PUNCH | KEEP, size - 4096, n) != 0:
        sys.exit(f"punch {size - 4096}+{n}: {errno.errorcode[ctypes.get_errno()]}")
# past the largest file, EFBIG like ext4 past its 16 TiB
for n in (1 << 50, (1 << 63) - 1 - (size - 4096)):
    if libc.fallocate(fd, PUNCH | KEEP, size - 4096, n) != 0 and ctypes.get_errno() != errno.EFBIG:
        sys.exit(f"punch {size - 4096}+{n}: {errno.errorcode[ctypes.get_errno()]}")
assert os.fstat(fd).st_size == size
assert os.pread(fd, 8192, size - 8192) == b"q" * 4096 + bytes(4096)
PY
ok "punch hole crossing the end of the disk punches what is inside; past 256 TiB EFBIG"
alive "offsets"

# hcowctl create --size: zero, negative, junk, the limit and one past it
expect_fail "create --size 0" "invalid size" ctl create z.img --template base.img --size 0
expect_fail "create --size -1" "invalid size" ctl create z.img --template base.img --size -1
expect_fail "create --size -1G" "invalid size" ctl create z.img --template base.img --size -1G
expect_fail "create --size 1e9" "invalid size" ctl create z.img --template base.img --size 1e9
expect_fail "create --size 0x1000000" "invalid size" ctl create z.img --template base.img --size 0x1000000
expect_fail "create --size ' 8M'" "invalid size" ctl create z.img --template base.img --size " 8M"
expect_fail "create --size 256T+1" "larger than the largest disk" ctl create z.img --template base.img --size 281474976710657
expect_fail "create --size 16777216T" "larger than the largest disk" ctl create z.img --template base.img --size 16777216T
ctl create big.img --template base.img --size 256T >/dev/null || fail "create --size 256T failed"
[ "$(stat -c %s "$M/big.img")" = 281474976710656 ] || fail "256T disk has the wrong size"
ctl delete big.img >/dev/null
ok "create --size 256T works; zero, negative, hex, float and 256T+1 refused"
# the same sizes straight to the socket (hcowctl checks them first)
py_req() {	# py_req LINE: send LINE, print the answer on one line
	python3 - "$sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode("utf-8", "surrogateescape"))
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except (ConnectionResetError, socket.timeout) as e:
    out += f" <{type(e).__name__}>".encode()
print(out.decode("latin1").replace("\n", " ").strip())
PY
}
for sz in 0 -1 18446744073709551616 281474976710657 99999999999999999999999 1e3; do
	out=$(py_req "json create name=z.img template=base.img size=$sz"$'\n')
	echo "$out" | grep -qE "^error 22 (invalid size|.*larger than the largest)" || fail "socket create size=$sz: '$out'"
done
[ "$(ls "$M")" = d.img ] || fail "a refused create left a disk: $(ls "$M")"
ok "control socket create with size 0, -1, 2^64, 256T+1, 10^23, 1e3: refused"
alive "sizes"

# ---- names -----------------------------------------------------------------------
long255=$(printf 'n%.0s' $(seq 255))
for n in ".." "." "../x.img" "x/../y" "/abs.img" "a\\b" "é.img" "$(printf 'a\tb')" "$(printf 'a\rb')" \
	"$(printf 'a\x7fb')" "$(printf 'a\xffb')" "$long255" "-rf" "a:b" "a*b" "a?b" "\$(id)" "a;b"; do
	if out=$(ctl create "$n" --template base.img 2>&1); then
		case $n in -rf) ctl delete -- "$n" >/dev/null 2>&1 || true; fail "created a disk named '$n'" ;; esac
		fail "created a disk named '$n': $out"
	fi
	echo "$out" | grep -qE "invalid disk name|characters outside|longer than|contains '/'|starts with|is empty|unrecognized|invalid option" ||
		fail "name '$n': unclear message '$out'"
	if out=$(ctl delete "$n" 2>&1); then fail "deleted a disk named '$n'"; fi
done
expect_fail "template name .." "invalid template name" ctl create t.img --template ..
expect_fail "template as absolute path" "invalid template name" ctl create t.img --template "$T/tmpl/base.img"
ok "hcowctl create/delete refuse ., .., path tricks, UTF-8, control bytes, 255 bytes, shell characters"
# names straight to the socket: a NUL, UTF-8, a tab, an empty value, a duplicate key
for line in $'json create name=a\x00.img template=base.img' $'json create name=\xc3\xa9.img template=base.img' \
	$'json create name=a\tb template=base.img' 'json create name= template=base.img' \
	'json create name=a.img name=b.img template=base.img' 'json create name=.. template=base.img' \
	'json create name=a.img template=../tmpl/base.img' 'json delete name=../d.img' 'json delete name=' \
	'json create name=a.img template=base.img size=' 'json create =x template=base.img'; do
	out=$(py_req "$line"$'\n')
	echo "$out" | grep -qE "^error 22 " || fail "socket: '$(printf %q "$line")' answered '$out'"
done
# a NUL inside a line: the server must not act on part of it
out=$(python3 - "$sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
s.sendall(b"json create name=nul.img template=base.img\x00 name=x\n")
out = b""
while True:
    b = s.recv(65536)
    if not b: break
    out += b
print(out.decode("latin1").replace("\n", " "))
PY
)
ls "$M" | grep -q nul.img && { ctl delete nul.img >/dev/null; fail "a request with a NUL inside was acted on: $out"; }
[ "$(ls "$M")" = d.img ] || fail "odd names left disks behind: $(ls "$M")"
ok "control socket: NUL, UTF-8, tab, empty and duplicate names refused"
# rename through the mount to names hcowctl would refuse
for n in "a b.img" "é.img" "$(printf 'a\nb')" ".hidden" "$long255"; do
	if mv "$M/d.img" "$M/$n" 2>/dev/null; then
		mv "$M/$n" "$M/d.img" 2>/dev/null
		fail "rename to '$(printf %q "$n")' was allowed"
	fi
done
[ "$(ls "$M")" = d.img ] || fail "refused renames changed the listing: $(ls "$M")"
ok "rename through the mount to a name hcowctl would refuse: refused"
alive "names"

# ---- the control socket abused ---------------------------------------------------------
# a client that connects and sends a partial line, then nothing: dropped after
# 10 s with a message that blames the client (checked at the end of the test)
python3 - "$sock" > "$T/loris.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
s.sendall(b"json li")
t = time.monotonic(); out = b""
while True:
    b = s.recv(65536)
    if not b: break
    out += b
print(f"{time.monotonic() - t:.0f} {out.decode().strip()}".replace("\n", " "))
PY
loris=$!
# connect, send nothing, close the write side: closed without an answer
out=$(python3 - "$sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); s.shutdown(socket.SHUT_WR)
print(s.recv(100).decode())
PY
) || fail "empty request: the server did not close the connection"
[ -z "$out" ] || fail "empty request: answered '$out'"
out=$(py_req $'\n')
echo "$out" | grep -q "^error 22 malformed" || fail "empty line: '$out'"
out=$(py_req $'json\n')
echo "$out" | grep -q "^error 22 malformed" || fail "format only: '$out'"
out=$(py_req $'json  list\n')
echo "$out" | grep -q "^error 22 malformed" || fail "double space: '$out'"
out=$(py_req "json list$(printf ' a=%s' $(seq 20))"$'\n')
echo "$out" | grep -q "^error 22 malformed request: too many" || fail "too many arguments: '$out'"
out=$(py_req $'JSON status\n')
echo "$out" | grep -q "^error 22" || fail "upper-case format: '$out'"
out=$(py_req $'json status\njson list\n')
echo "$out" | grep -q '^ok {"mountpoint"' || fail "two requests on one connection: '$out'"
alive "malformed lines"
ok "empty, format-only, double-spaced, 20-argument lines refused; a second request on a connection ignored"

# 1 MiB line, with and without a newline, then close
python3 - "$sock" <<'PY' || fail "oversized request"
import socket, sys
for tail in (b"\n", b""):
    s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
    out = b""
    try:
        s.sendall(b"json " + b"a" * (1 << 20) + tail)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        while True:
            b = s.recv(65536)
            if not b: break
            out += b
    except ConnectionResetError:
        pass
    assert out.startswith(b"error 7\nrequest longer than 4096"), out[:100]
    s.close()
PY
alive "1 MiB request"
ok "1 MiB request lines (with and without newline) refused with E2BIG"

# slow loris: partial lines held open, and clients that never read a big answer,
# while others are served; then hundreds of connections at once
python3 - "$sock" "$M/d.img" <<'PY' || fail "slow and many clients"
import os, socket, sys, time, threading
sock, disk = sys.argv[1], sys.argv[2]
def req(line, timeout=10):
    s = socket.socket(socket.AF_UNIX); s.settimeout(timeout); s.connect(sock)
    s.sendall(line); out = b""
    while True:
        b = s.recv(65536)
        if not b: break
        out += b
    return out
held = []
for i in range(20):                     # 20 partial requests, never finished
    s = socket.socket(socket.AF_UNIX); s.connect(sock); s.sendall(b"json sta"); held.append(s)
for i in range(20):                     # 20 that ask for status and never read it
    s = socket.socket(socket.AF_UNIX); s.connect(sock); s.sendall(b"json status\n"); held.append(s)
for i in range(5):                      # others are served meanwhile, quickly
    t = time.monotonic()
    out = req(b"json list\n")
    assert out.startswith(b"ok"), out[:80]
    assert time.monotonic() - t < 2, f"list took {time.monotonic() - t:.1f} s with slow clients around"
fd = os.open(disk, os.O_RDWR)
os.pwrite(fd, b"x" * 4096, 8192); os.fsync(fd)
# 1500 connections at once, each sending its request, all answered (more
# requests than the worker's channel holds: they must wait, not be lost)
socks = []
for i in range(1500):
    s = socket.socket(socket.AF_UNIX); s.connect(sock); s.settimeout(30); socks.append(s)
for s in socks:
    s.sendall(b"json list\n")
bad = 0
for s in socks:
    out = b""
    while True:
        b = s.recv(65536)
        if not b: break
        out += b
    if not out.startswith(b"ok"):
        bad += 1
        why = out[:60]
    s.close()
assert bad == 0, f"{bad} of 1500 simultaneous clients were not answered ok, e.g. {why}"
for s in held:
    s.close()
PY
alive "slow and many clients"
ok "20 unfinished requests and 20 unread answers held open, then 1500 clients at once: all served"

# a worker that does not answer (stopped): status answers without its disks
# within its 2 s (the request line's 10 s timer must not be left running)
kill -STOP "$W"
t0=$(date +%s%N)
out=$(ctl status --json) || { kill -CONT "$W"; fail "status with a stopped worker failed"; }
t1=$(date +%s%N)
kill -CONT "$W"
echo "$out" | grep -q '"disks_error":"the worker did not answer"' || fail "status with a stopped worker: $out"
[ $(( (t1 - t0) / 1000000 )) -lt 4000 ] || fail "status with a stopped worker took $(( (t1 - t0) / 1000000 )) ms, not about 2 s"
ok "stopped worker: status answers in $(( (t1 - t0) / 1000000 )) ms, without the disks"
alive "stopped worker"

# ---- other users -------------------------------------------------------------------
expect_fail "a non-root user runs hcowctl status" "permission denied" \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$HCOWCTL" -m "$M" status
expect_fail "a non-root user runs hcowctl create" "permission denied" \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$HCOWCTL" -m "$M" create u.img --template base.img
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 - "$sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("error 13 permission denied by the socket's mode"); sys.exit(0)
try:
    s.sendall(b"json create name=u.img template=base.img\n")
except BrokenPipeError:
    pass	# refused before the request was read: the answer is still there
out = b""
while True:
    b = s.recv(65536)
    if not b: break
    out += b
print(out.decode().replace("\n", " "))
PY
)
echo "$out" | grep -q "^error 13 permission denied" || fail "non-root raw socket create: '$out'"
[ "$(ls "$M")" = d.img ] || fail "a non-root user created a disk"
setpriv --reuid=23457 --regid=23457 --clear-groups "$HCOWCTL" -m "$M" create own.img --template base.img >/dev/null ||
	fail "the owner (-o owner=23457) cannot create a disk"
setpriv --reuid=23457 --regid=23457 --clear-groups "$HCOWCTL" -m "$M" status >/dev/null ||
	fail "the owner cannot run status"
# the socket lets in only its owner (root passes the mode anyway): not 0666
[ "$(stat -c '%a %u' "$sock")" = "600 23457" ] || fail "control socket with owner=: $(stat -c '%a %u' "$sock"), not 600 23457"
ok "non-root users refused on the control socket (hcowctl and raw); the -o owner= user may control the mount"

# the disk's mode is enforced for other users, root's 0600 disk included
[ "$(stat -c '%a %u' "$M/own.img")" = "600 0" ] || fail "new disk is not 0600 root: $(stat -c '%a %u' "$M/own.img")"
for who in 65534 23457; do
	expect_fail "uid $who reads root's 0600 disk" "Permission denied" \
		setpriv --reuid=$who --regid=$who --clear-groups head -c 1 "$M/own.img"
	expect_fail "uid $who writes root's 0600 disk" "Permission denied" \
		setpriv --reuid=$who --regid=$who --clear-groups dd if=/dev/zero of="$M/own.img" bs=1 count=1 conv=notrunc status=none
	expect_fail "uid $who chmods root's disk" "not permitted" \
		setpriv --reuid=$who --regid=$who --clear-groups chmod 666 "$M/own.img"
	expect_fail "uid $who renames a disk" "Permission denied|not permitted" \
		setpriv --reuid=$who --regid=$who --clear-groups mv "$M/own.img" "$M/stolen.img"
	expect_fail "uid $who unlinks a disk" "Permission denied|not permitted" \
		setpriv --reuid=$who --regid=$who --clear-groups rm -f "$M/own.img"
done
[ "$(stat -c '%a %u' "$M/own.img")" = "600 0" ] || fail "mode changed"
cmp -n 1048576 "$M/own.img" "$T/tmpl/base.img" || fail "the disk changed"
ok "other users cannot read, write, chmod, rename or unlink root's 0600 disk"
alive "other users"

wait $loris || fail "the slow-loris client failed: $(cat "$T/loris.out")"
grep -qE "^(9|10|11|12) error 110 no complete request line in time" "$T/loris.out" ||
	fail "a partial request line held open: '$(cat "$T/loris.out")'"
ok "a partial request line held open is dropped after 10 s: $(cat "$T/loris.out")"
alive "slow loris"
