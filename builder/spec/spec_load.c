/* spec_load.c: find the project, read its spec files and assemble an ib_project. */
#include "spec_internal.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>

#include "util/fs.h"
#include "util/strbuf.h"

static void project_freep(struct ib_project **p)
{
	ib_project_free(*p);
}

void ib_project_free(struct ib_project *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_roles; i++)
		spec_role_release(&p->roles[i]);
	free(p->roles);
	free(p->root);
	free(p->path);
	free(p->name);
	free(p->suite);
	free(p->mirror);
	free(p->arch);
	free(p->variant);
	free(p->output_dir);
	strv_release(&p->files);
	strv_release(&p->file_names);
	free(p);
}

static int cmp_role(const void *a, const void *b)
{
	return strcmp(((const struct ib_role *)a)->name, ((const struct ib_role *)b)->name);
}

const struct ib_role *ib_project_find_role(const struct ib_project *p, const char *name)
{
	struct ib_role key = {.name = (char *)name};
	if (!p || !name || !p->n_roles)
		return NULL;
	return bsearch(&key, p->roles, p->n_roles, sizeof(*p->roles), cmp_role);
}

/* Read one spec file and parse it into a tree, naming it by display in errors. */
static int load_tree(struct ib_ctx *ctx, const char *path, const char *display,
                     struct ynode **ret_root)
{
	struct ib_ctx sub;
	_cleanup_free_ char *data = NULL;
	size_t len;

	ib_ctx_init(&sub);
	if (ib_read_file(&sub, path, IB_SPEC_MAX_FILE, &data, &len) < 0) {
		if (sub.err_code == IB_E_SPEC)
			return ib_error(ctx, IB_E_SPEC, "%s: file is larger than %u bytes", display,
			                IB_SPEC_MAX_FILE);
		ib_error_propagate(ctx, &sub);
		return -(int)sub.err_code;
	}
	return spec_yaml_load(ctx, display, data, len, ret_root);
}

/* Register a spec file on the project; returns its display name, owned by p. */
static const char *add_file(struct ib_project *p, const char *path, const char *display)
{
	strv_push(&p->files, path);
	strv_push(&p->file_names, display);
	return p->file_names.v[p->file_names.n - 1];
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.yaml names in <root>/images, sorted. Hidden files (editor leftovers) are skipped. */
static int list_role_files(struct ib_ctx *ctx, const struct ib_project *p, struct strv *ret)
{
	_cleanup_free_ char *dir = ib_path_join(p->root, "images");
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return ib_error(ctx, IB_E_SPEC,
			                "imgbuild.yaml: the project has no 'images' directory for "
			                "role files");
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", dir);
	}
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.' || !endswith(de->d_name, ".yaml"))
			continue;
		/* The name becomes the role's and shows in every message: bytes that are not
		 * printable ASCII (not UTF-8, escapes) are shown as \xNN, never as they are. */
		const unsigned char *c = (const unsigned char *)de->d_name;
		while (*c >= 0x20 && *c < 0x7f)
			c++;
		if (*c) {
			struct strbuf sb = STRBUF_INIT;
			for (c = (const unsigned char *)de->d_name; *c; c++)
				if (*c >= 0x20 && *c < 0x7f && *c != '\\')
					sb_addc(&sb, (char)*c);
				else
					sb_addf(&sb, "\\x%02x", *c);
			r = ib_error(
			        ctx, IB_E_SPEC,
			        "images/%s: invalid role file name (expected lowercase letters, "
			        "digits and '-', then .yaml)",
			        sb_str(&sb));
			sb_release(&sb);
			continue;
		}
		strv_push(ret, de->d_name);
	}
	closedir(d);
	if (r < 0)
		return r;
	if (ret->n > 1)
		qsort(ret->v, ret->n, sizeof(char *), cmp_str);
	return 0;
}

