/* cas.h: the content-addressed cache: every downloaded byte is kept under its SHA-256.
 *
 * Layout under the cache root (ib_cache_dir()):
 *   blobs/sha256/<64 hex>     complete, verified entries (read-only files, mode 0444)
 *   tmp/                      partial downloads (<hex or url hash>.part), resumable
 *   refs/<kind>/<name>        small text files mapping names to digests (e.g. the digest of
 *                             a checksum-file lookup, an OCI tag), so offline builds resolve
 * Entries appear only by rename after their digest was checked, so a reader never sees a
 * partial entry; concurrent builds writing the same entry race harmlessly (same bytes).
 * Downloads of one entry are serialized across processes by a flock on tmp/<hex>.lock
 * (ib_cas_trylock), because two writers appending to one .part would corrupt it.
 * Entries are not fsync'ed: a crash may leave a torn entry, which a verifying lookup finds
 * and drops (the cache is a cache: losing an entry costs a download, never a wrong byte).
 */
#pragma once

#include "util/ctx.h"

/* Every entry and ref looked up through a cache that has one (bundle create: what an
 * offline build of a role reads). Paths relative to the cache root, in lookup order. */
struct ib_cas_record {
	pthread_mutex_t lock;
	struct strv paths;
};

struct ib_cas {
	char *root;                /* the cache root; owned */
	struct ib_cas_record *rec; /* NULL, or where lookups are recorded; not owned */
};

int ib_cas_open(struct ib_ctx *ctx, const char *cache_dir, struct ib_cas *ret);
void ib_cas_release(struct ib_cas *cas);

/* Path of the entry for hex (whether present or not). Caller frees. */
char *ib_cas_path(const struct ib_cas *cas, const char *hex);

/* 1 and *ret_path (caller frees) when a complete entry exists and, with verify, hashes to
 * hex; 0 when missing. A corrupted entry is logged, removed and reported missing. */
int ib_cas_lookup(struct ib_ctx *ctx, const struct ib_cas *cas, const char *hex, int verify,
                  char **ret_path);

/* Move a finished temporary file into the cache if it hashes to hex; otherwise delete it
 * and fail (IB_E_VERIFY naming what, expected and actual digest). tmp_path must be on the
 * cache's filesystem (ib_cas_tmp_path gives a suitable name). */
int ib_cas_commit(struct ib_ctx *ctx, const struct ib_cas *cas, const char *tmp_path,
                  const char *hex, const char *what);
/* Same, for a caller that hashed the bytes as it wrote them: actual is that digest. */
int ib_cas_commit_hashed(struct ib_ctx *ctx, const struct ib_cas *cas, const char *tmp_path,
                         const char *hex, const char *actual, const char *what);

/* A unique temporary name under tmp/ for writing a future entry ("<tag>.tmp.<pid>.<n>");
 * `cache prune` removes such names once they are a day old. Caller frees. */
char *ib_cas_tmp_path(const struct ib_cas *cas, const char *tag);

/* Is s exactly 64 lowercase hex digits? Every function here refuses other digests, so a
 * digest from the network can never name a path outside the cache. */
int ib_cas_hex_valid(const char *s);

/* Take the per-entry lock tmp/<hex>.lock without waiting: 1 and *ret_fd (close it to
 * release) when taken, 0 when another holder has it, negative on error. A lock file that
 * `cache prune` unlinked under a waiter is detected (inode check) and taken again. */
int ib_cas_trylock(struct ib_ctx *ctx, const struct ib_cas *cas, const char *hex, int *ret_fd);

/* Store bytes held in memory (manifests, small files). */
int ib_cas_put(struct ib_ctx *ctx, const struct ib_cas *cas, const void *data, size_t len,
               char ret_hex[65]);

/* refs: name -> digest, for lookups that must also work offline. kind is [a-z0-9_-]+ (e.g.
 * "checksum", "oci-tag"); name is any string up to 1024 bytes (a URL, "registry/repo:tag"):
 * the file is refs/<kind>/<sha256 of name> holding "<hex>\t<name>\n", so names never
 * become paths and `cache ls` can still show them. */
int ib_cas_ref_set(struct ib_ctx *ctx, const struct ib_cas *cas, const char *kind, const char *name,
                   const char *hex);
/* 1 found (hex filled), 0 missing. */
int ib_cas_ref_get(struct ib_ctx *ctx, const struct ib_cas *cas, const char *kind, const char *name,
                   char hex[65]);

/* Path of the ref file for (kind, name), relative to the cache root. Caller frees. */
char *ib_cas_ref_relpath(const char *kind, const char *name);

/* Call fn for every ref (kind, name, hex) in a stable order; stops at fn's first non-zero
 * return and returns it. Unreadable or malformed ref files are skipped. */
int ib_cas_ref_foreach(struct ib_ctx *ctx, const struct ib_cas *cas,
                       int (*fn)(const char *kind, const char *name, const char *hex, void *data),
                       void *data);
