/* spec_parse.c: the project and role schemas: keys, types and value checks. */
#include "spec_internal.h"

#include "util/fs.h"
#include "util/strbuf.h"

#define ERR(src, node, ...) spec_err_at((src)->ctx, (src)->display, (node), __VA_ARGS__)

/* Match every key of map against keys[] (vals[i] gets the value of keys[i], or NULL).
 * where names the mapping in messages ("role", "file entry"), or NULL at a file's top. */
static int fields(const struct spec_src *src, const struct ynode *map, const char *where,
                  const char *const *keys, size_t n_keys, const struct ynode **vals)
{
	for (size_t j = 0; j < n_keys; j++)
		vals[j] = NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct ynode *k = map->items[i];
		size_t j = 0;
		while (j < n_keys && !streq(k->value, keys[j]))
			j++;
		if (j < n_keys) {
			vals[j] = map->items[i + 1];
			continue;
		}
		struct strbuf list = STRBUF_INIT;
		for (j = 0; j < n_keys; j++)
			sb_addf(&list, "%s%s", j ? ", " : "", keys[j]);
		int r = ERR(src, k, "unknown key '%s'%s%s (expected one of: %s)", k->value,
		            where ? " in " : "", where ? where : "", sb_str(&list));
		sb_release(&list);
		return r;
	}
	return 0;
}

static int need(const struct spec_src *src, const struct ynode *map, const struct ynode *val,
                const char *key, const char *where)
{
	if (val)
		return 0;
	return ERR(src, map, "missing required key '%s'%s%s", key, where ? " in " : "",
	           where ? where : "");
}

static int need_map(const struct spec_src *src, const struct ynode *n, const char *name)
{
	if (n->type == YN_MAP)
		return 0;
	return ERR(src, n, "'%s' must be a mapping, not %s", name, ynode_describe(n));
}

/* A usable string scalar: not null, no NUL bytes. */
static int is_string(const struct ynode *n)
{
	return n->type == YN_SCALAR && ynode_kind(n) != YK_NULL && strlen(n->value) == n->len;
}

static int get_string(const struct spec_src *src, const struct ynode *n, const char *name,
                      char **ret)
{
	if (!is_string(n)) {
		if (n->type == YN_SCALAR && ynode_kind(n) != YK_NULL)
			return ERR(src, n, "'%s' must not contain NUL characters", name);
		return ERR(src, n, "'%s' must be a string, not %s", name, ynode_describe(n));
	}
	free(*ret);
	*ret = xstrdup(n->value);
	return 0;
}

static int get_bool(const struct spec_src *src, const struct ynode *n, const char *name, int *ret)
{
	static const char *const yes[] = {"true", "yes"}, *const no[] = {"false", "no"};
	if (n->type == YN_SCALAR && ynode_kind(n) == YK_BOOL) {
		for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
			if (streq(n->value, yes[i])) {
				*ret = 1;
				return 0;
			}
			if (streq(n->value, no[i])) {
				*ret = 0;
				return 0;
			}
		}
	}
	if (n->type == YN_SCALAR && ynode_kind(n) != YK_NULL)
		return ERR(src, n, "'%s' must be true or false, not '%s'", name, n->value);
	return ERR(src, n, "'%s' must be true or false, not %s", name, ynode_describe(n));
}

typedef int (*item_fn)(const struct spec_src *src, const struct ynode *item, void *data);

/* Call fn on every item of a sequence of strings. */
static int each_string(const struct spec_src *src, const struct ynode *seq, const char *name,
                       item_fn fn, void *data)
{
	if (seq->type != YN_SEQ)
		return ERR(src, seq, "'%s' must be a sequence of strings, not %s", name,
		           ynode_describe(seq));
	for (size_t i = 0; i < seq->n; i++) {
		const struct ynode *it = seq->items[i];
		if (it->type == YN_SCALAR && ynode_kind(it) != YK_NULL && !is_string(it))
			return ERR(src, it, "items of '%s' must not contain NUL characters", name);
		if (!is_string(it))
			return ERR(src, it, "items of '%s' must be strings, not %s", name,
			           ynode_describe(it));
		int r = fn(src, it, data);
		if (r < 0)
			return r;
	}
	return 0;
}

static int in_set(const char *c, const char *set)
{
	return *c && strchr(set, *c);
}

#define LOWER_DIGIT "abcdefghijklmnopqrstuvwxyz0123456789"

/* [a-z0-9][a-z0-9-]* of at most max characters (0: no limit). */
static int valid_name(const char *s, size_t max)
{
	if (!in_set(s, LOWER_DIGIT))
		return 0;
	size_t n = strspn(s, LOWER_DIGIT "-");
	return s[n] == '\0' && (!max || n <= max);
}

/* [A-Za-z][A-Za-z0-9_]*, at most 63 characters: what "{{ name }}" can name. */
static int valid_var_name(const char *s)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	if (!*s || !strchr(alpha, *s))
		return 0;
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
	return n <= 63 && s[n] == '\0';
}

static int valid_package(const char *s)
{
	if (!in_set(s, LOWER_DIGIT))
		return 0;
	size_t n = strspn(s, LOWER_DIGIT "+.-");
	if (n < 2)
		return 0;
	if (s[n] == '\0')
		return 1;
	if (s[n] != '=')
		return 0;
	const char *v = s + n + 1;
	size_t m = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.+~:-");
	return m > 0 && v[m] == '\0';
}

static int valid_unit(const char *s)
{
	static const char *const suffixes[] = {".service", ".socket", ".timer",
	                                       ".target",  ".path",   ".mount"};
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.@-");
	if (n == 0 || s[n] != '\0')
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++)
		if (endswith(s, suffixes[i]) && n > strlen(suffixes[i]))
			return 1;
	return 0;
}

