/* layer.c: a role's files, first-boot scripts and settings written as one deterministic tar. */
#include "layer/layer.h"
#include "util/tarw.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "layer/entries.h"
#include "layer/jenkins.h"
#include "util/fs.h"
#include "util/strbuf.h"
#include "util/tmpreg.h"

/* A directory tree with more entries than this is a mistake (a home directory, a build
 * tree), not configuration. */
#define LAYER_MAX_ENTRIES  (1u << 20)
#define LAYER_MAX_TEMPLATE IB_SPEC_MAX_FILE /* a template is read whole, like a spec */

/* 9999-12-31T23:59:59Z: past it, ISO 9660 dates (four-digit years) cannot hold the time. */
#define MAX_EPOCH ((intmax_t)253402300799)

time_t ib_source_date_epoch(void)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	if (!s)
		return IB_DEFAULT_EPOCH;
	if (!*s)
		return -1;
	intmax_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
		if (v > MAX_EPOCH)
			return -1;
	}
	return (time_t)v;
}

/* ---- the entry list ---- */

void lentries_add(struct lentries *l, struct lentry *e)
{
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 64;
		l->v = xrealloc(l->v, l->alloc * sizeof(*l->v));
	}
	e->seq = l->next_seq++;
	l->v[l->n++] = *e;
	memset(e, 0, sizeof(*e));
}

static void lentry_release(struct lentry *e)
{
	free(e->path);
	free(e->source);
	free(e->data);
	free(e->link);
	free(e->why);
	memset(e, 0, sizeof(*e));
}

