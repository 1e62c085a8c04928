/*
 * radosspec: where in a Ceph cluster a template dir or a store lives, as
 * users write it in place of a directory.
 *
 *   rados:POOL            templates in POOL's default namespace
 *   rados:POOL/NAMESPACE  templates in that namespace, or the store NAMESPACE
 *
 * Pure string work (no librados), so the supervisor, hcowctl and the engine
 * read the same syntax.  A pool or namespace name is 1..RADOS_NAME_MAX
 * bytes of [A-Za-z0-9._-], not starting with '.': Ceph accepts more, but
 * these names also name local cache files and appear in logs unquoted.
 */
#ifndef HCOWFS_RADOSSPEC_H
#define HCOWFS_RADOSSPEC_H

#include <stddef.h>

#define RADOS_NAME_MAX	63

struct rados_spec {
	char	pool[RADOS_NAME_MAX + 1];
	char	ns[RADOS_NAME_MAX + 1];		/* "" = the pool's default namespace */
};

/* Does s name a place in a cluster ("rados:...") rather than a directory? */
int rados_spec_is(const char *s);

/*
 * Parse "rados:POOL[/NAMESPACE]" into sp: 0, or -EINVAL with *why saying
 * what is wrong.  need_ns: a store must name its namespace.
 */
int rados_spec_parse(const char *s, int need_ns, struct rados_spec *sp, const char **why);

#endif
