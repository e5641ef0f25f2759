/* cmd_verify.c: `imgbuild verify IMAGE [--role R]`: check an image read-only, print the results. */
#include "cli.h"
#include "layer/layer.h"
#include "pipeline/build.h"
#include "rootfs/rootfs.h"
#include "util/json.h"
#include "verify/verify.h"

/* The input digest a build of role would write into the image's manifest. */
static int expected_digest(struct cli *cli, const struct ib_project *p,
                           const struct ib_resolved *role, char out[65])
{
	time_t epoch = ib_source_date_epoch();
	if (epoch < 0)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "SOURCE_DATE_EPOCH must be a number of seconds since 1970");
	struct ib_rootfs_opts ro = {.project = p, .role = role, .epoch = epoch};
	char key[65];
	ib_rootfs_key(&ro, key);
	return ib_role_digest(&cli->ctx, p, role, key, epoch, out);
}

static void print_json(const char *image, const struct ib_verify_report *rep, int rc)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < rep->n; i++) {
		struct json j;
		sb_reset(&sb);
		json_init(&j, &sb, 0);
		json_obj_begin(&j, NULL);
		json_str(&j, "event", "check");
		json_str(&j, "image", image);
		json_str(&j, "name", rep->results[i].name);
		json_str(&j, "result", rep->results[i].ok ? "pass" : "fail");
		json_str(&j, "detail", rep->results[i].detail);
		json_obj_end(&j);
		printf("%s\n", sb_str(&sb));
	}
	struct json j;
	sb_reset(&sb);
	json_init(&j, &sb, 0);
	json_obj_begin(&j, NULL);
	json_str(&j, "event", "summary");
	json_str(&j, "image", image);
	json_str(&j, "result", rc == 0 ? "pass" : "fail");
	json_int(&j, "checks", (long long)rep->n);
	json_int(&j, "failed", (long long)rep->n_failed);
	json_str(&j, "accel", rep->accel);
	json_num(&j, "launch_seconds", rep->launch_seconds);
	json_num(&j, "seconds", rep->seconds);
	json_obj_end(&j);
	printf("%s\n", sb_str(&sb));
	sb_release(&sb);
}

static void print_table(const char *image, const struct ib_verify_report *rep)
{
	int w = 5;
	for (size_t i = 0; i < rep->n; i++) {
		int n = (int)strlen(rep->results[i].name);
		if (n > w)
			w = n;
	}
	printf("%-*s  %-6s %s\n", w, "CHECK", "RESULT", "DETAIL");
	for (size_t i = 0; i < rep->n; i++)
		printf("%-*s  %-6s %s\n", w, rep->results[i].name,
		       rep->results[i].ok ? "pass" : "FAIL", rep->results[i].detail);
	printf("\n%s: %zu checks, %s (appliance %s: launch %.1fs, all %.1fs)\n", image, rep->n,
	       rep->n_failed ? "some failed" : "all passed", rep->accel, rep->launch_seconds,
	       rep->seconds);
}

int cmd_verify(struct cli *cli, int argc, char **argv)
{
	if (argc != 2)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "'verify' takes exactly one image (see 'imgbuild verify --help')");
	const char *image = argv[1];
	cli->ctx.label = image; /* stage and log lines name the image */
	struct ib_project *p = NULL;
	struct ib_resolved *role = NULL;
	int r = 0;
	char digest[65];
	struct ib_verify_opts vo = {0};
	if (cli->role) {
		if ((r = cli_load_project(cli, &p)) < 0 ||
		    (r = ib_role_resolve(&cli->ctx, p, cli->role, &role)) < 0 ||
		    (r = expected_digest(cli, p, role, digest)) < 0)
			goto out;
		vo.expect_digest = digest;
	}
	struct ib_verify_report rep;
	r = ib_verify_image(&cli->ctx, image, role, &vo, &rep);
	if (rep.n) {
		if (cli->json)
			print_json(image, &rep, r);
		else if (cli->verbosity > 0)
			print_table(image, &rep);
	}
	ib_verify_report_release(&rep);
out:
	ib_resolved_free(role);
	ib_project_free(p);
	return r;
}
