/* config.h: AWS credentials, region and endpoints, resolved the way the aws CLI does.
 *
 * Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (ignored when a
 * profile is named with --profile, as the CLI does), then the profile in the shared
 * credentials file (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials), then the
 * profile in the config file (AWS_CONFIG_FILE, default ~/.aws/config, "[profile NAME]"
 * sections, "[default]"), then EC2 instance metadata (IMDSv2; AWS_EC2_METADATA_DISABLED=true
 * turns it off, AWS_EC2_METADATA_SERVICE_ENDPOINT moves it). Profile: --profile, AWS_PROFILE,
 * AWS_DEFAULT_PROFILE, "default".
 * Region: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's region, instance metadata.
 * Endpoint: --endpoint-url, AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, the profile's
 * endpoint_url, else https://<service>.<region>.amazonaws.com.
 * Secrets are never put in a message: see aws_config_describe.
 */
#pragma once

#include <time.h>

#include "util/ctx.h"

struct aws_config {
	char *access_key;
	char *secret_key;
	char *token; /* session token, or NULL */
	char *region;
	char *endpoint_url; /* one URL for every service (moto, LocalStack), or NULL */
	char *profile;
	char *creds_source; /* "environment", "shared credentials file (path)", ... */
	time_t expiration;  /* instance credentials: when they expire; 0 for none */
	char *ec2_endpoint; /* AWS_ENDPOINT_URL_EC2, or NULL */
	char *ebs_endpoint; /* AWS_ENDPOINT_URL_EBS, or NULL */
};

struct aws_config_opts {
	const char *profile;      /* --profile, or NULL */
	const char *region;       /* --region, or NULL */
	const char *endpoint_url; /* --endpoint-url, or NULL */
	int no_imds;              /* never ask instance metadata (dry runs: send nothing) */
	int allow_no_creds;       /* a missing credential is not an error (dry runs) */
	long imds_timeout_ms;     /* per request; default 1000 */
};

int aws_config_load(struct ib_ctx *ctx, const struct aws_config_opts *o, struct aws_config *ret);
void aws_config_release(struct aws_config *c);

/* The endpoint URL for service ("ec2", "ebs") without a trailing slash. Caller frees. */
char *aws_endpoint(const struct aws_config *c, const char *service);

/* One line saying which credentials are used, the access key shortened ("AKIA…WXYZ") and
 * the secret and token never shown. Caller frees. */
char *aws_config_describe(const struct aws_config *c);

/* Overwrite every occurrence of each secret in s[0..len) with '*' (for dry-run and logs). */
void aws_redact(const struct aws_config *c, char *s);

/* ---- internals shared with the unit tests ---- */

/* Look key up in section of an INI file as the aws CLI reads it ("key = value", '#' and
 * ';' comments, indented sub-keys ignored). 0 and *ret (caller frees, NULL when absent);
 * 1 when the section exists, 0 when not, through *ret_section (may be NULL); -IB_E_SPEC on a
 * malformed file. A missing file is an empty one. */
int aws_ini_get(struct ib_ctx *ctx, const char *path, const char *section, const char *key,
                char **ret, int *ret_section);

/* IMDSv2: token, role, credentials from endpoint (e.g. "http://169.254.169.254"). */
int aws_imds_credentials(struct ib_ctx *ctx, const char *endpoint, long timeout_ms,
                         struct aws_config *c);
/* The instance's region from IMDSv2. Caller frees *ret. */
int aws_imds_region(struct ib_ctx *ctx, const char *endpoint, long timeout_ms, char **ret);
