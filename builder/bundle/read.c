/* read.c: checking a bundle against a public key, staging its members, and installing them
 * into the cache. Nothing is trusted before the signature checks out, and nothing reaches
 * the cache before every member did. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "bundle.h"
#include "sign.h"
#include "util/fs.h"
#include "util/hash.h"

#define CHUNK   (1 << 20)
#define SIG_MAX 256

/* The next header, which must be a regular file: 1 and *ret, 0 at the end, or an error. */
static int next_member(struct ib_ctx *ctx, struct archive *a, const char *file,
                       struct archive_entry **ret)
{
	int r = archive_read_next_header(a, ret);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK)
		return ib_error(ctx, IB_E_VERIFY, "bundle '%s' is not a readable archive: %s", file,
		                archive_error_string(a));
	if (archive_entry_filetype(*ret) != AE_IFREG)
		return ib_error(ctx, IB_E_VERIFY, "bundle '%s': member '%s' is not a regular file",
		                file, archive_entry_pathname(*ret));
	return 1;
}

/* A small member (manifest, signature) read whole. Caller frees *ret. */
static int read_small(struct ib_ctx *ctx, struct archive *a, const char *file,
                      struct archive_entry *e, size_t max, char **ret, size_t *ret_len)
{
	la_int64_t size = archive_entry_size(e);
	if (size < 0 || (uint64_t)size > max)
		return ib_error(ctx, IB_E_VERIFY, "bundle '%s': member '%s' is too large", file,
		                archive_entry_pathname(e));
	char *buf = xmalloc((size_t)size + 1);
	la_ssize_t n = size ? archive_read_data(a, buf, (size_t)size) : 0;
	if (n != (la_ssize_t)size) {
		free(buf);
		return ib_error(ctx, IB_E_VERIFY, "bundle '%s': member '%s' is truncated", file,
		                archive_entry_pathname(e));
	}
	buf[size] = '\0';
	*ret = buf;
	*ret_len = (size_t)size;
	return 0;
}

/* The name is one the manifest accepted, so the path stays under stage. */
static int open_staged(struct ib_ctx *ctx, const char *stage, const char *name, int exec)
{
	_cleanup_free_ char *path = ib_path_join(stage, name);
	_cleanup_free_ char *dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	int r = ib_mkdir_p(ctx, dir, 0755);
	if (r < 0)
		return r;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", path);
	/* Not through open's mode: the umask must not change what the manifest says. */
	if (fchmod(fd, exec ? 0755 : 0644) < 0) {
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot set the mode of '%s'", path);
		close(fd);
		return r;
	}
	return fd;
}

/* Stream one member: hash it (and write it to fd when fd >= 0), then compare. */
static int check_member(struct ib_ctx *ctx, struct archive *a, const char *file,
                        const struct ib_bundle_entry *want, int fd, char *buf)
{
	struct ib_sha256 h;
	ib_sha256_init(&h);
	uint64_t total = 0;
	int r = 0;
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, CHUNK);
		if (n < 0) {
			r = ib_error(ctx, IB_E_VERIFY, "bundle '%s': member '%s': %s", file,
			             want->path, archive_error_string(a));
			break;
		}
		if (n == 0)
			break;
		ib_sha256_update(&h, buf, (size_t)n);
		total += (uint64_t)n;
		for (size_t off = 0; fd >= 0 && off < (size_t)n;) {
			ssize_t w = write(fd, buf + off, (size_t)n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				r = ib_error_errno(ctx, IB_E_IO, errno, "cannot stage '%s'",
				                   want->path);
				break;
			}
			off += (size_t)w;
		}
		if (r < 0)
			break;
		if (ib_interrupted) {
			r = ib_error(ctx, IB_E_INTERRUPTED, "interrupted");
			break;
		}
	}
	char hex[IB_SHA256_HEX];
	ib_sha256_final_hex(&h, hex);
	ib_sha256_release(&h);
	if (r == 0 && total != want->size)
		r = ib_error(ctx, IB_E_VERIFY,
		             "bundle '%s': member '%s' has %llu bytes, the manifest says %llu",
		             file, want->path, (unsigned long long)total,
		             (unsigned long long)want->size);
	if (r == 0 && !streq(hex, want->sha256))
		r = ib_error(ctx, IB_E_VERIFY,
		             "bundle '%s': member '%s': sha256 mismatch: the manifest says %s, its "
		             "bytes hash to %s",
		             file, want->path, want->sha256, hex);
	return r;
}

static int check_signature(struct ib_ctx *ctx, const char *file, EVP_PKEY *pub,
                           const char *manifest, size_t len, const char *sig_text, size_t sig_len)
{
	unsigned char sig[IB_SIG_LEN];
	int r = ib_bundle_sig_parse(ctx, sig_text, sig_len, sig);
	if (r < 0)
		return r;
	r = ib_sign_check(ctx, pub, manifest, len, sig);
	if (r < 0)
		return r;
	if (r == 0) {
		char fp[IB_SHA256_HEX];
		r = ib_key_fingerprint(ctx, pub, fp);
		if (r < 0)
			return r;
		/* The signer line is unauthenticated here: say what it claims, as a hint. */
		const char *s = strstr(manifest, "\nsigner ");
		return ib_error(ctx, IB_E_VERIFY,
		                "bundle '%s': the manifest's signature does not match the key "
		                "%.16s (the manifest claims signer %.16s): rejected",
		                file, fp, s ? s + 8 : "(none)");
	}
	return 0;
}

