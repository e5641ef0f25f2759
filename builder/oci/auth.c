/* auth.c: registry authentication: the WWW-Authenticate challenge, bearer tokens, Basic. */
#include <ctype.h>
#include <curl/curl.h>
#include <strings.h>

#include "oci/oci_internal.h"
#include "util/strbuf.h"

#define CHALLENGE_MAX  8192
#define TOKEN_BODY_MAX ((size_t)1 << 20)
#define TOKEN_MAX      16384

void oci_challenge_release(struct oci_challenge *c)
{
	if (!c)
		return;
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	memset(c, 0, sizeof(*c));
}

/* RFC 7230 tchar. */
static int is_tchar(char c)
{
	return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_sp(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A token or a quoted-string at p: the value (caller frees) and the position after it. */
static const char *param_value(const char *p, char **ret)
{
	if (*p == '"') {
		struct strbuf sb = STRBUF_INIT;
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if ((unsigned char)*p < 0x20 && *p != '\t') {
				sb_release(&sb);
				return NULL;
			}
			sb_addc(&sb, *p);
		}
		if (*p != '"') {
			sb_release(&sb);
			return NULL;
		}
		*ret = sb_take(&sb);
		return p + 1;
	}
	const char *s = p;
	while (is_tchar(*p) || *p == '/' || *p == ':' || *p == '=')
		p++; /* token68-ish: tolerate the unquoted URLs some servers send */
	if (p == s)
		return NULL;
	*ret = xstrndup(s, (size_t)(p - s));
	return p;
}

int oci_challenge_parse(struct ib_ctx *ctx, const char *value, struct oci_challenge *ret)
{
	if (strlen(value) > CHALLENGE_MAX)
		return ib_error(ctx, IB_E_NETWORK,
		                "WWW-Authenticate challenge longer than %d bytes", CHALLENGE_MAX);
	const char *p = skip_sp(value), *s = p;
	while (is_tchar(*p))
		p++;
	if (p == s)
		return ib_error(ctx, IB_E_NETWORK, "malformed WWW-Authenticate challenge '%.200s'",
		                value);
	struct oci_challenge c = {0};
	c.scheme = xstrndup(s, (size_t)(p - s));
	for (char *q = c.scheme; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	if (!streq(c.scheme, "bearer") && !streq(c.scheme, "basic")) {
		int r = ib_error(ctx, IB_E_NETWORK,
		                 "unsupported registry authentication scheme '%.40s' (Bearer and "
		                 "Basic are)",
		                 c.scheme);
		oci_challenge_release(&c);
		return r;
	}
	for (;;) {
		p = skip_sp(p);
		while (*p == ',')
			p = skip_sp(p + 1);
		if (!*p)
			break;
		const char *ks = p;
		while (is_tchar(*p))
			p++;
		size_t kl = (size_t)(p - ks);
		const char *eq = skip_sp(p);
		if (kl == 0 || *eq != '=') {
			if (kl > 0 && p > ks && (*p == ' ' || !*p))
				break; /* the next challenge begins: only the first counts */
			oci_challenge_release(&c);
			return ib_error(ctx, IB_E_NETWORK,
			                "malformed WWW-Authenticate challenge '%.200s'", value);
		}
		char *v = NULL;
		p = param_value(skip_sp(eq + 1), &v);
		if (!p) {
			oci_challenge_release(&c);
			return ib_error(ctx, IB_E_NETWORK,
			                "malformed WWW-Authenticate challenge '%.200s'", value);
		}
		char **slot = NULL;
		if (kl == 5 && strncasecmp(ks, "realm", 5) == 0)
			slot = &c.realm;
		else if (kl == 7 && strncasecmp(ks, "service", 7) == 0)
			slot = &c.service;
		else if (kl == 5 && strncasecmp(ks, "scope", 5) == 0)
			slot = &c.scope;
		if (slot && !*slot)
			*slot = v;
		else
			free(v); /* error=, error_description= and the like */
	}
	if (streq(c.scheme, "bearer") && (!c.realm || !*c.realm)) {
		oci_challenge_release(&c);
		return ib_error(ctx, IB_E_NETWORK,
		                "WWW-Authenticate Bearer challenge without a realm: '%.200s'",
		                value);
	}
	*ret = c;
	return 0;
}

int oci_challenge_from_headers(struct ib_ctx *ctx, const char *headers, struct oci_challenge *ret)
{
	static const char name[] = "www-authenticate:";
	int found = 0;
	struct oci_challenge best = {0};
	for (const char *line = headers; line && *line;) {
		size_t len = strcspn(line, "\r\n");
		if (len > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0) {
			_cleanup_free_ char *v =
			        xstrndup(line + sizeof(name) - 1, len - (sizeof(name) - 1));
			struct oci_challenge c = {0};
			int r = oci_challenge_parse(ctx, v, &c);
			if (r < 0) {
				oci_challenge_release(&best);
				return r;
			}
			if (!found ||
			    (streq(c.scheme, "bearer") && !streq(best.scheme, "bearer"))) {
				oci_challenge_release(&best);
				best = c;
				found = 1;
			} else {
				oci_challenge_release(&c);
			}
		}
		line += len;
		line += strspn(line, "\r\n");
	}
	if (found)
		*ret = best;
	return found;
}

static void url_escape(struct strbuf *sb, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p))
			sb_addc(sb, (char)*p);
		else
			sb_addf(sb, "%%%02X", *p);
	}
}

