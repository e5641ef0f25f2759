/* publish.h: a role's raw image to an AMI (and copies) and its launch template.
 *
 * Idempotent: the AMI carries the manifest's digest as a tag; publishing an unchanged image
 * finds it (DescribeImages) and uploads nothing. Otherwise: EBS direct upload (ebs.h), wait
 * for the snapshot, RegisterImage (x86_64, hvm, ENA, /dev/xvda, uefi-preferred, IMDSv2
 * only); if registering fails the snapshot is deleted. Copies to more regions wait until
 * available. The launch template gets a new version only when its data changed.
 */
#pragma once

#include "aws/ebs.h"

#define AWS_TAG_ROLE     "imgbuild:role"
#define AWS_TAG_PROJECT  "imgbuild:project"
#define AWS_TAG_MANIFEST "imgbuild:manifest-sha256"
#define AWS_TAG_INPUTS   "imgbuild:inputs-digest"
#define AWS_TAG_BACKUP   "imgbuild:backup"

struct aws_lt_spec {
	const char *name; /* launch template name */
	const char *ami;
	const char *instance_type; /* e.g. t3.medium */
	const char *user_data;     /* plain text (cloud-init), base64-encoded when sent; or NULL */
	uint64_t volume_gib;       /* root volume size */
	const char *const *tags;   /* key, value pairs for instances and volumes */
	size_t n_tags;
};

/* A launch template's data with the tags it owns (the other strings are borrowed). */
struct aws_lt_owned {
	struct aws_lt_spec spec;
	char *base; /* "<project>-<role>" */
	const char *tags[8];
};
void aws_lt_owned_init(struct aws_lt_owned *lt, const char *project, const char *role,
                       const char *backup_value, const char *name, const char *ami,
                       const char *instance_type, const char *user_data, uint64_t gib);
void aws_lt_owned_release(struct aws_lt_owned *lt);

struct aws_publish_opts {
	const char *project;
	const char *role;
	const char *raw_path;
	const char *manifest_sha256; /* sha256 of <role>.manifest.json: the identity tag */
	const char *inputs_digest;   /* the manifest's inputs.digest, or NULL */
	struct aws_upload_opts upload;
	const char *const *copy_to; /* more regions */
	size_t n_copy_to;
	const char *instance_type;
	const char *user_data;
	const char *backup_value; /* value of the backup tag on instances and volumes */
	double wait_timeout_s;    /* snapshot and image waits; default 1800 */
	double poll_s;            /* between polls; default 2 */
};

struct aws_copy {
	char *region;
	char *ami;
};

struct aws_publish_result {
	char *ami;
	char *snapshot;
	char *name;
	int reused; /* found by its digest tag: nothing uploaded */
	struct aws_upload_result upload;
	struct aws_copy *copies;
	size_t n_copies;
	char *lt_id;
	char *lt_name;
	struct aws_lt_owned lt; /* what the template says (for the Terraform file) */
	long lt_version;
	int lt_changed; /* a template or version was created */
	uint64_t volume_gib;
	double seconds;
};
void aws_publish_result_release(struct aws_publish_result *r);

/* cfg_for_region: a configuration like c->cfg for another region (copies); caller frees. */
int aws_publish_role(struct ib_ctx *ctx, struct aws_client *c, const struct aws_publish_opts *o,
                     struct aws_publish_result *ret);

/* The launch template (created, or a new default version when its data differ). */
int aws_launch_template(struct ib_ctx *ctx, struct aws_client *c, const struct aws_lt_spec *s,
                        char **ret_id, long *ret_version, int *ret_changed);
/* Add the LaunchTemplateData.* parameters of s to a form (shared by create and version). */
void aws_lt_form(struct strbuf *form, const struct aws_lt_spec *s);

/* Register the image of a completed snapshot. Caller frees *ret_ami. */
int aws_register_image(struct ib_ctx *ctx, struct aws_client *c, const char *name,
                       const char *description, const char *snapshot, uint64_t volume_gib,
                       const char *const *tags, size_t n_tags, char **ret_ami);
/* Copy ami from src_region into the client's region, tagged; wait until available. */
int aws_copy_image(struct ib_ctx *ctx, struct aws_client *c, const char *src_region,
                   const char *ami, const char *name, const char *const *tags, size_t n_tags,
                   double timeout_s, double poll_s, char **ret_ami);

/* Terraform JSON: one aws_launch_template per spec (keys name the resources), keeping the
 * other templates of previous (an earlier file's text, or NULL); and the AWS Backup plan
 * selecting resources tagged AWS_TAG_BACKUP=backup_value. Caller frees. */
char *aws_tf_launch_templates(const struct aws_lt_spec *specs, const char *const *keys, size_t n,
                              const char *previous);
char *aws_tf_backup_plan(const char *project, const char *backup_value, int retention_days);
