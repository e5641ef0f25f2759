/* check_disk.c: the disk stage, read back with independent tools (sfdisk, sgdisk, mtools,
 * fsck.fat, dumpe2fs, e2fsck, debugfs, qemu-img). */
#include <fcntl.h>
#include <sys/stat.h>

#include "disk/disk.h"
#include "disk/gpt.h"
#include "testutil.h"
#include "util/hash.h"
#include "util/proc.h"

#define MTIME    1700000000
#define KVER     "6.1.0-1-cloud-amd64"
#define DISK_MIB 100

static void make_tree(const char *tree)
{
	char p[4096];
	static const char *const files[][2] = {
	        {"etc/hostname", "debian\n"},
	        {"etc/fstab", "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"},
	        {"usr/bin/hello", "#!/bin/sh\necho hello\n"},
	        {"usr/share/doc/a/README", "some text\n"},
	        {"boot/vmlinuz-" KVER, "not really a kernel\n"},
	        {"boot/initrd.img-" KVER, "not really an initrd\n"},
	        {"boot/vmlinuz-5.10.0-9-amd64", "an older kernel\n"},
	        {"boot/initrd.img-5.10.0-9-amd64", "its initrd\n"},
	        {"boot/vmlinuz-6.1.0-1-cloud-amd64.dpkg-tmp", "leftover\n"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(p, sizeof(p), "%s/%s", tree, files[i][0]);
		tu_write(p, files[i][1]);
	}
	snprintf(p, sizeof(p), "%s/usr/bin/sh-link", tree);
	ck_assert_int_eq(symlink("hello", p), 0);
}

struct progress_seen {
	uint64_t last_done, last_total;
	int calls;
};

static void on_progress(struct ib_ctx *ctx, const char *stage, uint64_t done, uint64_t total,
                        void *data)
{
	struct progress_seen *s = data;
	ck_assert_str_eq(stage, "disk");
	ck_assert_uint_le(done, total);
	s->last_done = done;
	s->last_total = total;
	s->calls++;
}

static int assemble(struct ib_ctx *ctx, const char *tree, const char *raw, const char *seed,
                    uint64_t size, struct ib_disk_layout *layout)
{
	struct ib_disk_opts opts = {
	        .tree = tree,
	        .out_raw = raw,
	        .workdir = "work",
	        .size = size,
	        .seed = seed,
	        .mtime = MTIME,
	        .cmdline_extra = "quiet net.ifnames=0",
	};
	return ib_disk_assemble(ctx, &opts, layout);
}

/* Whitespace-free output of a command, so JSON can be matched as one string. */
static char *sh_compact(const char *cmd)
{
	char *out = tu_sh(cmd);
	char *w = out;
	for (char *r = out; *r; r++)
		if (*r != ' ' && *r != '\n' && *r != '\t')
			*w++ = *r;
	*w = '\0';
	return out;
}

static void upper(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'f')
			*s = (char)(*s - 'a' + 'A');
}

static void read_at(const char *path, void *buf, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void sha(const char *path, char out[IB_SHA256_HEX])
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_sha256_file_hex(&ctx, path, out), 0);
}

