/* vlayout.c: the disk as built: GPT partitions, filesystems, BIOS and UEFI boot code. */
#include "verify_int.h"

#define SECTOR     512
#define EFI_LOADER "/EFI/BOOT/BOOTX64.EFI"

/* disk/disk.c's partition types and names, in partition order. */
static const struct {
	const char *guid, *what, *name;
} want_types[V_PARTS] = {
        {"21686148-6449-6E6F-744E-656564454649", "BIOS boot", "BIOS"},
        {"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI system", "EFI"},
        {"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "Linux root (x86-64)", "root"},
};

/* A value of a blkid hash (key, value, key, value, ..., NULL), or NULL. */
static const char *kv(char **h, const char *key)
{
	for (size_t i = 0; h && h[i] && h[i + 1]; i += 2)
		if (streq(h[i], key))
			return h[i + 1];
	return NULL;
}

static long long num(char **h, const char *key)
{
	const char *s = kv(h, key);
	return s ? strtoll(s, NULL, 10) : -1;
}

static void add_fs(struct vctx *v, const char *dev, char **id)
{
	v->fs = xrealloc(v->fs, (v->n_fs + 1) * sizeof(*v->fs));
	struct vfs *f = &v->fs[v->n_fs++];
	f->dev = xstrdup(dev);
	f->type = xstrdup(kv(id, "TYPE"));
	f->uuid = xstrdup(kv(id, "UUID") ? kv(id, "UUID") : "");
	f->label = xstrdup(kv(id, "LABEL") ? kv(id, "LABEL") : "");
}

/* A vendor's root partition may be typed as any Linux data (Debian's cloud images). */
#define LINUX_DATA "0FC63DAF-8483-4772-8E79-3D69D8477DE4"

/* In a vendor's layout: which of ours this partition plays (by its type), or -1. The
 * first partition of each type counts. */
static int vendor_slot(const struct vctx *v, const char *type, int has_fs)
{
	for (int i = 0; type && i < V_PARTS; i++)
		if (!v->part[i] && strcasecmp(type, want_types[i].guid) == 0)
			return i;
	if (type && has_fs && !v->part[2] && strcasecmp(type, LINUX_DATA) == 0)
		return 2;
	return -1;
}

/* One partition as blkid saw it (id; check_partitions reports a failed blkid): its GPT
 * entry and the filesystem in it. */
static void probe_partition(struct vctx *v, const char *dev, char **id, struct strbuf *bad)
{
	long long n = num(id, "PART_ENTRY_NUMBER");
	if (!id)
		return;
	if (n < 1) {
		sb_addf(bad, "%s: no GPT entry (blkid found none); ", dev);
		return;
	}
	if (kv(id, "TYPE"))
		add_fs(v, dev, id);
	const char *type = kv(id, "PART_ENTRY_TYPE");
	int i = (int)n - 1;
	if (v->vendor_layout)
		i = vendor_slot(v, type, kv(id, "TYPE") != NULL);
	else if (n > V_PARTS)
		i = -1;
	if (i < 0)
		return;
	v->part[i] = xstrdup(dev);
	v->part_start[i] = num(id, "PART_ENTRY_OFFSET") * SECTOR;
	v->part_size[i] = num(id, "PART_ENTRY_SIZE") * SECTOR;
	v->part_guid[i] = kv(id, "PART_ENTRY_UUID") ? xstrdup(kv(id, "PART_ENTRY_UUID")) : NULL;
	if (!v->vendor_layout && (!type || strcasecmp(type, want_types[i].guid) != 0))
		sb_addf(bad, "partition %lld has type %s, expected %s (%s); ", n, type ? type : "?",
		        want_types[i].guid, want_types[i].what);
}

/* Did imgbuild lay this disk out? Its partitions, and only they, by number and name:
 * a vendor's image is then told apart without a role to say so. Types are not asked,
 * so a wrong one is still reported against imgbuild's layout. */
static int own_layout(char ***ids, size_t n)
{
	if (n != V_PARTS)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = kv(ids[i], "PART_ENTRY_NAME");
		if (num(ids[i], "PART_ENTRY_NUMBER") != (long long)i + 1 || !name ||
		    !streq(name, want_types[i].name))
			return 0;
	}
	return 1;
}

/* The base image's own layout: a root partition and some way to boot it, wherever they
 * are; the boot code is then checked where there is a partition for it. */
