/* tf.c: the launch templates and an AWS Backup plan as Terraform JSON files. */
#include "publish.h"
#include "util/json.h"
#include "util/jsonr.h"

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

char *aws_tf_backup_plan(const char *project, const char *backup_value, int retention_days)
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
	/* Daily at 05:00 UTC, after the hosts' own nightly dumps and etcd snapshots. */
	json_str(&j, "schedule", "cron(0 5 ? * * *)");
	json_obj_begin(&j, "lifecycle");
	json_int(&j, "delete_after", retention_days);
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
