/* hash.c: SHA-256 helpers on OpenSSL's EVP interface. */
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/evp.h>

void ib_sha256_init(struct ib_sha256 *h)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		abort();
	h->md = md;
}

void ib_sha256_update(struct ib_sha256 *h, const void *data, size_t len)
{
	if (EVP_DigestUpdate(h->md, data, len) != 1)
		abort();
}

void ib_sha256_field(struct ib_sha256 *h, const char *s)
{
	ib_sha256_update(h, s ? s : "", strlen(s ? s : "") + 1);
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

void ib_sha256_final_hex(struct ib_sha256 *h, char out[IB_SHA256_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(h->md, md, &n) != 1)
		abort();
	to_hex(md, n, out);
	ib_sha256_release(h);
}

void ib_sha256_release(struct ib_sha256 *h)
{
	EVP_MD_CTX_free(h->md);
	h->md = NULL;
}

void ib_sha256_hex(const void *data, size_t len, char out[IB_SHA256_HEX])
{
	struct ib_sha256 h;
	ib_sha256_init(&h);
	ib_sha256_update(&h, data, len);
	ib_sha256_final_hex(&h, out);
}

/* Sparse-aware: holes are hashed from a zero buffer instead of being read, which for a
 * mostly empty disk image saves the kernel copying gigabytes of zero pages. */
int ib_sha256_file_hex(struct ib_ctx *ctx, const char *path, char out[IB_SHA256_HEX])
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot stat '%s'", path);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	const size_t bufsz = 1 << 20;
	_cleanup_free_ char *buf = xmalloc(bufsz);
	_cleanup_free_ char *zeros = xcalloc(1, bufsz);
	struct ib_sha256 h;
	ib_sha256_init(&h);
	off_t pos = 0, size = st.st_size;
	while (pos < size) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		if (data < 0)
			data = errno == ENXIO ? size : pos; /* ENXIO: only a hole is left */
		while (pos < data) {
			size_t n = (size_t)(data - pos) < bufsz ? (size_t)(data - pos) : bufsz;
			ib_sha256_update(&h, zeros, n);
			pos += (off_t)n;
		}
		if (pos >= size)
			break;
		off_t hole = lseek(fd, pos, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		while (pos < hole) {
			size_t want = (size_t)(hole - pos) < bufsz ? (size_t)(hole - pos) : bufsz;
			ssize_t n = pread(fd, buf, want, pos);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				int e = n < 0 ? errno : EIO;
				ib_sha256_release(&h);
				return ib_error_errno(ctx, IB_E_IO, e, "cannot read '%s'", path);
			}
			ib_sha256_update(&h, buf, (size_t)n);
			pos += n;
		}
	}
	ib_sha256_final_hex(&h, out);
	return 0;
}

void ib_derive_bytes(const char *seed, const char *purpose, uint8_t out[16])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		abort();
	EVP_DigestUpdate(c, seed, strlen(seed) + 1);
	EVP_DigestUpdate(c, purpose, strlen(purpose) + 1);
	EVP_DigestFinal_ex(c, md, &n);
	EVP_MD_CTX_free(c);
	memcpy(out, md, 16);
}

void ib_uuid_format(uint8_t b[16], char out[37])
{
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}
