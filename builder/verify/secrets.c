/* secrets.c: find private keys, AWS credentials, kubeadm tokens and keys and registry
 * passwords in bytes; password hashes. */
#include "vparse.h"

#define MAX_LABEL 40 /* "-----BEGIN <label>PRIVATE KEY": OPENSSH, ENCRYPTED, PGP ... */

/* The AWS documentation's example key id and secret: text that quotes them leaks nothing. */
static const char aws_example[] = "AKIAIOSFODNN7EXAMPLE";
static const char aws_example_secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

const char *ib_secret_name(enum ib_secret s)
{
	switch (s) {
	case IB_SECRET_PRIVATE_KEY: return "private key";
	case IB_SECRET_AWS_KEY: return "AWS access key id";
	case IB_SECRET_K8S_TOKEN: return "kubeadm bootstrap token";
	case IB_SECRET_AWS_SECRET: return "AWS secret access key";
	case IB_SECRET_AWS_SESSION: return "AWS session token";
	case IB_SECRET_K8S_CERT_KEY: return "kubeadm certificate key";
	case IB_SECRET_REGISTRY_AUTH: return "container registry password";
	case IB_SECRET_NONE: break;
	}
	return "nothing";
}

static int lower_digit(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int upper_digit(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int alnum(int c)
{
	return lower_digit(c) || upper_digit(c);
}

/* Does a run of n bytes of class cls start at p, inside len? */
static int run(const unsigned char *b, size_t len, size_t p, size_t n, int (*cls)(int))
{
	if (p + n > len)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!cls(b[p + i]))
			return 0;
	return 1;
}

static int private_key_at(const unsigned char *b, size_t len, size_t p)
{
	static const char begin[] = "-----BEGIN ";
	const size_t nb = sizeof(begin) - 1;
	if (p + nb > len || memcmp(b + p, begin, nb) != 0)
		return 0;
	for (size_t q = p + nb; q <= p + nb + MAX_LABEL && q < len; q++) {
		static const char *const ends[] = {"PRIVATE KEY-----", "PRIVATE KEY BLOCK-----"};
		for (size_t i = 0; i < ARRAY_SIZE(ends); i++) {
			size_t ne = strlen(ends[i]);
			if (q + ne <= len && memcmp(b + q, ends[i], ne) == 0)
				return 1;
		}
		if (!upper_digit(b[q]) && b[q] != ' ')
			return 0;
	}
	return 0;
}

/* AKIA: a long-term key id; ASIA: a temporary one (it comes with a session token). */
static int aws_key_at(const unsigned char *b, size_t len, size_t p)
{
	if (p + 20 > len || (memcmp(b + p, "AKIA", 4) != 0 && memcmp(b + p, "ASIA", 4) != 0) ||
	    !run(b, len, p + 4, 16, upper_digit))
		return 0;
	if ((p > 0 && alnum(b[p - 1])) || (p + 20 < len && alnum(b[p + 20])))
		return 0;
	return memcmp(b + p, aws_example, 20) != 0;
}

/* A token stands alone: not part of a longer word, file name or dotted name. */
static int token_at(const unsigned char *b, size_t len, size_t p)
{
	if (!run(b, len, p, 6, lower_digit) || p + 23 > len || b[p + 6] != '.' ||
	    !run(b, len, p + 7, 16, lower_digit))
		return 0;
	if (p > 0 && (alnum(b[p - 1]) || strchr("._-", b[p - 1])))
		return 0;
	size_t e = p + 23;
	if (e < len && (alnum(b[e]) || b[e] == '_' || b[e] == '-'))
		return 0;
	if (e + 1 < len && b[e] == '.' && alnum(b[e + 1]))
		return 0;
	return 1;
}

static int base64_char(int c)
{
	return alnum(c) || c == '/' || c == '+';
}

static int hex_lower(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Does name start at p, ignoring case, each '_' in it matching '_', '-' or nothing
 * (AWS_SECRET_ACCESS_KEY, secretAccessKey, --certificate-key)? Returns the end, or 0. */
static size_t name_at(const unsigned char *b, size_t len, size_t p, const char *name)
{
	for (; *name; name++) {
		if (*name == '_') {
			if (p < len && (b[p] == '_' || b[p] == '-'))
				p++;
			continue;
		}
		if (p >= len || (b[p] | 0x20) != *name)
			return 0;
		p++;
	}
	return p;
}

/* After a name: quotes, blanks and one '=' or ':' (or only blanks, as in an option and
 * its value); returns where the value starts, or 0. */
static size_t value_at(const unsigned char *b, size_t len, size_t p)
{
	size_t start = p, seps = 0;
	while (p < len && p - start < 8 && b[p] && strchr(" \t\"'=:", b[p])) {
		if (b[p] == '=' || b[p] == ':')
			seps++;
		p++;
	}
	return p > start && seps <= 1 ? p : 0;
}

/* A value of exactly n (at least n, when more is set) bytes of class cls after a name;
 * exactly: not followed by more of a word or of base64. */
static int named(const unsigned char *b, size_t len, size_t p, const char *const *names,
                 size_t n_names, size_t n, int more, int (*cls)(int))
{
	for (size_t i = 0; i < n_names; i++) {
		size_t e = name_at(b, len, p, names[i]);
		size_t v = e ? value_at(b, len, e) : 0;
		if (!v || !run(b, len, v, n, cls))
			continue;
		if (n == sizeof(aws_example_secret) - 1 &&
		    memcmp(b + v, aws_example_secret, n) == 0)
			continue;
		if (more || v + n == len || !(base64_char(b[v + n]) || b[v + n] == '='))
			return 1;
	}
	return 0;
}

static enum ib_secret named_secret(const unsigned char *b, size_t len, size_t p)
{
	static const char *const aws_secret[] = {"secret_access_key", "aws_secret_access_key"};
	static const char *const aws_session[] = {"aws_session_token", "aws_security_token",
	                                          "x_amz_security_token"};
	static const char *const cert_key[] = {"certificate_key", "cert_key"};
	int c = b[p] | 0x20;
	if ((c == 'a' || c == 's') &&
	    named(b, len, p, aws_secret, ARRAY_SIZE(aws_secret), 40, 0, base64_char))
		return IB_SECRET_AWS_SECRET;
	if ((c == 'a' || c == 'x') &&
	    named(b, len, p, aws_session, ARRAY_SIZE(aws_session), 64, 1, base64_char))
		return IB_SECRET_AWS_SESSION;
	if (c == 'c' && named(b, len, p, cert_key, ARRAY_SIZE(cert_key), 64, 0, hex_lower))
		return IB_SECRET_K8S_CERT_KEY;
	return IB_SECRET_NONE;
}

static size_t blanks(const unsigned char *b, size_t len, size_t p)
{
	for (size_t n = 0; n < 8 && p < len && (b[p] == ' ' || b[p] == '\t'); n++)
		p++;
	return p;
}

/* docker's config.json: "auth": "<base64 of user:password>"; a short value is a word. The
 * match is decided within IB_SECRET_SPAN: a value that long is taken whole. */
static int registry_auth_at(const unsigned char *b, size_t len, size_t p)
{
	static const char key[] = "\"auth\"";
	if (p + sizeof(key) - 1 > len || memcmp(b + p, key, sizeof(key) - 1) != 0)
		return 0;
	size_t q = blanks(b, len, p + sizeof(key) - 1);
	if (q >= len || b[q++] != ':')
		return 0;
	q = blanks(b, len, q);
	if (q >= len || b[q++] != '"')
		return 0;
	size_t v = q;
	while (q < len && q - v < 90 && (base64_char(b[q]) || b[q] == '='))
		q++;
	return q - v == 90 || (q - v >= 12 && q < len && b[q] == '"');
}

size_t ib_secret_find(const char *buf, size_t len, size_t from, size_t to, enum ib_secret *ret)
{
	const unsigned char *b = (const unsigned char *)buf;
	if (to > len)
		to = len;
	for (size_t p = from; p < to; p++) {
		enum ib_secret s = IB_SECRET_NONE;
		if (b[p] == '-' && private_key_at(b, len, p))
			s = IB_SECRET_PRIVATE_KEY;
		else if (b[p] == 'A' && aws_key_at(b, len, p))
			s = IB_SECRET_AWS_KEY;
		else if (lower_digit(b[p]) && p + 6 < len && b[p + 6] == '.' && token_at(b, len, p))
			s = IB_SECRET_K8S_TOKEN;
		else if (b[p] == '"' && registry_auth_at(b, len, p))
			s = IB_SECRET_REGISTRY_AUTH;
		if (s == IB_SECRET_NONE && b[p] && strchr("sSaAxXcC", b[p]))
			s = named_secret(b, len, p);
		if (s != IB_SECRET_NONE) {
			*ret = s;
			return p;
		}
	}
	return SIZE_MAX;
}

void ib_secret_scanner_init(struct ib_secret_scanner *s)
{
	memset(s, 0, sizeof(*s));
}

/* Examine positions [next, to) of the buffer; the rest waits for more data. */
static int examine(struct ib_secret_scanner *s, size_t to)
{
	if (s->found != IB_SECRET_NONE || to <= s->next)
		return s->found != IB_SECRET_NONE;
	enum ib_secret kind = IB_SECRET_NONE;
	size_t at = ib_secret_find(s->buf, s->len, s->next, to, &kind);
	s->next = to;
	if (at != SIZE_MAX) {
		s->found = kind;
		s->offset = s->base + at;
	}
	return s->found != IB_SECRET_NONE;
}

int ib_secret_feed(struct ib_secret_scanner *s, const void *data, size_t len)
{
	if (s->found != IB_SECRET_NONE)
		return 1;
	if (s->len + len > s->alloc) {
		s->alloc = s->len + len + IB_SECRET_SPAN;
		s->buf = xrealloc(s->buf, s->alloc);
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	if (s->len <= IB_SECRET_SPAN)
		return 0;
	int r = examine(s, s->len - IB_SECRET_SPAN);
	/* Keep what is not examined yet and one byte before it (a match's boundary). */
	size_t keep_from = s->next - 1;
	memmove(s->buf, s->buf + keep_from, s->len - keep_from);
	s->len -= keep_from;
	s->next -= keep_from;
	s->base += keep_from;
	return r;
}

int ib_secret_finish(struct ib_secret_scanner *s)
{
	return examine(s, s->len);
}

void ib_secret_scanner_release(struct ib_secret_scanner *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

void ib_shadow_hashed(const char *text, size_t len, struct strv *ret)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *c1 = memchr(p, ':', (size_t)(eol - p));
		if (c1) {
			const char *f = c1 + 1;
			const char *c2 = memchr(f, ':', (size_t)(eol - f));
			size_t flen = (size_t)((c2 ? c2 : eol) - f);
			/* Locked and passwordless markers are runs of '!' and '*'. */
			size_t marks = 0;
			while (marks < flen && (f[marks] == '!' || f[marks] == '*'))
				marks++;
			if (marks < flen)
				strv_push_take(ret, xstrndup(p, (size_t)(c1 - p)));
		}
		p = eol + 1;
	}
}
