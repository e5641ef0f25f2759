/* digest.c: one SHA-256 over every input of a role's image, for reuse and manifests. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>

#include "build.h"
#include "util/hash.h"

/* Bump when the pipeline makes different bytes from the same inputs. */
#define PIPELINE_RECIPE "imgbuild-pipeline-3"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Hash a file or directory tree: names, types, modes, symlink targets and contents. */
static int hash_path(struct ib_ctx *ctx, struct ib_sha256 *h, const char *path, int depth)
{
	struct stat st;
	char tmp[64];
	if (depth > 64)
		return ib_error(ctx, IB_E_SPEC, "'%s' is nested too deeply", path);
	if (lstat(path, &st) < 0)
		return ib_error_errno(ctx, IB_E_SPEC, errno, "cannot read '%s'", path);
	snprintf(tmp, sizeof(tmp), "%o", (unsigned)st.st_mode);
	ib_sha256_field(h, tmp);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot read link '%s'", path);
		target[n] = '\0';
		ib_sha256_field(h, target);
		return 0;
	}
	if (S_ISREG(st.st_mode)) {
		char hex[IB_SHA256_HEX];
		int r = ib_sha256_file_hex(ctx, path, hex);
		if (r < 0)
			return r;
		ib_sha256_field(h, hex);
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(path);
	if (!d)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", path);
	struct strv names = {0};
	struct dirent *de;
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			strv_push(&names, de->d_name);
	closedir(d);
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(char *), cmp_str);
	int r = 0;
	for (size_t i = 0; i < names.n && r == 0; i++) {
		_cleanup_free_ char *child = xasprintf("%s/%s", path, names.v[i]);
		ib_sha256_field(h, names.v[i]);
		r = hash_path(ctx, h, child, depth + 1);
	}
	strv_release(&names);
	return r;
}

