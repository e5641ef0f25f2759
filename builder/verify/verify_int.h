/* verify_int.h: one verification in progress, shared by the check groups. */
#pragma once

#include <guestfs.h>

#include "verify.h"
#include "vparse.h"

#define V_PARTS 3 /* the layout of disk/disk.h */

/* A filesystem of the image as libguestfs sees it. */
struct vfs {
	char *dev;   /* "/dev/sda3" */
	char *type;  /* "ext4", "vfat" */
	char *uuid;  /* "" when it has none */
	char *label; /* "" when it has none */
};

struct vctx {
	struct ib_ctx *ctx;
	guestfs_h *g;
	struct ib_verify_report *rep;
	const char *image;
	const char *image2;  /* imgbuild diff: a second image, attached after the first */
	char *disk;          /* the image's device in the appliance, "/dev/sda" */
	char *part[V_PARTS]; /* partition devices, NULL when missing */
	int64_t part_start[V_PARTS], part_size[V_PARTS]; /* bytes */
	char *part_guid[V_PARTS];                        /* unique partition GUIDs, for PARTUUID= */
	struct vfs *fs;
	size_t n_fs;
	/* A role on a base image: the vendor's partition layout, not disk/disk.h's; the
	 * partitions are found by their type, wherever they are (vlayout.c). */
	int vendor_layout;
	/* No role says which: the layout was told from the partitions' numbers and names, and
	 * the image's manifest must agree (vmanifest.c). */
	int layout_guessed;
	char *root;  /* the inspected root filesystem, NULL when inspection found none */
	int mounted; /* the root filesystem (and what fstab mounts under it) is at / */
	struct strv mnt_dirs, mnt_devs; /* what is mounted where, in mount order */
	struct strbuf launch_err;       /* messages of a failed launch, for the one error */
};

/* ---- the libguestfs boundary (appliance.c) ---- */

/* Create the handle, attach image (and image2) read-only and launch the appliance: with KVM unless
 * flags say otherwise, and once more under TCG when that launch fails. On failure the
 * handle is closed and one error is recorded. */
int v_open(struct vctx *v, const char *format, int memsize_mb, unsigned flags);
/* Shut the appliance down and close the handle (safe to call twice). */
void v_close(struct vctx *v);
/* libguestfs's message for the call that just failed. */
const char *v_err(struct vctx *v);
/* A file of the mounted image in memory, NUL-terminated, at most max bytes (larger is an
 * error). Returns 0, or -1 with the reason in why. Caller frees *ret. */
int v_read(struct vctx *v, const char *path, size_t max, char **ret, size_t *ret_len, char *why,
           size_t n);
/* Is path a regular file (following symlinks)? Its size in *ret_size. -1 on an error. */
int v_regular(struct vctx *v, const char *path, int64_t *ret_size);
/* The filesystem that "UUID=x" or "LABEL=x" names, or NULL. */
const struct vfs *v_find_fs(const struct vctx *v, const char *spec);

static inline void guestfs_strv_free(char **l)
{
	if (!l)
		return;
	for (char **p = l; *p; p++)
		free(*p);
	free(l);
}
static inline void guestfs_strv_freep(char ***l)
{
	guestfs_strv_free(*l);
}
#define _cleanup_gstrv_ _cleanup_(guestfs_strv_freep)

/* ---- results (vreport.c) ---- */

/* Record a check's result; detail is a printf format. */
void v_result(struct vctx *v, const char *name, int ok, const char *fmt, ...) _printf_(4, 5);

/* ---- the check groups, in the order they run; each records its results ---- */

void v_check_layout(struct vctx *v);  /* vlayout.c: partitions, filesystems, boot code */
void v_check_system(struct vctx *v);  /* vsystem.c: os, grub-cfg, kernel, fstab */
void v_check_sealing(struct vctx *v); /* vsealing.c: machine-id, host keys, cloud, shadow */
void v_check_secrets(struct vctx *v); /* vscan.c: the secret scan */
/* vmanifest.c: /etc/imgbuild/manifest.json is there, of role (when not NULL), made from
 * inputs with digest expect_digest (when not NULL). */
void v_check_manifest(struct vctx *v, const struct ib_resolved *role, const char *expect_digest);
void v_check_role(struct vctx *v, const struct ib_resolved *role); /* vrole.c */
