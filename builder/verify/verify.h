/* verify.h: check a built image read-only with libguestfs, in one appliance launch.
 *
 * What is checked (each check a named result, pass or fail with a reason):
 *   partitions, filesystems      GPT with imgbuild's three partitions (disk/disk.h); for a
 *                                role on a base image, the vendor's: found by type
 *   bios-mbr, bios-core          GRUB's boot code in sector 0 and core.img in the BIOS boot
 *                                partition, wired to each other
 *   uefi-loader                  EFI/BOOT/BOOTX64.EFI on the ESP is an x86-64 PE image
 *   os                           inspection finds one Debian 12 root; its mountpoints mount
 *   grub-cfg, kernel, fstab      grub.cfg names a kernel and initrd that exist, every
 *                                kernel has its initramfs, fstab entries name filesystems
 *                                of this image
 *   machine-id, ssh-host-keys,   sealing: empty machine id, no SSH host keys, no
 *   cloud-init-state, passwords, cloud-init state, no password hash in /etc/shadow, and
 *   secrets                      no private key, AWS key or kubeadm token in the scanned
 *                                directories (see scan.c)
 *   manifest                     /etc/imgbuild/manifest.json is there, of this role and
 *                                made from the inputs with digest expect_digest
 *   file:P unit:U sysctl:K       what the role declares under `checks:`
 *   package:N
 * Nothing is ever written to the image: the drive is attached read-only.
 */
#pragma once

#include "spec/spec.h"
#include "util/ctx.h"

enum {
	/* Skip the attempt with KVM: launch the appliance under TCG at once. */
	IB_VERIFY_FORCE_TCG = 1 << 0,
};

struct ib_verify_opts {
	const char *format; /* "raw" or "qcow2"; NULL: detected from the file's header */
	int memsize_mb;     /* appliance memory; 0: 768 */
	unsigned flags;     /* IB_VERIFY_* */
	/* The input digest the image's manifest must name (pipeline/build.h), or NULL. */
	const char *expect_digest;
};

struct ib_verify_result {
	char *name;   /* stable identifier, e.g. "machine-id", "unit:ssh.service" */
	int ok;       /* 1 pass, 0 fail */
	char *detail; /* what was found, or why it failed */
};

struct ib_verify_report {
	struct ib_verify_result *results; /* in the order the checks ran */
	size_t n, alloc;
	size_t n_failed;
	const char *accel;     /* "kvm" or "tcg": how the appliance ran */
	double launch_seconds; /* appliance launch, including a failed KVM attempt */
	double seconds;        /* the whole verification */
};

/* Verify image (raw or qcow2) with the built-in checks and, when role is not NULL, the
 * checks its chain declares. o may be NULL for the defaults.
 * Returns 0 when every check passed, -IB_E_VERIFY when some failed (the message names
 * them), another negative code when the image could not be examined at all (cannot be
 * opened, the appliance does not start).
 * *ret is filled whenever the checks ran (0 or -IB_E_VERIFY) and left empty otherwise;
 * release it with ib_verify_report_release in every case. */
int ib_verify_image(struct ib_ctx *ctx, const char *image, const struct ib_resolved *role,
                    const struct ib_verify_opts *o, struct ib_verify_report *ret);

void ib_verify_report_release(struct ib_verify_report *r);
