/* esp.h: the EFI system partition: FAT32 made with mkfs.fat, filled with mtools. */
#pragma once

#include <time.h>

#include "util/ctx.h"

/* Format sectors 512-byte sectors of raw at LBA start as FAT32 labelled "EFI" with volume id
 * vol_id, then copy src_dir/EFI into its root (mcopy -s). Every entry under src_dir gets
 * mtime first, so that the FAT holds fixed times. mcopy walks directories in readdir order:
 * keep one entry per directory for bit-identical results. */
int ib_esp_make(struct ib_ctx *ctx, const char *raw, uint64_t start, uint64_t sectors,
                uint32_t vol_id, const char *src_dir, time_t mtime);

/* "ABCD-1234" as blkid and fstab show a FAT volume id. */
void ib_esp_vol_id_format(uint32_t vol_id, char out[10]);
