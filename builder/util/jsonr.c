/* jsonr.c: strict, bounded recursive-descent JSON reader (see jsonr.h for the rules). */
#include "jsonr.h"

#include "json.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>

/* Whatever the caller asks, recursion stays well inside any thread's stack. */
#define HARD_MAX_DEPTH 1024u

struct parser {
	const char *start, *p, *end;
	unsigned depth, max_depth;
	size_t values, max_values;
	struct jsonr_error *err;
};

static int fail_at(struct parser *ps, const char *at, const char *fmt, ...) _printf_(3, 4);

static int fail_at(struct parser *ps, const char *at, const char *fmt, ...)
{
	struct jsonr_error *e = ps->err;
	e->offset = (size_t)(at - ps->start);
	e->line = 1;
	e->col = 1;
	for (const char *q = ps->start; q < at; q++) {
		if (*q == '\n') {
			e->line++;
			e->col = 1;
		} else {
			e->col++;
		}
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* Describe the byte at p for a message: 'x' when printable, else 0xHH. */
static void describe_byte(const char *p, char out[8])
{
	unsigned char c = (unsigned char)*p;
	if (c >= 0x20 && c < 0x7f && c != '\'')
		snprintf(out, 8, "'%c'", c);
	else
		snprintf(out, 8, "0x%02x", c);
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static void value_release(struct jsonr *v)
{
	free(v->str);
	if (v->type == JSONR_ARRAY || v->type == JSONR_OBJECT) {
		for (size_t i = 0; i < v->n; i++) {
			value_release(&v->items[i]);
			if (v->keys)
				free(v->keys[i]);
		}
		free(v->items);
		free(v->keys);
	}
	memset(v, 0, sizeof(*v));
}

void jsonr_free(struct jsonr *v)
{
	if (!v)
		return;
	value_release(v);
	free(v);
}

const char *jsonr_type_name(enum jsonr_type t)
{
	switch (t) {
	case JSONR_NULL: return "null";
	case JSONR_BOOL: return "a boolean";
	case JSONR_NUMBER: return "a number";
	case JSONR_STRING: return "a string";
	case JSONR_ARRAY: return "an array";
	case JSONR_OBJECT: return "an object";
	}
	return "?";
}

/* ---- strings ---- */

static int hex4(const char *p, const char *end, unsigned *ret)
{
	if (end - p < 4)
		return -1;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*ret = v;
	return 0;
}

static size_t utf8_put(unsigned cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* At the opening quote. Decodes into a fresh buffer: never longer than the literal, since
 * every escape is at least as long as the bytes it stands for. */
static int parse_string(struct parser *ps, char **ret, size_t *ret_len)
{
	const char *open = ps->p++;
	const char *q = ps->p;
	while (q < ps->end && *q != '"') {
		if (*q == '\\' && q + 1 < ps->end)
			q++;
		q++;
	}
	if (q >= ps->end)
		return fail_at(ps, open, "unterminated string");
	char *buf = xmalloc((size_t)(q - ps->p) + 1);
	size_t n = 0;
	const char *p = ps->p;
	while (*p != '"') {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20) {
			free(buf);
			return fail_at(ps, p, "control character 0x%02x in a string", c);
		}
		if (c >= 0x80) {
			size_t k = json_utf8_seq((const unsigned char *)p,
			                         (const unsigned char *)ps->end);
			if (k == 0) {
				free(buf);
				return fail_at(ps, p, "invalid UTF-8 in a string");
			}
			memcpy(buf + n, p, k);
			n += k;
			p += k;
			continue;
		}
		if (c != '\\') {
			buf[n++] = (char)c;
			p++;
			continue;
		}
		const char *esc = p++;
		char e = *p++;
		switch (e) {
		case '"': buf[n++] = '"'; break;
		case '\\': buf[n++] = '\\'; break;
		case '/': buf[n++] = '/'; break;
		case 'b': buf[n++] = '\b'; break;
		case 'f': buf[n++] = '\f'; break;
		case 'n': buf[n++] = '\n'; break;
		case 'r': buf[n++] = '\r'; break;
		case 't': buf[n++] = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (hex4(p, q, &cp) < 0) {
				free(buf);
				return fail_at(ps, esc, "bad \\u escape");
			}
			p += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				free(buf);
				return fail_at(ps, esc, "lone low surrogate \\u%04x", cp);
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (q - p < 6 || p[0] != '\\' || p[1] != 'u' ||
				    hex4(p + 2, q, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
					free(buf);
					return fail_at(ps, esc,
					               "high surrogate \\u%04x not followed "
					               "by a low one",
					               cp);
				}
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0) {
				free(buf);
				return fail_at(ps, esc, "\\u0000 is not allowed in a string");
			}
			n += utf8_put(cp, buf + n);
			break;
		}
		default: free(buf); return fail_at(ps, esc, "bad escape in a string");
		}
	}
	buf[n] = '\0';
	ps->p = q + 1;
	*ret = buf;
	*ret_len = n;
	return 0;
}

/* ---- numbers ---- */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static int is_digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

static int parse_number(struct parser *ps, struct jsonr *v)
{
	const char *s = ps->p, *p = s, *end = ps->end;
	int neg = 0, is_int = 1;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (!is_digit(p, end))
		return fail_at(ps, s, "bad number: a digit must follow '-'");
	if (*p == '0') {
		p++;
		if (is_digit(p, end))
			return fail_at(ps, s, "bad number: leading zero");
	} else {
		while (is_digit(p, end))
			p++;
	}
	if (p < end && *p == '.') {
		is_int = 0;
		p++;
		if (!is_digit(p, end))
			return fail_at(ps, p, "bad number: a digit must follow '.'");
		while (is_digit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		is_int = 0;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!is_digit(p, end))
			return fail_at(ps, p, "bad number: a digit must follow the exponent");
		while (is_digit(p, end))
			p++;
	}
	char *text = xstrndup(s, (size_t)(p - s));
	pthread_once(&c_locale_once, c_locale_init);
	double d = c_locale ? strtod_l(text, NULL, c_locale) : strtod(text, NULL);
	if (isinf(d)) {
		free(text);
		return fail_at(ps, s, "number out of range");
	}
	v->type = JSONR_NUMBER;
	v->number = d;
	v->str = text;
	if (is_int) {
		/* Accumulate negatively: INT64_MIN has no positive counterpart. */
		int64_t acc = 0;
		int fits = 1;
		for (const char *q = s + neg; q < p; q++) {
			int dgt = *q - '0';
			if (acc < (INT64_MIN + dgt) / 10) {
				fits = 0;
				break;
			}
			acc = acc * 10 - dgt;
		}
		if (fits && !neg && acc == INT64_MIN)
			fits = 0;
		if (fits) {
			v->is_int = 1;
			v->integer = neg ? acc : -acc;
		}
	}
	ps->p = p;
	return 0;
}

/* ---- values ---- */

static int parse_value(struct parser *ps, struct jsonr *v);

static void push_item(struct jsonr *c, size_t *alloc, struct jsonr *item, char *key)
{
	if (c->n == *alloc) {
		*alloc = *alloc ? *alloc * 2 : 4;
		c->items = xrealloc(c->items, *alloc * sizeof(*c->items));
		if (c->type == JSONR_OBJECT)
			c->keys = xrealloc(c->keys, *alloc * sizeof(*c->keys));
	}
	c->items[c->n] = *item;
	if (c->type == JSONR_OBJECT)
		c->keys[c->n] = key;
	c->n++;
	memset(item, 0, sizeof(*item));
}

static int cmp_keyp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted copy, so that an object with many keys costs n log n, not n squared. */
static const char *find_duplicate(const struct jsonr *o)
{
	if (o->n < 2)
		return NULL;
	char **k = xmalloc(o->n * sizeof(*k));
	memcpy(k, o->keys, o->n * sizeof(*k));
	qsort(k, o->n, sizeof(*k), cmp_keyp);
	const char *dup = NULL;
	for (size_t i = 1; i < o->n && !dup; i++)
		if (streq(k[i - 1], k[i]))
			dup = k[i];
	free(k);
	return dup;
}

static int parse_container(struct parser *ps, struct jsonr *v, int is_obj)
{
	const char *open = ps->p++;
	char close = is_obj ? '}' : ']';
	if (++ps->depth > ps->max_depth)
		return fail_at(ps, open, "nesting deeper than %u levels", ps->max_depth);
	v->type = is_obj ? JSONR_OBJECT : JSONR_ARRAY;
	size_t alloc = 0;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		size_t klen;
		skip_ws(ps);
		if (is_obj) {
			if (ps->p >= ps->end)
				return fail_at(ps, ps->p, "unexpected end of input in an object");
			if (*ps->p != '"') {
				char b[8];
				describe_byte(ps->p, b);
				return fail_at(ps, ps->p, "expected a string key, found %s", b);
			}
			if (parse_string(ps, &key, &klen) < 0)
				return -1;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(key);
				return fail_at(ps, ps->p, "expected ':' after an object key");
			}
			ps->p++;
		}
		struct jsonr item = {0};
		if (parse_value(ps, &item) < 0) {
			value_release(&item);
			free(key);
			return -1;
		}
		push_item(v, &alloc, &item, key);
		skip_ws(ps);
		if (ps->p >= ps->end)
			return fail_at(ps, ps->p, "unexpected end of input in %s",
			               is_obj ? "an object" : "an array");
		if (*ps->p == ',') {
			ps->p++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == close)
				return fail_at(ps, ps->p, "trailing comma");
			continue;
		}
		if (*ps->p == close) {
			ps->p++;
			break;
		}
		char b[8];
		describe_byte(ps->p, b);
		return fail_at(ps, ps->p, "expected ',' or '%c', found %s", close, b);
	}
	if (is_obj) {
		const char *dup = find_duplicate(v);
		if (dup)
			return fail_at(ps, open, "duplicate key \"%.60s\" in an object", dup);
	}
	ps->depth--;
	return 0;
}