void lentries_release(struct lentries *l)
{
	for (size_t i = 0; i < l->n; i++)
		lentry_release(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int cmp_lentry(const void *a, const void *b)
{
	const struct lentry *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int streq_null(const char *a, const char *b)
{
	return a == b || (a && b && streq(a, b));
}

static int lentry_same(const struct lentry *a, const struct lentry *b)
{
	return a->type == b->type && a->perm == b->perm && a->uid == b->uid && a->gid == b->gid &&
	       streq_null(a->source, b->source) && streq_null(a->link, b->link) &&
	       a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0) &&
	       (!a->data) == (!b->data);
}

static char *lentry_describe(const struct lentry *e)
{
	if (e->why)
		return xstrdup(e->why);
	if (e->spec && e->spec->pos.file)
		return xasprintf("the files: entry at %s:%d:%d", e->spec->pos.file,
		                 e->spec->pos.line, e->spec->pos.col);
	if (e->spec)
		return xasprintf("the files: entry for '%s'", e->spec->dest);
	return xstrdup("imgbuild");
}

int lentries_sort_merge(struct ib_ctx *ctx, struct lentries *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_lentry);
	int r = 0;
	size_t w = 0;
	for (size_t i = 0; i < l->n; i++) {
		struct lentry *cur = &l->v[i];
		struct lentry *prev = w > 0 ? &l->v[w - 1] : NULL;
		if (r == 0 && prev && streq(prev->path, cur->path)) {
			if (lentry_same(prev, cur)) {
				lentry_release(cur);
				continue;
			}
			if (prev->spec && cur->spec) {
				/* Sorted by seq within one path: cur is the later declaration. */
				lentry_release(prev);
				*prev = *cur;
				memset(cur, 0, sizeof(*cur));
				continue;
			}
			_cleanup_free_ char *a = lentry_describe(prev);
			_cleanup_free_ char *b = lentry_describe(cur);
			r = ib_error(ctx, IB_E_SPEC, "'/%s' is written twice, by %s and by %s",
			             cur->path, a, b);
		}
		if (w != i) {
			l->v[w] = *cur;
			memset(cur, 0, sizeof(*cur));
		}
		w++;
	}
	l->n = w;
	return r;
}

const struct lentry *lentries_find(const struct lentries *l, const char *path)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(path, l->v[mid].path);
		if (c == 0)
			return &l->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Extraction would fail (or write through a symlink) if something other than a directory
 * sat on the way to another entry: refuse that here, naming both. */
static int check_parents(struct ib_ctx *ctx, const struct lentries *l)
{
	for (size_t i = 0; i < l->n; i++) {
		_cleanup_free_ char *p = xstrdup(l->v[i].path);
		for (char *s = strrchr(p, '/'); s; s = strrchr(p, '/')) {
			*s = '\0';
			const struct lentry *up = lentries_find(l, p);
			if (up && up->type != S_IFDIR) {
				_cleanup_free_ char *a = lentry_describe(up);
				_cleanup_free_ char *b = lentry_describe(&l->v[i]);
				return ib_error(ctx, IB_E_SPEC,
				                "'/%s' (from %s) is not a directory, but '/%s' "
				                "(from %s) is below it",
				                up->path, a, l->v[i].path, b);
			}
		}
	}
	return 0;
}

/* ---- collecting the role's files ---- */

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

static mode_t default_file_perm(mode_t st_mode)
{
	return (st_mode & 0111) ? 0755 : 0644;
}

static void add_user(struct lentries *l, const struct ib_file_spec *fs, char *path, mode_t type,
                     mode_t perm, char *source, char *link)
{
	struct lentry e = {
	        .path = path,
	        .type = type,
	        .perm = perm,
	        .uid = fs->uid,
	        .gid = fs->gid,
	        .source = source,
	        .link = link,
	        .spec = fs,
	};
	lentries_add(l, &e);
}

/* Everything below host_dir, stored under rel_dir (relative, "" for the image root). */
static int add_tree(struct ib_ctx *ctx, struct lentries *l, const struct ib_file_spec *fs,
                    const char *host_dir, const char *rel_dir)
{
	struct strv names = {0};
	DIR *d = opendir(host_dir);
	if (!d)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read directory '%s'", host_dir);
	errno = 0;
	for (struct dirent *de; (de = readdir(d)); errno = 0)
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			strv_push(&names, de->d_name);
	int e = errno;
	closedir(d);
	if (e) {
		strv_release(&names);
		return ib_error_errno(ctx, IB_E_IO, e, "cannot read directory '%s'", host_dir);
	}

	int r = 0;
	for (size_t i = 0; i < names.n && r == 0; i++) {
		if (ib_interrupted) {
			r = ib_error(ctx, IB_E_INTERRUPTED, "interrupted");
			break;
		}
		if (l->n >= LAYER_MAX_ENTRIES) {
			r = ib_error(ctx, IB_E_SPEC, "'%s' holds more than %u entries", fs->source,
			             LAYER_MAX_ENTRIES);
			break;
		}
		_cleanup_free_ char *host = ib_path_join(host_dir, names.v[i]);
		char *rel =
		        *rel_dir ? xasprintf("%s/%s", rel_dir, names.v[i]) : xstrdup(names.v[i]);
		struct stat st;
		if (lstat(host, &st) < 0) {
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", host);
			free(rel);
		} else if (S_ISREG(st.st_mode)) {
			add_user(l, fs, rel, S_IFREG, default_file_perm(st.st_mode), xstrdup(host),
			         NULL);
		} else if (S_ISLNK(st.st_mode)) {
			char *target = NULL;
			r = read_link(ctx, host, &target);
			if (r == 0)
				add_user(l, fs, rel, S_IFLNK, 0777, NULL, target);
			else
				free(rel);
		} else if (S_ISDIR(st.st_mode)) {
			add_user(l, fs, rel, S_IFDIR, 0755, NULL, NULL);
			/* The list may have moved; the path is still at the end. */
			r = add_tree(ctx, l, fs, host, l->v[l->n - 1].path);
		} else {
			r = ib_error(ctx, IB_E_SPEC,
			             "'%s' is not a regular file, a directory or a symlink: it "
			             "cannot go into an image layer",
			             host);
			free(rel);
		}
	}
	strv_release(&names);
	return r;
}

/* A templated file goes into the layer as its rendering: the bytes in the image are what
 * the role's vars made of it, and the host file is never copied as is. */
static int add_template(struct ib_ctx *ctx, struct lentries *l, const struct ib_layer_opts *opts,
                        const struct ib_file_spec *fs, const char *rel, mode_t perm)
{
	_cleanup_free_ char *text = NULL;
	char *out = NULL;
	size_t len;
	int r = ib_read_file(ctx, fs->source, LAYER_MAX_TEMPLATE, &text, &len);
	if (r < 0)
		return r;
	const char *shown = fs->source;
	size_t rl = opts->project && opts->project->root ? strlen(opts->project->root) : 0;
	if (rl && strncmp(shown, opts->project->root, rl) == 0 && shown[rl] == '/')
		shown += rl + 1;
	if (strlen(text) != len)
		return ib_error(ctx, IB_E_SPEC, "%s: a template must be text, not binary", shown);
	r = ib_template_render(ctx, shown, text, opts->role->vars, opts->role->n_vars, &out);
	if (r < 0)
		return r;
	struct lentry e = {
	        .path = xstrdup(rel),
	        .type = S_IFREG,
	        .perm = perm,
	        .uid = fs->uid,
	        .gid = fs->gid,
	        .data = out,
	        .len = strlen(out),
	        .spec = fs,
	};
	lentries_add(l, &e);
	return 0;
}

static int add_file_spec(struct ib_ctx *ctx, struct lentries *l, const struct ib_layer_opts *opts,
                         const struct ib_file_spec *fs)
{
	struct stat st;
	if (stat(fs->source, &st) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", fs->source);
	const char *rel = fs->dest;
	while (*rel == '/')
		rel++;
	if (S_ISREG(st.st_mode)) {
		if (!*rel)
			return ib_error(ctx, IB_E_SPEC, "'%s' cannot be copied to '/'", fs->source);
		mode_t perm = fs->has_mode ? (fs->mode & 07777) : default_file_perm(st.st_mode);
		if (fs->template)
			return add_template(ctx, l, opts, fs, rel, perm);
		add_user(l, fs, xstrdup(rel), S_IFREG, perm, xstrdup(fs->source), NULL);
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		if (*rel)
			add_user(l, fs, xstrdup(rel), S_IFDIR,
			         fs->has_mode ? (fs->mode & 07777) : 0755, NULL, NULL);
		return add_tree(ctx, l, fs, fs->source, rel);
	}
	return ib_error(ctx, IB_E_SPEC, "'%s' is not a regular file or a directory", fs->source);
}

static void add_builtin(struct lentries *l, char *path, mode_t perm, char *source, char *data,
                        size_t len, char *why)
{
	struct lentry e = {
	        .path = path,
	        .type = S_IFREG,
	        .perm = perm,
	        .source = source,
	        .data = data,
	        .len = len,
	        .why = why,
	};
	lentries_add(l, &e);
}

static int collect(struct ib_ctx *ctx, const struct ib_layer_opts *opts, struct lentries *l)
{
	const struct ib_resolved *res = opts->role;
	for (size_t i = 0; i < res->n_files; i++) {
		int r = add_file_spec(ctx, l, opts, res->files[i]);
		if (r < 0)
			return r;
	}

	char *name = xasprintf("%s\n", res->role->name);
	add_builtin(l, xstrdup("etc/imgbuild/role"), 0644, NULL, name, strlen(name),
	            xstrdup("imgbuild (the role name)"));

	/* Names sort in run order: "10-", "20-"... and, past nine scripts, a wider number for
	 * every script ("010-"...) so that "100-" does not sort before "20-". */
	int width = 2;
	for (size_t n = res->firstboot.n * 10; n >= 100; n /= 10)
		width++;
	for (size_t i = 0; i < res->firstboot.n; i++) {
		const char *src = res->firstboot.v[i];
		const char *base = strrchr(src, '/');
		base = base ? base + 1 : src;
		struct stat st;
		if (stat(src, &st) < 0)
			return ib_error_errno(ctx, IB_E_IO, errno,
			                      "cannot read first-boot script '%s'", src);
		if (!S_ISREG(st.st_mode))
			return ib_error(ctx, IB_E_SPEC,
			                "first-boot script '%s' is not a regular file", src);
		add_builtin(l,
		            xasprintf("usr/lib/imgbuild/firstboot.d/%0*zu-%s", width, (i + 1) * 10,
		                      base),
		            0755, xstrdup(src), NULL, 0,
		            xasprintf("imgbuild (first-boot script '%s')", src));
	}

	if (res->n_cloud_init > 0) {
		struct strbuf sb = STRBUF_INIT;
		sb_adds(&sb, "# written by imgbuild from the role spec\n");
		for (size_t i = 0; i < res->n_cloud_init; i++)
			sb_adds(&sb, res->cloud_init[i]->yaml);
		size_t len = sb.len;
		add_builtin(l, xstrdup("etc/cloud/cloud.cfg.d/90-imgbuild.cfg"), 0644, NULL,
		            sb_take(&sb), len, xstrdup("imgbuild (the cloud_init settings)"));
	}
	return 0;
}

/* ---- writing ---- */

static int copy_file(struct ib_ctx *ctx, struct archive *a, struct archive_entry *ae,
                     const struct lentry *e, const char *tmp)
{
	_cleanup_close_ int fd = open(e->source, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", e->source);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", e->source);
	if (!S_ISREG(st.st_mode))
		return ib_error(ctx, IB_E_IO, "'%s' is no longer a regular file", e->source);
	archive_entry_set_size(ae, st.st_size);
	if (archive_write_header(a, ae) < ARCHIVE_WARN)
		return ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", tmp,
		                archive_error_string(a));
	char buf[65536];
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = read(fd, buf, (size_t)left < sizeof(buf) ? (size_t)left : sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", e->source);
		if (n == 0)
			return ib_error(ctx, IB_E_IO, "'%s' shrank while it was being read",
			                e->source);
		if (archive_write_data(a, buf, (size_t)n) != n)
			return ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", tmp,
			                archive_error_string(a));
		left -= n;
	}
	return 0;
}

