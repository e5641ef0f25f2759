/* ec2.c: EC2 Query API calls: form encoding, answers, image and snapshot look-ups and waits. */
#include <time.h>

#include "ec2.h"

void aws_form_add(struct strbuf *form, const char *name, const char *value)
{
	sb_addc(form, '&');
	aws_uri_encode(form, name, strlen(name), 0);
	sb_addc(form, '=');
	aws_uri_encode(form, value, strlen(value), 0);
}

void aws_form_addf(struct strbuf *form, const char *value, const char *namefmt, ...)
{
	va_list ap;
	va_start(ap, namefmt);
	char *name = NULL;
	if (vasprintf(&name, namefmt, ap) < 0)
		abort();
	va_end(ap);
	aws_form_add(form, name, value);
	free(name);
}

int aws_ec2(struct ib_ctx *ctx, struct aws_client *c, const char *action, const struct strbuf *form,
            int soft, struct xml_node **ret, char **ret_code)
{
	*ret = NULL;
	if (ret_code)
		*ret_code = NULL;
	_cleanup_free_ char *body =
	        xasprintf("Action=%s&Version=" AWS_EC2_VERSION "%s", action, sb_str(form));
	struct aws_call call = {
	        .service = "ec2",
	        .method = "POST",
	        .path = "/",
	        .content_type = "application/x-www-form-urlencoded; charset=utf-8",
	        .body = body,
	        .body_len = strlen(body),
	        .what = action,
	        .soft_errors = soft,
	};
	struct aws_resp resp;
	int r = aws_call(ctx, c, &call, &resp);
	if (r < 0)
		return r;
	if (r == 1) {
		if (ret_code)
			*ret_code = TAKE_PTR(resp.code);
		aws_resp_release(&resp);
		return 1;
	}
	if (c->dry_run) {
		aws_resp_release(&resp);
		return 0;
	}
	_cleanup_free_ char *what = xasprintf("%s answer", action);
	r = xml_parse(ctx, IB_E_NETWORK, what, resp.body, resp.len, ret);
	aws_resp_release(&resp);
	return r;
}

void aws_image_release(struct aws_image *im)
{
	free(im->id);
	free(im->state);
	free(im->name);
	free(im->snapshot);
	memset(im, 0, sizeof(*im));
}

static void image_from(const struct xml_node *item, struct aws_image *im)
{
	const char *id = xml_text(item, "imageId");
	const char *st = xml_text(item, "imageState");
	const char *nm = xml_text(item, "name");
	const char *sn = xml_text(item, "blockDeviceMapping/item/ebs/snapshotId");
	im->id = id ? xstrdup(id) : NULL;
	im->state = st ? xstrdup(st) : NULL;
	im->name = nm ? xstrdup(nm) : NULL;
	im->snapshot = sn ? xstrdup(sn) : NULL;
}

/* The first image of a DescribeImages answer that is not deregistered. */
static int describe_one(struct ib_ctx *ctx, struct aws_client *c, const struct strbuf *form,
                        struct aws_image *im)
{
	memset(im, 0, sizeof(*im));
	_cleanup_xml_ struct xml_node *x = NULL;
	int r = aws_ec2(ctx, c, "DescribeImages", form, 0, &x, NULL);
	if (r < 0 || !x)
		return r < 0 ? r : 0;
	const struct xml_node *set = xml_child(x, "imagesSet");
	for (size_t i = 0; set && i < set->n; i++) {
		const char *st = xml_text(&set->children[i], "imageState");
		if (st && (streq(st, "deregistered") || streq(st, "failed") || streq(st, "error") ||
		           streq(st, "invalid")))
			continue;
		image_from(&set->children[i], im);
		break;
	}
	return 0;
}

int aws_find_image_by_tag(struct ib_ctx *ctx, struct aws_client *c, const char *key,
                          const char *value, struct aws_image *im)
{
	struct strbuf form = STRBUF_INIT;
	_cleanup_free_ char *fname = xasprintf("tag:%s", key);
	aws_form_add(&form, "Owner.1", "self");
	aws_form_add(&form, "Filter.1.Name", fname);
	aws_form_add(&form, "Filter.1.Value.1", value);
	int r = describe_one(ctx, c, &form, im);
	sb_release(&form);
	return r;
}

int aws_find_image_by_name(struct ib_ctx *ctx, struct aws_client *c, const char *name,
                           struct aws_image *im)
{
	struct strbuf form = STRBUF_INIT;
	aws_form_add(&form, "Owner.1", "self");
	aws_form_add(&form, "Filter.1.Name", "name");
	aws_form_add(&form, "Filter.1.Value.1", name);
	int r = describe_one(ctx, c, &form, im);
	sb_release(&form);
	return r;
}

