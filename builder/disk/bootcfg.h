/* bootcfg.h: the boot configuration written into the tree: fstab and GRUB's grub.cfg. */
#pragma once

#include <time.h>

#include "disk.h"

/* Find the newest kernel boot/vmlinuz-VERSION in tree (by version order) and its
 * boot/initrd.img-VERSION; store "/boot/..." paths in layout->kernel and layout->initrd.
 * -IB_E_SPEC when the tree has no kernel or the kernel has no initrd. */
int ib_bootcfg_find_kernel(struct ib_ctx *ctx, const char *tree, struct ib_disk_layout *layout);

/* Check that extra kernel arguments can be carried in grub.cfg unquoted. */
int ib_bootcfg_check_cmdline(struct ib_ctx *ctx, const char *cmdline_extra);

/* Write tree/etc/fstab (root and ESP by UUID), create tree/boot/efi and write
 * tree/boot/grub/grub.cfg (serial console, no menu delay, one entry for layout's kernel),
 * both 0644 with mtime as their modification time. */
int ib_bootcfg_write(struct ib_ctx *ctx, const char *tree, const struct ib_disk_layout *layout,
                     const char *cmdline_extra, time_t mtime);
