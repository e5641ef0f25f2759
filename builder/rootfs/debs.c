/* debs.c: keeping a bootstrap's .debs in the cache, and a flat repository made of them. */
#include "debs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/hash.h"
#include "util/strbuf.h"

#define INDEX_FORMAT "imgbuild-rootfs-packages 1"
#define INDEX_MAX    (4u << 20)
#define SOURCES_MAX  (64u << 10)

void ib_rootfs_debs_release(struct ib_rootfs_debs *d)
{
	strv_release(&d->debs);
	strv_release(&d->files);
}

/* Sorted names in dir ending in suffix. */
static int list_suffix(struct ib_ctx *ctx, const char *dir, const char *suffix, struct strv *ret)
{
	DIR *d = opendir(dir);
	if (!d)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read directory '%s'", dir);
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && endswith(de->d_name, suffix))
			strv_push(ret, de->d_name);
	closedir(d);
	strv_sort(ret);
	return 0;
}

/* A pool path from an index: relative, clean components, no odd bytes. */
static int filename_valid(const char *f)
{
	if (!*f || *f == '/' || strlen(f) > 512)
		return 0;
	for (const char *c = f; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return 0;
	for (const char *p = f; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/')
			p++;
	}
	return endswith(f, ".deb");
}

struct stanza {
	char *text; /* ends in "\n" */
	char *filename;
	size_t deb; /* index into the kept .debs */
};

static int cmp_stanza(const void *a, const void *b)
{
	return strcmp(((const struct stanza *)a)->filename, ((const struct stanza *)b)->filename);
}

/* Look at one stanza of an apt list: keep it when its SHA256 is one of ours not yet seen. */
static void take_stanza(struct strbuf *st, const struct strv *hexes, struct stanza *found,
                        size_t *n_found)
{
	const char *sha = strstr(sb_str(st), "\nSHA256: ");
	const char *fn = strstr(sb_str(st), "\nFilename: ");
	if (!sha || !fn)
		return;
	char hex[65];
	if (strlen(sha + 9) < 64)
		return;
	memcpy(hex, sha + 9, 64);
	hex[64] = '\0';
	for (size_t i = 0; i < hexes->n; i++) {
		if (!streq(hexes->v[i], hex) || found[i].text)
			continue;
		fn += 11;
		found[i].filename = xstrndup(fn, strcspn(fn, "\n"));
		found[i].text = xstrdup(sb_str(st));
		found[i].deb = i;
		(*n_found)++;
		return;
	}
}

static int scan_list(struct ib_ctx *ctx, const char *path, const struct strv *hexes,
                     struct stanza *found, size_t *n_found)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", path);
	struct strbuf st = STRBUF_INIT;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	sb_addc(&st, '\n'); /* so every field, the first too, follows a newline */
	while ((n = getline(&line, &cap, f)) > 0) {
		if (n == 1 && line[0] == '\n') {
			take_stanza(&st, hexes, found, n_found);
			sb_reset(&st);
			sb_addc(&st, '\n');
			continue;
		}
		sb_add(&st, line, (size_t)n);
	}
	take_stanza(&st, hexes, found, n_found);
	int r = ferror(f) ? ib_error(ctx, IB_E_IO, "cannot read '%s'", path) : 0;
	free(line);
	sb_release(&st);
	fclose(f);
	return r;
}

