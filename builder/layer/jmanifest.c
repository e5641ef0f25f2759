/* jmanifest.c: a Jenkins plugin's MANIFEST.MF read into its name, version and dependencies,
 * and Jenkins' version order. */
#include "layer/jenkins.h"

#include <ctype.h>
#include <strings.h>

#include "util/strbuf.h"

/* Real plugins declare a few dozen at most. */
#define MAX_DEPS     1000
#define MAX_ID_LEN   200
#define MAX_VERS_LEN 200

void ib_jenkins_plugin_release(struct ib_jenkins_plugin *p)
{
	free(p->id);
	free(p->version);
	free(p->jenkins_version);
	for (size_t i = 0; i < p->n_deps; i++) {
		free(p->deps[i].id);
		free(p->deps[i].version);
	}
	free(p->deps);
	memset(p, 0, sizeof(*p));
}

/* ---- versions ---- */

/* Words Maven and Jenkins order before the release they lead to. */
static int prerelease_rank(const char *s, size_t n)
{
	static const char *const words[] = {"alpha", "a",  "beta",     "b",  "milestone", "m",
	                                    "rc",    "cr", "snapshot", "ea", "preview"};
	static const int rank[] = {0, 0, 1, 1, 2, 2, 3, 3, 4, 1, 1};
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strlen(words[i]) == n && strncasecmp(s, words[i], n) == 0)
			return rank[i];
	return -1;
}

static int all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* The next part of *s (up to '.', '-' or the end); 0 when there is none left. */
static int next_part(const char **s, const char **ret, size_t *ret_len)
{
	if (!**s)
		return 0;
	const char *p = *s;
	size_t n = strcspn(p, ".-");
	*ret = p;
	*ret_len = n;
	*s = p[n] ? p + n + 1 : p + n;
	return 1;
}

static int cmp_numbers(const char *a, size_t la, const char *b, size_t lb)
{
	while (la > 0 && *a == '0')
		a++, la--;
	while (lb > 0 && *b == '0')
		b++, lb--;
	if (la != lb)
		return la < lb ? -1 : 1;
	return memcmp(a, b, la);
}

static int cmp_words(const char *a, size_t la, const char *b, size_t lb)
{
	int ra = prerelease_rank(a, la), rb = prerelease_rank(b, lb);
	if (ra != rb && (ra >= 0 || rb >= 0))
		return ra < 0 ? 1 : rb < 0 ? -1 : ra < rb ? -1 : 1;
	size_t n = la < lb ? la : lb;
	int c = strncasecmp(a, b, n);
	if (c)
		return c;
	return la < lb ? -1 : la > lb;
}

/* A part compared with a missing one (the shorter version ran out). */
static int cmp_missing(const char *p, size_t n)
{
	if (all_digits(p, n))
		return cmp_numbers(p, n, "", 0) > 0;
	return prerelease_rank(p, n) >= 0 ? -1 : 1;
}

int ib_jenkins_version_cmp(const char *a, const char *b)
{
	for (;;) {
		const char *pa = NULL, *pb = NULL;
		size_t la = 0, lb = 0;
		int ha = next_part(&a, &pa, &la), hb = next_part(&b, &pb, &lb);
		int c;
		if (!ha && !hb)
			return 0;
		if (!hb)
			c = cmp_missing(pa, la);
		else if (!ha)
			c = -cmp_missing(pb, lb);
		else if (all_digits(pa, la) && all_digits(pb, lb))
			c = cmp_numbers(pa, la, pb, lb);
		else if (all_digits(pa, la))
			c = 1; /* a number is newer than a word: 1.0.1 > 1.0-beta */
		else if (all_digits(pb, lb))
			c = -1;
		else
			c = cmp_words(pa, la, pb, lb);
		if (c)
			return c < 0 ? -1 : 1;
	}
}

/* ---- the manifest ---- */

enum { H_SHORT_NAME, H_PLUGIN_VERSION, H_JENKINS_VERSION, H_DEPS, H__MAX };
static const char *const header_names[H__MAX] = {"Short-Name", "Plugin-Version", "Jenkins-Version",
                                                 "Plugin-Dependencies"};

