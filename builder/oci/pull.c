/* pull.c: ib_oci_pull: reference -> (index ->) linux/amd64 manifest -> blobs, all in the cache. */
#include "oci/oci_internal.h"
#include "util/fs.h"
#include "util/hash.h"

#define TAG_REF_KIND "oci-tag"

void ib_oci_image_release(struct ib_oci_image *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < img->n_layers; i++)
		free(img->layers[i]);
	free(img->layers);
	memset(img, 0, sizeof(*img));
}

/* The cached document for digest ("sha256:<hex>"), rehashed: 1 and *ret_body, or 0. */
static int load_cached(struct ib_ctx *ctx, const struct ib_cas *cas, const char *digest,
                       char **ret_body, size_t *ret_len)
{
	_cleanup_free_ char *path = NULL;
	int r = ib_cas_lookup(ctx, cas, digest + 7, 1, &path);
	if (r <= 0)
		return r;
	r = ib_read_file(ctx, path, OCI_MANIFEST_MAX, ret_body, ret_len);
	return r < 0 ? r : 1;
}

/* Fetch the document named digest (a digest) or tag, check its bytes against what names it,
 * and keep it in the cache. ret_digest: the digest of the bytes. */
static int fetch_doc(struct oci_session *s, const struct ib_cas *cas, const char *reference,
                     const char *want_digest, int64_t want_size, const char *what, char **ret_body,
                     size_t *ret_len, char ret_digest[72])
{
	struct ib_ctx *ctx = s->ctx;
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	char header_digest[72];
	int r = oci_get_manifest(s, reference, &body, &len, header_digest);
	if (r < 0)
		return r;
	char hex[IB_SHA256_HEX];
	ib_sha256_hex(body, len, hex);
	char actual[72];
	snprintf(actual, sizeof(actual), "sha256:%s", hex);
	/* The digest in the reference (or the index) is the one that counts; without one,
	 * the registry's Docker-Content-Digest must agree with the bytes. */
	const char *want = want_digest ? want_digest : *header_digest ? header_digest : NULL;
	if (want && !streq(want, actual))
		return ib_error(ctx, IB_E_VERIFY, "%s: sha256 mismatch: expected %s, got %s", what,
		                want, actual);
	if (want_size >= 0 && (uint64_t)want_size != len)
		return ib_error(ctx, IB_E_VERIFY, "%s: %zu bytes, but its descriptor says %lld",
		                what, len, (long long)want_size);
	/* Only what reads as an index or a manifest is kept: an error page served with a 200
	 * must not become a cache entry, nor the tag's ref point at it. */
	_cleanup_jsonr_ struct jsonr *doc = NULL;
	enum oci_kind kind;
	if ((r = jsonr_parse(ctx, IB_E_NETWORK, what, body, len, &doc)) < 0 ||
	    (r = oci_doc_kind(ctx, doc, what, &kind)) < 0)
		return r;
	char stored[IB_SHA256_HEX];
	r = ib_cas_put(ctx, cas, body, len, stored);
	if (r < 0)
		return r;
	memcpy(ret_digest, actual, sizeof(actual));
	*ret_len = len;
	*ret_body = TAKE_PTR(body);
	return 0;
}

static int offline_missing(struct ib_ctx *ctx, const char *name, const char *what_missing)
{
	return ib_error(ctx, IB_E_NETWORK, "offline, and image %s is not in the cache (%s)", name,
	                what_missing);
}

/* The document the reference names: from the cache when pinned by digest (or offline),
 * else from the registry. */
static int resolve_top(struct oci_session *s, const struct ib_cas *cas, const char *refstr,
                       char **ret_body, size_t *ret_len, char ret_digest[72])
{
	struct ib_ctx *ctx = s->ctx;
	const struct ib_oci_ref *ref = s->ref;
	int offline = s->o->offline;
	_cleanup_free_ char *what = xasprintf("manifest of %s", refstr);
	if (ref->digest) {
		int r = load_cached(ctx, cas, ref->digest, ret_body, ret_len);
		if (r < 0)
			return r;
		snprintf(ret_digest, 72, "%s", ref->digest);
		if (r > 0)
			return 0;
		if (offline) {
			_cleanup_free_ char *m = xasprintf("no manifest %s", ref->digest);
			return offline_missing(ctx, refstr, m);
		}
		return fetch_doc(s, cas, ref->digest, ref->digest, -1, what, ret_body, ret_len,
		                 ret_digest);
	}
	_cleanup_free_ char *key = xasprintf("%s/%s:%s", ref->registry, ref->repository, ref->tag);
	if (offline) {
		char hex[IB_SHA256_HEX];
		int r = ib_cas_ref_get(ctx, cas, TAG_REF_KIND, key, hex);
		if (r < 0)
			return r;
		if (r == 0)
			return offline_missing(ctx, refstr, "the tag was never pulled");
		snprintf(ret_digest, 72, "sha256:%s", hex);
		r = load_cached(ctx, cas, ret_digest, ret_body, ret_len);
		if (r < 0)
			return r;
		if (r == 0) {
			_cleanup_free_ char *m = xasprintf("no manifest %s", ret_digest);
			return offline_missing(ctx, refstr, m);
		}
		return 0;
	}
	int r = fetch_doc(s, cas, ref->tag, NULL, -1, what, ret_body, ret_len, ret_digest);
	if (r < 0)
		return r;
	/* So that an offline build resolves the tag to what it meant now. */
	return ib_cas_ref_set(ctx, cas, TAG_REF_KIND, key, ret_digest + 7);
}

