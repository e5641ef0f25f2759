/* esp.c: a FAT32 EFI system partition written at its offset in the raw disk. */
#include "esp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "gpt.h"
#include "sbin.h"
#include "util/fs.h"
#include "util/proc.h"

void ib_esp_vol_id_format(uint32_t vol_id, char out[10])
{
	snprintf(out, 10, "%04X-%04X", (unsigned)(vol_id >> 16), (unsigned)(vol_id & 0xffff));
}

/* Set atime and mtime of path and, for a directory, of everything below it. */
static int set_times(struct ib_ctx *ctx, const char *path, time_t t, int depth)
{
	struct stat st;
	if (depth > 16)
		return ib_error(ctx, IB_E_IO, "'%s' is nested too deep", path);
	if (lstat(path, &st) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot stat '%s'", path);
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		if (!d)
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", path);
		struct dirent *de;
		int r = 0;
		while (r == 0 && (de = readdir(d))) {
			if (streq(de->d_name, ".") || streq(de->d_name, ".."))
				continue;
			_cleanup_free_ char *child = ib_path_join(path, de->d_name);
			r = set_times(ctx, child, t, depth + 1);
		}
		closedir(d);
		if (r < 0)
			return r;
	}
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot set the time of '%s'", path);
	return 0;
}

int ib_esp_make(struct ib_ctx *ctx, const char *raw, uint64_t start, uint64_t sectors,
                uint32_t vol_id, const char *src_dir, time_t mtime)
{
	int r = set_times(ctx, src_dir, mtime, 0);
	if (r < 0)
		return r;
	_cleanup_free_ char *volid = xasprintf("%08X", (unsigned)vol_id);
	_cleanup_free_ char *hidden = xasprintf("%llu", (unsigned long long)start);
	_cleanup_free_ char *offset = xasprintf("--offset=%llu", (unsigned long long)start);
	_cleanup_free_ char *kib =
	        xasprintf("%llu", (unsigned long long)(sectors * IB_SECTOR / 1024));
	_cleanup_free_ char *tool = ib_sbin_tool("mkfs.fat");
	const char *const mkfs[] = {tool,          "-F",      "32", "-S",  "512", "-s",  "1",
	                            "--invariant", "--mbr=n", "-i", volid, "-n",  "EFI", "-h",
	                            hidden,        offset,    raw,  kib,   NULL};
	if ((r = ib_run(ctx, mkfs, NULL, 0, NULL)) < 0)
		return r;

	/* mtools reads the image at a byte offset; TZ fixes the local time FAT stores. */
	_cleanup_free_ char *img =
	        xasprintf("%s@@%llu", raw, (unsigned long long)(start * IB_SECTOR));
	_cleanup_free_ char *src = ib_path_join(src_dir, "EFI");
	const char *const env[] = {"MTOOLS_SKIP_CHECK=1", "TZ=UTC", NULL};
	const char *const mcopy[] = {"mcopy", "-s", "-m", "-Q", "-i", img, src, "::", NULL};
	return ib_run(ctx, mcopy, env, 0, NULL);
}
