/* cmd_publish.c: `imgbuild publish [ROLE...]` and `imgbuild all --target ami`. */
#include <sys/resource.h>

#include "aws/publish.h"
#include "cli.h"
#include "seedcfg.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/jsonr.h"

#define MAX_MANIFEST          (64u << 20)
#define DEFAULT_INSTANCE_TYPE "t3.medium"

/* What one role publishes from, checked before any request is sent. */
struct role_in {
	const char *role;
	char *raw, *manifest;
	char manifest_sha[IB_SHA256_HEX];
	char *inputs_digest;
	struct seed_data sd;
	struct aws_publish_result res;
	int rc;
	char err[2048];
};

static void role_in_release(struct role_in *r)
{
	free(r->raw);
	free(r->manifest);
	free(r->inputs_digest);
	seed_data_release(&r->sd);
	aws_publish_result_release(&r->res);
}

/* The role's outputs exist, the raw image matches its manifest, the user-data renders. */
static int prepare_role(struct cli *cli, const struct ib_project *p, const char *out,
                        struct role_in *ri)
{
	struct ib_ctx *ctx = &cli->ctx;
	ri->raw = xasprintf("%s/%s.raw", out, ri->role);
	ri->manifest = xasprintf("%s/%s.manifest.json", out, ri->role);
	if (!ib_exists(ri->raw) || !ib_exists(ri->manifest))
		return ib_error(ctx, IB_E_USAGE,
		                "%s is not built (no %s): build it first with 'imgbuild build %s' "
		                "or 'imgbuild all --target ami'",
		                ri->role, ib_exists(ri->raw) ? ri->manifest : ri->raw, ri->role);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = ib_read_file(ctx, ri->manifest, MAX_MANIFEST, &text, &len);
	if (r < 0)
		return r;
	ib_sha256_hex(text, len, ri->manifest_sha);
	_cleanup_jsonr_ struct jsonr *m = NULL;
	r = jsonr_parse(ctx, IB_E_SPEC, ri->manifest, text, len, &m);
	if (r < 0)
		return r;
	const char *d = jsonr_get_str(jsonr_get(m, "inputs"), "digest");
	ri->inputs_digest = d ? xstrdup(d) : NULL;
	const struct jsonr *sz =
	        jsonr_get_type(jsonr_get(jsonr_get(m, "outputs"), "raw"), "size", JSONR_NUMBER);
	long long actual = ib_file_size(ri->raw);
	if (sz && sz->is_int && sz->integer != actual)
		return ib_error(ctx, IB_E_USAGE,
		                "%s is %lld bytes but its manifest says %lld: rebuild it "
		                "('imgbuild build %s')",
		                ri->raw, actual, (long long)sz->integer, ri->role);
	struct ib_resolved *res = NULL;
	r = ib_role_resolve(ctx, p, ri->role, &res);
	if (r == 0)
		r = seed_render(ctx, p, res, NULL, NULL, &ri->sd);
	ib_resolved_free(res);
	return r;
}

static void on_request(void *data, const char *text)
{
	struct cli *cli = data;
	pthread_mutex_lock(&cli->out_lock);
	if (cli->json) {
		struct strbuf sb = STRBUF_INIT;
		struct json j;
		json_init(&j, &sb, 0);
		json_obj_begin(&j, NULL);
		json_str(&j, "event", "request");
		json_str(&j, "request", text);
		json_obj_end(&j);
		printf("%s\n", sb_str(&sb));
		sb_release(&sb);
	} else {
		printf("%s\n", text);
	}
	pthread_mutex_unlock(&cli->out_lock);
}

/* Test and tuning knobs from the environment (documented in the man page). */
static double env_num(const char *name, double dflt)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	char *end;
	double d = strtod(v, &end);
	return *end || d <= 0 ? dflt : d;
}