static int parse_literal(struct parser *ps, const char *word, struct jsonr *v, enum jsonr_type t,
                         int b)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail_at(ps, ps->p, "unexpected word (expected %s)", word);
	ps->p += n;
	v->type = t;
	v->boolean = b;
	return 0;
}

static int parse_value(struct parser *ps, struct jsonr *v)
{
	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail_at(ps, ps->p, "unexpected end of input");
	if (++ps->values > ps->max_values)
		return fail_at(ps, ps->p, "more than %zu values", ps->max_values);
	char c = *ps->p;
	switch (c) {
	case '{': return parse_container(ps, v, 1);
	case '[': return parse_container(ps, v, 0);
	case '"': v->type = JSONR_STRING; return parse_string(ps, &v->str, &v->len);
	case 't': return parse_literal(ps, "true", v, JSONR_BOOL, 1);
	case 'f': return parse_literal(ps, "false", v, JSONR_BOOL, 0);
	case 'n': return parse_literal(ps, "null", v, JSONR_NULL, 0);
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return parse_number(ps, v);
		if ((unsigned char)c == 0xef && ps->p == ps->start)
			return fail_at(ps, ps->p, "byte order mark not allowed");
		char b[8];
		describe_byte(ps->p, b);
		return fail_at(ps, ps->p, "unexpected %s", b);
	}
}

