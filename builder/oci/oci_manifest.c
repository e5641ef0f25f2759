/* oci_manifest.c: reading image indexes and manifests; choosing the linux/amd64 image. */
#include "oci/oci_internal.h"
#include "util/strbuf.h"

static int is_index_type(const char *mt)
{
	return streq(mt, OCI_MT_INDEX) || streq(mt, DOCKER_MT_LIST);
}

static int is_manifest_type(const char *mt)
{
	return streq(mt, OCI_MT_MANIFEST) || streq(mt, DOCKER_MT_MANIFEST);
}

int oci_doc_kind(struct ib_ctx *ctx, const struct jsonr *doc, const char *what, enum oci_kind *ret)
{
	if (doc->type != JSONR_OBJECT)
		return ib_error(ctx, IB_E_NETWORK, "%s is %s, not a manifest", what,
		                jsonr_type_name(doc->type));
	const struct jsonr *sv = jsonr_get_type(doc, "schemaVersion", JSONR_NUMBER);
	if (sv && sv->is_int && sv->integer == 1)
		return ib_error(ctx, IB_E_NETWORK,
		                "%s is a docker schema 1 manifest, which is not "
		                "supported",
		                what);
	if (!sv || !sv->is_int || sv->integer != 2)
		return ib_error(ctx, IB_E_NETWORK, "%s: schemaVersion is not 2", what);
	const struct jsonr *mtv = jsonr_get(doc, "mediaType");
	if (mtv) {
		if (mtv->type != JSONR_STRING)
			return ib_error(ctx, IB_E_NETWORK, "%s: mediaType is %s, not a string",
			                what, jsonr_type_name(mtv->type));
		if (is_index_type(mtv->str)) {
			*ret = OCI_KIND_INDEX;
			return 0;
		}
		if (is_manifest_type(mtv->str)) {
			*ret = OCI_KIND_MANIFEST;
			return 0;
		}
		return ib_error(ctx, IB_E_NETWORK, "%s has the unsupported media type '%.100s'",
		                what, mtv->str);
	}
	/* OCI makes mediaType optional: tell by shape. */
	int has_manifests = jsonr_get_type(doc, "manifests", JSONR_ARRAY) != NULL;
	int has_layers = jsonr_get_type(doc, "config", JSONR_OBJECT) &&
	                 jsonr_get_type(doc, "layers", JSONR_ARRAY);
	if (has_manifests && !has_layers) {
		*ret = OCI_KIND_INDEX;
		return 0;
	}
	if (has_layers && !has_manifests) {
		*ret = OCI_KIND_MANIFEST;
		return 0;
	}
	return ib_error(ctx, IB_E_NETWORK, "%s is neither an image index nor an image manifest",
	                what);
}

const char *oci_manifest_media_type(const struct jsonr *m)
{
	const char *mt = jsonr_get_str(m, "mediaType");
	return mt ? mt : OCI_MT_MANIFEST;
}

/* A descriptor's digest and size, checked. */
static int read_desc(struct ib_ctx *ctx, const struct jsonr *d, const char *what, size_t i,
                     struct oci_desc *ret)
{
	if (d->type != JSONR_OBJECT)
		return ib_error(ctx, IB_E_NETWORK, "%s: entry %zu is %s, not a descriptor", what, i,
		                jsonr_type_name(d->type));
	const char *digest = jsonr_get_str(d, "digest");
	if (!digest)
		return ib_error(ctx, IB_E_NETWORK, "%s: entry %zu has no digest", what, i);
	if (!oci_digest_valid(digest))
		return ib_error(ctx, IB_E_NETWORK,
		                "%s: entry %zu has the digest '%.100s' (only "
		                "sha256 with 64 lowercase hex digits is supported)",
		                what, i, digest);
	const struct jsonr *size = jsonr_get_type(d, "size", JSONR_NUMBER);
	if (!size || !size->is_int || size->integer < 0)
		return ib_error(ctx, IB_E_NETWORK, "%s: entry %zu (%s) has no valid size", what, i,
		                digest);
	const char *mt = jsonr_get_str(d, "mediaType");
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->digest, sizeof(ret->digest), "%s", digest);
	ret->size = size->integer;
	snprintf(ret->media_type, sizeof(ret->media_type), "%s", mt ? mt : "");
	return 0;
}

