/*
 * check_wlog_append: what wlog_append() writes (fs/store/wlog.c, format in
 * fs/store/logfmt.h): every record type reads back with its header and crcs
 * as the format says, reopening replays exactly what was appended, sync and
 * bad lengths behave, and sums computed beforehand write the same record.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "wlog_fixture.h"

START_TEST(empty_log_replays_nothing_and_tail_is_first_laddr)
{
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct seg_header sh, z;
	struct wlog *w;

	ck_assert_int_eq(wlog_create(tdir, UUID_A), 0);
	ck_assert_int_eq(seg_size(1), (int64_t)SEGHDR);
	ck_assert_int_eq(wlog_first_laddr(), LADDR(1, SEGHDR));
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	memset(&rs, 0xa5, sizeof(rs));
	{
		char err[256];
		ck_assert_int_eq(log_replay(w, wlog_first_laddr(), 1, &c, &rs, err, sizeof(err)), 0);
	}
	ck_assert_int_eq(c.n, 0);
	ck_assert_uint_eq(rs.records, 0);
	ck_assert_uint_eq(rs.bytes, 0);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	ck_assert_uint_eq(wlog_tail(w), wlog_first_laddr());
	ck_assert_uint_eq(wlog_next_seq(w), 1);
	ck_assert_uint_eq(wlog_size(w), SEGHDR);

	/* the segment header as written by wlog_create */
	seg_pread(1, &sh, sizeof(sh), 0);
	ck_assert_mem_eq(sh.magic, SEG_MAGIC, 8);
	ck_assert_uint_eq(sh.version, LOG_FORMAT_VERSION);
	ck_assert_uint_eq(sh.header_size, 64);
	ck_assert_uint_eq(sh.segno, 1);
	ck_assert_mem_eq(sh.store_uuid, UUID_A, 16);
	z = sh;
	z.crc = 0;
	ck_assert_uint_eq(sh.crc, crc32c(0, &z, sizeof(z)));
	wlog_close(w);

	/* creating over an existing log is refused, the old one is left alone */
	ck_assert_int_eq(wlog_create(tdir, UUID_B), -EEXIST);
	seg_pread(1, &sh, sizeof(sh), 0);
	ck_assert_mem_eq(sh.store_uuid, UUID_A, 16);
	free(c.v);
}
END_TEST

