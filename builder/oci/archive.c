/* archive.c: a pulled image as one deterministic tar: OCI image layout plus docker's manifest.json.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "oci/oci_internal.h"
#include "util/tarw.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/tmpreg.h"

/* Every entry carries this time, owner 0:0 and fixed modes: the same image, the same bytes. */
#define ARCHIVE_MTIME 0
#define COPY_CHUNK    (256 * 1024)

struct entry {
	char *path;
	int is_dir;
	const char *data; /* in memory, or NULL for a cache blob */
	size_t len;
	char hex[IB_SHA256_HEX]; /* cache blob */
};

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static int write_header(struct ib_ctx *ctx, struct archive *a, const struct entry *e, int64_t size,
                        const char *tmp)
{
	struct archive_entry *ae = archive_entry_new();
	if (!ae)
		return ib_error(ctx, IB_E_LIB, "out of memory");
	archive_entry_copy_pathname(ae, e->path);
	archive_entry_set_filetype(ae, e->is_dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(ae, e->is_dir ? 0755 : 0644);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	archive_entry_set_mtime(ae, ARCHIVE_MTIME, 0);
	archive_entry_set_size(ae, e->is_dir ? 0 : size);
	int r = 0;
	if (archive_write_header(a, ae) < ARCHIVE_WARN)
		r = ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", tmp, archive_error_string(a));
	archive_entry_free(ae);
	return r;
}

static int write_data(struct ib_ctx *ctx, struct archive *a, const void *p, size_t n,
                      const char *tmp)
{
	if (n > 0 && archive_write_data(a, p, n) != (la_ssize_t)n)
		return ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", tmp,
		                archive_error_string(a));
	return 0;
}

/* Stream a cache entry into the tar, hashing it on the way: a corrupted entry fails the
 * archive (and is dropped from the cache, so that the next pull fetches it again). */
