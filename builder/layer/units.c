/* units.c: the symlinks `systemctl enable` makes, worked out from the units' [Install] sections. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>

#include "layer/entries.h"
#include "util/fs.h"
#include "util/strbuf.h"

#define MAX_SYMLINK_HOPS 40
#define MAX_UNIT_FILE    (1u << 20)
#define MAX_UNIT_NAME    255

/* systemd's unit search path on Debian 12, highest precedence first. Its systemd is built
 * with rootprefix=/, so /lib/systemd/system comes before /usr/lib/systemd/system and a unit
 * reached through the usrmerge symlink is linked as /lib/systemd/system/<unit>. */
static const char *const unit_dirs[] = {
        "/etc/systemd/system",
        "/usr/local/lib/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
};

static const char *const unit_types[] = {
        ".service", ".socket", ".target", ".device", ".mount", ".automount",
        ".swap",    ".timer",  ".path",   ".slice",  ".scope",
};

enum { FOUND = 0, ABSENT = 1, MASKED = 2 };

struct unit_ctx {
	struct ib_ctx *ctx;
	const char *root; /* the root filesystem tree, or NULL */
	const struct lentries *es;
	struct lentries *out;
	struct strv seen; /* units enabled or being enabled: Also= may loop */
};

/* "foo@bar.service" -> prefix "foo", instance "bar", suffix ".service"; instance is "" for a
 * template ("foo@.service") and NULL without '@'. */
struct unit_name {
	char *prefix;
	char *instance;
	char *suffix;
};

static void unit_name_release(struct unit_name *n)
{
	free(n->prefix);
	free(n->instance);
	free(n->suffix);
	memset(n, 0, sizeof(*n));
}

static int unit_name_parse(const char *name, struct unit_name *ret)
{
	size_t len = strlen(name);
	if (len == 0 || len > MAX_UNIT_NAME)
		return -1;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(":-_.\\@", *p))
			return -1;
	const char *dot = strrchr(name, '.');
	if (!dot)
		return -1;
	int known = 0;
	for (size_t i = 0; i < ARRAY_SIZE(unit_types); i++)
		known |= streq(dot, unit_types[i]);
	if (!known)
		return -1;
	const char *at = memchr(name, '@', (size_t)(dot - name));
	const char *pend = at ? at : dot;
	if (pend == name)
		return -1;
	ret->prefix = xstrndup(name, (size_t)(pend - name));
	ret->instance = at ? xstrndup(at + 1, (size_t)(dot - at - 1)) : NULL;
	ret->suffix = xstrdup(dot);
	return 0;
}

static int is_template(const struct unit_name *n)
{
	return n->instance && !*n->instance;
}

/* ---- looking files up in the image to be ---- */

static int read_link(struct ib_ctx *ctx, const char *path, char **ret)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf));
	if (n < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read symlink '%s'", path);
	if ((size_t)n >= sizeof(buf))
		return ib_error(ctx, IB_E_IO, "symlink '%s' has a target too long", path);
	*ret = xstrndup(buf, (size_t)n);
	return 0;
}

static void sb_truncate(struct strbuf *sb, size_t len)
{
	sb->len = len;
	if (sb->buf)
		sb->buf[len] = '\0';
}

/* Resolve abs (an absolute path in the image) inside root as the booted system would:
 * symlinks are followed, absolute targets restart at root and ".." stops there.
 * FOUND with *ret the path relative to root, ABSENT, MASKED for a link to /dev/null, or
 * a negative error. Caller frees *ret. */
