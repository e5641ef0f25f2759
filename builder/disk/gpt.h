/* gpt.h: a protective MBR and primary + backup GPT written on a file descriptor. */
#pragma once

#include "util/ctx.h"

#define IB_SECTOR            512u
#define IB_GPT_ENTRIES       128u /* entries in the array, as every tool writes */
#define IB_GPT_ENTRY_SIZE    128u
#define IB_GPT_ARRAY_SECTORS (IB_GPT_ENTRIES * IB_GPT_ENTRY_SIZE / IB_SECTOR) /* 32 */
/* First and last usable LBA of a disk of n sectors. */
#define IB_GPT_FIRST_USABLE   (2 + IB_GPT_ARRAY_SECTORS)
#define IB_GPT_LAST_USABLE(n) ((n)-2 - IB_GPT_ARRAY_SECTORS)

struct ib_gpt_part {
	uint8_t type[16]; /* on-disk (mixed-endian) GUID bytes, see ib_guid_parse */
	uint8_t uuid[16];
	uint64_t first_lba, last_lba; /* inclusive */
	uint64_t attrs;
	const char *name; /* ASCII, at most 36 characters */
};

/* Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into GPT's on-disk byte order (first three
 * fields little-endian). Returns 0, or -1 on a malformed string. */
int ib_guid_parse(const char *s, uint8_t out[16]);

/* CRC-32 (IEEE 802.3, as GPT uses) of a buffer, continuing from crc (start with 0). */
uint32_t ib_crc32(uint32_t crc, const void *data, size_t len);

/* Write the protective MBR (sector 0), the primary header and entries (LBA 1, 2..33) and
 * the backup entries and header (the last 33 sectors) of a disk of disk_sectors sectors.
 * Partitions must lie inside the usable range and not overlap. path is for messages. */
int ib_gpt_write(struct ib_ctx *ctx, int fd, const char *path, uint64_t disk_sectors,
                 const uint8_t disk_guid[16], const struct ib_gpt_part *parts, size_t n_parts);
