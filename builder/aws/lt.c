/* lt.c: launch templates through the API, and the same data as Terraform JSON files. */
#include "ec2.h"
#include "publish.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/jsonr.h"

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

/* A Terraform resource name from a role name. */
static char *tf_ident(const char *s)
{
	char *r = xasprintf("%s%s", (s[0] >= '0' && s[0] <= '9') ? "r_" : "", s);
	for (char *p = r; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			*p = '_';
	return r;
}

static void tf_tags(struct json *j, const char *key, const char *const *tags, size_t n)
{
	json_obj_begin(j, key);
	for (size_t i = 0; i < n; i++)
		json_str(j, tags[2 * i], tags[2 * i + 1]);
	json_obj_end(j);
}

/* Re-emit a value read back from an earlier file. */
static void emit(struct json *j, const char *key, const struct jsonr *v)
{
	switch (v->type) {
	case JSONR_NULL: json_str(j, key, NULL); break;
	case JSONR_BOOL: json_bool(j, key, v->boolean); break;
	case JSONR_NUMBER:
		if (v->is_int)
			json_int(j, key, (long long)v->integer);
		else
			json_num(j, key, v->number);
		break;
	case JSONR_STRING: json_str(j, key, v->str); break;
	case JSONR_ARRAY:
		json_arr_begin(j, key);
		for (size_t i = 0; i < v->n; i++)
			emit(j, NULL, &v->items[i]);
		json_arr_end(j);
		break;
	case JSONR_OBJECT:
		json_obj_begin(j, key);
		for (size_t i = 0; i < v->n; i++)
			emit(j, v->keys[i], &v->items[i]);
		json_obj_end(j);
		break;
	}
}

char *aws_tf_launch_templates(const struct aws_lt_spec *specs, const char *const *keys, size_t n,
                              const char *previous)
{
	struct jsonr *old = NULL;
	if (previous &&
	    jsonr_parse_ex(previous, strlen(previous), NULL, &old, &(struct jsonr_error){0}) < 0)
		old = NULL;
	const struct jsonr *old_lts = jsonr_get_type(jsonr_get_type(old, "resource", JSONR_OBJECT),
	                                             "aws_launch_template", JSONR_OBJECT);
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	json_init(&j, &sb, 1);
	json_obj_begin(&j, NULL);
	json_obj_begin(&j, "resource");
	json_obj_begin(&j, "aws_launch_template");
	/* Templates of roles not published this time stay as the earlier run wrote them. */
	for (size_t k = 0; old_lts && k < old_lts->n; k++) {
		int replaced = 0;
		for (size_t i = 0; i < n && !replaced; i++) {
			_cleanup_free_ char *id = tf_ident(keys[i]);
			replaced = streq(id, old_lts->keys[k]);
		}
		if (!replaced)
			emit(&j, old_lts->keys[k], &old_lts->items[k]);
	}
	jsonr_free(old);
	for (size_t i = 0; i < n; i++) {
		const struct aws_lt_spec *s = &specs[i];
		_cleanup_free_ char *id = tf_ident(keys[i]);
		json_obj_begin(&j, id);
		json_str(&j, "name", s->name);
		json_str(&j, "image_id", s->ami);
		json_str(&j, "instance_type", s->instance_type);
		if (s->user_data) {
			_cleanup_free_ char *b64 = aws_base64(s->user_data, strlen(s->user_data));
			json_str(&j, "user_data", b64);
		}
		json_bool(&j, "update_default_version", 1);
		json_obj_begin(&j, "metadata_options");
		json_str(&j, "http_endpoint", "enabled");
		json_str(&j, "http_tokens", "required");
		json_int(&j, "http_put_response_hop_limit", 2);
		json_obj_end(&j);
		json_arr_begin(&j, "block_device_mappings");
		json_obj_begin(&j, NULL);
		json_str(&j, "device_name", "/dev/xvda");
		json_obj_begin(&j, "ebs");
		json_str(&j, "encrypted", "true");
		json_int(&j, "volume_size", (long long)s->volume_gib);
		json_str(&j, "volume_type", "gp3");
		json_str(&j, "delete_on_termination", "true");
		json_obj_end(&j);
		json_obj_end(&j);
		json_arr_end(&j);
		json_arr_begin(&j, "tag_specifications");
		const char *types[] = {"instance", "volume"};
		for (size_t t = 0; t < ARRAY_SIZE(types); t++) {
			json_obj_begin(&j, NULL);
			json_str(&j, "resource_type", types[t]);
			tf_tags(&j, "tags", s->tags, s->n_tags);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		tf_tags(&j, "tags", s->tags, s->n_tags);
		json_obj_end(&j);
	}
	json_obj_end(&j);
	json_obj_end(&j);
	json_obj_end(&j);
	sb_addc(&sb, '\n');
	return sb_take(&sb);
}

char *aws_tf_backup_plan(const char *project, const char *backup_value)
{
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	json_init(&j, &sb, 1);
	_cleanup_free_ char *vault = xasprintf("%s-imgbuild", project);
	_cleanup_free_ char *plan = xasprintf("%s-imgbuild-%s", project, backup_value);
	_cleanup_free_ char *role = xasprintf("%s-imgbuild-backup", project);
	json_obj_begin(&j, NULL);
	json_obj_begin(&j, "resource");

	json_obj_begin(&j, "aws_backup_vault");
	json_obj_begin(&j, "imgbuild");
	json_str(&j, "name", vault);
	json_obj_end(&j);
	json_obj_end(&j);

	json_obj_begin(&j, "aws_backup_plan");
	json_obj_begin(&j, "imgbuild");
	json_str(&j, "name", plan);
	json_arr_begin(&j, "rule");
	json_obj_begin(&j, NULL);
	json_str(&j, "rule_name", backup_value);
	json_str(&j, "target_vault_name", "${aws_backup_vault.imgbuild.name}");
	/* Daily at 05:00 UTC, kept two weeks. */
	json_str(&j, "schedule", "cron(0 5 ? * * *)");
	json_obj_begin(&j, "lifecycle");
	json_int(&j, "delete_after", 14);
	json_obj_end(&j);
	json_obj_end(&j);
	json_arr_end(&j);
	json_obj_end(&j);
	json_obj_end(&j);

	json_obj_begin(&j, "aws_iam_role");
	json_obj_begin(&j, "imgbuild_backup");
	json_str(&j, "name", role);
	json_str(&j, "assume_role_policy",
	         "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
	         "{\"Service\":\"backup.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}");
	json_obj_end(&j);
	json_obj_end(&j);

	json_obj_begin(&j, "aws_iam_role_policy_attachment");
	json_obj_begin(&j, "imgbuild_backup");
	json_str(&j, "role", "${aws_iam_role.imgbuild_backup.name}");
	json_str(&j, "policy_arn",
	         "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup");
	json_obj_end(&j);
	json_obj_end(&j);

	json_obj_begin(&j, "aws_backup_selection");
	json_obj_begin(&j, "imgbuild");
	json_str(&j, "name", plan);
	json_str(&j, "plan_id", "${aws_backup_plan.imgbuild.id}");
	json_str(&j, "iam_role_arn", "${aws_iam_role.imgbuild_backup.arn}");
	json_arr_begin(&j, "selection_tag");
	json_obj_begin(&j, NULL);
	json_str(&j, "type", "STRINGEQUALS");
	json_str(&j, "key", AWS_TAG_BACKUP);
	json_str(&j, "value", backup_value);
	json_obj_end(&j);
	json_arr_end(&j);
	json_obj_end(&j);
	json_obj_end(&j);

	json_obj_end(&j);
	json_obj_end(&j);
	sb_addc(&sb, '\n');
	return sb_take(&sb);
}
