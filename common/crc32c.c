/*
 * crc32c: see crc32c.h.  Slice-by-8 tables in software; the hardware path is
 * chosen once, at first use.  crc32c_4k() runs three streams at once and
 * joins them with the table crc32c_zeros (see there).
 */
#include <pthread.h>
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY 0x82f63b78u	/* reversed Castagnoli polynomial */

static uint32_t crc32c_table[8][256];
static int crc32c_have_hw;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t len);
static void crc32c_zeros_setup(void);

static void
crc32c_setup(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc32c_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^
			    crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc32c_have_hw = __builtin_cpu_supports("sse4.2");
#endif
	crc32c_zeros_setup();
}

static uint32_t
crc32c_sw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		v ^= crc;
		crc = crc32c_table[7][v & 0xff] ^
		    crc32c_table[6][(v >> 8) & 0xff] ^
		    crc32c_table[5][(v >> 16) & 0xff] ^
		    crc32c_table[4][(v >> 24) & 0xff] ^
		    crc32c_table[3][(v >> 32) & 0xff] ^
		    crc32c_table[2][(v >> 40) & 0xff] ^
		    crc32c_table[1][(v >> 48) & 0xff] ^
		    crc32c_table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t
crc32c_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;

	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t
crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc32c_once, crc32c_setup);
	crc = ~crc;
#if defined(__x86_64__)
	if (crc32c_have_hw)
		return ~crc32c_hw(crc, buf, len);
#endif
	return ~crc32c_sw(crc, buf, len);
}

/*
 * crc32c_4k: one 4 KiB block in three interleaved streams.
 *
 * The crc32 instruction takes 3 cycles but can start one every cycle, so a
 * single dependent stream uses a third of it.  The block is cut into three
 * parts of X3_PART bytes (and a 16-byte tail); the three parts run at once,
 * the first from the usual initial value, the others from 0, and are then
 * joined.  A CRC register is linear: the register after A|B is the register
 * after A followed by |B| zero bytes, xor the register after B from 0.
 * "Followed by X3_PART zero bytes" is a fixed linear map of the 32-bit
 * register, kept as four 256-entry tables (one per register byte), so a join
 * is four lookups.
 */
#define X3_PART		1360u		/* 170 words; 3 x 1360 + 16 = 4096 */
#define X3_TAIL		(4096u - 3 * X3_PART)

static uint32_t crc32c_zeros[4][256];	/* byte k of a register -> after X3_PART zeros */

/* The register r after X3_PART zero bytes. */
static inline uint32_t
crc32c_shift(uint32_t r)
{
	return crc32c_zeros[0][r & 0xff] ^ crc32c_zeros[1][(r >> 8) & 0xff] ^
	    crc32c_zeros[2][(r >> 16) & 0xff] ^ crc32c_zeros[3][r >> 24];
}

static void
crc32c_zeros_setup(void)
{
	static const unsigned char zeros[X3_PART];
	uint32_t bit[32];

	/* the map is linear: its value on each single-bit register builds every entry */
	for (int i = 0; i < 32; i++)
		bit[i] = crc32c_sw(UINT32_C(1) << i, zeros, sizeof(zeros));
	for (int k = 0; k < 4; k++)
		for (uint32_t b = 0; b < 256; b++) {
			uint32_t r = 0;
			for (int i = 0; i < 8; i++)
				if (b & (1u << i))
					r ^= bit[8 * k + i];
			crc32c_zeros[k][b] = r;
		}
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t
crc32c_4k_hw(const unsigned char *p)
{
	uint64_t a = 0xffffffffu, b = 0, c = 0, v;

	for (unsigned i = 0; i < X3_PART; i += 8) {
		uint64_t va, vb, vc;
		memcpy(&va, p + i, 8);
		memcpy(&vb, p + X3_PART + i, 8);
		memcpy(&vc, p + 2 * X3_PART + i, 8);
		a = __builtin_ia32_crc32di(a, va);
		b = __builtin_ia32_crc32di(b, vb);
		c = __builtin_ia32_crc32di(c, vc);
	}
	a = crc32c_shift((uint32_t)a) ^ (uint32_t)b;
	a = crc32c_shift((uint32_t)a) ^ (uint32_t)c;
	for (unsigned i = 3 * X3_PART; i < 4096; i += 8) {
		memcpy(&v, p + i, 8);
		a = __builtin_ia32_crc32di(a, v);
	}
	return ~(uint32_t)a;
}
#endif

_Static_assert(X3_PART % 8 == 0 && X3_TAIL % 8 == 0, "crc32c_4k works in 8-byte words");

uint32_t
crc32c_4k(const void *block)
{
	pthread_once(&crc32c_once, crc32c_setup);
#if defined(__x86_64__)
	if (crc32c_have_hw)
		return crc32c_4k_hw(block);
#endif
	return crc32c(0, block, 4096);
}
