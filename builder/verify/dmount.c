/* dmount.c: imgbuild diff: mount one image's filesystems under a directory of the appliance.
 *
 * Two builds of one role share their filesystem UUIDs (they follow from the spec), so
 * libguestfs's inspection, which resolves fstab through blkid over every disk, could mount
 * the first image's ESP into the second's tree. Here every name is resolved among the
 * partitions of the image's own disk. */
#include "dmount.h"

#include <strings.h>

#define MAX_FSTAB (1u << 20)

static int is_candidate(const char *type)
{
	/* What holds files; swap, LVM and LUKS members are left out. */
	return *type && !streq(type, "swap") && !streq(type, "LVM2_member") &&
	       !streq(type, "crypto_LUKS");
}

/* The partitions of disk (or the disk itself when it has none) that hold a filesystem. */
static int list_candidates(struct vctx *v, const char *disk, struct strv *ret)
{
	_cleanup_gstrv_ char **parts = guestfs_list_partitions(v->g);
	if (!parts)
		return ib_error(v->ctx, IB_E_LIB, "cannot list partitions: %s", v_err(v));
	struct strv mine = {0};
	for (char **p = parts; *p; p++) {
		_cleanup_free_ char *dev = guestfs_part_to_dev(v->g, *p);
		if (dev && streq(dev, disk))
			strv_push(&mine, *p);
	}
	if (mine.n == 0)
		strv_push(&mine, disk);
	for (size_t i = 0; i < mine.n; i++) {
		_cleanup_free_ char *type = guestfs_vfs_type(v->g, mine.v[i]);
		if (type && is_candidate(type))
			strv_push(ret, mine.v[i]);
	}
	strv_release(&mine);
	return 0;
}

static int id_matches(struct vctx *v, const char *dev, const char *spec)
{
	_cleanup_free_ char *have = NULL;
	if (startswith(spec, "UUID=")) {
		have = guestfs_vfs_uuid(v->g, dev);
		return have && *have && strcasecmp(have, spec + 5) == 0;
	}
	if (startswith(spec, "LABEL=")) {
		have = guestfs_vfs_label(v->g, dev);
		return have && *have && streq(have, spec + 6);
	}
	if (startswith(spec, "PARTUUID=")) {
		_cleanup_free_ char *disk = guestfs_part_to_dev(v->g, dev);
		int n = guestfs_part_to_partnum(v->g, dev);
		if (!disk || n < 1)
			return 0;
		have = guestfs_part_get_gpt_guid(v->g, disk, n);
		return have && strcasecmp(have, spec + 9) == 0;
	}
	return 0;
}

/* Mount what fstab mounts below / from this disk; what cannot be found is said and left. */
static void mount_fstab(struct vctx *v, const struct strv *cands, const char *root_dev,
                        const char *mnt, const char *image)
{
	_cleanup_free_ char *fstab = xasprintf("%s/etc/fstab", mnt);
	size_t len = 0;
	_cleanup_free_ char *text = guestfs_read_file(v->g, fstab, &len);
	if (!text)
		return;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *fsave = NULL;
		const char *spec = strtok_r(line, " \t", &fsave);
		const char *mp = spec ? strtok_r(NULL, " \t", &fsave) : NULL;
		const char *type = mp ? strtok_r(NULL, " \t", &fsave) : NULL;
		if (!type || spec[0] == '#' || mp[0] != '/' || streq(mp, "/") ||
		    streq(type, "swap"))
			continue;
		const char *dev = NULL;
		for (size_t i = 0; i < cands->n && !dev; i++)
			if (!streq(cands->v[i], root_dev) && id_matches(v, cands->v[i], spec))
				dev = cands->v[i];
		_cleanup_free_ char *at = xasprintf("%s%s", mnt, mp);
		if (!dev || guestfs_is_dir(v->g, at) <= 0 || guestfs_mount_ro(v->g, dev, at) < 0)
			ib_log(v->ctx, IB_LOG_WARN, "diff: %s of '%s' (%s) is not compared: %s", mp,
			       image, spec, dev ? v_err(v) : "no such filesystem on the image");
	}
}

int d_mount_image(struct vctx *v, const char *disk, const char *mnt, const char *image)
{
	struct strv cands = {0};
	int r = list_candidates(v, disk, &cands);
	if (r < 0)
		return r;
	_cleanup_free_ char *fstab = xasprintf("%s/etc/fstab", mnt);
	const char *root = NULL;
	for (size_t i = 0; i < cands.n && !root; i++) {
		if (guestfs_mount_ro(v->g, cands.v[i], mnt) < 0)
			continue;
		if (guestfs_is_file(v->g, fstab) > 0)
			root = cands.v[i];
		else if (guestfs_umount(v->g, mnt) < 0)
			r = ib_error(v->ctx, IB_E_LIB, "cannot unmount %s: %s", cands.v[i],
			             v_err(v));
	}
	/* A disk with one filesystem and no fstab is compared as it is. */
	if (!root && r == 0 && cands.n == 1 && guestfs_mount_ro(v->g, cands.v[0], mnt) == 0)
		root = cands.v[0];
	if (!root && r == 0)
		r = ib_error(v->ctx, IB_E_SPEC,
		             "image '%s' holds no root filesystem (no filesystem with /etc/fstab, "
		             "nor a single filesystem)",
		             image);
	if (root)
		mount_fstab(v, &cands, root, mnt, image);
	strv_release(&cands);
	return r;
}
