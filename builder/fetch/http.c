/* http.c: libcurl set-up shared by every request, redirect rules, and small GETs to memory. */
#include <pthread.h>
#include <strings.h>
#include <time.h>

#include "http_int.h"
#include "util/strbuf.h"

#define MAX_REDIRECTS 10
#define MAX_HEADERS   (64 * 1024) /* response headers kept for ib_http_get's caller */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		abort(); /* only fails on allocation failure */
}

void ib_curl_init_once(void)
{
	pthread_once(&curl_once, curl_init);
}

void ib_fetch_opts_init(struct ib_fetch_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->parallel = 8;
	o->retries = 4;
	o->connect_timeout = 15;
	o->low_speed_time = 30;
	o->low_speed_limit = 1024;
	o->retry_base_ms = 1000;
	o->retry_max_ms = 30000;
	o->max_size = (uint64_t)16 << 30;
}

void ib_curl_setup(CURL *e, const struct ib_fetch_opts *o, char errbuf[CURL_ERROR_SIZE])
{
	errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	/* No SIGALRM for DNS timeouts: we run in threads. */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT,
	                 o->connect_timeout > 0 ? o->connect_timeout : 15L);
	/* Nothing hangs: an attempt slower than the limit for that long is abandoned. */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT,
	                 o->low_speed_limit > 0 ? o->low_speed_limit : 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
	                 o->low_speed_time > 0 ? o->low_speed_time : 30L);
	/* file:// serves mirror directories; redirects are followed by us, http(s) only. */
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS,
	                 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS | CURLPROTO_FILE));
#endif
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "imgbuild/" IMGBUILD_VERSION);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Larger reads, fewer callbacks; still a fixed amount per transfer. */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
	/* No CURLOPT_ACCEPT_ENCODING: digests are over the bytes as published. TLS peer and
	 * host verification and proxies stay at libcurl's defaults (on; from environment). */
}

/* Headers that carry no credential: safe to send to whatever host a redirect names. */
static const char *const keep_across_origins[] = {"Accept", "Accept-Language", "User-Agent"};

static int header_is(const char *h, const char *name)
{
	size_t l = strlen(name);
	return strncasecmp(h, name, l) == 0 && (h[l] == ':' || h[l] == ';');
}

struct curl_slist *ib_curl_headers(const char *const *headers, int cross_origin)
{
	struct curl_slist *list = NULL;
	for (size_t i = 0; headers && headers[i]; i++) {
		int keep = !cross_origin;
		for (size_t k = 0; !keep && k < ARRAY_SIZE(keep_across_origins); k++)
			keep = header_is(headers[i], keep_across_origins[k]);
		if (!keep)
			continue;
		struct curl_slist *n = curl_slist_append(list, headers[i]);
		if (!n)
			abort();
		list = n;
	}
	return list;
}

int ib_url_is_http(const char *url)
{
	return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

int ib_url_is_file(const char *url)
{
	return strncasecmp(url, "file://", 7) == 0;
}

struct origin {
	char *scheme, *host, *port;
};

static int origin_get(const char *url, struct origin *o)
{
	memset(o, 0, sizeof(*o));
	CURLU *u = curl_url();
	if (!u)
		abort();
	int ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	         curl_url_get(u, CURLUPART_SCHEME, &o->scheme, 0) == CURLUE_OK &&
	         curl_url_get(u, CURLUPART_HOST, &o->host, 0) == CURLUE_OK &&
	         curl_url_get(u, CURLUPART_PORT, &o->port, CURLU_DEFAULT_PORT) == CURLUE_OK;
	curl_url_cleanup(u);
	return ok ? 0 : -1;
}

static void origin_release(struct origin *o)
{
	curl_free(o->scheme);
	curl_free(o->host);
	curl_free(o->port);
}

int ib_url_same_origin(const char *a, const char *b)
{
	struct origin x, y;
	int ra = origin_get(a, &x), rb = origin_get(b, &y);
	int same = ra == 0 && rb == 0 && strcasecmp(x.scheme, y.scheme) == 0 &&
	           strcasecmp(x.host, y.host) == 0 && streq(x.port, y.port);
	origin_release(&x);
	origin_release(&y);
	return same;
}

char *ib_url_basename(const char *url)
{
	size_t end = strcspn(url, "?#");
	const char *start = url;
	const char *scheme = strstr(url, "://");
	if (scheme && (size_t)(scheme - url) < end)
		start = scheme + 3;
	const char *slash = NULL;
	for (const char *p = start; p < url + end; p++)
		if (*p == '/')
			slash = p;
	if (!slash)
		return xstrdup("");
	return xstrndup(slash + 1, (size_t)(url + end - slash - 1));
}

/* ---- small GETs into memory ---- */

size_t ib_mem_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct ib_membuf *m = userp;
	size_t n = size * nmemb;
	if (m->body.len + n > m->max) {
		m->too_big = 1;
		return 0; /* aborts the transfer */
	}
	sb_add(&m->body, data, n);
	return n;
}

