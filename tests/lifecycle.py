# Helpers of tests/t-lifecycle.sh: writes mirrored into a reference file,
# and a chain of clones checked against a model of its bytes.
#
#   write DISK REF OFF LEN SEED       LEN pseudo-random bytes at OFF into DISK
#                                     and REF ('-': none), then fsync
#   scatter DISK REF COUNT SEED       COUNT 4 KiB writes at random 4 KiB
#                                     offsets inside DISK's size, mirrored
#   chain HCOWCTL MNT FIRST COUNT     COUNT clones, each of the one before
#                                     (FIRST is an existing disk), clone i
#                                     written 4 KiB of byte i at offset i * 4 KiB;
#                                     the last must read as FIRST plus every
#                                     write, each clone as FIRST plus its own
#                                     and its ancestors' writes
import os
import random
import subprocess
import sys

BLOCK = 4096


def open_pair(disk, ref):
    fds = [os.open(disk, os.O_RDWR)]
    if ref != "-":
        fds.append(os.open(ref, os.O_RDWR))
    return fds


def pwrite_all(fds, data, off):
    for fd in fds:
        assert os.pwrite(fd, data, off) == len(data)


def close_synced(fds):
    for fd in fds:
        os.fsync(fd)
        os.close(fd)


def write(disk, ref, off, length, seed):
    fds = open_pair(disk, ref)
    pwrite_all(fds, random.Random(seed).randbytes(int(length)), int(off))
    close_synced(fds)


def scatter(disk, ref, count, seed):
    r = random.Random(seed)
    fds = open_pair(disk, ref)
    blocks = os.fstat(fds[0]).st_size // BLOCK
    for _ in range(int(count)):
        pwrite_all(fds, r.randbytes(BLOCK), r.randrange(blocks) * BLOCK)
    close_synced(fds)


def chain(hcowctl, mnt, first, count):
    with open(os.path.join(mnt, first), "rb") as f:
        model = bytearray(f.read())
    names = [first]
    for i in range(1, int(count) + 1):
        name = "chain%d.img" % i
        subprocess.run([hcowctl, "-m", mnt, "clone", names[-1], name], check=True,
                       stdout=subprocess.DEVNULL)
        write(os.path.join(mnt, name), "-", i * BLOCK, BLOCK, i)
        model[i * BLOCK:(i + 1) * BLOCK] = random.Random(i).randbytes(BLOCK)
        names.append(name)
    with open(os.path.join(mnt, names[-1]), "rb") as f:
        got = f.read()
    if got != bytes(model):
        bad = [i for i in range(len(model) // BLOCK)
               if got[i * BLOCK:(i + 1) * BLOCK] != model[i * BLOCK:(i + 1) * BLOCK]]
        sys.exit("%s: %d blocks differ from the model, first %s" % (names[-1], len(bad), bad[:8]))
    # a clone in the middle holds its ancestors' writes, not its descendants'
    mid = int(count) // 2
    with open(os.path.join(mnt, names[mid]), "rb") as f:
        got = f.read()
    want = bytearray(model)
    with open(os.path.join(mnt, first), "rb") as f:
        base = f.read()
    for i in range(mid + 1, int(count) + 1):
        want[i * BLOCK:(i + 1) * BLOCK] = base[i * BLOCK:(i + 1) * BLOCK]
    if got != bytes(want):
        sys.exit("%s sees writes of its descendants or lost its ancestors'" % names[mid])


if __name__ == "__main__":
    {"write": write, "scatter": scatter, "chain": chain}[sys.argv[1]](*sys.argv[2:])
