/* gpt.c: protective MBR, primary and backup GPT headers and entry arrays with their CRCs. */
#include "gpt.h"

#include "diskio.h"

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t ib_crc32(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ib_guid_parse(const char *s, uint8_t out[16])
{
	/* Byte i of the string's big-endian reading goes to on-disk position order[i]. */
	static const uint8_t order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	uint8_t be[16];
	size_t k = 0;
	if (strlen(s) != 36)
		return -1;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		be[k++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	for (size_t i = 0; i < 16; i++)
		out[order[i]] = be[i];
	return 0;
}

static void fill_header(uint8_t hdr[IB_SECTOR], uint64_t my_lba, uint64_t alt_lba,
                        uint64_t entries_lba, uint64_t disk_sectors, const uint8_t disk_guid[16],
                        uint32_t entries_crc)
{
	memset(hdr, 0, IB_SECTOR);
	memcpy(hdr, "EFI PART", 8);
	ib_put_le32(hdr + 8, 0x00010000); /* revision 1.0 */
	ib_put_le32(hdr + 12, 92);        /* header size */
	ib_put_le64(hdr + 24, my_lba);
	ib_put_le64(hdr + 32, alt_lba);
	ib_put_le64(hdr + 40, IB_GPT_FIRST_USABLE);
	ib_put_le64(hdr + 48, IB_GPT_LAST_USABLE(disk_sectors));
	memcpy(hdr + 56, disk_guid, 16);
	ib_put_le64(hdr + 72, entries_lba);
	ib_put_le32(hdr + 80, IB_GPT_ENTRIES);
	ib_put_le32(hdr + 84, IB_GPT_ENTRY_SIZE);
	ib_put_le32(hdr + 88, entries_crc);
	ib_put_le32(hdr + 16, ib_crc32(0, hdr, 92)); /* computed with its own field zero */
}

static void fill_pmbr(uint8_t mbr[IB_SECTOR], uint64_t disk_sectors)
{
	uint8_t *e = mbr + 446;
	memset(mbr, 0, IB_SECTOR);
	e[0] = 0x00;                           /* not active */
	e[1] = 0x00, e[2] = 0x02, e[3] = 0x00; /* CHS of LBA 1 */
	e[4] = 0xEE;                           /* GPT protective */
	e[5] = 0xFF, e[6] = 0xFF, e[7] = 0xFF;
	ib_put_le32(e + 8, 1);
	uint64_t n = disk_sectors - 1;
	ib_put_le32(e + 12, n > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)n);
	mbr[510] = 0x55;
	mbr[511] = 0xAA;
}

int ib_gpt_write(struct ib_ctx *ctx, int fd, const char *path, uint64_t disk_sectors,
                 const uint8_t disk_guid[16], const struct ib_gpt_part *parts, size_t n_parts)
{
	const size_t array_len = IB_GPT_ENTRIES * IB_GPT_ENTRY_SIZE;
	if (disk_sectors < 2 * (2 + IB_GPT_ARRAY_SECTORS) + 1)
		return ib_error(ctx, IB_E_SPEC, "disk of %llu sectors is too small for a GPT",
		                (unsigned long long)disk_sectors);
	if (n_parts > IB_GPT_ENTRIES)
		return ib_error(ctx, IB_E_SPEC, "too many partitions: %zu", n_parts);

	_cleanup_free_ uint8_t *array = xcalloc(1, array_len);
	for (size_t i = 0; i < n_parts; i++) {
		const struct ib_gpt_part *p = &parts[i];
		if (p->first_lba < IB_GPT_FIRST_USABLE ||
		    p->last_lba > IB_GPT_LAST_USABLE(disk_sectors) || p->first_lba > p->last_lba)
			return ib_error(ctx, IB_E_SPEC,
			                "partition %zu (LBA %llu-%llu) lies outside the usable "
			                "range %u-%llu",
			                i + 1, (unsigned long long)p->first_lba,
			                (unsigned long long)p->last_lba, IB_GPT_FIRST_USABLE,
			                (unsigned long long)IB_GPT_LAST_USABLE(disk_sectors));
		for (size_t j = 0; j < i; j++)
			if (p->first_lba <= parts[j].last_lba && parts[j].first_lba <= p->last_lba)
				return ib_error(ctx, IB_E_SPEC, "partitions %zu and %zu overlap",
				                j + 1, i + 1);
		const char *name = p->name ? p->name : "";
		if (strlen(name) > 36)
			return ib_error(ctx, IB_E_SPEC,
			                "partition name '%s' is longer than 36 characters", name);
		uint8_t *e = array + i * IB_GPT_ENTRY_SIZE;
		memcpy(e, p->type, 16);
		memcpy(e + 16, p->uuid, 16);
		ib_put_le64(e + 32, p->first_lba);
		ib_put_le64(e + 40, p->last_lba);
		ib_put_le64(e + 48, p->attrs);
		for (size_t c = 0; name[c]; c++)
			ib_put_le16(e + 56 + 2 * c, (uint8_t)name[c]); /* UTF-16LE of ASCII */
	}
	uint32_t entries_crc = ib_crc32(0, array, array_len);

	uint8_t sector[IB_SECTOR];
	const uint64_t last = disk_sectors - 1;
	const uint64_t backup_array = last - IB_GPT_ARRAY_SECTORS;
	int r;

	fill_pmbr(sector, disk_sectors);
	if ((r = ib_disk_pwrite(ctx, fd, path, sector, IB_SECTOR, 0)) < 0)
		return r;
	fill_header(sector, 1, last, 2, disk_sectors, disk_guid, entries_crc);
	if ((r = ib_disk_pwrite(ctx, fd, path, sector, IB_SECTOR, IB_SECTOR)) < 0)
		return r;
	if ((r = ib_disk_pwrite(ctx, fd, path, array, array_len, 2 * IB_SECTOR)) < 0)
		return r;
	if ((r = ib_disk_pwrite(ctx, fd, path, array, array_len, backup_array * IB_SECTOR)) < 0)
		return r;
	fill_header(sector, last, 1, backup_array, disk_sectors, disk_guid, entries_crc);
	return ib_disk_pwrite(ctx, fd, path, sector, IB_SECTOR, last * IB_SECTOR);
}
