/*
 * media_local: the local medium, where the files of the data dir are the
 * store (media.h).  A segment is durable once fdatasync'ed; the index file
 * syncs itself (index.c's default hooks); nothing is fetched or released
 * anywhere else.  It holds no state, so one serves every store.
 */
#include <errno.h>
#include <unistd.h>

#include "media.h"

/* fdatasync: the segment's bytes, not its times (docs/design.md, "Flushes"). */
static int
local_seg_sync(struct media *m, uint32_t segno, int fd, uint64_t upto)
{
	(void)m, (void)segno, (void)upto;
	return fdatasync(fd) < 0 ? -errno : 0;
}

/* Nothing beyond the file, which replay cut and synced itself. */
static int
local_seg_cut(struct media *m, uint32_t segno, uint64_t size)
{
	(void)m, (void)segno, (void)size;
	return 0;
}

/* Nothing beyond the file, which the log removes or keeps as a spare. */
static int
local_seg_release(struct media *m, uint32_t segno)
{
	(void)m, (void)segno;
	return 0;
}

/* The files are the store: they agree with themselves. */
static int
local_fetch(struct media *m, const char *datadir, int trust_cache, char *err, size_t errlen)
{
	(void)m, (void)datadir, (void)trust_cache, (void)err, (void)errlen;
	return 0;
}

static const struct media_ops local_ops = {
	.name = "local",
	.fill = 1,
	.seg_sync = local_seg_sync,
	.seg_cut = local_seg_cut,
	.seg_release = local_seg_release,
	.fetch = local_fetch,
};

static struct media local = { .ops = &local_ops };

struct media *
media_local(void)
{
	return &local;
}

void
media_set_wait_hook(struct media *m, void (*hook)(void *arg, int delta), void *arg)
{
	if (m == &local)
		return;
	m->wait_arg = arg;
	m->wait_hook = hook;
}

void
media_close(struct media *m)
{
	if (m && m != &local && m->ops->close)
		m->ops->close(m);
}