int ib_rootfs_debs_keep(struct ib_ctx *ctx, const struct ib_cas *cas, const char *key,
                        const char *work)
{
	_cleanup_free_ char *archives = ib_path_join(work, "archives");
	_cleanup_free_ char *lists = ib_path_join(work, "lists");
	_cleanup_free_ char *sources_path = ib_path_join(work, "sources.list");
	struct strv names = {0}, hexes = {0}, list_files = {0};
	struct stanza *found = NULL;
	struct strbuf index = STRBUF_INIT, packages = STRBUF_INIT;
	size_t n_found = 0;
	/* Before the first `goto out`, which must not jump over its initialisation. */
	_cleanup_free_ char *sources = NULL;
	int r = list_suffix(ctx, archives, ".deb", &names);
	if (r == 0 && names.n == 0)
		r = ib_error(ctx, IB_E_TOOL, "the bootstrap left no .deb in '%s'", archives);
	for (size_t i = 0; r == 0 && i < names.n; i++) {
		_cleanup_free_ char *p = ib_path_join(archives, names.v[i]);
		char hex[IB_SHA256_HEX];
		r = ib_sha256_file_hex(ctx, p, hex);
		if (r == 0)
			strv_push(&hexes, hex);
	}
	if (r == 0)
		r = list_suffix(ctx, lists, "_Packages", &list_files);
	if (r == 0 && list_files.n == 0)
		r = ib_error(ctx, IB_E_TOOL, "the bootstrap left no apt list in '%s'", lists);
	found = xcalloc(hexes.n ? hexes.n : 1, sizeof(*found));
	for (size_t i = 0; r == 0 && i < list_files.n && n_found < hexes.n; i++) {
		_cleanup_free_ char *p = ib_path_join(lists, list_files.v[i]);
		r = scan_list(ctx, p, &hexes, found, &n_found);
	}
	for (size_t i = 0; r == 0 && i < hexes.n; i++)
		if (!found[i].text || !filename_valid(found[i].filename))
			r = ib_error(
			        ctx, IB_E_TOOL,
			        "'%s' (sha256 %.12s) is not in the mirror's index as a pool file",
			        names.v[i], hexes.v[i]);
	if (r < 0)
		goto out;

	/* By pool path, so that the index does not depend on the order of apt's lists. */
	qsort(found, hexes.n, sizeof(*found), cmp_stanza);
	size_t sources_len = 0;
	r = ib_read_file(ctx, sources_path, SOURCES_MAX, &sources, &sources_len);
	char sources_hex[IB_SHA256_HEX], packages_hex[IB_SHA256_HEX], index_hex[IB_SHA256_HEX];
	if (r == 0)
		r = ib_cas_put(ctx, cas, sources, sources_len, sources_hex);
	for (size_t i = 0; r == 0 && i < hexes.n; i++) {
		sb_adds(&packages, found[i].text + 1); /* less the leading newline added above */
		if (i + 1 < hexes.n)
			sb_addc(&packages, '\n');
	}
	if (r == 0)
		r = ib_cas_put(ctx, cas, sb_str(&packages), packages.len, packages_hex);
	if (r == 0) {
		sb_addf(&index, "%s\nsources %s\npackages %s\n", INDEX_FORMAT, sources_hex,
		        packages_hex);
		for (size_t i = 0; i < hexes.n; i++)
			sb_addf(&index, "deb %s %s\n", hexes.v[found[i].deb], found[i].filename);
	}
	/* The .debs move into the cache; the work directory is on its filesystem. */
	for (size_t i = 0; r == 0 && i < names.n; i++) {
		_cleanup_free_ char *p = ib_path_join(archives, names.v[i]);
		_cleanup_free_ char *dst = ib_cas_path(cas, hexes.v[i]);
		if (ib_exists(dst))
			continue;
		r = ib_cas_commit_hashed(ctx, cas, p, hexes.v[i], hexes.v[i], names.v[i]);
	}
	if (r == 0)
		r = ib_cas_put(ctx, cas, sb_str(&index), index.len, index_hex);
	if (r == 0)
		r = ib_cas_ref_set(ctx, cas, IB_ROOTFS_DEBS_REF, key, index_hex);
out:
	for (size_t i = 0; found && i < hexes.n; i++) {
		free(found[i].text);
		free(found[i].filename);
	}
	free(found);
	strv_release(&names);
	strv_release(&hexes);
	strv_release(&list_files);
	sb_release(&index);
	sb_release(&packages);
	return r;
}

static int parse_index(char *text, struct ib_rootfs_debs *d)
{
	char *save = NULL;
	int line = 0;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
		if (line == 0) {
			if (!streq(l, INDEX_FORMAT))
				return -1;
		} else if (startswith(l, "sources ") && ib_cas_hex_valid(l + 8)) {
			memcpy(d->sources, l + 8, 65);
		} else if (startswith(l, "packages ") && ib_cas_hex_valid(l + 9)) {
			memcpy(d->packages, l + 9, 65);
		} else if (startswith(l, "deb ") && strlen(l) > 4 + 64 + 1 && l[4 + 64] == ' ') {
			l[4 + 64] = '\0';
			if (!ib_cas_hex_valid(l + 4) || !filename_valid(l + 4 + 65))
				return -1;
			strv_push(&d->debs, l + 4);
			strv_push(&d->files, l + 4 + 65);
		} else {
			return -1;
		}
	}
	return d->sources[0] && d->packages[0] && d->debs.n ? 0 : -1;
}