START_TEST(test_crc_and_guid)
{
	ck_assert_uint_eq(ib_crc32(0, "123456789", 9), 0xCBF43926u);
	uint8_t g[16];
	static const uint8_t esp[16] = {0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
	                                0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b};
	ck_assert_int_eq(ib_guid_parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", g), 0);
	ck_assert_mem_eq(g, esp, 16);
	ck_assert_int_eq(ib_guid_parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b", g), 0);
	ck_assert_mem_eq(g, esp, 16);
	ck_assert_int_lt(ib_guid_parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93", g), 0);
	ck_assert_int_lt(ib_guid_parse("C12A7328+F81F-11D2-BA4B-00A0C93EC93B", g), 0);
	ck_assert_int_lt(ib_guid_parse("G12A7328-F81F-11D2-BA4B-00A0C93EC93B", g), 0);
}
END_TEST

START_TEST(test_assemble_reads_back)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct progress_seen seen = {0};
	ctx.progress = on_progress;
	ctx.cb_data = &seen;
	make_tree("tree");
	struct ib_disk_layout l;
	/* Not a whole number of MiB: rounded up. */
	int r = assemble(&ctx, "tree", "disk.raw", "test:seed", ((uint64_t)DISK_MIB << 20) - 4096,
	                 &l);
	ck_assert_msg(r == 0, "assemble failed: %s", ctx.err);
	ck_assert_int_eq(ib_file_size("disk.raw"), (long long)DISK_MIB << 20);
	ck_assert_int_ge(seen.calls, 3);
	ck_assert_uint_eq(seen.last_done, seen.last_total);

	/* The layout. */
	const uint64_t sectors = (uint64_t)DISK_MIB << 11;
	ck_assert_uint_eq(l.bios_start, 2048);
	ck_assert_uint_eq(l.bios_sectors, 2048);
	ck_assert_uint_eq(l.esp_start, 4096);
	ck_assert_uint_eq(l.esp_sectors, 64 * 2048);
	ck_assert_uint_eq(l.root_start, 4096 + 64 * 2048);
	ck_assert_uint_eq(l.root_start + l.root_sectors, sectors - 33);
	ck_assert_str_eq(l.kernel, "/boot/vmlinuz-" KVER);
	ck_assert_str_eq(l.initrd, "/boot/initrd.img-" KVER);
	ck_assert_int_eq((int)strlen(l.esp_vol_id), 9);
	ck_assert_int_eq(l.esp_vol_id[4], '-');

	/* The partition table, as sfdisk reads it. */
	char disk_guid[37], part_guid[37];
	strcpy(disk_guid, l.disk_guid);
	strcpy(part_guid, l.root_part_guid);
	upper(disk_guid);
	upper(part_guid);
	_cleanup_free_ char *json = sh_compact("sfdisk --json disk.raw");
	_cleanup_free_ char *want_head = xasprintf(
	        "\"label\":\"gpt\",\"id\":\"%s\",\"device\":\"disk.raw\",\"unit\":\"sectors\","
	        "\"firstlba\":34,\"lastlba\":%llu,",
	        disk_guid, (unsigned long long)(sectors - 34));
	ck_assert_msg(strstr(json, want_head), "%s\nnot in\n%s", want_head, json);
	ck_assert_ptr_nonnull(strstr(json, "{\"node\":\"disk.raw1\",\"start\":2048,\"size\":2048,"
	                                   "\"type\":\"21686148-6449-6E6F-744E-656564454649\","));
	ck_assert_ptr_nonnull(strstr(json, "\"name\":\"BIOS\"}"));
	ck_assert_ptr_nonnull(strstr(json, "{\"node\":\"disk.raw2\",\"start\":4096,\"size\":131072,"
	                                   "\"type\":\"C12A7328-F81F-11D2-BA4B-00A0C93EC93B\","));
	ck_assert_ptr_nonnull(strstr(json, "\"name\":\"EFI\"}"));
	_cleanup_free_ char *want_root =
	        xasprintf("{\"node\":\"disk.raw3\",\"start\":135168,\"size\":%llu,"
	                  "\"type\":\"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709\",\"uuid\":\"%s\","
	                  "\"name\":\"root\"}",
	                  (unsigned long long)l.root_sectors, part_guid);
	ck_assert_msg(strstr(json, want_root), "%s\nnot in\n%s", want_root, json);
	if (ib_have_program("sgdisk")) {
		_cleanup_free_ char *v = tu_sh("sgdisk -v disk.raw 2>&1");
		ck_assert_msg(strstr(v, "No problems found"), "sgdisk -v: %s", v);
	}

	/* The protective MBR with boot.img's code, pointing at core.img. */
	uint8_t mbr[512], boot[512], core[512];
	read_at("disk.raw", mbr, 512, 0);
	read_at("/usr/lib/grub/i386-pc/boot.img", boot, 512, 0);
	ck_assert_uint_eq(mbr[446 + 4], 0xEE);
	ck_assert_uint_eq(le(mbr + 446 + 8, 4), 1);
	ck_assert_uint_eq(le(mbr + 446 + 12, 4), sectors - 1);
	ck_assert_uint_eq(mbr[510], 0x55);
	ck_assert_uint_eq(mbr[511], 0xAA);
	ck_assert_uint_eq(le(mbr + 0x5c, 8), 2048);
	ck_assert_uint_eq(mbr[0x66], 0x90);
	ck_assert_uint_eq(mbr[0x67], 0x90);
	ck_assert_mem_eq(mbr, boot, 0x5c);
	ck_assert_mem_eq(mbr + 0x68, boot + 0x68, 440 - 0x68);
	read_at("disk.raw", core, 512, 2048 * 512);
	ck_assert_uint_eq(le(core + 0x1f4, 8), 2049);
	uint64_t core_rest = le(core + 0x1fc, 2);
	ck_assert_uint_gt(core_rest, 100);
	ck_assert_uint_lt(core_rest, 2048);
	ck_assert_uint_eq(le(core + 0x1fe, 2), 0x820);
	uint8_t last[512], after[512], zero[512] = {0};
	read_at("disk.raw", last, 512, (off_t)(2048 + core_rest) * 512);
	read_at("disk.raw", after, 512, (off_t)(2048 + core_rest + 1) * 512);
	ck_assert_msg(memcmp(last, zero, 512) != 0, "core.img's last sector is empty");
	ck_assert_mem_eq(after, zero, 512);

	/* The ESP. */
	_cleanup_free_ char *minfo = tu_sh("MTOOLS_SKIP_CHECK=1 minfo -i disk.raw@@2097152 ::");
	_cleanup_free_ char *serial =
	        xasprintf("serial number: %.4s%.4s", l.esp_vol_id, l.esp_vol_id + 5);
	ck_assert_msg(strstr(minfo, "hidden sectors: 4096"), "%s", minfo);
	ck_assert_msg(strcasestr(minfo, serial), "%s not in %s", serial, minfo);
	ck_assert_msg(strstr(minfo, "disk type=\"FAT32"), "%s", minfo);
	_cleanup_free_ char *mdir =
	        tu_sh("MTOOLS_SKIP_CHECK=1 mdir -i disk.raw@@2097152 ::EFI/BOOT");
	ck_assert_msg(strstr(mdir, "BOOTX64  EFI"), "%s", mdir);
	ck_assert_msg(strstr(mdir, "2023-11-14"), "%s", mdir); /* MTIME, not today */
	_cleanup_free_ char *mz = tu_sh("MTOOLS_SKIP_CHECK=1 mtype -i disk.raw@@2097152 "
	                                "::EFI/BOOT/BOOTX64.EFI | head -c 2");
	ck_assert_str_eq(mz, "MZ");
	free(tu_sh("dd if=disk.raw of=esp.img bs=1M skip=2 count=64 status=none"));
	free(tu_sh("fsck.fat -n esp.img"));

	/* The root filesystem. */
	_cleanup_free_ char *dd =
	        xasprintf("dd if=disk.raw of=root.img bs=512 skip=%llu count=%llu "
	                  "conv=sparse status=none",
	                  (unsigned long long)l.root_start, (unsigned long long)l.root_sectors);
	free(tu_sh(dd));
	free(tu_sh("e2fsck -fn root.img >/dev/null 2>&1"));
	_cleanup_free_ char *sb = tu_sh("dumpe2fs -h root.img 2>/dev/null");
	_cleanup_free_ char *want_uuid = xasprintf("Filesystem UUID:          %s", l.root_fs_uuid);
	_cleanup_free_ char *want_seed = xasprintf("Directory Hash Seed:      %s", l.root_fs_uuid);
	ck_assert_msg(strstr(sb, want_uuid), "%s", sb);
	ck_assert_msg(strstr(sb, want_seed), "%s", sb);
	ck_assert_msg(strstr(sb, "Filesystem volume name:   root"), "%s", sb);
	_cleanup_free_ char *fstab = tu_sh("debugfs -R 'cat /etc/fstab' root.img 2>/dev/null");
	_cleanup_free_ char *want_fstab =
	        xasprintf("UUID=%s / ext4 rw,discard,errors=remount-ro 0 1\n"
	                  "UUID=%s /boot/efi vfat umask=0077,nofail 0 2\n",
	                  l.root_fs_uuid, l.esp_vol_id);
	ck_assert_msg(strstr(fstab, want_fstab), "%s", fstab);
	_cleanup_free_ char *cfg =
	        tu_sh("debugfs -R 'cat /boot/grub/grub.cfg' root.img 2>/dev/null");
	_cleanup_free_ char *want_linux =
	        xasprintf("\tlinux /boot/vmlinuz-" KVER
	                  " root=UUID=%s ro console=tty0 console=ttyS0,115200n8 "
	                  "quiet net.ifnames=0\n\tinitrd /boot/initrd.img-" KVER "\n",
	                  l.root_fs_uuid);
	ck_assert_msg(strstr(cfg, want_linux), "%s", cfg);
	ck_assert_ptr_nonnull(strstr(cfg, "serial --unit=0 --speed=115200\n"));
	ck_assert_ptr_nonnull(strstr(cfg, "set timeout=0\n"));
	_cleanup_free_ char *ls = tu_sh("debugfs -R 'ls -l /boot' root.img 2>/dev/null");
	ck_assert_msg(strstr(ls, " efi"), "%s", ls);
	/* Times clamped to MTIME (0x6553f100), ctime included, which mkfs copies from the tree. */
	_cleanup_free_ char *st = tu_sh("debugfs -R 'stat /etc/fstab' root.img 2>/dev/null");
	ck_assert_msg(strstr(st, " ctime: 0x6553f100:00000000"), "%s", st);
	ck_assert_msg(strstr(st, " mtime: 0x6553f100:00000000"), "%s", st);
	ck_assert_msg(strstr(st, "Mode:  0644"), "%s", st);

	/* The tree keeps what was written into it. */
	struct stat s;
	ck_assert_int_eq(stat("tree/etc/fstab", &s), 0);
	ck_assert_uint_eq(s.st_mode & 07777, 0644);
	ck_assert_int_eq(s.st_mtime, MTIME);
	ck_assert_int_eq(stat("tree/boot/grub/grub.cfg", &s), 0);
	ck_assert_uint_eq(s.st_mode & 07777, 0644);
	ck_assert_int_eq(stat("tree/boot/efi", &s), 0);
	ck_assert(S_ISDIR(s.st_mode));
	/* Scratch space is gone. */
	_cleanup_free_ char *left = tu_sh("ls -A work");
	ck_assert_str_eq(left, "");
}
END_TEST

START_TEST(test_deterministic)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	make_tree("tree");
	struct ib_disk_layout a, b;
	ck_assert_msg(assemble(&ctx, "tree", "a.raw", "same", (uint64_t)DISK_MIB << 20, &a) == 0,
	              "%s", ctx.err);
	/* Change ctimes and the clock between the two builds. */
	sleep(1);
	ck_assert_int_eq(chmod("tree/usr/bin/hello", 0644), 0); /* same mode, new ctime */
	ck_assert_msg(assemble(&ctx, "tree", "b.raw", "same", (uint64_t)DISK_MIB << 20, &b) == 0,
	              "%s", ctx.err);
	ck_assert_mem_eq(&a, &b, sizeof(a));
	char ha[IB_SHA256_HEX], hb[IB_SHA256_HEX];
	sha("a.raw", ha);
	sha("b.raw", hb);
	ck_assert_msg(streq(ha, hb), "two builds differ: %s",
	              tu_sh("cmp -l a.raw b.raw | head -20; true"));

	/* qcow2 of the same raw disk is the same too, and holds the same data. */
	ck_assert_msg(ib_qcow2_convert(&ctx, "a.raw", "a.qcow2") == 0, "%s", ctx.err);
	ck_assert_msg(ib_qcow2_convert(&ctx, "b.raw", "b.qcow2") == 0, "%s", ctx.err);
	sha("a.qcow2", ha);
	sha("b.qcow2", hb);
	ck_assert_str_eq(ha, hb);
	_cleanup_free_ char *info = sh_compact("qemu-img info --output=json a.qcow2");
	ck_assert_msg(strstr(info, "\"format\":\"qcow2\""), "%s", info);
	ck_assert_msg(strstr(info, "\"compat\":\"1.1\""), "%s", info);
	free(tu_sh("qemu-img compare -f raw -F qcow2 a.raw a.qcow2 >/dev/null"));
	ck_assert(ib_file_allocated("a.qcow2") < (10 << 20));
}
END_TEST

START_TEST(test_seed_changes_ids)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	make_tree("tree");
	struct ib_disk_layout a, b;
	ck_assert_msg(assemble(&ctx, "tree", "a.raw", "seed-a", (uint64_t)DISK_MIB << 20, &a) == 0,
	              "%s", ctx.err);
	ck_assert_msg(assemble(&ctx, "tree", "b.raw", "seed-b", (uint64_t)DISK_MIB << 20, &b) == 0,
	              "%s", ctx.err);
	ck_assert_str_ne(a.disk_guid, b.disk_guid);
	ck_assert_str_ne(a.root_part_guid, b.root_part_guid);
	ck_assert_str_ne(a.root_fs_uuid, b.root_fs_uuid);
	ck_assert_str_ne(a.esp_vol_id, b.esp_vol_id);
	ck_assert_str_ne(a.disk_guid, a.root_part_guid);
	_cleanup_free_ char *ja = sh_compact("sfdisk --json a.raw | grep -v device");
	_cleanup_free_ char *jb = sh_compact("sfdisk --json b.raw | grep -v device");
	ck_assert_str_ne(ja, jb);
	_cleanup_free_ char *ids = tu_sh("sfdisk --json b.raw | grep -ci '\"uuid\"\\|\"id\"'");
	ck_assert_str_eq(ids, "4\n");
	ck_assert_ptr_null(strcasestr(jb, a.disk_guid));
	ck_assert_ptr_null(strcasestr(jb, a.root_part_guid));
	/* The plan alone gives the same ids. */
	struct ib_disk_opts opts = {
	        .tree = "tree", .size = (uint64_t)DISK_MIB << 20, .seed = "seed-b"};
	struct ib_disk_layout p;
	ck_assert_int_eq(ib_disk_plan(&ctx, &opts, &p), 0);
	ck_assert_mem_eq(&p, &b, sizeof(p));
}
END_TEST

