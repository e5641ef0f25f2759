/* cmd_cache.c: `imgbuild cache ls|verify|prune`: looking after the download cache by hand. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "fetch/cas.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

#define PRUNE_AGE (24 * 3600) /* tmp/ leftovers younger than this may belong to a live build */

struct file {
	char *name;
	uint64_t size;
	time_t mtime;
};

struct files {
	struct file *v;
	size_t n;
};

static void files_release(struct files *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i].name);
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct file *)a)->name, ((const struct file *)b)->name);
}

/* The regular files of dir, sorted by name; a missing dir is empty. */
static int list_files(struct ib_ctx *ctx, const char *dir, struct files *ret)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read directory '%s'", dir);
	}
	size_t alloc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (ret->n == alloc)
			ret->v = xrealloc(ret->v,
			                  (alloc = alloc ? 2 * alloc : 64) * sizeof(*ret->v));
		ret->v[ret->n++] =
		        (struct file){xstrdup(de->d_name), (uint64_t)st.st_size, st.st_mtime};
	}
	closedir(d);
	if (ret->n > 1)
		qsort(ret->v, ret->n, sizeof(*ret->v), cmp_file);
	return 0;
}

static void human(uint64_t n, char out[32])
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, 32, "%llu B", (unsigned long long)n);
	else
		snprintf(out, 32, "%.1f %s", v, units[u]);
}

/* ---- ls ---- */

struct ref {
	char *kind, *name;
	char hex[IB_SHA256_HEX];
};

struct refs {
	struct ref *v;
	size_t n, alloc;
};

static int collect_ref(const char *kind, const char *name, const char *hex, void *data)
{
	struct refs *r = data;
	if (r->n == r->alloc)
		r->v = xrealloc(r->v, (r->alloc = r->alloc ? 2 * r->alloc : 16) * sizeof(*r->v));
	struct ref *e = &r->v[r->n++];
	e->kind = xstrdup(kind);
	e->name = xstrdup(name);
	memcpy(e->hex, hex, IB_SHA256_HEX);
	return 0;
}

static void refs_release(struct refs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].kind);
		free(r->v[i].name);
	}
	free(r->v);
}

static int entry_exists(const struct files *blobs, const char *hex)
{
	struct file key = {(char *)hex, 0, 0};
	return bsearch(&key, blobs->v, blobs->n, sizeof(*blobs->v), cmp_file) != NULL;
}