struct mparse {
	struct ib_ctx *ctx;
	const char *what;
	char *value[H__MAX];
	int line[H__MAX];
	/* The header being read: its value grows by continuation lines. */
	int cur; /* index into value[], -1 for a header not kept, -2 before any header */
	int cur_line;
	struct strbuf cur_value;
};

static int mf_error(struct mparse *m, int line, const char *fmt, ...) _printf_(3, 4);
static int mf_error(struct mparse *m, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (line > 0)
		return ib_error(m->ctx, IB_E_SPEC, "%s: META-INF/MANIFEST.MF line %d: %s", m->what,
		                line, msg ? msg : "bad manifest");
	return ib_error(m->ctx, IB_E_SPEC, "%s: META-INF/MANIFEST.MF: %s", m->what,
	                msg ? msg : "bad manifest");
}

static void end_header(struct mparse *m)
{
	if (m->cur >= 0) {
		m->value[m->cur] = sb_take(&m->cur_value);
		m->line[m->cur] = m->cur_line;
	}
	sb_reset(&m->cur_value);
	m->cur = -1;
}

/* One line of the main section: a header "Name: value" or a continuation " more". */
static int mf_line(struct mparse *m, const char *s, size_t n, int lineno)
{
	if (memchr(s, '\0', n))
		return mf_error(m, lineno, "a NUL byte");
	if (s[0] == ' ') {
		if (m->cur == -2)
			return mf_error(m, lineno, "a continuation line with no header before it");
		if (m->cur >= 0)
			sb_add(&m->cur_value, s + 1, n - 1);
		return 0;
	}
	end_header(m);
	const char *colon = memchr(s, ':', n);
	size_t nl = colon ? (size_t)(colon - s) : 0;
	if (!colon || nl == 0)
		return mf_error(m, lineno, "'%.*s' is not a header (Name: value)",
		                (int)(n > 60 ? 60 : n), s);
	for (size_t i = 0; i < nl; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return mf_error(m, lineno, "'%.*s' is not a header name", (int)nl, s);
	const char *v = colon + 1;
	if (v < s + n && *v == ' ')
		v++;
	for (int h = 0; h < H__MAX; h++) {
		if (strlen(header_names[h]) != nl || strncasecmp(s, header_names[h], nl) != 0)
			continue;
		if (m->value[h])
			return mf_error(m, lineno, "a second %s (the first is on line %d)",
			                header_names[h], m->line[h]);
		m->cur = h;
	}
	m->cur_line = lineno;
	if (m->cur >= 0)
		sb_add(&m->cur_value, v, (size_t)(s + n - v));
	return 0;
}

static int valid_id(const char *s, size_t n)
{
	if (n == 0 || n > MAX_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return 0;
	return 1;
}

static int valid_version(const char *s, size_t n)
{
	if (n == 0 || n > MAX_VERS_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f ||
		    strchr(",;:", s[i]))
			return 0;
	return 1;
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && **s == ' ')
		(*s)++, (*n)--;
	while (*n > 0 && (*s)[*n - 1] == ' ')
		(*n)--;
}

/* One "id:version[;resolution:=optional]" of Plugin-Dependencies. */
static int parse_dep(struct mparse *m, const char *s, size_t n, struct ib_jenkins_plugin *p)
{
	int line = m->line[H_DEPS];
	trim(&s, &n);
	if (n == 0)
		return mf_error(m, line, "Plugin-Dependencies has an empty entry");
	const char *semi = memchr(s, ';', n);
	size_t main_len = semi ? (size_t)(semi - s) : n;
	const char *colon = memchr(s, ':', main_len);
	if (!colon)
		return mf_error(m, line, "Plugin-Dependencies: '%.*s' is not id:version",
		                (int)(n > 80 ? 80 : n), s);
	const char *id = s, *ver = colon + 1;
	size_t idn = (size_t)(colon - s), vn = main_len - idn - 1;
	if (!valid_id(id, idn) || !valid_version(ver, vn))
		return mf_error(m, line, "Plugin-Dependencies: '%.*s' is not id:version",
		                (int)(main_len > 80 ? 80 : main_len), s);
	int optional = 0;
	if (semi) {
		const char *attr = semi + 1;
		size_t an = n - main_len - 1;
		trim(&attr, &an);
		if (an == strlen("resolution:=optional") &&
		    strncmp(attr, "resolution:=optional", an) == 0)
			optional = 1;
		else
			return mf_error(m, line,
			                "Plugin-Dependencies: '%.*s' has '%.*s' (only "
			                "resolution:=optional is known)",
			                (int)idn, id, (int)(an > 60 ? 60 : an), attr);
	}
	for (size_t i = 0; i < p->n_deps; i++)
		if (strlen(p->deps[i].id) == idn && strncmp(p->deps[i].id, id, idn) == 0)
			return mf_error(m, line, "Plugin-Dependencies names '%.*s' twice", (int)idn,
			                id);
	if (p->n_deps >= MAX_DEPS)
		return mf_error(m, line, "Plugin-Dependencies has more than %d entries", MAX_DEPS);
	p->deps = xrealloc(p->deps, (p->n_deps + 1) * sizeof(*p->deps));
	p->deps[p->n_deps++] = (struct ib_jenkins_dep){
	        .id = xstrndup(id, idn),
	        .version = xstrndup(ver, vn),
	        .optional = optional,
	};
	return 0;
}

static int mf_finish(struct mparse *m, struct ib_jenkins_plugin *p)
{
	const char *id = m->value[H_SHORT_NAME], *ver = m->value[H_PLUGIN_VERSION];
	if (!id)
		return mf_error(m, 0, "no Short-Name (not a Jenkins plugin)");
	if (!valid_id(id, strlen(id)))
		return mf_error(m, m->line[H_SHORT_NAME], "Short-Name '%.80s' is not a plugin id",
		                id);
	if (!ver)
		return mf_error(m, 0, "no Plugin-Version");
	if (!valid_version(ver, strlen(ver)))
		return mf_error(m, m->line[H_PLUGIN_VERSION],
		                "Plugin-Version '%.80s' is not a version", ver);
	const char *jv = m->value[H_JENKINS_VERSION];
	if (jv && !valid_version(jv, strlen(jv)))
		return mf_error(m, m->line[H_JENKINS_VERSION],
		                "Jenkins-Version '%.80s' is not a version", jv);
	const char *deps = m->value[H_DEPS];
	if (deps && *deps) {
		for (const char *s = deps;;) {
			size_t n = strcspn(s, ",");
			int r = parse_dep(m, s, n, p);
			if (r < 0)
				return r;
			if (!s[n])
				break;
			s += n + 1;
		}
	}
	p->id = TAKE_PTR(m->value[H_SHORT_NAME]);
	p->version = TAKE_PTR(m->value[H_PLUGIN_VERSION]);
	p->jenkins_version = TAKE_PTR(m->value[H_JENKINS_VERSION]);
	return 0;
}

int ib_jenkins_manifest_parse(struct ib_ctx *ctx, const char *what, const char *text, size_t len,
                              struct ib_jenkins_plugin *ret)
{
	memset(ret, 0, sizeof(*ret));
	struct mparse m = {.ctx = ctx, .what = what, .cur = -2};
	int r = 0, lineno = 0;
	if (len > IB_JENKINS_MAX_MANIFEST)
		r = mf_error(&m, 0, "larger than %u bytes", IB_JENKINS_MAX_MANIFEST);
	/* A UTF-8 byte order mark is not part of the first header's name. */
	size_t i = len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	while (r == 0 && i < len) {
		const char *s = text + i;
		size_t n = 0;
		while (i + n < len && s[n] != '\r' && s[n] != '\n')
			n++;
		i += n;
		/* CRLF, LF or CR: one line end each. */
		if (i < len && text[i] == '\r') {
			i++;
			if (i < len && text[i] == '\n')
				i++;
		} else if (i < len && text[i] == '\n') {
			i++;
		}
		lineno++;
		if (n == 0)
			break; /* the main section ends at the first empty line */
		r = mf_line(&m, s, n, lineno);
	}
	if (r == 0) {
		end_header(&m);
		r = mf_finish(&m, ret);
	}
	for (int h = 0; h < H__MAX; h++)
		free(m.value[h]);
	sb_release(&m.cur_value);
	if (r < 0)
		ib_jenkins_plugin_release(ret);
	return r;
}