static int load_role(struct ib_ctx *ctx, struct ib_project *p, const struct spec_src *proj_src,
                     const char *file_name)
{
	_cleanup_free_ char *path = ib_path_join(p->root, "images");
	_cleanup_free_ char *full = ib_path_join(path, file_name);
	_cleanup_free_ char *display = xasprintf("images/%s", file_name);
	_cleanup_free_ char *base = xstrndup(file_name, strlen(file_name) - strlen(".yaml"));
	struct stat st;

	if (stat(full, &st) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot access '%s'", full);
	if (!S_ISREG(st.st_mode))
		return ib_error(ctx, IB_E_SPEC, "%s: not a regular file", display);

	struct spec_src src = *proj_src;
	src.display = add_file(p, full, display);
	_cleanup_ynode_ struct ynode *root = NULL;
	int r = load_tree(ctx, full, src.display, &root);
	if (r < 0)
		return r;

	struct ib_role role = {0};
	role.path = TAKE_PTR(full);
	r = spec_parse_role(&src, root, base, &role);
	for (size_t i = 0; r >= 0 && i < p->n_roles; i++) {
		const struct ib_role *o = &p->roles[i];
		if (streq(o->name, role.name))
			r = spec_err(ctx, role.pos.file, role.pos.line, role.pos.col,
			             "duplicate role '%s' (first defined at %s:%d:%d)", role.name,
			             o->pos.file, o->pos.line, o->pos.col);
	}
	if (r < 0) {
		spec_role_release(&role);
		return r;
	}
	p->roles = xrealloc(p->roles, (p->n_roles + 1) * sizeof(*p->roles));
	p->roles[p->n_roles++] = role;
	return 0;
}

/* Split the argument into the project root and the project file's name. */
static int locate(struct ib_ctx *ctx, const char *path, char **ret_root, char **ret_base)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return ib_error_errno(ctx, errno == ENOENT ? IB_E_SPEC : IB_E_IO, errno,
		                      "cannot open project '%s'", path);
	if (S_ISDIR(st.st_mode)) {
		_cleanup_free_ char *file = ib_path_join(path, "imgbuild.yaml");
		if (!ib_exists(file))
			return ib_error(ctx, IB_E_SPEC, "no imgbuild.yaml in '%s'", path);
		*ret_root = xstrdup(path);
		*ret_base = xstrdup("imgbuild.yaml");
		return 0;
	}
	_cleanup_free_ char *a = xstrdup(path);
	_cleanup_free_ char *b = xstrdup(path);
	*ret_root = xstrdup(dirname(a));
	*ret_base = xstrdup(basename(b));
	return 0;
}

int ib_project_load(struct ib_ctx *ctx, const char *path, struct ib_project **ret_project)
{
	_cleanup_free_ char *given = NULL;
	_cleanup_free_ char *base = NULL;
	_cleanup_(project_freep) struct ib_project *p = NULL;
	struct strv names = {0};
	int r;

	if ((r = locate(ctx, path, &given, &base)) < 0)
		return r;
	p = xcalloc(1, sizeof(*p));
	p->root = realpath(given, NULL);
	if (!p->root)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot resolve '%s'", given);
	p->path = ib_path_join(p->root, base);

	/* Absolute paths in specs may name the root as the user wrote it, before symlinks. */
	_cleanup_free_ char *abs = ib_abspath(given);
	_cleanup_free_ char *root_abs = spec_path_clean(abs, 1, NULL);
	struct spec_src src = {.ctx = ctx, .root = p->root, .root_abs = root_abs};
	src.display = add_file(p, p->path, base);

	_cleanup_ynode_ struct ynode *tree = NULL;
	if ((r = load_tree(ctx, p->path, src.display, &tree)) < 0 ||
	    (r = spec_parse_project(&src, tree, p)) < 0 ||
	    (r = list_role_files(ctx, p, &names)) < 0)
		goto out;
	for (size_t i = 0; i < names.n; i++)
		if ((r = load_role(ctx, p, &src, names.v[i])) < 0)
			goto out;
	if (p->n_roles > 1)
		qsort(p->roles, p->n_roles, sizeof(*p->roles), cmp_role);
	if ((r = spec_check_extends(ctx, p)) < 0)
		goto out;
	*ret_project = TAKE_PTR(p);
out:
	strv_release(&names);
	return r;
}
