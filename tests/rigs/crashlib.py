#!/usr/bin/env python3
"""crashlib: workload, journal and oracle shared by tests/rigs/crash-points and
tests/rigs/power-loss (the crash and power-loss consistency rigs).

Content.  Every byte a rig ever puts on a disk is part of a 16-byte cell that
says where it came from:  u32 tag, u32 seq, u64 cell index (offset / 16),
little-endian.  tag = 0x57000000 | disk for a write by disk `disk` (seq =
that disk's op number), 0x54000000 | 1 for the template.  Discards, shrunk
ranges and the space past the template's end read as zeros.  So a cell of
another disk, a misplaced cell or a cell torn inside is never equal to what
the oracle expects, and decode() names where it came from.

Workload (run as `crashlib.py workload`, one thread per disk, ops in
sequence on each disk): O_DIRECT writes (4 KiB aligned, 4 KiB to --max-direct),
buffered writes (16-byte aligned offset and length, up to 16 KiB, through a
second fd), fsync and fdatasync, fallocate PUNCH_HOLE|KEEP_SIZE,
ZERO_RANGE|KEEP_SIZE, ZERO_RANGE past the end (grows the disk), and ftruncate
to grow or shrink.  Before each op the thread appends `I k t_ns op args` to
its journal, after it `D k t_ns result`, or `E k t_ns errno` and stops (the
mount died).  Journal lines go straight to the file (os.write): they survive
the death of every process.

Oracle.  A disk's ops form a sequence (one thread), so the states it may be
in are the prefixes of that sequence: state(j) = initial content with ops
0..j-1 applied.  After a crash, verify() reads the whole disk and looks for j
in [lo, hi] with state(j) == what it read, byte for byte and in size:
  lo = every op that must have taken effect (crash rig: each op that returned,
       since the page cache survives a process kill; power-loss rig: each op
       before the last fsync acknowledged before the cut),
  hi = every op issued before the crash.
Matching a prefix is stronger than "each range is old or new": it also
rules out a newer write surviving while an older one is lost, and any
content that no op wrote.  When nothing matches, diagnose() says what the
differing cells hold (which disk, which op, torn, zeros).
"""
import ctypes
import errno
import mmap
import os
import random
import struct
import sys
import threading
import time
from array import array

CELL = 16
CHUNK = 1 << 16
TAG_WRITE = 0x57000000
TAG_TMPL = 0x54000000
TMPL_ID = 1
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def cells(tag, seq, first, n):
    """n cells of (tag, seq) numbered first.. as bytes."""
    a = array("Q", bytes(CELL * n))
    a[0::2] = array("Q", [tag | (seq << 32)]) * n
    a[1::2] = array("Q", range(first, first + n))
    return a.tobytes()


