#!/usr/bin/env python3
"""Attribute the modelled disk's traffic to what it belongs to.

usage: attribute.py TRACE LOOPDEV DATADIR MOUNTPOINT

TRACE is hddsim's trace (one line per request: "us dev op offset length
seek_us rot_us xfer_us"; "us mark NAME" starts a phase).  Offsets on the
disk are offsets in the ext4 volume on LOOPDEV, so each HDD byte is mapped
through the volume's extents, as they are when this runs:
  log      the segment files DATADIR/log/*.seg* (appends, and the cleaner's
           copies, which are appends too: mark a cleaner phase to split them)
  catalog  DATADIR/catalog.db* (the database, -wal, -shm, .new)
  datadir  any other file of DATADIR
  journal  the ext4 journal (inode 8)
  other    everything else: ext4 metadata, other files, blocks of files
           deleted since they were written
Prints key=value lines: attr.PHASE.CATEGORY.{writes,write_bytes,reads,
read_bytes} and attr.PHASE.flushes, PHASE being "all" before the first mark.
"""
import bisect
import os
import re
import subprocess
import sys

BLOCK = 4096


def file_extents(path):
    """(start byte, end byte) physical ranges of path, from filefrag."""
    out = subprocess.run(["filefrag", "-e", "-b%d" % BLOCK, path], capture_output=True,
                         text=True).stdout
    ranges = []
    for m in re.finditer(r"^\s*\d+:\s*\d+\.\.\s*\d+:\s*(\d+)\.\.\s*(\d+):", out, re.M):
        ranges.append((int(m.group(1)) * BLOCK, (int(m.group(2)) + 1) * BLOCK))
    return ranges


def journal_extents(loopdev):
    out = subprocess.run(["debugfs", "-R", "stat <8>", loopdev], capture_output=True,
                         text=True).stdout
    ranges = []
    for m in re.finditer(r"\(\d+(?:-\d+)?\):(\d+)(?:-(\d+))?", out):
        a = int(m.group(1))
        b = int(m.group(2) or a)
        ranges.append((a * BLOCK, (b + 1) * BLOCK))
    return ranges


def category(rel):
    if rel.startswith("log/") and ".seg" in rel:
        return "log"
    if os.path.basename(rel).startswith("catalog.db"):
        return "catalog"
    return "datadir"


def build_map(loopdev, datadir):
    spans = [(a, b, "journal") for a, b in journal_extents(loopdev)]
    for root, _, files in os.walk(datadir):
        for f in files:
            p = os.path.join(root, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            cat = category(os.path.relpath(p, datadir))
            spans += [(a, b, cat) for a, b in file_extents(p)]
    spans.sort()
    return spans


def attribute(trace, spans):
    starts = [s[0] for s in spans]
    res = {}
    phase = "all"

    def add(cat, key, n):
        d = res.setdefault(phase, {}).setdefault(cat, {})
        d[key] = d.get(key, 0) + n

    with open(trace) as f:
        for line in f:
            w = line.split()
            if len(w) >= 3 and w[1] == "mark":
                phase = w[2]
                res.setdefault(phase, {})
                continue
            if len(w) < 5 or w[1] != "hdd":
                continue
            op, off, length = w[2], int(w[3]), int(w[4])
            if op == "F":
                add("_", "flushes", 1)
                continue
            kind = "write" if op == "W" else "read"
            cats = set()
            pos, end = off, off + length
            i = max(bisect.bisect_right(starts, pos) - 1, 0)
            while pos < end:
                while i < len(spans) and spans[i][1] <= pos:
                    i += 1
                if i < len(spans) and spans[i][0] <= pos:
                    stop = min(end, spans[i][1])
                    cat = spans[i][2]
                else:
                    stop = min(end, spans[i][0]) if i < len(spans) else end
                    cat = "other"
                add(cat, kind + "_bytes", stop - pos)
                cats.add(cat)
                pos = stop
            for cat in cats:
                add(cat, kind + "s", 1)
    return res


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    trace, loopdev, datadir, _mnt = sys.argv[1:]
    res = attribute(trace, build_map(loopdev, datadir))
    for phase in res:
        if phase == "attribute":
            continue
        for cat in ("log", "catalog", "datadir", "journal", "other"):
            d = res[phase].get(cat, {})
            for key in ("writes", "write_bytes", "reads", "read_bytes"):
                print("attr.%s.%s.%s=%d" % (phase, cat, key, d.get(key, 0)))
        print("attr.%s.flushes=%d" % (phase, res[phase].get("_", {}).get("flushes", 0)))


if __name__ == "__main__":
    main()
