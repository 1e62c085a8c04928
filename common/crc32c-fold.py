#!/usr/bin/env python3
"""crc32c-fold.py: derive the folding constants of common/crc32c.c and check the method.

crc32c_vpclmul() folds 128-bit pieces of the message forward with carry-less
multiplications by x^(D+63) mod G and x^(D-1) mod G (bit-reflected, in the
high half of a quadword).  This script computes those constants for every
distance the C code uses, runs the same folding in Python (4 registers of 4
lanes, 256 bytes a step, then into the last 16 bytes, whose crc the crc32
instruction's arithmetic finishes) on random messages, and compares it with
the bitwise CRC-32C.  Prints the constants; exits 1 on a mismatch.
"""
import os
import sys

G = 0x11EDC6F41  # Castagnoli, degree 32, normal bit order
REFLECTED = 0x82F63B78
MASK64 = (1 << 64) - 1


def xpow_mod(n):
    """x^n mod G, normal bit order."""
    r = 1
    for _ in range(n):
        r <<= 1
        if r >> 32 & 1:
            r ^= G
    return r


def reflect(v, width):
    return int(format(v, f"0{width}b")[::-1], 2)


def clmul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        b >>= 1
    return r


def crc_bits(crc, data):
    """The crc32 instruction's arithmetic: no inversions."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (REFLECTED if crc & 1 else 0)
    return crc


def crc32c(data, crc=0):
    return crc_bits(crc ^ 0xFFFFFFFF, data) ^ 0xFFFFFFFF


def constants(d):
    """(for the first 8 bytes H, for the last 8 bytes L) of folding over d bits."""
    return reflect(xpow_mod(d + 63), 32) << 32, reflect(xpow_mod(d - 1), 32) << 32


def fold(x, d):
    h, l = constants(d)
    return clmul(x & MASK64, h) ^ clmul(x >> 64, l)


def crc32c_folded(data, crc=0):
    assert len(data) % 256 == 0 and len(data) >= 256
    lanes = [int.from_bytes(data[16 * i:16 * i + 16], "little") for i in range(16)]
    lanes[0] ^= crc ^ 0xFFFFFFFF
    for pos in range(256, len(data), 256):
        lanes = [fold(lanes[i], 2048) ^ int.from_bytes(data[pos + 16 * i:pos + 16 * i + 16], "little")
                 for i in range(16)]
    # registers 0-2 into register 3 (1536, 1024, 512 bits), then its lanes into the last
    last = lanes[15]
    for i in range(15):
        last ^= fold(lanes[i], (15 - i) * 128)
    return crc_bits(0, last.to_bytes(16, "little")) ^ 0xFFFFFFFF


def main():
    for d in (2048, 1536, 1024, 512, 384, 256, 128):
        h, l = constants(d)
        print(f"FOLD_H_{d} 0x{h:016x}  FOLD_L_{d} 0x{l:016x}")
    bad = 0
    for n in (256, 512, 768, 4096, 8192):
        for seed in (0, 0x12345678, 0xFFFFFFFF):
            data = os.urandom(n)
            if crc32c_folded(data, seed) != crc32c(data, seed):
                print(f"MISMATCH: {n} bytes, crc {seed:#x}")
                bad = 1
    print("folding matches the bitwise CRC-32C" if not bad else "folding is WRONG")
    return bad


if __name__ == "__main__":
    sys.exit(main())
