/* disk.c: assemble the bootable GPT disk: partition table, ESP, root ext4, BIOS GRUB. */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "bootcfg.h"
#include "esp.h"
#include "ext4.h"
#include "gpt.h"
#include "grub.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/proc.h"

#define MIB_SECTORS    2048u
#define BIOS_START     MIB_SECTORS        /* p1 at 1 MiB */
#define BIOS_SECTORS   MIB_SECTORS        /* 1 MiB */
#define ESP_SECTORS    (64 * MIB_SECTORS) /* 64 MiB */
#define MIN_ROOT_MIB   8u
#define MAX_DISK_BYTES (16ull << 40)
#define STEPS          5

static const char *const type_bios = "21686148-6449-6E6F-744E-656564454649";
static const char *const type_esp = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
static const char *const type_root = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"; /* x86-64 root */

static void derive_uuid(const char *seed, const char *purpose, char out[37])
{
	uint8_t b[16];
	ib_derive_bytes(seed, purpose, b);
	ib_uuid_format(b, out);
}

static uint32_t derive_vol_id(const char *seed)
{
	uint8_t b[16];
	ib_derive_bytes(seed, "esp-volume-id", b);
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t round_mib(uint64_t n)
{
	return (n + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
}

int ib_disk_plan(struct ib_ctx *ctx, const struct ib_disk_opts *opts,
                 struct ib_disk_layout *ret_layout)
{
	if (!opts->tree || !opts->seed)
		return ib_error(ctx, IB_E_USAGE, "disk assembly needs a tree and a seed");
	const uint64_t min_bytes =
	        ((uint64_t)(BIOS_START + BIOS_SECTORS + ESP_SECTORS) / MIB_SECTORS + MIN_ROOT_MIB +
	         1)
	        << 20;
	if (opts->size > MAX_DISK_BYTES)
		return ib_error(ctx, IB_E_SPEC,
		                "disk size %llu MiB is larger than the limit of %llu MiB",
		                (unsigned long long)(opts->size >> 20),
		                (unsigned long long)(MAX_DISK_BYTES >> 20));
	const uint64_t size = round_mib(opts->size);
	if (size < min_bytes)
		return ib_error(
		        ctx, IB_E_SPEC,
		        "disk size %llu MiB is too small: the layout needs at least %llu MiB",
		        (unsigned long long)(size >> 20), (unsigned long long)(min_bytes >> 20));
	int r = ib_bootcfg_check_cmdline(ctx, opts->cmdline_extra);
	if (r < 0)
		return r;

	struct ib_disk_layout l = {0};
	if ((r = ib_bootcfg_find_kernel(ctx, opts->tree, &l)) < 0)
		return r;
	const uint64_t sectors = size / IB_SECTOR;
	l.bios_start = BIOS_START;
	l.bios_sectors = BIOS_SECTORS;
	l.esp_start = l.bios_start + l.bios_sectors;
	l.esp_sectors = ESP_SECTORS;
	l.root_start = l.esp_start + l.esp_sectors;
	l.root_sectors = IB_GPT_LAST_USABLE(sectors) - l.root_start + 1;
	derive_uuid(opts->seed, "disk-guid", l.disk_guid);
	derive_uuid(opts->seed, "root-part-guid", l.root_part_guid);
	derive_uuid(opts->seed, "root-fs-uuid", l.root_fs_uuid);
	ib_esp_vol_id_format(derive_vol_id(opts->seed), l.esp_vol_id);
	*ret_layout = l;
	return 0;
}

static int write_gpt(struct ib_ctx *ctx, int fd, const struct ib_disk_opts *opts,
                     const struct ib_disk_layout *l, uint64_t sectors)
{
	char bios_guid[37], esp_guid[37];
	derive_uuid(opts->seed, "bios-part-guid", bios_guid);
	derive_uuid(opts->seed, "esp-part-guid", esp_guid);
	struct ib_gpt_part parts[3] = {
	        {.first_lba = l->bios_start,
	         .last_lba = l->bios_start + l->bios_sectors - 1,
	         .name = "BIOS"},
	        {.first_lba = l->esp_start,
	         .last_lba = l->esp_start + l->esp_sectors - 1,
	         .name = "EFI"},
	        {.first_lba = l->root_start,
	         .last_lba = l->root_start + l->root_sectors - 1,
	         .name = "root"},
	};
	uint8_t disk_guid[16];
	if (ib_guid_parse(type_bios, parts[0].type) < 0 ||
	    ib_guid_parse(bios_guid, parts[0].uuid) < 0 ||
	    ib_guid_parse(type_esp, parts[1].type) < 0 ||
	    ib_guid_parse(esp_guid, parts[1].uuid) < 0 ||
	    ib_guid_parse(type_root, parts[2].type) < 0 ||
	    ib_guid_parse(l->root_part_guid, parts[2].uuid) < 0 ||
	    ib_guid_parse(l->disk_guid, disk_guid) < 0)
		return ib_error(ctx, IB_E_IO, "internal error: malformed GUID");
	return ib_gpt_write(ctx, fd, opts->out_raw, sectors, disk_guid, parts, ARRAY_SIZE(parts));
}

/* The ESP: GRUB's EFI image staged as scratch/esp/EFI/BOOT/BOOTX64.EFI, then a FAT. */
static int make_esp(struct ib_ctx *ctx, const struct ib_disk_opts *opts,
                    const struct ib_disk_layout *l, const char *scratch, const char *early_cfg)
{
	_cleanup_free_ char *esp = ib_path_join(scratch, "esp");
	_cleanup_free_ char *boot = ib_path_join(esp, "EFI/BOOT");
	_cleanup_free_ char *efi = ib_path_join(boot, "BOOTX64.EFI");
	int r = ib_mkdir_p(ctx, boot, 0755);
	if (r < 0 || (r = ib_grub_efi_build(ctx, early_cfg, efi)) < 0)
		return r;
	return ib_esp_make(ctx, opts->out_raw, l->esp_start, l->esp_sectors,
	                   derive_vol_id(opts->seed), esp, opts->mtime);
}

static int interrupted(struct ib_ctx *ctx)
{
	return ib_interrupted
	               ? ib_error(ctx, IB_E_INTERRUPTED, "interrupted while assembling the disk")
	               : 0;
}

int ib_disk_assemble(struct ib_ctx *ctx, const struct ib_disk_opts *opts,
                     struct ib_disk_layout *ret_layout)
{
	struct ib_disk_layout l;
	int r = ib_disk_plan(ctx, opts, &l);
	if (r < 0)
		return r;
	if (!opts->out_raw || !opts->workdir)
		return ib_error(ctx, IB_E_USAGE, "disk assembly needs an output and a workdir");
	const uint64_t size = round_mib(opts->size);
	ib_progress(ctx, "disk", 0, STEPS);

	if ((r = ib_bootcfg_write(ctx, opts->tree, &l, opts->cmdline_extra, opts->mtime)) < 0)
		return r;
	if ((r = ib_mkdir_p(ctx, opts->workdir, 0755)) < 0)
		return r;
	_cleanup_free_ char *scratch = xasprintf("%s/disk.XXXXXX", opts->workdir);
	if (!mkdtemp(scratch))
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot create a directory in '%s'",
		                      opts->workdir);

	_cleanup_free_ char *early_cfg = NULL;
	int created = 0;
	int fd = open(opts->out_raw, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", opts->out_raw);
		goto out;
	}
	created = 1;
	if (ftruncate(fd, (off_t)size) < 0) {
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot size '%s' to %llu MiB",
		                   opts->out_raw, (unsigned long long)(size >> 20));
		goto out;
	}
	if ((r = write_gpt(ctx, fd, opts, &l, size / IB_SECTOR)) < 0)
		goto out;
	ib_progress(ctx, "disk", 1, STEPS);

	if ((r = ib_grub_early_cfg(ctx, scratch, l.root_fs_uuid, &early_cfg)) < 0 ||
	    (r = make_esp(ctx, opts, &l, scratch, early_cfg)) < 0 || (r = interrupted(ctx)) < 0)
		goto out;
	ib_progress(ctx, "disk", 2, STEPS);

	if ((r = ib_ext4_make(ctx, opts->out_raw, l.root_start * IB_SECTOR,
	                      l.root_sectors * IB_SECTOR, opts->tree, l.root_fs_uuid,
	                      l.root_fs_uuid, opts->mtime)) < 0 ||
	    (r = interrupted(ctx)) < 0)
		goto out;
	ib_progress(ctx, "disk", 3, STEPS);

	if ((r = ib_grub_bios_install(ctx, fd, opts->out_raw, scratch, early_cfg, l.bios_start,
	                              l.bios_sectors)) < 0)
		goto out;
	ib_progress(ctx, "disk", 4, STEPS);

	if (close(TAKE_FD(fd)) < 0) {
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'", opts->out_raw);
		goto out;
	}
	ib_progress(ctx, "disk", STEPS, STEPS);
	*ret_layout = l;
out:
	if (fd >= 0)
		close(fd);
	if (r < 0 && created)
		unlink(opts->out_raw);
	struct ib_ctx quiet; /* a failed cleanup must not hide the first error */
	ib_ctx_init(&quiet);
	ib_rm_rf(&quiet, scratch);
	return r;
}

int ib_qcow2_convert(struct ib_ctx *ctx, const char *raw, const char *qcow2)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", qcow2, (int)getpid());
	const char *const argv[] = {"qemu-img", "convert",    "-f", "raw", "-O", "qcow2",
	                            "-o",       "compat=1.1", raw,  tmp,   NULL};
	int r = ib_run(ctx, argv, NULL, 0, NULL);
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	if (rename(tmp, qcow2) < 0) {
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot rename '%s' to '%s'", tmp, qcow2);
		unlink(tmp);
		return r;
	}
	return 0;
}
