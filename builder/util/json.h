/* json.h: a small streaming JSON writer for manifests and --json output. */
#pragma once

#include "strbuf.h"

struct json {
	struct strbuf *sb;
	int depth;
	int need_comma[32];
	int pretty;
};

void json_init(struct json *j, struct strbuf *sb, int pretty);
void json_obj_begin(struct json *j, const char *key); /* key NULL inside arrays or at top */
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_str(struct json *j, const char *key, const char *val); /* val NULL writes null */
void json_int(struct json *j, const char *key, long long val);
void json_num(struct json *j, const char *key, double val);
void json_bool(struct json *j, const char *key, int val);
/* Append s as a JSON string literal (quoted, escaped). */
void json_escape(struct strbuf *sb, const char *s);
/* Length of the valid UTF-8 sequence (2 to 4 bytes) starting at p, or 0. */
size_t json_utf8_seq(const unsigned char *p, const unsigned char *end);
