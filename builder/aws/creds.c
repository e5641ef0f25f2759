/* creds.c: resolve credentials, region and endpoints as the aws CLI does (see config.h). */
#include <ctype.h>

#include "config.h"

#define DEFAULT_IMDS "http://169.254.169.254"

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static char *home_file(const char *envname, const char *rel)
{
	const char *v = env(envname);
	if (v) {
		if (v[0] == '~' && v[1] == '/' && env("HOME"))
			return xasprintf("%s%s", env("HOME"), v + 1);
		return xstrdup(v);
	}
	const char *home = env("HOME");
	return xasprintf("%s/%s", home ? home : "", rel);
}

void aws_config_release(struct aws_config *c)
{
	if (c->secret_key)
		explicit_bzero(c->secret_key, strlen(c->secret_key));
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	free(c->access_key);
	free(c->secret_key);
	free(c->token);
	free(c->region);
	free(c->endpoint_url);
	free(c->profile);
	free(c->creds_source);
	free(c->ec2_endpoint);
	free(c->ebs_endpoint);
	memset(c, 0, sizeof(*c));
}

/* One key of the profile: the credentials file ([NAME]) first when creds, then the config
 * file ([profile NAME], or [default]). found is set when a section for the profile exists. */
static int profile_get(struct ib_ctx *ctx, const char *creds_path, const char *config_path,
                       const char *profile, const char *key, int creds_first, char **ret,
                       int *found)
{
	int sec = 0, r;
	*ret = NULL;
	if (creds_first) {
		r = aws_ini_get(ctx, creds_path, profile, key, ret, &sec);
		if (r < 0)
			return r;
		*found |= sec;
		if (*ret)
			return 0;
	}
	_cleanup_free_ char *section = xasprintf("profile %s", profile);
	r = aws_ini_get(ctx, config_path, section, key, ret, &sec);
	if (r < 0)
		return r;
	*found |= sec;
	if (!*ret && streq(profile, "default")) {
		r = aws_ini_get(ctx, config_path, "default", key, ret, &sec);
		if (r < 0)
			return r;
		*found |= sec;
	}
	return 0;
}

static int truthy(const char *v)
{
	return v && (strcasecmp(v, "true") == 0 || streq(v, "1"));
}

