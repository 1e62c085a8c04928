/*
 * sha256: the SHA-256 digest (FIPS 180-4), for content hashes that name
 * things: a template in a pool is identified by the SHA-256 of its bytes,
 * computed as it goes in, and its cached copy on a host is named by it.
 * Not for the hot path (crc32c covers the reads); no library needed.
 */
#ifndef HCOWFS_SHA256_H
#define HCOWFS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN	32
#define SHA256_HEX_LEN	(2 * SHA256_LEN)

struct sha256 {
	uint32_t	h[8];
	uint64_t	bytes;		/* hashed so far */
	unsigned char	block[64];	/* the partial block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *p, size_t len);
/* The digest as SHA256_HEX_LEN lowercase hex digits and a NUL, into hex. */
void sha256_final_hex(struct sha256 *s, char hex[SHA256_HEX_LEN + 1]);

#endif
