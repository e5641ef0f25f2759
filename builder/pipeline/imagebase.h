/* imagebase.h: a role built on a disk image (`base: image:`) instead of a bootstrap.
 *
 * The image is fetched through the content-addressed cache (pinned by sha256; --mirror and
 * --offline apply), converted to a raw copy in the work directory (the cache entry is never
 * written), and customized in one libguestfs appliance launch: the role's extra Debian
 * packages installed, the layer unpacked, units enabled, scripts run, then sealed as
 * ib_tree_seal seals a tree; last the image's manifest goes in, naming the packages it
 * then holds.
 *
 * Packages are resolved on the host, not in the appliance: apt with a private
 * configuration reads the image's own dpkg status (downloaded from the launched appliance)
 * and the project's Debian mirror and suite (debian.mirror, as for mmdebstrap; --mirror
 * does not apply), and prints the .deb files the image lacks;
 * those are fetched into the cache by their sha256 like any artifact, uploaded, and
 * installed by the image's apt from the local files. The appliance needs no network, and a
 * second build downloads nothing.
 */
#pragma once

#include "fetch/fetch.h"
#include "rootfs/rootfs.h"
#include "spec/spec.h"

struct ib_imagebase_opts {
	const struct ib_project *project;
	const struct ib_resolved *role; /* role->base_image is set */
	const char *cache_dir;
	const struct ib_fetch_opts *fetch;
	const char *work;      /* the role's work directory (scratch: apt state, downloads) */
	const char *layer_tar; /* the role's layer, built with no_units */
	const char *out_raw;   /* the raw image to write, inside work */
	/* The image's own manifest (pipeline/manifest.h), rendered from the packages the image
	 * holds once customized and written to /etc/imgbuild/manifest.json in the same launch.
	 * Returns a string the caller frees. NULL: no manifest goes in. */
	char *(*render_manifest)(const void *arg, const struct ib_package *pkgs, size_t n);
	const void *manifest_arg;
};

/* Fetch role's base image into the cache (or find it there) and check its format;
 * *ret_path (optional, caller frees) the cache entry. For `imgbuild fetch`. */
int ib_imagebase_fetch(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *fo,
                       const struct ib_resolved *role, char **ret_path);

/* Fetch the base image (or find it in the cache) and write a raw copy to out_raw. */
int ib_imagebase_get(struct ib_ctx *ctx, const struct ib_imagebase_opts *o);

/* Customize out_raw in place in one appliance launch; *ret_pkgs (sorted, free with
 * ib_packages_free) gets the packages the image holds afterwards. */
int ib_imagebase_customize(struct ib_ctx *ctx, const struct ib_imagebase_opts *o,
                           struct ib_package **ret_pkgs, size_t *ret_n);

/* Host side of package installation: with the image's dpkg status file, the .deb files
 * apt would install for the role's packages, fetched into the cache. *ret_debs gets their
 * cache paths and *ret_names file names "<pkg>_<ver>_<arch>.deb" (same order). No package
 * missing: both empty. */
int ib_imagebase_debs(struct ib_ctx *ctx, const struct ib_imagebase_opts *o, const char *status,
                      struct strv *ret_debs, struct strv *ret_names);