/* Shared by the project's and a role's `disk:` mapping. */
static int parse_disk(const struct spec_src *src, const struct ynode *disk, uint64_t *ret)
{
	static const char *const keys[] = {"size"};
	const struct ynode *v[ARRAY_SIZE(keys)];
	_cleanup_free_ char *s = NULL;
	uint64_t size;
	int r;

	if ((r = need_map(src, disk, "disk")) < 0 ||
	    (r = fields(src, disk, "'disk'", keys, ARRAY_SIZE(keys), v)) < 0 ||
	    (r = need(src, disk, v[0], "size", "'disk'")) < 0 ||
	    (r = get_string(src, v[0], "size", &s)) < 0)
		return r;
	if (ib_parse_size(s, &size) < 0)
		return ERR(src, v[0],
		           "invalid size '%s' (expected a number with an optional K, M, G or T "
		           "suffix)",
		           s);
	if (size < SPEC_DISK_MIN || size > SPEC_DISK_MAX)
		return ERR(src, v[0], "disk size '%s' is out of range (1G to 2T)", s);
	*ret = size;
	return 0;
}

/* The project file. */

enum { P_PROJECT, P_DEBIAN, P_OUTPUT, P_DISK, P__MAX };
static const char *const project_keys[P__MAX] = {"project", "debian", "output", "disk"};

enum { D_SUITE, D_MIRROR, D_ARCH, D_VARIANT, D__MAX };
static const char *const debian_keys[D__MAX] = {"suite", "mirror", "architecture", "variant"};

static const char *const variants[] = {"minbase",  "apt",       "essential",
                                       "required", "important", "standard"};

static int parse_debian(const struct spec_src *src, const struct ynode *deb, struct ib_project *p)
{
	const struct ynode *v[D__MAX];
	int r;

	if ((r = need_map(src, deb, "debian")) < 0 ||
	    (r = fields(src, deb, "'debian'", debian_keys, D__MAX, v)) < 0 ||
	    (r = need(src, deb, v[D_SUITE], "suite", "'debian'")) < 0 ||
	    (r = need(src, deb, v[D_MIRROR], "mirror", "'debian'")) < 0 ||
	    (r = get_string(src, v[D_SUITE], "suite", &p->suite)) < 0 ||
	    (r = get_string(src, v[D_MIRROR], "mirror", &p->mirror)) < 0)
		return r;
	/* The suite reaches mmdebstrap's command line: no option look-alikes. */
	if (!in_set(p->suite, LOWER_DIGIT) ||
	    p->suite[strspn(p->suite, LOWER_DIGIT "ABCDEFGHIJKLMNOPQRSTUVWXYZ._-")] != '\0')
		return ERR(src, v[D_SUITE], "invalid suite '%s'", p->suite);
	if ((!startswith(p->mirror, "http://") && !startswith(p->mirror, "https://") &&
	     !startswith(p->mirror, "file://")) ||
	    p->mirror[strcspn(p->mirror, " \t\r\n")] != '\0')
		return ERR(src, v[D_MIRROR],
		           "invalid mirror '%s' (expected an http://, https:// or file:// URL)",
		           p->mirror);

	if (v[D_ARCH]) {
		if ((r = get_string(src, v[D_ARCH], "architecture", &p->arch)) < 0)
			return r;
		if (!streq(p->arch, "amd64"))
			return ERR(src, v[D_ARCH],
			           "unsupported architecture '%s' (only amd64 is supported)",
			           p->arch);
	} else {
		p->arch = xstrdup("amd64");
	}

	if (!v[D_VARIANT]) {
		p->variant = xstrdup("minbase");
		return 0;
	}
	if ((r = get_string(src, v[D_VARIANT], "variant", &p->variant)) < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(variants); i++)
		if (streq(p->variant, variants[i]))
			return 0;
	return ERR(src, v[D_VARIANT],
	           "unknown variant '%s' (expected one of: minbase, apt, essential, required, "
	           "important, standard)",
	           p->variant);
}

static int add_format(const struct spec_src *src, const struct ynode *it, void *data)
{
	unsigned *formats = data, bit;
	if (streq(it->value, "raw"))
		bit = IB_FMT_RAW;
	else if (streq(it->value, "qcow2"))
		bit = IB_FMT_QCOW2;
	else
		return ERR(src, it, "unknown format '%s' (expected raw or qcow2)", it->value);
	if (*formats & bit)
		return ERR(src, it, "duplicate format '%s'", it->value);
	*formats |= bit;
	return 0;
}

static int parse_output(const struct spec_src *src, const struct ynode *out, struct ib_project *p)
{
	static const char *const keys[] = {"dir", "formats"};
	const struct ynode *v[ARRAY_SIZE(keys)];
	_cleanup_free_ char *dir = NULL;
	int r;

	if ((r = need_map(src, out, "output")) < 0 ||
	    (r = fields(src, out, "'output'", keys, ARRAY_SIZE(keys), v)) < 0)
		return r;
	if (v[0]) {
		if ((r = get_string(src, v[0], "dir", &dir)) < 0)
			return r;
		if (!*dir)
			return ERR(src, v[0], "'dir' must not be empty");
		_cleanup_free_ char *joined =
		        dir[0] == '/' ? xstrdup(dir) : ib_path_join(p->root, dir);
		free(p->output_dir);
		p->output_dir = spec_path_clean(joined, 1, NULL);
	}
	if (v[1]) {
		unsigned formats = 0;
		if ((r = each_string(src, v[1], "formats", add_format, &formats)) < 0)
			return r;
		if (!formats)
			return ERR(src, v[1], "'formats' must not be empty");
		p->formats = formats;
	}
	return 0;
}

