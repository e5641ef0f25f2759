/* customize.c: a base image customized in one libguestfs appliance launch. */
#include <errno.h>
#include <guestfs.h>
#include <stdlib.h>

#include "imagebase.h"
#include "manifest.h"
#include "util/fs.h"
#include "util/strbuf.h"

#define MEMSIZE_MB 1024
#define STAGE_DIR  "/tmp/imgbuild" /* in the image; sealing empties /tmp */
#define ERR_TAIL   900             /* the end of a failed command's stderr says why */

struct gs {
	struct ib_ctx *ctx;
	guestfs_h *g;
	const char *image;
};

static void on_warning(guestfs_h *g, void *opaque, uint64_t event, int handle, int flags,
                       const char *buf, size_t len, const uint64_t *array, size_t array_len)
{
	struct gs *s = opaque;
	ib_log(s->ctx, IB_LOG_DEBUG, "libguestfs: %.*s", (int)len, buf);
}

/* Translate the handle's last error, once, at this boundary. */
static int gerr(struct gs *s, const char *what)
{
	const char *e = s->g ? guestfs_last_error(s->g) : NULL;
	if (!e)
		e = "unknown libguestfs error";
	size_t len = strlen(e);
	while (len && (e[len - 1] == '\n' || e[len - 1] == ' '))
		len--;
	const char *start = len > ERR_TAIL ? e + len - ERR_TAIL : e;
	return ib_error(s->ctx, IB_E_LIB, "customizing '%s': %s: %s%.*s", s->image, what,
	                start == e ? "" : "...", (int)(len - (size_t)(start - e)), start);
}

static int env_forces_tcg(void)
{
	const char *b = getenv("LIBGUESTFS_BACKEND_SETTINGS");
	return b && strstr(b, "force_tcg");
}

/* One launch attempt on a fresh handle; errors go to ctx (a scratch one for an attempt
 * that may be retried). libguestfs's launch errors end in advice on debugging: the first
 * line says what failed. */
static int launch(struct gs *s, struct ib_ctx *ctx, int tcg)
{
	guestfs_h *g = guestfs_create();
	if (!g)
		return ib_error_errno(ctx, IB_E_LIB, errno, "cannot create a libguestfs handle");
	s->g = g;
	guestfs_set_error_handler(g, NULL, NULL);
	guestfs_set_event_callback(g, on_warning, GUESTFS_EVENT_WARNING, 0, s);
	int r = guestfs_set_memsize(g, MEMSIZE_MB);
	if (r == 0 && tcg)
		r = guestfs_set_backend_setting(g, "force_tcg", "1");
	if (r == 0)
		r = guestfs_add_drive_opts(g, s->image, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "raw",
		                           GUESTFS_ADD_DRIVE_OPTS_DISCARD, "besteffort", -1);
	if (r == 0)
		r = guestfs_launch(g);
	if (r == 0)
		return 0;
	const char *e = guestfs_last_error(g);
	r = ib_error(ctx, IB_E_LIB,
	             "customizing '%s': the libguestfs appliance did not start (%s): %.*s",
	             s->image, tcg ? "TCG" : "KVM", e ? (int)strcspn(e, "\n") : 7,
	             e ? e : "unknown");
	guestfs_close(g);
	s->g = NULL;
	return r;
}

/* KVM when /dev/kvm opens, and TCG when that fails: on some hosts QEMU dies starting a
 * KVM guest although /dev/kvm opens. */
static int start(struct gs *s)
{
	int tcg = env_forces_tcg() || access("/dev/kvm", R_OK | W_OK) != 0;
	double t0 = ib_now();
	ib_log(s->ctx, IB_LOG_INFO, "customize: launching the libguestfs appliance (%s)",
	       tcg ? "TCG" : "KVM");
	int r;
	if (!tcg) {
		struct ib_ctx attempt;
		ib_ctx_init(&attempt);
		r = launch(s, &attempt, 0);
		if (r < 0) {
			ib_log(s->ctx, IB_LOG_INFO, "customize: %s; retrying under TCG",
			       attempt.err);
			tcg = 1;
		}
	}
	if (tcg)
		r = launch(s, s->ctx, 1);
	if (r == 0)
		ib_log(s->ctx, IB_LOG_INFO, "customize: appliance up in %.1fs", ib_now() - t0);
	return r;
}

