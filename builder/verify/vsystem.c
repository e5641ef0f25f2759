/* vsystem.c: the installed system: inspection and mounts, grub.cfg, kernels, fstab. */
#include "verify_int.h"

#define GRUB_CFG    "/boot/grub/grub.cfg"
#define MAX_TEXT    (1u << 20) /* grub.cfg, fstab: larger is not a file imgbuild wrote */
#define WANT_DISTRO "debian"
#define WANT_MAJOR  12

struct mnt {
	const char *dir, *dev;
};

static int by_depth(const void *a, const void *b)
{
	const struct mnt *x = a, *y = b;
	size_t lx = strlen(x->dir), ly = strlen(y->dir);
	return lx < ly ? -1 : lx > ly ? 1 : strcmp(x->dir, y->dir);
}

/* Mount what inspection found (fstab's view), parents before children. */
static void mount_all(struct vctx *v, const char *root)
{
	_cleanup_gstrv_ char **mp = guestfs_inspect_get_mountpoints(v->g, root);
	size_t n = 0;
	while (mp && mp[n] && mp[n + 1])
		n += 2;
	n /= 2;
	_cleanup_free_ struct mnt *m = xcalloc(n + 1, sizeof(*m));
	for (size_t i = 0; i < n; i++)
		m[i] = (struct mnt){mp[2 * i], mp[2 * i + 1]};
	qsort(m, n, sizeof(*m), by_depth);
	struct strbuf bad = STRBUF_INIT, good = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (guestfs_mount_ro(v->g, m[i].dev, m[i].dir) < 0) {
			sb_addf(&bad, "%s%s on %s: %s", bad.len ? "; " : "", m[i].dev, m[i].dir,
			        v_err(v));
			continue;
		}
		strv_push(&v->mnt_dirs, m[i].dir);
		strv_push(&v->mnt_devs, m[i].dev);
		sb_addf(&good, "%s%s %s", good.len ? ", " : "", m[i].dir, m[i].dev);
		if (streq(m[i].dir, "/"))
			v->mounted = 1;
	}
	if (!v->mounted)
		sb_addf(&bad, "%sno filesystem for /", bad.len ? "; " : "");
	if (bad.len)
		v_result(v, "mounts", 0, "%s", sb_str(&bad));
	else
		v_result(v, "mounts", 1, "%s", sb_str(&good));
	sb_release(&bad);
	sb_release(&good);
}

/* Without an inspected root the later checks still look at the root partition. */
static void mount_fallback(struct vctx *v)
{
	if (v->part[2] && guestfs_mount_ro(v->g, v->part[2], "/") == 0) {
		v->mounted = 1;
		strv_push(&v->mnt_dirs, "/");
		strv_push(&v->mnt_devs, v->part[2]);
	}
}

static void check_os(struct vctx *v)
{
	_cleanup_gstrv_ char **roots = guestfs_inspect_os(v->g);
	size_t n = 0;
	while (roots && roots[n])
		n++;
	if (n != 1) {
		v_result(v, "os", 0, "%s",
		         !roots ? v_err(v)
		         : n    ? "more than one operating system in the image"
		                : "inspection found no operating system");
		mount_fallback(v);
		return;
	}
	v->root = xstrdup(roots[0]);
	_cleanup_free_ char *type = guestfs_inspect_get_type(v->g, v->root);
	_cleanup_free_ char *distro = guestfs_inspect_get_distro(v->g, v->root);
	_cleanup_free_ char *product = guestfs_inspect_get_product_name(v->g, v->root);
	int major = guestfs_inspect_get_major_version(v->g, v->root);
	int minor = guestfs_inspect_get_minor_version(v->g, v->root);
	if (!type || !distro || !streq(type, "linux") || !streq(distro, WANT_DISTRO) ||
	    major != WANT_MAJOR)
		v_result(v, "os", 0, "%s %s %d.%d on %s, expected linux %s %d", type ? type : "?",
		         distro ? distro : "?", major, minor, v->root, WANT_DISTRO, WANT_MAJOR);
	else
		v_result(v, "os", 1, "%s %s on %s", distro, product ? product : "", v->root);
	mount_all(v, v->root);
	if (!v->mounted)
		mount_fallback(v);
}

