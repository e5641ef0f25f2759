/* ext4.h: the root filesystem: mkfs.ext4 -d straight into the raw disk at its offset. */
#pragma once

#include <time.h>

#include "util/ctx.h"

/* Make an ext4 labelled "root" of bytes bytes at byte offset off of raw (which must already
 * be that large), filled from tree, with the given filesystem UUID and directory hash seed.
 * Timestamps after mtime are clamped to it, so that the result depends only on the tree's
 * content, modes and times up to mtime. -IB_E_SPEC when the tree cannot fit. */
int ib_ext4_make(struct ib_ctx *ctx, const char *raw, uint64_t off, uint64_t bytes,
                 const char *tree, const char *uuid, const char *hash_seed, time_t mtime);

/* Clamp every in-use inode's atime, ctime, mtime and crtime to at most t (dropping the
 * nanoseconds of those it changes) in the ext4 at byte offset off of the image behind fd,
 * and refresh the inode checksums. ctime cannot be set from user space, and mkfs.ext4 -d
 * copies it from the tree; this is what makes two builds of one tree identical. */
int ib_ext4_clamp_times(struct ib_ctx *ctx, int fd, const char *raw, uint64_t off, int64_t t);