static int cmp_mountpoint(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	size_t lx = strlen(x[0]), ly = strlen(y[0]);
	return lx < ly ? -1 : lx > ly ? 1 : strcmp(x[0], y[0]);
}

/* Find the one Debian-family system in the image and mount its filesystems, parents
 * first. */
static int mount_os(struct gs *s)
{
	char **roots = guestfs_inspect_os(s->g);
	if (!roots)
		return gerr(s, "inspecting the image");
	size_t n = 0;
	while (roots[n])
		n++;
	int r = 0;
	_cleanup_free_ char *fmt = NULL;
	if (n != 1)
		r = ib_error(s->ctx, IB_E_VERIFY,
		             "customizing '%s': expected one operating system in the base image, "
		             "found %zu",
		             s->image, n);
	else if (!(fmt = guestfs_inspect_get_package_format(s->g, roots[0])))
		r = gerr(s, "inspecting the image");
	else if (!streq(fmt, "deb"))
		r = ib_error(s->ctx, IB_E_VERIFY,
		             "customizing '%s': the base image's packages are '%s', not Debian's "
		             "(deb)",
		             s->image, fmt);
	char **mps = r == 0 ? guestfs_inspect_get_mountpoints(s->g, roots[0]) : NULL;
	if (r == 0 && !mps)
		r = gerr(s, "inspecting the image");
	size_t m = 0;
	while (mps && mps[2 * m])
		m++;
	if (m > 1)
		qsort(mps, m, 2 * sizeof(char *), cmp_mountpoint);
	for (size_t i = 0; r == 0 && i < m; i++)
		if (guestfs_mount(s->g, mps[2 * i + 1], mps[2 * i]) < 0)
			r = gerr(s, "mounting the image's filesystems");
	for (size_t i = 0; mps && mps[i]; i++)
		free(mps[i]);
	free(mps);
	for (size_t i = 0; i < n; i++)
		free(roots[i]);
	free(roots);
	return r;
}

/* Run a shell script inside the image (libguestfs chroots into it with /dev, /proc and
 * /sys bound); its output goes to the debug log. */
static int run_sh(struct gs *s, const char *what, const char *script)
{
	ib_log(s->ctx, IB_LOG_INFO, "customize: %s", what);
	char *out = guestfs_sh(s->g, script);
	if (!out)
		return gerr(s, what);
	if (*out)
		ib_log(s->ctx, IB_LOG_DEBUG, "%s", out);
	free(out);
	return 0;
}

/* Services never start at build time: invoke-rc.d asks policy-rc.d, and an image that
 * brings its own keeps it. */
static const char install_sh[] =
        "set -e\n"
        "export DEBIAN_FRONTEND=noninteractive LC_ALL=C "
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "own=0; [ -e /usr/sbin/policy-rc.d ] && own=1\n"
        "[ $own = 1 ] || { printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d; "
        "chmod 0755 /usr/sbin/policy-rc.d; }\n"
        "rc=0\n"
        "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef "
        "-o Dpkg::Options::=--force-confold " STAGE_DIR "/debs/*.deb 1>&2 || rc=$?\n"
        "[ $own = 1 ] || rm -f /usr/sbin/policy-rc.d\n"
        "apt-get clean\n"
        "exit $rc\n";