int ib_rootfs_debs_get(struct ib_ctx *ctx, const struct ib_cas *cas, const char *key, int verify,
                       struct ib_rootfs_debs *ret)
{
	struct ib_rootfs_debs d = {0};
	int r = ib_cas_ref_get(ctx, cas, IB_ROOTFS_DEBS_REF, key, d.index);
	if (r <= 0)
		return r;
	_cleanup_free_ char *path = NULL;
	r = ib_cas_lookup(ctx, cas, d.index, 1, &path);
	if (r <= 0)
		return r;
	_cleanup_free_ char *text = NULL;
	r = ib_read_file(ctx, path, INDEX_MAX, &text, NULL);
	if (r < 0)
		return r;
	if (parse_index(text, &d) < 0) {
		ib_rootfs_debs_release(&d);
		return ib_error(ctx, IB_E_IO, "cache entry '%s' is not a package index", path);
	}
	for (size_t i = 0; verify && i < d.debs.n + 2; i++) {
		const char *hex = i < d.debs.n    ? d.debs.v[i]
		                  : i == d.debs.n ? d.sources
		                                  : d.packages;
		r = ib_cas_lookup(ctx, cas, hex, 1, NULL);
		if (r <= 0) {
			ib_rootfs_debs_release(&d);
			return r;
		}
	}
	*ret = d;
	return 1;
}

/* Hard link (same filesystem) or copy src to dst. */
static int place(struct ib_ctx *ctx, const char *src, const char *dst)
{
	if (link(src, dst) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot link '%s' to '%s'", src, dst);
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	/* .debs of a root filesystem are at most a few hundred MiB each */
	int r = ib_read_file(ctx, src, (size_t)1 << 30, &data, &len);
	if (r == 0)
		r = ib_write_file_atomic(ctx, dst, data, len, 0644);
	return r;
}

int ib_rootfs_debs_repo(struct ib_ctx *ctx, const struct ib_cas *cas,
                        const struct ib_rootfs_debs *d, const char *suite, const char *repo)
{
	int r = ib_mkdir_p(ctx, repo, 0755);
	for (size_t i = 0; r == 0 && i < d->debs.n; i++) {
		_cleanup_free_ char *dst = ib_path_join(repo, d->files.v[i]);
		_cleanup_free_ char *dir = xstrdup(dst);
		*strrchr(dir, '/') = '\0';
		_cleanup_free_ char *src = ib_cas_path(cas, d->debs.v[i]);
		r = ib_mkdir_p(ctx, dir, 0755);
		if (r == 0)
			r = place(ctx, src, dst);
	}
	_cleanup_free_ char *pk_src = ib_cas_path(cas, d->packages);
	_cleanup_free_ char *pk_dst = ib_path_join(repo, "Packages");
	_cleanup_free_ char *so_src = ib_cas_path(cas, d->sources);
	_cleanup_free_ char *so_dst = ib_path_join(repo, "sources.list");
	if (r == 0)
		r = place(ctx, pk_src, pk_dst);
	if (r == 0)
		r = place(ctx, so_src, so_dst);
	if (r < 0)
		return r;
	/* A flat repository's Release: apt checks Packages against it, and mmdebstrap picks a
	 * variant's packages by suite (?archive) and the mirror's priorities. */
	char pk_hex[IB_SHA256_HEX];
	r = ib_sha256_file_hex(ctx, pk_dst, pk_hex);
	if (r < 0)
		return r;
	_cleanup_free_ char *release = xasprintf("Origin: imgbuild\nLabel: imgbuild offline\n"
	                                         "Suite: %s\nCodename: %s\nSHA256:\n %s %lld "
	                                         "Packages\n",
	                                         suite, suite, pk_hex, ib_file_size(pk_dst));
	_cleanup_free_ char *rel = ib_path_join(repo, "Release");
	return ib_write_file_atomic(ctx, rel, release, strlen(release), 0644);
}
