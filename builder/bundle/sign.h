/* sign.h: Ed25519 keys and signatures (OpenSSL EVP) for signed bundles. */
#pragma once

#include <openssl/evp.h>

#include "util/ctx.h"

#define IB_SIG_LEN 64 /* an Ed25519 signature */

/* Write a new key pair: <prefix>.key (PKCS#8 PEM, mode 0600) and <prefix>.pub (SPKI PEM,
 * 0644). Each is written under a temporary name and linked into place, so an existing key
 * is never overwritten (IB_E_USAGE naming it) and nothing half-written is left behind. */
int ib_key_generate(struct ib_ctx *ctx, const char *prefix);

/* Load an Ed25519 private (PEM PKCS#8) or public (PEM SPKI) key; anything else, or another
 * key type, is bad input (IB_E_SPEC naming the file). Free with EVP_PKEY_free. */
int ib_key_load_private(struct ib_ctx *ctx, const char *path, EVP_PKEY **ret);
int ib_key_load_public(struct ib_ctx *ctx, const char *path, EVP_PKEY **ret);

/* SHA-256 of the raw 32-byte public key, as hex: what the manifest names the signer by. */
int ib_key_fingerprint(struct ib_ctx *ctx, EVP_PKEY *key, char out[65]);

int ib_sign(struct ib_ctx *ctx, EVP_PKEY *priv, const void *data, size_t len,
            unsigned char sig[IB_SIG_LEN]);
/* 1 when sig is priv's signature over data for this public key, 0 when not. */
int ib_sign_check(struct ib_ctx *ctx, EVP_PKEY *pub, const void *data, size_t len,
                  const unsigned char sig[IB_SIG_LEN]);
