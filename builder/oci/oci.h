/* oci.h: pulling container images from registries into the cache, and archives for them.
 *
 * References: "name:tag", "name@sha256:<hex>", "registry.example:5000/ns/name:tag"; a name
 * without a registry is Docker Hub's (registry-1.docker.io, "library/" added for one-part
 * names). Auth: anonymous bearer tokens from the WWW-Authenticate challenge, basic or token
 * credentials from ~/.docker/config.json (or $DOCKER_CONFIG/config.json) when present.
 * An image index resolves to linux/amd64. Every blob's digest is verified (they all go
 * through the content-addressed cache).
 */
#pragma once

#include "fetch/fetch.h"

struct ib_oci_ref {
	char *registry;   /* "registry-1.docker.io" or "localhost:5000" */
	char *repository; /* "library/nginx" */
	char *tag;        /* NULL when pinned by digest only */
	char *digest;     /* "sha256:<hex>" or NULL */
	char *original;   /* as written */
};

int ib_oci_ref_parse(struct ib_ctx *ctx, const char *s, struct ib_oci_ref *ret);
void ib_oci_ref_release(struct ib_oci_ref *r);

struct ib_oci_image {
	char manifest_digest[72]; /* "sha256:<hex>" of the platform manifest */
	char index_digest[72];    /* of the index the reference named, or "" */
	char config_digest[72];
	char **layers; /* "sha256:<hex>" each, in order */
	size_t n_layers;
};
void ib_oci_image_release(struct ib_oci_image *img);

/* Pull ref for linux/amd64 into the cache (manifests, config and layers, verified). With
 * o->offline, resolve it from the cache alone (a tag through refs/) or fail naming what is
 * missing. o->mirror redirects the registry (see the issue text in README): requests go to
 * <mirror>/<registry host>/v2/..., anonymously. Registries on loopback addresses are
 * spoken to over plain HTTP (docker's default insecure range), every other over HTTPS.
 * A reference pinned by digest whose manifest and blobs are all cached (and rehash right)
 * costs no request. A tag pulled online is recorded in refs/oci-tag/ for offline pulls. */
int ib_oci_pull(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *o,
                const struct ib_oci_ref *ref, struct ib_oci_image *ret);

/* Write a tar that both `ctr -n k8s.io images import` and `docker load` accept (an OCI
 * image layout with index.json and oci-layout, plus docker's manifest.json), naming the
 * image by its normalised name (ib_oci_ref_name) with its tag, and with its digest when the
 * reference has one (one index.json entry each, annotated io.containerd.image.name),
 * deterministically (sorted entries, mtime 0, owner 0:0), from the cache; each blob is
 * rehashed as it is copied. Temp + rename. */
int ib_oci_archive_write(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_oci_ref *ref,
                         const struct ib_oci_image *img, const char *out_tar);

/* The image's name as containerd and docker spell it, without tag or digest:
 * "docker.io/library/nginx", "localhost:5000/ns/name". Caller frees. */
char *ib_oci_ref_name(const struct ib_oci_ref *r);
/* The reference normalised: name:tag, name@digest or name:tag@digest. Caller frees. */
char *ib_oci_ref_string(const struct ib_oci_ref *r);
