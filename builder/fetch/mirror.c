/* mirror.c: rewriting artifact URLs to an internal mirror (a URL or a local directory). */
#include <ctype.h>
#include <strings.h>

#include "fetch.h"
#include "util/fs.h"
#include "util/strbuf.h"

/* The mirror as a URL prefix without a trailing slash: a directory becomes file://, with
 * the characters curl would otherwise decode or stop at percent-encoded. Caller frees. */
static char *mirror_base(const char *mirror)
{
	struct strbuf sb = STRBUF_INIT;
	if (strstr(mirror, "://")) {
		sb_adds(&sb, mirror);
	} else {
		_cleanup_free_ char *abs = ib_abspath(mirror);
		sb_adds(&sb, "file://");
		for (const char *p = abs; *p; p++) {
			unsigned char c = (unsigned char)*p;
			if (isalnum(c) || strchr("/-._~:@+,=", c))
				sb_addc(&sb, (char)c);
			else
				sb_addf(&sb, "%%%02X", c);
		}
	}
	while (sb.len > 0 && sb.buf[sb.len - 1] == '/' && !endswith(sb.buf, "://"))
		sb.buf[--sb.len] = '\0';
	return sb_take(&sb);
}

char *ib_mirror_url(const char *mirror, const char *url)
{
	if (!mirror || !*mirror)
		return xstrdup(url);
	_cleanup_free_ char *base = mirror_base(mirror);
	size_t bl = strlen(base);
	if (strncmp(url, base, bl) == 0 && (url[bl] == '/' || url[bl] == '\0'))
		return xstrdup(url); /* already rewritten */

	const char *rest;
	if (strncasecmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		rest = url + 8;
	else
		return xstrdup(url);

	size_t alen = strcspn(rest, "/?#");
	const char *authority = rest, *path = rest + alen;
	/* user:password@ never goes to the mirror. */
	const char *at = memrchr(authority, '@', alen);
	if (at) {
		alen -= (size_t)(at + 1 - authority);
		authority = at + 1;
	}
	size_t plen = strcspn(path, "#");
	/* A directory has no query strings: drop it there, keep it for a mirror server. */
	if (startswith(base, "file://"))
		plen = strcspn(path, "?#");
	if (plen == 0 || path[0] != '/')
		return xasprintf("%s/%.*s/%.*s", base, (int)alen, authority, (int)plen, path);
	return xasprintf("%s/%.*s%.*s", base, (int)alen, authority, (int)plen, path);
}
