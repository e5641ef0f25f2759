/* bootsig.c: recognise GRUB's BIOS boot sectors and a UEFI PE image in raw bytes. */
#include "vparse.h"

#define SECTOR 512u
/* boot.img (grub-core/boot/i386/pc/boot.S), as disk/grub_bios.c writes it. */
#define MBR_CODE_END  0x1b8 /* disk signature, then the partition table */
#define MBR_CORE_LBA  0x5c  /* u64: where core.img starts */
#define MBR_SIGNATURE 510
/* diskboot.img (grub-core/boot/i386/pc/diskboot.S): the first sector of core.img. Its
 * code starts "push %dx; push %si; mov $msg, %si" (52 56 be) and its first blocklist
 * fills the last 12 bytes: u64 start, u16 sectors, u16 segment. */
#define CORE_BLOCKLIST (SECTOR - 12)
#define CORE_SEGMENT   0x820

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static unsigned le16(const uint8_t *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static int has(const uint8_t *buf, size_t len, const char *s)
{
	return memmem(buf, len, s, strlen(s) + 1) != NULL; /* with its NUL, as GRUB stores it */
}

static _printf_(3, 4) int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

int ib_check_mbr(const uint8_t *s, uint64_t core_lba, char *why, size_t n)
{
	if (s[MBR_SIGNATURE] != 0x55 || s[MBR_SIGNATURE + 1] != 0xaa)
		return fail(why, n, "no boot signature 55 aa in sector 0 (found %02x %02x)",
		            s[MBR_SIGNATURE], s[MBR_SIGNATURE + 1]);
	size_t nonzero = 0;
	for (size_t i = 0; i < MBR_CODE_END; i++)
		nonzero += s[i] != 0;
	if (nonzero == 0)
		return fail(why, n, "sector 0 holds no boot code (all zero before 0x1b8)");
	/* boot.S prints "GRUB " before its error messages; a generic MBR has none. */
	if (!memmem(s, MBR_CODE_END, "GRUB ", 5))
		return fail(why, n, "the boot code in sector 0 is not GRUB's boot.img");
	uint64_t lba = le64(s + MBR_CORE_LBA);
	if (lba != core_lba)
		return fail(why, n,
		            "GRUB's boot.img loads core.img from sector %llu, but the BIOS boot "
		            "partition starts at %llu",
		            (unsigned long long)lba, (unsigned long long)core_lba);
	return 0;
}

int ib_check_core_sector(const uint8_t *s, uint64_t core_lba, uint64_t part_sectors, char *why,
                         size_t n)
{
	if (s[0] != 0x52 || s[1] != 0x56 || s[2] != 0xbe || !has(s, CORE_BLOCKLIST, "loading") ||
	    !has(s, CORE_BLOCKLIST, "Geom"))
		return fail(why, n,
		            "the BIOS boot partition does not start with GRUB's core.img "
		            "(no i386-pc diskboot signature)");
	const uint8_t *bl = s + CORE_BLOCKLIST;
	uint64_t start = le64(bl);
	unsigned count = le16(bl + 8), seg = le16(bl + 10);
	if (seg != CORE_SEGMENT)
		return fail(why, n, "core.img's blocklist loads at segment %#x, not %#x", seg,
		            CORE_SEGMENT);
	if (count == 0 || start != core_lba + 1 || count + 1 > part_sectors)
		return fail(why, n,
		            "core.img's blocklist (sectors %llu+%u) does not follow its first "
		            "sector %llu inside the %llu-sector partition",
		            (unsigned long long)start, count, (unsigned long long)core_lba,
		            (unsigned long long)part_sectors);
	return 0;
}

int ib_check_pe_x64(const uint8_t *b, size_t len, char *why, size_t n)
{
	if (len < 0x40 || b[0] != 'M' || b[1] != 'Z')
		return fail(why, n, "not a PE image: no MZ header");
	uint32_t pe = (uint32_t)b[0x3c] | (uint32_t)b[0x3d] << 8 | (uint32_t)b[0x3e] << 16 |
	              (uint32_t)b[0x3f] << 24;
	if ((size_t)pe + 6 > len || memcmp(b + pe, "PE\0\0", 4) != 0)
		return fail(why, n, "MZ header without a PE signature");
	unsigned machine = le16(b + pe + 4);
	if (machine != 0x8664)
		return fail(why, n, "PE image for machine %#x, not x86-64 (0x8664)", machine);
	return 0;
}
