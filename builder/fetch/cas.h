/* cas.h: the content-addressed cache: every downloaded byte is kept under its SHA-256.
 *
 * Layout under the cache root (ib_cache_dir()):
 *   blobs/sha256/<64 hex>     complete, verified entries (read-only files, mode 0444)
 *   tmp/                      partial downloads (<hex or url hash>.part), resumable
 *   refs/<kind>/<name>        small text files mapping names to digests (e.g. the digest of
 *                             a checksum-file lookup, an OCI tag), so offline builds resolve
 * Entries appear only by rename after their digest was checked, so a reader never sees a
 * partial entry; concurrent builds writing the same entry race harmlessly (same bytes).
 */
#pragma once

#include "util/ctx.h"

struct ib_cas {
	char *root; /* the cache root; owned */
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
 * and fail (IB_E_VERIFY naming what, expected and actual digest). */
int ib_cas_commit(struct ib_ctx *ctx, const struct ib_cas *cas, const char *tmp_path,
		  const char *hex, const char *what);

/* Store bytes held in memory (manifests, small files). */
int ib_cas_put(struct ib_ctx *ctx, const struct ib_cas *cas, const void *data, size_t len,
	       char ret_hex[65]);

/* refs: name -> digest, for lookups that must also work offline. */
int ib_cas_ref_set(struct ib_ctx *ctx, const struct ib_cas *cas, const char *kind,
		   const char *name, const char *hex);
/* 1 found (hex filled), 0 missing. */
int ib_cas_ref_get(struct ib_ctx *ctx, const struct ib_cas *cas, const char *kind,
		   const char *name, char hex[65]);
