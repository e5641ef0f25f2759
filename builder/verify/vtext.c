/* vtext.c: parse fstab, grub.cfg and dpkg's status file as read from an image. */
#include "vparse.h"

#define MAX_ENTRIES 4096 /* lines kept from one file: a hostile file costs bounded memory */
#define MAX_WORDS   64

/* Split the next line off [*p, end); returns 0 at the end. */
static int next_line(const char **p, const char *end, const char **ret, size_t *ret_len)
{
	if (*p >= end)
		return 0;
	const char *eol = memchr(*p, '\n', (size_t)(end - *p));
	*ret = *p;
	*ret_len = (size_t)((eol ? eol : end) - *p);
	*p = eol ? eol + 1 : end;
	return 1;
}

/* Split a line at blanks into at most MAX_WORDS words; caller frees each. */
static size_t split_words(const char *line, size_t len, char *words[MAX_WORDS])
{
	size_t n = 0, i = 0;
	while (i < len && n < MAX_WORDS) {
		while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
			i++;
		size_t s = i;
		while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			i++;
		if (i > s)
			words[n++] = xstrndup(line + s, i - s);
	}
	return n;
}

static void free_words(char **w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(w[i]);
}

void ib_fstab_parse(const char *text, size_t len, struct ib_fstab_entry **ret, size_t *ret_n)
{
	const char *p = text, *end = text + len, *line;
	size_t ll, n = 0;
	struct ib_fstab_entry *e = NULL;
	while (next_line(&p, end, &line, &ll) && n < MAX_ENTRIES) {
		char *w[MAX_WORDS];
		size_t nw = split_words(line, ll, w);
		if (nw >= 2 && w[0][0] != '#') {
			e = xrealloc(e, (n + 1) * sizeof(*e));
			e[n].spec = xstrdup(w[0]);
			e[n].file = xstrdup(w[1]);
			e[n].type = xstrdup(nw >= 3 ? w[2] : "auto");
			n++;
		}
		free_words(w, nw);
	}
	*ret = e;
	*ret_n = n;
}

void ib_fstab_free(struct ib_fstab_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].spec);
		free(e[i].file);
		free(e[i].type);
	}
	free(e);
}

/* "(hd0,gpt3)/boot/vmlinuz" -> "/boot/vmlinuz"; quotes around a word go too. */
static char *grub_path(const char *w)
{
	size_t n = strlen(w);
	if (n >= 2 && (w[0] == '"' || w[0] == '\'') && w[n - 1] == w[0]) {
		w++;
		n -= 2;
	}
	if (n && w[0] == '(') {
		const char *close = memchr(w, ')', n);
		if (close) {
			n -= (size_t)(close + 1 - w);
			w = close + 1;
		}
	}
	return xstrndup(w, n);
}

static int word_in(const char *w, const char *const *set)
{
	for (; *set; set++)
		if (streq(w, *set))
			return 1;
	return 0;
}

static void grub_search(struct ib_grubcfg *c, char **w, size_t nw)
{
	const char *kind = NULL, *value = NULL;
	int sets_root = 0;
	for (size_t i = 1; i < nw; i++) {
		if (streq(w[i], "--fs-uuid") || streq(w[i], "-u"))
			kind = "uuid";
		else if (streq(w[i], "--label") || streq(w[i], "-l"))
			kind = "label";
		else if (streq(w[i], "--set=root") ||
		         (streq(w[i], "--set") && i + 1 < nw && streq(w[i + 1], "root")))
			sets_root = 1;
		else if (w[i][0] != '-' && !streq(w[i], "root"))
			value = w[i];
	}
	if (kind && value && sets_root && c->search.n < MAX_ENTRIES)
		strv_push_take(&c->search, xasprintf("%s:%s", kind, value));
}

void ib_grubcfg_parse(const char *text, size_t len, struct ib_grubcfg *c)
{
	static const char *const linux_cmds[] = {"linux", "linux16", "linuxefi", NULL};
	static const char *const initrd_cmds[] = {"initrd", "initrd16", "initrdefi", NULL};
	memset(c, 0, sizeof(*c));
	const char *p = text, *end = text + len, *line;
	size_t ll;
	while (next_line(&p, end, &line, &ll)) {
		char *w[MAX_WORDS];
		size_t nw = split_words(line, ll, w);
		if (nw >= 2 && c->kernels.n < MAX_ENTRIES && c->initrds.n < MAX_ENTRIES) {
			if (word_in(w[0], linux_cmds)) {
				strv_push_take(&c->kernels, grub_path(w[1]));
				for (size_t i = 2; i < nw; i++)
					if (startswith(w[i], "root="))
						strv_push(&c->roots, w[i] + 5);
			} else if (word_in(w[0], initrd_cmds)) {
				for (size_t i = 1; i < nw; i++)
					strv_push_take(&c->initrds, grub_path(w[i]));
			} else if (streq(w[0], "search")) {
				grub_search(c, w, nw);
			}
		}
		free_words(w, nw);
	}
}

void ib_grubcfg_release(struct ib_grubcfg *c)
{
	strv_release(&c->kernels);
	strv_release(&c->initrds);
	strv_release(&c->roots);
	strv_release(&c->search);
}

/* The value of "Name: value" when line is that field, else NULL. */
static const char *field(const char *line, size_t len, const char *name, size_t *ret_len)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	const char *v = line + n + 1;
	const char *e = line + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	*ret_len = (size_t)(e - v);
	return v;
}

int ib_dpkg_version(const char *text, size_t len, const char *pkg, char **ret_version)
{
	const char *p = text, *end = text + len, *line;
	size_t ll, pkg_len = strlen(pkg);
	int match = 0, installed = 0;
	_cleanup_free_ char *version = NULL;
	for (;;) {
		int more = next_line(&p, end, &line, &ll);
		if (!more || ll == 0 || (ll == 1 && line[0] == '\r')) {
			/* End of a stanza: multi-arch packages have one per architecture. */
			if (match && installed && version) {
				*ret_version = TAKE_PTR(version);
				return 1;
			}
			match = installed = 0;
			free(version);
			version = NULL;
			if (!more)
				return 0;
			continue;
		}
		const char *v;
		size_t vl;
		if ((v = field(line, ll, "Package", &vl)))
			match = vl == pkg_len && memcmp(v, pkg, vl) == 0;
		else if ((v = field(line, ll, "Status", &vl)))
			/* "want flag status": only the last word says it is installed. */
			installed = vl >= 10 && memcmp(v + vl - 10, " installed", 10) == 0;
		else if ((v = field(line, ll, "Version", &vl))) {
			free(version);
			version = xstrndup(v, vl);
		}
	}
}
