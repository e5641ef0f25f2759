/* xml.c: a strict, bounded reader for the XML subset AWS answers in (see xml.h). */
#include <strings.h>

#include "xml.h"

#include "util/strbuf.h"

#define DEFAULT_MAX_SIZE  ((size_t)16 << 20)
#define DEFAULT_MAX_DEPTH 64u
#define DEFAULT_MAX_NODES ((size_t)1 << 20)

struct parser {
	const char *s;
	size_t len, pos;
	struct xml_limits lim;
	size_t nodes;
	struct xml_error *err;
	int failed;
};

static int fail(struct parser *p, size_t at, const char *fmt, ...) _printf_(3, 4);
static int fail(struct parser *p, size_t at, const char *fmt, ...)
{
	if (p->failed)
		return -1;
	p->failed = 1;
	struct xml_error *e = p->err;
	e->offset = at;
	e->line = 1;
	e->col = 1;
	for (size_t i = 0; i < at && i < p->len; i++) {
		if (p->s[i] == '\n') {
			e->line++;
			e->col = 1;
		} else {
			e->col++;
		}
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF) and no control
 * characters but tab, newline and carriage return: checked once over the whole input. */
static int check_chars(struct parser *p)
{
	const unsigned char *s = (const unsigned char *)p->s;
	size_t i = 0;
	while (i < p->len) {
		unsigned c = s[i];
		if (c < 0x80) {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
				return fail(p, i, "control character 0x%02x", c);
			if (c == 0x7f)
				return fail(p, i, "control character 0x7f");
			i++;
			continue;
		}
		size_t n;
		unsigned cp;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return fail(p, i, "invalid UTF-8");
		}
		if (i + n >= p->len)
			return fail(p, i, "truncated UTF-8 sequence");
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return fail(p, i, "invalid UTF-8");
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
			return fail(p, i, "invalid UTF-8");
		i += n + 1;
	}
	return 0;
}

static int is_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       c >= 0x80;
}

