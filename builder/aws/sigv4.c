/* sigv4.c: AWS Signature Version 4: canonical request, string to sign, signing key, signature. */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

void aws_hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

char *aws_base64(const void *data, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)n);
	return out;
}

void aws_amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

void aws_uri_encode(struct strbuf *sb, const char *s, size_t len, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			sb_addc(sb, (char)c);
		} else {
			char e[3] = {'%', digits[c >> 4], digits[c & 15]};
			sb_add(sb, e, 3);
		}
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *aws_uri_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < len && (h = hexval(s[i + 1])) >= 0 &&
		    (l = hexval(s[i + 2])) >= 0) {
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL))
		abort();
	aws_hex(md, 32, out);
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int n = 32;
	if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n))
		abort();
}

/* ---- canonical URI ---- */

/* Remove "." and ".." segments and empty segments ("//"), keeping a trailing slash. */
static char *normalize_path(const char *path)
{
	struct strv segs = {0};
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/");
		if (n == 1 && p[0] == '.') {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (segs.n > 0)
				free(segs.v[--segs.n]);
		} else {
			strv_push_take(&segs, xstrndup(p, n));
		}
		p += n;
	}
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < segs.n; i++) {
		sb_addc(&sb, '/');
		sb_adds(&sb, segs.v[i]);
	}
	size_t l = strlen(path);
	if (segs.n > 0 && l > 0 && path[l - 1] == '/')
		sb_addc(&sb, '/');
	if (sb.len == 0)
		sb_addc(&sb, '/');
	strv_release(&segs);
	return sb_take(&sb);
}

static void canonical_uri(struct strbuf *sb, const char *path, int normalize)
{
	if (!path || !*path)
		path = "/";
	_cleanup_free_ char *norm = normalize ? normalize_path(path) : xstrdup(path);
	aws_uri_encode(sb, norm, strlen(norm), 1);
}

/* ---- canonical query ---- */

