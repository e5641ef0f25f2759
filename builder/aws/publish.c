/* publish.c: one role: find or upload and register its AMI, copy it, point its template at it. */
#include "ec2.h"
#include "publish.h"
#include "util/fs.h"

#define GIB ((uint64_t)1 << 30)

void aws_publish_result_release(struct aws_publish_result *r)
{
	free(r->ami);
	free(r->snapshot);
	free(r->name);
	aws_upload_result_release(&r->upload);
	for (size_t i = 0; i < r->n_copies; i++) {
		free(r->copies[i].region);
		free(r->copies[i].ami);
	}
	free(r->copies);
	free(r->lt_id);
	free(r->lt_name);
	aws_lt_owned_release(&r->lt);
	memset(r, 0, sizeof(*r));
}

/* AMI names allow [A-Za-z0-9()[] ./'@_-]; launch template names [A-Za-z0-9().-/_]. */
static char *sanitize(const char *s, const char *extra)
{
	char *r = xstrdup(s);
	for (char *p = r; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(extra, *p)))
			*p = '-';
	return r;
}

/* Our image with this identity tag, waited for when it is still pending. */
static int find_existing(struct ib_ctx *ctx, struct aws_client *c, const struct aws_publish_opts *o,
                         struct aws_image *im)
{
	int r = aws_find_image_by_tag(ctx, c, AWS_TAG_MANIFEST, o->manifest_sha256, im);
	if (r < 0 || !im->id)
		return r;
	if (!im->state || !streq(im->state, "available"))
		r = aws_wait_image(ctx, c, im->id, o->wait_timeout_s, o->poll_s);
	return r;
}

static int upload_and_register(struct ib_ctx *ctx, struct aws_client *c,
                               const struct aws_publish_opts *o, const char *const *tags,
                               size_t n_tags, struct aws_publish_result *ret)
{
	struct aws_upload_opts uo = o->upload;
	uo.path = o->raw_path;
	uo.tags = tags;
	uo.n_tags = n_tags;
	_cleanup_free_ char *desc = xasprintf("imgbuild %s %s", o->project, o->role);
	uo.description = desc;
	ib_stage(ctx, "upload", 0, 0);
	int r = aws_ebs_upload(ctx, c, &uo, &ret->upload);
	if (r < 0)
		return r;
	ib_stage(ctx, "upload", 1, ret->upload.seconds);
	const char *snap = ret->upload.snapshot_id;
	ret->snapshot = xstrdup(snap);
	double t0 = ib_now();
	ib_stage(ctx, "register", 0, 0);
	r = aws_wait_snapshot(ctx, c, snap, o->wait_timeout_s, o->poll_s);
	if (r == 0)
		r = aws_register_image(ctx, c, ret->name, desc, snap, ret->upload.volume_gib, tags,
		                       n_tags, &ret->ami);
	if (r < 0) {
		/* An image that is not registered leaves a snapshot nobody will use. */
		if (!c->dry_run) {
			struct ib_ctx sub;
			ib_ctx_init_child(&sub, ctx, ctx->label);
			if (aws_delete_snapshot(&sub, c, snap) < 0)
				ib_log(ctx, IB_LOG_WARN, "cannot delete snapshot %s: %s", snap,
				       sub.err);
			else
				ib_log(ctx, IB_LOG_INFO, "deleted snapshot %s", snap);
		}
		return r;
	}
	/* The identity tag again, on the image itself: some endpoints (moto) drop the
	 * TagSpecification of RegisterImage, and the next run finds the image by this tag. */
	r = aws_create_tags(ctx, c, ret->ami, tags, n_tags);
	if (r == 0)
		r = aws_wait_image(ctx, c, ret->ami, o->wait_timeout_s, o->poll_s);
	if (r == 0)
		ib_stage(ctx, "register", 1, ib_now() - t0);
	return r;
}