/* Config and layers into the cache; what is cached (and still hashes right) costs no
 * request. */
static int fetch_blobs(struct oci_session *s, const struct ib_cas *cas, const char *refstr,
                       const struct ib_oci_image *img, const uint64_t *sizes)
{
	struct ib_ctx *ctx = s->ctx;
	size_t n = img->n_layers + 1;
	struct ib_fetch_item *items = xcalloc(n, sizeof(*items));
	struct strv urls = {0}, whats = {0}, seen = {0};
	size_t k = 0;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		const char *d = i == 0 ? img->config_digest : img->layers[i - 1];
		if (strv_contains(&seen, d))
			continue; /* the same (often empty) layer twice */
		strv_push(&seen, d);
		int have = ib_cas_lookup(ctx, cas, d + 7, 1, NULL);
		if (have < 0)
			r = have;
		if (have != 0)
			continue;
		strv_push_take(&urls, oci_blob_url(s, d));
		if (i == 0)
			strv_push_take(&whats, xasprintf("config %s of %s", d, refstr));
		else
			strv_push_take(&whats, xasprintf("layer %zu (%s) of %s", i, d, refstr));
		items[k].sha256 = d + 7;
		items[k].size = sizes ? sizes[i] : 0;
		k++;
	}
	strv_release(&seen);
	if (r == 0 && k > 0) {
		if (!s->o->offline)
			r = oci_session_authenticate(s);
		const char *headers[] = {s->authz, NULL};
		for (size_t i = 0; i < k; i++) {
			items[i].url = urls.v[i];
			items[i].what = whats.v[i];
			items[i].headers = s->authz ? headers : NULL;
		}
		if (r == 0)
			r = ib_fetch_all(ctx, cas, s->o, items, k);
	}
	for (size_t i = 0; i < k; i++)
		ib_fetch_item_release(&items[i]);
	free(items);
	strv_release(&urls);
	strv_release(&whats);
	return r;
}

int ib_oci_pull(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *o,
                const struct ib_oci_ref *ref, struct ib_oci_image *ret)
{
	struct ib_fetch_opts defaults;
	if (!o) {
		ib_fetch_opts_init(&defaults);
		o = &defaults;
	}
	_cleanup_free_ char *refstr = ib_oci_ref_string(ref);
	struct oci_session s;
	oci_session_init(&s, ctx, o, ref);
	struct ib_oci_image img = {0};
	_cleanup_free_ char *body = NULL;
	_cleanup_free_ uint64_t *sizes = NULL;
	size_t len = 0;
	char top[72];
	_cleanup_free_ char *what = NULL;
	_cleanup_jsonr_ struct jsonr *doc = NULL;
	enum oci_kind kind;

	int r = resolve_top(&s, cas, refstr, &body, &len, top);
	if (r < 0)
		goto out;
	what = xasprintf("manifest %s of %s", top, refstr);
	r = jsonr_parse(ctx, IB_E_NETWORK, what, body, len, &doc);
	if (r == 0)
		r = oci_doc_kind(ctx, doc, what, &kind);
	if (r < 0)
		goto out;
	if (kind == OCI_KIND_INDEX) {
		struct oci_desc d;
		free(what);
		what = xasprintf("image index %s of %s", top, refstr);
		r = oci_index_select(ctx, doc, what, &d);
		if (r < 0)
			goto out;
		snprintf(img.index_digest, sizeof(img.index_digest), "%s", top);
		jsonr_free(TAKE_PTR(doc));
		free(TAKE_PTR(body));
		free(what);
		what = xasprintf("linux/amd64 manifest %s of %s", d.digest, refstr);
		r = load_cached(ctx, cas, d.digest, &body, &len);
		if (r == 0 && o->offline) {
			_cleanup_free_ char *m = xasprintf("no linux/amd64 manifest %s", d.digest);
			r = offline_missing(ctx, refstr, m);
		} else if (r == 0) {
			char got[72];
			r = fetch_doc(&s, cas, d.digest, d.digest, d.size, what, &body, &len, got);
		}
		if (r < 0)
			goto out;
		r = jsonr_parse(ctx, IB_E_NETWORK, what, body, len, &doc);
		if (r == 0)
			r = oci_doc_kind(ctx, doc, what, &kind);
		if (r == 0 && kind != OCI_KIND_MANIFEST)
			r = ib_error(ctx, IB_E_NETWORK, "%s is not an image manifest", what);
		if (r < 0)
			goto out;
		snprintf(img.manifest_digest, sizeof(img.manifest_digest), "%s", d.digest);
	} else {
		snprintf(img.manifest_digest, sizeof(img.manifest_digest), "%s", top);
	}
	r = oci_manifest_parse(ctx, doc, what, &img, &sizes);
	if (r == 0)
		r = fetch_blobs(&s, cas, refstr, &img, sizes);
out:
	oci_session_release(&s);
	if (r < 0) {
		ib_oci_image_release(&img);
		return r;
	}
	*ret = img;
	return 0;
}
