/* dmount.h: imgbuild diff's mounting of one image (dmount.c). */
#pragma once

#include "verify_int.h"

/* Mount the root filesystem of disk ("/dev/sda"), read-only at mnt (made with
 * guestfs_mkmountpoint), and what its fstab mounts from the same disk. image names it in
 * messages. Returns 0, or a negative code with one error recorded. */
int d_mount_image(struct vctx *v, const char *disk, const char *mnt, const char *image);
