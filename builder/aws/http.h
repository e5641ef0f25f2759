/* http.h: one HTTP exchange with libcurl (any method, body in memory), no retries.
 *
 * The building block of the AWS client and of instance metadata: the caller decides what
 * to retry. Every exchange has a connect timeout and a total timeout, so nothing hangs.
 */
#pragma once

#include <curl/curl.h>

#include "util/strbuf.h"

struct aws_http_req {
	const char *method;
	const char *url;
	const char *const *headers; /* "Name: value", NULL-ended; may be NULL */
	const void *body;
	size_t body_len;
	long connect_timeout_ms; /* default 5000 */
	long timeout_ms;         /* whole exchange; default 60000 */
	size_t max_response;     /* bytes of body kept; default 16 MiB */
};

struct aws_http_resp {
	CURLcode res; /* CURLE_OK when a response arrived (whatever its status) */
	long status;  /* HTTP status, 0 without a response */
	char *body;   /* NUL-terminated */
	size_t len;
	char *headers; /* the response's header lines, one per line */
	char err[CURL_ERROR_SIZE + 64];
};

/* Set the options shared by every AWS request on e (timeouts, no signals, no proxy for
 * loopback, no "Expect: 100-continue", user agent). */
void aws_http_setup(CURL *e, long connect_timeout_ms, long timeout_ms, char *errbuf);

/* Perform r. 0 when a response arrived (any status), else -1 with resp->err describing the
 * transport failure. Release resp with aws_http_resp_release. */
int aws_http_do(const struct aws_http_req *r, struct aws_http_resp *resp);
void aws_http_resp_release(struct aws_http_resp *resp);

/* The value of header name in a header block (case-insensitive), or NULL. Caller frees. */
char *aws_http_header(const char *headers, const char *name);
