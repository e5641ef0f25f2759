/* bmanifest.c: the bundle's signed manifest and signature member, as text and back. */
#include <errno.h>
#include <openssl/evp.h>

#include "bundle.h"

#define MAX_ENTRIES 1000000

/* s past prefix p, or NULL when s does not start with p. */
static const char *skip_prefix(const char *s, const char *p)
{
	size_t n = strlen(p);
	return strncmp(s, p, n) == 0 ? s + n : NULL;
}

static int is_hex64(const char *s, size_t n)
{
	if (n != 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* A relative path of clean components: no "", ".", "..", no control bytes or spaces
 * (the manifest is space-separated). */
static int rel_valid(const char *p)
{
	if (!*p || strlen(p) > 1024)
		return 0;
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '\\')
			return 0;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/' && !*++p)
			return 0; /* trailing slash */
	}
	return 1;
}

int ib_bundle_path_valid(const char *path)
{
	const char *rest;
	if (!path)
		return 0;
	if ((rest = skip_prefix(path, "cache/blobs/sha256/")))
		return ib_cas_hex_valid(rest);
	if ((rest = skip_prefix(path, "cache/refs/"))) {
		size_t k = strcspn(rest, "/");
		if (k == 0 || k > 64 || rest[k] != '/')
			return 0;
		for (size_t i = 0; i < k; i++)
			if (!((rest[i] >= 'a' && rest[i] <= 'z') ||
			      (rest[i] >= '0' && rest[i] <= '9') || rest[i] == '-' ||
			      rest[i] == '_'))
				return 0;
		return ib_cas_hex_valid(rest + k + 1);
	}
	if ((rest = skip_prefix(path, "project/")))
		return rel_valid(rest);
	if ((rest = skip_prefix(path, "images/")))
		return rel_valid(rest) && !strchr(rest, '/');
	return 0;
}

void ib_bundle_manifest_format(const struct ib_bundle_manifest *m, struct strbuf *out)
{
	sb_addf(out, "%s\n", IB_BUNDLE_FORMAT);
	sb_addf(out, "tool %s\n", m->tool);
	sb_addf(out, "created %lld\n", m->created);
	sb_addf(out, "signer %s\n", m->signer);
	for (size_t i = 0; i < m->roles.n; i++)
		sb_addf(out, "role %s\n", m->roles.v[i]);
	for (size_t i = 0; i < m->n; i++)
		sb_addf(out, "%s %s %llu %s\n", m->v[i].exec ? "xfile" : "file", m->v[i].sha256,
		        (unsigned long long)m->v[i].size, m->v[i].path);
}

