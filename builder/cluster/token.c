/* token.c: the bootstrap token and the certificate key, from OpenSSL's CSPRNG. */
#include "cluster/cluster.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

static const char token_alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
#define N_SYMBOLS 36
/* The largest multiple of 36 a byte can hold: bytes from it up would favour the first
 * symbols, so they are drawn again. */
#define REJECT_FROM (256 / N_SYMBOLS * N_SYMBOLS)

static int random_bytes(struct ib_ctx *ctx, unsigned char *b, size_t n)
{
	if (RAND_bytes(b, (int)n) != 1)
		return ib_error(ctx, IB_E_LIB, "cannot get random bytes from OpenSSL");
	return 0;
}

int ib_token_generate(struct ib_ctx *ctx, char out[IB_TOKEN_LEN + 1])
{
	unsigned char buf[64];
	size_t have = 0, used = 0;
	for (size_t i = 0; i < IB_TOKEN_LEN; i++) {
		if (i == 6) {
			out[i] = '.';
			continue;
		}
		for (;;) {
			if (used == have) {
				int r = random_bytes(ctx, buf, sizeof(buf));
				if (r < 0)
					return r;
				have = sizeof(buf);
				used = 0;
			}
			unsigned char c = buf[used++];
			if (c < REJECT_FROM) {
				out[i] = token_alphabet[c % N_SYMBOLS];
				break;
			}
		}
	}
	out[IB_TOKEN_LEN] = '\0';
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

static int all_in(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(set, s[i]))
			return 0;
	return 1;
}

int ib_token_valid(const char *s)
{
	return strlen(s) == IB_TOKEN_LEN && s[6] == '.' && all_in(s, 6, token_alphabet) &&
	       all_in(s + 7, 16, token_alphabet);
}

int ib_cert_key_generate(struct ib_ctx *ctx, char out[IB_CERT_KEY_LEN + 1])
{
	unsigned char b[IB_CERT_KEY_LEN / 2];
	int r = random_bytes(ctx, b, sizeof(b));
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	OPENSSL_cleanse(b, sizeof(b));
	return 0;
}

int ib_cert_key_valid(const char *s)
{
	return strlen(s) == IB_CERT_KEY_LEN && all_in(s, IB_CERT_KEY_LEN, "0123456789abcdef");
}