static int install_packages(struct gs *s, const struct ib_imagebase_opts *o)
{
	_cleanup_free_ char *status = ib_path_join(o->work, "image-dpkg-status");
	if (guestfs_download(s->g, "/var/lib/dpkg/status", status) < 0)
		return gerr(s, "reading /var/lib/dpkg/status");
	struct strv debs = {0}, names = {0};
	int r = ib_imagebase_debs(s->ctx, o, status, &debs, &names);
	if (r == 0 && debs.n && guestfs_mkdir_p(s->g, STAGE_DIR "/debs") < 0)
		r = gerr(s, "staging packages");
	for (size_t i = 0; r == 0 && i < debs.n; i++) {
		_cleanup_free_ char *dst = xasprintf(STAGE_DIR "/debs/%s", names.v[i]);
		if (guestfs_upload(s->g, debs.v[i], dst) < 0)
			r = gerr(s, "uploading packages");
	}
	if (r == 0 && debs.n)
		r = run_sh(s, "installing packages", install_sh);
	strv_release(&debs);
	strv_release(&names);
	return r;
}

static int enable_units(struct gs *s, const struct ib_resolved *role)
{
	if (!role->units.n)
		return 0;
	struct strbuf sb = STRBUF_INIT;
	sb_adds(&sb, "systemctl --root=/ enable");
	for (size_t i = 0; i < role->units.n; i++)
		sb_addf(&sb, " '%s'", role->units.v[i]); /* unit names hold no quote (spec) */
	sb_adds(&sb, " 1>&2");
	int r = run_sh(s, "enabling units", sb_str(&sb));
	sb_release(&sb);
	return r;
}

