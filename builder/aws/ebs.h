/* ebs.h: a raw image into an EBS snapshot through the EBS direct APIs.
 *
 * StartSnapshot, then PutSnapshotBlock for every 512 KiB block (zero blocks included: an
 * encrypted volume reads a block missing from its snapshot as garbage, not zeros), many at
 * once on one curl multi handle, in bounded memory (a fixed pool of `concurrency` block
 * buffers, never the whole image), each with its SHA-256; then CompleteSnapshot with the
 * LINEAR aggregate checksum. With skip_holes, blocks that lie wholly in a hole of the sparse
 * file (SEEK_DATA/SEEK_HOLE: never written, not merely zero) are left out.
 */
#pragma once

#include "aws/client.h"

#define AWS_EBS_BLOCK 524288u /* the only x-amz-Data-Length PutSnapshotBlock accepts */

struct aws_upload_opts {
	const char *path;        /* the raw image */
	const char *description; /* <= 255 characters */
	const char *const *tags; /* key, value pairs */
	size_t n_tags;
	int concurrency;          /* requests in flight; default 64 */
	int skip_holes;           /* leave out blocks wholly in holes of the file */
	long timeout_minutes;     /* StartSnapshot Timeout (10..4320); default 60 */
	int max_block_attempts;   /* default 10 */
	long block_timeout_ms;    /* one PutSnapshotBlock attempt; default 30000 */
	double not_found_grace_s; /* retry ResourceNotFound this long after start; 120 */
};

struct aws_upload_result {
	char *snapshot_id;
	uint64_t size;            /* bytes of the image */
	uint64_t volume_gib;      /* VolumeSize asked for */
	uint64_t blocks_total;    /* ceil(size / block) */
	uint64_t blocks_uploaded; /* ChangedBlocksCount */
	uint64_t blocks_skipped;  /* holes left out with skip_holes */
	unsigned long retries;    /* PutSnapshotBlock attempts beyond the first */
	double seconds;           /* StartSnapshot to CompleteSnapshot */
	char checksum[45];        /* the aggregate sent, base64 */
};
void aws_upload_result_release(struct aws_upload_result *r);

/* Upload. On failure after StartSnapshot the snapshot is deleted (best effort) and its id
 * is not returned. */
int aws_ebs_upload(struct ib_ctx *ctx, struct aws_client *c, const struct aws_upload_opts *o,
                   struct aws_upload_result *ret);

/* The LINEAR aggregate: SHA-256 over the raw 32-byte digests of the blocks written, in
 * ascending block index, sent base64. */
struct aws_linear {
	void *md; /* EVP_MD_CTX */
};
void aws_linear_init(struct aws_linear *l);
void aws_linear_add(struct aws_linear *l, const unsigned char digest[32]);
/* Finish into base64 (44 characters and a NUL) and release. */
void aws_linear_final(struct aws_linear *l, char out[45]);
/* SHA-256 of one block: raw digest and its base64 (x-amz-Checksum). */
void aws_block_digest(const void *data, size_t len, unsigned char digest[32], char b64[45]);
