/* registry.c: the distribution API for one repository: manifest GETs, 401 -> auth, blob URLs. */
#include <strings.h>

#include "oci/oci_internal.h"
#include "util/strbuf.h"

static const char accept_header[] =
        "Accept: " OCI_MT_INDEX ", " OCI_MT_MANIFEST ", " DOCKER_MT_LIST ", " DOCKER_MT_MANIFEST;

void oci_session_init(struct oci_session *s, struct ib_ctx *ctx, const struct ib_fetch_opts *o,
                      const struct ib_oci_ref *ref)
{
	memset(s, 0, sizeof(*s));
	s->ctx = ctx;
	s->o = o;
	s->ref = ref;
	/* Loopback registries speak plain HTTP, as docker's default insecure range allows. */
	const char *scheme = oci_host_is_loopback(ref->registry) ? "http" : "https";
	s->base = xasprintf("%s://%s/v2/%s/", scheme, ref->registry, ref->repository);
}

void oci_session_release(struct oci_session *s)
{
	free(s->base);
	if (s->authz)
		explicit_bzero(s->authz, strlen(s->authz));
	free(s->authz);
	memset(s, 0, sizeof(*s));
}

char *oci_blob_url(const struct oci_session *s, const char *digest)
{
	return xasprintf("%sblobs/%s", s->base, digest);
}

/* The value of header name (lowercase, with the colon) among header lines, or NULL. */
static char *header_value(const char *headers, const char *name)
{
	size_t nl = strlen(name);
	for (const char *line = headers; line && *line;) {
		size_t len = strcspn(line, "\r\n");
		if (len > nl && strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl, *e = line + len;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			return xstrndup(v, (size_t)(e - v));
		}
		line += len;
		line += strspn(line, "\r\n");
	}
	return NULL;
}

/* The first message of a registry's {"errors":[{"code":..,"message":..}]} body, or "". */
static void registry_message(const char *body, size_t len, char *out, size_t n)
{
	out[0] = '\0';
	struct jsonr *doc = NULL;
	struct jsonr_error e;
	if (!body || jsonr_parse_ex(body, len, NULL, &doc, &e) < 0)
		return;
	const struct jsonr *errs = jsonr_get_type(doc, "errors", JSONR_ARRAY);
	if (errs && errs->n > 0) {
		const char *code = jsonr_get_str(&errs->items[0], "code");
		const char *msg = jsonr_get_str(&errs->items[0], "message");
		snprintf(out, n, ": %.64s%s%.200s", code ? code : "", code && msg ? " " : "",
		         msg ? msg : "");
	}
	jsonr_free(doc);
}

/* GET a URL relative to the repository, authenticating once on a 401. */
static int session_get(struct oci_session *s, const char *rel, const char *accept, size_t max,
                       char **ret_body, size_t *ret_len, long *ret_status, char **ret_headers)
{
	_cleanup_free_ char *raw = xasprintf("%s%s", s->base, rel);
	_cleanup_free_ char *url = ib_mirror_url(s->o->mirror, raw);
	for (int attempt = 0;; attempt++) {
		const char *headers[3] = {NULL, NULL, NULL};
		size_t h = 0;
		if (accept)
			headers[h++] = accept;
		if (s->authz)
			headers[h++] = s->authz;
		_cleanup_free_ char *body = NULL, *hdrs = NULL;
		size_t len = 0;
		long status = 0;
		int r = ib_http_get(s->ctx, s->o, url, headers, max, &body, &len, &status, &hdrs);
		if (r < 0)
			return r;
		if (status == 0 && startswith(url, "file://"))
			status = 200; /* a mirror directory */
		if (status == 401 && attempt == 0 && !s->authz) {
			struct oci_challenge c = {0};
			r = oci_challenge_from_headers(s->ctx, hdrs, &c);
			if (r == 0)
				return ib_error(
				        s->ctx, IB_E_NETWORK,
				        "%s answered 401 without a WWW-Authenticate challenge",
				        url);
			if (r > 0) {
				r = oci_authorize(s->ctx, s->o, s->ref, &c, &s->authz);
				oci_challenge_release(&c);
			}
			if (r < 0)
				return r;
			continue;
		}
		*ret_status = status;
		*ret_len = len;
		*ret_body = TAKE_PTR(body);
		if (ret_headers)
			*ret_headers = TAKE_PTR(hdrs);
		return 0;
	}
}

int oci_get_manifest(struct oci_session *s, const char *reference, char **ret_body, size_t *ret_len,
                     char ret_digest[72])
{
	_cleanup_free_ char *rel = xasprintf("manifests/%s", reference);
	_cleanup_free_ char *body = NULL, *hdrs = NULL;
	size_t len = 0;
	long status = 0;
	int r = session_get(s, rel, accept_header, OCI_MANIFEST_MAX, &body, &len, &status, &hdrs);
	if (r < 0)
		return r;
	_cleanup_free_ char *name = ib_oci_ref_name(s->ref);
	char msg[300];
	if (status != 200) {
		registry_message(body, len, msg, sizeof(msg));
		if (status == 401 || status == 403)
			return ib_error(s->ctx, IB_E_NETWORK,
			                "registry %s refused access to %s (HTTP %ld%s)",
			                s->ref->registry, name, status, msg);
		if (status == 404)
			return ib_error(s->ctx, IB_E_NETWORK, "%s: no manifest '%s' (HTTP 404%s)",
			                name, reference, msg);
		return ib_error(s->ctx, IB_E_NETWORK, "%s: manifest '%s': HTTP %ld%s", name,
		                reference, status, msg);
	}
	ret_digest[0] = '\0';
	_cleanup_free_ char *dcd = header_value(hdrs, "docker-content-digest:");
	if (dcd && oci_digest_valid(dcd))
		snprintf(ret_digest, 72, "%s", dcd);
	else if (dcd)
		ib_log(s->ctx, IB_LOG_DEBUG, "%s: ignoring Docker-Content-Digest '%.100s'", name,
		       dcd);
	*ret_len = len;
	*ret_body = TAKE_PTR(body);
	return 0;
}

int oci_session_authenticate(struct oci_session *s)
{
	/* Mirrors are anonymous; a session that already has credentials is done. */
	if (s->authz || (s->o->mirror && *s->o->mirror))
		return 0;
	/* The API root answers 401 with the challenge when the registry wants a token;
	 * session_get then asks for one scoped to this repository. */
	_cleanup_free_ char *root = NULL;
	{
		const char *v2 = strstr(s->base, "/v2/");
		root = xstrndup(s->base, (size_t)(v2 - s->base) + 4);
	}
	_cleanup_free_ char *saved = s->base;
	s->base = root;
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	long status = 0;
	int r = session_get(s, "", NULL, 64 * 1024, &body, &len, &status, NULL);
	s->base = TAKE_PTR(saved);
	if (r < 0)
		return r;
	if (status != 200)
		return ib_error(s->ctx, IB_E_NETWORK, "registry %s: %sv2/ answered HTTP %ld",
		                s->ref->registry, root, status);
	return 0;
}