static int write_entry(struct ib_ctx *ctx, struct archive *a, const struct lentry *e, time_t mtime,
                       const char *tmp)
{
	struct archive_entry *ae = archive_entry_new();
	if (!ae)
		return ib_error(ctx, IB_E_LIB, "out of memory");
	archive_entry_copy_pathname(ae, e->path);
	archive_entry_set_filetype(ae, e->type);
	archive_entry_set_perm(ae, e->perm);
	archive_entry_set_uid(ae, e->uid);
	archive_entry_set_gid(ae, e->gid);
	archive_entry_set_mtime(ae, mtime, 0);
	int r = 0;
	if (e->type == S_IFREG && e->source) {
		r = copy_file(ctx, a, ae, e, tmp);
	} else {
		if (e->type == S_IFLNK)
			archive_entry_copy_symlink(ae, e->link);
		archive_entry_set_size(ae, e->type == S_IFREG ? (la_int64_t)e->len : 0);
		if (archive_write_header(a, ae) < ARCHIVE_WARN)
			r = ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", tmp,
			             archive_error_string(a));
		else if (e->type == S_IFREG && e->len > 0 &&
		         archive_write_data(a, e->data, e->len) != (la_ssize_t)e->len)
			r = ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", tmp,
			             archive_error_string(a));
	}
	archive_entry_free(ae);
	return r;
}

