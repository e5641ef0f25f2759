/* client.c: sign, send, judge and retry AWS requests; dry runs print instead of sending. */
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "client.h"
#include "fetch/fetch.h"
#include "fetch/http_int.h"
#include "http.h"
#include "util/jsonr.h"
#include "xml.h"

void aws_client_init(struct aws_client *c, const struct aws_config *cfg)
{
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->max_attempts = 8;
	c->retry_base_ms = 100;
	c->retry_max_ms = 20000;
	c->timeout_ms = 60000;
	c->connect_timeout_ms = 5000;
}

void aws_resp_release(struct aws_resp *r)
{
	free(r->body);
	free(r->headers);
	free(r->code);
	free(r->message);
	memset(r, 0, sizeof(*r));
}

void aws_prepared_release(struct aws_prepared *p)
{
	free(p->url);
	curl_slist_free_all(p->headers);
	memset(p, 0, sizeof(*p));
}

static struct curl_slist *slist_add(struct curl_slist *l, const char *s)
{
	struct curl_slist *n = curl_slist_append(l, s);
	if (!n)
		abort();
	return n;
}

/* "scheme://[user@]host[:port]/base" -> authority "host[:port]" (default port dropped, as
 * curl sends it) and the base path ("" when none). */
static void split_endpoint(const char *ep, char **authority, char **base)
{
	const char *p = strstr(ep, "://");
	int https = strncasecmp(ep, "https", 5) == 0;
	p = p ? p + 3 : ep;
	size_t n = strcspn(p, "/");
	const char *at = memchr(p, '@', n);
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	char *a = xstrndup(p, n);
	size_t al = strlen(a);
	const char *dflt = https ? ":443" : ":80";
	if (al > strlen(dflt) && streq(a + al - strlen(dflt), dflt))
		a[al - strlen(dflt)] = '\0';
	*authority = a;
	*base = xstrdup(p + n);
	size_t bl = strlen(*base);
	while (bl > 0 && (*base)[bl - 1] == '/')
		(*base)[--bl] = '\0';
}

static void mask_key(struct strbuf *sb, const char *key)
{
	size_t l = strlen(key);
	sb_addf(sb, "****%s", l > 4 ? key + l - 4 : "");
}

char *aws_format_request(const struct aws_client *c, const char *method, const char *url,
                         const struct curl_slist *headers, const void *body, size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	sb_addf(&sb, "%s %s\n", method, url);
	for (const struct curl_slist *h = headers; h; h = h->next) {
		const char *s = h->data;
		if (streq(s, "Expect:") || streq(s, "Content-Type:"))
			continue;
		if (strncasecmp(s, "Authorization:", 14) == 0) {
			/* The key id shortened, the signature withheld (it is a short-lived
			 * credential for this exact request). */
			const char *cred = strstr(s, "Credential=");
			const char *slash = cred ? strchr(cred, '/') : NULL;
			const char *sh = strstr(s, "SignedHeaders=");
			const char *sig = strstr(s, ", Signature=");
			if (cred && slash && sh && sig && sig > sh) {
				sb_add(&sb, s, (size_t)(cred + 11 - s));
				_cleanup_free_ char *key =
				        xstrndup(cred + 11, (size_t)(slash - cred - 11));
				mask_key(&sb, key);
				sb_add(&sb, slash, (size_t)(sig - slash));
				sb_adds(&sb, ", Signature=<redacted>\n");
			} else {
				sb_adds(&sb, "Authorization: <redacted>\n");
			}
			continue;
		}
		if (strncasecmp(s, "X-Amz-Security-Token:", 21) == 0) {
			sb_adds(&sb, "X-Amz-Security-Token: <redacted>\n");
			continue;
		}
		sb_addf(&sb, "%s\n", s);
	}
	if (len > 0) {
		int text = len <= 16384;
		for (size_t i = 0; text && i < len; i++) {
			unsigned char ch = ((const unsigned char *)body)[i];
			text = ch >= 0x20 || ch == '\n' || ch == '\t';
		}
		if (text) {
			sb_addc(&sb, '\n');
			sb_add(&sb, body, len);
			sb_addc(&sb, '\n');
		} else {
			sb_addf(&sb, "\n<%zu bytes of data>\n", len);
		}
	}
	char *out = sb_take(&sb);
	if (c->cfg)
		aws_redact(c->cfg, out);
	return out;
}

int aws_prepare(struct ib_ctx *ctx, struct aws_client *c, const struct aws_call *call,
                struct aws_prepared *ret)
{
	memset(ret, 0, sizeof(*ret));
	_cleanup_free_ char *ep = aws_endpoint(c->cfg, call->service);
	_cleanup_free_ char *authority = NULL, *base = NULL;
	split_endpoint(ep, &authority, &base);
	_cleanup_free_ char *path = xasprintf("%s%s", base, call->path);
	ret->url = xasprintf("%s%s%s%s", ep, call->path, call->query ? "?" : "",
	                     call->query ? call->query : "");

