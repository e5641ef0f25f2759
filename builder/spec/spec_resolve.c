/* spec_resolve.c: `extends:` checks at load time and flattening a role's chain. */
#include "spec_internal.h"

#include "util/fs.h"
#include "util/strbuf.h"

static const struct ib_role *parent_of(const struct ib_project *p, const struct ib_role *r)
{
	return r->extends ? ib_project_find_role(p, r->extends) : NULL;
}

int spec_check_extends(struct ib_ctx *ctx, const struct ib_project *p)
{
	for (size_t i = 0; i < p->n_roles; i++) {
		const struct ib_role *r = &p->roles[i];
		if (r->extends && !parent_of(p, r))
			return spec_err(ctx, r->extends_pos.file, r->extends_pos.line,
			                r->extends_pos.col, "role '%s' extends unknown role '%s'",
			                r->name, r->extends);
	}
	/* A role is in a cycle iff walking up from it comes back to it within n_roles steps.
	 * Roles are sorted, so the first one reported is the same on every run. */
	for (size_t i = 0; i < p->n_roles; i++) {
		const struct ib_role *r = &p->roles[i], *q = parent_of(p, r);
		for (size_t steps = 0; q && q != r && steps < p->n_roles; steps++)
			q = parent_of(p, q);
		if (q != r)
			continue;
		struct strbuf path = STRBUF_INIT;
		sb_adds(&path, r->name);
		for (q = parent_of(p, r); q; q = q == r ? NULL : parent_of(p, q))
			sb_addf(&path, " -> %s", q->name);
		int ret =
		        spec_err(ctx, r->extends_pos.file, r->extends_pos.line, r->extends_pos.col,
		                 "role '%s' extends itself: %s", r->name, sb_str(&path));
		sb_release(&path);
		return ret;
	}
	return 0;
}

void ib_resolved_free(struct ib_resolved *r)
{
	if (!r)
		return;
	free(r->chain);
	strv_release(&r->packages);
	free(r->files);
	strv_release(&r->units);
	strv_release(&r->firstboot);
	free(r->cloud_init);
	free(r->artifacts);
	strv_release(&r->images);
	free(r->checks);
	free(r->vars);
	strv_release(&r->scripts);
	free(r);
}

static void resolved_freep(struct ib_resolved **r)
{
	ib_resolved_free(*r);
}

static int cmp_kv(const void *a, const void *b)
{
	return strcmp((*(struct ib_kv *const *)a)->key, (*(struct ib_kv *const *)b)->key);
}

static int cmp_tvar(const void *a, const void *b)
{
	return strcmp(((const struct ib_tvar *)a)->name, ((const struct ib_tvar *)b)->name);
}

static void merge_vars(struct ib_resolved *res, const struct ib_role *role)
{
	for (size_t i = 0; i < role->n_vars; i++) {
		size_t j = 0;
		while (j < res->n_vars && !streq(res->vars[j].name, role->vars[i].name))
			j++;
		if (j == res->n_vars)
			res->n_vars++; /* sized for every var of the chain */
		res->vars[j] = (struct ib_tvar){role->vars[i].name, role->vars[i].value};
	}
}