int spec_parse_project(const struct spec_src *src, const struct ynode *root, struct ib_project *p)
{
	const struct ynode *v[P__MAX];
	int r;

	if (!root || (root->type == YN_SCALAR && ynode_kind(root) == YK_NULL))
		return spec_err(src->ctx, src->display, 1, 1, "empty project file");
	if (root->type != YN_MAP)
		return ERR(src, root, "project file must be a mapping, not %s",
		           ynode_describe(root));
	if ((r = fields(src, root, NULL, project_keys, P__MAX, v)) < 0 ||
	    (r = need(src, root, v[P_PROJECT], "project", NULL)) < 0 ||
	    (r = need(src, root, v[P_DEBIAN], "debian", NULL)) < 0 ||
	    (r = get_string(src, v[P_PROJECT], "project", &p->name)) < 0)
		return r;
	if (!valid_name(p->name, 0))
		return ERR(src, v[P_PROJECT],
		           "invalid project name '%s' (expected lowercase letters, digits and '-', "
		           "starting with a letter or digit)",
		           p->name);
	if ((r = parse_debian(src, v[P_DEBIAN], p)) < 0)
		return r;

	p->output_dir = ib_path_join(p->root, "out");
	p->formats = IB_FMT_RAW | IB_FMT_QCOW2;
	p->disk_size = UINT64_C(4) << 30;
	if (v[P_OUTPUT] && (r = parse_output(src, v[P_OUTPUT], p)) < 0)
		return r;
	if (v[P_DISK] && (r = parse_disk(src, v[P_DISK], &p->disk_size)) < 0)
		return r;
	return 0;
}

/* Role files. */

enum {
	R_NAME,
	R_DESCRIPTION,
	R_ABSTRACT,
	R_EXTENDS,
	R_PACKAGES,
	R_FILES,
	R_UNITS,
	R_FIRSTBOOT,
	R_CLOUD_INIT,
	R_DISK,
	R_ARTIFACTS,
	R_IMAGES,
	R_CHECKS,
	R_VARS,
	R_BASE,
	R_SCRIPTS,
	R__MAX
};
static const char *const role_keys[R__MAX] = {
        "name",   "description", "abstract",   "extends", "packages",  "files",
        "units",  "firstboot",   "cloud_init", "disk",    "artifacts", "images",
        "checks", "vars",        "base",       "scripts",
};

enum { F_SOURCE, F_DEST, F_MODE, F_OWNER, F_TEMPLATE, F__MAX };
static const char *const file_keys[F__MAX] = {"source", "destination", "mode", "owner", "template"};

static int parse_mode(const struct spec_src *src, const struct ynode *n, mode_t *ret)
{
	/* Read as octal whatever the YAML type: 0755 and "0755" mean the same. */
	const char *s = n->type == YN_SCALAR ? n->value : "";
	size_t len = n->type == YN_SCALAR ? n->len : 0;
	unsigned long v = 0;
	int ok = len > 0 && strspn(s, "01234567") == len;
	for (size_t i = 0; ok && i < len; i++) {
		v = v * 8 + (unsigned long)(s[i] - '0');
		if (v > 07777)
			ok = 0;
	}
	if (n->type != YN_SCALAR)
		return ERR(src, n, "'mode' must be octal digits such as \"0644\", not %s",
		           ynode_describe(n));
	if (!ok)
		return ERR(src, n,
		           "invalid mode '%s' (expected octal digits no larger than 07777, such as "
		           "\"0644\")",
		           s);
	*ret = (mode_t)v;
	return 0;
}

/* "root" or a decimal id below 2^31. */
static int parse_id(const char *s, size_t len, unsigned *ret)
{
	if (len == 4 && memcmp(s, "root", 4) == 0) {
		*ret = 0;
		return 0;
	}
	if (len == 0 || len > 10)
		return -1;
	unsigned long long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v >= (1ull << 31))
		return -1;
	*ret = (unsigned)v;
	return 0;
}

static int parse_owner(const struct spec_src *src, const struct ynode *n, struct ib_file_spec *f)
{
	int r = get_string(src, n, "owner", &f->owner);
	if (r < 0)
		return r;
	const char *colon = strchr(f->owner, ':');
	unsigned uid, gid;
	if (!colon || parse_id(f->owner, (size_t)(colon - f->owner), &uid) < 0 ||
	    parse_id(colon + 1, strlen(colon + 1), &gid) < 0)
		return ERR(
		        src, n,
		        "invalid owner '%s' (expected 'user:group', each 'root' or a numeric id)",
		        f->owner);
	f->uid = (uid_t)uid;
	f->gid = (gid_t)gid;
	return 0;
}

static int parse_dest(const struct spec_src *src, const struct ynode *n, struct ib_file_spec *f)
{
	_cleanup_free_ char *s = NULL;
	int dotdot, r;

	if ((r = get_string(src, n, "destination", &s)) < 0)
		return r;
	if (s[0] != '/')
		return ERR(src, n, "destination '%s' must be an absolute path", s);
	f->dest = spec_path_clean(s, 0, &dotdot);
	if (dotdot)
		return ERR(src, n, "destination '%s' must not contain '..'", s);
	if (streq(f->dest, "/"))
		return ERR(src, n, "destination '%s' is the root directory", s);
	return 0;
}

