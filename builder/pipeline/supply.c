/* supply.c: fetch a role's artifacts and images into the cache and stage them for its layer. */
#include "supply.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "oci/oci.h"
#include "util/fs.h"
#include "util/strbuf.h"

void ib_supply_release(struct ib_supply *s)
{
	for (size_t i = 0; i < s->n_files; i++) {
		free(s->files[i].source);
		free(s->files[i].dest);
		free(s->files[i].owner);
	}
	free(s->files);
	free(s->artifacts);
	for (size_t i = 0; i < s->n_images; i++)
		free(s->images[i].ref);
	free(s->images);
	memset(s, 0, sizeof(*s));
}

static void add_file(struct ib_supply *s, char *source, const char *dest, mode_t mode,
                     const struct ib_pos *pos)
{
	s->files = xrealloc(s->files, (s->n_files + 1) * sizeof(*s->files));
	struct ib_file_spec *f = &s->files[s->n_files++];
	memset(f, 0, sizeof(*f));
	f->source = source;
	f->dest = xstrdup(dest);
	f->mode = mode;
	f->has_mode = 1;
	f->owner = xstrdup("root:root");
	if (pos)
		f->pos = *pos;
}

/* Archive member names come as "./bin/x", "bin/x" or "/bin/x": compare them cleaned. */
static const char *member_name(const char *p)
{
	for (;;) {
		if (p[0] == '.' && p[1] == '/')
			p += 2;
		else if (p[0] == '/')
			p++;
		else
			return p;
	}
}

static int write_entry(struct ib_ctx *ctx, struct archive *a, const char *out, const char *what)
{
	_cleanup_close_ int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", out);
	char buf[65536];
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
		if (n == 0)
			return 0;
		if (n < 0)
			return ib_error(ctx, IB_E_VERIFY, "%s: %s", what, archive_error_string(a));
		for (la_ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'",
				                      out);
			off += w;
		}
	}
}

/* Pull every requested member out of the archive at path into dir/<index>. */
static int extract_members(struct ib_ctx *ctx, const struct ib_artifact *art, const char *path,
                           const char *dir, struct ib_supply *s)
{
	struct archive *a = archive_read_new();
	int r = 0;
	size_t found = 0;
	int *seen = xcalloc(art->n_extract + 1, sizeof(int));
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_zip(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		r = ib_error(ctx, IB_E_VERIFY, "artifact '%s' is not a readable archive: %s",
		             art->name, archive_error_string(a));
		goto out;
	}
	struct archive_entry *e;
	int ar;
	while (found < art->n_extract && (ar = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (ar < ARCHIVE_WARN) {
			r = ib_error(ctx, IB_E_VERIFY, "artifact '%s': %s", art->name,
			             archive_error_string(a));
			goto out;
		}
		const char *name = member_name(archive_entry_pathname(e));
		for (size_t i = 0; i < art->n_extract; i++) {
			const struct ib_extract_spec *x = &art->extract[i];
			if (seen[i] || !streq(name, x->member))
				continue;
			if (archive_entry_filetype(e) != AE_IFREG) {
				r = ib_error(ctx, IB_E_SPEC,
				             "%s:%d:%d: member '%s' of artifact '%s' is not a "
				             "regular file",
				             x->pos.file, x->pos.line, x->pos.col, x->member,
				             art->name);
				goto out;
			}
			char *out = xasprintf("%s/%zu", dir, i);
			_cleanup_free_ char *what =
			        xasprintf("artifact '%s' member '%s'", art->name, x->member);
			r = write_entry(ctx, a, out, what);
			if (r < 0) {
				free(out);
				goto out;
			}
			mode_t mode = x->has_mode ? x->mode : (archive_entry_perm(e) & 07777);
			add_file(s, out, x->dest, mode, &x->pos);
			seen[i] = 1;
			found++;
			break;
		}
	}
	for (size_t i = 0; i < art->n_extract; i++) {
		if (!seen[i]) {
			const struct ib_extract_spec *x = &art->extract[i];
			r = ib_error(ctx, IB_E_SPEC, "%s:%d:%d: artifact '%s' has no member '%s'",
			             x->pos.file, x->pos.line, x->pos.col, art->name, x->member);
			break;
		}
	}
out:
	free(seen);
	archive_read_free(a);
	return r;
}

/* A file name for an image archive: the reference made safe, and short. */
static void image_file_name(const char *ref, const char *digest, char out[256])
{
	struct strbuf sb = STRBUF_INIT;
	for (const char *c = ref; *c && sb.len < 150; c++) {
		if (*c == '@')
			break;
		int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		         (*c >= '0' && *c <= '9') || *c == '.' || *c == '-';
		sb_addc(&sb, ok ? *c : '_');
	}
	const char *hex = startswith(digest, "sha256:") ? digest + 7 : digest;
	snprintf(out, 256, "%s_%.12s.tar", sb_str(&sb), hex);
	sb_release(&sb);
}

static int get_artifacts(struct ib_ctx *ctx, const struct ib_cas *cas,
                         const struct ib_fetch_opts *fo, const struct ib_resolved *role,
                         const char *stage_dir, struct ib_supply *s)
{
	size_t n = role->n_artifacts;
	if (n == 0)
		return 0;
	struct ib_fetch_item *items = xcalloc(n, sizeof(*items));
	char **whats = xcalloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		const struct ib_artifact *a = role->artifacts[i];
		whats[i] = xasprintf("artifact '%s'", a->name);
		items[i].url = a->url;
		items[i].sha256 = a->sha256;
		items[i].checksum_url = a->checksum_url;
		items[i].what = whats[i];
	}
	int r = ib_fetch_all(ctx, cas, fo, items, n);
	s->artifacts = xcalloc(n, sizeof(*s->artifacts));
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct ib_artifact *a = role->artifacts[i];
		s->artifacts[s->n_artifacts].spec = a;
		memcpy(s->artifacts[s->n_artifacts].sha256, items[i].digest, 65);
		s->n_artifacts++;
		if (!stage_dir)
			continue;
		if (a->dest) {
			add_file(s, xstrdup(items[i].path), a->dest, a->mode, &a->pos);
			continue;
		}
		_cleanup_free_ char *dir = xasprintf("%s/artifacts/%s", stage_dir, a->name);
		r = ib_mkdir_p(ctx, dir, 0755);
		if (r == 0)
			r = extract_members(ctx, a, items[i].path, dir, s);
	}
	for (size_t i = 0; i < n; i++) {
		ib_fetch_item_release(&items[i]);
		free(whats[i]);
	}
	free(items);
	free(whats);
	return r;
}

