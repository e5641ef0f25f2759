/* grub_early.c: the configuration embedded in both GRUB images. */
#include "grub.h"

#include "util/fs.h"

int ib_grub_early_cfg(struct ib_ctx *ctx, const char *dir, const char *root_fs_uuid,
                      char **ret_path)
{
	_cleanup_free_ char *path = ib_path_join(dir, "early.cfg");
	_cleanup_free_ char *text = xasprintf("search --no-floppy --fs-uuid --set=root %s\n"
	                                      "set prefix=($root)/boot/grub\n",
	                                      root_fs_uuid);
	int r = ib_write_file_atomic(ctx, path, text, strlen(text), 0644);
	if (r < 0)
		return r;
	*ret_path = TAKE_PTR(path);
	return 0;
}
