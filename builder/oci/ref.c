/* ref.c: image references parsed and normalised as the distribution reference grammar says. */
#include "oci/oci.h"

#include <ctype.h>

#include "oci/oci_internal.h"

#define REF_MAX      512
#define NAME_MAX_LEN 255 /* the whole name, registry included */
#define TAG_MAX      128
#define DOCKER_HUB   "registry-1.docker.io"

void ib_oci_ref_release(struct ib_oci_ref *r)
{
	if (!r)
		return;
	free(r->registry);
	free(r->repository);
	free(r->tag);
	free(r->digest);
	free(r->original);
	memset(r, 0, sizeof(*r));
}

int oci_digest_valid(const char *d)
{
	if (!d || !startswith(d, "sha256:") || strlen(d) != 7 + 64)
		return 0;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component: [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static const char *check_component(const char *s, size_t n)
{
	if (n == 0)
		return "empty path component";
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return "repository names must be lowercase";
	if (!is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return "a path component must start and end with a lowercase letter or digit";
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (is_lower_alnum(c))
			continue;
		if (c == '.' || c == '_') {
			size_t run = 1;
			while (i + run < n && s[i + run] == c)
				run++;
			if (c == '.' && run > 1)
				return "'..' in a path component";
			if (run > 2)
				return "more than two '_' in a row";
			i += run - 1;
			if (!is_lower_alnum(s[i + 1]))
				return "bad separator in a path component";
			continue;
		}
		if (c == '-') {
			while (i + 1 < n && s[i + 1] == '-')
				i++;
			if (!is_lower_alnum(s[i + 1]))
				return "bad separator in a path component";
			continue;
		}
		return "invalid character in the repository name";
	}
	return NULL;
}

static const char *check_host_label(const char *s, size_t n)
{
	if (n == 0)
		return "empty label in the registry host";
	if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return "a registry host label must start and end with a letter or digit";
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return "invalid character in the registry host";
	return NULL;
}

/* host[:port], host a DNS name or an IPv6 literal in brackets. */
static const char *check_registry(const char *s)
{
	const char *port = NULL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close == s + 1)
			return "bad IPv6 address in the registry";
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return "bad IPv6 address in the registry";
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return "bad registry host";
	} else {
		const char *colon = strchr(s, ':');
		size_t hl = colon ? (size_t)(colon - s) : strlen(s);
		const char *p = s;
		while (p < s + hl) {
			size_t l = strcspn(p, ".:");
			if (p + l > s + hl)
				l = (size_t)(s + hl - p);
			const char *e = check_host_label(p, l);
			if (e)
				return e;
			p += l;
			if (p < s + hl && *p == '.')
				p++;
			if (p == s + hl && p[-1] == '.')
				return "empty label in the registry host";
		}
		if (colon)
			port = colon + 1;
	}
	if (port) {
		if (!*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port))
			return "bad port in the registry";
		long v = strtol(port, NULL, 10);
		if (v < 1 || v > 65535)
			return "port out of range in the registry";
	}
	return NULL;
}

static int tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > TAG_MAX)
		return 0;
	if (!(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return 0;
	return 1;
}

static int bad(struct ib_ctx *ctx, const char *s, const char *why)
{
	return ib_error(ctx, IB_E_SPEC, "invalid image reference '%s': %s", s, why);
}

int ib_oci_ref_parse(struct ib_ctx *ctx, const char *s, struct ib_oci_ref *ret)
{
	if (!s || !*s)
		return ib_error(ctx, IB_E_SPEC, "invalid image reference '': empty");
	if (strlen(s) > REF_MAX)
		return ib_error(ctx, IB_E_SPEC,
		                "invalid image reference '%.60s...': longer than %d "
		                "characters",
		                s, REF_MAX);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return bad(ctx, s, "space, control or non-ASCII character");

	_cleanup_free_ char *rest = xstrdup(s);
	_cleanup_free_ char *digest = NULL, *tag = NULL, *registry = NULL, *repo = NULL;
	char *at = strchr(rest, '@');
	if (at) {
		*at = '\0';
		if (strchr(at + 1, '@'))
			return bad(ctx, s, "more than one '@'");
		if (!startswith(at + 1, "sha256:"))
			return bad(ctx, s, "only sha256 digests are supported");
		if (!oci_digest_valid(at + 1))
			return bad(ctx, s,
			           "the digest must be sha256: and 64 lowercase hex digits");
		digest = xstrdup(at + 1);
	}
	char *slash = strrchr(rest, '/');
	char *colon = strrchr(slash ? slash : rest, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_valid(colon + 1))
			return bad(ctx, s,
			           "bad tag (letters, digits, '_', '.', '-', at most 128, "
			           "not starting with '.' or '-')");
		tag = xstrdup(colon + 1);
	}
	if (!*rest)
		return bad(ctx, s, "no repository name");

	/* The first component names a registry when it looks like a host: it has a dot, a
	 * port or uppercase letters, or is localhost. */
	const char *path = rest;
	char *first = strchr(rest, '/');
	if (first) {
		size_t fl = (size_t)(first - rest);
		int host = memchr(rest, '.', fl) || memchr(rest, ':', fl);
		for (size_t i = 0; i < fl && !host; i++)
			if (isupper((unsigned char)rest[i]))
				host = 1;
		if (fl == 9 && startswith(rest, "localhost"))
			host = 1;
		if (host) {
			*first = '\0';
			const char *e = check_registry(rest);
			if (e)
				return bad(ctx, s, e);
			registry = xstrdup(rest);
			for (char *p = registry; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			path = first + 1;
		}
	}
	if (!registry || streq(registry, "docker.io") || streq(registry, "index.docker.io")) {
		free(registry);
		registry = xstrdup(DOCKER_HUB);
	}
	if (!*path)
		return bad(ctx, s, "no repository name");
	for (const char *p = path;;) {
		size_t l = strcspn(p, "/");
		const char *e = check_component(p, l);
		if (e)
			return bad(ctx, s, e);
		if (!p[l])
			break;
		p += l + 1;
	}
	if (streq(registry, DOCKER_HUB) && !strchr(path, '/'))
		repo = xasprintf("library/%s", path);
	else
		repo = xstrdup(path);

	struct ib_oci_ref r = {0};
	r.registry = TAKE_PTR(registry);
	r.repository = TAKE_PTR(repo);
	_cleanup_free_ char *name = ib_oci_ref_name(&r);
	if (strlen(name) > NAME_MAX_LEN) {
		ib_oci_ref_release(&r);
		return bad(ctx, s, "the name is longer than 255 characters");
	}
	if (!tag && !digest)
		tag = xstrdup("latest");
	r.tag = TAKE_PTR(tag);
	r.digest = TAKE_PTR(digest);
	r.original = xstrdup(s);
	*ret = r;
	return 0;
}

char *ib_oci_ref_name(const struct ib_oci_ref *r)
{
	const char *host = streq(r->registry, DOCKER_HUB) ? "docker.io" : r->registry;
	return xasprintf("%s/%s", host, r->repository);
}

char *ib_oci_ref_string(const struct ib_oci_ref *r)
{
	_cleanup_free_ char *name = ib_oci_ref_name(r);
	return xasprintf("%s%s%s%s%s", name, r->tag ? ":" : "", r->tag ? r->tag : "",
	                 r->digest ? "@" : "", r->digest ? r->digest : "");
}