static void sleep_s(double s)
{
	for (double left = s; left > 0 && !ib_interrupted; left -= 0.1) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

int aws_wait_image(struct ib_ctx *ctx, struct aws_client *c, const char *ami, double timeout_s,
                   double interval_s)
{
	double t0 = ib_now();
	for (;;) {
		struct strbuf form = STRBUF_INIT;
		aws_form_add(&form, "ImageId.1", ami);
		_cleanup_xml_ struct xml_node *x = NULL;
		_cleanup_free_ char *code = NULL;
		int r = aws_ec2(ctx, c, "DescribeImages", &form, 1, &x, &code);
		sb_release(&form);
		if (r < 0 || c->dry_run) /* a dry run shows the first poll */
			return r;
		/* Just after RegisterImage or CopyImage the id may not be visible yet. */
		const char *st = x ? xml_text(x, "imagesSet/item/imageState") : NULL;
		if (r == 1 && code && !streq(code, "InvalidAMIID.NotFound"))
			return ib_error(ctx, IB_E_NETWORK, "DescribeImages %s: %s", ami, code);
		if (st && streq(st, "available"))
			return 0;
		if (st && (streq(st, "failed") || streq(st, "error") || streq(st, "invalid") ||
		           streq(st, "deregistered"))) {
			const char *why = xml_text(x, "imagesSet/item/stateReason/message");
			return ib_error(ctx, IB_E_NETWORK, "image %s is %s%s%s", ami, st,
			                why ? ": " : "", why ? why : "");
		}
		if (ib_now() - t0 > timeout_s)
			return ib_error(ctx, IB_E_NETWORK,
			                "image %s not available after %.0f s (state %s)", ami,
			                timeout_s, st ? st : "unknown");
		if (ib_interrupted)
			return ib_error(ctx, IB_E_INTERRUPTED, "interrupted waiting for %s", ami);
		sleep_s(interval_s);
	}
}

int aws_wait_snapshot(struct ib_ctx *ctx, struct aws_client *c, const char *snap, double timeout_s,
                      double interval_s)
{
	double t0 = ib_now();
	int completed = 0;
	for (;;) {
		struct strbuf form = STRBUF_INIT;
		aws_form_add(&form, "SnapshotId.1", snap);
		_cleanup_xml_ struct xml_node *x = NULL;
		_cleanup_free_ char *code = NULL;
		int r = aws_ec2(ctx, c, "DescribeSnapshots", &form, 1, &x, &code);
		sb_release(&form);
		if (r < 0 || c->dry_run) /* a dry run shows the first poll */
			return r;
		if (r == 1 && code && !streq(code, "InvalidSnapshot.NotFound"))
			return ib_error(ctx, IB_E_NETWORK, "DescribeSnapshots %s: %s", snap, code);
		const char *st = x ? xml_text(x, "snapshotSet/item/status") : NULL;
		if (st && streq(st, "error")) {
			const char *m = xml_text(x, "snapshotSet/item/statusMessage");
			return ib_error(ctx, IB_E_NETWORK, "snapshot %s is in state error%s%s",
			                snap, m && *m ? ": " : "", m ? m : "");
		}
		completed = st && streq(st, "completed") ? completed + 1 : 0;
		if (completed >= 3)
			return 0;
		if (ib_now() - t0 > timeout_s)
			return ib_error(ctx, IB_E_NETWORK,
			                "snapshot %s not completed after %.0f s (state %s)", snap,
			                timeout_s, st ? st : "unknown");
		if (ib_interrupted)
			return ib_error(ctx, IB_E_INTERRUPTED, "interrupted waiting for %s", snap);
		/* The confirmations come quickly; the wait for the state itself is paced. */
		sleep_s(completed ? interval_s / 4 : interval_s);
	}
}

int aws_delete_snapshot(struct ib_ctx *ctx, struct aws_client *c, const char *snap)
{
	struct strbuf form = STRBUF_INIT;
	aws_form_add(&form, "SnapshotId", snap);
	_cleanup_xml_ struct xml_node *x = NULL;
	int was = c->cleanup;
	c->cleanup = 1;
	int r = aws_ec2(ctx, c, "DeleteSnapshot", &form, 0, &x, NULL);
	c->cleanup = was;
	sb_release(&form);
	return r;
}

int aws_create_tags(struct ib_ctx *ctx, struct aws_client *c, const char *resource,
                    const char *const *kv, size_t n_pairs)
{
	struct strbuf form = STRBUF_INIT;
	aws_form_add(&form, "ResourceId.1", resource);
	for (size_t i = 0; i < n_pairs; i++) {
		aws_form_addf(&form, kv[2 * i], "Tag.%zu.Key", i + 1);
		aws_form_addf(&form, kv[2 * i + 1], "Tag.%zu.Value", i + 1);
	}
	_cleanup_xml_ struct xml_node *x = NULL;
	int r = aws_ec2(ctx, c, "CreateTags", &form, 0, &x, NULL);
	sb_release(&form);
	return r;
}
