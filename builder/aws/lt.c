/* lt.c: launch templates through the API: created, or a new default version when changed. */
#include "ec2.h"
#include "publish.h"
#include "util/hash.h"

void aws_lt_form(struct strbuf *f, const struct aws_lt_spec *s)
{
	char gib[32];
	snprintf(gib, sizeof(gib), "%llu", (unsigned long long)s->volume_gib);
	aws_form_add(f, "LaunchTemplateData.ImageId", s->ami);
	aws_form_add(f, "LaunchTemplateData.InstanceType", s->instance_type);
	if (s->user_data) {
		_cleanup_free_ char *b64 = aws_base64(s->user_data, strlen(s->user_data));
		aws_form_add(f, "LaunchTemplateData.UserData", b64);
	}
	aws_form_add(f, "LaunchTemplateData.MetadataOptions.HttpTokens", "required");
	aws_form_add(f, "LaunchTemplateData.MetadataOptions.HttpEndpoint", "enabled");
	aws_form_add(f, "LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit", "2");
	/* Encrypted at launch: a volume from the AMI's unencrypted snapshot, encrypted with the
	 * account's EBS key (no SnapshotId here, so that the encryption may be set). */
	const char *bdm = "LaunchTemplateData.BlockDeviceMapping.1.";
	aws_form_addf(f, "/dev/xvda", "%sDeviceName", bdm);
	aws_form_addf(f, "true", "%sEbs.Encrypted", bdm);
	aws_form_addf(f, gib, "%sEbs.VolumeSize", bdm);
	aws_form_addf(f, "gp3", "%sEbs.VolumeType", bdm);
	aws_form_addf(f, "true", "%sEbs.DeleteOnTermination", bdm);
	const char *types[] = {"instance", "volume"};
	for (size_t t = 0; t < ARRAY_SIZE(types) && s->n_tags; t++) {
		aws_form_addf(f, types[t], "LaunchTemplateData.TagSpecification.%zu.ResourceType",
		              t + 1);
		for (size_t i = 0; i < s->n_tags; i++) {
			aws_form_addf(f, s->tags[2 * i],
			              "LaunchTemplateData.TagSpecification.%zu.Tag.%zu.Key", t + 1,
			              i + 1);
			aws_form_addf(f, s->tags[2 * i + 1],
			              "LaunchTemplateData.TagSpecification.%zu.Tag.%zu.Value",
			              t + 1, i + 1);
		}
	}
}

/* Does the template's latest version already say what s says? */
static int latest_matches(struct ib_ctx *ctx, struct aws_client *c, const struct aws_lt_spec *s,
                          long *ret_version, int *ret_same)
{
	*ret_same = 0;
	struct strbuf f = STRBUF_INIT;
	aws_form_add(&f, "LaunchTemplateName", s->name);
	aws_form_add(&f, "LaunchTemplateVersion.1", "$Latest");
	_cleanup_xml_ struct xml_node *x = NULL;
	int r = aws_ec2(ctx, c, "DescribeLaunchTemplateVersions", &f, 0, &x, NULL);
	sb_release(&f);
	if (r < 0 || !x)
		return r;
	const struct xml_node *v = xml_path(x, "launchTemplateVersionSet/item");
	const char *num = xml_text(v, "versionNumber");
	const char *ami = xml_text(v, "launchTemplateData/imageId");
	const char *type = xml_text(v, "launchTemplateData/instanceType");
	const char *ud = xml_text(v, "launchTemplateData/userData");
	const char *tokens = xml_text(v, "launchTemplateData/metadataOptions/httpTokens");
	_cleanup_free_ char *b64 =
	        s->user_data ? aws_base64(s->user_data, strlen(s->user_data)) : xstrdup("");
	*ret_version = num ? strtol(num, NULL, 10) : 0;
	*ret_same = ami && streq(ami, s->ami) && type && streq(type, s->instance_type) &&
	            streq(ud ? ud : "", b64) && tokens && streq(tokens, "required");
	return 0;
}