/* The role's scripts, uploaded and run in order as root in the image. */
static int run_scripts(struct gs *s, const struct ib_resolved *role)
{
	if (role->scripts.n && guestfs_mkdir_p(s->g, STAGE_DIR "/scripts") < 0)
		return gerr(s, "staging scripts");
	for (size_t i = 0; i < role->scripts.n; i++) {
		const char *src = role->scripts.v[i];
		const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
		_cleanup_free_ char *dst = xasprintf(STAGE_DIR "/scripts/%02zu-%s", i, base);
		if (guestfs_upload(s->g, src, dst) < 0 || guestfs_chmod(s->g, 0755, dst) < 0)
			return gerr(s, "staging scripts");
		/* The path is ours and the role name is [a-z0-9-]: nothing to quote. */
		_cleanup_free_ char *cmd = xasprintf(
		        "cd / && IMGBUILD_ROLE=%s PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
		        "/usr/bin:/sbin:/bin %s 1>&2",
		        role->role->name, dst);
		_cleanup_free_ char *what = xasprintf("running script %s", base);
		int r = run_sh(s, what, cmd);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ib_tree_seal's tables, applied through the appliance; plus every log file, which the
 * image's own making and our apt run leave behind. */
static int seal(struct gs *s)
{
	ib_log(s->ctx, IB_LOG_INFO, "customize: sealing");
	if (guestfs_write(s->g, "/etc/machine-id", "", 0) < 0)
		return gerr(s, "emptying /etc/machine-id");
	for (size_t i = 0; ib_seal_gone[i]; i++) {
		_cleanup_free_ char *p = xasprintf("/%s", ib_seal_gone[i]);
		if (guestfs_rm_rf(s->g, p) < 0)
			return gerr(s, "sealing");
	}
	for (size_t i = 0; ib_seal_cleared[i].dir; i++) {
		_cleanup_free_ char *dir = xasprintf("/%s", ib_seal_cleared[i].dir);
		if (guestfs_is_dir(s->g, dir) <= 0)
			continue;
		char **names = guestfs_ls(s->g, dir);
		if (!names)
			return gerr(s, "sealing");
		int r = 0;
		for (size_t k = 0; names[k]; k++) {
			if (r == 0 && startswith(names[k], ib_seal_cleared[i].prefix)) {
				_cleanup_free_ char *p = xasprintf("%s/%s", dir, names[k]);
				if (guestfs_rm_rf(s->g, p) < 0)
					r = gerr(s, "sealing");
			}
			free(names[k]);
		}
		free(names);
		if (r < 0)
			return r;
	}
	if (guestfs_is_dir(s->g, "/var/log") <= 0)
		return 0;
	return run_sh(s, "removing logs", "find /var/log -type f -delete");
}

static int read_packages(struct gs *s, const struct ib_imagebase_opts *o,
                         struct ib_package **ret_pkgs, size_t *ret_n)
{
	_cleanup_free_ char *tree = ib_path_join(o->work, "image-status");
	_cleanup_free_ char *dir = ib_path_join(tree, "var/lib/dpkg");
	_cleanup_free_ char *status = ib_path_join(dir, "status");
	int r = ib_mkdir_p(s->ctx, dir, 0755);
	if (r < 0)
		return r;
	if (guestfs_download(s->g, "/var/lib/dpkg/status", status) < 0)
		return gerr(s, "reading /var/lib/dpkg/status");
	return ib_tree_packages(s->ctx, tree, ret_pkgs, ret_n);
}

/* After sealing, which must not remove it; the directory may be the base image's (an
 * imgbuild image carries one, with its own manifest, replaced here). */
static int install_manifest(struct gs *s, const struct ib_imagebase_opts *o,
                            const struct ib_package *pkgs, size_t n)
{
	if (!o->render_manifest)
		return 0;
	_cleanup_free_ char *json = o->render_manifest(o->manifest_arg, pkgs, n);
	ib_log(s->ctx, IB_LOG_INFO, "customize: writing %s", IB_MANIFEST_IN_IMAGE);
	if (guestfs_mkdir_p(s->g, "/etc/imgbuild") < 0 ||
	    guestfs_write(s->g, IB_MANIFEST_IN_IMAGE, json, strlen(json)) < 0 ||
	    guestfs_chown(s->g, 0, 0, IB_MANIFEST_IN_IMAGE) < 0 ||
	    guestfs_chmod(s->g, 0644, IB_MANIFEST_IN_IMAGE) < 0)
		return gerr(s, "writing " IB_MANIFEST_IN_IMAGE);
	return 0;
}

int ib_imagebase_customize(struct ib_ctx *ctx, const struct ib_imagebase_opts *o,
                           struct ib_package **ret_pkgs, size_t *ret_n)
{
	struct gs s = {.ctx = ctx, .image = o->out_raw};
	struct ib_package *pkgs = NULL;
	size_t n_pkgs = 0;
	int r = start(&s);
	if (r == 0)
		r = mount_os(&s);
	if (r == 0)
		r = install_packages(&s, o);
	if (r == 0) {
		ib_log(ctx, IB_LOG_INFO, "customize: unpacking the layer");
		if (guestfs_tar_in(s.g, o->layer_tar, "/") < 0)
			r = gerr(&s, "unpacking the layer");
	}
	if (r == 0)
		r = enable_units(&s, o->role);
	if (r == 0)
		r = run_scripts(&s, o->role);
	if (r == 0 && ib_interrupted)
		r = ib_error(ctx, IB_E_INTERRUPTED, "interrupted");
	if (r == 0)
		r = seal(&s);
	if (r == 0)
		r = read_packages(&s, o, &pkgs, &n_pkgs);
	if (r == 0)
		r = install_manifest(&s, o, pkgs, n_pkgs);
	if (r == 0) {
		/* Freed blocks of removed files become holes in the raw file. */
		if (guestfs_fstrim(s.g, "/", -1) < 0)
			ib_log(ctx, IB_LOG_DEBUG, "fstrim: %s", guestfs_last_error(s.g));
		if (guestfs_umount_all(s.g) < 0 || guestfs_shutdown(s.g) < 0)
			r = gerr(&s, "writing the image back");
	}
	if (s.g)
		guestfs_close(s.g);
	if (r < 0) {
		ib_packages_free(pkgs, n_pkgs);
		return r;
	}
	*ret_pkgs = pkgs;
	*ret_n = n_pkgs;
	return 0;
}
