/* bootcfg.c: find the tree's kernel and write its fstab and grub.cfg. */
#include "bootcfg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/strbuf.h"

#define CMDLINE_MAX 1024

int ib_bootcfg_find_kernel(struct ib_ctx *ctx, const char *tree, struct ib_disk_layout *layout)
{
	_cleanup_free_ char *boot = ib_path_join(tree, "boot");
	DIR *d = opendir(boot);
	if (!d) {
		if (errno == ENOENT)
			return ib_error(ctx, IB_E_SPEC, "no kernel in '%s': it has no /boot", tree);
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", boot);
	}
	_cleanup_free_ char *best = NULL;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *ver = de->d_name + strlen("vmlinuz-");
		if (!startswith(de->d_name, "vmlinuz-") || !*ver)
			continue;
		/* Leftovers of package upgrades are not kernels to boot. */
		if (strstr(ver, ".dpkg-") || endswith(ver, ".bak") || endswith(ver, ".old"))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (!best || strverscmp(ver, best) > 0) {
			free(best);
			best = xstrdup(ver);
		}
	}
	closedir(d);
	if (!best)
		return ib_error(ctx, IB_E_SPEC, "no kernel in '%s': no /boot/vmlinuz-* file", tree);
	for (const char *p = best; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-_~",
		            *p))
			return ib_error(ctx, IB_E_SPEC,
			                "kernel version '%s' has characters grub.cfg cannot carry",
			                best);

	_cleanup_free_ char *initrd = xasprintf("%s/initrd.img-%s", boot, best);
	struct stat st;
	if (stat(initrd, &st) < 0 || !S_ISREG(st.st_mode))
		return ib_error(ctx, IB_E_SPEC,
		                "kernel '/boot/vmlinuz-%s' in '%s' has no /boot/initrd.img-%s",
		                best, tree, best);
	int n1 = snprintf(layout->kernel, sizeof(layout->kernel), "/boot/vmlinuz-%s", best);
	int n2 = snprintf(layout->initrd, sizeof(layout->initrd), "/boot/initrd.img-%s", best);
	if (n1 < 0 || (size_t)n1 >= sizeof(layout->kernel) || n2 < 0 ||
	    (size_t)n2 >= sizeof(layout->initrd))
		return ib_error(ctx, IB_E_SPEC, "kernel version '%s' is too long", best);
	return 0;
}

int ib_bootcfg_check_cmdline(struct ib_ctx *ctx, const char *extra)
{
	if (!extra)
		return 0;
	if (strlen(extra) > CMDLINE_MAX)
		return ib_error(ctx, IB_E_SPEC, "extra kernel command line is longer than %d bytes",
		                CMDLINE_MAX);
	for (const char *p = extra; *p; p++) {
		unsigned char c = (unsigned char)*p;
		/* GRUB's script parser would interpret these; keep arguments literal. */
		if (c < 0x20 || c > 0x7e || strchr("\"'\\$;&|<>{}`#", c))
			return ib_error(ctx, IB_E_SPEC,
			                "extra kernel command line '%s' contains '%c', which "
			                "grub.cfg cannot carry",
			                extra, c >= 0x20 && c <= 0x7e ? c : '?');
	}
	return 0;
}

static int write_config(struct ib_ctx *ctx, const char *tree, const char *rel,
                        const struct strbuf *sb, time_t mtime)
{
	_cleanup_free_ char *path = ib_path_join(tree, rel);
	int r = ib_write_file_atomic(ctx, path, sb_str(sb), sb->len, 0644);
	if (r < 0)
		return r;
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot set the time of '%s'", path);
	return 0;
}

int ib_bootcfg_write(struct ib_ctx *ctx, const char *tree, const struct ib_disk_layout *layout,
                     const char *cmdline_extra, time_t mtime)
{
	int r = ib_bootcfg_check_cmdline(ctx, cmdline_extra);
	if (r < 0)
		return r;
	static const char *const dirs[] = {"etc", "boot/efi", "boot/grub"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		_cleanup_free_ char *d = ib_path_join(tree, dirs[i]);
		if ((r = ib_mkdir_p(ctx, d, 0755)) < 0)
			return r;
	}

	struct strbuf fstab = STRBUF_INIT;
	sb_adds(&fstab, "# /etc/fstab: written by imgbuild\n");
	sb_addf(&fstab, "UUID=%s / ext4 rw,discard,errors=remount-ro 0 1\n", layout->root_fs_uuid);
	sb_addf(&fstab, "UUID=%s /boot/efi vfat umask=0077,nofail 0 2\n", layout->esp_vol_id);
	r = write_config(ctx, tree, "etc/fstab", &fstab, mtime);
	sb_release(&fstab);
	if (r < 0)
		return r;

	struct strbuf cfg = STRBUF_INIT;
	sb_adds(&cfg, "# /boot/grub/grub.cfg: written by imgbuild\n"
	              "serial --unit=0 --speed=115200\n"
	              "terminal_input serial console\n"
	              "terminal_output serial console\n"
	              "set default=0\n"
	              "set timeout=0\n");
	sb_addf(&cfg, "search --no-floppy --fs-uuid --set=root %s\n", layout->root_fs_uuid);
	sb_adds(&cfg, "menuentry 'Debian GNU/Linux' {\n");
	sb_addf(&cfg, "\tlinux %s root=UUID=%s ro console=tty0 console=ttyS0,115200n8%s%s\n",
	        layout->kernel, layout->root_fs_uuid, cmdline_extra && *cmdline_extra ? " " : "",
	        cmdline_extra ? cmdline_extra : "");
	sb_addf(&cfg, "\tinitrd %s\n", layout->initrd);
	sb_adds(&cfg, "}\n");
	r = write_config(ctx, tree, "boot/grub/grub.cfg", &cfg, mtime);
	sb_release(&cfg);
	return r;
}
