/* vsealing.c: what rootfs/seal.c removes stays removed; no password hash is shipped. */
#include <sys/stat.h>

#include "verify_int.h"

#define MAX_SHADOW (1u << 20)

static void check_machine_id(struct vctx *v)
{
	struct guestfs_statns *st = guestfs_lstatns(v->g, "/etc/machine-id");
	if (!st) {
		/* Empty, not missing: see rootfs/seal.c. */
		v_result(v, "machine-id", 0,
		         "/etc/machine-id is missing (a sealed image has it empty)");
		return;
	}
	int64_t size = st->st_size;
	int reg = S_ISREG((mode_t)st->st_mode);
	guestfs_free_statns(st);
	if (!reg || size != 0) {
		v_result(v, "machine-id", 0, "/etc/machine-id is %s",
		         reg ? "not empty: the image carries a machine identity"
		             : "not a regular file");
		return;
	}
	/* D-Bus keeps a copy unless it is a link to /etc/machine-id. */
	st = guestfs_lstatns(v->g, "/var/lib/dbus/machine-id");
	if (st) {
		int leak = S_ISREG((mode_t)st->st_mode) && st->st_size > 0;
		guestfs_free_statns(st);
		if (leak) {
			v_result(v, "machine-id", 0,
			         "/var/lib/dbus/machine-id holds a machine identity");
			return;
		}
	}
	v_result(v, "machine-id", 1, "/etc/machine-id is empty");
}

static void check_host_keys(struct vctx *v)
{
	if (guestfs_is_dir(v->g, "/etc/ssh") <= 0) {
		v_result(v, "ssh-host-keys", 1, "no /etc/ssh");
		return;
	}
	_cleanup_gstrv_ char **names = guestfs_ls(v->g, "/etc/ssh");
	if (!names) {
		v_result(v, "ssh-host-keys", 0, "cannot list /etc/ssh: %s", v_err(v));
		return;
	}
	struct strbuf keys = STRBUF_INIT;
	for (char **n = names; *n; n++)
		if (startswith(*n, "ssh_host_"))
			sb_addf(&keys, "%s/etc/ssh/%s", keys.len ? ", " : "", *n);
	if (keys.len)
		v_result(v, "ssh-host-keys", 0,
		         "host keys in the image (every clone would share them): %s",
		         sb_str(&keys));
	else
		v_result(v, "ssh-host-keys", 1, "no /etc/ssh/ssh_host_* files");
	sb_release(&keys);
}

static void check_cloud_state(struct vctx *v)
{
	int e = guestfs_exists(v->g, "/var/lib/cloud");
	if (e < 0)
		v_result(v, "cloud-init-state", 0, "cannot look for /var/lib/cloud: %s", v_err(v));
	else if (e)
		v_result(v, "cloud-init-state", 0,
		         "/var/lib/cloud exists: cloud-init would skip its first boot");
	else
		v_result(v, "cloud-init-state", 1, "no /var/lib/cloud");
}

static void check_passwords(struct vctx *v)
{
	static const char *const files[] = {"/etc/shadow", "/etc/gshadow"};
	struct strbuf bad = STRBUF_INIT;
	int read = 0;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (guestfs_is_file(v->g, files[i]) <= 0)
			continue;
		char why[512];
		_cleanup_free_ char *text = NULL;
		size_t len = 0;
		if (v_read(v, files[i], MAX_SHADOW, &text, &len, why, sizeof(why)) < 0) {
			sb_addf(&bad, "%s%s", bad.len ? "; " : "", why);
			continue;
		}
		read++;
		struct strv who = {0};
		ib_shadow_hashed(text, len, &who);
		for (size_t k = 0; k < who.n && k < 16; k++)
			sb_addf(&bad, "%s%s: password hash for '%s'", bad.len ? "; " : "", files[i],
			        who.v[k]);
		if (who.n > 16)
			sb_addf(&bad, "; %zu more", who.n - 16);
		strv_release(&who);
	}
	if (bad.len)
		v_result(v, "passwords", 0, "%s", sb_str(&bad));
	else
		v_result(v, "passwords", 1, "%s",
		         read ? "no password hash in /etc/shadow or /etc/gshadow"
		              : "no /etc/shadow");
	sb_release(&bad);
}

void v_check_sealing(struct vctx *v)
{
	if (!v->mounted) {
		static const char *const skipped[] = {"machine-id", "ssh-host-keys",
		                                      "cloud-init-state", "passwords"};
		for (size_t i = 0; i < ARRAY_SIZE(skipped); i++)
			v_result(v, skipped[i], 0,
			         "not checked: the root filesystem did not mount");
		return;
	}
	check_machine_id(v);
	check_host_keys(v);
	check_cloud_state(v);
	check_passwords(v);
}