/* Where grub finds fs (a device) in the mounted tree: "" for /, "/boot" for a /boot fs. */
static const char *mount_prefix(const struct vctx *v, const char *dev)
{
	for (size_t i = 0; dev && i < v->mnt_devs.n; i++)
		if (streq(v->mnt_devs.v[i], dev))
			return streq(v->mnt_dirs.v[i], "/") ? "" : v->mnt_dirs.v[i];
	return "";
}

/* Does a root= or search value resolve to a filesystem of this image? */
static const struct vfs *resolve(const struct vctx *v, const char *spec)
{
	if (startswith(spec, "uuid:") || startswith(spec, "label:")) {
		_cleanup_free_ char *s = xasprintf("%s=%s", spec[0] == 'u' ? "UUID" : "LABEL",
		                                   strchr(spec, ':') + 1);
		return v_find_fs(v, s);
	}
	return v_find_fs(v, spec);
}

static void need_files(struct vctx *v, const char *prefix, const struct strv *paths,
                       struct strbuf *bad)
{
	for (size_t i = 0; i < paths->n; i++) {
		_cleanup_free_ char *p = xasprintf("%s%s", prefix, paths->v[i]);
		int64_t size = 0;
		if (v_regular(v, p, &size) <= 0 || size <= 0)
			sb_addf(bad, "%s%s is missing or empty", bad->len ? "; " : "", p);
	}
}

static void check_grub_cfg(struct vctx *v)
{
	char why[512];
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (v_read(v, GRUB_CFG, MAX_TEXT, &text, &len, why, sizeof(why)) < 0) {
		v_result(v, "grub-cfg", 0, "%s", why);
		return;
	}
	struct ib_grubcfg c;
	ib_grubcfg_parse(text, len, &c);
	struct strbuf bad = STRBUF_INIT;
	const struct vfs *groot = NULL;
	for (size_t i = 0; i < c.search.n; i++) {
		const struct vfs *f = resolve(v, c.search.v[i]);
		if (!f)
			sb_addf(&bad, "%s`search` names %s, which no filesystem has",
			        bad.len ? "; " : "", c.search.v[i]);
		else if (!groot)
			groot = f;
	}
	if (!c.kernels.n || !c.initrds.n)
		sb_addf(&bad, "%sno `linux` and `initrd` lines", bad.len ? "; " : "");
	/* Paths in grub.cfg are on grub's root filesystem, wherever the system mounts it. */
	const char *prefix = mount_prefix(v, groot ? groot->dev : NULL);
	need_files(v, prefix, &c.kernels, &bad);
	need_files(v, prefix, &c.initrds, &bad);
	for (size_t i = 0; i < c.roots.n; i++)
		if ((startswith(c.roots.v[i], "UUID=") || startswith(c.roots.v[i], "LABEL=")) &&
		    !resolve(v, c.roots.v[i]))
			sb_addf(&bad, "%sroot=%s names no filesystem of the image",
			        bad.len ? "; " : "", c.roots.v[i]);
	if (bad.len)
		v_result(v, "grub-cfg", 0, "%s: %s", GRUB_CFG, sb_str(&bad));
	else
		v_result(v, "grub-cfg", 1, "linux %s, initrd %s%s%s", c.kernels.v[0],
		         c.initrds.v[0], c.roots.n ? ", root=" : "", c.roots.n ? c.roots.v[0] : "");
	sb_release(&bad);
	ib_grubcfg_release(&c);
}

/* Leftovers of package upgrades are not kernels that boot. */
static int leftover(const char *name)
{
	return strstr(name, ".dpkg-") || endswith(name, ".bak") || endswith(name, ".old");
}

