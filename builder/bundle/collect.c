/* collect.c: what goes into a bundle: every cache entry an offline build of the roles
 * reads, the project's files, and optionally the built images. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "collect.h"
#include "pipeline/supply.h"
#include "rootfs/debs.h"
#include "rootfs/rootfs.h"
#include "util/fs.h"

struct srcs {
	struct ib_bundle_src *v;
	size_t n, alloc;
};

static void add(struct srcs *s, char *path, char *file)
{
	if (s->n == s->alloc)
		s->v = xrealloc(s->v, (s->alloc = s->alloc ? 2 * s->alloc : 256) * sizeof(*s->v));
	s->v[s->n++] = (struct ib_bundle_src){path, file};
}

static void add_cache(struct srcs *s, const struct ib_cas *cas, const char *rel)
{
	add(s, xasprintf("cache/%s", rel), ib_path_join(cas->root, rel));
}

/* The root filesystem's .debs, index and ref; bootstraps again (keeping them) when the
 * cached root filesystem predates kept packages. */
static int collect_rootfs(struct ib_ctx *ctx, const struct ib_bundle_collect_opts *o,
                          const struct ib_cas *cas, const struct ib_resolved *res, struct srcs *s)
{
	struct ib_rootfs_opts ro = {.project = o->project,
	                            .role = res,
	                            .cache_dir = cas->root,
	                            .epoch = o->epoch,
	                            .offline = o->fetch->offline,
	                            .keep_debs = 1};
	_cleanup_free_ char *tar = NULL;
	int reused = 0;
	int r = ib_rootfs_get(ctx, &ro, &tar, &reused);
	if (r < 0)
		return r;
	char key[65];
	ib_rootfs_key(&ro, key);
	struct ib_rootfs_debs d = {0};
	r = ib_rootfs_debs_get(ctx, cas, key, 1, &d);
	if (r < 0)
		return r;
	if (r == 0)
		return ib_error(ctx, IB_E_NETWORK,
		                "the packages of root filesystem %.12s are not in the cache (it "
		                "was made before imgbuild kept them): run 'bundle create' without "
		                "--offline where the mirror is reachable",
		                key);
	_cleanup_free_ char *ref = ib_cas_ref_relpath(IB_ROOTFS_DEBS_REF, key);
	add_cache(s, cas, ref);
	const char *fixed[] = {d.index, d.sources, d.packages};
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++) {
		_cleanup_free_ char *rel = xasprintf("blobs/sha256/%s", fixed[i]);
		add_cache(s, cas, rel);
	}
	for (size_t i = 0; i < d.debs.n; i++) {
		_cleanup_free_ char *rel = xasprintf("blobs/sha256/%s", d.debs.v[i]);
		add_cache(s, cas, rel);
	}
	ib_rootfs_debs_release(&d);
	return 0;
}

/* Artifacts and images: fetched as a build would, then resolved again offline through a
 * recording cache, which lists exactly the entries and refs an offline build reads. */
