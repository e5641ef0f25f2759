/* imds.c: EC2 instance metadata, IMDSv2 only (a PUT for a session token first). */
#include "config.h"
#include "http.h"
#include "util/jsonr.h"

#define TOKEN_TTL_HEADER "X-aws-ec2-metadata-token-ttl-seconds: 21600"

/* One metadata exchange: short timeouts and no retry, so that a machine off EC2 (where the
 * link-local address answers nothing) loses at most a second or two. */
static int imds_do(struct ib_ctx *ctx, const char *method, const char *endpoint, const char *path,
                   const char *header, long timeout_ms, char **ret)
{
	_cleanup_free_ char *url = xasprintf("%s%s", endpoint, path);
	const char *hdrs[] = {header, NULL};
	struct aws_http_req r = {
	        .method = method,
	        .url = url,
	        .headers = hdrs,
	        .connect_timeout_ms = timeout_ms,
	        .timeout_ms = 2 * timeout_ms,
	        .max_response = 64 * 1024,
	};
	struct aws_http_resp resp;
	if (aws_http_do(&r, &resp) < 0) {
		int e = ib_error(ctx, IB_E_NETWORK, "instance metadata %s %s: %s", method, url,
		                 resp.err);
		aws_http_resp_release(&resp);
		return e;
	}
	if (resp.status != 200) {
		aws_http_resp_release(&resp);
		return ib_error(ctx, IB_E_NETWORK, "instance metadata %s %s: HTTP status %ld",
		                method, url, resp.status);
	}
	*ret = TAKE_PTR(resp.body);
	aws_http_resp_release(&resp);
	return 0;
}

static int imds_token(struct ib_ctx *ctx, const char *endpoint, long timeout_ms, char **hdr)
{
	_cleanup_free_ char *token = NULL;
	int r = imds_do(ctx, "PUT", endpoint, "/latest/api/token", TOKEN_TTL_HEADER, timeout_ms,
	                &token);
	if (r < 0)
		return r;
	size_t l = strcspn(token, "\r\n");
	if (l == 0)
		return ib_error(ctx, IB_E_NETWORK, "instance metadata gave an empty token");
	token[l] = '\0';
	*hdr = xasprintf("X-aws-ec2-metadata-token: %s", token);
	explicit_bzero(token, l);
	return 0;
}

int aws_imds_credentials(struct ib_ctx *ctx, const char *endpoint, long timeout_ms,
                         struct aws_config *c)
{
	_cleanup_free_ char *hdr = NULL, *roles = NULL, *doc = NULL;
	int r = imds_token(ctx, endpoint, timeout_ms, &hdr);
	if (r < 0)
		return r;
	const char *base = "/latest/meta-data/iam/security-credentials/";
	r = imds_do(ctx, "GET", endpoint, base, hdr, timeout_ms, &roles);
	if (r < 0)
		return r;
	size_t l = strcspn(roles, "\r\n");
	if (l == 0)
		return ib_error(ctx, IB_E_NETWORK, "instance metadata: the instance has no role");
	roles[l] = '\0';
	for (const char *p = roles; *p; p++)
		if (*p == '/' || *p == '?' || *p == '#' || *p == '%')
			return ib_error(ctx, IB_E_NETWORK, "instance metadata: bad role name");
	_cleanup_free_ char *path = xasprintf("%s%s", base, roles);
	r = imds_do(ctx, "GET", endpoint, path, hdr, timeout_ms, &doc);
	if (r < 0)
		return r;
	_cleanup_jsonr_ struct jsonr *j = NULL;
	r = jsonr_parse(ctx, IB_E_NETWORK, "instance credentials", doc, strlen(doc), &j);
	explicit_bzero(doc, strlen(doc));
	if (r < 0)
		return r;
	const char *code = jsonr_get_str(j, "Code");
	const char *ak = jsonr_get_str(j, "AccessKeyId");
	const char *sk = jsonr_get_str(j, "SecretAccessKey");
	const char *tok = jsonr_get_str(j, "Token");
	const char *exp = jsonr_get_str(j, "Expiration");
	if ((code && !streq(code, "Success")) || !ak || !sk || !tok)
		return ib_error(ctx, IB_E_NETWORK,
		                "instance metadata: no credentials for role '%s' (Code %s)", roles,
		                code ? code : "missing");
	c->access_key = xstrdup(ak);
	c->secret_key = xstrdup(sk);
	c->token = xstrdup(tok);
	struct tm tm = {0};
	if (exp && strptime(exp, "%Y-%m-%dT%H:%M:%SZ", &tm))
		c->expiration = timegm(&tm);
	return 0;
}

int aws_imds_region(struct ib_ctx *ctx, const char *endpoint, long timeout_ms, char **ret)
{
	_cleanup_free_ char *hdr = NULL, *region = NULL;
	int r = imds_token(ctx, endpoint, timeout_ms, &hdr);
	if (r < 0)
		return r;
	r = imds_do(ctx, "GET", endpoint, "/latest/meta-data/placement/region", hdr, timeout_ms,
	            &region);
	if (r < 0)
		return r;
	region[strcspn(region, "\r\n")] = '\0';
	if (!*region)
		return ib_error(ctx, IB_E_NETWORK, "instance metadata gave an empty region");
	*ret = TAKE_PTR(region);
	return 0;
}
