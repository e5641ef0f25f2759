/* strbuf.h: a growable, NUL-terminated byte buffer with a size limit. */
#pragma once

#include "util.h"

struct strbuf {
	char *buf;
	size_t len, alloc;
	size_t max; /* 0: no limit beyond memory; else appends past it abort the program */
};

#define STRBUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0, 0                                                                      \
	}

void sb_add(struct strbuf *sb, const void *data, size_t len);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addc(struct strbuf *sb, char c);
void sb_addf(struct strbuf *sb, const char *fmt, ...) _printf_(2, 3);
void sb_reset(struct strbuf *sb);
/* Give up the buffer (never NULL); caller frees. */
char *sb_take(struct strbuf *sb);
void sb_release(struct strbuf *sb);
static inline const char *sb_str(const struct strbuf *sb)
{
	return sb->buf ? sb->buf : "";
}
