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
	int parallel;          /* transfers at once; default 8 */
	int retries;           /* extra attempts after the first; default 4 */
	long connect_timeout;  /* seconds; default 15 */
	long low_speed_time;   /* seconds below 1 KiB/s before giving up an attempt; default 30 */
	int offline;           /* never touch the network: missing entries are errors */
	const char *mirror;    /* rewrite URLs: see ib_mirror_url; NULL for none */
	int progress;          /* report bytes through ib_progress(ctx, "fetch", ...) */
};

struct ib_fetch_item {
	/* in */
	const char *url;
	const char *sha256;       /* expected digest, hex; NULL: first resolve checksum_url */
	const char *checksum_url; /* a published checksum file ("<hex>" or "<hex>  name") */
	const char *const *headers; /* extra request headers ("Authorization: ..."), NULL-ended */
	const char *what;         /* for messages, e.g. "artifact 'kubeadm'" */
	/* out */
	char digest[65];  /* the verified digest */
	char *path;       /* the cache entry; owned by the item, freed by ib_fetch_item_release */
	int rc;           /* 0 or a negative ib_code */
	char err[1024];
	int cached;       /* 1 when no download was needed */
};

void ib_fetch_opts_init(struct ib_fetch_opts *o);
void ib_fetch_item_release(struct ib_fetch_item *it);

/* Fetch every item not already in the cache. Returns 0 when all succeeded; otherwise the
 * first failure's code, with a message naming every failed item (offline: every missing
 * item). Items are independent: one failure does not stop the others. */
int ib_fetch_all(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *o,
		 struct ib_fetch_item *items, size_t n);

/* A small GET into memory (manifests, tokens, checksum files): at most max bytes, same
 * retries and timeouts. *ret_body (caller frees) NUL-terminated; *ret_status the HTTP status;
 * ret_headers (optional, caller frees) the response headers of the final response, one per
 * line. Non-2xx statuses are returned, not treated as errors, so that callers can handle 401. */
int ib_http_get(struct ib_ctx *ctx, const struct ib_fetch_opts *o, const char *url,
		const char *const *headers, size_t max, char **ret_body, size_t *ret_len,
		long *ret_status, char **ret_headers);

/* http(s)://host/path -> <mirror>/host/path (mirror a URL or a directory, which becomes
 * file://). Caller frees. */
char *ib_mirror_url(const char *mirror, const char *url);
