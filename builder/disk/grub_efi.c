/* grub_efi.c: GRUB for UEFI: a standalone x86_64-efi image for the ESP. */
#include "grub.h"

#include "util/fs.h"
#include "util/proc.h"

#define EFI_DIR IB_GRUB_LIB "/x86_64-efi"

int ib_grub_efi_build(struct ib_ctx *ctx, const char *early_cfg, const char *out)
{
	if (!ib_exists(EFI_DIR "/kernel.img"))
		return ib_error(ctx, IB_E_TOOL,
		                "GRUB for UEFI is missing: no '%s' (install grub-efi-amd64-bin)",
		                EFI_DIR "/kernel.img");
	const char *const argv[] = {"grub-mkimage", "-O",         "x86_64-efi", "-d",
	                            EFI_DIR,        "-p",         "/boot/grub", "-c",
	                            early_cfg,      "-o",         out,          "part_gpt",
	                            "ext2",         "fat",        "search",     "search_fs_uuid",
	                            "normal",       "configfile", "linux",      "echo",
	                            "test",         "serial",     "terminal",   "efi_gop",
	                            "all_video",    "gzio",       NULL};
	return ib_run(ctx, argv, NULL, 0, NULL);
}