static int tree_resolve(struct ib_ctx *ctx, const char *root, const char *abs, char **ret)
{
	struct strbuf cur = STRBUF_INIT;
	_cleanup_free_ char *todo = xstrdup(abs);
	size_t pos = 0;
	int hops = 0, r = FOUND;
	for (;;) {
		while (todo[pos] == '/')
			pos++;
		if (!todo[pos])
			break;
		size_t clen = strcspn(todo + pos, "/");
		_cleanup_free_ char *comp = xstrndup(todo + pos, clen);
		pos += clen;
		if (streq(comp, "."))
			continue;
		if (streq(comp, "..")) {
			char *slash = cur.buf ? strrchr(cur.buf, '/') : NULL;
			sb_truncate(&cur, slash ? (size_t)(slash - cur.buf) : 0);
			continue;
		}
		size_t oldlen = cur.len;
		if (cur.len)
			sb_addc(&cur, '/');
		sb_adds(&cur, comp);
		_cleanup_free_ char *host = ib_path_join(root, sb_str(&cur));
		struct stat st;
		if (lstat(host, &st) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				r = ABSENT;
			else
				r = ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", host);
			break;
		}
		if (!S_ISLNK(st.st_mode))
			continue;
		if (++hops > MAX_SYMLINK_HOPS) {
			r = ib_error(ctx, IB_E_SPEC,
			             "too many levels of symlinks in '%s' under '%s'", abs, root);
			break;
		}
		_cleanup_free_ char *target = NULL;
		r = read_link(ctx, host, &target);
		if (r < 0)
			break;
		if (streq(target, "/dev/null")) {
			r = MASKED;
			break;
		}
		sb_truncate(&cur, target[0] == '/' ? 0 : oldlen);
		char *next = xasprintf("%s/%s", target, todo + pos);
		free(todo);
		todo = next;
		pos = 0;
	}
	if (r == FOUND && streq(sb_str(&cur), "dev/null"))
		r = MASKED;
	if (r == FOUND)
		*ret = sb_take(&cur);
	sb_release(&cur);
	return r;
}

static char *dir_of(const char *abs)
{
	const char *slash = strrchr(abs, '/');
	return slash && slash != abs ? xstrndup(abs, (size_t)(slash - abs)) : xstrdup("/");
}

/* The text of the file at abs as the finished image will have it: the layer's entry if it
 * has one (the layer is extracted over the tree, whose directories may be symlinks, as
 * /lib is on a usrmerged system), else the tree's file. Caller frees *ret_text. */
static int image_read(struct unit_ctx *u, const char *abs, int hops, char **ret_text)
{
	if (hops > MAX_SYMLINK_HOPS)
		return ib_error(u->ctx, IB_E_SPEC, "too many levels of symlinks at '%s'", abs);
	const char *rel = abs;
	while (*rel == '/')
		rel++;
	const struct lentry *e = lentries_find(u->es, rel);
	if (!e && u->root) {
		_cleanup_free_ char *dir = dir_of(abs);
		_cleanup_free_ char *cdir = NULL;
		int r = tree_resolve(u->ctx, u->root, dir, &cdir);
		if (r < 0)
			return r;
		if (r == FOUND) {
			_cleanup_free_ char *canon =
			        *cdir ? xasprintf("%s/%s", cdir, strrchr(abs, '/') + 1)
			              : xstrdup(rel);
			e = lentries_find(u->es, canon);
		}
	}
	if (e) {
		if (e->type == S_IFDIR)
			return ib_error(u->ctx, IB_E_SPEC, "'%s' is a directory, not a unit file",
			                abs);
		if (e->type == S_IFLNK) {
			if (streq(e->link, "/dev/null"))
				return MASKED;
			_cleanup_free_ char *dir = dir_of(abs);
			_cleanup_free_ char *next =
			        e->link[0] == '/' ? xstrdup(e->link) : ib_path_join(dir, e->link);
			return image_read(u, next, hops + 1, ret_text);
		}
		if (e->data) {
			*ret_text = xstrndup(e->data, e->len);
			return FOUND;
		}
		return ib_read_file(u->ctx, e->source, MAX_UNIT_FILE, ret_text, NULL);
	}
	if (!u->root)
		return ABSENT;
	_cleanup_free_ char *trel = NULL;
	int r = tree_resolve(u->ctx, u->root, abs, &trel);
	if (r != FOUND)
		return r;
	_cleanup_free_ char *host = ib_path_join(u->root, trel);
	struct stat st;
	if (stat(host, &st) < 0)
		return ib_error_errno(u->ctx, IB_E_IO, errno, "cannot read '%s'", host);
	if (!S_ISREG(st.st_mode))
		return ib_error(u->ctx, IB_E_SPEC, "'%s' is not a regular file, not a unit file",
		                abs);
	return ib_read_file(u->ctx, host, MAX_UNIT_FILE, ret_text, NULL);
}

/* Look name up along the unit search path. FOUND sets *ret_path to the image path where it
 * was found (what the enable symlinks point to) and *ret_text. */
