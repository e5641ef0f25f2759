/* jplugins.c: the Jenkins plugins of a layer read from their zips, and checked to hold the
 * closure of their dependencies (jenkins.h). */
#include "layer/jenkins.h"

#include <archive.h>
#include <archive_entry.h>
#include <strings.h>

#include "util/strbuf.h"

/* One error names at most this many problems (the context's message has a size limit). */
#define MAX_SHOWN 8

int ib_jenkins_plugin_read(struct ib_ctx *ctx, const char *what, const char *path, const void *data,
                           size_t len, struct ib_jenkins_plugin *ret)
{
	memset(ret, 0, sizeof(*ret));
	struct archive *a = archive_read_new();
	if (!a)
		return ib_error(ctx, IB_E_LIB, "out of memory");
	archive_read_support_format_zip(a);
	int ar = path ? archive_read_open_filename(a, path, 1 << 16)
	              : archive_read_open_memory(a, data, len);
	int r = 0, found = 0;
	if (ar != ARCHIVE_OK) {
		r = ib_error(ctx, IB_E_SPEC,
		             "%s is not a readable zip (a Jenkins plugin is one): %s", what,
		             archive_error_string(a));
		goto out;
	}
	struct archive_entry *e;
	while ((ar = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (ar < ARCHIVE_WARN) {
			r = ib_error(ctx, IB_E_SPEC,
			             "%s is not a readable zip (a Jenkins plugin is one): %s", what,
			             archive_error_string(a));
			goto out;
		}
		const char *name = archive_entry_pathname(e);
		if (!name || strcasecmp(name, "META-INF/MANIFEST.MF") != 0)
			continue;
		found = 1;
		break;
	}
	if (!found) {
		r = ib_error(ctx, IB_E_SPEC,
		             "%s has no META-INF/MANIFEST.MF (not a Jenkins plugin)", what);
		goto out;
	}
	struct strbuf text = STRBUF_INIT;
	char buf[16384];
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n < 0) {
			r = ib_error(ctx, IB_E_SPEC, "%s: cannot read META-INF/MANIFEST.MF: %s",
			             what, archive_error_string(a));
			break;
		}
		if (text.len + (size_t)n > IB_JENKINS_MAX_MANIFEST) {
			r = ib_error(ctx, IB_E_SPEC,
			             "%s: META-INF/MANIFEST.MF is larger than %u bytes", what,
			             IB_JENKINS_MAX_MANIFEST);
			break;
		}
		sb_add(&text, buf, (size_t)n);
	}
	if (r == 0)
		r = ib_jenkins_manifest_parse(ctx, what, sb_str(&text), text.len, ret);
	sb_release(&text);
out:
	archive_read_free(a);
	return r;
}

/* ---- the closure ---- */

struct jp {
	const struct lentry *e;
	char *what; /* "'/path' (from ...)", for messages */
	struct ib_jenkins_plugin p;
};

static int is_plugin(const struct lentry *e)
{
	return e->type == S_IFREG && (endswith(e->path, ".jpi") || endswith(e->path, ".hpi"));
}

static size_t dir_len(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? (size_t)(s - path) : 0;
}

static char *describe(const struct lentry *e)
{
	if (e->spec && e->spec->pos.file)
		return xasprintf("'/%s' (%s:%d:%d)", e->path, e->spec->pos.file, e->spec->pos.line,
		                 e->spec->pos.col);
	if (e->why)
		return xasprintf("'/%s' (%s)", e->path, e->why);
	return xasprintf("'/%s'", e->path);
}

static const struct jp *find(const struct jp *v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (streq(v[i].p.id, id))
			return &v[i];
	return NULL;
}

static void problem(struct strbuf *sb, size_t *count, const char *fmt, ...) _printf_(3, 4);
static void problem(struct strbuf *sb, size_t *count, const char *fmt, ...)
{
	if ((*count)++ >= MAX_SHOWN)
		return;
	if (sb->len)
		sb_adds(sb, "; ");
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	sb_adds(sb, s ? s : "?");
}