static void print_summary(struct cli *cli, const struct aws_client *c, struct role_in *ri, size_t n)
{
	struct rusage ru;
	long peak = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
	if (cli->json) {
		struct strbuf sb = STRBUF_INIT;
		struct json j;
		json_init(&j, &sb, 0);
		json_obj_begin(&j, NULL);
		json_str(&j, "event", "summary");
		json_str(&j, "region", c->cfg->region);
		json_bool(&j, "dry_run", c->dry_run);
		json_arr_begin(&j, "roles");
		for (size_t i = 0; i < n; i++) {
			const struct aws_publish_result *r = &ri[i].res;
			json_obj_begin(&j, NULL);
			json_str(&j, "role", ri[i].role);
			json_str(&j, "result",
			         ri[i].rc < 0 ? "failed"
			         : r->reused  ? "reused"
			                      : "published");
			if (ri[i].rc < 0)
				json_str(&j, "error", ri[i].err);
			json_str(&j, "manifest_sha256", ri[i].manifest_sha);
			json_str(&j, "ami", r->ami);
			json_str(&j, "snapshot", r->snapshot);
			json_str(&j, "name", r->name);
			json_int(&j, "size", (long long)r->upload.size);
			json_int(&j, "blocks_total", (long long)r->upload.blocks_total);
			json_int(&j, "blocks_uploaded", (long long)r->upload.blocks_uploaded);
			json_int(&j, "blocks_skipped", (long long)r->upload.blocks_skipped);
			json_int(&j, "block_retries", (long long)r->upload.retries);
			json_num(&j, "upload_seconds", r->upload.seconds);
			json_num(&j, "upload_mib_per_s",
			         r->upload.seconds > 0
			                 ? (double)r->upload.blocks_uploaded * AWS_EBS_BLOCK /
			                           (1 << 20) / r->upload.seconds
			                 : 0);
			json_str(&j, "checksum", r->upload.checksum[0] ? r->upload.checksum : NULL);
			json_obj_begin(&j, "copies");
			for (size_t k = 0; k < r->n_copies; k++)
				json_str(&j, r->copies[k].region, r->copies[k].ami);
			json_obj_end(&j);
			json_str(&j, "launch_template_id", r->lt_id);
			json_str(&j, "launch_template_name", r->lt_name);
			json_int(&j, "launch_template_version", r->lt_version);
			json_bool(&j, "launch_template_changed", r->lt_changed);
			json_num(&j, "seconds", r->seconds);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_int(&j, "requests", (long long)c->requests);
		json_int(&j, "retries", (long long)c->retries);
		json_int(&j, "peak_rss_kib", peak);
		json_obj_end(&j);
		printf("%s\n", sb_str(&sb));
		sb_release(&sb);
		return;
	}
	if (cli->verbosity < 1 || c->dry_run)
		return;
	pthread_mutex_lock(&cli->out_lock);
	printf("\n%-10s %-9s %-22s %-24s %-14s %8s %s\n", "ROLE", "RESULT", "AMI", "SNAPSHOT",
	       "BLOCKS", "MiB/s", "LAUNCH TEMPLATE");
	for (size_t i = 0; i < n; i++) {
		const struct aws_publish_result *r = &ri[i].res;
		char blocks[32] = "-", speed[16] = "-", lt[96] = "-";
		if (!r->reused && r->upload.blocks_total)
			snprintf(blocks, sizeof(blocks), "%llu/%llu",
			         (unsigned long long)r->upload.blocks_uploaded,
			         (unsigned long long)r->upload.blocks_total);
		if (!r->reused && r->upload.seconds > 0)
			snprintf(speed, sizeof(speed), "%.1f",
			         (double)r->upload.blocks_uploaded * AWS_EBS_BLOCK / (1 << 20) /
			                 r->upload.seconds);
		if (r->lt_id)
			snprintf(lt, sizeof(lt), "%s v%ld", r->lt_id, r->lt_version);
		printf("%-10s %-9s %-22s %-24s %-14s %8s %s\n", ri[i].role,
		       ri[i].rc < 0 ? "FAILED"
		       : r->reused  ? "reused"
		                    : "published",
		       r->ami ? r->ami : "-", r->snapshot ? r->snapshot : "-", blocks, speed, lt);
		for (size_t k = 0; k < r->n_copies; k++)
			printf("%-10s %-9s %-22s %s\n", "", "copy", r->copies[k].ami,
			       r->copies[k].region);
	}
	pthread_mutex_unlock(&cli->out_lock);
}

/* out/aws/launch-templates.tf.json and out/aws/backup-plan.tf.json, atomically. */
static int write_tf(struct cli *cli, const struct ib_project *p, const char *out,
                    struct role_in *ri, size_t n, const char *backup, int retention)
{
	struct ib_ctx *ctx = &cli->ctx;
	_cleanup_free_ char *dir = xasprintf("%s/aws", out);
	int r = ib_mkdir_p(ctx, dir, 0755);
	if (r < 0)
		return r;
	struct aws_lt_spec *specs = xcalloc(n ? n : 1, sizeof(*specs));
	const char **keys = xcalloc(n ? n : 1, sizeof(*keys));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (ri[i].rc == 0 && ri[i].res.lt.spec.name) {
			specs[k] = ri[i].res.lt.spec;
			keys[k++] = ri[i].role;
		}
	_cleanup_free_ char *lt_path = xasprintf("%s/launch-templates.tf.json", dir);
	_cleanup_free_ char *bk_path = xasprintf("%s/backup-plan.tf.json", dir);
	_cleanup_free_ char *previous = NULL;
	if (ib_exists(lt_path) && ib_read_file(ctx, lt_path, MAX_MANIFEST, &previous, NULL) < 0)
		previous = NULL;
	_cleanup_free_ char *lts = aws_tf_launch_templates(specs, keys, k, previous);
	_cleanup_free_ char *plan = aws_tf_backup_plan(p->name, backup, retention);
	free(specs);
	free(keys);
	/* The launch templates carry each role's user-data: private like a seed. */
	r = ib_write_file_atomic(ctx, lt_path, lts, strlen(lts), 0600);
	if (r == 0)
		r = ib_write_file_atomic(ctx, bk_path, plan, strlen(plan), 0644);
	if (r == 0 && cli->verbosity > 0 && !cli->json)
		cli_message(cli, "imgbuild: wrote %s and %s", lt_path, bk_path);
	return r;
}

static int publish_roles(struct cli *cli, struct ib_project *p, const char *const *roles, size_t n)
{
	struct ib_ctx *ctx = &cli->ctx;
	_cleanup_free_ char *out = cli->out ? ib_abspath(cli->out) : xstrdup(p->output_dir);
	struct role_in *ri = xcalloc(n, sizeof(*ri));
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		ri[i].role = roles[i];
		r = prepare_role(cli, p, out, &ri[i]);
	}
	struct aws_config cfg = {0};
	struct aws_config_opts co = {
	        .profile = cli->profile,
	        .region = cli->region,
	        .endpoint_url = cli->endpoint_url,
	        .no_imds = cli->dry_run,
	        .allow_no_creds = cli->dry_run,
	};
	if (r == 0)
		r = aws_config_load(ctx, &co, &cfg);
	if (r < 0)
		goto done;
	char *who = aws_config_describe(&cfg);
	ib_log(ctx, IB_LOG_INFO, "AWS: %s%s", who,
	       cli->dry_run ? " (dry run: nothing is sent)" : "");
	free(who);

	struct aws_client c;
	aws_client_init(&c, &cfg);
	c.dry_run = cli->dry_run;
	c.on_request = on_request;
	c.cb_data = cli;
	c.timeout_ms = (long)(env_num("IMGBUILD_AWS_REQUEST_TIMEOUT", 60) * 1000);
	c.retry_base_ms = (long)env_num("IMGBUILD_AWS_RETRY_BASE_MS", 100);
	const char *backup = getenv("IMGBUILD_AWS_BACKUP_TAG");
	if (!backup || !*backup)
		backup = "daily";
	/* How long AWS Backup keeps each recovery point: a site's policy, not imgbuild's. */
	int retention = 14;
	const char *ret_s = getenv("IMGBUILD_AWS_BACKUP_RETENTION_DAYS");
	if (ret_s && *ret_s) {
		char *end;
		long d = strtol(ret_s, &end, 10);
		if (*end || d < 1 || d > 36500) {
			r = ib_error(
			        ctx, IB_E_USAGE,
			        "IMGBUILD_AWS_BACKUP_RETENTION_DAYS='%s' is not a number of days "
			        "from 1 to 36500",
			        ret_s);
			goto done;
		}
		retention = (int)d;
	}
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct ib_ctx rc;
		ib_ctx_init_child(&rc, ctx, ri[i].role);
		struct aws_publish_opts o = {
		        .project = p->name,
		        .role = ri[i].role,
		        .raw_path = ri[i].raw,
		        .manifest_sha256 = ri[i].manifest_sha,
		        .inputs_digest = ri[i].inputs_digest,
		        .upload = {.concurrency = cli->concurrency,
		                   .skip_holes = cli->skip_holes,
		                   .block_timeout_ms =
		                           (long)(env_num("IMGBUILD_AWS_REQUEST_TIMEOUT", 30) *
		                                  1000)},
		        .copy_to = cli->copy_to ? (const char *const *)cli->copy_to->v : NULL,
		        .n_copy_to = cli->copy_to ? cli->copy_to->n : 0,
		        .instance_type =
		                cli->instance_type ? cli->instance_type : DEFAULT_INSTANCE_TYPE,
		        .user_data = ri[i].sd.user_data,
		        .backup_value = backup,
		        .wait_timeout_s = env_num("IMGBUILD_AWS_WAIT_SECONDS", 1800),
		        .poll_s = env_num("IMGBUILD_AWS_POLL_SECONDS", 2),
		};
		ri[i].rc = aws_publish_role(&rc, &c, &o, &ri[i].res);
		if (ri[i].rc < 0) {
			snprintf(ri[i].err, sizeof(ri[i].err), "%s", rc.err);
			if (failed++)
				cli_message(cli, "imgbuild: error: publishing '%s': %s", ri[i].role,
				            rc.err);
			else
				r = ib_error(ctx, -ri[i].rc, "publishing '%s': %s", ri[i].role,
				             rc.err);
		}
	}
	/* The files say what the API was told; a dry run writes nothing. */
	if (!cli->dry_run && !ib_interrupted) {
		int w = write_tf(cli, p, out, ri, n, backup, retention);
		if (r == 0)
			r = w;
	}
	print_summary(cli, &c, ri, n);
