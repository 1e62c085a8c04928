/*
 * radosspec: see radosspec.h for the syntax and its reasons.
 */
#include <errno.h>
#include <string.h>

#include "radosspec.h"

#define PREFIX	"rados:"

int
rados_spec_is(const char *s)
{
	return strncmp(s, PREFIX, strlen(PREFIX)) == 0;
}

/* Copy one name of len bytes into out (RADOS_NAME_MAX + 1), checking it. */
static int
rados_name(const char *s, size_t len, char *out, const char *what, const char **why)
{
	if (len == 0) {
		*why = what;
		return -EINVAL;
	}
	if (len > RADOS_NAME_MAX) {
		*why = "pool and namespace names are at most 63 bytes";
		return -EINVAL;
	}
	if (s[0] == '.') {
		*why = "pool and namespace names may not start with '.'";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-')) {
			*why = "pool and namespace names are made of A-Z a-z 0-9 . _ -";
			return -EINVAL;
		}
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

int
rados_spec_parse(const char *s, int need_ns, struct rados_spec *sp, const char **why)
{
	const char *p, *slash;
	int rc;

	memset(sp, 0, sizeof(*sp));
	if (!rados_spec_is(s)) {
		*why = "not of the form rados:POOL[/NAMESPACE]";
		return -EINVAL;
	}
	p = s + strlen(PREFIX);
	slash = strchr(p, '/');
	rc = rados_name(p, slash ? (size_t)(slash - p) : strlen(p), sp->pool,
	    "rados: needs a pool name (rados:POOL[/NAMESPACE])", why);
	if (rc < 0)
		return rc;
	if (slash)
		return rados_name(slash + 1, strlen(slash + 1), sp->ns,
		    "a '/' must be followed by a namespace (rados:POOL/NAMESPACE)", why);
	if (need_ns) {
		*why = "a store in a cluster is named rados:POOL/STORE";
		return -EINVAL;
	}
	return 0;
}
