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

Lifecycle (--life STATE, issue 12).  One more thread (LifeLoad) runs, in
sequence and journaled the same way (life.jnl; F k t msg: the command was
refused and changed nothing), the operations of hcowctl on the store: it
owns a small disk e.img (template life.img) and the clones f<k>.img it makes,
and, between their ops, closes them all, so that it may roll them back:
  lw  a write (4 KiB aligned, at most 64 KiB: one request) then fsync, to a
      lifecycle disk;  ls  a snapshot of one;  lc  a clone of one or of one's
      snapshot;  lr  a rollback of one to its snapshot;  ld  a snapshot
      deleted (any);  lx  a clone deleted (one without snapshots);
  ps  a snapshot of a disk the workload is writing;  pc  a clone of such a
      disk or of such a snapshot (never written).
The model (LifeModel) of what the store holds besides the workload's disks:
- each returned op is durable and took effect whole; the ops of the journal
  form a sequence, so the store holds the names and contents of the state
  after some prefix of them, from every op that returned (crash rig), or
  returned before the cut (power-loss rig), to every op issued (before the
  cut): i.e. the one op in flight happened whole or not at all;
- the lifecycle disks and their snapshots are exact: a snapshot or clone is
  its source's bytes at that point of the sequence, a rollback makes the
  disk its snapshot's bytes, a write changes its cells;
- a snapshot (or clone) of a disk being written is a Capture: that disk's
  state after some prefix of its own ops (its requests: a write split by
  the kernel may be cut between pieces), holding every op that returned
  before the command was issued (the kernel had sent it: no writeback
  cache) and no op issued after the command returned (after the cut, or
  ever, if the command failed: the supervisor dies first, the worker goes on
  a little).  It need not hold what the disk's fsync rule would: an
  acknowledged snapshot holds every write the worker had applied, synced or
  not.  A clone of such a snapshot is the same Capture: equal to it.
After every kill or cut, life_verify() lists the store's disks and
snapshots (hcowctl list/snapshots), reads each one whole (snapshots at
MNT/.snapshots/DISK@SNAP) and looks for that prefix; then check_store()
runs hcowctl check, which must find no problem and say `disk 'D@S': ok` for
every snapshot.
"""
import ctypes
import errno
import hashlib
import json
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


NS_ROOT = "ns"               # the namespace thread's directory (crashns.py): not the lifecycle's
LIFE_DISK = "e.img"          # the lifecycle thread's own disk, made at every fresh store
LIFE_TEMPLATE = "life.img"   # its template (small: the oracle holds every copy whole)
LIFE_SIZE = 4 << 20
# lw: a write (4 KiB aligned, one request) and fsync to a closed lifecycle disk; ls: its snapshot;
# lc: a clone of it or of its snapshot; lr: its rollback; ld: a snapshot deleted; lx: a clone
# deleted; ps: a snapshot of a disk being written; pc: a clone of such a disk or snapshot
LIFE_OPS = [("lw", 25), ("ls", 12), ("lc", 10), ("lr", 10), ("ld", 10), ("lx", 5), ("ps", 12),
            ("pc", 6)]
LIFE_NAMES = {"lw": 1, "ls": 1, "lc": 1, "lr": 1, "ld": 1, "lx": 1, "ps": 1, "pc": 1}
LIFE_MAX_SNAPS, LIFE_MAX_CLONES, LIFE_MAX_PCLONES = 8, 3, 2


def life_id(name):
    """The `disk` of a lifecycle disk's cells: 100 for e.img, 1000 + k for the clone f<k>.img."""
    return 100 if name == LIFE_DISK else (1000 + int(name[1:].split(".")[0])) & 0xffffff