char *oci_token_url(const struct oci_challenge *c, const char *scope)
{
	struct strbuf sb = STRBUF_INIT;
	sb_adds(&sb, c->realm);
	char sep = strchr(c->realm, '?') ? '&' : '?';
	if (c->service) {
		sb_addc(&sb, sep);
		sb_adds(&sb, "service=");
		url_escape(&sb, c->service);
		sep = '&';
	}
	const char *sc = c->scope ? c->scope : scope;
	if (sc) {
		sb_addc(&sb, sep);
		sb_adds(&sb, "scope=");
		url_escape(&sb, sc);
	}
	return sb_take(&sb);
}

int oci_token_from_json(struct ib_ctx *ctx, const char *body, size_t len, const char *what,
                        char **ret_token)
{
	_cleanup_jsonr_ struct jsonr *doc = NULL;
	int r = jsonr_parse(ctx, IB_E_NETWORK, what, body, len, &doc);
	if (r < 0)
		return r;
	const char *t = jsonr_get_str(doc, "token");
	if (!t || !*t)
		t = jsonr_get_str(doc, "access_token");
	if (!t || !*t)
		return ib_error(ctx, IB_E_NETWORK, "%s: no token in the answer", what);
	if (strlen(t) > TOKEN_MAX)
		return ib_error(ctx, IB_E_NETWORK, "%s: token longer than %d bytes", what,
		                TOKEN_MAX);
	/* It goes into a header line: visible ASCII only. */
	for (const char *p = t; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return ib_error(ctx, IB_E_NETWORK,
			                "%s: token holds a character that "
			                "cannot go in a header",
			                what);
	*ret_token = xstrdup(t);
	return 0;
}

/* ---- hosts ---- */

int oci_host_is_loopback(const char *h)
{
	if (startswith(h, "[")) {
		return startswith(h, "[::1]");
	}
	size_t n = strcspn(h, ":/");
	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return 1;
	unsigned a, b, c, d;
	char tail;
	_cleanup_free_ char *host = xstrndup(h, n);
	if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
	    c < 256 && d < 256)
		return 1;
	return 0;
}

int oci_url_host_is_loopback(const char *url)
{
	const char *p = strstr(url, "://");
	if (!p)
		return 0;
	p += 3;
	size_t alen = strcspn(p, "/?#");
	const char *at = memchr(p, '@', alen);
	if (at)
		p = at + 1;
	return oci_host_is_loopback(p);
}

/* ---- the token request ---- */

struct post_buf {
	struct strbuf sb;
	int too_big;
};

static size_t post_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct post_buf *b = userp;
	size_t n = size * nmemb;
	if (b->sb.len + n > TOKEN_BODY_MAX) {
		b->too_big = 1;
		return 0;
	}
	sb_add(&b->sb, data, n);
	return n;
}

/* OAuth2 refresh-token grant (what docker does with an identity token): a form POST. */
static int token_post(struct ib_ctx *ctx, const struct ib_fetch_opts *o, const char *realm,
                      const char *form, long *ret_status, char **ret_body, size_t *ret_len)
{
	CURL *e = curl_easy_init();
	if (!e)
		return ib_error(ctx, IB_E_LIB, "cannot initialise libcurl");
	char errbuf[CURL_ERROR_SIZE] = "";
	struct post_buf b = {STRBUF_INIT, 0};
	curl_easy_setopt(e, CURLOPT_URL, realm);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, post_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT,
	                 o->connect_timeout > 0 ? o->connect_timeout : 15L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(e, CURLOPT_USERAGENT, "imgbuild/" IMGBUILD_VERSION);
	CURLcode res = curl_easy_perform(e);
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	if (res != CURLE_OK) {
		sb_release(&b.sb);
		if (b.too_big)
			return ib_error(ctx, IB_E_NETWORK,
			                "token server '%s': answer larger than "
			                "%zu bytes",
			                realm, TOKEN_BODY_MAX);
		return ib_error(ctx, IB_E_NETWORK, "token server '%s': %s", realm,
		                *errbuf ? errbuf : curl_easy_strerror(res));
	}
	*ret_status = status;
	*ret_len = b.sb.len;
	*ret_body = sb_take(&b.sb);
	return 0;
}

