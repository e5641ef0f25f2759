/* checksum.c: reading the digest for one file out of a published checksum file. */
#include <ctype.h>

#include "fetch.h"

struct entry {
	char hex[65];
	const char *name; /* into the caller's copy of the text; "" when absent */
};

/* 64 hex digits at s (either case) followed by the end or a space: lowercase into out. */
static int take_hex(const char *s, char out[65])
{
	for (int i = 0; i < 64; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return -1;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[64] = '\0';
	return s[64] == '\0' || isspace((unsigned char)s[64]) ? 0 : -1;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t l = strlen(s);
	while (l > 0 && isspace((unsigned char)s[l - 1]))
		s[--l] = '\0';
	return s;
}

/* One line in either format; 0 with *e filled, -1 when it is not a sha256 line. */
static int parse_line(char *line, struct entry *e)
{
	line = trim(line);
	if (startswith(line, "SHA256 (")) {
		char *name = line + 8;
		char *end = strstr(name, ") = ");
		if (!end || take_hex(end + 4, e->hex) < 0)
			return -1;
		*end = '\0';
		e->name = name;
		return 0;
	}
	if (take_hex(line, e->hex) < 0)
		return -1;
	char *name = trim(line + 64);
	if (*name == '*') /* sha256sum's binary-mode marker */
		name++;
	e->name = name;
	return 0;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

int ib_checksum_parse(struct ib_ctx *ctx, const char *text, const char *name, char hex[65])
{
	_cleanup_free_ char *copy = xstrdup(text);
	struct entry *entries = NULL;
	size_t n = 0, alloc = 0;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct entry e;
		if (parse_line(line, &e) < 0)
			continue;
		if (n == alloc)
			entries = xrealloc(entries,
			                   (alloc = alloc ? alloc * 2 : 8) * sizeof(*entries));
		entries[n++] = e;
	}
	int r = 0;
	const struct entry *found = NULL;
	if (n == 1 && !*entries[0].name) {
		found = &entries[0];
	} else {
		for (size_t i = 0; i < n && !found; i++)
			if (streq(entries[i].name, name) || streq(base_name(entries[i].name), name))
				found = &entries[i];
	}
	if (found)
		memcpy(hex, found->hex, 65);
	else if (n == 0)
		r = ib_error(ctx, IB_E_VERIFY, "no sha256 digest in the checksum file");
	else if (n == 1)
		r = ib_error(ctx, IB_E_VERIFY, "the checksum file is for '%s', not '%s'",
		             entries[0].name, name);
	else
		r = ib_error(ctx, IB_E_VERIFY, "no entry for '%s' in the checksum file", name);
	free(entries);
	return r;
}
