/* supply.h: a role's artifacts and container images: fetched into the content-addressed
 * cache, then staged as files for its layer. */
#pragma once

#include "fetch/fetch.h"
#include "spec/spec.h"

/* Where staged images land in the image, with an index of what they are. */
#define IB_IMAGES_DIR "/var/lib/imgbuild/images"

struct ib_supplied_image {
	char *ref; /* as written in the spec */
	char manifest_digest[72];
	char file[256]; /* base name of the archive under IB_IMAGES_DIR */
};

struct ib_supplied_artifact {
	const struct ib_artifact *spec;
	char sha256[65]; /* verified */
};

struct ib_supply {
	struct ib_file_spec *files; /* staged sources with their destinations, for the layer */
	size_t n_files;
	struct ib_supplied_artifact *artifacts;
	size_t n_artifacts;
	struct ib_supplied_image *images;
	size_t n_images;
};

/* Fetch (or find in the cache) every artifact and image of the role. With stage_dir, also
 * stage them there: artifacts as files (extracted members too), images as archives that
 * `ctr images import` and `docker load` accept, plus IB_IMAGES_DIR/index.tsv. */
int ib_supply_get(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *fo,
                  const struct ib_resolved *role, const char *stage_dir, struct ib_supply *ret);
void ib_supply_release(struct ib_supply *s);

/* A copy of role whose files are its own followed by the supplied ones (shallow: it points
 * into role and s; free with free(copy->files) then free(copy)). */
struct ib_resolved *ib_supply_merge(const struct ib_resolved *role, const struct ib_supply *s);