static void check_kernels(struct vctx *v)
{
	_cleanup_gstrv_ char **names = guestfs_ls(v->g, "/boot");
	if (!names) {
		v_result(v, "kernel", 0, "cannot list /boot: %s", v_err(v));
		return;
	}
	struct strbuf bad = STRBUF_INIT, good = STRBUF_INIT;
	for (char **n = names; *n; n++) {
		if (!startswith(*n, "vmlinuz-") || leftover(*n))
			continue;
		const char *ver = *n + strlen("vmlinuz-");
		_cleanup_free_ char *k = xasprintf("/boot/%s", *n);
		_cleanup_free_ char *i = xasprintf("/boot/initrd.img-%s", ver);
		int64_t ks = 0, is = 0;
		if (v_regular(v, k, &ks) <= 0 || ks <= 0)
			sb_addf(&bad, "%s%s is not a non-empty file", bad.len ? "; " : "", k);
		else if (v_regular(v, i, &is) <= 0 || is <= 0)
			sb_addf(&bad, "%s%s has no initramfs %s", bad.len ? "; " : "", k, i);
		else
			sb_addf(&good, "%s%s (%lld KiB, initramfs %lld KiB)", good.len ? ", " : "",
			        ver, (long long)ks >> 10, (long long)is >> 10);
	}
	if (!bad.len && !good.len)
		sb_adds(&bad, "no /boot/vmlinuz-* in the image");
	if (bad.len)
		v_result(v, "kernel", 0, "%s", sb_str(&bad));
	else
		v_result(v, "kernel", 1, "%s", sb_str(&good));
	sb_release(&bad);
	sb_release(&good);
}

static int part_guid_known(const struct vctx *v, const char *guid)
{
	for (int i = 0; i < V_PARTS; i++)
		if (v->part_guid[i] && strcasecmp(v->part_guid[i], guid) == 0)
			return 1;
	return 0;
}

static void check_fstab(struct vctx *v)
{
	char why[512];
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (v_read(v, "/etc/fstab", MAX_TEXT, &text, &len, why, sizeof(why)) < 0) {
		v_result(v, "fstab", 0, "%s", why);
		return;
	}
	struct ib_fstab_entry *e = NULL;
	size_t n = 0;
	ib_fstab_parse(text, len, &e, &n);
	struct strbuf bad = STRBUF_INIT, good = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const char *spec = e[i].spec;
		if (startswith(spec, "PARTUUID=")) {
			if (!part_guid_known(v, spec + strlen("PARTUUID=")))
				sb_addf(&bad, "%s%s (%s): no such partition", bad.len ? "; " : "",
				        spec, e[i].file);
			continue;
		}
		if (!startswith(spec, "UUID=") && !startswith(spec, "LABEL="))
			continue; /* proc, tmpfs, devices: nothing to resolve */
		const struct vfs *f = v_find_fs(v, spec);
		if (!f)
			sb_addf(&bad, "%s%s (%s): no such filesystem in the image",
			        bad.len ? "; " : "", spec, e[i].file);
		else if (!streq(e[i].type, "auto") && !streq(e[i].type, f->type))
			sb_addf(&bad, "%s%s (%s): type %s, but the filesystem is %s",
			        bad.len ? "; " : "", spec, e[i].file, e[i].type, f->type);
		else
			sb_addf(&good, "%s%s %s", good.len ? ", " : "", e[i].file, f->dev);
	}
	if (bad.len)
		v_result(v, "fstab", 0, "%s", sb_str(&bad));
	else
		v_result(v, "fstab", 1, "%s",
		         good.len ? sb_str(&good) : "no UUID= or LABEL= entries");
	sb_release(&bad);
	sb_release(&good);
	ib_fstab_free(e, n);
}

void v_check_system(struct vctx *v)
{
	check_os(v);
	if (!v->mounted) {
		static const char *const skipped[] = {"grub-cfg", "kernel", "fstab"};
		for (size_t i = 0; i < ARRAY_SIZE(skipped); i++)
			v_result(v, skipped[i], 0,
			         "not checked: the root filesystem did not mount");
		return;
	}
	check_grub_cfg(v);
	check_kernels(v);
	check_fstab(v);
}