def write_content(disk, seq, off, n):
    assert off % CELL == 0 and n % CELL == 0
    return cells(TAG_WRITE | disk, seq, off // CELL, n // CELL)


def make_template(path, size):
    with open(path, "wb") as f:
        step = 1 << 20
        for off in range(0, size, step):
            n = min(step, size - off)
            f.write(cells(TAG_TMPL | TMPL_ID, 0, off // CELL, n // CELL))


def decode(b):
    """What a 16-byte cell holds, in words."""
    if b == bytes(CELL):
        return "zeros"
    tag, seq, idx = struct.unpack("<IIQ", b)
    if tag & 0xff000000 == TAG_WRITE:
        return f"disk {tag & 0xffffff} op {seq} cell@{idx * CELL}"
    if tag & 0xff000000 == TAG_TMPL:
        return f"template cell@{idx * CELL}"
    return "garbage " + b.hex()


def fallocate(fd, mode, off, length):
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


# ---- the workload ---------------------------------------------------------

OPS = [("wd", 34), ("wb", 24), ("fs", 8), ("fd", 7), ("ph", 7), ("zr", 6), ("zx", 3), ("tr", 5)]
# every log record the same length: a torn record's slot fits the next life's first record
OPS_4K = [("w4", 96), ("fs", 2), ("fd", 2)]
# size changes and zero ranges past the end, few syncs: long unsynced tails of such records
# ("we": an O_DIRECT write in the last 256 KiB, where the next zero range past the end starts)
OPS_SIZES = [("wd", 15), ("we", 20), ("wb", 10), ("zx", 25), ("tr", 12), ("ph", 6), ("zr", 6),
             ("fs", 3), ("fd", 3)]


class DiskLoad(threading.Thread):
    """One disk's ops, in sequence, journaled."""

    def __init__(self, path, disk, seq0, journal, seed, a, stop):
        super().__init__(daemon=True)
        self.path, self.disk, self.seq = path, disk, seq0
        self.rng = random.Random(seed)
        self.a, self.stop = a, stop
        self.jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.fd_direct = os.open(path, os.O_RDWR | os.O_DIRECT)
        self.fd_buf = os.open(path, os.O_RDWR)
        self.size = os.fstat(self.fd_direct).st_size
        self.buf = mmap.mmap(-1, max(a.max_direct, 1 << 16))
        mix = {"mixed": OPS, "4k": OPS_4K, "sizes": OPS_SIZES}[a.mix]
        self.ops = [o for o, w in mix for _ in range(w)]

    def log(self, line):
        os.write(self.jfd, (line + "\n").encode())

    def pick(self):
        r, size, a = self.rng, self.size, self.a
        op = r.choice(self.ops)
        if op == "wd":
            n = 4096 * r.choice([1, 1, 2, 4, 8, 16, r.randint(1, a.max_direct // 4096)])
            off = 4096 * r.randrange(0, max(1, (size - n) // 4096 + 1))
            return op, [off, min(n, size - off)]
        if op == "we":
            n = 4096 * r.randint(1, min(64, a.max_direct // 4096))
            off = max(0, (size - n) // 4096 * 4096 - 4096 * r.randrange(0, 64 - n // 4096 + 1))
            return "wd", [off, min(n, size - off)]
        if op == "w4":
            return "wd", [4096 * r.randrange(0, size // 4096), 4096]
        if op == "wb":
            n = CELL * r.randint(1, 1024)
            off = CELL * r.randrange(0, max(1, (size - n) // CELL + 1))
            return op, [off, min(n, size - off)]
        if op in ("ph", "zr"):
            unit = r.choice([CELL, 4096])
            n = unit * r.randint(1, (256 << 10) // unit)
            off = unit * r.randrange(0, max(1, (size - n) // unit + 1))
            return op, [off, min(n, size - off)]
        if op == "zx":
            # from somewhere in the last 256 KiB to past the end, within max size
            off = max(0, size - CELL * r.randint(1, (256 << 10) // CELL))
            end = min(a.max_size, size + CELL * r.randint(1, (256 << 10) // CELL))
            return op, [off, end - off]
        if op == "tr":
            lo, hi = a.min_size // 4096, a.max_size // 4096
            return op, [4096 * r.randint(lo, hi)]
        return op, []

    def run(self):
        try:
            while not self.stop.is_set():
                op, args = self.pick()
                if op in ("wd", "wb", "ph", "zr") and (args[1] <= 0 or args[0] >= self.size):
                    continue
                if op == "zx" and args[1] <= 0:
                    continue
                k = self.seq
                self.log(f"I {k} {time.monotonic_ns()} {op} " + " ".join(map(str, args)))
                try:
                    res = self.do(k, op, args)
                except OSError as e:
                    self.log(f"E {k} {time.monotonic_ns()} {e.errno}")
                    return
                self.log(f"D {k} {time.monotonic_ns()} {res}")
                self.seq += 1
                if self.a.op_gap_us:
                    time.sleep(self.rng.random() * self.a.op_gap_us / 1e6)
        finally:
            for fd in (self.fd_direct, self.fd_buf, self.jfd):
                try:
                    os.close(fd)
                except OSError:
                    pass    # the mount is dead

    def do(self, k, op, args):
        if op in ("wd", "wb"):
            off, n = args
            data = write_content(self.disk, k, off, n)
            if op == "wd":
                self.buf[:n] = data
                res = os.pwrite(self.fd_direct, memoryview(self.buf)[:n], off)
            else:
                res = os.pwrite(self.fd_buf, data, off)
            return res
        if op == "fs":
            os.fsync(self.rng.choice([self.fd_direct, self.fd_buf]))
        elif op == "fd":
            os.fdatasync(self.rng.choice([self.fd_direct, self.fd_buf]))
        elif op == "ph":
            fallocate(self.fd_direct, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, *args)
        elif op == "zr":
            fallocate(self.fd_direct, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, *args)
        elif op == "zx":
            fallocate(self.fd_direct, FALLOC_FL_ZERO_RANGE, *args)
            self.size = max(self.size, args[0] + args[1])
        elif op == "tr":
            os.ftruncate(self.fd_direct, args[0])
            self.size = args[0]
        return 0


def cmd_workload(a):
    """crashlib.py workload --disk PATH:ID:SEQ0 ... --journal-dir D --seed S [--seconds T]"""
    stop = threading.Event()
    loads = []
    for spec in a.disk:
        path, disk, seq0 = spec.rsplit(":", 2)
        loads.append(DiskLoad(path, int(disk), int(seq0),
                              os.path.join(a.journal_dir, f"disk-{disk}.jnl"),
                              f"{a.seed}-{disk}", a, stop))
    print("ready", flush=True)
    for t in loads:
        t.start()
    end = time.monotonic() + a.seconds if a.seconds else None
    while any(t.is_alive() for t in loads):
        if end and time.monotonic() >= end:
            stop.set()
        time.sleep(0.01)
    for t in loads:
        t.join()


def workload_args(p):
    p.add_argument("--max-direct", type=int, default=128 << 10,
                   help="largest O_DIRECT write (bytes, multiple of 4096)")
    p.add_argument("--min-size", type=int, default=16 << 20)
    p.add_argument("--max-size", type=int, default=40 << 20)
    p.add_argument("--op-gap-us", type=int, default=0, help="random pause up to this between ops")
    p.add_argument("--mix", choices=["mixed", "4k", "sizes"], default="mixed",
                   help="4k: only 4 KiB O_DIRECT writes and syncs; sizes: mostly size changes, few syncs")


def workload_cmdline(a, specs, journal_dir, seed, seconds=0):
    """The argv that runs the workload as a separate process."""
    return [sys.executable, os.path.abspath(__file__), "workload", "--journal-dir", journal_dir,
            "--seed", str(seed), "--seconds", str(seconds), "--max-direct", str(a.max_direct),
            "--min-size", str(a.min_size), "--max-size", str(a.max_size),
            "--op-gap-us", str(a.op_gap_us), "--mix", a.mix] + [x for s in specs for x in ("--disk", s)]


# ---- journals -------------------------------------------------------------

class Op:
    __slots__ = ("k", "op", "args", "t_issue", "t_done", "res", "err", "piece")

    def __init__(self, k, op, args, t):
        self.k, self.op, self.args, self.t_issue = k, op, args, t
        self.t_done = self.res = self.err = None
        self.piece = None    # (off, len) of a write that is one part of a split write


PAGE = 4096
MAX_WRITE = 1 << 20     # FUSE max_write: measured, a 4 MiB O_DIRECT write is 4 records


def pieces(o):
    """The FUSE requests a write becomes, each one log record and atomic alone.
    Measured on Linux 6.18: a buffered write that starts inside a page and
    crosses its end sends that first partial page as a request of its own;
    the rest (and O_DIRECT writes) go in requests of up to max_write."""
    off, n = o.args
    out = []
    end = off + n
    if o.op == "wb" and off % PAGE and end > (off // PAGE + 1) * PAGE:
        out.append((off, (off // PAGE + 1) * PAGE - off))
        off = (off // PAGE + 1) * PAGE
    while off < end:
        out.append((off, min(MAX_WRITE, end - off)))
        off += MAX_WRITE
    return out


def split_writes(ops):
    """Ops with each multi-request write replaced by its pieces, in order.  A
    write that returned short (the mount died between its requests) returned
    the pieces its count covers; the others were in flight: the kernel may
    have sent them, and hcowfs applied them, before the connection died."""
    out = []
    for o in ops:
        ps = pieces(o) if o.op in ("wd", "wb") else []
        if len(ps) <= 1:
            out.append(o)
            continue
        done = o.res
        for off, n in ps:
            p = Op(o.k, o.op, [off, n], o.t_issue)
            p.t_done, p.err, p.piece = o.t_done, o.err, (off, n)
            if done is not None and done > 0:
                p.res = min(n, done)
                done -= p.res
            out.append(p)
    return out


def read_journal(path):
    """A disk's ops in order, writes split into their requests (a missing journal: none)."""
    ops = []
    try:
        text = open(path).read()
    except FileNotFoundError:
        return ops
    for line in text.splitlines():
        f = line.split()
        if not f or (f[0] in "DE" and len(f) < 4) or (f[0] == "I" and len(f) < 4):
            continue   # a line cut short by the kill
        if f[0] == "I":
            ops.append(Op(int(f[1]), f[3], [int(x) for x in f[4:]], int(f[2])))
        elif ops and int(f[1]) == ops[-1].k:
            if f[0] == "D":
                ops[-1].t_done, ops[-1].res = int(f[2]), int(f[3])
            else:
                ops[-1].t_done, ops[-1].err = int(f[2]), int(f[3])
    return split_writes(ops)


def bounds_after_kill(ops):
    """Crash rig: [lo, hi] = ops that returned, ops issued."""
    lo = 0
    while lo < len(ops) and ops[lo].res is not None:
        lo += 1
    return lo, len(ops)


def bounds_at(ops, t_cut):
    """Power-loss rig: ops before the last fsync acknowledged before t_cut must be there;
    ops issued before t_cut may be."""
    lo = hi = 0
    for i, o in enumerate(ops):
        if o.t_issue < t_cut:
            hi = i + 1
        if o.op in ("fs", "fd") and o.res is not None and o.t_done < t_cut:
            lo = i
    return lo, hi


# ---- the oracle -----------------------------------------------------------

class DiskModel:
    """A disk's expected content: img is max_size bytes, zeros past size."""

    def __init__(self, disk, max_size, img=None, size=0):
        self.disk, self.max_size = disk, max_size
        self.img = img if img is not None else bytearray(max_size)
        self.size = size

    @classmethod
    def from_template(cls, disk, tmpl_path, size, max_size):
        img = bytearray(max_size)
        t = open(tmpl_path, "rb").read()
        img[:len(t)] = t
        img[size:] = bytes(max_size - size)
        return cls(disk, max_size, img, size)

    def copy(self):
        return DiskModel(self.disk, self.max_size, bytearray(self.img), self.size)

    def apply(self, o):
        """Apply op o; return the byte range it may have changed."""
        a = o.args
        if o.op in ("wd", "wb"):
            off, n = a
            if o.res is not None:
                n = o.res
            n = max(0, min(n, self.size - off))
            if n:
                self.img[off:off + n] = write_content(self.disk, o.k, off, n)
            return off, off + n
        if o.op in ("ph", "zr"):
            off, n = a
            n = max(0, min(n, self.size - off))
            self.img[off:off + n] = bytes(n)
            return off, off + n
        if o.op == "zx":
            off, n = a
            self.size = max(self.size, off + n)
            self.img[off:off + n] = bytes(n)
            return off, off + n
        if o.op == "tr":
            new, old = a[0], self.size
            if new < old:
                self.img[new:old] = bytes(old - new)
            self.size = new
            return min(new, old), max(new, old)
        return 0, 0


def read_disk(path):
    with open(path, "rb", buffering=0) as f:
        return f.read()


def verify(model, ops, lo, hi, observed):
    """Find j in [lo, hi] with state(j) == observed.  model is the state before ops[0];
    it is advanced (to state j on success).  Returns j, or None."""
    if len(observed) > model.max_size:
        return None
    obs = bytearray(observed)
    obs.extend(bytes(model.max_size - len(obs)))
    for o in ops[:lo]:
        model.apply(o)
    mv_i, mv_o = memoryview(model.img), memoryview(obs)
    bad = {c for c in range(0, model.max_size, CHUNK) if mv_i[c:c + CHUNK] != mv_o[c:c + CHUNK]}
    j = lo
    while True:
        if not bad and model.size == len(observed):
            return j
        if j == hi:
            return None
        s, e = model.apply(ops[j])
        for c in range(s // CHUNK * CHUNK, e, CHUNK):
            if mv_i[c:c + CHUNK] != mv_o[c:c + CHUNK]:
                bad.add(c)
            else:
                bad.discard(c)
        j += 1


def _diff_cells(m, observed):
    """Offsets of the cells where state m and observed differ (sizes aside)."""
    out = []
    end = min(len(observed), m.size)
    mv = memoryview(m.img)
    for c in range(0, end, CHUNK):
        if observed[c:c + CHUNK] == mv[c:c + CHUNK]:
            continue
        for p in range(c, min(c + CHUNK, end), CELL):
            if observed[p:p + CELL] != mv[p:p + CELL]:
                out.append(p)
    return out


def diagnose(start, ops, lo, hi, observed, limit=8):
    """Why observed matches no state in [lo, hi]: lines of text.  Shows the
    nearest state (fewest differing cells) and what the differing cells hold."""
    out = []
    m = start.copy()
    best = None
    for j in range(0, hi + 1):
        if j >= lo:
            diff = _diff_cells(m, observed)
            score = len(diff) + (0 if m.size == len(observed) else 1)
            if best is None or score < best[0]:
                best = (score, j, diff, m.size)
        if j < hi:
            m.apply(ops[j])
    score, j, diff, size = best
    m = start.copy()
    for o in ops[:j]:
        m.apply(o)
    out.append(f"  nearest state: after {j} ops (allowed {lo}..{hi}): {len(diff)} cells differ"
               + (f", size {size} but the disk has {len(observed)}" if size != len(observed) else ""))
    writers = {}
    for p in diff:
        writers.setdefault(decode(observed[p:p + CELL]).split(" cell@")[0], []).append(p)
    for who, ps in writers.items():
        out.append(f"    {len(ps)} cells hold {who} (first at offset {ps[0]}, expected "
                   f"{decode(bytes(m.img[ps[0]:ps[0] + CELL]))})")
    for o in ops[max(0, lo - 3):hi]:
        state = "returned" if o.res is not None else f"error {o.err}" if o.err else "in flight"
        out.append(f"  op {o.k}: {o.op} {o.args} ({state}"
                   + (f", done at {o.t_done}" if o.t_done else "") + f", issued at {o.t_issue})")
    return out


# ---- mounts ---------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/rigs/ -> the source tree
BUILD = os.environ.get("top_builddir") or ROOT     # make check's, for out-of-tree builds
MOUNT = os.path.join(BUILD, "supervisor", "mount.hcowfs")
CTL = os.path.join(BUILD, "tools", "hcowctl")
WORKER = os.path.join(BUILD, "fs", "hcowfs-worker")


def run(*cmd, check=True):
    import subprocess
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stdout.strip()}")
    return r


def is_mounted(mnt):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == mnt for line in f)


def ballast_build(data, tmpl, template, n):
    """Make data (empty) a store whose disk d0.img holds n extents of 512 bytes, straight
    through the store API (bench/bench-store): the rigs then run on an index of that size.
    Block b starts with b (little-endian u64)."""
    run(os.path.join(BUILD, "bench", "bench-store"), "build", "--datadir", data, "--tmpldir", tmpl,
        "--template", template, "--disks", "1", "--extents", str(n),
        "--disk-size", str(max(n * 512, 64 << 20)), "--block", "512")


def ballast_ok(path, n, rng, samples=200):
    """Do the first, the last and samples random blocks of the ballast disk at path hold
    their numbers?"""
    with open(path, "rb") as f:
        for b in [0, n - 1] + [rng.randrange(n) for _ in range(samples)]:
            f.seek(b * 512)
            if int.from_bytes(f.read(8), "little") != b:
                return False
    return True


def mount(tmpl, data, mnt, opts=""):
    run(MOUNT, tmpl, data, mnt, *(["-o", opts] if opts else []))


def umount(mnt, data):
    """Clean unmount; wait until the mount's processes are gone."""
    if is_mounted(mnt):
        r = run("umount", mnt, check=False)
        if r.returncode != 0:
            run("umount", "-l", mnt, check=False)
    for _ in range(300):
        if not pids_of(data):
            return
        time.sleep(0.02)
    raise RuntimeError(f"processes of {data} still running after umount: {pids_of(data)}")


def pids_of(data):
    """Supervisor and workers of the mount of data dir `data` (they name it in argv)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            argv = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if not argv or not (argv[0].endswith(b"mount.hcowfs") or argv[0].endswith(b"hcowfs-worker")):
            continue
        if data.encode() in argv:
            out.append(int(p))
    return out


def kill_all(data, first=None):
    """SIGKILL `first` (the supervisor), then every process of the mount, until none is left."""
    if first:
        try:
            os.kill(first, 9)
        except ProcessLookupError:
            pass
    for _ in range(500):
        left = pids_of(data)
        for p in left:
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
        if not left:
            return
        time.sleep(0.002)
    raise RuntimeError(f"cannot kill the processes of {data}: {pids_of(data)}")


def status(mnt):
    import json
    return json.loads(run(CTL, "-m", mnt, "status", "--json").stdout)


def main():
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("workload")
    w.add_argument("--disk", action="append", required=True)
    w.add_argument("--journal-dir", required=True)
    w.add_argument("--seed", default="0")
    w.add_argument("--seconds", type=float, default=0)
    workload_args(w)
    a = p.parse_args()
    if a.cmd == "workload":
        cmd_workload(a)


if __name__ == "__main__":
    main()
