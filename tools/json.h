/*
 * json: a small reader of the JSON hcowfs itself writes (`status --json`),
 * for hcowctl's metrics and top.  json_parse() builds a tree; json_get() and
 * friends walk it and answer NULL or 0 for what is not there, so a caller
 * reads an older supervisor's answer (fewer keys) without special cases.
 */
#ifndef HCOWFS_JSON_H
#define HCOWFS_JSON_H

#include <stddef.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
	enum json_type	 type;
	double		 num;		/* JSON_NUM, JSON_BOOL (0 or 1) */
	char		*str;		/* JSON_STR */
	size_t		 n;		/* JSON_ARR, JSON_OBJ: members */
	struct json	*kid;		/* their values */
	char		**key;		/* JSON_OBJ: their names */
};

/* Parse text (NUL-terminated); NULL if it is not one JSON value, or no memory. */
struct json *json_parse(const char *text);
void json_free(struct json *v);
/* Member `key` of object v; NULL if v is not an object or has none. */
const struct json *json_get(const struct json *v, const char *key);
/* Its number, or dflt when it is missing or not a number. */
double json_num(const struct json *v, const char *key, double dflt);
/* Its string, or NULL. */
const char *json_str(const struct json *v, const char *key);

#endif
