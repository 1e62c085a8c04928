/* names: see names.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "names.h"

int
name_check(const char *name, const char **why)
{
	size_t len = strlen(name);

	if (len == 0) {
		*why = "name is empty";
		return -EINVAL;
	}
	if (len > NAME_MAX_LEN) {
		*why = "name is longer than 200 bytes";
		return -EINVAL;
	}
	if (name[0] == '.') {
		*why = "name starts with '.'";
		return -EINVAL;
	}
	for (const char *p = name; *p; p++) {
		if (*p == '/') {
			*why = "name contains '/'";
			return -EINVAL;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._+-", *p) || *p == '_')) {
			*why = "name has characters outside [A-Za-z0-9._+-_]";
			return -EINVAL;
		}
	}
	return 0;
}

int
path_check(const char *path, const char **why)
{
	char part[NAME_MAX_LEN + 1];
	const char *p = path, *slash;

	if (strlen(path) > NAME_MAX_LEN) {
		*why = "path is longer than 200 bytes";
		return -EINVAL;
	}
	do {
		slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		memcpy(part, p, len);
		part[len] = '\0';
		if (name_check(part, why) < 0)
			return -EINVAL;
		if (slash)
			p = slash + 1;
	} while (slash);
	return 0;
}

int
path_in_dir(const char *path, const char *dir)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;

	return strlen(dir) == len && strncmp(path, dir, len) == 0;
}

int
full_name_check(const char *name, const char **why)
{
	const char *at = strchr(name, '@');
	char disk[NAME_MAX_LEN + 1];

	if (!at)
		return path_check(name, why);
	if ((size_t)(at - name) >= sizeof(disk)) {
		*why = "disk name is longer than 200 bytes";
		return -EINVAL;
	}
	memcpy(disk, name, (size_t)(at - name));
	disk[at - name] = '\0';
	return path_check(disk, why) < 0 ? -EINVAL : name_check(at + 1, why);
}

int
size_parse(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case 'k': case 'K': mult = UINT64_C(1) << 10; p++; break;
	case 'm': case 'M': mult = UINT64_C(1) << 20; p++; break;
	case 'g': case 'G': mult = UINT64_C(1) << 30; p++; break;
	case 't': case 'T': mult = UINT64_C(1) << 40; p++; break;
	case 'p': case 'P': mult = UINT64_C(1) << 50; p++; break;
	default: break;
	}
	if (mult > 1 && strcmp(p, "iB") == 0)
		p += 2;
	else if (*p == 'B')
		p++;
	if (*p != '\0')
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

void
size_format(uint64_t bytes, char *buf, unsigned len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}
