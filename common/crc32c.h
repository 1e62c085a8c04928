/*
 * crc32c: the Castagnoli CRC that protects log records and segment headers.
 * Uses carry-less multiplication (AVX-512 VPCLMULQDQ) and the SSE4.2 crc32
 * instruction when the CPU has them, a table otherwise; all give the same
 * values (tests/check_common.c checks each against a bitwise reference).
 */
#ifndef HCOWFS_CRC32C_H
#define HCOWFS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continue a CRC: crc32c(0, buf, len) is the CRC of buf.  With the SSE4.2
 * instruction, from 4080 bytes on it runs three streams side by side (a
 * 4 KiB block costs about a third of one stream's time).
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * The crc of each `block`-byte piece of buf: out[i] = crc32c(0, buf + i *
 * block, that piece's length); the last piece may be short.  out holds
 * ceil(len / block) entries.  Same values as crc32c(); with the SSE4.2
 * instruction three pieces at a time go side by side, whatever their size.
 */
void crc32c_blocks(const void *buf, size_t len, size_t block, uint32_t *out);

/*
 * Implementations, best last; all give the same values.  crc32c_limit()
 * keeps the code from using better than impl (for tests, which check each
 * one the CPU has) and returns the one now in use.
 */
enum {
	CRC32C_IMPL_TABLE = 0,		/* slice-by-8 tables */
	CRC32C_IMPL_CRC32 = 1,		/* the SSE4.2 crc32 instruction, three streams */
	CRC32C_IMPL_VPCLMUL = 2,	/* + folding with AVX-512 VPCLMULQDQ, 256 bytes a step */
};
int crc32c_limit(int impl);

#endif