done:
	for (size_t i = 0; i < n; i++)
		role_in_release(&ri[i]);
	free(ri);
	aws_config_release(&cfg);
	return r;
}

int cmd_publish(struct cli *cli, int argc, char **argv)
{
	struct ib_project *p = NULL;
	int r = cli_load_project(cli, &p);
	if (r < 0)
		return r;
	struct strv roles = {0};
	for (int i = 1; i < argc && r == 0; i++) {
		const struct ib_role *role = ib_project_find_role(p, argv[i]);
		if (!role)
			r = ib_error(&cli->ctx, IB_E_USAGE,
			             "unknown role '%s' (see 'imgbuild list')", argv[i]);
		else if (role->abstract)
			r = ib_error(&cli->ctx, IB_E_USAGE,
			             "role '%s' is abstract: it has no image to publish", argv[i]);
		else if (!strv_contains(&roles, argv[i]))
			strv_push(&roles, argv[i]);
	}
	for (size_t i = 0; argc < 2 && i < p->n_roles; i++)
		if (!p->roles[i].abstract)
			strv_push(&roles, p->roles[i].name);
	if (r == 0 && roles.n == 0)
		r = ib_error(&cli->ctx, IB_E_SPEC, "the project has no role to publish");
	if (r == 0)
		r = publish_roles(cli, p, (const char *const *)roles.v, roles.n);
	strv_release(&roles);
	ib_project_free(p);
	return r;
}

int cmd_all_target(struct cli *cli, int argc, char **argv)
{
	int aws_opts = cli->region || cli->endpoint_url || cli->profile || cli->concurrency ||
	               cli->skip_holes || cli->copy_to || cli->instance_type || cli->dry_run;
	if (!cli->target) {
		if (aws_opts)
			return ib_error(&cli->ctx, IB_E_USAGE,
			                "AWS options apply to 'all' only with --target ami");
		return cmd_all(cli, argc, argv);
	}
	if (!streq(cli->target, "ami"))
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "bad value '%s' for --target: the only target is 'ami'",
		                cli->target);
	int r = cmd_all(cli, argc, argv);
	if (r < 0)
		return r;
	char *pargv[] = {(char *)"publish", NULL};
	return cmd_publish(cli, 1, pargv);
}