static int write_blob(struct ib_ctx *ctx, const struct ib_cas *cas, struct archive *a,
                      const struct entry *e, const char *refstr, const char *tmp)
{
	_cleanup_free_ char *path = ib_cas_path(cas, e->hex);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return ib_error(ctx, IB_E_IO,
			                "blob sha256:%s of %s is not in the cache "
			                "(pull the image first)",
			                e->hex, refstr);
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot stat '%s'", path);
	int r = write_header(ctx, a, e, (int64_t)st.st_size, tmp);
	if (r < 0)
		return r;
	_cleanup_free_ char *buf = xmalloc(COPY_CHUNK);
	struct ib_sha256 h;
	ib_sha256_init(&h);
	off_t left = st.st_size;
	while (left > 0 && r == 0) {
		if (ib_interrupted) {
			r = ib_error(ctx, IB_E_INTERRUPTED, "interrupted");
			break;
		}
		ssize_t n = read(fd, buf, left < COPY_CHUNK ? (size_t)left : COPY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", path);
		else if (n == 0)
			r = ib_error(ctx, IB_E_IO, "'%s' shrank while being read", path);
		else {
			ib_sha256_update(&h, buf, (size_t)n);
			r = write_data(ctx, a, buf, (size_t)n, tmp);
			left -= n;
		}
	}
	char actual[IB_SHA256_HEX];
	ib_sha256_final_hex(&h, actual);
	ib_sha256_release(&h);
	if (r == 0 && !streq(actual, e->hex)) {
		unlink(path);
		r = ib_error(ctx, IB_E_VERIFY,
		             "cache entry sha256:%s of %s is corrupted (its bytes "
		             "hash to sha256:%s): removed; pull the image again",
		             e->hex, refstr, actual);
	}
	return r;
}

static char *index_json(const struct ib_oci_ref *ref, const char *media_type, const char *digest,
                        size_t size)
{
	_cleanup_free_ char *name = ib_oci_ref_name(ref);
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	json_init(&j, &sb, 0);
	json_obj_begin(&j, NULL);
	json_int(&j, "schemaVersion", 2);
	json_str(&j, "mediaType", OCI_MT_INDEX);
	json_arr_begin(&j, "manifests");
	/* One entry per name the image goes by: name:tag and name@digest, each imported by
	 * containerd as an image of that name (the CRI finds a pinned reference by the
	 * latter). */
	for (int pass = 0; pass < 2; pass++) {
		if ((pass == 0 && !ref->tag) || (pass == 1 && !ref->digest))
			continue;
		_cleanup_free_ char *full = pass == 0 ? xasprintf("%s:%s", name, ref->tag)
		                                      : xasprintf("%s@%s", name, ref->digest);
		json_obj_begin(&j, NULL);
		json_str(&j, "mediaType", media_type);
		json_str(&j, "digest", digest);
		json_int(&j, "size", (long long)size);
		json_obj_begin(&j, "annotations");
		json_str(&j, "io.containerd.image.name", full);
		if (pass == 0)
			json_str(&j, "org.opencontainers.image.ref.name", ref->tag);
		json_obj_end(&j);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	sb_addc(&sb, '\n');
	return sb_take(&sb);
}

static char *docker_manifest_json(const struct ib_oci_ref *ref, const struct ib_oci_image *img)
{
	_cleanup_free_ char *name = ib_oci_ref_name(ref);
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	json_init(&j, &sb, 0);
	json_arr_begin(&j, NULL);
	json_obj_begin(&j, NULL);
	_cleanup_free_ char *cfg = xasprintf("blobs/sha256/%s", img->config_digest + 7);
	json_str(&j, "Config", cfg);
	json_arr_begin(&j, "RepoTags");
	if (ref->tag) {
		_cleanup_free_ char *t = xasprintf("%s:%s", name, ref->tag);
		json_str(&j, NULL, t);
	}
	json_arr_end(&j);
	json_arr_begin(&j, "Layers");
	for (size_t i = 0; i < img->n_layers; i++) {
		_cleanup_free_ char *l = xasprintf("blobs/sha256/%s", img->layers[i] + 7);
		json_str(&j, NULL, l);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_arr_end(&j);
	sb_addc(&sb, '\n');
	return sb_take(&sb);
}

static void add_blob(struct entry *v, size_t *n, const char *digest)
{
	for (size_t i = 0; i < *n; i++)
		if (!v[i].is_dir && !v[i].data && streq(v[i].hex, digest + 7))
			return;
	struct entry *e = &v[(*n)++];
	memset(e, 0, sizeof(*e));
	e->path = xasprintf("blobs/sha256/%s", digest + 7);
	memcpy(e->hex, digest + 7, IB_SHA256_HEX);
}

/* The image must be self-consistent: its manifest names its config and layers. Digests
 * become paths in the tar, so only well-formed ones pass. */
static int check_image(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_oci_image *img,
                       const char *refstr, char **ret_media_type, size_t *ret_size)
{
	if (!oci_digest_valid(img->manifest_digest) || !oci_digest_valid(img->config_digest))
		return ib_error(ctx, IB_E_SPEC, "image %s: bad manifest or config digest", refstr);
	for (size_t i = 0; i < img->n_layers; i++)
		if (!oci_digest_valid(img->layers[i]))
			return ib_error(ctx, IB_E_SPEC, "image %s: bad digest for layer %zu",
			                refstr, i + 1);
	_cleanup_free_ char *path = NULL, *body = NULL;
	size_t len = 0;
	int r = ib_cas_lookup(ctx, cas, img->manifest_digest + 7, 1, &path);
	if (r == 0)
		return ib_error(ctx, IB_E_IO,
		                "manifest %s of %s is not in the cache (pull the "
		                "image first)",
		                img->manifest_digest, refstr);
	if (r < 0)
		return r;
	r = ib_read_file(ctx, path, OCI_MANIFEST_MAX, &body, &len);
	if (r < 0)
		return r;
	_cleanup_free_ char *what = xasprintf("manifest %s of %s", img->manifest_digest, refstr);
	_cleanup_jsonr_ struct jsonr *doc = NULL;
	struct ib_oci_image m = {0};
	r = jsonr_parse(ctx, IB_E_VERIFY, what, body, len, &doc);
	if (r == 0)
		r = oci_manifest_parse(ctx, doc, what, &m, NULL);
	if (r < 0)
		return r;
	int same = streq(m.config_digest, img->config_digest) && m.n_layers == img->n_layers;
	for (size_t i = 0; same && i < m.n_layers; i++)
		same = streq(m.layers[i], img->layers[i]);
	ib_oci_image_release(&m);
	if (!same)
		return ib_error(ctx, IB_E_VERIFY,
		                "image %s: the config and layers given do not "
		                "match %s",
		                refstr, what);
	*ret_media_type = xstrdup(oci_manifest_media_type(doc));
	*ret_size = len;
	return 0;
}

static int write_tar(struct ib_ctx *ctx, const struct ib_cas *cas, struct entry *v, size_t n,
                     const char *refstr, int fd, const char *tmp)
{
	struct archive *a = ib_tar_writer_open(ctx, fd, tmp);
	if (!a)
		return -(int)ctx->err_code;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (v[i].is_dir || v[i].data) {
			r = write_header(ctx, a, &v[i], (int64_t)v[i].len, tmp);
			if (r == 0 && v[i].data)
				r = write_data(ctx, a, v[i].data, v[i].len, tmp);
		} else {
			r = write_blob(ctx, cas, a, &v[i], refstr, tmp);
		}
	}
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", tmp, archive_error_string(a));
	archive_write_free(a);
	return r;
}

int ib_oci_archive_write(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_oci_ref *ref,
                         const struct ib_oci_image *img, const char *out_tar)
{
	_cleanup_free_ char *refstr = ib_oci_ref_string(ref);
	_cleanup_free_ char *media_type = NULL;
	size_t msize = 0;
	int r = check_image(ctx, cas, img, refstr, &media_type, &msize);
	if (r < 0)
		return r;
	_cleanup_free_ char *index = index_json(ref, media_type, img->manifest_digest, msize);
	_cleanup_free_ char *dmanifest = docker_manifest_json(ref, img);
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}\n";

	size_t n = 0;
	struct entry *v = xcalloc(img->n_layers + 8, sizeof(*v));
	v[n++] = (struct entry){.path = xstrdup("blobs/"), .is_dir = 1};
	v[n++] = (struct entry){.path = xstrdup("blobs/sha256/"), .is_dir = 1};
	v[n++] = (struct entry){.path = xstrdup("index.json"), .data = index, .len = strlen(index)};
	v[n++] = (struct entry){
	        .path = xstrdup("manifest.json"), .data = dmanifest, .len = strlen(dmanifest)};
	v[n++] = (struct entry){
	        .path = xstrdup("oci-layout"), .data = layout, .len = sizeof(layout) - 1};
	add_blob(v, &n, img->manifest_digest);
	add_blob(v, &n, img->config_digest);
	for (size_t i = 0; i < img->n_layers; i++)
		add_blob(v, &n, img->layers[i]);
	qsort(v, n, sizeof(*v), cmp_entry);

	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", out_tar, (int)getpid());
	ib_tmp_register(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", tmp);
	if (r == 0)
		r = write_tar(ctx, cas, v, n, refstr, fd, tmp);
	if (r == 0 && fsync(fd) < 0)
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'", tmp);
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'", tmp);
	if (r == 0 && rename(tmp, out_tar) < 0)
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot rename '%s' to '%s'", tmp, out_tar);
	if (r < 0)
		unlink(tmp);
	ib_tmp_unregister(tmp);
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
	return r;
}
