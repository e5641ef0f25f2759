/* json.c: streaming JSON writer. Output is deterministic: callers choose key order. */
#include "json.h"

void json_init(struct json *j, struct strbuf *sb, int pretty)
{
	memset(j, 0, sizeof(*j));
	j->sb = sb;
	j->pretty = pretty;
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
			if (*p < 0x20)
				sb_addf(sb, "\\u%04x", *p);
			else
				sb_addc(sb, (char)*p);
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