static int parse_file(const struct spec_src *src, const struct ynode *m, struct ib_role *role)
{
	const struct ynode *v[F__MAX];
	struct stat st;
	int r;

	if (m->type != YN_MAP)
		return ERR(src, m, "file entry must be a mapping, not %s", ynode_describe(m));
	if ((r = fields(src, m, "file entry", file_keys, F__MAX, v)) < 0 ||
	    (r = need(src, m, v[F_SOURCE], "source", "file entry")) < 0 ||
	    (r = need(src, m, v[F_DEST], "destination", "file entry")) < 0)
		return r;

	role->files = xrealloc(role->files, (role->n_files + 1) * sizeof(*role->files));
	struct ib_file_spec *f = &role->files[role->n_files++];
	memset(f, 0, sizeof(*f));
	f->pos = (struct ib_pos){src->display, m->line, m->col};

	if (!is_string(v[F_SOURCE]))
		return get_string(src, v[F_SOURCE], "source", &f->source);
	if ((r = spec_project_path(src, v[F_SOURCE], "source", &f->source, &st)) < 0)
		return r;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return ERR(src, v[F_SOURCE], "source '%s' is not a regular file or directory",
		           v[F_SOURCE]->value);
	if ((r = parse_dest(src, v[F_DEST], f)) < 0)
		return r;
	for (size_t i = 0; i + 1 < role->n_files; i++)
		if (streq(role->files[i].dest, f->dest))
			return ERR(src, v[F_DEST], "duplicate destination '%s' (first at line %d)",
			           f->dest, role->files[i].pos.line);

	f->mode = S_ISDIR(st.st_mode) ? 0755 : 0644;
	if (v[F_TEMPLATE]) {
		if ((r = get_bool(src, v[F_TEMPLATE], "template", &f->template)) < 0)
			return r;
		if (f->template && !S_ISREG(st.st_mode))
			return ERR(src, v[F_TEMPLATE],
			           "'template' applies to a regular file, and '%s' is a directory",
			           v[F_SOURCE]->value);
	}
	if (v[F_MODE]) {
		if ((r = parse_mode(src, v[F_MODE], &f->mode)) < 0)
			return r;
		f->has_mode = 1;
	}
	if (v[F_OWNER])
		return parse_owner(src, v[F_OWNER], f);
	f->owner = xstrdup("root:root");
	return 0;
}

static int add_package(const struct spec_src *src, const struct ynode *it, void *data)
{
	if (!valid_package(it->value))
		return ERR(src, it,
		           "invalid package '%s' (expected a Debian package name, optionally with "
		           "=version)",
		           it->value);
	strv_push(data, it->value);
	return 0;
}

static int add_unit(const struct spec_src *src, const struct ynode *it, void *data)
{
	if (!valid_unit(it->value))
		return ERR(src, it,
		           "invalid unit name '%s' (expected a .service, .socket, .timer, .target, "
		           ".path or .mount unit)",
		           it->value);
	strv_push(data, it->value);
	return 0;
}

static int add_firstboot(const struct spec_src *src, const struct ynode *it, void *data)
{
	char *path;
	struct stat st;
	int r = spec_project_path(src, it, "firstboot script", &path, &st);
	if (r < 0)
		return r;
	strv_push_take(data, path);
	if (!S_ISREG(st.st_mode))
		return ERR(src, it, "firstboot script '%s' is not a regular file", it->value);
	return 0;
}

static int parse_units(const struct spec_src *src, const struct ynode *n, struct ib_role *role)
{
	static const char *const keys[] = {"enable"};
	const struct ynode *v[ARRAY_SIZE(keys)];
	int r;

	if ((r = need_map(src, n, "units")) < 0 ||
	    (r = fields(src, n, "'units'", keys, ARRAY_SIZE(keys), v)) < 0 ||
	    (r = need(src, n, v[0], "enable", "'units'")) < 0)
		return r;
	return each_string(src, v[0], "enable", add_unit, &role->units);
}

static int parse_cloud_init(const struct spec_src *src, const struct ynode *n, struct ib_role *role)
{
	int r = need_map(src, n, "cloud_init");
	if (r < 0)
		return r;
	role->cloud_init = xcalloc(n->n / 2 + 1, sizeof(*role->cloud_init));
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->items[i];
		if (!is_string(k) || ynode_kind(k) != YK_STRING)
			return ERR(src, k, "cloud_init keys must be strings, not %s",
			           ynode_describe(k));
		struct ib_kv *kv = &role->cloud_init[role->n_cloud_init++];
		kv->key = xstrdup(k->value);
		if ((r = spec_yaml_emit_pair(src->ctx, k, n->items[i + 1], &kv->yaml)) < 0)
			return r;
	}
	return 0;
}

/* vars: a flat mapping of names to scalars, kept as text whatever their YAML type
 * (replicas: 2 fills "{{ replicas }}" with "2"). */
static int parse_vars(const struct spec_src *src, const struct ynode *n, struct ib_role *role)
{
	int r = need_map(src, n, "vars");
	if (r < 0)
		return r;
	role->vars = xcalloc(n->n / 2 + 1, sizeof(*role->vars));
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->items[i], *v = n->items[i + 1];
		if (!is_string(k) || !valid_var_name(k->value))
			return ERR(src, k,
			           "invalid variable name '%s' (expected a letter, then letters, "
			           "digits and '_')",
			           k->type == YN_SCALAR ? k->value : ynode_describe(k));
		if (streq(k->value, "role"))
			return ERR(src, k, "variable 'role' is set by imgbuild (the role's name)");
		for (size_t j = 0; j < role->n_vars; j++)
			if (streq(role->vars[j].name, k->value))
				return ERR(src, k, "duplicate variable '%s' (first at line %d)",
				           k->value, role->vars[j].pos.line);
		if (v->type != YN_SCALAR || ynode_kind(v) == YK_NULL || strlen(v->value) != v->len)
			return ERR(src, v,
			           "variable '%s' must be a string, number or boolean, not %s",
			           k->value, ynode_describe(v));
		if (strchr(v->value, '\n'))
			return ERR(src, v,
			           "variable '%s' must be one line: templates are line based",
			           k->value);
		struct ib_var *var = &role->vars[role->n_vars++];
		var->name = xstrdup(k->value);
		var->value = xstrdup(v->value);
		var->pos = (struct ib_pos){src->display, k->line, k->col};
	}
	return 0;
}