int aws_config_load(struct ib_ctx *ctx, const struct aws_config_opts *o, struct aws_config *ret)
{
	struct aws_config c = {0};
	_cleanup_free_ char *creds_path =
	        home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	_cleanup_free_ char *config_path = home_file("AWS_CONFIG_FILE", ".aws/config");
	const char *named = o->profile           ? o->profile
	                    : env("AWS_PROFILE") ? env("AWS_PROFILE")
	                                         : env("AWS_DEFAULT_PROFILE");
	c.profile = xstrdup(named ? named : "default");
	int found = 0, r = 0;
	char *v = NULL;
	/* Declared before the first `goto fail`, which would otherwise jump over their
	 * initialisation and free garbage on the way out. */
	_cleanup_free_ char *prof_region = NULL, *prof_endpoint = NULL;

	/* Credentials. --profile outranks the environment's keys, as in the CLI. */
	if (!o->profile && env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
		c.access_key = xstrdup(env("AWS_ACCESS_KEY_ID"));
		c.secret_key = xstrdup(env("AWS_SECRET_ACCESS_KEY"));
		c.token = env("AWS_SESSION_TOKEN") ? xstrdup(env("AWS_SESSION_TOKEN")) : NULL;
		c.creds_source = xstrdup("environment");
	}
	for (int pass = 0; !c.access_key && pass < 2; pass++) {
		/* pass 0: the credentials file; pass 1: the config file. */
		const char *path = pass == 0 ? creds_path : config_path;
		_cleanup_free_ char *ak = NULL, *sk = NULL, *tok = NULL;
		_cleanup_free_ char *section = pass == 0 || streq(c.profile, "default")
		                                       ? xstrdup(c.profile)
		                                       : xasprintf("profile %s", c.profile);
		int sec = 0;
		if ((r = aws_ini_get(ctx, path, section, "aws_access_key_id", &ak, &sec)) < 0 ||
		    (r = aws_ini_get(ctx, path, section, "aws_secret_access_key", &sk, NULL)) < 0 ||
		    (r = aws_ini_get(ctx, path, section, "aws_session_token", &tok, NULL)) < 0)
			goto fail;
		found |= sec;
		if (ak && sk) {
			c.access_key = TAKE_PTR(ak);
			c.secret_key = TAKE_PTR(sk);
			c.token = TAKE_PTR(tok);
			c.creds_source = xasprintf("profile '%s' in %s", c.profile, path);
		}
	}
	/* The profile's region and endpoint (config file, and the credentials file for
	 * whoever put them there). */
	if ((r = profile_get(ctx, creds_path, config_path, c.profile, "region", 0, &prof_region,
	                     &found)) < 0 ||
	    (r = profile_get(ctx, creds_path, config_path, c.profile, "endpoint_url", 0,
	                     &prof_endpoint, &found)) < 0)
		goto fail;
	if (named && !found && !c.creds_source) {
		r = ib_error(ctx, IB_E_USAGE, "AWS profile '%s' not found in %s or %s", c.profile,
		             creds_path, config_path);
		goto fail;
	}

	const char *imds = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	if (!imds)
		imds = DEFAULT_IMDS;
	int imds_ok = !o->no_imds && !truthy(env("AWS_EC2_METADATA_DISABLED"));
	long imds_timeout = o->imds_timeout_ms > 0 ? o->imds_timeout_ms : 1000;
	if (!c.access_key && imds_ok) {
		struct ib_ctx sub;
		ib_ctx_init_child(&sub, ctx, ctx->label);
		if (aws_imds_credentials(&sub, imds, imds_timeout, &c) == 0) {
			c.creds_source = xasprintf("instance metadata (%s)", imds);
		} else {
			ib_log(ctx, IB_LOG_DEBUG, "no instance credentials: %s", sub.err);
			imds_ok = 0; /* not on EC2: do not wait on it again for the region */
		}
	}
	if (!c.access_key && !o->allow_no_creds) {
		/* Profiles that get their keys some other way: say so rather than "no keys". */
		static const char *const other[] = {"role_arn", "credential_process", "sso_session",
		                                    "sso_start_url", "web_identity_token_file"};
		for (size_t i = 0; i < ARRAY_SIZE(other); i++) {
			_cleanup_free_ char *val = NULL;
			int f2 = 0;
			if ((r = profile_get(ctx, creds_path, config_path, c.profile, other[i], 1,
			                     &val, &f2)) < 0)
				goto fail;
			if (val) {
				r = ib_error(
				        ctx, IB_E_USAGE,
				        "AWS profile '%s' gets its credentials through %s, which "
				        "imgbuild does not support: export AWS_ACCESS_KEY_ID, "
				        "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (e.g. from "
				        "'aws configure export-credentials --format env')",
				        c.profile, other[i]);
				goto fail;
			}
		}
		r = ib_error(
		        ctx, IB_E_USAGE,
		        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
		        "or a profile in %s (profile '%s'), or run on EC2 with an instance role",
		        creds_path, c.profile);
		goto fail;
	}

	/* Region. */
	if (o->region)
		c.region = xstrdup(o->region);
	else if (env("AWS_REGION"))
		c.region = xstrdup(env("AWS_REGION"));
	else if (env("AWS_DEFAULT_REGION"))
		c.region = xstrdup(env("AWS_DEFAULT_REGION"));
	else if (prof_region && *prof_region)
		c.region = TAKE_PTR(prof_region);
	else if (imds_ok && c.creds_source && startswith(c.creds_source, "instance metadata") &&
	         aws_imds_region(ctx, imds, imds_timeout, &v) == 0)
		c.region = TAKE_PTR(v);
	if (!c.region) {
		r = ib_error(ctx, IB_E_USAGE,
		             "no AWS region: use --region, set AWS_REGION, or set region in %s",
		             config_path);
		goto fail;
	}
	for (const char *p = c.region; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-') {
			r = ib_error(ctx, IB_E_USAGE, "bad AWS region '%s'", c.region);
			goto fail;
		}

	/* Endpoints. */
	const char *ep = o->endpoint_url ? o->endpoint_url : env("AWS_ENDPOINT_URL");
	if (ep)
		c.endpoint_url = xstrdup(ep);
	else if (prof_endpoint && *prof_endpoint)
		c.endpoint_url = TAKE_PTR(prof_endpoint);
	if (!o->endpoint_url) {
		if (env("AWS_ENDPOINT_URL_EC2"))
			c.ec2_endpoint = xstrdup(env("AWS_ENDPOINT_URL_EC2"));
		if (env("AWS_ENDPOINT_URL_EBS"))
			c.ebs_endpoint = xstrdup(env("AWS_ENDPOINT_URL_EBS"));
	}
	const char *eps[] = {c.endpoint_url, c.ec2_endpoint, c.ebs_endpoint};
	for (size_t i = 0; i < ARRAY_SIZE(eps); i++)
		if (eps[i] && !startswith(eps[i], "http://") && !startswith(eps[i], "https://")) {
			r = ib_error(ctx, IB_E_USAGE,
			             "bad endpoint URL '%s': expected http:// or https://", eps[i]);
			goto fail;
		}
	*ret = c;
	return 0;
fail:
	free(v);
	aws_config_release(&c);
	return r;
}

char *aws_endpoint(const struct aws_config *c, const char *service)
{
	const char *ep = streq(service, "ec2") && c->ec2_endpoint   ? c->ec2_endpoint
	                 : streq(service, "ebs") && c->ebs_endpoint ? c->ebs_endpoint
	                                                            : c->endpoint_url;
	if (ep) {
		size_t l = strlen(ep);
		while (l > 0 && ep[l - 1] == '/')
			l--;
		return xstrndup(ep, l);
	}
	const char *suffix = startswith(c->region, "cn-") ? "amazonaws.com.cn" : "amazonaws.com";
	return xasprintf("https://%s.%s.%s", service, c->region, suffix);
}

char *aws_config_describe(const struct aws_config *c)
{
	if (!c->access_key)
		return xasprintf("no credentials, region %s", c->region);
	size_t l = strlen(c->access_key);
	/* Enough of the key id to tell keys apart, as the CLI's `configure list` shows. */
	return xasprintf("access key ****%s%s from %s, region %s",
	                 l > 4 ? c->access_key + l - 4 : "",
	                 c->token ? " with a session token" : "", c->creds_source, c->region);
}

static void redact_one(char *s, const char *secret)
{
	if (!secret || strlen(secret) < 4)
		return;
	size_t l = strlen(secret);
	for (char *p = strstr(s, secret); p; p = strstr(p + l, secret))
		memset(p, '*', l);
}

void aws_redact(const struct aws_config *c, char *s)
{
	redact_one(s, c->secret_key);
	redact_one(s, c->token);
}
