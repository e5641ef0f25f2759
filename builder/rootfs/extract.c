/* extract.c: unpack root filesystem and layer tarballs into a staging tree. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>

#include "rootfs.h"
#include "util/fs.h"
#include "util/strbuf.h"

#define MAX_SYMLINK_HOPS 40

/* Resolve rel inside root as the booted image would see it: symlinks in parent components
 * are followed, absolute targets restart at root, ".." stops at root. The last component is
 * not followed, so the entry replaces whatever is there. Caller frees *ret (relative). */
static int resolve_in_root(struct ib_ctx *ctx, const char *root, const char *rel, char **ret)
{
	struct strv todo = {0}; /* remaining components, reversed: last element is next */
	struct strv done = {0};
	int hops = 0, r = 0;

	{
		_cleanup_free_ char *copy = xstrdup(rel);
		struct strv fwd = {0};
		char *save = NULL;
		for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save))
			strv_push(&fwd, c);
		for (size_t i = fwd.n; i > 0; i--)
			strv_push(&todo, fwd.v[i - 1]);
		strv_release(&fwd);
	}

	while (todo.n > 0) {
		char *c = todo.v[--todo.n];
		todo.v[todo.n] = NULL;
		if (streq(c, ".")) {
			free(c);
			continue;
		}
		if (streq(c, "..")) {
			free(c);
			if (done.n > 0)
				free(done.v[--done.n]), done.v[done.n] = NULL;
			continue;
		}
		if (todo.n == 0) { /* the entry itself: never followed */
			strv_push_take(&done, c);
			break;
		}
		struct strbuf p = STRBUF_INIT;
		sb_adds(&p, root);
		for (size_t i = 0; i < done.n; i++)
			sb_addf(&p, "/%s", done.v[i]);
		sb_addf(&p, "/%s", c);
		struct stat st;
		if (lstat(p.buf, &st) == 0 && S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlink(p.buf, target, sizeof(target) - 1);
			sb_release(&p);
			if (n < 0 || ++hops > MAX_SYMLINK_HOPS) {
				r = ib_error(
				        ctx, IB_E_IO,
				        "cannot resolve '%s' inside the image: too many symlinks",
				        rel);
				free(c);
				break;
			}
			target[n] = '\0';
			free(c);
			if (target[0] == '/') {
				strv_release(&done);
			}
			struct strv fwd = {0};
			char *save = NULL;
			for (char *t = strtok_r(target, "/", &save); t;
			     t = strtok_r(NULL, "/", &save))
				strv_push(&fwd, t);
			for (size_t i = fwd.n; i > 0; i--)
				strv_push(&todo, fwd.v[i - 1]);
			strv_release(&fwd);
			continue;
		}
		sb_release(&p);
		strv_push_take(&done, c);
	}

	if (r == 0) {
		struct strbuf out = STRBUF_INIT;
		for (size_t i = 0; i < done.n; i++)
			sb_addf(&out, "%s%s", i ? "/" : "", done.v[i]);
		*ret = sb_take(&out);
	}
	strv_release(&todo);
	strv_release(&done);
	return r;
}

static int copy_data(struct archive *in, struct archive *out)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	for (;;) {
		int r = archive_read_data_block(in, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return ARCHIVE_OK;
		if (r < ARCHIVE_OK)
			return r;
		if (archive_write_data_block(out, buf, size, off) < ARCHIVE_OK)
			return ARCHIVE_FATAL;
	}
}