static int realm_allowed(struct ib_ctx *ctx, const char *realm)
{
	if (strncasecmp(realm, "https://", 8) == 0)
		return 0;
	if (strncasecmp(realm, "http://", 7) == 0 && oci_url_host_is_loopback(realm))
		return 0;
	return ib_error(ctx, IB_E_NETWORK, "token realm '%.200s' is not an https URL", realm);
}

static int bearer(struct ib_ctx *ctx, const struct ib_fetch_opts *o, const struct ib_oci_ref *ref,
                  const struct oci_challenge *c, const struct oci_creds *cr, int have,
                  char **ret_header)
{
	int r = realm_allowed(ctx, c->realm);
	if (r < 0)
		return r;
	_cleanup_free_ char *scope = xasprintf("repository:%s:pull", ref->repository);
	/* The realm is where the registry sent us: never through the artifact mirror. */
	struct ib_fetch_opts direct = *o;
	direct.mirror = NULL;
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	long status = 0;
	if (have && cr->identitytoken) {
		struct strbuf form = STRBUF_INIT;
		sb_adds(&form, "grant_type=refresh_token&client_id=imgbuild&refresh_token=");
		url_escape(&form, cr->identitytoken);
		if (c->service) {
			sb_adds(&form, "&service=");
			url_escape(&form, c->service);
		}
		sb_adds(&form, "&scope=");
		url_escape(&form, c->scope ? c->scope : scope);
		r = token_post(ctx, &direct, c->realm, sb_str(&form), &status, &body, &len);
		explicit_bzero(form.buf, form.len);
		sb_release(&form);
	} else {
		_cleanup_free_ char *url = oci_token_url(c, scope);
		_cleanup_free_ char *authz = NULL;
		if (have && cr->username) {
			_cleanup_free_ char *up = xasprintf("%s:%s", cr->username, cr->password);
			_cleanup_free_ char *enc = oci_base64_encode(up, strlen(up));
			authz = xasprintf("Authorization: Basic %s", enc);
			explicit_bzero(up, strlen(up));
		}
		const char *headers[] = {authz, NULL};
		r = ib_http_get(ctx, &direct, url, authz ? headers : NULL, TOKEN_BODY_MAX, &body,
		                &len, &status, NULL);
		if (authz)
			explicit_bzero(authz, strlen(authz));
	}
	if (r < 0)
		return r;
	if (status != 200) {
		if (have && (status == 401 || status == 403))
			return ib_error(ctx, IB_E_NETWORK,
			                "token server '%s' refused the credentials for %s from %s "
			                "(HTTP %ld)",
			                c->realm, ref->registry, cr->source, status);
		return ib_error(ctx, IB_E_NETWORK, "token server '%s' answered HTTP %ld for %s",
		                c->realm, status, ref->repository);
	}
	_cleanup_free_ char *what = xasprintf("token server '%s'", c->realm);
	_cleanup_free_ char *token = NULL;
	r = oci_token_from_json(ctx, body, len, what, &token);
	if (r < 0)
		return r;
	*ret_header = xasprintf("Authorization: Bearer %s", token);
	return 0;
}

int oci_authorize(struct ib_ctx *ctx, const struct ib_fetch_opts *o, const struct ib_oci_ref *ref,
                  const struct oci_challenge *c, char **ret_header)
{
	struct oci_creds cr = {0};
	int have = oci_creds_load(ctx, ref->registry, &cr);
	if (have < 0)
		return have;
	int r;
	if (streq(c->scheme, "basic")) {
		if (!have || !cr.username) {
			r = ib_error(ctx, IB_E_NETWORK,
			             "registry %s asks for a user name and password, and no docker "
			             "config (~/.docker/config.json or $DOCKER_CONFIG) holds them",
			             ref->registry);
		} else {
			_cleanup_free_ char *up = xasprintf("%s:%s", cr.username, cr.password);
			_cleanup_free_ char *enc = oci_base64_encode(up, strlen(up));
			*ret_header = xasprintf("Authorization: Basic %s", enc);
			explicit_bzero(up, strlen(up));
			r = 0;
		}
	} else {
		r = bearer(ctx, o, ref, c, &cr, have, ret_header);
	}
	oci_creds_release(&cr);
	return r;
}
