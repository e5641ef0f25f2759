/* json.c: streaming JSON writer. Output is deterministic: callers choose key order. */
#include "json.h"

void json_init(struct json *j, struct strbuf *sb, int pretty)
{
	memset(j, 0, sizeof(*j));
	j->sb = sb;
	j->pretty = pretty;
}

size_t json_utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* past U+10FFFF */
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

void json_escape(struct strbuf *sb, const char *s)
{
	sb_addc(sb, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': sb_adds(sb, "\\\""); break;
		case '\\': sb_adds(sb, "\\\\"); break;
		case '\n': sb_adds(sb, "\\n"); break;
		case '\r': sb_adds(sb, "\\r"); break;
		case '\t': sb_adds(sb, "\\t"); break;
		default:
			if (*p < 0x20) {
				sb_addf(sb, "\\u%04x", *p);
			} else if (*p < 0x80) {
				sb_addc(sb, (char)*p);
			} else {
				/* JSON is UTF-8: a stray byte (a file name) becomes U+FFFD. */
				size_t n = json_utf8_seq(p, p + strnlen((const char *)p, 4));
				if (n) {
					sb_add(sb, (const char *)p, n);
					p += n - 1;
				} else {
					sb_adds(sb, "\\ufffd");
				}
			}
		}
	}
	sb_addc(sb, '"');
}

static void indent(struct json *j)
{
	if (!j->pretty)
		return;
	sb_addc(j->sb, '\n');
	for (int i = 0; i < j->depth; i++)
		sb_adds(j->sb, "  ");
}

static void member(struct json *j, const char *key)
{
	if (j->depth > 0 && j->need_comma[j->depth])
		sb_addc(j->sb, ',');
	if (j->depth > 0) {
		j->need_comma[j->depth] = 1;
		indent(j);
	}
	if (key) {
		json_escape(j->sb, key);
		sb_adds(j->sb, j->pretty ? ": " : ":");
	}
}

static void open_(struct json *j, const char *key, char c)
{
	member(j, key);
	sb_addc(j->sb, c);
	if (j->depth + 1 < (int)ARRAY_SIZE(j->need_comma))
		j->depth++;
	j->need_comma[j->depth] = 0;
}

static void close_(struct json *j, char c)
{
	int had = j->need_comma[j->depth];
	j->depth--;
	if (had)
		indent(j);
	sb_addc(j->sb, c);
	if (j->depth == 0 && j->pretty)
		sb_addc(j->sb, '\n');
}

void json_obj_begin(struct json *j, const char *key)
{
	open_(j, key, '{');
}
void json_obj_end(struct json *j)
{
	close_(j, '}');
}
void json_arr_begin(struct json *j, const char *key)
{
	open_(j, key, '[');
}
void json_arr_end(struct json *j)
{
	close_(j, ']');
}

void json_str(struct json *j, const char *key, const char *val)
{
	member(j, key);
	if (val)
		json_escape(j->sb, val);
	else
		sb_adds(j->sb, "null");
}

void json_int(struct json *j, const char *key, long long val)
{
	member(j, key);
	sb_addf(j->sb, "%lld", val);
}

void json_num(struct json *j, const char *key, double val)
{
	member(j, key);
	sb_addf(j->sb, "%.3f", val);
}

void json_bool(struct json *j, const char *key, int val)
{
	member(j, key);
	sb_adds(j->sb, val ? "true" : "false");
}