static void vendor_partitions(struct vctx *v, size_t n, struct strbuf *bad)
{
	if (!v->part[2])
		sb_addf(bad, "no Linux root or Linux data partition holding a filesystem; ");
	if (!v->part[0] && !v->part[1])
		sb_addf(bad, "neither a BIOS boot nor an EFI system partition; ");
	if (bad->len) {
		bad->buf[bad->len - 2] = '\0';
		v_result(v, "partitions", 0, "%s", sb_str(bad));
	} else {
		v_result(v, "partitions", 1,
		         "GPT of the base image, %zu partitions: root %s, %s %s, %s %s", n,
		         v->part[2], want_types[0].what, v->part[0] ? v->part[0] : "none",
		         want_types[1].what, v->part[1] ? v->part[1] : "none");
	}
	sb_release(bad);
}

/* blkid (one quick probe per device) rather than guestfs_part_get_gpt_type and
 * guestfs_list_filesystems: those run parted and LVM/MD scans, seconds each under TCG. */
static void check_partitions(struct vctx *v)
{
	_cleanup_gstrv_ char **devs = guestfs_list_devices(v->g);
	if (!devs || !devs[0]) {
		v_result(v, "partitions", 0, "no disk in the appliance: %s", v_err(v));
		return;
	}
	v->disk = xstrdup(devs[0]);
	_cleanup_gstrv_ char **disk_id = guestfs_blkid(v->g, v->disk);
	const char *pttype = kv(disk_id, "PTTYPE");
	if (!pttype || !streq(pttype, "gpt")) {
		v_result(v, "partitions", 0, "no GPT partition table (%s)",
		         pttype    ? pttype
		         : disk_id ? "none"
		                   : v_err(v));
		return;
	}
	_cleanup_gstrv_ char **parts = guestfs_list_partitions(v->g);
	if (!parts) {
		v_result(v, "partitions", 0, "cannot list partitions: %s", v_err(v));
		return;
	}
	size_t n = 0;
	while (parts[n])
		n++;
	struct strbuf bad = STRBUF_INIT;
	char ***ids = xcalloc(n ? n : 1, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		ids[i] = guestfs_blkid(v->g, parts[i]);
		if (!ids[i]) /* now, while libguestfs still holds this call's message */
			sb_addf(&bad, "%s: no GPT entry (%s); ", parts[i], v_err(v));
	}
	if (v->layout_guessed)
		v->vendor_layout = !own_layout(ids, n);
	for (size_t i = 0; i < n; i++) {
		probe_partition(v, parts[i], ids[i], &bad);
		guestfs_strv_free(ids[i]);
	}
	free(ids);
	if (v->vendor_layout) {
		vendor_partitions(v, n, &bad);
		return;
	}
	if (n != V_PARTS)
		sb_addf(&bad, "%zu partitions, expected %d; ", n, V_PARTS);
	for (int i = 0; i < V_PARTS; i++)
		if (!v->part[i])
			sb_addf(&bad, "partition %d (%s) is missing; ", i + 1, want_types[i].what);
	if (bad.len) {
		bad.buf[bad.len - 2] = '\0';
		v_result(v, "partitions", 0, "%s", sb_str(&bad));
	} else {
		v_result(v, "partitions", 1, "GPT: %s, %s, %s", want_types[0].what,
		         want_types[1].what, want_types[2].what);
	}
	sb_release(&bad);
}

static const struct vfs *fs_of(const struct vctx *v, const char *dev)
{
	for (size_t i = 0; dev && i < v->n_fs; i++)
		if (streq(v->fs[i].dev, dev))
			return &v->fs[i];
	return NULL;
}