static int is_name_char(unsigned char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_space(struct parser *p)
{
	while (p->pos < p->len && is_space(p->s[p->pos]))
		p->pos++;
}

static int starts(struct parser *p, const char *lit)
{
	size_t l = strlen(lit);
	return p->len - p->pos >= l && memcmp(p->s + p->pos, lit, l) == 0;
}

/* Move past the next occurrence of end; an error when there is none. */
static int skip_past(struct parser *p, const char *end, const char *what)
{
	size_t start = p->pos, l = strlen(end);
	const char *f = memmem(p->s + p->pos, p->len - p->pos, end, l);
	if (!f)
		return fail(p, start, "unterminated %s", what);
	p->pos = (size_t)(f - p->s) + l;
	return 0;
}

static int parse_name(struct parser *p, size_t *start, size_t *nlen)
{
	*start = p->pos;
	if (p->pos >= p->len || !is_name_start((unsigned char)p->s[p->pos]))
		return fail(p, p->pos, "expected a name");
	while (p->pos < p->len && is_name_char((unsigned char)p->s[p->pos]))
		p->pos++;
	*nlen = p->pos - *start;
	return 0;
}

static void put_utf8(struct strbuf *sb, unsigned cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	sb_add(sb, b, n);
}

/* At '&': decode one entity or character reference into sb. */
static int parse_entity(struct parser *p, struct strbuf *sb)
{
	size_t at = p->pos;
	const char *semi = memchr(p->s + p->pos, ';', p->len - p->pos < 12 ? p->len - p->pos : 12);
	if (!semi)
		return fail(p, at, "'&' that starts no entity");
	const char *e = p->s + p->pos + 1;
	size_t el = (size_t)(semi - e);
	static const struct {
		const char *name;
		char c;
	} named[] = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};
	for (size_t i = 0; i < ARRAY_SIZE(named); i++)
		if (el == strlen(named[i].name) && memcmp(e, named[i].name, el) == 0) {
			sb_addc(sb, named[i].c);
			p->pos = (size_t)(semi - p->s) + 1;
			return 0;
		}
	if (el >= 1 && e[0] == '#') {
		int hex = el >= 2 && e[1] == 'x';
		size_t i = hex ? 2 : 1;
		if (i >= el)
			return fail(p, at, "empty character reference");
		unsigned long cp = 0;
		for (; i < el; i++) {
			char c = e[i];
			int d = c >= '0' && c <= '9'          ? c - '0'
			        : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
			        : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
			                                      : -1;
			if (d < 0)
				return fail(p, at, "bad character reference");
			cp = cp * (hex ? 16 : 10) + (unsigned long)d;
			if (cp > 0x10ffff)
				return fail(p, at, "character reference out of range");
		}
		/* XML 1.0 Char: no NUL, no other controls, no surrogates, no FFFE/FFFF. */
		if ((cp < 0x20 && cp != 9 && cp != 10 && cp != 13) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
			return fail(p, at, "character reference to a forbidden character");
		put_utf8(sb, (unsigned)cp);
		p->pos = (size_t)(semi - p->s) + 1;
		return 0;
	}
	return fail(p, at, "unknown entity '&%.*s;'", (int)el, e);
}

/* Attributes up to '>' or "/>": checked (quoted, unique, entities valid) and dropped. */
static int parse_attrs(struct parser *p, int *empty)
{
	struct strv seen = {0};
	int r = 0;
	for (;;) {
		size_t before = p->pos;
		skip_space(p);
		if (p->pos >= p->len) {
			r = fail(p, p->pos, "unterminated start tag");
			break;
		}
		if (p->s[p->pos] == '>') {
			p->pos++;
			*empty = 0;
			break;
		}
		if (starts(p, "/>")) {
			p->pos += 2;
			*empty = 1;
			break;
		}
		if (p->pos == before) {
			r = fail(p, p->pos, "expected whitespace before an attribute");
			break;
		}
		size_t ns, nl;
		if ((r = parse_name(p, &ns, &nl)) < 0)
			break;
		_cleanup_free_ char *name = xstrndup(p->s + ns, nl);
		if (strv_contains(&seen, name)) {
			r = fail(p, ns, "duplicate attribute '%s'", name);
			break;
		}
		strv_push(&seen, name);
		skip_space(p);
		if (p->pos >= p->len || p->s[p->pos] != '=') {
			r = fail(p, p->pos, "expected '=' after attribute '%s'", name);
			break;
		}
		p->pos++;
		skip_space(p);
		char q = p->pos < p->len ? p->s[p->pos] : 0;
		if (q != '"' && q != '\'') {
			r = fail(p, p->pos, "expected a quoted attribute value");
			break;
		}
		p->pos++;
		struct strbuf v = STRBUF_INIT;
		while (r == 0 && p->pos < p->len && p->s[p->pos] != q) {
			char c = p->s[p->pos];
			if (c == '<')
				r = fail(p, p->pos, "'<' in an attribute value");
			else if (c == '&')
				r = parse_entity(p, &v);
			else
				p->pos++;
		}
		sb_release(&v);
		if (r < 0)
			break;
		if (p->pos >= p->len) {
			r = fail(p, p->pos, "unterminated attribute value");
			break;
		}
		p->pos++;
	}
	strv_release(&seen);
	return r;
}

static int parse_element(struct parser *p, struct xml_node *n, unsigned depth);

/* Comments, processing instructions and CDATA; 1 when one was consumed, 0 when none is
 * here, -1 on error. CDATA goes into text when text is not NULL, else it is an error. */
static int parse_misc(struct parser *p, struct strbuf *text)
{
	if (starts(p, "<!--")) {
		size_t at = p->pos;
		p->pos += 4;
		const char *f = memmem(p->s + p->pos, p->len - p->pos, "--", 2);
		if (!f)
			return fail(p, at, "unterminated comment");
		if ((size_t)(f - p->s) + 2 >= p->len || f[2] != '>')
			return fail(p, (size_t)(f - p->s), "'--' inside a comment");
		p->pos = (size_t)(f - p->s) + 3;
		return 1;
	}
	if (starts(p, "<![CDATA[")) {
		if (!text)
			return fail(p, p->pos, "CDATA outside the root element");
		size_t at = p->pos;
		p->pos += 9;
		const char *f = memmem(p->s + p->pos, p->len - p->pos, "]]>", 3);
		if (!f)
			return fail(p, at, "unterminated CDATA section");
		sb_add(text, p->s + p->pos, (size_t)(f - (p->s + p->pos)));
		p->pos = (size_t)(f - p->s) + 3;
		return 1;
	}
	if (starts(p, "<!"))
		return fail(p, p->pos, "DOCTYPE and other declarations are not accepted");
	if (starts(p, "<?")) {
		size_t at = p->pos;
		p->pos += 2;
		size_t ns, nl;
		if (parse_name(p, &ns, &nl) < 0)
			return -1;
		if (nl == 3 && strncasecmp(p->s + ns, "xml", 3) == 0 && at != 0)
			return fail(p, at, "XML declaration not at the start");
		return skip_past(p, "?>", "processing instruction") < 0 ? -1 : 1;
	}
	return 0;
}

static int parse_content(struct parser *p, struct xml_node *n, unsigned depth, size_t name_start,
                         size_t name_len)
{
	struct strbuf text = STRBUF_INIT;
	size_t alloc = 0;
	int r = 0;
	for (;;) {
		if (p->pos >= p->len) {
			r = fail(p, name_start - 1, "element <%.*s> is never closed", (int)name_len,
			         p->s + name_start);
			break;
		}
		char c = p->s[p->pos];
		if (c == '&') {
			if ((r = parse_entity(p, &text)) < 0)
				break;
			continue;
		}
		if (c != '<') {
			size_t end = p->pos;
			while (end < p->len && p->s[end] != '<' && p->s[end] != '&')
				end++;
			const char *bad = memmem(p->s + p->pos, end - p->pos, "]]>", 3);
			if (bad) {
				r = fail(p, (size_t)(bad - p->s), "']]>' in character data");
				break;
			}
			sb_add(&text, p->s + p->pos, end - p->pos);
			p->pos = end;
			continue;
		}
		if (starts(p, "</")) {
			size_t at = p->pos;
			p->pos += 2;
			size_t es, el;
			if ((r = parse_name(p, &es, &el)) < 0)
				break;
			if (el != name_len || memcmp(p->s + es, p->s + name_start, el) != 0) {
				r = fail(p, at, "</%.*s> closes <%.*s>", (int)el, p->s + es,
				         (int)name_len, p->s + name_start);
				break;
			}
			skip_space(p);
			if (p->pos >= p->len || p->s[p->pos] != '>') {
				r = fail(p, p->pos, "expected '>' to end </%.*s>", (int)el,
				         p->s + es);
				break;
			}
			p->pos++;
			break;
		}
		int m = parse_misc(p, &text);
		if (m < 0) {
			r = -1;
			break;
		}
		if (m > 0)
			continue;
		if (n->n == alloc) {
			alloc = alloc ? 2 * alloc : 4;
			n->children = xrealloc(n->children, alloc * sizeof(*n->children));
		}
		memset(&n->children[n->n], 0, sizeof(*n->children));
		n->n++;
		if ((r = parse_element(p, &n->children[n->n - 1], depth + 1)) < 0)
			break;
	}
	n->text_len = text.len;
	n->text = sb_take(&text);
	return r;
}

static int parse_element(struct parser *p, struct xml_node *n, unsigned depth)
{
	if (depth > p->lim.max_depth)
		return fail(p, p->pos, "elements nested deeper than %u", p->lim.max_depth);
	if (++p->nodes > p->lim.max_nodes)
		return fail(p, p->pos, "more than %zu elements", p->lim.max_nodes);
	if (p->pos >= p->len || p->s[p->pos] != '<')
		return fail(p, p->pos, "expected an element");
	p->pos++;
	size_t ns, nl;
	if (parse_name(p, &ns, &nl) < 0)
		return -1;
	n->name = xstrndup(p->s + ns, nl);
	int empty = 0;
	if (parse_attrs(p, &empty) < 0)
		return -1;
	if (empty) {
		n->text = xstrdup("");
		return 0;
	}
	return parse_content(p, n, depth, ns, nl);
}

static void node_release(struct xml_node *n)
{
	for (size_t i = 0; i < n->n; i++)
		node_release(&n->children[i]);
	free(n->children);
	free(n->name);
	free(n->text);
}

void xml_free(struct xml_node *n)
{
	if (!n)
		return;
	node_release(n);
	free(n);
}

int xml_parse_ex(const char *data, size_t len, const struct xml_limits *lim, struct xml_node **ret,
                 struct xml_error *err)
{
	struct xml_error dummy = {0};
	struct parser p = {.s = data, .len = len, .err = err ? err : &dummy};
	memset(p.err, 0, sizeof(*p.err));
	p.lim.max_size = lim && lim->max_size ? lim->max_size : DEFAULT_MAX_SIZE;
	p.lim.max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_MAX_DEPTH;
	p.lim.max_nodes = lim && lim->max_nodes ? lim->max_nodes : DEFAULT_MAX_NODES;
	*ret = NULL;
	if (len > p.lim.max_size)
		return fail(&p, 0, "document larger than %zu bytes", p.lim.max_size);
	if (check_chars(&p) < 0)
		return -1;
	if (starts(&p, "\xef\xbb\xbf"))
		p.pos = 3; /* a byte order mark is allowed before the declaration */
	struct xml_node *root = xcalloc(1, sizeof(*root));
	int have_root = 0;
	for (;;) {
		skip_space(&p);
		if (p.pos >= p.len)
			break;
		int m = parse_misc(&p, NULL);
		if (m < 0)
			goto bad;
		if (m > 0)
			continue;
		if (have_root) {
			fail(&p, p.pos, "content after the root element");
			goto bad;
		}
		if (p.s[p.pos] != '<') {
			fail(&p, p.pos, "text outside the root element");
			goto bad;
		}
		if (parse_element(&p, root, 1) < 0)
			goto bad;
		have_root = 1;
	}
	if (!have_root) {
		fail(&p, p.pos, "no root element");
		goto bad;
	}
	*ret = root;
	return 0;
bad:
	xml_free(root);
	return -1;
}

int xml_parse(struct ib_ctx *ctx, ib_code code, const char *what, const char *data, size_t len,
              struct xml_node **ret)
{
	struct xml_error e;
	if (xml_parse_ex(data, len, NULL, ret, &e) == 0)
		return 0;
	return ib_error(ctx, code, "%s: invalid XML at line %u, column %u: %s", what, e.line, e.col,
	                e.msg);
}

static int name_is(const char *name, const char *want, size_t wl)
{
	const char *colon = strchr(name, ':');
	const char *local = colon ? colon + 1 : name;
	return strlen(local) == wl && memcmp(local, want, wl) == 0;
}

const struct xml_node *xml_child(const struct xml_node *n, const char *name)
{
	if (!n)
		return NULL;
	size_t l = strlen(name);
	for (size_t i = 0; i < n->n; i++)
		if (name_is(n->children[i].name, name, l))
			return &n->children[i];
	return NULL;
}

const struct xml_node *xml_path(const struct xml_node *n, const char *path)
{
	const char *p = path;
	while (n && *p) {
		size_t l = strcspn(p, "/");
		const struct xml_node *found = NULL;
		for (size_t i = 0; i < n->n && !found; i++)
			if (name_is(n->children[i].name, p, l))
				found = &n->children[i];
		n = found;
		p += l;
		if (*p == '/')
			p++;
	}
	return n;
}

const char *xml_text(const struct xml_node *n, const char *path)
{
	const struct xml_node *x = xml_path(n, path);
	return x ? x->text : NULL;
}