int ib_tree_extract(struct ib_ctx *ctx, const char *tar, const char *tree, unsigned flags)
{
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	int r = 0;
	int xflags = ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
	             ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
	if (flags & IB_EXTRACT_CONFINE)
		xflags |= ARCHIVE_EXTRACT_UNLINK;

	archive_read_support_format_tar(in);
	archive_read_support_filter_all(in);
	archive_write_disk_set_options(out, xflags);
	/* Owners are numeric in our tarballs: never map through the host's passwd. */
	if (archive_read_open_filename(in, tar, 1 << 20) != ARCHIVE_OK) {
		r = ib_error(ctx, IB_E_IO, "cannot read '%s': %s", tar, archive_error_string(in));
		goto out;
	}
	uint64_t n = 0;
	long long size = ib_file_size(tar);
	uint64_t total = size > 0 ? (uint64_t)size : 0;
	for (;;) {
		struct archive_entry *e;
		int ar = archive_read_next_header(in, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			r = ib_error(ctx, IB_E_IO, "cannot read '%s': %s", tar,
			             archive_error_string(in));
			goto out;
		}
		if (ib_interrupted) {
			r = ib_error(ctx, IB_E_INTERRUPTED, "interrupted");
			goto out;
		}
		const char *raw = archive_entry_pathname(e);
		if (!raw)
			raw = "";
		while (raw[0] == '.' && raw[1] == '/')
			raw += 2;
		while (raw[0] == '/')
			raw++;
		/* A copy: the entry's own string is freed when its path is rewritten below, and
		 * the error messages after that name it. */
		_cleanup_free_ char *name = xstrdup(raw);
		if (!*name || streq(name, "."))
			continue; /* the tree root itself keeps the staging directory's mode */
		if ((flags & IB_EXTRACT_NO_DEVICES) && (archive_entry_filetype(e) == AE_IFCHR ||
		                                        archive_entry_filetype(e) == AE_IFBLK)) {
			ib_log(ctx, IB_LOG_DEBUG, "not creating device node /%s (user namespace)",
			       name);
			continue;
		}
		_cleanup_free_ char *rel = NULL;
		if (flags & IB_EXTRACT_CONFINE) {
			r = resolve_in_root(ctx, tree, name, &rel);
			if (r < 0)
				goto out;
		} else {
			rel = xstrdup(name);
		}
		_cleanup_free_ char *full = ib_path_join(tree, rel);
		archive_entry_copy_pathname(e, full);
		const char *hl = archive_entry_hardlink(e);
		if (hl) {
			while (hl[0] == '.' && hl[1] == '/')
				hl += 2;
			/* The target too, as the image sees it: left as written, libarchive unlinks
			 * the tree's own symlinks met on its way (/var/run -> /run) and then finds
			 * no target; a symlink out of the tree stays out of reach either way. */
			_cleanup_free_ char *hrel = NULL;
			if (flags & IB_EXTRACT_CONFINE) {
				r = resolve_in_root(ctx, tree, hl, &hrel);
				if (r < 0)
					goto out;
				hl = hrel;
			}
			_cleanup_free_ char *hfull = ib_path_join(tree, hl);
			archive_entry_copy_hardlink(e, hfull);
		}
		ar = archive_write_header(out, e);
		if (ar < ARCHIVE_WARN) {
			r = ib_error(ctx, IB_E_IO, "cannot extract '%s' from '%s': %s", name, tar,
			             archive_error_string(out));
			goto out;
		}
		if (archive_entry_size(e) > 0 && copy_data(in, out) != ARCHIVE_OK) {
			r = ib_error(ctx, IB_E_IO, "cannot extract '%s' from '%s': %s", name, tar,
			             archive_error_string(out));
			goto out;
		}
		if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
			r = ib_error(ctx, IB_E_IO, "cannot extract '%s': %s", name,
			             archive_error_string(out));
			goto out;
		}
		if ((++n & 1023) == 0)
			ib_progress(ctx, "rootfs", (uint64_t)archive_filter_bytes(in, -1), total);
	}
	if (archive_write_close(out) != ARCHIVE_OK)
		r = ib_error(ctx, IB_E_IO, "cannot finish extracting '%s': %s", tar,
		             archive_error_string(out));
out:
	archive_read_free(in);
	archive_write_free(out);
	return r;
}