size_t ib_mem_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct ib_membuf *m = userp;
	size_t n = size * nmemb;
	/* Keep only the last response's headers: a new status line starts them over. */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		sb_reset(&m->headers);
	if (m->headers.len + n <= MAX_HEADERS) {
		size_t l = n;
		while (l > 0 && (data[l - 1] == '\n' || data[l - 1] == '\r'))
			l--;
		if (l > 0) {
			sb_add(&m->headers, data, l);
			sb_addc(&m->headers, '\n');
		}
	}
	return n;
}

static int abort_on_interrupt(void *p, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	return ib_interrupted ? 1 : 0;
}

/* Sleep ms, in slices, giving up early on an interrupt. */
static void sleep_ms(long ms)
{
	while (ms > 0 && !ib_interrupted) {
		long s = ms > 100 ? 100 : ms;
		struct timespec ts = {0, s * 1000000L};
		nanosleep(&ts, NULL);
		ms -= s;
	}
}

int ib_http_get(struct ib_ctx *ctx, const struct ib_fetch_opts *o, const char *url,
                const char *const *headers, size_t max, char **ret_body, size_t *ret_len,
                long *ret_status, char **ret_headers)
{
	ib_curl_init_once();
	_cleanup_free_ char *cur = xstrdup(url);
	int cross = 0, attempt = 0, redirects = 0;
	char errbuf[CURL_ERROR_SIZE];

	for (;;) {
		if (!ib_url_is_file(cur) && o->offline)
			return ib_error(ctx, IB_E_NETWORK, "offline: not fetching %s", cur);
		if (ib_interrupted)
			return ib_error(ctx, IB_E_INTERRUPTED, "interrupted while fetching %s",
			                cur);
		struct ib_membuf m = {.body = STRBUF_INIT, .headers = STRBUF_INIT, .max = max};
		CURL *e = curl_easy_init();
		if (!e)
			abort();
		ib_curl_setup(e, o, errbuf);
		struct curl_slist *hl = ib_curl_headers(headers, cross);
		curl_easy_setopt(e, CURLOPT_URL, cur);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ib_mem_write);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &m);
		curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, ib_mem_header);
		curl_easy_setopt(e, CURLOPT_HEADERDATA, &m);
		curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, abort_on_interrupt);
		curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
		CURLcode res = curl_easy_perform(e);
		long status = 0;
		curl_off_t retry_after = 0;
		char *loc = NULL;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after);
		if (res == CURLE_OK && status >= 300 && status < 400 &&
		    curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
			loc = xstrdup(loc);
		else
			loc = NULL;
		curl_easy_cleanup(e);
		curl_slist_free_all(hl);

		if (loc) {
			_cleanup_free_ char *next = loc;
			sb_release(&m.body);
			sb_release(&m.headers);
			if (++redirects > MAX_REDIRECTS)
				return ib_error(ctx, IB_E_NETWORK, "too many redirects from %s",
				                url);
			if (!ib_url_is_http(next))
				return ib_error(ctx, IB_E_NETWORK,
				                "refusing redirect from %s to %s", cur, next);
			/* Sticky: once the headers were dropped they stay dropped. */
			if (!ib_url_same_origin(url, next))
				cross = 1;
			free(cur);
			cur = TAKE_PTR(next);
			continue;
		}
		if (res == CURLE_OK && !(ib_http_retryable(res, status) && attempt < o->retries)) {
			if (ret_len)
				*ret_len = m.body.len;
			if (ret_status)
				*ret_status = status;
			if (ret_headers)
				*ret_headers = sb_take(&m.headers);
			else
				sb_release(&m.headers);
			*ret_body = sb_take(&m.body);
			return 0;
		}
		int too_big = m.too_big;
		sb_release(&m.body);
		sb_release(&m.headers);
		if (res == CURLE_ABORTED_BY_CALLBACK)
			return ib_error(ctx, IB_E_INTERRUPTED, "interrupted while fetching %s",
			                cur);
		if (too_big)
			return ib_error(ctx, IB_E_NETWORK,
			                "response from %s is larger than %zu bytes", cur, max);
		if (!ib_http_retryable(res, status) || attempt >= o->retries) {
			char why[CURL_ERROR_SIZE + 64];
			ib_curl_describe(res, status, errbuf, why, sizeof(why));
			return ib_error(ctx, IB_E_NETWORK, "cannot fetch %s: %s%s", cur, why,
			                attempt ? " (after retries)" : "");
		}
		attempt++;
		long delay = ib_retry_delay_ms(o, attempt, (long)retry_after);
		char why[CURL_ERROR_SIZE + 64];
		ib_curl_describe(res, status, errbuf, why, sizeof(why));
		ib_log(ctx, IB_LOG_DEBUG, "%s: %s; retrying in %ld ms", cur, why, delay);
		sleep_ms(delay);
	}
}