static int get_images(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *fo,
                      const struct ib_resolved *role, const char *stage_dir, struct ib_supply *s)
{
	size_t n = role->images.n;
	if (n == 0)
		return 0;
	int r = 0;
	_cleanup_free_ char *dir = stage_dir ? xasprintf("%s/images", stage_dir) : NULL;
	if (dir && (r = ib_mkdir_p(ctx, dir, 0755)) < 0)
		return r;
	s->images = xcalloc(n, sizeof(*s->images));
	struct strbuf index = STRBUF_INIT;
	sb_adds(&index, "# reference\tmanifest digest\tarchive (written by imgbuild)\n");
	/* Offline, every missing image is named, not just the first. */
	struct strbuf missing = STRBUF_INIT;
	int first_err = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct ib_oci_ref ref;
		struct ib_oci_image img = {0};
		r = ib_oci_ref_parse(ctx, role->images.v[i], &ref);
		if (r < 0)
			break;
		struct ib_ctx one;
		ib_ctx_init_child(&one, ctx, ctx->label);
		r = ib_oci_pull(&one, cas, fo, &ref, &img);
		if (r < 0 && fo->offline) {
			sb_addf(&missing, "%s%s", missing.len ? "; " : "", one.err);
			if (!first_err)
				first_err = r;
			r = 0;
			ib_oci_ref_release(&ref);
			continue;
		}
		if (r < 0)
			ib_error_propagate(ctx, &one);
		if (r == 0) {
			struct ib_supplied_image *si = &s->images[s->n_images++];
			si->ref = xstrdup(role->images.v[i]);
			snprintf(si->manifest_digest, sizeof(si->manifest_digest), "%s",
			         img.manifest_digest);
			image_file_name(role->images.v[i], img.manifest_digest, si->file);
			sb_addf(&index, "%s\t%s\t%s\n", si->ref, si->manifest_digest, si->file);
			if (dir) {
				char *out = xasprintf("%s/%s", dir, si->file);
				r = ib_oci_archive_write(ctx, cas, &ref, &img, out);
				_cleanup_free_ char *dest =
				        xasprintf(IB_IMAGES_DIR "/%s", si->file);
				if (r == 0)
					add_file(s, out, dest, 0644, NULL);
				else
					free(out);
			}
		}
		ib_oci_image_release(&img);
		ib_oci_ref_release(&ref);
	}
	if (r == 0 && first_err)
		r = ib_error(ctx, (ib_code)-first_err, "%s", sb_str(&missing));
	sb_release(&missing);
	if (r == 0 && dir) {
		char *path = xasprintf("%s/index.tsv", dir);
		r = ib_write_file_atomic(ctx, path, index.buf, index.len, 0644);
		if (r == 0)
			add_file(s, path, IB_IMAGES_DIR "/index.tsv", 0644, NULL);
		else
			free(path);
	}
	sb_release(&index);
	return r;
}

int ib_supply_get(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *fo,
                  const struct ib_resolved *role, const char *stage_dir, struct ib_supply *ret)
{
	struct ib_supply s = {0};
	struct ib_ctx arts, imgs;
	ib_ctx_init_child(&arts, ctx, ctx->label);
	ib_ctx_init_child(&imgs, ctx, ctx->label);
	int r = get_artifacts(&arts, cas, fo, role, stage_dir, &s);
	/* Offline, go on to the images so that one error lists everything missing. */
	int ri = (r == 0 || fo->offline) ? get_images(&imgs, cas, fo, role, stage_dir, &s) : 0;
	if (r < 0 && ri < 0)
		r = ib_error(ctx, arts.err_code, "%s; %s", arts.err, imgs.err);
	else if (r < 0)
		ib_error_propagate(ctx, &arts);
	else if (ri < 0) {
		ib_error_propagate(ctx, &imgs);
		r = ri;
	}
	if (r < 0) {
		ib_supply_release(&s);
		return r;
	}
	*ret = s;
	return 0;
}

struct ib_resolved *ib_supply_merge(const struct ib_resolved *role, const struct ib_supply *s)
{
	struct ib_resolved *copy = xmalloc(sizeof(*copy));
	*copy = *role;
	copy->files = xcalloc(role->n_files + s->n_files + 1, sizeof(*copy->files));
	for (size_t i = 0; i < role->n_files; i++)
		copy->files[i] = role->files[i];
	for (size_t i = 0; i < s->n_files; i++)
		copy->files[role->n_files + i] = &s->files[i];
	copy->n_files = role->n_files + s->n_files;
	return copy;
}