static void check_filesystems(struct vctx *v)
{
	const struct vfs *esp = fs_of(v, v->part[1]), *root = fs_of(v, v->part[2]);
	if (v->vendor_layout) {
		if (v->part[1] && (!esp || !streq(esp->type, "vfat")))
			v_result(v, "filesystems", 0, "the ESP %s holds %s, expected vfat",
			         v->part[1], esp ? esp->type : "no filesystem");
		else if (!root)
			v_result(v, "filesystems", 0, "no root partition holding a filesystem");
		else
			v_result(v, "filesystems", 1, "root %s %s %s%s%s", root->dev, root->type,
			         root->uuid, esp ? ", ESP vfat " : "", esp ? esp->uuid : "");
		return;
	}
	if (!esp || !streq(esp->type, "vfat"))
		v_result(v, "filesystems", 0, "partition 2 (ESP) holds %s, expected vfat",
		         esp ? esp->type : "no filesystem");
	else if (!root || !streq(root->type, "ext4") || !streq(root->label, "root"))
		v_result(v, "filesystems", 0,
		         "partition 3 holds %s labelled '%s', expected ext4 labelled 'root'",
		         root ? root->type : "no filesystem", root ? root->label : "");
	else
		v_result(v, "filesystems", 1, "ESP vfat %s, root ext4 'root' %s", esp->uuid,
		         root->uuid);
}

/* Read one sector of a device; NULL with why on failure. Caller frees. */
static char *sector(struct vctx *v, const char *dev, char *why, size_t n)
{
	size_t got = 0;
	char *buf = guestfs_pread_device(v->g, dev, SECTOR, 0, &got);
	if (!buf) {
		snprintf(why, n, "cannot read %s: %s", dev, v_err(v));
		return NULL;
	}
	if (got != SECTOR) {
		snprintf(why, n, "short read of %s: %zu bytes", dev, got);
		free(buf);
		return NULL;
	}
	return buf;
}

static void check_bios(struct vctx *v)
{
	char why[512];
	if (v->vendor_layout && !v->part[0])
		return; /* booted another way: "partitions" says which */
	if (!v->disk || !v->part[0] || v->part_size[0] <= 0) {
		v_result(v, "bios-mbr", 0, "not checked: no BIOS boot partition");
		v_result(v, "bios-core", 0, "not checked: no BIOS boot partition");
		return;
	}
	const uint64_t lba = (uint64_t)v->part_start[0] / SECTOR;
	_cleanup_free_ char *mbr = sector(v, v->disk, why, sizeof(why));
	if (mbr && ib_check_mbr((const uint8_t *)mbr, lba, why, sizeof(why)) == 0)
		v_result(v, "bios-mbr", 1, "GRUB boot.img, loading core.img from sector %llu",
		         (unsigned long long)lba);
	else
		v_result(v, "bios-mbr", 0, "%s", why);

	_cleanup_free_ char *core = sector(v, v->part[0], why, sizeof(why));
	if (core && ib_check_core_sector((const uint8_t *)core, lba,
	                                 (uint64_t)v->part_size[0] / SECTOR, why, sizeof(why)) == 0)
		v_result(v, "bios-core", 1, "GRUB i386-pc core.img in %s", v->part[0]);
	else
		v_result(v, "bios-core", 0, "%s", why);
}

/* The ESP on its own, at /: independent of what fstab says about /boot/efi. */
static void check_uefi(struct vctx *v)
{
	char why[512];
	if (v->vendor_layout && !v->part[1])
		return;
	if (!v->part[1]) {
		v_result(v, "uefi-loader", 0, "not checked: no EFI system partition");
		return;
	}
	if (guestfs_mount_ro(v->g, v->part[1], "/") < 0) {
		v_result(v, "uefi-loader", 0, "cannot mount the ESP %s: %s", v->part[1], v_err(v));
		return;
	}
	int64_t size = 0;
	int reg = v_regular(v, EFI_LOADER, &size);
	if (reg <= 0 || size <= 0) {
		v_result(v, "uefi-loader", 0, "no %s on the ESP%s", EFI_LOADER,
		         reg > 0 ? " (empty file)" : "");
	} else {
		size_t got = 0;
		_cleanup_free_ char *head = guestfs_pread(v->g, EFI_LOADER, 4096, 0, &got);
		if (!head)
			v_result(v, "uefi-loader", 0, "cannot read %s: %s", EFI_LOADER, v_err(v));
		else if (ib_check_pe_x64((const uint8_t *)head, got, why, sizeof(why)) < 0)
			v_result(v, "uefi-loader", 0, "%s: %s", EFI_LOADER, why);
		else
			v_result(v, "uefi-loader", 1, "%s: x86-64 PE image, %lld bytes", EFI_LOADER,
			         (long long)size);
	}
	guestfs_umount_all(v->g);
}

void v_check_layout(struct vctx *v)
{
	check_partitions(v);
	check_filesystems(v);
	check_bios(v);
	check_uefi(v);
}
