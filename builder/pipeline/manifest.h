/* manifest.h: <role>.manifest.json: what an image was made from and what came out.
 *
 * The same manifest is inside the image, at /etc/imgbuild/manifest.json, with one key
 * less: `outputs` (the names, sizes and sha256 of the image files themselves), which no
 * image can carry. The rule: the manifest beside the image with `outputs` removed is the
 * one inside it, key for key and value for value.
 */
#pragma once

#include "disk/disk.h"
#include "pipeline/supply.h"
#include "rootfs/rootfs.h"

struct ib_manifest_output {
	const char *format; /* "raw", "qcow2" */
	const char *file;   /* base name in the output directory */
	long long size;
	char sha256[65];
};

struct ib_manifest {
	const struct ib_project *project;
	const struct ib_resolved *role;
	const char *digest;
	const char *rootfs_key;
	long long epoch;
	const struct ib_disk_layout *layout;
	const struct ib_package *packages;
	size_t n_packages;
	const struct ib_supply *supply; /* fetched artifacts and images, or NULL */
	struct ib_manifest_output outputs[2];
	size_t n_outputs;
	int in_image; /* 1: the copy inside the image: no `outputs` key */
};

#define IB_MANIFEST_IN_IMAGE "/etc/imgbuild/manifest.json"

/* Render the manifest as deterministic JSON (no timestamps but the epoch). Caller frees. */
char *ib_manifest_render(const struct ib_manifest *m);
