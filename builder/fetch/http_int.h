/* http_int.h: libcurl plumbing shared by the downloader and the in-memory GET (internal). */
#pragma once

#include <curl/curl.h>

#include "fetch.h"
#include "util/strbuf.h"

/* curl_global_init, once per process, from whichever thread gets here first. */
void ib_curl_init_once(void);

/* The options every request gets: timeouts, protocols, user agent, error buffer. Never
 * touches TLS verification or proxy settings: libcurl's defaults (verify on, proxies from
 * http_proxy/https_proxy/no_proxy) are what we want. */
void ib_curl_setup(CURL *e, const struct ib_fetch_opts *o, char errbuf[CURL_ERROR_SIZE]);

/* The caller's headers as a curl list. With cross_origin (a redirect left the origin the
 * headers were meant for) only harmless ones are kept: see keep_across_origins in http.c. */
struct curl_slist *ib_curl_headers(const char *const *headers, int cross_origin);

/* libcurl write callbacks collecting a bounded body (past max: too_big, transfer aborted)
 * and the headers of the last response (a "100 Continue" or a redirect comes first). */
struct ib_membuf {
	struct strbuf body;
	struct strbuf headers;
	size_t max;
	int too_big;
};
size_t ib_mem_write(char *data, size_t size, size_t nmemb, void *userp);
size_t ib_mem_header(char *data, size_t size, size_t nmemb, void *userp);

int ib_url_is_http(const char *url);
int ib_url_is_file(const char *url);
/* Same scheme, host and port (default ports filled in)? Unparsable URLs are never equal. */
int ib_url_same_origin(const char *a, const char *b);
/* The last path component of a URL, without query or fragment. Caller frees. */
char *ib_url_basename(const char *url);

/* Worth another attempt: connection errors, timeouts, truncated bodies, 408, 429, 5xx. */
int ib_http_retryable(CURLcode res, long status);
/* A one-line description of a failed attempt ("HTTP 503", "Timeout was reached: ..."). */
void ib_curl_describe(CURLcode res, long status, const char *errbuf, char *out, size_t n);

/* The delay before the next attempt: backoff with jitter, or the server's Retry-After
 * (bounded by o->retry_max_ms) when it asked for longer. */
long ib_retry_delay_ms(const struct ib_fetch_opts *o, int attempt, long retry_after_s);
