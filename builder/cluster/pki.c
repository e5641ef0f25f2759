/* pki.c: the cluster CA (OpenSSL): made as kubeadm makes its own, read back, hashed. */
#include "cluster/cluster.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util/hash.h"

#define CA_BITS     2048 /* kubeadm's default */
#define CA_PEM_MAX  (64u << 10)
#define SERIAL_SIZE 16

/* OpenSSL keeps a queue of errors per thread: report the last (the most specific) and
 * clear them all, so that none is left over for an unrelated call later. */
static int ssl_error(struct ib_ctx *ctx, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return ib_error(ctx, IB_E_LIB, "%s: %s", what, reason ? reason : "OpenSSL error");
}

static void bio_freep(BIO **b)
{
	BIO_free(*b);
}
static void pkey_freep(EVP_PKEY **k)
{
	EVP_PKEY_free(*k);
}
static void pkey_ctx_freep(EVP_PKEY_CTX **c)
{
	EVP_PKEY_CTX_free(*c);
}
static void x509_freep(X509 **x)
{
	X509_free(*x);
}
static void bn_freep(BIGNUM **b)
{
	BN_free(*b);
}
#define _cleanup_bio_      _cleanup_(bio_freep)
#define _cleanup_pkey_     _cleanup_(pkey_freep)
#define _cleanup_pkey_ctx_ _cleanup_(pkey_ctx_freep)
#define _cleanup_x509_     _cleanup_(x509_freep)
#define _cleanup_bn_       _cleanup_(bn_freep)

void ib_ca_release(struct ib_ca *ca)
{
	free(ca->cert_pem);
	if (ca->key_pem) {
		OPENSSL_cleanse(ca->key_pem, strlen(ca->key_pem));
		free(ca->key_pem);
	}
	memset(ca, 0, sizeof(*ca));
}

static int spki_hash(struct ib_ctx *ctx, X509 *x, char out[IB_CA_HASH_LEN + 1])
{
	unsigned char *der = NULL;
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (n <= 0)
		return ssl_error(ctx, "cannot encode the CA's public key");
	char hex[IB_SHA256_HEX];
	ib_sha256_hex(der, (size_t)n, hex);
	OPENSSL_free(der);
	snprintf(out, IB_CA_HASH_LEN + 1, "sha256:%s", hex);
	return 0;
}

/* PEM text of a BIO written to memory. Caller frees. */
static char *bio_text(BIO *b)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	return xstrndup(data, n > 0 ? (size_t)n : 0);
}

static int add_ext(struct ib_ctx *ctx, X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext)
		return ssl_error(ctx, "cannot make the CA's extensions");
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : ssl_error(ctx, "cannot make the CA's extensions");
}

static int make_key(struct ib_ctx *ctx, EVP_PKEY **ret)
{
	_cleanup_pkey_ctx_ EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *key = NULL;
	if (!kc || EVP_PKEY_keygen_init(kc) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(kc, CA_BITS) <= 0 || EVP_PKEY_generate(kc, &key) <= 0)
		return ssl_error(ctx, "cannot generate the CA key");
	*ret = key;
	return 0;
}

/* A random positive serial, as RFC 5280 wants (at most 20 octets, not negative). */
static int set_serial(struct ib_ctx *ctx, X509 *x)
{
	unsigned char b[SERIAL_SIZE];
	if (RAND_bytes(b, sizeof(b)) != 1)
		return ssl_error(ctx, "cannot get random bytes");
	b[0] &= 0x7f;
	b[0] |= 0x01; /* never zero, never shorter than it looks */
	_cleanup_bn_ BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		return ssl_error(ctx, "cannot set the CA's serial number");
	return 0;
}