int aws_launch_template(struct ib_ctx *ctx, struct aws_client *c, const struct aws_lt_spec *s,
                        char **ret_id, long *ret_version, int *ret_changed)
{
	*ret_id = NULL;
	*ret_version = 0;
	*ret_changed = 0;
	struct strbuf f = STRBUF_INIT;
	aws_form_add(&f, "LaunchTemplateName.1", s->name);
	_cleanup_xml_ struct xml_node *x = NULL;
	_cleanup_free_ char *code = NULL;
	int r = aws_ec2(ctx, c, "DescribeLaunchTemplates", &f, 1, &x, &code);
	sb_release(&f);
	if (r < 0)
		return r;
	if (r == 1 && code && !streq(code, "InvalidLaunchTemplateName.NotFoundException"))
		return ib_error(ctx, IB_E_NETWORK, "DescribeLaunchTemplates %s: %s", s->name, code);
	const char *id = x ? xml_text(x, "launchTemplates/item/launchTemplateId") : NULL;

	if (id) {
		long latest = 0;
		int same = 0;
		if ((r = latest_matches(ctx, c, s, &latest, &same)) < 0)
			return r;
		*ret_id = xstrdup(id);
		if (same) {
			*ret_version = latest;
			return 0;
		}
		struct strbuf v = STRBUF_INIT;
		aws_form_add(&v, "LaunchTemplateId", id);
		aws_form_add(&v, "VersionDescription", s->ami);
		aws_lt_form(&v, s);
		_cleanup_xml_ struct xml_node *vx = NULL;
		r = aws_ec2(ctx, c, "CreateLaunchTemplateVersion", &v, 0, &vx, NULL);
		sb_release(&v);
		if (r < 0)
			return r;
		const char *num = vx ? xml_text(vx, "launchTemplateVersion/versionNumber") : "1";
		*ret_version = num ? strtol(num, NULL, 10) : 0;
		/* Launches that name the template without a version get the new image. */
		struct strbuf m = STRBUF_INIT;
		char ver[32];
		snprintf(ver, sizeof(ver), "%ld", *ret_version);
		aws_form_add(&m, "LaunchTemplateId", id);
		aws_form_add(&m, "SetDefaultVersion", ver);
		_cleanup_xml_ struct xml_node *mx = NULL;
		r = aws_ec2(ctx, c, "ModifyLaunchTemplate", &m, 0, &mx, NULL);
		sb_release(&m);
		*ret_changed = 1;
		return r;
	}

	struct strbuf cf = STRBUF_INIT;
	aws_form_add(&cf, "LaunchTemplateName", s->name);
	aws_form_add(&cf, "VersionDescription", s->ami);
	/* Retries of this exact request create one template. */
	char token[65];
	_cleanup_free_ char *seed = xasprintf("%s\n%s", s->name, s->ami);
	ib_sha256_hex(seed, strlen(seed), token);
	aws_form_add(&cf, "ClientToken", token);
	aws_lt_form(&cf, s);
	aws_form_add(&cf, "TagSpecification.1.ResourceType", "launch-template");
	for (size_t i = 0; i < s->n_tags; i++) {
		aws_form_addf(&cf, s->tags[2 * i], "TagSpecification.1.Tag.%zu.Key", i + 1);
		aws_form_addf(&cf, s->tags[2 * i + 1], "TagSpecification.1.Tag.%zu.Value", i + 1);
	}
	_cleanup_xml_ struct xml_node *cx = NULL;
	r = aws_ec2(ctx, c, "CreateLaunchTemplate", &cf, 0, &cx, NULL);
	sb_release(&cf);
	if (r < 0)
		return r;
	const char *nid = cx ? xml_text(cx, "launchTemplate/launchTemplateId") : "lt-dry-run";
	const char *num = cx ? xml_text(cx, "launchTemplate/latestVersionNumber") : "1";
	if (!nid)
		return ib_error(ctx, IB_E_NETWORK, "CreateLaunchTemplate answer has no id");
	*ret_id = xstrdup(nid);
	*ret_version = num ? strtol(num, NULL, 10) : 1;
	*ret_changed = 1;
	return 0;
}
