/* aws_http.c: one bounded HTTP exchange with libcurl for the AWS client and instance metadata. */
#include <strings.h>

#include "fetch/http_int.h"
#include "http.h"

void aws_http_setup(CURL *e, long connect_timeout_ms, long timeout_ms, char *errbuf)
{
	errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 connect_timeout_ms > 0 ? connect_timeout_ms : 5000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 60000L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "imgbuild/" IMGBUILD_VERSION);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* A local endpoint (moto, a test proxy, instance metadata) is never reached through a
	 * proxy from the environment; anything else keeps libcurl's proxy defaults. */
	curl_easy_setopt(e, CURLOPT_NOPROXY,
	                 "127.0.0.1,localhost,::1,169.254.169.254,fd00:ec2::254");
}

void aws_http_resp_release(struct aws_http_resp *resp)
{
	free(resp->body);
	free(resp->headers);
	resp->body = resp->headers = NULL;
}

int aws_http_do(const struct aws_http_req *r, struct aws_http_resp *resp)
{
	ib_curl_init_once();
	memset(resp, 0, sizeof(*resp));
	struct ib_membuf m = {.body = STRBUF_INIT,
	                      .headers = STRBUF_INIT,
	                      .max = r->max_response ? r->max_response : 16u << 20};
	char errbuf[CURL_ERROR_SIZE];
	CURL *e = curl_easy_init();
	if (!e)
		abort();
	aws_http_setup(e, r->connect_timeout_ms, r->timeout_ms, errbuf);
	struct curl_slist *hl = NULL;
	for (size_t i = 0; r->headers && r->headers[i]; i++)
		if (!(hl = curl_slist_append(hl, r->headers[i])))
			abort();
	/* Bodies are sent whole with their length: no "Expect: 100-continue" round trip. */
	if (!(hl = curl_slist_append(hl, "Expect:")))
		abort();
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	if (streq(r->method, "GET")) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		if (!streq(r->method, "POST"))
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ib_mem_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &m);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, ib_mem_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &m);
	resp->res = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
	curl_easy_cleanup(e);
	curl_slist_free_all(hl);
	resp->len = m.body.len;
	resp->body = sb_take(&m.body);
	resp->headers = sb_take(&m.headers);
	if (resp->res == CURLE_OK)
		return 0;
	if (m.too_big)
		snprintf(resp->err, sizeof(resp->err), "response larger than %zu bytes", m.max);
	else
		ib_curl_describe(resp->res, 0, errbuf, resp->err, sizeof(resp->err));
	return -1;
}

char *aws_http_header(const char *headers, const char *name)
{
	size_t nl = strlen(name);
	const char *p = headers;
	while (p && *p) {
		size_t l = strcspn(p, "\n");
		if (l > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			const char *e = p + l;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
				e--;
			return xstrndup(v, (size_t)(e - v));
		}
		p += l;
		if (*p)
			p++;
	}
	return NULL;
}
