/* sigv4.h: AWS Signature Version 4 (HMAC-SHA256), header and presigned-query variants.
 *
 * Pure computation on OpenSSL: no I/O, no clock (the caller passes the time), so that the
 * AWS signing test suite can check the canonical request, the string to sign and the
 * signature byte for byte.
 */
#pragma once

#include <time.h>

#include "util/strbuf.h"

struct aws_hdr {
	const char *name;
	const char *value;
};

struct aws_sig_creds {
	const char *access_key;
	const char *secret_key;
	const char *token; /* session token, or NULL */
};

enum {
	AWS_SIG_QUERY = 1 << 0,        /* presign: parameters in the query, not Authorization */
	AWS_SIG_NO_NORMALIZE = 1 << 1, /* keep "." "..", "//" in the path (S3 style) */
	AWS_SIG_BODY_HEADER = 1 << 2,  /* add and sign x-amz-content-sha256 (header variant) */
	AWS_SIG_OMIT_TOKEN = 1 << 3,   /* add the session token without signing it */
};

struct aws_sig_request {
	const char *method;
	const char *path;  /* as on the request line, not yet percent-encoded; "" means "/" */
	const char *query; /* the raw query string without '?', or NULL */
	const struct aws_hdr *headers; /* must include Host; names in any case */
	size_t n_headers;
	const void *body;
	size_t body_len;
	const char *payload_hash; /* hex digest or "UNSIGNED-PAYLOAD"; NULL: sha256(body) */
};

struct aws_sig_params {
	struct aws_sig_creds creds;
	const char *region;
	const char *service;
	time_t when;
	unsigned flags;
	long expires; /* AWS_SIG_QUERY: seconds the URL stays valid (default 3600) */
};

/* What signing produced. The caller adds `headers` to the request in this order (header
 * variant: X-Amz-Security-Token, X-Amz-Date, x-amz-content-sha256, Authorization), or appends
 * `query_add` ("X-Amz-Algorithm=...&...&X-Amz-Signature=...") to the query (query variant).*/
struct aws_sig_result {
	char *canonical_request;
	char *string_to_sign;
	char signature[65];
	struct aws_hdr *headers; /* names and values owned by the result */
	size_t n_headers;
	char *query_add;
};

/* Sign r with p. Returns 0, or -1 when the request is malformed (no Host header). Fills
 * *out; release with aws_sig_result_release. */
int aws_sigv4_sign(const struct aws_sig_request *r, const struct aws_sig_params *p,
                   struct aws_sig_result *out);
void aws_sig_result_release(struct aws_sig_result *res);

/* Percent-encode s[0..len) as SigV4 wants: everything but A-Za-z0-9-._~ (and '/' when
 * keep_slash) becomes %XX with uppercase hex. */
void aws_uri_encode(struct strbuf *sb, const char *s, size_t len, int keep_slash);
/* Decode %XX escapes (malformed ones are kept as they are). Caller frees. */
char *aws_uri_decode(const char *s, size_t len);
/* Lowercase hex of n bytes; out holds 2n+1. */
void aws_hex(const unsigned char *b, size_t n, char *out);
/* Standard base64 of n bytes. Caller frees. */
char *aws_base64(const void *data, size_t n);
/* "YYYYMMDDTHHMMSSZ" for t (UTC). */
void aws_amz_date(time_t t, char out[17]);
