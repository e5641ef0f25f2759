/* debs.h: the Debian packages a bootstrap used, kept in the cache so that the same root
 * filesystem can be bootstrapped again with no network (from a bundle, air-gapped).
 *
 * Kept per root filesystem key, as the ref rootfs-debs/<key> naming an index blob:
 *   imgbuild-rootfs-packages 1
 *   sources <hex>            the /etc/apt/sources.list mmdebstrap wrote for the real mirror
 *   packages <hex>           the mirror's Packages stanzas of exactly these packages
 *   deb <hex> <Filename>     one line per .deb, its pool path as the mirror names it
 * The stanzas are the mirror's own (not regenerated from the .debs), so priorities and
 * sections, which decide what a variant installs, are the mirror's.
 */
#pragma once

#include "fetch/cas.h"

#define IB_ROOTFS_DEBS_REF "rootfs-debs"

struct ib_rootfs_debs {
	char index[65];
	char sources[65];
	char packages[65];
	struct strv debs;  /* hex digests */
	struct strv files; /* their Filename, same order */
};
void ib_rootfs_debs_release(struct ib_rootfs_debs *d);

/* After a bootstrap whose hooks left <work>/archives/ (the .debs), <work>/lists/ (apt's
 * lists) and <work>/sources.list: move the .debs into the cache, write the index and set
 * the ref for key. */
int ib_rootfs_debs_keep(struct ib_ctx *ctx, const struct ib_cas *cas, const char *key,
                        const char *work);

/* 1 and *ret when the ref for key names a readable index (with verify, every blob it names
 * is also checked present and intact), 0 when there is none, or an error. */
int ib_rootfs_debs_get(struct ib_ctx *ctx, const struct ib_cas *cas, const char *key, int verify,
                       struct ib_rootfs_debs *ret);

/* Lay out a flat repository in repo (created): Packages, a Release naming suite, the .debs
 * under their pool paths (hard links into the cache, or copies), and sources.list. */
int ib_rootfs_debs_repo(struct ib_ctx *ctx, const struct ib_cas *cas,
                        const struct ib_rootfs_debs *d, const char *suite, const char *repo);
