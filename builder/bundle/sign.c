/* sign.c: Ed25519 key generation, loading, signing and checking with OpenSSL's EVP API. */
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/hash.h"
#include "util/tmpreg.h"

#define KEY_FILE_MAX 16384

/* Record OpenSSL's first queued error after what, and clear the queue. */
static int ssl_error(struct ib_ctx *ctx, const char *what)
{
	char buf[256] = "unknown error";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return ib_error(ctx, IB_E_LIB, "%s: %s", what, buf);
}

/* Write text to a fresh temporary name beside path, then link it to path: link(2) fails
 * with EEXIST rather than replace, which is what "never overwrite a key" needs. */
static int write_new(struct ib_ctx *ctx, const char *path, const char *text, size_t len,
                     mode_t mode)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	ib_tmp_register(tmp);
	int r = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", tmp);
		goto out;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'", tmp);
			break;
		}
		off += (size_t)n;
	}
	/* The umask must not widen or narrow what a key file's mode says. */
	if (r == 0 && fchmod(fd, mode) < 0)
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot chmod '%s'", tmp);
	if (r == 0 && fsync(fd) < 0)
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot sync '%s'", tmp);
	close(fd);
	if (r == 0 && link(tmp, path) < 0) {
		if (errno == EEXIST)
			r = ib_error(ctx, IB_E_USAGE, "'%s' exists: refusing to overwrite a key",
			             path);
		else
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", path);
	}
	unlink(tmp);
out:
	ib_tmp_unregister(tmp);
	return r;
}

/* PEM text of a key from one of OpenSSL's writers. Caller frees. */
static char *pem_text(EVP_PKEY *key, int priv, size_t *ret_len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return NULL;
	int ok = priv ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
	              : PEM_write_bio_PUBKEY(bio, key);
	char *text = NULL;
	if (ok) {
		char *p;
		long n = BIO_get_mem_data(bio, &p);
		text = xstrndup(p, (size_t)n);
		*ret_len = (size_t)n;
	}
	BIO_free(bio);
	return text;
}

int ib_key_generate(struct ib_ctx *ctx, const char *prefix)
{
	_cleanup_free_ char *priv_path = xasprintf("%s.key", prefix);
	_cleanup_free_ char *pub_path = xasprintf("%s.pub", prefix);
	/* Checked first too, so that an existing public key does not get a new private one. */
	if (ib_exists(priv_path) || ib_exists(pub_path))
		return ib_error(ctx, IB_E_USAGE, "'%s' exists: refusing to overwrite a key",
		                ib_exists(priv_path) ? priv_path : pub_path);
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!key)
		return ssl_error(ctx, "cannot generate an Ed25519 key");
	size_t priv_len = 0, pub_len = 0;
	_cleanup_free_ char *priv = pem_text(key, 1, &priv_len);
	_cleanup_free_ char *pub = pem_text(key, 0, &pub_len);
	EVP_PKEY_free(key);
	if (!priv || !pub)
		return ssl_error(ctx, "cannot encode the key as PEM");
	int r = write_new(ctx, priv_path, priv, priv_len, 0600);
	if (r == 0) {
		r = write_new(ctx, pub_path, pub, pub_len, 0644);
		if (r < 0)
			unlink(priv_path); /* a private key without its public half is no pair */
	}
	OPENSSL_cleanse(priv, priv_len);
	return r;
}

static int load_key(struct ib_ctx *ctx, const char *path, int priv, EVP_PKEY **ret)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = ib_read_file(ctx, path, KEY_FILE_MAX, &text, &len);
	if (r < 0)
		return r;
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	if (!bio)
		return ssl_error(ctx, "out of memory");
	EVP_PKEY *key = priv ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
	                     : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (priv)
		OPENSSL_cleanse(text, len);
	ERR_clear_error();
	if (!key)
		return ib_error(ctx, IB_E_SPEC, "%s: not a PEM %s key", path,
		                priv ? "private (PKCS#8)" : "public (SubjectPublicKeyInfo)");
	if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(key);
		return ib_error(ctx, IB_E_SPEC, "%s: not an Ed25519 key", path);
	}
	*ret = key;
	return 0;
}

int ib_key_load_private(struct ib_ctx *ctx, const char *path, EVP_PKEY **ret)
{
	return load_key(ctx, path, 1, ret);
}

int ib_key_load_public(struct ib_ctx *ctx, const char *path, EVP_PKEY **ret)
{
	return load_key(ctx, path, 0, ret);
}

int ib_key_fingerprint(struct ib_ctx *ctx, EVP_PKEY *key, char out[65])
{
	unsigned char raw[32];
	size_t len = sizeof(raw);
	if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof(raw))
		return ssl_error(ctx, "cannot read the raw public key");
	ib_sha256_hex(raw, len, out);
	return 0;
}

int ib_sign(struct ib_ctx *ctx, EVP_PKEY *priv, const void *data, size_t len,
            unsigned char sig[IB_SIG_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t n = IB_SIG_LEN;
	/* Ed25519 is "pure": no digest is named, and the message goes in one call. */
	int ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, priv) == 1 &&
	         EVP_DigestSign(md, sig, &n, data, len) == 1 && n == IB_SIG_LEN;
	EVP_MD_CTX_free(md);
	return ok ? 0 : ssl_error(ctx, "cannot sign");
}

int ib_sign_check(struct ib_ctx *ctx, EVP_PKEY *pub, const void *data, size_t len,
                  const unsigned char sig[IB_SIG_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestVerifyInit(md, NULL, NULL, NULL, pub) != 1) {
		EVP_MD_CTX_free(md);
		return ssl_error(ctx, "cannot set up signature checking");
	}
	int v = EVP_DigestVerify(md, sig, IB_SIG_LEN, data, len);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return v == 1;
}