class LifeLoad(threading.Thread):
    """Snapshots, clones, rollbacks and deletes (hcowctl) between the disks' ops, in sequence,
    journaled like a disk's ops in life.jnl (F k t msg: refused, it changed nothing)."""

    def __init__(self, state_path, journal, seed, stop):
        super().__init__(daemon=True)
        st = json.load(open(state_path))
        self.mnt, self.seq, self.size = st["mnt"], st["seq"], st["size"]
        self.disks = st["disks"]        # lifecycle disk -> its snapshots
        self.live = st["live"]          # disk the workload writes -> its snapshots
        self.pclones = st["pclones"]    # clones of those
        self.rng, self.stop = random.Random(seed), stop
        self.jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.ops = [o for o, w in LIFE_OPS for _ in range(w)]

    def pick(self):
        r, k = self.rng, self.seq
        snaps = [f"{d}@{s}" for m in (self.disks, self.live) for d in sorted(m) for s in m[d]]
        clones = [d for d in sorted(self.disks) if d != LIFE_DISK]
        while True:
            op = r.choice(self.ops)
            if op == "ld" or (snaps and len(snaps) >= LIFE_MAX_SNAPS):
                if snaps:
                    return "ld", [r.choice(snaps)]
            elif op == "lw":
                n = 4096 * r.randint(1, 16)
                return op, [r.choice(sorted(self.disks)), 4096 * r.randrange(0, (self.size - n) // 4096 + 1), n]
            elif op == "ls":
                d = r.choice(sorted(self.disks))
                if len(self.disks[d]) < 3:
                    return op, [d, f"s{k}"]
            elif op == "lc" and len(clones) < LIFE_MAX_CLONES:
                srcs = sorted(self.disks) + [f"{d}@{s}" for d in sorted(self.disks) for s in self.disks[d]]
                return op, [r.choice(srcs), f"f{k}.img"]
            elif op == "lr":
                c = [[d, s] for d in sorted(self.disks) for s in self.disks[d]]
                if c:
                    return op, r.choice(c)
            elif op == "lx":
                c = [d for d in clones if not self.disks[d]] + self.pclones
                if c and (len(clones) >= LIFE_MAX_CLONES or len(self.pclones) >= LIFE_MAX_PCLONES):
                    return op, [r.choice(c)]
            elif op == "ps":
                d = r.choice(sorted(self.live))
                return op, [d, f"p{k}"]
            elif op == "pc" and len(self.pclones) < LIFE_MAX_PCLONES:
                srcs = sorted(self.live) + [f"{d}@{s}" for d in sorted(self.live) for s in self.live[d]]
                return op, [r.choice(srcs), f"g{k}.img"]

    def ctl(self, *args):
        """Run hcowctl; None on success, else its message ("busy: ..." for a disk still open)."""
        import subprocess
        for _ in range(50):
            r = subprocess.run([CTL, "-m", self.mnt, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            if r.returncode == 0:
                return None
            if "is open" not in r.stdout:
                return r.stdout.strip() or f"exit {r.returncode}"
            time.sleep(0.02)    # the kernel's RELEASE of the last close is on its way
        return "busy: " + r.stdout.strip()

    def do(self, k, op, args):
        if op == "lw":
            d, off, n = args
            fd = os.open(os.path.join(self.mnt, d), os.O_RDWR)
            try:
                os.pwrite(fd, write_content(life_id(d), k, off, n), off)
                os.fsync(fd)
            finally:
                os.close(fd)
            return None
        cmd = {"ls": "snapshot", "ps": "snapshot", "lc": "clone", "pc": "clone", "lr": "rollback",
               "ld": "delete", "lx": "delete"}[op]
        return self.ctl(cmd, *args)

    def note(self, op, args):
        """Keep the names up to date after op succeeded."""
        if op in ("ls", "ps"):
            (self.disks if op == "ls" else self.live)[args[0]].append(args[1])
        elif op == "lc":
            self.disks[args[1]] = []
        elif op == "pc":
            self.pclones.append(args[1])
        elif op in ("ld", "lx") and "@" in args[0]:
            d, s = args[0].split("@")
            (self.disks if d in self.disks else self.live)[d].remove(s)
        elif op == "lx":
            self.disks.pop(args[0], None)
            if args[0] in self.pclones:
                self.pclones.remove(args[0])

    def run(self):
        try:
            while not self.stop.is_set():
                op, args = self.pick()
                k = self.seq
                self.log(f"I {k} {time.monotonic_ns()} {op} " + " ".join(map(str, args)))
                try:
                    msg = self.do(k, op, args)
                except OSError as e:
                    msg = f"errno {e.errno}"
                if msg is not None and not msg.startswith("busy: "):
                    self.log(f"E {k} {time.monotonic_ns()} 0 {msg}")    # the mount died: in flight
                    return
                self.log(f"D {k} {time.monotonic_ns()} 0" if msg is None else
                         f"F {k} {time.monotonic_ns()} 0 {msg}")
                if msg is None:
                    self.note(op, args)
                self.seq += 1
                time.sleep(self.rng.uniform(0.005, 0.05))
        finally:
            os.close(self.jfd)

    def log(self, line):
        os.write(self.jfd, (line.replace("\n", " ") + "\n").encode())


def cmd_workload(a):
    """crashlib.py workload --disk PATH:ID:SEQ0 ... --journal-dir D --seed S [--seconds T]"""
    stop = threading.Event()
    loads = []
    for spec in a.disk:
        path, disk, seq0 = spec.rsplit(":", 2)
        loads.append(DiskLoad(path, int(disk), int(seq0),
                              os.path.join(a.journal_dir, f"disk-{disk}.jnl"),
                              f"{a.seed}-{disk}", a, stop))
    if a.life:
        loads.append(LifeLoad(a.life, os.path.join(a.journal_dir, "life.jnl"), f"{a.seed}-life", stop))
    if a.names:
        import crashns
        loads.append(crashns.NameLoad(a.names, os.path.join(a.journal_dir, "ns.jnl"), f"{a.seed}-ns", stop))
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


def workload_cmdline(a, specs, journal_dir, seed, seconds=0, life=None, names=None):
    """The argv that runs the workload as a separate process (life: the lifecycle thread's
    state file, see LifeModel.state_file; names: the namespace thread's, crashns.py)."""
    return [sys.executable, os.path.abspath(__file__), "workload", "--journal-dir", journal_dir,
            "--seed", str(seed), "--seconds", str(seconds), "--max-direct", str(a.max_direct),
            "--min-size", str(a.min_size), "--max-size", str(a.max_size),
            "--op-gap-us", str(a.op_gap_us), "--mix", a.mix] + [x for s in specs for x in ("--disk", s)] + \
        (["--life", life] if life else []) + (["--names", names] if names else [])


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


def journal_lines(path):
    """A journal's lines, split in words (a missing journal: none)."""
    try:
        return [line.split() for line in open(path).read().splitlines()]
    except FileNotFoundError:
        return []


def read_journal(path):
    """A disk's ops in order, writes split into their requests (a missing journal: none)."""
    ops = []
    for f in journal_lines(path):
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


def verify(model, ops, lo, hi, observed, prefix=False):
    """Find j in [lo, hi] with state(j) == observed.  model is the state before ops[0];
    it is advanced (to state j on success).  Returns j, or None.  prefix: observed need
    only equal state(j)'s first len(observed) bytes, whatever its size (a copy of the
    disk cut at a size read a moment before)."""
    if len(observed) > model.max_size:
        return None
    obs = bytearray(observed)
    obs.extend(bytes(model.max_size - len(obs)))
    for o in ops[:lo]:
        model.apply(o)
    end = len(observed) if prefix else model.max_size
    mv_i, mv_o = memoryview(model.img)[:end], memoryview(obs)[:end]
    bad = {c for c in range(0, end, CHUNK) if mv_i[c:c + CHUNK] != mv_o[c:c + CHUNK]}
    j = lo
    while True:
        if not bad and (prefix or model.size == len(observed)):
            return j
        if j == hi:
            return None
        s, e = model.apply(ops[j])
        for c in range(s // CHUNK * CHUNK, min(e, end), CHUNK):
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


# ---- the lifecycle oracle -------------------------------------------------

class Capture:
    """A snapshot or clone of a disk the workload writes: that disk's state after some prefix of
    its ops, from every op that returned before the command was issued (t0) to every op issued
    before it returned (t1; None: it never did).  Resolved (sha256, size) once a read matched."""

    def __init__(self, disk, t0, t1, prefix=False):
        self.disk, self.t0, self.t1, self.seen = disk, t0, t1, None
        self.prefix = prefix    # a copy_file_range of the disk: see verify()

    def check(self, data, starts, ops, t_cut=None):
        """Is data that disk at one moment of the window?  starts/ops: the disks' states and ops
        the window's times refer to (the first check resolves it: later ones compare)."""
        if self.seen:
            return self.seen == (hashlib.sha256(data).digest(), len(data))
        kops, lo = ops[self.disk], 0
        while lo < len(kops) and kops[lo].t_done is not None and kops[lo].t_done < self.t0:
            lo += 1
        end = min(t for t in (self.t1, t_cut, float("inf")) if t is not None)
        hi = sum(1 for o in kops if o.t_issue < end)
        if verify(starts[self.disk].copy(), kops, lo, max(lo, hi), data, self.prefix) is None:
            return False
        self.seen = (hashlib.sha256(data).digest(), len(data))
        return True


class LifeModel:
    """What the lifecycle ops (LifeLoad) made, as of some prefix of them: the bytes of each
    lifecycle disk and snapshot (exact: its ops are in sequence), and a Capture for each
    snapshot or clone of a disk the workload writes."""

    def __init__(self, exact, live, seq):
        self.exact, self.live, self.seq = exact, live, seq

    @classmethod
    def fresh(cls, tmpl_path):
        t = open(tmpl_path, "rb").read()
        return cls({LIFE_DISK: t[:LIFE_SIZE]}, {}, 1)

    def copy(self):
        return LifeModel(dict(self.exact), dict(self.live), self.seq)

    def names(self):
        return set(self.exact) | set(self.live)

    def apply(self, o):
        a, x = o.args, self.exact
        # a command that failed (the mount died under it) may still have run later: the
        # supervisor dies first, the worker serves the disks a little longer
        t_end = o.t_done if o.res is not None else None
        self.seq = o.k + 1
        if o.res == "refused":
            return
        if o.op == "lw":
            d, off, n = a[0], int(a[1]), int(a[2])
            x[d] = x[d][:off] + write_content(life_id(d), o.k, off, n) + x[d][off + n:]
        elif o.op == "ls":
            x[f"{a[0]}@{a[1]}"] = x[a[0]]
        elif o.op == "lc":
            x[a[1]] = x[a[0]]
        elif o.op == "lr":
            x[a[0]] = x[f"{a[0]}@{a[1]}"]
        elif o.op in ("ld", "lx"):
            x.pop(a[0], None)
            self.live.pop(a[0], None)
        elif o.op == "ps":
            self.live[f"{a[0]}@{a[1]}"] = Capture(live_disk_id(a[0]), o.t_issue, t_end)
        elif o.op == "pc":
            self.live[a[1]] = self.live[a[0]] if "@" in a[0] else \
                Capture(live_disk_id(a[0]), o.t_issue, t_end)

    @classmethod
    def seen(cls, mnt, skip, seq):
        """The state the mounted store holds (after a failure: later checks go on from it)."""
        m = cls({}, {}, seq)
        for n, p in store_objects(mnt, skip).items():
            data = read_disk(p)
            if n.startswith(("e", "f")):
                m.exact[n] = data
            else:
                m.live[n] = Capture(live_disk_id(n) if n.startswith("d") else 0, 0, 0)
                m.live[n].seen = (hashlib.sha256(data).digest(), len(data))
        return m

    def state_file(self, path, mnt, live_disks):
        """The names LifeLoad works on, for the next workload."""
        disks = {d: [] for d in self.exact if "@" not in d}
        live = {d: [] for d in live_disks}
        for n in self.names():
            if "@" in n:
                d, snap = n.split("@")
                (disks if d in disks else live)[d].append(snap)
        with open(path, "w") as f:
            json.dump({"mnt": mnt, "seq": self.seq, "size": LIFE_SIZE, "disks": disks, "live": live,
                       "pclones": sorted(n for n in self.live if "@" not in n)}, f)


def live_disk_id(name):
    """d3.img -> 3"""
    return int(name[1:].split(".")[0])


def read_life_journal(path):
    """The lifecycle ops in order; res 0 (done), "refused" or None (in flight)."""
    ops = []
    for f in journal_lines(path):
        if len(f) < 4 or f[0] not in "IDFE" or (f[0] != "I" and (not ops or int(f[1]) != ops[-1].k)):
            continue
        if f[0] == "I":
            ops.append(Op(int(f[1]), f[3], f[4:], int(f[2])))
        elif f[0] == "E":
            ops[-1].t_done, ops[-1].err = int(f[2]), " ".join(f[4:])
        else:
            ops[-1].t_done, ops[-1].res = int(f[2]), 0 if f[0] == "D" else "refused"
            ops[-1].err = " ".join(f[4:]) or None
    return ops


def life_bounds(ops, t_cut=None):
    """[lo, hi]: the lifecycle ops that returned (before t_cut), that were issued (before it).
    A returned op is durable: each command checkpoints and syncs before it answers, and a
    write fsyncs."""
    lo = 0
    while lo < len(ops) and ops[lo].res is not None and (t_cut is None or ops[lo].t_done < t_cut):
        lo += 1
    hi = sum(1 for o in ops if t_cut is None or o.t_issue < t_cut)
    return lo, max(lo, hi)


def store_objects(mnt, skip):
    """{name: path} of every disk and snapshot of the mounted store but those in skip."""
    out = {}
    for d in json.loads(run(CTL, "-m", mnt, "list", "--json").stdout):
        out[d["name"]] = os.path.join(mnt, d["name"])
    for d in json.loads(run(CTL, "-m", mnt, "snapshots", "--json").stdout):
        out[d["name"]] = os.path.join(mnt, ".snapshots", d["name"])
    return {n: p for n, p in out.items() if n not in skip and not n.startswith(NS_ROOT + "/")}


def life_verify(mnt, start, ops, lo, hi, starts, dops, skip, t_cut=None):
    """Find j in [lo, hi] with every lifecycle disk, snapshot and clone of the mounted store as
    LifeModel state j says (names and bytes; Captures as Capture.check).  start is the state
    before ops[0].  Returns (state j, []) or (None, lines saying what differs)."""
    objs = store_objects(mnt, skip)
    m = start.copy()
    for o in ops[:lo]:
        m.apply(o)
    cands = []
    for j in range(lo, hi + 1):
        cands.append((j, m.copy()))
        if j < hi:
            m.apply(ops[j])
    same = [(j, c) for j, c in cands if c.names() == set(objs)]
    if not same:
        j, c = cands[0]
        out = [f"  names after {lo}..{hi} lifecycle ops: none is the store's"]
        out.append(f"    missing (after {lo}): {sorted(c.names() - set(objs))}; "
                   f"extra: {sorted(set(objs) - c.names())}")
    else:
        data = {n: read_disk(p) for n, p in objs.items()}
        out = []
        for j, c in same:
            bad = [n for n in c.exact if data[n] != c.exact[n]]
            bad += [n for n, cap in c.live.items() if not cap.check(data[n], starts, dops, t_cut)]
            if not bad:
                return c, []
            out.append(f"  after {j} lifecycle ops, these differ: {sorted(bad)}")
            for n in sorted(bad)[:4]:
                exp = c.exact.get(n)
                if exp is None:
                    out.append(f"    {n}: no moment of disk {c.live[n].disk} between "
                               f"t={c.live[n].t0} and t={c.live[n].t1} reads like it")
                    continue
                diff = [p for p in range(0, min(len(exp), len(data[n])), CELL)
                        if exp[p:p + CELL] != data[n][p:p + CELL]]
                out.append(f"    {n}: {len(diff)} cells differ" + (
                    f", first at {diff[0]}: holds {decode(data[n][diff[0]:diff[0] + CELL])}, expected "
                    f"{decode(exp[diff[0]:diff[0] + CELL])}" if diff else f", size {len(data[n])}"))
    for o in ops[max(0, lo - 4):hi]:
        state = "returned" if o.res == 0 else f"refused: {o.err}" if o.res else \
            f"error: {o.err}" if o.err else "in flight"
        out.append(f"  lifecycle op {o.k}: {o.op} {' '.join(o.args)} ({state})")
    return None, out


def check_store(mnt):
    """hcowctl check of the mounted store: [] if it is clean and covers every snapshot, else
    lines saying what it found."""
    r = run(CTL, "-m", mnt, "check", check=False)
    snaps = [d["name"] for d in json.loads(run(CTL, "-m", mnt, "snapshots", "--json").stdout)]
    missing = [n for n in snaps if f"disk '{n}': ok" not in r.stdout]
    if r.returncode == 0 and "no problems found" in r.stdout and not missing:
        return []
    return [f"  hcowctl check: exit {r.returncode}" + (f", no 'ok' line for {missing}" if missing else "")] + \
        ["    " + line for line in r.stdout.splitlines() if "': ok" not in line][:12]


# ---- mounts ---------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/rigs/ -> the source tree
BUILD = os.environ.get("top_builddir") or ROOT     # make check's, for out-of-tree builds
MOUNT = os.path.join(BUILD, "supervisor", "mount.hcowfs")
CTL = os.path.join(BUILD, "tools", "hcowctl")
WORKER = os.path.join(BUILD, "fs", "hcowfs-worker")


def run(*cmd, check=True, env=None):
    import subprocess
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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
    """With fault injection the rig crashes workers with SIGSEGV on purpose: a
    sanitized build's AddressSanitizer must not report those as bugs (as
    tests/lib.sh's mount_fs does)."""
    env = None
    if "fault_injection" in opts:
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":handle_segv=0"
    run(MOUNT, tmpl, data, mnt, *(["-o", opts] if opts else []), env=env)


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
    w.add_argument("--life", help="also run snapshots, clones... (a LifeModel.state_file)")
    w.add_argument("--names", help="also run creates, mkdir, renames, copies (a crashns.NameModel.state_file)")
    workload_args(w)
    a = p.parse_args()
    if a.cmd == "workload":
        cmd_workload(a)


if __name__ == "__main__":
    main()
