#!/usr/bin/env python3
"""crashns: the namespace thread of the crash-point rig and its oracle (issue 20:
the mount is a directory tools use).

Workload (NameLoad, one thread beside crashlib's disk and lifecycle threads, ops in
sequence, journaled in ns.jnl like a disk's: `I k t op args`, `D k t result`,
`E k t errno`).  Everything it makes lives under MNT/ns (crashlib.NS_ROOT), paths
named by op number (directories a<k>, files f<k>.img), at most MAX_DEPTH deep:
  nc  create a file (open O_CREAT|O_EXCL: a disk of no template), write up to
      64 KiB at 0 (one request), fsync
  nm  mkdir under any directory (nested)
  nr  rename a file (into any directory);  nR  rename a directory, with what
      is below it, under another one (never under itself)
  nu  unlink a file;  nd  rmdir an empty directory
  nw  write up to 64 KiB into a file (a copy too: its extents are shared), fsync
  cs  a whole-disk copy_file_range into a new empty file, at offset 0 (the
      store shares extents, share.c): from one of the workload's disks dN.img,
      being written meanwhile, or from a file of this thread; then fsync
  ct  the same from .templates/life.img (the new file adopts the template)
  cb  copy_file_range of up to 64 KiB at different offsets (by bytes) from a
      file or the template into another file, fsync
  th  a read through an fd of .templates/life.img held open since the start,
      every other op: across a worker's replacement too (this found that an
      open template file's handle was a pointer into the dead worker)

Oracle (name_verify).  Namespace changes are durable when they return
(docs/durability.md), and a process kill keeps the page cache, so a write or a
copy that returned is in the log: after a kill the tree under MNT/ns (walked
with readdir) must be the state after some prefix of the ops holding every op
that returned, and no op that was never issued: the same directories, the same
files, each read whole and equal byte for byte and in size.  The one op in
flight may also have stopped between its steps, each a FUSE request and atomic
alone: a create, copy or write whose file exists but is empty (nc, cs, ct), a
write or byte copy past the end whose size change is there but not its bytes
(nc, nw, cb: the store grows a file before it writes).  A copy of a disk
being written is a crashlib.Capture: that disk's bytes at one moment between
the op's issue and its return (cut at the length the copy returned, since the
size was read just before).
`hcowctl list` must show, under ns/, exactly the files readdir shows.
"""
import errno
import json
import os
import random
import threading
import time

import crashlib as cl

NS_ID = 200             # the `disk` of the cells this thread writes
NS_TEMPLATE = cl.LIFE_TEMPLATE
MAX_FILES, MAX_DIRS, MAX_DEPTH, MAX_BIG = 8, 6, 3, 1
BIG = 1 << 20           # a file above this is a copy of a disk or of the template
NS_OPS = [("nc", 14), ("nm", 10), ("nr", 10), ("nR", 8), ("nu", 6), ("nd", 4), ("nw", 12),
          ("cs", 12), ("ct", 5), ("cb", 12)]
NS_NAMES = {o for o, _ in NS_OPS} | {"th"}
DEAD = {errno.ENOTCONN, errno.ECONNABORTED, errno.ENODEV}   # the mount was killed


def depth(p):
    return p.count("/")


def under(p, d):
    return p.startswith(d + "/")


def walk(mnt):
    """(directories, {file: size}) under MNT/ns, paths relative to MNT."""
    dirs, files = set(), {}
    for top, ds, fs in os.walk(os.path.join(mnt, cl.NS_ROOT)):
        rel = os.path.relpath(top, mnt)
        dirs.add(rel)
        for f in fs:
            files[f"{rel}/{f}"] = os.stat(os.path.join(top, f)).st_size
    return dirs, files