enum { A_NAME, A_URL, A_SHA256, A_CHECKSUM_URL, A_DEST, A_MODE, A_EXTRACT, A__MAX };
static const char *const artifact_keys[A__MAX] = {"name",        "url",  "sha256", "checksum_url",
                                                  "destination", "mode", "extract"};
enum { X_MEMBER, X_DEST, X_MODE, X__MAX };
static const char *const extract_keys[X__MAX] = {"member", "destination", "mode"};

static int valid_url(const char *s)
{
	if (!startswith(s, "http://") && !startswith(s, "https://") && !startswith(s, "file://"))
		return 0;
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return 0;
	return 1;
}

static int valid_sha256(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int get_url(const struct spec_src *src, const struct ynode *n, const char *name, char **ret)
{
	int r = get_string(src, n, name, ret);
	if (r < 0)
		return r;
	if (!valid_url(*ret))
		return ERR(src, n, "invalid %s '%s' (expected an http://, https:// or file:// URL)",
		           name, *ret);
	return 0;
}

static int parse_extract(const struct spec_src *src, const struct ynode *m, struct ib_artifact *a)
{
	const struct ynode *v[X__MAX];
	int r, dotdot;

	if (m->type != YN_MAP)
		return ERR(src, m, "extract entry must be a mapping, not %s", ynode_describe(m));
	if ((r = fields(src, m, "extract entry", extract_keys, X__MAX, v)) < 0 ||
	    (r = need(src, m, v[X_MEMBER], "member", "extract entry")) < 0 ||
	    (r = need(src, m, v[X_DEST], "destination", "extract entry")) < 0)
		return r;
	a->extract = xrealloc(a->extract, (a->n_extract + 1) * sizeof(*a->extract));
	struct ib_extract_spec *x = &a->extract[a->n_extract++];
	memset(x, 0, sizeof(*x));
	x->pos = (struct ib_pos){src->display, m->line, m->col};
	_cleanup_free_ char *member = NULL;
	if ((r = get_string(src, v[X_MEMBER], "member", &member)) < 0)
		return r;
	x->member = spec_path_clean(member[0] == '/' ? member + 1 : member, 0, &dotdot);
	if (dotdot || streq(x->member, "."))
		return ERR(src, v[X_MEMBER], "invalid member '%s'", member);
	struct ib_file_spec tmp = {0};
	r = parse_dest(src, v[X_DEST], &tmp);
	x->dest = tmp.dest;
	if (r < 0)
		return r;
	if (v[X_MODE]) {
		if ((r = parse_mode(src, v[X_MODE], &x->mode)) < 0)
			return r;
		x->has_mode = 1;
	}
	return 0;
}

static int parse_artifact(const struct spec_src *src, const struct ynode *m, struct ib_role *role)
{
	const struct ynode *v[A__MAX];
	int r;

	if (m->type != YN_MAP)
		return ERR(src, m, "artifact entry must be a mapping, not %s", ynode_describe(m));
	if ((r = fields(src, m, "artifact entry", artifact_keys, A__MAX, v)) < 0 ||
	    (r = need(src, m, v[A_NAME], "name", "artifact entry")) < 0 ||
	    (r = need(src, m, v[A_URL], "url", "artifact entry")) < 0)
		return r;
	role->artifacts =
	        xrealloc(role->artifacts, (role->n_artifacts + 1) * sizeof(*role->artifacts));
	struct ib_artifact *a = &role->artifacts[role->n_artifacts++];
	memset(a, 0, sizeof(*a));
	a->pos = (struct ib_pos){src->display, m->line, m->col};
	a->mode = 0644;

	if ((r = get_string(src, v[A_NAME], "name", &a->name)) < 0)
		return r;
	if (!valid_name(a->name, 63))
		return ERR(
		        src, v[A_NAME],
		        "invalid artifact name '%s' (expected lowercase letters, digits and '-')",
		        a->name);
	for (size_t i = 0; i + 1 < role->n_artifacts; i++)
		if (streq(role->artifacts[i].name, a->name))
			return ERR(src, v[A_NAME], "duplicate artifact '%s' (first at line %d)",
			           a->name, role->artifacts[i].pos.line);
	if ((r = get_url(src, v[A_URL], "url", &a->url)) < 0)
		return r;
	if (!v[A_SHA256] == !v[A_CHECKSUM_URL])
		return ERR(src, m, "artifact '%s' needs exactly one of 'sha256' and 'checksum_url'",
		           a->name);
	if (v[A_SHA256]) {
		if ((r = get_string(src, v[A_SHA256], "sha256", &a->sha256)) < 0)
			return r;
		if (!valid_sha256(a->sha256))
			return ERR(src, v[A_SHA256],
			           "invalid sha256 '%s' (expected 64 lowercase hex digits)",
			           a->sha256);
	}
	if (v[A_CHECKSUM_URL] &&
	    (r = get_url(src, v[A_CHECKSUM_URL], "checksum_url", &a->checksum_url)) < 0)
		return r;
	if (!v[A_DEST] == !v[A_EXTRACT])
		return ERR(src, m, "artifact '%s' needs exactly one of 'destination' and 'extract'",
		           a->name);
	if (v[A_DEST]) {
		struct ib_file_spec tmp = {0};
		r = parse_dest(src, v[A_DEST], &tmp);
		a->dest = tmp.dest;
		if (r < 0)
			return r;
	}
	if (v[A_MODE]) {
		if (!v[A_DEST])
			return ERR(src, v[A_MODE],
			           "'mode' applies to 'destination'; give each extract "
			           "entry its own mode");
		if ((r = parse_mode(src, v[A_MODE], &a->mode)) < 0)
			return r;
		a->has_mode = 1;
	}
	if (v[A_EXTRACT]) {
		const struct ynode *x = v[A_EXTRACT];
		if (x->type != YN_SEQ || x->n == 0)
			return ERR(src, x,
			           "'extract' must be a non-empty sequence of mappings, not %s",
			           ynode_describe(x));
		for (size_t i = 0; i < x->n; i++)
			if ((r = parse_extract(src, x->items[i], a)) < 0)
				return r;
	}
	return 0;
}

/* [registry[:port]/]path[:tag][@sha256:hex], the characters the distribution spec allows. */
static int valid_image_ref(const char *s)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	                         "._-/:@";
	if (!*s || strlen(s) > 512 || strspn(s, ok) != strlen(s) || *s == '/' || *s == ':')
		return 0;
	const char *at = strchr(s, '@');
	if (at && (!startswith(at + 1, "sha256:") || !valid_sha256(at + 8)))
		return 0;
	const char *last = strrchr(s, '/');
	const char *tag = strchr(last ? last : s, ':');
	return at || (tag && tag[1] && tag[1] != '@'); /* pinned by digest, or at least a tag */
}