int oci_index_select(struct ib_ctx *ctx, const struct jsonr *index, const char *what,
                     struct oci_desc *ret)
{
	const struct jsonr *ms = jsonr_get_type(index, "manifests", JSONR_ARRAY);
	if (!ms)
		return ib_error(ctx, IB_E_NETWORK, "%s has no 'manifests' array", what);
	struct strv seen = {0};
	for (size_t i = 0; i < ms->n; i++) {
		const struct jsonr *d = &ms->items[i];
		const struct jsonr *pl = jsonr_get_type(d, "platform", JSONR_OBJECT);
		const char *os = jsonr_get_str(pl, "os");
		const char *arch = jsonr_get_str(pl, "architecture");
		const char *variant = jsonr_get_str(pl, "variant");
		if (os && arch && streq(os, "linux") && streq(arch, "amd64") &&
		    (!variant || !*variant || streq(variant, "v1"))) {
			strv_release(&seen);
			int r = read_desc(ctx, d, what, i, ret);
			if (r < 0)
				return r;
			if (*ret->media_type && is_index_type(ret->media_type))
				return ib_error(ctx, IB_E_NETWORK,
				                "%s: the linux/amd64 entry %s is "
				                "itself an index, which is not supported",
				                what, ret->digest);
			if (*ret->media_type && !is_manifest_type(ret->media_type))
				return ib_error(ctx, IB_E_NETWORK,
				                "%s: the linux/amd64 entry %s has "
				                "the unsupported media type '%.100s'",
				                what, ret->digest, ret->media_type);
			if ((uint64_t)ret->size > OCI_MANIFEST_MAX)
				return ib_error(ctx, IB_E_NETWORK,
				                "%s: the linux/amd64 manifest %s "
				                "is larger than %zu bytes",
				                what, ret->digest, OCI_MANIFEST_MAX);
			return 0;
		}
		if (seen.n < 16) {
			_cleanup_free_ char *p =
			        xasprintf("%s/%s%s%s", os ? os : "?", arch ? arch : "?",
			                  variant && *variant ? "/" : "", variant ? variant : "");
			if (!strv_contains(&seen, p))
				strv_push(&seen, p);
		}
	}
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < seen.n; i++) {
		if (i)
			sb_adds(&sb, ", ");
		sb_adds(&sb, seen.v[i]);
	}
	int r = ib_error(ctx, IB_E_SPEC, "%s has no linux/amd64 image (it has %s)", what,
	                 seen.n ? sb_str(&sb) : "no platforms");
	sb_release(&sb);
	strv_release(&seen);
	return r;
}

int oci_manifest_parse(struct ib_ctx *ctx, const struct jsonr *m, const char *what,
                       struct ib_oci_image *img, uint64_t **ret_sizes)
{
	const struct jsonr *config = jsonr_get_type(m, "config", JSONR_OBJECT);
	const struct jsonr *layers = jsonr_get_type(m, "layers", JSONR_ARRAY);
	if (!config || !layers)
		return ib_error(ctx, IB_E_NETWORK, "%s has no config or no layers", what);
	if (layers->n > OCI_MAX_LAYERS)
		return ib_error(ctx, IB_E_NETWORK, "%s has %zu layers, more than %d", what,
		                layers->n, OCI_MAX_LAYERS);
	struct oci_desc d;
	_cleanup_free_ char *cwhat = xasprintf("%s: config", what);
	int r = read_desc(ctx, config, cwhat, 0, &d);
	if (r < 0)
		return r;
	char config_digest[72];
	snprintf(config_digest, sizeof(config_digest), "%s", d.digest);
	_cleanup_free_ uint64_t *sizes = xcalloc(layers->n + 1, sizeof(*sizes));
	sizes[0] = (uint64_t)d.size;
	char **v = xcalloc(layers->n + 1, sizeof(*v));
	_cleanup_free_ char *lwhat = xasprintf("%s: layers", what);
	for (size_t i = 0; i < layers->n; i++) {
		r = read_desc(ctx, &layers->items[i], lwhat, i, &d);
		if (r < 0) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return r;
		}
		v[i] = xstrdup(d.digest);
		sizes[i + 1] = (uint64_t)d.size;
	}
	memcpy(img->config_digest, config_digest, sizeof(config_digest));
	img->layers = v;
	img->n_layers = layers->n;
	if (ret_sizes)
		*ret_sizes = TAKE_PTR(sizes);
	return 0;
}
