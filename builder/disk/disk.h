/* disk.h: a bootable GPT disk assembled in user space: no VM, no loop device, no mount.
 *
 * Layout (512-byte sectors, 1 MiB aligned):
 *   p1  BIOS boot partition, 1 MiB: GRUB's i386-pc core.img
 *   p2  EFI system partition, 64 MiB FAT: EFI/BOOT/BOOTX64.EFI (GRUB x86_64-efi)
 *   p3  Linux root, the rest: ext4 labelled "root", built with mkfs.ext4 -d
 * Both GRUBs find the root by filesystem UUID and read one /boot/grub/grub.cfg there.
 * Every UUID, the FAT volume id and the ext4 hash seed derive from opts->seed, so that the
 * same tree and seed give the same bytes.
 */
#pragma once

#include <time.h>

#include "util/ctx.h"

struct ib_disk_opts {
	const char
	        *tree; /* prepared root tree; etc/fstab and boot/grub/grub.cfg get written here */
	const char *out_raw;       /* raw disk to create (the caller picks a temporary name) */
	const char *workdir;       /* scratch space for the filesystem images */
	uint64_t size;             /* whole disk in bytes, rounded up to 1 MiB */
	const char *seed;          /* derivation seed for UUIDs, e.g. "<role>:<spec digest>" */
	time_t mtime;              /* timestamps inside the filesystems */
	const char *cmdline_extra; /* appended to the kernel command line, may be NULL */
};

struct ib_disk_layout {
	uint64_t bios_start, bios_sectors;
	uint64_t esp_start, esp_sectors;
	uint64_t root_start, root_sectors;
	char disk_guid[37];
	char root_part_guid[37];
	char root_fs_uuid[37];
	char esp_vol_id[10]; /* "ABCD-1234" as in fstab */
	char kernel[256];    /* /boot/vmlinuz-... found in the tree */
	char initrd[256];
};

/* Create opts->out_raw (removed again on failure) holding the whole bootable disk; write
 * etc/fstab and boot/grub/grub.cfg into opts->tree first. Scratch files go in a fresh
 * directory under opts->workdir and are removed. Fills *ret_layout on success. */
int ib_disk_assemble(struct ib_ctx *ctx, const struct ib_disk_opts *opts,
                     struct ib_disk_layout *ret_layout);

/* The layout ib_disk_assemble would use, without writing anything: checks the size and the
 * extra command line, finds the tree's kernel and derives every id from opts->seed.
 * Needs only opts->tree, size, seed and cmdline_extra. */
int ib_disk_plan(struct ib_ctx *ctx, const struct ib_disk_opts *opts,
                 struct ib_disk_layout *ret_layout);

/* raw -> sparse qcow2 with qemu-img. */
int ib_qcow2_convert(struct ib_ctx *ctx, const char *raw, const char *qcow2);
