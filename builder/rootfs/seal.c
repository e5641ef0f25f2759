/* seal.c: strip per-machine identity and build leftovers from a staging tree. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "rootfs.h"
#include "util/fs.h"

/* Remove the entries of dir (not dir itself) whose names start with prefix ("" for all). */
static int clear_dir(struct ib_ctx *ctx, const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT
		               ? 0
		               : ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", dir);
	struct dirent *de;
	int r = 0;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (!startswith(de->d_name, prefix))
			continue;
		_cleanup_free_ char *p = ib_path_join(dir, de->d_name);
		r = ib_rm_rf(ctx, p);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

const char *const ib_seal_gone[] = {
        "var/lib/dbus/machine-id",       "var/lib/cloud",
        "var/lib/systemd/random-seed",   "var/cache/apt/pkgcache.bin",
        "var/cache/apt/srcpkgcache.bin", NULL,
};

const struct ib_seal_clear ib_seal_cleared[] = {
        {"etc/ssh", "ssh_host_"}, {"var/lib/apt/lists", ""}, {"tmp", ""},
        {"var/tmp", ""},          {"var/log/journal", ""},   {NULL, NULL},
};

int ib_tree_seal(struct ib_ctx *ctx, const char *tree)
{
	int r;
	_cleanup_free_ char *mid = ib_path_join(tree, "etc/machine-id");
	/* Empty, not missing: systemd then treats the first boot as first boot and writes a
	 * fresh id, while a missing file would break read-only roots. */
	_cleanup_close_ int fd =
	        open(mid, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot empty '%s'", mid);

	for (size_t i = 0; ib_seal_gone[i]; i++) {
		_cleanup_free_ char *p = ib_path_join(tree, ib_seal_gone[i]);
		r = ib_rm_rf(ctx, p);
		if (r < 0)
			return r;
	}

	for (size_t i = 0; ib_seal_cleared[i].dir; i++) {
		_cleanup_free_ char *p = ib_path_join(tree, ib_seal_cleared[i].dir);
		r = clear_dir(ctx, p, ib_seal_cleared[i].prefix);
		if (r < 0)
			return r;
	}
	return 0;
}