static int find_unit(struct unit_ctx *u, const char *name, char **ret_path, char **ret_text)
{
	for (size_t i = 0; i < ARRAY_SIZE(unit_dirs); i++) {
		_cleanup_free_ char *abs = xasprintf("%s/%s", unit_dirs[i], name);
		char *text = NULL;
		int r = image_read(u, abs, 0, &text);
		if (r == ABSENT)
			continue;
		if (r == FOUND) {
			*ret_path = TAKE_PTR(abs);
			*ret_text = text;
		}
		return r;
	}
	return ABSENT;
}

/* ---- [Install] ---- */

struct install {
	int has_section;
	struct strv wanted_by, required_by, upheld_by, alias, also;
	char *default_instance;
};

static void install_release(struct install *ii)
{
	strv_release(&ii->wanted_by);
	strv_release(&ii->required_by);
	strv_release(&ii->upheld_by);
	strv_release(&ii->alias);
	strv_release(&ii->also);
	free(ii->default_instance);
	memset(ii, 0, sizeof(*ii));
}

/* The specifiers that follow from the unit name; the rest (%H, %m, %b...) describe the
 * running machine and have no value at build time. */
static int expand(struct ib_ctx *ctx, const char *unit, const struct unit_name *nm, const char *in,
                  char **ret)
{
	struct strbuf sb = STRBUF_INIT;
	for (const char *p = in; *p; p++) {
		if (*p != '%') {
			sb_addc(&sb, *p);
			continue;
		}
		p++;
		switch (*p) {
		case '%': sb_addc(&sb, '%'); break;
		case 'n': sb_adds(&sb, unit); break;
		case 'N': sb_add(&sb, unit, strlen(unit) - strlen(nm->suffix)); break;
		case 'p': sb_adds(&sb, nm->prefix); break;
		case 'i': sb_adds(&sb, nm->instance ? nm->instance : ""); break;
		case 'j': {
			const char *dash = strrchr(nm->prefix, '-');
			sb_adds(&sb, dash ? dash + 1 : nm->prefix);
			break;
		}
		default:
			sb_release(&sb);
			if (!*p)
				return ib_error(ctx, IB_E_SPEC,
				                "unit '%s': a lone '%%' in its [Install] section",
				                unit);
			return ib_error(ctx, IB_E_SPEC,
			                "unit '%s': specifier '%%%c' in its [Install] section has "
			                "no value at build time",
			                unit, *p);
		}
	}
	*ret = sb_take(&sb);
	return 0;
}

