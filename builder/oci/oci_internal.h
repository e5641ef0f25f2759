/* oci_internal.h: the OCI client's pieces, shared between its files and its unit suite. */
#pragma once

#include "oci/oci.h"
#include "util/jsonr.h"

#define OCI_MT_INDEX       "application/vnd.oci.image.index.v1+json"
#define OCI_MT_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define DOCKER_MT_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define DOCKER_MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

/* Manifests and indexes larger than this are refused (registries cap them at 4 MiB). */
#define OCI_MANIFEST_MAX ((size_t)4 << 20)
/* Layers in one image, at most (images have tens; the limit bounds a hostile manifest). */
#define OCI_MAX_LAYERS 1024

/* "sha256:" and 64 lowercase hex digits. */
int oci_digest_valid(const char *d);

/* ---- auth.c: the WWW-Authenticate challenge and the token request ---- */

struct oci_challenge {
	char *scheme; /* "bearer" or "basic", lowercased */
	char *realm;
	char *service; /* may be NULL */
	char *scope;   /* may be NULL */
};
/* Parse one header value ("Bearer realm=\"...\",service=\"...\""), its first challenge.
 * An unknown scheme is an error (IB_E_NETWORK) naming it. */
int oci_challenge_parse(struct ib_ctx *ctx, const char *value, struct oci_challenge *ret);
/* Find WWW-Authenticate among response header lines and parse it, preferring a Bearer
 * challenge: 1 found, 0 none, < 0 error. */
int oci_challenge_from_headers(struct ib_ctx *ctx, const char *headers, struct oci_challenge *ret);
void oci_challenge_release(struct oci_challenge *c);
/* realm?service=...&scope=... (scope: the challenge's, else the given one). Caller frees. */
char *oci_token_url(const struct oci_challenge *c, const char *scope);
/* Pull the token out of a token server's JSON answer ("token" or "access_token"). */
int oci_token_from_json(struct ib_ctx *ctx, const char *body, size_t len, const char *what,
                        char **ret_token);

/* The Authorization header (caller frees) answering challenge c for repository's pull
 * scope: a bearer token from the realm (anonymous, or with credentials from the docker
 * config), or Basic credentials. */
int oci_authorize(struct ib_ctx *ctx, const struct ib_fetch_opts *o, const struct ib_oci_ref *ref,
                  const struct oci_challenge *c, char **ret_header);

/* Is this URL's host a loopback address (localhost, 127.0.0.0/8, [::1])? Those registries
 * and token realms are spoken to over plain HTTP, as docker does. */
int oci_url_host_is_loopback(const char *url);
int oci_host_is_loopback(const char *hostport);

/* ---- dockercfg.c: credentials from ~/.docker/config.json ---- */

struct oci_creds {
	char *username;
	char *password;
	char *identitytoken;
	char *source; /* the config file they came from */
};
void oci_creds_release(struct oci_creds *c);
/* From a config.json text: 1 and *ret when auths holds an entry for registry, 0 when not. */
int oci_creds_from_config(struct ib_ctx *ctx, const char *json, size_t len, const char *what,
                          const char *registry, struct oci_creds *ret);
/* From $DOCKER_CONFIG/config.json or ~/.docker/config.json: 1, 0 (no file, no entry), < 0. */
int oci_creds_load(struct ib_ctx *ctx, const char *registry, struct oci_creds *ret);

/* Strict standard base64 (padding optional, no whitespace): 0, or -1 when malformed.
 * *ret (caller frees) is NUL-terminated. */
int oci_base64_decode(const char *in, char **ret, size_t *ret_len);
char *oci_base64_encode(const void *data, size_t len); /* caller frees */

/* ---- manifest.c: indexes and manifests ---- */

enum oci_kind { OCI_KIND_INDEX, OCI_KIND_MANIFEST };

struct oci_desc {
	char digest[72];
	int64_t size;
	char media_type[128];
};

/* What a document is, from its mediaType (or its shape when it has none); docker schema 1
 * and other types are refused, naming what. */
int oci_doc_kind(struct ib_ctx *ctx, const struct jsonr *doc, const char *what, enum oci_kind *ret);
/* The linux/amd64 entry of an index (no variant, or v1); none is an error listing the
 * platforms the index has. */
int oci_index_select(struct ib_ctx *ctx, const struct jsonr *index, const char *what,
                     struct oci_desc *ret);
/* The config and layer digests of an image manifest into img (layers allocated); with
 * ret_sizes, their sizes too (caller frees): [0] the config's, [1 + i] layer i's. */
int oci_manifest_parse(struct ib_ctx *ctx, const struct jsonr *m, const char *what,
                       struct ib_oci_image *img, uint64_t **ret_sizes);
/* The media type to name a manifest with in a descriptor. */
const char *oci_manifest_media_type(const struct jsonr *m);

/* ---- registry.c: talking to one repository of one registry ---- */

struct oci_session {
	struct ib_ctx *ctx;
	const struct ib_fetch_opts *o;
	const struct ib_oci_ref *ref;
	char *base;  /* "https://host/v2/<repository>/" */
	char *authz; /* "Authorization: ..." once authenticated, else NULL */
};
void oci_session_init(struct oci_session *s, struct ib_ctx *ctx, const struct ib_fetch_opts *o,
                      const struct ib_oci_ref *ref);
void oci_session_release(struct oci_session *s);
/* GET manifests/<reference> (a tag or a digest) with every manifest type accepted,
 * authenticating on a 401. *ret_body (caller frees), *ret_len; ret_digest receives the
 * Docker-Content-Digest header or "". */
int oci_get_manifest(struct oci_session *s, const char *reference, char **ret_body, size_t *ret_len,
                     char ret_digest[72]);
/* The blob URL for a digest. Caller frees. */
char *oci_blob_url(const struct oci_session *s, const char *digest);
/* Make sure the session holds credentials for blob downloads (a manifest GET did it, or a
 * ping now does). */
int oci_session_authenticate(struct oci_session *s);
