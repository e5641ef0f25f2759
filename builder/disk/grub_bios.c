/* grub_bios.c: GRUB for BIOS: core.img in the BIOS boot partition, boot.img in sector 0. */
#include "grub.h"

#include "diskio.h"
#include "gpt.h"
#include "util/fs.h"
#include "util/proc.h"

#define BIOS_DIR IB_GRUB_LIB "/i386-pc"
/* Offsets in boot.img (grub-core/boot/i386/pc/boot.S) and diskboot.img. */
#define BOOT_KERNEL_SECTOR 0x5c /* u64 LBA of core.img's first sector */
#define BOOT_DRIVE_CHECK   0x66 /* a jump that 0x90 0x90 turns off: trust the BIOS drive */
#define BOOT_CODE_LEN      440  /* up to the disk signature and partition table */
#define BLOCKLIST_OFF      (IB_SECTOR - 12) /* u64 start, u16 sectors, u16 segment */
#define CORE_SEGMENT       0x820

int ib_grub_bios_install(struct ib_ctx *ctx, int fd, const char *raw, const char *dir,
                         const char *early_cfg, uint64_t start, uint64_t sectors)
{
	if (!ib_exists(BIOS_DIR "/boot.img"))
		return ib_error(ctx, IB_E_TOOL,
		                "GRUB for BIOS is missing: no '%s' (install grub-pc-bin)",
		                BIOS_DIR "/boot.img");
	_cleanup_free_ char *core_path = ib_path_join(dir, "core.img");
	const char *const argv[] = {"grub-mkimage",
	                            "-O",
	                            "i386-pc",
	                            "-d",
	                            BIOS_DIR,
	                            "-p",
	                            "/boot/grub",
	                            "-c",
	                            early_cfg,
	                            "-o",
	                            core_path,
	                            "biosdisk",
	                            "part_gpt",
	                            "ext2",
	                            "search",
	                            "search_fs_uuid",
	                            "normal",
	                            "configfile",
	                            "linux",
	                            "echo",
	                            "test",
	                            "serial",
	                            "terminal",
	                            "gzio",
	                            NULL};
	int r = ib_run(ctx, argv, NULL, 0, NULL);
	if (r < 0)
		return r;

	const size_t max = (size_t)sectors * IB_SECTOR;
	_cleanup_free_ char *core = NULL, *boot = NULL;
	size_t core_len = 0, boot_len = 0;
	if ((r = ib_read_file(ctx, core_path, 16u << 20, &core, &core_len)) < 0)
		return r;
	if (core_len < IB_SECTOR)
		return ib_error(ctx, IB_E_TOOL, "grub-mkimage wrote a core.img of only %zu bytes",
		                core_len);
	if (core_len > max)
		return ib_error(
		        ctx, IB_E_SPEC,
		        "GRUB core.img (%zu bytes) does not fit the %llu-byte BIOS boot partition",
		        core_len, (unsigned long long)max);
	if ((r = ib_read_file(ctx, BIOS_DIR "/boot.img", 4096, &boot, &boot_len)) < 0)
		return r;
	if (boot_len != IB_SECTOR)
		return ib_error(ctx, IB_E_TOOL, "'%s' is %zu bytes, expected %u",
		                BIOS_DIR "/boot.img", boot_len, IB_SECTOR);

	/* Pad core.img to whole sectors and point its first blocklist at the rest of it. */
	const size_t core_sectors = (core_len + IB_SECTOR - 1) / IB_SECTOR;
	_cleanup_free_ uint8_t *img = xcalloc(core_sectors, IB_SECTOR);
	memcpy(img, core, core_len);
	uint8_t *bl = img + BLOCKLIST_OFF;
	if (ib_get_le16(bl + 10) != CORE_SEGMENT)
		return ib_error(
		        ctx, IB_E_TOOL,
		        "core.img from grub-mkimage has no blocklist where expected (segment %#x)",
		        ib_get_le16(bl + 10));
	ib_put_le64(bl, start + 1);
	ib_put_le16(bl + 8, (uint16_t)(core_sectors - 1));
	ib_put_le16(bl + 10, CORE_SEGMENT);
	if ((r = ib_disk_pwrite(ctx, fd, raw, img, core_sectors * IB_SECTOR, start * IB_SECTOR)) <
	    0)
		return r;

	/* boot.img's code over sector 0, keeping the protective MBR's partition table. */
	uint8_t mbr[IB_SECTOR];
	if ((r = ib_disk_pread(ctx, fd, raw, mbr, sizeof(mbr), 0)) < 0)
		return r;
	memcpy(mbr, boot, BOOT_CODE_LEN);
	ib_put_le64(mbr + BOOT_KERNEL_SECTOR, start);
	mbr[BOOT_DRIVE_CHECK] = 0x90;
	mbr[BOOT_DRIVE_CHECK + 1] = 0x90;
	return ib_disk_pwrite(ctx, fd, raw, mbr, sizeof(mbr), 0);
}