START_TEST(test_no_kernel)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	tu_write("tree/etc/hostname", "x\n");
	struct ib_disk_layout l;
	int r = assemble(&ctx, "tree", "disk.raw", "s", (uint64_t)DISK_MIB << 20, &l);
	ck_assert_int_eq(r, -IB_E_SPEC);
	ck_assert_msg(strstr(ctx.err, "no kernel"), "%s", ctx.err);
	ck_assert(!ib_exists("disk.raw"));

	/* A kernel without its initrd. */
	ib_ctx_init(&ctx);
	tu_write("tree/boot/vmlinuz-" KVER, "k\n");
	r = assemble(&ctx, "tree", "disk.raw", "s", (uint64_t)DISK_MIB << 20, &l);
	ck_assert_int_eq(r, -IB_E_SPEC);
	ck_assert_msg(strstr(ctx.err, "has no /boot/initrd.img-" KVER), "%s", ctx.err);
	ck_assert(!ib_exists("disk.raw"));
	ck_assert(!ib_exists("tree/etc/fstab"));
}
END_TEST

START_TEST(test_too_small)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	make_tree("tree");
	struct ib_disk_layout l;
	/* Smaller than the fixed partitions. */
	int r = assemble(&ctx, "tree", "disk.raw", "s", 32 << 20, &l);
	ck_assert_int_eq(r, -IB_E_SPEC);
	ck_assert_msg(strstr(ctx.err, "too small"), "%s", ctx.err);
	ck_assert(!ib_exists("disk.raw"));

	/* Room for the layout but not for the tree: a 20 MiB file in a 14 MiB root. */
	ib_ctx_init(&ctx);
	int fd = open("tree/usr/big", O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	static char chunk[1 << 20];
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(write(fd, chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
	close(fd);
	r = assemble(&ctx, "tree", "disk.raw", "s", 80 << 20, &l);
	ck_assert_int_eq(r, -IB_E_SPEC);
	ck_assert_msg(strstr(ctx.err, "make the disk larger"), "%s", ctx.err);
	ck_assert(!ib_exists("disk.raw"));
	_cleanup_free_ char *left = tu_sh("ls -A work 2>/dev/null; true");
	ck_assert_str_eq(left, "");
}
END_TEST

START_TEST(test_bad_cmdline)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	make_tree("tree");
	struct ib_disk_opts opts = {.tree = "tree",
	                            .out_raw = "disk.raw",
	                            .workdir = "work",
	                            .size = (uint64_t)DISK_MIB << 20,
	                            .seed = "s",
	                            .cmdline_extra = "quiet; reboot"};
	struct ib_disk_layout l;
	ck_assert_int_eq(ib_disk_assemble(&ctx, &opts, &l), -IB_E_SPEC);
	ck_assert_msg(strstr(ctx.err, "cannot carry"), "%s", ctx.err);
	ck_assert(!ib_exists("disk.raw"));
}
END_TEST

static Suite *disk_suite(void)
{
	Suite *s = suite_create("disk");
	TU_CASE(s, "crc_and_guid", test_crc_and_guid);
	TU_CASE(s, "assemble_reads_back", test_assemble_reads_back);
	TU_CASE(s, "deterministic", test_deterministic);
	TU_CASE(s, "seed_changes_ids", test_seed_changes_ids);
	TU_CASE(s, "no_kernel", test_no_kernel);
	TU_CASE(s, "too_small", test_too_small);
	TU_CASE(s, "bad_cmdline", test_bad_cmdline);
	return s;
}

int main(void)
{
	/* The tools live in /usr/sbin, which an ordinary user's PATH may lack. */
	const char *path = getenv("PATH");
	char *newpath = xasprintf("%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin");
	setenv("PATH", newpath, 1);
	free(newpath);
	static const char *const needed[] = {"grub-mkimage", "mkfs.fat", "mkfs.ext4", "mcopy",
	                                     "minfo",        "sfdisk",   "dumpe2fs",  "e2fsck",
	                                     "debugfs",      "fsck.fat", "qemu-img"};
	for (size_t i = 0; i < ARRAY_SIZE(needed); i++) {
		if (!ib_have_program(needed[i])) {
			fprintf(stderr, "check_disk: skipped: '%s' is not installed\n", needed[i]);
			return 77;
		}
	}
	if (!ib_exists("/usr/lib/grub/i386-pc/boot.img") ||
	    !ib_exists("/usr/lib/grub/x86_64-efi/kernel.img")) {
		fprintf(stderr, "check_disk: skipped: grub-pc-bin or grub-efi-amd64-bin missing\n");
		return 77;
	}
	SRunner *sr = srunner_create(disk_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