static int add_image(const struct spec_src *src, const struct ynode *it, void *data)
{
	struct ib_role *role = data;
	if (!valid_image_ref(it->value))
		return ERR(src, it,
		           "invalid image reference '%s' (expected name:tag, name@sha256:<64 hex> "
		           "or both)",
		           it->value);
	/* Counted, not logged here: one warning per command says how many and where. */
	if (!strchr(it->value, '@') && role->n_unpinned++ == 0)
		role->first_unpinned =
		        xasprintf("%s:%d:%d %s", src->display, it->line, it->col, it->value);
	strv_push(&role->images, it->value);
	return 0;
}

enum { C_FILES, C_UNITS, C_SYSCTL, C_PACKAGES, C__MAX };
static const char *const check_keys[C__MAX] = {"files", "units", "sysctl", "packages"};
enum { CF_PATH, CF_MODE, CF_OWNER, CF_SHA256, CF__MAX };
static const char *const check_file_keys[CF__MAX] = {"path", "mode", "owner", "sha256"};

static int parse_check_file(const struct spec_src *src, const struct ynode *m, struct ib_checks *c)
{
	const struct ynode *v[CF__MAX];
	int r;
	if (m->type != YN_MAP)
		return ERR(src, m, "file check must be a mapping, not %s", ynode_describe(m));
	if ((r = fields(src, m, "file check", check_file_keys, CF__MAX, v)) < 0 ||
	    (r = need(src, m, v[CF_PATH], "path", "file check")) < 0)
		return r;
	c->files = xrealloc(c->files, (c->n_files + 1) * sizeof(*c->files));
	struct ib_check_file *f = &c->files[c->n_files++];
	memset(f, 0, sizeof(*f));
	f->pos = (struct ib_pos){src->display, m->line, m->col};
	struct ib_file_spec tmp = {0};
	r = parse_dest(src, v[CF_PATH], &tmp);
	f->path = tmp.dest;
	if (r < 0)
		return r;
	if (v[CF_MODE]) {
		if ((r = parse_mode(src, v[CF_MODE], &f->mode)) < 0)
			return r;
		f->has_mode = 1;
	}
	if (v[CF_OWNER]) {
		r = parse_owner(src, v[CF_OWNER], &tmp);
		free(tmp.owner);
		if (r < 0)
			return r;
		f->uid = tmp.uid;
		f->gid = tmp.gid;
		f->has_owner = 1;
	}
	if (v[CF_SHA256]) {
		if ((r = get_string(src, v[CF_SHA256], "sha256", &f->sha256)) < 0)
			return r;
		if (!valid_sha256(f->sha256))
			return ERR(src, v[CF_SHA256],
			           "invalid sha256 '%s' (expected 64 lowercase hex digits)",
			           f->sha256);
	}
	return 0;
}

/* A mapping of names to scalar values, e.g. sysctl: {net.ipv4.ip_forward: 1}. */
static int parse_check_kvs(const struct spec_src *src, const struct ynode *n, const char *name,
                           const char *chars, struct ib_check_kv **ret, size_t *ret_n)
{
	int r = need_map(src, n, name);
	if (r < 0)
		return r;
	*ret = xcalloc(n->n / 2 + 1, sizeof(**ret));
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->items[i], *v = n->items[i + 1];
		struct ib_check_kv *kv = &(*ret)[(*ret_n)++];
		kv->pos = (struct ib_pos){src->display, k->line, k->col};
		if ((r = get_string(src, k, name, &kv->name)) < 0)
			return r;
		if (!*kv->name || strspn(kv->name, chars) != strlen(kv->name))
			return ERR(src, k, "invalid %s name '%s'", name, kv->name);
		if (v->type != YN_SCALAR || ynode_kind(v) == YK_NULL)
			return ERR(src, v, "the value of %s '%s' must be a scalar, not %s", name,
			           kv->name, ynode_describe(v));
		if ((r = get_string(src, v, name, &kv->value)) < 0)
			return r;
	}
	return 0;
}