int ib_bundle_read(struct ib_ctx *ctx, const char *file, EVP_PKEY *pub, const char *cache_stage,
                   const char *files_stage, struct ib_bundle_manifest *ret)
{
	struct ib_bundle_manifest m = {0};
	_cleanup_free_ char *manifest = NULL, *sig = NULL, *buf = NULL;
	size_t mlen = 0, slen = 0, i = 0;
	struct archive_entry *e = NULL;
	int r;

	struct archive *a = archive_read_new();
	if (!a)
		return ib_error(ctx, IB_E_LIB, "out of memory");
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, file, 1 << 16) != ARCHIVE_OK) {
		r = ib_error(ctx, IB_E_VERIFY, "cannot read bundle '%s': %s", file,
		             archive_error_string(a));
		goto out;
	}
	/* The manifest and its signature come first, so that nothing else is read before the
	 * key has vouched for what it should be. */
	r = next_member(ctx, a, file, &e);
	if (r == 1 && !streq(archive_entry_pathname(e), IB_BUNDLE_MANIFEST))
		r = ib_error(ctx, IB_E_VERIFY, "bundle '%s': the first member is not %s", file,
		             IB_BUNDLE_MANIFEST);
	else if (r == 0)
		r = ib_error(ctx, IB_E_VERIFY, "bundle '%s' is empty", file);
	if (r == 1)
		r = read_small(ctx, a, file, e, IB_BUNDLE_MANIFEST_MAX, &manifest, &mlen);
	if (r == 0)
		r = next_member(ctx, a, file, &e);
	if (r == 1 && !streq(archive_entry_pathname(e), IB_BUNDLE_SIGNATURE))
		r = ib_error(ctx, IB_E_VERIFY, "bundle '%s': the second member is not %s", file,
		             IB_BUNDLE_SIGNATURE);
	else if (r == 0)
		r = ib_error(ctx, IB_E_VERIFY, "bundle '%s' has no signature", file);
	if (r == 1)
		r = read_small(ctx, a, file, e, SIG_MAX, &sig, &slen);
	if (r == 0)
		r = check_signature(ctx, file, pub, manifest, mlen, sig, slen);
	if (r == 0)
		r = ib_bundle_manifest_parse(ctx, manifest, mlen, &m);
	if (r < 0)
		goto out;

	buf = xmalloc(CHUNK);
	/* Members come in the manifest's order: anything else is a missing or extra one. */
	while ((r = next_member(ctx, a, file, &e)) == 1) {
		const char *name = archive_entry_pathname(e);
		if (!name)
			name = "";
		if (i >= m.n || !streq(name, m.v[i].path)) {
			const struct ib_bundle_entry *f = ib_bundle_manifest_find(&m, name);
			if (i < m.n && f && f > &m.v[i])
				r = ib_error(ctx, IB_E_VERIFY,
				             "bundle '%s': member '%s' is missing: rejected", file,
				             m.v[i].path);
			else
				r = ib_error(
				        ctx, IB_E_VERIFY,
				        "bundle '%s': member '%s' is not in the manifest (or out "
				        "of order): rejected",
				        file, name);
			break;
		}
		const char *stage = startswith(name, "cache/") ? cache_stage : files_stage;
		int fd = -1;
		if (stage) {
			fd = open_staged(ctx, stage, name, m.v[i].exec);
			if (fd < 0) {
				r = fd;
				break;
			}
		}
		r = check_member(ctx, a, file, &m.v[i], fd, buf);
		if (fd >= 0)
			close(fd);
		if (r < 0)
			break;
		i++;
		ib_progress(ctx, "verify", i, m.n);
	}
	if (r == 0 && i < m.n)
		r = ib_error(ctx, IB_E_VERIFY, "bundle '%s': member '%s' is missing: rejected",
		             file, m.v[i].path);
out:
	archive_read_free(a);
	if (r == 0)
		*ret = m;
	else
		ib_bundle_manifest_release(&m);
	return r;
}

int ib_bundle_install(struct ib_ctx *ctx, const struct ib_bundle_manifest *m,
                      const char *cache_stage, const struct ib_cas *cas, size_t *ret_new)
{
	size_t fresh = 0;
	for (size_t i = 0; i < m->n; i++) {
		const char *rel = startswith(m->v[i].path, "cache/") ? m->v[i].path + 6 : NULL;
		if (!rel)
			continue;
		_cleanup_free_ char *from = ib_path_join(cache_stage, m->v[i].path);
		_cleanup_free_ char *to = ib_path_join(cas->root, rel);
		if (startswith(rel, "blobs/")) {
			if (ib_exists(to))
				continue; /* same name, same bytes (the cache checks on use) */
			if (chmod(from, 0444) < 0)
				return ib_error_errno(ctx, IB_E_IO, errno, "cannot chmod '%s'",
				                      from);
			fresh++;
		} else {
			_cleanup_free_ char *dir = xstrdup(to);
			*strrchr(dir, '/') = '\0';
			int r = ib_mkdir_p(ctx, dir, 0755);
			if (r < 0)
				return r;
		}
		if (rename(from, to) < 0)
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot move '%s' to '%s'", from,
			                      to);
	}
	*ret_new = fresh;
	return 0;
}
