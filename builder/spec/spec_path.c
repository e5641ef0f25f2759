/* spec_path.c: lexical path cleaning and the checks that keep spec paths in the project. */
#include "spec_internal.h"

#include <errno.h>
#include <limits.h>

#include "util/fs.h"
#include "util/strbuf.h"

char *spec_path_clean(const char *path, int resolve_dotdot, int *ret_dotdot)
{
	struct strbuf sb = STRBUF_INIT;
	int abs = path[0] == '/', dotdot = 0;

	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.')) {
			p += n;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (resolve_dotdot && abs) {
				char *slash = memrchr(sb_str(&sb), '/', sb.len);
				sb.len = slash ? (size_t)(slash - sb.buf) : 0;
				if (sb.buf)
					sb.buf[sb.len] = '\0';
				p += n;
				continue;
			}
			dotdot = 1;
		}
		if (abs || sb.len)
			sb_addc(&sb, '/');
		sb_add(&sb, p, n);
		p += n;
	}
	if (ret_dotdot)
		*ret_dotdot = dotdot;
	if (!sb.len)
		sb_adds(&sb, abs ? "/" : ".");
	return sb_take(&sb);
}

int spec_path_inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (streq(dir, "/"))
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int spec_project_path(const struct spec_src *src, const struct ynode *n, const char *what,
                      char **ret_path, struct stat *ret_st)
{
	const char *v = n->value;
	int dotdot;

	if (!*v)
		return spec_err_at(src->ctx, src->display, n, "%s path must not be empty", what);
	_cleanup_free_ char *clean = spec_path_clean(v, 0, &dotdot);
	if (dotdot || (v[0] == '/' && !spec_path_inside(clean, src->root) &&
	               !spec_path_inside(clean, src->root_abs)))
		return spec_err_at(src->ctx, src->display, n,
		                   "path '%s' escapes the project directory", v);
	_cleanup_free_ char *path = NULL;
	if (v[0] == '/')
		path = TAKE_PTR(clean);
	else if (streq(clean, "."))
		path = xstrdup(src->root);
	else
		path = ib_path_join(src->root, clean);

	_cleanup_free_ char *real = realpath(path, NULL);
	if (!real) {
		if (errno == ENOENT || errno == ENOTDIR)
			return spec_err_at(src->ctx, src->display, n, "%s '%s' does not exist",
			                   what, v);
		return spec_err_at(src->ctx, src->display, n, "cannot resolve %s '%s': %s", what, v,
		                   strerror(errno));
	}
	if (!spec_path_inside(real, src->root))
		return spec_err_at(src->ctx, src->display, n,
		                   "path '%s' escapes the project directory", v);
	if (stat(real, ret_st) < 0)
		return spec_err_at(src->ctx, src->display, n, "cannot access %s '%s': %s", what, v,
		                   strerror(errno));
	*ret_path = TAKE_PTR(path);
	return 0;
}