int jsonr_parse_ex(const char *data, size_t len, const struct jsonr_limits *lim, struct jsonr **ret,
                   struct jsonr_error *err)
{
	struct jsonr_limits l = lim ? *lim : (struct jsonr_limits){0};
	if (!l.max_size)
		l.max_size = JSONR_DEFAULT_MAX_SIZE;
	if (!l.max_depth)
		l.max_depth = JSONR_DEFAULT_MAX_DEPTH;
	if (l.max_depth > HARD_MAX_DEPTH)
		l.max_depth = HARD_MAX_DEPTH;
	if (!l.max_values)
		l.max_values = JSONR_DEFAULT_MAX_VALUES;
	struct parser ps = {
	        .start = data,
	        .p = data,
	        .end = data + len,
	        .max_depth = l.max_depth,
	        .max_values = l.max_values,
	        .err = err,
	};
	memset(err, 0, sizeof(*err));
	if (len > l.max_size)
		return fail_at(&ps, data, "document larger than %zu bytes", l.max_size);
	struct jsonr *v = xcalloc(1, sizeof(*v));
	if (parse_value(&ps, v) < 0) {
		jsonr_free(v);
		return -1;
	}
	skip_ws(&ps);
	if (ps.p != ps.end) {
		jsonr_free(v);
		return fail_at(&ps, ps.p, "trailing data after the value");
	}
	*ret = v;
	return 0;
}

int jsonr_parse(struct ib_ctx *ctx, ib_code code, const char *what, const char *data, size_t len,
                struct jsonr **ret)
{
	struct jsonr_error e;
	if (jsonr_parse_ex(data, len, NULL, ret, &e) < 0)
		return ib_error(ctx, code, "%s: invalid JSON at line %u, column %u: %s", what,
		                e.line, e.col, e.msg);
	return 0;
}

const struct jsonr *jsonr_get(const struct jsonr *obj, const char *key)
{
	if (!obj || obj->type != JSONR_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (streq(obj->keys[i], key))
			return &obj->items[i];
	return NULL;
}

const struct jsonr *jsonr_get_type(const struct jsonr *obj, const char *key, enum jsonr_type t)
{
	const struct jsonr *v = jsonr_get(obj, key);
	return v && v->type == t ? v : NULL;
}

const char *jsonr_get_str(const struct jsonr *obj, const char *key)
{
	const struct jsonr *v = jsonr_get_type(obj, key, JSONR_STRING);
	return v ? v->str : NULL;
}
