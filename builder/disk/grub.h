/* grub.h: GRUB images made with grub-mkimage and installed without grub-install. */
#pragma once

#include "util/ctx.h"

/* Both images embed this early configuration: find the root filesystem by UUID and read
 * /boot/grub/grub.cfg there. Writes dir/early.cfg; *ret_path receives it (caller frees). */
int ib_grub_early_cfg(struct ib_ctx *ctx, const char *dir, const char *root_fs_uuid,
                      char **ret_path);

/* Build GRUB's i386-pc core.img in dir and install it on the raw disk behind fd without
 * grub-bios-setup: boot.img's code over sector 0 (the partition table stays), core.img in
 * the BIOS boot partition [start, start + sectors), its blocklist patched to match. */
int ib_grub_bios_install(struct ib_ctx *ctx, int fd, const char *raw, const char *dir,
                         const char *early_cfg, uint64_t start, uint64_t sectors);

/* Build GRUB's x86_64-efi image (the ESP's EFI/BOOT/BOOTX64.EFI) at out. */
int ib_grub_efi_build(struct ib_ctx *ctx, const char *early_cfg, const char *out);

/* The host's GRUB platform files (grub-pc-bin, grub-efi-amd64-bin). */
#define IB_GRUB_LIB "/usr/lib/grub"