static int write_tar(struct ib_ctx *ctx, const struct lentries *l, time_t mtime, int fd,
                     const char *tmp)
{
	struct archive *a = ib_tar_writer_open(ctx, fd, tmp);
	if (!a)
		return -(int)ctx->err_code;
	int r = 0;
	for (size_t i = 0; i < l->n && r == 0; i++) {
		if (ib_interrupted)
			r = ib_error(ctx, IB_E_INTERRUPTED, "interrupted");
		else
			r = write_entry(ctx, a, &l->v[i], mtime, tmp);
	}
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", tmp, archive_error_string(a));
	archive_write_free(a);
	return r;
}

static int build_entries(struct ib_ctx *ctx, const struct ib_layer_opts *opts, struct lentries *l)
{
	int r = collect(ctx, opts, l);
	if (r == 0)
		r = lentries_sort_merge(ctx, l);
	if (r < 0)
		return r;
	struct lentries links = {0};
	if (!opts->no_units)
		r = layer_enable_units(ctx, opts, l, &links);
	for (size_t i = 0; i < links.n; i++)
		lentries_add(l, &links.v[i]);
	free(links.v);
	if (r == 0)
		r = lentries_sort_merge(ctx, l);
	if (r == 0)
		r = check_parents(ctx, l);
	/* An air-gapped Jenkins cannot fetch what its plugins need: the layer holds it all. */
	if (r == 0)
		r = layer_check_jenkins_plugins(ctx, l);
	return r;
}

int ib_layer_build(struct ib_ctx *ctx, const struct ib_layer_opts *opts, const char *out_tar)
{
	struct lentries l = {0};
	int r = build_entries(ctx, opts, &l);
	if (r < 0) {
		lentries_release(&l);
		return r;
	}

	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", out_tar, (int)getpid());
	ib_tmp_register(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", tmp);
	} else {
		r = write_tar(ctx, &l, opts->mtime, fd, tmp);
		if (r == 0 && fsync(fd) < 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'", tmp);
		if (close(fd) < 0 && r == 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'", tmp);
		if (r == 0 && rename(tmp, out_tar) < 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot rename '%s' to '%s'", tmp,
			                   out_tar);
		if (r < 0)
			unlink(tmp);
	}
	ib_tmp_unregister(tmp);
	lentries_release(&l);
	return r;
}