class NameLoad(threading.Thread):
    """The namespace ops, in sequence, journaled (see the header)."""

    def __init__(self, state_path, journal, seed, stop):
        super().__init__(daemon=True)
        st = json.load(open(state_path))
        self.mnt, self.seq, self.live = st["mnt"], st["seq"], st["live"]
        self.templates = st["templates"]
        self.held = None        # an fd of the template, open the whole run, and its bytes
        if st["hold"]:
            self.held = (os.open(self.path(f".templates/{NS_TEMPLATE}"), os.O_RDONLY),
                         open(os.path.join(self.mnt, ".templates", NS_TEMPLATE), "rb").read())
        self.dirs, self.files = walk(self.mnt)
        self.fresh = set()      # copies of a disk being written, made in this run: bytes unknown
        self.copied = None      # the last file copied whole: unlinked next, often (replay of
                                # its copy needs it until a checkpoint covers the copy)
        self.rng, self.stop = random.Random(seed), stop
        self.jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.ops = [o for o, w in NS_OPS for _ in range(w)]

    def log(self, line):
        os.write(self.jfd, (line + "\n").encode())

    def pick(self):
        r, k = self.rng, self.seq
        dirs, files = sorted(self.dirs), sorted(self.files)
        known = [f for f in files if f not in self.fresh]
        big = [f for f in files if self.files[f] > BIG]
        room = len(files) < MAX_FILES
        if self.held and k % 2:
            # th: every other op, a read through the template fd held since the start
            return "th", [4096 * r.randrange(0, cl.LIFE_SIZE // 4096)]
        for _ in range(1000):
            op = r.choice(self.ops)
            if op == "nc" and room:
                return op, [f"{r.choice(dirs)}/f{k}.img", 4096 * r.randint(1, 16)]
            if op == "nm" and len(dirs) <= MAX_DIRS:
                return op, [f"{r.choice([d for d in dirs if depth(d) < MAX_DEPTH])}/a{k}"]
            if op == "nr" and files:
                return op, [r.choice(files), f"{r.choice(dirs)}/f{k}.img"]
            if op == "nR" and len(dirs) > 1:
                # rather a directory with files below it
                full = [d for d in dirs[1:] if any(under(f, d) for f in files)]
                d = r.choice(full or dirs[1:])
                height = max(depth(x) for x in dirs if x == d or under(x, d)) - depth(d)
                to = [p for p in dirs if p != d and not under(p, d) and depth(p) + 1 + height <= MAX_DEPTH]
                if to:
                    return op, [d, f"{r.choice(to)}/a{k}"]
            if op == "nu" and files and (not room or len(big) >= MAX_BIG or r.random() < 0.5):
                if self.copied in self.files and r.random() < 0.5:
                    return op, [self.copied]
                return op, [r.choice(big if len(big) >= MAX_BIG else files)]
            if op == "nd":
                empty = [d for d in dirs[1:] if not any(under(x, d) for x in dirs + files)]
                if empty:
                    return op, [r.choice(empty)]
            if op == "nw" and known:
                f = r.choice(known)
                return op, [f, 4096 * r.randrange(0, self.files[f] // 4096 + 16), 4096 * r.randint(1, 16)]
            if op == "cs" and room and len(big) < MAX_BIG:
                own = [f for f in known if self.files[f] > 0]
                src = r.choice(self.live) if r.random() < 0.5 or not own else r.choice(own)
                return op, [src, f"{r.choice(dirs)}/f{k}.img"]
            if op == "ct" and room and len(big) < MAX_BIG and self.templates:
                return op, [f".templates/{NS_TEMPLATE}", f"{r.choice(dirs)}/f{k}.img"]
            if op == "cb" and known:
                srcs = [f for f in known if self.files[f] >= cl.CELL]
                src = r.choice(srcs) if srcs and (r.random() < 0.8 or not self.templates) else \
                    f".templates/{NS_TEMPLATE}"
                dst = r.choice([f for f in known if f != src] or [None])
                size = cl.LIFE_SIZE if src.startswith(".") else self.files[src]
                if dst is None:
                    continue
                off_in = cl.CELL * r.randrange(0, size // cl.CELL)
                n = min(cl.CELL * r.randint(1, 4096), size - off_in)
                off_out = cl.CELL * r.randrange(0, (self.files[dst] + (64 << 10)) // cl.CELL)
                if off_out != off_in:
                    return op, [src, dst, off_in, off_out, n]
        return ("nm", [f"{cl.NS_ROOT}/a{k}"]) if len(dirs) <= MAX_DIRS else ("nu", [files[0]])

    def path(self, p):
        return os.path.join(self.mnt, p)

    def do(self, k, op, args):
        """Run op; returns its result (bytes written or copied, else 0)."""
        if op == "th":
            fd, data = self.held
            off = args[0]
            if os.pread(fd, 4096, off) != data[off:off + 4096]:
                raise OSError(errno.EBADMSG, "the template read through a held fd differs")
        elif op == "nm":
            os.mkdir(self.path(args[0]))
        elif op in ("nr", "nR"):
            os.rename(self.path(args[0]), self.path(args[1]))
        elif op == "nu":
            os.unlink(self.path(args[0]))
        elif op == "nd":
            os.rmdir(self.path(args[0]))
        elif op in ("nc", "nw"):
            off, n = (0, args[1]) if op == "nc" else args[1:]
            flags = os.O_WRONLY | (os.O_CREAT | os.O_EXCL if op == "nc" else 0)
            fd = os.open(self.path(args[0]), flags, 0o644)
            try:
                res = os.pwrite(fd, cl.write_content(NS_ID, k, off, n), off)
                os.fsync(fd)
            finally:
                os.close(fd)
            return res
        else:
            return self.copy(op, args)
        return 0

    def copy(self, op, args):
        """cs, ct: a new file, one copy_file_range of the whole source at 0; cb: into a file,
        at other offsets, until all is copied."""
        fi = os.open(self.path(args[0]), os.O_RDONLY)
        try:
            if op == "cb":
                off_in, off_out, n = args[2:]
                fo = os.open(self.path(args[1]), os.O_WRONLY)
            else:
                off_in = off_out = 0
                n = os.fstat(fi).st_size
                fo = os.open(self.path(args[1]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                done = 0
                while done < n:
                    c = os.copy_file_range(fi, fo, n - done, off_in + done, off_out + done)
                    if c == 0 or op != "cb":
                        done += c
                        break
                    done += c
                os.fsync(fo)
            finally:
                os.close(fo)
        finally:
            os.close(fi)
        return done

    def note(self, op, args, res):
        """Keep the tree up to date after op returned."""
        if op == "nm":
            self.dirs.add(args[0])
        elif op in ("nr", "nR"):
            a, b = args
            moved = {p for p in self.files if p == a or under(p, a)}
            for p in moved:
                q = b + p[len(a):]
                self.copied = q if self.copied == p else self.copied
                self.files[q] = self.files.pop(p)
                if p in self.fresh:
                    self.fresh.discard(p)
                    self.fresh.add(q)
            self.dirs = {b + d[len(a):] if d == a or under(d, a) else d for d in self.dirs}
        elif op == "nu":
            self.files.pop(args[0])
            self.fresh.discard(args[0])
        elif op == "nd":
            self.dirs.discard(args[0])
        elif op == "nc":
            self.files[args[0]] = res
        elif op == "nw":
            self.files[args[0]] = max(self.files[args[0]], args[1] + res)
        elif op in ("cs", "ct"):
            self.files[args[1]] = res
            if not args[0].startswith(cl.NS_ROOT + "/") and op == "cs":
                self.fresh.add(args[1])
            elif op == "cs":
                self.copied = args[0]
        elif op == "cb":
            self.files[args[1]] = max(self.files[args[1]], args[3] + res)

    def run(self):
        try:
            while not self.stop.is_set():
                op, args = self.pick()
                k = self.seq
                self.log(f"I {k} {time.monotonic_ns()} {op} " + " ".join(map(str, args)))
                try:
                    res = self.do(k, op, args)
                except OSError as e:
                    self.log(f"E {k} {time.monotonic_ns()} {e.errno}")
                    return
                self.log(f"D {k} {time.monotonic_ns()} {res}")
                self.note(op, args, res)
                self.seq += 1
                time.sleep(self.rng.uniform(0.002, 0.02))
        finally:
            os.close(self.jfd)


# ---- the oracle -----------------------------------------------------------

def read_ns_journal(path):
    """The namespace ops in order; res: the result of one that returned, err: errno of one
    that failed (both None: in flight)."""
    ops = []
    for f in cl.journal_lines(path):
        if len(f) < 4 or f[0] not in "IDE" or (f[0] != "I" and (not ops or int(f[1]) != ops[-1].k)):
            continue
        if f[0] == "I":
            args = [int(x) if x.isdigit() else x for x in f[4:]]
            ops.append(cl.Op(int(f[1]), f[3], args, int(f[2])))
        elif f[0] == "D":
            ops[-1].t_done, ops[-1].res = int(f[2]), int(f[3])
        else:
            ops[-1].t_done, ops[-1].err = int(f[2]), int(f[3])
    return ops


def patch(old, off, data):
    """old with data at off (zeros between its end and off)."""
    if off > len(old):
        old += bytes(off - len(old))
    return old[:off] + data + old[off + len(data):]


class NameModel:
    """The tree under MNT/ns as of some prefix of the namespace ops: its directories, and
    each file's bytes (or a Capture, for a copy of a disk being written, until a read
    resolved it)."""

    def __init__(self, dirs, files, tmpl, seq):
        self.dirs, self.files, self.tmpl, self.seq = dirs, files, tmpl, seq

    @classmethod
    def fresh(cls, tmpl_dir):
        return cls({cl.NS_ROOT}, {}, open(os.path.join(tmpl_dir, NS_TEMPLATE), "rb").read(), 1)

    def copy(self):
        return NameModel(set(self.dirs), dict(self.files), self.tmpl, self.seq)

    def bytes_of(self, p):
        return self.tmpl if p.startswith(".templates/") else self.files[p]

    def outcomes(self, o):
        """The states o may leave, one per step that may have taken effect, whole last."""
        a, res = o.args, o.res
        m = self.copy()
        if o.op == "nm":
            m.dirs.add(a[0])
        elif o.op in ("nr", "nR"):
            src, dst = a
            for p in [p for p in m.files if p == src or under(p, src)]:
                m.files[dst + p[len(src):]] = m.files.pop(p)
            m.dirs = {dst + d[len(src):] if d == src or under(d, src) else d for d in m.dirs}
        elif o.op == "nu":
            m.files.pop(a[0], None)
        elif o.op == "nd":
            m.dirs.discard(a[0])
        elif o.op == "nc":
            # created, still empty; grown by the write but not written (diskio.c: a write
            # past the end logs the size change first); written
            n = a[1] if res is None else res
            empty, grown = m.copy(), m.copy()
            empty.files[a[0]] = b""
            grown.files[a[0]] = bytes(n)
            m.files[a[0]] = cl.write_content(NS_ID, o.k, 0, n)
            return [empty, grown, m]
        elif o.op == "nw":
            n = a[2] if res is None else res
            old = m.files[a[0]]
            m.files[a[0]] = patch(old, a[1], cl.write_content(NS_ID, o.k, a[1], n))
            if a[1] + n > len(old):
                grown = self.copy()
                grown.files[a[0]] = old + bytes(a[1] + n - len(old))
                return [grown, m]
        elif o.op in ("cs", "ct"):
            empty = m.copy()
            empty.files[a[1]] = b""
            if a[0].startswith((cl.NS_ROOT + "/", ".templates/")):
                data = m.bytes_of(a[0])
                m.files[a[1]] = data if res is None else data[:res]
            else:
                cap = cl.Capture(cl.live_disk_id(a[0]), o.t_issue, o.t_done if res is not None else None,
                                 prefix=True)
                cap.size = res
                m.files[a[1]] = cap
            return [empty, m]
        elif o.op == "cb":
            src, dst, off_in, off_out, n = a
            n = n if res is None else res
            old = m.files[dst]
            data = m.bytes_of(src)[off_in:off_in + n]
            m.files[dst] = patch(old, off_out, data)
            if off_out + len(data) > len(old):
                grown = self.copy()
                grown.files[dst] = old + bytes(off_out + len(data) - len(old))
                return [grown, m]
        return [m]

    def state_file(self, path, mnt, live_disks, templates=True, hold=False):
        """What NameLoad needs besides the tree it walks (templates: may it read
        .templates/; hold: keep one open and read it after each op)."""
        with open(path, "w") as f:
            json.dump({"mnt": mnt, "seq": self.seq, "live": live_disks, "templates": templates,
                       "hold": hold}, f)


def bounds(ops):
    """[lo, hi]: the ops that returned, the ops issued (a failed op: in flight)."""
    lo = 0
    while lo < len(ops) and ops[lo].res is not None:
        lo += 1
    return lo, len(ops)


def name_verify(mnt, start, ops, starts, dops):
    """Find a state after j ops, j in bounds(ops), or a step of the op in flight, that the
    tree under MNT/ns is.  Returns (that state, with copies resolved to their bytes, []),
    or (the state the tree holds, lines saying what differs)."""
    lo, hi = bounds(ops)
    dirs, sizes = walk(mnt)
    listed = {d["name"] for d in json.loads(cl.run(cl.CTL, "-m", mnt, "list", "--json").stdout)
              if d["name"].startswith(cl.NS_ROOT + "/")}
    data = {p: cl.read_disk(os.path.join(mnt, p)) for p in sizes}
    seen = NameModel(dirs, dict(data), start.tmpl, ops[-1].k + 1 if ops else start.seq)
    out = []
    if listed != set(data):     # a failure whatever the ops say
        out.append(f"  hcowctl list shows {sorted(listed - set(data))} that readdir does not, "
                   f"misses {sorted(set(data) - listed)}")
    m = start.copy()
    for o in ops[:lo]:
        m = m.outcomes(o)[-1]
    cands = [(lo, m)]
    for j in range(lo, hi):
        outs = m.outcomes(ops[j])
        cands += [(j + 1, c) for c in outs]
        m = outs[-1]
    for j, c in cands:
        if c.dirs != dirs or set(c.files) != set(data):
            continue
        bad = []
        for p, exp in c.files.items():
            if isinstance(exp, cl.Capture):
                if (exp.size is not None and exp.size != len(data[p])) or \
                        not exp.check(data[p], starts, dops):
                    bad.append(p)
            elif exp != data[p]:
                bad.append(p)
        if not bad and listed == set(data):
            return seen, []
        out.append(f"  after {j} namespace ops, these differ: {sorted(bad)}")
        for p in sorted(bad)[:4]:
            exp = c.files[p]
            if isinstance(exp, cl.Capture):
                out.append(f"    {p}: ({len(data[p])} bytes) no moment of disk {exp.disk} between "
                           f"t={exp.t0} and t={exp.t1} reads like it" +
                           (f" (the copy returned {exp.size})" if exp.size is not None else ""))
                continue
            diff = [q for q in range(0, min(len(exp), len(data[p])), cl.CELL)
                    if exp[q:q + cl.CELL] != data[p][q:q + cl.CELL]]
            out.append(f"    {p}: size {len(data[p])} (expected {len(exp)}), {len(diff)} cells differ"
                       + (f", first at {diff[0]}: holds {cl.decode(data[p][diff[0]:diff[0] + cl.CELL])},"
                          f" expected {cl.decode(exp[diff[0]:diff[0] + cl.CELL])}" if diff else ""))
    if not any(c.dirs == dirs and set(c.files) == set(data) for _, c in cands):
        c = cands[0][1]
        out.append(f"  no state after {lo}..{hi} namespace ops has the tree's names")
        out.append(f"    after {lo}: missing {sorted((c.dirs - dirs) | (set(c.files) - set(data)))}; "
                   f"extra {sorted((dirs - c.dirs) | (set(data) - set(c.files)))}")
    for o in ops[max(0, lo - 4):hi]:
        state = f"returned {o.res}" if o.res is not None else f"errno {o.err}" if o.err else "in flight"
        out.append(f"  namespace op {o.k}: {o.op} {' '.join(map(str, o.args))} ({state})")
    return seen, out


def failed_live(ops):
    """Lines for an op that failed while the mount was alive (not killed under it)."""
    return [f"  namespace op {o.k}: {o.op} {' '.join(map(str, o.args))} failed: "
            f"{errno.errorcode.get(o.err, o.err)}" for o in ops if o.err is not None and o.err not in DEAD]
