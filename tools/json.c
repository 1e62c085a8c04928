/*
 * json: see json.h.  A recursive descent parser, depth-bounded; strings are
 * decoded (escapes, \u as UTF-8; a lone surrogate becomes U+FFFD).
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define JSON_DEPTH_MAX	64

struct parser {
	const char *p;
	int depth;
};

static int parse_value(struct parser *ps, struct json *v);

static void
skip_space(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

/* Append code point cp as UTF-8 at out; returns the bytes written. */
static size_t
utf8_put(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp >= 0xd800 && cp < 0xe000)
		cp = 0xfffd;
	out[0] = (char)(0xe0 | cp >> 12);
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

/* A string at ps->p (its opening quote); *out malloc'ed.  0 or -1. */
static int
parse_string(struct parser *ps, char **out)
{
	const char *s = ++ps->p, *e = s;
	char *o;
	size_t n = 0;

	while (*e && *e != '"')
		e += *e == '\\' && e[1] ? 2 : 1;
	if (*e != '"' || !(o = malloc((size_t)(e - s) + 1)))
		return -1;
	while (s < e) {
		if (*s != '\\') {
			o[n++] = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'n': o[n++] = '\n'; break;
		case 't': o[n++] = '\t'; break;
		case 'r': o[n++] = '\r'; break;
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case 'u': {
			char hex[5] = { 0 };
			char *end;
			unsigned cp;
			if (e - s < 5)
				goto bad;
			memcpy(hex, s + 1, 4);
			cp = (unsigned)strtoul(hex, &end, 16);
			if (end != hex + 4)
				goto bad;
			n += utf8_put(o + n, cp);	/* at most 3 bytes for the 6 read */
			s += 4;
			break;
		}
		default: o[n++] = *s; break;
		}
		s++;
	}
	o[n] = 0;
	ps->p = e + 1;
	*out = o;
	return 0;
bad:
	free(o);
	return -1;
}

/* Members of an array or object, after its opening bracket.  0 or -1. */
static int
parse_members(struct parser *ps, struct json *v, char close)
{
	size_t cap = 0;

	skip_space(ps);
	if (*ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		if (v->n == cap) {
			struct json *k;
			char **keys;
			cap = cap ? 2 * cap : 8;
			if (!(k = realloc(v->kid, cap * sizeof(*k))))
				return -1;
			v->kid = k;
			if (close == '}') {
				if (!(keys = realloc(v->key, cap * sizeof(*keys))))
					return -1;
				v->key = keys;
			}
		}
		memset(&v->kid[v->n], 0, sizeof(v->kid[0]));
		skip_space(ps);
		if (close == '}') {
			if (*ps->p != '"' || parse_string(ps, &v->key[v->n]) < 0)
				return -1;
			skip_space(ps);
			if (*ps->p++ != ':') {
				free(v->key[v->n]);
				return -1;
			}
		}
		v->n++;
		if (parse_value(ps, &v->kid[v->n - 1]) < 0)
			return -1;
		skip_space(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p++ != close)
			return -1;
		return 0;
	}
}

static int
parse_value(struct parser *ps, struct json *v)
{
	char *end;

	skip_space(ps);
	switch (*ps->p) {
	case '{':
	case '[':
		if (++ps->depth > JSON_DEPTH_MAX)
			return -1;
		v->type = *ps->p == '{' ? JSON_OBJ : JSON_ARR;
		ps->p++;
		if (parse_members(ps, v, v->type == JSON_OBJ ? '}' : ']') < 0)
			return -1;
		ps->depth--;
		return 0;
	case '"':
		v->type = JSON_STR;
		return parse_string(ps, &v->str);
	case 't':
	case 'f':
	case 'n': {
		static const char *const words[] = { "true", "false", "null" };
		for (int i = 0; i < 3; i++) {
			size_t len = strlen(words[i]);
			if (strncmp(ps->p, words[i], len) == 0) {
				v->type = i == 2 ? JSON_NULL : JSON_BOOL;
				v->num = i == 0;
				ps->p += len;
				return 0;
			}
		}
		return -1;
	}
	default:
		v->type = JSON_NUM;
		v->num = strtod(ps->p, &end);
		if (end == ps->p)
			return -1;
		ps->p = end;
		return 0;
	}
}

/* Free what v holds, not v. */
static void
json_clear(struct json *v)
{
	for (size_t i = 0; i < v->n; i++) {
		json_clear(&v->kid[i]);
		if (v->key)
			free(v->key[i]);
	}
	free(v->kid);
	free(v->key);
	free(v->str);
}

struct json *
json_parse(const char *text)
{
	struct parser ps = { text, 0 };
	struct json *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	if (parse_value(&ps, v) < 0) {
		json_free(v);
		return NULL;
	}
	skip_space(&ps);
	if (*ps.p) {
		json_free(v);
		return NULL;
	}
	return v;
}

void
json_free(struct json *v)
{
	if (!v)
		return;
	json_clear(v);
	free(v);
}

const struct json *
json_get(const struct json *v, const char *key)
{
	if (!v || v->type != JSON_OBJ)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->key[i], key) == 0)
			return &v->kid[i];
	return NULL;
}

double
json_num(const struct json *v, const char *key, double dflt)
{
	const struct json *m = json_get(v, key);

	return m && m->type == JSON_NUM ? m->num : dflt;
}

const char *
json_str(const struct json *v, const char *key)
{
	const struct json *m = json_get(v, key);

	return m && m->type == JSON_STR ? m->str : NULL;
}
