/* client.h: signed AWS requests with retries, timeouts and a dry-run mode.
 *
 * Every attempt is signed afresh (SigV4, the time of that attempt). Retried with backoff and
 * jitter: connection errors and timeouts, HTTP 500/502/503/504 and 429, the throttling codes
 * botocore retries (Throttling, ThrottlingException, RequestLimitExceeded, SlowDown, ...),
 * RequestTimeout, and, when asked, ResourceNotFoundException (EBS, just after
 * StartSnapshot). Never retried: any other 4xx. A dry run formats each request, secrets
 * redacted, hands it to on_request and sends nothing.
 */
#pragma once

#include <curl/curl.h>

#include "aws/config.h"
#include "aws/sigv4.h"

struct aws_client {
	const struct aws_config *cfg;
	int dry_run;
	/* A dry run's requests, one formatted request per call (may be NULL). */
	void (*on_request)(void *data, const char *text);
	void *cb_data;
	int max_attempts;        /* default 8 */
	long retry_base_ms;      /* default 100; throttling waits from 5x this */
	long retry_max_ms;       /* default 20000 */
	long timeout_ms;         /* one attempt, whole exchange; default 60000 */
	long connect_timeout_ms; /* default 5000 */
	/* Cleaning up after a failure: go on after an interrupt (a snapshot left behind costs
	 * money), with few attempts. */
	int cleanup;
	/* Counters (for summaries and tests). */
	unsigned long requests, retries;
};

void aws_client_init(struct aws_client *c, const struct aws_config *cfg);

struct aws_call {
	const char *service; /* "ec2", "ebs": the endpoint and the signing scope */
	const char *method;
	const char *path;  /* "/" or "/snapshots/..." (already safe: no encoding needed) */
	const char *query; /* or NULL */
	const struct aws_hdr *headers; /* extra headers to sign (not Host) */
	size_t n_headers;
	const char *content_type; /* or NULL */
	const void *body;
	size_t body_len;
	const char *payload_hash; /* NULL: sha256(body); "UNSIGNED-PAYLOAD" for blocks */
	const char *what;         /* for messages: "RegisterImage", "PutSnapshotBlock 17" */
	int retry_not_found;      /* retry ResourceNotFoundException */
	int soft_errors;          /* an error answer is returned (1) for the caller to judge */
	long timeout_ms;          /* this call's attempt timeout, 0: the client's */
};

struct aws_resp {
	long status;
	char *body;
	size_t len;
	char *headers;
	char *code;    /* error code of an error answer, else NULL */
	char *message; /* its message, else NULL */
};
void aws_resp_release(struct aws_resp *r);

/* Perform call with retries. 0: a 2xx answer in *ret (dry run: status 0, empty body).
 * 1: an error answer that is not retried, with soft_errors set (ret->code says which).
 * Negative: failed, the message recorded ("<what> at <endpoint>: <code>: <message> (HTTP
 * 400)"). */
int aws_call(struct ib_ctx *ctx, struct aws_client *c, const struct aws_call *call,
             struct aws_resp *ret);

/* ---- for the concurrent block uploader, which drives its own curl multi handle ---- */

struct aws_prepared {
	char *url;
	struct curl_slist *headers;
};

/* Sign call now and build what curl needs. In a dry run, also format it for on_request. */
int aws_prepare(struct ib_ctx *ctx, struct aws_client *c, const struct aws_call *call,
                struct aws_prepared *ret);
void aws_prepared_release(struct aws_prepared *p);

enum aws_verdict { AWS_DONE, AWS_RETRY, AWS_FAILED };
/* Judge one finished attempt. Fills out (status, code, message; body/headers are not
 * copied) and a one-line description of a failure into why. */
enum aws_verdict aws_judge(const struct aws_call *call, CURLcode res, long status,
                           const char *headers, const char *body, size_t len, struct aws_resp *out,
                           char *why, size_t why_len);
/* Backoff before attempt+1 (attempt counts from 1); longer for throttling. */
long aws_backoff_ms(const struct aws_client *c, int attempt, int throttled);
/* Is this error code throttling? */
int aws_is_throttle(const char *code);

/* Format a request as text with secrets redacted (dry runs, debug logs). Caller frees. */
char *aws_format_request(const struct aws_client *c, const char *method, const char *url,
                         const struct curl_slist *headers, const void *body, size_t len);
