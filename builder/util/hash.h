/* hash.h: SHA-256 over buffers, files and incremental input (OpenSSL EVP). */
#pragma once

#include "ctx.h"

#define IB_SHA256_HEX 65 /* 64 hex digits and a NUL */

struct ib_sha256 {
	void *md; /* EVP_MD_CTX */
};

void ib_sha256_init(struct ib_sha256 *h);
void ib_sha256_update(struct ib_sha256 *h, const void *data, size_t len);
/* Feed a string and its terminating NUL, so that ("ab","c") and ("a","bc") differ. */
void ib_sha256_field(struct ib_sha256 *h, const char *s);
void ib_sha256_final_hex(struct ib_sha256 *h, char out[IB_SHA256_HEX]);
void ib_sha256_release(struct ib_sha256 *h);

void ib_sha256_hex(const void *data, size_t len, char out[IB_SHA256_HEX]);
int ib_sha256_file_hex(struct ib_ctx *ctx, const char *path, char out[IB_SHA256_HEX]);
/* Derive 16 bytes from a seed string (for UUIDs that follow from the spec). */
void ib_derive_bytes(const char *seed, const char *purpose, uint8_t out[16]);
/* Format 16 bytes as a lowercase RFC 4122 UUID string (version 4 bits set). */
void ib_uuid_format(uint8_t b[16], char out[37]);
