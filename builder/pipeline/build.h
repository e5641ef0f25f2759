/* build.h: the pipeline for one role: spec -> root filesystem -> layer -> disk -> outputs.
 *
 * Each role builds in a work directory inside the output directory and its outputs
 * (<role>.raw, <role>.qcow2, <role>.manifest.json) are renamed into place together at the
 * end, after the image passed `imgbuild verify` (unless opts->verify is 0). Unchanged
 * inputs (same input digest, outputs untouched) rebuild nothing, unless the outputs were
 * never verified (or against other `checks:`) and this build verifies.
 */
#pragma once

#include <time.h>

#include "fetch/fetch.h"
#include "spec/spec.h"

enum ib_stage {
	IB_STAGE_FETCH,    /* the role's artifacts and images, into the cache and staged */
	IB_STAGE_ROOTFS,   /* bootstrap or reuse the cached root filesystem, unpack it */
	IB_STAGE_LAYER,    /* the role's layer, unpacked over it, then sealed */
	IB_STAGE_DISK,     /* partitions, filesystems, bootloaders */
	IB_STAGE_QCOW2,    /* sparse qcow2 conversion */
	IB_STAGE_VERIFY,   /* the raw image read back with libguestfs (verify/verify.h) */
	IB_STAGE_MANIFEST, /* digests of the outputs and the manifest */
	IB_STAGE__MAX
};
const char *ib_stage_name(enum ib_stage s);

struct ib_build_opts {
	const struct ib_project *project;
	const char *out_dir;               /* absolute; the project's output dir unless -o */
	const char *cache_dir;             /* absolute */
	int jobs;                          /* roles built at once, >= 1 */
	int force;                         /* rebuild even when nothing changed */
	time_t epoch;                      /* SOURCE_DATE_EPOCH */
	const struct ib_fetch_opts *fetch; /* downloads: offline, mirror, parallelism */
	/* Run `imgbuild verify --role` on each image before its outputs are moved into place;
	 * a failed check fails the role and nothing is written. */
	int verify;
};

struct ib_role_result {
	const char *role; /* not owned */
	int rc;           /* 0 or a negative ib_code */
	char err[2048];
	int reused;        /* outputs were up to date: nothing was rebuilt */
	int rootfs_reused; /* the root filesystem came from the cache */
	double seconds[IB_STAGE__MAX];
	double total;
	long long raw_size, raw_alloc, qcow2_size;
	char digest[65]; /* the input digest */
};

/* Build the named roles, opts->jobs at a time. results[i] belongs to roles[i]. Returns 0
 * when all succeeded, else the first failure's code (and records its message on ctx). */
int ib_build_roles(struct ib_ctx *ctx, const struct ib_build_opts *opts, const char *const *roles,
                   size_t n, struct ib_role_result *results);

/* The digest of everything a role's image is made from: the tool version, the root
 * filesystem key, the resolved role and the contents of every file it adds. */
int ib_role_digest(struct ib_ctx *ctx, const struct ib_project *p, const struct ib_resolved *r,
                   const char *rootfs_key, time_t epoch, char out[65]);

/* The digest of the chain's `checks:` (not an input of the image: what it was verified
 * against). */
void ib_checks_digest(const struct ib_resolved *r, char out[65]);
