/* retry.c: which failures are worth another attempt, and how long to wait before it. */
#include <sys/random.h>

#include "http_int.h"

long ib_fetch_backoff_ms(long base_ms, long max_ms, int attempt, uint32_t rnd)
{
	if (base_ms <= 0)
		return 0;
	if (max_ms < base_ms)
		max_ms = base_ms;
	if (attempt < 1)
		attempt = 1;
	long d = base_ms;
	for (int i = 1; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	/* Equal jitter: never less than half the delay (a server gets some rest), and spread
	 * over the other half so that clients failing together do not return together. */
	long half = d / 2;
	return half + (long)(rnd % (uint32_t)(d - half + 1));
}

static uint32_t random_u32(void)
{
	uint32_t v;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	/* No entropy yet (early boot): jitter does not need to be unpredictable. */
	return (uint32_t)getpid() ^ (uint32_t)(ib_now() * 1e6);
}

long ib_retry_delay_ms(const struct ib_fetch_opts *o, int attempt, long retry_after_s)
{
	long d = ib_fetch_backoff_ms(o->retry_base_ms, o->retry_max_ms, attempt, random_u32());
	if (retry_after_s > 0) {
		long ra = retry_after_s > o->retry_max_ms / 1000 ? o->retry_max_ms
		                                                 : retry_after_s * 1000;
		if (ra > d)
			d = ra;
	}
	return d;
}

int ib_http_retryable(CURLcode res, long status)
{
	switch (res) {
	case CURLE_OK:
	case CURLE_HTTP_RETURNED_ERROR:
		return status == 408 || status == 429 ||
		       (status >= 500 && status != 501 && status != 505);
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR: return 1;
	default: return 0;
	}
}

void ib_curl_describe(CURLcode res, long status, const char *errbuf, char *out, size_t n)
{
	if ((res == CURLE_OK || res == CURLE_HTTP_RETURNED_ERROR) && status > 0)
		snprintf(out, n, "HTTP status %ld", status);
	else if (errbuf && *errbuf)
		snprintf(out, n, "%s", errbuf);
	else
		snprintf(out, n, "%s", curl_easy_strerror(res));
	/* curl's error buffer sometimes ends in a newline. */
	size_t l = strlen(out);
	while (l > 0 && (out[l - 1] == '\n' || out[l - 1] == '\r'))
		out[--l] = '\0';
}
