/* create.c: writing a signed bundle: hash the members, sign the manifest, write the tar. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "bundle.h"
#include "sign.h"
#include "util/hash.h"
#include "util/tmpreg.h"

#define CHUNK (1 << 20)

static int cmp_src(const void *a, const void *b)
{
	return strcmp(((const struct ib_bundle_src *)a)->path,
	              ((const struct ib_bundle_src *)b)->path);
}

static int add_member(struct ib_ctx *ctx, struct archive *a, const char *name, uint64_t size,
                      int exec, long long mtime)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, exec ? 0755 : 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, (time_t)mtime, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	int r = archive_write_header(a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK)
		return ib_error(ctx, IB_E_LIB, "cannot write bundle member '%s': %s", name,
		                archive_error_string(a));
	return 0;
}

static int add_data(struct ib_ctx *ctx, struct archive *a, const char *name, const void *data,
                    size_t len)
{
	if (len && archive_write_data(a, data, len) != (la_ssize_t)len)
		return ib_error(ctx, IB_E_LIB, "cannot write bundle member '%s': %s", name,
		                archive_error_string(a));
	return 0;
}

/* Copy src into the archive, checking it still has the size and digest the manifest says:
 * a file changed between hashing and writing would make a bundle that fails its own check. */
static int add_file(struct ib_ctx *ctx, struct archive *a, const struct ib_bundle_src *src,
                    const struct ib_bundle_entry *e, long long mtime, char *buf)
{
	_cleanup_close_ int fd = open(src->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", src->file);
	int r = add_member(ctx, a, e->path, e->size, e->exec, mtime);
	if (r < 0)
		return r;
	struct ib_sha256 h;
	ib_sha256_init(&h);
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", src->file);
			break;
		}
		if (n == 0)
			break;
		if (total + (uint64_t)n > e->size) {
			r = ib_error(ctx, IB_E_IO, "'%s' grew while it was being bundled",
			             src->file);
			break;
		}
		ib_sha256_update(&h, buf, (size_t)n);
		total += (uint64_t)n;
		r = add_data(ctx, a, e->path, buf, (size_t)n);
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
	if (r == 0 && (total != e->size || !streq(hex, e->sha256)))
		r = ib_error(ctx, IB_E_IO, "'%s' changed while it was being bundled", src->file);
	return r;
}

static int write_archive(struct ib_ctx *ctx, int fd, const char *what, const char *manifest,
                         const char *sig, const struct ib_bundle_create_opts *o,
                         const struct ib_bundle_manifest *m)
{
	struct archive *a = archive_write_new();
	if (!a)
		return ib_error(ctx, IB_E_LIB, "out of memory");
	int r = 0;
	/* pax_restricted: plain ustar headers unless a name or size needs more, and none of
	 * the per-run attributes (atime, ctime) full pax would add. */
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		r = ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", what, archive_error_string(a));
		archive_write_free(a);
		return r;
	}
	r = add_member(ctx, a, IB_BUNDLE_MANIFEST, strlen(manifest), 0, o->created);
	if (r == 0)
		r = add_data(ctx, a, IB_BUNDLE_MANIFEST, manifest, strlen(manifest));
	if (r == 0)
		r = add_member(ctx, a, IB_BUNDLE_SIGNATURE, strlen(sig), 0, o->created);
	if (r == 0)
		r = add_data(ctx, a, IB_BUNDLE_SIGNATURE, sig, strlen(sig));
	_cleanup_free_ char *buf = xmalloc(CHUNK);
	for (size_t i = 0; r == 0 && i < o->n_srcs; i++) {
		r = add_file(ctx, a, &o->srcs[i], &m->v[i], o->created, buf);
		ib_progress(ctx, "bundle", i + 1, o->n_srcs);
	}
	if (archive_write_close(a) != ARCHIVE_OK && r == 0)
		r = ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", what, archive_error_string(a));
	archive_write_free(a);
	return r;
}

int ib_bundle_create(struct ib_ctx *ctx, const struct ib_bundle_create_opts *o,
                     struct ib_bundle_manifest *ret_manifest)
{
	struct ib_bundle_manifest m = {0};
	struct strbuf text = STRBUF_INIT;
	_cleanup_free_ char *sig_text = NULL;
	_cleanup_free_ char *tmp = NULL;
	int r = 0;

	if (o->n_srcs > 1)
		qsort(o->srcs, o->n_srcs, sizeof(*o->srcs), cmp_src);
	m.tool = xasprintf("imgbuild %s", IMGBUILD_VERSION);
	m.created = o->created;
	r = ib_key_fingerprint(ctx, o->key, m.signer);
	for (size_t i = 0; r == 0 && o->roles && i < o->roles->n; i++)
		strv_push(&m.roles, o->roles->v[i]);
	m.v = xcalloc(o->n_srcs ? o->n_srcs : 1, sizeof(*m.v));
	for (size_t i = 0; r == 0 && i < o->n_srcs; i++) {
		const struct ib_bundle_src *s = &o->srcs[i];
		if (!ib_bundle_path_valid(s->path))
			r = ib_error(ctx, IB_E_SPEC, "'%s' cannot be a bundle member (from '%s')",
			             s->path, s->file);
		else if (i > 0 && streq(s->path, o->srcs[i - 1].path))
			r = ib_error(ctx, IB_E_SPEC, "bundle member '%s' given twice", s->path);
		if (r < 0)
			break;
		struct stat st;
		if (stat(s->file, &st) < 0) {
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot stat '%s'", s->file);
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			r = ib_error(ctx, IB_E_IO, "'%s' is not a regular file", s->file);
			break;
		}
		m.v[i].path = xstrdup(s->path);
		m.v[i].size = (uint64_t)st.st_size;
		m.v[i].exec = startswith(s->path, "project/") && (st.st_mode & 0100);
		m.n = i + 1;
		r = ib_sha256_file_hex(ctx, s->file, m.v[i].sha256);
		if (r == 0 && startswith(s->path, "cache/blobs/sha256/") &&
		    !streq(s->path + strlen("cache/blobs/sha256/"), m.v[i].sha256))
			r = ib_error(ctx, IB_E_VERIFY,
			             "cache entry '%s' is corrupted (it hashes to %s): run "
			             "'imgbuild cache verify'",
			             s->file, m.v[i].sha256);
	}
	if (r < 0)
		goto out;
	ib_bundle_manifest_format(&m, &text);
	unsigned char sig[IB_SIG_LEN];
	r = ib_sign(ctx, o->key, sb_str(&text), text.len, sig);
	if (r < 0)
		goto out;
	sig_text = ib_bundle_sig_format(sig);

	tmp = xasprintf("%s.tmp.%d", o->output, (int)getpid());
	ib_tmp_register(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", tmp);
	} else {
		r = write_archive(ctx, fd, o->output, sb_str(&text), sig_text, o, &m);
		if (r == 0 && fsync(fd) < 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot sync '%s'", tmp);
		close(fd);
		if (r == 0 && rename(tmp, o->output) < 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot rename '%s' to '%s'", tmp,
			                   o->output);
		if (r < 0)
			unlink(tmp);
	}
	ib_tmp_unregister(tmp);
out:
	sb_release(&text);
	if (r == 0 && ret_manifest)
		*ret_manifest = m;
	else
		ib_bundle_manifest_release(&m);
	return r;
}