START_TEST(append_each_record_type_reads_back_with_headers_and_crcs_on_disk)
{
	static unsigned char d1[5000], d4[1], got[5000];
	struct rec_header h[4], ondisk;
	uint64_t la[4], t0, pos[4];
	const char *why;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);

	fill(d1, sizeof(d1), 1);
	d4[0] = 0x5a;

	/* the address returned is the record's: where the tail was */
	t0 = wlog_tail(w);
	la[0] = append(w, REC_WRITE, 7, 12345, sizeof(d1), d1, &h[0]);
	ck_assert_uint_eq(la[0], t0);
	ck_assert_uint_eq(WREC_SIZE(sizeof(d1)), 64 + 2 * 4 + 5000);	/* blocks of 4096 + 904 */
	ck_assert_uint_eq(wlog_tail(w), t0 + WREC_SIZE(sizeof(d1)));
	ck_assert_uint_eq(wlog_next_seq(w), 2);

	t0 = wlog_tail(w);
	la[1] = append(w, REC_ZERO, 7, 100, UINT64_C(1) << 30, NULL, &h[1]);
	ck_assert_uint_eq(la[1], t0);
	ck_assert_uint_eq(wlog_tail(w), t0 + HDR);	/* no table, no data */

	t0 = wlog_tail(w);
	la[2] = append(w, REC_SIZE, 8, 999999, 0, NULL, &h[2]);
	ck_assert_uint_eq(la[2], t0);
	ck_assert_uint_eq(wlog_tail(w), t0 + HDR);

	t0 = wlog_tail(w);
	la[3] = append(w, REC_WRITE, 8, 0, 1, d4, &h[3]);
	ck_assert_uint_eq(la[3], t0);
	ck_assert_uint_eq(wlog_tail(w), t0 + HDR + 4 + 1);
	ck_assert_uint_eq(wlog_next_seq(w), 5);

	/* sequence numbers +1 per record, filled in the caller's header */
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(h[i].seq, (uint64_t)i + 1);
		ck_assert_uint_eq(h[i].magic, REC_MAGIC);
		ck_assert_uint_eq(LADDR_SEG(la[i]), 1);
		pos[i] = LADDR_OFF(la[i]);
	}

	/* data reads back from the returned address, named by disk and disk offset */
	ck_assert_int_eq(wlog_read(w, la[0], 7, 12345, got, sizeof(d1), &why), 0);
	assert_bytes_eq(got, d1, sizeof(d1), "record 1 data");
	ck_assert_int_eq(wlog_read(w, la[3], 8, 0, got, 1, &why), 0);
	ck_assert_uint_eq(got[0], 0x5a);
	ck_assert_int_eq(wlog_read(w, la[0], 7, 12345 + 4000, got, 1000, &why), 0);
	assert_bytes_eq(got, d1 + 4000, 1000, "record 1 data tail");
	/* no record there, or more than the record holds: -EBADMSG with a reason */
	why = NULL;
	ck_assert_int_eq(wlog_read(w, wlog_tail(w), 8, 0, got, 1, &why), -EBADMSG);
	ck_assert_ptr_nonnull(why);
	why = NULL;
	ck_assert_int_eq(wlog_read(w, la[3], 8, 0, got, 2, &why), -EBADMSG);
	ck_assert_ptr_nonnull(why);
	/* a segment that does not exist */
	why = NULL;
	ck_assert_int_eq(wlog_read(w, LADDR(2, SEGHDR), 8, 0, got, 1, &why), -EBADMSG);
	ck_assert_ptr_nonnull(why);

	/* the headers on disk: what the caller got back, with valid checksums */
	for (int i = 0; i < 4; i++) {
		seg_pread(1, &ondisk, sizeof(ondisk), pos[i]);
		ck_assert_mem_eq(&ondisk, &h[i], sizeof(ondisk));
		ck_assert_uint_eq(ondisk.magic, REC_MAGIC);
		ck_assert_uint_eq(ondisk.seq, (uint64_t)i + 1);
		ck_assert_uint_eq(ondisk.flags, 0);
		ck_assert_uint_eq(ondisk.hdr_crc, hdr_crc_of(&ondisk));
	}
	seg_pread(1, &ondisk, sizeof(ondisk), pos[0]);
	ck_assert_uint_eq(ondisk.type, REC_WRITE);
	ck_assert_uint_eq(ondisk.disk_id, 7);
	ck_assert_uint_eq(ondisk.offset, 12345);
	ck_assert_uint_eq(ondisk.length, sizeof(d1));
	/* data_crc == crc32c(table), table[i] == crc32c(block i), then the data */
	check_write_record_on_disk(1, pos[0], d1, sizeof(d1));
	{
		uint32_t table[2];
		seg_pread(1, table, sizeof(table), pos[0] + HDR);
		ck_assert_uint_eq(table[0], crc32c(0, d1, 4096));
		ck_assert_uint_eq(table[1], crc32c(0, d1 + 4096, 904));
		ck_assert_uint_eq(ondisk.data_crc, crc32c(0, table, sizeof(table)));
		seg_pread(1, got, sizeof(d1), pos[0] + HDR + sizeof(table));
		assert_bytes_eq(got, d1, sizeof(d1), "record 1 data on disk");
	}
	seg_pread(1, &ondisk, sizeof(ondisk), pos[1]);
	ck_assert_uint_eq(ondisk.type, REC_ZERO);
	ck_assert_uint_eq(ondisk.offset, 100);
	ck_assert_uint_eq(ondisk.length, UINT64_C(1) << 30);
	ck_assert_uint_eq(ondisk.data_crc, 0);
	seg_pread(1, &ondisk, sizeof(ondisk), pos[2]);
	ck_assert_uint_eq(ondisk.type, REC_SIZE);
	ck_assert_uint_eq(ondisk.disk_id, 8);
	ck_assert_uint_eq(ondisk.offset, 999999);
	ck_assert_uint_eq(ondisk.data_crc, 0);
	seg_pread(1, &ondisk, sizeof(ondisk), pos[3]);
	{
		uint32_t entry, want = crc32c(0, d4, 1);
		seg_pread(1, &entry, 4, pos[3] + HDR);
		ck_assert_uint_eq(entry, want);
		ck_assert_uint_eq(ondisk.data_crc, crc32c(0, &want, 4));
		seg_pread(1, got, 1, pos[3] + HDR + 4);
		ck_assert_uint_eq(got[0], 0x5a);
	}
	check_write_record_on_disk(1, pos[3], d4, 1);

	/* records are packed back to back; size accounting matches the file */
	ck_assert_uint_eq(pos[0], SEGHDR);
	ck_assert_uint_eq(pos[1], pos[0] + WREC_SIZE(sizeof(d1)));
	ck_assert_uint_eq(pos[2], pos[1] + HDR);
	ck_assert_uint_eq(pos[3], pos[2] + HDR);
	ck_assert_int_eq(seg_size(1), (int64_t)(pos[3] + WREC_SIZE(1)));
	ck_assert_uint_eq(wlog_size(w), (uint64_t)seg_size(1));

	/* logfmt.h's size helpers agree with the layout */
	ck_assert_uint_eq(rec_size(&h[0]), WREC_SIZE(sizeof(d1)));
	ck_assert_uint_eq(rec_data_start(&h[0]), HDR + 8);
	ck_assert_uint_eq(rec_blocks(sizeof(d1)), 2);
	ck_assert_uint_eq(rec_block_len(&h[0], 0), 4096);
	ck_assert_uint_eq(rec_block_len(&h[0], 1), 904);
	ck_assert_uint_eq(rec_size(&h[1]), HDR);
	ck_assert_uint_eq(rec_size(&h[2]), HDR);
	ck_assert_uint_eq(rec_size(&h[3]), HDR + 4 + 1);
	ck_assert_uint_eq(rec_data_start(&h[3]), HDR + 4);
	ck_assert_uint_eq(rec_blocks(4096), 1);
	ck_assert_uint_eq(rec_blocks(4097), 2);
	wlog_close(w);
}
END_TEST

