/* bundle.h: signed bundles for air-gapped installs.
 *
 * A bundle is one tar archive (zstd) whose members are, in this order:
 *   MANIFEST          text, signed: format, tool version, creation time, signer, roles, and
 *                     one "file <sha256> <size> <path>" line per other member, sorted by path
 *   MANIFEST.sig      "ed25519 <base64 signature over MANIFEST>\n"
 *   cache/...         cache entries: blobs/sha256/<hex> and refs/<kind>/<hex> (fetch/cas.h)
 *   project/...       the spec: the project directory less its output directory
 *   images/...        with --with-images, the built images and their manifests
 * Headers are fixed (owner 0:0, mode 0644, time = creation time), so the same inputs and
 * SOURCE_DATE_EPOCH give the same bytes. A reader checks the signature before it trusts
 * anything, then every member against the manifest; any bad digest or size, a missing,
 * extra, duplicated or out-of-order member rejects the whole bundle.
 */
#pragma once

#include <openssl/evp.h>

#include "fetch/cas.h"
#include "util/strbuf.h"

#define IB_BUNDLE_FORMAT       "imgbuild-bundle 1"
#define IB_BUNDLE_MANIFEST     "MANIFEST"
#define IB_BUNDLE_SIGNATURE    "MANIFEST.sig"
#define IB_BUNDLE_MANIFEST_MAX (64u << 20)

struct ib_bundle_entry {
	char *path; /* member name, ib_bundle_path_valid */
	uint64_t size;
	char sha256[65];
	int exec; /* project files: executable (0755 when imported, else 0644) */
};

struct ib_bundle_manifest {
	char *tool; /* "imgbuild <version>" */
	long long created;
	char signer[65]; /* ib_key_fingerprint of the signing key */
	struct strv roles;
	struct ib_bundle_entry *v; /* sorted by path (strcmp), unique */
	size_t n;
};

/* Is path an acceptable member name: cache/blobs/sha256/<hex>, cache/refs/<kind>/<hex>,
 * project/<relative path> or images/<name>, no "." or ".." components, no empty ones, no
 * control characters or spaces? Names never become paths outside the target this way. */
int ib_bundle_path_valid(const char *path);

/* Text of m (entries must be sorted). */
void ib_bundle_manifest_format(const struct ib_bundle_manifest *m, struct strbuf *out);
/* Parse and check text strictly: every line known, entries sorted and unique, a blob's name
 * equal to its digest. IB_E_VERIFY with "MANIFEST line N: ..." on the first problem. */
int ib_bundle_manifest_parse(struct ib_ctx *ctx, const char *text, size_t len,
                             struct ib_bundle_manifest *ret);
void ib_bundle_manifest_release(struct ib_bundle_manifest *m);
/* The entry for path, or NULL (binary search). */
const struct ib_bundle_entry *ib_bundle_manifest_find(const struct ib_bundle_manifest *m,
                                                      const char *path);

/* The signature member's text for sig, and back: 0, or IB_E_VERIFY when malformed. */
char *ib_bundle_sig_format(const unsigned char sig[64]);
int ib_bundle_sig_parse(struct ib_ctx *ctx, const char *text, size_t len, unsigned char sig[64]);

/* One member to write: its name in the bundle and the file it comes from. */
struct ib_bundle_src {
	char *path;
	char *file;
};

struct ib_bundle_create_opts {
	const char *output; /* written as output.tmp.PID, renamed on success */
	EVP_PKEY *key;      /* private */
	long long created;  /* SOURCE_DATE_EPOCH */
	const struct strv *roles;
	struct ib_bundle_src *srcs; /* any order; duplicates by path are an error */
	size_t n_srcs;
};

/* Hash every source, write the manifest, sign it, and write the archive. */
int ib_bundle_create(struct ib_ctx *ctx, const struct ib_bundle_create_opts *o,
                     struct ib_bundle_manifest *ret_manifest);

/* Check bundle file against the public key: signature, then every member. With
 * cache_stage, members under cache/ are also written there (as cache_stage/cache/...); with
 * files_stage, those under project/ and images/ there. Both are existing directories the
 * caller removes on failure. The manifest is returned on success (release it). */
int ib_bundle_read(struct ib_ctx *ctx, const char *file, EVP_PKEY *pub, const char *cache_stage,
                   const char *files_stage, struct ib_bundle_manifest *ret);

/* Move what ib_bundle_read staged in cache_stage into the cache: blobs (one already present
 * is kept) and refs (replaced). *ret_new: how many blobs were not there before. */
int ib_bundle_install(struct ib_ctx *ctx, const struct ib_bundle_manifest *m,
                      const char *cache_stage, const struct ib_cas *cas, size_t *ret_new);