struct qparam {
	char *name, *value; /* encoded */
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

struct qlist {
	struct qparam *v;
	size_t n, alloc;
};

/* Add one parameter given decoded (raw) name and value. */
static void q_add(struct qlist *q, const char *name, size_t nl, const char *value, size_t vl)
{
	if (q->n == q->alloc) {
		q->alloc = q->alloc ? 2 * q->alloc : 16;
		q->v = xrealloc(q->v, q->alloc * sizeof(*q->v));
	}
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
	aws_uri_encode(&a, name, nl, 0);
	aws_uri_encode(&b, value, vl, 0);
	q->v[q->n].name = sb_take(&a);
	q->v[q->n].value = sb_take(&b);
	q->n++;
}

static void q_adds(struct qlist *q, const char *name, const char *value)
{
	q_add(q, name, strlen(name), value, strlen(value));
}

/* A raw query as it appears in a URL: escapes are decoded first, so that a query already
 * encoded and one not yet encoded give the same canonical form. */
static void q_parse(struct qlist *q, const char *query)
{
	const char *p = query;
	while (p && *p) {
		size_t n = strcspn(p, "&");
		if (n > 0) {
			const char *eq = memchr(p, '=', n);
			size_t nl = eq ? (size_t)(eq - p) : n;
			_cleanup_free_ char *name = aws_uri_decode(p, nl);
			_cleanup_free_ char *value =
			        eq ? aws_uri_decode(eq + 1, n - nl - 1) : xstrdup("");
			q_adds(q, name, value);
		}
		p += n;
		if (*p == '&')
			p++;
	}
}

static void q_release(struct qlist *q)
{
	for (size_t i = 0; i < q->n; i++) {
		free(q->v[i].name);
		free(q->v[i].value);
	}
	free(q->v);
}

/* ---- canonical headers ---- */

struct chdr {
	char *name; /* lowercase */
	char *value;
	size_t order;
};

static int chdr_cmp(const void *a, const void *b)
{
	const struct chdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Trim, and collapse runs of whitespace (folded lines included) into one space. */
static char *trim_value(const char *v)
{
	struct strbuf sb = STRBUF_INIT;
	int space = 0;
	sb_adds(&sb, "");
	for (const char *p = v; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			space = 1;
			continue;
		}
		if (space && sb.len > 0)
			sb_addc(&sb, ' ');
		space = 0;
		sb_addc(&sb, *p);
	}
	return sb_take(&sb);
}

static char *lower(const char *s)
{
	char *l = xstrdup(s);
	for (char *p = l; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return l;
}

void aws_sig_result_release(struct aws_sig_result *res)
{
	free(res->canonical_request);
	free(res->string_to_sign);
	for (size_t i = 0; i < res->n_headers; i++) {
		free((char *)res->headers[i].name);
		free((char *)res->headers[i].value);
	}
	free(res->headers);
	free(res->query_add);
	memset(res, 0, sizeof(*res));
}

static void out_header(struct aws_sig_result *out, const char *name, const char *value)
{
	out->headers = xrealloc(out->headers, (out->n_headers + 1) * sizeof(*out->headers));
	out->headers[out->n_headers].name = xstrdup(name);
	out->headers[out->n_headers].value = xstrdup(value);
	out->n_headers++;
}

int aws_sigv4_sign(const struct aws_sig_request *r, const struct aws_sig_params *p,
                   struct aws_sig_result *out)
{
	memset(out, 0, sizeof(*out));
	int query_mode = (p->flags & AWS_SIG_QUERY) != 0;
	const char *token = p->creds.token && *p->creds.token ? p->creds.token : NULL;
	int sign_token = token && !(p->flags & AWS_SIG_OMIT_TOKEN);
	char amzdate[17], date[9], payload[65];
	aws_amz_date(p->when, amzdate);
	memcpy(date, amzdate, 8);
	date[8] = '\0';
	_cleanup_free_ char *scope =
	        xasprintf("%s/%s/%s/aws4_request", date, p->region, p->service);

	if (r->payload_hash)
		snprintf(payload, sizeof(payload), "%s", r->payload_hash);
	else
		sha256_hex(r->body ? r->body : "", r->body_len, payload);

	/* The headers that get signed: the caller's, plus ours in the header variant. */
	size_t nh = r->n_headers;
	struct chdr *h = xcalloc(nh + 4, sizeof(*h));
	int have_host = 0, have_token = 0;
	for (size_t i = 0; i < r->n_headers; i++) {
		h[i].name = lower(r->headers[i].name);
		h[i].value = trim_value(r->headers[i].value);
		h[i].order = i;
		have_host |= streq(h[i].name, "host");
		have_token |= streq(h[i].name, "x-amz-security-token");
	}
	if (!have_host) {
		for (size_t i = 0; i < nh; i++) {
			free(h[i].name);
			free(h[i].value);
		}
		free(h);
		return -1;
	}
	if (!query_mode) {
		/* A request that already carries the token (signed as any header) gets no
		 * second one. */
		if (token && !have_token) {
			out_header(out, "X-Amz-Security-Token", token);
			if (sign_token) {
				h[nh] = (struct chdr){xstrdup("x-amz-security-token"),
				                      xstrdup(token), nh};
				nh++;
			}
		}
		out_header(out, "X-Amz-Date", amzdate);
		h[nh] = (struct chdr){xstrdup("x-amz-date"), xstrdup(amzdate), nh};
		nh++;
		if (p->flags & AWS_SIG_BODY_HEADER) {
			out_header(out, "x-amz-content-sha256", payload);
			h[nh] = (struct chdr){xstrdup("x-amz-content-sha256"), xstrdup(payload),
			                      nh};
			nh++;
		}
	}
	qsort(h, nh, sizeof(*h), chdr_cmp);

	struct strbuf canon_h = STRBUF_INIT, signed_h = STRBUF_INIT;
	for (size_t i = 0; i < nh; i++) {
		if (i > 0 && streq(h[i].name, h[i - 1].name)) {
			/* Repeated header: values joined with commas, in request order. */
			canon_h.len--; /* drop the newline */
			sb_addc(&canon_h, ',');
			sb_adds(&canon_h, h[i].value);
			sb_addc(&canon_h, '\n');
			continue;
		}
		sb_addf(&canon_h, "%s:%s\n", h[i].name, h[i].value);
		if (signed_h.len)
			sb_addc(&signed_h, ';');
		sb_adds(&signed_h, h[i].name);
	}
	for (size_t i = 0; i < nh; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);

	struct qlist q = {0};
	q_parse(&q, r->query);
	_cleanup_free_ char *credential = xasprintf("%s/%s", p->creds.access_key, scope);
	char expires[32];
	snprintf(expires, sizeof(expires), "%ld", p->expires > 0 ? p->expires : 3600L);
	if (query_mode) {
		q_adds(&q, "X-Amz-Algorithm", ALGORITHM);
		q_adds(&q, "X-Amz-Credential", credential);
		q_adds(&q, "X-Amz-Date", amzdate);
		q_adds(&q, "X-Amz-Expires", expires);
		if (sign_token)
			q_adds(&q, "X-Amz-Security-Token", token);
		q_adds(&q, "X-Amz-SignedHeaders", sb_str(&signed_h));
	}
	if (q.n > 1)
		qsort(q.v, q.n, sizeof(*q.v), qparam_cmp);

	struct strbuf creq = STRBUF_INIT;
	sb_adds(&creq, r->method);
	sb_addc(&creq, '\n');
	canonical_uri(&creq, r->path, !(p->flags & AWS_SIG_NO_NORMALIZE));
	sb_addc(&creq, '\n');
	for (size_t i = 0; i < q.n; i++)
		sb_addf(&creq, "%s%s=%s", i ? "&" : "", q.v[i].name, q.v[i].value);
	sb_addc(&creq, '\n');
	sb_add(&creq, canon_h.buf, canon_h.len);
	sb_addc(&creq, '\n');
	sb_addf(&creq, "%s\n%s", sb_str(&signed_h), payload);
	q_release(&q);
	sb_release(&canon_h);

	char creq_hash[65];
	sha256_hex(creq.buf, creq.len, creq_hash);
	out->canonical_request = sb_take(&creq);
	out->string_to_sign = xasprintf(ALGORITHM "\n%s\n%s\n%s", amzdate, scope, creq_hash);

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
	 */
	unsigned char k[32], k2[32];
	_cleanup_free_ char *k0 = xasprintf("AWS4%s", p->creds.secret_key);
	hmac(k0, strlen(k0), date, k);
	hmac(k, 32, p->region, k2);
	hmac(k2, 32, p->service, k);
	hmac(k, 32, "aws4_request", k2);
	hmac(k2, 32, out->string_to_sign, k);
	aws_hex(k, 32, out->signature);
	explicit_bzero(k0, strlen(k0));
	explicit_bzero(k2, sizeof(k2));

	if (query_mode) {
		struct strbuf qa = STRBUF_INIT;
		sb_adds(&qa, "X-Amz-Algorithm=" ALGORITHM "&X-Amz-Credential=");
		aws_uri_encode(&qa, credential, strlen(credential), 0);
		sb_addf(&qa, "&X-Amz-Date=%s&X-Amz-SignedHeaders=", amzdate);
		aws_uri_encode(&qa, sb_str(&signed_h), signed_h.len, 0);
		sb_addf(&qa, "&X-Amz-Expires=%s", expires);
		if (token) {
			sb_adds(&qa, "&X-Amz-Security-Token=");
			aws_uri_encode(&qa, token, strlen(token), 0);
		}
		sb_addf(&qa, "&X-Amz-Signature=%s", out->signature);
		out->query_add = sb_take(&qa);
	} else {
		_cleanup_free_ char *auth =
		        xasprintf(ALGORITHM " Credential=%s, SignedHeaders=%s, Signature=%s",
		                  credential, sb_str(&signed_h), out->signature);
		out_header(out, "Authorization", auth);
	}
	sb_release(&signed_h);
	return 0;
}