	size_t nh = call->n_headers + 2;
	struct aws_hdr *h = xcalloc(nh, sizeof(*h));
	size_t k = 0;
	h[k++] = (struct aws_hdr){"Host", authority};
	if (call->content_type)
		h[k++] = (struct aws_hdr){"Content-Type", call->content_type};
	for (size_t i = 0; i < call->n_headers; i++)
		h[k++] = call->headers[i];

	struct curl_slist *l = NULL;
	for (size_t i = 0; i < k; i++) {
		_cleanup_free_ char *line = xasprintf("%s: %s", h[i].name, h[i].value);
		l = slist_add(l, line);
	}
	if (c->cfg->access_key) {
		struct aws_sig_request sr = {call->method, path,           call->query,       h, k,
		                             call->body,   call->body_len, call->payload_hash};
		struct aws_sig_params sp = {
		        .creds = {c->cfg->access_key, c->cfg->secret_key, c->cfg->token},
		        .region = c->cfg->region,
		        .service = call->service,
		        .when = time(NULL),
		};
		struct aws_sig_result res;
		if (aws_sigv4_sign(&sr, &sp, &res) < 0) {
			free(h);
			curl_slist_free_all(l);
			aws_prepared_release(ret);
			return ib_error(ctx, IB_E_LIB, "%s: cannot sign the request", call->what);
		}
		for (size_t i = 0; i < res.n_headers; i++) {
			_cleanup_free_ char *line =
			        xasprintf("%s: %s", res.headers[i].name, res.headers[i].value);
			l = slist_add(l, line);
		}
		aws_sig_result_release(&res);
	}
	free(h);
	/* Bodies go whole with their length: no "Expect: 100-continue" round trip. */
	l = slist_add(l, "Expect:");
	/* No body type unless the call has one: curl would say form-urlencoded for any POST,
	 * unsigned, and a verifier that parses such a body sees another payload. */
	if (!call->content_type)
		l = slist_add(l, "Content-Type:");
	ret->headers = l;
	if (c->dry_run && c->on_request) {
		_cleanup_free_ char *text = aws_format_request(c, call->method, ret->url, l,
		                                               call->body, call->body_len);
		c->on_request(c->cb_data, text);
	}
	return 0;
}

static const char *const throttle_codes[] = {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
};

static const char *const transient_codes[] = {
        "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
        "InternalError",  "InternalFailure",         "ServiceUnavailable",
        "Unavailable",    "ServerInternal",          "InternalServerException",
};

int aws_is_throttle(const char *code)
{
	for (size_t i = 0; code && i < ARRAY_SIZE(throttle_codes); i++)
		if (streq(code, throttle_codes[i]))
			return 1;
	return 0;
}

static int is_transient(const char *code)
{
	for (size_t i = 0; code && i < ARRAY_SIZE(transient_codes); i++)
		if (streq(code, transient_codes[i]))
			return 1;
	return 0;
}

/* The first element named name anywhere under n (depth first). */
static const struct xml_node *xml_find(const struct xml_node *n, const char *name)
{
	if (!n)
		return NULL;
	const struct xml_node *c = xml_child(n, name);
	for (size_t i = 0; !c && i < n->n; i++)
		c = xml_find(&n->children[i], name);
	return c;
}

/* The error code and message of an error answer: x-amzn-ErrorType, or an XML body (EC2,
 * and moto's EBS), or a JSON body (EBS). */
static void error_of(const char *headers, const char *body, size_t len, struct aws_resp *out)
{
	char *t = aws_http_header(headers, "x-amzn-ErrorType");
	if (t) {
		t[strcspn(t, ":")] = '\0';
		out->code = t;
	}
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
		i++;
	if (i < len && body[i] == '<') {
		struct xml_node *x = NULL;
		if (xml_parse_ex(body, len, NULL, &x, NULL) == 0) {
			const struct xml_node *code = xml_find(x, "Code");
			const struct xml_node *msg = xml_find(x, "Message");
			if (code && !out->code)
				out->code = xstrdup(code->text);
			if (msg)
				out->message = xstrdup(msg->text);
		}
		xml_free(x);
	} else if (i < len && body[i] == '{') {
		struct jsonr *j = NULL;
		if (jsonr_parse_ex(body, len, NULL, &j, &(struct jsonr_error){0}) == 0) {
			const char *code = jsonr_get_str(j, "__type");
			if (!code)
				code = jsonr_get_str(j, "code");
			if (!code)
				code = jsonr_get_str(j, "Code");
			const char *msg = jsonr_get_str(j, "Message");
			if (!msg)
				msg = jsonr_get_str(j, "message");
			if (code && !out->code) {
				const char *hash = strrchr(code, '#');
				out->code = xstrdup(hash ? hash + 1 : code);
			}
			if (msg)
				out->message = xstrdup(msg);
		}
		jsonr_free(j);
	}
}

