/*
 * store_fixture.h: what the store-engine tests share (tests/store_fixture.c).
 *
 * Every test gets a fresh root under the run's directory with a template dir
 * (holding base.img: TSIZE bytes of known pseudo-random bytes, tmpl_bytes)
 * and an empty data dir.  Disk contents are checked against a reference
 * buffer (struct model) that every operation is also applied to.
 */
#ifndef HCOWFS_TESTS_STORE_FIXTURE_H
#define HCOWFS_TESTS_STORE_FIXTURE_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>

#include "fixture.h"
#include "store.h"
#include "wlog.h"

#define TSIZE		(MiB + 123)		/* base.img */
#define MODEL_CAP	(8 * MiB)		/* largest disk the scripts make */
#define CP_NEVER	3600000u
#define SEG_SIZE	WLOG_SEGMENT_SIZE_MIN
#define NOREPLACE	1u			/* RENAME_NOREPLACE */

/* The test's root, its template dir and data dir; what base.img holds. */
extern char root[128], tmpldir[160], datadir[160];
extern unsigned char *tmpl_bytes;

/* xorshift64, and buffers filled from it by seed */
struct rng {
	uint64_t s;
};

uint64_t rnext(struct rng *r);
/* order[0..n) := 0..n-1 shuffled by r (Fisher-Yates): blocks to write in random order */
void rshuffle(struct rng *r, uint32_t *order, uint32_t n);
void fill(void *buf, size_t len, uint64_t seed);

/* The path of template name in the template dir. */
void tmpl_path(const char *name, char *buf, size_t len);

/* Check fixture: a fresh root with tmpl/base.img (tmpl_bytes) and an empty data/. */
void store_setup(void);

/*
 * The options every test opens with (create, purge, no checkpoints); the store
 * opened with them or with o, asserting success; a clone made, asserting
 * success, its id returned.
 */
struct store_opts opts(void);
struct store *sopen_with(const struct store_opts *o);
struct store *sopen(void);
/* st closed and the store opened again, as sopen() does */
struct store *reopen(struct store *st);
uint64_t mkdisk(struct store *st, const char *name, const char *tmpl, uint64_t size);

/* The data dir's log dir, opened; its path in path. */
DIR *log_dir(char *path, size_t len);

/* The newest log segment: its number, and its path in buf. */
unsigned newest_segment(char *buf, size_t len);

/* The reference: what a disk must read as. */
struct model {
	unsigned char	*b;
	uint64_t	 size;
};

/* A model of a disk of size bytes cloned from tmpl (tsize bytes), room for MODEL_CAP. */
void model_init(struct model *m, const unsigned char *tmpl, uint64_t tsize, uint64_t size);

void model_free(struct model *m);
void model_resize(struct model *m, uint64_t size);

/* A clone "vm" of all of base.img, m its model; its id. */
uint64_t new_vm(struct store *st, struct model *m);

/* A model that starts as a copy of another (a snapshot's, a clone's, a copy's). */
void model_copy(struct model *to, const struct model *from);

/* Disk or snapshot `from` cloned as `name`, asserting success; its id. */
uint64_t clone_of(struct store *st, const char *from, const char *name);

/*
 * Operations applied to the store (st may be NULL: the model only) and the
 * model.  They return 0, or -1 with opfail saying what went wrong; they do
 * not use ck_assert so that a forked child can run them too.
 */
extern char opfail[512];
#define OK(x) do { int ok_rc_ = (x); ck_assert_msg(ok_rc_ == 0, "%s", opfail); } while (0)

int op_write(struct store *st, uint64_t id, struct model *m, uint64_t off, size_t len,
    uint64_t seed);
int op_zero(struct store *st, uint64_t id, struct model *m, uint64_t off, uint64_t len, int keep);
int op_resize(struct store *st, uint64_t id, struct model *m, uint64_t size, int grow_only);

/* Read [off, off+len) and compare with the model; 0 or -1 (opfail). */
int check_read(struct store *st, uint64_t id, const struct model *m, uint64_t off, size_t len);

/* The whole disk, its size, and reads at many offsets and lengths. */
int check_disk(struct store *st, uint64_t id, const struct model *m, uint64_t seed);

/*
 * A deterministic mix of writes, zeros and resizes on one disk; part selects
 * the sequence.  Each part writes > 10 MiB so that two parts roll the log
 * past a 16 MiB segment.
 */
int script(struct store *st, uint64_t id, struct model *m, int part);

/* The disk still reads as the model says; then the model is freed and the store closed. */
void check_and_close(struct store *st, uint64_t id, struct model *m, uint64_t seed);

/* base.img still holds tmpl_bytes. */
void assert_template_file_unchanged(void);

/*
 * The index of st writes and syncs through hooks that fail with EIO while
 * index_failing is set (a full or failing disk under the data dir).
 */
extern int index_failing;
void index_failing_io(struct store *st);

/*
 * Options to open the existing store with a handoff area (the shared memory a
 * replacement takes the overlays from) of cap bytes, mapped into *area.
 */
struct store_opts handoff_opts(uint8_t **area, size_t cap);

/* A new store holding one clone "vm" of base.img, closed again; m models it. */
uint64_t fresh_store_with_disk(struct model *m);

#endif
