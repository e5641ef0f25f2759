/* fs.h: file helpers: atomic writes, temporary names, recursive removal, locks. */
#pragma once

#include <sys/types.h>

#include "ctx.h"

/* mkdir -p; mode applies to created directories. */
int ib_mkdir_p(struct ib_ctx *ctx, const char *path, mode_t mode);
/* Write data to path.tmp.PID, fsync, rename over path. Nothing half-written remains. */
int ib_write_file_atomic(struct ib_ctx *ctx, const char *path, const void *data, size_t len,
                         mode_t mode);
/* Read a whole file, refusing more than max bytes. *ret_data is NUL-terminated;
 * caller frees with free(). */
int ib_read_file(struct ib_ctx *ctx, const char *path, size_t max, char **ret_data,
                 size_t *ret_len);
/* rm -rf that does not cross into other filesystems and ignores a missing path. */
int ib_rm_rf(struct ib_ctx *ctx, const char *path);
/* Take an exclusive flock on path (created if missing), waiting for other holders.
 * Returns the fd (>= 0) to close for release. */
int ib_lock_file(struct ib_ctx *ctx, const char *path);
/* Like ib_lock_file but never waits: -IB_E_IO with errno EWOULDBLOCK in *busy set to 1. */
int ib_trylock_file(struct ib_ctx *ctx, const char *path, int *busy);
/* Remove the entries of dir named <prefix><pid><suffix> whose process pid is gone (what a
 * build killed outright left behind), with rm (ib_rm_rf, or a remover for files of other
 * owners). Best effort: returns how many were removed. */
int ib_remove_dead_pid_entries(const char *dir, const char *prefix, const char *suffix,
                               int (*rm)(struct ib_ctx *ctx, const char *path));
int ib_exists(const char *path);
/* fsync a file written by another program, before it is renamed into place. */
int ib_fsync_path(struct ib_ctx *ctx, const char *path);
/* Size of a file in bytes, or -1. */
long long ib_file_size(const char *path);
/* Blocks actually allocated to a file, in bytes (for sparse files), or -1. */
long long ib_file_allocated(const char *path);
/* Join two path parts with exactly one '/'. Caller frees. */
char *ib_path_join(const char *a, const char *b);
/* The directory used for cached data: $XDG_CACHE_HOME/imgbuild or ~/.cache/imgbuild.
 * IMGBUILD_CACHE_DIR overrides both. Caller frees. */
char *ib_cache_dir(void);
/* Make path absolute against cwd without touching the filesystem. Caller frees. */
char *ib_abspath(const char *path);