void ib_bundle_manifest_release(struct ib_bundle_manifest *m)
{
	if (!m)
		return;
	free(m->tool);
	strv_release(&m->roles);
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static int parse_entry(const char *rest, struct ib_bundle_entry *e)
{
	const char *sp = strchr(rest, ' ');
	if (!sp || !is_hex64(rest, (size_t)(sp - rest)))
		return -1;
	memcpy(e->sha256, rest, 64);
	e->sha256[64] = '\0';
	const char *num = sp + 1;
	if (*num < '0' || *num > '9' || (num[0] == '0' && num[1] != ' '))
		return -1;
	char *end;
	errno = 0;
	unsigned long long size = strtoull(num, &end, 10);
	if (errno || *end != ' ')
		return -1;
	e->size = size;
	if (!ib_bundle_path_valid(end + 1))
		return -1;
	e->path = xstrdup(end + 1);
	return 0;
}

int ib_bundle_manifest_parse(struct ib_ctx *ctx, const char *text, size_t len,
                             struct ib_bundle_manifest *ret)
{
	struct ib_bundle_manifest m = {0};
	size_t alloc = 0, lineno = 0;
	int have_created = 0, r = 0;
	const char *p = text, *end = text + len;
	const char *why = NULL;

	if (len == 0 || text[len - 1] != '\n' || memchr(text, '\0', len)) {
		why = "not a text ending in a newline";
		goto bad;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		_cleanup_free_ char *line = xstrndup(p, (size_t)(nl - p));
		p = nl + 1;
		lineno++;
		const char *rest;
		if (lineno == 1) {
			if (!streq(line, IB_BUNDLE_FORMAT)) {
				why = "not an imgbuild bundle manifest (or another format version)";
				goto bad;
			}
		} else if (lineno == 2 && (rest = skip_prefix(line, "tool ")) && *rest) {
			m.tool = xstrdup(rest);
		} else if (lineno == 3 && (rest = skip_prefix(line, "created "))) {
			char *e;
			errno = 0;
			m.created = strtoll(rest, &e, 10);
			if (errno || e == rest || *e || m.created < 0) {
				why = "bad creation time";
				goto bad;
			}
			have_created = 1;
		} else if (lineno == 4 && (rest = skip_prefix(line, "signer ")) &&
		           is_hex64(rest, strlen(rest))) {
			memcpy(m.signer, rest, 65);
		} else if (lineno > 4 && m.n == 0 && (rest = skip_prefix(line, "role ")) && *rest &&
		           !strpbrk(rest, " \t")) {
			strv_push(&m.roles, rest);
		} else if (lineno > 4 && ((rest = skip_prefix(line, "file ")) ||
		                          (rest = skip_prefix(line, "xfile ")))) {
			if (m.n == MAX_ENTRIES) {
				why = "too many members";
				goto bad;
			}
			if (m.n == alloc)
				m.v = xrealloc(m.v,
				               (alloc = alloc ? 2 * alloc : 64) * sizeof(*m.v));
			struct ib_bundle_entry e = {0};
			/* The mode is signed too: a script's executable bit is an input of the
			 * role's digest, so it must come back as it was. */
			e.exec = line[0] == 'x';
			if (parse_entry(rest, &e) < 0 ||
			    (e.exec && !startswith(e.path, "project/"))) {
				free(e.path);
				why = "bad member line (want 'file <sha256> <size> <path>' with a "
				      "path under cache/, project/ or images/, or 'xfile' for an "
				      "executable project file)";
				goto bad;
			}
			m.v[m.n++] = e;
			if (m.n > 1 && strcmp(m.v[m.n - 2].path, e.path) >= 0) {
				why = "members out of order or listed twice";
				goto bad;
			}
			const char *hex = skip_prefix(e.path, "cache/blobs/sha256/");
			if (hex && !streq(hex, e.sha256)) {
				why = "a cache entry whose name is not its digest";
				goto bad;
			}
		} else {
			why = "unexpected line";
			goto bad;
		}
	}
	if (!m.tool || !have_created || !m.signer[0]) {
		why = "incomplete header";
		lineno++;
		goto bad;
	}
	*ret = m;
	return 0;
bad:
	r = ib_error(ctx, IB_E_VERIFY, "bundle MANIFEST line %zu: %s", lineno ? lineno : 1, why);
	ib_bundle_manifest_release(&m);
	return r;
}

static int cmp_entry_path(const void *key, const void *e)
{
	return strcmp(key, ((const struct ib_bundle_entry *)e)->path);
}

const struct ib_bundle_entry *ib_bundle_manifest_find(const struct ib_bundle_manifest *m,
                                                      const char *path)
{
	if (!m->n)
		return NULL;
	return bsearch(path, m->v, m->n, sizeof(*m->v), cmp_entry_path);
}

char *ib_bundle_sig_format(const unsigned char sig[64])
{
	unsigned char b64[4 * 64 / 3 + 4];
	EVP_EncodeBlock(b64, sig, 64);
	return xasprintf("ed25519 %s\n", (const char *)b64);
}

int ib_bundle_sig_parse(struct ib_ctx *ctx, const char *text, size_t len, unsigned char sig[64])
{
	/* 64 bytes are 88 base64 characters, the last two "==" padding. */
	const char *b = len == 8 + 88 + 1 ? skip_prefix(text, "ed25519 ") : NULL;
	unsigned char raw[66];
	if (!b || text[len - 1] != '\n' || memchr(b, '\n', 88) ||
	    EVP_DecodeBlock(raw, (const unsigned char *)b, 88) != 66 || b[86] != '=' ||
	    b[87] != '=')
		return ib_error(ctx, IB_E_VERIFY,
		                "bundle %s is malformed (want 'ed25519 <base64>')",
		                IB_BUNDLE_SIGNATURE);
	memcpy(sig, raw, 64);
	return 0;
}
