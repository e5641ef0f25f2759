/* diff.h: the files that differ between two images, read with libguestfs in one appliance.
 *
 * Both images are attached read-only to one appliance. In each, the root filesystem is
 * found (the filesystem of that disk holding /etc/fstab, or its only filesystem) and
 * mounted with what its fstab mounts from the same disk (so that two builds with the same
 * filesystem UUIDs never mix), under /a and /b. Both trees are then listed, stat'ed and
 * checksummed inside the appliance; only names, metadata and digests come out.
 *
 * Compared per path, "/" included: file type, permission bits, owner (numeric uid and
 * gid), content (sha256 of regular files, device numbers of devices) and symlink targets.
 * Not compared: times, extended attributes, hard links, and the directories that another
 * filesystem is mounted on (the mounted root is seen there, as on a running system).
 */
#pragma once

#include "util/ctx.h"

enum {
	IB_DIFF_ADDED = 1 << 0,   /* only in the second image */
	IB_DIFF_REMOVED = 1 << 1, /* only in the first image */
	IB_DIFF_TYPE = 1 << 2,    /* file type changed (regular file, directory, link, ...) */
	IB_DIFF_CONTENT = 1 << 3, /* regular file content (sha256), or device numbers */
	IB_DIFF_MODE = 1 << 4,    /* permission bits (07777) */
	IB_DIFF_OWNER = 1 << 5,   /* uid or gid */
	IB_DIFF_TARGET = 1 << 6,  /* symlink target */
};
#define IB_DIFF__KINDS 7

/* One image's view of a path. */
struct ib_diff_side {
	int present;
	char type;     /* 'f' file, 'd' directory, 'l' symlink, 'c', 'b', 'p' fifo, 's' socket */
	unsigned mode; /* permission bits */
	long long uid, gid, size, rdev;
	char sha256[65]; /* regular files; "" otherwise */
	char *target;    /* symlinks; NULL otherwise */
};

struct ib_diff_entry {
	char *path; /* absolute in the image: "/etc/hostname" */
	unsigned kinds;
	struct ib_diff_side a, b;
};

struct ib_diff_result {
	struct ib_diff_entry *v; /* sorted by path (bytewise) */
	size_t n, alloc;
	size_t entries_a, entries_b; /* paths seen in each image */
	const char *accel;           /* "kvm" or "tcg" */
	double launch_seconds, seconds;
};

/* Compare images a and b (raw or qcow2). Returns 0 with *ret filled (ret->n == 0: no
 * difference), or a negative code with one error recorded (an image that cannot be opened
 * or holds no filesystem: IB_E_SPEC). Release *ret with ib_diff_result_release in every
 * case. */
int ib_diff_images(struct ib_ctx *ctx, const char *a, const char *b, struct ib_diff_result *ret);

void ib_diff_result_release(struct ib_diff_result *r);

/* "added", "removed", "type", "content", "mode", "owner", "target" for one IB_DIFF_* bit. */
const char *ib_diff_kind_name(unsigned bit);
