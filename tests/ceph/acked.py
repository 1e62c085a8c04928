#!/usr/bin/env python3
"""acked: a writer that logs what the file system acknowledged, and its check.

  acked.py write FILE LOG FIRST   4 KiB blocks FIRST, FIRST+1, ... of FILE, each
                                  written (O_DIRECT) and fsync'ed; "I MS" goes to
                                  LOG once block I's fsync returned (MS: the
                                  longest a write+fsync took so far).  At an
                                  error it logs "error ERRNO" and stops; SIGTERM
                                  stops it between two blocks.
  acked.py check FILE LOG         every block LOG names holds what was written;
                                  prints "BLOCKS BAD LONGEST_MS", exit 1 if BAD.
"""
import mmap
import os
import signal
import sys
import time


def block(i):
    return (b"%08d" % i) * 512


def write(path, log, first):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    fd = os.open(path, os.O_RDWR | os.O_DIRECT)
    out = open(log, "a", buffering=1)
    buf = mmap.mmap(-1, 4096)
    longest = 0
    i = first
    while not stop:
        buf[:] = block(i)
        t = time.monotonic()
        try:
            os.pwrite(fd, buf, i * 4096)
            os.fsync(fd)
        except OSError as e:
            out.write("error %d\n" % e.errno)
            return 1
        longest = max(longest, int((time.monotonic() - t) * 1000))
        out.write("%d %d\n" % (i, longest))
        i += 1
    return 0


def check(path, log):
    fd = os.open(path, os.O_RDONLY)
    n = bad = longest = 0
    for line in open(log):
        f = line.split()
        if f[0] == "error":
            continue
        i = int(f[0])
        n += 1
        longest = max(longest, int(f[1]))
        if os.pread(fd, 4096, i * 4096) != block(i):
            bad += 1
    print(n, bad, longest)
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "write":
        sys.exit(write(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    sys.exit(check(sys.argv[2], sys.argv[3]))
