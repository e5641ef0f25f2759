/* rootfs.h: root filesystems bootstrapped by mmdebstrap, cached by a key over every input. */
#pragma once

#include <time.h>

#include "spec/spec.h"

struct ib_rootfs_opts {
	const struct ib_project *project;
	const struct ib_resolved *role;
	const char *cache_dir; /* imgbuild's cache root; tarballs go in <cache_dir>/rootfs */
	time_t epoch;          /* SOURCE_DATE_EPOCH given to mmdebstrap */
	int offline;   /* never the mirror: a missing root filesystem is bootstrapped from the
	                * packages kept in the cache (rootfs/debs.h), or is an error */
	int keep_debs; /* online: bootstrap again a cached root filesystem whose packages
	                * were not kept (fetch, bundle create need them) */
};

/* The cache key: SHA-256 over suite, mirror, architecture, variant, the sorted package
 * list, the sealing hooks and the epoch. Anything that changes the bootstrap changes it. */
void ib_rootfs_key(const struct ib_rootfs_opts *opts, char out[65]);

/* The packages every image gets whatever its role says: what boots and configures it. */
extern const char *const ib_rootfs_base_packages[];

/* Return (in *ret_tar, caller frees) the cached tarball for these inputs, bootstrapping it
 * with mmdebstrap first when missing, and keeping the .debs it used (rootfs/debs.h). Safe for
 * concurrent builds sharing one cache: one bootstraps under a lock, the others wait and reuse.
 * *ret_reused tells which happened. */
int ib_rootfs_get(struct ib_ctx *ctx, const struct ib_rootfs_opts *opts, char **ret_tar,
                  int *ret_reused);

enum {
	/* Resolve every entry's parent directory inside the tree, following the tree's own
	 * symlinks as the image would see them (/var/run -> /run stays in the tree), and
	 * replace an existing file or symlink at the entry's path. For layers. */
	IB_EXTRACT_CONFINE = 1 << 0,
	/* Skip character and block devices (logged at debug level): a user namespace cannot
	 * create them, and the image needs none (systemd mounts devtmpfs on /dev at boot). */
	IB_EXTRACT_NO_DEVICES = 1 << 1,
};

/* Extract a tar into tree keeping numeric owners, modes, times and extended attributes. */
int ib_tree_extract(struct ib_ctx *ctx, const char *tar, const char *tree, unsigned flags);

/* Seal a tree for shipping: empty machine-id, no SSH host keys, no cloud-init state, no apt
 * lists or caches, no logs. Idempotent. */
int ib_tree_seal(struct ib_ctx *ctx, const char *tree);

/* What sealing removes, relative to the root, for sealing an image in place (a base image
 * customized with libguestfs) the same way: whole paths (NULL-ended), and the entries of
 * directories whose names start with prefix ("" for all; {NULL, NULL}-ended). Besides,
 * /etc/machine-id is emptied. */
extern const char *const ib_seal_gone[];
struct ib_seal_clear {
	const char *dir, *prefix;
};
extern const struct ib_seal_clear ib_seal_cleared[];

struct ib_package {
	char *name;
	char *version;
};

/* Installed packages from tree/var/lib/dpkg/status, sorted by name. Caller frees with
 * ib_packages_free. */
int ib_tree_packages(struct ib_ctx *ctx, const char *tree, struct ib_package **ret, size_t *ret_n);
void ib_packages_free(struct ib_package *p, size_t n);