static int make_cert(struct ib_ctx *ctx, EVP_PKEY *key, time_t now, X509 **ret)
{
	_cleanup_x509_ X509 *x = X509_new();
	if (!x || !X509_set_version(x, 2))
		return ssl_error(ctx, "cannot make the CA");
	int r = set_serial(ctx, x);
	if (r < 0)
		return r;
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                                (const unsigned char *)"kubernetes", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), IB_CA_DAYS, 0, &now) ||
	    !X509_set_pubkey(x, key))
		return ssl_error(ctx, "cannot make the CA");
	if ((r = add_ext(ctx, x, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
	    (r = add_ext(ctx, x, NID_key_usage,
	                 "critical,digitalSignature,keyEncipherment,keyCertSign")) < 0 ||
	    (r = add_ext(ctx, x, NID_subject_key_identifier, "hash")) < 0)
		return r;
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		return ssl_error(ctx, "cannot sign the CA");
	*ret = TAKE_PTR(x);
	return 0;
}

int ib_ca_generate(struct ib_ctx *ctx, time_t now, struct ib_ca *ret)
{
	_cleanup_pkey_ EVP_PKEY *key = NULL;
	_cleanup_x509_ X509 *x = NULL;
	int r = make_key(ctx, &key);
	if (r == 0)
		r = make_cert(ctx, key, now, &x);
	if (r < 0)
		return r;
	_cleanup_bio_ BIO *cb = BIO_new(BIO_s_mem());
	_cleanup_bio_ BIO *kb = BIO_new(BIO_s_mem());
	/* PKCS#8 ("PRIVATE KEY"): kubeadm reads it as well as the traditional form. */
	if (!cb || !kb || !PEM_write_bio_X509(cb, x) ||
	    !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL))
		return ssl_error(ctx, "cannot encode the CA");
	struct ib_ca ca = {0};
	r = spki_hash(ctx, x, ca.hash);
	if (r < 0)
		return r;
	ca.cert_pem = bio_text(cb);
	ca.key_pem = bio_text(kb);
	*ret = ca;
	return 0;
}

static int read_cert(struct ib_ctx *ctx, const char *what, const char *pem, X509 **ret)
{
	if (strlen(pem) > CA_PEM_MAX)
		return ib_error(ctx, IB_E_SPEC, "%s: not a PEM certificate", what);
	_cleanup_bio_ BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	if (!x) {
		ERR_clear_error();
		return ib_error(ctx, IB_E_SPEC, "%s: not a PEM certificate", what);
	}
	*ret = x;
	return 0;
}

int ib_ca_hash(struct ib_ctx *ctx, const char *cert_pem, char out[IB_CA_HASH_LEN + 1])
{
	_cleanup_x509_ X509 *x = NULL;
	int r = read_cert(ctx, "the CA certificate", cert_pem, &x);
	return r < 0 ? r : spki_hash(ctx, x, out);
}

int ib_ca_load(struct ib_ctx *ctx, const char *what, const char *cert_pem, const char *key_pem,
               struct ib_ca *ret)
{
	_cleanup_free_ char *cwhat = xasprintf("%s/ca.crt", what);
	_cleanup_free_ char *kwhat = xasprintf("%s/ca.key", what);
	_cleanup_x509_ X509 *x = NULL;
	int r = read_cert(ctx, cwhat, cert_pem, &x);
	if (r < 0)
		return r;
	if (X509_check_ca(x) != 1) {
		ERR_clear_error();
		return ib_error(ctx, IB_E_SPEC, "%s is not a CA certificate", cwhat);
	}
	_cleanup_bio_ BIO *b = BIO_new_mem_buf(key_pem, -1);
	_cleanup_pkey_ EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	if (!key) {
		ERR_clear_error();
		return ib_error(ctx, IB_E_SPEC, "%s: not an unencrypted PEM private key", kwhat);
	}
	if (X509_check_private_key(x, key) != 1) {
		ERR_clear_error();
		return ib_error(ctx, IB_E_SPEC, "%s does not belong to %s", kwhat, cwhat);
	}
	struct ib_ca ca = {0};
	r = spki_hash(ctx, x, ca.hash);
	if (r < 0)
		return r;
	ca.cert_pem = xstrdup(cert_pem);
	ca.key_pem = xstrdup(key_pem);
	*ret = ca;
	return 0;
}