static int copy_to(struct ib_ctx *ctx, struct aws_client *c, const struct aws_publish_opts *o,
                   const char *region, const char *const *tags, size_t n_tags,
                   struct aws_publish_result *ret)
{
	struct aws_config rc = *c->cfg; /* shallow: only the region differs */
	rc.region = (char *)region;
	struct aws_client rcl = *c;
	rcl.cfg = &rc;
	struct aws_image im = {0};
	int r = find_existing(ctx, &rcl, o, &im);
	char *ami = NULL;
	if (r == 0 && im.id)
		ami = TAKE_PTR(im.id);
	else if (r == 0)
		r = aws_copy_image(ctx, &rcl, c->cfg->region, ret->ami, ret->name, tags, n_tags,
		                   o->wait_timeout_s, o->poll_s, &ami);
	aws_image_release(&im);
	c->requests = rcl.requests;
	c->retries = rcl.retries;
	if (r < 0)
		return r;
	ret->copies = xrealloc(ret->copies, (ret->n_copies + 1) * sizeof(*ret->copies));
	ret->copies[ret->n_copies].region = xstrdup(region);
	ret->copies[ret->n_copies].ami = ami;
	ret->n_copies++;
	return 0;
}

void aws_lt_owned_init(struct aws_lt_owned *lt, const char *project, const char *role,
                       const char *backup_value, const char *name, const char *ami,
                       const char *instance_type, const char *user_data, uint64_t gib)
{
	memset(lt, 0, sizeof(*lt));
	lt->base = xasprintf("%s-%s", project, role);
	const char *t[] = {
	        "Name",       lt->base, AWS_TAG_PROJECT, project,
	        AWS_TAG_ROLE, role,     AWS_TAG_BACKUP,  backup_value ? backup_value : "daily"};
	memcpy(lt->tags, t, sizeof(t));
	lt->spec = (struct aws_lt_spec){name, ami, instance_type, user_data, gib, lt->tags, 4};
}

void aws_lt_owned_release(struct aws_lt_owned *lt)
{
	free(lt->base);
	memset(lt, 0, sizeof(*lt));
}

int aws_publish_role(struct ib_ctx *ctx, struct aws_client *c, const struct aws_publish_opts *o,
                     struct aws_publish_result *ret)
{
	memset(ret, 0, sizeof(*ret));
	double t0 = ib_now();
	long long size = ib_file_size(o->raw_path);
	if (size <= 0)
		return ib_error(ctx, IB_E_IO, "cannot read the size of %s", o->raw_path);
	ret->volume_gib = ((uint64_t)size + GIB - 1) / GIB;
	_cleanup_free_ char *base = xasprintf("%s-%s", o->project, o->role);
	_cleanup_free_ char *raw_name = xasprintf("%s-%.16s", base, o->manifest_sha256);
	ret->name = sanitize(raw_name, "()[] ./'@_-");
	ret->lt_name = sanitize(base, "().-/_");
	const char *tags[] = {
	        "Name",           base,
	        AWS_TAG_PROJECT,  o->project,
	        AWS_TAG_ROLE,     o->role,
	        AWS_TAG_MANIFEST, o->manifest_sha256,
	        AWS_TAG_INPUTS,   o->inputs_digest ? o->inputs_digest : "",
	};
	size_t n_tags = ARRAY_SIZE(tags) / 2 - (o->inputs_digest ? 0 : 1);

	struct aws_image im = {0};
	int r = find_existing(ctx, c, o, &im);
	if (r == 0 && im.id) {
		ret->reused = 1;
		ret->ami = TAKE_PTR(im.id);
		ret->snapshot = TAKE_PTR(im.snapshot);
		ib_log(ctx, IB_LOG_INFO, "%s is already published as %s", o->raw_path, ret->ami);
	} else if (r == 0) {
		r = upload_and_register(ctx, c, o, tags, n_tags, ret);
	}
	aws_image_release(&im);
	for (size_t i = 0; r == 0 && i < o->n_copy_to; i++)
		if (!streq(o->copy_to[i], c->cfg->region))
			r = copy_to(ctx, c, o, o->copy_to[i], tags, n_tags, ret);
	if (r < 0)
		return r;

	aws_lt_owned_init(&ret->lt, o->project, o->role, o->backup_value, ret->lt_name, ret->ami,
	                  o->instance_type, o->user_data, ret->volume_gib);
	r = aws_launch_template(ctx, c, &ret->lt.spec, &ret->lt_id, &ret->lt_version,
	                        &ret->lt_changed);
	ret->seconds = ib_now() - t0;
	return r;
}
