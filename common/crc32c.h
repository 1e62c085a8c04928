/*
 * crc32c: the Castagnoli CRC that protects log records and segment headers.
 * Uses the SSE4.2 instruction when the CPU has it, a table otherwise; both
 * give the same values (tests/check_logrec.c holds the standard check value).
 */
#ifndef HCOWFS_CRC32C_H
#define HCOWFS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(0, buf, len) is the CRC of buf. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * The CRC of one 4096-byte block, crc32c(0, block, 4096), about twice as
 * fast with SSE4.2 (three streams at once): for checking a log block.
 */
uint32_t crc32c_4k(const void *block);

#endif