enum aws_verdict aws_judge(const struct aws_call *call, CURLcode res, long status,
                           const char *headers, const char *body, size_t len, struct aws_resp *out,
                           char *why, size_t why_len)
{
	out->status = status;
	/* A done call leaves why empty, never unset: a caller may print it whatever the verdict. */
	if (why_len > 0)
		why[0] = '\0';
	if (res != CURLE_OK) {
		ib_curl_describe(res, 0, NULL, why, why_len);
		return ib_http_retryable(res, 0) ? AWS_RETRY : AWS_FAILED;
	}
	if (status >= 200 && status < 300)
		return AWS_DONE;
	error_of(headers, body ? body : "", len, out);
	if (out->code && out->message)
		snprintf(why, why_len, "%s: %s (HTTP %ld)", out->code, out->message, status);
	else if (out->code)
		snprintf(why, why_len, "%s (HTTP %ld)", out->code, status);
	else
		snprintf(why, why_len, "HTTP status %ld", status);
	/* One line: an error page may hold newlines. */
	for (char *p = why; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429 ||
	    aws_is_throttle(out->code) || is_transient(out->code) ||
	    (call->retry_not_found && out->code && streq(out->code, "ResourceNotFoundException")))
		return AWS_RETRY;
	return AWS_FAILED;
}

static uint32_t rnd(void)
{
	uint32_t v;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	return (uint32_t)getpid() ^ (uint32_t)(ib_now() * 1e6);
}

long aws_backoff_ms(const struct aws_client *c, int attempt, int throttled)
{
	long base = c->retry_base_ms * (throttled ? 5 : 1);
	return ib_fetch_backoff_ms(base, c->retry_max_ms, attempt, rnd());
}

static void sleep_ms(long ms)
{
	while (ms > 0 && !ib_interrupted) {
		long s = ms > 100 ? 100 : ms;
		struct timespec ts = {0, s * 1000000L};
		nanosleep(&ts, NULL);
		ms -= s;
	}
}

int aws_call(struct ib_ctx *ctx, struct aws_client *c, const struct aws_call *call,
             struct aws_resp *ret)
{
	memset(ret, 0, sizeof(*ret));
	char why[1024] = "";
	_cleanup_free_ char *where = aws_endpoint(c->cfg, call->service);
	for (int attempt = 1;; attempt++) {
		if (ib_interrupted && !c->cleanup)
			return ib_error(ctx, IB_E_INTERRUPTED, "%s: interrupted", call->what);
		struct aws_prepared p;
		int r = aws_prepare(ctx, c, call, &p);
		if (r < 0)
			return r;
		if (c->dry_run) {
			aws_prepared_release(&p);
			ret->body = xstrdup("");
			ret->headers = xstrdup("");
			return 0;
		}
		size_t n = 0;
		for (struct curl_slist *h = p.headers; h; h = h->next)
			n++;
		const char **hv = xcalloc(n + 1, sizeof(*hv));
		n = 0;
		for (struct curl_slist *h = p.headers; h; h = h->next)
			hv[n++] = h->data;
		struct aws_http_req hr = {
		        .method = call->method,
		        .url = p.url,
		        .headers = hv,
		        .body = call->body,
		        .body_len = call->body_len,
		        .connect_timeout_ms = c->connect_timeout_ms,
		        .timeout_ms = call->timeout_ms > 0 ? call->timeout_ms : c->timeout_ms,
		};
		struct aws_http_resp hresp;
		c->requests++;
		aws_http_do(&hr, &hresp);
		free(hv);
		aws_resp_release(ret);
		enum aws_verdict v = aws_judge(call, hresp.res, hresp.status, hresp.headers,
		                               hresp.body, hresp.len, ret, why, sizeof(why));
		if (hresp.res != CURLE_OK && hresp.err[0])
			snprintf(why, sizeof(why), "%s", hresp.err);
		ret->body = TAKE_PTR(hresp.body);
		ret->len = hresp.len;
		ret->headers = TAKE_PTR(hresp.headers);
		aws_http_resp_release(&hresp);
		aws_prepared_release(&p);
		if (v == AWS_DONE)
			return 0;
		if (v == AWS_FAILED || attempt >= (c->cleanup ? 3 : c->max_attempts)) {
			if (v == AWS_FAILED && call->soft_errors && ret->status > 0)
				return 1;
			int e = ib_error(ctx, IB_E_NETWORK, "%s at %s: %s%s", call->what, where,
			                 why, v == AWS_RETRY ? " (after retries)" : "");
			aws_resp_release(ret);
			return e;
		}
		long d = aws_backoff_ms(c, attempt, aws_is_throttle(ret->code));
		c->retries++;
		ib_log(ctx, IB_LOG_DEBUG, "%s: %s; retrying in %ld ms", call->what, why, d);
		sleep_ms(d);
	}
}
