/* fetch.h: pinned downloads with libcurl's multi interface into the content-addressed cache.
 *
 * Several transfers at once (bounded), resume of partial downloads (Range), retries with
 * exponential backoff and jitter on 5xx, 429 and connection errors, connect and low-speed
 * timeouts, TLS verification always on, proxies from the environment (curl's defaults),
 * bodies streamed to disk (memory stays flat). A digest mismatch is an error and those bytes
 * never enter the cache.
 */
#pragma once

#include "cas.h"

struct ib_fetch_opts {
	int parallel;         /* transfers at once; default 8 */
	int retries;          /* extra attempts after the first; default 4 */
	long connect_timeout; /* seconds; default 15 */
	long low_speed_time;  /* seconds below 1 KiB/s before giving up an attempt; default 30 */
	int offline;          /* never touch the network: missing entries are errors */
	const char *mirror;   /* rewrite URLs: see ib_mirror_url; NULL for none */
	int progress;         /* report bytes through ib_progress(ctx, "fetch", ...) */
	long low_speed_limit; /* bytes/s counted as stalled (with low_speed_time); default 1024 */
	long retry_base_ms;   /* first backoff delay, doubled per attempt, jittered; default 1000 */
	long retry_max_ms;    /* cap on one delay, also on a server's Retry-After; default 30000 */
	uint64_t max_size;    /* refuse a download larger than this; default 16 GiB */
};

struct ib_fetch_item {
	/* in */
	const char *url;
	const char *sha256;         /* expected digest, hex; NULL: first resolve checksum_url */
	const char *checksum_url;   /* a published checksum file ("<hex>" or "<hex>  name") */
	const char *const *headers; /* extra request headers ("Authorization: ..."), NULL-ended */
	const char *what;           /* for messages, e.g. "artifact 'kubeadm'" */
	uint64_t size;              /* expected size when known (OCI descriptors), else 0 */
	/* out */
	char digest[65]; /* the verified digest */
	char *path;      /* the cache entry; owned by the item, freed by ib_fetch_item_release */
	int rc;          /* 0 or a negative ib_code */
	char err[1024];
	int cached; /* 1 when no download was needed */
};

void ib_fetch_opts_init(struct ib_fetch_opts *o);
void ib_fetch_item_release(struct ib_fetch_item *it);

/* Fetch every item not already in the cache (a cached entry is rehashed: a corrupted one
 * is dropped and fetched again). URLs are rewritten through o->mirror first. A redirect is
 * followed (at most 10, http and https only); when it leads to another scheme, host or
 * port, the item's headers are dropped except a few harmless ones (Accept, User-Agent),
 * so a registry token is never handed to the blob store a registry redirects to. file://
 * URLs are local reads and are allowed offline. A checksum_url is read once and its
 * answer kept as ref "checksum" (name: "<checksum_url> <file name>"), so offline works.
 * Returns 0 when all succeeded; otherwise the first failure's code, with a message naming
 * every failed item (offline: every missing item). Items are independent: one failure does
 * not stop the others. */
int ib_fetch_all(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *o,
                 struct ib_fetch_item *items, size_t n);

/* A small GET into memory (manifests, tokens, checksum files): at most max bytes, same
 * retries and timeouts. *ret_body (caller frees) NUL-terminated; *ret_status the HTTP status;
 * ret_headers (optional, caller frees) the response headers of the final response, one per
 * line. Non-2xx statuses are returned, not treated as errors, so that callers can handle 401.
 * Redirects as for ib_fetch_all (headers dropped across origins). The URL is used as given:
 * no mirror rewriting (callers that want it call ib_mirror_url). Offline: only file://. */
int ib_http_get(struct ib_ctx *ctx, const struct ib_fetch_opts *o, const char *url,
                const char *const *headers, size_t max, char **ret_body, size_t *ret_len,
                long *ret_status, char **ret_headers);

/* http(s)://host/path -> <mirror>/host/path (mirror a URL or a directory, which becomes
 * file://). Caller frees. */
char *ib_mirror_url(const char *mirror, const char *url);
/* ib_mirror_url details: user info is dropped, a port kept ("host:8080/path"), the query
 * kept; a URL that is not http(s), or already under the mirror, comes back unchanged (so
 * rewriting twice is harmless); NULL or "" mirror: a copy of url. */

/* The digest for file name in a published checksum file: lines of "<hex>", "<hex>  name"
 * or "<hex> *name" (sha256sum), or "SHA256 (name) = <hex>" (BSD). A single entry without
 * a name matches any name; otherwise the entry whose name (or its basename) is name.
 * 0 and hex filled (lowercase), or -IB_E_VERIFY with a message. */
int ib_checksum_parse(struct ib_ctx *ctx, const char *text, const char *name, char hex[65]);

/* The delay before retry number attempt (1 for the first retry): base * 2^(attempt-1)
 * capped at max, then "equal jitter" (half fixed, half from rnd), so that many clients
 * failing together do not come back together. */
long ib_fetch_backoff_ms(long base_ms, long max_ms, int attempt, uint32_t rnd);