static char *strip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int install_list(struct ib_ctx *ctx, const char *unit, const struct unit_name *nm,
                        const char *key, char *val, struct strv *list)
{
	/* As in systemd, an empty assignment resets the list built so far. */
	if (!*val) {
		strv_release(list);
		return 0;
	}
	char *save = NULL;
	for (char *w = strtok_r(val, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		_cleanup_free_ char *x = NULL;
		int r = expand(ctx, unit, nm, w, &x);
		if (r < 0)
			return r;
		struct unit_name check = {0};
		if (unit_name_parse(x, &check) < 0)
			return ib_error(ctx, IB_E_SPEC,
			                "unit '%s': '%s' in %s= is not a valid unit name", unit, x,
			                key);
		unit_name_release(&check);
		if (!strv_contains(list, x))
			strv_push(list, x);
	}
	return 0;
}

static int install_line(struct ib_ctx *ctx, const char *unit, const struct unit_name *nm, char *s,
                        int *in_install, struct install *ii)
{
	s = strip(s);
	if (!*s)
		return 0;
	if (*s == '[') {
		char *end = strchr(s, ']');
		if (end)
			*end = '\0';
		*in_install = streq(s + 1, "Install");
		ii->has_section |= *in_install;
		return 0;
	}
	if (!*in_install)
		return 0;
	char *eq = strchr(s, '=');
	if (!eq)
		return 0; /* systemd ignores such lines with a warning */
	*eq = '\0';
	char *key = strip(s), *val = strip(eq + 1);
	if (streq(key, "WantedBy"))
		return install_list(ctx, unit, nm, key, val, &ii->wanted_by);
	if (streq(key, "RequiredBy"))
		return install_list(ctx, unit, nm, key, val, &ii->required_by);
	if (streq(key, "UpheldBy"))
		return install_list(ctx, unit, nm, key, val, &ii->upheld_by);
	if (streq(key, "Alias"))
		return install_list(ctx, unit, nm, key, val, &ii->alias);
	if (streq(key, "Also"))
		return install_list(ctx, unit, nm, key, val, &ii->also);
	if (streq(key, "DefaultInstance")) {
		free(ii->default_instance);
		ii->default_instance = NULL;
		if (*val)
			return expand(ctx, unit, nm, val, &ii->default_instance);
	}
	return 0;
}

/* Unit file syntax as systemd reads it: sections, "#" and ";" comments, a trailing
 * backslash continuing a line (comment lines inside a continuation are skipped). */
static int parse_install(struct ib_ctx *ctx, const char *unit, const struct unit_name *nm,
                         const char *text, struct install *ii)
{
	struct strbuf line = STRBUF_INIT;
	int in_install = 0, r = 0;
	const char *p = text;
	while (*p && r == 0) {
		size_t n = strcspn(p, "\n");
		_cleanup_free_ char *raw = xstrndup(p, n);
		p += n + (p[n] == '\n');
		char *s = strip(raw);
		if (*s == '#' || *s == ';')
			continue;
		size_t sl = strlen(s);
		if (sl > 0 && s[sl - 1] == '\\') {
			s[sl - 1] = ' ';
			sb_adds(&line, s);
			continue;
		}
		sb_adds(&line, s);
		_cleanup_free_ char *full = sb_take(&line);
		r = install_line(ctx, unit, nm, full, &in_install, ii);
	}
	if (r == 0 && line.len > 0) {
		_cleanup_free_ char *full = sb_take(&line);
		r = install_line(ctx, unit, nm, full, &in_install, ii);
	}
	sb_release(&line);
	return r;
}

/* ---- enabling ---- */

static void add_link(struct unit_ctx *u, char *path, const char *target, const char *unit)
{
	struct lentry e = {
	        .path = path,
	        .type = S_IFLNK,
	        .perm = 0777,
	        .link = xstrdup(target),
	        .why = xasprintf("enabling unit '%s'", unit),
	};
	lentries_add(u->out, &e);
}

/* The name an Alias= gives this unit: a template alias of an instance takes its instance,
 * as systemctl does; otherwise template-ness and type must match. */
static int alias_name(struct ib_ctx *ctx, const char *unit, const struct unit_name *nm,
                      const char *alias, char **ret)
{
	struct unit_name an = {0};
	if (unit_name_parse(alias, &an) < 0)
		return ib_error(ctx, IB_E_SPEC, "unit '%s': Alias=%s is not a valid unit name",
		                unit, alias);
	int r = 0;
	if (!streq(an.suffix, nm->suffix))
		r = ib_error(ctx, IB_E_SPEC, "unit '%s': Alias=%s is not of the same unit type",
		             unit, alias);
	else if (!an.instance != !nm->instance)
		r = ib_error(ctx, IB_E_SPEC,
		             "unit '%s': Alias=%s: aliases of template units must be templates and "
		             "only of them",
		             unit, alias);
	else if (is_template(&an) && !is_template(nm))
		*ret = xasprintf("%s@%s%s", an.prefix, nm->instance, an.suffix);
	else if (!is_template(&an) && is_template(nm))
		r = ib_error(ctx, IB_E_SPEC, "unit '%s': Alias=%s names an instance of a template",
		             unit, alias);
	else
		*ret = xstrdup(alias);
	unit_name_release(&an);
	return r;
}

static int enable(struct unit_ctx *u, const char *name);

static int enable_found(struct unit_ctx *u, const char *name, const struct unit_name *nm,
                        const char *path, const struct install *ii)
{
	struct ib_ctx *ctx = u->ctx;
	/* A template enabled by its bare name stands for its default instance. */
	_cleanup_free_ char *inst = NULL;
	if (is_template(nm)) {
		if (!ii->default_instance)
			return ib_error(ctx, IB_E_SPEC,
			                "unit '%s' is a template without DefaultInstance=: enable "
			                "an instance such as '%s@name%s'",
			                name, nm->prefix, nm->suffix);
		inst = xasprintf("%s@%s%s", nm->prefix, ii->default_instance, nm->suffix);
		struct unit_name check = {0};
		if (unit_name_parse(inst, &check) < 0)
			return ib_error(
			        ctx, IB_E_SPEC,
			        "unit '%s': DefaultInstance= makes '%s', not a valid unit name",
			        name, inst);
		unit_name_release(&check);
	} else {
		inst = xstrdup(name);
	}

	static const struct {
		size_t off;
		const char *dir_suffix;
	} deps[] = {
	        {offsetof(struct install, wanted_by), ".wants"},
	        {offsetof(struct install, required_by), ".requires"},
	        {offsetof(struct install, upheld_by), ".upholds"},
	};
	for (size_t d = 0; d < ARRAY_SIZE(deps); d++) {
		const struct strv *list = (const struct strv *)((const char *)ii + deps[d].off);
		for (size_t i = 0; i < list->n; i++)
			add_link(u,
			         xasprintf("etc/systemd/system/%s%s/%s", list->v[i],
			                   deps[d].dir_suffix, inst),
			         path, name);
	}
	for (size_t i = 0; i < ii->alias.n; i++) {
		_cleanup_free_ char *a = NULL;
		int r = alias_name(ctx, name, nm, ii->alias.v[i], &a);
		if (r < 0)
			return r;
		if (!streq(a, inst) && !streq(a, name))
			add_link(u, xasprintf("etc/systemd/system/%s", a), path, name);
	}
	for (size_t i = 0; i < ii->also.n; i++) {
		int r = enable(u, ii->also.v[i]);
		if (r < 0)
			return r;
	}
	if (ii->wanted_by.n + ii->required_by.n + ii->upheld_by.n + ii->alias.n + ii->also.n == 0)
		return ib_error(ctx, IB_E_SPEC,
		                "unit '%s' has nothing to enable in its [Install] section (no "
		                "WantedBy=, RequiredBy=, Alias= or Also=)",
		                name);
	return 0;
}

static int enable(struct unit_ctx *u, const char *given)
{
	struct ib_ctx *ctx = u->ctx;
	/* systemctl takes "ssh" for "ssh.service". */
	_cleanup_free_ char *name =
	        strchr(given, '.') ? xstrdup(given) : xasprintf("%s.service", given);
	if (strv_contains(&u->seen, name))
		return 0;
	strv_push(&u->seen, name);

	_cleanup_(unit_name_release) struct unit_name nm = {0};
	if (unit_name_parse(name, &nm) < 0)
		return ib_error(ctx, IB_E_SPEC, "'%s' is not a valid systemd unit name", given);

	_cleanup_free_ char *path = NULL, *text = NULL;
	int r = find_unit(u, name, &path, &text);
	if (r == ABSENT && nm.instance && *nm.instance) {
		_cleanup_free_ char *tmpl = xasprintf("%s@%s", nm.prefix, nm.suffix);
		r = find_unit(u, tmpl, &path, &text);
	}
	if (r < 0)
		return r;
	if (r == ABSENT)
		return ib_error(ctx, IB_E_SPEC,
		                "unit '%s' not found in the role's files or the root filesystem",
		                name);
	if (r == MASKED)
		return ib_error(ctx, IB_E_SPEC,
		                "unit '%s' is masked (linked to /dev/null), it cannot be enabled",
		                name);

	struct install ii = {0};
	r = parse_install(ctx, name, &nm, text, &ii);
	if (r == 0 && !ii.has_section)
		r = ib_error(ctx, IB_E_SPEC,
		             "unit '%s' has no [Install] section, it cannot be enabled", name);
	if (r == 0)
		r = enable_found(u, name, &nm, path, &ii);
	install_release(&ii);
	return r;
}

int layer_enable_units(struct ib_ctx *ctx, const struct ib_layer_opts *opts,
                       const struct lentries *es, struct lentries *out)
{
	struct unit_ctx u = {
	        .ctx = ctx,
	        .root = opts->rootfs_tree,
	        .es = es,
	        .out = out,
	};
	int r = 0;
	const struct strv *units = &opts->role->units;
	for (size_t i = 0; i < units->n && r == 0; i++)
		r = enable(&u, units->v[i]);
	strv_release(&u.seen);
	return r;
}
