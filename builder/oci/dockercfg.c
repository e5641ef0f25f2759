/* dockercfg.c: registry credentials from docker's config.json ("auths"), and base64. */
#include <ctype.h>
#include <errno.h>

#include "oci/oci_internal.h"
#include "util/fs.h"

#define CONFIG_MAX ((size_t)1 << 20)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *oci_base64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = b64[(v >> 18) & 63];
		*o++ = b64[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

int oci_base64_decode(const char *in, char **ret, size_t *ret_len)
{
	size_t n = strlen(in);
	while (n > 0 && in[n - 1] == '=')
		n--;
	if (strlen(in) - n > 2 || n % 4 == 1)
		return -1;
	/* Padding, when present, must complete the last quantum. */
	if (strlen(in) != n && strlen(in) % 4 != 0)
		return -1;
	char *out = xmalloc(n / 4 * 3 + 3), *o = out;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		const char *c = strchr(b64, in[i]);
		if (!in[i] || !c) {
			free(out);
			return -1;
		}
		acc = (acc << 6) | (unsigned)(c - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (char)((acc >> bits) & 0xff);
		}
	}
	/* Leftover bits must be zero: one encoding per byte string. */
	if (acc & ((1u << bits) - 1)) {
		free(out);
		return -1;
	}
	*o = '\0';
	*ret = out;
	*ret_len = (size_t)(o - out);
	return 0;
}

void oci_creds_release(struct oci_creds *c)
{
	if (!c)
		return;
	free(c->username);
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	if (c->identitytoken)
		explicit_bzero(c->identitytoken, strlen(c->identitytoken));
	free(c->identitytoken);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

/* An auths key ("https://index.docker.io/v1/", "registry:5000", "http://host/v2/") as a
 * lowercase host[:port]; Docker Hub's aliases all become registry-1.docker.io. */
static char *key_host(const char *key)
{
	if (startswith(key, "https://"))
		key += 8;
	else if (startswith(key, "http://"))
		key += 7;
	char *h = xstrndup(key, strcspn(key, "/"));
	for (char *p = h; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (streq(h, "index.docker.io") || streq(h, "docker.io") ||
	    streq(h, "registry-1.docker.io")) {
		free(h);
		h = xstrdup("registry-1.docker.io");
	}
	return h;
}

static int entry_creds(struct ib_ctx *ctx, const struct jsonr *e, const char *what, const char *key,
                       struct oci_creds *ret)
{
	if (e->type != JSONR_OBJECT)
		return ib_error(ctx, IB_E_SPEC, "%s: auths entry '%s' is %s, not an object", what,
		                key, jsonr_type_name(e->type));
	struct oci_creds c = {0};
	const char *auth = jsonr_get_str(e, "auth");
	if (auth && *auth) {
		_cleanup_free_ char *plain = NULL;
		size_t len;
		char *colon;
		if (oci_base64_decode(auth, &plain, &len) < 0 || strlen(plain) != len ||
		    !(colon = strchr(plain, ':'))) {
			if (plain)
				explicit_bzero(plain, len);
			return ib_error(ctx, IB_E_SPEC,
			                "%s: auths entry '%s': 'auth' is not "
			                "base64 of user:password",
			                what, key);
		}
		c.username = xstrndup(plain, (size_t)(colon - plain));
		c.password = xstrdup(colon + 1);
		explicit_bzero(plain, len);
	} else {
		const char *u = jsonr_get_str(e, "username"), *p = jsonr_get_str(e, "password");
		if (u && p && *u) {
			c.username = xstrdup(u);
			c.password = xstrdup(p);
		}
	}
	const char *it = jsonr_get_str(e, "identitytoken");
	if (it && *it)
		c.identitytoken = xstrdup(it);
	if (!c.username && !c.identitytoken)
		return 0; /* an empty entry, as `docker login` with a credential store leaves */
	c.source = xstrdup(what);
	*ret = c;
	return 1;
}

int oci_creds_from_config(struct ib_ctx *ctx, const char *json, size_t len, const char *what,
                          const char *registry, struct oci_creds *ret)
{
	_cleanup_jsonr_ struct jsonr *doc = NULL;
	int r = jsonr_parse(ctx, IB_E_SPEC, what, json, len, &doc);
	if (r < 0)
		return r;
	if (doc->type != JSONR_OBJECT)
		return ib_error(ctx, IB_E_SPEC, "%s: not a JSON object", what);
	const struct jsonr *auths = jsonr_get(doc, "auths");
	if (!auths)
		return 0;
	if (auths->type != JSONR_OBJECT)
		return ib_error(ctx, IB_E_SPEC, "%s: 'auths' is %s, not an object", what,
		                jsonr_type_name(auths->type));
	_cleanup_free_ char *want = key_host(registry);
	for (size_t i = 0; i < auths->n; i++) {
		_cleanup_free_ char *h = key_host(auths->keys[i]);
		if (!streq(h, want))
			continue;
		r = entry_creds(ctx, &auths->items[i], what, auths->keys[i], ret);
		if (r != 0)
			return r;
	}
	return 0;
}

int oci_creds_load(struct ib_ctx *ctx, const char *registry, struct oci_creds *ret)
{
	_cleanup_free_ char *path = NULL;
	const char *dir = getenv("DOCKER_CONFIG");
	const char *home = getenv("HOME");
	if (dir && *dir)
		path = ib_path_join(dir, "config.json");
	else if (home && *home)
		path = xasprintf("%s/.docker/config.json", home);
	else
		return 0;
	if (!ib_exists(path))
		return 0;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = ib_read_file(ctx, path, CONFIG_MAX, &text, &len);
	if (r < 0)
		return r;
	r = oci_creds_from_config(ctx, text, len, path, registry, ret);
	explicit_bzero(text, len);
	return r;
}