/* A project file as errors name it: relative to the project root. */
static const char *display_path(const struct ib_project *p, const char *path)
{
	size_t n = strlen(p->root);
	if (strncmp(path, p->root, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

/* Render every templated file once, so that a placeholder without a value is a spec error
 * at validate time, not a surprise in the middle of a build. */
static int check_templates(struct ib_ctx *ctx, const struct ib_project *p,
                           const struct ib_resolved *res)
{
	for (size_t i = 0; i < res->n_files; i++) {
		const struct ib_file_spec *f = res->files[i];
		if (!f->template)
			continue;
		_cleanup_free_ char *text = NULL, *out = NULL;
		size_t len;
		int r = ib_read_file(ctx, f->source, IB_SPEC_MAX_FILE, &text, &len);
		if (r < 0)
			return r;
		if (strlen(text) != len)
			return ib_error(ctx, IB_E_SPEC, "%s: a template must be text, not binary",
			                display_path(p, f->source));
		r = ib_template_render(ctx, display_path(p, f->source), text, res->vars,
		                       res->n_vars, &out);
		if (r < 0)
			return r;
	}
	return 0;
}

/* What a base image rules out, over the whole chain: a disk size (the image brings its
 * disk) anywhere in it, and build-time scripts without an image to run them in (a
 * bootstrapped role runs nothing at build time). */
static int check_base(struct ib_ctx *ctx, const struct ib_resolved *res)
{
	const struct ib_role *img = NULL, *scripts = NULL;
	for (size_t i = 0; i < res->n_chain; i++) {
		if (res->chain[i]->base_image)
			img = res->chain[i];
		if (res->chain[i]->scripts.n && !scripts)
			scripts = res->chain[i];
	}
	if (!img) {
		if (!scripts)
			return 0;
		return spec_err(ctx, scripts->scripts_pos.file, scripts->scripts_pos.line,
		                scripts->scripts_pos.col,
		                "'scripts' needs 'base: image:' in role '%s' or a role it extends "
		                "(a bootstrapped role runs nothing at build time; use 'firstboot')",
		                res->role->name);
	}
	for (size_t i = 0; i < res->n_chain; i++) {
		const struct ib_role *q = res->chain[i];
		if (!q->disk_size)
			continue;
		return spec_err(ctx, q->disk_pos.file, q->disk_pos.line, q->disk_pos.col,
		                "role '%s' sets 'disk' but role '%s' starts from 'base: image:' "
		                "(%s:%d): the image brings its own disk",
		                q->name, img->name, img->base_pos.file, img->base_pos.line);
	}
	return 0;
}

static void merge_role(struct ib_resolved *res, const struct ib_role *role, size_t max_files,
                       size_t max_kv)
{
	merge_vars(res, role);
	for (size_t i = 0; i < role->images.n; i++)
		strv_push(&res->images, role->images.v[i]);
	for (size_t i = 0; i < role->n_artifacts; i++) {
		struct ib_artifact *a = &role->artifacts[i];
		size_t j = 0;
		while (j < res->n_artifacts && !streq(res->artifacts[j]->name, a->name))
			j++;
		if (j == res->n_artifacts)
			res->n_artifacts++; /* sized for every artifact of the chain */
		res->artifacts[j] = a;
	}
	for (size_t i = 0; i < role->packages.n; i++)
		strv_push(&res->packages, role->packages.v[i]);
	for (size_t i = 0; i < role->units.n; i++)
		strv_push(&res->units, role->units.v[i]);
	for (size_t i = 0; i < role->firstboot.n; i++)
		if (!strv_contains(&res->firstboot, role->firstboot.v[i]))
			strv_push(&res->firstboot, role->firstboot.v[i]);
	for (size_t i = 0; i < role->scripts.n; i++)
		if (!strv_contains(&res->scripts, role->scripts.v[i]))
			strv_push(&res->scripts, role->scripts.v[i]);
	if (role->base_image)
		res->base_image = role->base_image;

	/* A descendant's entry for a destination takes the ancestor's place in the order. */
	for (size_t i = 0; i < role->n_files; i++) {
		struct ib_file_spec *f = &role->files[i];
		size_t j = 0;
		while (j < res->n_files && !streq(res->files[j]->dest, f->dest))
			j++;
		if (j == res->n_files && res->n_files < max_files)
			res->n_files++;
		res->files[j] = f;
	}
	for (size_t i = 0; i < role->n_cloud_init; i++) {
		struct ib_kv *kv = &role->cloud_init[i];
		size_t j = 0;
		while (j < res->n_cloud_init && !streq(res->cloud_init[j]->key, kv->key))
			j++;
		if (j == res->n_cloud_init && res->n_cloud_init < max_kv)
			res->n_cloud_init++;
		res->cloud_init[j] = kv;
	}
}

int ib_role_resolve(struct ib_ctx *ctx, const struct ib_project *p, const char *name,
                    struct ib_resolved **ret)
{
	const struct ib_role *role = ib_project_find_role(p, name);
	if (!role) {
		struct strbuf known = STRBUF_INIT;
		for (size_t i = 0; i < p->n_roles; i++)
			sb_addf(&known, "%s%s", i ? ", " : "", p->roles[i].name);
		int r = ib_error(ctx, IB_E_SPEC, "unknown role '%s' (known roles: %s)", name,
		                 p->n_roles ? sb_str(&known) : "none");
		sb_release(&known);
		return r;
	}

	_cleanup_(resolved_freep) struct ib_resolved *res = xcalloc(1, sizeof(*res));
	res->role = role;
	/* Loading refused cycles, so the chain ends within n_roles steps. */
	size_t n = 0, n_files = 0, n_kv = 0, n_art = 0, n_vars = 1;
	for (const struct ib_role *q = role; q && n < p->n_roles; q = parent_of(p, q)) {
		n++;
		n_vars += q->n_vars;
		n_files += q->n_files;
		n_kv += q->n_cloud_init;
		n_art += q->n_artifacts;
	}
	res->chain = xcalloc(n, sizeof(*res->chain));
	res->n_chain = n;
	const struct ib_role *q = role;
	for (size_t i = n; i-- > 0; q = parent_of(p, q))
		res->chain[i] = q;

	res->files = xcalloc(n_files + 1, sizeof(*res->files));
	res->cloud_init = xcalloc(n_kv + 1, sizeof(*res->cloud_init));
	res->artifacts = xcalloc(n_art + 1, sizeof(*res->artifacts));
	res->vars = xcalloc(n_vars, sizeof(*res->vars));
	res->vars[res->n_vars++] = (struct ib_tvar){"role", role->name};
	res->checks = xcalloc(n, sizeof(*res->checks));
	res->n_checks = n;
	for (size_t i = 0; i < n; i++)
		res->checks[i] = &res->chain[i]->checks;
	res->disk_size = p->disk_size;
	for (size_t i = 0; i < n; i++) {
		merge_role(res, res->chain[i], n_files, n_kv);
		if (res->chain[i]->disk_size)
			res->disk_size = res->chain[i]->disk_size;
	}
	strv_sort(&res->packages);
	strv_uniq_sorted(&res->packages);
	strv_sort(&res->units);
	strv_uniq_sorted(&res->units);
	strv_sort(&res->images);
	strv_uniq_sorted(&res->images);
	if (res->n_cloud_init > 1)
		qsort(res->cloud_init, res->n_cloud_init, sizeof(*res->cloud_init), cmp_kv);
	qsort(res->vars, res->n_vars, sizeof(*res->vars), cmp_tvar);
	int r = check_base(ctx, res);
	if (r < 0)
		return r;
	r = check_templates(ctx, p, res);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(res);
	return 0;
}