static int parse_checks(const struct spec_src *src, const struct ynode *n, struct ib_checks *c)
{
	const struct ynode *v[C__MAX];
	int r;
	if ((r = need_map(src, n, "checks")) < 0 ||
	    (r = fields(src, n, "'checks'", check_keys, C__MAX, v)) < 0)
		return r;
	if (v[C_FILES]) {
		if (v[C_FILES]->type != YN_SEQ)
			return ERR(src, v[C_FILES],
			           "'files' must be a sequence of mappings, not %s",
			           ynode_describe(v[C_FILES]));
		for (size_t i = 0; i < v[C_FILES]->n; i++)
			if ((r = parse_check_file(src, v[C_FILES]->items[i], c)) < 0)
				return r;
	}
	if (v[C_UNITS] && (r = each_string(src, v[C_UNITS], "units", add_unit, &c->units)) < 0)
		return r;
	if (v[C_SYSCTL] && (r = parse_check_kvs(src, v[C_SYSCTL], "sysctl",
	                                        LOWER_DIGIT "._-/ABCDEFGHIJKLMNOPQRSTUVWXYZ",
	                                        &c->sysctls, &c->n_sysctls)) < 0)
		return r;
	if (v[C_PACKAGES] && (r = parse_check_kvs(src, v[C_PACKAGES], "package", LOWER_DIGIT "+.-",
	                                          &c->packages, &c->n_packages)) < 0)
		return r;
	return 0;
}

enum { BI_URL, BI_SHA256, BI_FORMAT, BI__MAX };
static const char *const base_image_keys[BI__MAX] = {"url", "sha256", "format"};

/* base: {image: {url, sha256, format}}. `image` is the only kind of base a role names: a
 * role without `base:` is bootstrapped by mmdebstrap from the project's `debian:`. */
static int parse_base(const struct spec_src *src, const struct ynode *n, struct ib_role *role)
{
	static const char *const keys[] = {"image"};
	const struct ynode *v[ARRAY_SIZE(keys)], *iv[BI__MAX];
	_cleanup_free_ char *format = NULL;
	int r;

	role->base_pos = (struct ib_pos){src->display, n->line, n->col};
	if ((r = need_map(src, n, "base")) < 0 ||
	    (r = fields(src, n, "'base'", keys, ARRAY_SIZE(keys), v)) < 0 ||
	    (r = need(src, n, v[0], "image", "'base'")) < 0 ||
	    (r = need_map(src, v[0], "image")) < 0 ||
	    (r = fields(src, v[0], "'image'", base_image_keys, BI__MAX, iv)) < 0 ||
	    (r = need(src, v[0], iv[BI_URL], "url", "'image'")) < 0 ||
	    (r = need(src, v[0], iv[BI_SHA256], "sha256", "'image'")) < 0 ||
	    (r = need(src, v[0], iv[BI_FORMAT], "format", "'image'")) < 0)
		return r;
	struct ib_base_image *b = role->base_image = xcalloc(1, sizeof(*b));
	b->pos = (struct ib_pos){src->display, v[0]->line, v[0]->col};
	if ((r = get_url(src, iv[BI_URL], "url", &b->url)) < 0 ||
	    (r = get_string(src, iv[BI_SHA256], "sha256", &b->sha256)) < 0)
		return r;
	if (!valid_sha256(b->sha256))
		return ERR(src, iv[BI_SHA256],
		           "invalid sha256 '%s' (expected 64 lowercase hex digits)", b->sha256);
	if ((r = get_string(src, iv[BI_FORMAT], "format", &format)) < 0)
		return r;
	if (streq(format, "raw"))
		b->format = IB_FMT_RAW;
	else if (streq(format, "qcow2"))
		b->format = IB_FMT_QCOW2;
	else
		return ERR(src, iv[BI_FORMAT], "unknown image format '%s' (expected raw or qcow2)",
		           format);
	return 0;
}

static int add_script(const struct spec_src *src, const struct ynode *it, void *data)
{
	char *path;
	struct stat st;
	int r = spec_project_path(src, it, "script", &path, &st);
	if (r < 0)
		return r;
	strv_push_take(data, path);
	if (!S_ISREG(st.st_mode))
		return ERR(src, it, "script '%s' is not a regular file", it->value);
	return 0;
}

static int parse_role_name(const struct spec_src *src, const struct ynode *root,
                           const struct ynode *name, const char *base, struct ib_role *r)
{
	int ret;
	if (!name) {
		r->name = xstrdup(base);
		r->pos = (struct ib_pos){src->display, root->line, root->col};
		if (!valid_name(r->name, 63))
			return spec_err(src->ctx, src->display, 1, 1,
			                "invalid role name '%s' taken from the file name (expected "
			                "lowercase letters, digits and '-', at most 63 characters)",
			                base);
		return 0;
	}
	if ((ret = get_string(src, name, "name", &r->name)) < 0)
		return ret;
	r->pos = (struct ib_pos){src->display, name->line, name->col};
	if (!valid_name(r->name, 63))
		return ERR(src, name,
		           "invalid role name '%s' (expected lowercase letters, digits and '-', at "
		           "most 63 characters)",
		           r->name);
	return 0;
}

int spec_parse_role(const struct spec_src *src, const struct ynode *root, const char *base,
                    struct ib_role *r)
{
	const struct ynode *v[R__MAX];
	int ret;