static int collect_supply(struct ib_ctx *ctx, const struct ib_bundle_collect_opts *o,
                          const struct ib_cas *cas, const struct ib_resolved *res, struct srcs *s)
{
	struct ib_supply sup = {0};
	int r = ib_supply_get(ctx, cas, o->fetch, res, NULL, &sup);
	ib_supply_release(&sup);
	if (r < 0)
		return r;
	struct ib_cas_record rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct ib_cas recording = *cas;
	recording.rec = &rec;
	struct ib_fetch_opts off = *o->fetch;
	off.offline = 1;
	r = ib_supply_get(ctx, &recording, &off, res, NULL, &sup);
	ib_supply_release(&sup);
	for (size_t i = 0; r == 0 && i < rec.paths.n; i++) {
		_cleanup_free_ char *p = ib_path_join(cas->root, rec.paths.v[i]);
		if (ib_exists(p))
			add_cache(s, cas, rec.paths.v[i]);
	}
	strv_release(&rec.paths);
	return r;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files never bundled even when they sit in the project: the signing key and the bundle
 * being written (a project's own directory is a natural place for both). */
struct skip {
	const char *dir; /* the output directory */
	struct stat files[2];
	size_t n_files;
};

static int skipped(const struct skip *k, const char *path, const struct stat *st)
{
	if (streq(path, k->dir))
		return 1;
	for (size_t i = 0; i < k->n_files; i++)
		if (k->files[i].st_dev == st->st_dev && k->files[i].st_ino == st->st_ino)
			return 1;
	return 0;
}

/* Regular files under dir (rel is its path in the project), less dot files and skip. */
static int walk(struct ib_ctx *ctx, const char *dir, const char *rel, const struct skip *skip,
                struct srcs *s)
{
	DIR *d = opendir(dir);
	if (!d)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read directory '%s'", dir);
	struct strv names = {0};
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			strv_push(&names, de->d_name);
	closedir(d);
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(*names.v), cmp_name);
	int r = 0;
	for (size_t i = 0; r == 0 && i < names.n; i++) {
		_cleanup_free_ char *path = ib_path_join(dir, names.v[i]);
		_cleanup_free_ char *sub =
		        *rel ? xasprintf("%s/%s", rel, names.v[i]) : xstrdup(names.v[i]);
		struct stat st;
		if (lstat(path, &st) < 0) {
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot stat '%s'", path);
		} else if (skipped(skip, path, &st)) {
			continue;
		} else if (S_ISDIR(st.st_mode)) {
			r = walk(ctx, path, sub, skip, s);
		} else if (S_ISREG(st.st_mode)) {
			add(s, xasprintf("project/%s", sub), xstrdup(path));
		} else {
			r = ib_error(ctx, IB_E_SPEC,
			             "'%s' is not a regular file or directory: a bundle holds only "
			             "those",
			             path);
		}
	}
	strv_release(&names);
	return r;
}

static int collect_images(struct ib_ctx *ctx, const struct ib_project *p, const char *role,
                          struct srcs *s)
{
	static const struct {
		unsigned fmt;
		const char *suffix;
	} outs[] = {{0, ".manifest.json"}, {IB_FMT_QCOW2, ".qcow2"}, {IB_FMT_RAW, ".raw"}};
	for (size_t i = 0; i < ARRAY_SIZE(outs); i++) {
		if (outs[i].fmt && !(p->formats & outs[i].fmt))
			continue;
		_cleanup_free_ char *name = xasprintf("%s%s", role, outs[i].suffix);
		_cleanup_free_ char *file = ib_path_join(p->output_dir, name);
		if (!ib_exists(file))
			return ib_error(ctx, IB_E_USAGE,
			                "--with-images: '%s' does not exist: build role '%s' first",
			                file, role);
		add(s, xasprintf("images/%s", name), TAKE_PTR(file));
	}
	return 0;
}

static int cmp_src(const void *a, const void *b)
{
	return strcmp(((const struct ib_bundle_src *)a)->path,
	              ((const struct ib_bundle_src *)b)->path);
}

int ib_bundle_collect(struct ib_ctx *ctx, const struct ib_bundle_collect_opts *o,
                      struct ib_bundle_src **ret, size_t *ret_n)
{
	struct srcs s = {0};
	struct ib_cas cas = {0};
	_cleanup_free_ char *cache = ib_cache_dir();
	int r = ib_cas_open(ctx, cache, &cas);
	for (size_t i = 0; r == 0 && i < o->roles->n; i++) {
		struct ib_resolved *res = NULL;
		r = ib_role_resolve(ctx, o->project, o->roles->v[i], &res);
		if (r == 0)
			r = collect_rootfs(ctx, o, &cas, res, &s);
		if (r == 0)
			r = collect_supply(ctx, o, &cas, res, &s);
		if (r == 0 && o->with_images)
			r = collect_images(ctx, o->project, o->roles->v[i], &s);
		if (r < 0)
			ib_error_prefix(ctx, "role '%s'", o->roles->v[i]);
		ib_resolved_free(res);
	}
	struct skip skip = {.dir = o->project->output_dir};
	const char *never[] = {o->key_file, o->output};
	for (size_t i = 0; i < ARRAY_SIZE(never); i++)
		if (never[i] && stat(never[i], &skip.files[skip.n_files]) == 0)
			skip.n_files++;
	if (r == 0)
		r = walk(ctx, o->project->root, "", &skip, &s);
	ib_cas_release(&cas);
	/* Roles share entries (one root filesystem, one image): keep each once. */
	if (s.n > 1)
		qsort(s.v, s.n, sizeof(*s.v), cmp_src);
	size_t k = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (k > 0 && streq(s.v[k - 1].path, s.v[i].path)) {
			free(s.v[i].path);
			free(s.v[i].file);
			continue;
		}
		s.v[k++] = s.v[i];
	}
	s.n = k;
	if (r < 0) {
		ib_bundle_srcs_free(s.v, s.n);
		return r;
	}
	*ret = s.v;
	*ret_n = s.n;
	return 0;
}

void ib_bundle_srcs_free(struct ib_bundle_src *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].file);
	}
	free(v);
}