int ib_role_digest(struct ib_ctx *ctx, const struct ib_project *p, const struct ib_resolved *res,
                   const char *rootfs_key, time_t epoch, char out[65])
{
	struct ib_sha256 h;
	char tmp[64];
	int r = 0;

	ib_sha256_init(&h);
	ib_sha256_field(&h, PIPELINE_RECIPE);
	ib_sha256_field(&h, IMGBUILD_VERSION);
	ib_sha256_field(&h, rootfs_key);
	ib_sha256_field(&h, res->role->name);
	snprintf(tmp, sizeof(tmp), "%lld %llu %u", (long long)epoch,
	         (unsigned long long)res->disk_size, p->formats);
	ib_sha256_field(&h, tmp);
	for (size_t i = 0; i < res->n_chain; i++)
		ib_sha256_field(&h, res->chain[i]->name);
	for (size_t i = 0; i < res->n_files && r == 0; i++) {
		const struct ib_file_spec *f = res->files[i];
		snprintf(tmp, sizeof(tmp), "%o %d %u %u %d", (unsigned)f->mode, f->has_mode,
		         (unsigned)f->uid, (unsigned)f->gid, f->template);
		ib_sha256_field(&h, f->dest);
		ib_sha256_field(&h, tmp);
		r = hash_path(ctx, &h, f->source, 0);
	}
	ib_sha256_field(&h, "--vars");
	for (size_t i = 0; i < res->n_vars; i++) {
		ib_sha256_field(&h, res->vars[i].name);
		ib_sha256_field(&h, res->vars[i].value);
	}
	ib_sha256_field(&h, "--units");
	for (size_t i = 0; i < res->units.n; i++)
		ib_sha256_field(&h, res->units.v[i]);
	ib_sha256_field(&h, "--firstboot");
	for (size_t i = 0; i < res->firstboot.n && r == 0; i++) {
		const char *base = strrchr(res->firstboot.v[i], '/');
		ib_sha256_field(&h, base ? base + 1 : res->firstboot.v[i]);
		r = hash_path(ctx, &h, res->firstboot.v[i], 0);
	}
	/* Pinned inputs: the spec's pins stand for the bytes (they are verified on fetch). */
	ib_sha256_field(&h, "--artifacts");
	for (size_t i = 0; i < res->n_artifacts; i++) {
		const struct ib_artifact *a = res->artifacts[i];
		snprintf(tmp, sizeof(tmp), "%o", (unsigned)a->mode);
		ib_sha256_field(&h, a->name);
		ib_sha256_field(&h, a->url);
		ib_sha256_field(&h, a->sha256);
		ib_sha256_field(&h, a->checksum_url);
		ib_sha256_field(&h, a->dest);
		ib_sha256_field(&h, tmp);
		for (size_t k = 0; k < a->n_extract; k++) {
			snprintf(tmp, sizeof(tmp), "%o %d", (unsigned)a->extract[k].mode,
			         a->extract[k].has_mode);
			ib_sha256_field(&h, a->extract[k].member);
			ib_sha256_field(&h, a->extract[k].dest);
			ib_sha256_field(&h, tmp);
		}
	}
	ib_sha256_field(&h, "--images");
	for (size_t i = 0; i < res->images.n; i++)
		ib_sha256_field(&h, res->images.v[i]);
	ib_sha256_field(&h, "--cloud-init");
	for (size_t i = 0; i < res->n_cloud_init; i++)
		ib_sha256_field(&h, res->cloud_init[i]->yaml);
	/* A base image is pinned by its sha256 like an artifact; scripts by their bytes. */
	if (res->base_image) {
		const struct ib_base_image *b = res->base_image;
		ib_sha256_field(&h, "--base-image");
		ib_sha256_field(&h, b->url);
		ib_sha256_field(&h, b->sha256);
		ib_sha256_field(&h, b->format == IB_FMT_QCOW2 ? "qcow2" : "raw");
	}
	if (res->scripts.n)
		ib_sha256_field(&h, "--scripts");
	for (size_t i = 0; i < res->scripts.n && r == 0; i++) {
		const char *base = strrchr(res->scripts.v[i], '/');
		ib_sha256_field(&h, base ? base + 1 : res->scripts.v[i]);
		r = hash_path(ctx, &h, res->scripts.v[i], 0);
	}
	if (r < 0) {
		ib_sha256_release(&h);
		return r;
	}
	ib_sha256_final_hex(&h, out);
	return 0;
}

void ib_checks_digest(const struct ib_resolved *r, char out[65])
{
	struct ib_sha256 h;
	char tmp[64];
	ib_sha256_init(&h);
	ib_sha256_field(&h, "imgbuild-checks-1");
	for (size_t c = 0; c < r->n_checks; c++) {
		const struct ib_checks *k = r->checks[c];
		ib_sha256_field(&h, "--files");
		for (size_t i = 0; i < k->n_files; i++) {
			const struct ib_check_file *f = &k->files[i];
			snprintf(tmp, sizeof(tmp), "%o %d %u %u %d", (unsigned)f->mode, f->has_mode,
			         (unsigned)f->uid, (unsigned)f->gid, f->has_owner);
			ib_sha256_field(&h, f->path);
			ib_sha256_field(&h, tmp);
			ib_sha256_field(&h, f->sha256 ? f->sha256 : "-");
		}
		ib_sha256_field(&h, "--units");
		for (size_t i = 0; i < k->units.n; i++)
			ib_sha256_field(&h, k->units.v[i]);
		ib_sha256_field(&h, "--sysctl");
		for (size_t i = 0; i < k->n_sysctls; i++) {
			ib_sha256_field(&h, k->sysctls[i].name);
			ib_sha256_field(&h, k->sysctls[i].value);
		}
		ib_sha256_field(&h, "--packages");
		for (size_t i = 0; i < k->n_packages; i++) {
			ib_sha256_field(&h, k->packages[i].name);
			ib_sha256_field(&h, k->packages[i].value);
		}
	}
	ib_sha256_final_hex(&h, out);
}