START_TEST(reopen_replay_sees_exactly_the_appended_records_in_order)
{
	enum { N = 30 };
	struct seen want[N];
	static unsigned char data[N][9000];
	unsigned char got[9000];
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	uint64_t tail, bytes = 0;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	char err[256];

	for (int i = 0; i < N; i++) {
		uint16_t type = i % 3 == 0 ? REC_WRITE : i % 3 == 1 ? REC_ZERO : REC_SIZE;
		uint64_t len = type == REC_WRITE ? 1 + (uint64_t)(i * 331) % 9000 : (uint64_t)i * 4096;
		fill(data[i], sizeof(data[i]), (uint64_t)i);
		want[i].rec_laddr = append(w, type, (uint64_t)(i % 4) + 1, (uint64_t)i * 1000 + 3,
		    len, type == REC_WRITE ? data[i] : NULL, &want[i].h);
		bytes += type == REC_WRITE ? WREC_SIZE(len) : HDR;
	}
	tail = wlog_tail(w);
	wlog_close(w);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, N);
	ck_assert_uint_eq(rs.records, N);
	ck_assert_uint_eq(rs.bytes, bytes);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(memcmp(&c.v[i].h, &want[i].h, sizeof(struct rec_header)) == 0,
		    "record %d: header differs", i);
		ck_assert_uint_eq(c.v[i].rec_laddr, want[i].rec_laddr);
		ck_assert_uint_eq(c.v[i].h.seq, (uint64_t)i + 1);
		if (c.v[i].h.type == REC_WRITE) {
			const char *why;
			ck_assert_int_eq(wlog_read(w, c.v[i].rec_laddr, (uint64_t)(i % 4) + 1,
			    (uint64_t)i * 1000 + 3, got, c.v[i].h.length, &why), 0);
			assert_bytes_eq(got, data[i], c.v[i].h.length, "replayed record data");
		}
	}
	ck_assert_uint_eq(wlog_tail(w), tail);
	ck_assert_uint_eq(wlog_next_seq(w), N + 1);
	ck_assert_uint_eq(wlog_size(w), (uint64_t)seg_size(1));

	/* appends continue exactly at the replayed tail */
	{
		struct rec_header h;
		uint64_t la = append(w, REC_WRITE, 1, 0, 10, data[0], &h);
		ck_assert_uint_eq(la, tail);
		ck_assert_uint_eq(h.seq, N + 1);
	}
	wlog_close(w);

	/* replay can start in the middle, at a record boundary with its seq */
	w = log_open(WLOG_SEGMENT_SIZE_MIN);
	c.n = 0;
	ck_assert_int_eq(log_replay(w, want[17].rec_laddr, 18, &c, &rs, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n, N + 1 - 17);
	ck_assert_uint_eq(c.v[0].h.seq, 18);
	ck_assert_uint_eq(c.v[0].rec_laddr, want[17].rec_laddr);
	ck_assert_uint_eq(c.v[c.n - 1].h.seq, N + 1);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	log_close(w, &c);
}
END_TEST