/* The plugins of one directory, read: names, duplicates, dependencies. */
static int check_dir(struct ib_ctx *ctx, const char *dir, struct jp *v, size_t n)
{
	struct strbuf sb = STRBUF_INIT;
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		const char *base = v[i].e->path + (*dir ? strlen(dir) + 1 : 0);
		size_t bl = strlen(base) - 4;
		if (strlen(v[i].p.id) != bl || strncmp(base, v[i].p.id, bl) != 0)
			problem(&sb, &count,
			        "%s is the plugin '%s' (its Short-Name): Jenkins' plugin manager "
			        "expects it as %s.jpi",
			        v[i].what, v[i].p.id, v[i].p.id);
		for (size_t j = 0; j < i; j++)
			if (streq(v[j].p.id, v[i].p.id))
				problem(&sb, &count, "%s and %s are both the plugin '%s'",
				        v[j].what, v[i].what, v[i].p.id);
	}
	for (size_t i = 0; i < n; i++) {
		const struct ib_jenkins_plugin *p = &v[i].p;
		for (size_t k = 0; k < p->n_deps; k++) {
			const struct ib_jenkins_dep *d = &p->deps[k];
			const struct jp *have = find(v, n, d->id);
			if (!have && !d->optional)
				problem(&sb, &count,
				        "'%s' %s %s needs '%s' %s or later, which is not there",
				        p->id, p->version, v[i].what, d->id, d->version);
			else if (have && ib_jenkins_version_cmp(have->p.version, d->version) < 0)
				problem(&sb, &count,
				        "'%s' %s %s needs '%s' %s or later%s, but %s is %s", p->id,
				        p->version, v[i].what, d->id, d->version,
				        d->optional ? " (when present)" : "", have->what,
				        have->p.version);
		}
	}
	int r = 0;
	if (count > MAX_SHOWN)
		sb_addf(&sb, "; and %zu more", count - MAX_SHOWN);
	if (count)
		r = ib_error(ctx, IB_E_SPEC,
		             "the Jenkins plugins in '/%s' would not all load (%zu %s): %s", dir,
		             count, count == 1 ? "problem" : "problems", sb_str(&sb));
	sb_release(&sb);
	if (r == 0) {
		const struct jp *newest = NULL;
		for (size_t i = 0; i < n; i++)
			if (v[i].p.jenkins_version &&
			    (!newest || ib_jenkins_version_cmp(v[i].p.jenkins_version,
			                                       newest->p.jenkins_version) > 0))
				newest = &v[i];
		ib_log(ctx, IB_LOG_INFO,
		       "Jenkins plugins in '/%s': %zu, every dependency there; they need Jenkins "
		       "%s or later ('%s')",
		       dir, n, newest ? newest->p.jenkins_version : "(any)",
		       newest ? newest->p.id : "none says");
	}
	return r;
}

static int check_group(struct ib_ctx *ctx, const struct lentries *l, size_t from, size_t to,
                       const char *dir)
{
	size_t n = 0;
	for (size_t i = from; i < to; i++)
		if (is_plugin(&l->v[i]) && dir_len(l->v[i].path) == strlen(dir))
			n++;
	struct jp *v = xcalloc(n ? n : 1, sizeof(*v));
	int r = 0;
	size_t got = 0;
	for (size_t i = from; i < to && r == 0; i++) {
		const struct lentry *e = &l->v[i];
		if (!is_plugin(e) || dir_len(e->path) != strlen(dir))
			continue;
		struct jp *j = &v[got++];
		j->e = e;
		j->what = describe(e);
		r = ib_jenkins_plugin_read(ctx, j->what, e->source, e->data ? e->data : "", e->len,
		                           &j->p);
	}
	if (r == 0)
		r = check_dir(ctx, dir, v, n);
	for (size_t i = 0; i < got; i++) {
		free(v[i].what);
		ib_jenkins_plugin_release(&v[i].p);
	}
	free(v);
	return r;
}

int layer_check_jenkins_plugins(struct ib_ctx *ctx, const struct lentries *l)
{
	/* Sorted by path, a directory's files are together, though its subdirectories'
	 * entries may sit between them: each directory is collected over its whole span. */
	struct strv done = {0};
	int r = 0;
	for (size_t i = 0; i < l->n && r == 0; i++) {
		if (!is_plugin(&l->v[i]))
			continue;
		_cleanup_free_ char *dir = xstrndup(l->v[i].path, dir_len(l->v[i].path));
		if (strv_contains(&done, dir))
			continue;
		size_t end = i;
		size_t dl = strlen(dir);
		while (end < l->n && strncmp(l->v[end].path, dir, dl) == 0 &&
		       (dl == 0 || l->v[end].path[dl] == '/'))
			end++;
		r = check_group(ctx, l, i, end, dir);
		strv_push(&done, dir);
	}
	strv_release(&done);
	return r;
}
