#!/usr/bin/env python3
"""Deterministic byte patterns for the integration tests.

  pattern.py fill FILE --size N --seed S
      write N pseudo-random bytes (a template)
  pattern.py mirror DISK REF --seed S --ops N [--max-len L] [--fsync] [--zero-prob P]
      apply the same N random writes (unaligned offsets and lengths, some
      crossing the end of the template) to DISK and to the plain file REF
  pattern.py compare A B
      byte compare; also compares random preads; prints the first difference
  pattern.py copy SRC DST SRC_REF DST_REF --src-off A --dst-off B --len N
      copy_file_range N bytes of SRC at A to DST at B (again while it copies
      less), and the same bytes of the plain file SRC_REF to DST_REF with
      pread and pwrite: DST must then compare equal to DST_REF

Exit 0 on success, 1 with a message on a difference.
"""
import argparse
import os
import random
import sys


def rand_bytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def cmd_fill(a):
    rng = random.Random(a.seed)
    with open(a.file, "wb") as f:
        left = a.size
        while left:
            n = min(left, 1 << 20)
            f.write(rand_bytes(rng, n))
            left -= n


def cmd_mirror(a):
    rng = random.Random(a.seed)
    flags = os.O_RDWR
    d = os.open(a.disk, flags)
    r = os.open(a.ref, os.O_RDWR)
    size = os.fstat(d).st_size
    if os.fstat(r).st_size != size:
        sys.exit(f"size differs: {a.disk} {size}, {a.ref} {os.fstat(r).st_size}")
    for i in range(a.ops):
        n = rng.choice([1, 7, 511, 512, 4095, 4096, 4097, 65536, rng.randint(1, a.max_len)])
        off = rng.randrange(0, max(1, size - n))
        if rng.random() < 0.1:
            off = min(rng.randrange(0, size // 4096) * 4096, size - n)  # aligned too
        data = bytes(n) if rng.random() < a.zero_prob else rand_bytes(rng, n)
        for fd in (d, r):
            if os.pwrite(fd, data, off) != n:
                sys.exit(f"short write at {off}+{n}")
        if a.fsync and rng.random() < 0.05:
            os.fsync(d)
    if a.fsync:
        os.fsync(d)
    os.close(d)
    os.close(r)


def cmd_compare(a):
    with open(a.a, "rb") as fa, open(a.b, "rb") as fb:
        sa, sb = os.fstat(fa.fileno()).st_size, os.fstat(fb.fileno()).st_size
        if sa != sb:
            sys.exit(f"sizes differ: {a.a} {sa}, {a.b} {sb}")
        off = 0
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                for i, (p, q) in enumerate(zip(x, y)):
                    if p != q:
                        sys.exit(f"differ at byte {off + i}: {p} != {q}")
            if not x:
                break
            off += len(x)
        rng = random.Random(1)
        for _ in range(2000):
            n = rng.randint(1, 70000)
            o = rng.randrange(0, sa)
            if os.pread(fa.fileno(), n, o) != os.pread(fb.fileno(), n, o):
                sys.exit(f"pread differs at {o}+{n}")


def cmd_copy(a):
    src, dst = os.open(a.src, os.O_RDONLY), os.open(a.dst, os.O_RDWR)
    done = 0
    while done < a.len:
        n = os.copy_file_range(src, dst, a.len - done, a.src_off + done, a.dst_off + done)
        if n == 0:
            sys.exit(f"copy_file_range {a.src} -> {a.dst}: 0 bytes at {done} of {a.len}")
        done += n
    os.close(src)
    os.close(dst)
    with open(a.src_ref, "rb") as sr, open(a.dst_ref, "r+b") as dr:
        data = os.pread(sr.fileno(), a.len, a.src_off)
        if os.pwrite(dr.fileno(), data, a.dst_off) != len(data):
            sys.exit(f"short write to {a.dst_ref}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fill")
    f.add_argument("file")
    f.add_argument("--size", type=int, required=True)
    f.add_argument("--seed", required=True)
    m = sub.add_parser("mirror")
    m.add_argument("disk")
    m.add_argument("ref")
    m.add_argument("--seed", required=True)
    m.add_argument("--ops", type=int, default=500)
    m.add_argument("--max-len", type=int, default=200000)
    m.add_argument("--fsync", action="store_true")
    m.add_argument("--zero-prob", type=float, default=0.1)
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    y = sub.add_parser("copy")
    for arg in ("src", "dst", "src_ref", "dst_ref"):
        y.add_argument(arg)
    y.add_argument("--src-off", type=int, required=True)
    y.add_argument("--dst-off", type=int, required=True)
    y.add_argument("--len", type=int, required=True)
    a = p.parse_args()
    {"fill": cmd_fill, "mirror": cmd_mirror, "compare": cmd_compare, "copy": cmd_copy}[a.cmd](a)


if __name__ == "__main__":
    main()
