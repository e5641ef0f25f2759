/* ext4_times.c: clamp inode timestamps in a fresh ext4 and refresh the inode checksums. */
#include "ext4.h"

#include "diskio.h"

/* Superblock (at byte 1024) and group descriptor fields used here. */
#define SB_MAGIC           0x38
#define INCOMPAT_META_BG   0x10
#define INCOMPAT_64BIT     0x80
#define INCOMPAT_CSUM_SEED 0x2000
#define RO_GDT_CSUM        0x10
#define RO_METADATA_CSUM   0x400
#define BG_INODE_UNINIT    0x1
#define GOOD_OLD_INODE     128
#define MAX_GROUPS         (1u << 24)

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
		crc32c_table[i] = c;
	}
}

/* CRC32c as e2fsprogs' ext2fs_crc32c_le: no inversion in or out, the caller seeds. */
static uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	pthread_once(&crc32c_once, crc32c_init);
	while (len--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

/* One timestamp: the 32-bit seconds field and, when the inode is large enough, the extra
 * field holding 2 epoch bits and 30 bits of nanoseconds. Returns 1 when it was changed. */
static int clamp_one(uint8_t *inode, size_t extra_end, size_t base, size_t extra, int64_t t)
{
	int has_extra = extra + 4 <= extra_end;
	int64_t sec = (int32_t)ib_get_le32(inode + base);
	uint32_t ex = has_extra ? ib_get_le32(inode + extra) : 0;
	sec += (int64_t)(ex & 3) << 32;
	if (sec < t || (sec == t && (ex >> 2) == 0))
		return 0;
	uint32_t lo = (uint32_t)t;
	ib_put_le32(inode + base, lo);
	if (has_extra)
		ib_put_le32(inode + extra, (uint32_t)(((t - (int64_t)(int32_t)lo) >> 32) & 3));
	return 1;
}

static int clamp_inode(uint8_t *inode, size_t isz, uint32_t ino, uint32_t seed, int csum, int64_t t)
{
	size_t extra_end = GOOD_OLD_INODE;
	if (isz > GOOD_OLD_INODE) {
		extra_end += ib_get_le16(inode + 0x80);
		if (extra_end > isz)
			extra_end = GOOD_OLD_INODE; /* corrupt: use the base fields only */
	}
	int changed = 0;
	changed |= clamp_one(inode, extra_end, 0x08, 0x8C, t); /* atime */
	changed |= clamp_one(inode, extra_end, 0x0C, 0x84, t); /* ctime */
	changed |= clamp_one(inode, extra_end, 0x10, 0x88, t); /* mtime */
	if (0x94 <= extra_end)
		changed |= clamp_one(inode, extra_end, 0x90, 0x94, t); /* crtime */
	if (!changed || !csum)
		return changed;

	int has_hi = extra_end >= GOOD_OLD_INODE + 4;
	uint8_t le[4];
	ib_put_le16(inode + 0x7C, 0);
	if (has_hi)
		ib_put_le16(inode + 0x82, 0);
	ib_put_le32(le, ino);
	uint32_t crc = crc32c(seed, le, 4);
	crc = crc32c(crc, inode + 0x64, 4); /* i_generation */
	crc = crc32c(crc, inode, isz);
	ib_put_le16(inode + 0x7C, (uint16_t)crc);
	if (has_hi)
		ib_put_le16(inode + 0x82, (uint16_t)(crc >> 16));
	return 1;
}

int ib_ext4_clamp_times(struct ib_ctx *ctx, int fd, const char *raw, uint64_t off, int64_t t)
{
	uint8_t sb[1024];
	int r = ib_disk_pread(ctx, fd, raw, sb, sizeof(sb), off + 1024);
	if (r < 0)
		return r;
	if (ib_get_le16(sb + SB_MAGIC) != 0xEF53)
		return ib_error(ctx, IB_E_VERIFY, "no ext4 superblock in '%s' at byte %llu", raw,
		                (unsigned long long)off);
	uint32_t incompat = ib_get_le32(sb + 0x60), ro = ib_get_le32(sb + 0x64);
	uint32_t log_bs = ib_get_le32(sb + 0x18);
	uint32_t first_data = ib_get_le32(sb + 0x14);
	uint32_t bpg = ib_get_le32(sb + 0x20), ipg = ib_get_le32(sb + 0x28);
	size_t isz = ib_get_le32(sb + 0x4C) == 0 ? GOOD_OLD_INODE : ib_get_le16(sb + 0x58);
	uint64_t blocks = ib_get_le32(sb + 0x04);
	size_t desc = 32;
	if (incompat & INCOMPAT_64BIT) {
		blocks |= (uint64_t)ib_get_le32(sb + 0x150) << 32;
		desc = ib_get_le16(sb + 0xFE);
	}
	if (log_bs > 6 || bpg == 0 || ipg == 0 || isz < GOOD_OLD_INODE || isz > 4096 ||
	    (isz & (isz - 1)) || desc < 32 || desc > 1024 || blocks <= first_data)
		return ib_error(ctx, IB_E_VERIFY, "unexpected ext4 superblock in '%s'", raw);
	if (incompat & INCOMPAT_META_BG)
		return ib_error(ctx, IB_E_VERIFY,
		                "ext4 in '%s' uses meta_bg, which is not supported", raw);
	const size_t bs = (size_t)1024 << log_bs;
	if (ipg > bs * 8 || (uint64_t)ipg * isz > (64u << 20))
		return ib_error(ctx, IB_E_VERIFY, "unexpected ext4 geometry in '%s'", raw);
	const int csum = (ro & RO_METADATA_CSUM) != 0;
	const int unused_valid = (ro & (RO_GDT_CSUM | RO_METADATA_CSUM)) != 0;
	uint32_t seed = (incompat & INCOMPAT_CSUM_SEED) ? ib_get_le32(sb + 0x270)
	                                                : crc32c(~0u, sb + 0x68, 16);
	uint64_t groups = (blocks - first_data + bpg - 1) / bpg;
	if (groups > MAX_GROUPS)
		return ib_error(ctx, IB_E_VERIFY, "ext4 in '%s' has too many groups", raw);

	_cleanup_free_ uint8_t *gdt = xmalloc(groups * desc);
	_cleanup_free_ uint8_t *bitmap = xmalloc(bs);
	_cleanup_free_ uint8_t *table = xmalloc((size_t)ipg * isz);
	if ((r = ib_disk_pread(ctx, fd, raw, gdt, groups * desc,
	                       off + (first_data + 1) * (uint64_t)bs)) < 0)
		return r;
	for (uint64_t g = 0; g < groups; g++) {
		const uint8_t *d = gdt + g * desc;
		if (ib_get_le16(d + 0x12) & BG_INODE_UNINIT)
			continue;
		uint64_t ibitmap = ib_get_le32(d + 0x04), itable = ib_get_le32(d + 0x08);
		uint32_t unused = unused_valid ? ib_get_le16(d + 0x1C) : 0;
		if (desc >= 64) {
			ibitmap |= (uint64_t)ib_get_le32(d + 0x24) << 32;
			itable |= (uint64_t)ib_get_le32(d + 0x28) << 32;
			if (unused_valid)
				unused |= (uint32_t)ib_get_le16(d + 0x32) << 16;
		}
		if (unused >= ipg)
			continue;
		const size_t n = ipg - unused;
		if ((r = ib_disk_pread(ctx, fd, raw, bitmap, bs, off + ibitmap * bs)) < 0 ||
		    (r = ib_disk_pread(ctx, fd, raw, table, n * isz, off + itable * bs)) < 0)
			return r;
		int dirty = 0;
		for (size_t i = 0; i < n; i++) {
			if (!(bitmap[i / 8] & (1u << (i % 8))))
				continue;
			uint32_t ino = (uint32_t)(g * ipg + i + 1);
			dirty |= clamp_inode(table + i * isz, isz, ino, seed, csum, t);
		}
		if (dirty &&
		    (r = ib_disk_pwrite(ctx, fd, raw, table, n * isz, off + itable * bs)) < 0)
			return r;
	}
	return 0;
}