	if (!root || (root->type == YN_SCALAR && ynode_kind(root) == YK_NULL))
		return spec_err(src->ctx, src->display, 1, 1, "empty role file");
	if (root->type != YN_MAP)
		return ERR(src, root, "role file must be a mapping, not %s", ynode_describe(root));
	if ((ret = fields(src, root, "role", role_keys, R__MAX, v)) < 0 ||
	    (ret = parse_role_name(src, root, v[R_NAME], base, r)) < 0)
		return ret;
	if (v[R_DESCRIPTION] &&
	    (ret = get_string(src, v[R_DESCRIPTION], "description", &r->description)) < 0)
		return ret;
	if (v[R_ABSTRACT] && (ret = get_bool(src, v[R_ABSTRACT], "abstract", &r->abstract)) < 0)
		return ret;
	if (v[R_EXTENDS]) {
		if ((ret = get_string(src, v[R_EXTENDS], "extends", &r->extends)) < 0)
			return ret;
		r->extends_pos =
		        (struct ib_pos){src->display, v[R_EXTENDS]->line, v[R_EXTENDS]->col};
	}
	if (v[R_PACKAGES] &&
	    (ret = each_string(src, v[R_PACKAGES], "packages", add_package, &r->packages)) < 0)
		return ret;
	if (v[R_FILES]) {
		const struct ynode *files = v[R_FILES];
		if (files->type != YN_SEQ)
			return ERR(src, files, "'files' must be a sequence of mappings, not %s",
			           ynode_describe(files));
		for (size_t i = 0; i < files->n; i++)
			if ((ret = parse_file(src, files->items[i], r)) < 0)
				return ret;
	}
	if (v[R_UNITS] && (ret = parse_units(src, v[R_UNITS], r)) < 0)
		return ret;
	if (v[R_FIRSTBOOT] &&
	    (ret = each_string(src, v[R_FIRSTBOOT], "firstboot", add_firstboot, &r->firstboot)) < 0)
		return ret;
	if (v[R_CLOUD_INIT] && (ret = parse_cloud_init(src, v[R_CLOUD_INIT], r)) < 0)
		return ret;
	if (v[R_DISK]) {
		r->disk_pos = (struct ib_pos){src->display, v[R_DISK]->line, v[R_DISK]->col};
		if ((ret = parse_disk(src, v[R_DISK], &r->disk_size)) < 0)
			return ret;
	}
	if (v[R_ARTIFACTS]) {
		const struct ynode *arts = v[R_ARTIFACTS];
		if (arts->type != YN_SEQ)
			return ERR(src, arts, "'artifacts' must be a sequence of mappings, not %s",
			           ynode_describe(arts));
		for (size_t i = 0; i < arts->n; i++)
			if ((ret = parse_artifact(src, arts->items[i], r)) < 0)
				return ret;
	}
	if (v[R_IMAGES] && (ret = each_string(src, v[R_IMAGES], "images", add_image, r)) < 0)
		return ret;
	if (v[R_CHECKS] && (ret = parse_checks(src, v[R_CHECKS], &r->checks)) < 0)
		return ret;
	if (v[R_VARS] && (ret = parse_vars(src, v[R_VARS], r)) < 0)
		return ret;
	if (v[R_SCRIPTS]) {
		r->scripts_pos =
		        (struct ib_pos){src->display, v[R_SCRIPTS]->line, v[R_SCRIPTS]->col};
		if ((ret = each_string(src, v[R_SCRIPTS], "scripts", add_script, &r->scripts)) < 0)
			return ret;
	}
	if (v[R_BASE]) {
		if ((ret = parse_base(src, v[R_BASE], r)) < 0)
			return ret;
		/* The image brings its partitions and filesystems: nothing of the disk assembly
		 * (mmdebstrap's tree, `disk: size:`) applies to it. */
		if (v[R_DISK])
			return ERR(
			        src, v[R_DISK],
			        "'disk' cannot be set in a role with 'base: image:' (line %d): the "
			        "image brings its own disk",
			        v[R_BASE]->line);
	}
	return 0;
}

void spec_role_release(struct ib_role *r)
{
	free(r->name);
	free(r->path);
	free(r->description);
	free(r->extends);
	strv_release(&r->packages);
	for (size_t i = 0; i < r->n_files; i++) {
		free(r->files[i].source);
		free(r->files[i].dest);
		free(r->files[i].owner);
	}
	free(r->files);
	strv_release(&r->units);
	strv_release(&r->firstboot);
	for (size_t i = 0; i < r->n_cloud_init; i++) {
		free(r->cloud_init[i].key);
		free(r->cloud_init[i].yaml);
	}
	free(r->cloud_init);
	for (size_t i = 0; i < r->n_artifacts; i++) {
		struct ib_artifact *a = &r->artifacts[i];
		free(a->name);
		free(a->url);
		free(a->sha256);
		free(a->checksum_url);
		free(a->dest);
		for (size_t j = 0; j < a->n_extract; j++) {
			free(a->extract[j].member);
			free(a->extract[j].dest);
		}
		free(a->extract);
	}
	free(r->artifacts);
	strv_release(&r->images);
	free(r->first_unpinned);
	for (size_t i = 0; i < r->checks.n_files; i++) {
		free(r->checks.files[i].path);
		free(r->checks.files[i].sha256);
	}
	free(r->checks.files);
	strv_release(&r->checks.units);
	for (size_t i = 0; i < r->checks.n_sysctls; i++) {
		free(r->checks.sysctls[i].name);
		free(r->checks.sysctls[i].value);
	}
	free(r->checks.sysctls);
	for (size_t i = 0; i < r->checks.n_packages; i++) {
		free(r->checks.packages[i].name);
		free(r->checks.packages[i].value);
	}
	free(r->checks.packages);
	for (size_t i = 0; i < r->n_vars; i++) {
		free(r->vars[i].name);
		free(r->vars[i].value);
	}
	free(r->vars);
	if (r->base_image) {
		free(r->base_image->url);
		free(r->base_image->sha256);
		free(r->base_image);
	}
	strv_release(&r->scripts);
	memset(r, 0, sizeof(*r));
}
