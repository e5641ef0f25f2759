/* layer.h: a role's files, units and first-boot scripts as one deterministic tar.
 *
 * Same inputs, same bytes: entries sorted by path, every mtime = the given epoch,
 * explicit numeric owner and mode, no user/group names, no atime/ctime, pax format
 * without per-run headers. Enabling a unit adds the symlinks `systemctl enable` makes.
 */
#pragma once

#include <time.h>

#include "spec/spec.h"

struct ib_layer_opts {
	const struct ib_project *project;
	const struct ib_resolved *role;
	/* An extracted root filesystem to look up units the packages ship (NULL: only
	 * units in the role's own files are found). */
	const char *rootfs_tree;
	time_t mtime; /* SOURCE_DATE_EPOCH or IB_DEFAULT_EPOCH */
	/* Leave `units:` out: a role built on a base image enables them inside the image,
	 * where the unit files its packages ship are. */
	int no_units;
};

/* 2024-01-01T00:00:00Z: used when SOURCE_DATE_EPOCH is unset. */
#define IB_DEFAULT_EPOCH ((time_t)1704067200)

/* SOURCE_DATE_EPOCH from the environment, else IB_DEFAULT_EPOCH; -1 if it is set but bad. */
time_t ib_source_date_epoch(void);

/* Write the layer to out_tar (written to a temporary name, renamed on success).
 * The layer holds, besides the role's `files:`:
 *   /etc/imgbuild/role                        the role name
 *   /usr/lib/imgbuild/firstboot.d/NN-<base>   each first-boot script, 0755, in order
 *   /etc/cloud/cloud.cfg.d/90-imgbuild.cfg    the merged cloud_init mapping (if any)
 *   /etc/systemd/system/<target>.wants/<unit> symlinks for `units:` (WantedBy=, RequiredBy=,
 *                                             Alias=, Also= followed as systemctl does)
 * A unit to enable that is found nowhere is an IB_E_SPEC error naming it. */
int ib_layer_build(struct ib_ctx *ctx, const struct ib_layer_opts *opts, const char *out_tar);
