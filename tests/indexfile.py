#!/usr/bin/env python3
"""indexfile: read and change an hcowfs index file, for tests that damage it.

  indexfile.py FILE pages
      print the high-water mark of pages in use (the newest valid meta page's)
  indexfile.py FILE extents TREE
      print "loff len laddr" for each extent of tree TREE (a disk id), in order
  indexfile.py FILE change TREE LOFF FIELD EXPR [--no-reseal]
      set FIELD (loff, len or laddr) of the leaf extent of tree TREE that starts
      at LOFF to EXPR, a Python expression over loff, len and laddr (modulo
      2^64), and recompute the page's crc32c (unless --no-reseal): a change
      the page's checksum cannot see

The format is fs/store/index_int.h's (version 1): pages of 4096 bytes; pages
0 and 1 are meta pages (the valid one with the higher generation wins); node
pages start with {crc u32, type u16, level u16, count u32, pad u32, next u64};
then a leaf holds three arrays of 169 u64 (loff, len, laddr), an inner node
two arrays of 254 (key, page), a table page {id, root, height, extents,
log_bytes} entries.  crc32c covers bytes 4..4095.  Little-endian throughout.
"""
import struct
import sys

PAGE = 4096
LEAF_CAP, INNER_CAP = 169, 254
IX_MAGIC = 0x31584449574F4348
LEAF, INNER, TABLE = 1, 2, 3

_T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = _T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class Index:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = bytearray(f.read())
        best = None
        for slot in (0, 1):
            p = self.page(slot)
            crc, version, magic = struct.unpack_from("<IIQ", p, 0)
            if magic != IX_MAGIC or crc != crc32c(p[4:]):
                continue
            gen, laddr, seq, table, trees, pages = struct.unpack_from("<6Q", p, 32)
            if best is None or gen > best[0]:
                best = (gen, table, pages)
        if best is None:
            sys.exit(f"indexfile: {path}: no valid meta page")
        self.table, self.pages = best[1], best[2]

    def page(self, n):
        return self.data[n * PAGE:(n + 1) * PAGE]

    def node(self, n):
        crc, typ, level, count, _pad, nxt = struct.unpack_from("<IHHIIQ", self.data, n * PAGE)
        return typ, level, count, nxt

    def root(self, tree):
        pg = self.table
        while pg:
            typ, _, count, nxt = self.node(pg)
            for i in range(count):
                tid, root, height, _, _ = struct.unpack_from("<5Q", self.data, pg * PAGE + 24 + 40 * i)
                if tid == tree:
                    return root, height
            pg = nxt
        sys.exit(f"indexfile: no tree {tree}")

    def leaves(self, pg):
        typ, level, count, _ = self.node(pg)
        if typ == LEAF:
            yield pg
            return
        for i in range(count):
            child, = struct.unpack_from("<Q", self.data, pg * PAGE + 24 + 8 * (INNER_CAP + i))
            yield from self.leaves(child)

    def extents(self, tree):
        root, height = self.root(tree)
        if not height:
            return
        for pg in self.leaves(root):
            _, _, count, _ = self.node(pg)
            for i in range(count):
                yield pg, i, tuple(struct.unpack_from("<Q", self.data, self.field(pg, i, k))[0]
                                   for k in range(3))

    def field(self, pg, i, k):
        """The byte offset of field k (0 loff, 1 len, 2 laddr) of extent i of leaf pg."""
        return pg * PAGE + 24 + 8 * (k * LEAF_CAP + i)

    def reseal(self, pg):
        struct.pack_into("<I", self.data, pg * PAGE, crc32c(self.data[pg * PAGE + 4:(pg + 1) * PAGE]))

    def save(self):
        with open(self.path, "r+b") as f:
            f.write(self.data)


def main():
    a = sys.argv[1:]
    if len(a) == 2 and a[1] == "pages":
        print(Index(a[0]).pages)
    elif len(a) >= 3 and a[1] == "extents":
        for _, _, e in Index(a[0]).extents(int(a[2])):
            print(*e)
    elif len(a) >= 6 and a[1] == "change":
        ix, tree, loff, field, expr = Index(a[0]), int(a[2]), int(a[3]), a[4], a[5]
        names = ("loff", "len", "laddr")
        for pg, i, e in ix.extents(tree):
            if e[0] == loff:
                v = dict(zip(names, e))
                v[field] = eval(expr, {}, dict(v)) % 2**64
                for k, n in enumerate(names):
                    struct.pack_into("<Q", ix.data, ix.field(pg, i, k), v[n])
                if "--no-reseal" not in a:
                    ix.reseal(pg)
                ix.save()
                return
        sys.exit(f"indexfile: tree {tree} has no extent at {loff}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
