/* verify.c: run every check of one image in one appliance launch and sum them up. */
#include "util/strbuf.h"
#include "verify_int.h"

#define MAX_NAMED 8 /* failed checks named in the error message */

static void vctx_release(struct vctx *v)
{
	v_close(v);
	free(v->disk);
	for (int i = 0; i < V_PARTS; i++) {
		free(v->part[i]);
		free(v->part_guid[i]);
	}
	for (size_t i = 0; i < v->n_fs; i++) {
		free(v->fs[i].dev);
		free(v->fs[i].type);
		free(v->fs[i].uuid);
		free(v->fs[i].label);
	}
	free(v->fs);
	free(v->root);
	strv_release(&v->mnt_dirs);
	strv_release(&v->mnt_devs);
	sb_release(&v->launch_err);
}

static int failed(struct ib_ctx *ctx, const char *image, const struct ib_verify_report *r)
{
	struct strbuf names = STRBUF_INIT;
	size_t listed = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (r->results[i].ok)
			continue;
		if (listed++ < MAX_NAMED)
			sb_addf(&names, "%s%s", names.len ? ", " : "", r->results[i].name);
	}
	if (listed > MAX_NAMED)
		sb_addf(&names, " and %zu more", listed - MAX_NAMED);
	int ret = ib_error(ctx, IB_E_VERIFY, "image '%s' failed %zu of %zu checks: %s", image,
	                   r->n_failed, r->n, sb_str(&names));
	sb_release(&names);
	return ret;
}

int ib_verify_image(struct ib_ctx *ctx, const char *image, const struct ib_resolved *role,
                    const struct ib_verify_opts *o, struct ib_verify_report *ret)
{
	static const struct ib_verify_opts defaults = {0};
	if (!o)
		o = &defaults;
	memset(ret, 0, sizeof(*ret));
	struct ib_verify_report rep = {0};
	struct vctx v = {.ctx = ctx,
	                 .rep = &rep,
	                 .image = image,
	                 .vendor_layout = role && role->base_image,
	                 .layout_guessed = !role};
	double t0 = ib_now();
	ib_stage(ctx, "verify", 0, 0);
	int r = v_open(&v, o->format, o->memsize_mb, o->flags);
	if (r < 0) {
		vctx_release(&v);
		ib_verify_report_release(&rep);
		return r;
	}
	/* Order matters: the layout finds partitions and filesystems that the later groups
	 * resolve names against, and the system group mounts the root they read. */
	static const struct {
		const char *name;
		void (*fn)(struct vctx *v);
	} groups[] = {
	        {"layout", v_check_layout},
	        {"system", v_check_system},
	        {"sealing", v_check_sealing},
	        {"secrets", v_check_secrets},
	};
	for (size_t i = 0; i < ARRAY_SIZE(groups) && !ib_interrupted; i++) {
		double t = ib_now();
		groups[i].fn(&v);
		ib_log(ctx, IB_LOG_DEBUG, "verify: %s checks took %.1fs", groups[i].name,
		       ib_now() - t);
	}
	if (!ib_interrupted)
		v_check_manifest(&v, role, o->expect_digest);
	if (role && !ib_interrupted)
		v_check_role(&v, role);
	vctx_release(&v);
	rep.seconds = ib_now() - t0;
	ib_stage(ctx, "verify", 1, rep.seconds);
	if (ib_interrupted) {
		ib_verify_report_release(&rep);
		return ib_error(ctx, IB_E_INTERRUPTED, "interrupted while verifying '%s'", image);
	}
	*ret = rep;
	return rep.n_failed ? failed(ctx, image, &rep) : 0;
}