static int cache_ls(struct cli *cli, const struct ib_cas *cas)
{
	struct ib_ctx *ctx = &cli->ctx;
	_cleanup_free_ char *bdir = ib_path_join(cas->root, "blobs/sha256");
	_cleanup_free_ char *tdir = ib_path_join(cas->root, "tmp");
	struct files all = {0}, blobs = {0}, tmp = {0};
	struct refs refs = {0};
	int r = list_files(ctx, bdir, &all);
	if (r == 0)
		r = list_files(ctx, tdir, &tmp);
	if (r == 0)
		r = ib_cas_ref_foreach(ctx, cas, collect_ref, &refs);
	if (r < 0)
		goto out;
	/* Only real entries: temp names of writers in flight are not entries. */
	blobs.v = xcalloc(all.n ? all.n : 1, sizeof(*blobs.v));
	for (size_t i = 0; i < all.n; i++)
		if (ib_cas_hex_valid(all.v[i].name))
			blobs.v[blobs.n++] = all.v[i];
	uint64_t total = 0, partial = 0;
	size_t n_partial = 0;
	for (size_t i = 0; i < blobs.n; i++)
		total += blobs.v[i].size;
	for (size_t i = 0; i < tmp.n; i++)
		if (endswith(tmp.v[i].name, ".part")) {
			partial += tmp.v[i].size;
			n_partial++;
		}

	if (cli->json) {
		struct strbuf sb = STRBUF_INIT;
		struct json j;
		json_init(&j, &sb, 0);
		json_obj_begin(&j, NULL);
		json_str(&j, "root", cas->root);
		json_arr_begin(&j, "entries");
		for (size_t i = 0; i < blobs.n; i++) {
			_cleanup_free_ char *d = xasprintf("sha256:%s", blobs.v[i].name);
			json_obj_begin(&j, NULL);
			json_str(&j, "digest", d);
			json_int(&j, "size", (long long)blobs.v[i].size);
			json_arr_begin(&j, "refs");
			for (size_t k = 0; k < refs.n; k++)
				if (streq(refs.v[k].hex, blobs.v[i].name)) {
					json_obj_begin(&j, NULL);
					json_str(&j, "kind", refs.v[k].kind);
					json_str(&j, "name", refs.v[k].name);
					json_obj_end(&j);
				}
			json_arr_end(&j);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_arr_begin(&j, "refs");
		for (size_t k = 0; k < refs.n; k++) {
			_cleanup_free_ char *d = xasprintf("sha256:%s", refs.v[k].hex);
			json_obj_begin(&j, NULL);
			json_str(&j, "kind", refs.v[k].kind);
			json_str(&j, "name", refs.v[k].name);
			json_str(&j, "digest", d);
			json_bool(&j, "present", entry_exists(&blobs, refs.v[k].hex));
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_int(&j, "count", (long long)blobs.n);
		json_int(&j, "size", (long long)total);
		json_int(&j, "partial_count", (long long)n_partial);
		json_int(&j, "partial_size", (long long)partial);
		json_obj_end(&j);
		printf("%s\n", sb_str(&sb));
		sb_release(&sb);
		goto out;
	}

	if (blobs.n)
		printf("%-71s %10s  %s\n", "DIGEST", "SIZE", "REFS");
	for (size_t i = 0; i < blobs.n; i++) {
		char h[32];
		human(blobs.v[i].size, h);
		struct strbuf names = STRBUF_INIT;
		for (size_t k = 0; k < refs.n; k++)
			if (streq(refs.v[k].hex, blobs.v[i].name))
				sb_addf(&names, "%s%s %s", names.len ? ", " : "", refs.v[k].kind,
				        refs.v[k].name);
		printf("sha256:%s %10s  %s\n", blobs.v[i].name, h,
		       names.len ? sb_str(&names) : "-");
		sb_release(&names);
	}
	for (size_t k = 0; k < refs.n; k++)
		if (!entry_exists(&blobs, refs.v[k].hex))
			printf("ref %s %s -> sha256:%s (not in the cache)\n", refs.v[k].kind,
			       refs.v[k].name, refs.v[k].hex);
	char ht[32], hp[32];
	human(total, ht);
	human(partial, hp);
	printf("%zu entr%s, %s; %zu ref%s; %zu partial download%s (%s) in %s\n", blobs.n,
	       blobs.n == 1 ? "y" : "ies", ht, refs.n, refs.n == 1 ? "" : "s", n_partial,
	       n_partial == 1 ? "" : "s", hp, tdir);
out:
	free(blobs.v); /* the names belong to all */
	files_release(&all);
	files_release(&tmp);
	refs_release(&refs);
	return r;
}

/* ---- verify ---- */

static int cache_verify(struct cli *cli, const struct ib_cas *cas)
{
	struct ib_ctx *ctx = &cli->ctx;
	_cleanup_free_ char *bdir = ib_path_join(cas->root, "blobs/sha256");
	struct files blobs = {0};
	int r = list_files(ctx, bdir, &blobs);
	if (r < 0)
		return r;
	struct strv bad = {0};
	size_t checked = 0;
	uint64_t bytes = 0;
	for (size_t i = 0; i < blobs.n && !ib_interrupted; i++) {
		const struct file *f = &blobs.v[i];
		if (!ib_cas_hex_valid(f->name))
			continue;
		ib_progress(ctx, "verify", checked, blobs.n);
		_cleanup_free_ char *path = ib_path_join(bdir, f->name);
		char actual[IB_SHA256_HEX];
		struct ib_ctx c;
		ib_ctx_init(&c);
		checked++;
		bytes += f->size;
		if (ib_sha256_file_hex(&c, path, actual) == 0 && streq(actual, f->name))
			continue;
		/* Unreadable counts as corrupted too: a build could not use it either. */
		if (unlink(path) < 0 && errno != ENOENT) {
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot remove '%s'", path);
			break;
		}
		strv_push(&bad, f->name);
		if (!cli->json)
			printf("corrupted: sha256:%s (%s): removed\n", f->name,
			       c.err_code ? c.err : "its bytes hash to something else");
	}
	files_release(&blobs);
	if (r == 0 && ib_interrupted)
		r = ib_error(ctx, IB_E_INTERRUPTED, "interrupted");
	if (r == 0) {
		if (cli->json) {
			struct strbuf sb = STRBUF_INIT;
			struct json j;
			json_init(&j, &sb, 0);
			json_obj_begin(&j, NULL);
			json_int(&j, "verified", (long long)checked);
			json_int(&j, "size", (long long)bytes);
			json_arr_begin(&j, "corrupted");
			for (size_t i = 0; i < bad.n; i++) {
				_cleanup_free_ char *d = xasprintf("sha256:%s", bad.v[i]);
				json_str(&j, NULL, d);
			}
			json_arr_end(&j);
			json_obj_end(&j);
			printf("%s\n", sb_str(&sb));
			sb_release(&sb);
		} else if (cli->verbosity > 0) {
			char h[32];
			human(bytes, h);
			printf("verified %zu entr%s (%s): %zu corrupted\n", checked,
			       checked == 1 ? "y" : "ies", h, bad.n);
		}
		if (bad.n)
			r = ib_error(ctx, IB_E_VERIFY,
			             "%zu corrupted cache entr%s removed; a build fetches what it "
			             "needs again",
			             bad.n, bad.n == 1 ? "y was" : "ies were");
	}
	strv_release(&bad);
	return r;
}

/* ---- prune ---- */

struct prune {
	size_t removed, busy;
	uint64_t freed;
	int all;
	time_t cutoff;
};

static int remove_file(struct ib_ctx *ctx, struct prune *p, const char *path, uint64_t size)
{
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return 0;
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot remove '%s'", path);
	}
	p->removed++;
	p->freed += size;
	return 0;
}

/* "<64 hex>.<suffix>": the entry's digest in hex, or 0. */
static int entry_of(const char *name, const char *suffix, char hex[IB_SHA256_HEX])
{
	if (strlen(name) != 64 + strlen(suffix) || !endswith(name, suffix))
		return 0;
	memcpy(hex, name, 64);
	hex[64] = '\0';
	return ib_cas_hex_valid(hex);
}

/* tmp/: partial downloads and their locks only when no build holds the entry's lock;
 * everything else by age (or all of it with --all). */
static int prune_tmp(struct ib_ctx *ctx, const struct ib_cas *cas, struct prune *p)
{
	_cleanup_free_ char *dir = ib_path_join(cas->root, "tmp");
	struct files f = {0};
	int r = list_files(ctx, dir, &f);
	for (size_t i = 0; r == 0 && i < f.n; i++) {
		if (!p->all && f.v[i].mtime > p->cutoff)
			continue;
		_cleanup_free_ char *path = ib_path_join(dir, f.v[i].name);
		char hex[IB_SHA256_HEX];
		if (entry_of(f.v[i].name, ".part", hex) || entry_of(f.v[i].name, ".lock", hex)) {
			int fd = -1;
			r = ib_cas_trylock(ctx, cas, hex, &fd);
			if (r == 0) {
				p->busy++; /* a download is running: leave it be */
				continue;
			}
			if (r < 0)
				break;
			/* Unlinked while held: a waiter notices (ib_cas_trylock's inode check). */
			r = remove_file(ctx, p, path, f.v[i].size);
			/* Its lock goes too: held here, so nobody is using it. */
			if (r == 0 && endswith(f.v[i].name, ".part")) {
				_cleanup_free_ char *lock = xasprintf("%s/%s.lock", dir, hex);
				r = remove_file(ctx, p, lock, 0);
			}
			close(fd);
			continue;
		}
		r = remove_file(ctx, p, path, f.v[i].size);
	}
	files_release(&f);
	return r;
}

/* tmp/<tag>.tmp.<pid>.<n>/: the work directories of bootstraps (the .debs they keep, the
 * repository of an offline one), removed by their owner unless it was killed. Only those
 * whose process is gone, even with --all: a live one is in use. */
static int prune_dead_work_dirs(struct ib_ctx *ctx, const struct ib_cas *cas, struct prune *p)
{
	_cleanup_free_ char *dir = ib_path_join(cas->root, "tmp");
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0
		                       : ib_error_errno(ctx, IB_E_IO, errno,
		                                        "cannot read directory '%s'", dir);
	struct strv dead = {0};
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		const char *t = strstr(de->d_name, ".tmp.");
		char *end;
		if (!t || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		long pid = strtol(t + 5, &end, 10);
		if (pid <= 0 || *end != '.' || pid == getpid())
			continue;
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			strv_push_take(&dead, ib_path_join(dir, de->d_name));
	}
	closedir(d);
	int r = 0;
	for (size_t i = 0; r == 0 && i < dead.n; i++)
		if ((r = ib_rm_rf(ctx, dead.v[i])) == 0)
			p->removed++;
	strv_release(&dead);
	return r;
}

/* Stale temp files of writers that died, beside the entries and refs. */
static int prune_temps_in(struct ib_ctx *ctx, const char *dir, struct prune *p)
{
	struct files f = {0};
	int r = list_files(ctx, dir, &f);
	for (size_t i = 0; r == 0 && i < f.n; i++) {
		if (!strstr(f.v[i].name, ".tmp.") || f.v[i].mtime > p->cutoff)
			continue;
		_cleanup_free_ char *path = ib_path_join(dir, f.v[i].name);
		r = remove_file(ctx, p, path, f.v[i].size);
	}
	files_release(&f);
	return r;
}

/* Every file in dir (--all). */
static int prune_everything_in(struct ib_ctx *ctx, const char *dir, struct prune *p)
{
	struct files f = {0};
	int r = list_files(ctx, dir, &f);
	for (size_t i = 0; r == 0 && i < f.n; i++) {
		_cleanup_free_ char *path = ib_path_join(dir, f.v[i].name);
		r = remove_file(ctx, p, path, f.v[i].size);
	}
	files_release(&f);
	return r;
}

static int cache_prune(struct cli *cli, const struct ib_cas *cas, int all)
{
	struct ib_ctx *ctx = &cli->ctx;
	struct prune p = {0, 0, 0, all, time(NULL) - PRUNE_AGE};
	_cleanup_free_ char *bdir = ib_path_join(cas->root, "blobs/sha256");
	_cleanup_free_ char *rdir = ib_path_join(cas->root, "refs");
	int r = prune_tmp(ctx, cas, &p);
	if (r == 0)
		r = prune_dead_work_dirs(ctx, cas, &p);
	if (r == 0)
		r = all ? prune_everything_in(ctx, bdir, &p) : prune_temps_in(ctx, bdir, &p);
	DIR *d = r == 0 ? opendir(rdir) : NULL;
	if (d) {
		struct dirent *de;
		while (r == 0 && (de = readdir(d))) {
			struct stat st;
			if (de->d_name[0] == '.' ||
			    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISDIR(st.st_mode))
				continue;
			_cleanup_free_ char *kdir = ib_path_join(rdir, de->d_name);
			r = all ? prune_everything_in(ctx, kdir, &p)
			        : prune_temps_in(ctx, kdir, &p);
		}
		closedir(d);
	}
	if (r < 0)
		return r;
	char h[32];
	human(p.freed, h);
	if (cli->json) {
		struct strbuf sb = STRBUF_INIT;
		struct json j;
		json_init(&j, &sb, 0);
		json_obj_begin(&j, NULL);
		json_int(&j, "removed", (long long)p.removed);
		json_int(&j, "freed", (long long)p.freed);
		json_int(&j, "in_use", (long long)p.busy);
		json_obj_end(&j);
		printf("%s\n", sb_str(&sb));
		sb_release(&sb);
	} else if (cli->verbosity > 0) {
		printf("removed %zu file%s, freed %s", p.removed, p.removed == 1 ? "" : "s", h);
		if (p.busy)
			printf(" (%zu in use by a running download, kept)", p.busy);
		printf("\n");
	}
	return 0;
}

int cmd_cache(struct cli *cli, int argc, char **argv)
{
	static const char usage[] = "expected 'cache ls', 'cache verify' or 'cache prune [--all]'";
	if (argc < 2)
		return ib_error(&cli->ctx, IB_E_USAGE, "%s", usage);
	const char *sub = argv[1];
	if (argc > 2)
		return ib_error(&cli->ctx, IB_E_USAGE, "unexpected argument '%s' to 'cache %s'",
		                argv[2], sub);
	if (cli->all && !streq(sub, "prune"))
		return ib_error(&cli->ctx, IB_E_USAGE, "'--all' applies to 'cache prune' only");
	int all = cli->all;
	/* Not ib_cas_open: looking must not create the cache. */
	struct ib_cas cas = {.root = ib_cache_dir()};
	int r;
	if (streq(sub, "ls"))
		r = cache_ls(cli, &cas);
	else if (streq(sub, "verify"))
		r = cache_verify(cli, &cas);
	else if (streq(sub, "prune"))
		r = cache_prune(cli, &cas, all);
	else
		r = ib_error(&cli->ctx, IB_E_USAGE, "unknown sub-command '%s': %s", sub, usage);
	ib_cas_release(&cas);
	return r;
}
