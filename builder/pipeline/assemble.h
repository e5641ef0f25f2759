/* assemble.h: from the cached root filesystem tar to the raw disk, as root or in a user
 * namespace.
 *
 * Assembly unpacks the root filesystem keeping its owners, adds the role's layer, seals the
 * tree and writes the disk with `mkfs.ext4 -d`, which records the tree's owners. As root
 * that runs in this process. As a normal user it runs in a child, `imgbuild __assemble`,
 * started by `unshare --user --map-root-user --map-auto` the way mmdebstrap's unshare mode
 * works: inside, uid and gid 0 are the user and 1..65535 the user's subordinate ids from
 * /etc/subuid and /etc/subgid, so chown works and the image gets the same owners as a build
 * as root. The child hands its results back in a small file in the work directory.
 * mmdebstrap (whose unshare mode makes its own namespace) and the layer tar stay outside.
 *
 * The staging tree then holds files owned by subordinate ids that the user cannot remove
 * from outside the namespace: ib_assemble_remove removes such directories.
 */
#pragma once

#include <time.h>

#include "disk/disk.h"
#include "rootfs/rootfs.h"

/* The steps, in order; one call may run several. The pipeline runs one per stage so that
 * each stage keeps its timing, and builds the layer tar (ib_layer_build, which looks up
 * units in the unpacked tree) between the first two, outside any namespace. */
enum {
	IB_ASSEMBLE_ROOTFS = 1 << 0, /* create the tree, unpack the root filesystem tar into it */
	IB_ASSEMBLE_LAYER = 1 << 1,  /* unpack the layer tar over it, seal, list the packages */
	IB_ASSEMBLE_DISK = 1 << 2,   /* write the raw disk, then remove the tree */
};

/* Everything the steps need is here: the namespace child gets it on its command line and
 * never reads the spec. */
struct ib_assemble_opts {
	const char *rootfs_tar; /* the cached root filesystem (IB_ASSEMBLE_ROOTFS) */
	const char *layer_tar;  /* the role's layer (IB_ASSEMBLE_LAYER) */
	const char *work;       /* the role's work directory, absolute: disk scratch space */
	const char *tree;       /* the staging tree, inside work */
	const char *out_raw;    /* the raw disk to write, inside work (IB_ASSEMBLE_DISK) */
	uint64_t disk_size;     /* bytes */
	const char *seed;       /* derivation seed of the disk's ids, "<role>:<rootfs key>" */
	time_t epoch;           /* SOURCE_DATE_EPOCH: times inside the filesystems */
	const char *manifest;   /* installed as etc/imgbuild/manifest.json (IB_ASSEMBLE_DISK) */
	int userns;             /* running in the user namespace: no device nodes */
};

struct ib_assemble_result {
	struct ib_disk_layout layout; /* set by IB_ASSEMBLE_DISK */
	struct ib_package *pkgs;      /* set by IB_ASSEMBLE_LAYER, sorted by name */
	size_t n_pkgs;
};
void ib_assemble_result_release(struct ib_assemble_result *res);

/* Run the given steps: in this process as root, else in a user namespace (see above).
 * Fills the parts of *ret that the steps produce; the caller releases it with
 * ib_assemble_result_release, also on failure. */
int ib_assemble(struct ib_ctx *ctx, const struct ib_assemble_opts *opts, unsigned steps,
                struct ib_assemble_result *ret);

/* The same steps in this process whoever runs it (the namespace child calls this). */
int ib_assemble_here(struct ib_ctx *ctx, const struct ib_assemble_opts *opts, unsigned steps,
                     struct ib_assemble_result *ret);

/* What a build needs before it starts: nothing as root; as a normal user, unshare and
 * newuidmap/newgidmap, subordinate uid and gid ranges of at least 65536 ids, and user
 * namespaces that work. Checked once per process; the error names what is missing and how
 * to fix it. */
int ib_assemble_check(struct ib_ctx *ctx);

/* rm -rf a work directory; when that fails as a normal user (files owned by subordinate
 * ids), again inside the user namespace. */
int ib_assemble_remove(struct ib_ctx *ctx, const char *path);

/* The namespace child's result file: the step results and, on failure, the error.
 * Lines "key value"; written atomically. */
int ib_assemble_result_write(struct ib_ctx *ctx, const char *path, int rc, const char *err,
                             const struct ib_assemble_result *res, const struct strv *logs);
/* Read it back. *ret_rc and err get the child's code and message (err gets "" when it
 * succeeded); logs get its log lines as "<level> <message>". */
int ib_assemble_result_read(struct ib_ctx *ctx, const char *path, int *ret_rc, char *err,
                            size_t err_size, struct ib_assemble_result *res, struct strv *logs);

/* The argument that the namespace child receives for each step, for cmd_assemble. */
const char *ib_assemble_step_name(unsigned step);
unsigned ib_assemble_step_parse(const char *name);