START_TEST(sync_succeeds_and_bad_write_lengths_are_EINVAL)
{
	static unsigned char d[64];
	unsigned char *big = malloc(REC_DATA_MAX);
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	struct rec_header h;
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	uint64_t tail, la = 0;

	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(wlog_sync(w, 0), 0);
	append(w, REC_WRITE, 1, 0, sizeof(d), d, NULL);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);	/* already durable */

	tail = wlog_tail(w);
	memset(&h, 0, sizeof(h));
	h.type = REC_WRITE;
	h.length = 0;
	ck_assert_int_eq(wlog_append(w, &h, d, &la), -EINVAL);
	h.length = (uint64_t)REC_DATA_MAX + 1;
	ck_assert_int_eq(wlog_append(w, &h, big, &la), -EINVAL);
	/* nothing was appended */
	ck_assert_uint_eq(wlog_tail(w), tail);
	ck_assert_uint_eq(wlog_next_seq(w), 2);
	ck_assert_int_eq(seg_size(1), (int64_t)LADDR_OFF(tail));

	/* exactly REC_DATA_MAX is allowed, and replays */
	fill(big, REC_DATA_MAX, 77);
	h.length = REC_DATA_MAX;
	ck_assert_int_eq(wlog_append(w, &h, big, &la), 0);
	ck_assert_uint_eq(h.seq, 2);
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, 2);
	ck_assert_uint_eq(c.v[1].h.length, REC_DATA_MAX);
	ck_assert_uint_eq(c.v[1].rec_laddr, la);
	{
		unsigned char *got = malloc(REC_DATA_MAX);
		const char *why;
		ck_assert_int_eq(wlog_read(w, la, 0, 0, got, REC_DATA_MAX, &why), 0);
		assert_bytes_eq(got, big, REC_DATA_MAX, "16 MiB record");
		free(got);
	}
	wlog_close(w);
	free(c.v);
	free(big);
}
END_TEST

/*
 * Checksums computed before the append (outside the store's log lock) make
 * the same record as wlog_append(); sums for another length are not used,
 * so a write cut short by its caller still carries its own data's crcs.
 */
START_TEST(append_with_sums_computed_beforehand_writes_the_same_record)
{
	static const uint64_t lens[] = { 1, BLK - 1, BLK, 3 * BLK, 3 * BLK + 5, MiB };
	unsigned char *data = malloc(MiB);
	struct wlog_sums *sums = malloc(sizeof(*sums));
	struct collector c = { 0 };
	struct wlog_replay_stats rs;
	uint64_t la[2 * 6 + 2];
	struct wlog *w = new_log(WLOG_SEGMENT_SIZE_MIN);
	int n = 0;

	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(sums);
	fill(data, MiB, 5);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct rec_header h = { .type = REC_WRITE, .disk_id = 1, .offset = 0, .length = lens[i] };
		struct rec_header plain;

		wlog_sums_compute(sums, data, lens[i]);
		ck_assert_uint_eq(sums->length, lens[i]);
		ck_assert_int_eq(wlog_append_sums(w, &h, data, sums, &la[n++]), 0);
		la[n++] = append(w, REC_WRITE, 1, 0, lens[i], data, &plain);
		ck_assert_uint_eq(h.data_crc, plain.data_crc);
		check_write_record_on_disk(1, LADDR_OFF(la[n - 2]), data, lens[i]);
	}
	/* sums of 3 blocks + 5 bytes given for a record cut to 2 blocks + 1 byte */
	{
		struct rec_header h = { .type = REC_WRITE, .disk_id = 1, .offset = 0, .length = 2 * BLK + 1 };
		wlog_sums_compute(sums, data, 3 * BLK + 5);
		ck_assert_int_eq(wlog_append_sums(w, &h, data, sums, &la[n++]), 0);
		check_write_record_on_disk(1, LADDR_OFF(la[n - 1]), data, 2 * BLK + 1);
	}
	/* a REC_ZERO ignores sums */
	{
		struct rec_header h = { .type = REC_ZERO, .disk_id = 1, .offset = 0, .length = BLK };
		ck_assert_int_eq(wlog_append_sums(w, &h, NULL, sums, &la[n++]), 0);
		ck_assert_uint_eq(h.data_crc, 0);
	}
	ck_assert_int_eq(wlog_sync(w, wlog_tail(w)), 0);
	wlog_close(w);

	/* every record replays with every block verified */
	w = log_open_replayed(WLOG_SEGMENT_SIZE_MIN, &c, &rs);
	ck_assert_int_eq(c.n, n);
	ck_assert_uint_eq(rs.torn_bytes, 0);
	for (int i = 0; i < n; i++)
		ck_assert_uint_eq(c.v[i].rec_laddr, la[i]);
	wlog_close(w);
	free(c.v);
	free(sums);
	free(data);
}
END_TEST

FIXTURE_MAIN(tc, "wlog", wlog_setup, 60)
{
	tcase_add_test(tc, empty_log_replays_nothing_and_tail_is_first_laddr);
	tcase_add_test(tc, append_each_record_type_reads_back_with_headers_and_crcs_on_disk);
	tcase_add_test(tc, reopen_replay_sees_exactly_the_appended_records_in_order);
	tcase_add_test(tc, sync_succeeds_and_bad_write_lengths_are_EINVAL);
	tcase_add_test(tc, append_with_sums_computed_beforehand_writes_the_same_record);
}
